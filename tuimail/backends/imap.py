"""IMAP over imaplib: one verified TLS connection, fast bounded bulk commands.

imaplib (what imapclient wraps) connects, reads the greeting and does STARTTLS; every
command after that (login, LIST, SELECT with QRESYNC, UID FETCH of headers and bodies, UID
SEARCH, STORE, MOVE, APPEND, IDLE) is sent on the same connection as a raw command and read
with the bounded parser of `imap_parse`, several times faster than imapclient's. The
imapclient wrapper itself is not used: nothing of it was left on the path, and importing it
cost ~40 ms of CPU on every `tuimail sync` start (a no-change sync's budget is 300 ms).

Security:
- TLS is implicit or STARTTLS, and STARTTLS is *required*: when CAPABILITY does not offer
  it, or the server refuses it, we stop before sending anything else. Everything received
  in plaintext before the handshake is discarded — untagged responses imaplib cached (an
  injected `* CAPABILITY` or `* LIST`) and any bytes read ahead — and CAPABILITY is asked
  again over TLS. A PREAUTH greeting on a STARTTLS connection is refused: it is how a
  man in the middle would skip STARTTLS. LOGIN and AUTHENTICATE are only ever sent over
  TLS (or on an explicitly allowed plaintext loopback link), LOGINDISABLED is respected.
- Certificates are verified by the one policy in `tls.py`.
- Every read is bounded: lines, literals (the account's `max_message_size`; a literal
  above a hard limit ends the connection with `ProtocolError` before anything is
  allocated), whole responses. Every socket operation has the configured timeout.
- Errors never contain the password; server texts are kept (truncated) for the user, and
  sanitized by whoever displays them.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import itertools
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime

from tuimail.backends import imap_parse as p
from tuimail.backends.tls import context_for, describe_error, set_nodelay
from tuimail.config import ServerConfig
from tuimail.errors import (
    AuthError,
    NetworkError,
    NotFoundError,
    ProtocolError,
    TLSError,
    TuimailError,
)
from tuimail.models import Flags, FolderInfo, FolderRole, Frozen, TLSMode
from tuimail.secrets import Secret

_set = object.__setattr__  # Frozen values, not dataclasses: cheaper to import (start-up)

_RECV = 256 * 1024
# RFC 2177: servers may drop an IDLE after 30 minutes; re-issue before that.
IDLE_MAX = 29 * 60
# How often a blocking wait looks at its stop flag.
POLL_STEP = 1.0
# Without IDLE, how often to ask the server (NOOP) whether something changed.
NOOP_POLL = 60.0
# The header fields the message list, threading and search need.
HEADER_FIELDS = (
    b"DATE FROM TO CC SUBJECT MESSAGE-ID IN-REPLY-TO REFERENCES CONTENT-TYPE REPLY-TO SENDER"
)
HEADER_ITEMS = (
    b"(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (" + HEADER_FIELDS + b")])"
)
BODY_ITEMS = b"(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[])"
FLAG_ITEMS = b"(UID FLAGS)"


def server_text(data: bytes | str, limit: int = 300) -> str:
    """A server's human text for an error message: decoded, one line, truncated."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ----------------------------------------------------------------------------- transport


class SocketReader:
    """The read side of the connection, for imaplib and for our own parser alike.

    Reads in large chunks (imaplib's default makefile buffer is 8 KB), bounds every literal
    imaplib itself reads, and can tell whether data is already buffered (so IDLE waits on
    the socket only when nothing is pending). A timeout leaves the buffer consistent.
    """

    __slots__ = ("_buf", "_hard_limit", "_pos", "sock")

    def __init__(self, sock: socket.socket, hard_limit: int = p.HARD_LITERAL_LIMIT) -> None:
        self.sock = sock
        self._buf = bytearray()
        self._pos = 0
        self._hard_limit = hard_limit

    def buffered(self) -> int:
        pending = len(self._buf) - self._pos
        if isinstance(self.sock, ssl.SSLSocket):
            pending += self.sock.pending()
        return pending

    def _fill(self) -> bool:
        if self._pos and self._pos >= len(self._buf) // 2:
            del self._buf[: self._pos]
            self._pos = 0
        data = self.sock.recv(_RECV)
        if not data:
            return False
        self._buf += data
        return True

    def readline(self, limit: int = -1) -> bytes:
        searched = 0  # bytes after _pos already known to hold no LF
        while True:
            buf, pos = self._buf, self._pos
            end = buf.find(b"\n", pos + searched)
            if end >= 0:
                end += 1
                break
            searched = len(buf) - pos
            if 0 <= limit <= searched:
                end = pos + limit
                break
            if not self._fill():
                end = len(self._buf)
                break
        start = self._pos
        if 0 <= limit < end - start:
            end = start + limit
        self._pos = end
        return bytes(self._buf[start:end])

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self._hard_limit:
            raise ProtocolError(
                f"The server announced {size} bytes, more than the {self._hard_limit}-byte "
                "limit; the connection was dropped."
            )
        avail = len(self._buf) - self._pos
        if avail >= size:
            start = self._pos
            self._pos += size
            return bytes(self._buf[start : self._pos])
        out = bytearray(size)
        view = memoryview(out)
        view[:avail] = self._buf[self._pos :]
        got = avail
        self._buf.clear()
        self._pos = 0
        while got < size:
            n = self.sock.recv_into(view[got:], size - got)
            if not n:
                return bytes(out[:got])
            got += n
        return bytes(out)

    def take_fetch(self, max_literal: int) -> p.FetchData | None:
        """A whole FETCH response of a common shape, if one is buffered (see `fetch_at`)."""
        if self._pos >= len(self._buf):
            return None
        found = p.fetch_at(self._buf, self._pos, max_literal)
        if found is None:
            return None
        self._pos = found[1]
        return found[0]

    def close(self) -> None:
        self._buf.clear()
        self._pos = 0


# Untagged lines a server may send before its answer to STARTTLS (all discarded).
_STARTTLS_MAX_UNTAGGED = 100


