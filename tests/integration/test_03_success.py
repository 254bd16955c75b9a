"""Backends that satisfy the policy are served (200, request reaches the
backend, no RE00010 line)."""

import ssl

import pytest

from checks import (assert_served, policy_vhost, start_policy)


def test_reencrypt_03_001_chain_through_intermediate(env, backend, module_so,
                                                     pki):
    """The backend sends leaf + intermediate, ca.pem holds only the root."""
    be = backend("good")
    start_policy(env, be, "ReencryptSNI good.test", ca=pki.ca_file)
    assert_served(env, be, "/good", sni="good.test")
    assert b"GET /good HTTP/1.1\r\n" in be.received


def test_reencrypt_03_002_ip_backend_with_literal_sni(env, backend,
                                                      module_so, pki):
    """https://127.0.0.1:port/ with ReencryptSNI good.test: the backend sees
    SNI good.test and the name verified is that SNI."""
    be = backend("good")
    start_policy(env, be, "ReencryptSNI good.test", ca=pki.ca_file)
    assert_served(env, be, "/ip-literal-sni", sni="good.test")
    assert be.snis == ["good.test"]


@pytest.mark.parametrize("sni", ["backend.test", "sni-only.test"])
def test_reencrypt_03_003_verify_name_differs_from_sni(env, backend,
                                                       module_so, pki, sni):
    """ReencryptVerifyName good.test is checked while another name is sent
    as SNI (even one the certificate does not carry)."""
    be = backend("good")
    start_policy(
        env, be, f"ReencryptSNI {sni}", "ReencryptVerifyName good.test",
        ca=pki.ca_file)
    assert_served(env, be, "/names", sni=sni)


def test_reencrypt_03_004_verify_names_any_of(env, backend, module_so, pki):
    be = backend("good")
    start_policy(
        env, be, "ReencryptVerifyName nomatch.test 127.0.0.9 good.test",
        ca=pki.ca_file)
    assert_served(env, be, "/any-of", sni=None)


def test_reencrypt_03_005_wildcard_san(env, backend, module_so, pki):
    be = backend("wild")
    start_policy(env, be, "ReencryptSNI a.wild.test", ca=pki.ca_file)
    assert_served(env, be, "/wild", sni="a.wild.test")


def test_reencrypt_03_006_wildcard_san_by_verify_name(env, backend,
                                                      module_so, pki):
    be = backend("wild")
    start_policy(
        env, be, "ReencryptSNI Off", "ReencryptVerifyName A.Wild.Test",
        ca=pki.ca_file)
    assert_served(env, be, "/wild-name", sni=None)


@pytest.mark.parametrize("directives", [
    ["ReencryptSNI Off"],
    [],                                   # default SNI Backend: none for IPs
    ["ReencryptSNI Off", "ReencryptVerifyName 127.0.0.1"],
], ids=["sni-off", "sni-default", "verify-name-ip"])
def test_reencrypt_03_007_ip_backend_with_ip_san(env, backend, module_so,
                                                 pki, directives):
    """The IP-SAN leaf (IP:127.0.0.1) behind https://127.0.0.1:port/ with no
    SNI: the URL's IP is verified against the IP SAN."""
    be = backend("ip")
    start_policy(env, be, *directives,
                                        ca=pki.ca_file)
    assert_served(env, be, "/ip-san", sni=None)


@pytest.mark.parametrize("leaf,sni,depth", [
    ("direct", "direct.test", "1"),    # leaf < root
    ("good", "good.test", "2"),        # leaf < int < root
    ("deep", "deep.test", "4"),        # leaf < int3 < int2 < int1 < root
    ("deep", "deep.test", None),       # default depth is 4
], ids=["direct-1", "intermediate-2", "deep-4", "deep-default"])
def test_reencrypt_03_008_depth_at_the_limit(env, backend, module_so, pki,
                                             leaf, sni, depth):
    be = backend(leaf)
    directives = [f"ReencryptSNI {sni}"]
    if depth is not None:
        directives.append(f"ReencryptVerifyDepth {depth}")
    start_policy(env, be, *directives,
                                        ca=pki.ca_file)
    assert_served(env, be, f"/depth-{depth}", sni=sni)


def test_reencrypt_03_009_intermediate_as_anchor(env, backend, module_so,
                                                 pki):
    """Any certificate in the CA file is an anchor (partial chain): with
    the intermediate as anchor, leaf < int is 1 certificate above."""
    be = backend("good")
    start_policy(
        env, be, "ReencryptSNI good.test", "ReencryptVerifyDepth 1",
        ca=pki.int_ca_file)
    assert_served(env, be, "/partial", sni="good.test")


def test_reencrypt_03_010_debug_line_on_success(env, backend, module_so,
                                                pki):
    be = backend("good")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI good.test", ca=pki.ca_file),
        loglevel="warn reencrypt:debug")
    env.start()
    assert_served(env, be, "/debug", sni="good.test")
    line = env.wait_log(
        r"\[reencrypt:debug\] .*RE00014: backend 127\.0\.0\.1:%d verified"
        % be.port)
    assert line


def test_reencrypt_03_011_anchor_bundle(env, backend, module_so, pki):
    """A CA file with several anchors (other root first, then the test
    root) trusts a chain to any of them."""
    bundle = pki.bundle(f"{env.root}/conf/bundle.pem",
                        (pki.other_ca_file, pki.ca_file))
    be = backend("good")
    start_policy(env, be, "ReencryptSNI good.test", ca=bundle)
    assert_served(env, be, "/bundle", sni="good.test")


def test_reencrypt_03_012_tls12_backend(env, backend, module_so, pki):
    be = backend("good", max_version=ssl.TLSVersion.TLSv1_2)
    start_policy(env, be, "ReencryptSNI good.test", ca=pki.ca_file)
    assert_served(env, be, "/tls12", sni="good.test")
    assert be.connections[-1].tls_version == "TLSv1.2"


def test_reencrypt_03_013_request_body_reaches_backend(env, backend,
                                                       module_so, pki):
    be = backend("good")
    start_policy(env, be, "ReencryptSNI good.test", ca=pki.ca_file)
    payload = b"payload=" + b"y" * 4096
    r = env.get("/upload", method="POST", body=payload)
    assert r.status == 200, (r, env.error_log())
    assert r.text == "backend-ok /upload\n"
    assert be.received.endswith(payload)
