"""LVM emulation under real Ganeti 3.0: the plain template on zvols.

The cluster fixture initialises the cluster with ext only; this module adds
the emulated VG gnt and the plain template, then drives an instance through
its life while a real LVM VG on the spare disk exists next to it and
`gnt-cluster verify` stays clean.
"""

import os

import pytest

from guestlib import GANETI_1839, cluster_verify, run, run_import_export
from providerlib import ensure_node_config, zfs_get

VG = "gnt"
LVM_PARENT = "tank/gnt"
PV = f"/dev/zvol/{LVM_PARENT}"
REAL_VG = "realvg2"
INSTANCE = "plain1.example.com"
NODE = "node1.example.com"
MiB = 1 << 20


def ganeti_mib(size_bytes):
    """What Ganeti makes of our `--units=m --nosuffix` text: int(round(float("%.2f")))."""
    return int(round(float(f"{size_bytes / MiB:.2f}")))


@pytest.fixture(scope="module")
def plain_cluster(ganeti_cluster, spare_disk):
    ensure_node_config()
    run(["pvcreate", "-ff", "-y", spare_disk])
    run(["vgcreate", REAL_VG, spare_disk])
    run(["lvcreate", "-Wn", "-L32m", "-nkeep", REAL_VG])
    run(["gnt-cluster", "modify", f"--vg-name={VG}", "--enabled-disk-templates=ext,plain",
         "--ipolicy-disk-templates=ext,plain"], timeout=900)
    yield ganeti_cluster
    run(["gnt-instance", "remove", "-f", INSTANCE], check=False, timeout=900)
    run(["gnt-cluster", "modify", "--enabled-disk-templates=ext", "--ipolicy-disk-templates=ext"], check=False, timeout=900)
    run(["lvremove", "-f", f"{REAL_VG}/keep"], check=False)
    run(["vgremove", "-f", REAL_VG], check=False)
    run(["pvremove", "-ff", "-y", spare_disk], check=False)


def instance_lvs():
    """{lv name: size MiB} of the emulated LVs, from zfs itself."""
    out = run(["zfs", "list", "-H", "-p", "-d", "1", "-t", "volume", "-o", "name,volsize,ganeti-zfs:owner", LVM_PARENT]).stdout
    result = {}
    for line in out.splitlines():
        name, size, owner = line.split("\t")
        if owner == "lvm":
            result[name.rpartition("/")[2]] = int(size) // MiB
    return result


def test_node_list_shows_the_zfs_numbers(plain_cluster):
    before = [int(zfs_get(LVM_PARENT, prop)) for prop in ("used", "available")]
    out = run(["gnt-node", "list", "--no-headers", "--units=m", "--separator=|", "-o", "dtotal,dfree"]).stdout.strip()
    after = [int(zfs_get(LVM_PARENT, prop)) for prop in ("used", "available")]
    dtotal, dfree = (int(value) for value in out.split("|"))
    expected = {(ganeti_mib(used + available), ganeti_mib(available)) for used, available in (before, after)}
    assert (dtotal, dfree) in expected
    assert dtotal >= 20480


def test_list_storage_lvm_vg_and_pv(plain_cluster):
    out = run(["gnt-node", "list-storage", "-t", "lvm-vg", "--no-headers", "--units=m", "--separator=|",
               "-o", "name,size,used,free,allocatable"]).stdout.splitlines()
    rows = {line.split("|")[0]: line.split("|") for line in out}
    assert set(rows) == {VG, REAL_VG}
    name, size, used, free, allocatable = rows[VG]
    available = int(zfs_get(LVM_PARENT, "available"))
    assert allocatable == "Y" and abs(int(free) - available / MiB) <= 1 and int(size) >= 20480
    out = run(["gnt-node", "list-storage", "-t", "lvm-pv", "--no-headers", "--units=m", "--separator=|",
               "-o", "name,size,used,free,allocatable"]).stdout.splitlines()
    rows = {line.split("|")[0]: line.split("|") for line in out}
    assert set(rows) == {PV, "/dev/vdd"}
    assert rows[PV][4] == "Y" and int(rows[PV][1]) == int(size)


def test_plain_instance_life(plain_cluster):
    lvs_before = instance_lvs()
    run(["gnt-instance", "add", "-t", "plain", "-o", "noop", "--disk", "0:size=256M", "-B", "maxmem=128M,minmem=128M",
         "--net", "0:mode=bridged,link=gnt-br0", "-n", NODE, "--no-name-check", "--no-ip-check", "--no-start", INSTANCE],
        timeout=900)
    new = {name: size for name, size in instance_lvs().items() if name not in lvs_before}
    assert list(new.values()) == [256] and list(new)[0].endswith(".disk0")
    lv = list(new)[0]
    dev = f"/dev/{VG}/{lv}"
    assert os.path.realpath(dev).startswith("/dev/zd")
    # Ganeti tagged the LV with its instance, through lvchange --addtag.
    assert zfs_get(f"{LVM_PARENT}/{lv}", "ganeti-zfs:lvtags") == f"originstname+{INSTANCE}"
    cluster_verify()

    volumes = run(["gnt-node", "volumes", "--no-headers", "--separator=|", "--units=m", "-o", "phys,vg,name,size,instance"]).stdout
    assert f"{PV}|{VG}|{lv}|256|{INSTANCE}" in volumes.splitlines()
    assert any(line.startswith(f"/dev/vdd|{REAL_VG}|keep|") for line in volumes.splitlines())

    run(["gnt-instance", "startup", INSTANCE], timeout=900)
    cluster_verify()
    run(["gnt-instance", "grow-disk", INSTANCE, "0", "128M"], timeout=900)
    assert instance_lvs()[lv] == 384
    listed = run(["gnt-instance", "list", "--no-headers", "--units=m", "-o", "disk.size/0", INSTANCE]).stdout.strip()
    assert listed.rstrip("M") == "384"

    # A live export: Ganeti snapshots the running instance's LV (lvcreate -s).
    exported = run_import_export(["gnt-backup", "export", "-n", NODE, "--noshutdown", INSTANCE])
    if exported:
        exports = run(["gnt-backup", "list", "--no-headers"]).stdout
        assert INSTANCE in exports
    # The export's snapshot LV and ZFS snapshot are gone again (also after a failed export).
    assert not [name for name in instance_lvs() if name.endswith(".snap")]
    snapshots = run(["zfs", "list", "-H", "-t", "snapshot", "-o", "name", "-r", LVM_PARENT]).stdout
    assert ".snap" not in snapshots
    run(["gnt-backup", "remove", INSTANCE], check=False, timeout=900)

    run(["gnt-instance", "shutdown", "--timeout=0", INSTANCE], timeout=900)
    cluster_verify()
    run(["gnt-instance", "remove", "-f", INSTANCE], timeout=900)
    assert lv not in instance_lvs() and not os.path.lexists(dev)
    # The real VG was there all along and is untouched.
    assert run(["/sbin/lvm", "lvs", "--noheadings", "-o", "lv_name", REAL_VG]).stdout.split() == ["keep"]
    cluster_verify()
    if not exported:
        pytest.xfail(GANETI_1839)
