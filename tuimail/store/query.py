"""The search language, parsed into FTS5 strings and SQL filters (pure).

    words          all must match (a trailing * makes a prefix)
    "a phrase"     words in this order
    from:X to:X subject:X        the word/phrase X in that header (to: includes Cc)
    folder:X account:X           exact name (case-insensitive)
    is:unread|read|flagged|unflagged|answered|unanswered|draft
    has:attachment
    before:YYYY-MM-DD after:YYYY-MM-DD       local dates; before is exclusive, after inclusive

User text only ever reaches FTS5 inside a double-quoted string (quotes doubled), so no
input can become FTS syntax: `NEAR(`, `*`, `-`, `:` and `"` are just characters.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tuimail.errors import UsageError

HINT = (
    'Search with words, "phrases", from:, to:, subject:, folder:, account:, '
    "is:unread/read/flagged/unflagged/answered, has:attachment, "
    "before:YYYY-MM-DD, after:YYYY-MM-DD."
)

_COLUMNS = {"from": "{sender}", "to": "{recipients cc}", "subject": "{subject}"}
# is:X -> (bit, set?)
_IS = {
    "unread": (1, False),
    "unseen": (1, False),
    "read": (1, True),
    "seen": (1, True),
    "answered": (2, True),
    "replied": (2, True),
    "unanswered": (2, False),
    "flagged": (4, True),
    "starred": (4, True),
    "unflagged": (4, False),
    "draft": (16, True),
}
_KEYS = {*_COLUMNS, "folder", "account", "is", "has", "before", "after", "in"}


@dataclass(frozen=True)
class Query:
    fts: tuple[str, ...] = ()  # FTS5 expressions, AND-ed
    folders: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    flags_set: int = 0
    flags_clear: int = 0
    has_attachment: bool = False
    before: int | None = None  # epoch seconds, exclusive
    after: int | None = None  # epoch seconds, inclusive
    dropped: tuple[str, ...] = field(default=())  # words with nothing searchable in them


def _fail(message: str) -> UsageError:
    return UsageError(f"{message} {HINT}", "Bad search")


def _tokens(text: str) -> list[tuple[str, str, bool]]:
    """(key, value, quoted) per token; key is "" for plain words and phrases.

    Whitespace separates tokens outside quotes; `key:"a b"` is one token.
    """
    tokens: list[tuple[str, str, bool]] = []
    i, n = 0, len(text)

    def quoted_at(start: int) -> tuple[str, int]:
        end = text.find('"', start + 1)
        if end == -1:
            raise _fail(f"Unclosed quote in {text[start:]!r}.")
        return text[start + 1 : end], end + 1

    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if text[i] == '"':
            phrase, i = quoted_at(i)
            tokens.append(("", phrase, True))
            continue
        start = i
        while i < n and not text[i].isspace() and text[i] != '"':
            i += 1
        word = text[start:i]
        key, colon, value = word.partition(":")
        if colon and key.lower() in _KEYS:
            if not value and i < n and text[i] == '"':
                value, i = quoted_at(i)
                tokens.append((key.lower(), value, True))
            else:
                tokens.append((key.lower(), value, False))
        else:
            tokens.append(("", word, False))
    return tokens


def fts_string(text: str) -> str:
    """`text` as one FTS5 string literal: it can only ever be a phrase."""
    return '"' + text.replace('"', '""') + '"'


def searchable(text: str) -> bool:
    """Whether the FTS tokenizer (unicode61) finds any token in `text`."""
    return any(unicodedata.category(c)[0] in "LN" or unicodedata.category(c) == "Co" for c in text)


def _date(key: str, value: str) -> int:
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise _fail(f"{key}:{value} is not a date like 2024-03-31.") from None
    return int(day.astimezone().timestamp())  # local midnight


@dataclass
class _State:
    fts: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    flags_set: int = 0
    flags_clear: int = 0
    has_attachment: bool = False
    before: int | None = None
    after: int | None = None


def _apply_key(key: str, value: str, quoted: bool, st: _State) -> None:
    if not value:
        raise _fail(f"{key}: needs a value.")
    if key in _COLUMNS:
        prefix = value.endswith("*") and not quoted
        word = value[:-1] if prefix else value
        if not searchable(word):
            raise _fail(f"{key}:{value} has nothing to search for.")
        st.fts.append(f"{_COLUMNS[key]} : {fts_string(word)}" + (" *" if prefix else ""))
    elif key in ("folder", "in"):
        st.folders.append(value)
    elif key == "account":
        st.accounts.append(value)
    elif key == "is":
        if value.lower() not in _IS:
            raise _fail(f"is:{value} is unknown.")
        bit, is_set = _IS[value.lower()]
        if is_set:
            st.flags_set |= bit
        else:
            st.flags_clear |= bit
        if st.flags_set & st.flags_clear:
            raise _fail(f"is:{value} contradicts an earlier is:.")
    elif key == "has":
        if value.lower() not in ("attachment", "attachments"):
            raise _fail(f"has:{value} is unknown (only has:attachment).")
        st.has_attachment = True
    elif key == "before":
        st.before = _date(key, value)
    else:  # after
        st.after = _date(key, value)


def parse(text: str) -> Query:
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in text):
        raise _fail("The search contains control characters.")
    st = _State()
    for key, value, quoted in _tokens(text):
        if key:
            _apply_key(key, value, quoted, st)
            continue
        prefix = value.endswith("*") and not quoted
        word = value[:-1] if prefix else value
        if not searchable(word):
            st.dropped.append(value)
            continue
        st.fts.append(fts_string(word) + (" *" if prefix else ""))
    if not (st.fts or st.folders or st.accounts or st.flags_set or st.flags_clear) and not (
        st.has_attachment or st.before is not None or st.after is not None
    ):
        raise _fail("Nothing to search for.")
    return Query(
        fts=tuple(st.fts),
        folders=tuple(st.folders),
        accounts=tuple(st.accounts),
        flags_set=st.flags_set,
        flags_clear=st.flags_clear,
        has_attachment=st.has_attachment,
        before=st.before,
        after=st.after,
        dropped=tuple(st.dropped),
    )


def to_sql(q: Query, limit: int | None = None) -> tuple[str, list[Any]]:
    """SELECT of matching message ids, newest first."""
    where = ["m.hidden = 0"]
    params: list[Any] = []
    joins = ""
    if q.fts:
        where.append("m.id IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?)")
        params.append(" AND ".join(q.fts))
    if q.folders or q.accounts:
        joins = " JOIN folders f ON f.id = m.folder_id JOIN accounts a ON a.id = f.account_id"
    if q.folders:
        where.append("(" + " OR ".join("f.name = ? COLLATE NOCASE" for _ in q.folders) + ")")
        params += list(q.folders)
    if q.accounts:
        where.append("(" + " OR ".join("a.name = ? COLLATE NOCASE" for _ in q.accounts) + ")")
        params += list(q.accounts)
    if q.flags_set:
        where.append("m.flags & ? = ?")
        params += [q.flags_set, q.flags_set]
    if q.flags_clear:
        where.append("m.flags & ? = 0")
        params.append(q.flags_clear)
    if q.has_attachment:
        where.append("m.has_attachments != 0")
    if q.before is not None:
        where.append("m.sort_date < ?")
        params.append(q.before)
    if q.after is not None:
        where.append("m.sort_date >= ?")
        params.append(q.after)
    sql = (
        f"SELECT m.id FROM messages m{joins} WHERE {' AND '.join(where)} "  # noqa: S608
        "ORDER BY m.sort_date DESC, m.id DESC"
    )
    if limit is not None:
        sql += " LIMIT ?"
        params.append(max(0, limit))
    return sql, params
