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
"$py" -m edgekit device tune "$work/root"
"$py" -m edgekit device tune "$work/root" --variant fp32
