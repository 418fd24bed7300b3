"""LVM emulation on real ZFS: the diverted /sbin wrappers, run directly.

The emulated VG is gnt (LVM_VG=gnt), its LVs are zvols under tank/gnt. A
real LVM VG on the spare disk lives next to it the whole module long, and
Ganeti's own Python parsers read the wrappers' output.
"""

import os
import stat
import subprocess
import sys

import pytest

from guestlib import ganeti_lib, real_lvm_vg, run, wait_for_path
from packaginglib import COMMANDS, assert_diverted
from providerlib import destroy_if_exists, ensure_node_config, zfs_get, zfs_state

VG = "gnt"
LVM_PARENT = "tank/gnt"
PV = f"/dev/zvol/{LVM_PARENT}"
REAL_VG = "realvg"
MiB = 1 << 20
GANETI_LIB = ganeti_lib()


@pytest.fixture(scope="module", autouse=True)
def node_config():
    return ensure_node_config()


@pytest.fixture(scope="module")
def real_vg(spare_disk):
    """A real LVM VG with one LV on the spare disk, made through the wrappers."""
    with real_lvm_vg(spare_disk, REAL_VG, "reallv", "64m") as vg:
        yield vg


@pytest.fixture
def make_lv():
    made = []

    def make(name, size="64m"):
        made.append(name)
        run(["lvcreate", "-Wn", f"-L{size}", f"-n{name}", "-i1", VG, PV])
        return name

    yield make
    for name in made:
        run(["lvremove", "-f", f"{VG}/{name}.snap"], check=False)
        run(["lvremove", "-f", f"{VG}/{name}"], check=False)
        destroy_if_exists(f"{LVM_PARENT}/{name}.snap")
        destroy_if_exists(f"{LVM_PARENT}/{name}")


def zfs_processes(argv):
    """(stdout, the zfs/zpool command lines) of one wrapper run, from its debug log."""
    result = run(argv, env={**os.environ, "GANETI_ZFS_DEBUG": "1"})
    runs = [line.partition("debug: run: ")[2] for line in result.stderr.splitlines()
            if "debug: run: zfs" in line or "debug: run: zpool" in line]
    return result.stdout, runs


def lv_line(name, fields="vg_name,lv_name,lv_size,lv_attr"):
    return run(["lvs", "--noheadings", "--units=m", "--nosuffix", "--separator=|", f"-o{fields}", f"{VG}/{name}"]).stdout.strip()


def test_wrappers_replace_diverted_lvm_commands():
    # Every command Ganeti runs (docs/ganeti-contract.md) is among them.
    assert {"lvs", "vgs", "pvs", "lvcreate", "lvremove", "lvrename", "lvchange", "lvextend",
            "pvchange", "vgreduce"} <= set(COMMANDS)
    assert_diverted("new")
    assert any("ganeti-extstorage-zfs" in name for name in os.listdir("/usr/lib/udev/rules.d"))


def test_real_vg_passes_through_unchanged(real_vg):
    for argv in (["lvs", real_vg], ["vgs", "-o", "vg_name,vg_size,lv_count", real_vg], ["pvs", "/dev/vdd"],
                 ["lvs", "--noheadings", "-o", "lv_name,lv_attr", f"{real_vg}/reallv"], ["lvs", "nosuchvg"]):
        ours = run(argv, check=False)
        real = run(["/sbin/lvm", *argv], check=False)
        assert (ours.returncode, ours.stdout) == (real.returncode, real.stdout), argv
    # A change to the real VG is LVM's: extend, tag, rename, remove a second LV.
    run(["lvcreate", "-Wn", "-L8m", "-ntmp", real_vg])
    run(["lvextend", "-L+8m", f"{real_vg}/tmp"])
    run(["lvchange", "--addtag", "t1", f"/dev/{real_vg}/tmp"])
    run(["lvrename", real_vg, "tmp", "tmp2"])
    assert run(["/sbin/lvm", "lvs", "--noheadings", "-o", "lv_name,lv_size,lv_tags", "--units=m", f"{real_vg}/tmp2"]).stdout.split() == [
        "tmp2", "16.00m", "t1"]
    run(["lvremove", "-f", f"{real_vg}/tmp2"])


