"""`index_parts` (the store's cheap parse) agrees with `parse_message` on what it returns."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuimail.mail.parse import index_parts, parse_message, preview

MIXED = (
    b"From: A <a@example.org>\r\nSubject: hi\r\nMessage-ID: <1@x>\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello there\r\nline 2\r\n"
    b'--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="x.pdf"'
    b"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b--\r\n"
)
RELATED = (
    b'Content-Type: multipart/related; boundary="r"\r\n\r\n'
    b"--r\r\nContent-Type: text/html\r\n\r\n<p>Hi <img src=cid:i></p>\r\n"
    b"--r\r\nContent-Type: image/png\r\nContent-ID: <i>\r\n\r\nxx\r\n--r--\r\n"
)
LATIN = b"Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ncaf\xe9\r\n"
EIGHT_BIT_HEADER = b"Subject: caf\xe9\r\n\r\nbody\r\n"


def _lf(text: str | None) -> str | None:
    return None if text is None else text.replace("\r\n", "\n").replace("\r", "\n")


@pytest.mark.parametrize("raw", [MIXED, RELATED, LATIN, EIGHT_BIT_HEADER, b"", b"\r\n\r\n"])
def test_agrees_with_parse_message(raw: bytes) -> None:
    full, cheap = parse_message(raw), index_parts(raw)
    assert cheap.envelope == full.envelope
    assert _lf(cheap.text_plain) == full.text_plain
    assert _lf(cheap.text_html) == full.text_html
    assert cheap.has_attachments == full.has_attachments
    assert cheap.warnings == full.warnings


def test_attachments_and_warnings() -> None:
    assert index_parts(MIXED).has_attachments
    assert not index_parts(RELATED).has_attachments  # an inline image of the HTML body
    assert any("charset" in w for w in index_parts(LATIN).warnings)
    assert "raw 8-bit bytes in headers" in index_parts(EIGHT_BIT_HEADER).warnings


def test_text_parts_stop_after_max_text() -> None:
    parts = b"".join(
        b"--b\r\nContent-Type: text/plain\r\n\r\n" + b"word " * 100 + b"\r\n" for _ in range(50)
    )
    raw = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + parts + b"--b--\r\n"
    text = index_parts(raw, max_text=1000).text_plain
    assert text is not None and 1000 <= len(text) < 1600


_body = st.text(st.sampled_from("ab c\r\n\t>-é€"), max_size=300)


@settings(max_examples=200, deadline=None)
@given(_body, st.sampled_from(["text/plain", "text/html", "application/octet-stream"]))
def test_single_part_property(body: str, ctype: str) -> None:
    raw = f"Subject: s\r\nContent-Type: {ctype}; charset=utf-8\r\n\r\n{body}".encode()
    full, cheap = parse_message(raw), index_parts(raw)
    assert _lf(cheap.text_plain) == full.text_plain
    assert _lf(cheap.text_html) == full.text_html
    assert cheap.has_attachments == full.has_attachments


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_preview_collapses_whitespace_like_a_regex(text: str) -> None:
    # preview() uses str.split(); the old form was re.sub(r"\s+", " ", ...): same output.
    out = preview(text)
    assert "  " not in out
    assert out == out.strip()
    assert not re.search(r"\s\s", out)
