"""Node-local ext disks are never silently broken (issue #15, point 5), on the
single-node cluster:

- the provider's `open` refuses a shared open (VOL_OPEN_EXCLUSIVE=False, sent
  only by live migration) with one line and changes nothing;
- the installed failover/migrate pre-hook, run by Ganeti 3.0's own hook
  runner (lib/backend.py HooksRunner, as noded runs it) with the environment
  Ganeti builds, refuses a move to this node of an instance whose zfs disk
  is missing here, unmarked, or written to since it was marked current, and
  passes with a current copy, for instances without zfs disks, and where
  this node is not the target;
- `ganeti-zfs verify` reports a provider zvol no instance owns and not the
  disk of a real `gnt-instance add -t ext` instance.
A real failover/migrate needs two nodes (the two-node suite).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from guestlib import NODE_NAME, NOOP_OS, ganeti_lib, run
from providerlib import (PARENT, destroy_if_exists, ensure_node_config, new_volume_name, ok, refused_without_change,
                         write_device, zfs_get)

from test_provider import make_volume  # noqa: F401 (volumes made through the provider, destroyed afterwards)

import ganeti_zfs.hooks
import ganeti_zfs.properties

GANETI_LIB = ganeti_lib()
HOOK_PROGRAM = Path("/") / ganeti_zfs.hooks.PROGRAM
HOOK_LINKS = [Path("/") / link for link in ganeti_zfs.hooks.hook_links()]
CURRENT = ganeti_zfs.properties.CURRENT_COPY
OTHER_NODE = "node2.example.com"  # not in the cluster: the old primary of the moves below
MiB = 1 << 20


@pytest.fixture(scope="module", autouse=True)
def node_config(ganeti_cluster):
    # The hook needs the cluster: it finds this node in ssconf_node_list.
    return ensure_node_config()


def test_shared_open_is_refused_and_changes_nothing(make_volume):
    name = make_volume()
    ok("open", name, VOL_OPEN_EXCLUSIVE="True")
    line = refused_without_change("open", name, "zfs volumes are node-local:", "live migration is not possible",
                                  VOL_OPEN_EXCLUSIVE="False")
    assert "VOL_OPEN_EXCLUSIVE=False" in line
    assert zfs_get(f"{PARENT}/{name}", ganeti_zfs.properties.OPEN) == "exclusive"
    # Also for a volume that is not there: refused for what was asked, not for that.
    refused_without_change("open", new_volume_name(), "live migration is not possible", VOL_OPEN_EXCLUSIVE="False")


def test_the_hook_is_installed_where_ganeti_looks():
    assert [link.parent.name for link in HOOK_LINKS] == ["instance-failover-pre.d", "instance-migrate-pre.d"]
    for link in HOOK_LINKS:
        assert link.is_symlink() and link.resolve() == HOOK_PROGRAM, link
        assert os.access(link, os.X_OK)


def hook_environment(operation, disks, target=NODE_NAME, instance="inst-move.example.com"):
    """The environment Ganeti 3.0.2 gives a failover/migrate pre-hook
    (lib/hooksmaster.py _RunWrapper and _BuildEnv; BuildHooksEnv of
    LUInstanceFailover/LUInstanceMigrate; instance_utils.BuildInstanceHookEnv).
    disks: [(dev_type, provider or None, id)]."""
    environ = {
        "GANETI_HOOKS_VERSION": "2",
        "GANETI_OP_CODE": f"OP_INSTANCE_{operation.upper()}",
        "GANETI_DATA_DIR": "/var/lib/ganeti",
        "GANETI_HOOKS_PHASE": "pre",
        "GANETI_HOOKS_PATH": f"instance-{operation}",
        "GANETI_OBJECT_TYPE": "INSTANCE",
        "GANETI_CLUSTER": "cluster.example.com",
        "GANETI_MASTER": NODE_NAME,
        "GANETI_OP_TARGET": instance,
        "GANETI_INSTANCE_NAME": instance,
        "GANETI_INSTANCE_PRIMARY": OTHER_NODE,
        "GANETI_INSTANCE_SECONDARIES": "",
        "GANETI_INSTANCE_STATUS": "up",
        "GANETI_INSTANCE_DISK_TEMPLATE": disks[0][0] if disks else "diskless",
        "GANETI_INSTANCE_NIC_COUNT": "0",
        "GANETI_INSTANCE_DISK_COUNT": str(len(disks)),
        "GANETI_INSTANCE_TAGS": "",
        "GANETI_OLD_PRIMARY": OTHER_NODE,
        "GANETI_NEW_PRIMARY": target,
        "GANETI_OLD_SECONDARY": "",
        "GANETI_NEW_SECONDARY": "",
    }
    if operation == "failover":
        environ.update(GANETI_IGNORE_CONSISTENCY="False", GANETI_SHUTDOWN_TIMEOUT="120", GANETI_FAILOVER_CLEANUP="False")
    else:
        environ.update(GANETI_MIGRATE_LIVE="True", GANETI_MIGRATE_CLEANUP="False", GANETI_ALLOW_RUNTIME_CHANGES="True")
    for index, (dev_type, provider, disk_id) in enumerate(disks):
        environ[f"GANETI_INSTANCE_DISK{index}_DEV_TYPE"] = dev_type
        environ[f"GANETI_INSTANCE_DISK{index}_ID"] = disk_id
        environ[f"GANETI_INSTANCE_DISK{index}_SIZE"] = "16"
        environ[f"GANETI_INSTANCE_DISK{index}_MODE"] = "rw"
        if provider:
            environ[f"GANETI_INSTANCE_DISK{index}_PROVIDER"] = provider
        else:
            environ[f"GANETI_INSTANCE_DISK{index}_VG"] = "gnt"
    return environ


def run_hooks(operation, disks, **kw):
    """[(script, status, output)] of Ganeti's own HooksRunner.RunHooks, as noded
    runs the pre-hooks of instance-<operation> (reset environment, PATH added
    by hooksmaster), with constants.HKR_* statuses turned into words."""
    environ = {"PATH": "/sbin:/bin:/usr/sbin:/usr/bin", **hook_environment(operation, disks, **kw)}
    script = f"""
