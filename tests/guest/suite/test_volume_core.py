"""The volume core's rules on real ZFS and udev (ganeti_zfs/volume.py):
ownership is a mark set on the zvol itself, never one inherited from a
parent, for every front-end; and /dev/<vg>/<lv> links only to the device
that names its own dataset (BLKZNAME), however stale /dev/zvol is.
"""

import contextlib
import json
import os
import struct
import time
import uuid
from pathlib import Path

import pytest

from guestlib import run
from providerlib import (assert_refused, destroy_if_exists, ensure_node_config, ok, provider, write_device,
                         zfs_get, zfs_state)

VG = "gnt"
LVM_PARENT = "tank/gnt"
PV = f"/dev/zvol/{LVM_PARENT}"
OWNER = "ganeti-zfs:owner"


@pytest.fixture(scope="module", autouse=True)
def node_config():
    return ensure_node_config()


@pytest.fixture
def marked_parent():
    """An owner mark on the LVM parent itself, which every zvol below inherits,
    a foreign zvol there, and one LV made by lvcreate."""
    run(["lvcreate", "-Wn", "-L32m", "-nmine.disk0", VG])
    run(["zfs", "create", "-V", "32M", f"{LVM_PARENT}/foreign"])
    run(["zfs", "set", f"{OWNER}=lvm", LVM_PARENT])
    yield
    run(["zfs", "inherit", OWNER, LVM_PARENT])
    run(["lvremove", "-f", f"{VG}/mine.disk0"], check=False)
    destroy_if_exists(f"{LVM_PARENT}/mine.disk0")
    destroy_if_exists(f"{LVM_PARENT}/foreign")


def test_an_inherited_mark_makes_no_lv_and_lvremove_refuses_it(marked_parent):
    assert run(["zfs", "get", "-H", "-o", "value,source", OWNER, f"{LVM_PARENT}/foreign"]).stdout.startswith(
        "lvm\tinherited")
    names = run(["lvs", "--noheadings", "-o", "lv_name", VG]).stdout.split()
    assert "mine.disk0" in names and "foreign" not in names
    result = run(["lvremove", "-f", f"{VG}/foreign"], check=False)
    assert result.returncode == 5 and "Failed to find" in result.stderr
    assert f"{LVM_PARENT}/foreign" in zfs_state()


def test_an_inherited_mark_gets_no_daily_snapshot(marked_parent, tmp_path):
    config = tmp_path / "sched.conf"
    config.write_text(f"ZFS_PARENT=tank/ganeti\nLVM_VG={VG}\nLVM_PARENT={LVM_PARENT}\n")
    plan = json.loads(run(["ganeti-zfs", "-c", str(config), "snapshot", "--dry-run", "--json"]).stdout)
    assert f"{LVM_PARENT}/mine.disk0" in plan["snapshotted"]
    assert f"{LVM_PARENT}/foreign" not in plan["snapshotted"]


def test_a_volume_named_snap_is_snapshotted_like_any_other(tmp_path):
    # Export copies are told by what they were cloned from, not by name.
    run(["zfs", "create", "-p", "tank/named"])
    run(["zfs", "create", "-s", "-V", "16M", f"-o{OWNER}=ext", "tank/named/x.snap"])
    try:
        config = tmp_path / "named.conf"
        config.write_text("ZFS_PARENT=tank/named\n")
        plan = json.loads(run(["ganeti-zfs", "-c", str(config), "snapshot", "--dry-run", "--json"]).stdout)
        assert plan["snapshotted"] == ["tank/named/x.snap"] and plan["excluded"] == []
    finally:
        run(["zfs", "destroy", "-r", "tank/named"])


