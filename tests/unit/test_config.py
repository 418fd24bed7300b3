"""The conffile: original defaults.sh style, our keys, quoting, validation."""

import textwrap

import pytest

from ganeti_zfs import config
from ganeti_zfs.errors import ConfigError


def load_text(tmp_path, text):
    path = tmp_path / "extstorage-zfs.conf"
    path.write_text(textwrap.dedent(text))
    return config.load(str(path))


ORIGINAL_DEFAULTS_SH = """\
    # the original tool's defaults.sh
    test -z "$EXTP_CREATE" && EXTP_CREATE="-s -b 4k -o compression=lz4"
    test -z "$EXTP_VG" && EXTP_VG='ffzgvg'
    test -z "$EXTP_ZFS" && EXTP_ZFS=tmp500g/$EXTP_VG
    export ATTACH_TIMEOUT=5
"""


def test_original_defaults_sh(tmp_path):
    cfg = load_text(tmp_path, ORIGINAL_DEFAULTS_SH)
    assert cfg.parent == "tmp500g/ffzgvg"
    assert cfg.lvm_vg == "ffzgvg"
    assert cfg.lvm_parent == "tmp500g/ffzgvg"
    assert cfg.attach_timeout == 5
    options = cfg.volume_options
    assert options.sparse is True
    assert options.volblocksize == 4096
    assert dict(options.properties) == {"compression": "lz4"}


def test_an_explicit_lvm_parent_is_kept(tmp_path):
    cfg = load_text(tmp_path, "ZFS_PARENT=tank/ganeti\nLVM_VG=gnt\nLVM_PARENT=tank/gnt\n")
    assert cfg.lvm_parent == "tank/gnt"


def test_default_idiom_keeps_an_earlier_value(tmp_path):
    cfg = load_text(tmp_path, """\
        EXTP_ZFS=tank/first
        test -z "$EXTP_ZFS" && EXTP_ZFS=tank/second
    """)
    assert cfg.parent == "tank/first"


def test_our_names_and_defaults(tmp_path):
    cfg = load_text(tmp_path, "ZFS_PARENT=tank/ganeti\nLVM_VG=gnt\n")
    assert cfg.parent == "tank/ganeti"
    # The original's meaning: its LVs lived in EXTP_ZFS.
    assert cfg.lvm_parent == "tank/ganeti"
    assert cfg.dataset("x.ext.disk0") == "tank/ganeti/x.ext.disk0"
    assert cfg.used_property == "used"
    assert cfg.attach_timeout == 10
    assert cfg.debug is False
    assert cfg.volume_options.sparse is True
    assert dict(cfg.volume_options.properties) == {"compression": "lz4"}


def test_aliases(tmp_path):
    cfg = load_text(tmp_path, "EXTP_ZFS=tank/a\nEXTP_USED=logicalused\nEXTP_DESTROY=-r\n")
    assert cfg.parent == "tank/a"
    assert cfg.used_property == "logicalused"
    assert cfg.destroy_options == "-r"


def test_quoting_comments_and_expansion(tmp_path):
    cfg = load_text(tmp_path, """\
        # a comment line

        LVM_VG=gnt   # a trailing comment
        ZFS_PARENT="tank/${LVM_VG}-ext"
        SNAPSHOT_FORMAT='%Y-%m-%d-$LVM_VG'
        ZFS_PROPERTIES="sync=always logbias=throughput"
        SPARSE=no
    """)
    assert cfg.parent == "tank/gnt-ext"
    # single quotes do not expand, as in shell
    assert cfg.snapshot_format == "%Y-%m-%d-$LVM_VG"
    assert cfg.volume_options.sparse is False
    assert dict(cfg.volume_options.properties) == {"compression": "lz4", "sync": "always", "logbias": "throughput"}


def test_unknown_variable_expands_to_nothing(tmp_path):
    cfg = load_text(tmp_path, "ZFS_PARENT=tank/a$NOT_SET\n")
    assert cfg.parent == "tank/a"


