"""The outbox flow: a message is queued durably first, then sent over SMTP, then settled.

    queue (outbox_add: file fsync'ed, row committed)
      -> connect (one connection per account) -> MAIL/RCPT
      -> outbox_mark_attempt (state "sending", durable) -> DATA
      -> accepted: outbox_mark_sent, then the copy to Sent
      -> refused for now (4xx, network, TLS, login): back to queued with a retry time
      -> refused for good (5xx): "failed", kept for the user
      -> connection lost after the data went out: "uncertain", never resent on its own

A crash anywhere leaves the item queued (nothing sent) or "sending" (maybe sent); the next
run turns "sending" into "uncertain" (`outbox_recover`), which is resent only when the user
says so (`tuimail outbox flush --force` or `tuimail outbox retry ID`). So a message is never
delivered twice without the user choosing it, and never lost. (The Sent copy is filed after
the item leaves the outbox, so a crash between the two can lose that copy, never a delivery:
the other order could turn a crash into a second delivery.)

Only one process sends at a time: every sender holds an exclusive lock file in the store
(`OutboxLock`). That makes `outbox_recover` safe (no other process can be mid-send) and
keeps a `tuimail send` and a cron `tuimail outbox flush` from racing for the same item.

The raw-message helpers here work on bytes and never re-serialize a message, so what a
script pipes in (a git patch, a signed message) is sent byte for byte, except for the
headers tuimail must add or remove.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, NamedTuple

from tuimail.backends.smtp import (
    DeliveryUncertain,
    MessageNotSendable,
    RecipientStatus,
    SendResult,
    SMTPClient,
)
from tuimail.config import AccountConfig, Config, OutgoingConfig
from tuimail.errors import (
    ConfigError,
    ExitCode,
    MessageTooLarge,
    NetworkError,
    TuimailError,
    UsageError,
)
from tuimail.models import Flags, FolderInfo, FolderRole, Protocol
from tuimail.store import Store
from tuimail.store.types import OutboxItem

__all__ = [
    "LOCK_NAME",
    "FlushReport",
    "OutboxLock",
    "Outcome",
    "backoff",
    "blocking_client",
    "flush",
    "header_fields",
    "is_due",
    "next_retry",
    "prepend_fields",
    "save_sent",
    "sent_copy",
    "split_message",
    "strip_fields",
]

LOCK_NAME = "outbox.lock"
BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=1)
SENT_NAME = "Sent"

Status = Literal["sent", "queued", "failed", "uncertain", "skipped"]


# ----------------------------------------------------------------------------- schedule


def backoff(age: timedelta) -> timedelta:
    """How long to wait after a failed try of a message queued `age` ago.

    As long as it has already waited (at least a minute, at most an hour), so the waits
    double from try to try: 1, 1, 2, 4, 8, ... minutes. Counting by age rather than by
    tries needs no extra state, and counts tries that failed before reaching the server
    (which the outbox's attempt counter does not).
    """
    return min(max(age, BACKOFF_FIRST), BACKOFF_CAP)


def is_due(item: OutboxItem, now: datetime, *, ignore_schedule: bool = False) -> bool:
    """Whether a flush should try `item` now: queued, and its retry time has come."""
    if item.state != "queued":
        return False
    return ignore_schedule or item.next_attempt is None or item.next_attempt <= now


def next_retry(items: Sequence[OutboxItem]) -> datetime | None:
    """When the app should flush next: the earliest retry time among queued items (a queued
    item without one is due now); None when nothing waits to be retried."""
    times = [
        i.next_attempt or datetime.min.replace(tzinfo=UTC) for i in items if i.state == "queued"
    ]
    return min(times, default=None)


def _now() -> datetime:
    return datetime.now(UTC)


# ----------------------------------------------------------------------------- results


class Outcome(NamedTuple):
    """What happened to one outbox item in this run."""

    item_id: int
    account: str
    message_id: str
    status: Status
    error: str = ""  # why it was not sent (may quote the server: sanitize to print)
    exit_code: int = ExitCode.OK
    recipients: tuple[RecipientStatus, ...] = ()
    retry_at: datetime | None = None
    sent_saved: bool = False

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.item_id,
            "account": self.account,
            "message_id": self.message_id,
            "status": self.status,
            "error": self.error,
            "exit_code": int(self.exit_code),
            "retry_at": self.retry_at.isoformat() if self.retry_at else None,
            "recipients": [
                {"address": r.address, "code": r.code, "reply": r.message, "accepted": r.accepted}
                for r in self.recipients
            ],
            "saved_to_sent": self.sent_saved,
        }


class FlushReport:
    """What a flush did: one Outcome per item tried, items found interrupted, notes."""

    def __init__(
        self,
        outcomes: list[Outcome] | None = None,
        recovered: list[int] | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        self.outcomes = outcomes if outcomes is not None else []
        self.recovered = recovered if recovered is not None else []  # just became "uncertain"
        self.warnings = warnings if warnings is not None else []
        self.waiting: list[OutboxItem] = []  # queued, but their retry time has not come

    def exit_code(self) -> int:
        """The most important problem's exit code: uncertain > auth/TLS/... > queued."""
        codes = [o.exit_code for o in self.outcomes if o.exit_code != ExitCode.OK]
        if not codes:
            return ExitCode.OK
        for preferred in (ExitCode.UNCERTAIN, ExitCode.AUTH, ExitCode.TLS, ExitCode.CONFIG):
            if preferred in codes:
                return preferred
        non_queued = [c for c in codes if c != ExitCode.QUEUED]
        return non_queued[0] if non_queued else ExitCode.QUEUED


# ----------------------------------------------------------------------------- locking


class OutboxLock:
    """An exclusive lock on the outbox, held by whichever process is sending.

    flock is released by the kernel when the process dies, so a crash never leaves it stuck.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        self._fd = fd
        return True

    async def acquire(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds without blocking the event loop."""
        deadline = time.monotonic() + timeout
        delay = 0.01
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


# ----------------------------------------------------------------------------- raw messages

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:")


def split_message(raw: bytes) -> tuple[bytes, bytes]:
    """(header block with its last line ending, the rest after the blank line).

    A message that starts with a blank line has no headers; one with no blank line is all
    headers.
    """
    if raw.startswith((b"\r\n", b"\n")):
        return b"", raw[2:] if raw.startswith(b"\r\n") else raw[1:]
    match = _BLANK_LINE.search(raw)
    if match is None:
        return raw, b""
    newline = b"\r\n" if raw[match.start() : match.start() + 2] == b"\r\n" else b"\n"
    return raw[: match.start()] + newline, raw[match.end() :]


def _fields(header: bytes) -> list[tuple[bytes, bytes]]:
    """(name, whole raw field including continuation lines and line endings)."""
    out: list[tuple[bytes, bytes]] = []
    for line in header.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and out:
            name, text = out[-1]
            out[-1] = (name, text + line)
            continue
        match = _FIELD_NAME.match(line)
        out.append((match.group(1).lower() if match else b"", line))
    return out


def header_fields(raw: bytes, name: str) -> list[str]:
    """Unfolded values of every `name` field (bytes decoded as UTF-8, errors replaced)."""
    header, _ = split_message(raw)
    wanted = name.lower().encode("ascii")
    values = []
    for field_name, text in _fields(header):
        if field_name == wanted:
            value = text.split(b":", 1)[1]
            unfolded = re.sub(rb"\r?\n(?=[ \t])", b"", value).strip()
            values.append(unfolded.decode("utf-8", "replace"))
    return values


def strip_fields(raw: bytes, names: Iterable[str]) -> bytes:
    """`raw` without the named header fields (continuation lines included)."""
    wanted = {n.lower().encode("ascii") for n in names}
    header, body = split_message(raw)
    if not header:
        return raw
    kept = b"".join(text for name, text in _fields(header) if name not in wanted)
    newline = b"\r\n" if header.endswith(b"\r\n") else b"\n"
    return kept + newline + body


def prepend_fields(raw: bytes, lines: Sequence[str]) -> bytes:
    """`raw` with header fields added at the top (each a complete `Name: value` line)."""
    if not lines:
        return raw
    header, _ = split_message(raw)
    newline = "\r\n" if header.endswith(b"\r\n") or (not header and b"\r\n" in raw) else "\n"
    for line in lines:
        if "\r" in line or "\n" in line:
            raise ValueError("a header line must not contain a line break")
    added = "".join(line + newline for line in lines).encode("utf-8")
    if not header:
        return added + newline.encode() + raw
    return added + raw


def sent_copy(raw: bytes, recipients: Sequence[str]) -> bytes:
    """The copy for the Sent folder: the message as sent, plus a `Bcc:` field naming the
    envelope recipients that no To/Cc field shows, so you can see whom you Bcc'd."""
    from tuimail.mail.addresses import parse_address_header

    shown: set[str] = set()
    for name in ("to", "cc", "resent-to", "resent-cc"):
        for value in header_fields(raw, name):
            shown.update(a.addr.lower() for a in parse_address_header(value))
    hidden = [r for r in recipients if r.lower() not in shown]
    if not hidden or header_fields(raw, "bcc"):
        return raw
    return prepend_fields(raw, ["Bcc: " + ", ".join(hidden)])


# ----------------------------------------------------------------------------- Sent folder


def save_sent(store: Store, account: AccountConfig, raw: bytes, recipients: Sequence[str]) -> bool:
    """File a sent message in the account's Sent folder; False when the account says not to.

    IMAP accounts: into the Sent folder known from the server (SPECIAL-USE), with an APPEND
    queued for the IMAP engine to replay. POP3, Maildir and send-only accounts: a local
    Sent folder.
    """
    outgoing = account.outgoing
    if outgoing is None or not outgoing.save_sent:
        return False
    incoming = account.incoming
    remote = incoming is not None and incoming.protocol is Protocol.IMAP
    folder = store.folder_by_role(account.name, FolderRole.SENT)
    if folder is None:
        folder = store.ensure_folder(account.name, FolderInfo(name=SENT_NAME, role=FolderRole.SENT))
    store.append_local(folder.id, sent_copy(raw, recipients), Flags(seen=True), remote=remote)
    return True


# ----------------------------------------------------------------------------- flushing

ClientFactory = Callable[[AccountConfig, OutgoingConfig], SMTPClient]


def _default_client(account: AccountConfig, server: OutgoingConfig) -> SMTPClient:
    return SMTPClient(server, account=account.name)


def blocking_client(account: AccountConfig, server: OutgoingConfig) -> SMTPClient:
    """For the command line: a password command may block the (private) event loop, so the
    secret is fetched without a worker thread."""
    return SMTPClient(server, account=account.name, secret_in_thread=False)


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500]


