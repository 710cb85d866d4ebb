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
from matplotlib.patches import Rectangle
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


#: a loss below this fraction of the largest one drawn counts as zero in :func:`loss_curve`
LOSS_FLOOR = 1e-6


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

    An empty history draws empty axes with a note; a one-step history draws points. A curve
    starts at its first non-trivial value: a loss that starts at zero (the content loss of a
    run that starts from the content) or at rounding noise below ``LOSS_FLOOR`` times the
    largest loss drawn is left out until it rises, so the axis spans the losses' real range.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
    fig = ax.figure
    runs = history if isinstance(history, Mapping) else {"": history}
    curves = []
    for label, rows in runs.items():
        if not rows:
            continue
        steps = np.array([r["step"] for r in rows], float)
        for key in (keys if len(runs) == 1 else ("total",)):
            if key not in rows[0]:
                continue
            values = np.array([r[key][item] if isinstance(r[key], (list, tuple)) else r[key] for r in rows], float)
            curves.append((f"{label} {key}".strip(), steps, values))
    finite = [v[np.isfinite(v)] for _, _, v in curves]
    top = max((float(v.max()) for v in finite if v.size), default=0.0)
    drawn = False
    for name, steps, values in curves:
        shown = np.where(np.isfinite(values) & (values > top * LOSS_FLOOR) & (values > 0), values, np.nan)
        if np.any(np.isfinite(shown)):
            ax.plot(steps, shown, marker="o" if np.isfinite(shown).sum() == 1 else None, label=name)
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


def melody_timbre_scatter(
    rows: Sequence[Mapping[str, Mapping[str, float]]] | Mapping[str, Mapping[str, float]],
    *,
    x_key: str = "probe_style_prob",
    y_key: str = "chroma_to_content",
    marked: Sequence[str] | None = None,
    threshold: float | None = None,
    xlabel: str = "",
    ylabel: str = "melody kept: chroma to the content",
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """Melody kept (``y_key``) against timbre moved (``x_key``), one point per result.

    ``rows``: one comparison's scores ``{row name: {score: value}}``, or a list of them (one per
    triple of a benchmark); each row name gets one colour. The rows in ``marked`` (default: the
    calibration rows of :data:`labutils.metrics.CALIBRATION_ROWS`) are drawn as large outlined
    stars, the attempts as dots. ``threshold`` (default :data:`labutils.metrics.SUCCESS_CHROMA`)
    draws the melody-kept line a success must reach. Missing or NaN values are left out.

    Notebook: notebooks/04_compare.ipynb
    """
    from .metrics import CALIBRATION_ROWS, SUCCESS_CHROMA

    marked = CALIBRATION_ROWS if marked is None else tuple(marked)
    threshold = SUCCESS_CHROMA if threshold is None else threshold
    tables = [rows] if isinstance(rows, Mapping) else list(rows)
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
    fig = ax.figure
    names: list[str] = []
    for table in tables:
        names += [n for n in table if n not in names]
    for name in [n for n in names if n not in marked] + [n for n in names if n in marked]:
        points = [(t[name].get(x_key, np.nan), t[name].get(y_key, np.nan)) for t in tables if name in t]
        xy = np.array([p for p in points if np.isfinite(p[0]) and np.isfinite(p[1])], float).reshape(-1, 2)
        star = name in marked
        ax.scatter(xy[:, 0], xy[:, 1], marker="*" if star else "o", s=220 if star else 60, alpha=0.85,
                   edgecolors="black" if star else "none", linewidths=0.8, label=name, zorder=3 if star else 2)
    if threshold is not None:
        ax.axhline(threshold, color="0.5", lw=1, ls="--", zorder=1)
        ax.annotate(f"melody kept >= {threshold:g}", xy=(1.0, threshold), xycoords=("axes fraction", "data"),
                    xytext=(-4, 3), textcoords="offset points", ha="right", va="bottom", fontsize=FONT["tick"],
                    color="0.4")
    ax.set_xlabel(xlabel or x_key)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    style_axes(ax)
    if names:
        ax.legend(fontsize=FONT["legend"], loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig


def probability_grid(
    values: Mapping[str, Mapping[str, float]],
    *,
    columns: Sequence[str] | None = None,
    highlight: str | None = None,
    title: str = "",
    label: str = "probability",
    annotate: bool = True,
    ax: Axes | None = None,
) -> Figure:
    """Probabilities as a grid of coloured cells: one row per key of ``values``, one column per
    key of the inner dicts (``columns`` picks and orders them), colour scale 0 to 1 with a colour
    bar, each cell's value written in it (``annotate``), the column ``highlight`` outlined.

    For one comparison: ``{row: probe.predict_proba(clip)}`` (columns = instruments, highlight =
    the style's instrument); for a benchmark: ``{triple: {row: probe_style_prob}}``. Missing or
    NaN cells are blank.

    Notebook: notebooks/04_compare.ipynb
    """
    rows = list(values)
    if columns is None:
        columns = []
        for r in rows:
            columns += [c for c in values[r] if c not in columns]
    columns = list(columns)
    data = np.array([[float(values[r].get(c, np.nan)) for c in columns] for r in rows], float).reshape(len(rows), len(columns))
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(4.5, 0.75 * len(columns) + 3.0), max(2.2, 0.42 * len(rows) + 1.4)),
                               layout="constrained")
    fig = ax.figure
    image = ax.imshow(np.ma.masked_invalid(data), aspect="auto", cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(rows)), rows)
    ax.tick_params(labelsize=FONT["tick"], length=0)
    if annotate:
        for (i, j), v in np.ndenumerate(data):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=FONT["tick"] - 1,
                        color="white" if v > 0.6 else "black")
    if highlight in columns:
        j = columns.index(highlight)
        ax.add_patch(Rectangle((j - 0.5, -0.5), 1, len(rows), fill=False, edgecolor="#d62728", lw=2.5))
    if title:
        ax.set_title(title, fontsize=FONT["title"])
    _colorbar(fig, image, ax, label)
    return fig


def figure_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """A figure's PNG bytes, drawn by the figure's own canvas (no pyplot state), so it works the
    same from a cell and from a widget callback."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def figure_html(fig: Figure, *, css_class: str = "", dpi: int = 100, alt: str = "") -> Any:
    """A figure as an ``<img>`` (embedded PNG, ``class=css_class``) in an IPython HTML object.

    Displays the same from a cell, from a button callback inside an ``Output`` widget, and in a
    saved notebook; the class lets a browser test find the picture.

    Notebook: notebooks/04_compare.ipynb
    """
    from IPython.display import HTML

    src = "data:image/png;base64," + base64.b64encode(figure_png(fig, dpi=dpi)).decode()
    cls = f" class='{html.escape(css_class, quote=True)}'" if css_class else ""
    return HTML(f"<img{cls} alt='{html.escape(alt, quote=True)}' src='{src}' style='max-width:100%;height:auto'>")