def test_our_keys_override_the_create_string(tmp_path):
    cfg = load_text(tmp_path, 'EXTP_CREATE="-b 8k -o compression=gzip"\nVOLBLOCKSIZE=16k\nSPARSE=yes\n')
    assert cfg.volume_options.volblocksize == 16384
    assert cfg.volume_options.sparse is True
    assert dict(cfg.volume_options.properties) == {"compression": "gzip"}


def test_create_string_without_s_is_thick(tmp_path):
    cfg = load_text(tmp_path, 'ZFS_PARENT=tank/a\nEXTP_CREATE="-o compression=lz4"\n')
    assert cfg.volume_options.sparse is False


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("NO_SUCH_KEY=1", "unknown setting 'NO_SUCH_KEY'"),
        ("ZFS_PARENT=tank/a b", "quote a value"),
        ("ZFS_PARENT='tank/a", "No closing quotation"),
        ("just some words", "not a KEY=value line"),
        ("ATTACH_TIMEOUT=soon", "ATTACH_TIMEOUT must be a positive number"),
        ("ATTACH_TIMEOUT=0", "ATTACH_TIMEOUT must be a positive number"),
        ("KEEP_DAILY=-1", "KEEP_DAILY must be a whole number"),
        ("CHECK_CAPACITY_WARN=101", "percentage"),
        ("USED_PROPERTY=referenced", "used or logicalused"),
        ("EXTP_USED=written", "used or logicalused"),
        ("ZFS_PARENT=tank/../etc", "not a valid ZFS dataset name"),
        ("ZFS_PARENT=/tank", "not a valid ZFS dataset name"),
        ("ZFS_PARENT='tank/a;rm -rf /'", "not a valid ZFS dataset name"),
        ("LVM_VG=-gnt", "not a valid LVM volume group name"),
        ("DEBUG=maybe", "must be yes or no"),
        ("SNAPSHOT_FORMAT=daily", "strftime"),
        ("VOLMODE=none", "VOLMODE=none: a zvol with volmode=none has no device node, and Ganeti needs one"),
        ("VOLMODE=partitions", "VOLMODE must be dev, full, geom or default"),
    ],
)
def test_bad_lines_name_the_file_and_line(tmp_path, line, fragment):
    with pytest.raises(ConfigError) as raised:
        load_text(tmp_path, f"# first line\nZFS_PARENT=tank/ok\n{line}\n")
    message = str(raised.value)
    assert fragment in message
    assert f"{tmp_path / 'extstorage-zfs.conf'}:3:" in message
    assert "\n" not in message


@pytest.mark.parametrize("value", ["-R", "-rR", "-Rf", "'-r -R'", "-fR"])
def test_destroy_dash_capital_r_is_refused_with_an_explanation(tmp_path, value):
    with pytest.raises(ConfigError, match="-R would also destroy every clone"):
        load_text(tmp_path, f"ZFS_PARENT=tank/a\nEXTP_DESTROY={value}\n")


@pytest.mark.parametrize("value", ["-p", "--force", "-d"])
def test_other_destroy_options_are_refused(tmp_path, value):
    with pytest.raises(ConfigError, match="only -r and -f"):
        load_text(tmp_path, f"ZFS_PARENT=tank/a\nDESTROY_OPTIONS={value}\n")


