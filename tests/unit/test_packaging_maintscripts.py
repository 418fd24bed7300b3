"""The maintainer scripts' own logic, run with sh on the host.

The scripts work under $DPKG_ROOT (a temporary merged-/usr root here, /sbin a
link to usr/sbin as on every bookworm and trixie node). dpkg-divert and
dpkg-query are replaced on PATH by small stand-ins: dpkg-query -L lvm2 prints
what lvm2 records ($LVM2_FILES), dpkg-divert keeps a diversion table and logs
every change. What the real dpkg then does with the diversions, on bookworm,
on trixie and across lvm2's move to /usr, is tested in the guest
(tests/guest/suite/test_packaging.py, test_release_upgrade.py).
"""

import json
import os
import subprocess
import sys

import pytest

from ganeti_zfs import lvm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = "ganeti-extstorage-zfs"
COMMANDS = tuple(lvm.COMMANDS)
WRAPPER = 'import sys\nfrom ganeti_zfs.lvm.main import main\nsys.exit(main("{}"))\n'

# dpkg-divert as dpkg-divert(1) documents it, for the options the scripts use;
# --rename moves the file only when its source exists and its destination does not.
FAKE_DPKG_DIVERT = r'''
import fnmatch, json, os, sys
db_path, root = os.environ["DIVERSIONS"], os.environ["DPKG_ROOT"]
db = json.load(open(db_path))
args = sys.argv[1:]
if args[0] == "--list":
    patterns = args[1:] or ["*"]
    for path, (target, package) in db.items():
        if any(fnmatch.fnmatch(path, p) for p in patterns):
            if os.environ.get("LC_ALL") != "C":   # dpkg's de.po, as under LANG=de_DE.UTF-8
                print(f"Umleitung von {path} zu {target} durch {package}")
            else:
                print(f"diversion of {path} to {target} by {package}")
    sys.exit(0)
if args[0] in ("--listpackage", "--truename"):
    entry = db.get(args[1])
    if args[0] == "--truename":
        print(entry[0] if entry else args[1])
    elif entry:
        print(entry[1])
    sys.exit(0)
with open(os.environ["CALLS"], "a") as log:
    log.write(" ".join(args) + "\n")
package = args[args.index("--package") + 1]
target, path = args[args.index("--divert") + 1], args[-1]
rename = "--rename" in args
assert rename != ("--no-rename" in args), "exactly one of --rename and --no-rename"
src, dst = (path, target) if "--add" in args else (target, path)
if "--add" in args:
    if path in db and db[path] != [target, package]:
        sys.exit(f"dpkg-divert: error: clashes with {db[path]}")
    db[path] = [target, package]
else:
    assert db.get(path) == [target, package], f"no such diversion: {path}"
    del db[path]
if rename and os.path.lexists(root + src):
    if os.path.lexists(root + dst):
        sys.exit(f"dpkg-divert: error: rename involves overwriting '{dst}'")
    os.rename(root + src, root + dst)
json.dump(db, open(db_path, "w"))
'''


