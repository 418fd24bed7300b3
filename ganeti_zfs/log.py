"""Human-readable output: always stderr, never stdout.

Ganeti reads only the device path from attach's stdout and appends
everything else to /var/log/ganeti/extstorage/, so diagnostics must never
reach stdout.
"""

import os
import sys

from .errors import Error

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


def run_reporting_errors(body, error_status=1, bug_status=2):
    """body()'s exit status; a failure becomes ONE line on stderr.

    errors.Error (expected: bad input, refused operation) → error_status;
    anything else is a bug → bug_status, with the traceback only in debug
    mode.
    """
    try:
        return body() or 0
    except Error as error:
        info(" ".join(str(error).split()) or "(no message)")
        return error_status
    except Exception as error:
        if _debug:
            import traceback  # only for bugs in debug mode: kept off every start-up

            traceback.print_exc(file=sys.stderr)
        info(" ".join(f"unexpected error ({type(error).__name__}): {error}".split()) + "; set GANETI_ZFS_DEBUG=1 for details")
        return bug_status
