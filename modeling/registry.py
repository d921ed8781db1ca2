"""MLflow tracking and model registry: one run per training, one registered model per variant.

``modeling/train.py`` opens a :class:`Tracker` (rank 0 only, after every input is validated), logs
metrics per evaluation step and, at the end, :meth:`Tracker.finish` logs the artifacts (``model/``
= an MLflow ``python_function`` model written by :func:`modeling.pyfunc.save`, holding the best
checkpoint with weights + JSON config only at ``model/artifacts/model.pt``; ``config.json``,
``loss_curve.png``/``.csv``, ``metrics.json``) and registers ``model/`` as a model version, so
``mlflow.pyfunc.load_model("models:/<variant>@champion")`` and ``mlflow models serve`` work.
``modeling/generate.py``, the studio and ``--init-from`` read models back with
:func:`load_generator_model` / :func:`resolve_model_file`, always through
``torch.load(weights_only=True)``; a version registered before the pyfunc layout (``model.pt`` at
the top of its folder) still loads there.

Model card. The registered model gets a description and ``family``/``variant`` tags once, when it
is created; each version a description (:func:`model_card`: variant, family, example set and its
DVC data version, steps, eval metrics, quality) and tags to search by, e.g.
``mlflow.search_model_versions("tags.family='performance'")``. The quality is "not evaluated"
until :func:`set_quality` records the evaluate stage's verdict.

Store: ``$MLFLOW_TRACKING_URI``, default ``sqlite:///mlruns/mlflow.db`` with artifacts under
``mlruns/`` (both relative to the working directory, the repo root in DVC stages). An experiment
per family, a run per training, tagged with the example set's data version (DVC's md5 of the
directory, computed with ``dvc_data`` exactly as ``dvc add`` would; a sha256 of the files if that
fails) and the git commit.

Aliases. ``latest``: MLflow 3 reserves this alias name and resolves ``models:/<name>@latest`` to
the newest version itself, so every registered version is ``latest`` the moment it is created (it
cannot be set by hand). ``champion`` moves to a new version only when its eval loss beats the
champion's *on the same eval split*: if both runs used the same example-set data version their
recorded eval losses are compared; otherwise the champion is re-evaluated on the new run's eval
split and the two losses on that split are compared (a champion that can no longer be loaded is
replaced). The decision, both losses and the version compared against are recorded as version
tags.

Concurrency (several trainings sharing one store):

- Store creation. MLflow creates a fresh sqlite store's tables on first open with no guard against
  a second process doing the same (``table ... already exists``), so :func:`client` opens a local
  sqlite store under an exclusive lock file beside it (``<db>.init.lock``).
- The champion gate (read champion -> compare -> move alias -> tag the decision) is serialised
  per registered model. A local sqlite store uses a lock file (``<db>.gate.<name>.lock``): a
  second registration waits and is compared against the champion the first one left. Any other
  store (an MLflow server, a remote database) has no lock MLflow could share, so the gate is an
  optimistic compare-and-set on the alias: re-read the alias before moving it (decide again if it
  moved), then re-read it ``_CAS_SETTLE_S`` after moving it and decide again against whoever
  overwrote it. Limit: this assumes a racer's read-then-write takes less than the settle time;
  the final champion is then the best of the racers, but a version that held the alias only
  within that window may keep a ``won`` tag.
- Crash safety. Registration is idempotent per (run, artifact): a rerun after a crash between
  ``create_model_version`` and the decision reuses that version and completes its gate. Each run
  records its owner (host, pid, process start time); :meth:`Tracker.open` marks runs of this host
  still RUNNING whose process is gone as FAILED (runs of other hosts are left alone: their
  liveness cannot be checked from here).

CLI: ``python -m modeling.registry [--name NAME]`` lists registered models, versions, aliases, eval
metrics and data versions.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from modeling import checkpoint as ckpt
from modeling import quiet_libraries
from modeling.families.base import VariantConfig
from modeling.model import EventRNN

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
CHAMPION = "champion"
LATEST = "latest"
_REGISTERED_TAG = "motif.registered_version"
_DECISION_TAG = "champion_decision"
_COMPARED_LOSS_TAG = "champion_eval_loss_compared"
_COMPARED_VERSION_TAG = "champion_compared_version"
# who runs a run: lets the next start tell a run whose process was killed from a live one
_HOST_TAG, _PID_TAG, _PID_START_TAG = "motif.host", "motif.pid", "motif.pid_start"
_CAS_SETTLE_S = 1.0  # remote gate: how long a moved alias must stay put before the move counts
_CAS_ROUNDS = 20
_REPO = Path(__file__).resolve().parents[1]
PYFUNC_CKPT = "artifacts/model.pt"  # = modeling.pyfunc.CHECKPOINT (not imported: needs mlflow)


class RegistryError(ValueError):
    """A registry lookup that failed (one line, for exit 2)."""


# ----------------------------------------------------------------------------- store


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _sqlite_path(uri: str | None = None) -> Path | None:
    """The database file of a local sqlite store (the stores a lock file can guard), else None."""
    uri = uri or tracking_uri()
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


@contextlib.contextmanager
def _file_lock(path: Path, required: bool = True) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing); the kernel drops it when the
    holder dies, even by ``kill -9``. Not re-entrant: never nest two holds of one path.

    ``required=False`` (read-only lookups) goes on unlocked where the lock file cannot be opened,
    e.g. a read-only store, which nobody can be creating.
    """
    try:
        fh = path.open("a")
    except OSError:
        if required:
            raise
        yield
        return
    with fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _gate_lock_path(db: Path, name: str) -> Path:
    return db.with_name(f"{db.name}.gate.{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.lock")


