"""The ``iqc`` command. Each sub-command lives in its own module with ``add_parser(subparsers)``.

Errors users can act on (a missing folder, no photos, a failed check) print one line to stderr and
exit non-zero; no traceback reaches the user. ``IQC_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from iqc_dagster import __version__


class CLIError(Exception):
    """A one-line message for the user; exit code 2."""


#: Sub-command modules, in help order. Adding a command = one module + one entry here.
COMMANDS = ["rank", "run", "ui", "models", "evaluate", "benchmark", "tune", "bench"]


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="iqc", description="Image Quality Checker: rank photo albums.")
    parser.add_argument("--version", action="version", version=f"iqc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"iqc_dagster.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", module="dagster")
    warnings.filterwarnings("ignore", category=Warning, message=".*preview.*")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CLIError as exc:
        print(f"iqc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"iqc {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # last resort: still one line, unless debugging
        if os.environ.get("IQC_DEBUG"):
            raise
        print(f"iqc {args.command}: error: {type(exc).__name__}: {exc} (set IQC_DEBUG=1 for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
