"""`ganeti-zfs check`: the state logic and the Nagios output line."""

import os
import re
import subprocess
import sys

import pytest

from ganeti_zfs import check, config, scheduled
from ganeti_zfs import zfs as zfs_module
from ganeti_zfs.check import CRITICAL, OK, UNKNOWN, WARNING, Thresholds

LIMITS = Thresholds(warn_hours=26, crit_hours=50, capacity_warn=80, capacity_crit=90)
NOW = 10_000_000
HOUR = 3600
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Nagios plugin output: STATE - text | perfdata ('label'=value[UOM];warn;crit;min;max ...)
LINE = re.compile(r"^ZFS-SNAPSHOTS (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+( \| ([A-Za-z0-9_.]+=([0-9.]+(s|%)?|U)(;[0-9.]*){0,4} ?)+)?$")


def volume(name, snapshot_hours_ago=None, created_hours_ago=1000, excluded=""):
    v = scheduled.Volume(name, NOW - created_hours_ago * HOUR, excluded=excluded)
    if snapshot_hours_ago is not None:
        v.newest_ours_creation = NOW - snapshot_hours_ago * HOUR
    return v


def states(findings):
    return sorted(finding.state for finding in findings)


def test_freshness_thresholds_are_strictly_older_than():
    findings, perfdata, oldest = check.freshness([volume("p/a", 26), volume("p/b", 2)], NOW, LIMITS)
    assert findings == [] and oldest == 26 * HOUR
    assert perfdata == ["volumes=2;;;0", "stale_volumes=0;;;0", "oldest_snapshot_age=93600s;93600;180000;0"]
    findings, _perfdata, _oldest = check.freshness([volume("p/a", 26.5)], NOW, LIMITS)
    assert states(findings) == [WARNING]
    findings, _perfdata, _oldest = check.freshness([volume("p/a", 50.5), volume("p/b", 30)], NOW, LIMITS)
    assert states(findings) == [WARNING, CRITICAL]
    assert findings[0].text == "1 volumes without a snapshot for 50h: p/a 50.5h ago"


def test_a_volume_without_snapshots_is_judged_by_its_own_age():
    new = volume("p/new", created_hours_ago=3)
    assert check.freshness([new], NOW, LIMITS)[0] == []
    old = volume("p/old", created_hours_ago=100)
    (finding,) = check.freshness([old], NOW, LIMITS)[0]
    assert finding.state == CRITICAL and "p/old no snapshot since created 100.0h ago" in finding.text


def test_excluded_volumes_are_not_checked():
    findings, perfdata, _oldest = check.freshness([volume("p/x.snap", 999, excluded="export copy")], NOW, LIMITS)
    assert findings == [] and perfdata[0] == "volumes=0;;;0"


def test_many_stale_volumes_are_counted_not_all_named():
    volumes = [volume(f"p/v{i}", 30 + i) for i in range(8)]
    (finding,) = check.freshness(volumes, NOW, LIMITS)[0]
    assert finding.text.startswith("8 volumes without a snapshot for 26h: p/v7 37.0h ago, p/v6 36.0h ago")
    assert finding.text.endswith("and 3 more")


def pool(name, health="ONLINE", capacity="10"):
    return {"name": name, "health": health, "capacity": capacity}


@pytest.mark.parametrize(
    "health, capacity, expected",
    [
        ("ONLINE", "79", []),
        ("ONLINE", "80", [WARNING]),
        ("ONLINE", "90%", [CRITICAL]),
        ("DEGRADED", "5", [WARNING]),
        ("DEGRADED", "85", [WARNING, WARNING]),
        ("FAULTED", "5", [CRITICAL]),
        ("SUSPENDED", "5", [CRITICAL]),
        ("UNAVAIL", "95", [CRITICAL, CRITICAL]),
    ],
)
def test_pool_health_and_capacity(health, capacity, expected):
    findings, perfdata, status = check.pool_health([pool("tank", health, capacity)], {"tank"}, LIMITS)
    assert states(findings) == expected
    assert perfdata == [f"tank_capacity={capacity.rstrip('%')}%;80;90;0;100"]
    assert status == [f"tank {health} {capacity.rstrip('%')}%"]


def test_only_our_pools_count_and_a_missing_one_is_critical():
    findings, _perfdata, _status = check.pool_health([pool("other", "FAULTED"), pool("tank")], {"tank", "tank2"}, LIMITS)
    assert [(f.state, f.text) for f in findings] == [(CRITICAL, "pool tank2 is not imported")]


