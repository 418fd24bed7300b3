"""The two-node cluster itself: both nodes serve the emulated VG and the zfs
provider, and gnt-cluster verify is clean."""

from clusterlib import NODES, VG, gnt, on


def test_verify_is_clean(cluster):
    proc = gnt("gnt-cluster", "verify")
    output = proc.stdout + proc.stderr
    assert "ERROR" not in output, output


def test_both_nodes_report_the_emulated_vg(cluster):
    out = gnt("gnt-node", "list", "--no-headers", "--units=m", "--separator=|", "-o", "name,dfree,dtotal").stdout
    rows = dict(line.split("|", 1) for line in out.splitlines())
    assert sorted(rows) == sorted(NODES), out
    for node in NODES:
        assert on(node, ["vgs", "--noheadings", "-o", "vg_name", VG]).stdout.strip() == VG
        total = int(float(rows[node].split("|")[1]))
        assert total >= 20480, (node, rows[node])  # node verify wants a VG of 20 GiB at least
