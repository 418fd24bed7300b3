"""The node's configuration: /etc/ganeti/extstorage-zfs.conf.

The file is shell-compatible (KEY=value, `export KEY=value`, comments,
quoting, $VAR references to earlier keys) so admins can also source it from
shell. The original tool's names (EXTP_ZFS, EXTP_CREATE, EXTP_DESTROY,
EXTP_VG, EXTP_USED) are accepted as aliases, including its
`test -z "$EXTP_VG" && EXTP_VG=...` idiom. Everything is validated when the
file is loaded, before any command runs.
"""

import os
import re
import shlex
import time

from . import options
from .errors import ConfigError

DEFAULT_PATH = "/etc/ganeti/extstorage-zfs.conf"
# Tests and admins can point every command at another file.
PATH_VARIABLE = "GANETI_ZFS_CONFIG"

# The original tool's variable names, and ours.
ALIASES = {
    "EXTP_ZFS": "ZFS_PARENT",
    "EXTP_CREATE": "CREATE_OPTIONS",
    "EXTP_DESTROY": "DESTROY_OPTIONS",
    "EXTP_VG": "LVM_VG",
    "EXTP_USED": "USED_PROPERTY",
}

_DATASET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*(/[A-Za-z0-9_][A-Za-z0-9_.:-]*)*$")
_VG_NAME = re.compile(r"^[A-Za-z0-9+_][A-Za-z0-9+_.-]*$")


def check_dataset(value, key):
    if not _DATASET.match(value) or ".." in value or len(value) > 200:
        raise ConfigError(f"{key}={value!r} is not a valid ZFS dataset name")
    return value


# What every Linux node has in /dev (devtmpfs, udev, ZFS): lvm2's vgcreate
# refuses a VG name whose /dev/<name> exists ("already exists in
# filesystem", lib/metadata/metadata.c, validate_new_vg_name), and our LV
# links /dev/<vg>/<lv> would land among them.
_DEV_NAMES = frozenset("""
    block bsg bus char console core cpu cpu_dma_latency disk dma_heap dri fd full fuse hpet hugepages hwrng
    input kmsg kvm log loop-control mapper mem mqueue net null port ptmx pts random rfkill rtc shm snapshot
    snd stderr stdin stdout tty uinput urandom usb userfaultfd vfio vga_arbiter zero zfs zvol
""".split())
# lvm2's NAME_LEN (lib/misc/lvm-string.h) is 128 with the terminating NUL.
_VG_NAME_MAX = 127


def _vg_name(value, key):
    """A VG name lvm2 accepts (lib/misc/lvm-string.c, validate_name) that no /dev name takes."""
    if not value:
        return value
    if not _VG_NAME.match(value) or len(value) > _VG_NAME_MAX:
        raise ConfigError(
            f"{key}={value!r} is not a valid LVM volume group name "
            f"(A-Z a-z 0-9 + _ . -, not starting with '-' or '.', at most {_VG_NAME_MAX} characters)"
        )
    if value in _DEV_NAMES:
        raise ConfigError(f"{key}={value!r}: /dev/{value} already exists on every node, so lvm2 refuses it as a VG name")
    return value


def _positive_number(value, key):
    try:
        number = float(value)
    except ValueError:
        number = -1
    if number <= 0:
        raise ConfigError(f"{key} must be a positive number, not {value!r}")
    return number


def _whole_number(value, key):
    if not re.fullmatch(r"[0-9]+", value):
        raise ConfigError(f"{key} must be a whole number, not {value!r}")
    return int(value)


def _percent(value, key):
    number = _whole_number(value, key)
    if number > 100:
        raise ConfigError(f"{key} must be a percentage from 0 to 100, not {value!r}")
    return number


def _destroy_options(value, key):
    words = value.split()
    if any("R" in word for word in words if word.startswith("-")):
        raise ConfigError(
            f"{key}={value!r}: -R would also destroy every clone of the volume's snapshots; "
            "ganeti-zfs never does that (remove refuses while clones exist). Remove the setting."
        )
    for word in words:
        if word not in ("-r", "-f", "-rf", "-fr"):
            raise ConfigError(
                f"{key}={value!r}: only -r and -f are accepted (the volume's own snapshots always go with it, "
                "and -f is passed to zfs destroy)"
            )
    return value


def _used_property(value, key):
    if value not in ("used", "logicalused"):
        raise ConfigError(f"{key} must be used or logicalused, not {value!r}")
    return value


# The days a SNAPSHOT_FORMAT must name apart: 800 from 2027-12-01 (UTC
# midnights), so two year ends, a leap day (2028-02-29) and every weekday,
# day of month and day of year more than once.
_FORMAT_CHECK_START = 1827619200  # 2027-12-01T00:00:00Z
_FORMAT_CHECK_DAYS = 800
_DEFAULT_SNAPSHOT_FORMAT = "%Y-%m-%d"


