"""Guided statistics (one statistic per note mask) and the guide lever of attempt 3."""
from __future__ import annotations

import torch

from labutils import losses as L


def _features(seed: int = 0, shape=(2, 3, 4, 11)) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _masks(n_frames: int) -> torch.Tensor:
    t = torch.arange(n_frames, dtype=torch.float64)
    a = ((t >= 1) & (t < 5)).double()
    b = torch.clamp(1 - (t - 7).abs() / 3, 0, 1)  # a soft triangle
    a[5] = 0.5  # a soft edge
    return torch.stack([a, b])


def test_guided_statistic_matches_a_plain_loop():
    feats, masks = _features(), _masks(11)
    B, C, F, T = feats.shape
    for statistic in ("per-frequency", "time-frequency", "frequency-frequency"):
        got = L.guided_statistic(feats, masks, statistic=statistic)
        for b in range(B):
            for n in range(masks.shape[0]):
                mass = float(masks[n].sum())
                if statistic == "per-frequency":
                    want = torch.zeros(F, C, C, dtype=torch.float64)
                    for f in range(F):
                        for i in range(C):
                            for j in range(C):
                                want[f, i, j] = sum(masks[n, t] * feats[b, i, f, t] * feats[b, j, f, t]
                                                    for t in range(T)) / mass
                elif statistic == "time-frequency":
                    want = torch.zeros(C, C, dtype=torch.float64)
                    for i in range(C):
                        for j in range(C):
                            want[i, j] = sum(masks[n, t] * feats[b, i, f, t] * feats[b, j, f, t]
                                             for t in range(T) for f in range(F)) / (mass * F)
                else:
                    want = torch.zeros(C, F, F, dtype=torch.float64)
                    for i in range(C):
                        for f in range(F):
                            for g in range(F):
                                want[i, f, g] = sum(masks[n, t] * feats[b, i, f, t] * feats[b, i, g, t]
                                                    for t in range(T)) / mass
                torch.testing.assert_close(got[b, n], want, rtol=1e-12, atol=1e-12)


def test_guided_gram_matches_a_plain_loop():
    for shape in ((2, 3, 4, 11), (2, 3, 11)):  # VGG's (B, C, F, T) and Wav2Vec2's (B, C, T)
        feats, masks = _features(1, shape), _masks(11)
        got = L.guided_gram(feats, masks)
        flat = feats.reshape(shape[0], shape[1], -1, shape[-1])  # (B, C, X, T)
        B, C, X, T = flat.shape
        for b in range(B):
            for n in range(2):
                want = torch.zeros(C, C, dtype=torch.float64)
                for i in range(C):
                    for j in range(C):
                        want[i, j] = sum(masks[n, t] * flat[b, i, x, t] * flat[b, j, x, t]
                                         for t in range(T) for x in range(X))
                want /= C * X * float(masks[n].sum())
                torch.testing.assert_close(got[b, n], want, rtol=1e-12, atol=1e-12)


