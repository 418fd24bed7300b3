"""The retention planner, driven by a simulated clock.

Expected sets are either written out by hand (dates worked out from a
calendar) or computed by `reference_kept` below, which states the rules as a
per-snapshot predicate over the days ever snapshotted -- a different
formulation from the planner's "group by period, take the first of the
newest N groups".
"""

import datetime
import random

from ganeti_zfs import retention
from ganeti_zfs.retention import Policy, Snapshot

DEFAULT = Policy(daily=7, weekly=4, monthly=6)


def day(text):
    return datetime.date.fromisoformat(text)


def days(*texts):
    return {day(text) for text in texts}


def snap(text, txg=0, **extra):
    return Snapshot(name=text, day=day(text), txg=txg, **extra)


def monday(d):
    return d - datetime.timedelta(days=d.weekday())


def reference_kept(taken, policy):
    """Days kept when exactly one snapshot was taken on each day in `taken`."""
    weeks = sorted({monday(x) for x in taken})
    months = sorted({(x.year, x.month) for x in taken})
    first_in_week = {}
    first_in_month = {}
    for x in sorted(taken, reverse=True):
        first_in_week[monday(x)] = x
        first_in_month[(x.year, x.month)] = x
    ordered = sorted(taken)
    kept = set()
    for position, d in enumerate(ordered):
        days_from_newest = len(ordered) - position  # 1 for the newest
        weeks_from_newest = len(weeks) - weeks.index(monday(d))
        months_from_newest = len(months) - months.index((d.year, d.month))
        if (
            days_from_newest <= policy.daily
            or (first_in_week[monday(d)] == d and weeks_from_newest <= policy.weekly)
            or (first_in_month[(d.year, d.month)] == d and months_from_newest <= policy.monthly)
            or days_from_newest == 1
        ):
            kept.add(d)
    return kept


def simulate(start, end, policy, outcome):
    """One run per day from start to end; outcome(day) is "ok", "skip" (no run) or "fail".

    A failed run takes no snapshot and prunes nothing, as the job does.
    Returns (days ever snapshotted, days still present) and checks the
    invariants after every run.
    """
    present, taken = {}, set()
    current = start
    while current <= end:
        result = outcome(current)
        if result == "ok":
            present[current] = Snapshot(name=current.isoformat(), day=current, txg=len(taken))
            taken.add(current)
            plan = retention.plan(list(present.values()), policy)
            for gone in plan.destroy:
                del present[gone.day]
            assert set(present) == reference_kept(taken, policy), current
            assert len(present) >= min(policy.daily, len(taken))
        current += datetime.timedelta(days=1)
    return taken, set(present)


def every_day(_day):
    return "ok"


def test_a_year_of_daily_runs_keeps_exactly_the_calendar_expectation():
    _, kept = simulate(day("2026-01-01"), day("2026-12-31"), DEFAULT, every_day)
    # 2026-12-31 is a Thursday; ISO weeks start on Mondays Dec 28, 21, 14, 7.
    assert kept == days(
        "2026-12-25", "2026-12-26", "2026-12-27", "2026-12-28", "2026-12-29", "2026-12-30", "2026-12-31",
        "2026-12-07", "2026-12-14", "2026-12-21",
        "2026-07-01", "2026-08-01", "2026-09-01", "2026-10-01", "2026-11-01", "2026-12-01",
    )


def test_when_snapshots_stop_pruning_stops_and_resumes_count_based():
    def stopped_after_march_10(d):
        return "ok" if d <= day("2026-03-10") else "fail"

    _, kept = simulate(day("2026-01-01"), day("2026-06-30"), DEFAULT, stopped_after_march_10)
    # Tuesday 2026-03-10: last 7 days, Mondays Mar 9 (in the days), Mar 2,
    # Feb 23, Feb 16, and the 1st of the only three months there are.
    state_on_march_10 = days(
        "2026-03-04", "2026-03-05", "2026-03-06", "2026-03-07", "2026-03-08", "2026-03-09", "2026-03-10",
        "2026-03-02", "2026-02-23", "2026-02-16",
        "2026-01-01", "2026-02-01", "2026-03-01",
    )
    assert kept == state_on_march_10
    # Nothing is ever due to go while no new snapshot arrives.
    assert retention.plan([snap(d.isoformat()) for d in kept], DEFAULT).destroy == []

    # The first successful run after the gap (Wednesday 2026-07-01) drops
    # exactly the oldest day and the oldest week.
    plan = retention.plan([snap(d.isoformat()) for d in kept] + [snap("2026-07-01")], DEFAULT)
    assert {s.day for s in plan.destroy} == days("2026-03-04", "2026-02-16")
    assert plan.keep["2026-07-01"] == ("daily", "weekly", "monthly", "latest")
    assert plan.keep["2026-01-01"] == ("monthly",)


