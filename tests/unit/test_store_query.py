"""The search language parser (pure) and search through the store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from store_helpers import SEEN, full_message, header_block

from tuimail.errors import UsageError
from tuimail.models import Flags, FolderInfo, FolderRole
from tuimail.store import NewMessage, Store
from tuimail.store.query import Query, fts_string, parse, to_sql


def local_midnight(y: int, m: int, d: int) -> int:
    return int(datetime(y, m, d).astimezone().timestamp())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", Query(fts=('"hello"',))),
        ("hello world", Query(fts=('"hello"', '"world"'))),
        ('"exact phrase"', Query(fts=('"exact phrase"',))),
        ("invo*", Query(fts=('"invo" *',))),
        ('say "hi there" now', Query(fts=('"say"', '"hi there"', '"now"'))),
        ("from:alice", Query(fts=('{sender} : "alice"',))),
        ("FROM:alice@example.com", Query(fts=('{sender} : "alice@example.com"',))),
        ('from:"Alice Smith"', Query(fts=('{sender} : "Alice Smith"',))),
        ("to:bob", Query(fts=('{recipients cc} : "bob"',))),
        ("subject:urg*", Query(fts=('{subject} : "urg" *',))),
        ("folder:INBOX", Query(folders=("INBOX",))),
        ('folder:"Sent Items"', Query(folders=("Sent Items",))),
        ("account:work", Query(accounts=("work",))),
        ("is:unread", Query(flags_clear=1)),
        ("is:read is:flagged", Query(flags_set=5)),
        ("is:unflagged", Query(flags_clear=4)),
        ("is:answered", Query(flags_set=2)),
        ("has:attachment", Query(has_attachment=True)),
        ("before:2024-03-01", Query(before=local_midnight(2024, 3, 1))),
        ("after:2024-03-01 x", Query(fts=('"x"',), after=local_midnight(2024, 3, 1))),
        # user text is always one quoted FTS string: no syntax gets through
        ('a"b c"', Query(fts=('"a"', '"b c"'))),
        ("NEAR(a b)", Query(fts=('"NEAR(a"', '"b)"'))),
        ("-spam", Query(fts=('"-spam"',))),
        ("a:b", Query(fts=('"a:b"',))),
        ("re: hello", Query(fts=('"re:"', '"hello"'))),
        ("AND OR NOT", Query(fts=('"AND"', '"OR"', '"NOT"'))),
        ("x * y", Query(fts=('"x"', '"y"'), dropped=("*",))),
        ("über café", Query(fts=('"über"', '"café"'))),
        ("日本語", Query(fts=('"日本語"',))),
        ('"it""s"', Query(fts=('"it"', '"s"'))),
        ("{sender}:x", Query(fts=('"{sender}:x"',))),
    ],
)
def test_parse(text: str, expected: Query) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Nothing to search"),
        ("   ", "Nothing to search"),
        ("* - :", "Nothing to search"),
        ('"unclosed', "Unclosed quote"),
        ('a"b', "Unclosed quote"),
        ("from:", "needs a value"),
        ("from:***", "nothing to search"),
        ("is:bogus", "is:bogus is unknown"),
        ("is:read is:unread", "contradicts"),
        ("has:pdf", "has:pdf is unknown"),
        ("before:yesterday", "not a date"),
        ("after:2024-13-01", "not a date"),
        ("hello\x1b[31m", "control characters"),
    ],
)
def test_parse_errors_have_hints(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        parse(text)
    assert "from:" in info.value.message  # the hint lists the language


def test_fts_string_doubles_quotes() -> None:
    assert fts_string('say "hi"') == '"say ""hi"""'


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text_is_a_usage_error_or_valid_sql(text: str) -> None:
    """Whatever the user types, SQLite never sees FTS syntax it chokes on."""
    try:
        q = parse(text)
    except UsageError:
        return
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE VIRTUAL TABLE messages_fts USING fts5(sender, recipients, cc, subject, body)"
    )
    conn.execute(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, folder_id, flags, hidden, "
        "has_attachments, sort_date)"
    )
    conn.execute("CREATE TABLE folders (id INTEGER PRIMARY KEY, account_id, name)")
    conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name)")
    sql, params = to_sql(q, limit=10)
    conn.execute(sql, params).fetchall()


