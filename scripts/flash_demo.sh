#!/usr/bin/env bash
# The README's "Flashing" walk-through, end to end on this machine (run as root: the Mender client reads its
# update modules from /usr/share/mender/modules/v3 only). A simulated device root with a real daemon and a
# private mosquitto; the Shuttle student exported as four releases; Mender standalone (a good release
# committed, one the daemon refuses rolled back by itself), then ssh to a throw-away sshd on loopback.
#   bash scripts/flash_demo.sh [WORKDIR]        (EDGEKIT="python -m edgekit" to use a checkout)
set -euo pipefail
W=${1:-/tmp/flash-demo}
E=${EDGEKIT:-edgekit}
rm -rf "$W" && mkdir -p "$W"
run() { echo "\$ $*" | sed "s#$W#\$W#g"; "$@" 2>&1 | sed "s#$W#\$W#g"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -f /usr/share/mender/modules/v3/edgekit-bundle' EXIT

# --- releases: 1.0.0, 1.0.1 and 1.0.3 signed with the fleet key, 1.0.2 with a new key the daemon does not trust yet
$E keygen --out "$W/keys/edgekit.key" >/dev/null
$E keygen --out "$W/keys/new.key" >/dev/null
$E distill --dataset shuttle --max-rows 4000 --teacher-epochs 3 --student-epochs 5 --out "$W/run" >/dev/null
for v in 1.0.0 1.0.1 1.0.2 1.0.3; do
    key="$W/keys/edgekit.key"; [ "$v" = 1.0.2 ] && key="$W/keys/new.key"
    $E export "$W/run" --profile x86-gateway --variants fp32,int8-dynamic,int8-static-qdq --key "$key" --version "$v" \
        --latency-runs 100 --out "$W/bundles/shuttle-$v" >/dev/null
done

# --- the device: 1.0.0 installed, its daemon serving it and writing ROOT/health.json
D="$W/device"
$E install "$W/bundles/shuttle-1.0.0.tar.gz" --root "$D" --pubkey "$W/keys/edgekit.pub" >/dev/null
PORT=$(free_port)
mosquitto -p "$PORT" >/dev/null 2>&1 & PIDS+=($!)
sleep 0.5
$E serve --bundle "$D/current" --broker "mqtt://127.0.0.1:$PORT" --device pump-1 \
    --pubkey "$W/keys/edgekit.pub" --health-file "$D/health.json" >"$W/daemon.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do [ -s "$D/health.json" ] && break; sleep 0.2; done

# --- Mender standalone: state in $W/mender, device type x86-gateway
mkdir -p "$W/mender" /etc/mender
[ -e /etc/mender/artifact_info ] || echo "artifact_name=factory" > /etc/mender/artifact_info
echo "device_type=x86-gateway" > "$W/mender/device_type"
echo "{\"DeviceTypeFile\": \"$W/mender/device_type\"}" > "$W/mender.conf"
M() { run mender --config "$W/mender.conf" --data "$W/mender" --no-syslog -l error "$@"; }
run $E mender module --root "$D" --pubkey "$W/keys/edgekit.pub" --health-timeout 20 --install ${MODULE_EDGEKIT:+--edgekit "$MODULE_EDGEKIT"}
run $E mender artifact "$W/bundles/shuttle-1.0.1.tar.gz" --device-type x86-gateway --out "$W/shuttle-1.0.1.mender"
M install "$W/shuttle-1.0.1.mender"
run $E device status "$D"
M commit
run $E device status "$D"

echo "# the module's key rotated to new.pub, the daemon still trusts only edgekit.pub: the daemon refuses 1.0.2"
run $E mender module --root "$D" --pubkey "$W/keys/new.pub" --health-timeout 20 --install ${MODULE_EDGEKIT:+--edgekit "$MODULE_EDGEKIT"}
run $E mender artifact "$W/bundles/shuttle-1.0.2.tar.gz" --device-type x86-gateway --out "$W/shuttle-1.0.2.mender"
M install "$W/shuttle-1.0.2.mender"
M commit || echo "(exit $?)"
run $E device status "$D"
run $E mender artifact "$W/bundles/shuttle-1.0.1.tar.gz" --device-type rpi4 --out "$W/rpi4.mender"
M install "$W/rpi4.mender" || echo "(exit $?)"

# --- ssh: a throw-away sshd on a loopback port (root login by key only)
S="$W/sshd"; mkdir -p "$S" /run/sshd
ssh-keygen -q -t ed25519 -N "" -f "$S/host"; ssh-keygen -q -t ed25519 -N "" -f "$S/user"; cp "$S/user.pub" "$S/authorized_keys"
SPORT=$(free_port)
printf 'HostKey %s\nListenAddress 127.0.0.1\nUsePAM no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nAuthorizedKeysFile %s\nStrictModes no\nSubsystem sftp /usr/lib/openssh/sftp-server\n' \
    "$S/host" "$S/authorized_keys" > "$S/sshd_config"
/usr/sbin/sshd -D -f "$S/sshd_config" -p "$SPORT" & PIDS+=($!)
sleep 1
SSH_OPTS=(--ssh-option StrictHostKeyChecking=no --ssh-option UserKnownHostsFile=/dev/null --ssh-option LogLevel=ERROR)
run $E flash "$W/bundles/shuttle-1.0.3.tar.gz" "ssh://root@127.0.0.1:$SPORT$D" --pubkey "$W/keys/edgekit.pub" \
    --identity "$S/user" ${REMOTE_EDGEKIT:+--edgekit "$REMOTE_EDGEKIT"} "${SSH_OPTS[@]}"
DEAD=$(free_port)
run $E flash "$W/bundles/shuttle-1.0.3.tar.gz" "ssh://root@127.0.0.1:$DEAD$D" --pubkey "$W/keys/edgekit.pub" "${SSH_OPTS[@]}" || echo "(exit $?)"
run $E device status "$D"
