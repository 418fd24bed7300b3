"""Fixtures of the two-node suite. It runs on the first node of a cluster run
(tests/guest/vm.py run_cluster), which is the cluster's master; the second node
is a peer that guest-run.sh set up the same way (pools, network, the .deb) and
that this suite drives over ssh (the image gives both nodes root's key pair).

Fixtures:
    cluster    the two-node cluster, initialised once per run: disk templates ext,
               plain (the emulated VG "gnt") and drbd; both nodes carry the
               suite's node config and the no-op OS. Tests remove what they add.
Helpers (import from conftest): on(), NODE1, NODE2, the node names.
"""

import os
import time

import pytest

if not os.path.exists("/share/cluster"):
    pytest.exit("the two-node suite runs only on the first node of a cluster run: "
                "use `python3 tests/guest/vm.py cluster` or `make test-guest` on the host", 4)

import guestlib  # noqa: E402 (after the check: importing works anywhere, running does not)
from clusterlib import NODE1, NODE2, NODES, TEMPLATES, VG, prepare_node, run, tell_peer, wait_for_node  # noqa: E402

@pytest.fixture(scope="session")
def cluster():
    """Initialise the two-node cluster (once per run, ~3 min under TCG)."""
    started = time.monotonic()
    try:
        wait_for_node(NODE2)
        for node in NODES:
            prepare_node(node)
        # As Ganeti's own cluster CI does (ganeti/ganeti-cluster-testing): the nodes
        # already share root's key pair and their host keys (one image), so no ssh
        # set-up. DRBD's ping timeout (tenths of a second) is raised: under TCG a
        # node can be too busy to answer within the default 0.5 s.
        run(["gnt-cluster", "init", "--no-ssh-init", "--no-etc-hosts", "--enabled-hypervisors=fake",
             "--master-netdev=gnt0", "--nic-parameters=mode=bridged,link=gnt-br0",
             f"--vg-name={VG}", "--drbd-usermode-helper=/bin/true",
             "-D", "drbd:net-custom=--ping-timeout=50",
             "--specs-disk-size=min=64", f"--enabled-disk-templates={TEMPLATES}",
             f"--ipolicy-disk-templates={TEMPLATES}", guestlib.CLUSTER_NAME], timeout=900)
        add = ["gnt-node", "add", "--no-ssh-key-check", NODE2]
        # gnt-node add waits only 10 s for the new node's noded (lib/bootstrap.py,
        # SetupNodeDaemon): a slow TCG guest may need a second try, as a re-add.
        if run(add, check=False, timeout=900).returncode != 0:
            run(["gnt-node", "add", "--readd", "--no-ssh-key-check", "-f", NODE2], timeout=900)
        print(f"cluster of {len(NODES)} nodes ready in {time.monotonic() - started:.0f} s")
        yield guestlib.CLUSTER_NAME
    finally:
        tell_peer(NODE2, "poweroff")
