"""What `apachectl -t` says of the policies.

`apache2 -f conf -t -D DUMP_REENCRYPT` prints, on standard output, every
scope whose policy is on once merged (virtual hosts, <Location> and
<Proxy> sections, balancers with their members), each value in effect and
the file:line that set it, or (default); a section that turns the policy
of its server off is listed with its `ReencryptEngine Off`.

`apache2 -f conf -t -D REENCRYPT_PROBE` makes a TLS handshake with every
backend named under a policy (ProxyPass URLs, balancer members, <Proxy>
sections of one host), all at once within 5 seconds, verifies each as a
request's handshake would be verified, sends no request, prints one line
per backend (ok / refused / report / unreachable) and exits non-zero when
one would be refused or cannot be reached.
"""

import hashlib
import re
import time

from checks import PROXY_HANDSHAKE_FAILURE_TAGS, RE10_RE, re10_lines
from libssl_backend import TLS1_2_VERSION, TLS1_3_VERSION, LibsslBackend
from test_16_balancer import BALANCER_MODULES

PROBE_SECONDS = 5           # REENCRYPT_PROBE_SECONDS (reencrypt_dump.h)

VALUE_RE = re.compile(r"^    (?P<directive>\S+) (?P<value>.*?)\s{2,}"
                      r"(?P<origin>\S.*)$")
PROBE_RE = re.compile(r"^(?P<result>ok|refused|report|unreachable) "
                      r"(?P<backend>\S+)(?: (?P<sni>\S+))?: (?P<text>.*) "
                      r"\[(?P<origin>[^\[\]]*)\]$")


def run(env, *defines):
    """apache2 -f conf -t -D ...: (exit code, stdout, stderr, seconds)."""
    args = ["-t"]
    for d in defines:
        args += ["-D", d]
    t0 = time.monotonic()
    p = env.apache2(*args)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t0


def parse_dump(out):
    """{header: {"values": {directive: [(value, origin)]}, "notes": [...],
    "members": [...]}} of a DUMP_REENCRYPT output, headers as printed
    (stripped), in order."""
    blocks = {}
    cur = None
    for line in out.splitlines():
        if line.startswith("    # "):
            cur["notes"].append(line[6:])
        elif line.startswith("    BalancerMember "):
            cur["members"].append(line.split(" ", 5)[-1])
        elif line.startswith("    "):
            m = VALUE_RE.match(line)
            assert m, f"not a value line: {line!r}"
            cur["values"].setdefault(m.group("directive"), []).append(
                (m.group("value"), m.group("origin")))
        else:
            cur = {"values": {}, "notes": [], "members": []}
            blocks[line.strip()] = cur
    return blocks


def block(blocks, prefix):
    found = [b for h, b in blocks.items() if h.startswith(prefix)]
    assert len(found) == 1, (prefix, list(blocks))
    return found[0]


def value(blk, directive):
    vals = blk["values"].get(directive)
    assert vals and len(vals) == 1, (directive, blk)
    return vals[0]


def parse_probe(out):
    lines = [ln for ln in out.splitlines()
             if ln.split(" ", 1)[0] in ("ok", "refused", "report",
                                        "unreachable")]
    parsed = []
    for ln in lines:
        m = PROBE_RE.match(ln)
        assert m, f"probe line of another shape: {ln!r}"
        parsed.append(m)
    return parsed


def by_backend(lines, be):
    found = [m for m in lines if m.group("backend") == f"127.0.0.1:{be.port}"]
    assert len(found) == 1, [m.group(0) for m in lines]
    return found[0]


def no_request_reached(*backends):
    for be in backends:
        assert be.requests == [] and be.app_bytes == 0, be.describe()


# ------------------------------------------------------------------ dump

