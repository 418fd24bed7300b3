"""The admin helpers `list`, `size` and `snapshots` (the original's bin/ scripts).

Each runs ONE zfs command with -H -p and formats the numbers itself, the
way zfs prints them (612M, 87.2G, 30K, 0), in the columns of the original
README. `--json` prints the raw numbers instead.
"""

import collections
import json
import sys

# `size`: format the value as zfs does (612M); `right`: align it right.
Column = collections.namedtuple("Column", "header key size right min_width")

# zfs prints every numeric column at least 5 wide ("1.00M"), right-aligned.
_NUMBER_WIDTH = 5


def _number_column(header, key):
    return Column(header, key, size=True, right=True, min_width=_NUMBER_WIDTH)


def _text_column(header, key):
    return Column(header, key, size=False, right=False, min_width=0)


_LIST_COLUMNS = (
    _text_column("NAME", "name"),
    _number_column("USED", "used"),
    _number_column("AVAIL", "available"),
    _number_column("REFER", "referenced"),
    _text_column("MOUNTPOINT", "mountpoint"),
)
_SIZE_COLUMNS = (
    _text_column("NAME", "name"),
    _text_column("PROPERTY", "property"),
    # `zfs get` left-aligns values and sizes VALUE for the property's own
    # column name ("VOLSIZE").
    Column("VALUE", "value", size=True, right=False, min_width=len("VOLSIZE")),
    _text_column("SOURCE", "source"),
)


def nicenum(number):
    """A byte count as zfs shows it: 0, 512, 30K, 2.64M, 87.2G, 11G.

    Exact multiples of a unit have no decimals; otherwise the most precise
    of 2, 1 or 0 decimals that fits in 5 characters (zfs_nicenum).
    """
    if number is None:
        return "-"
    units = ["", "K", "M", "G", "T", "P", "E"]
    index, scaled = 0, number
    while scaled >= 1024 and index < len(units) - 1:
        scaled //= 1024
        index += 1
    if index == 0 or number % (1024**index) == 0:
        return f"{scaled}{units[index]}"
    for decimals in (2, 1, 0):
        text = f"{number / 1024**index:.{decimals}f}{units[index]}"
        if len(text) <= 5:
            return text
    return text


def _cell(column, value):
    if column.size:
        return nicenum(value)
    return "-" if value is None else str(value)


def format_table(columns, rows):
    """Lines of aligned columns like zfs list/get: two spaces apart, the last one unpadded."""
    cells = [[_cell(column, row[column.key]) for column in columns] for row in rows]
    widths = [
        max([len(column.header), column.min_width] + [len(line[index]) for line in cells])
        for index, column in enumerate(columns)
    ]
    last = len(columns) - 1
    lines = []
    for line in [[column.header for column in columns]] + cells:
        parts = []
        for index, (column, text) in enumerate(zip(columns, line)):
            if column.right:
                parts.append(text.rjust(widths[index]))
            else:
                parts.append(text if index == last else text.ljust(widths[index]))
        lines.append("  ".join(parts))
    return lines


def _bytes(text):
    return int(text) if text.isdigit() else None


def _text(text):
    return None if text == "-" else text


def _usage_rows(zfs, parent, used_property, types):
    fields = ["name", used_property, "available", "referenced", "mountpoint"]
    return [
        {
            "name": row["name"],
            "used": _bytes(row[used_property]),
            "available": _bytes(row["available"]),
            "referenced": _bytes(row["referenced"]),
            "mountpoint": _text(row["mountpoint"]),
        }
        for row in zfs.list([parent], fields, types=types, recursive=True)
    ]


def list_rows(cfg, zfs):
    """The parent dataset and everything under it (one zfs process)."""
    return _usage_rows(zfs, cfg.parent, cfg.used_property, ("filesystem", "volume"))


def size_rows(cfg, zfs):
    """volsize of every volume under the parent (one zfs process)."""
    found = zfs.get_with_source(cfg.parent, ["volsize"], types=("volume",), recursive=True)
    return [
        {"name": name, "property": "volsize", "value": _bytes(values["volsize"][0]), "source": values["volsize"][1]}
        for name, values in found.items()
    ]


def snapshot_rows(cfg, zfs):
    """Every snapshot under the parent, the parent's own included (one zfs process)."""
    return _usage_rows(zfs, cfg.parent, "used", ("snapshot",))


def _show(rows, columns, as_json, out):
    out = out or sys.stdout
    if as_json:
        json.dump(rows, out, indent=2)
        out.write("\n")
    else:
        for line in format_table(columns, rows):
            print(line, file=out)


def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print JSON with exact byte counts")


def list_command(args, cfg, zfs, out=None):
    _show(list_rows(cfg, zfs), _LIST_COLUMNS, args.json, out)


def size_command(args, cfg, zfs, out=None):
    _show(size_rows(cfg, zfs), _SIZE_COLUMNS, args.json, out)


def snapshots_command(args, cfg, zfs, out=None):
    _show(snapshot_rows(cfg, zfs), _LIST_COLUMNS, args.json, out)
