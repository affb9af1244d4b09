#!/usr/bin/env python3
"""A TLS front for moto on loopback (issue 22): moto speaks plain HTTP and closes every
connection after one answer (`Connection: close`); DynamoDB speaks HTTPS and keeps a client's
connection open, so in AWS an instance's first call pays a TLS handshake and later calls reuse
the connection. This front does what DynamoDB's does: it terminates TLS (the standard library's
ssl, i.e. OpenSSL) with a certificate from the per-run test CA, keeps the client's connection
alive (HTTP/1.1), and passes each request to moto on a connection of its own, the answer
rewritten to keep-alive framing (Content-Length, no `Connection: close`).

Usage: tls-front.py --listen HOST:PORT --to HOST:PORT --cert CHAIN.pem --key KEY.pem
Prints "ready HOST:PORT" once it listens, then one line "accepted N" per TLS handshake completed
(N counts from 1), flushed, so a test can tell how many connections a client opened.
Standard library only: it runs on the system python3.
"""

import argparse
import asyncio
import ssl
import sys

HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length"}


def split_head(head: bytes):
    """(start line, [(name, value)]) of an HTTP/1.1 message head (without the blank line)."""
    lines = head.split(b"\r\n")
    headers = []
    for line in lines[1:]:
        if b":" in line:
            name, value = line.split(b":", 1)
            headers.append((name.strip(), value.strip()))
    return lines[0], headers


def header(headers, name: bytes):
    return next((v for n, v in headers if n.lower() == name), None)


def dechunk(body: bytes) -> bytes:
    out, at = bytearray(), 0
    while True:
        end = body.index(b"\r\n", at)
        size = int(body[at:end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += body[end + 2:end + 2 + size]
        at = end + 2 + size + 2


async def read_body(r: asyncio.StreamReader, headers, *, unframed_to_close: bool) -> bytes:
    """A message's body as its framing says: chunked, or Content-Length; with neither, an answer
    runs to the connection's close and a request has none."""
    if (header(headers, b"transfer-encoding") or b"").lower() == b"chunked":
        raw = bytearray()
        while not raw.endswith(b"0\r\n\r\n"):
            raw += await r.readuntil(b"\r\n")
        return dechunk(bytes(raw))
    if (length := header(headers, b"content-length")) is not None:
        return await r.readexactly(int(length))
    return await r.read() if unframed_to_close else b""


async def forward(up_host: str, up_port: int, start: bytes, headers, body: bytes) -> bytes:
    """One request to the server on its own connection; the answer re-framed for keep-alive."""
    r, w = await asyncio.open_connection(up_host, up_port)
    try:
        kept = [(n, v) for n, v in headers if n.lower() not in HOP_BY_HOP]
        kept += [(b"Content-Length", str(len(body)).encode()), (b"Connection", b"close")]
        w.write(start + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in kept) + b"\r\n" + body)
        await w.drain()
        head = (await r.readuntil(b"\r\n\r\n"))[:-4]
        status, up_headers = split_head(head)
        # The answer ends where its framing says, not when moto closes the connection: moto's
        # server closes it ~10 ms after the answer, which waiting for would add to every call.
        rest = await read_body(r, up_headers, unframed_to_close=True)
    finally:
        w.close()
    kept = [(n, v) for n, v in up_headers if n.lower() not in HOP_BY_HOP]
    kept += [(b"Content-Length", str(len(rest)).encode()), (b"Connection", b"keep-alive")]
    return status + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in kept) + b"\r\n" + rest


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    a = p.parse_args()
    host, port = a.listen.rsplit(":", 1)
    up_host, up_port = a.to.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(a.cert, a.key)
    # No session tickets: every new connection pays the whole handshake, as a new Lambda
    # instance's first connection does (it has no ticket to resume with).
    ctx.options |= ssl.OP_NO_TICKET
    count = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        count += 1
        print(f"accepted {count}", flush=True)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return  # the client closed its connection
                start, headers = split_head(head[:-4])
                body = await read_body(reader, headers, unframed_to_close=False)
                writer.write(await forward(up_host, int(up_port), start, headers, body))
                await writer.drain()
                if (header(headers, b"connection") or b"").lower() == b"close":
                    return
        except (ConnectionError, ssl.SSLError, OSError, asyncio.IncompleteReadError):
            return
        finally:
            try:
                writer.close()
            except (ConnectionError, ssl.SSLError, OSError, RuntimeError):
                pass

    server = await asyncio.start_server(serve, host, int(port), ssl=ctx, backlog=512,
                                        ssl_handshake_timeout=10)
    bound = server.sockets[0].getsockname()
    print(f"ready {bound[0]}:{bound[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
