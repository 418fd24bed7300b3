"""`ganeti-zfs snapshot`: the scheduled block snapshots (cron.daily, systemd timer).

One run, under the node-wide exclusive lock:
1. ONE `zfs list` of the volumes under the snapshot parents and their
   snapshots (the inventory);
2. a volume is due when none of our snapshots records today's UTC day
   (properties.SNAPSHOT_DATE), so running again the same day does nothing
   and a run after missed days takes what is due;
3. ONE `zfs snapshot -o <kind> -o <date> a@x b@x ...` per pool, atomic within
   the pool (split only when the argument list would not fit; if a pool's
   call fails, each of its volumes is retried alone so one bad volume cannot
   block the rest);
4. retention (ganeti_zfs.retention) plans, per volume whose snapshot did not
   fail, which of our snapshots to destroy; ONE `zfs program` per pool then
   destroys them all, each on its own (a held or cloned one fails alone and
   is reported), in one transaction group (split only when the argument
   list would not fit).
A second run waiting on the lock then finds nothing due.
"""

import argparse
import dataclasses
import datetime
import json
import os
import re
import sys

from . import lock, log, properties, retention
from . import volume as volume_module
from . import zfs as zfs_module
from .errors import UsageError

# Tests (and an admin replaying a missed day) move the job's clock.
NOW_VARIABLE = "GANETI_ZFS_NOW"

INVENTORY_FIELDS = (
    "name",
    "type",
    "createtxg",
    "creation",
    "userrefs",
    "clones",
    "origin",
    properties.OWNER,
    properties.AUTO_SNAPSHOT,
    properties.AUTO_SNAPSHOT_COMPAT,
    properties.SNAPSHOT_KIND,
    properties.SNAPSHOT_DATE,
)
_SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
_POINTER_SIZE = 8


# -- inventory -------------------------------------------------------------


@dataclasses.dataclass
class Volume:
    name: str
    creation: int
    excluded: str = ""  # why the job leaves it alone ("" when it does not)
    problem: str = ""  # why the job cannot work on it safely (a failure)
    snapshot_names: set = dataclasses.field(default_factory=set)  # every snapshot, ours or not
    ours: list = dataclasses.field(default_factory=list)  # retention.Snapshot, scheduled ones only
    newest_ours_creation: int = 0  # `creation` of the newest of ours (or the original's), 0 if none
    # The original tool's daily snapshots, taken over by upgrade.py: never
    # pruned, but they count for freshness and hold their names.
    original_snapshots: set = dataclasses.field(default_factory=set)

    @property
    def pool(self):
        return self.name.split("/")[0]


def snapshot_parents(cfg):
    """[(dataset, required)]: a missing LVM parent just means no LVs yet.

    By default the LVM parent is ZFS_PARENT itself (config.Config.lvm_parent):
    then it is listed once.
    """
    if cfg.snapshot_parents:
        return [(dataset, True) for dataset in dict.fromkeys(cfg.snapshot_parents.split())]
    parents = [(cfg.parent, True)]
    if (cfg.lvm_vg or cfg.lvm_parent_setting) and cfg.lvm_parent != cfg.parent:
        parents.append((cfg.lvm_parent, False))
    return parents


def _list_parents(zfs, parents):
    """Rows of the inventory listing, from ONE zfs process even when a parent
    is missing, and the errors for missing required parents."""
    names = [dataset for dataset, _required in parents]
    # Filesystems too: the parents' own rows are what volume.owners needs.
    rows, missing = zfs.list_present(names, INVENTORY_FIELDS, types=("filesystem", "volume", "snapshot"), depth=2)
    errors = []
    for dataset, required in parents:
        if dataset not in missing:
            continue
        if required:
            errors.append((dataset, "snapshot parent does not exist"))
        else:
            log.debug(f"{dataset} does not exist (no emulated LVs yet); nothing to snapshot there")
    return rows, errors


def _set(value):
    return value not in ("-", "")


