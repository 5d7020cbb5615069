"""Load-generation tools shared by ``bench serve`` and ``bench soak``: the service in a child
process on a free loopback port, its memory sampled from ``/proc``, and ``wrk`` driving it.

The load generator is `wrk <https://github.com/wg/wrk>`_ (C, epoll; Debian package
``wrk``): a Python client would be the bottleneck on a small machine. One Lua script
(:func:`lua_script`) draws every request's kind from a mix (``health``, ``reco``,
``similar``, ``write``) and its user and product ids at random, gives each write its own
``Idempotency-Key``, counts responses per status class and prints one JSON summary line.
wrk's latency percentiles are over completed requests of every kind in the run, so a
per-kind latency needs a run of that kind alone.

The server's memory is the resident set of its whole process tree (the uvicorn supervisor
and every worker), read from ``/proc/<pid>/status``; the proportional set size
(``/proc/<pid>/smaps_rollup``, shared pages split between the processes that map them) is
recorded beside it. Linux only.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("health", "reco", "similar", "write")
SUMMARY_PREFIX = "@wrk-summary "
WRK_INSTALL = "apt-get install -y wrk"
WRITE_RATE_LIMIT = "1000000/second"
MIN_AVAILABLE = 2 << 30
"""Below this much available memory on the machine the server is stopped (see
:class:`MemorySampler`): with a server serving ``large`` the machine went from over 1 GiB
available to 0.05 GiB between two samples half a second apart."""
"""Benchmarks measure the service, not its per-client write budget (default 60/s)."""


class LoadToolMissing(RuntimeError):
    """``wrk`` is not installed and could not be installed."""


# ------------------------------------------------------------------- the tool
def ensure_wrk(*, install: bool = True) -> str:
    """Path of ``wrk``; installed with apt-get first (as root, when allowed) if missing."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if install and apt and os.geteuid() == 0:
        subprocess.run([apt, "install", "-y", "-q", "wrk"], capture_output=True, check=False)
        found = shutil.which("wrk")
        if found:
            return found
    raise LoadToolMissing(
        f"the load generator wrk is not installed; install it with `{WRK_INSTALL}` "
        "(Debian/Ubuntu, as root) or from https://github.com/wg/wrk"
    )


def wrk_version(wrk: str) -> str:
    """``wrk <version>`` (the first two words of ``wrk --version``)."""
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    words = (out.stdout or out.stderr).split()
    return " ".join(words[:2]) or "wrk"


# ----------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tree_pids(root: int) -> list[int]:
    """``root`` and every live descendant (from the ``PPid`` of each ``/proc/<pid>/stat``)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _status_kib(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _pss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


@dataclass
class MemorySample:
    t: float  # seconds since the sampler started
    rss: int  # bytes, summed over the process tree
    pss: int
    processes: int


def available_bytes() -> int | None:
    """``MemAvailable`` of the machine (``/proc/meminfo``)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


class MemorySampler:
    """Samples the memory of a process tree on a thread, every ``interval`` seconds.

    On a shared machine a large model can exhaust memory and the kernel's OOM killer picks
    the biggest process, which may be someone else's: when the machine's available memory
    falls under ``min_available`` the sampler kills the tree's process group itself and
    records why in ``aborted``."""

    def __init__(self, root: int, interval: float = 0.25, min_available: int = MIN_AVAILABLE):
        self.root = root
        self.interval = interval
        self.min_available = min_available
        self.samples: list[MemorySample] = []
        self.aborted: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
        self._start = time.monotonic()

    def sample(self) -> MemorySample:
        pids = tree_pids(self.root)
        rss = sum(_status_kib(p, "VmRSS") for p in pids) * 1024
        pss = sum(_pss_kib(p) for p in pids) * 1024
        return MemorySample(time.monotonic() - self._start, rss, pss, len(pids))

    def mark(self) -> float:
        """Seconds since the sampler started (to cut windows out of the samples)."""
        return time.monotonic() - self._start

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = self.sample()
            self.samples.append(sample)
            available = available_bytes()
            if available is not None and available < self.min_available and not self.aborted:
                self.aborted = (
                    f"the server was stopped: the machine had {available / 2**30:.2f} GiB "
                    f"available with the server at {sample.rss / 2**30:.2f} GiB (RSS)"
                )
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.root, signal.SIGKILL)
            self._stop.wait(self.interval)

    def start(self) -> MemorySampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def window(self, start: float, end: float) -> list[MemorySample]:
        return [s for s in self.samples if start <= s.t <= end]

    def peak(self, start: float = 0.0, end: float = float("inf")) -> MemorySample:
        return max(self.window(start, end), key=lambda s: s.rss)


