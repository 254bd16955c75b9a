"""Faults: what a client and the error log see when a backend or the
session cache misbehaves, and what keeps working.

Every case gives the client a clear status and one line that says what
happened, crashes nothing (no "child pid ... exit signal", AH00052, in
the error log) and takes nothing from the other backends: a second,
healthy backend behind the same frontend answers 200 during and after
the fault.

- A backend that dies in the TLS handshake (closes after reading the
  ClientHello, or after half a ServerHello), that stalls in it (accepts
  and never answers), that answers plain HTTP or garbage, or that sends a
  TLS alert: 502 (504 for the stall, after the worker's timeout), one
  RE00060 line.
- A memcached or redis session cache that is down or hangs (accepts and
  never answers): every request is served, none waits more than about a
  second for the cache, and the module warns once (RE00061), not once
  per request.
- Statistics slots all taken (ReencryptStatusBackends smaller than the
  number of backends): requests are served, the status page answers.
- A trust anchor file that turns bad before a graceful restart: httpd
  refuses the restart, naming the file; the running children go on
  serving under the old configuration.

The broken backends are small raw-socket servers of this file
(FaultBackend); the broken cache is a server that accepts connections and
never answers (SilentServer), or a port nothing listens on.
"""

import json
import os
import re
import shutil
import signal
import ssl
import struct
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from checks import (PROXY_HANDSHAKE_FAILURE_TAGS, one_line, re10_lines,
                    start_policy)
from harness import poll, stopped_after
from harness.procs import pid_alive
from harness.servers import LoopbackServer
from httpd import MODULES_DIR, free_port
from test_13_sessions import KEY_1, _key_file

RE60_RE = re.compile(r"RE00060: backend (?P<backend>\S+) handshake failed: "
                     r"(?P<what>.*)$")
RE61_RE = re.compile(r"RE00061: ReencryptSessionCache (?P<spec>\S+): "
                     r"(?P<what>.*)$")

# what httpd's socache providers log, at error and crit level, when a call
# to their server fails
CACHE_PROVIDER_TAGS = {
    "memcache": ("AH00791", "AH00790"),
    "redis": ("AH03479", "AH03478"),
}


# ------------------------------------------------------------ fakes

def _read_record(sock, deadline):
    """One whole TLS record (the ClientHello) from sock, or what arrived
    of it before the peer closed or the deadline passed."""
    data = b""
    want = 5
    while len(data) < want:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(want - len(data))
        except OSError:
            return data
        if not chunk:
            return data
        data += chunk
        if want == 5 and len(data) >= 5:
            want = 5 + struct.unpack("!H", data[3:5])[0]
    return data


