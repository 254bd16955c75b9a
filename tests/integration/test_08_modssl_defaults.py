"""mod_reencrypt owns backend verification under ReencryptEngine On.

mod_ssl's SSLProxyVerify stays at its default `none` and SSLProxyVerifyDepth
at its default 1; a chain through an intermediate (2 above the leaf) and a
deep chain (4 above) are still verified and served under the module's
policy.
"""

import pytest

from checks import (assert_refused, assert_served, start_policy)


@pytest.mark.parametrize("modssl", [
    [],
    ["SSLProxyVerify none", "SSLProxyVerifyDepth 1"],
], ids=["defaults", "explicit-none-depth-1"])
def test_reencrypt_08_001_intermediate_chain_served(env, backend, module_so,
                                                    pki, modssl):
    be = backend("good")
    start_policy(
        env, be, "ReencryptSNI good.test", ca=pki.ca_file,
        preamble=modssl)
    assert_served(env, be, "/modssl-defaults", sni="good.test")


def test_reencrypt_08_002_deep_chain_beyond_modssl_depth(env, backend,
                                                         module_so, pki):
    be = backend("deep")
    start_policy(
        env, be, "ReencryptSNI deep.test", "ReencryptVerifyDepth 4",
        ca=pki.ca_file, preamble=["SSLProxyVerifyDepth 1"])
    assert_served(env, be, "/deep", sni="deep.test")


def test_reencrypt_08_003_untrusted_refused_with_modssl_verify_none(
        env, backend, module_so, pki):
    """SSLProxyVerify none does not weaken the module's policy."""
    be = backend("other-ca")
    start_policy(
        env, be, "ReencryptSNI good.test", ca=pki.ca_file,
        preamble=["SSLProxyVerify none", "SSLProxyCheckPeerName off",
                  "SSLProxyCheckPeerExpire off"])
    assert_refused(env, be, "untrusted-chain")
