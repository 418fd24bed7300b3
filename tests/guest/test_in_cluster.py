"""Anchor of the host bridge for the two-node cluster: conftest.py collects this
module as the cluster run (a ClusterSuite), whose items are the tests of
tests/guest/cluster/ as run on the cluster's first node. Nothing here runs on the
host itself."""
