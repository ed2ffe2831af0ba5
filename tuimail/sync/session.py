"""What the account worker needs from a protocol's sync engine (IMAP, POP3, local Maildir).

An engine owns one connection (not thread-safe: only the account worker's thread calls it)
and one `Store` opened in that thread. It reports progress through a plain callback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class SyncProgress:
    account: str
    folder: str
    stage: str  # "folders" | "headers" | "bodies" | "flags" | "push" | "download"
    done: int
    total: int | None


ProgressFn = Callable[[SyncProgress], None]


@dataclass(frozen=True)
class FolderResult:
    folder: str
    new: int = 0  # messages added locally
    changed: int = 0  # server-side flag changes applied
    removed: int = 0  # expunged on the server, removed locally
    bodies: int = 0  # bodies downloaded
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class SyncSummary:
    account: str
    folders: tuple[FolderResult, ...] = ()
    pushed: int = 0  # pending local operations replayed to the server
    warnings: tuple[str, ...] = field(default=())

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
