"""Make untrusted text safe to show in a terminal. Every displayed string goes through here.

Text from a message or a server can carry terminal control sequences (ESC, C1 CSI), characters
that reorder what is shown (bidi overrides) or hide text (zero-width characters). Two
functions cover every case:

- `sanitize_line(s)`: single-line text (subject, names, addresses, file names, folder names,
  server messages). Every line break and TAB becomes a space.
- `sanitize_text(s)`: message bodies. Keeps LF and TAB; CRLF/CR (and VT, FF, U+2028, U+2029)
  become LF.

Both are pure, never raise, and are idempotent (`f(f(s)) == f(s)`).

What happens to each kind of character:

- Other C0 controls (U+0000-U+001F), DEL (U+007F), C1 controls (U+0080-U+009F), bidi
  controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), zero-width and other
  invisible format characters (U+200B-U+200D, U+2060-U+206F, U+FEFF, U+180E, tag
  characters, Hangul fillers, ... — every Unicode "Cf" character) are made *visible* as a
  placeholder naming the code point: ``⟦U+202E⟧``. Nothing dangerous is dropped silently,
  so a spoofing attempt is seen rather than hidden.
- SOFT HYPHEN (U+00AD) is dropped: it is invisible by design, common in HTML mail, and
  harmless.
- Lone surrogates and noncharacters (U+FFFE, U+FFFF, U+FDD0-U+FDEF, ...) become U+FFFD.
- Private-use and unassigned code points are kept: they are printable (the latter may be
  newer emoji than this Python's Unicode database knows).

Markup: sanitize never escapes markup. The UI renders untrusted text with markup off (plain
strings in `Content`/`rich.text.Text`). Where a markup string *is* built from untrusted text
(e.g. `notify(f"[b]{subject}[/b]")` or a `Static` given markup), pass the untrusted part
through `escape_markup` after `sanitize_line`: `f"[b]{escape_markup(sanitize_line(s))}[/b]"`.
`escape_markup` targets Textual's markup (`Content.from_markup`, `Static`, `Label`,
`notify`); never pass `template_variables`/`$variables` along with untrusted text, since `$`
is not escaped. rich's own `Text.from_markup` has other escaping rules: tuimail does not use
it for untrusted text.

`safe_filename` turns a declared attachment name into one safe to create in a directory.
"""

from __future__ import annotations

import functools
import re

__all__ = [
    "PLACEHOLDER_FORMAT",
    "escape_markup",
    "safe_filename",
    "sanitize_line",
    "sanitize_text",
]

PLACEHOLDER_FORMAT = "⟦U+{:04X}⟧"

# Every code point that must not reach the terminal as is. Generated from the Unicode 14
# database (Python 3.11) and widened to whole blocks where newer Unicode versions add more;
# tests check it covers every Cc/Cf/Cs/Zl/Zp character of the running Python.
_BMP_BAD = (
    "\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 except TAB/LF, DEL, C1 (TAB/LF handled per mode)
    "\u00ad"  # soft hyphen
    "\u034f"  # combining grapheme joiner (invisible)
    "\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2"
    "\u115f\u1160"  # Hangul fillers: invisible letters used to fake blank names
    "\u17b4\u17b5"  # Khmer invisible vowels
    "\u180e"
    "\u200b-\u200f"  # zero-width space/non-joiner/joiner, LRM, RLM
    "\u2028\u2029"  # line/paragraph separators (handled as line breaks)
    "\u202a-\u202e"  # bidi embeddings and overrides
    "\u2060-\u206f"  # word joiner, invisible operators, bidi isolates, deprecated formats
    "\u3164"  # Hangul filler
    "\ud800-\udfff"  # surrogates
    "\ufdd0-\ufdef"  # noncharacters
    "\ufeff"  # BOM / zero-width no-break space
    "\uffa0"  # halfwidth Hangul filler
    "\ufff9-\ufffb"  # interlinear annotation
    "\ufffe\uffff"
)
_ASTRAL_BAD = (
    "\U000110bd\U000110cd"
    "\U00013430-\U0001343f"  # Egyptian hieroglyph format controls
    "\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a"
    "\U000e0000-\U000e007f"  # tag characters (invisible "ASCII smuggling")
)
# Noncharacters at the end of every plane (U+1FFFE, U+1FFFF, ... U+10FFFF).
_PLANE_NONCHARS = "".join(
    chr(p * 0x10000 + 0xFFFE) + chr(p * 0x10000 + 0xFFFF) for p in range(1, 17)
)
_BAD_RANGES = _BMP_BAD + _ASTRAL_BAD + _PLANE_NONCHARS

