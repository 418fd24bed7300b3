"""Ganeti ExtStorage provider and LVM emulation on local ZFS zvols."""

# The one place the version is written; debian/changelog must agree
# (tests/unit/test_version.py checks it).
__version__ = "0.3.0"
