"""Atomic file output, the one way the project writes a file: a temp name beside the target, synced, then renamed.

A reader (or a power cut) sees the old file or the complete new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


class PendingFile:
    """A temp path beside `target`: `commit()` syncs it and renames it onto `target`, `discard()` deletes it.

    The temp name keeps the target's suffix (`.clip.1234.partial.mp4`), so tools that pick a format by
    extension still work, and it starts with a dot, so folder listings skip it.
    """

    def __init__(self, target: str | os.PathLike):
        self.target = Path(target)
        self.tmp = self.target.with_name(f".{self.target.stem}.{os.getpid()}.partial{self.target.suffix}")

    def commit(self) -> None:
        """Flush the temp file to disk and move it onto the target (OSError when that fails)."""
        fd = os.open(self.tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.tmp, self.target)
        with contextlib.suppress(OSError):  # the rename itself survives a power cut once the folder is synced
            dir_fd = os.open(self.target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def discard(self) -> None:
        """Delete the temp file if it is there."""
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


def target_problem(target: str | os.PathLike) -> str | None:
    """Why `atomic_path(target)` would fail for want of a place to write, or None: checked before long work.

    The temp file goes beside the target, so its folder (or the nearest one that exists, when atomic_path would
    create the rest) must be a folder a file can be made in (tried, not guessed from the permission bits, which
    root and /proc ignore), and the target itself must not be a folder.
    """
    target = Path(target)
    if target.is_dir():
        return "is a folder"
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".edgeanon-probe."):
            pass
    except OSError as exc:
        return f"cannot write in {folder} ({exc.strerror})"
    return None


def folder_problem(folder: str | os.PathLike) -> str | None:
    """Make `folder` (with its parents) when missing; why files cannot be written in it, or None."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        return "is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the folder ({exc.strerror})"
    return target_problem(folder / "probe")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path to write; it replaces `target` when the block succeeds and is deleted otherwise.

    The target's folder is created when missing.
    """
    pending = PendingFile(target)
    pending.target.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield pending.tmp
        pending.commit()
    finally:
        pending.discard()
