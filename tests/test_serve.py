"""``python -m flows.serve``, the README's scheduled runs, on the shipped params.yaml and profiles.

``--list`` runs as the README's user would (no arguments, the repository's own params.yaml, and
params.yaml after each ``pipelines.profile use NAME``) and must print every deployment with the
cron and time zone params.yaml gives it. Bad schedules stop it with one line and exit 2. The slow
test starts a real Prefect server (``prefect server start`` on a free port, a throw-away
PREFECT_HOME, its scheduler off so no cron run can fire on this checkout), runs ``flows.serve``
against it through ``PREFECT_API_URL``, checks the three deployments it registered, triggers
``generate`` on an empty DVC project (nothing to reproduce, so it is quick) and waits for the
served process to complete that run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

PYTHON = sys.executable
SHIPPED = yaml.safe_load((REPO / "params.yaml").read_text())["schedules"]
FLOW_NAMES = ("rebuild", "refresh", "generate")


def expected_lines(schedules: dict[str, Any]) -> list[str]:
    """What ``--list`` must print for a ``schedules`` section, in the deployments' order."""
    zone = schedules.get("timezone") or "UTC"
    return [
        f"motif-{name}: {schedules[name]} ({zone})"
        if schedules.get(name)
        else f"motif-{name}: on demand"
        for name in FLOW_NAMES
    ]


def serve_list(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "flows.serve", "--list", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_list_on_the_shipped_params() -> None:
    assert SHIPPED.get("timezone"), "params.yaml should name the schedules' time zone"
    proc = serve_list()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected_lines(SHIPPED)


@pytest.mark.parametrize("profile", sorted(p.stem for p in (REPO / "profiles").glob("*.yaml")))
def test_list_after_switching_profile(profile: str, tmp_path: Path) -> None:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    use = subprocess.run(
        [PYTHON, "-m", "pipelines.profile", "use", profile],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert use.returncode == 0, use.stderr
    schedules = yaml.safe_load((tmp_path / "params.yaml").read_text())["schedules"]
    proc = serve_list("--params", str(tmp_path / "params.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected_lines(schedules)


def test_time_zone_reaches_every_schedule(tmp_path: Path) -> None:
    from flows.serve import deployments
    from pipelines.params import load_params

    schedules = {"timezone": "Europe/Berlin", "refresh": "0 2 * * *", "rebuild": "15 4 * * 0"}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"schedules": schedules}))
    proc = serve_list("--params", str(path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected_lines(schedules)
    by_name = {d.name: d for d in deployments(load_params(path), root=str(tmp_path))}
    zones = {
        name: [(s.schedule.cron, s.schedule.timezone) for s in dep.schedules or []]
        for name, dep in by_name.items()
    }
    assert zones == {
        "motif-rebuild": [("15 4 * * 0", "Europe/Berlin")],
        "motif-refresh": [("0 2 * * *", "Europe/Berlin")],
        "motif-generate": [],
    }


@pytest.mark.parametrize(
    ("schedules", "message"),
    [
        (
            {"timezone": "Mars/Olympus_Mons"},
            "schedules.timezone: unknown time zone 'Mars/Olympus_Mons'",
        ),
        ({"refresh": "61 2 * * *"}, 'schedules.refresh: Invalid cron string: "61 2 * * *"'),
        ({"refersh": "0 2 * * *"}, "schedules: unknown flow(s) refersh"),
    ],
)
def test_bad_schedules_stop_serve_in_one_line(
    schedules: dict[str, str], message: str, tmp_path: Path
) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"schedules": schedules}))
    proc = serve_list("--params", str(path))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("serve: ")
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


# ============================================================ served, on a real Prefect server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group this test started, SIGKILL it if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


async def _wait_for_deployments(client: Any, alive: Any, deadline: float) -> dict[str, Any]:
    from prefect.exceptions import ObjectNotFound

    found: dict[str, Any] = {}
    while len(found) < len(FLOW_NAMES):
        alive()
        assert time.time() < deadline, f"deployments not registered in time: {sorted(found)}"
        for name in FLOW_NAMES:
            if name not in found:
                with contextlib.suppress(ObjectNotFound):
                    found[name] = await client.read_deployment_by_name(f"{name}/motif-{name}")
        await asyncio.sleep(0.5)
    return found


@pytest.mark.slow
def test_serve_runs_a_triggered_deployment(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    project = tmp_path / "project"  # an empty DVC project: `generate` has nothing to reproduce
    project.mkdir()
    subprocess.run(
        [PYTHON, "-m", "dvc", "init", "--no-scm", "-q"], cwd=project, check=True, timeout=120
    )
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PATH": f"{Path(PYTHON).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_API_URL": api,
        # the flow's INFO lines are asserted below; `make test` exports WARNING for quiet runs
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    server_log, serve_log = tmp_path / "server.log", tmp_path / "serve.log"
    procs: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        procs.append(proc)
        return proc

    def alive() -> None:
        for proc, log in zip(procs, (server_log, serve_log), strict=False):
            assert proc.poll() is None, f"{proc.args} exited {proc.returncode}:\n{_tail(log)}"

    async def scenario() -> tuple[dict[str, Any], Any, list[Any]]:
        deadline = time.time() + 180
        async with get_client() as client:
            while True:  # the server answers once its database is migrated
                alive()
                assert time.time() < deadline, "the Prefect server did not start in time"
                if (await client.api_healthcheck()) is None:
                    break
                await asyncio.sleep(0.5)
            start([PYTHON, "-m", "flows.serve"], serve_log)  # the README's command, as is
            found = await _wait_for_deployments(client, alive, deadline)
            run = await client.create_flow_run_from_deployment(
                found["generate"].id, parameters={"root": str(project)}
            )
            while not run.state or not run.state.is_final():
                alive()
                assert time.time() < deadline, f"flow run still {run.state}:\n{_tail(serve_log)}"
                await asyncio.sleep(0.5)
                run = await client.read_flow_run(run.id)
            tasks = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
            )
            return found, run, tasks

    try:
        server = ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        start([PYTHON, "-m", *server, "--no-scheduler", "--no-ui", "--analytics-off"], server_log)
        with temporary_settings(updates={PREFECT_API_URL: api}):
            found, run, tasks = asyncio.run(scenario())
    finally:
        for proc in reversed(procs):
            _stop(proc)

    zone = SHIPPED["timezone"]
    assert {
        name: [(s.schedule.cron, s.schedule.timezone) for s in dep.schedules]
        for name, dep in found.items()
    } == {name: [(SHIPPED[name], zone)] if SHIPPED.get(name) else [] for name in FLOW_NAMES}
    assert run.state.is_completed(), f"{run.state}:\n{_tail(serve_log)}"
    assert run.parameters == {"root": str(project)}
    assert sorted(t.name.rsplit("-", 1)[0] for t in tasks) == ["repro-gallery", "repro-generate"]
    assert all(t.state and t.state.is_completed() for t in tasks), tasks
    assert "nothing to reproduce for ['generate']" in serve_log.read_text()
