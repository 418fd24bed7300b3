"""Upgrade from the original shell tool: a node set up by its README becomes a
package node, and nothing is lost (README.md, "Upgrading from the shell tool").

The original's code is not part of this repository; its footprint is built
here from the facts of its README and source (ganeti_zfs/upgrade.py sums
them up): a git tree in the provider directory with defaults.sh and a
per-host etc/node1.sh, lvm2's /sbin links replaced by links to its sbin/
scripts (README step 5), the cron.daily link (step 4); and Ganeti instances
whose zvols look exactly as the original leaves them: made through our
package, then stripped of every property the original would not have set,
with its date-named daily snapshots. Then `apt-get install` of the .deb,
and every point of the upgrade is checked with real Ganeti and real ZFS.

The steps depend on each other and run in file order. The module ends with
the package installed, the suite's node configuration back and the cluster
as it found it.
"""

import datetime
import os
import shutil
from pathlib import Path

import pytest

from guestlib import NODE_NAME, artifacts_dir, cluster_verify, run
from providerlib import NODE_CONFIG, ensure_node_config
from packaginglib import every_target, lvm2_link

import ganeti_zfs.lvm

PACKAGE = "ganeti-extstorage-zfs"
TREE = Path("/usr/share/ganeti/extstorage/zfs")
COPY = Path("/var/lib/ganeti-extstorage-zfs/original-tool")
CRON_LINK = Path("/etc/cron.daily/daily-block-snapshot")
PARENT = "tank/orig"  # EXTP_ZFS, from the per-host file
VG = "ffzgvg"  # EXTP_VG
COMMANDS = tuple(ganeti_zfs.lvm.COMMANDS)
EXT_INSTANCE = "orig-ext.example.com"
PLAIN_INSTANCE = "orig-plain.example.com"
REAL_VG = "origrealvg"
OLD_DAY = "2026-11-02"
# The day the original's cron "ran" today; the job below is run with its
# clock on that day (--now), so that a run across midnight cannot change it.
TODAY = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
TODAY_NOON = f"{TODAY}T12:00:00Z"
MiB = 1 << 20

# The original's shell files: per-host first, then defaults.sh (its idiom).
HOST_SH = 'EXTP_ZFS=tank/orig\n'
DEFAULTS_SH = (
    '# defaults for ganeti-extstorage-zfs\n'
    'test -z "$EXTP_ZFS" && EXTP_ZFS=tank/ganeti\n'
    'test -z "$EXTP_VG" && EXTP_VG=ffzgvg\n'
    'test -z "$EXTP_CREATE" && EXTP_CREATE="-s -b 4k -o compression=lz4"\n'
    'export PATH=/sbin:/usr/sbin:$PATH\n'
)
# Enough of its provider to be one (Ganeti runs attach and verify).
PROVIDER_SCRIPT = (
    '#!/bin/sh\n. "$(dirname "$0")/etc/$(hostname -s).sh" 2>/dev/null\n. "$(dirname "$0")/defaults.sh"\n'
    'case "$(basename "$0")" in\n'
    '  attach) echo "/dev/zvol/$EXTP_ZFS/$VOL_NAME" ;;\n'
    '  create) zfs create -V "${VOL_SIZE}M" $EXTP_CREATE "$EXTP_ZFS/$VOL_NAME" ;;\n'
    '  remove) zfs destroy -r "$EXTP_ZFS/$VOL_NAME" ;;\n'
    'esac\n'
)
# Its LVM wrappers: what lvm2's commands became, for real VGs too.
LVM_SCRIPT = '#!/bin/sh\necho "Error during parsing of command line" >&2\nexit 3\n'


def deb():
    (found,) = sorted(Path("/share/debs").glob(f"{PACKAGE}_*.deb"))
    return found


def apt_get(*args):
    return run(["apt-get", "-y", "-q", *args], timeout=900)