def _dump_config(env, pki):
    env.write_config(server=BALANCER_MODULES, vhost=f"""
SSLProxyEngine On
SSLProxyCheckPeerExpire Off
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptVerifyDepth 3
ReencryptSNI good.test
ReencryptVerifyName good.test other.test
ProxyPass /app https://127.0.0.1:9/
<Proxy "https://127.0.0.1:9/">
    ReencryptPin {pki.pin("good")} {pki.pin("good-next")}
    ReencryptRefuseExpiringWithin 2d
</Proxy>
<Location /plain>
    ReencryptEngine Off
</Location>
ProxyPass /lb balancer://app/
<Proxy balancer://app lbmethod=byrequests>
    ReencryptMode Report
    BalancerMember https://127.0.0.1:10
    BalancerMember https://localhost:11
</Proxy>
""")


def test_reencrypt_23_001_dump_scopes_values_and_origins(env, module_so,
                                                         pki):
    """-t -D DUMP_REENCRYPT lists the virtual host, the <Proxy> section
    (which inherits the virtual host's values and names the virtual
    host's lines for them), the <Location> that turns the policy off
    (its Off and its line, nothing else) and the balancer with its
    members; every value names the file:line that set it or (default);
    the trust anchors come with their number and the SHA-256 of their
    file; exit code 0, Syntax OK, and the same output twice."""
    _dump_config(env, pki)
    conf = env.conf_file
    rc, out, err, _ = run(env, "DUMP_REENCRYPT")
    assert rc == 0, (out, err)
    assert "Syntax OK" in err, err
    at = {needle: f"{conf}:{env.line_of(needle)}" for needle in (
        "ReencryptEngine On", "ReencryptVerifyDepth 3", "ReencryptSNI",
        "ReencryptVerifyName", "ReencryptCACertificateFile", "ReencryptPin",
        "ReencryptRefuseExpiringWithin", "ReencryptEngine Off",
        "ReencryptMode Report", '<Proxy "https://127.0.0.1:9/">',
        "<Location /plain>", "<Proxy balancer://app",
        f"<VirtualHost 127.0.0.1:{env.port}>")}
    blocks = parse_dump(out)
    assert list(blocks)[0].startswith("mod_reencrypt policies"), out

    # the virtual host: its own values, and the defaults
    vh = block(blocks, f"<VirtualHost 127.0.0.1:{env.port}> localhost "
                       f"({at[f'<VirtualHost 127.0.0.1:{env.port}>']})")
    assert value(vh, "ReencryptEngine") == ("On", at["ReencryptEngine On"])
    assert value(vh, "ReencryptVerifyDepth") == (
        "3", at["ReencryptVerifyDepth 3"])
    assert value(vh, "ReencryptSNI") == ("good.test", at["ReencryptSNI"])
    assert value(vh, "ReencryptVerifyName") == (
        "good.test other.test", at["ReencryptVerifyName"])
    with open(pki.ca_file, "rb") as f:
        ca = f.read()
    count = ca.count(b"-----BEGIN CERTIFICATE-----")
    assert value(vh, "ReencryptCACertificateFile") == (
        f"{pki.ca_file} ({count} certificate{'' if count == 1 else 's'}, "
        f"SHA-256 {hashlib.sha256(ca).hexdigest()})",
        at["ReencryptCACertificateFile"])
    for directive, default in (("ReencryptOCSPStapling", "Off"),
                               ("ReencryptMode", "Enforce"),
                               ("ReencryptCheckName", "On"),
                               ("ReencryptTrust", "Anchors"),
                               ("ReencryptPinScope", "Leaf"),
                               ("ReencryptClockSkew", "0s"),
                               ("ReencryptSessionReuse", "On"),
                               ("ReencryptSessionTimeout", "5m"),
                               ("ReencryptRevocationCheck", "Off"),
                               ("ReencryptCARevocationFile", "(none)"),
                               ("ReencryptPin", "(none)")):
        assert value(vh, directive) == (default, "(default)"), directive

    # the <Proxy> section: the virtual host's values, with its lines,
    # and its own
    section = '<Proxy "https://127.0.0.1:9/">'
    px = block(blocks, f"{section} ({at[section]})")
    assert value(px, "ReencryptEngine") == ("On", at["ReencryptEngine On"])
    assert value(px, "ReencryptVerifyDepth") == (
        "3", at["ReencryptVerifyDepth 3"])
    assert value(px, "ReencryptCACertificateFile")[1] == \
        at["ReencryptCACertificateFile"]
    assert value(px, "ReencryptPin") == (
        f"{pki.pin('good')} {pki.pin('good-next')}", at["ReencryptPin"])
    assert value(px, "ReencryptRefuseExpiringWithin") == (
        "2d", at["ReencryptRefuseExpiringWithin"])
    assert value(px, "ReencryptMode") == ("Enforce", "(default)")

    # the <Location> that turns it off: listed as off, nothing more
    loc = block(blocks, f'<Location "/plain"> ({at["<Location /plain>"]})')
    assert loc["values"] == {"ReencryptEngine": [
        ("Off", at["ReencryptEngine Off"])]}, loc
    assert loc["notes"] == [
        "no policy here: mod_ssl's SSLProxy* settings alone"], loc

    # the balancer: its members, under the virtual host merged with its
    # <Proxy balancer://app lbmethod=...> section
    lb = block(blocks, f"balancer://app: its members, under the policy "
                       f"their health checks get "
                       f"({at['<Proxy balancer://app']})")
    assert lb["members"] == ["https://127.0.0.1:10",
                             "https://localhost:11"], lb
    assert value(lb, "ReencryptMode") == ("Report",
                                          at["ReencryptMode Report"])
    assert value(lb, "ReencryptSNI") == ("good.test", at["ReencryptSNI"])
    assert value(lb, "ReencryptPin") == ("(none)", "(default)")

    # the main server has no policy and is not listed; the server-wide
    # settings close the output
    assert not [h for h in blocks if h.startswith("main server")], out
    sw = block(blocks, "Server-wide (main server):")
    assert value(sw, "ReencryptSessionCache") == ("shmcb", "(default)")
    assert value(sw, "ReencryptStatusBackends") == ("64", "(default)")

    # stable: the same bytes a second time
    rc2, out2, _, _ = run(env, "DUMP_REENCRYPT")
    assert (rc2, out2) == (rc, out)