class _PlainIMAP4(imaplib.IMAP4):
    """imaplib over a plain socket (then STARTTLS) with our reader and a strict STARTTLS."""

    def __init__(self, host: str, port: int, timeout: float, hard_limit: int) -> None:
        self._tm_timeout = timeout
        self._tm_hard_limit = hard_limit
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), self._tm_timeout)
        set_nodelay(sock)
        return sock

    def open(self, host: str = "", port: int = 143, timeout: float | None = None) -> None:
        super().open(host, port, timeout)
        self.file = SocketReader(self.sock, self._tm_hard_limit)  # type: ignore[assignment]

    def starttls(  # type: ignore[override]
        self, ssl_context: ssl.SSLContext | None = None
    ) -> tuple[str, list[bytes]]:
        if ssl_context is None:
            raise TLSError("No TLS context.")  # never imaplib's non-verifying default
        # Read the answer ourselves: imaplib's _simple_command takes a "+" continuation for
        # an interim reply and waits for a tagged one until the timeout. Only a tagged OK
        # starts TLS; a continuation, NO/BAD or any other line is a refusal, at once.
        tag = self._new_tag()
        self.send(tag + b" STARTTLS\r\n")
        for _ in range(_STARTTLS_MAX_UNTAGGED):
            line = self._get_line()
            if line.startswith(b"* "):
                continue  # plaintext, never believed (and cleared below)
            if line.startswith(b"+"):
                raise self.error(f"a continuation request: {server_text(line, 80)}")
            words = line.split(b" ", 2)
            if len(words) < 2 or words[0] != tag:
                raise self.error(f"unexpected answer to STARTTLS: {server_text(line, 80)}")
            if words[1].upper() != b"OK":
                raise self.error(server_text(b" ".join(words[1:]), 200))
            break
        else:
            raise self.error("no answer to STARTTLS among the server's untagged lines")
        self.tagged_commands.pop(tag, None)
        typ, dat = "OK", [line]
        self.sock = ssl_context.wrap_socket(self.sock, server_hostname=self.host)
        # A fresh reader: anything the old one read ahead in plaintext is dropped, and
        # nothing cached before the handshake survives it.
        self.file = SocketReader(self.sock, self._tm_hard_limit)  # type: ignore[assignment]
        self.untagged_responses.clear()
        self._tls_established = True
        self.capabilities = ()
        self._get_capabilities()
        return typ, dat


class _TLSIMAP4(imaplib.IMAP4):
    """imaplib over implicit TLS with our verifying context and reader."""

    def __init__(
        self, host: str, port: int, context: ssl.SSLContext, timeout: float, hard_limit: int
    ) -> None:
        self._tm_context = context
        self._tm_timeout = timeout
        self._tm_hard_limit = hard_limit
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), self._tm_timeout)
        set_nodelay(sock)
        try:
            return self._tm_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise

    def open(self, host: str = "", port: int = 993, timeout: float | None = None) -> None:
        super().open(host, port, timeout)
        self.file = SocketReader(self.sock, self._tm_hard_limit)  # type: ignore[assignment]


# ----------------------------------------------------------------------------- results


class SelectResult:
    """What SELECT reported (0 = not reported; HIGHESTMODSEQ 0 also for NOMODSEQ); filled
    in as the responses arrive."""

    __slots__ = (
        "changed", "exists", "highestmodseq", "name", "readonly", "uidnext", "uidvalidity",
        "vanished",
    )  # fmt: skip

    def __init__(self, name: str, readonly: bool = False) -> None:
        self.name = name
        self.uidvalidity = 0
        self.uidnext = 0
        self.highestmodseq = 0
        self.exists = 0
        self.readonly = readonly
        self.vanished: list[tuple[int, int]] = []  # QRESYNC
        self.changed: dict[int, Flags] = {}  # QRESYNC: uid -> flags


class StoreResult(Frozen):
    __slots__ = ("modified",)
    modified: list[tuple[int, int]]  # UID ranges refused by UNCHANGEDSINCE

    def __init__(self, modified: list[tuple[int, int]]) -> None:
        _set(self, "modified", modified)


class FolderStatus(Frozen):
    """STATUS of a folder (0 = not reported)."""

    __slots__ = ("highestmodseq", "messages", "uidnext", "uidvalidity")
    messages: int
    uidnext: int
    uidvalidity: int
    highestmodseq: int

    def __init__(
        self, messages: int = 0, uidnext: int = 0, uidvalidity: int = 0, highestmodseq: int = 0
    ) -> None:
        _set(self, "messages", messages)
        _set(self, "uidnext", uidnext)
        _set(self, "uidvalidity", uidvalidity)
        _set(self, "highestmodseq", highestmodseq)


class Listing(Frozen):
    __slots__ = ("folders", "status", "warnings")
    folders: list[FolderInfo]
    warnings: list[str]
    status: dict[str, FolderStatus]  # by folder name, when the server has LIST-STATUS

    def __init__(
        self, folders: list[FolderInfo], warnings: list[str], status: dict[str, FolderStatus]
    ) -> None:
        _set(self, "folders", folders)
        _set(self, "warnings", warnings)
        _set(self, "status", status)


class ListEntry(Frozen):
    __slots__ = ("attributes", "delimiter", "name")
    name: str
    delimiter: str
    attributes: frozenset[str]  # lower-cased: "\\noselect", "\\sent", ...

    def __init__(self, name: str, delimiter: str, attributes: frozenset[str]) -> None:
        _set(self, "name", name)
        _set(self, "delimiter", delimiter)
        _set(self, "attributes", attributes)


