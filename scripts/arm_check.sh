#!/usr/bin/env bash
# ARM correctness check: run each bundle's golden pairs with an aarch64 CPython and the aarch64
# onnxruntime wheel under qemu-user emulation, on this x86 machine. Recipe: shared/ARM.md.
#
#   scripts/arm_check.sh BUNDLE [BUNDLE...]
#
# Environment:
#   EDGEKIT_ARM_ORT    onnxruntime version to check (default 1.27.0: the newest that imports under
#                      Debian 12's qemu 7.2; 1.28.0 and later segfault at import there)
#   EDGEKIT_ARM_NUMPY  numpy version (default 2.4.6)
#   EDGEKIT_ARM_TOKENIZERS  tokenizers version for text bundles (default 0.22.2; its aarch64 wheel is
#                      cp310-abi3, one wheel for CPython 3.10-3.12)
#   EDGEKIT_ARM_CACHE  cache folder (default .arm/ in the repository; git-ignored)
#
# Exit status: 0 every bundle matched its golden outputs; 1 a mismatch or a bundle that failed to
# load; 2 the emulated environment could not be set up; 3 a bundle kind that is not checked.
# Only correctness is checked. Emulated timings are meaningless and are never printed.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

ORT_VERSION=${EDGEKIT_ARM_ORT:-1.27.0}
NUMPY_VERSION=${EDGEKIT_ARM_NUMPY:-2.4.6}
TOKENIZERS_VERSION=${EDGEKIT_ARM_TOKENIZERS:-0.22.2}
CACHE=${EDGEKIT_ARM_CACHE:-$REPO/.arm}
PYVER=3.11 # Debian 12's CPython; the wheels are downloaded for this version
ROOT=$CACHE/root-py$PYVER
SITE=$CACHE/site-ort$ORT_VERSION-np$NUMPY_VERSION-tok$TOKENIZERS_VERSION
PIP_PYTHON=${PIP_PYTHON:-$([ -x "$REPO/.venv/bin/python" ] && echo "$REPO/.venv/bin/python" || echo python3)}

say() { echo "arm_check: $*" >&2; }
die() {
    say "SETUP FAILED: $*"
    exit 2
}

