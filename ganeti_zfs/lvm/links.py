"""/dev/<vg>/<lv>: the path Ganeti, DRBD and KVM use for every LV.

Our udev rule makes the link whenever a zvol under LVM_PARENT appears (also
at boot); the commands that create, activate or rename an LV make sure of
it themselves too, because zvol device nodes appear asynchronously after
`zfs create` and udev may be slow or the rule missing.
"""

import os
import time

from .. import volume
from ..errors import Error
from . import state


class DeviceTimeout(Error):
    pass


def wait_for_zvol(dataset, timeout):
    """The zvol's device node (e.g. /dev/zd16) once it exists."""
    path = state.zvol_path(dataset)
    deadline = time.monotonic() + timeout
    settled = False
    while state.block_device(path) is None:
        if time.monotonic() >= deadline:
            raise DeviceTimeout(f"device {path} did not appear within {timeout:g} s")
        if not settled:
            volume.udev_settle(timeout)
            settled = True
            continue
        time.sleep(0.1)
    return os.path.realpath(path)


def ensure(vg, lv, dataset, timeout):
    """Make /dev/<vg>/<lv> a symlink to the zvol's device node (atomically)."""
    device = wait_for_zvol(dataset, timeout)
    link = state.lv_path(vg, lv)
    if state.block_device(link) == state.block_device(device):
        return link
    os.makedirs(os.path.dirname(link), exist_ok=True)
    temporary = f"{link}.ganeti-zfs-{os.getpid()}"
    os.symlink(os.path.relpath(device, os.path.dirname(link)), temporary)
    os.replace(temporary, link)
    return link


def remove(vg, lv):
    """Remove /dev/<vg>/<lv> (and /dev/<vg> when it is empty)."""
    link = state.lv_path(vg, lv)
    if os.path.islink(link):
        os.unlink(link)
    try:
        os.rmdir(os.path.dirname(link))
    except OSError:
        pass  # other LVs still there
