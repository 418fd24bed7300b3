"""LVM emulation behaving like lvm2 (issue #16): the logic, with a fake zfs.

What lvm2 and the kernel really print is compared in the guest
(tests/guest/suite/test_lvm_fidelity.py); here: the questions and the order
of checks before anything is destroyed, renames that leave nothing behind,
listings that never open a device, refused VG names, and global listings
that keep the real tool's answer whatever we cannot answer.
"""

import contextlib
import io
import os
import types

import pytest

from ganeti_zfs import config, lock, properties
from ganeti_zfs.errors import ConfigError, Error
from ganeti_zfs.lvm import args as args_module, commands, decide, main, report, state

MIB = 1 << 20
PARENT = "tank/gnt"
VG = "gnt"


class FakeZfs:
    """The emulated VG's datasets; records every change."""

    def __init__(self, lvs, clones=None):
        self.lvs = dict(lvs)  # lv name -> origin snapshot ("" for none)
        self.clones = dict(clones or {})  # snapshot -> [clone datasets]
        self.changes = []
        self.fail_rename = None

    def list(self, names, fields, types=("volume",), recursive=False, depth=None):
        if types == ("snapshot",):
            rows = [{"name": snap, "clones": ",".join(clones) or "-"} for snap, clones in self.clones.items()
                    if snap.partition("@")[0] in names]
            return [{field: row[field] for field in fields} for row in rows]
        rows = [{"name": PARENT, "type": "filesystem", "guid": "1", "used": str(MIB), "available": str(100 * MIB)}]
        for index, (lv, origin) in enumerate(sorted(self.lvs.items())):
            rows.append({"name": f"{PARENT}/{lv}", "type": "volume", "guid": str(10 + index), "volsize": str(8 * MIB),
                         "origin": origin or "-", properties.OWNER: "lvm"})
        return [{field: row.get(field, "-") for field in fields} for row in rows]

    def get_with_source(self, name, props, **_kwargs):
        # Every snapshot here is one lvcreate -s took (kind export, set on it); its
        # clones are those outside the VG (its snapshot LV is destroyed first).
        values = {properties.SNAPSHOT_KIND: (properties.SNAPSHOT_KIND_EXPORT, "local"),
                  "clones": (",".join(self.clones.get(name, [])) or "-", "-")}
        return {name: {prop: values[prop] for prop in props}}

    def destroy(self, name, snapshots_too=False, force=False):
        self.changes.append(("destroy", name))

    def rename(self, old, new):
        if self.fail_rename == old:
            raise Error(f"cannot rename {old}")
        self.changes.append(("rename", old, new))


@pytest.fixture
def emulation(monkeypatch):
    monkeypatch.setattr(lock, "shared", contextlib.nullcontext)
    # Every LV active (a device node), none open.
    monkeypatch.setattr(state, "block_device", lambda path: os.makedev(230, 7))
    monkeypatch.setattr(state.OpenDevices, "is_open", lambda self, path, rdev: False)
    cfg = types.SimpleNamespace(lvm_vg=VG, lvm_parent=PARENT, zfs_timeout=10, attach_timeout=1, volume_options=None)

    def make(lvs, clones=None):
        return commands.Emulation(cfg, zfs=FakeZfs(lvs, clones))

    return make


def remove(emulation, argv, stdin="", monkeypatch=None):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return emulation.lvremove(args_module.parse("lvremove", argv))


# -- lvremove asks as lvm2 does -------------------------------------------------


