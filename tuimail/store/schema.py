"""The SQLite schema and its migrations.

`PRAGMA user_version` holds the number of migrations applied; `MIGRATIONS` is append-only:
never edit a shipped migration, add a new one.

Message and op ids are AUTOINCREMENT: never reused, so `tuimail read ID` never finds another
message, and a worker completing an op that was merged away cannot hit its successor.

Folder counters (total/unread) are kept by triggers on UPDATE and DELETE, so every write
path (and every process) keeps them right without a COUNT(*) over 100k rows. INSERTs have
no trigger (a row trigger costs ~40% of a 50k-row bulk insert): the store's two insert paths
add to the counters themselves, once per batch. FTS rows are removed by a trigger when their
message row goes, including through ON DELETE CASCADE.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from tuimail.errors import StoreError

# Bits of messages.flags; SEEN must stay bit 0 (the unread counter tests `flags & 1`).
FLAG_BITS: dict[str, int] = {
    "seen": 1,
    "answered": 2,
    "flagged": 4,
    "deleted": 8,
    "draft": 16,
}

_V1 = """
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    dir TEXT NOT NULL UNIQUE
);

CREATE TABLE folders (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    dir TEXT NOT NULL,
    delimiter TEXT NOT NULL DEFAULT '/',
    role TEXT NOT NULL DEFAULT '',
    subscribed INTEGER NOT NULL DEFAULT 1,
    selectable INTEGER NOT NULL DEFAULT 1,
    uidvalidity INTEGER NOT NULL DEFAULT 0,
    uidnext INTEGER NOT NULL DEFAULT 0,
    highestmodseq INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    unread INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, name),
    UNIQUE (account_id, dir)
);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    uid INTEGER,
    message_id TEXT NOT NULL DEFAULT '',
    in_reply_to TEXT NOT NULL DEFAULT '',
    refs TEXT NOT NULL DEFAULT '',
    thread_id INTEGER NOT NULL DEFAULT 0,
    date_utc INTEGER,
    date_offset INTEGER NOT NULL DEFAULT 0,
    sort_date INTEGER NOT NULL DEFAULT 0,
    from_name TEXT NOT NULL DEFAULT '',
    from_addr TEXT NOT NULL DEFAULT '',
    sort_from TEXT NOT NULL DEFAULT '',
    addrs TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    sort_subject TEXT NOT NULL DEFAULT '',
    flags INTEGER NOT NULL DEFAULT 0,
    keywords TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0,
    has_attachments INTEGER NOT NULL DEFAULT 0,
    preview TEXT NOT NULL DEFAULT '',
    filename TEXT,
    internaldate INTEGER,
    parse_warning TEXT NOT NULL DEFAULT '',
    hidden INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX messages_uid ON messages (folder_id, uid) WHERE uid IS NOT NULL;
CREATE INDEX messages_by_date ON messages (folder_id, hidden, sort_date);
CREATE INDEX messages_by_from ON messages (folder_id, hidden, sort_from, sort_date);
CREATE INDEX messages_by_subject ON messages (folder_id, hidden, sort_subject, sort_date);
CREATE INDEX messages_by_size ON messages (folder_id, hidden, size, sort_date);
CREATE INDEX messages_all_by_date ON messages (sort_date);
-- Placeholders (uid NULL) are few: a small index finds them without scanning a folder.
CREATE INDEX messages_placeholders ON messages (folder_id, message_id) WHERE uid IS NULL;

