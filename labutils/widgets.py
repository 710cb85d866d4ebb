"""Widget panels generated from a config dataclass: Run/Stop, live loss plot, result area.

The panel holds no defaults of its own: every control is made from a field of the attempt's
config (labutils.config) with its default, bounds, choices and help text. A run goes in a
background thread so that Stop (and the rest of the notebook) stays responsive.

Notebook: notebooks/03_caracalla_roebel.ipynb
"""
from __future__ import annotations

import dataclasses
import io
import math
import threading
import traceback
from pathlib import Path
from typing import Any

import ipywidgets as W
from matplotlib.figure import Figure

from . import audio as A
from . import attempts, plots, runs, transfer
from .config import TransferConfig
from .errors import LabError


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def control_for(f: dataclasses.Field, value: Any) -> W.Widget:
    """One widget for one config field, from its type, bounds, choices and help."""
    meta, kind = f.metadata, str(f.type)
    style = {"description_width": "140px"}
    layout = W.Layout(width="340px")
    common = dict(description=f.name, description_tooltip=meta.get("help", ""), style=style, layout=layout)
    if "choices" in meta:
        return W.Dropdown(options=list(meta["choices"]), value=value, **common)
    if kind == "bool":
        return W.Checkbox(value=bool(value), indent=False, **{k: v for k, v in common.items() if k != "style"})
    if kind == "tuple":
        return W.Text(value=",".join(str(v) for v in value), **common)
    if kind == "str":
        return W.Text(value=value, **common)
    if kind == "int":
        return W.BoundedIntText(value=value, min=meta.get("min", 0), max=meta.get("max", 10**9), **common)
    if meta.get("log") and meta.get("min", 0) > 0:
        return W.FloatLogSlider(value=value, base=10, min=math.log10(meta["min"]), max=math.log10(meta["max"]),
                                step=0.1, readout_format=".3g", **common)
    return W.BoundedFloatText(value=value, min=meta.get("min", -1e9), max=meta.get("max", 1e9), step=0.01, **common)


def _read(f: dataclasses.Field, widget: W.Widget) -> Any:
    if str(f.type) == "tuple":
        items = [x for x in widget.value.replace(" ", "").split(",") if x]
        if all(isinstance(v, int) for v in f.default_factory()):
            try:
                return tuple(int(x) for x in items)
            except ValueError:
                raise LabError(f"{f.name}: give whole numbers separated by commas, e.g. 3,5,7") from None
        return tuple(items)
    return widget.value