def test_listing_every_vg_shows_real_rows_then_ours(real_vg, make_lv):
    make_lv("both.disk0")
    out = run(["lvs", "--noheadings", "--separator=|", "-ovg_name,lv_name"]).stdout.split()
    assert out.index(f"{real_vg}|reallv") < out.index(f"{VG}|both.disk0")
    vgs = run(["vgs", "--noheadings", "-o", "name"]).stdout.split()
    assert vgs.index(real_vg) < vgs.index(VG) == len(vgs) - 1
    # Ganeti's node verify names every VG: the real tool gets only its own.
    both = run(["lvs", "--noheadings", "--separator=|", "-ovg_name,lv_name", real_vg, VG]).stdout.split()
    assert f"{real_vg}|reallv" in both and f"{VG}|both.disk0" in both
    pvs = run(["pvs", "--noheadings", "-o", "pv_name,vg_name"]).stdout.split()
    assert pvs[-2:] == [PV, VG] and pvs[pvs.index("/dev/vdd") + 1] == real_vg


def test_lvcreate_makes_a_reserved_zvol_with_a_device_link(make_lv):
    before = zfs_state()
    make_lv("a.disk0", "100m")  # rounded up to 4 MiB extents, as LVM does
    dataset = f"{LVM_PARENT}/a.disk0"
    assert int(zfs_get(dataset, "volsize")) == 100 * MiB
    assert zfs_get(dataset, "ganeti-zfs:owner") == "lvm"
    assert zfs_get(dataset, "refreservation") != "none"  # not sparse: the VG's free space is true
    link = f"/dev/{VG}/a.disk0"
    assert stat.S_ISBLK(os.stat(link).st_mode)
    assert os.path.realpath(link) == os.path.realpath(f"/dev/zvol/{dataset}")
    assert set(zfs_state()) - set(before) == {dataset}
    vg_name, lv, size, attr = lv_line("a.disk0").split("|")
    assert (vg_name, lv, size) == (VG, "a.disk0", "100.00") and attr.startswith("-wi-a")
    make_lv("b.disk0", "6m")
    assert lv_line("b.disk0").split("|")[2] == "8.00"


def test_open_flag_follows_the_real_device(make_lv):
    make_lv("open.disk0")
    assert lv_line("open.disk0", "lv_attr") == "-wi-a-----"
    with open(f"/dev/{VG}/open.disk0", "rb"):
        assert lv_line("open.disk0", "lv_attr") == "-wi-ao----"
    assert lv_line("open.disk0", "lv_attr") == "-wi-a-----"


def test_tags_and_activation(make_lv):
    make_lv("t.disk0")
    path = f"/dev/{VG}/t.disk0"
    run(["lvchange", "--addtag", "originstname+inst1.example.com", path])
    run(["lvchange", "--addtag", "second", path])
    assert run(["lvs", "-o", "tags", "--noheadings", "--nosuffix", path]).stdout.strip() == "originstname+inst1.example.com,second"
    run(["lvchange", "--deltag", "originstname+inst1.example.com", "--deltag", "second", path])
    assert run(["lvs", "-o", "tags", "--noheadings", "--nosuffix", path]).stdout.strip() == ""
    run(["lvchange", "-an", path])
    assert not os.path.exists(path) and lv_line("t.disk0", "lv_attr,lv_kernel_major") == "-wi-------|-1"
    run(["lvchange", "-ay", path])
    assert stat.S_ISBLK(os.stat(path).st_mode) and lv_line("t.disk0", "lv_attr") == "-wi-a-----"


