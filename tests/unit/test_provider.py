"""The provider's main(): what Ganeti sees on bad input, before any zfs runs.

This host has no zfs: a test that got as far as running zfs would fail with
"zfs: command not found", so these also show that validation comes first.
Everything that needs ZFS is in tests/guest/suite/test_provider.py.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ganeti_zfs import actions, naming, provider, volume
from ganeti_zfs.errors import Error

NAME = "0f1e2d3c-aaaa-bbbb-cccc-0123456789ab.ext.disk0"


@pytest.fixture
def conffile(tmp_path):
    path = tmp_path / "extstorage-zfs.conf"
    path.write_text("ZFS_PARENT=tank/ganeti\nLVM_VG=gnt\n")
    return str(path)


@pytest.fixture
def ganeti_env(conffile):
    """The environment Ganeti passes (docs/ganeti-contract.md 1.2/1.3)."""
    return {
        "GANETI_ZFS_CONFIG": conffile,
        "LC_ALL": "C",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "VOL_NAME": NAME,
        "VOL_UUID": "d2d7f4b0-1111-2222-3333-444455556666",
        "EXTP_PROVIDER": "zfs",
        "EXTP_ACCESS": "kernelspace",
    }


def run(capsys, action, environ):
    status = provider.main(action, environ)
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_error_line(status, out, err, action, fragment, label=NAME):
    assert status == 1
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"ganeti-zfs {action} {label}: "), lines[0]
    assert fragment in lines[0]
    assert "command not found" not in lines[0]


def test_every_action_has_a_function():
    assert set(provider.ACTION_FUNCTIONS) == set(actions.ACTION_NAMES)


@pytest.mark.parametrize("action", ["create", "attach", "remove", "grow", "setinfo", "snapshot", "open", "close"])
@pytest.mark.parametrize(
    "name, fragment",
    [("", "VOL_NAME is empty"), ("tank/ganeti", "may contain only"), ("a@b", "may contain only"), ("a..b", "'..'")],
)
def test_bad_volume_names(capsys, ganeti_env, action, name, fragment):
    ganeti_env["VOL_NAME"] = name
    status, out, err = run(capsys, action, ganeti_env)
    assert_one_error_line(status, out, err, action, fragment, label=name or "-")


@pytest.mark.parametrize(
    "size, fragment",
    [(None, "VOL_SIZE is not set"), ("0", "larger than 0"), ("-1", "whole number"), ("big", "whole number")],
)
def test_create_bad_sizes(capsys, ganeti_env, size, fragment):
    if size is not None:
        ganeti_env["VOL_SIZE"] = size
    assert_one_error_line(*run(capsys, "create", ganeti_env), "create", fragment)


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("EXTP_COMPRESSION", "lz4 -o mountpoint=/", "ext-param compression must be one of"),
        ("EXTP_VOLBLOCKSIZE", "8k;reboot", "ext-param volblocksize must be a size"),
        ("EXTP_SPARSE", "'yes'", "ext-param sparse must be yes or no"),
        ("EXTP_ZFS", "tank2/elsewhere", "unknown ext-param 'zfs'"),
        ("EXTP_MOUNTPOINT", "/", "unknown ext-param 'mountpoint'"),
    ],
)
def test_create_refuses_bad_ext_params_before_running_zfs(capsys, ganeti_env, key, value, fragment):
    ganeti_env.update({"VOL_SIZE": "1024", key: value})
    assert_one_error_line(*run(capsys, "create", ganeti_env), "create", fragment)


def test_verify_checks_ext_params(capsys, ganeti_env):
    ganeti_env["EXTP_COPIES"] = "9"
    assert_one_error_line(*run(capsys, "verify", ganeti_env), "verify", "ext-param copies")


@pytest.mark.parametrize(
    "action, extra, fragment",
    [
        ("grow", {"VOL_SIZE": "1024"}, "VOL_NEW_SIZE is not set"),
        ("grow", {"VOL_NEW_SIZE": "0"}, "VOL_NEW_SIZE must be larger than 0"),
        ("setinfo", {}, "VOL_METADATA is not set"),
        ("snapshot", {"VOL_SNAPSHOT_SIZE": "1024"}, "VOL_SNAPSHOT_NAME is not set"),
        ("snapshot", {"VOL_SNAPSHOT_NAME": NAME}, "VOL_SNAPSHOT_NAME is the volume itself"),
        ("snapshot", {"VOL_SNAPSHOT_NAME": "tank2/x"}, "VOL_SNAPSHOT_NAME 'tank2/x' may contain only"),
        ("open", {"VOL_OPEN_EXCLUSIVE": "yes"}, "VOL_OPEN_EXCLUSIVE must be True or False"),
    ],
)
def test_missing_or_bad_action_inputs(capsys, ganeti_env, action, extra, fragment):
    ganeti_env.update(extra)
    assert_one_error_line(*run(capsys, action, ganeti_env), action, fragment)


def test_missing_config(capsys, ganeti_env, tmp_path):
    ganeti_env["GANETI_ZFS_CONFIG"] = str(tmp_path / "none.conf")
    assert_one_error_line(*run(capsys, "attach", ganeti_env), "attach", "does not exist")


def test_bad_config_names_the_line(capsys, ganeti_env, conffile):
    with open(conffile, "a") as file:
        file.write("EXTP_DESTROY=-R\n")
    assert_one_error_line(*run(capsys, "remove", ganeti_env), "remove", f"{conffile}:3: EXTP_DESTROY='-R'")


def test_detach_always_succeeds_silently(capsys, tmp_path):
    # no config, no VOL_NAME, no zfs: Ganeti must still be able to shut down
    status, out, err = run(capsys, "detach", {"GANETI_ZFS_CONFIG": str(tmp_path / "none.conf")})
    assert (status, out, err) == (0, "", "")


def test_unknown_action(capsys, ganeti_env):
    assert_one_error_line(*run(capsys, "frobnicate", ganeti_env), "frobnicate", "unknown action 'frobnicate'")


def _crash(request, cfg, zfs):
    raise RuntimeError("first line\nsecond line")


def test_a_bug_is_one_line_and_exit_2(capsys, ganeti_env, monkeypatch):
    monkeypatch.setitem(provider.ACTION_FUNCTIONS, "verify", _crash)
    status, out, err = run(capsys, "verify", ganeti_env)
    assert status == 2
    assert out == ""
    assert err.splitlines() == [
        f"ganeti-zfs verify {NAME}: unexpected error (RuntimeError): first line second line; "
        "set GANETI_ZFS_DEBUG=1 for details"
    ]


def test_a_bug_shows_a_traceback_in_debug_mode(capsys, ganeti_env, monkeypatch, conffile):
    with open(conffile, "a") as file:
        file.write("DEBUG=yes\n")
    monkeypatch.setattr(provider.log, "_debug", False)
    monkeypatch.setitem(provider.ACTION_FUNCTIONS, "verify", _crash)
    status, _out, err = run(capsys, "verify", ganeti_env)
    assert status == 2
    assert "Traceback (most recent call last)" in err
    assert err.splitlines()[-1].startswith(f"ganeti-zfs verify {NAME}: unexpected error (RuntimeError)")


# -- finding the device: the decisions, with real files on this host --------


def test_device_missing(tmp_path):
    problem = volume.device_problem(str(tmp_path / "zvol"), "tank/ganeti/v")
    assert problem == f"{tmp_path / 'zvol'} does not exist"


def test_device_dangling_link(tmp_path):
    link = tmp_path / "zvol"
    link.symlink_to(tmp_path / "zd0")
    assert "cannot be opened" in volume.device_problem(str(link), "tank/ganeti/v")


def test_device_not_a_block_device(tmp_path):
    (tmp_path / "zd0").write_text("")
    link = tmp_path / "zvol"
    link.symlink_to(tmp_path / "zd0")
    assert "which is not a block device" in volume.device_problem(str(link), "tank/ganeti/v")


BLOCK_DEVICE = next((f"/dev/{name}" for name in ("loop0", "sda", "vda", "nvme0n1") if os.path.exists(f"/dev/{name}")), None)


@pytest.mark.skipif(BLOCK_DEVICE is None, reason="no block device on this host to link to")
def test_device_stale_link_is_refused(tmp_path):
    """A link udev left behind now leads to another zvol's device."""
    link = tmp_path / "zvol"
    link.symlink_to(BLOCK_DEVICE)
    asked = []

    def dataset_of(device):
        asked.append(device)
        return "tank/ganeti/other"

    problem = volume.device_problem(str(link), "tank/ganeti/v", dataset_of)
    assert problem == f"{link} points to {os.path.realpath(BLOCK_DEVICE)}, which belongs to tank/ganeti/other"
    assert asked == [os.path.realpath(BLOCK_DEVICE)]
    assert volume.device_problem(str(link), "tank/ganeti/other", dataset_of) is None


