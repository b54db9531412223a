"""The app serves this machine only, and nothing it exports runs in a spreadsheet."""

from __future__ import annotations

import csv
import io
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from bubblelens.cli import main
from bubblelens.cli.run import app_command
from bubblelens.present.safe import FORMULA_START, csv_bytes, public_error


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    out: set[str] = set()
    for name, size in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        p = Path(name)
        if not p.exists():
            continue
        for line in p.read_text().splitlines()[1:]:
            parts = line.split()
            addr, hexport = parts[1].split(":")
            if parts[3] == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                if size == 8:
                    out.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]))
                else:
                    raw = b"".join(bytes.fromhex(addr[i:i + 8])[::-1] for i in range(0, 32, 8))
                    out.add(socket.inet_ntop(socket.AF_INET6, raw))
    return out


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net")
def test_the_app_launcher_listens_on_127_0_0_1_only(tmp_path: Path) -> None:
    port = _free_port()
    cmd, env = app_command(tmp_path / "none.duckdb", port=port)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not _listening(port):
            assert proc.poll() is None, "the app did not start"
            time.sleep(0.3)
        addrs = _listening(port)
        assert addrs == {"127.0.0.1"}, addrs
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_demo_and_app_default_to_localhost_and_warn_otherwise(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    seen: list[list[str]] = []
    import sys

    monkeypatch.setattr(sys.modules["bubblelens.cli.run"].subprocess, "run", lambda cmd, **_: seen.append(cmd))
    r = CliRunner().invoke(main, ["app", "--db", str(tmp_path / "s.duckdb")])
    assert r.exit_code == 0 and "warning" not in r.output
    assert seen[-1][seen[-1].index("--server.address") + 1] == "127.0.0.1"
    r = CliRunner().invoke(main, ["app", "--db", str(tmp_path / "s.duckdb"), "--host", "0.0.0.0"])
    assert "warning: serving on 0.0.0.0" in r.output
    assert seen[-1][seen[-1].index("--server.address") + 1] == "0.0.0.0"
    demo = next(p for p in main.commands["demo"].params if p.name == "host")
    assert demo.default == "127.0.0.1"


def test_exported_csv_has_no_live_formula() -> None:
    df = pd.DataFrame({"text": ['=HYPERLINK("http://evil","click")', "+1+2", "-cmd", "@SUM(A1)", "\tx", "\ry",
                                "plain", None], "n": [-1, 2, 3, 4, 5, 6, 7, 8]})
    rows = list(csv.reader(io.StringIO(csv_bytes(df).decode("utf-8"), newline="")))
    cells = [r[0] for r in rows[1:]]
    assert not any(c.startswith(FORMULA_START) for c in cells)
    assert cells[0] == "'" + '=HYPERLINK("http://evil","click")' and cells[6] == "plain"
    assert rows[1][1] == "-1"  # numbers stay numbers


def test_public_errors_carry_no_server_path() -> None:
    msg = public_error(RuntimeError("IO Error: cannot open /srv/data/secret/store.duckdb: exists\nTraceback"))
    assert "/srv" not in msg and "Traceback" not in msg and "cannot open" in msg
