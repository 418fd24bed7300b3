"""Host checks of the Debian packaging: that the files in debian/, cron/,
man/ and scripts/ agree with the code they describe.

The package's behaviour on a real node (install, upgrade, remove, purge,
diversions) is tested in the guest: tests/guest/suite/test_packaging.py.
"""

import configparser
import importlib
import importlib.machinery
import importlib.util
import os
import re
import stat
import subprocess
import sys
import time

import pytest

import ganeti_zfs
from ganeti_zfs import actions, cli, config, hooks, lvm, options

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEBIAN = os.path.join(ROOT, "debian")
CONFFILE = os.path.join(DEBIAN, "extstorage-zfs.conf")
PROVIDER_DIR = "usr/share/ganeti/extstorage/zfs"


def read(*path):
    with open(os.path.join(ROOT, *path), encoding="utf-8") as file:
        return file.read()


def load_script(name):
    """scripts/<name> (no .py suffix) as a module."""
    path = os.path.join(ROOT, "scripts", name)
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


gen_entrypoints = load_script("gen-entrypoints")
gen_man = load_script("gen-man")


# -- version and changelog ---------------------------------------------------

CHANGELOG_HEAD = re.compile(r"^ganeti-extstorage-zfs \(([^)]+)\) ([a-z-]+); urgency=\w+$")


def test_changelog_version_is_the_package_version():
    match = CHANGELOG_HEAD.match(read("debian", "changelog").splitlines()[0])
    assert match, "debian/changelog's first line is not a ganeti-extstorage-zfs entry"
    assert match.group(1) == ganeti_zfs.__version__


def test_changelog_is_released():
    # lintian's unreleased-changes is an error on the .changes.
    match = CHANGELOG_HEAD.match(read("debian", "changelog").splitlines()[0])
    assert match.group(2) == "unstable"


def test_changelog_lines_fit_80_columns():
    # lintian: debian-changelog-line-too-long (a warning).
    lines = [line for line in read("debian", "changelog").splitlines() if not line.startswith(" -- ")]
    assert [line for line in lines if len(line) > 80] == []


def test_native_format():
    # A native package: its version has no Debian revision, like __version__.
    assert read("debian", "source", "format").strip() == "3.0 (native)"


# -- the conffile ----------------------------------------------------------------

SETTING_LINE = re.compile(r"^#([A-Z_]+)=(.*)$")


def conffile_settings():
    """KEY -> value of every commented-out `#KEY=value` line of the conffile."""
    settings = {}
    for line in read("debian", "extstorage-zfs.conf").splitlines():
        match = SETTING_LINE.match(line)
        if match:
            assert match.group(1) not in settings, f"{match.group(1)} appears twice"
            settings[match.group(1)] = match.group(2)
    return settings


def test_conffile_documents_every_key_with_its_default():
    settings = conffile_settings()
    assert list(settings) == [key for key in config.KEYS if key in settings], "keys out of KEYS order"
    assert set(settings) == set(config.KEYS)
    for key, (_parser, default, _description) in config.KEYS.items():
        assert settings[key] == default, f"{key}: the conffile shows {settings[key]!r}, the default is {default!r}"


def test_conffile_shows_the_original_names():
    text = read("debian", "extstorage-zfs.conf")
    for original in config.ALIASES:
        assert original in text


def test_conffile_as_shipped_sets_nothing():
    # Every setting is commented out: the node uses the defaults, and
    # ZFS_PARENT stays unset until the admin chooses it.
    assert config.parse_text(read("debian", "extstorage-zfs.conf"), CONFFILE) == {}


def test_conffile_settings_uncommented_are_valid_and_mean_the_defaults():
    text = read("debian", "extstorage-zfs.conf")
    uncommented = re.sub(r"^#([A-Z_]+=)", r"\1", text, flags=re.MULTILINE)
    loaded = config.build(config.parse_text(uncommented, CONFFILE), CONFFILE)
    defaults = config.build({}, "<defaults>")
    assert loaded.values == defaults.values
    assert loaded.volume_options == defaults.volume_options


def test_conffile_is_installed_in_etc_ganeti():
    assert read("debian", "ganeti-extstorage-zfs.install").split() == ["debian/extstorage-zfs.conf", "etc/ganeti/"]
    assert os.path.join("/etc/ganeti", "extstorage-zfs.conf") == config.DEFAULT_PATH


# -- generated entrypoints -----------------------------------------------------------


