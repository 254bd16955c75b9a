"""Balancer members under a policy.

A re-encrypting load balancer usually spreads requests over several
backends with mod_proxy_balancer.  The policy of the scope that proxies to
balancer://app applies to every member: each member's handshake is checked
on its own.  The handshake with a TLS member is made before the request is
sent, so a member that fails the policy (no request byte reaches it, one
RE00010 line naming that member and saying that the request moves on) is
put in error state for its retry= seconds and the same request goes to
another member: the client sees no refusal while one member passes.  When
every member tried is refused, the client gets 502.  Sessions are kept per
member.
"""

import concurrent.futures
import http.client
import ssl

import pytest

from checks import (PROXY_HANDSHAKE_FAILURE_TAGS, RE10_RE,
                    assert_member_moved_on, assert_one_re10, re10_lines)
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
    """One member presents a chain from another CA: the request sent to it
    moves on to the good member (200), no request byte reaches the
    impostor, one RE00010 line names it and says the request went on,
    mod_proxy_balancer puts it in error state, and the next requests are
    all served by the good member.  mod_proxy logs nothing for the
    refusal (no AH01084, AH00898, AH01097)."""
    good, impostor = backend("good"), backend("other-ca")
    env.write_config(vhost=_balancer_vhost(pki, [good, impostor],
                                           in_section=in_section),
                     server=BALANCER_MODULES)
    env.expect_log("RE00010")
    env.start()
    statuses = [_get(env, f"/rot{i}")[0] for i in range(8)]
    assert statuses == [200] * 8, (statuses, env.error_log())
    impostor.wait_settled()
    assert impostor.accepted == 1, impostor.describe()
    assert impostor.app_bytes == 0, impostor.received[:300]
    assert impostor.handshakes_ok == 0, impostor.describe()
    assert len(good.requests) == 8, good.describe()
    assert_member_moved_on(env, impostor, "untrusted-chain", "app")


def test_reencrypt_16_003_pin_per_member_scope(env, backend, module_so,
                                               pki):
    """A pin set for the balancer scope holds for every member: the member
    whose key is not pinned (neither the current nor the backup pin) is
    refused with pin-mismatch, and its request is served by the pinned
    one."""
    pinned, other = backend("good"), backend("good-ec")
    env.write_config(
        vhost=_balancer_vhost(pki, [pinned, other],
                              policy=[f"ReencryptPin {pki.pin('good')} "
                                      f"{pki.pin('good-next')}"]),
        server=BALANCER_MODULES)
    env.expect_log("RE00010")
    env.start()
    statuses = [_get(env, f"/pin{i}")[0] for i in range(6)]
    assert statuses == [200] * 6, (statuses, env.error_log())
    assert other.app_bytes == 0
    assert len(pinned.requests) == 6, pinned.describe()
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


