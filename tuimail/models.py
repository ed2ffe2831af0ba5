"""Frozen value types shared by every layer. Imports nothing of tuimail."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, dataclass_transform

_set = object.__setattr__


def _fields_of(cls: type) -> list[str]:
    """The fields a class itself declares: its annotations, but not ClassVars."""
    # Not inspect.get_annotations: importing inspect costs more than all of this.
    own: dict[str, object] = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
    return [n for n, a in own.items() if not str(a).startswith(("ClassVar", "typing.ClassVar"))]


@dataclass_transform(frozen_default=True)
class Frozen:
    """Base of frozen value types: what `@dataclass(frozen=True, slots=True)` gives (fields
    read-only, equality and hash by value, a dataclass-style repr, pickling), without its
    cost. A dataclass generates and compiles its methods when its module is imported, about
    1 ms a class here, and `tuimail send` (started once per message) imports dozens.

    A subclass annotates its fields (their order is the fields' order, after its bases'),
    names the same in `__slots__`, and sets each in `__init__` with `object.__setattr__`.
    mypy treats it as a frozen dataclass (assigning to a field is an error) with that
    `__init__`.
    """

    __slots__ = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()
    _values: ClassVar[Callable[[Any], tuple[Any, ...]]]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        names = tuple(
            name for c in reversed(cls.__mro__) if c is not Frozen and issubclass(c, Frozen)
            for name in _fields_of(c)
        )  # fmt: skip
        own = _fields_of(cls)
        if set(own) != set(cls.__dict__.get("__slots__", ())):
            raise TypeError(f"{cls.__qualname__}: __slots__ must name the annotated fields")
        if own and "__init__" not in cls.__dict__:
            raise TypeError(f"{cls.__qualname__}: a Frozen type with fields needs an __init__")
        cls.__match_args__ = names  # type: ignore[misc]
        if len(names) > 1:
            cls._values = operator.attrgetter(*names)  # a tuple, built in C
        else:
            cls._values = lambda obj: tuple(getattr(obj, name) for name in names)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            values = type(self)._values
            return values(self) == values(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(type(self)._values(self))

    def __repr__(self) -> str:
        values = type(self)._values(self)
        fields = ", ".join(f"{n}={v!r}" for n, v in zip(self.__match_args__, values, strict=True))
        return f"{type(self).__qualname__}({fields})"

    def __getstate__(self) -> tuple[Any, ...]:
        return type(self)._values(self)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for name, value in zip(self.__match_args__, state, strict=True):
            _set(self, name, value)


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


_NO_KEYWORDS: frozenset[str] = frozenset()


class Flags(Frozen):
    """Message flags: the IMAP system flags plus keywords (custom flags, kept verbatim)."""

    __slots__ = ("answered", "deleted", "draft", "flagged", "keywords", "seen")
    seen: bool
    answered: bool
    flagged: bool
    deleted: bool
    draft: bool
    keywords: frozenset[str]

    def __init__(
        self,
        seen: bool = False,
        answered: bool = False,
        flagged: bool = False,
        deleted: bool = False,
        draft: bool = False,
        keywords: frozenset[str] = _NO_KEYWORDS,
    ) -> None:
        _set(self, "seen", seen)
        _set(self, "answered", answered)
        _set(self, "flagged", flagged)
        _set(self, "deleted", deleted)
        _set(self, "draft", draft)
        _set(self, "keywords", keywords)

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


class Address(Frozen):
    """One mailbox. `name` is the display name (may be empty), `addr` the addr-spec."""

    __slots__ = ("addr", "name")
    name: str
    addr: str

    def __init__(self, name: str, addr: str) -> None:
        _set(self, "name", name)
        _set(self, "addr", addr)

    def domain(self) -> str:
        return self.addr.rpartition("@")[2].lower()

    def __str__(self) -> str:
        return f"{self.name} <{self.addr}>" if self.name else self.addr


class Attachment(Frozen):
    __slots__ = ("content_type", "filename", "inline", "part_id", "size")
    filename: str  # raw (unsanitized) name as declared by the message; may be empty
    content_type: str
    size: int
    part_id: str  # index path of the MIME part, e.g. "2" or "1.3"
    inline: bool

    def __init__(
        self, filename: str, content_type: str, size: int, part_id: str, inline: bool = False
    ) -> None:
        _set(self, "filename", filename)
        _set(self, "content_type", content_type)
        _set(self, "size", size)
        _set(self, "part_id", part_id)
        _set(self, "inline", inline)


class Envelope(Frozen):
    """The headers tuimail lists, sorts, threads and searches by.

    Strings are decoded but not sanitized: sanitize at display time."""

    __slots__ = (
        "bcc",
        "cc",
        "date",
        "from_",
        "in_reply_to",
        "message_id",
        "references",
        "reply_to",
        "sender",
        "subject",
        "to",
    )  # fmt: skip
    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    date: datetime | None  # timezone-aware, with the sender's original offset
    from_: tuple[Address, ...]
    sender: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    subject: str

    def __init__(
        self,
        message_id: str = "",
        in_reply_to: str = "",
        references: tuple[str, ...] = (),
        date: datetime | None = None,
        from_: tuple[Address, ...] = (),
        sender: tuple[Address, ...] = (),
        reply_to: tuple[Address, ...] = (),
        to: tuple[Address, ...] = (),
        cc: tuple[Address, ...] = (),
        bcc: tuple[Address, ...] = (),
        subject: str = "",
    ) -> None:
        _set(self, "message_id", message_id)
        _set(self, "in_reply_to", in_reply_to)
        _set(self, "references", references)
        _set(self, "date", date)
        _set(self, "from_", from_)
        _set(self, "sender", sender)
        _set(self, "reply_to", reply_to)
        _set(self, "to", to)
        _set(self, "cc", cc)
        _set(self, "bcc", bcc)
        _set(self, "subject", subject)


class FolderRef(Frozen):
    __slots__ = ("account", "name")
    account: str
    name: str  # decoded (Unicode) folder name, server hierarchy delimiter kept

    def __init__(self, account: str, name: str) -> None:
        _set(self, "account", account)
        _set(self, "name", name)

    def __str__(self) -> str:
        return f"{self.account}/{self.name}"


class FolderInfo(Frozen):
    """A folder as listed by a server (or the local Maildir)."""

    __slots__ = ("delimiter", "name", "role", "selectable", "subscribed")
    name: str
    delimiter: str
    role: FolderRole
    selectable: bool
    subscribed: bool

    def __init__(
        self,
        name: str,
        delimiter: str = "/",
        role: FolderRole = FolderRole.NONE,
        selectable: bool = True,
        subscribed: bool = True,
    ) -> None:
        _set(self, "name", name)
        _set(self, "delimiter", delimiter)
        _set(self, "role", role)
        _set(self, "selectable", selectable)
        _set(self, "subscribed", subscribed)


class FolderState(Frozen):
    """What the local store knows about a folder's server state, to sync incrementally."""

    __slots__ = ("highestmodseq", "uidnext", "uidvalidity")
    uidvalidity: int
    uidnext: int
    highestmodseq: int

    def __init__(self, uidvalidity: int = 0, uidnext: int = 0, highestmodseq: int = 0) -> None:
        _set(self, "uidvalidity", uidvalidity)
        _set(self, "uidnext", uidnext)
        _set(self, "highestmodseq", highestmodseq)


