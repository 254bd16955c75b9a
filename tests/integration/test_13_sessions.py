"""Backend TLS session resumption.

For every TLS backend connection under a policy mod_reencrypt offers a
cached session and keeps the new ones in an httpd socache (shmcb by
default), under a key made of the backend host:port, the SNI and the
identity of the effective policy.  Only a handshake that passed the policy
and mod_ssl's own checks leaves a session; a resumed handshake is checked
again against the chain stored with the session.

Sessions are shared beyond one process too: between the children of one
server (shmcb), between servers (memcached, redis) and across a graceful
restart.  memcached and redis-server are real daemons started by the tests
on 127.0.0.1 and a free port; the tests fail (never skip) when they are
not installed or do not start.

Every test counts resumption twice, independently: the backend records for
each connection whether the ClientHello offered a session and whether the
handshake resumed one; the frontend logs REENCRYPT_SESSION (full /
resumed) per request and RE00014 (with the pid of the child) per
handshake.  `ProxyPass ... disablereuse=On` makes every request a new
backend connection, so every request is a handshake.
"""

import base64
import datetime
import math
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from checks import (PROXY_HANDSHAKE_FAILURE_TAGS, RE10_RE, SessionEntry,
                    TWO_NAME_SCOPES, policy_head, policy_vhost, re10_lines,
                    re14_matches, re18_lines, session_log_directives)
from harness import stopped_after
from httpd import MODULES_DIR, free_port, wait_port

TLS13 = {"min_version": ssl.TLSVersion.TLSv1_3}
TLS12 = {"max_version": ssl.TLSVersion.TLSv1_2}
VERSIONS = {"tls1.3": (TLS13, "TLSv1.3"), "tls1.2": (TLS12, "TLSv1.2")}


def _vhost(env, be, *directives, ca, preamble=(), locations=""):
    """A policy vhost proxying / to be, a new backend connection per
    request, with the session access log."""
    return (policy_vhost(be.url_ip + " disablereuse=On", *directives,
                         ca=ca, preamble=preamble)
            + "\n" + locations + "\n" + session_log_directives(env))


def _get_ok(env, path, host=None):
    r = env.get(path, host=host)
    assert r.status == 200, (r, env.error_log())
    assert r.text == f"backend-ok {path}\n", r.text[:300]
    return r


def _two_on_each(a, b, be):
    """GET /a/1, /a/2 through server a, then /b/1, /b/2 through server b;
    returns the handshakes (_sessions) of a's two and of b's two."""
    for p in ("/a/1", "/a/2"):
        _get_ok(a, p)
    for p in ("/b/1", "/b/2"):
        _get_ok(b, p)
    return (_sessions(a, be, ["/a/1", "/a/2"]),
            _sessions(b, be, ["/b/1", "/b/2"]))


def _get_all(env, prefix, n):
    """GET prefix0 .. prefix<n-1> through env, each served; returns the
    paths."""
    paths = [f"{prefix}{i}" for i in range(n)]
    for p in paths:
        _get_ok(env, p)
    return paths


def _carrier(be, path):
    """The backend connection that carried GET path."""
    found = [c for c in be.connections if ("GET", path) in c.requests]
    assert len(found) == 1, (
        f"GET {path} arrived on {len(found)} connections:\n{be.describe()}")
    return found[0]


def _entries(env, paths, timeout=5.0):
    """The session access-log entry of each path (polls the log until
    every path is there)."""
    deadline = time.monotonic() + timeout
    while True:
        by_path = {}
        for line in env.access_lines(0):
            e = SessionEntry(line)
            by_path[e.path] = e
        if all(p in by_path for p in paths):
            return [by_path[p] for p in paths]
        if time.monotonic() > deadline:
            raise AssertionError(
                f"access log lacks {[p for p in paths if p not in by_path]}"
                f":\n" + "\n".join(env.access_lines(0)))
        time.sleep(0.02)  # polling interval, bounded by the deadline


def _sessions(env, be, paths):
    """full / resumed for each served path, as logged by the frontend;
    asserts that the backend saw the same for the connection carrying it
    (and an offer of a session wherever it resumed one)."""
    be.wait_settled()
    out = []
    for e in _entries(env, paths):
        c = _carrier(be, e.path)
        backend_view = "resumed" if c.session_reused else "full"
        assert e.session == backend_view, (
            f"{e.path}: frontend logged {e.session}, backend saw "
            f"{backend_view}:\n{be.describe()}")
        if c.session_reused:
            assert c.session_offered, be.describe()
        out.append(e.session)
    return out


def _offered(be, path):
    return _carrier(be, path).session_offered


# ---------------------------------------------------------------- resumption

