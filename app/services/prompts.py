"""Prompt design: presets, live validation with the chosen model's tokenizer, previews of
rendered prompts on real documents, the zero-shot check, and versioned saving."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.services import ServiceError, users
from app.services.labelling import labelled_examples, list_label_classes
from db.models import OWNER, Document, PromptConfig
from db.writes import user_write

MODES = ("prompt", "classic")
DEFAULT_MAX_LENGTH = 128
PRESET_ORDER = ("sentiment", "topic", "subjectivity", "question_type", "nli", "paraphrase")


def load_tokenizer(model: str):
    """The tokenizer of `model` ("default", a hub name or a local path). Goes through the
    engine's loader: a hub name that cannot be reached offline fails in seconds, not after a
    minute of retries on every rerun of the page."""
    from list_engine import load_tokenizer as engine_load_tokenizer
    from list_engine import resolve_model_path

    try:
        return engine_load_tokenizer(resolve_model_path(model))
    except Exception as exc:  # noqa: BLE001 - any loading failure is a user-facing message
        raise ServiceError(f"Could not load the tokenizer of {model!r}: {exc}") from exc


# ---------------------------------------------------------------- presets


def presets() -> dict:
    """The engine's task presets (name -> TaskPreset), in a stable order."""
    from list_engine import TASK_PRESETS

    names = [n for n in PRESET_ORDER if n in TASK_PRESETS]
    names += [n for n in TASK_PRESETS if n not in names]
    return {n: TASK_PRESETS[n] for n in names}


def preset_verbalizer(preset, label_names: list[str], fallback: dict[str, str]) -> dict[str, str]:
    """Label words for the project's labels: the preset's word where a label name matches one
    of the preset's example labels (case-insensitive), else the label's own suggested word."""
    words = {k.lower(): v for k, v in (preset.words or {}).items()}
    return {name: words.get(name.lower(), fallback.get(name, "")) for name in label_names}


# ---------------------------------------------------------------- validation


def validate(
    template: str, verbalizer: dict[str, str], tokenizer, label_names: list[str] | None = None,
    mode: str = "prompt", has_pairs: bool | None = None,
) -> list[str]:
    """Every problem with this prompt as a sentence for the user (empty = valid).
    `has_pairs`: whether the project's documents have a second text (None = unknown)."""
    from list_engine import PromptError, Template, validate_prompt

    problems: list[str] = []
    if mode == "prompt" and has_pairs is False:
        try:
            if Template(template).is_pair:
                problems.append("This template needs text pairs ({text_a} and {text_b}), but "
                                "the project's documents have no second text: use {text}, or "
                                "import a second text column.")
        except PromptError:
            pass  # reported below by validate_prompt
    if label_names is not None:
        if len(label_names) < 2:
            problems.append("The project needs at least 2 labels: define them on the Labels page.")
        missing = [n for n in label_names if not clean_word(verbalizer.get(n)).strip()]
        if missing and mode == "prompt":
            problems.append("No label word for: " + ", ".join(missing) + ".")
    if mode == "classic":
        return problems
    clean = {k: clean_word(v) for k, v in verbalizer.items()}
    problems += [p for p in validate_prompt(template, clean, tokenizer) if p not in problems]
    return problems


def word_tokens(word: str, tokenizer) -> list[str]:
    """How the tokenizer splits the label word, exactly as the engine tokenizes it (for
    BPE tokenizers a leading space makes a different token: " great" vs "great")."""
    return tokenizer.convert_ids_to_tokens(_word_ids(word, tokenizer))


def is_bpe(tokenizer) -> bool:
    """True where " word" and "word" are different tokens (byte-level BPE, e.g. RoBERTa)."""
    return (tokenizer(" great", add_special_tokens=False)["input_ids"]
            != tokenizer("great", add_special_tokens=False)["input_ids"])


def _word_ids(word: str, tokenizer) -> list[int]:
    return tokenizer(word, add_special_tokens=False)["input_ids"]


def clean_word(word: str | None) -> str:
    """Trailing whitespace goes; a leading space stays (it matters for BPE tokenizers)."""
    return (word or "").rstrip()


def is_single_token(word: str, tokenizer) -> bool:
    if not word.strip():
        return False
    ids = _word_ids(word, tokenizer)
    return len(ids) == 1 and ids[0] != tokenizer.unk_token_id


