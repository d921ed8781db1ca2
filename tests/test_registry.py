"""MLflow tracking + registry: runs, params, tags, artifacts, versions, ``latest`` / ``champion``
aliases, loading a generator model from ``models:/<name>@<alias>``, the listing CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _examples import TINY_HPARAMS, write_example_set

from modeling import checkpoint as ckpt
from modeling import registry, train
from modeling.data import ExampleSet

torch.set_num_threads(1)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the default sqlite:///mlruns/...
    return tmp_path


def _train(capsys: pytest.CaptureFixture[str], examples: Path, output: Path, *extra: str) -> dict:
    code = train.main(
        [
            "--variant",
            "basic_rnn",
            "--examples",
            str(examples),
            "--output",
            str(output),
            "--quiet",
            *extra,
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out.strip().splitlines()[-1])


def test_runs_versions_aliases_and_loading(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ex = write_example_set(store / "ex")
    other = write_example_set(store / "other", seed=5)
    run_a = ("--hparams", TINY_HPARAMS + ",learning_rate=0.01", "--num-steps", "8",
             "--eval-every", "4", "--seed", "1")  # fmt: skip
    _train(capsys, ex, store / "a", *run_a)
    assert (store / "mlruns" / "mlflow.db").is_file()  # the default store, under the cwd
    c = registry.client()
    champ = c.get_model_version_by_alias("basic_rnn", registry.CHAMPION)
    assert int(champ.version) == 1
    assert int(c.get_model_version_by_alias("basic_rnn", registry.LATEST).version) == 1

    # the run: experiment per family, params, tags, metrics per step, artifacts
    run = c.get_run(champ.run_id)
    assert c.get_experiment(run.info.experiment_id).name == "melody"
    assert run.info.status == "FINISHED"
    assert run.data.params["hparams.batch_size"] == "4"
    assert run.data.params["hparams.rnn_layer_sizes"] == "[12, 12]"
    version, how = registry.data_version(ex)
    assert how == "dvc-md5" and re.fullmatch(r"[0-9a-f]{32}\.dir", version)
    assert run.data.tags["data_version"] == version == champ.tags["data_version"]
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", run.data.tags["git_commit"])
    history = c.get_metric_history(run.info.run_id, "eval_loss")
    assert sorted(m.step for m in history) == [4, 8]
    arts = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert {"model", "config.json", "loss_curve.png", "metrics.json"} <= arts
    # the version is an MLflow pyfunc model; the checkpoint and config are its artifacts
    assert {"model/MLmodel", "model/artifacts", "model/code"} <= {
        a.path for a in c.list_artifacts(run.info.run_id, "model")
    }
    assert {a.path for a in c.list_artifacts(run.info.run_id, "model/artifacts")} == {
        "model/artifacts/model.pt",
        "model/artifacts/config.json",
    }
    assert champ.source == f"{run.info.artifact_uri}/model"

    # a ready generator model from the registry, read with weights_only
    model, cfg, meta = registry.load_generator_model("models:/basic_rnn@champion")
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert cfg.name == "basic_rnn" and cfg.hparams.rnn_layer_sizes == (12, 12)
    assert meta["version"] == 1 and "champion" in meta["aliases"]
    assert meta["data_version"] == version
    payload = torch.load(meta["path"], weights_only=True)
    assert "optimizer" not in payload
    best_model, _, _ = ckpt.load_model(store / "a" / "checkpoints" / "best.pt")
    x = cfg.encoding.inputs(torch.randint(0, 38, (2, 9)), {})
    torch.testing.assert_close(model(x), best_model(x))

    # re-running the finished command registers nothing new
    _train(capsys, ex, store / "a", *run_a)
    assert len(c.search_model_versions("name = 'basic_rnn'")) == 1

    # a worse model on the same data: new latest, champion stays
    _train(
        capsys,
        ex,
        store / "b",
        "--hparams",
        TINY_HPARAMS + ",learning_rate=1e-9",
        "--num-steps",
        "1",
        "--eval-every",
        "1",
    )
    v2 = c.get_model_version("basic_rnn", "2")
    assert int(c.get_model_version_by_alias("basic_rnn", registry.LATEST).version) == 2
    assert int(c.get_model_version_by_alias("basic_rnn", registry.CHAMPION).version) == 1
    assert v2.tags["champion_decision"].startswith("lost: same data version")
    assert float(v2.tags["eval_loss"]) > float(champ.tags["eval_loss"])

    # other data: the champion is re-evaluated on the new run's eval split
    result = _train(
        capsys,
        other,
        store / "c",
        "--hparams",
        TINY_HPARAMS + ",learning_rate=0.01",
        "--num-steps",
        "12",
        "--eval-every",
        "6",
    )
    v3 = c.get_model_version("basic_rnn", "3")
    assert "champion re-evaluated on this run's eval split" in v3.tags["champion_decision"]
    champ_model, champ_cfg, _ = registry.load_generator_model("models:/basic_rnn/1")
    scorer = train.Scorer.for_variant(champ_cfg)
    expected = train.evaluate(champ_model, ExampleSet.load(other).eval, scorer, 4, train.Dist())
    compared = float(v3.tags["champion_eval_loss_compared"])
    assert compared == pytest.approx(expected["loss"], rel=1e-9)
    wins = result["best"]["eval_loss"] < compared
    assert v3.tags["champion_decision"].startswith("won" if wins else "lost")
    now = int(c.get_model_version_by_alias("basic_rnn", registry.CHAMPION).version)
    assert now == (3 if wins else 1)

    # the listing CLI
    assert registry.main([]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"basic_rnn\s+3\s+latest", listing)
    assert re.search(rf"basic_rnn\s+{now}\s+\S*champion", listing)
    assert registry.main(["--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["version"] for r in rows] == [3, 2, 1]
    assert all(r["data_version"] for r in rows)

    # fine-tuning from a registry URI
    _train(
        capsys,
        other,
        store / "ft",
        "--hparams",
        TINY_HPARAMS,
        "--num-steps",
        "2",
        "--eval-every",
        "2",
        "--init-from",
        "models:/basic_rnn@champion",
        "--no-mlflow",
    )
    assert (
        json.loads((store / "ft" / "config.json").read_text())["init_from"]
        == "models:/basic_rnn@champion"
    )


def test_lookups_fail_cleanly(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(registry.RegistryError, match="no MLflow store"):
        registry.load_generator_model("models:/basic_rnn@champion")
    assert registry.main([]) == 2
    assert "no MLflow store" in capsys.readouterr().err
    assert not (store / "mlruns").exists()
    ex = write_example_set(store / "ex")
    _train(
        capsys, ex, store / "a", "--hparams", TINY_HPARAMS, "--num-steps", "1", "--eval-every", "1"
    )
    with pytest.raises(registry.RegistryError, match=r"models:/lookback_rnn@champion: "):
        registry.load_generator_model("models:/lookback_rnn@champion")
    with pytest.raises(registry.RegistryError, match="use models:/<name>@<alias>"):
        registry.resolve_model_file("models:/basic_rnn/Production")


def test_listing_cli_speaks_the_shared_idiom(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``motif models``: a bad flag or a missing store is one ``registry: ...`` line and exit 2
    (never argparse's usage block), and ``python -m modeling.registry`` still starts."""
    assert registry.main(["--bogus"]) == 2
    assert registry.main(["--name", "basic_rnn"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "registry: unrecognized arguments: --bogus (see --help)",
        f"registry: no MLflow store at mlruns/mlflow.db (MLFLOW_TRACKING_URI="
        f"{registry.DEFAULT_TRACKING_URI})",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "modeling.registry", "--help"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m modeling.registry"), done.stdout[:200]
