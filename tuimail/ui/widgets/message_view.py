"""The message viewer: headers (real addresses always shown), body, links, attachments.

Used as the preview pane and inside the full-screen pager. All mail text arrives as `Text`
built by `tuimail.ui.reading` (sanitized, literal); nothing is parsed as markup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from tuimail.models import MessageSummary

if TYPE_CHECKING:  # the parser and renderer load with the first message shown, not at start
    from tuimail.mail.render import Link
    from tuimail.ui.reading import Reading, Styles

# (summary, raw bytes or None when the body is not local yet)
Loader = Callable[[int], tuple[MessageSummary | None, bytes | None]]
# parse + render + assess one message (the app adds what it knows about the user)
Reader = Callable[[MessageSummary, bytes, str], "Reading"]
BACKGROUND_SIZE = 100_000  # bytes: bigger messages are rendered off the UI thread


class MessageView(VerticalScroll, can_focus=True):
    """Shows one message; `show(id)` loads it through the loader."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "message-view--label",
        "message-view--quote",
        "message-view--sign",
        "message-view--link",
        "message-view--dim",
    }

    DEFAULT_CSS = """
    MessageView {
        background: $surface;
        padding: 0 1;
        scrollbar-size-vertical: 1;
        & > #headers { border-bottom: solid $primary 40%; }
        & > .message-view--label { color: $header-label-color; text-style: bold; }
        & > .message-view--quote { color: $quote-color; }
        & > .message-view--sign { color: $sign-color; text-style: bold; }
        & > .message-view--link { color: $text-primary; }
        & > .message-view--dim { color: $text-muted; }
    }
    MessageView.-raw > #headers { display: none; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "scroll_down", "Down", show=False),
        Binding("k,up", "scroll_up", "Up", show=False),
        Binding("space,pagedown", "page_down", "Page down", show=False),
        Binding("b,pageup", "page_up", "Page up", show=False),
        Binding("h", "toggle_headers", "Headers"),
        Binding("V", "toggle_raw", "Source"),
        Binding("T", "toggle_html", "Text/HTML", show=False),
        Binding("l", "links", "Links", id="links"),
        # 1-9: link N's confirmation dialog straight away (nothing opens without `y`).
        *(Binding(str(n), f"link({n})", f"Link {n}", show=False) for n in range(1, 10)),
    ]

    class Loaded(Message):
        def __init__(self, view: MessageView, message_id: int, reading: Reading | None) -> None:
            super().__init__()
            self.view = view
            self.message_id = message_id
            self.reading = reading

    def __init__(self, loader: Loader, reader: Reader, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._loader = loader
        self._reader = reader
        self.message_id: int | None = None
        self.summary: MessageSummary | None = None
        self.reading: Reading | None = None
        self.full_headers = False
        self.raw_source = False
        self.prefer = "plain"  # which alternative of a text+HTML message to show
        self.note = ""  # shown instead of the body (e.g. "fetching")

    def compose(self):  # type: ignore[no-untyped-def]
        headers = Static(id="headers")
        headers.display = False  # until there is a message: hiding it later re-lays out
        yield headers
        yield Static(id="body")

    def on_mount(self) -> None:
        if self.reading is not None or self.note:
            self._paint()

    def _styles(self) -> Styles:
        from tuimail.ui.reading import Styles

        get = self.get_component_rich_style
        return Styles(
            label=get("message-view--label", partial=True),
            quote=get("message-view--quote", partial=True),
            sign=get("message-view--sign", partial=True),
            link=get("message-view--link", partial=True),
            dim=get("message-view--dim", partial=True),
        )

    def clear(self, note: str = "") -> None:
        self.message_id = None
        self.summary = None
        self.reading = None
        self.note = note
        self._paint()

    def show(self, message_id: int, *, force: bool = False) -> None:
        if message_id == self.message_id and not force:
            return
        self.message_id = message_id
        summary, raw = self._loader(message_id)
        self.summary = summary
        self.note = ""
        self.reading = None
        if summary is None or raw is None:
            self.note = (
                "The body of this message is not stored locally yet; it is fetched when the "
                "account is online."
                if summary is not None
                else "This message is no longer in the local store."
            )
        elif len(raw) > BACKGROUND_SIZE:
            self.note = f"Rendering a large message ({len(raw):,} bytes)…"
            self._read_in_background(message_id, summary, raw)
        else:
            self.reading = self._reader(summary, raw, self.prefer)
        self.scroll_home(animate=False)
        self._paint()
        if self.reading is not None or summary is None or raw is None:
            self.post_message(self.Loaded(self, message_id, self.reading))

    # (Not Textual's default description: the repr() of the raw message, on the UI thread.)
    @work(thread=True, exclusive=True, group="render", description="render a large message")
    def _read_in_background(self, message_id: int, summary: MessageSummary, raw: bytes) -> None:
        reading = self._reader(summary, raw, self.prefer)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._background_done, message_id, reading)

    def _background_done(self, message_id: int, reading: Reading) -> None:
        if message_id != self.message_id:
            return
        self.reading = reading
        self.note = ""
        self._paint()
        self.post_message(self.Loaded(self, message_id, reading))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self.is_mounted:
            self._paint()

    def _paint(self) -> None:
        if not self.is_mounted:
            return
        headers = self.query_one("#headers", Static)
        body = self.query_one("#body", Static)
        if self.reading is None:
            # (No parser or renderer needed for this: the app's first paint goes without.)
            dim = self.get_component_rich_style("message-view--dim", partial=True)
            headers.update(Text(""))
            headers.display = False
            body.update(Text(self.note or "No message selected.", style=dim))
            return
        from tuimail.ui.reading import body_text, header_text, raw_text

        styles = self._styles()
        headers.display = not self.raw_source
        if self.raw_source:
            body.update(raw_text(self.reading.raw))
            return
        headers.update(header_text(self.reading, styles, full=self.full_headers))
        body.update(body_text(self.reading, styles))

    def action_toggle_headers(self) -> None:
        self.full_headers = not self.full_headers
        self._paint()

    def action_toggle_raw(self) -> None:
        self.raw_source = not self.raw_source
        self.set_class(self.raw_source, "-raw")
        self._paint()

    def action_toggle_html(self) -> None:
        """Show the HTML alternative instead of the plain text (or back)."""
        self.prefer = "html" if self.prefer == "plain" else "plain"
        if self.message_id is not None:
            self.show(self.message_id, force=True)

    def _links(self) -> tuple[Link, ...] | None:
        if self.reading is None:
            self.notify("No message is shown yet.", timeout=2)
            return None
        return self.reading.links

    def action_links(self) -> None:
        """List the message's numbered links; choosing one shows where it goes first."""
        from tuimail.ui.app import TuimailApp
        from tuimail.ui.screens.links import choose_link

        links = self._links()
        if links is not None and isinstance(self.app, TuimailApp):
            choose_link(self.app, links)

    def action_link(self, number: int) -> None:
        from tuimail.ui.app import TuimailApp
        from tuimail.ui.screens.links import confirm_link

        links = self._links()
        if links is None or not isinstance(self.app, TuimailApp):
            return
        link = next((link for link in links if link.number == number), None)
        if link is None:
            self.app.say(
                f"This message has no link [{number}]"
                + (f" (it has {len(links)})." if links else "."),
                title="Links",
                timeout=2,
            )
            return
        confirm_link(self.app, link)

    def action_page_down(self) -> None:
        self.scroll_page_down(animate=False)

    def action_page_up(self) -> None:
        self.scroll_page_up(animate=False)
