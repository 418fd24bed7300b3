"""The `zfs` ExtStorage provider: one small function per action.

Each action takes (request, config, zfs) and reads nothing else; main()
wires in the environment, the config and the zfs runner, which is what the
generated entrypoints in /usr/share/ganeti/extstorage/zfs/ call. What Ganeti
expects of each action: docs/ganeti-contract.md, sections 1.4 and 5.1.
"""

import os

from . import actions, config, env, lock, log, naming, properties, volume
from . import zfs as zfs_module
from .errors import ConfigError, Error, UsageError
from .volume import MIB

# The export copy Ganeti asks for: VOL_SNAPSHOT_NAME = VOL_NAME + this.
SNAPSHOT_SUFFIX = ".snap"


def create(request, cfg, zfs):
    size = request.require_size() * MIB
    # Validate every ext-param before touching anything.
    volume_options = cfg.volume_options.with_overrides(request.ext_params)
    dataset = cfg.dataset(request.vol_name)
    with lock.shared():
        existing = volume.lookup(zfs, dataset)
        if existing is not None:
            return _created_before(existing, size)
        _check_capacity(zfs, cfg, size)
        marks = {}
        if request.uuid:
            marks[properties.UUID] = request.uuid
        if request.cname:
            marks[properties.CNAME] = request.cname
        marks.update(volume_options.properties)
        # A usable device or nothing (volume.create): Ganeti attaches right
        # after create, and when that attach fails it never calls remove.
        try:
            volume.create(
                zfs, dataset, size, properties.OWNER_EXT, cfg.attach_timeout, sparse=volume_options.sparse,
                volmode=cfg.volmode, blocksize=volume_options.volblocksize, extra=marks,
            )
        except zfs_module.AlreadyExists:
            # A concurrent create of the same volume won the race.
            return _created_before(volume.existing(zfs, dataset), size)


def _created_before(existing, size):
    """Re-running create (gnt-instance recreate-disks) is fine if nothing differs."""
    existing.require_ours("reuse")
    if existing.volsize != size:
        raise Error(
            f"{existing.dataset} already exists with {existing.volsize // MIB} MiB, "
            f"not the requested {size // MIB} MiB"
        )
    log.info(f"{existing.dataset} already exists with the requested size; nothing to do")


def _require_parent(zfs, cfg, fields=("name",)):
    """The parent dataset's `fields`; a clear error if it does not exist."""
    try:
        return zfs.list([cfg.parent], list(fields), types=("filesystem",))[0]
    except zfs_module.DoesNotExist:
        raise ConfigError(f"the parent dataset {cfg.parent} (ZFS_PARENT in {cfg.path}) does not exist")


def _check_capacity(zfs, cfg, size):
    """Refuse a size the parent can never hold, even for a sparse zvol."""
    parent = _require_parent(zfs, cfg, ("name", "used", "available"))
    capacity = int(parent["used"]) + int(parent["available"])
    if size > capacity:
        raise UsageError(
            f"VOL_SIZE {size // MIB} MiB is larger than {cfg.parent} can ever hold "
            f"({capacity // MIB} MiB used + available)"
        )


def attach(request, cfg, zfs):
    """The verified device path (main prints it).

    Usually without any zfs process: when /dev/zvol/<dataset> leads to a zvol
    that names itself <dataset> (BLKZNAME), the volume exists and that is its
    device. Only otherwise (just created, udev still busy, gone) is zfs asked,
    once, to tell a missing volume from a device that is not there yet.
    """
    dataset = cfg.dataset(request.vol_name)
    link = naming.device_link(dataset)
    if volume.device_problem(link, dataset) is None:
        return link
    try:
        zfs.list([dataset], ["name", "volsize", properties.OWNER], types=("volume",))
    except zfs_module.DoesNotExist:
        raise Error(f"volume {dataset} does not exist")
    return volume.wait_for_device(dataset, cfg.attach_timeout)


