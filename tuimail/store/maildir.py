"""Maildir files: delivery, flag renames, removal, and importing a plain Maildir.

The index stores each message's *base* name (the unique part before `:2,`); the file lives
at `cur/<base>:2,<FLAGS>`. If another program (mutt, notmuch) renamed it, `locate` finds it
again by its base name in `cur/` or `new/`, so a flag rename racing a crash never loses a
message.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tuimail.errors import StoreError
from tuimail.models import Flags, FolderInfo, FolderRole
from tuimail.store.paths import fsync_dir

if TYPE_CHECKING:
    from tuimail.store.store import Store

SUBDIRS = ("cur", "new", "tmp")

_counter = itertools.count(1)
_counter_lock = threading.Lock()
_HOST = re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname())[:64] or "localhost"


def unique_name() -> str:
    """`<time>.<pid>_<counter>.<host>`: unique per delivery, even between processes."""
    with _counter_lock:
        n = next(_counter)
    return f"{int(time.time())}.{os.getpid()}_{n}.{_HOST}"


def file_name(base: str, flags: Flags) -> str:
    return f"{base}:{flags.maildir_info()}"


def base_of(name: str) -> str:
    return name.split(":", 1)[0]


def ensure(folder_dir: Path) -> None:
    for sub in SUBDIRS:
        (folder_dir / sub).mkdir(parents=True, exist_ok=True, mode=0o700)


@functools.cache
def load_syncfs() -> Callable[[int], int] | None:
    # Looked up on first use: ctypes costs ~3 ms to import, and a small batch never needs it.
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        func = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int]
    func.restype = ctypes.c_int
    result: Callable[[int], int] = func
    return result


# One syncfs() makes a whole batch durable in about one journal commit (~20 ms for 250
# files here) where an fsync per file costs ~5 ms each. Small batches fsync their own files
# rather than flushing whatever else is dirty on the filesystem.
SYNCFS_MIN_FILES = 8


def _flush(directory: Path, fds: list[int]) -> None:
    """Make the data of the open files `fds` (all in `directory`) durable."""
    syncfs = load_syncfs() if len(fds) >= SYNCFS_MIN_FILES else None
    if syncfs is not None:
        dfd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            if syncfs(dfd) == 0:
                return
        finally:
            os.close(dfd)
    for fd in fds:
        os.fsync(fd)


def deliver_many(folder_dir: Path, items: Sequence[tuple[bytes, Flags]]) -> list[str]:
    """Write messages into `folder_dir/cur` the Maildir way; returns their base names.

    All go to tmp/ (O_EXCL), their data is made durable, then each is linked into cur/
    (a link never overwrites, unlike rename) and the tmp name removed. The caller makes
    the new names durable with `sync_dirs` before committing rows that point at them.
    """
    if not items:
        return []
    ensure(folder_dir)
    tmp_dir = folder_dir / "tmp"
    fds: list[int] = []
    tmps: list[tuple[str, Path]] = []
    try:
        for raw, _flags in items:
            for _attempt in range(100):
                base = unique_name()
                tmp = tmp_dir / base
                try:
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    continue
                break
            else:
                raise StoreError(f"Could not find a unique Maildir file name in {folder_dir}.")
            fds.append(fd)
            tmps.append((base, tmp))
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
        _flush(tmp_dir, fds)
    except BaseException:
        for _base, tmp in tmps:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        for fd in fds:
            os.close(fd)
    bases: list[str] = []
    try:
        for (base, tmp), (_raw, flags) in zip(tmps, items, strict=True):
            dest = folder_dir / "cur" / file_name(base, flags)
            try:
                os.link(tmp, dest)
                tmp.unlink()
            except FileExistsError:
                raise StoreError(f"Maildir name clash on {dest}.") from None
            except OSError:
                # Filesystems without hard links: rename, after checking nothing is there.
                if dest.exists():
                    raise StoreError(f"Maildir name clash on {dest}.") from None
                os.rename(tmp, dest)
            bases.append(base)
    except BaseException:
        for base, (_raw, flags) in zip(bases, items, strict=False):
            (folder_dir / "cur" / file_name(base, flags)).unlink(missing_ok=True)
        for _base, tmp in tmps:
            tmp.unlink(missing_ok=True)
        raise
    return bases


# The Maildir rule: a file left in tmp/ this long is debris from a delivery that died.
TMP_MAX_AGE = 36 * 3600


def clean_tmp(folder_dir: Path, now: float, max_age: float = TMP_MAX_AGE) -> int:
    """Remove files older than `max_age` seconds from `folder_dir/tmp` (what a killed
    download left there; nothing in tmp/ is ever indexed). Younger ones may belong to a
    delivery running right now in another process. Returns how many were removed."""
    removed = 0
    try:
        entries = list(os.scandir(folder_dir / "tmp"))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False) and now - entry.stat().st_mtime > max_age:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue  # gone meanwhile, or not ours to remove: leave it
    return removed


def deliver(folder_dir: Path, raw: bytes, flags: Flags) -> str:
    """`deliver_many` for one message."""
    return deliver_many(folder_dir, [(raw, flags)])[0]


def sync_dirs(folder_dir: Path) -> None:
    """fsync `cur/` and `tmp/` so new names (and removals) survive a crash."""
    for sub in ("cur", "tmp"):
        path = folder_dir / sub
        if path.is_dir():
            fsync_dir(path)


def locate(folder_dir: Path, base: str, flags: Flags) -> Path | None:
    """The file of `base`: where its flags say, else wherever a renamer put it."""
    expected = folder_dir / "cur" / file_name(base, flags)
    if expected.exists():
        return expected
    for sub in ("cur", "new"):
        directory = folder_dir / sub
        if not directory.is_dir():
            continue
        plain = directory / base
        if plain.exists():
            return plain
        prefix = base + ":"
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.startswith(prefix):
                    return Path(entry.path)
    return None


def rename_flags(folder_dir: Path, base: str, old: Flags, new: Flags) -> None:
    """Rename a file so its info suffix matches `new`; quiet when it is not there."""
    if old.maildir_info() == new.maildir_info():
        return
    src = locate(folder_dir, base, old)
    if src is None:
        return
    dest = folder_dir / "cur" / file_name(base, new)
    if src != dest:
        os.rename(src, dest)


def rename_all(folder_dir: Path, renames: Sequence[tuple[str, Flags, Flags]]) -> None:
    """`rename_flags` for many files of one folder: by name within `cur/` (no path walk,
    no look-up first), falling back to `rename_flags` for a file not where its old flags
    say. Quiet, like it, about files that are gone."""
    try:
        cur = os.open(folder_dir / "cur", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        for base, old, new in renames:
            src, dest = file_name(base, old), file_name(base, new)
            if src == dest:
                continue
            try:
                os.rename(src, dest, src_dir_fd=cur, dst_dir_fd=cur)
            except FileNotFoundError:
                with contextlib.suppress(OSError):
                    rename_flags(folder_dir, base, old, new)
            except OSError:
                continue
    finally:
        os.close(cur)


def link_into(src_dir: Path, dest_dir: Path, base: str, flags: Flags) -> bool:
    """Put a second name for the file into `dest_dir` (a move's first half). False if gone."""
    src = locate(src_dir, base, flags)
    if src is None:
        return False
    ensure(dest_dir)
    dest = dest_dir / "cur" / file_name(base, flags)
    try:
        os.link(src, dest)
    except FileExistsError:
        pass
    except OSError:
        data = src.read_bytes()
        tmp = dest_dir / "tmp" / base
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.rename(tmp, dest)
    return True


def remove(folder_dir: Path, base: str, flags: Flags) -> None:
    path = locate(folder_dir, base, flags)
    if path is not None:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------
# Importing a plain Maildir (mbsync, getmail, offlineimap, Dovecot's Maildir++)


class ImportResult:
    """What `import_maildir` did. (A plain class: a dataclass would cost every process
    that stores mail ~1 ms at import.)"""

    __slots__ = ("folders", "messages", "skipped")

    def __init__(self) -> None:
        self.folders: list[str] = []
        self.messages = 0
        self.skipped: list[str] = []  # files that could not be read

    def __repr__(self) -> str:
        return (
            f"ImportResult(folders={self.folders!r}, messages={self.messages!r}, "
            f"skipped={self.skipped!r})"
        )


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new"))


def find_folders(root: Path) -> list[tuple[str, Path]]:
    """(folder name, directory) of every Maildir under `root`.

    The root itself is INBOX; Maildir++ subfolders `.Sub.Folder` become `Sub/Folder`;
    plain nested directories (mbsync's `SubFolders Verbatim`) keep their relative path.
    Symlinks are not followed, so an import can never wander outside `root`.
    """
    found: list[tuple[str, Path]] = []
    if _is_maildir(root):
        found.append(("INBOX", root))

    def walk(directory: Path, prefix: str) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False) or entry.name in SUBDIRS:
                continue
            path = Path(entry.path)
            if entry.name.startswith("."):
                if prefix or entry.name in (".", ".."):
                    continue  # Maildir++ dot folders live only at the top level
                name = entry.name[1:].replace(".", "/")
                if name and _is_maildir(path):
                    found.append((name, path))
                continue
            name = f"{prefix}/{entry.name}" if prefix else entry.name
            if _is_maildir(path):
                found.append((name, path))
            walk(path, name)

    walk(root, "")
    return found


