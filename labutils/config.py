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
    duration: float = _f(5.0, "seconds of each clip used, from its offset (a clip shorter than that is used whole, "
                         "and the run says so; never padded)", min=0.1, max=60.0)
    offset: str = _f("0", "where the content clip starts: seconds, or auto for its loudest --duration seconds")
    style_offset: str = _f("0", "where the style clip starts: seconds, or auto for its loudest --duration seconds")
    n_fft: int = _f(512, "STFT frame size (samples)", min=16, max=8192)
    hop_length: int = _f(256, "STFT hop size (samples)", min=1, max=8192, cli="hop")
    griffin_lim_iters: int = _f(100, "Griffin-Lim iterations to turn a spectrogram back into sound", min=1, max=5000)
    device: str = _f("auto", "where to compute: auto picks CUDA when present", choices=("auto", "cpu", "cuda"))

    method = "base"
    #: the shortest clip (seconds) this attempt is run on; a shorter content or style is refused
    min_seconds = 0.5

    def min_clip_seconds(self) -> float:
        """The shortest usable clip: :attr:`min_seconds`, and never less than one STFT frame."""
        return max(float(self.min_seconds), self.n_fft / self.sample_rate)

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
        for name in ("offset", "style_offset"):
            value = str(getattr(self, name)).strip()
            if value.lower() == "auto":
                continue
            try:
                seconds = float(value)
            except ValueError:
                seconds = float("nan")
            if not (math.isfinite(seconds) and seconds >= 0):
                raise ConfigError(f"{name}={value!r}: give seconds from the start (e.g. 12.5) or auto (the loudest "
                                  f"--duration seconds) (flag --{name.replace('_', '-')})")
        if self.duration < self.min_clip_seconds():
            raise ConfigError(f"duration={self.duration:g}: {self.method} needs clips of at least "
                              f"{self.min_clip_seconds():g} s (flag --duration)")
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
    precision: str = _f("auto", "arithmetic of the fast path's convolutions and correlations: fp32; tf32 or bf16 "
                        "(tensor cores on CUDA, FP32 accumulation, loss and signal stay FP32; emulated on the CPU); "
                        "auto = fp32 on the CPU, tf32 on CUDA (until bench/gpu.sh measures bf16 within the 1 % bound)",
                        choices=("auto", "fp32", "tf32", "bf16"))
    # The levers of issue 14 (notebooks/06_exploring_attempt3.ipynb); each default is the report's choice.
    representation: str = _f("stft", "what the network sees: stft log-magnitude (report); ri the compressed real and "
                             "imaginary STFT parts (waveform domain only); mel or cqt log-compressed log-frequency "
                             "bands, where a pitch change is a shift along frequency", choices=("stft", "ri", "mel", "cqt"))
    n_bins: int = _f(128, "bands of the mel or cqt representation (cqt: log-spaced from 32.7 Hz to Nyquist)",
                     min=8, max=1024)
    statistic: str = _f("per-frequency", "style statistic: filter correlations per frequency H(i,j,f) (report); "
                        "frequency-frequency correlations per filter; time-frequency: filter correlations summed over "
                        "time and frequency (shift-invariant along frequency)",
                        choices=("per-frequency", "frequency-frequency", "time-frequency"))
    content_term: str = _f("features", "content loss on: features the random network's maps (report); chroma a "
                           "differentiable chroma map of the content (melody only); none no content loss, alpha ignored, "
                           "start from the content and let the steps be the brake", choices=("features", "chroma", "none"))
    content_kernel_sizes: tuple = _f((), "kernel sizes the content term uses (empty: all of kernel_sizes)", min=1, max=63)
    style_kernel_sizes: tuple = _f((), "kernel sizes the style term uses (empty: all of kernel_sizes)", min=1, max=63)
    content_depths: tuple = _f((), "which stacked layers (1..layers) the content term uses (empty: all)", min=1, max=3)
    style_depths: tuple = _f((), "which stacked layers (1..layers) the style term uses (empty: all)", min=1, max=3)
    # Guided statistics (notebooks/09_guided_statistics.ipynb): none is the whole-clip statistic above.
    guide: str = _f("none", "style statistics of: none the whole clip; notes one per content note, under a soft "
                    "time mask, matched to the style note the sampler would play moved to that note's pitch",
                    choices=("none", "notes"))
    guide_fade: float = _f(0.03, "guide=notes: seconds over which each note's mask fades in before its onset and out "
                           "after its offset (0: a hard box)", min=0.0, max=1.0)
    guide_attack: float = _f(0.0, "guide=notes: split each note into an attack mask (its first seconds) and a sustain "
                             "mask, each matched to the same part of its style note (0: one mask per note)",
                             min=0.0, max=1.0)
    guide_pitch: str = _f("crepe", "guide=notes: pitch tracker of the note finder", choices=("crepe", "pyin"))
    guide_shift: str = _f("resample", "guide=notes: how a style note is moved to the content note's pitch",
                          choices=("resample", "phase-vocoder"))

    method = "caracalla-roebel"

    def __post_init__(self) -> None:
        # the command line and JSON hand these as text or lists; an empty default says nothing of the type
        for name in ("content_kernel_sizes", "style_kernel_sizes", "content_depths", "style_depths"):
            value = getattr(self, name)
            try:
                setattr(self, name, tuple(int(v) for v in value))
            except (TypeError, ValueError):
                raise ConfigError(f"{name}={value!r}: give whole numbers separated by commas, e.g. 3,5 "
                                  f"(flag --{name.replace('_', '-')})") from None

    def validate(self) -> "CaracallaRoebelConfig":
        # the lever tuples may be empty (= all); the shared checks need a value to look at
        filled = {n: getattr(self, n) or (1,) for n in ("content_kernel_sizes", "style_kernel_sizes",
                                                           "content_depths", "style_depths")}
        TransferConfig.validate(dataclasses.replace(self, **filled))
        if any(int(k) != k or k % 2 == 0 for k in self.kernel_sizes):
            raise ConfigError(f"kernel_sizes={list(self.kernel_sizes)}: each must be an odd integer (flag --kernel-sizes)")
        for name in ("content_kernel_sizes", "style_kernel_sizes"):
            extra = [k for k in getattr(self, name) if k not in self.kernel_sizes]
            if extra:
                raise ConfigError(f"{name}={list(getattr(self, name))}: {extra} not among kernel_sizes "
                                  f"{list(self.kernel_sizes)} (flag --{name.replace('_', '-')})")
        for name in ("content_depths", "style_depths"):
            if any(not 1 <= n <= self.layers for n in getattr(self, name)):
                raise ConfigError(f"{name}={list(getattr(self, name))}: each must lie in 1..layers={self.layers} "
                                  f"(flag --{name.replace('_', '-')})")
        if self.representation == "ri" and self.domain != "waveform":
            raise ConfigError("representation=ri needs --domain waveform: an RI spectrogram carries the phase, "
                              "the spectrogram domain optimises magnitudes only")
        if self.content_term == "none" and self.init != "content":
            raise ConfigError("content_term=none needs --init content: the starting point is all the content there is "
                              "(for texture synthesis from noise use --alpha 0)")
        if self.content_term == "none" and self.beta == 0:
            raise ConfigError("content_term=none with beta=0: nothing to optimise; set --beta above 0")
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
    guide: str = _f("none", "style statistics of: none the whole clip; notes one Gram matrix per content note, under "
                    "a soft time mask, matched to the style note the sampler would play moved to that note's pitch",
                    choices=("none", "notes"))
    guide_fade: float = _f(0.03, "guide=notes: seconds over which each note's mask fades in before its onset and out "
                           "after its offset (0: a hard box)", min=0.0, max=1.0)
    guide_attack: float = _f(0.0, "guide=notes: split each note into an attack mask (its first seconds) and a sustain "
                             "mask, each matched to the same part of its style note (0: one mask per note)",
                             min=0.0, max=1.0)
    guide_pitch: str = _f("crepe", "guide=notes: pitch tracker of the note finder", choices=("crepe", "pyin"))
    guide_shift: str = _f("resample", "guide=notes: how a style note is moved to the content note's pitch",
                          choices=("resample", "phase-vocoder"))

    method = "vgg19"


