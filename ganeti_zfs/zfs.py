"""The one module that runs `zfs` and `zpool`.

Every call has a timeout, asks for machine-readable output (-H -p) and turns
a failure into a typed exception recognised from zfs's stderr, so callers
can tell "does not exist" from "busy" without parsing messages themselves.
"""

import errno
import os
import re
import shlex
import time

from . import log
from .errors import Error

DEFAULT_TIMEOUT = 120


class ZfsError(Error):
    """A zfs or zpool command failed for a reason we do not classify."""

    def __init__(self, command, stderr, returncode=None, stdout=""):
        self.command = list(command)
        self.stderr = (stderr or "").strip()
        self.returncode = returncode
        self.stdout = stdout  # what it printed before failing (zfs list: the names it found)
        detail = self.stderr.splitlines()[-1] if self.stderr else f"exit status {returncode}"
        super().__init__(f"`{shlex.join(self.command)}` failed: {detail}")


class DoesNotExist(ZfsError):
    pass


class AlreadyExists(ZfsError):
    pass


class Busy(ZfsError):
    pass


class OutOfSpace(ZfsError):
    pass


class HasDependents(ZfsError):
    """A snapshot has clones, or a dataset has children we would not destroy."""


class Timeout(ZfsError):
    pass


# Checked in order: the first pattern found in stderr decides the type.
_STDERR_PATTERNS = [
    (re.compile(r"dependent clones|has children|use '-r' to destroy|use '-R' to destroy"), HasDependents),
    (re.compile(r"does not exist|no such pool|no such dataset|could not find any snapshots"), DoesNotExist),
    (re.compile(r"already exists|destination '[^']*' exists"), AlreadyExists),
    (re.compile(r"is busy|dataset busy"), Busy),
    (re.compile(r"out of space|greater than available space|exceeds available space|quota exceeded"), OutOfSpace),
]


def classify(command, stderr, returncode, stdout=""):
    """The exception for a failed command, chosen by its stderr."""
    for pattern, error_type in _STDERR_PATTERNS:
        if pattern.search(stderr or ""):
            return error_type(command, stderr, returncode, stdout)
    return ZfsError(command, stderr, returncode, stdout)


# zfs list names each dataset it cannot find on a line of its own and
# still lists the others (exit status 1).
_CANNOT_OPEN = re.compile(r"^cannot open '([^']+)': dataset does not exist$")


def missing_datasets(stderr, names):
    """The `names` that stderr says do not exist, or None if it says anything else."""
    missing = []
    for line in stderr.splitlines():
        match = _CANNOT_OPEN.match(line.strip())
        if not match or match.group(1) not in names:
            return None
        missing.append(match.group(1))
    return missing or None


# The channel program (zfs-program(8)) that prunes: it destroys each snapshot
# named in its arguments on its own, so a held or cloned one fails alone
# (zfs.sync.destroy checks first and returns an errno instead of stopping the
# program), and returns {name = errno} for every name, 0 when destroyed. All
# of it runs in one transaction group. It takes only names with an "@":
# given a volume, zfs.sync.destroy would destroy the volume.
DESTROY_SNAPSHOTS_PROGRAM = """\
local args = ...
local results = {}
for _, name in ipairs(args["argv"]) do
    if string.find(name, "@", 1, true) then
        results[name] = zfs.sync.destroy(name)
    else
        results[name] = EINVAL
    end
end
return results
"""

# Bytes of memory the program may use (zfs-program(8): default 10 MB, at
# most 100 MB). Each name is in it as a Lua string with two table slots
# (argv, results), and the packed results must fit in it too, or zfs says
# "Return value too large" after destroying them all. A full argument list
# (ARG_MAX, 2 MiB by default) of short names needs more than the default.
PROGRAM_MEMORY_LIMIT = 64 * 1024 * 1024
# The most argument bytes one program is given: a sixteenth of its memory
# (ARG_MAX grows with the stack limit, this does not). Its Lua instructions,
# about 20 a name, then stay far below zfs's default limit of 10 million.
PROGRAM_ARGUMENTS_LIMIT = PROGRAM_MEMORY_LIMIT // 16

