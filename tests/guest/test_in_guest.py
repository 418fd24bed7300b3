"""Anchor of the host bridge: conftest.py collects this module as the guest run
(a GuestSuite), whose items are the tests of tests/guest/suite/ as run in the
test guest. Nothing here runs on the host itself."""