def test_provider_files_follow_the_action_list():
    files = gen_entrypoints.files()
    provider = {path[len(PROVIDER_DIR) + 1:] for path in files if path.startswith(PROVIDER_DIR + "/")}
    helpers = {f"bin/{name}" for name in gen_entrypoints.HELPERS}
    assert provider == set(actions.ACTION_NAMES) | {"parameters.list"} | helpers
    for action in actions.ACTION_NAMES:
        mode, content = files[f"{PROVIDER_DIR}/{action}"]
        assert mode == 0o755
        assert content == (
            f'#!/usr/bin/python3\nimport sys\nfrom ganeti_zfs.provider import main\nsys.exit(main("{action}"))\n'
        )


def test_ganeti_required_actions_are_there():
    # Ganeti refuses a provider without these (docs/ganeti-contract.md 1.1).
    assert {"create", "attach", "detach", "remove", "grow", "setinfo", "verify"} <= set(actions.ACTION_NAMES)


def test_parameters_list_is_what_ganeti_can_parse():
    mode, content = gen_entrypoints.files()[f"{PROVIDER_DIR}/parameters.list"]
    assert mode == 0o644
    assert content.endswith("\n")
    lines = content.splitlines()
    # Ganeti: [v.split(None, 1) for v in lines]; gnt-storage needs exactly two parts.
    assert all(len(line.split(None, 1)) == 2 for line in lines)
    assert [line.split(None, 1)[0] for line in lines] == list(options.EXT_PARAMS)


def test_parameters_list_refuses_a_description_ganeti_would_misread(monkeypatch):
    monkeypatch.setitem(options.EXT_PARAMS, "bare", "")
    with pytest.raises(ValueError):
        gen_entrypoints.parameters_list()


def test_helper_stubs_run_existing_subcommands():
    files = gen_entrypoints.files()
    for helper, subcommand in gen_entrypoints.HELPERS.items():
        assert subcommand in cli.SUBCOMMANDS
        assert files[f"{PROVIDER_DIR}/bin/{helper}"][1].endswith(f'sys.exit(main(["{subcommand}", *sys.argv[1:]]))\n')
    # The original tool's helper scripts all keep their names.
    assert set(gen_entrypoints.HELPERS) == {"list", "size", "snapshots", "daily-block-snapshot"}


def test_lvm_wrappers_follow_the_command_list():
    files = gen_entrypoints.files()
    # The canonical path only: nothing under the aliased /sbin (trixie's lintian).
    assert not [path for path in files if path.startswith(("sbin/", "lib/", "bin/"))]
    wrappers = {path for path in files if path.startswith("usr/sbin/")}
    assert wrappers == {f"usr/sbin/{command}" for command in lvm.COMMANDS}
    for command in lvm.COMMANDS:
        assert files[f"usr/sbin/{command}"] == (
            0o755,
            f'#!/usr/bin/python3\nimport sys\nfrom ganeti_zfs.lvm.main import main\nsys.exit(main("{command}"))\n',
        )


def test_stub_targets_exist():
    assert callable(importlib.import_module("ganeti_zfs.provider").main)
    assert callable(importlib.import_module("ganeti_zfs.lvm.main").main)
    assert callable(cli.main)


def run_generated(tmp_path, relative, args=(), env=None):
    gen_entrypoints.write(str(tmp_path))
    environ = dict(os.environ, PYTHONPATH=ROOT, GANETI_ZFS_CONFIG=str(tmp_path / "missing.conf"), **(env or {}))
    return subprocess.run(
        [sys.executable, str(tmp_path / relative), *args], capture_output=True, text=True, env=environ, cwd=tmp_path
    )


def test_written_files_have_their_modes(tmp_path):
    gen_entrypoints.write(str(tmp_path))
    for path, (mode, content) in gen_entrypoints.files().items():
        target = tmp_path / path
        assert target.read_text() == content
        assert target.stat().st_mode & 0o777 == mode


def test_generated_provider_script_runs_the_provider(tmp_path):
    # Without a config file the provider must fail with one line on stderr
    # and nothing on stdout (Ganeti reads attach's stdout).
    result = run_generated(tmp_path, f"{PROVIDER_DIR}/attach", env={"VOL_NAME": "x.ext.disk0"})
    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "missing.conf" in result.stderr


def test_generated_helper_script_runs_the_subcommand(tmp_path):
    result = run_generated(tmp_path, f"{PROVIDER_DIR}/bin/list", ["--help"])
    assert result.returncode == 0
    assert result.stdout.startswith("usage: ganeti-zfs list")