def _exclusion(row, export_snapshots):
    # An export copy or snapshot LV: the one rule of volume.is_export_copy
    # (`row` is ours already, by volume.owners).
    origin = row["origin"] if _set(row["origin"]) else ""
    if volume_module.is_export_copy(row["name"], origin, origin in export_snapshots):
        return "export copy"
    for prop in (properties.AUTO_SNAPSHOT, properties.AUTO_SNAPSHOT_COMPAT):
        if row[prop].lower() == "false":
            return f"opted out ({prop}=false)"
    return ""


def _our_snapshot(row):
    """A retention.Snapshot for one of our scheduled snapshots, else None."""
    if row[properties.SNAPSHOT_KIND] != properties.SNAPSHOT_KIND_DAILY:
        return None
    try:
        day = datetime.date.fromisoformat(row[properties.SNAPSHOT_DATE])
    except ValueError:
        log.debug(f"{row['name']}: {properties.SNAPSHOT_DATE} is not a date; treating it as not ours")
        return None
    clones = tuple(volume_module.clone_names(row["clones"]))
    holds = int(row["userrefs"]) if row["userrefs"].isdigit() else 0
    return retention.Snapshot(row["name"].partition("@")[2], day, int(row["createtxg"]), holds, clones)


def inventory(zfs, parents):
    """([Volume] sorted by name, [(dataset, error)]) from ONE `zfs list` (more only if a parent is missing)."""
    rows, errors = _list_parents(zfs, parents)
    return volumes_from_rows(rows, {dataset for dataset, _required in parents}, zfs), errors


def volumes_from_rows(rows, parent_names, zfs=None):
    """[Volume] sorted by name from the inventory listing's rows.

    Only zvols directly under a parent that are ours (volume.owners; `zfs`
    is needed only when a parent itself shows an owner mark).
    """
    export_snapshots = volume_module.export_snapshots(rows)
    ours = {}
    for parent in sorted(parent_names):
        ours.update(volume_module.owners(zfs, parent, rows))
    volumes = {}
    for row in rows:
        name = row["name"]
        if name not in ours:
            continue
        volume = Volume(name, int(row["creation"]), excluded=_exclusion(row, export_snapshots))
        # Snapshots inherit user properties from their volume: if the volume
        # carries our markers, a manual snapshot would look like ours.
        for prop in (properties.SNAPSHOT_KIND, properties.SNAPSHOT_DATE):
            if _set(row[prop]):
                volume.problem = (
                    f"the volume itself has {prop}={row[prop]}, so its snapshots cannot be told apart; "
                    f"run `zfs inherit {prop}` on it (or its parent)"
                )
        volumes[name] = volume
    for row in rows:
        volume_name, _, short_name = row["name"].partition("@")
        if row["type"] != "snapshot" or volume_name not in volumes:
            continue
        volume = volumes[volume_name]
        volume.snapshot_names.add(short_name)
        ours = _our_snapshot(row)
        if ours:
            volume.ours.append(ours)
        if row[properties.SNAPSHOT_KIND] == properties.SNAPSHOT_KIND_ORIGINAL:
            volume.original_snapshots.add(short_name)
        if ours or row[properties.SNAPSHOT_KIND] == properties.SNAPSHOT_KIND_ORIGINAL:
            volume.newest_ours_creation = max(volume.newest_ours_creation, int(row["creation"]))
    return [volumes[name] for name in sorted(volumes)]


# -- argument lists ----------------------------------------------------------


def _argument_cost(argument):
    # execve copies each string with its NUL and needs a pointer to it.
    return len(os.fsencode(argument)) + 1 + _POINTER_SIZE


def argument_budget(environ=None):
    """Bytes our argv may take: ARG_MAX minus the environment, with a margin."""
    environ = os.environ if environ is None else environ
    environment = sum(_argument_cost(f"{key}={value}") for key, value in environ.items())
    return os.sysconf("SC_ARG_MAX") - environment - 16384


def split_arguments(fixed, items, budget):
    """`items` in order, cut into lists that each fit in `budget` after `fixed`.

    An item too long on its own still gets a list of its own (the command
    then fails for that item alone, with zfs's message).
    """
    room = budget - sum(_argument_cost(argument) for argument in fixed)
    batches, current, used = [], [], 0
    for item in items:
        cost = _argument_cost(item)
        if current and used + cost > room:
            batches.append(current)
            current, used = [], 0
        current.append(item)
        used += cost
    if current:
        batches.append(current)
    return batches


