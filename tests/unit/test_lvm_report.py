"""LVM emulation: every report Ganeti asks for parses with Ganeti's own logic.

The parsers below are re-implemented from docs/ganeti-contract.md §2.3 (Ganeti
3.0.2: lib/storage/bdev.py, lib/backend.py, lib/utils/__init__.py,
lib/storage/container.py, src/Ganeti/Storage/Lvm/LVParser.hs), including
their field counts and regexes. The guest suite runs Ganeti's real Python
parsers on the real wrappers' output as well.
"""

import contextlib
import io
import re
import types

import pytest
from hypothesis import given, settings, strategies as st

from ganeti_zfs import properties
from ganeti_zfs.lvm import args, commands, decide, report, state

VG_NAME = "gnt"
PV = "/dev/zvol/tank/gnt"
MIB = 1024 * 1024


def lines_of(command, argv, vg, lvs=()):
    """What the wrapper prints for our VG: the same steps as Emulation.listing."""
    parsed = args.parse(command, argv)
    style = report.style_of(parsed)
    fields = report.resolve_fields(command, parsed.all("options"))
    rows = [report.cells(fields, lv, vg, style) for lv in lvs] if command == "lvs" else [report.cells(fields, None, vg, style)]
    return report.render(fields, rows, style)


# -- Ganeti's parsers ----------------------------------------------------------


class GanetiParseError(Exception):
    pass


def parse_lv_info_line(line, sep="|"):
    """bdev.LogicalVolume._ParseLvInfoLine (§2.3.1)."""
    elems = line.strip().split(sep)
    if len(elems) == 9 and elems[-1] == "":
        elems.pop()
    if len(elems) != 8:
        raise GanetiParseError(f"Can't parse LVS output, len({elems}) != 8")
    vg_name, lv_name, status, major, minor, pe_size, stripes, pvs = elems
    if len(status) < 6:
        raise GanetiParseError(f"lvs lv_attr is not at least 6 characters ({status})")
    major, minor, pe_size, stripes = int(major), int(minor), int(float(pe_size)), int(stripes)
    pv_names = []
    if pvs:
        for pv in pvs.split(","):
            match = re.match(r"^([^ ()]+)\([0-9]+\)$", pv)
            if not match:
                raise GanetiParseError(f"Can't parse devices {pv}")
            pv_names.append(match.group(1))
    return vg_name, lv_name, status, major, minor, pe_size, stripes, pv_names


_LVSLINE_REGEX = re.compile(r"^ *([^|]+)\|([^|]+)\|([0-9.]+)\|([^|]{6,})\|?$")


def get_volume_list(output):
    """backend.GetVolumeList (§2.3.2); non-matching lines are skipped there, so here they fail."""
    lvs = {}
    for line in output.splitlines():
        match = _LVSLINE_REGEX.match(line.strip())
        if not match:
            raise GanetiParseError(f"invalid line {line!r}")
        vg_name, name, size, attr = match.groups()
        lvs[vg_name + "/" + name] = (size, attr[4] == "-", attr[5] == "o")
    return lvs


def node_volumes(output):
    """backend.NodeVolumes (§2.3.3)."""
    volumes = []
    for line in output.splitlines():
        if line.count("|") < 3:
            raise GanetiParseError(f"Strange line {line!r}")
        fields = [value.strip() for value in line.split("|")]
        for dev in fields[2].split(","):
            volumes.append({"name": fields[0], "size": fields[1], "dev": dev.split("(")[0], "vg": fields[3]})
    return volumes


def list_volume_groups(output):
    """utils.ListVolumeGroups (§2.3.5)."""
    result = {}
    for line in output.splitlines():
        try:
            name, size = line.split()
            size = int(float(size))
        except (TypeError, ValueError):
            raise GanetiParseError(f"Invalid output from vgs: {line!r}")
        result[name] = size
    return result


def get_volume_info(output, count):
    """bdev.LogicalVolume._GetVolumeInfo (§2.3.6, §2.3.7)."""
    info = []
    for line in output.splitlines():
        fields = line.strip().split("|")
        if len(fields) != count:
            raise GanetiParseError(f"Can't parse vgs output: line {line!r}")
        info.append(fields)
    return info


# container._SplitList (§2.3.8) splits the same way; it drops lines with the
# wrong field count where _GetVolumeInfo raises, so here both raise.
split_list = get_volume_info


