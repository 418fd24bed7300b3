"""DRBD (8.4, the guest kernel's) on the emulated VG of two nodes: the life of one
drbd instance, each step checked with the data on whichever node is primary.

The steps share one instance (a DRBD add and its initial sync are the expensive
part under TCG), so they run in file order and each relies on the one before.
"""

import time

import pytest

from clusterlib import (LVM_PARENT, MiB, NODE1, NODE2, NODES, activate_disks, digest, drbd_status, gnt,
                        lv_attrs, on, primary, remove_instance, secondaries, wait_for_drbd_sync,
                        write_pattern, zfs_value, zvol_dataset, zvols)

INSTANCE = "drbd1"
SIZE_MIB = 128
GROW_MIB = 64
state = {}  # what the steps pass on: lvs, data digests


@pytest.fixture(scope="module", autouse=True)
def drbd_cluster(cluster):
    state["before"] = {node: zvols(node, LVM_PARENT) for node in NODES}
    yield cluster
    remove_instance(INSTANCE)


def the_device():
    """(primary node, its DRBD device) of disk 0, activating the disks if needed."""
    node, device = activate_disks(INSTANCE)[0]
    assert node == primary(INSTANCE)
    return node, device


def timed(what, *argv):
    started = time.monotonic()
    gnt(*argv)
    seconds = time.monotonic() - started
    print(f"{what}: {seconds:.0f} s")
    return seconds


def test_add_makes_data_and_meta_zvols_on_both_nodes_and_syncs():
    timed("drbd add", "gnt-instance", "add", "-t", "drbd", "-n", f"{NODE1}:{NODE2}", "-o", "noop",
          f"--disk=0:size={SIZE_MIB}M", "--no-wait-for-sync", "--no-name-check", "--no-ip-check",
          "--net", "0:mode=bridged,link=gnt-br0", "-B", "maxmem=128M,minmem=128M", "--no-start", INSTANCE)
    assert secondaries(INSTANCE) == [NODE2]
    new = {node: sorted(set(zvols(node, LVM_PARENT)) - set(state["before"][node])) for node in NODES}
    assert new[NODE1] == new[NODE2], new
    data = [lv for lv in new[NODE1] if lv.endswith(".disk0_data")]
    meta = [lv for lv in new[NODE1] if lv.endswith(".disk0_meta")]
    assert len(data) == 1 and len(meta) == 1 and len(new[NODE1]) == 2, new
    state["data"], state["meta"] = data[0], meta[0]
    for node in NODES:
        assert int(zfs_value(node, f"{LVM_PARENT}/{data[0]}", "volsize")) == SIZE_MIB * MiB
        assert int(zfs_value(node, f"{LVM_PARENT}/{meta[0]}", "volsize")) == 128 * MiB
    print(f"initial DRBD sync of {SIZE_MIB} MiB: {wait_for_drbd_sync(NODES):.0f} s")


def test_data_written_on_the_primary_and_verify_is_clean():
    gnt("gnt-instance", "startup", INSTANCE)
    node, device = the_device()
    assert node == NODE1
    state["digest"] = write_pattern(node, device)
    wait_for_drbd_sync(NODES)
    out = gnt("gnt-cluster", "verify-disks").stdout
    assert "No disks need to be activated" in out, out
    # Ganeti counts an LV of an instance with active disks as offline unless
    # lv_attr[5] is "o" (lib/storage/bdev.py LogicalVolume.Attach): DRBD holds both.
    for node in NODES:
        attrs = lv_attrs(node)
        for lv in (state["data"], state["meta"]):
            assert attrs[lv][5] == "o", (node, lv, attrs[lv])
    proc = gnt("gnt-cluster", "verify")
    assert "ERROR" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_failover_to_the_secondary_keeps_the_data():
    timed("drbd failover", "gnt-instance", "failover", "-f", INSTANCE)
    assert primary(INSTANCE) == NODE2 and secondaries(INSTANCE) == [NODE1]
    node, device = the_device()
    assert node == NODE2
    assert digest(node, device) == state["digest"]
    state["digest"] = write_pattern(node, device)
    wait_for_drbd_sync(NODES)


def test_migrate_back_keeps_the_data():
    timed("drbd migrate", "gnt-instance", "migrate", "-f", INSTANCE)
    assert primary(INSTANCE) == NODE1
    node, device = the_device()
    assert digest(node, device) == state["digest"]


def test_grow_disk_grows_the_zvols_on_both_nodes():
    gnt("gnt-instance", "grow-disk", INSTANCE, "0", f"{GROW_MIB}M")
    for node in NODES:
        size = int(zfs_value(node, f"{LVM_PARENT}/{state['data']}", "volsize"))
        assert size == (SIZE_MIB + GROW_MIB) * MiB, (node, size)
    wait_for_drbd_sync(NODES)
    node, device = the_device()
    assert int(on(node, ["blockdev", "--getsize64", device]).stdout) == (SIZE_MIB + GROW_MIB) * MiB
    assert digest(node, device, mib=SIZE_MIB) == state["digest"]
    state["digest"] = digest(node, device)


@pytest.mark.parametrize("which,node", [("-s", NODE2), ("-p", NODE1)])
def test_replace_disks_attaches_the_new_zvols(which, node):
    """replace-disks renames the old LVs to *_replaced-<time>, the new ones onto the
    old names, and attaches /dev/<vg>/<lv> at once (lib/cmdlib/instance_storage.py,
    TLReplaceDisks): that path must lead to the new zvol, not the renamed one."""
    datasets = [f"{LVM_PARENT}/{state[kind]}" for kind in ("data", "meta")]
    old_guids = [zfs_value(node, dataset, "guid") for dataset in datasets]
    timed(f"replace-disks {which}", "gnt-instance", "replace-disks", which, INSTANCE)
    wait_for_drbd_sync(NODES)
    new_guids = [zfs_value(node, dataset, "guid") for dataset in datasets]
    assert all(old != new for old, new in zip(old_guids, new_guids)), "the zvols were not replaced"
    show = on(node, ["drbdsetup", "show", "0"]).stdout
    for dataset, kind in zip(datasets, ("data", "meta")):
        path = f"/dev/gnt/{state[kind]}"
        assert f'"{path}"' in show, show
        assert zvol_dataset(node, path) == dataset
    for each in NODES:
        assert not [lv for lv in zvols(each, LVM_PARENT) if "_replaced-" in lv], zvols(each, LVM_PARENT)
    device_node, device = the_device()
    assert digest(device_node, device) == state["digest"]


def test_deactivate_and_activate_disks():
    gnt("gnt-instance", "shutdown", "--timeout=0", INSTANCE)
    gnt("gnt-instance", "deactivate-disks", INSTANCE)
    for node in NODES:
        assert 0 not in drbd_status(node), (node, drbd_status(node))
        for lv in (state["data"], state["meta"]):
            assert lv_attrs(node)[lv][5] != "o", (node, lv)
    node, device = the_device()
    wait_for_drbd_sync(NODES)
    assert digest(node, device) == state["digest"]


def test_remove_leaves_nothing_on_either_node():
    gnt("gnt-instance", "remove", "-f", INSTANCE)
    for node in NODES:
        assert zvols(node, LVM_PARENT) == state["before"][node], node
        assert 0 not in drbd_status(node)
