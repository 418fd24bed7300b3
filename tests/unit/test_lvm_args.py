"""LVM emulation: argv parsing and the decision who answers (pure functions)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given, settings, strategies as st

from ganeti_zfs.lvm import COMMANDS, args, decide, main

VG = "gnt"
PV = "/dev/zvol/tank/gnt"

# Every LVM argv Ganeti 3.0 runs (docs/ganeti-contract.md §2.3, §2.4).
GANETI_ARGVS = [
    ("lvs", ["--noheadings", "--separator=|", "--units=k", "--nosuffix",
             "-ovg_name,lv_name,lv_attr,lv_kernel_major,lv_kernel_minor,vg_extent_size,stripes,devices"]),
    ("lvs", ["--noheadings", "--units=m", "--nosuffix", "--separator=|", "-ovg_name,lv_name,lv_size,lv_attr", "xenvg", VG]),
    ("lvs", ["--noheadings", "--units=m", "--nosuffix", "--separator=|", "--options=lv_name,lv_size,devices,vg_name"]),
    ("lvs", ["-o", "tags", "--noheadings", "--nosuffix", f"/dev/{VG}/x.disk0"]),
    ("vgs", ["--noheadings", "--units", "m", "--nosuffix", "-o", "name,size"]),
    ("vgs", ["--noheadings", "--nosuffix", "--units=m", "--unbuffered", "--separator=|", "-ovg_name,vg_free,vg_attr,vg_size"]),
    ("pvs", ["--noheadings", "--nosuffix", "--units=m", "--unbuffered", "--separator=|",
             "-opv_name,vg_name,pv_free,pv_attr,pv_size,pv_name"]),
    ("vgs", ["--noheadings", "--units=m", "--nosuffix", "--separator", "|", "--options", "vg_name,vg_size,vg_free", VG]),
    ("pvs", ["--noheadings", "--units=m", "--nosuffix", "--separator", "|", "--options",
             "pv_name,pv_size,pv_used,pv_free,pv_attr", PV]),
    ("lvs", ["--noheadings", "--units", "B", "--separator", ";", "-o",
             "lv_uuid,lv_name,lv_attr,lv_major,lv_minor,lv_kernel_major,lv_kernel_minor,lv_size,seg_count,lv_tags,"
             "modules,vg_uuid,vg_name,segtype,seg_start,seg_start_pe,seg_size,seg_tags,seg_pe_ranges,devices"]),
    ("lvcreate", ["-Wn", "-L256m", "-nx.disk0", "-i1", VG, PV]),
    ("lvcreate", ["-L256m", "-s", "-nx.disk0.snap", f"/dev/{VG}/x.disk0"]),
    ("lvremove", ["-f", f"{VG}/x.disk0"]),
    ("lvrename", [VG, "x.disk0", "y.disk0_data"]),
    ("lvchange", ["-ay", f"/dev/{VG}/x.disk0"]),
    ("lvchange", ["--addtag", "originstname+inst1", f"/dev/{VG}/x.disk0"]),
    ("lvchange", ["--deltag", "originstname+inst1", f"/dev/{VG}/x.disk0"]),
    ("lvextend", ["-L", "+1024k", "--test", "--alloc", "contiguous", f"/dev/{VG}/x.disk0"]),
    ("lvextend", ["-L", "+1024k", "--alloc", "normal", f"/dev/{VG}/x.disk0"]),
    ("pvchange", ["--allocatable", "y", PV]),
    ("vgreduce", ["--removemissing", VG]),
    ("vgreduce", ["--removemissing", "--force", VG]),
    ("vgs", ["--noheadings", "--nosuffix", VG]),
]


@pytest.mark.parametrize("command,argv", GANETI_ARGVS)
def test_every_ganeti_argv_parses_and_is_ours(command, argv):
    plan = decide.decide(args.parse(command, argv), VG, PV)
    # Each names our VG, or is a listing of every VG (real rows, then ours).
    assert plan.kind == (decide.MERGED if command in ("lvs", "vgs", "pvs") and (not argv[-1].startswith(("/dev/", VG)) or "xenvg" in argv) else decide.EMULATED)


def test_option_spellings_are_equivalent():
    forms = [
        ["-ovg_name,lv_name", "--separator=|", "--units=m"],
        ["-o", "vg_name,lv_name", "--separator", "|", "--units", "m"],
        ["--options=vg_name,lv_name", "--separator=|", "--units", "m"],
        ["--options", "vg_name,lv_name", "--separator", "|", "--units=m"],
        ["--opt", "vg_name,lv_name", "--sep=|", "--uni=m"],  # getopt_long abbreviations
    ]
    parsed = [args.parse("lvs", form) for form in forms]
    for one in parsed:
        assert one.last("options") == "vg_name,lv_name"
        assert one.last("separator") == "|"
        assert one.last("units") == "m"


def test_short_option_values_and_clusters():
    parsed = args.parse("lvcreate", ["-Wn", "-L", "1g", "-n", "a", "-i1", "-sy", "vg/x"])
    assert parsed.last("wipesignatures") == "n"
    assert parsed.last("size") == "1g"
    assert parsed.last("name") == "a"
    assert parsed.last("stripes") == "1"
    assert parsed.has("snapshot") and parsed.has("yes")
    assert parsed.names() == ["vg/x"]


def test_activate_is_a_value_in_lvchange_and_a_flag_in_lvs():
    assert args.parse("lvchange", ["-ay", "vg/x"]).last("activate") == "y"
    parsed = args.parse("lvs", ["-a", "vg"])
    assert parsed.has("all") and parsed.names() == ["vg"]


def test_double_dash_ends_options():
    parsed = args.parse("lvs", ["--noheadings", "--", "-weird"])
    assert parsed.names() == ["-weird"]


@pytest.mark.parametrize("argv", [["--bogus"], ["-Q"], ["-o"], ["--noheadings=1"], ["--no", "x"]])
def test_bad_options_raise(argv):
    with pytest.raises(args.ArgsError):
        args.parse("lvs", argv)


@pytest.mark.parametrize(
    "word,expected",
    [
        ("gnt", ("gnt", None)),
        ("gnt/lv", ("gnt", "lv")),
        ("/dev/gnt/lv", ("gnt", "lv")),
        ("/dev/gnt", ("gnt", None)),
        ("/dev/mapper/gnt-lv", ("gnt", "lv")),
        ("/dev/mapper/my--vg-my--lv", ("my-vg", "my-lv")),
        ("a/b/c", (None, None)),
    ],
)
def test_split_lv_path(word, expected):
    assert decide.split_lv_path(word) == expected


def test_listing_that_names_other_and_our_vg_runs_the_real_tool_without_our_names():
    argv = ["--noheadings", "-ovg_name,lv_name", "realvg", "gnt", "/dev/gnt/x"]
    plan = decide.decide(args.parse("lvs", argv), VG, PV)
    assert plan == decide.Plan(decide.MERGED, ("--noheadings", "-ovg_name,lv_name", "realvg"))


def test_a_change_naming_both_is_refused():
    plan = decide.decide(args.parse("lvremove", ["-f", "realvg/a", "gnt/b"]), VG, PV)
    assert plan.kind == decide.MIXED


def test_pvs_of_our_pv_is_ours_and_a_real_pv_is_not():
    assert decide.decide(args.parse("pvs", [PV]), VG, PV).kind == decide.EMULATED
    assert decide.decide(args.parse("pvs", ["/dev/vdd"]), VG, PV).kind == decide.REAL


def test_real_tool_is_lvm_with_the_plain_command_as_argv0():
    # The same path on bookworm and trixie, whichever diversion holds lvm2's link.
    assert decide.exec_argv("lvs", ["-a"]) == ("/usr/sbin/lvm", ["lvs", "-a"])


# -- property: what does not name our VG reaches the real tool unchanged ------

_word = st.one_of(
    st.sampled_from(
        ["-a", "-o", "vg_name", "--options", "--separator", "|", "--units", "m", "k", "B", "--noheadings", "--nosuffix",
         "--unbuffered", "-f", "-ay", "-L", "+4k", "--test", "--alloc", "normal", "-n", "x", "-Wn", "-s", "--addtag",
         "--deltag", "--removemissing", "-x", "y", "--", "xenvg", "xenvg/lv", "/dev/xenvg/lv", "/dev/vdd", "@tag",
         "gnt2", "gntx/lv", "/dev/gnt2/x", "-ovg_name", "--units=m", "--bogus", "-Q", "-", "--help", "-h"]
    ),
    st.text(min_size=0, max_size=12),
    st.binary(max_size=8).map(lambda raw: raw.decode("utf-8", "surrogateescape")),
)


def _names_ours(argv):
    return any(decide.names_vg(word.partition("=")[2] if word.startswith("--") else word, VG) or PV in word for word in argv)


@settings(max_examples=600)
@given(command=st.sampled_from(COMMANDS), argv=st.lists(_word, max_size=8))
def test_argv_not_naming_our_vg_goes_to_the_real_tool_byte_for_byte(command, argv):
    assume(not _names_ours(argv))
    if command in decide.DISPLAYS:
        plan = decide.decide_display(argv, VG, PV)  # main() never parses them
    else:
        try:
            parsed = args.parse(command, argv)
        except args.ArgsError:
            # main() passes unparsable command lines on as they are.
            assert not decide.mentions_vg(argv, VG, PV)
            return
        plan = decide.decide(parsed, VG, PV)
    assert plan.kind in (decide.REAL, decide.MERGED)
    if plan.kind == decide.MERGED:
        # A listing of every VG: the real tool still gets exactly this argv.
        assert list(plan.real_argv) == argv
    path, full = decide.exec_argv(command, list(plan.real_argv) if plan.kind == decide.MERGED else argv)
    assert full[0] == command and full[1:] == argv
    assert [os.fsencode(word) for word in full[1:]] == [os.fsencode(word) for word in argv]


def test_main_execs_the_real_tool_for_other_vgs(tmp_path, monkeypatch):
    conffile = tmp_path / "extstorage-zfs.conf"
    conffile.write_text("ZFS_PARENT=tank/ganeti\nLVM_VG=gnt\n")
    monkeypatch.setenv("GANETI_ZFS_CONFIG", str(conffile))
    calls = []
    monkeypatch.setattr(os, "execv", lambda path, argv: calls.append((path, argv)))
    weird = os.fsdecode(b"\xff\xfe")
    for command, argv in [("lvs", ["xenvg"]), ("lvcreate", ["-L1g", "-nx", "xenvg"]), ("lvremove", ["-f", f"xenvg/{weird}"]),
                          ("lvs", ["--bogus-option"]), ("vgs", ["--help"])]:
        calls.clear()
        main.main(command, argv)
        assert len(calls) == 1 and calls[0][1] == [command, *argv]


def test_main_passes_through_without_config_and_reports_why_only_for_our_vg(tmp_path, monkeypatch, capsys):
    conffile = tmp_path / "extstorage-zfs.conf"
    conffile.write_text("LVM_VG=gnt\nKEEP_DAILY=lots\n")  # invalid: KEEP_DAILY
    monkeypatch.setenv("GANETI_ZFS_CONFIG", str(conffile))
    calls = []
    monkeypatch.setattr(os, "execv", lambda path, argv: calls.append(argv))
    main.main("lvs", ["xenvg"])
    assert calls == [["lvs", "xenvg"]] and capsys.readouterr().err == ""
    main.main("lvs", ["gnt"])
    assert calls[-1] == ["lvs", "gnt"]
    assert "KEEP_DAILY" in capsys.readouterr().err
    monkeypatch.setenv("GANETI_ZFS_CONFIG", str(tmp_path / "missing.conf"))
    main.main("vgs", [])
    assert calls[-1] == ["vgs"]


def test_main_rejects_unknown_options_for_our_vg(tmp_path, monkeypatch, capsys):
    conffile = tmp_path / "extstorage-zfs.conf"
    conffile.write_text("ZFS_PARENT=tank/ganeti\nLVM_VG=gnt\n")
    monkeypatch.setenv("GANETI_ZFS_CONFIG", str(conffile))
    monkeypatch.setattr(os, "execv", lambda path, argv: pytest.fail("must not exec"))
    assert main.main("lvextend", ["-r", "-L+1g", "gnt/x"]) == main.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "-r" in err


def test_the_pass_through_imports_only_what_deciding_needs(tmp_path):
    """Start-up time (docs/benchmarks.md): no state, report, commands or zfs before exec'ing the real tool."""
    conffile = tmp_path / "extstorage-zfs.conf"
    conffile.write_text("ZFS_PARENT=tank/ganeti\nLVM_VG=gnt\n")
    code = (
        "import os, sys\n"
        "os.execv = lambda path, argv: print(' '.join(sorted(sys.modules)))\n"
        "from ganeti_zfs.lvm.main import main\n"
        "main('lvs', ['xenvg'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                            text=True, check=True, env={**os.environ, "GANETI_ZFS_CONFIG": str(conffile)})
    modules = set(result.stdout.split())
    assert "ganeti_zfs.lvm.decide" in modules
    heavy = {"ganeti_zfs.lvm.state", "ganeti_zfs.lvm.report", "ganeti_zfs.lvm.commands", "ganeti_zfs.zfs", "subprocess",
             "dataclasses", "hashlib"}
    assert not heavy & modules
