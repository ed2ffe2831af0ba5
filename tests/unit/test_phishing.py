"""Phishing signs (`tuimail.mail.phishing`): one table per sign, each with negatives.

Messages go through the real parser (`tuimail.mail.parse.parse_message`), so the signs are
checked on what the viewer would see, not on hand-built objects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuimail.mail.parse import ParsedMessage, parse_message
from tuimail.mail.phishing import (
    Sign,
    SimpleCorrespondents,
    assess,
    numeric_host,
    parse_authentication_results,
    registrable_domain,
    safe_link_target,
)
from tuimail.models import Address, Envelope

TRUSTED = "mx.me.example"

KNOWN = SimpleCorrespondents(
    [
        Address("Alice Smith", "alice@corp.example"),
        Address("Bob Jones", "bob@example.com"),
        Address("PayPal", "service@paypal.com"),
        Address("", "friend@gmail.com"),
        Address("", "team@microsoft.com"),
        Address("", "someone@google.com"),
        Address("", "ops@mail.com"),
        Address("", "x@ibn.com"),
    ]
)

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def message(
    from_: str = "Carol <carol@shop.example>",
    *,
    headers: str = "",
    body: str = "Hello",
    html: bool = False,
) -> ParsedMessage:
    ctype = "text/html; charset=utf-8" if html else "text/plain; charset=utf-8"
    raw = (
        f"From: {from_}\r\nTo: me@me.example\r\nSubject: test\r\n{headers}"
        f"Content-Type: {ctype}\r\n\r\n{body}\r\n"
    )
    return parse_message(raw.encode("utf-8"))


def signs(
    parsed: ParsedMessage,
    known: SimpleCorrespondents = KNOWN,
    **kwargs: object,
) -> tuple[Sign, ...]:
    result = assess(parsed, known_correspondents=known, trusted_authserv_id=TRUSTED, **kwargs)  # type: ignore[arg-type]
    for sign in result:  # every reason is safe to print and short
        assert not _CONTROL.search(sign.reason), sign
        assert len(sign.reason) < 400, sign
    return result


def kinds(parsed: ParsedMessage, **kwargs: object) -> dict[str, str]:
    """kind -> severity (the most severe one when a kind repeats)."""
    out: dict[str, str] = {}
    for sign in reversed(signs(parsed, **kwargs)):
        out[sign.kind] = sign.severity
    return out


# --- display names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_", "kind", "severity"),
    [
        ('"support@paypal.com" <x@evil.example>', "display-name-address", "danger"),
        ('"PayPal support@paypal.com" <x@evil.example>', "display-name-address", "danger"),
        ('"alice@corp.example via Fax" <fax@evil.example>', "display-name-address", "danger"),
        ('"ceo＠corp.example" <x@evil.example>', "display-name-address", "danger"),  # fullwidth @
        ("=?utf-8?q?ceo=40corp=2Eexample?= <x@evil.example>", "display-name-address", "danger"),
        ('"ceo@corp.example\u200b" <x@evil.example>', "display-name-address", "danger"),
        ('"PayPal.com" <service@evil.example>', "display-name-domain", "warning"),
        ('"Security team, paypal.com" <x@evil.example>', "display-name-domain", "warning"),
        ('"Alice Smith" <alice.smith@gmail.example>', "display-name-known", "danger"),
        ('"Smith, Alice" <alice@evil.example>', "display-name-known", "danger"),
        ('"ALICE   SMITH" <alice@evil.example>', "display-name-known", "danger"),
        ('"Аlice Smith" <alice@evil.example>', "display-name-known", "danger"),  # Cyrillic А
        ("=?utf-8?b?QWxpY2UgU21pdGg=?= <alice@evil.example>", "display-name-known", "danger"),
        ('"Bob Jones" <bob.jones@evil.example>', "display-name-known", "danger"),
    ],
)
def test_display_name_spoofing(from_: str, kind: str, severity: str) -> None:
    assert kinds(message(from_)).get(kind) == severity


@pytest.mark.parametrize(
    "from_",
    [
        '"alice@corp.example" <alice@corp.example>',
        '"Alice@Corp.Example" <alice@corp.example>',
        '"Alice Smith" <alice@corp.example>',
        '"Alice Smithson" <alice@else.example>',
        '"Al" <al@else.example>',
        '"GitHub.com" <noreply@github.com>',
        '"Booking.com" <noreply@mailer.booking.com>',
        '"Release notes v1.2" <dev@project.example>',
        '"main.rs bot" <bot@project.example>',
        "carol@shop.example",
        '"" <carol@shop.example>',
    ],
)
def test_display_names_that_are_fine(from_: str) -> None:
    found = kinds(message(from_))
    assert not {"display-name-address", "display-name-domain", "display-name-known"} & set(found)


def test_a_known_address_under_a_known_name_is_not_spoofing() -> None:
    known = SimpleCorrespondents(
        [Address("Alice Smith", "alice@corp.example"), Address("Alice Smith", "alice@home.example")]
    )
    assert "display-name-known" not in kinds(
        message("Alice Smith <alice@home.example>"), known=known
    )


# --- lookalike domains ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("addr", "severity"),
    [
        ("x@pаypal.com", "danger"),  # Cyrillic а, raw UTF-8 (SMTPUTF8)
        ("x@xn--pypal-4ve.com", "danger"),  # the same as an A-label
        ("x@XN--PYPAL-4VE.COM", "danger"),
        ("x@paypa1.com", "danger"),  # 1 for l
        ("x@examp1e.com", "danger"),
        ("x@rnicrosoft.com", "danger"),  # rn for m
        ("x@g00gle.com", "danger"),
        ("x@ɡoogle.com", "danger"),  # IPA script g
        ("x@xn--80ak6aa92e.com", "danger"),  # аррӏе.com, all Cyrillic: whole-script confusable
        ("x@аррӏе.com", "danger"),
        ("x@ραγ.example", "danger"),  # Greek "pay"
        ("x@paypai.com", "warning"),  # one letter away from a known domain
        ("x@paypall.com", "warning"),
        ("x@qaypal.com", "warning"),  # first letter changed: found through the last-letter index
        ("x@paypak.com", "warning"),  # last letter changed: found through the first-letter index
        ("x@aypal.com", "warning"),
        ("x@gooogle.com", "warning"),
        ("x@micrsoft.com", "warning"),
        ("x@paypal.co", "warning"),
        ("x@paypal.com.evil.example", "warning"),  # known domain worn as a subdomain
        ("x@login.corp.example.evil.example", "warning"),
    ],
)
def test_lookalike_sender_domains(addr: str, severity: str) -> None:
    assert kinds(message(f"Carol <{addr}>")).get("lookalike-domain") == severity


@pytest.mark.parametrize(
    "addr",
    [
        "x@münchen.de",
        "x@xn--mnchen-3ya.de",
        "x@пример.рф",  # Cyrillic under a Cyrillic TLD
        "x@xn--e1afmkfd.xn--p1ai",
        "x@東京.jp",
        "x@bücher.example",
        "x@paypal.com",  # known
        "x@news.paypal.com",  # same organisation
        "x@example.org",  # same name, other TLD: three letters away
        "x@gmail.com",  # "mail.com" is known, but four-letter names are not judged
        "x@ibm.com",  # "ibn.com" is known: too short to judge
        "x@shop.example",
        "x@corp.example",
    ],
)
def test_domains_that_are_fine(addr: str) -> None:
    found = kinds(message(f"Carol <{addr}>"))
    assert "lookalike-domain" not in found
    assert "invalid-punycode" not in found


@pytest.mark.parametrize("addr", ["x@xn--zz.com", "x@xn--.com", "x@xn--abc-.com", "x@xn--a.com"])
def test_invalid_punycode(addr: str) -> None:
    assert kinds(message(f"Carol <{addr}>")).get("invalid-punycode") == "warning"


def test_reply_to_lookalike_is_checked_too() -> None:
    parsed = message("Carol <carol@shop.example>", headers="Reply-To: x@paypa1.com\r\n")
    assert any(s.kind == "lookalike-domain" and "Reply-To" in s.reason for s in signs(parsed))


# --- links ---------------------------------------------------------------------------------


def html_link(href: str, text: str) -> ParsedMessage:
    return message(body=f'<p>Hi</p><a href="{href}">{text}</a>', html=True)


@pytest.mark.parametrize(
    ("href", "text", "kind", "severity"),
    [
        ("https://evil.example/login", "https://www.paypal.com/", "link-mismatch", "danger"),
        ("https://evil.example/login", "paypal.com", "link-mismatch", "danger"),
        ("https://evil.example/login", "Log in at www.paypal.com now", "link-mismatch", "danger"),
        ("https://evil.example/", "paypal\u200b.com", "link-mismatch", "danger"),
        ("https://evil.example/", "paypal。com", "link-mismatch", "danger"),
        ("https://evil.example/", "ｐａｙｐａｌ.com", "link-mismatch", "danger"),
        ("https://evil.example/", "<b>pay</b>pal.com", "link-mismatch", "danger"),
        ("https://evil.example/", "https://bank.example:443/", "link-mismatch", "danger"),
        # browsers read "\" as "/": this goes to evil.example, whatever urlsplit says
        (
            "https://evil.example\\@bank.example/",
            "https://bank.example/",
            "link-mismatch",
            "danger",
        ),
        ("https://%65vil.example/", "https://bank.example/", "link-mismatch", "danger"),
        ("https://xn--pypal-4ve.com/", "https://paypal.com/", "link-mismatch", "danger"),
        ("https://bank.example@evil.example/", "click", "link-userinfo", "danger"),
        ("https://bank.example:pw@evil.example/", "click", "link-userinfo", "danger"),
        ("https://user@bank.example/", "bank", "link-userinfo", "danger"),
        ("http://3232235777/", "click", "link-ip", "warning"),
        ("http://0xC0A80101/", "click", "link-ip", "warning"),
        ("http://0300.0250.1.1/", "click", "link-ip", "warning"),
        ("http://192.168.1.1:8080/x", "click", "link-ip", "warning"),
        ("http://127.1/", "click", "link-ip", "warning"),
        ("http://[::1]/", "click", "link-ip", "warning"),
        ("http://999.1.1.1/", "click", "link-ip", "warning"),
        ("https://xn--pypal-4ve.com/", "here", "link-lookalike", "danger"),
        ("https://pаypal.com/", "here", "link-lookalike", "danger"),
        ("https://www.paypa1.com/", "here", "link-lookalike", "danger"),
        ("https://paypal.com.evil.example/", "here", "link-lookalike", "warning"),
        ("https://xn--zz.example/", "here", "invalid-punycode", "warning"),
        ("javascript:alert(1)", "here", "link-scheme", "warning"),
        ("JaVaScRiPt:alert(1)", "here", "link-scheme", "warning"),
        ("java\tscript:alert(1)", "here", "link-scheme", "warning"),
        ("data:text/html;base64,PHNjcmlwdD4=", "here", "link-scheme", "warning"),
        ("file:///etc/passwd", "here", "link-scheme", "warning"),
    ],
)
def test_link_signs(href: str, text: str, kind: str, severity: str) -> None:
    href_attr = href.replace("&", "&amp;").replace('"', "&quot;")
    assert kinds(html_link(href_attr, text)).get(kind) == severity


@pytest.mark.parametrize(
    ("href", "text"),
    [
        ("https://click.example.com/track?u=1&id=2", "example.com/offer"),
        ("https://www.example.com/view", "View in browser"),
        ("https://example.com", "Click here"),
        ("https://example.com/", "https://example.com"),
        ("http://example.com/", "www.example.com"),
        ("https://github.com/x/y/blob/main/main.rs", "main.rs"),
        ("https://evil.example/", "version 1.2"),
        ("https://files.example/report.pdf", "report.pdf"),
        ("mailto:alice@corp.example", "alice@corp.example"),
        ("https://xn--mnchen-3ya.de/", "münchen.de"),
        ("https://münchen.de/", "https://xn--mnchen-3ya.de/"),
        ("https://shop.example.co.uk/", "www.example.co.uk"),
        ("#top", "back to top"),
        ("cid:image1", "logo"),
        ("tel:+15551234", "+1 555 1234"),
        ("https://www.paypal.com/", "paypal.com"),
    ],
)
def test_links_that_are_fine(href: str, text: str) -> None:
    href_attr = href.replace("&", "&amp;")
    found = set(kinds(html_link(href_attr, text)))
    assert not {k for k in found if k.startswith("link-") or k == "invalid-punycode"}, found


def test_a_newsletter_is_not_flagged() -> None:
    body = """<html><body>
    <a href="https://www.example.com/?utm_source=news">Example News</a>
    <img src="https://img.example.com/logo.png" alt="example.com">
    <a href="https://click.example.com/t/abc"><img alt="Example" src="x"> example.com/deals</a>
    <a href="https://example.com/unsubscribe?u=1&amp;l=2">Unsubscribe</a>
    <a href="https://help.example.com/">help.example.com</a>
    <p>Example Ltd, 1 Street, Town. www.example.com</p>
    </body></html>"""
    parsed = message(
        "Example News <news@mail.example.com>",
        headers="Reply-To: support@example.com\r\n",
        body=body,
        html=True,
    )
    known = SimpleCorrespondents(["news@mail.example.com"])
    assert signs(parsed, known=known) == ()


@pytest.mark.parametrize(
    ("body", "kind", "severity"),
    [
        (
            '<form action="https://evil.example/"><input type="password" name="p"></form>',
            "password-form",
            "danger",
        ),
        ('<FORM><INPUT TYPE="PassWord"></FORM>', "password-form", "danger"),
        ("<input type=password>", "password-form", "danger"),
        ('<form action="https://survey.example/"><input name="q"></form>', "form", "info"),
        ('<area href="https://bank.example@evil.example/" alt="bank">', "link-userinfo", "danger"),
    ],
)
def test_html_forms_and_areas(body: str, kind: str, severity: str) -> None:
    assert kinds(message(body=body, html=True)).get(kind) == severity


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Log in: https://bank.example@evil.example/login", "link-userinfo"),
        ("Go to http://3232235777/ now.", "link-ip"),
        ("See www.paypa1.com/account", "link-lookalike"),
    ],
)
def test_links_in_plain_text(text: str, kind: str) -> None:
    assert kind in kinds(message(body=text))


def test_rendered_links_are_used_instead_of_scanning() -> None:
    class Link:
        def __init__(self, text: str, target: str) -> None:
            self.text, self.target = text, target

    parsed = message(body="<a href='https://example.com/'>fine</a>", html=True)
    found = kinds(parsed, rendered_links=[Link("paypal.com", "https://evil.example/")])
    assert found.get("link-mismatch") == "danger"
    assert "link-mismatch" not in kinds(parsed, rendered_links=[])


def test_link_signs_are_capped() -> None:
    body = "".join(f'<a href="http://{i}/">x</a>' for i in range(5000))
    found = [s for s in signs(message(body=body, html=True)) if s.kind == "link-ip"]
    assert 1 <= len(found) <= 12


# --- Reply-To and Sender -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_", "headers", "kind", "severity"),
    [
        ("a@corp.example", "Reply-To: b@evil.example\r\n", "reply-to", "warning"),
        (
            "a@corp.example",
            "Reply-To: Alice <alice@corp.example>, b@evil.example\r\n",
            "reply-to",
            "warning",
        ),
        ("a@corp.example", "Reply-To: a.personal@gmail.com\r\n", "reply-to", "info"),
        ("a@corp.example", "Reply-To: list@me.example\r\n", "reply-to", "info"),
        ("a@alice.github.io", "Reply-To: b@bob.github.io\r\n", "reply-to", "warning"),
        ("a@corp.example", "Sender: bounce@mailer.example\r\n", "sender", "info"),
    ],
)
def test_reply_path(from_: str, headers: str, kind: str, severity: str) -> None:
    found = kinds(message(from_, headers=headers), my_domains=["me.example"])
    assert found.get(kind) == severity


@pytest.mark.parametrize(
    ("from_", "headers"),
    [
        ("a@corp.example", "Reply-To: support@help.corp.example\r\n"),
        ("a@corp.example", "Reply-To: a@corp.example\r\n"),
        ("a@corp.example", "Reply-To: a@CORP.EXAMPLE\r\n"),
        ("a@shop.example.co.uk", "Reply-To: b@help.example.co.uk\r\n"),
        ("a@corp.example", "Sender: assistant@corp.example\r\n"),
        ("a@mail.corp.example", "Sender: bounces@lists.corp.example\r\n"),
    ],
)
def test_reply_path_within_one_organisation(from_: str, headers: str) -> None:
    found = kinds(message(from_, headers=headers))
    assert "reply-to" not in found
    assert "sender" not in found


# --- Authentication-Results ----------------------------------------------------------------


def ar(*values: str) -> str:
    return "".join(f"Authentication-Results: {v}\r\n" for v in values)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (ar("mx.me.example; dmarc=fail header.from=shop.example"), {"dmarc-fail": "danger"}),
        (ar("MX.ME.EXAMPLE; dmarc=fail"), {"dmarc-fail": "danger"}),
        (ar("mx.me.example 1; dmarc=fail"), {"dmarc-fail": "danger"}),
        (
            ar("mx.me.example (our server); dmarc=fail (p=reject) header.from=x"),
            {"dmarc-fail": "danger"},
        ),
        (ar('"mx.me.example"; dmarc=fail'), {"dmarc-fail": "danger"}),
        (
            ar("mx.me.example;\r\n dkim=fail header.d=shop.example;\r\n spf=pass"),
            {"dkim-fail": "warning"},
        ),
        (ar("mx.me.example; dkim=permerror"), {"dkim-fail": "warning"}),
        (ar("mx.me.example; spf=fail smtp.mailfrom=shop.example"), {"spf-fail": "warning"}),
        (ar("mx.me.example; spf=softfail"), {"spf-fail": "info"}),
        (
            ar("mx.me.example; dkim=pass; dmarc=fail; spf=fail"),
            {"dmarc-fail": "danger", "spf-fail": "warning"},
        ),
        # one good signature is enough: other failing signatures are common and harmless
        (
            ar("mx.me.example; dkim=fail header.d=relay.example; dkim=pass header.d=shop.example"),
            {},
        ),
        (ar("mx.me.example; dkim=pass; spf=pass; dmarc=pass"), {}),
        (ar("mx.me.example; none"), {}),
        (ar('mx.me.example; dkim=pass header.b="a;dmarc=fail"'), {}),
        # only the topmost header of the user's server counts
        (ar("mx.me.example; dmarc=pass", "mx.me.example; dmarc=fail"), {}),
        (ar("mx.me.example; dmarc=fail", "mx.me.example; dmarc=pass"), {"dmarc-fail": "danger"}),
        (ar("relay.example; dmarc=pass", "mx.me.example; dmarc=fail"), {"dmarc-fail": "danger"}),
        # sender-supplied headers (other authserv-ids) are ignored, good or bad
        (ar("mx.evil.example; dmarc=fail; dkim=fail; spf=fail"), {}),
        (ar("mx.me.example.evil.example; dmarc=fail"), {}),
        (ar("evil; mx.me.example; dmarc=fail"), {}),
        ("", {}),
    ],
)
def test_authentication_results(headers: str, expected: Mapping[str, str]) -> None:
    found = kinds(message("Bob Jones <bob@example.com>", headers=headers))
    auth = {k: v for k, v in found.items() if k in ("dmarc-fail", "dkim-fail", "spf-fail")}
    assert auth == expected


def test_authentication_results_need_a_configured_authserv_id() -> None:
    parsed = message(headers=ar("mx.me.example; dmarc=fail; spf=fail"))
    result = assess(parsed, known_correspondents=KNOWN, trusted_authserv_id="")
    assert not [s for s in result if s.kind.endswith("-fail")]


@pytest.mark.parametrize(
    ("value", "authserv_id", "methods"),
    [
        ("mx.example; dkim=pass header.d=a.example", "mx.example", [("dkim", "pass")]),
        (
            "mx.example 1; spf/2=fail (comment; with semicolon) smtp.mailfrom=a",
            "mx.example",
            [("spf", "fail")],
        ),
        ("(leading comment) mx.example; dmarc=none", "mx.example", [("dmarc", "none")]),
        ("mx.example; none", "mx.example", []),
        ("", "", []),
        ("(((unterminated", "", []),
        (
            'mx.example; dkim=pass header.b="x;y" ; spf=pass',
            "mx.example",
            [("dkim", "pass"), ("spf", "pass")],
        ),
    ],
)
def test_parse_authentication_results(
    value: str, authserv_id: str, methods: list[tuple[str, str]]
) -> None:
    got_id, results = parse_authentication_results(value)
    assert got_id == authserv_id
    assert [(r.method, r.result) for r in results] == methods


# --- first-time senders, multiple From -----------------------------------------------------


@pytest.mark.parametrize(
    ("from_", "first_time"),
    [
        ("Bob Jones <bob@example.com>", False),
        ("bob@EXAMPLE.com", False),
        ("Someone <new@example.com>", True),
        ("Carol <carol@shop.example>", True),
    ],
)
def test_first_time_sender(from_: str, first_time: bool) -> None:
    found = kinds(message(from_))
    assert ("first-time-sender" in found) == first_time
    if first_time:
        assert found["first-time-sender"] == "info"


def test_multiple_from_addresses() -> None:
    found = kinds(message("Bob Jones <bob@example.com>, Mallory <m@evil.example>"))
    assert found.get("multiple-from") == "warning"


def test_a_known_sender_writing_plainly_has_no_signs() -> None:
    parsed = message(
        "Bob Jones <bob@example.com>",
        headers=ar("mx.me.example; dkim=pass; spf=pass; dmarc=pass"),
        body="See https://example.com/agenda and www.example.com.",
    )
    assert signs(parsed) == ()


def test_most_severe_first() -> None:
    parsed = message('"support@paypal.com" <x@evil.example>', body="http://3232235777/")
    order = [s.severity for s in signs(parsed)]
    assert order == sorted(order, key=["danger", "warning", "info"].index)


# --- helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "ip"),
    [
        ("3232235777", "192.168.1.1"),
        ("0xC0A80101", "192.168.1.1"),
        ("0xc0.0xa8.1.1", "192.168.1.1"),
        ("0300.0250.1.1", "192.168.1.1"),
        ("0300.0250.0401", "192.168.1.1"),
        ("192.168.257", "192.168.1.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("[::1]", "::1"),
        ("1.2.3.4.5", "invalid"),
        ("999.1.1.1", "invalid"),
        ("4294967296", "invalid"),
        ("09.1.1.1", "invalid"),
        ("example.com", None),
        ("1e3", None),
        ("example.123a", None),
        ("", None),
    ],
)
def test_numeric_host(host: str, ip: str | None) -> None:
    assert numeric_host(host) == ip


@pytest.mark.parametrize(
    ("host", "org"),
    [
        ("example.com", "example.com"),
        ("a.b.example.com", "example.com"),
        ("WWW.Example.COM.", "example.com"),
        ("shop.example.co.uk", "example.co.uk"),
        ("x.example.com.au", "example.com.au"),
        ("alice.github.io", "alice.github.io"),
        ("a.alice.github.io", "alice.github.io"),
        ("bucket.s3.amazonaws.com", "bucket.s3.amazonaws.com"),
        ("localhost", "localhost"),
        ("192.168.1.1", "192.168.1.1"),
    ],
)
def test_registrable_domain(host: str, org: str) -> None:
    assert registrable_domain(host) == org


# --- opening links -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed", "target"),
    [
        ("https://example.com/a?b=c#d", True, "https://example.com/a?b=c#d"),
        ("http://example.com", True, "http://example.com"),
        ("  https://example.com/  ", True, "https://example.com/"),
        ("HTTPS://example.com/", True, "https://example.com/"),
        ("https:///example.com/x", True, "https://example.com/x"),
        ("https:\\\\example.com\\x", True, "https://example.com/x"),
        ("https://evil.example\\@bank.example/", True, "https://evil.example/@bank.example/"),
        ("https://example.com/a b", True, "https://example.com/a%20b"),
        ("https://example.com/\x1b[2J", True, "https://example.com/%1B[2J"),
        ("https://example.com/\u202egnp.exe", True, "https://example.com/%E2%80%AEgnp.exe"),
        ("mailto:a@example.com", True, "mailto:a@example.com"),
        (
            "mailto:a@example.com?subject=Hi&body=Yo",
            True,
            "mailto:a@example.com?subject=Hi&body=Yo",
        ),
        ("mailto:a@example.com?attach=/etc/passwd", True, "mailto:a@example.com"),
        (
            "mailto:a@example.com?Attachment=~/.ssh/id_rsa&subject=x",
            True,
            "mailto:a@example.com?subject=x",
        ),
        ("mailto:a@example.com?%61ttach=/etc/shadow", True, "mailto:a@example.com"),
        ("mailto:a@example.com?file=/tmp/x&FILES=y&path=z", True, "mailto:a@example.com"),
        ("mailto:?to=a@example.com&from=ceo@corp.example", True, "mailto:?to=a@example.com"),
        ("javascript:alert(1)", False, ""),
        (" javascript:alert(1)", False, ""),
        ("java\nscript:alert(1)", False, ""),
        ("JAVASCRIPT:alert(1)", False, ""),
        ("data:text/html,<script>", False, ""),
        ("file:///etc/passwd", False, ""),
        ("ftp://example.com/", False, ""),
        ("vbscript:x", False, ""),
        ("about:blank", False, ""),
        ("ssh://example.com", False, ""),
        ("x-scheme-handler:y", False, ""),
        ("example.com", False, ""),
        ("//example.com", False, ""),
        ("http://", False, ""),
        ("", False, ""),
        ("https://example.com/" + "a" * 70_000, False, ""),
    ],
)
def test_safe_link_target(url: str, allowed: bool, target: str) -> None:
    check = safe_link_target(url)
    assert check.allowed is allowed
    assert check.target == target
    assert not _CONTROL.search(check.display)
    if not allowed:
        assert check.reason


def test_mailto_reports_what_it_dropped() -> None:
    check = safe_link_target("mailto:a@example.com?subject=x&attach=/etc/passwd&X-Evil=1")
    assert check.dropped == ("attach", "x-evil")


def test_opening_a_disguised_link_shows_the_real_host() -> None:
    check = safe_link_target("https://bank.example@evil.example/login")
    assert check.allowed
    assert "evil.example" in check.display
    assert any(s.kind == "link-userinfo" for s in check.signs)
    idn = safe_link_target("https://xn--pypal-4ve.com/")
    assert "pаypal.com" in idn.display and "xn--pypal-4ve.com" in idn.display
    assert any(s.severity == "danger" for s in idn.signs)


# --- properties ----------------------------------------------------------------------------

_addresses = st.builds(Address, st.text(max_size=40), st.text(max_size=40))


@settings(max_examples=300, deadline=None)
@given(
    from_=st.lists(_addresses, max_size=3),
    reply_to=st.lists(_addresses, max_size=2),
    sender=st.lists(_addresses, max_size=2),
    headers=st.lists(
        st.tuples(st.sampled_from(["Authentication-Results", "X"]), st.text()), max_size=4
    ),
    html=st.none() | st.text(max_size=300),
    plain=st.none() | st.text(max_size=300),
    known=st.lists(_addresses, max_size=5),
    trusted=st.text(max_size=10),
)
def test_assess_never_raises(
    from_: list[Address],
    reply_to: list[Address],
    sender: list[Address],
    headers: list[tuple[str, str]],
    html: str | None,
    plain: str | None,
    known: list[Address],
    trusted: str,
) -> None:
    parsed = ParsedMessage(
        envelope=Envelope(from_=tuple(from_), reply_to=tuple(reply_to), sender=tuple(sender)),
        text_plain=plain,
        text_html=html,
        attachments=(),
        headers=tuple(headers),
    )
    result = assess(
        parsed,
        known_correspondents=SimpleCorrespondents(known),
        trusted_authserv_id=trusted,
        my_domains=[a.domain() for a in known],
    )
    for sign in result:
        assert sign.severity in ("info", "warning", "danger")
        assert not _CONTROL.search(sign.reason)


_url_parts = st.sampled_from(
    [
        "http://",
        "https://",
        "mailto:",
        "javascript:",
        "//",
        "@",
        "\\",
        "xn--",
        ".",
        ":",
        "/",
        "?",
        "#",
        "&",
        "=",
        "%",
        "0x",
        "1",
        "[",
        "]",
        "\t",
        "\n",
        " ",
        "а",
        "example",
        "attach",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_url_parts | st.text(max_size=5), max_size=12).map("".join))
def test_safe_link_target_never_raises_and_is_clean(url: str) -> None:
    check = safe_link_target(url)
    assert not _CONTROL.search(check.display)
    if check.allowed:
        assert check.scheme in ("http", "https", "mailto")
        assert not re.search(r"[\x00-\x20\x7f-\x9f]", check.target)
        assert "attach" not in check.target.partition("?")[2].lower() or check.scheme != "mailto"
    else:
        assert check.target == ""


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_assess_never_raises_on_parsed_garbage(raw: bytes) -> None:
    assess(parse_message(raw), known_correspondents=KNOWN, trusted_authserv_id=TRUSTED)
