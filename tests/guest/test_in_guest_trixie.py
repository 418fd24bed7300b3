"""Anchor of the host bridge for trixie: conftest.py collects this module as the
trixie guest run (a GuestSuite with release "trixie"), like test_in_guest.py for
bookworm. Nothing here runs on the host itself."""
