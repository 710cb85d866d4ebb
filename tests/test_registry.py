"""The attempts registry: one place knows the attempts; a new one runs everywhere from one line."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from labutils import ConfigError, attempts, evaluate, runs, transfer
from labutils.attempts import Attempt, Problem, prepare
from labutils.config import TransferConfig, _f

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class GainConfig(TransferConfig):
    """A dummy attempt: learn one gain per clip so that the result's energy matches the style's."""

    steps: int = _f(5, "optimisation steps", min=1, max=100)
    lr: float = _f(0.05, "learning rate", min=1e-6, max=10.0)
    sample_rate: int = _f(8000, "sample rate (Hz)", min=4000, max=192000)
    duration: float = _f(0.5, "seconds", min=0.1, max=60.0)
    n_fft: int = _f(128, "STFT frame size", min=16, max=8192)
    hop_length: int = _f(64, "STFT hop", min=1, max=8192, cli="hop")
    griffin_lim_iters: int = _f(4, "unused", min=1, max=5000)
    device: str = _f("cpu", "device", choices=("auto", "cpu", "cuda"))
    floor: float = _f(0.0, "a dummy option of this attempt only", min=0.0, max=1.0)

    method = "gain"


def build_gain(content, style, cfg, betas=None) -> Problem:
    setup = prepare(content, style, cfg, betas)
    target = setup.style.square().mean()

    def loss_fn(g: torch.Tensor) -> dict[str, torch.Tensor]:
        style_term = ((g[:, None] * setup.content).square().mean(-1) - target).square()
        content_term = torch.zeros_like(style_term)
        return {"total": setup.beta * style_term, "content": content_term, "style": style_term}

    def decode(g: torch.Tensor) -> torch.Tensor:
        return g[:, None] * setup.content + cfg.floor

    def preview(g: torch.Tensor) -> torch.Tensor:
        from labutils import spectral

        return spectral.log_spectrogram(decode(g), n_fft=cfg.n_fft, hop_length=cfg.hop_length, compression=100.0)

    return Problem(init=torch.ones(setup.batch), loss_fn=loss_fn, decode=decode, preview=preview, lr=cfg.lr,
                   weights={"name": "none", "pretrained": False, "source": "none", "note": ""}, device=setup.device)


@pytest.fixture
def gain_attempt():
    attempts.register(Attempt("gain", GainConfig, build_gain, "none", "a dummy gain attempt"))
    yield
    attempts.unregister("gain")


def test_one_place_refuses_an_unknown_method():
    hits = subprocess.run(["grep", "-rn", "unknown method", str(ROOT / "labutils")], capture_output=True, text=True)
    assert len(hits.stdout.strip().splitlines()) == 1, hits.stdout
    for call in (lambda: attempts.get("nope"), lambda: attempts.config_for("nope"),
                 lambda: transfer.solve("nope", torch.zeros(10), torch.zeros(10))):
        with pytest.raises(ConfigError, match="unknown method 'nope'"):
            call()


def test_a_registered_dummy_attempt_runs_through_transfer_compare_and_panel(gain_attempt, tmp_path):
    result = transfer.transfer("gain", "moonlight_piano", "ode_violin", GainConfig(steps=3), progress=False)
    assert result.method == "gain" and result.steps_done == 3 and result.audio.shape == (1, 4000)
    folder = runs.save(result, out_dir=tmp_path)[0]
    assert runs.load(folder).record["config"]["floor"] == 0.0

    comp = evaluate.compare("moonlight_piano", "ode_violin", truth="moonlight_violin", methods=["gain"],
                            out_dir=tmp_path, progress=False)
    assert set(comp.scores) == {"gain", "content copied", "style copied", "truth", "equaliser"}
    assert 0 <= comp.scores["gain"]["chroma_to_content"] <= 1
    assert (comp.folder / "metrics.md").read_text().count("| gain |") == 1

    from labutils.widgets import TransferPanel

    panel = TransferPanel("gain", out_dir=tmp_path)
    assert "floor" in panel.controls and panel.config().method == "gain"
    panel.set(steps=2)
    panel.run()
    panel.wait(timeout=60)
    assert panel.error is None and panel.result.steps_done == 2 and panel.run_folder.is_dir()


def test_the_cli_reads_the_registry(gain_attempt, tmp_path, capsys):
    from labutils.__main__ import build_parser, main

    help_text = build_parser()._subparsers._group_actions[0].choices["transfer"].format_help()
    assert "options of gain only" in help_text and "--floor" in help_text
    assert main(["transfer", "--method", "gain", "--content", "moonlight_piano", "--style", "ode_violin",
                 "--floor", "0.01", "--steps", "2", "--out", str(tmp_path), "--quiet"]) == 0
    folder = capsys.readouterr().out.strip().splitlines()[-1]
    assert runs.load(folder).record["config"]["floor"] == 0.01
    assert main(["transfer", "--method", "caracalla-roebel", "--content", "moonlight_piano", "--style",
                 "ode_violin", "--floor", "0.01"]) == 2
    assert "it is an option of gain" in capsys.readouterr().err


def test_compare_takes_a_beta_list(tmp_path, capsys):
    from labutils.__main__ import main

    code = main(["compare", "--methods", "caracalla-roebel", "--content", "moonlight_piano", "--style", "ode_violin",
                 "--beta", "0.001,0.01", "--steps", "2", "--duration", "0.5", "--sample-rate", "8000", "--n-fft",
                 "128", "--hop", "64", "--filters", "2", "--kernel-sizes", "3", "--griffin-lim-iters", "2",
                 "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "| caracalla-roebel beta=0.001 |" in out and "| caracalla-roebel beta=0.01 |" in out


def test_compare_scores_each_method_at_its_own_duration(tmp_path):
    from labutils.config import CaracallaRoebelConfig

    tiny = dict(steps=1, sample_rate=8000, n_fft=128, hop_length=64, filters=2, kernel_sizes=(3,), griffin_lim_iters=2)
    comp = evaluate.compare("moonlight_piano", "ode_violin", out_dir=None, progress=False,
                            configs={"short": CaracallaRoebelConfig(duration=0.5, **tiny),
                                     "long": CaracallaRoebelConfig(duration=1.0, **tiny)})
    rate = evaluate.METRIC_RATE
    assert comp.clips["short"].numel() == pytest.approx(0.5 * rate, abs=2)
    assert comp.clips["long"].numel() == pytest.approx(1.0 * rate, abs=2)
    # a result identical to the content at its own duration keeps the melody perfectly
    assert comp.scores["long"]["chroma_to_content"] > 0.3


def test_find_matching_run_needs_the_whole_config(tmp_path, tiny_cfg):
    result = transfer.transfer("caracalla-roebel", "moonlight_piano", "ode_violin", tiny_cfg.replace(steps=2),
                               progress=False)
    folder = runs.save(result, out_dir=tmp_path)[0]
    same = tiny_cfg.replace(steps=2).as_dict()
    assert runs.find_matching(tmp_path, method="caracalla-roebel", content="moonlight_piano", style="ode_violin",
                              config=same) == folder
    for change in ({"steps": 3}, {"duration": 0.4}, {"domain": "waveform"}):
        other = tiny_cfg.replace(**{"steps": 2, **change}).as_dict()
        assert runs.find_matching(tmp_path, method="caracalla-roebel", content="moonlight_piano",
                                  style="ode_violin", config=other) is None


def test_library_leaves_the_allocator_alone():
    code = ("from labutils import optim, transfer; from labutils.config import CaracallaRoebelConfig as C; "
            "cfg = C(steps=1, sample_rate=8000, duration=0.5, n_fft=128, hop_length=64, filters=2, kernel_sizes=(3,), "
            "griffin_lim_iters=2, device='cpu'); "
            "transfer.transfer('caracalla-roebel', 'moonlight_piano', 'ode_violin', cfg, progress=False); "
            "print('tuned' if optim.allocator_tuned() else 'untouched')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "untouched", out.stderr


def test_speed_benchmark_peak_memory_is_its_own():
    # in a fresh process with glibc's defaults, so that memory freed before the benchmark goes back
    # to the OS: the benchmark's peak must not include the 512 MB block touched before it
    code = ("import resource, torch; from labutils import audio as A, speed; "
            "from labutils.config import CaracallaRoebelConfig as C; "
            "big = torch.ones(128 * 2**20); big += 1; del big; "
            "cfg = C(steps=1, sample_rate=8000, duration=0.5, n_fft=128, hop_length=64, filters=2, kernel_sizes=(3,), "
            "griffin_lim_iters=2, device='cpu'); "
            "c = A.load('moonlight_piano', sample_rate=8000, duration=0.5); s = A.load('ode_violin', sample_rate=8000, duration=0.5); "
            "r = speed.speed_benchmark('caracalla-roebel', c, s, cfg, steps=1, warmup=0, reference=False); "
            "print(r['peak_mem_mb'], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    if not Path("/proc/self/statm").exists():
        pytest.skip("no /proc/self/statm on this system")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    peak, lifetime = map(float, out.stdout.split())
    assert 0 < peak < lifetime - 300, (peak, lifetime)
