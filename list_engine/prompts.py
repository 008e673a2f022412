"""Examples, templates, verbalizers: render a cloze prompt, truncate the text (never the
template or the mask), map label words to single token ids. No eval(), no model code."""

from __future__ import annotations

import re
from dataclasses import dataclass

PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
KNOWN_PLACEHOLDERS = ("text", "text_a", "text_b", "mask")


class PromptError(ValueError):
    """A template, verbalizer or example that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Example:
    text: str
    text_b: str | None = None
    label: str | None = None
    id: int | str | None = None


@dataclass(frozen=True)
class TaskPreset:
    template: str
    words: dict[str, str] | None
    description: str


TASK_PRESETS: dict[str, TaskPreset] = {
    "sentiment": TaskPreset(
        "{text} It was {mask}.", {"negative": "terrible", "positive": "great"},
        "Positive vs negative opinion (SST-2, MR, CR, MPQA in the paper).",
    ),
    "subjectivity": TaskPreset(
        "{text} This is {mask}.", {"subjective": "subjective", "objective": "objective"},
        "Subjective opinion vs objective statement (Subj).",
    ),
    "topic": TaskPreset(
        "[{mask}] {text}", None,
        "News topic; choose one single-token word per topic (e.g. sport, business, tech).",
    ),
    "question_type": TaskPreset(
        "{mask}: {text}",
        {"description": "Description", "entity": "Entity", "abbreviation": "Expression",
         "human": "Human", "location": "Location", "number": "Number"},
        "What a question asks for (TREC).",
    ),
    "nli": TaskPreset(
        "{text_a}? {mask}, {text_b}",
        {"contradiction": "No", "entailment": "Yes", "neutral": "Maybe"},
        "Does text_a entail text_b (MNLI; RTE/QNLI use entailment/not_entailment -> Yes/No).",
    ),
    "paraphrase": TaskPreset(
        "{text_a} {mask}, {text_b}", {"not_paraphrase": "No", "paraphrase": "Yes"},
        "Do the two texts say the same thing (QQP, MRPC).",
    ),
}


# ---------------------------------------------------------------------------------------------
# Template
# ---------------------------------------------------------------------------------------------
class Template:
    """A cloze pattern with `{text}` (or `{text_a}`/`{text_b}`) and exactly one `{mask}`."""

    def __init__(self, pattern: str):
        if isinstance(pattern, Template):
            pattern = pattern.pattern
        problems = template_problems(pattern)
        if problems:
            raise PromptError("; ".join(problems))
        self.pattern = pattern
        # Segments: ("lit", text) or ("slot", name), in order.
        self.segments: list[tuple[str, str]] = []
        pos = 0
        for match in PLACEHOLDER_RE.finditer(pattern):
            if match.start() > pos:
                self.segments.append(("lit", pattern[pos:match.start()]))
            self.segments.append(("slot", match.group(1)))
            pos = match.end()
        if pos < len(pattern):
            self.segments.append(("lit", pattern[pos:]))

    @property
    def is_pair(self) -> bool:
        return "{text_b}" in self.pattern

    @property
    def text_fields(self) -> list[str]:
        return [name for kind, name in self.segments if kind == "slot" and name != "mask"]

    def __repr__(self) -> str:
        return f"Template({self.pattern!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)


def template_problems(pattern: object) -> list[str]:
    if not isinstance(pattern, str) or not pattern.strip():
        return ["the template is empty: write e.g. '{text} It was {mask}.'"]
    problems = []
    stripped = PLACEHOLDER_RE.sub("", pattern)
    if "{" in stripped or "}" in stripped:
        problems.append("unbalanced '{' or '}': placeholders are written {text}, {mask} ...")
    names = PLACEHOLDER_RE.findall(pattern)
    unknown = sorted({n for n in names if n not in KNOWN_PLACEHOLDERS})
    if unknown:
        problems.append(
            f"unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}: "
            "use {text} (or {text_a} and {text_b} for pairs) and {mask}"
        )
    n_mask = names.count("mask")
    if n_mask == 0:
        problems.append("the template has no {mask}: add one where the label word goes")
    elif n_mask > 1:
        problems.append(f"the template has {n_mask} {{mask}} placeholders: keep exactly one")
    for name in ("text", "text_a", "text_b"):
        if names.count(name) > 1:
            problems.append(f"{{{name}}} appears {names.count(name)} times: use it once")
    has_single = "text" in names
    has_a, has_b = "text_a" in names, "text_b" in names
    if has_single and (has_a or has_b):
        problems.append("mix of {text} and {text_a}/{text_b}: use {text} alone, or both "
                        "{text_a} and {text_b} for sentence pairs")
    elif has_b and not has_a:
        problems.append("{text_b} without {text_a}: pairs need both")
    elif not (has_single or has_a):
        problems.append("the template has no {text}: add {text} where the input goes")
    return problems


# ---------------------------------------------------------------------------------------------
# Verbalizer
# ---------------------------------------------------------------------------------------------
def _is_space_sensitive(tokenizer) -> bool:
    """True for byte-level BPE style tokenizers where ' great' and 'great' differ."""
    try:
        return tokenizer(" great", add_special_tokens=False)["input_ids"] != tokenizer(
            "great", add_special_tokens=False
        )["input_ids"]
    except Exception:  # pragma: no cover - exotic tokenizers
        return False


WORD_SEPARATOR = ","


def split_words(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """The label words of one class: a list as given, or a string of words separated by
    commas ("great, good, fine"). Each word keeps the leading-space form of the first one
    (" great, good" -> [" great", " good"]): for BPE tokenizers a leading space makes a
    different token."""
    if isinstance(value, (list, tuple)):
        return [str(w) for w in value]
    value = str(value)
    if WORD_SEPARATOR not in value:
        return [value]
    lead = " " if value[:1].isspace() else ""
    return [lead + w.strip() for w in value.split(WORD_SEPARATOR)]


class Verbalizer:
    """label name -> label word(s); insertion order is the class order. A class may have
    several words (a list, or a string separated by commas): its score is the mean of its
    words' scores (MLM head), or its description embedding the mean of theirs (similarity)."""

    def __init__(self, mapping: dict[str, str | list[str]]):
        if isinstance(mapping, Verbalizer):
            mapping = mapping.mapping
        problems = verbalizer_problems(mapping)
        if problems:
            raise PromptError("; ".join(problems))
        self.mapping = {str(k): [str(w) for w in v] if isinstance(v, (list, tuple)) else str(v)
                        for k, v in mapping.items()}
        self.word_lists = [split_words(v) for v in self.mapping.values()]

    @property
    def labels(self) -> list[str]:
        return list(self.mapping)

    @property
    def words(self) -> list[str]:
        """Every label word, class by class (one per class unless a class has several)."""
        return [w for words in self.word_lists for w in words]

    @property
    def words_per_class(self) -> list[int]:
        return [len(words) for words in self.word_lists]

    @property
    def is_multi_word(self) -> bool:
        return any(n > 1 for n in self.words_per_class)

    def word_problems(self, tokenizer) -> list[str]:
        problems = []
        sensitive = _is_space_sensitive(tokenizer)
        special = set(getattr(tokenizer, "all_special_tokens", []) or [])
        for label, words in zip(self.labels, self.word_lists, strict=True):
            for word in words:
                problem = _word_problem(label, word, tokenizer, sensitive, special)
                if problem:
                    problems.append(problem)
        ids = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in self.words]
        singles = [i[0] for i in ids if len(i) == 1]
        if len(set(singles)) < len(singles):
            problems.append("two label words map to the same token: make them different")
        return problems

    def token_ids(self, tokenizer) -> list[int]:
        """One token id per label word, class by class (see `words_per_class`)."""
        problems = self.word_problems(tokenizer)
        if problems:
            raise PromptError("; ".join(problems))
        return [tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in self.words]

    def __repr__(self) -> str:
        return f"Verbalizer({self.mapping!r})"