def test_udev_rule_makes_the_link_as_at_boot(make_lv):
    make_lv("boot.disk0")
    # lvcreate returns once the link is there; later events of the new zvol may
    # still be queued (Linux 6.9+ adds zvol disks from a workqueue: OpenZFS commit
    # 49f3ce3385), and one of them would make the link again.
    run(["udevadm", "settle", "--timeout=60"])
    link = f"/dev/{VG}/boot.disk0"
    device = os.path.realpath(link)
    os.unlink(link)
    assert lv_line("boot.disk0", "lv_attr") == "-wi-------"
    # What the kernel announces when the pool is imported at boot.
    run(["udevadm", "trigger", "--action=add", device])
    run(["udevadm", "settle", "--timeout=60"])
    assert os.path.islink(link) and os.path.realpath(link) == device
    assert lv_line("boot.disk0", "lv_attr") == "-wi-a-----"


def test_lvextend_test_changes_nothing_and_real_extend_grows(make_lv):
    make_lv("g.disk0", "64m")
    before = zfs_state()
    run(["lvextend", "-L", "+65536k", "--test", "--alloc", "contiguous", f"/dev/{VG}/g.disk0"])
    assert zfs_state() == before
    run(["lvextend", "-L", "+65536k", "--alloc", "contiguous", f"/dev/{VG}/g.disk0"])
    assert int(zfs_get(f"{LVM_PARENT}/g.disk0", "volsize")) == 128 * MiB
    run(["lvextend", "-L", "256m", f"{VG}/g.disk0"])
    assert int(zfs_get(f"{LVM_PARENT}/g.disk0", "volsize")) == 256 * MiB
    output = subprocess.run(["blockdev", "--getsize64", f"/dev/{VG}/g.disk0"], capture_output=True, text=True).stdout
    assert int(output) == 256 * MiB


def test_snapshot_rename_and_remove_with_clones(make_lv):
    make_lv("s.disk0")
    with open(f"/dev/{VG}/s.disk0", "r+b") as device:
        device.write(b"origin data")
        device.flush()
        os.fsync(device.fileno())
    run(["lvcreate", "-L64m", "-s", "-ns.disk0.snap", f"/dev/{VG}/s.disk0"])
    snap_path = wait_for_path(f"/dev/{VG}/s.disk0.snap")
    with open(snap_path, "rb") as device:
        assert device.read(11) == b"origin data"
    rows = [line.strip().split("|") for line in run(
        ["lvs", "--noheadings", "--separator=|", "-olv_name,lv_attr,origin", VG]).stdout.splitlines()]
    attrs = {row[0]: row[1] for row in rows}
    assert attrs["s.disk0"].startswith("o") and attrs["s.disk0.snap"].startswith("s")
    # Renaming the origin keeps its snapshot LV working.
    run(["lvrename", VG, "s.disk0", "s2.disk0"])
    assert not os.path.exists(f"/dev/{VG}/s.disk0") and os.path.exists(f"/dev/{VG}/s2.disk0")
    assert lv_line("s.disk0.snap", "lv_name,origin") == "s.disk0.snap|s2.disk0"
    run(["lvrename", f"{VG}/s2.disk0", f"{VG}/s.disk0"])
    # Removing the snapshot LV removes its ZFS snapshot too.
    run(["lvremove", "-f", f"{VG}/s.disk0.snap"])
    names = set(zfs_state())
    assert f"{LVM_PARENT}/s.disk0.snap" not in names and f"{LVM_PARENT}/s.disk0@s.disk0.snap" not in names
    # Removing an origin takes its snapshot LVs with it, as lvremove -f does.
    run(["lvcreate", "-L64m", "-s", "-ns.disk0.snap", f"{VG}/s.disk0"])
    run(["lvremove", "-f", f"{VG}/s.disk0"])
    assert not [name for name in zfs_state() if "s.disk0" in name]
    assert not os.path.lexists(f"/dev/{VG}/s.disk0.snap")