def test_wait_for_device_gives_up_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(naming, "DEVICE_ROOT", str(tmp_path))
    settled = []
    with pytest.raises(Error) as raised:
        volume.wait_for_device("tank/ganeti/v", 0.3, settle=settled.append)
    assert str(raised.value) == f"no usable device for tank/ganeti/v after 0.3 s: {tmp_path}/tank/ganeti/v does not exist"
    assert len(settled) == 1 and 0 < settled[0] <= 0.3


# -- ownership rules of a looked-up volume ---------------------------------


def make(dataset="tank/ganeti/v.snap", type="volume", owner="ext", origin="tank/ganeti/v@ganeti-export"):
    return volume.Volume(dataset, type, 64 << 20, 0, origin, owner)


def test_ours_needs_our_mark_on_a_volume():
    assert make().ours
    assert not make(owner="").ours
    assert not make(owner="lvm").ours
    assert not make(type="filesystem").ours


def test_require_ours_says_why():
    with pytest.raises(Error, match=r"refusing to remove tank/ganeti/v.snap: it is a volume not created by ganeti-zfs"):
        make(owner="").require_ours("remove")
    with pytest.raises(Error, match="it is a filesystem not created"):
        make(type="filesystem").require_ours("grow")


class Kinds:
    """A zfs that knows the SNAPSHOT_KIND (value, source) of some snapshots."""

    def __init__(self, kinds):
        self.kinds = kinds

    def get_with_source(self, name, props):
        if name not in self.kinds:
            from ganeti_zfs import zfs as zfs_module
            raise zfs_module.DoesNotExist(["zfs", "get"], f"cannot open '{name}': dataset does not exist")
        return {name: {props[0]: self.kinds[name]}}