async def flush(
    store: Store,
    config: Config,
    *,
    accounts: Sequence[str] | None = None,
    item_ids: Sequence[int] | None = None,
    force: bool = False,
    ignore_schedule: bool = False,
    release: Sequence[int] = (),
    lock_timeout: float = 60.0,
    client_factory: ClientFactory = _default_client,
    now: Callable[[], datetime] = _now,
) -> FlushReport:
    """Send what is due in the outbox: one connection per account, items in queue order.

    `item_ids` limits the run to those items (and tries them whatever their retry time);
    `force` also resends "uncertain" items (the user accepts a possible second copy);
    `ignore_schedule` tries queued items before their retry time; `release` puts items back
    in the queue first, whatever their state (`tuimail outbox retry`), under the lock so
    that an item another process is delivering is never released mid-delivery.
    """
    report = FlushReport()
    lock = OutboxLock(store.root / LOCK_NAME)
    if not await lock.acquire(lock_timeout):
        report.warnings.append(
            "Another tuimail is sending right now; the queued messages will go with it or "
            "with the next `tuimail outbox flush`."
        )
        for item in store.outbox_items():
            if item_ids is not None and item.id in item_ids:
                report.outcomes.append(_unchanged(item, "another tuimail process is sending"))
        return report
    try:
        items = store.outbox_items()
        if any(item.state == "sending" for item in items):
            # Left by a process that died mid-delivery (we hold the lock: nobody else is
            # sending). Checked first so that the usual run pays no durable write for it.
            report.recovered = store.outbox_recover()
            items = store.outbox_items()
        known = {item.id for item in items}
        for item_id in release:
            if item_id in known:
                store.outbox_release(item_id)
        if release:
            items = store.outbox_items()
        if force:
            for item in items:
                if item.state == "uncertain" and _selected(item, accounts, item_ids):
                    store.outbox_release(item.id)
            items = store.outbox_items()
        timestamp = now()
        wanted = item_ids is not None
        due = [
            i
            for i in items
            if _selected(i, accounts, item_ids)
            and is_due(i, timestamp, ignore_schedule=ignore_schedule or wanted)
        ]
        report.waiting = [
            i for i in items if i.state == "queued" and _selected(i, accounts, item_ids)
            and i not in due
        ]  # fmt: skip
        by_account: dict[str, list[OutboxItem]] = {}
        for item in due:
            by_account.setdefault(item.account, []).append(item)
        for name, batch in by_account.items():
            try:
                account = config.account(name)
            except ConfigError as exc:
                for item in batch:
                    report.outcomes.append(_unchanged(item, _short(exc), ExitCode.CONFIG))
                continue
            report.outcomes.extend(
                await _flush_account(store, account, batch, client_factory, now, report)
            )
    finally:
        lock.release()
    return report


