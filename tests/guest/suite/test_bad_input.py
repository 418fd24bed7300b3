"""The bad-input corpus: every case exits non-zero with ONE line on stderr,
prints nothing on stdout, and leaves `zfs list -t all` exactly as it was."""

import pytest

from guestlib import run
from providerlib import PARENT, ensure_node_config, new_volume_name, refused_without_change, write_config


@pytest.fixture(scope="module", autouse=True)
def node_config():
    return ensure_node_config()


@pytest.fixture(scope="module")
def victim():
    """A volume of ours that a bad request must not touch."""
    name = new_volume_name()
    run(["zfs", "create", "-s", "-V", "64M", "-o", "ganeti-zfs:owner=ext", f"{PARENT}/{name}"])
    yield name
    run(["zfs", "destroy", "-r", f"{PARENT}/{name}"])


BAD_NAMES = [
    ("", "VOL_NAME is empty"),
    ("a/b", "may contain only"),
    ("../gnt", "'..'"),
    ("vol@snap", "may contain only"),
    ("vol#bookmark", "may contain only"),
    ("..", "'..'"),
    ("a..b", "'..'"),
    ("with space", "may contain only"),
    ("-o mountpoint=/", "may contain only"),
    ("x" * 256, "longer than 255"),
    (PARENT, "may contain only"),  # the parent itself
    (".", "may contain only"),
]


@pytest.mark.parametrize("action", ["create", "attach", "remove", "grow", "snapshot"])
@pytest.mark.parametrize("name, fragment", BAD_NAMES)
def test_bad_volume_names(action, name, fragment):
    refused_without_change(
        action, name, fragment, VOL_SIZE=64, VOL_NEW_SIZE=128, VOL_SNAPSHOT_NAME="s.snap", VOL_SNAPSHOT_SIZE=64
    )


def test_snapshot_name_of_the_parent_itself_is_refused(victim):
    refused_without_change("snapshot", victim, "VOL_SNAPSHOT_NAME", VOL_SNAPSHOT_NAME=PARENT)


@pytest.mark.parametrize(
    "size, fragment",
    [
        (None, "VOL_SIZE is not set"),
        ("0", "larger than 0"),
        ("-1", "whole number of MiB"),
        ("-1024", "whole number of MiB"),
        ("ten", "whole number of MiB"),
        ("1.5", "whole number of MiB"),
        ("10G", "whole number of MiB"),
        ("", "VOL_SIZE is not set"),
        ("102400", "larger than tank/ganeti can ever hold"),  # 100 GiB on a 64 GiB pool
        ("1000000000", "larger than tank/ganeti can ever hold"),
    ],
)
def test_bad_sizes(size, fragment):
    variables = {} if size is None else {"VOL_SIZE": size}
    refused_without_change("create", new_volume_name(), fragment, **variables)


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("EXTP_COMPRESSION", "lz4 -o mountpoint=/", "ext-param compression"),
        ("EXTP_COMPRESSION", "-o mountpoint=/", "ext-param compression"),
        ("EXTP_VOLBLOCKSIZE", "8k;reboot", "ext-param volblocksize"),
        ("EXTP_SYNC", "standard; zfs destroy -r tank", "ext-param sync"),
        ("EXTP_SPARSE", "yes'", "ext-param sparse"),
        ("EXTP_LOGBIAS", '"latency"', "ext-param logbias"),
        ("EXTP_COPIES", "$(reboot)", "ext-param copies"),
        ("EXTP_ZFS", "tank2/elsewhere", "unknown ext-param 'zfs'"),
        ("EXTP_POOL", "tank2", "unknown ext-param 'pool'"),
        ("EXTP_MOUNTPOINT", "/", "unknown ext-param 'mountpoint'"),
        ("EXTP_CREATE", "-o mountpoint=/", "unknown ext-param 'create'"),
    ],
)
def test_injected_ext_params(key, value, fragment):
    refused_without_change("create", new_volume_name(), fragment, VOL_SIZE=64, **{key: value})


@pytest.mark.parametrize("action", ["create", "attach", "remove", "grow", "snapshot", "setinfo", "open", "verify"])
def test_config_whose_parent_does_not_exist(action, tmp_path, victim):
    config = write_config(tmp_path / "missing-parent.conf", "ZFS_PARENT=tank/no-such-parent\n")
    refused_without_change(
        action,
        victim,
        config=config,
        VOL_SIZE=64,
        VOL_NEW_SIZE=128,
        VOL_SNAPSHOT_NAME=f"{victim}.snap",
        VOL_METADATA="originstname+x",
        VOL_OPEN_EXCLUSIVE="True",
    )


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("ZFS_PARENT=tank/ganeti\nEXTP_DESTROY=-R\n", "-R would also destroy"),
        ("ZFS_PARENT=tank/ganeti\nEXTP_CREATE='-o mountpoint=/'\n", "mountpoint"),
        ("ZFS_PARENT='tank/ganeti; zfs destroy -r tank'\n", "not a valid ZFS dataset name"),
        ("NO_SUCH=1\n", "unknown setting"),
    ],
)
def test_bad_config(text, fragment, tmp_path, victim):
    config = write_config(tmp_path / "bad.conf", text)
    refused_without_change("remove", victim, fragment, config=config)