@dataclass
class Wav2Vec2Config(TransferConfig):
    """Attempt 2: the convolutional feature encoder of a Wav2Vec2 music-genre model, on the waveform."""

    steps: int = _f(4000, "optimisation steps (the report ran 4000)", min=1, max=100000)
    content_layers: tuple = _f(tuple(f"conv{i}" for i in range(7)), "encoder layers (conv0-conv6) for the content loss")
    style_layers: tuple = _f(tuple(f"conv{i}" for i in range(7)), "encoder layers (conv0-conv6) for the style loss")
    weights: str = _f("auto", "auto (the Hugging Face model, random when offline), random, or a local model folder")
    model_id: str = _f("dima806/music_genres_classification", "Hugging Face model id of the genre classifier")
    guide: str = _f("none", "style statistics of: none the whole clip; notes one Gram matrix per content note, under "
                    "a soft time mask, matched to the style note the sampler would play moved to that note's pitch",
                    choices=("none", "notes"))
    guide_fade: float = _f(0.03, "guide=notes: seconds over which each note's mask fades in before its onset and out "
                           "after its offset (0: a hard box)", min=0.0, max=1.0)
    guide_attack: float = _f(0.0, "guide=notes: split each note into an attack mask (its first seconds) and a sustain "
                             "mask, each matched to the same part of its style note (0: one mask per note)",
                             min=0.0, max=1.0)
    guide_pitch: str = _f("crepe", "guide=notes: pitch tracker of the note finder", choices=("crepe", "pyin"))
    guide_shift: str = _f("resample", "guide=notes: how a style note is moved to the content note's pitch",
                          choices=("resample", "phase-vocoder"))

    method = "wav2vec2"


