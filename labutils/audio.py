"""Audio in and out: load, mono, resample, trim/pad, normalise, save, and the bundled clip catalog.

Notebook: notebooks/00_listening_to_spectrograms.ipynb
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from .errors import AudioError

DEFAULT_SAMPLE_RATE = 44100
SILENCE_PEAK = 1e-5  # a clip whose peak stays below this (about -100 dBFS) counts as silent
DATA_DIR = Path(os.environ.get("LABUTILS_DATA", Path(__file__).resolve().parent.parent / "data"))


# --------------------------------------------------------------------------------------------
# The catalog of bundled clips
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Clip:
    """One bundled clip as listed in data/catalog.json."""

    name: str
    path: Path
    duration: float
    instrument: str
    melody: str | None
    kind: str
    source: str
    licence: str


def catalog(*, data_dir: Path | str | None = None) -> dict[str, Clip]:
    """Every bundled clip by name (e.g. ``"moonlight_piano"``), read from data/catalog.json."""
    root = Path(data_dir) if data_dir is not None else DATA_DIR
    index = root / "catalog.json"
    if not index.is_file():
        raise AudioError(f"{index}: the clip catalog is missing; run `python data/render.py` to rebuild data/")
    raw = json.loads(index.read_text())
    return {
        c["name"]: Clip(
            name=c["name"], path=root / c["file"], duration=float(c["duration"]),
            instrument=c.get("instrument", ""), melody=c.get("melody"), kind=c.get("kind", ""),
            source=c.get("source", ""), licence=c.get("licence", ""),
        )
        for c in raw["clips"]
    }


def benchmark_triples(*, data_dir: Path | str | None = None) -> list[dict[str, str]]:
    """The (content, style, truth) clip-name triples whose right answer is known (issue: compare)."""
    root = Path(data_dir) if data_dir is not None else DATA_DIR
    return list(json.loads((root / "catalog.json").read_text()).get("benchmark", []))


# --------------------------------------------------------------------------------------------
# The rendered quality-benchmark set (issue 12): made on demand by `make benchmark-data`
# --------------------------------------------------------------------------------------------
BENCHMARK_SPLITS = ("dev", "test", "dev-musescore", "test-musescore")  # the last two: through a second soundfont


def benchmark_dir() -> Path:
    """Where the rendered benchmark set lives: ``$LABUTILS_BENCHMARK_DIR`` or data/cache/benchmark/.

    Notebook: notebooks/04_compare.ipynb
    """
    env = os.environ.get("LABUTILS_BENCHMARK_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "data" / "cache" / "benchmark"


def benchmark_catalog(*, root: Path | str | None = None) -> dict:
    """The rendered set's catalog.json as a dict (instruments, melodies, clips, splits).

    Raises :class:`AudioError` with one line saying to run `make benchmark-data` when it is missing.

    Notebook: notebooks/04_compare.ipynb
    """
    root = Path(root) if root is not None else benchmark_dir()
    index = root / "catalog.json"
    if not index.is_file():
        raise AudioError(f"{root}: the rendered benchmark set is missing; run `make benchmark-data` "
                         f"(FluidSynth renders it in about 10 s; `apt-get install fluidsynth fluid-soundfont-gm` first)")
    return json.loads(index.read_text())


def benchmark_clips(*, role: str = "benchmark", root: Path | str | None = None) -> list[dict]:
    """The rendered clips of one ``role``: "benchmark" (melodies of the triples) or "train"
    (the instrument probe's material, in no triple). Each: name, path, instrument, melody,
    monophonic, notes (the MIDI score: ``[[onset_s, offset_s, midi_pitch, velocity], ...]``).

    Notebook: notebooks/04_compare.ipynb
    """
    root = Path(root) if root is not None else benchmark_dir()
    cat = benchmark_catalog(root=root)
    return [{"name": c["name"], "path": root / c["file"], "instrument": c["instrument"], "melody": c["melody"],
             "monophonic": bool(c["monophonic"]), "notes": c.get("notes")} for c in cat["clips"] if c["role"] == role]


def benchmark_set(split: str, *, root: Path | str | None = None) -> list[dict]:
    """The (content, style, truth) triples of one split, "dev", "test", "dev-musescore" or
    "test-musescore", of the rendered set.

    Test triples' style instruments appear in no dev triple. "dev-musescore" and "test-musescore"
    hold the dev and test triples rendered with another soundfont (MuseScore General), on which
    nothing is trained (the first is for tuning, the second for reporting). Each triple is a dict:
    ``content``, ``style``, ``truth`` (paths), ``content_name``, ``style_name``, ``truth_name``,
    ``content_instrument``, ``style_instrument`` (= the truth's), ``content_melody``,
    ``style_melody``, ``monophonic`` (the content melody is one line, so f0 agreement applies),
    ``content_notes``/``style_notes``/``truth_notes``: the score each clip was rendered from,
    ``[[onset_s, offset_s, midi_pitch, velocity], ...]`` (None in a set rendered before version 2).
    Raises :class:`AudioError` (one line: run `make benchmark-data`) when the set is missing.

    Notebook: notebooks/04_compare.ipynb
    """
    if split not in BENCHMARK_SPLITS:
        raise AudioError(f"split={split!r}: the benchmark has the splits {', '.join(BENCHMARK_SPLITS)}")
    root = Path(root) if root is not None else benchmark_dir()
    cat = benchmark_catalog(root=root)
    if split not in cat["splits"]:
        raise AudioError(f"{root / 'catalog.json'}: the rendered set has no split {split!r}; install its soundfont "
                         f"(`apt-get install musescore-general-soundfont`) and run `make benchmark-data` again")
    clips = {c["name"]: c for c in cat["clips"]}
    out = []
    for t in cat["splits"][split]["triples"]:
        try:
            c, s, r = clips[t["content"]], clips[t["style"]], clips[t["truth"]]
        except KeyError as exc:
            raise AudioError(f"{root / 'catalog.json'}: triple names unknown clip {exc}; run `make benchmark-data` again") from None
        for clip in (c, s, r):
            if not (root / clip["file"]).is_file():
                raise AudioError(f"{root / clip['file']}: missing from the benchmark set; run `make benchmark-data` again")
        out.append({"content": root / c["file"], "style": root / s["file"], "truth": root / r["file"],
                    "content_name": c["name"], "style_name": s["name"], "truth_name": r["name"],
                    "content_instrument": c["instrument"], "style_instrument": s["instrument"],
                    "content_melody": c["melody"], "style_melody": s["melody"], "monophonic": bool(c["monophonic"]),
                    "content_notes": c.get("notes"), "style_notes": s.get("notes"), "truth_notes": r.get("notes")})
    return out


def resolve(source: str | Path) -> tuple[Path, str]:
    """Turn a path or a bundled clip name into (path, short name for run folders).

    A string naming an existing file wins; otherwise it is looked up in the catalog.
    """
    if not str(source).strip():
        raise AudioError("no clip given (an empty name); give a bundled clip name (`python -m labutils examples`) "
                         "or the path of an audio file")
    path = Path(source).expanduser()
    if path.exists():
        return path, _slug(path.stem)
    as_text = str(source)
    if os.sep not in as_text and "." not in as_text:
        clips = catalog()
        if as_text in clips:
            return clips[as_text].path, as_text
        raise AudioError(
            f"{as_text!r} is neither a file nor a bundled clip; "
            f"run `python -m labutils examples` to list clip names, or give a path to an audio file"
        )
    raise AudioError(f"{path}: no such file; check the path (bundled clips: `python -m labutils examples`)")


def _slug(text: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)
    return keep.strip("-")[:40] or "clip"


# --------------------------------------------------------------------------------------------
# Loading and saving
# --------------------------------------------------------------------------------------------
def load(
    source: str | Path,
    *,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    offset: float = 0.0,
    duration: float | None = None,
    pad: bool = True,
    min_duration: float | None = None,
    normalise: bool = True,
) -> torch.Tensor:
    """Load wav, flac, ogg or mp3 (a path or a bundled clip name) as float32 mono at ``sample_rate``.

    Stereo and multichannel files are averaged to mono; the resampler is torchaudio's windowed
    sinc. ``offset`` and ``duration`` are in seconds; a clip shorter than ``duration`` is
    zero-padded when ``pad`` is true, else kept short. ``normalise`` scales the peak to 1.

    Returns ``audio: (N,)``. Raises :class:`AudioError` with one line naming the file, the problem
    and the fix for a missing or unreadable file, empty, silent, too-short or non-finite audio.

    Notebook: notebooks/00_listening_to_spectrograms.ipynb
    """
    path, _ = resolve(source)
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file; give the path of a .wav/.flac/.ogg/.mp3 file")
    if sample_rate <= 0:
        raise AudioError(f"sample_rate={sample_rate}: must be a positive number of samples per second, e.g. 44100")
    if offset < 0 or (duration is not None and not duration > 0):
        raise AudioError(f"{path}: offset must be >= 0 and duration > 0 seconds (got offset={offset}, duration={duration})")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes); re-export or re-download it")
    try:
        info = sf.info(str(path))
        start = int(round(offset * info.samplerate))
        frames = -1 if duration is None else int(math.ceil(duration * info.samplerate))
        data, file_rate = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AudioError(
            f"{path}: cannot be read as audio ({reason}); convert it to wav, flac, ogg or mp3 "
            f"(e.g. `ffmpeg -i IN out.wav`)"
        ) from None
    if data.shape[0] == 0:
        where = f" after offset {offset} s" if offset else ""
        raise AudioError(f"{path}: holds no samples{where}; use a longer clip or a smaller offset")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: contains NaN or infinite samples; re-export the file from its source")
    audio = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    if file_rate != sample_rate:
        audio = AF.resample(audio, int(file_rate), int(sample_rate))
    if duration is not None and pad:
        audio = fit_length(audio, int(round(duration * sample_rate)))
    return _finish(audio, name=str(path), sample_rate=sample_rate, min_duration=min_duration, normalise=normalise)


def loudest_offset(source: str | Path, *, duration: float, hop_seconds: float = 0.05) -> float:
    """Where the loudest ``duration`` seconds of a file start, in seconds (``offset="auto"``).

    The whole file is read at its own rate and downmixed; the energy of ``hop_seconds`` blocks is
    summed over every window of ``duration`` seconds, and the window with the most energy wins
    (the first of equals). A file shorter than ``duration`` gives 0.

    Notebook: notebooks/00_listening_to_spectrograms.ipynb
    """
    path, _ = resolve(source)
    if not duration > 0:
        raise AudioError(f"{path}: duration must be > 0 seconds to find the loudest window (got {duration})")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AudioError(f"{path}: cannot be read as audio ({reason}); convert it to wav, flac, ogg or mp3 "
                         f"(e.g. `ffmpeg -i IN out.wav`)") from None
    mono = np.nan_to_num(data.mean(axis=1).astype(np.float64))
    hop = max(1, int(round(hop_seconds * rate)))
    blocks = mono[: mono.size // hop * hop].reshape(-1, hop)
    width = int(round(duration * rate / hop))
    if blocks.shape[0] <= width:
        return 0.0
    energy = np.concatenate([[0.0], np.cumsum(np.square(blocks).sum(axis=1))])
    windows = energy[width:] - energy[:-width]
    return float(int(np.argmax(windows)) * hop / rate)


def _finish(audio: torch.Tensor, *, name: str, sample_rate: int, min_duration: float | None, normalise: bool) -> torch.Tensor:
    peak = float(audio.abs().max()) if audio.numel() else 0.0
    if peak < SILENCE_PEAK:
        raise AudioError(f"{name}: the clip is silent (peak {peak:.1e}); pick a clip or offset where there is sound")
    seconds = audio.numel() / sample_rate
    if min_duration is not None and seconds < min_duration:
        raise AudioError(
            f"{name}: the clip lasts {seconds:.3f} s but at least {min_duration:g} s are needed; use a longer clip "
            f"(or a smaller offset)"
        )
    if normalise:
        audio = audio / peak
    return audio.to(torch.float32).contiguous()


def fit_length(audio: torch.Tensor, n: int) -> torch.Tensor:
    """Trim or zero-pad the last axis to ``n`` samples. ``audio: (..., N) -> (..., n)``."""
    if audio.shape[-1] >= n:
        return audio[..., :n]
    return torch.nn.functional.pad(audio, (0, n - audio.shape[-1]))


def check(audio: torch.Tensor, *, name: str = "audio", sample_rate: int = DEFAULT_SAMPLE_RATE,
          min_duration: float | None = None) -> torch.Tensor:
    """Check an in-memory clip ``audio: (N,)`` as :func:`load` checks files; returns it as float32."""
    audio = torch.as_tensor(audio, dtype=torch.float32)
    if audio.ndim != 1 or audio.numel() == 0:
        raise AudioError(f"{name}: expected a non-empty mono clip of shape (N,), got shape {tuple(audio.shape)}")
    if not torch.isfinite(audio).all():
        raise AudioError(f"{name}: contains NaN or infinite samples; clean or regenerate it")
    return _finish(audio, name=name, sample_rate=sample_rate, min_duration=min_duration, normalise=False)


def save(path: str | Path, audio: torch.Tensor, *, sample_rate: int, overwrite: bool = False) -> Path:
    """Write ``audio: (N,)`` as 16-bit wav, peak-limited to 0.99. Refuses to overwrite unless asked."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise AudioError(f"{path}: already exists; choose another name (results are never overwritten)")
    data = torch.as_tensor(audio).detach().to("cpu", torch.float32).reshape(-1).numpy()
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: refusing to save audio with NaN or infinite samples")
    peak = float(np.abs(data).max()) if data.size else 0.0
    if peak > 0.99:
        data = data * (0.99 / peak)
    sf.write(str(path), data, int(sample_rate), subtype="PCM_16")
    return path
