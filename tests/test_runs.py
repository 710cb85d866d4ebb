import json
from importlib import metadata

import pytest
import torch

from labutils import LabError, runs, transfer


def test_run_folder_is_complete_and_reads_back(tmp_path, tiny_cfg):
    result = transfer.transfer("caracalla-roebel", "moonlight_piano", "ode_violin", tiny_cfg.replace(steps=3),
                               progress=False)
    folders = runs.save(result, out_dir=tmp_path)
    assert len(folders) == 1
    folder = folders[0]
    assert folder.name.endswith("_caracalla-roebel_moonlight_piano__ode_violin")
    for name in runs.FILES:
        assert (folder / name).stat().st_size > 0
    record = json.loads((folder / "config.json").read_text())
    assert record["config"]["steps"] == 3 and record["weights"]["pretrained"] is False
    assert record["versions"]["torch"] == metadata.version("torch") and record["device"] == "cpu"
    back = runs.load(folder)
    assert back.audio.shape[-1] == result.audio.shape[-1]
    assert torch.allclose(back.audio, result.audio[0], atol=2e-4)
    assert [int(r["step"]) for r in back.history] == [1, 2, 3]
    assert runs.list_runs(tmp_path)[0]["path"] == str(folder)


def test_two_runs_in_the_same_second_get_two_folders(tmp_path):
    a = runs.new_run_dir(tmp_path, method="m", content="c", style="s")
    b = runs.new_run_dir(tmp_path, method="m", content="c", style="s")
    assert a != b and a.is_dir() and b.is_dir()


def test_out_dir_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(LabError) as exc:
        runs.check_out_dir(tmp_path / "f")
    assert "is a file" in str(exc.value)


def test_batched_run_writes_one_folder_per_beta(tmp_path, tiny_cfg):
    result = transfer.transfer("caracalla-roebel", "moonlight_piano", "ode_violin", tiny_cfg.replace(steps=2),
                               betas=[0.001, 0.01, 0.1], progress=False)
    folders = runs.save(result, out_dir=tmp_path)
    assert len(folders) == 3
    betas = [json.loads((f / "config.json").read_text())["config"]["beta"] for f in folders]
    assert betas == [0.001, 0.01, 0.1]


def test_keep_saves_an_interrupted_run_and_then_stops_the_notebook(tmp_path, tiny_cfg, tiny_pair):
    """A notebook cell that runs an attempt with `runs.keep`: an interrupt saves the steps done as a
    partial run and then raises KeyboardInterrupt, so that Run All stops at that cell."""
    calls = []

    def interrupt_at_step_3(info, spec):
        calls.append(info.step)
        if info.step == 3:
            raise KeyboardInterrupt

    result = transfer.solve("caracalla-roebel", *tiny_pair, tiny_cfg.replace(steps=50), callback=interrupt_at_step_3,
                            every=1, progress=False)
    assert result.interrupted and result.steps_done == 3
    with pytest.raises(KeyboardInterrupt, match=r"interrupted after 3 of 50 steps; the partial run is saved in"):
        runs.keep(result, out_dir=tmp_path)
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    record = json.loads((folder / "config.json").read_text())
    assert record["partial"] and record["interrupted"] and record["steps_done"] == 3
    # a complete run is saved and returned; a run of no steps is not saved
    done = transfer.solve("caracalla-roebel", *tiny_pair, tiny_cfg.replace(steps=2), progress=False)
    assert runs.keep(done, out_dir=tmp_path).is_dir()
    done.steps_done, done.interrupted = 0, True
    with pytest.raises(KeyboardInterrupt, match="nothing was saved"):
        runs.keep(done, out_dir=tmp_path)
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2
    assert runs.steps_text(1) == "1 step" and runs.steps_text(2) == "2 steps"
