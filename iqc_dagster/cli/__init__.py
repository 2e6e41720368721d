"""The ``iqc`` command. Each sub-command lives in its own module with ``add_parser(subparsers)``.

Errors users can act on (a missing folder, no photos, a failed check) print one line to stderr and
exit non-zero; no traceback reaches the user. ``IQC_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

from iqc_dagster import __version__


class CLIError(Exception):
    """A one-line message for the user; exit code 2."""


#: Sub-command modules, in help order. Adding a command = one module + one entry here.
COMMANDS = ["rank", "run", "ui", "models", "evaluate", "benchmark", "tune", "perf", "export"]

#: Old names still accepted (not listed in --help): old -> new.
ALIASES = {"bench": "perf"}


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="iqc", description="Image Quality Checker: rank photo albums.")
    parser.add_argument("--version", action="version", version=f"iqc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"iqc_dagster.cli.{name}").add_parser(sub)
    return parser


_warnings_log = logging.getLogger("iqc.warnings")


def _warning_to_log(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` for the CLI: library warnings (Pillow's corrupt-EXIF UserWarning with its
    source line, numpy overflow, matplotlib missing glyphs) go to the log at debug level instead of
    stderr, where they looked like traceback fragments. ``IQC_DEBUG=1`` shows them."""
    _warnings_log.debug("%s: %s (%s:%s)", category.__name__, message, filename, lineno)


def route_library_output() -> None:
    """Warnings and library log records to the log at debug level; on stderr only with IQC_DEBUG=1."""
    warnings.showwarning = _warning_to_log
    if os.environ.get("IQC_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    else:
        # Python prints WARNING records of loggers without a handler (matplotlib's font warnings, PIL's)
        # through its last-resort handler: give the root logger a handler that keeps them quiet.
        root = logging.getLogger()
        if not root.handlers:
            root.addHandler(logging.NullHandler())


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", module="dagster")
    warnings.filterwarnings("ignore", category=Warning, message=".*preview.*")
    route_library_output()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ALIASES:
        print(f"iqc {argv[0]}: renamed to `iqc {ALIASES[argv[0]]}` (the old name will go away)", file=sys.stderr)
        argv[0] = ALIASES[argv[0]]
    parser = build_parser()
    args = parser.parse_args(argv)
    from iqc_dagster.core.names import display

    try:
        return int(args.func(args) or 0)
    except CLIError as exc:
        print(f"iqc {args.command}: error: {display(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"iqc {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # last resort: still one line, unless debugging
        if os.environ.get("IQC_DEBUG"):
            raise
        print(f"iqc {args.command}: error: {type(exc).__name__}: {display(exc)} (set IQC_DEBUG=1 for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
