"""format=flowed (RFC 3676): joining the soft line breaks of text/plain parts.

Mail clients that send `format=flowed` (Thunderbird, Apple Mail, mutt with text_flowed) cut
paragraphs into lines of at most 78 characters and end every line that continues the
paragraph with a space. Shown as sent, their paragraphs break at 72-78 columns whatever the
window's width; joined again they wrap to the window like any text. Quoted paragraphs keep
their depth, written `> ` per level.
"""

from __future__ import annotations

SIGNATURE = "-- "  # the signature separator ends with a space but never flows


def is_flowed(params: dict[str, str]) -> tuple[bool, bool]:
    """(flowed, delsp) from a text/plain part's Content-Type parameters."""
    flowed = params.get("format", "").strip().lower() == "flowed"
    return flowed, flowed and params.get("delsp", "").strip().lower() == "yes"


def unflow(text: str, delsp: bool = False) -> str:
    """The text with its flowed lines joined into one line per paragraph (LF line ends).

    Never raises; text that is not really flowed comes out with its lines as they were,
    except that a space-stuffed line loses its stuffing space, as the RFC says."""
    out: list[str] = []
    paragraph: list[str] = []
    depth = 0  # of the paragraph being joined
    for line in text.split("\n"):
        quotes, content = _quote_depth(line)
        if content.startswith(" "):
            content = content[1:]  # space-stuffing (or the space after the quote marks)
        if paragraph and quotes != depth:
            out.append(_line(depth, paragraph))  # a quote level changed mid-paragraph
            paragraph = []
        depth = quotes
        soft = content.endswith(" ") and content != SIGNATURE
        if soft and delsp:
            content = content[:-1]
        paragraph.append(content)
        if not soft:
            out.append(_line(depth, paragraph))
            paragraph = []
    if paragraph:
        out.append(_line(depth, paragraph))
    return "\n".join(out)


def _quote_depth(line: str) -> tuple[int, str]:
    """The quote depth and the rest of the line. The RFC counts the leading `>`; a space
    between two of them (`> > text`, as many senders write) is read as part of the quote
    marks too, or a reply would come out with `>` in the middle of its paragraphs."""
    depth = i = 0
    end = len(line)
    while i < end:
        if line[i] == ">":
            depth += 1
        elif not (line[i] == " " and depth and i + 1 < end and line[i + 1] == ">"):
            break
        i += 1
    return depth, line[i:]


def _line(depth: int, parts: list[str]) -> str:
    text = "".join(parts)
    if not depth:
        return text
    return "> " * depth + text if text else ("> " * depth).rstrip()