def zfs_get(name, prop, source=False):
    fields = "value,source" if source else "value"
    return run(["zfs", "get", "-H", "-p", "-o", fields, prop, name]).stdout.rstrip("\n")


def volumes_under(parent):
    out = run(["zfs", "list", "-H", "-o", "name", "-t", "volume", "-d", "1", parent]).stdout
    return [line.rpartition("/")[2] for line in out.split()]


def disk_of(suffix):
    (name,) = [name for name in volumes_under(PARENT) if name.endswith(suffix)]
    return name


def pattern(tag):
    return (tag.encode() * (MiB // len(tag) + 1))[:MiB]


def write(device, data):
    with open(device, "r+b", buffering=0) as file:
        file.write(data)
        os.fsync(file.fileno())


def read(device, size=MiB):
    with open(device, "rb", buffering=0) as file:
        return file.read(size)


def our_local_properties(dataset):
    out = run(["zfs", "get", "-H", "-o", "property,source", "all", dataset]).stdout
    return [line.split("\t")[0] for line in out.splitlines()
            if line.split("\t")[0].startswith("ganeti-zfs:") and line.split("\t")[1] == "local"]


def lay_original_footprint():
    """The tree, the /sbin links and the cron link of the original README."""
    (TREE / "etc").mkdir(parents=True, exist_ok=True)
    (TREE / "etc/defaults.sh").write_text(DEFAULTS_SH)
    (TREE / "etc/node1.sh").write_text(HOST_SH)
    os.symlink("etc/defaults.sh", TREE / "defaults.sh")
    for action in ("create", "attach", "detach", "remove", "grow", "setinfo", "verify"):
        (TREE / action).write_text(PROVIDER_SCRIPT)
        (TREE / action).chmod(0o755)
    (TREE / "parameters.list").write_text("")
    for directory, files in {"sbin": COMMANDS, "bin": ("list", "size", "snapshots", "adopt"),
                             "cron": ("daily-block-snapshot",), "install": ("README",), "t": ("1-create.t",),
                             ".git": ("HEAD", "config")}.items():
        (TREE / directory).mkdir(exist_ok=True)
        for name in files:
            (TREE / directory / name).write_text(LVM_SCRIPT if directory == "sbin" else f"# original {name}\n")
            (TREE / directory / name).chmod(0o755)
    for command in COMMANDS:
        run(["ln", "-s", "-f", str(TREE / "sbin" / command), f"/sbin/{command}"])
    run(["ln", "-sf", str(TREE / "bin/daily-block-snapshot"), "/etc/cron.daily/"])


@pytest.fixture(scope="module")
def upgraded(ganeti_cluster, spare_disk):
    """Instances made with the package, made to look like the original's, the
    package purged, the original's footprint laid, then the .deb installed."""
    saved_config = NODE_CONFIG.read_text()
    info = run(["gnt-cluster", "info"]).stdout
    saved_vg = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                     if line.strip().lower().startswith("- volume group name:")), "")
    run(["zfs", "create", "-p", PARENT])
    NODE_CONFIG.write_text(f"ZFS_PARENT={PARENT}\nLVM_VG={VG}\n")
    run(["gnt-cluster", "modify", f"--vg-name={VG}", "--enabled-disk-templates=ext,plain",
         "--ipolicy-disk-templates=ext,plain"], timeout=900)
    common = ["-o", "noop", "-B", "maxmem=128M,minmem=128M", "--net", "0:mode=bridged,link=gnt-br0",
              "-n", NODE_NAME, "--no-name-check", "--no-ip-check"]
    run(["gnt-instance", "add", "-t", "ext", "--disk", "0:size=128M,provider=zfs", *common, EXT_INSTANCE],
        timeout=900)
    run(["gnt-instance", "add", "-t", "plain", "--disk", "0:size=128M", *common, PLAIN_INSTANCE], timeout=900)
    ext = disk_of(".ext.disk0")
    (lv,) = [name for name in volumes_under(PARENT) if name.endswith(".disk0") and name != ext]
    # The real VG on the spare disk, served by lvm2 before and after.
    run(["pvcreate", "-ff", "-y", spare_disk])
    run(["vgcreate", REAL_VG, spare_disk])
    run(["lvcreate", "-Wn", "-L16m", "-nx", REAL_VG])
    run(["lvcreate", "-Wn", "-L16m", "-nkeep", REAL_VG])
    write(f"/dev/zvol/{PARENT}/{ext}", pattern("ext-data "))
    write(f"/dev/{VG}/{lv}", pattern("plain-data "))

    # As the original leaves them: no property of ours; its setinfo's ones.
    for name in (ext, lv):
        for prop in our_local_properties(f"{PARENT}/{name}"):
            run(["zfs", "inherit", prop, f"{PARENT}/{name}"])
    run(["zfs", "set", "ganeti:metadata=originstname+orig-ext", f"ganeti:originstname={EXT_INSTANCE}",
         f"{PARENT}/{ext}"])
    for day in (OLD_DAY, TODAY):
        run(["zfs", "snapshot", f"{PARENT}/{ext}@{day}"])
    run(["zfs", "snapshot", f"{PARENT}/{lv}@{OLD_DAY}"])
    run(["zfs", "create", "-s", "-V", "16M", f"{PARENT}/notganeti"])  # someone else's zvol
    run(["zfs", "create", f"{PARENT}/somefs"])

    apt_get("purge", PACKAGE)
    lay_original_footprint()
    install = apt_get("install", str(deb()))
    (artifacts_dir() / "upgrade-from-original-install.txt").write_text(install.stdout + install.stderr)
    yield {"ext": ext, "lv": lv, "install": install.stdout + install.stderr}

    # Leave the node as the suite expects it.
    for instance in (EXT_INSTANCE, PLAIN_INSTANCE):
        run(["gnt-instance", "remove", "-f", instance], check=False, timeout=900)
    run(["gnt-cluster", "modify", "--enabled-disk-templates=ext", "--ipolicy-disk-templates=ext",
         f"--vg-name={saved_vg}"], check=False, timeout=900)
    if run(["dpkg-query", "-W", "-f", "${Status}", PACKAGE], check=False).stdout != "install ok installed":
        apt_get("install", str(deb()))
    NODE_CONFIG.write_text(saved_config)
    ensure_node_config()
    run(["vgremove", "-f", REAL_VG], check=False)
    run(["pvremove", "-ff", "-y", spare_disk], check=False)
    run(["zfs", "destroy", "-r", PARENT], check=False)
    shutil.rmtree(COPY, ignore_errors=True)
    CRON_LINK.unlink(missing_ok=True)


