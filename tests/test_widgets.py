"""The TransferPanel outside a browser: runs, Stop, interrupts, a clean panel per run, estimates;
and the figure helpers it draws with. One test drives a real kernel (jupyter_client) to check that
Stop and Kernel > Interrupt work while a cell is blocked in ``panel.run(); panel.wait()``."""
from __future__ import annotations

import dataclasses
import html
import json
import os
import re
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from labutils import plots, speed, transfer, widgets
from labutils.widgets import TransferPanel


def _panel(cfg, tmp_path, **kw) -> TransferPanel:
    return TransferPanel("caracalla-roebel", config=cfg, content="moonlight_piano", style="ode_violin",
                         out_dir=tmp_path / "runs", **kw)


def _record(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_run_and_wait(tiny_cfg, tmp_path):
    panel = _panel(tiny_cfg.replace(steps=5), tmp_path)
    panel.run()
    result = panel.wait()
    assert result is panel.result and result.steps_done == 5 and not result.stopped
    assert panel.run_folder is not None and not _record(panel.run_folder)["partial"]
    assert panel.status.value.startswith("Done: 5 steps")
    assert re.fullmatch(r"step 5/5 · \d+:\d\d elapsed · done", panel.progress_label.value), panel.progress_label.value
    assert not panel.run_button.disabled and panel.stop_button.disabled
    assert panel.loss_image.value and panel.loss_image.layout.display is None
    assert len(panel.result_area.children) == 2


def test_stop_keeps_a_partial_run(tiny_cfg, tmp_path):
    panel = _panel(tiny_cfg.replace(steps=100000), tmp_path)
    panel.run()
    _wait_for(lambda: len(panel._history) >= 2)
    panel.stop()
    result = panel.wait(timeout=30)
    assert not panel.running and result.stopped and 2 <= result.steps_done < 100000
    record = _record(panel.run_folder)
    assert record["partial"] and record["steps_done"] == result.steps_done
    assert panel.status.value.startswith(f"Stopped: {result.steps_done} of 100000 steps in ")
    assert "(a partial run)" in panel.status.value and "Done" not in panel.status.value
    assert not panel.run_button.disabled and panel.stop_button.disabled


def test_stop_before_the_first_step_saves_nothing(tiny_cfg, tmp_path, monkeypatch):
    """Stop pressed before any step: no run folder (an empty losses.csv and the content as the
    result), and the panel says so, as the command line does."""
    gate = threading.Event()
    real_build = transfer.attempts.get("caracalla-roebel").build

    def slow_build(*args, **kwargs):
        gate.wait(10)
        return real_build(*args, **kwargs)

    attempt = transfer.attempts.get("caracalla-roebel")
    monkeypatch.setattr(transfer.attempts, "get", lambda name: dataclasses.replace(attempt, build=slow_build))
    panel = _panel(tiny_cfg.replace(steps=100000), tmp_path)
    panel.run()
    panel.stop()
    gate.set()
    result = panel.wait(timeout=30)
    assert result is not None and result.steps_done == 0
    assert panel.run_folder is None and not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert panel.status.value == "Stopped before the first step: nothing to save."
    assert not panel.run_button.disabled and panel.stop_button.disabled


@pytest.mark.parametrize("name,value", [("beta", -1.0), ("steps", 0), ("duration", 120.0), ("lr", 0.0)])
def test_panel_refuses_a_bad_value_with_the_cli_message(tiny_cfg, tmp_path, name, value):
    """A value outside its bounds is kept as typed (not clamped) and refused with the same line
    as the command line's, and nothing runs."""
    from labutils.errors import ConfigError

    panel = _panel(tiny_cfg, tmp_path)
    panel.controls[name].value = value
    assert panel.controls[name].value == value, "the control changed the value by itself"
    with pytest.raises(ConfigError) as caught:
        panel.config()
    panel.run()
    assert not panel.running and panel.result is None
    assert str(caught.value) in html.unescape(panel.status.value) and f"{name}=" in panel.status.value
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_empty_clip_box_says_what_to_type(tiny_cfg, tmp_path):
    panel = _panel(tiny_cfg, tmp_path)
    panel.content.value = "  "
    panel.run()
    assert not panel.running and "content: the box is empty" in panel.status.value
    assert "directory" not in panel.status.value


def test_status_words(tiny_cfg, tiny_pair, tmp_path):
    result = transfer.solve("caracalla-roebel", *tiny_pair, tiny_cfg.replace(steps=1), progress=False)
    assert widgets.status_text(result, total=1).startswith("Done: 1 step in ")
    result.stopped, result.message = True, "stopped by request after 1 steps"
    assert widgets.status_text(result, total=300).startswith("Stopped: 1 of 300 steps in ")


def test_interrupt_during_wait_saves_and_resets(tiny_cfg, tmp_path):
    panel = _panel(tiny_cfg.replace(steps=100000), tmp_path)
    panel.run()
    _wait_for(lambda: len(panel._history) >= 2)
    threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt, match="partial run"):
        panel.wait(timeout=60)
    assert not panel.running
    result = panel.result
    assert result.interrupted and result.stopped and result.steps_done >= 2
    record = _record(panel.run_folder)
    assert record["partial"] and record["interrupted"]
    assert panel.status.value.startswith(f"Interrupted: {result.steps_done} of 100000 steps")
    assert str(panel.run_folder) in panel.status.value
    assert not panel.run_button.disabled and panel.stop_button.disabled
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_each_run_starts_from_a_clean_panel(tiny_cfg, tmp_path, monkeypatch):
    panel = _panel(tiny_cfg.replace(steps=3), tmp_path)
    panel.run()
    panel.wait()
    assert panel.result_area.children and panel.loss_image.value
    gate = threading.Event()
    real_solve = transfer.solve

    def slow_solve(*args, **kwargs):
        gate.wait(10)
        return real_solve(*args, **kwargs)

    monkeypatch.setattr(transfer, "solve", slow_solve)
    panel.run()
    try:
        assert panel.result is None and panel.run_folder is None
        assert panel.result_area.children == ()
        assert panel.loss_image.layout.display == "none" and panel.loss_image.value == b""
        assert panel.preview_image.layout.display == "none"
        assert panel.progress.value == 0 and panel.progress_label.value == "step 0/3 · starting"
        assert panel.status.value.startswith("Running")
    finally:
        gate.set()
        panel.wait()
    assert panel.status.value.startswith("Done: 3 steps")


