"""The `zfs` ExtStorage provider on real ZFS, through the installed scripts.

Every action: its normal path, its idempotent re-run and its failure path,
run with the environment Ganeti passes (providerlib.provider).
"""

import os
import stat
import time

import pytest

from guestlib import run
from providerlib import (
    MiB,
    PARENT,
    PROVIDER_DIR,
    assert_refused,
    destroy_if_exists,
    device_of,
    ensure_node_config,
    new_volume_name,
    ok,
    provider,
    read_device,
    refused_without_change,
    udev_settle,
    write_config,
    write_device,
    zfs_get,
    zfs_state,
)


@pytest.fixture(scope="module", autouse=True)
def node_config():
    return ensure_node_config()


@pytest.fixture
def make_volume():
    """Create volumes through the provider; destroy whatever is left afterwards."""
    made = []

    def make(size_mib=64, **variables):
        name = new_volume_name()
        made.append(name)
        ok("create", name, VOL_SIZE=size_mib, **variables)
        return name

    yield make
    for name in made:
        destroy_if_exists(f"{PARENT}/{name}.snap")
        destroy_if_exists(f"{PARENT}/{name}")


def as_bytes(text):
    return 0 if text in ("none", "-") else int(text)


def attach(name, config=None):
    """attach must print exactly one line: a path that stats as a block device."""
    result = ok("attach", name, config)
    assert result.stdout == f"/dev/zvol/{PARENT}/{name}\n"
    assert stat.S_ISBLK(os.stat(result.stdout.rstrip("\n")).st_mode)
    return result.stdout.rstrip("\n")


def test_entrypoints_are_installed():
    for action in ("create", "attach", "detach", "remove", "grow", "setinfo", "verify", "snapshot", "open", "close"):
        script = PROVIDER_DIR / action
        assert script.is_file() and os.stat(script).st_mode & stat.S_IXUSR, script
    lines = (PROVIDER_DIR / "parameters.list").read_text().splitlines()
    assert lines and all(len(line.split(None, 1)) == 2 for line in lines)


# -- create + attach ---------------------------------------------------------


def test_create_then_attach_at_once(make_volume):
    name = make_volume(
        100, VOL_UUID="d2d7f4b0-1111-2222-3333-444455556666", VOL_CNAME="data"
    )
    dataset = f"{PARENT}/{name}"
    # straight after create, no waiting on our side: attach itself waits for udev
    path = attach(name)
    assert os.path.realpath(path).startswith("/dev/zd")
    assert zfs_get(dataset, "volsize") == str(100 * MiB)
    assert zfs_get(dataset, "ganeti-zfs:owner") == "ext"
    assert zfs_get(dataset, "ganeti-zfs:uuid") == "d2d7f4b0-1111-2222-3333-444455556666"
    assert zfs_get(dataset, "ganeti-zfs:cname") == "data"
    assert zfs_get(dataset, "compression") == "lz4"  # the config's default
    assert as_bytes(zfs_get(dataset, "refreservation")) == 0  # sparse by default
    # attach is idempotent
    assert attach(name) == path


def test_create_with_ext_params(make_volume):
    name = make_volume(
        64, EXTP_SPARSE="no", EXTP_VOLBLOCKSIZE="16k", EXTP_COMPRESSION="zstd", EXTP_LOGBIAS="throughput"
    )
    dataset = f"{PARENT}/{name}"
    assert zfs_get(dataset, "volblocksize") == "16384"
    assert zfs_get(dataset, "compression") == "zstd"
    assert zfs_get(dataset, "logbias") == "throughput"
    assert as_bytes(zfs_get(dataset, "refreservation")) >= 64 * MiB
    attach(name)


def test_create_again_with_the_same_size_succeeds(make_volume):
    name = make_volume(64)
    before = zfs_state()
    ok("create", name, VOL_SIZE=64)
    assert zfs_state() == before


def test_create_again_with_another_size_is_refused(make_volume):
    name = make_volume(64)
    refused_without_change("create", name, "already exists with 64 MiB, not the requested 128 MiB", VOL_SIZE=128)


def test_create_over_a_zvol_that_is_not_ours_is_refused():
    name = new_volume_name()
    dataset = f"{PARENT}/{name}"
    run(["zfs", "create", "-V", "64M", dataset])
    try:
        refused_without_change("create", name, "not created by ganeti-zfs", VOL_SIZE=64)
    finally:
        destroy_if_exists(dataset)


