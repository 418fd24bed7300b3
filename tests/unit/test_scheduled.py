"""The pure parts of `ganeti-zfs snapshot`: argv splitting, the inventory parser,
what is due, names, the clock, the output. Real zfs runs are guest tests
(tests/guest/suite/test_scheduled.py)."""

import datetime
import io
import json
import os
import subprocess
import sys

import pytest

from ganeti_zfs import properties, retention, scheduled
from ganeti_zfs import zfs as zfs_module
from ganeti_zfs.errors import UsageError

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 26, 3, 4, 5, tzinfo=UTC)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# -- argument lists ----------------------------------------------------------


def test_split_arguments_cuts_exactly_at_the_budget():
    # An argument costs its bytes + NUL + an 8-byte pointer.
    fixed = ["zfs", "snapshot"]  # (3 + 1 + 8) + (8 + 1 + 8) = 29 bytes
    items = [f"tank/v{i:02d}@x" for i in range(10)]
    assert all(len(item) == 10 for item in items)  # 10 + 1 + 8 = 19 bytes each
    assert scheduled.split_arguments(fixed, items, 29 + 19 * 10) == [items]
    assert scheduled.split_arguments(fixed, items, 29 + 19 * 10 - 1) == [items[:9], items[9:]]
    assert scheduled.split_arguments(fixed, items, 29 + 19 * 3) == [items[0:3], items[3:6], items[6:9], items[9:]]


def test_split_arguments_gives_an_oversized_item_its_own_list():
    items = ["a", "b" * 100, "c"]
    assert scheduled.split_arguments([], items, 20) == [["a"], ["b" * 100], ["c"]]
    assert scheduled.split_arguments([], [], 20) == []


def test_split_arguments_counts_bytes_not_characters():
    # "é" is two bytes in UTF-8: 2 * 2 + 1 + 8 = 13 bytes.
    assert scheduled.split_arguments([], ["éé", "éé"], 26) == [["éé", "éé"]]
    assert scheduled.split_arguments([], ["éé", "éé"], 25) == [["éé"], ["éé"]]


def test_argument_budget_leaves_room_for_the_environment():
    empty = scheduled.argument_budget({})
    assert empty == os.sysconf("SC_ARG_MAX") - 16384
    assert scheduled.argument_budget({"A": "x" * 1000}) == empty - (len("A=") + 1000 + 1 + 8)


# -- inventory ---------------------------------------------------------------


KIND, DATE = properties.SNAPSHOT_KIND, properties.SNAPSHOT_DATE
OPT_OUT, OPT_OUT_COMPAT = properties.AUTO_SNAPSHOT, properties.AUTO_SNAPSHOT_COMPAT


def row(name, row_type="volume", props=None, **fields):
    """One row of the inventory listing as zfs list -H -p prints it ("-" = unset)."""
    base = {field: "-" for field in scheduled.INVENTORY_FIELDS}
    base.update(name=name, type=row_type, createtxg="10", creation="1000")
    if row_type == "volume":
        base[properties.OWNER] = "ext"
    base.update(props or {})
    base.update(fields)
    return base


def ours(name, date, txg="20", creation="2000", userrefs="0", **fields):
    return row(name, "snapshot", {KIND: "daily", DATE: date}, createtxg=txg, creation=creation, userrefs=userrefs, **fields)


