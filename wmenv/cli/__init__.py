"""The ``wmenv`` command line: ``demo | collect | train | imagine | benchmark | evaluate-model | perf | list``.

Each subcommand's argparse code is a module of this package with a ``register(subparsers)``
function; the work itself lives in the library layer it belongs to. Handlers return an exit code. Usage errors (unknown
names, malformed options, bad overrides, foreign run directories) print one clear line and
exit with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from wmenv.core.errors import WMEnvError

__all__ = ["main", "build_parser"]

#: (module, function) pairs that add subcommands.
COMMANDS: list[tuple[str, str]] = [
    ("wmenv.cli.demo", "register"),
    ("wmenv.cli.train", "register"),
    ("wmenv.cli.register", "register"),
    ("wmenv.cli.imagine", "register"),
    ("wmenv.cli.benchmark", "add_benchmark_parser"),
    ("wmenv.cli.evaluate_model", "register"),
    ("wmenv.cli.perf", "register"),
]


def _list(args: argparse.Namespace) -> int:
    import wmenv

    print("models:", ", ".join(wmenv.list_models()))
    try:
        print("env backends:", ", ".join(wmenv.list_env_backends()))
    except ModuleNotFoundError:
        pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered subcommand."""
    import wmenv

    parser = argparse.ArgumentParser(prog="wmenv", description="Learned world models as RL environments.")
    parser.add_argument("--version", action="version", version=f"wmenv {wmenv.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module, fn in COMMANDS:
        getattr(importlib.import_module(module), fn)(sub)
    p = sub.add_parser("list", help="list registered models and env backends")
    p.set_defaults(func=_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wmenv`` console script."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # the raw arguments (``wmenv train --nproc K`` re-runs itself under torchrun)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except (WMEnvError, FileNotFoundError) as err:
        if isinstance(err, ValueError | KeyError | TypeError | FileNotFoundError):
            print(f"wmenv {args.command}: error: {err}", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
