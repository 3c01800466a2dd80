"""Runtime variants of the generator, paired against the shipped settings on the crowd measures.

    .venv/bin/python -m scripts.gan_variants --data ../shared/data --limit 300 \\
        --variant tone_source=surround --variant tone_source=face

Each `--variant KEY=VALUE[,KEY=VALUE]` is a FaceGenerator keyword setting (edgeanon/anonymize/gan.py); every
variant and the shipped settings ("gan") anonymize the same faces with the same seeds (export.eval.crowd, the
tuning split unless --split holdout), and the report gives each one's values and its paired difference to "gan",
with 95% bootstrap intervals (among them each output's own original's rank over the found faces, crowd.own_rank:
0.5 = chance, lower = more identifiable; the weak signal behind rank-1 re-identification). `--blur` adds the
blur row; `--ksame BANK.npz` (repeatable) adds method ksame with that reference bank (`python -m export
ksame-bank --out BANK.npz`), labelled by the file's name.

`--base ksame` compares KSameFaces settings instead (no gan run): each `--ksame-variant KEY=VALUE[,...]` (e.g.
`person_shape=0`, `paste_rim=1.1:1.3`, `ita_window=20`) is a KSameFaces keyword setting on the committed bank
(`bank=PATH.npz` among them: on that bank instead), paired against "ksame", the shipped settings:

    .venv/bin/python -m scripts.gan_variants --data ../shared/data --limit 300 --base ksame --blur \
        --ksame-variant person_shape=0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgeanon.anonymize import Anonymizer
from edgeanon.anonymize.gan import FaceGenerator
from edgeanon.anonymize.ksame import KSameFaces
from edgeanon.models import DEFAULT_DETECTOR, DEFAULT_GENERATOR, DEFAULT_KSAME_BANK
from export.eval import crowd


def parse_variant(text: str) -> dict:
    """'tone_source=face,max_turn=0.5,paste_rim=1:1.2' -> {'tone_source': 'face', 'max_turn': 0.5,
    'paste_rim': (1.0, 1.2)} (numbers where they parse)."""
    out = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if value.lower() == "none":
            out[key] = None
            continue
        if ":" in value:  # a pair, e.g. paste_rim=1.0:1.2
            out[key] = tuple(float(v) for v in value.split(":"))
            continue
        try:
            out[key] = float(value)
        except ValueError:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--limit", type=int, default=300)
    p.add_argument("--split", default="tune", help="tune (default) or holdout")
    p.add_argument("--offset", type=int, default=0, help="export.eval crowd's --offset: another part of the split")
    p.add_argument("--variant", action="append", default=[])
    p.add_argument("--blur", action="store_true")
    p.add_argument("--ksame", type=Path, action="append", default=[], help="a ksame reference bank to add")
    p.add_argument("--ksame-variant", action="append", default=[],
                   help="KSameFaces settings KEY=VALUE[,KEY=VALUE] on the committed bank (repeatable)")
    p.add_argument("--base", choices=("gan", "ksame"), default="gan",
                   help="what the paired differences are taken against: gan (default) or ksame's shipped settings")
    p.add_argument("--generator", type=Path, default=DEFAULT_GENERATOR)
    p.add_argument("--bank", type=Path, default=DEFAULT_KSAME_BANK,
                   help="with --base ksame: the base's reference bank, and the variants' unless they name one "
                        "(default: %(default)s)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    anonymizers = {}
    for text in args.variant:
        gen = FaceGenerator.from_path(args.generator, backend="ort", threads=1, **parse_variant(text))
        anonymizers[text] = Anonymizer("gan", generator=gen)
    for bank in args.ksame:
        anonymizers[f"ksame:{bank.stem}"] = Anonymizer("ksame", generator=KSameFaces.from_path(bank))
    for text in args.ksame_variant:
        options = parse_variant(text)
        bank = Path(options.pop("bank", args.bank))
        anonymizers[f"ksame:{text}"] = Anonymizer("ksame", generator=KSameFaces.from_path(bank, **options))
    if args.blur:
        anonymizers["blur"] = Anonymizer("blur")
    # Last, so that every paired difference reads "variant - base".
    if args.base == "ksame":
        anonymizers["ksame"] = Anonymizer("ksame", generator=KSameFaces.from_path(args.bank))
    else:
        anonymizers["gan"] = Anonymizer("gan", generator=FaceGenerator.from_path(args.generator, backend="ort",
                                                                                 threads=1))
    _, seen = crowd.collect(args.data, DEFAULT_DETECTOR, anonymizers, args.limit, args.split, threads=1,
                            offset=args.offset)
    stats = crowd.bootstrap({m: seen.per_face(m) for m in anonymizers}, seen.groups())
    stats["paired"] = {k: v for k, v in stats["paired"].items() if k.endswith(f" - {args.base}")}
    print(f"faces: {len(seen.names)} ({args.split} split); paired differences against {args.base}'s shipped settings")
    print(crowd.format_report(stats))
    for m in anonymizers:
        print(f"{m}: served by head turn: {crowd.served_by_turn(seen, m)}")
    if args.json:
        args.json.write_text(json.dumps({
            "faces": len(seen.names), "names": seen.names, "turn": seen.turn, "stats": stats,
            "served": {m: seen.methods[m].served for m in anonymizers},
            "per_face": {m: {k: v.tolist() for k, v in seen.per_face(m).items()} for m in anonymizers}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