def test_rows_become_volumes_with_only_our_snapshots_planned():
    rows = [
        row("tank/ganeti/a"),
        ours("tank/ganeti/a@2026-11-24", "2026-11-24", txg="30", creation="3000"),
        ours("tank/ganeti/a@2026-11-25", "2026-11-25", txg="40", creation="4000", userrefs="2", clones="tank/x,tank/y"),
        row("tank/ganeti/a@manual", "snapshot"),  # no marker: never ours
        row("tank/ganeti/a@weird", "snapshot", {KIND: "daily", DATE: "junk"}),
        row("tank/ganeti@etckeeper", "snapshot"),  # the parent's own snapshot
        row("tank/ganeti/notours", props={properties.OWNER: "-"}),
        row("tank/ganeti/fs/deeper"),  # not directly under the parent
        row("tank/gnt/lv", props={properties.OWNER: "lvm"}),
    ]
    volumes = scheduled.volumes_from_rows(rows, {"tank/ganeti", "tank/gnt"})
    assert [v.name for v in volumes] == ["tank/ganeti/a", "tank/gnt/lv"]
    a = volumes[0]
    assert a.snapshot_names == {"2026-11-24", "2026-11-25", "manual", "weird"}
    assert a.ours == [
        retention.Snapshot("2026-11-24", datetime.date(2026, 11, 24), 30, 0, ()),
        retention.Snapshot("2026-11-25", datetime.date(2026, 11, 25), 40, 2, ("tank/x", "tank/y")),
    ]
    assert a.newest_ours_creation == 4000
    assert a.pool == "tank" and not a.excluded and not a.problem


def test_export_copies_and_opted_out_volumes_are_excluded():
    rows = [
        row("tank/ganeti/disk0"),
        row("tank/ganeti/disk0@ganeti-export", "snapshot", {KIND: "export"}),
        row("tank/ganeti/disk0.snap", origin="tank/ganeti/disk0@ganeti-export"),
        row("tank/ganeti/renamed-copy", origin="tank/ganeti/disk0@ganeti-export"),
        row("tank/ganeti/admin-clone", origin="tank/ganeti/disk0@manual"),
        row("tank/ganeti/named.snap"),  # only the name looks like an export copy
        row("tank/ganeti/off1", props={OPT_OUT: "false"}),
        row("tank/ganeti/off2", props={OPT_OUT_COMPAT: "FALSE"}),
        row("tank/ganeti/on", props={OPT_OUT_COMPAT: "true"}),
    ]
    excluded = {v.name: v.excluded for v in scheduled.volumes_from_rows(rows, {"tank/ganeti"})}
    assert excluded == {
        "tank/ganeti/disk0": "",
        "tank/ganeti/disk0.snap": "export copy",
        "tank/ganeti/renamed-copy": "export copy",
        "tank/ganeti/admin-clone": "",
        "tank/ganeti/named.snap": "",
        "tank/ganeti/off1": "opted out (ganeti-zfs:auto-snapshot=false)",
        "tank/ganeti/off2": "opted out (com.sun:auto-snapshot=false)",
        "tank/ganeti/on": "",
    }


def test_a_volume_carrying_our_markers_is_a_problem():
    # Its snapshots would inherit the marker, so manual ones would look ours.
    rows = [row("tank/ganeti/a", props={KIND: "daily"})]
    (volume,) = scheduled.volumes_from_rows(rows, {"tank/ganeti"})
    assert "ganeti-zfs:snapshot=daily" in volume.problem and "zfs inherit" in volume.problem


# -- what is due -------------------------------------------------------------


def test_due_volumes_are_grouped_per_pool_and_same_day_is_a_no_op():
    rows = [
        row("tank/ganeti/a"),
        row("tank/ganeti/b"),
        ours("tank/ganeti/b@2026-11-26", "2026-11-26"),  # already done today
        row("tank/ganeti/c"),
        row("tank/ganeti/c@2026-11-26", "snapshot"),  # an admin's snapshot with our name
        row("tank/ganeti/d", props={OPT_OUT_COMPAT: "false"}),
        row("tank/ganeti/e", props={DATE: "2026-01-01"}),
        row("tank2/ganeti/f"),
        ours("tank2/ganeti/f@renamed-yesterday", "2026-11-25"),
    ]
    volumes = scheduled.volumes_from_rows(rows, {"tank/ganeti", "tank2/ganeti"})
    result = scheduled.Result(NOW, "2026-11-26", dry_run=True)
    due, to_prune = scheduled.sort_volumes(result, volumes)
    assert due == {"tank": ["tank/ganeti/a"], "tank2": ["tank2/ganeti/f"]}
    assert [v.name for v in to_prune] == ["tank/ganeti/a", "tank/ganeti/b", "tank2/ganeti/f"]
    assert result.up_to_date == ["tank/ganeti/b"]
    assert result.excluded == [("tank/ganeti/d", "opted out (com.sun:auto-snapshot=false)")]
    assert [name for name, _error in result.failed] == ["tank/ganeti/c@2026-11-26", "tank/ganeti/e"]
    assert "not overwriting" in result.failed[0][1]


