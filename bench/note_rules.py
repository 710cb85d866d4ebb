"""The note layer's rules measured on a role of the rendered set: `notes.evaluate_notes` with
`find_notes` settings changed, one line per setting (onset F1, precision, recall and pitch
accuracy over the monophonic clips, onset F1 per family, and the polyphonic clips' onset F1 and
pitch accuracy against their top line). Tune on --role train (the probe's pieces, in no triple).

    python bench/note_rules.py --role train                                    # the defaults
    python bench/note_rules.py --role train --set tail_db=inf --set tail_db=10  # one line each
    python bench/note_rules.py --role train --set periodicity_dip=-inf,attack=0  # two at once

Each --set is one run (FIELD=VALUE[,FIELD=VALUE...], find_notes keywords: periodicity_dip,
sure_db, attack, tail_db, backtrack, rise_db, ...); CREPE runs once per clip for all of them.
"""
from __future__ import annotations

import argparse
import time

from labutils import audio as A
from labutils import notes as N


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--role", default="train", choices=("train", "benchmark", "benchmark-musescore"))
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="find_notes keywords for one run")
    args = p.parse_args()
    N._MEMO_SIZE = 100_000  # keep every clip's pitch track across the runs
    clips = A.benchmark_clips(role=args.role)
    runs = [{}] + [{k: float(v) for k, v in (kv.split("=", 1) for kv in one.split(","))} for one in args.set]
    for kw in runs:
        t0 = time.perf_counter()
        r = N.evaluate_notes(clips, progress=False, **kw)
        m, poly = r["monophonic"], r["polyphonic"]
        fams = " ".join(f"{k}={v['onset_f1']:.3f}" for k, v in r["families"].items())
        name = ", ".join(f"{k}={v:g}" for k, v in kw.items()) or "defaults"
        print(f"{name}: onset F1 {m['onset_f1']:.3f} (P {m['onset_precision']:.3f}, R {m['onset_recall']:.3f}), "
              f"pitch {m['pitch_accuracy']:.3f} | {fams} | polyphonic onset F1 {poly['onset_f1']:.3f}, "
              f"pitch {poly['pitch_accuracy']:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
