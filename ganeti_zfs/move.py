"""`ganeti-zfs move INSTANCE NODE`: move an instance whose disks are zfs ext
disks to another node with `zfs send`, the instance down only for the last
increment.

Ganeti cannot do this itself: `gnt-instance move` refuses ext disks, and
failover assumes the disk is already on the target (ext is "externally
mirrored", docs/ganeti-contract.md; ganeti-multinode-facts.md section 3.3).
So the move copies the disks first and then lets Ganeti's own failover
switch the primary (plan()):

1. seed, while the instance runs: snapshot every disk (@ganeti-move-1, one
   atomic `zfs snapshot`) and send it in full (`zfs send -c`, blocks as
   compressed on disk) to `ssh root@NODE zfs receive -u`, under a hidden name
   <volume>.incoming with volmode=dev and properties.INCOMING = this move's
   token. Nothing attaches it by mistake: the provider's attach looks only
   at <volume> (provider.py attach), the LVM emulation and the daily job
   only at zvols marked properties.OWNER, which it has not;
2. `--incrementals N` more rounds while it runs (`zfs send -i`), each only
   what was written since the last (`zfs receive -F`: the hidden copy is
   fed by this move alone, so rolling it back to the last snapshot, should
   anything have touched it, loses nothing);
3. stop (`gnt-instance shutdown`) and send the final increment;
4. make the copy the disk: rename it to <volume> on the target, give it the
   source's marks (OWNER, UUID, ...) and properties.CURRENT_COPY = the final
   snapshot, which the failover pre-hook requires (hooks.py copy_problem:
   set, and nothing written since); mark the source current too, the way
   back while both are equal;
5. switch: `gnt-instance failover -f -n NODE`, Ganeti's own close and
   detach on the source, primary switch, attach and open on the target;
6. start it there (if it ran), then retire the source copy: renamed
   <volume>.moved-<UTC time>, out of the provider's namespace (its OWNER mark
   removed, so nothing of ours uses it), with properties.RETIRED_UNTIL; the
   daily job is to destroy it after MOVE_KEEP_DAYS (expire_retired: not called yet), or the move
   does at once with --destroy-old.

A failure before the switch undoes everything (Runner.undo): the target
copy is destroyed (only a dataset carrying this move's INCOMING token),
the move's snapshots and marks on the source go, and a stopped instance is
started again. After the switch nothing is undone: the error says how to
go back.

Where it runs: on the master (gnt-instance, config.data), which must be the
instance's primary (the seed sends from the local pool). The transport is
Ganeti's own root ssh between nodes, with the options and known_hosts file
Ganeti uses (ssh_command).
"""

import calendar
import collections
import shlex
import subprocess
import sys
import time

from . import actions, cluster, log, naming, properties
from . import volume as volume_module
from . import zfs as zfs_module
from .errors import Error, UsageError
from .helpers import nicenum

SNAPSHOT_PREFIX = "ganeti-move-"
INCOMING_SUFFIX = ".incoming"
RETIRED_INFIX = ".moved-"
# A send may take hours (a large disk over a slow link); the zfs timeout of
# every other call (ZFS_TIMEOUT) is for commands that return in seconds.
SEND_TIMEOUT = 7 * 86400
GNT_TIMEOUT = 3600
# The source's properties that make a zvol the provider's disk, copied onto
# the target copy (a plain send carries none: zfs.Zfs.send_receive).
COPIED_PROPERTIES = (properties.OWNER, properties.UUID, properties.CNAME, properties.METADATA,
                     properties.ORIGINSTNAME, properties.AUTO_SNAPSHOT, properties.AUTO_SNAPSHOT_COMPAT,
                     "refreservation")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# What a move is about. datasets: the source's dataset of each disk (the
# target's has the same name); running: Ganeti keeps the instance up; token:
# this move's INCOMING mark; stamp: the UTC time in the retired name;
# keep_until: the retired copy's expiry (TIME_FORMAT), None with --destroy-old.
Move = collections.namedtuple("Move", "instance source target datasets running incrementals token stamp keep_until")
# One step: action names a Runner method (do_<action>), args its arguments,
# text what --dry-run prints.
Step = collections.namedtuple("Step", "action args text")


def snapshot(dataset, round_number):
    return f"{dataset}@{SNAPSHOT_PREFIX}{round_number}"


def incoming(dataset):
    return dataset + INCOMING_SUFFIX


def retired(dataset, stamp):
    return f"{dataset}{RETIRED_INFIX}{stamp}"


