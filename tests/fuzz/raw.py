"""A bare HTTP/1.1 client: sends exactly the bytes it is given.

aiohttp's and requests' clients refuse to send what hostile senders send (header
bytes that are not UTF-8, a body that does not match its Content-Length), so the
fuzzer and a few tests write the request themselves.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    status: int  # 0: the connection closed without an answer
    headers: dict[str, str]
    body: bytes


def request_bytes(
    method: str, path: str, headers: list[tuple[str, bytes | str]], body: bytes = b""
) -> bytes:
    """A request with ``Connection: close``; ``Content-Length`` is added unless given
    (or a ``Transfer-Encoding`` is)."""
    names = {name.lower() for name, _ in headers}
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
    for name, value in headers:
        raw = value if isinstance(value, bytes) else value.encode("latin-1", "replace")
        lines.append(name.encode() + b": " + raw)
    if "content-length" not in names and "transfer-encoding" not in names:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def send(host: str, port: int, data: bytes, seconds: float = 10.0) -> Answer:
    """Send ``data``, read the answer to the end (``Connection: close``).

    Reads while it writes: a server may answer before the body is in (a 400 for a
    repeated header) and close, and a client that only reads after writing all of
    it would lose that answer to the connection reset that follows."""
    async with asyncio.timeout(seconds):
        reader, writer = await asyncio.open_connection(host, port)
        received = bytearray()

        async def read_all() -> None:
            while chunk := await reader.read(65536):
                received.extend(chunk)

        reading = asyncio.create_task(read_all())
        try:
            writer.write(data)
            await writer.drain()
        except ConnectionError:
            pass  # answered and closed early: what was read decides
        try:
            await reading
        except ConnectionError:
            if not received:
                raise
        finally:
            writer.close()
    return parse_answer(bytes(received))


def parse_answer(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2) if lines and lines[0] else []
    if len(parts) < 2 or not parts[1].isdigit():
        return Answer(0, {}, raw)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    return Answer(int(parts[1]), headers, body)


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)
