"""Parsing LVM command lines the way lvm2's getopt_long does.

Only the options we understand are known. An unknown option is an
ArgsError: for a command that names the emulated VG it is reported, for any
other command the real tool gets the argv and judges it itself.
"""

from ..errors import UsageError


class ArgsError(UsageError):
    pass


# Options every LVM command accepts that change nothing we emulate.
_COMMON_FLAGS = {
    "-v": "verbose", "--verbose": "verbose",
    "-d": "debug", "--debug": "debug",
    "-q": "quiet", "--quiet": "quiet",
    "-y": "yes", "--yes": "yes",
    # --test: nothing may change (Ganeti's lvextend dry run).
    "-t": "test", "--test": "test",
    "--ignorelockingfailure": "ignorelockingfailure",
    "--readonly": "readonly",
    "--nolocking": "nolocking",
    "--noudevsync": "noudevsync",
    "--ignoreskippedcluster": "ignoreskippedcluster",
    "--nohints": "nohints",
    # lvm2 prints its help or version and changes nothing: decide.py hands
    # these to the real tool.
    "-h": "help", "--help": "help", "-?": "help",
    "--longhelp": "longhelp",
    "--version": "version",
}
_COMMON_VALUES = {
    "--config": "config",
    "--commandprofile": "commandprofile",
    "--profile": "profile",
    "-A": "autobackup", "--autobackup": "autobackup",
    "--lockopt": "lockopt",
    "--devices": "devices",
    "--devicesfile": "devicesfile",
    "--driverloaded": "driverloaded",
    "--journal": "journal",
}

_REPORT_FLAGS = {
    "--noheadings": "noheadings",
    "--nosuffix": "nosuffix",
    "--unbuffered": "unbuffered",
    "--aligned": "aligned",
    "-a": "all", "--all": "all",
    "-P": "partial", "--partial": "partial",
    "--foreign": "foreign",
    "--shared": "shared",
    # Known to lvm2 (lvs(8), vgs(8), pvs(8) of lvm2 2.03), not answered for
    # the emulated VG: report.UNANSWERED.
    "--binary": "binary",
    "--rows": "rows",
    "--nameprefixes": "nameprefixes",
    "--unquoted": "unquoted",
    "--logonly": "logonly",
}
_REPORT_VALUES = {
    "-o": "options", "--options": "options",
    "--separator": "separator",
    "--units": "units",
    "--reportformat": "reportformat",
    "-S": "select", "--select": "select",
    "-O": "sort", "--sort": "sort",
    "--configreport": "configreport",
}
# lvs and pvs only.
_SEGMENT_FLAGS = {"--segments": "segments"}
_LVS_FLAGS = {"-H": "history", "--history": "history"}

_LV_CREATE_VALUES = {
    "-L": "size", "--size": "size",
    "-l": "extents", "--extents": "extents",
    "-n": "name", "--name": "name",
    "-i": "stripes", "--stripes": "stripes",
    "-I": "stripesize", "--stripesize": "stripesize",
    "-W": "wipesignatures", "--wipesignatures": "wipesignatures",
    "-Z": "zero", "--zero": "zero",
    "-a": "activate", "--activate": "activate",
    "--addtag": "addtag",
    "--alloc": "alloc",
    "-C": "contiguous", "--contiguous": "contiguous",
    "--type": "type",
}
_LV_CREATE_FLAGS = {"-s": "snapshot", "--snapshot": "snapshot"}

_LV_RESIZE = (
    {"-f": "force", "--force": "force"},
    {
        "-L": "size", "--size": "size",
        "-l": "extents", "--extents": "extents",
        "--alloc": "alloc",
        "-i": "stripes", "--stripes": "stripes",
        "-I": "stripesize", "--stripesize": "stripesize",
    },
)

_SPECS = {
    "lvs": ({**_REPORT_FLAGS, **_SEGMENT_FLAGS, **_LVS_FLAGS}, _REPORT_VALUES),
    "vgs": (_REPORT_FLAGS, _REPORT_VALUES),
    "pvs": ({**_REPORT_FLAGS, **_SEGMENT_FLAGS}, _REPORT_VALUES),
    "lvcreate": (_LV_CREATE_FLAGS, _LV_CREATE_VALUES),
    "lvremove": ({"-f": "force", "--force": "force"}, {}),
    "lvrename": ({}, {}),
    "lvchange": (
        {},
        {
            "-a": "activate", "--activate": "activate",
            "--addtag": "addtag",
            "--deltag": "deltag",
        },
    ),
    "lvextend": _LV_RESIZE,
    "lvresize": _LV_RESIZE,
    "pvchange": ({}, {"-x": "allocatable", "--allocatable": "allocatable"}),
    "vgchange": ({}, {"-a": "activate", "--activate": "activate"}),
    "vgreduce": (
        {"--removemissing": "removemissing", "-f": "force", "--force": "force"},
        {},
    ),
}


class Args:
    """One parsed command line.

    options: canonical name -> list of values (a flag's value is None), in
    the order given; positionals: (index in argv, text) pairs; argv: the
    words parsed, unchanged. A plain class, not a dataclass: every LVM
    command imports this module, and dataclasses is expensive to import
    (see env.Request).
    """

    def __init__(self, command, options, positionals, argv):
        self.command = command
        self.options = options
        self.positionals = positionals
        self.argv = argv

    def has(self, name):
        return name in self.options

    def last(self, name, default=None):
        values = self.options.get(name)
        return values[-1] if values else default

    def all(self, name):
        return list(self.options.get(name, ()))

    def names(self):
        return [text for _index, text in self.positionals]


def _tables(command):
    flags, values = _SPECS[command]
    return {**_COMMON_FLAGS, **flags}, {**_COMMON_VALUES, **values}


def _long_option(word, flags, values):
    """(spelling, canonical, takes_value) of a --long option, abbreviations included."""
    known = {**{k: (v, False) for k, v in flags.items()}, **{k: (v, True) for k, v in values.items()}}
    if word in known:
        return (word, *known[word])
    candidates = {known[k] for k in known if k.startswith("--") and k.startswith(word)}
    if len(candidates) == 1:
        return (word, *candidates.pop())
    if candidates:
        raise ArgsError(f"option {word} is ambiguous")
    raise ArgsError(f"unrecognised option {word}")


def parse(command, argv):
    """Args of `argv` (without argv[0]) for one of COMMANDS."""
    flags, values = _tables(command)
    options, positionals = {}, []
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            positionals += [(i, argv[i]) for i in range(index + 1, len(argv))]
            break
        if word.startswith("--"):
            name, equals, value = word.partition("=")
            _spelling, canonical, takes_value = _long_option(name, flags, values)
            if takes_value and not equals:
                index += 1
                if index == len(argv):
                    raise ArgsError(f"option {name} requires an argument")
                value = argv[index]
            elif equals and not takes_value:
                raise ArgsError(f"option {name} does not take an argument")
            options.setdefault(canonical, []).append(value if takes_value else None)
        elif word.startswith("-") and len(word) > 1:
            # A cluster of short options; the first one taking a value eats the rest.
            position = 1
            while position < len(word):
                short = "-" + word[position]
                if short in values:
                    value = word[position + 1:]
                    if not value:
                        index += 1
                        if index == len(argv):
                            raise ArgsError(f"option {short} requires an argument")
                        value = argv[index]
                    options.setdefault(values[short], []).append(value)
                    break
                if short not in flags:
                    raise ArgsError(f"unrecognised option {short}")
                options.setdefault(flags[short], []).append(None)
                position += 1
        else:
            positionals.append((index, word))
        index += 1
    return Args(command, options, positionals, list(argv))
