"""Scale-out proof: ingest and examples run through Beam's portable runner API unchanged.

Beam's own local job service (``local_job_service_main``) stands in for a Flink or Spark job
server: the stage CLIs get ``--runner=PortableRunner --job_endpoint=... --environment_type=LOOPBACK``
(the flags a Flink/Spark submission takes) and must write byte-identical Parquet and the same
counters as the DirectRunner.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import _ingest_fixtures as fx
import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def job_endpoint() -> Iterator[str]:
    """Beam's local job service on a free port, as a Flink/Spark job server would be."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("localhost", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("Beam's local job service did not start") from None
                time.sleep(0.3)
        yield f"localhost:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight MIDI tunes, an ABC book, a duplicate and a broken file; params for one melody set."""
    root = tmp_path_factory.mktemp("portable")
    corpus = root / "corpus"
    corpus.mkdir()
    for i in range(8):
        fx.write_tune(corpus / f"tune{i}.mid", i)
    fx.write_files(
        corpus,
        {
            "book.abc": fx.ABC_BOOK.encode(),
            "copy/tune0.mid": (corpus / "tune0.mid").read_bytes(),
            "bad/noise.mid": fx.random_bytes(),
        },
    )
    params = {
        "example_sets": {
            "melody": {
                "family": "melody",
                "corpora": ["mix"],
                "eval_ratio": 0.25,
                "extract": {"min_bars": 2},
            }
        }
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def _run(root: Path, module: str, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def _runner_args(kind: str, endpoint: str) -> list[str]:
    if kind == "direct":
        return ["--runner=DirectRunner", "--direct_running_mode=in_memory"]
    return ["--runner=PortableRunner", f"--job_endpoint={endpoint}", "--environment_type=LOOPBACK"]


def _without_timing(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "seconds"}


def test_portable_runner_matches_direct_runner(project: Path, job_endpoint: str) -> None:
    outs = {}
    for kind in ("direct", "portable"):
        ingest_root = project / kind / "ingest"
        examples = project / kind / "examples"
        _run(
            project, "pipelines.ingest", "--corpus", "mix", "--input", str(project / "corpus"),
            "--output", str(ingest_root / "mix"), "--num-shards", "2", "--no-progress",
            *_runner_args(kind, job_endpoint),
        )  # fmt: skip
        _run(
            project, "pipelines.examples", "--set", "melody", "--ingest-root", str(ingest_root),
            "--params", str(project / "params.yaml"), "--output", str(examples),
            *_runner_args(kind, job_endpoint),
        )  # fmt: skip
        outs[kind] = project / kind

    direct, portable = outs["direct"], outs["portable"]
    files = sorted(
        p.relative_to(direct) for p in direct.rglob("*") if p.is_file() and p.suffix == ".parquet"
    )
    assert any(f.name.startswith("notesequences-") for f in files)
    assert any(f.name.startswith("train-") for f in files)
    for rel in files:
        assert (portable / rel).read_bytes() == (direct / rel).read_bytes(), rel
    assert (
        sorted(p.relative_to(portable) for p in portable.rglob("*.parquet")) == files
    )  # nothing extra either

    # The counters come back through the portable job service's metrics too.
    for rel in ("ingest/mix/metrics.json", "examples/metrics.json"):
        d = json.loads((direct / rel).read_text())
        p = json.loads((portable / rel).read_text())
        assert _without_timing(p) == _without_timing(d), rel
    ingest = json.loads((direct / "ingest/mix/metrics.json").read_text())
    assert ingest["duplicates"] == 1 and ingest["quarantined"] == 1 and ingest["parsed"] >= 9
    examples = json.loads((direct / "examples/metrics.json").read_text())
    assert examples["examples_train"] > 0 and examples["examples_eval"] > 0
