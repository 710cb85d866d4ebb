"""Build the bundled audio clips and data/catalog.json.

Run from the repository root:  python data/render.py

Needs: fluidsynth + fluid-soundfont-gm (FluidR3_GM.sf2) and sonic-pi-samples
(Debian packages), and the Python packages mido, numpy, soundfile.

1. Renders four public-domain melodies (note lists below) on four General MIDI
   instruments with FluidSynth: 16 clips <melody>_<instrument>.wav, 5.0 s each.
   Every instrument plays exactly the same notes at the same tempo, so
   melody A on instrument Q is the ground truth for "content A on P + style of Q".
2. Trims a few CC0 recordings from sonic-pi-samples.
3. Writes catalog.json (clips + style-transfer benchmark triples).

Output: 16-bit PCM WAV, 44.1 kHz, mono, peak-normalised to 0.9.
The script is deterministic: the same inputs give byte-identical files.

Benchmark mode (issue 12):  python data/render.py --benchmark [--out DIR] [--subset small]
renders the larger quality-benchmark set into a git-ignored cache folder (default
data/cache/benchmark/, or $LABUTILS_BENCHMARK_DIR): see render_benchmark() below.
It needs fluidsynth + fluid-soundfont-gm only, and leaves the bundled clips alone.
"""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

try:
    import mido
except ImportError:
    sys.exit("render.py needs mido: pip install mido")

DATA = Path(__file__).resolve().parent
SR = 44100
PEAK = 0.9
CLIP_SECONDS = 5.0        # length of every rendered clip
FADE_SECONDS = 0.25       # fade-out at the end of rendered clips
MAX_RECORDING = 6.0       # recordings are cut to at most this
MIN_RECORDING = 2.0       # ... and skipped if shorter than this
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SAMPLES = Path("/usr/share/sonic-pi/samples")
TPB = 480                 # MIDI ticks per quarter note

# General MIDI programs (0-based).
INSTRUMENTS = {"piano": 0, "violin": 40, "flute": 73, "guitar": 24}
INSTRUMENT_NAMES = {"piano": "Acoustic Grand Piano", "violin": "Violin",
                    "flute": "Flute", "guitar": "Acoustic Guitar (nylon)"}

# ---------------------------------------------------------------- melodies
# A note is (start, duration, pitch, velocity); times in quarter notes.

PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def midi(name):
    """'C#4' -> 61 (middle C is C4 = 60)."""
    pc = PITCH_CLASS[name[0]] + name.count("#") - name.count("b")
    return 12 * (int(name.lstrip("ABCDEFG#b")) + 1) + pc


def moonlight():
    """Beethoven, Sonata op. 27 no. 2, I, bars 1-3: triplets over bass octaves."""
    # (right-hand triplet, bass octave, length in quarters)
    bars = [("G#3 C#4 E4", "C#2 C#3", 4),
            ("G#3 C#4 E4", "B1 B2", 4),
            ("A3 C#4 E4", "A1 A2", 2),
            ("A3 D4 F#4", "F#1 F#2", 2)]
    notes, t = [], 0.0
    for triad, bass, length in bars:
        notes += [(t, length, midi(p), 70) for p in bass.split()]
        for beat in range(length):
            for i, p in enumerate(triad.split()):
                notes.append((t + beat + i / 3, 1 / 3, midi(p), 58))
        t += length
    return notes


def prelude():
    """Bach, Prelude in C major BWV 846, bars 1-2 (C major, Dm7/C)."""
    notes = []
    for bar, chord in enumerate(["C4 E4 G4 C5 E5", "C4 D4 A4 D5 F5"]):
        p1, p2, p3, p4, p5 = (midi(p) for p in chord.split())
        for half in range(2):
            t = 4 * bar + 2 * half
            notes += [(t, 2.0, p1, 64), (t + 0.25, 1.75, p2, 60)]
            for i, p in enumerate([p3, p4, p5, p3, p4, p5]):
                notes.append((t + 0.5 + 0.25 * i, 0.25, p, 68))
    return notes


def ode():
    """Beethoven, Symphony no. 9, IV, 'Ode to Joy' theme, first phrase (D major)."""
    tune = [("F#4", 1), ("F#4", 1), ("G4", 1), ("A4", 1),
            ("A4", 1), ("G4", 1), ("F#4", 1), ("E4", 1),
            ("D4", 1), ("D4", 1), ("E4", 1), ("F#4", 1),
            ("F#4", 1.5), ("E4", 0.5), ("E4", 2)]
    notes, t = [], 0.0
    for p, length in tune:
        notes.append((t, 0.95 * length, midi(p), 80))  # slightly detached
        t += length
    return notes