def suggest_single_token(word: str, tokenizer, limit: int = 3) -> list[str]:
    """Single-token alternatives for a label word that splits into several tokens:
    case variants, its first word, and prefixes that are whole tokens (with a leading space
    first for BPE tokenizers)."""
    original = word
    word = word.strip()
    base_forms: list[str] = []
    parts = word.replace("-", " ").replace("_", " ").split()
    for w in [word, word.lower(), word.capitalize(), word.upper(), *parts,
              *(p.lower() for p in parts)]:
        if w and w not in base_forms:
            base_forms.append(w)
    base = word.lower()
    base_forms += [base[:cut] for cut in range(len(base) - 1, 2, -1)]  # "technolog"... "tech"
    spaced = is_bpe(tokenizer)
    candidates = [f" {w}" for w in base_forms] + base_forms if spaced else base_forms
    out: list[str] = []
    for c in candidates:
        if c != original and c not in out and is_single_token(c, tokenizer):
            out.append(c)
        if len(out) >= limit:
            break
    return out


def label_words(value: str | None) -> list[str]:
    """The words of one label word field: several are separated by commas ("great, good");
    each keeps the leading-space form of the first (it matters for BPE tokenizers)."""
    from list_engine.prompts import split_words

    value = clean_word(value)
    return [w for w in split_words(value) if w.strip()] if value.strip() else []


def word_report(verbalizer: dict[str, str], tokenizer) -> pd.DataFrame:
    """Per label word (a label may have several): the tokens it becomes, OK or not, and
    suggestions."""
    rows = []
    for label, value in verbalizer.items():
        for word in label_words(value) or [""]:
            tokens = word_tokens(word, tokenizer) if word else []
            ok = len(tokens) == 1
            rows.append({
                "label": label, "word": word, "tokens": " ".join(tokens), "one token": ok,
                "suggestions": ("" if ok or not word
                                else ", ".join(suggest_single_token(word, tokenizer))),
            })
    return pd.DataFrame(rows, columns=["label", "word", "tokens", "one token", "suggestions"])


# ---------------------------------------------------------------- preview


@dataclass(frozen=True)
class Preview:
    document_id: int
    text: str  # the prompt as the model sees it
    truncated: bool
    kept_chars: int
    original_chars: int


def corpus_has_pairs(session: Session, project_id: int) -> bool | None:
    """True/False whether documents have a second text; None for an empty corpus."""
    first = session.execute(
        select(Document.text_b).where(Document.project_id == project_id).limit(1)
    ).first()
    return None if first is None else first[0] is not None


def preview_documents(session: Session, project_id: int, n: int = 3) -> list[Document]:
    """Labelled documents first (they are what training sees), then the oldest others."""
    docs = [d for d, _ in labelled_examples(session, project_id, limit=n)]
    if len(docs) < n:
        ids = [d.id for d in docs]
        stmt = select(Document).where(Document.project_id == project_id)
        if ids:
            stmt = stmt.where(Document.id.not_in(ids))
        docs += list(session.scalars(stmt.order_by(Document.id).limit(n - len(docs))))
    return docs


def preview(
    template: str, documents: list[Document], tokenizer, max_length: int = DEFAULT_MAX_LENGTH
) -> list[Preview]:
    from list_engine import Example, render_prompt

    out = []
    for doc in documents:
        rendered = render_prompt(template, Example(text=doc.text, text_b=doc.text_b, id=doc.id),
                                 tokenizer, max_length)
        out.append(Preview(doc.id, rendered.text, bool(rendered.truncated),
                           int(rendered.kept_chars), int(rendered.original_chars)))
    return out


# ---------------------------------------------------------------- zero-shot check


@dataclass(frozen=True)
class ZeroShotResult:
    table: pd.DataFrame  # one row per labelled example: document, label, predicted, p(word)...
    accuracy: float | None
    head_pretrained: bool
    note: str
    head: str = "mlm"  # mlm | similarity: what the model's prompt head is
    meaningful: bool = False  # do these probabilities mean anything before training?


UNTRAINED_NOTE = (
    "This model's masked-LM head is untrained (its checkpoint has no pretrained MLM head, as "
    "with the packaged default model), so these label-word probabilities are noise: the "
    "zero-shot check means nothing here. It says nothing about how well the prompt will do "
    "after training; use a model with a pretrained MLM head (e.g. roberta-large) for a "
    "meaningful zero-shot check."
)


SIMILARITY_NOTE = (
    "This model is a sentence encoder without a pretrained masked-LM head, so it uses the "
    "similarity head: each label is described by the template with its label word in the mask "
    "slot (e.g. \"It was great.\") and a document goes to the label whose description it is "
    "most similar to. These are real zero-shot predictions: low accuracy here suggests other "
    "label words or another template. Training starts from this and improves on it."
)


