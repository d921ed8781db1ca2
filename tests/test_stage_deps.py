"""dvc.yaml's deps follow the imports: every stage reruns when any module it runs changes.

Three layers. (1) :mod:`pipelines.stagedeps` derives each stage's source files from the imports
of its ``python -m`` module; its rules are checked on a small package built here, and its result
against what Python really imports. (2) Every stage of the real dvc.yaml lists (as a file or a
folder above it) every file of that closure and no unimported source: a new import without a new
dep fails here, so the deps cannot drift. (3) In a copy of the project, ``dvc status`` itself
reports each stage once a module it imports is edited.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines import stagedeps
from tests.conftest import REPO

DVC = str(Path(sys.executable).parent / "dvc")


# ============================================================================ the analysis

TOY = {
    "app/__init__.py": "",
    "app/main.py": """
import json
import subprocess
import sys
from typing import TYPE_CHECKING

from app import util

if TYPE_CHECKING:
    from app import typing_only
else:
    from app import runtime_branch


def lazy(name):
    import importlib

    from app.lazy import thing
    from app.registry import load

    subprocess.run([sys.executable, "-m", "app.worker"])
    return importlib.import_module(f"app.plugins.{name}")
""",
    "app/util.py": "from . import helper\nfrom .sub.deep import X\n",
    "app/helper.py": "",
    "app/sub/__init__.py": "",
    "app/sub/deep.py": "from .. import helper\nX = 1\n",
    "app/runtime_branch.py": "",
    "app/typing_only.py": "",
    "app/lazy.py": "thing = 1\n",
    "app/worker.py": "",
    "app/registry.py": """
import importlib

MODULES = {"x": "app.named", "y": "json"}


def load(key):
    return importlib.import_module(MODULES[key])
""",
    "app/named.py": "",
    "app/plugins/__init__.py": "",
    "app/plugins/one.py": "",
    "app/plugins/two.py": "",
    "app/unused.py": "import app.main\n",
    "other/__init__.py": "",
    "other/never.py": "",
}


def test_closure_follows_every_kind_of_import(tmp_path: Path) -> None:
    """Lazy imports, relative imports, f-string and computed ``import_module``, a ``-m`` child
    process and parent packages count; ``TYPE_CHECKING`` imports, unimported modules and
    third-party modules do not."""
    for rel, text in TOY.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    got = stagedeps.closure("app.main", tmp_path)
    want = sorted(
        rel
        for rel in TOY
        if rel.startswith("app/") and rel not in ("app/typing_only.py", "app/unused.py")
    )
    assert got == want
    assert stagedeps.closure("app.sub.deep", tmp_path) == [
        "app/__init__.py", "app/helper.py", "app/sub/__init__.py", "app/sub/deep.py"
    ]  # fmt: skip
    with pytest.raises(stagedeps.StageDepsError, match=r"no project module app\.ghost"):
        stagedeps.closure("app.ghost", tmp_path)
    (tmp_path / "app" / "broken.py").write_text("def (\n")
    with pytest.raises(stagedeps.StageDepsError, match=r"broken\.py: cannot parse"):
        stagedeps.closure("app.broken", tmp_path)


def test_runtime_imports_are_in_the_static_closure() -> None:
    """What importing each stage's module really loads (module-level imports) is a subset of the
    closure read from the source, which adds the lazy imports. One process imports them in
    turn, dropping the project's modules in between (third-party ones stay: they are not
    compared, and importing them once keeps this fast)."""
    checks = stagedeps.check(REPO / "dvc.yaml")
    modules = sorted({m for c in checks for m in c.modules})
    packages = sorted(stagedeps.Project(REPO).packages)
    code = f"""
import importlib, json, sys
ours = lambda: sorted(m for m in sys.modules if m.split(".")[0] in {packages!r})
loaded = {{}}
for module in sys.argv[1:]:
    for name in ours():
        del sys.modules[name]
    importlib.import_module(module)
    loaded[module] = ours()
print(json.dumps(loaded))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code, *modules],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    project = stagedeps.Project(REPO)
    for module, loaded in json.loads(proc.stdout.splitlines()[-1]).items():
        static = project.closure_modules(module)
        assert module in loaded
        assert set(loaded) <= static, f"{module} imports {sorted(set(loaded) - static)} unseen"


# ============================================================================ dvc.yaml


def test_every_stage_depends_on_the_modules_it_imports() -> None:
    """The drift guard: a stage whose command runs a module dvc.yaml does not list fails here
    (run ``python -m pipelines.stagedeps check`` for the list)."""
    checks = stagedeps.check(REPO / "dvc.yaml")
    assert {c.stage for c in checks} >= {"ingest", "examples", "train", "generate", "evaluate"}
    for c in checks:
        assert c.modules, f"{c.stage}: no `python -m MODULE` in its cmd"
        assert not c.missing, f"{c.stage} does not depend on {list(c.missing)}"
        assert not c.extra, f"{c.stage} depends on {list(c.extra)} that it never imports"


