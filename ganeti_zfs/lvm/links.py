"""/dev/<vg>/<lv>: the path Ganeti, DRBD and KVM use for every LV.

Our udev rule makes the link whenever a zvol under LVM_PARENT appears (also
at boot); the commands that create, activate or rename an LV make sure of
it themselves too, because zvol device nodes appear asynchronously after
`zfs create` and udev may be slow or the rule missing.
"""

import os

from .. import naming, volume
from . import state


def ensure(vg, lv, dataset, timeout):
    """Make /dev/<vg>/<lv> a symlink to the zvol's device node (atomically).

    The device is the one that names `dataset` itself (volume.wait_for_device,
    BLKZNAME): after a rename udev moves /dev/zvol links asynchronously, and
    DRBD's replace-disks attaches /dev/<vg>/<lv> right after its lvrenames;
    a link taken from a stale /dev/zvol link would lead to the old zvol.
    """
    device = os.path.realpath(volume.wait_for_device(dataset, timeout))
    link = naming.lv_path(vg, lv)
    if state.block_device(link) == state.block_device(device):
        return link
    os.makedirs(os.path.dirname(link), exist_ok=True)
    temporary = f"{link}.ganeti-zfs-{os.getpid()}"
    os.symlink(os.path.relpath(device, os.path.dirname(link)), temporary)
    os.replace(temporary, link)
    return link


def remove(vg, lv):
    """Remove /dev/<vg>/<lv> (and /dev/<vg> when it is empty)."""
    link = naming.lv_path(vg, lv)
    if os.path.islink(link):
        os.unlink(link)
    try:
        os.rmdir(os.path.dirname(link))
    except OSError:
        pass  # other LVs still there
