"""Hyperparameter sweeps: a grid of config values run over a yardstick split, every result scored.

A grid is ``{"statistic": ["per-frequency", "time-frequency"], "beta": [0.001, 0.01]}`` (or the
text ``"statistic=per-frequency,time-frequency beta=0.001,0.01"``); each point of its cartesian
product is a *cell*. Every cell runs on every triple (content, style, truth) of the split and
each result is scored with :func:`labutils.metrics.score`. Cells that differ only in beta are
one solve (an attempt takes a list of betas at once). The unit of work, a :class:`Task`, is one
such beta group on one triple, plus one task per triple for the calibration rows (content
copied, style copied, truth, equaliser, when :mod:`labutils.metrics` offers them).

Tasks run through an :class:`Executor`: :class:`InProcess` (default) or :class:`DaskExecutor`
(``dask://HOST:PORT``, a dask.distributed scheduler; each task one Dask task, results gathered
as they finish). The sweep folder (``outputs/sweep_<method>_<hash>/``, the hash of the settings,
the grid and the triples, so the same sweep finds its folder again) holds:

* ``spec.json``: what was asked; ``rows.jsonl``: one line per finished (cell, triple), appended
  as tasks finish, so an interrupted sweep resumes without redoing them;
* ``cells.csv``: one row per cell x triple (and calibration row x triple) with every score;
* ``summary.md`` / ``summary.csv``: per-cell means (success rate, chroma, timbre gain, probe
  probability where present); ``pareto.png``: melody kept against timbre moved;
* ``audio/``: every result at the scoring rate, for listening; ``report.html``: a page with the
  summary and every result's player, spectrogram and scores (:func:`labutils.report.sweep_report`).

Notebook: notebooks/06_exploring_attempt3.ipynb
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import inspect
import itertools
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

import numpy as np
import torch

from . import attempts, metrics
from . import audio as A
from . import transfer as T
from .config import TransferConfig
from .errors import ConfigError, LabError
from .runs import DEFAULT_OUT, check_out_dir

METRIC_RATE = 22050  # as labutils.evaluate: every clip is scored at this rate
MELODY_KEY = "chroma_to_content"
SUMMARY_KEYS = ("success", "success_chroma", "chroma_to_content", "f0_off_50c", "note_f1", "timbre_gain_truth",
                "logmel_closed_truth", "probe_style_prob", "timbre_gain_style", "goal_met", "seconds")
CALIBRATION = "calibration"


# --------------------------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------------------------
def _field_map(method: str) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(attempts.get(method).config)}


def _parse_value(f: dataclasses.Field, text: Any) -> Any:
    """One grid value of field ``f`` from text. Tuples: elements joined by ``/``; ``all`` = empty."""
    if not isinstance(text, str):
        return tuple(text) if isinstance(text, list) else text
    kind = str(f.type)
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text.lower() in ("true", "1", "yes")
        if kind == "tuple":
            if text in ("", "all"):
                return ()
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else ()
            items = [x for x in text.split("/") if x]
            if not default or all(isinstance(v, int) for v in default):
                try:
                    return tuple(int(x) for x in items)
                except ValueError:
                    pass
            return tuple(items)
        return text
    except ValueError:
        raise ConfigError(f"grid: {f.name}={text!r} is not a valid {kind}") from None


def parse_grid(grid: str | Mapping[str, Sequence[Any]], *, method: str = "caracalla-roebel") -> dict[str, list[Any]]:
    """``"field=v1,v2 other=v3"`` (or a dict of lists) -> ``{field: [values]}``, checked against
    ``method``'s config fields. A tuple field's value joins its elements with ``/``
    (``style_kernel_sizes=3/5/7,all``; ``all`` or nothing is the empty tuple).

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    fields = _field_map(method)
    if isinstance(grid, str):
        items: dict[str, list[str]] = {}
        for part in grid.split():
            name, sep, values = part.partition("=")
            if not sep or not name:
                raise ConfigError(f"grid item {part!r}: write field=value1,value2 (e.g. beta=0.001,0.01)")
            items[name.replace("-", "_")] = values.split(",")
        grid = items
    out: dict[str, list[Any]] = {}
    for name, values in grid.items():
        if name not in fields:
            raise ConfigError(f"grid: {method} has no option {name!r}; options: {', '.join(sorted(fields))}")
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        if not values:
            raise ConfigError(f"grid: {name} needs at least one value")
        out[name] = [_parse_value(fields[name], v) for v in values]
    if not out:
        raise ConfigError("grid: give at least one field=value1,value2 item")
    return out


