"""The Debian package's life cycle on a real node, as piuparts would walk it:
installed (by guest-run.sh) → reinstall → upgrade from an older build and
from 0.2's layout → remove → purge → install again, on the guest's release; after every step dpkg --verify is clean,
the diversions of lvm2's commands are exactly ours or gone, and lvm2's
tools work on a real volume group. Also the daily job's cron script.

The steps depend on each other and run in file order. Whatever happens, the
module ends with the current package installed and the node's configuration
and Ganeti's logs as they were, for the tests that come after it.

Needs /share/debs/ganeti-extstorage-zfs_*.deb (the package under test),
/share/previous/*.deb (`make deb-previous`) and /share/old-layout/*.deb
(`make deb-old-layout`), copied by tests/guest/vm.py.
"""

import os
import shutil
import stat
from pathlib import Path

import pytest

from guestlib import run
from packaginglib import (CONFFILE, PACKAGE, apt_get, assert_diverted, assert_lvm2_restored,
                          assert_real_lvm_works, deb_version, diversions, layout_of, lvm2_dir,
                          make_real_vg, only_deb, others, remove_real_vg, status)

import ganeti_zfs.actions
import ganeti_zfs.hooks
import ganeti_zfs.options
import ganeti_zfs.properties

PROVIDER_DIR = Path("/usr/share/ganeti/extstorage/zfs")
LOG_DIR = Path("/var/log/ganeti/extstorage")
CRON_JOB = Path("/etc/cron.daily/ganeti-extstorage-zfs")
TIMER_LINK = Path("/etc/systemd/system/timers.target.wants/ganeti-extstorage-zfs.timer")
SYSTEMD_MARK = Path("/run/systemd/system")
EXPECTED_PROVIDER_FILES = sorted([*ganeti_zfs.actions.ACTION_NAMES, "parameters.list", "bin"])
EXPECTED_HELPERS = ["daily-block-snapshot", "list", "size", "snapshots"]
HOOK_PROGRAM = Path("/") / ganeti_zfs.hooks.PROGRAM
HOOK_LINKS = [Path("/") / link for link in ganeti_zfs.hooks.hook_links()]


def dpkg_verify(package):
    result = run(["dpkg", "--verify", package], check=False)
    return result.returncode, result.stdout, result.stderr


def assert_dpkg_verify_clean(baseline):
    if status()[0] == "install ok installed":
        assert dpkg_verify(PACKAGE) == (0, "", ""), f"dpkg --verify {PACKAGE}"
    # lvm2 as the image has it (clean, unless the image changed a conffile).
    assert dpkg_verify("lvm2") == baseline.lvm2_verify


def assert_installed(version, baseline):
    assert status() == ("install ok installed", version)
    assert_dpkg_verify_clean(baseline)
    assert_diverted(layout_of(version))
    assert others(diversions()) == baseline.other_diversions
    assert sorted(os.listdir(PROVIDER_DIR)) == EXPECTED_PROVIDER_FILES
    for link in HOOK_LINKS:
        assert link.is_symlink() and link.resolve() == HOOK_PROGRAM and os.access(link, os.X_OK), link
    assert sorted(os.listdir(PROVIDER_DIR / "bin")) == EXPECTED_HELPERS
    for action in ganeti_zfs.actions.ACTION_NAMES:
        assert os.stat(PROVIDER_DIR / action).st_mode & 0o777 == 0o755
    assert CONFFILE.is_file() and CRON_JOB.is_file()
    assert LOG_DIR.is_dir()
    # Its ageing rule (run by the host's unit tests with the real systemd-tmpfiles;
    # this guest has no systemd).
    assert Path("/usr/lib/tmpfiles.d/ganeti-extstorage-zfs.conf").is_file()
    assert TIMER_LINK.is_symlink(), "the timer is enabled (deb-systemd-helper)"
    assert_real_lvm_works()


def assert_hooks_gone():
    """The Ganeti hooks go with the package: they are links, not conffiles."""
    assert not HOOK_PROGRAM.exists()
    for link in HOOK_LINKS:
        assert not link.is_symlink() and not link.exists(), link


def assert_removed(baseline):
    assert_lvm2_restored()
    assert others(diversions()) == baseline.other_diversions
    assert not PROVIDER_DIR.exists()
    assert not Path("/usr/bin/ganeti-zfs").exists()
    assert_dpkg_verify_clean(baseline)
    assert_real_lvm_works()


