"""Crash safety of the dataset writers (:mod:`recommender.atomic`): SIGKILL mid-write.

A child process writes a dataset and is killed at a chosen point: ``Dataset.save``
kills itself right after its n-th Parquet write, fsync, rename or a partial delete
(deterministic), and ``socialcart generate`` is killed from outside as soon as its
temporary directory, its tables or its manifest appear. Afterwards the target holds the
old complete dataset, the new complete one, or — when nothing was there — nothing; a
hidden leftover is never taken for the dataset; and the next write recovers and works.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from recommender.atomic import recover
from recommender.dataset import MANIFEST, Dataset
from tests.reliability.conftest import generate_tiny

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

CHILD = """
import os, shutil, signal, sys
import pyarrow.parquet as pq
from recommender import atomic
from recommender.dataset import Dataset

source, target, hook, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
calls = 0

def die_after(real):
    def wrapper(*args, **kwargs):
        global calls
        result = real(*args, **kwargs)
        calls += 1
        if calls == count:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapper

def delete_one_file_and_die(path, **kwargs):
    os.remove(next(e.path for e in os.scandir(path) if e.is_file()))
    os.kill(os.getpid(), signal.SIGKILL)

dataset = Dataset.load(source, validate=False)
if hook == "write":
    pq.write_table = die_after(pq.write_table)
elif hook == "fsync":
    os.fsync = die_after(os.fsync)
elif hook == "flushed":
    atomic._fsync_tree = die_after(atomic._fsync_tree)
elif hook == "rename":
    os.replace = die_after(os.replace)
elif hook == "delete-old":
    atomic.shutil.rmtree = delete_one_file_and_die
dataset.save(target, overwrite=True)
"""

SAVE_KILLS = [
    # (hook, after how many calls, what the target holds afterwards)
    ("write", 1, "old"),  # the first table written
    ("write", 7, "old"),  # every contract table, no ground truth yet
    ("write", 14, "old"),  # every table, no manifest
    ("fsync", 3, "old"),  # while flushing
    ("flushed", 1, "old"),  # everything flushed, before the renames
    ("rename", 1, "old"),  # the old dataset moved aside, the new one not yet in place
    ("rename", 2, "new"),  # the new one in place, the old one not yet deleted
    ("delete-old", 1, "new"),  # the old one half deleted
]


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def new_generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``tiny`` preset with seed 1, as ``socialcart generate --seed 1`` writes it."""
    return generate_tiny(1).save(tmp_path_factory.mktemp("tiny") / "seed1")