@pytest.mark.parametrize("version", ["tls1.3", "tls1.2"])
def test_reencrypt_13_001_resumed_after_first_handshake(
        env, backend, module_so, pki, version):
    """40 requests, 40 backend handshakes: the first is full, at least 95%
    of the others resume a session, as counted by the backend and as
    logged by the frontend (REENCRYPT_SESSION and RE00014)."""
    kw, negotiated = VERSIONS[version]
    be = backend("good", **kw)
    env.write_config(loglevel="warn reencrypt:debug", vhost=_vhost(
        env, be, "ReencryptSNI good.test", ca=pki.ca_file))
    env.start()
    paths = _get_all(env, "/r", 40)
    sessions = _sessions(env, be, paths)

    assert be.accepted == 40 and be.handshakes_ok == 40, be.describe()
    assert {c.tls_version for c in be.connections} == {negotiated}
    first = _carrier(be, "/r0")
    assert not first.session_offered and not first.session_reused
    assert sessions[0] == "full"
    resumed = sessions[1:].count("resumed")
    assert resumed >= math.ceil(0.95 * 39), (
        f"{resumed} of 39 handshakes after the first resumed:\n"
        + be.describe())
    assert be.resumed == resumed and be.full == 40 - resumed
    assert all(e.result == "ok" and e.status == 200
               for e in _entries(env, paths))
    # the debug line says the same, one per handshake
    m14 = re14_matches(env)
    assert len(m14) == 40, env.error_log()
    assert sum(1 for m in m14 if m.group("resumed")) == resumed
    assert not m14[0].group("resumed"), m14[0].group(0)
    assert {m.group("sni") for m in m14} == {"good.test"}


# ------------------------------------------------------ what is never stored

def test_reencrypt_13_002_refused_handshake_leaves_no_session(
        env, backend, module_so, pki):
    """A scope whose policy refuses the backend never offers a session,
    neither before nor after another scope resumed sessions with the very
    same backend."""
    be = backend("good", **TLS12)
    env.write_config(vhost=_vhost(
        env, be, "ReencryptSNI good.test", ca=pki.ca_file, locations="""
<Location /bad>
    ReencryptVerifyName other.test
</Location>
"""))
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    env.start()

    r = env.get("/bad/1")
    assert r.status == 502, (r, env.error_log())
    for p in ("/good/1", "/good/2"):
        _get_ok(env, p)
    r = env.get("/bad/2")
    assert r.status == 502, (r, env.error_log())
    _get_ok(env, "/good/3")

    assert _sessions(env, be, ["/good/1", "/good/2", "/good/3"]) == [
        "full", "resumed", "resumed"]
    assert not _offered(be, "/good/1"), be.describe()
    refused = [c for c in be.connections if c.handshake_ok is False]
    assert len(refused) == 2, be.describe()
    assert not any(c.session_offered for c in refused), be.describe()
    assert all(c.data == b"" for c in refused), be.describe()
    entries = _entries(env, ["/bad/1", "/bad/2"])
    assert [(e.status, e.session, e.result) for e in entries] == [
        (502, "full", "refused:name-mismatch")] * 2
    assert len(re10_lines(env)) == 2, env.error_log()


def test_reencrypt_13_003_report_mode_violation_never_stored(
        env, backend, module_so, pki):
    """ReencryptMode Report lets a violating backend through, and its
    sessions are never kept: every handshake is full and none offers a
    session."""
    be = backend("wrong-name", **TLS12)
    env.write_config(vhost=_vhost(
        env, be, "ReencryptMode Report", "ReencryptSNI good.test",
        ca=pki.ca_file))
    env.expect_log("RE00018")
    env.expect_log("RE00035")   # SSLProxyCheckPeerExpire is on
    env.start()
    paths = _get_all(env, "/report/", 5)
    assert _sessions(env, be, paths) == ["full"] * 5
    assert be.offers == 0, be.describe()
    assert {e.result for e in _entries(env, paths)} == {
        "report:name-mismatch"}
    assert len(re18_lines(env)) == 5, env.error_log()


@pytest.mark.parametrize("version", ["tls1.3", "tls1.2"])
def test_reencrypt_13_004_modssl_refusal_leaves_no_session(
        env, make_env, backend, module_so, pki, version):
    """ReencryptClockSkew lets a certificate valid in two hours through
    the policy, but mod_ssl's own expiry check (on by default) refuses it
    after the handshake: 502, RE00020, and no session was kept (TLS 1.2
    hands the session over inside that handshake), so the next
    handshake offers none.  With 'SSLProxyCheckPeerExpire Off' the same
    backend is served and its sessions resumed."""
    kw, _ = VERSIONS[version]
    be = backend("future-2h", **kw)
    env.write_config(vhost=_vhost(
        env, be, "ReencryptSNI good.test", "ReencryptClockSkew 3h",
        ca=pki.ca_file))
    env.expect_log("RE00020", *PROXY_HANDSHAKE_FAILURE_TAGS)
    env.expect_log("RE00035")   # SSLProxyCheckPeerExpire is on
    env.start()
    for i in range(3):
        r = env.get(f"/skew/{i}")
        assert r.status == 502, (r, env.error_log())
    be.wait_settled()
    assert be.handshakes_ok == 3 and be.app_bytes == 0, be.describe()
    assert be.offers == 0, be.describe()
    assert len([ln for ln in env.log_lines() if "RE00020:" in ln.rest]) == 3

    # the contrast: mod_ssl's check off, the policy's verdict stands
    be2 = backend("future-2h", **kw)
    env2 = make_env("modssl-expire-off")
    env2.write_config(vhost=_vhost(
        env2, be2, "ReencryptSNI good.test", "ReencryptClockSkew 3h",
        ca=pki.ca_file, preamble=["SSLProxyCheckPeerExpire Off"]))
    env2.start()
    paths = _get_all(env2, "/skew-ok/", 3)
    assert _sessions(env2, be2, paths) == ["full", "resumed", "resumed"]