def test_prune_plan_counts_the_snapshot_taken_in_this_run():
    volume = scheduled.Volume("tank/ganeti/a", 0)
    volume.ours = [retention.Snapshot(f"2026-11-{d}", datetime.date(2026, 11, d), txg=d) for d in (20, 21, 22)]
    volume.ours.append(retention.Snapshot("held", datetime.date(2026, 11, 19), txg=1, holds=1))
    result = scheduled.Result(NOW, "2026-11-26", dry_run=True)
    cfg = type("Cfg", (), {"keep_daily": 2, "keep_weekly": 0, "keep_monthly": 0})()
    names = scheduled._plan_prune(result, volume, scheduled._policy(cfg), taken_today=True)
    assert names == ["tank/ganeti/a@2026-11-20", "tank/ganeti/a@2026-11-21"]
    assert result.blocked == [("tank/ganeti/a@held", "1 hold(s)")]
    assert result.kept == {
        "tank/ganeti/a@2026-11-22": ("daily",),
        "tank/ganeti/a@2026-11-26": ("daily", "latest"),
    }


# -- pruning: one zfs program per pool --------------------------------------------


class Recorder:
    """Stands in for zfs.Zfs in pure-logic tests: answers the inventory with
    `rows`, records the calls, and refuses what it is told to. What zfs really
    does with them is tested in the guest (tests/guest/suite/test_scheduled.py)."""

    def __init__(self, rows, refuse=None, failing_volumes=(), program_error=None, snapshot_error=None):
        self.rows = rows
        self.snapshot_error = snapshot_error  # raised by every zfs snapshot
        self.refuse = refuse or {}  # full snapshot name -> reason
        self.failing_volumes = failing_volumes  # their zfs snapshot fails
        self.program_error = program_error  # raised by every zfs program
        self.snapshots, self.programs = [], []

    def list_present(self, names, fields, types, depth):
        return self.rows, []

    def snapshot(self, targets, snapshot_properties):
        self.snapshots.append(list(targets))
        if self.snapshot_error:
            raise self.snapshot_error
        if any(target.partition("@")[0] in self.failing_volumes for target in targets):
            raise zfs_module.ZfsError(["zfs", "snapshot"], "cannot create snapshot: out of space")

    def destroy_snapshots_batch(self, pool, snapshots):
        self.programs.append((pool, list(snapshots)))
        if self.program_error:
            raise self.program_error
        return {name: self.refuse.get(name) for name in snapshots}


class PruneCfg:
    snapshot_parents = "tank/ganeti tank2/ganeti"
    snapshot_format = "%Y-%m-%d"
    keep_daily, keep_weekly, keep_monthly = 2, 0, 0
    zfs_parent = ""  # no retired copies of moves to expire (move.expire_retired: tests/unit/test_move.py)


def week_of(volume, *extra_rows, days=range(20, 26)):
    """A volume with our snapshots of November `days` (txg = the day)."""
    return [row(volume)] + [
        ours(f"{volume}@2026-11-{d}", f"2026-11-{d}", txg=str(d), creation=str(d)) for d in days
    ] + list(extra_rows)


def prune_rows():
    return (
        week_of(
            "tank/ganeti/a",
            row("tank/ganeti/a@manual", "snapshot", createtxg="1"),  # not ours
            ours("tank/ganeti/a@held", "2026-11-01", txg="2", userrefs="1"),
            ours("tank/ganeti/a@cloned", "2026-11-02", txg="3", clones="tank/ganeti/x"),
        )
        + week_of("tank/ganeti/b")  # its snapshot will fail today
        + week_of("tank/ganeti/c", days=(25, 26))  # done today already; nothing to prune
        + week_of("tank2/ganeti/d")
    )


