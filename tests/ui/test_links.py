"""Opening links from the viewer: the full target first, only http(s)/mailto, argv only."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from textual.widgets import Input
from ui_support import flat_text, screen_text, settle, stray_controls

from tuimail.mail.phishing import LinkCheck, Sign, safe_link_target
from tuimail.mail.render import Link
from tuimail.models import Flags
from tuimail.store.store import Store
from tuimail.store.types import NewMessage
from tuimail.ui import links as opening
from tuimail.ui.app import TuimailApp
from tuimail.ui.links import Opener, browser_command, review
from tuimail.ui.screens.compose import ComposeScreen
from tuimail.ui.screens.links import LinkListScreen, OpenLinkScreen
from tuimail.ui.screens.viewer import ViewerScreen
from tuimail.ui.widgets.message_view import MessageView

# ------------------------------------------------------------------ choosing the opener


def which_of(*present: str):  # type: ignore[no-untyped-def]
    return lambda name: f"/usr/bin/{name}" if name in present else None


URL = "https://example.org/a?b=c&d=e"


@pytest.mark.parametrize(
    ("environ", "present", "expected"),
    [
        ({"BROWSER": "firefox", "DISPLAY": ":0"}, ("firefox",), Opener(("firefox", URL), False)),
        (  # %s inside a word, as Python's webbrowser reads $BROWSER
            {"BROWSER": "chromium --app=%s", "DISPLAY": ":0"},
            ("chromium",),
            Opener(("chromium", f"--app={URL}"), False),
        ),
        (  # the first runnable entry of a :-list wins
            {"BROWSER": "nosuch:w3m -o x", "DISPLAY": ":0"},
            ("w3m",),
            Opener(("w3m", "-o", "x", URL), False),
        ),
        ({"BROWSER": "lynx"}, ("lynx",), Opener(("lynx", URL), True)),  # no display: terminal
        ({"BROWSER": "'unbalanced", "WAYLAND_DISPLAY": "w"}, ("xdg-open",), None),
        ({"WAYLAND_DISPLAY": "w"}, ("xdg-open",), Opener(("xdg-open", URL), False)),
        ({"BROWSER": "gone", "DISPLAY": ":0"}, ("xdg-open",), Opener(("xdg-open", URL), False)),
        ({}, (), None),
        ({"DISPLAY": ":0"}, ("open",), None),  # on Linux `open` is openvt, never used
    ],
)
def test_browser_command(
    environ: Mapping[str, str], present: tuple[str, ...], expected: Opener | None
) -> None:
    got = browser_command(URL, environ, which_of(*present), platform="linux")
    if environ.get("BROWSER") == "'unbalanced":
        expected = Opener(("xdg-open", URL), False)  # a broken entry is skipped
    assert got == expected


def test_macos_uses_open_and_has_a_display() -> None:
    assert browser_command(URL, {}, which_of("open"), platform="darwin") == Opener(
        ("open", URL), False
    )


@given(
    url=st.text(min_size=1),
    browser=st.sampled_from(["b", "b --new-tab", "b %s", "b --x=%s --y", "'b c' -z"]),
)
def test_the_url_is_always_one_argv_element(url: str, browser: str) -> None:
    """Whatever the URL holds (spaces, quotes, ;, $(...)), it is never split or re-read."""
    sentinel = "\x00URL\x00"  # never in a URL from a message: sanitized text has no NUL
    opener = browser_command(url, {"BROWSER": browser}, lambda name: name)
    shape = browser_command(sentinel, {"BROWSER": browser}, lambda name: name)
    assert opener is not None and shape is not None
    # Same argv as with a placeholder URL: the URL's contents change no word boundary.
    assert opener.argv == tuple(arg.replace(sentinel, url) for arg in shape.argv)
    assert sum(sentinel in arg for arg in shape.argv) == 1
    assert opener.argv[0] in ("b", "b c")


def test_review_collects_every_warning() -> None:
    link = Link(1, "https://www.paypal.com/", "http://paypa1.example/x", deceptive=True)
    check = LinkCheck(
        True,
        "http://paypa1.example/x",
        "http://paypa1.example/x",
        "http",
        signs=(Sign("x", "first-time host", "info"), Sign("y", "a numeric host", "danger")),
    )
    got = review(link, check)
    assert got.allowed
    assert "https://www.paypal.com/" in got.warnings[0]  # the deceptive text, first
    assert got.warnings[1:] == ("a numeric host", "first-time host")  # serious before info
    mailto = review(
        Link(2, "write", "mailto:a@b.example?attach=/etc/passwd"),
        safe_link_target("mailto:a@b.example?attach=/etc/passwd&ATTACH=x"),
    )
    assert mailto.dropped == ("attach",)


# ------------------------------------------------------------------ in the app

LINKS_MESSAGE = b"""From: Pay Pal <service@paypa1-login.example>\r
To: alex@example.org\r
Subject: Links galore\r
Date: Wed, 15 Jan 2025 11:58:00 +0000\r
Message-ID: <links@example.net>\r
MIME-Version: 1.0\r
Content-Type: text/html; charset=utf-8\r
\r
""" + b"\n".join(
    b'<p><a href="%s">%s</a></p>' % pair
    for pair in [
        (
            b"http://paypa1-login.example/verify?id=1&amp;session="
            + b"0123456789abcdef" * 4
            + b"0123456789",
            b"https://www.paypal.com/",
        ),
        (b"javascript:alert(document.cookie)", b"click"),
        (b"file:///etc/passwd", b"passwords"),
        (
            b"mailto:help@example.org?subject=Hi%20there&attach=%2Fhome%2Fme%2F.ssh%2Fid_rsa"
            b"&body=Hello",
            b"write to us",
        ),
        (b"https://example.org/x?[@click=app.quit]", b"[@click=app.quit]&#27;[2Jtext"),
    ]
)
PHISH_TARGET = (
    "http://paypa1-login.example/verify?id=1&session="
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
)


@pytest.fixture
def links_root(demo_root: Path) -> Path:
    with Store.open(demo_root) as store:
        inbox = store.folder("personal", "INBOX")
        assert inbox is not None
        store.add_messages(
            inbox.id,
            [NewMessage(88_888, Flags(), len(LINKS_MESSAGE), None, LINKS_MESSAGE, True)],
        )
    return demo_root


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Every argv the app would start, recorded instead of run; a graphical session."""
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(opening, "start", calls.append)
    monkeypatch.setattr(opening, "run_in_terminal", lambda argv: calls.append(argv) or 0)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("BROWSER", "true --new-window %s")  # /usr/bin/true: found on PATH
    return calls