_MOND_LINE = re.compile(
    r"^[ \t]*([^;]*)"  # uuid
    r";([^;\n]*);([^;\n]*)"  # name, attr
    r";(-?[0-9]+);(-?[0-9]+);(-?[0-9]+);(-?[0-9]+)"  # major, minor, kernel major, kernel minor
    r";([0-9]+)B;(-?[0-9]+)"  # size, seg_count
    r";([^;\n]*);([^;\n]*);([^;\n]*);([^;\n]*);([^;\n]*)"  # tags, modules, vg uuid, vg name, segtype
    r";([0-9]+)B;(-?[0-9]+);([0-9]+)B"  # seg start, seg start pe, seg size
    r";([^;\n]*);([^;\n]*);([^;\n]*)$"  # seg tags, pe ranges, devices
)


def mond_parse(output):
    """LVParser.hs lvParser (§2.3.9): 20 fields, bytes with B, every line ends with a newline."""
    if output and not output.endswith("\n"):
        raise GanetiParseError("last line not terminated")
    result = []
    for line in output.splitlines():
        match = _MOND_LINE.match(line)
        if not match:
            raise GanetiParseError(f"mond cannot parse {line!r}")
        result.append(match.groups())
    return result


# -- data ---------------------------------------------------------------------

_lv_names = st.from_regex(r"\A[A-Za-z0-9_.][A-Za-z0-9_.-]{0,40}\Z")
_tags = st.lists(st.from_regex(r"\A[A-Za-z0-9_+.\-/=!:&#]{1,20}\Z"), max_size=3).map(tuple)
_sizes = st.integers(min_value=1, max_value=1 << 44).map(lambda n: n * 512)


@st.composite
def emulated_vgs(draw):
    size = draw(st.integers(min_value=20480 * MIB, max_value=1 << 50))
    free = draw(st.integers(min_value=0, max_value=size))
    return report.VG(VG_NAME, str(size), size, free, draw(st.integers(0, 500)), draw(st.integers(0, 50)), PV, draw(st.booleans()))


@st.composite
def emulated_lvs(draw):
    names = draw(st.lists(_lv_names, max_size=6, unique=True))
    lvs = []
    for name in names:
        active = draw(st.booleans())
        lvs.append(report.LV(
            name=name, guid=name, size=draw(_sizes), active=active, open=active and draw(st.booleans()),
            kernel_major=230 if active else -1, kernel_minor=draw(st.integers(0, 1 << 20)) if active else -1,
            tags=draw(_tags), origin=draw(st.sampled_from(["", names[0]])) if names else "", has_snapshots=draw(st.booleans()),
        ))
    return lvs


GLOBAL_LVS = ["--noheadings", "--separator=|", "--units=k", "--nosuffix",
              "-ovg_name,lv_name,lv_attr,lv_kernel_major,lv_kernel_minor,vg_extent_size,stripes,devices"]
MOND_LVS = ["--noheadings", "--units", "B", "--separator", ";", "-o",
            "lv_uuid,lv_name,lv_attr,lv_major,lv_minor,lv_kernel_major,lv_kernel_minor,lv_size,seg_count,lv_tags,modules,"
            "vg_uuid,vg_name,segtype,seg_start,seg_start_pe,seg_size,seg_tags,seg_pe_ranges,devices"]


@settings(max_examples=200)
@given(vg=emulated_vgs(), lvs=emulated_lvs())
def test_every_lvs_report_parses_as_ganeti_parses_it(vg, lvs):
    cache = [parse_lv_info_line(line) for line in lines_of("lvs", GLOBAL_LVS, vg, lvs).splitlines()]
    assert [(c[0], c[1]) for c in cache] == [(VG_NAME, lv.name) for lv in lvs]
    for parsed, lv in zip(cache, lvs):
        assert parsed[2] == lv.attr and len(parsed[2]) == 10 and parsed[2][0] != "v"
        assert parsed[5] == 4096 and parsed[6] == 1 and parsed[7] == [PV]
        assert (parsed[3], parsed[4]) == (lv.kernel_major, lv.kernel_minor)

    listed = get_volume_list(lines_of(
        "lvs", ["--noheadings", "--units=m", "--nosuffix", "--separator=|", "-ovg_name,lv_name,lv_size,lv_attr", VG_NAME], vg, lvs))
    for lv in lvs:
        size, inactive, online = listed[f"{VG_NAME}/{lv.name}"]
        assert float(size) == pytest.approx(lv.size / MIB, abs=0.0051)
        assert (inactive, online) == (not lv.active, lv.open)

    volumes = node_volumes(lines_of(
        "lvs", ["--noheadings", "--units=m", "--nosuffix", "--separator=|", "--options=lv_name,lv_size,devices,vg_name"], vg, lvs))
    assert [(v["name"], v["dev"], v["vg"]) for v in volumes] == [(lv.name, PV, VG_NAME) for lv in lvs]

    mond = mond_parse(lines_of("lvs", MOND_LVS, vg, lvs))
    assert [(m[1], int(m[7]), m[12]) for m in mond] == [(lv.name, lv.size, VG_NAME) for lv in lvs]


