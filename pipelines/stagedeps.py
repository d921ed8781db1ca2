"""The project source files each DVC stage runs, derived from its imports.

A stage's command is ``python -m PACKAGE.MODULE ...``. The code it runs is that module plus every
project module it imports, directly or through another, at module level or inside a function
(a lazy import runs when the stage does). :func:`closure` finds them by reading the source with
:mod:`ast`: nothing is imported or executed, so it is fast and sees the imports of every code
path, including the ones a particular run skips. Only the project's packages are followed (the
top-level folders with an ``__init__.py`` that ``pyproject.toml`` ships: ``pipelines``,
``modeling``, ``studio``, ``flows``); third-party code is pinned by ``requirements.lock`` instead.

Imports by computed name count too, resolved conservatively:

* ``importlib.import_module("a.b")`` (or ``__import__``) with a literal: that module;
* with an f-string ``f"a.b.{x}"``: every module of package ``a.b``;
* with any other expression: every project module the same file names in a string literal
  (``modeling/families/__init__.py`` looks families up in a dict of module names);
* ``[sys.executable, "-m", "a.b", ...]``: a child process running module ``a.b``.

Imports under ``if TYPE_CHECKING:`` never run and are skipped.

Who uses it. ``tests/test_stage_deps.py`` checks that every stage in ``dvc.yaml`` lists (as a file,
or a folder above it) every file of its command's closure, so a new import that dvc.yaml does not
know about fails the suite instead of leaving stale results; it also edits each file in a copy of
the project and asks ``dvc status``. ``modeling.evaluate.ResultCache`` hashes the closure of
``modeling.evaluate`` as the code part of its cache key.

    python -m pipelines.stagedeps check [--dvc-yaml dvc.yaml]   # stages missing deps: exit 1
    python -m pipelines.stagedeps closure modeling.evaluate     # the files one module runs
"""

from __future__ import annotations

import ast
import itertools
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modeling.cli import ArgumentParser, UsageError, command

ROOT = Path(__file__).resolve().parents[1]
"""The project root: the folder that holds the packages (the checkout, or site-packages)."""

_MODULE_IN_CMD = re.compile(r"(?:^|\s)python3?\s+-m\s+([A-Za-z_][\w.]*)")


class StageDepsError(ValueError):
    """An unreadable dvc.yaml or an unknown module: one line, exit 2."""


def _packages(root: Path) -> frozenset[str]:
    """Top-level folders under ``root`` with an ``__init__.py``; in a checkout, only those the
    project ships (``pyproject.toml``'s ``packages.find.include``), never a virtualenv's."""
    import fnmatch
    import tomllib

    folders = {p.parent.name for p in root.glob("*/__init__.py")}
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        find = tomllib.loads(pyproject.read_text()).get("tool", {}).get("setuptools", {})
        include = find.get("packages", {}).get("find", {}).get("include")
        if isinstance(include, list):
            folders = {f for f in folders if any(fnmatch.fnmatch(f, i) for i in include)}
    return frozenset(folders)


class Project:
    """The project's packages under ``root``; each module is parsed at most once per instance
    (make a new one to see edited files)."""

    def __init__(self, root: Path = ROOT) -> None:
        self.root = Path(root)
        self.packages = _packages(self.root)
        self._imports: dict[str, frozenset[str]] = {}

    def module_file(self, name: str) -> Path | None:
        """The source of project module ``name`` (``a/b.py`` or ``a/b/__init__.py``), if any."""
        if name.split(".")[0] not in self.packages:
            return None
        base = self.root.joinpath(*name.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    def package_modules(self, package: str) -> list[str]:
        """Every module of project package ``package`` (its folder, recursively)."""
        init = self.module_file(package)
        if init is None or init.name != "__init__.py":
            return [package] if init else []
        out = []
        for path in sorted(init.parent.rglob("*.py")):
            parts = path.relative_to(self.root).with_suffix("").parts
            out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        return out

    def direct_imports(self, name: str) -> frozenset[str]:
        """Project modules that module ``name`` imports (by statement, by name or as a child
        process), with their parent packages (whose ``__init__`` runs first)."""
        if name not in self._imports:
            self._imports[name] = self._parse(name)
        return self._imports[name]

    def _parse(self, name: str) -> frozenset[str]:
        path = self.module_file(name)
        if path is None:
            raise StageDepsError(f"no project module {name} under {self.root}")
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except SyntaxError as exc:
            raise StageDepsError(f"{path}: cannot parse ({exc.msg}, line {exc.lineno})") from None
        found: set[str] = set()
        named: set[str] = set()  # string literals that name a project module
        computed = False  # an import_module() call whose argument is not a literal

        def add(module: str) -> None:
            if module and module.split(".")[0] in self.packages:
                found.add(module)

        for node in _walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(alias.name)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = _resolve_relative(
                        node.module, node.level, name, path.name == "__init__.py"
                    )
                add(base)
                for alias in node.names:  # `from pkg import submodule`
                    if alias.name != "*" and self.module_file(f"{base}.{alias.name}"):
                        add(f"{base}.{alias.name}")
            elif isinstance(node, ast.Call) and _is_dynamic_import(node) and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    add(arg.value)
                elif isinstance(arg, ast.JoinedStr) and arg.values:
                    head = arg.values[0]
                    prefix = str(head.value) if isinstance(head, ast.Constant) else ""
                    for module in self.package_modules(prefix.rpartition(".")[0]):
                        add(module)
                else:
                    computed = True
            elif isinstance(node, (ast.List, ast.Tuple)):
                items = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
                for flag, module in itertools.pairwise(items):
                    if flag == "-m" and isinstance(module, str):
                        add(module)
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.split(".")[0] in self.packages
                and self.module_file(node.value)
            ):
                named.add(node.value)
        if computed:
            found.update(named)
        with_parents = set()
        for module in found:
            parts = module.split(".")
            for i in range(1, len(parts) + 1):
                if self.module_file(".".join(parts[:i])):
                    with_parents.add(".".join(parts[:i]))
        with_parents.discard(name)
        return frozenset(with_parents)

    def closure_modules(self, module: str) -> frozenset[str]:
        """``module``, its parent packages and every project module it imports, transitively."""
        parts = module.split(".")
        todo = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(self.direct_imports(name) - seen)
        return frozenset(seen)

    def closure(self, module: str) -> list[str]:
        """Source files (posix paths relative to the root, sorted) ``python -m module`` runs."""
        files = set()
        for name in self.closure_modules(module):
            path = self.module_file(name)
            if path is not None:
                files.add(path.relative_to(self.root).as_posix())
        return sorted(files)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, skipping the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _is_dynamic_import(call: ast.Call) -> bool:
    f = call.func
    return (isinstance(f, ast.Attribute) and f.attr == "import_module") or (
        isinstance(f, ast.Name) and f.id in ("import_module", "__import__")
    )


