"""The package's install state on a real node, for the tests that install, upgrade
and remove it (test_packaging.py, test_release_upgrade_*.py).

Two diversion layouts exist (debian/ganeti-extstorage-zfs.preinst):
- "old" (0.2 and before): /sbin/<command> -> /sbin/<command>.distrib;
- "new" (0.3): /usr/sbin/<command> -> /usr/sbin/<command>.distrib and
  /sbin/<command> -> /sbin/<command>.distrib.usr-is-merged. lvm2's link is in the
  first target when lvm2 records /usr/sbin/<command> (trixie), in the second when
  it records /sbin/<command> (bookworm).
"""

import os
from pathlib import Path

from guestlib import run

import ganeti_zfs.lvm

PACKAGE = "ganeti-extstorage-zfs"
CONFFILE = Path("/etc/ganeti/extstorage-zfs.conf")
# Imported while the package is installed: the tests remove it.
COMMANDS = tuple(ganeti_zfs.lvm.COMMANDS)
# What 0.2 wrapped (and diverted): Ganeti's commands; 0.3 added the display ones.
OLD_COMMANDS = ("lvs", "vgs", "pvs", "lvcreate", "lvremove", "lvrename", "lvchange", "lvextend", "pvchange", "vgreduce")
REAL_VG = "pkgtestvg"
REAL_LV = "reallv"


def only_deb(directory):
    debs = sorted(Path(directory).glob(f"{PACKAGE}_*.deb"))
    assert len(debs) == 1, f"expected one {PACKAGE} .deb in {directory}, found {[d.name for d in debs]}"
    return debs[0]


def deb_version(deb):
    return run(["dpkg-deb", "-f", deb, "Version"]).stdout.strip()


def apt_get(*args, check=True, timeout=900):
    return run(["apt-get", "-y", "-q", *args], timeout=timeout, check=check)


def status(package=PACKAGE):
    """(dpkg status, version) of the package; ("not-installed", "") after a purge."""
    result = run(["dpkg-query", "-W", "-f", "${Status}|${Version}", package], check=False)
    if result.returncode != 0:
        return "not-installed", ""
    state, _bar, version = result.stdout.partition("|")
    return state, version


def layout_of(version):
    return "old" if run(["dpkg", "--compare-versions", version, "lt", "0.3.0~"], check=False).returncode == 0 else "new"


def diversions():
    """{path: (divert_to, package)} of every diversion dpkg knows."""
    found = {}
    for line in run(["dpkg-divert", "--list"], env=dict(os.environ, LC_ALL="C")).stdout.splitlines():
        # "diversion of /sbin/lvs to /sbin/lvs.distrib by ganeti-extstorage-zfs",
        # or "local diversion of X to Y"
        words = line.split()
        package = words[-1] if words[-2] == "by" else "LOCAL"
        found[words[words.index("of") + 1]] = (words[words.index("to") + 1], package)
    return found


def ours(found):
    return {path: target for path, (target, package) in found.items() if package == PACKAGE}


def others(found):
    return {path: value for path, value in found.items() if value[1] != PACKAGE}


def lvm2_dir():
    """Where the installed lvm2 records its commands: /sbin (bookworm) or /usr/sbin (trixie)."""
    files = run(["dpkg-query", "-L", "lvm2"]).stdout.splitlines()
    dirs = {os.path.dirname(path) for path in files if os.path.basename(path) in COMMANDS}
    assert len(dirs) == 1, dirs
    return dirs.pop()


def commands_of(layout):
    return OLD_COMMANDS if layout == "old" else COMMANDS


def expected_diversions(layout):
    if layout == "old":
        return {f"/sbin/{c}": f"/sbin/{c}.distrib" for c in OLD_COMMANDS}
    table = {f"/usr/sbin/{c}": f"/usr/sbin/{c}.distrib" for c in COMMANDS}
    table.update({f"/sbin/{c}": f"/sbin/{c}.distrib.usr-is-merged" for c in COMMANDS})
    return table


def lvm2_link(command, layout):
    """Where lvm2's link of command is while the package is installed."""
    if layout == "old":
        return f"/sbin/{command}.distrib"
    return f"/usr/sbin/{command}.distrib" if lvm2_dir() == "/usr/sbin" else f"/sbin/{command}.distrib.usr-is-merged"


def on_disk(path):
    """The one name of a file under /sbin or /usr/sbin (/sbin is a link to usr/sbin)."""
    return "/usr" + path if path.startswith("/sbin/") else path


def every_target(command):
    """Every diversion target of command in either layout, by its name on disk."""
    return (f"/usr/sbin/{command}.distrib", f"/usr/sbin/{command}.distrib.usr-is-merged")


def assert_diverted(layout):
    """Our diversions are exactly the layout's, every wrapper is ours, and lvm2's
    link is in the one target that lvm2's recorded path is diverted to."""
    assert ours(diversions()) == expected_diversions(layout)
    recorded = lvm2_dir()
    for command in commands_of(layout):
        # /sbin is usr/sbin: one file, whichever name the layout ships it under.
        wrapper = Path("/usr/sbin", command)
        assert wrapper.read_text().endswith(f'from ganeti_zfs.lvm.main import main\nsys.exit(main("{command}"))\n')
        link = lvm2_link(command, layout)
        assert os.readlink(link) == "lvm", f"lvm2's link moved aside intact to {link}"
        assert [t for t in every_target(command) if os.path.lexists(t)] == [on_disk(link)], "one copy of lvm2's link"
        owners = run(["dpkg-query", "-S", f"{recorded}/{command}"]).stdout
        assert f"diversion by {PACKAGE} to: {link}" in owners, owners


