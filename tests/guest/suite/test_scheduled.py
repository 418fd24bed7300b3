"""`ganeti-zfs snapshot` and `ganeti-zfs check` on real ZFS (issue #6).

One scenario, in order (the tests share the volumes made by the module
fixture): 50 ext volumes on pool tank and 6 emulated-LV volumes on pool
tank2, plus volumes the job must leave alone. The job's clock is moved with
--now to simulate days; the config keeps 3 daily, 1 weekly, 1 monthly so a
week of runs prunes. Expected snapshot sets are worked out by hand in the
comments (retention rules: ganeti_zfs/retention.py).
"""

import json
import os
import re
import subprocess
import time

import pytest

from ganeti_zfs import scheduled
from ganeti_zfs import zfs as zfs_module
from guestlib import run

EXT_PARENT = "tank/sched"  # ZFS_PARENT of this module's own config
LVM_PARENT = "tank2/sched-lvm"  # LVM_PARENT: the second pool
EXT_VOLUMES = [f"{EXT_PARENT}/v{i:02d}" for i in range(50)]
LVM_VOLUMES = [f"{LVM_PARENT}/lv{i}" for i in range(6)]
ELIGIBLE = EXT_VOLUMES + LVM_VOLUMES
OPTED_OUT = f"{EXT_PARENT}/optout"
NOT_OURS = f"{EXT_PARENT}/foreign"
EXPORT_COPY = f"{EXT_PARENT}/v00.snap"
CLONE = f"{EXT_PARENT}/admin-clone"  # an admin's clone of one of our snapshots
CONFIG = "/tmp/test-scheduled.conf"
KIND, DATE = "ganeti-zfs:snapshot", "ganeti-zfs:snapshot-date"


def ganeti_zfs(*argv, check=True, debug=False, config=CONFIG):
    env = dict(os.environ, GANETI_ZFS_CONFIG=config)
    if debug:
        env["GANETI_ZFS_DEBUG"] = "1"  # every zfs command on stderr: we count them
    return run(["ganeti-zfs", *argv], check=check, env=env, timeout=1800)


def snapshot_run(day, *extra, check=True):
    """One job run on `day` (UTC midday); returns (process, its JSON)."""
    process = ganeti_zfs("snapshot", "--json", "--now", f"{day}T12:00:00Z", *extra, check=check, debug=True)
    return process, json.loads(process.stdout)


def zfs_processes(stderr):
    """How many zfs/zpool processes a run started, by subcommand: {"zfs list": 1, ...}."""
    counts = {}
    for line in stderr.splitlines():
        if "debug: run: " in line:
            command = " ".join(line.partition("debug: run: ")[2].split()[:2])
            counts[command] = counts.get(command, 0) + 1
    return counts


def destroy_txgs(pool, snapshot_name):
    """{snapshot: txg} of the destroys of `...@snapshot_name` in the pool's internal history."""
    history = run(["zpool", "history", "-i", pool]).stdout
    pattern = re.compile(rf"\[txg:(\d+)\] destroy (\S+@{re.escape(snapshot_name)}) \(")
    return {match[2]: int(match[1]) for match in pattern.finditer(history)}


def snapshots():
    """{full snapshot name: {prop: value}} under both parents."""
    fields = ["name", "createtxg", "userrefs", "clones", KIND, DATE]
    out = run(["zfs", "list", "-H", "-p", "-t", "snapshot", "-o", ",".join(fields), "-r", EXT_PARENT, LVM_PARENT]).stdout
    return {line.split("\t")[0]: dict(zip(fields, line.split("\t"))) for line in out.splitlines()}


def names_of(volume, listing):
    return {name.partition("@")[2] for name in listing if name.partition("@")[0] == volume}


def write_config():
    with open(CONFIG, "w") as conf:
        conf.write(
            f"ZFS_PARENT={EXT_PARENT}\nLVM_VG=schedvg\nLVM_PARENT={LVM_PARENT}\n"
            "KEEP_DAILY=3\nKEEP_WEEKLY=1\nKEEP_MONTHLY=1\n"
        )


