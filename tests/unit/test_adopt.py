"""`ganeti-zfs adopt`: its refusals and the steps it takes, and the runner's send|receive pipe.

The steps run against a fake Zfs (a dict of datasets): that checks the
command's logic only. What ZFS and Ganeti make of it is checked in
tests/guest/suite/test_adopt.py. The pipe runs real processes, a fake `zfs`
script, to check the argv, the shared timeout and which error wins.
"""

import argparse
import os
import textwrap
import time

import pytest

from ganeti_zfs import adopt, config, lock, properties, volume
from ganeti_zfs import zfs as zfs_module
from ganeti_zfs.errors import Error, UsageError
from ganeti_zfs.lvm import links

MIB = 1 << 20
PARENT = "tank/gnt"
SNAPSHOT = "tank/ganeti/inst1.ext.disk0@2026-11-26"
TARGET = f"{PARENT}/restored1"


class FakeZfs:
    """Datasets in a dict; records every change. Only what adopt calls."""

    def __init__(self):
        self.datasets = {
            PARENT: {"type": "filesystem", "volsize": "-"},
            "tank/ganeti/inst1.ext.disk0": {"type": "volume", "volsize": str(256 * MIB)},
            SNAPSHOT: {"type": "snapshot", "volsize": str(256 * MIB)},
            "tank/ganeti/fs": {"type": "filesystem", "volsize": "-"},
            "tank/ganeti/fs@s": {"type": "snapshot", "volsize": "-"},
        }
        self.changes = []
        self.fail = {}  # change name -> exception to raise instead

    def _row(self, name, fields):
        values = {"name": name, "guid": "1", "used": "0", "available": str(1 << 40), "origin": "-", **self.datasets[name]}
        return {field: values.get(field, "-") for field in fields}

    def list(self, names, fields, types=("volume",), recursive=False, depth=None):
        missing = [name for name in names if name not in self.datasets]
        if missing:
            raise zfs_module.DoesNotExist(["zfs", "list", *names], f"cannot open '{missing[0]}': dataset does not exist")
        rows = [self._row(name, fields) for name in names]
        if depth:
            rows += [self._row(name, fields) for name in self.datasets if name.rpartition("/")[0] in names]
        return rows

    def get(self, name, fields):
        return self.list([name], fields, types=("all",))[0]

    def get_with_source(self, name, props):
        """volume.lookup's question: every value is set locally here."""
        row = self.get(name, props)
        return {name: {prop: (row[prop], "local" if row[prop] != "-" else "-") for prop in props}}

    def exists(self, name):
        return name in self.datasets

    def _change(self, *change):
        self.changes.append(change)
        if change[0] in self.fail:
            raise self.fail[change[0]]

    def send_receive(self, snapshot, target, properties=None, timeout=None):
        self._change("send_receive", snapshot, target, dict(properties), timeout)
        self.datasets[target] = {"type": "volume", "volsize": self.datasets[snapshot]["volsize"], **properties}
        self.datasets[f"{target}@{snapshot.partition('@')[2]}"] = {"type": "snapshot"}

    def destroy(self, name, snapshots_too=False, force=False):
        self._change("destroy", name, snapshots_too)
        for dataset in list(self.datasets):
            if dataset == name or (snapshots_too and dataset.startswith(name + "@")):
                del self.datasets[dataset]

    def set(self, name, props):
        self._change("set", name, dict(props))
        self.datasets[name].update(props)


@pytest.fixture
def cfg():
    return config.build({"ZFS_PARENT": "tank/ganeti", "LVM_VG": "gnt", "LVM_PARENT": PARENT})


@pytest.fixture
def zfs():
    return FakeZfs()


@pytest.fixture(autouse=True)
def fake_links_and_lock(monkeypatch, tmp_path):
    made = []
    monkeypatch.setattr(lock, "LOCK_PATH", str(tmp_path / "lock"))
    monkeypatch.setattr(links, "ensure", lambda vg, lv, dataset, timeout: made.append(("ensure", vg, lv, dataset)))
    monkeypatch.setattr(links, "remove", lambda vg, lv: made.append(("remove", vg, lv)))
    monkeypatch.setattr(volume, "wait_for_device", lambda dataset, timeout: made.append(("device", dataset)))
    return made


def args(snapshot=SNAPSHOT, name="restored1", dry_run=False, timeout=None):
    return argparse.Namespace(snapshot=snapshot, name=name, dry_run=dry_run, timeout=timeout)