class Baseline:
    """What the node had before this module; restored at the end."""

    def __init__(self, current):
        self.current = current
        self.current_version = deb_version(current)
        self.node_config = CONFFILE.read_text() if CONFFILE.exists() else None
        self.pristine_config = run(
            f"sh -c 'dpkg-deb --fsys-tarfile {current} | tar -xO ./etc/ganeti/extstorage-zfs.conf'"
        ).stdout
        self.other_diversions = others(diversions())
        self.lvm2_verify = dpkg_verify("lvm2")
        self.log_backup = Path("/root/pkgtest-ganeti-logs")


@pytest.fixture(scope="module")
def baseline():
    current = only_deb("/share/debs")
    base = Baseline(current)
    assert status() == ("install ok installed", base.current_version), "guest-run.sh installs the package first"
    vg = None
    try:
        # The steps compare against the shipped conffile: dpkg --verify reports
        # a changed conffile, and apt would ask about it on upgrades.
        CONFFILE.write_text(base.pristine_config)
        if LOG_DIR.exists():
            shutil.copytree(LOG_DIR, base.log_backup, dirs_exist_ok=True)
        vg = make_real_vg()
        yield base
    finally:
        if status() != ("install ok installed", base.current_version):
            apt_get("install", "--allow-downgrades", str(base.current))
        if base.node_config is not None:
            CONFFILE.write_text(base.node_config)
        if base.log_backup.exists():
            shutil.copytree(base.log_backup, LOG_DIR, dirs_exist_ok=True)
            shutil.rmtree(base.log_backup)
        if vg:
            remove_real_vg(*vg)


def test_installed(baseline):
    print(run(["stat", "-c", "%n %a %U:%G", "/var/log/ganeti", str(LOG_DIR)]).stdout)
    assert baseline.lvm2_verify == (0, "", ""), "lvm2 was clean when this module started"
    assert_installed(baseline.current_version, baseline)
    params = (PROVIDER_DIR / "parameters.list").read_text().splitlines()
    assert [line.split(None, 1)[0] for line in params] == list(ganeti_zfs.options.EXT_PARAMS)
    assert all(len(line.split(None, 1)) == 2 for line in params)
    assert run(["ganeti-zfs", "--version"]).stdout.strip() == f"ganeti-zfs {baseline.current_version}"
    assert Path("/usr/lib/udev/rules.d/60-ganeti-extstorage-zfs.rules").is_file()
    # Every bookworm and trixie node is merged-/usr: the two diversions of a
    # command are about one file.
    assert os.path.samefile("/sbin/lvs", "/usr/sbin/lvs")


