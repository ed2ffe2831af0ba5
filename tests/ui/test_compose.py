"""The composer: reply, completion, checks before sending, outbox, drafts, $EDITOR."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Input, TextArea
from ui_support import flat_text, screen_text, settle

from tuimail import locations
from tuimail.config import AccountConfig, Config, OutgoingConfig
from tuimail.models import Address, TLSMode
from tuimail.ui import drafts
from tuimail.ui.app import TuimailApp
from tuimail.ui.screens.compose import ComposeScreen, complete_address, mentions_attachment
from tuimail.ui.screens.main import MainScreen
from tuimail.ui.screens.pickers import ConfirmScreen


def sending_config() -> Config:
    """The demo's personal account, able to send (nothing is contacted: no hub runs)."""
    outgoing = OutgoingConfig("smtp.example.org", 587, TLSMode.STARTTLS, "alex")
    account = AccountConfig(
        "personal", "alex@example.org", "Alex Morgan", default=True, outgoing=outgoing
    )
    return Config(accounts={"personal": account})


def composer(app: TuimailApp) -> ComposeScreen:
    screen = app.screen
    assert isinstance(screen, ComposeScreen)
    return screen


def field(app: TuimailApp, name: str) -> Input:
    return composer(app).query_one(f"#{name}", Input)


async def test_reply_quotes_and_addresses_the_sender(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        main = app.main
        assert main is not None
        original = main.current_summary()
        assert original is not None
        await pilot.press("r")
        await settle(pilot, lambda: isinstance(app.screen, ComposeScreen))
        sender = original.envelope.from_[0].addr
        assert sender in field(app, "to").value
        assert field(app, "subject").value.startswith("Re: ")
        body = composer(app).query_one("#body", TextArea).text
        assert "wrote:" in body and "\n> " in body
        await pilot.press("escape")  # nothing typed: closes at once
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("zo", "zoë Çelik <zoe@celik.example>"),  # keeps what was typed, completes the rest
        ("ann@x.org, zoe@", "ann@x.org, zoe@celik.example"),
        ("z", None),  # too short to ask
        ("nobody", None),
    ],
)
def test_complete_address(typed: str, expected: str | None) -> None:
    candidates = [Address("Zoë Çelik", "zoe@celik.example")]
    assert complete_address(typed, candidates) == expected


def test_completion_never_offers_control_characters() -> None:
    evil = [Address("Mal\x1b[2Jlory", "mal@evil.example")]
    done = complete_address("mal", evil)
    assert done is not None and "\x1b" not in done


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("See the attached report.", True),
        ("Anbei die Unterlagen", True),
        ("> they attached a file\nThanks!", False),  # quoted lines do not count
        ("Nothing to see", False),
    ],
)
def test_mentions_attachment(body: str, expected: bool) -> None:
    assert mentions_attachment(body) is expected


async def test_new_message_completes_and_queues_in_the_outbox(demo_root: Path) -> None:
    app = TuimailApp(sending_config(), demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, ComposeScreen))
        await pilot.press(*"zoe@cel")
        await settle(pilot, lambda: field(app, "to")._suggestion != "")
        await pilot.press("right")  # accept the inline completion
        assert field(app, "to").value == "zoe@celik.example"
        field(app, "subject").value = "Dinner"
        composer(app).query_one("#body", TextArea).text = "See you at eight."
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: isinstance(app.screen, MainScreen))
        items = app.store.outbox_items()
        assert len(items) == 1
        assert items[0].recipients == ("zoe@celik.example",)
        assert items[0].subject == "Dinner"
        raw = app.store.outbox_raw(items[0].id)
        assert b"From: Alex Morgan <alex@example.org>" in raw
        assert drafts.load_all() == []  # sent: no draft left behind
        assert "outbox: 1" in screen_text(app)


async def test_checks_before_sending(demo_root: Path) -> None:
    app = TuimailApp(sending_config(), demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, ComposeScreen))
        field(app, "to").value = "bob@example.com, not an address"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)  # refused, the user can fix it
        assert app.store.outbox_items() == []
        field(app, "to").value = "bob@example.com"
        composer(app).query_one("#body", TextArea).text = "The plan is attached."
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = flat_text(app)
        assert "subject is empty" in text and "nothing is attached" in text
        await pilot.press("n")
        await settle(pilot)
        assert app.store.outbox_items() == []
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await settle(pilot, lambda: isinstance(app.screen, MainScreen))
        assert len(app.store.outbox_items()) == 1


async def test_drafts_are_autosaved_and_resumed(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, ComposeScreen))
        field(app, "to").value = "bob@example.com"
        field(app, "subject").value = "Half written"
        composer(app).save_draft()  # what the 5-second timer does
        files = list(locations.drafts_dir().glob("*.json"))
        assert len(files) == 1
        assert oct(files[0].stat().st_mode & 0o777) == "0o600"
        assert json.loads(files[0].read_text())["subject"] == "Half written"
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")  # keep it
        await settle(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")  # resume
        await settle(pilot, lambda: isinstance(app.screen, ComposeScreen))
        assert field(app, "subject").value == "Half written"
        assert field(app, "to").value == "bob@example.com"


async def test_demo_cannot_send_and_keeps_the_draft(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, ComposeScreen))
        field(app, "to").value = "bob@example.com"
        field(app, "subject").value = "Hello"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.store.outbox_items() == []
        assert isinstance(app.screen, ComposeScreen)
        assert len(drafts.load_all()) == 1


async def test_editor_edits_the_body(demo_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The headless test driver cannot suspend; the editor itself really runs.
    monkeypatch.setenv("VISUAL", 'sh -c \'printf "written in the editor\\n" >> "$0"\'')

    @contextlib.contextmanager
    def no_suspend() -> Iterator[None]:
        yield

    app = TuimailApp(None, demo_root, demo=True)
    monkeypatch.setattr(app, "suspend", no_suspend)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, ComposeScreen))
        composer(app).query_one("#body", TextArea).text = "first line\n"
        await pilot.press("ctrl+e")
        await settle(pilot)
        text = composer(app).query_one("#body", TextArea).text
        assert text == "first line\nwritten in the editor\n"
