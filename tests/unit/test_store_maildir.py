"""Maildir files: delivery, flag names, finding renamed files, importing a plain Maildir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from store_helpers import SEEN, full_message

from tuimail.errors import StoreError
from tuimail.models import Flags, FolderInfo, FolderRole
from tuimail.store import NewMessage, Store, maildir
from tuimail.store.maildir import find_folders, import_maildir, quick_message_id


def test_deliver_writes_cur_with_info_and_leaves_tmp_empty(tmp_path: Path) -> None:
    base = maildir.deliver(tmp_path, b"hello", Flags(seen=True, flagged=True))
    assert os.listdir(tmp_path / "tmp") == []
    assert os.listdir(tmp_path / "new") == []
    [name] = os.listdir(tmp_path / "cur")
    assert name == f"{base}:2,FS"
    assert (tmp_path / "cur" / name).read_bytes() == b"hello"
    assert oct((tmp_path / "cur" / name).stat().st_mode & 0o777) == "0o600"
    host = base.rsplit(".", 1)[1]
    assert host and all(c.isalnum() or c in "-_" for c in host)


@pytest.mark.parametrize("n", [1, 3, maildir.SYNCFS_MIN_FILES, 40])
def test_deliver_many(tmp_path: Path, n: int) -> None:
    items = [(f"message {i}".encode(), Flags(seen=i % 2 == 0)) for i in range(n)]
    bases = maildir.deliver_many(tmp_path, items)
    assert len(set(bases)) == n
    assert os.listdir(tmp_path / "tmp") == []
    for base, (raw, flags) in zip(bases, items, strict=True):
        assert (tmp_path / "cur" / maildir.file_name(base, flags)).read_bytes() == raw


def test_unique_names_do_not_repeat() -> None:
    names = {maildir.unique_name() for _ in range(1000)}
    assert len(names) == 1000


def test_rename_flags_and_locate_after_foreign_rename(tmp_path: Path) -> None:
    base = maildir.deliver(tmp_path, b"x", Flags())
    maildir.rename_flags(tmp_path, base, Flags(), Flags(seen=True))
    assert os.listdir(tmp_path / "cur") == [f"{base}:2,S"]
    # mutt marks it replied behind our back: we still find it by its base name
    os.rename(tmp_path / "cur" / f"{base}:2,S", tmp_path / "cur" / f"{base}:2,RS")
    found = maildir.locate(tmp_path, base, Flags(seen=True))
    assert found == tmp_path / "cur" / f"{base}:2,RS"
    maildir.remove(tmp_path, base, Flags(seen=True))
    assert os.listdir(tmp_path / "cur") == []
    assert maildir.locate(tmp_path, base, Flags()) is None


def test_store_raw_survives_foreign_flag_rename(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s") as store:
        folder = store.ensure_folder("a", FolderInfo("INBOX"))
        [mid] = store.add_messages(
            folder.id, [NewMessage(uid=1, raw=full_message(1), complete=True)]
        )
        cur = tmp_path / "s" / "maildir" / "a" / "INBOX" / "cur"
        [name] = os.listdir(cur)
        os.rename(cur / name, cur / (name.split(":")[0] + ":2,RS"))
        assert store.raw(mid) == full_message(1)
        assert store.integrity_check() == []
        store.set_flags([mid], add=["flagged"])
        assert store.raw(mid) == full_message(1)


def test_integrity_check_reports_missing_file_and_bad_counters(tmp_path: Path) -> None:
    import sqlite3

    with Store.open(tmp_path / "s") as store:
        folder = store.ensure_folder("a", FolderInfo("INBOX"))
        store.add_messages(folder.id, [NewMessage(uid=1, raw=full_message(1), complete=True)])
        cur = tmp_path / "s" / "maildir" / "a" / "INBOX" / "cur"
        for name in os.listdir(cur):
            os.unlink(cur / name)
        conn = sqlite3.connect(tmp_path / "s" / "index.sqlite3")
        conn.execute("UPDATE folders SET unread = 5")
        conn.commit()
        conn.close()
        problems = store.integrity_check()
        assert any(p.startswith("missing file: message") for p in problems)
        assert any(p.startswith("counters: a/INBOX") for p in problems)


# ----------------------------------------------------------------------------- import


def make_maildir(path: Path, messages: dict[str, bytes]) -> None:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    for name, raw in messages.items():
        (path / name).write_bytes(raw)


def test_find_folders_maildirplusplus_and_nested(tmp_path: Path) -> None:
    root = tmp_path / "Mail"
    make_maildir(root, {})
    make_maildir(root / ".Sent", {})
    make_maildir(root / ".Lists.python", {})
    make_maildir(root / "Archive", {})
    make_maildir(root / "Archive" / "2023", {})
    (root / "notes").mkdir()  # not a Maildir: skipped, but searched below
    make_maildir(root / "notes" / "work", {})
    (root / "escape").symlink_to(tmp_path)  # never followed
    names = [name for name, _ in find_folders(root)]
    assert names == ["INBOX", "Lists/python", "Sent", "Archive", "Archive/2023", "notes/work"]


def test_import_maildir(tmp_path: Path) -> None:
    src = tmp_path / "Mail"
    make_maildir(
        src,
        {
            "new/1700000000.1.host": full_message(1),
            "cur/1700000001.2.host:2,FS": full_message(2),
            "cur/.hidden": b"not mail",
        },
    )
    make_maildir(src / ".Trash", {"cur/1700000002.3.host:2,ST": full_message(3)})
    with Store.open(tmp_path / "s") as store:
        result = import_maildir(store, "local", src)
        assert result.folders == ["INBOX", "Trash"]
        assert result.messages == 3
        inbox = store.folder("local", "INBOX")
        trash = store.folder("local", "Trash")
        assert inbox is not None and trash is not None
        assert trash.role is FolderRole.TRASH and inbox.role is FolderRole.INBOX
        assert (inbox.total, inbox.unread) == (2, 1)
        flags = sorted(store.uid_flags(inbox.id).values(), key=lambda f: f.seen)
        assert flags == [Flags(), Flags(seen=True, flagged=True)]
        assert store.uid_flags(trash.id) == {1: Flags(seen=True, deleted=True)}
        ids = store.list_ids(inbox.id)
        assert sorted(store.raw(i) or b"" for i in ids) == sorted(
            [full_message(1), full_message(2)]
        )
        # the source is left alone
        assert (src / "new" / "1700000000.1.host").exists()
        # again: nothing new
        again = import_maildir(store, "local", src)
        assert again.messages == 0
        (src / "new" / "1700000009.9.host").write_bytes(full_message(9))
        assert import_maildir(store, "local", src).messages == 1
        assert store.integrity_check() == []


def test_import_refuses_non_directory(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s") as store, pytest.raises(StoreError):
        import_maildir(store, "local", tmp_path / "nope")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Message-ID: <a@b>\r\n\r\nbody", "<a@b>"),
        (b"Subject: x\nmessage-id:\n <folded@x>\n\nbody", "<folded@x>"),
        (b"Subject: x\r\n\r\nMessage-ID: <in-body@x>\r\n", ""),
        (b"", ""),
    ],
)
def test_quick_message_id(raw: bytes, expected: str) -> None:
    assert quick_message_id(raw) == expected


def test_seen_constant_is_seen() -> None:
    assert SEEN.seen


def test_clean_tmp_removes_only_old_files(tmp_path: Path) -> None:
    assert maildir.clean_tmp(tmp_path / "missing", now=1e9) == 0
    maildir.ensure(tmp_path)
    tmp = tmp_path / "tmp"
    for name, age in (("old", 37 * 3600), ("young", 35 * 3600)):
        (tmp / name).write_bytes(b"x")
        os.utime(tmp / name, (1e9 - age, 1e9 - age))
    (tmp / "a-dir").mkdir()
    os.utime(tmp / "a-dir", (0, 0))
    (tmp_path / "cur" / "old-but-delivered").write_bytes(b"x")
    os.utime(tmp_path / "cur" / "old-but-delivered", (0, 0))
    assert maildir.clean_tmp(tmp_path, now=1e9) == 1
    assert sorted(os.listdir(tmp)) == ["a-dir", "young"]
    assert os.listdir(tmp_path / "cur") == ["old-but-delivered"]


def test_rename_all_renames_by_name_and_finds_moved_files(tmp_path: Path) -> None:
    plain, moved, gone = (maildir.deliver(tmp_path, b"m%d" % i, Flags()) for i in range(3))
    # another program marked `moved` seen, and `gone` was deleted
    os.rename(tmp_path / "cur" / f"{moved}:2,", tmp_path / "cur" / f"{moved}:2,S")
    os.unlink(tmp_path / "cur" / f"{gone}:2,")
    flagged = Flags(flagged=True)
    maildir.rename_all(tmp_path, [(b, Flags(), flagged) for b in (plain, moved, gone)])
    assert sorted(os.listdir(tmp_path / "cur")) == sorted([f"{plain}:2,F", f"{moved}:2,F"])
    maildir.rename_all(tmp_path / "missing", [(plain, flagged, Flags())])  # quiet