def test_the_install_says_what_it_did_and_where_the_tree_is(upgraded):
    out = upgraded["install"]
    assert f"saved the original shell tool's tree {TREE} in {COPY}" in out
    assert f"carried ZFS_PARENT={PARENT} into {NODE_CONFIG}" in out
    assert f"carried LVM_VG={VG} into {NODE_CONFIG}" in out
    assert f"removed {CRON_LINK}" in out
    assert f"took over {PARENT}/{upgraded['ext']} (ext volume)" in out
    assert f"took over {PARENT}/{upgraded['lv']} (LV of volume group {VG})" in out
    assert f"left alone {PARENT}/notganeti: not a name Ganeti gives" in out


def test_lvm2_gets_its_links_back_before_the_diversions(upgraded):
    for command in COMMANDS:
        # What the diversion keeps as lvm2's file is lvm2's own link again.
        assert os.readlink(lvm2_link(command, "new")) == "lvm", command
    assert run(["lvs", "--noheadings", "-o", "lv_name", REAL_VG]).stdout.split() == ["keep", "x"]
    run(["lvremove", "-f", f"{REAL_VG}/x"])
    assert run(["/sbin/lvm", "lvs", "--noheadings", "-o", "lv_name", REAL_VG]).stdout.split() == ["keep"]