def _snapshot_format(value, key):
    if "%" not in value or "@" in value or "/" in value or " " in value:
        raise ConfigError(f"{key}={value!r} must be a strftime format with no '@', '/' or spaces")
    if value != _DEFAULT_SNAPSHOT_FORMAT:
        # One scheduled snapshot a day, named by this format: a name that
        # comes back (daily-%a, %Y-%m) would stop the job once it does.
        # time, not datetime: this runs on attach's start-up too.
        seen = {}
        for day in range(_FORMAT_CHECK_DAYS):
            when = time.gmtime(_FORMAT_CHECK_START + day * 86400)
            name = time.strftime(value, when)
            if name in seen:
                raise ConfigError(
                    f"{key}={value!r} does not give every day its own name: {time.strftime('%Y-%m-%d', seen[name])} "
                    f"and {time.strftime('%Y-%m-%d', when)} are both {name!r} (a date such as %Y-%m-%d must be in it)"
                )
            seen[name] = when
    return value


def _text(value, key):
    return value


def _datasets(value, key):
    """One or more dataset names, space-separated (LVM_PARENT, SNAPSHOT_PARENTS)."""
    for dataset in value.split():
        check_dataset(dataset, key)
    return value


def _create_options(value, key):
    options.parse_create_string(value, key)
    return value


def _volblocksize(value, key):
    options.parse_blocksize(value, key)
    return value


def _compression(value, key):
    return options.PROPERTY_CHECKS["compression"](value, key)


def _zfs_properties(value, key):
    options.VolumeOptions().with_overrides(_property_words(value, key), key)
    return value


def _volmode(value, key):
    if value == "none":
        raise ConfigError(
            f"{key}=none: a zvol with volmode=none has no device node, and Ganeti needs one for every disk "
            "(attach prints its path); use dev, full, geom or default"
        )
    if value not in ("default", "full", "geom", "dev"):
        raise ConfigError(f"{key} must be dev, full, geom or default (zfsprops(7) volmode), not {value!r}")
    return value


def _property_words(value, key):
    params = {}
    for word in value.split():
        name, equals, text = word.partition("=")
        if not equals:
            raise ConfigError(f"{key}: {word!r} is not property=value")
        params[name] = text
    return params


# key -> (parser, default text, one-line description). The shipped
# conffile documents every key (a unit test checks it).
KEYS = {
    "ZFS_PARENT": (check_dataset, "", "parent dataset of the ext volumes (original: EXTP_ZFS)"),
    "CREATE_OPTIONS": (_create_options, "", "original-style zfs create options, e.g. \"-s -b 4k -o compression=lz4\" (EXTP_CREATE)"),
    "SPARSE": (options.parse_bool, "yes", "create thin-provisioned zvols"),
    "VOLBLOCKSIZE": (_volblocksize, "", "zvol block size (empty: ZFS's default)"),
    "COMPRESSION": (_compression, "lz4", "compression of new zvols"),
    "ZFS_PROPERTIES": (_zfs_properties, "", "further whitelisted properties for new zvols, e.g. \"sync=standard logbias=latency\""),
    "VOLMODE": (_volmode, "dev", "volmode of new zvols: dev (no partition devices on the host), full, geom or "
                "default (the zfs module's zvol_volmode); none is refused: Ganeti needs a device"),
    "DESTROY_OPTIONS": (_destroy_options, "", "original EXTP_DESTROY: -r (always done) or -f (passed to zfs destroy); -R is refused"),
    "LVM_VG": (_vg_name, "", "volume group name the LVM emulation answers for (EXTP_VG); empty disables it"),
    "LVM_PARENT": (_datasets, "", "parent dataset of the emulated LVs (default: ZFS_PARENT, as in the original)"),
    "USED_PROPERTY": (_used_property, "used", "used or logicalused, for sizes shown by helpers (EXTP_USED)"),
    "ATTACH_TIMEOUT": (_positive_number, "10", "seconds attach waits for the device node"),
    "ZFS_TIMEOUT": (_positive_number, "120", "seconds any zfs or zpool command may take"),
    "DEBUG": (options.parse_bool, "no", "show every zfs command on stderr"),
    "SNAPSHOT_PARENTS": (_datasets, "", "datasets whose zvols get scheduled snapshots (default: ZFS_PARENT and LVM_PARENT)"),
    "SNAPSHOT_FORMAT": (_snapshot_format, _DEFAULT_SNAPSHOT_FORMAT, "strftime name of scheduled snapshots, in UTC; it must differ every day"),
    "KEEP_DAILY": (_whole_number, "7", "daily snapshots kept per volume"),
    "KEEP_WEEKLY": (_whole_number, "4", "weekly snapshots kept per volume"),
    "KEEP_MONTHLY": (_whole_number, "6", "monthly snapshots kept per volume"),
    "MOVE_KEEP_DAYS": (_whole_number, "7", "days ganeti-zfs move marks the old copy on the source to be kept (ganeti-zfs:retired-until)"),
    "CHECK_SNAPSHOT_WARN_HOURS": (_positive_number, "26", "check: WARNING when a newest snapshot is older"),
    "CHECK_SNAPSHOT_CRIT_HOURS": (_positive_number, "50", "check: CRITICAL when a newest snapshot is older"),
    "CHECK_CAPACITY_WARN": (_percent, "80", "check: WARNING at this pool capacity (%)"),
    "CHECK_CAPACITY_CRIT": (_percent, "90", "check: CRITICAL at this pool capacity (%)"),
}


