"""Host bridge: `python3 -m pytest tests/guest` boots the test guest once, runs the
guest suite (tests/guest/suite/) inside it, and reports every guest test as a host
test with the guest's own node id (tests/guest/suite/test_x.py::test_y): failures
show the guest's traceback and captured output, skips its reason.

The guest runs while pytest collects test_in_guest.py (so --collect-only does not
boot it). Besides the guest's tests there is one item, test_in_guest.py::guest,
for the run itself: it fails, showing the console's tail, when the guest crashed,
hung past its timeout, failed its set-up or wrote no results.

test_in_cluster.py does the same for the two-node cluster (vm.run_cluster): its
items are the tests of tests/guest/cluster/ as run on the cluster's first node,
plus test_in_cluster.py::guest for the run itself.

Environment:
    GUEST_DEBS         .deb files to install in the guest(s), space-separated
                       (default: the newest build/*.deb of each package)
    GUEST_PYTEST_ARGS  extra arguments for the guest's pytest, e.g. "-k zvol -x"
                       (given, one guest runs; otherwise the whole suite is split
                       across GUEST_SHARDS guests, default 2, run at once)
    GUEST_SHARDS       how many guests share the whole suite (1: one guest)
    GUEST_TIMEOUT      seconds for the whole guest run (default 3900)
    GUEST_CLUSTER_PYTEST_ARGS, GUEST_CLUSTER_TIMEOUT (default 2400): the same for
                       the cluster run
    GUEST_EVERY_MODULE set: every module on every release (vm.ONLY_ON ignored)
    GUEST_RELEASES     the Debian releases to run, space-separated (default: all of
                       vm.RELEASES, "bookworm trixie"); test_in_guest.py and
                       test_in_cluster.py run bookworm, the *_trixie.py anchors
                       trixie, whose tests' ids end in "@trixie"
"""

import importlib.util
import os
import shlex
import traceback
from pathlib import Path
from types import SimpleNamespace

import pytest

HERE = Path(__file__).resolve().parent


