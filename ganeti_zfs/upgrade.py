"""Upgrading a node: from the original shell tool, and from our version 0.1.

The original tool (ffzg's ganeti-extstorage-zfs, a git tree cloned into
/usr/share/ganeti/extstorage/zfs) leaves on a node, per its README and
source (facts summed up in README.md, "Upgrading from the shell tool"):
- settings in the tree's `defaults.sh` (lines `test -z "$EXTP_ZFS" &&
  EXTP_ZFS=tank/ganeti`) and an optional `etc/<hostname -s>.sh`, which is
  sourced first, so that its values win;
- zvols directly under EXTP_ZFS, with Ganeti's names: `<uuid>.ext.diskN`
  made by its provider and `<uuid>.diskN[_data|_meta]` made by its lvcreate
  for the plain and drbd templates (its LVs lived in EXTP_ZFS too), none
  with our owner mark (properties.OWNER);
- daily snapshots `<zvol>@YYYY-MM-DD` from its cron job, with no retention.

The package's preinst saves the tree to ORIGINAL_COPY before dpkg replaces
the provider scripts in it; its postinst then runs `python3 -m
ganeti_zfs.upgrade postinst OLD_VERSION`, which carries the settings over,
takes over the volumes (import_original) and keeps 0.1's LVM parent
(keep_lvm_parent). `ganeti-zfs import-original` runs the same take-over by
hand, e.g. after a pool was imported later.

The rule for taking over a volume: a zvol (type volume) directly under the
configured parent with a name Ganeti gives, and no owner mark set locally.
Nothing else is touched. Its date-named snapshots are marked as the
original's (SNAPSHOT_KIND=original) so that retention never prunes them,
unless the admin hands them to retention with --prune-original-snapshots.
"""

import contextlib
import datetime
import os
import re
import shlex
import socket
import sys

from . import config, lock, log, properties
from . import zfs as zfs_module
from .errors import ConfigError, Error

ORIGINAL_TREE = "/usr/share/ganeti/extstorage/zfs"
ORIGINAL_COPY = "/var/lib/ganeti-extstorage-zfs/original-tool"
# Written into ORIGINAL_COPY when its settings and volumes were taken over.
DONE_MARK = ".taken-over-by-ganeti-extstorage-zfs"

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
EXT_NAME = re.compile(rf"^{_UUID}\.ext\.disk[0-9]+$")
LV_NAME = re.compile(rf"^{_UUID}\.disk[0-9]+(_data|_meta)?$")
ORIGINAL_SNAPSHOT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")



# -- settings ------------------------------------------------------------------


def original_settings(tree, hostname=None):
    """({key: value} in our key names, [notes]) from the tree's shell files."""
    hostname = hostname or socket.gethostname().split(".")[0]
    texts, notes = [], []
    for name in (f"etc/{hostname}.sh", "defaults.sh"):
        path = os.path.join(tree, name)
        try:
            with open(path, encoding="utf-8") as file:
                texts.append((path, file.read()))
        except FileNotFoundError:
            continue
        except OSError as error:
            notes.append(f"cannot read {path}: {error.strerror}")
    seen = {}
    for path, text in texts:
        skipped = []
        # One file after the other, as the shell sources them, the host's
        # first: a later `test -z "$X" && X=...` keeps the earlier value.
        config.parse_text(text, path, skipped=skipped, seen=seen)
        notes += [f"not carried over: {line}" for line in skipped]
    settings = {key: value for key, value in seen.items() if key in config.KEYS and value}
    return settings, notes


def carry_settings(cfg_path, settings, source, today=None, dry_run=False):
    """Append to the config file the settings it has no value for; returns them."""
    with open(cfg_path, encoding="utf-8") as file:
        present = config.parse_text(file.read(), cfg_path)
    carried = {key: value for key, value in settings.items() if not present.get(key)}
    if carried:
        today = today or datetime.date.today()
        append_settings(cfg_path, [
            f"Carried over from the original shell tool's {source}",
            f"by ganeti-extstorage-zfs on {today.isoformat()} (README.md, \"Upgrading from the shell tool\").",
        ], carried, dry_run)
    return carried


def append_settings(cfg_path, comments, settings, dry_run=False):
    """Append `## comments` and KEY=value lines to the config file: atomically,
    keeping its mode, and only if the result loads."""
    with open(cfg_path, encoding="utf-8") as file:
        text = file.read()
    block = ["", *(f"## {line}" for line in comments), *(f"{key}={shlex.quote(value)}" for key, value in settings.items())]
    new_text = text.rstrip("\n") + "\n" + "\n".join(block) + "\n"
    # The result must load before it replaces a working file.
    config.build(config.parse_text(new_text, cfg_path), cfg_path)
    if not dry_run:
        temporary = f"{cfg_path}.ganeti-zfs-new"
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(new_text)
        os.chmod(temporary, os.stat(cfg_path).st_mode & 0o7777)
        os.replace(temporary, cfg_path)


