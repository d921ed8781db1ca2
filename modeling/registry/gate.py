"""The champion gate: register a training's model as a new version and move ``champion`` only
when it wins.

Aliases. ``latest``: MLflow 3 reserves this alias name and resolves ``models:/<name>@latest`` to
the newest version itself, so every registered version is ``latest`` the moment it is created (it
cannot be set by hand). ``champion`` moves to a new version only when its eval loss beats the
champion's *on the same eval split*: if both runs used the same example-set data version their
recorded eval losses are compared; otherwise the champion is re-evaluated on the new run's eval
split and the two losses on that split are compared (a champion that can no longer be loaded is
replaced). The decision, both losses and the version compared against are recorded as version
tags.

Concurrency (several trainings sharing one store). The gate (read champion -> compare -> move
alias -> tag the decision) is serialised per registered model. A local sqlite store uses a lock
file (``<db>.gate.<name>.lock``, :mod:`modeling.registry.locks`): a second registration waits and
is compared against the champion the first one left. Any other store (an MLflow server, a remote
database) has no lock MLflow could share, so the gate is an optimistic compare-and-set on the
alias: re-read the alias before moving it (decide again if it moved), then re-read it
``_CAS_SETTLE_S`` after moving it and decide again against whoever overwrote it. Limit: this
assumes a racer's read-then-write takes less than the settle time; the final champion is then the
best of the racers, but a version that held the alias only within that window may keep a ``won``
tag.

Crash safety. Registration is idempotent per (run, artifact): a rerun after a crash between
``create_model_version`` and the decision reuses that version and completes its gate; the
decision tag is written last, so its presence says the gate completed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from modeling import checkpoint as ckpt
from modeling.model import EventRNN
from modeling.registry.card import model_description, model_tags
from modeling.registry.loading import load_generator_model
from modeling.registry.locks import file_lock, gate_lock_path
from modeling.registry.store import CHAMPION, RegistryError, mlflow_error, sqlite_path

_DECISION_TAG = "champion_decision"
_COMPARED_LOSS_TAG = "champion_eval_loss_compared"
_COMPARED_VERSION_TAG = "champion_compared_version"
_CAS_SETTLE_S = 1.0  # remote gate: how long a moved alias must stay put before the move counts
_CAS_ROUNDS = 20


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
    MlflowException = mlflow_error()
    try:
        c.get_registered_model(name)
    except MlflowException:
        with contextlib.suppress(MlflowException):  # created concurrently: fine (set once)
            c.create_registered_model(
                name, tags=model_tags(name), description=model_description(name)
            )
    db = sqlite_path() if local_lock is not False else None
    with file_lock(gate_lock_path(db.resolve(), name)) if db else contextlib.nullcontext():
        mv = run_version(c, name, run_id, source)
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


def run_version(c: Any, name: str, run_id: str, source: str) -> Any:
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
    except mlflow_error():
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
