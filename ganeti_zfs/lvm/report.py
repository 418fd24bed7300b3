"""lvs/vgs/pvs report formatting, as lvm2 and libdevmapper print it.

Pure: rows in, text out. Field names, headings, alignment, short names,
units and the "0" special case follow lvm2 (lib/report/columns.h and
libdm's dm_size_to_string) so Ganeti's strict parsers and admins' scripts
read our rows like LVM's.
"""

import collections

from ..errors import UsageError
from ..volume import MIB

EXTENT_SIZE = 4 * MIB  # LVM's default PE size; Ganeti rounds grows to it


class ReportError(UsageError):
    pass


def lvm_uuid(seed):
    """A stable LVM-style UUID (32 characters in 6-4-4-4-4-4-6 groups) for a ZFS guid."""
    # Imported here: hashlib loads OpenSSL, and only the rare UUID fields need it.
    import hashlib

    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    digest = hashlib.sha256(seed.encode()).digest()
    text = "".join(alphabet[byte % len(alphabet)] for byte in digest[:32])
    groups, start = [], 0
    for length in (6, 4, 4, 4, 4, 4, 6):
        groups.append(text[start:start + length])
        start += length
    return "-".join(groups)


# Rows are named tuples, not dataclasses, for start-up time (see env.Request).
# VG: sizes in bytes; guid: the parent dataset's, the seed of the VG and PV
# UUIDs; lv_count and snap_count are None when the LVs were not listed
# (see needs_lvs).
class VG(collections.namedtuple("VG", "name guid size free lv_count snap_count pv_name allocatable", defaults=(True,))):
    __slots__ = ()

    @property
    def uuid(self):
        return lvm_uuid("vg" + self.guid)

    @property
    def pv_uuid(self):
        return lvm_uuid("pv" + self.guid)


# LV: size in bytes; guid: the zvol's; kernel_major/minor -1 when inactive;
# origin: for a snapshot LV, the LV it was taken of.
class LV(
    collections.namedtuple(
        "LV",
        "name guid size active open kernel_major kernel_minor tags origin has_snapshots",
        defaults=((), "", False),
    )
):
    __slots__ = ()

    @property
    def uuid(self):
        return lvm_uuid("lv" + self.guid)

    @property
    def attr(self):
        """lv_attr: type, permissions, allocation, fixed minor, state, open, target, zero, health, skip."""
        kind = "s" if self.origin else ("o" if self.has_snapshots else "-")
        target = "s" if (self.origin or self.has_snapshots) else "-"
        return "".join(
            [kind, "w", "i", "-", "a" if self.active else "-", "o" if self.open else "-", target, "-", "-", "-"]
        )


