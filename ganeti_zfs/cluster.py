"""What a node can know of its Ganeti cluster, read from Ganeti's own files.

- This node's name: what Ganeti calls "myself", netutils.Hostname.GetSysName(),
  which is socket.getfqdn() lower-cased without a trailing dot (Ganeti
  3.0.2 lib/netutils.py GetFqdn and GetNormalizedName; lib/ssconf.py
  GetMasterAndMyself). Node names in the config are these names.
- The cluster's nodes: DATA_DIR/ssconf_node_list, one name a line, on every
  node (lib/ssconf.py SimpleStore, src/Ganeti/Constants.hs ssNodeList).
- Instances and their disks: DATA_DIR/config.data (JSON, mode 0600), on
  master candidates only. Ganeti 3.0 keeps disks as top-level objects by
  UUID and an instance lists its disk UUIDs (lib/objects.py ConfigData,
  Instance, Disk); an ext disk's logical_id is [provider, volume name], its
  instance's primary_node a node UUID.

Imports nothing heavy: the hook (hooks.py) runs on every failover and migrate.
"""

import collections
import json
import os
import socket

from .errors import Error

# lib/pathutils.py: DATA_DIR = LOCALSTATEDIR + "/lib/ganeti".
DATA_DIR = "/var/lib/ganeti"
NODE_LIST = "ssconf_node_list"
CONFIG_DATA = "config.data"

# One ext disk of an instance: its volume name (logical_id[1]), the
# instance's name, the disk's index in it and its primary node's name.
ExtDisk = collections.namedtuple("ExtDisk", "volume instance index primary")


def node_name(getfqdn=socket.getfqdn):
    """This node's name as Ganeti knows it (netutils.Hostname.GetSysName)."""
    return getfqdn().lower().rstrip(".")


def node_names(data_dir=None):
    """The names of the cluster's nodes, from ssconf_node_list."""
    path = os.path.join(data_dir or DATA_DIR, NODE_LIST)
    try:
        with open(path, encoding="utf-8") as file:
            return {line.strip() for line in file if line.strip()}
    except OSError as error:
        raise Error(f"cannot read {path} ({error.strerror}): is this node in a Ganeti cluster?")


def read_config(data_dir=None):
    """config.data as a dict; a one-line Error if it cannot be read."""
    path = os.path.join(data_dir or DATA_DIR, CONFIG_DATA)
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except FileNotFoundError:
        raise Error(f"{path} does not exist (Ganeti keeps it on master candidates only)")
    except OSError as error:
        raise Error(f"cannot read {path} ({error.strerror})")
    except ValueError as error:
        raise Error(f"{path} is not valid JSON ({error})")
    if not isinstance(data, dict) or not isinstance(data.get("instances"), dict) or not isinstance(data.get("nodes"), dict):
        raise Error(f"{path} is not a Ganeti configuration (no instances and nodes)")
    return data


def _primary(data, instance):
    node = instance.get("primary_node")
    return data["nodes"].get(node, {}).get("name", node)


def _disks(data, instance):
    """[(index, disk dict or None)] of an instance in config.data `data`."""
    disk_objects = data.get("disks") or {}
    # 3.0 lists disk UUIDs; configs before 2.13 held the disks inline.
    return [(index, disk_objects.get(reference) if isinstance(reference, str) else reference)
            for index, reference in enumerate(instance.get("disks") or ())]


def _ext_volume(disk, provider):
    """The volume name of `disk` if it is an ext disk of `provider`, else None."""
    if not isinstance(disk, dict) or disk.get("dev_type") != "ext":
        return None
    logical_id = disk.get("logical_id") or ()
    return logical_id[1] if len(logical_id) == 2 and logical_id[0] == provider else None


def ext_disks(data, provider):
    """Every ext disk of `provider` in config.data `data`, as ExtDisk."""
    found = []
    for instance in data["instances"].values():
        for index, disk in _disks(data, instance):
            volume = _ext_volume(disk, provider)
            if volume is not None:
                found.append(ExtDisk(volume, instance.get("name", "?"), index, _primary(data, instance)))
    return found


# One instance as a move needs it: its primary node's name, whether Ganeti
# keeps it running (admin_state "up", lib/objects.py Instance), and
# volumes: the volume name of each disk in order, None for a disk that is
# not an ext disk of the provider.
Instance = collections.namedtuple("Instance", "name primary admin_up volumes")


def instance(data, name, provider):
    """The Instance called `name` in config.data `data`; an Error if there is none."""
    for found in data["instances"].values():
        if found.get("name") == name:
            return Instance(name, _primary(data, found), found.get("admin_state") == "up",
                            tuple(_ext_volume(disk, provider) for _, disk in _disks(data, found)))
    raise Error(f"no instance {name} in the cluster configuration (give its full name, as gnt-instance list shows it)")


def ssconf(key, data_dir=None):
    """One ssconf value (DATA_DIR/ssconf_<key>, on every node), e.g. master_node, cluster_name."""
    path = os.path.join(data_dir or DATA_DIR, f"ssconf_{key}")
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().strip()
    except OSError as error:
        raise Error(f"cannot read {path} ({error.strerror}): is this node in a Ganeti cluster?")


def strays(volume_names, disks, myself, snapshot_suffix):
    """[(volume name, why)] of the provider's volumes that no instance whose
    primary is `myself` owns, in the order of `volume_names`.

    A volume's export copy (<volume><snapshot_suffix>, made by the snapshot
    action during gnt-backup export) belongs to its volume.
    """
    by_volume = {}
    for disk in disks:
        by_volume.setdefault(disk.volume, []).append(disk)
    mine = {volume for volume, owners in by_volume.items() if any(disk.primary == myself for disk in owners)}
    found = []
    for name in volume_names:
        if name in mine:
            continue
        base = name[: -len(snapshot_suffix)] if name.endswith(snapshot_suffix) else None
        if base in mine:
            continue
        owners = by_volume.get(name)
        if owners:
            owner = owners[0]
            found.append((name, f"it is disk {owner.index} of instance {owner.instance}, whose primary node is "
                                f"{owner.primary}, not this node ({myself}): a copy left behind here"))
        else:
            found.append((name, "no instance's disk in the cluster configuration"))
    return found
