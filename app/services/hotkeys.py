"""Keyboard keys of the labelling page: one per class (1-9, then letters), none of them
taken by the page's other actions."""

from __future__ import annotations

import string

# Keys the labelling page uses for other actions: accept the model's guess, skip, undo.
ACCEPT_KEY, SKIP_KEY, UNDO_KEY = "a", "s", "u"
RESERVED = frozenset({ACCEPT_KEY, SKIP_KEY, UNDO_KEY})
CLASS_KEYS = tuple("123456789") + tuple(c for c in string.ascii_lowercase if c not in RESERVED)


def class_keys(n_classes: int) -> list[str | None]:
    """The key of each class in label-set order; None past the 32nd class (no key left)."""
    return [CLASS_KEYS[i] if i < len(CLASS_KEYS) else None for i in range(n_classes)]


def keys_caption(n_classes: int) -> str:
    """'Keys: 1-9, b-d label · a accept the model's guess · s skip · u undo · ← back · → next'."""
    keys = [k for k in class_keys(n_classes) if k]
    if not keys:
        shown = ""
    elif len(keys) == 1:
        shown = keys[0]
    else:
        digits = [k for k in keys if k.isdigit()]
        letters = [k for k in keys if not k.isdigit()]
        parts = [f"{digits[0]}-{digits[-1]}" if len(digits) > 1 else digits[0]]
        if letters:
            parts.append(f"{letters[0]}-{letters[-1]}" if len(letters) > 1 else letters[0])
        shown = ", ".join(parts)
    extra = "" if n_classes <= len(CLASS_KEYS) else f" (past the first {len(CLASS_KEYS)} classes: click)"
    return (f"Keys: {shown} label{extra} · {ACCEPT_KEY} accept the model's guess · "
            f"{SKIP_KEY} skip · {UNDO_KEY} undo · ← back · → next")
