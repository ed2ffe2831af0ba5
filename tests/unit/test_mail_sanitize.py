"""sanitize: nothing from a message reaches the terminal as a control sequence."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuimail.mail.sanitize import (
    escape_markup,
    safe_filename,
    sanitize_line,
    sanitize_text,
)

# Characters that must never survive, whatever the mode.
FORBIDDEN_ALWAYS = (
    {chr(c) for c in range(0x20) if c not in (0x09, 0x0A)}
    | {"\x7f"}
    | {chr(c) for c in range(0x80, 0xA0)}
    | set("\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e")
    | set("\u2060\u2066\u2067\u2068\u2069\ufeff\u180e\u2028\u2029")
)


def bad_chars(out: str, *, text: bool) -> set[str]:
    found = {c for c in out if c in FORBIDDEN_ALWAYS}
    if not text:
        found |= {c for c in out if c in "\t\n"}
    found |= {c for c in out if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")} - (
        {"\t", "\n"} if text else set()
    )
    return found


LINE_CASES = [
    ("plain", "plain"),
    ("", ""),
    ("tab\there", "tab here"),
    ("crlf\r\nthere", "crlf there"),
    ("lf\nthere", "lf there"),
    ("cr\rthere", "cr there"),
    ("esc \x1b[31mred", "esc ⟦U+001B⟧[31mred"),
    ("csi \x9b2J", "csi ⟦U+009B⟧2J"),
    ("nul\x00", "nul⟦U+0000⟧"),
    ("bell\x07", "bell⟦U+0007⟧"),
    ("del\x7f", "del⟦U+007F⟧"),
    ("rlo \u202egnp.exe", "rlo ⟦U+202E⟧gnp.exe"),
    ("isolate \u2066x\u2069", "isolate ⟦U+2066⟧x⟦U+2069⟧"),
    ("lrm\u200e rlm\u200f alm\u061c", "lrm⟦U+200E⟧ rlm⟦U+200F⟧ alm⟦U+061C⟧"),
    ("zw\u200bsp", "zw⟦U+200B⟧sp"),
    ("pay\u200dpal", "pay⟦U+200D⟧pal"),
    ("bom\ufeff", "bom⟦U+FEFF⟧"),
    ("mvs\u180e", "mvs⟦U+180E⟧"),
    ("wj\u2060", "wj⟦U+2060⟧"),
    ("tag\U000e0041", "tag⟦U+E0041⟧"),
    ("hangul\u3164filler", "hangul⟦U+3164⟧filler"),
    ("soft\u00adhyphen", "softhyphen"),
    ("lone \ud800 surrogate", "lone \ufffd surrogate"),
    ("nonchar \uffff \U0001fffe", "nonchar \ufffd \ufffd"),
    ("ls\u2028ps\u2029", "ls ps "),
    ("vt\x0bff\x0c", "vt ff "),
    ("emoji 😀 kanji 漢字 rtl שלום", "emoji 😀 kanji 漢字 rtl שלום"),
    ("private \ue000", "private \ue000"),
    ("already ⟦U+202E⟧", "already ⟦U+202E⟧"),
    ("[b]markup[/b] [@click=app.quit]", "[b]markup[/b] [@click=app.quit]"),
]


@pytest.mark.parametrize(("raw", "expected"), LINE_CASES)
def test_sanitize_line_table(raw: str, expected: str) -> None:
    assert sanitize_line(raw) == expected


TEXT_CASES = [
    ("a\nb", "a\nb"),
    ("a\r\nb\r\n", "a\nb\n"),
    ("a\rb", "a\nb"),
    ("a\r\r\nb", "a\n\nb"),
    ("tab\tkept", "tab\tkept"),
    ("ff\x0cvt\x0b", "ff\nvt\n"),
    ("ls\u2028ps\u2029", "ls\nps\n"),
    ("esc\x1b]0;title\x07", "esc⟦U+001B⟧]0;title⟦U+0007⟧"),
    ("c1 \x85 nel", "c1 ⟦U+0085⟧ nel"),
    ("rlo\u202e\n", "rlo⟦U+202E⟧\n"),
    ("", ""),
]


@pytest.mark.parametrize(("raw", "expected"), TEXT_CASES)
def test_sanitize_text_table(raw: str, expected: str) -> None:
    assert sanitize_text(raw) == expected


def test_every_control_format_and_separator_code_point_is_handled() -> None:
    """The hard-coded table covers every Cc/Cf/Cs/Zl/Zp of this Python's Unicode database."""
    missed = []
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            continue
        if ch in sanitize_line(ch) or (ch not in "\t\n" and ch in sanitize_text(ch)):
            missed.append(f"U+{cp:04X}")
    assert missed == []