def test_an_lv_link_never_follows_a_stale_zvol_link():
    """/dev/zvol/<b> made to lead to a's device, as udev may leave it for a
    moment after renames: activating b must not link /dev/gnt/b to a's data."""
    for name in ("a.disk0", "b.disk0"):
        run(["lvcreate", "-Wn", "-L32m", f"-n{name}", VG])
    try:
        a_device = os.path.realpath(f"/dev/zvol/{LVM_PARENT}/a.disk0")
        run(["lvchange", "-an", f"{VG}/b.disk0"])
        assert not os.path.lexists(f"/dev/{VG}/b.disk0")
        stale = f"/dev/zvol/{LVM_PARENT}/b.disk0"
        os.unlink(stale)
        os.symlink(a_device, stale)
        result = run(["lvchange", "-ay", f"{VG}/b.disk0"], check=False)
        assert result.returncode == 5, result
        assert "belongs to tank/gnt/a.disk0" in result.stderr, result.stderr
        assert not os.path.lexists(f"/dev/{VG}/b.disk0") or \
            os.path.realpath(f"/dev/{VG}/b.disk0") != a_device
    finally:
        run(["udevadm", "trigger", "--settle", "--subsystem-match=block"], check=False)
        for name in ("a.disk0", "b.disk0"):
            run(["lvremove", "-f", f"{VG}/{name}"], check=False)
            destroy_if_exists(f"{LVM_PARENT}/{name}")


@contextlib.contextmanager
def zvols_without_devices():
    """The zfs module's zvol_volmode (zfs(4)) at 3, none: a zvol whose volmode
    is `default` gets no device node. A real way to make a creation's device
    wait fail; VOLMODE=default passes it through."""
    parameter = Path("/sys/module/zfs/parameters/zvol_volmode")
    before = parameter.read_text().strip()
    parameter.write_text("3\n")
    try:
        yield
    finally:
        parameter.write_text(f"{before}\n")


def _config(tmp_path, text):
    path = tmp_path / "core.conf"
    path.write_text(f"ZFS_PARENT=tank/ganeti\nLVM_VG={VG}\nLVM_PARENT={LVM_PARENT}\nATTACH_TIMEOUT=3\n{text}")
    return path


def _names(dataset):
    return run(["zfs", "list", "-H", "-t", "all", "-o", "name", "-r", dataset]).stdout.split()


def test_create_leaves_a_usable_device_or_nothing(tmp_path):
    """Before, create succeeded without a device; the attach after it failed,
    and Ganeti never removes a disk whose attach failed (a leak)."""
    vol_name = f"{uuid.uuid4()}.ext.disk0"
    before = _names("tank/ganeti")
    with zvols_without_devices():
        assert_refused(provider("create", vol_name, _config(tmp_path, "VOLMODE=default\n"), VOL_SIZE="16"),
                       "create", f"created tank/ganeti/{vol_name}, but it has no usable device", "destroyed it again")
        assert _names("tank/ganeti") == before
        # The same module setting with VOLMODE's default, dev: volmode is set on
        # the zvol itself, so it has its device whatever the module or a parent says.
        ok("create", vol_name, _config(tmp_path, ""), VOL_SIZE="16")
    try:
        assert run(["zfs", "get", "-H", "-o", "value,source", "volmode", f"tank/ganeti/{vol_name}"]).stdout \
            == "dev\tlocal\n"
        assert ok("attach", vol_name).stdout.strip() == f"/dev/zvol/tank/ganeti/{vol_name}"
    finally:
        ok("remove", vol_name)


def test_lvcreate_leaves_a_usable_lv_or_nothing(tmp_path):
    env = dict(os.environ, GANETI_ZFS_CONFIG=str(_config(tmp_path, "VOLMODE=default\n")))
    with zvols_without_devices():
        result = run(["lvcreate", "-Wn", "-L16m", "-nnodev.disk0", VG], check=False, env=env)
    assert result.returncode == 5 and "has no usable device" in result.stderr, result
    assert f"{LVM_PARENT}/nodev.disk0" not in _names(LVM_PARENT)
    assert not os.path.lexists(f"/dev/{VG}/nodev.disk0")


def test_a_failed_lvcreate_s_leaves_neither_clone_nor_snapshot(tmp_path):
    run(["lvcreate", "-Wn", "-L16m", "-norigin.disk0", VG])
    try:
        env = dict(os.environ, GANETI_ZFS_CONFIG=str(_config(tmp_path, "VOLMODE=default\n")))
        with zvols_without_devices():
            result = run(["lvcreate", "-s", "-L16m", "-norigin.disk0.snap", f"{VG}/origin.disk0"], check=False, env=env)
        assert result.returncode == 5 and "has no usable device" in result.stderr, result
        # Before, the clone went and <origin>@<snapshot LV> stayed behind.
        assert _names(f"{LVM_PARENT}/origin.disk0") == [f"{LVM_PARENT}/origin.disk0"]
        assert f"{LVM_PARENT}/origin.disk0.snap" not in _names(LVM_PARENT)
    finally:
        run(["lvremove", "-f", f"{VG}/origin.disk0"], check=False)
        destroy_if_exists(f"{LVM_PARENT}/origin.disk0")


