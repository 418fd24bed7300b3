"""tests/guest/vm.py's split of the guest suite across guests (run_sharded)."""

import importlib.util
import json
from pathlib import Path

import pytest

VM_PATH = Path(__file__).resolve().parents[1] / "guest" / "vm.py"
spec = importlib.util.spec_from_file_location("guest_vm_for_shards", VM_PATH)
vm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vm)


def test_every_module_lands_in_exactly_one_shard_in_suite_order():
    modules = [f"test_{i:02}.py" for i in range(13)]
    shards = vm.plan_shards(modules, 2, weights={"test_03.py": 9, "test_07.py": 5})
    assert sorted(m for shard in shards for m in shard) == modules
    assert all(shard == sorted(shard) for shard in shards)


def test_heavy_modules_are_spread():
    weights = {"a.py": 9, "b.py": 5, "c.py": 4, "d.py": 3}
    shards = vm.plan_shards(["a.py", "b.py", "c.py", "d.py", "e.py"], 2, weights=weights)
    loads = sorted(sum(weights.get(m, 1) for m in shard) for shard in shards)
    assert loads == [10, 12]  # a+e | b+c+d: the greedy split of 9,5,4,3,1


def test_fewer_modules_than_shards_gives_no_empty_shard():
    assert vm.plan_shards(["x.py"], 3) == [["x.py"]]


def _run(tmp_path, name, exit_status, tests=(), status="finished"):
    out = tmp_path / name / "out"
    out.mkdir(parents=True)
    (out / "results.json").write_text(json.dumps({"tests": list(tests)}))
    return vm.GuestRun(out, tmp_path / name / "console.log", status, exit_status, 10.0)


@pytest.mark.parametrize("statuses,merged", [((0, 0), 0), ((0, 1), 1), ((5, 0), 0), ((5, 5), 5),
                                              ((0, 103), 103), ((0, None), None)])
def test_exit_statuses_merge_to_the_worst(tmp_path, statuses, merged):
    runs = [_run(tmp_path, f"shard{i}", s) for i, s in enumerate(statuses)]
    assert vm.ShardedRun(runs).exit_status == merged


def test_results_are_joined_and_a_problem_names_its_shard(tmp_path):
    good = _run(tmp_path, "shard1", 0, [{"nodeid": "test_a.py::t"}])
    bad = _run(tmp_path, "shard2", None, [{"nodeid": "test_b.py::t"}], status="timeout")
    run = vm.ShardedRun([good, bad])
    assert [t["nodeid"] for t in run.results["tests"]] == ["test_a.py::t", "test_b.py::t"]
    assert not run.ok and run.status == "timeout"
    assert run.problem().startswith("shard2: the guest did not finish")
