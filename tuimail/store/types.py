"""Value types of the store's API (see docs/store-api.md)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from tuimail.models import Flags, FolderRole, FolderState, Frozen

# The types here are `Frozen` (see tuimail.models) rather than dataclasses, which cost ~1 ms
# each at import.
_set = object.__setattr__


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


class NewMessage(Frozen):
    """A message as fetched from a server. `raw` is the whole message when `complete`,
    else only its header block; `size` is the server's RFC822.SIZE."""

    __slots__ = ("complete", "flags", "internaldate", "raw", "size", "uid")
    uid: int | None
    flags: Flags
    size: int
    internaldate: datetime | None
    raw: bytes
    complete: bool

    def __init__(
        self,
        uid: int | None,
        flags: Flags | None = None,
        size: int = 0,
        internaldate: datetime | None = None,
        raw: bytes = b"",
        complete: bool = False,
    ) -> None:
        _set(self, "uid", uid)
        _set(self, "flags", Flags() if flags is None else flags)
        _set(self, "size", size)
        _set(self, "internaldate", internaldate)
        _set(self, "raw", raw)
        _set(self, "complete", complete)

    def with_uid(self, uid: int | None) -> NewMessage:
        return NewMessage(uid, self.flags, self.size, self.internaldate, self.raw, self.complete)


class FolderRow(Frozen):
    __slots__ = (
        "account", "delimiter", "id", "name", "role", "state", "subscribed", "total", "unread",
    )  # fmt: skip
    id: int
    account: str
    name: str
    delimiter: str
    role: FolderRole
    subscribed: bool
    state: FolderState
    total: int
    unread: int

    def __init__(
        self,
        id: int,
        account: str,
        name: str,
        delimiter: str,
        role: FolderRole,
        subscribed: bool,
        state: FolderState,
        total: int,
        unread: int,
    ) -> None:
        _set(self, "id", id)
        _set(self, "account", account)
        _set(self, "name", name)
        _set(self, "delimiter", delimiter)
        _set(self, "role", role)
        _set(self, "subscribed", subscribed)
        _set(self, "state", state)
        _set(self, "total", total)
        _set(self, "unread", unread)


class FolderChanges(Frozen):
    """What `Store.sync_folders` did. `renamed`: (old, new) names; `rescued`: (removed
    folder, folder that took them, count) for messages that existed only locally in a
    removed folder (pending APPENDs) and were kept."""

    __slots__ = ("added", "removed", "renamed", "rescued", "updated")
    added: list[str]
    removed: list[str]
    updated: list[str]
    renamed: list[tuple[str, str]]
    rescued: list[tuple[str, str, int]]

    def __init__(
        self,
        added: list[str] | None = None,
        removed: list[str] | None = None,
        updated: list[str] | None = None,
        renamed: list[tuple[str, str]] | None = None,
        rescued: list[tuple[str, str, int]] | None = None,
    ) -> None:
        _set(self, "added", [] if added is None else added)
        _set(self, "removed", [] if removed is None else removed)
        _set(self, "updated", [] if updated is None else updated)
        _set(self, "renamed", [] if renamed is None else renamed)
        _set(self, "rescued", [] if rescued is None else rescued)


OpKind = Literal["flags", "move", "copy", "expunge", "append"]
OutboxState = Literal["queued", "sending", "uncertain", "failed"]


class PendingOp(Frozen):
    """A local change still to be replayed on the server, in id order.

    `folder` is the source folder (the target for "append"); `uid` the message's UID there
    (None while it is a placeholder whose UID an earlier op will supply); `message_id` the
    local row (for "copy"/"append": the new local row that gets the server's new UID).
    """

    __slots__ = (
        "account", "add", "attempts", "dest_folder", "folder", "id", "kind", "last_error",
        "message_id", "remove", "uid",
    )  # fmt: skip
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

    def __init__(
        self,
        id: int,
        account: str,
        kind: OpKind,
        folder: str,
        uid: int | None,
        message_id: int | None,
        dest_folder: str | None,
        add: tuple[str, ...],
        remove: tuple[str, ...],
        attempts: int,
        last_error: str,
    ) -> None:
        _set(self, "id", id)
        _set(self, "account", account)
        _set(self, "kind", kind)
        _set(self, "folder", folder)
        _set(self, "uid", uid)
        _set(self, "message_id", message_id)
        _set(self, "dest_folder", dest_folder)
        _set(self, "add", add)
        _set(self, "remove", remove)
        _set(self, "attempts", attempts)
        _set(self, "last_error", last_error)


class OutboxItem(Frozen):
    __slots__ = (
        "account", "attempts", "created", "id", "last_error", "message_id", "next_attempt",
        "recipients", "sender", "state", "subject",
    )  # fmt: skip
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

    def __init__(
        self,
        id: int,
        account: str,
        message_id: str,
        subject: str,
        sender: str,
        recipients: tuple[str, ...],
        state: OutboxState,
        attempts: int,
        last_error: str,
        next_attempt: datetime | None,
        created: datetime,
    ) -> None:
        _set(self, "id", id)
        _set(self, "account", account)
        _set(self, "message_id", message_id)
        _set(self, "subject", subject)
        _set(self, "sender", sender)
        _set(self, "recipients", recipients)
        _set(self, "state", state)
        _set(self, "attempts", attempts)
        _set(self, "last_error", last_error)
        _set(self, "next_attempt", next_attempt)
        _set(self, "created", created)
