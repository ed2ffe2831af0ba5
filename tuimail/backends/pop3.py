"""POP3 over stdlib `poplib`: TLS always, bounded reads, pipelined retrieval.

Security:
- TLS is implicit (995) or STLS, and STLS is *required*: when CAPA does not list STLS, or
  the server refuses it, we abort before any credential is sent. Anything the server sent
  in plaintext after its STLS `+OK` (an injection attempt) is discarded, and capabilities
  are asked again over TLS (RFC 2595).
- Certificates are always verified with `tls.client_context` (poplib's own default context
  verifies nothing).
- Credentials: SASL PLAIN when offered, else USER/PASS; XOAUTH2/OAUTHBEARER when configured.
  APOP is never used (an MD5 challenge adds nothing over TLS and is weak without it).
- Nothing from the server reaches an error message unsanitized.

Bounds: status and listing lines are limited to poplib's `_MAXLINE`; listings to
`MAX_LISTING` bytes; a message to the caller's limit (the account's `max_message_size`).
A per-message failure is reported for that message; when it leaves the stream unreadable
(a reply that never ends, a server that lies about sizes) the connection is marked
`broken` and the caller reconnects for the remaining messages. Long lines *inside* a
message are legal in practice (HTML mail), so only the message's total size bounds them.

Speed: poplib reads a RETR reply one `readline` per line, which is the whole cost of a
download. Here replies are read in large chunks and split at the terminating `.` line
with `bytes.find`, and RETR commands are pipelined when the server offers PIPELINING.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import poplib
import re
import socket
import ssl
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime

from tuimail.backends.tls import context_for, describe_error, set_nodelay
from tuimail.config import ServerConfig
from tuimail.errors import (
    AuthError,
    NetworkError,
    ProtocolError,
    TLSError,
    TuimailError,
)
from tuimail.mail.sanitize import sanitize_line
from tuimail.models import TLSMode
from tuimail.secrets import Secret

# poplib's own bound for one line; status lines and listing entries must fit in it.
MAX_LINE: int = int(getattr(poplib, "_MAXLINE", 2048))
# A UIDL or LIST listing: ~30 bytes a message, so this is millions of messages.
MAX_LISTING = 64 * 1024 * 1024
# `TOP n 0`: the header block of one message.
MAX_HEADER = 1024 * 1024
# How far past an over-long line we read to find its end before giving the stream up.
MAX_DRAIN = 1024 * 1024
# Commands in flight at once with PIPELINING. A thousand RETRs are ~13 KB: they always fit
# in the socket buffers, so neither side can block on sending commands while the other
# waits (no deadlock); and the server can run ahead by hundreds of messages into our
# receive buffer while we store the previous batch, which is what keeps it busy.
PIPELINE_WINDOW = 1000
# RFC 2449: a command line (with CRLF) is at most 255 octets.
MAX_COMMAND = 255
_RECV = 256 * 1024


def clean(text: bytes | str, limit: int = 200) -> str:
    """Server text made safe for an error message: one line, no controls, bounded."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = sanitize_line(text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


class LineTooLong(Exception):
    """A line exceeded its bound. `prefix` is its start; `synced` says whether the rest of
    the line could be skipped (the stream is still usable)."""

    def __init__(self, prefix: bytes, synced: bool) -> None:
        super().__init__("line too long")
        self.prefix = prefix
        self.synced = synced


class ReplyTooLarge(Exception):
    """A multi-line reply exceeded its bound; `synced` as for LineTooLong."""

    def __init__(self, size: int, synced: bool) -> None:
        super().__init__(f"reply larger than {size} bytes")
        self.size = size
        self.synced = synced


