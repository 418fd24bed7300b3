"""ganeti_zfs/move.py: the plan, the runner's order and its undo, the retired
copies' expiry, with fakes (what zfs and Ganeti do is in the guest:
tests/guest/cluster/test_zfs_move.py)."""

import io

import pytest

from ganeti_zfs import cluster, move, properties
from ganeti_zfs import zfs as zfs_module
from ganeti_zfs.errors import Error, UsageError

DS = "tank/ganeti/vol.ext.disk0"
TOKEN = "node1:1"


def a_move(running=True, incrementals=1, keep_until="2026-12-09T04:50:00Z", datasets=(DS,)):
    return move.Move("inst1", "node1", "node2", datasets, running, incrementals, TOKEN, "20261202T045000Z",
                     keep_until)


def actions(steps):
    return [(step.action, *step.args) for step in steps]


def test_a_running_instance_is_seeded_incremented_stopped_and_sent_its_final_increment():
    assert actions(move.plan(a_move())) == [
        ("snapshot", 1), ("send", DS, 1, "seed"),
        ("snapshot", 2), ("send", DS, 2, "increment 1"),
        ("shutdown",), ("snapshot", 3), ("send", DS, 3, "final"),
        ("mark_target", DS, "ganeti-move-3"), ("mark_source", DS, "ganeti-move-3"),
        ("failover",), ("startup",), ("retire", DS), ("tidy_target", DS, 3),
    ]


def test_a_stopped_instance_gets_one_full_send_and_is_not_started():
    steps = actions(move.plan(a_move(running=False, incrementals=4, keep_until=None)))
    assert steps == [("snapshot", 1), ("send", DS, 1, "seed"), ("mark_target", DS, "ganeti-move-1"),
                     ("mark_source", DS, "ganeti-move-1"), ("failover",), ("destroy_old", DS),
                     ("tidy_target", DS, 1)]


def test_the_plan_text_shows_the_commands():
    text = "\n".join(step.text for step in move.plan(a_move(datasets=(DS, DS + "x"))))
    assert f"zfs snapshot {DS}@ganeti-move-1 {DS}x@ganeti-move-1" in text  # one atomic snapshot
    assert (f"zfs send -c {DS}@ganeti-move-1 | ssh root@node2 zfs receive -u {DS}.incoming -o volmode=<VOLMODE> "
            f"-o ganeti-zfs:incoming={TOKEN}") in text
    assert (f"zfs send -c -i {DS}@ganeti-move-2 {DS}@ganeti-move-3 | ssh root@node2 zfs receive -u -F "
            f"{DS}.incoming") in text
    assert "gnt-instance failover -f -n node2 inst1" in text
    assert f"zfs rename {DS} {DS}.moved-20261202T045000Z" in text


def test_ssh_is_ganetis_own_strict_root_ssh():
    command = move.ssh_command("node2", "cluster.example.com")
    assert command[0] == "ssh" and command[-1] == "root@node2"
    assert "-oHostKeyAlias=cluster.example.com" in command and "-oStrictHostKeyChecking=yes" in command
    assert "-oGlobalKnownHostsFile=/var/lib/ganeti/known_hosts" in command and "-oBatchMode=yes" in command


def test_remote_zfs_runs_one_quoted_command_line_over_ssh():
    remote = zfs_module.RemoteZfs(["ssh", "root@n2"])
    assert remote.wrap(["zfs", "receive", "-u", "a b"]) == ["ssh", "root@n2", "zfs receive -u 'a b'"]


@pytest.mark.parametrize("found, target, myself, why", [
    (cluster.Instance("i", "node1", True, ()), "node2", "node1", "has no disks"),
    (cluster.Instance("i", "node1", True, ("v", None)), "node2", "node1", "disk 1 is not a zfs ext disk"),
    (cluster.Instance("i", "node1", True, ("v",)), "node3", "node1", "node3 is not a node"),
    (cluster.Instance("i", "node1", True, ("v",)), "node1", "node1", "already on node1"),
    (cluster.Instance("i", "node2", True, ("v",)), "node1", "node1", "run this on the instance's primary node node2"),
])
def test_what_cannot_move_is_refused(found, target, myself, why):
    with pytest.raises(Error, match=why):
        move.check_instance(found, target, myself, "node1", {"node1", "node2"})


