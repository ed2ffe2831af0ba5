"""The pager: hostile mail shown literally, phishing signs, raw source, safe attachment saving."""

from __future__ import annotations

from pathlib import Path

from ui_support import flat_text, screen_text, settle, stray_controls

from tuimail.ui.app import TuimailApp
from tuimail.ui.reading import save_attachment, unique_path
from tuimail.ui.screens.pickers import SaveAttachmentScreen
from tuimail.ui.screens.viewer import ViewerScreen
from tuimail.ui.widgets.message_view import MessageView


async def open_message(app: TuimailApp, pilot: object, query: str) -> ViewerScreen:
    """Search for `query`, open the first hit full-screen."""
    main = app.main
    assert main is not None
    await pilot.press("slash", *query, "enter")  # type: ignore[attr-defined]
    await settle(pilot, lambda: main.message_list.row_count > 0)  # type: ignore[arg-type]
    await pilot.press("enter")  # type: ignore[attr-defined]
    await settle(  # type: ignore[arg-type]
        pilot,
        lambda: (
            isinstance(app.screen, ViewerScreen)
            and app.screen.query_one(MessageView).reading is not None
        ),
    )
    screen = app.screen
    assert isinstance(screen, ViewerScreen)
    return screen


async def test_hostile_message_is_shown_literally(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_message(app, pilot, "from:mallory")
        text = screen_text(app)
        flat = flat_text(app)
        assert "[@click=app.quit]click me[/]" in flat  # markup shown, not run
        assert "[b]Admin[/b]" in flat
        assert "⟦U+001B⟧" in text and "⟦U+202E⟧" in text  # escapes and bidi made visible
        assert "mallory@evil.example" in text  # the real address, always
        assert "\x1b" not in text and "\u202e" not in text
        assert stray_controls(app) == []
        await pilot.click(MessageView, offset=(20, 8))  # clicking "links" does nothing
        await settle(pilot)
        assert app.is_running
        await pilot.press("V")  # raw source: still sanitized
        await settle(pilot)
        raw_view = screen_text(app)
        assert "Content-Transfer-Encoding" in raw_view or "MIME-Version" in raw_view
        assert stray_controls(app) == []


async def test_phishing_signs_and_real_link_targets(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(120, 40)) as pilot:
        viewer = await open_message(app, pilot, "from:paypa1")
        reading = viewer.query_one(MessageView).reading
        assert reading is not None and reading.signs
        flat = flat_text(app)
        assert "security@paypa1-verify.example" in flat  # the real sender
        assert "⚠" in screen_text(app)
        kinds = {sign.kind for sign in reading.signs}
        assert any("link" in kind for kind in kinds), kinds  # found in the HTML alternative
        await pilot.press("T")  # show the HTML part: links listed with their real targets
        await settle(pilot, lambda: viewer.query_one(MessageView).prefer == "html")
        assert "http://paypa1-verify.example/login" in flat_text(app)


async def test_full_headers_toggle(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_message(app, pilot, "from:paypa1")
        assert "Message-ID:" not in screen_text(app)
        await pilot.press("h")
        await settle(pilot)
        assert "Message-ID:" in screen_text(app)


async def test_save_attachment_cannot_escape_the_directory(demo_root: Path, tmp_path: Path) -> None:
    target = tmp_path / "downloads"
    target.mkdir()
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(120, 40)) as pilot:
        viewer = await open_message(app, pilot, "from:mallory")
        await pilot.press("s")
        await settle(pilot, lambda: isinstance(app.screen, SaveAttachmentScreen))
        dialog = app.screen
        assert "⟦U+202E⟧" in screen_text(app)  # the declared name, shown harmlessly
        box = dialog.query_one("#directory")
        box.value = str(target)  # type: ignore[attr-defined]
        box.focus()
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, ViewerScreen))
        saved = list(target.iterdir())
        assert len(saved) == 1
        name = saved[0].name
        assert "/" not in name and not name.startswith(".") and "\u202e" not in name
        assert saved[0].read_bytes() == b"not really"
        assert oct(saved[0].stat().st_mode & 0o777) == "0o600"
        assert not (tmp_path / ".bashrc").exists()
        assert viewer.is_attached


def test_unique_path_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(b"x")
    assert unique_path(tmp_path, "report.pdf").name == "report (1).pdf"
    assert unique_path(tmp_path, "../../report.pdf").name == "report (1).pdf"
    assert unique_path(tmp_path, "").parent == tmp_path


def test_save_attachment_refuses_symlink_races(tmp_path: Path) -> None:
    from tuimail.models import Attachment

    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
        b"hi\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: "
        b'attachment; filename="x.bin"\r\n\r\ndata\r\n--b--\r\n'
    )
    attachment = Attachment("x.bin", "application/octet-stream", 4, "2")
    first = save_attachment(raw, attachment, tmp_path)
    second = save_attachment(raw, attachment, tmp_path)
    assert first.name == "x.bin" and second.name == "x (1).bin"
    assert first.read_bytes() == b"data"


async def test_a_known_name_on_a_new_address_and_a_lookalike_domain_are_flagged(
    demo_root: Path,
) -> None:
    from tuimail.models import Flags
    from tuimail.store import Store

    with Store.open(demo_root) as store:
        assert ("priya@raman.example", "Priya Raman") in store.correspondents()
        inbox = next(f for f in store.folders() if f.name == "INBOX")
        store.append_local(
            inbox.id,
            b"From: Priya Raman <priya.raman.hr@mail-service.example>\r\n"
            b"To: you@tuimail.example\r\nSubject: Updated payroll form\r\n"
            b"Message-ID: <impostor@mail-service.example>\r\n"
            b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nPlease fill in the form.\r\n",
            Flags(),
            remote=False,
        )
        store.append_local(
            inbox.id,
            b"From: Billing <billing@rarnan.example>\r\n"
            b"To: you@tuimail.example\r\nSubject: Invoice overdue\r\n"
            b"Message-ID: <lookalike@rarnan.example>\r\n"
            b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nPay now.\r\n",
            Flags(),
            remote=False,
        )
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(120, 40)) as pilot:
        viewer = await open_message(app, pilot, "payroll")
        reading = viewer.query_one(MessageView).reading
        assert reading is not None
        assert "display-name-known" in {s.kind for s in reading.signs}
        assert "priya@raman.example" in flat_text(app)  # where this name usually writes from
        await pilot.press("escape")
        viewer = await open_message(app, pilot, "overdue")
        reading = viewer.query_one(MessageView).reading
        assert reading is not None
        assert "lookalike-domain" in {s.kind for s in reading.signs}  # rarnan ~ raman
