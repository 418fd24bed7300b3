"""ganeti_zfs.upgrade's pure parts: reading the original's settings, carrying
them into the config, and which datasets the take-over marks. What ZFS,
dpkg and Ganeti do with it is tested in the guest
(tests/guest/suite/test_upgrade_original.py)."""

import datetime
import types

import pytest

from ganeti_zfs import config, properties, scheduled, upgrade
from ganeti_zfs import zfs as zfs_module
from ganeti_zfs.errors import ConfigError

UUID = "0b8f2a66-6f55-4a4e-9d6b-2c1a3e7f9d10"


def write_tree(tmp_path, defaults, host=None):
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "defaults.sh").write_text(defaults)
    (tree / "defaults.sh").symlink_to("etc/defaults.sh")
    if host is not None:
        (tree / "etc" / "node1.sh").write_text(host)
    return tree


def test_the_host_file_wins_over_defaults_sh_as_the_shell_would_have_it(tmp_path):
    tree = write_tree(
        tmp_path,
        'test -z "$EXTP_ZFS" && EXTP_ZFS=tank/ganeti\ntest -z "$EXTP_VG" && EXTP_VG=ffzgvg\n',
        host="EXTP_ZFS=tank/local\n",
    )
    settings, notes = upgrade.original_settings(str(tree), hostname="node1")
    assert settings == {"ZFS_PARENT": "tank/local", "LVM_VG": "ffzgvg"}
    assert notes == []


def test_shell_code_and_unknown_names_are_skipped_with_a_note(tmp_path):
    tree = write_tree(tmp_path, 'export PATH=/sbin:$PATH\nif true; then :; fi\nEXTP_ZFS=tank/g\n')
    settings, notes = upgrade.original_settings(str(tree), hostname="other")
    assert settings == {"ZFS_PARENT": "tank/g"}
    assert len(notes) == 2 and all(note.startswith("not carried over:") for note in notes)


def test_only_settings_the_config_lacks_are_carried_and_the_file_still_loads(tmp_path):
    cfg_path = tmp_path / "extstorage-zfs.conf"
    cfg_path.write_text("# shipped\n#ZFS_PARENT=\nLVM_VG=mine\n")
    cfg_path.chmod(0o640)
    carried = upgrade.carry_settings(str(cfg_path), {"ZFS_PARENT": "tank/g", "LVM_VG": "ffzgvg",
                                                      "CREATE_OPTIONS": "-s -b 4k"}, "defaults.sh",
                                     today=datetime.date(2026, 12, 1))
    assert carried == {"ZFS_PARENT": "tank/g", "CREATE_OPTIONS": "-s -b 4k"}
    cfg = config.load(str(cfg_path))
    assert (cfg.parent, cfg.lvm_vg, cfg.create_options) == ("tank/g", "mine", "-s -b 4k")
    assert "## Carried over from the original shell tool's defaults.sh" in cfg_path.read_text()
    assert cfg_path.stat().st_mode & 0o777 == 0o640
    # A second time there is nothing left to carry.
    assert upgrade.carry_settings(str(cfg_path), {"ZFS_PARENT": "tank/g"}, "defaults.sh") == {}


def test_a_carry_that_would_break_the_config_writes_nothing(tmp_path):
    cfg_path = tmp_path / "extstorage-zfs.conf"
    cfg_path.write_text("CHECK_CAPACITY_CRIT=50\n")
    before = cfg_path.read_text()
    with pytest.raises(ConfigError):
        upgrade.carry_settings(str(cfg_path), {"CHECK_CAPACITY_WARN": "80"}, "defaults.sh")
    assert cfg_path.read_text() == before


def cfg(lvm_vg="ffzgvg", lvm_parent=""):
    return config.build({"ZFS_PARENT": "tank/g", "LVM_VG": lvm_vg, "LVM_PARENT": lvm_parent})


def volume(owner=("-", "-"), kind="volume"):
    return {"type": (kind, "-"), properties.OWNER: owner, properties.SNAPSHOT_KIND: ("-", "-")}


def snapshot(kind=("-", "-")):
    return {"type": ("snapshot", "-"), properties.OWNER: ("-", "-"), properties.SNAPSHOT_KIND: kind}