def test_an_instance_is_found_in_config_data_with_its_state_and_disks():
    data = {"nodes": {"u1": {"name": "node1"}},
            "disks": {"d0": {"dev_type": "ext", "logical_id": ["zfs", "v0"]}, "d1": {"dev_type": "plain"}},
            "instances": {"i1": {"name": "inst1", "primary_node": "u1", "admin_state": "up", "disks": ["d0", "d1"]}}}
    assert cluster.instance(data, "inst1", "zfs") == cluster.Instance("inst1", "node1", True, ("v0", None))
    with pytest.raises(Error, match="no instance inst2"):
        cluster.instance(data, "inst2", "zfs")


# -- the runner ---------------------------------------------------------------


class FakeZfs:
    """A pool as a dict {dataset or snapshot: {property: (value, source)}}, logging every change."""

    def __init__(self, name, log, datasets=None, fail=None):
        self.name, self.log, self.data, self.fail = name, log, dict(datasets or {}), fail or {}

    def _change(self, *what):
        self.log.append((self.name, *what))
        error = self.fail.get(what[0])
        if error:
            raise error

    def get_with_source(self, name, props, **_):
        if name not in self.data:
            raise zfs_module.DoesNotExist(["zfs", "get"], f"cannot open '{name}': dataset does not exist")
        return {name: {prop: self.data[name].get(prop, ("-", "-")) for prop in props}}

    def snapshot(self, names, props=None):
        self._change("snapshot", *names)
        for name in names:
            self.data[name] = {key: (value, "local") for key, value in (props or {}).items()}

    def send_size(self, snapshot, base=None, compressed=False):
        return 100

    def send_receive(self, snapshot, target, props=None, timeout=None, base=None, compressed=False, receiver=None,
                     progress=None):
        receiver._change("receive", snapshot.rpartition("@")[2], target)
        progress(100)
        receiver.data.setdefault(target, {key: (value, "local") for key, value in (props or {}).items()})
        receiver.data[target + "@" + snapshot.rpartition("@")[2]] = {}

    def rename(self, old, new):
        self._change("rename", old, new)
        for name in list(self.data):
            if name == old or name.startswith(old + "@"):
                self.data[new + name[len(old):]] = self.data.pop(name)

    def set(self, name, props):
        self._change("set", name, dict(props))
        self.data[name].update({key: (value, "local") for key, value in props.items()})

    def inherit(self, name, prop):
        self._change("inherit", name, prop)
        self.data[name].pop(prop, None)

    def destroy(self, name, snapshots_too=False, force=False):
        self._change("destroy", name)
        for key in list(self.data):
            if key == name or (snapshots_too and key.startswith(name + "@")):
                del self.data[key]


def source_pool(log, **fail):
    return FakeZfs("node1", log, {DS: {properties.OWNER: ("ext", "local"), properties.UUID: ("u-1", "local"),
                                       "refreservation": ("0", "default")}}, fail)


def a_runner(log, local, remote, gnt_fail=None, primary="node1", running=True, keep_until="2026-12-09T04:50:00Z"):
    def gnt(argv):
        log.append(("gnt", *argv[1:2]))
        if gnt_fail and argv[1] == gnt_fail:
            raise Error(f"`{' '.join(argv)}` failed: no")
        return ""
    return move.Runner(a_move(running=running, keep_until=keep_until), local, remote, "dev", lambda: primary,
                       gnt=gnt, clock=iter(range(0, 1000, 1)).__next__, stream=io.StringIO())


