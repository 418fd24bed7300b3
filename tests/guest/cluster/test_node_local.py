"""zfs ext disks are node-local, while Ganeti takes ext for shared storage
(DTS_EXT_MIRROR): a failover or migrate to another node must be refused before
anything changes, the instance staying up where it was with its data.

Without the refusals, failover stops the instance and switches its primary to a
node without its disk, and migrate to a node holding a stale copy runs the
instance on old data without an error (ganeti-multinode-facts.md section 3;
lib/cmdlib/instance_migration.py _ExecFailover, _ExecMigration).
"""

import pytest

from clusterlib import (NODE1, NODE2, ZFS_PARENT, activate_disks, digest, gnt, on, primary, remove_instance,
                        run, write_pattern, zvols)

INSTANCE = "local1"


@pytest.fixture(scope="module")
def ext_instance(cluster):
    before = zvols(NODE2, ZFS_PARENT)
    gnt("gnt-instance", "add", "-t", "ext", "-n", NODE1, "-o", "noop", "--disk=0:size=64M,provider=zfs",
        "--no-name-check", "--no-ip-check", "--net", "0:mode=bridged,link=gnt-br0",
        "-B", "maxmem=128M,minmem=128M", INSTANCE)
    node, device = activate_disks(INSTANCE)[0]
    volume = device_volume(device)
    expected = write_pattern(node, device)
    yield {"volume": volume, "digest": expected, "node2_before": before}
    remove_instance(INSTANCE)
    on(NODE2, ["zfs", "destroy", "-r", f"{ZFS_PARENT}/{volume}"], check=False)


def device_volume(device):
    real = run(["readlink", "-f", device]).stdout.strip()
    return run(["/lib/udev/zvol_id", real]).stdout.strip().rpartition("/")[2]


def status():
    out = gnt("gnt-instance", "list", "--no-headers", "--separator=|", "-o", "pnode,status", INSTANCE).stdout
    return tuple(out.strip().split("|"))


def refused(*argv):
    proc = run(list(argv), check=False, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"{argv} was not refused:\n{output}"
    return output


def assert_untouched(ext_instance):
    try:
        assert status() == (NODE1, "running")
        node, device = activate_disks(INSTANCE)[0]
        assert node == NODE1 and digest(node, device) == ext_instance["digest"]
    except AssertionError:
        recover()
        raise


def recover():
    """Undo what an unrefused failover does (its primary switched to a node
    without the disk), as an admin would, so the next test starts from node1."""
    run(["gnt-instance", "modify", "--new-primary", NODE1, INSTANCE], check=False, timeout=900)
    run(["gnt-instance", "startup", INSTANCE], check=False, timeout=900)


def test_migrate_without_a_copy_on_the_target_is_refused(ext_instance):
    output = refused("gnt-instance", "migrate", "-f", "-n", NODE2, INSTANCE)
    assert "zfs-node-local hook: refusing migrate" in output and ext_instance["volume"] in output, output
    assert_untouched(ext_instance)
    assert zvols(NODE2, ZFS_PARENT) == ext_instance["node2_before"]


def test_failover_is_refused_by_the_hook_before_the_instance_stops(ext_instance):
    output = refused("gnt-instance", "failover", "-f", "-n", NODE2, INSTANCE)
    assert "zfs-node-local hook: refusing failover" in output, output
    assert ext_instance["volume"] in output and NODE2 in output, output
    assert_untouched(ext_instance)


def test_a_stale_copy_on_the_target_is_never_used(ext_instance):
    """A copy of the volume on node2 (as a hand-made zfs send leaves it): migrate
    would run the instance on it and failover would switch to it; both refused,
    and ganeti-zfs verify on node2 names it as a stray."""
    volume = f"{ZFS_PARENT}/{ext_instance['volume']}"
    run(["zfs", "snapshot", f"{volume}@stale"])
    run(["sh", "-c", f"zfs send {volume}@stale | ssh -o BatchMode=yes -o StrictHostKeyChecking=no "
                     f"-o UserKnownHostsFile=/dev/null {NODE2} zfs receive -u {volume}"])
    run(["zfs", "destroy", f"{volume}@stale"])
    on(NODE2, ["zfs", "destroy", f"{volume}@stale"])
    # Marked as the provider's on node2 too, as a copy restored by hand would be
    # (a received mark alone does not count: volume.owners).
    on(NODE2, ["zfs", "set", "ganeti-zfs:owner=ext", volume])
    for operation in ("migrate", "failover"):
        output = refused("gnt-instance", operation, "-f", "-n", NODE2, INSTANCE)
        assert f"refusing {operation}" in output and "not marked current" in output, output
        assert_untouched(ext_instance)
    verify = on(NODE2, ["ganeti-zfs", "verify"], check=False)
    assert ext_instance["volume"] in verify.stdout + verify.stderr, verify
    assert "a copy left behind here" in verify.stdout + verify.stderr, verify


def test_migrate_past_the_hook_is_refused_by_the_shared_open(ext_instance):
    """Even a copy marked current (what a sanctioned move leaves, issue #18) is
    never run on by a live migration: only migration opens shared, and the
    provider refuses that on the source before any RAM moves
    (instance_migration.py _ExecMigration: open(False) on the primary first)."""
    volume = f"{ZFS_PARENT}/{ext_instance['volume']}"
    on(NODE2, ["zfs", "snapshot", f"{volume}@current"])
    on(NODE2, ["zfs", "set", "ganeti-zfs:current-copy=current", volume])
    try:
        output = refused("gnt-instance", "migrate", "-f", "-n", NODE2, INSTANCE)
        assert "zfs volumes are node-local" in output, output
        assert_untouched(ext_instance)
    finally:
        on(NODE2, ["zfs", "inherit", "ganeti-zfs:current-copy", volume], check=False)