class _Reader:
    """Buffered, bounded reads from the socket (plain or TLS).

    Invariant: after `readline` returns, the LF that ended the line is still in the buffer
    just before `_pos`, so `read_multiline` can find a terminator on the very first line.
    """

    __slots__ = ("_buf", "_pos", "_sock")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()
        self._pos = 0

    def discard(self) -> int:
        """Drop everything buffered (bytes the server sent before we asked); returns how many."""
        dropped = len(self._buf) - self._pos
        self._buf.clear()
        self._pos = 0
        return dropped

    def _fill(self) -> None:
        data = self._sock.recv(_RECV)
        if not data:
            raise EOFError("the server closed the connection")
        self._buf += data

    def _compact(self) -> None:
        if self._pos > 65536:
            del self._buf[: self._pos - 1]
            self._pos = 1

    def readline(self, limit: int = MAX_LINE) -> bytes:
        """One line including its LF; raises LineTooLong past `limit` bytes."""
        self._compact()
        buf = self._buf
        start = self._pos
        scan = start
        while True:
            i = buf.find(b"\n", scan, start + limit)
            if i >= 0:
                self._pos = i + 1
                return bytes(buf[start : i + 1])
            if len(buf) - start >= limit:
                prefix = bytes(buf[start : start + limit])
                self._pos = start + limit
                raise LineTooLong(prefix, self._skip_line())
            scan = len(buf)
            self._fill()

    def _skip_line(self) -> bool:
        """Discard up to and including the next LF; False if it did not come within MAX_DRAIN."""
        dropped = 0
        while True:
            i = self._buf.find(b"\n", self._pos)
            if i >= 0:
                self._pos = i + 1
                return True
            dropped += len(self._buf) - self._pos
            del self._buf[:]
            self._buf += b"\n"  # keep the look-behind invariant
            self._pos = 1
            if dropped > MAX_DRAIN:
                return False
            self._fill()

    def read_multiline(self, limit: int) -> bytes:
        """The body of a multi-line reply whose status line was just read, dot-unstuffed,
        line endings as sent. Raises ReplyTooLarge when it grows past `limit` bytes."""
        buf = self._buf
        start = self._pos
        # The status line's LF sits at start - 1: the first line can be the terminator too.
        scan = start - 1
        # The wire form is a little longer than the message (stuffed dots): allow for it
        # while reading, and check the exact size at the end.
        wire_limit = limit + limit // 16 + 1024
        while True:
            j = buf.find(b"\n.", scan)
            if j >= 0:
                after = bytes(buf[j + 2 : j + 4])
                if after[:1] == b"\n":
                    end = j + 3
                elif after == b"\r\n":
                    end = j + 4
                elif after in (b"", b"\r"):
                    end = 0  # cannot tell yet: read more
                else:
                    scan = j + 2  # a stuffed line, not the end
                    continue
                if end:
                    self._pos = end
                    content = bytes(buf[start : j + 1])
                    if content[:2] == b"..":
                        content = content[1:]
                    content = content.replace(b"\n..", b"\n.")
                    if len(content) > limit:
                        raise ReplyTooLarge(limit, synced=True)
                    return content
                scan = j
            else:
                scan = max(len(buf) - 1, start - 1)
            if len(buf) - start > wire_limit:
                raise ReplyTooLarge(limit, synced=False)
            self._fill()


class _Wire(poplib.POP3):
    """poplib's POP3 with our socket setup, our bounded reader, and a safe STLS."""

    def __init__(
        self, host: str, port: int, timeout: float, implicit: ssl.SSLContext | None
    ) -> None:
        self._implicit = implicit
        self._reader: _Reader | None = None
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float) -> socket.socket:
        sock: socket.socket = super()._create_socket(timeout)  # type: ignore[misc]
        set_nodelay(sock)
        if self._implicit is not None:
            try:
                sock = self._implicit.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
            self._tls_established = True
        self._reader = _Reader(sock)
        return sock

    @property
    def reader(self) -> _Reader:
        assert self._reader is not None
        return self._reader

    def _getline(self) -> tuple[bytes, int]:
        line = self.reader.readline(MAX_LINE)
        octets = len(line)
        if line[-2:] == b"\r\n":
            return line[:-2], octets
        return line[:-1], octets

    def _getlongresp(self) -> tuple[bytes, list[bytes], int]:
        # Called after the status line was read (by `long`): the body only.
        resp = b""
        body = self.reader.read_multiline(MAX_LISTING)
        lines = body.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        return resp, lines, len(body)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    # Typed equivalents of poplib's private _putcmd/_getresp/_shortcmd/_longcmd.

    def put(self, line: str) -> None:
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def status(self) -> bytes:
        """One status line; poplib.error_proto for anything but `+...`."""
        line, _ = self._getline()
        if not line.startswith(b"+"):
            raise poplib.error_proto(line)
        return line

    def short(self, line: str) -> bytes:
        self.put(line)
        return self.status()

    def long(self, line: str) -> list[bytes]:
        self.put(line)
        self.status()
        _resp, lines, _octets = self._getlongresp()
        return lines

    def start_tls(self, context: ssl.SSLContext) -> None:
        """STLS without poplib's own checks: the caller has checked CAPA already."""
        resp = self.short("STLS")
        if not resp.startswith(b"+OK"):
            raise poplib.error_proto(resp)
        # Whatever followed the +OK in plaintext is an attacker's injection: drop it. Bytes
        # still in the kernel buffer would break the handshake below, which is also safe.
        self.reader.discard()
        self.sock = context.wrap_socket(self.sock, server_hostname=self.host)
        self.file = self.sock.makefile("rb")
        self._reader = _Reader(self.sock)
        self._tls_established = True

    @property
    def encrypted(self) -> bool:
        return bool(self._tls_established)


