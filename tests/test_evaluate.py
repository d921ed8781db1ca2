"""The evaluation stage end to end on tiny models trained here, plus its helpers and error paths.

One model per family (and an unconditioned performance model beside the multiconditioned one) is
trained for a few steps on tiny sets built in code (``tests/_examples.py``,
``tests/_generate_sets.py``) and registered in a throw-away MLflow store; the stage then runs
once over all of them (``report`` fixture).
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from modeling import evaluate as E  # the stage's entry point (main)
from modeling import musicstats as MS
from modeling.evaluation import cache as EC
from modeling.evaluation import figures
from modeling.evaluation import sampling as EG
from modeling.evaluation import sets as ED
from modeling.evaluation import settings as ES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _examples import write_example_set
from _models import TINY_RUNS, tracking_store, train_tiny, write_family_sets
from _python import REPO, run_python

TRAIN = {v: TINY_RUNS[v] for v in (
    "basic_rnn", "chord_pitches_improv", "polyphony",
    "multiconditioned_performance_with_dynamics", "performance_with_dynamics",
)}  # fmt: skip
PARAMS = """
seed: 5
variants:
{variants}
  lookback_rnn: {{example_set: mel}}
evaluate:
  examples_root: {root}
  num_samples: 2
  melody_steps: 32
  polyphony_steps: 32
  performance_seconds: 3
  data_samples: 6
  extra_eval_sets: {{melody: [mel2, mel, edm, mel_eval], improv: [mel]}}
  performance_requests:
    - {{notes_per_second: 3}}
    - {{pitch_class_histogram: [1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1]}}