class Node:
    """A merged-/usr root with lvm2's links, and the stand-ins on PATH."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.root = tmp_path / "root"
        (self.root / "usr" / "sbin").mkdir(parents=True)
        (self.root / "sbin").symlink_to("usr/sbin")
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "dpkg-divert").write_text(f"#!{sys.executable} -IS\n{FAKE_DPKG_DIVERT}")
        (bin_dir / "dpkg-query").write_text(
            '#!/bin/sh\n[ "$*" = "-L lvm2" ] || exit 2\n[ -f "$LVM2_FILES" ] || exit 1\ncat "$LVM2_FILES"\n'
        )
        for tool in bin_dir.iterdir():
            tool.chmod(0o755)
        self.env = dict(
            os.environ,
            PATH=f"{bin_dir}:/usr/bin:/bin",
            CALLS=str(tmp_path / "calls"),
            DIVERSIONS=str(tmp_path / "diversions.json"),
            LVM2_FILES=str(tmp_path / "lvm2-files"),
            DPKG_ROOT=str(self.root),
            LANG="de_DE.UTF-8",
        )
        self.env.pop("LC_ALL", None)
        self.set_diversions({})

    # -- the state before ---------------------------------------------------
    def lvm2_records(self, directory):
        """lvm2 is unpacked and records <directory>/<command> -> lvm."""
        (self.tmp / "lvm2-files").write_text("".join(f"{directory}/{c}\n" for c in ("lvm", *COMMANDS)))

    def link(self, path):
        self.file(path).symlink_to("lvm")

    def wrapper(self, path, command):
        self.file(path).write_text(WRAPPER.format(command))

    def set_diversions(self, table):
        (self.tmp / "diversions.json").write_text(json.dumps({p: [t, PACKAGE] for p, t in table.items()}))

    # -- what happened -----------------------------------------------------
    def file(self, path):
        return self.root / path.lstrip("/")

    def diversions(self):
        table = json.loads((self.tmp / "diversions.json").read_text())
        return {path: target for path, (target, package) in table.items() if package == PACKAGE}

    def calls(self):
        path = self.tmp / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def usr_sbin(self):
        """{name: "link"|"wrapper"} of what is in /usr/sbin."""
        found = {}
        for entry in (self.root / "usr" / "sbin").iterdir():
            if entry.is_symlink():
                assert os.readlink(entry) == "lvm", entry
                found[entry.name] = "link"
            else:
                found[entry.name] = "wrapper" if "ganeti_zfs.lvm.main" in entry.read_text() else "other"
        return found

    def run(self, name, *args, function=None):
        """Run the maintainer script, or only one of its functions."""
        text = open(os.path.join(ROOT, "debian", f"{PACKAGE}.{name}"), encoding="utf-8").read()
        text = text.replace("#DEBHELPER#", "").replace("#LVM_COMMANDS#", " ".join(COMMANDS))
        if function:
            start = text.index(f"\n{function}() {{\n")
            text = text[start:text.index("\n}\n", start) + 3] + f"{function}\n"
        script = self.tmp / name
        script.write_text(text)
        return subprocess.run(["sh", "-e", str(script), *args], capture_output=True, text=True, env=self.env)


@pytest.fixture
def node(tmp_path):
    return Node(tmp_path)


def new_diversions(commands=COMMANDS):
    table = {f"/usr/sbin/{c}": f"/usr/sbin/{c}.distrib" for c in commands}
    table.update({f"/sbin/{c}": f"/sbin/{c}.distrib.usr-is-merged" for c in commands})
    return table


def old_diversions(commands=COMMANDS):
    return {f"/sbin/{c}": f"/sbin/{c}.distrib" for c in commands}


def files(**kinds):
    """{name: kind} for every command: files(distrib="link") -> {"lvs.distrib": "link", ...}."""
    suffixes = {"plain": "", "distrib": ".distrib", "distrib_usr_is_merged": ".distrib.usr-is-merged"}
    return {f"{c}{suffixes[suffix]}": kind for suffix, kind in kinds.items() for c in COMMANDS}


def assert_ok(result):
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


# -- preinst: every starting point ---------------------------------------------------


@pytest.mark.parametrize("action", ["install", "upgrade"])
def test_preinst_on_bookworm_moves_lvm2s_link_to_the_aliased_target(node, action):
    # bookworm's lvm2 records /sbin/<command>: the file lvm2 will upgrade, and
    # remove when it moves to /usr, is /sbin/<command>.distrib.usr-is-merged.
    node.lvm2_records("/sbin")
    for command in COMMANDS:
        node.link(f"/usr/sbin/{command}")
    assert_ok(node.run("preinst", action))
    assert node.diversions() == new_diversions()
    assert node.usr_sbin() == files(distrib_usr_is_merged="link")
    assert all("--no-rename" in call for call in node.calls())


def test_preinst_on_trixie_moves_lvm2s_link_to_the_canonical_target(node):
    node.lvm2_records("/usr/sbin")
    for command in COMMANDS:
        node.link(f"/usr/sbin/{command}")
    assert_ok(node.run("preinst", "install"))
    assert node.diversions() == new_diversions()
    assert node.usr_sbin() == files(distrib="link")


def test_preinst_before_lvm2_is_unpacked_only_diverts(node):
    # apt may unpack us first: the diversions then catch lvm2's files, on either release.
    assert_ok(node.run("preinst", "install"))
    assert node.diversions() == new_diversions()
    assert node.usr_sbin() == {}


def test_preinst_upgrade_from_0_2_on_bookworm_keeps_the_old_wrapper_in_place(node):
    # 0.2's /sbin/<command> wrapper is on disk /usr/sbin/<command>, which lvm2 does
    # not record: it stays until dpkg replaces it with the new one.
    node.lvm2_records("/sbin")
    node.set_diversions(old_diversions())
    for command in COMMANDS:
        node.wrapper(f"/usr/sbin/{command}", command)
        node.link(f"/usr/sbin/{command}.distrib")
    assert_ok(node.run("preinst", "upgrade", "0.2.0"))
    assert node.diversions() == new_diversions()
    assert node.usr_sbin() == {**files(plain="wrapper"), **files(distrib_usr_is_merged="link")}


def test_preinst_upgrade_from_0_2_after_trixies_lvm2_was_unpacked(node):
    # apt unpacked trixie's lvm2 first: its /usr/sbin/<command> (not diverted by 0.2)
    # replaced 0.2's wrapper on disk, and dpkg removed its obsolete /sbin/<command>
    # through 0.2's diversion, i.e. /sbin/<command>.distrib.
    node.lvm2_records("/usr/sbin")
    node.set_diversions(old_diversions())
    for command in COMMANDS:
        node.link(f"/usr/sbin/{command}")
    assert_ok(node.run("preinst", "upgrade", "0.2.0"))
    assert node.diversions() == new_diversions()
    assert node.usr_sbin() == files(distrib="link")


def test_preinst_upgrade_between_versions_with_both_diversions_changes_nothing(node):
    node.lvm2_records("/sbin")
    node.set_diversions(new_diversions())
    for command in COMMANDS:
        node.wrapper(f"/usr/sbin/{command}", command)
        node.link(f"/usr/sbin/{command}.distrib.usr-is-merged")
    assert_ok(node.run("preinst", "upgrade", "0.3.0"))
    assert node.calls() == []
    assert node.usr_sbin() == {**files(plain="wrapper"), **files(distrib_usr_is_merged="link")}


def test_preinst_never_moves_our_own_wrapper(node):
    # Only 0.2's diversion of lvs is gone (say, by hand): its /sbin/lvs, which
    # lvm2 records, is our old wrapper on disk, not lvm2's link.
    node.lvm2_records("/sbin")
    node.wrapper("/usr/sbin/lvs", "lvs")
    assert_ok(node.run("preinst", "upgrade", "0.2.0"))
    assert node.usr_sbin() == {"lvs": "wrapper"}


def test_preinst_restores_the_original_tools_links_before_diverting(node, tmp_path):
    # The original README's step 5: /sbin/lvs -> its tree. lvm2's link comes
    # back, then moves aside like any other.
    node.lvm2_records("/usr/sbin")
    node.file("/usr/sbin/lvs").symlink_to("/usr/share/ganeti/extstorage/zfs/sbin/lvs")
    node.file("/usr/sbin/zfs-list").symlink_to("/usr/share/ganeti/extstorage/zfs/bin/list")
    result = node.run("preinst", "install")
    assert_ok(result)
    assert result.stdout.splitlines() == [
        f"{PACKAGE}: /usr/sbin/lvs pointed to the original tool's /usr/share/ganeti/extstorage/zfs/sbin/lvs;"
        " it is lvm2's link to lvm again",
        f"{PACKAGE}: removed /usr/sbin/zfs-list, a link to the original tool's /usr/share/ganeti/extstorage/zfs/bin/list",
    ]
    assert node.usr_sbin() == {"lvs.distrib": "link"}


def test_preinst_rejects_unknown_action(node):
    result = node.run("preinst", "bogus")
    assert result.returncode == 1 and node.calls() == []


# -- postrm and postinst --------------------------------------------------------------


@pytest.mark.parametrize("release, target", [("bookworm", "distrib.usr-is-merged"), ("trixie", "distrib")])
@pytest.mark.parametrize("action", ["remove", "abort-install", "disappear"])
def test_postrm_gives_lvm2_its_links_back(node, release, target, action):
    node.set_diversions(new_diversions())
    for command in COMMANDS:
        node.link(f"/usr/sbin/{command}.{target}")
    assert_ok(node.run("postrm", action))
    assert node.diversions() == {}
    assert node.usr_sbin() == files(plain="link")


def test_postrm_with_both_targets_keeps_one_link(node):
    # A stale copy in the second target (lvm2's old /sbin link not yet removed
    # by dpkg): the first removal gives the link back, the copy goes.
    node.set_diversions(new_diversions())
    for command in COMMANDS:
        node.link(f"/usr/sbin/{command}.distrib")
        node.link(f"/usr/sbin/{command}.distrib.usr-is-merged")
    assert_ok(node.run("postrm", "remove"))
    assert node.diversions() == {}
    assert node.usr_sbin() == files(plain="link")


def test_postrm_leaves_other_packages_diversions(node):
    table = json.loads((node.tmp / "diversions.json").read_text())
    table["/usr/sbin/other"] = ["/usr/sbin/other.real", "some-other-package"]
    (node.tmp / "diversions.json").write_text(json.dumps(table))
    assert_ok(node.run("postrm", "remove"))
    assert json.loads((node.tmp / "diversions.json").read_text()) == table


def test_postrm_abort_upgrade_to_0_2_restores_its_diversions(node):
    # The upgrade from 0.2 failed after the new preinst: 0.2 is back, with its
    # wrapper in /sbin, and must find its own /sbin/<command>.distrib again.
    node.set_diversions(new_diversions())
    for command in COMMANDS:
        node.wrapper(f"/usr/sbin/{command}", command)
        node.link(f"/usr/sbin/{command}.distrib.usr-is-merged")
    assert_ok(node.run("postrm", "abort-upgrade", "0.2.0"))
    assert node.diversions() == old_diversions()
    assert node.usr_sbin() == {**files(plain="wrapper"), **files(distrib="link")}


def test_postrm_abort_upgrade_keeps_the_diversions_of_present_wrappers(node):
    # The old (same-layout) version is back: a wrapper on disk keeps its
    # diversions, one of a command only the new version had loses them.
    diversions = new_diversions((*COMMANDS, "pkgtest-new"))
    node.set_diversions(diversions)
    for command in COMMANDS:
        node.wrapper(f"/usr/sbin/{command}", command)
    assert_ok(node.run("postrm", "abort-upgrade", "0.3.0"))
    assert node.diversions() == new_diversions()


@pytest.mark.parametrize("action", ["upgrade", "failed-upgrade"])
def test_postrm_leaves_diversions_alone(node, action):
    # (purge deletes log files under /var/log/ganeti: tested in the guest only.)
    node.set_diversions(new_diversions())
    assert_ok(node.run("postrm", action, "0.3.0"))
    assert node.calls() == []


def test_postinst_drops_the_diversions_of_commands_no_longer_wrapped(node):
    # As if an older version had wrapped one more command (its wrapper is gone
    # with it), and 0.2 had diverted another in the old way.
    node.set_diversions({**new_diversions(("pkgtest-gone",)), **old_diversions(("pkgtest-old",))})
    node.link("/usr/sbin/pkgtest-gone.distrib.usr-is-merged")
    node.link("/usr/sbin/pkgtest-old.distrib")
    # (Only the function: the rest of configure works on this host's own paths.)
    assert_ok(node.run("postinst", function="restore_dropped_diversions"))
    assert node.diversions() == {}
    assert node.usr_sbin() == {"pkgtest-gone": "link", "pkgtest-old": "link"}
