#!/usr/bin/python3
"""Build, boot and run the real-ZFS test guest (host side, stdlib only).

The guest is a Debian system with OpenZFS and Ganeti (recipe: image/), booted
with QEMU under software emulation (TCG) and no network device at all. Every
run starts from the cached image through a throw-away overlay, gets fresh sparse
disks (vdb: pool "tank", vdc: pool "tank2", vdd: left free for an LVM test) and
a shared folder (virtio-9p, mounted on /share in the guest) holding the .deb(s)
to install, the guest test suite, and out/ for results and logs.

    python3 tests/guest/vm.py build               # make sure the image is cached
    python3 tests/guest/vm.py run --deb X.deb [--pytest-args "-k zvol"]
    python3 tests/guest/vm.py shell --deb X.deb   # same set-up, then a root shell
    python3 tests/guest/vm.py cluster --deb X.deb [--pytest-args ...]   # two nodes

A cluster run (run_cluster) boots two such guests, one vCPU each, joined by a
network that exists only between their QEMU processes (a unix socket), and runs
the two-node suite (cluster/) on the first one.

Only one guest or image build runs at a time on this machine (an flock); the
console log and out/ of the last run are copied to tests/guest/.last-run/.
"""

import argparse
import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECIPE = HERE / "image"
SUITE = HERE / "suite"
CLUSTER_SUITE = HERE / "cluster"  # the two-node suite (run_cluster)
SUITE_LIBRARIES = ("guestlib.py", "providerlib.py")
CACHE = Path(os.environ.get("GUEST_CACHE", "/var/cache/ganeti-extstorage-zfs"))
LOCK = Path("/tmp/ganeti-extstorage-zfs-guest.lock")
DEFAULT_RELEASE = "bookworm"
RELEASES = ("bookworm", "trixie")  # each has a guest image and runs the whole suite
DEFAULT_TIMEOUT = 65 * 60  # seconds, the whole run: boot, set-up, tests, power-off
CLUSTER_TIMEOUT = 40 * 60  # seconds, a whole cluster run
# The nodes of a cluster run: name and address on their shared segment (a
# documentation network, RFC 5737); the first one runs the suite and is the master.
CLUSTER_NODES = [("node1.example.com", "192.0.2.10"), ("node2.example.com", "192.0.2.11")]
CLUSTER_MAC_PREFIX = "52:54:00:47:00"  # guest-run.sh finds its cluster NIC by it
CLUSTER_MEMORY_MIB = 2048  # each node gets one vCPU: two guests fill this machine's two cores
# The whole single-guest suite runs split across guests (run_sharded): their
# count, memory, and the minutes each module took in a full run (tests/guest/
# README.md says how to refresh them); a module not listed counts one minute.
SHARDS = 2
SHARD_MEMORY_MIB = 3072
SHARD_MINUTES = {  # measured 2026-12-02 (test_lvm_fidelity.py: estimated, new that day)
    "test_ganeti_e2e.py": 11, "test_upgrade_original.py": 4, "test_adopt.py": 4, "test_scheduled.py": 3.7,
    "test_lvm_ganeti.py": 3, "test_lvm_fidelity.py": 5, "test_packaging.py": 2, "test_lvm_commands.py": 1.7,
    "test_provider.py": 1.4, "test_volume_core.py": 1.2, "test_node_local.py": 1.1, "test_bad_input.py": 0.9,
}
# Modules that run on some releases only (all others run on every release). On
# trixie the whole suite does not fit in make test's time with bookworm's
# (README, "Releases"): these three exercise ZFS and the package's own logic
# more than anything that differs between the releases.
ONLY_ON = {
    "test_upgrade_original.py": ("bookworm",),
    "test_adopt.py": ("bookworm",),
    "test_scheduled.py": ("bookworm",),
}
# Modules that change the node for good (lvm2 upgraded to the next release's):
# each runs alone in a guest of its own, on the releases named.
OWN_BOOT = {
    "test_release_upgrade_ours_first.py": ("bookworm",),
    "test_release_upgrade_lvm2_first.py": ("bookworm",),
}
KEEP_IMAGES = 2  # cached images per release (another branch may use the previous recipe)

