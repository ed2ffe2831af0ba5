"""Every message of tests/fixtures/messages/ parsed (and rendered) with known results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tuimail.mail.parse import parse_headers, parse_message, part_bytes
from tuimail.models import Address

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "messages"
A = Address

# name -> expectations. Keys: subject, from_, to, plain (substring), html (substring),
# attachments [(filename, content_type, inline)], warnings (substrings), date (isoformat)
EXPECTED: dict[str, dict[str, Any]] = {
    "plain_ascii.eml": {
        "subject": "Lunch on Thursday?",
        "from_": (A("Alice Example", "alice@example.org"),),
        "to": (A("Bob", "bob@example.com"),),
        "date": "2024-04-15T10:11:12+02:00",
        "plain": "Are you free for lunch on Thursday?",
        "attachments": [],
    },
    "latin1_qp.eml": {
        "subject": "Réunion de lundi à 9h",
        "from_": (A("François Müller", "francois@example.fr"),),
        "plain": "Coût : 20 €.",
    },
    "utf8_8bit_headers.eml": {
        "subject": "Grüße aus Köln — 東京",
        "from_": (A("Jörg Müller", "joerg@example.de"),),
        "to": (A("Ærøskøbing Ltd", "info@example.dk"),),
        "plain": "東京は晴れです。 😀",
    },
    "alternative.eml": {
        "plain": "Spring sale: 20% off everything.",
        "html": '<a href="https://shop.example/sale">',
        "attachments": [],
        "date": "2024-04-18T09:30:00-04:00",
    },
    "html_only_hostile.eml": {
        "plain": None,
        "html": "<script>",
        "attachments": [],
    },
    "attachments.eml": {
        "cc": (A("Erin", "erin@example.com"), A("", "frank@example.com")),
        "plain": "Please find the documents attached.",
        "attachments": [
            ("contract.pdf", "application/pdf", False),
            ("été photo.png", "image/png", False),
            ("notes.txt", "text/plain", False),
        ],
    },
    "rfc2231_hostile_names.eml": {
        "plain": "see attachments",
        "attachments": [
            ("../../etc/passwd", "application/octet-stream", False),
            ("evil\x1b[31m\u202egpj.exe", "application/octet-stream", False),
            ("ÿþname.bin", "application/octet-stream", False),
        ],
    },
    "related_inline_image.eml": {
        "html": 'src="cid:photo1@example.org"',
        "attachments": [("", "image/png", True)],
        "has_attachments": False,
    },
    "forwarded_message.eml": {
        "plain": "See below.",
        "attachments": [("", "message/rfc822", False)],
    },
    "encoded_word_injection.eml": {
        "subject": "Hello Bcc: evil@evil.example  world",
        "from_": (A("Alice Bcc: evil@evil.example", "alice@example.org"),),
        "to": (A("Bob To: attacker@evil.example", "bob@example.com"),),
        "reply_to": (A('"support@bank.example" <evil@evil.example>', "reply@example.org"),),
        "bcc": (),
    },
    "multiple_from.eml": {
        "subject": "Two From fields",
        "from_": (A("", "ceo@bank.example"), A("Mallory", "mallory@evil.example")),
        "sender": (A("", "secretary@bank.example"),),
        "to": (A("", "a@example.com"), A("", "b@example.com"), A("Group, Inc.", "c@example.com")),
        "warnings": ["2 From header fields", "2 Subject header fields"],
    },
    "display_name_spoof.eml": {
        "from_": (A("support@bank.example", "evil@evil.example"),),
        "cc": (A("Bank \u202eelpmaxe.knab", "x@evil.example"),),
        "subject": "Invoice \u202efdp.exe",
    },
    "missing_headers.eml": {
        "subject": "no from, no date, no id",
        "from_": (),
        "date": None,
        "message_id": "",
        "plain": "without From, Date or Message-ID",
    },
    "bogus_charset.eml": {
        "subject": "oddécharset",
        "plain": "café naïve résumé",
        "warnings": ["not valid in charset 'x-bogus-8bit'"],
    },
    "broken_base64.eml": {
        "plain": "Hello world",
        "warnings": ["damaged base64"],
    },
    "unterminated_multipart.eml": {
        "plain": "First part is complete.",
        "attachments": [("partial.bin", "application/octet-stream", False)],
        "warnings": ["not terminated"],
    },
    "boundary_missing.eml": {
        "plain": "This text is all there is.",
        "warnings": ["boundary never found"],
    },
    "nested_50.eml": {
        "plain": None,
        "warnings": ["deeper than 30 levels"],
    },
    "long_line.eml": {
        "plain": "x" * 100_000,
    },
    "thread_reply.eml": {
        "subject": "Re: Re: RE: Fwd: [dev] build broken",
        "in_reply_to": "<ref599@lists.example.org>",
        "references_len": 200,
        "references_first": "<ref0@lists.example.org>",
        "references_last": "<ref599@lists.example.org>",
    },
    "mbox_from_line.eml": {
        "from_": (A("Xavier", "xavier@example.org"),),
        "subject": "LF line endings from an mbox",
        "plain": "Unix line endings only.\n",
    },
    "headerless.eml": {
        "subject": "",
        "from_": (),
        "plain": "Just some text that was saved without any header at all.\nLine two.",
    },
    "digest.eml": {
        "attachments": [("", "message/rfc822", False), ("", "message/rfc822", False)],
    },
    "calendar_invite.eml": {
        "plain": "You are invited to Planning on Tuesday.",
        "attachments": [("", "text/calendar", False)],
    },
    "utf16_body.eml": {"plain": "Hello in UTF-16 ✓"},
    "iso2022jp.eml": {
        "subject": "会議",
        "from_": (A("山田", "yamada@example.jp"),),
        "plain": "会議は明日です。",
    },
    "signed.eml": {
        "plain": "This text is signed.",
        "attachments": [("signature.asc", "application/pgp-signature", False)],
    },
    "utf8_declared_cp1252.eml": {
        "plain": "\u201csmart quotes\u201d and \u20ac5",
        "warnings": ["not valid in charset 'utf-8'"],
    },
    "html_deeply_nested.eml": {"html": "deep text", "plain": None},
    "hostile_controls_plain.eml": {
        "subject": "\x1b]0;pwned\x07title",
        "plain": "\x1b[2J",
    },
}

FILES = sorted(p.name for p in CORPUS.glob("*.eml"))


def test_corpus_is_complete() -> None:
    assert len(FILES) >= 20
    assert set(FILES) == set(EXPECTED)


@pytest.mark.parametrize("name", FILES)
def test_corpus_parse(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    parsed = parse_message(raw)
    env = parsed.envelope
    exp = EXPECTED[name]
    assert parse_headers(raw) == env  # the sync fast path agrees with the full parse
    for key in ("subject", "from_", "to", "cc", "bcc", "sender", "reply_to", "message_id"):
        if key in exp:
            assert getattr(env, key) == exp[key], key
    if "in_reply_to" in exp:
        assert env.in_reply_to == exp["in_reply_to"]
    if "references_len" in exp:
        assert len(env.references) == exp["references_len"]
        assert env.references[0] == exp["references_first"]
        assert env.references[-1] == exp["references_last"]
    if "date" in exp:
        assert (env.date.isoformat() if env.date else None) == exp["date"]
    for key, attr in (("plain", "text_plain"), ("html", "text_html")):
        if key in exp:
            got = getattr(parsed, attr)
            if exp[key] is None:
                assert got is None
            else:
                assert got is not None and exp[key] in got
    if "attachments" in exp:
        got = [(a.filename, a.content_type, a.inline) for a in parsed.attachments]
        assert got == exp["attachments"]
    if "has_attachments" in exp:
        assert parsed.has_attachments == exp["has_attachments"]
    for w in exp.get("warnings", []):
        assert any(w in x for x in parsed.warnings), (w, parsed.warnings)
    if "warnings" not in exp:
        assert parsed.warnings == ()
    for att in parsed.attachments:
        assert len(part_bytes(raw, att.part_id)) == att.size
