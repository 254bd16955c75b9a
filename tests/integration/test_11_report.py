"""ReencryptMode Report: violations are logged, not refused.

Every case that Enforce mode refuses is served (200, the request reaches
the backend) and logged once at warn level as

    RE00018: backend <host:port> report-only: would refuse: <reason>;
             expected ...; seen ...

with the expected / seen parts of the RE00010 line Enforce mode would
write; REENCRYPT_RESULT is report:<reason>.  mod_ssl's own
SSLProxyCheckPeerExpire (default On) runs after the module and refuses
expired and not-yet-valid certificates itself, so these configurations say
'SSLProxyCheckPeerExpire Off'; without it the client gets 502 and RE00020
says so.
"""

import datetime
import re

import pytest

from checks import (PROXY_HANDSHAKE_FAILURE_TAGS, access_log_directives,
                    asn1_time, assert_modssl_refused_lenient, assert_refused,
                    assert_reported, assert_served, assert_time_near,
                    policy_vhost, re10_lines, re18_lines, start_policy,
                    write_lenient_policy)

MODSSL_EXPIRE_OFF = "SSLProxyCheckPeerExpire Off"


def _now():
    return datetime.datetime.utcnow().replace(microsecond=0)


def _wrong_pins(pki):
    return [pki.pin("other-root"), pki.pin("wild")]


# (leaf, extra directives, reason, expected / seen parts: exact strings, or
# callables checking them)
def _cases(pki):
    a, b = _wrong_pins(pki)
    return {
        "other-ca": ("other-ca", ["ReencryptSNI good.test"],
                     "untrusted-chain",
                     f"a chain to the trust anchor in {pki.ca_file}",
                     "CN=good.test issued by CN=Other Root CA (unable to get "
                     "local issuer certificate)"),
        "wrong-name": ("wrong-name", ["ReencryptSNI backend.test"],
                       "name-mismatch", '"backend.test" (SNI)',
                       "DNS:other.test"),
        "depth": ("deep", ["ReencryptSNI deep.test",
                           "ReencryptVerifyDepth 3"],
                  "depth-exceeded",
                  "at most 3 certificates above the leaf "
                  "(ReencryptVerifyDepth 3)",
                  "4 (CN=deep.test < CN=Test Deep Int 3 < CN=Test Deep Int 2 "
                  "< CN=Test Deep Int 1 < CN=Test Root CA)"),
        "pin": ("good", ["ReencryptSNI good.test", f"ReencryptPin {a} {b}"],
                "pin-mismatch", f"one of 2 pins on the leaf ({a}, {b})",
                f"{pki.pin('good')} (CN=good.test)"),
        "expired": ("expired", ["ReencryptSNI good.test"], "expired",
                    re.compile(r"notAfter after \S+"),
                    "CN=expired.test notAfter="
                    + asn1_time(pki["expired"].not_after)),
        "not-yet-valid": ("future", ["ReencryptSNI good.test"],
                          "not-yet-valid",
                          re.compile(r"notBefore before \S+"),
                          "CN=future.test notBefore="
                          + asn1_time(pki["future"].not_before)),
        "expiring-within": ("expiring-2d", [
            "ReencryptSNI good.test", "ReencryptRefuseExpiringWithin 7d"],
            "expiring-within",
            re.compile(r"notAfter after \S+ "
                       r"\(ReencryptRefuseExpiringWithin 604800s\)"),
            "CN=expiring-2d.test notAfter="
            + asn1_time(pki["expiring-2d"].not_after)),
    }


CASES = ["other-ca", "wrong-name", "depth", "pin", "expired",
         "not-yet-valid", "expiring-within"]


def _check_part(value, want):
    if isinstance(want, re.Pattern):
        assert want.fullmatch(value), (value, want.pattern)
    else:
        assert value == want


