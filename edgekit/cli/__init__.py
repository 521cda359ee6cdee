"""`edgekit <command>`: each subcommand parses flags and calls one public library function.

Command modules import heavy libraries (torch, onnx) inside their handlers only, so `edgekit serve`
and `edgekit bench` start on a device that has just the runtime extra.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import sys
from collections.abc import Mapping
from typing import Any, TypeVar

from edgekit import __version__
from edgekit.errors import EdgekitError

# Modules only `edgekit[train]` brings; a device installs `edgekit[runtime]` without them.
TRAINING_MODULES = ("torch", "transformers", "optimum", "onnx", "onnxscript")

T = TypeVar("T")

# One module per pipeline stage; each defines register(subparsers).
COMMAND_MODULES = [
    "distill",
    "profiles",
    "demo",
    "export",
    "evaluate",
    "bench",
    "serve",
    "escalations",
    "mender",
    "flash",
    "device",
]


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


def given_fields(
    cls: type, args: argparse.Namespace, renames: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The flags given in `args` for dataclass `cls`'s fields, by field name: a flag counts as given when
    its value is not None (so flags that a config file may also set default to None). `renames` maps a
    field to a differently named flag destination."""
    renames = renames or {}
    out = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, renames.get(f.name, f.name), None)
        if value is not None:
            out[f.name] = value
    return out


def options_from_args(
    cls: type[T], args: argparse.Namespace, renames: Mapping[str, str] | None = None, **values: Any
) -> T:
    """Build dataclass `cls` from the flags in `args` by field name (plus `values`), instead of copying
    flags into it one by one; fields whose flag was not given keep the dataclass default."""
    return cls(**{**given_fields(cls, args, renames), **values})
