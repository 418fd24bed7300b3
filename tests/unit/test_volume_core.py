"""The ownership rule of ganeti_zfs/volume.py for listings (volume.owners):
a mark counts only when set on the zvol itself. Its behaviour with real
ZFS is tested in the guest (tests/guest/suite/test_volume_core.py)."""

from ganeti_zfs import properties, volume

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