# Why zfs.sync.destroy refused a snapshot (errno, as the Linux kernel module
# returns it). ENOENT is not here: the snapshot is gone, which is what we
# wanted (OpenZFS 2.1 itself returns 0 for a snapshot that does not exist).
_DESTROY_REFUSALS = {
    errno.EBUSY: "held (zfs hold) or in use",
    errno.EEXIST: "has clones",
    errno.EINVAL: "not a snapshot",
    errno.EXDEV: "not in this pool",
    errno.ENOSPC: "pool out of space",
}


def snapshot_command(properties=None, zfs="zfs"):
    """The argv, before the snapshot names, of `zfs snapshot -o ...` (also
    what the snapshot job measures its argument budget against)."""
    command = [zfs, "snapshot"]
    for key, value in (properties or {}).items():
        command += ["-o", f"{key}={value}"]
    return command


def destroy_program_command(pool, zfs="zfs"):
    """The argv, before the snapshot names, that runs DESTROY_SNAPSHOTS_PROGRAM
    (also what the snapshot job measures its argument budget against)."""
    return [zfs, "program", "-j", "-m", str(PROGRAM_MEMORY_LIMIT), pool, "-"]


def destroy_refusal(code):
    """None when `code` (zfs.sync.destroy's errno) means the snapshot is gone, else why it is not."""
    if code in (0, errno.ENOENT):
        return None
    reason = _DESTROY_REFUSALS.get(code) or os.strerror(code)
    return f"not destroyed: {reason} ({errno.errorcode.get(code, code)})"


def parse_program_results(output, names):
    """{name: None or reason} from `zfs program -j` output of DESTROY_SNAPSHOTS_PROGRAM.

    -j prints {"return": <the table the program returned>}. Output without an
    error code for every name means the program did not do what we asked.
    """
    import json  # only the snapshot job needs it: see the import in Zfs._run

    try:
        returned = json.loads(output)["return"]
        codes = {name: returned[name] for name in names}
    except (ValueError, KeyError, TypeError) as error:
        raise ZfsError(["parse"], f"unexpected zfs program output ({error!r}): {output[:200]!r}")
    if not all(type(code) is int for code in codes.values()):
        raise ZfsError(["parse"], f"zfs program returned a non-number: {output[:200]!r}")
    return {name: destroy_refusal(code) for name, code in codes.items()}


def parse_rows(output, fields):
    """Rows of `-H` output (tab-separated) as dicts keyed by field name."""
    rows = []
    for line in output.splitlines():
        if not line:
            continue
        values = line.split("\t")
        if len(values) != len(fields):
            raise ZfsError(["parse"], f"expected {len(fields)} fields, got {len(values)}: {line!r}")
        rows.append(dict(zip(fields, values)))
    return rows


# Seconds a killed zfs gets to exit. One stuck in the kernel (a suspended
# pool) cannot die until the kernel lets it, and a child it left may hold its
# output open: waiting for either would make the timeout meaningless.
KILL_GRACE = 5


def kill_within_grace(process, grace=KILL_GRACE):
    """SIGKILL `process` and reap it, but wait no longer than `grace` s."""
    import subprocess

    process.kill()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log.warning(f"zfs process {process.pid} did not exit {grace:g} s after SIGKILL; leaving it")
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass


