"""The LVM emulation next to real lvm2 (issue #16): what /sbin/lvm does for
a real VG on the spare disk, our wrappers do for the emulated VG gnt, and a
listing of every VG always keeps lvm2's answer for the real one.
"""

import ctypes
import json
import os
import struct
import subprocess
import sys

import pytest

from guestlib import real_lvm_vg, run, wait_for_path, zfs_list_all
from providerlib import destroy_if_exists, ensure_node_config, udev_settle, write_config, zfs_state
from packaginglib import lvm2_link

VG = "gnt"
LVM_PARENT = "tank/gnt"
REAL_VG = "fidvg"
LVM = "/sbin/lvm"  # lvm2 itself: the diverted /sbin/lvs etc. are ours


@pytest.fixture(scope="module", autouse=True)
def node_config():
    return ensure_node_config()


@pytest.fixture(scope="module")
def real_vg(spare_disk):
    with real_lvm_vg(spare_disk, REAL_VG, "keep", "8m") as vg:
        yield vg


@pytest.fixture
def lvs_made():
    """Emulated and real LVs made by a test, removed (with -f) after it."""
    made = []

    def make(vg, name, size="8m"):
        run(["lvcreate", "-Wn", f"-L{size}", f"-n{name}", vg])
        made.append((vg, name))
        udev_settle()  # udev's probe of the new device holds it open for a moment
        return f"{vg}/{name}"

    yield make
    for vg, name in reversed(made):
        run(["lvremove", "-f", f"{vg}/{name}"], check=False)
        if vg == VG:
            destroy_if_exists(f"{LVM_PARENT}/{name}")


def ask(argv, answers=None):
    """A command with `answers` on stdin (None: /dev/null, as from cron or Ganeti)."""
    if answers is None:
        return run(argv, check=False)
    return run(argv, check=False, stdin=None, input=answers)


def same_text(real, ours, real_lv, our_lv):
    return real.replace(f"{REAL_VG}/{real_lv}", "<lv>").replace(f'"{real_lv}"', '"<lv>"') == \
        ours.replace(f"{VG}/{our_lv}", "<lv>").replace(f'"{our_lv}"', '"<lv>"')


# -- lvremove -----------------------------------------------------------------------


def test_lvremove_without_f_asks_and_without_an_answer_keeps_the_lv(real_vg, lvs_made):
    lvs_made(REAL_VG, "q")
    lvs_made(VG, "q.disk0")
    real = ask([LVM, "lvremove", f"{REAL_VG}/q"])
    ours = ask(["lvremove", f"{VG}/q.disk0"])
    assert ours.returncode == real.returncode == 5, (real, ours)
    assert "Do you really want to remove active logical volume" in real.stderr
    assert same_text(real.stderr, ours.stderr, "q", "q.disk0"), (real.stderr, ours.stderr)
    assert (ours.stdout, real.stdout) == ("", "")
    assert f"{LVM_PARENT}/q.disk0" in zfs_state()
    # A "y" on stdin (a pipe, no terminal) is a yes for lvm2, and for us.
    real = ask([LVM, "lvremove", f"{REAL_VG}/q"], "y\n")
    ours = ask(["lvremove", f"{VG}/q.disk0"], "y\n")
    assert ours.returncode == real.returncode == 0, (real, ours)
    assert same_text(real.stdout, ours.stdout, "q", "q.disk0"), (real.stdout, ours.stdout)
    assert same_text(real.stderr, ours.stderr, "q", "q.disk0"), (real.stderr, ours.stderr)
    assert f"{LVM_PARENT}/q.disk0" not in zfs_state()


def test_lvremove_of_an_origin_asks_as_lvm2_does(real_vg, lvs_made):
    lvs_made(REAL_VG, "o")
    run([LVM, "lvcreate", "-s", "-L8m", "-nos", f"{REAL_VG}/o"])
    lvs_made(VG, "o.disk0")
    run(["lvcreate", "-s", "-L8m", "-no.disk0.snap", f"{VG}/o.disk0"])
    udev_settle()
    try:
        before = zfs_state()
        real = ask([LVM, "lvremove", f"{REAL_VG}/o"])
        ours = ask(["lvremove", f"{VG}/o.disk0"])
        assert ours.returncode == real.returncode == 5, (real, ours)
        assert "origin logical volume" in real.stderr
        assert same_text(real.stderr, ours.stderr, "o", "o.disk0"), (real.stderr, ours.stderr)
        assert zfs_state() == before
    finally:
        run([LVM, "lvremove", "-f", f"{REAL_VG}/os"], check=False)
        run(["lvremove", "-f", f"{VG}/o.disk0.snap"], check=False)