def client(create: bool = False) -> Any:
    """An ``MlflowClient`` on :func:`tracking_uri`.

    A local sqlite store is created only when ``create`` (a training about to log); a lookup in
    a store that does not exist is a :class:`RegistryError`, not a new empty database. The first
    open (which creates the tables) runs under ``<db>.init.lock``, so trainings starting at once
    on a store that does not exist yet all get it.
    """
    uri = tracking_uri()
    db = _sqlite_path(uri)
    if db is not None:
        if not create and not db.is_file():
            raise RegistryError(f"no MLflow store at {db} (MLFLOW_TRACKING_URI={uri})")
        db.parent.mkdir(parents=True, exist_ok=True)
        # absolute, so MLflow's per-URI store cache cannot point at another working directory
        db = db.resolve()
        uri = f"sqlite:///{db}"
    import mlflow
    from mlflow import MlflowClient

    quiet_libraries()  # after the import: mlflow sets its logger to INFO when imported
    mlflow.set_tracking_uri(uri)
    if db is None:
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    with _file_lock(db.with_name(f"{db.name}.init.lock"), required=create):
        c = MlflowClient(tracking_uri=uri, registry_uri=uri)
        # open both stores now, inside the lock: whichever opens a fresh file creates the tables
        c.search_experiments(max_results=1)
        c.search_registered_models(max_results=1)
    return c


def _mlflow_error() -> type[Exception]:
    from mlflow.exceptions import MlflowException

    return MlflowException


# ----------------------------------------------------------------------------- versions


