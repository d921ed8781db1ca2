"""``pipelines.params.load_params``: the shipped params and profiles load; a malformed file, a
wrong shape or a wrong type is one line naming the file and the place, and every stage CLI turns
it into exit 2 before doing any work."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from _python import run_python

from modeling.families.base import HParams
from pipelines import profile
from pipelines.params import HPARAMS, ParamsError, load_params, problems

REPO = Path(__file__).resolve().parents[1]


def _load(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return load_params(path)


def _refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ParamsError) as info:
        _load(tmp_path, text)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'params.yaml'}: "), message
    return message


# ----------------------------------------------------------------------------- what ships


def test_shipped_params_load() -> None:
    params = load_params(REPO / "params.yaml")
    assert params["train"]["num_steps"] >= 1 and params["variants"]


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "profiles").glob("*.yaml")))
def test_shipped_profiles_load(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each profile as ``make run PROFILE=name`` installs it over the shipped params.yaml."""
    params_path = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params_path)
    monkeypatch.chdir(REPO)  # profile.use reads profiles/NAME.yaml; it writes only params_path
    profile.use(name, params_path)
    params = load_params(params_path)
    assert params["profile"] == name
    wanted = yaml.safe_load((REPO / "profiles" / f"{name}.yaml").read_text())
    assert set(params["variants"]) == set(wanted["variants"])


def test_hparams_schema_matches_hparams() -> None:
    """The schema's hparams are modeling's HParams, and each accepts its own default."""
    defaults = HParams()
    assert set(HPARAMS.fields) == {f.name for f in dataclasses.fields(HParams)}
    for name in HPARAMS.fields:
        value = getattr(defaults, name)
        value = list(value) if isinstance(value, tuple) else value
        assert not list(problems(HPARAMS, {name: value})), name
        wrong = "yes" if isinstance(value, bool) else True  # only a boolean hparam takes one
        assert list(problems(HPARAMS, {name: wrong})), name


@pytest.mark.parametrize(
    "text",
    [
        "",  # an empty file: every stage's defaults
        "train:\nvariants:\n  basic_rnn:\n",  # empty sections and entries read as defaults
        "train: {num_steps: 5, save_every: null}\ningest: {timeout_s: 60, max_tempo_qpm: 1000}\n",
        "finetunes:\n  edm_rnn: {example_set: edm, colour: blue}\n",  # train names the typo
        "example_sets:\n  m: {family: melody, corpora: [a], extract: {transpose_to_key: null}}\n",
    ],
)
def test_accepted(tmp_path: Path, text: str) -> None:
    assert isinstance(_load(tmp_path, text), dict)


# ----------------------------------------------------------------------------- F1: YAML syntax


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("train:\n  num_steps: [1, 2\nseed: 3\n", "line 3, column 5"),  # unclosed [
        ("seed: 1\nprofile: 'default\n", "line 3, column 1"),  # unclosed quote
        ("train:\n  num_steps: 5\n eval_every: 2\n", "line 3, column 2"),  # bad indentation
        ("seed: 1\n\tprofile: x\n", "line 2, column 1"),  # a tab
    ],
)
def test_malformed_yaml_names_line_and_column(tmp_path: Path, text: str, where: str) -> None:
    message = _refused(tmp_path, text)
    assert f"invalid YAML at {where}" in message, message