def unfinished_owner(zfs):
    return zfs.changes[0][3][properties.OWNER]


def test_a_copy_becomes_a_thick_lv_without_snapshots(cfg, zfs, fake_links_and_lock, capsys):
    assert adopt.run(args(timeout=600), cfg, zfs) == 0
    owner = unfinished_owner(zfs)
    assert owner.startswith(adopt.COPYING_OWNER_PREFIX) and len(owner) > len(adopt.COPYING_OWNER_PREFIX) + 16
    assert zfs.changes == [
        ("send_receive", SNAPSHOT, TARGET, {properties.OWNER: owner, "volmode": "dev"}, 600),
        ("destroy", f"{TARGET}@2026-11-26", False),
        ("set", TARGET, {"refreservation": "auto"}),
        ("set", TARGET, {properties.OWNER: properties.OWNER_LVM}),
    ]
    assert fake_links_and_lock == [("device", TARGET), ("ensure", "gnt", "restored1", TARGET)]
    out, err = capsys.readouterr()
    assert err == ""
    assert "  gnt-instance add -t plain --disk 0:adopt=restored1,vg=gnt -n NODE -o OS INSTANCE\n" in out
    assert "256 MiB" in out


def test_each_run_marks_its_copy_with_its_own_owner(cfg):
    owners = set()
    for _ in range(2):
        zfs = FakeZfs()
        adopt.run(args(), cfg, zfs)
        owners.add(unfinished_owner(zfs))
    assert len(owners) == 2


def test_dry_run_changes_nothing(cfg, zfs, fake_links_and_lock, capsys):
    assert adopt.run(args(dry_run=True), cfg, zfs) == 0
    assert zfs.changes == [] and fake_links_and_lock == []
    assert capsys.readouterr().out == f"would copy {SNAPSHOT} (256 MiB) to {TARGET}, the LV gnt/restored1\n"


@pytest.mark.parametrize("snapshot, name, error, fragment", [
    ("tank/ganeti/inst1.ext.disk0@nope", "restored1", Error, "snapshot tank/ganeti/inst1.ext.disk0@nope does not exist"),
    ("tank/ganeti/gone@2026-11-26", "restored1", Error, "does not exist"),
    ("tank/ganeti/fs@s", "restored1", Error, "is a snapshot of a filesystem, not of a zvol"),
    ("tank/ganeti/inst1.ext.disk0", "restored1", UsageError, "is not a snapshot name"),
    ("@s", "restored1", UsageError, "is not a snapshot name"),
    ("tank/a@b@c", "restored1", UsageError, "is not a snapshot name"),
    ("tank/a@", "restored1", UsageError, "is not a snapshot name"),
    (SNAPSHOT, "a+b", UsageError, "is invalid"),
    (SNAPSHOT, "x_mlog", UsageError, "reserved"),
    (SNAPSHOT, "../x", UsageError, "is invalid"),
])
def test_bad_input_is_refused_before_any_change(cfg, zfs, fake_links_and_lock, snapshot, name, error, fragment):
    with pytest.raises(error, match=fragment):
        adopt.run(args(snapshot, name), cfg, zfs)
    assert zfs.changes == [] and fake_links_and_lock == []


@pytest.mark.parametrize("existing", [{"type": "volume", "volsize": str(MIB), properties.OWNER: "lvm"}, {"type": "filesystem"}])
def test_an_existing_name_is_refused(cfg, zfs, existing):
    zfs.datasets[TARGET] = existing
    with pytest.raises(Error, match=f"{TARGET} already exists"):
        adopt.run(args(), cfg, zfs)
    assert zfs.changes == []


def test_refused_without_the_lvm_emulation(zfs):
    cfg = config.build({"ZFS_PARENT": "tank/ganeti", "LVM_PARENT": PARENT})
    with pytest.raises(Error, match="LVM_VG is not set"):
        adopt.run(args(), cfg, zfs)
    assert zfs.changes == []


def test_refused_when_the_vg_dataset_is_missing(cfg, zfs):
    del zfs.datasets[PARENT]
    with pytest.raises(Error, match=f"its dataset {PARENT} does not exist"):
        adopt.run(args(), cfg, zfs)
    assert zfs.changes == []


def test_refused_when_the_pv_is_not_allocatable(cfg, zfs):
    zfs.datasets[PARENT][properties.PV_ALLOCATABLE] = "no"
    with pytest.raises(Error, match="not allocatable"):
        adopt.run(args(), cfg, zfs)
    assert zfs.changes == []


