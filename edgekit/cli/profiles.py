"""`edgekit profiles [show NAME]`."""

from __future__ import annotations

import argparse

import yaml


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profiles", help="list target profiles, or show one resolved")
    p.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    p.add_argument("name", nargs="?", help="profile name or path to a YAML file (for show)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgekit.config import to_dict
    from edgekit.errors import ConfigError
    from edgekit.profiles import list_profiles, load_profile

    if args.action == "show":
        if not args.name:
            raise ConfigError("usage: edgekit profiles show NAME")
        print(yaml.safe_dump(to_dict(load_profile(args.name)), sort_keys=False).rstrip())
        return 0
    for name in list_profiles():
        prof = load_profile(name)
        eps = ",".join(n.replace("ExecutionProvider", "") for n in prof.provider_names)
        print(
            f"{name:<20} {prof.arch:<8} {prof.quantization.mode:<16} {eps:<20} budget {prof.latency.budget_ms:g} ms {prof.latency.percentile}"
        )
    return 0
