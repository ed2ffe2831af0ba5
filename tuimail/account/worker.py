"""The account worker: one thread per account owns that account's connection.

imaplib and poplib block and are not thread-safe, so exactly one thread talks to each
server. Requests come in through a queue; every request gets exactly one `Reply`. Between
requests the worker waits for server changes (IDLE for IMAP, a poll interval for POP3) and
syncs what changed. Everything is reported through one plain callback, called from the
worker thread: the TUI wraps events in Textual messages, the CLI prints them, tests collect
them in a list.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuimail.config import AccountConfig
from tuimail.errors import AuthError, ConfigError, NetworkError, TLSError, TuimailError
from tuimail.models import Frozen, Protocol
from tuimail.sync.session import FolderResult, MailSession, SyncProgress, SyncSummary

if TYPE_CHECKING:
    from tuimail.store import Store

log = logging.getLogger(__name__)

_request_ids = itertools.count(1)

# Reconnect delays after network failures, in seconds (the last one repeats).
BACKOFF = (2.0, 5.0, 15.0, 60.0, 300.0)
# IDLE is re-issued well before the 29-minute limit of RFC 2177.
IDLE_RENEW = 25 * 60.0


# ---- requests -------------------------------------------------------------------------


# Requests and events are `Frozen` values (see tuimail.models), not dataclasses: these
# eleven classes cost ~8 ms to create at every `tuimail sync` start as dataclasses.
_set = object.__setattr__


class Request(Frozen):
    """Base of requests; each gets a new `id` (its reply names it)."""

    __slots__ = ("id",)
    id: int

    def __init__(self) -> None:
        _set(self, "id", next(_request_ids))


class SyncRequest(Request):
    __slots__ = ("folders",)
    folders: tuple[str, ...] | None  # None: every folder the account syncs

    def __init__(self, folders: tuple[str, ...] | None = None) -> None:
        super().__init__()
        _set(self, "folders", folders)


class FetchBodyRequest(Request):
    __slots__ = ("message_id",)
    message_id: int

    def __init__(self, message_id: int = 0) -> None:
        super().__init__()
        _set(self, "message_id", message_id)


class PushRequest(Request):
    """Replay pending local operations (flags, moves, deletes, appends) now."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__()


# ---- events ---------------------------------------------------------------------------


class Event(Frozen):
    __slots__ = ("account",)
    account: str

    def __init__(self, account: str) -> None:
        _set(self, "account", account)


class StatusEvent(Event):
    __slots__ = ("detail", "state")
    state: str  # "connecting" | "online" | "syncing" | "idle" | "offline" | "stopped"
    detail: str

    def __init__(self, account: str, state: str, detail: str = "") -> None:
        super().__init__(account)
        _set(self, "state", state)
        _set(self, "detail", detail)


class ProgressEvent(Event):
    __slots__ = ("progress",)
    progress: SyncProgress

    def __init__(self, account: str, progress: SyncProgress) -> None:
        super().__init__(account)
        _set(self, "progress", progress)


class FolderSyncedEvent(Event):
    __slots__ = ("result",)
    result: FolderResult

    def __init__(self, account: str, result: FolderResult) -> None:
        super().__init__(account)
        _set(self, "result", result)


class NewMailEvent(Event):
    __slots__ = ("count", "folder")
    folder: str
    count: int

    def __init__(self, account: str, folder: str, count: int) -> None:
        super().__init__(account)
        _set(self, "folder", folder)
        _set(self, "count", count)


class ErrorEvent(Event):
    __slots__ = ("error", "request_id")
    error: TuimailError
    request_id: int | None

    def __init__(self, account: str, error: TuimailError, request_id: int | None = None) -> None:
        super().__init__(account)
        _set(self, "error", error)
        _set(self, "request_id", request_id)


class Reply(Event):
    __slots__ = ("error", "ok", "request_id", "result")
    request_id: int
    ok: bool
    result: Any
    error: TuimailError | None

    def __init__(
        self,
        account: str,
        request_id: int,
        ok: bool,
        result: Any = None,
        error: TuimailError | None = None,
    ) -> None:
        super().__init__(account)
        _set(self, "request_id", request_id)
        _set(self, "ok", ok)
        _set(self, "result", result)
        _set(self, "error", error)


