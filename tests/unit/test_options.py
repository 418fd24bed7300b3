"""Per-disk ext-params: only whitelisted keys, every value validated."""

import pytest

from ganeti_zfs import options
from ganeti_zfs.errors import ConfigError

BASE = options.VolumeOptions(sparse=True, volblocksize=None, properties=(("compression", "lz4"),))

GOOD = [
    ("sparse", "yes", lambda o: o.sparse is True),
    ("sparse", "no", lambda o: o.sparse is False),
    ("sparse", "False", lambda o: o.sparse is False),
    ("sparse", "on", lambda o: o.sparse is True),
    ("volblocksize", "512", lambda o: o.volblocksize == 512),
    ("volblocksize", "8k", lambda o: o.volblocksize == 8192),
    ("volblocksize", "16K", lambda o: o.volblocksize == 16384),
    ("volblocksize", "131072", lambda o: o.volblocksize == 131072),
    ("compression", "zstd", lambda o: dict(o.properties)["compression"] == "zstd"),
    ("compression", "zstd-19", lambda o: dict(o.properties)["compression"] == "zstd-19"),
    ("compression", "gzip-9", lambda o: dict(o.properties)["compression"] == "gzip-9"),
    ("compression", "off", lambda o: dict(o.properties)["compression"] == "off"),
    ("sync", "disabled", lambda o: dict(o.properties)["sync"] == "disabled"),
    ("logbias", "throughput", lambda o: dict(o.properties)["logbias"] == "throughput"),
    ("primarycache", "metadata", lambda o: dict(o.properties)["primarycache"] == "metadata"),
    ("secondarycache", "none", lambda o: dict(o.properties)["secondarycache"] == "none"),
    ("copies", "2", lambda o: dict(o.properties)["copies"] == "2"),
]


@pytest.mark.parametrize("key, value, check", GOOD)
def test_good_values(key, value, check):
    result = BASE.with_overrides({key: value})
    assert check(result)
    # the base is left as it was
    assert BASE.sparse is True and dict(BASE.properties) == {"compression": "lz4"}


def test_every_whitelisted_key_has_a_good_value_tested():
    assert {key for key, _value, _check in GOOD} == set(options.EXT_PARAMS)


INJECTIONS = [
    "lz4 -o mountpoint=/",
    "-o mountpoint=/",
    "lz4;reboot",
    "lz4 ; zfs destroy -r tank",
    "lz4'",
    '"lz4"',
    "`reboot`",
    "$(reboot)",
    "lz4\n-o mountpoint=/",
    "tank2/other",
    "",
    " lz4",
]


@pytest.mark.parametrize("key", sorted(options.EXT_PARAMS))
@pytest.mark.parametrize("value", INJECTIONS)
def test_injections_are_refused_for_every_key(key, value):
    with pytest.raises(ConfigError, match=f"ext-param {key}"):
        BASE.with_overrides({key: value})


@pytest.mark.parametrize(
    "key, value",
    [
        ("sparse", "maybe"),
        ("sparse", "2"),
        ("volblocksize", "3k"),
        ("volblocksize", "256"),
        ("volblocksize", "256k"),
        ("volblocksize", "1M"),
        ("volblocksize", "8kb"),
        ("volblocksize", "-8k"),
        ("compression", "gzip-10"),
        ("compression", "LZ4"),
        ("compression", "zstd-20"),
        ("sync", "sometimes"),
        ("logbias", "fast"),
        ("primarycache", "some"),
        ("secondarycache", "all,none"),
        ("copies", "4"),
        ("copies", "0"),
    ],
)
def test_bad_values(key, value):
    with pytest.raises(ConfigError, match=f"ext-param {key}"):
        BASE.with_overrides({key: value})


@pytest.mark.parametrize(
    "key",
    ["mountpoint", "zfs", "pool", "refreservation", "volsize", "readonly", "create", "destroy", "-o", "canmount", ""],
)
def test_unknown_keys_are_refused_naming_the_allowed_ones(key):
    with pytest.raises(ConfigError) as raised:
        BASE.with_overrides({key: "x"})
    message = str(raised.value)
    assert f"unknown ext-param {key!r}" in message
    assert "volblocksize" in message and "compression" in message


def test_create_string_is_parsed_not_passed():
    result = options.parse_create_string("-s -b 4k -o compression=lz4 -osync=always -b8k")
    assert result.sparse is True
    assert result.volblocksize == 8192
    assert dict(result.properties) == {"compression": "lz4", "sync": "always"}


@pytest.mark.parametrize(
    "text",
    ["-o mountpoint=/", "-p", "-s tank/x", "-o compression=lz4;reboot", "'unclosed", "-b"],
)
def test_bad_create_strings(text):
    with pytest.raises(ConfigError, match="EXTP_CREATE"):
        options.parse_create_string(text)