EXPORT_LOCAL = ("export", "local")


@pytest.mark.parametrize(
    "candidate, kinds, expected",
    [
        (make(), {"tank/ganeti/v@ganeti-export": EXPORT_LOCAL}, True),
        # A clone of an export snapshot whatever its name (lvcreate -s names it after the LV).
        (make(origin="tank/ganeti/v@other"), {"tank/ganeti/v@other": EXPORT_LOCAL}, True),
        (make(owner=""), {"tank/ganeti/v@ganeti-export": EXPORT_LOCAL}, False),
        (make(origin=""), {}, False),
        # An admin's snapshot that happens to be called ganeti-export: no kind, not ours.
        (make(), {"tank/ganeti/v@ganeti-export": ("-", "-")}, False),
        # The kind inherited from the volume is not the snapshot's own.
        (make(), {"tank/ganeti/v@ganeti-export": ("export", "inherited from tank/ganeti/v")}, False),
        (make(origin="tank/ganeti/v@2026-11-01"), {"tank/ganeti/v@2026-11-01": ("daily", "local")}, False),
        (make(origin="tank2/x/v@ganeti-export"), {"tank2/x/v@ganeti-export": EXPORT_LOCAL}, False),  # elsewhere
        (make(dataset="tank/ganeti/sub/v.snap"), {"tank/ganeti/v@ganeti-export": EXPORT_LOCAL}, False),
        (make(), {}, False),  # the origin went away meanwhile
    ],
)
def test_is_export_copy(candidate, kinds, expected):
    assert candidate.is_export_copy(Kinds(kinds)) is expected