def data_version(path: str | Path) -> tuple[str, str]:
    """(version, how): DVC's md5 of the directory (``<md5>.dir``, as in ``dvc.lock``) or, if
    dvc_data cannot compute it, ``sha256:<hex>`` over the files' relative paths and bytes."""
    path = Path(path).resolve()
    try:
        from dvc_data.hashfile.build import build
        from dvc_data.hashfile.db import HashFileDB
        from dvc_objects.fs.local import LocalFileSystem
        from dvc_objects.fs.memory import MemoryFileSystem

        odb = HashFileDB(MemoryFileSystem(), "/motif-odb")
        _, _, obj = build(odb, str(path), LocalFileSystem(), "md5", dry_run=True)
        return str(obj.hash_info.value), "dvc-md5"
    except Exception:  # dvc_data is an optional fast path; the fallback is exact too
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(path)).encode() + b"\0")
            with f.open("rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(chunk)
        return f"sha256:{h.hexdigest()}", "sha256"


def git_commit() -> tuple[str, bool]:
    """(commit, dirty) of the code that trains; ("unknown", False) outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "-C", str(_REPO), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(_REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
        return head, bool(status)
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


# ----------------------------------------------------------------------------- tracking


def _flat_params(config: dict[str, Any], args: dict[str, Any]) -> dict[str, str]:
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


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks) of a process from ``/proc``; None where unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], fields[19]


def _owner_tags() -> dict[str, str]:
    """This process as a run's owner: host, pid and start time (so a reused pid is not taken
    for the killed process)."""
    stat = _proc_stat(os.getpid())
    return {
        _HOST_TAG: socket.gethostname(),
        _PID_TAG: str(os.getpid()),
        _PID_START_TAG: stat[1] if stat else "",
    }


def _process_alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    stat = _proc_stat(pid)
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
        MlflowException = _mlflow_error()
        fail_orphaned_runs(c)
        if resume_run_id:
            try:
                c.get_run(resume_run_id)
                c.update_run(resume_run_id, status="RUNNING")
                for key, value in _owner_tags().items():
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
            **_owner_tags(),
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
        if _run_version(self.client, self.config["variant"], self.run_id, source) is None:
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


# ----------------------------------------------------------------------------- registry


def register(
    c: Any,
    name: str,
    run_id: str,
    source: str,
    eval_loss: float,
    config: dict[str, Any],
    best_step: int,
    evaluate_other: Callable[[EventRNN], float],
    *,
    local_lock: bool | None = None,
    card: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Create a version of registered model ``name`` (or complete the one this run already
    created from ``source``); move ``champion`` if it wins. Returns what happened.

    The rule is in the module docstring, and so is how the gate is serialised: a lock file for
    a local sqlite store, compare-and-set on the alias otherwise. ``local_lock=False`` takes the
    compare-and-set path on any store (what a remote store gets; its tests use it). ``card``
    (:func:`model_card`) gives a new version its description and searchable tags.
    """
    MlflowException = _mlflow_error()
    try:
        c.get_registered_model(name)
    except MlflowException:
        with contextlib.suppress(MlflowException):  # created concurrently: fine (set once)
            c.create_registered_model(
                name, tags=_model_tags(name), description=_model_description(name)
            )
    db = _sqlite_path() if local_lock is not False else None
    with _file_lock(_gate_lock_path(db.resolve(), name)) if db else contextlib.nullcontext():
        mv = _run_version(c, name, run_id, source)
        if mv is None:
            tags = {
                "eval_loss": repr(eval_loss),
                "data_version": config.get("data_version", ""),
                "example_set": config.get("example_set", ""),
                "event_space": config.get("event_space", ""),
                "best_step": str(best_step),
            }
            card = card or {}
            tags.update(card.get("tags", {}))
            mv = c.create_model_version(
                name,
                source=source,
                run_id=run_id,
                tags=tags,
                description=card.get("description"),
            )
        elif _DECISION_TAG in mv.tags:  # a rerun after the gate had decided: nothing to do
            return _recorded_result(mv)
        version = str(mv.version)

        def decide(champ: Any) -> tuple[bool, str, float | None]:
            return _decide(name, version, eval_loss, config, evaluate_other, champ)

        if db:
            champ = _champion(c, name)
            wins, rule, champion_loss = decide(champ)
            if wins:
                c.set_registered_model_alias(name, CHAMPION, version)
        else:
            champ, wins, rule, champion_loss = _cas_gate(c, name, version, decide)
        tags = {_DECISION_TAG: f"{'won' if wins else 'lost'}: {rule}"}
        if champion_loss is not None:
            tags[_COMPARED_LOSS_TAG] = repr(champion_loss)
        if champ is not None and str(champ.version) != version:
            tags[_COMPARED_VERSION_TAG] = str(champ.version)
        # the decision tag last: its presence is what says the gate completed
        for key in sorted(tags, key=lambda k: k == _DECISION_TAG):
            c.set_model_version_tag(name, version, key, tags[key])
    return _recorded_result(c.get_model_version(name, version))


# ----------------------------------------------------------------------------- model card

QUALITY_TAG = "quality"
_QUALITY_LINE = "- Quality: "
_NOT_EVALUATED = "not evaluated yet (the evaluate stage sets it)"


def _model_tags(name: str) -> dict[str, str]:
    """A registered model's searchable tags (``search_registered_models("tags.family=...")``)."""
    from modeling.variants import VARIANTS

    cfg = VARIANTS.get(name)
    return {"family": cfg.family, "variant": name} if cfg else {"variant": name}


