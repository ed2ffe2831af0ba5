"""The main screen's compositor writes what Textual's would, for any partial update."""

from __future__ import annotations

import io
import random
from functools import partial
from pathlib import Path
from unittest import mock

from rich.console import Console
from textual._compositor import Compositor
from textual.geometry import Region
from ui_support import settle

from tuimail.ui.app import TuimailApp
from tuimail.ui.compositor import RowCompositor
from tuimail.ui.widgets.message_list import MessageList
from tuimail.ui.widgets.message_view import MessageView


def partial_update(compositor: Compositor, regions: list[Region], renders: object) -> str:
    """The terminal output of a partial update of `regions`, rendered by `renders`."""
    console = Console(
        width=compositor.size.width,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        legacy_windows=False,
    )
    compositor._dirty_regions.update(regions)
    with mock.patch.object(compositor, "_get_renders", renders):
        update = compositor.render_partial_update()
    assert update is not None
    return update.render_segments(console)


async def test_partial_updates_match_textuals(demo_root: Path) -> None:
    app = TuimailApp(None, demo_root, demo=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, lambda: app.query_one("#preview", MessageView).reading is not None)
        compositor = app.screen._compositor
        assert isinstance(compositor, RowCompositor)
        textuals = partial(Compositor._get_renders, compositor)
        ours = compositor._get_renders
        ml = app.query_one(MessageList)
        status = app.screen.query_one("#status")
        width, height = compositor.size
        rows = ml.region
        cases = [
            [Region(rows.x, rows.y + 3, rows.width, 2)],  # a cursor move
            [Region(rows.x, rows.y + 3, rows.width, 1), status.region],  # and the status
            [rows],  # a page
            [status.region],
            [Region(0, 0, width, height)],
            [Region(rows.x - 3, rows.y + 1, 6, 4)],  # across the folder pane's edge
            [Region(rows.right - 2, rows.y, 2, 3)],  # the scrollbar
            [Region(5, height - 3, 10, 3)],  # key help and status
        ]
        rng = random.Random(3)
        for _ in range(40):
            cases.append(
                [
                    Region(
                        rng.randrange(width),
                        rng.randrange(height),
                        rng.randint(1, 40),
                        rng.randint(1, 12),
                    )
                    for _ in range(rng.randint(1, 3))
                ]
            )
        screen = compositor.size.region
        for case in cases:
            regions = [r.intersection(screen) for r in case]  # as dirty regions are
            expected = partial_update(compositor, regions, textuals)
            assert partial_update(compositor, regions, ours) == expected, regions
        # And what a cursor move really repaints.
        await pilot.press("j")
        await pilot.pause()
        ml.refresh_line(ml.cursor)
        ml.refresh_line(ml.cursor - 1)
        compositor.update_widgets({ml})
        regions = list(compositor._dirty_regions)
        compositor._dirty_regions.clear()
        assert regions
        assert partial_update(compositor, regions, ours) == partial_update(
            compositor, regions, textuals
        )
