"""Frozen feature extractors behind one interface: ``features(x) -> list[Tensor]``.

* :class:`RandomCNN`: Caracalla and Roebel's random multi-scale CNN on log-spectrograms.
* :class:`VGGFeatures`: ImageNet VGG-19 on spectrograms copied to three channels (attempt 1).
* :class:`Wav2Vec2Features`: the convolutional feature encoder of a Wav2Vec2 genre model (attempt 2).

Each network is frozen (``requires_grad=False``, eval mode) and seeded; none computes a loss.

Notebook: notebooks/03_caracalla_roebel.ipynb
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as Fn

from . import convolve as CV
from . import precision as PR
from .config import CaracallaRoebelConfig
from .errors import ConfigError



def _config_default(name: str):
    """The default of ``CaracallaRoebelConfig.<name>``: the one place attempt 3's defaults live."""
    f = {f.name: f for f in dataclasses.fields(CaracallaRoebelConfig)}[name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


KERNEL_SIZES: tuple[int, ...] = tuple(_config_default("kernel_sizes"))


@dataclass
class WeightsInfo:
    """Which weights a network runs on: recorded in every run's config.json."""

    name: str
    pretrained: bool
    source: str
    note: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "pretrained": self.pretrained, "source": self.source, "note": self.note}


# --------------------------------------------------------------------------------------------
# Random multi-scale CNN (attempt 3)
# --------------------------------------------------------------------------------------------
class RandomCNN(torch.nn.Module):
    """Random multi-scale CNN over (frequency, time), as in Caracalla and Roebel (2019).

    For each kernel size k: ``filters`` 2-D k x k convolutions of the log-spectrogram, ReLU; with
    ``layers`` > 1, further k x k convolutions (``filters`` -> ``filters``) and ReLU stacked on top.
    Weights are drawn from N(0, 1/fan_in) with ``seed`` and frozen; no bias. Defaults are those of
    :class:`labutils.config.CaracallaRoebelConfig` (the report's).

    ``fast=True`` computes the first layer (one channel into many, with its input gradient) by the
    algorithm :mod:`labutils.convolve` chose for each kernel size on this machine and shape
    (``algorithm="auto"``), or by the one named (``"fft"``, ``"direct/rows"``...; see
    :class:`labutils.convolve.Plan`); :attr:`algorithms` tells which ran. ``fast=False`` is the
    straightforward reference (PyTorch's conv2d and autograd), the oracle of the tests.

    ``precision`` (fp32, tf32, bf16, or auto: fp32 on the CPU, tf32 on CUDA; see
    :mod:`labutils.precision`) sets the arithmetic of the fast path's convolutions: on CUDA the
    tensor cores, on the CPU an emulation (operands rounded) for the tests. The feature maps
    are FP32 whatever the precision; ``fast=False`` always computes in FP32.
    :attr:`precision` holds the resolved value.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """

    def __init__(
        self,
        *,
        filters: int = _config_default("filters"),
        kernel_sizes: Sequence[int] = KERNEL_SIZES,
        layers: int = _config_default("layers"),
        seed: int = _config_default("net_seed"),
        fast: bool = _config_default("fast"),
        algorithm: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        precision: str = "fp32",
    ) -> None:
        super().__init__()
        try:
            self.precision = PR.resolve(precision, device) if fast else "fp32"
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if int(filters) != filters or filters < 1:
            raise ConfigError(f"filters={filters}: must be a positive integer (32 in the report, 128 in the paper)")
        sizes = tuple(int(k) for k in kernel_sizes)
        if not sizes or any(k < 1 or k % 2 == 0 for k in sizes):
            raise ConfigError(f"kernel_sizes={list(kernel_sizes)}: must be odd positive integers, e.g. 3,5,7,11,15,19,23,27")
        if int(layers) != layers or not 1 <= layers <= 3:
            raise ConfigError(f"layers={layers}: must be 1, 2 or 3")
        if algorithm != "auto":
            try:
                CV.Plan.parse(algorithm)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        self.filters, self.kernel_sizes, self.layers, self.seed, self.fast = int(filters), sizes, int(layers), seed, fast
        self.algorithm = algorithm
        gen = torch.Generator().manual_seed(int(seed))
        weights = []
        for layer in range(self.layers):
            c_in = 1 if layer == 0 else self.filters
            for k in sizes:
                w = torch.randn(self.filters, c_in, k, k, generator=gen) / math.sqrt(c_in * k * k)
                weights.append(torch.nn.Parameter(w.to(device=device, dtype=dtype), requires_grad=False))
        self.weights = torch.nn.ParameterList(weights)
        self.weights_info = WeightsInfo(name="random-multiscale-cnn", pretrained=False,
                                        source=f"random N(0, 1/fan_in), seed {seed}")
        self._first: dict[int, CV.SingleToMany] = {}  # per kernel-size index, for the shape last seen
        self._by_shape: dict[tuple, tuple[dict, dict]] = {}
        self._shape: tuple | None = None
        self.choice_records: dict[int, dict] = {}
        self.eval()

    @property
    def algorithms(self) -> dict[int, str]:
        """Kernel size -> name of the first layer's algorithm (``"reference"`` when ``fast=False``);
        empty until the first call of :meth:`features` (the choice depends on the input's shape)."""
        if not self.fast:
            return {k: "reference" for k in self.kernel_sizes}
        return {k: self._first[i].plan.name for i, k in enumerate(self.kernel_sizes) if i in self._first}

    def choose_algorithms(self, n_freq: int, n_frames: int, *, batch: int = 1) -> dict[int, str]:
        """Pick (or read from the cache) each kernel size's algorithm for ``(batch, n_freq, n_frames)``
        inputs, as :meth:`features` does on its first call with that shape. Returns :attr:`algorithms`."""
        key = (int(batch), int(n_freq), int(n_frames))
        if not self.fast or self._shape == key:
            return self.algorithms
        if key not in self._by_shape:
            layers, records = {}, {}
            for i, k in enumerate(self.kernel_sizes):
                w = self.weights[i]
                if self.algorithm == "auto":
                    plan, records[k] = CV.choose(w, batch=batch, n_freq=n_freq, n_frames=n_frames,
                                                 precision=self.precision)
                else:
                    plan, records[k] = CV.Plan.parse(self.algorithm), {"source": "asked for"}
                layers[i] = CV.SingleToMany(w, plan, precision=self.precision)
            self._by_shape[key] = (layers, records)
        self._first, self.choice_records = self._by_shape[key]
        self._shape = key
        return self.algorithms

    def features(self, spec: torch.Tensor) -> list[torch.Tensor]:
        """``spec: (B, F, T)`` or ``(F, T)`` log-spectrogram -> features: list of ``(B, C, F, T)``.

        The list holds, for each layer in turn, one tensor per kernel size (``kernel_sizes`` order).
        """
        x = spec.reshape(-1, 1, *spec.shape[-2:])
        if self.fast:
            self.choose_algorithms(x.shape[-2], x.shape[-1], batch=x.shape[0])
        n = len(self.kernel_sizes)
        out: list[torch.Tensor] = []
        previous: list[torch.Tensor] = []
        for layer in range(self.layers):
            current = []
            for i, k in enumerate(self.kernel_sizes):
                w = self.weights[layer * n + i]
                if layer == 0:
                    y = self._first[i](x) if self.fast else Fn.conv2d(x, w, padding=k // 2)
                elif self.fast:
                    y = PR.conv2d(previous[i], w, padding=k // 2, precision=self.precision)
                else:
                    y = Fn.conv2d(previous[i], w, padding=k // 2)
                current.append(torch.relu(y))
            out.extend(current)
            previous = current
        return out

    forward = features

    def flops_per_step(self, n_freq: int, n_frames: int, batch: int = 1) -> float:
        """Multiply-adds x 2 of one forward + input-gradient pass over a ``(F, T)`` spectrogram."""
        total = 0
        for layer in range(self.layers):
            c_in = 1 if layer == 0 else self.filters
            for k in self.kernel_sizes:
                total += 2 * n_freq * n_frames * self.filters * c_in * k * k
        return 2.0 * total * batch


# --------------------------------------------------------------------------------------------
# Pretrained networks, with an honest fallback to random weights when they cannot be had
# --------------------------------------------------------------------------------------------
def _reachable(host: str, timeout: float = 3.0) -> bool:
    """Whether ``host`` answers on port 443: a quick check before a download that would hang."""
    import socket

    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _fallback_note(what: str, reason: str) -> str:
    return (f"{what} weights unavailable ({reason}); using RANDOM weights of the same architecture, "
            f"so the features mean nothing learned. Run once online, or pass weights=PATH to local weights")


def _vgg_layer_names(features: torch.nn.Sequential) -> list[str]:
    names, block, conv, relu = [], 1, 0, 0
    for layer in features:
        if isinstance(layer, torch.nn.Conv2d):
            conv += 1
            names.append(f"conv{block}_{conv}")
        elif isinstance(layer, torch.nn.ReLU):
            relu += 1
            names.append(f"relu{block}_{relu}")
        else:
            names.append(f"pool{block}")
            block, conv, relu = block + 1, 0, 0
    return names


VGG_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGFeatures(torch.nn.Module):
    """VGG-19's convolutional part on a spectrogram copied to three channels (attempt 1).

    ``weights``: ``"auto"`` (torchvision's ``IMAGENET1K_V1`` from torch hub's cache, downloaded
    when online; random weights with a warning when not), ``"random"``, or a path to a state dict
    of torchvision's vgg19. ``layers``: names such as ``conv1_1`` or ``relu4_2``; the network is
    cut after the deepest one. ``imagenet_norm`` applies ImageNet's per-channel mean and std to
    an input scaled to [0, 1] by the caller.

    Notebook: notebooks/01_vgg19.ipynb
    """

    def __init__(self, *, layers: Sequence[str] = VGG_LAYERS, weights: str = "auto", imagenet_norm: bool = False,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        import torchvision

        model, self.weights_info = self._load(weights, torchvision)
        names = _vgg_layer_names(model.features)
        unknown = [n for n in layers if n not in names]
        if unknown or not layers:
            raise ConfigError(f"VGG-19 has no layer {', '.join(unknown) or '(none given)'}; "
                              f"choose from {', '.join(n for n in names if n.startswith('conv'))}")
        self.layer_names = list(layers)
        last = max(names.index(n) for n in layers)
        self.body = model.features[: last + 1].to(device).eval()
        self._index = {n: names.index(n) for n in layers}
        for p in self.body.parameters():
            p.requires_grad_(False)
        for layer in self.body:  # torchvision's ReLUs work in place, which would overwrite conv outputs we keep
            if isinstance(layer, torch.nn.ReLU):
                layer.inplace = False
        self.imagenet_norm = imagenet_norm
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1))

    @staticmethod
    def _load(weights: str, torchvision) -> tuple[torch.nn.Module, WeightsInfo]:
        enum = torchvision.models.VGG19_Weights.IMAGENET1K_V1
        if weights not in ("auto", "random"):
            model = torchvision.models.vgg19(weights=None)
            try:
                state = torch.load(weights, map_location="cpu", weights_only=True)
                model.load_state_dict(state)
            except (OSError, RuntimeError, KeyError) as exc:
                raise ConfigError(f"weights={weights}: cannot load a torchvision vgg19 state dict from it ({exc}); "
                                  "give the path of vgg19-dcbb9e9d.pth or use weights=auto") from None
            return model, WeightsInfo("vgg19", True, f"local file {weights}")
        if weights == "auto":
            import os

            cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(enum.url))
            if os.path.exists(cached) or _reachable("download.pytorch.org"):
                try:
                    return torchvision.models.vgg19(weights=enum), WeightsInfo("vgg19", True, f"torchvision {enum}")
                except (OSError, RuntimeError) as exc:
                    reason = str(exc).splitlines()[0][:120]
            else:
                reason = "offline: download.pytorch.org unreachable and not in torch hub's cache"
            note = _fallback_note("ImageNet VGG-19", reason)
            warnings.warn(note, stacklevel=3)
        else:
            note = "random weights asked for (weights=random)"
        gen_state = torch.random.fork_rng()
        with gen_state:
            torch.manual_seed(0)
            model = torchvision.models.vgg19(weights=None)
        return model, WeightsInfo("vgg19", False, "random (torchvision init, seed 0)", note)

    def features(self, spec: torch.Tensor) -> list[torch.Tensor]:
        """``spec: (B, F, T)`` or ``(F, T)`` -> list of ``(B, C, H, W)``, in ``layer_names`` order."""
        x = spec.reshape(-1, 1, *spec.shape[-2:]).expand(-1, 3, -1, -1)
        if self.imagenet_norm:
            x = (x - self.mean) / self.std
        wanted = {i: n for n, i in self._index.items()}
        found: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.body):
            x = layer(x)
            if i in wanted:
                found[wanted[i]] = x
        return [found[n] for n in self.layer_names]

    forward = features


