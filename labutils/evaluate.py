"""Comparisons and the quality benchmark: several attempts on the same pairs, scored, reported.

:func:`compare` runs attempts on one (content, style[, truth]) triple and writes a report
folder; :func:`quality_benchmark` does it over a set of triples and writes mean scores. Not to
be confused with the speed benchmark (:func:`labutils.speed.speed_benchmark`), which times code.

Notebook: notebooks/04_compare.ipynb
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from . import attempts, metrics, plots
from . import audio as A
from . import spectral as S
from . import transfer as T
from .config import TransferConfig
from .errors import LabError
from .runs import DEFAULT_OUT, check_out_dir, load, new_run_dir

METRIC_RATE = 22050  # every clip is scored at this rate, whatever rate its attempt ran at
TABLE_KEYS = ("chroma_to_content", "f0_off_50c", "f0_error_cents", "note_f1", "mfcc_to_style", "mfcc_to_style_content", "mfcc_to_truth",
              "mfcc_to_truth_content", "timbre_gain_truth", "texture_to_style", "texture_to_style_content")
# the yardstick's columns: success first, then melody kept, then timbre moved
YARDSTICK_KEYS = ("success", "success_chroma", "probe_style_prob", "chroma_to_content", "f0_off_50c", "f0_error_cents",
                  "note_f1", "logmel_closed_truth", "lsd_to_truth_db", "timbre_gain_truth")
SPLITS = ("bundled", "dev", "test", "dev-musescore", "test-musescore")  # the last two: through a second soundfont


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
    methods without one get their defaults. A label's method is its config's ``method``. No
    methods and no configs: every registered attempt; ``methods=[]`` without configs: none (the
    calibration rows alone)."""
    configs = dict(configs or {})
    methods = (attempts.names() if methods is None and not configs else list(methods or []))
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
    probe: Any = None,
    instruments: Mapping[str, str] | None = None,
    monophonic: bool = True,
    calibration: bool = True,
    content_notes: list | None = None,
    report: bool = True,
    duration: float | None = None,
) -> Comparison:
    """Run attempts on the same pair, score each with :mod:`labutils.metrics`, write a report folder.

    ``configs`` maps a method or a label (``"caracalla-roebel beta=0.001"``) to its config;
    ``methods`` without a config run at their defaults. ``previous`` maps a label to an earlier
    run folder to read back instead of recomputing. Each result is scored against the content,
    style (and truth) loaded at its own config's duration. The report folder
    (``out_dir/<time>_compare_<content>__<style>/``) holds spectrograms.png, losses.png, every
    clip as wav, and metrics.md / metrics.csv / metrics.json. ``out_dir=None`` writes nothing.

    With ``truth`` and ``calibration``, the four calibration rows of
    :func:`labutils.metrics.calibration_clips` (content copied, style copied, truth, equaliser)
    are scored like results. With ``probe`` (:func:`labutils.probe.load_probe`) and
    ``instruments`` (``{"content": ..., "style": ...}``), every row also gets the probe's scores
    and ``success``; ``monophonic=False`` skips the f0 agreement. ``content_notes`` (the content's
    MIDI score, ``[[onset_s, offset_s, midi, velocity], ...]``) is the reference of the pitch and
    note scores; without it they are measured against the content clip itself. ``report``: also
    write report.html, a page with every clip's player, spectrogram and scores
    (:func:`labutils.report.comparison_report`). ``duration``: the seconds the calibration rows are
    scored at (default: the longest attempt's, 5 s without one).

    Notebook: notebooks/04_compare.ipynb
    """
    runs_to_do = entries(methods, configs)
    instruments = dict(instruments or {})
    score_kw = dict(probe=probe, style_instrument=instruments.get("style"),
                    content_instrument=instruments.get("content"), monophonic=monophonic, content_notes=content_notes)
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
            if result.interrupted:  # Kernel > Interrupt or Ctrl-C: keep the steps done, run no further attempt
                from .runs import keep

                if out_dir is None:
                    raise KeyboardInterrupt(result.message)
                keep(result, out_dir=out_dir)  # saves the partial run, then raises KeyboardInterrupt
            results[label] = result
            audio, rate = result.audio[0], result.sample_rate
        clips[label] = _resampled(audio, rate)
        scores[label] = metrics.score(clips[label], content=ref["content"], style=ref["style"],
                                      truth=ref.get("truth"), sample_rate=METRIC_RATE, **score_kw)
    if truth is not None and calibration:
        ref = references(duration or (max(cfg.duration for cfg in runs_to_do.values()) if runs_to_do else 5.0))
        if not runs_to_do:
            clips.update(ref)  # the clips themselves, as when attempts ran
        for name, audio in metrics.calibration_clips(ref["content"], ref["style"], ref["truth"],
                                                     sample_rate=METRIC_RATE).items():
            clips[name] = torch.as_tensor(audio)
            scores[name] = metrics.score(audio, content=ref["content"], style=ref["style"], truth=ref["truth"],
                                         sample_rate=METRIC_RATE, **score_kw)
    comparison = Comparison(names=names, results=results, scores=scores, clips=clips)
    if out_dir is not None:
        comparison.folder = write_comparison(comparison, out_dir=out_dir)
        if report:
            from . import report as R

            R.comparison_report(comparison.folder)
    return comparison


