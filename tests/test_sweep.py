"""The sweep (issue 14): grid parsing, the CLI, resuming without redoing cells, the Dask executor.

Tiny settings (8 kHz, 0.5 s, 2 filters, 1 step) on one bundled triple; the rendered benchmark set
is hidden so that no probe is trained. Notebook: notebooks/06_exploring_attempt3.ipynb
"""
import json

import pytest

from labutils import audio as A
from labutils import sweep as SW
from labutils.errors import ConfigError, LabError

BASE = dict(steps=1, sample_rate=8000, duration=0.5, n_fft=256, hop_length=128, filters=2, kernel_sizes=(3,),
            griffin_lim_iters=2)
GRID = "statistic=per-frequency,time-frequency"
FLAGS = ["--steps", "1", "--sample-rate", "8000", "--duration", "0.5", "--n-fft", "256", "--hop", "128",
         "--filters", "2", "--kernel-sizes", "3", "--griffin-lim-iters", "2"]


@pytest.fixture(autouse=True)
def _no_rendered_set(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("LABUTILS_BENCHMARK_DIR", str(tmp_path_factory.getbasetemp() / "no-benchmark-here"))


@pytest.fixture(scope="module")
def triple():
    return A.benchmark_triples()[:1]


@pytest.fixture(scope="module")
def in_process(tmp_path_factory, triple):
    return SW.sweep(GRID, base=BASE, triples=triple, out_dir=tmp_path_factory.mktemp("sweep"), progress=False)


def test_parse_grid():
    grid = SW.parse_grid("statistic=per-frequency,time-frequency beta=0.001,0.01 style_kernel_sizes=3/5,all")
    assert grid == {"statistic": ["per-frequency", "time-frequency"], "beta": [0.001, 0.01],
                    "style_kernel_sizes": [(3, 5), ()]}
    assert len(SW.cells(grid)) == 8
    assert SW.cell_label(SW.cells(grid)[0]) == "statistic=per-frequency beta=0.001 style_kernel_sizes=3/5"
    for bad in ("nonsense=1", "statistic", "steps=many", ""):
        with pytest.raises(ConfigError):
            SW.parse_grid(bad)


def test_sweep_writes_its_reports(in_process):
    folder = in_process.folder
    for name in ("cells.csv", "summary.md", "summary.csv", "pareto.png", "spec.json", "rows.jsonl"):
        assert (folder / name).is_file(), name
    assert set(in_process.means) == {"statistic=per-frequency", "statistic=time-frequency"}
    assert "content copied" in in_process.calibration
    lines = (folder / "cells.csv").read_text().splitlines()
    assert len(lines) == 1 + len(in_process.rows) and len(in_process.rows) == 2 + len(in_process.calibration)
    assert "| statistic=time-frequency |" in (folder / "summary.md").read_text()
    assert in_process.best in in_process.means
    assert all((folder / r["audio"]).is_file() for r in in_process.rows)


def test_sweep_resumes_without_rerunning_finished_cells(tmp_path, triple, monkeypatch):
    calls = []
    real = SW.run_task

    def counted(task):
        calls.append(task.labels)
        if len(calls) == 2:
            raise KeyboardInterrupt  # interrupted after the first task
        return real(task)

    monkeypatch.setattr(SW, "run_task", counted)
    with pytest.raises(KeyboardInterrupt):
        SW.sweep(GRID, base=BASE, triples=triple, out_dir=tmp_path, progress=False)
    first = calls[0]
    calls.clear()
    monkeypatch.setattr(SW, "run_task", lambda task: calls.append(task.labels) or real(task))
    again = SW.sweep(GRID, base=BASE, triples=triple, out_dir=tmp_path, progress=False)  # same sweep: same folder
    assert first not in calls and len(calls) == 2 and (again.ran, again.skipped) == (2, 1)
    calls.clear()
    done = SW.sweep("", resume=again.folder, progress=False)
    assert calls == [] and done.ran == 0 and done.means.keys() == again.means.keys()


def test_dask_executor_gives_the_same_scores(tmp_path, triple, in_process):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        result = SW.sweep(GRID, base=BASE, triples=triple, out_dir=tmp_path, progress=False,
                          executor=SW.DaskExecutor(client=client))
    assert result.ran == 3
    for label, means in in_process.means.items():
        for key in ("chroma_to_content", "timbre_gain_truth", "mfcc_to_style"):
            assert result.means[label][key] == pytest.approx(means[key], rel=1e-4, abs=1e-6), (label, key)


def test_cli_sweep_and_rerun_skips(tmp_path, capsys, in_process):
    from labutils.__main__ import main

    args = ["sweep", "--grid", GRID, "--triples", "1", "--out", str(tmp_path), "--quiet", *FLAGS]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "note:" in err and "bundled triples" in err
    assert "3 tasks run, 0 already done" in out and "| statistic=per-frequency |" in out
    folder = out.strip().splitlines()[-1]
    assert json.loads(open(f"{folder}/spec.json").read())["source"] == "bundled triples"
    assert main(args) == 0
    assert "0 tasks run, 3 already done" in capsys.readouterr().out


def test_cli_sweep_refuses_bad_input(tmp_path, capsys):
    from labutils.__main__ import main

    assert main(["sweep", "--out", str(tmp_path)]) == 2
    assert main(["sweep", "--grid", "statistic=gram", "--out", str(tmp_path), *FLAGS]) == 2
    assert main(["sweep", "--grid", GRID, "--split", "train", "--out", str(tmp_path)]) == 2
    assert main(["sweep", "--grid", GRID, "--executor", "ftp://x", "--triples", "1", "--out", str(tmp_path),
                 "--quiet", *FLAGS]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 4


def test_executor_spec():
    assert isinstance(SW.make_executor(None), SW.InProcess)
    with pytest.raises(ConfigError):
        SW.make_executor("ftp://nowhere")
    with pytest.raises(LabError):
        SW.make_executor("dask://127.0.0.1:1")  # nothing listens there


def _benchmark_folder(tmp_path, *, csv_only=False):
    """A quality-benchmark folder as compare --benchmark writes it: one method row, calibration rows."""
    folder = tmp_path / "20261202-000000_benchmark_test-2triples__sampler"
    folder.mkdir()
    means = {"sampler": {"chroma_to_content": 0.9, "timbre_gain_truth": 0.6, "success": 0.5},
             "content copied": {"chroma_to_content": 1.0, "timbre_gain_truth": 0.0, "success": 0.0}}
    if csv_only:
        (folder / "summary.csv").write_text("name,chroma_to_content,success,timbre_gain_truth\n"
                                            "sampler,0.9,0.5,0.6\ncontent copied,1.0,0.0,0.0\n")
    else:
        (folder / "summary.json").write_text(json.dumps({"split": "test", "triples": [{}, {}], "means": means}))
    return folder


def test_pareto_plot_draws_a_benchmark_folders_method_rows(tmp_path, in_process, capsys):
    folder = _benchmark_folder(tmp_path)
    rows = SW.benchmark_rows(folder)
    assert rows == {"sampler (benchmark, test, 2 triples)": {"chroma_to_content": 0.9, "timbre_gain_truth": 0.6,
                                                              "success": 0.5}}
    (tmp_path / "csv").mkdir()
    csv_folder = _benchmark_folder(tmp_path / "csv", csv_only=True)
    assert SW.benchmark_rows(csv_folder, suffix="") == {"sampler": {"chroma_to_content": 0.9, "success": 0.5,
                                                                     "timbre_gain_truth": 0.6}}
    assert SW.benchmark_rows(folder, methods=["ddsp"]) == {}
    assert SW.find_benchmark("__sampler", out_dir=tmp_path) == folder
    assert SW.find_benchmark("__nothing", out_dir=tmp_path) is None
    with pytest.raises(LabError):
        SW.benchmark_rows(tmp_path / "csv" / "missing")
    fig = SW.pareto_plot(in_process.means, in_process.calibration, extra=rows)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "sampler (benchmark, test, 2 triples)" in texts and "content copied" in texts
    # the CLI: a finished sweep resumed with --compare-with redraws its plot and runs nothing
    from labutils.__main__ import main

    png = in_process.folder / "pareto.png"
    before = png.stat().st_mtime_ns
    assert main(["sweep", "--resume", str(in_process.folder), "--compare-with", str(folder), "--quiet"]) == 0
    assert "0 tasks run" in capsys.readouterr().out and png.stat().st_mtime_ns != before
    assert main(["sweep", "--resume", str(in_process.folder), "--compare-with", str(tmp_path / "nope"),
                 "--quiet"]) == 2


def test_axis_table_averages_each_value_over_its_cells(tmp_path, in_process):
    assert SW.axis_table(in_process) == ""  # one axis: the summary table says it all
    grid = {"statistic": ["per-frequency", "time-frequency"], "beta": [1.0, 10.0]}
    (tmp_path / "spec.json").write_text(json.dumps({"method": "caracalla-roebel", "grid": grid}))
    cells = {SW.cell_label(v): v for v in SW.cells(grid)}
    score = {"statistic=per-frequency beta=1": 0.2, "statistic=per-frequency beta=10": 0.4,
             "statistic=time-frequency beta=1": 0.6, "statistic=time-frequency beta=10": 1.0}
    means = {label: {"success": score[label], "chroma_to_content": 0.9, "timbre_gain_truth": 0.1,
                     "goal_met": 0.0} for label in cells}
    result = SW.SweepResult(folder=tmp_path, rows=[{"timbre_gain_truth": 0.1}], means=means, calibration={},
                            best=None, seconds=0.0, ran=0, skipped=0, cells=cells)
    lines = SW.axis_table(result).splitlines()
    assert lines[0] == "| axis | value | cells | success | chroma_to_content | timbre_gain_truth | goal_met |"
    assert "| statistic | per-frequency | 2 | 0.300 | 0.900 | 0.100 | 0.000 |" in lines
    assert "| beta | 10 | 2 | 0.700 | 0.900 | 0.100 | 0.000 |" in lines and len(lines) == 6