@dataclass(frozen=True)
class Capabilities:
    """CAPA as parsed; `known` is False when the server does not answer CAPA."""

    names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    known: bool = True

    def has(self, name: str) -> bool:
        return name.upper() in self.names

    @property
    def sasl(self) -> frozenset[str]:
        return frozenset(m.upper() for m in self.names.get("SASL", ()))

    @property
    def pipelining(self) -> bool:
        return self.has("PIPELINING")


def parse_capa(lines: Sequence[bytes]) -> Capabilities:
    names: dict[str, tuple[str, ...]] = {}
    for line in lines:
        words = line.decode("ascii", "replace").split()
        if words:
            names[words[0].upper()] = tuple(words[1:])
    return Capabilities(names)


@dataclass(frozen=True)
class Listing:
    """`LIST` or `UIDL` parsed: number -> value, plus entries we could not read."""

    entries: dict[int, str]
    bad: tuple[str, ...] = ()


def parse_listing(lines: Sequence[bytes]) -> Listing:
    """Lines of `n value`. A malformed line is kept (sanitized) in `bad`, never guessed at.

    Values are kept as printable ASCII: any other byte is escaped (`_token`), so a UIDL with
    odd bytes still identifies its message rather than making it undownloadable.
    """
    entries: dict[int, str] = {}
    bad: list[str] = []
    for line in lines:
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[0].isdigit() and int(parts[0]) > 0:
            entries[int(parts[0])] = _token(parts[1])
        elif line.strip():
            bad.append(clean(line, 80))
    return Listing(entries, tuple(bad))


def _token(raw: bytes) -> str:
    """`raw` as printable ASCII, injectively: other bytes (and the backslash) as `\\xNN`."""
    if all(0x21 <= c <= 0x7E and c != 0x5C for c in raw):
        return raw.decode("ascii")
    return "".join(chr(c) if 0x21 <= c <= 0x7E and c != 0x5C else f"\\x{c:02x}" for c in raw)


def parse_sizes(listing: Listing) -> dict[int, int]:
    """LIST values as sizes; an unreadable size becomes -1 (unknown, checked while reading)."""
    return {n: int(v) if v.isdigit() else -1 for n, v in listing.entries.items()}


@dataclass(frozen=True)
class Fetched:
    """One RETR/TOP result: `raw` on success, else `error` says why (already sanitized)."""

    number: int
    raw: bytes | None
    error: str = ""


# ---------------------------------------------------------------------------- pure helpers


def stuff(message: bytes) -> bytes:
    """The wire form of a multi-line reply body (for tests and fake servers): dot-stuffed,
    CRLF-terminated, with the final `.` line."""
    if message and not message.endswith(b"\n"):
        message += b"\r\n"
    if message.startswith(b"."):
        message = b"." + message
    return message.replace(b"\n.", b"\n..") + b".\r\n"


def _unfold_headers(block: bytes) -> list[tuple[str, str]]:
    """(lower-case name, value with folding whitespace collapsed), in order, up to the first
    empty line; never raises."""
    headers: list[tuple[str, str]] = []
    for raw_line in block.split(b"\n"):
        raw_line = raw_line.rstrip(b"\r")
        if not raw_line:
            break
        line = raw_line.decode("utf-8", "replace")
        if line[:1] in (" ", "\t"):
            if headers:
                name, value = headers[-1]
                headers[-1] = (name, " ".join((value + " " + line).split()))
            continue
        name, sep, value = line.partition(":")
        name = name.strip()
        if sep and name and " " not in name:
            headers.append((name.lower(), " ".join(value.split())))
    return headers


