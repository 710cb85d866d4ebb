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
            "content_offset_s": names.get("content_offset"), "style_offset_s": names.get("style_offset"),
            **({"notes": names["notes"]} if names.get("notes") else {}),
            "config": config,
            "weights": result.weights,
            "device": result.device,
            "seed": config.get("seed"),
            "steps_done": result.steps_done,
            "stopped": result.stopped,
            "partial": bool(result.stopped and result.steps_done < config.get("steps", result.steps_done)),
            "interrupted": bool(getattr(result, "interrupted", False)),
            "message": result.message,
            **({"compute": result.info} if getattr(result, "info", None) else {}),
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


def steps_text(n: int) -> str:
    """``"1 step"``, ``"23 steps"``."""
    return f"{n} step" if n == 1 else f"{n} steps"


def keep(result: Any, *, out_dir: str | Path = DEFAULT_OUT, extra: dict[str, Any] | None = None) -> Path | None:
    """Save a notebook's result and stop the notebook there when the run was interrupted.

    Saves the run folder (:func:`save`; the first folder is returned) unless no step was taken.
    When the kernel's Interrupt (or Ctrl-C) ended the run, the steps done are saved as a partial
    run and then ``KeyboardInterrupt`` is raised, so that Run All stops at this cell instead of
    going on to the next heavy one.

    Notebook: notebooks/05_ddsp.ipynb
    """
    folder = None
    if result.steps_done > 0:
        folder = save(result, out_dir=out_dir, extra=extra)[0]
    if getattr(result, "interrupted", False):
        total = result.config.get("steps", result.steps_done) if isinstance(result.config, dict) else result.steps_done
        where = f"; the partial run is saved in {folder}" if folder else "; nothing was saved"
        raise KeyboardInterrupt(f"interrupted after {result.steps_done} of {steps_text(total)}{where}")
    return folder


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
                     "style": rec.get("style"), "steps": rec.get("steps_done"), "partial": rec.get("partial", False),
                     "wall_time_s": rec.get("wall_time_s"), "created": rec.get("created")})
    return rows


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A run's hyperparameters without what does not change the result's maths (the device)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items() if k not in ("device",)}


def find_matching(out_dir: str | Path, *, method: str, content: str, style: str,
                  config: dict[str, Any]) -> Path | None:
    """The newest complete run under ``out_dir`` made with exactly this method, pair and config.

    Every hyperparameter must match (steps, duration, domain, beta, seeds...); partial runs
    (stopped early) never match. Returns None when there is none.

    Notebook: notebooks/04_compare.ipynb
    """
    wanted = _comparable(config)
    for row in list_runs(out_dir):
        if (row["method"], row["content"], row["style"]) != (method, content, style) or row["partial"]:
            continue
        try:
            rec = json.loads((Path(row["path"]) / "config.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if _comparable(rec.get("config", {})) == wanted and (Path(row["path"]) / "result.wav").is_file():
            return Path(row["path"])
    return None