def _word_problem(label: str, word: str, tokenizer, sensitive: bool, special: set) -> str | None:
    if word.strip() in special:
        return (f"label word {word!r} (label {label!r}) is a special token of this tokenizer: "
                "pick an ordinary word")
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if len(ids) == 1 and ids[0] != tokenizer.unk_token_id:
        return None
    pieces = tokenizer.convert_ids_to_tokens(ids)
    msg = (f"label word {word!r} (label {label!r}) is {len(ids)} tokens for this "
           f"tokenizer {pieces}; a label word must be exactly one known token")
    if len(ids) == 1:
        msg = f"label word {word!r} (label {label!r}) is unknown to this tokenizer"
    if sensitive and not word.startswith(" "):
        alt = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
        hint = "is one token" if len(alt) == 1 else "is also not one token"
        msg += (f". This is a BPE tokenizer: words after a space are different tokens;"
                f" try the leading-space form {' ' + word!r} ({hint})")
    else:
        msg += ". Pick a more common word"
    return msg


def verbalizer_problems(mapping: object) -> list[str]:
    if not isinstance(mapping, dict):
        return ["the verbalizer must be a mapping label -> word, e.g. "
                '{"negative": "terrible", "positive": "great"}']
    problems = []
    if len(mapping) < 2:
        problems.append(f"the verbalizer has {len(mapping)} label(s): at least 2 are needed")
    word_lists = {str(k): split_words(v) if isinstance(v, (str, list, tuple)) else [None]
                  for k, v in mapping.items()}
    empty = [k for k, ws in word_lists.items()
             if not ws or any(not isinstance(w, str) or not w.strip() for w in ws)]
    if empty:
        problems.append(f"empty label word for label(s) {empty}: write a word (several words "
                        f"are separated by commas, with no empty one between)")
    words = [str(w).strip().lower() for ws in word_lists.values() for w in ws]
    dupes = sorted({w for w in words if words.count(w) > 1})
    if dupes:
        problems.append(f"duplicate label word(s) {dupes}: each label needs its own words")
    return problems


