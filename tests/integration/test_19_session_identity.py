"""Whose session is resumed: client identity, and what a shared cache holds.

A resumed TLS session carries the client certificate of the full handshake
that made it: the client does not send it again, and the backend sees the
client of that first handshake.  mod_ssl lets `SSLProxyMachineCertificate*`
differ per virtual host and per `<Proxy>` section (each gets a TLS client
context of its own), so a session, or a pooled connection, must never go
from one client identity to another, even under one policy.  The backend
here asks for a client certificate (optional) and records per connection
the commonName of the one the TLS session carries, or None.

A session cache others can reach (memcache, redis) holds what the proxies
resume: it must be sealed with `ReencryptSessionCacheKey` unless
`ReencryptSessionCacheKey none` says to trust it (warned at every start);
an entry past its `ReencryptSessionTimeout` is never offered, even written
back into the cache, nor one with bytes after its end; a copy a server
keeps of another's entry ends when the entry does.

Sessions are counted as in test_13_sessions.py: by the backend (offered,
resumed) and by the frontend (REENCRYPT_SESSION in the access log), with
`disablereuse=On` so that every request is a backend handshake.  Timeouts
are real time: the tests wait (polling the clock) until one has passed.
"""

import socket
import time
import urllib.parse

import pytest

from checks import policy_vhost, session_log_directives
from httpd import MODULES_DIR
import test_13_sessions
from test_13_sessions import (KEY_1, VERSIONS, _carrier, _get_ok, _key_file,
                              _offered, _sessions, _vhost, mc_talk)

# the memcached / redis-server fixture of the session tests
cache_daemon = test_13_sessions.cache_daemon

ADMIN, PUBLIC = "admin.client.test", "public.client.test"
# scope -> client certificate of pki.py it presents (None: none)
SCOPES = {"admin": "admin-client", "public": "public-client", "anon": None}
EXPECTED_CN = {"admin": ADMIN, "public": PUBLIC, "anon": None}

# mod_ssl's warning for a scope without a client certificate when the
# backend asks for one (level warn): the /anon/ scope
NO_CLIENT_CERT = "AH02268"

# a timeout long enough for memcached to keep the entry a while: the
# socache provider gives memcached whole seconds (3 s is stored for 2 s),
# and memcached drops an entry of 1 s at its next clock tick
TIMEOUT = 3


def _client_backend(backend, pki, version="tls1.3"):
    """The "good" backend asking for an optional client certificate
    issued by the Test Root CA."""
    kw, _ = VERSIONS[version]
    return backend("good", client_ca=pki.ca_file, **kw)


def _proxy_cert(pki, name):
    return f'SSLProxyMachineCertificateFile "{pki.client_pem(name)}"'


def _cn_mismatches(be, expected):
    """(path, expected CN, CN the backend saw, resumed) for every path of
    expected ({path: CN}) whose connection carried another client."""
    be.wait_settled()
    out = []
    for path, cn in expected.items():
        c = _carrier(be, path)
        if c.client_cn != cn:
            out.append((path, cn, c.client_cn,
                        "resumed" if c.session_reused else "full"))
    return out


def _await_time(moment, timeout=15.0):
    """Return once time.time() has passed moment."""
    deadline = time.monotonic() + timeout
    while time.time() <= moment:
        assert time.monotonic() < deadline, "the clock never got there"
        time.sleep(0.05)  # polling interval, bounded by the deadline


# ------------------------------------------------------ memcached access

_mc_talk = mc_talk


def _mc_items(daemon):
    """{key: value} of every item the test's memcached holds."""
    with socket.create_connection(("127.0.0.1", daemon.port),
                                  timeout=5) as s:
        dump = _mc_talk(s, b"lru_crawler metadump all\r\n", b"END\r\n")
        keys = [urllib.parse.unquote(line.split(b" ")[0][4:].decode())
                for line in dump.split(b"\r\n") if line.startswith(b"key=")]
        items = {}
        for k in keys:
            reply = _mc_talk(s, f"get {k}\r\n".encode(), b"END\r\n")
            head, _, rest = reply.partition(b"\r\n")
            if head.startswith(b"VALUE"):
                items[k] = rest[:int(head.split()[3])]
        return items


