"""Figures and players: spectrograms, grids, loss curves, audio players side by side.

Every helper takes ``ax=None``, makes a figure only when none is given, and returns the figure.
Figures are drawn to be projected: fonts of at least 10 pt, a few ticks on each axis, a colour
bar on spectrograms, and one colour scale for one quantity: log-compressed spectrograms are
always drawn on ``LOG_SPEC_RANGE`` (0 to 1), whatever the clip, the run or the figure.

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
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

#: the colour scale of every log-compressed spectrogram S = log(1 + C|X|) / log(1 + C)
LOG_SPEC_RANGE: tuple[float, float] = (0.0, 1.0)
#: font sizes in points (a projector needs at least 10)
FONT = {"title": 12, "label": 11, "tick": 10, "legend": 10}


def _np(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x)


def style_axes(ax: Axes, *, max_xticks: int = 6, max_yticks: int = 6) -> Axes:
    """Readable axes at a projector's size: >= 10 pt fonts and few enough ticks not to overlap.

    Notebook: notebooks/00_listening_to_spectrograms.ipynb
    """
    ax.title.set_fontsize(FONT["title"])
    ax.xaxis.label.set_fontsize(FONT["label"])
    ax.yaxis.label.set_fontsize(FONT["label"])
    ax.tick_params(labelsize=FONT["tick"])
    if ax.get_xscale() == "linear":
        ax.xaxis.set_major_locator(MaxNLocator(nbins=max_xticks))
    if ax.get_yscale() == "linear":
        ax.yaxis.set_major_locator(MaxNLocator(nbins=max_yticks))
    return ax


def _colorbar(fig: Figure, image: Any, ax: Any, label: str) -> None:
    bar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    bar.ax.tick_params(labelsize=FONT["tick"])
    if label:
        bar.set_label(label, fontsize=FONT["label"])


def spectrogram(
    spec: Any,
    *,
    sample_rate: int = 44100,
    hop_length: int = 256,
    title: str = "",
    ax: Axes | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "magma",
    colorbar: bool = True,
    label: str = "",
) -> Figure:
    """Show ``spec: (F, T)`` (or ``(1, F, T)``) with time in seconds and frequency in kHz.

    ``colorbar`` (on by default) draws a colour bar labelled ``label``. For log-compressed
    spectrograms pass ``vmin, vmax = LOG_SPEC_RANGE`` so that every picture shares one scale.

    Notebook: notebooks/00_listening_to_spectrograms.ipynb
    """
    data = _np(spec)
    while data.ndim > 2:
        data = data[0]
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
    fig = ax.figure
    seconds = data.shape[1] * hop_length / sample_rate
    image = ax.imshow(data, origin="lower", aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax,
                      extent=(0, seconds, 0, sample_rate / 2000))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (kHz)")
    if title:
        ax.set_title(title)
    style_axes(ax, max_xticks=5)
    if colorbar:
        _colorbar(fig, image, ax, label)
    return fig


def spectrogram_grid(
    specs: Mapping[str, Any],
    *,
    sample_rate: int = 44100,
    hop_length: int = 256,
    columns: int = 3,
    vmin: float | None = LOG_SPEC_RANGE[0],
    vmax: float | None = LOG_SPEC_RANGE[1],
    fig: Figure | None = None,
    colorbar: bool = True,
    label: str = "S (log-compressed)",
    panel_size: tuple[float, float] = (4.6, 3.0),
) -> Figure:
    """Spectrograms side by side on one colour scale with one shared colour bar.

    ``specs``: ``{"content": (F, T), ...}``. The default scale is ``LOG_SPEC_RANGE`` (log-compressed
    spectrograms); ``vmin=None`` / ``vmax=None`` take the smallest / largest value of all panels.

    Notebook: notebooks/00_listening_to_spectrograms.ipynb
    """
    n = len(specs)
    columns = max(1, min(columns, n))
    rows = (n + columns - 1) // columns
    if fig is None:
        fig = plt.figure(figsize=(panel_size[0] * columns + 1.0, panel_size[1] * rows))
    fig.set_layout_engine("constrained")
    if vmax is None:
        vmax = max(float(_np(s).max()) for s in specs.values()) if specs else 1.0
    if vmin is None:
        vmin = min(float(_np(s).min()) for s in specs.values()) if specs else 0.0
    axes, image = [], None
    for i, (name, spec) in enumerate(specs.items()):
        ax = fig.add_subplot(rows, columns, i + 1)
        spectrogram(spec, sample_rate=sample_rate, hop_length=hop_length, title=name, ax=ax, vmin=vmin, vmax=vmax,
                    colorbar=False)
        image = ax.images[-1]
        axes.append(ax)
    if colorbar and image is not None:
        _colorbar(fig, image, axes, label)
    return fig


def loss_curve(
    history: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    ax: Axes | None = None,
    keys: Sequence[str] = ("total", "content", "style"),
    item: int = 0,
    title: str = "",
) -> Figure:
    """Loss against step on a log scale. ``history``: rows with "step" and loss lists (one value
    per batch item, ``item`` picks one), or ``{label: rows}`` for several runs (total only).

    An empty history draws empty axes with a note; a one-step history draws points.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
    fig = ax.figure
    runs = history if isinstance(history, Mapping) else {"": history}
    drawn = False
    for label, rows in runs.items():
        if not rows:
            continue
        steps = [r["step"] for r in rows]
        for key in (keys if len(runs) == 1 else ("total",)):
            if key not in rows[0]:
                continue
            values = np.array([r[key][item] if isinstance(r[key], (list, tuple)) else r[key] for r in rows], float)
            if np.any(values > 0):
                ax.plot(steps, np.maximum(values, 1e-12), marker="o" if len(rows) == 1 else None,
                        label=f"{label} {key}".strip())
                drawn = True
    if drawn:
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no steps yet", ha="center", va="center", transform=ax.transAxes, fontsize=FONT["label"],
                color="0.4")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    style_axes(ax, max_xticks=6)
    if drawn:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=FONT["legend"])
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
