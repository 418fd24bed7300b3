"""bench/report.py: the verdicts and the growth table of docs/benchmarks.md."""

import importlib.util
from pathlib import Path

SPEC = importlib.util.spec_from_file_location("report", Path(__file__).parents[2] / "bench" / "report.py")
report = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(report)


def row(operation, volumes, seconds, bare, size, processes=1, reference=False):
    return {"volumes": volumes, "operation": operation, "zfs_processes": processes, "answer_size": size,
            "median_seconds": seconds, "bare_zfs_median_seconds": bare, "bare_is_reference": reference,
            "ratio": round(seconds / bare, 2) if bare else None}


def test_verdicts_name_the_missed_target():
    assert report.verdict(row("lvs (Ganeti's global query)", 10, 1.0, 0.5, 100)) == "ok"
    assert report.verdict(row("vgs (free space)", 10, 1.0, 0.5, 100, processes=2)) == "MISSED (target 1)"
    assert report.verdict(row("attach", 10, 0.12, 0.1, 30, processes=0)) == "ok, ok"
    assert report.verdict(row("attach", 10, 0.2, 0.1, 30, processes=0)) == "ok, MISSED (target ≤ 1.3×)"
    assert report.verdict(row("create+remove one volume", 10, 2.0, 1.0, 1, processes=6)) == "-"


def test_growth_compares_cost_with_the_size_of_the_answer():
    results = [
        row("lvs (Ganeti's global query)", 10, 1.0, 0.2, 500),
        row("lvs (Ganeti's global query)", 100, 2.0, 1.0, 5000),
        row("lvs (Ganeti's global query)", 1000, 30.0, 10.0, 50000),
        row("attach", 10, 0.2, 0.1, 30),  # not a growing answer
    ]
    grown = list(report.growth_rows(results))
    assert [(g[0], g[1], g[2]) for g in grown] == [
        ("lvs (Ganeti's global query)", 10, 100), ("lvs (Ganeti's global query)", 100, 1000)]
    assert grown[0][3:] == (2.0, 5.0, 10.0)
    assert grown[1][3:] == (15.0, 10.0, 10.0)
    table = report.render({"date": "2026-11-26", "guest": "g", "cpu": "c", "kernel": "k", "zfs": "z",
                           "repetitions": 3, "results": results})
    assert "| lvs (Ganeti's global query) | 10 → 100 | 2.00× | 5.00× | 10.00× | ok |" in table
    assert "| lvs (Ganeti's global query) | 100 → 1000 | 15.00× | 10.00× | 10.00× | MISSED |" in table


def test_a_reference_time_is_marked():
    results = [row("attach", 10, 0.12, 0.1, 30, processes=0, reference=True)]
    table = report.render({"date": "d", "guest": "g", "cpu": "c", "kernel": "k", "zfs": "z",
                           "repetitions": 3, "results": results})
    assert "| 10 | attach | 0 | 30 | 0.120 | 0.100 † | 1.20 | ok, ok |" in table
