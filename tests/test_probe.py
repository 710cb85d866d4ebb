"""The rendered benchmark set, the instrument probe and the calibration rows (issue 12).

Renders the small subset (4 instruments x 3 melodies + probe training material, 22.05 kHz)
into a temporary folder with FluidSynth, in a few seconds; skipped, with the reason, where
FluidSynth, the FluidR3 soundfont or mido is missing.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from labutils import audio as A
from labutils import metrics as M
from labutils import probe as P
from labutils.errors import AudioError

ROOT = Path(__file__).resolve().parent.parent
RENDER = ROOT / "data" / "render.py"
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SR = 22050
SECONDS = 2.0  # clips scored at the length the CLI's quick check uses


def _missing() -> str | None:
    if shutil.which("fluidsynth") is None or not SOUNDFONT.is_file():
        return "FluidSynth or its soundfont is missing: apt-get install fluidsynth fluid-soundfont-gm"
    if importlib.util.find_spec("mido") is None:
        return "mido is missing: pip install 'mido>=1.3,<2'"
    return None


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("benchmark")
    subprocess.run([sys.executable, str(RENDER), "--benchmark", "--subset", "small", "--out", str(out),
                    "--sample-rate", str(SR)], check=True, capture_output=True, text=True, cwd=ROOT)
    return out


@pytest.fixture(scope="module")
def probe(small_set: Path) -> P.Probe:
    return P.load_probe(root=small_set)


def _load(path: Path) -> torch.Tensor:
    return A.load(path, sample_rate=SR, duration=SECONDS)


def test_render_writes_clips_and_two_disjoint_splits(small_set: Path):
    cat = json.loads((small_set / "catalog.json").read_text())
    dev, test = (cat["splits"][s] for s in ("dev", "test"))
    assert not set(dev["style_instruments"]) & set(test["style_instruments"])
    assert not {t["style"].split("_")[-1] for t in dev["triples"]} & {t["style"].split("_")[-1] for t in test["triples"]}
    in_triples = {name.split("_")[0] for s in (dev, test) for t in s["triples"] for name in t.values()}
    train = A.benchmark_clips(role="train", root=small_set)
    assert train and not {c["melody"] for c in train} & in_triples     # probe material is in no triple
    assert {c["instrument"] for c in train} == set(cat["instruments"])   # for every instrument
    triples = A.benchmark_set("test", root=small_set)
    assert len(triples) == len(test["triples"]) >= 4
    for t in triples:
        assert t["truth_name"] == f"{t['content_melody']}_{t['style_instrument']}"
        assert t["content_instrument"] != t["style_instrument"] and t["content_melody"] != t["style_melody"]
        for key in ("content", "style", "truth"):
            x = A.load(t[key], sample_rate=SR, normalise=False)
            assert 0 < x.numel() <= 6 * SR and float(x.abs().max()) > 0.5


def test_second_soundfont_split_has_the_test_triples_and_their_scores(small_set: Path):
    if not Path("/usr/share/sounds/sf3/MuseScore_General_Full.sf3").is_file():
        pytest.skip("the MuseScore General soundfont is missing: apt-get install musescore-general-soundfont")
    test, second = A.benchmark_set("test", root=small_set), A.benchmark_set("test-musescore", root=small_set)
    dev, dev2 = A.benchmark_set("dev", root=small_set), A.benchmark_set("dev-musescore", root=small_set)
    assert len(second) == len(test) and len(dev2) == len(dev) > 0
    for a, b in list(zip(test, second)) + list(zip(dev, dev2)):
        assert b["truth_name"] == a["truth_name"] + "_musescore" and b["style_instrument"] == a["style_instrument"]
        assert b["content_notes"] == a["content_notes"] and b["truth_notes"] == a["truth_notes"]
        x, y = (A.load(t["truth"], sample_rate=SR, duration=SECONDS) for t in (a, b))
        assert float((x - y).abs().max()) > 0.1                               # another recording of the same notes
    train = {c["name"] for c in A.benchmark_clips(role="train", root=small_set)}
    assert train and not any(name.endswith("_musescore") for name in train)  # the probe never hears it


def test_transformations_the_probe_must_not_hear(probe: P.Probe, small_set: Path):
    x = _load(A.benchmark_set("test", root=small_set)[0]["content"]).numpy()
    versions = P.transformed(x, sample_rate=SR)
    assert set(versions) == {"pitch -3", "pitch +3", "stretch 0.8", "stretch 1.25", "reverb"}
    assert versions["pitch +3"].size == x.size and versions["reverb"].size == x.size
    assert versions["stretch 1.25"].size == pytest.approx(1.25 * x.size, rel=0.01)
    assert versions["stretch 0.8"].size == pytest.approx(0.8 * x.size, rel=0.01)
    up = M.crepe_f0(versions["pitch +3"], sample_rate=SR)[1]
    down = M.crepe_f0(x, sample_rate=SR)[1]
    assert np.median(1200 * np.log2(up / down)) == pytest.approx(300, abs=30)     # three semitones up
    ir = P.room_impulse(sample_rate=SR, rt60_s=1.0)
    tail = ir[int(0.5 * SR):int(0.6 * SR)]
    assert np.sum(ir ** 2) == pytest.approx(1.0) and 20 * np.log10(np.abs(tail).max() / np.abs(ir[:100]).max()) < -20
    clips = [(t["content"], t["content_instrument"]) for t in A.benchmark_set("test", root=small_set)[:2]]
    result = P.invariance(probe, clips)
    assert set(result) == {"unchanged", *versions} and all(r["n"] == 2 for r in result.values())
    assert result["unchanged"]["kept"] == probe.accuracy([(A.load(p, sample_rate=SR), i) for p, i in clips],
                                                         sample_rate=SR)


def test_missing_set_says_to_run_make_benchmark_data(tmp_path: Path):
    with pytest.raises(AudioError, match="make benchmark-data"):
        A.benchmark_set("test", root=tmp_path)
    with pytest.raises(AudioError, match="dev, test"):
        A.benchmark_set("train", root=tmp_path)


def test_render_without_fluidsynth_names_the_debian_packages(tmp_path: Path):
    if importlib.util.find_spec("mido") is None:
        pytest.skip("mido is missing: pip install 'mido>=1.3,<2'")
    run = subprocess.run([sys.executable, str(RENDER), "--benchmark", "--out", str(tmp_path)], capture_output=True,
                         text=True, env={**os.environ, "PATH": str(tmp_path)})
    assert run.returncode != 0
    assert "apt-get install fluidsynth fluid-soundfont-gm" in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_probe_names_the_instrument_of_unseen_melodies(probe: P.Probe, small_set: Path):
    clips = A.benchmark_clips(root=small_set)
    assert probe.accuracy([(_load(c["path"]), c["instrument"]) for c in clips], sample_rate=SR) >= 0.95
    triples = A.benchmark_set("test", root=small_set)
    assert probe.accuracy([(t["truth"], t["style_instrument"]) for t in triples]) >= 0.95  # full clips, from paths
    proba = probe.predict_proba(_load(clips[0]["path"]), sample_rate=SR)
    assert set(proba) == set(probe.instruments) and sum(proba.values()) == pytest.approx(1.0)


def test_probe_is_cached_beside_the_set_and_reproducible(probe: P.Probe, small_set: Path):
    assert (small_set / f"probe-{probe.key}.joblib").is_file()
    again = P.load_probe(root=small_set)
    assert again.key == probe.key
    retrained = P.load_probe(root=small_set, retrain=True)
    np.testing.assert_allclose(retrained.model[-1].coef_, probe.model[-1].coef_, rtol=1e-6, atol=1e-8)


def test_calibration_rows_get_the_scores_they_must(probe: P.Probe, small_set: Path):
    outcome = {row: [] for row in M.CALIBRATION_ROWS}
    for t in A.benchmark_set("test", root=small_set)[::2]:                # one triple per style instrument
        content, style, truth = (_load(t[k]) for k in ("content", "style", "truth"))
        for row, result in M.calibration_clips(content, style, truth, sample_rate=SR).items():
            s = M.score(result, content=content, style=style, truth=truth, sample_rate=SR, probe=probe,
                        style_instrument=t["style_instrument"], content_instrument=t["content_instrument"],
                        content_notes=t["content_notes"], monophonic=t["monophonic"])
            outcome[row].append(s)
    success = {row: [s["success"] for s in scores] for row, scores in outcome.items()}
    assert all(v == 1.0 for v in success["truth"]), success
    assert all(v == 0.0 for v in success["content copied"]), success
    assert all(v == 0.0 for v in success["style copied"]), success       # other melody: chroma < 0.8
    assert sum(success["equaliser"]) == 0, success                         # measured: 0 of 8 (dev and test)
    assert all(s["logmel_closed_truth"] == pytest.approx(1.0) and s["lsd_to_truth_db"] == pytest.approx(0.0, abs=1e-6)
               for s in outcome["truth"])
    assert all(s["logmel_closed_truth"] == pytest.approx(0.0, abs=1e-9) for s in outcome["content copied"])
    # pitch against the score: the truth and the content keep it, the style (another melody) does not
    assert all(s["f0_off_50c"] <= M.SUCCESS_F0_OFF for row in ("truth", "content copied") for s in outcome[row])
    assert all(s["f0_off_50c"] > 0.5 and s["note_f1"] < 0.3 for s in outcome["style copied"])


def test_content_plus_a_small_noise_floor_is_not_a_success(probe: P.Probe, small_set: Path):
    rng = np.random.default_rng(0)
    for t in A.benchmark_set("test", root=small_set)[1::2]:
        content = _load(t["content"]).numpy()
        noisy = content + 10 ** (-40 / 20) * np.sqrt(np.mean(content ** 2)) * rng.standard_normal(content.size)
        s = M.score(noisy.astype(np.float32), content=content, style=_load(t["style"]), truth=_load(t["truth"]),
                    sample_rate=SR, probe=probe, style_instrument=t["style_instrument"])
        assert s["chroma_to_content"] > 0.9 and s["success"] == 0.0, (t["content_name"], s)


def test_quality_benchmark_cli_prints_probe_accuracy_and_calibration_rows(small_set, tmp_path):
    from conftest import cli

    env_dir = os.environ.get("LABUTILS_BENCHMARK_DIR")
    os.environ["LABUTILS_BENCHMARK_DIR"] = str(small_set)
    try:
        out = cli("compare", "--benchmark", "--split", "test", "--triples", "2", "--methods", "caracalla-roebel",
                  "--steps", "2", "--duration", "1", "--sample-rate", "8000", "--n-fft", "128", "--hop", "64",
                  "--filters", "2", "--kernel-sizes", "3", "--griffin-lim-iters", "2", "--out", str(tmp_path),
                  "--quiet")
    finally:
        if env_dir is None:
            os.environ.pop("LABUTILS_BENCHMARK_DIR")
        else:
            os.environ["LABUTILS_BENCHMARK_DIR"] = env_dir
    assert out.returncode == 0, out.stderr
    assert "Instrument probe top-1 accuracy: 100% on the" in out.stdout
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in out.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| |")}
    assert set(rows) == {"caracalla-roebel", "content copied", "style copied", "truth", "equaliser"}
    assert float(rows["content copied"]) == 0.0 and float(rows["style copied"]) == 0.0  # success column
    assert float(rows["truth"]) == 1.0
    assert "**caracalla-roebel**:" in out.stdout and "equaliser" in out.stdout
    summary = json.loads(next(Path(out.stdout.strip().splitlines()[-1]).glob("summary.json")).read_text())
    assert summary["split"] == "test" and summary["probe_accuracy"]["truth"] == 1.0


def test_readme_block_is_replaced_not_typed(tmp_path):
    from labutils import evaluate

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{evaluate.README_BEGIN}\nold table\n{evaluate.README_END}\nafter\n")
    (tmp_path / "summary.md").write_text("| | success |\n|---|---|\n| x | 0.500 |\n")
    evaluate.write_into_readme(tmp_path / "summary.md", readme)
    text = readme.read_text()
    assert "old table" not in text and "| x | 0.500 |" in text and text.startswith("intro") and text.endswith("after\n")


def test_readme_blocks_of_two_splits_are_replaced_apart(tmp_path):
    from labutils import evaluate

    b1, e1 = evaluate.readme_markers()
    b2, e2 = evaluate.readme_markers("test-musescore")
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{b1}\nold test\n{e1}\nb\n{b2}\nold musescore\n{e2}\nc\n")
    (tmp_path / "summary.md").write_text("| new musescore table |\n")
    evaluate.write_into_readme(tmp_path / "summary.md", readme, block="test-musescore")
    text = readme.read_text()
    assert "old test" in text and "old musescore" not in text and "| new musescore table |" in text
    assert text.endswith(f"{e2}\nc\n") and text.count(b1) == 1 and text.count(b2) == 1
