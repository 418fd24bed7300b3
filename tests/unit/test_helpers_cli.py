"""`ganeti-zfs`: subcommand registration, options, errors as one line."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from ganeti_zfs import cli


@pytest.mark.parametrize("name", sorted(cli.SUBCOMMANDS))
def test_every_registered_subcommand_resolves(name):
    module_name, function_name, help_text = cli.SUBCOMMANDS[name]
    assert callable(getattr(importlib.import_module(module_name), function_name))
    assert help_text


@pytest.mark.parametrize(
    "argv, config, as_json",
    [
        (["list"], None, False),
        (["-c", "/x.conf", "list"], "/x.conf", False),
        (["size", "-c", "/y.conf", "--json"], "/y.conf", True),
        (["snapshots", "--config=/z.conf", "--json"], "/z.conf", True),
    ],
)
def test_options(argv, config, as_json):
    args = cli.build_parser().parse_args(argv)
    assert (args.config or args.global_config) == config
    assert args.json is as_json


def test_verify_has_no_json():
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["verify", "--json"])


def test_unknown_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["frobnicate"])
    assert raised.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["list", "size", "snapshots", "verify"])
def test_missing_config_is_one_line(capsys, tmp_path, command):
    status = cli.main([command, "-c", str(tmp_path / "none.conf")])
    out, err = capsys.readouterr()
    assert status == 1 and out == ""
    assert err.splitlines() == [f"ganeti-zfs {command}: configuration file {tmp_path / 'none.conf'} does not exist"]


def test_config_without_parent_is_one_line(capsys, tmp_path):
    path = tmp_path / "c.conf"
    path.write_text("LVM_VG=gnt\n")
    status = cli.main(["list", "-c", str(path)])
    out, err = capsys.readouterr()
    assert status == 1 and out == ""
    assert err.splitlines() == [f"ganeti-zfs list: ZFS_PARENT is not set in {path}"]


@pytest.mark.parametrize(
    "argv, command",
    [
        (["list"], "list"),
        (["-c", "snapshot", "list", "--json"], "list"),
        (["--config", "check", "size"], "size"),
        (["--config=/x.conf", "-c/y.conf", "snapshots"], "snapshots"),
        (["--help"], None),
        (["-c", "/x.conf"], None),
    ],
)
def test_named_command_is_the_one_argparse_chooses(argv, command):
    assert cli.named_command(argv) == command
    if command:
        assert cli.build_parser(command).parse_args(argv).command == command


def test_a_subcommand_imports_only_its_own_module(tmp_path):
    """Start-up time (docs/benchmarks.md): `ganeti-zfs list` loads neither the
    snapshot job, the monitoring check nor the provider."""
    conffile = tmp_path / "extstorage-zfs.conf"
    conffile.write_text("ZFS_PARENT=tank/ganeti\n")
    code = (
        "import sys\n"
        "from ganeti_zfs import cli\n"
        "args = cli.build_parser(cli.named_command(sys.argv[1:])).parse_args(sys.argv[1:])\n"
        "print(args.function.__module__, ' '.join(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, "-c", str(conffile), "list", "--json"],
                            cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, check=True)
    chosen, *modules = result.stdout.split()
    assert chosen == "ganeti_zfs.helpers"
    assert not {"ganeti_zfs.scheduled", "ganeti_zfs.check", "ganeti_zfs.provider", "dataclasses"} & set(modules)
