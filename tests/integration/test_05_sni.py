"""ReencryptSNI: which server name the proxy sends to the backend.

  Backend  the host of the ProxyPass URL (none for an IP literal)
  Host     the client's Host header (with ProxyPreserveHost On)
  Off      no SNI at all
  <name>   that literal DNS name
The backend records the SNI of every ClientHello it receives.
"""

import pytest

from checks import (assert_refused, assert_served, policy_vhost, start_policy)


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


def _start_host_mode(env, backend, pki, keyword):
    """A "good" backend under ReencryptSNI <keyword> with ProxyPreserveHost
    On and no ReencryptVerifyName (RE00050 warns of it: see 05_010);
    started.  Returns the backend."""
    be = backend("good")
    env.write_config(vhost=policy_vhost(
        be.url_ip, f"ReencryptSNI {keyword}", ca=pki.ca_file,
        preamble=["ProxyPreserveHost On"]))
    env.expect_log("RE00050")
    env.start()
    return be


@pytest.mark.parametrize("host,sni", [
    ("good.test", "good.test"),
    ("backend.test", "backend.test"),
    ("good.test:8443", "good.test"),
])
def test_reencrypt_05_003_host_mode_sends_client_host(
        env, backend, module_so, pki, host, sni):
    """ReencryptSNI Host with ProxyPreserveHost On: SNI is the client's Host
    header (without port) and, by default, also the name verified."""
    be = _start_host_mode(env, backend, pki, "Host")
    assert_served(env, be, "/sni-host", host=host, sni=sni)
    assert f"Host: {host}\r\n".encode() in be.received


def test_reencrypt_05_004_host_mode_name_mismatch(env, backend, module_so,
                                                  pki):
    be = _start_host_mode(env, backend, pki, "host")
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
    start_policy(
        env, be, "ReencryptSNI good.test", ca=pki.ca_file,
        preamble=["ProxyPreserveHost On"])
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


RE50 = ("RE00050: ReencryptSNI Host at {where} without ReencryptVerifyName: "
        "the client's Host header chooses the name the backend certificate "
        "is checked against; set ReencryptVerifyName to the names the "
        "backend must carry")


@pytest.mark.parametrize("scope", ["virtual-host", "location"])
def test_reencrypt_05_010_host_without_verify_name_warns(
        env, backend, module_so, pki, scope):
    """ReencryptSNI Host in a scope without ReencryptVerifyName: apachectl
    -t says so (RE00050, with the directive's file and line) and passes;
    the server starts, says it once in its error log, and serves."""
    be = backend("good")
    if scope == "virtual-host":
        # and a <Location> that inherits it: still one warning
        vhost = policy_vhost(be.url_ip, "ReencryptSNI Host", ca=pki.ca_file,
                             preamble=["ProxyPreserveHost On"]) + """
<Location /inherits/>
    ReencryptMode Enforce
</Location>
"""
    else:
        vhost = policy_vhost(be.url_ip, ca=pki.ca_file,
                             preamble=["ProxyPreserveHost On"]) + """
<Location /by-host/>
    ReencryptSNI Host
</Location>
"""
    env.write_config(vhost=vhost)
    line = env.line_of("ReencryptSNI Host")
    want = RE50.format(where=f"{env.conf_file}:{line}")
    rc, out = env.configtest()
    assert rc == 0 and "Syntax OK" in out, out
    assert out.count("RE00050") == 1 and want in out, out

    env.expect_log("RE00050")
    env.start()
    lines = env.lines_with("RE00050")
    assert len(lines) == 1 and lines[0].level == "warn", env.error_log()
    assert lines[0].message.endswith(want), lines[0]
    assert_served(env, be, "/by-host/x", host="good.test", sni="good.test")


@pytest.mark.parametrize("case", ["same-scope", "enclosing-scope",
                                  "engine-off", "check-name-off-pinned"])
def test_reencrypt_05_011_host_with_verify_name_does_not_warn(
        env, module_so, pki, case):
    """No RE00050 where ReencryptVerifyName applies to the scope (set there
    or in an enclosing one), where the engine is off, or where names are
    not checked at all (ReencryptCheckName Off, with a pin)."""
    url = "https://127.0.0.1:9/"
    if case == "same-scope":
        vhost = policy_vhost(url, "ReencryptSNI Host",
                             "ReencryptVerifyName good.test", ca=pki.ca_file)
    elif case == "enclosing-scope":
        vhost = policy_vhost(url, "ReencryptVerifyName good.test",
                             ca=pki.ca_file) + """
<Location /by-host/>
    ReencryptSNI Host
</Location>
"""
    elif case == "engine-off":
        vhost = policy_vhost(url, "ReencryptSNI Host", ca=pki.ca_file,
                             engine="Off")
    else:
        vhost = policy_vhost(url, "ReencryptSNI Host",
                             "ReencryptCheckName Off",
                             f"ReencryptPin {pki.pin('good')} "
                             f"{pki.pin('good-next')}", ca=pki.ca_file)
    env.write_config(vhost=vhost)
    rc, out = env.configtest()
    assert rc == 0 and "Syntax OK" in out, out
    assert "RE00050" not in out, out
