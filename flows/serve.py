"""Serve the flows as scheduled deployments: ``python -m flows.serve``.

Cron schedules come from ``params.yaml:schedules`` (``rebuild``, ``refresh``, ``generate``; a
missing or empty entry means "run on demand only"); ``schedules.timezone`` (an IANA name, default
``UTC``) is the zone every cron expression is read in, so "0 2 * * *" is 02:00 local time there,
daylight saving included. Deployments register with the Prefect API at ``PREFECT_API_URL`` when it
is set (a Prefect server or Cloud), else with a local server that Prefect starts for the process;
runs then execute in this process. ``--list`` prints the deployments and exits without Prefect's
API, so a bad schedule is found before anything is served.
"""

from __future__ import annotations

import sys
import zoneinfo
from pathlib import Path
from typing import Any

from flows.pipeline import REPO_ROOT, generate, rebuild, refresh
from modeling.cli import ArgumentParser, UsageError, command
from pipelines.params import ParamsError, load_params

FLOWS = {"rebuild": rebuild, "refresh": refresh, "generate": generate}
DEFAULT_TIMEZONE = "UTC"


def schedule_settings(params: dict[str, Any]) -> tuple[dict[str, str], str]:
    """({flow: cron} for the scheduled flows, time zone) from ``params["schedules"]``.

    Raises ParamsError naming the key for an unknown flow, a bad cron string or an unknown zone,
    so ``serve`` stops with one line instead of registering a deployment that never fires.
    """
    from prefect.schedules import validate_cron_string

    schedules = params.get("schedules") or {}
    if not isinstance(schedules, dict):
        raise ParamsError(f"schedules: expected a mapping, got {type(schedules).__name__}")
    unknown = sorted(set(schedules) - set(FLOWS) - {"timezone"})
    if unknown:
        raise ParamsError(
            f"schedules: unknown flow(s) {', '.join(unknown)}; "
            f"valid: {', '.join(FLOWS)} (and timezone)"
        )
    timezone = schedules.get("timezone") or DEFAULT_TIMEZONE
    try:
        zoneinfo.ZoneInfo(str(timezone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ParamsError(
            f"schedules.timezone: unknown time zone {timezone!r} (an IANA name, e.g. Europe/Berlin)"
        ) from None
    crons = {}
    for name in FLOWS:
        cron = schedules.get(name)
        if cron:
            try:
                validate_cron_string(str(cron))
            except ValueError as exc:
                raise ParamsError(f"schedules.{name}: {exc}") from None
            crons[name] = str(cron)
    return crons, str(timezone)


def deployments(params: dict[str, Any], root: str = str(REPO_ROOT)) -> list[Any]:
    """One ``RunnerDeployment`` per flow, carrying its cron schedule and time zone from params."""
    from prefect.schedules import Cron

    crons, timezone = schedule_settings(params)
    out = []
    for name, fl in FLOWS.items():
        kwargs: dict[str, Any] = {"name": f"motif-{name}", "parameters": {"root": root}}
        if name in crons:
            kwargs["schedule"] = Cron(crons[name], timezone=timezone)
        out.append(fl.to_deployment(**kwargs))
    return out


def describe(deployment: Any) -> str:
    """``motif-refresh: 0 2 * * * (UTC)`` or ``motif-generate: on demand``."""
    shown = [
        f"{s.schedule.cron} ({s.schedule.timezone or DEFAULT_TIMEZONE})"
        for s in deployment.schedules or []
        if getattr(s.schedule, "cron", None)
    ]
    return f"{deployment.name}: {', '.join(shown) or 'on demand'}"


@command("serve")
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m flows.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--params", default=str(REPO_ROOT / "params.yaml"))
    parser.add_argument("--list", action="store_true", help="print the deployments and exit")
    args = parser.parse_args(argv)
    try:
        params = load_params(Path(args.params))
        deps = deployments(params)
    except ParamsError as exc:
        raise UsageError(str(exc)) from None
    for dep in deps:
        print(describe(dep), flush=True)
    if args.list:
        return 0
    from prefect import serve

    serve(*deps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