class Zfs:
    """Runs zfs/zpool commands. One instance per process is enough."""

    def __init__(self, timeout=DEFAULT_TIMEOUT, zfs="zfs", zpool="zpool"):
        self.timeout = timeout
        self.zfs_command = zfs
        self.zpool_command = zpool
        self.calls = 0  # how many processes we started (benchmarks read it)

    # -- running ---------------------------------------------------------

    def _run(self, command, timeout=None, input=None):
        # Imported on first use: attach mostly answers without any zfs
        # process, and importing subprocess is a large part of its start-up
        # (docs/benchmarks.md).
        import subprocess

        command = self.wrap(command)
        log.debug("run: " + shlex.join(command))
        self.calls += 1
        timeout = timeout or self.timeout
        started = time.monotonic()
        try:
            process = subprocess.Popen(
                command,
                # `input` is what `zfs program ... -` reads; else nothing.
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        except FileNotFoundError:
            raise ZfsError(command, f"{command[0]}: command not found (is zfsutils-linux installed?)")
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except BaseException as error:  # the timeout, or Ctrl-C
            kill_within_grace(process)
            if isinstance(error, subprocess.TimeoutExpired):
                raise Timeout(command, f"timed out after {timeout:g} s")
            raise
        log.debug(f"exit {process.returncode} after {time.monotonic() - started:.3f} s")
        if process.returncode != 0:
            raise classify(command, stderr, process.returncode, stdout)
        return stdout

    def send_receive(self, snapshot, target, properties=None, timeout=None, base=None, compressed=False,
                     receiver=None, progress=None):
        """`zfs send SNAPSHOT | zfs receive -u [-o k=v]... TARGET`: a copy of one snapshot.

        A plain send (no -R, -p): the data of that snapshot alone, none of
        the source's properties or other snapshots. `base`: an earlier
        snapshot of the same dataset, for an incremental send (-i) onto a
        target that has it; `compressed`: -c, blocks as they are on disk.
        `receiver`: the Zfs that receives (a RemoteZfs: over ssh; default
        this one). `progress(bytes)`: called as the stream passes, which
        then goes through this process instead of a direct pipe.
        Both processes share one deadline and count in `calls`. The error
        raised is the receive's (why the copy stopped: out of space,
        exists), unless the send failed on its own rather than of a broken
        pipe because the receive had stopped.
        """
        import signal
        import subprocess
        import threading

        receiver = receiver or self
        send_command = [self.zfs_command, "send", *(["-c"] if compressed else []), *(["-i", base] if base else []),
                        snapshot]
        # -F with an incremental: the target is rolled back to `base` first,
        # should anything have written to it since (it must be a copy only
        # this send feeds).
        receive_command = [receiver.zfs_command, "receive", "-u", *(["-F"] if base else [])]
        for key, value in (properties or {}).items():
            receive_command += ["-o", f"{key}={value}"]
        receive_command.append(target)
        send_command, receive_command = self.wrap(send_command), receiver.wrap(receive_command)
        timeout = timeout or self.timeout
        log.debug("run: " + shlex.join(send_command) + " | " + shlex.join(receive_command))
        self.calls += 2
        started = time.monotonic()
        try:
            send = subprocess.Popen(send_command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError:
            raise ZfsError(send_command, f"{send_command[0]}: command not found (is zfsutils-linux installed?)")
        try:
            receive = subprocess.Popen(receive_command, stdin=subprocess.PIPE if progress else send.stdout,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except BaseException:
            send.kill()
            send.wait()
            raise
        finally:
            if not progress:
                send.stdout.close()  # the receive has it; the send must see EPIPE once the receive exits
        relay = None
        if progress:
            relay = threading.Thread(target=_relay, args=(send.stdout, receive.stdin, progress), daemon=True)
            relay.start()
        try:
            if relay:
                # Not communicate(): it would close the receive's stdin, and
                # read the send's stdout, which are the relay's.
                receive.wait(timeout=timeout)
                receive_errors = receive.stderr.read()
                send.wait(timeout=max(0.0, started + timeout - time.monotonic()))
                send_errors = send.stderr.read()
            else:
                receive_errors = receive.communicate(timeout=timeout)[1]
                send_errors = send.communicate(timeout=max(0.0, started + timeout - time.monotonic()))[1]
        except BaseException as error:  # the timeout, or Ctrl-C: no zfs process outlives us
            for process in (send, receive):
                kill_within_grace(process)
            if isinstance(error, subprocess.TimeoutExpired):
                raise Timeout(receive_command, f"timed out after {timeout:g} s (with `{shlex.join(send_command)}`)")
            raise
        finally:
            if relay:
                relay.join(timeout=5)
        log.debug(f"exit {send.returncode} | {receive.returncode} after {time.monotonic() - started:.3f} s")
        send_broke_on_pipe = send.returncode == -signal.SIGPIPE or b"Broken pipe" in send_errors
        if send.returncode != 0 and not (receive.returncode != 0 and send_broke_on_pipe):
            raise classify(send_command, send_errors.decode(errors="replace"), send.returncode)
        if receive.returncode != 0:
            raise classify(receive_command, receive_errors.decode(errors="replace"), receive.returncode)

    def send_size(self, snapshot, base=None, compressed=False):
        """The bytes `zfs send -nP` expects to send (the same options as send_receive)."""
        output = self.zfs("send", "-n", "-P", *(["-c"] if compressed else []), *(["-i", base] if base else []),
                          snapshot)
        for line in output.splitlines():
            fields = line.split("\t")
            if fields[0] == "size" and len(fields) == 2 and fields[1].isdigit():
                return int(fields[1])
        return None

    def wrap(self, command):
        """How `command` (zfs and its arguments) runs: here, as it is."""
        return command

    def zfs(self, *args, timeout=None):
        return self._run([self.zfs_command, *args], timeout)

    def zpool(self, *args, timeout=None):
        return self._run([self.zpool_command, *args], timeout)

    # -- queries ---------------------------------------------------------

    def list(self, names, fields, types=("volume",), recursive=False, depth=None):
        """`zfs list -H -p` of `names` (one process), as a list of dicts.

        `fields` may include user properties; an unset one reads as "-".
        """
        return parse_rows(self.zfs(*self._list_args(fields, types, recursive, depth), *names), fields)

    def list_present(self, names, fields, types=("volume",), recursive=False, depth=None):
        """(rows, missing names): like list(), but a name that does not exist
        is reported instead of failing the call, still in one process."""
        try:
            return self.list(names, fields, types, recursive, depth), []
        except DoesNotExist as error:
            missing = missing_datasets(error.stderr, names)
            if missing is None:
                raise
            return parse_rows(error.stdout, fields), missing

    @staticmethod
    def _list_args(fields, types, recursive, depth):
        args = ["list", "-H", "-p", "-o", ",".join(fields)]
        if types:
            args += ["-t", ",".join(types)]
        if depth is not None:
            args += ["-d", str(depth)]
        elif recursive:
            args.append("-r")
        return args

    def get(self, name, fields):
        """The given properties of one dataset or snapshot, as a dict."""
        rows = self.list([name], fields, types=("all",))
        if not rows:
            raise DoesNotExist(["zfs", "list", name], f"dataset does not exist: {name}")
        return rows[0]

    def get_with_source(self, name, properties, types=None, recursive=False, depth=None):
        """`zfs get -H -p` of `properties` (one process): {dataset: {property: (value, source)}}.

        The source tells a locally set user property from one inherited from
        a parent, which `zfs list` cannot.
        """
        args = ["get", "-H", "-p", "-o", "name,property,value,source"]
        if types:
            args += ["-t", ",".join(types)]
        if depth is not None:
            args += ["-d", str(depth)]
        elif recursive:
            args.append("-r")
        result = {}
        fields = ["name", "property", "value", "source"]
        for row in parse_rows(self.zfs(*args, ",".join(properties), name), fields):
            result.setdefault(row["name"], {})[row["property"]] = (row["value"], row["source"])
        return result

    def exists(self, name):
        try:
            self.list([name], ["name"], types=("all",))
        except DoesNotExist:
            return False
        return True

    def pools(self, fields):
        """`zpool list -H -p` of every pool, as a list of dicts."""
        return parse_rows(self.zpool("list", "-H", "-p", "-o", ",".join(fields)), fields)

    def pool(self, name, fields):
        rows = parse_rows(self.zpool("list", "-H", "-p", "-o", ",".join(fields), name), fields)
        return rows[0]

    # -- changes ---------------------------------------------------------

    def create_volume(self, name, size_bytes, sparse=False, blocksize=None, properties=None):
        args = ["create"]
        if sparse:
            args.append("-s")
        if blocksize:
            args += ["-b", str(blocksize)]
        for key, value in (properties or {}).items():
            args += ["-o", f"{key}={value}"]
        self.zfs(*args, "-V", str(size_bytes), name)

    def set(self, name, properties):
        """Set several properties in one call."""
        if properties:
            self.zfs("set", *(f"{k}={v}" for k, v in properties.items()), name)

    def inherit(self, name, prop):
        self.zfs("inherit", prop, name)

    def destroy(self, name, snapshots_too=False, force=False):
        """Destroy one dataset or snapshot; `-r` only for its own snapshots.

        Never `-R`: that would also destroy clones that other datasets are.
        `force`: `-f` (DESTROY_OPTIONS), which force-unmounts a file system
        and does nothing for a volume (zfs-destroy(8)).
        """
        args = ["destroy"]
        if snapshots_too:
            args.append("-r")
        if force:
            args.append("-f")
        self.zfs(*args, name)

    def destroy_snapshots_batch(self, pool, snapshots):
        """Destroy `snapshots` (full names, all in `pool`) in one `zfs program`.

        Returns {name: None if it is gone, else why zfs refused it}. Raises
        ZfsError when the program did not run to its end: then some may be
        destroyed and some not.
        """
        if not snapshots:
            return {}
        for name in snapshots:
            if "@" not in name or not name.startswith(pool + "/"):
                raise ValueError(f"{name} is not a snapshot in pool {pool}")
        command = destroy_program_command(pool, self.zfs_command)
        try:
            output = self._run([*command, *snapshots], input=DESTROY_SNAPSHOTS_PROGRAM)
        except ZfsError as error:
            # The same type, without thousands of names in its message.
            raise type(error)([*command, f"<{len(snapshots)} snapshots>"], error.stderr, error.returncode) from None
        return parse_program_results(output, snapshots)

    def snapshot(self, snapshots, properties=None):
        """Take all `snapshots` (full names) atomically, in one command.

        zfs requires them all to be in the same pool to be atomic.
        """
        self._run([*snapshot_command(properties, self.zfs_command), *snapshots])

    def clone(self, snapshot, target, properties=None):
        args = ["clone"]
        for key, value in (properties or {}).items():
            args += ["-o", f"{key}={value}"]
        self.zfs(*args, snapshot, target)

    def rename(self, old, new):
        self.zfs("rename", old, new)


def _relay(source, sink, progress, chunk=1 << 20):
    """Copy `source` to `sink` (pipes) until either ends, telling progress(total bytes)."""
    total = 0
    try:
        while True:
            data = source.read1(chunk) if hasattr(source, "read1") else source.read(chunk)
            if not data:
                break
            sink.write(data)
            total += len(data)
            progress(total)
    except (BrokenPipeError, OSError, ValueError):
        pass  # the receive stopped: its exit status and stderr say why
    finally:
        for pipe in (sink, source):
            try:
                pipe.close()
            except (BrokenPipeError, OSError):
                pass


class RemoteZfs(Zfs):
    """zfs on another node, run with `ssh_command` + one shell-quoted command line."""

    def __init__(self, ssh_command, timeout=DEFAULT_TIMEOUT):
        super().__init__(timeout=timeout)
        self.ssh_command = list(ssh_command)

    def wrap(self, command):
        return [*self.ssh_command, shlex.join(command)]
