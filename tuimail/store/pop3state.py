"""POP3 download state: which messages (by UIDL or fingerprint "key") an account has stored.

POP3 has no folder state the store contract covers: a server's message numbers change
between sessions and only the UIDL identifies a message. The table (`pop3_uidls`) comes from a
migration in `schema.py`; this module adds three `Store` methods (mixed in):

- `pop3_seen(account) -> {key: downloaded_at}`
- `pop3_add(folder_id, [(key, NewMessage)], downloaded) -> [message id | None]`: stores
  the messages *and* records their keys in one durable transaction; a key already
  recorded (by an earlier run or by another process syncing the same account right now)
  is skipped, so a message is never stored twice.
- `pop3_forget(account, keys)`: drop records of messages deleted from the server.

A record outlives a local delete of its message on purpose (`message_id` is not a foreign
key): a message the user deleted locally must not come back on the next download.

Maildir files of a batch are written to `tmp/`, made durable together (one `syncfs` on
Linux instead of an fsync per file; fsync per file elsewhere), linked into `cur/`, the
names made durable, and then the index rows are committed with `synchronous = FULL`. Only
then may the caller DELE the messages on the server.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from tuimail.errors import StoreError
from tuimail.models import Flags
from tuimail.store import maildir
from tuimail.store.indexing import Indexed, index_message
from tuimail.store.types import NewMessage

if TYPE_CHECKING:
    from tuimail.store.store import _Folder

_CHUNK = 500


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


class _StoreCore(Protocol):
    """The parts of `Store` these methods build on."""

    _conn: sqlite3.Connection

    def _folder(self, folder_id: int) -> _Folder: ...

    def _fdir(self, folder: _Folder) -> Path: ...

    def _write(self, durable: bool = False) -> AbstractContextManager[sqlite3.Connection]: ...

    def _store_new(
        self,
        conn: sqlite3.Connection,
        folder: _Folder,
        items: Sequence[NewMessage],
        indexed: Sequence[Indexed],
        bases: Sequence[str | None],
    ) -> tuple[list[int], list[tuple[str, Flags]]]: ...


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):
        return None
    return func


_SYNCFS = _load_syncfs()


def _syncfs(directory: Path) -> bool:
    """Make every file and name on `directory`'s filesystem durable (Linux `syncfs`).

    One call replaces an fsync per file: on ext4 each fsync of a new file forces its own
    journal commit (milliseconds each on a busy disk), while syncfs commits once for the
    whole batch. False when unavailable: the caller fsyncs file by file instead.
    """
    if _SYNCFS is None:
        return False
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        if _SYNCFS(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs failed: {os.strerror(err)}", str(directory))
    finally:
        os.close(fd)
    return True


def deliver_batch(folder_dir: Path, items: Sequence[tuple[bytes, Flags]]) -> list[str]:
    """Write messages into `folder_dir/cur` the Maildir way; returns their base names.

    Same guarantees as `maildir.deliver`: a file appears in `cur/` only once its data is
    on disk (tmp/ with O_EXCL, flush, link into cur/), and the names in `cur/` are durable
    when this returns. The flushes are per batch (`_syncfs`), not per message, and the
    system calls go through directory descriptors (no path walk per file).
    """
    maildir.ensure(folder_dir)
    tmp_fd = os.open(folder_dir / "tmp", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    cur_fd = os.open(folder_dir / "cur", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    opened: list[tuple[int, str]] = []
    linked: list[tuple[str, Flags]] = []
    try:
        for raw, _flags in items:
            for _attempt in range(100):
                base = maildir.unique_name()
                try:
                    fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=tmp_fd)
                except FileExistsError:
                    continue
                opened.append((fd, base))
                view = memoryview(raw)
                while view:
                    view = view[os.write(fd, view) :]
                break
            else:
                raise StoreError(f"Could not find a unique Maildir file name in {folder_dir}.")
        batched = _syncfs(folder_dir)
        if not batched:
            for fd, _base in opened:
                os.fsync(fd)
        for (fd, base), (_raw, flags) in zip(opened, items, strict=True):
            os.close(fd)
            # link never overwrites: a name clash fails loudly instead of losing a file.
            os.link(base, maildir.file_name(base, flags), src_dir_fd=tmp_fd, dst_dir_fd=cur_fd)
            linked.append((base, flags))
            os.unlink(base, dir_fd=tmp_fd)
        opened.clear()
        if batched:
            _syncfs(folder_dir)
        else:
            os.fsync(cur_fd)
            os.fsync(tmp_fd)
    except BaseException:
        for fd, base in opened:
            with contextlib.suppress(OSError):
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(base, dir_fd=tmp_fd)
        for base, flags in linked:
            maildir.remove(folder_dir, base, flags)
        raise
    finally:
        os.close(tmp_fd)
        os.close(cur_fd)
    return [base for base, _ in linked]


def serve_indexing(stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
    """The POP3 engine's indexing helper (a child process): reads pickled lists of raw
    messages until EOF, writes the pickled list of their `index_message` for each."""
    source = stdin or sys.stdin.buffer
    sink = stdout or sys.stdout.buffer
    while True:
        try:
            raws: list[bytes] = pickle.load(source)  # noqa: S301 - from our own parent
        except EOFError:
            return
        pickle.dump([index_message(raw) for raw in raws], sink, pickle.HIGHEST_PROTOCOL)
        sink.flush()


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


class Pop3State:
    """Mixed into `Store`: POP3 key records (see the module docstring)."""

    def pop3_seen(self: _StoreCore, account: str) -> dict[str, datetime]:
        """Every key recorded for `account` -> when it was downloaded (UTC)."""
        rows = self._conn.execute(
            "SELECT p.uidl, p.downloaded FROM pop3_uidls p "
            "JOIN accounts a ON a.id = p.account_id WHERE a.name = ?",
            (account,),
        ).fetchall()
        return {key: datetime.fromtimestamp(when, UTC) for key, when in rows}

    @staticmethod
    def _pop3_known(conn: sqlite3.Connection, account_id: int, keys: Sequence[str]) -> set[str]:
        known: set[str] = set()
        unique = sorted(set(keys))
        for chunk in _chunks(unique):
            marks = ",".join("?" * len(chunk))
            known.update(
                row[0]
                for row in conn.execute(
                    f"SELECT uidl FROM pop3_uidls WHERE account_id = ? AND uidl IN ({marks})",  # noqa: S608
                    (account_id, *chunk),
                )
            )
        return known

    def pop3_add(
        self: _StoreCore,
        folder_id: int,
        items: Sequence[tuple[str, NewMessage]],
        downloaded: datetime,
        *,
        indexed: Sequence[Indexed] | None = None,
    ) -> list[int | None]:
        """Store complete messages downloaded over POP3 and record their keys, in one
        durable transaction. Returns, per item, the new local id, or None when its key was
        already recorded (the message is stored already: nothing is written).

        `indexed`, when given, is `index_message(raw)` of each item, computed elsewhere
        (the POP3 engine parses big downloads in a helper process, see `index_many`)."""
        if not items:
            return []
        if any(not message.complete for _, message in items):
            raise ValueError("pop3_add takes complete messages only")
        if indexed is not None and len(indexed) != len(items):
            raise ValueError("indexed must match items one to one")
        folder = self._folder(folder_id)
        fdir = self._fdir(folder)
        known = Pop3State._pop3_known(self._conn, folder.account_id, [k for k, _ in items])
        fresh: list[int] = []
        taken: set[str] = set()
        for i, (key, _message) in enumerate(items):
            if key not in known and key not in taken:
                taken.add(key)
                fresh.append(i)
        result: list[int | None] = [None] * len(items)
        if not fresh:
            return result
        # Parse and write outside the transaction: other processes keep writing meanwhile.
        if indexed is None:
            indexed = [index_message(items[i][1].raw) for i in fresh]
        else:
            indexed = [indexed[i] for i in fresh]
        bases = deliver_batch(fdir, [(items[i][1].raw, items[i][1].flags) for i in fresh])
        unused: list[tuple[str, Flags]] = []
        try:
            with self._write(durable=True) as conn:
                # Again under the write lock: another process may have stored some since.
                known = Pop3State._pop3_known(conn, folder.account_id, [items[i][0] for i in fresh])
                keep = [j for j, i in enumerate(fresh) if items[i][0] not in known]
                unused.extend(
                    (bases[j], items[fresh[j]][1].flags) for j in range(len(fresh)) if j not in keep
                )
                if keep:
                    top = conn.execute(
                        "SELECT COALESCE(MAX(uid), 0) FROM messages WHERE folder_id = ?",
                        (folder.id,),
                    ).fetchone()[0]
                    messages = [
                        replace(items[fresh[j]][1], uid=top + n + 1) for n, j in enumerate(keep)
                    ]
                    ids, not_needed = self._store_new(
                        conn,
                        folder,
                        messages,
                        [indexed[j] for j in keep],
                        [bases[j] for j in keep],
                    )
                    unused.extend(not_needed)
                    when = _epoch(downloaded)
                    rows: list[tuple[Any, ...]] = []
                    for n, (j, message_id) in enumerate(zip(keep, ids, strict=True)):
                        key = items[fresh[j]][0]
                        rows.append((folder.account_id, key, top + n + 1, message_id, when))
                        result[fresh[j]] = message_id
                    conn.executemany(
                        "INSERT INTO pop3_uidls (account_id, uidl, uid, message_id, downloaded) "
                        "VALUES (?, ?, ?, ?, ?)",
                        rows,
                    )
        except BaseException:
            for base, message in zip(bases, (items[i][1] for i in fresh), strict=True):
                maildir.remove(fdir, base, message.flags)
            raise
        for base, flags in unused:
            maildir.remove(fdir, base, flags)
        return result

    def pop3_forget(self: _StoreCore, account: str, keys: Iterable[str]) -> int:
        """Drop the records of `keys` (their messages are gone from the server, so a server
        that reuses a UIDL later gets its new message downloaded). Returns how many."""
        values = sorted(set(keys))
        if not values:
            return 0
        removed = 0
        with self._write() as conn:
            row = conn.execute("SELECT id FROM accounts WHERE name = ?", (account,)).fetchone()
            if row is None:
                return 0
            for chunk in _chunks(values):
                marks = ",".join("?" * len(chunk))
                cur = conn.execute(
                    f"DELETE FROM pop3_uidls WHERE account_id = ? AND uidl IN ({marks})",  # noqa: S608
                    (row[0], *chunk),
                )
                removed += cur.rowcount
        return removed
