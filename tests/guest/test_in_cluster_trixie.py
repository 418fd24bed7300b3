"""Anchor of the host bridge for trixie: conftest.py collects this module as the
trixie cluster run (a ClusterSuite with release "trixie"), like test_in_cluster.py
for bookworm. Nothing here runs on the host itself."""