@pytest.fixture(scope="module", autouse=True)
def volumes():
    write_config()
    run(["zfs", "create", "-p", EXT_PARENT])
    run(["zfs", "create", "-p", LVM_PARENT])
    # One shell for all creates: much faster than one Python subprocess each under TCG.
    script = " && ".join(
        [f"zfs create -s -V 16M -o ganeti-zfs:owner=ext {v}" for v in EXT_VOLUMES]
        + [f"zfs create -s -V 16M -o ganeti-zfs:owner=lvm {v}" for v in LVM_VOLUMES]
        + [
            f"zfs create -s -V 16M -o ganeti-zfs:owner=ext -o com.sun:auto-snapshot=false {OPTED_OUT}",
            f"zfs create -s -V 16M {NOT_OURS}",
            # What the provider's `snapshot` action makes for gnt-backup export.
            f"zfs snapshot -o {KIND}=export {EXT_VOLUMES[0]}@ganeti-export",
            f"zfs clone -o ganeti-zfs:owner=ext {EXT_VOLUMES[0]}@ganeti-export {EXPORT_COPY}",
        ]
    )
    run(["sh", "-c", script], timeout=1800)
    yield
    run(["sh", "-c", f"zfs release keep {EXT_VOLUMES[2]}@2026-11-21 || true"])
    run(["zfs", "destroy", "-R", EXT_PARENT], timeout=1800)
    run(["zfs", "destroy", "-R", LVM_PARENT], timeout=1800)
    os.unlink(CONFIG)


def test_first_run_takes_one_atomic_snapshot_per_volume_per_pool():
    process, result = snapshot_run("2026-11-20")
    # One `zfs list`, one `zfs snapshot` process per pool, not one per
    # volume; nothing to prune yet.
    assert zfs_processes(process.stderr) == {"zfs list": 1, "zfs snapshot": 2}, process.stderr
    assert sorted(result["snapshotted"]) == sorted(ELIGIBLE)
    assert result["failed"] == [] and result["pruned"] == []
    assert sorted(e["volume"] for e in result["excluded"]) == sorted([EXPORT_COPY, OPTED_OUT])
    listing = snapshots()
    ours = {name: props for name, props in listing.items() if name.endswith("@2026-11-20")}
    assert sorted(name.partition("@")[0] for name in ours) == sorted(ELIGIBLE)
    assert all(props[KIND] == "daily" and props[DATE] == "2026-11-20" for props in ours.values())
    # Atomic within a pool: every snapshot of the pool has the same createtxg.
    for parent in (EXT_PARENT, LVM_PARENT):
        txgs = {props["createtxg"] for name, props in ours.items() if name.startswith(parent + "/")}
        assert len(txgs) == 1, (parent, txgs)
    # Nothing else was snapshotted: the opted-out, the foreign and the export copy.
    for volume in (OPTED_OUT, NOT_OURS, EXPORT_COPY):
        assert names_of(volume, listing) == set()


def test_second_run_the_same_day_changes_nothing():
    before = snapshots()
    process, result = snapshot_run("2026-11-20")
    assert zfs_processes(process.stderr) == {"zfs list": 1}
    assert result["snapshotted"] == [] and sorted(result["up_to_date"]) == sorted(ELIGIBLE)
    assert result["pruned"] == [] and result["failed"] == []
    assert snapshots() == before
    assert "snapshotted 0 volumes in 0 pools, pruned 0, skipped 0, failed 0" in result["summary"]


def test_two_concurrent_runs_neither_fail_nor_duplicate():
    env = dict(os.environ, GANETI_ZFS_CONFIG=CONFIG)
    argv = ["ganeti-zfs", "snapshot", "--json", "--now", "2026-11-21T12:00:00Z"]
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = []
    for process in (first, second):
        out, err = process.communicate(timeout=1800)
        assert process.returncode == 0, err
        results.append(json.loads(out))
    # One of them did the work; the other, having waited for the lock, found nothing due.
    assert sorted(len(r["snapshotted"]) for r in results) == [0, len(ELIGIBLE)]
    assert sorted(len(r["up_to_date"]) for r in results) == [0, len(ELIGIBLE)]
    listing = snapshots()
    for volume in ELIGIBLE:
        # (v00 also has the export snapshot the fixture made.)
        assert names_of(volume, listing) - {"ganeti-export"} == {"2026-11-20", "2026-11-21"}


