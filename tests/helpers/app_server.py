"""The editor's server for the tests and the editor's demo script: in this process on a free port, or as the real
command (``python -m mtmsa.app --port 0``) with the address it prints; and multipart requests to its API."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

STARTED = re.compile(r"mtmsa editor: (http://\S+/) ")
"""The line ``mtmsa.app`` prints once it listens, with its address."""


@contextlib.contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free port of 127.0.0.1 in a thread; yields its base URL."""
    import uvicorn

    from mtmsa.app.server import bind

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


class Command:
    """``python -m mtmsa.app args`` running in a process: its URL, and every line it wrote to stderr."""

    def __init__(self, args: list[str], env: dict | None = None, timeout: float = 120):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mtmsa.app", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self.url: str | None = None
        self._started = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._started.wait(timeout) or self.url is None:
            self.stop()
            raise RuntimeError(f"mtmsa.app did not start: {''.join(self.lines)[-2000:]}")

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)
            if self.url is None and (found := STARTED.search(line)):
                self.url = found.group(1)
                self._started.set()
        self._started.set()  # the process ended

    def stop(self) -> int:
        self.process.terminate()
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._reader.join(timeout=10)
        return code


def post_inpaint(
    url: str, files: dict[str, Path | tuple[str, bytes]], data: dict | None = None, timeout: float = 120
) -> httpx.Response:
    """``POST <url>api/inpaint`` with files (a path, or (file name, bytes)) and text fields."""
    parts = {}
    for field, value in files.items():
        name, content = (value.name, value.read_bytes()) if isinstance(value, Path) else value
        parts[field] = (name, content, "image/png")
    return httpx.post(f"{url}api/inpaint", files=parts, data=data or {}, timeout=timeout)