# Extra disks (name, virtual size in GiB), sparse; they appear as vdb, vdc, vdd.
DISKS = [("tank", 64), ("tank2", 2), ("spare", 2)]


def last_run(release, kind=""):
    """Where a run's console and out/ are kept: tests/guest/.last-run[-cluster] for
    the default release, .last-run[-cluster]-<release> for another."""
    suffix = "" if release == DEFAULT_RELEASE else f"-{release}"
    return HERE / f".last-run{kind}{suffix}"


def log(msg):
    print(f"[guest {time.strftime('%H:%M:%S')}] {msg}", flush=True)


@contextlib.contextmanager
def exclusive_lock():
    """Hold the machine-wide guest lock: one guest or image build at a time."""
    with open(LOCK, "a") as f:
        with contextlib.suppress(OSError):
            os.chmod(LOCK, 0o666)
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for {LOCK}: another guest or image build is running")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def recipe_hash():
    """Hash of every file of the recipe (path, mode and contents)."""
    h = hashlib.sha256()
    for path in sorted(p for p in RECIPE.rglob("*") if p.is_file()):
        h.update(f"{path.relative_to(RECIPE)}\0{path.stat().st_mode & 0o111}\0".encode())
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def image_dir(release):
    return CACHE / f"guest-{release}-{recipe_hash()}"


def _mounted_under(path):
    """Mount points at or below path (a failed build may leave proc/sys mounted)."""
    prefix = str(path).rstrip("/") + "/"
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f]
    return [p for p in points if (p + "/").startswith(prefix)]


def _remove_tree(path):
    if _mounted_under(path):
        log(f"NOT removing {path}: file systems are mounted below it")
    else:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def image_lock(release):
    """One build of a release's image at a time; builds of different releases may
    run at once (build_images: half their time is the archive's)."""
    path = Path(f"/tmp/ganeti-extstorage-zfs-image-{release}.lock")
    with open(path, "a") as f:
        with contextlib.suppress(OSError):
            os.chmod(path, 0o666)
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def ensure_image(release=DEFAULT_RELEASE):
    """Return the cached image directory, building it first if needed.

    Under image_lock(release). The build goes to a temporary directory that is
    renamed into place only when complete, so an interrupted build is never
    taken for a cached image.
    """
    final = image_dir(release)
    if final.is_dir():
        os.utime(final)  # last used: see _prune_images
        return final
    with image_lock(release):
        if final.is_dir():  # built meanwhile by another process
            return final
        return _build_image(release, final)


def build_images(releases=RELEASES):
    """Build the missing images of releases, all at once; [image directory]."""
    with concurrent.futures.ThreadPoolExecutor(len(releases)) as pool:
        return list(pool.map(ensure_image, releases))


def _build_image(release, final):
    CACHE.mkdir(parents=True, exist_ok=True)
    for stale in CACHE.glob(f"guest-{release}-*.partial-*"):
        _remove_tree(stale)  # left by an interrupted build (we hold its lock)
    log(f"building the guest image {final} (several minutes; no cached image)")
    tmp = Path(tempfile.mkdtemp(prefix=final.name + ".partial-", dir=CACHE))
    started = time.monotonic()
    try:
        subprocess.run(["bash", str(RECIPE / "build-image.sh"), release, str(tmp)], check=True)
    except BaseException:
        _remove_tree(tmp)
        raise
    tmp.chmod(0o755)
    tmp.rename(final)
    log(f"image built in {time.monotonic() - started:.0f} s")
    _prune_images(release)
    return final


def _prune_images(release, keep=KEEP_IMAGES):
    """Remove all but the keep most recently used images of release (~1.5 GB each)."""
    images = [p for p in CACHE.glob(f"guest-{release}-*") if ".partial-" not in p.name]
    images.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in images[keep:]:
        log(f"removing the older image {old}")
        _remove_tree(old)


def default_debs(repo=HERE.parent.parent):
    """The newest .deb of each package in build/ or, failing that, beside the repo."""
    for pattern in (repo / "build").glob("*.deb"), repo.parent.glob("ganeti-extstorage-zfs*_*.deb"):
        newest = {}
        for deb in pattern:
            name = deb.name.split("_")[0]
            if name not in newest or deb.stat().st_mtime > newest[name].stat().st_mtime:
                newest[name] = deb
        if newest:
            return sorted(newest.values())
    return []


