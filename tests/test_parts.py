"""The per-sample record without the renderer: :func:`modeling.parts.split_parts` and
:func:`modeling.generation.outputs.sample_record` import no matplotlib, so the registered MLflow
model (whose requirements leave matplotlib out) can build its output rows with the CLI's record.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from note_seq.protobuf import music_pb2

from modeling.parts import CHORD_INSTRUMENT, split_parts

REPO = Path(__file__).resolve().parents[1]


def _lead_sheet(chord_symbols: bool) -> music_pb2.NoteSequence:
    ns = music_pb2.NoteSequence()
    ns.notes.add(pitch=60, start_time=0.0, end_time=0.5, velocity=80)
    ns.notes.add(pitch=48, start_time=0.0, end_time=2.0, velocity=60, instrument=CHORD_INSTRUMENT)
    ns.notes.add(pitch=36, start_time=0.0, end_time=0.5, velocity=60, is_drum=True)
    if chord_symbols:
        ta = ns.text_annotations.add(time=0.0, text="C")
        ta.annotation_type = music_pb2.NoteSequence.TextAnnotation.CHORD_SYMBOL
    return ns


def test_split_parts_tells_chords_from_melody() -> None:
    """Instrument 1 is a backing chord only beside chord symbols (improv); drums never count."""
    melody, chords = split_parts(_lead_sheet(chord_symbols=True))
    assert [n.pitch for n in melody] == [60] and [n.pitch for n in chords] == [48]
    melody, chords = split_parts(_lead_sheet(chord_symbols=False))
    assert [n.pitch for n in melody] == [60, 48] and chords == []


_RECORD = """
import json, sys, types
import numpy as np
from note_seq.protobuf import music_pb2
from modeling.generation.outputs import sample_record
from modeling.generation.plan import Sample
from modeling.generation.request import Request

ns = music_pb2.NoteSequence(total_time=1.0)
ns.notes.add(pitch=60, start_time=0.0, end_time=0.5, velocity=80)
model = types.SimpleNamespace(variant="basic_rnn", family="melody")
plan = types.SimpleNamespace(info={"primer_source": "primer_melody"}, metered=True)
sample = Sample(np.array([14, 0, 1]), -2.5, 2, 1, True)
record = sample_record(model, Request(num_outputs=1, seed=7), plan, sample, ns, 1)
print(json.dumps({"record": record, "matplotlib": "matplotlib" in sys.modules}))
"""


def test_sample_record_imports_no_matplotlib() -> None:
    """A fresh interpreter builds a record without loading matplotlib (``modeling.render``)."""
    out = subprocess.run(
        [sys.executable, "-c", _RECORD], cwd=REPO, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["matplotlib"] is False
    record = result["record"]
    assert record["events"] == [14, 0, 1] and record["seed"] == 7
    assert record["num_notes"] == record["num_melody_notes"] == 1
    assert record["num_chord_notes"] == 0 and record["reached_length"] is True
