"""The notes CREPE leaves unpitched, counted: for each clip of a role that has pitch, every note
`find_notes` would leave without a pitch (``onset_clarity=inf``), the pitch its onset adds
(`notes.onset_pitches`) and how clearly it stands out, against the score note starting within 50 ms.
Three synthetic clips of noise bursts over a tone show where a pitchless hit lands.

    python bench/onset_clarity.py --role train            # the clips ONSET_CLARITY was chosen on
    python bench/onset_clarity.py --role benchmark --clarity 2 --clarity 3 --clarity 5

Per clarity threshold: the matched notes whose onset pitch is right (within half a semitone), an
octave off or wrong, the notes no score note starts near, and the synthetic hits that pass.
"""
from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
import torch

from labutils import audio as A
from labutils import notes as N

RATE = 22050


def unpitched(x: torch.Tensor, score: list | None) -> list[tuple[str, float]]:
    """(verdict, clarity) of each note of ``x`` the tracker leaves unpitched; verdict is right,
    octave, wrong, unmatched (no score note near its onset) or hit (no score at all)."""
    found = N.find_notes(x, sample_rate=RATE, onset_clarity=float("inf"), cache=False)
    if found.monophony < N.PITCHED_THRESHOLD:
        return []
    silent = [n for n in found.notes if not n.pitched]
    if not silent:
        return []
    at, clear = N.onset_pitches(x, [n.onset for n in silent], sample_rate=RATE, clarity=True)
    out = []
    for n, p, c in zip(silent, at, clear):
        if score is None:
            out.append(("hit", float(c)))
            continue
        ref = [q[2] for q in score if abs(q[0] - n.onset) < 0.05]
        gap = abs(p - ref[0]) if ref else np.nan
        verdict = ("unmatched" if not ref else "right" if gap < 0.5 else "octave" if abs(gap - 12.0) < 0.6
                   else "wrong")
        out.append((verdict, float(c)))
    return out


def hits_over_tone(seed: int) -> torch.Tensor:
    """Two seconds: a 440 Hz tone for the first, noise bursts every third of a second throughout."""
    rng = np.random.default_rng(seed)
    x = np.zeros(2 * RATE)
    for s in range(0, x.size, RATE // 3):
        n = min(3000, x.size - s)
        x[s:s + n] += rng.standard_normal(n) * np.exp(-np.arange(n) / 500)
    x += 0.3 * np.sin(2 * np.pi * 440 * np.arange(x.size) / RATE) * (np.arange(x.size) < RATE)
    return torch.tensor(x, dtype=torch.float32)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--role", default="train", choices=("train", "benchmark", "benchmark-musescore"))
    p.add_argument("--clarity", type=float, action="append", help=f"thresholds (default {N.ONSET_CLARITY:g})")
    args = p.parse_args()
    rows = []
    for c in A.benchmark_clips(role=args.role):
        rows += unpitched(A.load(c["path"], sample_rate=RATE, duration=5.0), c["notes"])
    for seed in range(3):
        rows += unpitched(hits_over_tone(seed), None)
    for th in args.clarity or [N.ONSET_CLARITY]:
        count = Counter(v for v, c in rows if c >= th)
        matched = count["right"] + count["octave"] + count["wrong"]
        print(f"{args.role}, clarity >= {th:g}: right {count['right']} of {matched} matched (octave {count['octave']}, "
              f"wrong {count['wrong']}), unmatched {count['unmatched']}, synthetic hits passing {count['hit']} of "
              f"{sum(v == 'hit' for v, _ in rows)}")


if __name__ == "__main__":
    main()
