"""The volume core: the one place that says whether a zvol is ours, finds its
device, and destroys it. The provider (an ext disk), the LVM emulation (an
LV), the daily job, `check` and the udev helper all use it.

A volume's life, for both kinds:
1. created and marked: `zfs create -V` directly under its parent with
   properties.OWNER set on it ("ext" by the provider, "lvm" by lvcreate);
2. device ready: udev makes /dev/zvol/<dataset>, and a device counts only
   once it names its own dataset (BLKZNAME: wait_for_device), because udev
   moves those links asynchronously and a stale one leads to another zvol;
3. snapshots and export copies: daily snapshots (properties.SNAPSHOT_KIND
   daily), and clones of export snapshots (kind export): the provider's
   <vol>.snap for gnt-backup export, or a snapshot LV of lvcreate -s;
4. removed with its copies: destroy() with its own snapshots (never -R, so
   never a clone something depends on), retrying while it is briefly busy.

The ownership rule (ours()): a zvol directly under the configured parent
whose OWNER mark is set on the zvol itself. A value inherited from a parent
never counts: otherwise one mark on a parent would make every foreign zvol
below it ours to destroy. Nothing else is ever changed or destroyed.
"""

import collections
import fcntl
import math
import os
import stat
import time

from . import log, naming, properties
from . import zfs as zfs_module
from .errors import Error

MIB = 1024 * 1024

# Snapshot that `snapshot` takes of a volume and clones into <vol>.snap.
EXPORT_SNAPSHOT = "ganeti-export"

# The zvol ioctl that /lib/udev/zvol_id uses to ask a /dev/zdN device for
# its dataset name: _IOR(0x12, 125, char[ZFS_MAX_DATASET_NAME_LEN = 256]).
BLKZNAME = (2 << 30) | (256 << 16) | (0x12 << 8) | 125
_NAME_BUFFER = 256

_LOOKUP_PROPERTIES = ("type", "volsize", "refreservation", "origin", properties.OWNER)


def _number(text):
    return int(text) if text.isdigit() else 0


# volsize: bytes, 0 if not a volume; refreservation: bytes, 0 = sparse;
# origin: the snapshot a clone was made from, or ""; owner: our OWNER
# property if set locally on it, else "". A named tuple, like env.Request,
# to keep dataclasses off attach's import path.
class Volume(collections.namedtuple("Volume", "dataset type volsize refreservation origin owner")):
    __slots__ = ()

    @property
    def ours(self):
        return self.type == "volume" and self.owner == properties.OWNER_EXT

    def require_ours(self, doing):
        if not self.ours:
            what = "a volume" if self.type == "volume" else f"a {self.type}"
            raise Error(
                f"refusing to {doing} {self.dataset}: it is {what} not created by ganeti-zfs "
                f"({properties.OWNER}={properties.OWNER_EXT} is not set on it)"
            )

    def is_export_copy(self, parent):
        """A `<vol>.snap` clone made by our snapshot action, directly under `parent`."""
        return (
            self.ours
            and self.dataset.rpartition("/")[0] == parent
            and self.origin.startswith(parent + "/")
            and self.origin.endswith("@" + EXPORT_SNAPSHOT)
        )


def lookup(zfs, dataset):
    """The Volume at `dataset` (one zfs process), or None if nothing is there."""
    try:
        values = zfs.get_with_source(dataset, _LOOKUP_PROPERTIES)[dataset]
    except zfs_module.DoesNotExist:
        return None
    owner, owner_source = values.get(properties.OWNER, ("-", "-"))
    origin = values.get("origin", ("-", "-"))[0]
    return Volume(
        dataset=dataset,
        type=values["type"][0],
        volsize=_number(values.get("volsize", ("0",))[0]),
        refreservation=_number(values.get("refreservation", ("0",))[0]),
        origin="" if origin == "-" else origin,
        owner=owner if owner_source == "local" else "",
    )


def owners(zfs, parent, rows):
    """{dataset: owner mark} of the zvols directly under `parent` whose mark
    is their own: the ownership rule, for a listing.

    `rows`: a `zfs list` of `parent` to depth 1 or more with the fields name,
    type and properties.OWNER, the parent's own row included (types must
    include filesystem). `zfs list` shows inherited values as if set, so
    when the parent itself shows a mark (set on it or above), every child
    would look marked: then one `zfs get`, which tells the source, decides.
    Usually that costs nothing: nothing is set on parents.
    """
    inherited = any(row["name"] == parent and _marked(row[properties.OWNER]) for row in rows)
    if not inherited:
        return {
            row["name"]: row[properties.OWNER]
            for row in rows
            if row["type"] == "volume" and naming.split(row["name"])[0] == parent and _marked(row[properties.OWNER])
        }
    log.warning(f"{properties.OWNER} is set on {parent} or above it; only marks set on each zvol count "
                f"(zfs inherit {properties.OWNER} {parent})")
    values = zfs.get_with_source(parent, [properties.OWNER], types=("volume",), depth=1)
    return {
        name: props[properties.OWNER][0]
        for name, props in values.items()
        if naming.split(name)[0] == parent and props[properties.OWNER][1] == "local" and _marked(props[properties.OWNER][0])
    }