def test_create_that_zfs_refuses_leaves_nothing(tmp_path):
    """A thick zvol the pool has no room left for (tank2 holds 2 GiB)."""
    parent = "tank2/ganeti-full"
    run(["zfs", "create", "-p", parent])
    config = write_config(tmp_path / "full.conf", f"ZFS_PARENT={parent}\nSPARSE=no\n")
    first, second = new_volume_name(), new_volume_name()
    try:
        ok("create", first, config, VOL_SIZE=1200)
        line = refused_without_change("create", second, config=config, VOL_SIZE=1200)
        assert "space" in line
    finally:
        destroy_if_exists(parent)


def test_attach_of_a_missing_volume_fails():
    name = new_volume_name()
    result = provider("attach", name)
    assert_refused(result, "attach", f"volume {PARENT}/{name} does not exist")


def test_attach_refuses_a_stale_link(make_volume, tmp_path):
    """A /dev/zvol link that leads to another zvol's device is never printed."""
    config = write_config(tmp_path / "short.conf", f"ZFS_PARENT={PARENT}\nATTACH_TIMEOUT=2\n")
    mine, other = make_volume(), make_volume()
    attach(mine)
    attach(other)
    link = device_of(f"{PARENT}/{mine}")
    real_target = os.readlink(link)
    os.unlink(link)
    os.symlink(os.path.realpath(device_of(f"{PARENT}/{other}")), link)
    try:
        result = provider("attach", mine, config)
        assert_refused(result, "attach", f"which belongs to {PARENT}/{other}")
    finally:
        os.unlink(link)
        os.symlink(real_target, link)
    attach(mine)


def test_attach_gives_up_when_the_device_never_appears(tmp_path):
    """volmode=none on the parent (inherited): the zvol gets no device node.

    Made with zfs directly, as one of ours: create itself now refuses to
    leave such a volume (test_volume_core.py), but one may exist from
    before, or get volmode=none later."""
    parent = "tank/no-devices"
    run(["zfs", "create", "-o", "volmode=none", parent])
    config = write_config(tmp_path / "none.conf", f"ZFS_PARENT={parent}\nATTACH_TIMEOUT=2\n")
    name = new_volume_name()
    try:
        run(["zfs", "create", "-s", "-V", "16M", "-o", "ganeti-zfs:owner=ext", f"{parent}/{name}"])
        result = provider("attach", name, config)
        assert_refused(result, "attach", f"no usable device for {parent}/{name} after 2 s", "does not exist")
    finally:
        destroy_if_exists(parent)


# -- remove ------------------------------------------------------------------


def test_remove_as_ganeti_does_and_again(make_volume):
    name = make_volume()
    dataset = f"{PARENT}/{name}"
    run(["zfs", "snapshot", f"{dataset}@2026-11-01"])  # a scheduled snapshot goes with it
    attach(name)
    ok("detach", name)
    ok("remove", name)
    assert run(["zfs", "list", "-t", "all", "-H", "-o", "name", "-r", PARENT]).stdout.count(name) == 0
    # Ganeti retries remove; a missing volume is success
    ok("remove", name)


def test_remove_refuses_while_a_clone_depends_on_a_snapshot(make_volume):
    name = make_volume()
    dataset = f"{PARENT}/{name}"
    clone = f"tank/clone-of-{name}"
    run(["zfs", "snapshot", f"{dataset}@keep"])
    run(["zfs", "clone", f"{dataset}@keep", clone])
    try:
        refused_without_change("remove", name, "refusing to remove", clone)
    finally:
        destroy_if_exists(clone)
    ok("remove", name)


def test_remove_refuses_a_volume_that_is_not_ours():
    name = new_volume_name()
    dataset = f"{PARENT}/{name}"
    run(["zfs", "create", "-V", "16M", dataset])
    try:
        refused_without_change("remove", name, "not created by ganeti-zfs")
    finally:
        destroy_if_exists(dataset)


def test_an_inherited_owner_mark_does_not_count(tmp_path):
    parent = "tank/inherited-mark"
    run(["zfs", "create", "-o", "ganeti-zfs:owner=ext", parent])
    config = write_config(tmp_path / "inherit.conf", f"ZFS_PARENT={parent}\n")
    name = new_volume_name()
    run(["zfs", "create", "-V", "16M", f"{parent}/{name}"])
    try:
        refused_without_change("remove", name, "not created by ganeti-zfs", config=config)
        refused_without_change("grow", name, "not created by ganeti-zfs", config=config, VOL_SIZE=16, VOL_NEW_SIZE=32)
    finally:
        destroy_if_exists(parent)


def test_remove_of_a_busy_volume_fails_and_keeps_it(make_volume):
    name = make_volume()
    path = attach(name)
    with open(path, "rb"):
        refused_without_change("remove", name, "busy")
    ok("remove", name)


# -- grow --------------------------------------------------------------------


