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


def test_help_imports_no_torch_and_says_each_meaning_once():
    """`--help` needs the parser only: no torch (it took 6.9 s to print); each set of attempts has
    one heading; a flag that means different things to two attempts says both; examples at the end."""
    code = ("import sys, contextlib, io\n"
            "from labutils.__main__ import main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            "    try:\n"
            "        main(['transfer', '--help'])\n"
            "    except SystemExit:\n"
            "        pass\n"
            "heavy = sorted(m for m in ('torch', 'matplotlib', 'librosa', 'transformers') if m in sys.modules)\n"
            "print('HEAVY', heavy)\n"
            "print(out.getvalue())\n")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout, out.stdout.splitlines()[0]
    text = out.stdout
    headings = [line for line in text.splitlines() if line.startswith("options of")]
    assert len(headings) == len(set(headings)), headings
    flat = " ".join(text.split())
    assert "vgg19: VGG layers for the content loss; wav2vec2: encoder layers" in flat
    assert "caracalla-roebel: stacked random conv layers" in flat and "ddsp: MLP blocks of the decoder" in flat
    assert "wav2vec2: auto (the Hugging Face model" in flat
    assert "examples:" in text and "python -m labutils transfer --content" in text


def test_sigterm_saves_the_steps_done_as_a_partial_run(tmp_path):
    """A `timeout` or a closed terminal sends SIGTERM: the run ends as with Ctrl-C, its steps saved."""
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "labutils", "transfer", "--content", "moonlight_piano",
                             "--style", "ode_violin", "--steps", "100000", "--duration", "0.5", "--sample-rate",
                             "8000", "--n-fft", "128", "--hop", "64", "--filters", "4", "--kernel-sizes", "3,5",
                             "--out", str(tmp_path)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline, seen = time.time() + 120, ""
        # the progress bar appears when the loop begins (after the set-up); give it a few steps more
        while time.time() < deadline and proc.poll() is None and "%|" not in seen:
            seen += os.read(proc.stderr.fileno(), 4096).decode(errors="replace")
        assert "%|" in seen, f"the run never started: {seen}"
        time.sleep(3)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, seen + stderr
    folder = Path(stdout.strip().splitlines()[-1])
    record = json.loads((folder / "config.json").read_text())
    assert record["partial"] and record["interrupted"] and record["steps_done"] >= 1, record
    assert (folder / "result.wav").is_file()


def test_progress_in_a_piped_log_is_a_few_lines(capsys):
    """tqdm on a pipe: not ten redraws a second but one line every LOG_PROGRESS_EVERY_S seconds."""
    import torch

    from labutils import optim

    x = torch.zeros(3)
    start = __import__("time").perf_counter()

    def slow_loss(p):
        __import__("time").sleep(0.004)
        total = (p - 1).square().sum().reshape(1)
        return {"total": total, "content": total, "style": total * 0}

    optim.optimise(x, slow_loss, steps=300, progress=True)
    seconds = __import__("time").perf_counter() - start
    err = capsys.readouterr().err
    redraws = err.count("\r") + err.count("\n")
    assert seconds > 1.0 and redraws <= 4, (redraws, err[-300:])


def test_ddsp_says_when_the_style_is_unpitched(tmp_path):
    """A drum loop as attempt 4's style: a note about the style (not only about the content)."""
    out = cli("transfer", "--method", "ddsp", "--content", "ode_flute", "--style", "drums_loop", "--steps", "2",
              "--duration", "1", "--sample-rate", "16000", "--harmonics", "24", "--noise-bands", "33", "--hidden", "32",
              "--fft-sizes", "1024,512,256,128", "--n-fft", "512", "--hop", "128", "--out", str(tmp_path), "--quiet")
    assert out.returncode == 0, out.stderr
    notes = [line for line in out.stderr.splitlines() if line.startswith("note:")]
    assert any("style looks unpitched or polyphonic" in line for line in notes), out.stderr
    assert not any("content looks polyphonic" in line for line in notes), out.stderr
    record = json.loads((Path(out.stdout.strip().splitlines()[-1]) / "config.json").read_text())
    assert "style looks unpitched" in record["weights"]["note"]