def old_days(volume):
    # Keep 2 daily: today's (26) and the 25th; the 20th..24th go.
    return [f"{volume}@2026-11-{d}" for d in range(20, 25)]


def test_a_pool_that_times_out_is_given_up_not_retried_volume_by_volume():
    # Before: one `zfs snapshot` per volume after the pool's call timed out,
    # each waiting ZFS_TIMEOUT, all under the exclusive lock.
    timeout = zfs_module.Timeout(["zfs", "snapshot"], "timed out after 120 s")
    zfs = Recorder(prune_rows(), snapshot_error=timeout)
    result = scheduled.run_job(zfs, PruneCfg(), NOW, budget=10**6)
    assert len(zfs.snapshots) == 2  # one per pool, no retries
    assert result.gave_up == {"tank", "tank2"}
    assert sorted(name for name, _error in result.failed) == [
        "tank/ganeti/a@2026-11-26", "tank/ganeti/b@2026-11-26", "tank2/ganeti/d@2026-11-26"]
    assert all("gave up" in error for _name, error in result.failed)
    assert zfs.programs == []  # and nothing pruned there


def test_the_plan_decides_what_is_destroyed_one_program_per_pool():
    zfs = Recorder(prune_rows(), failing_volumes=("tank/ganeti/b",))
    result = scheduled.run_job(zfs, PruneCfg(), NOW, budget=10**6)
    # Never the manual, held or cloned snapshots, nor anything of b, whose
    # snapshot failed today, nor the parents' own.
    assert zfs.programs == [("tank", old_days("tank/ganeti/a")), ("tank2", old_days("tank2/ganeti/d"))]
    assert result.pruned == old_days("tank/ganeti/a") + old_days("tank2/ganeti/d")
    assert result.failed == [("tank/ganeti/b@2026-11-26", "`zfs snapshot` failed: cannot create snapshot: out of space")]
    assert dict(result.blocked) == {"tank/ganeti/a@held": "1 hold(s)", "tank/ganeti/a@cloned": "cloned to tank/ganeti/x"}


def test_a_refused_snapshot_fails_alone():
    busy, cloned = "tank/ganeti/a@2026-11-21", "tank/ganeti/a@2026-11-23"
    zfs = Recorder(prune_rows(), refuse={busy: "not destroyed: held (EBUSY)", cloned: "not destroyed: has clones (EEXIST)"})
    result = scheduled.run_job(zfs, PruneCfg(), NOW, budget=10**6)
    assert result.failed == [(busy, "not destroyed: held (EBUSY)"), (cloned, "not destroyed: has clones (EEXIST)")]
    expected = old_days("tank/ganeti/a") + old_days("tank/ganeti/b") + old_days("tank2/ganeti/d")
    assert result.pruned == [name for name in expected if name not in (busy, cloned)]
    assert "pruned 13, skipped 2, failed 2" in result.summary()


def test_a_program_that_fails_as_a_whole_fails_each_of_its_snapshots():
    error = zfs_module.Timeout(["zfs", "program", "tank", "-", "<15 snapshots>"], "timed out after 120 s")
    zfs = Recorder(prune_rows(), program_error=error)
    result = scheduled.run_job(zfs, PruneCfg(), NOW, budget=10**6)
    assert [pool for pool, _names in zfs.programs] == ["tank", "tank2"]  # not retried, no fallback
    assert result.pruned == []
    expected = old_days("tank/ganeti/a") + old_days("tank/ganeti/b") + old_days("tank2/ganeti/d")
    assert [name for name, _error in result.failed] == expected
    assert all(message == f"not known to be destroyed: {error}" for _name, message in result.failed)