_UNUSED = "unused by ddsp"


@dataclass
class DDSPConfig(TransferConfig):
    """Attempt 4: a harmonic-plus-noise synthesiser whose decoder is fitted to the style clip, then
    driven by the content's pitch and loudness (DDSP, Engel et al. 2020; fitted in one shot)."""

    steps: int = _f(300, "fit steps: Adam steps fitting the decoder to the style clip", min=1, max=100000)
    lr: float = _f(0.003, "learning rate of the decoder fit", min=1e-6, max=1.0, log=True)
    alpha: float = _f(1.0, f"{_UNUSED} (the content enters as its pitch and loudness curves)", min=0.0, max=1e6)
    beta: float = _f(1.0, f"{_UNUSED} (the fit has one loss: the style's reconstruction)", min=0.0, max=1e6, log=True)
    init: str = _f("content", f"{_UNUSED} (the decoder starts from seeded random weights)", choices=("content", "noise"))
    seed: int = _f(0, "seed of the decoder's initial weights and of the noise excitation", min=0, max=2**31 - 1)
    griffin_lim_iters: int = _f(100, f"{_UNUSED} (the synthesiser makes the waveform)", min=1, max=5000)
    n_fft: int = _f(2048, "STFT frame size of the spectrograms shown (the loss uses fft_sizes)", min=16, max=8192)
    hop_length: int = _f(512, "STFT hop size of the spectrograms shown", min=1, max=8192, cli="hop")
    harmonics: int = _f(60, "harmonic oscillators (those above Nyquist are silent)", min=1, max=256)
    noise_bands: int = _f(65, "noise filter bands from 0 Hz to Nyquist (the FIR has 2(bands - 1) taps)", min=2, max=1025)
    noise_max: float = _f(0.06, "ceiling of each noise band's magnitude (DDSP uses 2.0; a one-shot fit then "
                          "buries the melody in noise)", min=1e-4, max=10.0, log=True)
    frame_rate: float = _f(100.0, "control frames per second (f0, loudness, decoder outputs)", min=10.0, max=1000.0)
    hidden: int = _f(128, "units per decoder layer", min=4, max=2048)
    layers: int = _f(3, "MLP blocks of the decoder", min=1, max=8)
    gru: bool = _f(False, "add a GRU over time to the decoder (slower; can shape attacks)")
    reverb: bool = _f(False, "learn a reverb impulse response (the style's room) along with the decoder; a one-shot "
                       "fit can hide the style's notes in it (dev split: success 0.29 without, 0.17 with)")
    reverb_seconds: float = _f(0.5, "length of the learned reverb impulse response (s)", min=0.01, max=4.0)
    octave_shift: str = _f("0", "octaves added to the content's pitch; auto: to the style's register (DDSP's "
                           "notebook; the yardstick's answers keep the content's register)",
                           choices=("auto", "-3", "-2", "-1", "0", "1", "2", "3"))
    loudness_shift: float = _f(0.0, "dB added to the content's loudness curve", min=-60.0, max=60.0)
    auto_loudness: bool = _f(True, "move the content's loudness into the style's range before rendering")
    articulation: str = _f("style", "note shapes of the rendered loudness curve: the content's own, or the style's "
                           "typical note (attack, decay or hold) from each content onset",
                           choices=("content", "style"))
    fft_sizes: tuple = _f((2048, 1024, 512, 256, 128, 64), "FFT sizes of the multi-scale spectral loss", min=16, max=16384)
    crop_seconds: float = _f(1.0, "seconds of the style each fit step sees (a seeded random window; 0: the whole "
                             "clip, needed for lbfgs)", min=0.0, max=60.0)
    fmin: float = _f(65.0, "lowest f0 pYIN looks for (Hz)", min=30.0, max=2000.0)
    fmax: float = _f(2093.0, "highest f0 pYIN looks for (Hz)", min=60.0, max=4000.0)

    method = "ddsp"

    def validate(self) -> "DDSPConfig":
        super().validate()
        if self.fmin >= self.fmax:
            raise ConfigError(f"fmin={self.fmin} must be below fmax={self.fmax} (flags --fmin, --fmax)")
        if self.sample_rate / self.frame_rate < 2:
            raise ConfigError(f"frame_rate={self.frame_rate}: at most half the sample rate (flag --frame-rate)")
        if self.optimizer == "lbfgs" and self.crop_seconds > 0:
            raise ConfigError("optimizer=lbfgs needs the same loss at every call: add --crop-seconds 0 (whole clip)")
        return self


