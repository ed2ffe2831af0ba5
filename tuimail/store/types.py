"""Value types of the store's API (see docs/store-api.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from tuimail.models import Flags, FolderRole, FolderState


class SortKey(StrEnum):
    DATE = "date"
    FROM = "from"
    SUBJECT = "subject"
    SIZE = "size"


# What threading a folder needs of one message (`Store.thread_rows`): (id, thread_id,
# date, message_id, in_reply_to, references). `date` is the sort instant (Unix seconds,
# UTC; INTERNALDATE when the message has no Date, 0 when neither); `thread_id` is never 0
# for a stored message; `references` is the References Message-IDs separated by spaces.
# A plain tuple of strings and numbers, not a NamedTuple (nor a tuple inside): at 100,000
# rows, such tuples drop out of the garbage collector's lists after one pass, so later
# full collections, which stall every thread, do not walk them.
ThreadRow = tuple[int, int, float, str, str, str]


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message as fetched from a server. `raw` is the whole message when `complete`,
    else only its header block; `size` is the server's RFC822.SIZE."""

    uid: int | None
    flags: Flags = field(default_factory=Flags)
    size: int = 0
    internaldate: datetime | None = None
    raw: bytes = b""
    complete: bool = False


@dataclass(frozen=True, slots=True)
class FolderRow:
    id: int
    account: str
    name: str
    delimiter: str
    role: FolderRole
    subscribed: bool
    state: FolderState
    total: int
    unread: int


@dataclass(frozen=True, slots=True)
class FolderChanges:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


OpKind = Literal["flags", "move", "copy", "expunge", "append"]
OutboxState = Literal["queued", "sending", "uncertain", "failed"]


@dataclass(frozen=True, slots=True)
class PendingOp:
    """A local change still to be replayed on the server, in id order.

    `folder` is the source folder (the target for "append"); `uid` the message's UID there
    (None while it is a placeholder whose UID an earlier op will supply); `message_id` the
    local row (for "copy"/"append": the new local row that gets the server's new UID).
    """

    id: int
    account: str
    kind: OpKind
    folder: str
    uid: int | None
    message_id: int | None
    dest_folder: str | None
    add: tuple[str, ...]
    remove: tuple[str, ...]
    attempts: int
    last_error: str


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    account: str
    message_id: str
    subject: str
    sender: str
    recipients: tuple[str, ...]
    state: OutboxState
    attempts: int
    last_error: str
    next_attempt: datetime | None
    created: datetime