def test_destroy_lists_are_split_by_the_argument_budget():
    rows = [r for volume in ("tank/ganeti/a", "tank/ganeti/b") for r in week_of(volume)]
    doomed = old_days("tank/ganeti/a") + old_days("tank/ganeti/b")
    fixed = ["zfs", "program", "-j", "-m", str(zfs_module.PROGRAM_MEMORY_LIMIT), "tank", "-"]
    fixed_cost = sum(len(argument) + 1 + 8 for argument in fixed)
    each = len("tank/ganeti/a@2026-11-20") + 1 + 8
    budget = fixed_cost + 4 * each  # room for 4 names
    zfs = Recorder(rows)
    result = scheduled.run_job(zfs, PruneCfg(), NOW, budget=budget)
    assert len(zfs.snapshots) == 1  # (its 2 targets still fit)
    assert [names for _pool, names in zfs.programs] == [doomed[0:4], doomed[4:8], doomed[8:]]
    assert result.pruned == doomed
    note = "tank: 10 snapshots to destroy do not fit in one argument list; destroying them in 3 zfs program calls"
    assert note in result.notes
    # One byte less: the fixed part counted is exactly the command's.
    zfs = Recorder(rows)
    scheduled.run_job(zfs, PruneCfg(), NOW, budget=budget - 1)
    assert [len(names) for _pool, names in zfs.programs] == [3, 3, 3, 1]


def test_the_program_argument_list_is_capped_below_its_memory():
    zfs = Recorder(week_of("tank/ganeti/a"))
    scheduled._destroy(zfs, scheduled.Result(NOW, "x", False), "tank", [f"tank/v{i:07d}@x" for i in range(400_000)], 10**9)
    sizes = [sum(len(name) + 9 for name in names) for _pool, names in zfs.programs]
    assert len(sizes) > 1 and max(sizes) <= zfs_module.PROGRAM_ARGUMENTS_LIMIT


def test_dry_run_plans_the_same_and_runs_no_program():
    zfs = Recorder(prune_rows())
    result = scheduled.run_job(zfs, PruneCfg(), NOW, dry_run=True, budget=10**6)
    assert zfs.programs == [] and zfs.snapshots == []
    assert result.pruned == old_days("tank/ganeti/a") + old_days("tank/ganeti/b") + old_days("tank2/ganeti/d")


# -- names, clock, output -------------------------------------------------------


class FakeCfg:
    snapshot_format = "%Y-%m-%d"


def test_snapshot_names_follow_the_format_in_utc():
    cfg = FakeCfg()
    assert scheduled.snapshot_name(cfg, NOW) == "2026-11-26"
    cfg.snapshot_format = "auto-%Y%m%dT%H%MZ"
    assert scheduled.snapshot_name(cfg, NOW) == "auto-20261126T0304Z"
    cfg.snapshot_format = "%Y %m"
    with pytest.raises(UsageError, match="not a valid snapshot name"):
        scheduled.snapshot_name(cfg, NOW)


def test_parse_now_accepts_iso_times_and_means_utc():
    assert scheduled.parse_now("2026-11-26T03:04:05Z") == NOW
    assert scheduled.parse_now("2026-11-26T03:04:05") == NOW
    assert scheduled.parse_now("2026-11-26T05:04:05+02:00") == NOW
    assert scheduled.parse_now("2026-11-26") == datetime.datetime(2026, 11, 26, tzinfo=UTC)
    with pytest.raises(UsageError, match="ISO 8601"):
        scheduled.parse_now("yesterday")


def test_environment_clock_and_option_clock():
    class Args:
        now = None

    assert scheduled.current_time(Args(), {"GANETI_ZFS_NOW": "2026-11-26T03:04:05Z"}) == NOW
    Args.now = "2027-01-01"
    assert scheduled.current_time(Args(), {"GANETI_ZFS_NOW": "2026-11-26"}).year == 2027
    real = scheduled.current_time(type("NoClock", (), {"now": None})(), {})
    assert abs((real - datetime.datetime.now(UTC)).total_seconds()) < 60


