"""Themes (files, 16-colour default, every shipped theme renders) and screen snapshots.

Snapshots are the screen's text at 80x24 and 120x40 on the demo mailbox, compared with the
files in tests/ui/snapshots/; run with TUIMAIL_UPDATE_SNAPSHOTS=1 to rewrite them after an
intended change (and look at the diff).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ui_support import screen_text, settle, stray_controls

from tuimail import locations
from tuimail.config import Config, UIConfig
from tuimail.ui.app import TuimailApp
from tuimail.ui.themes import (
    DEFAULT_ANSI_THEME,
    DEFAULT_THEME,
    is_16_colour,
    load_themes,
    parse_theme,
    pick_theme,
    shipped_theme_dirs,
)
from tuimail.ui.widgets.message_view import MessageView

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
SHIPPED = sorted(load_themes(shipped_theme_dirs())[0])


def test_at_least_four_themes_ship_and_all_parse() -> None:
    themes, problems = load_themes(shipped_theme_dirs())
    assert problems == []
    assert len(themes) >= 4
    assert {"mutt", DEFAULT_THEME, DEFAULT_ANSI_THEME} <= set(themes)
    assert themes["mutt"].ansi and themes[DEFAULT_ANSI_THEME].ansi


@pytest.mark.parametrize(
    ("environ", "sixteen"),
    [
        ({"TERM": "xterm"}, True),
        ({"TERM": "linux"}, True),
        ({"TERM": "screen"}, True),
        ({"TERM": "xterm-256color"}, False),
        ({"TERM": "xterm", "COLORTERM": "truecolor"}, False),
        ({"TERM": "screen", "COLORTERM": "24bit"}, False),
    ],
)
def test_16_colour_terminals_get_an_ansi_theme(environ: dict[str, str], sixteen: bool) -> None:
    assert is_16_colour(environ) is sixteen
    names = [*SHIPPED, "textual-dark", "ansi-dark"]
    assert pick_theme(None, names, environ) == (DEFAULT_ANSI_THEME if sixteen else DEFAULT_THEME)
    assert pick_theme("mutt", names, environ) == "mutt"  # the user's choice wins
    assert pick_theme("no-such-theme", names, environ) in (DEFAULT_THEME, DEFAULT_ANSI_THEME)


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"name": "x"}, "primary"),
        ({"name": "Bad Name", "colors": {"primary": "#fff"}}, "name"),
        ({"name": "x", "colors": {"primary": "not-a-colour"}}, "colour"),
        ({"name": "x", "colors": {"primary": "#fff", "shiny": "#fff"}}, "unknown colours"),
        (
            {"name": "x", "colors": {"primary": "#fff"}, "variables": {"unread-color": "$evil"}},
            "colour",
        ),
        ({"name": "x", "colors": {"primary": "#fff"}, "extra": 1}, "unknown keys"),
    ],
)
def test_bad_theme_files_are_refused_with_a_reason(doc: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_theme(doc, Path("t.toml"))


def test_user_themes_override_and_broken_ones_are_reported(tmp_path: Path) -> None:
    user = locations.ensure_private_dir(locations.user_themes_dir())
    (user / "mutt.toml").write_text('name = "mutt"\n[colors]\nprimary = "#123456"\n')
    (user / "broken.toml").write_text("name = \n")
    themes, problems = load_themes()
    assert themes["mutt"].primary == "#123456"
    assert [p.path.name for p in problems] == ["broken.toml"]


@pytest.mark.parametrize("theme", SHIPPED)
async def test_every_shipped_theme_renders_the_app(demo_root: Path, theme: str) -> None:
    app = TuimailApp(Config(ui=UIConfig(theme=theme)), demo_root, demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.theme == theme
        assert "All inboxes" in screen_text(app)
        await pilot.press("enter")
        await settle(pilot)
        assert "From:" in screen_text(app)
        assert stray_controls(app) == []


async def test_16_colour_terminal_starts_in_the_ansi_theme(
    demo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "linux")
    monkeypatch.delenv("COLORTERM", raising=False)
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.theme == DEFAULT_ANSI_THEME


def check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("TUIMAIL_UPDATE_SNAPSHOTS") == "1" or not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if os.environ.get("TUIMAIL_UPDATE_SNAPSHOTS") != "1":
            pytest.fail(f"snapshot {path.name} did not exist: written, check it in")
    assert text == path.read_text(encoding="utf-8"), f"screen differs from {path}"


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
@pytest.mark.parametrize("theme", ["tuimail-dark", "mutt"])
async def test_snapshots(demo_root: Path, size: tuple[int, int], theme: str) -> None:
    app = TuimailApp(Config(ui=UIConfig(theme=theme)), demo_root, demo=True)
    width, height = size
    async with app.run_test(size=size) as pilot:
        preview = app.query_one("#preview", MessageView)
        await settle(pilot, lambda: preview.reading is not None)
        main_text = screen_text(app)
        svg = app.export_screenshot()
        await pilot.press("enter")
        await settle(pilot)
        viewer_text = screen_text(app)
    # The text is the same in every theme; the colours are not.
    check_snapshot(f"main-{width}x{height}", main_text)
    check_snapshot(f"viewer-{width}x{height}", viewer_text)
    # tuimail-dark's status bar colour; mutt uses the terminal's own blue instead.
    assert ("#252a34" in svg.lower()) is (theme == "tuimail-dark")
