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

import datetime
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
CONFIG = Path("/tmp/bench.conf")  # keeps 1 daily snapshot: the prune run
KEEP_ALL = Path("/tmp/bench-keep-all.conf")  # the snapshot run, nothing to prune
PROVIDER = Path("/usr/share/ganeti/extstorage/zfs")
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "10 100 1000").split()]

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
    """One answer to measure: argv plus the environment Ganeti or cron gives it.

    `reference`: bare zfs commands to time it against when the answer itself
    runs none (attach's usual path: the comparison is then with the zfs list
    it would otherwise need). `size`: the size of one answer, from its
    stdout, for the growth check (default: bytes of output). `merged`: a
    listing with no VG named, which prints the real LVM's rows first; the
    real tool's run is then part of the bare commands it is compared with.
    """

    def __init__(self, name, argv, extra_env=None, cwd=None, setup=None, reference=None, size=len, merged=False):
        self.name, self.argv, self.extra_env = name, argv, extra_env or {}
        self.cwd, self.setup, self.reference, self.size = cwd, setup, reference, size
        self.merged = merged

    def command(self):
        return self.argv

    def run(self, **kw):
        if self.setup:
            self.setup()
        argv = self.command()
        started = time.monotonic()
        result = subprocess.run(argv, env=environment(extra=self.extra_env, **kw), cwd=self.cwd,
                                capture_output=True, text=True)
        elapsed = time.monotonic() - started
        if result.returncode:
            raise SystemExit(f"{self.name}: {shlex.join(argv)} failed: {result.stderr.strip()}")
        return elapsed, result

    def count_processes(self):
        COUNT_LOG.write_text("")
        self.run(counting=True)
        return len(COUNT_LOG.read_text().split())

    def bare_commands(self):
        """The zfs/zpool commands the product ran, from its debug log; and the answer's size."""
        _, result = self.run(debug=True)
        marker = "debug: run: "
        commands = [shlex.split(line.split(marker, 1)[1]) for line in result.stderr.splitlines() if marker in line]
        if self.merged:
            commands.insert(0, [f"/sbin/{self.argv[0]}.distrib", *self.argv[1:]])
        return commands, self.size(result.stdout)


class JobOperation(Operation):
    """A run of the snapshot job: each run is a later day (its --now moves on)."""

    def __init__(self, name, clock, config, size, before=None):
        super().__init__(name, None, {"GANETI_ZFS_CONFIG": str(config)}, size=size)
        self.clock, self.before = clock, before

    def command(self):
        day = self.before() if self.before else self.clock.next_day()
        return ["ganeti-zfs", "snapshot", "--json", "--now", day]


class Clock:
    """The days the benchmark's snapshot runs pretend to run on."""

    def __init__(self):
        self.days = 0

    def next_day(self):
        self.days += 1
        moment = datetime.datetime(2030, 1, 1, 12) + datetime.timedelta(days=self.days)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def median_seconds(function, repeat=REPEAT):
    return statistics.median(function() for _ in range(repeat))


_DATED_SNAPSHOT = re.compile(r"@[0-9]{4}-[0-9]{2}-[0-9]{2}(,[^ ]*)?")


def bare_time(commands, prepare=None):
    """Median wall time of replaying `commands` on their own.

    The snapshot job's commands name dated snapshots that no longer exist (or
    already do) when replayed, so each replay uses a fresh name instead (made
    beforehand by `prepare(name)` when the commands destroy them): the same
    zfs work, the same number of processes. A `zfs program` replay gets the
    package's own channel program on stdin, as the job gives it.
    """
    replays = [0]

    def replay():
        replays[0] += 1
        fresh = f"bare{replays[0]}"
        if prepare:
            prepare(fresh)
        started = time.monotonic()
        for argv in commands:
            argv = [_DATED_SNAPSHOT.sub(f"@{fresh}", word) for word in argv]
            subprocess.run(argv, capture_output=True, input=_stdin_of(argv), text=True)
        elapsed = time.monotonic() - started
        # The replayed snapshots must not pile up into the next measurements.
        subprocess.run(["zfs", "destroy", "-r", f"{EXT_PARENT}@{fresh}"], capture_output=True)
        return elapsed
    return median_seconds(replay)


def _stdin_of(argv):
    if argv[1:2] == ["program"] and "-" in argv:
        from ganeti_zfs import zfs as zfs_module  # the installed package's program
        return zfs_module.DESTROY_SNAPSHOTS_PROGRAM
    return None


def snapshot_everything(name):
    sh("zfs", "snapshot", "-r", f"{EXT_PARENT}@{name}")


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