def parse_server_env(pairs: list[str] | None) -> dict[str, str]:
    """``["SOCIALCART_X=1", ...]`` as a dict; anything else is a ValueError naming it."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("SOCIALCART_") or not key[len("SOCIALCART_") :]:
            raise ValueError(f"--server-env {pair!r}: expected SOCIALCART_NAME=VALUE")
        out[key] = value
    return out


@dataclass
class Server:
    """``socialcart serve`` in a child process on a free loopback port, with a fresh SQLite
    store and API key under ``workdir``; stopped (SIGTERM, then SIGKILL) on exit."""

    model_dir: Path
    dataset_dir: Path
    workdir: Path
    workers: int = 1
    ready_timeout_s: float = 900.0
    port: int = field(default_factory=free_port)
    api_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    proc: subprocess.Popen | None = None
    memory: MemorySampler | None = None
    load_s: float | None = None
    ready_at: float | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    """More ``SOCIALCART_*`` settings for the server (e.g. ``SOCIALCART_RECOMMEND_BATCH``);
    the benchmark's own (model, dataset, store, key, workers, rate limit) win."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOCIALCART_")}
        env.update(self.extra_env)
        # Absolute paths: the server runs in ``workdir``.
        env.update(
            SOCIALCART_MODEL_DIR=str(self.model_dir.resolve()),
            SOCIALCART_DATASET_DIR=str(self.dataset_dir.resolve()),
            SOCIALCART_DATABASE_URL=f"sqlite:///{(self.workdir / 'store.db').resolve().as_posix()}",
            SOCIALCART_API_KEY=self.api_key,
            SOCIALCART_WORKERS=str(self.workers),
            SOCIALCART_WRITE_RATE_LIMIT=WRITE_RATE_LIMIT,
        )
        return env

    def __enter__(self) -> Server:
        socialcart = Path(sys.executable).with_name("socialcart")
        argv = [str(socialcart), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--workers", str(self.workers)]
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Access logs (one JSON line per request) go to a file, as they would in production.
        self._stdout = (self.workdir / "access.log").open("wb")
        self._stderr = (self.workdir / "server.log").open("wb")
        start = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            env=self.env(),
            cwd=self.workdir,
            stdout=self._stdout,
            stderr=self._stderr,
            start_new_session=True,
        )
        self.memory = MemorySampler(self.proc.pid).start()
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.load_s = time.perf_counter() - start
        self.ready_at = self.memory.mark()
        return self

    def check(self) -> None:
        """Raise if the server was stopped for memory or has exited."""
        if self.memory.aborted:
            raise RuntimeError(self.memory.aborted)
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"the server exited with code {self.proc.returncode}:\n" + self.log_tail()
            )

    def _wait_ready(self) -> None:
        """Until every worker has answered ``/readyz`` with 200 (each loads the model on
        its own, and one still loading accepts no connection: a load started then would
        keep all its connections on the workers that were ready)."""
        deadline = time.monotonic() + self.ready_timeout_s
        ready: set[int] = set()
        while time.monotonic() < deadline:
            self.check()
            status, body = self.get_json("/readyz")
            if status == 200 and isinstance(body, dict) and "worker_pid" in body:
                ready.add(int(body["worker_pid"]))
                if len(ready) >= self.workers:
                    return
                time.sleep(0.05)
                continue
            time.sleep(0.5)
        raise RuntimeError(
            f"the server was not ready after {self.ready_timeout_s:.0f} s "
            f"({len(ready)} of {self.workers} workers answered)"
        )

    def get_json(self, path: str) -> tuple[int | None, Any]:
        """Status and JSON body of a GET on a fresh connection (so requests spread over
        the workers); ``(None, None)`` when nothing answered."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (OSError, ValueError):
            return None, None

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            text = (self.workdir / "server.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    def cpu_seconds(self) -> float:
        """User + system CPU of the server's processes (live ones)."""
        return sum(_cpu_seconds(p) for p in tree_pids(self.proc.pid))

    def __exit__(self, *exc_info) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.memory is not None:
            self.memory.stop()
        self._stdout.close()
        self._stderr.close()