def furelise():
    """Beethoven, 'Fur Elise' WoO 59, opening: upbeat + bars 1-8 (first ending)."""
    s = 0.25  # one sixteenth in quarters
    turn = "E5 D#5 E5 B4 D5 C5"
    a_minor, e_major = "A2 E3 A3", "E2 E3 G#3"
    # bars 2-4 and 6-7: (right-hand eighth, left-hand arpeggio, right-hand run)
    phrases = [[("A4", a_minor, "C4 E4 A4"), ("B4", e_major, "E4 G#4 B4"),
                ("C5", a_minor, "E4 E5 D#5")],
               [("A4", a_minor, "C4 E4 A4"), ("B4", e_major, "E4 C5 B4")]]
    notes = [(0, s, midi("E5"), 72), (s, s, midi("D#5"), 72)]  # upbeat
    t = 2 * s
    for phrase in phrases:
        notes += [(t + i * s, s, midi(p), 72) for i, p in enumerate(turn.split())]
        t += 6 * s
        for top, arpeggio, run in phrase:
            notes.append((t, 2 * s, midi(top), 72))
            # left hand held to the end of the bar (as under the pedal)
            notes += [(t + i * s, (6 - i) * s, midi(p), 60)
                      for i, p in enumerate(arpeggio.split())]
            notes += [(t + (3 + i) * s, s, midi(p), 66) for i, p in enumerate(run.split())]
            t += 6 * s
    # bar 8: A4 over the A-minor arpeggio, let ring
    notes.append((t, 4 * s, midi("A4"), 72))
    notes += [(t + i * s, (4 - i) * s, midi(p), 60) for i, p in enumerate("A2 E3 A3".split())]
    return notes


# name: (note-list function, tempo in quarter notes per minute, description)
# Tempi are chosen so that every melody ends at 4.8 s.
MELODIES = {
    "moonlight": (moonlight, 150, "Beethoven, Piano Sonata no. 14 op. 27 no. 2 "
                  "('Moonlight'), I, bars 1-3"),
    "prelude": (prelude, 100, "J. S. Bach, Prelude in C major BWV 846, bars 1-2"),
    "ode": (ode, 200, "Beethoven, Symphony no. 9 op. 125, IV, 'Ode to Joy' theme, "
            "first phrase"),
    "furelise": (furelise, 150, "Beethoven, 'Fur Elise' WoO 59, bars 0-8"),
}

# -------------------------------------------------------------- recordings
# Only files that /usr/share/doc/sonic-pi-samples/copyright lists as CC0.
# (output name, instrument, sample file, author, freesound URL)
RECORDINGS = [
    ("drums_loop", "drums", "loop_amen_full.flac", "gowers",
     "http://freesound.org/people/gowers/sounds/202537/"),
    ("guitar_em9", "guitar", "guit_em9.flac", "Sub-d",
     "http://www.freesound.org/people/Sub-d/sounds/46992/"),
    ("bass_voxy", "bass", "bass_voxy_c.flac", "ani_music",
     "http://freesound.org/people/ani_music/sounds/165325/"),
    ("pad_drone", "pad", "ambi_drone.flac", "Autistic Lucario",
     "http://freesound.org/people/Autistic%20Lucario/sounds/195341/"),
    ("piano_ambient", "piano", "ambi_piano.flac", "Rutger Muller",
     "http://freesound.org/people/RutgerMuller/sounds/51245/"),
    ("tabla_loop", "tabla", "loop_tabla.flac", "lezaarth",
     "http://freesound.org/people/lezaarth/sounds/242591/"),
]


# ------------------------------------------------------------------- audio
def write_midi(notes, bpm, program, path):
    """Single-track MIDI file: tempo, program change, notes, 1 s of silence."""
    events = []
    for start, dur, pitch, vel in notes:
        on, off = round(start * TPB), round((start + dur) * TPB)
        events += [(on, 1, pitch, vel), (off, 0, pitch, 0)]
    events.sort()  # at equal ticks note-offs (0) come before note-ons (1)

    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    track.append(mido.Message("program_change", program=program, channel=0, time=0))
    now = 0
    for tick, is_on, pitch, vel in events:
        kind = "note_on" if is_on else "note_off"
        track.append(mido.Message(kind, note=pitch, velocity=vel, channel=0,
                                  time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=round(bpm / 60 * TPB)))
    mid = mido.MidiFile(type=0, ticks_per_beat=TPB)
    mid.tracks.append(track)
    mid.save(path)


