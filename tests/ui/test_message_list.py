"""MessageList: virtual rendering, cursor and paging, columns by width, marks, mouse, safety."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rich.style import Style
from textual.app import ComposeResult
from textual.cache import LRUCache
from textual.geometry import Region
from textual.scroll_view import ScrollView
from textual.strip import Strip
from ui_support import (
    ListSource,
    painted,
    screen_ansi,
    screen_lines,
    screen_text,
    stray_controls,
)

from tuimail.models import Address, Envelope, Flags, MessageSummary
from tuimail.ui.base import ThemedApp
from tuimail.ui.widgets.message_list import MessageList

NOW = datetime.now(UTC)


def summary(i: int, **kw: object) -> MessageSummary:
    env = Envelope(
        message_id=f"<m{i}@example.org>",
        date=kw.pop("date", NOW - timedelta(days=400, minutes=i)),  # type: ignore[arg-type]
        from_=kw.pop("from_", (Address(f"Sender {i}", f"s{i}@example.org"),)),  # type: ignore[arg-type]
        to=(Address("", "me@example.org"),),
        subject=kw.pop("subject", f"Subject number {i}"),  # type: ignore[arg-type]
    )
    return MessageSummary(
        id=i,
        account="acct",
        folder="INBOX",
        uid=i,
        envelope=env,
        flags=kw.pop("flags", Flags(seen=True)),  # type: ignore[arg-type]
        size=kw.pop("size", 2048 + i),  # type: ignore[arg-type]
        has_attachments=bool(kw.pop("has_attachments", False)),
    )


class ListApp(ThemedApp[None]):
    def __init__(self, source: ListSource, ids: list[int], theme: str = "tuimail-dark") -> None:
        super().__init__(theme=theme)
        self.source = source
        self.ids = ids
        self.events: list[tuple[str, int | None]] = []

    def compose(self) -> ComposeResult:
        yield MessageList(self.source, id="list")

    def on_mount(self) -> None:
        ml = self.query_one(MessageList)
        ml.set_ids(self.ids)
        ml.focus()

    def on_message_list_highlighted(self, event: MessageList.Highlighted) -> None:
        self.events.append(("highlighted", event.message_id))

    def on_message_list_selected(self, event: MessageList.Selected) -> None:
        self.events.append(("selected", event.message_id))


def big_source(n: int) -> tuple[ListSource, list[int]]:
    rows = [summary(i) for i in range(1, n + 1)]
    return ListSource(rows), [r.id for r in rows]


async def test_only_visible_rows_are_fetched_at_100k() -> None:
    source, ids = big_source(100_000)
    app = ListApp(source, ids)
    async with app.run_test(size=(80, 24)) as pilot:
        await painted(pilot)
        assert source.requested < 100  # a screen and a margin, not the folder
        first = screen_lines(app)[0]
        assert "Sender 1" in first and "Subject number 1" in first
        await pilot.press("G")
        await pilot.pause()
        ml = app.query_one(MessageList)
        assert ml.cursor == 99_999 and ml.cursor_id == 100_000
        assert "Subject number 100000" in screen_text(app)
        assert source.requested < 200


async def test_a_hook_hears_every_cursor_move_instead_of_messages() -> None:
    source, ids = big_source(50)
    app = ListApp(source, ids)
    async with app.run_test(size=(80, 24)) as pilot:
        ml = app.query_one(MessageList)
        await pilot.pause()
        heard: list[int | None] = []
        ml.on_highlight = heard.append
        app.events.clear()
        await pilot.press("j", "j", "k", "G")
        await pilot.pause()
        assert heard == [2, 3, 2, 50]
        assert app.events == []  # no Highlighted message meanwhile
        ml.set_ids([])
        assert heard[-1] is None


async def test_cursor_keys_page_and_messages() -> None:
    source, ids = big_source(500)
    app = ListApp(source, ids)
    async with app.run_test(size=(80, 24)) as pilot:
        ml = app.query_one(MessageList)
        await pilot.press("j", "j", "k")
        assert ml.cursor == 1
        await pilot.press("pagedown")
        assert ml.cursor == 1 + 23
        assert ml.scroll_offset.y == 23
        await pilot.press("pageup")
        assert ml.cursor == 1
        await pilot.press("G")
        assert ml.cursor == 499
        await pilot.press("j")  # clamped at the end
        assert ml.cursor == 499
        await pilot.press("g")
        assert ml.cursor == 0
        await pilot.press("enter")
        await pilot.pause()
        assert ("selected", 1) in app.events
        assert app.events.count(("highlighted", 500)) == 1


@pytest.mark.parametrize(
    ("width", "has_date", "has_size"),
    [(40, False, False), (80, True, False), (120, True, True)],
)
async def test_columns_adapt_to_width(width: int, has_date: bool, has_size: bool) -> None:
    when = NOW - timedelta(days=800)
    local = when.astimezone()
    rows = [summary(1, date=when, size=123_456)]
    app = ListApp(ListSource(rows), [1])
    async with app.run_test(size=(width, 5)) as pilot:
        await painted(pilot)
        line = screen_lines(app)[0]
        assert len(line) <= width
        assert "Sender 1" in line or width < 40
        assert "Subject" in line
        year = f"{local.year:04d}-" if width >= 120 else f"'{local.year % 100:02d}"
        assert (year in line) is has_date
        assert ("121K" in line) is has_size


async def test_unread_is_bold_and_flagged_coloured() -> None:
    rows = [
        summary(1, flags=Flags(seen=False)),
        summary(2, flags=Flags(seen=True, flagged=True)),
        summary(3, flags=Flags(seen=True)),
        summary(4),
    ]
    app = ListApp(ListSource(rows), [1, 2, 3, 4])
    async with app.run_test(size=(80, 6)) as pilot:
        await pilot.press("j", "j", "j")  # cursor off the first three rows
        ml = app.query_one(MessageList)
        unread, flagged, plain = (ml.render_line(y) for y in range(3))
        assert any(seg.style and seg.style.bold for seg in unread)
        assert not any(seg.style and seg.style.bold for seg in plain)
        flag_colour = app.theme_variables["flagged-color"].lower()
        colours = {seg.style.color.name.lower() for seg in flagged if seg.style and seg.style.color}
        assert any(flag_colour in c or c in flag_colour for c in colours)
        assert "N" in unread.text[:4] and "!" in flagged.text[:4]


async def test_marks_toggle_and_target_ids() -> None:
    source, ids = big_source(10)
    app = ListApp(source, ids)
    async with app.run_test(size=(80, 12)) as pilot:
        ml = app.query_one(MessageList)
        assert ml.target_ids() == [1]
        await pilot.press("space", "j", "v")  # mark 1, skip 2, mark 3
        assert ml.marked == {1, 3}
        assert ml.target_ids() == [1, 3]
        assert screen_lines(app)[0].startswith("*")
        await pilot.press("k", "k", "k", "space")  # unmark 1
        assert ml.marked == {3}
        ml.set_ids([5, 4, 3])
        assert ml.marked == {3}
        ml.set_ids([5, 4])
        assert ml.marked == set()


async def test_click_moves_cursor_and_double_click_opens() -> None:
    source, ids = big_source(50)
    app = ListApp(source, ids)
    async with app.run_test(size=(80, 12)) as pilot:
        ml = app.query_one(MessageList)
        await pilot.click(MessageList, offset=(10, 4))
        assert ml.cursor == 4
        await pilot.click(MessageList, offset=(10, 6), times=2)
        await pilot.pause()
        assert ("selected", 7) in app.events


async def test_set_ids_keeps_cursor_on_the_same_message() -> None:
    source, ids = big_source(100)
    app = ListApp(source, ids)
    async with app.run_test(size=(80, 12)) as pilot:
        ml = app.query_one(MessageList)
        ml.move_cursor(40)
        ml.set_ids(list(reversed(ids)), keep=41)
        await pilot.pause()
        assert ml.cursor_id == 41 and ml.cursor == 59


async def test_empty_list_says_so() -> None:
    app = ListApp(ListSource([]), [])
    async with app.run_test(size=(80, 6)) as pilot:
        await painted(pilot)
        assert "No messages" in screen_lines(app)[0]
        await pilot.press("j", "G", "enter", "space")  # nothing to do, nothing breaks
        assert app.query_one(MessageList).cursor_id is None


HOSTILE_SUBJECT = "\x1b[2J\x1b]0;pwned\x07[@click=app.quit]click[/] [b]bold[/b] \u202eexe.txt"
HOSTILE_FROM = "\x1b[31mPayPal\x1b[0m [link=https://evil.example]x[/link] \u202dadmin"


async def test_hostile_strings_are_shown_literally_and_never_interpreted() -> None:
    rows = [summary(1, subject=HOSTILE_SUBJECT, from_=(Address(HOSTILE_FROM, "x@evil.example"),))]
    app = ListApp(ListSource(rows), [1])
    async with app.run_test(size=(160, 5)) as pilot:
        await painted(pilot)
        text = screen_text(app)
        assert "[@click=app.quit]click[/]" in text  # markup shown as text
        assert "[b]bold[/b]" in text
        assert "\x1b" not in text and "\x07" not in text
        assert "\u202e" not in text and "\u202d" not in text
        assert stray_controls(app) == []
        await pilot.click(MessageList, offset=(60, 0))  # clicking the "link" does nothing
        await pilot.pause()
        assert app.is_running


async def test_page_scroll_jumps_a_page_at_the_edge() -> None:
    source, ids = big_source(200)
    app = ListApp(source, ids)
    async with app.run_test(size=(80, 10)) as pilot:
        ml = app.query_one(MessageList)
        ml.page_scroll = True
        await pilot.press(*["j"] * 9)  # 10 rows visible: the 10th press leaves the screen
        assert ml.scroll_offset.y == 0
        await pilot.press("j")
        assert ml.cursor == 10 and ml.scroll_offset.y == 10
        await pilot.press("k")
        assert ml.cursor == 9 and ml.scroll_offset.y == 0


@pytest.mark.parametrize(
    ("keep", "viewport", "expected"),
    [
        (None, (0, 10, 0), list(range(0, 12))),  # the screen (+2), around the cursor
        (50, (0, 10, 0), [*range(0, 12), *range(40, 60)]),  # the cursor's message moved
        (999, (5, 10, 7), list(range(0, 17))),  # not in the new list: the cursor row
        (None, (95, 10, 98), list(range(88, 100))),  # at the end: clamped
    ],
)
def test_window_is_what_will_be_on_screen(
    keep: int | None, viewport: tuple[int, int, int], expected: list[int]
) -> None:
    assert sorted(MessageList.window(list(range(100)), keep, viewport)) == expected


async def test_primed_rows_are_painted_without_asking_the_source() -> None:
    source, ids = big_source(200)
    app = ListApp(source, ids)
    async with app.run_test(size=(80, 24)) as pilot:
        await painted(pilot)
        ml = app.query_one(MessageList)
        fresh = [summary(i, subject=f"Fresh subject {i}") for i in ids[:30]]
        ml.invalidate()
        ml.prime(fresh)
        asked = source.requested
        await pilot.pause()
        assert source.requested == asked  # the screen came from the primed rows
        assert "Fresh subject 1" in screen_lines(app)[0]


async def test_primed_only_keeps_unchanged_rows_and_forgets_the_rest() -> None:
    source, ids = big_source(200)
    app = ListApp(source, ids)
    async with app.run_test(size=(80, 24)) as pilot:
        await painted(pilot)
        ml = app.query_one(MessageList)
        before = dict(ml._cache)
        fresh = [summary(1, subject="Changed subject")] + [summary(i) for i in ids[1:20]]
        ml.prime(fresh, only=True)
        assert list(ml._cache) == ids[:20]  # the others are gone (they may be stale)
        assert ml._cache[1] is not before[1]
        assert all(ml._cache[i] is before[i] for i in ids[1:20])  # formatted once, kept
        await pilot.pause()
        assert "Changed subject" in screen_lines(app)[0]


async def test_row_count_changes_paint_as_a_full_layout_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, ids = big_source(600)
    app = ListApp(source, ids[:500])
    async with app.run_test(size=(80, 24)) as pilot:
        await painted(pilot)
        ml = app.query_one(MessageList)
        ml.move_cursor(450)
        await pilot.pause()
        screen = app.screen
        layouts: list[int] = []
        relayout = screen._refresh_layout

        def counted(*args: object, **kwargs: object) -> None:
            layouts.append(1)
            relayout(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(screen, "_refresh_layout", counted)
        # (rows, message kept under the cursor, whether the scrollbar comes or goes)
        steps = [(480, 440, False), (300, 10, False), (40, 39, False), (30, 5, False)]
        steps += [(500, 500, False), (490, 485, False)]  # scrolled past the new end
        steps += [(500, 470, False), (10, 3, True), (600, 2, True), (599, 598, False)]
        for count, keep, scrollbar_changes in steps:
            layouts.clear()
            ml.set_ids(ids[:count], keep=keep)
            await pilot.pause()
            assert bool(layouts) is scrollbar_changes, count
            fast = screen_ansi(app)
            assert ml.cursor_id == keep and ml.scroll_offset.y <= ml.max_scroll_y
            screen.refresh(layout=True)  # what Textual shows after laying everything out
            await pilot.pause()
            assert screen_ansi(app) == fast, count


async def test_scrollbar_repaints_only_when_its_thumb_moves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tuimail.ui.widgets.message_list import ThumbScrollBar

    source, ids = big_source(100_000)
    app = ListApp(source, ids)
    async with app.run_test(size=(80, 24)) as pilot:
        await painted(pilot)
        ml = app.query_one(MessageList)
        bar = ml.vertical_scrollbar
        assert isinstance(bar, ThumbScrollBar) and bar.display
        renders: list[float] = []
        render = ThumbScrollBar.render

        def counted(self: ThumbScrollBar) -> object:
            renders.append(self.position)
            return render(self)

        monkeypatch.setattr(ThumbScrollBar, "render", counted)
        steps = [(["pagedown"] * 3, False), (["G"], True), (["g"], True), (["pagedown"], False)]
        for keys, repainted in steps:
            renders.clear()
            await pilot.press(*keys)
            await pilot.pause()
            assert bool(renders) is repainted, keys
            shown = screen_ansi(app)
            bar.refresh()  # what Textual's scrollbar would show at this position
            await pilot.pause()
            assert screen_ansi(app) == shown, keys
        # In a short list every page moves the thumb.
        ml.set_ids(ids[:60])
        await pilot.press("g")
        await pilot.pause()
        renders.clear()
        await pilot.press("pagedown")
        await pilot.pause()
        assert renders


def textuals_lines(ml: MessageList, crop: Region) -> list[Strip]:
    """What Textual's own `render_lines` (its StylesCache around `render_line`) draws for
    the list's state now, from nothing cached: no StylesCache lines, no rendered rows."""
    saved = ml._strips, ml._plain, ml._styles
    ml._strips, ml._plain, ml._styles = LRUCache(256), {}, None
    ml._styles_cache.clear()
    try:
        ml._prefetch_visible()
        return ScrollView.render_lines(ml, crop)
    finally:
        ml._strips, ml._plain, ml._styles = saved
        ml._styles_cache.clear()