def device_size(path, expected, timeout=10):
    """blockdev --getsize64, waiting briefly for the kernel to see a new size."""
    deadline = time.monotonic() + timeout
    while True:
        size = int(run(["blockdev", "--getsize64", path]).stdout)
        if size == expected or time.monotonic() > deadline:
            return size
        time.sleep(0.2)


def test_grow_sparse(make_volume):
    name = make_volume(64)
    dataset = f"{PARENT}/{name}"
    path = attach(name)
    ok("grow", name, VOL_SIZE=64, VOL_NEW_SIZE=160)
    assert zfs_get(dataset, "volsize") == str(160 * MiB)
    assert as_bytes(zfs_get(dataset, "refreservation")) == 0
    assert device_size(path, 160 * MiB) == 160 * MiB
    # the same size again: nothing to do
    before = zfs_state()
    ok("grow", name, VOL_SIZE=64, VOL_NEW_SIZE=160)
    assert zfs_state() == before


def test_grow_thick_keeps_the_full_reservation(make_volume):
    name = make_volume(64, EXTP_SPARSE="no")
    dataset = f"{PARENT}/{name}"
    ok("grow", name, VOL_SIZE=64, VOL_NEW_SIZE=256)
    assert zfs_get(dataset, "volsize") == str(256 * MiB)
    assert as_bytes(zfs_get(dataset, "refreservation")) >= 256 * MiB


def test_grow_refuses_to_shrink(make_volume):
    name = make_volume(128)
    refused_without_change("grow", name, "never shrunk", VOL_SIZE=128, VOL_NEW_SIZE=64)


def test_grow_of_a_missing_volume_fails():
    refused_without_change("grow", new_volume_name(), "does not exist", VOL_SIZE=64, VOL_NEW_SIZE=128)


# -- setinfo, open, close, detach, verify -------------------------------------


def test_setinfo(make_volume):
    name = make_volume()
    dataset = f"{PARENT}/{name}"
    for _ in range(2):  # re-run: the same result
        ok("setinfo", name, VOL_METADATA="originstname+inst1.example.com")
        assert zfs_get(dataset, "ganeti-zfs:metadata") == "originstname+inst1.example.com"
        assert zfs_get(dataset, "ganeti:originstname") == "inst1.example.com"
    refused_without_change("setinfo", new_volume_name(), "does not exist", VOL_METADATA="originstname+x")


def test_open_and_close(make_volume):
    name = make_volume()
    dataset = f"{PARENT}/{name}"
    ok("open", name, VOL_OPEN_EXCLUSIVE="True")
    assert zfs_get(dataset, "ganeti-zfs:open") == "exclusive"
    # A shared open (VOL_OPEN_EXCLUSIVE=False) is refused: test_node_local.py.
    ok("close", name)
    ok("close", name)
    assert zfs_get(dataset, "ganeti-zfs:open") == "closed"
    refused_without_change("open", new_volume_name(), "does not exist", VOL_OPEN_EXCLUSIVE="True")


def test_volumes_of_the_original_tool_still_open_and_start():
    """A zvol without our mark (made by the shell tool): open/setinfo/close
    succeed so its instance can start, but do not change it."""
    name = new_volume_name()
    dataset = f"{PARENT}/{name}"
    run(["zfs", "create", "-V", "16M", dataset])
    try:
        before = zfs_state()
        result = ok("open", name, VOL_OPEN_EXCLUSIVE="True")
        assert "was not created by ganeti-zfs; not recording ganeti-zfs:open on it" in result.stderr
        ok("setinfo", name, VOL_METADATA="originstname+legacy")
        ok("close", name)
        assert zfs_state() == before
        assert zfs_get(dataset, "ganeti:originstname") == "-"
        attach(name)
    finally:
        destroy_if_exists(dataset)


def test_detach_always_succeeds(make_volume, tmp_path):
    name = make_volume()
    attach(name)
    before = zfs_state()
    assert ok("detach", name).stdout == ""
    ok("detach", new_volume_name())  # missing volume
    ok("detach", name, tmp_path / "no-such.conf")  # broken config
    assert zfs_state() == before


def test_verify():
    result = ok("verify", new_volume_name())
    assert f"ok: parent dataset {PARENT} exists, pool tank is ONLINE" in result.stderr
    refused_without_change("verify", new_volume_name(), "ext-param copies", EXTP_COPIES="7")