def test_not_text(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_bytes(b"seed: \xff\n")
    with pytest.raises(ParamsError, match=r"params.yaml: not UTF-8 text \(byte 6\)"):
        load_params(path)


# ----------------------------------------------------------------------------- F2, F3: types


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        # F2: wrong shapes
        ("train: [1, 2]\n", "train: expected a mapping, got a list [1, 2]"),
        ("variants:\n  basic_rnn: 5\n", "variants.basic_rnn: expected a mapping, got 5"),
        (
            "variants:\n  basic_rnn: {example_set: m, hparams: [1, 2]}\n",
            "variants.basic_rnn.hparams: expected a mapping, got a list [1, 2]",
        ),
        ("example_sets:\n  m: {family: melody, corpora: a}\n", "example_sets.m.corpora: expected "),
        ("beam: {extra_args: --x=1}\n", "beam.extra_args: expected a list of strings"),
        ("generate: {requests: {one: 3}}\n", "generate.requests.one: expected a mapping, got 3"),
        (
            "evaluate: {performance_requests: {notes_per_second: 2}}\n",
            "evaluate.performance_requests: expected a list of mappings",
        ),
        ("- 1\n- 2\n", "expected a mapping at the top level"),
        # F3: booleans and floats are not integers; numbers are not booleans
        ("train:\n  num_steps: true\n", "train.num_steps: expected an integer, got true"),
        ("train:\n  num_steps: 60.7\n", "train.num_steps: expected an integer, got 60.7"),
        ("train:\n  num_steps: 60.0\n", "train.num_steps: expected an integer, got 60.0"),
        ("train:\n  num_steps: '60'\n", "train.num_steps: expected an integer, got '60'"),
        ("seed: false\n", "seed: expected an integer, got false"),
        (
            "finetunes:\n  edm_rnn: {num_steps: 1.5}\n",
            "finetunes.edm_rnn.num_steps: expected an integer, got 1.5",
        ),
        (
            "variants:\n  basic_rnn: {hparams: {batch_size: true}}\n",
            "variants.basic_rnn.hparams.batch_size: expected an integer, got true",
        ),
        (
            "variants:\n  basic_rnn: {hparams: {rnn_layer_sizes: [64, 6.5]}}\n",
            "variants.basic_rnn.hparams.rnn_layer_sizes[1]: expected an integer, got 6.5",
        ),
        ("ingest: {num_shards: true}\n", "ingest.num_shards: expected an integer, got true"),
        ("ingest: {timeout_s: yes}\n", "ingest.timeout_s: expected a finite number, got true"),
        ("ingest: {max_zip_ratio: .nan}\n", "ingest.max_zip_ratio: expected a finite number"),
        ("examples: {augment_eval: 1}\n", "examples.augment_eval: expected true or false, got 1"),
        ("train: {num_steps: null}\n", "train.num_steps: expected an integer, got null"),
    ],
)
def test_wrong_shape_or_type_names_key_and_type(tmp_path: Path, text: str, wanted: str) -> None:
    message = _refused(tmp_path, text)
    assert wanted in message, message


def test_every_problem_is_counted(tmp_path: Path) -> None:
    message = _refused(tmp_path, "seed: true\ntrain: {num_steps: 1.5, keep_last: false}\n")
    assert message.endswith("seed: expected an integer, got true (and 2 more)"), message


# ----------------------------------------------------------------------------- the stage CLIs

_CLIS = {
    "modeling.train": ["--variant", "basic_rnn", "--examples", "ex", "--output", "out"],
    "pipelines.ingest": ["--corpus", "c", "--input", "in", "--output", "out"],
    "pipelines.examples": ["--set", "melody", "--output", "out"],
    "modeling.batch": ["run-all", "--output", "out"],  # --params goes first
}


def _cli(module: str, params: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    args = _CLIS[module]
    argv = (
        ["--params", str(params), *args]
        if module == "modeling.batch"
        else [*args, "--params", str(params)]
    )
    return run_python(["-m", module, *argv], cwd=cwd, timeout=120)


@pytest.mark.parametrize(
    ("module", "text", "wanted"),
    [
        *[
            (m, "train:\n  num_steps: [1, 2\n", "invalid YAML at line 3, column 1") for m in _CLIS
        ],  # F1 for each stage
        ("modeling.train", "train: [1, 2]\n", "train: expected a mapping"),  # F2
        (
            "pipelines.examples",
            "example_sets:\n  melody: {family: melody, corpora: 5}\n",
            "example_sets.melody.corpora: expected a list of strings, got 5",
        ),
        ("modeling.train", "train:\n  num_steps: true\n", "train.num_steps: expected an integer"),
        ("pipelines.ingest", "ingest: {num_shards: true}\n", "ingest.num_shards: expected an"),
    ],
)
def test_cli_refuses_bad_params_with_one_line(
    tmp_path: Path, module: str, text: str, wanted: str
) -> None:
    params = tmp_path / "bad.yaml"
    params.write_text(text)
    proc = _cli(module, params, tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert str(params) in lines[0] and wanted in lines[0], lines[0]
    assert not (tmp_path / "out").exists()
