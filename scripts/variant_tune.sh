#!/usr/bin/env bash
# A bundle with three variants, installed on this machine, which measures which one to run.
# usage: scripts/variant_tune.sh RUN_DIR WORK_DIR   (RUN_DIR: what `edgekit distill --out` wrote; WORK_DIR is replaced)
set -euo pipefail
run=$1 work=$2 py=${PYTHON:-.venv/bin/python}
rm -rf "$work" && mkdir -p "$work"
set -x
"$py" -m edgekit keygen --out "$work/keys/edgekit.key" > /dev/null
"$py" -m edgekit export "$run" --profile x86-gateway --variants fp32,int8-dynamic,int8-static-qdq \
  --out "$work/bundle" --key "$work/keys/edgekit.key" --latency-runs 200
"$py" -m edgekit install "$work/bundle.tar.gz" --root "$work/root" --pubkey "$work/keys/edgekit.pub" --profile x86-gateway
# `edgekit device tune ROOT` (registered by edgekit.cli.device_tune.register_tune), then a forced variant
tune() {
  "$py" - "$@" <<'PY'
import argparse, sys
from edgekit.cli.device_tune import register_tune
p = argparse.ArgumentParser(prog="edgekit device")
register_tune(p.add_subparsers())
a = p.parse_args(["tune", *sys.argv[1:]])
sys.exit(a.handler(a))
PY
}
tune "$work/root"
tune "$work/root" --variant fp32