def _selected(
    item: OutboxItem, accounts: Sequence[str] | None, item_ids: Sequence[int] | None
) -> bool:
    if accounts is not None and item.account not in accounts:
        return False
    return item_ids is None or item.id in item_ids


def _unchanged(item: OutboxItem, error: str, code: int = ExitCode.QUEUED) -> Outcome:
    return Outcome(item.id, item.account, item.message_id, "skipped", error, code)


class _Settler:
    """Settles delivered messages of one batch on a thread with its own store connection:
    `outbox_mark_sent`, then the Sent copy, in that order per message.

    Their fsyncs then overlap the next message's SMTP round trips instead of adding to
    them. Nothing about safety changes: until the thread has removed an item it is still
    "sending", which after a crash reads as "uncertain", exactly as before.
    """

    def __init__(self, root: Path, account: AccountConfig) -> None:
        self.account = account
        self.saved: dict[int, bool] = {}
        self.warnings: list[str] = []
        self._root = root
        self._jobs: queue.Queue[tuple[OutboxItem, bytes] | None] = queue.Queue()
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tuimail-settle", daemon=True)
        self._thread.start()

    def usable(self) -> bool:
        self._ready.wait()
        return self._open_error is None

    def submit(self, item: OutboxItem, raw: bytes) -> None:
        self._jobs.put((item, raw))

    async def drain(self) -> None:
        """Wait (without blocking the event loop) until every submitted item is settled."""
        await asyncio.to_thread(self._jobs.join)

    async def close(self) -> None:
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        try:
            store = Store.open(self._root)
        except BaseException as exc:  # reported through usable(); the caller settles inline
            self._open_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while (job := self._jobs.get()) is not None:
                item, raw = job
                try:
                    self.saved[item.id] = _file_sent(store, self.account, item, raw, self.warnings)
                finally:
                    self._jobs.task_done()
            self._jobs.task_done()
        finally:
            store.close()