# -- the run -----------------------------------------------------------------


@dataclasses.dataclass
class Result:
    now: datetime.datetime
    snapshot_name: str
    dry_run: bool
    snapshotted: list = dataclasses.field(default_factory=list)  # volumes
    up_to_date: list = dataclasses.field(default_factory=list)  # volumes already done today
    excluded: list = dataclasses.field(default_factory=list)  # (volume, reason)
    failed: list = dataclasses.field(default_factory=list)  # (dataset or snapshot, error)
    pruned: list = dataclasses.field(default_factory=list)  # full snapshot names
    blocked: list = dataclasses.field(default_factory=list)  # (full snapshot name, reason)
    kept: dict = dataclasses.field(default_factory=dict)  # full snapshot name -> roles
    snapshot_commands: dict = dataclasses.field(default_factory=dict)  # pool -> zfs snapshot processes
    notes: list = dataclasses.field(default_factory=list)  # said on stderr unless --quiet
    gave_up: set = dataclasses.field(default_factory=set)  # pools whose zfs timed out: nothing more done there

    def pools(self):
        return sorted({name.split("/")[0] for name in self.snapshotted})

    def summary(self):
        text = (
            f"snapshotted {len(self.snapshotted)} volumes in {len(self.pools())} pools, "
            f"pruned {len(self.pruned)}, skipped {len(self.blocked)}, failed {len(self.failed)}"
        )
        extra = []
        if self.up_to_date:
            extra.append(f"{len(self.up_to_date)} already done today")
        if self.excluded:
            extra.append(f"{len(self.excluded)} excluded")
        if extra:
            text += " (" + ", ".join(extra) + ")"
        return ("dry run, nothing changed: " if self.dry_run else "") + text

    def as_json(self):
        return {
            "now": self.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "snapshot_name": self.snapshot_name,
            "dry_run": self.dry_run,
            "snapshotted": self.snapshotted,
            "up_to_date": self.up_to_date,
            "excluded": [{"volume": volume, "reason": reason} for volume, reason in self.excluded],
            "failed": [{"name": name, "error": error} for name, error in self.failed],
            "pruned": self.pruned,
            "skipped": [{"snapshot": name, "reason": reason} for name, reason in self.blocked],
            "kept": {name: list(roles) for name, roles in self.kept.items()},
            "snapshot_commands": self.snapshot_commands,
            "summary": self.summary(),
        }


def _policy(cfg):
    return retention.Policy(daily=cfg.keep_daily, weekly=cfg.keep_weekly, monthly=cfg.keep_monthly)


def snapshot_name(cfg, now):
    name = now.strftime(cfg.snapshot_format)
    if not _SNAPSHOT_NAME.match(name) or len(name) > 200:
        raise UsageError(f"SNAPSHOT_FORMAT={cfg.snapshot_format!r} gives {name!r}, not a valid snapshot name")
    return name


def _take(zfs, result, pool, volumes, day, budget):
    """Snapshot `volumes` of one pool: one atomic call per batch, each alone if it fails."""
    snapshot_properties = {properties.SNAPSHOT_KIND: properties.SNAPSHOT_KIND_DAILY, properties.SNAPSHOT_DATE: day.isoformat()}
    fixed = zfs_module.snapshot_command(snapshot_properties)
    targets = [f"{volume}@{result.snapshot_name}" for volume in volumes]
    batches = split_arguments(fixed, targets, budget)
    if len(batches) > 1:
        result.notes.append(
            f"{pool}: {len(targets)} snapshots do not fit in one argument list; "
            f"taking them in {len(batches)} zfs snapshot calls (each atomic, not all together)"
        )
    for number, batch in enumerate(batches):
        result.snapshot_commands[pool] = result.snapshot_commands.get(pool, 0) + 1
        if result.dry_run:
            result.snapshotted += [target.partition("@")[0] for target in batch]
            continue
        try:
            zfs.snapshot(batch, snapshot_properties)
            result.snapshotted += [target.partition("@")[0] for target in batch]
            continue
        except zfs_module.Timeout as error:
            # A pool that does not answer in time (suspended, or too busy):
            # one process per volume would each wait as long, all of it under
            # the exclusive lock that every provider change waits for.
            rest = [target for later in batches[number:] for target in later]
            result.failed += [(target, f"not taken, pool {pool} gave up: {error}") for target in rest]
            result.gave_up.add(pool)
            return
        except zfs_module.ZfsError as error:
            if len(batch) == 1:
                result.failed.append((batch[0], str(error)))
                continue
            result.notes.append(f"{pool}: snapshotting {len(batch)} volumes together failed ({error}); retrying each alone")
        for target in batch:
            result.snapshot_commands[pool] += 1
            try:
                zfs.snapshot([target], snapshot_properties)
                result.snapshotted.append(target.partition("@")[0])
            except zfs_module.ZfsError as error:
                result.failed.append((target, str(error)))