# ---------------------------------------------------- whose session is whose

def test_reencrypt_13_005_each_policy_has_its_own_sessions(
        env, backend, module_so, pki):
    """Two scopes, same backend, different ReencryptVerifyName (both pass):
    the first handshake of each scope is full and offers nothing, even
    when the other scope holds a session."""
    be = backend("good")
    env.write_config(vhost=_vhost(
        env, be, "ReencryptSNI good.test", ca=pki.ca_file,
        locations=TWO_NAME_SCOPES))
    env.start()
    paths = ["/a/1", "/a/2", "/b/1", "/b/2", "/a/3", "/b/3"]
    for p in paths:
        _get_ok(env, p)
    assert _sessions(env, be, paths) == [
        "full", "resumed", "full", "resumed", "resumed", "resumed"]
    assert not _offered(be, "/a/1") and not _offered(be, "/b/1"), (
        be.describe())


def test_reencrypt_13_006_each_sni_has_its_own_sessions(
        env, backend, module_so, pki):
    """ReencryptSNI Host: one policy, two SNIs (from the client's Host):
    each SNI's first handshake is full and offers nothing."""
    be = backend("good")
    env.write_config(vhost=_vhost(
        env, be, "ReencryptSNI Host", ca=pki.ca_file,
        preamble=["ProxyPreserveHost On"]))
    env.expect_log("RE00050")  # ReencryptSNI Host without VerifyName
    env.start()
    plan = [("/g1", "good.test"), ("/g2", "good.test"),
            ("/b1", "backend.test"), ("/b2", "backend.test"),
            ("/g3", "good.test")]
    for p, host in plan:
        _get_ok(env, p, host=host)
    paths = [p for p, _ in plan]
    assert _sessions(env, be, paths) == [
        "full", "resumed", "full", "resumed", "resumed"]
    assert [_carrier(be, p).sni for p in paths] == [h for _, h in plan]
    assert not _offered(be, "/g1") and not _offered(be, "/b1"), (
        be.describe())


def test_reencrypt_13_007_each_backend_has_its_own_sessions(
        env, backend, module_so, pki):
    """Two backends with the same certificate under the same policy: the
    first handshake with the second backend is full and offers nothing
    (the key holds host:port)."""
    one = backend("good")
    two = backend("good")
    env.write_config(vhost=f"""
{policy_head(pki.ca_file)}
ProxyPass /one https://127.0.0.1:{one.port}/one disablereuse=On
ProxyPass /two https://127.0.0.1:{two.port}/two disablereuse=On
{session_log_directives(env)}
""")
    env.start()
    for p in ("/one/1", "/one/2", "/two/1", "/two/2"):
        _get_ok(env, p)
    assert _sessions(env, one, ["/one/1", "/one/2"]) == ["full", "resumed"]
    assert _sessions(env, two, ["/two/1", "/two/2"]) == ["full", "resumed"]
    assert not _offered(two, "/two/1"), two.describe()


# ------------------------------------------------------------ switched off

@pytest.mark.parametrize("where", ["vhost", "location"])
def test_reencrypt_13_008_session_reuse_off(env, backend, module_so, pki,
                                            where):
    """ReencryptSessionReuse Off: every handshake in that scope is full
    and offers nothing; in a <Location> it leaves the rest resuming."""
    be = backend("good")
    if where == "vhost":
        env.write_config(vhost=_vhost(
            env, be, "ReencryptSNI good.test", "ReencryptSessionReuse Off",
            ca=pki.ca_file))
        plan = [(f"/off/{i}", "full") for i in range(5)]
    else:
        env.write_config(vhost=_vhost(
            env, be, "ReencryptSNI good.test", ca=pki.ca_file,
            locations="""
<Location /off>
    ReencryptSessionReuse Off
</Location>
"""))
        plan = [("/on/1", "full"), ("/on/2", "resumed"),
                ("/off/1", "full"), ("/off/2", "full"), ("/on/3", "resumed")]
    env.start()
    for p, _ in plan:
        _get_ok(env, p)
    paths = [p for p, _ in plan]
    assert _sessions(env, be, paths) == [s for _, s in plan]
    assert not any(_offered(be, p) for p in paths if p.startswith("/off")), (
        be.describe())


