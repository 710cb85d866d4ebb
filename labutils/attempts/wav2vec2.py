"""Attempt 2: the convolutional feature encoder of a Wav2Vec2 music-genre model, on the waveform.

Notebook: notebooks/02_wav2vec2.ipynb
"""
from __future__ import annotations

from typing import Sequence

import torch

from .. import audio as A
from .. import spectral as S
from ..config import Wav2Vec2Config
from ..errors import ConfigError
from .base import Problem, prepare
from .gram import gram_loss_fn, union


def build(content: torch.Tensor, style: torch.Tensor, cfg: Wav2Vec2Config,
          betas: Sequence[float] | None = None) -> Problem:
    """Set up attempt 2: the Wav2Vec2 genre model's conv encoder on the 16 kHz waveform.

    The clips are resampled to 16 kHz, the 16 kHz waveform is optimised, and the result is
    resampled back to ``cfg.sample_rate``.

    Notebook: notebooks/02_wav2vec2.ipynb
    """
    import torchaudio.functional as AF

    from ..nets import WAV2VEC2_RATE, Wav2Vec2Features

    setup = prepare(content, style, cfg, betas)
    content, device = setup.content, setup.device
    layers = union(cfg.content_layers, cfg.style_layers)
    bad = [n for n in layers if n not in {f"conv{i}" for i in range(7)}]
    if bad:
        raise ConfigError(f"wav2vec2 has no layer {', '.join(bad)}; choose from conv0 ... conv6")
    net = Wav2Vec2Features(layers=[int(n[4:]) for n in layers], weights=cfg.weights, model_id=cfg.model_id,
                           device=device)
    rate = cfg.sample_rate
    with torch.no_grad():
        content16 = AF.resample(content, rate, WAV2VEC2_RATE)
        style16 = AF.resample(setup.style, rate, WAV2VEC2_RATE)
    if content16.shape[-1] < 400:
        raise ConfigError("wav2vec2 needs at least 25 ms of audio at 16 kHz; use a longer --duration")
    guide = None
    if getattr(cfg, "guide", "none") == "notes":
        from .caracalla_roebel import note_guide

        guide = note_guide(content, setup.style, cfg, n_frames=1 + content.shape[-1] // cfg.hop_length)
    loss_fn = gram_loss_fn(net, lambda p: p, content16, style16, cfg, setup.beta, guide=guide,
                           audio_input=lambda a: AF.resample(a, rate, WAV2VEC2_RATE))
    if cfg.init == "content":
        init = content16.expand(setup.batch, -1).clone()
    else:
        init = 0.1 * torch.randn(setup.batch, content16.shape[-1], generator=setup.generator).to(device)

    def decode(p: torch.Tensor) -> torch.Tensor:
        return A.fit_length(AF.resample(p, WAV2VEC2_RATE, rate), content.shape[-1])

    def preview(p: torch.Tensor) -> torch.Tensor:
        return S.log_spectrogram(decode(p), n_fft=cfg.n_fft, hop_length=cfg.hop_length, compression=1000.0)

    return Problem(init=init, loss_fn=loss_fn, decode=decode, preview=preview, lr=cfg.lr,
                   weights=net.weights_info.as_dict(), device=device,
                   info={"guide": guide.summary()} if guide is not None else {})
