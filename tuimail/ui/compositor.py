"""A compositor that renders, for a partial update, only the rows being updated.

Textual's compositor, asked to repaint a small region (the two rows a cursor move changes),
renders every widget whose *clip* overlaps that region, each over its whole visible area: on
the main screen the folder tree, the preview, the footer and the status line too, some 300
lines a frame (about half the CPU of a cursor move), of which only the updated rows are then
written. This one skips widgets with nothing inside the updated region, renders the others
over the updated rows only, and stops at the first (front to back) that covers the whole
region: the containers behind the list are hidden there.

What reaches the terminal is the same: a partial update writes only the rows of the dirty
regions, and of those only the cuts (spans between widget edges) that overlap them, each
from the front-most widget covering it; such a widget overlaps the region, so it is
rendered, across its whole width, exactly as before. tests/ui/test_compositor.py compares
the two on many regions. Full repaints (`crop=None`) are Textual's own.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual._compositor import Compositor
from textual.geometry import Region
from textual.strip import Strip


class RowCompositor(Compositor):
    def _get_renders(
        self, crop: Region | None = None
    ) -> Iterable[tuple[Region, Region, list[Strip]]]:
        if crop is None:
            yield from super()._get_renders(crop)
            return
        intersection = Region.intersection
        # The updated rows across the whole screen: a cut partly inside the crop is written
        # from its start, so a widget that is rendered is rendered across its whole width.
        rows = Region(0, crop.y, max(self.size.width, crop.right), crop.height)
        for widget, (region, clip) in self.visible_widgets.items():
            visible = intersection(region, clip)
            if not intersection(visible, crop):
                continue  # none of its cells is written by this update
            row_clip = intersection(clip, rows)
            x, y, width, height = intersection(region, row_clip)
            if width and height:
                yield (
                    region,
                    row_clip,
                    widget.render_lines(Region(x - region.x, y - region.y, width, height)),
                )
            if visible.contains_region(crop):
                return  # (front to back) what is behind it is hidden where it is written
