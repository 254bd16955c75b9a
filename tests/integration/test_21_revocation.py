"""Revocation: CRLs for backend chains.

ReencryptCARevocationFile names files of CRLs (PEM or DER, one or more
each; the directive adds up within a scope).  ReencryptRevocationCheck
Chain (the default where CRLs are given) checks every certificate of the
chain, Leaf the backend's own only; NoCRLForCertOK lets a certificate
whose issuer published no CRL pass.  Refusal reasons: revoked,
crl-expired (nextUpdate past, with ReencryptClockSkew as grace),
crl-missing, crl-invalid (a CRL whose signature does not verify).  Every
refusal is a 502 with no request byte at the backend and one RE00010 line.
mod_ssl's SSLProxyCARevocation* directives, which a policy would not use,
are refused by apache2 -t where a policy is on.
"""

import datetime
import os
import re
import shutil
import time

import pytest
from cryptography import x509

from checks import (PROXY_HANDSHAKE_FAILURE_TAGS, asn1_time,
                    assert_one_re10, assert_refused, assert_reported,
                    assert_served, assert_time_near, policy_vhost)
from test_01_configtest import assert_syntax_error
from test_13_sessions import (_get_ok, _sessions, _vhost,  # noqa: F401
                              cache_daemon)

HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)

REV_LOG_FORMAT = ('LogFormat "%U %>s %{REENCRYPT_RESULT}e '
                  '%{REENCRYPT_REVOCATION}e" rev')


def _crls(pki, tag, root_revoked=(), int_revoked=(), **kw):
    """CRLs of the root and of the intermediate, one file each."""
    return (pki.crl(f"{tag}-root.crl", "root", revoked=root_revoked),
            pki.crl(f"{tag}-int.crl", "int", revoked=int_revoked, **kw))


def _crl_lines(*files):
    return [f'ReencryptCARevocationFile "{f}"' for f in files]


def _vhost_with(env, be, *directives):
    return (policy_vhost(be.url_ip, "ReencryptSNI good.test", *directives,
                         ca=env.pki.ca_file)
            + f'\n{REV_LOG_FORMAT}\nCustomLog "{env.access_log_file}" rev')


def _logged(env, path):
    """(status, REENCRYPT_RESULT, REENCRYPT_REVOCATION) logged for path
    (polls the access log until its line is there)."""
    return env.access_fields(path)


# ------------------------------------------------------------- revoked

@pytest.mark.parametrize("mode", ["", "ReencryptRevocationCheck Chain",
                                  "ReencryptRevocationCheck Leaf"])
def test_reencrypt_21_001_revoked_leaf_refused(env, backend, module_so, pki,
                                               mode):
    """A backend whose certificate its issuer's CRL lists: 502, nothing at
    the backend, reason revoked; the line names the certificate, its
    serial, the revocation date and the reason code."""
    be = backend("revoked")
    files = _crls(pki, "r1", int_revoked=("revoked",),
                  reason=x509.ReasonFlags.key_compromise)
    env.write_config(vhost=_vhost_with(env, be, *_crl_lines(*files), mode))
    env.start()
    m = assert_refused(env, be, "revoked")
    mm = re.fullmatch(
        r"CN=revoked\.test serial 0x([0-9A-F]+) revoked at (\S+Z) \(reason "
        r"keyCompromise\) by the CRL of CN=Test Intermediate CA",
        m.group("seen"))
    assert mm, m.group(0)
    assert int(mm.group(1), 16) == pki["revoked"].cert.serial_number
    assert_time_near(mm.group(2), datetime.datetime.utcnow() - HOUR)
    assert m.group("expected").startswith(
        "no certificate of the chain revoked (ReencryptRevocationCheck "
        + ("Leaf" if "Leaf" in mode else "Chain") + ")"), m.group(0)
    assert _logged(env, "/") == ("502", "refused:revoked", "revoked")


def test_reencrypt_21_002_good_leaf_served(env, backend, module_so, pki):
    """The same CRLs, a backend they do not list: served; the access log
    says REENCRYPT_REVOCATION good."""
    be = backend("good")
    files = _crls(pki, "r2", int_revoked=("revoked",))
    env.write_config(vhost=_vhost_with(env, be, *_crl_lines(*files)))
    env.start()
    assert_served(env, be, "/fine", sni="good.test")
    assert _logged(env, "/fine") == ("200", "ok", "good")


