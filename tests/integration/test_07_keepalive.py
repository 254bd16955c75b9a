"""Pooled backend connections and per-scope policies.

Two <Location>s proxy to the same backend worker (one ProxyPass, so one
connection pool) under different policies.  A request under one policy
never rides a pooled connection that was handshaked under the other: the
proxy opens a new connection and verifies it under the request's policy.
The server runs a single child process so every request shares the pool.
"""

from checks import (PROXY_HANDSHAKE_FAILURE_TAGS, RE10_RE, TWO_NAME_SCOPES,
                    re10_lines)


def _get_ok(env, path):
    r = env.get(path)
    assert r.status == 200, (r, env.error_log())
    assert r.text == f"backend-ok {path}\n"


def test_reencrypt_07_001_pool_is_reused_without_policy(env, backend):
    """Harness check: without mod_reencrypt, consecutive requests ride one
    pooled backend connection (otherwise the tests below prove nothing)."""
    be = backend("good")
    env.write_config(reencrypt=None, vhost=f"""
SSLProxyEngine On
SSLProxyCheckPeerName off
ProxyPass / {be.url_ip}
""")
    env.start()
    for p in ("/one", "/two", "/three"):
        _get_ok(env, p)
    assert be.accepted == 1, be.describe()
    assert be.connections[0].requests == [
        ("GET", "/one"), ("GET", "/two"), ("GET", "/three")]


def test_reencrypt_07_002_strict_request_never_rides_weak_connection(
        env, backend, module_so, pki):
    be = backend("good")
    env.write_config(vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ProxyPass / {be.url_ip} keepalive=On
<Location /weak>
    ReencryptVerifyName good.test
</Location>
<Location /strict>
    ReencryptVerifyName other.test
</Location>
""")
    env.start()
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)

    _get_ok(env, "/weak")
    assert be.accepted == 1

    r = env.get("/strict")
    assert r.status == 502, (r, be.describe(), env.error_log())
    be.wait_settled()
    assert b"/strict" not in be.received, (
        "the /strict request reached the backend:\n" + be.describe())
    assert all(("GET", "/strict") not in c.requests
               for c in be.connections)
    lines = re10_lines(env)
    assert len(lines) == 1, env.error_log()
    m = RE10_RE.search(lines[0].rest)
    assert m and m.group("reason") == "name-mismatch", lines[0].raw
    assert m.group("expected") == '"other.test"', lines[0].raw
    # the refused handshake happened on a connection of its own
    failed = [c for c in be.connections if c.handshake_ok is False]
    assert len(failed) == 1 and failed[0].data == b"", be.describe()

    _get_ok(env, "/weak")
    assert be.requests == [("GET", "/weak"), ("GET", "/weak")]
    assert len(re10_lines(env)) == 1


def test_reencrypt_07_003_passing_policies_do_not_share_connections(
        env, backend, module_so, pki):
    """Both policies accept the backend; still, each TLS connection only
    ever carries requests of the policy it was verified under."""
    be = backend("good")
    env.write_config(loglevel="warn reencrypt:debug", vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ProxyPass / {be.url_ip} keepalive=On""" + TWO_NAME_SCOPES)
    env.start()
    for p in ("/a/1", "/b/1", "/a/2", "/b/2"):
        _get_ok(env, p)
    be.wait_settled()
    assert be.accepted >= 2, be.describe()
    for c in be.connections:
        policies = {target.split("/")[1] for _, target in c.requests}
        assert len(policies) <= 1, (
            f"connection #{c.id} carried requests of several policies:\n"
            + be.describe())
    assert not re10_lines(env)
    env.wait_log(r"\[reencrypt:debug\] .*RE00011")