def _marked(value):
    return value in (properties.OWNER_EXT, properties.OWNER_LVM)


def existing(zfs, dataset):
    volume = lookup(zfs, dataset)
    if volume is None:
        raise Error(f"volume {dataset} does not exist")
    return volume


# The one busy-retry policy of every destroy (provider, LVM emulation).
DESTROY_ATTEMPTS = 10
DESTROY_PAUSE = 0.5  # seconds


def destroy(zfs, dataset, snapshots_too=True, attempts=DESTROY_ATTEMPTS, pause=DESTROY_PAUSE, force=False):
    """Destroy `dataset` (with its own snapshots, never -R), retrying briefly while busy.

    A zvol is busy while something has it open, e.g. a concurrent attach
    checking the device, an lvs probing it or udev; that passes within seconds.
    """
    for attempt in range(1, attempts + 1):
        try:
            zfs.destroy(dataset, snapshots_too=snapshots_too, force=force)
            return
        except zfs_module.Busy as error:
            if attempt == attempts:
                raise Error(f"{dataset} is still busy after {attempts} attempts (is it open?): {error}")
            log.debug(f"{dataset} is busy, trying again in {pause:g} s")
            time.sleep(pause)


def clone_names(text):
    """The `clones` property of a snapshot as a list ("" or "-" when none)."""
    return [clone for clone in text.split(",") if clone not in ("", "-")]


def destroy_unused_export_snapshot(zfs, snapshot):
    """Destroy our export snapshot if it exists and nothing is cloned from it.

    Anything else is left alone, quietly: this is clean-up after an export
    copy was destroyed, or before a new one is made (where a snapshot that
    is still there makes `zfs snapshot` fail with a clear message).
    """
    try:
        values = zfs.get_with_source(snapshot, (properties.SNAPSHOT_KIND, "clones"))[snapshot]
    except zfs_module.DoesNotExist:
        return
    kind, source = values[properties.SNAPSHOT_KIND]
    clones = clone_names(values["clones"][0])
    if kind != properties.SNAPSHOT_KIND_EXPORT or source != "local":
        log.warning(f"{snapshot} was not taken by ganeti-zfs for an export; leaving it")
    elif clones:
        log.info(f"{snapshot} still has clones ({', '.join(clones)}); leaving it")
    else:
        zfs.destroy(snapshot)


# -- the block device ----------------------------------------------------




def zvol_dataset(device):
    """The dataset a /dev/zdN device belongs to, asked from the zvol itself."""
    descriptor = os.open(device, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        buffer = fcntl.ioctl(descriptor, BLKZNAME, bytes(_NAME_BUFFER))
    finally:
        os.close(descriptor)
    return buffer.split(b"\0", 1)[0].decode("utf-8", "replace")


def device_problem(link, dataset, dataset_of=zvol_dataset):
    """Why `link` is not (yet) the block device of `dataset`, or None if it is."""
    if not os.path.lexists(link):
        return f"{link} does not exist"
    target = os.path.realpath(link)
    try:
        mode = os.stat(target).st_mode
    except OSError as error:
        return f"{link} points to {target}, which cannot be opened ({error.strerror})"
    if not stat.S_ISBLK(mode):
        return f"{link} points to {target}, which is not a block device"
    try:
        actual = dataset_of(target)
    except OSError as error:
        return f"cannot ask {target} for its dataset ({error.strerror})"
    if actual != dataset:
        # A stale link left by udev after zvols were destroyed and recreated.
        return f"{link} points to {target}, which belongs to {actual or 'no dataset'}"
    return None


def udev_settle(seconds):
    """Let udev finish creating links; never on our stdout (attach prints there)."""
    import subprocess  # only when waiting: not on attach's usual path

    try:
        subprocess.run(
            ["udevadm", "settle", f"--timeout={max(1, math.ceil(seconds))}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=seconds + 5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        log.debug(f"udevadm settle: {error}")


def wait_for_device(dataset, timeout, settle=udev_settle, dataset_of=zvol_dataset):
    """The verified device link of `dataset`, waiting up to `timeout` s for udev."""
    link = naming.device_link(dataset)
    deadline = time.monotonic() + timeout
    settled = False
    while True:
        problem = device_problem(link, dataset, dataset_of)
        if problem is None:
            return link
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Error(f"no usable device for {dataset} after {timeout:g} s: {problem}")
        log.debug(f"waiting for the device: {problem}")
        if not settled:
            settle(remaining)
            settled = True
        else:
            time.sleep(min(0.1, remaining))
