"""Random sequences of store operations keep the index, counters, FTS and files consistent."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from store_helpers import full_message, header_block

from tuimail.models import Flags, FolderInfo, FolderRole
from tuimail.store import NewMessage, Store
from tuimail.store.maildir import file_name
from tuimail.store.rows import flags_from_columns

FOLDERS = ("INBOX", "Archive", "Trash")
FLAG_NAMES = ("seen", "flagged", "answered", "$Label1")


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="store-sm-"))
        self.store = Store.open(self.tmp / "s")
        self.store.sync_folders(
            "a",
            [
                FolderInfo("INBOX", role=FolderRole.INBOX),
                FolderInfo("Archive"),
                FolderInfo("Trash", role=FolderRole.TRASH),
            ],
        )
        self.fids = {name: self.store.folder("a", name).id for name in FOLDERS}  # type: ignore[union-attr]
        self.next_uid = {name: 1 for name in FOLDERS}

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _ids(self) -> list[int]:
        return [i for fid in self.fids.values() for i in self.store.list_ids(fid)]

    @rule(
        folder=st.sampled_from(FOLDERS),
        n=st.integers(1, 4),
        complete=st.booleans(),
        seen=st.booleans(),
    )
    def add(self, folder: str, n: int, complete: bool, seen: bool) -> None:
        items = []
        for _ in range(n):
            uid = self.next_uid[folder]
            self.next_uid[folder] += 1
            raw = full_message(uid) if complete else header_block(uid)
            items.append(NewMessage(uid=uid, flags=Flags(seen=seen), raw=raw, complete=complete))
        self.store.add_messages(self.fids[folder], items)

    @rule(folder=st.sampled_from(FOLDERS), data=st.data())
    def server_flags(self, folder: str, data: st.DataObject) -> None:
        known = sorted(self.store.uid_flags(self.fids[folder]))
        if not known:
            return
        uids = data.draw(st.lists(st.sampled_from(known), max_size=3))
        flags = Flags(seen=data.draw(st.booleans()), flagged=data.draw(st.booleans()))
        self.store.apply_server_flags(self.fids[folder], {u: flags for u in uids})

    @rule(folder=st.sampled_from(FOLDERS), data=st.data())
    def server_expunge(self, folder: str, data: st.DataObject) -> None:
        known = sorted(self.store.uid_flags(self.fids[folder]))
        if known:
            self.store.remove_uids(self.fids[folder], data.draw(st.lists(st.sampled_from(known))))

    @rule(data=st.data())
    def set_flags(self, data: st.DataObject) -> None:
        ids = self._ids()
        if not ids:
            return
        chosen = data.draw(st.lists(st.sampled_from(ids), max_size=3))
        add = data.draw(st.lists(st.sampled_from(FLAG_NAMES), max_size=2))
        remove = data.draw(st.lists(st.sampled_from(FLAG_NAMES), max_size=2))
        self.store.set_flags(chosen, add=add, remove=remove)

    @rule(data=st.data(), dest=st.sampled_from(FOLDERS))
    def move(self, data: st.DataObject, dest: str) -> None:
        ids = self._ids()
        if ids:
            self.store.move(data.draw(st.lists(st.sampled_from(ids), max_size=3)), self.fids[dest])

    @rule(data=st.data(), dest=st.sampled_from(FOLDERS))
    def copy(self, data: st.DataObject, dest: str) -> None:
        ids = self._ids()
        if ids:
            self.store.copy(data.draw(st.lists(st.sampled_from(ids), max_size=2)), self.fids[dest])

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        ids = self._ids()
        if ids:
            self.store.delete(data.draw(st.lists(st.sampled_from(ids), max_size=3)))

    @rule(data=st.data(), how=st.sampled_from(["complete", "complete_uid", "fail", "drop"]))
    def replay(self, data: st.DataObject, how: str) -> None:
        ops = self.store.pending_ops("a")
        if not ops:
            return
        op = ops[0] if data.draw(st.booleans()) else data.draw(st.sampled_from(ops))
        if how == "complete":
            self.store.complete_op(op.id)
        elif how == "complete_uid":
            folder = op.dest_folder or op.folder
            uid = self.next_uid[folder]
            self.next_uid[folder] += 1
            self.store.complete_op(op.id, new_uid=uid)
        elif how == "fail":
            self.store.fail_op(op.id, "NO")
        else:
            self.store.drop_op(op.id, "test")

    @rule(folder=st.sampled_from(FOLDERS), data=st.data())
    def fetch_body(self, folder: str, data: st.DataObject) -> None:
        missing = self.store.messages_without_body(self.fids[folder])
        if missing:
            mid, uid = data.draw(st.sampled_from(missing))
            self.store.set_body(mid, full_message(uid))

    @rule(folder=st.sampled_from(FOLDERS), remote=st.booleans())
    def append(self, folder: str, remote: bool) -> None:
        self.store.append_local(
            self.fids[folder], full_message(999), Flags(seen=True), remote=remote
        )

    @rule(folder=st.sampled_from(FOLDERS))
    def reset(self, folder: str) -> None:
        self.store.reset_folder(self.fids[folder], 12345)

    @invariant()
    def consistent(self) -> None:
        assert self.store.integrity_check() == []

    @invariant()
    def files_match_flags(self) -> None:
        conn = self.store._conn
        rows = conn.execute(
            "SELECT m.filename, m.flags, m.keywords, f.name FROM messages m "
            "JOIN folders f ON f.id = m.folder_id WHERE m.filename IS NOT NULL"
        ).fetchall()
        expected = {
            (folder, file_name(base, flags_from_columns(bits, kw)))
            for base, bits, kw, folder in rows
        }
        on_disk = set()
        for folder in FOLDERS:
            cur = self.tmp / "s" / "maildir" / "a" / folder / "cur"
            if cur.exists():
                on_disk |= {(folder, name) for name in os.listdir(cur)}
        assert expected == on_disk  # no stray or missing file, info suffix = flags


StoreMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=20, deadline=None)
TestStoreMachine = StoreMachine.TestCase