def test_a_run_that_raises_resets_the_buttons(tiny_cfg, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(transfer, "solve", broken)
    panel = _panel(tiny_cfg, tmp_path)
    panel.run()
    panel.wait()
    assert "unexpected error" in panel.status.value and "boom" in panel.error
    assert not panel.run_button.disabled and panel.stop_button.disabled and not panel.estimate_button.disabled


def test_estimate_and_preview(tiny_cfg, tiny_pair, tmp_path):
    seconds = speed.estimate_seconds("caracalla-roebel", *tiny_pair, tiny_cfg, steps=2)
    assert 0 < seconds < 60
    panel = _panel(tiny_cfg.replace(steps=500, duration=3.0, sample_rate=22050), tmp_path)
    panel.preview.value = True
    panel._estimator.join(60)
    cfg = panel.config()
    assert cfg.sample_rate == 16000 and cfg.duration == 2.0 and cfg.steps == 100
    assert "on this machine" in panel.estimate_label.value and "about" in panel.estimate_label.value
    panel.preview.value = False
    cfg = panel.config()
    assert (cfg.steps, cfg.duration, cfg.sample_rate) == (500, 3.0, 22050)


def test_progress_and_duration_text():
    assert widgets.progress_text(12, 300, 14.2, 330.0) == "step 12/300 · 0:14 elapsed · ~5:30 left"
    assert widgets.progress_text(300, 300, 3725) == "step 300/300 · 1:02:05 elapsed"
    assert widgets.duration_text(7) == "about 7 s" and widgets.duration_text(300) == "about 5 min"


def test_control_labels_are_wide_enough(tiny_cfg, tmp_path):
    panel = _panel(tiny_cfg, tmp_path)
    longest = max(len(name) for name in panel.controls)
    width = int(widgets.DESCRIPTION_WIDTH.rstrip("px"))
    assert width >= 8 * longest, f"a {longest}-letter label needs about {8 * longest}px"


# ---------------------------------------------------------------------------------- figures
def test_loss_curve_empty_and_one_point():
    for history in ([], [{"step": 1, "total": [1.0], "content": [0.5], "style": [0.5]}], {"a": [], "b": []}):
        fig = Figure(layout="constrained")
        plots.loss_curve(history, ax=fig.add_subplot(), title="t")
        fig.savefig(os.devnull, format="png")


def test_spectrograms_share_one_scale_with_a_colour_bar():
    import torch

    fig = plots.spectrogram_grid({"a": torch.rand(33, 20) * 0.5, "b": torch.rand(33, 20) * 1.4}, sample_rate=8000,
                                 hop_length=64)
    images = [im for ax in fig.axes for im in ax.images]
    assert len(images) == 2 and all(im.get_clim() == plots.LOG_SPEC_RANGE for im in images)
    assert len(fig.axes) == 3  # two panels and one shared colour bar
    fig = plots.spectrogram(torch.rand(33, 20), sample_rate=8000, hop_length=64)
    assert len(fig.axes) == 2
    for ax in fig.axes[:1]:
        assert ax.xaxis.label.get_fontsize() >= 10 and all(t.get_fontsize() >= 10 for t in ax.get_xticklabels())


# ------------------------------------------------------------------------------- a real kernel
KERNEL_SETUP = """
import json, os, signal
from labutils.config import CaracallaRoebelConfig
from labutils.widgets import TransferPanel
cfg = CaracallaRoebelConfig(steps=100000, sample_rate=8000, duration=0.5, n_fft=128, hop_length=64, filters=4,
                            kernel_sizes=(3, 5), griffin_lim_iters=8, device="cpu")
panel = TransferPanel("caracalla-roebel", config=cfg, out_dir={out!r})
print(json.dumps({{"stop": panel.stop_button.comm.comm_id, "hook": hasattr(panel.stop_button.comm, "_reply_subshell_for")}}))
"""


def _execute(kc, code: str, timeout: float = 60) -> dict:
    msg_id = kc.execute(code)
    return _reply(kc, msg_id, timeout)


def _reply(kc, msg_id: str, timeout: float) -> dict:
    deadline = time.time() + timeout
    while True:
        reply = kc.get_shell_msg(timeout=max(0.1, deadline - time.time()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


def _stdout(kc, msg_id: str, timeout: float = 90) -> str:
    out, deadline = [], time.time() + timeout
    while time.time() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except Exception:
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)
    return "".join(out)


@pytest.mark.slow
def test_stop_and_interrupt_while_a_cell_waits(tmp_path):
    pytest.importorskip("ipykernel")
    from jupyter_client.manager import start_new_kernel

    out = tmp_path / "runs"
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(Path(__file__).resolve().parent.parent),
                              env={**os.environ, "MPLBACKEND": "Agg",
                                   "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")})
    try:
        msg_id = kc.execute(textwrap.dedent(KERNEL_SETUP.format(out=str(out))))
        text = _stdout(kc, msg_id)
        _reply(kc, msg_id, 60)
        ids = json.loads(text.strip().splitlines()[-1])
        if not ids["hook"]:
            pytest.skip("this ipykernel routes no comm messages through the comm (ipykernel < 7.4)")

        # 1. Stop clicked while the cell blocks in wait(): the run ends, saved and marked partial
        run_id = kc.execute("panel.run(); result = panel.wait()")
        time.sleep(3)
        click = kc.session.msg("comm_msg", {"comm_id": ids["stop"], "data": {"method": "custom",
                                                                          "content": {"event": "click"}}})
        kc.shell_channel.send(click)
        reply = _reply(kc, run_id, 30)
        assert reply["content"]["status"] == "ok", reply["content"]
        check = kc.execute("r = panel.result; rec = json.load(open(panel.run_folder / 'config.json')); "
                           "assert r.stopped and not r.interrupted and 0 < r.steps_done < 100000, r.message; "
                           "assert rec['partial'] and not rec['interrupted'], rec; "
                           "assert not panel.run_button.disabled and panel.stop_button.disabled")
        assert _reply(kc, check, 30)["content"]["status"] == "ok"

        # 2. Kernel > Interrupt while the cell blocks in wait(): saved as an interrupted partial run
        # (stop_on_error=False: the kernel would otherwise abort the check sent right after the error)
        run_id = kc.execute("panel.run(); result = panel.wait()", stop_on_error=False)
        time.sleep(3)
        km.interrupt_kernel()
        reply = _reply(kc, run_id, 30)
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        check = kc.execute("r = panel.result; rec = json.load(open(panel.run_folder / 'config.json')); "
                           "assert r.interrupted and r.steps_done > 0, r.message; "
                           "assert rec['partial'] and rec['interrupted'], rec; "
                           "assert panel.status.value.startswith('Interrupted: '), panel.status.value; "
                           "assert not panel.running and not panel.run_button.disabled")
        assert _reply(kc, check, 30)["content"]["status"] == "ok"
        assert len([p for p in out.iterdir() if p.is_dir()]) == 2
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_loss_curve_starts_at_the_first_non_trivial_value():
    """The content loss of a run that starts from the content begins near 1e-12: the log axis must
    span the losses' real range, not 15 decades."""
    import math

    history = [{"step": s, "total": [1.0 / s], "content": [1e-13 if s == 1 else 1e-3 * s], "style": [1.0 / s]}
               for s in range(1, 51)]
    fig = Figure(layout="constrained")
    ax = fig.add_subplot()
    plots.loss_curve(history, ax=ax)
    low, high = ax.get_ylim()
    assert math.log10(high / low) < 4, (low, high)
    assert len(ax.get_lines()) == 3
