"""A small, linear HTML-to-text converter for previews and as html2text's fallback.

Regex-based on purpose: no tree is built, so no nesting depth can exhaust the stack, and the
cost is linear in the input. It drops <head>, <script>, <style> and comments, turns block
ends into line breaks, shows images as `[image: alt]`, and unescapes entities. The output is
unsanitized (entities may decode to control characters): callers sanitize.
"""

from __future__ import annotations

import html
import re

__all__ = ["strip_invisible", "strip_tags"]

_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
# A '<' with no '>' before the next '<' (or the end) starts no tag: it is text. Escaping
# those first keeps every later `<...>` pattern linear: each scan stops at its own '>'.
_UNCLOSED = re.compile(r"<(?=[^<>]*(?:<|\Z))")
_INVISIBLE = re.compile(
    r"<(script|style|head|title|template|noscript|iframe|object|svg)\b[^>]*>.*?(?:</\1\s*>|\Z)",
    re.S | re.I,
)
_DECL = re.compile(r"<![^>]*>|<\?[^>]*>", re.S)


def strip_invisible(markup: str) -> str:
    """Remove comments, declarations and elements whose content is never text, and escape
    every '<' that opens no tag. The result's tags all close before the next '<'."""
    markup = _COMMENT.sub("", markup)
    markup = _UNCLOSED.sub("&lt;", markup)
    markup = _DECL.sub("", markup)
    return _INVISIBLE.sub(" ", markup)


_BREAK = re.compile(
    r"<(?:br|/p|p|/div|div|/tr|/h[1-6]|h[1-6]|/li|/blockquote|blockquote|hr|/table|/ul|/ol)\b[^>]*>",
    re.I,
)
_LI = re.compile(r"<li\b[^>]*>", re.I)
_CELL = re.compile(r"</t[dh]\s*>", re.I)
_IMG = re.compile(r"<img\b([^>]*)>", re.I | re.S)
_ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_TAG = re.compile(r"<[^>]*(?:>|\Z)", re.S)
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANKS = re.compile(r"\n\s*\n\s*\n+")


def _image(m: re.Match[str]) -> str:
    alt = _ALT.search(m.group(1))
    text = next((g for g in alt.groups() if g is not None), "") if alt else ""
    text = " ".join(html.unescape(text).split())
    return f"[image: {text}]" if text else "[image]"


def strip_tags(markup: str) -> str:
    """Readable plain text from HTML: tags removed, entities decoded, blank lines collapsed."""
    markup = strip_invisible(markup)
    markup = _IMG.sub(_image, markup)
    markup = _BREAK.sub("\n", markup)
    markup = _LI.sub("\n* ", markup)
    markup = _CELL.sub(" ", markup)
    markup = _TAG.sub("", markup)
    text = html.unescape(markup)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANKS.sub("\n\n", text).strip()
