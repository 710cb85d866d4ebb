"""One dataclass per attempt. Every hyperparameter lives here, with its default and its meaning.

Field metadata drive the widget panels and the command line: ``help`` (one line), and where it
applies ``min``/``max`` (inclusive bounds), ``choices``, ``cli`` (the flag name) and ``widget``.

Notebook: notebooks/03_caracalla_roebel.ipynb
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError


def _f(default: Any, help: str, **meta: Any) -> Any:
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class TransferConfig:
    """Hyperparameters shared by every attempt."""

    steps: int = _f(1000, "optimisation steps", min=1, max=100000)
    lr: float = _f(0.1, "learning rate of the optimiser", min=1e-6, max=100.0, log=True)
    alpha: float = _f(1.0, "weight of the content loss (0 = texture synthesis)", min=0.0, max=1e6)
    beta: float = _f(0.01, "weight of the style loss", min=0.0, max=1e6, log=True)
    optimizer: str = _f("adam", "optimiser", choices=("adam", "lbfgs"))
    init: str = _f("content", "where the generated clip starts", choices=("content", "noise"))
    seed: int = _f(0, "seed for noise initialisation and Griffin-Lim phase", min=0, max=2**31 - 1)
    sample_rate: int = _f(44100, "sample rate the clips are loaded at (Hz)", min=4000, max=192000)
    duration: float = _f(5.0, "seconds of each clip used (trimmed or zero-padded)", min=0.1, max=60.0)
    n_fft: int = _f(512, "STFT frame size (samples)", min=16, max=8192)
    hop_length: int = _f(256, "STFT hop size (samples)", min=1, max=8192, cli="hop")
    griffin_lim_iters: int = _f(100, "Griffin-Lim iterations to turn a spectrogram back into sound", min=1, max=5000)
    device: str = _f("auto", "where to compute: auto picks CUDA when present", choices=("auto", "cpu", "cuda"))

    method = "base"

    def validate(self) -> "TransferConfig":
        """Check every field against its bounds and choices; raise one ConfigError naming the fix."""
        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            flag = "--" + meta.get("cli", f.name).replace("_", "-")
            if "choices" in meta:
                if value not in meta["choices"]:
                    raise ConfigError(f"{f.name}={value!r}: not one of {', '.join(meta['choices'])} (flag {flag})")
                continue
            values = value if isinstance(value, (tuple, list)) else (value,)
            if isinstance(value, (tuple, list)) and not value:
                raise ConfigError(f"{f.name}: needs at least one value (flag {flag})")
            for v in values:
                if isinstance(v, (bool, str)):
                    continue
                if not isinstance(v, (int, float)):
                    raise ConfigError(f"{f.name}={v!r}: must be a number (flag {flag})")
                if isinstance(v, float) and not math.isfinite(v):
                    raise ConfigError(f"{f.name}={v}: must be a finite number (flag {flag})")
                lo, hi = meta.get("min"), meta.get("max")
                if (lo is not None and v < lo) or (hi is not None and v > hi):
                    raise ConfigError(f"{f.name}={v}: must lie between {lo} and {hi} ({meta['help']}; flag {flag})")
        if self.hop_length > self.n_fft:
            raise ConfigError(f"hop_length={self.hop_length} is larger than n_fft={self.n_fft}; use a hop of at most n_fft")
        if self.alpha == 0 and self.beta == 0:
            raise ConfigError("alpha and beta are both 0: nothing to optimise; set --beta above 0")
        return self

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["method"] = self.method
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def replace(self, **changes: Any) -> "TransferConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def help(cls, name: str) -> str:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}[name]


@dataclass
class CaracallaRoebelConfig(TransferConfig):
    """Attempt 3: random multi-scale CNN, time-summed correlations per frequency (report defaults)."""

    compression: float = _f(1000.0, "log-compression factor C in log(1 + C|X|) / log(1 + C)", min=1e-3, max=1e6, log=True)
    filters: int = _f(32, "random filters per kernel size (the paper used 128)", min=1, max=512)
    kernel_sizes: tuple = _f((3, 5, 7, 11, 15, 19, 23, 27), "kernel sizes of the random convolutions", min=1, max=63)
    layers: int = _f(1, "stacked random conv layers (the report's 'more layers' idea)", min=1, max=3)
    domain: str = _f("spectrogram", "optimise the log-spectrogram (then Griffin-Lim) or the waveform itself",
                     choices=("spectrogram", "waveform"))
    waveform_lr_scale: float = _f(0.01, "in the waveform domain Adam's learning rate is multiplied by "
                                  "this (a sample moves many bins at once)", min=1e-6, max=1.0, log=True)
    net_seed: int = _f(0, "seed of the random network's weights", min=0, max=2**31 - 1)
    fast: bool = _f(True, "use the fast input gradient (False: the plain reference implementation)")

    method = "caracalla-roebel"

    def validate(self) -> "CaracallaRoebelConfig":
        super().validate()
        if any(int(k) != k or k % 2 == 0 for k in self.kernel_sizes):
            raise ConfigError(f"kernel_sizes={list(self.kernel_sizes)}: each must be an odd integer (flag --kernel-sizes)")
        return self


@dataclass
class VGG19Config(TransferConfig):
    """Attempt 1: ImageNet VGG-19 on spectrograms copied to three channels (the report's script)."""

    steps: int = _f(6000, "optimisation steps (the report used 6000 for attempt 1, once 15000)", min=1, max=100000)
    sample_rate: int = _f(22050, "sample rate the clips are loaded at (Hz; librosa's default, as in the report)",
                          min=4000, max=192000)
    n_fft: int = _f(2048, "STFT frame size (samples)", min=16, max=8192)
    hop_length: int = _f(512, "STFT hop size (samples)", min=1, max=8192, cli="hop")
    scale: str = _f("db", "what VGG sees: power in dB (the report) or the log compression", choices=("db", "log"))
    compression: float = _f(1000.0, "log-compression factor C when scale is log", min=1e-3, max=1e6, log=True)
    imagenet_norm: bool = _f(False, "scale the input to [0, 1] and apply ImageNet's mean and std")
    resize_style: bool = _f(True, "resize the style spectrogram in time to the content's (the report's choice)")
    content_layers: tuple = _f(("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"), "VGG layers for the content loss")
    style_layers: tuple = _f(("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"), "VGG layers for the style loss")
    weights: str = _f("auto", "auto (ImageNet, random when offline), random, or a path to vgg19 weights")

    method = "vgg19"


@dataclass
class Wav2Vec2Config(TransferConfig):
    """Attempt 2: the convolutional feature encoder of a Wav2Vec2 music-genre model, on the waveform."""

    steps: int = _f(4000, "optimisation steps (the report ran 4000)", min=1, max=100000)
    content_layers: tuple = _f(tuple(f"conv{i}" for i in range(7)), "encoder layers (conv0-conv6) for the content loss")
    style_layers: tuple = _f(tuple(f"conv{i}" for i in range(7)), "encoder layers (conv0-conv6) for the style loss")
    weights: str = _f("auto", "auto (the Hugging Face model, random when offline), random, or a local model folder")
    model_id: str = _f("dima806/music_genres_classification", "Hugging Face model id of the genre classifier")

    method = "wav2vec2"
