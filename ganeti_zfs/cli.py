"""`ganeti-zfs`, the admin command: one subcommand per task.

A subcommand is one line in SUBCOMMANDS: its module, the function run as
function(args, cfg, zfs) (returning the exit status, or None for 0), and
its help line. If the module has add_arguments(parser), it adds the
subcommand's own options. The original's bin/list, bin/size and
bin/snapshots are stubs calling main(["list", *sys.argv[1:]]) and so on.
"""

import argparse
import importlib
import sys

from . import __version__, config, log
from . import zfs as zfs_module

# name -> (module, function, help)
SUBCOMMANDS = {
    "list": ("ganeti_zfs.helpers", "list_command", "show the parent dataset and its volumes"),
    "size": ("ganeti_zfs.helpers", "size_command", "show the size (volsize) of every volume"),
    "snapshots": ("ganeti_zfs.helpers", "snapshots_command", "show the snapshots under the parent dataset"),
    "verify": ("ganeti_zfs.provider", "verify_command", "check the config, the parent dataset and its pool"),
    "snapshot": ("ganeti_zfs.scheduled", "run", "take the scheduled snapshots that are due, prune old ones (cron)"),
    "check": ("ganeti_zfs.check", "run", "monitoring plugin: snapshot freshness, pool health and capacity"),
    "import-original": ("ganeti_zfs.upgrade", "import_original_command",
                        "take over the settings, volumes and snapshots of the original shell tool"),
    "move": ("ganeti_zfs.move", "run", "move an instance with zfs ext disks to another node by zfs send"),
    "adopt": ("ganeti_zfs.adopt", "run", "copy a zvol's snapshot to a new LV for gnt-instance add --disk 0:adopt=NAME"),
}


def build_parser(command=None):
    """The parser of every subcommand, or, given `command`, of that one in full.

    Given `command`, only its module is imported: `ganeti-zfs list` need not
    load the snapshot job or the provider (start-up time, docs/benchmarks.md).
    The other subcommands still get their name and help line, all that
    choosing between them needs.
    """
    parser = argparse.ArgumentParser(
        prog="ganeti-zfs", description="Ganeti ExtStorage provider and LVM emulation on local ZFS zvols."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # On every subcommand, so that both `ganeti-zfs -c F list` and
    # `ganeti-zfs list -c F` work.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c", "--config", metavar="PATH", help=f"configuration file (default: ${config.PATH_VARIABLE} or {config.DEFAULT_PATH})"
    )
    parser.add_argument("-c", "--config", metavar="PATH", dest="global_config", help=argparse.SUPPRESS)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, function_name, help_text) in SUBCOMMANDS.items():
        subparser = subparsers.add_parser(name, parents=[common], help=help_text, description=help_text)
        if command not in (None, name):
            continue
        module = importlib.import_module(module_name)
        if hasattr(module, "add_arguments"):
            module.add_arguments(subparser)
        subparser.set_defaults(function=getattr(module, function_name))
    return parser


# A monitoring plugin's own failure (bad config, bad option, a bug) must read
# as UNKNOWN (3), never as WARNING (1) or CRITICAL (2).
FAILURE_STATUS = {"check": 3}


def named_command(argv):
    """The subcommand argv names, as argparse will find it: its first word that
    is neither an option nor the value of -c/--config."""
    words = iter(argv)
    for word in words:
        if word in ("-c", "--config"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    command = named_command(argv)
    failure_status = FAILURE_STATUS.get(command)
    try:
        args = build_parser(command if command in SUBCOMMANDS else None).parse_args(argv)
    except SystemExit as exit:
        if exit.code and failure_status:
            return failure_status
        raise
    log.set_prefix(f"ganeti-zfs {args.command}")
    if failure_status:
        return log.run_reporting_errors(lambda: _run(args), error_status=failure_status, bug_status=failure_status)
    return log.run_reporting_errors(lambda: _run(args))


def _run(args):
    cfg = config.load(args.config or args.global_config)
    if cfg.debug:
        log.enable_debug()
    try:
        return args.function(args, cfg, zfs_module.Zfs(timeout=cfg.zfs_timeout))
    except BrokenPipeError:
        # `ganeti-zfs list | head` is not an error.
        return 0


if __name__ == "__main__":
    sys.exit(main())