def test_lintian_of_this_release_is_clean(baseline):
    # This release's own lintian on the .deb as it installs here (make lint runs
    # the build host's): errors and warnings fail, as in Debian's archive.
    result = run(["lintian", "--fail-on", "error,warning", "--pedantic", "--info", str(baseline.current)],
                 check=False, timeout=900)
    print(run(["lintian", "--version"]).stdout, result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr


def test_reinstall_drops_diversions_of_commands_no_longer_wrapped(baseline):
    # As if an older version had wrapped one more command: its diversion is
    # ours, and the new version ships no wrapper for it.
    dropped = Path("/sbin/pkgtest-dropped")
    dropped.write_text("#!/bin/sh\n")
    run(["dpkg-divert", "--package", PACKAGE, "--add", "--rename", "--divert", f"{dropped}.distrib", dropped])
    try:
        assert not dropped.exists() and Path(f"{dropped}.distrib").exists()
        apt_get("install", "--reinstall", str(baseline.current))
        assert dropped.read_text() == "#!/bin/sh\n", "the diverted file is back in place"
        assert not Path(f"{dropped}.distrib").exists()
        assert_installed(baseline.current_version, baseline)
    finally:
        run(["dpkg-divert", "--package", PACKAGE, "--remove", "--rename", "--divert", f"{dropped}.distrib", dropped],
            check=False)
        dropped.unlink(missing_ok=True)


def test_upgrade_from_previous_version(baseline):
    # This tree as an older version (make deb-previous): the same layout.
    previous = only_deb("/share/previous")
    previous_version = deb_version(previous)
    assert run(["dpkg", "--compare-versions", previous_version, "lt", baseline.current_version], check=False).returncode == 0
    apt_get("install", "--allow-downgrades", str(previous))
    assert_installed(previous_version, baseline)
    apt_get("install", str(baseline.current))
    assert_installed(baseline.current_version, baseline)


def test_upgrade_from_the_old_layout(baseline):
    # 0.2.0 (make deb-old-layout): /sbin/<command> -> /sbin/<command>.distrib. From
    # a node without the package, as such a node has it (a downgrade from 0.3 to
    # 0.2 is not supported: 0.2's diversions clash with 0.3's).
    old = only_deb("/share/old-layout")
    assert layout_of(deb_version(old)) == "old"
    apt_get("purge", PACKAGE)
    CONFFILE.parent.mkdir(parents=True, exist_ok=True)
    if lvm2_dir() == "/sbin":
        apt_get("install", str(old))
        assert_installed(deb_version(old), baseline)
    else:
        # 0.2 never installed beside an lvm2 in /usr/sbin: its preinst refuses and
        # changes nothing. (It reaches trixie only on the node's own upgrade:
        # test_release_upgrade_*.py, in the bookworm guest.)
        result = apt_get("install", str(old), check=False)
        assert result.returncode != 0
        assert "lvm2 installs /usr/sbin/lvs; this version can only divert /sbin/lvs" in result.stdout + result.stderr
        apt_get("purge", PACKAGE)
        assert_lvm2_restored()
    apt_get("install", str(baseline.current))
    CONFFILE.write_text(baseline.pristine_config)
    assert_installed(baseline.current_version, baseline)


def test_remove_keeps_the_conffile_and_restores_lvm2(baseline):
    LOG_DIR.joinpath("create-zfs-pkgtest.ext.disk0-1.log").write_text("kept until purge\n")
    apt_get("remove", PACKAGE)
    assert status() == ("deinstall ok config-files", baseline.current_version)
    assert_removed(baseline)
    assert_hooks_gone()
    assert CONFFILE.read_text() == baseline.pristine_config
    assert LOG_DIR.joinpath("create-zfs-pkgtest.ext.disk0-1.log").exists()
    # The cron job stays (a conffile) and does nothing without the package.
    result = run([CRON_JOB])
    assert (result.stdout, result.stderr) == ("", "")


def test_purge_removes_the_conffile_and_only_our_logs(baseline):
    ours_log = LOG_DIR / "create-zfs-pkgtest.ext.disk0-1.log"
    others_log = LOG_DIR / "create-otherprovider-vol.ext.disk0-1.log"
    others_log.write_text("another provider's log\n")
    apt_get("purge", PACKAGE)
    assert status() == ("not-installed", "")
    assert not CONFFILE.exists()
    assert not CRON_JOB.exists()
    assert not TIMER_LINK.is_symlink()
    assert not ours_log.exists()
    assert not [path.name for path in LOG_DIR.iterdir() if path.name.split("-")[1:2] == ["zfs"]]
    assert others_log.exists(), "Ganeti's log directory is shared with other providers"
    assert_removed(baseline)
    assert_hooks_gone()


def test_install_after_purge(baseline):
    # Let the postinst make the log directory, as on a new node.
    shutil.rmtree(LOG_DIR)
    apt_get("install", str(baseline.current))
    assert_installed(baseline.current_version, baseline)
    assert CONFFILE.read_text() == baseline.pristine_config
    mode = LOG_DIR.stat()
    assert (stat.S_IMODE(mode.st_mode), mode.st_uid, mode.st_gid) == (0o750, 0, 0)


@pytest.fixture
def snapshot_config(tmp_path, pool):
    """A configuration whose snapshot parent holds one volume of ours."""
    parent = f"{pool}/pkgtest"
    volume = f"{parent}/vol"
    run(["zfs", "create", "-p", parent])
    run(["zfs", "create", "-V", "16M", "-o", f"{ganeti_zfs.properties.OWNER}={ganeti_zfs.properties.OWNER_EXT}",
         volume])
    path = tmp_path / "extstorage-zfs.conf"
    path.write_text(f"ZFS_PARENT={parent}\n")
    try:
        yield path, volume
    finally:
        run(["zfs", "destroy", "-r", parent])


def snapshots_of(volume):
    return run(["zfs", "list", "-H", "-o", "name", "-t", "snapshot", volume]).stdout.split()


def test_cron_job_steps_aside_for_systemd_else_takes_snapshots(baseline, snapshot_config):
    config_path, volume = snapshot_config
    env = dict(os.environ, GANETI_ZFS_CONFIG=str(config_path))
    assert not SYSTEMD_MARK.exists(), "the guest runs without systemd"
    SYSTEMD_MARK.mkdir(parents=True)
    try:
        result = run([CRON_JOB], env=env)
    finally:
        SYSTEMD_MARK.rmdir()
    assert (result.stdout, result.stderr) == ("", "")
    assert snapshots_of(volume) == [], "on systemd the timer runs the job, not cron"
    result = run([CRON_JOB], env=env)
    assert (result.stdout, result.stderr) == ("", ""), "--quiet: nothing but errors"
    assert len(snapshots_of(volume)) == 1