def test_non_str_input_does_not_raise() -> None:
    assert sanitize_line(None) == ""  # type: ignore[arg-type]
    assert sanitize_text(None) == ""  # type: ignore[arg-type]


# Text that favours the interesting characters, plus arbitrary code points.
interesting = st.sampled_from(
    sorted(FORBIDDEN_ALWAYS)
    + list("\t\n\r\u00ad\ud800\udfff\uffff\U000e0001 ⟦⟧[]\\")
    + ["\r\n", "\x1b[31m", "⟦U+202E⟧"]
)
hostile_text = st.lists(st.one_of(interesting, st.characters(), st.text(max_size=5))).map("".join)


@settings(max_examples=120, deadline=None)
@given(hostile_text)
def test_sanitize_line_properties(s: str) -> None:
    out = sanitize_line(s)
    assert bad_chars(out, text=False) == set()
    assert sanitize_line(out) == out


@settings(max_examples=120, deadline=None)
@given(hostile_text)
def test_sanitize_text_properties(s: str) -> None:
    out = sanitize_text(s)
    assert bad_chars(out, text=True) == set()
    assert "\r" not in out
    assert sanitize_text(out) == out
    # A body's line structure survives: one LF per line break of the input.
    assert out.count("\n") >= s.count("\n")


MARKUP_SAMPLES = [
    "[b]x[/b]",
    "a [1] b",
    "[$x]",
    "\\[b]",
    "[@click=app.quit]q[/]",
    "[[b]",
    "[ b]",
    "[B]",
    "[link='https://evil']click[/link]",
    "\\\\[b]\\x",
    "]]][[[",
    "C:\\",
]


def shown(s: str) -> str:
    """What escape_markup promises to show: s itself, a trailing backslash as U+29F5."""
    return s[:-1] + "\u29f5" if s.endswith("\\") else s


@pytest.mark.parametrize("s", MARKUP_SAMPLES)
def test_escape_markup_round_trips_through_textual(s: str) -> None:
    from textual.markup import to_content

    content = to_content(escape_markup(s))
    assert content.plain == shown(s)
    assert not content.spans


@settings(max_examples=120, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("[]\\/@=$#ab bold:; ")), max_size=30))
def test_escape_markup_property_textual(s: str) -> None:
    from textual.markup import to_content

    content = to_content(escape_markup(s))
    assert content.plain == shown(s)
    assert not content.spans
    # Inside real markup the escaped text can neither open/close tags nor break the markup.
    wrapped = to_content(f"[b]{escape_markup(s)}[/b] tail")
    assert wrapped.plain == shown(s) + " tail"
    assert len(wrapped.spans) <= 1


FILENAME_CASES = [
    ("report.pdf", "report.pdf"),
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
    ("/absolute/path.txt", "path.txt"),
    (".bashrc", "bashrc"),
    ("..", "attachment"),
    ("", "attachment"),
    ("evil\x1b[31m.txt", "evil[31m.txt"),
    ("photo\u202egpj.exe", "photogpj.exe"),
    ("con", "attachment"),
    ("CON.txt", "attachment.txt"),
    ('a:b*c?"d<e>f|g', "abcdefg"),
    ("trailing dots...", "trailing dots"),
    ("x" * 300 + ".pdf", "x" * 196 + ".pdf"),
    ("é" * 150, "é" * 100),
]


@pytest.mark.parametrize(("raw", "expected"), FILENAME_CASES)
def test_safe_filename_table(raw: str, expected: str) -> None:
    assert safe_filename(raw) == expected


@settings(max_examples=120, deadline=None)
@given(hostile_text)
def test_safe_filename_properties(s: str) -> None:
    out = safe_filename(s)
    assert out
    assert "/" not in out and "\\" not in out and "\x00" not in out
    assert not out.startswith(".")
    assert out not in (".", "..")
    assert len(out.encode("utf-8")) <= 200
    assert bad_chars(out, text=False) == set()