def test_reencrypt_23_002_dump_only_when_asked(env, module_so, pki):
    """Without -D DUMP_REENCRYPT, apache2 -t prints nothing on standard
    output; with -D DUMP_VHOSTS (a configuration dump, which reads no
    trust anchor) the probe says it does not run; a configuration without
    any policy says so, with the server-wide settings and the line of
    each one set."""
    _dump_config(env, pki)
    rc, out, err, _ = run(env)
    assert (rc, out) == (0, ""), (out, err)
    assert "Syntax OK" in err
    # httpd's own dumps read no file the configuration names: no probe
    rc, out, err, _ = run(env, "DUMP_VHOSTS", "REENCRYPT_PROBE")
    assert rc == 0, (out, err)
    assert out.splitlines()[-1] == (
        "mod_reencrypt probe: not run with -S or another -D DUMP_ of "
        "httpd's own, which leave the trust anchors unread: run apachectl "
        "-t -D REENCRYPT_PROBE"), out

    env.write_config(server="ReencryptStatusBackends 16", vhost="""
SSLProxyEngine On
ProxyPass / https://127.0.0.1:9/
""")
    rc, out, err, _ = run(env, "DUMP_REENCRYPT")
    assert rc == 0, (out, err)
    blocks = parse_dump(out)
    assert "no scope has a policy (ReencryptEngine On)" in blocks, out
    sw = block(blocks, "Server-wide (main server):")
    assert value(sw, "ReencryptStatusBackends") == (
        "16", f"{env.conf_file}:{env.line_of('ReencryptStatusBackends')}")


# ----------------------------------------------------------------- probe