@pytest.mark.parametrize(
    "answers,result,echo",
    [
        ("", False, "[n]\n"),  # end of input (stdin /dev/null): no, shown as lvm2 does
        ("y\n", True, ""),
        ("Y\n", True, ""),
        ("n\n", False, ""),
        ("y", False, "[n]\n"),  # no newline before the end: lvm2 reads EOF, which is no
        ("\nyes\n", True, ""),  # an empty line asks again
        ("yn\ny\n", True, ""),  # both letters: asked again
    ],
)
def test_yes_no_prompt_reads_like_lvm2(answers, result, echo):
    err = io.StringIO()
    assert commands.yes_no_prompt("Q? [y/n]: ", io.StringIO(answers), err) is result
    asked = err.getvalue()
    assert asked.endswith("Q? [y/n]: " + echo) and asked.count("Q? [y/n]: ") == 1 + answers.count("\n") - (1 if result or answers.endswith("n\n") else 0)


def test_lvremove_without_f_and_without_input_removes_nothing(emulation, monkeypatch, capsys):
    current = emulation({"a.disk0": ""})
    assert remove(current, [f"{VG}/a.disk0"], "", monkeypatch) == 5
    assert current.zfs.changes == []
    err = capsys.readouterr().err
    assert err == (f"Do you really want to remove active logical volume {VG}/a.disk0? [y/n]: [n]\n"
                   f"  Logical volume {VG}/a.disk0 not removed.\n")


def test_lvremove_answered_yes_or_forced_removes(emulation, monkeypatch, capsys):
    current = emulation({"a.disk0": ""})
    assert remove(current, [f"{VG}/a.disk0"], "y\n", monkeypatch) == 0
    assert current.zfs.changes == [("destroy", f"{PARENT}/a.disk0")]
    assert capsys.readouterr().err == f"Do you really want to remove active logical volume {VG}/a.disk0? [y/n]: "
    for flags in (["-f"], ["-ff"], ["--yes"], ["-y"]):
        current = emulation({"a.disk0": ""})
        assert remove(current, [*flags, f"{VG}/a.disk0"], "", monkeypatch) == 0, flags
        assert current.zfs.changes == [("destroy", f"{PARENT}/a.disk0")]
        assert capsys.readouterr().err == "", flags


def test_lvremove_of_an_origin_asks_once_before_destroying(emulation, monkeypatch, capsys):
    lvs = {"o.disk0": "", "o.disk0.snap": f"{PARENT}/o.disk0@o.disk0.snap"}
    current = emulation(lvs)
    assert remove(current, [f"{VG}/o.disk0"], "n\n", monkeypatch) == 5
    assert current.zfs.changes == []
    assert capsys.readouterr().err == (
        f"Do you really want to remove active origin logical volume {VG}/o.disk0 with 1 snapshots(s)? [y/n]: "
        f"  Logical volume {VG}/o.disk0 not removed.\n")
    current = emulation(lvs)
    assert remove(current, [f"{VG}/o.disk0"], "y\n", monkeypatch) == 0
    assert current.zfs.changes == [("destroy", f"{PARENT}/o.disk0.snap"), ("destroy", f"{PARENT}/o.disk0@o.disk0.snap"),
                                   ("destroy", f"{PARENT}/o.disk0")]


def test_an_inactive_lv_is_removed_without_a_question(emulation, monkeypatch, capsys):
    monkeypatch.setattr(state, "block_device", lambda path: None)
    current = emulation({"a.disk0": ""})
    assert remove(current, [f"{VG}/a.disk0"], "", monkeypatch) == 0
    assert current.zfs.changes == [("destroy", f"{PARENT}/a.disk0")] and capsys.readouterr().err == ""


def test_lvremove_f_of_an_origin_whose_snapshot_is_cloned_outside_destroys_nothing(emulation, monkeypatch):
    lvs = {"o.disk0": "", "o.disk0.snap": f"{PARENT}/o.disk0@o.disk0.snap"}
    clones = {f"{PARENT}/o.disk0@o.disk0.snap": [f"{PARENT}/o.disk0.snap"],
              f"{PARENT}/o.disk0@daily": ["tank/ganeti/copy"]}
    current = emulation(lvs, clones)
    with pytest.raises(Error, match=r"o.disk0 not removed: its snapshot tank/gnt/o.disk0@daily is the origin of tank/ganeti/copy"):
        remove(current, ["-f", f"{VG}/o.disk0"], "", monkeypatch)
    assert current.zfs.changes == []
    # The snapshot LV's own clone is removed with it: no refusal.
    del current.zfs.clones[f"{PARENT}/o.disk0@daily"]
    assert remove(current, ["-f", f"{VG}/o.disk0"], "", monkeypatch) == 0


