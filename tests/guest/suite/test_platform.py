"""The test platform itself: real OpenZFS on virtual disks, and a real Ganeti cluster."""

import os

import pytest

from guestlib import cluster_verify, run, wait_for_path, zfs_list_all, zvol_path

MiB = 1 << 20


@pytest.mark.parametrize("name,disk,min_gib", [("tank", "vdb", 40), ("tank2", "vdc", 2)])
def test_pool_online_on_virtual_disk(name, disk, min_gib):
    health = run(["zpool", "list", "-H", "-o", "health", name]).stdout.strip()
    assert health == "ONLINE"
    assert f"/dev/{disk}" in run(["zpool", "status", "-P", name]).stdout
    size = int(open(f"/sys/block/{disk}/size").read()) * 512
    assert size >= min_gib << 30


def test_spare_disk_is_free(spare_disk):
    assert os.path.exists(spare_disk)
    assert run(["lsblk", "-n", "-o", "FSTYPE", spare_disk]).stdout.strip() == ""


@pytest.fixture(scope="module")
def zvol(pool):
    name = f"{pool}/platform-vol"
    run(["zfs", "create", "-V", "64M", name])
    yield name
    run(["zfs", "destroy", "-r", name])


def test_zvol_created(zvol):
    props = zfs_list_all()[zvol]
    assert props["type"] == "volume"
    assert int(props["volsize"]) == 64 * MiB


def test_zvol_device_node_appears(zvol):
    dev = wait_for_path(zvol_path(zvol))
    assert os.path.realpath(dev).startswith("/dev/zd")


def test_written_data_reads_back(zvol):
    dev = wait_for_path(zvol_path(zvol))
    pattern = os.urandom(MiB) * 4
    with open(dev, "r+b") as f:
        f.seek(8 * MiB)
        f.write(pattern)
        f.flush()
        os.fsync(f.fileno())
    run(["blockdev", "--flushbufs", str(dev)])  # read back from the zvol, not the cache
    with open(dev, "rb") as f:
        f.seek(8 * MiB)
        assert f.read(len(pattern)) == pattern


def test_volsize_grows(zvol):
    run(["zfs", "set", "volsize=128M", zvol])
    assert int(zfs_list_all()[zvol]["volsize"]) == 128 * MiB
    dev = wait_for_path(zvol_path(zvol))
    run(["udevadm", "settle"])
    assert int(run(["blockdev", "--getsize64", str(dev)]).stdout) == 128 * MiB


def test_snapshot_exists(zvol):
    run(["zfs", "snapshot", f"{zvol}@platform"])
    snapshot = zfs_list_all()[f"{zvol}@platform"]
    assert snapshot["type"] == "snapshot"


def test_ganeti_cluster_verifies(ganeti_cluster):
    info = run(["gnt-cluster", "info"]).stdout
    assert ganeti_cluster in info
    cluster_verify()


def test_noop_os_is_listed(ganeti_cluster):
    assert "noop" in run(["gnt-os", "list", "--no-headers"]).stdout.split()
