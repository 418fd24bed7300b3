"""The helper commands on real ZFS: byte for byte what zfs itself prints.

`ganeti-zfs list|size|snapshots` format -H -p numbers themselves; here they
are compared with zfs's own human output for the same datasets, and run
through the original's bin/ stubs too.
"""

import json
import os
import re
from pathlib import Path

import pytest

from guestlib import run
from providerlib import PROVIDER_DIR, MiB, new_volume_name, ok, write_config, write_device

PARENT = "tank/helpers-test"


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    """A quiet parent of its own, so that nothing else changes its numbers."""
    run(["zfs", "create", "-p", PARENT])
    path = write_config(tmp_path_factory.mktemp("helpers") / "helpers.conf", f"ZFS_PARENT={PARENT}\n")
    names = [new_volume_name(), new_volume_name()]
    ok("create", names[0], path, VOL_SIZE=11 * 1024)
    ok("create", names[1], path, VOL_SIZE=100)
    device = ok("attach", names[0], path).stdout.strip()
    write_device(device, os.urandom(3 * MiB) + b"\0" * MiB + os.urandom(MiB // 3))
    run(["zfs", "snapshot", f"{PARENT}@etckeeper"])
    run(["zfs", "snapshot", f"{PARENT}/{names[0]}@2014-06-24"])
    write_device(device, os.urandom(2 * MiB))
    run(["zpool", "sync", "tank"])
    yield path, names
    run(["zfs", "destroy", "-r", PARENT])


def ganeti_zfs(*args, env=None):
    return run(["ganeti-zfs", *args], env=env)


def zfs_words(text):
    """The words of zfs's own table, in the original README's notation.

    bookworm's zfs (2.1) prints bytes below 1K with a "B" suffix ("0B") and
    pads REFER to 8 columns (it shares an enum value with zpool's HEALTH);
    the original README, which the host unit tests hold our layout to,
    shows "0" and 5 columns. The values must be the same.
    """
    return [[re.sub(r"^([0-9]+)B$", r"\1", word) for word in line.split()] for line in text.splitlines()]


def same_as_zfs(zfs_argv, ours_argv):
    """Every value as zfs prints it; tried again if a background txg moved a number."""
    for _attempt in range(3):
        expected = zfs_words(run(zfs_argv).stdout)
        ours = run(ours_argv).stdout
        if [line.split() for line in ours.splitlines()] == expected:
            break
        run(["zpool", "sync", "tank"])
    assert [line.split() for line in ours.splitlines()] == expected
    return ours


def test_list_is_what_zfs_prints(config):
    path, names = config
    output = same_as_zfs(
        ["zfs", "list", "-r", "-t", "filesystem,volume", "-o", "name,used,avail,refer,mountpoint", PARENT],
        ["ganeti-zfs", "-c", str(path), "list"],
    )
    assert output.splitlines()[0].split() == ["NAME", "USED", "AVAIL", "REFER", "MOUNTPOINT"]
    assert all(f"{PARENT}/{name}" in output for name in names)


def test_size_is_what_zfs_prints(config):
    path, names = config
    output = same_as_zfs(["zfs", "get", "-r", "-t", "volume", "volsize", PARENT], ["ganeti-zfs", "size", "-c", str(path)])
    assert f"{PARENT}/{names[0]}  volsize   11G      local" in output


def test_snapshots_are_what_zfs_prints(config):
    path, names = config
    output = same_as_zfs(["zfs", "list", "-t", "snapshot", "-r", PARENT], ["ganeti-zfs", "snapshots", "-c", str(path)])
    assert f"{PARENT}@etckeeper" in output
    assert f"{PARENT}/{names[0]}@2014-06-24" in output


def test_json(config):
    path, names = config
    rows = json.loads(ganeti_zfs("size", "--json", "-c", str(path)).stdout)
    assert {row["name"]: row["value"] for row in rows} == {
        f"{PARENT}/{names[0]}": 11 * 1024 * MiB,
        f"{PARENT}/{names[1]}": 100 * MiB,
    }
    rows = json.loads(ganeti_zfs("list", "--json", "-c", str(path)).stdout)
    volume = next(row for row in rows if row["name"] == f"{PARENT}/{names[0]}")
    assert volume["mountpoint"] is None and volume["referenced"] >= 3 * MiB
    snapshots = json.loads(ganeti_zfs("snapshots", "--json", "-c", str(path)).stdout)
    assert [row["name"] for row in snapshots if row["name"].endswith("@2014-06-24")] == [f"{PARENT}/{names[0]}@2014-06-24"]
    assert all(row["available"] is None for row in snapshots)


@pytest.mark.parametrize("helper", ["list", "size", "snapshots"])
def test_one_zfs_process_per_helper(config, helper):
    path, _names = config
    result = ganeti_zfs(helper, "-c", str(path), env={**os.environ, "GANETI_ZFS_DEBUG": "1"})
    runs = [line for line in result.stderr.splitlines() if ": debug: run: " in line]
    assert len(runs) == 1, result.stderr


@pytest.mark.parametrize("helper", ["list", "size", "snapshots"])
def test_original_bin_scripts(config, helper):
    """The original README runs ./bin/list etc. in the provider directory."""
    path, _names = config
    env = {**os.environ, "GANETI_ZFS_CONFIG": str(path)}
    from_bin = run([f"./bin/{helper}"], cwd=PROVIDER_DIR, env=env).stdout
    assert from_bin == ganeti_zfs(helper, "-c", str(path)).stdout


def test_verify_command(config, tmp_path):
    path, names = config
    result = ganeti_zfs("verify", "-c", str(path))
    ok_line = f"ok: parent dataset {PARENT} exists, pool tank is ONLINE"
    # This module's volumes are no instance's disks: strays, once a cluster
    # exists (an earlier module of the same guest may have made it) and verify
    # can read its config; before that, verify says it could not check.
    if Path("/var/lib/ganeti/config.data").exists():
        assert result.stdout.splitlines() == [
            ok_line, f"warning: 0 zvols of {PARENT} belong to instances of node1.example.com, {len(names)} stray"]
        assert all(f"stray zvol {PARENT}/{name}: " in result.stderr for name in names), result.stderr
    else:
        assert result.stdout.splitlines() == [ok_line]
        assert "stray zvols not checked: " in result.stderr, result.stderr
    missing = write_config(tmp_path / "missing.conf", "ZFS_PARENT=tank/not-there\n")
    result = run(["ganeti-zfs", "verify", "-c", str(missing)], check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"ganeti-zfs verify: the parent dataset tank/not-there (ZFS_PARENT in {missing}) does not exist"
    ]

