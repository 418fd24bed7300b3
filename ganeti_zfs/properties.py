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
OPEN = "ganeti-zfs:open"  # exclusive or closed (a shared open is refused)
# On a copy of an ext disk on another node than its instance's primary: the
# short name of its snapshot that a sanctioned move (`ganeti-zfs move`,
# move.py: zfs send of the stopped instance's disk) made current, set
# locally with `zfs set`.
# The failover/migrate pre-hook (hooks.py) lets an instance move to a node
# only if every zfs disk there has it, that snapshot exists and the zvol has
# not been written since (written@<snapshot> is 0). Nothing else sets it.
CURRENT_COPY = "ganeti-zfs:current-copy"
# On a copy a move (move.py) is receiving, until Ganeti's failover made it
# the instance's disk: that move's token (<source node>:<start time>). A move
# that fails destroys only what carries its own token.
INCOMING = "ganeti-zfs:incoming"
# On a source copy a move retired (renamed <volume>.moved-<time>, OWNER
# removed): the UTC time (move.TIME_FORMAT) after which the daily job
# destroys it (move.expire_retired).
RETIRED_UNTIL = "ganeti-zfs:retired-until"
LV_TAGS = "ganeti-zfs:lvtags"  # LVM tags of an emulated LV, comma-separated
# On LVM_PARENT: "no" after `pvchange --allocatable n` of the emulated PV.
PV_ALLOCATABLE = "ganeti-zfs:pv-allocatable"

# On snapshots: which kind we took. Every value is here.
SNAPSHOT_KIND = "ganeti-zfs:snapshot"
# The scheduled job's (weekly and monthly are roles retention derives from
# SNAPSHOT_DATE).
SNAPSHOT_KIND_DAILY = "daily"
# The provider's snapshot action and lvcreate -s: a snapshot only a clone
# (an export copy or a snapshot LV) is made of; the job never takes it as one of its own.
SNAPSHOT_KIND_EXPORT = "export"
# The snapshots a move (move.py) sends: @ganeti-move-<round>.
SNAPSHOT_KIND_MOVE = "move"
# A daily snapshot of the original shell tool, taken over on upgrade
# (upgrade.py). Never pruned; it counts for freshness.
SNAPSHOT_KIND_ORIGINAL = "original"
# On scheduled snapshots: the UTC day (YYYY-MM-DD) of the run that took them.
# Retention and "already done today" go by it, not by the name (whose format
# an admin may change) nor by `creation` (tests move the job's clock).
SNAPSHOT_DATE = "ganeti-zfs:snapshot-date"
# On a volume: "false" opts it out of scheduled snapshots. The second name is
# the one zfs-auto-snapshot and sanoid users already set.
AUTO_SNAPSHOT = "ganeti-zfs:auto-snapshot"
AUTO_SNAPSHOT_COMPAT = "com.sun:auto-snapshot"
