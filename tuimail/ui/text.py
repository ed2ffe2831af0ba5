"""The only door for mail data into the UI: sanitized, and never parsed as markup.

Rich's `Text(...)` constructor takes its string literally (only `Text.from_markup` parses), but
Textual widgets given a plain `str` (Static, Label, Tree labels, notifications) parse Textual
markup such as `[@click=app.quit]`. So every string that came from a message, a server or the
file system is turned into a `Text` here, after `sanitize_line` has made control characters,
ESC sequences and bidi overrides harmless.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from tuimail.mail.sanitize import sanitize_line


def clean(value: str) -> str:
    """One line of untrusted text, safe to put in a `Segment` as it is."""
    return sanitize_line(value)


def safe_text(value: str, style: str | Style = "") -> Text:
    """Untrusted single-line text as a literal `Text` (no markup, no emoji codes)."""
    return Text(sanitize_line(value), style=style, no_wrap=False, end="")


def label(*parts: tuple[str, str | Style] | str) -> Text:
    """A `Text` from parts; a bare `str` is trusted UI text, a `(value, style)` pair is untrusted.

    Trusted strings are still appended literally: markup is never parsed anywhere in the UI.
    """
    out = Text(end="")
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        else:
            value, style = part
            out.append(sanitize_line(value), style=style)
    return out