async def open_links_message(app: TuimailApp, pilot: object) -> ViewerScreen:
    main = app.main
    assert main is not None
    await pilot.press("slash", *"subject:galore", "enter")  # type: ignore[attr-defined]
    await settle(pilot, lambda: main.message_list.row_count == 1)  # type: ignore[arg-type]
    await pilot.press("enter")  # type: ignore[attr-defined]
    await settle(  # type: ignore[arg-type]
        pilot,
        lambda: (
            isinstance(app.screen, ViewerScreen)
            and app.screen.query_one(MessageView).reading is not None
        ),
    )
    assert isinstance(app.screen, ViewerScreen)
    return app.screen


async def test_a_link_opens_only_after_confirmation(
    links_root: Path, launched: list[tuple[str, ...]]
) -> None:
    app = TuimailApp(None, links_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        viewer = await open_links_message(app, pilot)
        await pilot.press("1")
        await settle(pilot, lambda: isinstance(app.screen, OpenLinkScreen))
        assert launched == []
        flat = flat_text(app)
        assert PHISH_TARGET in flat.replace(" ", "")  # the whole target, wrapped, not cut
        assert "https://www.paypal.com/" in flat  # what the message pretended
        assert "⚠" in flat and "goes somewhere else" in flat
        assert "open with true" in flat
        await pilot.press("n")
        await settle(pilot, lambda: app.screen is viewer)
        assert launched == []
        # The list: choosing a link still only shows the dialog.
        await pilot.press("l")
        await settle(pilot, lambda: isinstance(app.screen, LinkListScreen))
        listed = screen_text(app)
        assert "[1]" in listed and "[5]" in listed and "javascript:" in listed
        assert stray_controls(app) == []
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, OpenLinkScreen))
        assert launched == []
        await pilot.press("y")
        await settle(pilot, lambda: app.screen is viewer)
        assert launched == [("true", "--new-window", PHISH_TARGET)]