def test_hook_program_and_its_links(tmp_path):
    mode, content = gen_entrypoints.files()[hooks.PROGRAM]
    assert (mode, content) == (0o755, "#!/usr/bin/python3\nimport sys\nfrom ganeti_zfs.hooks import main\nsys.exit(main())\n")
    gen_entrypoints.write(str(tmp_path))
    assert sorted(gen_entrypoints.links()) == sorted(hooks.hook_links())
    for link in hooks.hook_links():
        # Links, not files: dpkg removes them with the package (a conffile would stay).
        assert os.path.islink(tmp_path / link)
        assert os.path.realpath(tmp_path / link) == str(tmp_path / hooks.PROGRAM)
    gen_entrypoints.write(str(tmp_path))  # again over the links: as a rebuild does


def test_generated_hook_passes_an_instance_without_zfs_disks(tmp_path):
    environ = {"GANETI_INSTANCE_DISK_COUNT": "1", "GANETI_INSTANCE_DISK0_DEV_TYPE": "plain"}
    result = run_generated(tmp_path, hooks.hook_links()[0], env=environ)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_lvm_commands_for_the_maintainer_scripts():
    result = subprocess.run([os.path.join(ROOT, "scripts", "gen-entrypoints"), "--lvm-commands"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == list(lvm.COMMANDS)


# -- maintainer scripts ----------------------------------------------------------------


@pytest.mark.parametrize("script", ["preinst", "postinst", "postrm"])
def test_maintainer_script_syntax(script, tmp_path):
    text = read("debian", f"ganeti-extstorage-zfs.{script}")
    assert "#DEBHELPER#" in text
    assert text.startswith("#!/bin/sh\nset -e\n")
    path = tmp_path / script
    path.write_text(text.replace("#DEBHELPER#", ":").replace("#LVM_COMMANDS#", " ".join(lvm.COMMANDS)))
    subprocess.run(["sh", "-n", str(path)], check=True)


def test_preinst_diverts_the_commands_rules_fill_in():
    preinst = read("debian", "ganeti-extstorage-zfs.preinst")
    assert 'LVM_COMMANDS="#LVM_COMMANDS#"' in preinst
    assert 'divert "/sbin/$command" "/sbin/$command.distrib.usr-is-merged"' in preinst
    assert 'divert "/usr/sbin/$command" "/usr/sbin/$command.distrib"' in preinst
    # The wrappers run lvm2's lvm, whichever diversion holds the command's link.
    decide = importlib.import_module("ganeti_zfs.lvm.decide")
    assert decide.real_tool("lvs") == ("/usr/sbin/lvm", "lvs")
    assert "LVM_COMMANDS=$(shell scripts/gen-entrypoints --lvm-commands)" in read("debian", "rules")


def test_maintainer_scripts_use_the_log_directory_ganeti_uses():
    # Ganeti's LOG_ES_DIR; the tmpfiles.d rule ages the same directory.
    log_dir = "LOG_DIR=/var/log/ganeti/extstorage\n"
    assert log_dir in read("debian", "ganeti-extstorage-zfs.postinst")
    assert log_dir in read("debian", "ganeti-extstorage-zfs.postrm")
    assert tmpfiles_rules() == ["e /var/log/ganeti/extstorage - - - m:30d", "d /run/ganeti-extstorage-zfs 0700 root root -"]


def tmpfiles_rules():
    return [line for line in read("debian", "ganeti-extstorage-zfs.tmpfiles").splitlines()
            if line and not line.startswith("#")]


def test_tmpfiles_rule_makes_the_lock_directory_root_only(tmp_path):
    # The node lock's directory (lock.py), made by the real systemd-tmpfiles
    # as at boot; lock.py accepts what it makes.
    from ganeti_zfs import lock

    (rule,) = [line for line in tmpfiles_rules() if line.startswith("d ")]
    assert rule.split()[1] == lock.RUNTIME_DIR == os.path.dirname(lock.DEFAULT_PATH)
    directory = tmp_path / "ganeti-extstorage-zfs"
    config_file = tmp_path / "rule.conf"
    config_file.write_text(rule.replace(lock.RUNTIME_DIR, str(directory)) + "\n")
    subprocess.run(["systemd-tmpfiles", "--create", str(config_file)], check=True)
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    lock.check_directory(str(directory))


def test_tmpfiles_rule_ages_out_only_old_logs(tmp_path):
    # The package's rule, run by the real systemd-tmpfiles on a copy of the
    # directory: what systemd-tmpfiles-clean.timer does on a node.
    (rule,) = [line for line in tmpfiles_rules() if line.startswith("e ")]
    logs = tmp_path / "extstorage"
    logs.mkdir()
    config_file = tmp_path / "rule.conf"
    config_file.write_text(rule.replace("/var/log/ganeti/extstorage", str(logs)) + "\n")
    old, recent = logs / "create-zfs-vol.ext.disk0-1.log", logs / "attach-zfs-vol.ext.disk0-2.log"
    old.write_text("")
    recent.write_text("")
    forty_days_ago = time.time() - 40 * 86400
    os.utime(old, (time.time(), forty_days_ago))  # read today, last written 40 days ago
    os.utime(recent, (forty_days_ago, time.time() - 29 * 86400))
    subprocess.run(["systemd-tmpfiles", "--clean", str(config_file)], check=True)
    assert sorted(path.name for path in logs.iterdir()) == [recent.name]


# -- the daily job: cron and systemd ------------------------------------------------

JOB = "/usr/bin/ganeti-zfs snapshot --quiet"


def unit(name):
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(read("debian", f"ganeti-extstorage-zfs.{name}"))
    return parser


def test_timer_runs_the_service_daily():
    timer = unit("timer")
    assert timer["Timer"]["OnCalendar"] == "daily"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["RandomizedDelaySec"]
    assert timer["Install"]["WantedBy"] == "timers.target"
    service = unit("service")
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["ExecStart"] == JOB


def test_cron_job_runs_the_same_command_unless_systemd_or_removed():
    lines = [line for line in read("cron", "ganeti-extstorage-zfs").splitlines() if line and not line.startswith("#")]
    assert lines == [
        "[ -x /usr/bin/ganeti-zfs ] || exit 0",
        "[ -d /run/systemd/system ] && exit 0",
        "if command -v systemd-tmpfiles >/dev/null; then",
        "    systemd-tmpfiles --clean ganeti-extstorage-zfs.conf",
        "fi",
        f"exec {JOB}",
    ]
    subprocess.run(["sh", "-n", os.path.join(ROOT, "cron", "ganeti-extstorage-zfs")], check=True)
    assert os.access(os.path.join(ROOT, "cron", "ganeti-extstorage-zfs"), os.X_OK)


def test_snapshot_subcommand_has_quiet():
    help_text = subprocess.run([sys.executable, "-m", "ganeti_zfs.cli", "snapshot", "--help"],
                               capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "--quiet" in help_text


# -- man pages --------------------------------------------------------------------------


def test_every_subcommand_and_option_is_in_the_man_page():
    page = read("man", "ganeti-zfs.8.md").replace("\\-", "-")
    subparsers = next(action for action in cli.build_parser()._actions if action.dest == "command")
    assert set(subparsers.choices) == set(cli.SUBCOMMANDS)
    for name, parser in subparsers.choices.items():
        assert f"**{name}**\n:   " in page, f"subcommand {name} has no entry in COMMANDS"
        for action in parser._actions:
            if action.help == "==SUPPRESS==":
                continue
            for option in action.option_strings:
                assert f"**{option}**" in page, f"{name} {option} is not in ganeti-zfs(8)"


def test_man_markers_are_all_known():
    for path, _name, _section in gen_man.sources():
        with open(path, encoding="utf-8") as file:
            text = file.read()
        assert not gen_man.MARKER.search(gen_man.expand(text, path))


def test_generated_man_sections_list_the_code():
    keys = gen_man.config_keys()
    for key, (_parser, default, _description) in config.KEYS.items():
        assert f"**{key}**={gen_man._escape(default)}\n:   " in keys
    params = gen_man.ext_params()
    assert all(f"**{name}**\n" in params for name in options.EXT_PARAMS)
    names = gen_man.action_list()
    assert all(f"**{name}**\n" in names for name in actions.ACTION_NAMES)


def test_one_man_page_per_installed_command():
    pages = {(name, section) for _path, name, section in gen_man.sources()}
    assert pages == {("ganeti-extstorage-zfs", "7"), ("ganeti-zfs", "8"), ("ganeti-zfs-lvm", "8")}
    assert read("debian", "ganeti-extstorage-zfs.manpages").split() == ["debian/generated/man/*"]


def test_man_pages_render_without_warnings(tmp_path):
    subprocess.run([os.path.join(ROOT, "scripts", "gen-man"), str(tmp_path)], check=True,
                   capture_output=True, env=dict(os.environ, SOURCE_DATE_EPOCH="0"))
    pages = sorted(tmp_path.iterdir())
    assert [page.name for page in pages] == ["ganeti-extstorage-zfs.7", "ganeti-zfs-lvm.8", "ganeti-zfs.8"]
    for page in pages:
        result = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True, text=True,
                                env=dict(os.environ, MANWIDTH="80"))
        assert result.returncode == 0
        assert result.stderr == "", f"{page.name}: {result.stderr}"
        assert "1970-01-01" in result.stdout  # the date is SOURCE_DATE_EPOCH's
    # Text from the code reaches the page as written (Markdown-escaped).
    assert "(default: ZFS_PARENT, as in the original)" in " ".join((tmp_path / "ganeti-extstorage-zfs.7").read_text().split())
