"""The ``motif`` console command (declared in pyproject.toml as ``motif = "modeling.motif:main"``).

One front door for the parts a user runs by hand; each subcommand hands its remaining arguments,
unchanged, to the module that owns them, so ``motif generate --help`` is exactly
``python -m modeling.generate --help``:

    motif generate ...   -> modeling.generate  (sampling / beam search, MIDI + piano roll + audio)
    motif train ...      -> modeling.train     (one training loop for every variant)
    motif models ...     -> modeling.registry  (registered models, versions, aliases)
    motif corpora ...    -> pipelines.corpora  (download, verify and unpack the real corpora)

The target modules are imported only when their subcommand runs, so ``motif --help`` is instant.
It is its own module, apart from the CLI idiom in :mod:`modeling.cli`, because it reaches every
command: a stage whose CLI uses the idiom must not depend (``pipelines.stagedeps``) on them all.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from modeling.cli import UsageError, command

COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("modeling.generate", "generate music from a registered model or a checkpoint"),
    "train": ("modeling.train", "train a variant on an example set (MLflow run + model)"),
    "models": ("modeling.registry", "list registered models, versions and aliases"),
    "corpora": (
        "pipelines.corpora",
        "fetch the real corpora (pinned, checksummed) into data/corpora",
    ),
}


def usage() -> str:
    width = max(len(c) for c in COMMANDS)
    lines = ["usage: motif <command> [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "'motif <command> --help' explains each command's flags."]
    return "\n".join(lines)


@command("motif")
def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        raise UsageError(f"unknown command {name!r}; choose from {', '.join(COMMANDS)}")
    module = importlib.import_module(COMMANDS[name][0])
    try:
        result = module.main(rest)
    except SystemExit as exc:  # argparse --help inside the subcommand
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
