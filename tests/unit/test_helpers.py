"""Formatting of the helper commands: numbers and columns exactly like zfs."""

import io
import json
import types

import pytest

from ganeti_zfs import helpers

KIB, MIB, GIB, TIB = 1024, 1024**2, 1024**3, 1024**4


@pytest.mark.parametrize(
    "number, text",
    [
        (None, "-"),
        (0, "0"),
        (1, "1"),
        (512, "512"),
        (1023, "1023"),
        (1024, "1K"),
        (30 * KIB, "30K"),
        (1536, "1.50K"),
        (10239, "10.0K"),  # 9.999K does not fit in 5 characters with 2 decimals
        (1048565, "1024K"),  # nor with 1: rounds up but stays in K, as zfs does
        (int(2.64 * MIB), "2.64M"),
        (610 * MIB, "610M"),
        (641728512, "612M"),  # 611.99M: no decimals fit
        (int(87.2 * GIB), "87.2G"),
        (11 * GIB, "11G"),
        (100 * GIB + 1, "100G"),
        (5 * TIB, "5T"),
        (2**64 - 1, "16.0E"),
    ],
)
def test_nicenum_like_zfs(number, text):
    assert helpers.nicenum(number) == text


def test_every_nicenum_fits_five_characters():
    for exponent in range(64):
        for number in (2**exponent - 1, 2**exponent, 2**exponent + 1, int(2**exponent * 1.999)):
            assert len(helpers.nicenum(number)) <= 5, number


DISK = "tmp500g/block/af1a90e8-0566-4cbf-bc8c-99fc82b67ce3.ext.disk0"

# The original README's examples, which our output must match exactly.
README_LIST = """\
NAME                                                           USED  AVAIL  REFER  MOUNTPOINT
tmp500g/block                                                  612M  87.2G    30K  /tmp500g/block
tmp500g/block/af1a90e8-0566-4cbf-bc8c-99fc82b67ce3.ext.disk0   612M  87.2G   610M  -
"""
README_SIZE = """\
NAME                                                          PROPERTY  VALUE    SOURCE
tmp500g/block/af1a90e8-0566-4cbf-bc8c-99fc82b67ce3.ext.disk0  volsize   11G      local
"""
README_SNAPSHOTS = """\
NAME                                                                      USED  AVAIL  REFER  MOUNTPOINT
tmp500g/block@etckeeper                                                      0      -    30K  -
tmp500g/block/af1a90e8-0566-4cbf-bc8c-99fc82b67ce3.ext.disk0@2014-06-24  2.64M      -   610M  -
"""


class RecordedZfs:
    """Answers the one query a helper makes with rows in zfs's -H -p form.

    This replaces no zfs behaviour under test: it only feeds the formatting
    the values zfs printed for the README example, and records the query.
    """

    def __init__(self, rows):
        self.rows = rows
        self.queries = []

    def list(self, names, fields, types=("volume",), recursive=False, depth=None):
        self.queries.append(("list", names, fields, types, recursive))
        return [dict(zip(fields, row)) for row in self.rows]

    def get_with_source(self, name, properties, types=None, recursive=False):
        self.queries.append(("get", name, properties, types, recursive))
        return {row[0]: {"volsize": (row[1], row[2])} for row in self.rows}


CFG = types.SimpleNamespace(parent="tmp500g/block", used_property="used")


def run(command, zfs, as_json=False):
    out = io.StringIO()
    command(types.SimpleNamespace(json=as_json), CFG, zfs, out=out)
    return out.getvalue()


def test_list_matches_the_readme():
    zfs = RecordedZfs([
        ("tmp500g/block", "641728512", "93630142464", "30720", "/tmp500g/block"),
        (DISK, "641728512", "93630142464", str(610 * MIB), "-"),
    ])
    assert run(helpers.list_command, zfs) == README_LIST
    [(kind, names, fields, types_, recursive)] = zfs.queries
    assert (kind, names, types_, recursive) == ("list", ["tmp500g/block"], ("filesystem", "volume"), True)
    assert fields[1] == "used"


def test_list_uses_the_configured_used_property():
    zfs = RecordedZfs([])
    out = io.StringIO()
    helpers.list_command(types.SimpleNamespace(json=False), types.SimpleNamespace(parent="p", used_property="logicalused"), zfs, out=out)
    assert zfs.queries[0][2][1] == "logicalused"
    assert out.getvalue().split() == ["NAME", "USED", "AVAIL", "REFER", "MOUNTPOINT"]


def test_size_matches_the_readme():
    zfs = RecordedZfs([(DISK, str(11 * GIB), "local")])
    assert run(helpers.size_command, zfs) == README_SIZE
    assert zfs.queries == [("get", "tmp500g/block", ["volsize"], ("volume",), True)]


def test_snapshots_match_the_readme():
    zfs = RecordedZfs([
        ("tmp500g/block@etckeeper", "0", "-", "30720", "-"),
        (DISK + "@2014-06-24", str(int(2.64 * MIB)), "-", str(610 * MIB), "-"),
    ])
    assert run(helpers.snapshots_command, zfs) == README_SNAPSHOTS
    assert zfs.queries[0][3] == ("snapshot",)


def test_json_has_exact_numbers_and_nulls():
    zfs = RecordedZfs([(DISK + "@2014-06-24", "2768240", "-", "639631360", "-")])
    assert json.loads(run(helpers.snapshots_command, zfs, as_json=True)) == [
        {"name": DISK + "@2014-06-24", "used": 2768240, "available": None, "referenced": 639631360, "mountpoint": None}
    ]
    zfs = RecordedZfs([(DISK, str(11 * GIB), "local")])
    assert json.loads(run(helpers.size_command, zfs, as_json=True)) == [
        {"name": DISK, "property": "volsize", "value": 11 * GIB, "source": "local"}
    ]


def test_empty_list_prints_only_the_header():
    assert run(helpers.snapshots_command, RecordedZfs([])) == "NAME   USED  AVAIL  REFER  MOUNTPOINT\n"


def test_columns_widen_for_long_values():
    columns = helpers._LIST_COLUMNS
    lines = helpers.format_table(columns, [
        {"name": "p", "used": 123456, "available": 2**60, "referenced": 0, "mountpoint": "/p"},
    ])
    assert lines == [
        "NAME   USED  AVAIL  REFER  MOUNTPOINT",
        "p      121K     1E      0  /p",
    ]
