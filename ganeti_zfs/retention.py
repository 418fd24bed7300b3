"""Which scheduled snapshots of one volume to keep: a pure, count-based planner.

Every scheduled snapshot is of kind "daily" and records the UTC day of the
run that took it (properties.SNAPSHOT_DATE). Weekly and monthly are roles the
planner derives from those days, so one `zfs snapshot` call can give every
volume of a pool the same properties:

- daily:   the first snapshot of each of the newest KEEP_DAILY days,
- weekly:  the first snapshot of each of the newest KEEP_WEEKLY ISO weeks
           (Monday to Sunday),
- monthly: the first snapshot of each of the newest KEEP_MONTHLY months,
- latest:  the newest snapshot, always (even with every count at 0).

"Newest N periods" counts periods that still have a snapshot, not calendar
periods back from today: when snapshotting stops, nothing more is pruned, and
gaps never make us keep fewer than the configured number. Because a period's
first snapshot never changes, a snapshot's roles only ever shrink as newer
periods arrive, so pruning day by day keeps exactly what one plan over every
snapshot ever taken would keep (the unit tests rely on this).

A snapshot no role keeps is destroyed, unless it has holds or clones: then it
is left alone and reported (zfs would refuse, and a clone is someone's data).
"""

import dataclasses
import datetime

ROLES = ("daily", "weekly", "monthly", "latest")


@dataclasses.dataclass(frozen=True)
class Policy:
    daily: int = 7
    weekly: int = 4
    monthly: int = 6


@dataclasses.dataclass(frozen=True)
class Snapshot:
    name: str  # the part after "@"
    day: datetime.date  # UTC day of the run that took it
    txg: int = 0  # createtxg: orders snapshots of the same day
    holds: int = 0  # userrefs
    clones: tuple = ()


@dataclasses.dataclass
class Plan:
    keep: dict  # snapshot name -> sorted tuple of roles
    destroy: list  # Snapshots to destroy, oldest first
    blocked: list  # (Snapshot, reason): would be destroyed, but held or cloned


def _period(role, day):
    if role == "daily":
        return day
    if role == "weekly":
        return day.isocalendar()[:2]  # (ISO year, ISO week)
    return (day.year, day.month)


def roles(snapshots, policy):
    """{snapshot name: set of roles that keep it} for every snapshot."""
    ordered = sorted(snapshots, key=lambda s: (s.day, s.txg))
    kept = {snapshot.name: set() for snapshot in ordered}
    for role, count in (("daily", policy.daily), ("weekly", policy.weekly), ("monthly", policy.monthly)):
        first_of_period = {}
        for snapshot in ordered:
            first_of_period.setdefault(_period(role, snapshot.day), snapshot)
        newest_periods = sorted(first_of_period)[-count:] if count > 0 else []
        for period in newest_periods:
            kept[first_of_period[period].name].add(role)
    if ordered:
        kept[ordered[-1].name].add("latest")
    return kept


def plan(snapshots, policy):
    """The Plan for one volume's scheduled snapshots."""
    kept_roles = roles(snapshots, policy)
    keep, destroy, blocked = {}, [], []
    for snapshot in sorted(snapshots, key=lambda s: (s.day, s.txg)):
        if kept_roles[snapshot.name]:
            keep[snapshot.name] = tuple(role for role in ROLES if role in kept_roles[snapshot.name])
        elif snapshot.holds > 0:
            blocked.append((snapshot, f"{snapshot.holds} hold(s)"))
        elif snapshot.clones:
            blocked.append((snapshot, "cloned to " + ",".join(snapshot.clones)))
        else:
            destroy.append(snapshot)
    return Plan(keep, destroy, blocked)
