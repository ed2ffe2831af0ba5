"""The app's side of the account workers: one watching worker per account, plus a sender
that flushes the outbox in the background.

Every method returns at once; results come back as events through the one callback given
to `start`. Nothing here imports Textual: the UI hands in a thread-safe callback.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tuimail.account.worker import (
    AccountWorker,
    Event,
    EventCallback,
    FetchBodyRequest,
    PushRequest,
    Reply,
    SyncRequest,
)
from tuimail.config import Config
from tuimail.errors import TuimailError

if TYPE_CHECKING:
    from tuimail.account.sending import Outcome
    from tuimail.store import Store

log = logging.getLogger(__name__)

# The sender retries due outbox items this often even when nothing new was queued.
OUTBOX_RETRY_INTERVAL = 60.0


class OutboxEvent(Event):
    """The outbox changed: `sent` went out, `error` (if any) says why others did not."""

    __slots__ = ("error", "sent", "waiting")
    sent: int
    waiting: int
    error: TuimailError | None

    def __init__(
        self, account: str, sent: int = 0, waiting: int = 0, error: TuimailError | None = None
    ) -> None:
        super().__init__(account)
        object.__setattr__(self, "sent", sent)
        object.__setattr__(self, "waiting", waiting)
        object.__setattr__(self, "error", error)


class Hub:
    """Starts, feeds and stops the workers of every configured account."""

    def __init__(self, config: Config, store_root: Path) -> None:
        self.config = config
        self.store_root = store_root
        self.workers: dict[str, AccountWorker] = {}
        self._events: EventCallback | None = None
        self._store: Store | None = None  # lookups from the app's thread only
        self._sender: threading.Thread | None = None
        self._send_now = threading.Event()
        self._stopping = threading.Event()

    # ---- life cycle ----

    def start(self, events: EventCallback) -> None:
        self._events = events
        for account in self.config.accounts.values():
            if account.incoming is None:
                continue
            worker = AccountWorker(account, self.store_root, self._forward, watch=True)
            self.workers[account.name] = worker.start()
        if any(a.outgoing is not None for a in self.config.accounts.values()):
            self._sender = threading.Thread(target=self._send_loop, name="outbox", daemon=True)
            self._sender.start()

    def stop(self) -> None:
        self._stopping.set()
        self._send_now.set()
        for worker in self.workers.values():
            worker.stop(timeout=0)  # ask all first, then wait: they log out in parallel
        for worker in self.workers.values():
            worker.stop(timeout=3.0)
        if self._sender is not None:
            self._sender.join(timeout=3.0)
        if self._store is not None:
            self._store.close()

    # ---- requests (from the app's thread) ----

    def request_sync(self, account: str | None = None) -> None:
        for name, worker in self.workers.items():
            if account is None or name == account:
                worker.submit(SyncRequest())

    def request_body(self, message_id: int) -> None:
        account = self._account_of(message_id)
        worker = self.workers.get(account or "")
        if worker is not None:
            worker.submit(FetchBodyRequest(message_id=message_id))

    def push(self) -> None:
        """Local changes were written: replay them, and send anything new in the outbox."""
        for worker in self.workers.values():
            worker.submit(PushRequest())
        self._send_now.set()

    # ---- internals ----

    def _account_of(self, message_id: int) -> str | None:
        if self._store is None:
            from tuimail.store import Store

            self._store = Store.open(self.store_root)
        summary = self._store.message(message_id)
        return summary.account if summary else None

    def _forward(self, event: Event) -> None:
        # A failed request was already reported by its ErrorEvent: one notification is enough.
        if isinstance(event, Reply) and not event.ok:
            return
        if self._events is not None:
            self._events(event)

    def _send_loop(self) -> None:
        from tuimail.account.sending import flush
        from tuimail.store import Store

        store = Store.open(self.store_root)
        try:
            while not self._stopping.is_set():
                self._send_now.wait(OUTBOX_RETRY_INTERVAL)
                self._send_now.clear()
                if self._stopping.is_set():
                    break
                if not store.outbox_items():
                    continue
                try:
                    report = asyncio.run(flush(store, self.config, lock_timeout=5.0))
                except TuimailError as exc:
                    self._forward(OutboxEvent("", error=exc))
                    continue
                except Exception as exc:  # a bug must not stop later retries
                    log.exception("outbox flush failed")
                    self._forward(OutboxEvent("", error=TuimailError(f"Sending failed: {exc}")))
                    continue
                self._report_flush(report.outcomes, len(store.outbox_items()))
        finally:
            store.close()

    def _report_flush(self, outcomes: Sequence[Outcome], waiting: int) -> None:
        sent = sum(1 for o in outcomes if o.status == "sent")
        problems = [o for o in outcomes if o.status != "sent"]
        error = None
        if problems:
            error = TuimailError(
                f"{len(problems)} message(s) not sent yet: {problems[0].error}", "Outbox"
            )
        if outcomes:
            self._forward(OutboxEvent("", sent=sent, waiting=waiting, error=error))
