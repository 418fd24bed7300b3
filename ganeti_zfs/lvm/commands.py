"""The LVM commands, answered from ZFS for the emulated VG.

Each function takes parsed Args and returns the exit status. Messages
follow lvm2's wording; failures raise Error (one line on stderr, exit 5,
LVM's "command failed") before anything is changed.
"""

import re
import subprocess
import sys

from .. import lock, properties
from .. import volume as volume_module
from .. import zfs as zfs_module
from ..errors import Error, UsageError
from . import EXIT_FAILED, decide, links, report, state

SIZE_RE = re.compile(r"^([+-]?)([0-9]+(?:\.[0-9]*)?)([bBsSkKmMgGtTpPeE]?)$")
# LV names both LVM (Ganeti's _VALID_NAME_RE) and ZFS accept: no '+', which ZFS refuses.
LV_NAME_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_+.\-/=!:&#]+$")


def parse_size(text, default_unit="m"):
    """(sign, bytes) of an LVM size argument such as 10240m, +1024k, 1.5g or 512 (MiB).

    As in lvm2, the unit letter's case does not matter: always powers of 1024.
    """
    match = SIZE_RE.match(text or "")
    if not match:
        raise UsageError(f"Invalid size argument {text!r}")
    sign, number, unit = match.groups()
    size = int(float(number) * report.UNIT_FACTORS[(unit or default_unit).lower()])
    return sign, size


