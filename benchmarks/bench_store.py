"""Store at scale: a 100,000-message folder built from synthetic header blocks.

    python benchmarks/bench_store.py [--messages 100000] [--batch 50000] [--dir DIR]

Prints the add_messages rate, list_ids / summaries(60) / search / re-sort times (median of
several runs) and the database size.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tuimail.models import Flags, FolderInfo, FolderRole
from tuimail.store import NewMessage, SortKey, Store

WORDS = [
    "invoice",
    "meeting",
    "report",
    "budget",
    "release",
    "patch",
    "review",
    "lunch",
    "travel",
    "quarterly",
    "update",
    "server",
    "backup",
    "deploy",
    "question",
    "answer",
    "draft",
    "contract",
    "holiday",
    "schedule",
    "agenda",
    "notes",
    "security",
    "alert",
    "password",
    "reset",
    "newsletter",
    "offer",
    "welcome",
    "thanks",
    "urgent",
    "reminder",
]
NAMES = [
    "Alice",
    "Bob",
    "Carol",
    "Dave",
    "Erin",
    "Frank",
    "Grace",
    "Heidi",
    "Ivan",
    "Judy",
    "Mallory",
    "Niaj",
    "Olivia",
    "Peggy",
]


def header_block(n: int, rng: random.Random) -> bytes:
    name = rng.choice(NAMES)
    sender = f"{name} {rng.choice(NAMES)}son <{name.lower()}{n % 5000}@example{n % 37}.com>"
    subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8)))
    if rng.random() < 0.3:
        subject = "Re: " + subject
    offset = timedelta(minutes=rng.choice((-480, -300, 0, 60, 120, 330, 540)))
    date = datetime(2015, 1, 1, tzinfo=UTC) + timedelta(seconds=n * 3000 + rng.randint(0, 2000))
    date = date.astimezone(__import__("datetime").timezone(offset))
    lines = [
        f"From: {sender}",
        "To: Me Myself <me@example.org>",
        f"Subject: {subject}",
        f"Date: {format_datetime(date)}",
        f"Message-ID: <{n}.{rng.randrange(1 << 30)}@example.com>",
        "Content-Type: text/plain; charset=utf-8",
    ]
    if rng.random() < 0.5:
        lines.append(f"In-Reply-To: <{max(1, n - rng.randint(1, 50))}.1@example.com>")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def timed(fn: Callable[[], object], runs: int = 7) -> tuple[float, object]:
    times: list[float] = []
    result: object = None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-store-")) / "store"
    rng = random.Random(42)

    t0 = time.perf_counter()
    blocks = [header_block(n, rng) for n in range(1, args.messages + 1)]
    flags = [Flags(seen=rng.random() < 0.8, flagged=rng.random() < 0.02) for _ in blocks]
    print(f"generated {len(blocks)} header blocks in {time.perf_counter() - t0:.2f} s")

    with Store.open(root) as store:
        folder = store.ensure_folder("bench", FolderInfo("INBOX", role=FolderRole.INBOX))
        add_total = 0.0
        for start in range(0, len(blocks), args.batch):
            items = [
                NewMessage(uid=i + 1, flags=flags[i], size=2000 + i % 50000, raw=blocks[i])
                for i in range(start, min(start + args.batch, len(blocks)))
            ]
            t, cpu = time.perf_counter(), time.process_time()
            store.add_messages(folder.id, items)
            elapsed = time.perf_counter() - t
            cpu = time.process_time() - cpu
            add_total += elapsed
            print(
                f"add_messages: {len(items)} header-only in {elapsed:.2f} s "
                f"({len(items) / elapsed:,.0f} msg/s; CPU {cpu:.2f} s)"
            )
        print(f"add_messages total: {len(blocks) / add_total:,.0f} msg/s")

        other = store.ensure_folder("bench", FolderInfo("Bodies"))
        body = b"Hello,\r\n\r\n" + b"Some body text with words to index. " * 100 + b"\r\n"
        full = [
            NewMessage(uid=i + 1, flags=flags[i], raw=blocks[i] + body, complete=True)
            for i in range(1000)
        ]
        t = time.perf_counter()
        for start in range(0, len(full), 250):
            store.add_messages(other.id, full[start : start + 250])
        elapsed = time.perf_counter() - t
        print(
            f"add_messages: 1000 complete (~4 KB, Maildir files fsync'ed) in {elapsed:.2f} s "
            f"({1000 / elapsed:,.0f} msg/s)"
        )

        t = time.perf_counter()
        again = [NewMessage(uid=i + 1, flags=flags[i], size=0, raw=blocks[i]) for i in range(500)]
        store.add_messages(folder.id, again)
        print(f"re-add 500 known uids (idempotent): {(time.perf_counter() - t) * 1000:.1f} ms")

        ms, ids = timed(lambda: store.list_ids(folder.id))
        assert isinstance(ids, list)
        print(f"list_ids ({len(ids)} rows, by date): {ms:.1f} ms")
        ms, _ = timed(lambda: store.list_ids(folder.id, unread_only=True))
        print(f"list_ids unread only: {ms:.1f} ms")
        for key in (SortKey.FROM, SortKey.SUBJECT, SortKey.SIZE):
            ms, _ = timed(lambda key=key: store.list_ids(folder.id, sort=key, descending=False))
            print(f"re-sort by {key.value}: {ms:.1f} ms")
        ms, both = timed(lambda: store.list_ids([folder.id, other.id]))
        assert isinstance(both, list)
        print(f"list_ids of two folders in one order ({len(both)} rows): {ms:.1f} ms")
        ms, rows = timed(lambda: store.thread_rows(folder.id), runs=3)
        assert isinstance(rows, list)
        print(f"thread_rows ({len(rows)} rows): {ms:.1f} ms")
        middle = ids[len(ids) // 2 : len(ids) // 2 + 60]
        ms, _ = timed(lambda: store.summaries(middle), runs=21)
        print(f"summaries(60): {ms:.2f} ms")
        for q in (
            "invoice",
            "from:alice",
            "budget review",
            '"quarterly update"',
            "secur*",
            "subject:urgent is:unread",
            "after:2020-01-01 deploy",
        ):
            ms, hits = timed(lambda q=q: store.search(q))
            assert isinstance(hits, list)
            print(f"search {q!r}: {ms:.1f} ms ({len(hits)} hits)")
            ms, hits = timed(lambda q=q: store.search(q, limit=200))
            print(f"search {q!r} limit 200: {ms:.1f} ms")
        folder_row = store.folder_by_id(folder.id)
        print(f"counters: total {folder_row.total}, unread {folder_row.unread}")
        ms, uf = timed(lambda: store.uid_flags(folder.id), runs=3)
        print(f"uid_flags ({len(uf)}): {ms:.1f} ms")  # type: ignore[arg-type]

    size = sum(p.stat().st_size for p in root.glob("index.sqlite3*"))
    print(f"DB size: {size / 1e6:.1f} MB ({size / len(blocks):.0f} bytes/message) in {root}")


if __name__ == "__main__":
    main()
