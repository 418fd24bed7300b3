#!/usr/bin/python3
"""Render bench/guest_bench.py's JSON as the Markdown table in docs/benchmarks.md."""

import json
import sys

# The targets, per operation: (most zfs processes, largest time ratio).
TARGETS = {
    "lvs (Ganeti's global query)": (1, None),
    "vgs (free space)": (1, None),
    "pvs": (1, None),
    "ganeti-zfs list": (1, None),
    "attach": (1, 1.3),
}


def verdict(row):
    most_processes, largest_ratio = TARGETS.get(row["operation"], (None, None))
    notes = []
    if most_processes is not None:
        notes.append("ok" if row["zfs_processes"] <= most_processes else f"MISSED (target {most_processes})")
    if largest_ratio is not None and row["ratio"] is not None:
        notes.append("ok" if row["ratio"] <= largest_ratio else f"MISSED (target ≤ {largest_ratio}×)")
    return ", ".join(notes) or "-"


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
        "Software emulation makes every absolute number several times slower than on hardware; "
        "the ratios and the counts are what carry over.",
        "",
        "| volumes | answer | zfs processes | ours (s) | bare zfs (s) | ratio | target |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for row in report["results"]:
        bare = "-" if row["bare_zfs_median_seconds"] is None else f"{row['bare_zfs_median_seconds']:.3f}"
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(f"| {row['volumes']} | {row['operation']} | {row['zfs_processes']} | "
                     f"{row['median_seconds']:.3f} | {bare} | {ratio} | {verdict(row)} |")
    lines += [
        "",
        "The snapshot run covers the ext volumes (SNAPSHOT_PARENTS=the ext parent): one `zfs list` "
        "for the inventory, one `zfs snapshot` for the pool and one `zfs destroy` per volume that "
        "has a snapshot to prune (each repetition is the next day's run, keeping 1 daily). "
        "Pruning is therefore linear in the number of volumes, by design (one destroy per volume).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1]) as file:
        print(render(json.load(file)))
