"""ReencryptSNI: which server name the proxy sends to the backend.

  Backend  the host of the ProxyPass URL (none for an IP literal)
  Host     the client's Host header (with ProxyPreserveHost On)
  Off      no SNI at all
  <name>   that literal DNS name
The backend records the SNI of every ClientHello it receives.
"""

import pytest

from checks import assert_refused, assert_served, policy_vhost


def name_url(be):
    # a host name that resolves to the backend's address
    return f"https://localhost:{be.port}/"


@pytest.mark.parametrize("directive", ["ReencryptSNI Backend", None,
                                       "ReencryptSNI BACKEND"],
                         ids=["explicit", "default", "keyword-case"])
def test_reencrypt_05_001_backend_mode_sends_url_host(
        env, backend, module_so, pki, directive):
    be = backend("good")
    directives = [d for d in (directive,) if d]
    env.write_config(vhost=policy_vhost(
        name_url(be), *directives, "ReencryptVerifyName good.test",
        ca=pki.ca_file))
    env.start()
    assert_served(env, be, "/sni-backend", sni="localhost")


def test_reencrypt_05_002_backend_mode_verifies_sni_by_default(
        env, backend, module_so, pki):
    """Without ReencryptVerifyName the name verified is the SNI sent (here
    the URL host 'localhost', which the certificate does not carry)."""
    be = backend("good")
    env.write_config(vhost=policy_vhost(name_url(be), ca=pki.ca_file))
    env.start()
    m = assert_refused(env, be, "name-mismatch",
                       backend=f"localhost:{be.port}")
    assert m.group("expected") == '"localhost" (SNI)', m.group(0)
    assert be.snis == ["localhost"]


@pytest.mark.parametrize("host,sni", [
    ("good.test", "good.test"),
    ("backend.test", "backend.test"),
    ("good.test:8443", "good.test"),
])
def test_reencrypt_05_003_host_mode_sends_client_host(
        env, backend, module_so, pki, host, sni):
    """ReencryptSNI Host with ProxyPreserveHost On: SNI is the client's Host
    header (without port) and, by default, also the name verified."""
    be = backend("good")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI Host", ca=pki.ca_file,
        preamble=["ProxyPreserveHost On"]))
    env.start()
    assert_served(env, be, "/sni-host", host=host, sni=sni)
    assert f"Host: {host}\r\n".encode() in be.received


def test_reencrypt_05_004_host_mode_name_mismatch(env, backend, module_so,
                                                  pki):
    be = backend("good")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI host", ca=pki.ca_file,
        preamble=["ProxyPreserveHost On"]))
    env.start()
    m = assert_refused(env, be, "name-mismatch", host="other.test")
    assert m.group("expected") == '"other.test" (SNI)', m.group(0)
    assert be.snis == ["other.test"]


@pytest.mark.parametrize("keyword", ["Off", "off"])
def test_reencrypt_05_005_off_sends_no_sni(env, backend, module_so, pki,
                                           keyword):
    """With a host-name URL mod_ssl would send SNI 'localhost'; Off sends
    none."""
    be = backend("good")
    env.write_config(vhost=policy_vhost(
        name_url(be), f"ReencryptSNI {keyword}",
        "ReencryptVerifyName good.test", ca=pki.ca_file))
    env.start()
    assert_served(env, be, "/sni-off", sni=None)


def test_reencrypt_05_006_off_verifies_url_host(env, backend, module_so,
                                                pki):
    """With no SNI and no ReencryptVerifyName the URL host is verified."""
    be = backend("good")
    env.write_config(vhost=policy_vhost(
        name_url(be), "ReencryptSNI Off", ca=pki.ca_file))
    env.start()
    m = assert_refused(env, be, "name-mismatch",
                       backend=f"localhost:{be.port}")
    assert m.group("expected") == '"localhost"', m.group(0)
    assert be.snis == [None]


def test_reencrypt_05_007_literal_name(env, backend, module_so, pki):
    """A literal name replaces the URL host (here 'localhost')."""
    be = backend("good")
    env.write_config(vhost=policy_vhost(
        name_url(be), "ReencryptSNI backend.test", ca=pki.ca_file))
    env.start()
    assert_served(env, be, "/sni-literal", sni="backend.test")


def test_reencrypt_05_008_literal_name_overrides_preserved_host(
        env, backend, module_so, pki):
    """With ProxyPreserveHost On mod_ssl would send the client's Host as
    SNI; a literal ReencryptSNI wins."""
    be = backend("good")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI good.test", ca=pki.ca_file,
        preamble=["ProxyPreserveHost On"]))
    env.start()
    assert_served(env, be, "/sni-literal-preserve", host="backend.test",
                  sni="good.test")


def test_reencrypt_05_009_backend_mode_ignores_preserved_host(
        env, backend, module_so, pki):
    """Backend mode sends the URL host even with ProxyPreserveHost On
    (where mod_ssl alone would send the client's Host)."""
    be = backend("good")
    env.write_config(vhost=policy_vhost(
        name_url(be), "ReencryptVerifyName good.test", ca=pki.ca_file,
        preamble=["ProxyPreserveHost On"]))
    env.start()
    assert_served(env, be, "/sni-backend-preserve", host="backend.test",
                  sni="localhost")