"""


def write_eval_only_set(root: Path) -> Path:
    """A held-out melody set as ``pipelines.examples`` writes one for ``splits: [eval]``
    (``pop909_eval``, ``asap_eval`` in profiles/full.yaml): an empty train split."""
    write_example_set(root, name=root.name, num_train=0, num_eval=5, seed=11)
    meta = json.loads((root / "meta.json").read_text())
    (root / "meta.json").write_text(json.dumps({**meta, "splits": ["eval"]}))
    return root


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """Tiny example sets, tiny registered models and a params file (``"uri"``: MLflow store)."""

    root = tmp_path_factory.mktemp("evaluate")
    ex = root / "examples"
    write_family_sets(ex, np.random.default_rng(0))
    write_example_set(ex / "mel2", name="mel2", seed=3)
    write_eval_only_set(ex / "mel_eval")
    uri = f"sqlite:///{root}/mlruns/mlflow.db"
    with tracking_store(uri):
        train_tiny(TRAIN, ex, root / "models", eval_every=2)
    variants = "\n".join(f"  {v}: {{example_set: {s}}}" for v, (s, _, _) in TRAIN.items())
    params = root / "params.yaml"
    params.write_text(PARAMS.format(variants=variants, root=ex))
    return {"root": root, "examples": ex, "params": params, "uri": uri}


@pytest.fixture(scope="session")
def report(store: dict) -> Path:
    """The stage run once over every registered model."""
    out = Path(store["root"]) / "reports"
    with tracking_store(str(store["uri"])):
        assert E.main(["--output", str(out), "--params", str(store["params"]), "--quiet"]) == 0
    return out


def basic_rnn_argv(store: dict, output: Path) -> list[str]:
    """The stage over the basic_rnn model alone (a quick rerun beside the full ``report``)."""
    return [
        "--output",
        str(output),
        "--params",
        str(store["params"]),
        "--models",
        "basic_rnn",
        "--quiet",
    ]


@pytest.fixture
def in_store(store: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(store["uri"]))
    return store


# ============================================================================ the stage


def test_report_files_and_every_variant(report: Path) -> None:
    summary = json.loads((report / "summary.json").read_text())
    assert set(summary) == {*TRAIN, "uniform_random", "ngram_baseline"}
    text = (report / "report.md").read_text()
    for variant in TRAIN:
        entry = summary[variant]
        ppl = entry["eval"]["perplexity"]
        assert math.isfinite(ppl) and ppl == pytest.approx(math.exp(entry["eval"]["loss"]))
        assert entry["goals"]["eval_perplexity_reported"] is True
        assert 0.0 <= entry["generated"]["pch_distance"] <= 1.0
        assert 0.0 <= entry["generated"]["pch_distance_uniform"] <= 1.0
        assert f"## {variant}" in text and f"figures/{variant}_histograms.png" in text
        for png in (f"{variant}_histograms.png",):
            assert (report / "figures" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        rows = list(csv.DictReader((report / "plots" / "loss" / f"{variant}.csv").open()))
        assert [int(r["step"]) for r in rows] == list(range(2, TRAIN[variant][1] + 1, 2))
        assert all(float(r["train_loss"]) > 0 and float(r["eval_loss"]) > 0 for r in rows)
        pcs = list(csv.DictReader((report / "plots" / "pitch_classes" / f"{variant}.csv").open()))
        assert len(pcs) == 12
        for col in ("data", "generated", "uniform"):
            assert sum(float(r[col]) for r in pcs) == pytest.approx(1.0, abs=1e-4)
    for png in ("loss_curves.png", "summary_pch.png"):
        assert (report / "figures" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # variants in params without a champion are named, not silently dropped
    assert "without a `@champion` model: lookback_rnn" in text
    assert not list(report.parent.glob(".reports.evaluate-*"))  # no temporary directory left


def test_summary_table_has_uniform_baseline_rows(report: Path) -> None:
    rows = {r["variant"]: r for r in csv.DictReader((report / "summary.csv").open())}
    ngram = {r.split("@")[1] for r in rows if r.startswith("ngram_kn")}
    assert ngram == {"mel", "imp", "poly", "perf"}
    rows = {k: v for k, v in rows.items() if not k.startswith("ngram_kn")}
    assert set(rows) == {*TRAIN, *(f"uniform_random@{s}" for s in ("mel", "imp", "poly", "perf"))}
    # a uniform model's perplexity is its vocabulary size: 38 melody classes, 259 polyphony, 388
    # performance-with-velocity
    assert float(rows["uniform_random@mel"]["eval_perplexity"]) == 38
    assert float(rows["uniform_random@poly"]["eval_perplexity"]) == 259
    assert float(rows["uniform_random@perf"]["eval_perplexity"]) == 388
    for variant, (set_name, _, _) in TRAIN.items():
        assert (
            rows[variant]["pch_distance_uniform"]
            == rows[f"uniform_random@{set_name}"]["pch_distance"]
        )
    text = (report / "report.md").read_text()
    assert text.count("| *uniform random* |") == 4


def test_held_out_metrics_are_the_training_eval_of_the_champion(
    report: Path, in_store: dict
) -> None:
    """The eval loss the stage reports equals the one training recorded for the registered
    (best) checkpoint on the same split: the right model, the right split, the same scorer."""
    from modeling import registry

    summary = json.loads((report / "summary.json").read_text())
    c = registry.client()
    for variant in TRAIN:
        mv = c.get_model_version_by_alias(variant, "champion")
        assert summary[variant]["eval"]["loss"] == pytest.approx(
            float(mv.tags["eval_loss"]), rel=1e-6
        )
        assert summary[variant]["model_version"] == int(mv.version)
    # performance loss per unit is per second of music, so it differs from per-event loss
    perf = summary["performance_with_dynamics"]["eval"]
    assert perf["loss_per_step"] > perf["loss"]


def test_cross_corpus_perplexity(report: Path) -> None:
    summary = json.loads((report / "summary.json").read_text())
    cross = summary["basic_rnn"]["cross"]
    assert set(cross) == {"mel2", "mel_eval"}  # own set excluded, edm not built
    assert math.isfinite(cross["mel2"]["perplexity"])
    # the eval-only set (no train split) is scored too
    assert math.isfinite(cross["mel_eval"]["perplexity"])
    assert cross["mel_eval"]["perplexity"] != cross["mel2"]["perplexity"]
    assert cross["mel2"]["perplexity"] != summary["basic_rnn"]["eval"]["perplexity"]
    assert summary["chord_pitches_improv"]["cross"] == {}  # a melody set cannot score improv
    text = (report / "report.md").read_text()
    assert "Cross-corpus set `edm` skipped: not built in this profile." in text
    assert "Cross-corpus set `mel` skipped: example set mel is a melody set" in text


def test_conditioning_adherence(report: Path) -> None:
    summary = json.loads((report / "summary.json").read_text())
    improv = summary["chord_pitches_improv"]["chord_tone_ratio"]
    assert all(0.0 <= improv[k] <= 1.0 for k in ("data", "generated", "uniform"))
    assert summary["chord_pitches_improv"]["goals"]["chord_tones_at_least_data"] == (
        improv["generated"] >= improv["data"]
    )
    multi = summary["multiconditioned_performance_with_dynamics"]
    # data average + density 3 + C-major histogram
    assert multi["controls"]["requests"] == 3
    assert "controls" not in summary["performance_with_dynamics"]
    rows = list(csv.DictReader((report / "plots" / "controls.csv").open()))
    assert [r["request"] for r in rows] == ["data average", "request 1"]
    assert float(rows[1]["requested"]) == 3.0
    for r in rows:
        want, got = float(r["requested"]), float(r["achieved"])
        assert float(r["rel_error"]) == pytest.approx(abs(got - want) / want, rel=1e-4)
    assert (
        report / "figures" / "multiconditioned_performance_with_dynamics_controls.png"
    ).is_file()
    assert not (report / "figures" / "performance_with_dynamics_controls.png").exists()
    # the unconditioned performance model has no velocity controls but does have dynamics
    assert summary["performance_with_dynamics"]["generated"]["velocity_spread"]["data"] > 0


def test_dvc_presents_metrics_and_plots(report: Path, tmp_path: Path) -> None:
    """``dvc metrics show`` and ``dvc plots show`` read the stage's outputs."""
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True, timeout=60)
    shutil.copytree(report, tmp_path / "reports")
    shown = subprocess.run(
        [*dvc, "metrics", "show", "--json", "reports/summary.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    data = json.loads(shown.stdout)[""]["data"]["reports/summary.json"]["data"]
    assert set(data) == {*TRAIN, "uniform_random", "ngram_baseline"}
    plots = subprocess.run(
        [*dvc, "plots", "show", "--json", "-x", "step", "-y", "eval_loss", "reports/plots/loss"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert set(json.loads(plots.stdout)["data"]) == {f"reports/plots/loss/{v}.csv" for v in TRAIN}


def test_quality_bar_in_summary_report_and_registry(report: Path, in_store: dict) -> None:
    """Every variant carries the quality block (criterion, bar, pass; overall pass), the report
    opens with it, the n-gram baseline sits beside the uniform one, and the registry's model
    card records the verdict."""
    from modeling import registry

    summary = json.loads((report / "summary.json").read_text())
    c = registry.client()
    for variant, (set_name, steps, _) in TRAIN.items():
        q = summary[variant]["quality"]
        crit = q["criteria"]
        assert {"perplexity_vs_ngram", "samples", "pitch_class_distance", "interval_distance"} <= (
            set(crit)
        )
        assert q["pass"] is all(v["pass"] is True for v in crit.values())
        assert q["pass"] is False  # 2 samples of a 4-step model: far below the bar
        assert crit["samples"] == {"value": 2.0, "op": ">=", "threshold": 32.0, "pass": False}
        ng = summary["ngram_baseline"][set_name]
        assert crit["perplexity_vs_ngram"]["threshold"] == pytest.approx(0.95 * ng["perplexity"])
        assert summary[variant]["ngram"] == ng and ng["order"] >= 1
        # a uniform model is the n-gram's worst case: the fitted one must beat it
        assert ng["perplexity"] < summary["uniform_random"][set_name]["perplexity"]
        for key in ("pitch_class_distance", "duration_distance", "density_difference"):
            assert crit[key]["threshold"] == pytest.approx(1.5 * crit[key]["floor"])
        training = summary[variant]["training"]
        assert training["step"] in range(2, steps + 1, 2)
        assert training["wall_s"] > 0 and training["train_s"] > 0
        assert training["train_seconds"] >= training["train_s"]
        mv = c.get_model_version_by_alias(variant, "champion")
        assert mv.tags["quality"] == "fail"
        assert "criteria pass; failing:" in (mv.description or "")
    assert set(summary["multiconditioned_performance_with_dynamics"]["quality"]["criteria"]) >= {
        "longest_note_seconds",
        "density_requests_met",
        "histogram_requests_distance",
    }
    assert "chord_tone_ratio" in summary["chord_pitches_improv"]["quality"]["criteria"]
    assert {"notes_per_step", "pitch_range"} <= set(summary["polyphony"]["quality"]["criteria"])
    text = (report / "report.md").read_text()
    assert text.index("## Quality bar") < text.index("| variant |")  # the first table
    assert text.count("| *n-gram (Kneser-Ney, order") == 4


def test_same_seed_same_report(in_store: dict, report: Path, tmp_path: Path) -> None:
    """Re-running one model with the same seed gives the same numbers (reproducible sampling)."""
    argv = basic_rnn_argv(in_store, tmp_path / "a")
    assert E.main(argv) == 0
    one = json.loads((tmp_path / "a" / "summary.json").read_text())
    full = json.loads((report / "summary.json").read_text())
    assert one["basic_rnn"] == full["basic_rnn"]
    assert E.main([*argv[:1], str(tmp_path / "b"), *argv[2:], "--seed", "6"]) == 0
    other = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert other["basic_rnn"]["eval"] == one["basic_rnn"]["eval"]  # seed only moves sampling
    assert other["basic_rnn"]["generated"] != one["basic_rnn"]["generated"]


def test_cache_reuses_only_unchanged_variants(
    in_store: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """A second run with the cache reuses each variant's result (same report); a changed
    setting or a new registry version evaluates again."""
    base = ["--params", str(in_store["params"]), "--models", "basic_rnn", "polyphony"]
    cache = ["--cache", str(tmp_path / "cache")]
    assert E.main(["--output", str(tmp_path / "a"), *base, *cache]) == 0
    assert sorted(p.name for p in (tmp_path / "cache").glob("*.json")) == [
        "basic_rnn.json", "polyphony.json"
    ]  # fmt: skip
    capsys.readouterr()
    assert E.main(["--output", str(tmp_path / "b"), *base, *cache]) == 0
    err = capsys.readouterr().err
    assert err.count("reusing its evaluation") == 2, err
    for name in ("summary.json", "summary.csv", "report.md"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text(), name
    # another seed is another setting: evaluated again, not served from the cache
    assert E.main(["--output", str(tmp_path / "c"), *base, *cache, "--seed", "9"]) == 0
    assert "reusing" not in capsys.readouterr().err
    # only the named models stay in the cache
    assert E.main(["--output", str(tmp_path / "d"), *base[:4], *cache, "--seed", "9"]) == 0
    assert [p.name for p in (tmp_path / "cache").glob("*.json")] == ["basic_rnn.json"]


def test_variant_on_an_eval_only_set(in_store: dict, tmp_path: Path) -> None:
    """A variant evaluated on a held-out corpus with no train split: metrics, statistics and
    the uniform baseline all come from its eval split."""
    params = tmp_path / "params.yaml"
    params.write_text(
        f"variants: {{basic_rnn: {{example_set: mel_eval}}}}\n"
        f"evaluate: {{examples_root: {in_store['examples']}, num_samples: 2, melody_steps: 16,"
        f" data_samples: 3}}\n"
    )
    out = tmp_path / "out"
    argv = ["--output", str(out), "--params", str(params), "--models", "basic_rnn", "--quiet"]
    assert E.main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    entry = summary["basic_rnn"]
    assert entry["example_set"] == "mel_eval" and entry["eval"]["examples"] == 5
    assert math.isfinite(entry["eval"]["perplexity"])
    assert 0.0 <= entry["generated"]["pch_distance"] <= 1.0
    rows = {r["variant"] for r in csv.DictReader((out / "summary.csv").open())}
    assert rows == {"basic_rnn", "uniform_random@mel_eval"}  # no train split: no n-gram
    crit = entry["quality"]["criteria"]["perplexity_vs_ngram"]
    assert crit["pass"] is None and entry["quality"]["pass"] is False
    # training still refuses it, with the one-line reason
    from modeling.data import ExampleSet, ExampleSetError

    with pytest.raises(ExampleSetError, match="no training example"):
        ExampleSet.load(Path(in_store["examples"]) / "mel_eval")


def test_cache_key_follows_every_imported_module(tmp_path: Path, monkeypatch) -> None:
    """The cache's code key covers what ``modeling.evaluate`` imports (derived from the imports):
    an edited decoder or scorer in a copy of the code changes it, an unimported module does not."""
    from pipelines import stagedeps

    for package in stagedeps.Project(REPO).packages:
        shutil.copytree(
            REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    monkeypatch.setattr(stagedeps, "ROOT", tmp_path)
    settings = ES.Settings(examples_root=tmp_path / "no_examples")
    base = EC.ResultCache(tmp_path / "cache", settings).base
    assert EC.code_version(tmp_path) == EC.code_version(REPO)  # same bytes, same key
    for rel, changes in [
        ("modeling/families/melody/evaluation.py", True),  # a decoder (a lazily imported hook)
        ("modeling/train.py", True),  # the held-out scorer
        ("modeling/data.py", True),
        ("modeling/batch.py", False),  # not imported by the evaluation
    ]:
        path = tmp_path / rel
        original = path.read_bytes()
        path.write_bytes(original + b"\n# edited\n")
        assert (EC.ResultCache(tmp_path / "cache", settings).base != base) is changes, rel
        path.write_bytes(original)
    assert EC.ResultCache(tmp_path / "cache", settings).base == base


# ============================================================================ helpers


@pytest.mark.parametrize(
    "family,space",
    [("melody", "melody:48-84"), ("melody", "melody:0-128"), ("performance", "performance:v0")],
)
def test_uniform_model_pitch_classes(family: str, space: str) -> None:
    """The uniform baseline is uniform over the stored vocabulary: over 48..83 every pitch class
    has three pitches (an exactly flat histogram); over 0..127 C..G have 11 pitches, the rest 10."""
    rng = np.random.default_rng(0)
    pitches = []
    for _ in range(40):
        ev = EG.uniform_events(family, space, rng, steps=512, seconds=60.0)
        pitches.append(MS.NoteArrays.from_sequence(ED.decode(family, space, ev)).pitch)
    h = MS.pitch_class_histogram(np.concatenate(pitches))
    want = np.ones(12) if space == "melody:48-84" else np.array([11] * 8 + [10] * 4)
    assert MS.histogram_distance(h, want) < 0.02
    assert MS.histogram_distance(h, np.eye(12)[0]) > 0.8


def test_uniform_model_lengths() -> None:
    from modeling.families.performance.controls import shift_steps
    from modeling.families.polyphony.extract import END, START, STEP_END

    rng = np.random.default_rng(1)
    mel = EG.uniform_events("melody", "melody:48-84", rng, steps=37)
    assert len(mel) == 37 and mel.min() >= 0 and mel.max() < 38
    poly = EG.uniform_events("polyphony", "polyphony:0-127", rng, steps=5)
    assert poly[0] == START and poly[-1] == END
    assert int((poly == STEP_END).sum()) == 5 and poly[-2] == STEP_END
    assert not np.isin(poly[1:-1], [START, END]).any()
    perf = EG.uniform_events("performance", "performance:v32", rng, seconds=2.5)
    clock = int(shift_steps(torch.as_tensor(perf)[None]).sum())
    assert clock == 250 and perf.max() < 388
    ns = ED.decode("performance", "performance:v32", perf)
    assert ns.total_time <= 2.5 + 1e-9


def test_progressions_reproduce_the_eval_chords(store: dict) -> None:
    """Backing chords built from eval lead sheets give back exactly their per-step chords."""
    sd = ED.Sets(Path(store["examples"])).load(Path(store["examples"]) / "imp")
    progs = ED.progressions(sd, 3, 20)
    split = sd.examples.eval
    assert len(progs) == 3
    for p in progs:
        i = split.example_ids.index(p["example"])
        a = int(split.offsets[i])
        n = p["steps"]
        assert n == min(20, int(split.lengths[i]))
        for col in ("chord_root", "chord_pitches"):
            np.testing.assert_array_equal(p["columns"][col], split.cond[col][a : a + n])
        assert p["steps_per_chord"] >= 1 and n % p["steps_per_chord"] == 0


def test_melody_samples_are_primed_with_the_eval_openings(store: dict) -> None:
    """Each melody sample starts from the first note of an eval example (cycled to the sample
    count, equal primers batched), each polyphony and performance sample from its first chord
    (a performance's: the notes starting within 50 ms of its first)."""
    sets = ED.Sets(Path(store["examples"]))
    sd = sets.load(Path(store["examples"]) / "mel")
    plan = ED.primer_plan(sd, "melody", 10)
    assert sum(n for _, n in plan) == 10
    firsts = [int(n.pitch[0]) for n in ED.data_notes(sd, "melody", 10, 30.0) if len(n.pitch)]
    assert firsts and len({json.dumps(f) for f, _ in plan}) == len(plan)
    for fields, count in plan:
        (pitch,) = fields["primer_melody"]
        assert count == sum(p == pitch for p in (firsts * 10)[:10])
    poly = sets.load(Path(store["examples"]) / "poly")
    chords = [
        sorted({int(p) for p in n.pitch[n.start <= n.start.min()]})
        for n in ED.data_notes(poly, "polyphony", 10, 30.0)
    ]
    plan = ED.primer_plan(poly, "polyphony", 10)
    assert sorted(f["primer_pitches"] for f, n in plan for _ in range(n)) == sorted(
        (chords * 10)[:10]
    )
    perf = sets.load(Path(store["examples"]) / "perf")
    openings = [
        sorted({int(p) for p in n.pitch[n.start <= n.start.min() + 0.05]})
        for n in ED.data_notes(perf, "performance", 10, 30.0)
    ]
    plan = ED.primer_plan(perf, "performance", 10)
    assert sorted(f["primer_pitches"] for f, n in plan for _ in range(n)) == sorted(
        (openings * 10)[:10]
    )


def test_adherence_measures_density_and_histogram() -> None:
    # 2 samples of 2 s: 4 and 6 C/G notes -> 2.5 notes/s on average
    a = MS.NoteArrays.from_notes([60] * 4, [0, 0.5, 1, 1.5], [0.5, 1, 1.5, 2], total_time=2.0)
    b = MS.NoteArrays.from_notes([67] * 6, np.arange(6) / 3, np.arange(1, 7) / 3, total_time=2.0)
    gen = EG.Generated([a, b], [])
    row = EG.adherence(gen, {"notes_per_second": 2.0}, 0.2)
    assert row["achieved_density"] == pytest.approx(2.5)
    assert row["density_rel_error"] == pytest.approx(0.25)
    assert row["density_within_tolerance"] is False
    assert EG.adherence(gen, {"notes_per_second": 2.5}, 0.2)["density_within_tolerance"] is True
    hist = [1] + [0] * 6 + [1] + [0] * 4  # C and G, equal time (2 s each) -> distance 0
    assert EG.adherence(gen, {"pitch_class_histogram": hist}, 0.2)[
        "histogram_distance"
    ] == pytest.approx(0.0)


def test_settings_defaults_and_checks() -> None:
    s = ES.settings_from_params({"seed": 9, "variants": {"basic_rnn": {"example_set": "melody"}}})
    assert s.alias == "champion" and s.num_samples == 32 and s.seed == 9
    assert s.improv_progressions == 8
    assert s.variant_sets == {"basic_rnn": "melody"} and s.extra_eval_sets == {}
    assert s.performance_requests == ES.DEFAULT_REQUESTS
    s = ES.settings_from_params(
        {"evaluate": {"extra_eval_sets": {"melody": ["edm"]}, "num_samples": 2}}
    )
    assert s.extra_eval_sets == {"melody": ("edm",)} and s.num_samples == 2
    for bad, words in [
        ({"num_samples": 0}, "evaluate.num_samples"),
        ({"bogus": 1}, "unknown key(s) bogus"),
        ({"performance_requests": [{"pitch_class_histogram": [1, 2]}]}, "12 numbers"),
        ({"performance_requests": [{"notes_per_second": -1}]}, "number > 0"),
        ({"performance_requests": [{"tempo": 3}]}, "unknown key(s) tempo"),
        ({"extra_eval_sets": {"melody": "edm"}}, "extra_eval_sets"),
        ({"performance_seconds": "long"}, "performance_seconds"),
    ]:
        with pytest.raises(ES.EvalError, match="params evaluate") as info:
            ES.settings_from_params({"evaluate": bad})
        assert words in str(info.value) and "\n" not in str(info.value)


# ============================================================================ bad input


def _one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str], *words: str) -> None:
    assert E.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("evaluate: "), err
    for w in words:
        assert w in err, err


def test_unknown_model_and_missing_inputs(
    in_store: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    params = str(in_store["params"])
    _one_line_exit_2(
        ["--output", str(out), "--params", params, "--models", "no_such"],
        capsys,
        "no_such",
        "not in the registry",
        "basic_rnn",
    )
    _one_line_exit_2(
        ["--output", str(out), "--params", str(tmp_path / "nope.yaml")], capsys, "nope.yaml"
    )
    _one_line_exit_2(
        ["--output", str(out), "--params", params, "--examples-root", str(tmp_path)],
        capsys,
        "example set",
        "does not exist",
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("evaluate: {num_samples: -3}\n")
    _one_line_exit_2(["--output", str(out), "--params", str(bad)], capsys, "num_samples")
    (tmp_path / "file").write_text("x")
    _one_line_exit_2(
        ["--output", str(tmp_path / "file"), "--params", params], capsys, "not a directory"
    )
    _one_line_exit_2(["--output", str(out), "--bogus"], capsys, "unrecognized")
    assert not out.exists()


def test_missing_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/none/mlflow.db")
    _one_line_exit_2(["--output", str(tmp_path / "out")], capsys, "no MLflow store")
    assert not (tmp_path / "none").exists() and not (tmp_path / "out").exists()


def test_failure_keeps_the_previous_report(
    in_store: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "reports"
    argv = basic_rnn_argv(in_store, out)
    assert E.main(argv) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(figures, "plot_summary", broken)
    with pytest.raises(OSError, match="disk full"):
        E.main([*argv, "--seed", "99"])
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]


def test_module_entry_point(in_store: dict, tmp_path: Path) -> None:
    """``python -m modeling.evaluate`` in a fresh process: one line and exit 2 on a bad name."""
    proc = run_python(
        [
            "-m",
            "modeling.evaluate",
            "--output",
            str(tmp_path / "o"),
            "--params",
            str(in_store["params"]),
            "--models",
            "basic_rnn",
            "ghost",
        ],
        cwd=REPO,
        timeout=120,
        env={"MLFLOW_TRACKING_URI": str(in_store["uri"])},
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "model(s) ghost not in the registry" in proc.stderr
    assert not (tmp_path / "o").exists()