def round_to_extent(size):
    return -(-size // report.EXTENT_SIZE) * report.EXTENT_SIZE


def check_lv_name(name, vg):
    if not LV_NAME_RE.match(name or "") or name in (".", "..", "snapshot", "pvmove") or len(name) > 127:
        raise UsageError(f"Logical volume name {name!r} is invalid for the emulated VG {vg} (allowed: A-Z a-z 0-9 _ . -)")
    for reserved in ("_mlog", "_mimage", "_rimage", "_rmeta", "_tdata", "_tmeta", "_cdata", "_cmeta", "_vorigin"):
        if reserved in name:
            raise UsageError(f"Names including {reserved!r} are reserved, not {name!r}")
    return name


def _yes_no(args, option, default):
    value = args.last(option)
    if value is None:
        return default
    if value not in ("y", "n"):
        raise UsageError(f"--{option} takes y or n, not {value!r}")
    return value == "y"


def _activation(value):
    """True for -ay (and ey, ly, sy, y), False for -an; None when not asked."""
    if value is None:
        return None
    if value in ("y", "ay", "ey", "ly", "sy"):
        return True
    if value in ("n", "an", "en", "ln", "sn"):
        return False
    raise UsageError(f"Invalid activation argument {value!r}")


def yes_no_prompt(question, stdin=None, stderr=None):
    """lvm2's yes_no_prompt (lib/display/display.c): the question on stderr, the answer from stdin.

    A line with y or n (either case) answers; a line with both, or with
    neither, asks again; the end of input is no, shown as "[n]" as lvm2 does.
    lvm2 reads stdin whatever it is, so without a terminal or input
    (stdin /dev/null, cron) the answer is no; a y on a pipe is a yes.
    """
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    while True:
        stderr.write(question)
        stderr.flush()
        line = stdin.readline()
        if not line.endswith("\n"):
            stderr.write("[n]\n")  # lvm2 2.03.16's words at the end of input
            return False
        answers = {char for char in line.lower() if char in "yn"}
        if len(answers) == 1:
            return answers == {"y"}


def _run_real(command, argv):
    """The real tool's exit status, its output going straight to ours (byte for byte)."""
    sys.stdout.flush()
    path, full_argv = decide.exec_argv(command, list(argv))
    try:
        return subprocess.run(full_argv, executable=path, check=False).returncode
    except OSError as error:
        print(f"  cannot run the real {command} ({path}): {error.strerror}", file=sys.stderr)
        return EXIT_FAILED


def _first_line(error):
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class VGMissing(state.NotFound):
    pass


def _say(text):
    """lvm2 prints its progress messages on stdout; nothing parses them."""
    print(f"  {text}", flush=True)


class Emulation:
    """The emulated VG `cfg.lvm_vg`, whose LVs are zvols under cfg.lvm_parent."""

    def __init__(self, cfg, zfs=None):
        self.cfg = cfg
        self.vg = cfg.lvm_vg
        self.parent = cfg.lvm_parent
        self.pv_name = decide.pv_name(self.parent)
        self.zfs = zfs or zfs_module.Zfs(timeout=cfg.zfs_timeout)

    def read(self, lvs=True):
        try:
            return state.read(self.zfs, self.vg, self.parent, lvs)
        except zfs_module.DoesNotExist:
            raise VGMissing(f'Volume group "{self.vg}" not found (its dataset {self.parent} does not exist)')

    def dataset(self, lv):
        return f"{self.parent}/{lv}"

    def lv_of(self, word):
        """The LV name in `vg/lv`, `/dev/vg/lv` or `/dev/mapper/vg-lv` of our VG."""
        vg, lv = decide.split_lv_path(word)
        if vg != self.vg or not lv:
            raise UsageError(f"{word!r} does not name a logical volume of the emulated VG {self.vg}")
        return lv

    # -- listings -------------------------------------------------------

    def listing(self, args, plan):
        command = args.command
        rows, status = [], 0
        try:
            report.check_answerable(args)
            style = report.style_of(args)
            fields = report.resolve_fields(command, args.all("options"))
            try:
                current = self.read(lvs=report.needs_lvs(command, fields))
            except VGMissing as error:
                # In a listing of every VG a missing dataset only hides our rows.
                print(f"  {error}", file=sys.stderr)
                status = 0 if plan.kind == decide.MERGED and not args.names() else EXIT_FAILED
            else:
                rows, missing = self._rows(args, current, fields, style)
                for name in missing:
                    print(f'  Failed to find logical volume "{self.vg}/{name}"', file=sys.stderr)
                    status = EXIT_FAILED
        except (Error, OSError) as error:
            if plan.kind != decide.MERGED:
                raise
            return self._real_alone(args, plan, error)
        if plan.kind == decide.MERGED:
            return self._merge(args, plan, fields, style, rows, status)
        sys.stdout.write(report.render(fields, rows, style))
        return status

    def _real_alone(self, args, plan, error):
        """The real tool's report in full, and one line saying why the emulated VG is missing from it.

        What we cannot answer for the emulated VG (a field, an option, a zfs
        failure) never costs the real VGs their answer. The status is the real
        tool's, else 5, lvm2's for a report that is only partly right.
        """
        returncode = _run_real(args.command, plan.real_argv)
        print(f"  Emulated volume group {self.vg} not reported: {_first_line(error)}", file=sys.stderr)
        return returncode or EXIT_FAILED

    def _rows(self, args, current, fields, style):
        """Our rows for a listing, and the LVs asked for that do not exist."""
        vg = current.vg
        if args.command != "lvs":
            return [report.cells(fields, None, vg, style)], []
        ours = [decide.split_lv_path(word)[1] for word in args.names() if decide.names_vg(word, self.vg)]
        if not ours or None in ours:
            names = sorted(current.volumes)
        else:
            names = list(dict.fromkeys(ours))
        found = [name for name in names if name in current.volumes]
        missing = [name for name in names if name not in current.volumes]
        return [report.cells(fields, lv, vg, style) for lv in state.report_lvs(current, found)], missing

    def _merge(self, args, plan, fields, style, rows, status):
        """The real tool's report (run with the caller's argv, minus our names), then our rows.

        The real tool's output is passed on verbatim; our rows follow without
        a second heading line. Columns line up within each part only, which
        no parser minds (separated output has no alignment at all).
        """
        path, argv = decide.exec_argv(args.command, list(plan.real_argv))
        try:
            real = subprocess.run(argv, executable=path, stdout=subprocess.PIPE, check=False)
        except OSError as error:
            print(f"  cannot run the real {args.command} ({path}): {error.strerror}", file=sys.stderr)
            sys.stdout.write(report.render(fields, rows, style))
            return status or EXIT_FAILED
        sys.stdout.flush()
        sys.stdout.buffer.write(real.stdout)
        if real.stdout.strip():
            style = style._replace(headings=False)
        sys.stdout.write(report.render(fields, rows, style))
        return real.returncode or status

    # -- display and scan commands (decide.DISPLAYS) ----------------------

    def use_instead(self, command):
        """The listing that shows what `command` would show of the emulated VG."""
        return f"pvs {self.pv_name}" if command == "pvscan" else f"{'vgs' if command == 'vgdisplay' else 'lvs'} {self.vg}"

    def display(self, command, argv, plan):
        """lvm2's answer for the real VGs, then the emulated VG's lines (lvscan) or where to see it.

        lvdisplay, vgdisplay and pvscan print dozens of fields per volume that
        only lvm2 metadata has (PE numbers, UUIDs of the PV, segments, "VG
        Access"...); lvscan is one line per LV that lvs already knows.
        """
        if plan.kind == decide.EMULATED:
            raise Error(f"{command}: volume group {self.vg} is emulated from ZFS by ganeti-extstorage-zfs; "
                        f"use {self.use_instead(command)}")
        returncode = _run_real(command, argv)
        if command == "lvscan" and not argv:
            try:
                current = self.read()
            except (Error, OSError) as error:
                print(f"  Emulated volume group {self.vg} not reported: {_first_line(error)}", file=sys.stderr)
                return returncode or EXIT_FAILED
            sys.stdout.write("".join(report.lvscan_line(lv, self.vg) for lv in state.report_lvs(current)))
            return returncode
        print(f"  {command}: volume group {self.vg} is emulated from ZFS by ganeti-extstorage-zfs and not shown; "
              f"use {self.use_instead(command)}", file=sys.stderr)
        return returncode

    # -- changes --------------------------------------------------------

    def lvcreate(self, args):
        positionals = args.names()
        if args.has("snapshot"):
            return self._snapshot(args, positionals)
        lv_type = args.last("type", "linear")
        if lv_type not in ("linear", "striped"):
            raise UsageError(f"--type {lv_type} is not supported for the emulated VG {self.vg} (only linear LVs)")
        # `lvcreate ... vg [pv...]`, `lvcreate ... vg/lv` or `lvcreate -n vg/lv ...`
        name_in_path = decide.split_lv_path(positionals[0])[1] if positionals else None
        name = args.last("name") or name_in_path
        if name and "/" in name:
            name = self.lv_of(name)
        self._check_pvs(positionals[1:])
        for option in ("wipesignatures", "zero", "contiguous"):
            _yes_no(args, option, True)
        active = _activation(args.last("activate", "y"))
        tags = [self._check_tag(tag) for tag in args.all("addtag")]
        size = self._requested_size(args)
        with lock.shared():
            current = self.read()
            if not name:
                name = next(f"lvol{n}" for n in range(len(current.volumes) + 1) if f"lvol{n}" not in current.volumes)
            check_lv_name(name, self.vg)
            if name in current.volumes:
                raise Error(f'Logical Volume "{name}" already exists in volume group "{self.vg}"')
            if not current.vg.allocatable:
                raise Error(f'No space left: the emulated PV {self.pv_name} is not allocatable (pvchange -x y)')
            if size > current.vg.free:
                raise Error(
                    f'Volume group "{self.vg}" has insufficient free space ({current.vg.free // report.EXTENT_SIZE} '
                    f"extents): {size // report.EXTENT_SIZE} required."
                )
            if args.has("test"):
                return 0
            self._create_zvol(name, size, tags, active)
        _say(f'Logical volume "{name}" created.')
        return 0

    def _requested_size(self, args):
        sign, size = self._size_argument(args)
        if sign or size <= 0:
            raise UsageError(f"Invalid size {args.last('size') or args.last('extents')!r} for a new LV")
        rounded = round_to_extent(size)
        if rounded != size:
            _say(f"Rounding up size to full physical extent {report.format_size(rounded, 'r')}.")
        return rounded

    def _check_pvs(self, pvs):
        """PV arguments (Ganeti passes the VG's PVs) must be our one PV."""
        for pv in pvs:
            if pv != self.pv_name:
                raise Error(f'Physical Volume "{pv}" not found in Volume Group "{self.vg}".')

    def _size_argument(self, args):
        """(sign, bytes) of -L or -l (4 MiB extents)."""
        if args.has("size"):
            return parse_size(args.last("size"))
        if args.has("extents"):
            sign, extents = self._extents(args.last("extents"))
            return sign, extents * report.EXTENT_SIZE
        raise UsageError("Please specify either size or extents (-L or -l)")

    @staticmethod
    def _extents(text):
        match = re.match(r"^([+-]?)([0-9]+)$", text or "")
        if not match:
            raise UsageError(f"Invalid extents argument {text!r} (only a number of 4 MiB extents is supported here)")
        return match.group(1), int(match.group(2))

    def _check_tag(self, tag):
        if not TAG_RE.match(tag or "") or len(tag) > 1024:
            raise UsageError(f"Tag {tag!r} is invalid (allowed: A-Z a-z 0-9 _ + . - / = ! : & #)")
        return tag

    def _create_zvol(self, name, size, tags, active):
        """The zvol of a new LV, with a usable device, and its /dev/<vg>/<lv> if active; or nothing."""
        options = self.cfg.volume_options
        extra = dict(options.properties)
        if tags:
            extra[properties.LV_TAGS] = ",".join(tags)
        # Never sparse: an LV owns its space as in LVM, so the VG's free
        # space (which Ganeti checks before every create and grow) is true.
        volume_module.create(
            self.zfs, self.dataset(name), size, properties.OWNER_LVM, self.cfg.attach_timeout, sparse=False,
            volmode=self.cfg.volmode, blocksize=options.volblocksize, extra=extra,
            then=self.link_step(name) if active else None,
        )

    def link_step(self, name):
        """The last step of making an LV (volume.create's `then`): its
        /dev/<vg>/<lv>, which a failure removes again with the zvol."""
        def link(_device):
            try:
                links.ensure(self.vg, name, self.dataset(name), self.cfg.attach_timeout)
            except BaseException:
                links.remove(self.vg, name)
                raise
        return link

    def _snapshot(self, args, positionals):
        if len(positionals) != 1:
            raise UsageError("lvcreate -s needs exactly one origin logical volume")
        origin = self.lv_of(positionals[0])
        name = args.last("name")
        if not name:
            raise UsageError("lvcreate -s needs a name for the snapshot (-n)")
        name = self.lv_of(name) if "/" in name else name
        check_lv_name(name, self.vg)
        if args.has("size"):
            parse_size(args.last("size"))  # copy-on-write space: ZFS needs none reserved
        with lock.shared():
            current = self.read()
            volume = current.get(origin)
            if current.origin_lv(volume):
                raise Error(f"Snapshots of snapshots are not supported (LV {self.vg}/{origin} is a snapshot).")
            if name in current.volumes:
                raise Error(f'Logical Volume "{name}" already exists in volume group "{self.vg}"')
            if args.has("test"):
                return 0
            # An export snapshot (volume.is_export_snapshot), named after the
            # snapshot LV; its kind keeps the scheduled snapshot job away from
            # it and lets lvremove destroy it with the LV. A failure leaves
            # neither the clone nor the snapshot.
            volume_module.create_export_copy(
                self.zfs, f"{volume.dataset}@{name}", self.dataset(name), properties.OWNER_LVM,
                self.cfg.attach_timeout, volmode=self.cfg.volmode, then=self.link_step(name),
            )
        _say(f'Logical volume "{name}" created.')
        return 0

    def _destroy(self, dataset, snapshots_too=False):
        volume_module.destroy(self.zfs, dataset, snapshots_too=snapshots_too)

    def lvremove(self, args):
        names = []
        for word in args.names():
            lv = decide.split_lv_path(word)[1]
            if not lv:
                raise UsageError(f"Refusing to remove every LV of the emulated VG {self.vg}; name the LVs ({self.vg}/<lv>)")
            names.append(lv)
        if not names:
            raise UsageError("Please enter one or more logical volume paths")
        # lvm2 asks unless -f or --yes (tools/lvremove.c, lib/metadata/lv_manip.c).
        ask = not args.has("force") and not args.has("yes")
        with lock.shared():
            current = self.read()
            # As in lvm2, an origin goes with its snapshot LVs.
            groups = [(current.get(name), current.snapshot_lvs(name)) for name in dict.fromkeys(names)]
            removed = {volume.name: volume for origin, snapshots in groups for volume in [*snapshots, origin]}
            rows = {lv.name: lv for lv in state.report_lvs(current, sorted(removed))}
            for lv in rows.values():
                if lv.open:
                    raise Error(f"Logical volume {self.vg}/{lv.name} in use.")
            self._check_no_outside_clones(removed.values())
            if args.has("test"):
                return 0
            status, done = 0, set()
            for origin, snapshots in groups:
                if ask and not self._confirm_removal(origin, snapshots, rows):
                    status = EXIT_FAILED
                    continue
                for volume in [*snapshots, origin]:
                    if volume.name not in done:
                        done.add(volume.name)
                        self._remove_volume(volume)
                        _say(f'Logical volume "{volume.name}" successfully removed.')
        return status

    def _check_no_outside_clones(self, volumes):
        """Refuse, before anything is destroyed, when a snapshot of an LV to remove has a clone that stays.

        zfs destroy -r refuses such a snapshot, but only when it reaches it:
        by then the snapshot LVs removed before it would be gone.
        """
        datasets = {volume.dataset: volume for volume in volumes}
        rows = self.zfs.list(sorted(datasets), ["name", "clones"], types=("snapshot",), depth=1)
        for row in rows:
            for clone in volume_module.clone_names(row["clones"]):
                if clone not in datasets:
                    owner = datasets[row["name"].partition("@")[0]]
                    raise Error(
                        f"Logical volume {self.vg}/{owner.name} not removed: its snapshot {row['name']} "
                        f"is the origin of {clone}, which is not being removed."
                    )

    def _confirm_removal(self, origin, snapshots, rows):
        """lvm2's question for removing an LV without -f; False (and lvm2's message) at a no.

        As lvm2 2.03 asks (and words it, "snapshots(s)" included, checked in
        the guest): an origin once for itself and its snapshots, any other LV
        only when active.
        """
        active = rows[origin.name].active
        if snapshots:
            question = (f"Do you really want to remove{' active' if active else ''} origin logical volume "
                        f"{self.vg}/{origin.name} with {len(snapshots)} snapshots(s)? [y/n]: ")
        elif active:
            question = f"Do you really want to remove active logical volume {self.vg}/{origin.name}? [y/n]: "
        else:
            return True
        if yes_no_prompt(question):
            return True
        print(f"  Logical volume {self.vg}/{origin.name} not removed.", file=sys.stderr)
        return False

    def _remove_volume(self, volume):
        """Destroy one LV with its own snapshots; for a snapshot LV also the
        export snapshot it was cloned from, unless something else still
        clones it (told by its kind, not its name: volume.is_export_snapshot)."""
        self._destroy(volume.dataset, snapshots_too=True)
        links.remove(self.vg, volume.name)
        if volume.origin_snapshot:
            volume_module.destroy_unused_export_snapshot(self.zfs, volume.origin_snapshot)

    def _own_snapshot(self, volume):
        """Whether the snapshot a snapshot LV was cloned from is the one lvcreate -s
        took for it: named after the LV (so a new snapshot LV of the old name would
        collide with it) and an export snapshot by its own kind (volume.is_export_snapshot)."""
        snapshot = volume.origin_snapshot
        if not snapshot.endswith("@" + volume.name):
            return False
        try:
            kind = self.zfs.get_with_source(snapshot, [properties.SNAPSHOT_KIND])[snapshot][properties.SNAPSHOT_KIND]
        except zfs_module.DoesNotExist:
            return False
        return volume_module.is_export_snapshot(*kind)

    def lvrename(self, args):
        words = args.names()
        if len(words) == 3:
            vg, old, new = words
            if decide.strip_dev(vg) != self.vg:
                raise UsageError(f"{vg!r} is not the emulated VG {self.vg}")
        elif len(words) == 2:
            old = self.lv_of(words[0])
            new_vg, new = decide.split_lv_path(words[1])
            if new is None:
                new = new_vg
            elif new_vg != self.vg:
                raise UsageError("Logical volume cannot move to another volume group")
        else:
            raise UsageError("Old and new logical volume names required")
        check_lv_name(new, self.vg)
        with lock.shared():
            current = self.read()
            volume = current.get(old)
            if new in current.volumes:
                raise Error(f'Logical volume "{new}" already exists in volume group "{self.vg}"')
            if args.has("test"):
                return 0
            # A snapshot LV's ZFS snapshot is named after it (see _snapshot), which is
            # how lvremove finds it: it is renamed too, first, so that a failure
            # leaves both names as they were.
            snapshot = volume.origin_snapshot if self._own_snapshot(volume) else ""
            if snapshot:
                self.zfs.rename(snapshot, f"{snapshot.partition('@')[0]}@{new}")
            try:
                # The LV's snapshots move with it; clones keep following them.
                self.zfs.rename(self.dataset(old), self.dataset(new))
            except Exception:
                if snapshot:
                    self.zfs.rename(f"{snapshot.partition('@')[0]}@{new}", snapshot)
                raise
            links.remove(self.vg, old)
            links.ensure(self.vg, new, self.dataset(new), self.cfg.attach_timeout)
        _say(f'Renamed "{old}" to "{new}" in volume group "{self.vg}"')
        return 0

    def lvchange(self, args):
        activate = _activation(args.last("activate"))
        add = [self._check_tag(tag) for tag in args.all("addtag")]
        delete = [self._check_tag(tag) for tag in args.all("deltag")]
        if activate is None and not add and not delete:
            raise UsageError("Need one or more command options.")
        targets = []
        for word in args.names():
            targets.append(decide.split_lv_path(word)[1])
        current = self.read()
        names = sorted(current.volumes) if None in targets else list(dict.fromkeys(targets))
        volumes = [current.get(name) for name in names]
        if activate is False:
            self._check_not_open(current, names)
        if args.has("test"):
            return 0
        for volume in volumes:
            if add or delete:
                tags = [tag for tag in volume.tags if tag not in delete]
                tags += [tag for tag in add if tag not in tags]
                if tags:
                    self.zfs.set(volume.dataset, {properties.LV_TAGS: ",".join(tags)})
                elif volume.tags:
                    self.zfs.inherit(volume.dataset, properties.LV_TAGS)
            if activate is not None:
                self._set_active(volume, activate)
        return 0

    def _check_not_open(self, current, names):
        for lv in state.report_lvs(current, names):
            if lv.open:
                raise Error(f"Logical volume {self.vg}/{lv.name} in use.")

    def _set_active(self, volume, activate):
        """A zvol is always active while its pool is imported: "active" is its /dev/<vg>/<lv> link."""
        if activate:
            links.ensure(self.vg, volume.name, volume.dataset, self.cfg.attach_timeout)
        else:
            links.remove(self.vg, volume.name)

    def vgchange(self, args):
        """vgchange -a y|n <vg>: lvchange -a on every LV of the VG (only -a is emulated)."""
        activate = _activation(args.last("activate"))
        if activate is None:
            raise UsageError(f"Need one or more command options (only -a y|n is emulated for volume group {self.vg}).")
        current = self.read()
        names = sorted(current.volumes)
        if activate is False:
            self._check_not_open(current, names)
        if args.has("test"):
            return 0
        for name in names:
            self._set_active(current.get(name), activate)
        # lvm2's vgchange line (tools/vgchange.c), on stdout.
        _say(f'{len(names) if activate else 0} logical volume(s) in volume group "{self.vg}" now active')
        return 0

    def lvextend(self, args):
        return self._grow(args, "Negative argument not permitted - use lvreduce")

    def lvresize(self, args):
        """lvresize grows as lvextend does; a zvol is never shrunk (the guest's data past the end would be lost)."""
        return self._grow(args, f"Reducing a logical volume of the emulated VG {self.vg} is not supported: "
                                "shrink the data inside first, then zfs set volsize yourself")

    def _grow(self, args, no_reduce):
        words = args.names()
        if not words:
            raise UsageError("Please specify a logical volume path")
        name = self.lv_of(words[0])
        self._check_pvs(words[1:])
        current = self.read()
        volume = current.get(name)
        sign, size = self._size_argument(args)
        if sign == "-":
            raise UsageError(no_reduce)
        new_size = round_to_extent(volume.size + size if sign == "+" else size)
        old_extents, new_extents = volume.size // report.EXTENT_SIZE, new_size // report.EXTENT_SIZE
        if new_size == volume.size:
            raise Error(f"New size ({new_extents} extents) matches existing size ({old_extents} extents).")
        if new_size < volume.size:
            if args.command == "lvresize":
                raise UsageError(no_reduce)
            raise Error(f"New size given ({new_extents} extents) not larger than existing size ({old_extents} extents)")
        growth = new_size - volume.size
        if not current.origin_lv(volume) and growth > current.vg.free:
            raise Error(
                f"Insufficient free space: {-(-growth // report.EXTENT_SIZE)} extents needed, "
                f"but only {current.vg.free // report.EXTENT_SIZE} available"
            )
        if args.has("test"):
            print("  TEST MODE: Metadata will NOT be updated and volumes will not be (de)activated.", file=sys.stderr)
            return 0
        self.zfs.set(volume.dataset, {"volsize": str(new_size)})
        _say(
            f"Size of logical volume {self.vg}/{name} changed from {report.format_size(volume.size, 'h')} "
            f"to {report.format_size(new_size, 'h')}."
        )
        _say(f"Logical volume {self.vg}/{name} successfully resized.")
        return 0

    def pvchange(self, args):
        allocatable = args.last("allocatable")
        if allocatable not in ("y", "n"):
            raise UsageError("Please give the x option (--allocatable y|n)")
        current = self.read()
        if args.has("test"):
            return 0
        if allocatable == "n" and current.vg.allocatable:
            self.zfs.set(self.parent, {properties.PV_ALLOCATABLE: "no"})
        elif allocatable == "y" and not current.vg.allocatable:
            self.zfs.inherit(self.parent, properties.PV_ALLOCATABLE)
        _say(f'Physical volume "{self.pv_name}" changed')
        _say("1 physical volume changed / 0 physical volumes not changed")
        return 0

    def vgreduce(self, args):
        self.read()
        if not args.has("removemissing"):
            raise Error(f'Can\'t remove final physical volume "{self.pv_name}" from volume group "{self.vg}"')
        # ZFS has no missing PVs; Ganeti's repair-storage then checks `vgs <vg>`.
        _say(f'Volume group "{self.vg}" is already consistent.')
        return 0
