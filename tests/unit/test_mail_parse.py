"""mail.parse / mail.addresses / mail.encoding: tolerant, bounded, never raising."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuimail.errors import NotFoundError
from tuimail.mail import addresses
from tuimail.mail import parse as parse_module
from tuimail.mail.addresses import parse_address_header
from tuimail.mail.encoding import decode_b64, decode_bytes, decode_words, parse_params
from tuimail.mail.parse import (
    body_preview,
    header_summary,
    message_ids,
    parse_date,
    parse_headers,
    parse_message,
    part_bytes,
    preview,
    split_header_block,
)
from tuimail.models import Address

CTRL = {chr(c) for c in range(0x20)} | {"\x7f"}


def msg(headers: str, body: str = "body\n") -> bytes:
    return (headers.strip("\n").replace("\n", "\r\n") + "\r\n\r\n" + body).encode("utf-8")


# --- dates ---------------------------------------------------------------------------------

PLUS2 = timezone(timedelta(hours=2))
DATE_CASES = [
    ("Mon, 15 Apr 2024 10:11:12 +0200", datetime(2024, 4, 15, 10, 11, 12, tzinfo=PLUS2)),
    ("15 Apr 2024 10:11:12 +0200", datetime(2024, 4, 15, 10, 11, 12, tzinfo=PLUS2)),
    ("Mon, 15 Apr 2024 10:11 +0200", datetime(2024, 4, 15, 10, 11, 0, tzinfo=PLUS2)),
    ("Mon, 15 Apr 2024 10:11:12 +0200 (CEST)", datetime(2024, 4, 15, 10, 11, 12, tzinfo=PLUS2)),
    ("Mon, 15 Apr 2024 10:11:12 -0000", datetime(2024, 4, 15, 10, 11, 12, tzinfo=UTC)),
    ("Mon, 15 Apr 2024 10:11:12", datetime(2024, 4, 15, 10, 11, 12, tzinfo=UTC)),
    ("Mon, 15 Apr 2024 10:11:12 GMT", datetime(2024, 4, 15, 10, 11, 12, tzinfo=UTC)),
    ("Mon,  15  Apr  2024  10:11:12  +0200", datetime(2024, 4, 15, 10, 11, 12, tzinfo=PLUS2)),
    (
        "15 Apr 24 10:11:12 EST",
        datetime(2024, 4, 15, 10, 11, 12, tzinfo=timezone(timedelta(hours=-5))),
    ),
    (
        "Mon, 15 Apr 2024 10:11:12 -0930",
        datetime(2024, 4, 15, 10, 11, 12, tzinfo=timezone(-timedelta(hours=9, minutes=30))),
    ),
    ("Mon, 15 Apr 2024 23:59:60 +0000", datetime(2024, 4, 15, 23, 59, 59, tzinfo=UTC)),
    ("2024-04-15T10:11:12+02:00", datetime(2024, 4, 15, 10, 11, 12, tzinfo=PLUS2)),
    ("2024-04-15 10:11:12", datetime(2024, 4, 15, 10, 11, 12, tzinfo=UTC)),
    ("", None),
    ("garbage", None),
    ("Mon, 31 Feb 2024 10:11:12 +0200", None),
    ("Mon, 15 Apr 2024 25:11:12 +0200", None),
    ("Mon, 15 Apr 2024 10:11:12 +9999", None),
    ("Mon, 15 Apr 99999 10:11:12 +0200", None),
    ("Mon, 15 Foo 2024 10:11:12 +0200", None),
    ("\x00\x00", None),
    ("9" * 10_000, None),
]


@pytest.mark.parametrize(("value", "expected"), DATE_CASES)
def test_parse_date_table(value: str, expected: datetime | None) -> None:
    got = parse_date(value)
    assert got == expected
    if got is not None:
        assert got.utcoffset() == expected.utcoffset()  # type: ignore[union-attr]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_parse_date_never_raises_and_is_aware(value: str) -> None:
    got = parse_date(value)
    assert got is None or got.tzinfo is not None


# --- Message-IDs ---------------------------------------------------------------------------

MSGID_CASES = [
    ("<a@b>", ("<a@b>",)),
    ("  <a@b>  ", ("<a@b>",)),
    ("<a@b> <c@d>", ("<a@b>", "<c@d>")),
    ("<a@b>\r\n\t<c@d>", ("<a@b>", "<c@d>")),
    ("<a@b> garbage (comment) <c@d> <a@b>", ("<a@b>", "<c@d>")),
    ("Your message of Mon, 1 Jan <x@y> at noon", ("<x@y>",)),
    ("<a @ b>", ("<a@b>",)),
    ("<<a@b>>", ("<a@b>",)),
    ("bare@id.example", ("<bare@id.example>",)),
    ("no ids here", ()),
    ("", ()),
    ("<>", ()),
]


@pytest.mark.parametrize(("value", "expected"), MSGID_CASES)
def test_message_ids_table(value: str, expected: tuple[str, ...]) -> None:
    assert message_ids(value) == expected


def test_message_ids_bounded_keeps_root_and_nearest() -> None:
    ids = message_ids(" ".join(f"<r{i}@x>" for i in range(5000)))
    assert len(ids) == 200
    assert ids[0] == "<r0@x>"
    assert ids[-1] == "<r4999@x>"


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>@ab \t\r\n()\"'")), max_size=40))
def test_message_ids_shape(value: str) -> None:
    for mid in message_ids(value):
        assert mid.startswith("<") and mid.endswith(">")
        assert not any(c.isspace() for c in mid)
        assert "<" not in mid[1:-1] and ">" not in mid[1:-1]


# --- addresses -----------------------------------------------------------------------------

A = Address
ADDRESS_CASES = [
    ("alice@example.org", (A("", "alice@example.org"),)),
    ("Alice Example <alice@example.org>", (A("Alice Example", "alice@example.org"),)),
    ('"Doe, Jane" <jane@example.org>', (A("Doe, Jane", "jane@example.org"),)),
    ("<alice@example.org>", (A("", "alice@example.org"),)),
    ("alice@example.org (Alice)", (A("Alice", "alice@example.org"),)),
    ("a@x, b@y", (A("", "a@x"), A("", "b@y"))),
    ("a@x,, ,b@y,", (A("", "a@x"), A("", "b@y"))),
    # The real address is what is shown and replied to, whatever the display name says.
    ('"ceo@bank.example" <evil@evil.example>', (A("ceo@bank.example", "evil@evil.example"),)),
    ("ceo@bank.example <evil@evil.example>", (A("ceo@bank.example", "evil@evil.example"),)),
    ("<evil@evil.example>@bank.example", (A("", "evil@evil.example"),)),
    ("alice@bank.example@evil.example", (A("", "alice@bank.example@evil.example"),)),
    # Encoded words are decoded in names only, after the structure is known.
    ("=?utf-8?q?J=C3=B6rg?= <j@x>", (A("Jörg", "j@x"),)),
    ("=?utf-8?q?a=2C_b_=3Cevil=40x=3E?= <real@x>", (A("a, b <evil@x>", "real@x"),)),
    ('"=?utf-8?q?J=C3=B6rg?=" <j@x>', (A("Jörg", "j@x"),)),
    ("=?utf-8?q?J=C3=B6?= =?utf-8?q?rg?= <j@x>", (A("Jörg", "j@x"),)),
    ("=?utf-8?b?QWxpY2UNCkJjYzogZXZpbEB4AA==?= <a@x>", (A("Alice Bcc: evil@x", "a@x"),)),
    ("=?utf-8?q?x=00y=0D=0Az?= <a@x>", (A("x y z", "a@x"),)),
    ('"quoted \\" escape" <a@x>', (A('quoted " escape', "a@x"),)),
    ('"John Doe"@example.org', (A("", '"John Doe"@example.org'),)),
    ("Group: a@x, B <b@y>;, c@z", (A("", "a@x"), A("B", "b@y"), A("", "c@z"))),
    ("undisclosed-recipients:;", ()),
    ("<@relay.example:user@host.example>", (A("", "user@host.example"),)),
    ("a @ example . org", (A("", "a@example.org"),)),
    ("x@y <z@w> <q@r>", (A("x@y", "z@w"), A("", "q@r"))),
    ("Name <>", ()),
    ("", ()),
    ("(unterminated comment a@b", ()),
    ('"unterminated quote <a@b>', ()),
    ("(" * 50_000 + "a@b", ()),
    ("\x00evil\x01@x", (A("", "evil@x"),)),
    ("Tab\tName <t@x>", (A("Tab Name", "t@x"),)),
]


@pytest.mark.parametrize(("value", "expected"), ADDRESS_CASES)
def test_parse_address_header_table(value: str, expected: tuple[Address, ...]) -> None:
    assert parse_address_header(value) == expected


address_text = st.lists(
    st.sampled_from([*'ab@.<>,;:"()\\ \t=?_-', "=?utf-8?q?x=0Ay?=", "\x00", "é"]),
    max_size=30,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(address_text)
def test_addresses_never_carry_controls(value: str) -> None:
    for a in parse_address_header.__wrapped__(value):
        assert a.addr
        assert not (set(a.addr) & CTRL)
        assert not (set(a.name) & {"\x00", "\r", "\n", "\t"})
        assert a.name == a.name.strip()


@settings(max_examples=300, deadline=None)
@given(address_text)
def test_fast_path_agrees_with_full_parser(value: str) -> None:
    fast = addresses._fast(value)
    if fast is None:
        return
    full = []
    for chunk in addresses.split_mailboxes(addresses.tokenize(value)):
        for name, addr in addresses._mailboxes(chunk):
            if addr:
                full.append(Address(addresses._norm_name(name), addr))
    assert fast == full


# --- encodings -----------------------------------------------------------------------------

WORD_CASES = [
    ("plain", "plain"),
    ("=?utf-8?q?caf=C3=A9?=", "café"),
    ("=?UTF-8?B?Y2Fmw6k=?=", "café"),
    ("=?utf-8?b?Y2Fmw6k?=", "café"),  # missing padding
    ("=?iso-8859-1?q?caf=E9?= au lait", "café au lait"),
    ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
    ("=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab"),
    ("=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"),
    ("=?utf-8?b?4oK=?= =?utf-8?b?rA==?=", "€"),  # a character split across two words
    ("=?utf-8*en?q?hi?=", "hi"),
    ("=?x-bogus?q?caf=E9?=", "café"),
    ("=?utf-8?x?unknown?=", "=?utf-8?x?unknown?="),
    ("=?utf-8?q?a_b?=", "a b"),
    ("=?utf-8?q?nul=00cr=0Dlf=0A?=", "nul\x00cr\rlf\n"),
    ("=?punycode?q?abc?=", "abc"),
    ("=??q?x?=", "=??q?x?="),  # no charset: not an encoded word
]


@pytest.mark.parametrize(("value", "expected"), WORD_CASES)
def test_decode_words_table(value: str, expected: str) -> None:
    assert decode_words(value) == expected


CHARSET_CASES = [
    (b"caf\xc3\xa9", "utf-8", "café", True),
    (b"caf\xe9", "iso-8859-1", "café", True),
    (b"\x93quotes\x94 \x80", "iso-8859-1", "\u201cquotes\u201d €", True),  # really cp1252
    (b"caf\xe9", "utf-8", "café", False),  # mislabelled 8-bit text
    (b"caf\xe9", "x-bogus", "café", False),
    (b"caf\xc3\xa9", None, "café", True),
    (b"caf\xe9", "us-ascii", "café", True),
    (b"\xff\xfeh\x00i\x00", "utf-16", "hi", True),
    (b"\x1b$B2q5D\x1b(B", "iso-2022-jp", "会議", True),
    (b"\xb0\xa1", "gb2312", "啊", True),
    (b"abc", "punycode", "abc", False),
    (b"abc", "rot13", "abc", False),
    (b"abc", '"utf-8"', "abc", True),
    (b"abc", "x" * 100, "abc", False),
]


@pytest.mark.parametrize(("data", "charset", "text", "clean"), CHARSET_CASES)
def test_decode_bytes_table(data: bytes, charset: str | None, text: str, clean: bool) -> None:
    assert decode_bytes(data, charset) == (text, clean)


B64_CASES = [
    (b"aGVsbG8=", b"hello", True),
    (b"aGVs\r\nbG8=\r\n", b"hello", True),
    (b"aGVsbG8", b"hello", False),
    (b"aGVs!!bG8=", b"hello", False),
    (b"aGVsbG8===", b"hello", False),
    (b"a", b"", False),
    (b"", b"", True),
]


@pytest.mark.parametrize(("data", "expected", "clean"), B64_CASES)
def test_decode_b64_table(data: bytes, expected: bytes, clean: bool) -> None:
    assert decode_b64(data) == (expected, clean)


PARAM_CASES = [
    ("text/plain", "text/plain", {}),
    ('Text/HTML; Charset="UTF-8"', "text/html", {"charset": "UTF-8"}),
    ('multipart/mixed; boundary="a;b=c"', "multipart/mixed", {"boundary": "a;b=c"}),
    ("attachment; filename*=UTF-8''%C3%A9t%C3%A9.pdf", "attachment", {"filename": "été.pdf"}),
    ("attachment; filename*=''plain.txt", "attachment", {"filename": "plain.txt"}),
    (
        "attachment; filename*0*=utf-8''..%2F..%2F; filename*1=\"etc/passwd\"",
        "attachment",
        {"filename": "../../etc/passwd"},
    ),
    (
        'attachment; filename*1="b.txt"; filename*0="a"',
        "attachment",
        {"filename": "ab.txt"},
    ),
    ('attachment; filename="=?utf-8?q?caf=C3=A9.txt?="', "attachment", {"filename": "café.txt"}),
    ('attachment; filename="a\\"b.txt"', "attachment", {"filename": 'a"b.txt'}),
    ('attachment; filename="line=0Abreak"', "attachment", {"filename": "line=0Abreak"}),
    (
        'attachment; filename="=?utf-8?q?evil=0D=0Aname?="',
        "attachment",
        {"filename": "evil name"},
    ),
    ("attachment; filename*=utf-8''%00nul", "attachment", {"filename": " nul"}),
    ('inline; filename="unterminated', "inline", {"filename": "unterminated"}),
    ("attachment; =novalue; noequals; FILENAME=Upper.TXT", "attachment", {"filename": "Upper.TXT"}),
]


@pytest.mark.parametrize(("value", "main", "params"), PARAM_CASES)
def test_parse_params_table(value: str, main: str, params: dict[str, str]) -> None:
    assert parse_params(value) == (main, params)


# --- header blocks -------------------------------------------------------------------------

SPLIT_CASES = [
    (b"A: b\r\n\r\nbody", (6, 8)),
    (b"A: b\n\nbody", (5, 6)),
    (b"A: b\r\nC: d\r\n", (12, 12)),
    (b"\r\nbody", (0, 2)),
    (b"\nbody", (0, 1)),
    (b"not a header line\n\nbody", (0, 0)),
    (b"From a@b Mon Jan 1 00:00:00 2024\nA: b\n\nx", (38, 39)),
    (b"", (0, 0)),
]


@pytest.mark.parametrize(("raw", "expected"), SPLIT_CASES)
def test_split_header_block_table(raw: bytes, expected: tuple[int, int]) -> None:
    assert split_header_block(raw) == expected


def test_parse_headers_reads_only_the_header_block() -> None:
    raw = msg("From: a@x\nSubject: real", "From: evil@x\nSubject: fake\n")
    env = parse_headers(raw)
    assert env.from_ == (A("", "a@x"),)
    assert env.subject == "real"


def test_parse_headers_folding_case_and_spacing() -> None:
    raw = msg(
        "FROM: a@x\nsubject\t :  folded\n   subject line\nTo: b@x,\n c@x\n"
        "References: <r1@x>\n\t<r2@x>\nX-From: not@this\nMessage-Id: <m@x>"
    )
    env = parse_headers(raw)
    assert env.from_ == (A("", "a@x"),)
    assert env.subject == "folded   subject line"
    assert env.to == (A("", "b@x"), A("", "c@x"))
    assert env.references == ("<r1@x>", "<r2@x>")
    assert env.message_id == "<m@x>"


def test_parse_headers_long_s_is_not_subject() -> None:
    # Case-insensitive matching must stay ASCII: U+017F must not read as "s".
    env = parse_headers("X-A: 1\r\n\u017fubject: x\r\nSubject: y\r\n\r\n".encode())
    assert env.subject == "y"


def test_header_injection_through_encoded_words_is_flattened() -> None:
    raw = msg(
        "From: =?utf-8?q?A=0D=0ABcc=3A_evil=40x?= <a@x>\n"
        "Subject: =?utf-8?q?Hi=0D=0ABcc=3A_evil=40x=00?=\n"
        "To: =?utf-8?q?=3Cevil=40x=3E?= <b@x>"
    )
    parsed = parse_message(raw)
    env = parsed.envelope
    assert env.subject == "Hi Bcc: evil@x "
    assert env.from_ == (A("A Bcc: evil@x", "a@x"),)
    assert env.to == (A("<evil@x>", "b@x"),)
    assert env.bcc == ()
    for name, value in parsed.headers:
        assert not (set(value) & {"\x00", "\r", "\n"}), name


def test_raw_8bit_headers_fall_back_to_cp1252() -> None:
    raw = (
        b"From: Fran\xe7ois <f@x>\r\nSubject: \xe2\x82\xac 5\r\n"
        b"To: caf\xe9 \xe2\x82\xac <c@x>\r\n\r\n"
    )
    env = parse_message(raw).envelope
    assert env.from_ == (A("François", "f@x"),)
    assert env.subject == "€ 5"  # that value is valid UTF-8
    assert env.to == (A("café â‚¬", "c@x"),)  # one value, one charset: windows-1252
    assert parse_headers(raw) == env


def test_multiple_from_fields_are_all_shown_and_warned() -> None:
    parsed = parse_message(msg("From: a@x\nFrom: Mallory <m@evil>\nSubject: s\nSubject: t"))
    assert parsed.envelope.from_ == (A("", "a@x"), A("Mallory", "m@evil"))
    assert parsed.envelope.subject == "s"
    assert "2 From header fields" in parsed.warnings


SUMMARY_CASES = [
    ("Content-Type: multipart/mixed; boundary=x", "multipart/mixed", True),
    ("Content-Type: Multipart/Alternative; boundary=x", "multipart/alternative", False),
    ("Content-Type: multipart/related; boundary=x", "multipart/related", False),
    ("Content-Type: text/plain; charset=utf-8", "text/plain", False),
    ("Content-Type: application/pdf", "application/pdf", True),
    ("X-Nothing: here", "", False),
]


@pytest.mark.parametrize(("header", "ctype", "guess"), SUMMARY_CASES)
def test_header_summary_attachment_guess(header: str, ctype: str, guess: bool) -> None:
    summary = header_summary(msg("From: a@x\n" + header))
    assert (summary.content_type, summary.has_attachments) == (ctype, guess)


# --- MIME structure and bodies -------------------------------------------------------------


def multipart(ctype: str, boundary: str, parts: list[str], close: bool = True) -> str:
    body = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts)
    return (
        f'Content-Type: {ctype}; boundary="{boundary}"\r\n\r\n'
        + body
        + (f"--{boundary}--\r\n" if close else "")
    )


def test_part_ids_follow_imap_numbering() -> None:
    inner = multipart(
        "multipart/alternative",
        "alt",
        ["Content-Type: text/plain\r\n\r\nplain", "Content-Type: text/html\r\n\r\n<p>html</p>"],
    )
    raw = (
        "From: a@x\r\n"
        + multipart(
            "multipart/mixed",
            "mix",
            [
                inner,
                "Content-Type: application/pdf\r\nContent-Disposition: attachment;"
                ' filename="a.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg==',
                "Content-Type: image/png; name=b.png\r\n\r\nPNGDATA",
            ],
        )
    ).encode()
    parsed = parse_message(raw)
    assert parsed.text_plain == "plain"
    assert parsed.text_html == "<p>html</p>"
    assert [(a.part_id, a.filename, a.content_type, a.size) for a in parsed.attachments] == [
        ("2", "a.pdf", "application/pdf", 4),
        ("3", "b.png", "image/png", 7),
    ]
    assert part_bytes(raw, "2") == b"%PDF"
    assert part_bytes(raw, "3") == b"PNGDATA"
    assert part_bytes(raw, "1.2") == b"<p>html</p>"
    for bad in ("1", "4", "1.3", "x", "", "2.1", "0", "-1"):
        with pytest.raises(NotFoundError):
            part_bytes(raw, bad)
    assert parsed.has_attachments


def test_single_part_body_is_part_1() -> None:
    raw = msg(
        "From: a@x\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64", "JVBERg=="
    )
    parsed = parse_message(raw)
    assert parsed.text_plain is None
    assert [(a.part_id, a.size) for a in parsed.attachments] == [("1", 4)]
    assert part_bytes(raw, "1") == b"%PDF"


def test_boundary_prefix_of_another_is_not_confused() -> None:
    inner = multipart("multipart/alternative", "bX", ["Content-Type: text/plain\r\n\r\ninner"])
    raw = ("From: a@x\r\n" + multipart("multipart/mixed", "b", [inner])).encode()
    parsed = parse_message(raw)
    assert parsed.text_plain == "inner"
    assert parsed.warnings == ()


def test_inline_image_in_related_is_not_an_attachment() -> None:
    raw = (
        "From: a@x\r\n"
        + multipart(
            "multipart/related",
            "r",
            [
                'Content-Type: text/html\r\n\r\n<img src="cid:i1">',
                "Content-Type: image/png\r\nContent-ID: <i1>\r\n\r\nPNG",
            ],
        )
    ).encode()
    parsed = parse_message(raw)
    assert parsed.attachments[0].inline
    assert not parsed.has_attachments


def test_charset_and_transfer_encodings_in_bodies() -> None:
    raw = msg(
        "From: a@x\nContent-Type: text/plain; charset=iso-8859-1\n"
        "Content-Transfer-Encoding: quoted-printable",
        "caf=E9 =\r\nsoft break =3D=XYbad\r\n",
    )
    assert parse_message(raw).text_plain == "café soft break ==XYbad\n"


def test_bombs_stop_at_limits_in_bounded_time() -> None:
    nested = "Content-Type: text/plain\r\n\r\nx\r\n"
    for i in range(10_000):
        nested = multipart("multipart/mixed", f"n{i}", [nested])
    raw = ("From: a@x\r\n" + nested).encode()
    t0 = time.perf_counter()
    parsed = parse_message(raw)
    nested_time = time.perf_counter() - t0
    assert any("deeper than 30" in w for w in parsed.warnings)

    many = multipart("multipart/mixed", "m", ["Content-Type: text/plain\r\n\r\nx"] * 100_000)
    raw = ("From: a@x\r\n" + many).encode()
    t0 = time.perf_counter()
    parsed = parse_message(raw)
    many_time = time.perf_counter() - t0
    assert any("more than 1000 MIME parts" in w for w in parsed.warnings)
    assert parsed.text_plain is not None and parsed.text_plain.count("x") < 1000
    assert nested_time < 5 and many_time < 5, (nested_time, many_time)


def test_limits_are_parameters() -> None:
    many = multipart("multipart/mixed", "m", ["Content-Type: text/plain\r\n\r\nx"] * 20)
    parsed = parse_message(("From: a@x\r\n" + many).encode(), max_parts=5)
    assert parsed.text_plain == "\n".join(["x"] * 4)


def test_megabyte_headers_and_long_lines() -> None:
    to = ", ".join(f'"User {i}" <u{i}@example.org>' for i in range(25_000))
    subject = "s" * 1_000_000
    raw = msg(f"From: a@x\nTo: {to}\nSubject: {subject}", "y" * 100_000 + "\n")
    t0 = time.perf_counter()
    parsed = parse_message(raw)
    env = parse_headers(raw)
    assert time.perf_counter() - t0 < 10
    assert len(parsed.envelope.to) == 10_000  # capped
    assert parsed.envelope.to[0] == A("User 0", "u0@example.org")
    assert len(parsed.envelope.subject) == 1_000_000
    assert env == parsed.envelope
    assert parsed.text_plain is not None and len(parsed.text_plain) == 100_001


def test_headers_view_keeps_order_names_and_decodes() -> None:
    parsed = parse_message(msg("Received: x\n y\nSUBJECT: =?utf-8?q?caf=C3=A9?=\nX-Empty:"))
    assert parsed.headers == (("Received", "x y"), ("SUBJECT", "café"), ("X-Empty", ""))
    assert parsed.header("subject") == "café"
    assert parsed.header("missing") == ""


# --- previews ------------------------------------------------------------------------------

PREVIEW_CASES = [
    ("Hello\nworld", 200, "Hello world"),
    ("  lots   of\t\tspace  ", 200, "lots of space"),
    ("On Mon, X wrote:\n> quoted\n> more\nreply", 200, "On Mon, X wrote: reply"),
    ("text\n-- \nsignature", 200, "text"),
    ("esc \x1b[31m", 200, "esc ⟦U+001B⟧[31m"),
    ("abcdefghij", 5, "abcd…"),
    ("", 200, ""),
]


@pytest.mark.parametrize(("text", "length", "expected"), PREVIEW_CASES)
def test_preview_table(text: str, length: int, expected: str) -> None:
    assert preview(text, length) == expected


def test_body_preview_uses_html_when_no_plain() -> None:
    raw = msg(
        "From: a@x\nContent-Type: text/html",
        "<html><head><style>x{}</style></head><body><p>Hi &amp; bye</p></body></html>",
    )
    assert body_preview(parse_message(raw)) == "Hi & bye"


# --- properties ----------------------------------------------------------------------------

mime_tokens = st.sampled_from(
    [
        b"From: a@x\r\n",
        b"To: =?utf-8?q?x=00?= <b@y>\r\n",
        b"Subject: =?utf-8?b?AA0K?=\r\n",
        b'Content-Type: multipart/mixed; boundary="b"\r\n',
        b"Content-Type: multipart/alternative; boundary=c\r\n",
        b"Content-Type: text/html; charset=x-bogus\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b"Content-Disposition: attachment; filename*0*=utf-8''%FF; filename*1=x\r\n",
        b"--b\r\n",
        b"--b--\r\n",
        b"--c\r\n",
        b"--c--\r\n",
        b"\r\n",
        b"\n",
        b" folded\r\n",
        b"=E9=\r\n",
        b"aGVsbG8=\r\n",
        b"<p>&#27;x</p>\r\n",
        b"\xff\xfe\x00",
        b"From ",
    ]
)
mime_like = st.lists(mime_tokens, max_size=40).map(b"".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), mime_like))
def test_parse_never_raises_and_envelopes_agree(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert parse_headers(raw) == parsed.envelope
    assert header_summary(raw).envelope == parsed.envelope
    for _, value in parsed.headers:
        assert not (set(value) & {"\x00", "\r", "\n"})
    for text in (parsed.text_plain, parsed.text_html):
        assert text is None or "\r" not in text
    for att in parsed.attachments:
        assert att.size == len(part_bytes(raw, att.part_id))
    env = parsed.envelope
    for a in env.from_ + env.to + env.cc + env.reply_to + env.sender + env.bcc:
        assert not (set(a.addr) & CTRL)
        assert not (set(a.name) & {"\x00", "\r", "\n"})
    assert not (set(env.subject) & {"\x00", "\r", "\n"})


header_lines = st.lists(
    st.sampled_from(
        [
            b"From: a@x\r\n",
            b"Subject: s\r\n",
            b" folded\r\n",
            b"To: b@y\n",
            b"\r\n",
            b"\n",
            b"From x@y Mon\r\n",
            b"garbage line\r\n",
            b"Date: Mon, 1 Apr 2024 10:00:00 +0000\r\n",
        ]
    ),
    max_size=12,
).map(b"".join)


@settings(max_examples=200, deadline=None)
@given(header_lines)
def test_header_block_shortcut_matches_the_general_split(block: bytes) -> None:
    hend, _ = split_header_block(block)
    general = parse_module._named_fields(block[:hend], parse_module._ENVELOPE_FIELDS)
    assert parse_module._envelope_fields(block) == general
