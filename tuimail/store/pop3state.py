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
then may the caller DELE the messages on the server. (A download that leaves messages on
the server may commit without the fsync: see `pop3_add`.)
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from tuimail.errors import StoreError
from tuimail.models import Flags, Frozen
from tuimail.store import maildir
from tuimail.store.indexing import index_item, index_message
from tuimail.store.rows import IndexRow, index_row
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
        rows: Sequence[IndexRow],
        bases: Sequence[str | None],
    ) -> tuple[list[int], list[tuple[str, Flags]]]: ...


def _syncfs(directory: Path) -> bool:
    """Make every file and name on `directory`'s filesystem durable (Linux `syncfs`).

    One call replaces an fsync per file: on ext4 each fsync of a new file forces its own
    journal commit (milliseconds each on a busy disk), while syncfs commits once for the
    whole batch. False when unavailable: the caller fsyncs file by file instead.
    """
    syncfs = maildir.load_syncfs()
    if syncfs is None:
        return False
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        if syncfs(fd) != 0:
            import ctypes

            err = ctypes.get_errno()
            raise OSError(err, f"syncfs failed: {os.strerror(err)}", str(directory))
    finally:
        os.close(fd)
    return True


def _dir_fd(path: Path) -> int:
    return os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def write_tmp(folder_dir: Path, raws: Sequence[bytes]) -> list[str]:
    """Write messages into `folder_dir/tmp` (O_EXCL, unique names) and flush their data to
    disk, one flush per batch; returns their base names. `link_cur` publishes them."""
    maildir.ensure(folder_dir)
    tmp_fd = _dir_fd(folder_dir / "tmp")
    opened: list[tuple[int, str]] = []
    try:
        for raw in raws:
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
        if not _syncfs(folder_dir):
            for fd, _base in opened:
                os.fsync(fd)
    except BaseException:
        for _fd, base in opened:
            with contextlib.suppress(OSError):
                os.unlink(base, dir_fd=tmp_fd)
        raise
    finally:
        for fd, _base in opened:
            with contextlib.suppress(OSError):
                os.close(fd)
        os.close(tmp_fd)
    return [base for _fd, base in opened]


def link_cur(folder_dir: Path, items: Sequence[tuple[str, Flags]]) -> None:
    """Move files written by `write_tmp` into `cur/` with their flags, and make the new
    names durable. `link` never overwrites: a name clash fails loudly instead of losing a
    file. On failure the files already moved are moved back out of `cur/` (removed)."""
    tmp_fd = _dir_fd(folder_dir / "tmp")
    cur_fd = _dir_fd(folder_dir / "cur")
    linked: list[tuple[str, Flags]] = []
    try:
        for base, flags in items:
            os.link(base, maildir.file_name(base, flags), src_dir_fd=tmp_fd, dst_dir_fd=cur_fd)
            linked.append((base, flags))
            os.unlink(base, dir_fd=tmp_fd)
        if not _syncfs(folder_dir):
            os.fsync(cur_fd)
            os.fsync(tmp_fd)
    except BaseException:
        for base, flags in linked:
            maildir.remove(folder_dir, base, flags)
        raise
    finally:
        os.close(tmp_fd)
        os.close(cur_fd)


def discard_tmp(folder_dir: Path, bases: Iterable[str]) -> None:
    """Remove files `write_tmp` wrote that will not be published (best effort)."""
    for base in bases:
        with contextlib.suppress(OSError):
            (folder_dir / "tmp" / base).unlink()


def deliver_batch(folder_dir: Path, items: Sequence[tuple[bytes, Flags]]) -> list[str]:
    """Write messages into `folder_dir/cur` the Maildir way; returns their base names.

    Same guarantees as `maildir.deliver`: a file appears in `cur/` only once its data is
    on disk, and the names in `cur/` are durable when this returns; but the flushes are
    per batch (`_syncfs`), not per message, and the system calls go through directory
    descriptors (no path walk per file).
    """
    bases = write_tmp(folder_dir, [raw for raw, _ in items])
    try:
        link_cur(folder_dir, [(base, flags) for base, (_, flags) in zip(bases, items, strict=True)])
    except BaseException:
        discard_tmp(folder_dir, bases)
        raise
    return bases


class Prepared(Frozen):
    """A batch parsed (`rows`: `rows.index_row` of each item) and written to the folder's
    `tmp/` (`bases`), item by item, ready for `add_messages` or `pop3_add`; done by
    `prepare`, in the sync engines' helper process."""

    __slots__ = ("bases", "rows")
    rows: list[IndexRow]
    bases: list[str | None]  # None: a header block, no file

    def __init__(self, rows: list[IndexRow], bases: list[str | None]) -> None:
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "bases", bases)

    def files(self) -> list[str]:
        return [b for b in self.bases if b is not None]


