"""LoadModule order and required modules.

The policy applies whether `LoadModule reencrypt_module` comes before or
after mod_ssl / mod_proxy / mod_proxy_http.  Without mod_proxy or mod_ssl
the server refuses to start (RE00002 / RE00003), and so does
`apache2 -t`.
"""

import pytest

from checks import (assert_refused, assert_served, assert_startup_error,
                    policy_vhost)


def _write_config(env, be, pki, order):
    """The policy for be, LoadModule reencrypt_module placed in order."""
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI good.test", ca=pki.ca_file),
        reencrypt=order)


@pytest.mark.parametrize("order", ["before", "after"])
def test_reencrypt_06_001_policy_applies_in_any_load_order(
        env, backend, module_so, pki, order):
    be = backend("other-ca")
    _write_config(env, be, pki, order)
    re_line = env.line_of("LoadModule reencrypt_module")
    for mod in ("ssl_module", "proxy_module", "proxy_http_module"):
        other = env.line_of(f"LoadModule {mod} ")
        assert (re_line < other) == (order == "before")
    env.start()
    assert_refused(env, be, "untrusted-chain")


@pytest.mark.parametrize("order", ["before", "after"])
def test_reencrypt_06_002_trusted_backend_in_any_load_order(
        env, backend, module_so, pki, order):
    be = backend("good")
    _write_config(env, be, pki, order)
    env.start()
    assert_served(env, be, "/order", sni="good.test")


def test_reencrypt_06_003_without_mod_proxy(env, module_so):
    env.write_config(modules=["authz_core", "socache_shmcb", "ssl"])
    assert "proxy_module" not in env.conf_text
    assert_startup_error(env, "RE00002: mod_reencrypt requires mod_proxy")


def test_reencrypt_06_004_without_mod_ssl(env, module_so):
    env.write_config(modules=["authz_core", "proxy", "proxy_http"],
                     frontend_tls=False)
    assert "ssl_module" not in env.conf_text
    assert_startup_error(env, "RE00003: mod_reencrypt requires mod_ssl")
