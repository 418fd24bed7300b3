"""`ganeti-zfs check`: a monitoring plugin (Nagios/Icinga convention).

Prints ONE line on stdout, `ZFS-SNAPSHOTS <STATE> - <text> | <perfdata>`, and
exits 0 OK, 1 WARNING, 2 CRITICAL or 3 UNKNOWN (the check itself could not
run). It looks at, with one `zfs list` and one `zpool list`:

- freshness: per volume the scheduled job snapshots (same selection), the age
  of its newest snapshot of ours (ZFS's `creation`, so a moved job clock
  cannot hide a stale volume). A volume without any such snapshot yet is
  judged by its own age: a new volume is OK until the warning threshold has
  passed without a snapshot, then WARNING and CRITICAL like any other;
- health of the pools holding the snapshot parents: ONLINE is OK, DEGRADED
  WARNING, anything else CRITICAL;
- capacity of those pools against the thresholds.
A missing snapshot parent is CRITICAL: nothing under it is protected.
"""

import dataclasses
import sys

from . import scheduled
from . import zfs as zfs_module
from .errors import Error, UsageError

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
PREFIX = "ZFS-SNAPSHOTS"
_NAMED_AT_MOST = 5  # volumes named in the line; the rest are counted


@dataclasses.dataclass(frozen=True)
class Thresholds:
    warn_hours: float
    crit_hours: float
    capacity_warn: int
    capacity_crit: int


@dataclasses.dataclass(frozen=True)
class Finding:
    state: int
    text: str


def _by_age(age, thresholds):
    if age > thresholds.crit_hours * 3600:
        return CRITICAL
    if age > thresholds.warn_hours * 3600:
        return WARNING
    return OK


def _hours(seconds):
    return f"{seconds / 3600:.1f}h"


def freshness(volumes, now, thresholds):
    """(findings, perfdata, worst age in seconds) for the volumes' newest snapshots."""
    checked = [volume for volume in volumes if not volume.excluded]
    stale = {WARNING: [], CRITICAL: []}
    oldest = 0
    for volume in checked:
        # Without a snapshot of ours yet, the volume's own age is what counts.
        age = max(0, now - (volume.newest_ours_creation or volume.creation))
        oldest = max(oldest, age)
        state = _by_age(age, thresholds)
        if state != OK:
            label = "no snapshot since created " if not volume.newest_ours_creation else ""
            stale[state].append((age, f"{volume.name} {label}{_hours(age)} ago"))
    findings = []
    for state, limit in ((CRITICAL, thresholds.crit_hours), (WARNING, thresholds.warn_hours)):
        if stale[state]:
            items = [text for _age, text in sorted(stale[state], reverse=True)]
            named = ", ".join(items[:_NAMED_AT_MOST])
            more = f" and {len(items) - _NAMED_AT_MOST} more" if len(items) > _NAMED_AT_MOST else ""
            findings.append(Finding(state, f"{len(items)} volumes without a snapshot for {limit:g}h: {named}{more}"))
    perfdata = [
        f"volumes={len(checked)};;;0",
        f"stale_volumes={len(stale[WARNING]) + len(stale[CRITICAL])};;;0",
        f"oldest_snapshot_age={oldest}s;{thresholds.warn_hours * 3600:g};{thresholds.crit_hours * 3600:g};0",
    ]
    return findings, perfdata, oldest


def _capacity(text):
    """The capacity in %, or None where zpool has none: it prints `-` for a
    pool that is UNAVAIL or FAULTED (its space cannot be read)."""
    number = text.rstrip("%")
    return int(number) if number.isdigit() else None