def test_new_lvs_and_snapshot_lvs_get_volmode_dev():
    run(["lvcreate", "-Wn", "-L16m", "-nmode.disk0", VG])
    try:
        run(["lvcreate", "-s", "-L16m", "-nmode.disk0.snap", f"{VG}/mode.disk0"])
        for lv in ("mode.disk0", "mode.disk0.snap"):
            assert run(["zfs", "get", "-H", "-o", "value,source", "volmode", f"{LVM_PARENT}/{lv}"]).stdout \
                == "dev\tlocal\n", lv
    finally:
        run(["lvremove", "-f", f"{VG}/mode.disk0"], check=False)
        destroy_if_exists(f"{LVM_PARENT}/mode.disk0")


# -- volmode=dev: the host never reads a guest's partition table ---------------


def _mbr_with_one_partition():
    """A DOS partition table: one Linux partition, sectors 2048-10239."""
    entry = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 2048, 8192)
    return bytes(446) + entry + bytes(48) + b"\x55\xaa"


def _partitions(link):
    """The partition devices the kernel made of a zvol (zd0 -> zd0p1 ...)."""
    disk = os.path.basename(os.path.realpath(link))
    return sorted(name for name in os.listdir(f"/sys/block/{disk}") if name.startswith(f"{disk}p"))


def _with_partition_table(link):
    write_device(link, _mbr_with_one_partition())
    # Ask the kernel to read it (udev's watch asks too, on close after a write).
    run(["blockdev", "--rereadpt", os.path.realpath(link)], check=False)
    run(["udevadm", "settle", "--timeout=30"], check=False)


def _wait_for_partitions(link, seconds=30):
    deadline = time.monotonic() + seconds
    while not _partitions(link) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _partitions(link)


def test_a_partition_table_in_a_volmode_full_zvol_makes_partition_devices():
    """The control of the test below: this way of looking finds partitions."""
    compare = "tank/ganeti/volmode-full"
    try:
        run(["zfs", "create", "-s", "-V", "16M", "-o", "volmode=full", compare])
        link = f"/dev/zvol/{compare}"
        deadline = time.monotonic() + 30
        while not os.path.exists(link) and time.monotonic() < deadline:
            time.sleep(0.2)
        _with_partition_table(link)
        disk = os.path.basename(os.path.realpath(link))
        assert _wait_for_partitions(link) == [f"{disk}p1"]
    finally:
        destroy_if_exists(compare)


# Seen in the guest (Debian 12: OpenZFS 2.1.11, Linux 6.1) on 2026-12-02: a
# volmode=dev zvol is a disk like a volmode=full one (/sys/block/zdN/capability
# 0, range 16): the kernel made zd0p1 once its table was written (udev's watch
# re-reads it on close), and a volmode=dev clone of it had zd16p1 as it
# appeared. That is the symptom of openzfs/zfs#13294 ("ZVOL 'volmode=dev' no
# longer hides partitions in Linux 5.17"), whose fix (openzfs/zfs#13297, a
# configure check for GENHD_FL_NO_PART) 2.1.11 carries, yet its Debian build
# for 6.1 still shows it. Strict, and only for that symptom (the assertion on
# the partition lists): when a zfs that hides them is in the guest, this
# XPASSes and fails, and the marker goes. Trixie's 2.3.9 on Linux 6.12 hides
# them (the trixie guest, 2026-12-02): expected there to pass.
ZFS_MODULE_VERSION = Path("/sys/module/zfs/version").read_text().strip()


@pytest.mark.xfail(ZFS_MODULE_VERSION.startswith("2.1."), strict=True, raises=AssertionError,
                   reason="openzfs/zfs#13294: OpenZFS 2.1.11 on Linux 6.1 makes partition devices of "
                          "volmode=dev zvols as of volmode=full ones")