class MessageSummary(Frozen):
    """One row of a message list, as read from the store."""

    __slots__ = (
        "account",
        "envelope",
        "flags",
        "folder",
        "has_attachments",
        "has_body",
        "id",
        "parse_warning",
        "preview",
        "size",
        "thread_id",
        "uid",
    )  # fmt: skip
    id: int  # stable local id, usable by `tuimail read ID`
    account: str
    folder: str
    uid: int
    envelope: Envelope
    flags: Flags
    size: int
    has_attachments: bool
    preview: str
    thread_id: int
    has_body: bool
    parse_warning: str

    def __init__(
        self,
        id: int,
        account: str,
        folder: str,
        uid: int,
        envelope: Envelope,
        flags: Flags,
        size: int,
        has_attachments: bool = False,
        preview: str = "",
        thread_id: int = 0,
        has_body: bool = False,
        parse_warning: str = "",
    ) -> None:
        _set(self, "id", id)
        _set(self, "account", account)
        _set(self, "folder", folder)
        _set(self, "uid", uid)
        _set(self, "envelope", envelope)
        _set(self, "flags", flags)
        _set(self, "size", size)
        _set(self, "has_attachments", has_attachments)
        _set(self, "preview", preview)
        _set(self, "thread_id", thread_id)
        _set(self, "has_body", has_body)
        _set(self, "parse_warning", parse_warning)
