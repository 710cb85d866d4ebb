"""Run folders: outputs/<time>_<method>_<content>__<style>/ with result.wav, config.json,
losses.csv and spectrograms.png; listing and reading past runs back.

A folder is created exclusively: an existing one is never overwritten, and two runs started in
the same second get two folders (the second gets a ``-2`` suffix).

Notebook: notebooks/03_caracalla_roebel.ipynb
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from . import audio as A
from . import plots
from .errors import LabError

DEFAULT_OUT = Path("outputs")
FILES = ("result.wav", "config.json", "losses.csv", "spectrograms.png")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on."""
    versions = {"python": platform.python_version()}
    for name in ("labutils", "torch", "torchaudio", "torchvision", "transformers", "librosa", "numpy", "soundfile"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def check_out_dir(out_dir: str | Path) -> Path:
    """Create ``out_dir`` if needed; one clear error if it is a file or cannot be written."""
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise LabError(f"--out {out}: is a file, not a folder; give a folder for run folders (default outputs/)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{dt.datetime.now().strftime('%H%M%S%f')}"
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as exc:
        raise LabError(f"--out {out}: cannot write there ({exc.strerror or exc}); choose a writable folder") from None
    return out


def new_run_dir(out_dir: str | Path, *, method: str, content: str, style: str, tag: str = "") -> Path:
    """Make a fresh run folder under ``out_dir`` and return it; never reuses an existing one."""
    out = check_out_dir(out_dir)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}_{method}_{A._slug(content)}__{A._slug(style)}{tag}"
    for n in range(1, 1000):
        path = out / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise LabError(f"{out}: could not find a free run folder name for {base}; clean up outputs/")


def save(result: Any, *, out_dir: str | Path = DEFAULT_OUT, extra: dict[str, Any] | None = None) -> list[Path]:
    """Write one run folder per generated clip of a :class:`~labutils.transfer.TransferResult`.

    Returns the folders, in batch order. ``extra`` is merged into config.json.
    """
    check_out_dir(out_dir)
    names = result.names or {"content": "content", "style": "style"}
    batch = result.audio.shape[0]
    folders = []
    for b in range(batch):
        tag = "" if batch == 1 else f"_beta{result.betas[b]:g}"
        folder = new_run_dir(out_dir, method=result.method, content=names["content"], style=names["style"], tag=tag)
        A.save(folder / "result.wav", result.audio[b], sample_rate=result.sample_rate)
        config = {**result.config}
        if batch > 1:
            config["beta"] = result.betas[b]
        record = {
            "method": result.method,
            "content": names.get("content"), "style": names.get("style"),
            "content_source": names.get("content_source"), "style_source": names.get("style_source"),
            "config": config,
            "weights": result.weights,
            "device": result.device,
            "seed": config.get("seed"),
            "steps_done": result.steps_done,
            "stopped": result.stopped,
            "message": result.message,
            "wall_time_s": round(result.wall_time, 3),
            "batch": {"size": batch, "index": b, "betas": result.betas},
            "final_loss": result.history[-1] if result.history else None,
            "versions": library_versions(),
            "command": " ".join(sys.argv) if sys.argv and sys.argv[0].endswith("__main__.py") else None,
            "created": dt.datetime.now().isoformat(timespec="seconds"),
            **(extra or {}),
        }
        (folder / "config.json").write_text(json.dumps(record, indent=2, default=str))
        with open(folder / "losses.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["step", "time_s", "total", "content", "style"])
            for row in result.history:
                writer.writerow([row["step"], f"{row['time']:.4f}",
                                 *(f"{row[k][b]:.6g}" for k in ("total", "content", "style"))])
        fig = Figure(figsize=(13, 3.2))
        content_label = "content (unused: alpha = 0)" if result.config.get("alpha") == 0 else "content"
        plots.spectrogram_grid({content_label: result.content_spec[0], "style": result.style_spec[0],
                                "result": result.spectrogram[b]}, sample_rate=result.sample_rate,
                               hop_length=result.config.get("hop_length", 256), fig=fig)
        fig.savefig(folder / "spectrograms.png", dpi=90)
        folders.append(folder)
    return folders


@dataclass
class Run:
    """A run folder read back: its audio, its config.json and its loss history."""

    path: Path
    audio: torch.Tensor
    sample_rate: int
    record: dict[str, Any]
    history: list[dict[str, float]]

    @property
    def method(self) -> str:
        return self.record.get("method", "")


def load(path: str | Path) -> Run:
    """Read a run folder back (result.wav at its own rate, config.json, losses.csv)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise LabError(f"{path}: not a run folder (no config.json); list runs with `python -m labutils runs`")
    record = json.loads((path / "config.json").read_text())
    rate = int(record.get("config", {}).get("sample_rate", A.DEFAULT_SAMPLE_RATE))
    audio = A.load(path / "result.wav", sample_rate=rate, normalise=False)
    history = []
    if (path / "losses.csv").is_file():
        with open(path / "losses.csv") as fh:
            history = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    return Run(path=path, audio=audio, sample_rate=rate, record=record, history=history)


def list_runs(out_dir: str | Path = DEFAULT_OUT) -> list[dict[str, Any]]:
    """Past runs under ``out_dir``, newest first: path, method, content, style, steps, time."""
    out = Path(out_dir)
    rows = []
    for cfg in sorted(out.glob("*/config.json"), reverse=True):
        try:
            rec = json.loads(cfg.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        rows.append({"path": str(cfg.parent), "method": rec.get("method"), "content": rec.get("content"),
                     "style": rec.get("style"), "steps": rec.get("steps_done"),
                     "wall_time_s": rec.get("wall_time_s"), "created": rec.get("created")})
    return rows


# --------------------------------------------------------------------------------------------
# Comparisons: several attempts on one pair, scored, in one report folder
# --------------------------------------------------------------------------------------------
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
    configs: dict[str, Any] | None = None,
    out_dir: str | Path | None = DEFAULT_OUT,
    progress: bool = True,
    previous: dict[str, str | Path] | None = None,
) -> Comparison:
    """Run ``methods`` on the same pair, score each with labutils.metrics, write a report folder.

    ``configs`` maps a method to its config (default: the method's defaults). ``previous`` maps a
    method to an earlier run folder to read back instead of recomputing. The report folder
    (``out_dir/<time>_compare_<content>__<style>/``) holds spectrograms.png, losses.png, every
    clip as wav, and metrics.md / metrics.csv / metrics.json. ``out_dir=None`` writes nothing.

    Notebook: notebooks/04_compare.ipynb
    """
    from . import metrics, transfer
    from .config import config_for

    methods = methods or list(transfer.METHODS)
    configs = configs or {}
    previous = previous or {}
    unknown = [m for m in methods if m not in transfer.METHODS]
    if unknown:
        raise LabError(f"unknown method {', '.join(unknown)}; choose from {', '.join(transfer.METHODS)}")
    if out_dir is not None:
        check_out_dir(out_dir)
    base_cfg = configs.get(methods[0]) or config_for(methods[0])
    duration = base_cfg.duration
    names = {"content": A.resolve(content)[1], "style": A.resolve(style)[1]}
    clips = {"content": A.load(content, sample_rate=METRIC_RATE, duration=duration, pad=False),
             "style": A.load(style, sample_rate=METRIC_RATE, duration=duration, pad=False)}
    if truth is not None:
        names["truth"] = A.resolve(truth)[1]
        clips["truth"] = A.load(truth, sample_rate=METRIC_RATE, duration=duration, pad=False)
    results, scores = {}, {}
    for method in methods:
        if method in previous:
            run = load(previous[method])
            results[method] = run
            audio, rate = run.audio, run.sample_rate
        else:
            cfg = configs.get(method) or config_for(method)
            result = transfer.transfer(method, content, style, cfg, progress=progress)
            results[method] = result
            audio, rate = result.audio[0], result.sample_rate
        clips[method] = _resampled(audio, rate)
        scores[method] = metrics.score(clips[method], content=clips["content"], style=clips["style"],
                                       truth=clips.get("truth"), sample_rate=METRIC_RATE)
    comparison = Comparison(names=names, results=results, scores=scores, clips=clips)
    if out_dir is not None:
        comparison.folder = write_comparison(comparison, out_dir=out_dir)
    return comparison


def metrics_table(scores: dict[str, dict[str, float]], *, keys: tuple[str, ...] = TABLE_KEYS) -> str:
    """A Markdown table, one row per method (or triple), one column per score."""
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
        A.save(folder / f"{name}.wav", audio, sample_rate=METRIC_RATE)
    from . import spectral as S

    specs = {name: S.log_spectrogram(audio, n_fft=1024, hop_length=256, compression=1000.0)
             for name, audio in comparison.clips.items()}
    fig = Figure(figsize=(4.2 * min(len(specs), 3), 2.8 * ((len(specs) + 2) // 3)))
    plots.spectrogram_grid(specs, sample_rate=METRIC_RATE, hop_length=256, columns=3, fig=fig)
    fig.savefig(folder / "spectrograms.png", dpi=80)
    histories = {m: r.history for m, r in comparison.results.items() if r.history}
    if histories:
        fig = Figure(figsize=(6, 3.2))
        plots.loss_curve(histories, ax=fig.add_subplot(), title="total loss")
        fig.tight_layout()
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


def benchmark(
    *,
    methods: list[str] | None = None,
    configs: dict[str, Any] | None = None,
    out_dir: str | Path = DEFAULT_OUT,
    triples: list[dict[str, str]] | None = None,
    progress: bool = True,
) -> tuple[dict[str, dict[str, float]], Path]:
    """Run :func:`compare` on every benchmark triple; return mean scores per method and the folder
    holding every triple's report plus summary.md/csv/json.

    Notebook: notebooks/04_compare.ipynb
    """
    from . import transfer

    methods = methods or list(transfer.METHODS)
    triples = triples if triples is not None else A.benchmark_triples()
    if not triples:
        raise LabError("no benchmark triples in data/catalog.json")
    folder = new_run_dir(out_dir, method="benchmark", content=f"{len(triples)}triples", style="-".join(methods))
    per_method: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    for t in triples:
        comp = compare(t["content"], t["style"], truth=t["truth"], methods=methods, configs=configs,
                       out_dir=folder, progress=progress)
        for m in methods:
            per_method[m].append(comp.scores[m])
    means = {}
    for m, rows in per_method.items():
        keys = rows[0].keys()
        means[m] = {k: float(sum(r[k] for r in rows) / len(rows)) for k in keys}
        means[m]["goal_met"] = float(sum(r.get("timbre_gain_truth", 0) > 0 and r["chroma_to_content"] >= 0.8
                                         for r in rows) / len(rows))
    (folder / "summary.md").write_text(f"Mean over {len(triples)} benchmark triples, scored at {METRIC_RATE} Hz.\n\n"
                                       + metrics_table(means, keys=TABLE_KEYS + ("goal_met",)) + "\n")
    _write_csv(folder / "summary.csv", means)
    (folder / "summary.json").write_text(json.dumps({"triples": triples, "means": means}, indent=2))
    return means, folder