def _model_description(name: str) -> str:
    """The registered model's description, set once when it is created."""
    from modeling.variants import VARIANTS

    cfg = VARIANTS.get(name)
    what = f"{cfg.description} ({cfg.family} family)" if cfg else "not a known motif variant"
    return (
        f"motif {name}: {what}. Every version is an MLflow python_function model: "
        f"`mlflow.pyfunc.load_model('models:/{name}@champion').predict(df)` takes a DataFrame "
        "of generation requests (primer, num_steps or num_seconds, temperature, beam_size, "
        "key, seed, and the family's own columns; see the signature) and returns one row per "
        "sample: events (JSON), log_likelihood and midi_base64. `champion` is the version with "
        "the best eval loss on comparable data; each version's description is its model card."
    )


def model_card(
    config: dict[str, Any], final: dict[str, Any], metrics: dict[str, float]
) -> dict[str, Any]:
    """A version's description and searchable tags: variant, family, training data and its DVC
    data version, steps, eval metrics (``metrics``: the best checkpoint's ``eval_*``), quality.
    """
    variant, family = str(config.get("variant", "")), str(config.get("family", ""))
    example_set, data = str(config.get("example_set", "")), str(config.get("data_version", ""))
    best_step = final.get("best", {}).get("step")
    shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    tags = {
        "variant": variant,
        "family": family,
        "example_set": example_set,
        "steps": str(int(final.get("step", -1))),
        "format": "mlflow-pyfunc",
        QUALITY_TAG: "not evaluated",
        **{k: repr(float(v)) for k, v in shown.items() if k != "eval_loss"},
    }
    lines = [
        f"**{variant}** ({family} family), MLflow python_function model.",
        "",
        f"- Training data: example set `{example_set or '-'}`, DVC data version "
        f"`{data or '-'}` ({config.get('data_version_source', '') or 'unknown source'})",
        f"- Steps: {tags['steps']} (best checkpoint at step {best_step})",
        "- Eval metrics at the best step: "
        + (", ".join(f"{k.removeprefix('eval_')} {v:.4g}" for k, v in shown.items()) or "none"),
        f"{_QUALITY_LINE}{_NOT_EVALUATED}",
    ]
    return {"description": "\n".join(lines), "tags": tags}


def set_quality(name: str, version: int | str, verdict: str, text: str = "") -> None:
    """Record the evaluate stage's quality verdict on a version: the ``quality`` tag (searchable:
    ``tags.quality='pass'``) and the quality line of its description."""
    c = client()
    MlflowException = _mlflow_error()
    try:
        mv = c.get_model_version(name, str(version))
    except MlflowException as exc:
        raise RegistryError(f"{name}/{version}: {exc.message.splitlines()[0]}") from None
    c.set_model_version_tag(name, str(version), QUALITY_TAG, verdict)
    line = f"{_QUALITY_LINE}{verdict}" + (f": {text}" if text else "")
    kept = [ln for ln in (mv.description or "").splitlines() if not ln.startswith(_QUALITY_LINE)]
    c.update_model_version(name, str(version), description="\n".join([*kept, line]).strip())


# ----------------------------------------------------------------------------- gate


def _run_version(c: Any, name: str, run_id: str, source: str) -> Any:
    """The version of ``name`` this run already registered from ``source`` (a training killed
    after ``create_model_version``), or None."""
    found = [
        v
        for v in c.search_model_versions(f"run_id = '{run_id}'")
        if v.name == name and v.source == source
    ]
    if not found:
        return None
    return c.get_model_version(name, min(int(v.version) for v in found))


def _champion(c: Any, name: str) -> Any:
    try:
        return c.get_model_version_by_alias(name, CHAMPION)
    except _mlflow_error():
        return None


def _decide(
    name: str,
    version: str,
    eval_loss: float,
    config: dict[str, Any],
    evaluate_other: Callable[[EventRNN], float],
    champ: Any,
) -> tuple[bool, str, float | None]:
    """(wins, rule, champion's loss compared) of version ``version`` against ``champ``."""
    if champ is None:
        return True, "no champion yet", None
    if str(champ.version) == version:  # alias moved, then killed before the decision tag
        return True, "already champion (gate completed on a rerun)", None
    if champ.tags.get("data_version") == config.get("data_version"):
        champion_loss = float(champ.tags.get("eval_loss", "inf"))
        return eval_loss < champion_loss, "same data version: recorded eval losses", champion_loss
    try:
        model, _, _ = load_generator_model(f"models:/{name}/{champ.version}")
        champion_loss = float(evaluate_other(model))
    except (RegistryError, ckpt.CheckpointError) as exc:
        return True, f"champion v{champ.version} unloadable ({exc})", None
    rule = "other data version: champion re-evaluated on this run's eval split"
    return eval_loss < champion_loss, rule, champion_loss


