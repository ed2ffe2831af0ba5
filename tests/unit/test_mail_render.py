"""mail.render: safe display text, numbered links, no network, bounded HTML conversion."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuimail.mail.parse import parse_message
from tuimail.mail.render import (
    HTML2TEXT_LIMIT,
    MAX_LINKS,
    Link,
    format_address,
    format_addresses,
    format_date_local,
    format_size,
    html_to_text,
    render_message,
)
from tuimail.models import Address

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "messages"
BODY_FORBIDDEN = {chr(c) for c in range(0x20) if c not in (9, 10)} | {
    chr(c) for c in range(0x7F, 0xA0)
}
BIDI_ZW = set(
    "\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)
LINE_FORBIDDEN = BODY_FORBIDDEN | {"\t", "\n"} | BIDI_ZW


def assert_safe(rendered: object) -> None:
    """No control, bidi or zero-width character anywhere in a RenderedMessage."""
    r = rendered
    assert not (set(r.body) & (BODY_FORBIDDEN | BIDI_ZW)), repr(r.body[:200])  # type: ignore[attr-defined]
    strings = [r.subject] + [v for h in r.headers for v in h] + list(r.warnings)  # type: ignore[attr-defined]
    strings += [x for link in r.links for x in (link.text, link.target)]  # type: ignore[attr-defined]
    strings += [x for a in r.attachments for x in (a.name, a.content_type)]  # type: ignore[attr-defined]
    for s in strings:
        assert not (set(s) & LINE_FORBIDDEN), repr(s)


def html_msg(body: str, extra: str = "") -> bytes:
    head = "From: a@x\r\nSubject: s\r\nContent-Type: text/html; charset=utf-8\r\n" + extra
    return (head + "\r\n" + body).encode("utf-8")


# --- HTML ----------------------------------------------------------------------------------

HTML_CASES = [
    # (html, must contain, must not contain)
    ("<p>Hello <b>world</b></p>", ["Hello **world**"], []),
    ("<script>alert(1)</script><p>x</p>", ["x"], ["alert"]),
    ("<style>p{color:red}</style><p>x</p>", ["x"], ["color"]),
    ("<head><title>T</title><meta x></head><body>b</body>", ["b"], ["T"]),
    ("<!-- hidden comment --><p>shown</p>", ["shown"], ["hidden"]),
    ("<!--[if mso]><table><tr><td>mso only</td></tr></table><![endif]-->ok", ["ok"], ["mso"]),
    ("a < b and c<d, 1<2", ["a < b and c<d, 1<2"], []),
    ("<p>&#27;[31mred&#27;[0m</p>", ["⟦U+001B⟧[31mred"], ["\x1b"]),
    ("<p>bell&#7; c1&#x9d; del&#127;</p>", ["⟦U+0007⟧", "⟦U+009D⟧", "⟦U+007F⟧"], []),
    ("<p>&#x202e;gnp.exe</p>", ["⟦U+202E⟧gnp.exe"], ["\u202e"]),
    ('<img src="https://tracker.example/p.gif" alt="Logo">', ["[image: Logo]"], ["tracker"]),
    ('<img src="cid:x">', ["[image]"], ["cid:"]),
    ("<img alt='a &amp; b' src=x>", ["[image: a & b]"], []),
    (
        '<form action="https://evil.example/steal"><input type=password name=p>Enter</form>',
        ["Enter"],
        ["evil.example", "password"],
    ),
    ("<p>[@click=app.quit]q[/] [b]x[/b]</p>", ["[@click=app.quit]q[/]", "[b]x[/b]"], []),
    ("<table><tr><td>a</td><td>b</td></tr></table>", ["a", "b"], []),
    ("<ul><li>one</li><li>two</li></ul>", ["one", "two"], []),
    ("plain &lt;not a tag&gt; &amp; text", ["<not a tag> & text"], []),
    ("<iframe src='https://x.example'>inner</iframe>ok", ["ok"], ["inner", "x.example"]),
]


@pytest.mark.parametrize(("markup", "present", "absent"), HTML_CASES)
def test_html_table(markup: str, present: list[str], absent: list[str]) -> None:
    r = render_message(parse_message(html_msg(markup)))
    assert r.source == "html"
    for p in present:
        assert p in r.body
    for a in absent:
        assert a not in r.body
    assert_safe(r)


def test_links_are_numbered_with_real_targets() -> None:
    markup = (
        '<p><a href="https://shop.example/a">first</a> and '
        "<a href='https://evil.example/login'>https://bank.example/login</a> and "
        '<a href="mailto:x@y.example">mail us</a> and <a name="anchor">no href</a> and '
        '<a href="https://www.bank.example/x">bank.example</a></p>'
    )
    r = render_message(parse_message(html_msg(markup)))
    assert r.links == (
        Link(1, "first", "https://shop.example/a", False),
        Link(2, "https://bank.example/login", "https://evil.example/login", True),
        Link(3, "mail us", "mailto:x@y.example", False),
        Link(4, "bank.example", "https://www.bank.example/x", False),
    )
    assert "first [1] and https://bank.example/login [2] and mail us [3]" in r.body
    assert "no href and" in r.body
    assert r.body.endswith(
        "Links:\n[1] https://shop.example/a\n"
        "[2] https://evil.example/login  (!) the link text shows https://bank.example/login\n"
        "[3] mailto:x@y.example\n[4] https://www.bank.example/x"
    )


def test_link_targets_and_texts_are_sanitized() -> None:
    markup = '<a href="https://x.example/&#27;[2J\u202e">t&#7;xt\u200b</a>'
    r = render_message(parse_message(html_msg(markup)))
    # html.unescape drops references to control characters; raw ones are made visible.
    assert r.links[0].target == "https://x.example/[2J⟦U+202E⟧"
    assert r.links[0].text == "txt⟦U+200B⟧"
    assert_safe(r)


def test_unclosed_and_nested_anchors() -> None:
    text, links, _ = html_to_text('<a href="u1">a <a href="u2">b</a> c <a href="u3">d')
    assert [(x.text, x.target) for x in links] == [("a", "u1"), ("b", "u2"), ("d", "u3")]
    assert "a [1]" in text and "b [2]" in text and "d [3]" in text


@pytest.mark.parametrize(
    "markup",
    [
        "<div>" * 10_000 + "deep" + "</div>" * 10_000,
        "<ul><li>" * 3000 + "deep",
        "<blockquote>" * 3000 + "deep",
        "<table><tr><td>" * 2000 + "deep",
        "<a href='x'>" * 10_000 + "deep",
        "<script>" * 10_000 + "deep",
        "<b>" * 20_000 + "deep",
        "<b" * 100_000 + " deep",
        "<style" * 100_000 + "> deep",
        "<?" * 20_000 + " deep",
        "& " * 20_000 + "deep",
        "<a" * 100_000 + " deep",
        "<!--" * 100_000 + "deep",
    ],
    ids=[
        "div",
        "ul",
        "blockquote",
        "table",
        "a",
        "script",
        "b",
        "<b",
        "<style",
        "<?",
        "&",
        "<a",
        "<!--",
    ],
)
def test_deep_html_is_bounded(markup: str) -> None:
    t0 = time.perf_counter()
    text, _, _ = html_to_text(markup)
    assert time.perf_counter() - t0 < 10
    assert "deep" in text or markup.startswith(("<script>", "<style", "<!--"))
    assert len(text) < 2 * len(markup) + 10_000  # no blow-up (nested lists indent)


def test_recursion_error_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    import tuimail.mail.render as render

    def boom(markup: str, width: int | None) -> str:
        raise RecursionError

    monkeypatch.setattr(render, "_html2text", boom)
    text, _, warnings = html_to_text("<p>still <b>shown</b> &amp; safe&#27;</p>")
    assert text == "still shown & safe"  # html.unescape drops &#27;
    assert warnings == ["deeply nested HTML shown in simplified form"]


def test_large_html_uses_the_linear_converter() -> None:
    markup = "<p>para &#27; <a href='https://l.example'>link</a></p>" * (HTML2TEXT_LIMIT // 40)
    t0 = time.perf_counter()
    text, links, warnings = html_to_text(markup)
    assert time.perf_counter() - t0 < 5
    assert "large HTML part shown in simplified form" in warnings
    assert "\x1b" not in text and "link [1]" in text
    assert len(links) == MAX_LINKS
    assert f"more than {MAX_LINKS} links: only the first {MAX_LINKS} are numbered" in warnings


def test_html_beyond_the_cap_is_cut() -> None:
    _, _, warnings = html_to_text("x" * (2 * 1024 * 1024 + 10))
    assert "HTML part larger than 2 MB: only its start is shown" in warnings


def test_width_wraps_html() -> None:
    markup = "<p>" + " ".join(["word"] * 40) + "</p>"
    text, _, _ = html_to_text(markup, width=40)
    assert max(len(line) for line in text.splitlines()) <= 40
    text, _, _ = html_to_text(markup)
    assert len(text.splitlines()) == 1


def test_rendering_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access during rendering")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    for path in sorted(CORPUS.glob("*.eml")):
        render_message(parse_message(path.read_bytes()), prefer="html")
    markup = '<img src="http://x.example/a.png"><link rel=stylesheet href="http://x.example/s.css">'
    render_message(parse_message(html_msg(markup)))


# --- choosing the body -------------------------------------------------------------------------


def alternative(plain: str, markup: str) -> bytes:
    return (
        "From: a@x\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
        f"--b\r\nContent-Type: text/plain\r\n\r\n{plain}\r\n"
        f"--b\r\nContent-Type: text/html\r\n\r\n{markup}\r\n--b--\r\n"
    ).encode()


def test_prefer_plain_or_html() -> None:
    parsed = parse_message(alternative("plain text https://x.example/p.", "<p>html text</p>"))
    r = render_message(parsed)
    assert (r.source, r.body) == ("plain", "plain text https://x.example/p.")
    assert r.links == (Link(1, "https://x.example/p", "https://x.example/p"),)
    r = render_message(parsed, prefer="html")
    assert (r.source, r.body) == ("html", "html text")


def test_blank_plain_part_falls_back_to_html() -> None:
    r = render_message(parse_message(alternative("  \r\n ", "<p>html text</p>")))
    assert (r.source, r.body) == ("html", "html text")


def test_no_text_at_all() -> None:
    raw = b"From: a@x\r\nContent-Type: application/pdf\r\n\r\n%PDF"
    r = render_message(parse_message(raw))
    assert (r.source, r.body) == ("", "")
    assert [(a.name, a.content_type) for a in r.attachments] == [
        ("(unnamed application/pdf)", "application/pdf")
    ]


# --- headers and formatting ----------------------------------------------------------------------

ADDRESS_CASES = [
    (Address("Alice", "alice@example.org"), "Alice <alice@example.org>"),
    (Address("", "alice@example.org"), "alice@example.org"),
    (Address("alice@example.org", "alice@example.org"), "alice@example.org"),
    (Address("ceo@bank.example", "evil@evil.example"), '"ceo@bank.example" <evil@evil.example>'),
    (Address("Doe, Jane", "j@x"), '"Doe, Jane" <j@x>'),
    (Address('Say "hi"', "h@x"), '"Say \\"hi\\"" <h@x>'),
    (Address("Evil\u202e", "e@x"), "Evil⟦U+202E⟧ <e@x>"),
    (Address("Esc\x1b[2J", "e\x1b@x"), '"Esc⟦U+001B⟧[2J" <e⟦U+001B⟧@x>'),
    (Address("Name", ""), "Name <>"),
    (Address("", ""), "<>"),
]


@pytest.mark.parametrize(("address", "shown"), ADDRESS_CASES)
def test_format_address_table(address: Address, shown: str) -> None:
    assert format_address(address) == shown


def test_format_addresses_caps_long_lists() -> None:
    many = [Address("", f"u{i}@x") for i in range(60)]
    shown = format_addresses(many)
    assert shown.startswith("u0@x, u1@x")
    assert shown.endswith("u49@x, … and 10 more")


DATE_CASES = [
    (
        datetime(2024, 4, 15, 10, 11, tzinfo=timezone(timedelta(hours=2))),
        UTC,
        "Mon, 15 Apr 2024 08:11",
    ),
    (
        datetime(2024, 12, 31, 23, 30, tzinfo=UTC),
        timezone(timedelta(hours=1)),
        "Wed, 1 Jan 2025 00:30",
    ),
    (None, UTC, ""),
]


@pytest.mark.parametrize(("dt", "tz", "shown"), DATE_CASES)
def test_format_date_local_table(dt: datetime | None, tz: timezone, shown: str) -> None:
    assert format_date_local(dt, tz) == shown


def test_format_date_local_defaults_to_system_zone() -> None:
    dt = datetime(2024, 4, 15, 10, 11, tzinfo=UTC)
    local = dt.astimezone()
    assert format_date_local(dt).endswith(f"{local.hour:02d}:{local.minute:02d}")


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KB"), (20 * 1024, "20 KB"), (5 * 1024**3, "5.0 GB")],
)
def test_format_size_table(size: int, shown: str) -> None:
    assert format_size(size) == shown


def test_headers_show_real_addresses_and_reply_to() -> None:
    raw = (
        b'From: "support@bank.example" <evil@evil.example>\r\n'
        b"Reply-To: Bank <collect@evil.example>\r\nSender: s@evil.example\r\n"
        b"To: me@example.com\r\nCc: =?utf-8?q?x=E2=80=AE?= <c@x>\r\n"
        b"Date: Mon, 15 Apr 2024 10:11:12 +0000\r\nSubject: =?utf-8?q?hi=1B[2J?=\r\n\r\nb"
    )
    r = render_message(parse_message(raw))
    labels = dict(r.headers)
    assert labels["From"] == '"support@bank.example" <evil@evil.example>'
    assert labels["Reply-To"] == "Bank <collect@evil.example>"
    assert labels["Sender"] == "s@evil.example"
    assert labels["Cc"] == "x⟦U+202E⟧ <c@x>"
    assert labels["Subject"] == r.subject == "hi⟦U+001B⟧[2J"
    assert [h[0] for h in r.headers] == [
        "From",
        "Sender",
        "Reply-To",
        "To",
        "Cc",
        "Date",
        "Subject",
    ]
    assert_safe(r)


# --- the corpus and properties -------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.eml")), ids=lambda p: p.name)
@pytest.mark.parametrize("prefer", ["plain", "html"])
def test_corpus_renders_safely(path: Path, prefer: str) -> None:
    r = render_message(parse_message(path.read_bytes()), prefer=prefer, width=80)
    assert_safe(r)


html_tokens = st.sampled_from(
    [
        "<p>",
        "</p>",
        "<a href='https://a.example/&#27;'>",
        "</a>",
        "<img alt='&#7;'>",
        "<script>",
        "</script>",
        "<ul><li>",
        "<table><tr><td>",
        "&#27;",
        "&#x9d;",
        "&#x202e;",
        "&#0;",
        "&#xd800;",
        "&#1114112;",
        "text",
        "[b]",
        "\x1b",
        "\u200b",
        "<!--",
        "-->",
        "<",
        ">",
        "&",
        "<br>",
        "<style>",
        "</style>",
        "<pre>",
        "\t",
        "\r\n",
        "<h1>",
        "<blockquote>",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(html_tokens, max_size=40).map("".join), st.sampled_from([None, 40, 80]))
def test_rendered_html_never_contains_controls(markup: str, width: int | None) -> None:
    r = render_message(parse_message(html_msg(markup)), width=width)
    assert_safe(r)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_render_never_raises_on_any_bytes(raw: bytes) -> None:
    for prefer in ("plain", "html"):
        assert_safe(render_message(parse_message(raw), prefer=prefer))