def cells(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every point of the grid's cartesian product (first field slowest), as ``{field: value}``."""
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "/".join(map(str, value)) or "all"
    return f"{value:g}" if isinstance(value, float) else str(value)


def cell_label(values: Mapping[str, Any]) -> str:
    """``"statistic=time-frequency beta=0.01"``: a cell's name in tables and plots."""
    return " ".join(f"{k}={_show(v)}" for k, v in values.items())


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _digest(obj: Any, n: int = 10) -> str:
    return hashlib.sha1(json.dumps(_jsonable(obj), sort_keys=True, default=str).encode()).hexdigest()[:n]


# --------------------------------------------------------------------------------------------
# Triples
# --------------------------------------------------------------------------------------------
def split_triples(split: str | None = "dev", *, limit: int | None = None) -> tuple[list[dict[str, Any]], str]:
    """The triples of a yardstick split and where they came from.

    The rendered benchmark set's ``split`` (:func:`labutils.audio.benchmark_set`) when it is
    there; otherwise the bundled triples (:func:`labutils.audio.benchmark_triples`, no split)
    with a warning. ``limit`` keeps the first n. Paths as strings (they travel to workers).

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    splits = getattr(A, "BENCHMARK_SPLITS", ("dev", "test"))
    if split is not None and split not in splits:
        raise ConfigError(f"--split {split!r}: the benchmark has the splits {', '.join(splits)}")
    source = f"benchmark set, {split} split"
    try:
        if split is None or not hasattr(A, "benchmark_set"):
            raise LabError("no split asked for" if split is None else "this labutils has no rendered benchmark set")
        triples = A.benchmark_set(split)
    except LabError as exc:
        warnings.warn(f"the rendered benchmark set is not there ({exc}); using the bundled triples instead",
                      UserWarning, stacklevel=2)
        triples, source = A.benchmark_triples(), "bundled triples"
    triples = [_jsonable(dict(t)) for t in triples]
    if limit is not None:
        triples = triples[:limit]
    if not triples:
        raise LabError("no triples to sweep over")
    return triples, source


def _triple_id(i: int, triple: Mapping[str, Any]) -> str:
    name = lambda role: triple.get(f"{role}_name") or Path(str(triple[role])).stem  # noqa: E731
    return f"{i:02d}_{name('content')}__{name('style')}"


# --------------------------------------------------------------------------------------------
# Tasks: what one worker does
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    """One unit of work: one beta group of cells (or the calibration rows) on one triple.

    ``config``: the cells' config values (beta excluded); ``betas``: one per cell; ``cells``:
    their ids; ``labels``: their names; ``values``: their grid values. Picklable (Dask ships it).
    """

    method: str
    config: dict[str, Any]
    betas: tuple[float, ...]
    cells: tuple[str, ...]
    labels: tuple[str, ...]
    values: tuple[dict[str, Any], ...]
    triple: dict[str, Any]
    triple_id: str
    kind: str = "cell"


@functools.lru_cache(maxsize=1)
def _probe() -> Any:
    """The yardstick's instrument probe, loaded once per process (None when it cannot be had)."""
    try:
        from . import probe as P

        return P.load_probe()
    except Exception as exc:  # no rendered set, no sklearn, ...: score without the probe
        warnings.warn(f"scoring without the instrument probe: {exc}", UserWarning, stacklevel=2)
        return None


def _score(result: torch.Tensor, refs: Mapping[str, torch.Tensor], triple: Mapping[str, Any]) -> dict[str, float]:
    """metrics.score with whatever the yardstick offers (truth, probe, instruments, monophony)."""
    kw: dict[str, Any] = dict(content=refs["content"], style=refs["style"], truth=refs.get("truth"),
                              sample_rate=METRIC_RATE)
    params = inspect.signature(metrics.score).parameters
    if "probe" in params and triple.get("style_instrument"):
        probe = _probe()
        if probe is not None:
            kw.update(probe=probe, style_instrument=triple["style_instrument"])
            if "content_instrument" in params:
                kw["content_instrument"] = triple.get("content_instrument")
    if "monophonic" in params and "monophonic" in triple:
        kw["monophonic"] = bool(triple["monophonic"])
    if "content_notes" in params and triple.get("content_notes"):
        kw["content_notes"] = triple["content_notes"]   # the score: success on pitch, as compare --benchmark
    return {k: float(v) for k, v in metrics.score(result, **kw).items()}


def _references(triple: Mapping[str, Any], duration: float) -> dict[str, torch.Tensor]:
    return {role: A.load(triple[role], sample_rate=METRIC_RATE, duration=duration, pad=False)
            for role in ("content", "style", "truth") if triple.get(role)}


def run_task(task: Task) -> list[dict[str, Any]]:
    """Run one :class:`Task` and score it: one row per cell (or calibration row) with every score,
    ``seconds`` (solve time per cell) and ``_audio`` (the result at the scoring rate, float32).

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    cfg = attempts.get(task.method).config(**task.config)
    refs = _references(task.triple, cfg.duration)
    rows = []
    if task.kind == CALIBRATION:
        if not hasattr(metrics, "calibration_clips") or "truth" not in refs:
            clips = {"content copied": refs["content"].numpy()}
        else:
            clips = metrics.calibration_clips(refs["content"], refs["style"], refs["truth"], sample_rate=METRIC_RATE)
        for (cell, label), audio in zip(zip(task.cells, task.labels), clips.values()):
            rows.append({"cell": cell, "label": label, "seconds": 0.0, "_audio": np.asarray(audio, np.float32),
                         **_score(torch.as_tensor(audio), refs, task.triple)})
        return rows
    content, style, _ = T.load_pair(task.triple["content"], task.triple["style"], cfg)
    start = time.perf_counter()
    result = T.solve(task.method, content, style, cfg, betas=list(task.betas), progress=False)
    if result.interrupted:  # not recorded as done: a resumed sweep runs this task again
        raise KeyboardInterrupt(f"interrupted after {result.steps_done} steps of a sweep task; resume the sweep "
                                f"to finish it")
    seconds = (time.perf_counter() - start) / len(task.betas)
    import torchaudio.functional as AF

    for i, (cell, label) in enumerate(zip(task.cells, task.labels)):
        audio = result.audio[i].float()
        if result.sample_rate != METRIC_RATE:
            audio = AF.resample(audio, result.sample_rate, METRIC_RATE)
        rows.append({"cell": cell, "label": label, "seconds": seconds, "steps_done": result.steps_done,
                     "_audio": audio.numpy().astype(np.float32), **_score(audio, refs, task.triple)})
    return rows


# --------------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------------
class Executor(Protocol):
    """Runs tasks somewhere; yields ``(index, result)`` as each finishes (any order)."""

    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]: ...

    def close(self) -> None: ...


class InProcess:
    """Run each task here, one after the other (the default executor).

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """

    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        for i, task in enumerate(tasks):
            yield i, fn(task)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "InProcess()"


class DaskExecutor:
    """Run each task as one task on a dask.distributed cluster; gather results as they finish.

    ``address``: ``dask://HOST:PORT`` (or ``tcp://...``, or any address a Client takes), or an
    existing ``client``. Workers need labutils importable and the clips at the same paths.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """

    def __init__(self, address: str | None = None, *, client: Any = None) -> None:
        from distributed import Client

        if client is None and not address:
            raise ConfigError("DaskExecutor needs an address (dask://HOST:PORT) or a client")
        if address and address.startswith("dask://"):
            address = "tcp://" + address[len("dask://"):]
        self._own = client is None
        try:
            self.client = client if client is not None else Client(address, timeout="10s")
        except OSError as exc:
            raise LabError(f"cannot reach the Dask scheduler at {address}: {exc}") from None

    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        if not tasks:
            return
        futures = self.client.map(fn, list(tasks), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for future in as_completed(futures):
                yield index[future.key], future.result()
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        if self._own:
            self.client.close()

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client.scheduler.address})"


def make_executor(spec: str | Executor | None = None) -> Executor:
    """``None``/"local"/"inprocess" -> :class:`InProcess`; ``dask://HOST:PORT`` (or ``tcp://``) ->
    :class:`DaskExecutor`; an executor object is returned as is.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    if spec is None or spec in ("local", "inprocess", "in-process"):
        return InProcess()
    if isinstance(spec, str):
        if spec.startswith(("dask://", "tcp://", "tls://", "inproc://")):
            return DaskExecutor(spec)
        raise ConfigError(f"--executor {spec!r}: give dask://HOST:PORT (a dask.distributed scheduler) or local")
    return spec


# --------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------
@dataclass
class SweepResult:
    """What :func:`sweep` returns: the folder, every row, per-cell means and the timing.

    ``rows``: one dict per (cell or calibration row) x triple (scores, ``label``, ``kind``,
    ``triple``, ``audio`` path); ``means``: label -> mean scores; ``calibration``: the same for
    the calibration rows; ``best``: the label ranked first by :func:`rank`; ``seconds``: wall
    time of this call; ``ran``/``skipped``: tasks run now and found done.
    """

    folder: Path
    rows: list[dict[str, Any]]
    means: dict[str, dict[str, float]]
    calibration: dict[str, dict[str, float]]
    best: str | None
    seconds: float
    ran: int
    skipped: int
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)

    def config_of(self, label: str) -> TransferConfig:
        """The full config of the cell named ``label``."""
        spec = json.loads((self.folder / "spec.json").read_text())
        cls = attempts.get(spec["method"]).config
        return cls(**{**spec["base"], **self.cells[label]}).validate()


