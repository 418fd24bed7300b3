"""`ganeti-zfs move INSTANCE NODE` (ganeti_zfs/move.py) on the two nodes: a
running ext instance moves to node2 by zfs send, a seed while it runs and a
final increment after the stop, then Ganeti's own failover; failures before
the switch leave it on node1 with its data and nothing on node2.

Order matters: the refusals run first, while the instance is on node1.
"""

import datetime
import subprocess
import time

import pytest

from clusterlib import (NODE1, NODE2, ZFS_PARENT, activate_disks, digest, gnt, on, remove_instance, run,
                        write_pattern, zfs_value, zvols)

INSTANCE = "zmove1"
FINAL = "ganeti-move-3"  # the default --incrementals 1: seed @1, increment @2, final @3


@pytest.fixture(scope="module")
def instance(cluster):
    before = zvols(NODE2, ZFS_PARENT)
    gnt("gnt-instance", "add", "-t", "ext", "-n", NODE1, "-o", "noop", "--disk=0:size=64M,provider=zfs",
        "--no-name-check", "--no-ip-check", "--net", "0:mode=bridged,link=gnt-br0",
        "-B", "maxmem=128M,minmem=128M", INSTANCE)
    node, device = activate_disks(INSTANCE)[0]
    volume = on(node, ["/lib/udev/zvol_id", on(node, ["readlink", "-f", device]).stdout.strip()]).stdout.strip()
    state = {"volume": volume.rpartition("/")[2], "dataset": volume, "device": device,
             "digest": write_pattern(node, device), "node2_before": before}
    yield state
    remove_instance(INSTANCE)
    for node in (NODE1, NODE2):
        on(node, ["sh", "-c", f"zfs list -H -o name -t volume -d 1 {ZFS_PARENT} | grep -F '/{state['volume']}' | "
                              f"xargs -r -n1 zfs destroy -r"], check=False)


def status():
    out = gnt("gnt-instance", "list", "--no-headers", "--separator=|", "-o", "pnode,status", INSTANCE).stdout
    return tuple(out.strip().split("|"))


def move_snapshots(node, dataset):
    out = on(node, ["zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r", dataset]).stdout
    return [name for name in out.split() if "@ganeti-move-" in name]


def assert_left_on_node1(instance, proc):
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ganeti-zfs move: "), proc.stderr
    assert status() == (NODE1, "running")
    assert digest(NODE1, instance["device"]) == instance["digest"]
    assert move_snapshots(NODE1, instance["dataset"]) == []
    assert zfs_value(NODE1, instance["dataset"], "ganeti-zfs:current-copy") == "-"
    assert zvols(NODE2, ZFS_PARENT) == instance["node2_before"]
    return errors[0]


def test_a_dataset_of_that_name_on_the_target_is_refused_before_anything(instance):
    taken = f"{instance['dataset']}"
    on(NODE2, ["zfs", "create", "-V", "8M", taken])
    try:
        proc = run(["ganeti-zfs", "move", INSTANCE, NODE2], check=False, timeout=900)
        assert proc.returncode == 1 and f"{taken} already exists on {NODE2}" in proc.stderr, proc
        assert zvols(NODE2, ZFS_PARENT) == sorted(instance["node2_before"] + [instance["volume"]])
    finally:
        on(NODE2, ["zfs", "destroy", taken])
    assert_left_on_node1(instance, proc)


def test_a_full_target_pool_fails_the_seed_and_everything_is_undone(instance):
    # The seed (9 MiB of random data) cannot fit in 1 MiB more than node2's
    # parent holds: zfs receive there fails in the middle of the stream.
    used = int(zfs_value(NODE2, ZFS_PARENT, "used"))
    on(NODE2, ["zfs", "set", f"quota={used + (1 << 20)}", ZFS_PARENT])
    try:
        proc = run(["ganeti-zfs", "move", INSTANCE, NODE2], check=False, timeout=900)
    finally:
        on(NODE2, ["zfs", "set", "quota=none", ZFS_PARENT])  # quota cannot be inherited
    line = assert_left_on_node1(instance, proc)
    assert f"instance {INSTANCE} is still on {NODE1}, running, and nothing of it is left on {NODE2}" in line, line