def _plan_prune(result, volume, policy, taken_today):
    """Our snapshots of `volume` that retention no longer keeps (full names); fills kept and blocked."""
    snapshots = list(volume.ours)
    if taken_today:
        # Newer than anything listed: give it the highest txg.
        snapshots.append(retention.Snapshot(result.snapshot_name, result.now.date(), txg=2**63))
    plan = retention.plan(snapshots, policy)
    for name, roles in plan.keep.items():
        result.kept[f"{volume.name}@{name}"] = roles
    for snapshot, reason in plan.blocked:
        result.blocked.append((f"{volume.name}@{snapshot.name}", reason))
    return [f"{volume.name}@{snapshot.name}" for snapshot in plan.destroy]


def _destroy(zfs, result, pool, snapshots, budget):
    """Destroy `snapshots` of one pool: one `zfs program` per batch, each snapshot on its own."""
    batches = split_arguments(zfs_module.destroy_program_command(pool), snapshots, min(budget, zfs_module.PROGRAM_ARGUMENTS_LIMIT))
    if len(batches) > 1:
        result.notes.append(
            f"{pool}: {len(snapshots)} snapshots to destroy do not fit in one argument list; "
            f"destroying them in {len(batches)} zfs program calls"
        )
    for batch in batches:
        if result.dry_run:
            result.pruned += batch
            continue
        try:
            refusals = zfs.destroy_snapshots_batch(pool, batch)
        except zfs_module.ZfsError as error:
            # The program stopped (a timeout, a limit, no permission, a bug
            # of ours) and may have destroyed some. No fallback to one `zfs
            # destroy` per volume: that would hide from the admin what is
            # wrong, and pruning is not urgent. Every snapshot of the batch is
            # reported, the job fails, and the next run plans again from what
            # is left.
            result.failed += [(name, f"not known to be destroyed: {error}") for name in batch]
            continue
        for name in batch:
            if refusals[name]:
                result.failed.append((name, refusals[name]))
            else:
                result.pruned.append(name)


def sort_volumes(result, volumes):
    """Fill result.excluded/failed/up_to_date; return ({pool: [due volume]}, [volumes to prune])."""
    today = result.now.date()
    due = {}
    to_prune = []
    for volume in volumes:
        if volume.excluded:
            result.excluded.append((volume.name, volume.excluded))
        elif volume.problem:
            result.failed.append((volume.name, volume.problem))
        elif any(snapshot.day == today for snapshot in volume.ours):
            result.up_to_date.append(volume.name)
            to_prune.append(volume)
        elif result.snapshot_name in volume.original_snapshots:
            result.notes.append(
                f"{volume.name}@{result.snapshot_name} is the original tool's snapshot of today; "
                "kept, and it stands for today's scheduled snapshot"
            )
            result.up_to_date.append(volume.name)
            to_prune.append(volume)
        elif result.snapshot_name in volume.snapshot_names:
            result.failed.append(
                (f"{volume.name}@{result.snapshot_name}", "exists and was not taken by this job today; not overwriting it")
            )
        else:
            due.setdefault(volume.pool, []).append(volume.name)
            to_prune.append(volume)
    return due, to_prune


