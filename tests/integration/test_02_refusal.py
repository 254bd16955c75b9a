"""Backends that fail the policy are refused.

For each refusal the client gets 502, the backend receives no byte of
application data (its TLS accept fails), and mod_reencrypt logs exactly one
RE00010 line at level error naming the reason, what was expected and what
was seen.
"""

import datetime
import random
import re
import ssl

import pytest

from checks import (asn1_time, assert_refused, assert_refused_reads,
                    assert_served, assert_time_near, policy_vhost,
                    start_policy)


def _now():
    return datetime.datetime.utcnow().replace(microsecond=0)


def test_reencrypt_02_001_other_ca(env, backend, module_so, pki):
    be = backend("other-ca")
    start_policy(env, be, "ReencryptSNI good.test", ca=pki.ca_file)
    assert_refused_reads(
        env, be, "untrusted-chain",
        f"expected a chain to the trust anchor in {pki.ca_file}; "
        f"seen CN=good.test issued by CN=Other Root CA "
        f"(unable to get local issuer certificate)")
    assert be.snis == ["good.test"]


def test_reencrypt_02_002_wrong_name(env, backend, module_so, pki):
    be = backend("wrong-name")
    start_policy(env, be, "ReencryptSNI backend.test", ca=pki.ca_file)
    assert_refused_reads(
        env, be, "name-mismatch",
        f'expected "backend.test" (SNI); seen DNS:other.test')


def _assert_outside_validity(env, backend, pki, kind, reason, cn, field):
    """The leaf kind is outside its validity window: refused for reason,
    expected "<field> <after|before> <now>", seen "<cn> <field>=<its
    date>"."""
    be = backend(kind)
    start_policy(env, be, "ReencryptSNI good.test", ca=pki.ca_file)
    before = _now()
    m = assert_refused(env, be, reason)
    if field == "notAfter":
        word, date = "after", pki[kind].not_after
    else:
        word, date = "before", pki[kind].not_before
    mm = re.fullmatch(rf"{field} {word} (\S+)", m.group("expected"))
    assert mm, m.group(0)
    assert_time_near(mm.group(1), before)
    assert m.group("seen") == f"{cn} {field}={asn1_time(date)}", m.group(0)


def test_reencrypt_02_003_expired(env, backend, module_so, pki):
    _assert_outside_validity(env, backend, pki, "expired", "expired",
                             "CN=expired.test", "notAfter")


def test_reencrypt_02_004_not_yet_valid(env, backend, module_so, pki):
    _assert_outside_validity(env, backend, pki, "future", "not-yet-valid",
                             "CN=future.test", "notBefore")


def test_reencrypt_02_005_expired_intermediate(env, backend, module_so, pki):
    """Validity is checked on every certificate of the chain."""
    be = backend("under-expired-int")
    start_policy(env, be, "ReencryptSNI good.test", ca=pki.ca_file)
    m = assert_refused(env, be, "expired")
    na = asn1_time(pki["expired-int"].not_after)
    assert m.group("seen") == (
        f"CN=Test Expired Intermediate CA notAfter={na}"), m.group(0)


def test_reencrypt_02_006_chain_deeper_than_depth(env, backend, module_so,
                                                  pki):
    """root > int1 > int2 > int3 > deep.test has 4 certificates above the
    leaf; ReencryptVerifyDepth 3 refuses it."""
    be = backend("deep")
    start_policy(
        env, be, "ReencryptSNI deep.test", "ReencryptVerifyDepth 3",
        ca=pki.ca_file)
    m = assert_refused(env, be, "depth-exceeded")
    assert re.fullmatch(
        r"at most 3 certificates? above the leaf \(ReencryptVerifyDepth 3\)",
        m.group("expected")), m.group(0)
    assert m.group("seen") == (
        "4 (CN=deep.test < CN=Test Deep Int 3 < CN=Test Deep Int 2 < "
        "CN=Test Deep Int 1 < CN=Test Root CA)"), m.group(0)


def test_reencrypt_02_007_intermediate_chain_with_depth_1(
        env, backend, module_so, pki):
    be = backend("good")
    start_policy(
        env, be, "ReencryptSNI good.test", "ReencryptVerifyDepth 1",
        ca=pki.ca_file)
    assert_refused_reads(
        env, be, "depth-exceeded",
        f"expected at most 1 certificate above the leaf "
        f"(ReencryptVerifyDepth 1); seen 2 "
        f"(CN=good.test < CN=Test Intermediate CA < CN=Test Root CA)")