def test_reencrypt_21_003_revoked_intermediate(env, backend, module_so, pki):
    """The root's CRL lists the backend's intermediate CA: Chain refuses
    (revoked, naming the intermediate); Leaf checks the backend's own
    certificate only and serves."""
    be = backend("under-revoked-int")
    root_crl = pki.crl("r3-root.crl", "root", revoked=("revoked-int",))
    int_crl = pki.crl("r3-int.crl", "revoked-int")
    env.write_config(vhost=_vhost_with(
        env, be, *_crl_lines(root_crl, int_crl)) + """
<Location /leaf-only>
    ReencryptRevocationCheck Leaf
</Location>
""")
    env.start()
    m = assert_refused(env, be, "revoked", path="/chain")
    mm = re.match(r"CN=Test Revoked Intermediate CA serial 0x([0-9A-F]+) "
                  r"revoked at ", m.group("seen"))
    assert mm, m.group(0)
    assert int(mm.group(1), 16) == pki["revoked-int"].cert.serial_number
    assert_served(env, be, "/leaf-only/x", ignore_re10=True)


def test_reencrypt_21_004_revocation_off(env, backend, module_so, pki):
    """ReencryptRevocationCheck Off with the CRLs configured: the revoked
    backend is served; REENCRYPT_REVOCATION not-checked."""
    be = backend("revoked")
    files = _crls(pki, "r4", int_revoked=("revoked",))
    env.write_config(vhost=_vhost_with(env, be, *_crl_lines(*files),
                                       "ReencryptRevocationCheck Off"))
    env.start()
    assert_served(env, be, "/off")
    assert _logged(env, "/off") == ("200", "ok", "not-checked")


def test_reencrypt_21_005_der_and_several_crls_per_file(env, backend,
                                                        module_so, pki):
    """A DER CRL file, and one PEM file holding both CAs' CRLs: the
    revoked backend is refused either way."""
    be = backend("revoked")
    root_der = pki.crl("r5-root.der", "root", der=True)
    int_der = pki.crl("r5-int.der", "int", revoked=("revoked",), der=True)
    both = pki.bundle(os.path.join(pki.dir, "r5-both.pem"),
                      _crls(pki, "r5p", int_revoked=("revoked",)))
    env.write_config(vhost=_vhost_with(env, be, *_crl_lines(root_der,
                                                            int_der)) + f"""
<Location /one-file>
    ReencryptCARevocationFile "{both}"
</Location>
""")
    env.start()
    assert_refused(env, be, "revoked", path="/der")
    r = env.get("/one-file/x")
    assert r.status == 502, r
    be.wait_settled()
    assert be.app_bytes == 0
    assert [ln for ln in env.log_lines() if "RE00010:" in ln.rest
            and " refused: revoked; " in ln.rest].__len__() == 2, \
        env.error_log()


# --------------------------------------------------------- CRL problems

def test_reencrypt_21_010_expired_crl_refused(env, backend, module_so, pki):
    """The intermediate's CRL passed its nextUpdate an hour ago: 502,
    reason crl-expired, naming the CRL's issuer and nextUpdate."""
    be = backend("good")
    files = _crls(pki, "r10", last_update=-2 * DAY, next_update=-HOUR)
    env.write_config(vhost=_vhost_with(env, be, *_crl_lines(*files)))
    env.start()
    m = assert_refused(env, be, "crl-expired")
    assert m.group("seen").startswith(
        "the CRL of CN=Test Intermediate CA: lastUpdate="), m.group(0)
    assert "nextUpdate=" in m.group("seen"), m.group(0)
    assert m.group("expected").startswith("a CRL with nextUpdate after "), \
        m.group(0)


def test_reencrypt_21_011_expired_crl_within_clock_skew(env, backend,
                                                        module_so, pki):
    """The same CRL with ReencryptClockSkew 2h: served (the skew is a
    grace for a CRL's nextUpdate as for a certificate's notBefore)."""
    be = backend("good")
    files = _crls(pki, "r11", last_update=-2 * DAY, next_update=-HOUR)
    env.write_config(vhost=_vhost_with(env, be, *_crl_lines(*files),
                                       "ReencryptClockSkew 2h",
                                       "SSLProxyCheckPeerExpire Off"))
    env.start()
    assert_served(env, be, "/skew")
    assert _logged(env, "/skew") == ("200", "ok", "good")