def plan(move):
    """The steps of `move`, in order; pure (no zfs, no Ganeti)."""
    target = f"root@{move.target}"
    steps = []
    rounds = move.incrementals + 2 if move.running else 1  # seed, incrementals, final
    for number in range(1, rounds + 1):
        final = number == rounds
        if final and move.running:
            steps.append(Step("shutdown", (), f"gnt-instance shutdown {move.instance}"))
        snapshots = [snapshot(dataset, number) for dataset in move.datasets]
        steps.append(Step("snapshot", (number,), f"zfs snapshot {' '.join(snapshots)}"))
        for dataset in move.datasets:
            base = snapshot(dataset, number - 1) if number > 1 else None
            what = "seed" if number == 1 else "final" if final else f"increment {number - 1}"
            send = "zfs send -c " + (f"-i {base} " if base else "") + snapshot(dataset, number)
            receive = (f"zfs receive -u -F {incoming(dataset)}" if base else
                       f"zfs receive -u {incoming(dataset)} -o volmode=<VOLMODE> -o {properties.INCOMING}={move.token}")
            steps.append(Step("send", (dataset, number, what), f"{send} | ssh {target} {receive}"))
    final_snapshot = f"{SNAPSHOT_PREFIX}{rounds}"
    for dataset in move.datasets:
        steps.append(Step("mark_target", (dataset, final_snapshot),
                          f"ssh {target} zfs rename {incoming(dataset)} {dataset}; ssh {target} zfs set "
                          f"<the source's {properties.OWNER}, {properties.UUID}, ...> "
                          f"{properties.CURRENT_COPY}={final_snapshot} {dataset}"))
        steps.append(Step("mark_source", (dataset, final_snapshot),
                          f"zfs set {properties.CURRENT_COPY}={final_snapshot} {dataset}"))
    steps.append(Step("failover", (), f"gnt-instance failover -f -n {move.target} {move.instance}"))
    if move.running:
        steps.append(Step("startup", (), f"gnt-instance startup {move.instance}"))
    for dataset in move.datasets:
        if move.keep_until is None:
            steps.append(Step("destroy_old", (dataset,), f"zfs destroy -r {dataset}"))
        else:
            steps.append(Step("retire", (dataset,),
                              f"zfs set {properties.RETIRED_UNTIL}={move.keep_until} {dataset}; zfs inherit "
                              f"{properties.OWNER} {dataset}; zfs rename {dataset} {retired(dataset, move.stamp)}"))
        steps.append(Step("tidy_target", (dataset, rounds),
                          f"ssh {target} zfs inherit {properties.CURRENT_COPY} {dataset}; ssh {target} zfs destroy "
                          f"{dataset}@{SNAPSHOT_PREFIX}1..{rounds}"))
    return steps


def ssh_command(node, cluster_name):
    """Root ssh to `node` as Ganeti's own (lib/ssh.py SshRunner._BuildSshOptions,
    batch mode with strict host key checking): the cluster's known_hosts file,
    written at cluster init (lib/bootstrap.py InitCluster), with the cluster
    name as the host key alias."""
    return ["ssh", "-oEscapeChar=none", "-oHashKnownHosts=no",
            f"-oGlobalKnownHostsFile={cluster.DATA_DIR}/known_hosts", "-oUserKnownHostsFile=/dev/null",
            "-oCheckHostIp=no", "-oConnectTimeout=10", f"-oHostKeyAlias={cluster_name}", "-q",
            "-oBatchMode=yes", "-oStrictHostKeyChecking=yes", f"root@{node}"]


def check_instance(found, target, myself, master, nodes):
    """Why the instance `found` (cluster.Instance) cannot move to `target`, as an Error; None if it can."""
    name = found.name
    if not found.volumes:
        raise Error(f"instance {name} has no disks: nothing to move (use gnt-instance failover)")
    others = [str(index) for index, volume in enumerate(found.volumes) if volume is None]
    if others:
        raise Error(f"instance {name}: disk {', '.join(others)} is not a zfs ext disk; only an instance whose every "
                    f"disk is one can be moved this way")
    if target not in nodes:
        raise UsageError(f"{target} is not a node of this cluster (give its full name, as gnt-node list shows it)")
    if target == found.primary:
        raise UsageError(f"instance {name} is already on {target}")
    if myself != master or myself != found.primary:
        raise Error(f"run this on the instance's primary node {found.primary}, and it must be the master "
                    f"(this is {myself}, the master is {master}): the seed is sent from the local pool and "
                    f"gnt-instance runs on the master")


