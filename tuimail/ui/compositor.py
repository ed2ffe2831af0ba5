"""A compositor that renders, for a partial update, only the rows being updated.

Textual's compositor, asked to repaint a few regions (the two rows a cursor move changes, the
status line), renders every widget whose *clip* overlaps the rectangle around all of them,
each over its whole visible area: on the main screen the folder tree, the preview, the key
help too, some 300 lines a frame (half the CPU of a cursor move), of which only the rows of
the regions are then written. This one renders each widget only over the rows of the
regions it overlaps (none: it is skipped), and a region stops counting once a widget
covering it has been rendered (front to back: what is behind is hidden there).

What reaches the terminal is the same: a partial update writes only the rows of the dirty
regions, and of those only the cuts (spans between widget edges) that overlap a region, each
from the front-most widget covering it; such a widget overlaps that region, so it is
rendered on that row, across its whole width, exactly as before. tests/ui/test_compositor.py
compares the two on many regions. Full repaints (`crop=None`) are Textual's own.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual._compositor import ChopsUpdate, Compositor
from textual.geometry import Region
from textual.strip import Strip


def _row_blocks(regions: Iterable[Region]) -> list[tuple[int, int]]:
    """The rows of `regions` as sorted, disjoint (start, end) ranges."""
    blocks: list[tuple[int, int]] = []
    for start, end in sorted((r.y, r.bottom) for r in regions):
        if blocks and start <= blocks[-1][1]:
            if end > blocks[-1][1]:
                blocks[-1] = (blocks[-1][0], end)
        else:
            blocks.append((start, end))
    return blocks


class RowCompositor(Compositor):
    def __init__(self) -> None:
        super().__init__()
        self._updating: list[Region] | None = None

    def render_partial_update(self) -> ChopsUpdate | None:
        self._updating = list(self._dirty_regions)  # (the update clears them)
        try:
            return super().render_partial_update()
        finally:
            self._updating = None

    def _get_renders(
        self, crop: Region | None = None
    ) -> Iterable[tuple[Region, Region, list[Strip]]]:
        if crop is None:
            yield from super()._get_renders(crop)
            return
        intersection = Region.intersection
        regions = [r for r in (self._updating or [crop]) if intersection(r, crop)]
        width = max(self.size.width, crop.right)
        for widget, (region, clip) in self.visible_widgets.items():
            if not regions:
                return
            visible = intersection(region, clip)
            hits = [r for r in regions if intersection(visible, r)]
            if not hits:
                continue  # none of its cells is written by this update
            for start, end in _row_blocks(hits):
                # Whole rows: a cut partly inside a region is written from its start.
                row_clip = intersection(clip, Region(0, start, width, end - start))
                x, y, w, h = intersection(region, row_clip)
                if w and h:
                    lines = widget.render_lines(Region(x - region.x, y - region.y, w, h))
                    yield region, row_clip, lines
            regions = [r for r in regions if not visible.contains_region(r)]