def json_count(key):
    return lambda stdout: len(json.loads(stdout)[key])


def operations(clock):
    ganeti_lvs = ["lvs", "--noheadings", "--separator=|", "--units=k", "--nosuffix",
                  "-ovg_name,lv_name,lv_attr,lv_kernel_major,lv_kernel_minor,vg_extent_size,stripes,devices"]
    ganeti_vgs = ["vgs", "--noheadings", "--nosuffix", "--units=m", "--unbuffered", "--separator=|",
                  "-ovg_name,vg_free,vg_attr,vg_size", VG]
    ganeti_pvs = ["pvs", "--noheadings", "--nosuffix", "--units=m", "--unbuffered", "--separator=|",
                  "-opv_name,vg_name,pv_free,pv_attr,pv_size,pv_name"]
    attached = attach_target()
    # The zfs list attach runs when it cannot answer from the device alone.
    attach_list = ["zfs", "list", "-H", "-p", "-o", "name,volsize,ganeti-zfs:owner", "-t", "volume",
                   f"{EXT_PARENT}/{attached}"]
    create_remove = Operation("create+remove one volume", ["sh", "-c", f"{PROVIDER}/create && {PROVIDER}/remove"],
                              provider_env("bench-new.ext.disk0", VOL_SIZE="64"), cwd=PROVIDER, size=lambda _: 1)

    def snapshot_day_then_prune():
        # The prune run is a second run the same day: a run that keeps
        # everything takes the day's snapshot first (not timed).
        day = clock.next_day()
        sh("ganeti-zfs", "snapshot", "--quiet", "--now", day, env=environment(extra={"GANETI_ZFS_CONFIG": str(KEEP_ALL)}))
        return day

    return [
        Operation("python3 -c pass (start-up alone)", ["python3", "-c", "pass"], size=lambda _: 0),
        Operation("lvs (Ganeti's global query)", ganeti_lvs, merged=True),
        Operation("vgs (free space)", ganeti_vgs),
        Operation("pvs", ganeti_pvs, merged=True),
        Operation("ganeti-zfs list", ["ganeti-zfs", "list"]),
        Operation("attach", [str(PROVIDER / "attach")], provider_env(attached), cwd=PROVIDER, reference=[attach_list]),
        create_remove,
        JobOperation("scheduled snapshot run", clock, KEEP_ALL, json_count("snapshotted")),
        JobOperation("prune run", clock, CONFIG, json_count("pruned"), before=snapshot_day_then_prune),
    ]


def measure(n, clock):
    rows = []
    for operation in operations(clock):
        processes = operation.count_processes()
        commands, size = operation.bare_commands()
        ours = median_seconds(lambda: operation.run()[0])
        measured_against = commands or operation.reference or []
        prepare = snapshot_everything if operation.name == "prune run" else None
        bare = bare_time(measured_against, prepare) if measured_against else None
        rows.append({
            "volumes": n,
            "operation": operation.name,
            "zfs_processes": processes,
            "commands_run": [_shorten(shlex.join(c)) for c in commands],
            "bare_commands": [_shorten(shlex.join(c)) for c in measured_against],
            "bare_is_reference": not commands and bool(operation.reference),
            "answer_size": size,
            "median_seconds": round(ours, 4),
            "bare_zfs_median_seconds": None if bare is None else round(bare, 4),
            "ratio": None if not bare else round(ours / bare, 2),
        })
        print(f"N={n:5d} {operation.name:34s} procs={processes:3d} size={size:7d} ours={ours:.3f}s"
              + (f" bare={bare:.3f}s ratio={ours / bare:.2f}" if bare else ""), flush=True)
    return rows


def _shorten(command, limit=300):
    """A command naming 1000 snapshots is kept readable in the JSON."""
    return command if len(command) <= limit else f"{command[:limit]} … ({len(command)} characters)"


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main(output):
    settings = (f"ZFS_PARENT={EXT_PARENT}\nLVM_VG={VG}\nLVM_PARENT={LVM_PARENT}\n"
                f"SNAPSHOT_PARENTS={EXT_PARENT}\nKEEP_WEEKLY=0\nKEEP_MONTHLY=0\n")
    CONFIG.write_text(settings + "KEEP_DAILY=1\n")
    KEEP_ALL.write_text(settings + "KEEP_DAILY=1000\n")
    make_shims()
    results, clock = [], Clock()
    for n in SIZES:
        started = time.monotonic()
        create_volumes(n)
        print(f"created {n} + {n} volumes in {time.monotonic() - started:.0f} s", flush=True)
        results += measure(n, clock)
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