def test_reencrypt_13_009_session_cache_none(env, backend, module_so, pki):
    """ReencryptSessionCache none: every handshake is full, none offers a
    session."""
    be = backend("good")
    env.write_config(server="ReencryptSessionCache none", vhost=_vhost(
        env, be, "ReencryptSNI good.test", ca=pki.ca_file))
    env.start()
    paths = _get_all(env, "/none/", 5)
    assert _sessions(env, be, paths) == ["full"] * 5
    assert be.offers == 0, be.describe()


# ------------------------------------------- backends that do not resume

@pytest.mark.parametrize("version", ["tls1.3", "tls1.2"])
def test_reencrypt_13_010_backend_declines_resumption(
        env, backend, module_so, pki, version):
    """A backend that cannot resume any session (new ticket keys and an
    empty session cache on every connection): each offered session is
    declined and a full handshake follows, cleanly: all 200, all full,
    no warning or error in the log."""
    kw, negotiated = VERSIONS[version]
    be = backend("good", resumption=False, **kw)
    env.write_config(vhost=_vhost(
        env, be, "ReencryptSNI good.test", ca=pki.ca_file))
    env.start()
    paths = _get_all(env, "/decline/", 10)
    assert _sessions(env, be, paths) == ["full"] * 10
    # the module did offer a session each time after the first
    assert not _offered(be, paths[0])
    assert be.offers == 9, be.describe()
    assert {c.tls_version for c in be.connections} == {negotiated}
    assert {e.result for e in _entries(env, paths)} == {"ok"}
    assert not re10_lines(env)


def test_reencrypt_13_011_backend_without_tickets(env, backend, module_so,
                                                  pki):
    """A TLS 1.3 backend that sends no session ticket: there is nothing
    to keep, every handshake is full and none offers a session."""
    be = backend("good", num_tickets=0, **TLS13)
    env.write_config(vhost=_vhost(
        env, be, "ReencryptSNI good.test", ca=pki.ca_file))
    env.start()
    paths = _get_all(env, "/noticket/", 5)
    assert _sessions(env, be, paths) == ["full"] * 5
    assert be.offers == 0, be.describe()


# ------------------------------------------------ resumed handshakes checked

def _await_utc(moment, timeout=15.0):
    """Return once the clock has passed moment (a naive UTC datetime)."""
    end = moment.replace(tzinfo=datetime.timezone.utc).timestamp()
    deadline = time.monotonic() + timeout
    while time.time() <= end:
        assert time.monotonic() < deadline, f"clock never reached {moment}"
        time.sleep(0.02)  # polling interval, bounded by the deadline


@pytest.mark.parametrize("case", [
    "expiring-within",
    "expired-modssl-expire-off",
    "expired-modssl-defaults",
])
def test_reencrypt_13_012_resumed_handshake_is_rechecked(
        env, backend, module_so, pki, case):
    """A session made while the backend's certificate passed is checked
    again before it is offered. Once the certificate expires (or enters
    the ReencryptRefuseExpiringWithin window) the session is dropped
    instead of offered, so the handshake is full and the refusal has its
    clear reason: 502, RE00010, REENCRYPT_SESSION full, no session
    offered -- whether or not mod_ssl's own expiry check (which would look
    at a resumed session's certificate before the module does) is on."""
    port = free_port()
    directives = ["ReencryptSNI good.test"]
    preamble = []
    # how long the certificate keeps passing (at least 2 s of it left
    # once the notAfter is cut to the second)
    window = datetime.timedelta(seconds=3)
    if case == "expiring-within":
        directives.append("ReencryptRefuseExpiringWithin 1h")
        life = datetime.timedelta(hours=1) + window
        reason = "expiring-within"
    else:
        life = window
        reason = "expired"
        if case == "expired-modssl-expire-off":
            preamble.append("SSLProxyCheckPeerExpire Off")
    env.write_config(loglevel="warn ssl:info", vhost=policy_vhost(
        f"https://127.0.0.1:{port}/ disablereuse=On", *directives,
        ca=pki.ca_file, preamble=preamble)
        + "\n" + session_log_directives(env))
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    env.start()
    # the certificate's life starts now, with httpd already up
    leaf = pki.fresh_leaf(f"session-recheck-{case}", "soon.test",
                          dns=("good.test",), not_after=life)
    # when it stops passing (the window is checked to the second)
    limit = pki[leaf].not_after - (life - window)
    be = backend(leaf, port=port)
    before = [env.get(p) for p in ("/before/1", "/before/2")]
    assert datetime.datetime.utcnow() < limit, (
        "the machine is too slow: the certificate left the window before "
        "the first two requests were done")
    for p, r in zip(("/before/1", "/before/2"), before):
        assert r.status == 200, (r, env.error_log())
        assert r.text == f"backend-ok {p}\n", r.text[:300]
    assert _sessions(env, be, ["/before/1", "/before/2"]) == [
        "full", "resumed"]

    _await_utc(limit + datetime.timedelta(seconds=1))
    r = env.get("/after/1")
    assert r.status == 502, (r, be.describe(), env.error_log())
    be.wait_settled()
    c = be.connections[-1]
    [e] = _entries(env, ["/after/1"])
    assert (e.status, e.result) == (502, f"refused:{reason}"), e
    assert e.session == "full", e
    assert not c.session_offered and c.handshake_ok is False, (
        be.describe())
    assert c.data == b"", be.describe()
    lines = re10_lines(env)
    assert len(lines) == 1, env.error_log()
    m = RE10_RE.search(lines[0].rest)
    assert m and m.group("reason") == reason, lines[0].raw
    assert m.group("backend") == f"127.0.0.1:{port}", lines[0].raw

    # the session was dropped: a full handshake, refused in the handshake
    r = env.get("/after/2")
    assert r.status == 502, (r, be.describe(), env.error_log())
    be.wait_settled()
    c = be.connections[-1]
    assert c.handshake_ok is False and not c.session_offered, be.describe()
    [e] = _entries(env, ["/after/2"])
    assert (e.status, e.session, e.result) == (
        502, "full", f"refused:{reason}"), e
    assert len(re10_lines(env)) == 2, env.error_log()