def test_a_guest_partition_table_makes_no_host_partition_devices():
    vol_name = f"{uuid.uuid4()}.ext.disk0"
    ok("create", vol_name, VOL_SIZE="16")
    dataset = f"tank/ganeti/{vol_name}"
    try:
        assert zfs_get(dataset, "volmode") == "dev"
        link = ok("attach", vol_name).stdout.strip()
        _with_partition_table(link)
        # Its export copy: a new device, whose table the kernel reads as it appears.
        ok("snapshot", vol_name, VOL_SNAPSHOT_NAME=f"{vol_name}.snap", VOL_SNAPSHOT_SIZE="16")
        copy_link = ok("attach", f"{vol_name}.snap").stdout.strip()
        run(["udevadm", "settle", "--timeout=30"], check=False)
        assert zfs_get(f"{dataset}.snap", "volmode") == "dev"
        assert (_partitions(copy_link), _partitions(link)) == ([], [])
    finally:
        provider("remove", f"{vol_name}.snap")
        provider("remove", vol_name)


# -- export snapshots and copies: one rule, by the origin's own kind ----------


def test_an_admin_snapshot_named_ganeti_export_is_not_ours(tmp_path):
    """A snapshot an admin took with our name, and a clone of it marked as
    ours: neither is an export copy. The provider leaves the snapshot, remove
    refuses while the clone depends on it, the daily job snapshots the clone."""
    vol_name = f"{uuid.uuid4()}.ext.disk0"
    ok("create", vol_name, VOL_SIZE="16")
    dataset = f"tank/ganeti/{vol_name}"
    lookalike = f"{dataset}.snap"
    try:
        run(["zfs", "snapshot", f"{dataset}@ganeti-export"])
        run(["zfs", "clone", "-o", f"{OWNER}=ext", f"{dataset}@ganeti-export", lookalike])
        before = zfs_state()
        assert_refused(provider("remove", vol_name), "remove", "depend on it", lookalike)
        assert_refused(provider("snapshot", vol_name, VOL_SNAPSHOT_NAME=f"{vol_name}.snap", VOL_SNAPSHOT_SIZE="16"),
                       "snapshot", "is not an export copy made by ganeti-zfs")
        assert zfs_state() == before
        config = tmp_path / "plan.conf"
        config.write_text("ZFS_PARENT=tank/ganeti\n")
        plan = json.loads(run(["ganeti-zfs", "-c", str(config), "snapshot", "--dry-run", "--json"]).stdout)
        assert lookalike in plan["snapshotted"]
        # Ours, for comparison: taken and cloned by the provider, excluded.
        run(["zfs", "destroy", lookalike])
        run(["zfs", "destroy", f"{dataset}@ganeti-export"])
        ok("snapshot", vol_name, VOL_SNAPSHOT_NAME=f"{vol_name}.snap", VOL_SNAPSHOT_SIZE="16")
        plan = json.loads(run(["ganeti-zfs", "-c", str(config), "snapshot", "--dry-run", "--json"]).stdout)
        assert lookalike not in plan["snapshotted"] and {"volume": lookalike, "reason": "export copy"} in plan["excluded"]
        ok("remove", vol_name)  # with its export copy and export snapshot
        assert not [name for name in _names("tank/ganeti") if name.startswith(dataset)]
    finally:
        destroy_if_exists(lookalike)
        destroy_if_exists(dataset)


def test_a_renamed_snapshot_lv_takes_its_export_snapshot_with_it():
    """lvrename of a snapshot LV renames the snapshot it was cloned from with
    it (so the old name is free for a new snapshot LV), and lvremove destroys
    that snapshot by its kind, whatever its name: here renamed once more by
    hand. Before, by the name, which no longer matched after lvrename."""
    run(["lvcreate", "-Wn", "-L16m", "-nren.disk0", VG])
    try:
        run(["lvcreate", "-s", "-L16m", "-nren.disk0.snap", f"{VG}/ren.disk0"])
        run(["lvrename", VG, "ren.disk0.snap", "ren.disk0.renamed"])
        assert zfs_get(f"{LVM_PARENT}/ren.disk0.renamed", "origin") == f"{LVM_PARENT}/ren.disk0@ren.disk0.renamed"
        run(["zfs", "rename", f"{LVM_PARENT}/ren.disk0@ren.disk0.renamed", f"{LVM_PARENT}/ren.disk0@by-hand"])
        run(["lvremove", "-f", f"{VG}/ren.disk0.renamed"])
        assert _names(f"{LVM_PARENT}/ren.disk0") == [f"{LVM_PARENT}/ren.disk0"]
    finally:
        run(["lvremove", "-f", f"{VG}/ren.disk0"], check=False)
        destroy_if_exists(f"{LVM_PARENT}/ren.disk0")
