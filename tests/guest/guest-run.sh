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

# A cluster run (vm.py run_cluster) gives each node share/cluster (every node's
# name and address) and share/node (its own name); a single guest has neither.
node=$(cat "$share/node" 2>/dev/null || echo node1.example.com)
cluster=$share/cluster
# The overlay outlives a reboot (a cluster peer may be rebooted by the suite):
# the second boot imports the pools and keeps what was installed.
booted=/var/lib/guest-run/booted

if [ -f "$cluster" ]; then
    say "loading zfs (ARC capped: two guests share this machine), drbd"
    modprobe zfs zfs_arc_max=268435456
    # Ganeti checks the helper at cluster init (its install guide's options).
    modprobe drbd minor_count=64 usermode_helper=/bin/true
else
    say "loading zfs"
    modprobe zfs
fi
if [ -e "$booted" ]; then
    say "booted before: importing the pools"
    zpool import -a
else
    # vdb (>= 40 GiB, sparse) holds the main pool, vdc a second one; vdd stays free
    # for tests that build a real LVM volume group.
    say "creating pools tank (vdb) and tank2 (vdc)"
    zpool create -f tank /dev/vdb
    zpool create -f tank2 /dev/vdc
fi

# Ganeti refuses loopback addresses: node and cluster names resolve to a
# documentation network; instances' NICs link to an empty bridge.
if [ -f "$cluster" ]; then
    # The virtio NIC (vm.py gives it a MAC with this prefix) is gnt0 on every node,
    # so the cluster's master netdev is the same name wherever the master goes.
    nic=$(grep -il '^52:54:00:47:00:' /sys/class/net/*/address | head -n1 | xargs dirname | xargs basename)
    address=$(awk -v n="$node" '$1 == n { print $2 }' "$cluster")
    say "network for Ganeti: $nic -> gnt0 $address/24 ($node), bridge gnt-br0"
    ip link set "$nic" name gnt0
    ip addr add "$address/24" dev gnt0
    hostname "$node"
    echo "$node" >/etc/hostname
    if [ ! -e "$booted" ]; then
        awk '{ split($1, part, "."); print $2 "\t" $1 " " part[1] }' "$cluster" >>/etc/hosts
        printf '192.0.2.100\tcluster.example.com cluster\n' >>/etc/hosts
    fi
else
    say "network for Ganeti: gnt0 192.0.2.10/24, bridge gnt-br0"
    ip link add gnt0 type dummy
    ip addr add 192.0.2.10/24 dev gnt0
    cat >>/etc/hosts <<'HOSTS'
192.0.2.10	node1.example.com node1
192.0.2.100	cluster.example.com cluster
HOSTS
fi
ip link set gnt0 up
ip link add gnt-br0 type bridge
ip link set gnt-br0 up
mkdir -p /run/sshd
/usr/sbin/sshd              # gnt-cluster init/verify and node add ssh to the nodes

shopt -s nullglob
debs=("$share"/debs/*.deb)
if [ -e "$booted" ]; then
    say "booted before: the .deb(s) are installed; starting Ganeti's daemons"
    /usr/lib/ganeti/daemon-util start-all
elif [ ${#debs[@]} -gt 0 ]; then
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
    rm -rf "$out/logs/ganeti"
    [ -d /var/log/ganeti ] && cp -r /var/log/ganeti "$out/logs/ganeti"
    dmesg >"$out/logs/dmesg.txt" 2>&1 || true
    { zpool status; zfs list -t all; } >"$out/logs/zfs.txt" 2>&1 || true
}

mkdir -p "${booted%/*}"
touch "$booted"

if [ "$mode" = peer ]; then
    # A cluster node that only serves: the first node's suite drives it over ssh
    # and ends its run by writing "poweroff" or "reboot" into this file.
    say "peer ready; waiting for the suite's word in /run/guest-peer-command"
    trap - ERR
    touch /run/guest-peer-ready
    until [ -s /run/guest-peer-command ]; do sleep 1; done
    word=$(cat /run/guest-peer-command)
    say "told to $word"
    collect_logs
    [ "$word" = reboot ] && touch "$out/reboot"
    sync
    exit 0
fi

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
