"""`ganeti-zfs adopt SNAPSHOT NAME`: a snapshot's data as a new LV for Ganeti to adopt.

The original tool's bin/adopt without its menu: the admin names the snapshot.
`zfs send SNAPSHOT | zfs receive -u` makes a full copy (not a clone: it
depends on nothing and nothing depends on it), directly under LVM_PARENT;
the received snapshot is destroyed, so the new zvol has no snapshots and no
origin. It is received with the volmode of every new zvol (VOLMODE), then
marked and linked as lvcreate does (volume.ready_or_discarded), thick like every LV
of the emulation (refreservation=auto: the VG's free space, which Ganeti
checks before it creates or grows a disk, stays true), and
`gnt-instance add -t plain --disk 0:adopt=NAME` takes it over.
"""

import argparse
import uuid

from . import lock, properties, volume
from . import zfs as zfs_module
from .errors import Error, UsageError
from .lvm import commands, report

# The new zvol's owner while it is being made: not "lvm", so lvs, Ganeti,
# udev and the snapshot job do not take it for an LV yet; and unique to the
# run, so that after a failure only this run's own copy is ever destroyed.
COPYING_OWNER_PREFIX = "adopt-unfinished-"


def positive_seconds(text):
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return seconds


def add_arguments(parser):
    parser.add_argument("snapshot", metavar="SNAPSHOT", help="the snapshot of a zvol to copy (pool/volume@snapshot)")
    parser.add_argument("name", metavar="NAME", help="the new LV's name in the emulated VG (LVM_VG)")
    parser.add_argument("--timeout", type=positive_seconds, metavar="SECONDS",
                        help="seconds the copy may take (default: ZFS_TIMEOUT)")
    parser.add_argument("--dry-run", action="store_true", help="check everything and say what would be copied; change nothing")


def split_snapshot(snapshot):
    """(volume, snapshot name) of `pool/volume@snapshot`."""
    volume, at, name = snapshot.partition("@")
    if not volume or not at or not name or "@" in name:
        raise UsageError(f"{snapshot!r} is not a snapshot name (pool/volume@snapshot)")
    return volume, name


def run(args, cfg, zfs):
    if not cfg.lvm_vg:
        raise Error(f"the LVM emulation is off (LVM_VG is not set in {cfg.path}): there is no VG to adopt from")
    vg = cfg.lvm_vg
    name = commands.check_lv_name(args.name, vg)
    source, _snapshot_name = split_snapshot(args.snapshot)
    emulation = commands.Emulation(cfg, zfs)
    target = emulation.dataset(name)
    if args.dry_run:
        size = _check(zfs, emulation, args.snapshot, source, target)
        print(f"would copy {args.snapshot} ({size // report.MIB} MiB) to {target}, the LV {vg}/{name}")
        return 0
    with lock.shared():
        size = _check(zfs, emulation, args.snapshot, source, target)
        _copy(zfs, emulation, args.snapshot, target, args.timeout)
        # As lvcreate makes an LV: a usable device and /dev/<vg>/<lv>, or nothing.
        volume.ready_or_discarded(zfs, target, properties.OWNER_LVM, cfg.attach_timeout, then=emulation.link_step(name))
    print(f"created the LV {vg}/{name} ({size // report.MIB} MiB, {target}), a copy of {args.snapshot}")
    print("adopt it as an instance's disk, with this node as the primary node:")
    print(f"  gnt-instance add -t plain --disk 0:adopt={name},vg={vg} -n NODE -o OS INSTANCE")
    return 0


def _check(zfs, emulation, snapshot, volume, target):
    """Refuse what cannot be adopted; the snapshot's size in bytes."""
    current = emulation.read()
    if not current.vg.allocatable:
        raise Error(f"the emulated PV {emulation.pv_name} is not allocatable (pvchange -x y)")
    try:
        rows = zfs.list([volume, snapshot], ["name", "type", "volsize"], types=("all",))
    except zfs_module.DoesNotExist:
        raise Error(f"snapshot {snapshot} does not exist")
    found = {row["name"]: row for row in rows}
    if found[volume]["type"] != "volume":
        raise Error(f"{snapshot} is a snapshot of a {found[volume]['type']}, not of a zvol")
    if zfs.exists(target):
        raise Error(f"{target} already exists: choose another NAME")
    return int(found[snapshot]["volsize"])


def _copy(zfs, emulation, snapshot, target, timeout):
    """Make `target` a thick, snapshot-free copy of `snapshot`, owned by the emulation; or make nothing."""
    copying_owner = COPYING_OWNER_PREFIX + uuid.uuid4().hex
    _undoing(
        lambda: zfs.send_receive(snapshot, target, volume.mark_properties(copying_owner, emulation.cfg.volmode),
                                 timeout=timeout),
        lambda: _discard_unfinished(zfs, emulation, target, copying_owner),
    )

    def finish():
        zfs.destroy(f"{target}@{split_snapshot(snapshot)[1]}")
        zfs.set(target, {"refreservation": "auto"})
        # Last, in a call of its own: from here on it is an LV.
        zfs.set(target, {properties.OWNER: properties.OWNER_LVM})

    _undoing(finish, lambda: volume.destroy(zfs, target))


def _discard_unfinished(zfs, emulation, target, copying_owner):
    """Destroy what a failed receive left at `target`, if this run made it.

    zfs itself normally removes a partial receive; a dataset there with
    another owner is someone else's (the receive failed because it exists).
    """
    try:
        owner = zfs.get(target, [properties.OWNER])[properties.OWNER]
    except zfs_module.DoesNotExist:
        return
    if owner == copying_owner:
        volume.destroy(zfs, target)


def _undoing(step, undo):
    """step(); if it fails (Ctrl-C too), undo() before the failure goes on."""
    try:
        step()
    except BaseException as error:
        try:
            undo()
        except Exception as undo_error:
            raise Error(f"{error}; removing the unfinished copy failed too: {undo_error}") from error
        raise
