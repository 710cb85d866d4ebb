"""Widget panels generated from a config dataclass: Run/Stop, live loss plot, result area.

The panel holds no defaults of its own: every control is made from a field of the attempt's
config (labutils.config) with its default, bounds, choices and help text. A run goes in a
background thread so that Stop (and the rest of the notebook) stays responsive.

Two things make ``panel.run(); panel.wait()`` in a cell (Run All) behave like a button press:

* **Stop while a cell waits.** A blocked cell keeps the kernel from handling widget messages,
  so a click on Stop would wait until the run is over. ipykernel 7.4+ asks each widget's comm,
  in its shell-channel thread, where to route an incoming message (``_reply_subshell_for``);
  the panel answers for its Stop button and, on a click, sets the stop flag right there (only
  a ``threading.Event``: no widget is touched from that thread). The message is then handled
  as usual. On older kernels Stop during ``wait()`` takes effect when the cell ends.
* **Kernel > Interrupt while a cell waits.** ``wait()`` replaces the SIGINT handler while it
  waits: an interrupt sets the stop flag, the run finishes its current step, is saved as a
  partial run (``"partial": true, "interrupted": true`` in config.json), the panel is reset,
  and only then ``wait()`` raises ``KeyboardInterrupt`` so that Run All stops there.

Widgets are only touched from one thread at a time: while ``wait()`` runs, the background run
posts its updates and the waiting (main) thread applies them; otherwise the run applies them.

Notebook: notebooks/03_caracalla_roebel.ipynb
"""
from __future__ import annotations

import dataclasses
import html
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import ipywidgets as W
from matplotlib.figure import Figure

from . import audio as A
from . import attempts, plots, runs, speed, transfer
from .config import TransferConfig
from .errors import LabError

DESCRIPTION_WIDTH = "170px"
CONTROL_WIDTH = "390px"
#: what the preview setting changes: at most these, so that a run takes about a minute
PREVIEW_LIMITS = {"steps": 100, "sample_rate": 16000, "duration": 2.0}
PREVIEW_TARGET_S = 60.0
#: config fields shown beside the clip pickers (where the content and the style start)
CLIP_CONTROLS = ("offset", "style_offset")


def clock(seconds: float) -> str:
    """``75.2 -> "1:15"``, ``3725 -> "1:02:05"``: a duration as a clock reads it.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_text(step: int, steps: int, elapsed: float, eta: float | None = None) -> str:
    """``"step 12/300 · 0:14 elapsed · ~5:30 left"`` (time left at the mean rate so far).

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    if eta is None:
        eta = elapsed / max(step, 1) * (steps - step)
    left = f" · ~{clock(eta)} left" if step and step < steps else ""
    return f"step {step}/{steps} · {clock(elapsed)} elapsed{left}"


