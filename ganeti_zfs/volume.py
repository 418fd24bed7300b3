"""The volume core: the one place that says whether a zvol is ours, creates
it, finds its device, snapshots and clones it for an export, and destroys it.
The provider (an ext disk), the LVM emulation (an LV), `adopt`, the daily
job, `check` and the udev helper all use it.

A volume's life, for both kinds:
1. created and marked (create(), or adopt's receive + mark_properties()):
   `zfs create -V` directly under its parent with properties.OWNER set on
   it ("ext" by the provider, "lvm" by lvcreate), and volmode (VOLMODE,
   default dev: no partition devices of a guest's disk on the host);
2. device ready: udev makes /dev/zvol/<dataset>, and a device counts only
   once it names its own dataset (BLKZNAME: wait_for_device), because udev
   moves those links asynchronously and a stale one leads to another zvol.
   A creation that ends without a usable device destroys what it made
   (ready_or_discarded): Ganeti attaches right after creating, and when
   that attach fails it never removes the disk, which would leak;
3. snapshots and export copies: daily snapshots (properties.SNAPSHOT_KIND
   daily), and export copies (export_copy()): a clone of an export
   snapshot (kind export), the provider's <vol>.snap for gnt-backup export
   or a snapshot LV of lvcreate -s; is_export_copy() is the one rule;
4. removed with its copies: destroy() with its own snapshots (never -R, so
   never a clone something depends on), retrying while it is briefly busy.

The ownership rule (owners(), Volume.ours): a zvol directly under the
configured parent whose OWNER mark is set on the zvol itself. A value
inherited from a parent never counts: otherwise one mark on a parent would
make every foreign zvol below it ours to destroy. Nothing else is ever
changed or destroyed.
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

# The name of the snapshot the provider's `snapshot` takes of a volume and
# clones into <vol>.snap. Only a name: what makes a snapshot an export
# snapshot is its kind (is_export_snapshot).
EXPORT_SNAPSHOT = "ganeti-export"

# volmode of every zvol we make unless VOLMODE says otherwise (config.py):
# a device node and no partition devices (/dev/zdNp1, which the host's LVM,
# md or mount would pick up). OpenZFS 2.1.11 on Linux 6.1 makes them all the
# same: tests/guest/suite/test_volume_core.py.
DEFAULT_VOLMODE = "dev"

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

    def is_export_copy(self, zfs):
        """An ext volume that is an export copy (is_export_copy); asks zfs
        for its origin's kind only when it has an origin."""
        if not (self.ours and self.origin):
            return False
        try:
            kind, source = zfs.get_with_source(self.origin, [properties.SNAPSHOT_KIND])[self.origin][
                properties.SNAPSHOT_KIND]
        except zfs_module.DoesNotExist:
            return False
        return is_export_copy(self.dataset, self.origin, is_export_snapshot(kind, source))


# -- export snapshots and copies: the one rule ---------------------------
#
# An export snapshot is a snapshot whose properties.SNAPSHOT_KIND is
# "export" set on the snapshot itself, as create_export_copy() sets it in
# the same `zfs snapshot -o` that takes it. Its name does not count: an
# admin may take a snapshot called ganeti-export (or named like an LV), and
# that one must never be ours to destroy; and an LV's snapshot keeps its kind
# when the snapshot LV is renamed. Nor does an inherited kind count (a
# snapshot inherits user properties from its volume): only "local".
#
# An export copy is a zvol that is ours (the ownership rule; the caller
# checks it), cloned from an export snapshot of a zvol beside it (same
# parent). It is told by its origin, never by its name: a volume may well
# be called "x.snap", and the daily job must still snapshot it. A clone a
# user made of our export snapshot carries no mark of its own, so it is not
# ours: remove refuses while it depends on the volume.


def is_export_snapshot(kind, source):
    """The snapshot's SNAPSHOT_KIND value and its source (`zfs get`) make it ours, for an export."""
    return kind == properties.SNAPSHOT_KIND_EXPORT and source == "local"


def is_export_copy(dataset, origin, origin_is_export_snapshot):
    """A zvol of ours at `dataset` whose `origin` is an export snapshot of a zvol beside it."""
    origin_volume = origin.partition("@")[0]
    return bool(origin) and origin_is_export_snapshot and naming.split(origin_volume)[0] == naming.split(dataset)[0]