def _file_sent(
    store: Store, account: AccountConfig, item: OutboxItem, raw: bytes, warnings: list[str]
) -> bool:
    """Remove a delivered item from the outbox, then file its Sent copy; True if filed."""
    try:
        store.outbox_mark_sent(item.id)
    except Exception as exc:
        warnings.append(
            f"Message {item.message_id} was sent, but the outbox could not be updated ({exc}); "
            "it will be listed as uncertain."
        )
        return False
    try:
        return save_sent(store, account, raw, item.recipients)
    except Exception as exc:  # delivered is what matters: a missing copy is only a warning
        warnings.append(f"Message {item.message_id} was sent, but not saved to Sent: {exc}")
        return False


async def _flush_account(
    store: Store,
    account: AccountConfig,
    batch: list[OutboxItem],
    client_factory: ClientFactory,
    now: Callable[[], datetime],
    report: FlushReport,
) -> list[Outcome]:
    server = account.outgoing
    if server is None:
        error = f"Account {account.name!r} has no [outgoing] server configured."
        return [_unchanged(item, error, ExitCode.CONFIG) for item in batch]
    # One message (`tuimail send`) is settled inline: a thread would only add its start-up.
    settler = _Settler(store.root, account) if len(batch) > 1 else None
    if settler is not None and not settler.usable():
        settler = None
    outcomes: list[Outcome] = []
    client = client_factory(account, server)
    pending = list(batch)
    try:
        while pending:
            if not client.connected:
                try:
                    await client.connect()
                except TuimailError as exc:
                    # Nothing was sent: every remaining item waits for its next try.
                    for item in pending:
                        outcomes.append(_retry(store, item, _short(exc), _queued_code(exc), now))
                    break
            item = pending.pop(0)
            outcome = await _send_one(store, account, client, item, now, report, settler)
            outcomes.append(outcome)
            if outcome.status == "uncertain":
                # The connection is gone; the rest waits for the next run rather than
                # reconnecting to a server that just failed mid-message.
                for rest in pending:
                    outcomes.append(_unchanged(rest, "not tried after a failed delivery"))
                break
    finally:
        await client.close()
        if settler is not None:
            await settler.close()
    if settler is not None:
        report.warnings.extend(settler.warnings)
        outcomes = [
            o._replace(sent_saved=settler.saved.get(o.item_id, False)) if o.status == "sent" else o
            for o in outcomes
        ]
    return outcomes