class GuestRun:
    """What a finished (or killed) guest run left: status, results and logs."""

    def __init__(self, out, console, status, exit_status, elapsed):
        self.out = out  # host copy of the guest's out/ (tests/guest/.last-run/out)
        self.console = console  # host copy of the console log
        self.status = status  # "finished", "timeout" or "crashed"
        self.exit_status = exit_status  # guest-run.sh's exit code (pytest's) or None
        self.elapsed = elapsed
        try:
            self.results = json.loads((out / "results.json").read_text())
        except (OSError, ValueError):
            self.results = None

    def console_tail(self, lines=60):
        try:
            text = self.console.read_text(errors="replace")
        except OSError:
            return "(no console log)"
        return "\n".join(text.splitlines()[-lines:])

    @property
    def ok(self):
        return self.status == "finished" and self.exit_status in (0, 5)

    def problem(self):
        """A sentence on what went wrong with the run itself, or None."""
        if self.status == "timeout":
            return f"the guest did not finish within {self.elapsed:.0f} s and was killed"
        if self.status == "crashed":
            return "the guest stopped without finishing its run (crash or kernel panic)"
        if self.exit_status not in (0, 1, 5):
            return f"the guest's run script exited with {self.exit_status} (set-up or pytest failure)"
        if self.results is None:
            return "the guest wrote no results.json"
        return None


def _qemu_command(image, work, share, interactive, smp=2, memory=3072, nic=None):
    """QEMU's argv for one guest; nic: the -netdev/-device arguments of its one
    NIC (a cluster node), or None for no network device at all."""
    cmd = [
        "qemu-system-x86_64", "-accel", "tcg", "-smp", str(smp), "-m", str(memory),
        "-nodefaults", "-display", "none", "-no-reboot",
        "-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd.img"),
        "-append", "root=/dev/vda rw console=ttyS0 panic=1 init=/usr/local/sbin/guest-init",
    ]
    cmd += nic if nic else ["-nic", "none"]
    # Devices take PCI slots, hence vda, vdb, ... in command line order.
    # cache=unsafe: every disk is thrown away after the run, so flushes need not wait.
    for name, fmt in [("root", "qcow2")] + [(name, "raw") for name, _ in DISKS]:
        cmd += ["-drive", f"file={work / name}.{fmt},format={fmt},if=none,id={name},cache=unsafe",
                "-device", f"virtio-blk-pci,drive={name},serial={name}"]
    cmd += ["-fsdev", f"local,id=share,path={share},security_model=none",
            "-device", "virtio-9p-pci,fsdev=share,mount_tag=share"]
    if interactive:
        cmd += ["-serial", "mon:stdio"]
    else:
        # append: a guest booted again (a rebooted cluster node) keeps its first boot's log.
        cmd += ["-chardev", f"file,id=console,path={work / 'console.log'},append=on",
                "-serial", "chardev:console"]
    return cmd


def _prepare_share(share, debs, pytest_args, mode, script=None, script_env=(), suite=SUITE,
                   cluster=None, node=None):
    """Fill a guest's shared folder. cluster: [(name, address)] of every node of a
    cluster run, node: this guest's name in it (None: a single guest)."""
    (share / "out").mkdir(parents=True)
    if script:
        # Mode "script": guest-run.sh runs it instead of the suite (make demo, make bench),
        # with the NAME=VALUE lines of script-env added to its environment.
        shutil.copy(script, share / "script")
        (share / "script").chmod(0o755)
        (share / "script-env").write_text("".join(f"{assignment}\n" for assignment in script_env))
    (share / "debs").mkdir()
    for deb in debs:
        shutil.copy(deb, share / "debs")
    # The package's older builds, for the upgrade tests (suite/test_packaging.py,
    # test_release_upgrade.py); guest-run.sh installs neither: make deb-previous
    # (this tree as an older version) and make deb-old-layout (0.2.0, /sbin layout).
    for older in ("previous", "old-layout"):
        (share / older).mkdir()
        for deb in (HERE.parent.parent / "build" / older).glob("*.deb"):
            shutil.copy(deb, share / older)
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".hypothesis")
    shutil.copytree(suite, share / "suite", ignore=ignore)
    if suite != SUITE:
        for library in SUITE_LIBRARIES:  # the cluster suite builds on the single guest's helpers
            shutil.copy(SUITE / library, share / "suite")
    for name in ("guest-run.sh", "guest_results.py"):
        shutil.copy(HERE / name, share)
    (share / "pytest-args").write_text("".join(a + "\n" for a in pytest_args))
    (share / "mode").write_text(mode + "\n")
    if cluster:
        (share / "cluster").write_text("".join(f"{name} {address}\n" for name, address in cluster))
        (share / "node").write_text(node + "\n")


