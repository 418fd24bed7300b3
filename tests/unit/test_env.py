"""Ganeti's environment: VOL_NAME checks, sizes, flags, ext-params."""

import pytest

from ganeti_zfs import env
from ganeti_zfs.errors import UsageError

GOOD_NAME = "0f1e2d3c-aaaa-bbbb-cccc-0123456789ab.ext.disk0"


def parse(**variables):
    return env.parse({"VOL_NAME": GOOD_NAME, **variables})


@pytest.mark.parametrize(
    "name", [GOOD_NAME, GOOD_NAME + ".snap", "a", "A_b-c.d", "x" * env.MAX_NAME_LENGTH]
)
def test_good_names(name):
    assert env.check_volume_name(name) == name


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("", "is empty"),
        ("tank/ganeti", "may contain only"),  # the parent itself, or any path
        ("a/b", "may contain only"),
        ("/abs", "may contain only"),
        ("vol@snap", "may contain only"),
        ("vol#bookmark", "may contain only"),
        ("..", "contains '..'"),
        ("a..b", "contains '..'"),
        (".", "may contain only"),
        (".hidden", "may contain only"),
        ("two words", "may contain only"),
        (" lead", "may contain only"),
        ("tab\there", "may contain only"),
        ("new\nline", "may contain only"),
        ("-o", "may contain only"),  # would read as an option to zfs
        ("a+b", "may contain only"),  # not a valid ZFS name character
        ("semi;colon", "may contain only"),
        ("quote'd", "may contain only"),
        ("x" * (env.MAX_NAME_LENGTH + 1), "longer than 255"),
    ],
)
def test_bad_names(name, fragment):
    with pytest.raises(UsageError, match=fragment):
        env.parse({"VOL_NAME": name})


def test_missing_name():
    with pytest.raises(UsageError, match="VOL_NAME is empty"):
        env.parse({})


def test_full_request():
    request = parse(
        VOL_SIZE="10240",
        VOL_NEW_SIZE="20480",
        VOL_METADATA="originstname+inst1.example.com",
        VOL_CNAME="data",
        VOL_UUID="d2d7f4b0-1111-2222-3333-444455556666",
        VOL_OPEN_EXCLUSIVE="False",
        EXTP_PROVIDER="zfs",
        EXTP_ACCESS="kernelspace",
        EXTP_VOLBLOCKSIZE="16k",
        EXTP_COMPRESSION="zstd",
    )
    assert request.vol_name == GOOD_NAME
    assert request.size_mib == 10240
    assert request.require_size() == 10240
    assert request.new_size_mib == 20480
    assert request.metadata == "originstname+inst1.example.com"
    assert request.cname == "data"
    assert request.uuid == "d2d7f4b0-1111-2222-3333-444455556666"
    assert request.open_exclusive is False
    # Ganeti's own provider/access are not ours to validate; keys lower-cased.
    assert request.ext_params == {"volblocksize": "16k", "compression": "zstd"}


def test_snapshot_request():
    request = parse(VOL_SNAPSHOT_NAME=GOOD_NAME + ".snap", VOL_SNAPSHOT_SIZE="1024")
    assert request.snapshot_name == GOOD_NAME + ".snap"
    assert request.snapshot_size_mib == 1024
    with pytest.raises(UsageError, match="VOL_SNAPSHOT_NAME"):
        parse(VOL_SNAPSHOT_NAME="other/pool")


def test_size_missing():
    request = parse()
    assert request.size_mib is None
    with pytest.raises(UsageError, match="VOL_SIZE is not set"):
        request.require_size()


@pytest.mark.parametrize("variable", ["VOL_SIZE", "VOL_NEW_SIZE", "VOL_SNAPSHOT_SIZE"])
@pytest.mark.parametrize(
    "value, fragment",
    [
        ("0", "must be larger than 0"),
        ("000", "must be larger than 0"),
        ("-1", "whole number of MiB"),
        ("ten", "whole number of MiB"),
        ("1.5", "whole number of MiB"),
        ("10G", "whole number of MiB"),
        (" 10", "whole number of MiB"),
        ("1e3", "whole number of MiB"),
        ("0x10", "whole number of MiB"),
    ],
)
def test_bad_sizes(variable, value, fragment):
    with pytest.raises(UsageError, match=fragment):
        parse(**{variable: value})


@pytest.mark.parametrize("value, expected", [("True", True), ("False", False)])
def test_open_exclusive(value, expected):
    assert parse(VOL_OPEN_EXCLUSIVE=value).open_exclusive is expected


@pytest.mark.parametrize("value", ["true", "yes", "1", ""])
def test_open_exclusive_must_be_what_ganeti_sends(value):
    with pytest.raises(UsageError, match="VOL_OPEN_EXCLUSIVE must be True or False"):
        parse(VOL_OPEN_EXCLUSIVE=value)


def test_verify_needs_no_volume():
    request = env.parse({"EXTP_SPARSE": "no"}, volume_required=False)
    assert request.vol_name == ""
    assert request.ext_params == {"sparse": "no"}
    # but a volume name that is given is still checked
    with pytest.raises(UsageError):
        env.parse({"VOL_NAME": "a/b"}, volume_required=False)


@pytest.mark.parametrize(
    "environ, label",
    [({}, "-"), ({"VOL_NAME": ""}, "-"), ({"VOL_NAME": GOOD_NAME}, GOOD_NAME), ({"VOL_NAME": "a\nb"}, "a\\nb")],
)
def test_volume_label_is_one_printable_word(environ, label):
    assert env.volume_label(environ) == label
