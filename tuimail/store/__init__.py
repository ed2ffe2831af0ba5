"""The local store: SQLite index + Maildir bodies. The contract is docs/store-api.md."""

from tuimail.store.store import Store
from tuimail.store.types import (
    FolderChanges,
    FolderRow,
    NewMessage,
    OutboxItem,
    PendingOp,
    SortKey,
    ThreadRow,
)

__all__ = [
    "FolderChanges",
    "FolderRow",
    "NewMessage",
    "OutboxItem",
    "PendingOp",
    "SortKey",
    "Store",
    "ThreadRow",
]
