"""Sender spoofing through RFC 2047 tricks and malformed address headers.

Oracle for every row:
- the addresses tuimail shows (the envelope's From/Sender/Reply-To, which the viewer, the
  list and a reply all use) are exactly the ones the raw header structure names: an encoded
  word can add a display name, never an address;
- nothing decoded from an encoded word becomes a header of its own (no injected Bcc/To);
- no address or name carries a control character (NUL, CR, LF, ESC...), and what the viewer
  prints for them (`sanitize_line`) is terminal-safe;
- where a display name shows an address other than the real one, or a message names
  several senders, the phishing signs say so.
"""

# ruff: noqa: E501  (one case per row)
from __future__ import annotations

import base64

import pytest
from adversarial_support import assert_terminal_safe

from tuimail.mail.parse import parse_message
from tuimail.mail.phishing import SimpleCorrespondents, assess
from tuimail.mail.sanitize import sanitize_line
from tuimail.models import Address

BANK = "ceo@bank.example"
EVIL = "evil@evil.example"


def b64(text: str, charset: str = "utf-8") -> str:
    return f"=?{charset}?b?{base64.b64encode(text.encode(charset)).decode()}?="


ESC, BEL, NUL, CR, LF = "\x1b", "\x07", "\x00", "\r", "\n"
OSC8 = f"{ESC}]8;;https://bank.example/{BEL}Bank{ESC}]8;;{BEL}"

# (id, header lines, addresses From must hold exactly, sign expected or None)
# fmt: off
CASES: list[tuple[str, str, tuple[str, ...], str | None]] = [
    ("q-encoded address in name", f"From: =?utf-8?q?ceo=40bank.example?= <{EVIL}>", (EVIL,), "display-name-address"),
    ("b-encoded name and angle addr", f"From: {b64(f'Bank <{BANK}>')} <{EVIL}>", (EVIL,), "display-name-address"),
    ("encoded angle brackets", f"From: =?utf-8?q?=3Cceo=40bank.example=3E?= <{EVIL}>", (EVIL,), "display-name-address"),
    ("encoded comma and brackets", f"From: =?utf-8?q?a=3E=2C_ceo=40bank.example_=3C?= <{EVIL}>", (EVIL,), "display-name-address"),
    ("encoded NUL then address", f"From: {b64(f'Bank{NUL}{BANK}')} <{EVIL}>", (EVIL,), "display-name-address"),
    ("encoded CRLF Bcc injection", f"From: {b64(f'{BANK}{CR}{LF}Bcc: v@x.example')} <{EVIL}>", (EVIL,), "display-name-address"),
    ("encoded LF CR To injection", f"From: =?utf-8?q?x?= =?utf-8?q?=0A=0DTo:_v=40x.example?= <{EVIL}>", (EVIL,), None),
    ("encoded bare CR", f"From: {b64(f'Bank{CR}Reply-To: {BANK}')} <{EVIL}>", (EVIL,), "display-name-address"),
    ("UTF-16 address in name", f"From: {b64(BANK + NUL, 'utf-16')} <{EVIL}>", (EVIL,), "display-name-address"),
    ("quoted encoded NUL", f'From: "=?utf-8?q?a=00b?=" <{EVIL}>', (EVIL,), None),
    ("encoded OSC 8 hyperlink", f"From: {b64(OSC8)} <{EVIL}>", (EVIL,), None),
    ("encoded bidi override", f"From: =?utf-8?q?=E2=80=AEelpmaxe.knab=40oec?= <{EVIL}>", (EVIL,), None),
    ("encoded word as local part", "From: =?utf-8?q?ceo=40bank.example?=@evil.example", ("=?utf-8?q?ceo=40bank.example?=@evil.example",), None),
    ("encoded word in angle addr", "From: <=?utf-8?q?ceo=40bank.example?=>", ("=?utf-8?q?ceo=40bank.example?=",), None),
    ("encoded word as address", f"From: {b64(BANK)}", (b64(BANK),), None),
    ("encoded word as domain", "From: ceo@=?utf-8?q?bank.example?=", ("ceo@=?utf-8?q?bank.example?=",), None),
    ("address in comment", f"From: {EVIL} ({BANK})", (EVIL,), "display-name-address"),
    ("address in quoted name", f'From: "{BANK} <{BANK}>" <{EVIL}>', (EVIL,), "display-name-address"),
    ("group named like an address", f'From: "{BANK}" : {EVIL};', (EVIL,), None),
    ("source route", f"From: <@bank.example:{EVIL}>", (EVIL,), None),
    ("raw NUL in name", f"From: Bank{NUL} <{EVIL}>", (EVIL,), None),
    ("raw NUL inside addr-spec", f"From: <{EVIL}{NUL}{BANK}>", (EVIL + BANK,), None),
    ("raw ESC in name", f"From: {ESC}[2J{ESC}[31mBank <{EVIL}>", (EVIL,), None),
    ("two addresses, one header", f"From: {BANK}, {EVIL}", (BANK, EVIL), "multiple-from"),
    ("two angle addresses", f"From: Bank <{BANK}> <{EVIL}>", (BANK, EVIL), "multiple-from"),
    ("two From headers", f"From: {BANK}\r\nFrom: {EVIL}", (BANK, EVIL), "multiple-from"),
    ("folded second mailbox", f"From: Bank <{BANK}>,\r\n Evil <{EVIL}>", (BANK, EVIL), "multiple-from"),
    ("Sender differs", f"Sender: {BANK}\r\nFrom: {EVIL}", (EVIL,), "sender"),
    ("Reply-To encoded address", f"From: {EVIL}\r\nReply-To: =?utf-8?q?=3Cceo=40bank.example=3E?= <{EVIL}>", (EVIL,), None),
]
# fmt: on


