"""Comparisons and the quality benchmark: several attempts on the same pairs, scored, reported.

:func:`compare` runs attempts on one (content, style[, truth]) triple and writes a report
folder; :func:`quality_benchmark` does it over a set of triples and writes mean scores. Not to
be confused with the speed benchmark (:func:`labutils.speed.speed_benchmark`), which times code.

Notebook: notebooks/04_compare.ipynb
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from matplotlib.figure import Figure

from . import attempts, metrics, plots
from . import audio as A
from . import spectral as S
from . import transfer as T
from .config import TransferConfig
from .errors import LabError
from .runs import DEFAULT_OUT, check_out_dir, load, new_run_dir

METRIC_RATE = 22050  # every clip is scored at this rate, whatever rate its attempt ran at
TABLE_KEYS = ("chroma_to_content", "mfcc_to_style", "mfcc_to_style_content", "mfcc_to_truth",
              "mfcc_to_truth_content", "timbre_gain_truth", "texture_to_style", "texture_to_style_content")


@dataclass
class Comparison:
    """Results and scores of several attempts on one (content, style[, truth]) triple."""

    names: dict[str, str]
    results: dict[str, Any]
    scores: dict[str, dict[str, float]]
    clips: dict[str, torch.Tensor]
    folder: Path | None = None


def entries(methods: list[str] | None = None, configs: Mapping[str, Any] | None = None) -> dict[str, TransferConfig]:
    """Label -> config for a comparison. ``configs`` maps a method (or any label) to a config;
    methods without one get their defaults. A label's method is its config's ``method``."""
    configs = dict(configs or {})
    methods = methods or ([] if configs else attempts.names())
    out: dict[str, TransferConfig] = {}
    for m in methods:
        if m not in configs:
            out[m] = attempts.get(m).config()
    for label, cfg in configs.items():
        if isinstance(cfg, TransferConfig):
            attempts.get(cfg.method)
            out[label] = cfg
    return out


def _resampled(audio: torch.Tensor, rate: int) -> torch.Tensor:
    import torchaudio.functional as AF

    audio = audio.reshape(-1).float()
    return audio if rate == METRIC_RATE else AF.resample(audio, rate, METRIC_RATE)


def compare(
    content: str | Path,
    style: str | Path,
    *,
    truth: str | Path | None = None,
    methods: list[str] | None = None,
    configs: Mapping[str, Any] | None = None,
    out_dir: str | Path | None = DEFAULT_OUT,
    progress: bool = True,
    previous: Mapping[str, str | Path] | None = None,
) -> Comparison:
    """Run attempts on the same pair, score each with :mod:`labutils.metrics`, write a report folder.

    ``configs`` maps a method or a label (``"caracalla-roebel beta=0.001"``) to its config;
    ``methods`` without a config run at their defaults. ``previous`` maps a label to an earlier
    run folder to read back instead of recomputing. Each result is scored against the content,
    style (and truth) loaded at its own config's duration. The report folder
    (``out_dir/<time>_compare_<content>__<style>/``) holds spectrograms.png, losses.png, every
    clip as wav, and metrics.md / metrics.csv / metrics.json. ``out_dir=None`` writes nothing.

    Notebook: notebooks/04_compare.ipynb
    """
    runs_to_do = entries(methods, configs)
    previous = dict(previous or {})
    if out_dir is not None:
        check_out_dir(out_dir)
    names = {"content": A.resolve(content)[1], "style": A.resolve(style)[1]}
    if truth is not None:
        names["truth"] = A.resolve(truth)[1]
    refs: dict[float, dict[str, torch.Tensor]] = {}

    def references(duration: float) -> dict[str, torch.Tensor]:
        if duration not in refs:
            refs[duration] = {role: A.load(src, sample_rate=METRIC_RATE, duration=duration, pad=False)
                              for role, src in (("content", content), ("style", style), ("truth", truth))
                              if src is not None}
        return refs[duration]

    results, scores = {}, {}
    clips: dict[str, torch.Tensor] = {}
    for label, cfg in runs_to_do.items():
        ref = references(cfg.duration)
        if not clips:
            clips.update(ref)
        if label in previous:
            run = load(previous[label])
            results[label] = run
            audio, rate = run.audio, run.sample_rate
        else:
            result = T.transfer(cfg.method, content, style, cfg, progress=progress)
            results[label] = result
            audio, rate = result.audio[0], result.sample_rate
        clips[label] = _resampled(audio, rate)
        scores[label] = metrics.score(clips[label], content=ref["content"], style=ref["style"],
                                      truth=ref.get("truth"), sample_rate=METRIC_RATE)
    comparison = Comparison(names=names, results=results, scores=scores, clips=clips)
    if out_dir is not None:
        comparison.folder = write_comparison(comparison, out_dir=out_dir)
    return comparison


def metrics_table(scores: dict[str, dict[str, float]], *, keys: tuple[str, ...] = TABLE_KEYS) -> str:
    """A Markdown table, one row per method (or triple), one column per score.

    Notebook: notebooks/04_compare.ipynb
    """
    keys = tuple(k for k in keys if any(k in row for row in scores.values()))
    lines = ["| | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, row in scores.items():
        cells = [f"{row[k]:.3f}" if isinstance(row.get(k), (int, float)) else "" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_comparison(comparison: Comparison, *, out_dir: str | Path = DEFAULT_OUT) -> Path:
    """Write a comparison's report folder and return it."""
    names = comparison.names
    folder = new_run_dir(out_dir, method="compare", content=names["content"], style=names["style"])
    for name, audio in comparison.clips.items():
        A.save(folder / f"{A._slug(name)}.wav", audio, sample_rate=METRIC_RATE)
    specs = {name: S.log_spectrogram(audio, n_fft=1024, hop_length=256, compression=1000.0)
             for name, audio in comparison.clips.items()}
    fig = Figure(figsize=(4.2 * min(len(specs), 3), 2.8 * ((len(specs) + 2) // 3)))
    plots.spectrogram_grid(specs, sample_rate=METRIC_RATE, hop_length=256, columns=3, fig=fig)
    fig.savefig(folder / "spectrograms.png", dpi=80)
    histories = {m: r.history for m, r in comparison.results.items() if r.history}
    if histories:
        fig = Figure(figsize=(6, 3.2), layout="constrained")
        plots.loss_curve(histories, ax=fig.add_subplot(), title="total loss")
        fig.savefig(folder / "losses.png", dpi=80)
    (folder / "metrics.md").write_text(_md_header(comparison) + metrics_table(comparison.scores) + "\n")
    _write_csv(folder / "metrics.csv", comparison.scores)
    (folder / "metrics.json").write_text(json.dumps({"names": names, "scores": comparison.scores}, indent=2))
    return folder


def _md_header(comparison: Comparison) -> str:
    n = comparison.names
    truth = f", truth **{n['truth']}**" if "truth" in n else ""
    return f"Content **{n['content']}**, style **{n['style']}**{truth}. Scored at {METRIC_RATE} Hz.\n\n"


def _write_csv(path: Path, scores: dict[str, dict[str, float]]) -> None:
    keys = sorted({k for row in scores.values() for k in row})
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["name", *keys])
        for name, row in scores.items():
            writer.writerow([name, *(row.get(k, "") for k in keys)])


def quality_benchmark(
    *,
    methods: list[str] | None = None,
    configs: Mapping[str, Any] | None = None,
    out_dir: str | Path = DEFAULT_OUT,
    triples: list[dict[str, str]] | None = None,
    progress: bool = True,
) -> tuple[dict[str, dict[str, float]], Path]:
    """Run :func:`compare` on every benchmark triple; return mean scores per label and the folder
    holding every triple's report plus summary.md/csv/json.

    Notebook: notebooks/04_compare.ipynb
    """
    runs_to_do = entries(methods, configs)
    triples = triples if triples is not None else A.benchmark_triples()
    if not triples:
        raise LabError("no benchmark triples in data/catalog.json")
    folder = new_run_dir(out_dir, method="benchmark", content=f"{len(triples)}triples",
                         style="-".join(sorted({c.method for c in runs_to_do.values()})))
    per_label: dict[str, list[dict[str, float]]] = {m: [] for m in runs_to_do}
    for t in triples:
        comp = compare(t["content"], t["style"], truth=t["truth"], configs=runs_to_do, out_dir=folder,
                       progress=progress)
        for m in runs_to_do:
            per_label[m].append(comp.scores[m])
    means = {}
    for m, rows in per_label.items():
        keys = rows[0].keys()
        means[m] = {k: float(sum(r[k] for r in rows) / len(rows)) for k in keys}
        means[m]["goal_met"] = float(sum(r.get("timbre_gain_truth", 0) > 0 and r["chroma_to_content"] >= 0.8
                                         for r in rows) / len(rows))
    (folder / "summary.md").write_text(f"Mean over {len(triples)} benchmark triples, scored at {METRIC_RATE} Hz.\n\n"
                                       + metrics_table(means, keys=TABLE_KEYS + ("goal_met",)) + "\n")
    _write_csv(folder / "summary.csv", means)
    (folder / "summary.json").write_text(json.dumps({"triples": triples, "means": means}, indent=2))
    return means, folder