def test_check_cli_names_a_missing_dep(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The check reports a dep dropped from dvc.yaml (exit 1) and a needless one; a missing
    dvc.yaml is one line and exit 2."""
    data = yaml.safe_load((REPO / "dvc.yaml").read_text())
    deps = data["stages"]["evaluate"]["deps"]
    deps[deps.index("modeling/train.py")] = "studio/jobs.py"
    broken = tmp_path / "dvc.yaml"
    broken.write_text(yaml.safe_dump(data))
    assert stagedeps.main(["check", "--dvc-yaml", str(broken)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "evaluate: missing dep modeling/train.py (imported by modeling.evaluate)",
        "evaluate: dep studio/jobs.py is not imported by modeling.evaluate",
    ]
    assert stagedeps.main(["check", "--dvc-yaml", str(tmp_path / "none.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "none.yaml" in err


# ============================================================================ dvc status


def _dummy(path: Path, root: Path) -> None:
    """A stand-in output: a file where the name has a suffix, else a folder with one file."""
    assert path.resolve().is_relative_to(root.resolve()), f"{path} is outside the copy"
    if path.suffix:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    else:
        path.mkdir(parents=True, exist_ok=True)
        (path / "part").write_text("x\n")


def _status(root: Path, env: dict[str, str]) -> dict[str, set[str]]:
    """``dvc status --json``: stage -> its changed deps."""
    proc = subprocess.run(
        [DVC, "status", "--json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    changed: dict[str, set[str]] = {}
    for stage, entries in json.loads(proc.stdout).items():
        for entry in entries:
            if isinstance(entry, dict):
                changed.setdefault(stage, set()).update(entry.get("changed deps", {}))
    return changed


def test_dvc_status_reruns_each_stage_whose_imports_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The project's code, dvc.yaml and params (default profile) in a scratch DVC project. No
    stage is run: every output is a one-line stand-in and ``dvc commit -f`` records the current
    hashes in dvc.lock, which is exactly what a finished ``dvc repro`` leaves for ``dvc status``
    to compare against (status hashes deps; it never looks inside outputs). Then editing a module
    must make ``dvc status`` report every stage whose command imports it, and only those."""
    from dvc.repo import Repo

    from pipelines import profile

    root = tmp_path / "proj"
    project = stagedeps.Project(REPO)
    for package in project.packages:
        shutil.copytree(
            REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    monkeypatch.chdir(REPO)  # profiles/ is read from the project root
    monkeypatch.delenv("MOTIF_DATA_ROOT", raising=False)
    profile.use("default", root / "params.yaml")  # inputs inside the project, whatever is active
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=root, env=env, check=True, timeout=60)

    closures: dict[str, set[str]] = {}
    copy = stagedeps.Project(root)
    with Repo(str(root)) as repo:
        stages = list(repo.index.stages)
        for stage in stages:
            for out in stage.outs:
                _dummy(Path(out.fs_path), root)
        for stage in stages:
            for dep in stage.deps:
                if not Path(dep.fs_path).exists():
                    _dummy(Path(dep.fs_path), root)
            modules = stagedeps.modules_in_cmd(stage.cmd)
            assert modules, stage.name
            closures[stage.name] = {f for m in modules for f in copy.closure(m)}
    assert {s.split("@")[0] for s in closures} >= {"ingest", "train", "generate", "evaluate"}
    subprocess.run([DVC, "commit", "-f", "-q"], cwd=root, env=env, check=True, timeout=300)
    assert _status(root, env) == {}  # the recorded state is up to date

    # one module the issue named: generate and evaluate must rerun, train must not
    with (root / "modeling/primers.py").open("a") as fh:
        fh.write("\n# edited\n")
    reported = set(_status(root, env))
    assert reported == {s for s, files in closures.items() if "modeling/primers.py" in files}
    assert "generate" in reported and "evaluate" in reported
    assert not any(s.startswith("train@") for s in reported)

    # every module any stage imports: each stage reports each of its files as a changed dep
    for rel in sorted(set().union(*closures.values())):
        with (root / rel).open("a") as fh:
            fh.write("\n# edited\n")
    changed = _status(root, env)
    assert set(changed) == set(closures)
    for stage, files in closures.items():
        unseen = [f for f in sorted(files) if not stagedeps.covered(f, changed[stage])]
        assert not unseen, f"dvc status does not rerun {stage} when {unseen} change"