if [ $# -eq 0 ]; then
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
for b in "$@"; do [ -f "$b/manifest.json" ] || die "$b is not a bundle (no manifest.json)"; done

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
APT_UPDATED=0
apt_update() {
    if [ $APT_UPDATED -eq 0 ]; then
        $SUDO apt-get update -qq || die "apt-get update failed"
        APT_UPDATED=1
    fi
}

# 1. qemu-user (Debian 12: qemu 7.2). No binfmt registration is needed: qemu is called explicitly.
if ! command -v qemu-aarch64-static >/dev/null 2>&1; then
    say "installing qemu-user-static (apt)"
    apt_update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-user-static >/dev/null || die "apt-get install qemu-user-static failed"
fi
QEMU=$(command -v qemu-aarch64-static)

# 2. An aarch64 CPython from Debian's arm64 packages, unpacked with dpkg -x (no chroot).
if [ ! -x "$ROOT/usr/bin/python$PYVER" ]; then
    say "unpacking an aarch64 CPython $PYVER from Debian arm64 packages into $ROOT"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        $SUDO dpkg --add-architecture arm64
        APT_UPDATED=0
    fi
    apt_update
    DEBS=$CACHE/debs
    mkdir -p "$DEBS" "$ROOT.tmp"
    PKGS=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libexpat1 zlib1g libffi8
        libssl3 libstdc++6 libgcc-s1 libbz2-1.0 liblzma5 libsqlite3-0 libncursesw6 libtinfo6 libreadline8
        libuuid1 libdb5.3 libgdbm6 libnsl2 libtirpc3 libcrypt1)
    (cd "$DEBS" && apt-get download -qq "${PKGS[@]/%/:arm64}") || die "apt-get download of arm64 packages failed"
    for deb in "$DEBS"/*_arm64.deb; do dpkg -x "$deb" "$ROOT.tmp"; done
    rm -rf "$ROOT" && mv "$ROOT.tmp" "$ROOT"
fi

# 3. aarch64 wheels, unpacked (not installed) into a site folder per onnxruntime/numpy pair.
if [ ! -f "$SITE/.complete" ]; then
    say "downloading aarch64 wheels onnxruntime==$ORT_VERSION numpy==$NUMPY_VERSION tokenizers==$TOKENIZERS_VERSION into $SITE"
    WHEELS=$CACHE/wheels
    mkdir -p "$WHEELS"
    rm -rf "$SITE" && mkdir -p "$SITE"
    "$PIP_PYTHON" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version $PYVER --implementation cp \
        --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 \
        --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64 \
        -d "$WHEELS" "onnxruntime==$ORT_VERSION" "numpy==$NUMPY_VERSION" "tokenizers==$TOKENIZERS_VERSION" \
        flatbuffers protobuf packaging sympy coloredlogs humanfriendly mpmath ||
        die "pip download of aarch64 wheels failed (does onnxruntime $ORT_VERSION have a cp311 aarch64 wheel?)"
    for name in "onnxruntime-$ORT_VERSION-" "numpy-$NUMPY_VERSION-" "tokenizers-$TOKENIZERS_VERSION-" flatbuffers- protobuf- packaging- sympy- coloredlogs- humanfriendly- mpmath-; do
        whl=$(ls -t "$WHEELS"/"$name"*.whl 2>/dev/null | head -n 1)
        [ -n "$whl" ] || die "no wheel matching $name in $WHEELS"
        unzip -qo "$whl" -d "$SITE"
    done
    touch "$SITE/.complete"
fi

run_arm() { PYTHONHOME="$ROOT/usr" PYTHONPATH="$SITE" PYTHONNOUSERSITE=1 "$QEMU" -L "$ROOT" "$ROOT/usr/bin/python$PYVER" "$@"; }

ARCH=$(run_arm -c 'import platform; print(platform.machine())') || die "the emulated python does not start"
set +e
ORT_SEEN=$(run_arm -c 'import onnxruntime; print(onnxruntime.__version__)' 2>/dev/null)
IMPORT_RC=$?
set -e
[ $IMPORT_RC -eq 0 ] || die "onnxruntime $ORT_VERSION does not import under $($QEMU --version | head -n 1) (exit $IMPORT_RC$([ $IMPORT_RC -eq 139 ] && echo ', SIGSEGV'); 1.28.0+ is known to segfault at import on qemu 7.2; choose another with EDGEKIT_ARM_ORT=X.Y.Z)"

echo "ARM check (qemu-user emulation): correctness only."
echo "  Emulated timings are meaningless and are not measured; benchmark on the real board with 'edgekit bench'."
echo "  emulator: $($QEMU --version | head -n 1)"
echo "  python:   $ARCH CPython $PYVER (Debian arm64 packages)"
TOK_SEEN=$(run_arm -c 'import tokenizers; print(tokenizers.__version__)' 2>/dev/null) || die "tokenizers $TOKENIZERS_VERSION does not import under emulation"
echo "  tokenizers $TOK_SEEN (text bundles: tokenizer.json checked against the golden token ids)"
echo "  onnxruntime $ORT_SEEN (pin: $([ -n "${EDGEKIT_ARM_ORT:-}" ] && echo "chosen with EDGEKIT_ARM_ORT" || echo "default 1.27.0, the newest that imports under qemu 7.2; 1.28+ segfaults; choose another with EDGEKIT_ARM_ORT=X.Y.Z")), numpy $NUMPY_VERSION"

RESULTS=$CACHE/last_results.jsonl
rm -f "$RESULTS"
set +e
run_arm "$REPO/scripts/arm_selftest.py" --json "$RESULTS" "$@"
RC=$?
set -e
if [ $RC -eq 1 ]; then
    echo "ARM CHECK FAILED: at least one bundle does not reproduce its golden outputs on aarch64 onnxruntime $ORT_SEEN" >&2
elif [ $RC -eq 3 ]; then
    echo "ARM CHECK INCOMPLETE: some bundles were skipped (see above)" >&2
elif [ $RC -ne 0 ]; then
    echo "ARM CHECK FAILED: the emulated selftest crashed (exit $RC)" >&2
    RC=1
else
    echo "ARM check passed: golden outputs reproduce on aarch64 onnxruntime $ORT_SEEN"
fi
echo "  (JSON per bundle: $RESULTS)"
exit $RC