def test_one_mask_of_ones_is_the_whole_clip_statistic():
    feats = _features(2)
    ones = torch.ones(1, feats.shape[-1], dtype=torch.float64)
    for statistic in ("per-frequency", "time-frequency", "frequency-frequency"):
        torch.testing.assert_close(L.guided_statistic(feats, ones, statistic=statistic)[:, 0],
                                   L.texture_statistic(feats, statistic=statistic), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(L.guided_gram(feats, ones)[:, 0], L.gram_matrix(feats), rtol=1e-12, atol=1e-12)
    # and the loss: one note of weight 1 is today's style loss, each divided by its target's energy
    gen, style = [_features(3), _features(4, (2, 5, 4, 11))], [_features(5, (1, 3, 4, 11)), _features(6, (1, 5, 4, 11))]
    for statistic in ("per-frequency", "time-frequency"):
        old = L.statistic_targets(None, style, statistic=statistic)
        _, want = L.content_and_statistics(gen, old, statistic=statistic, content_index=[], style_index=[0, 1],
                                           fast=False)
        targets = [L.guided_statistic(s, ones, statistic=statistic) for s in style]
        norms = [L.guided_norms(t, blocks=s.shape[-2]) for t, s in zip(targets, style)]
        got = L.guided_style_loss([L.guided_statistic(g, ones, statistic=statistic) for g in gen], targets, norms=norms)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    gram_want = L.style_loss(L.grams(gen), L.grams(style))
    gram_targets = [L.guided_gram(s, ones) for s in style]
    gram_got = L.guided_style_loss([L.guided_gram(g, ones) for g in gen], gram_targets,
                                   norms=[L.guided_norms(t, blocks=1) for t in gram_targets])
    torch.testing.assert_close(gram_got, gram_want, rtol=1e-12, atol=0)


def test_guided_loss_sums_per_note_distances_by_hand():
    feats, masks = _features(7), _masks(11)
    target = L.guided_statistic(_features(8, (1, 3, 4, 11)), masks)
    norms = L.guided_norms(target, blocks=4)
    weights = torch.tensor([0.25, 0.75], dtype=torch.float64)
    got = L.guided_style_loss([L.guided_statistic(feats, masks)], [target], norms=[norms], weights=weights)
    gen = L.guided_statistic(feats, masks)
    for b in range(2):
        want = sum(float(weights[n]) * float((gen[b, n] - target[0, n]).square().sum())
                   / (float(target[0, n].square().sum()) / 4) for n in range(2))
        assert abs(float(got[b]) - want) < 1e-9 * want


def test_masks_are_resampled_to_each_feature_map():
    masks = _masks(11)
    assert L.resample_masks(masks, 11) is masks
    half = L.resample_masks(masks, 22)
    assert half.shape == (2, 22) and float(half.min()) >= 0 and float(half.max()) <= 1
    # a feature map with twice the frames: the statistic of the upsampled mask over a repeated map
    feats = _features(9)
    doubled = feats.repeat_interleave(2, dim=-1)
    stat = L.guided_statistic(doubled, masks)
    by_hand = L.guided_statistic(doubled, half)
    torch.testing.assert_close(stat, by_hand)


# --------------------------------------------------------------------------------------------
# guide = none is the recipe as it was: the same operations, bit for bit
# --------------------------------------------------------------------------------------------
def _tiny_cfg(**changes):
    from labutils.config import CaracallaRoebelConfig

    values = dict(steps=3, duration=0.5, sample_rate=8000, n_fft=256, hop_length=128, filters=4, kernel_sizes=(3, 5),
                  device="cpu")
    return CaracallaRoebelConfig(**{**values, **changes})


def _clips():
    g = torch.Generator().manual_seed(3)
    t = torch.arange(4000) / 8000
    content = 0.3 * torch.sin(2 * torch.pi * 330 * t) + 0.01 * torch.randn(4000, generator=g)
    style = 0.3 * torch.sign(torch.sin(2 * torch.pi * 220 * t)) + 0.01 * torch.randn(4000, generator=g)
    return content, style


def test_guide_none_is_todays_recipe_bit_for_bit(monkeypatch):
    # one first-layer algorithm for both networks (the automatic choice times them on the machine)
    monkeypatch.setenv("LABUTILS_CONV_ALGORITHM", "direct/rows")
    from labutils import spectral as S
    from labutils.attempts import caracalla_roebel as CR
    from labutils.nets import RandomCNN
    from labutils.optim import optimise

    content, style = _clips()
    for statistic in ("per-frequency", "time-frequency"):
        cfg = _tiny_cfg(statistic=statistic, guide="none")
        problem = CR.build(content, style, cfg)
        got = optimise(problem.init, problem.loss_fn, steps=3, lr=problem.lr, progress=False)
        # the recipe written out again from the library's pieces, as it stood before the guide
        net = RandomCNN(filters=4, kernel_sizes=(3, 5), seed=0, device="cpu")
        spec_kw = dict(n_fft=256, hop_length=128, compression=cfg.compression)
        with torch.no_grad():
            c_spec = S.log_spectrogram(content, **spec_kw)
            if statistic == "per-frequency":
                targets = L.Targets(content=net.features(c_spec),
                                    style=L.time_correlations(net.features(S.log_spectrogram(style, **spec_kw))))
            else:
                targets = L.statistic_targets(net.features(c_spec[None]),
                                              net.features(S.log_spectrogram(style[None], **spec_kw)),
                                              statistic=statistic)

        def loss_fn(p):
            if statistic == "per-frequency":
                c, s = L.content_and_style(net.features(p), targets)
            else:
                c, s = L.content_and_statistics(net.features(p), targets, statistic=statistic,
                                                content_index=[0, 1], style_index=[0, 1])
            return {"total": L.total_loss(c, s, alpha=1.0, beta=0.01), "content": c, "style": s}

        want = optimise(c_spec[None].clone(), loss_fn, steps=3, lr=0.1, progress=False)
        assert torch.equal(got.param, want.param), statistic
        for a, b in zip(got.history, want.history):
            assert (a["total"], a["content"], a["style"]) == (b["total"], b["content"], b["style"])


def test_fused_guided_path_matches_autograd():
    feats = _features(10, (2, 3, 4, 11)).float().requires_grad_(True)
    other = _features(11, (2, 5, 4, 11)).float().requires_grad_(True)
    masks = _masks(11).float()
    content = [_features(12, (1, 3, 4, 11)).float()]
    content_norms = [L._energy(content[0])]
    weights = torch.tensor([0.4, 0.6])
    for statistic in ("per-frequency", "time-frequency"):
        style = [L.guided_statistic(_features(13, (1, 3, 4, 11)).float(), masks, statistic=statistic),
                 L.guided_statistic(_features(14, (1, 5, 4, 11)).float(), masks, statistic=statistic)]
        norms = [L.guided_norms(s, blocks=4) for s in style]
        out = {}
        for fast in (True, False):
            c, s = L.content_and_guided([feats, other], content, content_norms, style, norms, masks,
                                        statistic=statistic, content_index=[0], style_index=[0, 1],
                                        weights=weights, fast=fast)
            g = torch.autograd.grad((c * 0.7 + s * 0.3).sum(), [feats, other])
            out[fast] = (c.detach(), s.detach(), *g)
        for a, b in zip(out[True], out[False]):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert float(out[True][2].abs().sum()) > 0


# --------------------------------------------------------------------------------------------
# guide = notes on real notes
# --------------------------------------------------------------------------------------------
def test_note_masks_by_hand():
    import numpy as np

    from labutils.attempts.caracalla_roebel import note_masks

    # frames every 0.1 s; one note from 0.2 to 0.5 s, another from 0.7 s to past the end
    masks, owner, parts = note_masks(np.array([[0.2, 0.5], [0.7, 2.0]]), n_frames=10, hop_length=10, sample_rate=100)
    assert owner == [0, 1] and parts == ["note", "note"]
    assert masks[0].tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 0, 0] and masks[1].tolist() == [0] * 7 + [1] * 3
    faded, _, _ = note_masks(np.array([[0.2, 0.5]]), n_frames=10, hop_length=10, sample_rate=100, fade=0.2)
    torch.testing.assert_close(faded[0], torch.tensor([0, 0.5, 1, 1, 1, 1, 0.5, 0, 0, 0]))
    split, owner, parts = note_masks(np.array([[0.2, 0.5], [0.7, 0.75]]), n_frames=10, hop_length=10,
                                     sample_rate=100, attack=0.15)
    # the second note is shorter than the attack: its sustain has no frame and is left out
    assert owner == [0, 0, 1] and parts == ["attack", "sustain", "attack"]
    assert split[0].tolist() == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0] and split[1].tolist() == [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]


