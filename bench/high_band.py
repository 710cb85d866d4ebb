"""Where attempt 3's bright patches near Nyquist come from: the energy above --above Hz, as the
mean of the log-compressed spectrogram S there, in the content, the style, the optimised S
(before Griffin-Lim) and the result's audio (after Griffin-Lim), and how far the optimisation
moved S in each band. The content is written as Ogg Vorbis first, as a user's own track would be,
so that it carries the encoder's low-pass.

    python bench/high_band.py --steps 60 [--content moonlight_piano] [--style drums_loop] [--sample-rate 44100]

Prints one JSON object. Attempt 3's defaults otherwise (5 s, n_fft 512, hop 256, C = 1000).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch

from labutils import attempts, transfer
from labutils import audio as A
from labutils import spectral as S
from labutils.config import CaracallaRoebelConfig
from labutils.optim import optimise, tune_allocator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--content", default="moonlight_piano")
    ap.add_argument("--style", default="drums_loop")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--sample-rate", type=int, default=44100)
    ap.add_argument("--above", type=float, default=18000.0)
    args = ap.parse_args()
    tune_allocator()
    cfg = CaracallaRoebelConfig(steps=args.steps, sample_rate=args.sample_rate)
    with tempfile.TemporaryDirectory() as tmp:
        ogg = Path(tmp) / "content.ogg"
        sf.write(str(ogg), A.load(args.content, sample_rate=44100, duration=cfg.duration).numpy(), 44100,
                 format="OGG", subtype="VORBIS")
        content, style, _ = transfer.load_pair(ogg, args.style, cfg)
    kw = dict(n_fft=cfg.n_fft, hop_length=cfg.hop_length, compression=cfg.compression)
    freqs = torch.arange(cfg.n_fft // 2 + 1) * cfg.sample_rate / cfg.n_fft
    high = freqs >= args.above
    problem = attempts.get("caracalla-roebel").build(content, style, cfg, None)
    start = time.perf_counter()
    out = optimise(problem.init, problem.loss_fn, steps=cfg.steps, lr=problem.lr, progress=False)
    seconds = time.perf_counter() - start
    optimised = out.param[0].detach()
    audio = problem.decode(out.param)[0]
    specs = {"content": S.log_spectrogram(content, **kw), "style": S.log_spectrogram(style, **kw),
             "optimised S (before Griffin-Lim)": optimised,
             "result audio (after Griffin-Lim)": S.log_spectrogram(audio / audio.abs().max() * 0.9, **kw)}
    report = {"steps": cfg.steps, "sample_rate": cfg.sample_rate, "seconds": round(seconds, 1),
              f"mean S above {args.above:g} Hz": {k: round(float(v[high].mean()), 4) for k, v in specs.items()}}
    moved = (optimised - specs["content"]).abs()
    edges = [0, 4000, 12000, 16000, args.above, cfg.sample_rate / 2 + 1]
    report["mean |S - S_content| per band (Hz)"] = {
        f"{lo:g}-{hi:g}": round(float(moved[(freqs >= lo) & (freqs < hi)].mean()), 4)
        for lo, hi in zip(edges, edges[1:]) if ((freqs >= lo) & (freqs < hi)).any()}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