def fluidsynth(mid_path, wav_path):
    subprocess.run(["fluidsynth", "-ni", "-g", "0.8", "-F", str(wav_path),
                    "-r", str(SR), str(SOUNDFONT), str(mid_path)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def to_mono(x):
    return x.mean(axis=1) if x.ndim == 2 else x


def resample(x, sr):
    """Linear-interpolation resampling to SR (unused when the input is 44.1 kHz)."""
    if sr == SR:
        return x
    n = int(round(len(x) * SR / sr))
    return np.interp(np.arange(n) * sr / SR, np.arange(len(x)), x)


def fade_out(x, seconds):
    n = min(len(x), int(seconds * SR))
    x = x.copy()
    x[len(x) - n:] *= np.linspace(1.0, 0.0, n)
    return x


def save(x, name):
    """Peak-normalise, write 16-bit WAV, return a few stats."""
    peak = np.abs(x).max()
    if peak < 1e-4:
        raise RuntimeError(f"{name}: silent")
    x = PEAK * x / peak
    path = DATA / f"{name}.wav"
    sf.write(path, x.astype(np.float32), SR, subtype="PCM_16")
    rms = float(np.sqrt(np.mean(x ** 2)))
    if rms < 0.02:
        raise RuntimeError(f"{name}: too quiet (RMS {rms:.4f})")
    return {"duration": round(len(x) / SR, 3), "rms": rms, "peak": float(np.abs(x).max())}


def render_melodies(tmp):
    clips = []
    for melody, (notes_fn, bpm, description) in MELODIES.items():
        notes = notes_fn()
        end = max(s + d for s, d, _, _ in notes) * 60 / bpm
        assert end <= CLIP_SECONDS - 0.15, (melody, end)
        for instrument, program in INSTRUMENTS.items():
            name = f"{melody}_{instrument}"
            mid, wav = tmp / f"{name}.mid", tmp / f"{name}.wav"
            write_midi(notes, bpm, program, mid)
            fluidsynth(mid, wav)
            x, sr = sf.read(wav, always_2d=True)
            assert sr == SR
            x = to_mono(x)[: int(CLIP_SECONDS * SR)]
            x = np.pad(x, (0, int(CLIP_SECONDS * SR) - len(x)))
            stats = save(fade_out(x, FADE_SECONDS), name)
            clips.append({
                "name": name, "file": f"{name}.wav", "duration": stats["duration"],
                "sample_rate": SR, "instrument": instrument, "melody": melody,
                "kind": "rendered",
                "source": f"{description}; rendered with FluidSynth and the FluidR3_GM "
                          f"soundfont, GM program {program} ({INSTRUMENT_NAMES[instrument]})",
                "licence": "composition: public domain; FluidR3_GM soundfont: MIT "
                           "(Frank Wen)",
            })
            print(f"{name:20s} {stats['duration']:5.2f} s  RMS {stats['rms']:.3f}  "
                  f"peak {stats['peak']:.2f}")
    return clips


def trim_recordings():
    clips = []
    for name, instrument, filename, author, url in RECORDINGS:
        x, sr = sf.read(SAMPLES / filename, always_2d=True)
        x = resample(to_mono(x), sr)
        # drop leading near-silence (below -40 dB of the peak)
        loud = np.flatnonzero(np.abs(x) > 0.01 * np.abs(x).max())
        x = x[loud[0]:]
        if len(x) < MIN_RECORDING * SR:
            print(f"{name:20s} skipped: {filename} is only {len(x) / SR:.2f} s")
            continue
        if len(x) > MAX_RECORDING * SR:
            x = fade_out(x[: int(MAX_RECORDING * SR)], 0.05)
        stats = save(x, name)
        clips.append({
            "name": name, "file": f"{name}.wav", "duration": stats["duration"],
            "sample_rate": SR, "instrument": instrument, "melody": None,
            "kind": "recording",
            "source": f"sonic-pi-samples: {filename} by {author} ({url}), "
                      f"trimmed, mono",
            "licence": "CC0",
        })
        print(f"{name:20s} {stats['duration']:5.2f} s  RMS {stats['rms']:.3f}  "
              f"peak {stats['peak']:.2f}  <- {filename}")
    return clips


def benchmark():
    """Triples (content A on P, style B on Q, truth A on Q) with A != B, P != Q."""
    melodies, instruments = list(MELODIES), list(INSTRUMENTS)
    triples = []
    for a, content_melody in enumerate(melodies):
        for shift in (1, 2, 3):
            style_melody = melodies[(a + shift) % 4]
            p = instruments[(a + shift - 1) % 4]
            q = instruments[(a + 2 * shift - 1) % 4]
            triples.append({"content": f"{content_melody}_{p}",
                            "style": f"{style_melody}_{q}",
                            "truth": f"{content_melody}_{q}"})
    return triples


def main():
    for tool in ("fluidsynth",):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (apt install fluidsynth fluid-soundfont-gm)")
    for path in (SOUNDFONT, SAMPLES):
        if not path.exists():
            sys.exit(f"{path} not found (apt install fluid-soundfont-gm sonic-pi-samples)")
    with tempfile.TemporaryDirectory() as tmp:
        clips = render_melodies(Path(tmp))
    clips += trim_recordings()
    catalog = {"clips": clips, "benchmark": benchmark()}
    (DATA / "catalog.json").write_text(json.dumps(catalog, indent=2) + "\n")
    print(f"{len(clips)} clips, {len(catalog['benchmark'])} benchmark triples "
          f"-> {DATA / 'catalog.json'}")


# =================================================================== benchmark set (issue 12)
# python data/render.py --benchmark [--out DIR] [--subset small]
#
# Benchmark melodies x instruments: melody A on instrument Q is the right answer for
# "content A on P + style (melody B) on Q". Training material for the instrument probe
# (scales, arpeggios, long notes, other melodies, several velocities and registers) is
# rendered on every instrument too and appears in no triple. All instruments play exactly
# the same notes, so pitch says nothing about the instrument.
#
# Speed: one MIDI file per instrument holds every piece, one after another, SEGMENT seconds
# apart; FluidSynth renders it once (the soundfont loads once) and the pieces are cut out.

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

BENCH_VERSION = 2       # 2: every clip carries its MIDI notes
BENCH_DIR = DATA / "cache" / "benchmark"
SEGMENT = 7.0             # seconds between the starts of two pieces in one render
BENCH_LAST_NOTE = 4.7     # every piece ends by then; clips are CLIP_SECONDS long

# name: (General MIDI program, 0-based; family)
BENCH_INSTRUMENTS = {
    "piano": (0, "keyboards"), "epiano": (4, "keyboards"), "harpsichord": (6, "keyboards"),
    "vibraphone": (11, "mallets"), "marimba": (12, "mallets"), "organ": (19, "organ"),
    "guitar": (24, "plucked"), "harp": (46, "plucked"),
    "violin": (40, "bowed strings"), "cello": (42, "bowed strings"),
    "flute": (73, "woodwinds"), "clarinet": (71, "woodwinds"), "oboe": (68, "woodwinds"),
    "trumpet": (56, "brass"), "horn": (60, "brass"), "trombone": (57, "brass"),
}
GM_NAMES = {0: "Acoustic Grand Piano", 4: "Electric Piano 1", 6: "Harpsichord", 11: "Vibraphone",
            12: "Marimba", 19: "Church Organ", 24: "Acoustic Guitar (nylon)", 46: "Orchestral Harp",
            40: "Violin", 42: "Cello", 73: "Flute", 71: "Clarinet", 68: "Oboe", 56: "Trumpet",
            60: "French Horn", 57: "Trombone"}
# Style instruments of the two splits: test's appear in no dev triple (one per family, and more).
DEV_STYLES = ["piano", "vibraphone", "guitar", "violin", "flute", "oboe", "trumpet", "trombone"]
TEST_STYLES = ["harpsichord", "marimba", "organ", "harp", "cello", "clarinet", "horn", "epiano"]
PER_STYLE = {"dev": 3, "test": 4}   # triples per style instrument -> 24 dev, 32 test


def line(text, velocity=80, legato=0.95, transpose=0):
    """'F#4:1 R:0.5 C4+E4:2' -> notes (start, duration, pitch, velocity); times in quarters.

    'R' is a rest; '+' joins the pitches of a chord.
    """
    notes, t = [], 0.0
    for token in text.split():
        pitches, length = token.split(":")
        length = float(length)
        if pitches != "R":
            notes += [(t, legato * length, midi(p) + transpose, velocity) for p in pitches.split("+")]
        t += length
    return notes


def long_notes(velocity):
    """Four held notes across the registers, with gaps: attack, sustain and release in full."""
    return [(i * 1.2, 0.9, midi(p), velocity) for i, p in enumerate(["G3", "D4", "B4", "F5"])]


def broken_chords():
    """Held bass notes under sixteenth-note broken chords (A minor, G major): a polyphonic texture."""
    notes = []
    for bar, chord in enumerate(["A3 C4 E4 A4 C5", "G3 B3 D4 G4 B4"]):
        p1, p2, p3, p4, p5 = (midi(p) for p in chord.split())
        for half in range(2):
            t = 4 * bar + 2 * half
            notes += [(t, 2.0, p1, 62), (t + 0.25, 1.75, p2, 58)]
            notes += [(t + 0.5 + 0.25 * i, 0.25, p, 66) for i, p in enumerate([p3, p4, p5, p4, p3, p4])]
    return notes


# name: (notes, tempo in quarters per minute, monophonic, source). Public-domain tunes.
BENCH_MELODIES = {
    "ode": (line("F#4:1 F#4:1 G4:1 A4:1 A4:1 G4:1 F#4:1 E4:1 D4:1 D4:1 E4:1 F#4:1 F#4:1.5 E4:0.5 E4:2"),
            210, True, "Beethoven, Symphony no. 9, IV, 'Ode to Joy', first phrase"),
    "twinkle": (line("C5:1 C5:1 G5:1 G5:1 A5:1 A5:1 G5:2 F5:1 F5:1 E5:1 E5:1 D5:1 D5:1 C5:2"),
                210, True, "'Ah! vous dirai-je, maman' (Twinkle, twinkle), French folk tune"),
    "frere": (line("F4:1 G4:1 A4:1 F4:1 F4:1 G4:1 A4:1 F4:1 A4:1 Bb4:1 C5:2 A4:1 Bb4:1 C5:2"),
              210, True, "'Frere Jacques', French folk round, first voice"),
    "nachtmusik": (line("G4:1 R:0.5 D4:0.5 G4:1 R:0.5 D4:0.5 G4:0.5 D4:0.5 G4:0.5 B4:0.5 D5:2 "
                        "C5:1 R:0.5 A4:0.5 C5:1 R:0.5 A4:0.5 C5:0.5 A4:0.5 F#4:0.5 A4:0.5 D4:2", legato=0.8),
                   210, True, "Mozart, Eine kleine Nachtmusik K. 525, I, bars 1-4"),
    "minuet": (line("D5:1 G4:0.5 A4:0.5 B4:0.5 C5:0.5 D5:1 G4:1 G4:1 E5:1 C5:0.5 D5:0.5 E5:0.5 F#5:0.5 G5:1 G4:1 G4:1"),
               170, True, "C. Petzold, Minuet in G (BWV Anh. 114), bars 1-4"),
    "greensleeves": (line("A4:1 C5:2 D5:1 E5:1.5 F5:0.5 E5:1 D5:2 B4:1 G4:1.5 A4:0.5 B4:1 C5:2 A4:1"),
                     210, True, "'Greensleeves', English folk tune, first phrase"),
    "furelise": (line("E5:0.5 D#5:0.5 E5:0.5 D#5:0.5 E5:0.5 B4:0.5 D5:0.5 C5:0.5 A4:1.5 "
                      "C4:0.5 E4:0.5 A4:0.5 B4:1.5 E4:0.5 G#4:0.5 B4:0.5 C5:1.5"),
                 150, True, "Beethoven, 'Fur Elise' WoO 59, right hand, bars 1-4"),
    "prelude": (prelude(), 105, False, "J. S. Bach, Prelude in C major BWV 846, bars 1-2 (arpeggiated chords, held notes)"),
}

# Probe training material: on every instrument, in no triple. name: (notes, tempo, monophonic, what)
TRAIN_PIECES = {
    "scale_major": (line("D4:0.5 E4:0.5 F#4:0.5 G4:0.5 A4:0.5 B4:0.5 C#5:0.5 D5:0.5 "
                         "C#5:0.5 B4:0.5 A4:0.5 G4:0.5 F#4:0.5 E4:0.5 D4:1", velocity=90), 120, True, "D major scale, eighths"),
    "scale_minor": (line("A3:1 B3:1 C4:1 D4:1 E4:1 F4:1 G#4:1 A4:2", velocity=60), 120, True, "A harmonic minor scale, soft"),
    "scale_high": (line("Bb5:0.5 C6:0.5 D6:0.5 Eb6:0.5 F6:0.5 G6:0.5 A6:0.5 Bb6:1", velocity=80), 100, True, "Bb major scale, high register"),
    "chromatic": (line(" ".join(f"{p}:0.25" for p in "F4 F#4 G4 G#4 A4 A#4 B4 C5 C#5 D5 D#5 E5 F5 E5 D#5 D5 C#5 C5 B4 A#4".split()),
                       velocity=75), 100, True, "chromatic run, sixteenths"),
    "arpeggio_major": (line("C4:0.5 E4:0.5 G4:0.5 C5:0.5 E5:0.5 G5:0.5 C6:1 G5:0.5 E5:0.5 C5:0.5 G4:0.5 E4:0.5 C4:1",
                            velocity=100), 130, True, "C major arpeggio, two octaves, loud"),
    "arpeggio_minor": (line("E4:1 G4:1 B4:1 E5:1 B4:1 G4:1 E4:2", velocity=70, legato=0.5), 120, True,
                       "E minor arpeggio, staccato"),
    "arpeggio_low": (line("C3:1 G3:1 C4:1 E4:1 G3:1 C3:2", velocity=95), 110, True, "C major arpeggio, low register"),
    "long_notes": (long_notes(85), 60, True, "four held notes, G3 to F5"),
    "long_soft": (long_notes(45), 60, True, "four held notes, very soft"),
    "upper": (line("G5:0.5 F5:0.5 E5:0.5 D5:0.5 C5:1 E5:1 G5:1 A5:0.5 G5:0.5 F5:1 D5:1 C5:2", velocity=80), 150, True,
              "a tune in the upper register (C5 to A5)"),
    "auclair": (line("C4:1 C4:1 C4:1 D4:1 E4:2 D4:2 C4:1 E4:1 D4:1 D4:1 C4:4", velocity=85, transpose=5), 220, True,
                "'Au clair de la lune', French folk tune"),
    "lullaby": (line("E4:0.5 E4:0.5 G4:2 E4:0.5 E4:0.5 G4:2 E4:0.5 G4:0.5 C5:1 B4:1.5 A4:0.5 A4:1 G4:1",
                     velocity=100, transpose=2), 160, True, "Brahms, Wiegenlied op. 49 no. 4"),
    "broken_chords": (broken_chords(), 105, False, "broken chords over held notes (A minor, G major), as a keyboard prelude"),
    "chorale": (line("C4+E4+G4+C5:1 F3+A4+C5+F4:1 G3+B3+D4+G4:1 C4+E4+G4+C5:1 A3+C4+E4+A4:1 D4+F4+A4+D5:1 "
                     "G3+B3+D4+F4:1 C4+E4+G4+C5:2", velocity=75, legato=0.9), 120, False, "four-part block chords"),
    "thirds": (line("C4+E4:1 D4+F4:1 E4+G4:1 F4+A4:1 G4+B4:1 A4+C5:1 B4+D5:1 C5+E5:2", velocity=70), 120, False,
               "scale in thirds (two voices)"),
}

SUBSET_SMALL = {"instruments": ["piano", "violin", "flute", "trumpet"],
                "melodies": ["ode", "twinkle", "minuet"],
                "train": ["scale_major", "arpeggio_major", "arpeggio_minor", "long_notes", "lullaby", "broken_chords"],
                "dev": ["piano", "flute"], "test": ["violin", "trumpet"], "per_style": 2}

LICENCE = "compositions: public domain; FluidR3_GM soundfont: MIT (Frank Wen)"
# The second sound source: the benchmark melodies (not the probe's training pieces) on the same
# instruments through another soundfont, for the splits "test-musescore" (the test triples, its clips:
# nothing is tuned or trained on it) and "dev-musescore" (the dev triples, to tune against a sound the
# probe never heard). Debian: musescore-general-soundfont.
SOUNDFONT2 = Path("/usr/share/sounds/sf3/MuseScore_General_Full.sf3")
SOUNDFONT2_NAME = "musescore"
LICENCE2 = "MuseScore General soundfont: MIT (S. Christian Collins)"
SOUNDFONT_NAMES = {"fluidr3": "FluidR3_GM", SOUNDFONT2_NAME: "MuseScore_General"}


def bench_dir():
    """The cache folder: $LABUTILS_BENCHMARK_DIR or data/cache/benchmark/."""
    return Path(os.environ.get("LABUTILS_BENCHMARK_DIR") or BENCH_DIR)


def _seconds(notes, bpm):
    return [(s * 60 / bpm, d * 60 / bpm, p, v) for s, d, p, v in notes]


def write_timeline(pieces, program, path):
    """One MIDI file, pieces (lists of notes in seconds) SEGMENT seconds apart, 60 bpm."""
    events = []
    for k, notes in enumerate(pieces):
        for start, dur, pitch, vel in notes:
            on, off = round((k * SEGMENT + start) * TPB), round((k * SEGMENT + start + dur) * TPB)
            events += [(on, 1, pitch, vel), (off, 0, pitch, 0)]
    events.sort()
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60), time=0))
    track.append(mido.Message("program_change", program=program, channel=0, time=0))
    now = 0
    for tick, is_on, pitch, vel in events:
        track.append(mido.Message("note_on" if is_on else "note_off", note=pitch, velocity=vel,
                                  channel=0, time=tick - now))
        now = tick
    end = round(len(pieces) * SEGMENT * TPB)
    track.append(mido.MetaMessage("end_of_track", time=max(end - now, 0)))
    mid = mido.MidiFile(type=0, ticks_per_beat=TPB)
    mid.tracks.append(track)
    mid.save(path)


