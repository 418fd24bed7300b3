"""Host-side pytest configuration for the whole tests/ tree."""

# tests/guest/suite/ and tests/guest/cluster/ run inside the test guest only; on the host,
# tests/guest/conftest.py boots the guest and reports its tests.
collect_ignore = ["guest/suite", "guest/cluster"]