# ------------------------------------------------------------ configuration

@pytest.mark.parametrize("cache", [
    "memcache:127.0.0.1:11211",
    None,
], ids=["memcache", "default-shmcb"])
def test_reencrypt_13_013_socache_provider_not_loaded(env, module_so, pki,
                                                      cache):
    """A session cache whose socache module is not loaded keeps the
    server from starting: `apache2 -k start` fails, naming the LoadModule
    line to add, and no server runs."""
    vhost = policy_vhost("https://127.0.0.1:9/", "ReencryptSNI good.test",
                         ca=pki.ca_file)
    if cache is None:
        # the default cache is shmcb: leave mod_socache_shmcb out
        env.write_config(
            modules=["authz_core", "ssl", "proxy", "proxy_http"],
            vhost=vhost)
        assert "socache_shmcb" not in env.conf_text
        shown, name = "shmcb", "shmcb"
    else:
        env.write_config(server=f"ReencryptSessionCache {cache}",
                         vhost=vhost)
        shown, name = cache, cache.split(":")[0]
    env.expect_log("RE00021", "AH00020")
    rc, out = env.start(check=False, wait_timeout=2.0)
    message = (f"RE00021: ReencryptSessionCache {shown}: no socache "
               f"provider '{name}' is loaded: add 'LoadModule "
               f"socache_{name}_module modules/mod_socache_{name}.so'")
    assert message in out, out
    assert rc != 0, (
        f"apache2 -k start exited 0 although the server stopped at once "
        f"(the error is logged only after it detached):\n{out}")
    assert not env.running


# ------------------------------------------------------------ cache daemons

CACHE_DAEMONS = {
    # kind: (executable, Debian package, socache module)
    "memcache": ("memcached", "memcached", "socache_memcache"),
    "redis": ("redis-server", "redis-server", "socache_redis"),
}