# ----------------------------------------------------------------------------- in the store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture
def corpus(store: Store) -> dict[str, int]:
    inbox = store.ensure_folder("work", FolderInfo("INBOX", role=FolderRole.INBOX)).id
    archive = store.ensure_folder("work", FolderInfo("Archive")).id
    home = store.ensure_folder("home", FolderInfo("INBOX", role=FolderRole.INBOX)).id

    def msg(uid: int, **kw: object) -> NewMessage:
        flags = kw.pop("flags", Flags())
        body = str(kw.pop("body", ""))
        raw = full_message(uid, body=body, **kw) if body else header_block(uid, **kw)  # type: ignore[arg-type]
        return NewMessage(uid=uid, flags=flags, raw=raw, complete=bool(body))  # type: ignore[arg-type]

    ids: dict[str, int] = {}
    [ids["invoice"], ids["lunch"]] = store.add_messages(
        inbox,
        [
            msg(
                1,
                subject="Invoice 2024-03",
                sender="Alice Smith <alice@acme.test>",
                body="Please pay the attached invoice.\r\n",
                date=datetime(2024, 3, 5, tzinfo=UTC),
            ),
            msg(
                2,
                subject="Lunch?",
                sender="Bob <bob@example.com>",
                flags=SEEN,
                to="Carol <carol@example.org>",
                date=datetime(2024, 2, 1, tzinfo=UTC),
            ),
        ],
    )
    [ids["old"]] = store.add_messages(
        archive,
        [
            msg(
                3,
                subject="Old invoice",
                sender="Alice Smith <alice@acme.test>",
                flags=Flags(seen=True, flagged=True),
                date=datetime(2020, 1, 1, tzinfo=UTC),
            )
        ],
    )
    [ids["café"]] = store.add_messages(
        home,
        [
            msg(
                4,
                subject='Café crème 日本語 NEAR(x) "quoted"',
                sender="Zoë <zoe@example.net>",
                body="Ünïcödé body — with * and - and : chars\r\n",
                date=datetime(2024, 4, 1, tzinfo=UTC),
            )
        ],
    )
    return ids


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("invoice", ["invoice", "old"]),  # newest first
        ("invoice alice", ["invoice", "old"]),
        ("invoice bob", []),
        ("invo*", ["invoice", "old"]),
        ('"attached invoice"', ["invoice"]),
        ('"invoice attached"', []),
        ("from:alice", ["invoice", "old"]),
        ("from:alice@acme.test", ["invoice", "old"]),
        ('from:"Alice Smith"', ["invoice", "old"]),
        ("from:bob invoice", []),
        ("to:carol", ["lunch"]),
        ("subject:lunch", ["lunch"]),
        ("subject:alice", []),
        ("folder:archive", ["old"]),
        ("folder:INBOX", ["café", "invoice", "lunch"]),
        ("account:home", ["café"]),
        ("account:work is:unread", ["invoice"]),
        ("is:read", ["lunch", "old"]),
        ("is:flagged", ["old"]),
        ("is:unflagged invoice", ["invoice"]),
        ("after:2024-03-01", ["café", "invoice"]),
        ("before:2024-03-01", ["lunch", "old"]),
        ("after:2021-01-01 before:2024-03-01", ["lunch"]),
        ("cafe", ["café"]),  # diacritics folded
        ("CAFÉ crème", ["café"]),
        ("日本語", ["café"]),
        ("unicode", ["café"]),
        ('"quoted"', ["café"]),
        ("NEAR(x)", ["café"]),
        ("near", ["café"]),
        ("-", None),  # nothing searchable: a UsageError
        ("* :", None),
        ('"', None),
        ("body * - :", ["café"]),
        ("pay *", ["invoice"]),
    ],
)
def test_search(
    store: Store, corpus: dict[str, int], query: str, expected: list[str] | None
) -> None:
    if expected is None:
        with pytest.raises(UsageError):
            store.search(query)
        return
    names = {v: k for k, v in corpus.items()}
    assert [names[i] for i in store.search(query)] == expected


def test_search_limit_and_hidden(store: Store, corpus: dict[str, int]) -> None:
    assert store.search("invoice", limit=1) == [corpus["invoice"]]
    trash = store.ensure_folder("work", FolderInfo("Trash", role=FolderRole.TRASH)).id
    store.move([corpus["old"]], trash)
    store.delete([corpus["old"]])  # in Trash: hidden at once
    assert store.search("invoice") == [corpus["invoice"]]
