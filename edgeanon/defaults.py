"""The runtime's default settings, in one leaf module (no imports) that the config, CLI and runtime all read."""

from __future__ import annotations

from dataclasses import dataclass

# How faces can be replaced: a generated face, or one of the classic methods.
METHODS = ("gan", "blur", "pixelate", "fill")
# The method when none is asked for, in the CLI and the daemon alike. When it is gan and the default generator
# model is not there, edgeanon.models.resolve_method gives FALLBACK_METHOD instead (one rule for both).
# gan is the default only while the shipped generator passes its goals (issue 25, docs/generator.md): on 300
# held-back faces in scenes it keeps the tone (L* r 0.86) but not the crowd (diversity 0.74 of the people's)
# nor identity (taken for its own person 2.3 / 3.2 points more often than for a look-alike under dlib / SFace,
# re-identification 8x chance), so blur is the default until weights that pass have come through the gate.
DEFAULT_METHOD = "blur"
# What serves a face the chosen method cannot (a face the generator cannot serve, a doubtful candidate).
FALLBACK_METHOD = "blur"

# Mask shapes: an ellipse inscribed in the grown box, or the box itself.
MASK_SHAPES = ("ellipse", "box")
DEFAULT_MASK_SHAPE = "ellipse"

# How plates can be replaced: a rendered plate of random characters in the region's colours, or a classic method.
PLATE_METHODS = ("synthetic", "blur", "pixelate", "fill")
DEFAULT_PLATE_METHOD = "blur"
# The plate detector (edgeanon.plates): plates scoring >= PLATE_THRESHOLD are confident; from PLATE_LOW_THRESHOLD
# up they are doubtful and get a plain blur (when in doubt, cover it). Chosen on plates-oi's tuning split
# (python -m export.eval plates --split tune --sweep, docs/plates.md): a low threshold of 0.05 leaked 5 of 312 plates
# against 7 at 0.1, for 0.23% of the picture against 0.20%; the threshold (0.15 - 0.4) changed neither.
PLATE_THRESHOLD = 0.25
PLATE_LOW_THRESHOLD = 0.05
PLATE_NMS_IOU = 0.5
# Plate boxes are tight: the cover is the box grown this much (a rectangle). On the tuning split 1.0, 1.2 and 1.4
# leaked the same plates (misses, not partial covers); 1.2 leaves a margin for a plate moving between detections.
PLATE_MASK_SCALE = 1.2
# Run the plate detector on every Nth frame of a video or stream; the tracker holds the boxes in between.
PLATE_EVERY = 1
# How long the plate tracker keeps covering a plate it no longer sees (seconds): through skipped frames and misses.
PLATE_HOLD_S = 0.5

# Default mask: the box grown 1.6x (deface's default "1.3" grows each side by 30 %, the same 1.6x).
DEFAULT_MASK_SCALE = 1.6

# How long the tracker keeps covering a face the detector lost (seconds); a confirmed face leaving the picture
# is held until it has left (edgeanon.tracker). On the tuning clip 0.3 s leaked as little as 1 s (0.39%) and
# changed 0.9% less of the picture.
DEFAULT_HOLD_S = 0.3

# The largest video `edgeanon anonymize` decodes, in billions of pixels (width x height x frames): 1000 is about an
# hour of 4K at 30 frames/s. Checked from the header before decoding, so a small file cannot claim days of work.
DEFAULT_VIDEO_GIGAPIXELS = 1000.0

# Delivery (edgeanon.publish.mqtt): frames wait and the broker acknowledges none for this long: a warning
# (repeated at this period); for the second: the daemon exits non-zero so the service manager restarts it.
# 300 s keeps a broker that is down for a while from running the unit into systemd's start limit (5 starts
# in 10 minutes), since each start also takes the restart delay and the model load.
DEFAULT_NO_ACK_WARN_S = 30.0
DEFAULT_NO_ACK_EXIT_S = 300.0


@dataclass(frozen=True)
class Scaling:
    """Automatic input scale: the longer side toward `target_side`, clamped to [min_scale, max_scale]."""

    target_side: int
    min_scale: float
    max_scale: float

    def scale_for(self, height: int, width: int) -> float:
        return min(self.max_scale, max(self.min_scale, self.target_side / max(height, width, 1)))


@dataclass(frozen=True)
class Profile:
    """How the detector looks at one kind of input: its scales and its two score thresholds.

    `scaling` gives the main scale; `extra_scales` are further scales (input pixels per original
    pixel) whose candidates join the same NMS. Scores >= `threshold` are confident faces; scores in
    [`low_threshold`, `threshold`) are doubtful candidates (covered by a plain blur). Doubtful candidates
    come from the main scale only, and only with a box side within `doubt_sides`: measured on wider-train,
    larger doubtful boxes and those of the extra scales are nearly all false, and cost the most picture.
    """

    scaling: Scaling
    threshold: float
    low_threshold: float | None = None
    extra_scales: tuple[float, ...] = ()
    extra_threshold: float | None = None  # confident threshold for the extra scales' candidates (None: threshold)
    doubt_sides: tuple[float, float] = (12.0, 48.0)  # doubtful candidates count only within these box sides (px)


# Chosen on the tuning half of wider-train (python -m export.eval.tune --split tune), reported on both halves in
# docs/privacy.md (python -m export.eval leak --split tune|holdout). Doubtful candidates (score 0.06 - 0.2, box side
# 12 - 48 px) get a plain blur: on the tuning stills this took the leak from 2.8% to 0.36% for 1.5% of the picture.
# Still images: small ones scaled up to 1280 px, never down; half scale too, for confident faces only (close-ups
# larger than the detector's reach at the main scale; on wider-train it changed nothing, at no cost).
IMAGE_SCALING = Scaling(1280, 1.0, 2.0)
IMAGE_PROFILE = Profile(IMAGE_SCALING, threshold=0.2, low_threshold=0.06, extra_scales=(0.5,), extra_threshold=0.4)
# Video and streams: full size up to 1280 px on the long side (at half size faces of 16-24 px are lost), larger
# frames scaled down to 1280 px; the tracker holds a face through the detector's misses.
VIDEO_SCALING = Scaling(1280, 0.5, 1.0)
VIDEO_PROFILE = Profile(VIDEO_SCALING, threshold=0.2, low_threshold=0.06)
# The detector's single-image threshold, for the tools that run it alone (edgeanon detect, export's checks).
DEFAULT_THRESHOLD = IMAGE_PROFILE.threshold

# Several cameras in one daemon ([[cameras]]; edgeanon.device). A camera that stalls or whose MQTT sender gives up
# is restarted alone ("restart") or ends the daemon for systemd to restart ("exit").
CAMERA_FAILURES = ("restart", "exit")
DEFAULT_CAMERA_FAILURE = "restart"
# How long a shared model waits for the other cameras' frames to join a batch once one is pending (ms); it runs
# sooner as soon as every camera with a frame in progress is waiting on a model (edgeanon.batching).
DEFAULT_BATCH_WAIT_MS = 20.0