# -- lvrename of a snapshot LV ----------------------------------------------------


def test_lvrename_of_a_snapshot_lv_renames_its_zfs_snapshot(emulation, monkeypatch):
    monkeypatch.setattr(commands.links, "ensure", lambda *a: None)
    lvs = {"o.disk0": "", "o.disk0.snap": f"{PARENT}/o.disk0@o.disk0.snap"}
    current = emulation(lvs)
    assert current.lvrename(args_module.parse("lvrename", [VG, "o.disk0.snap", "other"])) == 0
    assert current.zfs.changes == [("rename", f"{PARENT}/o.disk0@o.disk0.snap", f"{PARENT}/o.disk0@other"),
                                   ("rename", f"{PARENT}/o.disk0.snap", f"{PARENT}/other")]


def test_a_failed_lvrename_of_a_snapshot_lv_puts_the_snapshot_name_back(emulation, monkeypatch):
    lvs = {"o.disk0": "", "o.disk0.snap": f"{PARENT}/o.disk0@o.disk0.snap"}
    current = emulation(lvs)
    current.zfs.fail_rename = f"{PARENT}/o.disk0.snap"
    with pytest.raises(Error):
        current.lvrename(args_module.parse("lvrename", [VG, "o.disk0.snap", "other"]))
    assert current.zfs.changes == [("rename", f"{PARENT}/o.disk0@o.disk0.snap", f"{PARENT}/o.disk0@other"),
                                   ("rename", f"{PARENT}/o.disk0@other", f"{PARENT}/o.disk0@o.disk0.snap")]


# -- "open" from the kernel's view, never from an open ----------------------------


def test_open_devices_reads_the_kernel_and_opens_nothing(tmp_path, monkeypatch):
    proc, sys_dev, sys_class = tmp_path / "proc", tmp_path / "sysdev", tmp_path / "sysclass"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text("22 1 0:21 / / rw - ext4 /dev/vda1 rw\n25 22 230:32 / /mnt rw - ext4 /dev/zd32 rw\n")
    (proc / "swaps").write_text("Filename Type Size Used Priority\n/dev/zd48 partition 1024 0 -2\n")
    (proc / "77" / "fd").mkdir(parents=True)
    os.symlink("/dev/zd0", proc / "77" / "fd" / "5")
    (sys_dev / "230:16" / "holders" / "dm-0").mkdir(parents=True)
    (sys_dev / "230:64" / "holders").mkdir(parents=True)
    (sys_class / "loop0" / "loop").mkdir(parents=True)
    (sys_class / "loop0" / "loop" / "backing_file").write_text("/dev/zd80\n")
    (sys_class / "loop1").mkdir()  # a loop device with nothing behind it

    def no_open(*args, **kwargs):
        raise AssertionError("a listing opened a device")

    monkeypatch.setattr(os, "open", no_open)
    opened = state.OpenDevices(proc=str(proc), sys_block=str(sys_dev), sys_class_block=str(sys_class))
    assert opened.is_open("/dev/zd0", os.makedev(230, 0))  # a process (dd, KVM)
    assert opened.is_open("/dev/zd16", os.makedev(230, 16))  # device-mapper, md, DRBD: holders
    assert opened.is_open("/dev/zd32", os.makedev(230, 32))  # mounted
    assert opened.is_open("/dev/zd48", os.makedev(230, 48))  # swap
    assert opened.is_open("/dev/zd80", os.makedev(230, 80))  # a loop device's backing file
    assert not opened.is_open("/dev/zd64", os.makedev(230, 64))  # idle: empty holders