def test_a_week_of_runs_prunes_exactly_the_expected_snapshots():
    v00, v01, v02, v03, v04 = EXT_VOLUMES[:5]
    # Things the job must never destroy:
    run(["zfs", "snapshot", f"{v01}@manual-before-upgrade"])  # a manual snapshot
    run(["zfs", "hold", "keep", f"{v02}@2026-11-21"])  # a held one of ours
    snapshot_run("2026-11-22")
    run(["zfs", "clone", f"{v03}@2026-11-22", CLONE])  # a clone of one of ours
    for day in ("2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26"):
        process, result = snapshot_run(day)
        assert result["failed"] == [], result["failed"]
        # The 24th prunes the 21st and the 25th the 22nd, in both pools: one
        # `zfs program` per pool, however many volumes (56) have something
        # to destroy. The 23rd and 26th prune nothing (on the 26th: daily
        # 24, 25, 26, weekly 23, monthly 20), so no program runs.
        programs = {"zfs program": 2} if day in ("2026-11-24", "2026-11-25") else {}
        assert zfs_processes(process.stderr) == {"zfs list": 1, "zfs snapshot": 2, **programs}, (day, process.stderr)
        if day == "2026-11-24":
            # It pruned the 21st (days 20..24: keep 22, 23, 24 daily, the
            # 23rd weekly, the 20th monthly), v02's held one excepted, each
            # pool's in one transaction group.
            pruned = sorted(result["pruned"])
            assert pruned == sorted(f"{v}@2026-11-21" for v in ELIGIBLE if v != v02)
            for pool, parent in (("tank", EXT_PARENT), ("tank2", LVM_PARENT)):
                txgs = destroy_txgs(pool, "2026-11-21")
                ours = {name: txg for name, txg in txgs.items() if name.startswith(parent + "/")}
                assert sorted(ours) == sorted(name for name in pruned if name.startswith(parent + "/"))
                assert len(set(ours.values())) == 1, (pool, ours)
    # A snapshot of someone else's already has the name the 27th would use.
    run(["zfs", "snapshot", f"{v04}@2026-11-27"])
    process, result = snapshot_run("2026-11-27", check=False)
    assert process.returncode == 1
    assert zfs_processes(process.stderr) == {"zfs list": 1, "zfs snapshot": 2, "zfs program": 2}, process.stderr
    assert [f["name"] for f in result["failed"]] == [f"{v04}@2026-11-27"]
    assert f"error: {v04}@2026-11-27: exists and was not taken by this job today" in process.stderr
    skipped = {s["snapshot"]: s["reason"] for s in result["skipped"]}
    assert skipped == {f"{v02}@2026-11-21": "1 hold(s)", f"{v03}@2026-11-22": f"cloned to {CLONE}"}

    listing = snapshots()
    # Days taken: Fri Nov 20 .. Fri Nov 27. Keep 3 daily (25, 26, 27), the
    # first of the newest ISO week (Mon 23), the first of the month (20).
    expected = {"2026-11-20", "2026-11-23", "2026-11-25", "2026-11-26", "2026-11-27"}
    others = [v for v in ELIGIBLE if v not in (v00, v01, v02, v03, v04)]
    for volume in others:
        assert names_of(volume, listing) == expected, volume
    assert names_of(v01, listing) == expected | {"manual-before-upgrade"}
    assert names_of(v02, listing) == expected | {"2026-11-21"}  # held
    assert names_of(v03, listing) == expected | {"2026-11-22"}  # cloned
    # v04's snapshot failed on the 27th, so that run pruned nothing of it: it
    # still has the 24th (which the 26th's run kept as a daily) and the
    # admin's @2026-11-27, which is not ours.
    assert names_of(v04, listing) == {"2026-11-20", "2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27"}
    assert listing[f"{v04}@2026-11-27"][KIND] == "-"
    assert names_of(v00, listing) == expected | {"ganeti-export"}  # the export snapshot stays