def duration_text(seconds: float) -> str:
    """``"about 40 s"``, ``"about 5 min"``, ``"about 1.5 h"`` (:func:`labutils.speed.duration_text`).

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    return speed.duration_text(seconds)


def status_text(result: Any, *, total: int, folder: Path | None = None) -> str:
    """The panel's last line about a run (HTML): ``"Done: 300 steps in 41.2 s."``, ``"Stopped: 23 of
    300 steps in 3.1 s (a partial run)."``, ``"Interrupted: ..."``, with where it was saved and any
    note about the weights or the clips.

    Notebook: notebooks/03_caracalla_roebel.ipynb
    """
    done, seconds = result.steps_done, f"{result.wall_time:.1f} s"
    where = f" Saved in <code>{html.escape(str(folder))}</code>." if folder else ""
    if getattr(result, "interrupted", False):
        text = f"Interrupted: {done} of {runs.steps_text(total)} in {seconds} (a partial run).{where}"
    elif result.stopped and result.message.startswith("stopped by request"):
        text = f"Stopped: {done} of {runs.steps_text(total)} in {seconds} (a partial run).{where}"
    elif result.stopped:
        text = f"Stopped early: {done} of {runs.steps_text(total)} in {seconds}: {html.escape(result.message)}.{where}"
    else:
        note = f" {html.escape(result.message)}." if result.message else ""
        text = f"Done: {runs.steps_text(done)} in {seconds}.{note}{where}"
    notes = [result.weights.get("note", "")] + list((getattr(result, "names", None) or {}).get("notes", []))
    for line in filter(None, notes):
        text += f"<br><span style='color:#a60'>&#9888; {html.escape(line)}</span>"
    return text


def control_for(f: dataclasses.Field, value: Any) -> W.Widget:
    """One widget for one config field, from its type, bounds, choices and help."""
    meta, kind = f.metadata, str(f.type)
    style = {"description_width": DESCRIPTION_WIDTH}
    layout = W.Layout(width=CONTROL_WIDTH)
    common = dict(description=f.name, tooltip=meta.get("help", ""), style=style, layout=layout)
    if "choices" in meta:
        return W.Dropdown(options=list(meta["choices"]), value=value, **common)
    if kind == "bool":
        return W.Checkbox(value=bool(value), indent=False, **{k: v for k, v in common.items() if k != "style"})
    if kind == "tuple":
        return W.Text(value=",".join(str(v) for v in value), **common)
    if kind == "str":
        return W.Text(value=value, **common)
    # plain number boxes, not bounded ones: a bounded box would silently turn steps 0 into 1 or beta -1
    # into 0; a value out of bounds is refused by the config's validation with the CLI's message
    bounds = f" ({meta['min']:g} to {meta['max']:g})" if "min" in meta and "max" in meta else ""
    common["tooltip"] = common["tooltip"] + bounds
    if kind == "int":
        return W.IntText(value=value, **common)
    return W.FloatText(value=value, step=0.01, **common)


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


def _is_click(data: Any) -> bool:
    return (isinstance(data, dict) and data.get("method") == "custom"
            and isinstance(data.get("content"), dict) and data["content"].get("event") == "click")


class TransferPanel:
    """A panel for one attempt: clip pickers, one control per hyperparameter, Run and Stop,
    an estimate of the run's time, a preview setting, progress with elapsed and remaining time,
    a live loss curve and spectrogram preview, then the result with players.

    ``panel.run()`` starts a run in the background (``panel.wait()`` joins it and keeps Stop and
    Kernel > Interrupt working); ``panel.result`` holds the :class:`~labutils.transfer.TransferResult`
    and ``panel.run_folder`` where it was saved. ``panel.estimate()`` times two steps and says how
    long the run would take; ``panel.preview.value = True`` switches to settings that finish in
    about a minute (False restores the full ones).

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
        clip_style = {"description_width": "70px"}
        self.content = W.Combobox(value=content, options=names, description="content", ensure_option=False,
                                  style=clip_style, layout=W.Layout(width=CONTROL_WIDTH),
                                  tooltip="a bundled clip name or a path to your own file")
        self.style = W.Combobox(value=style, options=names, description="style", ensure_option=False,
                                style=clip_style, layout=W.Layout(width=CONTROL_WIDTH),
                                tooltip="a bundled clip name or a path to your own file")
        self.run_button = W.Button(description="Run", button_style="success", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.estimate_button = W.Button(description="Estimate", icon="clock",
                                        tooltip="time two steps on this machine and say how long the run takes")
        self.preview = W.ToggleButton(value=False, description="Preview settings", icon="bolt",
                                      layout=W.Layout(width="160px"),
                                      tooltip="fewer steps, a shorter clip and a lower sample rate: about a "
                                              "minute; press again for the full settings")
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="260px"))
        self.progress_label = W.Label(value="")
        self.estimate_label = W.HTML(value="<i>Press Estimate to time this run on this machine.</i>")
        self.status = W.HTML(value="Ready.")
        self.loss_image = W.Image(format="png", layout=W.Layout(width="480px", display="none"))
        self.preview_image = W.Image(format="png", layout=W.Layout(width="480px", display="none"))
        self.result_area = W.VBox([], layout=W.Layout(border="1px solid #ddd", padding="4px"))
        for widget, name in ((self.status, "lab-status"), (self.result_area, "lab-result"),
                             (self.run_button, "lab-run"), (self.stop_button, "lab-stop"),
                             (self.estimate_button, "lab-estimate"), (self.preview, "lab-preview"),
                             (self.progress_label, "lab-progress"), (self.estimate_label, "lab-estimate-text"),
                             (self.loss_image, "lab-loss"), (self.preview_image, "lab-live")):
            widget.add_class(name)
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        self.estimate_button.on_click(lambda _: self.estimate())
        self.preview.observe(self._on_preview, names="value")
        # where each clip starts (seconds or auto) sits beside its picker, not among the hyperparameters
        beside = {name: self.controls[name] for name in CLIP_CONTROLS if name in self.controls}
        for name, box in beside.items():
            box.description, box.style, box.layout = "from (s)", {"description_width": "60px"}, W.Layout(width="150px")
        grid = W.GridBox([c for n, c in self.controls.items() if n not in beside],
                         layout=W.Layout(grid_template_columns=f"repeat(2, {CONTROL_WIDTH})", grid_gap="2px 8px"))
        self.widget = W.VBox([
            W.HBox([self.content, *([beside["offset"]] if "offset" in beside else []),
                    self.style, *([beside["style_offset"]] if "style_offset" in beside else [])]), grid,
            W.HBox([self.preview, self.estimate_button, self.estimate_label]),
            W.HBox([self.run_button, self.stop_button, self.progress, self.progress_label]), self.status,
            W.HBox([self.loss_image, self.preview_image]), self.result_area,
        ])
        self.widget.add_class("lab-panel")
        self._stop = threading.Event()
        self._interrupted = False
        self._thread: threading.Thread | None = None
        self._estimator: threading.Thread | None = None
        self._full: dict[str, Any] = {}
        self.result: transfer.TransferResult | None = None
        self.run_folder: Path | None = None
        self.error: str | None = None
        self._history: list[dict[str, Any]] = []
        # widget updates: applied at once, or queued for the waiting thread while wait() runs
        self._ui_lock = threading.RLock()
        self._pending: dict[str, Callable[[], None]] = {}
        self._waiting = False
        self._waiter: threading.Thread | None = None
        self._watch_stop_clicks()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # ---------------------------------------------------------------------------------- state
    def config(self) -> TransferConfig:
        """The config the controls describe, validated: a value out of bounds raises the
        :class:`~labutils.errors.ConfigError` the command line prints; nothing is clamped."""
        values = {f.name: _read(f, self.controls[f.name]) for f in self.fields}
        return self.attempt.config(**values).validate()

    def _clips(self) -> tuple[str, str]:
        """The two clip boxes' texts; an empty box is one clear error."""
        texts = []
        for role, box in (("content", self.content), ("style", self.style)):
            text = str(box.value).strip()
            if not text:
                raise LabError(f"{role}: the box is empty; type a bundled clip name (e.g. moonlight_piano) "
                               f"or the path of an audio file")
            texts.append(text)
        return texts[0], texts[1]

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

    # ------------------------------------------------------------------------ widget updates
    def _post(self, key: str, update: Callable[[], None]) -> None:
        """Apply a widget update now, or hand it to the thread in :meth:`wait` (latest per key)."""
        with self._ui_lock:
            if self._waiting and threading.current_thread() is not self._waiter:
                self._pending.pop(key, None)
                self._pending[key] = update
                return
            update()

    def _flush(self) -> None:
        with self._ui_lock:
            updates, self._pending = list(self._pending.values()), {}
            for update in updates:
                try:
                    update()
                except Exception:  # one failed picture must not stop the others or the wait
                    traceback.print_exc()

    def _watch_stop_clicks(self) -> None:
        """Let a Stop click set the stop flag even while a cell blocks the kernel (see the module doc)."""
        comm = getattr(self.stop_button, "comm", None)
        original = getattr(comm, "_reply_subshell_for", None)
        if comm is None or original is None:
            return
        stop = self._stop
        running = lambda: self.running  # noqa: E731

        def route(data: Any, default: Any) -> Any:
            try:
                if _is_click(data) and running():
                    stop.set()  # thread-safe; widgets are updated by the waiting thread
            except Exception:
                pass
            return original(data, default)

        try:
            comm._reply_subshell_for = route
        except Exception:
            pass

    # ----------------------------------------------------------------------------- actions
    def run(self) -> None:
        """Start a run in the background with the current controls (ignored while one runs)."""
        if self.running:
            return
        try:
            cfg = self.config()
            content, style, names = transfer.load_pair(*self._clips(), cfg)
            if self.save:
                runs.check_out_dir(self.out_dir)
        except LabError as exc:
            self.error = str(exc)
            self.status.value = f"<span style='color:#b00'>&#9888; {html.escape(str(exc))}</span>"
            return
        self.error, self._history, self._interrupted = None, [], False
        self.result, self.run_folder = None, None
        self._stop.clear()
        # a new run starts from a clean panel: no picture, result or message of the last one
        self.loss_image.layout.display = self.preview_image.layout.display = "none"
        self.loss_image.value = self.preview_image.value = b""
        self.result_area.children = ()
        self.progress.max, self.progress.value, self.progress.bar_style = cfg.steps, 0, ""
        self.progress_label.value = f"step 0/{cfg.steps} · starting"
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.estimate_button.disabled = self.preview.disabled = True
        self.status.value = f"Running {self.method}: {names['content']} in the style of {names['style']}..."
        self._thread = threading.Thread(target=self._work, args=(cfg, content, style, names), daemon=True,
                                        name=f"lab-run-{self.method}")
        self._thread.start()

    def stop(self) -> None:
        """Ask the running optimisation to stop; it does within one step and keeps its result."""
        if not self.running:
            return
        self._stop.set()
        self._post("status", lambda: setattr(self.status, "value", "Stopping after this step..."))

    def wait(self, timeout: float | None = None) -> "transfer.TransferResult | None":
        """Block until the current run ends; return its result.

        While it waits, Stop still works, the panel keeps updating, and Kernel > Interrupt stops
        the run after its current step, saves it as a partial run, resets the panel and then
        raises ``KeyboardInterrupt`` (so that Run All stops here).

        Notebook: notebooks/03_caracalla_roebel.ipynb
        """
        thread = self._thread
        if thread is None:
            return self.result
        if threading.current_thread() is not threading.main_thread():
            thread.join(timeout)
            return self.result
        deadline = None if timeout is None else time.monotonic() + timeout
        previous = signal.getsignal(signal.SIGINT)
        interrupts = []

        def on_interrupt(signum: int, frame: Any) -> None:
            interrupts.append(time.monotonic())
            self._interrupted = True
            self._stop.set()

        try:
            signal.signal(signal.SIGINT, on_interrupt)
            installed = True
        except (ValueError, TypeError):
            installed = False
        with self._ui_lock:
            self._waiting, self._waiter = True, threading.current_thread()
        said_stopping = False
        try:
            while thread.is_alive():
                self._flush()
                if self._stop.is_set() and not said_stopping:
                    said_stopping = True
                    what = "Interrupted" if self._interrupted else "Stopping"
                    self.status.value = (f"{what}: finishing step {len(self._history) + 1}, then saving "
                                         f"the steps done...")
                thread.join(0.1)
                if deadline is not None and time.monotonic() > deadline:
                    break
        finally:
            if installed:
                signal.signal(signal.SIGINT, previous)
            with self._ui_lock:
                self._flush()
                self._waiting, self._waiter = False, None
        if interrupts and not thread.is_alive():
            where = f", saved in {self.run_folder}" if self.run_folder else ""
            done = self.result.steps_done if self.result is not None else 0
            raise KeyboardInterrupt(f"interrupted: the run stopped after {done} steps{where} (a partial run)")
        return self.result

    # ------------------------------------------------------------------------------ estimate
    def estimate(self, *, wait: bool = False) -> None:
        """Time two steps of the current settings on this machine (in the background) and show
        how long the run would take. ``wait=True`` blocks until the estimate is shown.

        Notebook: notebooks/03_caracalla_roebel.ipynb
        """
        if self.running or (self._estimator is not None and self._estimator.is_alive()):
            return
        try:
            cfg = self.config()
            content, style, _ = transfer.load_pair(*self._clips(), cfg)
        except LabError as exc:
            self.estimate_label.value = f"<span style='color:#b00'>&#9888; {html.escape(str(exc))}</span>"
            return
        self.estimate_button.disabled = True
        self.estimate_label.value = "<i>timing two steps on this machine...</i>"
        self._estimator = threading.Thread(target=self._estimate, args=(cfg, content, style), daemon=True,
                                           name="lab-estimate")
        self._estimator.start()
        if wait:
            self._estimator.join()

    def _estimate(self, cfg: TransferConfig, content, style) -> None:
        try:
            est = speed.estimate(self.method, content, style, cfg, steps=2)
            if self.preview.value and est.seconds > 1.5 * PREVIEW_TARGET_S and est.steps > 10 and "steps" in self.controls:
                # the preview should take about a minute: fewer steps, the same measurement
                room = max(PREVIEW_TARGET_S - est.setup - est.decode, 0.0)
                steps = max(10, min(est.steps, int(room / max(est.per_step, 1e-9))))
                est = est.for_steps(steps)
                self._post("preview-steps", lambda: setattr(self.controls["steps"], "value", steps))
            stamp = time.strftime("%H:%M")
            text = f"<b>{est.text()}</b> on this machine (measured at {stamp})"
        except LabError as exc:
            text = f"<span style='color:#b00'>&#9888; {html.escape(str(exc))}</span>"
        except Exception as exc:
            text = f"<span style='color:#b00'>&#9888; could not time a step: {html.escape(str(exc))}</span>"

        def show() -> None:
            self.estimate_label.value = text
            self.estimate_button.disabled = self.running

        self._post("estimate", show)

    def _on_preview(self, change: dict[str, Any]) -> None:
        controls = self.controls
        if change["new"]:
            self._full = {k: controls[k].value for k in PREVIEW_LIMITS if k in controls}
            for name, limit in PREVIEW_LIMITS.items():
                if name in controls and controls[name].value > limit:
                    controls[name].value = limit
            self.preview.description = "Full settings"
            self.estimate()
        else:
            for name, value in self._full.items():
                controls[name].value = value
            self._full = {}
            self.preview.description = "Preview settings"
            self.estimate_label.value = "<i>Full settings restored; press Estimate to time them.</i>"

    # ------------------------------------------------------------------------------- the run
    def _on_step(self, info: transfer.StepInfo, spec) -> None:
        # called every step (in the run's thread): progress and loss history follow each step,
        # the pictures are redrawn at step 1 and then about 20 times per run at most
        self._history.append({"step": info.step, "total": info.total, "content": info.content, "style": info.style})
        self._total = info.steps  # the attempt's own count where it has one (one step per note)
        text = progress_text(info.step, info.steps, info.elapsed, info.eta)

        def progress() -> None:
            self.progress.max = info.steps
            self.progress.value = info.step
            self.progress_label.value = text

        self._post("progress", progress)
        redraw_every = max(1, min(self.every, info.steps // 20))
        if spec is None or (info.step != 1 and info.step % redraw_every and info.step != info.steps):
            return
        self._draw(title=f"step {info.step}/{info.steps}", spec=spec[0], spec_title=f"generated (step {info.step})")

    def _draw(self, *, title: str, spec: Any, spec_title: str) -> None:
        fig = Figure(figsize=(5, 2.8), layout="constrained")
        plots.loss_curve(list(self._history), ax=fig.add_subplot(), title=title)
        loss_png = plots.figure_png(fig)
        fig = Figure(figsize=(5, 2.8), layout="constrained")
        lo, hi = plots.LOG_SPEC_RANGE
        plots.spectrogram(spec, sample_rate=self._rate, hop_length=self._hop, ax=fig.add_subplot(),
                          title=spec_title, vmin=lo, vmax=hi)
        spec_png = plots.figure_png(fig)

        def show() -> None:
            self.loss_image.value, self.preview_image.value = loss_png, spec_png
            self.loss_image.layout.display = self.preview_image.layout.display = None

        self._post("pictures", show)

    def _work(self, cfg: TransferConfig, content, style, names) -> None:
        self._rate, self._hop, self._total = cfg.sample_rate, cfg.hop_length, cfg.steps
        started = time.perf_counter()
        try:
            result = transfer.solve(self.method, content, style, cfg, callback=self._on_step, every=1,
                                    preview_every=max(1, min(self.every, cfg.steps // 20)),
                                    stop=self._stop, progress=False)
            result.names = names
            total = self._total
            if self._interrupted:
                result.stopped = result.interrupted = True
                result.message = (f"interrupted after {result.steps_done} of {total} steps; "
                                  f"the result so far is kept (a partial run)")
            self.result = result
            if result.steps_done == 0:  # stopped before the first step: there is nothing to keep
                what = "Interrupted" if result.interrupted else "Stopped"
                text = f"{what} before the first step: nothing to save."
                self._post("status", lambda: setattr(self.status, "value", text))
                self._post("progress", lambda: setattr(self.progress_label, "value",
                                                       f"step 0/{total} · stopped"))
                return
            self.run_folder = runs.save(result, out_dir=self.out_dir)[0] if self.save else None
            self._draw(title=f"step {result.steps_done}/{total}" + (" (stopped)" if result.stopped else ""),
                       spec=result.spectrogram[0], spec_title=f"result after {runs.steps_text(result.steps_done)}")
            self._show(result)
            text = status_text(result, total=total, folder=self.run_folder)
            self._post("status", lambda: setattr(self.status, "value", text))
            final = (f"step {result.steps_done}/{total} · {clock(time.perf_counter() - started)} elapsed · "
                     + ("stopped" if result.stopped else "done"))
            self._post("progress", lambda: (setattr(self.progress, "value", result.steps_done),
                                            setattr(self.progress_label, "value", final)))
        except LabError as exc:
            self.error = str(exc)
            message = f"<span style='color:#b00'>&#9888; {html.escape(str(exc))}</span>"
            self._post("status", lambda: setattr(self.status, "value", message))
        except BaseException as exc:  # keep the panel usable and say what went wrong
            self.error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            message = f"<span style='color:#b00'>&#9888; unexpected error: {html.escape(self.error)}</span>"
            self._post("status", lambda: setattr(self.status, "value", message))
        finally:
            def reset() -> None:
                self.run_button.disabled, self.stop_button.disabled = False, True
                self.estimate_button.disabled = self.preview.disabled = False

            self._post("buttons", reset)

    def _show(self, result: transfer.TransferResult) -> None:
        fig = Figure(figsize=(13, 3.2))
        plots.spectrogram_grid({"content": result.content_spec[0], "style": result.style_spec[0],
                                "result": result.spectrogram[0]}, sample_rate=result.sample_rate,
                               hop_length=result.config["hop_length"], fig=fig)
        png = plots.figure_png(fig)
        html = "".join(plots.audio_html(a, sample_rate=result.sample_rate, title=n) for n, a in
                       (("content", result.content_audio), ("style", result.style_audio), ("result", result.audio[0])))

        def show() -> None:
            image = W.Image(value=png, format="png", layout=W.Layout(width="100%", max_width="1100px"))
            image.add_class("lab-spectrograms")
            self.result_area.children = [image, W.HTML(value=html)]

        self._post("result", show)