EventCallback = Callable[[Event], None]
SessionFactory = Callable[[AccountConfig, "Store"], MailSession]


def _open_store(root: Path) -> Store:
    from tuimail.store import Store

    return Store.open(root)


def default_session(account: AccountConfig, store: Store) -> MailSession:
    """The protocol engine for an account, imported lazily (the CLI loads only what it uses)."""
    incoming = account.incoming
    if incoming is None:
        raise ConfigError(f"Account {account.name!r} has no [incoming] server to sync.")
    if incoming.protocol is Protocol.IMAP:
        from tuimail.sync.engine import ImapSession

        return ImapSession(account, store)
    if incoming.protocol is Protocol.POP3:
        from tuimail.sync.pop3_engine import Pop3Session

        return Pop3Session(account, store)
    from tuimail.sync.maildir_engine import MaildirSession

    return MaildirSession(account, store)


class AccountWorker:
    """Owns one account's connection in its own thread."""

    def __init__(
        self,
        account: AccountConfig,
        store_root: Path,
        on_event: EventCallback,
        *,
        watch: bool = False,
        session_factory: SessionFactory = default_session,
        open_store: Callable[[Path], Store] | None = None,
    ) -> None:
        """`watch`: between requests, wait for server changes and sync them (the app);
        the CLI leaves it off and stops the worker after its requests."""
        self.account = account
        self.store_root = store_root
        self.on_event = on_event
        self.watch = watch
        self._session_factory = session_factory
        self._open_store = open_store
        self._requests: queue.Queue[Request | None] = queue.Queue()
        self._stop = threading.Event()
        # Set by submit() and stop(): cuts a wait for server changes short.
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"account-{account.name}", daemon=True
        )
        self._session: MailSession | None = None
        self._connected = False
        self._failures = 0
        self._retry_at = 0.0

    # ---- public API (any thread) ----

    def start(self) -> AccountWorker:
        self._thread.start()
        return self

    def submit(self, request: Request) -> int:
        self._requests.put(request)
        self._wake.set()
        return request.id

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to finish; it logs out and exits within about a second."""
        self._stop.set()
        self._requests.put(None)
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # ---- the thread ----

    def _emit(self, event: Event) -> None:
        try:
            self.on_event(event)
        except Exception:  # a broken listener must not kill the account's connection
            log.exception("event callback failed")

    def _run(self) -> None:
        try:
            store = (
                self._open_store(self.store_root)
                if self._open_store
                else _open_store(self.store_root)
            )
        except Exception as exc:
            error = (
                exc
                if isinstance(exc, TuimailError)
                else TuimailError(f"Cannot open the local store in {self.store_root}: {exc}")
            )
            self._emit(ErrorEvent(self.account.name, error))
            self._drain_with(error)
            self._emit(StatusEvent(self.account.name, "stopped"))
            return
        try:
            self._session = self._session_factory(self.account, store)
            self._loop()
        except TuimailError as exc:
            self._emit(ErrorEvent(self.account.name, exc))
            self._drain_with(exc)
        finally:
            self._disconnect()
            store.close()
            self._drain_with(
                TuimailError("The account worker stopped before serving this request.")
            )
            self._emit(StatusEvent(self.account.name, "stopped"))

    def _loop(self) -> None:
        while not self._stop.is_set():
            # Cleared before looking at the queue, so a request submitted after the look
            # still cuts the following wait short.
            self._wake.clear()
            try:
                request = self._requests.get(timeout=0 if self.watch else 0.5)
            except queue.Empty:
                if self.watch:
                    self._watch_once()
                continue
            if request is None:
                break
            self._handle(request)

    def _drain_with(self, error: TuimailError) -> None:
        """Answer every queued request with `error` (the worker cannot serve them)."""
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            if request is not None:
                self._emit(Reply(self.account.name, request.id, ok=False, error=error))

    def _handle(self, request: Request) -> None:
        name = self.account.name
        try:
            result = self._perform(request)
        except TuimailError as exc:
            if isinstance(exc, NetworkError):
                self._disconnect()
                self._note_failure()
            self._emit(ErrorEvent(name, exc, request.id))
            self._emit(Reply(name, request.id, ok=False, error=exc))
            return
        except Exception as exc:  # a bug: report it, keep the worker alive
            log.exception("request %r failed", request)
            error = TuimailError(
                f"Internal error while serving the request: {type(exc).__name__}: {exc}"
            )
            self._disconnect()
            self._emit(ErrorEvent(name, error, request.id))
            self._emit(Reply(name, request.id, ok=False, error=error))
            return
        self._emit(Reply(name, request.id, ok=True, result=result))

    def _perform(self, request: Request) -> Any:
        session = self._ensure_connected()
        if isinstance(request, SyncRequest):
            return self._sync(session, request.folders)
        if isinstance(request, FetchBodyRequest):
            session.fetch_body(request.message_id)
            return request.message_id
        if isinstance(request, PushRequest):
            return session.push_pending(self._progress)
        raise TuimailError(f"Unknown request {type(request).__name__}")

    def _sync(self, session: MailSession, folders: Sequence[str] | None) -> SyncSummary:
        name = self.account.name
        self._emit(StatusEvent(name, "syncing"))
        summary = session.sync(folders, self._progress)
        for result in summary.folders:
            self._emit(FolderSyncedEvent(name, result))
            if result.new:
                self._emit(NewMailEvent(name, result.folder, result.new))
        self._emit(StatusEvent(name, "online"))
        return summary

    def _progress(self, progress: SyncProgress) -> None:
        self._emit(ProgressEvent(self.account.name, progress))

    def _ensure_connected(self) -> MailSession:
        assert self._session is not None
        if not self._connected:
            self._emit(StatusEvent(self.account.name, "connecting"))
            try:
                self._session.connect()
            except TuimailError as exc:
                state = "offline"
                detail = exc.message
                if isinstance(exc, AuthError | TLSError | ConfigError):
                    # Retrying cannot help until the user changes something.
                    self._retry_at = float("inf")
                self._emit(StatusEvent(self.account.name, state, detail))
                self._session.close()
                raise
            self._connected = True
            self._failures = 0
            self._retry_at = 0.0
            self._emit(StatusEvent(self.account.name, "online"))
        return self._session

    def _disconnect(self) -> None:
        if self._session is not None and self._connected:
            self._session.close()
        self._connected = False

    def _note_failure(self) -> None:
        delay = BACKOFF[min(self._failures, len(BACKOFF) - 1)]
        self._failures += 1
        self._retry_at = time.monotonic() + delay
        self._emit(StatusEvent(self.account.name, "offline", f"retrying in {delay:.0f} s"))

    def _watch_once(self) -> None:
        """Between requests: wait for server changes, reconnecting with backoff when offline."""
        if not self._connected:
            if time.monotonic() < self._retry_at:
                self._wake.wait(min(IDLE_RENEW, self._retry_at - time.monotonic()))
                return
            self.submit(SyncRequest())
            return
        assert self._session is not None
        self._emit(StatusEvent(self.account.name, "idle"))
        try:
            changed = self._session.wait_for_changes(IDLE_RENEW, self._wake)
        except TuimailError as exc:
            self._disconnect()
            self._note_failure()
            self._emit(ErrorEvent(self.account.name, exc))
            return
        if changed and not self._stop.is_set():
            self.submit(SyncRequest())


def run_requests(
    account: AccountConfig,
    store_root: Path,
    requests: Sequence[Request],
    on_event: EventCallback,
    *,
    session_factory: SessionFactory = default_session,
    open_store: Callable[[Path], Store] | None = None,
) -> list[Reply]:
    """Run requests on a fresh worker and wait for every reply (the CLI's way to drive it)."""
    replies: dict[int, Reply] = {}
    done = threading.Event()
    wanted = {r.id for r in requests}

    def collect(event: Event) -> None:
        on_event(event)
        if isinstance(event, Reply) and event.request_id in wanted:
            replies[event.request_id] = event
            if len(replies) == len(wanted):
                done.set()

    worker = AccountWorker(
        account, store_root, collect, session_factory=session_factory, open_store=open_store
    ).start()
    for request in requests:
        worker.submit(request)
    while not done.wait(0.2):
        if not worker.alive:
            break
    worker.stop()
    return [replies[r.id] for r in requests if r.id in replies]
