"""selection.json: which variant and execution provider this device chose for an installed release, and the
measurements behind the choice (written by edgekit.runtime.tune, read by Engine.load and `device status`)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.bundle.manifest import SELECTION, read_capped
from edgekit.config import from_dict, to_dict
from edgekit.errors import BundleError, ConfigError

SELECTION_SCHEMA = 1
MAX_SELECTION_BYTES = 1 << 20


@dataclass
class Measurement:
    """One (variant, provider) pair: its golden self-test on this device and, if it passed, its timing."""

    variant: str
    provider: str
    self_test: str  # "passed", or why it failed
    # batch size (as a string, JSON keys) -> median ms per call; empty when the self-test failed
    median_ms: dict[str, float] = field(default_factory=dict)
    rounds: int = 0
    # geometric mean over batch sizes of median / fastest pair's median (1.0: fastest everywhere)
    score: float | None = None


@dataclass
class Selection:
    variant: str
    provider: str
    measurements: list[Measurement]
    tuned_at: str
    forced: bool
    batch_sizes: list[int] = field(default_factory=list)
    rule: str = ""
    schema_version: int = SELECTION_SCHEMA

    def save(self, release_dir: str | Path) -> Path:
        """Write selection.json atomically (temporary file, fsync, rename, fsync of the folder)."""
        release_dir = Path(release_dir)
        fd, tmp = tempfile.mkstemp(prefix=f".{SELECTION}.", dir=release_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(to_dict(self), indent=2, sort_keys=True) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, release_dir / SELECTION)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dfd = os.open(release_dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return release_dir / SELECTION


def read_selection(release_dir: str | Path) -> Selection | None:
    """The release's selection, None when it has none; BundleError for an unreadable or invalid file."""
    path = Path(release_dir) / SELECTION
    try:
        raw = read_capped(path, MAX_SELECTION_BYTES)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BundleError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict) or data.get("schema_version") != SELECTION_SCHEMA:
            raise BundleError(f"{path}: not a selection (schema_version {SELECTION_SCHEMA} expected)")
        return from_dict(Selection, data, where=str(path))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None
    except ConfigError as exc:
        raise BundleError(str(exc)) from None
