"""Human-readable output: always stderr, never stdout.

Ganeti reads only the device path from attach's stdout and appends
everything else to /var/log/ganeti/extstorage/, so diagnostics must never
reach stdout.
"""

import os
import sys

_debug = os.environ.get("GANETI_ZFS_DEBUG", "") not in ("", "0", "no")
_prefix = "ganeti-zfs"


def set_prefix(prefix):
    global _prefix
    _prefix = prefix


def enable_debug(enabled=True):
    global _debug
    _debug = _debug or enabled


def debug_enabled():
    return _debug


def info(message):
    print(f"{_prefix}: {message}", file=sys.stderr, flush=True)


def warning(message):
    print(f"{_prefix}: warning: {message}", file=sys.stderr, flush=True)


def debug(message):
    if _debug:
        print(f"{_prefix}: debug: {message}", file=sys.stderr, flush=True)