def test_held_and_cloned_snapshots_given_to_the_program_fail_alone():
    # The plan never passes them (the week above); if one got there (a hold
    # or a clone made after the job listed them), zfs refuses it, says why,
    # and the others of the same program are still destroyed.
    v02, v03, v06 = EXT_VOLUMES[2], EXT_VOLUMES[3], EXT_VOLUMES[6]
    held, cloned = f"{v02}@2026-11-21", f"{v03}@2026-11-22"
    run(["zfs", "snapshot", f"{v06}@destroy-me"])
    batch = [held, f"{v06}@destroy-me", cloned, f"{v06}@never-existed"]
    results = zfs_module.Zfs().destroy_snapshots_batch("tank", batch)
    assert results == {
        held: "not destroyed: held (zfs hold) or in use (EBUSY)",
        f"{v06}@destroy-me": None,
        cloned: "not destroyed: has clones (EEXIST)",
        f"{v06}@never-existed": None,  # gone counts as destroyed (zfs itself says 0)
    }
    listing = snapshots()
    assert held in listing and listing[held]["userrefs"] == "1"
    assert cloned in listing and listing[cloned]["clones"] == CLONE
    assert f"{v06}@destroy-me" not in listing
    assert run(["zfs", "list", "-H", "-o", "origin", CLONE]).stdout.strip() == cloned


def test_the_program_destroys_only_snapshots_of_its_pool():
    # Its own guard and zfs's: a volume's name (zfs.sync.destroy would
    # destroy the volume) and a snapshot of another pool are refused.
    volume = NOT_OURS
    other_pool = f"{LVM_VOLUMES[0]}@2026-11-20"
    process = run(
        ["zfs", "program", "-j", "tank", "-", volume, other_pool],
        stdin=None,
        input=zfs_module.DESTROY_SNAPSHOTS_PROGRAM,
    )
    assert json.loads(process.stdout) == {"return": {volume: 22, other_pool: 18}}  # EINVAL, EXDEV
    assert zfs_module.destroy_refusal(22) == "not destroyed: not a snapshot (EINVAL)"
    assert zfs_module.destroy_refusal(18) == "not destroyed: not in this pool (EXDEV)"
    run(["zfs", "list", volume, other_pool])  # both still there


def test_quiet_run_prints_only_errors_and_fails():
    v05 = EXT_VOLUMES[5]
    run(["zfs", "snapshot", f"{v05}@2026-11-28"])  # in the way of the 28th's snapshot
    process = ganeti_zfs("snapshot", "--quiet", "--now", "2026-11-28T12:00:00Z", check=False)
    assert process.returncode == 1 and process.stdout == ""
    assert process.stderr == (
        f"ganeti-zfs snapshot: error: {v05}@2026-11-28: exists and was not taken by this job today; not overwriting it\n"
    )
    run(["zfs", "destroy", f"{v05}@2026-11-28"])
    process = ganeti_zfs("snapshot", "--quiet", "--now", "2026-11-28T13:00:00Z")
    assert process.stdout == "" and process.stderr == ""
    listing = snapshots()
    assert all("2026-11-28" in names_of(volume, listing) for volume in ELIGIBLE)


def test_dry_run_changes_nothing():
    before = snapshots()
    process = ganeti_zfs("snapshot", "--dry-run", "--now", "2026-11-29T12:00:00Z")
    assert snapshots() == before
    lines = process.stdout.splitlines()
    assert f"snapshot {EXT_VOLUMES[7]}@2026-11-29" in lines
    assert lines[-1].startswith(f"dry run, nothing changed: snapshotted {len(ELIGIBLE)} volumes in 2 pools")


def test_a_long_argument_list_is_split_and_said():
    process, result = snapshot_run("2026-11-29", "--arg-budget", "1500")
    # 1500 bytes hold 40 `zfs snapshot` targets (tank/sched/v00@2026-11-29,
    # 34 bytes each, after 129 of command and options) and 41 names to
    # destroy (after 90): tank's 50 volumes take 2 of each, tank2's 6 one.
    assert zfs_processes(process.stderr) == {"zfs list": 1, "zfs snapshot": 3, "zfs program": 3}, process.stderr
    assert f"{EXT_PARENT.split('/')[0]}: 50 snapshots do not fit in one argument list" in process.stderr
    # Every volume has one snapshot to prune today (the 26th; v04's 25th).
    note = "tank: 50 snapshots to destroy do not fit in one argument list; destroying them in 2 zfs program calls"
    assert note in process.stderr
    assert len(result["pruned"]) == len(ELIGIBLE)
    assert sorted(result["snapshotted"]) == sorted(ELIGIBLE) and result["failed"] == []
    listing = snapshots()
    assert all("2026-11-29" in names_of(volume, listing) for volume in ELIGIBLE)


