"""Ganeti's ExtStorage environment, parsed in this one place.

Ganeti runs every provider script with no arguments and passes everything in
the environment (VOL_*, EXTP_*); see docs/ganeti-contract.md section 1.3. Sizes
are integer MiB.
"""

import collections
import re
import types

from .errors import UsageError

# Ganeti always sends these two ext-params; they are not ours to validate.
GANETI_EXT_PARAMS = ("provider", "access")

# A zvol name component. ZFS itself allows a little more (space, ':'), but
# Ganeti only ever generates "<uuid>.ext.disk<N>[.snap]", and a narrow rule
# keeps option injection and path tricks out. ('+' is not valid in ZFS names.)
_VOLUME_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
MAX_NAME_LENGTH = 255


def check_volume_name(name, what="VOL_NAME"):
    """Refuse a volume name that could escape or confuse the parent dataset."""
    if not name:
        raise UsageError(f"{what} is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise UsageError(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    if ".." in name:
        raise UsageError(f"{what} {name!r} contains '..'")
    if not _VOLUME_NAME.match(name):
        raise UsageError(
            f"{what} {name!r} may contain only letters, digits and '_.-' "
            "and must not start with '.' or '-'"
        )
    return name


def _mib(environ, key, required=False):
    value = environ.get(key)
    if value is None or value == "":
        if required:
            raise UsageError(f"{key} is not set")
        return None
    if not re.fullmatch(r"[0-9]+", value):
        raise UsageError(f"{key} must be a whole number of MiB, not {value!r}")
    size = int(value)
    if size <= 0:
        raise UsageError(f"{key} must be larger than 0")
    return size


def _boolean(environ, key):
    value = environ.get(key)
    if value is None:
        return None
    if value not in ("True", "False"):
        raise UsageError(f"{key} must be True or False, not {value!r}")
    return value == "True"


# Named tuples, not dataclasses, on attach's import path: attach runs on
# nearly every Ganeti disk RPC, and importing dataclasses costs more than the
# rest of its start-up under emulation (docs/benchmarks.md).
_REQUEST_FIELDS = (
    "vol_name size_mib new_size_mib metadata cname uuid snapshot_name snapshot_size_mib open_exclusive"
    # EXTP_* with lower-case keys, without Ganeti's own provider/access.
    " ext_params"
)


class Request(collections.namedtuple("Request", _REQUEST_FIELDS, defaults=(None,) * 8 + (types.MappingProxyType({}),))):
    """What Ganeti asked for, validated. Sizes in MiB; unset values are None."""

    __slots__ = ()

    def require_size(self):
        if self.size_mib is None:
            raise UsageError("VOL_SIZE is not set")
        return self.size_mib


def ext_params_from(environ):
    return {
        key[len("EXTP_"):].lower(): value
        for key, value in environ.items()
        if key.startswith("EXTP_") and key[len("EXTP_"):].lower() not in GANETI_EXT_PARAMS
    }


def volume_label(environ):
    """VOL_NAME as it was given, made printable, for the prefix of messages."""
    return repr(environ["VOL_NAME"])[1:-1] if environ.get("VOL_NAME") else "-"


def parse(environ, volume_required=True):
    """The Request in `environ` (os.environ of a provider script).

    `volume_required=False` (verify, which checks the node and needs no
    volume) accepts a missing VOL_NAME as "".
    """
    vol_name = environ.get("VOL_NAME", "")
    if volume_required or vol_name:
        check_volume_name(vol_name)
    snapshot_name = environ.get("VOL_SNAPSHOT_NAME")
    if snapshot_name is not None:
        check_volume_name(snapshot_name, "VOL_SNAPSHOT_NAME")
    return Request(
        vol_name=vol_name,
        size_mib=_mib(environ, "VOL_SIZE"),
        new_size_mib=_mib(environ, "VOL_NEW_SIZE"),
        metadata=environ.get("VOL_METADATA"),
        cname=environ.get("VOL_CNAME"),
        uuid=environ.get("VOL_UUID"),
        snapshot_name=snapshot_name,
        snapshot_size_mib=_mib(environ, "VOL_SNAPSHOT_SIZE"),
        open_exclusive=_boolean(environ, "VOL_OPEN_EXCLUSIVE"),
        ext_params=ext_params_from(environ),
    )
