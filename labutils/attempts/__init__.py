"""The attempts registry: every other module learns which attempts exist from :data:`ATTEMPTS`.

An :class:`Attempt` names its config dataclass, the recipe that builds its :class:`Problem`, the
notebook that teaches it and one line saying what it is. Adding an attempt is one module in
this package and one :func:`register` line below; the command line, the panel, the comparison
and the run folders pick it up from here. :func:`get` is the one place an unknown name is
refused.

Notebook: notebooks/04_compare.ipynb
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..config import TransferConfig
from ..errors import ConfigError

if TYPE_CHECKING:  # torch and the recipes load on first use: `python -m labutils --help` needs neither
    import torch

    from .base import Problem, Setup  # noqa: F401

Builder = Callable[["torch.Tensor", "torch.Tensor", Any, "Sequence[float] | None"], "Problem"]


class LazyBuilder:
    """A builder named as ``"module:function"`` (``".vgg19:build"`` within this package), imported
    on its first call, so that listing the attempts and their configs does not import torch."""

    def __init__(self, target: str) -> None:
        module, _, function = target.partition(":")
        if not module or not function:
            raise ConfigError(f"builder {target!r}: write it as 'module:function', e.g. '.vgg19:build'")
        self.target, self._module, self._function = target, module, function
        self._resolved: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        if self._resolved is None:
            module = importlib.import_module(self._module, package=__name__ if self._module.startswith(".") else None)
            self._resolved = getattr(module, self._function)
        return self._resolved

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"LazyBuilder({self.target!r})"


@dataclass(frozen=True)
class Attempt:
    """One attempt: its name, config class, problem builder, notebook and a one-line description.

    ``build`` is the recipe itself or its name as ``"module:function"`` (imported on first use).
    """

    name: str
    config: type[TransferConfig]
    build: Builder
    notebook: str
    description: str

    def __post_init__(self) -> None:
        if isinstance(self.build, str):
            object.__setattr__(self, "build", LazyBuilder(self.build))


def __getattr__(name: str) -> Any:
    # the shared pieces live in .base, which imports torch: loaded when first asked for
    if name in ("Problem", "Setup", "check_betas", "prepare"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


ATTEMPTS: dict[str, Attempt] = {}


def register(attempt: Attempt, *, replace: bool = False) -> Attempt:
    """Add ``attempt`` to :data:`ATTEMPTS` (``replace=True`` to overwrite one of the same name)."""
    if attempt.name in ATTEMPTS and not replace:
        raise ConfigError(f"an attempt named {attempt.name!r} is already registered")
    ATTEMPTS[attempt.name] = attempt
    return attempt


def unregister(name: str) -> None:
    """Remove an attempt (tests register and remove dummy ones)."""
    ATTEMPTS.pop(name, None)


def get(name: str) -> Attempt:
    """The attempt called ``name``; the one place a name that is not registered is refused."""
    try:
        return ATTEMPTS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown method {name!r}; choose one of {', '.join(ATTEMPTS)}") from None


def names() -> list[str]:
    """Every registered attempt's name, in registration order."""
    return list(ATTEMPTS)


def config_for(method: str, **values: Any) -> TransferConfig:
    """The config dataclass of ``method`` with ``values`` set, validated.

    Notebook: notebooks/04_compare.ipynb
    """
    cls = get(method).config
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - fields
    if unknown:
        raise ConfigError(f"{method} has no option {', '.join(sorted(unknown))}; options: {', '.join(sorted(fields))}")
    return cls(**values).validate()


# ---------------------------------------------------------------------------------------------
# The registry: one line per attempt
# ---------------------------------------------------------------------------------------------
# A builder given as "module:function" is imported on first use (keeps `--help` free of torch).
from ..config import CaracallaRoebelConfig, VGG19Config, Wav2Vec2Config  # noqa: E402

register(Attempt("vgg19", VGG19Config, ".vgg19:build", "01_vgg19.ipynb",
                 "ImageNet VGG-19 on spectrograms, Gram matrices (the report's attempt 1)"))
register(Attempt("wav2vec2", Wav2Vec2Config, ".wav2vec2:build", "02_wav2vec2.ipynb",
                 "a Wav2Vec2 genre model's conv encoder on the waveform, Gram matrices (attempt 2)"))
register(Attempt("caracalla-roebel", CaracallaRoebelConfig, ".caracalla_roebel:build", "03_caracalla_roebel.ipynb",
                 "random multi-scale CNN, time-summed correlations per frequency (attempt 3)"))

from ..config import DDSPConfig  # noqa: E402

register(Attempt("ddsp", DDSPConfig, ".ddsp:build", "05_ddsp.ipynb",
                 "harmonic-plus-noise synthesiser fitted to the style, driven by the content's pitch (attempt 4)"))

from ..config import MosaicConfig  # noqa: E402

register(Attempt("mosaic", MosaicConfig, ".mosaic:build", "08_mosaicing.ipynb",
                 "audio mosaicing: the content rebuilt from the style's own frames by a constrained NMF (attempt 6)"))

__all__ = ["ATTEMPTS", "Attempt", "LazyBuilder", "Problem", "Setup", "check_betas", "config_for", "get", "names", "prepare",
           "register", "unregister"]

from ..config import SamplerConfig  # noqa: E402

register(Attempt("sampler", SamplerConfig, ".sampler:build", "07_timbre_lives_in_the_notes.ipynb",
                 "a one-shot sampler: each content note played by the style's nearest note, moved in pitch (attempt 5)"))