def _resolve_relative(module: str | None, level: int, this: str, is_package: bool) -> str:
    base = this.split(".") if is_package else this.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def closure(module: str, root: Path = ROOT) -> list[str]:
    """Source files (posix paths relative to ``root``, sorted) that ``python -m module`` runs."""
    return Project(root).closure(module)


def modules_in_cmd(cmd: str | list[str]) -> tuple[str, ...]:
    """The modules a stage command runs: each ``python -m MODULE`` in it."""
    cmds = cmd if isinstance(cmd, list) else [cmd]
    return tuple(m for c in cmds for m in _MODULE_IN_CMD.findall(str(c)))


def covered(path: str, deps: Iterable[str]) -> bool:
    """Whether a dep names ``path`` itself or a folder above it."""
    for dep in deps:
        dep = dep.rstrip("/")
        if path == dep or path.startswith(dep + "/"):
            return True
    return False


@dataclass(frozen=True)
class StageCheck:
    """One stage of dvc.yaml against the closure of the module(s) its command runs."""

    stage: str
    modules: tuple[str, ...]
    deps: tuple[str, ...]
    needed: tuple[str, ...]
    missing: tuple[str, ...]
    """Files of the closure that no dep covers: a change there would not rerun the stage."""
    extra: tuple[str, ...]
    """Project source deps that hold no file of the closure: needless reruns."""


def stage_bodies(dvc_yaml: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Stage name -> its definition (a ``foreach`` stage's ``do`` body: one per expansion)."""
    stages = dvc_yaml.get("stages")
    if not isinstance(stages, Mapping):
        raise StageDepsError("dvc.yaml has no stages mapping")
    return {
        name: (body.get("do", body) if isinstance(body, Mapping) else {})
        for name, body in stages.items()
    }


def check_stage(name: str, body: Mapping[str, Any], project: Project) -> StageCheck:
    """Compare one stage's literal deps with the closure of its ``python -m`` module(s).

    Deps with ``${...}`` are data paths filled in per ``foreach`` item and are not counted; a
    source dep must be written literally.
    """
    modules = modules_in_cmd(body.get("cmd", ""))
    deps = tuple(
        str(next(iter(d))) if isinstance(d, Mapping) else str(d) for d in body.get("deps") or ()
    )
    literal = [d for d in deps if "${" not in d]
    needed = sorted({f for m in modules for f in project.closure(m)})
    extra = [
        d
        for d in literal
        if d.split("/")[0] in project.packages and not any(covered(f, [d]) for f in needed)
    ]
    return StageCheck(
        stage=name,
        modules=modules,
        deps=deps,
        needed=tuple(needed),
        missing=tuple(f for f in needed if not covered(f, literal)),
        extra=tuple(extra),
    )


def check(dvc_yaml_path: Path, root: Path = ROOT) -> list[StageCheck]:
    """Every stage of ``dvc_yaml_path`` checked against its command's import closure."""
    import yaml

    try:
        data = yaml.safe_load(Path(dvc_yaml_path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise StageDepsError(f"cannot read {dvc_yaml_path}: {exc}".splitlines()[0]) from None
    if not isinstance(data, Mapping):
        raise StageDepsError(f"{dvc_yaml_path}: expected a mapping")
    project = Project(root)
    return [check_stage(n, b, project) for n, b in stage_bodies(data).items()]


@command("stagedeps")
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(
        prog="python -m pipelines.stagedeps",
        description="Project source files each DVC stage runs (from its imports).",
    )
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="stages whose deps miss an imported file (exit 1)")
    c.add_argument("--dvc-yaml", default="dvc.yaml", help="default dvc.yaml")
    m = sub.add_parser("closure", help="the files `python -m MODULE` runs")
    m.add_argument("module", help="e.g. modeling.evaluate")
    args = p.parse_args(argv)
    try:
        if args.command == "closure":
            print("\n".join(closure(args.module)))
            return 0
        bad = 0
        for result in check(Path(args.dvc_yaml)):
            for f in result.missing:
                print(f"{result.stage}: missing dep {f} (imported by {' '.join(result.modules)})")
            for d in result.extra:
                print(f"{result.stage}: dep {d} is not imported by {' '.join(result.modules)}")
            bad += bool(result.missing or result.extra)
        return 1 if bad else 0
    except StageDepsError as exc:
        raise UsageError(str(exc)) from None


if __name__ == "__main__":
    sys.exit(main())
