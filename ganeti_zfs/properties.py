"""Names of the ZFS user properties we set.

A volume carries OWNER so that we never touch a dataset we did not make:
remove, grow and the snapshot job act only on datasets with it.
"""

OWNER = "ganeti-zfs:owner"  # "ext" (provider volume) or "lvm" (emulated LV)
OWNER_EXT = "ext"
OWNER_LVM = "lvm"

UUID = "ganeti-zfs:uuid"  # VOL_UUID
CNAME = "ganeti-zfs:cname"  # VOL_CNAME
METADATA = "ganeti-zfs:metadata"  # VOL_METADATA as Ganeti sent it
# The original tool's helper `list` showed this property; keep its name.
ORIGINSTNAME = "ganeti:originstname"
OPEN = "ganeti-zfs:open"  # exclusive, shared or closed
LV_TAGS = "ganeti-zfs:lvtags"  # LVM tags of an emulated LV, comma-separated

# On snapshots: which kind we took (daily, weekly, monthly, export).
SNAPSHOT_KIND = "ganeti-zfs:snapshot"
# On a volume: "false" opts it out of scheduled snapshots. The second name is
# the one zfs-auto-snapshot and sanoid users already set.
AUTO_SNAPSHOT = "ganeti-zfs:auto-snapshot"
AUTO_SNAPSHOT_COMPAT = "com.sun:auto-snapshot"
