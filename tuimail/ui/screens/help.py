"""`?`: the key bindings of the screen underneath, as a scrollable table."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

_NAMES = {
    "slash": "/",
    "question_mark": "?",
    "dollar_sign": "$",
    "minus": "-",
    "space": "Space",
    "enter": "Enter",
    "escape": "Esc",
    "delete": "Del",
    "pagedown": "PgDn",
    "pageup": "PgUp",
    "tab": "Tab",
    "shift+tab": "Shift+Tab",
}


def key_name(key: str) -> str:
    return _NAMES.get(key, key.replace("ctrl+", "Ctrl+"))


def bindings_table(screen: Screen[object]) -> Text:
    """Every described binding active on `screen` (focused widget first), one per line."""
    keys_of: dict[tuple[str, str], list[str]] = {}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if binding.description and not binding.system:
            keys_of.setdefault((binding.description, binding.action), []).append(key_name(key))
    rows = [(", ".join(dict.fromkeys(keys)), label) for (label, _), keys in keys_of.items()]
    width = max((len(k) for k, _ in rows), default=4) + 2
    out = Text(end="")
    for keys, label in rows:
        out.append(keys.rjust(width), style="bold")
        out.append("  " + label + "\n")
    out.append("\nCtrl+P opens the command palette: every action, themes, layouts.\n")
    out.rstrip()
    return out


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 64; max-width: 95%; height: 80%;
        border: round $primary; background: $surface; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close"),
    ]

    def __init__(self, underneath: Screen[object]) -> None:
        super().__init__()
        self.underneath = underneath

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("Keys", style="bold"))
            yield Static(bindings_table(self.underneath))

    def action_close(self) -> None:
        self.dismiss(None)
