"""The emulated VG as it is now: one `zfs list` plus /dev, /sys and /proc.

Listings must stay at one zfs process however many LVs there are, so
everything a report needs comes from one Zfs.list call; device state is
read from the kernel's files, never from another process.
"""

import collections
import os
import stat

from .. import naming, properties, volume
from ..errors import Error
from . import decide, report

ZFS_FIELDS = [
    "name",
    "type",
    "guid",
    "volsize",
    "used",
    "available",
    "origin",
    properties.OWNER,
    properties.LV_TAGS,
    properties.PV_ALLOCATABLE,
]


class NotFound(Error):
    pass


# Named tuples, not dataclasses, for start-up time (see env.Request).
# Volume: an emulated LV, a zvol directly under LVM_PARENT with OWNER=lvm;
# size in bytes; origin_snapshot: the `origin` property, "<dataset>@<snap>"
# for clones, else "".
class Volume(collections.namedtuple("Volume", "name dataset size guid tags origin_snapshot")):
    __slots__ = ()


# volumes: LV name -> Volume; None when the LVs were not listed (read(lvs=False)).
class State(collections.namedtuple("State", "vg volumes parent")):
    __slots__ = ()

    def origin_lv(self, volume):
        """The LV a snapshot LV was taken of, or "" for an ordinary LV."""
        dataset, _at, _snap = volume.origin_snapshot.partition("@")
        lv = dataset[len(self.parent) + 1:] if dataset.startswith(self.parent + "/") else ""
        return lv if lv in self.volumes else ""

    def snapshot_lvs(self, name):
        """The LVs that are clones of a snapshot of LV `name`."""
        return [v for v in self.volumes.values() if self.origin_lv(v) == name]

    def get(self, name):
        try:
            return self.volumes[name]
        except KeyError:
            raise NotFound(f'Failed to find logical volume "{self.vg.name}/{name}"')


def read(zfs, vg_name, lvm_parent, lvs=True):
    """The State of the emulated VG, from exactly one zfs process.

    With lvs=False (a vgs or pvs report that report.needs_lvs says can do
    without) only the parent dataset is listed, not every LV: the State has
    no volumes and the VG's LV counts are None.
    """
    rows = zfs.list([lvm_parent], ZFS_FIELDS, types=("filesystem", "volume"), depth=1 if lvs else 0)
    parent = next(row for row in rows if row["name"] == lvm_parent)
    vg = report.VG(
        name=vg_name,
        guid=parent["guid"],
        size=int(parent["used"]) + int(parent["available"]),
        free=int(parent["available"]),
        lv_count=None,
        snap_count=None,
        pv_name=decide.pv_name(lvm_parent),
        allocatable=parent[properties.PV_ALLOCATABLE] != "no",
    )
    if not lvs:
        return State(vg, None, lvm_parent)
    volumes = {}
    owners = volume.owners(zfs, lvm_parent, rows)
    for row in rows:
        name = row["name"]
        if owners.get(name) != properties.OWNER_LVM:
            continue  # ext-provider volumes and foreign zvols are not LVs
        lv = naming.split(name)[1]
        tags = row[properties.LV_TAGS]
        volumes[lv] = Volume(
            name=lv,
            dataset=name,
            size=int(row["volsize"]),
            guid=row["guid"],
            tags=tuple(tag for tag in tags.split(",") if tag) if tags != "-" else (),
            origin_snapshot="" if row["origin"] == "-" else row["origin"],
        )
    state = State(vg, volumes, lvm_parent)
    snapshots = sum(1 for volume in volumes.values() if state.origin_lv(volume))
    return state._replace(vg=vg._replace(lv_count=len(volumes) - snapshots, snap_count=snapshots))


# -- device state -----------------------------------------------------------




def block_device(path):
    """st_rdev of `path` (symlinks followed) if it is a block device, else None."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_rdev if stat.S_ISBLK(info.st_mode) else None


class OpenDevices:
    """Which block devices are in use, as the kernel shows it, read once per command.

    lvm2's 'o' is device-mapper's open count; the kernel keeps none for a
    zvol that sysfs shows. What it does show, and what counts here: a
    process's open files (/proc/<pid>/fd: KVM, dd), a driver holding the
    device (/sys/dev/block/M:m/holders: device-mapper, md, and DRBD, whose
    attach links its backing devices there: drivers/block/drbd/drbd_nl.c,
    open_backing_dev), a mount (mountinfo), swap (/proc/swaps) and a loop
    device backed by it (/sys/block/loopN/loop/backing_file).

    Nothing here opens a device: even a moment's exclusive open makes a
    concurrent exclusive one (drbdsetup attach, mkfs, KVM) fail with EBUSY.
    """

    def __init__(self, proc="/proc", sys_block="/sys/dev/block", sys_class_block="/sys/class/block"):
        self.proc = proc
        self.sys_block = sys_block
        self.sys_class_block = sys_class_block
        self._paths = None
        self._mounted = None

    def _scan(self):
        """The device paths the kernel names as open (fds, swap, loop backing), and the mounted numbers."""
        paths = set()
        for pid in os.listdir(self.proc):
            if not pid.isdigit():
                continue
            fd_dir = os.path.join(self.proc, pid, "fd")
            try:
                fds = os.listdir(fd_dir)
            except OSError:
                continue  # the process ended, or we may not look
            for fd in fds:
                try:
                    target = os.readlink(os.path.join(fd_dir, fd))
                except OSError:
                    continue
                if target.startswith("/dev/"):
                    paths.add(target)
        paths.update(line.split()[0] for line in _lines(os.path.join(self.proc, "swaps"))[1:] if line.strip())
        try:
            devices = os.listdir(self.sys_class_block)
        except OSError:
            devices = []
        for device in devices:
            if device.startswith("loop"):
                # The kernel's own path of the file the loop device opened.
                paths.update(line.strip() for line in _lines(os.path.join(self.sys_class_block, device, "loop", "backing_file")))
        mounted = {line.split()[2] for line in _lines(os.path.join(self.proc, "self", "mountinfo")) if line.strip()}
        # Every one of these paths is the kernel's (d_path), symlinks already resolved.
        self._paths, self._mounted = paths, mounted

    def is_open(self, device_path, rdev):
        if self._paths is None:
            self._scan()
        number = f"{os.major(rdev)}:{os.minor(rdev)}"
        if os.path.realpath(device_path) in self._paths or number in self._mounted:
            return True
        try:
            return bool(os.listdir(os.path.join(self.sys_block, number, "holders")))
        except OSError:
            return False


def _lines(path):
    """The lines of a kernel file, none when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.readlines()
    except OSError:
        return []


def report_lvs(state, names=None, open_devices=None):
    """report.LV rows for the LVs `names` (all when None), with live device state."""
    open_devices = open_devices or OpenDevices()
    origins = {state.origin_lv(volume) for volume in state.volumes.values()}
    rows = []
    for name in sorted(state.volumes) if names is None else names:
        volume = state.get(name)
        zvol_rdev = block_device(naming.device_link(volume.dataset))
        link_rdev = block_device(naming.lv_path(state.vg.name, name))
        active = zvol_rdev is not None and link_rdev == zvol_rdev
        rows.append(
            report.LV(
                name=name,
                guid=volume.guid,
                size=volume.size,
                active=active,
                open=active and open_devices.is_open(naming.device_link(volume.dataset), zvol_rdev),
                kernel_major=os.major(zvol_rdev) if active else -1,
                kernel_minor=os.minor(zvol_rdev) if active else -1,
                tags=volume.tags,
                origin=state.origin_lv(volume),
                has_snapshots=name in origins,
            )
        )
    return rows