def _mc_the_item(daemon):
    items = _mc_items(daemon)
    assert len(items) == 1, f"memcached holds {len(items)} items: {items}"
    return next(iter(items.items()))


def _mc_has(daemon, key):
    with socket.create_connection(("127.0.0.1", daemon.port),
                                  timeout=5) as s:
        reply = _mc_talk(s, f"get {key}\r\n".encode(), b"END\r\n")
    return reply.startswith(b"VALUE")


def _mc_set(daemon, key, value, exptime=0):
    """set key to value (exptime 0: never expires)."""
    with socket.create_connection(("127.0.0.1", daemon.port),
                                  timeout=5) as s:
        reply = _mc_talk(s, f"set {key} 0 {exptime} {len(value)}\r\n"
                         .encode() + value + b"\r\n", b"\r\n")
    assert reply == b"STORED\r\n", reply


# --------------------------------------------- client identity, one server

def _identity_vhost(env, be, pki, reuse):
    """One policy at the virtual host; /admin/, /public/ and /anon/ to the
    same backend, each its own worker; the <Proxy> sections of /admin/
    and /public/ present a client certificate each, /anon/ none."""
    url = f"https://127.0.0.1:{be.port}"
    lines = ["SSLProxyEngine On", "ReencryptEngine On",
             f'ReencryptCACertificateFile "{pki.ca_file}"',
             "ReencryptSNI good.test"]
    for scope in SCOPES:
        lines.append(f"ProxyPass /{scope}/ {url}/{scope}/ {reuse}")
    for scope, client in SCOPES.items():
        if client:
            lines += [f"<Proxy {url}/{scope}/>",
                      "    " + _proxy_cert(pki, client), "</Proxy>"]
    return "\n".join(lines) + "\n" + session_log_directives(env)


def test_reencrypt_19_000_each_scope_presents_its_client(
        env, backend, module_so, pki):
    """Harness check: without resumption (ReencryptSessionReuse Off) and
    without pooling, the backend sees each scope's own client certificate
    (or none) on every request (otherwise the tests below prove
    nothing)."""
    be = _client_backend(backend, pki)
    env.write_config(vhost=_identity_vhost(env, be, pki, "disablereuse=On")
                     + "\nReencryptSessionReuse Off")
    env.expect_log(NO_CLIENT_CERT)
    env.start()
    plan = [(f"/{scope}/{i}", scope) for i in range(2) for scope in SCOPES]
    for path, _ in plan:
        _get_ok(env, path)
    assert not _cn_mismatches(be, {p: EXPECTED_CN[s] for p, s in plan}), (
        be.describe())
    assert be.full == len(plan) and be.offers == 0, be.describe()


@pytest.mark.parametrize("version", ["tls1.3", "tls1.2"])
def test_reencrypt_19_001_session_never_changes_client_identity(
        env, backend, module_so, pki, version):
    """Three scopes of one policy to one backend: /admin/ presents the
    admin client certificate, /public/ the public one, /anon/ none
    (SSLProxyMachineCertificateFile in <Proxy> sections). 30 requests,
    alternating, each a new backend connection: the backend sees every
    request with its own scope's client (or none), never another's --
    and each scope still resumes its own sessions after its first, full
    handshake."""
    be = _client_backend(backend, pki, version)
    env.write_config(vhost=_identity_vhost(env, be, pki, "disablereuse=On"))
    env.expect_log(NO_CLIENT_CERT)
    env.start()
    plan = [(f"/{scope}/{i}", scope) for i in range(10) for scope in SCOPES]
    for path, _ in plan:
        _get_ok(env, path)

    wrong = _cn_mismatches(be, {p: EXPECTED_CN[s] for p, s in plan})
    assert not wrong, (
        f"{len(wrong)} of {len(plan)} requests reached the backend as "
        f"another client (path, expected, seen, handshake): {wrong}\n"
        + be.describe())
    sessions = dict(zip([p for p, _ in plan],
                        _sessions(env, be, [p for p, _ in plan])))
    for scope in SCOPES:
        mine = [sessions[p] for p, s in plan if s == scope]
        assert mine[0] == "full" and not _offered(be, f"/{scope}/0"), (
            scope, mine, be.describe())
        assert mine[1:].count("resumed") >= 8, (
            f"{scope}: {mine[1:].count('resumed')} of 9 handshakes after "
            f"the first resumed: {mine}\n{be.describe()}")