def test_reencrypt_21_012_missing_crl_refused(env, backend, module_so, pki):
    """Chain with only the intermediate's CRL: the intermediate itself has
    no CRL of the root to be checked against: 502, crl-missing."""
    be = backend("good")
    int_crl = pki.crl("r12-int.crl", "int")
    env.write_config(vhost=_vhost_with(env, be, *_crl_lines(int_crl)))
    env.start()
    m = assert_refused(env, be, "crl-missing")
    assert m.group("expected") == (
        "a CRL issued by CN=Test Root CA (ReencryptRevocationCheck Chain)"), \
        m.group(0)
    assert m.group("seen").startswith(
        "no CRL of that issuer for CN=Test Intermediate CA serial 0x"), \
        m.group(0)


def test_reencrypt_21_013_missing_crl_allowed(env, backend, module_so, pki):
    """The same with NoCRLForCertOK: served, REENCRYPT_REVOCATION no-crl;
    a revoked leaf is still refused."""
    be = backend("good")
    bad = backend("revoked")
    int_crl = pki.crl("r13-int.crl", "int", revoked=("revoked",))
    # /bad goes to the revoked backend (its ProxyPass before the one
    # for /)
    env.write_config(vhost=_vhost_with(
        env, be, *_crl_lines(int_crl),
        "ReencryptRevocationCheck Chain NoCRLForCertOK").replace(
            "ProxyPass / ", f"ProxyPass /bad {bad.url_ip}\nProxyPass / "))
    env.start()
    assert_served(env, be, "/nocrl")
    assert _logged(env, "/nocrl") == ("200", "ok", "no-crl")
    assert_refused(env, bad, "revoked", path="/bad")


def test_reencrypt_21_014_crl_with_bad_signature(env, backend, module_so,
                                                 pki):
    """A CRL naming the intermediate as issuer but signed by another key:
    never used; 502, reason crl-invalid."""
    be = backend("good")
    root_crl = pki.crl("r14-root.crl", "root")
    forged = pki.crl("r14-int.crl", "int", key=pki.new_key())
    env.write_config(vhost=_vhost_with(env, be,
                                       *_crl_lines(root_crl, forged)))
    env.start()
    m = assert_refused(env, be, "crl-invalid")
    assert m.group("seen").startswith(
        "a CRL naming CN=Test Intermediate CA as issuer (CRL signature "
        "failure; checking CN=good.test serial 0x"), m.group(0)
    assert m.group("expected").startswith(
        "a CRL of CN=Test Intermediate CA signed by it and valid at "), \
        m.group(0)


# ------------------------------------------------------------- report

def test_reencrypt_21_020_report_mode(env, backend, module_so, pki):
    """ReencryptMode Report: the revoked backend is served, one RE00018
    line says revoked, REENCRYPT_RESULT report:revoked."""
    be = backend("revoked")
    files = _crls(pki, "r20", int_revoked=("revoked",))
    env.write_config(vhost=_vhost_with(env, be, *_crl_lines(*files),
                                       "ReencryptMode Report",
                                       "SSLProxyCheckPeerExpire Off"))
    env.start()
    m = assert_reported(env, be, "revoked", path="/report")
    assert m.group("seen").startswith("CN=revoked.test serial 0x"), \
        m.group(0)
    assert _logged(env, "/report") == ("200", "report:revoked", "revoked")


# --------------------------------------------------------- resumption

