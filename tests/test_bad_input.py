"""The lab tried with bad and unusual input through the CLI: one clear line, exit code 2, and
nothing already in the output folder changed; valid unusual files just work."""
import hashlib
import re
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT, cli, tone
TINY = ["--steps", "2", "--duration", "0.5", "--sample-rate", "8000", "--n-fft", "128", "--hop", "64",
        "--filters", "4", "--kernel-sizes", "3,5", "--quiet"]


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def out(tmp_path):
    """An output folder that already holds an earlier run, which must survive untouched."""
    folder = tmp_path / "outputs"
    earlier = folder / "20260101-000000_caracalla-roebel_a__b"
    earlier.mkdir(parents=True)
    (earlier / "result.wav").write_bytes(b"earlier result")
    (earlier / "config.json").write_text("{}")
    return folder


def make_files(d: Path) -> dict[str, Path]:
    files = {}
    files["missing"] = d / "missing.wav"
    files["directory"] = d / "a_folder"
    files["directory"].mkdir()
    files["text"] = d / "text.wav"
    files["text"].write_text("this is not audio")
    sf.write(str(d / "full.wav"), tone(seconds=1.0, rate=8000), 8000)
    files["truncated"] = d / "truncated.wav"
    files["truncated"].write_bytes((d / "full.wav").read_bytes()[:40])
    files["zero_length"] = d / "zero.wav"
    files["zero_length"].write_bytes(b"")
    files["silence"] = d / "silence.wav"
    sf.write(str(files["silence"]), np.zeros(8000, np.float32), 8000)
    files["one_ms"] = d / "one_ms.wav"
    sf.write(str(files["one_ms"]), tone(seconds=0.001, rate=44100), 44100)
    files["nan"] = d / "nan.wav"
    data = tone(seconds=0.5, rate=8000)
    data[10] = np.nan
    sf.write(str(files["nan"]), data, 8000, subtype="FLOAT")
    # valid but unusual
    files["eight_channels"] = d / "eight.wav"
    sf.write(str(files["eight_channels"]), tone(seconds=0.6, rate=8000, channels=8), 8000)
    files["8khz"] = d / "low.wav"
    sf.write(str(files["8khz"]), tone(seconds=0.6, rate=8000), 8000)
    files["96khz_24bit"] = d / "high.wav"
    sf.write(str(files["96khz_24bit"]), tone(seconds=0.6, rate=96000), 96000, subtype="PCM_24")
    files["mp3"] = d / "clip.mp3"
    sf.write(str(files["mp3"]), tone(seconds=0.6, rate=44100), 44100, format="MP3")
    files["flac"] = d / "clip.flac"
    sf.write(str(files["flac"]), tone(seconds=0.6, rate=22050), 22050, subtype="PCM_16")
    return files


