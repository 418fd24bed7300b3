"""LVM emulation: the pure parts of the changing commands, and the udev naming."""

import re
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from ganeti_zfs.errors import UsageError
from ganeti_zfs.lvm import commands, decide, report, udev

MIB = 1 << 20
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("256m", ("", 256 * MIB)),
        ("256", ("", 256 * MIB)),  # lvm2's default unit for -L is MiB
        ("+1024k", ("+", MIB)),
        ("+65536K", ("+", 64 * MIB)),  # upper case is still 1024-based in size arguments
        ("1.5g", ("", 1536 * MIB)),
        ("2G", ("", 2048 * MIB)),
        ("512b", ("", 512)),
        ("8s", ("", 4096)),
        ("-4m", ("-", 4 * MIB)),
    ],
)
def test_parse_size(text, expected):
    assert commands.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "m", "10x", "1,5g", "+-1m", "ten"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(UsageError):
        commands.parse_size(text)


@given(st.integers(min_value=1, max_value=1 << 50))
def test_sizes_round_up_to_whole_extents(size):
    rounded = commands.round_to_extent(size)
    assert rounded % (4 * MIB) == 0 and size <= rounded < size + 4 * MIB


@pytest.mark.parametrize("name", ["6b1f0a6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b.disk0", "x.disk0_data", "x.disk0_meta", "a.snap",
                                  "x.disk0_replaced-1700000000", "lvol0"])
def test_ganeti_lv_names_are_accepted(name):
    assert commands.check_lv_name(name, "gnt") == name


@pytest.mark.parametrize("name", ["", ".", "..", "snapshot", "pvmove", "a+b", "-x", "a/b", "a b", "x_mlog", "x" * 128])
def test_bad_lv_names_are_refused(name):
    with pytest.raises(UsageError):
        commands.check_lv_name(name, "gnt")


def test_tags_ganeti_writes_are_accepted():
    emulation = commands.Emulation.__new__(commands.Emulation)
    assert emulation._check_tag("originstname+inst1.example.com") == "originstname+inst1.example.com"
    for bad in ("a,b", "a b", ""):
        with pytest.raises(UsageError):
            emulation._check_tag(bad)


def test_udev_names_only_lvs_directly_under_the_parent():
    assert udev.link_name("tank/gnt/x.disk0", "gnt", "tank/gnt") == "gnt/x.disk0"
    assert udev.link_name("tank/gnt/a/b", "gnt", "tank/gnt") is None
    assert udev.link_name("tank/ganeti/x.ext.disk0", "gnt", "tank/gnt") is None
    assert udev.link_name("tank/gnt/x@snap", "gnt", "tank/gnt") is None
    assert udev.link_name("tank/gnt/x", "", "") is None


def test_udev_rule_calls_the_helper_module_that_exists():
    rule = (ROOT / "debian" / "ganeti-extstorage-zfs.udev").read_text()
    module = re.search(r"python3 -m (ganeti_zfs\.lvm\.udev)", rule).group(1)
    assert module == udev.__name__
    assert 'SYMLINK+="%c"' in rule and "zvol_id" in rule


def test_pv_name_has_no_characters_ganeti_refuses():
    name = decide.pv_name("tank/gnt")
    assert name == "/dev/zvol/tank/gnt" and not re.search(r"[:()\s]", name)


def test_lvm_uuids_are_stable_and_shaped_like_lvm():
    uuid = report.lvm_uuid("12345")
    assert uuid == report.lvm_uuid("12345") != report.lvm_uuid("12346")
    assert re.fullmatch(r"[A-Za-z0-9]{6}(-[A-Za-z0-9]{4}){5}-[A-Za-z0-9]{6}", uuid)