@given(vg=emulated_vgs(), lvs=emulated_lvs().filter(bool))
def test_ganeti_2_15_per_lv_query_parses(vg, lvs):
    """v2.15 bdev.LogicalVolume.GetLvInfo: 6 fields (7 with a trailing empty one) per line."""
    text = lines_of("lvs", ["--noheadings", "--separator=|", "--units=k", "--nosuffix",
                            "-olv_attr,lv_kernel_major,lv_kernel_minor,vg_extent_size,stripes,devices",
                            f"/dev/{VG_NAME}/{lvs[0].name}"], vg, lvs[:1])
    (line,) = text.splitlines()
    fields = line.strip().split("|")
    assert len(fields) == 6
    status, major, minor, pe_size, stripes, devices = fields
    assert status == lvs[0].attr and int(float(pe_size)) == 4096 and int(stripes) == 1
    assert (int(major), int(minor)) == (lvs[0].kernel_major, lvs[0].kernel_minor)
    assert re.match(r"^([^ ()]+)\([0-9]+\)$", devices).group(1) == PV


@given(lv=emulated_lvs().filter(bool))
def test_tags_report_is_the_comma_separated_tags(lv):
    text = lines_of("lvs", ["-o", "tags", "--noheadings", "--nosuffix", f"/dev/{VG_NAME}/{lv[0].name}"], None, lv[:1])
    raw = text.strip()
    assert ([tag.strip() for tag in raw.split(",")] if raw else []) == list(lv[0].tags)


@settings(max_examples=200)
@given(vg=emulated_vgs())
def test_every_vgs_and_pvs_report_parses_as_ganeti_parses_it(vg):
    assert list_volume_groups(lines_of("vgs", ["--noheadings", "--units", "m", "--nosuffix", "-o", "name,size"], vg)) == {
        VG_NAME: int(float(f"{vg.size / MIB:.2f}"))}

    (vg_name, vg_free, vg_attr, vg_size), = get_volume_info(lines_of(
        "vgs", ["--noheadings", "--nosuffix", "--units=m", "--unbuffered", "--separator=|", "-ovg_name,vg_free,vg_attr,vg_size"],
        vg), 4)
    assert vg_name == VG_NAME and vg_attr[0] != "r"
    # Ganeti rounds the 2-decimal MiB text, as it does with LVM's.
    assert float(vg_free) == pytest.approx(vg.free / MIB, abs=0.0051) and float(vg_size) == pytest.approx(vg.size / MIB, abs=0.0051)

    (pv_name, pv_vg, pv_free, pv_attr, pv_size, pv_name2), = get_volume_info(lines_of(
        "pvs", ["--noheadings", "--nosuffix", "--units=m", "--unbuffered", "--separator=|",
                "-opv_name,vg_name,pv_free,pv_attr,pv_size,pv_name"], vg), 6)
    assert pv_name == pv_name2 == PV and pv_vg == VG_NAME and ":" not in pv_name
    assert (pv_attr[0] == "a") == vg.allocatable
    assert float(pv_free) <= float(pv_size)

    (name, size, free), = split_list(lines_of(
        "vgs", ["--noheadings", "--units=m", "--nosuffix", "--separator", "|", "--options", "vg_name,vg_size,vg_free", VG_NAME],
        vg), 3)
    assert name == VG_NAME and int(round(float(size))) - int(round(float(free))) >= 0

    (name, size, used, free, attr), = split_list(lines_of(
        "pvs", ["--noheadings", "--units=m", "--nosuffix", "--separator", "|", "--options",
                "pv_name,pv_size,pv_used,pv_free,pv_attr", PV], vg), 5)
    assert name == PV and float(used) == pytest.approx(float(size) - float(free), abs=0.02)


# -- formatting details ---------------------------------------------------------


@pytest.mark.parametrize(
    "size,units,suffix,expected",
    [
        (10240 * MIB, "m", False, "10240.00"),
        (10240 * MIB, "m", True, "10240.00m"),
        (4 * MIB, "k", False, "4096.00"),
        (10240 * MIB, "B", True, "10737418240B"),
        (10240 * MIB, "b", False, "10737418240"),
        (0, "m", False, "0"),
        (0, "B", True, "0B"),
        (0, "r", True, "0 "),
        (10 * 1024 * MIB, "r", True, "10.00g"),
        (2043 * MIB, "r", True, "<2.00g"),
        (2043 * MIB, "h", True, "2.00g"),
        (1000 * 1000, "M", True, "1.00M"),
        (4096, "s", True, "8S"),
    ],
)
def test_format_size(size, units, suffix, expected):
    assert report.format_size(size, units, suffix) == expected


