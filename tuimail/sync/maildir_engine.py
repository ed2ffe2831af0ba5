"""A plain local Maildir (from mbsync, getmail, offlineimap...) opened as an account.

Sync imports new files into the store (read-only towards the source: tuimail never writes
into another program's Maildir, so the two cannot fight over file names). Local flag
changes live in the store only.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from tuimail.config import AccountConfig
from tuimail.errors import ConfigError
from tuimail.store import Store
from tuimail.store.maildir import import_maildir
from tuimail.sync.session import FolderResult, ProgressFn, SyncProgress, SyncSummary


class MaildirSession:
    def __init__(self, account: AccountConfig, store: Store) -> None:
        incoming = account.incoming
        if incoming is None or incoming.path is None:
            raise ConfigError(f'Account {account.name!r}: protocol = "maildir" needs path = "...".')
        self.account = account
        self.store = store
        self.path = incoming.path
        self.poll_interval = float(incoming.poll_interval)

    def connect(self) -> None:
        if not self.path.is_dir():
            raise ConfigError(
                f"Account {self.account.name!r}: {self.path} is not a Maildir directory."
            )

    def close(self) -> None:
        pass

    def sync(self, folders: Sequence[str] | None, progress: ProgressFn) -> SyncSummary:
        progress(SyncProgress(self.account.name, str(self.path), "import", 0, None))
        before = {f.name: f.total for f in self.store.folders(self.account.name)}
        result = import_maildir(self.store, self.account.name, self.path)
        after = {f.name: f.total for f in self.store.folders(self.account.name)}
        results = tuple(
            FolderResult(name, new=after.get(name, 0) - before.get(name, 0))
            for name in result.folders
            if folders is None or name in folders
        )
        progress(
            SyncProgress(
                self.account.name, str(self.path), "import", result.messages, result.messages
            )
        )
        return SyncSummary(self.account.name, results, warnings=tuple(result.skipped))

    def fetch_body(self, message_id: int) -> None:
        pass  # every imported message is complete

    def push_pending(self, progress: ProgressFn) -> int:
        done = 0
        for op in self.store.pending_ops(self.account.name):
            # Local account: the store already holds the change; there is no server to tell.
            self.store.complete_op(op.id)
            done += 1
        return done

    def wait_for_changes(self, timeout: float, stop: threading.Event) -> bool:
        return not stop.wait(min(timeout, self.poll_interval))
