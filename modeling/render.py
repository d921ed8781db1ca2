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


def piano_roll_png(
    ns: music_pb2.NoteSequence, path: Path, title: str = "", primer_end: float | None = None
) -> Path:
    """Draw notes as bars (time x pitch), velocity as colour, the primer shaded; chords on top."""
    notes = [n for n in ns.notes if not n.is_drum]
    end = max([n.end_time for n in notes] + [ns.total_time, 1.0])
    lo = min([n.pitch for n in notes], default=60) - 2
    hi = max([n.pitch for n in notes], default=72) + 2
    fig, ax = plt.subplots(figsize=(min(24, 4 + end * 0.6), 3.2), dpi=90)
    cmap = plt.get_cmap("viridis")
    for n in notes:
        ax.add_patch(
            Rectangle(
                (n.start_time, n.pitch - 0.4),
                max(n.end_time - n.start_time, 0.02),
                0.8,
                color=cmap(0.25 + 0.75 * (n.velocity / 127.0)),
                linewidth=0,
            )
        )
    if primer_end:
        ax.axvspan(0, primer_end, color="0.85", zorder=-1, label="primer")
    for ta in ns.text_annotations:
        if ta.annotation_type == music_pb2.NoteSequence.TextAnnotation.CHORD_SYMBOL:
            ax.text(ta.time, hi - 0.5, ta.text, fontsize=7, va="top", color="0.3")
    ax.set_xlim(0, end)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("seconds")
    ax.set_ylabel("MIDI pitch")
    if title:
        ax.set_title(title, fontsize=9)
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


def render_all(
    ns: music_pb2.NoteSequence,
    stem: Path,
    title: str = "",
    primer_end: float | None = None,
    audio: bool = True,
) -> dict[str, str]:
    """MIDI + piano roll (+ WAV) beside each other as ``stem.mid/.png/.wav``; returns the paths."""
    out = {
        "midi": str(write_midi(ns, stem.with_suffix(".mid"))),
        "piano_roll": str(piano_roll_png(ns, stem.with_suffix(".png"), title, primer_end)),
    }
    if audio:
        out["audio_renderer"] = render_audio(ns, stem.with_suffix(".wav"))
        out["audio"] = str(stem.with_suffix(".wav"))
    return out
