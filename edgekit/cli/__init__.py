"""`edgekit <command>`: each subcommand parses flags and calls one public library function.

Command modules import heavy libraries (torch, onnx) inside their handlers only, so `edgekit serve`
and `edgekit bench` start on a device that has just the runtime extra.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from edgekit import __version__
from edgekit.errors import EdgekitError

# Modules only `edgekit[train]` brings; a device installs `edgekit[runtime]` without them.
TRAINING_MODULES = ("torch", "transformers", "optimum", "onnx", "onnxscript")

# One module per pipeline stage; each defines register(subparsers).
COMMAND_MODULES = ["distill", "profiles", "demo", "export", "bench", "serve", "mender", "flash", "device"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgekit", description="Distil, export, bundle, serve and benchmark models for edge devices."
    )
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"edgekit.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Our own INFO lines, but only warnings from libraries (onnxscript's optimizer is chatty at INFO).
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("edgekit").setLevel(level)
    try:
        rc = args.handler(args)
    except EdgekitError as exc:
        print(f"edgekit {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in TRAINING_MODULES:
            raise
        print(
            f"edgekit {args.command}: error: needs the training stack, which this install lacks "
            f"(no module {missing!r}): pip install 'edgekit[train]' after 'pip install torch==2.13.0'",
            file=sys.stderr,
        )
        return 2
    return int(rc or 0)


def csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]