@pytest.mark.parametrize("case", CASES)
def test_reencrypt_11_001_report_serves_and_logs(env, backend, module_so,
                                                 pki, case):
    leaf, directives, reason, expected, seen = _cases(pki)[case]
    be = backend(leaf)
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptMode Report", *directives, ca=pki.ca_file,
        preamble=[MODSSL_EXPIRE_OFF]) + "\n" + access_log_directives(env))
    env.start()
    m = assert_reported(env, be, reason, path=f"/report/{case}")
    _check_part(m.group("expected"), expected)
    _check_part(m.group("seen"), seen)
    path, result, pin, not_after = env.access_lines(1)[0].split(" ")
    assert (path, result) == (f"/report/{case}", f"report:{reason}")
    assert pin == pki.pin(leaf)
    assert not_after == asn1_time(pki[leaf].not_after)


@pytest.mark.parametrize("case", CASES)
def test_reencrypt_11_002_enforce_refuses_the_same(env, backend, module_so,
                                                   pki, case):
    """Control: the same configurations without Report mode refuse, with
    the same expected / seen parts in the RE00010 line."""
    leaf, directives, reason, expected, seen = _cases(pki)[case]
    be = backend(leaf)
    env.write_config(vhost=policy_vhost(
        be.url_ip, *directives, ca=pki.ca_file,
        preamble=[MODSSL_EXPIRE_OFF]) + "\n" + access_log_directives(env))
    env.start()
    m = assert_refused(env, be, reason, path=f"/enforce/{case}")
    _check_part(m.group("expected"), expected)
    _check_part(m.group("seen"), seen)
    assert not re18_lines(env), env.error_log()
    path, result, pin, not_after = env.access_lines(1)[0].split(" ")
    assert (path, result) == (f"/enforce/{case}", f"refused:{reason}")


def test_reencrypt_11_003_report_times_are_now(env, backend, module_so,
                                               pki):
    """The time in 'expected' of a report line is the time of the
    handshake, as in a refusal."""
    be = backend("expired")
    start_policy(
        env, be, "ReencryptMode Report", "ReencryptSNI good.test",
        ca=pki.ca_file, preamble=[MODSSL_EXPIRE_OFF])
    before = _now()
    m = assert_reported(env, be, "expired")
    assert_time_near(m.group("expected").split()[-1], before)


def test_reencrypt_11_004_report_passing_backend(env, backend, module_so,
                                                 pki):
    """A backend that passes the policy: no RE00018, REENCRYPT_RESULT ok."""
    be = backend("good")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptMode Report", "ReencryptSNI good.test",
        f"ReencryptPin {pki.pin('good')} {pki.pin('good-next')}",
        ca=pki.ca_file, preamble=[MODSSL_EXPIRE_OFF]) + "\n"
        + access_log_directives(env))
    env.start()
    assert_served(env, be, "/clean", sni="good.test")
    assert not re18_lines(env), env.error_log()
    assert env.access_lines(1) == [
        f"/clean ok {pki.pin('good')} {asn1_time(pki['good'].not_after)}"]


def test_reencrypt_11_005_report_in_location_only(env, backend, module_so,
                                                  pki):
    """Report mode in a <Location>: served there, refused elsewhere."""
    be = backend("other-ca")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI good.test", ca=pki.ca_file) + """
<Location /trial>
    ReencryptMode Report
</Location>
""")
    env.expect_log("RE00035")   # SSLProxyCheckPeerExpire is on
    env.start()
    assert_refused(env, be, "untrusted-chain", path="/enforced")
    env.expect_log("RE00018")
    r = env.get("/trial/x")
    assert r.status == 200, (r, env.error_log())
    assert ("GET", "/trial/x") in be.requests
    assert len(re10_lines(env)) == 1, env.error_log()
    lines = re18_lines(env)
    assert len(lines) == 1, env.error_log()
    assert "would refuse: untrusted-chain;" in lines[0].rest


def test_reencrypt_11_006_report_explicit_enforce_in_location(
        env, backend, module_so, pki):
    """ReencryptMode Enforce in a <Location> under a Report virtual
    host: refused there."""
    be = backend("wrong-name")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI backend.test", "ReencryptMode Report",
        ca=pki.ca_file) + """
