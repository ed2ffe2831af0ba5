"""The status line: where you are on the left, sync and outbox state on the right."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.widget import Widget

from tuimail.ui.text import clean


@dataclass(slots=True)
class AccountStatus:
    state: str = "offline"  # connecting | online | syncing | idle | offline | stopped | local
    detail: str = ""
    progress: str = ""


@dataclass(slots=True)
class StatusInfo:
    title: str = ""
    total: int = 0
    unread: int = 0
    marked: int = 0
    position: int = 0
    sort: str = "date"
    descending: bool = True
    threads: bool = False
    filter: str = ""
    outbox: int = 0
    outbox_failed: int = 0
    accounts: dict[str, AccountStatus] = field(default_factory=dict)
    message: str = ""  # the last action's result (e.g. "Archived 3 messages — u to undo")


_STATE_MARK = {
    "online": "●",
    "idle": "●",
    "syncing": "↻",
    "connecting": "…",
    "offline": "○",
    "stopped": "○",
    "local": "◆",
}


def status_text(info: StatusInfo, width: int) -> Text:
    """The whole line, cut to `width` (right part kept, left part shortened first)."""
    left = Text(end="", no_wrap=True)
    left.append(f" {clean(info.title)} ", style="bold")
    if info.total:
        left.append(f" {info.position:,}/{info.total:,}")
    else:
        left.append(" empty")
    if info.unread:
        left.append(f"  {info.unread:,} unread")
    if info.marked:
        left.append(f"  {info.marked:,} marked", style="bold")
    order = ("↓" if info.descending else "↑") + info.sort + (" threads" if info.threads else "")
    left.append(f"  [{order}]")
    if info.filter:
        left.append("  filter: ")
        left.append(clean(info.filter), style="italic")
    if info.message:
        left.append("  — ")
        left.append(clean(info.message))

    right = Text(end="", no_wrap=True)
    if info.outbox_failed:
        right.append(f" outbox: {info.outbox_failed} failed ", style="bold reverse")
    elif info.outbox:
        right.append(f" outbox: {info.outbox} ")
    for name, status in info.accounts.items():
        mark = _STATE_MARK.get(status.state, "?")
        right.append(f" {mark} {clean(name)}")
        state = status.progress or status.state
        if status.state not in ("idle", "online", "local"):
            right.append(f" {clean(state)}")
    right.append(" ")
    room = max(width - right.cell_len, 0)
    left.truncate(room, overflow="ellipsis", pad=True)
    return Text.assemble(left, right, end="", no_wrap=True)


class StatusBar(Widget):
    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $status-background;
        color: $status-foreground;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.info = StatusInfo()

    def update_info(self, **changes: object) -> None:
        for key, value in changes.items():
            setattr(self.info, key, value)
        self.refresh()

    def render(self) -> Text:
        return status_text(self.info, self.size.width)