def pool_health(rows, pool_names, thresholds):
    """(findings, perfdata, short status per pool) from `zpool list` rows."""
    findings, perfdata, status = [], [], []
    found = {row["name"]: row for row in rows}
    for pool in sorted(pool_names):
        row = found.get(pool)
        if row is None:
            findings.append(Finding(CRITICAL, f"pool {pool} is not imported"))
            continue
        health, capacity = row["health"], _capacity(row["capacity"])
        if health == "DEGRADED":
            findings.append(Finding(WARNING, f"pool {pool} is DEGRADED"))
        elif health != "ONLINE":
            findings.append(Finding(CRITICAL, f"pool {pool} is {health}"))
        if capacity is None:
            # Nagios's "U": a value that could not be determined.
            if health in ("ONLINE", "DEGRADED"):
                findings.append(Finding(UNKNOWN, f"pool {pool} is {health} but zpool gives no capacity ({row['capacity']!r})"))
            status.append(f"{pool} {health}")
            perfdata.append(f"{pool}_capacity=U;{thresholds.capacity_warn};{thresholds.capacity_crit};0;100")
            continue
        if capacity >= thresholds.capacity_crit:
            findings.append(Finding(CRITICAL, f"pool {pool} is {capacity}% full"))
        elif capacity >= thresholds.capacity_warn:
            findings.append(Finding(WARNING, f"pool {pool} is {capacity}% full"))
        status.append(f"{pool} {health} {capacity}%")
        perfdata.append(f"{pool}_capacity={capacity}%;{thresholds.capacity_warn};{thresholds.capacity_crit};0;100")
    return findings, perfdata, status


def summarize(findings, volume_count, oldest, pool_status, perfdata):
    """(exit state, the one output line)."""
    state = max((finding.state for finding in findings), default=OK)
    if state == OK:
        text = f"{volume_count} volumes, newest snapshots at most {_hours(oldest)} old"
        if pool_status:
            text += "; pools " + ", ".join(pool_status)
    else:
        worst_first = sorted(findings, key=lambda finding: -finding.state)
        text = "; ".join(finding.text for finding in worst_first if finding.state != OK)
    return state, f"{PREFIX} {STATE_NAMES[state]} - {text} | {' '.join(perfdata)}"


def evaluate(zfs, cfg, now, thresholds):
    parents = scheduled.snapshot_parents(cfg)
    volumes, parent_errors = scheduled.inventory(zfs, parents)
    findings = [Finding(CRITICAL, f"{dataset}: {error}") for dataset, error in parent_errors]
    volume_findings, volume_perfdata, oldest = freshness(volumes, now, thresholds)
    pool_names = {dataset.split("/")[0] for dataset, _required in parents}
    pool_findings, pool_perfdata, pool_status = pool_health(
        zfs.pools(["name", "health", "capacity"]), pool_names, thresholds
    )
    checked = sum(1 for volume in volumes if not volume.excluded)
    return summarize(findings + volume_findings + pool_findings, checked, oldest, pool_status,
                     volume_perfdata + pool_perfdata)


def add_arguments(parser):
    parser.add_argument("--warn-hours", type=float, help="WARNING when a newest snapshot is older (CHECK_SNAPSHOT_WARN_HOURS)")
    parser.add_argument("--crit-hours", type=float, help="CRITICAL when a newest snapshot is older (CHECK_SNAPSHOT_CRIT_HOURS)")
    parser.add_argument("--capacity-warn", type=int, help="WARNING at this pool capacity in %% (CHECK_CAPACITY_WARN)")
    parser.add_argument("--capacity-crit", type=int, help="CRITICAL at this pool capacity in %% (CHECK_CAPACITY_CRIT)")
    scheduled.add_clock_argument(parser)


def thresholds_from(args, cfg):
    def pick(option, default):
        value = getattr(args, option, None)
        return default if value is None else value

    thresholds = Thresholds(
        pick("warn_hours", cfg.check_snapshot_warn_hours),
        pick("crit_hours", cfg.check_snapshot_crit_hours),
        pick("capacity_warn", cfg.check_capacity_warn),
        pick("capacity_crit", cfg.check_capacity_crit),
    )
    if not 0 < thresholds.warn_hours <= thresholds.crit_hours:
        raise UsageError("need 0 < warning hours <= critical hours")
    if not 0 <= thresholds.capacity_warn <= thresholds.capacity_crit <= 100:
        raise UsageError("need 0 <= capacity warning <= capacity critical <= 100")
    return thresholds


def run(args, cfg, zfs=None, out=None):
    """The `ganeti-zfs check` command; returns the plugin's exit state."""
    out = out or sys.stdout
    try:
        zfs = zfs or zfs_module.Zfs(timeout=cfg.zfs_timeout)
        now = int(scheduled.current_time(args).timestamp())
        state, line = evaluate(zfs, cfg, now, thresholds_from(args, cfg))
    except Error as error:
        state, line = UNKNOWN, f"{PREFIX} UNKNOWN - {error}"
    print(line, file=out)
    return state
