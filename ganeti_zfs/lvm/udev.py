"""`python3 -m ganeti_zfs.lvm.udev <dataset>`: the /dev name udev gives an emulated LV.

Called by our udev rule for every zvol (also at boot) with the dataset name
zvol_id found. Prints "<vg>/<lv>" (udev then adds the /dev/<vg>/<lv>
symlink) when the zvol is an LV of the emulated VG; prints nothing and exits
1 otherwise, so the rule does not match.
"""

import sys

from .. import config, properties, volume
from .. import zfs as zfs_module
from ..errors import Error


def link_name(dataset, vg, lvm_parent):
    """"<vg>/<lv>" for a dataset directly under LVM_PARENT, else None."""
    parent, _slash, lv = dataset.rpartition("/")
    if not vg or parent != lvm_parent or not lv or "@" in lv:
        return None
    return f"{vg}/{lv}"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python3 -m ganeti_zfs.lvm.udev <dataset>", file=sys.stderr)
        return 2
    try:
        cfg = config.load()
        name = link_name(argv[0], cfg.lvm_vg, cfg.lvm_parent if cfg.lvm_vg else "")
        # Ext volumes may share the dataset (LVM_PARENT == ZFS_PARENT) and
        # foreign zvols may sit there: only LVs by the ownership rule get a link.
        found = volume.lookup(zfs_module.Zfs(timeout=10), argv[0]) if name else None
        if found is not None and found.type == "volume" and found.owner == properties.OWNER_LVM:
            print(name)
            return 0
    except Error as error:
        print(f"ganeti-zfs udev: {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
