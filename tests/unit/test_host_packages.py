"""scripts/host-packages covers what the build and the host-side tooling need.

The list is what a fresh machine gets installed before `make demo`, `make
test` or `make bench` (scripts/ensure-host-packages); these tests keep it from
drifting away from debian/control and from the commands the Makefile and the
host-side scripts run. They ask dpkg on this machine, where the list is
installed (make test-host ensures it first): which package provides each
Build-Depends, and which package owns each tool's file.
"""

import os
import re
import shlex
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENSURE = os.path.join(ROOT, "scripts", "ensure-host-packages")

# The files whose commands run on the host (the guest-side scripts run in the
# guest, whose packages are tests/guest/image/build-image.sh's PACKAGES).
SHELL_FILES = ["tests/guest/image/build-image.sh", "scripts/ensure-host-packages", "scripts/debian-archive-uri",
               "scripts/unit-tests-in-chroot", ".ci/run"]
PYTHON_FILES = ["tests/guest/vm.py", "tests/guest/conftest.py", "scripts/gen-man", "scripts/gen-entrypoints",
                "bench/report.py", *sorted(f"tests/unit/{name}" for name in os.listdir(os.path.join(ROOT, "tests/unit"))
                                             if name.endswith(".py"))]
# Words after which a command starts, and the shell's own builtins (whose
# arguments are not commands).
SHELL_KEYWORDS = {"if", "then", "else", "elif", "fi", "do", "done", "esac", "while", "until", "{", "}", "!"}
SHELL_BUILTINS = {
    "for", "case", "local", "export", "set", "cd", "echo", "printf", "exit", "return", "trap", "read", "shift",
    "exec", "true", "false", "test", "[", "[[", ":", ".", "eval", "wait", "break", "continue", "unset",
    "command", "type", "umask", "declare",
}


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as file:
        return file.read()


def listed():
    words = []
    for line in read("scripts/host-packages").splitlines():
        words += line.split("#", 1)[0].split()
    return words