def test_reencrypt_21_030_new_crl_after_graceful_restart(
        env, backend, module_so, pki, cache_daemon):
    """Sessions kept in a shared cache (memcache) across a graceful
    restart: before it the backend is served and its session resumed;
    a new CRL listing it and `apache2 -k graceful`: refused (revoked),
    no session of the old CRL is resumed."""
    be = backend("revoked")
    crl_file = os.path.join(env.root, "conf", "backends.crl")
    root_crl = pki.crl("r30-root.crl", "root")
    shutil.copyfile(pki.crl("r30-int-old.crl", "int"), crl_file)
    os.chmod(crl_file, 0o644)
    server = cache_daemon("memcache").server_directives(env)
    env.write_config(server=server, vhost=_vhost(
        env, be, "ReencryptSNI good.test",
        *_crl_lines(root_crl, crl_file), ca=pki.ca_file))
    env.start()
    for p in ("/before/1", "/before/2"):
        _get_ok(env, p)
    assert _sessions(env, be, ["/before/1", "/before/2"]) == [
        "full", "resumed"]

    shutil.copyfile(pki.crl("r30-int-new.crl", "int", revoked=("revoked",)),
                    crl_file)
    env.graceful()
    before = len(be.connections)
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    r = env.get("/after")
    assert r.status == 502, (r, env.error_log())
    be.wait_settled()
    after = be.connections[before:]
    assert after, be.describe()
    assert all(not c.data and c.handshake_ok is not True and
               not c.session_reused for c in after), be.describe()
    assert_one_re10(env, be, "revoked")


# ------------------------------------------------ CRLs about to expire

RE82_RE = re.compile(
    r"RE00082: CRL of (?P<issuer>.+?) in (?P<file>\S+) "
    r"(?P<state>expires soon|is past its nextUpdate): "
    r"nextUpdate=(?P<next>\S+), (?P<left>in \d+d \d+h|\d+d \d+h ago) "
    r"\(ReencryptWarnExpiringWithin (?P<window>\d+)s\): put a newer CRL "
    r"of that issuer in the file and restart gracefully$")


def _re82(env):
    """The RE00082 lines: (issuer, file, state, nextUpdate, left, window)
    each, at level warn."""
    out = []
    for ln in env.lines_with("RE00082"):
        m = RE82_RE.search(ln.raw)
        assert m and ln.level == "warn", ln.raw
        out.append(m.group("issuer", "file", "state", "next", "left",
                           "window"))
    return out


