"""Keyword hits marked in a document's text, for `st.html`. The text is split at the hits
and every piece is HTML-escaped, so hostile text stays text; only our <mark> tags are HTML."""

from __future__ import annotations

import html
import re

STYLE = ("font-size: 1.2rem; line-height: 1.6; white-space: pre-wrap; "
         "font-family: inherit;")


def highlight(text: str, keyword: str) -> str:
    """`text` as escaped HTML with each case-insensitive occurrence of `keyword` in <mark>."""
    text, keyword = str(text), (keyword or "").strip()
    if not keyword:
        return html.escape(text)
    parts, last = [], 0
    for hit in re.finditer(re.escape(keyword), text, flags=re.IGNORECASE):
        parts += [html.escape(text[last:hit.start()]), f"<mark>{html.escape(hit.group(0))}</mark>"]
        last = hit.end()
    parts.append(html.escape(text[last:]))
    return "".join(parts)


def highlighted_block(text: str, keyword: str) -> str:
    return f'<div style="{STYLE}">{highlight(text, keyword)}</div>'
