"""One path for options: `edgeanon anonymize` builds the daemon's ModelConfig, with its defaults and bounds.

The CLI accepts exactly the values the config accepts, and refuses the others in one line that names the
option and gives the config's reason. On the same clip with the same options, the CLI and the daemon serve
the same faces with the same methods, with the generator model there and without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from devkit.broker import Broker, mosquitto_binary
from devkit.daemon_kit import Collector, make_clip
from edgeanon.cli import build_parser, main
from edgeanon.commands import anonymize
from edgeanon.config import ConfigError, model_config
from edgeanon.models import DEFAULT_GENERATOR

REPO = Path(__file__).resolve().parents[2]

# (CLI option, [model] key, values on both sides of each of the config's bounds). nan and inf never reach an
# option's own check: `edgeanon` refuses them for every number option first (edgeanon.cli).
BOUNDS = [
    ("--threshold", "threshold", [0.0, 0.005, 0.01, 0.5, 0.99, 0.995, 1.0]),
    ("--low-threshold", "low_threshold", [-0.1, 0.0, 0.005, 0.01, 0.06, 0.2, 0.25, 0.995]),
    ("--mask-scale", "mask_scale", [0.2, 0.99, 1.0, 1.6, 3.0, 3.5]),
    ("--detect-scale", "input_scale", [-1.0, 0.05, 0.1, 0.5, 4.0, 4.5]),
    ("--hold", "hold_s", [-0.5, 0.0, 0.3, 60.0, 61.0]),
    ("--threads", "threads", [-1, 0, 2, 256, 257]),
]


def config_problem(key: str, value) -> str | None:
    """The config's reason to refuse `value` for model.`key` (None: accepted)."""
    try:
        model_config(**{key: value})
    except ConfigError as exc:
        return str(exc).split(": ", 1)[1].replace("model.threshold", "--threshold")  # as the CLI names it
    return None


@pytest.mark.parametrize("flag, key, values", BOUNDS, ids=[b[0] for b in BOUNDS])
def test_the_cli_accepts_exactly_what_the_config_accepts(flag, key, values, tmp_path, capsys):
    for value in values:
        args = build_parser().parse_args(["anonymize", "x.jpg", "-o", str(tmp_path / "o"), flag, str(value)])
        problem = config_problem(key, value)
        if problem is None:
            assert getattr(anonymize.model_config(args), key) == value
            continue
        with pytest.raises(anonymize.UserError) as caught:
            anonymize.model_config(args)
        assert str(caught.value) == f"{flag} {value}: {problem}"
        # and from the command line: one line, exit 2, nothing written, before any input is read
        assert main(["anonymize", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "o"), flag, str(value)]) == 2
        err = capsys.readouterr().err
        assert err.strip() == f"edgeanon anonymize: {flag} {value}: {problem}", err
        assert not (tmp_path / "o").exists()


def test_a_low_threshold_above_the_threshold_is_refused_by_both(tmp_path):
    with pytest.raises(ConfigError, match=r"^model.low_threshold = 0.3: must not be more than model.threshold \(0.2\)"):
        model_config(low_threshold=0.3)
    args = build_parser().parse_args(["anonymize", "x.jpg", "-o", str(tmp_path / "o"), "--threshold", "0.4",
                                      "--low-threshold", "0.5"])
    with pytest.raises(anonymize.UserError, match=r"^--low-threshold 0.5: must not be more than --threshold \(0.4\)$"):
        anonymize.model_config(args)


def test_the_cli_defaults_are_the_configs(tmp_path):
    args = build_parser().parse_args(["anonymize", "x.jpg", "-o", str(tmp_path / "o")])
    assert anonymize.model_config(args) == model_config()


# -- the same clip through the CLI and the daemon -------------------------------------------------------

CLIP_FRAMES = 10


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "faces.avi", frames=CLIP_FRAMES, size=(640, 360), fps=10.0)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed")
    with Broker(tmp_path_factory.mktemp("broker")) as b:
        yield b