def test_reencrypt_19_002_pooled_connection_never_changes_client_identity(
        env, backend, module_so, pki):
    """One worker (ProxyPass /, connections pooled) and <Proxy> sections
    presenting the admin certificate under /admin/, the public one under
    /public/: a pooled connection made for one client never carries a
    request of another; within a client the pool is used."""
    be = _client_backend(backend, pki)
    url = f"https://127.0.0.1:{be.port}"
    env.write_config(vhost="\n".join([
        "SSLProxyEngine On", "ReencryptEngine On",
        f'ReencryptCACertificateFile "{pki.ca_file}"',
        "ReencryptSNI good.test",
        f"ProxyPass / {url}/",
        f"<Proxy {url}/admin/>", "    " + _proxy_cert(pki, "admin-client"),
        "</Proxy>",
        f"<Proxy {url}/public/>", "    " + _proxy_cert(pki, "public-client"),
        "</Proxy>"]))
    env.expect_log(NO_CLIENT_CERT)
    env.start()
    plan = [("/admin/1", "admin"), ("/admin/2", "admin"),
            ("/public/1", "public"), ("/public/2", "public"),
            ("/anon/1", "anon"), ("/admin/3", "admin"),
            ("/public/3", "public"), ("/anon/2", "anon")]
    for path, _ in plan:
        _get_ok(env, path)

    wrong = _cn_mismatches(be, {p: EXPECTED_CN[s] for p, s in plan})
    assert not wrong, (
        f"requests that reached the backend as another client (path, "
        f"expected, seen, handshake): {wrong}\n" + be.describe())
    # the harness: pooling works within one client
    assert _carrier(be, "/admin/1") is _carrier(be, "/admin/2"), (
        be.describe())
    for c in be.connections:
        scopes = {target.split("/")[1] for _, target in c.requests}
        assert len(scopes) <= 1, (
            f"connection #{c.id} carried requests of several clients:\n"
            + be.describe())


# ------------------------------------- client identity, servers sharing

@pytest.mark.parametrize("b_client", ["public-client", "admin-client"],
                         ids=["other-client", "same-client"])
def test_reencrypt_19_003_servers_share_sessions_only_with_same_client(
        make_env, backend, module_so, pki, cache_daemon, b_client):
    """Two servers alike (virtual host name and port as mod_ssl names
    them, policy, memcached, sealing key) but for the client certificate
    their virtual host presents: A the admin one, B the public one. B's
    requests reach the backend as the public client, never as admin: its
    first handshake is full and offers no session, then B resumes its
    own. The same client on both: B resumes A's session at once."""
    daemon = cache_daemon("memcache")
    be = _client_backend(backend, pki)
    a, b = make_env("a"), make_env("b")
    for e, client in ((a, "admin-client"), (b, b_client)):
        server = (daemon.server_directives()
                  + f'\nReencryptSessionCacheKey "{_key_file(e, KEY_1)}"')
        e.write_config(server=server, vhost=_vhost(
            e, be, "ReencryptSNI good.test", _proxy_cert(pki, client),
            ca=pki.ca_file))
        e.start()
    for p in ("/a/1", "/a/2"):
        _get_ok(a, p)
    assert _sessions(a, be, ["/a/1", "/a/2"]) == ["full", "resumed"]
    b_paths = ["/b/1", "/b/2", "/b/3"]
    for p in b_paths:
        _get_ok(b, p)

    cn = pki[b_client].cn
    wrong = _cn_mismatches(be, {p: cn for p in b_paths})
    assert not wrong, (
        f"server B's requests reached the backend as another client (path, "
        f"expected, seen, handshake): {wrong}\n" + be.describe())
    if b_client == "admin-client":
        assert _sessions(b, be, b_paths) == ["resumed"] * 3
    else:
        assert not _offered(be, "/b/1"), be.describe()
        assert _sessions(b, be, b_paths) == ["full", "resumed", "resumed"]


# ------------------------------------------------ a network cache, sealed

MEMCACHE = ("memcache:127.0.0.1:11211", "socache_memcache")
REDIS = ("redis:127.0.0.1:6379", "socache_redis")
DBM = ("dbm:run/sessions", "socache_dbm")