@pytest.mark.parametrize(
    ("number", "reason"),
    [("2", "tuimail does not open javascript: links"), ("3", "does not open file: links")],
)
async def test_javascript_and_file_links_are_refused(
    links_root: Path, launched: list[tuple[str, ...]], number: str, reason: str
) -> None:
    app = TuimailApp(None, links_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        viewer = await open_links_message(app, pilot)
        await pilot.press(number)
        await settle(pilot, lambda: isinstance(app.screen, OpenLinkScreen))
        assert reason in flat_text(app)
        await pilot.press("y")  # no "yes" for a refused link
        await settle(pilot)
        assert isinstance(app.screen, OpenLinkScreen)
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is viewer)
        assert launched == []


async def test_mailto_link_opens_the_composer_without_the_attachment(
    links_root: Path, launched: list[tuple[str, ...]]
) -> None:
    app = TuimailApp(None, links_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_links_message(app, pilot)
        await pilot.press("4")
        await settle(pilot, lambda: isinstance(app.screen, OpenLinkScreen))
        flat = flat_text(app)
        assert "Ignored fields of the link: attach" in flat
        assert "id_rsa" not in flat  # the vetted target has dropped the field
        await pilot.press("y")
        await settle(pilot, lambda: isinstance(app.screen, ComposeScreen))
        composer = app.screen
        assert composer.query_one("#to", Input).value == "help@example.org"
        assert composer.query_one("#subject", Input).value == "Hi there"
        assert composer.attachments == []
        assert any("attach" in n.message for n in app._notifications)
        assert launched == []


async def test_markup_in_a_link_is_shown_not_run(
    links_root: Path, launched: list[tuple[str, ...]]
) -> None:
    app = TuimailApp(None, links_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_links_message(app, pilot)
        await pilot.press("5")
        await settle(pilot, lambda: isinstance(app.screen, OpenLinkScreen))
        flat = flat_text(app)
        assert "[@click=app.quit]" in flat
        assert stray_controls(app) == []
        await pilot.click(offset=(50, 12))
        await settle(pilot)
        assert app.is_running
        assert launched == []


async def test_without_a_browser_it_says_so(
    links_root: Path,
    launched: list[tuple[str, ...]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # neither $BROWSER's command nor xdg-open
    app = TuimailApp(None, links_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        viewer = await open_links_message(app, pilot)
        await pilot.press("1")
        await settle(pilot, lambda: isinstance(app.screen, OpenLinkScreen))
        assert "No browser found" in flat_text(app)
        await pilot.press("y")
        await settle(pilot, lambda: app.screen is viewer)
        assert any("No browser found" in n.message for n in app._notifications)
        assert launched == []


async def test_link_numbers_beyond_the_message_say_so(
    links_root: Path, launched: list[tuple[str, ...]]
) -> None:
    app = TuimailApp(None, links_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        viewer = await open_links_message(app, pilot)
        await pilot.press("9")
        await settle(pilot)
        assert app.screen is viewer
        assert any("no link [9] (it has 5)" in n.message for n in app._notifications)


# ------------------------------------------------------------------ tuimail mailto:...


async def test_mailto_on_start_opens_the_composer(demo_root: Path) -> None:
    url = "mailto:zoe@celik.example?subject=Lunch%3F&body=Noon%20works&attach=~/.ssh/id_rsa"
    app = TuimailApp(None, demo_root, demo=True, mailto=url)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, lambda: isinstance(app.screen, ComposeScreen))
        composer = app.screen
        assert isinstance(composer, ComposeScreen)
        assert composer.query_one("#to", Input).value == "zoe@celik.example"
        assert composer.query_one("#subject", Input).value == "Lunch?"
        assert composer.attachments == []
        assert any("attach" in n.message for n in app._notifications)
        await pilot.press("escape")  # nothing typed: closes; the main screen is underneath
        await settle(pilot)
        assert app.main is not None and app.screen is app.main


async def test_mailto_on_start_with_a_bad_address_keeps_the_main_screen(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True, mailto="mailto:not%20an%20address%3C%3E")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.screen is app.main
        assert any("bad address" in n.message for n in app._notifications)


def test_the_cli_hands_the_mailto_argument_to_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    import tuimail.ui.app as app_module
    from tuimail.cli import main

    seen: list[object] = []

    def fake_run_app(config: object, root: Path, demo: bool = False, **kwargs: object) -> int:
        seen.append((demo, kwargs.get("mailto")))
        return 0

    monkeypatch.setattr(app_module, "run_app", fake_run_app)
    assert main(["demo", "mailto:a@b.example?subject=x"]) == 0
    assert seen == [(True, "mailto:a@b.example?subject=x")]