@pytest.mark.parametrize(
    "text, names", [("", []), ("-", []), ("tank/a", ["tank/a"]), ("tank/a,tank2/b", ["tank/a", "tank2/b"])]
)
def test_clone_names(text, names):
    assert volume.clone_names(text) == names


def test_attach_of_a_ready_device_runs_and_imports_nothing_heavy(ganeti_env):
    """attach runs on nearly every Ganeti disk RPC (docs/benchmarks.md): when the
    device answers for itself, no zfs process and no dataclasses, subprocess or
    traceback import. The device check is the only thing replaced (no zvols here)."""
    code = (
        "import sys\n"
        "from ganeti_zfs import provider, volume, zfs\n"
        "volume.device_problem = lambda link, dataset: None\n"
        "zfs.Zfs._run = lambda *args, **kw: sys.exit('attach ran zfs')\n"
        "status = provider.main('attach')\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
        "sys.exit(status)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                            capture_output=True, text=True, env=ganeti_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"/dev/zvol/tank/ganeti/{NAME}\n"
    modules = set(result.stderr.split())
    assert "ganeti_zfs.provider" in modules
    assert not {"dataclasses", "subprocess", "traceback"} & modules


# -- a config with an unknown key: attach, open and close keep working -------


@pytest.fixture
def typo_env(ganeti_env, conffile, monkeypatch):
    with open(conffile, "a") as file:
        file.write("ATACH_TIMEOUT=5\n")
    # A ready device (no zvols on the host), and a volume of ours.
    monkeypatch.setattr(volume, "device_problem", lambda link, dataset: None)
    recorded = []
    monkeypatch.setattr(volume, "existing", lambda zfs, dataset: volume.Volume(dataset, "volume", 1 << 30, 0, "", "ext"))
    monkeypatch.setattr(provider.zfs_module.Zfs, "set", lambda self, name, changes: recorded.append((name, changes)))
    ganeti_env["VOL_OPEN_EXCLUSIVE"] = "True"
    return ganeti_env, recorded


def assert_one_warning_line(err, action, conffile):
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"ganeti-zfs {action} {NAME}: warning: {conffile}:3: unknown setting 'ATACH_TIMEOUT'")


@pytest.mark.parametrize("action", ["attach", "open", "close"])
def test_attach_open_close_work_with_an_unknown_key_and_say_so(capsys, typo_env, conffile, action):
    environ, recorded = typo_env
    status, out, err = run(capsys, action, environ)
    assert status == 0, err
    assert out == (f"/dev/zvol/tank/ganeti/{NAME}\n" if action == "attach" else "")
    assert_one_warning_line(err, action, conffile)
    if action != "attach":
        assert [name for name, _changes in recorded] == [f"tank/ganeti/{NAME}"]


def test_detach_works_with_an_unknown_key(capsys, typo_env):
    assert run(capsys, "detach", typo_env[0]) == (0, "", "")


@pytest.mark.parametrize("action, extra", [
    ("create", {"VOL_SIZE": "1024"}), ("remove", {}), ("grow", {"VOL_NEW_SIZE": "2048"}),
    ("setinfo", {"VOL_METADATA": "originstname+x"}), ("verify", {}),
    ("snapshot", {"VOL_SNAPSHOT_NAME": f"{NAME}.snap", "VOL_SNAPSHOT_SIZE": "1024"}),
])
def test_other_actions_refuse_an_unknown_key(capsys, typo_env, conffile, action, extra):
    environ, recorded = typo_env
    environ.update(extra)
    assert_one_error_line(*run(capsys, action, environ), action, f"{conffile}:3: unknown setting 'ATACH_TIMEOUT'")
    assert recorded == []


