"""The node lock: a root-only directory, a 0600 file, no symbolic links."""

import os
import stat

import pytest

from ganeti_zfs import lock
from ganeti_zfs.errors import Error


def test_the_default_lock_is_in_a_directory_of_its_own_not_in_run_lock():
    assert lock.DEFAULT_PATH == "/run/ganeti-extstorage-zfs/node.lock"
    assert os.path.dirname(lock.DEFAULT_PATH) == lock.RUNTIME_DIR


def test_a_missing_directory_is_made_0700_and_the_file_0600(tmp_path):
    os.umask(0o022)
    path = tmp_path / "run" / "node.lock"
    with lock.shared(path=str(path)):
        pass
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o702, 0o720])
def test_a_directory_others_may_write_to_is_refused(tmp_path, mode):
    directory = tmp_path / "run"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(lock.LockError, match=r"others may write to it; refusing"):
        with lock.exclusive(path=str(directory / "node.lock")):
            pass
    assert not (directory / "node.lock").exists()


def test_a_directory_owned_by_someone_else_is_refused(tmp_path, monkeypatch):
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    owner = os.stat(directory).st_uid
    if owner == 0:
        os.chown(directory, 12345, -1)
    else:
        monkeypatch.setattr(os, "geteuid", lambda: owner + 1)
    with pytest.raises(lock.LockError, match=r"owned by uid [0-9]+, not root"):
        with lock.shared(path=str(directory / "node.lock")):
            pass


def test_a_symbolic_link_as_directory_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "run").symlink_to(real)
    with pytest.raises(lock.LockError, match=r"is not a directory"):
        with lock.shared(path=str(tmp_path / "run" / "node.lock")):
            pass


def test_a_file_as_directory_is_refused(tmp_path):
    (tmp_path / "run").write_text("")
    with pytest.raises(lock.LockError, match=r"is not a directory"):
        with lock.shared(path=str(tmp_path / "run" / "node.lock")):
            pass


def test_a_symbolic_link_as_lock_file_is_not_followed(tmp_path):
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    target = tmp_path / "elsewhere"
    (directory / "node.lock").symlink_to(target)
    with pytest.raises(lock.LockError, match=r"cannot open the lock file"):
        with lock.shared(path=str(directory / "node.lock")):
            pass
    assert not target.exists()


def test_errors_are_one_line_errors(tmp_path):
    assert issubclass(lock.LockError, Error) and issubclass(lock.LockTimeout, lock.LockError)


def test_shared_holders_do_not_block_each_other_and_exclusive_waits(tmp_path):
    path = str(tmp_path / "run" / "node.lock")
    with lock.shared(path=path), lock.shared(path=path, timeout=1):
        with pytest.raises(lock.LockTimeout, match="gave up after 0.2 s"):
            with lock.exclusive(path=path, timeout=0.2):
                pass
    with lock.exclusive(path=path, timeout=1):
        pass