def expiry(now, days):
    """The TIME_FORMAT text `days` after the epoch seconds `now`."""
    return time.strftime(TIME_FORMAT, time.gmtime(now + days * 86400))


def parse_time(text):
    """Epoch seconds of a TIME_FORMAT text; None if it is not one."""
    try:
        return calendar.timegm(time.strptime(text, TIME_FORMAT))
    except ValueError:
        return None


# -- the daily job's part -------------------------------------------------------


def expire_retired(zfs, parent, now, dry_run=False):
    """Destroy the retired copies under `parent` whose RETIRED_UNTIL (set on
    the zvol itself, as the move does) is past epoch seconds `now`.

    Returns ([notes], [(dataset, error)]). A copy with an unreadable time is
    kept and reported: never guess when a rollback copy may go.
    """
    notes, failed = [], []
    try:
        values = zfs.get_with_source(parent, [properties.RETIRED_UNTIL], types=("volume",), depth=1)
    except zfs_module.DoesNotExist:
        return notes, failed
    except Error as error:
        return notes, [(parent, f"cannot list retired copies: {error}")]
    for name in sorted(values):
        until, source = values[name][properties.RETIRED_UNTIL]
        if source != "local" or naming.split(name)[0] != parent:
            continue
        moment = parse_time(until)
        if moment is None:
            failed.append((name, f"{properties.RETIRED_UNTIL}={until!r} is not a time like 2026-12-09T04:50:00Z; "
                                 f"keeping it"))
        elif moment <= now:
            if dry_run:
                notes.append(f"would destroy {name}, a copy retired by a move (kept until {until})")
                continue
            try:
                volume_module.destroy(zfs, name)
                notes.append(f"destroyed {name}, a copy retired by a move (kept until {until})")
            except Error as error:
                failed.append((name, str(error)))
    return notes, failed


# -- the runner -------------------------------------------------------------------


class Progress:
    """Bytes sent, rate and time left of one send, on a terminal only."""

    def __init__(self, label, total, stream=sys.stderr, clock=time.monotonic):
        self.label, self.total, self.stream, self.clock = label, total, stream, clock
        self.started = clock()
        self.shown = 0.0
        self.live = stream.isatty()

    def __call__(self, done):
        now = self.clock()
        if not self.live or now - self.shown < 0.5:
            return
        self.shown = now
        print("\r" + self.line(done, now - self.started), end="", file=self.stream, flush=True)

    def line(self, done, elapsed):
        rate = done / elapsed if elapsed > 0 else 0
        text = f"{self.label}: {nicenum(done)}"
        if self.total:
            left = f", {max(0, self.total - done) / rate:.0f} s left" if rate else ""
            text += f" of {nicenum(self.total)}{left}"
        return text + f", {nicenum(int(rate))}/s   "

    def end(self, done):
        elapsed = self.clock() - self.started
        if self.live:
            print("\r", end="", file=self.stream)
        print(f"{self.label}: {nicenum(done)} in {elapsed:.1f} s", file=self.stream, flush=True)


def run_gnt(argv):
    """A Ganeti command on the master; its output, or a one-line Error."""
    log.debug("run: " + shlex.join(argv))
    try:
        process = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=GNT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Error(f"`{shlex.join(argv)}` failed: {error}")
    if process.returncode != 0:
        lines = [line for line in (process.stderr + process.stdout).splitlines() if line.strip()]
        raise Error(f"`{shlex.join(argv)}` failed: {lines[-1] if lines else f'exit status {process.returncode}'}")
    return process.stdout