def _keepalive_requests(env, prefix, n_conns, per_conn):
    """n_conns client connections at once, each sending per_conn requests
    over keep-alive; returns every status.  Like any HTTP client, a GET
    that finds its idle keep-alive connection closed before any answer
    (the event MPM closes idle keep-alive connections of a busy child)
    is sent again on a new connection."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def connect():
        return http.client.HTTPSConnection("127.0.0.1", env.port,
                                           timeout=15, context=ctx)

    def one(c):
        conn = connect()
        out = []
        try:
            for i in range(per_conn):
                for again in (False, True):
                    try:
                        conn.request("GET", f"{prefix}{c}-{i}",
                                     headers={"Host":
                                              f"localhost:{env.port}"})
                        r = conn.getresponse()
                        r.read()
                        break
                    except (http.client.RemoteDisconnected,
                            ConnectionResetError, BrokenPipeError):
                        conn.close()
                        if again or i == 0:
                            raise
                        conn = connect()
                out.append(r.status)
        finally:
            conn.close()
        return out

    with concurrent.futures.ThreadPoolExecutor(n_conns) as pool:
        return [st for sts in pool.map(one, range(n_conns)) for st in sts]


def _moved_on(m):
    return m.group("seen").endswith(
        "; balancer://app member put in error state for its retry=, the "
        "request goes on to another member if one is left")


def test_reencrypt_16_020_refused_member_costs_the_client_nothing(
        env, backend, module_so, pki):
    """Three members, one an impostor (a chain from another CA): 200
    requests over 10 keep-alive client connections, served by both child
    processes, all answered 200.  The impostor receives no request byte;
    each RE00010 line (one per request that picked it before its error
    state was set) names it and says the request moved on; mod_proxy
    logs nothing about it."""
    a, b, impostor = backend("good"), backend("good-ec"), backend("other-ca")
    vhost = _balancer_vhost(pki, [a, impostor, b])
    vhost += ('\nLogFormat "%P %>s %{BALANCER_WORKER_NAME}e" lbfmt\n'
              f'CustomLog "{env.access_log_file}" lbfmt')
    env.write_config(vhost=vhost, server=BALANCER_MODULES, processes=2,
                     threads=8)
    # AH00940: a request of one child chose the impostor just as another
    # child put it in error state; it moves on as well
    env.expect_log("RE00010", "AH00940")
    env.start()
    statuses = _keepalive_requests(env, "/many", 10, 20)
    assert statuses == [200] * 200, (
        [x for x in statuses if x != 200], env.error_log())
    impostor.wait_settled()
    assert impostor.app_bytes == 0, impostor.received[:300]
    assert impostor.handshakes_ok == 0, impostor.describe()
    assert len(a.requests) + len(b.requests) == 200
    lines = env.access_lines(200)
    assert len({ln.split()[0] for ln in lines}) == 2, lines[:5]
    assert all(ln.split()[1] == "200" for ln in lines)
    assert not [ln for ln in lines if str(impostor.port) in ln]
    # requests that picked the impostor before its error state was set,
    # at most one per client connection
    re10 = re10_lines(env)
    assert 1 <= len(re10) <= 10, env.error_log()
    for ln in re10:
        m = RE10_RE.search(ln.rest)
        assert m and m.group("backend") == f"127.0.0.1:{impostor.port}"
        assert m.group("reason") == "untrusted-chain" and _moved_on(m), ln.raw
    assert not [ln for ln in env.log_lines()
                if ln.tag in PROXY_HANDSHAKE_FAILURE_TAGS], env.error_log()


@pytest.mark.parametrize("forcerecovery", ["On", "Off"])
def test_reencrypt_16_021_every_member_refused(env, backend, module_so, pki,
                                               forcerecovery):
    """Two members, both impostors: the first request tries both (one
    RE00010 line each) and gets 502; neither receives a request byte.
    With both in error state, mod_proxy_balancer's forcerecovery (On by
    default) tries them again for the next request: 502 again, two more
    lines.  With forcerecovery=Off it answers the next request with its
    own 503 (AH01170) without trying them."""
    imp1, imp2 = backend("other-ca"), backend("other-ca")
    vhost = _balancer_vhost(pki, [imp1, imp2]).replace(
        "ProxySet lbmethod=byrequests",
        f"ProxySet lbmethod=byrequests forcerecovery={forcerecovery}")
    env.write_config(vhost=vhost, server=BALANCER_MODULES)
    env.expect_log("RE00010", "AH01170")
    env.start()
    r = env.get("/all-refused")
    assert r.status == 502, (r, env.error_log())
    for be in (imp1, imp2):
        be.wait_settled()
        assert be.app_bytes == 0, be.received[:300]
        assert be.accepted == 1, be.describe()
    re10 = re10_lines(env)
    assert sorted(RE10_RE.search(ln.rest).group("backend") for ln in re10) \
        == sorted(f"127.0.0.1:{be.port}" for be in (imp1, imp2)), \
        env.error_log()
    r = env.get("/all-in-error")
    if forcerecovery == "On":
        assert r.status == 502, (r, env.error_log())
        assert len(re10_lines(env)) == 4
        assert not env.lines_with("AH01170")
        want_accepted = 2
    else:
        assert r.status == 503, (r, env.error_log())
        assert env.lines_with("AH01170"), env.error_log()
        assert len(re10_lines(env)) == 2
        want_accepted = 1
    for be in (imp1, imp2):
        be.wait_settled()
        assert be.accepted == want_accepted, be.describe()
        assert be.app_bytes == 0, be.received[:300]


@pytest.mark.parametrize("maxattempts,first", [(1, 502), (2, 200), (0, 502)],
                         ids=["maxattempts=1", "maxattempts=2",
                              "maxattempts=0"])
def test_reencrypt_16_022_maxattempts(env, backend, module_so, pki,
                                      maxattempts, first):
    """Members impostor, impostor, good (byrequests picks them in that
    order): maxattempts bounds the members one request tries after the
    first.  With 1 (or 0) the first request is refused by the impostors
    it tries (502); with 2 it reaches the good member.  Either way the
    next request, with both impostors in error state, is served."""
    imp1, imp2, good = (backend("other-ca"), backend("other-ca"),
                        backend("good"))
    vhost = _balancer_vhost(pki, [imp1, imp2, good]).replace(
        "ProxySet lbmethod=byrequests",
        f"ProxySet lbmethod=byrequests maxattempts={maxattempts}")
    env.write_config(vhost=vhost, server=BALANCER_MODULES)
    env.expect_log("RE00010")
    env.start()
    r = env.get("/first")
    assert r.status == first, (r, env.error_log())
    tried = 1 + min(maxattempts, 2)
    assert len(re10_lines(env)) == min(tried, 2), env.error_log()
    if maxattempts == 0:
        # the second request tries the second impostor, the third is served
        assert env.get("/second").status == 502
        assert len(re10_lines(env)) == 2
    r = env.get("/next")
    assert r.status == 200, (r, env.error_log())
    for be in (imp1, imp2):
        assert be.app_bytes == 0, be.received[:300]
    assert ("GET", "/next") in good.requests


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
    # first member (when mod_reencrypt connects to it, to make the
    # handshake before the request), then the second member's URL refused
    first = [ln.tag for ln in env.log_lines()
             if ln.tag in ("AH00957", "AH01114", "AH01083")]
    assert first[:2] == ["AH00957", "AH01083"], env.error_log()
    assert len(env.children()) == 1
    assert set(good.snis) == {"good.test"}, good.describe()
    assert len(good.requests) == 3, good.describe()
    impostor.wait_settled()
    assert impostor.app_bytes == 0 and impostor.handshakes_ok == 0
    assert_one_re10(env, impostor, "pin-mismatch")


def test_reencrypt_16_023_failover_with_health_checks(env, backend,
                                                     module_so, pki):
    """Three members, one an impostor, with mod_proxy_hcheck checking
    them every 5 s: client requests that reach the impostor before a
    check has marked it down move on to a good member, so all 100 get
    200 over keep-alive connections; the impostor receives no byte of
    any request, client or check."""
    a, b, impostor = backend("good"), backend("good-ec"), backend("other-ca")
    env.write_config(
        vhost=_balancer_vhost(pki, [impostor, a, b],
                              "retry=60 hcmethod=GET hcuri=/hc "
                              "hcinterval=5 hcfails=1 hcpasses=1"),
        server=HCHECK_MODULES, processes=2)
    env.expect_log("RE00010", "AH00940")
    env.start()
    statuses = _keepalive_requests(env, "/hc-many", 5, 20)
    assert statuses == [200] * 100, ([x for x in statuses if x != 200],
                                     env.error_log())
    impostor.wait_settled()
    assert impostor.app_bytes == 0, impostor.received[:300]
    assert impostor.handshakes_ok == 0, impostor.describe()
    served = [t for (_, t) in a.requests + b.requests
              if t.startswith("/hc-many")]
    assert len(served) == 100
    for ln in re10_lines(env):
        m = RE10_RE.search(ln.rest)
        assert m and m.group("backend") == f"127.0.0.1:{impostor.port}"
    assert not [ln for ln in env.log_lines()
                if ln.tag in PROXY_HANDSHAKE_FAILURE_TAGS], env.error_log()


# every health check of a member, and a verdict applied at the next one
HC_PARAMS = ("retry=60 hcmethod=GET hcuri=/hc hcinterval=1 hcfails=1 "
             "hcpasses=1")


def _checks(be):
    """The backend's connections that carried a health check."""
    return [c for c in be.connections if ("GET", "/hc") in c.requests]


def _client_paths(be, prefix):
    return [t for (_, t) in be.requests if t.startswith(prefix)]


def _assert_checked_members_serve(env, members, n, n_word, prefix):
    """Each member passes n health checks; then n requests per member
    under prefix are all served (200), n by each member, and no handshake
    with a member failed."""
    for be in members:
        be.wait_for(lambda x: len(_checks(x)) >= n, timeout=15,
                    what=f"{n_word} passed health checks")
    total = n * len(members)
    statuses = [_get(env, f"{prefix}{i}")[0] for i in range(total)]
    assert statuses == [200] * total, (statuses, env.error_log())
    for be in members:
        be.wait_settled()
        assert len(_client_paths(be, prefix)) == n, be.describe()
        assert be.handshakes_failed == 0, be.describe()


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
    _assert_checked_members_serve(env, (a, b), 3, "three", "/hc-ok")
    for be in (a, b):
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
    _assert_checked_members_serve(env, (a, b), 2, "two", "/hc-sni")
    for be in (a, b):
        assert set(be.snis) == {"good.test"}, be.describe()
    assert not re10_lines(env), env.error_log()