def _assert_timed_out_not_offered(env, be, prefix, stored, says):
    """GET prefix/2 and prefix/3 through env after the session stored at
    time stored timed out: GET prefix/2 neither offered nor resumed a
    session (else says(seconds since stored) tells what it offered)."""
    _get_ok(env, f"{prefix}/2")
    _get_ok(env, f"{prefix}/3")
    c2 = _carrier(be, f"{prefix}/2")
    assert not c2.session_offered and not c2.session_reused, (
        f"{says(time.time() - stored)}:\n{be.describe()}")


def _cache_server(*caches):
    return "\n".join(f'LoadModule {mod}_module "{MODULES_DIR}/mod_{mod}.so"'
                     for _, mod in caches)


@pytest.mark.parametrize("cache", [MEMCACHE, REDIS],
                         ids=["memcache", "redis"])
def test_reencrypt_19_010_network_cache_without_key_refused(
        env, module_so, pki, cache):
    """A session cache on the network (even on loopback) without
    ReencryptSessionCacheKey, under a policy: apachectl -t fails with an
    RE00033 line naming the cache and ReencryptSessionCacheKey."""
    spec, _ = cache
    env.write_config(
        server=_cache_server(cache) + f"\nReencryptSessionCache {spec}",
        vhost=policy_vhost("https://127.0.0.1:9/", "ReencryptSNI good.test",
                           ca=pki.ca_file))
    rc, out = env.configtest()
    lines = [ln for ln in out.splitlines() if "RE00033" in ln]
    assert rc != 0 and lines, (
        f"apache2 -t exited {rc} with no RE00033 line:\n{out}")
    assert any(spec in ln and "ReencryptSessionCacheKey" in ln
               for ln in lines), out
    assert "Syntax OK" not in out, out


@pytest.mark.parametrize("cache,policy", [
    (None, True),
    ("shmcb", True),
    ("none", True),
    (DBM, True),
    (MEMCACHE, False),
], ids=["default-shmcb", "shmcb", "cache-none", "dbm",
        "memcache-without-policy"])
def test_reencrypt_19_011_caches_that_need_no_key(env, module_so, pki,
                                                  cache, policy):
    """Shared memory, a dbm file, no cache at all, or a network cache that
    no policy uses: no key needed, nothing said (no RE00033, no
    RE00034)."""
    server = []
    if isinstance(cache, tuple):
        server += [_cache_server(cache), f"ReencryptSessionCache {cache[0]}"]
    elif cache:
        server.append(f"ReencryptSessionCache {cache}")
    env.write_config(server="\n".join(server), vhost=policy_vhost(
        "https://127.0.0.1:9/", "ReencryptSNI good.test", ca=pki.ca_file,
        engine="On" if policy else None))
    rc, out = env.configtest()
    assert rc == 0, out
    assert "RE00033" not in out and "RE00034" not in out, out


@pytest.mark.parametrize("kind", ["memcache", "redis"])
def test_reencrypt_19_012_unsealed_cache_warned_at_every_start(
        env, module_so, pki, cache_daemon, kind):
    """'ReencryptSessionCacheKey none': the explicit choice to trust the
    cache. apachectl -t passes and says so (RE00034); the server starts
    and logs one RE00034 warning at every start and every graceful
    restart, naming the cache and saying it is used unsealed."""
    daemon = cache_daemon(kind)
    spec = f"{kind}:127.0.0.1:{daemon.port}"
    env.write_config(
        server=daemon.server_directives() + "\nReencryptSessionCacheKey none",
        vhost=policy_vhost("https://127.0.0.1:9/", "ReencryptSNI good.test",
                           ca=pki.ca_file))
    rc, out = env.configtest()
    assert rc == 0, out
    assert "RE00034" in out, out
    env.expect_log("RE00034")
    env.start()
    env.wait_log("RE00034")
    for starts in (1, 2, 3):
        if starts > 1:
            env.graceful()
        lines = env.lines_with("RE00034")
        assert len(lines) == starts, (
            f"{len(lines)} RE00034 lines after {starts} start(s):\n"
            + env.error_log())
    for ln in lines:
        assert ln.level == "warn", ln.raw
        assert spec in ln.rest and "unsealed" in ln.rest, ln.raw


