"""Run a child process and measure its wall time and its own peak resident memory.

The peak is the child's ``ru_maxrss`` from ``os.wait4`` on that one child, so it counts
neither the parent nor any other child (``RUSAGE_CHILDREN`` would be the maximum over every
child the parent ever waited for). The child talks back through two pipes: progress events
as ``EVENT_PREFIX``-tagged JSON lines on stderr, and its result as one JSON line on stdout.
Unix only (``os.wait4``, ``resource``).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

EVENT_PREFIX = "@bench-event "
"""Tags a stderr line of a child as a JSON progress event, not a message."""

EventHook = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class ChildRun:
    """What a finished child process did: exit code, wall seconds, peak RSS, output."""

    returncode: int
    wall_s: float
    peak_rss_bytes: int
    stdout: str
    stderr: str  # every stderr line that was not a progress event

    def result(self) -> dict[str, Any]:
        """The child's result: the JSON object on the last non-empty line of its stdout."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        if self.returncode != 0 or not lines:
            tail = "\n".join(self.stderr.splitlines()[-20:])
            raise RuntimeError(f"benchmark child failed (exit code {self.returncode}):\n{tail}")
        return json.loads(lines[-1])

    def measured(self) -> dict[str, Any]:
        """:meth:`result` plus the parent's view of the child: its wall time (start-up
        included) as ``process_wall_s`` and its peak RSS as ``peak_rss_gib``."""
        result = self.result()
        result["process_wall_s"] = self.wall_s
        result["peak_rss_gib"] = self.peak_rss_bytes / 2**30
        return result


def maxrss_bytes(usage: resource.struct_rusage) -> int:
    """``ru_maxrss`` in bytes (Linux reports KiB, macOS bytes)."""
    return usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024


def self_peak_rss_bytes() -> int:
    """Peak resident memory of the calling process so far."""
    return maxrss_bytes(resource.getrusage(resource.RUSAGE_SELF))


def emit_event(**event: Any) -> None:
    """In a child: send one progress event to the parent."""
    sys.stderr.write(EVENT_PREFIX + json.dumps(event) + "\n")
    sys.stderr.flush()


def run_child(
    argv: list[str], *, on_event: EventHook | None = None, env: dict[str, str] | None = None
) -> ChildRun:
    """Run ``argv`` to completion, forwarding its progress events to ``on_event``."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    stdout: list[str] = []
    # stdout is drained on a thread so a child writing a lot to both pipes cannot block.
    reader = threading.Thread(target=lambda: stdout.append(proc.stdout.read()), daemon=True)
    reader.start()
    messages: list[str] = []
    try:
        for line in proc.stderr:
            event = _parse_event(line)
            if event is None:
                messages.append(line)
            elif on_event is not None:
                on_event(event)
        reader.join()
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        with contextlib.suppress(OSError):
            proc.kill()
            proc.wait()
        raise
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
    proc.stdout.close()
    proc.stderr.close()
    return ChildRun(proc.returncode, wall, maxrss_bytes(usage), "".join(stdout), "".join(messages))


def _parse_event(line: str) -> dict[str, Any] | None:
    if not line.startswith(EVENT_PREFIX):
        return None
    try:
        return json.loads(line[len(EVENT_PREFIX) :])
    except json.JSONDecodeError:
        return None
