"""The ownership rule of ganeti_zfs/volume.py for listings (volume.owners):
a mark counts only when set on the zvol itself. Its behaviour with real
ZFS is tested in the guest (tests/guest/suite/test_volume_core.py)."""

import pytest

from ganeti_zfs import properties, volume
from ganeti_zfs import zfs as zfs_module
from ganeti_zfs.errors import Error

OWNER = properties.OWNER


def row(name, row_type="volume", owner="-"):
    return {"name": name, "type": row_type, OWNER: owner}


class NoZfs:
    def get_with_source(self, *args, **kwargs):
        raise AssertionError("no zfs process when no parent shows a mark")


def test_marks_directly_under_an_unmarked_parent_are_their_own():
    rows = [row("tank/g", "filesystem"), row("tank/g/a", owner="lvm"), row("tank/g/b", owner="ext"),
            row("tank/g/c"), row("tank/g/c@s", "snapshot", owner="lvm"), row("tank/g/fs", "filesystem", owner="lvm"),
            row("tank/g/fs/d", owner="lvm"), row("tank/g/e", owner="bogus")]
    assert volume.owners(NoZfs(), "tank/g", rows) == {"tank/g/a": "lvm", "tank/g/b": "ext"}


def test_a_marked_parent_asks_zfs_for_the_sources():
    class Zfs:
        calls = []

        def get_with_source(self, name, props, types=None, depth=None):
            self.calls.append((name, tuple(props), types, depth))
            return {
                "tank/g/mine": {OWNER: ("lvm", "local")},
                "tank/g/foreign": {OWNER: ("lvm", "inherited from tank/g")},
            }

    rows = [row("tank/g", "filesystem", owner="lvm"), row("tank/g/mine", owner="lvm"),
            row("tank/g/foreign", owner="lvm")]
    zfs = Zfs()
    assert volume.owners(zfs, "tank/g", rows) == {"tank/g/mine": "lvm"}
    assert zfs.calls == [("tank/g", (OWNER,), ("volume",), 1)]


# -- export snapshots and copies: the one rule (volume.is_export_copy) -------

KIND = properties.SNAPSHOT_KIND


def listed(name, row_type="volume", kind="-", origin="-", owner="ext"):
    return {"name": name, "type": row_type, KIND: kind, "origin": origin, OWNER: owner if row_type == "volume" else "-"}


def test_a_listed_snapshot_is_an_export_snapshot_by_its_own_kind_only():
    rows = [
        listed("tank/g/a"), listed("tank/g/a@ganeti-export", "snapshot", kind="export"),
        listed("tank/g/a@lv.snap", "snapshot", kind="export"),  # lvcreate -s names it after the LV
        listed("tank/g/b"), listed("tank/g/b@ganeti-export", "snapshot"),  # an admin's, same name: not ours
        listed("tank/g/c", kind="export"), listed("tank/g/c@x", "snapshot", kind="export"),  # maybe inherited
        listed("tank/elsewhere/d@x", "snapshot", kind="export"),  # its volume is not listed: cannot be told
    ]
    assert volume.export_snapshots(rows) == {"tank/g/a@ganeti-export", "tank/g/a@lv.snap"}


@pytest.mark.parametrize("dataset, origin, origin_is_export, expected", [
    ("tank/g/a.snap", "tank/g/a@ganeti-export", True, True),
    ("tank/g/renamed", "tank/g/a@whatever", True, True),
    ("tank/g/a.snap", "tank/g/a@ganeti-export", False, False),  # named like ours, not taken by us
    ("tank/g/a.snap", "", True, False),
    ("tank/g/a.snap", "tank/h/a@ganeti-export", True, False),  # of a zvol elsewhere
    ("tank/g/sub/a.snap", "tank/g/a@ganeti-export", True, False),
])
def test_is_export_copy(dataset, origin, origin_is_export, expected):
    assert volume.is_export_copy(dataset, origin, origin_is_export) is expected


@pytest.mark.parametrize("kind, source, expected", [
    ("export", "local", True), ("export", "inherited from tank/g/a", False), ("daily", "local", False), ("-", "-", False),
])
def test_is_export_snapshot(kind, source, expected):
    assert volume.is_export_snapshot(kind, source) is expected