class _Setting:
    """A Config attribute: the parsed value of one key of KEYS."""

    def __init__(self, key):
        self.key = key

    def __get__(self, cfg, owner=None):
        return self if cfg is None else cfg.values[self.key]


# The Config attribute of each key of KEYS, in KEYS' order: the key in lower
# case, but for the two raw values whose names the defaulting properties of
# Config have (zfs_parent: `parent` refuses it unset; lvm_parent_setting:
# `lvm_parent` defaults it). `grep -n NAME` finds each one here.
_ATTRIBUTE_NAMES = """
    zfs_parent create_options sparse volblocksize compression zfs_properties volmode destroy_options
    lvm_vg lvm_parent_setting used_property attach_timeout zfs_timeout debug
    snapshot_parents snapshot_format keep_daily keep_weekly keep_monthly move_keep_days
    check_snapshot_warn_hours check_snapshot_crit_hours check_capacity_warn check_capacity_crit
""".split()


class Config:
    """The validated settings: one attribute per key of KEYS (_ATTRIBUTE_NAMES).

    A plain class, not a dataclass: see env.Request.
    """

    ATTRIBUTES = dict(zip(KEYS, _ATTRIBUTE_NAMES))  # key of KEYS -> its attribute

    def __init__(self, path, values, volume_options):
        self.path = path
        self.values = values  # key -> parsed value, every key of KEYS present
        self.volume_options = volume_options

    @property
    def parent(self):
        """The parent dataset of ext volumes; an error when unset."""
        if not self.zfs_parent:
            raise ConfigError(f"ZFS_PARENT is not set in {self.path}")
        return self.zfs_parent

    @property
    def lvm_parent(self):
        """The dataset of the emulated LVs. By default ZFS_PARENT, where the
        original tool's lvcreate put them: its VG's size and free space were
        that dataset's (original-README.txt, `gnt-node list-storage`). The
        LVs and the provider's ext volumes then share it; ownership
        (properties.OWNER) tells them apart."""
        if self.lvm_parent_setting:
            return self.lvm_parent_setting
        if not self.lvm_vg:
            raise ConfigError(f"LVM_VG is not set in {self.path}")
        return self.parent

    @property
    def destroy_force(self):
        """DESTROY_OPTIONS has -f: the provider's remove passes it to zfs destroy."""
        return any("f" in word for word in self.destroy_options.split())

    def dataset(self, vol_name):
        return f"{self.parent}/{vol_name}"


_ASSIGNMENT = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
# The original defaults.sh: test -z "$EXTP_VG" && EXTP_VG='ffzgvg'
_DEFAULT_IDIOM = re.compile(r'^test\s+-z\s+"?\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?"?\s*&&\s*(.*)$')
_REFERENCE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def _expand(raw, seen):
    """$VAR and ${VAR} of earlier keys, except inside single quotes."""
    parts = re.split(r"('[^']*')", raw)
    for index, part in enumerate(parts):
        if not part.startswith("'"):
            parts[index] = _REFERENCE.sub(lambda m: seen.get(m.group(1) or m.group(2), ""), part)
    return "".join(parts)


class UnknownKey(ConfigError):
    """A line sets a key that is not in KEYS (a typo, or a newer version's key)."""


def parse_text(text, path="<config>", skipped=None, seen=None, unknown=None):
    """KEY -> raw string value, in our key names, from shell-like text.

    A line that is not a valid setting is an error; given a list as
    `skipped`, it is appended there as an error message instead (the
    original tool's shell files may hold other shell code: upgrade.py).
    Given a list as `unknown`, so is a line that only sets an unknown key
    (every other error still stops the parse).
    `seen`, a dict, carries the values of files read before this one, as
    the shell has them when it sources several files in turn.
    """
    raw = {} if seen is None else seen
    for number, line in enumerate(text.splitlines(), 1):
        try:
            _parse_line(line, raw, f"{path}:{number}")
        except UnknownKey as error:
            if unknown is not None:
                unknown.append(str(error))
            elif skipped is not None:
                skipped.append(str(error))
            else:
                raise
        except ConfigError as error:
            if skipped is None:
                raise
            skipped.append(str(error))
    return {key: value for key, value in raw.items() if key in KEYS}