def assert_lvm2_restored():
    """No diversion of ours; lvm2's links in place, under the path lvm2 records."""
    assert ours(diversions()) == {}
    recorded = lvm2_dir()
    for command in COMMANDS:
        assert os.readlink(f"{recorded}/{command}") == "lvm", f"{recorded}/{command} is lvm2's link again"
        assert not [t for t in every_target(command) if os.path.lexists(t)]
        assert run(["dpkg-query", "-S", f"{recorded}/{command}"]).stdout == f"lvm2: {recorded}/{command}\n"


def make_real_vg():
    """A real LVM volume group on a loop device, with one (inactive) LV."""
    image = Path("/root/pkgtest-pv.img")
    run(["truncate", "-s", "64M", image])
    run(["modprobe", "loop"])  # guest-init loads only what the platform needs
    loop = run(["losetup", "--find", "--show", image]).stdout.strip()
    run(["/usr/sbin/lvm", "pvcreate", "-y", "-ff", loop])
    run(["/usr/sbin/lvm", "vgcreate", REAL_VG, loop])
    run(["/usr/sbin/lvm", "lvcreate", "-an", "-Zn", "-L", "8m", "-n", REAL_LV, REAL_VG])
    return image, loop


def remove_real_vg(image, loop):
    run(["/usr/sbin/lvm", "vgremove", "-f", REAL_VG], check=False)
    run(["/usr/sbin/lvm", "pvremove", "-y", loop], check=False)
    run(["losetup", "-d", loop], check=False)
    image.unlink(missing_ok=True)


def assert_real_lvm_works():
    """lvm2's tools, through our wrappers or not, still see the real VG."""
    lvs = run(["lvs", "--noheadings", "-o", "lv_name", REAL_VG]).stdout.split()
    assert lvs == [REAL_LV]
    vgs = run(["vgs", "--noheadings", "-o", "vg_name"]).stdout.split()
    assert REAL_VG in vgs
    run(["pvs"])


# -- the node's own upgrade to the next release (tests/guest/image/build-image.sh
# keeps that release's lvm2, and what it needs, in a local repository) --------------

UPGRADE_REPO = Path("/var/lib/guest-upgrade/trixie")
EMULATED_VG = "upg"
EMULATED_CONFIG = Path("/root/upgrade-test.conf")


def upgrade_lvm2():
    """apt full-upgrade against the next release's repository alone (the guest is
    offline, and its lists also know bookworm's later security updates): lvm2 and
    what it needs (trixie's libc6, dpkg, base-files, ...) move on; lvm2 moves to
    /usr/sbin."""
    sources = Path("/etc/apt/upgrade.list")
    sources.write_text(f"deb [trusted=yes] file:{UPGRADE_REPO} ./\n")
    only = ["-o", f"Dir::Etc::SourceList={sources}", "-o", "Dir::Etc::SourceParts=-"]
    apt_get(*only, "update")
    before = status("lvm2")[1]
    # (libc6 and dpkg, and update-initramfs for lvm2's hook: minutes under emulation.)
    result = apt_get(*only, "full-upgrade", timeout=2400)
    after = status("lvm2")[1]
    assert run(["dpkg", "--compare-versions", after, "gt", before], check=False).returncode == 0, (before, after)
    assert lvm2_dir() == "/usr/sbin"
    return result


def emulated_vg():
    """An emulated VG with one LV, through the wrappers (GANETI_ZFS_CONFIG: the
    conffile stays as shipped, so upgrades do not ask about it)."""
    run(["zfs", "create", "-p", f"tank/{EMULATED_VG}"])
    EMULATED_CONFIG.write_text(f"ZFS_PARENT=tank/{EMULATED_VG}-ext\nLVM_VG={EMULATED_VG}\nLVM_PARENT=tank/{EMULATED_VG}\n")
    run(["lvcreate", "-Wn", "-L8m", "-nlv1", EMULATED_VG], env=emulated_env())


def emulated_env():
    return dict(os.environ, GANETI_ZFS_CONFIG=str(EMULATED_CONFIG))


def emulated_lvs():
    """What lvs answers for the emulated VG (a failed run: its stderr)."""
    result = run(["lvs", "--noheadings", "-o", "lv_name", EMULATED_VG], env=emulated_env(), check=False)
    return result.stdout.split() if result.returncode == 0 else result.stderr.strip()


def node_with_0_2():
    """The starting point of an upgrade to trixie: bookworm's lvm2, 0.2 in place
    of the version guest-run.sh installed, a real VG and an emulated one, both
    answering. {"current": this version's .deb, "old": 0.2's}."""
    assert lvm2_dir() == "/sbin", "starts on bookworm's lvm2"
    debs = {"current": only_deb("/share/debs"), "old": only_deb("/share/old-layout")}
    apt_get("purge", PACKAGE)
    make_real_vg()
    apt_get("install", str(debs["old"]))
    assert status() == ("install ok installed", deb_version(debs["old"]))
    assert_diverted("old")
    emulated_vg()
    assert emulated_lvs() == ["lv1"]
    assert_real_lvm_works()
    return debs
