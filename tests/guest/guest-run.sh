#!/bin/bash
# Runs inside the test guest, started by guest-init from the shared folder /share
# (put there by tests/guest/vm.py): loads ZFS and creates the pools, installs the
# .deb(s) under test with apt (offline: the image holds every dependency), sets up
# what a single-node Ganeti cluster needs, then runs the guest test suite (mode
# "test") or gives a root shell on the console (mode "shell"). Results and logs go
# to /share/out. The exit code is pytest's (100 and up: the set-up failed).
set -euo pipefail

share=/share
out=$share/out
mode=$(cat "$share/mode" 2>/dev/null || echo test)
export DEBIAN_FRONTEND=noninteractive GUEST_ARTIFACTS=$out/artifacts

say() { echo "[guest-run $(cut -d' ' -f1 /proc/uptime)s] $*"; }
trap 'rc=$?; say "set-up FAILED (exit $rc) at line $LINENO: $BASH_COMMAND"; exit $((100 + rc % 100))' ERR

say "loading zfs"
modprobe zfs
# vdb (>= 40 GiB, sparse) holds the main pool, vdc a second one; vdd stays free
# for tests that build a real LVM volume group.
say "creating pools tank (vdb) and tank2 (vdc)"
zpool create -f tank /dev/vdb
zpool create -f tank2 /dev/vdc

# Ganeti refuses loopback addresses: the node and cluster names resolve to a
# documentation network on a dummy interface; instances' NICs link to an empty bridge.
say "network for Ganeti: gnt0 192.0.2.10/24, bridge gnt-br0"
ip link add gnt0 type dummy
ip addr add 192.0.2.10/24 dev gnt0
ip link set gnt0 up
ip link add gnt-br0 type bridge
ip link set gnt-br0 up
cat >>/etc/hosts <<'HOSTS'
192.0.2.10	node1.example.com node1
192.0.2.100	cluster.example.com cluster
HOSTS
mkdir -p /run/sshd
/usr/sbin/sshd              # gnt-cluster init/verify ssh to the node itself

shopt -s nullglob
debs=("$share"/debs/*.deb)
if [ ${#debs[@]} -gt 0 ]; then
    say "installing ${debs[*]##*/} with apt (log: out/apt-install.log)"
    if ! apt-get install -y "${debs[@]}" >"$out/apt-install.log" 2>&1; then
        tail -n 30 "$out/apt-install.log"
        false
    fi
else
    say "no .deb given: nothing to install"
fi

collect_logs() {
    mkdir -p "$out/logs"
    [ -d /var/log/ganeti ] && cp -r /var/log/ganeti "$out/logs/ganeti"
    dmesg >"$out/logs/dmesg.txt" 2>&1 || true
    { zpool status; zfs list -t all; } >"$out/logs/zfs.txt" 2>&1 || true
}

if [ "$mode" = shell ]; then
    say "root shell on the console; exit it to power off"
    trap - ERR
    setsid -c -w bash -l <>/dev/ttyS0 >&0 2>&0 || true
    collect_logs
    exit 0
fi

if [ "$mode" = script ]; then
    say "running the script (make demo / make bench); its output: out/script.log"
    trap - ERR
    set +e
    cd /root
    mapfile -t script_env <"$share/script-env"
    env "${script_env[@]}" GUEST_OUT="$out" "$share/script" 2>&1 | tee "$out/script.log"
    rc=${PIPESTATUS[0]}
    set -e
    say "script exited with $rc"
    collect_logs
    exit "$rc"
fi

# Run from a local copy: faster than 9p under emulation and nothing is written back.
cp -r "$share/suite" /root/suite
mkdir -p "$GUEST_ARTIFACTS"
mapfile -t extra <"$share/pytest-args"
say "running pytest ${extra[*]}"
trap - ERR
cd /root/suite
set +e
PYTHONPATH=$share python3 -m pytest -v -rA --durations=10 --color=no -p no:cacheprovider -p guest_results \
    --junitxml="$out/junit.xml" "${extra[@]}" </dev/null 2>&1 | tee "$out/pytest.log"
rc=${PIPESTATUS[0]}
set -e
say "pytest exited with $rc"
collect_logs
exit "$rc"
