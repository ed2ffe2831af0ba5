"""POP3: one-way download into the local Inbox that never loses or duplicates a message.

How a sync goes (one POP3 session, opened and closed by each sync so the server's maildrop
lock is never held while idle and deletions are committed promptly):

1. LIST and UIDL. Each message gets a *key*: its UIDL, or, on a server without UIDL, a
   fingerprint of its headers from `TOP n 0` (see `pop3.fingerprint`; a warning says so).
   A key seen twice in one listing gets `#2`, `#3`... so a server that repeats a UIDL
   cannot make us skip a message.
2. `plan()` (pure): keys not in the store are downloaded; keys in the store whose
   deletion is due (`DeletePolicy`) are deleted; messages over `max_message_size` are
   left on the server with a warning.
3. RETR, pipelined. Every batch goes into the store with `Store.pop3_add`, which makes the
   Maildir files durable and commits the index rows *and the key records* in one durable
   transaction. A key already recorded (another process got there first) is never stored
   twice. For big downloads a helper process parses each batch and writes its files to
   `tmp/` while the next batch downloads (`sync/helper.py`); the store then links and commits.
4. DELE for what is due (only keys already durably stored), then QUIT, which is when the
   server really deletes. Then the records of the deleted keys are forgotten.

Crash safety follows from the order: killed mid-RETR, nothing of that message is recorded
and it is downloaded again; killed after the store but before DELE, the key is recorded so
the message is not downloaded again and the next run deletes it; killed after DELE but
before QUIT, the server undoes the DELEs (RFC 1939 UPDATE state happens only at QUIT) and
the next run deletes again. A per-message failure (refused RETR, oversize, a reply that
never ends) is reported for that message; when it leaves the stream unreadable, the sync
reconnects and carries on with the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tuimail.backends import pop3
from tuimail.backends.pop3 import Pop3Client
from tuimail.config import AccountConfig, IncomingConfig
from tuimail.errors import ConfigError, ProtocolError
from tuimail.models import Flags, FolderInfo, FolderRole, Protocol
from tuimail.secrets import Secret, get_oauth2_token, get_password
from tuimail.store import NewMessage, Store
from tuimail.store.pop3state import Prepared
from tuimail.sync.helper import PARALLEL_MIN, OneAhead, PrepareHelper
from tuimail.sync.session import FolderResult, ProgressFn, SyncProgress, SyncSummary

log = logging.getLogger(__name__)

INBOX = "INBOX"
# Messages go to the store in batches: one durable transaction (and a few filesystem
# flushes) per batch instead of per message; a crash loses at most one batch of downloads,
# which the next sync fetches again.
BATCH_MESSAGES = 500
BATCH_BYTES = 8 * 1024 * 1024
# From this many new messages on, a helper process parses and writes files one batch ahead.
PARALLEL_INDEX_MIN = PARALLEL_MIN
# Progress is reported at least this often (messages).
PROGRESS_EVERY = 100
# A sync reconnects after a message spoils the stream; each reconnect skips at least one
# more message, and this bounds the loop against a server that breaks every session.
MAX_RECONNECTS = 10
# A connection opened by `connect()` is used by a sync that starts within this many seconds.
FRESH_FOR = 60.0
# `wait_for_changes` looks at `stop` this often (Event.wait wakes at once anyway).
POLL_STEP = 0.5

Clock = Callable[[], datetime]
# Test hook: called with "retrieved" (one message read), "stored" (a batch committed),
# "deleted" (DELEs sent, before QUIT), "quit" (QUIT done). A test can kill the process there.
Checkpoint = Callable[[str], None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DeletePolicy:
    """When a downloaded message is deleted from the server.

    - `leave_on_server = false`: right after it is durably stored.
    - `leave_on_server = true`, `delete_after_days = N > 0`: N days after its download.
    - `leave_on_server = true`, `delete_after_days = 0`: never.
    """

    leave_on_server: bool = True
    delete_after_days: int = 0

    @classmethod
    def of(cls, incoming: IncomingConfig) -> DeletePolicy:
        return cls(incoming.leave_on_server, incoming.delete_after_days)

    def due(self, downloaded: datetime, now: datetime) -> bool:
        if not self.leave_on_server:
            return True
        if self.delete_after_days <= 0:
            return False
        return now - downloaded >= timedelta(days=self.delete_after_days)


def unique_keys(order: Sequence[int], base: Mapping[int, str]) -> dict[int, str]:
    """Make keys unique within one listing: the n-th repeat of a key gets `#n`.

    A server that gives two messages one UIDL (or two deliveries one fingerprint) then
    still has two keys, stable between sessions as long as the messages keep their order.
    """
    seen: Counter[str] = Counter()
    keys: dict[int, str] = {}
    for number in order:
        key = base.get(number)
        if key is None:
            continue
        seen[key] += 1
        keys[number] = key if seen[key] == 1 else f"{key}#{seen[key]}"
    return keys


@dataclass(frozen=True)
class Plan:
    download: tuple[int, ...] = ()  # message numbers, ascending
    delete: tuple[int, ...] = ()  # stored already, deletion due
    too_large: tuple[int, ...] = ()  # over max_message_size: left on the server
    skipped: tuple[int, ...] = ()  # failed earlier in this sync: not tried again


def plan(
    sizes: Mapping[int, int],
    keys: Mapping[int, str],
    seen: Mapping[str, datetime],
    policy: DeletePolicy,
    now: datetime,
    max_size: int,
    failed: Collection[str] = (),
    *,
    unkeyed: str = "skip",
) -> Plan:
    """What one session does. Pure.

    `unkeyed` says what to do with a message that has no key: "download" (fingerprint mode:
    the key comes from the message itself) or "skip" (UIDL mode: a message the server
    lists without a UIDL cannot be tracked, so it is left alone rather than risk a
    duplicate).
    """
    download: list[int] = []
    delete: list[int] = []
    too_large: list[int] = []
    skipped: list[int] = []
    for number in sorted(sizes):
        key = keys.get(number)
        if key is None:
            if unkeyed != "download":
                skipped.append(number)
                continue
        elif key in seen:
            if policy.due(seen[key], now):
                delete.append(number)
            continue
        elif key in failed:
            skipped.append(number)
            continue
        if sizes[number] > max_size:
            too_large.append(number)
            continue
        download.append(number)
    return Plan(tuple(download), tuple(delete), tuple(too_large), tuple(skipped))


# (message number, key, message) of each message in a batch, in download order.
_Batch = list[tuple[int, str, NewMessage]]


@dataclass
class _Run:
    """What one sync has done so far, across reconnects."""

    new: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # key -> reason, not retried
    warnings: list[str] = field(default_factory=list)
    done: int = 0

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)


class Pop3Session:
    """`MailSession` for a POP3 account: the local Inbox is the only folder."""

    def __init__(
        self,
        account: AccountConfig,
        store: Store,
        *,
        clock: Clock = _utcnow,
        checkpoint: Checkpoint | None = None,
        password: Secret | None = None,
    ) -> None:
        incoming = account.incoming
        if incoming is None or incoming.protocol is not Protocol.POP3:
            raise ConfigError(f"Account {account.name!r} is not a POP3 account.")
        self.account = account
        self.incoming: IncomingConfig = incoming
        self.store = store
        self.policy = DeletePolicy.of(incoming)
        self.clock = clock
        self._checkpoint = checkpoint
        self._password = password
        self._client: Pop3Client | None = None
        self._opened_at = 0.0
        self._last_sync = time.monotonic()
        self._fingerprint_warned = False
        self._top_unusable = False

    # ---- MailSession

    def connect(self) -> None:
        """Connect and log in now, so that bad credentials or TLS show at once. The next
        sync uses this connection if it comes soon (see `_take_client`)."""
        if self._client is None:
            self._client = self._open()
            self._opened_at = time.monotonic()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def sync(self, folders: Sequence[str] | None, progress: ProgressFn) -> SyncSummary:
        name = self.account.name
        pushed = self.push_pending(progress)
        if folders is not None and not any(f.upper() == INBOX for f in folders):
            return SyncSummary(
                name,
                (),
                pushed,
                (f"{name} is a POP3 account: the server has only the Inbox to download.",),
            )
        inbox = self.store.ensure_folder(name, FolderInfo(INBOX, role=FolderRole.INBOX))
        run = _Run()
        for _attempt in range(MAX_RECONNECTS + 1):
            client = self._take_client()
            try:
                again = self._session(client, inbox.id, run, progress)
            except BaseException:
                client.abort()  # the server undoes this session's DELEs: nothing is lost
                raise
            if not again:
                break
        else:
            run.warn(
                f"The server broke the connection {MAX_RECONNECTS + 1} times; the remaining "
                "messages will be downloaded on the next sync."
            )
        self._last_sync = time.monotonic()
        result = FolderResult(INBOX, new=run.new, bodies=run.new, warnings=tuple(run.warnings))
        return SyncSummary(name, (result,), pushed)

    def fetch_body(self, message_id: int) -> None:
        """Nothing to do: POP3 messages are always stored whole."""

    def push_pending(self, progress: ProgressFn) -> int:
        """POP3 has no server flags or folders: every local change stays local. The
        pending operations are dropped with the reason; returns 0 (none reached a server)."""
        for op in self.store.pending_ops(self.account.name):
            what = "flag changes" if op.kind == "flags" else f"{op.kind} operations"
            self.store.drop_op(
                op.id,
                f"{what} are not supported over POP3; the change is kept in the local store only",
            )
        return 0

    def wait_for_changes(self, timeout: float, stop: threading.Event) -> bool:
        """POP3 cannot push: sleep until the poll interval since the last sync elapses
        (True) or `timeout` passes or `stop` is set (False). No connection is held while
        waiting: a POP3 session locks the mailbox on many servers."""
        self.close()
        due = self._last_sync + max(1.0, float(self.incoming.poll_interval))
        end = time.monotonic() + max(0.0, min(timeout, due - time.monotonic()))
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return time.monotonic() >= due
            if stop.wait(min(POLL_STEP, remaining)):
                return False

    # ---- internals

    def _secret(self) -> Secret:
        if self._password is not None:
            return self._password
        incoming = self.incoming
        if incoming.auth in ("xoauth2", "oauthbearer"):
            return get_oauth2_token(self.account.name, incoming.oauth2_token_command)
        return get_password(self.account.name, "incoming", incoming.password_command)

    def _take_client(self) -> Pop3Client:
        """The connection from `connect()` if it is fresh, else a new one: servers drop
        idle POP3 sessions (RFC 1939 allows after 10 minutes), and a stale one would only
        fail at the first command."""
        client, self._client = self._client, None
        if client is not None and time.monotonic() - self._opened_at < FRESH_FOR:
            return client
        if client is not None:
            client.close()
        return self._open()

    def _open(self) -> Pop3Client:
        client = Pop3Client.from_config(self.incoming)
        secret = self._secret()
        client.connect()
        try:
            client.login(self.incoming.username, secret, self.incoming.auth)
        except BaseException:
            client.abort()
            raise
        return client

    def _mark(self, step: str) -> None:
        if self._checkpoint is not None:
            self._checkpoint(step)

    def _keys(
        self, client: Pop3Client, sizes: Mapping[int, int], run: _Run
    ) -> tuple[dict[int, str], Counter[str] | None]:
        """Keys of the listed messages; in fingerprint mode also how often each base
        fingerprint occurred (None in UIDL mode)."""
        order = sorted(sizes)
        listing = client.uidls()
        if listing is not None:
            for entry in listing.bad:
                run.warn(f"Unreadable UIDL entry from the server: {entry}")
            missing = [n for n in order if n not in listing.entries]
            if missing:
                run.warn(
                    f"The server lists {len(missing)} message(s) without a unique id "
                    f"(first: number {missing[0]}); they are left on the server."
                )
            return unique_keys(order, listing.entries), None
        if not self._fingerprint_warned:
            self._fingerprint_warned = True
            run.warn(
                "The POP3 server does not support UIDL: new messages are recognised by their "
                "Message-ID, Date, From, Subject and first Received header instead."
            )
        base: dict[int, str] = {}
        if not self._top_unusable:
            for item in client.headers(order):
                if item.raw is not None:
                    base[item.number] = pop3.fingerprint(item.raw, sizes.get(item.number, -1))
            if client.broken:
                # TOP spoiled the stream: from now on keys come from the messages themselves.
                self._top_unusable = True
                raise _Reconnect
        return unique_keys(order, base), Counter(base.values())

    def _session(self, client: Pop3Client, folder_id: int, run: _Run, progress: ProgressFn) -> bool:
        """One POP3 session; True when it must be repeated on a new connection."""
        name = self.account.name
        sizes, bad = client.list_sizes()
        for entry in bad:
            run.warn(f"Unreadable LIST entry from the server: {entry}")
        try:
            keys, fingerprints = self._keys(client, sizes, run)
        except _Reconnect:
            client.abort()
            return True
        seen = dict(self.store.pop3_seen(name))
        now = self.clock()
        max_size = self.incoming.max_message_size
        todo = plan(
            sizes,
            keys,
            seen,
            self.policy,
            now,
            max_size,
            run.failed,
            unkeyed="skip" if fingerprints is None else "download",
        )
        for number in todo.too_large:
            key = keys.get(number, f"number {number}")
            run.failed[key] = "too large"
            run.warn(
                f"Message {number} ({sizes[number]:,} bytes) is larger than max_message_size "
                f"({max_size:,}); it is left on the server."
            )
        total = run.done + len(todo.download)
        progress(SyncProgress(name, INBOX, "download", run.done, total))

        to_delete = list(todo.delete)
        raw_keys: dict[int, str] = {}
        batch: _Batch = []
        batch_bytes = 0
        helper = PrepareHelper(parallel=len(todo.download) >= PARALLEL_INDEX_MIN)
        self.store.clean_tmp(folder_id)

        def store(items: _Batch, prepared: Prepared | None) -> None:
            stored = self.store.pop3_add(
                folder_id,
                [(k, m) for _, k, m in items],
                now,
                prepared=prepared,
                # Only messages deleted right after their download need each commit
                # durable first; older ones were committed in earlier syncs, days ago.
                durable=not self.policy.leave_on_server,
            )
            for (number, key, _msg), message_id in zip(items, stored, strict=True):
                if message_id is not None:
                    run.new += 1
                seen[key] = now
                if self.policy.due(now, now):
                    to_delete.append(number)
            self._mark("stored")

        ahead = OneAhead(
            helper,
            self.store.folder_dir(folder_id),
            store,
            lambda prepared: self.store.discard_prepared(folder_id, prepared),
        )

        def flush() -> None:
            nonlocal batch_bytes
            if batch:
                ahead.push(list(batch), [m.raw for _, _, m in batch])
                batch.clear()
                batch_bytes = 0

        try:
            for item in client.retrieve(todo.download, max_size):
                run.done += 1
                number = item.number
                if item.raw is None:
                    run.failed[keys.get(number, f"number {number}")] = item.error
                    run.warn(f"Message {number} could not be downloaded: {item.error}.")
                    continue
                self._mark("retrieved")
                known_key = keys.get(number)
                if known_key is None:
                    assert fingerprints is not None  # UIDL mode never downloads unkeyed messages
                    key = raw_keys[number] = self._raw_key(item.raw, fingerprints)
                else:
                    key = known_key
                if key in seen:
                    # Fingerprint mode, TOP refused: only now do we know it is an old one.
                    if self.policy.due(seen[key], now):
                        to_delete.append(number)
                    continue
                headers = pop3.header_block(item.raw)
                message = NewMessage(
                    uid=None,
                    flags=Flags(),
                    size=len(item.raw),
                    internaldate=pop3.arrival_time(headers),
                    raw=item.raw,
                    complete=True,
                )
                batch.append((number, key, message))
                batch_bytes += len(item.raw)
                if len(batch) >= BATCH_MESSAGES or batch_bytes >= BATCH_BYTES:
                    flush()
                if run.done % PROGRESS_EVERY == 0:
                    progress(SyncProgress(name, INBOX, "download", run.done, total))
            flush()
            ahead.finish()
        except BaseException:
            ahead.abandon()
            raise
        finally:
            helper.close()
        progress(SyncProgress(name, INBOX, "download", run.done, total))
        if client.broken:
            client.abort()
            return True
        if to_delete:
            refused = client.delete(sorted(set(to_delete)))
            for number, reason in refused.items():
                run.warn(f"The server refused to delete message {number}: {reason}")
            self._mark("deleted")
            gone = [keys.get(n) or raw_keys[n] for n in to_delete if n not in refused]
        else:
            gone = []
        try:
            client.quit()
        except ProtocolError as exc:
            run.warn(exc.message)
            return False
        self._mark("quit")
        if gone:
            self.store.pop3_forget(name, gone)
        return False

    @staticmethod
    def _raw_key(raw: bytes, counted: Counter[str]) -> str:
        """Fingerprint key of a message whose headers we only got with RETR."""
        base = pop3.fingerprint(pop3.header_block(raw), len(raw))
        counted[base] += 1
        return base if counted[base] == 1 else f"{base}#{counted[base]}"


class _Reconnect(Exception):
    """The stream broke while building keys: start the session again."""
