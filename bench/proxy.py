"""A loopback TCP proxy that a fault run controls: it passes bytes both ways until told
to ``kill`` its connections (the peer sees them reset), ``refuse`` new ones (each is
reset as soon as it is made, as by a server that is not there, and counted in
``refused``) or ``accept`` again. It runs its own event loop on a thread, so a
blocking caller can drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_CHUNK = 65536


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.accepted = 0  # connections taken, over the proxy's life
        self.killed = 0
        self.refused = 0  # connection attempts turned away while refusing
        self._refusing = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._transports: set[asyncio.Transport] = set()

    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        self._thread.start()
        self.accept()
        return self

    def stop(self) -> None:
        self._call(self._close())
        self._call(self._cancel_pipes())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def accept(self) -> None:
        """Pass connections through (again)."""
        self._refusing = False
        self._call(self._listen())

    def refuse(self) -> None:
        """Reset every connection, and each new one at once: the database is gone."""
        self._refusing = True
        self._call(self._kill())

    def kill(self) -> int:
        """Reset every connection now; new ones are still taken. Returns how many."""
        return self._call(self._kill())

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- on the proxy's loop ----------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._kill()

    async def _cancel_pipes(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _kill(self) -> int:
        transports, self._transports = self._transports, set()
        for transport in transports:
            transport.abort()
        self.killed += len(transports) // 2
        return len(transports) // 2

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            self.refused += 1
            writer.transport.abort()
            return
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if self._refusing:
            # refuse() came while the upstream connection was being opened: this one was
            # not among the connections it reset, and must not outlive it either.
            self.refused += 1
            up_writer.transport.abort()
            writer.transport.abort()
            return
        pair = [writer.transport, up_writer.transport]
        for transport in pair:
            assert isinstance(transport, asyncio.Transport)
            self._transports.add(transport)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for transport in pair:
                self._transports.discard(transport)  # type: ignore[arg-type]
                transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError, RuntimeError):
        writer.transport.abort()
