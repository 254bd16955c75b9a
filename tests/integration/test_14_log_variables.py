"""Per-request variables for access logs.

  REENCRYPT_RESULT          ok | refused:<reason> | report:<reason>
  REENCRYPT_PEER_PIN        sha256//... of the key the backend presented
  REENCRYPT_PEER_NOT_AFTER  the backend certificate's notAfter,
                            YYYY-MM-DDTHH:MM:SSZ

logged with
  LogFormat "%U %{REENCRYPT_RESULT}e %{REENCRYPT_PEER_PIN}e
             %{REENCRYPT_PEER_NOT_AFTER}e" re
A request riding a pooled (keep-alive) backend connection carries the
values of that connection's handshake.
"""

from checks import (access_log_directives, asn1_time, assert_refused,
                    policy_head, policy_vhost, re18_lines)


def _line(pki, path, result, leaf):
    return (f"{path} {result} {pki.pin(leaf)} "
            f"{asn1_time(pki[leaf].not_after)}")


def _get(env, path, status=200):
    r = env.get(path)
    assert r.status == status, (r, env.error_log())
    return r


def test_reencrypt_14_001_new_connection(env, backend, module_so, pki):
    be = backend("good")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI good.test", ca=pki.ca_file) + "\n"
        + access_log_directives(env))
    env.start()
    _get(env, "/fresh")
    assert env.access_lines(1) == [_line(pki, "/fresh", "ok", "good")]


def test_reencrypt_14_002_reused_keepalive_connections(env, backend,
                                                       module_so, pki):
    """Two backends (RSA and ECDSA keys), one pooled connection each, one
    child process; requests alternate between them.  Only the first
    request to each backend has a handshake; every line carries the pin
    and notAfter of the connection that served it."""
    rsa = backend("good")
    ec = backend("good-ec")
    env.write_config(vhost=f"""
{policy_head(pki.ca_file)}
ProxyPass /rsa/ {rsa.url_ip} keepalive=On
ProxyPass /ec/ {ec.url_ip} keepalive=On
{access_log_directives(env)}
""")
    env.start()
    paths = []
    for i in range(4):
        for prefix in ("/rsa/", "/ec/"):
            paths.append(f"{prefix}{i}")
            _get(env, paths[-1])
    # one TLS connection per backend carried all its requests
    assert rsa.accepted == 1 and ec.accepted == 1, (rsa.describe(),
                                                    ec.describe())
    assert rsa.connections[0].requests == [("GET", f"/{i}")
                                           for i in range(4)]
    assert ec.connections[0].requests == [("GET", f"/{i}")
                                          for i in range(4)]
    want = [_line(pki, p, "ok", "good" if p.startswith("/rsa/")
                  else "good-ec") for p in paths]
    assert env.access_lines(len(paths)) == want


def test_reencrypt_14_003_new_connections_each_request(env, backend,
                                                       module_so, pki):
    """Backend connections not reused (every request opens one, whether
    its TLS session is new or resumed): the values are on every line."""
    be = backend("good-ed25519")
    env.write_config(vhost=policy_vhost(
        be.url_ip + " disablereuse=On", "ReencryptSNI good.test",
        ca=pki.ca_file) + "\n" + access_log_directives(env))
    env.start()
    for i in range(5):
        _get(env, f"/n{i}")
    assert be.accepted == 5, be.describe()
    assert env.access_lines(5) == [
        _line(pki, f"/n{i}", "ok", "good-ed25519") for i in range(5)]


def test_reencrypt_14_004_refused_pin_mismatch(env, backend, module_so,
                                               pki):
    be = backend("good-ec")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI good.test",
        f"ReencryptPin {pki.pin('other-root')} {pki.pin('wild')}",
        ca=pki.ca_file) + "\n" + access_log_directives(env))
    env.start()
    assert_refused(env, be, "pin-mismatch", path="/refused")
    assert env.access_lines(1) == [
        _line(pki, "/refused", "refused:pin-mismatch", "good-ec")]


def test_reencrypt_14_005_refused_untrusted_chain(env, backend, module_so,
                                                  pki):
    be = backend("other-ca")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI good.test", ca=pki.ca_file) + "\n"
        + access_log_directives(env))
    env.start()
    assert_refused(env, be, "untrusted-chain", path="/untrusted")
    assert env.access_lines(1) == [
        _line(pki, "/untrusted", "refused:untrusted-chain", "other-ca")]


def test_reencrypt_14_006_report_on_reused_connection(env, backend,
                                                      module_so, pki):
    """Report mode, one pooled backend connection: one RE00018 line for
    its one handshake, and report:pin-mismatch on every request it
    carried."""
    be = backend("good")
    env.write_config(vhost=policy_vhost(
        be.url_ip + " keepalive=On", "ReencryptMode Report",
        "ReencryptSNI good.test",
        f"ReencryptPin {pki.pin('other-root')} {pki.pin('wild')}",
        ca=pki.ca_file) + "\n" + access_log_directives(env))
    env.expect_log("RE00018")
    env.expect_log("RE00035")   # SSLProxyCheckPeerExpire is on
    env.start()
    for i in range(3):
        _get(env, f"/rep{i}")
    assert be.accepted == 1, be.describe()
    assert env.access_lines(3) == [
        _line(pki, f"/rep{i}", "report:pin-mismatch", "good")
        for i in range(3)]
    assert len(re18_lines(env)) == 1, env.error_log()


def test_reencrypt_14_007_self_signed_pin_only(env, backend, module_so, pki):
    be = backend("self-signed")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI self.test", "ReencryptTrust PinOnly",
        f"ReencryptPin {pki.pin('self-signed')} {pki.pin('other-root')}")
        + "\n" + access_log_directives(env))
    env.start()
    _get(env, "/self")
    assert env.access_lines(1) == [_line(pki, "/self", "ok", "self-signed")]