def test_reencrypt_02_008_ip_backend_without_ip_san(env, backend, module_so,
                                                    pki):
    """https://127.0.0.1:port/ with default SNI (none for an IP) verifies
    the IP itself: a certificate with DNS SANs only is refused."""
    be = backend("good")
    start_policy(env, be, ca=pki.ca_file)
    m = assert_refused(env, be, "name-mismatch")
    assert m.group("expected") == '"127.0.0.1"', m.group(0)
    assert "DNS:good.test" in m.group("seen"), m.group(0)
    assert "DNS:backend.test" in m.group("seen"), m.group(0)
    # no SNI for an IP-literal backend
    assert be.snis == [None]


@pytest.mark.parametrize("sni", ["a.b.wild.test", "wild.test"])
def test_reencrypt_02_009_wildcard_matches_one_label_only(
        env, backend, module_so, pki, sni):
    be = backend("wild")
    start_policy(env, be, f"ReencryptSNI {sni}", ca=pki.ca_file)
    assert_refused_reads(
        env, be, "name-mismatch",
        f'expected "{sni}" (SNI); seen DNS:*.wild.test')


def test_reencrypt_02_010_verify_name_mismatch(env, backend, module_so, pki):
    """An explicit ReencryptVerifyName is what is checked, not the SNI."""
    be = backend("good")
    start_policy(
        env, be, "ReencryptSNI good.test", "ReencryptVerifyName other.test",
        ca=pki.ca_file)
    m = assert_refused(env, be, "name-mismatch")
    assert m.group("expected") == '"other.test"', m.group(0)
    assert "DNS:good.test" in m.group("seen"), m.group(0)
    assert be.snis == ["good.test"]


def test_reencrypt_02_011_verify_names_none_matches(env, backend, module_so,
                                                    pki):
    be = backend("good")
    start_policy(
        env, be, "ReencryptVerifyName other.test 127.0.0.2",
        ca=pki.ca_file)
    m = assert_refused(env, be, "name-mismatch")
    assert '"other.test"' in m.group("expected"), m.group(0)
    assert '"127.0.0.2"' in m.group("expected"), m.group(0)


def test_reencrypt_02_012_subject_cn_is_never_used(env, backend, module_so,
                                                   pki):
    """The wildcard leaf has CN=wild.test and the single SAN *.wild.test:
    ReencryptVerifyName wild.test (its CN) does not match."""
    be = backend("wild")
    start_policy(
        env, be, "ReencryptSNI a.wild.test",
        "ReencryptVerifyName wild.test", ca=pki.ca_file)
    assert_refused_reads(
        env, be, "name-mismatch",
        f'expected "wild.test"; seen DNS:*.wild.test')


def test_reencrypt_02_013_inner_scope_replaces_names(env, backend, module_so,
                                                     pki):
    """A <Location> with its own ReencryptVerifyName replaces the outer
    list (no union): /inner is refused, the rest is served."""
    be = backend("good")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptVerifyName good.test", ca=pki.ca_file) + """
<Location /inner>
    ReencryptVerifyName other.test
</Location>
""")
    env.start()
    m = assert_refused(env, be, "name-mismatch", path="/inner/x")
    assert m.group("expected") == '"other.test"', m.group(0)
    assert_served(env, be, "/outer", ignore_re10=True)


def test_reencrypt_02_014_engine_off_in_inner_scope(env, backend, module_so,
                                                    pki):
    """ReencryptEngine Off in a <Location> restores mod_ssl's behaviour
    there only."""
    be = backend("other-ca")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI Host", ca=pki.ca_file,
        preamble=["ProxyPreserveHost On"]) + """
<Location /open>
    ReencryptEngine Off