WAV2VEC2_MODEL = "dima806/music_genres_classification"
WAV2VEC2_RATE = 16000


class Wav2Vec2Features(torch.nn.Module):
    """The 7-layer convolutional feature encoder of a Wav2Vec2 genre classifier (attempt 2).

    ``weights``: ``"auto"`` (``from_pretrained`` of the model id through transformers' cache,
    random weights of the same architecture with a warning when it cannot be had), ``"random"``,
    or a local folder for ``from_pretrained``. Input: a 16 kHz waveform, normalised to zero mean
    and unit variance per clip as the model's feature extractor does. Each layer runs in the
    model's own order (conv, norm on the first layer, GELU); ``layers`` picks which outputs
    (0-6) are returned.

    Notebook: notebooks/02_wav2vec2.ipynb
    """

    def __init__(self, *, layers: Sequence[int] = tuple(range(7)), weights: str = "auto", model_id: str = WAV2VEC2_MODEL,
                 normalise: bool = True, device: torch.device | str | None = None) -> None:
        super().__init__()
        encoder, self.weights_info = self._load(weights, model_id)
        n = len(encoder.conv_layers)
        if not layers or any(int(i) != i or not 0 <= i < n for i in layers):
            raise ConfigError(f"wav2vec2 layers={list(layers)}: choose indices from 0 to {n - 1}")
        self.layer_ids = [int(i) for i in layers]
        self.layer_names = [f"conv{i}" for i in self.layer_ids]
        self.conv_layers = encoder.conv_layers[: max(self.layer_ids) + 1].to(device).eval()
        for p in self.conv_layers.parameters():
            p.requires_grad_(False)
        self.normalise = normalise

    @staticmethod
    def _load(weights: str, model_id: str):
        import os

        from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification
        from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2FeatureEncoder

        if weights != "random":
            source = model_id if weights == "auto" else weights
            offline = bool(os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE"))
            why_offline = ""
            try:
                try:
                    model = Wav2Vec2ForSequenceClassification.from_pretrained(source, local_files_only=True)
                except OSError:
                    if weights == "auto" and offline:
                        why_offline = "offline (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE set) and not in the Hugging Face cache"
                    elif weights == "auto" and not _reachable("huggingface.co"):
                        why_offline = "offline: not in the Hugging Face cache and huggingface.co unreachable"
                    if weights != "auto" or why_offline:
                        raise
                    model = Wav2Vec2ForSequenceClassification.from_pretrained(source)
                return model.wav2vec2.feature_extractor, WeightsInfo(model_id, True, f"transformers {source}")
            except (OSError, ValueError) as exc:
                first_line = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
                if weights != "auto":
                    raise ConfigError(f"weights={weights}: cannot load a Wav2Vec2 model from it "
                                      f"({first_line})") from None
                reason = why_offline or f"loading failed: {type(exc).__name__}: {first_line}"
                note = _fallback_note(f"Wav2Vec2 model {model_id}", reason)
                warnings.warn(note, stacklevel=3)
        else:
            note = "random weights asked for (weights=random)"
        with torch.random.fork_rng():
            torch.manual_seed(0)
            encoder = Wav2Vec2FeatureEncoder(Wav2Vec2Config())  # Wav2Vec2 base: 7 conv layers, 512 channels
        return encoder, WeightsInfo(model_id, False, "random (Wav2Vec2 base architecture, seed 0)", note)

    def features(self, audio: torch.Tensor) -> list[torch.Tensor]:
        """``audio: (B, N)`` or ``(N,)`` at 16 kHz -> list of ``(B, 512, frames)``, one per chosen layer."""
        x = audio.reshape(-1, audio.shape[-1])
        if self.normalise:
            x = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + 1e-7)
        x = x[:, None]
        out = {}
        for i, layer in enumerate(self.conv_layers):
            x = layer(x)
            out[i] = x
        return [out[i] for i in self.layer_ids]

    forward = features