def header_block(raw: bytes) -> bytes:
    """The header block of a message (everything before the first empty line)."""
    if raw.startswith((b"\r\n", b"\n")):
        return b""
    m = re.search(rb"\n\r?\n", raw)
    return raw if m is None else raw[: m.start() + 1]


# The headers that identify one delivery and that servers do not rewrite. The message size
# is left out on purpose: mbox-backed servers (the kind without UIDL) add `Status:` headers
# after a RETR, which changes the size reported by LIST and would make old mail look new.
_FINGERPRINT_HEADERS = ("message-id", "date", "from", "subject")


def fingerprint(headers: bytes, size: int) -> str:
    """A key for a message on a server without UIDL, from its header block (`TOP n 0`).

    Message-ID, Date, From, Subject and the topmost Received header (added by the final
    server on delivery, so it tells two deliveries of one message apart). When none of
    them is present, the whole header block and the size are used instead. The result
    contains a space, which a real UIDL never does, so the two kinds of key cannot clash.
    """
    parsed = _unfold_headers(headers)
    found: dict[str, str] = {}
    for name, value in parsed:
        if name in _FINGERPRINT_HEADERS and name not in found:
            found[name] = value
        elif name == "received" and "received" not in found:
            found["received"] = value
    parts = [found.get(name, "") for name in (*_FINGERPRINT_HEADERS, "received")]
    if any(parts):
        data = "\0".join(parts).encode("utf-8", "replace")
    else:
        data = headers.strip() + b"\0" + str(size).encode()
    return "fp " + hashlib.sha256(data).hexdigest()[:40]


# The first Received field with its continuation lines (the header block only: a body line
# cannot match because callers pass `header_block(raw)`).
_RECEIVED = re.compile(rb"(?:^|\n)received:([^\n]*(?:\n[ \t][^\n]*)*)", re.IGNORECASE)


def arrival_time(headers: bytes) -> datetime | None:
    """When the final server received the message: the date of the topmost Received."""
    m = _RECEIVED.search(headers)
    if m is None:
        return None
    _, sep, when = m.group(1).decode("ascii", "replace").rpartition(";")
    if not sep:
        return None
    try:
        date = parsedate_to_datetime(" ".join(when.split()))
    except (TypeError, ValueError, IndexError):
        return None
    return date if date.tzinfo is not None else None


def auth_plain_response(username: str, password: str) -> str:
    return base64.b64encode(f"\0{username}\0{password}".encode()).decode("ascii")


def xoauth2_response(username: str, token: str) -> str:
    return base64.b64encode(f"user={username}\x01auth=Bearer {token}\x01\x01".encode()).decode(
        "ascii"
    )


def oauthbearer_response(username: str, token: str, host: str, port: int) -> str:
    gs2 = f"n,a={username},"
    data = f"{gs2}\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"
    return base64.b64encode(data.encode()).decode("ascii")


def choose_auth(configured: str, caps: Capabilities) -> str:
    """The mechanism to use: "PLAIN", "USER", "XOAUTH2" or "OAUTHBEARER".

    `auto` prefers SASL PLAIN when offered (one round trip, UTF-8 safe), else USER/PASS.
    `login` means the POP3 USER/PASS commands.
    """
    configured = configured.lower()
    if configured in ("xoauth2", "oauthbearer"):
        return configured.upper()
    if configured == "plain":
        return "PLAIN"
    if configured == "login":
        return "USER"
    if "PLAIN" in caps.sasl:
        return "PLAIN"
    return "USER"


def _response_code(resp: bytes) -> str:
    """The RFC 2449 response code of `-ERR [CODE] text`, upper-case, or ""."""
    m = re.match(rb"-ERR \[([A-Za-z0-9/-]+)", resp)
    return m.group(1).decode("ascii").upper() if m else ""


# ---------------------------------------------------------------------------- the client


