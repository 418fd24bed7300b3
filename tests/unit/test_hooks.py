"""hooks.py: the failover/migrate pre-hook's reading of Ganeti's environment
and its decisions. The zvol checks against real ZFS, and the hook run by
Ganeti's own hook runner: tests/guest/suite/test_node_local.py."""

import pytest

from ganeti_zfs import hooks, properties
from ganeti_zfs import zfs as zfs_module
from ganeti_zfs.errors import Error, UsageError

NODE1, NODE2 = "node1.example.com", "node2.example.com"
VOLUME = "0f1e2d3c-aaaa-bbbb-cccc-0123456789ab.ext.disk0"
OTHER_VOLUME = "0f1e2d3c-aaaa-bbbb-cccc-0123456789ab.ext.disk1"


def hook_env(disks, operation="failover", target=NODE1, **extra):
    """What lib/hooksmaster.py gives a pre-hook (the parts the hook reads, and some it does not)."""
    environ = {
        "PATH": "/sbin:/bin:/usr/sbin:/usr/bin",
        "GANETI_HOOKS_VERSION": "2",
        "GANETI_HOOKS_PHASE": "pre",
        "GANETI_HOOKS_PATH": f"instance-{operation}",
        "GANETI_OP_CODE": f"OP_INSTANCE_{operation.upper()}",
        "GANETI_INSTANCE_NAME": "inst1.example.com",
        "GANETI_OLD_PRIMARY": NODE2,
        "GANETI_NEW_PRIMARY": target,
        "GANETI_INSTANCE_DISK_COUNT": str(len(disks)),
    }
    for index, (dev_type, provider, disk_id) in enumerate(disks):
        environ[f"GANETI_INSTANCE_DISK{index}_DEV_TYPE"] = dev_type
        environ[f"GANETI_INSTANCE_DISK{index}_ID"] = disk_id
        if provider:
            environ[f"GANETI_INSTANCE_DISK{index}_PROVIDER"] = provider
    environ.update(extra)
    return environ


def test_the_hook_is_linked_where_ganeti_runs_pre_hooks():
    # lib/backend.py RunHooks: <hooks dir>/<hpath>-pre.d; lib/constants.py EXT_PLUGIN_MASK.
    assert hooks.hook_links() == [
        "etc/ganeti/hooks/instance-failover-pre.d/zfs-node-local",
        "etc/ganeti/hooks/instance-migrate-pre.d/zfs-node-local",
    ]
    import re
    assert re.match(r"^[a-zA-Z0-9_-]+$", hooks.HOOK_NAME)


def test_parse_keeps_only_zfs_ext_disks():
    move = hooks.parse(hook_env([("plain", None, "x.disk0"), ("ext", "zfs", VOLUME), ("ext", "other", "y"),
                                 ("drbd", None, ""), ("ext", "zfs", OTHER_VOLUME)], operation="migrate"))
    assert move == hooks.Move("migrate", "inst1.example.com", NODE1, ((1, VOLUME), (4, OTHER_VOLUME)))


@pytest.mark.parametrize("count", [None, "", "two", "-1"])
def test_parse_refuses_an_environment_that_is_not_ganetis(count):
    environ = hook_env([])
    if count is None:
        del environ["GANETI_INSTANCE_DISK_COUNT"]
    else:
        environ["GANETI_INSTANCE_DISK_COUNT"] = count
    with pytest.raises(UsageError, match="GANETI_INSTANCE_DISK_COUNT is .*not a number"):
        hooks.parse(environ)


@pytest.mark.parametrize("disk_id, fragment", [("", "is empty"), ("../x", "'..'"), ("-o", "may contain only")])
def test_parse_refuses_a_bad_volume_name(disk_id, fragment):
    with pytest.raises(UsageError, match=fragment):
        hooks.parse(hook_env([("ext", "zfs", disk_id)]))


@pytest.mark.parametrize("myself, target, expected", [
    (NODE1, NODE1, True),
    (NODE1, NODE2, False),   # the master (or primary) when another node is the target
    (NODE2, NODE2, True),
])
def test_on_target(myself, target, expected):
    move = hooks.Move("failover", "inst1", target, ((0, VOLUME),))
    assert hooks.on_target(move, myself, {NODE1, NODE2}) is expected