async def _send_one(
    store: Store,
    account: AccountConfig,
    client: SMTPClient,
    item: OutboxItem,
    now: Callable[[], datetime],
    report: FlushReport,
    settler: _Settler | None,
) -> Outcome:
    try:
        raw = store.outbox_raw(item.id)
    except TuimailError as exc:
        return _fail(store, item, _short(exc), ExitCode.FAILURE)

    def claim() -> None:
        store.outbox_mark_attempt(item.id)  # durable: from here a crash means "uncertain"

    try:
        result = await client.send(item.sender, item.recipients, raw, before_data=claim)
    except DeliveryUncertain as exc:
        if settler is not None:
            await settler.drain()  # so that only this item is still "sending"
        store.outbox_recover()  # under the lock, ours is the only item in "sending"
        return Outcome(
            item.id, item.account, item.message_id, "uncertain", _short(exc), ExitCode.UNCERTAIN
        )
    except UsageError as exc:
        # outbox_mark_attempt refused: the item is no longer queued (released or dropped
        # by the user meanwhile). Leave it as it is.
        return _unchanged(item, _short(exc), ExitCode.FAILURE)
    except (MessageTooLarge, MessageNotSendable, ValueError) as exc:
        # The message itself cannot go to this server: retrying unchanged is pointless.
        return _fail(store, item, _short(exc), ExitCode.FAILURE)
    except TuimailError as exc:
        return _retry(store, item, _short(exc), _queued_code(exc), now)
    if result.delivered:
        saved = False
        if settler is not None:
            settler.submit(item, raw)
        else:
            saved = _file_sent(store, account, item, raw, report.warnings)
        return Outcome(
            item.id,
            item.account,
            item.message_id,
            "sent",
            recipients=result.recipients,
            sent_saved=saved,
        )
    return _refused(store, item, result, now)


def _queued_code(exc: TuimailError) -> int:
    # The message waits in the outbox either way; a network problem is sendmail's
    # "try again later" (75), while login and TLS problems need the user's attention.
    return ExitCode.QUEUED if isinstance(exc, NetworkError) else exc.exit_code


def _refused(
    store: Store, item: OutboxItem, result: SendResult, now: Callable[[], datetime]
) -> Outcome:
    error = result.describe()
    if result.transient:
        outcome = _retry(store, item, error, ExitCode.QUEUED, now)
    else:
        outcome = _fail(store, item, error, ExitCode.FAILURE)
    return outcome._replace(recipients=result.recipients)


def _retry(
    store: Store, item: OutboxItem, error: str, code: int, now: Callable[[], datetime]
) -> Outcome:
    """Back to the queue with the next retry time (the message was not delivered)."""
    moment = now()
    retry_at = moment + backoff(moment - item.created)
    store.outbox_mark_failed(item.id, error, retry_at)
    return Outcome(item.id, item.account, item.message_id, "queued", error, code, retry_at=retry_at)


def _fail(store: Store, item: OutboxItem, error: str, code: int) -> Outcome:
    """Failed for good: kept in the outbox for the user to fix, retry or drop."""
    store.outbox_mark_failed(item.id, error, None)
    return Outcome(item.id, item.account, item.message_id, "failed", error, code)


def queued_note(items: Sequence[OutboxItem]) -> str:
    """A one-line summary of what waits in the outbox, for `tuimail send` to mention."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item.state] = counts.get(item.state, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
