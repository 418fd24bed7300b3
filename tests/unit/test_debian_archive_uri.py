"""scripts/debian-archive-uri: which URI of this machine's apt sources (deb822)
tests/guest/image/build-image.sh and scripts/unit-tests-in-chroot debootstrap from."""

import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "debian-archive-uri")

# Security first, two URIs in a stanza, a comment, a stanza without URIs.
SOURCES = """\
Types: deb
URIs: http://security.example/debian-security
Suites: trixie-security
Components: main

Types: deb
Suites: trixie
Components: main

Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://one.example/debian http://two.example/debian
Suites: trixie trixie-updates
Components: main

Types: deb
URIs: http://later.example/debian
Suites: trixie-backports
"""


def run(*args):
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True)


def sources(tmp_path, text=SOURCES):
    path = tmp_path / "debian.sources"
    path.write_text(text)
    return str(path)


def test_main_is_the_first_uri_of_the_first_stanza_with_a_non_security_suite(tmp_path):
    result = run("main", sources(tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (0, "http://one.example/debian\n", "")


def test_security_is_the_first_stanza_with_a_security_suite(tmp_path):
    result = run("security", sources(tmp_path))
    assert (result.returncode, result.stdout) == (0, "http://security.example/debian-security\n")


def test_no_matching_stanza_prints_nothing(tmp_path):
    result = run("security", sources(tmp_path, "Types: deb\nURIs: http://one.example/debian\nSuites: trixie\n"))
    assert (result.returncode, result.stdout) == (0, "")


def test_bad_kind_and_unreadable_file_fail_with_one_line(tmp_path):
    for args, code in ((["mirror", sources(tmp_path)], 2), (["main", str(tmp_path / "missing")], 1)):
        result = run(*args)
        assert result.returncode == code
        assert result.stdout == ""
        assert len(result.stderr.splitlines()) == 1 and "debian-archive-uri:" in result.stderr
