#!/usr/bin/python3
"""Benchmarks at scale, inside the test guest on real ZFS (issue #8).

For N volumes (default 10, 100, 1000) this measures, for each answer the
product gives (Ganeti's lvs/vgs/pvs queries, `ganeti-zfs list`, attach,
create+remove, the scheduled snapshot run and a prune run):

- how many zfs/zpool processes it starts: counted by shims on PATH that log
  every exec and then run the real tool (a separate pass, so the shims'
  cost never enters the timings);
- its wall time, the median of several repetitions, next to the wall time of
  the bare zfs command(s) it ran, replayed on their own in the same run (the
  commands are taken from the product's own debug log, so the comparison is
  exactly "our answer" against "the zfs work that answer needs").

Writes JSON to the path given as the first argument (default: the guest's
shared out/ folder, which `make bench` copies to docs/bench/results.json). No assertions: these
are measurements, reported with the targets from the issue next to them.
"""

import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXT_PARENT = "tank/bench"
LVM_PARENT = "tank/bench-lvm"
VG = "benchvg"
CONFIG = Path("/tmp/bench.conf")
PROVIDER = Path("/usr/share/ganeti/extstorage/zfs")
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
# 1000 is the top size, but creating 2000 zvols and pruning 1000
# snapshots one `zfs destroy` per volume takes over an hour under emulation;
# run it with BENCH_SIZES="10 100 1000" when there is that time.
SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "10 100").split()]

SHIMS = Path(tempfile.mkdtemp(prefix="bench-shims-"))
COUNT_LOG = SHIMS / "execs.log"