# -- volumes -------------------------------------------------------------------


def plan_take_over(cfg, values):
    """What to mark: ([(dataset, owner)], [(snapshot, date)], [(dataset, why left)]).

    `values` is get_with_source's answer for the parents to depth 2:
    {name: {property: (value, source)}}.
    """
    ext_parent = cfg.parent
    lvm_parent = cfg.lvm_parent if cfg.lvm_vg else None
    volumes, left = [], []
    owned = set()
    for name in sorted(values):
        props = values[name]
        if "@" in name or props.get("type", ("",))[0] != "volume":
            continue
        parent, _slash, short = name.rpartition("/")
        owner, source = props.get(properties.OWNER, ("-", "-"))
        if source == "local":
            owned.add(name)
            continue
        if parent == ext_parent and EXT_NAME.match(short):
            volumes.append((name, properties.OWNER_EXT))
        elif parent == lvm_parent and LV_NAME.match(short):
            volumes.append((name, properties.OWNER_LVM))
        elif parent in (ext_parent, lvm_parent):
            if not LV_NAME.match(short):
                why = "not a name Ganeti gives"
            elif lvm_parent is None:
                why = "an LV name, but LVM_VG is not set"
            else:
                why = f"an LV name, but the LVs of {cfg.lvm_vg} are in {lvm_parent}"
            left.append((name, why))
    owned |= {name for name, _owner in volumes}
    snapshots = []
    for name in sorted(values):
        volume, at, short = name.partition("@")
        if not at or volume not in owned or not ORIGINAL_SNAPSHOT.match(short):
            continue
        kind, source = values[name].get(properties.SNAPSHOT_KIND, ("-", "-"))
        if source == "local" or kind not in ("-", ""):
            continue
        try:
            datetime.date.fromisoformat(short)
        except ValueError:
            continue
        snapshots.append((name, short))
    return volumes, snapshots, left


def import_original(cfg, zfs, prune_original_snapshots=False, dry_run=False, say=print):
    """Take over the original's volumes and snapshots (see the module's rule)."""
    parents = list(dict.fromkeys([cfg.parent] + ([cfg.lvm_parent] if cfg.lvm_vg else [])))
    fields = ("type", properties.OWNER, properties.SNAPSHOT_KIND)
    values = {}
    for parent in parents:
        try:
            values.update(zfs.get_with_source(parent, fields, types=("volume", "snapshot"), depth=2))
        except zfs_module.DoesNotExist:
            say(f"{parent} does not exist: nothing to take over there")
    volumes, snapshots, left = plan_take_over(cfg, values)
    verb = "would take over" if dry_run else "took over"
    with contextlib.nullcontext() if dry_run else lock.exclusive(timeout=600):
        for dataset, owner in volumes:
            kind = "ext volume" if owner == properties.OWNER_EXT else f"LV of volume group {cfg.lvm_vg}"
            if not dry_run:
                zfs.set(dataset, {properties.OWNER: owner})
                if owner == properties.OWNER_LVM:
                    _link(cfg, dataset, say)
            say(f"{verb} {dataset} ({kind})")
        kind = properties.SNAPSHOT_KIND_DAILY if prune_original_snapshots else properties.SNAPSHOT_KIND_ORIGINAL
        for snapshot, day in snapshots:
            if not dry_run:
                zfs.set(snapshot, {properties.SNAPSHOT_KIND: kind, properties.SNAPSHOT_DATE: day})
        if snapshots:
            fate = ("handed to retention (KEEP_*)" if prune_original_snapshots
                    else "kept: never pruned (--prune-original-snapshots hands them to retention)")
            say(f"{len(snapshots)} daily snapshots of the original tool {fate}")
    for dataset, why in left:
        say(f"left alone {dataset}: {why}")
    if not volumes:
        say("no volumes of the original tool to take over")
    return volumes, snapshots, left


def _link(cfg, dataset, say):
    """/dev/<vg>/<lv> for a taken-over LV, as lvcreate makes it."""
    from .lvm import links

    lv = dataset.rpartition("/")[2]
    try:
        links.ensure(cfg.lvm_vg, lv, dataset, cfg.attach_timeout)
    except Error as error:
        say(f"warning: /dev/{cfg.lvm_vg}/{lv}: {error}; `lvchange -ay {cfg.lvm_vg}/{lv}` makes it later")


# -- 0.1's LVM parent ----------------------------------------------------------


