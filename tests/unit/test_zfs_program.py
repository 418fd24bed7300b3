"""The pure parts of pruning with a channel program (Zfs.destroy_snapshots_batch):
reading `zfs program -j` output and naming zfs's refusals. What zfs really
prints and refuses is tested on real ZFS in tests/guest/suite/test_scheduled.py."""

import errno
import os

import pytest

from ganeti_zfs import zfs

NAMES = ["tank/ganeti/a@2026-11-20", "tank/ganeti/a@2026-11-21", "tank/ganeti/b@2026-11-20", "tank/ganeti/c@2026-11-20"]


def test_program_output_becomes_one_result_per_snapshot():
    # What `zfs program -j` prints: no whitespace, no newline (nvlist_print_json).
    output = (
        '{"return":{"tank/ganeti/a@2026-11-20":0,"tank/ganeti/a@2026-11-21":16,'
        '"tank/ganeti/b@2026-11-20":17,"tank/ganeti/c@2026-11-20":2}}'
    )
    assert zfs.parse_program_results(output, NAMES) == {
        "tank/ganeti/a@2026-11-20": None,
        "tank/ganeti/a@2026-11-21": "not destroyed: held (zfs hold) or in use (EBUSY)",
        "tank/ganeti/b@2026-11-20": "not destroyed: has clones (EEXIST)",
        "tank/ganeti/c@2026-11-20": None,  # ENOENT: gone already
    }


def test_errno_reasons():
    assert errno.EBUSY == 16 and errno.EEXIST == 17 and errno.ENOENT == 2  # as the Linux kernel module returns them
    assert zfs.destroy_refusal(0) is None
    assert zfs.destroy_refusal(errno.ENOENT) is None
    assert zfs.destroy_refusal(errno.EINVAL) == "not destroyed: not a snapshot (EINVAL)"
    assert zfs.destroy_refusal(errno.EXDEV) == "not destroyed: not in this pool (EXDEV)"
    assert zfs.destroy_refusal(errno.ENOSPC) == "not destroyed: pool out of space (ENOSPC)"
    assert zfs.destroy_refusal(errno.EIO) == "not destroyed: Input/output error (EIO)"
    assert zfs.destroy_refusal(4242).startswith("not destroyed: Unknown error 4242 (4242)")


@pytest.mark.parametrize(
    "output",
    [
        "",  # nothing
        "Channel program fully executed and produced output:",  # not JSON (no -j)
        '{"error":"oops"}',  # no "return"
        '{"return":"a string"}',
        '{"return":{"tank/ganeti/a@2026-11-20":0}}',  # names missing
    ],
)
def test_output_without_a_code_for_every_name_is_an_error(output):
    with pytest.raises(zfs.ZfsError, match="unexpected zfs program output"):
        zfs.parse_program_results(output, NAMES)


def test_a_non_number_is_an_error():
    output = '{"return":{"tank/ganeti/a@2026-11-20":"0"}}'
    with pytest.raises(zfs.ZfsError, match="non-number"):
        zfs.parse_program_results(output, NAMES[:1])
    with pytest.raises(zfs.ZfsError, match="non-number"):
        zfs.parse_program_results('{"return":{"tank/ganeti/a@2026-11-20":true}}', NAMES[:1])


@pytest.mark.parametrize("name", ["tank/ganeti/a", "tank2/ganeti/a@x", "tankx/a@x", "tank@x"])
def test_only_snapshots_of_the_pool_are_given_to_the_program(name):
    # Checked before anything runs (there is no zfs command to run here).
    runner = zfs.Zfs(zfs="/nonexistent/zfs")
    with pytest.raises(ValueError, match="is not a snapshot in pool tank"):
        runner.destroy_snapshots_batch("tank", ["tank/ganeti/b@x", name])
    assert runner.calls == 0


def test_nothing_to_destroy_runs_nothing():
    runner = zfs.Zfs(zfs="/nonexistent/zfs")
    assert runner.destroy_snapshots_batch("tank", []) == {}
    assert runner.calls == 0


def test_the_program_destroys_only_names_with_an_at_sign():
    # A volume's name would make zfs.sync.destroy destroy the volume; the
    # program's own guard (the real run is in the guest tests).
    assert 'if string.find(name, "@", 1, true) then' in zfs.DESTROY_SNAPSHOTS_PROGRAM
    assert 'args["argv"]' in zfs.DESTROY_SNAPSHOTS_PROGRAM



# -- every call is bounded ------------------------------------------------------


def test_a_killed_zfs_that_does_not_exit_is_left_after_the_grace_period():
    # A zfs stuck in the kernel (a suspended pool) ignores SIGKILL until the
    # kernel lets it go; subprocess.run's own timeout handling then waits
    # for it without limit. Such a process cannot be made here, so this is
    # a stand-in with the interface of subprocess.Popen.
    import subprocess

    class StuckProcess:
        pid, stdin, stdout, stderr = 4242, None, None, None
        killed = False
        waited_with = None

        def kill(self):
            self.killed = True

        def wait(self, timeout=None):
            self.waited_with = timeout
            raise subprocess.TimeoutExpired("zfs", timeout)

    process = StuckProcess()
    zfs.kill_within_grace(process, grace=0.01)
    assert process.killed and process.waited_with == 0.01


def test_a_timed_out_zfs_raises_timeout_and_is_killed(tmp_path):
    fake = tmp_path / "zfs"
    pid_file = tmp_path / "pid"
    fake.write_text(f"#!/bin/sh\necho $$ >{pid_file}\nexec sleep 60\n")
    fake.chmod(0o755)
    with pytest.raises(zfs.Timeout, match="timed out after 0.5 s"):
        zfs.Zfs(timeout=0.5, zfs=str(fake)).zfs("list")
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