def _next_update(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_crl(f.read()).next_update


def test_reencrypt_21_060_crl_expiry_warned_at_start_and_graceful(
        env, backend, module_so, pki):
    """ReencryptWarnExpiringWithin 3d: RE00082 says, once at start-up and
    once more at a graceful restart, that the intermediate's CRL (nextUpdate
    in 1d 23h) expires soon, and that the CRL of a <Location> whose
    nextUpdate passed 1h 30m ago is past it; nothing about the root's CRL
    (nextUpdate in 30 days).  Handshakes in between do not say it again
    (it was said today)."""
    be = backend("good")
    root_crl = pki.crl("r60-root.crl", "root", next_update=30 * DAY)
    half = datetime.timedelta(minutes=30)   # away from a whole hour
    soon = pki.crl("r60-int.crl", "int", next_update=2 * DAY - half)
    past = pki.crl("r60-past.crl", "int", last_update=-3 * DAY,
                   next_update=-HOUR - half)
    env.write_config(processes=2, vhost=_vhost_with(
        env, be, *_crl_lines(root_crl, soon),
        "ReencryptWarnExpiringWithin 3d") + f"""
<Location /stale/>
    ReencryptCARevocationFile "{root_crl}"
    ReencryptCARevocationFile "{past}"
</Location>
""")
    env.expect_log("RE00082")
    env.start()
    want = sorted([
        ("CN=Test Intermediate CA", soon, "expires soon",
         asn1_time(_next_update(soon)), "in 1d 23h", str(3 * 86400)),
        ("CN=Test Intermediate CA", past, "is past its nextUpdate",
         asn1_time(_next_update(past)), "0d 1h ago", str(3 * 86400))])
    assert sorted(_re82(env)) == want, env.error_log()
    for i in range(6):
        r = env.get(f"/x{i}")
        assert r.status == 200, (r, env.error_log())
    assert sorted(_re82(env)) == want, env.error_log()

    env.graceful()
    assert sorted(_re82(env)) == sorted(want * 2), env.error_log()
    for i in range(4):
        assert env.get(f"/y{i}").status == 200
    assert sorted(_re82(env)) == sorted(want * 2), env.error_log()


def test_reencrypt_21_061_crl_expiry_warned_at_handshake(
        env, backend, module_so, pki):
    """A CRL whose nextUpdate comes within ReencryptWarnExpiringWithin 1d
    a few seconds after start-up: nothing at start-up; the first handshake
    after that moment says RE00082 (through the notes cache shared by the
    two child processes), later handshakes do not say it again the same
    day."""
    be = backend("good")
    root_crl = pki.crl("r61-root.crl", "root", next_update=30 * DAY)
    margin = 8
    soon = pki.crl("r61-int.crl", "int",
                   next_update=DAY + datetime.timedelta(seconds=margin))
    enters = (_next_update(soon) - datetime.datetime.utcnow()
              - DAY).total_seconds()
    env.write_config(processes=2, vhost=_vhost_with(
        env, be, *_crl_lines(root_crl, soon),
        "ReencryptWarnExpiringWithin 1d").replace(
            f"ProxyPass / {be.url_ip}",
            f"ProxyPass / {be.url_ip} disablereuse=On"))
    env.expect_log("RE00082")
    started = time.monotonic()
    env.start()
    assert time.monotonic() - started < enters, (
        "the server took too long to start for this test")
    r = env.get("/before")
    assert r.status == 200, r
    assert _re82(env) == [], env.error_log()

    # new backend connections (disablereuse=On), each a handshake, until
    # the CRL's nextUpdate is less than a day away
    deadline = time.monotonic() + margin + 20
    i = 0
    while not _re82(env):
        assert time.monotonic() < deadline, env.error_log()
        assert env.get(f"/during/{i}").status == 200
        i += 1
        time.sleep(0.2)  # pacing of the requests, bounded by the deadline
    [(issuer, path, state, nxt, left, window)] = _re82(env)
    assert (issuer, path, state, nxt, window) == (
        "CN=Test Intermediate CA", soon, "expires soon",
        asn1_time(_next_update(soon)), "86400"), env.error_log()
    assert left == "in 0d 23h", left
    for k in range(10):
        assert env.get(f"/after/{k}").status == 200
    assert len(_re82(env)) == 1, env.error_log()
    assert len(be.requests) >= 12, be.describe()


# ------------------------------------------------- mod_ssl's directives

def _modssl_vhost(pki, be, *extra, engine=True):
    lines = ["SSLProxyEngine On", "SSLProxyVerify require",
             f'SSLProxyCACertificateFile "{pki.ca_file}"',
             "SSLProxyCheckPeerName Off"]
    if engine:
        lines += ["ReencryptEngine On",
                  f'ReencryptCACertificateFile "{pki.ca_file}"',
                  "ReencryptSNI good.test"]
    lines += list(extra)
    lines.append(f"ProxyPass / {be.url_ip}")
    return "\n".join(lines)


def _assert_conflict(env, needle, name, instead):
    rc, out = env.configtest()
    assert rc != 0, out
    line = env.line_of(needle)
    m = re.search(r"RE00070: (\S+) at (\S+):(\d+) is not used for backends "
                  r"verified by mod_reencrypt, which would let revoked "
                  r"backend certificates through: use (.*) instead", out)
    assert m, out
    assert m.group(1) == name, out
    assert (m.group(2), int(m.group(3))) == (env.conf_file, line), out
    assert m.group(4).startswith(instead), out
    assert "Syntax OK" not in out


@pytest.mark.parametrize("directive,name,instead", [
    ('SSLProxyCARevocationFile "{crl}"', "SSLProxyCARevocationFile",
     "ReencryptCARevocationFile"),
    ('SSLProxyCARevocationPath "{dir}"', "SSLProxyCARevocationPath",
     "ReencryptCARevocationFile"),
    ("SSLProxyCARevocationCheck chain", "SSLProxyCARevocationCheck",
     "ReencryptRevocationCheck"),
    ("SSLProxyCARevocationCheck leaf no_crl_for_cert_ok",
     "SSLProxyCARevocationCheck", "ReencryptRevocationCheck"),
])
def test_reencrypt_21_040_modssl_revocation_refused_under_policy(
        env, backend, module_so, pki, directive, name, instead):
    """mod_ssl's revocation directives where a policy is on: apache2 -t
    fails, naming the directive's file:line and the one to use instead
    (the policy would not use them: a revoked backend would be served)."""
    be = backend("revoked")
    crl = pki.crl("r40-int.crl", "int", revoked=("revoked",))
    text = directive.format(crl=crl, dir=pki.dir)
    env.write_config(vhost=_modssl_vhost(pki, be, text))
    _assert_conflict(env, text, name, instead)


def test_reencrypt_21_041_modssl_revocation_in_proxy_section(
        env, backend, module_so, pki):
    """The same refused inside a <Proxy> section under a vhost policy."""
    be = backend("revoked")
    crl = pki.crl("r41-int.crl", "int", revoked=("revoked",))
    env.write_config(vhost=_modssl_vhost(pki, be) + f"""
<Proxy "{be.url_ip}">
    SSLProxyCARevocationFile "{crl}"
    SSLProxyCARevocationCheck leaf
</Proxy>
""")
    _assert_conflict(env, "SSLProxyCARevocationFile",
                     "SSLProxyCARevocationFile", "ReencryptCARevocationFile")


def test_reencrypt_21_042_modssl_revocation_without_policy(
        env, backend, module_so, pki):
    """Without a policy mod_ssl's CRL check is mod_ssl's: the
    configuration passes and mod_ssl refuses the revoked backend (no
    RE00010: the module is not involved).  SSLProxyCARevocationCheck none
    under a policy is no conflict."""
    be = backend("revoked")
    root_crl = pki.crl("r42-root.crl", "root")
    int_crl = pki.crl("r42-int.crl", "int", revoked=("revoked",))
    both = pki.bundle(os.path.join(pki.dir, "r42-both.pem"),
                      (root_crl, int_crl))
    env.write_config(vhost=_modssl_vhost(
        pki, be, f'SSLProxyCARevocationFile "{both}"',
        "SSLProxyCARevocationCheck leaf", engine=False))
    rc, out = env.configtest()
    assert rc == 0, out
    env.expect_log("AH02039", "AH01084", "AH00898", "AH01097", "AH02262")
    env.start()
    r = env.get("/")
    assert r.status in (500, 502), r
    be.wait_settled()
    assert be.app_bytes == 0

    env.stop()
    env.write_config(vhost=_modssl_vhost(
        pki, be, "SSLProxyCARevocationCheck none"))
    rc, out = env.configtest()
    assert rc == 0, out


# ------------------------------------------------------- config errors

def test_reencrypt_21_050_crl_file_missing(env, module_so, pki):
    missing = os.path.join(pki.dir, "no-such.crl")
    env.write_config(vhost=policy_vhost(
        "https://127.0.0.1:1/", f'ReencryptCARevocationFile "{missing}"',
        ca=pki.ca_file))
    assert_syntax_error(env, "ReencryptCARevocationFile",
                        "ReencryptCARevocationFile", missing)


def test_reencrypt_21_051_not_a_crl(env, module_so, pki):
    """A certificate file is no CRL."""
    env.write_config(vhost=policy_vhost(
        "https://127.0.0.1:1/",
        f'ReencryptCARevocationFile "{pki.ca_file}"', ca=pki.ca_file))
    assert_syntax_error(env, "ReencryptCARevocationFile",
                        f"ReencryptCARevocationFile: '{pki.ca_file}' is not "
                        "a CRL")


@pytest.mark.parametrize("value,message", [
    ("Sometimes", "ReencryptRevocationCheck: 'Sometimes' is not Chain, "
                  "Leaf or Off"),
    ("Chain Please", "ReencryptRevocationCheck: 'Please' is not "
                     "NoCRLForCertOK"),
    ("Off NoCRLForCertOK", "ReencryptRevocationCheck: NoCRLForCertOK "
                           "cannot go with Off"),
])
def test_reencrypt_21_052_bad_keyword(env, module_so, pki, value, message):
    env.write_config(vhost=policy_vhost(
        "https://127.0.0.1:1/", f"ReencryptRevocationCheck {value}",
        ca=pki.ca_file))
    assert_syntax_error(env, "ReencryptRevocationCheck", message)


def test_reencrypt_21_053_check_without_crl(env, module_so, pki):
    """ReencryptRevocationCheck Leaf with no CRL anywhere: apache2 -t
    fails (every backend would be refused crl-missing)."""
    env.write_config(vhost=policy_vhost(
        "https://127.0.0.1:1/", "ReencryptRevocationCheck Leaf",
        ca=pki.ca_file))
    rc, out = env.configtest()
    assert rc != 0, out
    assert re.search(r"RE00004: ReencryptEngine On at \S+ (\(in [^)]*\) )?"
                     r"has ReencryptRevocationCheck Leaf \(at \S+:\d+\) but "
                     r"no CRL: set ReencryptCARevocationFile", out), out