def stale_model(model_dir: Path, dataset_dir: Path) -> str | None:
    """Why the cached model in ``model_dir`` cannot serve ``dataset_dir`` (absent, an older
    format, another dataset), or None when it can; read from the two JSON files only."""
    import hashlib

    from recommender.persistence import MODEL_FILE, MODEL_FORMAT

    try:
        meta = json.loads((model_dir / MODEL_FILE).read_text())
        files = json.loads((dataset_dir / "manifest.json").read_text()).get("files", {})
    except (OSError, ValueError) as exc:
        return f"unreadable: {exc}"
    if meta.get("format_version") != MODEL_FORMAT:
        return f"model format {meta.get('format_version')!r}, not {MODEL_FORMAT}"
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}:{files[name]['sha256']}\n".encode())
    if meta.get("dataset_checksum") != digest.hexdigest():
        return "trained on another version of the dataset"
    return None


# ------------------------------------------------------------------ the load
def id_ranges(dataset_dir: Path) -> tuple[int, int]:
    """How many users and products the dataset has; the load draws ids from ``[0, n)``, so
    the ids must be exactly ``0..n-1`` (as the generator writes them)."""
    import numpy as np
    import pyarrow.parquet as pq

    sizes = []
    for table, column in (("users", "user_id"), ("products", "product_id")):
        ids = pq.read_table(dataset_dir / f"{table}.parquet", columns=[column]).column(0)
        ids = np.sort(ids.to_numpy())
        if not np.array_equal(ids, np.arange(len(ids))):
            raise RuntimeError(f"{dataset_dir}: {column}s are not 0..n-1; the load needs them so")
        sizes.append(len(ids))
    return sizes[0], sizes[1]


def lua_script(
    mix: dict[str, float],
    *,
    n_users: int,
    n_products: int,
    api_key: str,
    k: int = 10,
    seed: int = 0,
) -> str:
    """A wrk script: request kinds drawn from ``mix`` (shares of :data:`KINDS`), ids drawn
    uniformly from ``[0, n_users)`` and ``[0, n_products)``, one JSON summary at the end."""
    unknown = set(mix) - set(KINDS)
    if unknown or not mix or any(share < 0 for share in mix.values()):
        raise ValueError(f"mix == {mix!r}, must give shares >= 0 of {', '.join(KINDS)}.")
    total = sum(mix.values())
    bounds, acc = [], 0.0
    for kind in KINDS:
        acc += mix.get(kind, 0.0) / total
        bounds.append(f"{acc!r}")
    run = secrets.token_hex(4)
    return LUA_TEMPLATE % {
        "bounds": ", ".join(bounds),
        "kinds": ", ".join(f'"{kind}"' for kind in KINDS),
        "n_users": n_users,
        "n_products": n_products,
        "api_key": api_key,
        "k": k,
        "seed": seed,
        "run": run,
        "prefix": SUMMARY_PREFIX,
    }


