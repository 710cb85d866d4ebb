import pytest
import torch

from labutils import losses as L
from labutils import nets


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_correlation_tensor_matches_plain_loop():
    f = torch.rand(2, 3, 4, 5, generator=gen(), dtype=torch.float64)
    H = L.correlation_tensor(f)
    assert H.shape == (2, 4, 3, 3)
    for b in range(2):
        for fr in range(4):
            for i in range(3):
                for j in range(3):
                    expected = sum(f[b, i, fr, t] * f[b, j, fr, t] for t in range(5))
                    assert H[b, fr, i, j].item() == pytest.approx(expected.item(), rel=1e-12)


def test_gram_matrix_matches_plain_loop():
    f = torch.rand(1, 3, 4, 5, generator=gen(), dtype=torch.float64)
    G = L.gram_matrix(f)
    flat = f[0].reshape(3, -1)
    for i in range(3):
        for j in range(3):
            assert G[0, i, j].item() == pytest.approx(float((flat[i] * flat[j]).sum()) / 3 / 20, rel=1e-12)


def _tiny_problem(dtype=torch.float64):
    net = nets.RandomCNN(filters=3, kernel_sizes=(3, 5), seed=1, dtype=dtype)
    ref = nets.RandomCNN(filters=3, kernel_sizes=(3, 5), seed=1, dtype=dtype, fast=False)
    content = torch.rand(1, 9, 12, generator=gen(2), dtype=dtype)
    style = torch.rand(1, 9, 15, generator=gen(3), dtype=dtype)
    with torch.no_grad():
        targets = L.Targets(net.features(content), L.time_correlations(net.features(style)))
    x = (content + 0.1 * torch.rand(2, 9, 12, generator=gen(4), dtype=dtype)).requires_grad_(True)
    return net, ref, targets, x


def test_fast_path_matches_reference_values_and_gradients():
    net, ref, targets, x = _tiny_problem()
    c_fast, s_fast = L.content_and_style(net.features(x), targets, fast=True)
    c_ref, s_ref = L.content_and_style(ref.features(x), targets, fast=False)
    assert torch.allclose(c_fast, c_ref, rtol=1e-10) and torch.allclose(s_fast, s_ref, rtol=1e-10)
    g_fast, = torch.autograd.grad((c_fast + 0.3 * s_fast).sum(), x)
    g_ref, = torch.autograd.grad((c_ref + 0.3 * s_ref).sum(), x)
    assert torch.allclose(g_fast, g_ref, rtol=1e-9, atol=1e-12)


def test_fast_gradient_against_finite_differences():
    net, _, targets, x = _tiny_problem()

    def loss(inp):
        c, s = L.content_and_style(net.features(inp), targets, fast=True)
        return c + 0.5 * s

    # away from ReLU kinks, central differences in float64 agree with the analytic gradient
    assert torch.autograd.gradcheck(loss, (x,), eps=1e-7, atol=1e-6, rtol=1e-4)


def test_fast_conv_gradient_for_large_kernels_matches_conv2d():
    for k in (3, 17, 27):
        fast = nets.RandomCNN(filters=4, kernel_sizes=(k,), seed=0)
        ref = nets.RandomCNN(filters=4, kernel_sizes=(k,), seed=0, fast=False)
        x = torch.rand(2, 40, 33, generator=gen(k), requires_grad=True)
        weights = torch.rand(2, 4, 40, 33, generator=gen(k + 1))
        g1, = torch.autograd.grad((fast.features(x)[0] * weights).sum(), x)
        g2, = torch.autograd.grad((ref.features(x)[0] * weights).sum(), x)
        assert torch.allclose(g1, g2, rtol=1e-4, atol=1e-5), k


def test_style_loss_is_invariant_to_clip_length():
    # a texture repeated twice has (up to the edges) the same per-frame correlations
    net = nets.RandomCNN(filters=4, kernel_sizes=(3, 5), seed=0, dtype=torch.float64)
    style = torch.rand(1, 16, 30, generator=gen(1), dtype=torch.float64)
    gen_clip = torch.rand(1, 16, 30, generator=gen(2), dtype=torch.float64)
    with torch.no_grad():
        short = L.style_loss(L.time_correlations(net.features(gen_clip)), L.time_correlations(net.features(style)))
        long = L.style_loss(L.time_correlations(net.features(gen_clip.repeat(1, 1, 4))),
                            L.time_correlations(net.features(style.repeat(1, 1, 4))))
    assert float(long) == pytest.approx(float(short), rel=0.1)
    # while the un-normalised sums grow with length
    raw_short = L.correlation_tensor(net.features(style)[0]).sum()
    raw_long = L.correlation_tensor(net.features(style.repeat(1, 1, 4))[0]).sum()
    assert float(raw_long) > 3 * float(raw_short)


def test_texture_synthesis_has_no_content_term():
    net, _, targets, x = _tiny_problem()
    targets = L.Targets(None, targets.style)
    c, s = L.content_and_style(net.features(x), targets)
    assert torch.equal(c, torch.zeros(2, dtype=c.dtype)) and (s > 0).all()


def test_network_is_frozen_and_seeded():
    a = nets.RandomCNN(filters=2, kernel_sizes=(3,), seed=5)
    b = nets.RandomCNN(filters=2, kernel_sizes=(3,), seed=5)
    c = nets.RandomCNN(filters=2, kernel_sizes=(3,), seed=6)
    assert all(not w.requires_grad for w in a.parameters())
    assert torch.equal(a.weights[0], b.weights[0]) and not torch.equal(a.weights[0], c.weights[0])


def test_layers_stack_features():
    net = nets.RandomCNN(filters=2, kernel_sizes=(3, 5), layers=3)
    feats = net.features(torch.rand(7, 9))
    assert len(feats) == 6 and all(f.shape == (1, 2, 7, 9) for f in feats)
