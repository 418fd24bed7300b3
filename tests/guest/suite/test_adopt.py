"""`ganeti-zfs adopt` on real ZFS and real Ganeti 3.0: a zvol's snapshot becomes
the disk of a plain instance through `gnt-instance add --disk 0:adopt=NAME`,
and every refusal (bad input, a receive that fails midway or takes too long)
leaves every dataset and /dev link as it was.
"""

import hashlib
import os
import shlex
from pathlib import Path

import pytest

from guestlib import NODE_NAME, NOOP_OS, cluster_verify, run
from providerlib import NODE_CONFIG, destroy_if_exists, udev_settle, write_device, zfs_get, zfs_state

VG = "gnt"
LVM_PARENT = "tank/gnt"
# LVM_PARENT explicitly: its default is not this module's business.
CONFIG_TEXT = f"ZFS_PARENT=tank/ganeti\nLVM_VG={VG}\nLVM_PARENT={LVM_PARENT}\n"
SOURCE = "tank/adopt-source"
SNAPSHOT = f"{SOURCE}@known"
INSTANCE = "adopted1.example.com"
MiB = 1 << 20
SIZE = 256 * MiB  # at least the cluster's minimum disk size (128 MiB)


def adopt(*argv, config=None, check=True):
    env = dict(os.environ, **({"GANETI_ZFS_CONFIG": str(config)} if config else {}))
    return run(["ganeti-zfs", "adopt", *argv], check=check, env=env, timeout=900)


def lvs_of(parent=LVM_PARENT):
    """The emulated LVs (zvols marked lvm) directly under `parent`, from zfs itself."""
    out = run(["zfs", "list", "-H", "-d", "1", "-t", "volume", "-o", "name,ganeti-zfs:owner", parent]).stdout
    return {line.split("\t")[0].rpartition("/")[2] for line in out.splitlines() if line.endswith("\tlvm")}


