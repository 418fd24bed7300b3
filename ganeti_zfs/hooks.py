"""The Ganeti pre-hook of failover and migrate: zfs ext disks stay node-local.

Ganeti treats ext disks as shared storage (DTS_EXT_MIRROR): `gnt-instance
failover` of an ext instance stops it, switches its primary node and only
then finds the disk missing on the target; `migrate` to a node holding an
old copy would run the guest on old data. This hook refuses both, before
anything changes, unless the target holds a current copy of every zfs disk
(properties.CURRENT_COPY, set only by a sanctioned move).

How Ganeti runs it (3.0.2): every executable file whose name matches
^[a-zA-Z0-9_-]+$ in /etc/ganeti/hooks/<hpath>-pre.d/ (lib/backend.py
HooksRunner.RunHooks, lib/utils/process.py RunParts, lib/constants.py
EXT_PLUGIN_MASK), hpath "instance-failover" or "instance-migrate"
(lib/cmdlib/instance_migration.py), with no arguments, cwd /, and an
environment of only PATH=/sbin:/bin:/usr/sbin:/usr/bin and GANETI_*
(lib/hooksmaster.py _RunWrapper and _BuildEnv): GANETI_INSTANCE_NAME,
GANETI_OLD_PRIMARY, GANETI_NEW_PRIMARY (node names),
GANETI_INSTANCE_DISK_COUNT and per disk GANETI_INSTANCE_DISK<i>_DEV_TYPE,
_PROVIDER and _ID (the volume name; lib/cmdlib/instance_utils.py
BuildDiskLogicalIDEnv). Pre-hooks run after the checks and before the
operation (lib/mcpu.py _ExecLU) on the master, the target and the instance's
secondaries (and, for migrate, its primary: BuildHooksNodes); a non-zero exit
on any of them aborts the job with HooksAbort, whose message shows each
failing node's output.

Who judges: only the target can see its own pool, so only there does the
hook look at zvols. Every other node (the master when it is not the target,
the primary) lets the move pass: the target runs the same hook in the same
phase, and its refusal alone aborts the job. The hook finds out whether it
runs on the target as Ganeti itself names a node (cluster.node_name), and
refuses when that name is not one of the cluster's nodes, since it could
then not tell.
"""

import collections
import os

from . import actions, cluster, env, log, properties
from .errors import Error, UsageError

# Where the package installs the hook (scripts/gen-entrypoints): one program,
# linked into the pre-hook directory of each operation.
PROGRAM = "usr/lib/ganeti-extstorage-zfs/node-local-hook"
HOOK_NAME = "zfs-node-local"
HOOKS_DIR = "etc/ganeti/hooks"
HOOK_PATHS = ("instance-failover", "instance-migrate")


def hook_links():
    """The paths (relative to /) of the hook in each operation's pre-hook directory."""
    return [f"{HOOKS_DIR}/{hpath}-pre.d/{HOOK_NAME}" for hpath in HOOK_PATHS]


# A failover or migrate as the hook's environment describes it. disks:
# ((index, volume name), ...) of its zfs ext disks only.
Move = collections.namedtuple("Move", "operation instance target disks")


def parse(environ):
    """The Move in a hook's environment; a UsageError if it is not Ganeti's."""
    count = environ.get("GANETI_INSTANCE_DISK_COUNT", "")
    if not count.isdigit():
        raise UsageError(f"GANETI_INSTANCE_DISK_COUNT is {count!r}, not a number: run only by Ganeti as a pre-hook "
                         f"of {' and '.join(HOOK_PATHS)}")
    disks = []
    for index in range(int(count)):
        prefix = f"GANETI_INSTANCE_DISK{index}_"
        if environ.get(prefix + "DEV_TYPE") == "ext" and environ.get(prefix + "PROVIDER") == actions.PROVIDER:
            disks.append((index, env.check_volume_name(environ.get(prefix + "ID", ""), prefix + "ID")))
    operation = environ.get("GANETI_HOOKS_PATH", "").removeprefix("instance-") or "move"
    return Move(operation, environ.get("GANETI_INSTANCE_NAME", "?"), environ.get("GANETI_NEW_PRIMARY", ""),
                tuple(disks))


