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
