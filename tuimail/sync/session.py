"""What the account worker needs from a protocol's sync engine (IMAP, POP3, local Maildir).

An engine owns one connection (not thread-safe: only the account worker's thread calls it)
and one `Store` opened in that thread. It reports progress through a plain callback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from tuimail.models import Frozen

_set = object.__setattr__  # Frozen values, not dataclasses: cheaper to import (start-up)


class SyncProgress(Frozen):
    __slots__ = ("account", "done", "folder", "stage", "total")
    account: str
    folder: str
    stage: str  # "folders" | "headers" | "bodies" | "flags" | "push" | "download"
    done: int
    total: int | None

    def __init__(self, account: str, folder: str, stage: str, done: int, total: int | None) -> None:
        _set(self, "account", account)
        _set(self, "folder", folder)
        _set(self, "stage", stage)
        _set(self, "done", done)
        _set(self, "total", total)


ProgressFn = Callable[[SyncProgress], None]


class FolderResult(Frozen):
    __slots__ = ("bodies", "changed", "folder", "new", "removed", "warnings")
    folder: str
    new: int  # messages added locally
    changed: int  # server-side flag changes applied
    removed: int  # expunged on the server, removed locally
    bodies: int  # bodies downloaded
    warnings: tuple[str, ...]

    def __init__(
        self,
        folder: str,
        new: int = 0,
        changed: int = 0,
        removed: int = 0,
        bodies: int = 0,
        warnings: tuple[str, ...] = (),
    ) -> None:
        _set(self, "folder", folder)
        _set(self, "new", new)
        _set(self, "changed", changed)
        _set(self, "removed", removed)
        _set(self, "bodies", bodies)
        _set(self, "warnings", warnings)


class SyncSummary(Frozen):
    __slots__ = ("account", "folders", "pushed", "warnings")
    account: str
    folders: tuple[FolderResult, ...]
    pushed: int  # pending local operations replayed to the server
    warnings: tuple[str, ...]

    def __init__(
        self,
        account: str,
        folders: tuple[FolderResult, ...] = (),
        pushed: int = 0,
        warnings: tuple[str, ...] = (),
    ) -> None:
        _set(self, "account", account)
        _set(self, "folders", folders)
        _set(self, "pushed", pushed)
        _set(self, "warnings", warnings)

    @property
    def new(self) -> int:
        return sum(f.new for f in self.folders)


class MailSession(Protocol):
    """A connected (or connectable) protocol engine for one account."""

    def connect(self) -> None:
        """Connect and log in; raises TuimailError subclasses (AuthError, TLSError, ...)."""

    def close(self) -> None:
        """Log out politely if possible; never raises."""

    def sync(self, folders: Sequence[str] | None, progress: ProgressFn) -> SyncSummary:
        """Push pending local operations, then bring the store up to date with the server.

        `folders` None means every folder the account syncs. Everything fetched is in the
        store before the folder's sync state moves forward.
        """

    def fetch_body(self, message_id: int) -> None:
        """Download one message body into the store (on-demand read)."""

    def push_pending(self, progress: ProgressFn) -> int:
        """Replay pending local operations; returns how many completed."""

    def wait_for_changes(self, timeout: float, stop: threading.Event) -> bool:
        """Block up to `timeout` (IDLE, or sleep for protocols without push); True if the
        server reported a change worth a sync.

        The worker sets `stop` when it needs the connection back (a request arrived, or it
        is quitting): return within about a second of that (False unless a change came)."""
