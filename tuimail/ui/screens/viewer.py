"""The full-screen message pager (Enter from the list; the only reader in mutt layout)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static

from tuimail.errors import TuimailError
from tuimail.models import Attachment
from tuimail.ui.reading import default_save_dir, save_attachment, unique_path
from tuimail.ui.text import clean
from tuimail.ui.widgets.message_view import MessageView

if TYPE_CHECKING:
    from tuimail.ui.app import TuimailApp
    from tuimail.ui.screens.main import MainScreen


class ViewerScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q,escape", "close", "Back", id="viewer_close"),
        Binding("n", "next", "Next", id="viewer_next"),
        Binding("p", "previous", "Previous", id="viewer_previous", show=False),
        Binding("r", "reply", "Reply", id="viewer_reply"),
        Binding("R", "reply_all", "Reply all", id="viewer_reply_all", show=False),
        Binding("f", "forward", "Forward", id="viewer_forward", show=False),
        Binding("d,delete", "delete", "Delete", id="viewer_delete"),
        Binding("a", "archive", "Archive", id="viewer_archive", show=False),
        Binding("F", "flag", "Flag", id="viewer_flag", show=False),
        Binding("N", "unread", "Unread", id="viewer_unread", show=False),
        Binding("s", "save", "Save attachment", id="viewer_save"),
        Binding("o", "open_attachment", "Open attachment", id="viewer_open", show=False),
    ]

    DEFAULT_CSS = """
    ViewerScreen #title { height: 1; background: $status-background; color: $status-foreground;
        padding: 0 1; }
    ViewerScreen MessageView { height: 1fr; }
    """

    def __init__(self, main: MainScreen, message_id: int) -> None:
        super().__init__()
        self.main = main
        self.message_id = message_id

    @property
    def mail_app(self) -> TuimailApp:
        return self.main.mail_app

    @property
    def view(self) -> MessageView:
        return self.query_one(MessageView)

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield MessageView(self.mail_app.load_message, self.mail_app.read_message, id="pager")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._show(self.message_id)
        self.view.focus()

    def _show(self, message_id: int) -> None:
        self.message_id = message_id
        view = self.view
        view.show(message_id, force=True)
        summary = view.summary
        if summary is not None and view.reading is not None and not summary.flags.seen:
            self.main.mark_seen([message_id])
        ml = self.main.message_list
        title = Text(end="", no_wrap=True)
        title.append(clean(self.main.view.title if self.main.view else ""), style="bold")
        title.append(f"  {ml.cursor + 1:,}/{ml.row_count:,}  ")
        if summary is not None:
            title.append(clean(summary.envelope.subject))
        self.query_one("#title", Static).update(title)
        if view.reading is None and summary is not None:
            self.mail_app.request_body(message_id)

    def action_close(self) -> None:
        self.app.pop_screen()

    def _step(self, delta: int) -> None:
        ml = self.main.message_list
        before = ml.cursor
        ml.move_cursor(ml.cursor + delta)
        if ml.cursor == before or ml.cursor_id is None:
            self.notify("No more messages", timeout=1.5)
            return
        self._show(ml.cursor_id)

    def action_next(self) -> None:
        self._step(1)

    def action_previous(self) -> None:
        self._step(-1)

    def _act(self, action: str) -> None:
        self._target_this()
        getattr(self.main, action)()
        self._after_act()

    def _target_this(self) -> None:
        """Make the list's cursor (and nothing marked) this message: actions apply to it."""
        ml = self.main.message_list
        ml.clear_marks()
        if ml.cursor_id != self.message_id:
            ml.move_to_id(self.message_id)

    def _after_act(self) -> None:
        if self not in self.app.screen_stack:
            return
        ml = self.main.message_list
        if ml.cursor_id is None:
            self.app.pop_screen()
        elif ml.cursor_id != self.message_id:
            self._show(ml.cursor_id)  # the message left the list: show the next one
        else:
            self.view.show(self.message_id, force=True)

    def action_delete(self) -> None:
        # Deleting for good asks first: the viewer moves on only once it is done.
        self._target_this()
        self.main.request_delete(then=self._after_act)

    def action_archive(self) -> None:
        self._act("action_archive")

    def action_flag(self) -> None:
        self._act("action_toggle_flag")

    def action_unread(self) -> None:
        self._act("action_toggle_read")

    def action_reply(self) -> None:
        self.mail_app.start_compose("reply", self.message_id)

    def action_reply_all(self) -> None:
        self.mail_app.start_compose("reply_all", self.message_id)

    def action_forward(self) -> None:
        self.mail_app.start_compose("forward", self.message_id)

    # ------------------------------------------------------------------ attachments

    def _attachments(self) -> list[Attachment]:
        reading = self.view.reading
        if reading is None:
            return []
        return [a for a in reading.parsed.attachments if not a.inline]

    def action_save(self) -> None:
        from tuimail.ui.screens.pickers import SaveAttachmentScreen

        attachments = self._attachments()
        if not attachments:
            self.notify("This message has no attachments.", timeout=2)
            return
        reading = self.view.reading
        assert reading is not None

        def save(choice: tuple[int, Path] | None) -> None:
            if choice is None:
                return
            index, directory = choice
            try:
                path = save_attachment(reading.raw, attachments[index], directory)
            except (OSError, ValueError, TuimailError) as exc:
                self.mail_app.say(
                    f"Could not save the attachment: {exc}", title="Not saved", severity="error"
                )
                return
            self.mail_app.say(f"Saved to {path}", title="Attachment saved")

        self.app.push_screen(SaveAttachmentScreen(attachments, default_save_dir()), save)

    @on(MessageView.Loaded)
    def _loaded(self, event: MessageView.Loaded) -> None:
        event.stop()

    def action_open_attachment(self) -> None:
        """Open the first (or only) attachment with the desktop's handler, never a shell."""
        from tuimail.ui.screens.pickers import ChooseAttachmentScreen

        attachments = self._attachments()
        if not attachments:
            self.notify("This message has no attachments.", timeout=2)
            return
        opener = shutil.which("xdg-open") or shutil.which("open")
        if opener is None:
            self.mail_app.say(
                "No xdg-open on this system: save the attachment with s and open it yourself.",
                title="Cannot open",
                severity="warning",
            )
            return
        reading = self.view.reading
        assert reading is not None

        def open_it(index: int | None) -> None:
            if index is None:
                return
            directory = Path(tempfile.mkdtemp(prefix="tuimail-"))
            try:
                path = save_attachment(reading.raw, attachments[index], directory)
            except (OSError, ValueError, TuimailError) as exc:
                self.mail_app.say(f"Could not open: {exc}", title="Cannot open", severity="error")
                return
            # argv list, detached, output discarded: the file name is never seen by a shell.
            subprocess.Popen(
                [opener, os.fspath(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )

        if len(attachments) == 1:
            open_it(0)
        else:
            self.app.push_screen(ChooseAttachmentScreen(attachments), open_it)


__all__ = ["ViewerScreen", "unique_path"]
