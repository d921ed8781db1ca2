"""One family, one place (issue 14): nothing outside ``modeling/families/`` branches on a family
name, and every family module implements the evaluation members of the ``Family`` protocol.

The grep is the issue's own definition of done, in Python with the same regular expression; the
protocol checks run each member on a tiny input (not just ``hasattr``).
"""

from __future__ import annotations

import dataclasses
import re
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from note_seq.protobuf import music_pb2

from modeling.families import FAMILY_MODULES, load_family
from modeling.families.base import Family

REPO = Path(__file__).resolve().parents[1]
BRANCH = re.compile(r"family *(==|!=|in) *[(\"']|\.family *(==|!=|in) ")
"""``grep -rnE "family *(==|!=|in) *[(\"']|\\.family *(==|!=|in) "`` of the issue."""
SCANNED = ("modeling", "pipelines", "studio", "flows")
EVALUATION_FILES = (
    "modeling/evaluate.py",
    "modeling/evaluation",
    "modeling/quality.py",
    "modeling/batch.py",
    "modeling/data.py",
    "modeling/pyfunc.py",
    "modeling/pyfunc_model.py",
)
EVALUATION_MEMBERS = (
    "STATS_INSTRUMENT",
    "STATS_OPTIONS",
    "EVAL_LENGTH",
    "CHORDS",
    "QUALITY_CRITERIA",
    "REQUEST_COLUMNS",
    "EXAMPLE_REQUEST",
    "DEFAULT_PRIMER_WORDS",
    "decode_events",
    "vocabulary_size",
    "uniform_events",
    "generated_span",
    "lowest_pitch",
    "request_controls",
)
# family -> (a variant with a plain one-hot encoding of the stored events, its event space)
CASES = {
    "melody": ("basic_rnn", "melody:48-84"),
    "improv": ("chord_pitches_improv", "melody:48-84"),
    "polyphony": ("polyphony", "polyphony:0-127"),
    "performance": ("performance_with_dynamics", "performance:v32"),
}


def family_branches(paths: tuple[str, ...]) -> list[str]:
    """``path:line: text`` of every line under ``paths`` (outside modeling/families/) that the
    issue's grep matches."""
    hits = []
    for top in paths:
        root = REPO / top
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in files:
            rel = path.relative_to(REPO).as_posix()
            if rel.startswith("modeling/families/") or "__pycache__" in rel:
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if BRANCH.search(line):
                    hits.append(f"{rel}:{n}: {line.strip()}")
    return hits


def test_grep_pattern_is_the_issues() -> None:
    """The pattern finds the branches it is meant to and leaves comparisons of two values."""
    assert BRANCH.search('if family == "improv":')
    assert BRANCH.search("elif family in ('melody', 'improv'):")
    assert BRANCH.search("if cfg.family != performance:")
    assert not BRANCH.search("if family != self.family:")
    assert not BRANCH.search("fam = load_family(cfg.family)")


def test_evaluation_code_names_no_family() -> None:
    """The evaluation stage, the gallery, example sets, the quality bar and the MLflow model
    ask the family protocol instead of branching on a family name."""
    assert family_branches(EVALUATION_FILES) == []


def test_nothing_outside_families_branches_on_a_family_name() -> None:
    """The issue's definition of done: train, generate, evaluate, the studio and the pipelines
    call the family protocol and contain no family-name branch."""
    assert family_branches(SCANNED) == []


def test_evaluation_modules_stay_small() -> None:
    """No module of the evaluation package is over about 500 lines (issue 14)."""
    sizes = {
        p.name: len(p.read_text().splitlines()) for p in (REPO / "modeling/evaluation").glob("*.py")
    }
    assert sizes and max(sizes.values()) <= 500, sizes


def test_protocol_declares_the_evaluation_members() -> None:
    declared = set(vars(Family)) | set(Family.__annotations__)
    assert set(EVALUATION_MEMBERS) <= declared


