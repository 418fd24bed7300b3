"""Helpers for the guest test suite (runs inside the test guest, as root).

    from guestlib import run, zfs_list_all, wait_for_path, cluster_verify
"""

import contextlib
import os
import shlex
import subprocess
import time
from pathlib import Path


POOL = "tank"  # on /dev/vdb, 64 GiB virtual (sparse)
POOL2 = "tank2"  # on /dev/vdc, 2 GiB
SPARE_DISK = "/dev/vdd"  # 2 GiB, unused: for a test that builds a real LVM VG

CLUSTER_NAME = "cluster.example.com"
NODE_NAME = "node1.example.com"
NOOP_OS = "noop"
EXTSTORAGE_LOG_DIR = Path("/var/log/ganeti/extstorage")


def run(cmd, check=True, timeout=600, **kw):
    """Run cmd (a list, or a string split like a shell would) and return the
    CompletedProcess with text stdout/stderr. With check (the default) a failure
    or a timeout raises AssertionError showing the command, its exit code and output.
    stdin is /dev/null unless given: nothing can wait for an answer from the console.
    """
    args = shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    try:
        proc = subprocess.run(args, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"timed out after {timeout} s: {shlex.join(args)}\n"
                             f"--- stdout ---\n{e.stdout or ''}\n--- stderr ---\n{e.stderr or ''}")
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {shlex.join(args)}\n"
                             f"--- stdout ---\n{proc.stdout}--- stderr ---\n{proc.stderr}")
    return proc


@contextlib.contextmanager
def real_lvm_vg(disk, vg, lv, size):
    """A real LVM VG on `disk` with one LV `lv`, made through the wrappers; removed after."""
    run(["pvcreate", "-ff", "-y", disk])
    run(["vgcreate", vg, disk])
    run(["lvcreate", "-Wn", f"-L{size}", f"-n{lv}", vg])
    try:
        yield vg
    finally:
        run(["vgremove", "-f", vg], check=False)
        run(["pvremove", "-ff", "-y", disk], check=False)


ZFS_PROPS = ("name", "type", "volsize", "used", "referenced", "origin")


def zfs_list_all(props=ZFS_PROPS, root=None):
    """Every dataset, volume and snapshot (below root, if given) as
    {name: {prop: value}}; values are zfs's exact (-p) strings, "-" where n/a.
    Compare two calls to see what a command created or left behind."""
    cmd = ["zfs", "list", "-H", "-p", "-t", "all", "-o", ",".join(props)]
    if root:
        cmd += ["-r", root]
    result = {}
    for line in run(cmd).stdout.splitlines():
        values = dict(zip(props, line.split("\t")))
        result[values["name"]] = values
    return result


def zvol_path(name):
    return Path("/dev/zvol") / name


def wait_for_path(path, timeout=30):
    """Wait (udevadm settle, then poll) until path exists; return it as a Path."""
    path = Path(path)
    run(["udevadm", "settle", f"--timeout={timeout}"], check=False)
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout} s"
        time.sleep(0.2)
    return path


def write_noop_os(name=NOOP_OS, root=Path("/srv/ganeti/os")):
    """An OS definition (API 20) whose scripts do nothing: gnt-instance add -o
    noop creates the disks and installs nothing on them."""
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    for script in ("create", "export", "import", "rename", "verify"):
        (d / script).write_text("#!/bin/sh\nexit 0\n")
        (d / script).chmod(0o755)
    (d / "ganeti_api_version").write_text("20\n")
    (d / "parameters.list").write_text("")
    return d


def init_cluster(disk_templates=("ext",), extra_args=()):
    """Initialise the single-node cluster (once per guest boot: ~50 s under TCG).

    The node name resolves to 192.0.2.10 on the dummy interface gnt0 and instance
    NICs link to the empty bridge gnt-br0 (both set up by guest-run.sh).
    disk_templates are enabled and allowed by the instance policy; a template
    needing LVM ("plain") also needs extra_args=["--vg-name", VG].
    """
    write_noop_os()
    # Ganeti fails every ExtStorage action but attach while this is missing; the
    # package's postinst creates it too, this only spares tests of other things.
    EXTSTORAGE_LOG_DIR.mkdir(parents=True, exist_ok=True)
    templates = ",".join(disk_templates)
    run(["gnt-cluster", "init", "--enabled-hypervisors=fake", "--master-netdev=gnt0",
         "--nic-parameters=mode=bridged,link=gnt-br0", "--no-etc-hosts",
         "--specs-disk-size=min=128", f"--enabled-disk-templates={templates}",
         f"--ipolicy-disk-templates={templates}", *extra_args, CLUSTER_NAME], timeout=900)
    return CLUSTER_NAME