def sh(*argv, env=None, check=True):
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    if check and result.returncode:
        raise SystemExit(f"{shlex.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def make_shims():
    for tool in ("zfs", "zpool"):
        real = sh("sh", "-c", f"command -v {tool}").stdout.strip()
        shim = SHIMS / tool
        shim.write_text(f'#!/bin/sh\necho {tool} >>{COUNT_LOG}\nexec {real} "$@"\n')
        shim.chmod(0o755)


def environment(counting=False, debug=False, extra=None):
    env = dict(os.environ, GANETI_ZFS_CONFIG=str(CONFIG), LC_ALL="C")
    if counting:
        env["PATH"] = f"{SHIMS}:{env['PATH']}"
    if debug:
        env["GANETI_ZFS_DEBUG"] = "1"
    env.update(extra or {})
    return env


class Operation:
    """One answer to measure: argv plus the environment Ganeti or cron gives it."""

    def __init__(self, name, argv, extra_env=None, cwd=None, setup=None, undo=None):
        self.name, self.argv, self.extra_env = name, argv, extra_env or {}
        self.cwd, self.setup, self.undo = cwd, setup, undo

    def run(self, **kw):
        if self.setup:
            self.setup()
        started = time.monotonic()
        result = subprocess.run(self.argv, env=environment(extra=self.extra_env, **kw), cwd=self.cwd,
                                capture_output=True, text=True)
        elapsed = time.monotonic() - started
        if result.returncode:
            raise SystemExit(f"{self.name}: {shlex.join(self.argv)} failed: {result.stderr.strip()}")
        if self.undo:
            self.undo()
        return elapsed, result

    def count_processes(self):
        COUNT_LOG.write_text("")
        self.run(counting=True)
        return len(COUNT_LOG.read_text().split())

    def bare_commands(self):
        """The zfs/zpool commands the product ran, from its debug log."""
        _, result = self.run(debug=True)
        marker = "debug: run: "
        return [shlex.split(line.split(marker, 1)[1]) for line in result.stderr.splitlines() if marker in line]


def median_seconds(function, repeat=REPEAT):
    return statistics.median(function() for _ in range(repeat))


def bare_time(commands):
    """Median wall time of replaying `commands` on their own.

    The snapshot job's commands name dated snapshots that no longer exist (or
    already do) when replayed, so each replay snapshots and destroys a fresh
    name instead: the same zfs work, one snapshot call and the same destroys.
    """
    replays = [0]

    def replay():
        replays[0] += 1
        fresh = f"@bare{replays[0]}"
        started = time.monotonic()
        for argv in commands:
            argv = [re.sub(r"@[0-9]{4}-[0-9]{2}-[0-9]{2}(,[^ ]*)?", fresh, word) for word in argv]
            subprocess.run(argv, capture_output=True)
        return time.monotonic() - started
    return median_seconds(replay)


def create_volumes(n):
    """N ext volumes and N LVs, sparse, with no device nodes (volmode=none).

    The device nodes of 2000 zvols would only measure udev; the one volume
    attach is measured on keeps its device.
    """
    for parent in (EXT_PARENT, LVM_PARENT):
        sh("zfs", "create", "-p", "-o", "volmode=none", parent)
    listed = sh("zfs", "list", "-H", "-t", "volume", "-d", "1", "-o", "name", EXT_PARENT).stdout.split()
    have = len([name for name in listed if name.startswith(f"{EXT_PARENT}/vol")])
    for index in range(have, n):
        sh("zfs", "create", "-s", "-V", "16M", "-o", "ganeti-zfs:owner=ext", f"{EXT_PARENT}/vol{index:04d}.ext.disk0")
        sh("zfs", "create", "-s", "-V", "16M", "-o", "ganeti-zfs:owner=lvm", f"{LVM_PARENT}/lv{index:04d}.disk0")


def attach_target():
    name = "attach.ext.disk0"
    dataset = f"{EXT_PARENT}/{name}"
    if sh("zfs", "list", dataset, check=False).returncode:
        sh("zfs", "create", "-s", "-V", "16M", "-o", "volmode=dev", "-o", "ganeti-zfs:owner=ext", dataset)
        sh("udevadm", "settle")
    return name


def provider_env(vol_name, **variables):
    return {"VOL_NAME": vol_name, "EXTP_PROVIDER": "zfs", "EXTP_ACCESS": "kernelspace", **variables}


def operations(day_counter):
    ganeti_lvs = ["lvs", "--noheadings", "--separator=|", "--units=k", "--nosuffix",
                  "-ovg_name,lv_name,lv_attr,lv_kernel_major,lv_kernel_minor,vg_extent_size,stripes,devices"]
    ganeti_vgs = ["vgs", "--noheadings", "--nosuffix", "--units=m", "--unbuffered", "--separator=|",
                  "-ovg_name,vg_free,vg_attr,vg_size", VG]
    ganeti_pvs = ["pvs", "--noheadings", "--nosuffix", "--units=m", "--unbuffered", "--separator=|",
                  "-opv_name,vg_name,pv_free,pv_attr,pv_size,pv_name"]

    def next_day():
        day_counter[0] += 1
        return f"2030-01-{day_counter[0]:02d}T12:00:00Z"

    def snapshot_run():
        # Each repetition is the next day's run: it snapshots every volume and,
        # with KEEP_DAILY=1, prunes the previous day's snapshots.
        return ["ganeti-zfs", "snapshot", "--quiet", "--now", next_day()]

    create_remove = Operation("create+remove one volume", ["sh", "-c", f"{PROVIDER}/create && {PROVIDER}/remove"],
                              provider_env("bench-new.ext.disk0", VOL_SIZE="64"), cwd=PROVIDER)
    return [
        Operation("lvs (Ganeti's global query)", ganeti_lvs),
        Operation("vgs (free space)", ganeti_vgs),
        Operation("pvs", ganeti_pvs),
        Operation("ganeti-zfs list", ["ganeti-zfs", "list"]),
        Operation("attach", [str(PROVIDER / "attach")], provider_env(attach_target()), cwd=PROVIDER),
        create_remove,
        SnapshotOperation("scheduled snapshot + prune run", snapshot_run),
    ]


class SnapshotOperation(Operation):
    """The argv changes every run (the job's clock moves a day each time)."""

    def __init__(self, name, argv_factory):
        super().__init__(name, None)
        self.argv_factory = argv_factory

    def run(self, **kw):
        self.argv = self.argv_factory()
        return super().run(**kw)


def measure(n, day_counter):
    rows = []
    for operation in operations(day_counter):
        processes = operation.count_processes()
        commands = operation.bare_commands()
        ours = median_seconds(lambda: operation.run()[0])
        bare = bare_time(commands)
        rows.append({
            "volumes": n,
            "operation": operation.name,
            "zfs_processes": processes,
            "zfs_commands": [shlex.join(c) for c in commands],
            "median_seconds": round(ours, 4),
            "bare_zfs_median_seconds": None if bare is None else round(bare, 4),
            "ratio": None if not bare else round(ours / bare, 2),
        })
        print(f"N={n:5d} {operation.name:34s} procs={processes:3d} ours={ours:.3f}s"
              + (f" bare={bare:.3f}s ratio={ours / bare:.2f}" if bare else ""), flush=True)
    return rows


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main(output):
    CONFIG.write_text(f"ZFS_PARENT={EXT_PARENT}\nLVM_VG={VG}\nLVM_PARENT={LVM_PARENT}\n"
                      f"SNAPSHOT_PARENTS={EXT_PARENT}\nKEEP_DAILY=1\nKEEP_WEEKLY=0\nKEEP_MONTHLY=0\n")
    make_shims()
    results, day_counter = [], [0]
    for n in SIZES:
        started = time.monotonic()
        create_volumes(n)
        print(f"created {n} + {n} volumes in {time.monotonic() - started:.0f} s", flush=True)
        results += measure(n, day_counter)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu_model(),
        "guest": "QEMU TCG (software emulation), 2 vCPUs",
        "kernel": platform.release(),
        "zfs": Path("/sys/module/zfs/version").read_text().strip(),
        "repetitions": REPEAT,
        "results": results,
    }
    Path(output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    default = Path(os.environ.get("GUEST_OUT", "/tmp")) / "bench.json"
    main(sys.argv[1] if len(sys.argv) > 1 else default)
