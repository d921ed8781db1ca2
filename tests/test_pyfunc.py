"""Registered versions are MLflow ``python_function`` models: pyfunc loading in a fresh process for
one variant of each family, ``mlflow models serve`` answering a real POST, the model card, and a
version registered in the layout before MLmodel still generating.

Tiny models are trained once per module with ``modeling.train`` (which registers them) into a
throw-away sqlite store; the sets are the ones ``tests/test_generate.py`` uses.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _examples import TINY_HPARAMS
from _models import tracking_store, train_tiny, write_family_sets

from modeling import checkpoint as ckpt
from modeling import generate as G
from modeling import pyfunc, registry

PERF = "multiconditioned_performance_with_dynamics"
TRAIN = ("attention_rnn", "chord_pitches_improv", "polyphony", PERF)  # one variant per family
# variant -> one request row in the family's columns
REQUESTS = {
    "attention_rnn": {"primer_melody": "[60, -2, 62, -2]", "num_steps": 32, "seed": 7,
                      "num_outputs": 2, "temperature": 0.9, "key": "C major"},
    "chord_pitches_improv": {"backing_chords": "C G Am F", "steps_per_chord": 4, "seed": 3,
                             "render_chords": True},
    "polyphony": {"primer_pitches": "[67, 64, 60]", "num_steps": 16, "seed": 1,
                  "condition_on_primer": True, "inject_primer_during_generation": False},
    PERF: {"primer_pitches": "[60, 64, 67]", "num_seconds": 1.5, "notes_per_second": "4",
           "pitch_class_histogram": "[2, 0, 1, 0, 1, 1, 0, 2, 0, 1, 0, 1]", "seed": 5,
           "beam_size": 2},
}  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment of a sqlite store holding one registered champion per family."""
    root = tmp_path_factory.mktemp("pyfunc")
    write_family_sets(root, np.random.default_rng(0))
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlruns/mlflow.db"}
    with tracking_store(env["MLFLOW_TRACKING_URI"]):
        train_tiny(TRAIN, root, root / "runs")
        yield {**env, "_root": str(root)}


def _env(store: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": store["MLFLOW_TRACKING_URI"],
            "OMP_NUM_THREADS": "1", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}  # fmt: skip


_PREDICT = """
import json, sys
import mlflow, pandas as pd
requests = json.loads(sys.argv[1])
out = {}
for variant, row in requests.items():
    model = mlflow.pyfunc.load_model(f"models:/{variant}@champion")
    frame = model.predict(pd.DataFrame([row]))
    out[variant] = frame.to_dict(orient="records")
import modeling
out["_modeling"] = modeling.__file__
try:
    model.predict(pd.DataFrame([{"num_steps": 0}]))
except Exception as exc:
    out["_error"] = [type(exc).__name__, str(exc)]
print(json.dumps(out))
"""


def _midi(b64: str) -> pretty_midi.PrettyMIDI:
    return pretty_midi.PrettyMIDI(io.BytesIO(base64.b64decode(b64)))


