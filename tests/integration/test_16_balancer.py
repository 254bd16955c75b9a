"""Balancer members under a policy.

A re-encrypting load balancer usually spreads requests over several
backends with mod_proxy_balancer.  The policy of the scope that proxies to
balancer://app applies to every member: each member's handshake is checked
on its own, a member that fails the policy is refused (502, no request byte
reaches it, one RE00010 line naming that member) and mod_proxy_balancer
then puts it in error state for its retry= seconds, so the following
requests go to the members that pass.  Sessions are kept per member.
"""

import pytest

from checks import (PROXY_HANDSHAKE_FAILURE_TAGS, RE10_RE, assert_one_re10,
                    re10_lines)
from httpd import MODULES_DIR, free_port

BALANCER_MODULES = (
    f'LoadModule slotmem_shm_module "{MODULES_DIR}/mod_slotmem_shm.so"\n'
    f'LoadModule proxy_balancer_module "{MODULES_DIR}/mod_proxy_balancer.so"\n'
    f'LoadModule lbmethod_byrequests_module '
    f'"{MODULES_DIR}/mod_lbmethod_byrequests.so"\n')


def _balancer_vhost(pki, members, member_params="retry=60", policy=(),
                    in_section=False, host="127.0.0.1", sni="good.test"):
    """The policy in the virtual host, or (in_section) in the balancer's
    <Proxy> section, whose opening line then carries the balancer's
    parameters: only then does mod_proxy attach the section to the
    balancer (mod_proxy.c proxysection), which is where mod_proxy_hcheck
    finds it.  Members are https://<host>:<port>; sni=None leaves
    ReencryptSNI at its default (Backend: the member's host)."""
    rules = ["ReencryptEngine On",
             f'ReencryptCACertificateFile "{pki.ca_file}"',
             *([f"ReencryptSNI {sni}"] if sni else []),
             *policy]
    lines = ["SSLProxyEngine On"]
    if not in_section:
        lines += rules
    if in_section:
        lines.append("<Proxy balancer://app lbmethod=byrequests>")
        lines += ["    " + rule for rule in rules]
    else:
        lines.append("<Proxy balancer://app>")
    for be in members:
        lines.append(f"    BalancerMember https://{host}:{be.port} "
                     f"{member_params}")
    if not in_section:
        lines.append("    ProxySet lbmethod=byrequests")
    lines += ["</Proxy>",
              "ProxyPass / balancer://app/"]
    return "\n".join(lines)


def _get(env, path):
    r = env.get(path)
    return r.status, r.text


def test_reencrypt_16_001_every_member_verified(env, backend, module_so,
                                                pki):
    """Two members that pass: requests alternate, every one is served with
    the policy's SNI, and no member is refused."""
    a, b = backend("good"), backend("good-ec")
    env.write_config(vhost=_balancer_vhost(pki, [a, b]),
                     server=BALANCER_MODULES)
    env.start()
    for i in range(6):
        status, text = _get(env, f"/lb{i}")
        assert status == 200, env.error_log()
        assert text == f"backend-ok /lb{i}\n"
    assert len(a.requests) == 3 and len(b.requests) == 3, (
        a.describe(), b.describe())
    assert set(a.snis) == {"good.test"} and set(b.snis) == {"good.test"}
    assert not re10_lines(env)


@pytest.mark.parametrize("in_section", [False, True],
                         ids=["policy-in-vhost", "policy-in-proxy-section"])
