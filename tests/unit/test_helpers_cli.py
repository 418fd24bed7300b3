"""`ganeti-zfs`: subcommand registration, options, errors as one line."""

import importlib

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
