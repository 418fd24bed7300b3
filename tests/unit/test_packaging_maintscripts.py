"""The maintainer scripts' own logic, run with sh on the host.

dpkg-divert and dpkg-query are replaced by small recorders on PATH, so these
tests check which diversions the scripts ask for in each case. What dpkg
then does with them on a real node is tested in the guest
(tests/guest/suite/test_packaging.py).
"""

import os
import subprocess

import pytest

from ganeti_zfs import lvm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = "ganeti-extstorage-zfs"


@pytest.fixture
def node(tmp_path):
    """A PATH whose dpkg-divert logs its arguments and lists $DIVERSIONS, and
    whose dpkg-query -L lvm2 prints $LVM2_FILES."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dpkg-divert").write_text(
        '#!/bin/sh\nif [ "$1" = --list ]; then cat "$DIVERSIONS"; exit 0; fi\n'
        'echo "$*" >>"$CALLS"\n'
    )
    (bin_dir / "dpkg-query").write_text(
        '#!/bin/sh\n[ "$*" = "-L lvm2" ] || exit 2\n[ -f "$LVM2_FILES" ] || exit 1\ncat "$LVM2_FILES"\n'
    )
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = dict(
        os.environ,
        PATH=f"{bin_dir}:/usr/bin:/bin",
        CALLS=str(tmp_path / "calls"),
        DIVERSIONS=str(tmp_path / "diversions"),
        LVM2_FILES=str(tmp_path / "lvm2-files"),
    )
    (tmp_path / "diversions").write_text("")
    return tmp_path, env


def run_script(tmp_path, env, name, *args):
    text = open(os.path.join(ROOT, "debian", f"{PACKAGE}.{name}"), encoding="utf-8").read()
    script = tmp_path / name
    script.write_text(text.replace("#DEBHELPER#", "").replace("#LVM_COMMANDS#", " ".join(lvm.COMMANDS)))
    result = subprocess.run(["sh", str(script), *args], capture_output=True, text=True, env=env)
    calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
    return result, calls


def divert_add(command):
    return f"--package {PACKAGE} --add --rename --quiet --divert /sbin/{command}.distrib /sbin/{command}"


def divert_remove(path):
    return f"--package {PACKAGE} --remove --rename --quiet --divert {path}.distrib {path}"


@pytest.mark.parametrize("action", ["install", "upgrade"])
def test_preinst_diverts_every_wrapped_command(node, action):
    tmp_path, env = node
    (tmp_path / "lvm2-files").write_text("".join(f"/sbin/{command}\n" for command in lvm.COMMANDS))
    result, calls = run_script(tmp_path, env, "preinst", action, "0.1.0")
    assert result.returncode == 0, result.stderr
    assert calls == [divert_add(command) for command in lvm.COMMANDS]


def test_preinst_diverts_before_lvm2_is_unpacked(node):
    # apt may unpack us first: the diversions then catch lvm2's files.
    tmp_path, env = node
    result, calls = run_script(tmp_path, env, "preinst", "install")
    assert result.returncode == 0, result.stderr
    assert calls == [divert_add(command) for command in lvm.COMMANDS]


def test_preinst_refuses_lvm2_in_usr_sbin(node):
    tmp_path, env = node
    (tmp_path / "lvm2-files").write_text("/usr/sbin/lvm\n/usr/sbin/lvs\n")
    result, calls = run_script(tmp_path, env, "preinst", "install")
    assert result.returncode == 1
    assert result.stderr == (
        f"{PACKAGE}: lvm2 installs /usr/sbin/lvs; this version can only divert /sbin/lvs (lvm2 as in Debian 12)\n"
    )
    assert calls == [], "nothing diverted"


def test_preinst_rejects_unknown_action(node):
    tmp_path, env = node
    result, calls = run_script(tmp_path, env, "preinst", "bogus")
    assert result.returncode == 1 and calls == []


DIVERSION_LIST = (
    f"diversion of /sbin/lvs to /sbin/lvs.distrib by {PACKAGE}\n"
    f"diversion of /sbin/pkgtest-gone to /sbin/pkgtest-gone.distrib by {PACKAGE}\n"
    "diversion of /sbin/other to /sbin/other.real by some-other-package\n"
    "local diversion of /sbin/local to /sbin/local.distrib\n"
)


@pytest.mark.parametrize("action", ["remove", "abort-install", "disappear"])
def test_postrm_removes_all_our_diversions(node, action):
    tmp_path, env = node
    (tmp_path / "diversions").write_text(DIVERSION_LIST)
    result, calls = run_script(tmp_path, env, "postrm", action)
    assert result.returncode == 0, result.stderr
    assert calls == [divert_remove("/sbin/lvs"), divert_remove("/sbin/pkgtest-gone")]


def test_postrm_abort_upgrade_keeps_the_diversions_of_present_wrappers(node):
    # The old version is back after a failed upgrade: a wrapper on disk keeps
    # its diversion, one of a command only the new version had loses it.
    tmp_path, env = node
    present = "/sbin/ldconfig"  # libc-bin's, on every Debian system
    assert os.path.lexists(present)
    (tmp_path / "diversions").write_text(
        f"diversion of {present} to {present}.distrib by {PACKAGE}\n"
        f"diversion of /sbin/pkgtest-gone to /sbin/pkgtest-gone.distrib by {PACKAGE}\n"
    )
    result, calls = run_script(tmp_path, env, "postrm", "abort-upgrade", "0.1.0")
    assert result.returncode == 0, result.stderr
    assert calls == [divert_remove("/sbin/pkgtest-gone")]


# (purge deletes log files under /var/log/ganeti: tested in the guest only.)
@pytest.mark.parametrize("action", ["upgrade", "failed-upgrade"])
def test_postrm_leaves_diversions_alone(node, action):
    tmp_path, env = node
    (tmp_path / "diversions").write_text(DIVERSION_LIST)
    result, calls = run_script(tmp_path, env, "postrm", action, "0.1.0")
    assert result.returncode == 0, result.stderr
    assert calls == []
