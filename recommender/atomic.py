"""Atomic directory writes: build in a temporary sibling, fsync, rename into place.

Used for datasets and model directories alike, so a failed or interrupted write leaves the
target as it was — the old complete directory, or nothing — never half-written.

A writer killed mid-write (SIGKILL, power loss) leaves hidden siblings named after its
process id: ``.<name>.tmp-<pid>-<random>`` (the half-built directory) and, when it was
replacing an old directory, ``.<name>.old-<pid>-<random>`` (the old one, moved aside).
The next write to the same target calls :func:`recover`, which renames the old directory
back if the kill fell between the two renames and removes the rest.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_directory(target: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``target`` in one rename.

    Raises
    ------
    FileExistsError
        ``target`` exists, is not empty, and ``overwrite`` is false.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(f"{target} exists and is not empty (use overwrite=True)")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    # mkdtemp makes the directory private (0700); the result is as readable as any
    # directory the user creates (0777 less the umask).
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    try:
        yield tmp
        _fsync_tree(tmp)
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path (same suffix) to write; on success it replaces
    ``path`` in one rename, so a killed writer leaves the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def recover(target: str | os.PathLike) -> None:
    """Clean up after writers to ``target`` that were killed mid-write.

    A writer killed between the two renames of a replacement leaves no ``target`` and the
    old directory moved aside: it is renamed back, so the old complete directory is never
    lost. Temporary and old directories of dead writers are then removed; those of writers
    still running (another process, another thread of this one) are left alone.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(tmp|old)-(\d+)-[a-z0-9_]{{8}}")
    leftovers: dict[str, list[Path]] = {"tmp": [], "old": []}
    for path in target.parent.iterdir():
        match = pattern.fullmatch(path.name)
        if match and not _process_alive(int(match[2])):
            leftovers[match[1]].append(path)
    old = sorted(leftovers["old"], key=lambda path: path.stat().st_ctime_ns)
    if old and not target.exists():
        os.replace(old.pop(), target)
        _fsync_directory(target.parent)
    for path in leftovers["tmp"] + old:
        shutil.rmtree(path, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    if os.name != "posix":  # no cheap liveness check: never touch another writer's files
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _fsync_tree(root: Path) -> None:
    # Files for their contents, directories for their entries (the names of those files).
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        elif path.is_dir():
            _fsync_directory(path)
    _fsync_directory(root)


def _fsync_directory(path: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``; an existing target is moved aside first, then removed.

    The parent directory is fsynced after the renames, so they survive a power loss.
    """
    backup = None
    if target.exists():
        backup = target.with_name(f".{target.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
        os.replace(target, backup)
    try:
        os.replace(tmp, target)
    except BaseException:
        if backup is not None:
            os.replace(backup, target)
        raise
    _fsync_directory(target.parent)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
