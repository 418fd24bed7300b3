"""Fixtures of the guest test suite. It runs inside the test guest only (started by
tests/guest/guest-run.sh); on the host, `python3 -m pytest tests/guest` boots the
guest and reports these tests.

Fixtures:
    pool, pool2      names of the two ZFS pools ("tank" on vdb, 64 GiB virtual;
                     "tank2" on vdc, 2 GiB), created at boot
    spare_disk       "/dev/vdd", 2 GiB, unused: for a real LVM volume group
    ganeti_cluster   the single-node cluster, initialised once per boot (its name)
    artifacts        a directory whose files end up in tests/guest/.last-run/out/artifacts
Helpers to import: guestlib.run, zfs_list_all, wait_for_path, zvol_path, cluster_verify.
"""

import os

import pytest

import guestlib

if not os.path.exists("/share/guest-run.sh"):
    pytest.exit("the guest suite runs only inside the test guest: "
                "use `python3 -m pytest tests/guest` or `make test-guest` on the host", 4)

# Disk templates the cluster is initialised with. "plain" joins when the LVM
# emulation lands (it needs --vg-name and a volume group of at least 20 GiB).
DISK_TEMPLATES = ("ext",)
CLUSTER_INIT_ARGS = ()


@pytest.fixture(scope="session")
def pool():
    return guestlib.POOL


@pytest.fixture(scope="session")
def pool2():
    return guestlib.POOL2


@pytest.fixture(scope="session")
def spare_disk():
    return guestlib.SPARE_DISK


@pytest.fixture(scope="session")
def ganeti_cluster():
    """Initialise the cluster on first use; later users share it. Tests must leave
    it as they found it (remove their instances)."""
    return guestlib.init_cluster(DISK_TEMPLATES, CLUSTER_INIT_ARGS)


@pytest.fixture
def artifacts():
    return guestlib.artifacts_dir()