def test_on_target_refuses_when_this_node_has_another_name():
    move = hooks.Move("failover", "inst1", NODE2, ((0, VOLUME),))
    with pytest.raises(Error, match="cannot tell whether this node is the target, its name 'localhost'"):
        hooks.on_target(move, "localhost", {NODE1, NODE2})


def test_on_target_refuses_without_a_target():
    with pytest.raises(UsageError, match="GANETI_NEW_PRIMARY is not set"):
        hooks.on_target(hooks.Move("failover", "inst1", "", ((0, VOLUME),)), NODE1, {NODE1})


def test_refusal_names_instance_disks_volumes_and_node():
    move = hooks.Move("migrate", "inst1.example.com", NODE1, ((0, VOLUME), (2, OTHER_VOLUME)))
    assert hooks.refusal(move, {}) is None
    line = hooks.refusal(move, {2: "tank/ganeti/x does not exist here"})
    assert line.startswith("refusing migrate of instance inst1.example.com to node1.example.com: zfs volumes are "
                           "node-local and node1.example.com has no current copy of disk 2 (zfs volume "
                           f"{OTHER_VOLUME}): tank/ganeti/x does not exist here")
    assert f"disk 0 (zfs volume {VOLUME})" not in line and "\n" not in line


class FakeZfs:
    """zfs get answers: {dataset: {property: (value, source)}}; records the calls."""

    def __init__(self, datasets):
        self.datasets = datasets
        self.calls = []

    def get_with_source(self, name, props, types=None, recursive=False, depth=None):
        self.calls.append((name, tuple(props)))
        if name not in self.datasets:
            raise zfs_module.DoesNotExist(["zfs", "get", name], f"cannot open '{name}': dataset does not exist")
        values = self.datasets[name]
        for prop in props:
            if prop.startswith("written@") and prop not in values:
                raise zfs_module.ZfsError(["zfs", "get", prop, name], f"cannot get property '{prop}'")
        return {name: {prop: values.get(prop, ("-", "-")) for prop in props}}


DATASET = f"tank/ganeti/{VOLUME}"
MARK = properties.CURRENT_COPY


@pytest.mark.parametrize("values, expected", [
    (None, f"{DATASET} does not exist here"),
    ({"type": ("filesystem", "-")}, f"{DATASET} is a filesystem, not a volume"),
    ({"type": ("volume", "-")}, f"{DATASET} is not marked current ({MARK} is not set on it)"),
    ({"type": ("volume", "-"), MARK: ("move1", "inherited from tank/ganeti")},
     f"{DATASET} is not marked current ({MARK} is not set on it)"),
    ({"type": ("volume", "-"), MARK: ("move1", "received")}, f"{DATASET} is not marked current"),
    ({"type": ("volume", "-"), MARK: ("move1", "local")}, f"{DATASET} is marked current as of its snapshot @move1, "
                                                          "which cannot be read"),
    ({"type": ("volume", "-"), MARK: ("move1", "local"), "written@move1": ("-", "-")},
     f"{DATASET} is marked current as of its snapshot @move1, which cannot be read (written@move1=-)"),
    ({"type": ("volume", "-"), MARK: ("move1", "local"), "written@move1": ("8192", "-")},
     f"{DATASET} was written to after it was marked current as of its snapshot @move1"),
    ({"type": ("volume", "-"), MARK: ("move1", "local"), "written@move1": ("0", "-")}, None),
])
def test_copy_problem(values, expected):
    zfs = FakeZfs({} if values is None else {DATASET: values})
    problem = hooks.copy_problem(zfs, DATASET)
    if expected is None:
        assert problem is None
    else:
        assert problem.startswith(expected), problem


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A node of a two-node cluster: Ganeti's data dir and our config."""
    (tmp_path / "ssconf_node_list").write_text(f"{NODE1}\n{NODE2}\n")
    conffile = tmp_path / "extstorage-zfs.conf"
    conffile.write_text("ZFS_PARENT=tank/ganeti\n")
    return {"GANETI_DATA_DIR": str(tmp_path), "GANETI_ZFS_CONFIG": str(conffile)}