</Location>
""")
    env.expect_log("RE00050")  # ReencryptSNI Host without VerifyName
    env.start()
    assert_refused(env, be, "untrusted-chain", path="/secure",
                   host="good.test")
    assert_served(env, be, "/open", host="good.test", ignore_re10=True)


@pytest.mark.parametrize("leaf,directives,reason", [
    # untrusted before everything else (the name is wrong too)
    ("other-ca", ["ReencryptVerifyName other.test",
                  "ReencryptVerifyDepth 1"], "untrusted-chain"),
    # validity before depth and name
    ("expired", ["ReencryptVerifyName other.test",
                 "ReencryptVerifyDepth 1"], "expired"),
    ("future", ["ReencryptVerifyName other.test",
                "ReencryptVerifyDepth 1"], "not-yet-valid"),
    # depth before name
    ("deep", ["ReencryptVerifyName good.test",
              "ReencryptVerifyDepth 3"], "depth-exceeded"),
], ids=["untrusted>name,depth", "expired>depth,name",
        "not-yet-valid>depth,name", "depth>name"])
def test_reencrypt_02_015_order_of_checks(env, backend, module_so, pki,
                                          leaf, directives, reason):
    be = backend(leaf)
    start_policy(env, be, *directives,
                                        ca=pki.ca_file)
    assert_refused(env, be, reason)


def test_reencrypt_02_016_anchor_file_of_other_ca(env, backend, module_so,
                                                  pki):
    """A good backend is refused when the configured anchor is another CA;
    the line names the anchor file."""
    be = backend("good")
    start_policy(env, be, "ReencryptSNI good.test", ca=pki.other_ca_file)
    m = assert_refused(env, be, "untrusted-chain")
    assert m.group("expected") == (
        f"a chain to the trust anchor in {pki.other_ca_file}")
    # the chain the backend sent stops at its intermediate: the line names
    # the certificate where no issuer was found
    assert m.group("seen") == (
        "CN=good.test issued by CN=Test Intermediate CA (unable to get "
        "local issuer certificate at CN=Test Intermediate CA)"), m.group(0)


def test_reencrypt_02_017_anchor_bundle_counted(env, backend, module_so,
                                                pki):
    """With two anchors in the file (neither on the backend's path) the
    line counts them."""
    bundle = pki.bundle(f"{env.root}/conf/bundle.pem",
                        (pki.other_ca_file, pki["deep-int1"].cert_file))
    be = backend("good")
    start_policy(env, be, "ReencryptSNI good.test", ca=bundle)
    m = assert_refused(env, be, "untrusted-chain")
    assert m.group("expected") == (
        f"a chain to one of 2 trust anchors in {bundle}"), m.group(0)


def test_reencrypt_02_018_request_body_never_reaches_backend(
        env, backend, module_so, pki):
    """A refused POST: none of its headers or body bytes arrive."""
    be = backend("other-ca")
    start_policy(env, be, "ReencryptSNI good.test", ca=pki.ca_file)
    assert_refused(env, be, "untrusted-chain", path="/upload",
                   method="POST", body=b"secret-payload=" + b"x" * 4096)
    assert b"secret-payload" not in be.received


def test_reencrypt_02_019_tls12_backend(env, backend, module_so, pki):
    """The refusal holds when the backend speaks TLS 1.2 at most."""
    be = backend("other-ca", max_version=ssl.TLSVersion.TLSv1_2)
    start_policy(env, be, "ReencryptSNI good.test", ca=pki.ca_file)
    assert_refused(env, be, "untrusted-chain")


def default_port_backend(backend, leaf):
    """A backend listening on port 443 of a loopback address other than
    127.0.0.1 (so that a ProxyPass URL without a port reaches it): tries
    a few random addresses of 127.0.0.0/8 until one has 443 free."""
    rng = random.Random()
    last = None
    for _ in range(20):
        host = f"127.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}." \
               f"{rng.randrange(2, 255)}"
        try:
            return backend(leaf, host=host, port=443)
        except OSError as e:
            last = e
    raise AssertionError(f"no loopback address with port 443 free: {last}")


def test_reencrypt_02_020_wss_backend_named_with_default_port(
        env, backend, module_so, pki):
    """A wss:// ProxyPass URL without a port (mod_proxy_http speaks TLS to
    port 443): the refusal names the backend <address>:443, never :0, and
    so does the statistics entry (?json) of one that passes (a refused
    backend takes no statistics slot)."""
    from test_15_status import _json, _server, _status_locations
    be = default_port_backend(backend, "other-ca")
    good = default_port_backend(backend, "good")
    name = f"{be.host}:443"
    env.write_config(
        server=_server(),
        vhost="\n".join([
            "SSLProxyEngine On",
            "ReencryptEngine On",
            f'ReencryptCACertificateFile "{pki.ca_file}"',
            "ReencryptSNI good.test",
            f"ProxyPass /ws/ wss://{be.host}/",
            f"ProxyPass /ok/ wss://{good.host}/",
            _status_locations(status=False)]))
    env.start()
    m = assert_refused(env, be, "untrusted-chain", path="/ws/x",
                       backend=name)
    assert m.group("backend") == name
    r = env.get("/ok/x")
    assert r.status == 200, (r, env.error_log())
    doc = _json(env)
    assert [b["backend"] for b in doc["backends"]] == [f"{good.host}:443"], doc
