"""Helpers for UI tests: what the app actually puts on screen, and a small summary source.

(tests/ is not a package; tests/ui is on sys.path when its tests run.)
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Sequence

from rich.console import Console
from textual.app import App
from textual.pilot import Pilot

from tuimail.models import MessageSummary

# SGR colours, and the cursor positioning the compositor itself puts at each line start.
_SGR = re.compile(r"\x1b\[[0-9;:]*m|\x1b\[\d+;\d+H")


def _render(app: App[object], styles: bool) -> str:
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    console.print(update)
    return console.export_text(styles=styles)


def screen_text(app: App[object]) -> str:
    """The screen as plain text, one line per terminal row."""
    return _render(app, styles=False)


def screen_ansi(app: App[object]) -> str:
    """The screen with its colours (SGR codes), as a terminal would show it."""
    return _render(app, styles=True)


def flat_text(app: App[object]) -> str:
    """The screen's words in reading order, as one line (wrapped text joined back up)."""
    return " ".join(screen_text(app).replace("│", " ").replace("┃", " ").split())


def screen_lines(app: App[object]) -> list[str]:
    return screen_text(app).splitlines()


def stray_controls(app: App[object]) -> list[str]:
    """Control characters in the screen's terminal output other than SGR colour codes.

    Everything else (a bare ESC, OSC, CSI other than SGR/CUP, BEL...) would have come from mail.
    """
    ansi = _SGR.sub("", _render(app, styles=True))
    return [f"U+{ord(c):04X}" for c in ansi if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0]


class ListSource:
    """Summaries from a list, counting what was asked (to prove the list stays virtual)."""

    def __init__(self, rows: Sequence[MessageSummary]) -> None:
        self.rows = {row.id: row for row in rows}
        self.requested = 0
        self.calls = 0

    def summaries(self, ids: Sequence[int]) -> list[MessageSummary]:
        self.calls += 1
        self.requested += len(ids)
        return [self.rows[i] for i in ids if i in self.rows]


async def settle(pilot: Pilot[object], until: Callable[[], bool] | None = None) -> None:
    """Let timers (preview delay, status position) run and the screen repaint; with
    `until`, keep waiting (up to 5 s: the machine may be busy) for it to become true."""
    await pilot.pause(0.25)
    deadline = time.monotonic() + 5
    while until is not None and not until() and time.monotonic() < deadline:
        await pilot.pause(0.05)
    await pilot.pause()


async def painted(pilot: Pilot[object]) -> None:
    """Wait until the first line of the screen has something on it."""
    await settle(pilot, lambda: bool(screen_lines(pilot.app)[0].strip()))
