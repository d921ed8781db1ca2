"""Serve the flows as scheduled deployments: ``python -m flows.serve``.

Cron schedules come from ``params.yaml:schedules`` (``rebuild``, ``refresh``, ``generate``; a
missing or empty entry means "run on demand only"). Deployments register with the Prefect API at
``PREFECT_API_URL`` when it is set (a Prefect server or Cloud), else with a local server that
Prefect starts for the process; runs then execute in this process.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from flows.pipeline import REPO_ROOT, generate, rebuild, refresh
from pipelines.params import ParamsError, load_params

FLOWS = {"rebuild": rebuild, "refresh": refresh, "generate": generate}


def deployments(params: dict[str, Any], root: str = str(REPO_ROOT)) -> list[Any]:
    """One ``RunnerDeployment`` per flow, carrying its cron schedule from params."""
    schedules = params.get("schedules") or {}
    unknown = sorted(set(schedules) - set(FLOWS))
    if unknown:
        raise ParamsError(f"schedules: unknown flow(s) {', '.join(unknown)}; valid: {', '.join(FLOWS)}")
    timezone = schedules.get("timezone") if isinstance(schedules.get("timezone"), str) else "UTC"
    out = []
    for name, fl in FLOWS.items():
        cron = schedules.get(name)
        kwargs: dict[str, Any] = {"name": f"motif-{name}", "parameters": {"root": root}}
        if cron:
            from prefect.schedules import Cron

            kwargs["schedule"] = Cron(str(cron), timezone=timezone)
        out.append(fl.to_deployment(**kwargs))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--params", default=str(REPO_ROOT / "params.yaml"))
    parser.add_argument("--list", action="store_true", help="print the deployments and exit")
    args = parser.parse_args(argv)
    try:
        params = load_params(Path(args.params))
        deps = deployments(params)
    except ParamsError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    for dep in deps:
        crons = [getattr(s.schedule, "cron", None) for s in dep.schedules or []]
        print(f"{dep.name}: {', '.join(c for c in crons if c) or 'on demand'}")
    if args.list:
        return 0
    from prefect import serve

    serve(*deps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
