"""The registry under concurrency and crashes (issue 15, F4-F6): real processes racing on a fresh
sqlite store, and a training killed with SIGKILL right after ``create_model_version``.

Racers are spawned processes released together by a barrier after their imports, so they reach
the store within milliseconds of each other. The champion's re-evaluation (the slow step of the
gate on another data version) sleeps a little, which holds the race window open the way a real
re-evaluation on a large eval split does.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from _examples import TINY_HPARAMS, write_example_set
from _python import run_python

from modeling import checkpoint as ckpt
from modeling import registry, train

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
OLD_CHAMPION_ON_NEW_SPLIT = 5.0  # the old champion's loss on the racers' eval split


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory without a store (the default ``sqlite:///mlruns/mlflow.db``)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty store, created once: creating its tables takes MLflow seconds."""
    root = tmp_path_factory.mktemp("template")
    uri = f"sqlite:///{root}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp_:
        mp_.setenv("MLFLOW_TRACKING_URI", uri)
        registry.client(create=True)
    return root / "mlflow.db"


@pytest.fixture
def store(fresh: Path, empty_db: Path) -> Path:
    """A working directory with an empty default store."""
    (fresh / "mlruns").mkdir()
    shutil.copyfile(empty_db, fresh / "mlruns" / "mlflow.db")
    return fresh


def _reevaluate(seconds: float, model: Any) -> float:
    """The gate's re-evaluation of the old champion on a racer's split (slow on real data)."""
    time.sleep(seconds)
    return OLD_CHAMPION_ON_NEW_SPLIT


def _racer(
    root: str,
    barrier: Any,
    name: str,
    data_version: str,
    loss: float,
    reeval_s: float,
    local_lock: bool | None,
) -> None:
    """One training's MLflow side: open a run in the (maybe not yet existing) store, register."""
    os.chdir(root)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    torch.set_num_threads(1)
    barrier.wait(timeout=120)
    config = {"family": "melody", "variant": name, "data_version": data_version}
    tracker = registry.Tracker.open(config, {})
    registry.register(
        tracker.client,
        name,
        tracker.run_id,
        f"runs:/{tracker.run_id}/model",
        loss,
        config,
        1,
        functools.partial(_reevaluate, reeval_s),
        local_lock=local_lock,
    )
    tracker.client.set_terminated(tracker.run_id, "FINISHED")


def _race(root: Path, *racers: tuple[str, str, float, float, bool | None]) -> list[int | None]:
    """Run the racers in spawned processes released together; their exit codes."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(racers))
    procs = [ctx.Process(target=_racer, args=(str(root), barrier, *r)) for r in racers]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    return [p.exitcode for p in procs]


def _versions(c: Any, name: str) -> list[Any]:
    found = c.search_model_versions(f"name = '{name}'")
    return [
        c.get_model_version(name, v.version) for v in sorted(found, key=lambda v: int(v.version))
    ]


def test_trainings_starting_at_once_on_a_new_store_both_register(fresh: Path) -> None:
    """F4: two trainings create the store at the same moment; neither dies, both register."""
    assert not (fresh / "mlruns").exists()
    codes = _race(
        fresh,
        ("basic_rnn", "d1", 2.0, 0.0, None),
        ("basic_rnn", "d1", 1.0, 0.0, None),
    )
    assert codes == [0, 0]
    c = registry.client()
    versions = _versions(c, "basic_rnn")
    assert len(versions) == 2
    assert all(c.get_run(v.run_id).info.status == "FINISHED" for v in versions)
    champ = c.get_model_version_by_alias("basic_rnn", registry.CHAMPION)
    assert float(champ.tags["eval_loss"]) == 1.0


def test_training_that_cannot_open_the_store_leaves_no_files(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """F4: a training that fails at store creation leaves no stray ``config.json``."""
    (fresh / "blocker").write_text("a file where the store's folder should be")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{fresh}/blocker/mlflow.db")
    ex = write_example_set(fresh / "ex")
    with pytest.raises(OSError):
        train.main(
            ["--variant", "basic_rnn", "--examples", str(ex), "--output", str(fresh / "out"),
             "--hparams", TINY_HPARAMS, "--num-steps", "1", "--eval-every", "1", "--quiet"]
        )  # fmt: skip
    assert not (fresh / "out" / "config.json").exists()


def _old_champion(store: Path) -> Any:
    """Version 1 of basic_rnn: a real (tiny, untrained) model on data version ``old``."""
    from modeling.hparams import hparams_to_dict, parse_hparams
    from modeling.variants import get_variant

    hp = parse_hparams(TINY_HPARAMS, get_variant("basic_rnn").hparams)
    model, _ = ckpt.build_model({"variant": "basic_rnn", "hparams": hparams_to_dict(hp)})
    c = registry.client(create=True)
    run = c.create_run(c.create_experiment("melody"))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "model").mkdir()
        ckpt.atomic_save(ckpt.model_payload(model, model.describe(), 1), f"{tmp}/model/model.pt")
        c.log_artifacts(run.info.run_id, f"{tmp}/model", "model")
    result = registry.register(
        c,
        "basic_rnn",
        run.info.run_id,
        f"{run.info.artifact_uri}/model",
        2.0,
        {"data_version": "old"},
        1,
        functools.partial(_reevaluate, 0.0),
    )
    c.set_terminated(run.info.run_id, "FINISHED")
    assert result["version"] == 1 and result["champion"]
    return c


@pytest.mark.parametrize("local_lock", [None, False], ids=["sqlite-lock", "compare-and-set"])
def test_concurrent_gates_are_serialised(store: Path, local_lock: bool | None) -> None:
    """F5: two versions that both beat the old champion reach the gate together. Serialised, the
    second is compared against the first, not against the old champion, and the champion ends
    on the better one. The better one's re-evaluation is the faster, so unserialised gates
    crown both and leave the alias on the worse one (the last writer).

    ``local_lock=False`` takes the compare-and-set path a remote store gets.
    """
    c = _old_champion(store)
    codes = _race(
        store,
        ("basic_rnn", "new", 3.0, 0.3, local_lock),
        ("basic_rnn", "new", 4.0, 1.0, local_lock),
    )
    assert codes == [0, 0]
    racers = {float(v.tags["eval_loss"]): v for v in _versions(c, "basic_rnn")[1:]}
    assert sorted(racers) == [3.0, 4.0]
    champ = c.get_model_version_by_alias("basic_rnn", registry.CHAMPION)
    assert float(champ.tags["eval_loss"]) == 3.0
    compared = {loss: float(v.tags["champion_eval_loss_compared"]) for loss, v in racers.items()}
    # exactly one racer met the old champion; the other met that racer
    first = next(loss for loss, seen in compared.items() if seen == OLD_CHAMPION_ON_NEW_SPLIT)
    second = 4.0 if first == 3.0 else 3.0
    assert compared[second] == first
    assert racers[second].tags["champion_compared_version"] == str(racers[first].version)
    for loss, v in racers.items():  # every decision is right against what it was compared with
        assert v.tags["champion_decision"].startswith("won" if loss < compared[loss] else "lost")
    won = sorted(
        loss for loss, v in racers.items() if v.tags["champion_decision"].startswith("won")
    )
    assert won == ([3.0] if first == 3.0 else [3.0, 4.0])  # no two winners over one champion
    if local_lock is False:  # the better one's faster re-evaluation moved the alias first
        assert (first, won) == (3.0, [3.0])


_KILL_AFTER_CREATE = """
import os, signal, sys
from mlflow import MlflowClient

