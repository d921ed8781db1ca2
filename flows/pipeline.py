"""Prefect flows that drive motif's DVC stages, so scheduled runs and `dvc repro` share one cache.

Every task reproduces DVC stages through DVC's Python API (``dvc.repo.Repo.reproduce``): DVC's
repository lock serialises a scheduled run with a hand-run ``dvc repro``, and both skip whatever
the cache already holds. Flows:

``rebuild``   the whole pipeline, one task per stage group (ingest -> examples -> train -> generate
              -> evaluate).
``refresh``   files dropped into a corpus inbox (``data/inbox/<corpus>``, a corpus of its own in
              params.yaml) are ingested (incrementally: only files not ingested before are parsed),
              the example sets that read that corpus are rebuilt, and every variant trained on
              them is fine-tuned from its ``champion``; the registry's promotion gate moves
              ``champion`` only if eval loss improves.
``generate``  the batch-generation stage against the current champions (forced: champions can
              move outside DVC's view, through ``refresh``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from modeling.cli import ArgumentParser, UsageError, command
from pipelines.params import load_params

REPO_ROOT = Path(__file__).resolve().parents[1]
STAGE_GROUPS = (
    "ingest",
    "ingest_music21",
    "examples",
    "train",
    "finetune",
    "generate",
    "gallery",
    "evaluate",
)


def _stage_names(repo: Any) -> list[str]:
    # ``stage.name`` (``train@basic_rnn``), not ``addressing``, which is relative to the cwd
    return [stage.name for stage in repo.index.stages]


def _targets(repo: Any, groups: Iterable[str]) -> list[str]:
    """Stage addresses (``train@basic_rnn``) of the given groups that exist in dvc.yaml."""
    wanted = set(groups)
    return [
        name for name in _stage_names(repo) if name.split("@", 1)[0] in wanted or name in wanted
    ]


@task(retries=2, retry_delay_seconds=10, log_prints=True)
def repro(targets: list[str], root: str = str(REPO_ROOT), force: bool = False) -> list[str]:
    """``dvc repro`` the named stages (and what they depend on); returns the stages that ran."""
    from dvc.repo import Repo

    logger = get_run_logger()
    start = time.perf_counter()
    # DVC resolves targets and stage paths against the cwd: work from the project root
    with contextlib.chdir(root), Repo(root) as repo:
        present = set(_stage_names(repo))
        missing = [t for t in targets if t not in present and t not in STAGE_GROUPS]
        if missing:
            raise ValueError(f"no such DVC stage(s): {', '.join(missing)}")
        chosen = _targets(repo, targets)
        if not chosen:
            logger.info("nothing to reproduce for %s", targets)
            return []
        ran = repo.reproduce(targets=chosen, force=force, single_item=force)
    names = [stage.name for stage in ran]
    logger.info(
        "reproduced %d stage(s) in %.1f s: %s",
        len(names),
        time.perf_counter() - start,
        ", ".join(names) or "(all cached)",
    )
    return names


@flow(name="rebuild", log_prints=True)
def rebuild(root: str = str(REPO_ROOT)) -> dict[str, list[str]]:
    """The whole pipeline, stage group by stage group (each a task with retries)."""
    done: dict[str, list[str]] = {}
    for group in STAGE_GROUPS:
        done[group] = repro.with_options(name=f"repro-{group}")([group], root)
    return done


def trained_models(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every model ``dvc repro`` trains, ``variants`` and ``finetunes`` alike (both register
    under their own name, so a refresh fine-tunes either from its champion)."""
    return {**(params.get("variants") or {}), **(params.get("finetunes") or {})}


def affected(params: dict[str, Any], corpora: Iterable[str]) -> tuple[list[str], list[str]]:
    """(example sets, models) that read any of ``corpora``: what a refresh must rebuild."""
    corpora = set(corpora)
    sets = sorted(
        name
        for name, spec in (params.get("example_sets") or {}).items()
        if corpora & set(spec.get("corpora") or ())
    )
    models = sorted(
        name for name, spec in trained_models(params).items() if spec.get("example_set") in sets
    )
    return sets, models


