"""Profiles: `python -m pipelines.profile use NAME` swaps params.yaml's profile sections only."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines import profile
from tests.conftest import REPO


@pytest.fixture
def params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(REPO)  # profiles/ is read from the project root, as make does
    monkeypatch.delenv("MOTIF_DATA_ROOT", raising=False)
    path = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", path)
    return path


def test_switching_profiles_keeps_shared_knobs_and_is_lossless(params: Path) -> None:
    before = yaml.safe_load(params.read_text())
    assert profile.use("full", params)
    full = yaml.safe_load(params.read_text())
    wanted = yaml.safe_load((REPO / "profiles" / "full.yaml").read_text())
    for key in profile.PROFILE_KEYS:
        assert full.get(key) == wanted.get(key), key
    shared = set(before) - set(profile.PROFILE_KEYS)
    assert shared >= {"beam", "ingest", "examples", "schedules", "data_root"}
    assert {k: full[k] for k in shared} == {k: before[k] for k in shared}
    assert profile.use(before["profile"], params)
    assert yaml.safe_load(params.read_text()) == before
    assert not profile.use(before["profile"], params)  # already active: nothing to write


def test_every_profile_names_only_profile_keys() -> None:
    for path in sorted((REPO / "profiles").glob("*.yaml")):
        assert set(yaml.safe_load(path.read_text())) <= set(profile.PROFILE_KEYS), path.name


def test_cli_unknown_profile_is_one_line_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.profile", "use", "nope"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == "profile: unknown profile 'nope'; available: default, full"


def test_summary_points_at_the_outputs() -> None:
    text = profile.summary()
    for where in ("data/gallery/index.html", "data/reports/report.md", "mlflow ui"):
        assert where in text


def test_smoke_budget_sets_every_training_length(params: Path) -> None:
    """`make run PROFILE=full TRAIN_STEPS=50` sets the shared and every fine-tune's step count."""
    assert profile.use("full", params, sets=("train.num_steps=50", "finetunes.*.num_steps=50"))
    full = yaml.safe_load(params.read_text())
    assert full["train"]["num_steps"] == 50
    assert full["finetunes"] and all(f["num_steps"] == 50 for f in full["finetunes"].values())


@pytest.mark.parametrize("bad", ["train.num_steps", "trian.num_steps=5", "=5", "seed.x=1"])
def test_bad_set_is_one_line_exit_2(bad: str, tmp_path: Path) -> None:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.profile", "use", "full", "--set", bad],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("profile: --set") and proc.stderr.count("\n") == 1


def test_data_root_override_reaches_params(params: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DVC reads only params.yaml, so MOTIF_DATA_ROOT is written there on a switch."""
    monkeypatch.setenv("MOTIF_DATA_ROOT", "../shared/data")
    profile.use("full", params)
    assert yaml.safe_load(params.read_text())["data_root"] == "../shared/data"


def test_every_profile_folder_corpus_exists_in_a_fresh_clone() -> None:
    """`make run PROFILE=x` on a fresh clone: DVC needs every folder corpus (the inboxes) there."""
    for path in sorted((REPO / "profiles").glob("*.yaml")):
        corpora = yaml.safe_load(path.read_text()).get("corpora") or {}
        for name, item in corpora.items():
            folder = REPO / item["input"]
            assert folder.is_dir(), f"{path.name}: corpus {name} input {item['input']} missing"
            tracked = subprocess.run(
                ["git", "ls-files", item["input"]], cwd=REPO, capture_output=True, text=True
            ).stdout.split()
            assert tracked, (
                f"{path.name}: {item['input']} has no tracked file (a fresh clone lacks it)"
            )
