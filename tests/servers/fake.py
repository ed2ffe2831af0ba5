r"""A scripted fake server for fault and attack tests: it plays raw protocol lines.

A script is a list of steps played against one client connection, in order:

- `send(data)`: write `data`; `{tag}` is replaced by the tag of the last IMAP command read.
- `send_raw(data)`: write `data` verbatim in one write (TCP_NODELAY is on), so several
  responses arrive in one packet: the way to inject a response behind a legitimate one.
- `expect(pattern)`: read one line from the client.  A `bytes` pattern must be a
  case-insensitive prefix of the line (for IMAP, of the line after its tag); a compiled
  regex is searched in the whole line; `None` accepts any line.  A line that does not match
  is recorded in `mismatches` and ends the conversation.  `expect(p, data=True)` reads an
  untagged line (an IMAP continuation such as AUTHENTICATE's base64, or literal data).
- `starttls(context)`: upgrade the connection in place (server side).  A failed handshake
  (a client refusing a bad certificate) ends the conversation and is kept in `tls_error`.
- `sleep(seconds)`, `close()`: pause; hang up.

After the last step the server keeps reading (and recording, without answering) until the
client hangs up or the server is stopped, so a final LOGOUT/QUIT is on record too.

Everything the client sends is recorded line by line with whether it came before or after
TLS, so a test can prove that no credential was ever sent in the clear
(`assert_never_sent_in_clear`).  Several scripts serve successive connections, each in its
own thread.  Only loopback addresses are accepted as hosts.

IMAP example (the client must STARTTLS before it logs in)::

    server = FakeServer(
        [
            send(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"),
            expect(b"CAPABILITY"),
            send(b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n{tag} OK done\r\n"),
            expect(b"STARTTLS"),
            send(b"{tag} OK begin TLS\r\n"),
            starttls(ca.server.server_context()),
            expect(b"CAPABILITY"),
            send(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n"),
            expect(b"LOGIN"),
            send(b"{tag} OK logged in\r\n"),
            expect(b"LOGOUT"),
            send(b"* BYE\r\n{tag} OK bye\r\n"),
            close(),
        ],
        protocol="imap",
    ).start()
    ...  # point the client at server.host, server.port
    server.wait()
    server.assert_never_sent_in_clear("the password")

POP3 example::

    FakeServer([
        send(b"+OK ready\r\n"),
        expect(b"CAPA"), send(b"+OK\r\nSTLS\r\nUSER\r\n.\r\n"),
        expect(b"STLS"), send(b"+OK begin TLS\r\n"),
        starttls(ctx),
        expect(b"USER "), send(b"+OK\r\n"),
        expect(b"PASS "), send(b"+OK logged in\r\n"),
        expect(b"QUIT"), send(b"+OK bye\r\n"), close(),
    ], protocol="pop3")

SMTP example (a STARTTLS response with an injected line behind it, in one packet)::

    FakeServer([
        send(b"220 fake ESMTP\r\n"),
        expect(b"EHLO"), send(b"250-fake\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"),
        expect(b"STARTTLS"),
        send_raw(b"220 go ahead\r\n250 injected before the handshake\r\n"),
        starttls(ctx),
        expect(b"EHLO"), ...
    ], protocol="smtp")
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Protocol = Literal["imap", "pop3", "smtp"]
Pattern = bytes | re.Pattern[bytes] | None

MAX_LINE = 1024 * 1024


# ----------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class Send:
    data: bytes
    raw: bool = False


@dataclass(frozen=True)
class Expect:
    pattern: Pattern
    data: bool = False


@dataclass(frozen=True)
class StartTLS:
    context: ssl.SSLContext


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Close:
    pass


Step = Send | Expect | StartTLS | Sleep | Close


def send(data: bytes) -> Send:
    """Write `data`, with `{tag}` replaced by the last IMAP tag read."""
    return Send(data)


def send_raw(data: bytes) -> Send:
    """Write `data` exactly as given, in one write (one packet on loopback)."""
    return Send(data, raw=True)


def expect(pattern: Pattern = None, *, data: bool = False) -> Expect:
    """Read one client line; see the module docstring for how `pattern` matches.

    `data=True` marks a line that is not a command (an IMAP continuation such as the
    base64 of AUTHENTICATE, or literal data): it has no tag, and a bytes pattern is a
    prefix of the whole line.
    """
    return Expect(pattern, data)


def starttls(context: ssl.SSLContext) -> StartTLS:
    """Upgrade the connection to TLS with this server-side context."""
    return StartTLS(context)


def sleep(seconds: float) -> Sleep:
    return Sleep(seconds)


def close() -> Close:
    return Close()


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Chunk:
    """A line (or trailing fragment) one side sent, and whether TLS protected it."""

    data: bytes
    tls: bool
    seq: int = field(default=0, compare=False, repr=False)  # order across both directions


@dataclass
class Conversation:
    """What happened on one connection."""

    index: int
    received: list[Chunk] = field(default_factory=list)
    sent: list[Chunk] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    tls_error: str | None = None
    tls_established: bool = False
    client_closed: bool = False  # the client hung up while the script still expected input
    script_done: threading.Event = field(default_factory=threading.Event)  # steps all played
    finished: threading.Event = field(default_factory=threading.Event)  # connection closed

    def lines(self, *, tls: bool | None = None) -> list[bytes]:
        return [c.data for c in self.received if tls is None or c.tls is tls]

    def transcript(self) -> str:
        """Both sides in order of recording, for failure messages."""
        events = [("C", c) for c in self.received] + [("S", c) for c in self.sent]
        events.sort(key=lambda e: e[1].seq)
        out = []
        for who, chunk in events:
            mark = "tls" if chunk.tls else "plain"
            out.append(f"{who} [{mark}] {chunk.data!r}")
        return "\n".join(out)


class _Seq:
    def __init__(self) -> None:
        self._n = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._n += 1
            return self._n


class _ClientGone(Exception):
    pass


# ----------------------------------------------------------------------------- server


class FakeServer:
    """Plays `scripts` against successive client connections on a free loopback port."""

    def __init__(
        self,
        *scripts: Sequence[Step],
        protocol: Protocol | None = None,
        tls: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        timeout: float = 10.0,
    ) -> None:
        if not scripts:
            raise ValueError("FakeServer needs at least one script")
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError("the fake server listens on loopback only")
        self.scripts = [list(s) for s in scripts]
        self.protocol = protocol
        self.implicit_tls = tls
        self.host = host
        self.timeout = timeout
        self.port = 0
        self.conversations: list[Conversation] = []
        self._seq = _Seq()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._workers: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> FakeServer:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        listener.listen(8)
        listener.settimeout(0.2)
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"fake-server-{self.port}", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._accept_thread is not None:
            self._accept_thread.join(5)
        for worker in self._workers:
            worker.join(5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(
        self, timeout: float = 10.0, *, connections: int | None = None, closed: bool = False
    ) -> None:
        """Wait until `connections` (default: all scripts) conversations have played every
        step, or with `closed=True` until their connections are closed (so that lines the
        client sent after the script, e.g. LOGOUT, are on record)."""
        want = len(self.scripts) if connections is None else connections
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                convs = list(self.conversations)
            done = [
                c for c in convs if c.finished.is_set() or (not closed and c.script_done.is_set())
            ]
            if len(done) >= want:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"fake server: {len(done)} of {want} conversations done\n" + self.transcript()
                )
            time.sleep(0.01)

    # ----------------------------------------------------------------- results

    @property
    def mismatches(self) -> list[str]:
        return [m for c in self.conversations for m in c.mismatches]

    @property
    def conversation(self) -> Conversation:
        """The first conversation (most tests have one)."""
        if not self.conversations:
            raise AssertionError("no client connected to the fake server")
        return self.conversations[0]

    @property
    def received(self) -> list[Chunk]:
        """Every line any client sent, in order of arrival."""
        chunks = [c for conv in self.conversations for c in conv.received]
        return sorted(chunks, key=lambda c: c.seq)

    def client_bytes(self, *, tls: bool | None = None) -> bytes:
        """All the client sent, joined (only the plaintext part with `tls=False`)."""
        return b"".join(c.data for c in self.received if tls is None or c.tls is tls)

    def transcript(self) -> str:
        return "\n\n".join(
            f"--- connection {c.index}\n{c.transcript()}" for c in self.conversations
        )

    def assert_never_sent_in_clear(self, secret: str | bytes) -> None:
        """Fail if `secret` appears in anything the client sent before TLS: as is, or inside
        a base64 token (AUTH PLAIN/LOGIN encode it)."""
        needle = secret.encode() if isinstance(secret, str) else secret
        for chunk in self.received:
            if chunk.tls:
                continue
            if needle in chunk.data or any(needle in d for d in _base64_tokens(chunk.data)):
                raise AssertionError(
                    f"secret sent in the clear: {chunk.data!r}\n{self.transcript()}"
                )

    # ----------------------------------------------------------------- internals

    def _accept_loop(self) -> None:
        assert self._listener is not None
        index = 0
        while not self._stop.is_set() and index < len(self.scripts):
            try:
                sock, _addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conv = Conversation(index)
            with self._lock:
                self.conversations.append(conv)
                self._sockets.append(sock)
            worker = threading.Thread(
                target=_Player(self, sock, self.scripts[index], conv).run,
                name=f"fake-server-{self.port}-{index}",
                daemon=True,
            )
            self._workers.append(worker)
            worker.start()
            index += 1

    def _record(self, target: list[Chunk], data: bytes, tls: bool) -> None:
        target.append(Chunk(data, tls, self._seq.next()))

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)


_B64_TOKEN = re.compile(rb"[A-Za-z0-9+/]{4,}={0,2}")


def _base64_tokens(line: bytes) -> list[bytes]:
    decoded = []
    for token in _B64_TOKEN.findall(line):
        with contextlib.suppress(binascii.Error, ValueError):
            decoded.append(base64.b64decode(token + b"=" * (-len(token) % 4), validate=True))
    return decoded


class _Player:
    """Plays one script on one connection."""

    def __init__(
        self, server: FakeServer, sock: socket.socket, script: list[Step], conv: Conversation
    ) -> None:
        self.server = server
        self.sock: socket.socket = sock
        self.script = script
        self.conv = conv
        self.tls = False
        self.buf = b""
        self.tag = b""
        sock.settimeout(server.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run(self) -> None:
        try:
            if self.server.implicit_tls is not None and not self._upgrade(self.server.implicit_tls):
                return
            for step in self.script:
                if not self._play(step):
                    return
            self.conv.script_done.set()
            self._drain()
        except _ClientGone:
            pass
        except OSError as exc:
            if not self.server._stop.is_set():
                self.conv.mismatches.append(f"connection {self.conv.index}: {exc!r}")
        finally:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.conv.script_done.set()
            self.conv.finished.set()

    def _play(self, step: Step) -> bool:
        if isinstance(step, Send):
            data = step.data if step.raw else step.data.replace(b"{tag}", self.tag or b"*")
            self.sock.sendall(data)
            self.server._record(self.conv.sent, data, self.tls)
        elif isinstance(step, Expect):
            try:
                line = self._readline()
            except _ClientGone:
                self.conv.client_closed = True
                raise
            except TimeoutError:
                self.conv.mismatches.append(
                    f"connection {self.conv.index}: timed out waiting for {step.pattern!r}"
                )
                return False
            tagged = self.server.protocol == "imap" and not step.data
            if tagged:
                self.tag = line.split(b" ", 1)[0].strip()
            if not self._matches(step.pattern, line, tagged):
                self.conv.mismatches.append(
                    f"connection {self.conv.index}: expected {step.pattern!r}, got {line!r}"
                )
                return False
        elif isinstance(step, StartTLS):
            if self.buf:
                # Sent after STARTTLS but before the handshake: recorded, never answered.
                self.server._record(self.conv.received, self.buf, False)
                self.buf = b""
            return self._upgrade(step.context)
        elif isinstance(step, Sleep):
            if self.server._stop.wait(step.seconds):
                return False
        elif isinstance(step, Close):
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            return False
        return True

    def _matches(self, pattern: Pattern, line: bytes, tagged: bool) -> bool:
        if pattern is None:
            return True
        if isinstance(pattern, re.Pattern):
            return pattern.search(line) is not None
        body = line
        if tagged:
            parts = line.split(b" ", 1)
            body = parts[1] if len(parts) == 2 else b""
        return body.lower().startswith(pattern.lower())

    def _upgrade(self, context: ssl.SSLContext) -> bool:
        try:
            wrapped = context.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.conv.tls_error = f"{type(exc).__name__}: {exc}"
            return False
        self.sock = wrapped
        self.server._track(wrapped)
        self.tls = True
        self.conv.tls_established = True
        return True

    def _readline(self) -> bytes:
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE:
                break
            try:
                data = self.sock.recv(65536)
            except ssl.SSLError as exc:
                raise _ClientGone from exc
            if not data:
                if self.buf:
                    line, self.buf = self.buf, b""
                    self.server._record(self.conv.received, line, self.tls)
                raise _ClientGone
            self.buf += data
        end = self.buf.find(b"\n") + 1 or len(self.buf)
        line, self.buf = self.buf[:end], self.buf[end:]
        self.server._record(self.conv.received, line, self.tls)
        return line

    def _drain(self) -> None:
        # Record whatever else the client says until it hangs up or we are stopped.
        self.sock.settimeout(0.2)
        while not self.server._stop.is_set():
            try:
                self._readline()
            except TimeoutError:
                continue
