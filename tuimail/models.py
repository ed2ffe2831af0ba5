"""Frozen value types shared by every layer. Imports nothing of tuimail."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Protocol(StrEnum):
    IMAP = "imap"
    POP3 = "pop3"
    MAILDIR = "maildir"  # a plain local Maildir opened as an account


class TLSMode(StrEnum):
    IMPLICIT = "implicit"
    STARTTLS = "starttls"
    NONE = "none"


class FolderRole(StrEnum):
    """SPECIAL-USE roles (RFC 6154) plus the Inbox; NONE for ordinary folders."""

    INBOX = "inbox"
    SENT = "sent"
    DRAFTS = "drafts"
    TRASH = "trash"
    JUNK = "junk"
    ARCHIVE = "archive"
    NONE = ""


# Display order of roles in folder lists: roles first, then the rest by name.
ROLE_ORDER: dict[FolderRole, int] = {
    FolderRole.INBOX: 0,
    FolderRole.DRAFTS: 1,
    FolderRole.SENT: 2,
    FolderRole.ARCHIVE: 3,
    FolderRole.JUNK: 4,
    FolderRole.TRASH: 5,
    FolderRole.NONE: 6,
}

_IMAP_SYSTEM = {
    "\\seen": "seen",
    "\\answered": "answered",
    "\\flagged": "flagged",
    "\\deleted": "deleted",
    "\\draft": "draft",
}
# Maildir info letters (must be stored in ASCII order): D=draft F=flagged R=replied S=seen T=trashed
_MAILDIR_LETTERS = (
    ("D", "draft"),
    ("F", "flagged"),
    ("R", "answered"),
    ("S", "seen"),
    ("T", "deleted"),
)


@dataclass(frozen=True, slots=True)
class Flags:
    """Message flags: the IMAP system flags plus keywords (custom flags, kept verbatim)."""

    seen: bool = False
    answered: bool = False
    flagged: bool = False
    deleted: bool = False
    draft: bool = False
    keywords: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_imap(cls, flags: Iterable[str | bytes]) -> Flags:
        """From IMAP flag atoms (`\\Seen`, `$Forwarded`, ...).

        `\\Recent` is per-session server state, not a message flag: dropped."""
        values: dict[str, bool] = {}
        keywords: set[str] = set()
        for raw in flags:
            atom = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
            name = _IMAP_SYSTEM.get(atom.lower())
            if name:
                values[name] = True
            elif atom.startswith("\\"):
                continue  # \Recent and unknown system flags
            elif atom:
                keywords.add(atom)
        return cls(keywords=frozenset(keywords), **values)

    def to_imap(self) -> tuple[str, ...]:
        system = tuple(
            "\\" + name.capitalize() for name in _IMAP_SYSTEM.values() if getattr(self, name)
        )
        return system + tuple(sorted(self.keywords))

    @classmethod
    def from_maildir_info(cls, info: str) -> Flags:
        """From the part after `:2,` of a Maildir file name."""
        return cls(
            seen="S" in info,
            answered="R" in info,
            flagged="F" in info,
            deleted="T" in info,
            draft="D" in info,
        )

    def maildir_info(self) -> str:
        """`2,` plus the flag letters in ASCII order, as the Maildir spec requires."""
        return "2," + "".join(letter for letter, name in _MAILDIR_LETTERS if getattr(self, name))

    def with_changes(self, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Flags:
        """Return a copy with flags added/removed; names are `seen`... or keywords."""
        values = {name: getattr(self, name) for name in _IMAP_SYSTEM.values()}
        keywords = set(self.keywords)
        for name in add:
            if name in values:
                values[name] = True
            else:
                keywords.add(name)
        for name in remove:
            if name in values:
                values[name] = False
            else:
                keywords.discard(name)
        return Flags(keywords=frozenset(keywords), **values)

    def names(self) -> list[str]:
        """Set flag names (`seen`, ..., then keywords), as used in JSON output."""
        return [n for n in _IMAP_SYSTEM.values() if getattr(self, n)] + sorted(self.keywords)


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox. `name` is the display name (may be empty), `addr` the addr-spec."""

    name: str
    addr: str

    def domain(self) -> str:
        return self.addr.rpartition("@")[2].lower()

    def __str__(self) -> str:
        return f"{self.name} <{self.addr}>" if self.name else self.addr


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str  # raw (unsanitized) name as declared by the message; may be empty
    content_type: str
    size: int
    part_id: str  # index path of the MIME part, e.g. "2" or "1.3"
    inline: bool = False


@dataclass(frozen=True, slots=True)
class Envelope:
    """The headers tuimail lists, sorts, threads and searches by.

    Strings are decoded but not sanitized: sanitize at display time."""

    message_id: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    date: datetime | None = None  # timezone-aware, with the sender's original offset
    from_: tuple[Address, ...] = ()
    sender: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    subject: str = ""


@dataclass(frozen=True, slots=True)
class FolderRef:
    account: str
    name: str  # decoded (Unicode) folder name, server hierarchy delimiter kept

    def __str__(self) -> str:
        return f"{self.account}/{self.name}"


@dataclass(frozen=True, slots=True)
class FolderInfo:
    """A folder as listed by a server (or the local Maildir)."""

    name: str
    delimiter: str = "/"
    role: FolderRole = FolderRole.NONE
    selectable: bool = True
    subscribed: bool = True


@dataclass(frozen=True, slots=True)
class FolderState:
    """What the local store knows about a folder's server state, to sync incrementally."""

    uidvalidity: int = 0
    uidnext: int = 0
    highestmodseq: int = 0


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """One row of a message list, as read from the store."""

    id: int  # stable local id, usable by `tuimail read ID`
    account: str
    folder: str
    uid: int
    envelope: Envelope
    flags: Flags
    size: int
    has_attachments: bool = False
    preview: str = ""
    thread_id: int = 0
    has_body: bool = False
    parse_warning: str = ""