def test_reencrypt_16_002_refused_member_leaves_the_rotation(env, backend,
                                                             module_so,
                                                             pki,
                                                             in_section):
    """One member presents a chain from another CA: the one request sent
    to it is refused (502, no request byte reaches it, one RE00010 line
    naming that member), mod_proxy_balancer puts it in error state, and
    the next requests are all served by the good member."""
    good, impostor = backend("good"), backend("other-ca")
    env.write_config(vhost=_balancer_vhost(pki, [good, impostor],
                                           in_section=in_section),
                     server=BALANCER_MODULES)
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    env.start()
    statuses = [_get(env, f"/rot{i}")[0] for i in range(8)]
    assert statuses.count(502) == 1, (statuses, env.error_log())
    assert statuses.count(200) == 7, (statuses, env.error_log())
    assert statuses.index(502) <= 1, statuses   # within the first rotation
    impostor.wait_settled()
    assert impostor.accepted == 1, impostor.describe()
    assert impostor.app_bytes == 0, impostor.received[:300]
    assert impostor.handshakes_ok == 0, impostor.describe()
    assert len(good.requests) == 7, good.describe()
    assert_one_re10(env, impostor, "untrusted-chain")


def test_reencrypt_16_003_pin_per_member_scope(env, backend, module_so,
                                               pki):
    """A pin set for the balancer scope holds for every member: the member
    whose key is not pinned (neither the current nor the backup pin) is
    refused with pin-mismatch."""
    pinned, other = backend("good"), backend("good-ec")
    env.write_config(
        vhost=_balancer_vhost(pki, [pinned, other],
                              policy=[f"ReencryptPin {pki.pin('good')} "
                                      f"{pki.pin('good-next')}"]),
        server=BALANCER_MODULES)
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    env.start()
    statuses = [_get(env, f"/pin{i}")[0] for i in range(6)]
    assert statuses.count(502) == 1, (statuses, env.error_log())
    assert other.app_bytes == 0
    assert len(pinned.requests) == 5, pinned.describe()
    assert_one_re10(env, other, "pin-mismatch")


def test_reencrypt_16_004_sessions_kept_per_member(env, backend, module_so,
                                                   pki):
    """A new connection per request to each member: after its first (full)
    handshake every member resumes its own sessions; no member is offered
    a session another member issued (that would show as a declined offer,
    i.e. a second full handshake)."""
    a, b = backend("good"), backend("good-ec")
    env.write_config(vhost=_balancer_vhost(pki, [a, b],
                                           "retry=60 disablereuse=On"),
                     server=BALANCER_MODULES)
    env.start()
    for i in range(10):
        status, _ = _get(env, f"/sess{i}")
        assert status == 200, env.error_log()
    for be in (a, b):
        be.wait_settled()
        assert be.handshakes_ok == 5, be.describe()
        assert be.full == 1, be.describe()
        assert be.resumed == 4, be.describe()


HCHECK_MODULES = BALANCER_MODULES + (
    f'LoadModule proxy_hcheck_module "{MODULES_DIR}/mod_proxy_hcheck.so"\n')


@pytest.mark.parametrize("in_section", [False, True],
                         ids=["policy-in-vhost", "policy-in-proxy-section"])
def test_reencrypt_16_005_health_check_under_the_policy(env, backend,
                                                        module_so, pki,
                                                        in_section):
    """mod_proxy_hcheck's checks of a member run under the policy of the
    virtual host merged with the balancer's <Proxy> section: a member that
    fails it is marked down by the health check, before any client
    request is sent to it."""
    good, impostor = backend("good"), backend("other-ca")
    env.write_config(
        vhost=_balancer_vhost(pki, [good, impostor],
                              "retry=60 hcmethod=GET hcuri=/hc "
                              "hcinterval=1 hcfails=1 hcpasses=1",
                              in_section=in_section),
        server=HCHECK_MODULES)
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    env.start()
    # two checks of the impostor: the first one's verdict is applied
    # before the watchdog starts the second, hcinterval later
    impostor.wait_for(lambda be: be.accepted >= 2, timeout=10,
                      what="two health checks of the impostor")
    good.wait_for(lambda be: ("GET", "/hc") in be.requests, timeout=10,
                  what="a health check of the good member")
    statuses = [_get(env, f"/hc-client{i}")[0] for i in range(6)]
    assert statuses == [200] * 6, (statuses, env.error_log())
    impostor.wait_settled()
    assert impostor.app_bytes == 0, impostor.received[:300]
    assert impostor.handshakes_ok == 0, impostor.describe()
    lines = re10_lines(env)
    assert lines, env.error_log()
    for ln in lines:
        m = RE10_RE.search(ln.rest)
        assert m and m.group("backend") == f"127.0.0.1:{impostor.port}", \
            ln.raw
        assert m.group("reason") == "untrusted-chain", ln.raw