def test_lvremove_f_refuses_an_origin_cloned_outside_before_destroying_anything(lvs_made):
    lvs_made(VG, "c.disk0")
    run(["lvcreate", "-s", "-L8m", "-nc.disk0.snap", f"{VG}/c.disk0"])
    run(["zfs", "snapshot", f"{LVM_PARENT}/c.disk0@kept"])
    run(["zfs", "clone", f"{LVM_PARENT}/c.disk0@kept", "tank/outside-clone"])
    udev_settle()
    try:
        before = zfs_state()
        result = run(["lvremove", "-f", f"{VG}/c.disk0"], check=False)
        assert result.returncode == 5 and len(result.stderr.splitlines()) == 1, result
        assert "tank/outside-clone" in result.stderr and "not removed" in result.stderr
        assert zfs_state() == before  # the snapshot LV is still there too
        assert os.path.exists(f"/dev/{VG}/c.disk0.snap")
    finally:
        destroy_if_exists("tank/outside-clone")
        run(["lvremove", "-f", f"{VG}/c.disk0.snap"], check=False)


# -- no leftovers ---------------------------------------------------------------------


def test_a_renamed_snapshot_lv_leaves_no_snapshot_behind(lvs_made):
    lvs_made(VG, "r.disk0")
    run(["lvcreate", "-s", "-L8m", "-nr.disk0.snap", f"{VG}/r.disk0"])
    udev_settle()
    run(["lvrename", VG, "r.disk0.snap", "r.disk0.copy"])
    assert wait_for_path(f"/dev/{VG}/r.disk0.copy")  # and udev settled
    run(["lvremove", "-f", f"{VG}/r.disk0.copy"])
    snapshots = [name for name in zfs_state() if name.startswith(f"{LVM_PARENT}/r.disk0@")]
    assert snapshots == [], snapshots
    # Ganeti's export takes <lv>.snap again: nothing is in its way.
    run(["lvcreate", "-s", "-L8m", "-nr.disk0.snap", f"{VG}/r.disk0"])
    udev_settle()
    run(["lvremove", "-f", f"{VG}/r.disk0.snap"])


# -- listings of every VG -------------------------------------------------------------

# argv -> whether we answer for the emulated VG (our rows follow lvm2's
# output) or not (lvm2's output alone, one line on stderr, status 5).
LISTINGS = [
    (["lvs"], True),
    (["lvs", "--noheadings", "--separator=|", "-o", "vg_name,lv_name,lv_attr", "--units", "m"], True),
    (["vgs"], True),
    (["vgs", "--reportformat", "basic", "-o", "vg_name,vg_free"], True),
    (["pvs", "-o", "pv_name,vg_name,pv_attr"], True),
    (["lvs", "-o", "lv_name,snap_percent"], False),
    (["lvs", "-o", "+lv_time"], False),
    (["pvs", "-o", "pv_name,pe_start"], False),
    (["lvs", "--units", "4m"], False),
    (["vgs", "--reportformat", "json"], False),
    (["lvs", "-S", "lv_name=keep"], False),
    (["lvs", "-O", "lv_size"], False),
    (["lvs", "--segments"], False),
    (["pvs", "--segments"], False),
    (["vgs", "--rows"], False),
    (["lvs", "--binary", "-o", "lv_name,lv_active"], False),
]


@pytest.mark.parametrize("argv,answered", LISTINGS)
def test_a_listing_of_every_vg_keeps_lvm2s_answer(real_vg, lvs_made, argv, answered):
    if not os.path.exists(f"/dev/{VG}/list.disk0"):
        lvs_made(VG, "list.disk0")
    real = run([LVM, *argv], check=False)
    ours = run(argv, check=False)
    # Every argv lists the real VG, its LV "keep" or its PV (not always all of them).
    assert real.returncode == 0 and any(word in real.stdout for word in (REAL_VG, "keep", "/dev/vdd")), real
    assert ours.stdout.startswith(real.stdout), (real.stdout, ours.stdout)
    extra_err = [line for line in ours.stderr.splitlines() if line not in real.stderr.splitlines()]
    if answered:
        assert ours.returncode == 0 and extra_err == [], ours
        assert VG in ours.stdout[len(real.stdout):]
    else:
        assert ours.stdout == real.stdout
        assert ours.returncode == 5 and len(extra_err) == 1 and f"volume group {VG} not reported" in extra_err[0], ours


