import pytest
import torch

from labutils import ConfigError
from labutils import audio as A
from labutils import spectral as S


def test_log_compression_round_trip_is_exact():
    mag = torch.rand(2, 3, 65, 40, dtype=torch.float64) * 5
    for c in (0.1, 10.0, 1000.0, 1e5):
        back = S.decompress(S.compress(mag, compression=c), compression=c)
        assert torch.allclose(back, mag, rtol=1e-10, atol=1e-12)


def test_decompress_clamps_at_zero():
    assert float(S.decompress(torch.tensor([-0.5]), compression=1000.0)) == 0.0


def test_compression_must_be_positive():
    with pytest.raises(ConfigError):
        S.compress(torch.ones(3), compression=0.0)


def test_stft_bins_follow_n_fft_and_batches_work():
    audio = torch.randn(2, 3, 4000)
    mag = S.magnitude(audio, n_fft=512, hop_length=256)
    assert mag.shape == (2, 3, 257, S.n_frames(4000, hop_length=256))
    single = S.magnitude(audio[1, 2], n_fft=512, hop_length=256)
    assert torch.allclose(mag[1, 2], single, atol=1e-5)


def test_n_fft_has_no_default():
    with pytest.raises(TypeError):
        S.magnitude(torch.randn(1000), hop_length=256)  # type: ignore[call-arg]


@pytest.mark.parametrize("name", ["moonlight_piano", "ode_violin", "drums_loop"])
def test_griffin_lim_spectral_convergence(name):
    # Measured on these clips at 22.05 kHz, n_fft 512, hop 128: 0.07-0.11 after 32 iterations,
    # 0.17-0.21 after 8. The bound leaves a margin for other BLAS builds.
    audio = A.load(name, sample_rate=22050, duration=1.0)
    mag = S.magnitude(audio, n_fft=512, hop_length=128)
    errors = []
    for n_iter in (8, 32):
        y = S.griffin_lim(mag, n_fft=512, hop_length=128, n_iter=n_iter, length=audio.numel())
        errors.append(float(S.spectral_convergence(mag, S.magnitude(y, n_fft=512, hop_length=128))))
    assert errors[1] < 0.15
    assert errors[1] < errors[0]


def test_griffin_lim_is_seeded_and_batched():
    audio = A.load("ode_flute", sample_rate=8000, duration=0.5)
    mag = S.magnitude(torch.stack([audio, audio.flip(0)]), n_fft=256, hop_length=64)
    a = S.griffin_lim(mag, n_fft=256, hop_length=64, n_iter=4, seed=3)
    b = S.griffin_lim(mag, n_fft=256, hop_length=64, n_iter=4, seed=3)
    c = S.griffin_lim(mag, n_fft=256, hop_length=64, n_iter=4, seed=4)
    assert a.shape[0] == 2 and torch.equal(a, b) and not torch.equal(a, c)


def test_log_spectrogram_is_differentiable():
    audio = torch.zeros(1000, dtype=torch.float64)
    audio[::7] = 0.1
    audio.requires_grad_(True)
    spec = S.log_spectrogram(audio, n_fft=64, hop_length=16, compression=100.0)
    spec.sum().backward()
    assert torch.isfinite(audio.grad).all() and audio.grad.abs().sum() > 0
    torch.autograd.gradcheck(lambda a: S.log_spectrogram(a, n_fft=32, hop_length=8, compression=10.0),
                             (torch.randn(96, dtype=torch.float64, requires_grad=True),))