def _parse_line(line, raw, where):
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return
    idiom = _DEFAULT_IDIOM.match(stripped)
    only_if_unset = None
    if idiom:
        only_if_unset, stripped = idiom.group(1), idiom.group(2)
    match = _ASSIGNMENT.match(stripped)
    if not match:
        raise ConfigError(f"{where}: not a KEY=value line: {line.strip()!r}")
    name, value_text = match.groups()
    key = ALIASES.get(name, name)
    if key not in KEYS:
        raise UnknownKey(f"{where}: unknown setting {name!r}")
    try:
        words = shlex.split(_expand(value_text, raw), comments=True)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}")
    if len(words) > 1:
        raise ConfigError(f"{where}: quote a value that has spaces: {line.strip()!r}")
    if only_if_unset and raw.get(ALIASES.get(only_if_unset, only_if_unset)):
        return
    value = words[0] if words else ""
    if value:
        # Checked here too, so that the message can name the line.
        parser = KEYS[key][0]
        try:
            parser(value, name)
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}")
    raw[key] = value
    # $EXTP_VG and $LVM_VG both refer to it in later lines.
    raw[name] = value


def build(raw, path="<config>"):
    """A validated Config from raw key -> text values (empty = default)."""
    values = {}
    try:
        for key, (parser, default, _description) in KEYS.items():
            text = raw.get(key) or default
            values[key] = parser(text, key) if text != "" else ""
        if values["CHECK_SNAPSHOT_WARN_HOURS"] > values["CHECK_SNAPSHOT_CRIT_HOURS"]:
            raise ConfigError("CHECK_SNAPSHOT_WARN_HOURS is larger than CHECK_SNAPSHOT_CRIT_HOURS")
        if values["CHECK_CAPACITY_WARN"] > values["CHECK_CAPACITY_CRIT"]:
            raise ConfigError("CHECK_CAPACITY_WARN is larger than CHECK_CAPACITY_CRIT")
        _check_vg_is_no_pool(values)
        volume_options = _volume_options(values, explicit=set(raw))
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}")
    return Config(path, values, volume_options)


def _check_vg_is_no_pool(values):
    """LVM_VG must not be the pool of the emulated LVs: ZFS's udev rule links
    /dev/<pool>/<dataset> for every zvol (docs/ganeti-contract.md, 60-zvol.rules)."""
    vg = values["LVM_VG"]
    parent = values["LVM_PARENT"] or values["ZFS_PARENT"]
    if vg and vg in {dataset.split("/")[0] for dataset in parent.split()}:
        raise ConfigError(f"LVM_VG={vg!r} is the name of the ZFS pool {vg}, whose zvols ZFS links as /dev/{vg}/...")


def _volume_options(values, explicit):
    """CREATE_OPTIONS (the original's string) first, then our own keys."""
    base = options.VolumeOptions()
    if values["CREATE_OPTIONS"]:
        base = options.parse_create_string(values["CREATE_OPTIONS"], "CREATE_OPTIONS")
    params = {}
    if "SPARSE" in explicit or not values["CREATE_OPTIONS"]:
        params["sparse"] = "yes" if values["SPARSE"] else "no"
    if values["VOLBLOCKSIZE"]:
        params["volblocksize"] = values["VOLBLOCKSIZE"]
    if "COMPRESSION" in explicit or "compression" not in dict(base.properties):
        params["compression"] = values["COMPRESSION"]
    params.update(_property_words(values["ZFS_PROPERTIES"], "ZFS_PROPERTIES"))
    return base.with_overrides(params, "setting")


def load(path=None, environ=None, unknown=None):
    """The validated Config from `path`, $GANETI_ZFS_CONFIG or the default.

    Given a list as `unknown`, a line setting an unknown key is ignored and
    its message ("FILE:LINE: unknown setting 'KEY'") appended there: for the
    provider actions that must keep working on such a file (provider.py,
    LENIENT_ACTIONS). Every other caller refuses the file.
    """
    environ = os.environ if environ is None else environ
    path = path or environ.get(PATH_VARIABLE) or DEFAULT_PATH
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist")
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}")
    return build(parse_text(text, path, unknown=unknown), path)


assert len(_ATTRIBUTE_NAMES) == len(KEYS), "config._ATTRIBUTE_NAMES and KEYS disagree"
for _key, _attribute in Config.ATTRIBUTES.items():
    assert _attribute == _key.lower() or _attribute in ("zfs_parent", "lvm_parent_setting"), _attribute
    setattr(Config, _attribute, _Setting(_key))
