"""The stock re-encryption configuration and the gap mod_reencrypt closes.

The usual recipe for re-encrypting to an https backend is

    SSLProxyEngine On
    ProxyPreserveHost On
    ProxyPass / https://127.0.0.1:8443/

With mod_ssl's defaults (SSLProxyVerify none) the proxy accepts a backend
certificate issued by any CA at all.  With ReencryptEngine On and a trust
anchor the same backend is refused.
"""

from checks import assert_refused, assert_served

ARTICLE = """
SSLProxyEngine On
ProxyPreserveHost On
ProxyPass / https://127.0.0.1:{port}/
"""


def test_reencrypt_04_001_stock_config_serves_untrusted_backend(env, backend):
    """Without mod_reencrypt (not even loaded), a backend whose certificate
    comes from an unknown CA is served: this is the gap."""
    be = backend("other-ca")
    env.write_config(vhost=ARTICLE.format(port=be.port), reencrypt=None)
    env.start()
    r = env.get("/article", host="good.test")
    assert r.status == 200
    assert r.text == "backend-ok /article\n"
    be.wait_settled()
    assert be.handshakes_ok == 1
    assert b"GET /article HTTP/1.1\r\n" in be.received


def test_reencrypt_04_002_module_loaded_but_off_changes_nothing(
        env, backend, module_so):
    """Loading mod_reencrypt alone does not change the stock behaviour:
    ReencryptEngine defaults to Off."""
    be = backend("other-ca")
    env.write_config(vhost=ARTICLE.format(port=be.port))
    env.start()
    r = env.get("/article", host="good.test")
    assert r.status == 200
    assert r.text == "backend-ok /article\n"
    assert b"GET /article HTTP/1.1\r\n" in be.received


def test_reencrypt_04_003_policy_refuses_untrusted_backend(
        env, backend, module_so, pki):
    """The article's configuration plus ReencryptEngine On and the test
    root as trust anchor: the other-CA backend is refused with 502 before
    any request byte reaches it."""
    be = backend("other-ca")
    env.write_config(vhost=ARTICLE.format(port=be.port) + f"""
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
""")
    env.start()
    m = assert_refused(env, be, "untrusted-chain", path="/article",
                       host="good.test")
    assert m.group(0) == (
        f"RE00010: backend 127.0.0.1:{be.port} refused: untrusted-chain; "
        f"expected a chain to the trust anchor in {pki.ca_file}; "
        f"seen CN=good.test issued by CN=Other Root CA "
        f"(unable to get local issuer certificate)")


def test_reencrypt_04_004_policy_serves_trusted_backend(
        env, backend, module_so, pki):
    """Same configuration, backend with a certificate from the test CA (via
    the intermediate), SNI taken from the preserved Host header as mod_ssl
    would do: served, and the name verified is that SNI."""
    be = backend("good")
    env.write_config(vhost=ARTICLE.format(port=be.port) + f"""
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptSNI Host
""")
    env.expect_log("RE00050")  # ReencryptSNI Host without VerifyName
    env.start()
    assert_served(env, be, path="/article", host="good.test",
                  sni="good.test")
