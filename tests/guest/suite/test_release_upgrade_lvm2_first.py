"""A bookworm node with 0.2 goes to trixie, lvm2 unpacked first: `apt full-upgrade`
brings trixie's lvm2 while 0.2 is installed, then this version is installed.

Between the two, the emulation is off: 0.2 diverts only /sbin/<command>, so
trixie's /usr/sbin/<command> replaces its wrapper on disk, and dpkg removes lvm2's
obsolete /sbin/<command> through 0.2's diversion (its .distrib). That is why the
README says to upgrade this package on bookworm first; the test shows the gap, then
that this version's preinst takes lvm2's new link aside and the emulation is back.
Its own guest (tests/guest/vm.py: OWN_BOOT); the steps run in file order.
"""

import os

import pytest

from guestlib import run
from packaginglib import (COMMANDS, PACKAGE, apt_get, assert_diverted, assert_lvm2_restored,
                          assert_real_lvm_works, deb_version, emulated_lvs, node_with_0_2,
                          status, upgrade_lvm2)


@pytest.fixture(scope="module")
def node():
    return node_with_0_2()


def test_lvm2_moving_first_overwrites_0_2s_wrappers(node):
    upgrade_lvm2()
    for command in COMMANDS:
        assert os.readlink(f"/usr/sbin/{command}") == "lvm", "trixie's lvm2 replaced 0.2's wrapper"
        assert not os.path.lexists(f"/sbin/{command}.distrib"), "removed through 0.2's diversion"
    assert "Volume group \"upg\" not found" in emulated_lvs(), "the emulation is off until the upgrade"
    assert_real_lvm_works()


def test_upgrade_to_this_version_brings_the_emulation_back(node):
    apt_get("install", str(node["current"]))
    assert status() == ("install ok installed", deb_version(node["current"]))
    assert_diverted("new")
    assert run(["dpkg", "--verify", PACKAGE, "lvm2"]).stdout == ""
    assert emulated_lvs() == ["lv1"]
    assert_real_lvm_works()


def test_remove_gives_trixies_lvm2_its_links(node):
    apt_get("remove", PACKAGE)
    assert_lvm2_restored()
    assert_real_lvm_works()