def test_reencrypt_23_003_probe_good_impostor_closed_slow(env, backend,
                                                          module_so, pki):
    """-t -D REENCRYPT_PROBE: the good backend is ok (its subject, issuer,
    notAfter and pin), the impostor (another CA) is refused with the
    reason, expected and seen of the RE00010 line a request to it logs,
    the closed port and the backend that never answers the ClientHello
    are unreachable; all within the 5 s bound, no request byte reaches
    any backend, exit code 1, no Syntax OK, RE00100 on stderr."""
    good = backend("good")
    impostor = backend("other-ca")
    slow = backend("good", handshake_delay=PROBE_SECONDS + 3)
    closed = backend("good")
    closed.stop()                   # nothing listens on its port any more
    env.write_config(vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptSNI good.test
ProxyPass /good https://127.0.0.1:{good.port}/
ProxyPass /impostor https://127.0.0.1:{impostor.port}/
ProxyPass /slow https://127.0.0.1:{slow.port}/
ProxyPass /closed https://127.0.0.1:{closed.port}/
""")
    rc, out, err, took = run(env, "REENCRYPT_PROBE")
    assert rc == 1, (out, err)
    assert "Syntax OK" not in err, err
    assert ("RE00100: apachectl -t -D REENCRYPT_PROBE: 3 of 4 backends "
            "would be refused or cannot be reached") in err, err
    assert took < PROBE_SECONDS + 2.5, (took, out)
    lines = parse_probe(out)
    assert len(lines) == 4, out

    ok = by_backend(lines, good)
    assert (ok.group("result"), ok.group("sni")) == ("ok", "good.test")
    assert ok.group("text").startswith(
        f"CN=good.test, issuer CN=Test Intermediate CA, notAfter "), ok[0]
    assert ok.group("text").endswith(f", pin {pki.pin('good')}"), ok[0]
    assert ok.group("origin") == (
        f"ProxyPass /good in <VirtualHost 127.0.0.1:{env.port}>")

    bad = by_backend(lines, impostor)
    assert (bad.group("result"), bad.group("sni")) == ("refused",
                                                       "good.test")
    assert bad.group("text").startswith("untrusted-chain; expected "), bad[0]

    down = by_backend(lines, closed)
    assert down.group("result") == "unreachable", down[0]
    assert down.group("text") == "Connection refused", down[0]

    mute = by_backend(lines, slow)
    assert mute.group("result") == "unreachable", mute[0]
    assert mute.group("text") == (
        f"no answer to the TLS handshake within {PROBE_SECONDS} s"), mute[0]
    assert out.splitlines()[-1].startswith(
        "1 ok, 1 refused, 0 report-only, 2 unreachable, in "), out

    # each reachable backend saw one handshake with the policy's SNI, and
    # no request
    good.wait_settled()
    impostor.wait_settled()
    assert good.accepted == 1 and good.handshakes_ok == 1, good.describe()
    assert good.snis == ["good.test"] and impostor.snis == ["good.test"]
    assert slow.accepted == 1, slow.describe()
    no_request_reached(good, impostor, slow)

    # a request to the impostor is refused for the very same reason
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    env.start()
    assert env.get("/impostor").status == 502
    m = RE10_RE.search(re10_lines(env)[0].rest)
    assert f"{m.group('reason')}; expected {m.group('expected')}; seen " \
           f"{m.group('seen')}" == bad.group("text"), (m.group(0), bad[0])


def test_reencrypt_23_004_probe_all_pass(env, backend, module_so, pki):
    """Every kind of backend a policy names passes: a ProxyPass URL and a
    wss:// one to the same backend (one probe), an h2:// URL, a balancer
    member, a <Proxy https://localhost:port/> section with ReencryptSNI
    Host (the backend's host stands in for the client's, and the line
    says so) presenting the section's SSLProxyMachineCertificateFile to a
    backend that asks for one; a backend refused under ReencryptMode
    Report is a report line. Exit code 0 and Syntax OK; no request."""
    web = backend("good")
    member = backend("good-ec")
    named = backend("localhost", client_ca=pki.ca_file)
    h2 = backend("good")
    reported = backend("other-ca")
    env.write_config(server=BALANCER_MODULES, vhost=f"""
SSLProxyEngine On
SSLProxyCheckPeerExpire Off
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptSNI good.test
ProxyPass /web https://127.0.0.1:{web.port}/
ProxyPass /ws wss://127.0.0.1:{web.port}/
ProxyPass /h2 h2://127.0.0.1:{h2.port}/
ProxyPass /lb balancer://app/
<Proxy balancer://app lbmethod=byrequests>
    BalancerMember https://127.0.0.1:{member.port}
</Proxy>
<Proxy https://localhost:{named.port}/>
    ReencryptSNI Host
    ReencryptVerifyName localhost
    SSLProxyMachineCertificateFile "{pki.client_pem("admin-client")}"
</Proxy>
<Location /reported>
    ReencryptMode Report
    ProxyPass https://127.0.0.1:{reported.port}/
</Location>
""")
    rc, out, err, _ = run(env, "REENCRYPT_PROBE")
    assert rc == 0, (out, err)
    assert "Syntax OK" in err, err
    lines = parse_probe(out)
    assert len(lines) == 5, out
    origins = {m.group("backend"): m.group("origin") for m in lines}
    vh = f"<VirtualHost 127.0.0.1:{env.port}>"

    m = by_backend(lines, web)
    assert (m.group("result"), m.group("sni")) == ("ok", "good.test"), m[0]
    assert origins[m.group("backend")] == f"ProxyPass /web in {vh}, and 1 more"
    m = by_backend(lines, h2)
    assert m.group("result") == "ok", m[0]
    assert origins[m.group("backend")] == f"ProxyPass /h2 in {vh}"
    m = by_backend(lines, member)
    assert m.group("result") == "ok", m[0]
    assert m.group("text").endswith(f"pin {pki.pin('good-ec')}"), m[0]
    assert origins[m.group("backend")] == (
        f"BalancerMember of balancer://app in {vh}")
    m = [x for x in lines if x.group("backend") == f"localhost:{named.port}"]
    assert len(m) == 1, out
    m = m[0]
    assert (m.group("result"), m.group("sni")) == ("ok", "localhost"), m[0]
    assert m.group("text").endswith(
        "; ReencryptSNI Host: no request, the backend's host stood in for "
        "the client's"), m[0]
    named.wait_settled()
    assert named.client_cns == ["admin.client.test"], named.describe()
    m = by_backend(lines, reported)
    assert (m.group("result"), m.group("sni")) == ("report", "good.test")
    assert m.group("text").startswith(
        "would refuse: untrusted-chain; expected "), m[0]
    assert origins[m.group("backend")] == (
        f'ProxyPass in <Location "/reported"> in {vh}')
    assert out.splitlines()[-1].startswith(
        "4 ok, 0 refused, 1 report-only, 0 unreachable, in "), out
    for be in (web, member, named, h2, reported):
        be.wait_settled()
    no_request_reached(web, member, named, h2, reported)
    assert web.accepted == 1, web.describe()


def test_reencrypt_23_005_probe_revocation_and_stapling(env, backend,
                                                        module_so, pki):
    """The probe checks what the policy checks: a leaf its CRL lists is
    refused (revoked), a backend without an OCSP staple is refused under
    ReencryptOCSPStapling Require (staple-missing) and passes under
    Verify, the line saying what the CRL and the staple check found."""
    revoked = backend("revoked")
    required = backend("good")
    verified = backend("good-ec")
    crl = pki.crl("dump-int.crl", issuer="int", revoked=("revoked",))
    env.write_config(vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptSNI good.test
ReencryptCARevocationFile "{crl}"
ReencryptRevocationCheck Leaf
<Location /revoked>
    ProxyPass https://127.0.0.1:{revoked.port}/
</Location>
<Location /required>
    ProxyPass https://127.0.0.1:{required.port}/
    ReencryptOCSPStapling Require
</Location>
<Location /verified>
    ProxyPass https://127.0.0.1:{verified.port}/
    ReencryptOCSPStapling Verify
</Location>
""")
    rc, out, err, _ = run(env, "REENCRYPT_PROBE")
    assert rc == 1, (out, err)
    lines = parse_probe(out)
    assert len(lines) == 3, out
    m = by_backend(lines, revoked)
    assert (m.group("result"), m.group("sni")) == ("refused",
                                                   "good.test"), m[0]
    assert m.group("text").startswith("revoked; expected "), m[0]
    m = by_backend(lines, required)
    assert m.group("result") == "refused", m[0]
    assert m.group("text").startswith("staple-missing; expected "), m[0]
    m = by_backend(lines, verified)
    assert m.group("result") == "ok", m[0]
    assert m.group("text").endswith(
        ", revocation good, OCSP staple absent"), m[0]
    for be in (revoked, required, verified):
        be.wait_settled()
    no_request_reached(revoked, required, verified)