class CommandFailed(ProtocolError):
    """A tagged NO/BAD for a command; `code` is its response code (e.g. TRYCREATE)."""

    def __init__(
        self, message: str, status: bytes, code: bytes, code_args: bytes, text: str
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.code_args = code_args
        self.server_text = text


# ----------------------------------------------------------------------------- folders

_ROLE_ATTRS = {
    "\\sent": FolderRole.SENT,
    "\\drafts": FolderRole.DRAFTS,
    "\\trash": FolderRole.TRASH,
    "\\junk": FolderRole.JUNK,
    "\\archive": FolderRole.ARCHIVE,
}
# Common names, for servers without SPECIAL-USE (lower-case, last path component).
_ROLE_NAMES: dict[str, FolderRole] = {
    "sent": FolderRole.SENT,
    "sent items": FolderRole.SENT,
    "sent messages": FolderRole.SENT,
    "sent mail": FolderRole.SENT,
    "drafts": FolderRole.DRAFTS,
    "draft": FolderRole.DRAFTS,
    "trash": FolderRole.TRASH,
    "deleted items": FolderRole.TRASH,
    "deleted messages": FolderRole.TRASH,
    "bin": FolderRole.TRASH,
    "junk": FolderRole.JUNK,
    "spam": FolderRole.JUNK,
    "junk e-mail": FolderRole.JUNK,
    "junk email": FolderRole.JUNK,
    "archive": FolderRole.ARCHIVE,
    "archives": FolderRole.ARCHIVE,
}


def folder_infos(entries: Sequence[ListEntry], subscribed: set[str] | None) -> list[FolderInfo]:
    """LIST entries -> FolderInfo with roles: SPECIAL-USE attributes first; for a role no
    folder carries, the best name match ("Sent Items", "Spam", ...; top level preferred)."""
    roles: dict[str, FolderRole] = {}
    taken: set[FolderRole] = set()
    for e in entries:
        if e.name.upper() == "INBOX":
            roles[e.name] = FolderRole.INBOX
            continue
        for attr in sorted(e.attributes):
            role = _ROLE_ATTRS.get(attr)
            if role is not None and role not in taken:
                roles[e.name] = role
                taken.add(role)
                break
    candidates: dict[FolderRole, list[tuple[int, int, str]]] = {}
    for e in entries:
        if e.name in roles or "\\noselect" in e.attributes or "\\nonexistent" in e.attributes:
            continue
        leaf = e.name.rsplit(e.delimiter, 1)[-1] if e.delimiter else e.name
        role = _ROLE_NAMES.get(leaf.strip().lower())
        if role is not None and role not in taken:
            depth = e.name.count(e.delimiter) if e.delimiter else 0
            # Prefer top level, then INBOX.Sent over Archive/Old/Sent, then the exact name.
            candidates.setdefault(role, []).append((depth, len(e.name), e.name))
    for role, found in candidates.items():
        roles[min(found)[2]] = role
    out = []
    for e in entries:
        selectable = not ({"\\noselect", "\\nonexistent"} & e.attributes)
        is_subscribed = subscribed is None or e.name in subscribed or e.name.upper() == "INBOX"
        out.append(
            FolderInfo(
                name=e.name,
                delimiter=e.delimiter or "/",
                role=roles.get(e.name, FolderRole.NONE),
                selectable=selectable,
                subscribed=is_subscribed,
            )
        )
    return out


def parse_list_line(rest: bytes) -> tuple[frozenset[str], str, bytes] | None:
    """The part after `* LIST `: (attributes, delimiter, raw mailbox name)."""
    try:
        attrs, pos = p.read_value(rest, 0)
        pos = _skip_spaces(rest, pos)
        delim, pos = p.read_value(rest, pos)
        pos = _skip_spaces(rest, pos)
        name, pos = p.read_value(rest, pos)
    except ProtocolError:
        return None
    if not isinstance(attrs, list) or isinstance(name, p.TooLarge) or name is None:
        return None
    if isinstance(name, int):
        name = str(name).encode()
    if not isinstance(name, bytes):
        return None
    delimiter = delim.decode("ascii", "replace") if isinstance(delim, bytes) else ""
    flags = frozenset(a.decode("ascii", "replace").lower() for a in attrs if isinstance(a, bytes))
    return flags, delimiter, name


_STATUS_KEYS = {
    b"MESSAGES": "messages",
    b"UIDNEXT": "uidnext",
    b"UIDVALIDITY": "uidvalidity",
    b"HIGHESTMODSEQ": "highestmodseq",
}


def parse_status_line(rest: bytes) -> tuple[bytes, FolderStatus] | None:
    """The part after `* STATUS `: (raw mailbox name, status)."""
    try:
        name, pos = p.read_value(rest, 0)
        pos = _skip_spaces(rest, pos)
        items, _ = p.read_value(rest, pos)
    except ProtocolError:
        return None
    if isinstance(name, int):
        name = str(name).encode()
    if not isinstance(name, bytes) or not isinstance(items, list):
        return None
    values: dict[str, int] = {}
    for key, value in zip(items[::2], items[1::2], strict=False):
        field_name = _STATUS_KEYS.get(key.upper()) if isinstance(key, bytes) else None
        if field_name is not None and isinstance(value, int):
            values[field_name] = value
    return name, FolderStatus(**values)


def _skip_spaces(data: bytes, pos: int) -> int:
    while data[pos : pos + 1] == b" ":
        pos += 1
    return pos


def decode_mailbox(raw: bytes) -> str:
    return p.decode_utf7(raw)


# ----------------------------------------------------------------------------- SASL


def _plain(username: str, password: str) -> bytes:
    return f"\0{username}\0{password}".encode()


def _xoauth2(username: str, token: str) -> bytes:
    return f"user={username}\x01auth=Bearer {token}\x01\x01".encode()


def _oauthbearer(username: str, token: str, host: str, port: int) -> bytes:
    user = username.replace("=", "=3D").replace(",", "=2C")
    return f"n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01".encode()


def _one_shot(first: bytes) -> Callable[[bytes], bytes]:
    """A SASL responder sending `first`, then an empty response to any further challenge
    (XOAUTH2/OAUTHBEARER send a JSON error challenge before failing)."""
    sent = False

    def respond(_challenge: bytes) -> bytes:
        nonlocal sent
        if sent:
            return b""
        sent = True
        return first

    return respond


def _login_steps(username: str, password: str) -> Callable[[bytes], bytes]:
    """SASL LOGIN: the user name, then the password."""
    steps = iter((username.encode(), password.encode()))
    return lambda _challenge: next(steps, b"")


def choose_mechanism(configured: str, caps: frozenset[str], oauth: bool) -> str:
    """The login method: "PLAIN", "LOGIN" (SASL), "LOGIN-CMD" (the LOGIN command),
    "XOAUTH2" or "OAUTHBEARER". AuthError when the server allows nothing that fits.

    `auto` with a token prefers XOAUTH2 (the most widely deployed), else OAUTHBEARER; with a
    password SASL PLAIN (UTF-8 safe, one round trip with SASL-IR), else the LOGIN command
    unless LOGINDISABLED, else SASL LOGIN. An explicit choice is tried as configured."""
    configured = configured.lower()
    sasl = {c[5:] for c in caps if c.startswith("AUTH=")}
    if configured == "xoauth2":
        return "XOAUTH2"
    if configured == "oauthbearer":
        return "OAUTHBEARER"
    if oauth:
        if "XOAUTH2" in sasl:
            return "XOAUTH2"
        if "OAUTHBEARER" in sasl:
            return "OAUTHBEARER"
        raise AuthError(
            "The server offers neither XOAUTH2 nor OAUTHBEARER, so the OAuth2 token cannot be "
            "used. Remove oauth2_token_command and use a password."
        )
    if configured == "plain":
        return "PLAIN"
    login_cmd_ok = "LOGINDISABLED" not in caps
    if configured == "login":
        return "LOGIN-CMD" if login_cmd_ok else "LOGIN"
    if "PLAIN" in sasl:
        return "PLAIN"
    if login_cmd_ok:
        return "LOGIN-CMD"
    if "LOGIN" in sasl:
        return "LOGIN"
    raise AuthError(
        "The server does not allow a password login here (LOGINDISABLED and no AUTH=PLAIN "
        "or AUTH=LOGIN). Check the port and tls settings, or use OAuth2 if the provider "
        "requires it."
    )


# ----------------------------------------------------------------------------- the connection


class ImapConnection:
    """One IMAP session. Not thread-safe: the account worker's thread owns it.

    Typical use::

        conn = ImapConnection(server, max_literal=config.max_message_size)
        conn.connect()
        conn.login(username, password=secret)
        folders = conn.list_folders()
        sel = conn.select("INBOX", qresync=(uidvalidity, modseq, b"1:500"))
        for item in conn.fetch([b"501:*"], HEADER_ITEMS): ...
        conn.logout()
    """

    def __init__(self, server: ServerConfig, *, max_literal: int = 50 * 1024 * 1024) -> None:
        self.server = server
        self.max_literal = max(max_literal, 1024 * 1024)
        self.hard_literal = max(p.HARD_LITERAL_LIMIT, self.max_literal)
        self.caps: frozenset[str] = frozenset()
        self.enabled: set[str] = set()
        self.alerts: list[str] = []  # [ALERT] texts, for the user
        self.changes_seen = False  # unsolicited EXISTS/EXPUNGE/FETCH/VANISHED arrived
        self.selected: str | None = None
        self.readonly = False  # the selected folder was opened read-only
        self._imap: imaplib.IMAP4 | None = None
        self._reader: p.ResponseReader | None = None
        self._tags = itertools.count(1)
        self._raw_names: dict[str, bytes] = {}
        self._bye = ""

    # ------------------------------------------------------------ connecting

    @property
    def connected(self) -> bool:
        return self._imap is not None

    def _where(self) -> str:
        return f"{self.server.host}:{self.server.port}"

    def connect(self) -> None:
        """TCP, TLS (implicit or required STARTTLS), greeting; capabilities known after."""
        server = self.server
        context = context_for(server)  # ConfigError for a refused plaintext link
        implicit = server.tls is TLSMode.IMPLICIT
        try:
            imap: imaplib.IMAP4
            if implicit:
                assert context is not None
                imap = _TLSIMAP4(
                    server.host, server.port, context, server.timeout, self.hard_literal
                )
            else:
                imap = _PlainIMAP4(server.host, server.port, server.timeout, self.hard_literal)
        except imaplib.IMAP4.abort as exc:
            raise self._translate(exc) from None
        except imaplib.IMAP4.error as exc:
            raise ProtocolError(
                f"{self._where()} did not greet like an IMAP server ({server_text(str(exc))}). "
                "Check host and port."
            ) from None
        except Exception as exc:
            raise self._translate(exc) from None
        self._imap = imap
        try:
            if server.tls is TLSMode.STARTTLS:
                if imap.state != "NONAUTH":
                    raise TLSError(
                        f"{self._where()} claimed the session was already authenticated "
                        "(PREAUTH) before STARTTLS. That is how an attacker would skip "
                        'encryption, so tuimail stopped. Use tls = "implicit" if the server '
                        "supports it."
                    )
                caps = {str(c).upper() for c in imap.capabilities}
                if "STARTTLS" not in caps:
                    raise TLSError(
                        f"{self._where()} does not offer STARTTLS, so the connection cannot be "
                        'encrypted. Use tls = "implicit" (usually port 993) or another server.',
                        "STARTTLS not offered",
                    )
                assert context is not None
                try:
                    imap.starttls(context)
                except imaplib.IMAP4.abort as exc:
                    raise self._translate(exc) from None
                except imaplib.IMAP4.error as exc:
                    raise TLSError(
                        f"{self._where()} refused STARTTLS ({server_text(str(exc))}). tuimail "
                        'never continues without encryption. Try tls = "implicit".',
                        "STARTTLS refused",
                    ) from None
            self._install_reader()
            if implicit and isinstance(imap.welcome, bytes):
                self._note(imap.welcome)  # a greeting [ALERT]; a plaintext one is not believed
            # imaplib asked CAPABILITY right after the greeting (over TLS when implicit) or
            # again over TLS after STARTTLS, with the plaintext cache cleared: trustworthy.
            self.caps = frozenset(str(c).upper() for c in imap.capabilities)
            if not self.caps:
                self.caps = self._capability()
        except BaseException as exc:
            self._drop()
            if isinstance(exc, TuimailError):
                raise
            if isinstance(exc, Exception):
                raise self._translate(exc) from None
            raise

    def _install_reader(self) -> None:
        assert self._imap is not None
        stream = self._imap.file
        assert isinstance(stream, SocketReader)
        self._reader = p.ResponseReader(stream, self.max_literal, hard_literal=self.hard_literal)

    @property
    def preauthenticated(self) -> bool:
        return self._imap is not None and self._imap.state == "AUTH"

    def login(
        self, username: str, *, password: Secret | None = None, token: Secret | None = None
    ) -> None:
        """Authenticate (nothing to do after an implicit-TLS PREAUTH greeting)."""
        client = self._require()
        if self.preauthenticated:
            return
        if self.server.tls is not TLSMode.NONE and not isinstance(client.sock, ssl.SSLSocket):
            raise TLSError("Refusing to send credentials before TLS is established.")
        mech = choose_mechanism(self.server.auth, self.caps, token is not None)
        oauth = mech in ("XOAUTH2", "OAUTHBEARER")
        secret = token if oauth else password
        if secret is None:
            raise AuthError(
                "An OAuth2 token is needed: set oauth2_token_command."
                if oauth
                else "No password to log in with."
            )
        if mech == "LOGIN-CMD":
            try:
                user_ascii = username.encode("ascii")
                pass_ascii = secret.value.encode("ascii")
            except UnicodeEncodeError:
                raise AuthError(
                    "The server only accepts the LOGIN command, which cannot carry a non-ASCII "
                    "user name or password."
                ) from None
            done = self._login_command(user_ascii, pass_ascii)
        else:
            if mech == "PLAIN":
                responder = _one_shot(_plain(username, secret.value))
            elif mech == "LOGIN":
                responder = _login_steps(username, secret.value)
            elif mech == "XOAUTH2":
                responder = _one_shot(_xoauth2(username, secret.value))
            else:
                responder = _one_shot(
                    _oauthbearer(username, secret.value, self.server.host, self.server.port)
                )
            done = self._authenticate(mech, responder)
        if done.status != b"OK":
            what = "token" if oauth else "password"
            raise AuthError(
                f"{self._where()} refused the login for {username!r} "
                f"({server_text(done.text) or done.status.decode()}). Check the user name and "
                f"the {what}"
                + (
                    " (oauth2_token_command)."
                    if oauth
                    else " (`tuimail password set ACCOUNT`, or password_command)."
                )
            )
        client.state = "AUTH"
        client.untagged_responses.clear()
        # Capabilities usually grow after login (CONDSTORE, QRESYNC, MOVE...).
        if done.code == b"CAPABILITY":
            self.caps = frozenset(
                c.decode("ascii", "replace").upper() for c in done.code_args.split()
            )
        else:
            self.caps = self._capability()

    def _authenticate(self, mech: str, responder: Callable[[bytes], bytes]) -> p.Tagged:
        tag = self._tag()
        if self.has("SASL-IR") and mech != "LOGIN":
            first = base64.b64encode(responder(b"")) or b"="
            self._send(b"%s AUTHENTICATE %s %s\r\n" % (tag, mech.encode(), first))
        else:
            self._send(b"%s AUTHENTICATE %s\r\n" % (tag, mech.encode()))
        for _ in range(10):  # PLAIN/LOGIN/XOAUTH2 need at most 3 steps
            data = self._read()
            if data.startswith(b"+"):
                try:
                    challenge = base64.b64decode(data[1:].strip(), validate=False)
                except ValueError:
                    challenge = b""
                self._send(base64.b64encode(responder(challenge)) + b"\r\n")
                continue
            if data.startswith(b"* "):
                self._note(data)
                continue
            done = p.parse_tagged(data)
            if done is None or done.tag != tag:
                self._drop()
                raise ProtocolError(f"{self._where()} sent an unexpected line during login.")
            if done.code == b"ALERT":
                self.alerts.append(server_text(done.text))
            return done
        self._send(b"*\r\n")  # cancel a conversation that does not end
        return self._until_tagged(tag)

    def _login_command(self, user: bytes, password: bytes) -> p.Tagged:
        """LOGIN with both arguments as literals (no quoting pitfalls for any password)."""
        tag = self._tag()
        if self.has("LITERAL+"):
            self._send(
                b"%s LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n"
                % (tag, len(user), user, len(password), password)
            )
        else:
            self._send(b"%s LOGIN {%d}\r\n" % (tag, len(user)))
            self._expect_continuation(tag)
            self._send(b"%s {%d}\r\n" % (user, len(password)))
            self._expect_continuation(tag)
            self._send(password + b"\r\n")
        return self._until_tagged(tag)

    # ------------------------------------------------------------ raw commands

    def _require(self) -> imaplib.IMAP4:
        if self._imap is None:
            raise NetworkError("Not connected to the IMAP server.")
        return self._imap

    def _tag(self) -> bytes:
        return b"W%d" % next(self._tags)

    def _send(self, data: bytes) -> None:
        client = self._require()
        try:
            client.sock.sendall(data)
        except OSError as exc:
            self._drop()
            raise self._translate(exc) from None

    def _read(self) -> bytes:
        reader = self._reader
        if reader is None:
            raise NetworkError("Not connected to the IMAP server.")
        try:
            return reader.read_response()
        except ProtocolError:
            self._drop()
            raise
        except NetworkError as exc:
            self._drop()
            if self._bye:
                raise NetworkError(
                    f"{self._where()} closed the connection: {self._bye}. It will be retried."
                ) from None
            raise NetworkError(f"{self._where()}: {exc.message} It will be retried.") from None
        except Exception as exc:
            self._drop()
            raise self._translate(exc) from None

    def _note(self, data: bytes) -> None:
        """An untagged response nobody asked for: remember what matters."""
        u = p.parse_untagged(data)
        if u is None:
            if data.startswith(b"* ") and p.parse_fetch(data) is not None:
                self.changes_seen = True
            return
        if u.kind in (b"EXISTS", b"EXPUNGE", b"VANISHED", b"FETCH", b"RECENT"):
            self.changes_seen = True
        elif u.kind == b"BYE":
            self._bye = server_text(u.rest)
        elif u.code == b"ALERT":
            self.alerts.append(server_text(u.rest))

    def _until_tagged(self, tag: bytes, handler: Callable[[bytes], bool] | None = None) -> p.Tagged:
        while True:
            data = self._read()
            if data.startswith(b"* "):
                if handler is None or not handler(data):
                    self._note(data)
                continue
            if data.startswith(b"+"):
                continue  # a continuation nobody waits for: ignore
            done = p.parse_tagged(data)
            if done is None:
                self._drop()
                raise ProtocolError(
                    f"{self._where()} sent an unparseable line: {server_text(data, 80)}"
                )
            if done.tag != tag:
                self._drop()
                raise ProtocolError(f"{self._where()} answered a command that was not sent.")
            if done.code == b"ALERT":
                self.alerts.append(server_text(done.text))
            return done

    def _expect_continuation(self, tag: bytes) -> None:
        while True:
            data = self._read()
            if data.startswith(b"+"):
                return
            if data.startswith(b"* "):
                self._note(data)
                continue
            done = p.parse_tagged(data)
            if done is not None and done.tag == tag:
                raise self._failed("command", done)
            self._drop()
            raise ProtocolError(f"{self._where()} sent an unexpected line.")

    def _failed(self, what: str, done: p.Tagged) -> CommandFailed:
        text = server_text(done.text)
        code = f" [{server_text(done.code, 40)}]" if done.code else ""
        return CommandFailed(
            f"{self._where()} refused {what}: {done.status.decode()}{code} {text}".rstrip(),
            done.status,
            done.code,
            done.code_args,
            text,
        )

    def command(
        self, cmd: bytes, handler: Callable[[bytes], bool] | None = None, what: str = ""
    ) -> p.Tagged:
        """Send one command and read to its completion; CommandFailed on NO/BAD."""
        tag = self._tag()
        self._send(tag + b" " + cmd + b"\r\n")
        done = self._until_tagged(tag, handler)
        if done.status != b"OK":
            raise self._failed(what or cmd.split(b" ", 1)[0].decode("ascii", "replace"), done)
        return done

    def _capability(self) -> frozenset[str]:
        found: list[bytes] = []

        def handler(data: bytes) -> bool:
            if data[:13].upper() == b"* CAPABILITY ":
                found.append(data[13:])
                return True
            return False

        self.command(b"CAPABILITY", handler)
        if not found:
            raise ProtocolError(f"{self._where()} did not list its capabilities.")
        return frozenset(c.decode("ascii", "replace").upper() for c in found[-1].split())

    def has(self, cap: str) -> bool:
        return cap.upper() in self.caps

    def enable(self, *caps: str) -> set[str]:
        wanted = [c for c in caps if self.has(c)]
        if not wanted or not self.has("ENABLE"):
            return set()
        got: set[str] = set()

        def handler(data: bytes) -> bool:
            if data[:10].upper() == b"* ENABLED ":
                got.update(c.decode("ascii", "replace").upper() for c in data[10:].split())
                return True
            return False

        self.command(b"ENABLE " + " ".join(wanted).encode(), handler)
        self.enabled |= got
        return got

    # ------------------------------------------------------------ folders

    def mailbox(self, name: str) -> bytes:
        """A folder name as a command argument (the server's own bytes when it listed it)."""
        raw = self._raw_names.get(name)
        if raw is not None:
            return p.quote(raw)
        try:
            return p.encode_mailbox(name)
        except ValueError:
            raise NotFoundError(f"Folder name not usable on IMAP: {name!r}.") from None

    def list_folders(self, subscribed_only: bool = False) -> Listing:
        """LIST with SPECIAL-USE roles, plus LSUB when only subscribed folders are wanted.
        With LIST-STATUS (RFC 5819) the same round trip brings every folder's STATUS, so
        a sync can skip folders that did not change without selecting them. Names with
        control characters are skipped with a warning."""
        options = []
        if self.has("SPECIAL-USE") and self.has("LIST-EXTENDED"):
            options.append(b"SPECIAL-USE")
        if self.has("LIST-STATUS"):
            items = b"MESSAGES UIDNEXT UIDVALIDITY"
            if self.has("CONDSTORE"):
                items += b" HIGHESTMODSEQ"
            options.append(b"STATUS (" + items + b")")
        cmd = b'LIST "" "*"'
        if options:
            cmd += b" RETURN (" + b" ".join(options) + b")"
        entries: list[ListEntry] = []
        warnings: list[str] = []
        raw_names: dict[str, bytes] = {}
        statuses: dict[str, FolderStatus] = {}

        def on_list(data: bytes) -> bool:
            head = data[:9].upper()
            if head.startswith(b"* STATUS "):
                parsed_status = parse_status_line(data[9:].rstrip(b"\r\n"))
                if parsed_status is not None:
                    raw, status = parsed_status
                    name = decode_mailbox(raw)
                    statuses["INBOX" if name.upper() == "INBOX" else name] = status
                return True
            if not head.startswith(b"* LIST "):
                return False
            parsed = parse_list_line(data[7:].rstrip(b"\r\n"))
            if parsed is None:
                warnings.append(f"Unparseable LIST entry skipped: {server_text(data, 80)}")
                return True
            attrs, delim, raw = parsed
            name = decode_mailbox(raw)
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name) or any(
                c in raw for c in b"\r\n\x00"
            ):
                warnings.append(f"Folder with control characters in its name skipped: {name!r}")
                return True
            if name.upper() == "INBOX":
                name = "INBOX"
            if name not in raw_names:
                raw_names[name] = raw
                entries.append(ListEntry(name, delim, attrs))
            return True

        self.command(cmd, on_list, "LIST")
        subscribed: set[str] | None = None
        if subscribed_only:
            subscribed = set()

            def on_lsub(data: bytes) -> bool:
                if data[:7].upper() != b"* LSUB ":
                    return False
                parsed = parse_list_line(data[7:].rstrip(b"\r\n"))
                if parsed is not None:
                    name = decode_mailbox(parsed[2])
                    subscribed.add("INBOX" if name.upper() == "INBOX" else name)
                return True

            self.command(b'LSUB "" "*"', on_lsub, "LSUB")
        self._raw_names = raw_names
        known = {e.name for e in entries}
        return Listing(
            folder_infos(entries, subscribed),
            warnings,
            {k: v for k, v in statuses.items() if k in known},
        )

    def status(self, name: str) -> FolderStatus:
        """STATUS (UIDNEXT UIDVALIDITY) of a folder, without selecting it."""
        found: list[FolderStatus] = []

        def handler(data: bytes) -> bool:
            if data[:9].upper() != b"* STATUS ":
                return False
            parsed = parse_status_line(data[9:].rstrip(b"\r\n"))
            if parsed is not None:
                found.append(parsed[1])
            return True

        try:
            self.command(b"STATUS " + self.mailbox(name) + b" (UIDNEXT UIDVALIDITY)", handler)
        except CommandFailed as exc:
            if exc.status == b"NO":
                raise NotFoundError(f"Folder {name!r} cannot be read on the server.") from None
            raise
        return found[-1] if found else FolderStatus()

    def select(
        self,
        name: str,
        *,
        qresync: tuple[int, int, bytes] | None = None,
        condstore: bool = False,
        readonly: bool = False,
    ) -> SelectResult:
        """SELECT (or EXAMINE) with `(QRESYNC (uidvalidity modseq known-uids))` or
        `(CONDSTORE)`; collects VANISHED (EARLIER) and the changed flags QRESYNC sends."""
        verb = b"EXAMINE " if readonly else b"SELECT "
        cmd = verb + self.mailbox(name)
        if qresync is not None and "QRESYNC" in self.enabled:
            uidvalidity, modseq, known = qresync
            extra = b" " + known if known else b""
            cmd += b" (QRESYNC (%d %d%s))" % (uidvalidity, modseq, extra)
        elif condstore and self.has("CONDSTORE"):
            cmd += b" (CONDSTORE)"
        result = SelectResult(name, readonly=readonly)

        def handler(data: bytes) -> bool:
            f = p.parse_fetch(data)
            if f is not None:
                if f.uid is not None and f.flags is not None:
                    result.changed[f.uid] = f.flags
                return True
            u = p.parse_untagged(data)
            if u is None:
                return False
            if u.kind == b"EXISTS" and u.number is not None:
                result.exists = u.number
            elif u.kind == b"VANISHED":
                _earlier, ranges = p.parse_vanished(u.rest)
                result.vanished = p.merge_ranges([*result.vanished, *ranges])
            elif u.kind == b"OK" and u.code:
                numbers = p.parse_number_list(u.code_args)
                if u.code == b"UIDVALIDITY" and numbers:
                    result.uidvalidity = numbers[0]
                elif u.code == b"UIDNEXT" and numbers:
                    result.uidnext = numbers[0]
                elif u.code == b"HIGHESTMODSEQ" and numbers:
                    result.highestmodseq = numbers[0]
                elif u.code == b"NOMODSEQ":
                    result.highestmodseq = 0
                elif u.code == b"CLOSED":
                    # QRESYNC: what follows belongs to the new mailbox; before, to the old.
                    result.vanished.clear()
                    result.changed.clear()
                elif u.code == b"ALERT":
                    self.alerts.append(server_text(u.rest))
            elif u.kind in (b"EXPUNGE", b"RECENT", b"FLAGS"):
                pass
            else:
                return False
            return True

        self.selected = None
        try:
            done = self.command(cmd, handler, f"to open folder {name!r}")
        except CommandFailed as exc:
            if exc.status == b"NO":
                raise NotFoundError(
                    f"Folder {name!r} cannot be opened on the server: {exc.server_text}"
                ) from None
            raise
        if done.code == b"READ-ONLY":
            result.readonly = True
        if result.uidvalidity == 0:
            raise ProtocolError(f"{self._where()} did not report UIDVALIDITY for {name!r}.")
        self.selected = name
        self.readonly = result.readonly
        client = self._require()
        client.state = "SELECTED"
        return result

    # ------------------------------------------------------------ fetching

    def fetch(
        self,
        uid_sets: Iterable[bytes],
        items: bytes,
        *,
        changedsince: int = 0,
        window: int = 2,
    ) -> Iterator[p.FetchData]:
        """`UID FETCH` for each set, up to `window` commands in flight (pipelined); yields
        every FETCH with a UID in arrival order. When the generator finishes, every command
        completed OK. Abandoning it (or an error) drops the connection, whose stream is then
        mid-response."""
        modifier = b" (CHANGEDSINCE %d)" % changedsince if changedsince else b""
        pending: deque[bytes] = deque()
        sets = iter(uid_sets)
        finished = False

        def send_next() -> bool:
            uid_set = next(sets, None)
            if uid_set is None:
                return False
            tag = self._tag()
            self._send(b"%s UID FETCH %s %s%s\r\n" % (tag, uid_set, items, modifier))
            pending.append(tag)
            return True

        stream = self._require().file
        take = stream.take_fetch if isinstance(stream, SocketReader) else None
        try:
            for _ in range(max(window, 1)):
                if not send_next():
                    break
            while pending:
                if take is not None:
                    fast = take(self.max_literal)
                    if fast is not None:
                        yield fast
                        continue
                data = self._read()
                if data.startswith(b"* "):
                    f = p.parse_fetch(data)
                    if f is None:
                        self._note(data)
                    elif f.uid is not None:
                        yield f
                    else:
                        self.changes_seen = True
                    continue
                if data.startswith(b"+"):
                    continue
                done = p.parse_tagged(data)
                if done is None or done.tag != pending[0]:
                    self._drop()
                    raise ProtocolError(f"{self._where()} sent an unexpected line during FETCH.")
                pending.popleft()
                if done.status != b"OK" and done.code != b"EXPUNGEISSUED":
                    raise self._failed("FETCH", done)
                send_next()
            finished = True
        finally:
            if not finished:
                self._drop()

    def search(self, criteria: bytes) -> list[tuple[int, int]]:
        """`UID SEARCH criteria` -> UID ranges (ESEARCH's compact form when available)."""
        ranges: list[tuple[int, int]] = []
        uids: list[int] = []
        if self.has("ESEARCH"):
            cmd = b"UID SEARCH RETURN (ALL) " + criteria

            def handler(data: bytes) -> bool:
                if data[:10].upper() == b"* ESEARCH ":
                    found, _count = p.parse_esearch(data[10:].rstrip(b"\r\n"))
                    ranges.extend(found)
                    return True
                return False
        else:
            cmd = b"UID SEARCH " + criteria

            def handler(data: bytes) -> bool:
                if data[:8].upper() == b"* SEARCH":
                    uids.extend(p.parse_search(data[8:].rstrip(b"\r\n")))
                    return True
                return False

        self.command(cmd, handler, "SEARCH")
        return p.merge_ranges([*ranges, *p.ranges_of(uids)])

    # ------------------------------------------------------------ changing

    def store_flags(
        self,
        uids: Sequence[int],
        add: Sequence[bytes],
        remove: Sequence[bytes],
        unchangedsince: int = 0,
    ) -> StoreResult:
        """`UID STORE +FLAGS.SILENT` / `-FLAGS.SILENT` (with UNCHANGEDSINCE when given)."""
        modified: list[tuple[int, int]] = []
        cond = (
            b" (UNCHANGEDSINCE %d)" % unchangedsince
            if unchangedsince and self.has("CONDSTORE")
            else b""
        )
        for chunk in p.chunk_uids(sorted(set(uids)), 5000):
            uid_set = p.format_uid_set(chunk)
            for sign, atoms in ((b"+", add), (b"-", remove)):
                if not atoms:
                    continue
                cmd = b"UID STORE %s%s %sFLAGS.SILENT (%s)" % (
                    uid_set,
                    cond,
                    sign,
                    b" ".join(atoms),
                )
                try:
                    done = self.command(cmd, _swallow_fetch, "STORE")
                except CommandFailed as exc:
                    if exc.code == b"MODIFIED":
                        modified.extend(p.parse_uid_set(exc.code_args.strip()))
                        continue
                    raise
                if done.code == b"MODIFIED":
                    modified.extend(p.parse_uid_set(done.code_args.strip()))
        return StoreResult(p.merge_ranges(modified))

    def copy_or_move(self, uids: Sequence[int], dest: str, *, move: bool) -> dict[int, int]:
        """UID MOVE (RFC 6851) or UID COPY; returns COPYUID's old -> new UID map (empty
        when the server has no UIDPLUS)."""
        mapping: dict[int, int] = {}
        dest_arg = self.mailbox(dest)
        verb = b"UID MOVE " if move else b"UID COPY "

        def take(code: bytes, args: bytes, sent: Sequence[int]) -> None:
            if code != b"COPYUID":
                return
            parts = args.split()
            if len(parts) != 3:
                return
            src = p.expand_uid_set(parts[1], len(sent))
            dst = p.expand_uid_set(parts[2], len(sent))
            if src is None or dst is None or len(src) != len(dst):
                return
            allowed = set(sent)
            mapping.update((s, d) for s, d in zip(src, dst, strict=True) if s in allowed)

        for chunk in p.chunk_uids(sorted(set(uids)), 5000):

            def handler(data: bytes, chunk: Sequence[int] = chunk) -> bool:
                u = p.parse_untagged(data)
                if u is not None and u.kind == b"OK" and u.code == b"COPYUID":
                    take(u.code, u.code_args, chunk)
                    return True
                return False

            try:
                done = self.command(verb + p.format_uid_set(chunk) + b" " + dest_arg, handler)
            except CommandFailed as exc:
                if exc.code == b"TRYCREATE":
                    raise NotFoundError(f"Folder {dest!r} does not exist on the server.") from None
                raise
            take(done.code, done.code_args, chunk)
        return mapping

    def expunge(self, uids: Sequence[int]) -> None:
        """UID EXPUNGE of exactly these UIDs (needs UIDPLUS; never a bare EXPUNGE, which
        would also remove other messages the user had marked deleted)."""
        if not self.has("UIDPLUS"):
            raise ProtocolError("The server has no UID EXPUNGE (UIDPLUS).")
        for chunk in p.chunk_uids(sorted(set(uids)), 5000):
            self.command(b"UID EXPUNGE " + p.format_uid_set(chunk), _swallow_fetch, "EXPUNGE")

    def append(
        self, folder: str, raw: bytes, flags: Sequence[bytes], when: datetime | None = None
    ) -> tuple[int, int] | None:
        """APPEND; returns APPENDUID's (uidvalidity, uid) when the server reports it."""
        if len(raw) > self.hard_literal:
            raise ProtocolError("Message too large to upload.")
        tag = self._tag()
        head = b"%s APPEND %s (%s)" % (tag, self.mailbox(folder), b" ".join(flags))
        if when is not None:
            head += b" " + p.format_internaldate(when)
        literal_plus = self.has("LITERAL+")
        head += b" {%d%s}\r\n" % (len(raw), b"+" if literal_plus else b"")
        if literal_plus:
            self._send(head + raw + b"\r\n")
        else:
            self._send(head)
            self._expect_continuation(tag)
            self._send(raw + b"\r\n")
        done = self._until_tagged(tag)
        if done.status != b"OK":
            if done.code == b"TRYCREATE":
                raise NotFoundError(f"Folder {folder!r} does not exist on the server.")
            raise self._failed("APPEND", done)
        if done.code == b"APPENDUID":
            numbers = p.parse_number_list(done.code_args)
            if len(numbers) == 2:
                return numbers[0], numbers[1]
        return None

    # ------------------------------------------------------------ waiting

    def noop(self) -> None:
        self.command(b"NOOP")

    def idle(self, timeout: float, stop: threading.Event) -> bool:
        """IDLE up to `timeout` (capped below 29 minutes); True when the server reported a
        change (EXISTS, EXPUNGE, FETCH, VANISHED). Returns within ~1 s of `stop` being set.
        Without IDLE support, a NOOP poll."""
        if not self.has("IDLE"):
            self.changes_seen = False
            deadline = time.monotonic() + timeout
            next_poll = 0.0
            while not stop.is_set() and not self.changes_seen:
                now = time.monotonic()
                if now >= deadline:
                    break
                if now >= next_poll:
                    self.noop()  # reports EXISTS/EXPUNGE/FETCH like IDLE would
                    next_poll = now + NOOP_POLL
                    continue
                stop.wait(min(POLL_STEP, deadline - now, next_poll - now))
            return self.changes_seen
        client = self._require()
        sock = client.sock
        reader_stream = client.file
        assert isinstance(reader_stream, SocketReader)
        self.changes_seen = False
        tag = self._tag()
        self._send(tag + b" IDLE\r\n")
        self._expect_continuation(tag)
        deadline = time.monotonic() + min(timeout, IDLE_MAX)
        try:
            while not stop.is_set() and not self.changes_seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if not reader_stream.buffered():
                    ready, _, _ = select.select([sock], [], [], min(POLL_STEP, left))
                    if not ready:
                        continue
                data = self._read()
                if data.startswith(b"* "):
                    self._note(data)
                    if self._bye:
                        raise NetworkError(f"{self._where()} ended the session: {self._bye}.")
                elif not data.startswith(b"+"):
                    done = p.parse_tagged(data)
                    if done is not None and done.tag == tag:
                        return self.changes_seen  # the server ended IDLE itself
                    self._drop()
                    raise ProtocolError(f"{self._where()} sent an unexpected line during IDLE.")
        except (OSError, ValueError) as exc:
            self._drop()
            raise self._translate(exc) from None
        self._send(b"DONE\r\n")
        done = self._until_tagged(tag)
        if done.status != b"OK":
            raise self._failed("IDLE", done)
        return self.changes_seen

    # ------------------------------------------------------------ closing

    def logout(self) -> None:
        """LOGOUT politely (short wait), then close. Never raises."""
        if self._imap is None:
            return
        with contextlib.suppress(Exception):
            self._imap.sock.settimeout(min(self.server.timeout, 2.0))
            self.command(b"LOGOUT")
        self._drop()

    def _drop(self) -> None:
        """Close the socket at once (after an error the stream cannot be trusted)."""
        client, self._imap = self._imap, None
        self._reader = None
        self.selected = None
        if client is None:
            return
        sock = getattr(client, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    close = _drop

    def _translate(self, exc: BaseException) -> TuimailError:
        if isinstance(exc, TuimailError):
            return exc
        if isinstance(exc, imaplib.IMAP4.abort):
            return NetworkError(
                f"The connection to {self._where()} broke ({server_text(str(exc))}). "
                "It will be retried."
            )
        if isinstance(exc, imaplib.IMAP4.error):
            return ProtocolError(f"{self._where()}: {server_text(str(exc))}")
        return describe_error(exc, self.server.host, self.server.port, "IMAP server")


def _swallow_fetch(data: bytes) -> bool:
    """FETCH responses echoed by STORE/EXPUNGE (flags, MODSEQ) need no handling."""
    return data[:2] == b"* " and p.parse_fetch(data) is not None


__all__ = [
    "BODY_ITEMS",
    "FLAG_ITEMS",
    "HEADER_ITEMS",
    "CommandFailed",
    "FolderStatus",
    "ImapConnection",
    "ListEntry",
    "Listing",
    "SelectResult",
    "StoreResult",
    "choose_mechanism",
    "folder_infos",
]
