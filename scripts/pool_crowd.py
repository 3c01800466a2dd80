"""Several crowd runs as one report: the faces of every run pooled, with one bootstrap over all of them.

    .venv/bin/python -m scripts.pool_crowd RUN15.json RUN23.json [--base ksame]

The files are what `python -m export.eval crowd --json` or `python -m scripts.gan_variants --json` wrote (for
example one run per held-back part: `--offset 15`, `--offset 23`). Each face keeps its own run's values: its
output was ranked among its own run's originals, and rank-1 re-identification over chance is taken against that
gallery (a pooled "x chance" is the mean over the runs' galleries). Only the methods every run has are reported,
and paired differences use the same resampled faces for both methods.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from export.eval import crowd


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", type=Path, nargs="+", help="JSON files of crowd runs (--json)")
    p.add_argument("--base", help="show only the paired differences against this method (default: every pair)")
    args = p.parse_args(argv)
    try:
        runs = [json.loads(path.read_text()) for path in args.runs]
    except (OSError, json.JSONDecodeError) as exc:
        print(f"cannot read a run: {exc}", file=sys.stderr)
        return 2
    names, per_face = crowd.pool(runs)
    if not per_face:
        print("no method is in every run", file=sys.stderr)
        return 2
    if args.base is not None and args.base not in per_face:
        print(f"--base {args.base}: not a method of every run ({', '.join(per_face)})", file=sys.stderr)
        return 2
    if args.base is not None:  # last, so that every paired difference reads "method - base"
        per_face = {**{m: v for m, v in per_face.items() if m != args.base}, args.base: per_face[args.base]}
    stats = crowd.bootstrap(per_face, crowd.race_labels(names))
    if args.base is not None:
        stats["paired"] = {k: v for k, v in stats["paired"].items() if k.endswith(f" - {args.base}")}
    found = int(next(iter(per_face.values()))["found"].sum())
    print(f"faces: {len(names)} from {len(runs)} runs ({', '.join(str(r) for r in args.runs)}), {found} found by "
          f"our detector; bootstrap {crowd.BOOTSTRAP}x over the pooled faces; paired = same resamples")
    print(crowd.format_report(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