def _spec(method: str, base: Mapping[str, Any], grid: Mapping[str, list[Any]], triples: list[dict[str, Any]],
          source: str) -> dict[str, Any]:
    return _jsonable({"method": method, "base": dict(base), "grid": dict(grid), "triples": triples, "source": source})


def _plan(spec: Mapping[str, Any]) -> tuple[list[Task], dict[str, dict[str, Any]]]:
    """The tasks of a sweep spec and label -> grid values of every cell."""
    method = spec["method"]
    fields = _field_map(method)
    base = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["base"].items()}
    grid = {k: [_parse_value(fields[k], v) for v in vs] for k, vs in spec["grid"].items()}
    every = cells(grid)
    for values in every:  # refuse a bad cell before anything runs
        attempts.config_for(method, **{**base, **values})
    groups: dict[str, list[dict[str, Any]]] = {}
    for values in every:
        rest = {k: v for k, v in values.items() if k != "beta"}
        groups.setdefault(_digest(rest), []).append(values)
    tasks: list[Task] = []
    labels = {cell_label(v): v for v in every}
    cal_names = list(getattr(metrics, "CALIBRATION_ROWS", ("content copied",)))
    for i, triple in enumerate(spec["triples"]):
        tid = _triple_id(i, triple)
        if triple.get("truth") and hasattr(metrics, "calibration_clips"):
            names = cal_names
        else:
            names = ["content copied"]
        tasks.append(Task(method=method, config=dict(base), betas=(), cells=tuple(f"cal:{n}" for n in names),
                          labels=tuple(names), values=tuple({} for _ in names), triple=triple, triple_id=tid,
                          kind=CALIBRATION))
        for members in groups.values():
            rest = {k: v for k, v in members[0].items() if k != "beta"}
            betas = tuple(float(v.get("beta", base.get("beta", attempts.get(method).config().beta))) for v in members)
            tasks.append(Task(method=method, config={**base, **rest}, betas=betas,
                              cells=tuple(_digest(v, 8) for v in members), labels=tuple(cell_label(v) for v in members),
                              values=tuple(members), triple=triple, triple_id=tid))
    return tasks, labels