def _extents(size):
    return -(-size // EXTENT_SIZE)


# Kinds: "str" left-aligned text, "num" a number, "siz" a size in --units.
# field -> (report type, kind, heading, value(lv, vg)). Report types: lv and
# seg rows exist in lvs only; vg fields are shown by every command; pv by pvs.
FIELDS = {
    "lv_uuid": ("lv", "str", "LV UUID", lambda lv, vg: lv.uuid),
    "lv_name": ("lv", "str", "LV", lambda lv, vg: lv.name),
    "lv_full_name": ("lv", "str", "LV", lambda lv, vg: f"{vg.name}/{lv.name}"),
    "lv_path": ("lv", "str", "Path", lambda lv, vg: f"/dev/{vg.name}/{lv.name}"),
    "lv_attr": ("lv", "str", "Attr", lambda lv, vg: lv.attr),
    "lv_active": ("lv", "str", "Active", lambda lv, vg: "active" if lv.active else ""),
    "lv_major": ("lv", "num", "Maj", lambda lv, vg: -1),
    "lv_minor": ("lv", "num", "Min", lambda lv, vg: -1),
    "lv_kernel_major": ("lv", "num", "KMaj", lambda lv, vg: lv.kernel_major),
    "lv_kernel_minor": ("lv", "num", "KMin", lambda lv, vg: lv.kernel_minor),
    "lv_size": ("lv", "siz", "LSize", lambda lv, vg: lv.size),
    "seg_count": ("lv", "num", "#Seg", lambda lv, vg: 1),
    "origin": ("lv", "str", "Origin", lambda lv, vg: lv.origin),
    "lv_tags": ("lv", "str", "LV Tags", lambda lv, vg: ",".join(lv.tags)),
    "lv_modules": ("lv", "str", "Modules", lambda lv, vg: "snapshot" if lv.origin else ""),
    "lv_layout": ("lv", "str", "Layout", lambda lv, vg: "linear"),
    "lv_role": ("lv", "str", "Role", lambda lv, vg: "public,snapshot" if lv.origin else "public"),
    "pool_lv": ("lv", "str", "Pool", lambda lv, vg: ""),
    "data_percent": ("lv", "str", "Data%", lambda lv, vg: ""),
    "metadata_percent": ("lv", "str", "Meta%", lambda lv, vg: ""),
    "move_pv": ("lv", "str", "Move", lambda lv, vg: ""),
    "mirror_log": ("lv", "str", "Log", lambda lv, vg: ""),
    "copy_percent": ("lv", "str", "Cpy%Sync", lambda lv, vg: ""),
    "convert_lv": ("lv", "str", "Convert", lambda lv, vg: ""),
    "segtype": ("seg", "str", "Type", lambda lv, vg: "linear"),
    "stripes": ("seg", "num", "#Str", lambda lv, vg: 1),
    "seg_start": ("seg", "siz", "Start", lambda lv, vg: 0),
    "seg_start_pe": ("seg", "num", "Start", lambda lv, vg: 0),
    "seg_size": ("seg", "siz", "SSize", lambda lv, vg: lv.size),
    "seg_tags": ("seg", "str", "Seg Tags", lambda lv, vg: ""),
    "seg_pe_ranges": ("seg", "str", "PE Ranges", lambda lv, vg: f"{vg.pv_name}:0-{_extents(lv.size) - 1}"),
    "devices": ("seg", "str", "Devices", lambda lv, vg: f"{vg.pv_name}(0)"),
    "vg_fmt": ("vg", "str", "Fmt", lambda lv, vg: "lvm2"),
    "vg_uuid": ("vg", "str", "VG UUID", lambda lv, vg: vg.uuid),
    "vg_name": ("vg", "str", "VG", lambda lv, vg: vg.name),
    "vg_attr": ("vg", "str", "Attr", lambda lv, vg: "wz--n-"),
    "vg_size": ("vg", "siz", "VSize", lambda lv, vg: vg.size),
    "vg_free": ("vg", "siz", "VFree", lambda lv, vg: vg.free),
    "vg_extent_size": ("vg", "siz", "Ext", lambda lv, vg: EXTENT_SIZE),
    "vg_extent_count": ("vg", "num", "#Ext", lambda lv, vg: vg.size // EXTENT_SIZE),
    "vg_free_count": ("vg", "num", "Free", lambda lv, vg: vg.free // EXTENT_SIZE),
    "pv_count": ("vg", "num", "#PV", lambda lv, vg: 1),
    "lv_count": ("vg", "num", "#LV", lambda lv, vg: vg.lv_count),
    "snap_count": ("vg", "num", "#SN", lambda lv, vg: vg.snap_count),
    "vg_tags": ("vg", "str", "VG Tags", lambda lv, vg: ""),
    "pv_fmt": ("pv", "str", "Fmt", lambda lv, vg: "lvm2"),
    "pv_uuid": ("pv", "str", "PV UUID", lambda lv, vg: vg.pv_uuid),
    "pv_name": ("pv", "str", "PV", lambda lv, vg: vg.pv_name),
    "dev_size": ("pv", "siz", "DevSize", lambda lv, vg: vg.size),
    "pv_size": ("pv", "siz", "PSize", lambda lv, vg: vg.size),
    "pv_free": ("pv", "siz", "PFree", lambda lv, vg: vg.free),
    "pv_used": ("pv", "siz", "Used", lambda lv, vg: vg.size - vg.free),
    "pv_attr": ("pv", "str", "Attr", lambda lv, vg: "a--" if vg.allocatable else "---"),
    "pv_pe_count": ("pv", "num", "PE", lambda lv, vg: vg.size // EXTENT_SIZE),
    "pv_pe_alloc_count": ("pv", "num", "Alloc", lambda lv, vg: (vg.size - vg.free) // EXTENT_SIZE),
    "pv_tags": ("pv", "str", "PV Tags", lambda lv, vg: ""),
}

# The vgs/pvs fields computed from the LV list. Every other VG and PV field
# comes from the parent dataset alone, so without these state.read lists the
# parent only, not every LV (Ganeti's free-space vgs and all its pvs).
LV_LIST_FIELDS = ("lv_count", "snap_count")


def needs_lvs(command, fields):
    """Whether a report of `fields` needs the LV list: lvs always, vgs and pvs for the LV counts."""
    return command == "lvs" or any(field in LV_LIST_FIELDS for field in fields)


# What each command can show, its name prefix for short field names
# ("size" is lv_size in lvs, vg_size in vgs), and its default columns.
REPORTS = {
    "lvs": (
        ("lv", "seg", "vg"),
        "lv_",
        "lv_name,vg_name,lv_attr,lv_size,pool_lv,origin,data_percent,metadata_percent,move_pv,mirror_log,"
        "copy_percent,convert_lv",
    ),
    "vgs": (("vg",), "vg_", "vg_name,pv_count,lv_count,snap_count,vg_attr,vg_size,vg_free"),
    "pvs": (("pv", "vg"), "pv_", "pv_name,vg_name,pv_fmt,pv_attr,pv_size,pv_free"),
}


def resolve_fields(command, option_values):
    """Field ids for the -o values given (in order, duplicates kept).

    Repeated -o options add up; a list starting with '+' extends the
    default columns, as in lvm2.
    """
    types, prefix, default = REPORTS[command]
    names = []
    for value in option_values or [default]:
        if value.startswith("+"):
            if not names:
                names = default.split(",")
            value = value[1:]
        names += [name for name in value.split(",") if name]
    fields = []
    for name in names:
        key = name.strip().lower()
        for candidate in (key, prefix + key):
            if candidate in FIELDS and FIELDS[candidate][0] in types:
                fields.append(candidate)
                break
        else:
            raise ReportError(f"Unrecognised field: {name}")
    return fields


# --units letters: lower case powers of 1024, upper case powers of 1000
# (lvm2's default si_unit_consistency); b/B bytes, s/S sectors, h/H/r/R human.
UNIT_FACTORS = {"b": 1, "s": 512, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50, "e": 1 << 60}
_HUMAN = "hHrR"


def check_units(units):
    if len(units) != 1 or (units.lower() not in UNIT_FACTORS and units not in _HUMAN):
        raise ReportError(f"Invalid units specification: {units!r} (supported: one of {''.join(UNIT_FACTORS)}, upper case, h, r)")
    return units


def display_size(size):
    """A size as lvm2's display commands print it (display_size: "8.00 MiB")."""
    text = format_size(size, "h")
    if text[-1] == "b":
        return f"{text[:-1]} B"
    return f"{text[:-1]} {text[-1].upper()}iB"


def lvscan_line(lv, vg):
    """One line of lvscan (lvm2's tools/lvscan.c: _lvscan_single); our LVs' allocation policy is lvm2's default."""
    kind = "Original" if lv.has_snapshots else "Snapshot" if lv.origin else "        "
    return f"  {'ACTIVE   ' if lv.active else 'inactive '}{kind} '/dev/{vg}/{lv.name}' [{display_size(lv.size)}] inherit\n"


def format_size(size, units="r", suffix=True):
    """A size in bytes as lvm2 prints it (dm_size_to_string)."""
    if units in _HUMAN:
        base = 1000 if units.isupper() else 1024
        letters = "bkmgtpe" if base == 1024 else "BKMGTPE"
        if size == 0:
            return "0 " if suffix else "0"
        power = 6
        while power > 0 and size < base**power:
            power -= 1
        factor, letter = base**power, letters[power]
        if power == 0:
            return f"{size}{letters[0]}"
        prefix = ""
        hundredths = 100 * size / factor
        if units in "rR" and int(hundredths) != round(hundredths):
            prefix = "<"  # the printed value is rounded up
        return f"{prefix}{size / factor:.2f}{letter}"
    lower = units.lower()
    letter = units.upper() if lower in "bs" else units
    if size == 0:
        return "0" + (letter if suffix else "")
    if lower == "b":
        text = str(size)
    elif lower == "s":
        text = f"{size / 512:.0f}"
    elif units.islower():
        text = f"{size / UNIT_FACTORS[units]:.2f}"
    else:
        text = f"{size / 1000 ** ('KMGTPE'.index(units) + 1):.2f}"
    return text + (letter if suffix else "")


# separator None: aligned columns separated by one space.
class Style(collections.namedtuple("Style", "headings separator aligned units suffix", defaults=(True, None, False, "r", True))):
    __slots__ = ()


# Options of lvs, vgs and pvs (args.py knows them all) whose reports we do
# not make: option name -> how lvm2 spells it.
UNANSWERED = {
    "select": "-S/--select",
    "sort": "-O/--sort",
    "rows": "--rows",
    "segments": "--segments",
    "binary": "--binary",
    "nameprefixes": "--nameprefixes",
    "unquoted": "--unquoted",
    "logonly": "--logonly",
    "configreport": "--configreport",
    "history": "-H/--history",
}


def check_answerable(args):
    """ReportError when the command line asks for a report we do not make."""
    for option, spelling in UNANSWERED.items():
        if args.has(option):
            raise ReportError(f"option {spelling} is not supported for the emulated VG")


def style_of(args):
    """The Style a parsed lvs/vgs/pvs command line asks for."""
    if args.last("reportformat", "basic") != "basic":
        raise ReportError(f"--reportformat {args.last('reportformat')} is not supported for the emulated VG")
    return Style(
        headings=not args.has("noheadings"),
        separator=args.last("separator"),
        aligned=args.has("aligned"),
        units=check_units(args.last("units", "r")),
        suffix=not args.has("nosuffix"),
    )


def cells(fields, lv, vg, style):
    """The text of each field for one row."""
    row = []
    for field in fields:
        _type, kind, _heading, value = FIELDS[field]
        data = value(lv, vg)
        row.append(format_size(data, style.units, style.suffix) if kind == "siz" else str(data))
    return row


def render(fields, rows, style, extra_rows=()):
    """The report text: `extra_rows` (the real tool's, as cell lists) first, then `rows`.

    Every line starts with two spaces, as lvm2's do.
    """
    all_rows = [list(row) for row in extra_rows] + [list(row) for row in rows]
    if not all_rows:
        return ""
    headings = [FIELDS[field][2] for field in fields]
    lines = ([headings] if style.headings else []) + all_rows
    if style.separator is not None and not style.aligned:
        return "".join("  " + style.separator.join(line) + "\n" for line in lines)
    widths = [max(len(line[column]) for line in lines) for column in range(len(fields))]
    separator = " " if style.separator is None else style.separator
    text = []
    for number, line in enumerate(lines):
        heading = style.headings and number == 0
        padded = [
            cell.rjust(width) if FIELDS[field][1] != "str" and not heading else cell.ljust(width)
            for cell, width, field in zip(line, widths, fields)
        ]
        text.append("  " + separator.join(padded) + "\n")
    return "".join(text)
