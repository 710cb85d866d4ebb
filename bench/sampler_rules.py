"""The sampler's choices measured on a split: each triple through `evaluate.compare` with the
instrument probe and the content's score notes (the yardstick's scoring, the sampler row only, no
calibration rows), 5 s clips at 44.1 kHz (--duration to change).

    python bench/sampler_rules.py --split dev                               # the defaults
    python bench/sampler_rules.py --split dev --set tie_semitones=2 --set shift=phase-vocoder

Prints one line per triple, then success over all triples and over those with monophonic
content, pitch agreement (1 - f0_off_50c) over the monophonic ones, and the probe's mean.

--split train builds 32 triples from the probe's own training pieces (every instrument the style
twice, a monophonic melody played by another instrument as the content, the content's melody on
the style's instrument as the truth): the only split where cello and organ styles can be tuned
without touching the test split. The probe has heard those truths and style clips, so its votes
there flatter: use it to compare settings, never as a result.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from labutils import audio as A, evaluate as E, probe as P
from labutils.config import SamplerConfig
from labutils.errors import LabError
from labutils.sweep import parse_grid


def train_triples(n_per_style: int = 2, seed: int = 0, styles: list[str] | None = None,
                  chords: bool = False) -> list[dict]:
    """Triples from the probe's training clips (role "train"), drawn with a fixed seed; ``styles``:
    those style instruments only; ``chords``: the style plays one of the polyphonic pieces (broken
    chords, a chorale, thirds), the content a monophonic one."""
    clips = A.benchmark_clips(role="train")
    by = {(c["melody"], c["instrument"]): c for c in clips}
    mono = sorted({c["melody"] for c in clips if c["monophonic"]})
    poly = sorted({c["melody"] for c in clips if not c["monophonic"]})
    instruments = sorted({c["instrument"] for c in clips})
    rng = np.random.default_rng(seed)
    out = []
    for style_ins in instruments:
        if styles and style_ins not in styles:
            continue
        for _ in range(n_per_style):
            s_mel, c_mel = rng.choice(mono, 2, replace=False)
            if chords:
                s_mel = rng.choice(poly)
            c_ins = rng.choice([i for i in instruments if i != style_ins])
            c, s, t = by[(c_mel, c_ins)], by[(s_mel, style_ins)], by[(c_mel, style_ins)]
            out.append({"content": c["path"], "style": s["path"], "truth": t["path"], "monophonic": True,
                        "content_notes": c["notes"], "content_instrument": c_ins, "style_instrument": style_ins})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", default="dev")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a SamplerConfig field")
    p.add_argument("--triples", type=int, default=None, help="the first N triples only")
    p.add_argument("--json", help="write the per-triple rows here")
    p.add_argument("--per-style", type=int, default=2, help="--split train: triples per style instrument (default 2)")
    p.add_argument("--styles", help="--split train: these style instruments only (comma-separated)")
    p.add_argument("--chords", action="store_true", help="--split train: the style plays a polyphonic piece")
    p.add_argument("--duration", type=float, default=5.0, help="seconds of each clip (default 5)")
    args = p.parse_args()
    grid = parse_grid(" ".join(args.set), method="sampler") if args.set else {}
    # a wrong --set stops here, not at every triple
    cfg = SamplerConfig(duration=args.duration, **{k: v[0] for k, v in grid.items()}).validate()
    probe = P.load_probe()
    if args.split == "train":
        triples = train_triples(args.per_style, styles=args.styles.split(",") if args.styles else None,
                                chords=args.chords)
    else:
        triples = E.load_split(args.split)
    triples = triples[:args.triples]
    rows, t0 = [], time.perf_counter()
    for t in triples:
        try:
            comp = E.compare(t["content"], t["style"], truth=t["truth"], configs={"sampler": cfg}, methods=[],
                             out_dir=None, progress=False, probe=probe, monophonic=t.get("monophonic", True),
                             content_notes=t.get("content_notes"), calibration=False, report=False,
                             instruments={"content": t.get("content_instrument"), "style": t.get("style_instrument")})
        except LabError as e:  # the attempt refused the pair (one line says why): not scored
            print(f"{Path(t['content']).name:28s} {Path(t['style']).name:28s} skipped: {e}", flush=True)
            continue
        r = {k: float(v) for k, v in comp.scores["sampler"].items() if isinstance(v, (int, float))}
        r |= {"content": str(t["content"]).rsplit("/", 1)[-1], "style": str(t["style"]).rsplit("/", 1)[-1],
              "mono": bool(t.get("monophonic", True))}
        rows.append(r)
        print(f"{r['content']:28s} {r['style']:28s} monophonic {int(r['mono'])} success {r['success']:.0f} "
              f"probe {r['probe_style_prob']:.2f} f0_off_50c {r.get('f0_off_50c', float('nan')):.2f} "
              f"chroma {r['chroma_to_content']:.2f}", flush=True)
    mono = [r for r in rows if r["mono"]]
    changed = ", ".join(args.set) or "defaults"
    print(f"\n{changed} on {args.split} ({args.duration:g} s): success {np.mean([r['success'] for r in rows]):.3f} ({len(rows)} triples), "
          f"monophonic content {np.mean([r['success'] for r in mono]):.3f} ({len(mono)}), pitch agreement "
          f"{1 - np.nanmean([r.get('f0_off_50c', np.nan) for r in mono]):.3f}, probe "
          f"{np.mean([r['probe_style_prob'] for r in rows]):.3f}, chroma {np.mean([r['chroma_to_content'] for r in rows]):.3f} "
          f"({time.perf_counter() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