def test_attach_still_refuses_what_it_cannot_resolve(capsys, typo_env, conffile):
    environ, _recorded = typo_env
    with open(conffile, "w") as file:
        file.write("LVM_VG=gnt\nATACH_TIMEOUT=5\n")
    status, out, err = run(capsys, "attach", environ)
    assert_one_error_line(status, out, err, "attach", "ZFS_PARENT is not set")
    assert f"{conffile}:2: unknown setting 'ATACH_TIMEOUT'" in err
    with open(conffile, "w") as file:
        file.write("ZFS_PARENT=tank/../x\nATACH_TIMEOUT=5\n")
    assert_one_error_line(*run(capsys, "attach", environ), "attach", "is not a valid ZFS dataset name")
    with open(conffile, "w") as file:
        file.write("ZFS_PARENT=tank/ganeti\nATACH_TIMEOUT=5\nATTACH_TIMEOUT=never\n")
    assert_one_error_line(*run(capsys, "attach", environ), "attach", f"{conffile}:3: ATTACH_TIMEOUT must be a positive number")


# -- snapshot: only this volume's own export copy ------------------------------


@pytest.mark.parametrize("snapshot_name", [
    "other.ext.disk0.snap",  # another volume's export copy
    f"{NAME}.snap.snap", f"{NAME}x.snap", f"x{NAME}.snap", f"{NAME}.SNAP", f"{NAME}-snap", f"{NAME}.snap2", "snap",
])
def test_snapshot_refuses_a_name_not_derived_from_vol_name_before_running_zfs(capsys, ganeti_env, monkeypatch, snapshot_name):
    def no_zfs(self, command, *args, **kwargs):
        raise AssertionError(f"zfs ran: {command}")

    monkeypatch.setattr(provider.zfs_module.Zfs, "_run", no_zfs)
    ganeti_env.update(VOL_SNAPSHOT_NAME=snapshot_name, VOL_SNAPSHOT_SIZE="1024")
    assert_one_error_line(
        *run(capsys, "snapshot", ganeti_env), "snapshot",
        f"VOL_SNAPSHOT_NAME {snapshot_name!r} is not '{NAME}.snap', the name Ganeti derives from VOL_NAME",
    )


# -- remove: DESTROY_OPTIONS=-f reaches zfs destroy ---------------------------


@pytest.mark.parametrize("options, argv", [
    ("", ["zfs", "destroy", "-r", f"tank/ganeti/{NAME}"]),
    ("-r", ["zfs", "destroy", "-r", f"tank/ganeti/{NAME}"]),
    ("-f", ["zfs", "destroy", "-r", "-f", f"tank/ganeti/{NAME}"]),
    ("-rf", ["zfs", "destroy", "-r", "-f", f"tank/ganeti/{NAME}"]),
])
def test_remove_passes_destroy_options_f_to_zfs_destroy(capsys, ganeti_env, conffile, monkeypatch, tmp_path, options, argv):
    from ganeti_zfs import lock

    with open(conffile, "a") as file:
        file.write(f"DESTROY_OPTIONS={options}\n")
    monkeypatch.setattr(lock, "LOCK_PATH", str(tmp_path / "run" / "node.lock"))
    dataset = f"tank/ganeti/{NAME}"
    monkeypatch.setattr(volume, "lookup", lambda zfs, name: volume.Volume(name, "volume", 1 << 30, 0, "", "ext"))
    monkeypatch.setattr(provider, "_export_copies_or_refuse", lambda zfs, cfg, found: [])
    commands = []
    monkeypatch.setattr(provider.zfs_module.Zfs, "_run", lambda self, command, *args, **kwargs: commands.append(command) or "")
    status, out, err = run(capsys, "remove", ganeti_env)
    assert (status, out, err) == (0, "", "")
    assert commands == [argv]
    assert dataset in argv


# -- node-local: no shared open, stray zvols ----------------------------------


def test_shared_open_is_refused_before_zfs_runs(capsys, ganeti_env):
    # Only live migration sends VOL_OPEN_EXCLUSIVE=False (ganeti-contract.md 1.6.7).
    ganeti_env["VOL_OPEN_EXCLUSIVE"] = "False"
    status, out, err = run(capsys, "open", ganeti_env)
    assert_one_error_line(status, out, err, "open", "zfs volumes are node-local: VOL_OPEN_EXCLUSIVE=False")
    assert "live migration is not possible; the instance keeps running where it is" in err