@pytest.fixture(scope="module")
def new_saved(new_generated: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same, loaded and saved again, as the child process writes it.

    Not byte-identical to ``new_generated``: a ground-truth column of ids with nulls is
    written as int64 by the generator and comes back from Parquet as float64.
    """
    loaded = Dataset.load(new_generated, validate=False)
    return loaded.save(tmp_path_factory.mktemp("tiny") / "seed1-resaved")


@pytest.fixture
def target(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    return tmp_path / "data" / "dataset"


# ----------------------------------------------------------------------- helpers
def _checksum(root: Path) -> str:
    return Dataset.load(root).checksum  # load validates: checksums, types, keys


@functools.cache
def _reference_checksum(root: Path) -> str:
    return _checksum(root)


def _resave(source: Path, target: Path) -> None:
    """The next write, in this process: it recovers what the killed one left."""
    Dataset.load(source, validate=False).save(target, overwrite=True)


def _state(target: Path, *, old: Path | None, new: Path) -> str:
    """``old``, ``new`` or ``nothing``; anything else (a partial dataset) fails."""
    leftover = re.compile(rf"\.{re.escape(target.name)}\.(tmp|old)-\d+-[a-z0-9_]{{8}}")
    strays = [p for p in target.parent.iterdir() if p != target]
    assert all(leftover.fullmatch(p.name) for p in strays), strays  # hidden, never the target
    if not target.exists():
        if old is None:
            return "nothing"
        # Killed between the two renames: the old dataset waits aside, complete, and the
        # next write (or recover) puts it back. Nothing is lost.
        aside = [p for p in strays if ".old-" in p.name]
        assert len(aside) == 1, strays
        assert _checksum(aside[0]) == _reference_checksum(old)
        recover(target)
        assert target.exists()
    checksum = _checksum(target)  # loads and validates every file
    expected = {_reference_checksum(new): "new"}
    if old is not None:
        expected[_reference_checksum(old)] = "old"
    assert checksum in expected, "the target holds a dataset that is neither old nor new"
    return expected[checksum]


def _assert_clean(target: Path) -> None:
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def _run_save(source: Path, target: Path, hook: str, count: int) -> int:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(target), hook, str(count)],
        capture_output=True,
        timeout=120,
    )
    return child.returncode


def _socialcart() -> str:
    script = Path(sys.executable).parent / "socialcart"
    found = str(script) if script.exists() else shutil.which("socialcart")
    assert found, "the socialcart console script is not installed"
    return found


def _generate(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [_socialcart(), "generate", "--preset", "tiny", "--seed", "1", "--out", str(out), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _temporary(out: Path, pid: int) -> list[Path]:
    """The temporary directories of process ``pid`` (not those left by earlier kills)."""
    return [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.tmp-{pid}-")]


WHEN: dict[str, Callable[[Path, int], bool]] = {
    "temporary directory": lambda out, pid: bool(_temporary(out, pid)),
    "three tables": lambda out, pid: any(
        len(list(t.glob("*.parquet"))) >= 3 for t in _temporary(out, pid)
    ),
    "manifest": lambda out, pid: any((t / MANIFEST).exists() for t in _temporary(out, pid)),
    "target": lambda out, pid: out.exists(),
}


def _kill_when(proc: subprocess.Popen, out: Path, when: str) -> bool:
    """SIGKILL ``proc`` as soon as ``when`` holds; whether it was still running then."""
    condition = WHEN[when]
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if condition(out, proc.pid):
                break
        except OSError:  # a directory renamed or removed while we looked
            pass
        time.sleep(0.0005)
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return running


# ------------------------------------------------------------------------- tests
@pytest.mark.parametrize(
    ("hook", "count", "expected"), SAVE_KILLS, ids=[f"{h}-{n}" for h, n, _ in SAVE_KILLS]
)
def test_save_killed_over_an_old_dataset(
    tiny_saved: Path, new_saved: Path, target: Path, hook: str, count: int, expected: str
) -> None:
    shutil.copytree(tiny_saved, target)

    returncode = _run_save(new_saved, target, hook, count)

    assert returncode == -signal.SIGKILL, "the child was not killed at the chosen point"
    assert _state(target, old=tiny_saved, new=new_saved) == expected
    # The next write recovers whatever the kill left and succeeds.
    _resave(new_saved, target)
    assert _state(target, old=tiny_saved, new=new_saved) == "new"
    _assert_clean(target)


@pytest.mark.parametrize(("hook", "count"), [("write", 3), ("flushed", 1)])
def test_save_killed_into_nothing(new_saved: Path, target: Path, hook: str, count: int) -> None:
    assert _run_save(new_saved, target, hook, count) == -signal.SIGKILL

    assert _state(target, old=None, new=new_saved) == "nothing"
    _resave(new_saved, target)
    assert _state(target, old=None, new=new_saved) == "new"
    _assert_clean(target)


def test_generate_killed_over_an_old_dataset(
    tiny_saved: Path, new_generated: Path, target: Path
) -> None:
    shutil.copytree(tiny_saved, target)
    hits = {}
    for when in ("temporary directory", "manifest"):
        hits[when] = _kill_when(_generate(target, "--force", "--no-card"), target, when)
        assert _state(target, old=tiny_saved, new=new_generated) in ("old", "new")

    assert hits["temporary directory"], "generate finished before it could be killed"
    rerun = _generate(target, "--force", "--no-card")
    assert rerun.wait(timeout=120) == 0, rerun.stderr.read().decode()[-2000:]
    assert _state(target, old=tiny_saved, new=new_generated) == "new"
    _assert_clean(target)


def test_generate_killed_into_nothing(new_generated: Path, target: Path) -> None:
    assert _kill_when(_generate(target, "--no-card"), target, "temporary directory")
    assert _state(target, old=None, new=new_generated) == "nothing"

    # Re-run, and kill it again while it writes the data card, after the dataset: the
    # dataset is already complete.
    assert _kill_when(_generate(target), target, "target")
    assert _state(target, old=None, new=new_generated) == "new"
    assert os.listdir(target.parent) == [target.name]