def _messages(folder_dir: Path) -> Iterator[tuple[Path, Flags]]:
    for sub in ("new", "cur"):
        directory = folder_dir / sub
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                info = entry.name.partition(":2,")[2] if sub == "cur" else ""
                yield Path(entry.path), Flags.from_maildir_info(info)


_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(?:\r?\n[ \t]+)?(<[^>\r\n]*>)", re.I | re.M)


def quick_message_id(raw: bytes) -> str:
    """The Message-ID of a raw message, cheaply (only to skip already imported files)."""
    head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    match = _MESSAGE_ID.search(head)
    return match.group(1).decode("ascii", "replace") if match else ""


def import_maildir(store: Store, account: str, path: Path, batch: int = 500) -> ImportResult:
    """Copy every message of the Maildir tree at `path` into `store` as local `account`.

    Flags come from the info suffix (`new/` means unseen); messages get local UIDs after
    the folder's highest. Importing again skips files whose Message-ID the folder already
    has (messages without a Message-ID would be imported twice).
    """
    from tuimail.store.types import NewMessage

    if not path.is_dir():
        raise StoreError(f"{path} is not a directory.")
    result = ImportResult()
    for name, directory in find_folders(path):
        role = _ROLES.get(name.lower(), FolderRole.NONE)
        folder = store.ensure_folder(account, FolderInfo(name=name, delimiter="/", role=role))
        result.folders.append(name)
        known = store.message_ids_in(folder.id)
        uid = store.max_uid(folder.id)
        pending: list[NewMessage] = []
        for file, flags in _messages(directory):
            try:
                raw = file.read_bytes()
                mtime = file.stat().st_mtime
            except OSError as exc:
                result.skipped.append(f"{file}: {exc.strerror}")
                continue
            mid = quick_message_id(raw)
            if mid and mid in known:
                continue
            known.add(mid)
            uid += 1
            internaldate = datetime.fromtimestamp(mtime, UTC)
            pending.append(
                NewMessage(
                    uid=uid,
                    flags=flags,
                    size=len(raw),
                    raw=raw,
                    complete=True,
                    internaldate=internaldate,
                )
            )
            if len(pending) >= batch:
                result.messages += len(store.add_messages(folder.id, pending))
                pending = []
        if pending:
            result.messages += len(store.add_messages(folder.id, pending))
    return result


_ROLES = {
    "inbox": FolderRole.INBOX,
    "sent": FolderRole.SENT,
    "sent items": FolderRole.SENT,
    "drafts": FolderRole.DRAFTS,
    "trash": FolderRole.TRASH,
    "deleted items": FolderRole.TRASH,
    "junk": FolderRole.JUNK,
    "spam": FolderRole.JUNK,
    "archive": FolderRole.ARCHIVE,
}