def test_dry_run_shows_the_plan_and_changes_nothing(instance):
    proc = run(["ganeti-zfs", "move", "--dry-run", INSTANCE, NODE2], timeout=900)
    assert f"gnt-instance failover -f -n {NODE2} {INSTANCE}" in proc.stdout, proc.stdout
    assert f"zfs send -c {instance['dataset']}@ganeti-move-1 | ssh root@{NODE2}" in proc.stdout, proc.stdout
    assert move_snapshots(NODE1, instance["dataset"]) == []
    assert zvols(NODE2, ZFS_PARENT) == instance["node2_before"]


def test_move_to_node2_with_writes_during_the_seed(instance):
    dataset, volume = instance["dataset"], instance["volume"]
    started = time.monotonic()
    mover = subprocess.Popen(["ganeti-zfs", "move", INSTANCE, NODE2], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        # Once the seed is arriving on node2, write again on node1: the data
        # the increments must carry.
        deadline = time.monotonic() + 600
        while on(NODE2, ["zfs", "list", f"{dataset}.incoming"], check=False).returncode != 0:
            assert mover.poll() is None, mover.communicate()
            assert time.monotonic() < deadline, "the seed never reached node2"
            time.sleep(0.2)
        on(NODE1, ["sh", "-c", f"dd if=/dev/urandom of={instance['device']} bs=1M count=8 seek=16 oflag=direct "
                              f"status=none && sync"])
        # The write must have ended before the final snapshot, after the stop.
        assert f"{dataset}@{FINAL}" not in move_snapshots(NODE1, dataset), "the write came too late to test"
        during = digest(NODE1, instance["device"])
        out, err = mover.communicate(timeout=1800)
    finally:
        if mover.poll() is None:
            mover.kill()
    print(err)
    print(f"ganeti-zfs move of a 64 MiB disk: {time.monotonic() - started:.0f} s; {out.strip()}")
    assert mover.returncode == 0, err
    assert out.startswith(f"moved instance {INSTANCE} from {NODE1} to {NODE2}: 1 disks, ") and "down " in out, out
    assert during != instance["digest"]

    assert status() == (NODE2, "running")
    node, device = activate_disks(INSTANCE)[0]
    assert node == NODE2
    assert digest(NODE2, device) == during
    # node2: the disk only, no hidden copy, no move snapshots, no marks left.
    assert zvols(NODE2, ZFS_PARENT) == sorted(instance["node2_before"] + [volume])
    assert move_snapshots(NODE2, dataset) == []
    for prop in ("ganeti-zfs:current-copy", "ganeti-zfs:incoming"):
        assert zfs_value(NODE2, dataset, prop) == "-"
    assert zfs_value(NODE2, dataset, "ganeti-zfs:owner") == "ext"
    assert zfs_value(NODE2, dataset, "volmode") == "dev"

    # node1: nothing attachable, the retired copy equal to the source at the
    # stop (its final snapshot, nothing written since), with its expiry.
    assert volume not in zvols(NODE1, ZFS_PARENT)
    retired = [name for name in zvols(NODE1, ZFS_PARENT) if name.startswith(volume + ".moved-")]
    assert len(retired) == 1, zvols(NODE1, ZFS_PARENT)
    old = f"{ZFS_PARENT}/{retired[0]}"
    assert zfs_value(NODE1, old, "ganeti-zfs:owner") == "-"
    assert zfs_value(NODE1, old, f"written@{FINAL}") == "0"
    on(NODE1, ["udevadm", "settle"])
    assert digest(NODE1, f"/dev/zvol/{old}") == during
    attach = on(NODE1, ["env", f"VOL_NAME={volume}", "VOL_SIZE=64", "/usr/share/ganeti/extstorage/zfs/attach"],
                check=False)
    assert attach.returncode != 0 and "does not exist" in attach.stderr, attach

    verify = gnt("gnt-cluster", "verify")
    assert verify.returncode == 0

    # The daily job keeps the retired copy until its time (MOVE_KEEP_DAYS, 7
    # by default), then destroys it.
    until = datetime.datetime.strptime(zfs_value(NODE1, old, "ganeti-zfs:retired-until"), "%Y-%m-%dT%H:%M:%SZ")
    assert 6.9 < (until - datetime.datetime.utcnow()).total_seconds() / 86400 <= 7
    for now, kept in ((until - datetime.timedelta(minutes=1), True), (until, False)):
        on(NODE1, ["ganeti-zfs", "snapshot", "--quiet", f"--now={now:%Y-%m-%dT%H:%M:%S}+00:00"])
        assert (retired[0] in zvols(NODE1, ZFS_PARENT)) == kept, now
