"""Entry point of the diverted /usr/sbin/<command> stubs: sys.exit(main("lvs")).

The rule: ZFS answers only what names the emulated VG, its LVs or its PV.
Everything else is exec'd to the real tool with argv unchanged, so its
output and exit status reach the caller as if we were not there. If the
emulation cannot work (no config, LVM_VG empty, a broken config) LVM keeps
working for every other VG.
"""

import os
import re
import shlex
import sys

from .. import config, log
from ..errors import ConfigError, Error, UsageError
# Only what deciding needs: the pass-through execs before state, report and
# commands (and zfs, subprocess) are imported.
from . import COMMANDS, EXIT_FAILED, args as args_module, decide

# lvm2's exit statuses: 3 = invalid command line, 5 = command failed.
EXIT_USAGE = 3


def exec_real(command, argv):
    """Replace this process with the real LVM command (never returns)."""
    path, full_argv = decide.exec_argv(command, argv)
    try:
        os.execv(path, full_argv)
    except OSError as error:
        print(f"{command}: cannot run the real LVM tool {path}: {error.strerror}", file=sys.stderr)
        return 127


_VG_LINE = re.compile(r"^\s*(?:export\s+)?(?:LVM_VG|EXTP_VG)=(.*)$")


def _raw_vg(path=None):
    """LVM_VG from a config file that does not load, to tell whether an argv was meant for us.

    A plain scan for the assignment, so that an error anywhere else in the
    file cannot hide it.
    """
    path = path or os.environ.get(config.PATH_VARIABLE) or config.DEFAULT_PATH
    vg = ""
    try:
        with open(path, encoding="utf-8") as file:
            for line in file:
                match = _VG_LINE.match(line)
                if match:
                    words = shlex.split(match.group(1), comments=True)
                    vg = words[0] if words else vg
    except (OSError, ValueError):
        pass
    return vg


def load_emulation():
    """(vg, lvm_parent, cfg) or raises ConfigError."""
    cfg = config.load()
    vg = cfg.lvm_vg
    if not vg:
        return None
    parent = cfg.lvm_parent
    if ":" in parent:
        raise ConfigError(f"LVM_PARENT {parent!r} contains ':', which Ganeti refuses in PV names")
    return cfg


def main(command, argv=None):
    if command not in COMMANDS:
        raise SystemExit(f"ganeti-zfs lvm: unknown command {command!r}")
    argv = sys.argv[1:] if argv is None else argv
    log.set_prefix(command)
    try:
        cfg = load_emulation()
    except ConfigError as error:
        vg = _raw_vg()
        if vg and decide.mentions_vg(argv, vg, None):
            print(f"  {command}: LVM emulation of VG {vg} is off: {error}", file=sys.stderr)
        return exec_real(command, argv)
    if cfg is None:
        return exec_real(command, argv)
    vg = cfg.lvm_vg
    pv_name = decide.pv_name(cfg.lvm_parent)
    if command in decide.DISPLAYS:
        parsed, plan = argv, decide.decide_display(argv, vg, pv_name)
    else:
        try:
            parsed = args_module.parse(command, argv)
        except args_module.ArgsError as error:
            if decide.mentions_vg(argv, vg, pv_name):
                print(f"  {error} (for the emulated VG {vg})", file=sys.stderr)
                return EXIT_USAGE
            return exec_real(command, argv)
        plan = decide.decide(parsed, vg, pv_name)
    if plan.kind == decide.REAL:
        return exec_real(command, argv)
    clash = decide.real_vg_evidence(vg)
    if clash:
        # lvm2 would answer for that VG: ours must not hide or shadow it.
        print(f"  {command}: LVM emulation of VG {vg} is off: a real volume group {vg} exists on this node ({clash}); "
              "rename LVM_VG", file=sys.stderr)
        return exec_real(command, argv)
    if plan.kind == decide.MIXED:
        print(f"  {command}: cannot handle LVs of the emulated VG {vg} and of other VGs in one command", file=sys.stderr)
        return EXIT_USAGE
    return run(command, parsed, plan, cfg)


def run(command, parsed, plan, cfg):
    from .commands import Emulation  # only needed when we answer

    log.enable_debug(cfg.debug)
    emulation = Emulation(cfg)
    try:
        if command in decide.LISTINGS:
            return emulation.listing(parsed, plan)
        if command in decide.DISPLAYS:
            return emulation.display(command, parsed, plan)
        return getattr(emulation, command)(parsed)
    except UsageError as error:
        print(f"  {error}", file=sys.stderr)
        return EXIT_USAGE
    except (Error, OSError) as error:  # zfs errors are Errors; OSError: /dev links
        print(f"  {error}", file=sys.stderr)
        return EXIT_FAILED