def dpkg_query(field, package):
    result = subprocess.run(["dpkg-query", "-W", "-f", "${" + field + "}", package],
                            capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def build_depends():
    """Package names of debian/control's Build-Depends (alternatives too)."""
    text = read("debian/control")
    field = re.search(r"^Build-Depends:(.*?)^(?=\S)", text, re.M | re.S).group(1)
    names = []
    for relation in field.split(","):
        for alternative in relation.split("|"):
            name = re.sub(r"[\[(<].*", "", alternative).strip()
            if name:
                names.append(name.split(":")[0])
    return names


def provided_by_list():
    """Every package name the listed packages are or provide (virtual ones)."""
    names = set()
    for package in listed():
        names.add(package)
        for item in (dpkg_query("Provides", package) or "").split(","):
            if item.strip():
                names.add(item.split()[0].split(":")[0])
    return names


def shell_commands(text):
    """The first word of every simple command in a shell script, from shlex's
    tokens (quotes and comments as the shell reads them; heredoc bodies are
    dropped first): enough for scripts written like ours."""
    functions = set(re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(\)", text, re.M))
    text = re.sub(r"<<-?\s*'?([A-Z_]+)'?(.*?)\n.*?\n\s*\1\n", r"\2\n", text, flags=re.S)
    text = text.replace("\\\n", " ")
    lexer = shlex.shlex(text, posix=True, punctuation_chars="();<>|&\n`")
    lexer.whitespace = " \t\r"
    commands = set()
    at_start = True
    for token in lexer:
        if token == "$":  # $var or ${var}; $( is followed by "("
            at_start = False
            continue
        if token and set(token) <= set("();<>|&\n`"):
            at_start = token not in (">", "<", ">>")
            continue
        if not at_start:
            continue
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", token) or token in SHELL_KEYWORDS:
            continue
        at_start = False
        if token in SHELL_BUILTINS:
            continue
        if re.fullmatch(r"[a-z][a-z0-9.+_-]*", token) and token not in functions:
            commands.add(token)
    return commands


def python_commands(text):
    """Programs a Python script runs: the first element of an argv list literal
    handed to subprocess (directly, or through a list that starts a command)."""
    return set(re.findall(r"(?:subprocess\.\w+\(\s*|cmd = )\[\s*\"([a-z][a-z0-9._-]*)\"", text))


def makefile_commands(text):
    commands = set()
    text = text.replace("\\\n", " ").replace("$$", "$")
    for line in text.splitlines():
        if line.startswith("\t"):
            recipe = line.strip().lstrip("@-").strip()
            recipe = recipe.replace("$(BUILD_ENV)", "").replace("$(PYTHON)", "/usr/bin/python3")
            recipe = recipe.replace("$(DPKG_BUILDPACKAGE)", "dpkg-buildpackage")
            recipe = recipe.replace("$(MAKE)", "make")
            commands |= shell_commands(recipe)
    for value in re.findall(r"\$\(shell ([a-z][a-z0-9.-]*)", text):
        commands.add(value)
    build_env = re.search(r"^DPKG_BUILDPACKAGE = .*?\n(?:\t.*\n)*", text, re.M)
    if build_env:
        commands |= {word for word in re.findall(r"\b(dpkg-[a-z]+|env)\b", build_env.group(0))}
    return commands


def host_commands():
    commands = {"python3"}
    for path in SHELL_FILES:
        commands |= shell_commands(read(path))
    for path in PYTHON_FILES:
        commands |= python_commands(read(path))
    commands |= makefile_commands(read("Makefile"))
    return commands - {"scripts", "tests", "bench"}


def owning_package(command):
    path = shutil.which(command, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        return None, None
    for candidate in (path, os.path.realpath(path)):
        for variant in (candidate, re.sub(r"^/usr/", "/", candidate), "/usr" + candidate):
            result = subprocess.run(["dpkg-query", "-S", variant], capture_output=True, text=True)
            owners = [line for line in result.stdout.splitlines() if not line.startswith("diversion by ")]
            if result.returncode == 0 and owners:
                return path, owners[0].split(":")[0].split(",")[0].strip()
    return path, None


def in_every_minimal_system(package):
    """What `debootstrap --variant=minbase` always installs."""
    return dpkg_query("Essential", package) == "yes" or dpkg_query("Priority", package) == "required"


def installed_with_the_list():
    """The listed packages and their direct dependencies."""
    names = set(listed())
    for package in listed():
        depends = f'{dpkg_query("Pre-Depends", package) or ""},{dpkg_query("Depends", package) or ""}'
        for relation in depends.split(","):
            for alternative in relation.split("|"):
                if alternative.strip():
                    names.add(alternative.split()[0].split(":")[0])
    return names


def test_list_has_no_duplicates_and_only_package_names():
    names = listed()
    assert len(names) == len(set(names))
    for name in names:
        assert re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", name), name


def test_every_build_dependency_is_listed_or_provided_by_a_listed_package():
    provided = provided_by_list()
    missing = [name for name in build_depends() if name not in provided]
    assert not missing, f"debian/control Build-Depends not covered by scripts/host-packages: {missing}"
    # dpkg-checkbuilddeps requires build-essential on top of Build-Depends.
    assert "build-essential" in listed()


def test_the_command_extraction_finds_the_tools_we_know_are_used():
    # The extraction itself, so that the coverage test below cannot pass by
    # finding nothing.
    found = host_commands()
    for expected in ("debootstrap", "mkfs.ext4", "qemu-system-x86_64", "qemu-img", "lintian",
                     "dpkg-parsechangelog", "dpkg-buildpackage", "pandoc", "git", "man", "apt-get",
                     "dpkg-query", "mount", "chroot"):
        assert expected in found, expected


@pytest.mark.parametrize("command", sorted(host_commands()))
def test_every_host_tool_comes_from_a_listed_or_essential_package(command):
    path, package = owning_package(command)
    if package is not None and in_every_minimal_system(package):
        return
    assert path is not None, f"{command} is not installed: add its package to scripts/host-packages"
    assert package is not None, f"{command} ({path}) belongs to no Debian package"
    assert package in installed_with_the_list(), (
        f"{command} comes from {package}, which is not in scripts/host-packages, nor a dependency of a "
        "package there, nor in every minimal Debian system (Essential or Priority required)"
    )


# -- ensure-host-packages -------------------------------------------------------


@pytest.fixture
def fake_node(tmp_path):
    """dpkg-query that knows $INSTALLED, apt-get that logs, id that says $UID_."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dpkg-query").write_text(
        '#!/bin/sh\nfor p; do :; done\n'
        'grep -qx "$p" "$INSTALLED" && { printf "ii "; exit 0; }\n'
        'echo "dpkg-query: no packages found matching $p" >&2; exit 1\n'
    )
    (bin_dir / "apt-get").write_text('#!/bin/sh\necho "$*" >>"$APT_LOG"\n')
    (bin_dir / "id").write_text('#!/bin/sh\necho "$UID_"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "host-packages").write_text("# comment\nmake  # with a comment\n\ngit lintian\n")
    script = scripts / "ensure-host-packages"
    script.write_text(read("scripts/ensure-host-packages"))
    script.chmod(0o755)

    def run(installed, uid=0):
        (tmp_path / "installed").write_text("".join(f"{p}\n" for p in installed))
        log = tmp_path / "apt.log"
        log.unlink(missing_ok=True)
        result = subprocess.run(
            [str(script)], capture_output=True, text=True,
            env=dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin", INSTALLED=str(tmp_path / "installed"),
                     APT_LOG=str(log), UID_=str(uid)),
        )
        apt = log.read_text().splitlines() if log.exists() else []
        return result, apt

    return run


def test_nothing_missing_runs_no_apt_and_says_nothing(fake_node):
    result, apt = fake_node(["make", "git", "lintian"])
    assert (result.returncode, result.stdout, result.stderr, apt) == (0, "", "", [])


def test_as_root_installs_exactly_what_is_missing_after_one_update(fake_node):
    result, apt = fake_node(["git"])
    assert result.returncode == 0
    assert apt == ["update", "install -y --no-install-recommends make lintian"]
    assert "make lintian" in result.stdout


def test_not_root_prints_the_apt_line_and_fails(fake_node):
    result, apt = fake_node(["git"], uid=1000)
    assert result.returncode == 1
    assert apt == []
    assert "apt-get update && apt-get install --no-install-recommends make lintian" in result.stderr
