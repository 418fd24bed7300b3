"""A node-wide lock between the snapshot job and the provider.

The scheduled snapshot run takes it exclusively while it snapshots and
prunes, so a volume cannot appear or vanish under its one atomic
`zfs snapshot` call; provider create/remove/snapshot take it shared, so they
never block each other. Overlapping snapshot runs (cron, timer, an admin)
serialise on it too.
"""

import contextlib
import fcntl
import os
import time

from .errors import Error

LOCK_PATH = os.environ.get("GANETI_ZFS_LOCK", "/run/lock/ganeti-extstorage-zfs.lock")


class LockTimeout(Error):
    pass


@contextlib.contextmanager
def _locked(mode, timeout, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as file:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(file, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"another ganeti-zfs run holds {path}; gave up after {timeout:g} s")
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def exclusive(timeout=600, path=None):
    return _locked(fcntl.LOCK_EX, timeout, path or LOCK_PATH)


def shared(timeout=600, path=None):
    return _locked(fcntl.LOCK_SH, timeout, path or LOCK_PATH)
