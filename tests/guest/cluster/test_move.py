"""gnt-instance move of a plain instance between the nodes' emulated VGs, both
ways, the second time after a reboot of the source node.

Move never activates the source's disks: it reads /dev/<vg>/<lv> with dd
iflag=direct as it finds it (lib/cmdlib/instance.py, LUInstanceMove; see
/work/shared/reference or docs/ganeti-contract.md), so the package's udev rules
must have made that link at boot, without any lvchange -ay.
"""

import time

import pytest

from clusterlib import (LVM_PARENT, NODE1, NODE2, NODES, activate_disks, digest, gnt, on, primary,
                        reboot, remove_instance, write_pattern, zvols)

INSTANCE = "move1"


@pytest.fixture(scope="module", autouse=True)
def moving(cluster):
    before = {node: zvols(node, LVM_PARENT) for node in NODES}
    yield before
    remove_instance(INSTANCE)


def move(target):
    started = time.monotonic()
    gnt("gnt-instance", "move", "-f", "-n", target, INSTANCE, timeout=1800)
    print(f"plain move of 128 MiB to {target}: {time.monotonic() - started:.0f} s")
    assert primary(INSTANCE) == target


def test_move_to_node2_and_back_after_a_reboot(moving):
    gnt("gnt-instance", "add", "-t", "plain", "-n", NODE1, "-o", "noop", "--disk=0:size=128M",
        "--no-name-check", "--no-ip-check", "--net", "0:mode=bridged,link=gnt-br0",
        "-B", "maxmem=128M,minmem=128M", "--no-start", INSTANCE)
    node, device = activate_disks(INSTANCE)[0]
    expected = write_pattern(node, device)
    gnt("gnt-instance", "deactivate-disks", INSTANCE)

    move(NODE2)
    assert zvols(NODE1, LVM_PARENT) == moving[NODE1], "move left the source LV on node1"
    lv = (set(zvols(NODE2, LVM_PARENT)) - set(moving[NODE2])).pop()

    # A reboot of node2: its /dev/gnt links are gone with its /dev and must come
    # back from udev alone when the pool is imported.
    reboot(NODE2)
    assert on(NODE2, ["test", "-b", f"/dev/gnt/{lv}"], check=False).returncode == 0, \
        f"/dev/gnt/{lv} is missing on node2 after its reboot"
    move(NODE1)
    assert zvols(NODE2, LVM_PARENT) == moving[NODE2], "move left the source LV on node2"
    node, device = activate_disks(INSTANCE)[0]
    assert node == NODE1 and digest(node, device) == expected