def validate_prompt(template: str, verbalizer: dict[str, str], tokenizer) -> list[str]:
    """Every problem of a template + verbalizer for this tokenizer (empty list = valid)."""
    problems = template_problems(template)
    v_problems = verbalizer_problems(verbalizer)
    problems += v_problems
    if not v_problems:
        problems += Verbalizer(verbalizer).word_problems(tokenizer)
    if getattr(tokenizer, "mask_token", None) is None:
        problems.append("this tokenizer has no mask token: prompt mode needs a masked LM")
    return problems


# ---------------------------------------------------------------------------------------------
# Rendering and truncation
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RenderedPrompt:
    text: str
    input_ids: list[int]
    mask_position: int
    truncated: bool
    kept_chars: int
    original_chars: int


def _example_fields(template: Template, example: Example | str) -> dict[str, str]:
    if isinstance(example, str):
        example = Example(text=example)
    if template.is_pair:
        if example.text_b is None:
            raise PromptError(f"template {template.pattern!r} needs sentence pairs "
                              "(text_a and text_b) but the example has no text_b")
        return {"text_a": example.text, "text_b": example.text_b}
    return {"text": example.text, "text_a": example.text}


def render_prompt(template: Template | str, example: Example | str, tokenizer,
                  max_length: int) -> RenderedPrompt:
    """Fill the template, tokenise with special tokens, truncate the text only (tail first,
    longest text first for pairs) so that the prompt fits `max_length` tokens."""
    template = Template(template)
    if tokenizer.mask_token is None:
        raise PromptError("this tokenizer has no mask token")
    fields = _example_fields(template, example)
    original = {name: fields[name] for name in template.text_fields}
    texts = dict(original)
    sensitive = _is_space_sensitive(tokenizer)
    truncated = False
    for _ in range(50):  # converges in 1-2 passes; the bound guards odd tokenizers
        string, spans = _assemble(template, texts, tokenizer.mask_token, sensitive)
        enc = tokenizer(string, add_special_tokens=True, return_offsets_mapping=True,
                        truncation=False)
        ids = enc["input_ids"]
        excess = len(ids) - max_length
        if excess <= 0:
            break
        truncated = True
        counts = {name: [i for i, (s, e) in enumerate(enc["offset_mapping"])
                         if e > s and s >= spans[name][0] and e <= spans[name][1]]
                  for name in spans}
        if sum(len(v) for v in counts.values()) == 0:
            raise PromptError(
                f"the template alone is {len(ids)} tokens, more than max_length={max_length}: "
                "shorten the template or raise max_length")
        remove = {name: 0 for name in counts}
        for _ in range(excess):  # longest first
            name = max(counts, key=lambda n: len(counts[n]) - remove[n])
            if len(counts[name]) - remove[name] <= 0:
                break
            remove[name] += 1
        for name, n in remove.items():
            if n == 0:
                continue
            keep = len(counts[name]) - n
            if keep <= 0:
                texts[name] = ""
            else:
                cut = enc["offset_mapping"][counts[name][keep]][0] - spans[name][0]
                texts[name] = texts[name][:cut].rstrip()
    else:  # pragma: no cover
        raise PromptError("could not truncate the prompt to max_length")
    mask_positions = [i for i, t in enumerate(ids) if t == tokenizer.mask_token_id]
    if len(mask_positions) != 1:
        raise PromptError(f"the rendered prompt has {len(mask_positions)} mask tokens "
                          "(does the text itself contain the mask token?)")
    return RenderedPrompt(
        text=string, input_ids=list(ids), mask_position=mask_positions[0], truncated=truncated,
        kept_chars=sum(len(t) for t in texts.values()),
        original_chars=sum(len(t) for t in original.values()),
    )