class ListingZfs:
    """`zfs list` of the parent to depth 1 (name, type, owner), for verify's stray check."""

    def __init__(self, rows):
        self.rows = rows

    def list(self, names, fields, types=("volume",), recursive=False, depth=None):
        assert names == ["tank/ganeti"] and depth == 1
        return [dict(zip(fields, row)) for row in self.rows]


def run_stray_check(capsys, monkeypatch, conffile, rows, disks=None, error=None):
    from ganeti_zfs import cluster, config

    def read_config():
        if error:
            raise Error(error)
        return "the config"

    monkeypatch.setattr(cluster, "read_config", read_config)
    monkeypatch.setattr(cluster, "ext_disks", lambda data, provider: disks if provider == "zfs" else [])
    monkeypatch.setattr(cluster, "node_name", lambda: "node1.example.com")
    monkeypatch.setattr(provider.log, "_prefix", "ganeti-zfs verify")
    provider._report_strays(config.load(conffile), ListingZfs(rows))
    return capsys.readouterr()


def test_verify_warns_about_strays_and_never_destroys(capsys, monkeypatch, conffile):
    from ganeti_zfs.cluster import ExtDisk

    rows = [("tank/ganeti", "filesystem", "-"), ("tank/ganeti/mine.ext.disk0", "volume", "ext"),
            ("tank/ganeti/mine.ext.disk0.snap", "volume", "ext"), ("tank/ganeti/lost.ext.disk0", "volume", "ext"),
            ("tank/ganeti/moved.ext.disk0", "volume", "ext"), ("tank/ganeti/lv.disk0", "volume", "lvm"),
            ("tank/ganeti/foreign", "volume", "-")]
    disks = [ExtDisk("mine.ext.disk0", "inst1", 0, "node1.example.com"),
             ExtDisk("moved.ext.disk0", "inst2", 1, "node2.example.com")]
    out, err = run_stray_check(capsys, monkeypatch, conffile, rows, disks)
    assert err.splitlines() == [
        "ganeti-zfs verify: warning: stray zvol tank/ganeti/lost.ext.disk0: no instance's disk in the cluster "
        "configuration; left alone (zfs destroy it if nothing needs it)",
        "ganeti-zfs verify: warning: stray zvol tank/ganeti/moved.ext.disk0: it is disk 1 of instance inst2, whose primary "
        "node is node2.example.com, not this node (node1.example.com): a copy left behind here; left alone "
        "(zfs destroy it if nothing needs it)",
    ]
    assert out == "warning: 2 zvols of tank/ganeti belong to instances of node1.example.com, 2 stray\n"


def test_verify_without_strays(capsys, monkeypatch, conffile):
    from ganeti_zfs.cluster import ExtDisk

    rows = [("tank/ganeti", "filesystem", "-"), ("tank/ganeti/mine.ext.disk0", "volume", "ext")]
    out, err = run_stray_check(capsys, monkeypatch, conffile, rows, [ExtDisk("mine.ext.disk0", "i", 0, "node1.example.com")])
    assert (out, err) == ("ok: 1 zvols of tank/ganeti belong to instances of node1.example.com, 0 stray\n", "")


def test_verify_says_so_when_the_cluster_config_cannot_be_read(capsys, monkeypatch, conffile):
    rows = [("tank/ganeti", "filesystem", "-"), ("tank/ganeti/x.ext.disk0", "volume", "ext")]
    out, err = run_stray_check(capsys, monkeypatch, conffile, rows,
                               error="/var/lib/ganeti/config.data does not exist (Ganeti keeps it on master candidates only)")
    assert out == ""
    assert err == ("ganeti-zfs verify: warning: stray zvols not checked: /var/lib/ganeti/config.data does not exist "
                   "(Ganeti keeps it on master candidates only)\n")