def test_the_daily_job_uses_the_same_rule():
    from ganeti_zfs import scheduled

    def row(name, row_type="volume", **props):
        base = {field: "-" for field in scheduled.INVENTORY_FIELDS}
        base.update(name=name, type=row_type, createtxg="1", creation="1")
        if row_type == "volume":
            base[OWNER] = "ext"
        base.update(props)
        return base

    rows = [row("tank/g", "filesystem", **{OWNER: "-"}),
            row("tank/g/a"), row("tank/g/a@ganeti-export", "snapshot", **{KIND: "export"}),
            row("tank/g/a.snap", origin="tank/g/a@ganeti-export"),
            row("tank/g/b"), row("tank/g/b@ganeti-export", "snapshot"),
            row("tank/g/b.snap", origin="tank/g/b@ganeti-export")]
    excluded = {v.name: v.excluded for v in scheduled.volumes_from_rows(rows, {"tank/g"})}
    assert excluded == {"tank/g/a": "", "tank/g/a.snap": "export copy", "tank/g/b": "", "tank/g/b.snap": ""}


# -- creation: a usable device or nothing ------------------------------------


class Datasets:
    """A zfs of datasets in a dict (name -> properties, all set locally)."""

    def __init__(self, fail=None):
        self.datasets = {"tank/g": {"type": "filesystem"}, "tank/g/a": {"type": "volume", OWNER: "ext"}}
        self.calls = []
        self.fail = fail or {}  # call name -> (exception, True if the change happens anyway)

    def _call(self, name, *args):
        self.calls.append((name, *args))
        error, happens = self.fail.get(name, (None, False))
        if error and not happens:
            raise error
        return error

    def create_volume(self, name, size, sparse=False, blocksize=None, properties=None):
        error = self._call("create", name, dict(properties))
        self.datasets[name] = {"type": "volume", **properties}
        if error:
            raise error

    def snapshot(self, names, props):
        error = self._call("snapshot", names[0])
        self.datasets[names[0]] = {"type": "snapshot", **props}
        if error:
            raise error

    def clone(self, snapshot, target, props):
        error = self._call("clone", target, dict(props))
        self.datasets[target] = {"type": "volume", "origin": snapshot, **props}
        if error:
            raise error

    def get_with_source(self, name, props, **_kwargs):
        if name not in self.datasets:
            raise zfs_module.DoesNotExist(["zfs", "get"], f"cannot open '{name}': dataset does not exist")
        values = dict(self.datasets[name])
        if "@" in name:
            values["clones"] = ",".join(n for n, v in self.datasets.items() if v.get("origin") == name)
        return {name: {prop: (str(values[prop]), "local") if prop in values else ("-", "-") for prop in props}}

    def destroy(self, name, snapshots_too=False, force=False):
        self._call("destroy", name)
        for dataset in list(self.datasets):
            if dataset == name or (snapshots_too and dataset.startswith(name + "@")):
                del self.datasets[dataset]


@pytest.fixture
def devices(monkeypatch):
    """wait_for_device finds the device of every dataset but those in the set."""
    missing = set()

    def wait(dataset, timeout):
        if dataset in missing:
            raise Error(f"no usable device for {dataset} after {timeout:g} s: /dev/zvol/{dataset} does not exist")
        return f"/dev/zvol/{dataset}"

    monkeypatch.setattr(volume, "wait_for_device", wait)
    return missing


def test_create_marks_the_zvol_in_the_create_call_and_returns_its_device(devices):
    zfs = Datasets()
    link = volume.create(zfs, "tank/g/n", 1 << 20, "lvm", 5, sparse=False, extra={"compression": "lz4"})
    assert link == "/dev/zvol/tank/g/n"
    assert zfs.calls == [("create", "tank/g/n", {"compression": "lz4", OWNER: "lvm", "volmode": "dev"})]


