"""pytest fixtures for the mod_reencrypt integration tests.

Fixtures
  pki          session-wide TestPKI (fresh CAs and leaves in a temp dir)
  env          a private httpd (HttpdEnv), stopped after the test
  make_env     factory for additional HttpdEnv instances in one test
  backend      factory: backend("good") starts a TLSBackend presenting the
               chain of that PKI leaf; all are stopped after the test

Error-log guard: after each test that passed, every started httpd is stopped
and its error log is scanned.  Any line at warn level or above (warn, error,
crit, alert, emerg) whose AH/RE tag the test did not declare with
env.expect_log(...) fails the test.

Sanitizer reports: when REENCRYPT_SANITIZER_REPORTS names a directory (make
check-asan sets it, with REENCRYPT_APACHE_PRELOAD), a report file that
appears there while a test runs fails that test, once its servers have
stopped, with the report in the message.

Skipping is not allowed in this suite: a skipped or xfailed test is
reported as a failure, so a missing prerequisite is always loud.
"""

import os
import shutil
import sys
import tempfile

import pytest

sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from backend import TLSBackend  # noqa: E402
from httpd import (APACHE2, ENVIRONMENT_WARNINGS, MODULES_DIR,  # noqa: E402
                   HttpdEnv, module_path)
from pki import TestPKI  # noqa: E402

from harness import stopped_after  # noqa: E402  (backend.py put it on sys.path)

_ENVS_KEY = pytest.StashKey()
SANITIZER_REPORTS = os.environ.get("REENCRYPT_SANITIZER_REPORTS")


def pytest_report_header(config):
    mod = module_path()
    state = "present" if os.path.exists(mod) else "MISSING"
    lines = [f"apache2: {APACHE2}, modules: {MODULES_DIR}",
             f"mod_reencrypt under test: {mod} ({state})"]
    preload = os.environ.get("REENCRYPT_APACHE_PRELOAD")
    if preload or SANITIZER_REPORTS:
        lines.append(f"apache2 runs with LD_PRELOAD={preload or '(none)'}; "
                     f"sanitizer reports go to "
                     f"{SANITIZER_REPORTS or '(not checked)'}")
    for tag, (cause, fix) in sorted(ENVIRONMENT_WARNINGS.items()):
        lines.append(f"WARNING from this machine, not from a test: every "
                     f"httpd logs {tag}: {cause}; fix: {fix}. The error-log "
                     f"guard lets {tag} pass in every test of this run.")
    return lines


def pytest_sessionstart(session):
    missing = [p for p in (APACHE2,
                           os.path.join(MODULES_DIR, "mod_ssl.so"),
                           os.path.join(MODULES_DIR, "mod_proxy.so"),
                           os.path.join(MODULES_DIR, "mod_proxy_http.so"),
                           os.path.join(MODULES_DIR, "mod_mpm_event.so"))
               if not os.path.exists(p)]
    if missing:
        raise pytest.UsageError(
            "integration test prerequisites missing: " + ", ".join(missing))


@pytest.fixture(scope="session")
def pki():
    d = tempfile.mkdtemp(prefix="reencrypt-pki-")
    yield TestPKI(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(autouse=True)
def error_log_guard(request):
    """Collects the httpd instances of a test; the check itself runs at the
    end of the test call (see pytest_runtest_call) so that an undeclared
    warn/error line fails the test rather than erroring in teardown."""
    envs = []
    request.node.stash[_ENVS_KEY] = envs
    before = _sanitizer_reports()
    yield envs
    # torn down after make_env: every httpd of the test has stopped
    new = sorted(_sanitizer_reports() - before)
    if new:
        raise AssertionError(
            f"{len(new)} sanitizer report(s) written while this test ran:\n"
            + "\n".join(_read_report(f) for f in new))


def _sanitizer_reports():
    if not SANITIZER_REPORTS:
        return set()
    try:
        return {os.path.join(SANITIZER_REPORTS, f)
                for f in os.listdir(SANITIZER_REPORTS)}
    except FileNotFoundError:
        return set()


def _read_report(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f"==== {path}\n{f.read()}"


@pytest.fixture
def make_env(pki, error_log_guard):
    base = tempfile.mkdtemp(prefix="reencrypt-httpd-")
    created = []

    def factory(name=None):
        e = HttpdEnv(pki, base_dir=base,
                     name=name or f"httpd{len(created)}")
        created.append(e)
        error_log_guard.append(e)
        return e

    yield factory
    for e in created:
        e.stop()
    # config and error log of a failed test are attached to its report;
    # set REENCRYPT_KEEP_TMP=1 to keep the whole ServerRoot for inspection
    if os.environ.get("REENCRYPT_KEEP_TMP"):
        print(f"httpd ServerRoot(s) kept in {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def env(make_env):
    return make_env("httpd")


@pytest.fixture
def backend(pki):
    yield from stopped_after(lambda leaf, **kw: TLSBackend(
        pki.chain(leaf), pki.key(leaf), **kw).start())


@pytest.fixture
def module_so():
    """Path of the module under test; fails (never skips) if absent."""
    mod = module_path()
    assert os.path.exists(mod), (
        f"mod_reencrypt not found at {mod}: build it first "
        f"(autoreconf -fi && ./configure && make) or set REENCRYPT_MODULE")
    return mod


def _check_error_logs(item):
    envs = item.stash.get(_ENVS_KEY, [])
    problems = []
    for e in envs:
        if not e.started_once:
            continue
        e.stop()
        bad = e.unexpected_log_lines()
        if bad:
            problems.append(f"{e.error_log_file}:\n  " + "\n  ".join(bad))
    if problems:
        raise AssertionError(
            "undeclared warn/error lines in the httpd error log "
            "(declare them with env.expect_log(TAG) if they are expected):\n"
            + "\n".join(problems))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    outcome = yield
    if outcome.excinfo is None:
        _check_error_logs(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped:
        rep.outcome = "failed"
        rep.longrepr = (f"{item.nodeid}: skipping is not allowed in the "
                        f"integration suite ({call.excinfo.value if call.excinfo else 'skipped'})")
    if rep.failed:
        if rep.when == "call":
            for e in item.stash.get(_ENVS_KEY, []):
                if e.conf_text:
                    rep.sections.append((f"{e.conf_file}", e.conf_text))
                log = e.error_log()
                if log:
                    rep.sections.append((f"{e.error_log_file}", log))