def metrics_table(scores: dict[str, dict[str, float]], *, keys: tuple[str, ...] = TABLE_KEYS) -> str:
    """A Markdown table, one row per method (or triple), one column per score.

    Notebook: notebooks/04_compare.ipynb
    """
    keys = tuple(k for k in keys if any(k in row for row in scores.values()))
    lines = ["| | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, row in scores.items():
        cells = [f"{row[k]:.3f}" if isinstance(row.get(k), (int, float)) and math.isfinite(row[k]) else ""
                 for k in keys]
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


def load_split(split: str) -> list[dict[str, Any]]:
    """The triples of a split: "bundled" (data/catalog.json) or "dev"/"test"/"dev-musescore"/
    "test-musescore" of the rendered set (the last two: the dev and test triples rendered with the
    MuseScore General soundfont).

    Notebook: notebooks/04_compare.ipynb
    """
    if split not in SPLITS:
        raise LabError(f"split={split!r}: choose one of {', '.join(SPLITS)}")
    if split == "bundled":
        return [{**t, "monophonic": True} for t in A.benchmark_triples()]
    return A.benchmark_set(split)


def _mean(values: list[float]) -> float:
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return float(sum(finite) / len(finite)) if finite else math.nan


def probe_accuracy(probe: Any, triples: list[dict[str, Any]]) -> dict[str, float]:
    """The probe's top-1 accuracy on the split's truth clips and on its content clips.

    Notebook: notebooks/04_compare.ipynb
    """
    truths = {str(t["truth"]): t["style_instrument"] for t in triples}
    contents = {str(t["content"]): t["content_instrument"] for t in triples}
    return {"truth": probe.accuracy(list(truths.items())), "content": probe.accuracy(list(contents.items())),
            "n_truth": len(truths), "n_content": len(contents)}


def verdicts(means: Mapping[str, Mapping[str, float]]) -> list[str]:
    """One sentence per attempt row: does it beat the equaliser (the calibration row)?

    An attempt beats the equaliser when its success rate is higher, or, where no probe scored
    the rows, when it closes more of the log-mel distance to the truth at chroma >= 0.8.

    Notebook: notebooks/04_compare.ipynb
    """
    eq = means.get("equaliser")
    if eq is None:
        return []
    out = []
    for label, row in means.items():
        if label in metrics.CALIBRATION_ROWS:
            continue
        if "success" in row and "success" in eq:
            beats = row["success"] > eq["success"]
            how = f"success {row['success']:.0%} against the equaliser's {eq['success']:.0%}"
        else:
            beats = (row.get("chroma_to_content", 0) >= metrics.SUCCESS_CHROMA
                     and row.get("logmel_closed_truth", -math.inf) > eq.get("logmel_closed_truth", math.inf))
            how = (f"log-mel distance closed {row.get('logmel_closed_truth', math.nan):+.2f} against the "
                   f"equaliser's {eq.get('logmel_closed_truth', math.nan):+.2f}")
        out.append(f"**{label}**: {'beats the equaliser' if beats else 'does not beat the equaliser: it has not transferred timbre'} ({how}).")
    return out


def quality_benchmark(
    *,
    methods: list[str] | None = None,
    configs: Mapping[str, Any] | None = None,
    out_dir: str | Path = DEFAULT_OUT,
    triples: list[dict[str, Any]] | None = None,
    split: str | None = None,
    limit: int | None = None,
    progress: bool = True,
    duration: float | None = None,
) -> tuple[dict[str, dict[str, float]], Path]:
    """The quality benchmark: :func:`compare` on every triple of a split, with calibration rows.

    ``split``: "bundled" (the 12 triples in data/catalog.json, the default), or "dev"/"test"/
    "dev-musescore"/"test-musescore" of the rendered set (`make benchmark-data`), which are scored with the
    instrument probe too; ``limit`` keeps the first N triples. Returns mean scores per row
    (attempts, then the four calibration rows) and the folder holding every triple's report plus
    summary.md / .csv / .json, whose table the README's quality section reproduces, and
    report.html, the page to listen to (:func:`labutils.report.benchmark_report`). ``methods=[]``
    scores the calibration rows alone, at ``duration`` seconds (see :func:`compare`).

    Notebook: notebooks/04_compare.ipynb
    """
    from . import probe as P

    runs_to_do = entries(methods, configs)
    if triples is None:
        triples = load_split(split or "bundled")
    triples = triples[:limit] if limit else triples
    if not triples:
        raise LabError("no benchmark triples; run `make benchmark-data` for the dev and test splits")
    use_probe = all("style_instrument" in t and "content_instrument" in t for t in triples)
    probe = P.load_probe() if use_probe else None
    accuracy = probe_accuracy(probe, triples) if probe is not None else None
    name = split or "custom"
    folder = new_run_dir(out_dir, method="benchmark", content=f"{name}-{len(triples)}triples",
                         style="-".join(sorted({c.method for c in runs_to_do.values()})) or "calibration")
    per_row: dict[str, list[dict[str, float]]] = {}
    folders: list[str] = []
    bar = tqdm(triples, desc=f"{name} triples", disable=not progress)
    for t in bar:
        comp = compare(t["content"], t["style"], truth=t["truth"], methods=[], configs=runs_to_do, out_dir=folder,
                       progress=False, probe=probe, monophonic=t.get("monophonic", True),
                       content_notes=t.get("content_notes"), report=False, duration=duration,
                       instruments={"content": t.get("content_instrument"), "style": t.get("style_instrument")})
        folders.append(comp.folder.name)
        for label, row in comp.scores.items():
            per_row.setdefault(label, []).append({**row, "monophonic": float(t.get("monophonic", True))})
    means = {}
    for label, rows in per_row.items():
        means[label] = {k: _mean([r.get(k, math.nan) for r in rows]) for k in rows[0]}
        means[label]["goal_met"] = float(sum(r.get("timbre_gain_truth", 0) > 0 and r["chroma_to_content"] >= 0.8
                                             for r in rows) / len(rows))
    settings = "; ".join(f"{label}: " + ", ".join(f"{k}={v}" for k, v in _changed(cfg).items())
                         for label, cfg in runs_to_do.items())
    settings = settings or ("calibration rows only, " + (f"duration={duration}" if duration else "5 s") if not runs_to_do
                            else "defaults")
    lines = [f"Split **{name}**: {len(triples)} triples, scored at {METRIC_RATE} Hz. Settings: {settings}."]
    if accuracy is not None:
        lines.append(f"Instrument probe top-1 accuracy: {accuracy['truth']:.0%} on the {accuracy['n_truth']} truth clips, "
                     f"{accuracy['content']:.0%} on the {accuracy['n_content']} content clips.")
    lines += pitch_verdict_lines(per_row)
    lines += monophonic_success_lines(per_row)
    keys = YARDSTICK_KEYS if probe is not None else TABLE_KEYS + ("goal_met",)
    summary = "\n\n".join(lines) + "\n\n" + metrics_table(means, keys=keys) + "\n\n" + "\n".join(
        f"- {v}" for v in verdicts(means)) + "\n"
    (folder / "summary.md").write_text(summary)
    _write_csv(folder / "summary.csv", means)
    (folder / "summary.json").write_text(json.dumps({"split": name, "triples": [{k: str(v) for k, v in t.items()}
                                                                                 for t in triples],
                                                     "probe_accuracy": accuracy, "means": means, "folders": folders,
                                                     "settings": {k: c.as_dict() for k, c in runs_to_do.items()}},
                                                    indent=2, default=str))
    from . import report as R

    R.benchmark_report(folder)
    return means, folder


def pitch_verdict_lines(per_row: Mapping[str, list[Mapping[str, float]]]) -> list[str]:
    """One sentence on the pitch verdict's threshold over a split's monophonic triples: how many the
    truth passes (its worst ``f0_off_50c``) and the style copied (its best). Empty without those rows.

    Notebook: notebooks/04_compare.ipynb
    """
    def values(label: str) -> list[float]:
        return [r["f0_off_50c"] for r in per_row.get(label, ()) if r.get("monophonic", 1.0)
                and math.isfinite(r.get("f0_off_50c", math.nan))]

    truth, style = values("truth"), values("style copied")
    if not truth or not style:
        return []
    limit = metrics.SUCCESS_F0_OFF
    return [f"Pitch verdict (monophonic content: at most {limit:.0%} of the score's voiced frames more than 50 "
            f"cents off): the truth passes on {sum(v <= limit for v in truth)} of {len(truth)} triples (worst "
            f"{max(truth):.3f}), the style copied on {sum(v <= limit for v in style)} of {len(style)} (best "
            f"{min(style):.3f}); polyphonic content is judged on chroma >= {metrics.SUCCESS_CHROMA}. "
            f"success_chroma is the former verdict (chroma >= {metrics.SUCCESS_CHROMA} for every triple)."]


def monophonic_success_lines(per_row: Mapping[str, list[Mapping[str, float]]]) -> list[str]:
    """One sentence: each row's success over the triples whose content is monophonic (where
    success is judged on pitch against the score), when the split also has polyphonic content.

    Notebook: notebooks/04_compare.ipynb
    """
    rows = {label: [r for r in rs if r.get("monophonic", 1.0)] for label, rs in per_row.items()}
    n_all = max((len(rs) for rs in per_row.values()), default=0)
    n_mono = max((len(rs) for rs in rows.values()), default=0)
    if not n_mono or n_mono == n_all or not all("success" in r for rs in rows.values() for r in rs):
        return []
    parts = [f"{label} {_mean([r['success'] for r in rs]):.3f}" for label, rs in rows.items() if rs]
    return [f"Success on the {n_mono} triples with monophonic content: " + ", ".join(parts) + "."]


def _changed(cfg: TransferConfig) -> dict[str, Any]:
    """The fields of ``cfg`` that differ from its class's defaults (for a table's caption)."""
    default = type(cfg)().as_dict()
    return {k: v for k, v in cfg.as_dict().items() if default.get(k) != v and k != "device"}


README_BEGIN = "<!-- quality-table: generated by the command above; do not edit by hand -->"
README_END = "<!-- /quality-table -->"


def readme_markers(block: str | None = None) -> tuple[str, str]:
    """The two marker lines of a generated README block: the test split's (``block=None``) or
    another split's (``block="test-musescore"``).

    Notebook: notebooks/04_compare.ipynb
    """
    if block is None:
        return README_BEGIN, README_END
    return README_BEGIN.replace("quality-table:", f"quality-table {block}:"), README_END.replace(
        "quality-table", f"quality-table {block}")


def write_into_readme(summary_md: str | Path, readme: str | Path, *, block: str | None = None) -> None:
    """Replace the README's generated quality block (between its two markers, see
    :func:`readme_markers`) by ``summary_md``.

    Notebook: notebooks/04_compare.ipynb
    """
    readme = Path(readme)
    text = readme.read_text()
    begin, end = readme_markers(block)
    if begin not in text or end not in text:
        raise LabError(f"{readme}: no generated quality block; add the lines {begin} and {end}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + begin + "\n" + Path(summary_md).read_text().strip() + "\n" + end + tail)