def test_short_names_duplicates_and_order():
    assert report.resolve_fields("pvs", ["pv_name,vg_name,pv_free,pv_attr,pv_size,pv_name"])[-1] == "pv_name"
    assert report.resolve_fields("vgs", ["name,size"]) == ["vg_name", "vg_size"]
    assert report.resolve_fields("lvs", ["tags,name,size,modules"]) == ["lv_tags", "lv_name", "lv_size", "lv_modules"]
    assert report.resolve_fields("lvs", ["+devices"])[-1] == "devices"
    assert report.resolve_fields("lvs", ["name", "size"]) == ["lv_name", "lv_size"]


@pytest.mark.parametrize("command,fields", [("lvs", "lv_name,bogus"), ("vgs", "lv_name"), ("pvs", "devices")])
def test_unknown_field_is_an_error(command, fields):
    with pytest.raises(report.ReportError, match="Unrecognised field"):
        report.resolve_fields(command, [fields])


def test_default_report_is_aligned_with_headings():
    vg = report.VG(VG_NAME, "1", 40 * 1024 * MIB, 30 * 1024 * MIB, 1, 0, PV)
    lv = report.LV("x.disk0", "2", 256 * MIB, True, True, 230, 0)
    text = lines_of("lvs", [], vg, [lv])
    heading, row = text.splitlines()
    assert heading.split()[:4] == ["LV", "VG", "Attr", "LSize"]
    assert row.split() == ["x.disk0", VG_NAME, "-wi-ao----", "256.00m"]
    assert heading.index("Attr") == row.index("-wi-ao----")
    vgs_heading, vgs_row = lines_of("vgs", [], vg).splitlines()
    assert vgs_heading.split() == ["VG", "#PV", "#LV", "#SN", "Attr", "VSize", "VFree"]
    assert vgs_row.split() == [VG_NAME, "1", "1", "0", "wz--n-", "40.00g", "30.00g"]
    assert vgs_row.startswith("  ")


def test_snapshot_and_origin_attributes():
    assert report.LV("s", "1", MIB, True, False, 230, 1, origin="o").attr == "swi-a-s---"
    assert report.LV("o", "1", MIB, True, True, 230, 1, has_snapshots=True).attr == "owi-aos---"
    assert report.LV("i", "1", MIB, False, False, -1, -1).attr == "-wi-------"


# -- vgs and pvs without the LV list --------------------------------------------

PARENT = "tank/gnt"
_PARENT_ROW = {"name": PARENT, "type": "filesystem", "guid": "1234", "used": str(3 * 1024 * MIB),
               "available": str(30 * 1024 * MIB), properties.PV_ALLOCATABLE: "-"}
_LV_ROWS = [
    {"name": f"{PARENT}/a.disk0", "type": "volume", "guid": "11", "volsize": str(1024 * MIB), properties.OWNER: "lvm"},
    {"name": f"{PARENT}/b.disk0", "type": "volume", "guid": "12", "volsize": str(512 * MIB), properties.OWNER: "lvm",
     properties.LV_TAGS: "originstname+inst1"},
    {"name": f"{PARENT}/a.disk0.snap", "type": "volume", "guid": "13", "volsize": str(1024 * MIB),
     properties.OWNER: "lvm", "origin": f"{PARENT}/a.disk0@a.disk0.snap"},
    # Not LVs: an ext-provider volume and a foreign zvol.
    {"name": f"{PARENT}/x.ext.disk0", "type": "volume", "guid": "14", "volsize": str(MIB), properties.OWNER: "ext"},
    {"name": f"{PARENT}/foreign", "type": "volume", "guid": "15", "volsize": str(MIB)},
]


class FakeZfs:
    """Zfs.list over LVM_PARENT and its children, honouring -d as zfs does."""

    def __init__(self, children=_LV_ROWS):
        self.children = children
        self.depths = []

    def list(self, names, fields, types=("volume",), recursive=False, depth=None):
        assert names == [PARENT] and not recursive
        self.depths.append(depth)
        rows = [_PARENT_ROW] + (list(self.children) if depth else [])
        return [{field: row.get(field, "-") for field in fields} for row in rows]


