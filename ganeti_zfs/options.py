"""Volume creation options: the whitelist, and validation of every value.

Both the config file (node-wide defaults) and Ganeti's per-disk ext-params
(`gnt-instance add --disk 0:size=10G,provider=zfs,volblocksize=16k`) go
through here, so nothing reaches `zfs create` unvalidated.
"""

import collections
import re
import shlex

from .errors import ConfigError

_TRUE = ("yes", "true", "on", "1")
_FALSE = ("no", "false", "off", "0")


def parse_bool(value, what):
    lowered = str(value).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{what} must be yes or no, not {value!r}")


_SIZE = re.compile(r"^([0-9]+)([kKmM]?)$")


def parse_blocksize(value, what="volblocksize"):
    """A power of two from 512 bytes to 128 KiB, written as 8192, 8k or 8K."""
    match = _SIZE.match(str(value).strip())
    if not match:
        raise ConfigError(f"{what} must be a size such as 8k, not {value!r}")
    number, unit = int(match.group(1)), match.group(2).lower()
    size = number * {"": 1, "k": 1024, "m": 1024 * 1024}[unit]
    if size < 512 or size > 128 * 1024 or size & (size - 1):
        raise ConfigError(f"{what} must be a power of two from 512 to 128k, not {value!r}")
    return size


def _choice(*allowed):
    def check(value, what):
        if value not in allowed:
            raise ConfigError(f"{what} must be one of {', '.join(allowed)}; not {value!r}")
        return value

    return check


_COMPRESSION = (
    ["on", "off", "lzjb", "zle", "lz4", "gzip", "zstd", "zstd-fast"]
    + [f"gzip-{n}" for n in range(1, 10)]
    + [f"zstd-{n}" for n in range(1, 20)]
)

# ZFS properties an admin or a disk may set, and how each value is checked.
# Anything else (mountpoint, canmount, quota, ...) is refused.
PROPERTY_CHECKS = {
    "compression": _choice(*_COMPRESSION),
    "sync": _choice("standard", "always", "disabled"),
    "logbias": _choice("latency", "throughput"),
    "primarycache": _choice("all", "none", "metadata"),
    "secondarycache": _choice("all", "none", "metadata"),
    "copies": _choice("1", "2", "3"),
}

# The ext-params a disk may carry, with the line parameters.list shows.
EXT_PARAMS = {
    "sparse": "yes to create the zvol thin-provisioned (no reservation), no to reserve its full size",
    "volblocksize": "zvol block size, a power of two from 512 to 128k (fixed at creation)",
    "compression": "ZFS compression: on, off, lz4, zstd, zstd-N, gzip, gzip-N, zle, lzjb",
    "sync": "ZFS sync property: standard, always or disabled",
    "logbias": "ZFS logbias property: latency or throughput",
    "primarycache": "ZFS primarycache property: all, none or metadata",
    "secondarycache": "ZFS secondarycache property: all, none or metadata",
    "copies": "number of data copies ZFS keeps: 1, 2 or 3",
}


# sparse: bool; volblocksize: bytes, None = ZFS's default; properties:
# ((name, value), ...), validated. A named tuple for the same reason as
# env.Request: no dataclasses import on attach's path.
class VolumeOptions(collections.namedtuple("VolumeOptions", "sparse volblocksize properties", defaults=(True, None, ()))):
    __slots__ = ()

    def with_overrides(self, params, what="ext-param"):
        """These options with validated `params` (name -> text) applied."""
        sparse, blocksize, properties = self.sparse, self.volblocksize, dict(self.properties)
        for name, value in params.items():
            label = f"{what} {name}"
            if name == "sparse":
                sparse = parse_bool(value, label)
            elif name == "volblocksize":
                blocksize = parse_blocksize(value, label)
            elif name in PROPERTY_CHECKS:
                properties[name] = PROPERTY_CHECKS[name](value, label)
            else:
                raise ConfigError(
                    f"unknown {what} {name!r}; allowed: {', '.join(sorted(EXT_PARAMS))}"
                )
        return VolumeOptions(sparse, blocksize, tuple(sorted(properties.items())))


def parse_create_string(text, what="EXTP_CREATE"):
    """The original tool's `zfs create` option string, e.g. "-s -b 4k -o compression=lz4".

    It is parsed into validated options and never passed to zfs as it is.
    """
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise ConfigError(f"{what}: {error}")
    params = {"sparse": "no"}
    index = 0
    while index < len(words):
        word = words[index]
        if word == "-s":
            params["sparse"] = "yes"
        elif word in ("-b", "-o") or (word[:2] in ("-b", "-o") and len(word) > 2):
            if len(word) > 2:
                argument = word[2:]
            else:
                index += 1
                if index == len(words):
                    raise ConfigError(f"{what}: {word} needs an argument")
                argument = words[index]
            if word.startswith("-b"):
                params["volblocksize"] = argument
            else:
                key, equals, value = argument.partition("=")
                if not equals:
                    raise ConfigError(f"{what}: -o needs property=value, not {argument!r}")
                params[key] = value
        else:
            raise ConfigError(f"{what}: unsupported zfs create option {word!r} (allowed: -s, -b SIZE, -o PROPERTY=VALUE)")
        index += 1
    return VolumeOptions().with_overrides(params, what)