def run_job(zfs, cfg, now, dry_run=False, budget=None):
    """Snapshot what is due and prune; the Result says what happened (or would)."""
    result = Result(now, snapshot_name(cfg, now), dry_run)
    volumes, parent_errors = inventory(zfs, snapshot_parents(cfg))
    result.failed += parent_errors
    due, to_prune = sort_volumes(result, volumes)
    for pool in sorted(due):
        _take(zfs, result, pool, due[pool], now.date(), budget or argument_budget())
    taken = set(result.snapshotted)
    done_before = set(result.up_to_date)
    policy = _policy(cfg)
    doomed = {}  # pool -> full snapshot names to destroy
    for volume in to_prune:
        # A volume whose snapshot failed keeps everything until a run succeeds.
        if volume.pool in result.gave_up:
            continue
        if volume.name in taken or volume.name in done_before:
            names = _plan_prune(result, volume, policy, taken_today=volume.name in taken)
            doomed.setdefault(volume.pool, []).extend(names)
    for pool in sorted(doomed):
        if doomed[pool]:
            _destroy(zfs, result, pool, doomed[pool], budget or argument_budget())
    # (The rollback copies `ganeti-zfs move` leaves are not expired here yet:
    # move.expire_retired costs a `zfs get` of its own, and the daily job's one
    # listing per run is what the guest suite holds it to; issue #18.)
    return result


# -- the command -------------------------------------------------------------


def parse_now(text):
    """An ISO 8601 time (or day) as an aware UTC datetime; naive means UTC."""
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--now/{NOW_VARIABLE}: {text!r} is not an ISO 8601 time like 2026-11-26T00:00:00Z")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def current_time(args, environ=None):
    environ = os.environ if environ is None else environ
    text = getattr(args, "now", None) or environ.get(NOW_VARIABLE)
    return parse_now(text) if text else datetime.datetime.now(datetime.timezone.utc)


def add_clock_argument(parser):
    parser.add_argument("--now", help=argparse.SUPPRESS)  # tests: pretend it is this UTC time


def add_arguments(parser):
    parser.add_argument("--dry-run", action="store_true", help="show what would be snapshotted and pruned; change nothing")
    parser.add_argument("--json", action="store_true", help="print the plan or result as JSON")
    parser.add_argument("--quiet", action="store_true", help="print only errors (for cron)")
    parser.add_argument("--lock-timeout", type=float, default=600, help="seconds to wait for another run (default 600)")
    parser.add_argument("--arg-budget", type=int, help=argparse.SUPPRESS)  # tests: force split argument lists
    add_clock_argument(parser)


def _report(result, args, out, err):
    for name, error in result.failed:
        print(f"ganeti-zfs snapshot: error: {name}: {error}", file=err)
    if not args.quiet:
        for note in result.notes:
            print(f"ganeti-zfs snapshot: {note}", file=err)
        for name, reason in result.blocked:
            print(f"ganeti-zfs snapshot: not pruning {name}: {reason}", file=err)
    if args.json:
        json.dump(result.as_json(), out, indent=2, sort_keys=True)
        out.write("\n")
        return
    if args.quiet:
        return
    if args.dry_run:
        for volume in result.snapshotted:
            print(f"snapshot {volume}@{result.snapshot_name}", file=out)
        for name in result.pruned:
            print(f"destroy {name}", file=out)
    print(result.summary(), file=out)


def run(args, cfg, zfs=None, out=None, err=None):
    """The `ganeti-zfs snapshot` command; returns the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    if not cfg.zfs_parent and not cfg.snapshot_parents:
        # A node where the package is installed but not configured yet: the
        # daily cron job and timer must not fail (or mail) every day.
        if not args.quiet:
            print(f"nothing to snapshot: ZFS_PARENT is not set in {cfg.path}", file=err)
        return 0
    zfs = zfs or zfs_module.Zfs(timeout=cfg.zfs_timeout)
    now = current_time(args)
    if args.dry_run:
        # Read-only: no need to wait for a running job.
        result = run_job(zfs, cfg, now, dry_run=True, budget=args.arg_budget)
    else:
        with lock.exclusive(timeout=args.lock_timeout):
            result = run_job(zfs, cfg, now, budget=args.arg_budget)
    _report(result, args, out, err)
    return 1 if result.failed else 0