def without_generator(tmp: Path, detector_model: Path) -> dict[str, str]:
    """EDGEANON_MODELS: a models folder with the detector alone (no default generator)."""
    folder = tmp / "models"
    folder.mkdir()
    (folder / "detector.onnx").symlink_to(detector_model.resolve())
    return {"EDGEANON_MODELS": str(folder)}


def cli_methods(tmp: Path, clip: Path, env: dict[str, str], options: list[str]) -> tuple[dict[str, int], str]:
    """Faces per method, over every frame of the clip, as `edgeanon anonymize --report` counts them."""
    report = tmp / "report.json"
    out = subprocess.run([sys.executable, "-m", "edgeanon", "anonymize", str(clip), "-o", str(tmp / "out.mp4"),
                          "--report", str(report), *options], cwd=REPO, capture_output=True, text=True,
                         timeout=600, env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    data = json.loads(report.read_text())
    assert data["frames"] == CLIP_FRAMES
    return data["totals"], out.stderr


def daemon_methods(tmp: Path, clip: Path, broker: Broker, env: dict[str, str], model: str
                   ) -> tuple[dict[str, int], dict, str]:
    """Faces per method over every frame the daemon published, its final stats, and its log."""
    config = tmp / "daemon.toml"
    # target_fps = 0: full-size detection whatever the load, as the CLI does; a deadline no frame misses
    config.write_text(f'camera_id = "one"\n[source]\nuri = "file://{clip}"\n[model]\n{model}\n'
                      f'[pipeline]\ntarget_fps = 0\ndeadline_ms = 60000.0\nstats_interval_s = 1.0\n'
                      f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n')
    collector = Collector(broker.port, camera="one")
    out = subprocess.run([sys.executable, "-m", "edgeanon", "run", "--config", str(config)], cwd=REPO,
                         capture_output=True, text=True, timeout=600, env={**os.environ, **env})
    received = collector.finish()
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(e["frame_index"] for e in received.events) == list(range(CLIP_FRAMES))
    totals: dict[str, int] = {}
    for event in received.events:
        for method in event["methods"]:
            totals[method] = totals.get(method, 0) + 1
    final = received.final()
    return totals, final, out.stderr


@pytest.mark.slow
def test_cli_and_daemon_without_the_generator_both_blur(tmp_path, clip, broker, detector_model):
    """No generator model and no method asked for: both resolve the default the same way (blur), both run."""
    env = without_generator(tmp_path, detector_model)
    cli, _ = cli_methods(tmp_path, clip, env, [])
    daemon, final, log = daemon_methods(tmp_path, clip, broker, env, "")
    assert cli == daemon and set(cli) == {"blur"} and cli["blur"] >= CLIP_FRAMES, (cli, daemon)
    assert final["method"] == "blur" and final["fallbacks"] == 0
    assert "method blur" in log


@pytest.mark.slow
def test_cli_and_daemon_with_the_same_options_serve_the_same_faces(tmp_path, clip, broker):
    """gan with the shipped generator, plus options set both ways: the same methods for the same faces. (gan is
    asked for by name: it is the default only while the generator passes its goals, edgeanon.defaults.)"""
    if not DEFAULT_GENERATOR.is_file():
        pytest.skip(f"{DEFAULT_GENERATOR} is not there")
    cli, _ = cli_methods(tmp_path, clip, {}, ["--method", "gan", "--threshold", "0.3", "--mask-scale", "1.4",
                                              "--hold", "0.5"])
    daemon, final, _ = daemon_methods(tmp_path, clip, broker, {},
                                      'method = "gan"\nthreshold = 0.3\nmask_scale = 1.4\nhold_s = 0.5')
    assert cli == daemon and cli.get("gan", 0) >= CLIP_FRAMES, (cli, daemon)
    assert final["method"] == "gan" and final["fallbacks"] == sum(n for m, n in daemon.items() if m != "gan")


@pytest.mark.parametrize("value", ["0.005", "0.995"])
def test_detect_takes_the_same_threshold_range(tmp_path, face_image, capsys, value):
    """`edgeanon detect` runs the detector alone; its threshold range is the config's too."""
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), face_image)
    assert main(["detect", str(photo), "--threshold", value]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"edgeanon detect: threshold must be between 0.01 and 0.99, got {value}", err
