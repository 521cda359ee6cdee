"""The command topic and the reload policy.

Commands arrive on paho's network thread, are parsed there (small, bounded, never raising) and wait in
a short queue for the scoring thread, which applies them between windows. Every refused command is
counted and reported: unparseable or unknown ones as `bad_command`, valid ones beyond the queue as
`command_dropped`. The reload policy decides which new bundles may replace the running one.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import TypeVar

from edgekit.bundle.manifest import check_upgrade
from edgekit.errors import BundleError, ConfigError
from edgekit.runtime.engine import Engine
from edgekit.runtime.link import ErrorSink
from edgekit.runtime.reload import same_bundle_path
from edgekit.runtime.text import TextEngine

E = TypeVar("E", Engine, TextEngine)

# A command is a few dozen bytes; anything much larger is refused before JSON parsing.
MAX_COMMAND_BYTES = 4096
MAX_PENDING_COMMANDS = 16
COMMANDS = ("reload", "heartbeat")
_USAGE = 'expected {"cmd": "reload", "bundle": PATH} or {"cmd": "heartbeat"}'


@dataclass(frozen=True)
class Command:
    cmd: str
    bundle: str | None = None


def parse_command(payload: bytes) -> Command:
    """A command from its JSON payload; ValueError with the reason for anything else (never another error)."""
    if len(payload) > MAX_COMMAND_BYTES:
        raise ValueError(f"{len(payload)} bytes > {MAX_COMMAND_BYTES}; {_USAGE}")
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    except RecursionError:  # deeply nested arrays/objects: the C scanner gives up, so do we
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(obj, dict) or obj.get("cmd") not in COMMANDS:
        raise ValueError(_USAGE)
    bundle = obj.get("bundle")
    if bundle is not None and not isinstance(bundle, str):
        raise ValueError("bundle must be a path string")
    return Command(obj["cmd"], bundle or None)


class CommandQueue:
    """Parsed commands waiting for the scoring thread; one writer (network thread), one reader."""

    def __init__(self, error: ErrorSink, maxlen: int = MAX_PENDING_COMMANDS) -> None:
        self.error = error
        self.maxlen = maxlen
        self._pending: deque[Command] = deque()

    def receive(self, payload: bytes) -> None:
        """Network thread: parse, queue, or count and report the refusal."""
        try:
            cmd = parse_command(payload)
        except ValueError as exc:
            self.error("bad_command", str(exc))
            return
        if len(self._pending) >= self.maxlen:
            self.error("command_dropped", f"{self.maxlen} commands already waiting; {cmd.cmd} refused")
            return
        self._pending.append(cmd)

    def take(self) -> list[Command]:
        """Scoring thread: every command queued so far, oldest first."""
        out = []
        while self._pending:
            out.append(self._pending.popleft())
        return out


def check_share_group(engine: E, share_group: str | None) -> E:
    """A shared subscription deals one stream's readings to several daemons: only window 1 / hop 1 fits
    (text messages stand alone, so any text bundle does)."""
    if share_group and isinstance(engine, Engine) and (engine.window, engine.hop) != (1, 1):
        raise ConfigError(
            "--share-group splits a stream's readings across daemons, which only works for window-1/hop-1 "
            f"models (this one: window {engine.window}, hop {engine.hop}); use --partition K/N instead"
        )
    return engine


@dataclass
class ReloadPolicy:
    """Which bundles may replace the running one, by command, SIGHUP or the pointer file."""

    bundle: str  # the --bundle path (a directory or a pointer file)
    pubkey: str | None
    share_group: str | None = None
    allow_downgrade: bool = False

    def refuse_path(self, path: str | None) -> str | None:
        """Why a reload of `path` (None: the --bundle path) must not even start; None when it may."""
        if self.pubkey is None and path and not same_bundle_path(path, self.bundle):
            return "remote reload of another path needs --pubkey (signed bundles)"
        return None

    def check(self, current: Engine | TextEngine, new: Engine | TextEngine) -> None:
        """Raise an EdgekitError when the loaded `new` must not replace `current`."""
        if new.manifest.kind != current.manifest.kind:  # the daemon's subscriptions are made for one kind
            raise BundleError(
                f"a {new.manifest.kind} bundle cannot replace the running {current.manifest.kind} one"
            )
        check_share_group(new, self.share_group)
        check_upgrade(current.manifest, new.manifest, self.allow_downgrade)
