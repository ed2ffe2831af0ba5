"""Two processes (the app and a cron sync) writing the same store at once."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

from store_helpers import full_message, header_block

from tuimail.models import Flags, FolderInfo, FolderRole
from tuimail.store import NewMessage, Store

BATCHES = 20
PER_BATCH = 50
FIRST = 200


def _adder(root: str, start: int) -> None:
    with Store.open(Path(root)) as store:
        folder = store.folder("acct", "INBOX")
        assert folder is not None
        uid = start
        for b in range(BATCHES):
            items = []
            for _ in range(PER_BATCH):
                uid += 1
                complete = uid % 5 == 0
                raw = full_message(uid) if complete else header_block(uid)
                items.append(NewMessage(uid=uid, flags=Flags(), raw=raw, complete=complete))
            store.add_messages(folder.id, items)
            if b % 5 == 0:
                store.apply_server_flags(folder.id, {uid: Flags(seen=True)})


def _flagger(root: str, rounds: int) -> None:
    with Store.open(Path(root)) as store:
        folder = store.folder("acct", "INBOX")
        archive = store.folder("acct", "Archive")
        assert folder is not None and archive is not None
        ids = store.list_ids(folder.id)[:FIRST]
        for r in range(rounds):
            chunk = ids[(r * 10) % FIRST : (r * 10) % FIRST + 10]
            store.set_flags(
                chunk, add=["seen"] if r % 2 == 0 else [], remove=[] if r % 2 == 0 else ["seen"]
            )
            store.set_flags(chunk[:3], add=["flagged"])
            if r % 7 == 0:
                store.move(chunk[-2:], archive.id)


def test_two_processes_writing_at_once(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with Store.open(root) as store:
        store.sync_folders(
            "acct",
            [
                FolderInfo("INBOX", role=FolderRole.INBOX),
                FolderInfo("Archive", role=FolderRole.ARCHIVE),
            ],
        )
        folder = store.folder("acct", "INBOX")
        assert folder is not None
        store.add_messages(
            folder.id,
            [NewMessage(uid=u, raw=full_message(u), complete=True) for u in range(1, FIRST + 1)],
        )
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_adder, args=(str(root), FIRST)),
        ctx.Process(target=_flagger, args=(str(root), 60)),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with Store.open(root) as store:
        assert store.integrity_check() == []
        inbox = store.folder("acct", "INBOX")
        archive = store.folder("acct", "Archive")
        assert inbox is not None and archive is not None
        assert inbox.total + archive.total == FIRST + BATCHES * PER_BATCH
        assert len(store.list_ids(inbox.id)) == inbox.total
        assert len(store.list_ids(inbox.id, unread_only=True)) == inbox.unread
        assert archive.total > 0
        assert store.uid_flags(inbox.id).keys() >= set(
            range(FIRST + 1, FIRST + BATCHES * PER_BATCH + 1)
        )


def test_threads_each_with_their_own_store(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with Store.open(root) as store:
        inbox = store.ensure_folder("acct", FolderInfo("INBOX")).id
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            with Store.open(root) as s:
                for i in range(10):
                    uid = offset + i
                    s.add_messages(inbox, [NewMessage(uid=uid, raw=header_block(uid))])
                    s.set_flags(s.list_ids(inbox)[:5], add=["seen"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Store.open(root) as store:
        assert store.folder_by_id(inbox).total == 40
        assert store.integrity_check() == []