# Every field a vgs or pvs report can show.
VG_PV_FIELDS = [(command, field) for command in ("vgs", "pvs") for field, spec in report.FIELDS.items()
                if spec[0] in report.REPORTS[command][0]]
_STYLE = report.Style(headings=False, separator="|", units="b")


def _report(command, fields, current):
    return report.render(fields, [report.cells(fields, None, current.vg, _STYLE)], _STYLE)


@pytest.mark.parametrize("command,field", VG_PV_FIELDS)
def test_only_the_fields_declared_to_need_lvs_change_with_the_lv_list(command, field):
    full = state.read(FakeZfs(), VG_NAME, PARENT)
    parent_only = state.read(FakeZfs(), VG_NAME, PARENT, lvs=False)
    no_lvs = state.read(FakeZfs(children=[]), VG_NAME, PARENT)
    if report.needs_lvs(command, [field]):
        # Needed indeed: the same parent with no LVs shows something else.
        assert _report(command, [field], full) != _report(command, [field], no_lvs)
    else:
        assert _report(command, [field], full) == _report(command, [field], parent_only)


def test_the_lv_counts_come_from_the_lv_list():
    vg = state.read(FakeZfs(), VG_NAME, PARENT).vg
    assert (vg.lv_count, vg.snap_count) == (2, 1)
    assert state.read(FakeZfs(), VG_NAME, PARENT, lvs=False).volumes is None
    assert report.needs_lvs("lvs", ["vg_name"]) and report.needs_lvs("vgs", report.resolve_fields("vgs", None))


_ganeti_vgs_pvs = [
    ("vgs", ["--noheadings", "--nosuffix", "--units=m", "--unbuffered", "--separator=|", "-ovg_name,vg_free,vg_attr,vg_size"]),
    ("vgs", ["--noheadings", "--units", "m", "--nosuffix", "-o", "name,size"]),
    ("vgs", ["--noheadings", "--units=m", "--nosuffix", "--separator", "|", "--options", "vg_name,vg_size,vg_free"]),
    ("pvs", ["--noheadings", "--nosuffix", "--units=m", "--unbuffered", "--separator=|",
             "-opv_name,vg_name,pv_free,pv_attr,pv_size,pv_name"]),
    ("pvs", ["--noheadings", "--units=m", "--nosuffix", "--separator", "|", "--options", "pv_name,pv_size,pv_used,pv_free,pv_attr"]),
]


def _listing(command, argv, zfs):
    """What Emulation.listing prints for an argv naming our VG (or PV)."""
    cfg = types.SimpleNamespace(lvm_vg=VG_NAME, lvm_parent=PARENT)
    parsed = args.parse(command, [*argv, VG_NAME if command == "vgs" else PV])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert commands.Emulation(cfg, zfs=zfs).listing(parsed, decide.Plan(decide.EMULATED)) == 0
    return out.getvalue()


@pytest.mark.parametrize("command,argv", _ganeti_vgs_pvs)
def test_ganeti_vgs_and_pvs_list_the_parent_alone(command, argv):
    zfs = FakeZfs()
    text = _listing(command, argv, zfs)
    assert zfs.depths == [0]
    assert text == lines_of(command, argv, state.read(FakeZfs(), VG_NAME, PARENT).vg)


@settings(max_examples=300)
@given(command=st.sampled_from(["vgs", "pvs"]), data=st.data())
def test_any_vgs_or_pvs_field_list_prints_what_the_full_listing_printed(command, data):
    """Before, every listing read the LV list; the output must not tell the difference."""
    choices = [field for name, field in VG_PV_FIELDS if name == command]
    options = data.draw(st.lists(st.sampled_from(choices), max_size=8).map(lambda fields: [",".join(fields)] if fields else []))
    argv = ["--units=b", "--separator=|"] + [f"-o{value}" for value in options]
    zfs = FakeZfs()
    assert _listing(command, argv, zfs) == lines_of(command, argv, state.read(FakeZfs(), VG_NAME, PARENT).vg)
    assert zfs.depths == [1 if report.needs_lvs(command, report.resolve_fields(command, options)) else 0]


def test_report_lvs_of_named_lvs_and_of_all(tmp_path):
    # No devices here (so nothing is active); the rows are still one per LV asked.
    current = state.read(FakeZfs(), VG_NAME, PARENT)
    opened = state.OpenDevices(proc=str(tmp_path), sys_block=str(tmp_path))
    named = state.report_lvs(current, ["a.disk0"], opened)
    assert [(lv.name, lv.active, lv.open) for lv in named] == [("a.disk0", False, False)]
    assert [lv.name for lv in state.report_lvs(current, None, opened)] == sorted(current.volumes)