def _raw(headers: str) -> bytes:
    return f"{headers}\r\nTo: me@me.example\r\nSubject: hello\r\n\r\nbody\r\n".encode()


def _header_names_in_raw(raw: bytes) -> set[str]:
    names = set()
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line[:1] not in (b" ", b"\t") and b":" in line:
            names.add(line.split(b":", 1)[0].decode("latin-1").strip().lower())
    return names


@pytest.mark.parametrize(
    ("headers", "addresses", "sign"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_sender_spoofing(headers: str, addresses: tuple[str, ...], sign: str | None) -> None:
    raw = _raw(headers)
    parsed = parse_message(raw)
    env = parsed.envelope

    # Exactly the structural addresses, and nothing decoded became one.
    assert tuple(a.addr for a in env.from_) == addresses
    everyone = env.from_ + env.sender + env.reply_to
    if BANK not in addresses:  # where a reply goes: never to an address only decoded text named
        assert BANK not in {a.addr.casefold() for a in env.from_ + env.reply_to}

    # No header appeared that the raw bytes did not have (encoded CR/LF split nothing).
    assert {n.lower() for n, _ in parsed.headers} <= _header_names_in_raw(raw)

    for address in everyone:
        for part in (address.name, address.addr):
            assert not any(c in part for c in "\x00\r\n"), address
        shown = sanitize_line(str(address))
        assert_terminal_safe(shown, single_line=True, what="displayed address")
        assert address.addr in str(address)  # the real address is always part of what is shown

    found = {s.kind for s in assess(parsed, known_correspondents=SimpleCorrespondents())}
    if sign is not None:
        assert sign in found, found


def test_reply_goes_where_the_viewer_says() -> None:
    """A reply's recipients are the envelope's Reply-To (else From) addresses: the same
    objects the viewer shows, so no decoding difference can separate them."""
    parsed = parse_message(_raw(f"From: {b64(f'Bank <{BANK}>')} <{EVIL}>"))
    reply_to = parsed.envelope.reply_to or parsed.envelope.from_
    assert [a.addr for a in reply_to] == [EVIL]
    assert reply_to == (Address("Bank <ceo@bank.example>", EVIL),)