CREATE VIRTUAL TABLE messages_fts USING fts5 (
    sender, recipients, cc, subject, body,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
    UPDATE folders SET total = total - (OLD.hidden = 0),
                       unread = unread - (OLD.hidden = 0 AND OLD.flags & 1 = 0)
    WHERE id = OLD.folder_id;
    DELETE FROM messages_fts WHERE rowid = OLD.id;
END;
CREATE TRIGGER messages_au AFTER UPDATE OF folder_id, flags, hidden ON messages
WHEN OLD.folder_id != NEW.folder_id OR (OLD.flags & 1) != (NEW.flags & 1)
     OR OLD.hidden != NEW.hidden
BEGIN
    UPDATE folders SET total = total - (OLD.hidden = 0),
                       unread = unread - (OLD.hidden = 0 AND OLD.flags & 1 = 0)
    WHERE id = OLD.folder_id;
    UPDATE folders SET total = total + (NEW.hidden = 0),
                       unread = unread + (NEW.hidden = 0 AND NEW.flags & 1 = 0)
    WHERE id = NEW.folder_id;
END;

CREATE TABLE addresses (
    addr TEXT PRIMARY KEY COLLATE NOCASE,
    name TEXT NOT NULL DEFAULT '',
    last_seen INTEGER NOT NULL DEFAULT 0,
    count INTEGER NOT NULL DEFAULT 0,
    sent_to INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX addresses_by_name ON addresses (name COLLATE NOCASE);

CREATE TABLE pending_ops (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
    uid INTEGER,
    message_id INTEGER,
    dest_folder_id INTEGER REFERENCES folders(id) ON DELETE CASCADE,
    add_flags TEXT NOT NULL DEFAULT '',
    remove_flags TEXT NOT NULL DEFAULT '',
    orig_uid INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    created INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX pending_ops_by_account ON pending_ops (account_id, id);
CREATE INDEX pending_ops_by_message ON pending_ops (message_id);
CREATE INDEX pending_ops_by_folder ON pending_ops (folder_id);
CREATE INDEX pending_ops_by_dest ON pending_ops (dest_folder_id);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    message_id TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    sender TEXT NOT NULL,
    recipients TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    next_attempt INTEGER,
    created INTEGER NOT NULL
);
"""


def _v1(conn: sqlite3.Connection) -> None:
    for statement in _split(_V1):
        conn.execute(statement)


def _split(script: str) -> list[str]:
    """Split a DDL script into statements (trigger bodies contain `;`)."""
    statements: list[str] = []
    current: list[str] = []
    for line in script.strip().splitlines():
        current.append(line)
        text = "\n".join(current).strip()
        if sqlite3.complete_statement(text):
            statements.append(text)
            current = []
    if "\n".join(current).strip():
        raise ValueError("incomplete SQL statement in schema")
    return statements


_V2_POP3 = """
CREATE TABLE pop3_uidls (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    uidl TEXT NOT NULL,
    uid INTEGER NOT NULL,
    message_id INTEGER,
    downloaded INTEGER NOT NULL,
    UNIQUE (account_id, uidl)
)
"""


def _v2_pop3(conn: sqlite3.Connection) -> None:
    """POP3 download records, used by `pop3state.Pop3State`: `uidl` is a UIDL or a `fp ...`
    fingerprint key, `uid` the message's uid in the account's local Inbox, `downloaded` a
    Unix time. `message_id` is deliberately not a foreign key (see pop3state)."""
    conn.execute(_V2_POP3)


def _v3_without_body(conn: sqlite3.Connection) -> None:
    """Messages whose body is not local yet: every sync with `bodies` other than "none"
    asks for them, and without an index that scanned the whole folder (~50 ms at 50k),
    even when nothing had changed."""
    conn.execute(
        "CREATE INDEX messages_without_body ON messages (folder_id, sort_date) "
        "WHERE filename IS NULL AND uid IS NOT NULL AND hidden = 0"
    )


# Ordered; index i upgrades user_version i -> i + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2_pop3, _v3_without_body]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to date, one migration per transaction."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"The local store has schema version {version}, newer than this tuimail "
                    f"({SCHEMA_VERSION}). Upgrade tuimail, or point it at another data dir."
                )
            if version == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE), so a writer takes
    # the write lock up front and waits on busy_timeout instead of failing on upgrade.
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -32000")
    # A bulk sync commits every batch of ~1000 messages; the default checkpoint (every 1000
    # WAL pages) copied the same index and FTS pages back after nearly every batch. 16384
    # pages (64 MB of WAL at most) let one checkpoint carry many batches.
    conn.execute("PRAGMA wal_autocheckpoint = 16384")
    # `Store.close` runs PRAGMA optimize; unbounded, its ANALYZE of a 50k-row folder took
    # ~45 ms at every close after changes. Sampled statistics are as good for our queries.
    conn.execute("PRAGMA analysis_limit = 400")
    migrate(conn)
    return conn
