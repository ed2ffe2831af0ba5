"""The fault proxy itself: it must cut exactly where it is told, and nowhere else."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from proxy import Cut, Fault, FaultProxy
from servers.certs import CertAuthority


class Peer:
    """A loopback server that runs `handler(conn)` for each connection and keeps what it
    received."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.handler = handler
        self.threads: list[threading.Thread] = []
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            t = threading.Thread(target=self._run, args=(conn,), daemon=True)
            t.start()
            self.threads.append(t)

    def _run(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            self.handler(conn)

    def close(self) -> None:
        self.listener.close()
        for t in self.threads:
            t.join(5)


@pytest.fixture
def peer() -> Iterator[Callable[[Callable[[socket.socket], None]], Peer]]:
    made: list[Peer] = []

    def make(handler: Callable[[socket.socket], None]) -> Peer:
        p = Peer(handler)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def read_all(sock: socket.socket) -> tuple[bytes, BaseException | None]:
    chunks = []
    try:
        while data := sock.recv(65536):
            chunks.append(data)
    except OSError as exc:
        return b"".join(chunks), exc
    return b"".join(chunks), None


PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


def sender(conn: socket.socket) -> None:
    conn.sendall(PAYLOAD)
    conn.shutdown(socket.SHUT_WR)
    read_all(conn)


def test_passes_everything_through_when_not_armed(peer: Callable[..., Peer]) -> None:
    received: list[bytes] = []

    def echo_upper(conn: socket.socket) -> None:
        data, _ = read_all(conn)
        received.append(data)
        conn.sendall(data.upper())

    server = peer(echo_upper)
    with FaultProxy(server.port) as proxy, socket.create_connection(("127.0.0.1", proxy.port)) as c:
        c.sendall(b"hello proxy" * 1000)
        c.shutdown(socket.SHUT_WR)
        data, error = read_all(c)
    assert error is None
    assert data == b"HELLO PROXY" * 1000 and received == [b"hello proxy" * 1000]
    assert proxy.stats.up == proxy.stats.down == 11_000 and proxy.stats.cuts == []
    assert proxy.stats.connections == 1


@pytest.mark.parametrize("after", [0, 1, 4095, 65_536, 100_000])
def test_down_cut_forwards_exactly_that_many_bytes(peer: Callable[..., Peer], after: int) -> None:
    server = peer(sender)
    with FaultProxy(server.port) as proxy:
        proxy.arm(Fault("down", after_bytes=after))
        with socket.create_connection(("127.0.0.1", proxy.port)) as c:
            data, error = read_all(c)
    assert data == PAYLOAD[:after] and error is None  # a FIN: a clean end of stream
    assert proxy.stats.cuts == [Cut(0, "down", after)]


def test_up_cut_reaches_the_server_truncated(peer: Callable[..., Peer]) -> None:
    got: list[bytes] = []
    done = threading.Event()

    def collect(conn: socket.socket) -> None:
        got.append(read_all(conn)[0])
        done.set()

    server = peer(collect)
    with FaultProxy(server.port) as proxy:
        proxy.arm(Fault("up", after_bytes=12_345))
        with socket.create_connection(("127.0.0.1", proxy.port)) as c:
            with contextlib.suppress(OSError):
                c.sendall(PAYLOAD)
            read_all(c)
        assert done.wait(5)
    assert got == [PAYLOAD[:12_345]]
    assert proxy.stats.cuts == [Cut(0, "up", 12_345)]


def test_reset_cut_is_seen_as_a_reset(peer: Callable[..., Peer]) -> None:
    server = peer(sender)
    with FaultProxy(server.port) as proxy:
        proxy.arm(Fault("down", after_bytes=5000, reset=True))
        with socket.create_connection(("127.0.0.1", proxy.port)) as c:
            c.settimeout(5)
            data, error = read_all(c)
    assert data == PAYLOAD[:5000]
    assert isinstance(error, ConnectionResetError)


def test_cut_at_the_nth_read(peer: Callable[..., Peer]) -> None:
    def paced(conn: socket.socket) -> None:
        for part in (b"one\n", b"two\n", b"three\n", b"four\n"):
            conn.sendall(part)
            time.sleep(0.15)  # separate reads on the proxy's side
        read_all(conn)

    server = peer(paced)
    with FaultProxy(server.port) as proxy:
        proxy.arm(Fault("down", after_reads=2))
        with socket.create_connection(("127.0.0.1", proxy.port)) as c:
            data, _ = read_all(c)
    assert data == b"one\ntwo\n"


def test_only_the_chosen_connection_is_cut(peer: Callable[..., Peer]) -> None:
    server = peer(sender)
    with FaultProxy(server.port) as proxy:
        proxy.arm(Fault("down", after_bytes=10, connection=1))
        results = []
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", proxy.port)) as c:
                results.append(len(read_all(c)[0]))
    assert results == [len(PAYLOAD), 10, len(PAYLOAD)]
    assert proxy.stats.cuts == [Cut(1, "down", 10)]


def test_tls_passes_through_and_verifies(test_ca: CertAuthority, peer: Callable[..., Peer]) -> None:
    server_ctx = test_ca.server.server_context()

    def tls_sender(conn: socket.socket) -> None:
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(PAYLOAD)
            with contextlib.suppress(OSError):
                tls.recv(1)

    server = peer(tls_sender)
    client_ctx = ssl.create_default_context(cafile=str(test_ca.ca_file))
    with FaultProxy(server.port) as proxy:

        def connect() -> ssl.SSLSocket:
            raw = socket.create_connection(("127.0.0.1", proxy.port))
            return client_ctx.wrap_socket(raw, server_hostname="127.0.0.1")

        with connect() as tls:
            data = b""
            while len(data) < len(PAYLOAD):
                data += tls.recv(65536)
        assert data == PAYLOAD
        # Cut in the middle of the encrypted stream: the client sees the stream end early.
        proxy.arm(Fault("down", after_bytes=40_000))
        data = b""
        with connect() as tls, pytest.raises((ssl.SSLError, OSError)):
            while chunk := tls.recv(65536):
                data += chunk
            raise ConnectionError("clean end of stream")
    assert 0 < len(data) < len(PAYLOAD)


def test_delay_slows_the_transfer(peer: Callable[..., Peer]) -> None:
    server = peer(sender)
    with FaultProxy(server.port, delay=0.01, chunk=4096) as proxy:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", proxy.port)) as c:
            data, _ = read_all(c)
        elapsed = time.monotonic() - started
    assert data == PAYLOAD
    assert elapsed >= 0.01 * (len(PAYLOAD) // 4096)


def test_close_ends_open_connections(peer: Callable[..., Peer]) -> None:
    def hold(conn: socket.socket) -> None:
        read_all(conn)

    server = peer(hold)
    proxy = FaultProxy(server.port).start()
    c = socket.create_connection(("127.0.0.1", proxy.port))
    c.settimeout(5)
    c.sendall(b"x")
    time.sleep(0.05)
    proxy.close()
    assert read_all(c) == (b"", None)
    c.close()
    assert proxy.wait_idle(1)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"after_bytes": 1, "after_reads": 1}, {"after_bytes": -1}, {"after_reads": 0}],
)
def test_fault_needs_one_valid_cut_point(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Fault("down", **kwargs)  # type: ignore[arg-type]


def test_only_loopback_targets() -> None:
    with pytest.raises(ValueError):
        FaultProxy(25, "192.0.2.1")


def test_linger_lets_the_server_act_and_loses_its_answer(peer: Callable[..., Peer]) -> None:
    """A cut with `linger`: the server gets the whole request and has time to answer; the
    client never sees the answer."""
    answered = threading.Event()

    def answer(conn: socket.socket) -> None:
        data = b""
        while not data.endswith(b"\n"):
            data += conn.recv(100)
        conn.sendall(b"done: " + data)
        answered.set()
        read_all(conn)

    server = peer(answer)
    with FaultProxy(server.port) as proxy:
        proxy.arm(Fault("up", after_reads=1, linger=0.3))
        with socket.create_connection(("127.0.0.1", proxy.port)) as c:
            c.sendall(b"do it\n")
            data, _ = read_all(c)
        assert answered.wait(5)
    assert data == b""
    assert proxy.stats.cuts == [Cut(0, "up", 6)]
