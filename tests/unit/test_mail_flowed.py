"""format=flowed (RFC 3676): soft line breaks joined, quotes and signatures kept."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuimail.mail.flowed import is_flowed, unflow
from tuimail.mail.parse import parse_message


@pytest.mark.parametrize(
    ("text", "delsp", "expected"),
    [
        # Soft breaks (a line ending with a space) join; a hard break ends the paragraph.
        ("one two \nthree\nfour", False, "one two three\nfour"),
        ("a \nb \nc\n\nd", False, "a b c\n\nd"),
        # DelSp=yes: the space before a soft break was added by the sender, not typed.
        ("Donau\u00addampf \nschiff", True, "Donau\u00addampfschiff"),
        ("long \nword", True, "longword"),
        # Space-stuffing is taken away (the sender stuffed lines starting with a space,
        # "From " or ">").
        ("  indented\n From here\n >not quoted", False, " indented\nFrom here\n>not quoted"),
        # Quoted paragraphs join at their depth, written "> " per level.
        ("> quoted \n> text\n>> deeper \n>> too\n", False, "> quoted text\n> > deeper too\n"),
        ("> > spaced \n> > quotes", False, "> > spaced quotes"),
        # Empty quoted lines stay empty at their depth.
        (">\n>>\n> a", False, ">\n> >\n> a"),
        # A change of depth ends the paragraph even after a soft break.
        ("> soft \nplain", False, "> soft \nplain"),
        # The signature separator ends with a space but never flows.
        ("bye \n-- \nAlice", False, "bye -- \nAlice"),
        ("bye\n-- \nAlice", False, "bye\n-- \nAlice"),
        # A soft break on the last line has nothing to join.
        ("end ", False, "end "),
        ("", False, ""),
    ],
)
def test_unflow_table(text: str, delsp: bool, expected: str) -> None:
    assert unflow(text, delsp) == expected


@given(st.lists(st.text(alphabet="abc xyz.,\u00e9\u4e2d", max_size=30), max_size=8))
def test_fixed_text_passes_unchanged(lines: list[str]) -> None:
    # Lines without trailing spaces, leading spaces or quote marks: nothing to do.
    fixed = [line.strip() for line in lines]
    assert unflow("\n".join(fixed)) == "\n".join(fixed)


@given(
    st.lists(st.text(alphabet="abcdefg.,\u00e9", min_size=1, max_size=12), min_size=1),
    st.integers(min_value=0, max_value=3),
)
def test_a_paragraph_cut_after_each_space_joins_back(words: list[str], depth: int) -> None:
    # What a flowing sender does: a soft break after a space, each line under the quote marks.
    paragraph = " ".join(words)
    marks = ">" * depth + " " if depth else ""
    flowed = "\n".join(marks + w + " " for w in words[:-1])
    flowed += ("\n" if len(words) > 1 else "") + marks + words[-1]
    assert unflow(flowed) == "> " * depth + paragraph


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, (False, False)),
        ({"format": "fixed"}, (False, False)),
        ({"format": "Flowed"}, (True, False)),
        ({"format": "flowed", "delsp": "YES"}, (True, True)),
        ({"format": "fixed", "delsp": "yes"}, (False, False)),
    ],
)
def test_is_flowed(params: dict[str, str], expected: tuple[bool, bool]) -> None:
    assert is_flowed(params) == expected


def test_parse_joins_flowed_text_parts_only() -> None:
    body = "First line of a \r\nlong paragraph.\r\n\r\n> quoted \r\n> reply\r\n"
    flowed = (
        "From: a@example.org\r\nSubject: s\r\n"
        "Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n" + body
    ).encode()
    fixed = ("From: a@example.org\r\nSubject: s\r\n\r\n" + body).encode()
    assert parse_message(flowed).text_plain == (
        "First line of a long paragraph.\n\n> quoted reply\n"
    )
    assert parse_message(fixed).text_plain == body.replace("\r\n", "\n")