import json, sys
sys.path.insert(0, {GANETI_LIB!r})
from ganeti import backend, constants
names = {{constants.HKR_SKIP: "skip", constants.HKR_FAIL: "fail", constants.HKR_SUCCESS: "success"}}
results = backend.HooksRunner().RunHooks({f"instance-{operation}"!r}, constants.HOOKS_PHASE_PRE, json.load(sys.stdin))
print(json.dumps([(script, names[status], output) for script, status, output in results]))
"""
    result = subprocess.run([sys.executable, "-c", script], input=json.dumps(environ), capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)
    ours = [(status, output) for path, status, output in results
            if path == f"instance-{operation}-pre.d/{ganeti_zfs.hooks.HOOK_NAME}"]
    assert len(ours) == 1, results
    return ours[0]


def assert_refused(outcome, operation, *fragments):
    status, output = outcome
    assert status == "fail", outcome
    assert len(output.splitlines()) == 1, output
    assert output.startswith(f"ganeti-zfs {ganeti_zfs.hooks.HOOK_NAME} hook: refusing {operation} of instance "), output
    for fragment in fragments:
        assert fragment in output, output
    return output


def mark_current(name, snapshot="move1"):
    """What a sanctioned move leaves on the received copy (properties.CURRENT_COPY)."""
    dataset = f"{PARENT}/{name}"
    run(["zfs", "snapshot", f"{dataset}@{snapshot}"])
    run(["zfs", "set", f"{CURRENT}={snapshot}", dataset])


@pytest.mark.parametrize("operation", ["failover", "migrate"])
def test_hook_refuses_a_missing_copy(operation):
    volume = new_volume_name()
    before = run(["zfs", "list", "-H", "-t", "all", "-o", "name"]).stdout
    output = assert_refused(run_hooks(operation, [("ext", "zfs", volume)]), operation, "inst-move.example.com",
                            f"to {NODE_NAME}", "disk 0", volume, "does not exist here")
    assert "zfs volumes are node-local" in output
    assert run(["zfs", "list", "-H", "-t", "all", "-o", "name"]).stdout == before


def test_hook_refuses_a_copy_not_marked_current_and_names_every_such_disk(make_volume):
    unmarked, marked = make_volume(), make_volume()
    mark_current(marked)
    output = assert_refused(run_hooks("failover", [("ext", "zfs", marked), ("ext", "zfs", unmarked)]), "failover",
                            f"disk 1 (zfs volume {unmarked})", f"{CURRENT} is not set on it")
    assert f"disk 0 (zfs volume {marked})" not in output


def test_hook_passes_a_current_copy_and_refuses_it_once_written(make_volume):
    first, second = make_volume(), make_volume()
    mark_current(first)
    mark_current(second)
    disks = [("ext", "zfs", first), ("ext", "zfs", second)]
    assert run_hooks("failover", disks) == ("success", "")
    assert run_hooks("migrate", disks) == ("success", "")
    # The copy is used after it was marked (as if it had run as the primary's disk).
    write_device(f"/dev/zvol/{PARENT}/{second}", os.urandom(MiB))
    assert_refused(run_hooks("migrate", disks), "migrate", f"disk 1 (zfs volume {second})",
                   "was written to after it was marked current as of its snapshot @move1")


def test_hook_refuses_a_mark_whose_snapshot_is_gone(make_volume):
    name = make_volume()
    run(["zfs", "set", f"{CURRENT}=gone", f"{PARENT}/{name}"])
    assert_refused(run_hooks("failover", [("ext", "zfs", name)]), "failover", f"disk 0 (zfs volume {name})",
                   "@gone, which cannot be read")


def test_hook_ignores_a_mark_inherited_from_the_parent(make_volume):
    name = make_volume()
    mark_current(name)
    run(["zfs", "inherit", CURRENT, f"{PARENT}/{name}"])
    run(["zfs", "set", f"{CURRENT}=move1", PARENT])
    try:
        assert_refused(run_hooks("failover", [("ext", "zfs", name)]), "failover", f"{CURRENT} is not set on it")
    finally:
        run(["zfs", "inherit", CURRENT, PARENT])


def test_hook_passes_instances_without_zfs_disks_without_running_zfs(tmp_path):
    # A zfs on the hook's PATH that leaves a trace: it must never run.
    trace = tmp_path / "zfs-ran"
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "zfs").write_text(f"#!/bin/sh\ntouch {trace}\nexit 1\n")
    (fake_bin / "zfs").chmod(0o755)
    for disks in ([("plain", None, "1234.disk0")], [("ext", "otherprovider", "vol1")], []):
        environ = {"PATH": f"{fake_bin}:/sbin:/bin:/usr/sbin:/usr/bin", **hook_environment("failover", disks)}
        result = subprocess.run([str(HOOK_LINKS[0])], env=environ, cwd="/", capture_output=True, text=True,
                                timeout=60)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), (disks, result)
    assert not trace.exists()
    assert run_hooks("failover", [("plain", None, "1234.disk0")]) == ("success", "")


def test_hook_passes_where_this_node_is_not_the_target():
    # The master (this node) when the target is another node: the target's
    # own run of the hook judges its pool.
    volume = new_volume_name()
    assert run_hooks("migrate", [("ext", "zfs", volume)], target=OTHER_NODE) == ("success", "")


# -- ganeti-zfs verify and stray zvols -------------------------------------


def volumes():
    return set(run(["zfs", "list", "-H", "-t", "volume", "-o", "name", "-r", PARENT]).stdout.split())


@pytest.fixture
def ext_instance(ganeti_cluster):
    name = "inst-local"
    before = volumes()
    run(["gnt-instance", "add", "-t", "ext", "-o", NOOP_OS, "-n", NODE_NAME, "--disk=0:size=128M,provider=zfs",
         "--net", "0:mode=bridged,link=gnt-br0", "--no-name-check", "--no-ip-check", "-B", "maxmem=128M",
         "--no-start", name], timeout=900)
    try:
        created = sorted(volumes() - before)
        assert len(created) == 1, created
        yield name, created[0]
    finally:
        run(["gnt-instance", "remove", "-f", "--ignore-failures", name], check=False, timeout=900)


def test_verify_reports_a_stray_zvol_and_not_the_instance_disk(ext_instance, make_volume, artifacts):
    instance, disk = ext_instance
    stray = make_volume()
    # What verify read, kept for the developer (the unit tests' fixture is cut from such a file).
    shutil.copy("/var/lib/ganeti/config.data", artifacts / "config.data")
    result = run(["ganeti-zfs", "verify"])
    assert f"stray zvol {PARENT}/{stray}: no instance's disk in the cluster configuration" in result.stderr
    assert disk.rsplit("/", 1)[1] not in result.stderr, result.stderr
    assert all(line.startswith("ganeti-zfs verify: warning: stray zvol ") for line in result.stderr.splitlines())
    assert f"belong to instances of {NODE_NAME}" in result.stdout and "stray" in result.stdout, result.stdout
    assert zfs_get(f"{PARENT}/{stray}", "type") == "volume", "a stray is never destroyed"
    destroy_if_exists(f"{PARENT}/{stray}")
    result = run(["ganeti-zfs", "verify"])
    assert stray not in result.stderr and disk.rsplit("/", 1)[1] not in result.stderr, result.stderr
    assert instance in run(["gnt-instance", "list", "--no-headers", "-o", "name"]).stdout
