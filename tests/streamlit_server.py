"""``streamlit run app.py`` on a free localhost port for the real-browser tests (``test_browser*.py``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Debian's Chromium (scripts/install_browser.sh) and how every browser test launches it
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT = 180_000  # ms; generous: CI machines are shared


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: object, startup_s: float) -> None:
    deadline = time.monotonic() + startup_s
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.seek(0)  # type: ignore[attr-defined]
            out = log.read().decode(errors="replace")  # type: ignore[attr-defined]
            pytest.fail(f"streamlit did not start: {out[-2000:]}")
        time.sleep(0.5)


@contextmanager
def serve_app(db: str, *, startup_s: float = 90) -> Iterator[str]:
    """The app on ``db``, served on 127.0.0.1; yields its URL once ``/_stcore/health`` answers, and stops
    the server after (a test fails with the server's last output if it does not start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    url = f"http://127.0.0.1:{port}"
    # the output goes to a file, not a pipe: a server that logs a lot would block on a full pipe
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--", "--db", db],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(url, proc, log, startup_s)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