def inbox_corpora(params: dict[str, Any]) -> dict[str, Path]:
    """Corpora whose input lies under ``data/inbox``: where users drop new files."""
    out = {}
    for name, spec in (params.get("corpora") or {}).items():
        path = Path(str(spec.get("input", "")))
        if path.parts[:2] == ("data", "inbox"):
            out[name] = path
    return out


@task(retries=1, retry_delay_seconds=5, log_prints=True)
def finetune(variant: str, example_set: str, root: str, num_steps: int) -> dict[str, Any]:
    """Fine-tune ``variant`` from its champion on the refreshed set; the gate decides promotion."""
    import json

    from modeling import train

    logger = get_run_logger()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = Path(root) / "data" / "finetune" / variant / stamp
    argv = [
        "--variant", variant,
        "--examples", str(Path(root) / "data" / "examples" / example_set),
        "--output", str(out),
        "--init-from", f"models:/{variant}@champion",
        "--num-steps", str(num_steps),
        "--params", str(Path(root) / "params.yaml"),
        "--quiet",
    ]  # fmt: skip
    code = train.main(argv)
    if code != 0:
        raise RuntimeError(f"fine-tuning {variant} failed with exit code {code}")
    metrics = json.loads((out / "metrics.json").read_text())
    registry = json.loads((out / "registry.json").read_text())
    logger.info(
        "fine-tuned %s: eval loss %.4f -> version %s, %s (%s)",
        variant,
        metrics["eval"]["loss"],
        registry["version"],
        "promoted to champion" if registry["champion"] else "champion kept",
        registry["rule"],
    )
    return {**metrics, "registry": registry, "promoted": registry["champion"]}


@flow(name="refresh", log_prints=True)
def refresh(root: str = str(REPO_ROOT)) -> dict[str, Any]:
    """Ingest new inbox files, rebuild the sets that read them, fine-tune their variants."""
    logger = get_run_logger()
    params = load_params(Path(root) / "params.yaml")
    inboxes = inbox_corpora(params)
    ran = repro.with_options(name="repro-ingest-inbox")(
        [f"ingest@{name}" for name in inboxes], root
    )
    changed = [name.split("@", 1)[1] for name in ran if name.startswith("ingest@")]
    if not changed:
        logger.info(
            "no new files in %s", ", ".join(str(p) for p in inboxes.values()) or "any inbox"
        )
        return {"ingested": [], "example_sets": [], "finetuned": {}}
    sets, models = affected(params, changed)
    repro.with_options(name="repro-examples")([f"examples@{s}" for s in sets], root)
    steps = int((params.get("refresh") or {}).get("finetune_steps", 50))
    specs = trained_models(params)
    results = {
        v: finetune.with_options(name=f"finetune-{v}")(v, specs[v]["example_set"], root, steps)
        for v in models
    }
    return {"ingested": changed, "example_sets": sets, "finetuned": results}


@flow(name="generate", log_prints=True)
def generate(root: str = str(REPO_ROOT)) -> list[str]:
    """Batch generation from the current champions (always re-run: champions move)."""
    ran = repro.with_options(name="repro-generate")(["generate"], root, force=True)
    return ran + repro.with_options(name="repro-gallery")(["gallery"], root)


FLOWS = {"rebuild": rebuild, "refresh": refresh, "generate": generate}


@command("flows")
def main(argv: list[str] | None = None) -> int:
    """``python -m flows.pipeline rebuild|refresh|generate``: run one flow now, by hand."""
    import json
    import sys

    parser = ArgumentParser(
        prog="python -m flows.pipeline", description="Run one motif flow now (see flows.serve)."
    )
    parser.add_argument("flow", choices=sorted(FLOWS), help="which flow to run")
    parser.add_argument("--root", default=str(REPO_ROOT), help="the motif project (dvc.yaml)")
    args = parser.parse_args(argv)
    if not (Path(args.root) / "dvc.yaml").is_file():
        raise UsageError(f"no dvc.yaml in {args.root}")
    state = FLOWS[args.flow](root=args.root, return_state=True)
    if state.is_failed():
        print(f"flows: {args.flow} failed: {state.message}", file=sys.stderr)
        return 1
    print(json.dumps(state.result(), indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
