"""A page to listen to: one self-contained HTML file beside a comparison, benchmark or sweep table.

The summary table comes first (the same numbers as the CSV beside it, to three decimals), then
one row per triple: a player and a small mel spectrogram for the content, the style, the truth,
every attempt and the equaliser, each cell with its scores and its verdict (success marked).
The calibration rows "content copied", "style copied" and "truth" are those clips themselves,
so their scores sit under the content, style and truth players. Audio is embedded as Ogg Vorbis
(libsndfile, through soundfile), spectrograms as PNG, both as ``data:`` URIs: the file can be
mailed or opened from anywhere, with nothing beside it.

Built from what the commands already wrote (wav files and scores), so a finished folder can get
its page again: :func:`comparison_report`, :func:`benchmark_report`, :func:`sweep_report`.

Notebook: notebooks/04_compare.ipynb
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import soundfile as sf

__all__ = ["Cell", "Group", "write_report", "comparison_report", "benchmark_report", "sweep_report",
           "REPORT_NAME", "CELL_KEYS", "encode_audio"]

REPORT_NAME = "report.html"
# scores shown in each cell (those present); the summary table shows every column of its CSV's table
CELL_KEYS = ("success", "success_chroma", "probe_style_prob", "chroma_to_content", "f0_off_50c", "f0_error_cents",
             "note_f1", "logmel_closed_truth", "lsd_to_truth_db", "timbre_gain_truth")
REFERENCE_OF = {"content copied": "content", "style copied": "style", "truth": "truth"}
VORBIS_QUALITY = 0.3  # libsndfile's 0..1 scale; about 40 kbit/s on these clips
SPEC = {"n_fft": 1024, "hop_length": 256, "n_mels": 64, "top_db": 70.0}


@dataclass
class Cell:
    """One player of a group: ``label``, its ``audio`` (a wav path, or None for scores only) and the
    ``scores`` of the rows it stands for (``{row label: {key: value}}``)."""

    label: str
    audio: Path | None
    scores: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class Group:
    """One triple (or one clip pair): a ``title`` and its :class:`Cell` s, in order."""

    title: str
    cells: list[Cell]


def _fmt(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value)):
        return f"{float(value):.3f}"
    return ""


def encode_audio(path: Path, *, quality: float = VORBIS_QUALITY) -> tuple[str, float]:
    """A wav file as an Ogg Vorbis ``data:`` URI and its duration in seconds.

    Notebook: notebooks/04_compare.ipynb
    """
    x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(1)
    buf = io.BytesIO()
    sf.write(buf, x, int(rate), format="OGG", subtype="VORBIS", compression_level=1.0 - quality)
    return "data:audio/ogg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), x.size / rate


def _spectrogram_png(path: Path) -> str:
    """A small mel spectrogram (dB, magma) of a wav file as a PNG ``data:`` URI."""
    import torch
    import torchaudio.functional as AF
    from matplotlib import image

    x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    spec = torch.stft(torch.from_numpy(np.ascontiguousarray(x.mean(1))), SPEC["n_fft"], SPEC["hop_length"],
                      window=torch.hann_window(SPEC["n_fft"]), return_complex=True).abs() ** 2   # (F, T)
    fb = AF.melscale_fbanks(SPEC["n_fft"] // 2 + 1, 0.0, rate / 2, SPEC["n_mels"], int(rate), norm="slaney",
                            mel_scale="slaney")                                                      # (F, M)
    mel = (fb.T @ spec).double().numpy()
    db = 10 * np.log10(np.maximum(mel, 1e-12) / max(mel.max(), 1e-12))
    buf = io.BytesIO()
    image.imsave(buf, db[::-1], cmap="magma", vmin=-SPEC["top_db"], vmax=0.0, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.2em;color:#222}
table{border-collapse:collapse;margin:.6em 0}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
th:first-child,td:first-child{text-align:left}
.group{margin:1.2em 0;border-top:2px solid #888;padding-top:.4em}
.cells{display:flex;flex-wrap:wrap;gap:10px}
.cell{border:1px solid #ddd;border-radius:4px;padding:4px;width:230px;font-size:12px}
.cell.ok{border:2px solid #2a8a2a;background:#f2fbf2}
.cell h4{margin:0 0 2px 0;font-size:13px}
.cell audio{width:222px;height:32px}
.cell img{width:222px;height:64px;display:block;image-rendering:pixelated}
.cell table{margin:2px 0;font-size:11px}
.mark{font-weight:bold}.mark.yes{color:#2a8a2a}.mark.no{color:#a33}
"""