def test_guide_targets_are_the_matched_style_notes_moved_to_pitch(monkeypatch):
    monkeypatch.setenv("LABUTILS_CONV_ALGORITHM", "direct/rows")
    from labutils import notes as N
    from labutils import transfer as T
    from labutils.attempts import caracalla_roebel as CR

    cfg = _tiny_cfg(guide="notes", duration=1.5, sample_rate=22050, n_fft=512, hop_length=256)
    content, style, _ = T.load_pair("ode_piano", "moonlight_violin", cfg)
    problem = CR.build(content, style, cfg)
    guide = problem.info["guide"]
    found_c = N.find_notes(content, sample_rate=22050, pitch="crepe")
    found_s = N.find_notes(style, sample_rate=22050, pitch="crepe")
    assert guide["content_notes"] == len(found_c) >= 3 and guide["masks"] == len(found_c)
    assert guide["chosen"] == N.match_notes(found_c, found_s)
    want_shift = [c.pitch - found_s[j].pitch for c, j in zip(found_c, guide["chosen"])]
    assert max(abs(a - b) for a, b in zip(guide["semitones"], want_shift)) < 1e-3
    # the longest piece's target, recomputed alone: its shifted samples through the same network
    g = CR.note_guide(content, style, cfg, n_frames=1 + content.shape[-1] // cfg.hop_length)
    net = CR.RandomCNN(filters=4, kernel_sizes=(3, 5), seed=0, fast=False)
    represent = CR.representation(cfg)
    g.set_targets(lambda audio: net.features(represent(audio)[0]), statistic="per-frequency")
    longest = max(range(len(g.pieces)), key=lambda n: g.pieces[n].shape[-1])
    j = g.chosen[longest]
    piece = N.shift_pitch(style[found_s[j].start:found_s[j].end], g.semitones[longest], sample_rate=22050)
    maps = net.features(represent(piece[None])[0])
    for k, f in enumerate(maps):
        whole = L.texture_statistic(f, statistic="per-frequency")
        torch.testing.assert_close(g.targets[k][0, g.owner.index(longest)], whole[0], rtol=1e-4, atol=1e-6)
    assert abs(float(g.weights.sum()) - 1) < 1e-6


def test_cli_guide_flag_end_to_end_on_a_one_second_clip(tmp_path):
    import json
    from pathlib import Path

    from conftest import cli

    out = cli("transfer", "--method", "caracalla-roebel", "--guide", "notes", "--guide-attack", "0.05",
              "--content", "ode_piano", "--style", "ode_violin", "--steps", "3", "--duration", "1",
              "--sample-rate", "22050", "--filters", "4", "--kernel-sizes", "3,7", "--out", str(tmp_path), "--quiet")
    assert out.returncode == 0, out.stderr
    record = json.loads((Path(out.stdout.strip().splitlines()[-1]) / "config.json").read_text())
    assert record["config"]["guide"] == "notes" and record["config"]["guide_attack"] == 0.05
    guide = record["compute"]["guide"]
    assert guide["content_notes"] >= 2 and guide["masks"] > guide["content_notes"]  # attack and sustain masks
    assert record["steps_done"] == 3


def test_vgg19_guide_notes_uses_one_gram_matrix_per_note():
    from labutils import transfer as T
    from labutils.attempts import vgg19
    from labutils.config import VGG19Config

    cfg = VGG19Config(steps=1, duration=1.5, sample_rate=22050, n_fft=512, hop_length=256, weights="random",
                      device="cpu", guide="notes", content_layers=("conv1_1",), style_layers=("conv1_1", "conv2_1"))
    content, style, _ = T.load_pair("ode_piano", "moonlight_violin", cfg)
    guided = vgg19.build(content, style, cfg)
    plain = vgg19.build(content, style, cfg.replace(guide="none"))
    assert guided.info["guide"]["masks"] >= 3 and "guide" not in plain.info
    p = guided.init.clone().requires_grad_(True)
    out = guided.loss_fn(p)
    out["total"].sum().backward()
    assert torch.isfinite(out["style"]).all() and float(p.grad.abs().sum()) > 0
    # the guided style loss differs from the whole-clip one on the same start
    assert abs(float(out["style"][0].detach()) - float(plain.loss_fn(plain.init)["style"][0])) > 1e-6


def test_fused_guided_path_with_a_kept_plan_on_maps_of_other_lengths():
    # the plan (supports and sqrt-weights of the masks) made once and kept between calls gives
    # what a fresh plan and autograd give, also on a map with twice the frames (masks resampled)
    # and with a mask that is zero everywhere
    masks = torch.cat([_masks(11), torch.zeros(1, 11, dtype=torch.float64)])
    weights = torch.tensor([0.3, 0.5, 0.2], dtype=torch.float64)
    for statistic in ("per-frequency", "time-frequency"):
        for frames in (11, 22):
            feats = _features(20, (2, 3, 4, frames)).requires_grad_(True)
            content = [_features(21, (1, 3, 4, frames))]
            style = [L.guided_statistic(_features(22, (1, 3, 4, frames)), masks, statistic=statistic)]
            norms = [L.guided_norms(style[0], blocks=4)]
            kept: dict = {}
            out = []
            for fast, plan in ((False, None), (True, None), (True, kept), (True, kept)):
                c, s = L.content_and_guided([feats], content, [L._energy(content[0])], style, norms, masks,
                                            statistic=statistic, content_index=[0], style_index=[0],
                                            weights=weights, fast=fast, plan=plan)
                (g,) = torch.autograd.grad((c * 0.7 + s * 0.3).sum(), [feats])
                out.append((c.detach(), s.detach(), g))
            assert len(kept) == 1
            for got in out[1:]:
                for a, b in zip(got, out[0]):
                    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
