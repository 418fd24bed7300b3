"""Helpers of the two-node suite (tests/guest/cluster), run on its first node.

    from clusterlib import on, gnt, NODE1, NODE2
"""

import re
import shlex
import time
from pathlib import Path

import guestlib
from guestlib import run

MiB = 1 << 20

NODES = [line.split()[0] for line in Path("/share/cluster").read_text().splitlines() if line.strip()]
NODE1, NODE2 = NODES[0], NODES[1]
THIS_NODE = Path("/share/node").read_text().strip()
assert THIS_NODE == NODE1, f"the suite must run on the master {NODE1}, not {THIS_NODE}"

VG = "gnt"
ZFS_PARENT = "tank/ganeti"
LVM_PARENT = "tank/gnt"
NODE_CONFIG_TEXT = f"ZFS_PARENT={ZFS_PARENT}\nLVM_VG={VG}\nLVM_PARENT={LVM_PARENT}\n"
TEMPLATES = "ext,plain,drbd"
SSH = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
       "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"]


def on(node, argv, check=True, timeout=600, **kw):
    """Run argv (a list) on node: here on the first node, over ssh on another."""
    argv = [str(a) for a in argv]
    if node == THIS_NODE:
        return run(argv, check=check, timeout=timeout, **kw)
    return run(SSH + [f"root@{node}", shlex.join(argv)], check=check, timeout=timeout, **kw)


def wait_for_node(node, seconds=600):
    """Until node answers ssh and guest-run.sh has finished its set-up there."""
    deadline = time.monotonic() + seconds
    while True:
        proc = on(node, ["test", "-e", "/run/guest-peer-ready"], check=False, timeout=60)
        if proc.returncode == 0:
            return
        assert time.monotonic() < deadline, f"{node} not ready within {seconds} s:\n{proc.stderr}"
        time.sleep(3)


def reboot(node, seconds=600):
    """Reboot a peer: it powers off (vm.py boots it again on the same disks) and
    comes back through guest-run.sh's second-boot path; wait until it is set up."""
    tell_peer(node, "reboot")
    deadline = time.monotonic() + seconds
    while on(node, ["test", "-e", "/run/guest-peer-ready"], check=False, timeout=60).returncode == 0:
        assert time.monotonic() < deadline, f"{node} did not go down to reboot"
        time.sleep(1)
    wait_for_node(node, seconds)


def tell_peer(node, word):
    """End the peer's run: guest-run.sh there saves its logs and powers off
    ("reboot": vm.py boots it again on the same disks)."""
    on(node, ["sh", "-c", f"echo {word} >/run/guest-peer-command"], check=False, timeout=60)


def prepare_node(node):
    """The package's node config, its datasets and the no-op OS, on node."""
    script = (f"mkdir -p /etc/ganeti && printf '%s' {shlex.quote(NODE_CONFIG_TEXT)} "
              f">/etc/ganeti/extstorage-zfs.conf && zfs create -p {ZFS_PARENT} && "
              f"zfs create -p {LVM_PARENT} && mkdir -p /var/log/ganeti/extstorage")
    on(node, ["sh", "-c", script])
    os_dir = "/srv/ganeti/os/" + guestlib.NOOP_OS
    scripts = " ".join(f"{os_dir}/{name}" for name in ("create", "export", "import", "rename", "verify"))
    on(node, ["sh", "-c", f"mkdir -p {os_dir} && for f in {scripts}; do printf '#!/bin/sh\\nexit 0\\n' >$f; "
                          f"chmod 0755 $f; done && echo 20 >{os_dir}/ganeti_api_version && "
                          f": >{os_dir}/parameters.list"])




def gnt(*argv, timeout=900):
    """A Ganeti command on the master (this node); fails the test if it fails."""
    return run(list(argv), timeout=timeout)


def write_pattern(node, device, mib=8):
    """Random data over the first mib MiB and the last MiB of device on node,
    written with O_DIRECT and synced; returns the device's digest."""
    size = device_size(node, device)
    on(node, ["sh", "-c", f"dd if=/dev/urandom of={device} bs=1M count={mib} oflag=direct status=none && "
                          f"dd if=/dev/urandom of={device} bs=1M count=1 seek={size // MiB - 1} "
                          f"oflag=direct status=none && sync"])
    return digest(node, device)


def device_size(node, device):
    return int(on(node, ["blockdev", "--getsize64", device]).stdout)


def digest(node, device, mib=None):
    """sha256 of the device on node (its first mib MiB, or all of it), read with
    O_DIRECT: what is on the device, not in a page cache."""
    count = f" count={mib}" if mib else ""
    out = on(node, ["sh", "-c", f"dd if={device} bs=1M{count} iflag=direct status=none | sha256sum"]).stdout
    return out.split()[0]


def zfs_value(node, dataset, prop):
    return on(node, ["zfs", "get", "-H", "-p", "-o", "value", prop, dataset]).stdout.strip()


def lv_attrs(node):
    """{lv name: lv_attr} of the emulated VG on node, as Ganeti's lvs query sees them."""
    out = on(node, ["lvs", "--noheadings", "--separator=|", "-o", "lv_name,lv_attr", VG]).stdout
    return dict(line.strip().split("|") for line in out.splitlines() if line.strip())


def activate_disks(instance):
    """gnt-instance activate-disks: {disk index: (node, device path)} on the primary."""
    out = gnt("gnt-instance", "activate-disks", instance).stdout
    disks = {}
    for line in out.splitlines():
        match = re.fullmatch(r"(\S+):disk/(\d+):(\S+)", line.strip())
        if match:
            disks[int(match.group(2))] = (match.group(1), match.group(3))
    assert disks, f"activate-disks printed no disk:\n{out}"
    return disks


def primary(instance):
    return gnt("gnt-instance", "list", "--no-headers", "-o", "pnode", instance).stdout.strip()


def secondaries(instance):
    text = gnt("gnt-instance", "list", "--no-headers", "-o", "snodes", instance).stdout.strip()
    return [n for n in text.split(",") if n and n != "-"]


def drbd_status(node):
    """/proc/drbd on node: {minor: "cs:.. ro:../.. ds:../.."} of every configured minor."""
    status = {}
    for line in on(node, ["cat", "/proc/drbd"]).stdout.splitlines():
        match = re.match(r"\s*(\d+): (cs:\S+ ro:\S+ ds:\S+)", line)
        if match:
            status[int(match.group(1))] = match.group(2)
    return status


def wait_for_drbd_sync(nodes, seconds=900):
    """Until every minor on every node is Connected and UpToDate/UpToDate; the seconds it took."""
    started = time.monotonic()
    while True:
        states = {node: drbd_status(node) for node in nodes}
        if all(states.values()) and all("cs:Connected" in s and "ds:UpToDate/UpToDate" in s
                                        for minors in states.values() for s in minors.values()):
            return time.monotonic() - started
        assert time.monotonic() - started < seconds, f"DRBD not in sync after {seconds} s: {states}"
        time.sleep(3)


def zvol_dataset(node, device):
    """The dataset the zvol behind device names itself (ZFS's own zvol_id: BLKZNAME)."""
    real = on(node, ["readlink", "-f", device]).stdout.strip()
    return on(node, ["/lib/udev/zvol_id", real]).stdout.strip()


def zvols(node, parent):
    """Names of the zvols directly under parent on node."""
    out = on(node, ["zfs", "list", "-H", "-o", "name", "-t", "volume", "-d", "1", parent]).stdout
    return sorted(line.rpartition("/")[2] for line in out.split())


def remove_instance(instance):
    run(["gnt-instance", "remove", "-f", "--ignore-failures", instance], check=False, timeout=900)