def prepare(
    folder_dir: Path, raws: Sequence[bytes], complete: Sequence[bool] | None = None
) -> Prepared:
    """Parse a batch for the index and write its complete messages to `tmp/`. `complete`
    says which items are whole messages (default: all); the others are header blocks,
    indexed as such and given no file (base None)."""
    if complete is None:
        complete = [True] * len(raws)
    pairs = list(zip(raws, complete, strict=True))  # ValueError when they do not match
    rows = [index_row(index_item(raw, whole)) for raw, whole in pairs]
    written = iter(write_tmp(folder_dir, [raw for raw, whole in pairs if whole]))
    return Prepared(rows, [next(written) if whole else None for whole in complete])


def serve_prepare(stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
    """The sync engines' helper (a child process): reads pickled `(folder_dir, raws)` or
    `(folder_dir, raws, complete)` requests until EOF and answers each with a pickled
    `Prepared`, or with a string saying why it could not (the parent then does the batch itself)."""
    import pickle  # only the helper process needs it

    source = stdin or sys.stdin.buffer
    sink = stdout or sys.stdout.buffer
    while True:
        try:
            request = pickle.load(source)  # noqa: S301 - from our own parent
        except EOFError:
            return
        folder_dir, raws, complete = (*request, None)[:3]
        answer: Prepared | str
        try:
            answer = prepare(Path(folder_dir), raws, complete)
        except Exception as exc:  # reported to the parent, which falls back
            answer = f"{type(exc).__name__}: {exc}"
        pickle.dump(answer, sink, pickle.HIGHEST_PROTOCOL)
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
        prepared: Prepared | None = None,
        durable: bool = True,
    ) -> list[int | None]:
        """Store complete messages downloaded over POP3 and record their keys, in one
        transaction. Returns, per item, the new local id, or None when its key was
        already recorded (the message is stored already: nothing is kept).

        `durable` (the default) commits with `synchronous = FULL`: required before the
        messages may be deleted from the server. Without it (a download that leaves them
        there) a power cut can undo the last commits, messages and key records together,
        and the next sync downloads those messages again; the files are durable either way.

        `prepared`, when given, is the batch already parsed and written to `tmp/` by
        `prepare` (the POP3 engine does that in a helper process for big downloads); its
        files are published or removed here in every case."""
        if not items:
            return []
        if any(not message.complete for _, message in items):
            raise ValueError("pop3_add takes complete messages only")
        folder = self._folder(folder_id)
        fdir = self._fdir(folder)
        files: list[str] = []
        if prepared is not None:
            files = prepared.files()
            if not len(prepared.rows) == len(files) == len(items):
                discard_tmp(fdir, files)
                raise ValueError("prepared must match items one to one, each with its file")
        known = Pop3State._pop3_known(self._conn, folder.account_id, [k for k, _ in items])
        fresh: list[int] = []
        taken: set[str] = set()
        for i, (key, _message) in enumerate(items):
            if key not in known and key not in taken:
                taken.add(key)
                fresh.append(i)
        result: list[int | None] = [None] * len(items)
        if prepared is not None:
            fresh_set = set(fresh)
            discard_tmp(fdir, (b for i, b in enumerate(files) if i not in fresh_set))
        if not fresh:
            return result
        # Parse and write outside the transaction: other processes keep writing meanwhile.
        if prepared is None:
            rows = [index_row(index_message(items[i][1].raw)) for i in fresh]
            bases = deliver_batch(fdir, [(items[i][1].raw, items[i][1].flags) for i in fresh])
        else:
            rows = [prepared.rows[i] for i in fresh]
            bases = [files[i] for i in fresh]
            try:
                link_cur(fdir, [(bases[j], items[i][1].flags) for j, i in enumerate(fresh)])
            except BaseException:
                discard_tmp(fdir, bases)
                raise
        unused: list[tuple[str, Flags]] = []
        try:
            with self._write(durable=durable) as conn:
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
                        items[fresh[j]][1].with_uid(top + n + 1) for n, j in enumerate(keep)
                    ]
                    ids, not_needed = self._store_new(
                        conn,
                        folder,
                        messages,
                        [rows[j] for j in keep],
                        [bases[j] for j in keep],
                    )
                    unused.extend(not_needed)
                    when = _epoch(downloaded)
                    records: list[tuple[Any, ...]] = []
                    for n, (j, message_id) in enumerate(zip(keep, ids, strict=True)):
                        key = items[fresh[j]][0]
                        records.append((folder.account_id, key, top + n + 1, message_id, when))
                        result[fresh[j]] = message_id
                    conn.executemany(
                        "INSERT INTO pop3_uidls (account_id, uidl, uid, message_id, downloaded) "
                        "VALUES (?, ?, ?, ?, ?)",
                        records,
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
