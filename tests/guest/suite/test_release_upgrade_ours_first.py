"""A bookworm node with 0.2 goes to trixie, this package upgraded first: 0.2 →
this version on bookworm, then `apt full-upgrade` brings trixie's lvm2, which moves
every command from /sbin to /usr/sbin. The emulation never stops answering, real
VGs stay lvm2's, and apt remove gives trixie's lvm2 its links back.

lvm2 cannot go back to bookworm's in the same boot, so this module and
test_release_upgrade_lvm2_first.py each get a guest of their own
(tests/guest/vm.py: OWN_BOOT). The steps run in file order.
"""

import pytest

from guestlib import run
from packaginglib import (PACKAGE, apt_get, assert_diverted, assert_lvm2_restored, assert_real_lvm_works,
                          deb_version, emulated_lvs, node_with_0_2, status,
                          upgrade_lvm2)


@pytest.fixture(scope="module")
def node():
    return node_with_0_2()


def test_upgrade_to_this_version_on_bookworm(node):
    apt_get("install", str(node["current"]))
    assert status() == ("install ok installed", deb_version(node["current"]))
    assert_diverted("new")
    assert emulated_lvs() == ["lv1"]
    assert_real_lvm_works()


def test_lvm2_moves_to_usr_under_the_wrappers(node):
    upgrade_lvm2()
    # lvm2's new /usr/sbin/<command> went to the canonical target, and dpkg
    # removed its obsolete /sbin/<command> through the aliased one.
    assert_diverted("new")
    assert run(["dpkg", "--verify", PACKAGE, "lvm2"]).stdout == ""
    assert emulated_lvs() == ["lv1"]
    assert_real_lvm_works()


def test_remove_gives_trixies_lvm2_its_links(node):
    apt_get("remove", PACKAGE)
    assert_lvm2_restored()
    assert_real_lvm_works()
    assert "Volume group \"upg\" not found" in emulated_lvs()