def test_pyfunc_predict_in_a_fresh_process_for_every_family(
    store: dict[str, str], tmp_path: Path
) -> None:
    """``mlflow.pyfunc.load_model("models:/<variant>@champion").predict(df)`` in a new Python
    process started outside the repository: MIDI that pretty_midi opens, events, finite
    log-likelihoods; the same events as ``modeling.generate`` gives for the same request."""
    proc = subprocess.run(
        [sys.executable, "-c", _PREDICT, json.dumps(REQUESTS)],
        cwd=tmp_path,
        env=_env(store),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # the code came from the model's own code path, not from this checkout
    assert "/artifacts/model/code/modeling/" in out["_modeling"], out["_modeling"]
    assert out["_error"] == ["MlflowException", "request 0: --num_steps must be > 0, got 0"]
    for variant, row in REQUESTS.items():
        samples = out[variant]
        assert len(samples) == row.get("num_outputs", 1), variant
        for i, s in enumerate(samples):
            assert s["variant"] == variant and s["seed"] == row["seed"]
            assert s["sample_index"] == i + 1 and s["request_index"] == 0
            events = json.loads(s["events"])
            assert events and len(events) == s["num_events"]
            assert math.isfinite(s["log_likelihood"]) and s["log_likelihood"] <= 0
            midi = _midi(s["midi_base64"])
            notes = sum(len(inst.notes) for inst in midi.instruments)
            assert notes == s["num_notes"], variant
        if variant == "chord_pitches_improv":  # render_chords: a second (chord) instrument
            assert len(_midi(samples[0]["midi_base64"]).instruments) == 2

    # predict is modeling.generate's call: same request and seed, same events
    model, _ = G.load_model("models:/attention_rnn@champion", None, None)
    args = G.build_parser().parse_args(
        ["--output_dir", str(tmp_path)]
        + [f"--{k}={v}" for k, v in REQUESTS["attention_rnn"].items()]
    )
    _, samples, _ = G.generate(model, G.request_from_args(args))
    assert [json.loads(s["events"]) for s in out["attention_rnn"]] == [
        s.events.tolist() for s in samples
    ]
    assert [s["log_likelihood"] for s in out["attention_rnn"]] == pytest.approx(
        [s.log_likelihood for s in samples]
    )


def test_version_is_an_mlflow_model_with_weights_only_checkpoint(store: dict[str, str]) -> None:
    """MLmodel with the python_function flavor, signature, input example and code; the
    checkpoint inside still loads with ``torch.load(weights_only=True)``."""
    import mlflow
    import yaml

    c = registry.client()
    for variant in TRAIN:
        mv = c.get_model_version_by_alias(variant, registry.CHAMPION)
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=mv.source))
        mlmodel = yaml.safe_load((local / "MLmodel").read_text())
        flavor = mlmodel["flavors"]["python_function"]
        assert flavor["code"] == "code" and (local / "code" / "modeling" / "generate.py").is_file()
        assert (local / "input_example.json").is_file()
        # models from code: loading runs pyfunc_model.py, nothing is unpickled
        assert flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model"
        assert (local / "pyfunc_model.py").is_file() and not list(local.glob("*.pkl"))
        inputs = {col["name"] for col in json.loads(mlmodel["signature"]["inputs"])}
        assert inputs == set(pyfunc.request_columns(variant))
        outputs = {col["name"] for col in json.loads(mlmodel["signature"]["outputs"])}
        assert outputs == set(pyfunc.OUTPUT_COLUMNS)
        payload = torch.load(local / pyfunc.CHECKPOINT, weights_only=True)
        assert payload["kind"] == "model" and "optimizer" not in payload
        assert json.loads((local / pyfunc.CONFIG).read_text())["variant"] == variant
    assert {"controls", "notes_per_second", "pitch_class_histogram"} <= set(
        pyfunc.request_columns(PERF)
    )
    assert "backing_chords" not in pyfunc.request_columns("attention_rnn")
    # generate and the studio load the same version through registry.load_generator_model
    _, _, meta = registry.load_generator_model("models:/polyphony@champion")
    assert meta["path"].endswith(pyfunc.CHECKPOINT)


def test_a_cell_the_parser_refuses_is_a_request_error(store: dict[str, str]) -> None:
    """A cell the generation CLI's parser refuses (reachable past the MLflow schema through the
    unwrapped model) is one invalid-parameter line naming the request and the flag, never the
    CLI's usage text."""
    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException

    model = mlflow.pyfunc.load_model("models:/attention_rnn@champion").unwrap_python_model()
    frame = pd.DataFrame([{"num_steps": 16}, {"num_steps": "many"}])
    with pytest.raises(MlflowException) as err:
        model.predict(None, frame)
    message = err.value.message
    assert message == "request 1: argument --num_steps: invalid int value: 'many'", message
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_model_card_and_searchable_tags(store: dict[str, str]) -> None:
    c = registry.client()
    (perf,) = c.search_model_versions("tags.family='performance'")
    assert perf.name == PERF
    melody = c.search_model_versions("tags.family='melody' and tags.format='mlflow-pyfunc'")
    assert [v.name for v in melody] == ["attention_rnn"]
    mv = c.get_model_version_by_alias("polyphony", registry.CHAMPION)
    run = c.get_run(mv.run_id)
    assert mv.tags["variant"] == "polyphony" and mv.tags["family"] == "polyphony"
    assert mv.tags["example_set"] == "poly" and mv.tags["steps"] == "6"
    assert mv.tags["data_version"] == run.data.tags["data_version"] != ""
    assert float(mv.tags["eval_perplexity"]) == pytest.approx(math.exp(float(mv.tags["eval_loss"])))
    assert mv.tags["quality"] == "not evaluated"
    for text in ("polyphony", "example set `poly`", mv.tags["data_version"], "Steps: 6",
                 "perplexity", "- Quality: not evaluated"):  # fmt: skip
        assert text in mv.description, text
    rm = c.get_registered_model("polyphony")
    assert "mlflow.pyfunc.load_model('models:/polyphony@champion')" in rm.description
    assert rm.tags["family"] == "polyphony"

    registry.set_quality("polyphony", mv.version, "pass", "Passes its quality checks.")
    (passed,) = c.search_model_versions("name='polyphony' and tags.quality='pass'")
    lines = c.get_model_version("polyphony", passed.version).description.splitlines()
    assert "- Quality: pass: Passes its quality checks." in lines
    assert sum(line.startswith("- Quality: ") for line in lines) == 1
    with pytest.raises(registry.RegistryError, match="polyphony/99"):
        registry.set_quality("polyphony", 99, "pass")


