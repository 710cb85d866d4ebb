"""Where a 5 s sampler pair's CPU time goes (44.1 kHz, ode_piano in the style of ode_violin): CREPE on
one clip, then the rest of the pair (placing the notes, the spectrograms shown) with both clips' notes
memoised.

    python bench/sampler_cost.py
"""
import time, torch
from labutils import audio as A, notes as N, transfer
from labutils.config import SamplerConfig
cfg = SamplerConfig(duration=5.0, device="cpu")
c, s, _ = transfer.load_pair("ode_piano", "ode_violin", cfg)
N.crepe_track(c[:22050], sample_rate=44100)
best = min((lambda t: (N.crepe_track(c, sample_rate=44100), time.process_time() - t)[1])(time.process_time()) for _ in range(3))
notes_c = N.find_notes(c, sample_rate=44100, cache=False); notes_s = N.find_notes(s, sample_rate=44100, cache=False)
t = time.process_time(); transfer.solve("sampler", c, s, cfg, progress=False); whole = time.process_time() - t
print(f"crepe_track on one 5 s clip: {best:.2f} s CPU (best of 3); sampler pair with both clips' notes memoised (placement only): {whole:.2f} s CPU")