def sha256_of_device(path, size=SIZE):
    digest = hashlib.sha256()
    with open(path, "rb") as device:
        for _ in range(size // MiB):
            digest.update(device.read(MiB))
    return digest.hexdigest()


@pytest.fixture(scope="module")
def node_config():
    saved = NODE_CONFIG.read_text() if NODE_CONFIG.exists() else None
    NODE_CONFIG.write_text(CONFIG_TEXT)
    run(["zfs", "create", "-p", "tank/ganeti"])
    run(["zfs", "create", "-p", LVM_PARENT])
    yield NODE_CONFIG
    if saved is None:
        NODE_CONFIG.unlink()
    else:
        NODE_CONFIG.write_text(saved)


@pytest.fixture(scope="module")
def plain_cluster(ganeti_cluster, node_config):
    run(["gnt-cluster", "modify", f"--vg-name={VG}", "--enabled-disk-templates=ext,plain",
         "--ipolicy-disk-templates=ext,plain"], timeout=900)
    yield ganeti_cluster
    run(["gnt-instance", "remove", "-f", INSTANCE], check=False, timeout=900)
    run(["gnt-cluster", "modify", "--enabled-disk-templates=ext", "--ipolicy-disk-templates=ext"], check=False, timeout=900)


@pytest.fixture
def source_image():
    """SOURCE, a zvol holding known data, snapshotted as SNAPSHOT, then changed:
    the sha256 of what the snapshot holds."""
    image = bytearray(SIZE)
    image[:4 * MiB] = os.urandom(4 * MiB)
    image[SIZE // 2:SIZE // 2 + MiB] = os.urandom(MiB)
    image[-4 * MiB:] = os.urandom(4 * MiB)
    run(["zfs", "create", "-V", str(SIZE), SOURCE])
    udev_settle()
    write_device(f"/dev/zvol/{SOURCE}", bytes(image))
    run(["zfs", "snapshot", SNAPSHOT])
    # After the snapshot: a copy of the live volume would show this.
    write_device(f"/dev/zvol/{SOURCE}", os.urandom(MiB))
    yield hashlib.sha256(image).hexdigest()
    destroy_if_exists(SOURCE)


def test_a_snapshot_becomes_the_disk_of_a_plain_instance(plain_cluster, source_image):
    before = zfs_state()
    lvs_before = lvs_of()
    result = adopt(SNAPSHOT, "adopt1")
    assert result.stderr == ""
    copy = f"{LVM_PARENT}/adopt1"
    # A full, independent, thick copy, marked as lvcreate marks an LV.
    assert zfs_get(copy, "origin") == "-"
    assert run(["zfs", "list", "-H", "-t", "snapshot", "-o", "name", "-r", copy]).stdout == ""
    assert zfs_get(copy, "ganeti-zfs:owner") == "lvm"
    assert int(zfs_get(copy, "volsize")) == SIZE
    assert int(zfs_get(copy, "refreservation")) >= SIZE
    assert lvs_of() == lvs_before | {"adopt1"}
    assert run(["lvs", "--noheadings", "--units=m", "--nosuffix", "-o", "lv_size", f"{VG}/adopt1"]).stdout.split() == ["256.00"]
    assert sha256_of_device(f"/dev/{VG}/adopt1") == source_image

    # The command it prints, with the instance's own words filled in, adopts it.
    printed = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("gnt-instance add ")]
    assert len(printed) == 1, result.stdout
    argv = [{"NODE": NODE_NAME, "OS": NOOP_OS}.get(word, word) for word in shlex.split(printed[0])]
    assert argv[-1] == "INSTANCE" and f"0:adopt=adopt1,vg={VG}" in argv
    argv[-1:] = ["-B", "maxmem=128M,minmem=128M", "--net", "0:mode=bridged,link=gnt-br0",
                 "--no-name-check", "--no-ip-check", "--no-start", INSTANCE]
    run(argv, timeout=900)
    # Ganeti renamed it to <uuid>.disk0 and owns it now.
    new = lvs_of() - lvs_before
    assert len(new) == 1, new
    disk = new.pop()
    assert disk.endswith(".disk0")
    assert sha256_of_device(f"/dev/{VG}/{disk}") == source_image
    listed = run(["gnt-instance", "list", "--no-headers", "--units=m", "-o", "disk_template,disk.size/0", INSTANCE]).stdout.split()
    assert listed == ["plain", "256"]

    # Independent: the source goes, snapshot and all, while the instance lives on.
    run(["zfs", "destroy", "-r", SOURCE])
    assert sha256_of_device(f"/dev/{VG}/{disk}") == source_image
    cluster_verify()

    run(["gnt-instance", "remove", "-f", INSTANCE], timeout=900)
    udev_settle()
    assert lvs_of() == lvs_before and not os.path.lexists(f"/dev/{VG}/{disk}")
    assert zfs_state() == {name: props for name, props in before.items() if not name.startswith(SOURCE)}


# -- refusals: one line on stderr, nothing made, nothing destroyed ----------------


def assert_refused(*argv, fragment, config=None, vg=VG):
    before = zfs_state()
    link = f"/dev/{vg}/{argv[-1]}"
    linked_before = os.path.lexists(link)
    result = adopt(*argv, config=config, check=False)
    assert result.returncode != 0, result.stdout
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ganeti-zfs adopt: ") and fragment in lines[0], lines[0]
    assert zfs_state() == before
    udev_settle()
    assert os.path.lexists(link) == linked_before
    return lines[0]


@pytest.fixture(scope="module")
def refusal_sources(node_config):
    """A zvol and a filesystem with a snapshot each, an LV and a foreign zvol under LVM_PARENT."""
    run(["zfs", "create", "-V", "16M", "tank/adopt-vol"])
    run(["zfs", "snapshot", "tank/adopt-vol@s"])
    run(["zfs", "create", "tank/adopt-fs"])
    run(["zfs", "snapshot", "tank/adopt-fs@s"])
    run(["lvcreate", "-Wn", "-L8m", "-ntaken", VG])
    run(["zfs", "create", "-V", "8M", f"{LVM_PARENT}/foreign"])
    yield
    run(["lvremove", "-f", f"{VG}/taken"], check=False)
    for dataset in ("tank/adopt-vol", "tank/adopt-fs", f"{LVM_PARENT}/foreign", f"{LVM_PARENT}/taken"):
        destroy_if_exists(dataset)


@pytest.mark.parametrize("snapshot, name, fragment", [
    ("tank/adopt-vol@missing", "new1", "snapshot tank/adopt-vol@missing does not exist"),
    ("tank/adopt-none@s", "new1", "does not exist"),
    ("tank/adopt-fs@s", "new1", "a snapshot of a filesystem, not of a zvol"),
    ("tank/adopt-vol", "new1", "is not a snapshot name"),
    ("tank/adopt-vol@s", "taken", f"{LVM_PARENT}/taken already exists"),
    ("tank/adopt-vol@s", "foreign", f"{LVM_PARENT}/foreign already exists"),
    ("tank/adopt-vol@s", "a+b", "is invalid"),
])
def test_bad_input_is_refused(refusal_sources, snapshot, name, fragment):
    assert_refused(snapshot, name, fragment=fragment)


def test_refused_without_the_lvm_emulation(refusal_sources, tmp_path):
    config = tmp_path / "no-vg.conf"
    config.write_text(f"ZFS_PARENT=tank/ganeti\nLVM_PARENT={LVM_PARENT}\n")
    assert_refused("tank/adopt-vol@s", "new1", fragment="LVM_VG is not set", config=config)


def test_dry_run_changes_nothing(refusal_sources):
    before = zfs_state()
    result = adopt("--dry-run", "tank/adopt-vol@s", "new1")
    assert result.stdout == f"would copy tank/adopt-vol@s (16 MiB) to {LVM_PARENT}/new1, the LV {VG}/new1\n"
    assert zfs_state() == before


BIG_SOURCE = "tank/adopt-big"
BIG_DATA = 300 * MiB
TANK2_LEFT = 150 * MiB  # what tank2 has left for the copy: it runs out midway


@pytest.fixture(scope="module")
def big_snapshot(node_config):
    """A zvol holding BIG_DATA of incompressible data, snapshotted."""
    run(["zfs", "create", "-V", str(BIG_DATA), BIG_SOURCE])
    udev_settle()
    block = os.urandom(MiB)  # random in every volblock: compression saves nothing
    with open(f"/dev/zvol/{BIG_SOURCE}", "r+b") as device:
        for _ in range(BIG_DATA // MiB):
            device.write(block)
        os.fsync(device.fileno())
    run(["zfs", "snapshot", f"{BIG_SOURCE}@full"])
    yield f"{BIG_SOURCE}@full"
    destroy_if_exists(BIG_SOURCE)


@pytest.fixture
def nearly_full_tank2(pool2):
    """The emulated VG adoptvg on tank2 (2 GiB), whose space a reservation takes but TANK2_LEFT."""
    run(["zfs", "create", f"{pool2}/adoptvg"])
    available = int(zfs_get(pool2, "available"))
    run(["zfs", "create", "-o", f"refreservation={available - TANK2_LEFT}", f"{pool2}/filler"])
    assert int(zfs_get(f"{pool2}/adoptvg", "available")) < BIG_DATA
    yield f"ZFS_PARENT={pool2}/ganeti\nLVM_VG=adoptvg\nLVM_PARENT={pool2}/adoptvg\n"
    destroy_if_exists(f"{pool2}/filler")
    destroy_if_exists(f"{pool2}/adoptvg")


def test_a_receive_that_runs_out_of_space_midway_leaves_nothing(big_snapshot, nearly_full_tank2, tmp_path, artifacts):
    config = tmp_path / "tank2.conf"
    config.write_text(nearly_full_tank2)
    line = assert_refused(big_snapshot, "big", fragment="out of space", config=config, vg="adoptvg")
    (artifacts / "adopt-out-of-space.txt").write_text(line + "\n")


def zfs_copies():
    """The command lines of running `zfs send` and `zfs receive` processes."""
    lines = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) == b"zfs" and argv[1:2] in ([b"send"], [b"receive"]):
            lines.append(b" ".join(argv).decode())
    return lines


def test_a_copy_past_its_timeout_is_stopped_and_leaves_nothing(big_snapshot, artifacts):
    line = assert_refused("--timeout", "1", big_snapshot, "slow", fragment="timed out after 1 s")
    (artifacts / "adopt-timeout.txt").write_text(line + "\n")
    assert "zfs receive" in line
    assert zfs_copies() == []