def render_instrument(instrument, pieces, tmp, sr, soundfont=SOUNDFONT):
    """Render every piece on one instrument -> list of mono float arrays of CLIP_SECONDS."""
    program = BENCH_INSTRUMENTS[instrument][0]
    tag = Path(soundfont).stem
    mid, wav = Path(tmp) / f"{instrument}-{tag}.mid", Path(tmp) / f"{instrument}-{tag}.wav"
    write_timeline(pieces, program, mid)
    # An sf3 soundfont's samples are Ogg Vorbis: decoding all of them at load takes ~20 s, so load
    # only those of the program played (output unchanged; the sf2 render keeps its old command).
    lazy = ["-o", "synth.dynamic-sample-loading=1"] if Path(soundfont).suffix == ".sf3" else []
    subprocess.run(["fluidsynth", "-ni", *lazy, "-g", "0.8", "-O", "float", "-F", str(wav), "-r", str(sr),
                    str(soundfont), str(mid)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    x, got = sf.read(wav, always_2d=True, dtype="float64")
    assert got == sr, (wav, got)
    x = to_mono(x)
    n = int(CLIP_SECONDS * sr)
    out = []
    for k in range(len(pieces)):
        start = int(round(k * SEGMENT * sr))
        clip = np.pad(x[start:start + n], (0, max(0, start + n - len(x))))
        fade = int(FADE_SECONDS * sr)
        clip[n - fade:] *= np.linspace(1.0, 0.0, fade)
        out.append(clip)
    return out


def split_triples(styles, instruments, melodies, per_style):
    """Deterministic triples for one split: for each style instrument Q, ``per_style`` pairs of
    content melody A on P != Q and style melody B != A on Q (truth: A on Q)."""
    triples = []
    for qi, q in enumerate(styles):
        contents = [p for p in instruments if p != q]
        for k in range(per_style):
            i = qi * per_style + k
            a = melodies[i % len(melodies)]
            b = melodies[(3 * i + qi + 1) % len(melodies)]
            if b == a:
                b = melodies[(melodies.index(a) + 1) % len(melodies)]
            p = contents[(5 * qi + 7 * k + 3) % len(contents)]
            triples.append({"content": f"{a}_{p}", "style": f"{b}_{q}", "truth": f"{a}_{q}"})
    return triples


def midi_notes(notes):
    """The score of one clip as the catalog keeps it: ``[[onset_s, offset_s, midi_pitch, velocity], ...]``
    sorted by onset, times rounded to 0.1 ms. Onsets and offsets are the MIDI note-on and note-off
    times (the instrument's release rings on past the offset)."""
    return [[round(s, 4), round(s + d, 4), int(p), int(v)] for s, d, p, v in sorted(notes)]


def second_source_triples(triples):
    """The same triples, every clip name pointing at its second-soundfont rendering."""
    return [{k: f"{v}_{SOUNDFONT2_NAME}" for k, v in t.items()} for t in triples]


def render_benchmark(out, *, subset="full", sr=SR, jobs=2, second=None):
    """Render the benchmark set into ``out`` and write out/catalog.json; returns the catalog.

    ``second``: also render the benchmark melodies with :data:`SOUNDFONT2` (splits
    "dev-musescore" and "test-musescore"); None = when that soundfont is installed."""
    if second is None:
        second = SOUNDFONT2.is_file()
    small = subset == "small"
    instruments = SUBSET_SMALL["instruments"] if small else list(BENCH_INSTRUMENTS)
    melodies = SUBSET_SMALL["melodies"] if small else list(BENCH_MELODIES)
    train = SUBSET_SMALL["train"] if small else list(TRAIN_PIECES)
    styles = {s: SUBSET_SMALL[s] if small else (DEV_STYLES if s == "dev" else TEST_STYLES) for s in ("dev", "test")}
    per_style = {s: SUBSET_SMALL["per_style"] if small else PER_STYLE[s] for s in ("dev", "test")}
    assert not set(styles["dev"]) & set(styles["test"])

    table = [("benchmark", m, *BENCH_MELODIES[m]) for m in melodies] + [("train", m, *TRAIN_PIECES[m]) for m in train]
    pieces = []
    for role, name, notes, bpm, mono, source in table:
        secs = _seconds(notes, bpm)
        end = max(s + d for s, d, _, _ in secs)
        assert end <= BENCH_LAST_NOTE, (name, end)
        pieces.append(secs)

    out = Path(out)
    for folder in ("clips", "train") + ((f"clips-{SOUNDFONT2_NAME}",) if second else ()):
        (out / folder).mkdir(parents=True, exist_ok=True)
    n_bench = sum(role == "benchmark" for role, *_ in table)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=jobs) as pool:
        rendered = dict(zip(instruments, pool.map(lambda i: render_instrument(i, pieces, tmp, sr), instruments)))
        rendered2 = (dict(zip(instruments, pool.map(
            lambda i: render_instrument(i, pieces[:n_bench], tmp, sr, SOUNDFONT2), instruments))) if second else {})

    clips = []
    for instrument in instruments:
        for (role, name, _notes, _bpm, mono, _source), x, secs in zip(table, rendered[instrument], pieces):
            clip_name = f"{name}_{instrument}"
            file = f"{'clips' if role == 'benchmark' else 'train'}/{clip_name}.wav"
            peak = np.abs(x).max()
            if peak < 1e-4:
                raise RuntimeError(f"{clip_name}: silent")
            sf.write(out / file, (PEAK * x / peak).astype(np.float32), sr, subtype="PCM_16")
            clips.append({"name": clip_name, "file": file, "instrument": instrument, "melody": name, "role": role,
                          "monophonic": mono, "duration": CLIP_SECONDS, "sample_rate": sr,
                          "soundfont": SOUNDFONT_NAMES["fluidr3"], "notes": midi_notes(secs)})
    for instrument in rendered2:
        for (role, name, _notes, _bpm, mono, _source), x, secs in zip(table, rendered2[instrument], pieces):
            clip_name = f"{name}_{instrument}_{SOUNDFONT2_NAME}"
            file = f"clips-{SOUNDFONT2_NAME}/{clip_name}.wav"
            peak = np.abs(x).max()
            if peak < 1e-4:
                raise RuntimeError(f"{clip_name}: silent ({SOUNDFONT2})")
            sf.write(out / file, (PEAK * x / peak).astype(np.float32), sr, subtype="PCM_16")
            clips.append({"name": clip_name, "file": file, "instrument": instrument, "melody": name,
                          "role": f"benchmark-{SOUNDFONT2_NAME}", "monophonic": mono, "duration": CLIP_SECONDS,
                          "sample_rate": sr, "soundfont": SOUNDFONT_NAMES[SOUNDFONT2_NAME], "notes": midi_notes(secs)})
    splits = {s: {"style_instruments": styles[s], "soundfont": SOUNDFONT_NAMES["fluidr3"],
                  "triples": split_triples(styles[s], instruments, melodies, per_style[s])} for s in ("dev", "test")}
    if second:
        for s in ("dev", "test"):
            splits[f"{s}-{SOUNDFONT2_NAME}"] = {"style_instruments": styles[s],
                                                "soundfont": SOUNDFONT_NAMES[SOUNDFONT2_NAME],
                                                "triples": second_source_triples(splits[s]["triples"])}
    catalog = {
        "version": BENCH_VERSION, "subset": subset, "sample_rate": sr, "clip_seconds": CLIP_SECONDS,
        "licence": LICENCE + ("; " + LICENCE2 if second else ""),
        "instruments": {i: {"program": BENCH_INSTRUMENTS[i][0], "family": BENCH_INSTRUMENTS[i][1],
                            "gm_name": GM_NAMES[BENCH_INSTRUMENTS[i][0]]} for i in instruments},
        "melodies": {name: {"role": role, "monophonic": mono, "source": source}
                     for role, name, _n, _b, mono, source in table},
        "clips": clips,
        "splits": splits,
    }
    (out / "catalog.json").write_text(json.dumps(catalog, indent=2) + "\n")
    return catalog


def benchmark_main(argv):
    parser = argparse.ArgumentParser(description="Render the quality-benchmark set (issue 12).")
    parser.add_argument("--benchmark", action="store_true", required=True)
    parser.add_argument("--out", type=Path, default=None, help="folder (default $LABUTILS_BENCHMARK_DIR or data/cache/benchmark)")
    parser.add_argument("--subset", choices=["full", "small"], default="full", help="small: 4 instruments x 3 melodies (tests)")
    parser.add_argument("--sample-rate", type=int, default=SR)
    parser.add_argument("--jobs", type=int, default=2, help="FluidSynth renders in parallel")
    parser.add_argument("--second-source", choices=["auto", "yes", "no"], default="auto",
                        help=f"also render the benchmark melodies with {SOUNDFONT2} (splits dev-{SOUNDFONT2_NAME} and "
                             f"test-{SOUNDFONT2_NAME}); "
                             "auto: when it is installed")
    args = parser.parse_args(argv)
    if args.second_source == "yes" and not SOUNDFONT2.is_file():
        sys.exit(f"{SOUNDFONT2} not found: install it with `sudo apt-get install musescore-general-soundfont`, "
                 f"then run `make benchmark-data` again")
    if args.second_source == "auto" and not SOUNDFONT2.is_file():
        print(f"note: {SOUNDFONT2} not found, so the splits dev-{SOUNDFONT2_NAME} and test-{SOUNDFONT2_NAME} are not rendered "
              f"(`sudo apt-get install musescore-general-soundfont`)", file=sys.stderr)
    if shutil.which("fluidsynth") is None or not SOUNDFONT.is_file():
        missing = "fluidsynth" if shutil.which("fluidsynth") is None else str(SOUNDFONT)
        sys.exit(f"{missing} not found: install it with `sudo apt-get install fluidsynth fluid-soundfont-gm`, "
                 f"then run `make benchmark-data` again")
    out = args.out or bench_dir()
    t0 = time.perf_counter()
    cat = render_benchmark(out, subset=args.subset, sr=args.sample_rate, jobs=args.jobs,
                           second=None if args.second_source == "auto" else args.second_source == "yes")
    counts = {role: sum(c["role"] == role for c in cat["clips"]) for role in ("benchmark", "train")}
    second = sum(c["role"] == f"benchmark-{SOUNDFONT2_NAME}" for c in cat["clips"])
    print(f"{counts['benchmark']} benchmark clips ({len(cat['instruments'])} instruments x "
          f"{counts['benchmark'] // len(cat['instruments'])} melodies), {counts['train']} probe-training clips, "
          f"{len(cat['splits']['dev']['triples'])} dev / {len(cat['splits']['test']['triples'])} test triples"
          + (f", {second} clips and {len(cat['splits'][f'dev-{SOUNDFONT2_NAME}']['triples'])} dev-{SOUNDFONT2_NAME} / "
             f"{len(cat['splits'][f'test-{SOUNDFONT2_NAME}']['triples'])} test-{SOUNDFONT2_NAME} "
             f"triples from the second soundfont" if second else "")
          + f" -> {out / 'catalog.json'} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    if "--benchmark" in sys.argv[1:]:
        benchmark_main(sys.argv[1:])
    else:
        main()