def test_ext_volumes_never_appear_as_lvs(make_lv):
    # The original tool used one dataset for both: an ext volume right in LVM_PARENT.
    run(["zfs", "create", "-V", "64M", "-o", "ganeti-zfs:owner=ext", f"{LVM_PARENT}/x.ext.disk0"])
    run(["zfs", "create", "-V", "64M", f"{LVM_PARENT}/foreign"])
    try:
        make_lv("mine.disk0")
        names = run(["lvs", "--noheadings", "-o", "lv_name", VG]).stdout.split()
        assert "mine.disk0" in names and "x.ext.disk0" not in names and "foreign" not in names
        run(["udevadm", "settle", "--timeout=60"])
        assert not os.path.lexists(f"/dev/{VG}/x.ext.disk0") and not os.path.lexists(f"/dev/{VG}/foreign")
        result = run(["lvremove", "-f", f"{VG}/x.ext.disk0"], check=False)
        assert result.returncode == 5 and "Failed to find" in result.stderr
        assert f"{LVM_PARENT}/x.ext.disk0" in zfs_state()
    finally:
        destroy_if_exists(f"{LVM_PARENT}/x.ext.disk0")
        destroy_if_exists(f"{LVM_PARENT}/foreign")


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["lvcreate", "-L64m", "-nbad+name", VG], "invalid"),
        (["lvcreate", "-L99999g", "-nhuge", VG], "insufficient free space"),
        (["lvcreate", "-L64m", "-nx", VG, "/dev/vdz"], "not found in Volume Group"),
        (["lvremove", "-f", f"{VG}/nosuch"], "Failed to find"),
        (["lvremove", "-f", VG], "Refusing to remove every LV"),
        (["lvextend", "-L", "+4m", f"{VG}/nosuch"], "Failed to find"),
        (["lvextend", "-r", "-L+4m", f"{VG}/x"], "-r"),
        (["lvrename", VG, "nosuch", "other"], "Failed to find"),
        (["lvchange", "--addtag", "bad,tag", f"{VG}/x"], "invalid"),
        (["lvs", "-o", "lv_name,bogus", VG], "Unrecognised field"),
        (["vgs", "--units", "q", VG], "Invalid units"),
        (["lvremove", "-f", f"{VG}/a", f"{REAL_VG}/b"], "cannot handle"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(argv, fragment):
    before = zfs_state()
    result = run(argv, check=False)
    assert result.returncode in (3, 5), result
    assert len(result.stderr.splitlines()) == 1 and fragment in result.stderr, result.stderr
    assert zfs_state() == before


def test_listings_run_one_zfs_process_at_any_number_of_lvs(make_lv):
    for count in (1, 6):
        for index in range(count):
            if not os.path.exists(f"/dev/{VG}/n{index}.disk0"):
                make_lv(f"n{index}.disk0", "8m")
        # (argv, depth): Ganeti's vgs and pvs need the parent dataset only
        # (-d 0); the LV list (-d 1) only for LVs and the VG's LV counts.
        for argv, depth in (
            (["lvs", "--noheadings", "--separator=|", "--units=k", "--nosuffix",
              "-ovg_name,lv_name,lv_attr,lv_kernel_major,lv_kernel_minor,vg_extent_size,stripes,devices", VG], "1"),
            (["vgs", "--noheadings", "--nosuffix", "--units=m", "--unbuffered", "--separator=|",
              "-ovg_name,vg_free,vg_attr,vg_size", VG], "0"),
            (["pvs", "--noheadings", "--nosuffix", "--units=m", "--unbuffered", "--separator=|",
              "-opv_name,vg_name,pv_free,pv_attr,pv_size,pv_name", PV], "0"),
            (["vgs", "--noheadings", "-o", "vg_name,lv_count", VG], "1"),
        ):
            _output, runs = zfs_processes(argv)
            assert len(runs) == 1, (argv, runs)
            words = runs[0].split()
            assert words[:2] == ["zfs", "list"] and words[-1] == LVM_PARENT, runs
            assert words[words.index("-d") + 1] == depth and "-r" not in words, (argv, runs)
        # The LV count still comes from the LV list (snapshot LVs, lv_attr s..., not counted).
        attrs = run(["lvs", "--noheadings", "-o", "lv_attr", VG]).stdout.split()
        lv_count = len([attr for attr in attrs if not attr.startswith("s")])
        assert run(["vgs", "--noheadings", "-o", "lv_count", VG]).stdout.split() == [str(lv_count)]


def test_vg_numbers_are_the_parent_datasets(make_lv):
    make_lv("num.disk0", "128m")
    # ZFS frees space in the background after earlier destroys: compare a
    # vgs taken between two equal zfs readings.
    for _attempt in range(20):
        before = [int(zfs_get(LVM_PARENT, prop)) for prop in ("used", "available")]
        name, free, attr, size = run(["vgs", "--noheadings", "--nosuffix", "--units=b", "--separator=|",
                                      "-ovg_name,vg_free,vg_attr,vg_size", VG]).stdout.strip().split("|")
        if [int(zfs_get(LVM_PARENT, prop)) for prop in ("used", "available")] == before:
            break
    used, available = before
    assert (name, attr) == (VG, "wz--n-")
    assert int(size) == used + available and int(free) == available


def test_repair_storage_commands(make_lv):
    out = run(["vgreduce", "--removemissing", VG]).stdout + run(["vgs", "--noheadings", "--nosuffix", VG]).stdout
    assert "Couldn't find device with uuid" not in out
    run(["pvchange", "--allocatable", "n", PV])
    try:
        assert run(["pvs", "--noheadings", "-o", "pv_attr", PV]).stdout.strip() == "---"
        result = run(["lvcreate", "-L8m", "-nnoalloc", VG], check=False)
        assert result.returncode == 5 and "not allocatable" in result.stderr
    finally:
        run(["pvchange", "-x", "y", PV])
    assert run(["pvs", "--noheadings", "-o", "pv_attr", PV]).stdout.strip() == "a--"


def test_ganeti_own_parsers_read_the_wrappers(make_lv, real_vg):
    """Ganeti's own Python code runs our wrappers through its RunCmd and parses them."""
    make_lv("parse.disk0")
    run(["lvchange", "--addtag", "originstname+inst1", f"/dev/{VG}/parse.disk0"])
    script = f"""
import sys
sys.path.insert(0, {GANETI_LIB!r})
from ganeti import backend, utils
from ganeti.storage import bdev, container
cache = bdev.LogicalVolume.GetLvGlobalInfo()
key = "/dev/{VG}/parse.disk0"
assert key in cache, sorted(cache)
status, major, minor, pe_size, stripes, pv_names = cache[key]
assert status[4] == "a" and pe_size == 4096 and stripes == 1 and pv_names == [{PV!r}], cache[key]
lv = bdev.LogicalVolume(("{VG}", "parse.disk0"), [], 64, {{}}, {{}})
assert lv.attached and lv.dev_path == key and lv.pv_names == [{PV!r}]
(free, size, name), = bdev.LogicalVolume.GetVGInfo(["{VG}"], False)
assert name == "{VG}" and size >= 20480 and 0 <= free <= size
pvs = bdev.LogicalVolume.GetPVInfo(["{VG}"])
assert [pv.name for pv in pvs] == [{PV!r}] and pvs[0].IsAllocatable()
vgs = utils.ListVolumeGroups()
assert "{VG}" in vgs and "{REAL_VG}" in vgs, vgs
volumes = backend.GetVolumeList(["{VG}", "{REAL_VG}"])
assert volumes["{VG}/parse.disk0"][0] == "64.00" and "{REAL_VG}/reallv" in volumes, volumes
listed = backend.NodeVolumes()
assert any(v["name"] == "parse.disk0" and v["dev"] == {PV!r} and v["vg"] == "{VG}" for v in listed), listed
rows = container.LvmVgStorage().List("{VG}", ["name", "size", "used", "free", "allocatable"])
assert rows[0][0] == "{VG}" and rows[0][4] is True, rows
rows = container.LvmPvStorage().List({PV!r}, ["name", "size", "used", "free", "allocatable"])
assert rows[0][0] == {PV!r} and rows[0][4] is True, rows
print("ok")
"""
    result = run([sys.executable, "-c", script], env={**os.environ, "LC_ALL": "C"})
    assert result.stdout.strip() == "ok"
