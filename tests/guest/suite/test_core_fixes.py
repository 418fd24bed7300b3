"""Fixes that only real ZFS, udev and Linux can show: the node lock against
other users, attach with an unknown config key, DESTROY_OPTIONS=-f, and a
snapshot call naming another volume's export copy. Every script is the
installed one, run the way Ganeti runs it (providerlib)."""

import os
import stat
import subprocess
import time

import pytest

from guestlib import run
from providerlib import (
    PARENT,
    PROVIDER_DIR,
    destroy_if_exists,
    ensure_node_config,
    ganeti_environment,
    new_volume_name,
    ok,
    refused_without_change,
    write_config,
    zfs_get,
    zfs_state,
)
from test_provider import make_volume  # noqa: F401 (the same fixture: volumes made through the provider)

LOCK_DIR = "/run/ganeti-extstorage-zfs"
LOCK_FILE = f"{LOCK_DIR}/node.lock"
OLD_LOCK_FILE = "/run/lock/ganeti-extstorage-zfs.lock"  # before 0.2.1


@pytest.fixture(scope="module", autouse=True)
def node_config():
    return ensure_node_config()


# -- 1. the node lock cannot be held by another user ---------------------------

# Run as nobody: hold every lock file it can get at, through a read-only
# descriptor (flock works on those) or one it creates (in a sticky
# world-writable directory, root's open of it then fails: fs.protected_regular).
HOLDER = r"""
import fcntl, os, sys, time
held = []
for path in sys.argv[1:]:
    for flags in (os.O_RDONLY, os.O_RDWR | os.O_CREAT):
        try:
            fd = os.open(path, flags, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            print(f"{path}: {error.strerror}", file=sys.stderr, flush=True)
            continue
        held.append(path)
        break
print(" ".join(held) or "nothing", flush=True)
time.sleep(600)
"""


def test_another_user_cannot_hold_the_node_lock():
    # /run/lock as on any Debian system (the guest's init is not systemd).
    os.makedirs("/run/lock", exist_ok=True)
    os.chmod("/run/lock", 0o1777)
    name = new_volume_name()
    holder = subprocess.Popen(
        ["runuser", "-u", "nobody", "--", "python3", "-c", HOLDER, LOCK_FILE, OLD_LOCK_FILE],
        cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # Only the old place can be held: the holder did run.
        assert holder.stdout.readline().split() == [OLD_LOCK_FILE]
        started = time.monotonic()
        result = subprocess.run(
            [str(PROVIDER_DIR / "create")], cwd=PROVIDER_DIR, env=ganeti_environment(name, VOL_SIZE=32),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90,
        )
        assert result.returncode == 0, result.stderr
        assert time.monotonic() - started < 60
        ok("remove", name)
    finally:
        holder.kill()
        holder.wait()
        destroy_if_exists(f"{PARENT}/{name}")
    directory = os.lstat(LOCK_DIR)
    assert stat.S_ISDIR(directory.st_mode) and directory.st_uid == 0
    assert stat.S_IMODE(directory.st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(LOCK_FILE).st_mode) == 0o600


def test_a_lock_directory_others_can_write_is_refused(make_volume):
    os.makedirs(LOCK_DIR, mode=0o700, exist_ok=True)
    os.chmod(LOCK_DIR, 0o777)
    try:
        name = new_volume_name()
        refused_without_change("create", name, "others may write to it; refusing", VOL_SIZE=32)
    finally:
        os.chmod(LOCK_DIR, 0o700)
    ok("attach", make_volume())  # it works again (attach: udev is done with it before teardown)


# -- 2. attach with an unknown key in the config -------------------------------


def test_attach_works_with_an_unknown_config_key(make_volume, tmp_path):
    name = make_volume()
    conf = write_config(tmp_path / "typo.conf", f"ZFS_PARENT={PARENT}\nATACH_TIMEOUT=5\n")
    for action in ("attach", "open", "close", "detach"):
        result = ok(action, name, conf, VOL_OPEN_EXCLUSIVE="True")
        if action == "attach":
            assert result.stdout == f"/dev/zvol/{PARENT}/{name}\n"
        else:
            assert result.stdout == ""
        if action != "detach":  # detach reads no config at all
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and "warning" in lines[0], result.stderr
            assert f"{conf}:2" in lines[0] and "ATACH_TIMEOUT" in lines[0], lines[0]
    # Everything else still refuses the file, changing nothing.
    refused_without_change("create", new_volume_name(), f"{conf}:2", "ATACH_TIMEOUT", config=conf, VOL_SIZE=32)
    refused_without_change("remove", name, f"{conf}:2", "ATACH_TIMEOUT", config=conf)
    # What attach cannot do without is still refused.
    broken = write_config(tmp_path / "noparent.conf", "ATACH_TIMEOUT=5\n")
    refused_without_change("attach", name, "ZFS_PARENT is not set", config=broken)


# -- 5. DESTROY_OPTIONS=-f reaches zfs destroy --------------------------------


def test_destroy_options_f_is_passed_to_zfs_destroy(make_volume, tmp_path):
    name = make_volume()
    dataset = f"{PARENT}/{name}"
    run(["zfs", "snapshot", f"{dataset}@2026-11-01"])
    conf = write_config(tmp_path / "force.conf", f"ZFS_PARENT={PARENT}\nEXTP_DESTROY=-f\nDEBUG=yes\n")
    result = ok("remove", name, conf)
    assert f"run: zfs destroy -r -f {dataset}\n" in result.stderr, result.stderr
    assert dataset not in zfs_state() and f"{dataset}@2026-11-01" not in zfs_state()


# -- 6. a snapshot call may only make this volume's own export copy ------------


def test_snapshot_refuses_another_volumes_export_copy(make_volume):
    victim, other = make_volume(), make_volume()
    victim_copy = f"{PARENT}/{victim}.snap"
    ok("snapshot", victim, VOL_SNAPSHOT_NAME=f"{victim}.snap", VOL_SNAPSHOT_SIZE=32)
    assert zfs_get(victim_copy, "origin") == f"{PARENT}/{victim}@ganeti-export"
    for wrong in (f"{victim}.snap", f"{other}x.snap", f"{other}.snap.snap", "unrelated.snap"):
        refused_without_change("snapshot", other, "VOL_SNAPSHOT_NAME", f"{other}.snap",
                               VOL_SNAPSHOT_NAME=wrong, VOL_SNAPSHOT_SIZE=32)
    assert zfs_get(victim_copy, "origin") == f"{PARENT}/{victim}@ganeti-export"
    # The name Ganeti derives still works.
    ok("snapshot", other, VOL_SNAPSHOT_NAME=f"{other}.snap", VOL_SNAPSHOT_SIZE=32)
    for name in (victim, other):
        ok("remove", f"{name}.snap")
