"""Telemetry: real /proc and /sys here, a Jetson-like tree, and a bare root where every file is missing."""

from __future__ import annotations

from pathlib import Path

from edgeanon.telemetry import SysTelemetry, open_telemetry


def test_this_machine():
    t = SysTelemetry()
    sum(i * i for i in range(200_000))  # some CPU time between the two /proc/stat samples
    out = t.read()
    assert out["source"] == "sys"
    assert out["ram_total_mb"] > 0 and 0 < out["ram_used_mb"] <= out["ram_total_mb"]
    assert out["rss_mb"] > 10
    assert 0.0 <= out.get("cpu_percent", 0.0) <= 100.0


def test_jetson_like_tree(tmp_path: Path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/stat").write_text("cpu  100 0 100 800 0 0 0 0 0 0\n")
    (tmp_path / "proc/meminfo").write_text("MemTotal:  8000000 kB\nMemAvailable:  6000000 kB\n")
    for i, (kind, milli) in enumerate([("CPU-therm", "45500"), ("GPU-therm", "43000"), ("broken", "n/a")]):
        zone = tmp_path / f"sys/class/thermal/thermal_zone{i}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(milli + "\n")
    (tmp_path / "sys/devices/gpu.0").mkdir(parents=True)
    (tmp_path / "sys/devices/gpu.0/load").write_text("375\n")
    t = SysTelemetry(tmp_path)
    (tmp_path / "proc/stat").write_text("cpu  150 0 150 900 0 0 0 0 0 0\n")
    out = t.read()
    assert out["cpu_percent"] == 50.0
    assert out["ram_total_mb"] == round(8000000 / 1024, 1)
    assert out["ram_used_mb"] == round(2000000 / 1024, 1)
    assert out["temperatures_c"] == {"CPU-therm": 45.5, "GPU-therm": 43.0}
    assert out["gpu_percent"] == 37.5


def test_missing_files_never_crash(tmp_path: Path):
    assert SysTelemetry(tmp_path / "nothing").read() == {"source": "sys"}


def test_open_without_jtop_falls_back():
    t = open_telemetry(use_jtop=False)
    assert t.read()["source"] == "sys"
