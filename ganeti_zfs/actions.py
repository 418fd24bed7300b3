"""The one list of ExtStorage actions.

scripts/gen-entrypoints turns it into the executables in
/usr/share/ganeti/extstorage/zfs/, and ganeti_zfs.provider dispatches on
it. Ganeti requires create attach detach remove grow setinfo verify; it
calls snapshot, open and close when they exist (docs/ganeti-contract.md 1.1).
"""

import collections

# The provider's name: its directory under /usr/share/ganeti/extstorage/, and
# what an ext disk's provider= (logical_id[0]) says.
PROVIDER = "zfs"

Action = collections.namedtuple("Action", "name summary")

ACTIONS = (
    Action("create", "create the zvol VOL_NAME of VOL_SIZE MiB"),
    Action("attach", "print the zvol's block device path"),
    Action("detach", "nothing to undo for a local zvol; always succeeds"),
    Action("remove", "destroy the zvol and its own snapshots"),
    Action("grow", "grow the zvol to VOL_NEW_SIZE MiB"),
    Action("setinfo", "store VOL_METADATA as ZFS user properties"),
    Action("verify", "check the configuration, the parent dataset and the pool"),
    Action("snapshot", "make VOL_SNAPSHOT_NAME an attachable copy of the zvol (for gnt-backup export)"),
    Action("open", "record that the zvol is open; refuse VOL_OPEN_EXCLUSIVE=False (shared access, "
           "only for live migration, which node-local zvols cannot do)"),
    Action("close", "record that the zvol is closed"),
)

ACTION_NAMES = tuple(action.name for action in ACTIONS)