def _scores_table(scores: Mapping[str, Mapping[str, float]], keys: Sequence[str]) -> str:
    out = []
    for row, vals in scores.items():
        shown = [k for k in keys if _fmt(vals.get(k)) != ""]
        mark = ""
        if "success" in vals and _fmt(vals["success"]):
            yes = float(vals["success"]) >= 1.0
            mark = f' <span class="mark {"yes" if yes else "no"}">{"&#10003; success" if yes else "&#10007;"}</span>'
        body = "".join(f'<tr><td>{html.escape(k)}</td><td data-row="{html.escape(row)}" data-key="{html.escape(k)}">'
                       f'{_fmt(vals[k])}</td></tr>' for k in shown)
        out.append(f'<div class="row-scores"><b>{html.escape(row)}</b>{mark}<table>{body}</table></div>')
    return "".join(out)


def write_report(path: str | Path, *, title: str, intro: Sequence[str], summary: Mapping[str, Mapping[str, float]],
                 keys: Sequence[str], groups: Sequence[Group], cell_keys: Sequence[str] = CELL_KEYS,
                 summary_csv: str | None = None) -> Path:
    """Write the page: ``title``, ``intro`` paragraphs (plain text), the ``summary`` table (one row
    per label, one column per key of ``keys`` present), then every :class:`Group` with its players,
    spectrograms and ``cell_keys`` scores. ``summary_csv``: the CSV's file name, linked. Returns the path.

    Notebook: notebooks/04_compare.ipynb
    """
    path = Path(path)
    keys = [k for k in keys if any(k in row for row in summary.values())]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts += [f"<p>{html.escape(p)}</p>" for p in intro]
    if summary_csv:
        parts.append(f'<p>The table below is <a href="{html.escape(summary_csv)}">{html.escape(summary_csv)}</a> '
                     f'to three decimals; a green cell is a success.</p>')
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = "".join(f'<tr><td>{html.escape(label)}</td>' + "".join(
        f'<td data-row="{html.escape(label)}" data-key="{html.escape(k)}">{_fmt(row.get(k))}</td>' for k in keys)
        + "</tr>" for label, row in summary.items())
    parts.append(f'<table id="summary"><tr><th></th>{head}</tr>{rows}</table>')
    for g in groups:
        cells = []
        for c in g.cells:
            ok = any(float(v.get("success", 0.0) or 0.0) >= 1.0 for v in c.scores.values())
            media = ""
            if c.audio is not None and Path(c.audio).is_file():
                uri, seconds = encode_audio(Path(c.audio))
                media = (f'<audio controls preload="metadata" data-seconds="{seconds:.3f}" src="{uri}"></audio>'
                         f'<img loading="lazy" alt="mel spectrogram of {html.escape(c.label)}" src="{_spectrogram_png(Path(c.audio))}">')
            cells.append(f'<div class="cell{" ok" if ok else ""}"><h4>{html.escape(c.label)}</h4>{media}'
                         f'{_scores_table(c.scores, cell_keys)}</div>')
        parts.append(f'<div class="group"><h3>{html.escape(g.title)}</h3><div class="cells">{"".join(cells)}</div></div>')
    parts.append("</body></html>")
    path.write_text("\n".join(parts))
    return path


def _slug(name: str) -> str:
    from .audio import _slug as slug

    return slug(name)


def _group_from_scores(title: str, folder: Path, names: Mapping[str, str], scores: Mapping[str, Mapping[str, float]],
                       wav: Any) -> Group:
    """A triple's cells: content, style, truth (carrying their calibration rows' scores), then the
    other rows (attempts, the equaliser) in their order. ``wav(label) -> Path | None``."""
    cells: list[Cell] = []
    for role in ("content", "style", "truth"):
        if role not in names:
            continue
        own = {row: dict(s) for row, s in scores.items() if REFERENCE_OF.get(row) == role}
        copy = next((row for row, r in REFERENCE_OF.items() if r == role), None)
        cells.append(Cell(label=f"{role}: {names[role]}", audio=wav(role) or (wav(copy) if copy else None), scores=own))
    for row, s in scores.items():
        if row not in REFERENCE_OF:
            cells.append(Cell(label=row, audio=wav(row), scores={row: dict(s)}))
    return Group(title=title, cells=cells)