def _cas_gate(
    c: Any, name: str, version: str, decide: Callable[[Any], tuple[bool, str, float | None]]
) -> tuple[Any, bool, str, float | None]:
    """The gate on a store without a shared lock: compare-and-set on the alias, with re-checks.

    Decide against the champion seen; if the alias moved meanwhile, decide again against the new
    one. A winner moves the alias, waits ``_CAS_SETTLE_S`` and reads it back: overwritten by a
    concurrent gate, it decides again against the overwriter (and moves the alias back only if
    it beats it). Returns (champion compared against, wins, rule, its loss).
    """

    def holder(mv: Any) -> str | None:
        return None if mv is None else str(mv.version)

    seen = _champion(c, name)
    for _ in range(_CAS_ROUNDS):
        wins, rule, champion_loss = decide(seen)
        now = _champion(c, name)
        if holder(now) != holder(seen):
            seen = now  # moved while deciding: the decision is stale
            continue
        if not wins or holder(seen) == version:
            return seen, wins, rule, champion_loss
        c.set_registered_model_alias(name, CHAMPION, version)
        time.sleep(_CAS_SETTLE_S)
        now = _champion(c, name)
        if holder(now) == version:
            return seen, wins, rule, champion_loss
        seen = now
    raise RegistryError(
        f"{name}: the champion alias kept moving; gave up after {_CAS_ROUNDS} tries"
    )


def _recorded_result(mv: Any) -> dict[str, Any]:
    """What :func:`register` returns, read back from a decided version's tags."""
    decision = mv.tags.get(_DECISION_TAG, "")
    compared = mv.tags.get(_COMPARED_VERSION_TAG)
    loss = mv.tags.get(_COMPARED_LOSS_TAG)
    return {
        "name": mv.name,
        "version": int(mv.version),
        "champion": decision.startswith("won"),
        "rule": decision.split(": ", 1)[-1],
        "eval_loss": float(mv.tags["eval_loss"]),
        "previous_champion_loss": float(loss) if loss is not None else None,
        "previous_champion": int(compared) if compared else None,
    }


def _version_of(c: Any, uri: str) -> Any:
    """ModelVersion of ``models:/<name>@<alias>`` or ``models:/<name>/<version|latest>``."""
    MlflowException = _mlflow_error()
    body = uri.removeprefix("models:/")
    try:
        if "/" in body:
            name, ref = body.split("/", 1)
            if ref.isdigit():
                return c.get_model_version(name, ref)
            if ref.lower() == LATEST:
                return c.get_model_version_by_alias(name, LATEST)
            raise RegistryError(f"{uri}: use models:/<name>@<alias> or models:/<name>/<version>")
        if "@" in body:
            name, alias = body.rsplit("@", 1)
            return c.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise RegistryError(f"{uri}: {exc.message.splitlines()[0]}") from None
    raise RegistryError(f"{uri}: use models:/<name>@<alias> or models:/<name>/<version>")


def resolve_model_file(uri: str) -> Path:
    """Local path of the checkpoint a registry (``models:/``) or run (``runs:/``) URI names.

    A version is an MLflow model directory with the checkpoint at
    :data:`modeling.pyfunc.CHECKPOINT`; a version registered before that layout is a folder with
    ``model.pt`` at the top, read from there.
    """
    import mlflow

    c = client()
    MlflowException = _mlflow_error()
    if uri.startswith("models:/"):
        source = _version_of(c, uri).source
    elif uri.startswith("runs:/"):
        source = uri
    else:
        raise RegistryError(f"not a models:/ or runs:/ URI: {uri}")
    with contextlib.suppress(MlflowException, OSError):  # absent: the layout before MLmodel
        path = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{source}/{PYFUNC_CKPT}"))
        if path.is_file():
            return path
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source))
    except (MlflowException, OSError) as exc:
        raise RegistryError(f"{uri}: cannot fetch artifacts ({str(exc).splitlines()[0]})") from None
    path = local / "model.pt" if local.is_dir() else local
    if not path.is_file():
        raise RegistryError(
            f"{uri}: no {PYFUNC_CKPT} or model.pt in {source}; re-register it by training "
            f"again: python -m modeling.train --variant <variant> ..."
        )
    return path


