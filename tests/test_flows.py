"""The Prefect flows, for real: they drive the repository's own dvc.yaml on tiny data.

A scratch project gets a copy of the code, dvc.yaml and a tiny params.yaml (one MIDI corpus in an
inbox, one melody variant, one generation request), then the ``rebuild`` flow runs every stage
under ``prefect_test_harness``; ``refresh`` ingests files dropped into the inbox (reusing what was
parsed before) and fine-tunes the variant from its champion; a failing stage ends its flow failed
with the stage and reason in the state message; the shipped params.yaml's schedules (cron and
time zone) reach the deployments (``tests/test_serve.py`` serves them on a Prefect server).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import _ingest_fixtures as fx
import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.slow


TINY_PARAMS = {
    "data_root": "unused",
    "seed": 7,
    "beam": {"runner": "DirectRunner", "direct_num_workers": 1, "direct_running_mode": "in_memory"},
    "ingest": {"timeout_s": 30, "num_shards": 1},
    "examples": {"eval_ratio": 0.3, "seed": 3, "num_shards": 1},
    "refresh": {"finetune_steps": 4},
    "schedules": {"refresh": "0 2 * * *", "rebuild": "0 3 * * 0"},
    "profile": "test",
    "corpora": {"tunes": {"input": "data/inbox/tunes"}},
    "music21_corpora": {},
    "fetched_corpora": {},
    "example_sets": {
        "melody": {"family": "melody", "corpora": ["tunes"], "extract": {"min_bars": 2}}
    },
    "train": {"eval_every": 4, "keep_last": 1, "num_steps": 8},
    "variants": {
        "basic_rnn": {"example_set": "melody", "hparams": {"batch_size": 4, "rnn_layer_sizes": [8]}}
    },
    "finetunes": {},
    "generate": {
        "seed": 1,
        "requests": {
            "one_c": {
                "variant": "basic_rnn",
                "primer_melody": "[60]",
                "num_outputs": 1,
                "num_steps": 16,
                "audio": "none",
            }
        },
    },
    "evaluate": {"num_samples": 1, "melody_steps": 16, "data_samples": 4},
}


def test_refresh_covers_fine_tuned_models_too() -> None:
    """A fine-tune reading a refreshed set (the controlled performance models) is rebuilt too."""
    from flows import pipeline

    params = {
        "example_sets": {"perf": {"corpora": ["inbox"]}, "edm": {"corpora": ["tunes"]}},
        "variants": {"performance_with_dynamics": {"example_set": "perf"}},
        "finetunes": {
            "multiconditioned_performance_with_dynamics": {"example_set": "perf"},
            "edm_rnn": {"example_set": "edm"},
        },
    }
    assert pipeline.affected(params, ["inbox"]) == (
        ["perf"],
        ["multiconditioned_performance_with_dynamics", "performance_with_dynamics"],
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch motif project: code, dvc.yaml, tiny params, five tunes in the inbox."""
    root = tmp_path_factory.mktemp("motif-flows")
    for name in ("pipelines", "modeling", "flows"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "requirements.lock"):
        shutil.copy(REPO / name, root / name)
    (root / "params.yaml").write_text(yaml.safe_dump(TINY_PARAMS, sort_keys=False))
    inbox = root / "data" / "inbox" / "tunes"
    inbox.mkdir(parents=True)
    for i in range(6):
        fx.write_tune(inbox / f"tune{i}.mid", seed=i)
    env = {**os.environ, "GIT_PYTHON_REFRESH": "quiet"}
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, env=env)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True, env=env)
    subprocess.run(
        [sys.executable, "-m", "dvc", "config", "core.analytics", "false"],
        cwd=root,
        check=True,
        env=env,
    )
    return root


@pytest.fixture(scope="module")
def flow_env(project: Path) -> None:
    """Stage commands run `python`: the venv's; MLflow and Prefect stay inside the test."""
    old = dict(os.environ)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{project}/mlruns/mlflow.db"
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    yield
    os.environ.clear()
    os.environ.update(old)