def test_reencrypt_16_006_failover_pass_that_skips_request_status(
        env, backend, module_so, pki):
    """mod_proxy's proxy_handler runs its request_status hook on its
    ordinary way out, but returns at once when a failover pass cannot
    rewrite the URL for the next member. Here the first member refuses
    the TCP connection (503: mod_proxy tries the next member, after
    mod_reencrypt's scheme handler ran for the first one) and the second
    member's URL is refused by mod_proxy_http's canonicalisation (a bad
    %-escape in its user part): the client gets 400, and mod_reencrypt's
    record of the thread's current request is left to its request pool's
    cleanup. The following requests, on the same and only worker thread,
    are each verified under their own policy and SNI: served with SNI
    good.test, or refused under a pin, naming their own backend."""
    good, impostor = backend("good"), backend("good-ec")
    closed, closed2 = free_port(), free_port()
    env.write_config(threads=1, server=BALANCER_MODULES, vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
<Proxy balancer://app>
    BalancerMember https://127.0.0.1:{closed} retry=60
    BalancerMember https://%zz@127.0.0.1:{closed2}/ retry=60
    ProxySet lbmethod=byrequests
</Proxy>
<Location /app/>
    ReencryptSNI app.test
    ProxyPass balancer://app/
</Location>
<Location /good/>
    ReencryptSNI good.test
    ProxyPass https://127.0.0.1:{good.port}/
</Location>
<Location /pinned/>
    ReencryptSNI good.test
    ReencryptPin {pki.pin('good')} {pki.pin('good-next')}
    ProxyPass https://127.0.0.1:{impostor.port}/
</Location>
""")
    env.expect_log("RE00010", "AH00957", "AH00959", "AH01114", "AH01083",
                   *PROXY_HANDSHAKE_FAILURE_TAGS)
    env.start()
    for i in range(3):
        r = env.get(f"/app/{i}")
        assert r.status == 400, (r, env.error_log())
        r = env.get(f"/good/{i}")
        assert r.status == 200, (r, env.error_log())
        assert r.text == f"backend-ok /{i}\n"
    r = env.get("/pinned/x")
    assert r.status == 502, (r, env.error_log())
    # the first request took the failover pass: connection refused by the
    # first member, then the second member's URL refused
    first = [ln.tag for ln in env.log_lines()
             if ln.tag in ("AH01114", "AH01083")]
    assert first[:2] == ["AH01114", "AH01083"], env.error_log()
    assert len(env.children()) == 1
    assert set(good.snis) == {"good.test"}, good.describe()
    assert len(good.requests) == 3, good.describe()
    impostor.wait_settled()
    assert impostor.app_bytes == 0 and impostor.handshakes_ok == 0
    assert_one_re10(env, impostor, "pin-mismatch")


# every health check of a member, and a verdict applied at the next one
HC_PARAMS = ("retry=60 hcmethod=GET hcuri=/hc hcinterval=1 hcfails=1 "
             "hcpasses=1")


def _checks(be):
    """The backend's connections that carried a health check."""
    return [c for c in be.connections if ("GET", "/hc") in c.requests]


def _client_paths(be, prefix):
    return [t for (_, t) in be.requests if t.startswith(prefix)]


def test_reencrypt_16_010_health_checks_use_the_member_name(env, backend,
                                                            module_so,
                                                            pki):
    """Members named by DNS (https://localhost:<port>, a certificate for
    DNS:localhost only), the default ReencryptSNI (Backend) and no
    ReencryptVerifyName: each health check sends the member's host as
    SNI and expects it in the certificate, as a request to that member
    does.  The members pass check after check, stay up, and serve the
    client requests in turn; no RE00010 is logged."""
    a, b = backend("localhost"), backend("localhost")
    env.write_config(vhost=_balancer_vhost(pki, [a, b], HC_PARAMS,
                                           host="localhost", sni=None),
                     server=HCHECK_MODULES)
    env.start()
    for be in (a, b):
        be.wait_for(lambda x: len(_checks(x)) >= 3, timeout=15,
                    what="three passed health checks")
    statuses = [_get(env, f"/hc-ok{i}")[0] for i in range(6)]
    assert statuses == [200] * 6, (statuses, env.error_log())
    for be in (a, b):
        be.wait_settled()
        assert len(_client_paths(be, "/hc-ok")) == 3, be.describe()
        assert be.handshakes_failed == 0, be.describe()
        assert set(c.sni for c in _checks(be)) == {"localhost"}, \
            be.describe()
        assert set(be.snis) == {"localhost"}, be.describe()
    assert not re10_lines(env), env.error_log()


def test_reencrypt_16_011_health_check_refuses_by_member_name(env, backend,
                                                             module_so,
                                                             pki):
    """Next to a member that passes, a member named localhost whose
    certificate, from the trust anchor, names other.test: its health
    checks are refused (RE00010 naming the member by its configured host,
    name-mismatch, expected "localhost" (SNI)) and it is marked down
    before any client request reaches it; every client request is served
    by the other member."""
    good, wrong = backend("localhost"), backend("wrong-name")
    env.write_config(vhost=_balancer_vhost(pki, [good, wrong], HC_PARAMS,
                                           host="localhost", sni=None),
                     server=HCHECK_MODULES)
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    env.start()
    # two checks of the wrong member: the first one's verdict is applied
    # before the watchdog starts the second, hcinterval later
    wrong.wait_for(lambda be: be.accepted >= 2, timeout=10,
                   what="two health checks of the wrong member")
    good.wait_for(lambda be: len(_checks(be)) >= 2, timeout=10,
                  what="two passed health checks of the good member")
    statuses = [_get(env, f"/hc-down{i}")[0] for i in range(6)]
    assert statuses == [200] * 6, (statuses, env.error_log())
    assert len(_client_paths(good, "/hc-down")) == 6, good.describe()
    wrong.wait_settled()
    assert wrong.app_bytes == 0, wrong.received[:300]
    assert wrong.handshakes_ok == 0, wrong.describe()
    assert set(wrong.snis) == {"localhost"}, wrong.describe()
    lines = re10_lines(env)
    assert len(lines) >= 2, env.error_log()
    for ln in lines:
        m = RE10_RE.search(ln.rest)
        assert m, ln.raw
        assert m.group("backend") == f"localhost:{wrong.port}", ln.raw
        assert m.group("reason") == "name-mismatch", ln.raw
        assert m.group("expected") == '"localhost" (SNI)', ln.raw
        assert "DNS:other.test" in m.group("seen"), ln.raw


def test_reencrypt_16_012_health_check_with_fixed_sni(env, backend,
                                                      module_so, pki):
    """ReencryptSNI <name> in the balancer's <Proxy> section: the health
    checks of DNS-named members send that name as SNI and expect it, as
    the requests do; the members stay up and serve."""
    a, b = backend("good"), backend("good-ec")
    env.write_config(vhost=_balancer_vhost(pki, [a, b], HC_PARAMS,
                                           in_section=True,
                                           host="localhost"),
                     server=HCHECK_MODULES)
    env.start()
    for be in (a, b):
        be.wait_for(lambda x: len(_checks(x)) >= 2, timeout=15,
                    what="two passed health checks")
    statuses = [_get(env, f"/hc-sni{i}")[0] for i in range(4)]
    assert statuses == [200] * 4, (statuses, env.error_log())
    for be in (a, b):
        be.wait_settled()
        assert len(_client_paths(be, "/hc-sni")) == 2, be.describe()
        assert be.handshakes_failed == 0, be.describe()
        assert set(be.snis) == {"good.test"}, be.describe()
    assert not re10_lines(env), env.error_log()