@pytest.mark.parametrize("argv", [["lvs", "--no-such-option"], ["vgs", "--version"], ["pvs", "--help"]])
def test_what_lvm2_answers_alone_is_passed_on_whole(real_vg, argv):
    real = run([LVM, *argv], check=False)
    ours = run(argv, check=False)
    assert (ours.returncode, ours.stdout, ours.stderr) == (real.returncode, real.stdout, real.stderr)


def test_a_zfs_timeout_costs_only_the_emulated_rows(real_vg, tmp_path):
    text = open("/etc/ganeti/extstorage-zfs.conf").read() + "ZFS_TIMEOUT=0.001\n"
    env = {**os.environ, "GANETI_ZFS_CONFIG": str(write_config(tmp_path / "slow.conf", text))}
    real = run([LVM, "vgs"], check=False)
    ours = run(["vgs"], check=False, env=env)
    assert ours.stdout == real.stdout and REAL_VG in ours.stdout, ours
    assert ours.returncode == 5 and len(ours.stderr.splitlines()) == 1 and "not reported" in ours.stderr, ours


# -- "open" from the kernel's view ------------------------------------------------------

IN_OPEN = 0x20


def opens_of(device, action):
    """How often `device` was opened while `action` ran (inotify IN_OPEN on the node)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK)
    assert fd >= 0 and libc.inotify_add_watch(fd, device.encode(), IN_OPEN) >= 0
    try:
        action()
        count = 0
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            data = b""
        offset = 0
        while offset < len(data):
            _wd, mask, _cookie, length = struct.unpack_from("iIII", data, offset)
            count += bool(mask & IN_OPEN)
            offset += 16 + length
        return count
    finally:
        os.close(fd)


def attr(lv):
    return run(["lvs", "--noheadings", "-o", "lv_attr", f"{VG}/{lv}"]).stdout.strip()


def test_listing_never_opens_an_lv(lvs_made):
    lvs_made(VG, "idle.disk0")
    udev_settle()
    device = os.path.realpath(f"/dev/{VG}/idle.disk0")

    def list_twenty_times():
        for _ in range(20):
            run(["lvs", "--noheadings", "-o", "lv_name,lv_attr", VG])

    assert opens_of(device, list_twenty_times) == 0
    # A process holding it exclusively is undisturbed, and seen.
    holder = subprocess.Popen([sys.executable, "-c", f"import os, sys, time; os.open({device!r}, os.O_RDONLY | os.O_EXCL); "
                               "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        for _ in range(20):
            assert attr("idle.disk0")[5] == "o"
        assert holder.poll() is None
    finally:
        holder.kill()
        holder.wait()
    assert attr("idle.disk0")[5] == "-"


def test_an_lv_held_by_device_mapper_is_open(lvs_made):
    # (The guest has no loop devices; loop's backing_file is read as in tests/unit/test_lvm_fidelity.py.)
    lvs_made(VG, "dm.disk0")
    udev_settle()
    device = os.path.realpath(f"/dev/{VG}/dm.disk0")
    sectors = int(run(["blockdev", "--getsz", device]).stdout)
    run(["dmsetup", "create", "fidelity-dm"], input=f"0 {sectors} linear {device} 0\n", stdin=None)
    try:
        assert os.listdir(f"/sys/block/{os.path.basename(device)}/holders")  # the kernel's view
        assert attr("dm.disk0")[5] == "o"
    finally:
        run(["dmsetup", "remove", "fidelity-dm"])
    assert attr("dm.disk0")[5] == "-"


# -- LVM_VG names -------------------------------------------------------------------------


def test_an_lvm_vg_named_like_a_real_vg_steps_aside(real_vg, tmp_path):
    text = open("/etc/ganeti/extstorage-zfs.conf").read().replace("LVM_VG=gnt", f"LVM_VG={REAL_VG}")
    env = {**os.environ, "GANETI_ZFS_CONFIG": str(write_config(tmp_path / "clash.conf", text))}
    for argv in (["lvs", REAL_VG], ["vgs"], ["lvs", "-o", "lv_name", f"{REAL_VG}/keep"]):
        real = run([LVM, *argv], check=False)
        ours = run(argv, check=False, env=env)
        assert (ours.returncode, ours.stdout) == (real.returncode, real.stdout), argv
        extra = [line for line in ours.stderr.splitlines() if line not in real.stderr.splitlines()]
        assert len(extra) == 1 and f"real volume group {REAL_VG} exists" in extra[0], ours.stderr


def test_an_lvm_vg_named_like_a_dev_directory_is_refused(tmp_path):
    text = open("/etc/ganeti/extstorage-zfs.conf").read().replace("LVM_VG=gnt", "LVM_VG=mapper")
    env = {**os.environ, "GANETI_ZFS_CONFIG": str(write_config(tmp_path / "mapper.conf", text))}
    result = run(["lvs", "mapper"], check=False, env=env)
    real = run([LVM, "lvs", "mapper"], check=False)
    assert (result.returncode, result.stdout) == (real.returncode, real.stdout)
    assert "LVM emulation of VG mapper is off" in result.stderr and "/dev/mapper" in result.stderr


# -- display and scan commands, vgchange, lvresize ----------------------------------------

NEW_COMMANDS = ("lvscan", "lvdisplay", "vgdisplay", "pvscan", "vgchange", "lvresize")


def extra_stderr(real, ours):
    return [line for line in ours.stderr.splitlines() if line not in real.stderr.splitlines()]


@pytest.mark.parametrize("command", NEW_COMMANDS)
def test_the_new_wrappers_are_diverted_and_help_is_lvm2s(command):
    assert os.readlink(lvm2_link(command, "new")) == "lvm"
    real = run([LVM, command, "--help"], check=False)
    ours = run([command, "--help"], check=False)
    assert (ours.returncode, ours.stdout, ours.stderr) == (real.returncode, real.stdout, real.stderr)


@pytest.mark.parametrize("argv", [["vgdisplay", REAL_VG], ["vgdisplay", "-c", REAL_VG], ["lvdisplay", "-m", f"{REAL_VG}/keep"],
                                  ["lvdisplay", "--no-such-option", REAL_VG]])
def test_a_display_command_naming_a_real_vg_is_lvm2s_alone(real_vg, argv):
    real = run([LVM, *argv], check=False)
    ours = run(argv, check=False)
    # lvm2's answer to a bad option does not echo the VG: its usage status (3) instead.
    assert real.returncode == 3 if "--no-such-option" in argv else REAL_VG in real.stdout, real
    assert (ours.returncode, ours.stdout, ours.stderr) == (real.returncode, real.stdout, real.stderr)


@pytest.mark.parametrize("argv", [["vgdisplay"], ["vgdisplay", "-c"], ["lvdisplay"], ["lvdisplay", "-m"], ["pvscan"],
                                  ["pvscan", "-s"], ["lvscan", "-a"]])
def test_a_display_of_everything_is_lvm2s_and_says_where_the_emulated_vg_is(real_vg, lvs_made, argv):
    if not os.path.exists(f"/dev/{VG}/disp.disk0"):
        lvs_made(VG, "disp.disk0")
    real = run([LVM, *argv], check=False)
    ours = run(argv, check=False)
    assert real.returncode == 0 and (REAL_VG in real.stdout or "/dev/vdd" in real.stdout), real
    assert (ours.returncode, ours.stdout) == (real.returncode, real.stdout), (real, ours)
    extra = extra_stderr(real, ours)
    assert len(extra) == 1 and f"volume group {VG} is emulated" in extra[0] and " use " in extra[0], ours.stderr


@pytest.mark.parametrize("argv,use", [(["vgdisplay", VG], f"use vgs {VG}"), (["vgdisplay", "-c", f"/dev/{VG}"], f"use vgs {VG}"),
                                      (["lvdisplay", f"{VG}/x"], f"use lvs {VG}"), (["pvscan", f"/dev/zvol/{LVM_PARENT}"], "use pvs")])
def test_a_display_command_naming_the_emulated_vg_names_the_command_to_use(argv, use):
    ours = run(argv, check=False)
    assert ours.returncode == 5 and ours.stdout == "", ours
    assert len(ours.stderr.splitlines()) == 1 and use in ours.stderr, ours.stderr


def test_lvscan_shows_the_emulated_lvs_as_lvm2_shows_its_own(real_vg, lvs_made):
    run([LVM, "lvcreate", "-s", "-L8m", "-nkeepsnap", f"{REAL_VG}/keep"])
    lvs_made(VG, "scan.disk0")
    run(["lvcreate", "-s", "-L8m", "-nscan.disk0.snap", f"{VG}/scan.disk0"])
    udev_settle()
    try:
        real = run([LVM, "lvscan"])
        ours = run(["lvscan"])
        assert ours.stdout.startswith(real.stdout) and ours.stderr == real.stderr, (real, ours)
        lines = ours.stdout[len(real.stdout):].splitlines()
        real_lines = real.stdout.splitlines()
        assert lines, ours.stdout
        expected = [line.replace(f"'/dev/{REAL_VG}/keepsnap'", f"'/dev/{VG}/scan.disk0.snap'")
                    .replace(f"'/dev/{REAL_VG}/keep'", f"'/dev/{VG}/scan.disk0'")
                    for line in real_lines if f"/dev/{REAL_VG}/keep" in line]
        assert [line for line in lines if "/scan.disk0" in line] == expected, (real.stdout, ours.stdout)
        assert len(lines) == len(run(["lvs", "--noheadings", "-o", "lv_name", VG]).stdout.split())
    finally:
        run(["lvremove", "-f", f"{VG}/scan.disk0.snap"], check=False)
        run([LVM, "lvremove", "-f", f"{REAL_VG}/keepsnap"], check=False)


def test_vgchange_a_on_the_emulated_vg_is_lvchange_a_on_each_lv(real_vg, lvs_made):
    lvs_made(VG, "vgch.disk0")
    names = run(["lvs", "--noheadings", "-o", "lv_name", VG]).stdout.split()
    real = run([LVM, "vgchange", "-ay", REAL_VG])
    assert real.stdout == f'  1 logical volume(s) in volume group "{REAL_VG}" now active\n', real
    ours = run(["vgchange", "-ay", REAL_VG])  # a real VG: lvm2's, through our wrapper
    assert (ours.returncode, ours.stdout, ours.stderr) == (real.returncode, real.stdout, real.stderr)
    run(["lvchange", "-an", f"{VG}/vgch.disk0"])
    assert not os.path.exists(f"/dev/{VG}/vgch.disk0")
    ours = run(["vgchange", "-ay", VG])
    assert ours.stdout == f'  {len(names)} logical volume(s) in volume group "{VG}" now active\n', ours
    assert os.path.realpath(f"/dev/{VG}/vgch.disk0") == os.path.realpath(f"/dev/zvol/{LVM_PARENT}/vgch.disk0")
    # An open LV (this process holds it) keeps every link: nothing is deactivated.
    with open(f"/dev/{VG}/vgch.disk0", "rb"):
        ours = run(["vgchange", "-an", VG], check=False)
    assert ours.returncode == 5 and f"{VG}/vgch.disk0 in use" in ours.stderr, ours
    assert all(os.path.exists(f"/dev/{VG}/{name}") for name in names)


def test_lvresize_grows_an_emulated_lv_and_never_shrinks_it(lvs_made):
    lvs_made(VG, "rs.disk0")
    ours = run(["lvresize", "-L16m", f"{VG}/rs.disk0"], check=False)
    assert ours.returncode == 0 and "successfully resized" in ours.stdout, ours
    assert zfs_state()[f"{LVM_PARENT}/rs.disk0"]["volsize"] == str(16 << 20)
    for size in ("-L8m", "-L-4m"):
        ours = run(["lvresize", "-f", size, f"{VG}/rs.disk0"], check=False)
        assert ours.returncode == 3 and len(ours.stderr.splitlines()) == 1 and "not supported" in ours.stderr, ours
    assert zfs_state()[f"{LVM_PARENT}/rs.disk0"]["volsize"] == str(16 << 20)


# -- thick LVs and the scheduled snapshots (the policy in ganeti-zfs-lvm(8)) -------------

FILL_POOL = "fillpool"
FILL_VG = "fillvg"


def ganeti_vg_free(env):
    """vg_free in MiB, asked as Ganeti asks (lib/storage/bdev.py, LogicalVolume._GetVolumeInfo)."""
    out = run(["vgs", "--noheadings", "--nosuffix", "--units=m", "--unbuffered", "--separator=|",
               "-ovg_name,vg_free,vg_size", FILL_VG], env=env).stdout
    name, free, _size = out.strip().split("|")
    assert name == FILL_VG, out
    return float(free)


def write_random(path, mib):
    run(["dd", "if=/dev/urandom", f"of={path}", "bs=1M", f"count={mib}", "oflag=direct", "conv=fsync", "status=none"],
        timeout=1800)


def test_a_snapshot_of_a_thick_lv_lowers_vg_free_and_fails_alone_when_the_pool_is_short(tmp_path):
    # The pool's one vdev is a file on tank (the guest's /tmp is in RAM).
    run(["zfs", "create", "-o", "mountpoint=/var/tmp/fill-vdev", "tank/fill-vdev"])
    image = "/var/tmp/fill-vdev/fill.img"
    run(["truncate", "-s", "1G", image])
    run(["zpool", "create", "-O", "compression=off", FILL_POOL, image])
    conf = write_config(tmp_path / "fill.conf",
                        f"ZFS_PARENT={FILL_POOL}/ext\nLVM_VG={FILL_VG}\nLVM_PARENT={FILL_POOL}/lvm\nKEEP_DAILY=3\n")
    env = {**os.environ, "GANETI_ZFS_CONFIG": str(conf)}
    try:
        run(["zfs", "create", f"{FILL_POOL}/ext"])
        run(["zfs", "create", f"{FILL_POOL}/lvm"])
        empty = ganeti_vg_free(env)
        run(["lvcreate", "-Wn", "-L320m", "-nbig", FILL_VG], env=env)
        run(["lvcreate", "-Wn", "-L32m", "-nsmall", FILL_VG], env=env)
        udev_settle()
        created = ganeti_vg_free(env)
        assert empty - created >= 352, (empty, created)  # thick: the LVs' whole size is taken at once
        write_random(f"/dev/{FILL_VG}/big", 310)
        write_random(f"/dev/{FILL_VG}/small", 30)
        assert abs(ganeti_vg_free(env) - created) < 8  # writing into a thick LV takes nothing more

        def job(day):
            process = run(["ganeti-zfs", "snapshot", "--json", "--now", f"{day}T12:00:00Z"], check=False, env=env)
            return process, json.loads(process.stdout)

        process, result = job("2026-12-01")
        assert process.returncode == 0 and sorted(result["snapshotted"]) == [f"{FILL_POOL}/lvm/big", f"{FILL_POOL}/lvm/small"]
        after_first = ganeti_vg_free(env)
        # Each snapshot keeps the data written so far: ZFS reserves that much again
        # for the LV's next writes, and Ganeti sees it gone.
        assert created - after_first >= 330, (created, after_first)
        # New data in both; the big LV's next snapshot needs 310 MiB more than the pool has.
        write_random(f"/dev/{FILL_VG}/big", 310)
        write_random(f"/dev/{FILL_VG}/small", 30)
        process, result = job("2026-12-02")
        assert process.returncode == 1, process
        assert [failure["name"] for failure in result["failed"]] == [f"{FILL_POOL}/lvm/big@2026-12-02"], result
        assert "out of space" in result["failed"][0]["error"], result
        assert result["snapshotted"] == [f"{FILL_POOL}/lvm/small"], result
        volumes = zfs_list_all(root=FILL_POOL)
        assert volumes[f"{FILL_POOL}/lvm/big"]["volsize"] == str(320 << 20)  # the LV itself is untouched
        assert f"{FILL_POOL}/lvm/big@2026-12-02" not in volumes and f"{FILL_POOL}/lvm/small@2026-12-02" in volumes
    finally:
        run(["zpool", "destroy", "-f", FILL_POOL], check=False)
        run(["zfs", "destroy", "tank/fill-vdev"], check=False)