def load_generator_model(uri: str) -> tuple[EventRNN, VariantConfig, dict[str, Any]]:
    """A ready model for generation: ``(EventRNN in eval mode, VariantConfig, metadata)``.

    ``uri`` is ``models:/<name>@<alias>``, ``models:/<name>/<version>``, ``runs:/...`` or a local
    checkpoint (file, or a training output directory -> its ``checkpoints/best.pt``). Weights are
    read with ``weights_only=True``; no optimizer or training state is loaded and gradients are
    off.
    """
    meta: dict[str, Any] = {"uri": uri}
    if uri.startswith(("models:/", "runs:/")):
        c = client()
        if uri.startswith("models:/"):
            mv = _version_of(c, uri)
            meta.update(
                {
                    "name": mv.name,
                    "version": int(mv.version),
                    "aliases": list(mv.aliases or []),
                    "run_id": mv.run_id,
                    "tags": dict(mv.tags or {}),
                }
            )
        path = resolve_model_file(uri)
    else:
        path = Path(uri)
        if path.is_dir():
            path = next(
                (
                    p
                    for p in (path / "checkpoints" / ckpt.BEST, path / ckpt.BEST, path / "model.pt")
                    if p.is_file()
                ),
                path / ckpt.BEST,
            )
    model, cfg, payload = ckpt.load_model(path)
    model.requires_grad_(False)
    config = ckpt.config_of(payload)
    meta.update(
        {
            "path": str(path),
            "config": config,
            "step": int(payload.get("step", -1)),
            "metrics": dict(payload.get("metrics", {})),
            "data_version": config.get("data_version", ""),
        }
    )
    return model, cfg, meta


# ----------------------------------------------------------------------------- listing


def list_models(name: str | None = None) -> Iterator[dict[str, Any]]:
    """One dict per registered model version (newest model versions first)."""
    c = client()
    models = c.search_registered_models(filter_string=f"name = '{name}'" if name else None)
    for rm in sorted(models, key=lambda m: m.name):
        versions = c.search_model_versions(f"name = '{rm.name}'")
        newest = max((int(v.version) for v in versions), default=0)
        by_version: dict[int, list[str]] = {}  # search results do not carry aliases
        for alias, version in (c.get_registered_model(rm.name).aliases or {}).items():
            by_version.setdefault(int(version), []).append(alias)
        for v in sorted(versions, key=lambda v: -int(v.version)):
            aliases = sorted(by_version.get(int(v.version), []))
            if int(v.version) == newest:
                aliases = [LATEST, *aliases]
            yield {
                "name": rm.name,
                "version": int(v.version),
                "aliases": aliases,
                "eval_loss": v.tags.get("eval_loss", ""),
                "data_version": v.tags.get("data_version", ""),
                "example_set": v.tags.get("example_set", ""),
                "champion_decision": v.tags.get("champion_decision", ""),
                "run_id": v.run_id,
            }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modeling.registry", description="List registered motif models and versions."
    )
    parser.add_argument("--name", help="only this registered model (variant)")
    parser.add_argument("--json", action="store_true", help="one JSON object per version")
    args = parser.parse_args(argv)
    try:
        rows = list(list_models(args.name))
    except RegistryError as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 2
    except _mlflow_error() as exc:
        print(f"registry: {exc.message.splitlines()[0]}", file=sys.stderr)
        return 2
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"tracking URI: {tracking_uri()}")
    if not rows:
        print("no registered models")
        return 0
    header = ("model", "ver", "aliases", "eval_loss", "example_set", "data_version", "run")
    table = [header] + [
        (
            r["name"],
            str(r["version"]),
            ",".join(r["aliases"]) or "-",
            f"{float(r['eval_loss']):.4f}" if r["eval_loss"] else "-",
            r["example_set"] or "-",
            (r["data_version"] or "-")[:20],
            r["run_id"][:8],
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
