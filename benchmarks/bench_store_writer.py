"""The floor of a first sync: what the store's single SQLite writer alone costs.

    python benchmarks/bench_store_writer.py [--n 50000] [--headers]

Generates the IMAP benchmark's messages (bench_imap_sync.py, same seed), parses them and
computes their index rows first (untimed: in a sync the helper process does that), then
times only the writing: message rows, indexes and FTS text committed in batches of 1,000
into a fresh store, with no network, no parsing and no Maildir files. SQLite allows one
writer, so no sync that indexes every message before moving on can be faster than this
(plus reading the server's stream in the same process).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from bench_imap_sync import Generator  # noqa: E402

from tuimail.models import Flags, FolderInfo, FolderRole  # noqa: E402
from tuimail.store import NewMessage, Store  # noqa: E402
from tuimail.store.indexing import index_item  # noqa: E402
from tuimail.store.rows import index_row  # noqa: E402

BATCH = 1000


def header_block(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    return raw if end < 0 else raw[: end + 4]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--headers", action="store_true", help="header blocks only")
    args = parser.parse_args()
    complete = not args.headers
    gen = Generator.make(1)
    raws = [gen.message(i, 1.7e9 + i * 60) for i in range(args.n)]
    if not complete:
        raws = [header_block(raw) for raw in raws]
    rows = [index_row(index_item(raw, complete)) for raw in raws]
    items = [
        NewMessage(i + 1, Flags(), len(raw), None, raw, complete) for i, raw in enumerate(raws)
    ]
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp)) as store:
        folder_id = store.ensure_folder("bench", FolderInfo("INBOX", role=FolderRole.INBOX)).id
        folder = store._folder(folder_id)
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, args.n, BATCH):
            batch = items[start : start + BATCH]
            with store._write() as conn:
                store._store_new(
                    conn, folder, batch, rows[start : start + BATCH], [None] * len(batch)
                )
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    what = "header blocks" if args.headers else "whole messages"
    print(f"store writer alone, {args.n:,} {what}: {cpu:.2f} s CPU, {wall:.2f} s wall")


if __name__ == "__main__":
    main()