class CacheDaemon:
    """A memcached or redis-server of the test's own, on loopback."""

    def __init__(self, kind, workdir):
        exe_name, package, self.module = CACHE_DAEMONS[kind]
        exe = shutil.which(exe_name) or (
            f"/usr/bin/{exe_name}"
            if os.path.exists(f"/usr/bin/{exe_name}") else None)
        assert exe, (f"{exe_name} is not installed (Debian package "
                     f"{package}); the session-sharing tests need it")
        self.kind = kind
        self.port = free_port()
        self.log_file = os.path.join(workdir, f"{exe_name}.log")
        if kind == "memcache":
            cmd = [exe, "-U", "0", "-l", "127.0.0.1", "-p", str(self.port)]
            if os.geteuid() == 0:
                cmd += ["-u", "nobody"]
        else:
            cmd = [exe, "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--dir", workdir,
                   "--daemonize", "no"]
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log,
                                         stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        try:
            wait_port(self.port, timeout=10.0)
        except AssertionError as e:
            self.stop()
            raise AssertionError(
                f"{' '.join(cmd)} did not start ({e}); exit code "
                f"{self.proc.returncode}; its output:\n{self.output()}")
        assert self.proc.poll() is None, self.output()

    def server_directives(self, unsealed_env=None):
        """LoadModule of the socache provider + ReencryptSessionCache;
        with unsealed_env, also 'ReencryptSessionCacheKey none' (the
        cache is trusted unsealed, and that server says so: RE00034).
        Without, the caller adds ReencryptSessionCacheKey."""
        out = (f'LoadModule {self.module}_module '
               f'"{MODULES_DIR}/mod_{self.module}.so"\n'
               f"ReencryptSessionCache {self.kind}:127.0.0.1:{self.port}")
        if unsealed_env is not None:
            unsealed_env.expect_log("RE00034")
            out += "\nReencryptSessionCacheKey none"
        return out

    def output(self):
        try:
            with open(self.log_file, encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def cache_daemon(tmp_path):
    """factory: cache_daemon("memcache" | "redis") starts one, stopped
    after the test."""
    def make(kind):
        workdir = tmp_path / kind
        workdir.mkdir()
        os.chmod(workdir, 0o777)
        return CacheDaemon(kind, str(workdir))

    yield from stopped_after(make)


# ------------------------------------------------------- children of one

@pytest.mark.parametrize("version", ["tls1.3", "tls1.2"])
def test_reencrypt_13_020_children_resume_each_others_sessions(
        env, backend, module_so, pki, version):
    """Two child processes share the shmcb cache: after one full
    handshake in child A, child B's handshakes resume sessions it never
    made itself."""
    kw, _ = VERSIONS[version]
    be = backend("good", **kw)
    env.write_config(processes=2, loglevel="warn reencrypt:debug",
                     vhost=_vhost(env, be, "ReencryptSNI good.test",
                                  ca=pki.ca_file))
    env.start()
    _get_ok(env, "/first")
    paths = ["/first"]
    # concurrent bursts until both children handled a handshake
    for burst in range(25):
        batch = [f"/burst{burst}/{i}" for i in range(8)]
        with ThreadPoolExecutor(len(batch)) as pool:
            list(pool.map(lambda p: _get_ok(env, p), batch))
        paths += batch
        if len({m.group("pid") for m in re14_matches(env)}) >= 2:
            break
    m14 = re14_matches(env)
    pids = {m.group("pid") for m in m14}
    assert len(pids) == 2, (
        f"{len(paths)} requests were all handled by child(ren) {pids}:\n"
        + env.error_log())

    sessions = _sessions(env, be, paths)
    assert sessions.count("full") == 1 and sessions[0] == "full", (
        sessions, be.describe())
    assert be.full == 1 and be.resumed == len(paths) - 1, be.describe()
    full = [m for m in m14 if not m.group("resumed")]
    assert len(full) == 1, env.error_log()
    pid_a = full[0].group("pid")
    (pid_b,) = pids - {pid_a}
    in_b = [m for m in m14 if m.group("pid") == pid_b]
    assert in_b and all(m.group("resumed") for m in in_b), env.error_log()
    # the access log names the same two children
    entries = _entries(env, paths)
    assert {str(e.pid) for e in entries} == pids
    assert {e.session for e in entries if str(e.pid) == pid_b} == {
        "resumed"}


# --------------------------------------------------------- several servers

@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
@pytest.mark.parametrize("kind", ["memcache", "redis"])
def test_reencrypt_13_021_servers_share_sessions(
        make_env, backend, module_so, pki, cache_daemon, kind, sealed):
    """Two servers with one external cache: server A makes the only full
    handshake, server B's very first handshake resumes A's session; the
    same when both seal the cache with one ReencryptSessionCacheKey."""
    daemon = cache_daemon(kind)
    be = backend("good")
    a, b = make_env("a"), make_env("b")
    for e in (a, b):
        if sealed:
            server = (daemon.server_directives()
                      + f'\nReencryptSessionCacheKey "{_key_file(e, KEY_1)}"')
        else:
            server = daemon.server_directives(e)
        e.write_config(loglevel="warn reencrypt:debug", server=server,
                       vhost=_vhost(e, be, "ReencryptSNI good.test",
                                    ca=pki.ca_file))
        e.start()
    on_a, on_b = _two_on_each(a, b, be)
    assert on_a == ["full", "resumed"]
    assert on_b == ["resumed", "resumed"]
    assert be.full == 1 and be.resumed == 3, be.describe()
    assert [bool(m.group("resumed")) for m in re14_matches(b)] == [
        True, True], b.error_log()
    assert daemon.proc.poll() is None, daemon.output()
    assert any("RE00024" in ln.rest and "sealed (ReencryptSessionCacheKey)"
               in ln.rest for ln in a.log_lines()) == sealed, a.error_log()


@pytest.mark.parametrize("change", ["pin", "anchors-path", "verify-name"])
def test_reencrypt_13_022_servers_with_other_policies_do_not_share(
        make_env, backend, module_so, pki, cache_daemon, change):
    """Two servers, one memcached, the same backend and SNI, but policies
    that differ in one directive (both pass): server B's first handshake
    is full and offers no session."""
    daemon = cache_daemon("memcache")
    be = backend("good")
    a, b = make_env("a"), make_env("b")
    base = {"pin": [pki.pin("good"), pki.pin("good-next")],
            "name": "good.test", "ca": pki.ca_file}
    other = dict(base)
    if change == "pin":
        other["pin"] = [pki.pin("good"), pki.pin("good-ec")]
    elif change == "verify-name":
        other["name"] = "backend.test"
    else:
        # the same anchor, from another file
        copy = os.path.join(b.root, "conf", "anchors.pem")
        shutil.copyfile(pki.ca_file, copy)
        os.chmod(copy, 0o644)
        other["ca"] = copy
    for e, pol in ((a, base), (b, other)):
        e.write_config(server=daemon.server_directives(e), vhost=_vhost(
            e, be, "ReencryptSNI good.test",
            f"ReencryptVerifyName {pol['name']}",
            "ReencryptPin " + " ".join(pol["pin"]), ca=pol["ca"]))
        e.start()
    on_a, on_b = _two_on_each(a, b, be)
    assert on_a == ["full", "resumed"]
    assert on_b == ["full", "resumed"]
    assert not _offered(be, "/b/1"), be.describe()


# -------------------------------------------------------- graceful restart

@pytest.mark.parametrize("change,cache,expected", [
    ("unchanged", "memcache", "resumed"),
    ("pin", "memcache", "full"),
    ("anchors-content", "memcache", "full"),
    # shmcb lives in the server's configuration pool, as mod_ssl's own
    # SSLSessionCache does: a restart starts it empty (documented)
    ("unchanged", "shmcb", "full"),
])
def test_reencrypt_13_023_graceful_restart(
        env, backend, module_so, pki, cache_daemon, change, cache,
        expected):
    """After `apache2 -k graceful` the new generation of children resumes
    the sessions of the old one from a shared cache (memcache) if the
    policy is the same; a changed pin, or new content in the anchors file
    at the same path, makes the first handshake full (and offers no
    session). The default shmcb cache starts empty after a restart."""
    be = backend("good")
    anchors = os.path.join(env.root, "conf", "anchors.pem")
    shutil.copyfile(pki.ca_file, anchors)
    os.chmod(anchors, 0o644)
    server = (cache_daemon(cache).server_directives(env)
              if cache != "shmcb" else "")
    pins = [pki.pin("good"), pki.pin("good-next")]

    def config():
        env.write_config(server=server, vhost=_vhost(
            env, be, "ReencryptSNI good.test",
            "ReencryptPin " + " ".join(pins), ca=anchors))

    config()
    env.start()
    for p in ("/before/1", "/before/2"):
        _get_ok(env, p)
    assert _sessions(env, be, ["/before/1", "/before/2"]) == [
        "full", "resumed"]
    old_children = set(env.children())

    if change == "pin":
        pins = [pki.pin("good"), pki.pin("good-ec")]
    elif change == "anchors-content":
        # still trusts the backend's root, but is another file now
        with open(anchors, "ab") as out, open(pki.other_ca_file, "rb") as f:
            out.write(f.read())
    config()
    env.graceful()
    for p in ("/after/1", "/after/2"):
        _get_ok(env, p)
    entries = _entries(env, ["/after/1", "/after/2"])
    assert not {e.pid for e in entries} & old_children, entries
    after = _sessions(env, be, ["/after/1", "/after/2"])
    assert after == [expected, "resumed"], (
        f"after the graceful restart ({change} policy, {cache} cache): "
        f"{after}, expected the first to be {expected}:\n{be.describe()}")
    assert bool(_offered(be, "/after/1")) == (expected == "resumed"), (
        be.describe())


# ------------------------------------------------------ virtual hosts apart

def test_reencrypt_13_030_virtual_hosts_keep_their_sessions(
        env, backend, module_so, pki):
    """Two virtual hosts proxy to the same backend with the same SNI and
    policy. Each has its own TLS client context (mod_ssl gives every
    connection its virtual host's session context, and a virtual host may
    present its own client certificate), so each makes its own first,
    full handshake and then resumes its own sessions -- never the other's,
    and never a failed handshake (a session offered across contexts is
    refused by OpenSSL: a 500 for the client)."""
    be = backend("good")
    vhost = _vhost(env, be, "ReencryptSNI good.test", ca=pki.ca_file)
    second = "\n".join([
        f"<VirtualHost 127.0.0.1:{env.port}>",
        "    ServerName two.test",
        "    SSLEngine on",
        f'    SSLCertificateFile "{pki.chain("frontend")}"',
        f'    SSLCertificateKeyFile "{pki.key("frontend")}"',
        *("    " + line for line in vhost.splitlines()),
        "</VirtualHost>",
    ])
    env.write_config(vhost=vhost, server=second)
    # the frontend's test certificate does not name two.test
    env.expect_log("AH01909")
    env.start()
    _get_ok(env, "/one/1")
    _get_ok(env, "/one/2")
    _get_ok(env, "/two/1", host="two.test")
    _get_ok(env, "/two/2", host="two.test")
    _get_ok(env, "/one/3")
    assert _sessions(env, be, ["/one/1", "/one/2", "/two/1", "/two/2",
                               "/one/3"]) == [
        "full", "resumed", "full", "resumed", "resumed"]
    assert not _offered(be, "/two/1"), be.describe()


# ------------------------------------------- sealed cache (CacheKey)

KEY_1 = base64.b64encode(bytes(range(32))).decode()
KEY_2 = base64.b64encode(bytes(range(32, 64))).decode()


def _key_file(env, *keys):
    """A key file of ReencryptSessionCacheKey (mode 600) in env's conf."""
    path = os.path.join(env.root, "conf", "session.key")
    with open(path, "w") as f:
        f.write("# keys of the session cache\n" + "\n".join(keys) + "\n")
    os.chmod(path, 0o600)
    return path


def _keyed_server(env, daemon, be, pki, *keys):
    """Configure env for daemon's cache, sealed with keys (none: not
    sealed), proxying to be under a plain policy."""
    if keys:
        server = (daemon.server_directives()
                  + f'\nReencryptSessionCacheKey "{_key_file(env, *keys)}"')
    else:
        server = daemon.server_directives(env)
    env.write_config(server=server, vhost=_vhost(
        env, be, "ReencryptSNI good.test", ca=pki.ca_file))


def mc_talk(sock, cmd, end):
    """Send one memcached text-protocol command; read until end (5 s at
    most)."""
    sock.sendall(cmd)
    data = b""
    deadline = time.monotonic() + 5
    while not data.endswith(end) and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _memcached_values(daemon):
    """Every value held by the test's memcached (lru_crawler metadump,
    then get), as bytes."""
    talk = mc_talk

    with socket.create_connection(("127.0.0.1", daemon.port),
                                  timeout=5) as s:
        dump = talk(s, b"lru_crawler metadump all\r\n", b"END\r\n")
        keys = [urllib.parse.unquote(m.group(1).decode())
                for m in re.finditer(rb"key=(\S+)", dump)]
        values = []
        for k in keys:
            reply = talk(s, f"get {k}\r\n".encode(), b"END\r\n")
            head, _, rest = reply.partition(b"\r\n")
            if head.startswith(b"VALUE"):
                size = int(head.split()[3])
                values.append(rest[:size])
        return values


def test_reencrypt_13_041_sealed_entries_show_nothing(
        make_env, backend, module_so, pki, cache_daemon):
    """What memcached holds: without a key the session and the backend's
    certificate are readable in the entry; with a key the entry is
    sealed (RSE1) and neither shows."""
    be = backend("good")
    cn = b"good.test"
    seen = {}
    daemon = cache_daemon("memcache")
    for keyed in (False, True):
        with socket.create_connection(("127.0.0.1", daemon.port),
                                      timeout=5) as s:
            s.sendall(b"flush_all\r\n")
            assert s.recv(100) == b"OK\r\n"
        e = make_env("keyed" if keyed else "plain")
        _keyed_server(e, daemon, be, pki, *([KEY_1] if keyed else []))
        e.start()
        _get_ok(e, "/one")
        values = _memcached_values(daemon)
        assert len(values) == 1, values
        seen[keyed] = values[0]
        e.stop()
    assert seen[False].startswith(b"RES3") and cn in seen[False]
    assert seen[True].startswith(b"RSE1"), seen[True][:8]
    assert cn not in seen[True] and b"RES3" not in seen[True]


@pytest.mark.parametrize("writer", ["other-key", "no-key"])
def test_reencrypt_13_042_entry_without_our_key_is_not_used(
        make_env, backend, module_so, pki, cache_daemon, writer):
    """An entry for the very same cache key that is not sealed under our
    key -- written by a server with another key, or planted by one
    without any -- is never offered: server B makes a full, verified
    handshake and goes on resuming its own sessions."""
    daemon = cache_daemon("memcache")
    be = backend("good")
    a, b = make_env("a"), make_env("b")
    _keyed_server(a, daemon, be, pki,
                  *([KEY_2] if writer == "other-key" else []))
    _keyed_server(b, daemon, be, pki, KEY_1)
    for e in (a, b):
        e.start()
    for p in ("/a/1", "/a/2"):
        _get_ok(a, p)
    assert _sessions(a, be, ["/a/1", "/a/2"]) == ["full", "resumed"]
    assert len(_memcached_values(daemon)) == 1
    for p in ("/b/1", "/b/2"):
        _get_ok(b, p)
    assert not _offered(be, "/b/1"), be.describe()
    assert _sessions(b, be, ["/b/1", "/b/2"]) == ["full", "resumed"]
    assert be.full == 2 and be.resumed == 2, be.describe()


def test_reencrypt_13_043_key_rotation(make_env, backend, module_so, pki,
                                       cache_daemon):
    """Rotation: server B has a new key first and the old one below it;
    it resumes the session server A sealed under the old key, and the
    sessions it writes itself are sealed under the new one, which A (old
    key only) cannot use."""
    daemon = cache_daemon("memcache")
    be = backend("good")
    a, b = make_env("a"), make_env("b")
    _keyed_server(a, daemon, be, pki, KEY_1)
    _keyed_server(b, daemon, be, pki, KEY_2, KEY_1)
    for e in (a, b):
        e.start()
    _get_ok(a, "/a/1")
    _get_ok(b, "/b/1")
    assert _sessions(a, be, ["/a/1"]) == ["full"]
    assert _sessions(b, be, ["/b/1"]) == ["resumed"]
    # B stored its new session sealed under KEY_2: A, which holds KEY_1
    # only and keeps no copy of its own after a restart, cannot open it
    a.stop()
    a.start()
    _get_ok(a, "/a/2")
    assert _sessions(a, be, ["/a/2"]) == ["full"]
    assert not _offered(be, "/a/2"), be.describe()