def _server_hello(client_hello, chain, key):
    """The first record a real TLS server answers client_hello with (its
    ServerHello), made by Python's ssl module in memory."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain, key)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_side=True)
    incoming.write(client_hello)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = outgoing.read()
    assert data[:1] == b"\x16", data[:16]
    return data[:5 + struct.unpack("!H", data[3:5])[0]]


# what a plain HTTP server answers to a ClientHello
HTTP_ANSWER = (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
               b"Connection: close\r\n\r\n")
GARBAGE = bytes((i * 37 + 11) % 256 for i in range(64))


class FaultBackend(LoopbackServer):
    """A TCP server on loopback that plays a broken TLS backend.

    mode
      close-after-hello  reads the ClientHello, closes
      half-server-hello  reads the ClientHello, sends half of a real
                         ServerHello record, closes
      stall              reads whatever comes, never answers (until stop)
      http               reads the ClientHello, answers as a plain HTTP
                         server does, closes
      garbage            reads the ClientHello, answers 64 bytes that are
                         no TLS, closes
    Records per connection the bytes received (received) and whether it
    has ended."""

    label = "fault backend"
    close_on_stop = False       # handle() closes

    def __init__(self, mode, chain=None, key=None):
        super().__init__(backlog=16)
        self.mode = mode
        self.chain, self.key = chain, key
        self.sent = b""
        self._conns = []
        self.start()

    @property
    def connections(self):
        with self._lock:
            return [dict(c) for c in self._conns]

    def describe(self):
        return str(self.connections)

    def wait_for(self, predicate, timeout=5.0, what="condition"):
        self.wait_until(lambda: predicate(self), timeout, what)

    def on_accept(self, sock, peer, cid):
        conn = {"received": b"", "ended": False}
        with self._lock:
            self._conns.append(conn)
        return conn

    def handle(self, sock, conn):
        try:
            hello = _read_record(sock, time.monotonic() + 10)
            with self._lock:
                conn["received"] += hello
            if self.mode == "half-server-hello":
                record = _server_hello(hello, self.chain, self.key)
                self.sent = record[:5 + (len(record) - 5) // 2]
                sock.sendall(self.sent)
            elif self.mode == "http":
                self.sent = HTTP_ANSWER
                sock.sendall(self.sent)
            elif self.mode == "garbage":
                self.sent = GARBAGE
                sock.sendall(self.sent)
            elif self.mode == "stall":
                def keep(data):
                    conn["received"] += data
                self.read_until_stopped(sock, keep)
        except OSError:
            pass
        finally:
            conn["ended"] = True
            try:
                sock.close()
            except OSError:
                pass


class SilentServer(LoopbackServer):
    """Accepts connections and reads them, never answers: a cache server
    that hangs."""

    label = "silent server"

    def __init__(self):
        super().__init__()
        self.received = b""
        self.start()

    def handle(self, sock, _record):
        def keep(data):
            self.received += data
        self.read_until_stopped(sock, keep)

    def wait_received(self, timeout=5.0):
        self.wait_until(lambda: self.received, timeout,
                        "something reaching the silent cache server")


@pytest.fixture
def fault_backend(pki):
    yield from stopped_after(
        lambda mode: FaultBackend(mode, pki.chain("good"), pki.key("good")))


@pytest.fixture
def silent_server():
    yield from stopped_after(SilentServer)


# ------------------------------------------------------------ helpers

def _two_backends(pki, faulty_url, healthy, params="", preamble=(),
                  directives=()):
    """One policy, two backends: /faulty/ and /healthy/."""
    lines = ["SSLProxyEngine On", *preamble, "ReencryptEngine On",
             f'ReencryptCACertificateFile "{pki.ca_file}"',
             "ReencryptSNI good.test", *directives,
             f"ProxyPass /faulty/ {faulty_url} {params}".rstrip(),
             f"ProxyPass /healthy/ {healthy.url_ip}"]
    return "\n".join(lines)


def _healthy(env, healthy, path, timeout=15.0):
    """GET /healthy/<path>: 200 and the healthy backend's answer; returns
    the seconds it took."""
    t0 = time.monotonic()
    r = env.get(f"/healthy/{path}", timeout=timeout)
    took = time.monotonic() - t0
    assert r.status == 200, (r, env.error_log())
    assert r.text == f"backend-ok /{path}\n", r.text[:300]
    assert ("GET", f"/{path}") in healthy.requests
    return took


def _assert_no_crash(env):
    crashes = [ln.raw for ln in env.log_lines()
               if "AH00052" in ln.rest or "exit signal" in ln.rest]
    assert not crashes, "\n".join(crashes)


def _re60(env, fb):
    """The one RE00060 line (level error), naming fb; returns its 'what'."""
    m = one_line(env, "RE00060", "error", RE60_RE)
    assert m.group("backend") == f"127.0.0.1:{fb.port}", m.string
    assert not re10_lines(env), env.error_log()
    return m.group("what")


def _faulty(env, path="x", timeout=15.0):
    """GET /faulty/<path>: (status, seconds it took)."""
    t0 = time.monotonic()
    r = env.get(f"/faulty/{path}", timeout=timeout)
    return r.status, time.monotonic() - t0


# ------------------------------------------------------ broken backends

@pytest.mark.parametrize("mode", ["close-after-hello", "half-server-hello"])
def test_reencrypt_20_101_backend_dies_in_handshake(env, backend,
                                                    fault_backend, module_so,
                                                    pki, mode):
    """The backend reads the ClientHello and closes, or sends half a
    ServerHello and closes: 502, one RE00060 line saying the backend
    closed the connection (and after how many bytes); the healthy
    backend answers before and after."""
    healthy = backend("good")
    fb = fault_backend(mode)
    env.expect_log("RE00060", *PROXY_HANDSHAKE_FAILURE_TAGS)
    env.write_config(vhost=_two_backends(pki, fb.url_ip, healthy))
    env.start()
    _healthy(env, healthy, "before")
    status, _ = _faulty(env)
    assert status == 502, env.error_log()
    fb.wait_for(lambda b: b.connections and b.connections[0]["ended"],
                what="end of the connection")
    assert fb.connections[0]["received"][:1] == b"\x16", fb.connections
    what = _re60(env, fb)
    if mode == "close-after-hello":
        assert what == ("closed by the backend before it answered the "
                        "ClientHello"), what
    else:
        assert what == (f"closed by the backend after {len(fb.sent)} bytes "
                        f"of its answer"), what
    _healthy(env, healthy, "after")
    _assert_no_crash(env)


@pytest.mark.parametrize("timeouts", ["worker-timeout", "ProxyTimeout"])
def test_reencrypt_20_102_backend_stalls_in_handshake(env, backend,
                                                      fault_backend,
                                                      module_so, pki,
                                                      timeouts):
    """The backend accepts and never answers the ClientHello. The wait is
    bounded by the worker's timeout= (else ProxyTimeout, else Timeout),
    not by connectiontimeout=, which bounds the TCP connect only: with
    timeout=2 and ProxyTimeout 8, or with ProxyTimeout 2, the client gets
    504 after 2 s; one RE00060 line says so. The healthy backend answers
    at once while the request waits, and after it."""
    healthy = backend("good")
    fb = fault_backend("stall")
    env.expect_log("RE00060", *PROXY_HANDSHAKE_FAILURE_TAGS)
    if timeouts == "worker-timeout":
        preamble, params = ["ProxyTimeout 8"], "timeout=2 connectiontimeout=1"
    else:
        preamble, params = ["ProxyTimeout 2"], "connectiontimeout=1"
    env.write_config(vhost=_two_backends(pki, fb.url_ip, healthy,
                                         params=params, preamble=preamble))
    env.start()
    with ThreadPoolExecutor(1) as pool:
        stalled = pool.submit(_faulty, env)
        fb.wait_for(lambda b: b.connections
                    and b.connections[0]["received"][:1] == b"\x16",
                    what="ClientHello")
        during = _healthy(env, healthy, "during")
        status, took = stalled.result(timeout=15)
    assert during < 1.5, f"the healthy backend took {during:.2f}s"
    assert status == 504, env.error_log()
    assert 1.8 <= took <= 4.5, f"the stalled request took {took:.2f}s"
    what = _re60(env, fb)
    assert what == ("no answer within 2s (timeout= of the ProxyPass "
                    "worker, else ProxyTimeout, else Timeout)"), what
    _healthy(env, healthy, "after")
    _assert_no_crash(env)


@pytest.mark.parametrize("mode", ["http", "garbage"])
def test_reencrypt_20_103_backend_does_not_speak_tls(env, backend,
                                                     fault_backend, module_so,
                                                     pki, mode):
    """The backend answers the ClientHello with plain HTTP or with bytes
    that are no TLS: 502, one RE00060 line quoting the first bytes."""
    healthy = backend("good")
    fb = fault_backend(mode)
    env.expect_log("RE00060", *PROXY_HANDSHAKE_FAILURE_TAGS)
    env.write_config(vhost=_two_backends(pki, fb.url_ip, healthy))
    env.start()
    status, _ = _faulty(env)
    assert status == 502, env.error_log()
    what = _re60(env, fb)
    m = re.fullmatch(r'not TLS: the backend answered "(.*)"', what)
    assert m, what
    shown = m.group(1)
    if mode == "http":
        assert shown.startswith("HTTP/1.1 400"), what
        assert HTTP_ANSWER.decode().startswith(shown), what
    else:
        # bytes other than printable ASCII as %XX
        expected = "".join(chr(b) if 32 <= b < 127 and chr(b) not in '"%\\'
                           else f"%{b:02X}" for b in GARBAGE)
        assert len(shown) >= 5 and expected.startswith(shown), what
    _healthy(env, healthy, "after")
    _assert_no_crash(env)


def test_reencrypt_20_104_backend_sends_alert(env, backend, module_so, pki):
    """The backend refuses the handshake with a TLS alert (it speaks TLS
    1.3 only, the proxy offers TLS 1.2 only): 502, one RE00060 line
    naming the alert."""
    healthy = backend("good")
    be = backend("good", min_version=ssl.TLSVersion.TLSv1_3)
    env.expect_log("RE00060", *PROXY_HANDSHAKE_FAILURE_TAGS)
    # SSLProxyProtocol is the virtual host's: the healthy backend is
    # reached over TLS 1.2 too
    env.write_config(vhost=_two_backends(
        pki, be.url_ip, healthy, preamble=["SSLProxyProtocol -all +TLSv1.2"]))
    env.start()
    status, _ = _faulty(env)
    assert status == 502, env.error_log()
    be.wait_settled()
    assert be.handshakes_ok == 0 and be.app_bytes == 0, be.describe()
    assert _re60(env, be) == "TLS alert from the backend: protocol version"
    _healthy(env, healthy, "after")
    _assert_no_crash(env)


# ------------------------------------------------------ the session cache

def _cache_server(kind, port, env):
    module = {"memcache": "socache_memcache", "redis": "socache_redis"}[kind]
    return (f'LoadModule {module}_module "{MODULES_DIR}/mod_{module}.so"\n'
            f"ReencryptSessionCache {kind}:127.0.0.1:{port}\n"
            f'ReencryptSessionCacheKey "{_key_file(env, KEY_1)}"')


def _cache_vhost(pki, be, other):
    """Two backends under one policy whose SNI is the request's Host: a
    request with a Host of its own has a session key of its own, so each
    one looks its session up in the shared cache (nothing of it is in the
    child's own copies); a new backend connection per request."""
    return "\n".join([
        "SSLProxyEngine On", "ProxyPreserveHost On", "ReencryptEngine On",
        f'ReencryptCACertificateFile "{pki.ca_file}"',
        "ReencryptSNI Host", "ReencryptVerifyName good.test",
        f"ProxyPass /other/ {other.url_ip} disablereuse=On",
        f"ProxyPass / {be.url_ip} disablereuse=On"])


def _timed_get(env, path, host, timeout=8.0):
    t0 = time.monotonic()
    r = env.get(path, host=host, timeout=timeout)
    assert r.status == 200, (path, r, env.error_log())
    return time.monotonic() - t0


def _re61(env, kind, port):
    m = one_line(env, "RE00061", "warn", RE61_RE)
    assert m.group("spec") == f"{kind}:127.0.0.1:{port}", m.string
    return m.group("what")


RE61_TAIL = ("; the shared session cache is left alone for 30s: backend "
             "handshakes resume the sessions this process holds, the "
             "others are full")


@pytest.mark.parametrize("kind", ["memcache", "redis"])
def test_reencrypt_20_110_session_cache_down(env, backend, module_so, pki,
                                             kind):
    """Nothing listens where the cache should be: 12 requests, each with
    a session key of its own, are all served with full handshakes; the
    module warns once (RE00061) and then leaves the cache alone, so the
    provider's own error lines come once, not once per request."""
    be, other = backend("good"), backend("good")
    port = free_port()
    env.expect_log("RE00061", *CACHE_PROVIDER_TAGS[kind])
    env.write_config(server=_cache_server(kind, port, env),
                     vhost=_cache_vhost(pki, be, other))
    env.start()
    for i in range(12):
        took = _timed_get(env, f"/r{i}", host=f"h{i}.test")
        assert took < 3.0, f"request {i} took {took:.2f}s"
    _timed_get(env, "/other/after", host="other.test")
    be.wait_settled()
    assert be.full == 12 and be.resumed == 0, be.describe()
    what = _re61(env, kind, port)
    assert what.endswith(RE61_TAIL), what
    provider = [ln.raw for ln in env.log_lines()
                if ln.tag in CACHE_PROVIDER_TAGS[kind]]
    assert 1 <= len(provider) <= 2, "\n".join(provider)
    _assert_no_crash(env)


@pytest.mark.parametrize("kind", ["memcache", "redis"])
def test_reencrypt_20_111_session_cache_hangs(env, backend, module_so, pki,
                                              silent_server, kind):
    """The cache server accepts connections and never answers (httpd's
    providers would wait for it without limit): the first request waits
    about a second for it, a request to the other backend meanwhile no
    longer, and every later request not at all; all are served; the
    module warns once (RE00061: no answer within 1s)."""
    be, other = backend("good"), backend("good")
    silent = silent_server()
    env.expect_log("RE00061")
    env.write_config(server=_cache_server(kind, silent.port, env),
                     vhost=_cache_vhost(pki, be, other))
    env.start()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(_timed_get, env, "/r0", "h0.test")
        silent.wait_received()
        during = _timed_get(env, "/other/during", host="other.test")
        took = first.result(timeout=15)
    assert took < 3.0, f"the first request took {took:.2f}s"
    assert during < 3.0, f"the request to the other backend took {during:.2f}s"
    for i in range(1, 9):
        took = _timed_get(env, f"/r{i}", host=f"h{i}.test")
        assert took < 0.9, f"request {i} took {took:.2f}s"
    _timed_get(env, "/other/after", host="other.test")
    what = _re61(env, kind, silent.port)
    assert what == "no answer within 1s" + RE61_TAIL, what
    _assert_no_crash(env)


# ------------------------------------------------------ statistics slots

@pytest.mark.parametrize("slots", [1, 2])
def test_reencrypt_20_120_statistics_slots_full(env, backend, module_so, pki,
                                                slots):
    """Three backends, ReencryptStatusBackends 1 or 2: every request is
    served, the status page answers (HTML and ?json), and the JSON lists
    no more backends than there are slots, each one of ours."""
    bes = [backend("good") for _ in range(3)]
    lines = ["SSLProxyEngine On", "ReencryptEngine On",
             f'ReencryptCACertificateFile "{pki.ca_file}"',
             "ReencryptSNI good.test",
             "<Location /reencrypt-status>",
             "    SetHandler reencrypt-status",
             "</Location>"]
    lines += [f"ProxyPass /b{i}/ {be.url_ip} disablereuse=On"
              for i, be in enumerate(bes)]
    env.write_config(
        server=(f'LoadModule slotmem_shm_module '
                f'"{MODULES_DIR}/mod_slotmem_shm.so"\n'
                f"ReencryptStatusBackends {slots}"),
        vhost="\n".join(lines))
    env.start()
    for rnd in range(2):
        for i, be in enumerate(bes):
            r = env.get(f"/b{i}/r{rnd}")
            assert r.status == 200, (r, env.error_log())
            assert r.text == f"backend-ok /r{rnd}\n"
    r = env.get("/reencrypt-status")
    assert r.status == 200, r
    r = env.get("/reencrypt-status?json")
    assert r.status == 200, r
    doc = json.loads(r.text)
    assert doc["slots"] == slots, doc
    assert len(doc["backends"]) <= slots, doc["backends"]
    ours = {f"127.0.0.1:{be.port}" for be in bes}
    assert {b["backend"] for b in doc["backends"]} <= ours, doc["backends"]
    assert env.get("/b0/last").status == 200
    _assert_no_crash(env)


# ------------------------------------------------------ graceful restart

def _break(path, how, good_pem):
    if how == "garbage":
        with open(path, "w") as f:
            f.write("this is not a certificate\n")
    elif how == "truncated":
        with open(path, "w") as f:
            f.write(good_pem[:len(good_pem) // 2])
    elif how == "missing":
        os.unlink(path)
    elif how == "not-a-file":
        os.unlink(path)
        os.mkdir(path)
    else:
        raise ValueError(how)


REASON_OF = {
    "garbage": "contains no PEM certificate",
    "truncated": "holds a malformed PEM certificate",
    "missing": "cannot read",
    "not-a-file": "is not a regular file",
}


@pytest.mark.parametrize("how", list(REASON_OF))
def test_reencrypt_20_130_bad_anchor_file_at_graceful(env, backend,
                                                      module_so, pki, how):
    """The trust anchor file is replaced by garbage or half of itself,
    removed, or turned into a directory, then `apache2 -k graceful`: it
    fails (the configuration is read before the running server is
    signalled) with AH00526 naming the directive, the file and the
    reason; the running children stay and go on serving, under the old
    anchors. Once the file is good again, the graceful restart works."""
    be = backend("good")
    anchors = os.path.join(env.root, "conf", "anchors.pem")
    shutil.copy(pki.ca_file, anchors)
    with open(pki.ca_file) as f:
        good_pem = f.read()
    start_policy(env, be, "ReencryptSNI good.test",
                                        ca=anchors)
    assert env.get("/before").status == 200
    children = set(env.children())
    _break(anchors, how, good_pem)
    try:
        p = env._run("-k", "graceful")
        out = p.stderr + p.stdout
        assert p.returncode != 0, out
        line = env.line_of("ReencryptCACertificateFile")
        assert (f"AH00526: Syntax error on line {line} of {env.conf_file}:"
                in out), out
        assert re.search(rf"ReencryptCACertificateFile: .*'{re.escape(anchors)}'"
                         rf".*", out) and REASON_OF[how] in out, out
        r = env.get("/during")
        assert r.status == 200 and r.text == "backend-ok /during\n", r
        assert set(env.children()) == children
        assert "AH00493" not in env.error_log()    # never signalled
    finally:
        if os.path.isdir(anchors):
            os.rmdir(anchors)
        shutil.copy(pki.ca_file, anchors)
    env.graceful()
    assert env.get("/after").status == 200
    _assert_no_crash(env)


def test_reencrypt_20_131_bad_anchor_file_at_bare_sigusr1(env, backend,
                                                          module_so, pki):
    """A graceful restart by a bare SIGUSR1 to the parent skips the check
    that `apache2 -k graceful` makes: the parent reads the broken file,
    logs AH00526 naming it, and stops, as for any configuration error
    (what docs/directives.md warns of)."""
    be = backend("good")
    anchors = os.path.join(env.root, "conf", "anchors.pem")
    shutil.copy(pki.ca_file, anchors)
    start_policy(env, be, "ReencryptSNI good.test",
                                        ca=anchors)
    assert env.get("/before").status == 200
    parent = env._pid()
    _break(anchors, "garbage", "")
    os.kill(parent, signal.SIGUSR1)
    env.wait_log(r"AH00526: Syntax error on line \d+ of ")
    env.wait_log(rf"ReencryptCACertificateFile: '{re.escape(anchors)}' "
                 rf"contains no PEM certificate")
    assert poll(lambda: not pid_alive(parent), 10), "the parent did not stop"
    env.running = False
    shutil.copy(pki.ca_file, anchors)
    _assert_no_crash(env)