# -- LVM_VG names ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mapper", "disk", "zvol", "zfs", "snapshot", "null", ".", "..", ".hidden", "-x", "a/b", "a b", "a@b",
                                  "x" * 128, "tank"])
def test_vg_names_lvm2_or_dev_refuse_are_refused_at_load(tmp_path, name):
    path = tmp_path / "extstorage-zfs.conf"
    path.write_text(f"ZFS_PARENT=tank/ganeti\nLVM_VG='{name}'\nLVM_PARENT=tank/gnt\n")
    with pytest.raises(ConfigError, match="LVM_VG"):
        config.load(str(path))


@pytest.mark.parametrize("name", ["gnt", "xenvg", "vg_1+a.b-c", "x" * 127])
def test_vg_names_lvm2_accepts_load(tmp_path, name):
    path = tmp_path / "extstorage-zfs.conf"
    path.write_text(f"ZFS_PARENT=tank/ganeti\nLVM_VG={name}\nLVM_PARENT=tank/gnt\n")
    assert config.load(str(path)).lvm_vg == name


def test_a_real_vg_of_the_same_name_is_found_without_running_lvm(tmp_path):
    backup, mapper = tmp_path / "backup", tmp_path / "mapper"
    backup.mkdir()
    mapper.mkdir()
    (mapper / "control").touch()
    (mapper / "gnt--x-lv").touch()  # VG gnt-x, LV lv: not gnt
    assert decide.real_vg_evidence("gnt", str(backup), str(mapper)) is None
    (mapper / "gnt-lv--1").touch()
    assert decide.real_vg_evidence("gnt", str(backup), str(mapper)) == str(mapper / "gnt-lv--1")
    (backup / "gnt").touch()
    assert decide.real_vg_evidence("gnt", str(backup), str(mapper)) == str(backup / "gnt")


def test_a_wrapper_steps_aside_for_a_real_vg_of_the_same_name(monkeypatch, capsys):
    cfg = types.SimpleNamespace(lvm_vg=VG, lvm_parent=PARENT)
    monkeypatch.setattr(main, "load_emulation", lambda: cfg)
    monkeypatch.setattr(decide, "real_vg_evidence", lambda vg: f"/etc/lvm/backup/{vg}")
    execs = []
    monkeypatch.setattr(main, "exec_real", lambda command, argv: execs.append((command, argv)) or 0)
    assert main.main("lvs", [VG]) == 0
    assert execs == [("lvs", [VG])]
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "real volume group gnt exists" in err and "/etc/lvm/backup/gnt" in err


# -- global listings keep the real VGs' answer ----------------------------------------


@pytest.mark.parametrize(
    "command,argv",
    [
        ("lvs", ["-S", "lv_name=x"]), ("lvs", ["--select=lv_name=x"]), ("lvs", ["-O", "lv_size"]),
        ("lvs", ["--segments"]), ("lvs", ["--rows"]), ("lvs", ["--binary", "-o", "lv_active"]),
        ("lvs", ["-H"]), ("pvs", ["--segments"]), ("vgs", ["--nameprefixes"]), ("vgs", ["--unquoted"]),
        ("lvs", ["--configreport", "lv"]), ("lvs", ["--logonly"]),
    ],
)
def test_lvm2_report_options_parse_and_are_named_as_not_answered(command, argv):
    parsed = args_module.parse(command, argv)
    assert decide.decide(parsed, VG, "/dev/zvol/tank/gnt").kind == decide.MERGED
    with pytest.raises(report.ReportError, match="not supported"):
        report.check_answerable(parsed)


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["--version"], ["--longhelp"]])
def test_help_and_version_are_lvm2s(argv):
    assert decide.decide(args_module.parse("lvs", argv), VG, "/dev/zvol/tank/gnt").kind == decide.REAL


