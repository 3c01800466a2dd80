"""Device telemetry for the stats topic: jetson-stats (jtop) when its service runs, else /sys and /proc."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


class SysTelemetry:
    """Reads CPU %, RAM, temperatures and GPU load from /proc and /sys; missing files are simply left out."""

    source = "sys"

    def __init__(self, root: str | Path = "/"):
        self.root = Path(root)
        self._cpu_prev: tuple[int, int] | None = self._cpu_times()

    def _cpu_times(self) -> tuple[int, int] | None:
        text = _read(self.root / "proc/stat")
        if not text:
            return None
        try:
            parts = [int(x) for x in text.splitlines()[0].split()[1:]]
        except (ValueError, IndexError):
            return None
        idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
        return sum(parts), idle

    def cpu_percent(self) -> float | None:
        now = self._cpu_times()
        prev, self._cpu_prev = self._cpu_prev, now
        if now is None or prev is None or now[0] <= prev[0]:
            return None
        total, idle = now[0] - prev[0], now[1] - prev[1]
        return round(100.0 * (total - idle) / total, 1)

    def memory(self) -> dict[str, float]:
        text = _read(self.root / "proc/meminfo") or ""
        info = {}
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            try:
                info[key] = int(rest.split()[0])  # kB
            except (ValueError, IndexError):
                continue
        out = {}
        if "MemTotal" in info:
            out["ram_total_mb"] = round(info["MemTotal"] / 1024, 1)
            if "MemAvailable" in info:
                out["ram_used_mb"] = round((info["MemTotal"] - info["MemAvailable"]) / 1024, 1)
        return out

    def temperatures(self) -> dict[str, float]:
        out: dict[str, float] = {}
        base = self.root / "sys/class/thermal"
        try:
            zones = sorted(base.glob("thermal_zone*"))
        except OSError:
            return out
        for zone in zones:
            raw = _read(zone / "temp")
            if raw is None:
                continue
            try:
                value = int(raw) / 1000.0
            except ValueError:
                continue
            name = (_read(zone / "type") or zone.name).replace(" ", "_")
            out[name] = round(value, 1)
        return out

    def gpu_load(self) -> float | None:
        raw = _read(self.root / "sys/devices/gpu.0/load")
        try:
            return None if raw is None else round(int(raw) / 10.0, 1)  # per mille on Jetson
        except ValueError:
            return None

    def process_rss_mb(self) -> float | None:
        text = _read(self.root / "proc/self/status")
        for line in (text or "").splitlines():
            if line.startswith("VmRSS:"):
                try:
                    return round(int(line.split()[1]) / 1024, 1)
                except (ValueError, IndexError):
                    return None
        return None

    def close(self) -> None:
        """Nothing to release: the files are opened for each reading."""

    def read(self) -> dict:
        out: dict = {"source": self.source}
        cpu = self.cpu_percent()
        if cpu is not None:
            out["cpu_percent"] = cpu
        out.update(self.memory())
        temps = self.temperatures()
        if temps:
            out["temperatures_c"] = temps
        gpu = self.gpu_load()
        if gpu is not None:
            out["gpu_percent"] = gpu
        rss = self.process_rss_mb()
        if rss is not None:
            out["rss_mb"] = rss
        return out


class JtopTelemetry:
    """jetson-stats (AGPL-3.0, optional extra `edgeanon[jtop]`); needs the jtop service running."""

    source = "jtop"

    def __init__(self, jtop_instance):
        self._jetson = jtop_instance
        self._sys = SysTelemetry()

    def read(self) -> dict:
        out: dict = {"source": self.source}
        try:
            stats = dict(self._jetson.stats)
        except Exception as exc:  # the service may go away at any time
            log.debug("jtop read failed: %s", exc)
            return self._sys.read()
        for key, value in stats.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[str(key).lower().replace(" ", "_")] = value
        rss = self._sys.process_rss_mb()
        if rss is not None:
            out["rss_mb"] = rss
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead service must not crash shutdown
            self._jetson.close()


def open_telemetry(use_jtop: bool = True) -> SysTelemetry | JtopTelemetry:
    """jtop when importable and its service answers within a moment, else the /sys fallback."""
    if use_jtop:
        try:
            from jtop import jtop  # type: ignore[import-not-found]
        except ImportError:
            jtop = None
        if jtop is not None:
            try:
                jetson = jtop()
                jetson.start()
                deadline = time.monotonic() + 2.0
                while not jetson.ok() and time.monotonic() < deadline:
                    time.sleep(0.1)
                return JtopTelemetry(jetson)
            except Exception as exc:  # service not running, permission denied, ...
                log.info("jetson-stats present but its service is not usable (%s); using /sys", exc)
    return SysTelemetry()