@pytest.fixture(scope="module")
def harness() -> None:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _registry_versions(project: Path, name: str) -> tuple[list[str], dict[str, str]]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project}/mlruns/mlflow.db")
    versions = sorted(str(v.version) for v in client.search_model_versions(f"name='{name}'"))
    aliases = client.get_registered_model(name).aliases
    return versions, {k: str(v) for k, v in aliases.items()}


def test_rebuild_then_refresh(project: Path, flow_env: None, harness: None) -> None:
    from flows.pipeline import rebuild, refresh

    done = rebuild(root=str(project))
    assert done["ingest"] == ["ingest@tunes"]
    assert "train@basic_rnn" in done["train"]
    assert done["generate"] == ["generate"]
    assert (project / "data" / "gallery" / "index.html").is_file()
    assert (project / "data" / "reports" / "summary.json").is_file()
    sample = json.loads((project / "data" / "generated" / "one_c" / "request.json").read_text())
    assert sample["model"] == "models:/basic_rnn@champion" and len(sample["samples"]) == 1
    versions, aliases = _registry_versions(project, "basic_rnn")
    assert versions == ["1"] and aliases["champion"] == "1"

    again = rebuild(root=str(project))  # everything cached: nothing runs twice
    assert all(not stages for stages in again.values()), again

    assert refresh(root=str(project))["ingested"] == []  # nothing new in the inbox
    for i in range(6, 9):
        fx.write_tune(project / "data" / "inbox" / "tunes" / f"new{i}.mid", seed=i)
    result = refresh(root=str(project))
    assert result["ingested"] == ["tunes"] and result["example_sets"] == ["melody"]
    metrics = json.loads((project / "data" / "metrics" / "ingest" / "tunes.json").read_text())
    assert metrics["matched"] == 9 and metrics["reused"] == 6  # only the 3 new files parsed
    tuned = result["finetuned"]["basic_rnn"]
    versions, aliases = _registry_versions(project, "basic_rnn")
    assert versions == ["1", "2"]
    # the gate: champion moved to the fine-tuned version only if its eval loss was lower
    assert aliases["champion"] == ("2" if tuned.get("promoted") else "1")


def test_failed_stage_fails_the_flow(project: Path, flow_env: None, harness: None) -> None:
    from prefect import flow

    from flows.pipeline import repro

    bad = yaml.safe_load((project / "params.yaml").read_text())
    bad["example_sets"]["melody"]["extract"] = {"min_barz": 2}  # a typo: the stage exits 2
    (project / "params.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
    try:

        @flow
        def one_stage() -> list[str]:
            return repro.with_options(retries=1, retry_delay_seconds=0)(
                ["examples@melody"], str(project)
            )

        state = one_stage(return_state=True)
    finally:
        (project / "params.yaml").write_text(yaml.safe_dump(TINY_PARAMS, sort_keys=False))
    assert state.is_failed()
    assert "examples@melody" in state.message or "examples@melody" in str(
        state.result(raise_on_failure=False)
    )


def test_served_deployments_carry_schedules(project: Path, flow_env: None, harness: None) -> None:
    """The shipped params.yaml's schedules (cron and time zone) reach the Prefect API."""
    import asyncio

    from prefect.client.orchestration import get_client

    from flows.serve import deployments
    from pipelines.params import load_params

    shipped = load_params(REPO / "params.yaml")
    deps = deployments(shipped, root=str(project))
    by_name = {d.name: d for d in deps}
    assert set(by_name) == {"motif-rebuild", "motif-refresh", "motif-generate"}
    for dep in deps:
        dep.apply()

    async def read() -> dict[str, list[tuple[str, str]]]:
        async with get_client() as client:
            found = {}
            for flow_name in ("rebuild", "refresh", "generate"):
                d = await client.read_deployment_by_name(f"{flow_name}/motif-{flow_name}")
                found[flow_name] = [(s.schedule.cron, s.schedule.timezone) for s in d.schedules]
            return found

    schedules = shipped["schedules"]
    assert schedules["timezone"]
    assert asyncio.run(read()) == {
        name: [(schedules[name], schedules["timezone"])] if schedules.get(name) else []
        for name in ("rebuild", "refresh", "generate")
    }