@pytest.mark.parametrize("name", list(FAMILY_MODULES))
def test_family_implements_the_evaluation_members(name: str) -> None:
    """Each member of each family, run: uniform samples lie in the stored vocabulary (the same
    size as a one-hot encoding's classes) and decode at the requested length; the declared
    lengths, columns and criteria are ones the stages know."""
    from modeling.evaluation.settings import Settings
    from modeling.pyfunc import _COMMON
    from modeling.quality import CRITERIA_GROUPS

    fam = load_family(name)
    missing = [m for m in EVALUATION_MEMBERS if not hasattr(fam, m)]
    assert not missing, missing
    variant, space = CASES[name]
    encoding = fam.VARIANTS[variant].encoding
    assert encoding.event_space == space
    assert fam.vocabulary_size(space) == encoding.num_classes

    rng = np.random.default_rng(0)
    events = fam.uniform_events(space, rng, steps=8, seconds=2.0)
    assert events.ndim == 1 and len(events) > 0
    assert events.min() >= 0 and events.max() < fam.vocabulary_size(space)
    cond = {}
    if fam.CHORDS:
        from modeling.primers import parse_backing_chords

        _, cond = parse_backing_chords("C G Am F", 2)
    ns = fam.decode_events(events, cond, event_space=space, qpm=120.0)
    assert isinstance(ns, music_pb2.NoteSequence)
    setting, request_field = fam.EVAL_LENGTH
    assert setting in {f.name for f in dataclasses.fields(Settings)}
    assert request_field in _COMMON
    if request_field == "num_steps":  # 8 sixteenth steps at 120 qpm: one second of music
        assert ns.total_time == pytest.approx(1.0)
        plan = types.SimpleNamespace(target_units=8, primer=events[:1])
        assert fam.generated_span(plan, 0.125) == (0.0, 1.0)
    else:  # performance: exactly the requested seconds
        from modeling.families.performance.config import TIME_SHIFT
        from modeling.families.performance.controls import event_seconds

        assert float(event_seconds(torch.as_tensor(events)).sum()) == 2.0
        # a one-second time shift of primer is skipped: the generated music starts after it
        plan = types.SimpleNamespace(target_units=300, primer=np.array([TIME_SHIFT + 99]))
        assert fam.generated_span(plan, 0.125) == (1.0, 3.0)

    assert set(fam.STATS_OPTIONS) == {"metered", "polyphonic"}
    assert fam.STATS_INSTRUMENT in (None, 0)
    assert fam.QUALITY_CRITERIA <= CRITERIA_GROUPS
    assert set(fam.REQUEST_COLUMNS.values()) <= {"string", "long", "double", "boolean"}
    assert set(fam.EXAMPLE_REQUEST) <= set(fam.REQUEST_COLUMNS) | set(_COMMON)
    assert fam.DEFAULT_PRIMER_WORDS.startswith("none")
    assert 0 <= fam.lowest_pitch(space) <= 127
    assert fam.request_controls(encoding) == ()


def test_melody_decoding_and_lowest_pitch() -> None:
    """Stored index 2 + k is pitch min_note + k; 0 holds it, 1 ends it (Magenta's melody)."""
    fam = load_family("melody")
    ns = fam.decode_events(np.array([2 + 12, 0, 1, 2]), event_space="melody:48-84", qpm=120.0)
    assert [(n.pitch, n.start_time, n.end_time) for n in ns.notes] == [
        (60, 0.0, 0.25),
        (48, 0.375, 0.5),
    ]
    assert fam.lowest_pitch("melody:48-84") == 48
    assert load_family("improv").lowest_pitch("melody:36-84") == 36


def test_request_controls_follow_the_encoding() -> None:
    """Only a control-conditioned performance takes control fields, exactly the ones it was
    trained on (what the MLflow signature and the evaluation's control requests use)."""
    perf = load_family("performance")
    v = perf.VARIANTS
    assert perf.request_controls(v["density_conditioned_performance_with_dynamics"].encoding) == (
        "notes_per_second",
    )
    assert perf.request_controls(v["multiconditioned_performance_with_dynamics"].encoding) == (
        "notes_per_second",
        "pitch_class_histogram",
    )
    assert perf.request_controls(v["performance"].encoding) == ()


def test_family_modules_stay_small() -> None:
    """No module of ``modeling/families`` is over about 500 lines (issue 14): each family is a
    package split by responsibility."""
    sizes = {
        p.relative_to(REPO).as_posix(): len(p.read_text().splitlines())
        for p in (REPO / "modeling/families").rglob("*.py")
    }
    assert sizes and max(sizes.values()) <= 500, {k: v for k, v in sizes.items() if v > 500}