def detach(request, cfg, zfs):
    """A local zvol needs no undoing; main() does not even load anything for it."""


def remove(request, cfg, zfs):
    dataset = cfg.dataset(request.vol_name)
    with lock.shared():
        found = volume.lookup(zfs, dataset)
        if found is None:
            # Gone is success, but not when the config points nowhere: that
            # would hide a leaked volume.
            _require_parent(zfs, cfg)
            log.info(f"{dataset} does not exist; nothing to remove")
            return
        found.require_ours("remove")
        export_copies = _export_copies_or_refuse(zfs, cfg, found)
        for copy in export_copies:
            volume.destroy(zfs, copy, force=cfg.destroy_force)
        # -r: its own snapshots go with it, never -R; -f if DESTROY_OPTIONS says so.
        volume.destroy(zfs, dataset, force=cfg.destroy_force)
        if found.is_export_copy(zfs):
            volume.destroy_unused_export_snapshot(zfs, found.origin)


def _export_copies_or_refuse(zfs, cfg, found):
    """The volume's export copies (volume.is_export_copy); refuse if anything else depends on it."""
    snapshots = zfs.get_with_source(found.dataset, [properties.SNAPSHOT_KIND, "clones"], types=("snapshot",), depth=1)
    export_copies, dependents = [], []
    for name, values in sorted(snapshots.items()):
        is_export = volume.is_export_snapshot(*values[properties.SNAPSHOT_KIND])
        for clone in volume.clone_names(values["clones"][0]):
            copy = volume.lookup(zfs, clone) if is_export else None
            if copy is not None and copy.ours and volume.is_export_copy(clone, name, is_export):
                export_copies.append(clone)
            else:
                dependents.append(clone)
    if dependents:
        raise Error(
            f"refusing to remove {found.dataset}: these datasets are clones of its snapshots "
            f"and depend on it: {', '.join(dependents)}"
        )
    return export_copies


def grow(request, cfg, zfs):
    if request.new_size_mib is None:
        raise UsageError("VOL_NEW_SIZE is not set")
    new_size = request.new_size_mib * MIB
    found = volume.existing(zfs, cfg.dataset(request.vol_name))
    found.require_ours("grow")
    if new_size < found.volsize:
        raise UsageError(
            f"VOL_NEW_SIZE {request.new_size_mib} MiB is smaller than the current "
            f"{found.volsize // MIB} MiB; a zvol is never shrunk"
        )
    if new_size == found.volsize:
        log.info(f"{found.dataset} already has {request.new_size_mib} MiB; nothing to do")
        return
    changes = {"volsize": new_size}
    if found.refreservation:
        # A thick zvol keeps its full reservation. ZFS moves refreservation
        # along with volsize only if it still equals the automatic value,
        # so say so explicitly.
        changes["refreservation"] = "auto"
    zfs.set(found.dataset, changes)


def setinfo(request, cfg, zfs):
    if not request.metadata:
        raise UsageError("VOL_METADATA is not set")
    changes = {properties.METADATA: request.metadata}
    instance = request.metadata.partition("originstname+")[2]
    if request.metadata.startswith("originstname+") and instance:
        changes[properties.ORIGINSTNAME] = instance
    _record(zfs, cfg, request, changes)


def open_volume(request, cfg, zfs):
    # Only live migration asks for a shared open, on the source and then the
    # target (lib/cmdlib/instance_migration.py _ExecMigration; lib/backend.py
    # BlockdevOpen), before the target accepts the instance. A zvol exists on
    # one node only, so the target's is missing or a stale copy the guest
    # would go on running on: refusing here ends the migration while the
    # instance still runs on the source, untouched.
    if request.open_exclusive is False:
        raise UsageError(
            "zfs volumes are node-local: VOL_OPEN_EXCLUSIVE=False (shared access) is asked for only by live "
            "migration, and live migration is not possible; the instance keeps running where it is "
            "(use the drbd template for disks that must move between nodes)"
        )
    _record(zfs, cfg, request, {properties.OPEN: "exclusive"})


