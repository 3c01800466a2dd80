"""Which files a command's INPUT arguments name, and the name each one goes by.

A file given directly goes by its file name; a file found in a folder by its path relative to that folder
(`trip/x.jpg` with `recursive`). That name is the output's path under -o, the key of `detect --json` and the
key `--boxes` looks up, so two different files that would share it are refused before any work.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


class InputError(ValueError):
    """Inputs that cannot be processed together; the message names the files."""


@dataclass(frozen=True)
class Input:
    path: Path
    name: str  # relative, with "/" between folders


@dataclass
class Inputs:
    files: list[Input] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line each: a missing path, a folder with nothing to do
    skipped: dict[Path, int] = field(default_factory=dict)  # folder -> files in its subfolders not searched


def _walk(folder: Path, suffixes: Iterable[str], recursive: bool) -> tuple[list[Path], int]:
    """Files with these suffixes in `folder` (and, when `recursive`, below it), and the count of those below it."""
    found: list[Path] = []
    nested = 0
    for root, dirs, names in os.walk(folder):  # symlinked folders are not followed: no loops
        dirs.sort()
        hits = [Path(root) / n for n in sorted(names) if Path(n).suffix.lower() in suffixes]
        hits = [p for p in hits if p.is_file()]
        if Path(root) == folder:
            found += hits
            continue
        if recursive:
            found += hits
        else:
            nested += len(hits)
    return found, nested


def collect(args: Iterable[str | Path], suffixes: Iterable[str], recursive: bool = False) -> Inputs:
    """The files named by `args` (folders expanded to their files with these suffixes, sorted), each with its name.

    Raises InputError when two different files would go by the same name. The same file named twice counts once.
    """
    suffixes = {s.lower() for s in suffixes}
    out = Inputs()
    owners: dict[str, Path] = {}
    for item in map(Path, args):
        if item.is_dir():
            found, nested = _walk(item, suffixes, recursive)
            if nested:
                out.skipped[item] = nested
            if not found:
                out.problems.append(f"{item}: folder holds no file to process"
                                    + (" at its top level (use --recursive)" if nested else ""))
            pairs = [(p, p.relative_to(item).as_posix()) for p in found]
        elif item.is_file():
            pairs = [(item, item.name)]
        else:
            out.problems.append(f"{item}: no such file or folder")
            continue
        for path, name in pairs:
            other = owners.get(name)
            if other is not None:
                if other.resolve() == path.resolve():
                    continue
                raise InputError(f"{other} and {path} would both be written as {name!r}; rename one, or give "
                                 "their folder instead of the files so each keeps its path")
            owners[name] = path
            out.files.append(Input(path, name))
    return out


def skipped_warning(inputs: Inputs) -> list[str]:
    """One warning line per folder whose subfolders held files that were not searched."""
    return [f"warning: {folder}: {n} file(s) in its subfolders skipped (use --recursive to include them)"
            for folder, n in inputs.skipped.items()]
