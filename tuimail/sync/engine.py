"""The IMAP sync engine: `ImapSession` joins `backends.imap` and the store, following the
decisions of `sync.plan` (read its docstring for the order of a folder sync and the flag
conflict rule).

Durability: everything fetched is in the store (Maildir files fsync'ed, index committed)
before the folder's state moves forward. New messages are stored in batches as they stream
in; after each batch the folder's UIDNEXT moves to just past the batch (only while the
server returns UIDs in ascending order, so nothing below it can still be missing) and its
HIGHESTMODSEQ stays where it was. A dropped connection loses only the batch in flight,
which the next run fetches again (the store is idempotent on UIDs, so nothing is
duplicated either). HIGHESTMODSEQ is recorded only once the whole folder is done.

Pending local operations are replayed in queue order; consecutive operations of the same
kind on the same folder (e.g. "mark these 500 seen") go to the server as one command.
A transient failure keeps the operation for the next run (`fail_op`), a permanent one drops
it with a reason (`drop_op`), a network error stops the replay (the worker reconnects).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

from tuimail.backends import imap_parse as ip
from tuimail.backends.imap import (
    BODY_ITEMS,
    FLAG_ITEMS,
    HEADER_ITEMS,
    CommandFailed,
    FolderStatus,
    ImapConnection,
    SelectResult,
)
from tuimail.config import AccountConfig, IncomingConfig
from tuimail.errors import (
    ConfigError,
    MessageTooLarge,
    NetworkError,
    NotFoundError,
    ProtocolError,
    TuimailError,
)
from tuimail.mail.sanitize import sanitize_line
from tuimail.models import Flags, FolderInfo, FolderRole, FolderState, Protocol
from tuimail.secrets import Secret, get_oauth2_token, get_password
from tuimail.store import NewMessage, PendingOp, Store
from tuimail.store.pop3state import Prepared
from tuimail.store.types import FolderRow
from tuimail.sync import plan
from tuimail.sync.helper import PARALLEL_MIN, OneAhead, PrepareHelper
from tuimail.sync.plan import FlagDelta, Mode, Selected
from tuimail.sync.session import FolderResult, ProgressFn, SyncProgress, SyncSummary

INBOX = "INBOX"
# New messages are committed in batches: one transaction and one directory fsync each.
BATCH_MESSAGES = 1000
BATCH_BYTES = 16 * 1024 * 1024
# Bodies are fetched this many per UID FETCH, two commands in flight.
BODY_FETCH_COUNT = 250
# A pending op that keeps failing with a NO is given up after this many attempts.
MAX_ATTEMPTS = 5
# NO codes that say "try again later" (RFC 5530).
_TRANSIENT_CODES = frozenset(
    (b"INUSE", b"OVERQUOTA", b"LIMIT", b"UNAVAILABLE", b"SERVERBUG", b"CONTACTADMIN", b"")
)

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class _Tally:
    """What happened to one folder, accumulated while syncing it."""

    __slots__ = ("bodies", "changed", "new", "removed", "warnings")

    def __init__(self) -> None:
        self.new = 0
        self.changed = 0
        self.removed = 0
        self.bodies = 0
        self.warnings: list[str] = []

    def result(self, folder: str) -> FolderResult:
        return FolderResult(
            folder, self.new, self.changed, self.removed, self.bodies, tuple(self.warnings)
        )


class ImapSession:
    """The `MailSession` of an IMAP account (see `tuimail.sync.session`)."""

    def __init__(self, account: AccountConfig, store: Store, *, clock: Clock = _now) -> None:
        incoming = account.incoming
        if incoming is None or incoming.protocol is not Protocol.IMAP:
            raise ConfigError(f"Account {account.name!r} has no IMAP [incoming] server.")
        self.account = account
        self.config: IncomingConfig = incoming
        self.store = store
        self.clock = clock
        self.conn: ImapConnection | None = None
        self._held_alerts: list[str] = []  # from connections lost before a summary

    # ------------------------------------------------------------ connection

    @property
    def name(self) -> str:
        return self.account.name

    def connect(self) -> None:
        if self.conn is not None and self.conn.connected:
            return
        cfg = self.config
        username = cfg.username or self.account.address
        token: Secret | None = None
        password: Secret | None = None
        if cfg.oauth2_token_command:
            token = get_oauth2_token(self.name, cfg.oauth2_token_command)
        elif cfg.auth in ("xoauth2", "oauthbearer"):
            raise ConfigError(
                f"auth = {cfg.auth!r} needs oauth2_token_command in "
                f"[accounts.{self.name}.incoming]."
            )
        conn = ImapConnection(cfg, max_literal=cfg.max_message_size)
        conn.connect()
        try:
            if not conn.preauthenticated and token is None:
                # Asked only now: a server we cannot reach should not trigger a keyring prompt.
                password = get_password(self.name, "incoming", cfg.password_command)
            conn.login(username, password=password, token=token)
            # QRESYNC must be enabled before a SELECT may use it (it implies CONDSTORE).
            conn.enable("QRESYNC")
        except BaseException:
            conn.close()
            raise
        self.conn = conn

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.logout()

    def _connection(self) -> ImapConnection:
        if self.conn is None or not self.conn.connected:
            if self.conn is not None:
                self._held_alerts += self.conn.alerts  # still owed to the user
            self.conn = None
            self.connect()
        assert self.conn is not None
        return self.conn

    # ------------------------------------------------------------ sync

    def sync(self, folders: Sequence[str] | None, progress: ProgressFn) -> SyncSummary:
        conn = self._connection()
        progress(SyncProgress(self.name, "", "folders", 0, None))
        # The folder list first, so pending changes to a folder renamed on the server are
        # replayed under its new name (and not given up as "no such folder").
        listing = conn.list_folders(self.config.subscribed_only)
        infos = listing.folders
        warnings = list(listing.warnings)
        if not any(f.role is FolderRole.INBOX for f in infos):
            raise ProtocolError(
                "The server's folder list has no INBOX; the local folders were left as they are."
            )
        if self.config.subscribed_only:
            infos = [f for f in infos if f.subscribed]
        renames = self._renames(conn, infos, listing.status)
        changes = self.store.sync_folders(self.name, infos, renames)
        for old, kept_in, count in changes.rescued:
            warnings.append(
                f"{sanitize_line(old)}: the folder was deleted on the server; {count} "
                f"message(s) not uploaded yet were kept in {sanitize_line(kept_in)} and will "
                "be uploaded there."
            )
        touched = {
            name
            for op in self.store.pending_ops(self.name)
            for name in (op.folder, op.dest_folder)
            if name is not None
        }
        pushed, push_warnings = self._push(progress, folders_checked=True)
        warnings[:0] = push_warnings
        # What the push changed is not in LIST-STATUS's answer: those folders are selected.
        statuses = {k: v for k, v in listing.status.items() if k not in touched}
        selectable = [f for f in infos if f.selectable]
        if folders is None:
            targets = _sync_order(selectable)
        else:
            known = {f.name for f in selectable}
            missing = [f for f in folders if f not in known]
            if missing:
                raise NotFoundError(
                    f"No folder {missing[0]!r} on the server for account {self.name!r}."
                )
            targets = list(folders)
        pending = self.store.pending_ops(self.name)
        results = []
        for i, name in enumerate(targets):
            progress(SyncProgress(self.name, name, "folders", i, len(targets)))
            status = statuses.get(name)
            results.append(self._sync_folder_safely(name, pending, progress, status))
        warnings += self._alerts()
        return SyncSummary(self.name, tuple(results), pushed, tuple(warnings))

    def _renames(
        self,
        conn: ImapConnection,
        infos: Sequence[FolderInfo],
        statuses: Mapping[str, FolderStatus],
    ) -> dict[str, str]:
        """Local folders renamed on the server (old -> new name, `plan.match_renames`).
        STATUS is asked only for new names LIST-STATUS did not cover, and only when a
        folder we synced has vanished."""
        listed = {f.name for f in infos}
        local = self.store.folders(self.name)
        vanished = {f.name: f.state for f in local if f.name not in listed and f.state.uidvalidity}
        if not vanished:
            return {}
        have = {f.name for f in local}
        appeared: dict[str, Selected] = {}
        for info in infos:
            if info.name in have or not info.selectable:
                continue
            status = statuses.get(info.name)
            if status is None:
                try:
                    status = conn.status(info.name)
                except NotFoundError:
                    continue
            appeared[info.name] = Selected(
                status.uidvalidity, status.uidnext, status.highestmodseq, status.messages
            )
        return plan.match_renames(vanished, appeared)

    def _alerts(self) -> list[str]:
        """The server's [ALERT]s since the last sync (RFC 3501 7.1: they MUST reach the
        user), once each, terminal-safe; alerts that came during IDLE or a body fetch wait
        for the next sync summary."""
        alerts, self._held_alerts = self._held_alerts, []
        if self.conn is not None:
            alerts, self.conn.alerts = alerts + self.conn.alerts, []
        return [f"Server alert: {sanitize_line(a)}" for a in dict.fromkeys(alerts)]

    def _sync_folder_safely(
        self,
        name: str,
        pending: Sequence[PendingOp],
        progress: ProgressFn,
        status: FolderStatus | None,
    ) -> FolderResult:
        """One folder; a protocol error there is reported and the others still sync."""
        try:
            return self._sync_folder(name, pending, progress, status)
        except NetworkError:
            raise
        except (ProtocolError, NotFoundError) as exc:
            if self.conn is not None and not self.conn.connected:
                self.conn = None
            return FolderResult(name, warnings=(exc.message,))

    def _sync_folder(
        self,
        name: str,
        pending_ops: Sequence[PendingOp],
        progress: ProgressFn,
        status: FolderStatus | None = None,
    ) -> FolderResult:
        conn = self._connection()
        row = self.store.folder(self.name, name)
        if row is None:
            raise NotFoundError(f"Folder {name!r} is not in the local store.")
        tally = _Tally()
        state = row.state
        folder_pending = [op for op in pending_ops if op.folder == name]
        if (
            status is not None
            and not folder_pending
            and plan.status_unchanged(
                state,
                Selected(status.uidvalidity, status.uidnext, status.highestmodseq),
                qresync="QRESYNC" in conn.enabled,
            )
        ):
            # Nothing changed on the server: no SELECT (it costs the server ~30 ms on a
            # 50k folder); only bodies the policy still wants, e.g. after an interruption.
            if self.config.bodies != "none" and self._bodies_wanted(row):
                conn.select(name, condstore=True)
                self._fetch_bodies(conn, row, tally, progress)
            return tally.result(name)
        mode = plan.choose_mode(
            state, qresync="QRESYNC" in conn.enabled, condstore=conn.has("CONDSTORE")
        )
        top = plan.known_top(state)
        qresync = None
        if mode is Mode.QRESYNC:
            qresync = (state.uidvalidity, state.highestmodseq, b"1:%d" % top if top else b"")
        selected = conn.select(name, qresync=qresync, condstore=True)
        sel = Selected(
            selected.uidvalidity, selected.uidnext, selected.highestmodseq, selected.exists
        )
        reset = plan.needs_reset(state, sel)
        mode = plan.effective_mode(mode, state, sel)
        if reset:
            dropped = self.store.reset_folder(row.id, sel.uidvalidity)
            tally.warnings.append(
                f"{name}: the server renumbered this folder (UIDVALIDITY changed); its local "
                "copy was rebuilt."
                + (
                    f" {dropped} pending local change(s) to old messages were dropped."
                    if dropped
                    else ""
                )
            )
            state = FolderState(sel.uidvalidity, 0, 0)
            top = 0

        if top:
            self._sync_flags(conn, row, state, sel, selected, mode, folder_pending, tally, progress)

        start = plan.new_range(state, sel, reset)
        max_seen = 0
        if start:
            max_seen = self._fetch_new(conn, row, state, sel, reset, start, tally, progress)
        self.store.set_folder_state(row.id, plan.final_state(sel, max_seen, state.uidnext))
        if self.config.bodies != "none":
            self._fetch_bodies(conn, row, tally, progress)
        return tally.result(name)

    def _sync_flags(
        self,
        conn: ImapConnection,
        row: FolderRow,
        state: FolderState,
        sel: Selected,
        selected: SelectResult,
        mode: Mode,
        pending_ops: Sequence[PendingOp],
        tally: _Tally,
        progress: ProgressFn,
    ) -> None:
        top = plan.known_top(state)
        server_flags: dict[int, Flags] = {}
        vanished: list[tuple[int, int]] = []
        present: set[int] | None = None
        local: dict[int, Flags] | None = None
        if mode is Mode.QRESYNC:
            server_flags = selected.changed
            vanished = selected.vanished
        elif mode is Mode.CONDSTORE:
            if not plan.flags_unchanged(state, sel, mode):
                progress(SyncProgress(self.name, row.name, "flags", 0, None))
                for f in conn.fetch([b"1:%d" % top], FLAG_ITEMS, changedsince=state.highestmodseq):
                    if f.uid is not None and f.flags is not None and f.uid <= top:
                        server_flags[f.uid] = f.flags
            local = self.store.uid_flags(row.id)
            known = sum(1 for uid in local if uid <= top)
            new_on_server = 0 if sel.uidnext == state.uidnext else None
            if plan.need_uid_list(mode, state, sel, known, new_on_server, bool(pending_ops)):
                present = set()
                for a, b in conn.search(b"UID 1:%d" % top):
                    present.update(range(a, min(b, top) + 1))
        else:
            progress(SyncProgress(self.name, row.name, "flags", 0, None))
            present = set()
            for f in conn.fetch([b"1:%d" % top], FLAG_ITEMS):
                if f.uid is not None and f.uid <= top:
                    present.add(f.uid)
                    if f.flags is not None:
                        server_flags[f.uid] = f.flags
        if not server_flags and not vanished and present is None:
            return  # the common no-change case: not even the local flags are read
        deltas = plan.combine_deltas(
            (op.uid, FlagDelta.of(op.add, op.remove))
            for op in pending_ops
            if op.kind in ("flags", "expunge") and op.uid is not None
        )
        changes = None
        if local is None and present is None:
            # QRESYNC named what changed: no need to read 50k local rows for 500 changes.
            changes = plan.plan_reported(state, deltas, server_flags, vanished)
        if changes is None:
            if local is None:
                local = self.store.uid_flags(row.id)
            changes = plan.plan_changes(
                state, local, deltas, server_flags, vanished=vanished, present=present
            )
        if changes.flags:
            tally.changed += self.store.apply_server_flags(row.id, changes.flags)
        if changes.remove:
            tally.removed += self.store.remove_uids(row.id, changes.remove)
        if changes.dropped_pending and tally.removed:
            tally.warnings.append(
                f"{row.name}: {len(changes.dropped_pending)} message(s) with local flag changes "
                "not yet sent were deleted on the server; those changes were dropped."
            )

    def _fetch_new(
        self,
        conn: ImapConnection,
        row: FolderRow,
        state: FolderState,
        sel: Selected,
        reset: bool,
        start: int,
        tally: _Tally,
        progress: ProgressFn,
    ) -> int:
        """Stream the new messages (UIDs from `start`) into the store in batches; returns
        the highest UID the server reported."""
        with_body = self.config.bodies == "all"
        items = BODY_ITEMS if with_body else HEADER_ITEMS
        expected = max(sel.uidnext - start, 0) or None
        total_before = self.store.folder_by_id(row.id).total
        batch: list[NewMessage] = []
        batch_bytes = 0
        returned: set[int] = set()
        too_large: list[int] = []
        ascending = True
        last_uid = 0  # of the messages fetched, to check they come in UID order
        max_seen = 0
        stored_through = 0
        sets = [b"%d:*" % start]
        if self.store.max_uid(row.id) >= start:
            # Rows that got their UID from our own MOVE/COPY/APPEND (COPYUID, APPENDUID)
            # are already here, usually with their body: ask for the flags of everything
            # new, then fetch only what we lack.
            sets, max_seen = self._known_new(conn, row, sel, start, returned, tally)
            expected = None

        # A helper process parses and writes files one batch ahead of the store; each
        # waiting batch carries the UID its storing lets the folder state move to (0: none).
        self.store.clean_tmp(row.id)
        helper = PrepareHelper(parallel=(expected or 0) >= PARALLEL_MIN)

        def store(batch: tuple[list[NewMessage], int], prepared: Prepared | None) -> None:
            nonlocal stored_through
            items, through = batch
            self.store.add_messages(row.id, items, prepared=prepared)
            if with_body:
                tally.bodies += sum(1 for m in items if m.complete)
            if through:
                stored_through = through
                self.store.set_folder_state(
                    row.id, plan.progress_state(state, sel, reset, stored_through)
                )
            progress(SyncProgress(self.name, row.name, "headers", len(returned), expected))

        ahead = OneAhead(
            helper,
            self.store.folder_dir(row.id),
            store,
            lambda prepared: self.store.discard_prepared(row.id, prepared),
        )

        def flush() -> None:
            nonlocal batch, batch_bytes
            if batch:
                raws, complete = [m.raw for m in batch], [m.complete for m in batch]
                ahead.push((batch, last_uid if ascending else 0), raws, complete)
                batch, batch_bytes = [], 0

        progress(SyncProgress(self.name, row.name, "headers", 0, expected))
        try:
            for f in conn.fetch(sets, items, window=1):
                uid = f.uid
                if uid is None or uid < start or uid in returned:
                    continue  # `n:*` also returns the last message when nothing is new
                returned.add(uid)
                if uid < last_uid:
                    ascending = False
                last_uid = max(last_uid, uid)
                raw = f.body if with_body else f.header
                if isinstance(raw, ip.TooLarge):
                    too_large.append(uid)
                    continue
                batch.append(
                    NewMessage(
                        uid=uid,
                        flags=f.flags or Flags(),
                        size=f.size or 0,
                        internaldate=f.internaldate,
                        raw=raw or b"",
                        complete=with_body and raw is not None,
                    )
                )
                batch_bytes += len(raw or b"")
                if len(batch) >= BATCH_MESSAGES or batch_bytes >= BATCH_BYTES:
                    flush()
            flush()
            ahead.finish()
        except BaseException:
            ahead.abandon()
            raise
        finally:
            helper.close()
        if too_large:
            # Listed with their headers only; `fetch_body` refuses them with a clear error.
            self._store_headers(conn, row, too_large)
            tally.warnings.append(
                f"{row.name}: {len(too_large)} message(s) larger than max_message_size "
                f"({self.config.max_message_size} bytes) were listed without their body."
            )
        tally.new += max(self.store.folder_by_id(row.id).total - total_before, 0)
        return max(max_seen, last_uid)

    def _known_new(
        self,
        conn: ImapConnection,
        row: FolderRow,
        sel: Selected,
        start: int,
        returned: set[int],
        tally: _Tally,
    ) -> tuple[list[bytes], int]:
        """New UIDs of which we already hold some: update those, drop the ones the server
        no longer has, and return the UID sets still to fetch (and the highest UID)."""
        local = {u: f for u, f in self.store.uid_flags(row.id).items() if u >= start}
        server: dict[int, Flags] = {}
        for f in conn.fetch([b"%d:*" % start], FLAG_ITEMS):
            if f.uid is not None and f.uid >= start:
                server[f.uid] = f.flags or Flags()
        changed = {u: fl for u, fl in server.items() if u in local and local[u] != fl}
        if changed:
            self.store.apply_server_flags(row.id, changed)
        stale = plan.stale_placeholders(local, start, server.keys(), sel)
        if stale:
            tally.removed += self.store.remove_uids(row.id, stale)
        returned.update(u for u in server if u in local)
        missing = sorted(u for u in server if u not in local)
        return _uid_sets(missing, 5000), max(server, default=0)

    def _store_headers(self, conn: ImapConnection, row: FolderRow, uids: Sequence[int]) -> None:
        batch = []
        for f in conn.fetch(_uid_sets(uids, 500), HEADER_ITEMS):
            if f.uid is None or isinstance(f.header, ip.TooLarge):
                continue
            batch.append(
                NewMessage(f.uid, f.flags or Flags(), f.size or 0, f.internaldate, f.header or b"")
            )
        self.store.add_messages(row.id, batch)

    def _bodies_wanted(self, row: FolderRow) -> list[tuple[int, int]]:
        since = plan.bodies_since(self.config.bodies, self.config.recent_days, self.clock())
        return self.store.messages_without_body(row.id, since)

    def _fetch_bodies(
        self, conn: ImapConnection, row: FolderRow, tally: _Tally, progress: ProgressFn
    ) -> None:
        todo = self._bodies_wanted(row)
        if not todo:
            return
        limit = self.config.max_message_size
        sizes = {s.id: s.size for s in self.store.summaries([mid for mid, _ in todo])}
        uids = [uid for mid, uid in todo if sizes.get(mid, 0) <= limit]
        if not uids:
            return
        total = len(uids)
        progress(SyncProgress(self.name, row.name, "bodies", 0, total))
        done = 0
        batch: list[NewMessage] = []
        batch_bytes = 0
        # Newest first (the list is ordered so); each command's UIDs ascending.
        sets = [
            ip.format_uid_set(uids[i : i + BODY_FETCH_COUNT])
            for i in range(0, total, BODY_FETCH_COUNT)
        ]
        wanted = set(uids)
        for f in conn.fetch(sets, BODY_ITEMS):
            if f.uid not in wanted or not isinstance(f.body, bytes):
                continue
            wanted.discard(f.uid)
            batch.append(
                NewMessage(f.uid, f.flags or Flags(), f.size or 0, f.internaldate, f.body, True)
            )
            batch_bytes += len(f.body)
            if len(batch) >= BATCH_MESSAGES or batch_bytes >= BATCH_BYTES:
                self.store.add_messages(row.id, batch)
                done += len(batch)
                tally.bodies += len(batch)
                batch, batch_bytes = [], 0
                progress(SyncProgress(self.name, row.name, "bodies", done, total))
        if batch:
            self.store.add_messages(row.id, batch)
            done += len(batch)
            tally.bodies += len(batch)
            progress(SyncProgress(self.name, row.name, "bodies", done, total))

    # ------------------------------------------------------------ on demand

    def fetch_body(self, message_id: int) -> None:
        summary = self.store.message(message_id)
        if summary is None:
            raise NotFoundError(f"No message with id {message_id}.")
        if summary.uid is None:
            raise NotFoundError(
                "This message is not on the server yet (a pending local change); its body "
                "is only local."
            )
        if summary.size > self.config.max_message_size:
            raise MessageTooLarge(
                f"The message is {summary.size} bytes, more than max_message_size "
                f"({self.config.max_message_size}). Raise max_message_size to read it."
            )
        conn = self._connection()
        if conn.selected != summary.folder:
            conn.select(summary.folder, condstore=True)
        body: bytes | None = None
        for f in conn.fetch([b"%d" % summary.uid], BODY_ITEMS):
            if f.uid == summary.uid:
                if isinstance(f.body, ip.TooLarge):
                    raise MessageTooLarge(
                        f"The message is larger than max_message_size "
                        f"({self.config.max_message_size} bytes)."
                    )
                body = f.body
        if body is None:
            raise NotFoundError("The message is no longer on the server.")
        self.store.set_body(message_id, body)

    def wait_for_changes(self, timeout: float, stop: threading.Event) -> bool:
        conn = self._connection()
        if conn.selected != INBOX:
            # SELECT, not EXAMINE: the worker may replay a flag change on INBOX next.
            conn.select(INBOX, condstore=True)
        return conn.idle(timeout, stop)

    # ------------------------------------------------------------ pushing local changes

    def push_pending(self, progress: ProgressFn) -> int:
        done, _warnings = self._push(progress, folders_checked=False)
        return done

    def _push(self, progress: ProgressFn, *, folders_checked: bool) -> tuple[int, list[str]]:
        """Replay the pending ops. `folders_checked`: the folder list was just brought up to
        date (renames applied); without that, a missing folder may be one renamed on the
        server, so the op is kept for the sync that will know (`fail_op`)."""
        ops = self.store.pending_ops(self.name)
        if not ops:
            return 0, []
        conn = self._connection()
        warnings: list[str] = []
        completed = 0
        total = len(ops)
        blocked: set[int] = set()  # local messages whose earlier op did not go through
        handled: set[int] = set()  # op ids this run has replayed, settled or held back
        progress(SyncProgress(self.name, "", "push", 0, total))
        groups = _groups(ops)
        while groups:
            group = groups.pop(0)
            handled.update(op.id for op in group)
            ready = [
                op
                for op in group
                if op.message_id not in blocked and (op.uid is not None or op.kind == "append")
            ]
            for op in group:
                # One waiting for an earlier op to give it a UID (or that failed) holds back
                # every later op of its message.
                if op not in ready and op.message_id is not None:
                    blocked.add(op.message_id)
            if not ready:
                continue
            try:
                completed += self._replay(conn, ready, warnings)
            except NetworkError:
                raise
            except TuimailError as exc:
                self._settle_failure(ready, exc, warnings, blocked, folders_checked)
                if not conn.connected:
                    conn = self._connection()
            progress(SyncProgress(self.name, "", "push", completed, total))
            if _feeds_later_ops(ready, groups):
                # complete_op gave the UID this op got (COPYUID/APPENDUID) to the later ops
                # of its message: read them again, so a flag change or a second move made
                # after a move reaches the server in this same run.
                fresh = [op for op in self.store.pending_ops(self.name) if op.id not in handled]
                groups = _groups(fresh)
        return completed, warnings

    def _settle_failure(
        self,
        ops: Sequence[PendingOp],
        exc: TuimailError,
        warnings: list[str],
        blocked: set[int],
        folders_checked: bool,
    ) -> None:
        permanent = (isinstance(exc, NotFoundError) and folders_checked) or (
            isinstance(exc, CommandFailed)
            and (exc.status == b"BAD" or exc.code not in _TRANSIENT_CODES)
        )
        for op in ops:
            if op.message_id is not None:
                blocked.add(op.message_id)
            if permanent or op.attempts + 1 >= MAX_ATTEMPTS:
                self.store.drop_op(op.id, exc.message)
                warnings.append(f"A local change ({op.kind} in {op.folder}) was given up: {exc}")
            else:
                self.store.fail_op(op.id, exc.message)

    def _select_for_change(self, conn: ImapConnection, folder: str) -> None:
        if conn.selected != folder or conn.readonly:
            conn.select(folder, condstore=True)

    def _replay(self, conn: ImapConnection, ops: Sequence[PendingOp], warnings: list[str]) -> int:
        kind = ops[0].kind
        folder = ops[0].folder
        if kind == "append":
            return sum(self._replay_append(conn, op, warnings) for op in ops)
        adopted: dict[int, int] = {}
        if kind in ("move", "copy") and ops[0].dest_folder is not None:
            # Before the source is selected: this may have to open the destination.
            adopted = self._already_there(conn, ops[0].dest_folder, ops)
        self._select_for_change(conn, folder)
        uids = [op.uid for op in ops if op.uid is not None]
        if kind == "flags":
            self._replay_flags(conn, ops[0], uids)
            for op in ops:
                self.store.complete_op(op.id)
            return len(ops)
        if kind == "expunge":
            conn.store_flags(uids, [b"\\Deleted"], [])
            if conn.has("UIDPLUS"):
                conn.expunge(uids)
            for op in ops:
                self.store.complete_op(op.id)
            return len(ops)
        dest = ops[0].dest_folder
        if dest is None:
            raise NotFoundError("The destination folder no longer exists.")
        # Which of them still exist: a message deleted on the server meanwhile cannot be
        # moved, and its local copy (already in the destination) must go.
        present = self._present(conn, uids)
        # Already in dest (a reply lost after the server acted): not sent again.
        done_before = {op.uid for op in ops if op.id in adopted}
        live = [u for u in uids if u in present and u not in done_before]
        mapping: dict[int, int] = {}
        move = kind == "move"
        remove = [u for u in uids if u in present and u in done_before] if move else []
        if live:
            if move and conn.has("MOVE"):
                mapping = conn.copy_or_move(live, dest, move=True)
            else:
                mapping = conn.copy_or_move(live, dest, move=False)
                remove += live if move else []
        if remove:
            conn.store_flags(remove, [b"\\Deleted"], [])
            if conn.has("UIDPLUS"):
                conn.expunge(remove)
        gone = 0
        for op in ops:
            if op.id in adopted:
                self.store.complete_op(op.id, adopted[op.id])
            elif op.uid is not None and op.uid not in present:
                self.store.drop_op(op.id, "the message no longer exists on the server")
                # drop_op put the row back where it came from; it is gone there too.
                self.store.remove_uids(self._folder_id(folder), [op.uid])
                warnings.append(
                    f"A message to {kind} from {folder} had been deleted on the server."
                )
                gone += 1
            else:
                self.store.complete_op(op.id, mapping.get(op.uid) if op.uid is not None else None)
        return len(ops) - gone

    def _present(self, conn: ImapConnection, uids: Sequence[int]) -> set[int]:
        """Which of `uids` exist in the selected folder."""
        found: set[int] = set()
        if not uids:
            return found
        ranges = conn.search(b"UID " + ip.format_uid_set(uids))
        return {u for u in uids if ip.uid_in_ranges(u, ranges)}

    def _replay_flags(self, conn: ImapConnection, op: PendingOp, uids: Sequence[int]) -> None:
        add = ip.flag_atoms(op.add)
        remove = ip.flag_atoms(op.remove)
        if not add and not remove:
            return
        row = self.store.folder(self.name, op.folder)
        since = row.state.highestmodseq if row is not None else 0
        result = conn.store_flags(uids, add, remove, unchangedsince=since)
        if not result.modified:
            return
        # Changed on the server since we last looked: take the server's flags, put our
        # change back on top (plan.resolve_modified), and replay only our change.
        modified = [u for u in uids if ip.uid_in_ranges(u, result.modified)]
        delta = FlagDelta.of(op.add, op.remove)
        server: dict[int, Flags] = {}
        for f in conn.fetch([ip.format_uid_set(modified)], FLAG_ITEMS):
            if f.uid is not None and f.flags is not None:
                server[f.uid] = plan.resolve_modified(f.flags, delta)
        conn.store_flags(modified, add, remove)
        if server and row is not None:
            self.store.apply_server_flags(row.id, server)

    def _replay_append(self, conn: ImapConnection, op: PendingOp, warnings: list[str]) -> int:
        if op.message_id is None:
            self.store.drop_op(op.id, "no local message to upload")
            return 0
        raw = self.store.raw(op.message_id)
        summary = self.store.message(op.message_id)
        if raw is None or summary is None:
            self.store.drop_op(op.id, "the local copy is missing")
            warnings.append(f"A message to upload to {op.folder} had no local copy; skipped.")
            return 0
        sizes = {len(raw), len(_crlf(raw))}
        found = self._already_there(conn, op.folder, [op], {op.id: sizes})
        if op.id in found:
            # Uploaded by an earlier run whose reply was lost: adopt that copy.
            self.store.complete_op(op.id, found[op.id])
            return 1
        flags = ip.flag_atoms(summary.flags.names())
        appended = conn.append(op.folder, raw, flags)
        new_uid = None
        if appended is not None:
            uidvalidity, uid = appended
            row = self.store.folder(self.name, op.folder)
            if row is not None and row.state.uidvalidity in (0, uidvalidity):
                new_uid = uid
        self.store.complete_op(op.id, new_uid)
        return 1

    def _already_there(
        self,
        conn: ImapConnection,
        dest: str,
        ops: Sequence[PendingOp],
        sizes: Mapping[int, set[int]] | None = None,
    ) -> dict[int, int]:
        """Ops (id -> UID) whose message `dest` already holds under a UID the store has
        not seen: an APPEND/COPY/MOVE whose reply was lost after the server acted (the
        connection dropped), which must not be sent again. A message counts when its
        Message-ID and size match; messages the store knows never count, so a second
        copy the user asked for, or an older draft with the same Message-ID, is not taken.
        `sizes` gives the acceptable RFC822.SIZEs per op (default: the local row's size)."""
        row = self.store.folder(self.name, dest)
        if row is None:
            return {}
        floor = max(row.state.uidnext, self.store.max_uid(row.id) + 1, 1)
        if conn.selected != dest:
            # One cheap STATUS: in the usual case nothing is there that the store has not seen.
            status = conn.status(dest)
            if status.uidnext and status.uidnext <= floor:
                return {}
            if row.state.uidvalidity and status.uidvalidity not in (0, row.state.uidvalidity):
                return {}  # renumbered: the next sync of dest rebuilds it anyway
            selected = conn.select(dest, readonly=True)
            if row.state.uidvalidity and selected.uidvalidity != row.state.uidvalidity:
                return {}
        wanted: dict[int, tuple[str, set[int]]] = {}
        summaries = {
            m.id: m for m in self.store.summaries([op.message_id for op in ops if op.message_id])
        }
        for op in ops:
            summary = summaries.get(op.message_id or 0)
            if summary is None or not _searchable(summary.envelope.message_id):
                continue
            accept = sizes.get(op.id) if sizes is not None else None
            if accept is None:
                accept = {summary.size} if summary.size else set()
            wanted[op.id] = (summary.envelope.message_id, accept)
        if not wanted:
            return {}
        ids = sorted({mid for mid, _ in wanted.values()})
        found: set[int] = set()
        for i in range(0, len(ids), 50):
            keys = [b"HEADER Message-ID " + ip.quote(m.encode()) for m in ids[i : i + 50]]
            for a, b in conn.search(b"UID %d:* %s" % (floor, _any_of(keys))):
                found.update(range(max(a, floor), b + 1))  # "n:*" also names the top UID
                if len(found) > 10 * len(wanted):
                    return {}  # not a lost reply: someone else's copies; leave them be
        if not found:
            return {}
        candidates: dict[str, list[tuple[int, int]]] = {}
        items = b"(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
        # Imported here: a resync with nothing new never parses a message (start-up cost).
        from tuimail.mail.parse import parse_headers

        for f in conn.fetch([ip.format_uid_set(found)], items):
            if f.uid in found and isinstance(f.header, bytes):
                mid = parse_headers(f.header).message_id
                candidates.setdefault(mid, []).append((f.uid, f.size or 0))
        adopted: dict[int, int] = {}
        taken: set[int] = set()
        for op_id, (mid, accept) in wanted.items():
            for uid, size in sorted(candidates.get(mid, ())):
                if uid not in taken and (not accept or size in accept):
                    adopted[op_id] = uid
                    taken.add(uid)
                    break
        return adopted

    def _folder_id(self, name: str) -> int:
        row = self.store.folder(self.name, name)
        if row is None:
            raise NotFoundError(f"Folder {name!r} is not in the local store.")
        return row.id


# ----------------------------------------------------------------------------- helpers


def _sync_order(folders: Iterable[FolderInfo]) -> list[str]:
    """INBOX first, then folders with roles, then the rest by name."""
    from tuimail.models import ROLE_ORDER

    return [f.name for f in sorted(folders, key=lambda f: (ROLE_ORDER[f.role], f.name.casefold()))]


def _uid_sets(uids: Sequence[int], per_command: int) -> list[bytes]:
    return [ip.format_uid_set(c) for c in ip.chunk_uids(sorted(uids), per_command)]


def _feeds_later_ops(done: Sequence[PendingOp], later: Sequence[Sequence[PendingOp]]) -> bool:
    """Whether a later op still waits for a UID one of `done` may have supplied."""
    if done[0].kind not in ("move", "copy", "append"):
        return False
    rows = {op.message_id for op in done if op.message_id is not None}
    return any(op.uid is None and op.message_id in rows for group in later for op in group)


def _searchable(message_id: str) -> bool:
    """A Message-ID that can go into a SEARCH as a quoted ASCII string."""
    return 2 < len(message_id) <= 500 and message_id.isascii() and message_id.isprintable()


def _any_of(keys: Sequence[bytes]) -> bytes:
    """SEARCH keys joined with OR, as a balanced tree (shallow even for many keys)."""
    if len(keys) == 1:
        return keys[0]
    half = len(keys) // 2
    return b"OR (%s) (%s)" % (_any_of(keys[:half]), _any_of(keys[half:]))


def _crlf(raw: bytes) -> bytes:
    """The message with CRLF line ends, as a server may count its size."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _groups(ops: Sequence[PendingOp]) -> list[list[PendingOp]]:
    """Consecutive ops that one command can replay: same kind, folder, destination and
    flag change, each message at most once."""
    groups: list[list[PendingOp]] = []
    key: tuple[object, ...] | None = None
    seen: set[int | None] = set()
    for op in ops:
        k = (op.kind, op.folder, op.dest_folder, op.add, op.remove)
        if (
            groups
            and k == key
            and op.kind != "append"
            and op.message_id not in seen
            and len(groups[-1]) < 5000
        ):
            groups[-1].append(op)
        else:
            groups.append([op])
            key = k
            seen = set()
        seen.add(op.message_id)
    return groups