def test_summary_line_ok_and_worst_state_wins():
    state, line = check.summarize([], 52, 7200, ["tank ONLINE 3%"], ["volumes=52;;;0", "tank_capacity=3%;80;90;0;100"])
    assert state == OK
    assert line == "ZFS-SNAPSHOTS OK - 52 volumes, newest snapshots at most 2.0h old; pools tank ONLINE 3% | volumes=52;;;0 tank_capacity=3%;80;90;0;100"
    assert LINE.match(line)
    findings = [check.Finding(WARNING, "pool tank is DEGRADED"), check.Finding(CRITICAL, "2 volumes ...")]
    state, line = check.summarize(findings, 52, 0, [], ["volumes=52;;;0"])
    assert state == CRITICAL
    assert line == "ZFS-SNAPSHOTS CRITICAL - 2 volumes ...; pool tank is DEGRADED | volumes=52;;;0"


def test_thresholds_come_from_options_over_config():
    cfg = type("Cfg", (), {
        "check_snapshot_warn_hours": 26.0, "check_snapshot_crit_hours": 50.0,
        "check_capacity_warn": 80, "check_capacity_crit": 90,
    })()
    args = type("Args", (), {"warn_hours": None, "crit_hours": 70.0, "capacity_warn": None, "capacity_crit": 95})()
    assert check.thresholds_from(args, cfg) == Thresholds(26.0, 70.0, 80, 95)
    args.warn_hours = 80.0
    with pytest.raises(check.UsageError):
        check.thresholds_from(args, cfg)


def test_bad_thresholds_are_unknown_in_one_line(tmp_path):
    conf = tmp_path / "extstorage-zfs.conf"
    conf.write_text("ZFS_PARENT=tank/ganeti\n")
    env = dict(os.environ, GANETI_ZFS_CONFIG=str(conf), PYTHONPATH=REPO)
    process = subprocess.run(
        [sys.executable, "-m", "ganeti_zfs.cli", "check", "--warn-hours", "60", "--crit-hours", "10"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert process.returncode == UNKNOWN
    assert process.stdout == "ZFS-SNAPSHOTS UNKNOWN - need 0 < warning hours <= critical hours\n"
    assert LINE.match(process.stdout.rstrip("\n"))


def test_check_own_failures_read_as_unknown(tmp_path, capsys):
    """A missing config or a bad option is UNKNOWN (3) to monitoring, not WARNING/CRITICAL."""
    from ganeti_zfs import cli

    assert cli.main(["check", "-c", str(tmp_path / "missing.conf")]) == 3
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["check", "--no-such-option"]) == 3
    # Other commands keep the usual statuses.
    assert cli.main(["list", "-c", str(tmp_path / "missing.conf")]) == 1


# `zpool list -H -p -o name,health,capacity` as OpenZFS 2.1 prints it: a pool
# whose devices are gone (UNAVAIL, FAULTED) has `-` for every space column.
ZPOOL_LIST_WITH_A_BROKEN_POOL = "tank\tONLINE\t3\ntank2\tUNAVAIL\t-\n"


@pytest.mark.parametrize("health", ["UNAVAIL", "FAULTED"])
def test_a_pool_without_capacity_is_critical_naming_pool_and_health(health):
    rows = zfs_module.parse_rows(ZPOOL_LIST_WITH_A_BROKEN_POOL.replace("UNAVAIL", health), ["name", "health", "capacity"])
    findings, perfdata, status = check.pool_health(rows, {"tank", "tank2"}, LIMITS)
    assert [(f.state, f.text) for f in findings] == [(CRITICAL, f"pool tank2 is {health}")]
    assert perfdata == ["tank_capacity=3%;80;90;0;100", "tank2_capacity=U;80;90;0;100"]
    assert status == ["tank ONLINE 3%", f"tank2 {health}"]


def test_an_online_pool_without_capacity_is_unknown():
    findings, _perfdata, _status = check.pool_health([pool("tank", "ONLINE", "-")], {"tank"}, LIMITS)
    assert states(findings) == [UNKNOWN]


def test_check_of_an_unavailable_pool_is_one_critical_line(tmp_path, capsys, monkeypatch):
    class PoolsOnly:
        def pools(self, fields):
            return zfs_module.parse_rows(ZPOOL_LIST_WITH_A_BROKEN_POOL, fields)

    monkeypatch.setattr(scheduled, "inventory", lambda zfs, parents: ([], []))
    cfg = config.build({"ZFS_PARENT": "tank/ganeti", "SNAPSHOT_PARENTS": "tank/ganeti tank2/ganeti"})
    args = type("Args", (), {"warn_hours": None, "crit_hours": None, "capacity_warn": None,
                             "capacity_crit": None, "now": None})()
    assert check.run(args, cfg, PoolsOnly()) == CRITICAL
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("ZFS-SNAPSHOTS CRITICAL - pool tank2 is UNAVAIL | ")
    assert LINE.match(line)