class ConsoleFollower:
    """Echo the console log's complete new lines, from guest-init's first line on
    (the kernel's boot messages before it are noise)."""

    def __init__(self, path, echo, prefix=""):
        self.path, self.echo, self.prefix, self.offset, self.started = path, echo, prefix, 0, False

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].decode(errors="replace").splitlines():
            self.started = self.started or "[guest-init" in line
            if self.started:
                self.echo(self.prefix + line.rstrip("\r"))


def _check_debs(debs):
    debs = [Path(d).resolve() for d in debs]
    for deb in debs:
        if not deb.is_file():
            raise FileNotFoundError(f"no such .deb: {deb}")
    return debs


def _make_disks(image, work):
    """A throw-away overlay on the cached root image and fresh sparse disks."""
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
                    "-b", str(image / "root.img"), str(work / "root.qcow2")], check=True)
    for name, gib in DISKS:
        with open(work / f"{name}.raw", "wb") as f:
            f.truncate(gib << 30)


def _exit_status(share):
    try:
        return int((share / "out" / "exit-status").read_text())
    except (OSError, ValueError):
        return None


def _keep(work, share, dest):
    """Copy a guest's console log and out/ to dest (where developers look)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    if (work / "console.log").exists():
        shutil.copy(work / "console.log", dest)
    shutil.copytree(share / "out", dest / "out", symlinks=True)


def run_guest(debs=(), pytest_args=(), timeout=DEFAULT_TIMEOUT, release=DEFAULT_RELEASE,
              mode="test", echo=None, script=None, script_env=()):
    """Boot the guest, run the suite (mode "test") or a console shell (mode "shell").

    echo: called with each console line from the start of guest-init on (None: quiet).
    Returns a GuestRun; its files are in tests/guest/.last-run/.
    """
    debs = _check_debs(debs)
    interactive = mode == "shell"
    with exclusive_lock():
        image = ensure_image(release)
        with tempfile.TemporaryDirectory(prefix="ganeti-zfs-guest-") as tmp:
            work, share = Path(tmp), Path(tmp) / "share"
            _prepare_share(share, debs, pytest_args, mode, script, script_env)
            _make_disks(image, work)
            log(f"booting the guest ({release}, {', '.join(d.name for d in debs) or 'no .deb'}, "
                f"timeout {timeout:.0f} s)")
            started = time.monotonic()
            qemu = subprocess.Popen(_qemu_command(image, work, share, interactive),
                                    stdin=None if interactive else subprocess.DEVNULL)
            follower = ConsoleFollower(work / "console.log", echo) if echo and not interactive else None
            status = "finished"
            try:
                while qemu.poll() is None:
                    if not interactive and time.monotonic() - started > timeout:
                        status = "timeout"
                        break
                    time.sleep(0.5)
                    if follower:
                        follower.poll()
            finally:
                if qemu.poll() is None:
                    qemu.kill()
                qemu.wait()
            if follower:
                follower.poll()
            elapsed = time.monotonic() - started
            exit_status = _exit_status(share)
            if exit_status is None and status == "finished":
                status = "crashed"
            if interactive:
                return None
            _keep(work, share, last_run(release))
    kept = last_run(release)
    run = GuestRun(kept / "out", kept / "console.log", status, exit_status, elapsed)
    log(f"guest {status} after {elapsed:.0f} s (exit status {exit_status}); "
        f"console and results in {kept}")
    return run


class Guest:
    """One guest of a run of several: its disks, shared folder and QEMU process."""

    def __init__(self, label, work, smp=1, memory=CLUSTER_MEMORY_MIB, nic=None):
        self.label, self.work, self.share = label, work, work / "share"
        self.smp, self.memory, self.nic = smp, memory, nic
        self.qemu = None

    def boot(self, image):
        # A guest booted again appends to the same console log.
        self.qemu = subprocess.Popen(
            _qemu_command(image, self.work, self.share, False, smp=self.smp, memory=self.memory, nic=self.nic),
            stdin=subprocess.DEVNULL)

    def running(self):
        return self.qemu is not None and self.qemu.poll() is None

    def reboot_requested(self):
        """guest-run.sh leaves out/reboot when asked to reboot (QEMU runs -no-reboot)."""
        marker = self.share / "out" / "reboot"
        if marker.exists():
            marker.unlink()
            return True
        return False

    def stop(self):
        if self.running():
            self.qemu.kill()
        if self.qemu:
            self.qemu.wait()

    def result(self, status, elapsed, kept):
        """The GuestRun of this guest, its files copied to kept."""
        exit_status = _exit_status(self.share)
        if exit_status is None and status == "finished":
            status = "crashed"
        _keep(self.work, self.share, kept)
        return GuestRun(kept / "out", kept / "console.log", status, exit_status, elapsed)


def _cluster_nic(index, socket_path):
    """The first node listens on the cluster's unix socket (QEMU's stream netdev,
    server side), the others connect to it: one L2 segment that exists only
    between these QEMU processes, so nothing can reach beyond this machine."""
    server = "on" if index == 0 else "off"
    return ["-netdev", f"stream,id=net0,server={server},addr.type=unix,addr.path={socket_path}",
            "-device", f"virtio-net-pci,netdev=net0,mac={CLUSTER_MAC_PREFIX}:{index + 1:02x}"]


class _Followers:
    def __init__(self, guests, echo):
        self.all = [ConsoleFollower(g.work / "console.log", echo, f"{g.label}: ") for g in guests] if echo else []

    def poll(self):
        for follower in self.all:
            follower.poll()


def _wait_for_socket(path, qemu, seconds=30):
    deadline = time.monotonic() + seconds
    while not path.exists():
        if qemu.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the first cluster node did not open its network socket {path}")
        time.sleep(0.2)


def run_cluster(debs=(), pytest_args=(), timeout=CLUSTER_TIMEOUT, release=DEFAULT_RELEASE, echo=None):
    """Boot the cluster's guests (CLUSTER_NODES), run tests/guest/cluster on the
    first one; the others serve as peers until it is done. A peer may reboot
    during the run (the suite asks it to, guest-run.sh powers it off with
    out/reboot, and it is booted again on the same disks).

    Returns the first node's GuestRun; every node's files are in
    tests/guest/.last-run-cluster/<node>/.
    """
    debs = _check_debs(debs)
    with exclusive_lock():
        image = ensure_image(release)
        with tempfile.TemporaryDirectory(prefix="ganeti-zfs-cluster-") as tmp:
            tmp = Path(tmp)
            socket_path = tmp / "l2.sock"
            nodes = []
            for index, (name, _) in enumerate(CLUSTER_NODES):
                short = name.split(".")[0]
                node = Guest(short, tmp / short, nic=_cluster_nic(index, socket_path))
                _prepare_share(node.share, debs, pytest_args if index == 0 else (),
                               "test" if index == 0 else "peer", suite=CLUSTER_SUITE,
                               cluster=CLUSTER_NODES, node=name)
                _make_disks(image, node.work)
                nodes.append(node)
            log(f"booting the cluster ({', '.join(n.label for n in nodes)}; {release}, "
                f"{', '.join(d.name for d in debs) or 'no .deb'}, timeout {timeout:.0f} s)")
            status, elapsed = _watch(nodes, image, timeout, echo, runner=nodes[0], socket_path=socket_path)
            kept = last_run(release, "-cluster")
            shutil.rmtree(kept, ignore_errors=True)
            runs = [node.result(status, elapsed, kept / node.label) for node in nodes]
    log(f"cluster {status} after {elapsed:.0f} s (exit status {runs[0].exit_status}); "
        f"consoles and results in {kept}")
    return runs[0]


def _watch(guests, image, timeout, echo, runner=None, socket_path=None):
    """Boot guests and wait for them; (status, seconds). With a runner (a
    cluster): until the runner is done, booting again any other guest that
    powered off to reboot, then a minute for the others to save their logs
    (they stop when the runner's suite tells them to: cluster/conftest.py);
    the runner boots first and opens socket_path. Without: until all are done.
    Whatever still runs at the end is killed."""
    started = time.monotonic()
    followers = _Followers(guests, echo)
    others = [g for g in guests if g is not runner]
    status = "finished"
    try:
        for guest in guests:
            guest.boot(image)
            if guest is runner:
                _wait_for_socket(socket_path, guest.qemu)
        while runner.running() if runner else any(g.running() for g in guests):
            if time.monotonic() - started > timeout:
                status = "timeout"
                break
            time.sleep(0.5)
            followers.poll()
            for guest in others if runner else ():
                if not guest.running() and guest.reboot_requested():
                    log(f"{guest.label} powered off to reboot: booting it again")
                    guest.boot(image)
        deadline = time.monotonic() + 60
        while runner and any(g.running() for g in others) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        for guest in guests:
            guest.stop()
    followers.poll()
    return status, time.monotonic() - started


def plan_shards(modules, count, weights=SHARD_MINUTES):
    """Split test modules into count lists of about equal run time: heaviest
    first onto the lightest shard (unknown modules weigh one minute). Each list
    keeps the suite's own (alphabetical) order."""
    loads = [[0.0, []] for _ in range(count)]
    for module in sorted(modules, key=lambda m: (-weights.get(m, 1.0), m)):
        lightest = min(loads, key=lambda load: load[0])
        lightest[0] += weights.get(module, 1.0)
        lightest[1].append(module)
    return [sorted(names) for _, names in loads if names]


class ShardedRun:
    """The GuestRuns of a suite split across guests, read as one run."""

    def __init__(self, runs):
        self.runs = runs
        self.elapsed = max(r.elapsed for r in runs)
        results = [r.results for r in runs]
        self.results = None if None in results else {"tests": [t for r in results for t in r["tests"]]}
        self.status = next((r.status for r in runs if r.status != "finished"), "finished")
        statuses = [r.exit_status for r in runs]
        if None in statuses:
            self.exit_status = None
        elif all(s == 5 for s in statuses):  # pytest's "no tests collected", everywhere
            self.exit_status = 5
        else:
            self.exit_status = max(s for s in statuses if s != 5)
        worst = next((r for r in runs if r.problem() or not r.ok), runs[0])
        self.out, self.console = worst.out, worst.console

    @property
    def ok(self):
        return all(r.ok for r in self.runs)

    def problem(self):
        problems = [f"{r.out.parent.name}: {r.problem()}" for r in self.runs if r.problem()]
        return "; ".join(problems) or None

    def console_tail(self, lines=60):
        return "\n".join(r.console_tail(lines) for r in self.runs if r.problem() or not r.ok)


def run_sharded(debs=(), shards=2, timeout=DEFAULT_TIMEOUT, release=DEFAULT_RELEASE, echo=None,
                every_module=False):
    """Run the whole suite on `shards` guests at once, one vCPU each (a TCG guest
    runs the suite on about one host core whatever its vCPUs: two single-vCPU
    guests use both). Each guest gets its share of the modules (plan_shards) and
    its own pools (every_module: also those ONLY_ON leaves out); then the OWN_BOOT modules of this release, each in a guest of
    its own, `shards` at a time. Their files are in tests/guest/.last-run/<label>/."""
    debs = _check_debs(debs)
    modules = sorted(p.name for p in SUITE.glob("test_*.py"))
    if not every_module:
        modules = [m for m in modules if release in ONLY_ON.get(m, (release,))]
    waves = [[(f"shard{index}", names) for index, names in
              enumerate(plan_shards([m for m in modules if m not in OWN_BOOT], shards), 1)]]
    alone = [(f"own-{m[:-3]}", [m]) for m in modules if release in OWN_BOOT.get(m, ())]
    waves += [alone[i:i + shards] for i in range(0, len(alone), shards)]
    started = time.monotonic()
    kept = last_run(release)
    runs, status = [], "finished"
    with exclusive_lock():
        image = ensure_image(release)
        shutil.rmtree(kept, ignore_errors=True)
        for wave in waves:
            left = timeout - (time.monotonic() - started)
            if status != "finished" or left <= 0:
                break  # (the run's status already says why)
            with tempfile.TemporaryDirectory(prefix="ganeti-zfs-guests-") as tmp:
                guests = []
                for label, names in wave:
                    guest = Guest(label, Path(tmp) / label, memory=SHARD_MEMORY_MIB)
                    _prepare_share(guest.share, debs, names, "test")
                    _make_disks(image, guest.work)
                    guests.append(guest)
                    log(f"{guest.label}: {' '.join(names)}")
                log(f"booting {len(guests)} guests ({release}, {', '.join(d.name for d in debs) or 'no .deb'}, "
                    f"{left:.0f} s left of the timeout)")
                status, elapsed = _watch(guests, image, left, echo)
                runs += [g.result(status, elapsed, kept / g.label) for g in guests]
    run = ShardedRun(runs)
    run.elapsed = time.monotonic() - started
    log(f"guests {run.status} after {run.elapsed:.0f} s; consoles and results in {kept}/*/")
    return run


def _assignment(text):
    name, equals, value = text.partition("=")
    if not equals or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or "\n" in value:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE on one line")
    return text


def main(argv=None):
    # A SIGTERM (CI's timeout, a killed make) leaves through the finally
    # blocks, which kill QEMU; by default it would leave the guest running.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release", default=DEFAULT_RELEASE)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the guest image of --release unless it is cached")
    sub.add_parser("build-all", help=f"build the missing images of {', '.join(RELEASES)}, at once")
    sub.add_parser("image-dir", help="print where the image for the current recipe is cached")
    cluster = sub.add_parser("cluster", help="boot the two-node cluster and run tests/guest/cluster")
    cluster.add_argument("--deb", action="append", default=None,
                         help="a .deb to install on every node (repeatable; default: build/*.deb)")
    cluster.add_argument("--pytest-args", default="", help="extra pytest arguments for the first node")
    cluster.add_argument("--timeout", type=float, default=CLUSTER_TIMEOUT, help="seconds")
    for name in ("run", "shell", "script"):
        p = sub.add_parser(name, help={"run": "run the guest test suite",
                                       "shell": "set the guest up, then give a root shell",
                                       "script": "set the guest up, then run SCRIPT (its out/ comes back)"}[name])
        if name == "script":
            p.add_argument("script", help="a program to run as root in the set-up guest")
            p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds")
            p.add_argument("--env", action="append", default=[], type=_assignment, metavar="NAME=VALUE",
                           help="put NAME=VALUE in the script's environment (repeatable)")
        p.add_argument("--deb", action="append", default=None,
                       help="a .deb to install in the guest (repeatable; default: build/*.deb)")
        if name == "run":
            p.add_argument("--pytest-args", default="",
                           help='extra pytest arguments for the guest, e.g. "-k zvol"')
            p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds")
    args = parser.parse_args(argv)

    if args.command == "image-dir":
        print(image_dir(args.release))
        return 0
    if args.command in ("build", "build-all"):
        for image in build_images([args.release] if args.command == "build" else RELEASES):
            log(f"image: {image}")
        return 0
    debs = args.deb if args.deb is not None else default_debs()
    if args.command == "shell":
        print("guest shell: exit the shell to power off (Ctrl-A X kills QEMU)", flush=True)
        run_guest(debs, release=args.release, mode="shell")
        return 0
    if args.command == "script":
        run = run_guest(debs, (), args.timeout, args.release, mode="script", script=args.script,
                        script_env=args.env,
                        echo=lambda line: print(line, flush=True))
        if run.status != "finished" or run.exit_status != 0:
            print(f"\nFAILED: the guest {run.status}; the script's exit status: {run.exit_status}\n"
                  f"--- console tail ---\n{run.console_tail()}", file=sys.stderr)
            return 1
        return 0
    suite_run = run_cluster if args.command == "cluster" else run_guest
    run = suite_run(debs, shlex.split(args.pytest_args), args.timeout, args.release,
                    echo=lambda line: print("  | " + line, flush=True))
    problem = run.problem()
    if problem:
        print(f"\nFAILED: {problem}\n--- console tail ---\n{run.console_tail()}", file=sys.stderr)
        return 1
    return 0 if run.ok else 1


if __name__ == "__main__":
    sys.exit(main())
