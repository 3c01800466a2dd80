"""The one atomic writer: a reader sees the old file or the whole new one, and no temp file is left behind."""

from __future__ import annotations

import pytest

from edgeanon.atomic import PendingFile, atomic_path


def test_success_replaces_the_target_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "sub" / "report.json"  # the folder is created
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".") and tmp.suffix == ".json"
        tmp.write_text("new")
        assert not target.exists()  # nothing at the target until the block succeeds
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_failure_keeps_the_old_file_and_removes_the_temp_file(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="interrupted"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_pending_file_commit_and_discard(tmp_path):
    kept = PendingFile(tmp_path / "clip.mp4")
    kept.tmp.write_bytes(b"video")
    kept.commit()
    assert (tmp_path / "clip.mp4").read_bytes() == b"video" and not kept.tmp.exists()
    dropped = PendingFile(tmp_path / "other.mp4")
    dropped.tmp.write_bytes(b"video")
    dropped.discard()
    dropped.discard()  # twice is fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_commit_without_a_temp_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        PendingFile(tmp_path / "x.bin").commit()
