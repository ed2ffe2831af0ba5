"""Regenerate screenshots/ from the real app on the demo mailbox.

    python scripts/screenshots.py [--out screenshots] [--no-png]

Each shot is an SVG exported by Textual (what the app really drew) at 80x24 and 120x40,
plus a PNG when cairosvg is installed (`pip install cairosvg`): the SVG names the
"Fira Code" font, which is swapped for "DejaVu Sans Mono" first so cairo draws a real
monospace font with box-drawing characters. The demo mailbox is dated from a fixed day, so
the shots only change when the app does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)

Step = Callable[["object"], Awaitable[None]]


async def wait_until(pilot: object, check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    await pilot.pause(0.3)  # type: ignore[attr-defined]
    while not check() and time.monotonic() < deadline:
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


async def shoot(root: Path, out: Path, size: tuple[int, int], theme: str) -> list[Path]:
    from tuimail.config import Config, UIConfig
    from tuimail.ui.app import TuimailApp
    from tuimail.ui.screens.viewer import ViewerScreen
    from tuimail.ui.widgets.message_view import MessageView

    width, height = size
    app = TuimailApp(Config(ui=UIConfig(theme=theme)), root, demo=True)
    written: list[Path] = []

    def listed(app: TuimailApp) -> bool:
        return app.main is not None and app.main.message_list.row_count > 0

    def save(name: str) -> None:
        path = out / f"{name}-{theme}-{width}x{height}.svg"
        path.write_text(app.export_screenshot(title=f"tuimail — {name}"), encoding="utf-8")
        written.append(path)

    async with app.run_test(size=size) as pilot:
        preview = app.query_one("#preview", MessageView)
        await wait_until(pilot, lambda: preview.reading is not None)
        save("main")
        # The phishing attempt, opened: the signs and the real address.
        await pilot.press("slash", *"from:paypa1", "enter")
        await wait_until(
            pilot, lambda: app.main is not None and app.main.message_list.row_count > 0
        )
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: (
                isinstance(app.screen, ViewerScreen)
                and app.screen.query_one(MessageView).reading is not None
            ),
        )
        save("phishing")
        # Its HTML part, and link 1: where the link really goes, asked before opening.
        await pilot.press("T")
        await wait_until(pilot, lambda: app.screen.query_one(MessageView).prefer == "html")
        await pilot.press("1")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "OpenLinkScreen")
        save("link")
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, ViewerScreen))
        await pilot.press("q", "escape")
        # The hostile message: escapes and markup shown as text.
        await pilot.press("slash", *"from:mallory", "enter")
        await wait_until(
            pilot, lambda: app.main is not None and app.main.message_list.row_count > 0
        )
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ViewerScreen))
        save("escapes")
        await pilot.press("q", "escape")
        await wait_until(
            pilot,
            lambda: (
                app.main is not None
                and app.main.view is not None
                and app.main.view.kind != "search"
            ),
        )
        await pilot.press("c")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ComposeScreen")
        await pilot.press(*"zoe@cel", "right", "tab", "tab", "tab", *"Tarte aux pommes")
        await pilot.press("tab", *"Merci pour la recette !")
        await pilot.pause(0.3)
        save("compose")
    return written


def to_png(svg: Path) -> Path | None:
    try:
        import cairosvg  # type: ignore[import-not-found]
    except ImportError:
        return None
    text = svg.read_text(encoding="utf-8").replace("Fira Code", "DejaVu Sans Mono")
    png = svg.with_suffix(".png")
    cairosvg.svg2png(bytestring=text.encode("utf-8"), write_to=str(png), output_width=1600)
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "screenshots")
    parser.add_argument("--no-png", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("COLORTERM", "truecolor")
    os.environ["TZ"] = "UTC"
    time.tzset()
    from tuimail.demo import build_demo_store
    from tuimail.ui import format as fmt

    fmt.now = lambda: NOW  # dates relative to the demo's fixed "today"
    from tuimail.ui import links

    real_browser_command = links.browser_command

    def same_browser_everywhere(url: str, environ: object, *args: object) -> object:
        # The link dialog names the browser: the same one on every machine that shoots.
        return real_browser_command(
            url, {"BROWSER": "firefox", "DISPLAY": ":0"}, lambda name: f"/usr/bin/{name}"
        )

    links.browser_command = same_browser_everywhere  # type: ignore[assignment]
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tuimail-shots-") as tmp:
        # A private home: no draft, theme or config of the user's leaks into the shots.
        for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
            os.environ[var] = str(Path(tmp) / var.lower())
        root = Path(tmp) / "demo"
        os.environ["TUIMAIL_DATA_DIR"] = str(root)  # drafts go to root/drafts
        build_demo_store(root, now=NOW)
        written: list[Path] = []
        for size in ((80, 24), (120, 40)):
            for theme in ("tuimail-dark", "mutt"):
                for draft in (root / "drafts").glob("*.json"):
                    draft.unlink()  # the composer of the last shot autosaved one
                written += asyncio.run(shoot(root, args.out, size, theme))
    pngs = 0
    for svg in written:
        print(svg.relative_to(REPO) if svg.is_relative_to(REPO) else svg)
        if not args.no_png and to_png(svg) is not None:
            pngs += 1
    if not args.no_png and not pngs:
        print("(no PNGs: pip install cairosvg to render them)")


if __name__ == "__main__":
    main()