def check(*extra, hours_ahead=0):
    moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + hours_ahead * 3600))
    return ganeti_zfs("check", "--now", moment, *extra, check=False)


def test_check_ok_then_warning_then_critical():
    process = check()
    assert process.returncode == 0, process.stdout + process.stderr
    line = process.stdout.rstrip("\n")
    assert "\n" not in line
    assert line.startswith(f"ZFS-SNAPSHOTS OK - {len(ELIGIBLE)} volumes, newest snapshots at most ")
    assert "pools tank ONLINE " in line and "tank2 ONLINE " in line
    assert f" | volumes={len(ELIGIBLE)};;;0 stale_volumes=0;;;0 " in line

    # The newest snapshots were taken minutes ago (whatever day the job thought it was).
    process = check(hours_ahead=30)
    assert process.returncode == 1, process.stdout
    assert process.stdout.startswith(f"ZFS-SNAPSHOTS WARNING - {len(ELIGIBLE)} volumes without a snapshot for 26h: ")
    process = check(hours_ahead=60)
    assert process.returncode == 2, process.stdout
    assert process.stdout.startswith(f"ZFS-SNAPSHOTS CRITICAL - {len(ELIGIBLE)} volumes without a snapshot for 50h: ")
    # Thresholds from the command line win over the config.
    process = check("--warn-hours", "100", "--crit-hours", "200", hours_ahead=60)
    assert process.returncode == 0, process.stdout
    process = check("--capacity-warn", "0", "--capacity-crit", "100")
    assert process.returncode == 1 and "pool tank is " in process.stdout and "% full" in process.stdout


def test_one_bad_volume_does_not_block_its_pool():
    # zfs refuses a snapshot name over 255 characters, and with it the whole
    # atomic call: the job then retries each volume of the pool alone.
    long_volume = f"{EXT_PARENT}/" + "x" * (250 - len(EXT_PARENT))
    run(["zfs", "create", "-s", "-V", "16M", "-o", "ganeti-zfs:owner=ext", long_volume])
    process, result = snapshot_run("2026-11-30", check=False)
    assert process.returncode == 1
    assert [f["name"] for f in result["failed"]] == [f"{long_volume}@2026-11-30"]
    assert "snapshotting 51 volumes together failed" in process.stderr
    # 1 failed batch + 51 single calls on tank, 1 call on tank2; pruning
    # still one program per pool.
    assert zfs_processes(process.stderr) == {"zfs list": 1, "zfs snapshot": 53, "zfs program": 2}, process.stderr
    assert sorted(result["snapshotted"]) == sorted(ELIGIBLE)
    listing = snapshots()
    assert all("2026-11-30" in names_of(volume, listing) for volume in ELIGIBLE)
    assert names_of(long_volume, listing) == set()
    run(["zfs", "destroy", long_volume])


def test_a_full_argument_list_fits_in_the_programs_memory():
    # The most names one program gets: short ones, as many as fit in the
    # argument budget. They do not exist, so nothing is destroyed (and zfs
    # answers 0 for each). Last in the file: it takes a while under emulation.
    fixed = ["zfs", "program", "-j", "-m", str(zfs_module.PROGRAM_MEMORY_LIMIT), "tank", "-"]
    names = [f"tank/gone/{i}@x" for i in range(200_000)]
    batch = scheduled.split_arguments(fixed, names, min(scheduled.argument_budget(), zfs_module.PROGRAM_ARGUMENTS_LIMIT))[0]
    assert len(batch) > 50_000
    results = zfs_module.Zfs(timeout=1800).destroy_snapshots_batch("tank", batch)
    assert len(results) == len(batch) and set(results.values()) == {None}
    # Why PROGRAM_MEMORY_LIMIT: zfs's default memory limit (10 MB) is too small for it.
    process = run(
        ["zfs", "program", "-j", "tank", "-", *batch],
        stdin=None,
        input=zfs_module.DESTROY_SNAPSHOTS_PROGRAM,
        check=False,
        timeout=1800,
    )
    assert process.returncode != 0 and process.stdout == ""
    assert "Memory limit exhausted" in process.stderr, process.stderr