# --------------------------------------------- what the shared cache holds

def test_reencrypt_19_020_replayed_entry_past_its_timeout_not_offered(
        env, backend, module_so, pki, cache_daemon):
    """A sealed entry copied from memcached and written back, without
    expiry, once its ReencryptSessionTimeout has passed (memcached
    dropped it by then): the next handshake is full and offers no
    session; the one after resumes the new session."""
    daemon = cache_daemon("memcache")
    be = backend("good")
    env.write_config(
        server=(daemon.server_directives()
                + f'\nReencryptSessionCacheKey "{_key_file(env, KEY_1)}"'),
        vhost=_vhost(env, be, "ReencryptSNI good.test",
                     f"ReencryptSessionTimeout {TIMEOUT}s", ca=pki.ca_file))
    env.start()
    _get_ok(env, "/c/1")
    stored = time.time()
    key, value = _mc_the_item(daemon)
    assert value.startswith(b"RSE1"), value[:8]

    _await_time(stored + TIMEOUT + 0.5)
    assert not _mc_has(daemon, key), "memcached kept the expired entry"
    _mc_set(daemon, key, value)
    _assert_timed_out_not_offered(
        env, be, "/c", stored,
        lambda since: f"GET /c/2, {since:.1f}s after the full handshake "
        f"(ReencryptSessionTimeout {TIMEOUT}s), offered the written-back "
        f"session")
    assert _sessions(env, be, ["/c/1", "/c/2", "/c/3"]) == [
        "full", "full", "resumed"]


def test_reencrypt_19_021_entry_with_trailing_bytes_not_offered(
        env, backend, module_so, pki, cache_daemon):
    """ReencryptSessionCacheKey none (entries unsealed): an entry with one
    byte appended is not offered, by a server that keeps no copy of its
    own (restarted): a full handshake, then resumption again. The same
    entry untouched is resumed after a restart."""
    daemon = cache_daemon("memcache")
    be = backend("good")
    env.write_config(
        server=daemon.server_directives() + "\nReencryptSessionCacheKey none",
        vhost=_vhost(env, be, "ReencryptSNI good.test", ca=pki.ca_file))
    env.expect_log("RE00034")

    def restart():
        env.stop()
        env.start()

    env.start()
    _get_ok(env, "/d/1")
    restart()
    _get_ok(env, "/d/2")        # from memcached, untouched
    key, value = _mc_the_item(daemon)
    assert value.startswith(b"RES"), value[:8]
    _mc_set(daemon, key, value + b"X", exptime=300)
    restart()
    _get_ok(env, "/d/3")
    _get_ok(env, "/d/4")
    c3 = _carrier(be, "/d/3")
    assert not c3.session_offered and not c3.session_reused, (
        f"GET /d/3 offered the session of an entry with a byte after its "
        f"end:\n{be.describe()}")
    assert _sessions(env, be, ["/d/1", "/d/2", "/d/3", "/d/4"]) == [
        "full", "resumed", "full", "resumed"]


@pytest.mark.parametrize("version", ["tls1.3", "tls1.2"])
def test_reencrypt_19_022_copy_ends_with_the_storing_scope_timeout(
        make_env, backend, module_so, pki, cache_daemon, version):
    """Servers A and B share memcached, the key and the policy; A's
    ReencryptSessionTimeout is short, B's the default (300 s). B resumes
    the session A stored, and keeps a copy; once A's timeout has passed,
    B's next handshake is full and offers no session (neither B's copy
    nor what B stored after resuming outlives the entry)."""
    kw, _ = VERSIONS[version]
    daemon = cache_daemon("memcache")
    be = backend("good", **kw)
    a, b = make_env("a"), make_env("b")
    for e, timeout in ((a, [f"ReencryptSessionTimeout {TIMEOUT}s"]),
                       (b, [])):
        e.write_config(
            server=(daemon.server_directives()
                    + f'\nReencryptSessionCacheKey "{_key_file(e, KEY_1)}"'),
            vhost=_vhost(e, be, "ReencryptSNI good.test", *timeout,
                         ca=pki.ca_file))
        e.start()
    _get_ok(a, "/a/1")
    stored = time.time()
    _get_ok(b, "/b/1")
    took = time.time() - stored
    assert _sessions(a, be, ["/a/1"]) == ["full"]
    assert _sessions(b, be, ["/b/1"]) == ["resumed"], (
        f"B did not resume A's session ({took:.2f}s after A stored it; "
        f"memcached keeps it at least {TIMEOUT - 2}s)")

    _await_time(stored + TIMEOUT + 0.5)
    _assert_timed_out_not_offered(
        b, be, "/b", stored,
        lambda since: f"B's GET /b/2, {since:.1f}s after A's full "
        f"handshake (A's ReencryptSessionTimeout {TIMEOUT}s), offered a "
        f"session")
    assert _sessions(b, be, ["/b/2", "/b/3"]) == ["full", "resumed"]