CURRENT = {"type": ("volume", "-"), MARK: ("move1", "local"), "written@move1": ("0", "-")}
UNMARKED = {"type": ("volume", "-")}


@pytest.mark.parametrize("disks, myself, target, datasets, refused", [
    # Nothing of ours: pass without a look (no zfs call, asserted below).
    ([("plain", None, "x.disk0")], NODE1, NODE1, {}, None),
    ([], NODE1, NODE1, {}, None),
    ([("ext", "other", "y")], NODE1, NODE1, {}, None),
    # On the target: its own pool decides.
    ([("ext", "zfs", VOLUME)], NODE1, NODE1, {}, "disk 0 (zfs volume " + VOLUME + "): " + DATASET + " does not exist"),
    ([("ext", "zfs", VOLUME)], NODE1, NODE1, {DATASET: UNMARKED}, "is not marked current"),
    ([("ext", "zfs", VOLUME)], NODE1, NODE1, {DATASET: CURRENT}, None),
    ([("ext", "zfs", VOLUME), ("ext", "zfs", OTHER_VOLUME)], NODE1, NODE1, {DATASET: CURRENT},
     "disk 1 (zfs volume " + OTHER_VOLUME + ")"),
    # Not the target (the master, or a migrate's primary): the target judges.
    ([("ext", "zfs", VOLUME)], NODE1, NODE2, {}, None),
])
@pytest.mark.parametrize("operation", ["failover", "migrate"])
def test_run_decides(node, disks, myself, target, datasets, refused, operation):
    zfs = FakeZfs(datasets)
    environ = hook_env(disks, operation=operation, target=target, **node)
    if refused is None:
        assert hooks.run(environ, myself=myself, zfs=zfs) == 0
    else:
        with pytest.raises(Error) as caught:
            hooks.run(environ, myself=myself, zfs=zfs)
        message = str(caught.value)
        assert message.startswith(f"refusing {operation} of instance inst1.example.com to {target}: "), message
        assert refused in message
    if not any(dev_type == "ext" and provider == "zfs" for dev_type, provider, _id in disks) or myself != target:
        assert zfs.calls == []


def test_run_needs_no_cluster_files_for_instances_without_zfs_disks(tmp_path):
    environ = hook_env([("plain", None, "x.disk0")], GANETI_DATA_DIR=str(tmp_path / "none"))
    assert hooks.run(environ, myself=NODE1, zfs=FakeZfs({})) == 0


def test_run_refuses_when_the_config_cannot_be_read(node, tmp_path):
    node["GANETI_ZFS_CONFIG"] = str(tmp_path / "missing.conf")
    with pytest.raises(Error, match=r"^refusing failover of instance inst1.example.com to node1.example.com: cannot "
                                    r"check its zfs disks here: .*missing.conf"):
        hooks.run(hook_env([("ext", "zfs", VOLUME)], **node), myself=NODE1, zfs=FakeZfs({DATASET: CURRENT}))


def test_main_prints_one_line_and_exits_1(node, capsys, monkeypatch):
    monkeypatch.setattr(hooks.cluster, "node_name", lambda: "localhost")
    assert hooks.main(hook_env([("ext", "zfs", VOLUME)], **node)) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert err.startswith("ganeti-zfs zfs-node-local hook: refusing failover of instance inst1.example.com")


def test_main_is_silent_for_other_instances(capsys):
    assert hooks.main(hook_env([("plain", None, "x.disk0")])) == 0
    assert capsys.readouterr() == ("", "")


def test_run_refuses_when_it_cannot_read_the_node_list(tmp_path):
    environ = hook_env([("ext", "zfs", VOLUME)], GANETI_DATA_DIR=str(tmp_path))
    with pytest.raises(Error, match=r"^refusing failover of instance inst1.example.com to node1.example.com: cannot "
                                    r"read .*ssconf_node_list"):
        hooks.run(environ, myself=NODE1, zfs=FakeZfs({}))
