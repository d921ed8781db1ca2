"""Tracking: one MLflow run per training, reopened when the training resumes.

``modeling.training`` opens a :class:`Tracker` (rank 0 only, after every input is validated),
logs metrics per evaluation step and, at the end, :meth:`Tracker.finish` logs the artifacts
(``model/`` = an MLflow ``python_function`` model written by :func:`modeling.pyfunc.save`,
holding the best checkpoint with weights + JSON config only at ``model/artifacts/model.pt``;
``config.json``, ``loss_curve.png``/``.csv``, ``metrics.json``) and hands ``model/`` to
:func:`modeling.registry.gate.register` with its :func:`~modeling.registry.card.model_card`.

An experiment per family, a run per training, tagged with the example set's data version and the
git commit (:mod:`modeling.registry.provenance`).

Crash safety. Each run records its owner (host, pid, process start time); :meth:`Tracker.open`
marks runs of this host still RUNNING whose process is gone as FAILED (runs of other hosts are
left alone: their liveness cannot be checked from here). :meth:`Tracker.finish` is idempotent:
a rerun of a finished training registers nothing new, and a rerun after a crash past
``create_model_version`` completes that version instead of logging its files again.
"""

from __future__ import annotations

import json
import math
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modeling import checkpoint as ckpt
from modeling.model import EventRNN
from modeling.registry.card import model_card
from modeling.registry.gate import register, run_version
from modeling.registry.provenance import git_commit
from modeling.registry.store import client, mlflow_error

_REGISTERED_TAG = "motif.registered_version"
# who runs a run: lets the next start tell a run whose process was killed from a live one
_HOST_TAG, _PID_TAG, _PID_START_TAG = "motif.host", "motif.pid", "motif.pid_start"


def _flat_params(config: dict[str, Any], args: dict[str, Any]) -> dict[str, str]:
    """The run's params: the config (``hparams`` one param each) and the loop's own flags, as
    strings within MLflow's length limit."""
    out: dict[str, str] = {}
    for k, v in config.items():
        if k == "hparams":
            out.update({f"hparams.{hk}": json.dumps(hv) for hk, hv in v.items()})
        else:
            out[k] = str(v)
    for k in ("num_steps", "eval_every", "save_every", "keep_last", "device", "init_from"):
        if k in args:
            out[k] = str(args[k])
    out["world_size"] = os.environ.get("WORLD_SIZE", "1")
    return {k: v[:6000] for k, v in out.items()}


def proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks) of a process from ``/proc``; None where unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], fields[19]


def owner_tags() -> dict[str, str]:
    """This process as a run's owner: host, pid and start time (so a reused pid is not taken
    for the killed process)."""
    stat = proc_stat(os.getpid())
    return {
        _HOST_TAG: socket.gethostname(),
        _PID_TAG: str(os.getpid()),
        _PID_START_TAG: stat[1] if stat else "",
    }


