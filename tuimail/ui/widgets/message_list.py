"""The message list: a virtual Line API widget that renders only the rows on screen.

It keeps the folder's whole order as a list of ids (cheap: 100k ints) and asks its source for
`MessageSummary` rows only when they are about to be painted, with a small LRU cache. Nothing
is done per row of the folder, so opening, moving and paging cost the same at 100 or 100,000
messages. Every string from mail goes through `sanitize_line` and into a `Segment` as plain
text: nothing is ever parsed as markup.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from math import ceil
from typing import ClassVar, Protocol

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.color import Color
from textual.dom import NoScreen
from textual.filter import LineFilter
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import Reactive
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar
from textual.strip import Strip
from textual.style import Style as TextualStyle

from tuimail.models import MessageSummary
from tuimail.ui import format as fmt
from tuimail.ui.format import (
    Columns,
    address_label,
    fit,
    fit_right,
    flag_cells,
    format_date,
    format_size,
    layout_columns,
)
from tuimail.ui.text import clean

# What a fast-rendered line was made for: (width, fill style, line filters, background).
_Context = tuple[int, Style, tuple[LineFilter, ...], Color]


class SummarySource(Protocol):
    """What the list reads rows from: `Store` satisfies it."""

    def summaries(self, ids: Sequence[int]) -> list[MessageSummary]: ...


class _Row:
    """The sanitized, formatted cells of one message (formatting is the costly part)."""

    __slots__ = ("date", "from_", "size", "subject", "summary")

    def __init__(self, summary: MessageSummary, now: datetime, date_width: int, sent: bool):
        env = summary.envelope
        self.summary = summary
        self.date = format_date(env.date, now, date_width)
        who = address_label(env.to or env.cc) if sent else address_label(env.from_)
        self.from_ = clean(("→ " + who) if sent and who else who)
        self.subject = clean(env.subject) or "(no subject)"
        self.size = format_size(summary.size)


class _Line:
    """A row as `render_line` draws it, and as `render_lines` hands it on (`final`, made
    for `context`: see `MessageList._fast_context`)."""

    __slots__ = ("context", "final", "row", "strip")

    def __init__(self, row: _Row | None, strip: Strip) -> None:
        self.row = row
        self.strip = strip
        self.context: object = None
        self.final = strip


class ThumbScrollBar(ScrollBar):
    """A scrollbar that repaints on scrolling only when its thumb moves on screen.

    Textual's repaints at every change of position: at 100,000 rows a page down moves the
    thumb a 200th of a cell, and rendering the bar again was a sixth of the page's CPU.
    """

    position: Reactive[float] = Reactive(0.0, repaint=False)

    def watch_position(self, old: float, new: float) -> None:
        before, after = self._thumb(old), self._thumb(new)
        if before is None or before != after:
            self.refresh()

    def _thumb(self, position: float) -> tuple[int, int] | None:
        """Where `ScrollBarRender.render_bar` draws the thumb, in eighths of a cell
        (None: no thumb, or a case not worked out here: always repaint)."""
        size = self.size.height if self.vertical else self.size.width
        virtual = ceil(self.window_virtual_size)
        window = ceil(self.window_size) if self.window_size < self.window_virtual_size else 0
        if not (window and size and virtual and size != virtual and virtual > window):
            return None
        bars = self.renderer.VERTICAL_BARS if self.vertical else self.renderer.HORIZONTAL_BARS
        thumb = max(1, window / (virtual / size))
        start = int((size - thumb) * (position / (virtual - window)) * len(bars))
        return start, start + ceil(thumb * len(bars))


class MessageList(ScrollView, can_focus=True):
    """A virtual list of messages with a cursor, marks and optional thread prefixes."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "message-list--cursor",
        "message-list--unread",
        "message-list--flagged",
        "message-list--marked",
        "message-list--deleted",
        "message-list--date",
        "message-list--size",
        "message-list--thread",
        "message-list--empty",
    }

    DEFAULT_CSS = """
    MessageList {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
        & > .message-list--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
        }
        &:focus > .message-list--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .message-list--unread { text-style: bold; color: $unread-color; }
        & > .message-list--flagged { color: $flagged-color; }
        & > .message-list--marked { background: $marked-background; }
        & > .message-list--deleted { text-style: strike; color: $text-muted; }
        & > .message-list--date { color: $text-muted; }
        & > .message-list--size { color: $text-muted; }
        & > .message-list--thread { color: $thread-color; }
        & > .message-list--empty { color: $text-muted; text-style: italic; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        # The ids name them in the config's [ui.keys] (action = "key,key").
        Binding("j,down", "cursor_down", "Next", show=False, id="next"),
        Binding("k,up", "cursor_up", "Previous", show=False, id="previous"),
        Binding("pagedown,ctrl+f", "page_down", "Page down", show=False, id="page_down"),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False, id="page_up"),
        Binding("g,home", "first", "First", show=False, id="first"),
        Binding("G,end", "last", "Last", show=False, id="last"),
        Binding("enter", "select", "Open", show=False, id="select"),
        Binding("space,v", "toggle_mark", "Mark", show=False, id="mark"),
    ]

    CACHE_SIZE = 1024  # summaries kept: a few screens' worth, whatever the folder size

    class Highlighted(Message):
        """The cursor moved to message `message_id` (None when the list is empty)."""

        def __init__(self, message_list: MessageList, message_id: int | None, index: int) -> None:
            super().__init__()
            self.message_list = message_list
            self.message_id = message_id
            self.index = index

        @property
        def control(self) -> MessageList:
            return self.message_list

    class Selected(Message):
        """The user opened message `message_id` (Enter or double click)."""

        def __init__(self, message_list: MessageList, message_id: int, index: int) -> None:
            super().__init__()
            self.message_list = message_list
            self.message_id = message_id
            self.index = index

        @property
        def control(self) -> MessageList:
            return self.message_list

    class MarksChanged(Message):
        def __init__(self, message_list: MessageList, count: int) -> None:
            super().__init__()
            self.message_list = message_list
            self.count = count

    def __init__(
        self,
        source: SummarySource | None = None,
        *,
        empty_text: str = "No messages",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._source = source
        self._ids: Sequence[int] = ()
        self._prefixes: Sequence[str] | None = None
        self._cache: OrderedDict[int, _Row] = OrderedDict()
        # Rendered rows: scrolling by a line repaints the viewport, mostly from here.
        self._strips: LRUCache[tuple[int, bool, bool, str, int], _Line] = LRUCache(256)
        self._plain: dict[tuple[str, int], _Line] = {}  # blank rows, the empty list's text
        self._line_context: _Context | None = None
        self._fast_rendered = False
        self._styles: dict[str, Style] | None = None
        self._cursor = 0
        self._marks: set[int] = set()
        self._sent = False
        self._columns = layout_columns(0)
        self._columns_width = 0
        self._now = fmt.now()
        self.empty_text = empty_text
        # Told of every cursor move directly, instead of a Highlighted message, when set: a
        # message is queued, dispatched and looked up per key press (~10% of a cursor move).
        self.on_highlight: Callable[[int | None], None] | None = None
        # Jump a page when the cursor leaves the screen instead of scrolling line by line:
        # over a slow ssh link a one-line scroll repaints the whole list.
        self.page_scroll = False

    @property
    def vertical_scrollbar(self) -> ScrollBar:
        """(Textual's, with a scrollbar that repaints only when its thumb moves.)"""
        if self._vertical_scrollbar is None:
            scrollbar = ThumbScrollBar(
                vertical=True, name="vertical", thickness=self.scrollbar_size_vertical
            )
            scrollbar.display = False
            self._vertical_scrollbar = scrollbar
            self.app._start_widget(self, scrollbar)
        return self._vertical_scrollbar

    # ----------------------------------------------------------------- data

    @property
    def ids(self) -> Sequence[int]:
        return self._ids

    @property
    def prefixes(self) -> Sequence[str] | None:
        """The thread drawings shown before each subject (None: a flat list)."""
        return self._prefixes

    @property
    def row_count(self) -> int:
        return len(self._ids)

    @property
    def cursor(self) -> int:
        return self._cursor

    @property
    def cursor_id(self) -> int | None:
        return self._ids[self._cursor] if self._ids else None

    @property
    def marked(self) -> frozenset[int]:
        return frozenset(self._marks)

    def target_ids(self) -> list[int]:
        """What an action applies to: the marked messages, else the one under the cursor."""
        if self._marks:
            return [mid for mid in self._ids if mid in self._marks]
        cid = self.cursor_id
        return [] if cid is None else [cid]

    def set_source(self, source: SummarySource) -> None:
        self._source = source
        self.invalidate()

    def set_ids(
        self,
        ids: Sequence[int],
        *,
        prefixes: Sequence[str] | None = None,
        keep: int | None = None,
        cursor: int | None = None,
        sent: bool = False,
    ) -> None:
        """Show `ids` in this order; keep the cursor on message `keep` if it is still there.

        `prefixes` (same length as `ids`) are thread-tree drawings put before each subject.
        """
        self._ids = ids
        self._prefixes = prefixes if prefixes is not None and len(prefixes) == len(ids) else None
        self._sent = sent
        if self._marks:
            self._marks.intersection_update(ids)
        self._now = fmt.now()
        row = 0
        if keep is not None:
            row = self.find(keep)
            if row < 0:
                row = min(self._cursor, max(len(ids) - 1, 0))
        elif cursor is not None:
            row = cursor
        self._cursor = max(0, min(row, len(ids) - 1))
        self._set_row_count(len(ids))
        self._scroll_cursor_into_view(center=True)
        self.refresh()
        self._post_highlight()

    def _set_row_count(self, rows: int) -> None:
        """The virtual height. Changing it through `virtual_size` re-lays out the whole
        screen and repaints all of it (~30 ms, each time a sync adds messages): when the
        scrollbar stays as it is (shown, or not), only the list and its scrollbar change.
        (The width does not matter: the list never scrolls sideways.)"""
        height = self.container_size.height
        styles = self.styles
        shown = rows > height
        if (
            self.is_mounted
            and height > 0
            and styles.overflow_x == "hidden"
            and styles.overflow_y == "auto"
            and self.show_vertical_scrollbar is shown
            and (self.virtual_size.height > height) is shown
        ):
            self.set_reactive(MessageList.virtual_size, Size(self.virtual_size.width, rows))
            if shown:
                self.vertical_scrollbar.window_virtual_size = rows
            if self.scroll_offset.y > self.max_scroll_y:
                self.scroll_to(y=self.max_scroll_y, animate=False)
            self.refresh()
        else:
            self.virtual_size = Size(self.size.width, rows)

    def find(self, message_id: int) -> int:
        """Row of `message_id`, or -1: a C-speed scan (~1 ms at 100k), no per-row index."""
        try:
            return self._ids.index(message_id)
        except ValueError:
            return -1

    def invalidate(self, ids: Iterable[int] | None = None) -> None:
        """Forget cached rows (all, or `ids`) after the store changed, and repaint."""
        if ids is None:
            self._cache.clear()
        else:
            for mid in ids:
                self._cache.pop(mid, None)
        self._now = fmt.now()
        self.refresh()

    def summary(self, message_id: int) -> MessageSummary | None:
        row = self._cache.get(message_id)
        if row is None:
            self._fetch([message_id])
            row = self._cache.get(message_id)
        return row.summary if row else None

    def prime(self, summaries: Iterable[MessageSummary], *, only: bool = False) -> None:
        """Rows read elsewhere (a worker thread): painting them needs no store query.

        `only`: the store changed and these are the rows read since: every other cached row
        is forgotten (as `invalidate` does), while a row whose summary is unchanged keeps
        its formatting and rendered strips (a sync's refresh re-renders no row it did not
        change)."""
        date_width = self._columns.date or 6
        now = fmt.now()
        if only:
            old = self._cache if now.date() == self._now.date() else {}
            self._cache = OrderedDict()
            self._now = now
            self.refresh()
        else:
            old = self._cache
        for summary in summaries:
            row = old.get(summary.id)
            if row is None or row.summary != summary:
                row = _Row(summary, self._now, date_width, self._sent)
            self._cache[summary.id] = row
        while len(self._cache) > self.CACHE_SIZE:
            self._cache.popitem(last=False)

    def viewport(self) -> tuple[int, int, int]:
        """(top row, height, cursor row) now: for `window` in a worker thread."""
        return int(self.scroll_offset.y), self.scrollable_content_region.height, self._cursor

    @staticmethod
    def window(ids: Sequence[int], keep: int | None, viewport: tuple[int, int, int]) -> list[int]:
        """The ids that `set_ids(ids, keep=keep)` would bring on screen (and a little
        around): what a worker can read in advance. Pure: callable from any thread."""
        top, height, cursor = viewport
        height = max(height, 10)
        try:
            at = ids.index(keep) if keep is not None else cursor
        except ValueError:
            at = cursor
        wanted = dict.fromkeys(ids[max(top - 2, 0) : top + height + 2])
        wanted.update(dict.fromkeys(ids[max(at - height, 0) : at + height]))
        return list(wanted)

    def _fetch(self, ids: Sequence[int]) -> None:
        missing = [mid for mid in ids if mid not in self._cache]
        if not missing or self._source is None:
            return
        date_width = self._columns.date or 6
        for summary in self._source.summaries(missing):
            self._cache[summary.id] = _Row(summary, self._now, date_width, self._sent)
        while len(self._cache) > self.CACHE_SIZE:
            self._cache.popitem(last=False)

    def _prefetch_visible(self) -> None:
        self._layout(self.scrollable_content_region.width)
        top = int(self.scroll_offset.y)
        height = self.scrollable_content_region.height or self.size.height
        # A little beyond the viewport, so one-line scrolling does not query per line.
        start = max(top - 4, 0)
        self._fetch(self._ids[start : top + height + 4])

    # ------------------------------------------------------------ rendering

    def on_resize(self, event: events.Resize) -> None:
        self._layout(self.scrollable_content_region.width)
        self.virtual_size = Size(self.scrollable_content_region.width, len(self._ids))
        self._scroll_cursor_into_view()

    def _layout(self, width: int) -> None:
        """Columns for `width`; rows formatted for another width are dropped."""
        if width == self._columns_width:
            return
        columns = layout_columns(width)
        if columns.date != self._columns.date:
            self._cache.clear()  # date strings depend on the date column's width
        self._columns = columns
        self._columns_width = width
        self._strips.clear()
        self._plain.clear()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None
        self._strips.clear()
        self._plain.clear()
        self.refresh()

    def _style_snapshot(self) -> dict[str, Style]:
        """The widget's and its components' styles, computed once per theme/style change
        (`rich_style` walks the DOM: too slow to ask per line)."""
        if self._styles is None:
            get = self.get_component_rich_style
            self._styles = {"base": self.rich_style} | {
                name: get(f"message-list--{name}", partial=True)
                for name in (
                    "cursor",
                    "unread",
                    "flagged",
                    "marked",
                    "deleted",
                    "date",
                    "thread",
                    "empty",
                )
            }
        return self._styles

    def render_lines(self, crop: Region) -> list[Strip]:
        """Textual's `render_lines` puts each line through its StylesCache (borders, padding,
        tint, opacity...: new Strips per line), then the app's line filters: two fifths of
        a page down's rendering. With none of those styles that only widens the line to the
        widget's width and filters it, which is done here once per rendered row and kept
        with it. Every line is made again from the list's state (as `render_line` does), so
        nothing depends on the StylesCache's own cache of lines or its dirty set."""
        self._prefetch_visible()
        context = self._fast_context(crop)
        if context is None:
            if self._fast_rendered:  # what the StylesCache holds predates the fast path
                self._styles_cache.clear()
                self._fast_rendered = False
            return super().render_lines(crop)
        self._fast_rendered = True
        strips: list[Strip] = []
        for line in self._lines(crop.line_range):
            if line.context is not context:
                line.context, line.final = context, self._final_strip(line.strip, context)
            strips.append(line.final)
        x1, x2 = crop.column_span
        if (x1, x2) != (0, context[0]):
            strips = [strip.crop(x1, x2) for strip in strips]
        return strips

    def _fast_context(self, crop: Region) -> _Context | None:
        """(width, fill, line filters, background) with which StylesCache.render_line would
        only widen our lines to `width` with `fill` and the filters run with `background`;
        None when the styles ask for more (see `_styles_cache.py`), or a link is hovered
        (`render_widget` restyles it)."""
        styles = self.styles
        width, height = self.region.size
        hover = self.hover_style
        if (
            self.BLANK
            or crop.bottom > height
            or styles.padding
            or any(edge for edge, _ in styles.border)
            or any(edge for edge, _ in styles.outline)
            or styles.tint.a
            or styles.text_opacity != 1.0
            or (styles.has_rule("hatch") and styles.hatch != "none")
            or self.opacity != 1.0
            or (self.auto_links and hover.link_id and "@click" in hover.meta)
        ):
            return None
        base_background, background = self.background_colors
        fill = TextualStyle(background=base_background + background).rich_style
        context = (width, fill, tuple(self.get_line_filters()), background)
        if context != self._line_context:
            self._line_context = context
        return self._line_context  # the same object while unchanged: one `is` test per line

    @staticmethod
    def _final_strip(strip: Strip, context: _Context) -> Strip:
        """`strip` as StylesCache.render hands it on in `context`: made the widget's width
        (as `adjust_cell_length` does), then filtered; one new Strip instead of three."""
        width, fill, filters, background = context
        length = strip.cell_length
        if length < width:
            segments = [*strip, Segment(" " * (width - length), fill)]
        else:
            segments = list(strip.adjust_cell_length(width, fill))
        for line_filter in filters:
            segments = line_filter.apply(segments, background)
        return Strip(segments, width)

    def render_line(self, y: int) -> Strip:
        return self._lines(range(y, y + 1))[0].strip

    def _lines(self, ys: range) -> list[_Line]:
        """Lines `ys` of the list, rendered; a row's is kept while the same message is
        shown the same way (cursor, mark, thread prefix, width)."""
        width = self.scrollable_content_region.width
        self._layout(width)
        styles = self._style_snapshot()
        top = int(self.scroll_offset.y)
        return [self._line(y, top + y, width, styles) for y in ys]

    def _line(self, y: int, row: int, width: int, styles: dict[str, Style]) -> _Line:
        if not self._ids:
            return self._plain_line(" " + self.empty_text if y == 0 else "", width, styles)
        if row >= len(self._ids):
            return self._plain_line("", width, styles)
        mid = self._ids[row]
        cached = self._cache.get(mid)
        if cached is None:
            self._fetch([mid])
            cached = self._cache.get(mid)
        if cached is None:  # gone from the store since the list was built
            return self._plain_line("", width, styles)
        self._cache.move_to_end(mid)
        prefix = self._prefixes[row] if self._prefixes is not None else ""
        key = (mid, row == self._cursor, mid in self._marks, prefix, width)
        line = self._strips.get(key)
        if line is None or line.row is not cached:
            line = _Line(cached, self._render_row(cached, row, prefix, styles, width))
            self._strips[key] = line
        return line

    def _plain_line(self, text: str, width: int, styles: dict[str, Style]) -> _Line:
        """A blank row (`text` empty), or the empty list's text."""
        line = self._plain.get((text, width))
        if line is None:
            style = styles["base"] + styles["empty"] if text else styles["base"]
            line = _Line(None, Strip([Segment(fit(text, width), style)], width))
            if len(self._plain) > 8:
                self._plain.clear()
            self._plain[(text, width)] = line
        return line

    def _render_row(
        self, row: _Row, index: int, prefix: str, styles: dict[str, Style], width: int
    ) -> Strip:
        summary = row.summary
        flags = summary.flags
        cols: Columns = self._columns
        style = styles["base"]
        if flags.deleted:
            style += styles["deleted"]
        elif not flags.seen:
            style += styles["unread"]
        if flags.flagged:
            style += styles["flagged"]
        marked = summary.id in self._marks
        if marked:
            style += styles["marked"]
        cursor = index == self._cursor
        if cursor:
            style += styles["cursor"]
        # Secondary columns take the muted colour only off the cursor, so the cursor bar reads
        # as one block.
        dim = style if cursor else style + styles["date"]
        sep = Segment(" ", style)
        segments: list[Segment] = [
            Segment(flag_cells(flags, summary.has_attachments, marked)[: cols.flags], style)
        ]
        if cols.date:
            segments += [sep, Segment(fit(row.date, cols.date), dim)]
        if cols.from_:
            segments += [sep, Segment(fit(row.from_, cols.from_), style)]
        if cols.subject:
            segments.append(sep)
            if prefix:
                prefix = fit(prefix, min(cell_len(prefix), cols.subject))
                thread = style if cursor else style + styles["thread"]
                segments.append(Segment(prefix, thread))
                rest = cols.subject - cell_len(prefix)
                segments.append(Segment(fit(row.subject, rest), style))
            else:
                segments.append(Segment(fit(row.subject, cols.subject), style))
        if cols.size:
            segments += [sep, Segment(fit_right(row.size, cols.size), dim)]
        used = cols.total
        if used < width:
            segments.append(Segment(" " * (width - used), style))
        return Strip(segments, width)

    # --------------------------------------------------------------- cursor

    def _scroll_cursor_into_view(self, center: bool = False) -> None:
        height = self.scrollable_content_region.height
        if height <= 0:
            return
        top = int(self.scroll_offset.y)
        row = self._cursor
        if center and not top <= row < top + height:
            self.scroll_to(y=max(row - height // 2, 0), animate=False)
        elif self.page_scroll and row >= top + height:
            self.scroll_to(y=row, animate=False)  # the next page, cursor on its first row
        elif self.page_scroll and row < top:
            self.scroll_to(y=max(row - height + 1, 0), animate=False)
        elif row < top:
            self.scroll_to(y=row, animate=False)
        elif row >= top + height:
            self.scroll_to(y=row - height + 1, animate=False)

    def refresh_line(self, y: int) -> None:
        """Repaint row `y` (virtual): only the rows' own columns. (ScrollView's spans the
        scrollbar's column too, which then renders again for each row a cursor touches.)"""
        width = self.scrollable_content_region.width
        self.refresh(Region(0, y - int(self.scroll_offset.y), width, 1))

    def move_cursor(self, row: int, *, scroll_by: int = 0) -> None:
        """Put the cursor on `row` (clamped); `scroll_by` also scrolls, as paging does."""
        if not self._ids:
            return
        row = max(0, min(row, len(self._ids) - 1))
        old = self._cursor
        if scroll_by:
            self.scroll_to(y=self.scroll_offset.y + scroll_by, animate=False)
        if row == old and not scroll_by:
            return
        self._cursor = row
        self.refresh_line(old)
        self.refresh_line(row)
        self._scroll_cursor_into_view()
        self._post_highlight()

    def move_to_id(self, message_id: int) -> bool:
        row = self.find(message_id)
        if row >= 0:
            self.move_cursor(row)
        return row >= 0

    def _post_highlight(self) -> None:
        if self.on_highlight is not None:
            self.on_highlight(self.cursor_id)
        else:
            self._post_up(self.Highlighted(self, self.cursor_id, self._cursor))

    def _post_up(self, message: Message) -> None:
        """Post `message` to the screen, whence it bubbles on to the app as usual. (Bubbling
        from here wakes the message loop of every container in between, one after the
        other: on the main screen that was a third of a cursor move's CPU.)"""
        try:
            screen = self.screen
        except NoScreen:
            screen = None
        if screen is None or screen is self.parent:
            self.post_message(message)
        else:
            screen.post_message(message)

    def action_cursor_down(self) -> None:
        self.move_cursor(self._cursor + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self._cursor - 1)

    def action_page_down(self) -> None:
        page = max(self.scrollable_content_region.height - 1, 1)
        self.move_cursor(self._cursor + page, scroll_by=page)

    def action_page_up(self) -> None:
        page = max(self.scrollable_content_region.height - 1, 1)
        self.move_cursor(self._cursor - page, scroll_by=-page)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self._ids) - 1)

    def action_select(self) -> None:
        cid = self.cursor_id
        if cid is not None:
            self._post_up(self.Selected(self, cid, self._cursor))

    def action_toggle_mark(self) -> None:
        cid = self.cursor_id
        if cid is None:
            return
        self._marks.symmetric_difference_update((cid,))
        self.refresh_line(self._cursor)
        self._post_up(self.MarksChanged(self, len(self._marks)))
        self.move_cursor(self._cursor + 1)

    def clear_marks(self) -> None:
        if self._marks:
            self._marks.clear()
            self.refresh()
            self._post_up(self.MarksChanged(self, 0))

    # ---------------------------------------------------------------- mouse

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or not self._ids:
            return
        row = int(self.scroll_offset.y) + offset.y
        if 0 <= row < len(self._ids):
            self.move_cursor(row)
            if event.chain >= 2:
                self.action_select()