@pytest.fixture
def real_tool(tmp_path, monkeypatch):
    """A stand-in for lvm2's lvs: prints one row for realvg, exits with $FAKE_STATUS."""
    script = tmp_path / "lvs"
    script.write_text("#!/bin/sh\necho \"  realvg reallv $*\"\nexit ${FAKE_STATUS:-0}\n")
    script.chmod(0o755)
    monkeypatch.setattr(decide, "exec_argv", lambda command, argv: (str(script), [command, *argv]))
    return script


@pytest.mark.parametrize(
    "argv,reason",
    [
        (["-o", "lv_name,snap_percent"], "Unrecognised field: snap_percent"),
        (["-o", "pe_start"], "Unrecognised field: pe_start"),
        (["--units", "4m"], "Invalid units"),
        (["--reportformat", "json"], "--reportformat json"),
        (["-S", "lv_name=x"], "-S/--select"),
        (["--rows"], "--rows"),
    ],
)
def test_a_global_listing_we_cannot_answer_prints_the_real_one_and_says_so(emulation, real_tool, argv, reason, capfd, monkeypatch):
    current = emulation({"a.disk0": ""})
    parsed = args_module.parse("lvs", argv)
    plan = decide.decide(parsed, VG, current.pv_name)
    assert current.listing(parsed, plan) == 5
    out, err = capfd.readouterr()
    assert out == f"  realvg reallv {' '.join(argv)}\n"
    assert len(err.splitlines()) == 1 and f"volume group {VG} not reported" in err and reason in err
    monkeypatch.setenv("FAKE_STATUS", "3")  # the real tool's own failure is its status
    assert current.listing(parsed, plan) == 3


def test_a_global_listing_survives_a_zfs_failure(emulation, real_tool, capfd):
    current = emulation({"a.disk0": ""})

    def timeout(*args, **kwargs):
        raise Error("zfs list timed out after 10 s")

    current.zfs.list = timeout
    parsed = args_module.parse("vgs", [])
    assert current.listing(parsed, decide.decide(parsed, VG, current.pv_name)) == 5
    out, err = capfd.readouterr()
    assert out == "  realvg reallv \n" and "zfs list timed out" in err and len(err.splitlines()) == 1


def test_a_listing_naming_only_the_emulated_vg_still_refuses(emulation):
    current = emulation({"a.disk0": ""})
    parsed = args_module.parse("lvs", ["-o", "snap_percent", VG])
    with pytest.raises(report.ReportError):
        current.listing(parsed, decide.decide(parsed, VG, current.pv_name))


# -- display and scan commands (decide.DISPLAYS), vgchange, lvresize ----------------


@pytest.mark.parametrize("argv", [["gnt"], ["-m", "gnt/a.disk0"], ["/dev/gnt/a.disk0"], ["-v", "/dev/zvol/tank/gnt"]])
def test_a_display_command_naming_the_emulated_vg_is_ours(argv):
    assert decide.decide_display(argv, VG, "/dev/zvol/tank/gnt") == decide.Plan(decide.EMULATED)


@pytest.mark.parametrize("argv", [[], ["-m"], ["-c", "--bogus"]])
def test_a_display_of_everything_is_lvm2s_with_the_same_argv(argv):
    assert decide.decide_display(argv, VG, "/dev/zvol/tank/gnt") == decide.Plan(decide.MERGED, tuple(argv))


@pytest.mark.parametrize("argv", [["-c", "xenvg"], ["--bogus", "xenvg/lv"], ["gnt2"], ["--units", "m"]])
def test_a_display_naming_something_else_is_lvm2s_alone(argv):
    assert decide.decide_display(argv, VG, "/dev/zvol/tank/gnt") == decide.Plan(decide.REAL)


def test_display_help_is_lvm2s_alone():
    assert decide.decide_display(["--help", "gnt"], VG, "/dev/zvol/tank/gnt").kind == decide.REAL


@pytest.mark.parametrize("command,use", [("vgdisplay", "use vgs gnt"), ("lvdisplay", "use lvs gnt"),
                                         ("lvscan", "use lvs gnt"), ("pvscan", "use pvs /dev/zvol/tank/gnt")])