def test_reencrypt_23_006_dump_balancer_section_without_parameters(
        env, module_so, pki):
    """A <Proxy balancer://app> section whose opening line carries no
    balancer parameter is not attached to the balancer (mod_proxy.c,
    proxysection): the dump lists the members under the virtual host's
    policy, as their health checks get it, and says that requests get
    the section too, naming its line."""
    env.write_config(server=BALANCER_MODULES, vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ProxyPass / balancer://app/
<Proxy balancer://app>
    ReencryptSNI good.test
    BalancerMember https://127.0.0.1:10
    ProxySet lbmethod=byrequests
</Proxy>
""")
    rc, out, err, _ = run(env, "DUMP_REENCRYPT")
    assert rc == 0, (out, err)
    blocks = parse_dump(out)
    section = f"{env.conf_file}:{env.line_of('<Proxy balancer://app>')}"
    lb = block(blocks, "balancer://app: its members, under the policy "
                       "their health checks get")
    assert lb["members"] == ["https://127.0.0.1:10"], lb
    assert lb["notes"] == [
        f"requests also get the <Proxy balancer://app> section at "
        f"{section}, health checks do not (its opening line carries no "
        f"balancer parameter, such as lbmethod=)"], lb
    assert value(lb, "ReencryptSNI") == ("Backend", "(default)")
    px = block(blocks, f'<Proxy "balancer://app"> ({section})')
    assert value(px, "ReencryptSNI") == (
        "good.test", f"{env.conf_file}:{env.line_of('ReencryptSNI')}")


def test_reencrypt_23_007_probe_checks_the_staple(env, module_so, pki):
    """Under ReencryptOCSPStapling the probe asks for a staple
    (status_request) and checks it as a request's handshake does: a good
    staple passes (ok, OCSP staple good), a revoked one is refused
    (staple-revoked, the expected text of RE00010); without stapling no
    staple is asked for. No request reaches any backend."""
    good = LibsslBackend(pki.chain("good"), pki.key("good"), TLS1_3_VERSION,
                         staple=pki.ocsp_response("good")).start()
    revoked = LibsslBackend(pki.chain("good"), pki.key("good"),
                            TLS1_2_VERSION,
                            staple=pki.ocsp_response(
                                "good", status="revoked")).start()
    plain = LibsslBackend(pki.chain("good"), pki.key("good"), TLS1_3_VERSION,
                          staple=pki.ocsp_response("good")).start()
    try:
        env.write_config(vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptSNI good.test
<Location /good>
    ProxyPass https://127.0.0.1:{good.port}/
    ReencryptOCSPStapling Require
</Location>
<Location /revoked>
    ProxyPass https://127.0.0.1:{revoked.port}/
    ReencryptOCSPStapling Verify
</Location>
ProxyPass /plain https://127.0.0.1:{plain.port}/
""")
        rc, out, err, _ = run(env, "REENCRYPT_PROBE")
        assert rc == 1, (out, err)
        lines = parse_probe(out)
        assert len(lines) == 3, out
        m = by_backend(lines, good)
        assert m.group("result") == "ok", m[0]
        assert m.group("text").endswith(", OCSP staple good"), m[0]
        m = by_backend(lines, revoked)
        assert m.group("result") == "refused", m[0]
        assert m.group("text").startswith(
            "staple-revoked; expected an OCSP staple for CN=good.test "
            "serial 0x"), m[0]
        m = by_backend(lines, plain)
        assert m.group("result") == "ok", m[0]
        assert "OCSP staple" not in m.group("text"), m[0]
        for be in (good, revoked, plain):
            be.wait_closed()
        asked = {be: [c.status_requested for c in be.connections]
                 for be in (good, revoked, plain)}
        assert asked == {good: [True], revoked: [True], plain: [False]}, asked
        for be in (good, revoked, plain):
            assert be.app_bytes == 0 and not be.served(), be.connections
    finally:
        for be in (good, revoked, plain):
            be.stop()