# ------------------------------- client identity, nested <Proxy> sections

def _nested_vhost(be, pki, reuse):
    """One worker to the backend; <Proxy url/> presents the admin client
    certificate; the later, narrower <Proxy url/legacy/> has a mod_ssl
    directive of its own (SSLProxyCheckPeerName Off) and no client
    certificate. mod_ssl gives that section a proxy context merged with
    the virtual host only (ssl_engine_init.c
    ssl_proxy_section_post_config) and a request under it takes that
    context whole (ssl_config_perdir_merge: proxy_post_config), so
    /legacy/ presents no client certificate, whatever <Proxy url/> says."""
    url = f"https://127.0.0.1:{be.port}"
    return "\n".join([
        "SSLProxyEngine On", "ReencryptEngine On",
        f'ReencryptCACertificateFile "{pki.ca_file}"',
        "ReencryptSNI good.test",
        f"ProxyPass / {url}/ {reuse}",
        f"<Proxy {url}/>", "    " + _proxy_cert(pki, "admin-client"),
        "</Proxy>",
        f"<Proxy {url}/legacy/>", "    SSLProxyCheckPeerName Off",
        "</Proxy>"])


def _nested_plan_mismatches(env, be, vhost):
    """Start with vhost (mod_ssl warns of /legacy/ without a client
    certificate), GET /x/ (the admin client) and /legacy/ (no client) in
    turn; returns _cn_mismatches of that plan."""
    env.write_config(vhost=vhost)
    env.expect_log(NO_CLIENT_CERT)
    env.start()
    plan = {"/x/1": ADMIN, "/legacy/1": None, "/x/2": ADMIN,
            "/legacy/2": None}
    for path in plan:
        _get_ok(env, path)
    return _cn_mismatches(be, plan)


def _assert_each_as_its_client(env, be, vhost):
    """_nested_plan_mismatches finds no request that reached the backend
    as another client."""
    wrong = _nested_plan_mismatches(env, be, vhost)
    assert not wrong, (
        f"requests that reached the backend as another client (path, "
        f"expected, seen, handshake): {wrong}\n" + be.describe())


def test_reencrypt_19_004_nested_proxy_section_presents_no_client(
        env, backend, module_so, pki):
    """Harness check of the configuration below: with neither resumption
    nor pooling, /x/ reaches the backend as the admin client and
    /legacy/ as no client (mod_ssl's AH02268 warning)."""
    be = _client_backend(backend, pki)
    wrong = _nested_plan_mismatches(
        env, be, _nested_vhost(be, pki, "disablereuse=On")
        + "\nReencryptSessionReuse Off")
    assert not wrong, be.describe()


def test_reencrypt_19_005_nested_proxy_pooled_connection_keeps_client(
        env, backend, module_so, pki):
    """Pooled connections: /legacy/ (no client certificate, as 19_004
    shows) never rides a connection that the admin client authenticated,
    nor /x/ one without a client."""
    be = _client_backend(backend, pki)
    _assert_each_as_its_client(env, be, _nested_vhost(be, pki, ""))


def test_reencrypt_19_006_nested_proxy_session_keeps_client(
        env, backend, module_so, pki):
    """Resumption (a new connection per request): /legacy/ never resumes
    a session of the admin client's handshake."""
    be = _client_backend(backend, pki)
    _assert_each_as_its_client(
        env, be, _nested_vhost(be, pki, "disablereuse=On")
        + "\n" + session_log_directives(env))