def cluster_verify():
    """Run gnt-cluster verify; assert it exits 0 and reports no ERROR; return its output."""
    proc = run(["gnt-cluster", "verify"], check=False, timeout=900)
    output = proc.stdout + proc.stderr
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert proc.returncode == 0 and not errors, (
        f"gnt-cluster verify exited {proc.returncode}:\n{output}")
    return output


def artifacts_dir():
    """Where a test may leave files for the developer (tests/guest/.last-run/out/artifacts)."""
    path = Path(os.environ.get("GUEST_ARTIFACTS", "/tmp/guest-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def ganeti_version():
    """(major, minor) of the installed Ganeti, e.g. (3, 0) on bookworm, (3, 1) on trixie."""
    version = run(["dpkg-query", "-W", "-f", "${Version}", "ganeti"]).stdout
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def rename_options():
    """gnt-instance rename's options for a rename without name and IP checks: 3.0
    checks by default and asks before an unchecked rename; 3.1 checks nothing and
    no longer knows --force, --no-name-check or --no-ip-check (its
    lib/client/gnt_instance.py, commit 31e5194a9)."""
    return ["--force", "--no-name-check", "--no-ip-check"] if ganeti_version() < (3, 1) else []


# Ganeti issue 1839 (https://github.com/ganeti/ganeti/issues/1839): in 3.1.0~rc2,
# impexpd has socat check the peer certificate's commonName against the reverse
# lookup of the destination address, while the certificate gnt-backup uses is
# issued to ganeti.example.com, so every export and import fails. Fixed upstream by
# pull request 1840 (in 3.1.0: impexpd tests NODED_CERT_FILE); Debian's 3.1.0~rc2-3
# (trixie, bookworm-backports) does not have the fix.
GANETI_1839 = "Ganeti issue 1839 (socat commonName check in impexpd, fixed by PR 1840 after 3.1.0~rc2)"
GANETI_1839_SIGNATURE = "commonName does not match"


def has_ganeti_bug_1839():
    """From the installed source itself: the day Debian ships the fix, this says so."""
    for impexpd in Path("/usr/share/ganeti").glob("*/ganeti/impexpd/__init__.py"):
        text = impexpd.read_text()
        return "gethostbyaddr" in text and "NODED_CERT_FILE" not in text
    return False


def run_import_export(argv, timeout=1800):
    """Run a gnt-backup export/import: True when it ran. Where Ganeti has bug 1839
    it must fail with that bug's socat error (in its output or a Ganeti log): then
    False, and the caller checks what the failure left behind before it calls
    pytest.xfail(GANETI_1839)."""
    if not has_ganeti_bug_1839():
        run(argv, timeout=timeout)
        return True
    logs = sorted(Path("/var/log/ganeti").glob("**/*.log"))
    marks = {log: log.stat().st_size for log in logs}
    result = run(argv, timeout=timeout, check=False)
    assert result.returncode != 0, f"{GANETI_1839} is in the installed Ganeti, yet {argv[:2]} worked"
    text = result.stdout + result.stderr
    for log in sorted(Path("/var/log/ganeti").glob("**/*.log")):
        with open(log, errors="replace") as f:
            f.seek(marks.get(log, 0))
            text += f.read()
    assert GANETI_1839_SIGNATURE in text, f"{argv[:2]} failed, but not with {GANETI_1839}:\n{result.stdout}{result.stderr}"
    return False


def ganeti_lib():
    """Ganeti's own Python code: /usr/share/ganeti/3.0 on bookworm, 3.1 on trixie."""
    return next(str(path) for path in sorted(Path("/usr/share/ganeti").glob("3.*")) if (path / "ganeti").is_dir())
