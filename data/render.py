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


if __name__ == "__main__":
    main()