def close(request, cfg, zfs):
    _record(zfs, cfg, request, {properties.OPEN: "closed"})


def _record(zfs, cfg, request, changes):
    """Set our bookkeeping properties; a volume we did not create is left alone.

    Volumes made by the original shell tool have no OWNER mark; failing
    open/setinfo for them would stop their instances from starting.
    """
    found = volume.existing(zfs, cfg.dataset(request.vol_name))
    if not found.ours:
        log.warning(f"{found.dataset} was not created by ganeti-zfs; not recording {', '.join(changes)} on it")
        return
    zfs.set(found.dataset, changes)


def snapshot(request, cfg, zfs):
    """Make VOL_SNAPSHOT_NAME a clone of a fresh snapshot, for gnt-backup export."""
    if not request.snapshot_name:
        raise UsageError("VOL_SNAPSHOT_NAME is not set")
    if request.snapshot_name == request.vol_name:
        raise UsageError("VOL_SNAPSHOT_NAME is the volume itself")
    # Ganeti always sends <VOL_NAME>.snap (ganeti-contract.md 1.4, snapshot).
    # Any other name could be another volume's export copy, which the
    # leftover clean-up below would replace.
    expected = f"{request.vol_name}{SNAPSHOT_SUFFIX}"
    if request.snapshot_name != expected:
        raise UsageError(
            f"VOL_SNAPSHOT_NAME {request.snapshot_name!r} is not {expected!r}, the name Ganeti derives from VOL_NAME; "
            "refusing (it could be another volume's export copy)"
        )
    origin = cfg.dataset(request.vol_name)
    target = cfg.dataset(request.snapshot_name)
    export_snapshot = f"{origin}@{volume.EXPORT_SNAPSHOT}"
    with lock.shared():
        found = volume.existing(zfs, origin)
        if found.type != "volume":
            raise Error(f"{origin} is a {found.type}, not a volume")
        previous = volume.lookup(zfs, target)
        if previous is not None:
            # An export that ended without removing its copy; Ganeti's LVM
            # code replaces a leftover snapshot too.
            if not previous.is_export_copy(zfs):
                raise Error(f"{target} already exists and is not an export copy made by ganeti-zfs; not replacing it")
            log.info(f"replacing the leftover export copy {target}")
            volume.destroy(zfs, target)
            if previous.origin != export_snapshot:
                volume.destroy_unused_export_snapshot(zfs, previous.origin)
        # Also one left without its copy by an interrupted run.
        volume.destroy_unused_export_snapshot(zfs, export_snapshot)
        volume.create_export_copy(zfs, export_snapshot, target, properties.OWNER_EXT, cfg.attach_timeout,
                                  volmode=cfg.volmode)


def verify(request, cfg, zfs):
    """Check the node: config (already loaded), ext-params, parent, pool."""
    cfg.volume_options.with_overrides(request.ext_params)
    return check_node(cfg, zfs)


def check_node(cfg, zfs):
    """The parent dataset exists and its pool is usable; a summary line.

    Also what `ganeti-zfs verify` runs. A DEGRADED pool still works, so it
    is a warning, not a failure.
    """
    _require_parent(zfs, cfg)
    pool = cfg.parent.split("/")[0]
    health = zfs.pool(pool, ["name", "health"])["health"]
    if health == "DEGRADED":
        log.warning(f"pool {pool} is DEGRADED; volumes still work, but replace the failed device")
    elif health != "ONLINE":
        raise Error(f"pool {pool} is {health}")
    return f"ok: parent dataset {cfg.parent} exists, pool {pool} is {health}"


ACTION_FUNCTIONS = {
    "create": create,
    "attach": attach,
    "detach": detach,
    "remove": remove,
    "grow": grow,
    "setinfo": setinfo,
    "verify": verify,
    "snapshot": snapshot,
    "open": open_volume,
    "close": close,
}
assert set(ACTION_FUNCTIONS) == set(actions.ACTION_NAMES), "actions.py and provider.py disagree"