_UNUSED_MOSAIC = "unused by mosaic"


@dataclass
class MosaicConfig(TransferConfig):
    """Attempt 6: audio mosaicing (Driedger, Pratzlich and Muller 2015, "Let it Bee"): the content's
    magnitude spectrogram rebuilt as a non-negative mix of the style's own frames (an NMF with the
    templates fixed), the style's complex frames mixed the same way back to sound."""

    steps: int = _f(30, "NMF iterations: KL multiplicative updates of the activations, the constraints between them",
                    min=1, max=10000)
    lr: float = _f(0.1, f"{_UNUSED_MOSAIC} (multiplicative updates have no step size)", min=1e-6, max=100.0, log=True)
    alpha: float = _f(1.0, f"{_UNUSED_MOSAIC} (the one loss is the KL divergence to the content)", min=0.0, max=1e6)
    beta: float = _f(1.0, f"{_UNUSED_MOSAIC} (a beta list gives copies of one result)", min=0.0, max=1e6, log=True)
    optimizer: str = _f("adam", f"{_UNUSED_MOSAIC} (multiplicative updates)", choices=("adam", "lbfgs"))
    init: str = _f("content", "starting activations: content each template's cosine similarity to each content "
                   "frame; noise seeded uniform values (Let it Bee)", choices=("content", "noise"))
    seed: int = _f(0, "seed of the starting activations", min=0, max=2**31 - 1)
    sample_rate: int = _f(22050, "sample rate the clips are loaded at (Hz)", min=4000, max=192000)
    duration: float = _f(30.0, "seconds of each clip used (cost grows with content frames x style frames)",
                         min=0.1, max=60.0)
    n_fft: int = _f(2048, "STFT frame size (samples) of templates, content and resynthesis", min=16, max=8192)
    hop_length: int = _f(512, "STFT hop size (samples)", min=1, max=8192, cli="hop")
    griffin_lim_iters: int = _f(0, "phase iterations after the mosaic, starting from the style's phases "
                                "(0: the style's own phases only)", min=0, max=5000)
    pitch_shifts: tuple = _f((-2, -1, 0, 1, 2), "semitones of the pitch-shifted copies of the style whose frames "
                             "join the templates (0 = the style as it is; on the command line write "
                             "--pitch-shifts=-1,0,1, with '=', as the list starts with '-')", min=-12, max=12)
    repetition: int = _f(3, "repetition constraint: frames either side within which a template keeps only its "
                         "strongest activation (0: off)", min=0, max=1000)
    repetition_strength: float = _f(1.0, "how far the repetition constraint shrinks the other activations by the "
                                    "last iteration (1: to zero)", min=0.0, max=1.0)
    polyphony: int = _f(10, "polyphony constraint: templates kept per content frame (0: off)", min=0, max=10000)
    polyphony_strength: float = _f(1.0, "how far the polyphony constraint shrinks the other activations by the "
                                   "last iteration (1: to zero)", min=0.0, max=1.0)
    continuity: int = _f(3, "continuity constraint: frames either side of the diagonal filter that makes the "
                         "style's frames play in runs (0: off)", min=0, max=1000)
    template_floor_db: float = _f(-60.0, "style frames quieter than this many dB below the loudest are left out "
                                  "of the templates", min=-200.0, max=0.0)
    bands_per_octave: int = _f(36, "the fit compares spectra in bands of 1/N octave (bins summed where a bin is "
                               "narrower; about 4x cheaper at 36); 0: every STFT bin, as Let it Bee", min=0, max=1000)

    method = "mosaic"

    def __post_init__(self) -> None:
        try:
            self.pitch_shifts = tuple(int(v) for v in self.pitch_shifts)
        except (TypeError, ValueError):
            raise ConfigError(f"pitch_shifts={self.pitch_shifts!r}: give whole semitones separated by commas, "
                              "e.g. -2,-1,0,1,2 (flag --pitch-shifts)") from None

    def validate(self) -> "MosaicConfig":
        super().validate()
        if len(set(self.pitch_shifts)) != len(self.pitch_shifts):
            raise ConfigError(f"pitch_shifts={list(self.pitch_shifts)}: each shift once (flag --pitch-shifts)")
        return self


