"""Resuming where ``dvc repro`` deleted the output (the resume store), and the cleanup of the
temporary files a killed checkpoint writer leaves behind.

``dvc repro`` removes a stage's outputs before it re-runs the stage, so the checkpoints a killed
training left in ``--output`` are gone by the time it starts again; ``modeling.train`` keeps links
to them in ``<output>/../.resume/<name>-<key>/`` (:class:`modeling.checkpoint.ResumeStore`).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _examples import PYTHON, TINY_HPARAMS, write_example_set

from modeling import checkpoint as ckpt
from modeling import train

REPO = Path(__file__).resolve().parents[1]
DVC = str(Path(sys.executable).with_name("dvc"))
torch.set_num_threads(1)

NUM_STEPS = 40
TRAIN_ARGS = [
    "--variant",
    "basic_rnn",
    "--examples",
    "ex",
    "--hparams",
    "batch_size=8,rnn_layer_sizes=[32,32]",
    "--num-steps",
    str(NUM_STEPS),
    "--eval-every",
    "20",
    "--save-every",
    "1",
    "--seed",
    "3",
    "--quiet",
]


def _env(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
    }


def _steps(project: Path) -> list[int]:
    return [s for s, _ in ckpt.CheckpointDir(project / "models/basic_rnn/checkpoints").steps()]


@pytest.mark.slow
def test_dvc_repro_killed_mid_training_resumes(tmp_path: Path) -> None:
    """SIGKILL a real ``dvc repro`` (its whole process group) mid-training, run it again: DVC
    deletes the stage's output, yet training resumes from the store on the uninterrupted
    trajectory, finishes, registers one MLflow run and removes the store."""
    project = tmp_path / "project"
    write_example_set(project / "ex", num_train=40, num_eval=6, min_len=60, max_len=120)
    cmd = " ".join(
        [
            "python -m modeling.train",
            *(f"'{a}'" for a in TRAIN_ARGS),
            "--output models/basic_rnn",
        ]
    )
    (project / "dvc.yaml").write_text(
        "stages:\n"
        "  train:\n"
        f"    cmd: {json.dumps(cmd)}\n"
        "    deps: [ex]\n"
        "    outs: [models/basic_rnn]\n"
    )
    env = _env(tmp_path)
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=project, env=env, check=True)

    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(
        [DVC, "repro"], cwd=project, env=env, stdout=log, stderr=log, start_new_session=True
    )
    deadline = time.time() + 240
    while time.time() < deadline and not any(s >= 3 for s in _steps(project)):
        assert proc.poll() is None, (tmp_path / "first.log").read_text()
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # dvc and the training it runs, as a crash would
    proc.wait()
    log.close()
    killed_at = max(_steps(project))
    assert 3 <= killed_at < NUM_STEPS, "training finished before the kill; proved nothing"
    assert not (project / "dvc.lock").exists()

    again = subprocess.run(
        [DVC, "repro"], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    resumed = re.search(r"resumed from \S*/\.resume/basic_rnn-[0-9a-f]{16}/\S+ at step (\d+)", out)
    assert resumed, out
    # the store links each checkpoint just after the output gets it: the kill may fall between
    assert killed_at - 1 <= int(resumed.group(1)) <= killed_at, out
    assert json.loads((project / "models" / "basic_rnn" / "metrics.json").read_text())["step"] == (
        NUM_STEPS
    )
    assert not (project / "models" / ".resume").exists()  # finished: the store is gone
    assert (project / "dvc.lock").exists()

    # the same trajectory as one uninterrupted run of the stage's command
    ref = subprocess.run(
        [PYTHON, "-m", "modeling.train", *TRAIN_ARGS, "--output", "ref", "--no-mlflow"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ref.returncode == 0, ref.stderr
    name = f"ckpt-{NUM_STEPS:08d}.pt"
    a = ckpt.load(project / "ref" / "checkpoints" / name)
    b = ckpt.load(project / "models" / "basic_rnn" / "checkpoints" / name)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    timing = ("events_per_sec", "seconds")
    for row_a, row_b in zip(a["history"], b["history"], strict=True):
        assert {k: v for k, v in row_a.items() if k not in timing} == {
            k: v for k, v in row_b.items() if k not in timing
        }

    # the resumed run continued the killed run's MLflow run and registered it once
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        runs = db.execute("select status from runs").fetchall()
        versions = db.execute("select count(*) from model_versions").fetchone()[0]
    assert runs == [("FINISHED",)] and versions == 1


def _args(ex: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--variant",
        "basic_rnn",
        "--examples",
        str(ex),
        "--output",
        str(out),
        "--hparams",
        TINY_HPARAMS,
        "--num-steps",
        "4",
        "--eval-every",
        "2",
        "--save-every",
        "1",
        "--no-mlflow",
        "--quiet",
        *extra,
    ]


def _spec(args: list[str]) -> train.RunSpec:
    return train.prepare(train.build_parser().parse_args(args), train.Dist())


def test_store_resumes_only_the_same_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store left by a killed run is used when --output is gone and the config is the same;
    any change of config (seed, steps, hparams, data) starts from step 0 and drops that store."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    ex = write_example_set(tmp_path / "ex")
    out = tmp_path / "models" / "basic_rnn"
    assert train.main(_args(ex, out)) == 0
    assert not (tmp_path / "models" / ".resume").exists()  # finished runs keep no store

    # what a run killed after step 3 leaves in its store, once DVC deleted the output
    spec = _spec(_args(ex, out))
    assert spec.resume is not None  # from the output itself, as before
    ckpt.link_or_copy(out / "checkpoints" / "ckpt-00000003.pt", spec.store.dir / "ckpt-00000003.pt")
    ckpt.link_or_copy(out / "checkpoints" / "best.pt", spec.store.best_path)
    for p in out.rglob("*"):
        if p.is_file():
            p.unlink()

    same = _spec(_args(ex, out))
    assert same.resume is not None and same.resume[1].parent == spec.store.dir
    assert int(same.resume[0]["step"]) == 3
    ex2 = write_example_set(tmp_path / "ex2", seed=1)
    changed = [
        _args(ex, out, "--seed", "9"),
        _args(ex, out, "--num-steps", "6"),  # a later flag wins
        _args(ex, out, "--hparams", "batch_size=4,rnn_layer_sizes=[12,10]"),
        _args(ex2, out),
        # another output of the same name, sharing the store's folder
        _args(ex, tmp_path / "elsewhere" / "basic_rnn", "--resume-dir", str(spec.store.root)),
    ]
    for args in changed:
        other = _spec(args)
        assert other.resume is None, args
        assert other.store.key != spec.store.key

    capsys.readouterr()
    assert train.main(_args(ex, out, "--seed", "9")) == 0
    assert "resumed" not in capsys.readouterr().err
    assert not spec.store.dir.exists()  # a changed config drops the stale store


def test_stale_temporary_files_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer killed mid-save leaves ``.ckpt-*.pt.*.tmp`` / ``.best.pt.*.tmp``; the next run
    removes them, and a finished run leaves no temporary file anywhere."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    ex = write_example_set(tmp_path / "ex")
    out = tmp_path / "run"
    assert train.main(_args(ex, out)) == 0
    cdir = out / "checkpoints"
    stale = [
        cdir / ".ckpt-00000004.pt.k3j_x9a1.tmp",  # tempfile.mkstemp's names
        cdir / ".best.pt.0q8zv1mw.tmp",
        cdir / ".ckpt-00000005.pt.link4242.tmp",  # ckpt.link_or_copy's
    ]
    for i, p in enumerate(stale):
        p.write_bytes(os.urandom(1000 * i))
    keep = cdir / "notes.tmp"  # not a checkpoint writer's file: left alone
    keep.write_text("mine")

    assert train.main(_args(ex, out, "--num-steps", "6")) == 0  # resumes at 4, runs to 6
    assert [p.name for p in tmp_path.rglob("*.tmp")] == ["notes.tmp"]
    assert sorted(p.name for p in cdir.iterdir()) == [
        "best.pt",
        "ckpt-00000005.pt",
        "ckpt-00000006.pt",
        "notes.tmp",
    ]
