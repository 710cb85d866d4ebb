"""Attempts 1 (VGG-19) and 2 (Wav2Vec2 encoder): shapes, layer choice, the offline fallback, loss."""
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from labutils import ConfigError, nets, runs, transfer
from labutils.config import VGG19Config, Wav2Vec2Config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def vgg():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nets.VGGFeatures(layers=("conv1_1", "relu2_1", "conv3_1"), weights="random")


def test_vgg_feature_shapes_and_layer_selection(vgg):
    feats = vgg.features(torch.rand(2, 64, 40))
    assert [tuple(f.shape) for f in feats] == [(2, 64, 64, 40), (2, 128, 32, 20), (2, 256, 16, 10)]
    assert (feats[1] >= 0).all() and (feats[0] < 0).any()  # relu2_1 after the ReLU, conv1_1 before
    assert len(vgg.body) == 11 and all(not p.requires_grad for p in vgg.parameters())


def test_vgg_unknown_layer_is_a_clear_error():
    with pytest.raises(ConfigError) as exc:
        nets.VGGFeatures(layers=("conv9_9",), weights="random")
    assert "conv1_1" in str(exc.value)


def test_vgg_offline_fallback_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(nets, "_reachable", lambda host, timeout=3.0: False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.warns(UserWarning, match="RANDOM weights"):
        net = nets.VGGFeatures(layers=("conv1_1",), weights="auto")
    assert net.weights_info.pretrained is False and "offline" in net.weights_info.note


def test_vgg_local_weights_path(tmp_path):
    import torchvision

    model = torchvision.models.vgg19(weights=None)
    torch.save(model.state_dict(), tmp_path / "vgg19.pth")
    net = nets.VGGFeatures(layers=("conv1_1",), weights=str(tmp_path / "vgg19.pth"))
    assert net.weights_info.pretrained and torch.equal(net.body[0].weight, model.features[0].weight)
    with pytest.raises(ConfigError):
        nets.VGGFeatures(layers=("conv1_1",), weights=str(tmp_path / "missing.pth"))


def test_wav2vec2_encoder_shapes_order_and_offline_fallback(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.warns(UserWarning, match="RANDOM weights"):
        net = nets.Wav2Vec2Features(layers=(0, 2, 6), weights="auto")
    assert net.weights_info.pretrained is False and "dima806" in net.weights_info.name
    audio = torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    feats = net.features(audio)
    assert [tuple(f.shape) for f in feats] == [(2, 512, 3199), (2, 512, 799), (2, 512, 49)]
    # the model's own order on layer 0: conv, group norm, GELU
    first = net.conv_layers[0]
    x = (audio - audio.mean(-1, keepdim=True)) / torch.sqrt(audio.var(-1, keepdim=True) + 1e-7)
    expected = first.activation(first.layer_norm(first.conv(x[:, None])))
    assert torch.allclose(feats[0], expected, atol=1e-5)


def _tiny(method):
    if method == "vgg19":
        return VGG19Config(steps=4, sample_rate=8000, duration=0.5, n_fft=128, hop_length=64, weights="random",
                           content_layers=("conv2_1",), style_layers=("conv1_1", "conv2_1"), griffin_lim_iters=4,
                           lr=1.0, beta=10.0, device="cpu")
    return Wav2Vec2Config(steps=4, sample_rate=16000, duration=0.5, weights="random", lr=0.002, beta=10.0,
                          content_layers=("conv3",), style_layers=("conv1", "conv2"), device="cpu")


@pytest.mark.parametrize("method", ["vgg19", "wav2vec2"])
def test_a_few_steps_lower_the_loss(method):
    cfg = _tiny(method).replace(steps=6, init="noise")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = transfer.transfer(method, "moonlight_piano", "ode_violin", cfg, progress=False)
    totals = [h["total"][0] for h in result.history]
    assert totals[-1] < totals[0]
    assert result.audio.shape == (1, int(cfg.sample_rate * cfg.duration)) and torch.isfinite(result.audio).all()
    assert result.weights["pretrained"] is False


@pytest.mark.parametrize("method", ["vgg19", "wav2vec2"])
def test_run_folder_records_the_weights(method, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = transfer.transfer(method, "moonlight_piano", "ode_violin", _tiny(method), progress=False)
    folder = runs.save(result, out_dir=tmp_path)[0]
    record = json.loads((folder / "config.json").read_text())
    assert record["weights"]["pretrained"] is False and record["weights"]["source"].startswith("random")


@pytest.mark.parametrize("method", ["vgg19", "wav2vec2"])
def test_cli_end_to_end_on_one_second(method, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    extra = ["--sample-rate", "16000"] if method == "wav2vec2" else ["--sample-rate", "8000", "--n-fft", "256",
                                                                       "--hop", "128"]
    out = subprocess.run([sys.executable, "-m", "labutils", "transfer", "--method", method, "--content",
                          "moonlight_piano", "--style", "ode_violin", "--steps", "3", "--duration", "1",
                          "--content-layers", "conv1_1" if method == "vgg19" else "conv1",
                          "--style-layers", "conv1_1,conv2_1" if method == "vgg19" else "conv0,conv1",
                          "--out", str(tmp_path), "--quiet", *extra], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "note: " in out.stderr and "RANDOM weights" in out.stderr and "Traceback" not in out.stderr
    folder = Path(out.stdout.strip().splitlines()[-1])
    record = json.loads((folder / "config.json").read_text())
    assert record["method"] == method and record["weights"]["pretrained"] is False
    assert all((folder / f).is_file() for f in runs.FILES)