def test_create_without_a_device_destroys_what_it_made(devices):
    zfs = Datasets()
    devices.add("tank/g/n")
    with pytest.raises(Error, match="created tank/g/n, but it has no usable device .*; destroyed it again"):
        volume.create(zfs, "tank/g/n", 1 << 20, "ext", 5, sparse=True, volmode="full")
    assert "tank/g/n" not in zfs.datasets and zfs.calls[-1] == ("destroy", "tank/g/n")


def test_a_failed_last_step_destroys_the_zvol_too(devices):
    zfs = Datasets()

    def link(_device):
        raise OSError("no /dev")

    with pytest.raises(OSError):
        volume.create(zfs, "tank/g/n", 1 << 20, "lvm", 5, sparse=False, then=link)
    assert "tank/g/n" not in zfs.datasets


def test_create_killed_at_its_timeout_destroys_the_zvol_that_appeared(devices):
    zfs = Datasets({"create": (zfs_module.Timeout(["zfs"], "timed out"), True)})
    with pytest.raises(zfs_module.Timeout):
        volume.create(zfs, "tank/g/n", 1 << 20, "ext", 5, sparse=True)
    assert "tank/g/n" not in zfs.datasets


def test_create_over_an_existing_dataset_touches_nothing(devices):
    zfs = Datasets({"create": (zfs_module.AlreadyExists(["zfs"], "dataset already exists"), False)})
    zfs.datasets["tank/g/n"] = {"type": "volume"}  # someone else's
    with pytest.raises(zfs_module.AlreadyExists):
        volume.create(zfs, "tank/g/n", 1 << 20, "ext", 5, sparse=True)
    assert "tank/g/n" in zfs.datasets and [c[0] for c in zfs.calls] == ["create"]


def test_cleanup_leaves_a_dataset_that_is_not_ours(devices):
    zfs = Datasets({"create": (zfs_module.Timeout(["zfs"], "timed out"), False)})
    zfs.datasets["tank/g/n"] = {"type": "volume", OWNER: "ext"}  # made meanwhile by another owner
    with pytest.raises(zfs_module.Timeout):
        volume.create(zfs, "tank/g/n", 1 << 20, "lvm", 5, sparse=True)
    assert "tank/g/n" in zfs.datasets


def test_export_copy_is_a_marked_clone_of_an_export_snapshot(devices):
    zfs = Datasets()
    assert volume.create_export_copy(zfs, "tank/g/a@ganeti-export", "tank/g/a.snap", "ext", 5) == "/dev/zvol/tank/g/a.snap"
    assert zfs.datasets["tank/g/a@ganeti-export"][KIND] == "export"
    assert zfs.calls[1] == ("clone", "tank/g/a.snap", {OWNER: "ext", "volmode": "dev"})


@pytest.mark.parametrize("failure", ["clone", "clone-after-making-it", "device", "link"])
def test_a_failed_export_copy_leaves_neither_clone_nor_snapshot(devices, failure):
    fail = {}
    if failure == "clone":
        fail["clone"] = (zfs_module.OutOfSpace(["zfs"], "out of space"), False)
    elif failure == "clone-after-making-it":
        fail["clone"] = (zfs_module.Timeout(["zfs"], "timed out"), True)
    elif failure == "device":
        devices.add("tank/g/lv2")
    zfs = Datasets(fail)

    def link(_device):
        if failure == "link":
            raise Error("cannot link")

    with pytest.raises(Error):
        volume.create_export_copy(zfs, "tank/g/a@lv2", "tank/g/lv2", "lvm", 5, then=link)
    assert sorted(zfs.datasets) == ["tank/g", "tank/g/a"]


def test_an_export_snapshot_that_was_there_already_is_left(devices):
    zfs = Datasets({"snapshot": (zfs_module.AlreadyExists(["zfs"], "dataset already exists"), False)})
    zfs.datasets["tank/g/a@lv2"] = {"type": "snapshot"}  # an admin's
    with pytest.raises(zfs_module.AlreadyExists):
        volume.create_export_copy(zfs, "tank/g/a@lv2", "tank/g/lv2", "lvm", 5)
    assert "tank/g/a@lv2" in zfs.datasets