_EXTRACT_ONLY = """
import json, sys
from note_seq.protobuf import music_pb2
from modeling.families import extract_config, load_family

ns = music_pb2.NoteSequence(ticks_per_quarter=220, total_time=10.0)
ns.tempos.add(qpm=120.0)
for i in range(40):
    ns.notes.add(pitch=60 + i % 12, start_time=i / 4, end_time=i / 4 + 0.25, velocity=80)
counts = {}
for name in sys.argv[1:]:
    family = load_family(name)
    counts[name] = sum(1 for _ in family.extract(ns, extract_config(family, {}), augment=True))
loaded = sorted(
    m for m in sys.modules
    if m == "torch" or m.startswith("modeling.generation")
    or m.rsplit(".", 1)[-1] in ("training", "evaluation", "generation")
)
print(json.dumps({"counts": counts, "loaded": loaded}))
"""


def test_extraction_loads_no_hooks() -> None:
    """A Beam worker that only extracts examples imports no training / evaluation / generation
    hook, no :mod:`modeling.generation` and no torch (a fresh interpreter, every family)."""
    import json

    from _python import run_python

    out = run_python(["-c", _EXTRACT_ONLY, *FAMILY_MODULES], cwd=REPO, check=True)
    result = json.loads(out.stdout)
    assert all(result["counts"].values()), result["counts"]  # extraction really ran
    assert result["loaded"] == []


@pytest.mark.parametrize("name", list(FAMILY_MODULES))
def test_hooks_resolve_through_the_package(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hook read from the package is its hook module's object; a patch on the package is what
    the next lookup sees; a name no hook module defines is an ``AttributeError``."""
    import importlib

    fam = load_family(name)
    generation = importlib.import_module(f"{fam.__name__}.generation")
    assert fam.generation_plan is generation.generation_plan
    assert "generation_plan" in generation.__all__
    monkeypatch.setattr(fam, "generation_plan", len)
    assert load_family(name).generation_plan is len
    with pytest.raises(AttributeError, match="no_such_hook"):
        _ = fam.no_such_hook


def test_protocol_declares_the_gallery_and_range_hooks() -> None:
    declared = set(vars(Family)) | set(Family.__annotations__)
    assert {"GALLERY_HEADING", "playable_range"} <= declared


@pytest.mark.parametrize("name", list(FAMILY_MODULES))
def test_playable_range_of_every_variant(name: str) -> None:
    """Each variant's event space, asked of its family: a melody space's range is its stored
    notes (the top stored class decodes to the highest pitch); polyphony and performance store
    every pitch (None)."""
    fam = load_family(name)
    heading, blurb = fam.GALLERY_HEADING
    assert heading and blurb.endswith(".")
    for variant in fam.VARIANTS.values():
        space = variant.encoding.event_space
        pitches = fam.playable_range(space)
        if not space.startswith("melody:"):
            assert pitches is None, (variant.name, space)
            continue
        lo, hi = pitches
        assert 0 <= lo < hi <= 127 and lo == fam.lowest_pitch(space)
        top = np.array([fam.vocabulary_size(space) - 1])  # the last class: the highest note
        cond = {}
        if fam.CHORDS:
            from modeling.primers import parse_backing_chords

            _, cond = parse_backing_chords("C", 1)
        ns = fam.decode_events(top, cond, event_space=space, qpm=120.0)
        assert [n.pitch for n in ns.notes if n.instrument == 0] == [hi], (variant.name, space)


def test_playable_range_reads_the_event_space() -> None:
    """``max_note`` of a melody space is exclusive, as in note-seq's ``MelodyOneHotEncoding``."""
    assert load_family("melody").playable_range("melody:48-84") == (48, 83)
    assert load_family("improv").playable_range("melody:36-84") == (36, 83)
    assert load_family("polyphony").playable_range("polyphony:0-127") is None
    assert load_family("performance").playable_range("performance:v32") is None
    headings = {load_family(f).GALLERY_HEADING[0] for f in FAMILY_MODULES}
    assert len(headings) == len(FAMILY_MODULES)  # one section per family


def test_studio_model_card_range_comes_from_the_family(monkeypatch: pytest.MonkeyPatch) -> None:
    """The studio names the family's range in notes, and asks the family for it."""
    from studio.catalog import _variant_info

    assert _variant_info("basic_rnn")["range"] == "C3 to B5"
    assert _variant_info("chord_pitches_improv")["range"] == "C3 to B5"
    assert _variant_info("performance_with_dynamics")["range"] is None
    monkeypatch.setattr(load_family("melody"), "playable_range", lambda space: (60, 72))
    assert _variant_info("basic_rnn")["range"] == "C4 to C5"
