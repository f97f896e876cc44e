"""Unary gRPC calls framed by hand on HTTP/2 (prior knowledge, no TLS): the client of the lag
scenario's paced load and of the scenarios whose requests vary (`pyload.py`, H2_FRAMES).

At 1,000 calls/s a grpc.aio client took 0.29 cores of this 2-core machine (the `h2` library 0.37),
time the server under test then did not get; this one takes 0.16. It knows exactly what a unary call
of a gRPC server needs and nothing more:

- request headers are one constant HPACK block of literal fields (no indexing, no Huffman);
- a call is a HEADERS frame and a DATA frame (the length-prefixed message); the calls made in one
  turn of the event loop go out in one write (one system call for many calls under load);
- an answer is its DATA (the response message) and a HEADERS frame ending the stream. Header blocks
  are never decoded: a gRPC error is a trailers-only answer, so a call that ends without a message
  failed (the bench then reports it, like h2load's runs; a real gRPC client shows the status);
- the server's SETTINGS and PINGs are acknowledged; the receive window is opened wide at start and
  topped up as responses arrive; nothing sent comes near the server's 64 KiB windows, which gRPC
  tops up as it reads (a send that would exceed the window fails loudly instead of waiting).
"""
from __future__ import annotations

import asyncio

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _RST_STREAM, _SETTINGS, _PING, _GOAWAY, _WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
_END_STREAM, _ACK, _END_HEADERS = 0x1, 0x1, 0x4
_SETTINGS_INITIAL_WINDOW_SIZE = 4
_WINDOW = 1 << 24  # what this client lets the server send before a WINDOW_UPDATE
_DEFAULT_WINDOW = 65_535  # the server's receive window until it says otherwise (RFC 9113 6.9.2)


class CallFailed(Exception):
    """The call ended without a response message (a gRPC error status), or the connection failed."""


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big") + payload


def _hpack_int(value: int) -> bytes:
    """An HPACK integer with a 7-bit prefix (RFC 7541 5.1)."""
    if value < 127:
        return bytes((value,))
    out, value = [127], value - 127
    while value >= 128:
        out.append(value & 127 | 128)
        value >>= 7
    return bytes((*out, value))


def header_block(headers: list[tuple[str, str]]) -> bytes:
    """Literal header fields without indexing, new names, raw strings (RFC 7541 6.2.2)."""
    block = b""
    for name, value in headers:
        n, v = name.encode(), value.encode()
        block += b"\x00" + _hpack_int(len(n)) + n + _hpack_int(len(v)) + v
    return block


class UnaryConnection(asyncio.Protocol):
    """One HTTP/2 connection calling one gRPC method; `call(message)` answers the response message."""

    def __init__(self, authority: str, method: str, metadata: tuple[tuple[str, str], ...]) -> None:
        self._block = header_block([
            (":method", "POST"), (":scheme", "http"), (":path", method), (":authority", authority),
            ("content-type", "application/grpc"), ("te", "trailers"), *metadata,
        ])
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._next_stream = 1
        self._calls: dict[int, tuple[asyncio.Future[bytes], bytearray]] = {}
        self._buffer = b""
        self._received = 0  # DATA bytes since the last WINDOW_UPDATE
        self._send_window = _DEFAULT_WINDOW
        self._outgoing: list[bytes] = []  # calls' frames not yet written: flushed at the loop's next turn
        self.ready: asyncio.Future[None] = self._loop.create_future()  # the server's SETTINGS acknowledged ours

    @classmethod
    async def open(cls, address: str, method: str, metadata: tuple[tuple[str, str], ...]) -> UnaryConnection:
        host, _, port = address.rpartition(":")
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(lambda: cls(address, method, metadata), host, int(port))
        await asyncio.wait_for(connection.ready, 10)
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        settings = _SETTINGS_INITIAL_WINDOW_SIZE.to_bytes(2, "big") + _WINDOW.to_bytes(4, "big")
        transport.write(_PREFACE + _frame(_SETTINGS, 0, 0, settings)
                        + _frame(_WINDOW_UPDATE, 0, 0, (_WINDOW - _DEFAULT_WINDOW).to_bytes(4, "big")))

    def call(self, message: bytes) -> asyncio.Future[bytes]:
        if self._transport is None or self._transport.is_closing():
            raise CallFailed("the connection is closed")
        body = b"\x00" + len(message).to_bytes(4, "big") + message
        if len(body) > self._send_window:
            raise CallFailed("the server's flow-control window is exhausted")
        self._send_window -= len(body)
        stream, self._next_stream = self._next_stream, self._next_stream + 2
        answer: asyncio.Future[bytes] = self._loop.create_future()
        self._calls[stream] = (answer, bytearray())
        if not self._outgoing:
            self._loop.call_soon(self._flush)
        self._outgoing += (_frame(_HEADERS, _END_HEADERS, stream, self._block), _frame(_DATA, _END_STREAM, stream, body))
        return answer

    def _flush(self) -> None:
        frames, self._outgoing = self._outgoing, []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(frames))

    def data_received(self, data: bytes) -> None:
        buffer, position = self._buffer + data, 0
        while len(buffer) - position >= 9:
            end = position + 9 + int.from_bytes(buffer[position:position + 3], "big")
            if end > len(buffer):
                break
            kind, flags = buffer[position + 3], buffer[position + 4]
            stream = int.from_bytes(buffer[position + 5:position + 9], "big") & 0x7FFF_FFFF
            self._on_frame(kind, flags, stream, buffer[position + 9:end])
            position = end
        self._buffer = buffer[position:]
        if self._received > _WINDOW // 2 and self._transport is not None:
            self._transport.write(_frame(_WINDOW_UPDATE, 0, 0, self._received.to_bytes(4, "big")))
            self._received = 0

    def _on_frame(self, kind: int, flags: int, stream: int, payload: bytes) -> None:
        assert self._transport is not None
        if kind == _DATA:
            self._received += len(payload)
            if (entry := self._calls.get(stream)) is not None:
                entry[1].extend(payload)
            if flags & _END_STREAM:
                self._finish(stream)
        elif kind == _HEADERS:  # response headers, or the trailers that end the call
            if flags & _END_STREAM:
                self._finish(stream)
        elif kind == _SETTINGS and not flags & _ACK:
            self._transport.write(_frame(_SETTINGS, _ACK, 0))
        elif kind == _SETTINGS and not self.ready.done():
            self.ready.set_result(None)
        elif kind == _PING and not flags & _ACK:
            self._transport.write(_frame(_PING, _ACK, 0, payload))
        elif kind == _WINDOW_UPDATE and stream == 0:
            self._send_window += int.from_bytes(payload, "big") & 0x7FFF_FFFF
        elif kind == _RST_STREAM:
            self._fail(stream, f"stream reset by the server (error code {int.from_bytes(payload, 'big')})")
        elif kind == _GOAWAY:
            for open_stream in list(self._calls):
                self._fail(open_stream, "the server closed the connection (GOAWAY)")

    def _finish(self, stream: int) -> None:
        answer, body = self._calls.pop(stream, (None, b""))
        if answer is None or answer.done():
            return
        if len(body) < 5:
            answer.set_exception(CallFailed("the call failed: a gRPC error status (trailers-only answer)"))
        else:
            answer.set_result(bytes(body[5:]))

    def _fail(self, stream: int, reason: str) -> None:
        answer, _ = self._calls.pop(stream, (None, b""))
        if answer is not None and not answer.done():
            answer.set_exception(CallFailed(reason))

    def connection_lost(self, exc: Exception | None) -> None:
        for stream in list(self._calls):
            self._fail(stream, f"the connection was lost ({exc})")

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
