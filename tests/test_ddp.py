"""``torchrun --nproc_per_node 2 -m modeling.train``: gloo on CPU, rank 0 alone writes checkpoints
and MLflow, and (without dropout) the result equals a one-process run: the loss is normalised by
the global label count, so DDP's gradient average is the one-process gradient."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import torch
from _examples import PYTHON, write_example_set

from modeling import checkpoint as ckpt

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = str(Path(PYTHON).parent / "torchrun")


def test_torchrun_two_processes_matches_one(tmp_path: Path) -> None:
    ex = write_example_set(tmp_path / "ex", num_train=32, num_eval=6)
    args = [
        "--variant",
        "basic_rnn",
        "--examples",
        str(ex),
        "--hparams",
        "batch_size=8,rnn_layer_sizes=[16,16],dropout_keep_prob=1.0",
        "--num-steps",
        "6",
        "--eval-every",
        "3",
        "--seed",
        "3",
        "--quiet",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlruns/mlflow.db",
    }

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        """One training process tree in ``tmp_path`` (output paths name the run)."""
        return subprocess.run(
            list(argv), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    ddp = run(
        TORCHRUN,
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "modeling.train",
        *args,
        "--output",
        str(tmp_path / "ddp"),
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = run(
        PYTHON, "-m", "modeling.train", *args, "--no-mlflow", "--output", str(tmp_path / "one")
    )
    assert single.returncode == 0, single.stderr[-3000:]

    # same outputs format, written once
    for name in ("config.json", "metrics.json", "loss_curve.csv", "loss_curve.png"):
        assert (tmp_path / "ddp" / name).is_file(), name
    steps = [s for s, _ in ckpt.CheckpointDir(tmp_path / "ddp" / "checkpoints").steps()]
    assert steps == [3, 6]
    assert not list((tmp_path / "ddp" / "checkpoints").glob(".*.tmp"))
    assert len(ddp.stdout.strip().splitlines()) == 1  # only rank 0 reports

    # one MLflow run and one registered version, from rank 0
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("melody").experiment_id])
    assert len(runs) == 1 and runs[0].data.params["world_size"] == "2"
    assert len(client.search_model_versions("name = 'basic_rnn'")) == 1

    # DDP over 2 ranks == 1 process (up to float summation order)
    a = ckpt.load(tmp_path / "ddp" / "checkpoints" / "ckpt-00000006.pt")["model"]
    b = ckpt.load(tmp_path / "one" / "checkpoints" / "ckpt-00000006.pt")["model"]
    for k, v in a.items():
        torch.testing.assert_close(v, b[k], atol=2e-5, rtol=1e-4)
    ma = json.loads((tmp_path / "ddp" / "metrics.json").read_text())["eval"]
    mb = json.loads((tmp_path / "one" / "metrics.json").read_text())["eval"]
    assert abs(ma["loss"] - mb["loss"]) < 1e-4 and ma["accuracy"] == mb["accuracy"]
