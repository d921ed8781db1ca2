"""Per-variant results kept between runs (``--cache``), keyed by everything that decides them:
settings, eval data, the model's registry version and the evaluation code's import closure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from modeling.evaluation.core import Result
from modeling.evaluation.settings import Settings


def code_version(root: Path | None = None) -> str:
    """SHA-256 of the evaluation code: the source of every project module ``python -m
    modeling.evaluate`` imports (derived from the imports by :mod:`pipelines.stagedeps`, the same
    closure dvc.yaml's evaluate deps are checked against), under ``root`` (default: this checkout).
    """
    import hashlib

    from pipelines.stagedeps import ROOT, closure

    root = ROOT if root is None else Path(root)
    digest = hashlib.sha256()
    for rel in closure("modeling.evaluate", root):
        digest.update(f"{rel}\0".encode())
        digest.update(hashlib.sha256((root / rel).read_bytes()).digest())
    return digest.hexdigest()


class ResultCache:
    """Per-variant results kept between runs, keyed by what decides them.

    The stage re-runs when any variant changes (it reports on all of them); a variant whose
    registry version, eval data, settings and evaluation code are unchanged is not evaluated
    again. Entries are JSON (no pickle): ``<dir>/<variant>.json`` = {key, result}. The code part
    is :func:`code_version`: every project file this module imports, so a changed decoder or
    scorer is never answered from the cache.
    """

    def __init__(self, root: Path, settings: Settings) -> None:
        import hashlib

        self.root = root
        digest = hashlib.sha256(repr(settings).encode())
        digest.update(code_version().encode())
        for path in sorted(Path(settings.examples_root).glob("*/eval-*.parquet")):
            digest.update(str(path.relative_to(settings.examples_root)).encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        for path in sorted(Path(settings.examples_root).glob("*/meta.json")):
            digest.update(path.read_bytes())
        self.base = digest.hexdigest()

    def _key(self, name: str, uri: str) -> str | None:
        from modeling import registry

        try:
            mv = registry._version_of(registry.client(), uri)
        except registry.RegistryError:
            return None
        return f"{self.base}:{name}:{mv.version}:{mv.run_id}"

    def get(self, name: str, uri: str) -> Result | None:
        path = self.root / f"{name}.json"
        key = self._key(name, uri)
        if key is None or not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text())
            return Result(**entry["result"]) if entry.get("key") == key else None
        except (ValueError, TypeError, KeyError):
            return None  # an old or damaged entry: evaluate again

    def put(self, name: str, uri: str, result: Result) -> None:
        from dataclasses import asdict

        key = self._key(name, uri)
        if key is None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"key": key, "result": asdict(result)}, default=_jsonable)
        tmp = self.root / f".{name}.json.tmp"
        tmp.write_text(text)
        os.replace(tmp, self.root / f"{name}.json")

    def prune(self, keep: set[str]) -> None:
        for path in self.root.glob("*.json") if self.root.is_dir() else ():
            if path.stem not in keep:
                path.unlink()


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")
