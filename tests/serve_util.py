"""Start `fakescope serve` in a subprocess on a free loopback port (tests and benchmarks)."""

from __future__ import annotations

import contextlib
import ctypes
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

URL = re.compile(r"serving \S+ on (http://127\.0\.0\.1:\d+)/")


@dataclass
class Server:
    proc: subprocess.Popen
    url: str = ""
    log: list[str] = field(default_factory=list)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (what a service manager sends) and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM when the thread that started it dies (a killed test or
    benchmark leaves no server behind); start servers from the main thread."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_listening(server: Server, deadline: float) -> None:
    """uvicorn logs "Application startup complete" after the app's start-up and before it
    listens on the socket: a client connecting in between is refused (seen under load)."""
    host, port = server.url.rsplit("/", 1)[-1].rsplit(":", 1)
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
            return
        except ConnectionRefusedError:
            if time.monotonic() > deadline or server.proc.poll() is not None:
                raise RuntimeError("server never listened:\n" + "".join(server.log)) from None
            time.sleep(0.05)


@contextlib.contextmanager
def running_server(*args: str, env: dict | None = None, timeout: float = 120) -> Iterator[Server]:
    """`python -m fakescope serve --port 0 ARGS` on 127.0.0.1; yields once it listens."""
    cmd = [sys.executable, "-m", "fakescope", "serve", "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    server = Server(proc)
    ready = threading.Event()

    def drain() -> None:  # keep reading stderr so the server never blocks on a full pipe
        for line in proc.stderr:
            server.log.append(line)
            m = URL.search(line)
            if m and not server.url:
                server.url = m.group(1)
            if "Application startup complete" in line:
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        deadline = time.monotonic() + timeout
        while not ready.wait(0.1):
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start:\n" + "".join(server.log))
        if proc.poll() is not None or not server.url:
            raise RuntimeError("server failed to start:\n" + "".join(server.log))
        _wait_listening(server, deadline)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