def test_a_display_command_naming_the_emulated_vg_names_the_command_to_use(emulation, real_tool, command, use, capfd):
    current = emulation({"a.disk0": ""})
    with pytest.raises(Error, match=f"emulated from ZFS.*{use}$"):
        current.display(command, [VG], decide.Plan(decide.EMULATED))
    assert capfd.readouterr() == ("", "")  # lvm2 did not run


@pytest.mark.parametrize("command", ["vgdisplay", "lvdisplay", "pvscan"])
def test_a_global_display_is_lvm2s_and_one_line_says_where_the_emulated_vg_is(emulation, real_tool, command, capfd, monkeypatch):
    current = emulation({"a.disk0": ""})
    assert current.display(command, ["-v"], decide.Plan(decide.MERGED, ("-v",))) == 0
    out, err = capfd.readouterr()
    assert out == "  realvg reallv -v\n"
    assert len(err.splitlines()) == 1 and f"{VG} is emulated" in err and current.use_instead(command) in err
    monkeypatch.setenv("FAKE_STATUS", "5")
    assert current.display(command, [], decide.Plan(decide.MERGED, ())) == 5


def test_lvscan_prints_lvm2s_lines_then_the_emulated_lvs(emulation, real_tool, capfd, monkeypatch):
    current = emulation({"a.disk0": "", "a.disk0.snap": f"{PARENT}/a.disk0@snap"})
    assert current.display("lvscan", [], decide.Plan(decide.MERGED, ())) == 0
    out, err = capfd.readouterr()
    assert out == ("  realvg reallv \n"
                   "  ACTIVE   Original '/dev/gnt/a.disk0' [8.00 MiB] inherit\n"
                   "  ACTIVE   Snapshot '/dev/gnt/a.disk0.snap' [8.00 MiB] inherit\n")
    assert err == ""
    monkeypatch.setenv("FAKE_STATUS", "3")
    assert current.display("lvscan", [], decide.Plan(decide.MERGED, ())) == 3


def test_lvscan_with_options_is_lvm2s_and_says_so(emulation, real_tool, capfd):
    current = emulation({"a.disk0": ""})
    assert current.display("lvscan", ["-b"], decide.Plan(decide.MERGED, ("-b",))) == 0
    out, err = capfd.readouterr()
    assert out == "  realvg reallv -b\n" and "use lvs gnt" in err and len(err.splitlines()) == 1


def test_lvscan_survives_a_zfs_failure(emulation, real_tool, capfd):
    current = emulation({"a.disk0": ""})

    def timeout(*args, **kwargs):
        raise Error("zfs list timed out after 10 s")

    current.zfs.list = timeout
    assert current.display("lvscan", [], decide.Plan(decide.MERGED, ())) == 5
    out, err = capfd.readouterr()
    assert out == "  realvg reallv \n" and "zfs list timed out" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("size,text", [(8 * MIB, "8.00 MiB"), (1536 * MIB, "1.50 GiB"), (4 << 40, "4.00 TiB"),
                                       (4096 * MIB + 4 * MIB, "4.00 GiB")])
def test_display_size_is_lvm2s(size, text):
    assert report.display_size(size) == text


def test_an_inactive_plain_lv_in_lvscan():
    lv = report.LV(name="x", guid="1", size=8 * MIB, active=False, open=False, kernel_major=-1, kernel_minor=-1,
                   tags=(), origin="", has_snapshots=False)
    assert report.lvscan_line(lv, VG) == "  inactive          '/dev/gnt/x' [8.00 MiB] inherit\n"