def test_the_provider_directory_holds_only_the_package_and_the_copy_holds_the_tree(upgraded):
    owned = set(run(["dpkg-query", "-L", PACKAGE]).stdout.split())
    present = {str(path) for path in TREE.rglob("*")} | {str(path) for path in TREE.glob(".*")}
    assert present <= owned, sorted(present - owned)
    assert (TREE / "attach").read_text() != PROVIDER_SCRIPT  # ours
    for name in ("defaults.sh", "etc/node1.sh", ".git/HEAD", "sbin/lvs", "bin/adopt", "t/1-create.t"):
        assert (COPY / name).exists(), name
    assert (COPY / "attach").read_text() == PROVIDER_SCRIPT  # the original's, as it was
    assert not CRON_LINK.is_symlink()


def test_the_settings_are_carried_into_the_config(upgraded):
    text = NODE_CONFIG.read_text()
    assert f"ZFS_PARENT={PARENT}" in text.splitlines()  # the per-host file won
    assert f"LVM_VG={VG}" in text.splitlines()
    assert "CREATE_OPTIONS='-s -b 4k -o compression=lz4'" in text.splitlines()
    out = run(["ganeti-zfs", "verify"]).stdout
    assert f"parent dataset {PARENT} exists" in out and f"volume group {VG} is emulated from {PARENT}" in out


def test_the_original_volumes_are_taken_over_and_nothing_else(upgraded):
    ext, lv = upgraded["ext"], upgraded["lv"]
    assert zfs_get(f"{PARENT}/{ext}", "ganeti-zfs:owner", source=True) == "ext\tlocal"
    assert zfs_get(f"{PARENT}/{lv}", "ganeti-zfs:owner", source=True) == "lvm\tlocal"
    assert zfs_get(f"{PARENT}/notganeti", "ganeti-zfs:owner") == "-"
    assert zfs_get(f"{PARENT}/somefs", "ganeti-zfs:owner") == "-"
    assert zfs_get(f"{PARENT}/{ext}@{OLD_DAY}", "ganeti-zfs:snapshot") == "original"
    # Running it again changes nothing.
    out = run(["ganeti-zfs", "import-original"]).stdout
    assert "no volumes of the original tool to take over" in out


def test_the_emulated_vg_is_the_original_dataset_without_the_ext_volumes(upgraded):
    names = run(["lvs", "--noheadings", "-o", "lv_name", VG]).stdout.split()
    assert names == [upgraded["lv"]]
    size, free = run(["vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_size,vg_free", VG]).stdout.split()
    used, available = int(zfs_get(PARENT, "used")), int(zfs_get(PARENT, "available"))
    assert abs(int(size) - (used + available)) < 64 * MiB and abs(int(free) - available) < 64 * MiB
    assert os.path.realpath(f"/dev/{VG}/{upgraded['lv']}").startswith("/dev/zd")
    cluster_verify()


def test_the_daily_job_snapshots_them_and_keeps_the_original_snapshots(upgraded):
    ext, lv = f"{PARENT}/{upgraded['ext']}", f"{PARENT}/{upgraded['lv']}"
    result = run(["ganeti-zfs", "snapshot", "--now", TODAY_NOON])
    assert "is the original tool's snapshot of today; kept" in result.stderr
    snapshots = run(["zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r", PARENT]).stdout.split()
    assert {f"{ext}@{OLD_DAY}", f"{ext}@{TODAY}", f"{lv}@{OLD_DAY}", f"{lv}@{TODAY}"} <= set(snapshots)
    assert zfs_get(f"{ext}@{TODAY}", "ganeti-zfs:snapshot") == "original"
    assert zfs_get(f"{lv}@{TODAY}", "ganeti-zfs:snapshot") == "daily"
    # Retention far in the future still keeps the original's snapshots.
    run(["ganeti-zfs", "snapshot", "--now", "2027-12-01T00:00:00Z"])
    snapshots = run(["zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r", PARENT]).stdout.split()
    assert f"{ext}@{OLD_DAY}" in snapshots and f"{lv}@{OLD_DAY}" in snapshots
    check = run(["ganeti-zfs", "check"], check=False)
    assert "volumes=2;" in check.stdout, check.stdout