def sample_result(dry_run=False):
    result = scheduled.Result(NOW, "2026-11-26", dry_run)
    result.snapshotted = ["tank/ganeti/a", "tank/ganeti/b", "tank2/ganeti/c"]
    result.up_to_date = ["tank/ganeti/d"]
    result.excluded = [("tank/ganeti/e.snap", "export copy")]
    result.pruned = ["tank/ganeti/a@2026-11-01"]
    result.blocked = [("tank/ganeti/b@2026-11-02", "1 hold(s)")]
    result.failed = [("tank2/ganeti/x@2026-11-26", "boom")]
    result.notes = ["tank: split"]
    return result


def test_summary_line():
    assert sample_result().summary() == (
        "snapshotted 3 volumes in 2 pools, pruned 1, skipped 1, failed 1 (1 already done today, 1 excluded)"
    )
    assert sample_result(dry_run=True).summary().startswith("dry run, nothing changed: snapshotted 3 volumes")
    assert scheduled.Result(NOW, "x", False).summary() == "snapshotted 0 volumes in 0 pools, pruned 0, skipped 0, failed 0"


def report(result, **flags):
    args = type("Args", (), dict({"quiet": False, "json": False, "dry_run": result.dry_run}, **flags))()
    out, err = io.StringIO(), io.StringIO()
    scheduled._report(result, args, out, err)
    return out.getvalue(), err.getvalue()


def test_quiet_prints_only_errors():
    out, err = report(sample_result(), quiet=True)
    assert out == ""
    assert err == "ganeti-zfs snapshot: error: tank2/ganeti/x@2026-11-26: boom\n"


def test_normal_and_dry_run_output():
    out, err = report(sample_result())
    assert out == sample_result().summary() + "\n"
    assert "not pruning tank/ganeti/b@2026-11-02: 1 hold(s)" in err and "tank: split" in err
    out, _err = report(sample_result(dry_run=True))
    assert out.splitlines()[:4] == [
        "snapshot tank/ganeti/a@2026-11-26",
        "snapshot tank/ganeti/b@2026-11-26",
        "snapshot tank2/ganeti/c@2026-11-26",
        "destroy tank/ganeti/a@2026-11-01",
    ]


def test_json_output():
    out, _err = report(sample_result(), json=True)
    data = json.loads(out)
    assert data["now"] == "2026-11-26T03:04:05Z"
    assert data["failed"] == [{"name": "tank2/ganeti/x@2026-11-26", "error": "boom"}]
    assert data["skipped"] == [{"snapshot": "tank/ganeti/b@2026-11-02", "reason": "1 hold(s)"}]
    assert data["summary"] == sample_result().summary()


# -- the command line ------------------------------------------------------------


def ganeti_zfs(tmp_path, *argv):
    conf = tmp_path / "extstorage-zfs.conf"
    conf.write_text("ZFS_PARENT=tank/ganeti\n")
    env = dict(os.environ, GANETI_ZFS_CONFIG=str(conf), GANETI_ZFS_LOCK=str(tmp_path / "lock"), PYTHONPATH=REPO)
    return subprocess.run(
        [sys.executable, "-m", "ganeti_zfs.cli", *argv], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_bad_clock_is_one_line_and_a_failure(tmp_path):
    process = ganeti_zfs(tmp_path, "snapshot", "--now", "tomorrow")
    assert process.returncode == 1
    assert process.stdout == ""
    assert process.stderr.count("\n") == 1 and "is not an ISO 8601 time" in process.stderr


def test_an_unconfigured_node_has_nothing_to_snapshot(tmp_path, capsys):
    """Installed but not configured: the daily job succeeds quietly instead of failing every day."""
    from ganeti_zfs import cli

    conf = tmp_path / "extstorage-zfs.conf"
    conf.write_text("# nothing set yet\n")
    assert cli.main(["snapshot", "--quiet", "-c", str(conf)]) == 0
    assert capsys.readouterr() == ("", "")
    assert cli.main(["snapshot", "-c", str(conf)]) == 0
    assert "ZFS_PARENT is not set" in capsys.readouterr().err
