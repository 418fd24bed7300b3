"""cluster.py: this node's name, the node list and config.data, as Ganeti 3.0.2 writes them.

The fixture tests/unit/data/config.data is a real Ganeti 3.0.2 config.data
from the test guest (tests/guest/suite/test_node_local.py saves it), cut
down to its nodes, instances and disks: one node, node1.example.com, and
the instance inst-local with one zfs ext disk.
"""

import copy
import json
from pathlib import Path

import pytest

from ganeti_zfs import cluster
from ganeti_zfs.errors import Error

FIXTURE = Path(__file__).parent / "data" / "config.data"
NODE1 = "node1.example.com"


@pytest.fixture
def config():
    return json.loads(FIXTURE.read_text())


def the_instance(data, name="inst-local"):
    return next(instance for instance in data["instances"].values() if instance["name"] == name)


def add_instance(data, name, primary_uuid, disks):
    """A copy of inst-local named `name` on `primary_uuid` with `disks`
    (dicts of dev_type and logical_id), stored as 3.0 does: top-level disks by UUID."""
    instance = copy.deepcopy(the_instance(data))
    instance.update(name=name, uuid=f"uuid-{name}", primary_node=primary_uuid, disks=[])
    template = data["disks"][the_instance(data)["disks"][0]]
    for index, fields in enumerate(disks):
        disk = dict(copy.deepcopy(template), uuid=f"disk-{name}-{index}", iv_name=f"disk/{index}", **fields)
        data["disks"][disk["uuid"]] = disk
        instance["disks"].append(disk["uuid"])
    data["instances"][instance["uuid"]] = instance


def add_node(data, name):
    node = dict(copy.deepcopy(next(iter(data["nodes"].values()))), name=name, uuid=f"uuid-{name}")
    data["nodes"][node["uuid"]] = node
    return node["uuid"]


def node1_uuid(data):
    return next(uuid for uuid, node in data["nodes"].items() if node["name"] == NODE1)


def test_the_fixture_is_ganeti_3_0_format(config):
    # Disks are top-level objects; an instance lists their UUIDs (lib/objects.py ConfigData, Instance).
    assert config["version"] == 3000000
    instance = the_instance(config)
    assert all(isinstance(reference, str) and reference in config["disks"] for reference in instance["disks"])
    disk = config["disks"][instance["disks"][0]]
    assert disk["dev_type"] == "ext" and disk["logical_id"][0] == "zfs"


def test_ext_disks_of_the_real_config(config):
    volume = config["disks"][the_instance(config)["disks"][0]]["logical_id"][1]
    assert volume.endswith(".ext.disk0")
    assert cluster.ext_disks(config, "zfs") == [cluster.ExtDisk(volume, "inst-local", 0, NODE1)]
    assert cluster.ext_disks(config, "otherprovider") == []


def test_ext_disks_skip_other_templates_and_providers_and_name_primaries(config):
    node2 = add_node(config, "node2.example.com")
    add_instance(config, "mixed", node2, [
        {"dev_type": "plain", "logical_id": ["gnt", "x.disk0"]},
        {"dev_type": "ext", "logical_id": ["rbdish", "y.ext.disk1"]},
        {"dev_type": "ext", "logical_id": ["zfs", "z.ext.disk2"]},
    ])
    found = {disk.volume: disk for disk in cluster.ext_disks(config, "zfs")}
    assert found["z.ext.disk2"] == cluster.ExtDisk("z.ext.disk2", "mixed", 2, "node2.example.com")
    assert "x.disk0" not in found and "y.ext.disk1" not in found


def test_ext_disks_read_inline_disks_of_older_configs(config):
    instance = the_instance(config)
    instance["disks"] = [config["disks"][reference] for reference in instance["disks"]]
    config["disks"] = {}
    assert [disk.instance for disk in cluster.ext_disks(config, "zfs")] == ["inst-local"]


def test_strays(config):
    node2 = add_node(config, "node2.example.com")
    add_instance(config, "elsewhere", node2, [{"dev_type": "ext", "logical_id": ["zfs", "moved.ext.disk0"]}])
    disks = cluster.ext_disks(config, "zfs")
    mine = cluster.ext_disks(config, "zfs")[0].volume
    names = [mine, f"{mine}.snap", "moved.ext.disk0", "unknown.ext.disk0", "unknown.ext.disk0.snap"]
    found = dict(cluster.strays(names, disks, NODE1, ".snap"))
    assert list(found) == ["moved.ext.disk0", "unknown.ext.disk0", "unknown.ext.disk0.snap"]
    assert found["moved.ext.disk0"] == (
        "it is disk 0 of instance elsewhere, whose primary node is node2.example.com, not this node "
        "(node1.example.com): a copy left behind here")
    assert found["unknown.ext.disk0"] == "no instance's disk in the cluster configuration"
    # On node2, node1's disk is the stray.
    assert [name for name, _why in cluster.strays(names[:3], disks, "node2.example.com", ".snap")] == [mine, f"{mine}.snap"]


def test_read_config(tmp_path, config):
    (tmp_path / "config.data").write_text(json.dumps(config))
    assert cluster.read_config(str(tmp_path)) == config


@pytest.mark.parametrize("content, fragment", [
    (None, "does not exist (Ganeti keeps it on master candidates only)"),
    ("{not json", "is not valid JSON"),
    ("[]", "is not a Ganeti configuration"),
    ('{"instances": {}}', "is not a Ganeti configuration"),
])
def test_read_config_fails_with_one_line(tmp_path, content, fragment):
    if content is not None:
        (tmp_path / "config.data").write_text(content)
    with pytest.raises(Error) as caught:
        cluster.read_config(str(tmp_path))
    assert fragment in str(caught.value) and str(tmp_path / "config.data") in str(caught.value)
    assert "\n" not in str(caught.value)


def test_node_name_is_normalised_as_ganeti_does():
    # lib/netutils.py GetNormalizedName: lower case, no trailing dot.
    assert cluster.node_name(lambda: "Node1.Example.COM.") == NODE1


def test_node_names(tmp_path):
    (tmp_path / "ssconf_node_list").write_text("node1.example.com\nnode2.example.com\n\n")
    assert cluster.node_names(str(tmp_path)) == {NODE1, "node2.example.com"}
    with pytest.raises(Error, match="cannot read .*ssconf_node_list"):
        cluster.node_names(str(tmp_path / "missing"))
