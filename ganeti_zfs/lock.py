"""A node-wide lock between the snapshot job and the provider.

The scheduled snapshot run takes it exclusively while it snapshots and
prunes, so a volume cannot appear or vanish under its one atomic
`zfs snapshot` call; provider create/remove/snapshot take it shared, so they
never block each other. Overlapping snapshot runs (cron, timer, an admin)
serialise on it too.

The lock file lives in a directory only root can enter (RUNTIME_DIR, also
made by the package's tmpfiles.d entry): flock(2) works on any descriptor,
even a read-only one, so a lock file any user can open is a lock any user
can hold, stopping every create, remove and snapshot for the lock timeout.
The directory is refused unless it is a real directory, owned by root (or
by the user running, for a $GANETI_ZFS_LOCK of one's own), that nobody else
may write to; the file is opened without following a symbolic link.
"""

import contextlib
import fcntl
import os
import stat
import time

from .errors import Error

RUNTIME_DIR = "/run/ganeti-extstorage-zfs"
DEFAULT_PATH = f"{RUNTIME_DIR}/node.lock"
# Tests point every command at a lock of their own.
PATH_VARIABLE = "GANETI_ZFS_LOCK"
LOCK_PATH = os.environ.get(PATH_VARIABLE, DEFAULT_PATH)


class LockError(Error):
    pass


class LockTimeout(LockError):
    pass


def check_directory(path):
    """Refuse a lock directory that anyone but root (or us) could change."""
    try:
        info = os.lstat(path)
    except OSError as error:
        raise LockError(f"cannot use the lock directory {path}: {error.strerror}")
    if not stat.S_ISDIR(info.st_mode):
        raise LockError(f"the lock directory {path} is not a directory (a symbolic link or file is refused)")
    if info.st_uid not in (0, os.geteuid()):
        raise LockError(f"the lock directory {path} is owned by uid {info.st_uid}, not root; refusing to use it")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise LockError(
            f"the lock directory {path} has mode {stat.S_IMODE(info.st_mode):04o}: others may write to it; "
            "refusing to use it (it must be 0700 root)"
        )


def prepare_directory(path):
    """Make the lock directory (mode 0700) if missing, then check it."""
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as error:
        raise LockError(f"cannot create the lock directory {path}: {error.strerror}")
    check_directory(path)


def open_lock_file(path):
    """The lock file's descriptor (created 0600); never through a symbolic link."""
    prepare_directory(os.path.dirname(os.path.abspath(path)))
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise LockError(f"cannot open the lock file {path}: {error.strerror}")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise LockError(f"the lock file {path} is not a regular file")
    return fd


@contextlib.contextmanager
def _locked(mode, timeout, path):
    fd = open_lock_file(path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"another ganeti-zfs run holds {path}; gave up after {timeout:g} s")
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def exclusive(timeout=600, path=None):
    return _locked(fcntl.LOCK_EX, timeout, path or LOCK_PATH)


def shared(timeout=600, path=None):
    return _locked(fcntl.LOCK_SH, timeout, path or LOCK_PATH)
