"""The page to listen to (labutils.report): one self-contained HTML file, its numbers the CSV's.

Builds a benchmark folder of the shape `compare --benchmark` writes (two triples, short tones as
clips, scores made up but written through evaluate's own CSV writer), so it runs in a second.
"""
from __future__ import annotations

import base64
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from labutils import evaluate as E
from labutils import report as R

SR = 22050
ROWS = ("ddsp", "content copied", "style copied", "truth", "equaliser")


def _tone(freq: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.4 * np.sin(2 * np.pi * freq * t) * np.exp(-t)).astype(np.float32)


def _scores(i: int, row: str) -> dict[str, float]:
    rng = np.random.default_rng([i, ROWS.index(row)])
    return {"success": float(row == "truth" or (row == "ddsp" and i == 0)), "success_chroma": float(row == "truth"),
            "probe_style_prob": float(rng.uniform()), "chroma_to_content": float(rng.uniform()),
            "f0_off_50c": float(rng.uniform()), "f0_error_cents": float(rng.uniform(0, 900)),
            "note_f1": math.nan if i == 1 else float(rng.uniform())}


def fake_benchmark(root: Path, *, triples: int = 2, seconds: float = 1.0) -> Path:
    """A benchmark folder as quality_benchmark writes it: summary.json/.csv/.md and one compare
    folder per triple with its wavs and metrics.json."""
    folder = root / "bench"
    folder.mkdir()
    names, per_row = [], {}
    for i in range(triples):
        sub = folder / f"compare_{i}"
        sub.mkdir()
        clip_names = {"content": f"melody{i}_piano", "style": f"other{i}_violin", "truth": f"melody{i}_violin"}
        scores = {row: _scores(i, row) for row in ROWS}
        for k, (label, f) in enumerate([("content", 220), ("style", 330), ("truth", 220), ("ddsp", 225),
                                        ("equaliser", 221)]):
            sf.write(sub / f"{label}.wav", _tone(f * (1 + 0.1 * i), seconds), SR, subtype="PCM_16")
        (sub / "metrics.json").write_text(json.dumps({"names": clip_names, "scores": scores}))
        names.append(sub.name)
        for row, s in scores.items():
            per_row.setdefault(row, []).append(s)
    means = {row: {k: E._mean([r[k] for r in rs]) for k in rs[0]} for row, rs in per_row.items()}
    E._write_csv(folder / "summary.csv", means)
    (folder / "summary.md").write_text("Split **fake**: 2 triples.\n\n" + E.metrics_table(means, keys=E.YARDSTICK_KEYS))
    (folder / "summary.json").write_text(json.dumps({
        "split": "fake", "means": means, "folders": names,
        "triples": [{"monophonic": str(i == 0)} for i in range(triples)]}))
    return folder


def page_numbers(text: str, table_id: str = "summary") -> dict[tuple[str, str], str]:
    """(row, key) -> the text of each cell of the page's summary table."""
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', text, re.S).group(1)
    return {(m[0], m[1]): m[2] for m in re.findall(r'<td data-row="([^"]*)" data-key="([^"]*)">([^<]*)</td>', table)}


def csv_numbers(path: Path) -> dict[tuple[str, str], str]:
    out = {}
    for label, row in R.read_csv_table(path).items():
        for key, value in row.items():
            if key != "name":
                out[(label, key)] = f"{float(value):.3f}" if value not in ("", "nan") else ""
    return out


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    folder = fake_benchmark(tmp_path_factory.mktemp("report"))
    R.benchmark_report(folder)
    return folder


def test_benchmark_page_is_one_file_with_the_csv_numbers(bench: Path):
    text = (bench / R.REPORT_NAME).read_text()
    shown = page_numbers(text)
    expected = csv_numbers(bench / "summary.csv")
    assert shown and all(shown[k] == expected[k] for k in shown), [(k, shown[k], expected[k]) for k in shown
                                                                    if shown[k] != expected[k]]
    assert {row for row, _ in shown} == set(ROWS) and ("ddsp", "f0_off_50c") in shown
    # self-contained: every src is a data: URI, nothing else is fetched
    assert all(src.startswith("data:") for src in re.findall(r'\bsrc="([^"]*)"', text))
    assert "http" not in text.replace("http-equiv", "")


def test_every_player_holds_the_clip_it_names(bench: Path):
    text = (bench / R.REPORT_NAME).read_text()
    players = re.findall(r'<audio controls preload="metadata" data-seconds="([0-9.]+)" src="data:audio/ogg;base64,'
                         r'([^"]+)"', text)
    assert len(players) == 2 * 5          # content, style, truth, the attempt, the equaliser per triple
    for seconds, b64 in players:
        x, rate = sf.read(io.BytesIO(base64.b64decode(b64)))
        assert rate == SR and x.shape[0] / rate == pytest.approx(float(seconds), abs=0.01)
        assert float(seconds) == pytest.approx(1.0, abs=0.01) and np.abs(x).max() > 0.1
    first, _ = sf.read(io.BytesIO(base64.b64decode(players[0][1])))
    content, _ = sf.read(bench / "compare_0" / "content.wav")
    assert np.corrcoef(first[: content.size], content)[0, 1] > 0.95        # the content's own notes, compressed
    assert len(re.findall(r'<img loading="lazy" alt="mel spectrogram[^"]*" src="data:image/png;base64,', text)) == 10


def test_success_is_marked_where_the_scores_say_so(bench: Path):
    text = (bench / R.REPORT_NAME).read_text()
    groups = text.split('<div class="group">')[1:]
    assert len(groups) == 2 and "polyphonic" in groups[1] and "polyphonic" not in groups[0]
    # triple 0: the attempt and the truth succeed; triple 1: only the truth
    marked = [re.findall(r'<b>([^<]+)</b> <span class="mark yes">', g) for g in groups]
    assert marked == [["truth", "ddsp"], ["truth"]]
    assert [g.count('class="cell ok"') for g in groups] == [2, 1]
    # the calibration rows' scores sit under the clip they copy
    content_cell = groups[0].split('<div class="cell')[2]
    assert content_cell.startswith('"><h4>content: melody0_piano') and "<b>content copied</b>" in content_cell


def test_comparison_page_from_a_compare_folder(bench: Path):
    sub = bench / "compare_0"
    E._write_csv(sub / "metrics.csv", json.loads((sub / "metrics.json").read_text())["scores"])
    page = R.comparison_report(sub)
    shown = page_numbers(page.read_text())
    expected = csv_numbers(sub / "metrics.csv")
    assert shown and all(shown[k] == expected[k] for k in shown)
