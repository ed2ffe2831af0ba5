"""mail.compose: RFC 5322/MIME output, no header injection, replies and forwards."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuimail.errors import UsageError
from tuimail.mail.compose import (
    MAX_REFERENCES,
    AttachmentSpec,
    Draft,
    compose,
    envelope_recipients,
    forward,
    forward_subject,
    make_message_id,
    message_bytes,
    normalize_crlf,
    parse_address_list,
    reply,
    reply_subject,
)
from tuimail.mail.parse import parse_message, part_bytes
from tuimail.models import Address

A = Address
ME = A("Me Myself", "me@example.org")
PLUS2 = timezone(timedelta(hours=2))
DATE = datetime(2024, 4, 15, 10, 11, 12, tzinfo=PLUS2)


def build(**kw: object) -> bytes:
    args: dict[str, object] = {
        "from_": ME,
        "to": [A("Bob", "bob@example.com")],
        "subject": "Hello",
        "body": "Hi Bob\n",
        "date": DATE,
    }
    args.update(kw)
    return message_bytes(compose(**args))  # type: ignore[arg-type]


def header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0] for line in head.split("\r\n") if line and line[0] not in " \t"]


# --- the message ---------------------------------------------------------------------------


def test_basic_message_headers_and_round_trip() -> None:
    raw = build(cc=[A("", "carol@example.net")], bcc=[A("", "hidden@example.net")])
    names = header_names(raw)
    assert names == [
        "From", "To", "Cc", "Subject", "Date", "Message-ID", "User-Agent", "Content-Type",
        "Content-Transfer-Encoding", "MIME-Version",
    ]  # fmt: skip
    assert b"hidden@example.net" not in raw
    assert b"\r\nDate: Mon, 15 Apr 2024 10:11:12 +0200\r\n" in raw
    assert re.search(rb"\r\nUser-Agent: tuimail/\d+\.\d+", raw)
    assert re.search(rb"\r\nMessage-ID: <[0-9a-f]+\.[0-9a-f]{16}@example\.org>\r\n", raw)
    assert b'Content-Type: text/plain; charset="utf-8"' in raw
    parsed = parse_message(raw)
    env = parsed.envelope
    assert env.from_ == (ME,)
    assert env.to == (A("Bob", "bob@example.com"),)
    assert env.cc == (A("", "carol@example.net"),)
    assert env.bcc == ()
    assert env.subject == "Hello"
    assert env.date == DATE
    assert parsed.text_plain == "Hi Bob\n"
    assert parsed.warnings == ()


def test_line_ends_are_crlf_only() -> None:
    raw = build(body="a\nb\r\nc\rd\n.\nend", html="<p>x</p>\n<p>y</p>")
    assert re.search(rb"(?<!\r)\n", raw) is None
    assert re.search(rb"\r(?!\n)", raw) is None


def test_non_ascii_names_and_subjects_are_encoded() -> None:
    raw = build(
        from_=A("Jörg Müller", "joerg@example.de"),
        to=[A('Zoë, "the" <boss>', "zoe@example.com")],
        subject="Grüße aus Köln — 東京 " + "lang " * 30,
        body="Grüße\n",
    )
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    env = parse_message(raw).envelope
    assert env.from_ == (A("Jörg Müller", "joerg@example.de"),)
    assert env.to == (A('Zoë, "the" <boss>', "zoe@example.com"),)
    assert env.subject == "Grüße aus Köln — 東京 " + " ".join(["lang"] * 30)
    assert parse_message(raw).text_plain == "Grüße\n"


def test_idn_domains_are_ascii_on_the_wire() -> None:
    raw = build(to=[A("", "user@bücher.example")])
    assert b"To: user@xn--bcher-kva.example\r\n" in raw


INJECTION_SUBJECTS = [
    "Hi\r\nBcc: evil@evil.example",
    "Hi\nBcc: evil@evil.example",
    "Hi\rBcc: evil@evil.example",
    "Hi\x00\r\n\r\nfake body",
    "Hi\u2028Bcc: evil@evil.example",
    "Hi\x85Bcc: evil@evil.example",
]


@pytest.mark.parametrize("subject", INJECTION_SUBJECTS)
def test_header_injection_through_subject_is_impossible(subject: str) -> None:
    raw = build(subject=subject)
    assert "Bcc" not in header_names(raw)
    parsed = parse_message(raw)
    assert parsed.envelope.bcc == ()
    assert parsed.text_plain == "Hi Bob\n"
    assert "\n" not in parsed.envelope.subject and "\r" not in parsed.envelope.subject


def test_header_injection_through_names_and_extra_headers() -> None:
    raw = build(
        from_=A("Me\r\nBcc: evil@evil.example", "me@example.org"),
        to=[A("Bob\nX-Evil: 1", "bob@example.com")],
        extra_headers=[("X-Note", "one\r\nBcc: evil@evil.example")],
    )
    names = header_names(raw)
    assert "Bcc" not in names and "X-Evil" not in names
    assert names.count("X-Note") == 1
    parsed = parse_message(raw)
    assert parsed.header("X-Note") == "one Bcc: evil@evil.example"
    assert parsed.envelope.from_[0].addr == "me@example.org"


def test_a_subject_from_received_mail_with_encoded_crlf_stays_one_header() -> None:
    received = parse_message(
        b"From: a@example.org\r\nSubject: =?utf-8?q?Hi=0D=0ABcc=3A_evil=40evil=2Eexample?=\r\n"
        b"Message-ID: <m@example.org>\r\n\r\nbody"
    )
    draft = reply(received, me=[ME], reply_all=False)
    raw = build(subject=draft.subject, to=list(draft.to))
    assert "Bcc" not in header_names(raw)
    assert parse_message(raw).envelope.subject == "Re: Hi Bcc: evil@evil.example"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(max_size=60),
    st.text(max_size=30),
    st.lists(st.tuples(st.sampled_from(["X-A", "X-B"]), st.text(max_size=30)), max_size=2),
)
def test_no_header_injection_property(
    subject: str, name: str, extra: list[tuple[str, str]]
) -> None:
    raw = build(subject=subject, from_=A(name, "me@example.org"), extra_headers=extra)
    assert re.search(rb"(?<!\r)\n|\r(?!\n)", raw) is None
    names = header_names(raw)
    expected = ["From", "To", "Subject", "Date", "Message-ID", "User-Agent"]
    expected += [n for n, _ in extra]
    expected += ["Content-Type", "Content-Transfer-Encoding", "MIME-Version"]
    assert names == expected
    parsed = parse_message(raw)
    assert parsed.envelope.from_[0].addr == "me@example.org"
    assert parsed.text_plain == "Hi Bob\n"


def test_bcc_only_in_the_envelope() -> None:
    msg = compose(
        from_=ME,
        to=[A("Bob", "bob@example.com"), A("", "Bob@Example.com")],
        cc=[A("", "carol@example.net"), A("", "bob@example.com")],
        bcc=[A("", "hidden@example.net"), A("", "CAROL@example.net")],
        subject="s",
        body="b",
        date=DATE,
    )
    assert "Bcc" not in msg
    assert b"hidden" not in message_bytes(msg)
    assert envelope_recipients(msg, [A("", "hidden@example.net"), A("", "CAROL@example.net")]) == (
        "bob@example.com",
        "carol@example.net",
        "hidden@example.net",
    )


def test_date_defaults_to_local_time_with_offset() -> None:
    raw = build(date=None)
    env = parse_message(raw).envelope
    assert env.date is not None
    now = datetime.now().astimezone()
    assert env.date.utcoffset() == now.utcoffset()
    assert abs((now - env.date).total_seconds()) < 60
    naive = parse_message(build(date=datetime(2024, 1, 2, 3, 4, 5))).envelope.date
    assert naive == datetime(2024, 1, 2, 3, 4, 5).astimezone()


def test_reply_headers() -> None:
    refs = [f"<r{i}@x.example>" for i in range(40)]
    raw = build(in_reply_to="junk <p@x.example>", references=[*refs, "bad id", "<p@x.example>"])
    env = parse_message(raw).envelope
    assert env.in_reply_to == "<p@x.example>"
    assert len(env.references) == MAX_REFERENCES
    assert env.references[0] == "<r0@x.example>"
    assert env.references[-1] == "<p@x.example>"


def test_text_encodings() -> None:
    ascii_raw = build(body="plain ascii\n")
    assert b"Content-Transfer-Encoding: 7bit" in ascii_raw
    long_raw = build(body="x" * 2000 + "\n")
    assert b"Content-Transfer-Encoding: quoted-printable" in long_raw
    assert max(len(line) for line in long_raw.split(b"\r\n")) <= 998
    utf8_raw = build(body="é\n")
    assert b"Content-Transfer-Encoding: quoted-printable" in utf8_raw
    assert parse_message(long_raw).text_plain == "x" * 2000 + "\n"


def test_html_alternative_and_attachments() -> None:
    pdf = b"%PDF-1.4" + bytes(range(256))
    raw = build(
        body="see attached",
        html="<p>see <b>attached</b></p>",
        attachments=[
            AttachmentSpec("/home/me/../../etc/Résumé 2024.pdf", pdf),
            AttachmentSpec("notes.txt", "naïve\nnotes\n".encode()),
            AttachmentSpec("data", b"\x00\x01", ""),
            AttachmentSpec("evil\r\nname.png", b"PNG", "image/png"),
            AttachmentSpec("pic.png", b"PNG", "image/png", inline=True),
            AttachmentSpec("fwd.eml", b"From: a@b\nSubject: x\n\nbody\n", "message/rfc822"),
            AttachmentSpec("odd", b"x", "not a type\r\nX-Evil: 1"),
        ],
    )
    assert "X-Evil" not in raw.decode("ascii")
    parsed = parse_message(raw)
    assert parsed.text_plain == "see attached\n"
    assert parsed.text_html == "<p>see <b>attached</b></p>\n"
    got = [(a.filename, a.content_type, a.inline) for a in parsed.attachments]
    assert got == [
        ("Résumé 2024.pdf", "application/pdf", False),
        ("notes.txt", "text/plain", False),
        ("data", "application/octet-stream", False),
        ("evilname.png", "image/png", False),
        ("pic.png", "image/png", False),  # inline, but a named file: still an attachment
        ("fwd.eml", "message/rfc822", False),
        ("odd", "application/octet-stream", False),
    ]
    assert part_bytes(raw, parsed.attachments[0].part_id) == pdf
    assert part_bytes(raw, parsed.attachments[1].part_id) == "naïve\nnotes\n".encode()
    assert (
        part_bytes(raw, parsed.attachments[5].part_id) == b"From: a@b\r\nSubject: x\r\n\r\nbody\r\n"
    )
    assert b"filename*=utf-8''R%C3%A9sum%C3%A9%202024.pdf" in raw
    assert b'Content-Disposition: inline; filename="pic.png"' in raw


def test_invalid_inputs_raise_usage_errors() -> None:
    with pytest.raises(UsageError, match="bob"):
        build(to=[A("Bob", "bob")])
    with pytest.raises(UsageError, match="x@@y"):
        build(cc=[A("", "x@@y.example")])
    with pytest.raises(UsageError, match="hidden"):
        build(bcc=[A("", "hidden@")])
    with pytest.raises(UsageError, match="Message-ID"):
        build(message_id="no brackets@x")
    with pytest.raises(UsageError, match="Bcc"):
        build(extra_headers=[("Bcc", "evil@x.example")])
    with pytest.raises(UsageError, match="extra header"):
        build(extra_headers=[("Bad Name", "x")])
    assert b"Message-ID: <given@x.example>" in build(message_id="<given@x.example>")


def test_make_message_id_is_unique_and_on_the_domain() -> None:
    ids = {make_message_id("example.org") for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"<[0-9a-f]+\.[0-9a-f]{16}@example\.org>", i) for i in ids)
    assert make_message_id("bücher.example").endswith("@xn--bcher-kva.example>")
    assert make_message_id("").endswith("@tuimail.invalid>")
    assert make_message_id("bad domain!").endswith("@tuimail.invalid>")


CRLF_CASES = [
    (b"a\nb", b"a\r\nb"),
    (b"a\rb", b"a\r\nb"),
    (b"a\r\nb", b"a\r\nb"),
    (b"a\r\r\nb", b"a\r\n\r\nb"),
    (b"a\n\rb", b"a\r\n\r\nb"),
    (b"data\n.\nMAIL FROM:<x>\r\n", b"data\r\n.\r\nMAIL FROM:<x>\r\n"),
    (b"data\r\n.\nRCPT", b"data\r\n.\r\nRCPT"),
    (b"", b""),
]


@pytest.mark.parametrize(("raw", "expected"), CRLF_CASES)
def test_normalize_crlf_table(raw: bytes, expected: bytes) -> None:
    assert normalize_crlf(raw) == expected


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=80))
def test_normalize_crlf_property(raw: bytes) -> None:
    out = normalize_crlf(raw)
    assert re.search(rb"(?<!\r)\n|\r(?!\n)", out) is None
    assert normalize_crlf(out) == out
    assert out.replace(b"\r\n", b"") == raw.replace(b"\r\n", b"").replace(b"\r", b"").replace(
        b"\n", b""
    )


# --- address lists typed by users ----------------------------------------------------------

GOOD_LISTS = [
    ("", ()),
    ("bob@example.com", (A("", "bob@example.com"),)),
    ("Bob <bob@example.com>", (A("Bob", "bob@example.com"),)),
    (
        '"Doe, Jane" <jane@example.com>, bob@example.com',
        (A("Doe, Jane", "jane@example.com"), A("", "bob@example.com")),
    ),
    ("a@x.example,, b@y.example,", (A("", "a@x.example"), A("", "b@y.example"))),
    ("bob@example.com (Bob)", (A("Bob", "bob@example.com"),)),
    ("Jörg <jörg@bücher.example>", (A("Jörg", "jörg@bücher.example"),)),
    ('"john doe"@example.com', (A("", '"john doe"@example.com'),)),
    ("root@localhost", (A("", "root@localhost"),)),
    ("x@[192.0.2.1]", (A("", "x@[192.0.2.1]"),)),
    ("Team: a@x.example, b@x.example;", (A("", "a@x.example"), A("", "b@x.example"))),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), GOOD_LISTS)
def test_parse_address_list_accepts(text: str, expected: tuple[Address, ...]) -> None:
    assert parse_address_list(text) == expected


BAD_LISTS = [
    ("bob", "'bob' is not a valid email address: it has no @domain part"),
    ("ok@example.com, bob", "'bob'"),
    ("bob@", "'bob@'"),
    ("@example.com", "nothing before the @"),
    ("bob@example", "incomplete"),
    ("a@b@example.com", "more than one @"),
    ("bob..x@example.com", "not a valid user name"),
    ("bob@exa mple.com", "exa mple.com"),
    ("bob@-bad-.com", "not a valid domain"),
    ("Bob <bob@example.com> <eve@evil.example>", "more than one address"),
    ("bob@example.com\r\nBcc: eve@evil.example", "control character"),
    ("bob@example.com\x00", "control character"),
    ('"unterminated <bob@example.com>', "not an email address"),
    ("Name <>", "not an email address"),
    ("x" * 65 + "@example.com", "not a valid|too long"),
]


@pytest.mark.parametrize(("text", "message"), BAD_LISTS)
def test_parse_address_list_rejects_naming_the_address(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message if "|" in message else re.escape(message)):
        parse_address_list(text)


# --- replies and forwards ------------------------------------------------------------------

SUBJECTS = [
    ("Hello", "Re: Hello", "Fwd: Hello"),
    ("Re: Hello", "Re: Hello", "Fwd: Re: Hello"),
    ("RE: re: Re:Hello", "Re: Hello", "Fwd: RE: re: Re:Hello"),
    ("Aw: Hallo", "Re: Hallo", "Fwd: Aw: Hallo"),
    ("Re[2]: x", "Re: x", "Fwd: Re[2]: x"),
    ("Fwd: FW: x", "Re: Fwd: FW: x", "Fwd: x"),
    ("", "Re: ", "Fwd: "),
    ("line\r\nbreak", "Re: line break", "Fwd: line break"),
]


@pytest.mark.parametrize(("subject", "re_", "fwd"), SUBJECTS)
def test_reply_and_forward_subjects(subject: str, re_: str, fwd: str) -> None:
    assert reply_subject(subject) == re_
    assert forward_subject(subject) == fwd


ORIGINAL = (
    "From: Alice <alice@example.org>\r\n"
    "To: Me Myself <me@example.org>, Bob <bob@example.com>, ME@example.org\r\n"
    "Cc: carol@example.net, Bob <BOB@example.com>, alias@example.org\r\n"
    "Subject: Re: Plans\r\n"
    "Date: Mon, 15 Apr 2024 10:11:12 +0000\r\n"
    "Message-ID: <orig@example.org>\r\n"
    "References: <root@example.org> <mid@example.org>\r\n"
    "In-Reply-To: <mid@example.org>\r\n"
    "\r\n"
    "Line one\r\n"
    "> earlier quote\r\n"
    "\r\n"
    "esc \x1b[31m here\r\n"
    "-- \r\n"
    "Alice's signature\r\n"
)


def original(extra_headers: str = "") -> tuple[bytes, object]:
    raw = (extra_headers + ORIGINAL).encode()
    return raw, parse_message(raw)


def test_reply_to_sender() -> None:
    _, parsed = original()
    draft = reply(parsed, me=[ME], reply_all=False)  # type: ignore[arg-type]
    assert draft.to == (A("Alice", "alice@example.org"),)
    assert draft.cc == ()
    assert draft.subject == "Re: Plans"
    assert draft.in_reply_to == "<orig@example.org>"
    assert draft.references == ("<root@example.org>", "<mid@example.org>", "<orig@example.org>")
    when = datetime(2024, 4, 15, 10, 11, 12, tzinfo=UTC).astimezone()
    assert draft.body.startswith(f"On Mon, 15 Apr 2024 {when:%H:%M}, Alice wrote:\n")
    assert draft.body.endswith(
        "wrote:\n> Line one\n> > earlier quote\n>\n> esc ⟦U+001B⟧[31m here\n"
    )
    assert "signature" not in draft.body


def test_reply_uses_reply_to() -> None:
    _, parsed = original("Reply-To: List <list@example.org>\r\n")
    assert reply(parsed, me=[ME], reply_all=False).to == (A("List", "list@example.org"),)  # type: ignore[arg-type]


def test_reply_all_excludes_me_and_duplicates() -> None:
    _, parsed = original()
    me = [ME, A("", "alias@example.org")]
    draft = reply(parsed, me=me, reply_all=True)  # type: ignore[arg-type]
    assert draft.to == (A("Alice", "alice@example.org"), A("Bob", "bob@example.com"))
    assert draft.cc == (A("", "carol@example.net"),)


def test_reply_to_my_own_message_goes_to_its_recipients() -> None:
    raw = (
        b"From: Me Myself <me@example.org>\r\nTo: Bob <bob@example.com>\r\n"
        b"Subject: Plans\r\nMessage-ID: <mine@example.org>\r\n\r\nhello\r\n"
    )
    draft = reply(parse_message(raw), me=[ME], reply_all=False)
    assert draft.to == (A("Bob", "bob@example.com"),)
    assert draft.references == ("<mine@example.org>",)
    assert draft.body == "Me Myself wrote:\n> hello\n"


def test_reply_body_prefix_and_html_original() -> None:
    raw = (
        b"From: a@example.org\r\nSubject: x\r\nMessage-ID: <h@example.org>\r\n"
        b"In-Reply-To: <p@example.org>\r\nContent-Type: text/html\r\n\r\n"
        b"<p>Hello <a href='https://x.example'>there</a></p><script>evil()</script>"
    )
    draft = reply(parse_message(raw), me=[ME], reply_all=False, body_prefix="Thanks!\n")
    assert draft.body == (
        "Thanks!\n\na@example.org wrote:\n> Hello there [1]\n>\n> Links:\n> [1] https://x.example\n"
    )
    assert draft.references == ("<p@example.org>", "<h@example.org>")


def test_reply_trims_long_references() -> None:
    refs = " ".join(f"<r{i}@x.example>" for i in range(100))
    raw = (
        f"From: a@x.example\r\nMessage-ID: <last@x.example>\r\nReferences: {refs}\r\n\r\nb".encode()
    )
    draft = reply(parse_message(raw), me=[ME], reply_all=False)
    assert len(draft.references) == MAX_REFERENCES
    assert draft.references[0] == "<r0@x.example>"
    assert draft.references[-2:] == ("<r99@x.example>", "<last@x.example>")


def test_draft_round_trips_through_compose() -> None:
    _, parsed = original()
    draft = reply(parsed, me=[ME], reply_all=True)  # type: ignore[arg-type]
    raw = message_bytes(
        compose(
            from_=ME,
            to=draft.to,
            cc=draft.cc,
            subject=draft.subject,
            body=draft.body,
            in_reply_to=draft.in_reply_to,
            references=draft.references,
            date=DATE,
        )
    )
    env = parse_message(raw).envelope
    assert env.in_reply_to == "<orig@example.org>"
    assert env.references == draft.references
    assert env.subject == "Re: Plans"


def test_forward_inline_keeps_headers_text_and_attachments() -> None:
    raw = (
        b"From: Alice <alice@example.org>\r\nTo: me@example.org\r\nSubject: Report\r\n"
        b"Date: Mon, 15 Apr 2024 10:11:12 +0000\r\nMessage-ID: <f@example.org>\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nSee the report.\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename=r.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--b--\r\n"
    )
    draft = forward(parse_message(raw), raw, inline=True)
    assert draft.subject == "Fwd: Report"
    assert draft.to == () and draft.in_reply_to == "" and draft.references == ()
    assert (
        "---------- Forwarded message ----------\nFrom: Alice <alice@example.org>\n" in draft.body
    )
    assert "Subject: Report\nTo: me@example.org\n\nSee the report.\n" in draft.body
    assert draft.attachments == (AttachmentSpec("r.pdf", b"%PDF", "application/pdf"),)


def test_forward_as_attachment_keeps_the_original_bytes() -> None:
    raw, parsed = original()
    draft = forward(parsed, raw, inline=False)  # type: ignore[arg-type]
    assert draft == Draft(
        subject="Fwd: Re: Plans",
        attachments=(AttachmentSpec("Re Plans.eml", raw, "message/rfc822"),),
    )
    out = build(body="fyi", attachments=draft.attachments)
    att = parse_message(out).attachments[0]
    assert (att.content_type, att.filename) == ("message/rfc822", "Re Plans.eml")
    assert part_bytes(out, att.part_id) == normalize_crlf(raw)


def test_reply_wraps_long_quoted_lines_under_their_own_quote_marks() -> None:
    words = " ".join(f"word{i}" for i in range(40))
    body = (
        # A flowed paragraph (one long line once joined), a quoted one, and a long URL.
        "\r\n".join(f"{w} " for w in words.split(" ")[:-1]) + "\r\nword39\r\n"
        "\r\n"
        "> " + words + "\r\n"
        "\r\n"
        "https://example.org/" + "x" * 100 + "\r\n"
    )
    raw = (
        "From: Alice <alice@example.org>\r\nSubject: s\r\nMessage-ID: <f@example.org>\r\n"
        "Content-Type: text/plain; format=flowed\r\n\r\n" + body
    ).encode()
    draft = reply(parse_message(raw), me=[ME], reply_all=False)
    quoted = draft.body.split("\n")[1:-1]
    assert all(len(line) <= 72 for line in quoted if "example.org/" not in line)
    first = [line for line in quoted if line.startswith("> word")]
    second = [line for line in quoted if line.startswith("> > word")]
    assert len(first) > 1 and len(second) > 1  # both paragraphs wrapped...
    assert " ".join(line[2:] for line in first) == words  # ...with every word kept
    assert " ".join(line[4:] for line in second) == words
    assert "> https://example.org/" + "x" * 100 in quoted  # a word is never cut