def _done(folder: Path) -> list[dict[str, Any]]:
    path = folder / "rows.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by an interrupt: that task runs again
            continue
    return rows


def _finite_mean(values: list[float]) -> float:
    good = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return float(sum(good) / len(good)) if good else math.nan


def timbre_key(rows: Sequence[Mapping[str, Any]]) -> str:
    """"timbre_gain_truth" when the rows know the right answer, else "timbre_gain_style"."""
    return "timbre_gain_truth" if any("timbre_gain_truth" in r for r in rows) else "timbre_gain_style"


def means_by_label(rows: Sequence[Mapping[str, Any]], *, kind: str = "cell") -> dict[str, dict[str, float]]:
    """Mean of every numeric score per label, over triples; plus ``goal_met`` (the fraction of
    triples with timbre moved > 0 at chroma >= 0.8) and ``triples`` (how many).

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    tk = timbre_key(rows)
    chroma_floor = getattr(metrics, "SUCCESS_CHROMA", 0.8)
    by: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r.get("kind") == kind:
            by.setdefault(r["label"], []).append(r)
    out = {}
    for label, group in by.items():
        keys = [k for k in group[0] if isinstance(group[0][k], (int, float)) and not isinstance(group[0][k], bool)]
        out[label] = {k: _finite_mean([g.get(k) for g in group]) for k in keys}
        out[label]["goal_met"] = float(np.mean([g.get(tk, 0) > 0 and g.get(MELODY_KEY, 0) >= chroma_floor
                                                for g in group]))
        out[label]["triples"] = float(len(group))
    return out


def rank(means: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Labels best first: by success rate when the probe scored them, else by ``goal_met``; ties
    by the timbre moved among results that keep the melody (chroma >= 0.8)."""
    def key(label: str) -> tuple[float, float, float]:
        m = means[label]
        first = m.get("success", m.get("goal_met", 0.0))
        timbre = m.get("timbre_gain_truth", m.get("timbre_gain_style", 0.0))
        kept = m.get(MELODY_KEY, 0.0) >= getattr(metrics, "SUCCESS_CHROMA", 0.8)
        return (-(first if math.isfinite(first) else 0.0), -float(kept), -(timbre if math.isfinite(timbre) else 0.0))

    return sorted(means, key=key)