LUA_TEMPLATE = r"""
local bounds = {%(bounds)s}
local kinds = {%(kinds)s}
local n_users, n_products, k = %(n_users)d, %(n_products)d, %(k)d
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  math.randomseed(%(seed)d * 1000 + tid)
  sent = {health = 0, reco = 0, similar = 0, write = 0}
  status = {}
  writes = 0
  write_headers = {
    ["Content-Type"] = "application/json",
    ["X-API-Key"] = "%(api_key)s",
  }
end

local function pick()
  local r = math.random()
  for i = 1, #bounds do
    if r < bounds[i] then return kinds[i] end
  end
  return kinds[#kinds]
end

function request()
  local kind = pick()
  sent[kind] = sent[kind] + 1
  if kind == "health" then
    return wrk.format("GET", "/healthz")
  elseif kind == "reco" then
    local user = math.random(0, n_users - 1)
    return wrk.format("GET", "/v1/users/" .. user .. "/recommendations?k=" .. k)
  elseif kind == "similar" then
    local product = math.random(0, n_products - 1)
    return wrk.format("GET", "/v1/products/" .. product .. "/similar?k=" .. k)
  end
  writes = writes + 1
  write_headers["Idempotency-Key"] = "bench-%(run)s-" .. tid .. "-" .. writes
  local body = string.format('{"user_id": %%d, "product_id": %%d, "event": "view"}',
    math.random(0, n_users - 1), math.random(0, n_products - 1))
  return wrk.format("POST", "/v1/events", write_headers, body)
end

function response(code, headers, body)
  local key = tostring(code)
  status[key] = (status[key] or 0) + 1
end

function done(summary, latency, requests)
  local sent_all, status_all = {}, {}
  for _, thread in ipairs(threads) do
    for key, n in pairs(thread:get("sent")) do sent_all[key] = (sent_all[key] or 0) + n end
    for key, n in pairs(thread:get("status")) do
      status_all[key] = (status_all[key] or 0) + n
    end
  end
  local function object(t)
    local parts = {}
    for key, n in pairs(t) do table.insert(parts, string.format('"%%s": %%d', key, n)) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  local e = summary.errors
  io.write(string.format(
    '%(prefix)s{"duration_us": %%d, "requests": %%d, "bytes": %%d, ' ..
    '"errors": {"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}, ' ..
    '"latency_us": {"p50": %%d, "p90": %%d, "p99": %%d, "max": %%d, "mean": %%f}, ' ..
    '"sent": %%s, "status": %%s}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, object(sent_all), object(status_all)))
end
"""


def run_wrk(
    wrk: str,
    url: str,
    script: str,
    *,
    connections: int,
    seconds: float,
    threads: int = 2,
    timeout_s: float = 5.0,
    workdir: Path,
) -> dict[str, Any]:
    """Run ``wrk`` for ``seconds`` against ``url``; its summary with rates in ms and req/s
    and the client's own CPU seconds."""
    script_path = workdir / f"load-{secrets.token_hex(4)}.lua"
    script_path.write_text(script)
    argv = [wrk, "-t", str(min(threads, connections)), "-c", str(connections)]
    argv += ["-d", f"{max(1, round(seconds))}s", "--timeout", f"{timeout_s:g}s"]
    argv += ["-s", str(script_path), url]
    out_path, err_path = script_path.with_suffix(".out"), script_path.with_suffix(".err")
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        proc = subprocess.Popen(argv, stdout=out_file, stderr=err_file)
        try:
            # wait4 reaps wrk and gives its own CPU time (the client's share of the cores).
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = out_path.read_text(), err_path.read_text()
    line = next((x for x in out.splitlines() if x.startswith(SUMMARY_PREFIX)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit code {proc.returncode}):\n{err}\n{out}")
    raw = json.loads(line[len(SUMMARY_PREFIX) :])
    return summarize(raw, client_cpu_s=usage.ru_utime + usage.ru_stime)


def summarize(raw: dict[str, Any], client_cpu_s: float | None = None) -> dict[str, Any]:
    """wrk's summary in the units the reports use; failures split by cause."""
    duration = raw["duration_us"] / 1e6
    statuses = {int(code): n for code, n in raw["status"].items()}
    errors = raw["errors"]
    by_class = {f"{c}xx": sum(n for s, n in statuses.items() if s // 100 == c) for c in range(2, 6)}
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    return {
        "duration_s": duration,
        "requests": raw["requests"],
        "rps": raw["requests"] / duration if duration else 0.0,
        "latency_ms": {key: value / 1000 for key, value in raw["latency_us"].items()},
        "errors": errors,
        "status": statuses,
        "status_classes": by_class,
        "failed": socket_errors + sum(n for s, n in statuses.items() if not 200 <= s < 300),
        "sent": raw["sent"],
        "client_cpu_s": client_cpu_s,
    }


def cpu_shares(phases: dict[str, dict[str, Any]]) -> str:
    """How the cores were shared between the server and the client, per wrk run."""
    parts = []
    for key, run in phases.items():
        secs = run["duration_s"]
        parts.append(
            f"{key}: server {run['server_cpu_s'] / secs:.2f} cores, "
            f"wrk {run['client_cpu_s'] / secs:.2f} cores"
        )
    return "; ".join(parts)
