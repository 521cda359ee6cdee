"""Loading a bundle for the daemon, at start and on hot reload (in a background thread, swapped later)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from edgekit.bundle.manifest import Manifest
from edgekit.errors import BundleError, EdgekitError
from edgekit.profiles import TargetProfile
from edgekit.runtime.cascade import load_teacher
from edgekit.runtime.engine import Engine
from edgekit.runtime.text import TextEngine

log = logging.getLogger(__name__)


def resolve_bundle_path(path: str | Path) -> Path:
    """A bundle directory, or a small text file holding the bundle directory's path (a "current" pointer
    that deploy tools rewrite before sending SIGHUP)."""
    p = Path(path)
    if p.is_file():
        try:
            target = p.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise BundleError(f"{p}: cannot read the bundle path it should hold ({exc})") from None
        if not target:
            raise BundleError(f"{p}: empty; it should hold a bundle directory path")
        return (p.parent / target).resolve()
    return p.resolve()


def same_bundle_path(a: str | Path, b: str | Path) -> bool:
    """True when both name the same bundle directory (following pointer files); False if either is unreadable."""
    try:
        return resolve_bundle_path(a) == resolve_bundle_path(b)
    except EdgekitError:
        return False


def load_engine(
    path: str | Path, public_key: str | Path | None, profile: TargetProfile | None
) -> Engine | TextEngine:
    """Verify (signature when a key is given, hashes, golden self-test) and load a sensor or text bundle."""
    bundle = resolve_bundle_path(path)
    kind = TextEngine if Manifest.load(bundle).kind == "text" else Engine
    return kind.from_verified(bundle, public_key, profile)


@dataclass
class ReloadOutcome:
    path: str
    engine: Engine | TextEngine | None
    error: str | None
    teacher: Engine | TextEngine | None = None  # the cascade's local teacher, when it runs locally


class Reloader:
    """Loads one bundle at a time off the scoring thread; the daemon collects the outcome with take()."""

    def __init__(
        self, public_key: str | Path | None, profile: TargetProfile | None, cascade: str | None = None
    ) -> None:
        self.public_key = public_key
        self.profile = profile
        self.cascade = cascade  # the cascade setting (runtime.cascade.cascade_mode): loads the teacher too
        self._thread: threading.Thread | None = None
        self._outcome: ReloadOutcome | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, path: str | Path) -> bool:
        """Begin loading `path`; False when a load is already running."""
        if self.busy:
            return False
        self._thread = threading.Thread(
            target=self._load, args=(str(path),), name="edgekit-reload", daemon=True
        )
        self._thread.start()
        return True

    def _load(self, path: str) -> None:
        try:
            engine = load_engine(path, self.public_key, self.profile)
            teacher = load_teacher(engine, self.cascade, self.profile)
            self._outcome = ReloadOutcome(path, engine, None, teacher)
        except EdgekitError as exc:
            self._outcome = ReloadOutcome(path, None, str(exc))
        except Exception as exc:  # a broken bundle must never take the running daemon down
            log.exception("unexpected error loading bundle %s", path)
            self._outcome = ReloadOutcome(path, None, f"{type(exc).__name__}: {exc}")

    def take(self) -> ReloadOutcome | None:
        out, self._outcome = self._outcome, None
        return out