def test_vgchange_ay_activates_every_lv_and_says_so_as_lvm2_does(emulation, monkeypatch, capsys):
    current = emulation({"a.disk0": "", "b.disk0": ""})
    made = []
    monkeypatch.setattr(commands.links, "ensure", lambda vg, lv, dataset, timeout: made.append((vg, lv, dataset)))
    assert current.vgchange(args_module.parse("vgchange", ["-ay", VG])) == 0
    assert made == [(VG, "a.disk0", f"{PARENT}/a.disk0"), (VG, "b.disk0", f"{PARENT}/b.disk0")]
    assert capsys.readouterr().out == '  2 logical volume(s) in volume group "gnt" now active\n'


def test_vgchange_an_refuses_while_an_lv_is_open_and_changes_nothing(emulation, monkeypatch):
    current = emulation({"a.disk0": "", "b.disk0": ""})
    monkeypatch.setattr(state.OpenDevices, "is_open", lambda self, path, rdev: True)
    monkeypatch.setattr(commands.links, "remove", lambda vg, lv: pytest.fail("must not deactivate"))
    with pytest.raises(Error, match="gnt/a.disk0 in use"):
        current.vgchange(args_module.parse("vgchange", ["-an", VG]))


def test_vgchange_without_a_is_refused(emulation):
    with pytest.raises(commands.UsageError, match="only -a y|n"):
        emulation({}).vgchange(args_module.parse("vgchange", [VG]))


def test_vgchange_decides_by_vg_name():
    parse = args_module.parse
    assert decide.decide(parse("vgchange", ["-ay", "/dev/gnt"]), VG, "pv").kind == decide.EMULATED
    assert decide.decide(parse("vgchange", ["-ay", "xenvg"]), VG, "pv").kind == decide.REAL
    assert decide.decide(parse("vgchange", ["-ay"]), VG, "pv").kind == decide.REAL
    assert decide.decide(parse("lvresize", ["-L+1g", "gnt/a"]), VG, "pv").kind == decide.EMULATED
    assert decide.decide(parse("lvresize", ["-L+1g", "xenvg/a"]), VG, "pv").kind == decide.REAL


def test_lvresize_grows_like_lvextend(emulation, capsys):
    current = emulation({"a.disk0": ""})
    sets = []
    current.zfs.set = lambda name, props: sets.append((name, props))
    assert current.lvresize(args_module.parse("lvresize", ["-L16m", f"{VG}/a.disk0"])) == 0
    assert sets == [(f"{PARENT}/a.disk0", {"volsize": str(16 * MIB)})]
    assert "successfully resized" in capsys.readouterr().out


@pytest.mark.parametrize("size", ["-L4m", "-L-4m"])
def test_lvresize_never_shrinks(emulation, size):
    current = emulation({"a.disk0": ""})
    current.zfs.set = lambda name, props: pytest.fail("must not change the zvol")
    with pytest.raises(commands.UsageError, match="Reducing a logical volume of the emulated VG gnt is not supported"):
        current.lvresize(args_module.parse("lvresize", [size, f"{VG}/a.disk0"]))


def test_main_answers_a_display_command_naming_the_emulated_vg_in_one_line(tmp_path, monkeypatch, real_tool, capfd):
    conffile = tmp_path / "extstorage-zfs.conf"
    conffile.write_text(f"ZFS_PARENT=tank/ganeti\nLVM_VG={VG}\n")
    monkeypatch.setenv("GANETI_ZFS_CONFIG", str(conffile))
    monkeypatch.setattr(os, "execv", lambda path, argv: pytest.fail("must not exec"))
    assert main.main("vgdisplay", ["-c", VG]) == commands.EXIT_FAILED
    out, err = capfd.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and f"use vgs {VG}" in err
    assert main.main("lvdisplay", ["-m"]) == 0
    out, err = capfd.readouterr()
    assert out == "  realvg reallv -m\n" and f"use lvs {VG}" in err
    calls = []
    monkeypatch.setattr(os, "execv", lambda path, argv: calls.append(argv))
    main.main("lvdisplay", ["-m", "xenvg/lv"])
    assert calls == [["lvdisplay", "-m", "xenvg/lv"]]
