"""Who answers a command: the real LVM tool, ZFS, or both (listings).

Pure functions of the parsed argv, so the rule "anything that does not name
the emulated VG reaches the real tool untouched" can be tested exhaustively.
"""

import collections
import os

from .. import naming

REAL = "real"  # exec the real tool with the argv unchanged
EMULATED = "emulated"  # ZFS answers alone
MERGED = "merged"  # listing: the real tool's rows, then ours
MIXED = "mixed"  # a change that names both: refused

LISTINGS = ("lvs", "vgs", "pvs")
# Shown for the real VGs by lvm2 itself, never parsed: whatever options they
# get (lvdisplay -m, vgdisplay -c...), a command line that does not name the
# emulated VG runs lvm2 with it and then says where the emulated VG is
# (commands.Emulation.display); naming it gets the command to use instead.
DISPLAYS = ("lvscan", "lvdisplay", "vgdisplay", "pvscan")
# For these the words are VG names (as for vgs): a VG can be named /dev/<vg>.
_VG_COMMANDS = ("vgs", "vgchange")
HELP_WORDS = ("-h", "-?", "--help", "--longhelp", "--version")
# lvm2's one program; every command (lvs, vgs, ...) is a link to it that it
# tells apart by argv[0]. /usr/sbin/lvm is its path on bookworm (merged /usr:
# /sbin is a link to usr/sbin) and on trixie, and lvm itself is never diverted.
LVM_BINARY = "/usr/sbin/lvm"


# kind: one of the above; real_argv: for MERGED, the argv (without argv[0])
# the real tool lists the rest with. A named tuple, not a dataclass, for
# start-up time (see env.Request).
class Plan(collections.namedtuple("Plan", "kind real_argv", defaults=((),))):
    __slots__ = ()


def pv_name(lvm_parent):
    """The one PV of the emulated VG: the /dev/zvol directory its LVs live in.

    Stable (it follows the configuration, not a device number), unique (no
    real PV can be a directory) and free of ':', spaces and parentheses,
    which Ganeti refuses or cannot parse in PV names.
    """
    return naming.device_link(lvm_parent)


def strip_dev(name):
    """LVM accepts VG and LV names with the /dev/ prefix."""
    return name[len("/dev/"):] if name.startswith("/dev/") else name


def _unescape_dm(name):
    """VG and LV of a /dev/mapper name: '-' separates, '--' is a literal '-'."""
    index = 0
    while index < len(name):
        if name[index] == "-":
            if name[index + 1:index + 2] == "-":
                index += 2
                continue
            return name[:index].replace("--", "-"), name[index + 1:].replace("--", "-")
        index += 1
    return name.replace("--", "-"), None


def split_lv_path(name):
    """(vg, lv) of `vg`, `vg/lv`, `/dev/vg/lv` or `/dev/mapper/vg-lv` (lv may be None)."""
    if name.startswith("/dev/mapper/"):
        return _unescape_dm(name[len("/dev/mapper/"):])
    parts = strip_dev(name).split("/")
    if len(parts) == 1:
        return parts[0], None
    if len(parts) == 2:
        return parts[0], parts[1]
    return None, None


def names_vg(name, vg):
    """Whether a VG or LV argument refers to the emulated VG."""
    return split_lv_path(name)[0] == vg


def _is_ours(command, name, vg, pv_name):
    if command in ("pvs", "pvchange"):
        return name == pv_name
    if command in _VG_COMMANDS:
        return strip_dev(name) == vg
    return names_vg(name, vg)


def mentions_vg(argv, vg, pv_name):
    """Whether any word of an (unparsable) argv names the VG, an LV of it or its PV."""
    for word in argv:
        value = word.partition("=")[2] if word.startswith("--") else word
        if value == pv_name or names_vg(value, vg):
            return True
    return False


def decide(args, vg, pv_name):
    """The Plan for parsed Args, given the emulated VG and its PV name."""
    command = args.command
    positionals = args.positionals
    if args.has("help") or args.has("longhelp") or args.has("version"):
        return Plan(REAL)  # lvm2 prints them and changes nothing
    if command in ("lvcreate", "lvextend", "lvresize", "lvrename", "vgreduce"):
        # The first argument names the VG (or the LV); the rest are PVs or names.
        target = positionals[0][1] if positionals else ""
        name = args.last("name", "")
        ours = names_vg(target, vg) or (command == "lvcreate" and "/" in name and names_vg(name, vg))
        return Plan(EMULATED if ours else REAL)
    ours = [(index, text) for index, text in positionals if _is_ours(command, text, vg, pv_name)]
    if command in LISTINGS:
        if not positionals:
            return Plan(MERGED, tuple(args.argv))
        if not ours:
            return Plan(REAL)
        if len(ours) == len(positionals):
            return Plan(EMULATED)
        dropped = {index for index, _text in ours}
        return Plan(MERGED, tuple(word for index, word in enumerate(args.argv) if index not in dropped))
    if not ours:
        return Plan(REAL)
    return Plan(EMULATED if len(ours) == len(positionals) else MIXED)


def decide_display(argv, vg, pv_name):
    """The Plan for one of DISPLAYS: lvm2's own answer (REAL, MERGED) unless a word names the emulated VG.

    A word that is not an option may name a real VG or LV (or be an option's
    value, "--units m": the same, as the argv is not parsed): lvm2 answers
    for what was asked, alone (REAL). Only a display of everything (MERGED)
    says where the emulated VG is.
    """
    if any(word in HELP_WORDS for word in argv):
        return Plan(REAL)
    if mentions_vg(argv, vg, pv_name):
        return Plan(EMULATED)
    if any(not word.startswith("-") for word in argv):
        return Plan(REAL)
    return Plan(MERGED, tuple(argv))


def real_vg_evidence(vg, backup_dir="/etc/lvm/backup", mapper_dir="/dev/mapper"):
    """Where this node shows a real LVM VG named `vg`, or None.

    Without running lvm2 (every wrapped command would pay for its scan):
    lvm2 keeps a metadata backup of each VG it has created or changed here
    (backup_dir in lvm.conf(5)), and device-mapper names each active LV
    <vg>-<lv>, with '-' in names doubled (_unescape_dm).
    """
    backup = os.path.join(backup_dir, vg)
    if os.path.isfile(backup):
        return backup
    try:
        names = os.listdir(mapper_dir)
    except OSError:
        return None
    for name in sorted(names):
        name_vg, name_lv = _unescape_dm(name)
        if name_vg == vg and name_lv:
            return os.path.join(mapper_dir, name)
    return None


def real_tool(command):
    """(path, argv[0]) of the real LVM command.

    Not the diverted link (/usr/sbin/<command>.distrib on trixie,
    /sbin/<command>.distrib.usr-is-merged on bookworm: debian/*.preinst):
    which one holds lvm2's link depends on the release and on the upgrade in
    progress, while lvm with argv[0] = the plain command name is the same
    program on every release (never "<command>.distrib": lvm dispatches on
    argv[0]'s basename).
    """
    return LVM_BINARY, command


def exec_argv(command, argv):
    """(path, full argv) that runs the real tool with `argv` byte for byte."""
    path, argv0 = real_tool(command)
    return path, [argv0, *argv]
