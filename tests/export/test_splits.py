"""The one split vocabulary (export.splits): stable, disjoint, and choosing exactly the files it chose before.

The pinned digests below are SHA-256 (first 16 hex digits) over the sorted, newline-joined names each split
chose under the three vocabularies it replaces (export/halves.py, export/eval/wider.py, export/eval/splits.py
and export/facecrops.held_out at commit a18e9cd). Equal digests mean every published number was measured on
the same files the new names choose.
"""

from __future__ import annotations

import hashlib
import json
import zipfile

import pytest

from export.datasets import load_wider
from export.splits import HALVES, generator_holdout, half_of, in_generator_split, in_split

SYNTHETIC = [f"img_{i}.jpg" for i in range(2000)]

# split -> (digest, count) under the old vocabularies: "holdout" was HALVES' "held" and wider.SPLITS' "holdout";
# "generator" is eval/splits.SPLITS' "held" / "tune" (held = facecrops.held_out).
BEFORE = {
    "synthetic": {"tune": ("09d69b3a5dcfa635", 1001), "holdout": ("3b0403596446c7f4", 999),
                  "generator scenes holdout": ("bfe50784331dbf4f", 195),
                  "generator scenes tune": ("39c01f263af5ecd4", 909),
                  "generator faces tune": ("fb013128c9a8852a", 1805)},
    "wider-train": {"tune": ("3939cd09a2b53a76", 290), "holdout": ("06dc2b5a85e7204b", 291),
                    "generator scenes holdout": ("be70805288d3500b", 50),
                    "generator scenes tune": ("d2c56387dafc1d97", 269)},
    "utkface": {"generator faces holdout": ("d7ad94f66528d57d", 861),
                "generator faces tune": ("edd5dff36193a5c9", 7919)},
}


def chosen(names: list[str]) -> dict[str, tuple[str, int]]:
    def digest(picked: list[str]) -> tuple[str, int]:
        return hashlib.sha256("\n".join(picked).encode()).hexdigest()[:16], len(picked)

    return {
        "tune": digest([n for n in names if in_split(n, "tune")]),
        "holdout": digest([n for n in names if in_split(n, "holdout")]),
        "generator scenes holdout": digest([n for n in names if in_generator_split(n, "holdout")]),
        "generator scenes tune": digest([n for n in names if in_generator_split(n, "tune")]),
        "generator faces holdout": digest([n for n in names if in_generator_split(n, "holdout", halved=False)]),
        "generator faces tune": digest([n for n in names if in_generator_split(n, "tune", halved=False)]),
    }


def test_the_splits_choose_what_the_old_vocabularies_chose():
    now = chosen(SYNTHETIC)
    assert {k: now[k] for k in BEFORE["synthetic"]} == BEFORE["synthetic"]


def test_the_shared_data_splits_are_the_published_ones(shared_data):
    wider = sorted(json.loads((shared_data / "wider-train" / "boxes.json").read_text()))
    now = chosen(wider)
    assert {k: now[k] for k in BEFORE["wider-train"]} == BEFORE["wider-train"]
    with zipfile.ZipFile(shared_data / "utkface-crops.zip") as zf:
        utk = sorted(n for n in zf.namelist() if n.lower().endswith(".jpg"))
    now = chosen(utk)
    assert {k: now[k] for k in BEFORE["utkface"]} == BEFORE["utkface"]


def test_halves_are_stable_disjoint_and_cover_wider_train(shared_data):
    assert half_of("0_Parade_marchingband_1_5.jpg") == half_of("/elsewhere/0_Parade_marchingband_1_5.jpg")
    halves = {h: {p.name for p, _ in load_wider(shared_data, split=h)} for h in HALVES}
    assert halves["tune"] and halves["holdout"] and not halves["tune"] & halves["holdout"]
    assert halves["tune"] | halves["holdout"] == {p.name for p, _ in load_wider(shared_data)}
    assert abs(len(halves["tune"]) - len(halves["holdout"])) < 0.1 * (len(halves["tune"]) + len(halves["holdout"]))
    assert len(load_wider(shared_data, 5, "tune")) == 5
    with pytest.raises(ValueError, match="choose from"):
        load_wider(shared_data, split="train")


def test_the_generator_tuning_split_never_touches_its_held_back_files():
    faces = [f"{i}_0_0_2017.jpg.chip.jpg" for i in range(2000)]
    held = [n for n in faces if in_generator_split(n, "holdout", halved=False)]
    tune = [n for n in faces if in_generator_split(n, "tune", halved=False)]
    assert set(held) == {n for n in faces if generator_holdout(n)} and not set(held) & set(tune)
    assert len(held) + len(tune) == len(faces)
    scenes = [f"0--Parade/0_Parade_{i}.jpg" for i in range(2000)]
    tune_scenes = [n for n in scenes if in_generator_split(n, "tune")]
    assert tune_scenes and all(not generator_holdout(n) and half_of(n) == "tune" for n in tune_scenes)
    assert not set(tune_scenes) & {n for n in scenes if in_generator_split(n, "holdout")}
    with pytest.raises(ValueError, match="split"):
        in_generator_split(scenes[0], "all")