def test_a_failed_receive_destroys_only_its_own_unfinished_copy(cfg, zfs):
    def receive_partly(snapshot, target, props, timeout=None):
        zfs.changes.append(("send_receive", snapshot, target, dict(props), timeout))
        zfs.datasets[target] = {"type": "volume", **props}  # what zfs normally removes itself
        raise zfs_module.OutOfSpace(["zfs", "receive"], "cannot receive new filesystem stream: out of space")

    zfs.send_receive = receive_partly
    with pytest.raises(zfs_module.OutOfSpace):
        adopt.run(args(), cfg, zfs)
    assert zfs.changes[1:] == [("destroy", TARGET, True)]
    assert TARGET not in zfs.datasets


def test_a_receive_refused_because_the_name_was_taken_meanwhile_destroys_nothing(cfg, zfs):
    def someone_else_was_first(snapshot, target, props, timeout=None):
        zfs.changes.append(("send_receive",))
        zfs.datasets[target] = {"type": "volume", properties.OWNER: "lvm"}
        raise zfs_module.AlreadyExists(["zfs", "receive"], f"cannot receive new filesystem stream: destination '{target}' exists")

    zfs.send_receive = someone_else_was_first
    with pytest.raises(zfs_module.AlreadyExists):
        adopt.run(args(), cfg, zfs)
    assert zfs.changes == [("send_receive",)]
    assert TARGET in zfs.datasets


def test_a_receive_that_left_nothing_needs_no_cleanup(cfg, zfs):
    zfs.fail["send_receive"] = zfs_module.Timeout(["zfs", "receive"], "timed out after 1 s")
    with pytest.raises(zfs_module.Timeout):
        adopt.run(args(), cfg, zfs)
    assert [change[0] for change in zfs.changes] == ["send_receive"]


@pytest.mark.parametrize("failing", ["destroy", "set"])
def test_a_failure_after_the_receive_destroys_the_copy(cfg, zfs, failing):
    error = zfs_module.OutOfSpace(["zfs", failing], "out of space")
    zfs.fail[failing] = error
    real_destroy = zfs.destroy

    def destroy(name, snapshots_too=False, force=False):
        if name == TARGET:
            zfs.fail.pop("destroy", None)  # only the snapshot's destroy fails
        return real_destroy(name, snapshots_too)

    zfs.destroy = destroy
    with pytest.raises(zfs_module.OutOfSpace):
        adopt.run(args(), cfg, zfs)
    assert zfs.changes[-1] == ("destroy", TARGET, True)
    assert not [name for name in zfs.datasets if name.startswith(TARGET)]


def test_a_link_that_does_not_appear_destroys_the_lv(cfg, zfs, fake_links_and_lock, monkeypatch):
    def no_device(vg, lv, dataset, timeout):
        raise Error("no usable device for tank/gnt/restored1 after 10 s: /dev/zvol/tank/gnt/restored1 does not exist")

    monkeypatch.setattr(links, "ensure", no_device)
    with pytest.raises(Error, match="no usable device"):
        adopt.run(args(), cfg, zfs)
    assert zfs.changes[-1] == ("destroy", TARGET, True)
    assert fake_links_and_lock == [("device", TARGET), ("remove", "gnt", "restored1")]


def test_a_copy_without_a_usable_device_is_destroyed(cfg, zfs, fake_links_and_lock, monkeypatch):
    def no_device(dataset, timeout):
        raise Error(f"no usable device for {dataset} after {timeout:g} s: /dev/zvol/{dataset} does not exist")

    monkeypatch.setattr(volume, "wait_for_device", no_device)
    with pytest.raises(Error, match=f"created {TARGET}, but it has no usable device .*; destroyed it again"):
        adopt.run(args(), cfg, zfs)
    assert zfs.changes[-1] == ("destroy", TARGET, True) and TARGET not in zfs.datasets
    assert fake_links_and_lock == []


def test_a_failed_cleanup_reports_both_failures(cfg, zfs):
    zfs.fail["set"] = zfs_module.OutOfSpace(["zfs", "set"], "out of space")
    real_destroy = zfs.destroy

    def destroy(name, snapshots_too=False, force=False):
        if name == TARGET:
            raise zfs_module.ZfsError(["zfs", "destroy", name], "I/O error")
        return real_destroy(name, snapshots_too)

    zfs.destroy = destroy
    with pytest.raises(Error, match="out of space; removing the unfinished copy failed too: .*I/O error"):
        adopt.run(args(), cfg, zfs)