def summary_table(means: Mapping[str, Mapping[str, float]], calibration: Mapping[str, Mapping[str, float]] | None = None,
                  *, keys: Sequence[str] = SUMMARY_KEYS) -> str:
    """A Markdown table: one row per cell (best first), then the calibration rows in italics.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    rows = {**{label: means[label] for label in rank(means)},
            **{f"*{k}*": v for k, v in (calibration or {}).items()}}
    keys = [k for k in keys if any(k in r for r in rows.values())]
    lines = ["| cell | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for label, r in rows.items():
        cells_ = [f"{r[k]:.3f}" if isinstance(r.get(k), float) and math.isfinite(r[k]) else "" for k in keys]
        lines.append(f"| {label} | " + " | ".join(cells_) + " |")
    return "\n".join(lines)


def axis_table(result: "SweepResult", *, keys: Sequence[str] | None = None) -> str:
    """A Markdown table of each grid axis's values, every score averaged over the cells that have
    that value (and over triples), for grids of more than one axis: which lever moved what.
    ``keys``: default success, chroma, the timbre key, goal_met (those present). Empty text for
    a one-axis grid.

    Notebook: notebooks/09_guided_statistics.ipynb
    """
    spec = json.loads((result.folder / "spec.json").read_text())
    grid = {k: v for k, v in spec["grid"].items() if len(v) > 1}
    if len(grid) < 2 or not result.means:
        return ""
    fields = _field_map(spec["method"])
    keys = list(keys or ("success", MELODY_KEY, timbre_key(result.rows), "goal_met"))
    keys = [k for k in keys if any(k in m for m in result.means.values())]
    lines = ["| axis | value | cells | " + " | ".join(keys) + " |", "|---" * (len(keys) + 3) + "|"]
    for axis, values in grid.items():
        for v in (_parse_value(fields[axis], x) for x in values):
            members = [m for label, m in result.means.items() if result.cells.get(label, {}).get(axis) == v]
            means = [_finite_mean([m.get(k) for m in members]) for k in keys]
            lines.append(f"| {axis} | {_show(v)} | {len(members)} | " + " | ".join(f"{x:.3f}" for x in means) + " |")
    return "\n".join(lines)


def pareto_front(points: Mapping[str, tuple[float, float]]) -> list[str]:
    """Labels not dominated in (timbre moved, melody kept), both higher-better, by timbre."""
    front = [a for a, (x, y) in points.items()
             if not any((x2 >= x and y2 >= y) and (x2 > x or y2 > y) for b, (x2, y2) in points.items() if b != a)]
    return sorted(front, key=lambda label: points[label][0])


def benchmark_rows(folder: str | Path, *, methods: Sequence[str] | None = None,
                   suffix: str | None = None) -> dict[str, dict[str, float]]:
    """The method rows of a quality-benchmark folder (``python -m labutils compare --benchmark``),
    for :func:`pareto_plot`'s ``extra``: its ``summary.json`` means (or, without it, its
    ``summary.csv``), calibration rows left out, ``methods`` kept (None: all). Each label gets
    ``suffix`` (default: " (benchmark, <split>, <n> triples)" from summary.json) so that a row run
    elsewhere is not mistaken for a cell. Clear error when the folder holds neither file.

    Notebook: notebooks/09_guided_statistics.ipynb
    """
    folder = Path(folder)
    calibration_names = set(metrics.CALIBRATION_ROWS)
    split, n_triples = None, None
    if (folder / "summary.json").is_file():
        summary = json.loads((folder / "summary.json").read_text())
        table = summary.get("means", {})
        split, n_triples = summary.get("split"), len(summary.get("triples", []))
    elif (folder / "summary.csv").is_file():
        table = {}
        with open(folder / "summary.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                name = row.pop("name", None) or row.pop("label", None)
                if name is None or row.get("kind", "cell") == CALIBRATION:
                    continue
                table[name] = {k: float(v) for k, v in row.items() if k != "kind" and v not in ("", None)
                               and _is_number(v)}
    else:
        raise LabError(f"{folder}: not a benchmark folder (no summary.json or summary.csv); run "
                       f"`python -m labutils compare --benchmark ...` first")
    if suffix is None:
        where = ", ".join(x for x in (split, f"{n_triples} triples" if n_triples else None) if x)
        suffix = f" (benchmark{', ' + where if where else ''})"
    out = {}
    for name, row in table.items():
        if name in calibration_names or (methods is not None and name not in methods):
            continue
        out[f"{name}{suffix}"] = {k: float(v) for k, v in row.items() if isinstance(v, (int, float))}
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def find_benchmark(contains: str, *, out_dir: str | Path = DEFAULT_OUT) -> Path | None:
    """The newest folder directly under ``out_dir`` whose name contains ``contains`` and that holds
    a ``summary.json`` or ``summary.csv`` (a finished benchmark), else None. Folder names start with
    their time stamp, so the newest is the last in name order.

    Notebook: notebooks/09_guided_statistics.ipynb
    """
    root = Path(out_dir)
    if not root.is_dir():
        return None
    found = sorted(d for d in root.iterdir() if d.is_dir() and contains in d.name
                   and ((d / "summary.json").is_file() or (d / "summary.csv").is_file()))
    return found[-1] if found else None


def pareto_plot(means: Mapping[str, Mapping[str, float]], calibration: Mapping[str, Mapping[str, float]] | None = None,
                *, timbre: str = "timbre_gain_truth", ax: Any = None,
                extra: Mapping[str, Mapping[str, float]] | None = None) -> Any:
    """Melody kept (chroma) against timbre moved, one point per cell, the Pareto front joined
    and named (every cell named when there are at most six), the calibration rows as labelled
    stars (or the untouched content when there are none), and ``extra`` rows (other methods'
    means, e.g. :func:`benchmark_rows`) as labelled diamonds. Returns the matplotlib Figure.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    Notebook: notebooks/09_guided_statistics.ipynb
    """
    from matplotlib.figure import Figure

    fig = ax.figure if ax is not None else Figure(figsize=(7, 4.8), layout="constrained")
    ax = ax if ax is not None else fig.add_subplot()
    points = {k: (m.get(timbre, math.nan), m.get(MELODY_KEY, math.nan)) for k, m in means.items()}
    points = {k: p for k, p in points.items() if all(math.isfinite(v) for v in p)}
    if points:
        xs, ys = zip(*points.values())
        ax.scatter(xs, ys, s=28, color="tab:blue", label="cells", zorder=3)
        front = pareto_front(points)
        ax.plot([points[k][0] for k in front], [points[k][1] for k in front], color="tab:blue", lw=1, alpha=0.6,
                label="Pareto front")
        for k in (points if len(points) <= 6 else front):  # a few cells: name each one
            ax.annotate(k, points[k], fontsize=7, xytext=(4, 3), textcoords="offset points")
    cal = dict(calibration or {}) or {"content copied": {timbre: 0.0, MELODY_KEY: 1.0}}
    for name, m in cal.items():
        x, y = m.get(timbre, math.nan), m.get(MELODY_KEY, math.nan)
        if math.isfinite(x) and math.isfinite(y):
            ax.scatter([x], [y], marker="*", s=120, color="tab:red", zorder=4)
            ax.annotate(name, (x, y), fontsize=8, color="tab:red", xytext=(4, -10), textcoords="offset points")
    shown = False
    for name, m in (extra or {}).items():
        x, y = m.get(timbre, math.nan), m.get(MELODY_KEY, math.nan)
        if math.isfinite(x) and math.isfinite(y):
            ax.scatter([x], [y], marker="D", s=50, color="tab:green", zorder=4,
                       label=None if shown else "other methods")
            ax.annotate(name, (x, y), fontsize=8, color="tab:green", xytext=(4, 4), textcoords="offset points")
            shown = True
    floor = getattr(metrics, "SUCCESS_CHROMA", 0.8)
    ax.axhline(floor, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"timbre moved ({timbre}, mean)")
    ax.set_ylabel(f"melody kept ({MELODY_KEY}, mean)")
    ax.set_title("sweep: melody kept against timbre moved")
    ax.legend(fontsize=8, loc="lower left")
    return fig


def _write_reports(folder: Path, rows: list[dict[str, Any]], means: dict, calibration: dict, spec: Mapping,
                   extra: Mapping[str, Mapping[str, float]] | None = None) -> None:
    keys = ["kind", "label", "triple", "cell"] + sorted({k for r in rows for k in r} - {"kind", "label", "triple", "cell"})
    with open(folder / "cells.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(keys)
        for r in sorted(rows, key=lambda r: (r["kind"] != CALIBRATION, r["label"], r["triple"])):
            writer.writerow([r.get(k, "") for k in keys])
    grid_text = " ".join(k + "=" + ",".join(map(_show, v)) for k, v in spec["grid"].items())
    header = (f"Sweep of {spec['method']} over {len(spec['triples'])} triples ({spec['source']}); "
              f"grid `{grid_text}`; scored at {METRIC_RATE} Hz. Cells best first; calibration rows in italics.\n\n")
    (folder / "summary.md").write_text(header + summary_table(means, calibration) + "\n")
    all_keys = sorted({k for m in [*means.values(), *calibration.values()] for k in m})
    with open(folder / "summary.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["kind", "label", *all_keys])
        for kind, table in (("cell", means), (CALIBRATION, calibration)):
            for label, m in table.items():
                writer.writerow([kind, label, *(m.get(k, "") for k in all_keys)])
    fig = pareto_plot(means, calibration, timbre=timbre_key(rows), extra=extra)
    fig.savefig(folder / "pareto.png", dpi=90)
    from . import report

    report.sweep_report(folder, rows=rows, means=means, calibration=calibration, keys=SUMMARY_KEYS)


def sweep(
    grid: str | Mapping[str, Sequence[Any]],
    *,
    method: str = "caracalla-roebel",
    base: Mapping[str, Any] | TransferConfig | None = None,
    split: str | None = "dev",
    triples: Sequence[Mapping[str, Any]] | None = None,
    limit: int | None = None,
    source: str | None = None,
    out_dir: str | Path = DEFAULT_OUT,
    resume: str | Path | None = None,
    executor: str | Executor | None = None,
    progress: bool = True,
    compare_with: Sequence[str | Path] = (),
) -> SweepResult:
    """Run every cell of ``grid`` on every triple, score each result, write the sweep folder.

    ``base``: the config values every cell starts from (a dict or a config; the grid overrides
    them); ``triples`` (named ``source`` in the reports; else the ``split``'s:
    :func:`split_triples`; ``limit`` keeps the first n);
    ``resume``: a sweep folder to finish (its spec.json wins; ``grid`` and the rest are then
    ignored). Without it the folder is ``out_dir/sweep_<method>_<hash>``, the hash of what was
    asked, so running the same sweep again also resumes it. Finished (cell, triple) rows are never
    rerun. ``executor``: see :func:`make_executor`. Progress: a tqdm bar over cells x triples.
    ``compare_with``: quality-benchmark folders whose method rows :func:`pareto_plot` draws beside
    the cells (:func:`benchmark_rows`; the plot only, not the spec: resuming a finished sweep
    with them redraws its plot and runs nothing).

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    start = time.perf_counter()
    extra: dict[str, dict[str, float]] = {}
    for other in compare_with:  # read before anything runs: a bad folder fails at once
        extra.update(benchmark_rows(other))
    if resume is not None:
        folder = Path(resume)
        if not (folder / "spec.json").is_file():
            raise LabError(f"{folder}: not a sweep folder (no spec.json)")
        spec = json.loads((folder / "spec.json").read_text())
    else:
        attempts.get(method)
        parsed = parse_grid(grid, method=method)
        if isinstance(base, TransferConfig):
            base = {k: v for k, v in base.as_dict().items() if k != "method"}
        base = dict(base or {})
        unknown = set(base) - set(_field_map(method))
        if unknown:
            raise ConfigError(f"{method} has no option {', '.join(sorted(unknown))}")
        if triples is not None:
            chosen, source = [_jsonable(dict(t)) for t in triples][:limit], source or "given triples"
        else:
            chosen, source = split_triples(split, limit=limit)
        spec = _spec(method, base, parsed, chosen, source)
        check_out_dir(out_dir)
        folder = Path(out_dir) / f"sweep_{method}_{_digest(spec)}"
    tasks, labels = _plan(spec)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "audio").mkdir(exist_ok=True)
    if not (folder / "spec.json").is_file():
        (folder / "spec.json").write_text(json.dumps(spec, indent=2))
    done_rows = _done(folder)
    finished = {(r["cell"], r["triple"]) for r in done_rows}
    todo = [t for t in tasks if not all((c, t.triple_id) in finished for c in t.cells)]
    total_rows = sum(len(t.cells) for t in tasks)
    ex = make_executor(executor)
    from tqdm.auto import tqdm

    bar = tqdm(total=total_rows, initial=total_rows - sum(len(t.cells) for t in todo), desc="sweep (cells x triples)",
               disable=not progress, unit="row")
    rows = [r for r in done_rows]
    try:
        with open(folder / "rows.jsonl", "a") as log:
            for i, out in ex.run(run_task, todo):
                task = todo[i]
                for values, row in zip(task.values, out):
                    audio = row.pop("_audio")
                    name = f"{row['cell'].replace(':', '_').replace(' ', '-')}__{task.triple_id}.wav"
                    A.save(folder / "audio" / name, torch.as_tensor(audio), sample_rate=METRIC_RATE, overwrite=True)
                    row.update(kind=task.kind, triple=task.triple_id, audio=f"audio/{name}",
                               **{f"grid.{k}": _show(v) for k, v in values.items()})
                    log.write(json.dumps(_jsonable(row)) + "\n")
                    rows.append(row)
                log.flush()
                bar.update(len(out))
    finally:
        bar.close()
        ex.close()
    rows = _latest(rows)
    means = means_by_label(rows)
    calibration = means_by_label(rows, kind=CALIBRATION)
    _write_reports(folder, rows, means, calibration, spec, extra=extra)
    order = rank(means)
    return SweepResult(folder=folder, rows=rows, means=means, calibration=calibration, best=order[0] if order else None,
                       seconds=time.perf_counter() - start, ran=len(todo), skipped=len(tasks) - len(todo),
                       cells=labels)


def _latest(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (cell, triple): the last one written wins."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        seen[(r["cell"], r["triple"])] = r
    return list(seen.values())


def load_sweep(folder: str | Path) -> SweepResult:
    """Read a sweep folder back (rows, means, calibration, best) without running anything.

    Notebook: notebooks/06_exploring_attempt3.ipynb
    """
    folder = Path(folder)
    spec = json.loads((folder / "spec.json").read_text())
    _, labels = _plan(spec)
    rows = _latest(_done(folder))
    means, calibration = means_by_label(rows), means_by_label(rows, kind=CALIBRATION)
    order = rank(means)
    return SweepResult(folder=folder, rows=rows, means=means, calibration=calibration, best=order[0] if order else None,
                       seconds=0.0, ran=0, skipped=0, cells=labels)