def on_target(move, myself, nodes):
    """Whether this node (named `myself`; `nodes`: the cluster's) is the move's target."""
    if not move.target:
        raise UsageError(f"refusing {move.operation} of instance {move.instance}: GANETI_NEW_PRIMARY is not set")
    if myself not in nodes:
        raise Error(f"refusing {move.operation} of instance {move.instance} to {move.target}: cannot tell whether "
                    f"this node is the target, its name {myself!r} (socket.getfqdn(), as Ganeti names nodes) is not "
                    f"one of the cluster's nodes")
    return myself == move.target


def refusal(move, problems):
    """The one line refusing `move`, or None. problems: {disk index: why}."""
    if not problems:
        return None
    details = "; ".join(f"disk {index} (zfs volume {volume}): {problems[index]}"
                        for index, volume in move.disks if index in problems)
    return (f"refusing {move.operation} of instance {move.instance} to {move.target}: zfs volumes are node-local and "
            f"{move.target} has no current copy of {details} (a copy counts only once a move marked it current, "
            f"{properties.CURRENT_COPY}; the instance stays where it is)")


def copy_problem(zfs, dataset):
    """Why `dataset` on this node is not a current copy, or None if it is."""
    from . import zfs as zfs_module

    try:
        values = zfs.get_with_source(dataset, ("type", properties.CURRENT_COPY))[dataset]
    except zfs_module.DoesNotExist:
        return f"{dataset} does not exist here"
    kind = values["type"][0]
    if kind != "volume":
        return f"{dataset} is a {kind}, not a volume"
    mark, source = values.get(properties.CURRENT_COPY, ("-", "-"))
    if source != "local" or mark in ("", "-"):
        return f"{dataset} is not marked current ({properties.CURRENT_COPY} is not set on it)"
    # The mark names the snapshot the move made current; a write since then
    # (the copy was used, e.g. as the primary's disk) makes it stale.
    written_since = f"written@{mark}"
    try:
        written = zfs.get_with_source(dataset, (written_since,))[dataset][written_since][0]
    except (Error, KeyError) as error:
        return f"{dataset} is marked current as of its snapshot @{mark}, which cannot be read ({error})"
    if not written.isdigit():
        return f"{dataset} is marked current as of its snapshot @{mark}, which cannot be read ({written_since}={written})"
    if int(written) != 0:
        return f"{dataset} was written to after it was marked current as of its snapshot @{mark}"
    return None


def run(environ, myself=None, zfs=None):
    move = parse(environ)
    if not move.disks:
        return 0  # nothing of ours: no zfs, no config, not a word
    myself = cluster.node_name() if myself is None else myself
    try:
        nodes = cluster.node_names(environ.get("GANETI_DATA_DIR"))
    except Error as error:
        raise Error(f"refusing {move.operation} of instance {move.instance} to {move.target or '?'}: {error}")
    if not on_target(move, myself, nodes):
        return 0  # the target judges its own pool (module docstring)
    from . import config
    from . import zfs as zfs_module

    try:
        cfg = config.load(environ=environ)
        zfs = zfs or zfs_module.Zfs(timeout=cfg.zfs_timeout)
        problems = {}
        for index, volume in move.disks:
            problem = copy_problem(zfs, cfg.dataset(volume))
            if problem:
                problems[index] = problem
    except Error as error:
        raise Error(f"refusing {move.operation} of instance {move.instance} to {move.target}: "
                    f"cannot check its zfs disks here: {error}")
    line = refusal(move, problems)
    if line:
        raise Error(line)
    return 0


def main(environ=None):
    """The hook program; its exit status. A refusal is one line (Ganeti shows it)."""
    environ = os.environ if environ is None else environ
    log.set_prefix(f"ganeti-zfs {HOOK_NAME} hook")
    return log.run_reporting_errors(lambda: run(environ))