def export_snapshots(rows):
    """Names of the export snapshots in a `zfs list` listing (name, type,
    SNAPSHOT_KIND) that has each snapshot's volume too.

    A listing shows no source; but a snapshot inherits only from its volume,
    so when the volume's own row shows no kind, the snapshot's is local.
    Where the volume shows "export" too, it cannot be told and does not count.
    """
    kinds = {row["name"]: row[properties.SNAPSHOT_KIND] for row in rows}
    return {
        row["name"]
        for row in rows
        if row["type"] == "snapshot"
        and row[properties.SNAPSHOT_KIND] == properties.SNAPSHOT_KIND_EXPORT
        and kinds.get(row["name"].partition("@")[0], properties.SNAPSHOT_KIND_EXPORT) != properties.SNAPSHOT_KIND_EXPORT
    }


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
    clones = clone_names(values["clones"][0])
    if not is_export_snapshot(*values[properties.SNAPSHOT_KIND]):
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


# -- creation: a usable device or nothing ----------------------------------


def mark_properties(owner, volmode, extra=()):
    """The properties a zvol of ours is made with: given to the zfs call that
    makes it, so there is never an unmarked zvol of ours, nor a marked one
    that is not. `extra`: further (name, value) pairs or a dict."""
    marks = dict(extra)
    marks[properties.OWNER] = owner
    marks["volmode"] = volmode
    return marks


def create(zfs, dataset, size, owner, timeout, sparse, volmode=DEFAULT_VOLMODE, blocksize=None, extra=(), then=None):
    """Create the zvol `dataset` (`size` bytes) with its marks; its verified device link.

    zfs_module.AlreadyExists goes to the caller with nothing made (something
    else is there); any other failure destroys what this call made (_make).
    `then(link)`: a further step of the creation (the LVM emulation's
    /dev/<vg>/<lv> link), undone the same way.
    """
    _make(lambda: zfs.create_volume(dataset, size, sparse=sparse, blocksize=blocksize,
                                    properties=mark_properties(owner, volmode, extra)),
          lambda: _discard(zfs, dataset, owner))
    return ready_or_discarded(zfs, dataset, owner, timeout, then)


def _make(step, undo):
    """step(), one zfs call that makes something; if it fails, undo() first.

    Not after AlreadyExists: then something else was there, and the call
    made nothing. After any other failure (a zfs killed at its timeout too)
    the dataset may have appeared all the same.
    """
    try:
        step()
    except zfs_module.AlreadyExists:
        raise
    except BaseException:
        undo()
        raise


def ready_or_discarded(zfs, dataset, owner, timeout, then=None):
    """The verified device link of the zvol just made at `dataset`, then
    `then(link)`; if either fails, the zvol is destroyed (if its mark is
    still `owner`) before the failure goes on."""
    try:
        link = wait_for_device(dataset, timeout)
    except Error as error:
        fate = "destroyed it again" if _discard(zfs, dataset, owner) else "could not destroy it (see the warning before)"
        raise Error(f"created {dataset}, but it has no usable device ({error}); {fate}") from None
    if then is not None:
        try:
            then(link)
        except BaseException:
            _discard(zfs, dataset, owner)
            raise
    return link


def _discard(zfs, dataset, owner):
    """Destroy the zvol at `dataset` if it is there with the mark `owner` set
    on it; True if it is gone. Never raises: it runs while a failure is on
    its way, which must not be hidden."""
    try:
        found = lookup(zfs, dataset)
        if found is None:
            return True
        if found.type == "volume" and found.owner == owner:
            destroy(zfs, dataset)
            return True
        log.warning(f"not cleaning up {dataset}: it is not ours ({properties.OWNER}={owner} is not set on it)")
    except Error as error:
        log.warning(f"could not clean up {dataset}: {error}")
    return False


def create_export_copy(zfs, snapshot, copy, owner, timeout, volmode=DEFAULT_VOLMODE, then=None):
    """Take the export snapshot `snapshot` (<volume>@<name>) and clone it into
    the zvol `copy` with its marks; the copy's verified device link.

    On any failure neither is left behind: the copy if it appeared (and is
    ours), and the snapshot if it is our export snapshot and nothing else is
    cloned from it. A snapshot that was already there (zfs_module.AlreadyExists
    from `zfs snapshot`) is not this call's: it is left alone.
    """
    _make(lambda: zfs.snapshot([snapshot], {properties.SNAPSHOT_KIND: properties.SNAPSHOT_KIND_EXPORT}),
          lambda: discard_export_snapshot(zfs, snapshot))
    try:
        _make(lambda: zfs.clone(snapshot, copy, mark_properties(owner, volmode)), lambda: _discard(zfs, copy, owner))
        return ready_or_discarded(zfs, copy, owner, timeout, then)
    except BaseException:
        discard_export_snapshot(zfs, snapshot)
        raise


def discard_export_snapshot(zfs, snapshot):
    """destroy_unused_export_snapshot while a failure is on its way: never raises."""
    try:
        destroy_unused_export_snapshot(zfs, snapshot)
    except Error as error:
        log.warning(f"could not clean up {snapshot}: {error}")
