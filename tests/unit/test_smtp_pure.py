"""The pure parts of the SMTP backend: DATA payload, envelope addresses, AUTH choice."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuimail.backends.smtp import (
    RecipientStatus,
    SendResult,
    choose_mechanism,
    data_payload,
    envelope_address,
    needs_smtputf8,
    oauthbearer_initial,
)
from tuimail.errors import AuthError

# ----------------------------------------------------------------------------- DATA payload


def _unstuff(payload: bytes) -> bytes:
    """What a correct server stores: up to the first CRLF.CRLF, leading dots removed."""
    assert payload.endswith(b"\r\n.\r\n")
    body = payload[: -len(b".\r\n")]
    lines = body.split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"a", b"a\r\n.\r\n"),
        (b"a\n", b"a\r\n.\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b"a\rb", b"a\r\nb\r\n.\r\n"),
        (b".", b"..\r\n.\r\n"),
        (b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),  # the classic smuggling sequence
        (b"a\r\n.\r\nMAIL FROM:<x@y>", b"a\r\n..\r\nMAIL FROM:<x@y>\r\n.\r\n"),
        (b"a\r.\rb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"..x\n", b"...x\r\n.\r\n"),
        (b"", b"\r\n.\r\n"),
        (b"x\r\n\r\n", b"x\r\n\r\n.\r\n"),
    ],
)
def test_data_payload_table(raw: bytes, expected: bytes) -> None:
    assert data_payload(raw) == expected


_line_bits = st.sampled_from([b"\r", b"\n", b"\r\n", b".", b"..", b"a", b" ", b"\x00", b"\xff"])


@given(st.lists(_line_bits, max_size=40).map(b"".join))
def test_data_payload_ends_only_at_the_terminator(raw: bytes) -> None:
    payload = data_payload(raw)
    # The first end-of-data a server (strict or lenient about bare LF/CR) could see is the end.
    assert payload.index(b"\r\n.\r\n") == len(payload) - 5 or payload == b"\r\n.\r\n"
    assert not re.search(rb"\r(?!\n)|(?<!\r)\n", payload), "no bare CR or LF on the wire"
    for lenient_end in (b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n"):
        assert lenient_end not in payload[:-3]


@given(st.lists(_line_bits, max_size=40).map(b"".join))
def test_data_payload_round_trips(raw: bytes) -> None:
    normalized = re.sub(rb"\r\n|\r|\n", b"\r\n", raw)
    if not normalized.endswith(b"\r\n"):
        normalized += b"\r\n"
    assert _unstuff(data_payload(raw)) == normalized


# ----------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("address", "utf8", "expected"),
    [
        ("a@example.com", False, "a@example.com"),
        ("a@bücher.example", False, "a@xn--bcher-kva.example"),
        ("a@bücher.example", True, "a@bücher.example"),
        ("jörg@example.com", True, "jörg@example.com"),
        ("", False, ""),
    ],
)
def test_envelope_address(address: str, utf8: bool, expected: str) -> None:
    assert envelope_address(address, utf8) == expected


@pytest.mark.parametrize(
    "address",
    ["jörg@example.com", "a b@example.com", "a@example.com>", "a@x\r\nRCPT TO:<b@y>", "a\x00@x"],
)
def test_envelope_address_refuses(address: str) -> None:
    with pytest.raises(ValueError):
        envelope_address(address, smtputf8=False)


def test_envelope_address_refuses_injection_even_with_smtputf8() -> None:
    with pytest.raises(ValueError):
        envelope_address("a@x>\r\nDATA", True)


@pytest.mark.parametrize(
    ("sender", "recipients", "raw", "expected"),
    [
        ("a@x.org", ["b@y.org"], b"Subject: hi\r\n\r\nbody", False),
        ("a@x.org", ["b@bücher.example"], b"Subject: hi\r\n\r\n", False),
        ("a@x.org", ["jörg@y.org"], b"Subject: hi\r\n\r\n", True),
        ("ü@x.org", ["b@y.org"], b"Subject: hi\r\n\r\n", True),
        ("a@x.org", ["b@y.org"], "Subject: grüße\r\n\r\n".encode(), True),
        ("a@x.org", ["b@y.org"], "Subject: hi\r\n\r\ngrüße".encode(), False),  # 8-bit body only
        ("a@x.org", ["b@y.org"], "Subject: hi\n\ngrüße".encode(), False),
    ],
)
def test_needs_smtputf8(sender: str, recipients: list[str], raw: bytes, expected: bool) -> None:
    assert needs_smtputf8(sender, recipients, raw) is expected


# ----------------------------------------------------------------------------- AUTH


@pytest.mark.parametrize(
    ("configured", "offered", "token", "expected"),
    [
        ("auto", ["plain", "login"], False, "plain"),
        ("auto", ["LOGIN"], False, "login"),
        ("auto", ["cram-md5"], False, "cram-md5"),
        ("auto", [], False, ""),
        ("auto", ["plain", "xoauth2"], True, "xoauth2"),
        ("auto", ["oauthbearer"], True, "oauthbearer"),
        ("login", ["plain", "login"], False, "login"),
        ("xoauth2", ["xoauth2"], True, "xoauth2"),
    ],
)
def test_choose_mechanism(configured: str, offered: list[str], token: bool, expected: str) -> None:
    assert choose_mechanism(configured, offered, token) == expected


@pytest.mark.parametrize(
    ("configured", "offered", "token"),
    [
        ("plain", ["login"], False),
        ("login", [], False),
        ("auto", ["gssapi"], False),
        ("auto", ["plain", "login"], True),  # a token cannot be sent as a password
    ],
)
def test_choose_mechanism_refuses(configured: str, offered: list[str], token: bool) -> None:
    with pytest.raises(AuthError):
        choose_mechanism(configured, offered, token)


def test_oauthbearer_initial_response() -> None:
    decoded = base64.b64decode(
        oauthbearer_initial("me,x=y@example.com", "tok", "smtp.example", 587)
    )
    assert decoded == (
        b"n,a=me=2Cx=3Dy@example.com,\x01host=smtp.example\x01port=587\x01auth=Bearer tok\x01\x01"
    )


# ----------------------------------------------------------------------------- results


def _rcpt(addr: str, code: int) -> RecipientStatus:
    return RecipientStatus(addr, code, "text")


@pytest.mark.parametrize(
    ("result", "delivered", "transient"),
    [
        (SendResult("done", 250, "ok", (_rcpt("a@x", 250),)), True, False),
        (SendResult("MAIL", 451, "later"), False, True),
        (SendResult("MAIL", 553, "no"), False, False),
        (SendResult("RCPT", 450, "busy", (_rcpt("a@x", 250), _rcpt("b@x", 450))), False, True),
        (SendResult("RCPT", 550, "no", (_rcpt("a@x", 450), _rcpt("b@x", 550))), False, False),
        (SendResult("DATA", 452, "full", (_rcpt("a@x", 250),)), False, True),
        (SendResult("DATA", 554, "spam", (_rcpt("a@x", 250),)), False, False),
    ],
)
def test_result_classification(result: SendResult, delivered: bool, transient: bool) -> None:
    assert result.delivered is delivered
    assert result.transient is transient


def test_describe_names_every_refused_recipient() -> None:
    result = SendResult(
        "RCPT",
        550,
        "no",
        (
            _rcpt("ok@x", 250),
            RecipientStatus("bad@x", 550, "5.1.1 no\r\nsuch user"),
            _rcpt("b@x", 450),
        ),
    )
    text = result.describe()
    assert "bad@x: 550 5.1.1 no such user" in text
    assert "b@x: 450" in text
    assert "ok@x" not in text
    assert "nobody" in text