def test_a_year_with_gaps_and_failed_days_matches_the_reference():
    rng = random.Random(6)  # fixed seed: the same calendar every run
    calendar = {}

    def outcome(d):
        calendar[d] = rng.choices(["ok", "skip", "fail"], weights=[70, 15, 15])[0]
        # A whole month without any successful run, to test month gaps.
        if d.month == 5:
            calendar[d] = "fail"
        return calendar[d]

    taken, kept = simulate(day("2026-01-01"), day("2026-12-31"), DEFAULT, outcome)
    assert kept == reference_kept(taken, DEFAULT)
    assert not any(d.month == 5 for d in taken)
    # The six kept months are six distinct months with a snapshot, May excluded.
    firsts = {min(x for x in taken if (x.year, x.month) == (m.year, m.month)) for m in kept}
    monthly = sorted(firsts)[-6:]
    assert {(d.year, d.month) for d in monthly} == {(2026, m) for m in (7, 8, 9, 10, 11, 12)}
    assert set(monthly) <= kept


def test_other_policies_over_a_year_match_the_reference():
    rng = random.Random(66)
    for policy in (Policy(1, 0, 0), Policy(0, 0, 0), Policy(3, 10, 0), Policy(0, 0, 12), Policy(30, 8, 24)):
        taken, kept = simulate(
            day("2025-11-15"), day("2026-11-26"), policy, lambda d: rng.choice(["ok", "ok", "skip", "fail"])
        )
        assert kept == reference_kept(taken, policy), policy


def test_zero_counts_still_keep_the_newest_snapshot():
    plan = retention.plan([snap("2026-11-24"), snap("2026-11-25"), snap("2026-11-26")], Policy(0, 0, 0))
    assert plan.keep == {"2026-11-26": ("latest",)}
    assert [s.name for s in plan.destroy] == ["2026-11-24", "2026-11-25"]


def test_held_and_cloned_snapshots_are_reported_not_destroyed():
    snapshots = [
        snap("2026-11-01", holds=1),
        snap("2026-11-02", clones=("tank/ganeti/x.snap",)),
        snap("2026-11-03"),
        snap("2026-11-04"),
        snap("2026-11-05"),
    ]
    plan = retention.plan(snapshots, Policy(daily=2, weekly=0, monthly=0))
    assert [s.name for s in plan.destroy] == ["2026-11-03"]
    assert [(s.name, reason) for s, reason in plan.blocked] == [
        ("2026-11-01", "1 hold(s)"),
        ("2026-11-02", "cloned to tank/ganeti/x.snap"),
    ]
    assert set(plan.keep) == {"2026-11-04", "2026-11-05"}


def test_same_day_snapshots_are_ordered_by_txg():
    # A clock set back can make two runs record the same day.
    first = Snapshot("a", day("2026-11-26"), txg=900)
    second = Snapshot("b", day("2026-11-26"), txg=100)
    plan = retention.plan([first, second], Policy(1, 0, 0))
    assert plan.keep == {"b": ("daily",), "a": ("latest",)}
    assert plan.destroy == []


def test_iso_weeks_span_year_ends():
    # Mon 2025-12-29 .. Sun 2026-01-04 is ISO week 1 of 2026: one week, one weekly.
    snapshots = [snap("2025-12-29"), snap("2026-01-02"), snap("2026-01-05")]
    plan = retention.plan(snapshots, Policy(daily=0, weekly=2, monthly=0))
    assert plan.keep == {"2025-12-29": ("weekly",), "2026-01-05": ("weekly", "latest")}
    assert [s.name for s in plan.destroy] == ["2026-01-02"]