@pytest.mark.parametrize(
    "create, fragment",
    [
        ('"-o mountpoint=/"', ":2: unknown EXTP_CREATE 'mountpoint'"),
        ('"-V 10G"', "unsupported zfs create option '-V'"),
        ('"-b 3k"', "power of two"),
        ('"-o compression=lz4;reboot"', "compression must be one of"),
        ('"-s -o"', "-o needs an argument"),
        ('"-o compression"', "-o needs property=value"),
    ],
)
def test_bad_create_strings(tmp_path, create, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        load_text(tmp_path, f"ZFS_PARENT=tank/a\nEXTP_CREATE={create}\n")


def test_zfs_properties_must_be_whitelisted(tmp_path):
    with pytest.raises(ConfigError, match=":2: unknown ZFS_PROPERTIES 'quota'"):
        load_text(tmp_path, 'ZFS_PARENT=tank/a\nZFS_PROPERTIES="quota=1G"\n')


def test_missing_parent_is_an_error_only_when_used(tmp_path):
    cfg = load_text(tmp_path, "LVM_VG=gnt\n")
    with pytest.raises(ConfigError, match="ZFS_PARENT is not set"):
        cfg.parent


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(str(tmp_path / "nope.conf"))


def test_environment_variable_points_at_another_file(tmp_path):
    path = tmp_path / "other.conf"
    path.write_text("ZFS_PARENT=tank2/elsewhere\n")
    cfg = config.load(environ={config.PATH_VARIABLE: str(path)})
    assert cfg.parent == "tank2/elsewhere"
    assert cfg.path == str(path)


def test_unknown_keys_can_be_collected_instead_of_refused(tmp_path):
    path = tmp_path / "typo.conf"
    path.write_text("ZFS_PARENT=tank/a\nATACH_TIMEOUT=5\nexport NEWER_KEY=1\n")
    with pytest.raises(ConfigError, match=rf"{path}:2: unknown setting 'ATACH_TIMEOUT'"):
        config.load(str(path))
    unknown = []
    cfg = config.load(str(path), unknown=unknown)
    assert cfg.parent == "tank/a" and cfg.attach_timeout == 10
    assert unknown == [f"{path}:2: unknown setting 'ATACH_TIMEOUT'", f"{path}:3: unknown setting 'NEWER_KEY'"]
    # Only unknown keys: any other bad line is still an error.
    path.write_text("ZFS_PARENT=tank/a\nATACH_TIMEOUT=5\nnot a setting\n")
    with pytest.raises(ConfigError, match=r":3: not a KEY=value line"):
        config.load(str(path), unknown=[])


@pytest.mark.parametrize("value, first, second, name", [
    ("daily-%a", "2027-12-01", "2027-12-08", "daily-Wed"),
    ("%Y-%m", "2027-12-01", "2027-12-02", "2027-12"),
    ("%m-%d", "2027-12-01", "2028-12-01", "12-01"),
    ("%j", "2027-12-01", "2028-11-30", "335"),  # day of year, across a leap year
])
def test_a_snapshot_format_that_repeats_is_refused_with_two_days(tmp_path, value, first, second, name):
    path = tmp_path / "extstorage-zfs.conf"
    path.write_text(f"ZFS_PARENT=tank/a\nSNAPSHOT_FORMAT='{value}'\n")
    with pytest.raises(ConfigError) as error:
        config.load(str(path))
    message = str(error.value)
    assert message.startswith(f"{path}:2: SNAPSHOT_FORMAT={value!r} does not give every day its own name: ")
    assert f"{first} and {second} are both {name!r}" in message


def test_a_format_that_repeats_only_across_years_is_refused(tmp_path):
    # %U (week of year) with %w repeats between years without %y/%Y.
    with pytest.raises(ConfigError, match=r"does not give every day its own name: 2027-12-01 and 2028-11-29 are both '48-3'"):
        load_text(tmp_path, "ZFS_PARENT=tank/a\nSNAPSHOT_FORMAT=%U-%w\n")


@pytest.mark.parametrize("value", ["%Y-%m-%d", "%Y%m%d", "%Y-%j", "%G-W%V-%u", "%s", "daily-%F", "%Y-%m-%d-%H%M", "%y%m%d-ganeti"])
def test_a_snapshot_format_with_a_name_for_every_day_is_accepted(tmp_path, value):
    cfg = load_text(tmp_path, f"ZFS_PARENT=tank/a\nSNAPSHOT_FORMAT='{value}'\n")
    assert cfg.snapshot_format == value


@pytest.mark.parametrize("value, force", [("", False), ("-r", False), ("-f", True), ("-rf", True), ("'-r -f'", True), ("-fr", True)])
def test_destroy_options_f_means_force(tmp_path, value, force):
    cfg = load_text(tmp_path, f"ZFS_PARENT=tank/a\nEXTP_DESTROY={value}\n")
    assert cfg.destroy_force is force



# -- every key: an explicit attribute, validated on its own line --------------


def test_every_key_is_an_attribute_written_out_in_config_py():
    source = open(config.__file__).read()
    names = source.split('_ATTRIBUTE_NAMES = """', 1)[1].split('"""', 1)[0].split()
    assert list(config.Config.ATTRIBUTES) == list(config.KEYS)
    assert list(config.Config.ATTRIBUTES.values()) == names  # greppable: `grep -n attach_timeout`
    for key, attribute in config.Config.ATTRIBUTES.items():
        assert attribute == key.lower() or (key, attribute) in (("ZFS_PARENT", "zfs_parent"), ("LVM_PARENT", "lvm_parent_setting"))
        assert isinstance(config.Config.__dict__[attribute], config._Setting)
    assert not hasattr(config.Config, "__getattr__")


def test_attributes_read_the_parsed_values(tmp_path):
    cfg = load_text(tmp_path, "ZFS_PARENT=tank/a\nATTACH_TIMEOUT=3\nLVM_PARENT=tank/l\nKEEP_DAILY=2\nDEBUG=yes\n")
    for key, attribute in config.Config.ATTRIBUTES.items():
        assert getattr(cfg, attribute) == cfg.values[key]
    assert (cfg.zfs_parent, cfg.attach_timeout, cfg.lvm_parent_setting, cfg.keep_daily, cfg.debug) == ("tank/a", 3.0, "tank/l", 2, True)
    with pytest.raises(AttributeError):
        cfg.attach_timout


BAD_VALUES = {
    "ZFS_PARENT": "tank/../x", "CREATE_OPTIONS": "-V", "SPARSE": "maybe", "VOLBLOCKSIZE": "3k",
    "COMPRESSION": "fast", "ZFS_PROPERTIES": "quota=1G", "DESTROY_OPTIONS": "-R", "LVM_VG": "-x",
    "LVM_PARENT": "tank//x", "USED_PROPERTY": "free", "ATTACH_TIMEOUT": "0", "ZFS_TIMEOUT": "soon",
    "DEBUG": "2", "SNAPSHOT_PARENTS": "'tank/a tank/../b'", "SNAPSHOT_FORMAT": "daily-%a", "KEEP_DAILY": "-1",
    "KEEP_WEEKLY": "x", "KEEP_MONTHLY": "1.5", "MOVE_KEEP_DAYS": "-1", "CHECK_SNAPSHOT_WARN_HOURS": "-3", "CHECK_SNAPSHOT_CRIT_HOURS": "0",
    "CHECK_CAPACITY_WARN": "101", "CHECK_CAPACITY_CRIT": "x", "VOLMODE": "none",
}


def test_bad_values_cover_every_key():
    assert set(BAD_VALUES) == set(config.KEYS)


@pytest.mark.parametrize("key", list(BAD_VALUES))
def test_every_key_s_bad_value_names_file_line_and_key(tmp_path, key):
    path = tmp_path / "extstorage-zfs.conf"
    path.write_text(f"ZFS_PARENT=tank/a\n# a comment\n{key}={BAD_VALUES[key]}\n")
    with pytest.raises(ConfigError) as error:
        config.load(str(path))
    message = str(error.value)
    assert message.startswith(f"{path}:3: "), message
    assert key in message
    assert "\n" not in message


def test_volmode_is_dev_unless_set(tmp_path):
    assert load_text(tmp_path, "ZFS_PARENT=tank/a\n").volmode == "dev"
    for value in ("default", "full", "geom", "dev"):
        assert load_text(tmp_path, f"ZFS_PARENT=tank/a\nVOLMODE={value}\n").volmode == value