def _assemble(template: Template, texts: dict[str, str], mask_token: str,
              space_sensitive: bool) -> tuple[str, dict[str, tuple[int, int]]]:
    """The prompt string and the char span of each text field in it. For space-sensitive
    (BPE) tokenizers the whitespace before the mask is dropped: the label word carries it."""
    parts: list[str] = []
    spans: dict[str, tuple[int, int]] = {}
    pos = 0
    segments = template.segments
    for i, (kind, value) in enumerate(segments):
        if kind == "lit":
            piece = value
            nxt = segments[i + 1] if i + 1 < len(segments) else None
            if space_sensitive and nxt == ("slot", "mask"):
                piece = piece.rstrip()
        elif value == "mask":
            piece = mask_token
        else:
            piece = texts[value]
            spans[value] = (pos, pos + len(piece))
        parts.append(piece)
        pos += len(piece)
    return "".join(parts), spans


def prompt_format(template: str | None, tokenizer) -> str | None:
    """The template as a str.format pattern that gives list_engine's prompt string (BPE
    tokenizers drop the space before the mask: the label word carries it)."""
    if not template:
        return None
    t = Template(template)
    texts = {name: "{" + name + "}" for name in t.text_fields}
    return _assemble(t, texts, "{mask}", _is_space_sensitive(tokenizer))[0]


def label_descriptions(template: Template | str | None, verbalizer: Verbalizer) -> list[str]:
    """What each label word "says" for the similarity head: the template with the input removed
    and the word in the mask slot (``"{text} It was {mask}."`` + great -> ``"It was great."``),
    one per word, class by class (``verbalizer.words``). Without a template the words
    themselves."""
    if template is None:
        return list(verbalizer.words)
    template = Template(template)
    out = []
    for word in verbalizer.words:
        parts = [value if kind == "lit" else (word.strip() if value == "mask" else "")
                 for kind, value in template.segments]
        text = re.sub(r"\s+", " ", "".join(parts)).strip()
        text = re.sub(r"^[^\w]+", "", text)  # "? Yes," (pair templates) -> "Yes,"
        out.append(text or word.strip())
    return out
