"""Figures and players: spectrograms, grids, loss curves, audio players side by side.

Every helper takes ``ax=None``, makes a figure only when none is given, and returns the figure.

Notebook: notebooks/00_listening_to_spectrograms.ipynb
"""
from __future__ import annotations

import base64
import html
import io
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import soundfile as sf
import torch


def _np(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x)


def spectrogram(
    spec: Any,
    *,
    sample_rate: int = 44100,
    hop_length: int = 256,
    title: str = "",
    ax: plt.Axes | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "magma",
    colorbar: bool = False,
) -> plt.Figure:
    """Show ``spec: (F, T)`` (or ``(1, F, T)``) with time in seconds and frequency in kHz."""
    data = _np(spec)
    while data.ndim > 2:
        data = data[0]
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3))
    fig = ax.figure
    seconds = data.shape[1] * hop_length / sample_rate
    image = ax.imshow(data, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax,
                      extent=(0, seconds, 0, sample_rate / 2000))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (kHz)")
    if title:
        ax.set_title(title)
    if colorbar:
        fig.colorbar(image, ax=ax)
    return fig


def spectrogram_grid(
    specs: Mapping[str, Any],
    *,
    sample_rate: int = 44100,
    hop_length: int = 256,
    columns: int = 3,
    vmin: float | None = 0.0,
    vmax: float | None = None,
    fig: plt.Figure | None = None,
) -> plt.Figure:
    """Spectrograms side by side with one colour scale: ``{"content": (F, T), ...}``."""
    n = len(specs)
    columns = max(1, min(columns, n))
    rows = (n + columns - 1) // columns
    if fig is None:
        fig = plt.figure(figsize=(4.2 * columns, 2.8 * rows))
    if vmax is None:
        vmax = max(float(_np(s).max()) for s in specs.values()) if specs else 1.0
    for i, (name, spec) in enumerate(specs.items()):
        ax = fig.add_subplot(rows, columns, i + 1)
        spectrogram(spec, sample_rate=sample_rate, hop_length=hop_length, title=name, ax=ax, vmin=vmin, vmax=vmax)
    fig.tight_layout()
    return fig


def loss_curve(
    history: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    ax: plt.Axes | None = None,
    keys: Sequence[str] = ("total", "content", "style"),
    item: int = 0,
    title: str = "",
) -> plt.Figure:
    """Loss against step on a log scale. ``history``: rows with "step" and loss lists (one value
    per batch item, ``item`` picks one), or ``{label: rows}`` for several runs (total only)."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3))
    fig = ax.figure
    runs = history if isinstance(history, Mapping) else {"": history}
    for label, rows in runs.items():
        if not rows:
            continue
        steps = [r["step"] for r in rows]
        for key in (keys if len(runs) == 1 else ("total",)):
            values = [r[key][item] if isinstance(r[key], (list, tuple)) else r[key] for r in rows]
            if any(v > 0 for v in values):
                ax.plot(steps, np.maximum(values, 1e-12), label=f"{label} {key}".strip())
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    return fig


def audio_html(audio: Any, *, sample_rate: int, title: str = "") -> str:
    """One ``<audio>`` element (embedded wav) with a caption, as HTML."""
    buffer = io.BytesIO()
    data = _np(audio).reshape(-1)
    peak = float(np.abs(data).max()) if data.size else 0.0
    if peak > 1:
        data = data / peak
    sf.write(buffer, data, int(sample_rate), format="WAV", subtype="PCM_16")
    src = "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode()
    caption = f"<div style='font-size:small'>{html.escape(title)}</div>" if title else ""
    return f"<div style='display:inline-block;margin:4px'>{caption}<audio controls src='{src}'></audio></div>"


def players(clips: Mapping[str, Any], *, sample_rate: int) -> Any:
    """Audio players side by side for ``{"content": (N,), "style": (N,), ...}`` (an IPython HTML)."""
    from IPython.display import HTML

    return HTML("<div>" + "".join(audio_html(a, sample_rate=sample_rate, title=n) for n, a in clips.items()) + "</div>")
