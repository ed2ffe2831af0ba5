"""The local store: SQLite index (WAL) + one Maildir per folder. See docs/store-api.md."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tuimail.errors import NotFoundError, StoreError, UnsupportedError, UsageError
from tuimail.locations import ensure_private_dir
from tuimail.models import (
    ROLE_ORDER,
    Address,
    Flags,
    FolderInfo,
    FolderRole,
    FolderState,
    Frozen,
    MessageSummary,
)
from tuimail.store import maildir
from tuimail.store.indexing import index_headers, index_item, index_message
from tuimail.store.paths import checked_path, dir_name, fsync_dir
from tuimail.store.pop3state import Pop3State, Prepared, discard_tmp, link_cur
from tuimail.store.rows import (
    INDEX_COLUMNS,
    IndexRow,
    envelope_from_row,
    epoch,
    flags_from_columns,
    flags_to_columns,
    from_epoch,
    index_row,
    now,
)
from tuimail.store.schema import connect
from tuimail.store.types import (
    FolderChanges,
    FolderRow,
    NewMessage,
    OpKind,
    OutboxItem,
    OutboxState,
    PendingOp,
    SortKey,
    ThreadRow,
)

_log = logging.getLogger(__name__)
_CHUNK = 500  # ids per IN (...) list

_FOLDER_COLUMNS = (
    "f.id, a.name, f.name, f.delimiter, f.role, f.subscribed, f.uidvalidity, f.uidnext, "
    "f.highestmodseq, f.total, f.unread"
)
_SUMMARY_COLUMNS = (
    "m.id, a.name, f.name, m.uid, m.message_id, m.in_reply_to, m.refs, m.date_utc, "
    "m.date_offset, m.from_name, m.from_addr, m.addrs, m.subject, m.flags, m.keywords, m.size, "
    "m.has_attachments, m.preview, m.thread_id, m.filename IS NOT NULL, m.parse_warning"
)
_SUMMARY_FROM = (
    "messages m JOIN folders f ON f.id = m.folder_id JOIN accounts a ON a.id = f.account_id"
)
_ORDER = {
    SortKey.DATE: ("sort_date", "id"),
    SortKey.FROM: ("sort_from", "sort_date", "id"),
    SortKey.SUBJECT: ("sort_subject", "sort_date", "id"),
    SortKey.SIZE: ("size", "sort_date", "id"),
}
_INSERT_MESSAGE = (
    "INSERT INTO messages (id, folder_id, uid, thread_id, sort_date, flags, keywords, size, "  # noqa: S608
    f"filename, internaldate, {', '.join(INDEX_COLUMNS)}) "
    f"VALUES ({', '.join('?' * (10 + len(INDEX_COLUMNS)))})"
)
# An IndexRow's columns for a row that had only its headers: (sort date, *columns, file, id).
_UPDATE_INDEXED = (
    "UPDATE messages SET sort_date = COALESCE(?, sort_date), "  # noqa: S608
    + ", ".join(f"{name} = ?" for name in INDEX_COLUMNS)
    + ", filename = ? WHERE id = ?"
)
_INSERT_FTS = (
    "INSERT INTO messages_fts (rowid, sender, recipients, cc, subject, body) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_UPSERT_ADDRESS = (
    "INSERT INTO addresses (addr, name, last_seen, count, sent_to) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (addr) DO UPDATE SET "
    "name = CASE WHEN excluded.name != '' THEN excluded.name ELSE addresses.name END, "
    "last_seen = max(addresses.last_seen, excluded.last_seen), "
    "count = addresses.count + excluded.count, "
    "sent_to = max(addresses.sent_to, excluded.sent_to)"
)


_set = object.__setattr__  # sets a field of a Frozen value in its __init__


class _Folder(Frozen):  # Frozen, not a dataclass: see tuimail.models
    __slots__ = ("account", "account_dir", "account_id", "dir", "id", "name", "role")
    id: int
    account_id: int
    account: str
    name: str
    role: FolderRole
    account_dir: str
    dir: str

    def __init__(
        self,
        id: int,
        account_id: int,
        account: str,
        name: str,
        role: FolderRole,
        account_dir: str,
        dir: str,
    ) -> None:
        _set(self, "id", id)
        _set(self, "account_id", account_id)
        _set(self, "account", account)
        _set(self, "name", name)
        _set(self, "role", role)
        _set(self, "account_dir", account_dir)
        _set(self, "dir", dir)


def _chunks(values: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _split_flags(text: str) -> tuple[str, ...]:
    return tuple(text.split()) if text else ()


class Store(Pop3State):
    """One connection to the store; belongs to the thread that opened it."""

    def __init__(self, root: Path, conn: sqlite3.Connection) -> None:
        self.root = root
        self._conn = conn

    @classmethod
    def open(cls, root: Path) -> Self:
        ensure_private_dir(root)
        for sub in ("maildir", "outbox"):
            ensure_private_dir(root / sub)
        try:
            conn = connect(str(root / "index.sqlite3"))
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"Cannot open the local store in {root}: {exc}. If it is damaged, move "
                "index.sqlite3 aside; the next sync rebuilds it."
            ) from exc
        return cls(root, conn)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA optimize")  # keeps the planner's statistics fresh; bounded
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    @contextlib.contextmanager
    def _write(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock up front (waits busy_timeout)."""
        conn = self._conn
        if durable:
            conn.execute("PRAGMA synchronous = FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            if durable:
                conn.execute("PRAGMA synchronous = NORMAL")

    def _q(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._conn.execute(sql, params).fetchall()

    def _account_id(self, conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute("SELECT id FROM accounts WHERE name = ?", (name,)).fetchone()
        if row:
            return int(row[0])
        if not name or any(ord(c) < 32 for c in name):
            raise UsageError(f"Invalid account name {name!r}.", "Bad account name")
        cur = conn.execute("INSERT INTO accounts (name, dir) VALUES (?, ?)", (name, dir_name(name)))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def _folder(self, folder_id: int) -> _Folder:
        row = self._conn.execute(
            "SELECT f.id, f.account_id, a.name, f.name, f.role, a.dir, f.dir "
            "FROM folders f JOIN accounts a ON a.id = f.account_id WHERE f.id = ?",
            (folder_id,),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"No folder with id {folder_id} in the local store.")
        return _Folder(row[0], row[1], row[2], row[3], FolderRole(row[4]), row[5], row[6])

    def _dir(self, account_dir: str, folder_dir: str) -> Path:
        return checked_path(self.root / "maildir", account_dir, folder_dir)

    def _fdir(self, folder: _Folder) -> Path:
        return self._dir(folder.account_dir, folder.dir)

    @staticmethod
    def _folder_row(row: Sequence[Any]) -> FolderRow:
        return FolderRow(
            id=row[0],
            account=row[1],
            name=row[2],
            delimiter=row[3],
            role=FolderRole(row[4]),
            subscribed=bool(row[5]),
            state=FolderState(row[6], row[7], row[8]),
            total=row[9],
            unread=row[10],
        )

    @staticmethod
    def _summary(row: Sequence[Any]) -> MessageSummary:
        envelope = envelope_from_row(
            row[4], row[5], row[6], row[7], row[8], row[9], row[10], row[11], row[12]
        )
        return MessageSummary(
            id=row[0],
            account=row[1],
            folder=row[2],
            uid=row[3] or 0,
            envelope=envelope,
            flags=flags_from_columns(row[13], row[14]),
            size=row[15],
            has_attachments=bool(row[16]),
            preview=row[17],
            thread_id=row[18],
            has_body=bool(row[19]),
            parse_warning=row[20],
        )

    # ------------------------------------------------------------------ folders

    def accounts(self) -> list[str]:
        return [r[0] for r in self._q("SELECT name FROM accounts ORDER BY name")]

    def _insert_folder(self, conn: sqlite3.Connection, account_id: int, info: FolderInfo) -> int:
        cur = conn.execute(
            "INSERT INTO folders (account_id, name, dir, delimiter, role, subscribed, selectable) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                account_id,
                info.name,
                dir_name(info.name),
                info.delimiter,
                info.role.value,
                int(info.subscribed),
                int(info.selectable),
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def ensure_folder(self, account: str, info: FolderInfo) -> FolderRow:
        with self._write() as conn:
            account_id = self._account_id(conn, account)
            row = conn.execute(
                "SELECT id FROM folders WHERE account_id = ? AND name = ?",
                (account_id, info.name),
            ).fetchone()
            folder_id = row[0] if row else self._insert_folder(conn, account_id, info)
        return self.folder_by_id(folder_id)

    def sync_folders(
        self,
        account: str,
        folders: Sequence[FolderInfo],
        renames: Mapping[str, str] | None = None,
    ) -> FolderChanges:
        """Make the account's local folders those of `folders` (the server's list).

        `renames` (old -> new name, e.g. from `sync.plan.match_renames`) are applied first:
        the folder keeps its rows, sync state and pending operations (they name folders by
        id) and its Maildir directory moves. Then new names are added and the rest of the
        local folders removed, except what exists only here: messages waiting for an APPEND
        to a removed folder move to the account's INBOX with their APPEND (so they are
        uploaded there; `FolderChanges.rescued`), a move/copy out of a removed folder whose
        message we hold becomes an APPEND to where it went, and a move/copy into a removed
        folder is given up (`drop_op`: the message is still on the server where it was)."""
        wanted = {f.name: f for f in folders}
        local = {f.name for f in self.folders(account)}
        renames = {
            old: new
            for old, new in (renames or {}).items()
            if old in local and old not in wanted and new in wanted and new not in local
        }
        doomed_names = local - wanted.keys() - renames.keys()
        if doomed_names:
            self._give_up_ops_into(account, doomed_names)
        changes = FolderChanges()
        doomed: list[Path] = []
        moved: list[tuple[Path, Path]] = []
        linked: list[tuple[Path, str, Flags]] = []
        try:
            with self._write() as conn:
                account_id = self._account_id(conn, account)
                have = {
                    r[1]: r
                    for r in conn.execute(
                        "SELECT id, name, delimiter, role, subscribed, selectable, dir "
                        "FROM folders WHERE account_id = ?",
                        (account_id,),
                    )
                }
                account_dir = conn.execute(
                    "SELECT dir FROM accounts WHERE id = ?", (account_id,)
                ).fetchone()[0]
                for old, new in renames.items():
                    row = have.get(old)
                    if row is None or new in have:
                        continue  # changed by another process since `local` was read
                    old_path = self._dir(account_dir, row[6])
                    new_dir = dir_name(new)
                    new_path = self._dir(account_dir, new_dir)
                    if old_path.exists() and new_path.exists():
                        # No folder has that directory (`dir_name` is injective): left by an
                        # interrupted deletion or rename. Put aside, not deleted (a leading
                        # dot is never a folder's directory).
                        aside = new_path.with_name(f".orphan-{time.time_ns()}-{new_dir}")
                        os.rename(new_path, aside)
                        moved.append((new_path, aside))
                    conn.execute(
                        "UPDATE folders SET name = ?, dir = ? WHERE id = ?", (new, new_dir, row[0])
                    )
                    if old_path.exists():
                        os.rename(old_path, new_path)
                        moved.append((old_path, new_path))
                    del have[old]
                    have[new] = (row[0], new, *row[2:6], new_dir)
                    changes.renamed.append((old, new))
                if moved:
                    fsync_dir(moved[0][1].parent)
                for name, info in wanted.items():
                    row = have.get(name)
                    if row is None:
                        self._insert_folder(conn, account_id, info)
                        changes.added.append(name)
                    elif (row[2], row[3], bool(row[4]), bool(row[5])) != (
                        info.delimiter,
                        info.role.value,
                        info.subscribed,
                        info.selectable,
                    ):
                        conn.execute(
                            "UPDATE folders SET delimiter = ?, role = ?, subscribed = ?, "
                            "selectable = ? WHERE id = ?",
                            (
                                info.delimiter,
                                info.role.value,
                                int(info.subscribed),
                                int(info.selectable),
                                row[0],
                            ),
                        )
                        changes.updated.append(name)
                for name, row in have.items():
                    if name in wanted:
                        continue
                    kept = self._keep_local_only(conn, account_id, row[0], linked)
                    if kept is not None:
                        changes.rescued.append((name, *kept))
                    doomed.append(self._dir(account_dir, row[6]))
                    conn.execute("DELETE FROM folders WHERE id = ?", (row[0],))
                    changes.removed.append(name)
        except BaseException:
            for old_path, new_path in reversed(moved):
                with contextlib.suppress(OSError):
                    os.rename(new_path, old_path)
            self._finish_files(linked)
            raise
        # Files go only after the rows are gone: a crash in between leaves orphans, not holes.
        if doomed:
            import shutil  # not at module level: it pulls in bz2 and lzma; rarely needed

            for path in doomed:
                shutil.rmtree(path, ignore_errors=True)
        return changes

    def _give_up_ops_into(self, account: str, names: set[str]) -> None:
        """Moves and copies into folders about to be removed can never run: undone
        (`drop_op`), the server still has the message where it was."""
        for op in self.pending_ops(account):
            if op.kind in ("move", "copy") and op.dest_folder in names:
                self.drop_op(op.id, "the destination folder was deleted on the server")

    def _keep_local_only(
        self,
        conn: sqlite3.Connection,
        account_id: int,
        folder_id: int,
        linked: list[tuple[Path, str, Flags]],
    ) -> tuple[str, int] | None:
        """Before folder `folder_id` is removed: keep what exists only locally (see
        `sync_folders`). Returns (the INBOX's name, count) when messages of the folder
        were moved there; files linked into it are added to `linked`."""
        # A move/copy out of this folder whose message went on locally: upload our copy.
        conn.execute(
            "UPDATE pending_ops SET kind = 'append', folder_id = ("
            "  SELECT m.folder_id FROM messages m WHERE m.id = pending_ops.message_id), "
            "dest_folder_id = NULL, uid = NULL, orig_uid = NULL "
            "WHERE folder_id = ? AND kind IN ('move', 'copy') AND EXISTS ("
            "  SELECT 1 FROM messages m WHERE m.id = pending_ops.message_id "
            "  AND m.folder_id = pending_ops.dest_folder_id AND m.uid IS NULL "
            "  AND m.filename IS NOT NULL)",
            (folder_id,),
        )
        rows = conn.execute(
            "SELECT DISTINCT m.id, m.filename, m.flags, m.keywords FROM messages m "
            "JOIN pending_ops o ON o.message_id = m.id "
            "WHERE m.folder_id = ? AND m.uid IS NULL AND o.kind = 'append' AND o.folder_id = ?",
            (folder_id, folder_id),
        ).fetchall()
        if not rows:
            return None
        inbox_row = conn.execute(
            "SELECT id FROM folders WHERE account_id = ? AND id != ? AND (role = ? OR name = ?) "
            "ORDER BY role = ? DESC, id LIMIT 1",
            (account_id, folder_id, FolderRole.INBOX.value, "INBOX", FolderRole.INBOX.value),
        ).fetchone()
        if inbox_row is None:
            raise StoreError(
                "A folder deleted on the server holds messages not uploaded yet, and the "
                "account has no INBOX to keep them in; the folder was left as it is."
            )
        src = self._folder(folder_id)
        inbox = self._folder(inbox_row[0])
        src_dir, inbox_dir = self._fdir(src), self._fdir(inbox)
        for message_id, filename, bits, keywords in rows:
            flags = flags_from_columns(bits, keywords)
            if filename and maildir.link_into(src_dir, inbox_dir, filename, flags):
                linked.append((inbox_dir, filename, flags))
            else:
                filename = None
            conn.execute(
                "UPDATE messages SET folder_id = ?, filename = ? WHERE id = ?",
                (inbox.id, filename, message_id),
            )
            conn.execute(
                "UPDATE pending_ops SET folder_id = ? WHERE message_id = ? AND folder_id = ?",
                (inbox.id, message_id, folder_id),
            )
        if linked:
            maildir.sync_dirs(inbox_dir)
        return inbox.name, len(rows)

    def folders(self, account: str | None = None) -> list[FolderRow]:
        sql = f"SELECT {_FOLDER_COLUMNS} FROM folders f JOIN accounts a ON a.id = f.account_id"  # noqa: S608
        params: tuple[str, ...] = ()
        if account is not None:
            sql += " WHERE a.name = ?"
            params = (account,)
        rows = [self._folder_row(r) for r in self._q(sql, params)]
        rows.sort(key=lambda f: (f.account, ROLE_ORDER[f.role], f.name.casefold(), f.name))
        return rows

    def folder(self, account: str, name: str) -> FolderRow | None:
        row = self._conn.execute(
            f"SELECT {_FOLDER_COLUMNS} FROM folders f JOIN accounts a ON a.id = f.account_id "  # noqa: S608
            "WHERE a.name = ? AND f.name = ?",
            (account, name),
        ).fetchone()
        return self._folder_row(row) if row else None

    def folder_by_id(self, folder_id: int) -> FolderRow:
        row = self._conn.execute(
            f"SELECT {_FOLDER_COLUMNS} FROM folders f JOIN accounts a ON a.id = f.account_id "  # noqa: S608
            "WHERE f.id = ?",
            (folder_id,),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"No folder with id {folder_id} in the local store.")
        return self._folder_row(row)

    def folder_by_role(self, account: str, role: FolderRole) -> FolderRow | None:
        row = self._conn.execute(
            f"SELECT {_FOLDER_COLUMNS} FROM folders f JOIN accounts a ON a.id = f.account_id "  # noqa: S608
            "WHERE a.name = ? AND f.role = ? ORDER BY f.id LIMIT 1",
            (account, role.value),
        ).fetchone()
        return self._folder_row(row) if row else None

    def rename_folder(self, folder_id: int, new_name: str) -> None:
        folder = self._folder(folder_id)
        new_dir = dir_name(new_name)
        old_path = self._fdir(folder)
        new_path = self._dir(folder.account_dir, new_dir)
        with self._write() as conn:
            try:
                conn.execute(
                    "UPDATE folders SET name = ?, dir = ? WHERE id = ?",
                    (new_name, new_dir, folder_id),
                )
            except sqlite3.IntegrityError as exc:
                raise UsageError(
                    f"{folder.account} already has a folder named {new_name!r}."
                ) from exc
            if old_path != new_path and old_path.exists():
                if new_path.exists():
                    raise StoreError(f"Cannot rename {old_path}: {new_path} is in the way.")
                os.rename(old_path, new_path)
                fsync_dir(new_path.parent)

    def set_folder_state(self, folder_id: int, state: FolderState) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE folders SET uidvalidity = ?, uidnext = ?, highestmodseq = ? WHERE id = ?",
                (state.uidvalidity, state.uidnext, state.highestmodseq, folder_id),
            )

    def reset_folder(self, folder_id: int, uidvalidity: int) -> int:
        """Forget every server-known message of the folder (UIDVALIDITY changed).

        Local placeholders still waiting to be created on the server (an APPEND or a
        move/copy into this folder) are kept with their ops: their content is only here.
        """
        folder = self._folder(folder_id)
        fdir = self._fdir(folder)
        with self._write() as conn:
            keep = {
                r[0]
                for r in conn.execute(
                    "SELECT m.id FROM messages m JOIN pending_ops o ON o.message_id = m.id "
                    "WHERE m.folder_id = ? AND m.uid IS NULL AND ("
                    "(o.kind = 'append' AND o.folder_id = m.folder_id) OR "
                    "(o.kind IN ('move', 'copy') AND o.dest_folder_id = m.folder_id))",
                    (folder_id,),
                )
            }
            dropped = 0
            for op_id, message_id in conn.execute(
                "SELECT id, message_id FROM pending_ops WHERE folder_id = ?", (folder_id,)
            ).fetchall():
                if message_id in keep:
                    continue
                conn.execute("DELETE FROM pending_ops WHERE id = ?", (op_id,))
                dropped += 1
            files = [
                (r[1], flags_from_columns(r[2], r[3]))
                for r in conn.execute(
                    "SELECT id, filename, flags, keywords FROM messages "
                    "WHERE folder_id = ? AND filename IS NOT NULL",
                    (folder_id,),
                )
                if r[0] not in keep
            ]
            if keep:
                conn.execute("CREATE TEMP TABLE IF NOT EXISTS keep_ids (id INTEGER PRIMARY KEY)")
                conn.execute("DELETE FROM keep_ids")
                conn.executemany("INSERT INTO keep_ids VALUES (?)", [(i,) for i in keep])
                conn.execute(
                    "DELETE FROM messages WHERE folder_id = ? AND id NOT IN keep_ids",
                    (folder_id,),
                )
                conn.execute("DELETE FROM keep_ids")
            else:
                conn.execute("DELETE FROM messages WHERE folder_id = ?", (folder_id,))
            conn.execute(
                "UPDATE folders SET uidvalidity = ?, uidnext = 0, highestmodseq = 0 WHERE id = ?",
                (uidvalidity, folder_id),
            )
        for base, flags in files:
            maildir.remove(fdir, base, flags)
        return dropped

    # ------------------------------------------------------------------ from the server

    def _existing(
        self, conn: sqlite3.Connection, folder_id: int, uids: Sequence[int]
    ) -> dict[int, tuple[int, str | None, int, str]]:
        """uid -> (id, filename, flags, keywords) of the rows among `uids`."""
        found: dict[int, tuple[int, str | None, int, str]] = {}
        if not uids:
            return found
        top = conn.execute(
            "SELECT MAX(uid) FROM messages WHERE folder_id = ? AND uid IS NOT NULL", (folder_id,)
        ).fetchone()[0]
        # New mail has UIDs above the highest known one: skip the look-up for those.
        candidates = sorted({u for u in uids if top is not None and u <= top})
        for chunk in _chunks(candidates):
            for row in conn.execute(
                "SELECT uid, id, filename, flags, keywords FROM messages "  # noqa: S608
                f"WHERE folder_id = ? AND uid IN ({_marks(len(chunk))})",
                (folder_id, *chunk),
            ):
                found[row[0]] = (row[1], row[2], row[3], row[4])
        return found

    def _pending_flag_changes(
        self, conn: sqlite3.Connection, message_ids: Iterable[int]
    ) -> dict[int, list[tuple[tuple[str, ...], tuple[str, ...]]]]:
        """Local flag changes not yet on the server, per message, oldest first."""
        result: dict[int, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {}
        ids = sorted(set(message_ids))
        for chunk in _chunks(ids):
            for mid, add, remove in conn.execute(
                "SELECT message_id, add_flags, remove_flags FROM pending_ops "  # noqa: S608
                f"WHERE kind IN ('flags', 'expunge') AND message_id IN ({_marks(len(chunk))}) "
                "ORDER BY id",
                chunk,
            ):
                result.setdefault(mid, []).append((_split_flags(add), _split_flags(remove)))
        return result

    @staticmethod
    def _merge_local(
        server: Flags, changes: list[tuple[tuple[str, ...], tuple[str, ...]]] | None
    ) -> Flags:
        for add, remove in changes or ():
            server = server.with_changes(add, remove)
        return server

    def add_messages(
        self, folder_id: int, items: Sequence[NewMessage], *, prepared: Prepared | None = None
    ) -> list[int]:
        """Store messages from the server (see store-api.md). `prepared`, when given, is
        this batch already parsed and its complete messages written to `tmp/` by
        `pop3state.prepare` (an engine's helper process does that one batch ahead); its
        files are published or removed here in every case."""
        return self._add(folder_id, items, append_op=False, prepared=prepared)

    def folder_dir(self, folder_id: int) -> Path:
        """The Maildir directory of a folder (for `pop3state.prepare` in a helper)."""
        return self._fdir(self._folder(folder_id))

    def clean_tmp(self, folder_id: int) -> int:
        """Remove what killed downloads left in the folder's `tmp/` (files over 36 hours
        old, the Maildir rule); engines call it when a download starts."""
        return maildir.clean_tmp(self._fdir(self._folder(folder_id)), time.time())

    def discard_prepared(self, folder_id: int, prepared: Prepared) -> None:
        """Remove the `tmp/` files of a prepared batch that will not be stored."""
        discard_tmp(self._fdir(self._folder(folder_id)), prepared.files())

    def _add(
        self,
        folder_id: int,
        items: Sequence[NewMessage],
        append_op: bool,
        prepared: Prepared | None = None,
    ) -> list[int]:
        folder = self._folder(folder_id)
        fdir = self._fdir(folder)
        if prepared is not None and not (
            len(prepared.rows) == len(prepared.bases) == len(items)
            and all(
                (base is not None) == item.complete
                for base, item in zip(prepared.bases, items, strict=True)
            )
        ):
            discard_tmp(fdir, prepared.files())
            raise ValueError("prepared must match items one to one")
        if not items:
            return []
        # Parse outside the transaction: other processes keep writing meanwhile.
        if prepared is not None:
            rows = prepared.rows
        else:
            rows = [index_row(index_item(i.raw, i.complete)) for i in items]
        uids = [i.uid for i in items if i.uid is not None]
        try:
            with_body = {
                uid for uid, row in self._existing(self._conn, folder_id, uids).items() if row[1]
            }
        except BaseException:
            if prepared is not None:
                discard_tmp(fdir, prepared.files())
            raise
        wanted = [i.complete and i.uid not in with_body for i in items]
        written: list[tuple[str, Flags]] = []
        bases: list[str | None] = []
        try:
            if prepared is not None:
                discard_tmp(
                    fdir,
                    [b for b, w in zip(prepared.bases, wanted, strict=True) if b and not w],
                )
                bases = [b if w else None for b, w in zip(prepared.bases, wanted, strict=True)]
                to_link = [(b, i.flags) for b, i in zip(bases, items, strict=True) if b]
                try:
                    if to_link:
                        link_cur(fdir, to_link)
                except BaseException:
                    discard_tmp(fdir, [b for b, _ in to_link])
                    raise
                written = to_link
            else:
                new_files = iter(
                    maildir.deliver_many(
                        fdir, [(i.raw, i.flags) for i, w in zip(items, wanted, strict=True) if w]
                    )
                )
                for item, want in zip(items, wanted, strict=True):
                    if want:
                        base = next(new_files)
                        written.append((base, item.flags))
                        bases.append(base)
                    else:
                        bases.append(None)
                if written:
                    maildir.sync_dirs(fdir)
            with self._write() as conn:
                ids, unused = self._store_new(conn, folder, items, rows, bases)
                if append_op:
                    for message_id in ids:
                        self._queue(conn, "append", folder, None, message_id)
        except BaseException:
            for base, flags in written:
                maildir.remove(fdir, base, flags)
            raise
        for base, flags in unused:
            maildir.remove(fdir, base, flags)
        return ids

    def _store_new(
        self,
        conn: sqlite3.Connection,
        folder: _Folder,
        items: Sequence[NewMessage],
        rows: Sequence[IndexRow],
        bases: Sequence[str | None],
    ) -> tuple[list[int], list[tuple[str, Flags]]]:
        existing = self._existing(conn, folder.id, [i.uid for i in items if i.uid is not None])
        placeholders: dict[str, list[int]] = {}
        for pid, mid in conn.execute(
            "SELECT id, message_id FROM messages INDEXED BY messages_placeholders "
            "WHERE folder_id = ? AND uid IS NULL "
            "AND message_id != '' AND hidden = 0 AND NOT EXISTS "
            "(SELECT 1 FROM pending_ops o WHERE o.message_id = messages.id) ORDER BY id",
            (folder.id,),
        ):
            placeholders.setdefault(mid, []).append(pid)
        pending = self._pending_flag_changes(conn, [row[0] for row in existing.values()])
        # Ids are assigned here (we hold the write lock) so one executemany can insert
        # messages and FTS rows alike; sqlite_sequence keeps them from ever being reused.
        next_id = 1 + int(
            conn.execute(
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0),"
                " COALESCE((SELECT MAX(id) FROM messages), 0))"
            ).fetchone()[0]
        )
        sent_folder = folder.role in (FolderRole.SENT, FolderRole.DRAFTS)

        ids: list[int] = []
        unused: list[tuple[str, Flags]] = []
        inserts: list[tuple[Any, ...]] = []
        fts: list[tuple[Any, ...]] = []
        flag_updates: list[tuple[Any, ...]] = []
        body_updates: list[tuple[Any, ...]] = []
        reindexed: list[int] = []
        addresses: dict[str, list[Any]] = {}
        new_unread = 0

        for item, index, base in zip(items, rows, bases, strict=True):
            row = existing.get(item.uid) if item.uid is not None else None
            if row is None and item.uid is not None and index.message_id in placeholders:
                pid = placeholders[index.message_id].pop(0)
                if not placeholders[index.message_id]:
                    del placeholders[index.message_id]
                conn.execute("UPDATE messages SET uid = ? WHERE id = ?", (item.uid, pid))
                got = conn.execute(
                    "SELECT id, filename, flags, keywords FROM messages WHERE id = ?", (pid,)
                ).fetchone()
                row = (got[0], got[1], got[2], got[3])
                existing[item.uid] = row
            if row is not None:
                message_id, filename, old_bits, old_kw = row
                flags = self._merge_local(item.flags, pending.get(message_id))
                bits, keywords = flags_to_columns(flags)
                flag_updates.append(
                    (bits, keywords, item.size or None, epoch(item.internaldate), message_id)
                )
                if filename is None and base is not None:
                    body_updates.append((index.date_utc, *index.columns, base, message_id))
                    reindexed.append(message_id)
                    fts.append((message_id, *index.fts))
                    filename = base
                elif base is not None:
                    unused.append((base, item.flags))
                old = flags_from_columns(old_bits, old_kw)
                if filename is not None and old.maildir_info() != flags.maildir_info():
                    # the file carries the flags it was written with (or had)
                    current = item.flags if filename == base else old
                    with contextlib.suppress(OSError):
                        maildir.rename_flags(self._fdir(folder), filename, current, flags)
                elif filename is not None and filename == base:
                    with contextlib.suppress(OSError):
                        maildir.rename_flags(self._fdir(folder), filename, item.flags, flags)
                ids.append(message_id)
                continue

            message_id = next_id
            next_id += 1
            bits, keywords = flags_to_columns(item.flags)
            if item.uid is not None:  # the same UID again later in this batch updates it
                existing[item.uid] = (message_id, base, bits, keywords)
            new_unread += not bits & 1
            date_utc = index.date_utc
            internal = epoch(item.internaldate)
            inserts.append(
                (
                    message_id,
                    folder.id,
                    item.uid,
                    message_id if index.thread is None else index.thread,
                    date_utc if date_utc is not None else (internal or 0),
                    bits,
                    keywords,
                    item.size or (len(item.raw) if item.complete else 0),
                    base,
                    internal,
                    *index.columns,
                )
            )
            fts.append((message_id, *index.fts))
            seen_at = date_utc or internal or 0
            for addr, name in index.senders:
                self._count_address(addresses, addr, name, seen_at, sent_to=False)
            if sent_folder:
                for addr, name in index.recipients:
                    self._count_address(addresses, addr, name, seen_at, sent_to=True)
            ids.append(message_id)

        if inserts:
            conn.executemany(_INSERT_MESSAGE, inserts)
            conn.execute(
                "UPDATE folders SET total = total + ?, unread = unread + ? WHERE id = ?",
                (len(inserts), new_unread, folder.id),
            )
        if flag_updates:
            conn.executemany(
                "UPDATE messages SET flags = ?, keywords = ?, size = COALESCE(?, size), "
                "internaldate = COALESCE(?, internaldate) WHERE id = ?",
                flag_updates,
            )
        if body_updates:
            conn.executemany(_UPDATE_INDEXED, body_updates)
            conn.executemany("DELETE FROM messages_fts WHERE rowid = ?", [(i,) for i in reindexed])
        if fts:
            conn.executemany(_INSERT_FTS, fts)
        if addresses:
            conn.executemany(_UPSERT_ADDRESS, [tuple(v) for v in addresses.values()])
        return ids, unused

    @staticmethod
    def _count_address(
        acc: dict[str, list[Any]], addr: str, name: str, seen_at: int, sent_to: bool
    ) -> None:
        if not addr or "@" not in addr:
            return
        key = addr.casefold()
        entry = acc.get(key)
        if entry is None:
            acc[key] = [addr, name, seen_at, 1, int(sent_to)]
            return
        if name:
            entry[1] = name
        entry[2] = max(entry[2], seen_at)
        entry[3] += 1
        entry[4] = max(entry[4], int(sent_to))

    def set_body(self, message_id: int, raw: bytes) -> None:
        row = self._conn.execute(
            "SELECT folder_id, filename, flags, keywords FROM messages WHERE id = ?",
            (message_id,),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"No message with id {message_id} in the local store.")
        folder = self._folder(row[0])
        fdir = self._fdir(folder)
        flags = flags_from_columns(row[2], row[3])
        index = index_row(index_message(raw))
        base = maildir.deliver(fdir, raw, flags)
        maildir.sync_dirs(fdir)
        try:
            with self._write() as conn:
                # The row may have moved or gone meanwhile (another thread's store).
                now_row = conn.execute(
                    "SELECT folder_id, filename FROM messages WHERE id = ?", (message_id,)
                ).fetchone()
                if now_row is None or now_row[0] != folder.id:
                    raise NotFoundError(f"Message {message_id} moved or vanished meanwhile.")
                conn.execute(_UPDATE_INDEXED, (index.date_utc, *index.columns, base, message_id))
                conn.execute(
                    "UPDATE messages SET size = ? WHERE id = ? AND size = 0",
                    (len(raw), message_id),
                )
                conn.execute("DELETE FROM messages_fts WHERE rowid = ?", (message_id,))
                conn.execute(_INSERT_FTS, (message_id, *index.fts))
        except BaseException:
            maildir.remove(fdir, base, flags)
            raise
        if row[1] is not None and row[1] != base:
            maildir.remove(fdir, row[1], flags)

    def raw(self, message_id: int) -> bytes | None:
        row = self._conn.execute(
            "SELECT m.filename, m.flags, m.keywords, a.dir, f.dir FROM messages m "
            "JOIN folders f ON f.id = m.folder_id JOIN accounts a ON a.id = f.account_id "
            "WHERE m.id = ?",
            (message_id,),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"No message with id {message_id} in the local store.")
        if row[0] is None:
            return None
        path = maildir.locate(self._dir(row[3], row[4]), row[0], flags_from_columns(row[1], row[2]))
        if path is None:
            return None
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def uid_flags(self, folder_id: int) -> dict[int, Flags]:
        """Server UIDs known locally, including those a pending move is taking away
        (so a sync of the source folder does not fetch them back meanwhile)."""
        result = {
            uid: flags_from_columns(bits, kw)
            for uid, bits, kw in self._conn.execute(
                "SELECT uid, flags, keywords FROM messages WHERE folder_id = ? AND uid IS NOT NULL",
                (folder_id,),
            )
        }
        for uid, bits, kw in self._conn.execute(
            "SELECT o.uid, m.flags, m.keywords FROM pending_ops o "
            "JOIN messages m ON m.id = o.message_id "
            "WHERE o.folder_id = ? AND o.kind = 'move' AND o.uid IS NOT NULL",
            (folder_id,),
        ):
            result.setdefault(uid, flags_from_columns(bits, kw))
        return result

    def max_uid(self, folder_id: int) -> int:
        row = self._conn.execute(
            # `uid IS NOT NULL` lets SQLite use the partial (folder_id, uid) index.
            "SELECT MAX(x) FROM (SELECT MAX(uid) AS x FROM messages "
            "WHERE folder_id = ? AND uid IS NOT NULL "
            "UNION ALL SELECT MAX(uid) FROM pending_ops WHERE folder_id = ? AND kind = 'move')",
            (folder_id, folder_id),
        ).fetchone()
        return int(row[0] or 0)

    def message_ids_in(self, folder_id: int) -> set[str]:
        """The Message-ID headers of the folder's messages (to skip known ones)."""
        return {
            r[0]
            for r in self._conn.execute(
                "SELECT message_id FROM messages WHERE folder_id = ? AND message_id != ''",
                (folder_id,),
            )
        }

    def apply_server_flags(self, folder_id: int, changes: Mapping[int, Flags]) -> int:
        if not changes:
            return 0
        folder = self._folder(folder_id)
        renames: list[tuple[str, Flags, Flags]] = []
        changed = 0
        with self._write() as conn:
            existing = self._existing(conn, folder_id, list(changes))
            pending = self._pending_flag_changes(conn, [r[0] for r in existing.values()])
            updates: list[tuple[int, str, int]] = []
            for uid, (message_id, filename, bits, kw) in existing.items():
                flags = self._merge_local(changes[uid], pending.get(message_id))
                new_bits, new_kw = flags_to_columns(flags)
                if (new_bits, new_kw) == (bits, kw):
                    continue
                updates.append((new_bits, new_kw, message_id))
                if filename is not None:
                    renames.append((filename, flags_from_columns(bits, kw), flags))
            conn.executemany("UPDATE messages SET flags = ?, keywords = ? WHERE id = ?", updates)
            changed = len(updates)
        self._rename_all(self._fdir(folder), renames)
        return changed

    @staticmethod
    def _rename_all(fdir: Path, renames: Sequence[tuple[str, Flags, Flags]]) -> None:
        # After commit: a crash before a rename leaves an old info suffix, which `locate`
        # copes with; never a missing message.
        maildir.rename_all(fdir, renames)

    def remove_uids(self, folder_id: int, uids: Iterable[int]) -> int:
        folder = self._folder(folder_id)
        wanted = sorted(set(uids))
        files: list[tuple[str, Flags]] = []
        removed = 0
        with self._write() as conn:
            for chunk in _chunks(wanted):
                rows = conn.execute(
                    "SELECT id, filename, flags, keywords FROM messages "  # noqa: S608
                    f"WHERE folder_id = ? AND uid IN ({_marks(len(chunk))})",
                    (folder_id, *chunk),
                ).fetchall()
                ids = [(r[0],) for r in rows]
                files += [(r[1], flags_from_columns(r[2], r[3])) for r in rows if r[1]]
                # Ops on a message the server no longer has can only fail.
                conn.executemany(
                    "DELETE FROM pending_ops WHERE message_id = ? AND folder_id = ? "
                    "AND kind IN ('flags', 'expunge')",
                    [(i, folder_id) for (i,) in ids],
                )
                conn.executemany("DELETE FROM messages WHERE id = ?", ids)
                removed += len(ids)
        fdir = self._fdir(folder)
        for base, flags in files:
            maildir.remove(fdir, base, flags)
        return removed

    def assign_uid(self, message_id: int, uid: int) -> None:
        with self._write() as conn:
            row = conn.execute(
                "SELECT folder_id FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"No message with id {message_id} in the local store.")
            files = self._give_uid(conn, message_id, row[0], uid, after_op=0)
        self._finish_files(files)

    def _give_uid(
        self, conn: sqlite3.Connection, message_id: int, folder_id: int, uid: int, after_op: int
    ) -> list[tuple[Path, str, Flags]]:
        """The server says local message `message_id`, in `folder_id`, now has `uid`.

        The row takes it if it is still a placeholder there; later ops queued against the
        placeholder in that folder take it too (also when the row has moved on locally).
        If a sync already added that UID as its own row, the placeholder is redundant: its
        ops are pointed at the synced row and it goes. Returns files to unlink after commit.
        """
        files: list[tuple[Path, str, Flags]] = []
        row = conn.execute(
            "SELECT folder_id, uid, filename, flags, keywords FROM messages WHERE id = ?",
            (message_id,),
        ).fetchone()
        target = message_id
        if row is not None and row[0] == folder_id and row[1] is None:
            clash = conn.execute(
                "SELECT id FROM messages WHERE folder_id = ? AND uid = ?", (folder_id, uid)
            ).fetchone()
            if clash is None:
                conn.execute("UPDATE messages SET uid = ? WHERE id = ?", (uid, message_id))
            else:
                target = clash[0]
                conn.execute(
                    "UPDATE pending_ops SET message_id = ? WHERE message_id = ? AND folder_id = ?",
                    (target, message_id, folder_id),
                )
                conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))
                if row[2]:
                    fdir = self._fdir(self._folder(folder_id))
                    files.append((fdir, row[2], flags_from_columns(row[3], row[4])))
        conn.execute(
            "UPDATE pending_ops SET uid = ? WHERE message_id = ? AND folder_id = ? "
            "AND uid IS NULL AND id > ?",
            (uid, target, folder_id, after_op),
        )
        return files

    def messages_without_body(
        self, folder_id: int, since: datetime | None = None
    ) -> list[tuple[int, int]]:
        sql = (
            "SELECT id, uid FROM messages INDEXED BY messages_without_body "
            "WHERE folder_id = ? AND hidden = 0 AND filename IS NULL AND uid IS NOT NULL"
        )
        params: list[Any] = [folder_id]
        if since is not None:
            sql += " AND sort_date >= ?"
            params.append(epoch(since))
        sql += " ORDER BY sort_date DESC, id DESC"
        return [(r[0], r[1]) for r in self._q(sql, params)]

    # ------------------------------------------------------------------ reading

    def message(self, message_id: int) -> MessageSummary | None:
        row = self._conn.execute(
            f"SELECT {_SUMMARY_COLUMNS} FROM {_SUMMARY_FROM} WHERE m.id = ?",  # noqa: S608
            (message_id,),
        ).fetchone()
        return self._summary(row) if row else None

    @staticmethod
    def _in_folders(folder_id: int | Sequence[int]) -> tuple[str, list[int]]:
        """`folder_id = ?` or `folder_id IN (...)`, with its parameters."""
        if isinstance(folder_id, int):
            return "folder_id = ?", [folder_id]
        ids = list(dict.fromkeys(folder_id))
        if len(ids) == 1:
            return "folder_id = ?", ids
        return f"folder_id IN ({_marks(len(ids))})", ids

    def list_ids(
        self,
        folder_id: int | Sequence[int],
        sort: SortKey = SortKey.DATE,
        descending: bool = True,
        unread_only: bool = False,
        flagged_only: bool = False,
        limit: int | None = None,
    ) -> list[int]:
        """The folder's (or folders', in one order: the unified inbox) visible ids, sorted;
        only the first `limit` of them if given."""
        if not isinstance(folder_id, int) and not folder_id:
            return []
        direction = "DESC" if descending else "ASC"
        where, params = self._in_folders(folder_id)
        # Several folders: `+col` keeps SQLite off the all-folders date index (a scan of
        # every message in the store); it reads each folder's index range and sorts those.
        plus = "+" if len(params) > 1 else ""
        order = ", ".join(f"{plus}{col} {direction}" for col in _ORDER[SortKey(sort)])
        sql = f"SELECT id FROM messages WHERE {where} AND hidden = 0"  # noqa: S608
        if unread_only:
            sql += " AND flags & 1 = 0"
        if flagged_only:
            sql += " AND flags & 4 != 0"
        sql += f" ORDER BY {order}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [r[0] for r in self._conn.execute(sql, params)]

    def thread_rows(self, folder_id: int | Sequence[int]) -> list[ThreadRow]:
        """Only what threading needs, for every visible message of the folder(s), in no
        particular order: a few columns instead of whole summaries (~7x cheaper)."""
        if not isinstance(folder_id, int) and not folder_id:
            return []
        where, params = self._in_folders(folder_id)
        sql = (
            "SELECT id, thread_id, sort_date, message_id, in_reply_to, refs "  # noqa: S608
            f"FROM messages WHERE {where} AND hidden = 0"
        )
        return [
            (r[0], r[1], float(r[2]), r[3], r[4], r[5]) for r in self._conn.execute(sql, params)
        ]

    def thread_rows_of(self, ids: Sequence[int]) -> list[ThreadRow]:
        """`thread_rows` for the given messages (any folder), in no particular order;
        unknown ids are left out. For topping up rows already read, or search results."""
        rows: list[ThreadRow] = []
        for chunk in _chunks(list(ids)):
            sql = (
                "SELECT id, thread_id, sort_date, message_id, in_reply_to, refs "  # noqa: S608
                f"FROM messages WHERE id IN ({_marks(len(chunk))})"
            )
            rows += [
                (r[0], r[1], float(r[2]), r[3], r[4], r[5]) for r in self._conn.execute(sql, chunk)
            ]
        return rows

    def summaries(self, ids: Sequence[int]) -> list[MessageSummary]:
        by_id: dict[int, MessageSummary] = {}
        for chunk in _chunks(list(ids)):
            for row in self._conn.execute(
                f"SELECT {_SUMMARY_COLUMNS} FROM {_SUMMARY_FROM} "  # noqa: S608
                f"WHERE m.id IN ({_marks(len(chunk))})",
                chunk,
            ):
                by_id[row[0]] = self._summary(row)
        return [by_id[i] for i in ids if i in by_id]

    def list_messages(
        self,
        account: str | None = None,
        folder: str | None = None,
        unread_only: bool = False,
        limit: int | None = None,
    ) -> list[MessageSummary]:
        sql = f"SELECT {_SUMMARY_COLUMNS} FROM {_SUMMARY_FROM} WHERE m.hidden = 0"  # noqa: S608
        params: list[Any] = []
        if account is not None:
            sql += " AND a.name = ?"
            params.append(account)
        if folder is not None:
            sql += " AND f.name = ?"
            params.append(folder)
        if unread_only:
            sql += " AND m.flags & 1 = 0"
        sql += " ORDER BY m.sort_date DESC, m.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(0, limit))
        return [self._summary(r) for r in self._q(sql, params)]

    def search(self, text: str, limit: int | None = None) -> list[int]:
        from tuimail.store import query  # the query parser: only searches need it

        sql, params = query.to_sql(query.parse(text), limit)
        try:
            return [r[0] for r in self._conn.execute(sql, params)]
        except sqlite3.OperationalError as exc:
            # query.parse only emits quoted FTS strings, so this is not user syntax; still,
            # the contract is UsageError, never OperationalError.
            raise UsageError(
                f"Cannot search for {text!r}: {exc}.",
                "Bad search",
            ) from exc

    def known_addresses(self, prefix: str, limit: int = 20) -> list[Address]:
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._q(
            "SELECT addr, name FROM addresses WHERE addr LIKE ? ESCAPE '\\' "
            "OR name LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\' "
            "ORDER BY sent_to DESC, count DESC, last_seen DESC LIMIT ?",
            (pattern, pattern, "% " + pattern, limit),
        )
        return [Address(name, addr) for addr, name in rows]

    def address_seen(self, addr: str) -> bool:
        """Whether we ever wrote to `addr`, or got mail from it more than once (the
        message being looked at counts once, so a first-time sender is False)."""
        row = self._conn.execute(
            "SELECT count, sent_to FROM addresses WHERE addr = ?", (addr.strip(),)
        ).fetchone()
        return row is not None and (bool(row[1]) or row[0] >= 2)

    def correspondents(self, limit: int = 50_000) -> list[tuple[str, str]]:
        """(address, display name) of everyone `address_seen` knows, most frequent first:
        what the phishing signs compare a sender's name and domain with."""
        rows: list[tuple[str, str]] = self._q(
            "SELECT addr, name FROM addresses WHERE sent_to != 0 OR count >= 2 "
            "ORDER BY sent_to DESC, count DESC LIMIT ?",
            (limit,),
        )
        return rows

    # ------------------------------------------------------------------ local changes

    def _rows(self, conn: sqlite3.Connection, ids: Sequence[int]) -> list[_Row]:
        rows: list[_Row] = []
        for chunk in _chunks(list(dict.fromkeys(ids))):
            sql = (
                "SELECT id, folder_id, uid, flags, keywords, filename, hidden "  # noqa: S608
                f"FROM messages WHERE id IN ({_marks(len(chunk))}) ORDER BY id"
            )
            rows += [_Row(*r) for r in conn.execute(sql, chunk)]
        return rows

    def _queue(
        self,
        conn: sqlite3.Connection,
        kind: OpKind,
        folder: _Folder,
        uid: int | None,
        message_id: int | None,
        dest: _Folder | None = None,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
    ) -> int:
        cur = conn.execute(
            "INSERT INTO pending_ops (account_id, kind, folder_id, uid, message_id, "
            "dest_folder_id, add_flags, remove_flags, orig_uid, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                folder.account_id,
                kind,
                folder.id,
                uid,
                message_id,
                dest.id if dest else None,
                " ".join(sorted(add)),
                " ".join(sorted(remove)),
                uid,
                now(),
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def _queue_flags(
        self,
        conn: sqlite3.Connection,
        folder: _Folder,
        row: _Row,
        add: frozenset[str],
        remove: frozenset[str],
    ) -> None:
        """Queue a flag change, folding it into the message's last op if that is one too.

        The merged op replaces the old one under a new id instead of being edited in
        place: a worker replaying the old op meanwhile then completes an id that is gone,
        and the merged op (which restates every change) still runs after it.
        """
        last = conn.execute(
            "SELECT id, kind, folder_id, uid, add_flags, remove_flags FROM pending_ops "
            "WHERE message_id = ? ORDER BY id DESC LIMIT 1",
            (row.id,),
        ).fetchone()
        uid = row.uid
        if last is not None and last[1] == "flags" and last[2] == folder.id:
            old_add, old_remove = set(_split_flags(last[4])), set(_split_flags(last[5]))
            add, remove = (
                frozenset((old_add - remove) | add),
                frozenset((old_remove - add) | remove),
            )
            uid = uid if uid is not None else last[3]
            conn.execute("DELETE FROM pending_ops WHERE id = ?", (last[0],))
        self._queue(conn, "flags", folder, uid, row.id, add=add, remove=remove)

    def _folders_by_id(self) -> _FolderCache:
        return _FolderCache(self)

    def set_flags(
        self, ids: Sequence[int], add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> None:
        remove_set = frozenset(remove)
        add_set = frozenset(add) - remove_set  # as in Flags.with_changes: remove wins
        if not ids or not (add_set or remove_set):
            return
        folders = self._folders_by_id()
        renames: list[tuple[Path, str, Flags, Flags]] = []
        with self._write() as conn:
            for row in self._rows(conn, ids):
                old = flags_from_columns(row.flags, row.keywords)
                new = old.with_changes(add_set, remove_set)
                if new == old or row.hidden:
                    continue
                bits, keywords = flags_to_columns(new)
                conn.execute(
                    "UPDATE messages SET flags = ?, keywords = ? WHERE id = ?",
                    (bits, keywords, row.id),
                )
                folder = folders.get(row.folder_id)
                self._queue_flags(conn, folder, row, add_set, remove_set)
                if row.filename:
                    renames.append((self._fdir(folder), row.filename, old, new))
        for fdir, base, old, new in renames:
            with contextlib.suppress(OSError):
                maildir.rename_flags(fdir, base, old, new)

    def _check_same_account(
        self, rows: Sequence[_Row], dest: _Folder, folders: _FolderCache
    ) -> None:
        for row in rows:
            if folders.get(row.folder_id).account_id != dest.account_id:
                raise UnsupportedError(
                    f"Messages can only be moved or copied within one account "
                    f"(to {dest.account}/{dest.name}). Forward or re-send them instead."
                )

    def _move_rows(
        self,
        conn: sqlite3.Connection,
        rows: Sequence[_Row],
        dest: _Folder,
        folders: _FolderCache,
        after: list[tuple[Path, str, Flags]],
        linked: list[tuple[Path, str, Flags]],
    ) -> None:
        dest_dir = self._fdir(dest)
        for row in rows:
            if row.folder_id == dest.id or row.hidden:
                continue
            src = folders.get(row.folder_id)
            filename = row.filename
            if filename:
                flags = flags_from_columns(row.flags, row.keywords)
                src_dir = self._fdir(src)
                # Link first, unlink the old name after commit: a crash leaves an extra
                # copy, never none.
                if maildir.link_into(src_dir, dest_dir, filename, flags):
                    linked.append((dest_dir, filename, flags))
                    after.append((src_dir, filename, flags))
                else:
                    filename = None
            self._queue(conn, "move", src, row.uid, row.id, dest=dest)
            conn.execute(
                "UPDATE messages SET folder_id = ?, uid = NULL, filename = ? WHERE id = ?",
                (dest.id, filename, row.id),
            )
        if linked:
            maildir.sync_dirs(dest_dir)

    def _finish_files(self, unlink: Sequence[tuple[Path, str, Flags]]) -> None:
        dirs: set[Path] = set()
        for fdir, base, flags in unlink:
            with contextlib.suppress(OSError):
                maildir.remove(fdir, base, flags)
                dirs.add(fdir)
        for fdir in dirs:
            with contextlib.suppress(OSError):
                maildir.sync_dirs(fdir)

    def move(self, ids: Sequence[int], dest_folder_id: int) -> None:
        dest = self._folder(dest_folder_id)
        folders = self._folders_by_id()
        after: list[tuple[Path, str, Flags]] = []
        linked: list[tuple[Path, str, Flags]] = []
        try:
            with self._write() as conn:
                rows = self._rows(conn, ids)
                self._check_same_account(rows, dest, folders)
                self._move_rows(conn, rows, dest, folders, after, linked)
        except BaseException:
            self._finish_files(linked)
            raise
        self._finish_files(after)

    def copy(self, ids: Sequence[int], dest_folder_id: int) -> list[int]:
        dest = self._folder(dest_folder_id)
        dest_dir = self._fdir(dest)
        folders = self._folders_by_id()
        written: list[tuple[Path, str, Flags]] = []
        new_ids: list[int] = []
        try:
            with self._write() as conn:
                rows = self._rows(conn, ids)
                self._check_same_account(rows, dest, folders)
                for row in rows:
                    if row.hidden:
                        continue
                    src = folders.get(row.folder_id)
                    flags = flags_from_columns(row.flags, row.keywords)
                    base: str | None = None
                    if row.filename:
                        path = maildir.locate(self._fdir(src), row.filename, flags)
                        if path is not None:
                            # A file of its own (not a link): the copies live apart from now.
                            base = maildir.deliver(dest_dir, path.read_bytes(), flags)
                            written.append((dest_dir, base, flags))
                    cur = conn.execute(
                        "INSERT INTO messages (folder_id, uid, message_id, in_reply_to, refs, "
                        "thread_id, date_utc, date_offset, sort_date, from_name, from_addr, "
                        "sort_from, addrs, subject, sort_subject, flags, keywords, size, "
                        "has_attachments, preview, filename, internaldate, parse_warning) "
                        "SELECT ?, NULL, message_id, in_reply_to, refs, thread_id, date_utc, "
                        "date_offset, sort_date, from_name, from_addr, sort_from, addrs, "
                        "subject, sort_subject, flags, keywords, size, has_attachments, "
                        "preview, ?, internaldate, parse_warning FROM messages WHERE id = ?",
                        (dest.id, base, row.id),
                    )
                    new_id = cur.lastrowid
                    assert new_id is not None
                    conn.execute(
                        "UPDATE folders SET total = total + 1, unread = unread + ? WHERE id = ?",
                        (int(not row.flags & 1), dest.id),
                    )
                    conn.execute(
                        "INSERT INTO messages_fts (rowid, sender, recipients, cc, subject, body) "
                        "SELECT ?, sender, recipients, cc, subject, body FROM messages_fts "
                        "WHERE rowid = ?",
                        (new_id, row.id),
                    )
                    self._queue(conn, "copy", src, row.uid, new_id, dest=dest)
                    new_ids.append(new_id)
                if written:
                    maildir.sync_dirs(dest_dir)
        except BaseException:
            self._finish_files(written)
            raise
        return new_ids

    def delete(self, ids: Sequence[int]) -> None:
        folders = self._folders_by_id()
        after: list[tuple[Path, str, Flags]] = []
        linked: list[tuple[Path, str, Flags]] = []
        renames: list[tuple[Path, str, Flags, Flags]] = []
        try:
            with self._write() as conn:
                rows = [r for r in self._rows(conn, ids) if not r.hidden]
                by_account: dict[int, list[_Row]] = {}
                for row in rows:
                    by_account.setdefault(folders.get(row.folder_id).account_id, []).append(row)
                for account_id, group in by_account.items():
                    trash_row = conn.execute(
                        "SELECT id FROM folders WHERE account_id = ? AND role = ? "
                        "ORDER BY id LIMIT 1",
                        (account_id, FolderRole.TRASH.value),
                    ).fetchone()
                    trash = folders.get(trash_row[0]) if trash_row else None
                    to_trash = [r for r in group if trash and r.folder_id != trash.id]
                    if trash and to_trash:
                        self._move_rows(conn, to_trash, trash, folders, after, linked)
                    for row in group:
                        if trash and row.folder_id != trash.id:
                            continue
                        old = flags_from_columns(row.flags, row.keywords)
                        new = old.with_changes(add=("deleted",))
                        bits, keywords = flags_to_columns(new)
                        conn.execute(
                            "UPDATE messages SET flags = ?, keywords = ?, hidden = 1 WHERE id = ?",
                            (bits, keywords, row.id),
                        )
                        folder = folders.get(row.folder_id)
                        self._queue(conn, "expunge", folder, row.uid, row.id, add=("deleted",))
                        if row.filename:
                            renames.append((self._fdir(folder), row.filename, old, new))
        except BaseException:
            self._finish_files(linked)
            raise
        self._finish_files(after)
        for fdir, base, old, new in renames:
            with contextlib.suppress(OSError):
                maildir.rename_flags(fdir, base, old, new)

    def append_local(self, folder_id: int, raw: bytes, flags: Flags, *, remote: bool = True) -> int:
        """Store a new message (sent copy, draft) in the folder; with `remote`, also queue
        an APPEND so it reaches the server (the row is a placeholder until then)."""
        [message_id] = self._add(
            folder_id,
            [NewMessage(uid=None, flags=flags, size=len(raw), raw=raw, complete=True)],
            append_op=remote,
        )
        return message_id

    def pending_ops(self, account: str) -> list[PendingOp]:
        rows = self._q(
            "SELECT o.id, a.name, o.kind, f.name, "
            "COALESCE(o.uid, CASE WHEN o.kind IN ('flags', 'expunge', 'move') "
            "AND m.folder_id = o.folder_id THEN m.uid END), "
            "o.message_id, d.name, o.add_flags, o.remove_flags, o.attempts, o.last_error "
            "FROM pending_ops o JOIN accounts a ON a.id = o.account_id "
            "JOIN folders f ON f.id = o.folder_id "
            "LEFT JOIN folders d ON d.id = o.dest_folder_id "
            "LEFT JOIN messages m ON m.id = o.message_id "
            "WHERE a.name = ? ORDER BY o.id",
            (account,),
        )
        return [
            PendingOp(
                id=r[0],
                account=r[1],
                kind=r[2],
                folder=r[3],
                uid=r[4],
                message_id=r[5],
                dest_folder=r[6],
                add=_split_flags(r[7]),
                remove=_split_flags(r[8]),
                attempts=r[9],
                last_error=r[10],
            )
            for r in rows
        ]

    def complete_op(self, op_id: int, new_uid: int | None = None) -> None:
        """The op is done on the server. `new_uid`: the UID the server gave the message in
        the op's target folder (COPYUID/APPENDUID), handed on to the local placeholder and
        to later ops queued against it."""
        files: list[tuple[Path, str, Flags]] = []
        with self._write() as conn:
            op = conn.execute(
                "SELECT kind, folder_id, dest_folder_id, message_id FROM pending_ops WHERE id = ?",
                (op_id,),
            ).fetchone()
            if op is None:
                return  # replaced by a merged op meanwhile, or dropped
            kind, folder_id, dest_id, message_id = op
            conn.execute("DELETE FROM pending_ops WHERE id = ?", (op_id,))
            if message_id is None:
                return
            if new_uid is not None and kind in ("move", "copy", "append"):
                target = dest_id if kind in ("move", "copy") else folder_id
                files += self._give_uid(conn, message_id, target, new_uid, after_op=op_id)
            elif kind == "expunge":
                row = conn.execute(
                    "SELECT filename, flags, keywords FROM messages "
                    "WHERE id = ? AND folder_id = ? AND hidden = 1",
                    (message_id, folder_id),
                ).fetchone()
                if row is not None:
                    conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))
                    if row[0]:
                        folder = self._folder(folder_id)
                        files.append(
                            (self._fdir(folder), row[0], flags_from_columns(row[1], row[2]))
                        )
        self._finish_files(files)

    def fail_op(self, op_id: int, error: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE pending_ops SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                (error[:1000], op_id),
            )

    def drop_op(self, op_id: int, reason: str) -> None:
        """Give up an op; its local effect is undone where that is well defined (a move
        goes back, a copy vanishes, an expunge is un-hidden) so local and server agree."""
        folders = self._folders_by_id()
        after: list[tuple[Path, str, Flags]] = []
        linked: list[tuple[Path, str, Flags]] = []
        renames: list[tuple[Path, str, Flags, Flags]] = []
        with self._write() as conn:
            op = conn.execute(
                "SELECT kind, folder_id, dest_folder_id, message_id, orig_uid FROM pending_ops "
                "WHERE id = ?",
                (op_id,),
            ).fetchone()
            if op is None:
                return
            kind, folder_id, dest_id, message_id, orig_uid = op
            conn.execute("DELETE FROM pending_ops WHERE id = ?", (op_id,))
            _log.warning("dropped pending %s op %d: %s", kind, op_id, reason)
            later = conn.execute(
                "SELECT id, kind FROM pending_ops WHERE message_id = ? ORDER BY id", (message_id,)
            ).fetchall()
            rows = self._rows(conn, [message_id]) if message_id is not None else []
            if not rows:
                return
            if later and kind in ("move", "copy"):
                # The moved/copied message never got a server identity (its source is gone
                # on the server): later ops on it can never run. Drop them too, or the row
                # would stay a UID-less ghost with an op that waits forever.
                for later_id, later_kind in later:
                    conn.execute("DELETE FROM pending_ops WHERE id = ?", (later_id,))
                    _log.warning("dropped pending %s op %d: %s", later_kind, later_id, reason)
            elif later:
                return
            row = rows[0]
            # With later ops dropped, the row may have moved on past dest: undo from there.
            here = row.folder_id == dest_id or bool(later)
            if kind == "move" and here and row.uid is None:
                src = folders.get(folder_id)
                filename = row.filename
                # Moved on and back already (later ops dropped): the file is where it belongs.
                if filename and row.folder_id != folder_id:
                    flags = flags_from_columns(row.flags, row.keywords)
                    dest_dir = self._fdir(folders.get(row.folder_id))
                    if maildir.link_into(dest_dir, self._fdir(src), filename, flags):
                        linked.append((self._fdir(src), filename, flags))
                        after.append((dest_dir, filename, flags))
                    else:
                        filename = None
                clash = conn.execute(
                    "SELECT 1 FROM messages WHERE folder_id = ? AND uid = ?", (folder_id, orig_uid)
                ).fetchone()
                conn.execute(
                    "UPDATE messages SET folder_id = ?, uid = ?, filename = ? WHERE id = ?",
                    (folder_id, None if clash else orig_uid, filename, row.id),
                )
            elif kind == "copy" and here and row.uid is None:
                conn.execute("DELETE FROM messages WHERE id = ?", (row.id,))
                if row.filename:
                    after.append(
                        (
                            self._fdir(folders.get(row.folder_id)),
                            row.filename,
                            flags_from_columns(row.flags, row.keywords),
                        )
                    )
            elif kind == "expunge" and row.hidden:
                old = flags_from_columns(row.flags, row.keywords)
                new = old.with_changes(remove=("deleted",))
                bits, keywords = flags_to_columns(new)
                conn.execute(
                    "UPDATE messages SET hidden = 0, flags = ?, keywords = ? WHERE id = ?",
                    (bits, keywords, row.id),
                )
                if row.filename:
                    renames.append((self._fdir(folders.get(row.folder_id)), row.filename, old, new))
        self._finish_files(after)
        for fdir, base, old, new in renames:
            with contextlib.suppress(OSError):
                maildir.rename_flags(fdir, base, old, new)

    # ------------------------------------------------------------------ outbox

    def _outbox_path(self, item_id: int) -> Path:
        return checked_path(self.root / "outbox", f"{int(item_id)}.eml")

    def outbox_add(self, account: str, raw: bytes, sender: str, recipients: Sequence[str]) -> int:
        """Queue a message to send. Durable when this returns: file fsync'ed, row committed."""
        if not recipients:
            raise UsageError("A message to send needs at least one recipient.")
        env = index_headers(raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]).envelope
        outbox = self.root / "outbox"
        path: Path | None = None
        try:
            with self._write(durable=True) as conn:
                cur = conn.execute(
                    "INSERT INTO outbox (account, message_id, subject, sender, recipients, "
                    "created) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        account,
                        env.message_id,
                        env.subject,
                        sender,
                        json.dumps(list(recipients)),
                        now(),
                    ),
                )
                item_id = cur.lastrowid
                assert item_id is not None
                path = self._outbox_path(item_id)
                tmp = checked_path(outbox, f".{item_id}.tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with open(fd, "wb") as out:
                    out.write(raw)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, path)
                fsync_dir(outbox)
                seen = now()
                conn.executemany(
                    _UPSERT_ADDRESS,
                    [(r, "", seen, 1, 1) for r in dict.fromkeys(recipients) if "@" in r],
                )
        except BaseException:
            if path is not None:
                path.unlink(missing_ok=True)
            raise
        return item_id

    def outbox_items(self, account: str | None = None) -> list[OutboxItem]:
        sql = (
            "SELECT id, account, message_id, subject, sender, recipients, state, attempts, "
            "last_error, next_attempt, created FROM outbox"
        )
        params: tuple[str, ...] = ()
        if account is not None:
            sql += " WHERE account = ?"
            params = (account,)
        sql += " ORDER BY id"
        return [
            OutboxItem(
                id=r[0],
                account=r[1],
                message_id=r[2],
                subject=r[3],
                sender=r[4],
                recipients=tuple(json.loads(r[5])),
                state=r[6],
                attempts=r[7],
                last_error=r[8],
                next_attempt=from_epoch(r[9]),
                created=from_epoch(r[10]) or datetime.fromtimestamp(0, UTC),
            )
            for r in self._q(sql, params)
        ]

    def _outbox_state(self, item_id: int) -> OutboxState:
        row = self._conn.execute("SELECT state FROM outbox WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"No outbox item {item_id}.")
        state: OutboxState = row[0]
        return state

    def outbox_raw(self, item_id: int) -> bytes:
        self._outbox_state(item_id)
        try:
            return self._outbox_path(item_id).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"The file of outbox item {item_id} is missing.") from None

    def outbox_mark_attempt(self, item_id: int) -> None:
        """Claim a queued item for sending; durable before the caller sends DATA.

        Raises UsageError when the item is not queued: another process is sending it, it
        may already have been delivered ("uncertain"), or it failed for good.
        """
        with self._write(durable=True) as conn:
            cur = conn.execute(
                "UPDATE outbox SET state = 'sending', attempts = attempts + 1 "
                "WHERE id = ? AND state = 'queued'",
                (item_id,),
            )
            if cur.rowcount != 1:
                state = self._outbox_state(item_id)
                raise UsageError(
                    f"Outbox item {item_id} is {state}, not queued: not sending it "
                    "(release it first to send it again).",
                    "Not sending",
                )

    def outbox_mark_sent(self, item_id: int) -> None:
        with self._write(durable=True) as conn:
            conn.execute("DELETE FROM outbox WHERE id = ?", (item_id,))
        # The row goes first: a crash here leaves a stray file, never a row without one.
        self._outbox_path(item_id).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            fsync_dir(self.root / "outbox")

    def outbox_mark_failed(self, item_id: int, error: str, retry_at: datetime | None) -> None:
        with self._write(durable=True) as conn:
            conn.execute(
                "UPDATE outbox SET state = ?, last_error = ?, next_attempt = ? WHERE id = ?",
                ("queued" if retry_at else "failed", error[:1000], epoch(retry_at), item_id),
            )

    def outbox_recover(self) -> list[int]:
        with self._write(durable=True) as conn:
            ids = [
                r[0]
                for r in conn.execute("SELECT id FROM outbox WHERE state = 'sending' ORDER BY id")
            ]
            conn.execute("UPDATE outbox SET state = 'uncertain' WHERE state = 'sending'")
        return ids

    def outbox_release(self, item_id: int) -> None:
        with self._write(durable=True) as conn:
            cur = conn.execute(
                "UPDATE outbox SET state = 'queued', next_attempt = NULL WHERE id = ?",
                (item_id,),
            )
            if cur.rowcount != 1:
                raise NotFoundError(f"No outbox item {item_id}.")

    # ------------------------------------------------------------------ checks

    def integrity_check(self) -> list[str]:
        """Problems found: SQLite/FTS damage, missing Maildir or outbox files, counters off."""
        problems: list[str] = []
        for (line,) in self._q("PRAGMA integrity_check"):
            if line != "ok":
                problems.append(f"sqlite: {line}")
        try:
            self._conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
        except sqlite3.DatabaseError as exc:
            problems.append(f"fts: {exc}")
        n_messages = self._q("SELECT COUNT(*) FROM messages")[0][0]
        n_fts = self._q("SELECT COUNT(*) FROM messages_fts")[0][0]
        if n_messages != n_fts:
            problems.append(f"fts: {n_fts} index rows for {n_messages} messages")
        for fid, account, name, total, unread, real_total, real_unread in self._q(
            "SELECT f.id, a.name, f.name, f.total, f.unread, "
            "(SELECT COUNT(*) FROM messages m WHERE m.folder_id = f.id AND m.hidden = 0), "
            "(SELECT COUNT(*) FROM messages m WHERE m.folder_id = f.id AND m.hidden = 0 "
            "AND m.flags & 1 = 0) FROM folders f JOIN accounts a ON a.id = f.account_id"
        ):
            if (total, unread) != (real_total, real_unread):
                problems.append(
                    f"counters: {account}/{name} (folder {fid}) says {total} total/{unread} "
                    f"unread, has {real_total}/{real_unread}"
                )
        by_folder: dict[int, list[tuple[int, str]]] = {}
        for mid, fid, filename in self._q(
            "SELECT id, folder_id, filename FROM messages WHERE filename IS NOT NULL"
        ):
            by_folder.setdefault(fid, []).append((mid, filename))
        for fid, files in by_folder.items():
            fdir = self._fdir(self._folder(fid))
            bases: set[str] = set()
            for sub in ("cur", "new"):
                with contextlib.suppress(FileNotFoundError):
                    bases.update(maildir.base_of(n) for n in os.listdir(fdir / sub))
            for mid, filename in files:
                if filename not in bases:
                    problems.append(f"missing file: message {mid} ({fdir}/cur/{filename})")
        for (item_id,) in self._q("SELECT id FROM outbox"):
            if not self._outbox_path(item_id).exists():
                problems.append(f"missing file: outbox item {item_id}")
        return problems


class _Row(Frozen):
    __slots__ = ("filename", "flags", "folder_id", "hidden", "id", "keywords", "uid")
    id: int
    folder_id: int
    uid: int | None
    flags: int
    keywords: str
    filename: str | None
    hidden: int

    def __init__(
        self,
        id: int,
        folder_id: int,
        uid: int | None,
        flags: int,
        keywords: str,
        filename: str | None,
        hidden: int,
    ) -> None:
        _set(self, "id", id)
        _set(self, "folder_id", folder_id)
        _set(self, "uid", uid)
        _set(self, "flags", flags)
        _set(self, "keywords", keywords)
        _set(self, "filename", filename)
        _set(self, "hidden", hidden)


class _FolderCache:
    """Folder look-ups within one call (a move touches a handful of folders many times)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[int, _Folder] = {}

    def get(self, folder_id: int) -> _Folder:
        folder = self._cache.get(folder_id)
        if folder is None:
            folder = self._cache[folder_id] = self._store._folder(folder_id)
        return folder
