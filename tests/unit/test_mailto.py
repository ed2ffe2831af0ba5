"""mailto: links become drafts; fields that would attach files are dropped."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuimail.errors import UsageError
from tuimail.mail.mailto import parse_mailto
from tuimail.models import Address


@pytest.mark.parametrize(
    ("url", "to", "cc", "subject", "body", "dropped"),
    [
        ("mailto:ann@example.org", ["ann@example.org"], [], "", "", ()),
        (
            "MAILTO:ann@example.org,bob@example.org?subject=Hi%20there",
            ["ann@example.org", "bob@example.org"],
            [],
            "Hi there",
            "",
            (),
        ),
        (
            "mailto:?to=ann@example.org&cc=c@example.org&body=line1%0D%0Aline2",
            ["ann@example.org"],
            ["c@example.org"],
            "",
            "line1\nline2",
            (),
        ),
        (
            "mailto:ann@example.org?attach=/etc/passwd&Attachment=~/.ssh/id_rsa&subject=x",
            ["ann@example.org"],
            [],
            "x",
            "",
            ("attach", "attachment"),
        ),
        (
            "mailto:ann@example.org?subject=a%0D%0ABcc:%20evil@example.com",
            ["ann@example.org"],
            [],
            "a Bcc: evil@example.com",
            "",
            (),
        ),
        (
            "mailto:ann@example.org?subject=%1B%5B31mred",
            ["ann@example.org"],
            [],
            "␛[31mred",
            "",
            (),
        ),
        ("mailto:ann@example.org?subject=1+1", ["ann@example.org"], [], "1+1", "", ()),
        (
            "mailto:ann@example.org?X-Evil=1&from=boss@example.com",
            ["ann@example.org"],
            [],
            "",
            "",
            ("x-evil", "from"),
        ),
    ],
)
def test_parse_mailto(
    url: str, to: list[str], cc: list[str], subject: str, body: str, dropped: tuple[str, ...]
) -> None:
    parsed = parse_mailto(url)
    assert [a.addr for a in parsed.draft.to] == to
    assert [a.addr for a in parsed.draft.cc] == cc
    assert parsed.draft.body == body
    assert parsed.dropped == dropped
    assert "\n" not in parsed.draft.subject and "\r" not in parsed.draft.subject
    if subject != "␛[31mred":
        assert parsed.draft.subject == subject
    else:
        assert "\x1b" not in parsed.draft.subject


def test_name_in_mailto_is_kept() -> None:
    parsed = parse_mailto("mailto:Ann%20Example%20%3Cann@example.org%3E")
    assert parsed.draft.to == (Address("Ann Example", "ann@example.org"),)


@pytest.mark.parametrize("url", ["mailto:not-an-address", "https://example.org", "mailto:a@b@c"])
def test_bad_links_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError):
        parse_mailto(url)


@given(st.text(max_size=200))
def test_never_raises_anything_but_usage_error(tail: str) -> None:
    try:
        parsed = parse_mailto("mailto:" + tail)
    except UsageError:
        return
    assert "\n" not in parsed.draft.subject