class Pop3Client:
    """One POP3 session. Not thread-safe: one thread (the account worker) owns it.

    Typical use::

        client = Pop3Client.from_config(server)
        client.connect()                    # TCP, TLS (implicit or required STLS), CAPA
        client.login(server.username, password, server.auth)
        sizes = client.list_sizes(); uidls = client.uidls()
        for item in client.retrieve(numbers, limit): ...
        client.delete(numbers); client.quit()   # deletions happen only at QUIT
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: TLSMode,
        context: ssl.SSLContext | None,
        timeout: float = 30.0,
    ) -> None:
        if tls is not TLSMode.NONE and context is None:
            raise ValueError("a TLS mode needs an SSL context")
        self.host = host
        self.port = port
        self.tls = tls
        self.context = context
        self.timeout = timeout
        self.capabilities = Capabilities(known=False)
        self.greeting = ""
        self._wire: _Wire | None = None
        self._broken = False

    @classmethod
    def from_config(cls, server: ServerConfig) -> Pop3Client:
        """A client for `server` with the one TLS policy (`tls.context_for`)."""
        return cls(
            server.host,
            server.port,
            tls=server.tls,
            context=context_for(server),
            timeout=server.timeout,
        )

    # ---- state

    @property
    def connected(self) -> bool:
        return self._wire is not None

    @property
    def broken(self) -> bool:
        """True once a reply could not be read to its end: the session must be abandoned."""
        return self._broken

    @property
    def encrypted(self) -> bool:
        return self._wire is not None and self._wire.encrypted

    def _require(self) -> _Wire:
        if self._wire is None:
            raise NetworkError(f"Not connected to {self._where()}.")
        if self._broken:
            raise NetworkError(f"The connection to {self._where()} is out of step; reconnect.")
        return self._wire

    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def _fail(self, exc: BaseException) -> TuimailError:
        """Translate a low-level error and drop the connection (it is unusable now)."""
        self.abort()
        if isinstance(exc, poplib.error_proto | LineTooLong | ReplyTooLarge):
            text = exc.args[0] if exc.args else b""
            return ProtocolError(
                f"The POP3 server {self._where()} answered something unexpected "
                f"({clean(text if isinstance(text, bytes | str) else repr(text))})."
            )
        return describe_error(exc, self.host, self.port, "POP3 server")

    # ---- connection

    def connect(self) -> None:
        """Connect, establish TLS (implicit, or STLS which must succeed), read CAPA."""
        if self._wire is not None:
            return
        self._broken = False
        implicit = self.context if self.tls is TLSMode.IMPLICIT else None
        try:
            wire = _Wire(self.host, self.port, self.timeout, implicit)
        except (OSError, EOFError, poplib.error_proto, LineTooLong) as exc:
            raise self._fail(exc) from None
        self._wire = wire
        self.greeting = clean(wire.welcome)
        try:
            self.capabilities = self._capa()
            if self.tls is TLSMode.STARTTLS:
                self._starttls()
        except TuimailError:
            self.abort()
            raise
        except (OSError, EOFError, poplib.error_proto, LineTooLong, ReplyTooLarge) as exc:
            raise self._fail(exc) from None

    def _capa(self) -> Capabilities:
        wire = self._require()
        try:
            lines = wire.long("CAPA")
        except poplib.error_proto:
            return Capabilities(known=False)  # pre-RFC 2449 server
        return parse_capa(lines)

    def _starttls(self) -> None:
        wire = self._require()
        assert self.context is not None
        if not self.capabilities.has("STLS"):
            raise TLSError(
                f"The POP3 server {self._where()} does not offer STLS, so the password would "
                'travel unencrypted. Refusing to log in. Use tls = "implicit" (usually port '
                "995) if the server supports it; otherwise someone may be stripping STLS.",
                "STARTTLS not offered",
            )
        try:
            wire.start_tls(self.context)
        except poplib.error_proto as exc:
            raise TLSError(
                f"The POP3 server {self._where()} refused STLS "
                f"({clean(exc.args[0] if exc.args else b'')}). Refusing to log in without TLS.",
                "STARTTLS refused",
            ) from None
        except (OSError, EOFError) as exc:
            # Certificate and handshake problems: one wording for all protocols.
            raise self._fail(exc) from None
        # RFC 2595: forget what was said in plaintext and ask again over TLS.
        self.capabilities = self._capa()

    def login(self, username: str, secret: Secret, mechanism: str = "auto") -> None:
        """Authenticate; AuthError when refused. Never sends a credential without TLS
        unless the account explicitly allows plaintext to a loopback test server."""
        wire = self._require()
        if not wire.encrypted and self.tls is not TLSMode.NONE:
            raise TLSError(f"Refusing to send a password to {self._where()} without TLS.")
        if any(c in username or c in secret.value for c in "\r\n\0"):
            raise AuthError("The user name or password contains a line break or NUL.")
        mech = choose_auth(mechanism, self.capabilities)
        try:
            if mech == "USER":
                wire.short(f"USER {username}")
                wire.short(f"PASS {secret.value}")
            elif mech == "PLAIN":
                self._sasl("PLAIN", auth_plain_response(username, secret.value))
            elif mech == "XOAUTH2":
                self._sasl("XOAUTH2", xoauth2_response(username, secret.value))
            else:
                self._sasl(
                    "OAUTHBEARER",
                    oauthbearer_response(username, secret.value, self.host, self.port),
                )
        except poplib.error_proto as exc:
            resp = exc.args[0] if exc.args and isinstance(exc.args[0], bytes) else b""
            raise self._login_error(resp, mech) from None
        except (OSError, EOFError, LineTooLong) as exc:
            raise self._fail(exc) from None

    def _sasl(self, mechanism: str, response: str) -> None:
        wire = self._require()
        command = f"AUTH {mechanism} {response}"
        if len(command) + 2 <= MAX_COMMAND:
            resp = wire.short(command)
        else:
            resp = wire.short(f"AUTH {mechanism}")
            if not resp.startswith(b"+ ") and resp != b"+":
                raise poplib.error_proto(resp)
            wire.put(response)
            resp = wire.status()
        if resp.startswith(b"+ ") or resp == b"+":
            # A challenge instead of +OK: the mechanism failed (XOAUTH2 sends its error as
            # a challenge); an empty line ends the exchange with the final -ERR.
            wire.put("")
            resp = wire.status()
        if not resp.startswith(b"+OK"):
            raise poplib.error_proto(resp)

    def _login_error(self, resp: bytes, mech: str) -> TuimailError:
        code = _response_code(resp)
        text = clean(resp)
        if code == "IN-USE":
            return NetworkError(
                f"The mailbox on {self._where()} is in use by another POP3 session ({text}). "
                "It will be retried.",
                "Mailbox busy",
            )
        if code == "SYS/TEMP":
            return NetworkError(
                f"The POP3 server {self._where()} has a temporary problem ({text}). "
                "It will be retried."
            )
        how = {"USER": "USER/PASS", "PLAIN": "SASL PLAIN"}.get(mech, mech)
        return AuthError(
            f"The POP3 server {self._where()} refused the login ({how}): {text}. Check the "
            "user name and password (`tuimail password set ACCOUNT`)."
        )

    # ---- listings

    def _listing(self, command: str) -> Listing | None:
        """A multi-line listing, or None when the server answers -ERR (no such command)."""
        wire = self._require()
        try:
            wire.put(command)
            resp = wire.status()
        except poplib.error_proto:
            return None
        except (OSError, EOFError, LineTooLong) as exc:
            raise self._fail(exc) from None
        del resp
        return self._read_listing()

    def _read_listing(self) -> Listing:
        wire = self._require()
        # Line by line, so that one over-long entry spoils that entry only.
        entries: list[bytes] = []
        bad: list[str] = []
        total = 0
        try:
            while True:
                try:
                    line, octets = wire._getline()
                except LineTooLong as exc:
                    if not exc.synced:
                        raise
                    bad.append(clean(exc.prefix, 40) + " (entry too long)")
                    continue
                if line == b".":
                    break
                total += octets
                if total > MAX_LISTING:
                    raise ReplyTooLarge(MAX_LISTING, synced=False)
                entries.append(line[1:] if line.startswith(b"..") else line)
        except (OSError, EOFError, LineTooLong, ReplyTooLarge) as exc:
            raise self._fail(exc) from None
        parsed = parse_listing(entries)
        return Listing(parsed.entries, parsed.bad + tuple(bad))

    def list_sizes(self) -> tuple[dict[int, int], tuple[str, ...]]:
        """LIST: message number -> size in octets, plus unreadable entries."""
        listing = self._listing("LIST")
        if listing is None:
            raise ProtocolError(f"The POP3 server {self._where()} refused LIST.")
        return parse_sizes(listing), listing.bad

    def uidls(self) -> Listing | None:
        """UIDL: message number -> unique id; None when the server has no UIDL."""
        if self.capabilities.known and not self.capabilities.has("UIDL"):
            return None
        return self._listing("UIDL")

    # ---- messages

    def retrieve(self, numbers: Sequence[int], limit: int) -> Iterator[Fetched]:
        """RETR each message (pipelined when offered); yields one Fetched per number, in
        order, until done or until the connection breaks (then `broken` is True and the
        remaining numbers are not yielded)."""
        return self._multi("RETR {}", numbers, limit)

    def headers(self, numbers: Sequence[int]) -> Iterator[Fetched]:
        """`TOP n 0`: the header block of each message (pipelined); like `retrieve`."""
        return self._multi("TOP {} 0", numbers, MAX_HEADER)

    def _multi(self, template: str, numbers: Sequence[int], limit: int) -> Iterator[Fetched]:
        wire = self._require()
        window = PIPELINE_WINDOW if self.capabilities.pipelining else 1
        todo = iter(numbers)
        in_flight: deque[int] = deque()

        def send_more() -> None:
            commands = []
            while len(in_flight) < window:
                number = next(todo, None)
                if number is None:
                    break
                in_flight.append(number)
                commands.append(template.format(number).encode("ascii") + b"\r\n")
            if commands:
                wire.send_raw(b"".join(commands))

        try:
            send_more()
            while in_flight:
                number = in_flight.popleft()
                result = self._read_one(wire, number, limit)
                if self._broken:
                    self._close_quietly()
                    yield result
                    return
                if len(in_flight) <= window // 2:
                    send_more()
                yield result
        except (OSError, EOFError) as exc:
            raise self._fail(exc) from None
        finally:
            if in_flight and not self._broken:
                # The caller stopped early: replies are still coming, the stream is lost.
                self._broken = True
                self._close_quietly()

    def _read_one(self, wire: _Wire, number: int, limit: int) -> Fetched:
        reader = wire.reader
        try:
            status = reader.readline(MAX_LINE)
        except LineTooLong:
            self._broken = True
            return Fetched(number, None, "the server's reply line was too long")
        if status.startswith(b"-ERR"):
            return Fetched(number, None, f"the server refused it: {clean(status)}")
        if not status.startswith(b"+OK"):
            self._broken = True
            return Fetched(number, None, f"unexpected reply: {clean(status, 60)}")
        try:
            raw = reader.read_multiline(limit)
        except ReplyTooLarge as exc:
            if not exc.synced:
                self._broken = True
            return Fetched(
                number,
                None,
                f"larger than the {limit:,}-byte limit (max_message_size); left on the server",
            )
        return Fetched(number, raw)

    def delete(self, numbers: Sequence[int]) -> dict[int, str]:
        """DELE each message (pipelined when offered); returns the refusals. The server
        removes them only when QUIT succeeds: a dropped connection undoes them all."""
        wire = self._require()
        refused: dict[int, str] = {}
        window = PIPELINE_WINDOW if self.capabilities.pipelining else 1
        try:
            for i in range(0, len(numbers), window):
                chunk = numbers[i : i + window]
                wire.send_raw(b"".join(f"DELE {n}\r\n".encode("ascii") for n in chunk))
                for number in chunk:
                    try:
                        wire.status()
                    except poplib.error_proto as exc:
                        refused[number] = clean(exc.args[0] if exc.args else b"")
        except (OSError, EOFError, LineTooLong) as exc:
            raise self._fail(exc) from None
        return refused

    def quit(self) -> None:
        """QUIT: the server commits deletions now. ProtocolError when it says it could not."""
        wire = self._require()
        try:
            resp = wire.short("QUIT")
        except poplib.error_proto as exc:
            self._close_quietly()
            raise ProtocolError(
                f"The POP3 server {self._where()} could not remove the deleted messages "
                f"({clean(exc.args[0] if exc.args else b'')}); they will be deleted next time."
            ) from None
        except (OSError, EOFError, LineTooLong) as exc:
            raise self._fail(exc) from None
        del resp
        self._close_quietly()

    def abort(self) -> None:
        """Drop the connection without QUIT: the server undoes this session's DELEs."""
        self._close_quietly()

    def _close_quietly(self) -> None:
        wire, self._wire = self._wire, None
        if wire is None:
            return
        with contextlib.suppress(OSError, ssl.SSLError):
            wire.close()

    def close(self) -> None:
        """QUIT politely if possible, else drop; never raises."""
        if self._wire is None:
            return
        if self._broken:
            self._close_quietly()
            return
        try:
            self.quit()
        except TuimailError:
            self._close_quietly()
