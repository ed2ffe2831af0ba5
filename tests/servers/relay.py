"""A TCP relay on loopback that makes a client look remote to the server behind it.

Dovecot counts a connection whose remote and local addresses are equal as secure, and then
accepts passwords without STARTTLS (and advertises no LOGINDISABLED).  Every test client
connects from 127.0.0.1 to 127.0.0.1, so Dovecot's STARTTLS ports would never demand TLS.
The relay accepts on 127.0.0.1 and connects onwards from 127.0.0.2: Dovecot then sees a
remote client and behaves as it does for a real one.  Bytes are copied untouched (TLS after
STARTTLS passes through end to end).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from .net import free_port

SOURCE_ADDRESS = "127.0.0.2"


class LoopbackRelay:
    """`127.0.0.1:<port>` -> `target_host:target_port`, connecting from 127.0.0.2."""

    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.target = (target_host, target_port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> LoopbackRelay:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._listen())
            except BaseException as exc:  # reported to start()
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"relay-{self.target[1]}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise RuntimeError(f"relay could not start: {errors[0]!r}")
        return self

    async def _listen(self) -> None:
        for _attempt in range(3):
            port = free_port(self.host)
            try:
                self._server = await asyncio.start_server(self._handle, self.host, port)
            except OSError:
                continue
            self.port = port
            return
        raise OSError("no free port for the relay")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(
                *self.target, local_addr=(SOURCE_ADDRESS, 0)
            )
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()
            self._tasks.discard(task)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = self._thread = None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        # Pass the half-close on, so the other side sees EOF as it would directly.
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
