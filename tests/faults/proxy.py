"""A loopback TCP proxy that cuts connections at a chosen point (fault injection).

    proxy = FaultProxy(target_port).start()
    proxy.arm(Fault("down", after_bytes=12_345))   # the next connection is cut there
    ... point the client at 127.0.0.1:proxy.port ...
    proxy.stats.cuts                                # where it really was cut, if it was

It copies bytes untouched in both directions, so TLS (implicit or after STARTTLS) runs end
to end between the client and the real server and the certificate still verifies. A cut
forwards exactly `after_bytes` bytes of the faulted direction, then closes both sides
(with a FIN, or a RST when `reset`), so the server may already have acted on a command
whose reply the client never sees: the interesting case for crash safety.

`delay` (seconds per forwarded chunk) and `chunk` (largest chunk) slow a transfer down so
that a process killed after a random delay dies in the middle of the protocol rather than
during interpreter start-up.

Threads rather than asyncio: the proxy runs beside blocking clients (imapclient, poplib)
and asyncio ones (aiosmtplib) in the test process and must never share their event loop.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["up", "down"]  # up: client -> server; down: server -> client

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Fault:
    """Where to cut: after `after_bytes` bytes (or at the `after_reads`-th read) in
    `direction` on the `connection`-th connection accepted since `arm()` (0 = first)."""

    direction: Direction
    after_bytes: int | None = None
    after_reads: int | None = None
    connection: int = 0
    reset: bool = False
    # Seconds between reaching the cut point and closing, during which nothing more is
    # passed on in either direction: the peer that just got the last bytes has time to
    # act on them (a server to run the command it received), and its answer is lost.
    linger: float = 0.0

    def __post_init__(self) -> None:
        if (self.after_bytes is None) == (self.after_reads is None):
            raise ValueError("give exactly one of after_bytes and after_reads")
        if (self.after_bytes or 0) < 0 or (self.after_reads is not None and self.after_reads < 1):
            raise ValueError("a cut point must be >= 0 bytes or >= 1 read")


@dataclass(frozen=True)
class Cut:
    """A cut that happened: on which connection, in which direction, after how many bytes
    of that direction had been forwarded."""

    connection: int
    direction: Direction
    at_byte: int


@dataclass
class ProxyStats:
    connections: int = 0
    up: int = 0  # bytes forwarded, all connections
    down: int = 0
    cuts: list[Cut] = field(default_factory=list)
    first_connection_at: float | None = None  # time.monotonic() of the first accept


class _Link:
    """One proxied connection: two sockets, two pump threads, one optional fault."""

    def __init__(
        self,
        proxy: FaultProxy,
        index: int,
        client: socket.socket,
        upstream: socket.socket,
        fault: Fault | None,
    ) -> None:
        self.proxy = proxy
        self.index = index
        self.client = client
        self.upstream = upstream
        self.fault = fault
        self.counts: dict[Direction, int] = {"up": 0, "down": 0}
        self.reads: dict[Direction, int] = {"up": 0, "down": 0}
        self.closed = False
        self.dropping = False  # cut point reached, lingering: nothing passes any more
        self._pumps_left = 2
        self._lock = threading.Lock()

    def pump_finished(self) -> bool:
        """One pump has returned; True when it was the last one."""
        with self._lock:
            self._pumps_left -= 1
            return self._pumps_left <= 0

    def allowance(self, direction: Direction, size: int) -> tuple[int, bool]:
        """How many of the next `size` bytes may pass, and whether to cut after them."""
        fault = self.fault
        if fault is None or fault.direction != direction:
            return size, False
        if fault.after_bytes is not None:
            left = fault.after_bytes - self.counts[direction]
            if left <= size:
                return max(left, 0), True
            return size, False
        assert fault.after_reads is not None
        if self.reads[direction] >= fault.after_reads:
            # This read is the N-th: it is forwarded whole, then the line goes dead.
            return size, True
        return size, False

    def pump(self, direction: Direction) -> None:
        up = direction == "up"
        src, dst = (self.client, self.upstream) if up else (self.upstream, self.client)
        proxy = self.proxy
        try:
            fault = self.fault
            if fault is not None and fault.direction == direction and fault.after_bytes == 0:
                self.cut(direction)
                return
            while True:
                data = src.recv(proxy.chunk)
                if not data:
                    break
                with self._lock:
                    if self.dropping:
                        continue
                    self.reads[direction] += 1
                    allowed, cut = self.allowance(direction, len(data))
                    # Decided under the lock, before the last bytes go out: the other pump
                    # must not forward an answer that races in before cut() runs.
                    self.dropping = self.dropping or cut
                if proxy.delay:
                    time.sleep(proxy.delay)
                if allowed:
                    dst.sendall(data[:allowed])
                    with self._lock:
                        self.counts[direction] += allowed
                    proxy._count(direction, allowed)
                if cut:
                    self.cut(direction)
                    return
            # A clean half-close is passed on, as the other side would see it directly.
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
        except OSError:
            self.close()
            return
        finally:
            proxy._pump_done(self)

    def cut(self, direction: Direction) -> None:
        with self._lock:
            if self.closed:
                return
            at = self.counts[direction]
            self.dropping = True
        self.proxy._record_cut(Cut(self.index, direction, at))
        fault = self.fault
        if fault is not None and fault.linger:
            time.sleep(fault.linger)
        self.close(reset=fault is not None and fault.reset)

    def close(self, *, reset: bool = False) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                if reset:
                    # SO_LINGER 0: the last close sends a RST instead of a FIN. SHUT_RD sends
                    # nothing but wakes the other pump's recv(), which otherwise keeps the
                    # socket open (close() does not interrupt a recv in another thread).
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.shutdown(socket.SHUT_RD)
                else:
                    sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class FaultProxy:
    """`127.0.0.1:port` -> `target_host:target_port`, with one armed fault at a time."""

    def __init__(
        self,
        target_port: int,
        target_host: str = LOOPBACK,
        *,
        delay: float = 0.0,
        chunk: int = 65536,
    ) -> None:
        if target_host != LOOPBACK:
            raise ValueError("the fault proxy only ever talks to 127.0.0.1")
        self.target = (target_host, target_port)
        self.delay = delay
        self.chunk = chunk
        self.stats = ProxyStats()
        self.port = 0
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._threads: set[threading.Thread] = set()
        self._fault: Fault | None = None
        self._armed_at = 0  # stats.connections when arm() was called

    # ---- lifecycle

    def start(self) -> FaultProxy:
        listener = socket.create_server((LOOPBACK, 0))
        listener.settimeout(0.1)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, close every open connection, wait for the threads."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.drop_all()
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- control

    def arm(self, fault: Fault | None) -> None:
        """Apply `fault` to the `fault.connection`-th connection accepted from now on (None:
        pass everything through)."""
        with self._lock:
            self._fault = fault
            self._armed_at = self.stats.connections

    def drop_all(self) -> None:
        """Close every open connection now (a network failure for all of them)."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()

    @property
    def fired(self) -> bool:
        return bool(self.stats.cuts)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no connection is open (the client and server have both let go)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._links:
                    return True
            time.sleep(0.01)
        return False

    # ---- internals

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                index = self.stats.connections
                self.stats.connections += 1
                if self.stats.first_connection_at is None:
                    self.stats.first_connection_at = time.monotonic()
                fault = self._fault
                if fault is not None and index - self._armed_at != fault.connection:
                    fault = None
                link = _Link(self, index, client, upstream, fault)
                self._links.add(link)
                pumps = [
                    threading.Thread(target=link.pump, args=(d,), daemon=True, name=f"pump-{d}")
                    for d in ("up", "down")
                ]
                self._threads.update(pumps)
            for t in pumps:
                t.start()

    def _count(self, direction: Direction, n: int) -> None:
        with self._lock:
            if direction == "up":
                self.stats.up += n
            else:
                self.stats.down += n

    def _record_cut(self, cut: Cut) -> None:
        with self._lock:
            self.stats.cuts.append(cut)

    def _pump_done(self, link: _Link) -> None:
        with self._lock:
            self._threads.discard(threading.current_thread())
        if link.pump_finished():
            link.close()
            with self._lock:
                self._links.discard(link)