real = MlflowClient.create_model_version


def create_then_die(self, *args, **kwargs):
    real(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)


MlflowClient.create_model_version = create_then_die
from modeling import train

sys.exit(train.main(sys.argv[1:]))
"""


def test_kill9_after_create_model_version_then_rerun(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """F6: a training killed right after ``create_model_version`` leaves a version without a
    decision and its run RUNNING. The next training start marks that run FAILED; re-running the
    killed command completes the same version instead of registering a second one."""
    ex = write_example_set(store / "ex")
    args = ["--variant", "basic_rnn", "--examples", str(ex), "--output", str(store / "a"),
            "--hparams", TINY_HPARAMS, "--num-steps", "2", "--eval-every", "2", "--quiet"]  # fmt: skip
    killed = run_python(
        ["-c", _KILL_AFTER_CREATE, *args], cwd=store, env={"OMP_NUM_THREADS": "1"}, timeout=240
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    c = registry.client()
    (v1,) = _versions(c, "basic_rnn")
    assert "champion_decision" not in v1.tags
    assert c.get_run(v1.run_id).info.status == "RUNNING"

    # another training starts: the killed one's run is marked FAILED, its own is left running
    other = registry.Tracker.open({"family": "melody", "variant": "lookback_rnn"}, {})
    assert c.get_run(v1.run_id).info.status == "FAILED"
    assert registry.fail_orphaned_runs(c) == []
    assert c.get_run(other.run_id).info.status == "RUNNING"
    c.set_terminated(other.run_id, "FINISHED")

    # the same command again: it resumes the run and completes version 1
    assert train.main(args) == 0, capsys.readouterr().err
    (again,) = _versions(c, "basic_rnn")
    assert again.version == v1.version and again.run_id == v1.run_id
    assert again.tags["champion_decision"] == "won: no champion yet"
    assert c.get_model_version_by_alias("basic_rnn", registry.CHAMPION).version == v1.version
    assert c.get_run(v1.run_id).info.status == "FINISHED"
    assert '"version": 1' in (store / "a" / "registry.json").read_text()


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs /proc (Linux)")
def test_runs_of_live_processes_are_not_failed(store: Path) -> None:
    """The sweep fails a run only once its process is gone (checked by pid and start time)."""
    c = registry.client(create=True)
    exp = c.create_experiment("melody")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        tags = registry._owner_tags()
        live = c.create_run(exp, tags={**tags, "motif.pid": str(sleeper.pid), "motif.pid_start": registry._proc_stat(sleeper.pid)[1]})  # fmt: skip
        reused = c.create_run(exp, tags={**tags, "motif.pid_start": "1"})  # our pid, not our start
        assert registry.fail_orphaned_runs(c) == [reused.info.run_id]
        assert c.get_run(live.info.run_id).info.status == "RUNNING"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert registry.fail_orphaned_runs(c) == [live.info.run_id]
    assert c.get_run(live.info.run_id).info.status == "FAILED"
    assert c.get_run(live.info.run_id).data.tags["motif.failed_reason"].startswith("process ")