_SAMPLER_UNUSED = "unused by sampler"


@dataclass
class SamplerConfig(TransferConfig):
    """Attempt 5: a one-shot sampler built from the style's own notes. Each content note is played
    by the style note nearest in pitch, moved to the content's pitch (resampling, as a hardware
    sampler and FluidSynth do), fitted to the content note's length and overlap-added at its onset.
    Nothing is optimised: one step places one note."""

    steps: int = _f(1, f"{_SAMPLER_UNUSED}: one step per content note", min=1, max=100000)
    lr: float = _f(0.1, f"{_SAMPLER_UNUSED} (nothing is optimised)", min=1e-6, max=100.0, log=True)
    alpha: float = _f(1.0, f"{_SAMPLER_UNUSED} (the content enters as its notes)", min=0.0, max=1e6)
    beta: float = _f(1.0, f"{_SAMPLER_UNUSED} (the style enters as its notes)", min=0.0, max=1e6, log=True)
    init: str = _f("content", f"{_SAMPLER_UNUSED} (the output starts silent)", choices=("content", "noise"))
    seed: int = _f(0, f"{_SAMPLER_UNUSED} (nothing is random)", min=0, max=2**31 - 1)
    griffin_lim_iters: int = _f(100, f"{_SAMPLER_UNUSED} (notes are played as recorded)", min=1, max=5000)
    n_fft: int = _f(2048, "STFT frame size of the spectrograms shown", min=16, max=8192)
    hop_length: int = _f(512, "STFT hop size of the spectrograms shown", min=1, max=8192, cli="hop")
    pitch: str = _f("crepe", "pitch tracker of the note layer: crepe (torchcrepe, tiny model) or pyin (slower)",
                    choices=("crepe", "pyin"))
    shift: str = _f("resample", "how a style note is moved to the content's pitch: resample (played faster or "
                    "slower, as a sampler does; its length changes) or phase-vocoder (librosa; length kept)",
                    choices=("resample", "phase-vocoder"))
    follow_bends: bool = _f(True, "follow the content's pitch inside each note (bends, vibrato), not just its median")
    flatten: bool = _f(True, "undo each style note's own slow pitch drift (a slur, a wandering note) while resampling; "
                       "its vibrato stays")
    dynamics: str = _f("note", "loudness of each placed note: note (its level follows the content note's peak, its "
                       "shape is the style's), contour (also the content's loudness curve inside the note) or off",
                       choices=("note", "contour", "off"))
    extend: str = _f("auto", "a content note longer than its style note: loop (loop the sustain), ring (let it "
                     "decay on), auto (ring when the style's notes decay, loop when they hold)",
                     choices=("auto", "loop", "ring"))
    decay_db_per_s: float = _f(-6.0, "auto: notes falling faster than this (dB/s) count as decaying (the style's "
                               "for --extend, the content's for --note-length)",
                               min=-1000.0, max=0.0)
    note_length: str = _f("auto", "how long each content note is played: offset (until it falls 25 dB below its "
                          "peak), tail (until it has died away or the next note starts: what a listener hears of a "
                          "struck note), auto (tail when the content's notes decay, offset when they hold)",
                          choices=("auto", "offset", "tail"))
    crossfade: float = _f(0.01, "seconds of fade-in before each onset", min=0.001,
                          max=0.2)
    release_max: float = _f(0.3, "longest release (s) after a note's end: the style note's own tail, cut with a "
                            "fade at most this long", min=0.01, max=2.0)
    loop_points: bool = _f(True, "a looped sustain joins where the waveform matches (loop points moved by up to one "
                           "pitch period to the best correlation), as a sampler's loops are made")
    loop_crossfade: float = _f(0.04, "seconds of each loop's crossfade", min=0.001, max=0.2)
    formant_shift_max: float = _f(-1.0, "the most semitones a style note's resonances move with its pitch when it "
                                  "is resampled; beyond, its spectral envelope stays where the recording had it "
                                  "(24: it always moves, as on a plain sampler; 0: it never does; -1, auto: 0 when "
                                  "the style's notes hold, as a bowed or blown instrument's body does not move with "
                                  "its pitch, 7 when they decay)", min=-1.0, max=48.0)
    tie_semitones: float = _f(0.5, "style notes within this many semitones of the nearest count as ties (then the "
                              "duration decides, then the loudness)", min=0.0, max=12.0)
    isolate: str = _f("auto", "keep only each style note's own partials (a chord's other voices removed): auto "
                      "(when the style is polyphonic), on or off", choices=("auto", "on", "off"))
    check_pitch: int = _f(3, "after placing every note, listen to the result (CREPE) and give a content note "
                          "that sounds off its pitch (under 80 % of its frames within 50 cents) the best of this "
                          "many style notes, each heard alone; 1: no check", min=1, max=12)
    min_style_notes: int = _f(1, "pitched notes the style clip needs; fewer is the error naming the attempts that "
                              "take any texture", min=1, max=1000)

    method = "sampler"
    steps_meaning = "one step per content note"  # what the CLI's first line says instead of "N steps"