<Location /strict>
    ReencryptMode Enforce
</Location>
""")
    env.expect_log("RE00035")   # SSLProxyCheckPeerExpire is on
    env.start()
    m = assert_refused(env, be, "name-mismatch", path="/strict/x")
    assert m.group("expected") == '"backend.test" (SNI)'
    assert not re18_lines(env), env.error_log()


def test_reencrypt_11_007_report_each_request_logged(env, backend,
                                                     module_so, pki):
    """Each new backend handshake that violates the policy is reported
    (three requests, backend connections not reused: three RE00018
    lines, three report:pin-mismatch access-log lines)."""
    be = backend("good")
    a, b = _wrong_pins(pki)
    env.write_config(vhost=policy_vhost(
        be.url_ip + " disablereuse=On", "ReencryptMode Report",
        "ReencryptSNI good.test", f"ReencryptPin {a} {b}", ca=pki.ca_file)
        + "\n" + access_log_directives(env))
    env.expect_log("RE00018")
    env.expect_log("RE00035")   # SSLProxyCheckPeerExpire is on
    env.start()
    for i in range(3):
        r = env.get(f"/r{i}")
        assert r.status == 200, (r, env.error_log())
    lines = env.access_lines(3)
    assert [ln.split(" ")[:2] for ln in lines] == [
        [f"/r{i}", "report:pin-mismatch"] for i in range(3)]
    assert len(re18_lines(env)) == 3, env.error_log()
    assert not re10_lines(env)


@pytest.mark.parametrize("leaf", ["expired", "future"])
def test_reencrypt_11_010_modssl_expiry_check_refuses_report(
        env, backend, module_so, pki, leaf):
    """Report mode without 'SSLProxyCheckPeerExpire Off': mod_ssl's own
    check (it runs after the module) refuses the expired or not yet valid
    certificate: 502 to the client, no request byte at the backend, and
    RE00020 names the directive to set."""
    be = backend(leaf)
    write_lenient_policy(env, be, "ReencryptMode Report",
                         "ReencryptMode Report", "ReencryptSNI good.test",
                         ca=pki.ca_file)
    env.expect_log("RE00018", "RE00020", "RE00035",
                   *PROXY_HANDSHAKE_FAILURE_TAGS)
    env.start()
    assert_modssl_refused_lenient(env, be, "/modssl")
    # the module itself reported the violation before mod_ssl refused
    assert len(re18_lines(env)) == 1, env.error_log()


def test_reencrypt_11_011_modssl_does_not_interfere_otherwise(
        env, backend, module_so, pki):
    """mod_ssl's default expiry check has nothing to say about a chain or
    name violation: Report mode serves those without any mod_ssl
    directive."""
    be = backend("other-ca")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptMode Report", "ReencryptSNI good.test",
        ca=pki.ca_file))
    env.expect_log("RE00035")   # SSLProxyCheckPeerExpire is on
    env.start()
    assert_reported(env, be, "untrusted-chain")
    assert not [ln for ln in env.log_lines() if "RE00020:" in ln.rest]


@pytest.mark.parametrize("value", ["Audit", "on", "ReportOnly"])
def test_reencrypt_11_020_mode_bad_value(env, module_so, pki, value):
    from test_01_configtest import assert_syntax_error, vhost
    env.write_config(vhost=vhost(f"ReencryptMode {value}", ca=pki.ca_file))
    assert_syntax_error(env, f"ReencryptMode {value}", "ReencryptMode",
                        f"'{value}'")


@pytest.mark.parametrize("value", ["Enforce", "report", "REPORT", "enforce"])
def test_reencrypt_11_021_mode_values(env, module_so, pki, value):
    from test_01_configtest import vhost
    env.write_config(vhost=vhost(f"ReencryptMode {value}", ca=pki.ca_file))
    rc, out = env.configtest()
    assert (rc, "Syntax OK" in out) == (0, True), out
