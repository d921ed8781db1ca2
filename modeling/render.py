"""Turning a generated NoteSequence into what a person wants: MIDI, a piano roll, and sound.

Used by ``modeling.generate`` (every sample), the batch-generation stage, the studio and the
evaluation report. Audio goes through FluidSynth with a General MIDI soundfont when both are
installed (Debian: ``fluidsynth fluid-soundfont-gm``), else through note-seq's additive synthesiser,
so a WAV is always produced; the returned record says which renderer made it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import note_seq
import numpy as np
from matplotlib.patches import Rectangle
from note_seq.protobuf import music_pb2
from scipy.io import wavfile

from modeling.parts import split_parts  # also read as render.split_parts (studio.jobs)

SAMPLE_RATE = 22050
SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)


def find_soundfont() -> str | None:
    """A General MIDI soundfont: ``$MOTIF_SOUNDFONT`` or a Debian location, if any exists."""
    candidates = [os.environ.get("MOTIF_SOUNDFONT", ""), *SOUNDFONTS]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def write_midi(ns: music_pb2.NoteSequence, path: Path) -> Path:
    """Write ``ns`` as a standard MIDI file (atomically)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    note_seq.sequence_proto_to_midi_file(ns, str(tmp))
    os.replace(tmp, path)
    return path


MELODY_COLOUR = "#1f4e9c"  # blue: the generated line (every note of a single-part piece)
CHORD_COLOUR = "#e07b00"  # orange: backing chords, far from blue for colour-blind readers too
PIXELS_PER_SECOND = 45
"""Piano-roll width per second of music at 90 dpi: a 16th note at 120 bpm is ~6 px wide."""
MAX_ROLL_INCHES = 60.0  # 5,400 px: pages scroll a long roll sideways instead of shrinking text


def _note_name(pitch: int) -> str:
    from modeling.music import PITCH_CLASS_NAMES as names

    return f"{names[pitch % 12]}{pitch // 12 - 1}"


def piano_roll_png(
    ns: music_pb2.NoteSequence, path: Path, title: str = "", primer_end: float | None = None
) -> Path:
    """Draw notes as bars (time x pitch): melody blue, backing chords orange, velocity as
    opacity, the primer shaded, chord names in a lane above the notes, and a legend.

    The width grows with the piece (:data:`PIXELS_PER_SECOND`) so axis text keeps its size at
    64 bars; pages show a long roll in a sideways-scrolling box rather than shrinking it.
    """
    from matplotlib.patches import Patch

    melody, chord_notes = split_parts(ns)
    notes = melody + chord_notes
    symbols = [
        ta
        for ta in ns.text_annotations
        if ta.annotation_type == music_pb2.NoteSequence.TextAnnotation.CHORD_SYMBOL
    ]
    end = max([n.end_time for n in notes] + [ns.total_time, 1.0])
    lo = min([n.pitch for n in notes], default=60) - 2
    hi = max([n.pitch for n in notes], default=72) + 2
    top = hi + (4 if symbols else 0)  # a lane for the chord names above the highest note
    width = min(MAX_ROLL_INCHES, max(7.0, 1.6 + end * PIXELS_PER_SECOND / 90))
    fig, ax = plt.subplots(figsize=(width, 3.4), dpi=90)
    for group, colour in ((melody, MELODY_COLOUR), (chord_notes, CHORD_COLOUR)):
        for n in group:
            ax.add_patch(
                Rectangle(
                    (n.start_time, n.pitch - 0.4),
                    max(n.end_time - n.start_time, 0.02),
                    0.8,
                    facecolor=colour,
                    alpha=0.35 + 0.65 * (n.velocity / 127.0),
                    linewidth=0,
                )
            )
    if primer_end:
        ax.axvspan(0, primer_end, color="0.88", zorder=-1)
    for i, ta in enumerate(symbols):
        nxt = symbols[i + 1].time if i + 1 < len(symbols) else end
        ax.axhspan(hi, top, xmin=ta.time / end, xmax=nxt / end, color=("#fbe3c8", "#fdf1e3")[i % 2])
        ax.axvline(ta.time, color="0.8", linewidth=0.6, zorder=-1)
        ax.text(
            ta.time + 0.05,
            (hi + top) / 2,
            ta.text,
            fontsize=11,
            fontweight="bold",
            va="center",
            ha="left",
            color="#6b3a00",
            clip_on=True,
        )
    ax.set_xlim(0, end)
    ax.set_ylim(lo, top)
    cs = [p for p in range(lo, hi + 1) if p % 12 == 0]
    ax.set_yticks(cs or [lo + 2], [_note_name(p) for p in cs] or [_note_name(lo + 2)])
    ax.tick_params(labelsize=10)
    ax.set_xlabel("seconds", fontsize=10)
    ax.set_ylabel("pitch", fontsize=10)
    handles = [Patch(color=MELODY_COLOUR, label="melody" if chord_notes or symbols else "notes")]
    if chord_notes:
        handles.append(Patch(color=CHORD_COLOUR, label="backing chords"))
    if primer_end:
        handles.append(Patch(color="0.88", label="primer"))
    ax.legend(
        handles=handles,
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=len(handles),
        fontsize=10,
        frameon=False,
        borderaxespad=0.2,
    )
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _fluidsynth(midi: Path, wav: Path, soundfont: str) -> bool:
    exe = shutil.which("fluidsynth")
    if not exe:
        return False
    cmd = [exe, "-ni", "-g", "0.8", "-r", str(SAMPLE_RATE), "-F", str(wav), soundfont, str(midi)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and wav.is_file() and wav.stat().st_size > 44


def render_audio(ns: music_pb2.NoteSequence, path: Path) -> str:
    """Write a WAV of ``ns`` at ``path``; returns the renderer used ("fluidsynth" or "synth")."""
    soundfont = find_soundfont()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp_wav = Path(tmpdir) / "out.wav"
        if soundfont:
            midi = write_midi(ns, Path(tmpdir) / "in.mid")
            if _fluidsynth(midi, tmp_wav, soundfont):
                shutil.move(str(tmp_wav), path)
                return "fluidsynth"
        audio = note_seq.midi_synth.synthesize(ns, sample_rate=SAMPLE_RATE)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        pcm = (audio / peak * 0.8 * 32767).astype(np.int16) if peak > 0 else audio.astype(np.int16)
        wavfile.write(tmp_wav, SAMPLE_RATE, pcm)
        shutil.move(str(tmp_wav), path)
    return "synth"
