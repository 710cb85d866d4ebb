import numpy as np
import pytest
import soundfile as sf
import torch

from labutils import AudioError
from labutils import audio as A
from conftest import tone


@pytest.mark.parametrize("fmt,subtype", [("wav", "PCM_16"), ("flac", "PCM_24"), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III")])
def test_formats_load_as_mono_float32(tmp_path, fmt, subtype):
    path = tmp_path / f"clip.{fmt}"
    sf.write(str(path), tone(rate=22050, channels=2), 22050, subtype=subtype, format=fmt.upper() if fmt != "mp3" else "MP3")
    audio = A.load(path, sample_rate=16000)
    assert audio.dtype == torch.float32 and audio.ndim == 1
    assert abs(audio.numel() / 16000 - 0.5) < 0.06  # mp3 adds a little padding
    assert float(audio.abs().max()) == pytest.approx(1.0)


def test_resampling_keeps_duration_and_pitch(tone_file):
    path = tone_file(freq=440.0, seconds=1.0, rate=48000)
    audio = A.load(path, sample_rate=16000, normalise=False)
    assert audio.numel() == 16000
    spectrum = torch.fft.rfft(audio * torch.hann_window(audio.numel())).abs()
    peak_hz = int(spectrum.argmax()) * 16000 / audio.numel()
    assert abs(peak_hz - 440.0) <= 1.0


def test_stereo_is_averaged(tmp_path):
    left = tone(rate=8000)
    data = np.stack([left, np.zeros_like(left)], axis=1)
    sf.write(str(tmp_path / "s.wav"), data, 8000, subtype="FLOAT")
    audio = A.load(tmp_path / "s.wav", sample_rate=8000, normalise=False)
    assert torch.allclose(audio, torch.from_numpy(left) / 2, atol=1e-6)


def test_offset_duration_trim_and_pad(tone_file):
    path = tone_file(seconds=1.0, rate=8000)
    assert A.load(path, sample_rate=8000, offset=0.25, duration=0.5).numel() == 4000
    assert A.load(path, sample_rate=8000, offset=0.75, duration=0.5).numel() == 4000  # padded
    assert A.load(path, sample_rate=8000, offset=0.75, duration=0.5, pad=False).numel() == 2000


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_missing_file(tmp_path):
    with pytest.raises(AudioError) as exc:
        A.load(tmp_path / "nope.wav")
    assert "no such file" in _one_line(exc)


def test_directory(tmp_path):
    with pytest.raises(AudioError) as exc:
        A.load(tmp_path)
    assert "directory" in _one_line(exc)


def test_text_file_named_wav(tmp_path):
    (tmp_path / "text.wav").write_text("not audio at all")
    with pytest.raises(AudioError) as exc:
        A.load(tmp_path / "text.wav")
    assert "cannot be read as audio" in _one_line(exc)


def test_empty_file(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError) as exc:
        A.load(tmp_path / "empty.wav")
    assert "empty" in _one_line(exc)


def test_truncated_wav(tone_file):
    path = tone_file(seconds=1.0)
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(AudioError) as exc:
        A.load(path)
    _one_line(exc)


def test_header_only_wav_has_no_samples(tmp_path):
    sf.write(str(tmp_path / "zero.wav"), np.zeros(0, dtype=np.float32), 8000)
    with pytest.raises(AudioError) as exc:
        A.load(tmp_path / "zero.wav")
    assert "no samples" in _one_line(exc)


def test_silence(tmp_path):
    sf.write(str(tmp_path / "silent.wav"), np.zeros(8000, dtype=np.float32), 8000)
    with pytest.raises(AudioError) as exc:
        A.load(tmp_path / "silent.wav")
    assert "silent" in _one_line(exc)


def test_too_short(tone_file):
    path = tone_file(seconds=0.001, rate=44100)
    with pytest.raises(AudioError) as exc:
        A.load(path, min_duration=0.1)
    assert "at least 0.1 s" in _one_line(exc)


def test_nan_samples(tmp_path):
    data = tone(rate=8000)
    data[100] = np.nan
    sf.write(str(tmp_path / "nan.wav"), data, 8000, subtype="FLOAT")
    with pytest.raises(AudioError) as exc:
        A.load(tmp_path / "nan.wav")
    assert "NaN" in _one_line(exc)


def test_unknown_clip_name():
    with pytest.raises(AudioError) as exc:
        A.load("no_such_clip")
    assert "labutils examples" in _one_line(exc)


def test_every_bundled_clip_loads():
    clips = A.catalog()
    assert len(clips) >= 10
    for clip in clips.values():
        audio = A.load(clip.name, normalise=False)
        assert 0 < audio.numel() / 44100 <= 6.0
        assert abs(audio.numel() / 44100 - clip.duration) < 0.01
        assert clip.source and clip.licence
        info = sf.info(str(clip.path))
        assert info.samplerate == 44100 and info.channels == 1


def test_benchmark_triples_name_real_clips():
    clips = A.catalog()
    triples = A.benchmark_triples()
    assert len(triples) >= 6
    for t in triples:
        c, s, truth = clips[t["content"]], clips[t["style"]], clips[t["truth"]]
        assert truth.melody == c.melody and truth.instrument == s.instrument
        assert c.melody != s.melody and c.instrument != s.instrument


def test_save_refuses_to_overwrite(tmp_path):
    audio = torch.from_numpy(tone(rate=8000))
    path = A.save(tmp_path / "out.wav", audio, sample_rate=8000)
    before = path.read_bytes()
    with pytest.raises(AudioError):
        A.save(path, audio * 0.1, sample_rate=8000)
    assert path.read_bytes() == before
    back = A.load(path, sample_rate=8000, normalise=False)
    assert torch.allclose(back, audio, atol=2e-4)