def _process_alive(pid: int, start: str) -> bool:
    """Whether ``pid`` still runs and is the process that started at ``start`` (not a reuse)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    stat = proc_stat(pid)
    if stat is None:
        return True  # no /proc (macOS) or it just exited: only os.kill can tell, and it said alive
    state, started = stat
    return state != "Z" and (not start or started == start)


def fail_orphaned_runs(c: Any) -> list[str]:
    """Mark FAILED the runs of this host left RUNNING by a process that no longer exists (a
    training killed with ``kill -9`` or by the OOM killer never ends its run). Returns their ids.
    """
    experiments = [e.experiment_id for e in c.search_experiments()]
    if not experiments:
        return []
    runs = c.search_runs(
        experiments,
        filter_string=(
            f"attributes.status = 'RUNNING' and tags.`{_HOST_TAG}` = '{socket.gethostname()}'"
        ),
        max_results=1000,
    )
    failed = []
    for run in runs:
        pid = run.data.tags.get(_PID_TAG, "")
        if pid.isdigit() and not _process_alive(int(pid), run.data.tags.get(_PID_START_TAG, "")):
            c.set_tag(run.info.run_id, "motif.failed_reason", f"process {pid} gone")
            c.set_terminated(run.info.run_id, "FAILED")
            failed.append(run.info.run_id)
    return failed


class Tracker:
    """One MLflow run of one training (reopened when the training resumes)."""

    def __init__(self, mlflow_client: Any, run_id: str, config: dict[str, Any]) -> None:
        self.client, self.run_id, self.config = mlflow_client, run_id, config

    @classmethod
    def open(
        cls, config: dict[str, Any], args: dict[str, Any], resume_run_id: str | None = None
    ) -> Tracker:
        """Reopen ``resume_run_id`` if this store has it, else create a run in the family's
        experiment with every param and the data-version / git tags."""
        c = client(create=True)
        MlflowException = mlflow_error()
        fail_orphaned_runs(c)
        if resume_run_id:
            try:
                c.get_run(resume_run_id)
                c.update_run(resume_run_id, status="RUNNING")
                for key, value in owner_tags().items():
                    c.set_tag(resume_run_id, key, value)
                return cls(c, resume_run_id, config)
            except MlflowException:
                pass  # another store: start a fresh run below
        experiment = c.get_experiment_by_name(config["family"])
        if experiment is not None:
            exp_id = experiment.experiment_id
        else:
            try:
                exp_id = c.create_experiment(config["family"])
            except MlflowException:  # created by a concurrent training meanwhile
                exp_id = c.get_experiment_by_name(config["family"]).experiment_id
        commit, dirty = git_commit()
        tags = {
            "variant": config["variant"],
            "example_set": config.get("example_set", ""),
            "data_version": config.get("data_version", ""),
            "data_version_source": config.get("data_version_source", ""),
            "git_commit": commit,
            "git_dirty": str(dirty).lower(),
            "mlflow.source.name": "modeling.train",
            **owner_tags(),
        }
        run = c.create_run(
            exp_id, run_name=f"{config['variant']}-{time.strftime('%Y%m%d-%H%M%S')}", tags=tags
        )
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in _flat_params(config, args).items()]
        for i in range(0, len(params), 90):
            c.log_batch(run.info.run_id, params=params[i : i + 90])
        return cls(c, run.info.run_id, config)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Log the finite ``metrics`` at ``step`` in one batch (a NaN loss is not a point)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [
            Metric(k, float(v), now, int(step))
            for k, v in metrics.items()
            if v is not None and math.isfinite(float(v))
        ]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def finish(
        self, output: Path, final: dict[str, Any], evaluate_other: Callable[[EventRNN], float]
    ) -> dict[str, Any]:
        """Log artifacts, register the best checkpoint as a new version, end the run.

        Idempotent: re-running a finished training does not register a second version (one
        resumed with more ``--num-steps`` does: its weights are new).
        """
        run = self.client.get_run(self.run_id)
        done = run.data.tags.get(_REGISTERED_TAG)
        if done and json.loads(done).get("step") == int(final["step"]):
            self.client.set_terminated(self.run_id, "FINISHED")
            return json.loads(done)  # re-run of a finished training: nothing new to register
        best = output / "checkpoints" / ckpt.BEST
        # A version's files must never change: a training extended after registering logs its
        # new weights beside the first ones instead of over them.
        artifact = "model" if not done else f"model-step{int(final['step'])}"
        source = f"{run.info.artifact_uri}/{artifact}"
        # a rerun after a crash past create_model_version: that version's files are complete
        # (logged before it was created) and must stay byte-identical, MLmodel's uuid included
        if run_version(self.client, self.config["variant"], self.run_id, source) is None:
            from modeling import pyfunc

            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                pyfunc.save(Path(tmp) / "model", best, self.config)
                self.client.log_artifacts(self.run_id, str(Path(tmp) / "model"), artifact)
                self.log_metrics({"pyfunc_log_seconds": time.perf_counter() - started}, 0)
        for name in ("config.json", "metrics.json", "loss_curve.csv", "loss_curve.png"):
            if (output / name).is_file():
                self.client.log_artifact(self.run_id, str(output / name))
        best_loss = float(final["best"]["eval_loss"])
        self.log_metrics({"best_eval_loss": best_loss}, int(final["step"]))
        result = register(
            self.client,
            self.config["variant"],
            self.run_id,
            source,
            best_loss,
            self.config,
            int(final["best"]["step"]),
            evaluate_other,
            card=model_card(self.config, final, ckpt.load(best).get("metrics", {})),
        )
        result["step"] = int(final["step"])
        self.client.set_tag(self.run_id, _REGISTERED_TAG, json.dumps(result))
        self.client.set_terminated(self.run_id, "FINISHED")
        return result