class TransferPanel:
    """A panel for one attempt: clip pickers, one control per hyperparameter, Run and Stop,
    progress, a live loss curve and spectrogram preview, then the result with players.

    ``panel.run()`` starts a run in the background (``panel.wait()`` joins it); ``panel.result``
    holds the :class:`~labutils.transfer.TransferResult` and ``panel.run_folder`` where it was saved.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """

    def __init__(self, method: str = "caracalla-roebel", *, config: TransferConfig | None = None,
                 content: str = "moonlight_piano", style: str = "ode_violin", out_dir: str | Path = "outputs",
                 every: int = 10, save: bool = True) -> None:
        self.attempt = attempts.get(method)
        self.method, self.out_dir, self.every, self.save = method, Path(out_dir), every, save
        cfg = config or self.attempt.config()
        self.fields = [f for f in dataclasses.fields(cfg)]
        self.controls = {f.name: control_for(f, getattr(cfg, f.name)) for f in self.fields}
        names = list(A.catalog())
        self.content = W.Combobox(value=content, options=names, description="content", ensure_option=False,
                                  description_tooltip="a bundled clip name or a path to your own file")
        self.style = W.Combobox(value=style, options=names, description="style", ensure_option=False,
                                description_tooltip="a bundled clip name or a path to your own file")
        self.run_button = W.Button(description="Run", button_style="success", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.progress = W.IntProgress(value=0, min=0, max=1, description="step")
        self.status = W.HTML(value="Ready.")
        self.status.add_class("lab-status")
        self.loss_image = W.Image(format="png", layout=W.Layout(width="420px"))
        self.preview_image = W.Image(format="png", layout=W.Layout(width="420px"))
        self.result_area = W.VBox([], layout=W.Layout(border="1px solid #ddd", padding="4px"))
        self.result_area.add_class("lab-result")
        self.run_button.add_class("lab-run")
        self.stop_button.add_class("lab-stop")
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        grid = W.GridBox(list(self.controls.values()),
                         layout=W.Layout(grid_template_columns="repeat(2, 350px)", grid_gap="2px"))
        self.widget = W.VBox([
            W.HBox([self.content, self.style]), grid,
            W.HBox([self.run_button, self.stop_button, self.progress]), self.status,
            W.HBox([self.loss_image, self.preview_image]), self.result_area,
        ])
        self.widget.add_class("lab-panel")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.result: transfer.TransferResult | None = None
        self.run_folder: Path | None = None
        self.error: str | None = None
        self._history: list[dict[str, Any]] = []

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # ----------------------------------------------------------------------------------------
    def config(self) -> TransferConfig:
        """The config the controls describe, validated."""
        values = {f.name: _read(f, self.controls[f.name]) for f in self.fields}
        return self.attempt.config(**values).validate()

    def set(self, **values: Any) -> "TransferPanel":
        """Set controls from Python (``panel.set(steps=50, beta=0.1)``)."""
        for name, value in values.items():
            if name not in self.controls:
                raise LabError(f"{self.method} has no option {name!r}")
            self.controls[name].value = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else value
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        """Start a run in the background with the current controls (ignored while one runs)."""
        if self.running:
            return
        try:
            cfg = self.config()
            content, style, names = transfer.load_pair(self.content.value, self.style.value, cfg)
            if self.save:
                runs.check_out_dir(self.out_dir)
        except LabError as exc:
            self.error = str(exc)
            self.status.value = f"<span style='color:#b00'>&#9888; {exc}</span>"
            return
        self.error, self._history = None, []
        self._stop.clear()
        self.progress.max, self.progress.value = cfg.steps, 0
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.status.value = f"Running {self.method}: {names['content']} in the style of {names['style']}..."
        self._thread = threading.Thread(target=self._work, args=(cfg, content, style, names), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the running optimisation to stop; it does within one step and keeps its result."""
        self._stop.set()
        self.status.value = "Stopping..."

    def wait(self, timeout: float | None = None) -> "transfer.TransferResult | None":
        """Block until the current run ends; return its result."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.result

    # ----------------------------------------------------------------------------------------
    def _on_step(self, info: transfer.StepInfo, spec) -> None:
        # called every step: the progress and the loss history follow each step, the pictures
        # are redrawn every few steps (about 20 times per run at most)
        self.progress.value = info.step
        self._history.append({"step": info.step, "total": info.total, "content": info.content, "style": info.style})
        redraw_every = max(1, min(self.every, info.steps // 20))
        if info.step % redraw_every and info.step != info.steps:
            return
        fig = Figure(figsize=(5, 2.6))
        plots.loss_curve(self._history, ax=fig.add_subplot(), title=f"step {info.step}/{info.steps}")
        fig.tight_layout()
        self.loss_image.value = _png(fig)
        fig = Figure(figsize=(5, 2.6))
        plots.spectrogram(spec[0], sample_rate=self._rate, hop_length=self._hop, ax=fig.add_subplot(),
                          title="generated (live)", vmin=0, vmax=1)
        fig.tight_layout()
        self.preview_image.value = _png(fig)

    def _work(self, cfg: TransferConfig, content, style, names) -> None:
        self._rate, self._hop = cfg.sample_rate, cfg.hop_length
        try:
            result = transfer.solve(self.method, content, style, cfg, callback=self._on_step, every=1,
                                    stop=self._stop, progress=False)
            result.names = names
            self.result = result
            self.run_folder = runs.save(result, out_dir=self.out_dir)[0] if self.save else None
            self._show(result)
            where = f" Saved in <code>{self.run_folder}</code>." if self.run_folder else ""
            note = f" {result.message}." if result.message else ""
            weights = result.weights.get("note", "")
            warn = f"<br><span style='color:#a60'>&#9888; {weights}</span>" if weights else ""
            self.status.value = f"Done: {result.steps_done} steps in {result.wall_time:.1f} s.{note}{where}{warn}"
        except LabError as exc:
            self.error = str(exc)
            self.status.value = f"<span style='color:#b00'>&#9888; {exc}</span>"
        except Exception as exc:  # keep the panel usable and say what went wrong
            self.error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self.status.value = f"<span style='color:#b00'>&#9888; unexpected error: {self.error}</span>"
        finally:
            self.run_button.disabled, self.stop_button.disabled = False, True

    def _show(self, result: transfer.TransferResult) -> None:
        fig = Figure(figsize=(12, 3))
        plots.spectrogram_grid({"content": result.content_spec[0], "style": result.style_spec[0],
                                "result": result.spectrogram[0]}, sample_rate=result.sample_rate,
                               hop_length=result.config["hop_length"], fig=fig)
        image = W.Image(value=_png(fig), format="png", layout=W.Layout(width="900px"))
        image.add_class("lab-spectrograms")
        html = "".join(plots.audio_html(a, sample_rate=result.sample_rate, title=n) for n, a in
                       (("content", result.content_audio), ("style", result.style_audio), ("result", result.audio[0])))
        self.result_area.children = [image, W.HTML(value=html)]