class Runner:
    """Runs plan(move): `local` the source's Zfs, `remote` the target's (zfs.RemoteZfs).

    primary(): the instance's primary node now (from config.data), asked after
    a failed failover, which may or may not have switched it.
    """

    def __init__(self, move, local, remote, volmode, primary, gnt=run_gnt, clock=time.monotonic, stream=sys.stderr):
        self.move, self.local, self.remote, self.volmode = move, local, remote, volmode
        self.primary, self.gnt, self.clock, self.stream = primary, gnt, clock, stream
        self.taken = []  # snapshots this run took on the source
        self.marked_source = []  # datasets whose CURRENT_COPY this run set
        self.stopped_at = None  # clock() at the shutdown
        self.started_at = None  # clock() after the startup
        self.switched = False
        self.sent = 0  # bytes

    def run(self, steps):
        begun = self.clock()
        for step in steps:
            log.debug(f"step: {step.text}")
            try:
                getattr(self, "do_" + step.action)(*step.args)
            except BaseException as error:
                if step.action == "failover" and not self.switched:
                    self.switched = self._primary_switched()
                if not self.switched:
                    raise Error(f"{self._describe(error)}; {self.undo()}") from None
                raise Error(f"{self._describe(error)}; {self.way_back()}") from None
        return self.summary(self.clock() - begun)

    @staticmethod
    def _describe(error):
        return str(error) if isinstance(error, Error) else f"interrupted ({type(error).__name__})"

    def _primary_switched(self):
        try:
            return self.primary() == self.move.target
        except Error:
            return True  # cannot tell: undo nothing, say how to go back

    # -- steps ----------------------------------------------------------------

    def do_shutdown(self):
        self.stopped_at = self.clock()
        self.gnt(["gnt-instance", "shutdown", self.move.instance])

    def do_snapshot(self, number):
        names = [snapshot(dataset, number) for dataset in self.move.datasets]
        self.local.snapshot(names, {properties.SNAPSHOT_KIND: properties.SNAPSHOT_KIND_MOVE})
        self.taken += names

    def do_send(self, dataset, number, what):
        base = snapshot(dataset, number - 1) if number > 1 else None
        name = snapshot(dataset, number)
        marks = None if base else {"volmode": self.volmode, properties.INCOMING: self.move.token}
        try:
            total = self.local.send_size(name, base, compressed=True)
        except Error:
            total = None  # only for the progress line
        progress = Progress(f"{what} of {dataset} to {self.move.target}", total, self.stream, self.clock)
        done = [0]

        def count(sent):
            done[0] = sent
            progress(sent)

        self.local.send_receive(name, incoming(dataset), marks, timeout=SEND_TIMEOUT, base=base, compressed=True,
                                receiver=self.remote, progress=count)
        progress.end(done[0])
        self.sent += done[0]

    def do_mark_target(self, dataset, final_snapshot):
        values = self.local.get_with_source(dataset, COPIED_PROPERTIES)[dataset]
        marks = {prop: value for prop, (value, source) in values.items() if source == "local"}
        marks[properties.CURRENT_COPY] = final_snapshot
        self.remote.rename(incoming(dataset), dataset)
        self.remote.set(dataset, marks)

    def do_mark_source(self, dataset, final_snapshot):
        self.marked_source.append(dataset)
        self.local.set(dataset, {properties.CURRENT_COPY: final_snapshot})

    def do_failover(self):
        self.gnt(["gnt-instance", "failover", "-f", "-n", self.move.target, self.move.instance])
        self.switched = True
        # The target copy is the instance's disk now: no undo may touch it.
        for dataset in self.move.datasets:
            self.remote.inherit(dataset, properties.INCOMING)

    def do_startup(self):
        self.gnt(["gnt-instance", "startup", self.move.instance])
        self.started_at = self.clock()

    def do_retire(self, dataset):
        self.local.set(dataset, {properties.RETIRED_UNTIL: self.move.keep_until})
        self.local.inherit(dataset, properties.CURRENT_COPY)
        self.local.inherit(dataset, properties.OWNER)
        self.local.rename(dataset, retired(dataset, self.move.stamp))

    def do_destroy_old(self, dataset):
        volume_module.destroy(self.local, dataset)

    def do_tidy_target(self, dataset, rounds):
        self.remote.inherit(dataset, properties.CURRENT_COPY)
        for number in range(1, rounds + 1):
            self.remote.destroy(snapshot(dataset, number))

    # -- failures -------------------------------------------------------------

    def undo(self):
        """Put everything back as before the move; what it says about it."""
        problems = []
        for dataset in self.move.datasets:
            for name in (incoming(dataset), dataset):
                problems += self._attempt(f"remove {name} on {self.move.target}", lambda: self._discard_target(name))
        for dataset in self.marked_source:
            problems += self._attempt(f"clear {properties.CURRENT_COPY} on {dataset}",
                                      lambda: self.local.inherit(dataset, properties.CURRENT_COPY))
        for name in reversed(self.taken):
            problems += self._attempt(f"destroy {name}", lambda: self.local.destroy(name))
        state = "stopped"
        if self.stopped_at is not None:
            problems += self._attempt(f"start {self.move.instance} again",
                                      lambda: self.gnt(["gnt-instance", "startup", self.move.instance]))
        if not problems and (self.stopped_at is not None or self.move.running):
            state = "running"
        where = f"instance {self.move.instance} is still on {self.move.source}"
        if problems:
            return f"{where}, but undoing the move failed: " + "; ".join(problems)
        return f"{where}, {state}, and nothing of it is left on {self.move.target}"

    def _discard_target(self, name):
        """Destroy `name` on the target if this move received it (its INCOMING token)."""
        try:
            value, source = self.remote.get_with_source(name, [properties.INCOMING])[name][properties.INCOMING]
        except zfs_module.DoesNotExist:
            return
        if source == "local" and value == self.move.token:
            volume_module.destroy(self.remote, name)

    @staticmethod
    def _attempt(what, action):
        try:
            action()
            return []
        except Error as error:
            return [f"could not {what}: {error}"]

    def way_back(self):
        move = self.move
        source_copies = ", ".join(move.datasets)
        return (f"instance {move.instance} is now on {move.target} (the primary switched), where its disks are the "
                f"copies as of the stop; the old copies on {move.source} ({source_copies}) are left as they were, to "
                f"go back while they are still named so: gnt-instance failover -f -n {move.source} {move.instance} "
                f"&& gnt-instance startup {move.instance}")

    def summary(self, total_seconds):
        move = self.move
        down = ""
        if self.stopped_at is not None and self.started_at is not None:
            down = f", down {self.started_at - self.stopped_at:.1f} s (stop to start)"
        old = (f"old copies destroyed" if move.keep_until is None else
               f"old copies kept on {move.source} as <volume>{RETIRED_INFIX}{move.stamp} until {move.keep_until}")
        return (f"moved instance {move.instance} from {move.source} to {move.target}: {len(move.datasets)} disks, "
                f"{nicenum(self.sent)} sent, {total_seconds:.1f} s in all{down}; {old}")