def test_a_move_runs_in_order_and_leaves_one_disk_on_the_target_and_a_retired_copy():
    log = []
    local, remote = source_pool(log), FakeZfs("node2", log)
    runner = a_runner(log, local, remote)
    summary = runner.run(move.plan(runner.move))
    assert summary.startswith("moved instance inst1 from node1 to node2: 1 disks, 300 sent, ")
    assert "down " in summary and "until 2026-12-09T04:50:00Z" in summary
    # The target: the disk with the source's own marks, nothing else.
    assert set(remote.data) == {DS}
    assert remote.data[DS] == {"volmode": ("dev", "local"), properties.OWNER: ("ext", "local"),
                               properties.UUID: ("u-1", "local")}
    # The source: only the retired copy, no mark of ours, with its expiry.
    retired = f"{DS}.moved-20261202T045000Z"
    assert DS not in local.data and retired in local.data
    assert local.data[retired] == {properties.UUID: ("u-1", "local"),
                                   properties.RETIRED_UNTIL: ("2026-12-09T04:50:00Z", "local"),
                                   "refreservation": ("0", "default")}
    order = [entry for entry in log if entry[0] == "gnt" or entry[1] in ("receive", "rename")]
    assert order == [("node2", "receive", "ganeti-move-1", DS + ".incoming"),
                     ("node2", "receive", "ganeti-move-2", DS + ".incoming"), ("gnt", "shutdown"),
                     ("node2", "receive", "ganeti-move-3", DS + ".incoming"),
                     ("node2", "rename", DS + ".incoming", DS), ("gnt", "failover"), ("gnt", "startup"),
                     ("node1", "rename", DS, retired)]


def test_the_target_is_marked_current_before_the_failover_for_the_pre_hook():
    log = []
    local, remote = source_pool(log), FakeZfs("node2", log)
    runner = a_runner(log, local, remote, gnt_fail="startup", primary="node2")
    with pytest.raises(Error) as raised:
        runner.run(move.plan(runner.move))
    # After the switch nothing is undone: both copies stay, marked current, and the error says how to go back.
    assert "gnt-instance failover -f -n node1 inst1 && gnt-instance startup inst1" in str(raised.value)
    assert remote.data[DS][properties.CURRENT_COPY] == ("ganeti-move-3", "local")
    assert properties.INCOMING not in remote.data[DS]
    assert local.data[DS][properties.CURRENT_COPY] == ("ganeti-move-3", "local")


def undone(log, local, remote):
    assert set(remote.data) == set()
    assert set(local.data) == {DS} and properties.CURRENT_COPY not in local.data[DS]


def test_a_failed_seed_removes_what_was_received_and_the_snapshots():
    log = []
    local = source_pool(log)
    remote = FakeZfs("node2", log, fail={"receive": zfs_module.OutOfSpace(["zfs", "receive"], "out of space")})
    runner = a_runner(log, local, remote)
    with pytest.raises(Error, match="out of space; instance inst1 is still on node1, running, and nothing of it is "
                                    "left on node2"):
        runner.run(move.plan(runner.move))
    undone(log, local, remote)
    assert ("gnt", "startup") not in log  # it was never stopped


def test_a_failed_failover_that_did_not_switch_starts_the_instance_again_and_cleans_the_target():
    log = []
    local, remote = source_pool(log), FakeZfs("node2", log)
    runner = a_runner(log, local, remote, gnt_fail="failover", primary="node1")
    with pytest.raises(Error, match="still on node1, running"):
        runner.run(move.plan(runner.move))
    undone(log, local, remote)
    assert log[-1] == ("gnt", "startup")


def test_undo_never_destroys_a_target_dataset_without_this_moves_token():
    log = []
    local = source_pool(log)
    remote = FakeZfs("node2", log, {DS + ".incoming": {properties.INCOMING: ("node1:0", "local")}},
                     fail={"receive": zfs_module.AlreadyExists(["zfs", "receive"], "destination exists")})
    runner = a_runner(log, local, remote)
    with pytest.raises(Error):
        runner.run(move.plan(runner.move))
    assert DS + ".incoming" in remote.data


