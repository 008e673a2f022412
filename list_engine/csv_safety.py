"""Cells that a spreadsheet would run as a formula (=, +, -, @, tab, CR first) are written with
a leading apostrophe, so a prediction CSV opened in Excel or LibreOffice shows the text instead
of executing it (CSV/formula injection, OWASP)."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """`value` unchanged unless it is a string a spreadsheet would treat as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