def main(action_name, environ=None):
    """Run one action as Ganeti does; the exit status for sys.exit()."""
    environ = os.environ if environ is None else environ
    log.set_prefix(f"ganeti-zfs {action_name} {env.volume_label(environ)}")
    return log.run_reporting_errors(lambda: _run(action_name, environ))


# The actions that keep working on a config with an unknown key (a typo, a
# newer version's setting), with a warning: if attach failed, Ganeti could
# not start instances and would skip remove (the volume would leak), and
# open/close run at every start. detach loads no config at all. Everything
# else refuses such a file.
LENIENT_ACTIONS = ("attach", "open", "close")


def _run(action_name, environ):
    function = ACTION_FUNCTIONS.get(action_name)
    if function is None:
        raise UsageError(f"unknown action {action_name!r}")
    if action_name == "detach":
        # Must succeed even when the config or zfs is broken, or Ganeti
        # could not shut an instance down.
        return 0
    request = env.parse(environ, volume_required=action_name != "verify")
    ignored = [] if action_name in LENIENT_ACTIONS else None
    cfg = config.load(environ=environ, unknown=ignored)
    if cfg.debug:
        log.enable_debug()
    try:
        result = function(request, cfg, zfs_module.Zfs(timeout=cfg.zfs_timeout))
    except Error as error:
        if ignored:
            # Still one line: the failure, and what was ignored.
            raise Error(f"{error} (ignored in the config: {'; '.join(ignored)})") from None
        raise
    for message in ignored or ():
        log.warning(f"{message}: ignored (fix the file: every other action refuses it)")
    if action_name == "attach":
        # Line 1 of stdout is all Ganeti reads: nothing else goes there.
        print(result, flush=True)
    elif result:
        log.info(result)
    return 0


def verify_command(args, cfg, zfs):
    """`ganeti-zfs verify`: the provider's checks, and the LVM emulation's parent, for admins."""
    print(check_node(cfg, zfs))
    if cfg.lvm_vg:
        if not zfs.exists(cfg.lvm_parent):
            raise Error(f"the LVM emulation's parent dataset {cfg.lvm_parent} (volume group {cfg.lvm_vg}) "
                        f"does not exist: zfs create -p {cfg.lvm_parent}, or set LVM_PARENT in {cfg.path}")
        print(f"ok: volume group {cfg.lvm_vg} is emulated from {cfg.lvm_parent}")
    _report_strays(cfg, zfs)


def _report_strays(cfg, zfs):
    """Warn about the provider's zvols that no instance of this node owns.

    A copy left on the old node by a move, or a disk whose create Ganeti gave
    up on, is still attachable: a later failover to this node would run on
    it. Only reported, never destroyed. Which disks are whose comes from
    Ganeti's config.data, which only master candidates have (cluster.py).
    """
    from . import cluster

    rows = zfs.list([cfg.parent], ["name", "type", properties.OWNER], types=("filesystem", "volume"), depth=1)
    names = [naming.split(dataset)[1]
             for dataset, owner in volume.owners(zfs, cfg.parent, rows).items() if owner == properties.OWNER_EXT]
    try:
        disks = cluster.ext_disks(cluster.read_config(), actions.PROVIDER)
    except Error as error:
        log.warning(f"stray zvols not checked: {error}")
        return
    myself = cluster.node_name()
    found = cluster.strays(sorted(names), disks, myself, SNAPSHOT_SUFFIX)
    for name, why in found:
        log.warning(f"stray zvol {cfg.dataset(name)}: {why}; left alone (zfs destroy it if nothing needs it)")
    state = "warning" if found else "ok"
    print(f"{state}: {len(names) - len(found)} zvols of {cfg.parent} belong to instances of {myself}, "
          f"{len(found)} stray")
