"""The one harness of mod_reencrypt's tests, benchmarks and demo.

Used by tests/integration (through its conftest.py and its thin modules
httpd.py, pki.py, backend.py), tests/valgrind/drive.py, bench/run,
bench/soak and demo/reencrypt-demo (python3 -m harness.demo).  Everything
runs on 127.0.0.1 and every wait is bounded.

  pki       a PKI made with python3-cryptography: CAs, intermediates,
            leaves, keys, pins, CRLs, OCSP responses; TestPKI, the
            integration tests' set
  apache    private Apache httpd instances: configuration head (ServerRoot,
            PidFile, DefaultRuntimeDir, Mutex, Listen on 127.0.0.1),
            configtest, start / stop / graceful, children, logs
  servers   loopback TCP servers, one thread per connection (the base of
            the test backends)
  backend   TLSBackend, the integration tests' recording TLS backend
  ocsp      an OCSP responder (http.server in a thread)
  logs      error-log lines and their tags, reading, polling, summaries
  net       ports (free, picked, waited for) and a small HTTP(S) client
  procs     processes: alive, children, the unprivileged user's group
  bench     what bench/run and bench/soak share: wrk, the machine
  demo      the demo's instances (demo/reencrypt-demo calls it)

Only the Python standard library and Debian's python3-cryptography are
used (/usr/bin/python3).
"""

import os
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class HarnessError(AssertionError):
    """A server did not start, stop, listen or log as expected (an
    AssertionError, so that pytest reports it as a failed check)."""


def poll(predicate, timeout, interval=0.02):
    """Call predicate until it returns a true value (returned) or timeout
    seconds have passed (None is returned)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)  # polling interval, bounded by the deadline


def stopped_after(make):
    """The body of a pytest fixture giving a factory: ``yield from
    stopped_after(make)`` yields a function that calls make(...) and
    returns what it made; everything made is stopped (.stop()) when the
    test is over."""
    made = []

    def factory(*args, **kw):
        thing = make(*args, **kw)
        made.append(thing)
        return thing

    yield factory
    for thing in made:
        thing.stop()