def head_explanation(head: str, mlm_head_pretrained: bool) -> str:
    """One line for the train and run pages: which prompt head a model uses and why."""
    if head == "similarity":
        return ("Similarity head: the model has no pretrained masked-LM head, so labels are "
                "scored by the similarity of a document to each label's description.")
    if head == "mlm" and mlm_head_pretrained:
        return ("MLM head: the model has a pretrained masked-LM head, so labels are scored by "
                "the label word's probability at the mask.")
    if head == "mlm":
        return "MLM head, untrained (chosen by hand): zero-shot predictions are chance."
    return "Classic head: a classifier on the first token, no prompt."


def zero_shot_check(
    session: Session, project_id: int, classifier, limit: int = 60
) -> ZeroShotResult:
    """The current (untrained-adapter) model's label-word probabilities on the labelled
    examples. `classifier` is a `PromptClassifier` built with this template/verbalizer."""
    pairs = labelled_examples(session, project_id, limit=limit)
    if not pairs:
        raise ServiceError("Label a few documents first: the check runs on labelled examples.")
    from list_engine import Example

    examples = [Example(text=d.text, text_b=d.text_b, id=d.id) for d, _ in pairs]
    probs = np.asarray(classifier.predict_proba(examples))  # (N, C)
    labels = list(classifier.labels)
    predicted = [labels[i] for i in probs.argmax(axis=1)]
    table = pd.DataFrame({
        "document": [d.id for d, _ in pairs],
        "text": [d.text[:80] + ("…" if len(d.text) > 80 else "") for d, _ in pairs],
        "label": [c.name for _, c in pairs],
        "predicted": predicted,
    })
    for j, name in enumerate(labels):
        table[f"p({name})"] = probs[:, j].round(3)
    accuracy = float(np.mean([p == c.name for p, (_, c) in zip(predicted, pairs, strict=True)]))
    pretrained = bool(classifier.mlm_head_pretrained)
    head = getattr(classifier, "head", "mlm")
    if head == "similarity":
        note = SIMILARITY_NOTE
    elif pretrained:
        note = ("The model's MLM head is pretrained: these are real zero-shot probabilities. "
                "Low accuracy here suggests trying other label words or another template.")
    else:
        note = UNTRAINED_NOTE
    return ZeroShotResult(table, accuracy, pretrained, note, head,
                          meaningful=head == "similarity" or pretrained)


def build_classifier(model: str, template: str, verbalizer: dict[str, str], device: str = "cpu",
                     max_length: int = DEFAULT_MAX_LENGTH):
    from list_engine import PromptClassifier

    return PromptClassifier.create(model=model, template=template, verbalizer=verbalizer,
                                   mode="prompt", max_length=max_length, device=device)


# ---------------------------------------------------------------- saving


def list_prompt_configs(session: Session, project_id: int) -> list[PromptConfig]:
    return list(session.scalars(
        select(PromptConfig).where(PromptConfig.project_id == project_id)
        .order_by(PromptConfig.version.desc())
    ))


def latest_prompt_config(session: Session, project_id: int) -> PromptConfig | None:
    return session.scalar(
        select(PromptConfig).where(PromptConfig.project_id == project_id)
        .order_by(PromptConfig.version.desc()).limit(1)
    )


@user_write
def save_prompt_config(
    session: Session, project_id: int, *, template: str, verbalizer: dict[str, str],
    model: str, mode: str = "prompt", note: str = "", tokenizer=None,
) -> PromptConfig:
    """Validate (when a tokenizer is given) and save as the next version. Saved configs are
    immutable: editing saves a new version."""
    users.require(session, project_id, OWNER)
    if mode not in MODES:
        raise ServiceError(f"Unknown mode {mode!r}: use one of {', '.join(MODES)}.")
    labels = [c.name for c in list_label_classes(session, project_id)]
    verbalizer = {k: clean_word(v) for k, v in verbalizer.items()}
    unknown = [k for k in verbalizer if k not in labels]
    if unknown:
        raise ServiceError("Label words for labels that are not in the project: " + ", ".join(unknown))
    verbalizer = {name: verbalizer.get(name, "") for name in labels}  # label order
    if tokenizer is not None:
        problems = validate(template, verbalizer, tokenizer, labels, mode)
        if problems:
            raise ServiceError("The prompt is not valid: " + " ".join(problems))
    elif len(labels) < 2:
        raise ServiceError("The project needs at least 2 labels.")
    version = (session.scalar(
        select(func.max(PromptConfig.version)).where(PromptConfig.project_id == project_id)
    ) or 0) + 1
    config = PromptConfig(project_id=project_id, version=version, template=template.strip(),
                          verbalizer=verbalizer, model=(model or "default").strip(), mode=mode,
                          note=(note or "").strip())
    session.add(config)
    session.flush()
    return config