def test_the_take_over_rule():
    values = {
        "tank/g": volume(kind="filesystem"),
        f"tank/g/{UUID}.ext.disk0": volume(),
        f"tank/g/{UUID}.disk1": volume(),
        f"tank/g/{UUID}.disk2_data": volume(),
        f"tank/g/{UUID}.disk2_meta": volume(),
        f"tank/g/{UUID}.ext.disk3": volume(owner=("ext", "local")),  # ours already
        f"tank/g/{UUID}.ext.disk4": volume(owner=("lvm", "inherited from tank/g")),  # inherited: not a mark
        "tank/g/notganeti": volume(),
        f"tank/g/{UUID}.ext.disk5": volume(kind="filesystem"),  # not a zvol
        f"tank/g/sub/{UUID}.ext.disk0": volume(),  # not directly under the parent
        f"tank/g/{UUID}.ext.disk0@2026-11-30": snapshot(),
        f"tank/g/{UUID}.ext.disk0@manual": snapshot(),
        f"tank/g/{UUID}.ext.disk3@2026-11-29": snapshot(),
        f"tank/g/{UUID}.ext.disk3@2026-11-28": snapshot(kind=("daily", "local")),
        "tank/g/notganeti@2026-11-30": snapshot(),
        f"tank/g/{UUID}.disk1@2026-13-01": snapshot(),  # not a date
    }
    volumes, snapshots, left = upgrade.plan_take_over(cfg(), values)
    assert volumes == [
        (f"tank/g/{UUID}.disk1", "lvm"),
        (f"tank/g/{UUID}.disk2_data", "lvm"),
        (f"tank/g/{UUID}.disk2_meta", "lvm"),
        (f"tank/g/{UUID}.ext.disk0", "ext"),
        (f"tank/g/{UUID}.ext.disk4", "ext"),
    ]
    assert snapshots == [(f"tank/g/{UUID}.ext.disk0@2026-11-30", "2026-11-30"),
                         (f"tank/g/{UUID}.ext.disk3@2026-11-29", "2026-11-29")]
    assert left == [("tank/g/notganeti", "not a name Ganeti gives")]


def test_lv_names_are_left_alone_without_the_lvm_emulation():
    values = {f"tank/g/{UUID}.disk1": volume()}
    volumes, _snapshots, left = upgrade.plan_take_over(cfg(lvm_vg=""), values)
    assert volumes == [] and left == [(f"tank/g/{UUID}.disk1", "an LV name, but LVM_VG is not set")]


def test_lv_names_under_another_lvm_parent_are_lvs_there_only():
    values = {f"tank/g/{UUID}.disk1": volume(), f"tank/lv/{UUID}.disk1": volume()}
    volumes, _snapshots, left = upgrade.plan_take_over(cfg(lvm_parent="tank/lv"), values)
    assert volumes == [(f"tank/lv/{UUID}.disk1", "lvm")]
    assert left == [(f"tank/g/{UUID}.disk1", "an LV name, but the LVs of ffzgvg are in tank/lv")]


def test_the_lvm_parent_defaults_to_the_ext_parent_and_the_daily_job_lists_it_once():
    assert cfg().lvm_parent == "tank/g"
    assert scheduled.snapshot_parents(cfg()) == [("tank/g", True)]
    assert scheduled.snapshot_parents(cfg(lvm_parent="tank/lv")) == [("tank/g", True), ("tank/lv", False)]


def test_a_missing_parent_is_read_from_the_same_zfs_list():
    stderr = "cannot open 'tank/lv': dataset does not exist\n"
    assert zfs_module.missing_datasets(stderr, ["tank/g", "tank/lv"]) == ["tank/lv"]
    assert zfs_module.missing_datasets(stderr + "something else\n", ["tank/g", "tank/lv"]) is None
    assert zfs_module.missing_datasets(stderr, ["tank/g"]) is None


def test_list_present_returns_the_rows_zfs_printed_before_failing():
    class Runner(zfs_module.Zfs):
        def zfs(self, *args, timeout=None):
            raise zfs_module.classify(["zfs", *args], "cannot open 'tank/lv': dataset does not exist\n", 1,
                                      stdout="tank/g\tfilesystem\n")

    rows, missing = Runner().list_present(["tank/g", "tank/lv"], ["name", "type"])
    assert rows == [{"name": "tank/g", "type": "filesystem"}] and missing == ["tank/lv"]


def test_keep_lvm_parent_pins_0_1s_default_only_where_it_exists(tmp_path):
    cfg_path = tmp_path / "extstorage-zfs.conf"
    existing = {"tank/gnt"}
    fake = types.SimpleNamespace(exists=lambda name: name in existing)
    cfg_path.write_text("ZFS_PARENT=tank/ganeti\nLVM_VG=gnt\n")
    assert upgrade.keep_lvm_parent(str(cfg_path), fake, say=lambda text: None) == "tank/gnt"
    assert config.load(str(cfg_path)).lvm_parent == "tank/gnt"
    assert upgrade.keep_lvm_parent(str(cfg_path), fake, say=lambda text: None) is None  # set now
    cfg_path.write_text("ZFS_PARENT=tank/ganeti\nLVM_VG=other\n")
    assert upgrade.keep_lvm_parent(str(cfg_path), fake, say=lambda text: None) is None
    assert config.load(str(cfg_path)).lvm_parent == "tank/ganeti"
