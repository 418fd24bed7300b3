"""Host unit tests: shared settings.

Hypothesis' per-example deadline (200 ms) is a timing assertion: on a
machine busy with a TCG guest it fails tests whose logic is right. These
tests check results, never speed (docs/benchmarks.md measures speed).
"""

from hypothesis import settings

settings.register_profile("no-deadline", deadline=None)
settings.load_profile("no-deadline")