def _load_vm():
    # By path: a plain `import vm` could pick up another module of that name.
    spec = importlib.util.spec_from_file_location("ganeti_zfs_guest_vm", HERE / "vm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vm = _load_vm()


def pytest_pycollect_makemodule(module_path, parent):
    for release in vm.RELEASES:
        suffix = "" if release == vm.DEFAULT_RELEASE else f"_{release}"
        for kind in (GuestSuite, ClusterSuite):
            if module_path == HERE / f"{kind.anchor}{suffix}.py":
                suite = kind.from_parent(parent, path=module_path)
                suite.release = release
                return suite
    return None


def _releases():
    chosen = os.environ.get("GUEST_RELEASES", " ".join(vm.RELEASES)).split()
    unknown = sorted(set(chosen) - set(vm.RELEASES))
    if unknown:
        raise pytest.UsageError(f"GUEST_RELEASES: unknown release(s) {' '.join(unknown)}; known: {' '.join(vm.RELEASES)}")
    return chosen


def _debs():
    env = os.environ
    debs = shlex.split(env["GUEST_DEBS"]) if env.get("GUEST_DEBS") else vm.default_debs()
    if not debs:
        vm.log("WARNING: no .deb found (set GUEST_DEBS or run `make deb`): "
               "the package under test will not be installed")
    return debs


class GuestSuite(pytest.File):
    """Runs the guest at collection and yields one item per guest test."""

    suite = vm.SUITE
    anchor = "test_in_guest"
    release = vm.DEFAULT_RELEASE

    def collect(self):
        if self.config.option.collectonly:
            yield GuestRunItem.from_parent(self, name="guest", run=None, error="not run: --collect-only")
            return
        if self.release not in _releases():
            yield GuestRunItem.from_parent(self, name="guest", run=None,
                                           error=f"not run: GUEST_RELEASES does not name {self.release}")
            return
        try:
            run = self._run()
        except Exception:
            yield GuestRunItem.from_parent(self, name="guest", run=None, error=traceback.format_exc())
            return
        yield GuestRunItem.from_parent(self, name="guest", run=run, error=None)
        prefix = os.path.relpath(self.suite, self.config.rootpath)
        suffix = "" if self.release == vm.DEFAULT_RELEASE else f"@{self.release}"
        for result in (run.results or {}).get("tests", []):
            yield GuestTest.from_parent(self, name=result["nodeid"] + suffix, result=result,
                                        nodeid=f"{prefix}/{result['nodeid']}{suffix}")

    def _run(self):
        capman = self.config.pluginmanager.getplugin("capturemanager")
        with capman.global_and_fixture_disabled():  # show the guest's progress live
            print(flush=True)
            return self._boot(os.environ, debs=_debs(), release=self.release,
                              echo=lambda line: print("  | " + line, flush=True))

    def _boot(self, env, **common):
        pytest_args = shlex.split(env.get("GUEST_PYTEST_ARGS", ""))
        shards = int(env.get("GUEST_SHARDS", vm.SHARDS))
        timeout = float(env.get("GUEST_TIMEOUT", vm.DEFAULT_TIMEOUT))
        if pytest_args or shards == 1:  # a narrowed run: one guest, as the arguments say
            return vm.run_guest(pytest_args=pytest_args, timeout=timeout, **common)
        return vm.run_sharded(shards=shards, timeout=timeout, every_module=bool(env.get("GUEST_EVERY_MODULE")),
                              **common)


class ClusterSuite(GuestSuite):
    """The same for the two-node cluster run: tests/guest/cluster on its first node."""

    suite = vm.CLUSTER_SUITE
    anchor = "test_in_cluster"

    def _boot(self, env, **common):
        return vm.run_cluster(pytest_args=shlex.split(env.get("GUEST_CLUSTER_PYTEST_ARGS", "")),
                              timeout=float(env.get("GUEST_CLUSTER_TIMEOUT", vm.CLUSTER_TIMEOUT)), **common)


class GuestProblem(Exception):
    """A failure whose report is its text (no host traceback) and whose one-line
    message (for the short summary and junit) is given apart."""

    def __init__(self, text, message=""):
        super().__init__(text)
        self.message = message


class _Repr(str):
    """Failure text; pytest reads reprcrash.message for the short test summary."""


class GuestItem(pytest.Item):
    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, GuestProblem):
            text = _Repr(excinfo.value)
            text.reprcrash = SimpleNamespace(message=excinfo.value.message)
            return text
        return super().repr_failure(excinfo, style)


class GuestRunItem(GuestItem):
    """The guest run itself: boot, set-up, pytest, power-off."""

    def __init__(self, *, run, error, **kw):
        super().__init__(**kw)
        self.run, self.error = run, error

    def runtest(self):
        if self.error:
            if self.error.startswith("not run"):
                pytest.skip(self.error)
            raise GuestProblem(f"the guest could not be run:\n{self.error}",
                               self.error.strip().splitlines()[-1])
        problem = self.run.problem()
        if problem:
            raise GuestProblem(f"{problem}\n(console: {self.run.console}, results and logs: "
                               f"{self.run.out})\n--- console tail ---\n{self.run.console_tail()}",
                               problem)

    def reportinfo(self):
        return self.path, None, "guest run"


class GuestTest(GuestItem):
    """One test of the guest suite, replaying the guest's outcome."""

    def __init__(self, *, result, **kw):
        super().__init__(**kw)
        self.result = result
        # The guest's captured output, under its own titles ("Captured stdout call").
        for title, content in result.get("sections", []):
            words = title.split()
            if len(words) == 3 and words[0] == "Captured":
                self.add_report_section(words[2], words[1], content)
            else:
                self.add_report_section("call", title, content)

    def runtest(self):
        r = self.result
        if r["outcome"] == "skipped":
            if r["longrepr"].startswith("xfail: "):  # guest_results.py: an expected failure
                pytest.xfail(r["longrepr"][len("xfail: "):])
            pytest.skip(r["longrepr"])
        if r["outcome"] != "passed":
            raise GuestProblem(f"[in the guest: {r['outcome']} in {r['when']}]\n{r['longrepr']}",
                               r.get("message", ""))

    def reportinfo(self):
        # The domain is what follows the file in the node id: pytest's verbose
        # line would turn the dots of "test_x.py::..." into "::".
        path, _, domain = self.result["nodeid"].partition("::")
        return vm.SUITE / path, None, domain or path
