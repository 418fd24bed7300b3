"""The volume core's rules on real ZFS and udev (ganeti_zfs/volume.py):
ownership is a mark set on the zvol itself, never one inherited from a
parent, for every front-end; and /dev/<vg>/<lv> links only to the device
that names its own dataset (BLKZNAME), however stale /dev/zvol is.
"""

import json
import os

import pytest

from guestlib import run
from providerlib import destroy_if_exists, ensure_node_config, zfs_state

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


def test_create_leaves_a_usable_device_or_nothing(tmp_path):
    # volmode=none on the parent, inherited: zfs creates the zvol, and no
    # device ever appears. Before, create succeeded and the attach after it
    # failed, and Ganeti never removes a disk whose attach failed.
    import uuid

    from providerlib import assert_refused, provider

    run(["zfs", "create", "-o", "volmode=none", "tank/nodev"])
    try:
        config = tmp_path / "nodev.conf"
        config.write_text("ZFS_PARENT=tank/nodev\nATTACH_TIMEOUT=3\n")
        vol_name = f"{uuid.uuid4()}.ext.disk0"
        assert_refused(provider("create", vol_name, config, VOL_SIZE="16"), "create",
                       "has no usable device", "destroyed it again")
        assert run(["zfs", "list", "-H", "-o", "name", "-r", "tank/nodev"]).stdout.split() == ["tank/nodev"]
    finally:
        run(["zfs", "destroy", "-r", "tank/nodev"])