@pytest.mark.parametrize("text", ["0", "-1", "soon", "nan"])
def test_timeout_must_be_positive_seconds(text):
    with pytest.raises(argparse.ArgumentTypeError):
        adopt.positive_seconds(text)
    assert adopt.positive_seconds("1.5") == 1.5


# -- Zfs.send_receive: real processes, a fake zfs -------------------------------


@pytest.fixture
def fake_zfs(tmp_path):
    """A `zfs` script: `send` and `receive` each do what $SEND / $RECEIVE say (shell),
    after writing their argv to argv.<verb>; the default is a good copy."""
    script = tmp_path / "zfs"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        cd {tmp_path}
        verb=$1
        printf '%s\\n' "$@" >argv.$verb
        case $verb in
            send) eval "${{SEND:-printf stream-data}}" ;;
            receive) eval "${{RECEIVE:-cat >received}}" ;;
        esac
        """))
    script.chmod(0o755)
    return tmp_path


def send_receive(fake_zfs, monkeypatch, send=None, receive=None, timeout=10):
    for name, value in (("SEND", send), ("RECEIVE", receive)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    runner = zfs_module.Zfs(timeout=timeout, zfs=str(fake_zfs / "zfs"))
    try:
        runner.send_receive("tank/a@s", "tank/gnt/b", {properties.OWNER: "x"})
    finally:
        assert runner.calls == 2


def test_the_pipe_copies_with_a_plain_send_and_an_unmounted_receive(fake_zfs, monkeypatch):
    send_receive(fake_zfs, monkeypatch)
    assert (fake_zfs / "argv.send").read_text().split("\n")[:-1] == ["send", "tank/a@s"]
    assert (fake_zfs / "argv.receive").read_text().split("\n")[:-1] == [
        "receive", "-u", "-o", "ganeti-zfs:owner=x", "tank/gnt/b"]
    assert (fake_zfs / "received").read_text() == "stream-data"


def test_the_receive_error_wins_when_the_send_only_lost_its_reader(fake_zfs, monkeypatch):
    with pytest.raises(zfs_module.OutOfSpace) as raised:
        send_receive(fake_zfs, monkeypatch, send="exec yes stream-data",
                     receive="head -c 100000 >/dev/null; echo 'cannot receive new filesystem stream: out of space' >&2; exit 1")
    assert raised.value.command[1] == "receive"


def test_the_send_error_wins_when_it_failed_on_its_own(fake_zfs, monkeypatch):
    with pytest.raises(zfs_module.DoesNotExist) as raised:
        send_receive(fake_zfs, monkeypatch, send="echo \"cannot open 'tank/a@s': dataset does not exist\" >&2; exit 1",
                     receive="cat >/dev/null; echo 'cannot receive: failed to read from stream' >&2; exit 1")
    assert raised.value.command[1] == "send"


def test_an_existing_destination_is_already_exists(fake_zfs, monkeypatch):
    with pytest.raises(zfs_module.AlreadyExists):
        send_receive(fake_zfs, monkeypatch, receive="cat >/dev/null; printf \"cannot receive new filesystem stream: "
                     "destination 'tank/gnt/b' exists\\nmust specify -F to overwrite it\\n\" >&2; exit 1")


def test_a_stuck_receive_is_killed_at_the_deadline_with_its_send(fake_zfs, monkeypatch):
    started = time.monotonic()
    with pytest.raises(zfs_module.Timeout, match="timed out after 1.5 s"):
        send_receive(fake_zfs, monkeypatch, send="echo $$ >send.pid; exec yes stream-data",
                     receive="echo $$ >receive.pid; exec sleep 60", timeout=1.5)
    assert time.monotonic() - started < 15
    for pid_file in (fake_zfs / "send.pid", fake_zfs / "receive.pid"):
        # No file: killed before it got that far (only on a very busy machine).
        assert not (pid_file.exists() and os.path.exists(f"/proc/{pid_file.read_text().strip()}"))


def test_a_missing_zfs_is_a_zfs_error(tmp_path):
    runner = zfs_module.Zfs(zfs=str(tmp_path / "no-zfs"))
    with pytest.raises(zfs_module.ZfsError, match="command not found"):
        runner.send_receive("tank/a@s", "tank/gnt/b")