def cells(strips: list[Strip]) -> list[tuple[int, list[tuple[str, Style | None]]]]:
    return [(s.cell_length, [(seg.text, seg.style) for seg in s]) for s in strips]


def mismatched_crops(ml: MessageList) -> list[Region]:
    """The crops (whole list, rows, column spans, the scrollbar's column) where the list's
    `render_lines` differs from Textual's."""
    width, height = ml.region.size
    crops = [
        Region(0, 0, width, height),
        Region(0, 2, width, 3),
        Region(3, 1, width - 7, height - 1),
        Region(width - 2, 0, 2, height),
        Region(0, height - 1, width, 1),
    ]
    return [c for c in crops if cells(ml.render_lines(c)) != cells(textuals_lines(ml, c))]


@pytest.mark.parametrize(
    ("theme", "no_color"),
    [("tuimail-dark", False), ("tuimail-ansi-dark", False), ("tuimail-light", True)],
)
async def test_fast_rendering_draws_what_textuals_render_lines_would(
    theme: str, no_color: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")  # a Monochrome line filter
    rows = [
        summary(
            i,
            flags=Flags(seen=i % 4 != 0, flagged=i % 5 == 0, deleted=i % 7 == 0),
            has_attachments=i % 3 == 0,
            subject=f"件名 wide {i}" if i % 6 == 0 else f"Subject {i} " + "long " * (i % 9),
        )
        for i in range(1, 81)
    ]
    ids = [r.id for r in rows]
    prefixes = ["", "├─>", "│ └─>", "└─>"] * 20
    app = ListApp(ListSource(rows), ids, theme=theme)
    async with app.run_test(size=(80, 16)) as pilot:
        await painted(pilot)
        ml = app.query_one(MessageList)
        assert ml._fast_context(ml.region.size.region) is not None  # the fast path is taken
        assert ml.vertical_scrollbar.display  # (its column is the fill's)

        async def check(what: str) -> None:
            await pilot.pause()
            assert mismatched_crops(ml) == [], what

        await check("first paint")
        ml.move_cursor(5)
        await check("cursor")
        ml.action_toggle_mark()
        ml.action_toggle_mark()
        await check("marks")
        ml.move_cursor(5)
        await check("cursor on a marked row")
        ml.set_ids(ids, prefixes=prefixes, keep=ids[4])
        await check("thread prefixes")
        app.set_focus(None)
        await check("unfocused")
        ml.focus()
        await check("focused again")
        ml.prime([summary(3, flags=Flags(flagged=True), subject="Changed")])
        ml.refresh_line(2)
        await check("a row changed, refresh_line")
        ml.prime([summary(4, subject="Primed only")], only=True)
        await check("prime(only=True)")
        ml.invalidate()
        await check("invalidate")
        ml.move_cursor(60)
        await check("scrolled")
        for size in [(40, 12), (160, 30), (80, 16)]:
            await pilot.resize_terminal(*size)
            await check(f"size {size}")
        app.theme = "tuimail-light" if theme == "tuimail-ansi-dark" else "tuimail-ansi-dark"
        await check("theme changed")
        app.theme = theme
        await check("theme back")
        ml.styles.border = ("round", "red")  # Textual's path...
        await pilot.pause()
        assert ml._fast_context(ml.region.size.region) is None
        await check("border")
        ml.styles.border = ("", "red")  # ... and back
        await check("no border")
        # Lines the StylesCache drew before the fast path are not shown after it: a row
        # changed without a refresh, drawn by both paths in turn (a crop past the list's
        # bottom takes Textual's path).
        width, height = ml.region.size
        tall = Region(0, 0, width, height + 1)
        ml.render_lines(tall)
        ml.prime([summary(ids[ml.cursor], subject="Unrefreshed")])
        ml.render_lines(Region(0, 0, width, height))
        assert cells(ml.render_lines(tall)) == cells(textuals_lines(ml, tall))
        ml.set_ids(ids[:3])
        await check("rows past the end")
        ml.set_ids([])
        await check("empty list")
        app.theme = "tuimail-light" if theme == "tuimail-ansi-dark" else "tuimail-ansi-dark"
        await check("empty list, theme changed")
        app.theme = theme

        # The check sees a fast path that is wrong: here, the fill past a row's end (the
        # scrollbar's column) in another background.
        ml.set_ids(ids)
        await check("full again")
        fast_context = ml._fast_context

        def wrong_background(crop: Region) -> object:
            context = fast_context(crop)
            assert context is not None
            return (context[0], Style(bgcolor="#123456"), *context[2:])

        monkeypatch.setattr(ml, "_fast_context", wrong_background)
        assert mismatched_crops(ml)