def comparison_report(folder: str | Path) -> Path:
    """The page of one ``compare`` folder (its metrics.json and wav files) -> ``folder/report.html``.

    Notebook: notebooks/04_compare.ipynb
    """
    from .evaluate import TABLE_KEYS, YARDSTICK_KEYS

    folder = Path(folder)
    data = json.loads((folder / "metrics.json").read_text())
    names, scores = data["names"], data["scores"]

    def wav(label: str) -> Path | None:
        p = folder / f"{_slug(label)}.wav"
        return p if p.is_file() else None

    title = f"content {names['content']}, style {names['style']}" + (f", truth {names['truth']}" if "truth" in names else "")
    keys = YARDSTICK_KEYS if any("success" in s for s in scores.values()) else TABLE_KEYS
    group = _group_from_scores(title, folder, names, scores, wav)
    return write_report(folder / REPORT_NAME, title=f"Comparison: {title}", intro=[], summary=scores,
                        keys=list(keys), groups=[group], summary_csv="metrics.csv")


def benchmark_report(folder: str | Path) -> Path:
    """The page of one ``compare --benchmark`` folder (summary.json, summary.md and every triple's
    compare folder) -> ``folder/report.html``.

    Notebook: notebooks/04_compare.ipynb
    """
    from .evaluate import TABLE_KEYS, YARDSTICK_KEYS

    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text())
    means = summary["means"]
    groups = []
    for i, sub in enumerate(summary.get("folders") or []):
        sub_folder = folder / sub
        data = json.loads((sub_folder / "metrics.json").read_text())
        t = summary["triples"][i] if i < len(summary.get("triples", [])) else {}
        title = f"{i + 1}. {data['names']['content']} + {data['names']['style']} -> {data['names'].get('truth', '?')}"
        if t.get("monophonic") == "False":
            title += " (polyphonic: judged on chroma)"

        def wav(label: str, sub_folder: Path = sub_folder) -> Path | None:
            p = sub_folder / f"{_slug(label)}.wav"
            return p if p.is_file() else None

        groups.append(_group_from_scores(title, sub_folder, data["names"], data["scores"], wav))
    intro = [line for line in (folder / "summary.md").read_text().split("\n\n")
             if line.strip() and not line.lstrip().startswith("|")] if (folder / "summary.md").is_file() else []
    keys = YARDSTICK_KEYS if any("success" in m for m in means.values()) else TABLE_KEYS + ("goal_met",)
    return write_report(folder / REPORT_NAME, title=f"Quality benchmark: split {summary.get('split')}",
                        intro=[line.replace("**", "") for line in intro], summary=means, keys=list(keys),
                        groups=groups, summary_csv="summary.csv")


def sweep_report(folder: str | Path, *, rows: Sequence[Mapping[str, Any]], means: Mapping[str, Mapping[str, float]],
                 calibration: Mapping[str, Mapping[str, float]], keys: Sequence[str]) -> Path:
    """The page of a sweep folder: the summary (cells, then the calibration rows, as in
    summary.csv), then per triple the calibration clips and every cell's result (``rows``: the
    sweep's rows, each with ``kind``, ``label``, ``triple`` and ``audio``, a path relative to
    ``folder``) -> ``folder/report.html``.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    folder = Path(folder)
    summary = {**dict(means), **dict(calibration)}  # labels as in summary.csv (its "kind" column tells them apart)
    by_triple: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_triple.setdefault(r["triple"], []).append(r)
    groups = []
    for triple, rs in sorted(by_triple.items()):
        rs = sorted(rs, key=lambda r: (r.get("kind") != "calibration", r["label"]))
        cells = [Cell(label=r["label"], audio=folder / r["audio"] if r.get("audio") else None,
                      scores={r["label"]: {k: v for k, v in r.items() if isinstance(v, (int, float))}}) for r in rs]
        groups.append(Group(title=triple, cells=cells))
    return write_report(folder / REPORT_NAME, title=f"Sweep: {folder.name}", intro=[], summary=summary, keys=keys,
                        groups=groups, summary_csv="summary.csv")


def read_csv_table(path: str | Path, *, label_column: str = "name") -> dict[str, dict[str, str]]:
    """A table CSV as ``{label: {column: text}}`` (for checking a page against it).

    Notebook: notebooks/04_compare.ipynb
    """
    with open(path, newline="") as fh:
        return {row[label_column]: row for row in csv.DictReader(fh)}