# Speed matters (bodies are megabytes): a character class of BMP ranges scans at a few ns
# per character, one holding many astral ranges ~20x slower. So the patterns match the BMP
# offenders plus *any* astral character, and the callback keeps the harmless astral ones
# (emoji...). ASCII-only text uses an even smaller class. CRLF is folded to LF beforehand.
# The big classes are compiled on first use (~2 ms together): `tuimail send` of an ASCII
# message never needs them.
_ANY_ASTRAL = "\U00010000-\U0010ffff"
_ASCII_LINE_RE = re.compile("[\x00-\x1f\x7f]")
_ASCII_TEXT_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


@functools.cache
def _line_re() -> re.Pattern[str]:
    return re.compile("[\t\n" + _BMP_BAD + _ANY_ASTRAL + "]")


@functools.cache
def _text_re() -> re.Pattern[str]:
    return re.compile("[" + _BMP_BAD + _ANY_ASTRAL + "]")


@functools.cache
def _astral_bad_re() -> re.Pattern[str]:
    return re.compile("[" + _ASTRAL_BAD + _PLANE_NONCHARS + "]")


_LINE_BREAKS = frozenset("\r\n\x0b\x0c\u2028\u2029")


def _replacement(ch: str) -> str:
    cp = ord(ch)
    if cp == 0xAD:
        return ""
    if 0xD800 <= cp <= 0xDFFF or 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE:
        return "\ufffd"
    return PLACEHOLDER_FORMAT.format(cp)


def _line_sub(m: re.Match[str]) -> str:
    ch = m.group()
    if ch >= "\U00010000":
        return _replacement(ch) if _astral_bad_re().match(ch) else ch
    if ch == "\t" or ch in _LINE_BREAKS:
        return " "
    return _replacement(ch)


def _text_sub(m: re.Match[str]) -> str:
    ch = m.group()
    if ch >= "\U00010000":
        return _replacement(ch) if _astral_bad_re().match(ch) else ch
    if ch in _LINE_BREAKS:
        return "\n"
    return _replacement(ch)


def sanitize_line(s: str) -> str:
    """Single-line text safe for the terminal: no control, bidi or invisible characters."""
    if not isinstance(s, str):  # defensive: callers sometimes hold bytes or None
        s = "" if s is None else str(s)
    if "\r\n" in s:
        s = s.replace("\r\n", "\n")
    return (_ASCII_LINE_RE if s.isascii() else _line_re()).sub(_line_sub, s)


def sanitize_text(s: str) -> str:
    """Multi-line text (bodies) safe for the terminal: like `sanitize_line`, keeping LF and TAB."""
    if not isinstance(s, str):
        s = "" if s is None else str(s)
    if "\r\n" in s:
        s = s.replace("\r\n", "\n")
    return (_ASCII_TEXT_RE if s.isascii() else _text_re()).sub(_text_sub, s)


def escape_markup(s: str) -> str:
    """Escape `s` for Textual content markup, so it is shown literally.

    Textual treats every `[` not preceded by a backslash as the start of a tag and turns
    `\\[` back into `[` in text, so escaping every `[` round-trips any string. One
    exception: Textual markup cannot express a literal backslash *right before a tag*
    (`x\\[/b]` would escape the tag and fail), so a trailing backslash is shown as
    U+29F5 `⧵`; this keeps `f"[b]{escape_markup(s)}[/b]"` valid for every `s`.
    """
    s = s.replace("[", "\\[")
    if s.endswith("\\"):
        s = s[:-1] + "\u29f5"
    return s


@functools.cache
def _filename_drop() -> re.Pattern[str]:
    return re.compile("[" + _BAD_RANGES + '\t\n"*:<>?|\\\\/]')


_WINDOWS_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(10)] + [f"lpt{i}" for i in range(10)]
)


def safe_filename(name: str, default: str = "attachment", max_bytes: int = 200) -> str:
    """A file name safe to create inside a directory, derived from a declared name.

    Only the last path component is kept (`../../etc/passwd` -> `passwd`), control,
    invisible and bidi characters and characters invalid on common file systems are
    removed, leading dots and spaces are stripped (no hidden files, no `..`), and the name
    is cut to `max_bytes` of UTF-8 keeping the extension. Falls back to `default`.
    """
    if not isinstance(name, str):
        name = ""
    base = re.split(r"[/\\]", name)[-1]
    base = _filename_drop().sub("", base).strip().lstrip(". ").rstrip(". ")
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    if not base or stem.lower() in _WINDOWS_RESERVED or base.lower() in _WINDOWS_RESERVED:
        base = f"{default}.{ext}" if ext and base else default
    if len(base.encode("utf-8")) > max_bytes:
        ext_part = ("." + ext) if dot and len(ext.encode("utf-8")) <= 16 else ""
        budget = max_bytes - len(ext_part.encode("utf-8"))
        stem_bytes = base[: len(base) - len(ext_part)].encode("utf-8")[:budget]
        base = stem_bytes.decode("utf-8", "ignore").rstrip(". ") + ext_part
        if not base.strip(". "):
            base = default
    return base