def _old_layout_version(name: str, with_weights: bool) -> str:
    """Register a version the way motif did before MLmodel: a ``model/`` folder with
    ``model.pt`` at its top (or, ``with_weights=False``, an empty one)."""
    from modeling.hparams import hparams_to_dict, parse_hparams
    from modeling.variants import get_variant

    hp = parse_hparams(TINY_HPARAMS, get_variant(name).hparams)
    model, _ = ckpt.build_model({"variant": name, "hparams": hparams_to_dict(hp)})
    c = registry.client()
    exp = c.get_experiment_by_name("melody").experiment_id
    run = c.create_run(exp)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "model").mkdir()
        filename = "model.pt" if with_weights else "notes.txt"
        ckpt.atomic_save(ckpt.model_payload(model, model.describe(), 1), f"{tmp}/model/{filename}")
        c.log_artifacts(run.info.run_id, f"{tmp}/model", "model")
    mv = c.create_model_version(
        name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    c.set_terminated(run.info.run_id, "FINISHED")
    return str(mv.version)


def test_old_layout_still_generates(
    store: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version registered before the pyfunc layout loads in ``modeling.generate``; one with no
    checkpoint at all fails with one line saying how to re-register."""
    c = registry.client()
    c.create_registered_model("basic_rnn")
    old = _old_layout_version("basic_rnn", with_weights=True)
    argv = ["--model", f"models:/basic_rnn/{old}", "--output_dir", str(tmp_path / "out"),
            "--num_outputs", "1", "--num_steps", "16", "--seed", "1", "--audio", "none",
            "--quiet"]  # fmt: skip
    assert G.main(argv) == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "basic_rnn_1_001.mid").is_file()
    capsys.readouterr()
    import mlflow
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="MLmodel"):  # the symptom, old layout only
        mlflow.pyfunc.load_model(f"models:/basic_rnn/{old}")
    broken = _old_layout_version("basic_rnn", with_weights=False)
    argv[1] = f"models:/basic_rnn/{broken}"
    assert G.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "re-register it by training again" in err, err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_models_serve_answers_invocations(store: dict[str, str], tmp_path: Path) -> None:
    """``mlflow models serve -m models:/attention_rnn@champion --env-manager local``: a real POST
    to ``/invocations`` returns MIDI that pretty_midi opens. The server is always stopped."""
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)  # mlflow runs `uvicorn` from PATH, as when activated
    mlflow_cli = str(Path(bin_dir) / "mlflow")
    cmd = [mlflow_cli, "models", "serve", "-m", "models:/attention_rnn@champion",
           "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        cmd, cwd=tmp_path, env={**_env(store), "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, "server did not answer /ping in 180 s"
            time.sleep(0.5)
        row = REQUESTS["attention_rnn"]
        body = {"dataframe_split": {"columns": list(row), "data": [list(row.values())]}}
        request = urllib.request.Request(
            f"{base}/invocations",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as r:
            predictions = json.loads(r.read())["predictions"]
        assert len(predictions) == row["num_outputs"]
        for p in predictions:
            midi = _midi(p["midi_base64"])
            assert sum(len(i.notes) for i in midi.instruments) == p["num_notes"] > 0
            assert math.isfinite(p["log_likelihood"]) and json.loads(p["events"])
        bad = urllib.request.Request(
            f"{base}/invocations",
            data=json.dumps(
                {"dataframe_split": {"columns": ["num_steps"], "data": [[0]]}}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=60)
        assert err.value.code == 400
        assert "request 0: " in json.loads(err.value.read())["message"]
    finally:
        try:  # the server's own process group: mlflow's uvicorn worker goes with it
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=20)
        except ProcessLookupError:
            pass
        log.close()
