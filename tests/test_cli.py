import json
from pathlib import Path

import pytest
from conftest import ROOT, cli


def test_examples_lists_every_clip():
    out = cli("examples")
    assert out.returncode == 0
    assert "moonlight_piano" in out.stdout and "drums_loop" in out.stdout


def test_transfer_end_to_end_on_a_one_second_clip(tmp_path):
    out = cli("transfer", "--method", "caracalla-roebel", "--content", "moonlight_piano", "--style", "ode_violin",
              "--steps", "5", "--duration", "1", "--sample-rate", "22050", "--filters", "8", "--out", str(tmp_path),
              "--quiet")
    assert out.returncode == 0, out.stderr
    folder = Path(out.stdout.strip().splitlines()[-1])
    assert folder.parent == tmp_path
    for name in ("result.wav", "config.json", "losses.csv", "spectrograms.png"):
        assert (folder / name).is_file()
    record = json.loads((folder / "config.json").read_text())
    assert record["config"]["filters"] == 8 and record["steps_done"] == 5


def test_batched_beta_list_writes_one_folder_per_value(tmp_path):
    out = cli("transfer", "--content", "moonlight_piano", "--style", "ode_violin", "--steps", "2", "--duration", "0.5",
              "--sample-rate", "8000", "--n-fft", "128", "--hop", "64", "--filters", "4", "--beta", "0.001,0.01,0.1",
              "--out", str(tmp_path), "--quiet")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.strip().splitlines()) == 3 and len(list(tmp_path.iterdir())) == 3


@pytest.mark.parametrize("args,needle", [
    (("--content", "no_such_clip", "--style", "ode_violin"), "bundled clip"),
    (("--content", "moonlight_piano", "--style", "ode_violin", "--lr", "-1"), "lr"),
    (("--content", "moonlight_piano", "--style", "ode_violin", "--steps", "0"), "steps"),
    (("--content", "moonlight_piano", "--style", "ode_violin", "--alpha", "nan"), "alpha"),
    (("--content", "moonlight_piano", "--style", "ode_violin", "--method", "magic"), "unknown method"),
    (("--content", "moonlight_piano", "--style", "ode_violin", "--domain", "time"), "domain"),
    (("--content", "moonlight_piano"), "--style"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, needle):
    out = cli("transfer", *args, "--out", str(tmp_path))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_file_and_bad_out(tmp_path):
    bad = tmp_path / "text.wav"
    bad.write_text("hello")
    out = cli("transfer", "--content", str(bad), "--style", "ode_violin", "--out", str(tmp_path / "o"))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "text.wav" in out.stderr
    out = cli("transfer", "--content", "moonlight_piano", "--style", "ode_violin", "--out", str(bad))
    assert out.returncode == 2 and "is a file" in out.stderr
    assert bad.read_text() == "hello"


def test_bench_prints_json():
    out = cli("bench", "--method", "caracalla-roebel", "--duration", "0.5", "--sample-rate", "8000", "--n-fft", "128",
              "--hop", "64", "--filters", "4", "--repeat", "2", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    for key in ("ms_per_step", "peak_mem_mb", "reference_ms_per_step", "speedup"):
        assert report[key] > 0
