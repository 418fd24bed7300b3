#!/usr/bin/python3
"""Render bench/guest_bench.py's JSON as the Markdown tables in docs/benchmarks.md.

    bench/report.py RESULTS.json [FINDINGS.md]

FINDINGS.md (written by hand: what the numbers mean) is appended unchanged.
"""

import json
import sys

# The targets, per operation: (most zfs processes, largest time ratio).
TARGETS = {
    "lvs (Ganeti's global query)": (1, None),
    "vgs (free space)": (1, None),
    "pvs": (1, None),
    "ganeti-zfs list": (1, None),
    "attach": (1, 1.3),
    # 1 listing + 1 `zfs snapshot` per pool (the benchmark has one pool).
    "scheduled snapshot run": (2, None),
}
# Answers whose cost has a size to grow with (the growth check), after the
# interpreter's start-up alone, whose growth is the run's noise.
FLOOR = "python3 -c pass (start-up alone)"
GROWING = (FLOOR, "lvs (Ganeti's global query)", "vgs (free space)", "pvs", "ganeti-zfs list",
           "scheduled snapshot run", "prune run")


def verdict(row):
    most_processes, largest_ratio = TARGETS.get(row["operation"], (None, None))
    notes = []
    if most_processes is not None:
        notes.append("ok" if row["zfs_processes"] <= most_processes else f"MISSED (target {most_processes})")
    if largest_ratio is not None and row["ratio"] is not None:
        notes.append("ok" if row["ratio"] <= largest_ratio else f"MISSED (target ≤ {largest_ratio}×)")
    return ", ".join(notes) or "-"


def growth_rows(results):
    """(operation, n1, n2, our growth, bare growth, size growth) between successive sizes."""
    by_operation = {}
    for row in results:
        by_operation.setdefault(row["operation"], []).append(row)
    for operation in GROWING:
        rows = sorted(by_operation.get(operation, []), key=lambda row: row["volumes"])
        for small, large in zip(rows, rows[1:]):
            bare = None
            if small["bare_zfs_median_seconds"] and large["bare_zfs_median_seconds"]:
                bare = large["bare_zfs_median_seconds"] / small["bare_zfs_median_seconds"]
            size = large["answer_size"] / small["answer_size"] if small["answer_size"] else None
            yield operation, small["volumes"], large["volumes"], large["median_seconds"] / small["median_seconds"], bare, size


def _times(value):
    return "-" if value is None else f"{value:.2f}×"


def render(report):
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `make bench` on {report['date']}, in the test guest: {report['guest']}, "
        f"CPU model `{report['cpu']}`, kernel {report['kernel']}, OpenZFS {report['zfs']}.",
        "",
        "Processes are counted by shims on PATH that log every zfs/zpool exec (a separate pass). "
        f"Times are medians of {report['repetitions']} runs; *bare zfs* is the same zfs commands the "
        "answer ran (taken from its debug log) replayed on their own in the same run, so the ratio is "
        "our overhead: Python start-up, argument parsing, formatting, waiting for the device. "
        "Ganeti's lvs and pvs name no VG, so the real LVM's rows are printed first: the real "
        "tool's run (`/sbin/lvs.distrib` with the same arguments) is part of their *bare* time. "
        "attach usually runs no zfs command at all; its *bare zfs* (marked †) is the `zfs list` it "
        "runs when the device cannot answer alone. `python3 -c pass` is the floor any Python "
        "program pays. Software emulation makes every absolute number several times slower than "
        "on hardware; the ratios and the counts are what carry over.",
        "",
        "| volumes | answer | zfs processes | size | ours (s) | bare zfs (s) | ratio | target |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in report["results"]:
        bare = "-" if row["bare_zfs_median_seconds"] is None else f"{row['bare_zfs_median_seconds']:.3f}"
        if row.get("bare_is_reference"):
            bare += " †"
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(f"| {row['volumes']} | {row['operation']} | {row['zfs_processes']} | {row['answer_size']} | "
                     f"{row['median_seconds']:.3f} | {bare} | {ratio} | {verdict(row)} |")
    lines += [
        "",
        "*size*: bytes of output for the listings and attach; volumes snapshotted, or snapshots "
        "pruned, for the job's runs (it runs with `--json`). The snapshot run keeps every "
        "snapshot; the prune run is a second run on the same day with KEEP_DAILY=1, so it only "
        "prunes yesterday's snapshot of every volume.",
        "",
        "## Growth",
        "",
        "How each answer's cost grows from one size to the next, next to the growth of the bare "
        "zfs commands and of the answer itself. The target: no faster than the output. The first "
        "rows, Python's start-up alone, show how much a cost that does not change at all moves "
        "between sizes in this run.",
        "",
        "| answer | volumes | ours grew | bare zfs grew | size grew | target |",
        "|---|---|---:|---:|---:|---|",
    ]
    for operation, small, large, ours, bare, size in growth_rows(report["results"]):
        target = "-" if size is None else ("ok" if ours <= size else "MISSED")
        lines.append(f"| {operation} | {small} → {large} | {_times(ours)} | {_times(bare)} | {_times(size)} | {target} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1]) as file:
        print(render(json.load(file)))
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as file:
            print(file.read(), end="")