def test_verify_warns_about_a_degraded_pool(tmp_path):
    disks = [tmp_path / "a.img", tmp_path / "b.img"]
    for disk in disks:
        with open(disk, "wb") as file:
            file.truncate(128 * MiB)
    run(["zpool", "create", "gzdegraded", "mirror", *map(str, disks)])
    try:
        run(["zfs", "create", "gzdegraded/ganeti"])
        run(["zpool", "offline", "gzdegraded", str(disks[1])])
        config = write_config(tmp_path / "degraded.conf", "ZFS_PARENT=gzdegraded/ganeti\n")
        result = ok("verify", new_volume_name(), config)
        assert "warning: pool gzdegraded is DEGRADED" in result.stderr
    finally:
        run(["zpool", "destroy", "-f", "gzdegraded"])


# -- snapshot (gnt-backup export) --------------------------------------------


def test_snapshot_export_cycle(make_volume):
    name = make_volume(32)
    origin = f"{PARENT}/{name}"
    snap_name = f"{name}.snap"
    origin_path = attach(name)
    data = os.urandom(4 * MiB)
    write_device(origin_path, data)
    before = zfs_state()

    ok("snapshot", name, VOL_SNAPSHOT_NAME=snap_name, VOL_SNAPSHOT_SIZE=32)
    assert zfs_get(f"{PARENT}/{snap_name}", "origin") == f"{origin}@ganeti-export"
    assert zfs_get(f"{origin}@ganeti-export", "ganeti-zfs:snapshot") == "export"
    # the origin keeps changing; the export copy does not
    write_device(origin_path, os.urandom(4 * MiB))
    # Ganeti: attach, open, dd, then attach, detach, remove the .snap volume
    snap_path = attach(snap_name)
    ok("open", snap_name, VOL_OPEN_EXCLUSIVE="True")
    run(["blockdev", "--flushbufs", snap_path])
    assert read_device(snap_path, len(data)) == data
    ok("detach", snap_name)
    ok("remove", snap_name)
    assert zfs_state() == before


def test_snapshot_again_replaces_the_leftover_copy(make_volume):
    name = make_volume(32)
    snap_name = f"{name}.snap"
    origin_path = attach(name)
    ok("snapshot", name, VOL_SNAPSHOT_NAME=snap_name, VOL_SNAPSHOT_SIZE=32)
    newer = os.urandom(MiB)
    write_device(origin_path, newer)
    ok("snapshot", name, VOL_SNAPSHOT_NAME=snap_name, VOL_SNAPSHOT_SIZE=32)
    snap_path = attach(snap_name)
    run(["blockdev", "--flushbufs", snap_path])
    assert read_device(snap_path, len(newer)) == newer
    # removing the volume takes its leftover export copy with it
    ok("remove", name)
    listing = run(["zfs", "list", "-t", "all", "-H", "-o", "name", "-r", PARENT]).stdout
    assert name not in listing


def test_snapshot_will_not_replace_a_dataset_that_is_not_an_export_copy(make_volume):
    name = make_volume()
    # <vol>.snap, but a volume of its own, not a clone of <vol>@ganeti-export.
    run(["zfs", "create", "-s", "-V", "64M", "-o", "ganeti-zfs:owner=ext", f"{PARENT}/{name}.snap"])
    refused_without_change(
        "snapshot", name, "is not an export copy", VOL_SNAPSHOT_NAME=f"{name}.snap", VOL_SNAPSHOT_SIZE=64
    )


def test_snapshot_of_a_missing_volume_fails():
    name = new_volume_name()
    refused_without_change("snapshot", name, "does not exist", VOL_SNAPSHOT_NAME=f"{name}.snap")


def zfs_runs(result):
    """The zfs/zpool commands a provider run started, from its debug log."""
    return [line for line in result.stderr.splitlines() if ": debug: run: " in line]


def test_attach_of_a_ready_volume_starts_no_zfs_process(make_volume):
    """attach runs on nearly every Ganeti disk RPC: a device that names itself
    as the dataset (BLKZNAME) is the whole answer."""
    name = make_volume()
    path = attach(name)  # the first attach waits for udev
    result = ok("attach", name, GANETI_ZFS_DEBUG="1")
    assert result.stdout == f"{path}\n"
    assert zfs_runs(result) == [], result.stderr


def test_attach_asks_zfs_once_when_there_is_no_device():
    """The debug log shows the one zfs command that tells "missing" from "not there yet"."""
    name = new_volume_name()
    result = provider("attach", name, GANETI_ZFS_DEBUG="1")
    assert result.returncode != 0 and result.stdout == ""
    runs = zfs_runs(result)
    assert len(runs) == 1 and f"debug: run: zfs list -H -p -o name,volsize,ganeti-zfs:owner -t volume {PARENT}/{name}" in runs[0], result.stderr
    assert result.stderr.splitlines()[-1].endswith(f"volume {PARENT}/{name} does not exist")
