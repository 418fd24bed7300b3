# ganeti-extstorage-zfs: build and test entry points.

PYTHON ?= /usr/bin/python3

# --- the host's own packages (scripts/host-packages) ---

# Every target that builds or tests starts here: nothing happens when the
# list is installed; as root the missing packages are installed, otherwise
# the apt-get line that is needed is printed and make stops.
.PHONY: host-packages
host-packages:
	@scripts/ensure-host-packages

.PHONY: guest test-host test-host-trixie test-guest test-cluster test-cluster-trixie test-move test-guest-all test

# --- tests (host unit tests, and the real-ZFS test guest: tests/guest/README.md) ---

# Build the test guest image unless the cache already holds it for this recipe.
guest: host-packages
	$(PYTHON) tests/guest/vm.py build-all

test-host: host-packages
	$(PYTHON) -m pytest tests/unit

# The same unit tests under Debian trixie's python3, pytest and hypothesis, in a
# chroot cached in /var/cache/ganeti-extstorage-zfs (scripts/unit-tests-in-chroot; root).
test-host-trixie: host-packages
	scripts/unit-tests-in-chroot trixie

# The guests make test runs (tests/guest/README.md): the single-node suite on
# bookworm and on trixie (vm.py ONLY_ON: three modules on bookworm only), the
# bookworm → trixie upgrade scenarios, and the two-node suite on bookworm without
# the ZFS-native move. Everything else has a target of its own, below: on this
# two-core machine all of it would take about twice make test's 75 minutes.
# GUEST_PYTEST_ARGS="-k zvol" narrows the guest run; GUEST_DEBS overrides the .deb(s).
GUEST_RUNS = tests/guest/test_in_guest.py tests/guest/test_in_guest_trixie.py tests/guest/test_in_cluster.py
test-guest: host-packages guest deb deb-previous deb-old-layout
	GUEST_CLUSTER_PYTEST_ARGS="$${GUEST_CLUSTER_PYTEST_ARGS---ignore=test_zfs_move.py}" \
		$(PYTHON) -m pytest -v $(GUEST_RUNS)

# The two-node suite alone (tests/guest/cluster), on bookworm; on trixie.
test-cluster: host-packages guest deb
	$(PYTHON) -m pytest -v tests/guest/test_in_cluster.py
test-cluster-trixie: host-packages guest deb
	$(PYTHON) -m pytest -v tests/guest/test_in_cluster_trixie.py

# ganeti-zfs move (tests/guest/cluster/test_zfs_move.py) on the two-node cluster.
test-move: host-packages guest deb
	GUEST_CLUSTER_PYTEST_ARGS=test_zfs_move.py $(PYTHON) -m pytest -v tests/guest/test_in_cluster.py

# Every guest run there is: both releases, every module, both cluster suites.
test-guest-all: host-packages guest deb deb-previous deb-old-layout
	GUEST_EVERY_MODULE=1 $(PYTHON) -m pytest -v tests/guest

# The guest images and the trixie chroot are built while the host tests run (half
# of their time is the archive's); then lint and the guests, one after the other.
test: host-packages
	$(MAKE) -j3 --output-sync=target guest test-host-trixie test-host
	$(MAKE) lint test-guest

# --- Debian package (debian/; the built files go to build/) ---

PACKAGE = ganeti-extstorage-zfs
VERSION = $(shell dpkg-parsechangelog -S Version)
# Like a buildd: Debian's own tools and python3, whatever else is on PATH.
BUILD_ENV = env PATH=/usr/sbin:/usr/bin:/sbin:/bin
# test-host runs the unit tests; `make deb DEB_BUILD_OPTIONS=` runs them in the build too.
DEB_BUILD_OPTIONS ?= nocheck
DPKG_BUILDPACKAGE = $(BUILD_ENV) DEB_BUILD_OPTIONS="$(DEB_BUILD_OPTIONS)" \
	dpkg-buildpackage -us -uc -b $(if $(filter nocheck,$(DEB_BUILD_OPTIONS)),-Pnocheck)

.PHONY: deb deb-previous deb-old-layout man lint

# dpkg-buildpackage writes to the parent directory; the results move to build/.
deb: host-packages
	rm -f build/$(PACKAGE)_$(VERSION)_*
	$(DPKG_BUILDPACKAGE)
	mkdir -p build
	mv ../$(PACKAGE)_$(VERSION)_* build/
	@ls build/$(PACKAGE)_$(VERSION)_all.deb