# -- the command ------------------------------------------------------------------


def add_arguments(parser):
    parser.add_argument("instance", help="the instance (its full name)")
    parser.add_argument("node", help="the node to move it to (its full name)")
    parser.add_argument("--incrementals", type=int, default=1, metavar="N",
                        help="incremental sends while the instance still runs, after the seed (default 1)")
    parser.add_argument("--destroy-old", action="store_true",
                        help="destroy the old copies at once instead of keeping them for MOVE_KEEP_DAYS")
    parser.add_argument("--dry-run", action="store_true", help="check and show the plan; change nothing")


def preflight(move, local, remote):
    """Read-only checks on both pools, before anything changes; an Error if the move cannot start."""
    for dataset in move.datasets:
        found = volume_module.lookup(local, dataset)
        if found is None:
            raise Error(f"volume {dataset} does not exist on {move.source}")
        found.require_ours("move")
        if move.keep_until is not None and local.exists(retired(dataset, move.stamp)):
            raise Error(f"{retired(dataset, move.stamp)} already exists on {move.source}")
    parent = naming.split(move.datasets[0])[0]
    try:
        if not remote.exists(parent):
            raise Error(f"{parent} does not exist on {move.target} (is the package configured there?)")
        for dataset in move.datasets:
            for name in (dataset, incoming(dataset)):
                if remote.exists(name):
                    raise Error(f"{name} already exists on {move.target}; refusing to overwrite it")
    except zfs_module.ZfsError as error:
        raise Error(f"cannot check {move.target}'s pool over ssh: {error}")


def run(args, cfg, zfs):
    if args.incrementals < 0:
        raise UsageError(f"--incrementals must be 0 or more, not {args.incrementals}")
    found = cluster.instance(cluster.read_config(), args.instance, actions.PROVIDER)
    myself = cluster.node_name()
    check_instance(found, args.node, myself, cluster.ssconf("master_node"), cluster.node_names())
    now = time.time()
    token = f"{myself}:{int(now)}"
    move = Move(found.name, found.primary, args.node, tuple(cfg.dataset(volume) for volume in found.volumes),
                found.admin_up, args.incrementals, token, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)),
                None if args.destroy_old else expiry(now, cfg.move_keep_days))
    remote = zfs_module.RemoteZfs(ssh_command(args.node, cluster.ssconf("cluster_name")), timeout=cfg.zfs_timeout)
    preflight(move, zfs, remote)
    steps = plan(move)
    if args.dry_run:
        for step in steps:
            print(step.text)
        print(f"dry run, nothing changed: {len(steps)} steps to move instance {move.instance} from {move.source} "
              f"to {move.target}")
        return 0
    primary = lambda: cluster.instance(cluster.read_config(), move.instance, actions.PROVIDER).primary  # noqa: E731
    print(Runner(move, zfs, remote, cfg.volmode, primary).run(steps))
    return 0