def keep_lvm_parent(cfg_path, zfs, say=print):
    """Version 0.1 put the LVs in <pool of ZFS_PARENT>/<LVM_VG> when LVM_PARENT
    was empty; now the default is ZFS_PARENT. Pin the old one where it is used."""
    with open(cfg_path, encoding="utf-8") as file:
        text = file.read()
    raw = config.parse_text(text, cfg_path)
    if raw.get("LVM_PARENT") or not raw.get("LVM_VG") or not raw.get("ZFS_PARENT"):
        return None
    old_parent = f"{raw['ZFS_PARENT'].split('/')[0]}/{raw['LVM_VG']}"
    if old_parent == raw["ZFS_PARENT"] or not zfs.exists(old_parent):
        return None
    append_settings(cfg_path, ["Added on upgrade from 0.1, whose default this was (the default is now ZFS_PARENT)."],
                    {"LVM_PARENT": old_parent})
    say(f"kept the LVs of volume group {raw['LVM_VG']} in {old_parent}: LVM_PARENT={old_parent} added to {cfg_path}")
    return old_parent


# -- the command and the postinst ------------------------------------------------


def add_arguments(parser):
    parser.add_argument("--tree", default=ORIGINAL_COPY,
                        help=f"the original tool's tree, for its settings (default: {ORIGINAL_COPY})")
    parser.add_argument("--prune-original-snapshots", action="store_true",
                        help="let retention (KEEP_*) prune the original's daily snapshots too")
    parser.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")


def take_over(cfg_path, tree, zfs_factory, prune_original_snapshots=False, dry_run=False, say=print):
    """Settings, then volumes; returns the Config in force afterwards."""
    settings, notes = original_settings(tree) if os.path.isdir(tree) else ({}, [])
    for note in notes:
        say(note)
    if settings:
        carried = carry_settings(cfg_path, settings, f"settings in {tree}", dry_run=dry_run)
        for key, value in carried.items():
            say(f"{'would carry' if dry_run else 'carried'} {key}={value} into {cfg_path}")
        if not carried:
            say(f"{cfg_path} already has a value for each of the original's settings")
    cfg = config.load(cfg_path)
    if dry_run and settings:
        with open(cfg_path, encoding="utf-8") as file:
            merged = {**settings, **{k: v for k, v in config.parse_text(file.read(), cfg_path).items() if v}}
        cfg = config.build(merged, cfg_path)
    if not cfg.zfs_parent:
        raise ConfigError(f"ZFS_PARENT is not set in {cfg_path} (nor in the original's settings): nothing to take over")
    import_original(cfg, zfs_factory(cfg), prune_original_snapshots, dry_run, say)
    return cfg


def import_original_command(args, cfg, zfs):
    """`ganeti-zfs import-original`."""
    take_over(cfg.path, args.tree, lambda _cfg: zfs, args.prune_original_snapshots, args.dry_run)


def postinst(old_version, cfg_path=config.DEFAULT_PATH, copy=ORIGINAL_COPY):
    """What the postinst runs; never fails the install (it says what to run instead)."""
    def say(text):
        print(f"ganeti-extstorage-zfs: {text}", flush=True)

    if os.path.isdir(copy) and not os.path.exists(os.path.join(copy, DONE_MARK)):
        say(f"the original shell tool's tree was saved in {copy}")
        try:
            take_over(cfg_path, copy, lambda cfg: zfs_module.Zfs(timeout=cfg.zfs_timeout), say=say)
            with open(os.path.join(copy, DONE_MARK), "w") as file:
                file.write(f"{datetime.datetime.now().isoformat()}\n")
        except Error as error:
            say(f"warning: the original tool's volumes were not taken over: {error}")
            say("warning: fix that, then run: ganeti-zfs import-original")
    if old_version and _older_than_0_2(old_version):
        try:
            keep_lvm_parent(cfg_path, zfs_module.Zfs(timeout=60), say)
        except Error as error:
            say(f"warning: could not check 0.1's LVM parent: {error}; if LVM_VG is set, set LVM_PARENT to <pool>/<LVM_VG>")


def _older_than_0_2(version):
    import subprocess

    return subprocess.run(["dpkg", "--compare-versions", version, "lt", "0.2.0~"]).returncode == 0


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[1] != "postinst":
        print("usage: python3 -m ganeti_zfs.upgrade postinst [OLD_VERSION]", file=sys.stderr)
        sys.exit(2)
    log.set_prefix("ganeti-extstorage-zfs postinst")
    # Warnings only: exit 0 either way, so that dpkg configures the package.
    postinst(sys.argv[2] if len(sys.argv) == 3 else "")
    sys.exit(0)