# The same tree as an older version, <version>~prev1, in build/previous/: the
# starting point of the upgrade test. Built from a copy of the files git tracks
# or would track (not ignored), so untracked build output cannot leak in.
PREVIOUS_VERSION = $(VERSION)~prev1
deb-previous: host-packages
	rm -rf build/previous build/previous-src
	mkdir -p build/previous build/previous-src
	git ls-files -z --cached --others --exclude-standard | \
		tar --null --ignore-failed-read -T - -cf - | tar -C build/previous-src -xf -
	{ printf '%s (%s) unstable; urgency=medium\n\n  * Test build: this tree as an older version, for upgrade tests.\n\n -- %s  %s\n\n' \
		$(PACKAGE) '$(PREVIOUS_VERSION)' "$$(dpkg-parsechangelog -S Maintainer)" "$$(date -R)"; \
		cat debian/changelog; } >build/previous-src/debian/changelog
	cd build/previous-src && $(DPKG_BUILDPACKAGE)
	mv build/$(PACKAGE)_$(PREVIOUS_VERSION)_* build/previous/
	rm -rf build/previous-src
	@ls build/previous/$(PACKAGE)_$(PREVIOUS_VERSION)_all.deb

# The last release with 0.2's layout (wrappers in /sbin, /sbin/<command> ->
# /sbin/<command>.distrib), built from its commit into build/old-layout/: the
# starting point of the upgrade tests that retarget its diversions
# (tests/guest/suite/test_packaging.py, test_release_upgrade.py).
OLD_LAYOUT_COMMIT = 565e3a605615da6a041d58dfcf41b16e3f196fbb
deb-old-layout: host-packages
	@git cat-file -e $(OLD_LAYOUT_COMMIT)^{commit} 2>/dev/null || \
		{ echo "deb-old-layout: commit $(OLD_LAYOUT_COMMIT) (version 0.2.0) is not in this clone: clone with its history" >&2; exit 1; }
	rm -rf build/old-layout build/old-layout-src
	mkdir -p build/old-layout build/old-layout-src
	git archive $(OLD_LAYOUT_COMMIT) | tar -C build/old-layout-src -xf -
	cd build/old-layout-src && $(DPKG_BUILDPACKAGE)
	mv build/$(PACKAGE)_0.2.0_* build/old-layout/
	rm -rf build/old-layout-src
	@ls build/old-layout/$(PACKAGE)_0.2.0_all.deb

# The man pages, for reading: man -l build/man/ganeti-zfs.8
man: host-packages
	scripts/gen-man build/man

# lintian as Debian's archive would run it (plus the pedantic and info tags,
# shown but not failing), and the man pages rendered with groff's warnings on.
lint: deb man
	lintian --info --display-info --pedantic --fail-on error,warning \
		build/$(PACKAGE)_$(VERSION)_*.changes
	@for page in build/man/*; do \
		out=$$(MANWIDTH=80 man --warnings -l $$page 2>&1 >/dev/null); \
		if [ -n "$$out" ]; then echo "$$page: $$out"; exit 1; fi; \
	done; echo "man pages render without warnings"

# --- the demo and the benchmarks, each in a throw-away guest ---

.PHONY: demo bench

# The main job, narrated: a cluster, an instance on a zvol, listings, a
# scheduled snapshot, a live export, removal (tests/guest/demo.sh).
demo: host-packages deb
	$(PYTHON) tests/guest/vm.py script --deb build/$(PACKAGE)_$(VERSION)_all.deb tests/guest/demo.sh

# Process counts and overhead against bare zfs for 10, 100 and 1000 volumes;
# results in docs/bench/ and docs/benchmarks.md (bench/guest_bench.py, bench/report.py).
BENCH_SIZES ?= 10 100 1000
BENCH_REPEAT ?= 3
bench: host-packages deb
	$(PYTHON) tests/guest/vm.py script --timeout 5400 --deb build/$(PACKAGE)_$(VERSION)_all.deb \
		--env "BENCH_SIZES=$(BENCH_SIZES)" --env "BENCH_REPEAT=$(BENCH_REPEAT)" bench/guest_bench.py
	mkdir -p docs/bench
	cp tests/guest/.last-run/out/bench.json docs/bench/results.json
	$(PYTHON) bench/report.py docs/bench/results.json docs/bench/findings.md >docs/benchmarks.md