def test_the_ext_instance_keeps_its_data_grows_exports_and_is_removed(upgraded):
    ext = upgraded["ext"]
    assert read(f"/dev/zvol/{PARENT}/{ext}") == pattern("ext-data ")
    status = run(["gnt-instance", "list", "--no-headers", "-o", "status", EXT_INSTANCE]).stdout.strip()
    assert status == "running"
    run(["gnt-instance", "reboot", EXT_INSTANCE], timeout=900)
    run(["gnt-instance", "grow-disk", EXT_INSTANCE, "0", "64M"], timeout=900)
    assert int(zfs_get(f"{PARENT}/{ext}", "volsize")) == 192 * MiB
    run(["gnt-backup", "export", "-n", NODE_NAME, "--noshutdown", EXT_INSTANCE], timeout=1800)
    run(["gnt-backup", "remove", EXT_INSTANCE], timeout=900)
    run(["gnt-instance", "remove", "-f", EXT_INSTANCE], timeout=900)
    assert ext not in volumes_under(PARENT)


def test_the_plain_instance_keeps_its_data_activates_grows_and_is_removed(upgraded):
    lv = upgraded["lv"]
    run(["gnt-instance", "activate-disks", PLAIN_INSTANCE], timeout=900)
    assert read(f"/dev/{VG}/{lv}") == pattern("plain-data ")
    run(["gnt-instance", "grow-disk", PLAIN_INSTANCE, "0", "64M"], timeout=900)
    assert int(zfs_get(f"{PARENT}/{lv}", "volsize")) == 192 * MiB
    cluster_verify()
    run(["gnt-instance", "remove", "-f", PLAIN_INSTANCE], timeout=900)
    assert lv not in volumes_under(PARENT)
    assert volumes_under(PARENT) == ["notganeti"]  # the foreign zvol is still there


def test_apt_remove_leaves_lvm2_as_lvm2_installed_it(upgraded):
    apt_get("remove", PACKAGE)
    for command in COMMANDS:
        assert os.readlink(f"/sbin/{command}") == "lvm", command
        assert not [t for t in every_target(command) if os.path.lexists(t)], command
    assert run(["lvs", "--noheadings", "-o", "lv_name", REAL_VG]).stdout.split() == ["keep"]
    assert COPY.is_dir()  # the admin's copy of the original stays
    apt_get("install", str(deb()))


def test_a_missing_lvm_parent_is_one_line_in_verify_and_costs_the_daily_job_nothing(tmp_path):
    run(["zfs", "create", "-p", "tank/sched-one"])
    run(["zfs", "create", "-s", "-V", "16M", "-o", "ganeti-zfs:owner=ext", "tank/sched-one/v.ext.disk0"])
    try:
        config = tmp_path / "missing-lvm.conf"
        config.write_text("ZFS_PARENT=tank/sched-one\nLVM_VG=nolvs\nLVM_PARENT=tank/no-such-parent\nDEBUG=yes\n")
        result = run(["ganeti-zfs", "-c", str(config), "verify"], check=False)
        errors = [line for line in result.stderr.splitlines() if ": debug: " not in line]
        assert result.returncode == 1 and len(errors) == 1, result
        assert "tank/no-such-parent" in errors[0] and "does not exist" in errors[0]
        job = run(["ganeti-zfs", "-c", str(config), "snapshot"])
        zfs_runs = [line for line in job.stderr.splitlines() if "run: zfs" in line]
        # One listing of both parents (the missing one named in its stderr)
        # and one `zfs snapshot` for the pool: as with no LVM parent at all.
        assert len(zfs_runs) == 2, zfs_runs
        assert "snapshotted 1 volumes" in job.stdout
    finally:
        run(["zfs", "destroy", "-r", "tank/sched-one"])
