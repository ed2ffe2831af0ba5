"""Small modal dialogs: folder picker (fuzzy), attachment choosers, confirmation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.fuzzy import Matcher
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from tuimail.models import Attachment
from tuimail.store.types import FolderRow
from tuimail.ui.reading import attachment_line
from tuimail.ui.text import clean
from tuimail.ui.widgets.folder_tree import folder_title

_MODAL_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 70; max-width: 95%; height: auto; max-height: 80%;
    border: round $primary; background: $surface; padding: 0 1;
}}
{name} .title {{ text-style: bold; height: 1; }}
{name} OptionList {{ height: auto; max-height: 16; border: none; }}
{name} Input {{ border: none; height: 1; padding: 0; background: $boost; }}
{name} .hint {{ color: $text-muted; height: 1; }}
"""


def fuzzy_filter(query: str, names: Sequence[str]) -> list[int]:
    """Indexes of `names` matching `query` (fuzzy, as in the command palette), best first."""
    if not query.strip():
        return list(range(len(names)))
    matcher = Matcher(query)
    scored = [(matcher.match(name), i) for i, name in enumerate(names)]
    return [i for score, i in sorted(scored, key=lambda t: (-t[0], t[1])) if score > 0]


class FolderPicker(ModalScreen[FolderRow | None]):
    """Type to narrow (fuzzy), Enter to choose, Escape to cancel."""

    DEFAULT_CSS = _MODAL_CSS.format(name="FolderPicker")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "down", show=False),
        Binding("up", "up", show=False),
    ]

    def __init__(self, rows: Sequence[FolderRow], title: str) -> None:
        super().__init__()
        self.rows = list(rows)
        self.title_text = title
        self.names = [f"{r.account}/{r.name}" for r in self.rows]
        self.shown: list[int] = list(range(len(self.rows)))

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.title_text), classes="title")
            yield Input(placeholder="Type part of a folder name")
            yield OptionList()
            yield Static(Text("Enter: choose   Esc: cancel"), classes="hint")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one(Input).focus()

    def _fill(self, query: str) -> None:
        self.shown = fuzzy_filter(query, self.names)
        options = self.query_one(OptionList)
        options.clear_options()
        for i in self.shown:
            row = self.rows[i]
            label = Text(end="")
            label.append(clean(row.account) + "/", style="dim")
            label.append(clean(row.name))
            if folder_title(row) != clean(row.name):
                label.append(f"  ({folder_title(row)})", style="dim")
            options.add_option(Option(label))
        if self.shown:
            options.highlighted = 0

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        options = self.query_one(OptionList)
        index = options.highlighted
        if index is not None and index < len(self.shown):
            self.dismiss(self.rows[self.shown[index]])

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.rows[self.shown[event.option_index]])

    def action_down(self) -> None:
        self.query_one(OptionList).action_cursor_down()

    def action_up(self) -> None:
        self.query_one(OptionList).action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChooseAttachmentScreen(ModalScreen[int | None]):
    DEFAULT_CSS = _MODAL_CSS.format(name="ChooseAttachmentScreen")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, attachments: Sequence[Attachment], title: str = "Open which attachment?"):
        super().__init__()
        self.attachments = list(attachments)
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.title_text), classes="title")
            yield OptionList(*(Option(attachment_line(a)) for a in self.attachments))

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_index)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SaveAttachmentScreen(ModalScreen[tuple[int, Path] | None]):
    """Pick an attachment and a directory; the file name is always derived safely."""

    DEFAULT_CSS = _MODAL_CSS.format(name="SaveAttachmentScreen")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, attachments: Sequence[Attachment], directory: Path) -> None:
        super().__init__()
        self.attachments = list(attachments)
        self.directory = directory

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Save attachment"), classes="title")
            yield OptionList(*(Option(attachment_line(a)) for a in self.attachments))
            yield Static(Text("into directory:"), classes="hint")
            yield Input(str(self.directory), id="directory")
            yield Static(Text("Enter: save   Tab: switch   Esc: cancel"), classes="hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = 0
        options.focus()

    def _save(self) -> None:
        index = self.query_one(OptionList).highlighted or 0
        directory = Path(self.query_one("#directory", Input).value.strip() or ".").expanduser()
        if not directory.is_dir():
            self.notify(f"{directory} is not a directory", severity="error", markup=False)
            return
        self.dismiss((index, directory))

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self._save()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self._save()

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    DEFAULT_CSS = _MODAL_CSS.format(name="ConfirmScreen")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.question), classes="title")
            if self.detail:
                yield Static(Text(self.detail))
            yield Static(Text("y: yes   n: no"), classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
