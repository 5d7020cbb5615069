"""``socialcart serve`` in a child process for the tests that need a real server (crash,
signals): a free loopback port, the environment, and a wait for ``/readyz``. Its output goes
to files, never to a pipe a chatty server could fill and block on."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class ServerProcess:
    """``socialcart serve`` in a child process; its stdout and stderr go to files."""

    proc: subprocess.Popen
    base: str
    stdout: Path
    stderr: Path

    def logs(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(model_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment without its SOCIALCART_ variables, plus ``settings``
    (``database_url="..."`` becomes ``SOCIALCART_DATABASE_URL``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCIALCART_")}
    env["SOCIALCART_MODEL_DIR"] = str(model_dir)
    env.update({f"SOCIALCART_{k.upper()}": v for k, v in settings.items()})
    return env


def start_server(cwd: Path, env: dict[str, str], name: str = "server") -> ServerProcess:
    """Start ``socialcart serve`` on a free port and wait until ``/readyz`` answers 200."""
    port = free_port()
    stdout, stderr = cwd / f"{name}.stdout", cwd / f"{name}.stderr"
    script = Path(sys.executable).parent / "socialcart"
    command = [str(script)] if script.exists() else [shutil.which("socialcart") or "socialcart"]
    with stdout.open("ab") as out, stderr.open("ab") as err:
        proc = subprocess.Popen(
            [*command, "serve", "--port", str(port)], cwd=cwd, env=env, stdout=out, stderr=err
        )
    server = ServerProcess(proc, f"http://127.0.0.1:{port}", stdout, stderr)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited ({proc.returncode}): {server.logs()[-3000:]}")
        try:
            if httpx.get(f"{server.base}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise AssertionError(f"server did not become ready: {server.logs()[-3000:]}")
