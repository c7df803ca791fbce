"""L6, for real: uvicorn serving the product refuses a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``
(2.5 MB) by its ``Content-Length``, at once and without reading it, and cuts a chunked body at the
limit; both get a 413 that says the limit, and no temporary file is written."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """uvicorn with the product's ASGI application, its temporary files in a directory of its
    own (the database and Redis of the test run; no request here reaches them)."""
    tmp = tmp_path_factory.mktemp("uploads")
    spool = tmp / "tmp"
    spool.mkdir()
    port = _free_port()
    env = {**os.environ, "TMPDIR": str(spool), "PLAYGROUND_LIMITS_PROFILE": "public"}
    log = tmp / "uvicorn.log"
    argv = [sys.executable, "-m", "uvicorn", "playground.asgi:application"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not start: {log.read_text()[-3000:]}")
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            time.sleep(0.1)
        # The first request loads the URLconf and the templates: not what is timed below.
        urllib.request.urlopen(f"http://127.0.0.1:{port}/programs/new/", timeout=60).read()
        yield port, spool
    finally:
        proc.terminate()
        proc.wait(15)


def _answer(sock: socket.socket, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP/1.1 response (sized or chunked)."""
    sock.settimeout(timeout)
    data = b""
    with suppress(ConnectionResetError):
        while not _complete(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunked(body)
    return int(lines[0].split()[1]), headers, body


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
        if line == b"transfer-encoding: chunked":
            return body.endswith(b"0\r\n\r\n")
    return False


def _unchunked(body: bytes) -> bytes:
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        length = int(size, 16)
        out, body = out + rest[:length], rest[length + 2 :]
        if length == 0:
            break
    return out


def _head(path: str, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    ("path", "kind"), [("/programs/new/", "text/html"), ("/api/runs", "application/json")]
)
def test_a_huge_content_length_is_refused_at_once_unread(
    server: tuple[int, Path], path: str, kind: str
) -> None:
    port, spool = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.monotonic()
        sock.sendall(
            _head(path, Content_Type="multipart/form-data; boundary=x", Content_Length="10" * 6)
            + b'--x\r\nContent-Disposition: form-data; name="source"\r\n\r\nprint(1)'
        )
        status, headers, body = _answer(sock, timeout=5)  # on ebbbef9: waits for 10 GB
    assert status == 413
    assert time.monotonic() - started < 3
    assert headers["content-type"].startswith(kind)
    assert b"at most 2.5 MB" in body
    assert list(spool.iterdir()) == []


def test_a_chunked_body_is_cut_at_the_limit(server: tuple[int, Path]) -> None:
    port, spool = server
    piece = b"x" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            _head("/programs/new/", Content_Type="text/plain", Transfer_Encoding="chunked")
        )
        with suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(48):  # 3 MB, and no end: the answer must not wait for one
                sock.sendall(chunk)
        status, _, body = _answer(sock, timeout=10)  # on ebbbef9: waits for the end of it
    assert status == 413
    assert b"too large" in body
    assert list(spool.iterdir()) == []


def test_a_body_under_the_limit_goes_through(server: tuple[int, Path]) -> None:
    port, _ = server
    body = b"source=" + b"x" * 1_000_000
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            _head(
                "/programs/new/",
                Content_Type="application/x-www-form-urlencoded",
                Content_Length=str(len(body)),
            )
            + body
        )
        status, _, _ = _answer(sock, timeout=10)
    assert status == 403  # read, and refused by the CSRF check as any form without a token