def test_progress_shows_bytes_rate_and_time_left():
    progress = move.Progress("seed of v", 4 << 20, io.StringIO())
    assert progress.line(1 << 20, 2) == "seed of v: 1M of 4M, 6 s left, 512K/s   "


# -- the daily job's part --------------------------------------------------------


class ListingZfs:
    def __init__(self, values):
        self.values, self.destroyed = values, []

    def get_with_source(self, parent, props, types=None, depth=None):
        return self.values

    def destroy(self, name, snapshots_too=False, force=False):
        self.destroyed.append(name)


def test_retired_copies_are_destroyed_once_their_time_has_come():
    until = properties.RETIRED_UNTIL
    zfs = ListingZfs({
        "tank/ganeti": {until: ("-", "-")},
        "tank/ganeti/a.moved-1": {until: ("2026-12-09T04:50:00Z", "local")},
        "tank/ganeti/b.moved-1": {until: ("2026-12-10T00:00:00Z", "local")},
        "tank/ganeti/c": {until: ("2026-12-01T00:00:00Z", "inherited from tank/ganeti")},
        "tank/ganeti/d.moved-1": {until: ("soon", "local")},
    })
    now = move.parse_time("2026-12-09T04:50:00Z")
    notes, failed = move.expire_retired(zfs, "tank/ganeti", now)
    assert zfs.destroyed == ["tank/ganeti/a.moved-1"]
    assert notes == ["destroyed tank/ganeti/a.moved-1, a copy retired by a move (kept until 2026-12-09T04:50:00Z)"]
    assert failed == [("tank/ganeti/d.moved-1", f"{until}='soon' is not a time like 2026-12-09T04:50:00Z; keeping it")]
    dry = ListingZfs(zfs.values)
    assert move.expire_retired(dry, "tank/ganeti", now, dry_run=True)[0][0].startswith("would destroy")
    assert dry.destroyed == []


def test_expiry_is_keep_days_ahead():
    assert move.expiry(move.parse_time("2026-12-02T04:50:00Z"), 7) == "2026-12-09T04:50:00Z"


def test_negative_incrementals_are_refused():
    class Args:
        incrementals = -1
    with pytest.raises(UsageError, match="--incrementals must be 0 or more"):
        move.run(Args(), None, None)


# -- the relayed pipe (zfs.Zfs.send_receive with progress), with a stand-in zfs --


def stand_in_zfs(tmp_path, receive):
    script = tmp_path / "zfs"
    script.write_text(f'#!/bin/sh\necho "$@" >>{tmp_path}/argv\n'
                      f'if [ "$1" = send ]; then head -c 3000000 /dev/zero; exit 0; fi\n{receive}\n')
    script.chmod(0o755)
    return zfs_module.Zfs(zfs=str(script), timeout=30)


def test_the_stream_goes_through_with_its_progress_and_an_incremental_is_received_with_rollback(tmp_path):
    zfs = stand_in_zfs(tmp_path, f"cat >{tmp_path}/received")
    seen = []
    zfs.send_receive("p/v@s2", "p/v.incoming", {"a": "b"}, base="p/v@s1", compressed=True, receiver=zfs,
                     progress=seen.append)
    assert (tmp_path / "received").stat().st_size == 3000000 and seen[-1] == 3000000
    # (The two processes start at once: either may log its argv first.)
    assert sorted((tmp_path / "argv").read_text().splitlines()) == ["receive -u -F -o a=b p/v.incoming",
                                                                    "send -c -i p/v@s1 p/v@s2"]


def test_a_receive_that_stops_raises_its_own_error_and_the_send_ends(tmp_path):
    zfs = stand_in_zfs(tmp_path, "head -c 1000 >/dev/null; "
                                 "echo 'cannot receive new filesystem stream: out of space' >&2; exit 1")
    with pytest.raises(zfs_module.OutOfSpace, match="out of space"):
        zfs.send_receive("p/v@s1", "p/v.incoming", receiver=zfs, progress=lambda sent: None)
