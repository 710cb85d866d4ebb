"""Shared fixtures: short synthetic clips written in several formats, a small config."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m labutils ARGS`` from the repository root; capture its output."""
    return subprocess.run([sys.executable, "-m", "labutils", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def tone(freq: float = 440.0, seconds: float = 0.5, rate: int = 16000, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.5 * np.sin(2 * math.pi * freq * t) * np.hanning(t.size) ** 0.1
    return np.stack([x] * channels, axis=1).astype(np.float32) if channels > 1 else x.astype(np.float32)


@pytest.fixture
def tone_file(tmp_path: Path):
    def make(name: str = "tone.wav", **kw) -> Path:
        rate = kw.pop("rate", 16000)
        subtype = kw.pop("subtype", None)
        path = tmp_path / name
        sf.write(str(path), tone(rate=rate, **kw), rate, subtype=subtype)
        return path

    return make


@pytest.fixture
def tiny_cfg():
    """Attempt 3 at a size that runs in well under a second per step."""
    from labutils.config import CaracallaRoebelConfig

    return CaracallaRoebelConfig(steps=20, sample_rate=8000, duration=0.5, n_fft=128, hop_length=64, filters=4,
                                 kernel_sizes=(3, 5), griffin_lim_iters=8, device="cpu")


@pytest.fixture
def tiny_pair():
    from labutils import audio as A

    content = A.load("moonlight_piano", sample_rate=8000, duration=0.5)
    style = A.load("ode_violin", sample_rate=8000, duration=0.5)
    return content, style
