"""Disk template conversions on the emulated VG and the zfs provider, with the
data compared after each: the original tool's users' own workflow, plain ->
drbd (-n node2) -> failover -> plain -> start, and ext <-> plain on one node."""

import pytest

from clusterlib import (LVM_PARENT, NODE1, NODE2, NODES, ZFS_PARENT, activate_disks, digest, gnt, primary,
                        remove_instance, secondaries, wait_for_drbd_sync, write_pattern, zvols)

PLAIN = "conv1"
EXT = "conv2"
COMMON = ["-o", "noop", "--disk=0:size=128M", "--no-name-check", "--no-ip-check",
          "--net", "0:mode=bridged,link=gnt-br0", "-B", "maxmem=128M,minmem=128M", "--no-start"]


@pytest.fixture(scope="module", autouse=True)
def conversions(cluster):
    before = {node: (zvols(node, LVM_PARENT), zvols(node, ZFS_PARENT)) for node in NODES}
    yield before
    for instance in (PLAIN, EXT):
        remove_instance(instance)


def data_of(instance):
    node, device = activate_disks(instance)[0]
    assert node == primary(instance)
    return node, device


def test_plain_to_drbd_failover_back_to_plain_and_start(conversions):
    gnt("gnt-instance", "add", "-t", "plain", "-n", NODE1, *COMMON, PLAIN)
    node, device = data_of(PLAIN)
    expected = write_pattern(node, device)
    gnt("gnt-instance", "deactivate-disks", PLAIN)
    gnt("gnt-instance", "modify", "-t", "drbd", "-n", NODE2, PLAIN)
    assert secondaries(PLAIN) == [NODE2]
    wait_for_drbd_sync(NODES)
    gnt("gnt-instance", "failover", "-f", PLAIN)
    node, device = data_of(PLAIN)
    assert node == NODE2 and digest(node, device) == expected
    gnt("gnt-instance", "deactivate-disks", PLAIN)
    gnt("gnt-instance", "modify", "-t", "plain", PLAIN)
    assert secondaries(PLAIN) == []
    gnt("gnt-instance", "startup", PLAIN)
    node, device = data_of(PLAIN)
    assert node == NODE2 and device.startswith("/dev/gnt/") and digest(node, device) == expected
    # Node1 keeps nothing of it: the drbd -> plain conversion removed its _data and _meta.
    assert zvols(NODE1, LVM_PARENT) == conversions[NODE1][0]
    gnt("gnt-instance", "remove", "-f", PLAIN)
    assert zvols(NODE2, LVM_PARENT) == conversions[NODE2][0]


def test_ext_to_plain_and_back_on_one_node(conversions):
    gnt("gnt-instance", "add", "-t", "ext", "-n", NODE1, *COMMON[:2], "--disk=0:size=128M,provider=zfs",
        *COMMON[3:], EXT)
    node, device = data_of(EXT)
    expected = write_pattern(node, device)
    gnt("gnt-instance", "deactivate-disks", EXT)
    gnt("gnt-instance", "modify", "-t", "plain", EXT)
    node, device = data_of(EXT)
    assert device.startswith("/dev/gnt/") and digest(node, device) == expected
    assert zvols(NODE1, ZFS_PARENT) == conversions[NODE1][1], "the ext volume was left behind"
    gnt("gnt-instance", "deactivate-disks", EXT)
    gnt("gnt-instance", "modify", "-t", "ext", "--ext-params=provider=zfs", EXT)
    node, device = data_of(EXT)
    assert digest(node, device) == expected
    assert zvols(NODE1, LVM_PARENT) == conversions[NODE1][0], "the plain LV was left behind"
    gnt("gnt-instance", "remove", "-f", EXT)
    assert zvols(NODE1, ZFS_PARENT) == conversions[NODE1][1]
