"""Running the installed `zfs` ExtStorage provider the way Ganeti does.

Ganeti runs /usr/share/ganeti/extstorage/zfs/<action> with no argv, cwd =
the provider dir, its own environment plus LC_ALL=C and VOL_*/EXTP_*
(EXTP_PROVIDER and EXTP_ACCESS always): docs/ganeti-contract.md 1.2/1.3.
"""

import os
import subprocess
import uuid
from pathlib import Path

from guestlib import run, zfs_list_all

PROVIDER_DIR = Path("/usr/share/ganeti/extstorage/zfs")
NODE_CONFIG = Path("/etc/ganeti/extstorage-zfs.conf")
PARENT = "tank/ganeti"
MiB = 1 << 20

# What "nothing changed" means: no dataset, volume or snapshot created,
# destroyed, resized, re-cloned or re-marked. (used/referenced are left out:
# they move on their own while ZFS frees space in the background.)
STATE_PROPS = ("name", "type", "volsize", "origin", "ganeti-zfs:owner", "ganeti-zfs:open", "ganeti-zfs:metadata")


def ensure_node_config():
    """The suite's node config (conftest's node_config writes the same).

    The package ships the file with every line commented out.
    """
    text = NODE_CONFIG.read_text() if NODE_CONFIG.exists() else ""
    if f"ZFS_PARENT={PARENT}" not in text.splitlines():
        NODE_CONFIG.parent.mkdir(parents=True, exist_ok=True)
        NODE_CONFIG.write_text(f"ZFS_PARENT={PARENT}\nLVM_VG=gnt\nLVM_PARENT=tank/gnt\n")
    run(["zfs", "create", "-p", PARENT])
    run(["zfs", "create", "-p", "tank/gnt"])
    return NODE_CONFIG


def new_volume_name():
    """A VOL_NAME like Ganeti's: <uuid>.ext.disk0."""
    return f"{uuid.uuid4()}.ext.disk0"


def zfs_state():
    return zfs_list_all(props=STATE_PROPS)


def ganeti_environment(vol_name, config=None, **variables):
    environ = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LC_ALL": "C",
        "EXTP_PROVIDER": "zfs",
        "EXTP_ACCESS": "kernelspace",
    }
    if vol_name is not None:
        environ["VOL_NAME"] = vol_name
    if config is not None:
        environ["GANETI_ZFS_CONFIG"] = str(config)
    environ.update({key: str(value) for key, value in variables.items()})
    return environ


def provider(action, vol_name, config=None, **variables):
    """Run one installed action script; the CompletedProcess (text).

    Until the package installs the scripts, the same call through python3
    (test_entrypoints_are_installed fails meanwhile, so this is not hidden).
    """
    script = PROVIDER_DIR / action
    if script.exists():
        argv = [str(script)]
    else:
        argv = ["python3", "-c", f"import sys; from ganeti_zfs.provider import main; sys.exit(main({action!r}))"]
    return subprocess.run(
        argv,
        cwd=PROVIDER_DIR if PROVIDER_DIR.is_dir() else "/",
        env=ganeti_environment(vol_name, config, **variables),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def ok(action, vol_name, config=None, **variables):
    """Run an action that must succeed; its CompletedProcess."""
    result = provider(action, vol_name, config, **variables)
    assert result.returncode == 0, f"{action} {vol_name} exited {result.returncode}: {result.stderr}"
    return result


def assert_refused(result, action, *fragments):
    """Non-zero exit, nothing on stdout, exactly one line on stderr."""
    assert result.returncode != 0, f"{action} succeeded: {result.stdout!r} {result.stderr!r}"
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {result.stderr!r}"
    assert lines[0].startswith(f"ganeti-zfs {action} "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def refused_without_change(action, vol_name, *fragments, config=None, **variables):
    """The action fails with one line and leaves every dataset as it was."""
    before = zfs_state()
    line = assert_refused(provider(action, vol_name, config, **variables), action, *fragments)
    assert zfs_state() == before
    return line


def device_of(dataset):
    return Path("/dev/zvol") / dataset


def write_config(path, text):
    path = Path(path)
    path.write_text(text)
    return path


def zfs_get(dataset, prop):
    return run(["zfs", "get", "-H", "-p", "-o", "value", prop, dataset]).stdout.strip()


def destroy_if_exists(dataset):
    if run(["zfs", "list", "-H", "-t", "all", dataset], check=False).returncode == 0:
        run(["zfs", "destroy", "-r", dataset])


def udev_settle():
    run(["udevadm", "settle", "--timeout=30"], check=False)


def read_device(path, length, offset=0):
    with open(path, "rb") as device:
        device.seek(offset)
        return device.read(length)


def write_device(path, data, offset=0):
    with open(path, "r+b") as device:
        device.seek(offset)
        device.write(data)
        device.flush()
        os.fsync(device.fileno())
