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
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from ..config import TransferConfig
from ..errors import ConfigError
from .base import Problem, Setup, check_betas, prepare

Builder = Callable[[torch.Tensor, torch.Tensor, Any, "Sequence[float] | None"], Problem]


@dataclass(frozen=True)
class Attempt:
    """One attempt: its name, config class, problem builder, notebook and a one-line description."""

    name: str
    config: type[TransferConfig]
    build: Builder
    notebook: str
    description: str


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
from ..config import CaracallaRoebelConfig, VGG19Config, Wav2Vec2Config  # noqa: E402
from . import caracalla_roebel, vgg19, wav2vec2  # noqa: E402

register(Attempt("vgg19", VGG19Config, vgg19.build, "01_vgg19.ipynb",
                 "ImageNet VGG-19 on spectrograms, Gram matrices (the report's attempt 1)"))
register(Attempt("wav2vec2", Wav2Vec2Config, wav2vec2.build, "02_wav2vec2.ipynb",
                 "a Wav2Vec2 genre model's conv encoder on the waveform, Gram matrices (attempt 2)"))
register(Attempt("caracalla-roebel", CaracallaRoebelConfig, caracalla_roebel.build, "03_caracalla_roebel.ipynb",
                 "random multi-scale CNN, time-summed correlations per frequency (attempt 3)"))

from ..config import DDSPConfig  # noqa: E402
from . import ddsp  # noqa: E402

register(Attempt("ddsp", DDSPConfig, ddsp.build, "05_ddsp.ipynb",
                 "harmonic-plus-noise synthesiser fitted to the style, driven by the content's pitch (attempt 4)"))

__all__ = ["ATTEMPTS", "Attempt", "Problem", "Setup", "check_betas", "config_for", "get", "names", "prepare",
           "register", "unregister"]