BAD_FILES = {
    "missing": "no such file", "directory": "directory", "text": "cannot be read as audio",
    "truncated": "truncated.wav", "zero_length": "empty", "silence": "silent", "one_ms": "at least",
    "nan": "NaN",
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_give_one_line_and_exit_2(tmp_path, out, case):
    files = make_files(tmp_path)
    before = snapshot(out)
    result = cli("transfer", "--content", str(files[case]), "--style", "ode_violin", "--out", str(out), *TINY)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and BAD_FILES[case] in lines[0], lines
    assert snapshot(out) == before


@pytest.mark.parametrize("case", ["eight_channels", "8khz", "96khz_24bit", "mp3", "flac"])
def test_valid_unusual_files_just_work(tmp_path, out, case):
    files = make_files(tmp_path)
    before = snapshot(out)
    result = cli("transfer", "--content", str(files[case]), "--style", str(files["8khz"]), "--out", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    folder = Path(result.stdout.strip().splitlines()[-1])
    assert (folder / "result.wav").is_file() and folder.parent == out
    after = snapshot(out)
    assert all(after[k] == v for k, v in before.items())


@pytest.mark.parametrize("flag,value,needle", [
    ("--lr", "-0.1", "lr"), ("--lr", "0", "lr"), ("--lr", "nan", "lr"),
    ("--steps", "-5", "steps"), ("--steps", "0", "steps"), ("--steps", "ten", "steps"),
    ("--beta", "-1", "beta"), ("--beta", "nan", "beta"), ("--alpha", "-1", "alpha"),
    ("--filters", "0", "filters"), ("--duration", "0", "duration"), ("--sample-rate", "-8000", "sample_rate"),
    ("--n-fft", "0", "n_fft"), ("--hop", "0", "hop"), ("--compression", "inf", "compression"),
    ("--kernel-sizes", "4,6", "odd"), ("--layers", "7", "layers"), ("--domain", "time", "domain"),
    ("--optimizer", "sgd", "optimizer"), ("--method", "magic", "unknown method"),
])
def test_bad_hyperparameters_give_one_line_and_exit_2(out, flag, value, needle):
    before = snapshot(out)
    args = ["transfer", "--content", "moonlight_piano", "--style", "ode_violin", "--out", str(out), *TINY, flag, value]
    result = cli(*args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and needle in lines[0], result.stderr
    assert snapshot(out) == before


def test_unknown_clip_name(out):
    result = cli("transfer", "--content", "moonlight_kazoo", "--style", "ode_violin", "--out", str(out), *TINY)
    assert result.returncode == 2 and "labutils examples" in result.stderr


def test_out_that_is_a_file_or_cannot_be_written(tmp_path):
    a_file = tmp_path / "not_a_folder"
    a_file.write_text("keep me")
    for target in (a_file, a_file / "below"):
        result = cli("transfer", "--content", "moonlight_piano", "--style", "ode_violin", "--out", str(target), *TINY)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and "--out" in lines[0], result.stderr
    assert a_file.read_text() == "keep me"


def test_two_runs_started_in_the_same_second_write_two_folders(out):
    args = [sys.executable, "-m", "labutils", "transfer", "--content", "moonlight_piano", "--style", "ode_violin",
            "--out", str(out), *TINY]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
             for _ in range(2)]
    folders = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr
        folders.append(stdout.strip().splitlines()[-1])
    assert folders[0] != folders[1] and all(Path(f).is_dir() for f in folders)


# ----------------------------------------------------------------------- lengths that do what they say
@pytest.mark.parametrize("role", ["content", "style"])
def test_a_clip_shorter_than_the_rule_is_refused_in_cli_and_panel(tmp_path, out, role):
    """A 0.2 s clip is below every attempt's minimum (0.5 s): one line naming the rule, exit 2; the
    panel shows the same line and does not run."""
    short = tmp_path / "short.wav"
    sf.write(str(short), tone(seconds=0.2, rate=8000), 8000)
    pair = {"content": "moonlight_piano", "style": "ode_violin", role: str(short)}
    before = snapshot(out)
    result = cli("transfer", "--content", pair["content"], "--style", pair["style"], "--out", str(out), *TINY)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "short.wav" in lines[0] and "lasts 0.200 s but at least 0.5 s are needed" in lines[0], lines
    assert snapshot(out) == before

    from labutils.config import CaracallaRoebelConfig
    from labutils.widgets import TransferPanel

    cfg = CaracallaRoebelConfig(steps=2, sample_rate=8000, duration=0.5, n_fft=128, hop_length=64, filters=4,
                                kernel_sizes=(3, 5), device="cpu")
    panel = TransferPanel("caracalla-roebel", config=cfg, out_dir=out, **{k: v for k, v in pair.items()})
    panel.run()
    assert not panel.running and panel.result is None
    assert "lasts 0.200 s but at least 0.5 s are needed" in panel.status.value
    assert snapshot(out) == before


def test_duration_below_the_rule_and_beyond_the_clip(out):
    result = cli("transfer", "--content", "moonlight_piano", "--style", "ode_violin", "--out", str(out),
                 *TINY, "--duration", "0.2")
    assert result.returncode == 2 and "needs clips of at least 0.5 s" in result.stderr, result.stderr
    help_text = " ".join(cli("transfer", "--help").stdout.split())
    assert "a shorter clip is refused: at least 0.5 s" in help_text and "zero-padded" not in help_text
    # asking for more than the clip holds: the whole clip, and a line that says so
    result = cli("transfer", "--content", "moonlight_piano", "--style", "ode_violin", "--out", str(out),
                 *TINY, "--duration", "60")
    assert result.returncode == 0, result.stderr
    assert "note: content moonlight_piano: 5.00 s used, not the 60 s asked" in result.stderr


def test_offset_seconds_and_auto_are_used_and_recorded(tmp_path, out):
    """Your own track: --offset SECONDS or auto (the loudest window of --duration seconds)."""
    from labutils import audio as A

    rate = 8000
    track = np.concatenate([0.01 * tone(seconds=3.0, rate=rate), tone(seconds=1.0, rate=rate),
                            0.01 * tone(seconds=2.0, rate=rate)])
    path = tmp_path / "my track.ogg"
    sf.write(str(path), track, rate, format="OGG", subtype="VORBIS")
    assert abs(A.loudest_offset(path, duration=1.0) - 3.0) <= 0.06
    result = cli("transfer", "--content", str(path), "--offset", "auto", "--style", "ode_violin",
                 "--style-offset", "1.5", "--out", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    record = __import__("json").loads((Path(result.stdout.strip().splitlines()[-1]) / "config.json").read_text())
    # the loudest 0.5 s (--duration of TINY) lies within the loud second at 3-4 s
    assert 3.0 <= record["content_offset_s"] <= 3.5 and record["style_offset_s"] == 1.5
    assert record["config"]["offset"] == "auto" and record["config"]["style_offset"] == "1.5"
    for bad in ("-1", "loud"):
        result = cli("transfer", "--content", str(path), "--offset", bad, "--style", "ode_violin", "--out", str(out),
                     *TINY)
        assert result.returncode == 2 and "offset=" in result.stderr and "auto" in result.stderr, result.stderr
    result = cli("transfer", "--content", str(path), "--offset", "30", "--style", "ode_violin", "--out", str(out), *TINY)
    assert result.returncode == 2 and "after offset 30" in result.stderr, result.stderr


def test_dry_run_says_how_long_and_saves_nothing(out):
    before = snapshot(out)
    result = cli("transfer", "--content", "moonlight_piano", "--style", "ode_violin", "--out", str(out), *TINY,
                 "--dry-run")
    assert result.returncode == 0, result.stderr
    assert re.search(r"about \d+ (s|min) \(2 steps x [\d.]+ s measured", result.stdout), result.stdout
    assert snapshot(out) == before
