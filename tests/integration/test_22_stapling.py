"""OCSP stapling from backends: ReencryptOCSPStapling Off|Verify|Require.

Where stapling is not Off the proxy asks every backend for a staple
(status_request) and, after a full handshake whose chain passed, checks
the OCSP response the backend sent with its certificate: signed by the
leaf's issuer or by a responder certificate the issuer signed for OCSP
signing, holding a status for the leaf's certificate ID, thisUpdate not
in the future and nextUpdate not past (ReencryptClockSkew is the grace
for both).  What it found goes to REENCRYPT_STAPLE: good, revoked,
unknown, absent (none sent, or a response without a status such as
tryLater), expired, invalid, resumed (an abbreviated handshake sends no
staple).  Verify refuses revoked (staple-revoked), expired
(staple-expired) and invalid (staple-invalid) staples; Require also
refuses unknown (staple-unknown) and absent ones (staple-missing).  A
refusal is a 502 with no request byte at the backend (its handshake
completed: the staple is checked before mod_proxy writes anything) and
one RE00010 line; ReencryptMode Report lets it through with one RE00018
line.  Under Require a session lives no longer than its staple's
nextUpdate; the stapling mode is part of the policy identity, so neither
sessions nor pooled connections cross scopes of different modes.

Real OCSP responses are made with python3-cryptography (pki.py).  Two
kinds of backends staple them:

- a libssl backend (libssl_backend.py, staple=) sending a fixed staple
  with its certificate, in TLS 1.2 and TLS 1.3; it records whether the
  ClientHello asked for a staple, the bytes received and whether the
  handshake resumed a session;
- a private Apache with mod_ssl's own stapling (SSLUseStapling On),
  fetching its staple from a small OCSP responder written here
  (OCSPResponder: http.server on loopback, answering each POSTed OCSP
  request with a response about the serial asked for, in the status the
  test sets, and counting the requests).

Requests go through a client (_get) that reads until the frontend closes
the connection before it closes its own end: a test that stops the
server right after a refusal would otherwise catch the frontend in the
middle of its lingering close, and the event MPM logs AH03092 when its
pollset is gone by then (seen about once in 30 runs, a race of the stop,
not of the module).
"""

import datetime
import os
import re
import socket
import ssl
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

import harness.ocsp
from harness import stopped_after
from checks import (PROXY_HANDSHAKE_FAILURE_TAGS, RE18_RE, assert_one_re10,
                    assert_startup_error, assert_time_near, parse_asn1_time, policy_vhost,
                    re10_lines, re18_lines)
from httpd import Response
from libssl_backend import TLS1_2_VERSION, TLS1_3_VERSION, LibsslBackend
from test_01_configtest import assert_syntax_error

HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)

VERSIONS = {"tls1.2": TLS1_2_VERSION, "tls1.3": TLS1_3_VERSION}
VERSION_NAMES = {"tls1.2": "TLSv1.2", "tls1.3": "TLSv1.3"}

STAPLE_LOG_FORMAT = ('LogFormat "%U %>s %{REENCRYPT_RESULT}e '
                     '%{REENCRYPT_STAPLE}e %{REENCRYPT_SESSION}e" staple')

# the certificate every libssl backend presents, and the SNI it is sent
LEAF = "good"
SNI = "good.test"

# what every staple refusal expects
EXPECTED_RE = re.compile(
    r"an OCSP staple for CN=(?P<cn>\S+) serial 0x(?P<serial>[0-9A-F]+) "
    r"saying good, signed by its issuer or a responder the issuer "
    r"authorised, current at (?P<now>\S+Z)")

# the debug line of a staple that passed
RE80_RE = re.compile(
    r"RE00080: backend (?P<backend>\S+): OCSP staple (?P<state>[a-z-]+): "
    r"(?P<seen>.*)$")


def _utcnow():
    return datetime.datetime.utcnow()


def _serial_hex(pki, name):
    """A certificate's serial as the module prints it (BN_bn2hex: two
    upper-case hex digits per byte)."""
    h = f"{pki[name].cert.serial_number:X}"
    return "0" * (len(h) % 2) + h


# ------------------------------------------------------------ helpers

def _dechunk(body):
    out = b""
    while body:
        size, _, body = body.partition(b"\r\n")
        n = int(size.split(b";")[0], 16)
        if n == 0:
            break
        out, body = out + body[:n], body[n + 2:]
    return out


def _get(env, path, timeout=15.0):
    """GET path on a new frontend connection (Connection: close), read
    until the frontend closes it, then close it: when this returns the
    frontend is done with the connection, so stopping the server right
    after a test does not find the connection half closed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    data = b""
    with socket.create_connection(("127.0.0.1", env.port),
                                  timeout=timeout) as raw:
        with ctx.wrap_socket(raw) as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost:{env.port}"
                        f"\r\nConnection: close\r\n\r\n".encode())
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, v in
                   (ln.split(":", 1) for ln in lines[1:] if ":" in ln))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    elif "content-length" in headers:
        body = body[:int(headers["content-length"])]
    return Response(int(lines[0].split(" ")[1]), headers, body)


@pytest.fixture
def stapling_backend(pki):
    """factory(staple, version="tls1.3", leaf=LEAF): a libssl backend
    stapling staple (bytes, or None for none) to its certificate."""
    yield from stopped_after(
        lambda staple, version="tls1.3", leaf=LEAF: LibsslBackend(
            pki.chain(leaf), pki.key(leaf), VERSIONS[version],
            staple=staple).start())


def _log_directives(env):
    return f'{STAPLE_LOG_FORMAT}\nCustomLog "{env.access_log_file}" staple'


def _frontend(env, be, mode, *directives, reuse="disablereuse=On",
              locations="", sni=SNI):
    """A frontend proxying / to be under a policy with
    ReencryptOCSPStapling mode (None: no such directive), a new backend
    connection per request unless reuse says otherwise; the access log
    has one line per request: path status REENCRYPT_RESULT
    REENCRYPT_STAPLE REENCRYPT_SESSION."""
    lines = [f"ReencryptSNI {sni}"]
    if mode is not None:
        lines.append(f"ReencryptOCSPStapling {mode}")
    lines += list(directives)
    env.write_config(
        loglevel="warn reencrypt:debug",
        vhost=policy_vhost(f"{be.url_ip} {reuse}".rstrip(), *lines,
                           ca=env.pki.ca_file)
        + "\n" + locations + "\n" + _log_directives(env))
    env.start()


def _logged(env, path):
    """(status, REENCRYPT_RESULT, REENCRYPT_STAPLE, REENCRYPT_SESSION)
    logged for path (polls the access log until its line is there)."""
    return env.access_fields(path)


def _carrier(be, path):
    """The backend connection that read GET path."""
    found = [c for c in be.connections if path in c.requests]
    assert len(found) == 1, (path, be.connections)
    return found[0]


def _served(env, be, path, staple, session="full"):
    """GET path is answered by the backend (200, its body), no RE00010
    line exists, and the access log says ok, REENCRYPT_STAPLE staple and
    REENCRYPT_SESSION session.  Returns the backend connection that
    carried it."""
    r = _get(env, path)
    assert r.status == 200, (r, env.error_log(), be.connections)
    assert r.text == f"backend-ok {path}\n", r.text[:300]
    assert not re10_lines(env), env.error_log()
    assert _logged(env, path) == ("200", "ok", staple, session), (
        env.error_log())
    be.wait_for(lambda: any(path in c.answered for c in be.connections),
                what=f"response to {path}")
    return _carrier(be, path)


def _refused(env, be, reason, path="/", staple=None, pki=None):
    """GET path is refused after the backend's handshake: 502 to the
    client; one new backend connection, whose handshake completed (the
    ClientHello asked for a staple) and which received no byte at all;
    exactly one RE00010 line, at level error, naming the backend and
    reason, expecting a good staple for the backend's certificate now;
    the access log says refused:<reason> and REENCRYPT_STAPLE staple.
    Returns the RE00010 match (groups backend reason expected seen)."""
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    before = len(be.connections)
    r = _get(env, path)
    assert r.status == 502, (r, env.error_log(), be.connections)
    be.wait_for(lambda: len(be.connections) > before
                and all(c.closed for c in be.connections[before:]),
                what="the refused connection closed")
    new = be.connections[before:]
    assert len(new) == 1, be.connections
    conn = new[0]
    assert conn.handshake_ok is True, be.connections
    assert conn.status_requested, be.connections
    assert conn.data == b"", (
        f"the refused backend received {len(conn.data)} bytes: "
        f"{bytes(conn.data[:300])!r}")
    assert conn.requests == [], be.connections
    m = assert_one_re10(env, be, reason)
    e = EXPECTED_RE.fullmatch(m.group("expected"))
    assert e, m.group(0)
    if pki is not None:
        assert e.group("cn") == pki[LEAF].cn, m.group(0)
        assert e.group("serial") == _serial_hex(pki, LEAF), m.group(0)
    assert_time_near(e.group("now"), _utcnow(), slack=60)
    if staple is not None:
        assert _logged(env, path) == ("502", f"refused:{reason}", staple,
                                      "full"), env.error_log()
    return m


def _seen_about(pki, what):
    """The start of a 'seen' naming the backend's certificate."""
    return (f"an OCSP staple for CN={pki[LEAF].cn} serial "
            f"0x{_serial_hex(pki, LEAF)}{what}")


def _re80(env, state):
    """The one RE00080 (debug) line, of state; returns its match."""
    found = [RE80_RE.search(ln.rest) for ln in env.log_lines()
             if "RE00080:" in ln.rest]
    assert len(found) == 1 and found[0], env.error_log()
    assert found[0].group("state") == state, found[0].group(0)
    return found[0]


# ------------------------------------------------------------- good

@pytest.mark.parametrize("version", ["tls1.2", "tls1.3"])
@pytest.mark.parametrize("mode", ["Verify", "Require"])
@pytest.mark.parametrize("cert_id_hash", ["sha1", "sha256"])
def test_reencrypt_22_001_good_staple_served(
        env, stapling_backend, module_so, pki, version, mode,
        cert_id_hash):
    """A backend stapling a good response of its issuer (certificate ID
    in SHA-1 or SHA-256): served; the ClientHello asked for the staple;
    REENCRYPT_STAPLE good; one RE00080 debug line naming the certificate
    and the staple's times; no warning."""
    staple = pki.ocsp_response(LEAF, hash={"sha1": hashes.SHA1(),
                                           "sha256": hashes.SHA256()}[
                                               cert_id_hash])
    be = stapling_backend(staple, version)
    _frontend(env, be, mode)
    c = _served(env, be, "/good", "good")
    assert c.status_requested and c.stapled == staple, be.connections
    assert c.version == VERSION_NAMES[version], be.connections
    m = _re80(env, "good")
    assert m.group("backend") == f"127.0.0.1:{be.port}", m.group(0)
    mm = re.fullmatch(re.escape(_seen_about(pki, ": good, ")) +
                      r"thisUpdate=(\S+Z) nextUpdate=(\S+Z)",
                      m.group("seen"))
    assert mm, m.group(0)
    assert_time_near(mm.group(1), _utcnow() - HOUR)
    assert_time_near(mm.group(2), _utcnow() + DAY)


def test_reencrypt_22_002_staple_without_next_update(
        env, stapling_backend, module_so, pki):
    """A good staple without nextUpdate (the responder gives no time
    for newer information) is good under Require."""
    be = stapling_backend(pki.ocsp_response(LEAF, next_update=None))
    _frontend(env, be, "Require")
    _served(env, be, "/no-next", "good")
    assert _re80(env, "good").group("seen").endswith(
        "nextUpdate=(none)"), env.error_log()


# ---------------------------------------------------------- revoked

@pytest.mark.parametrize("version", ["tls1.2", "tls1.3"])
@pytest.mark.parametrize("mode", ["Verify", "Require"])
def test_reencrypt_22_010_revoked_staple_refused(
        env, stapling_backend, module_so, pki, version, mode):
    """The backend staples a response saying its certificate was revoked
    (keyCompromise): 502, nothing at the backend, one RE00010
    staple-revoked line naming the certificate, the revocation time and
    the reason; REENCRYPT_STAPLE revoked."""
    be = stapling_backend(pki.ocsp_response(
        LEAF, status="revoked", revocation_time=-2 * HOUR,
        reason=x509.ReasonFlags.key_compromise), version)
    _frontend(env, be, mode)
    m = _refused(env, be, "staple-revoked", "/revoked", "revoked", pki)
    mm = re.fullmatch(re.escape(_seen_about(pki, ": revoked at "))
                      + r"(\S+Z) \(reason keyCompromise\)", m.group("seen"))
    assert mm, m.group(0)
    assert_time_near(mm.group(1), _utcnow() - 2 * HOUR)


# ---------------------------------------------------------- unknown

@pytest.mark.parametrize("version", ["tls1.2", "tls1.3"])
def test_reencrypt_22_011_unknown_staple_verify_served(
        env, stapling_backend, module_so, pki, version):
    """A staple saying the responder does not know the certificate
    passes Verify: served, REENCRYPT_STAPLE unknown, RE00080 says so."""
    be = stapling_backend(pki.ocsp_response(LEAF, status="unknown"),
                          version)
    _frontend(env, be, "Verify")
    _served(env, be, "/unknown", "unknown")
    assert _re80(env, "unknown").group("seen") == _seen_about(
        pki, ": unknown to the responder")


@pytest.mark.parametrize("version", ["tls1.2", "tls1.3"])
def test_reencrypt_22_012_unknown_staple_require_refused(
        env, stapling_backend, module_so, pki, version):
    """The same staple under Require: 502, staple-unknown."""
    be = stapling_backend(pki.ocsp_response(LEAF, status="unknown"),
                          version)
    _frontend(env, be, "Require")
    m = _refused(env, be, "staple-unknown", "/unknown", "unknown", pki)
    assert m.group("seen") == _seen_about(pki, ": unknown to the responder")


# ----------------------------------------------------------- absent

@pytest.mark.parametrize("version", ["tls1.2", "tls1.3"])
def test_reencrypt_22_020_no_staple_verify_served(
        env, stapling_backend, module_so, pki, version):
    """A backend asked for a staple that sends none passes Verify:
    served, REENCRYPT_STAPLE absent."""
    be = stapling_backend(None, version)
    _frontend(env, be, "Verify")
    c = _served(env, be, "/absent", "absent")
    assert c.status_requested and c.stapled is None, be.connections
    assert _re80(env, "absent").group("seen") == "no OCSP staple"


@pytest.mark.parametrize("version", ["tls1.2", "tls1.3"])
def test_reencrypt_22_021_no_staple_require_refused(
        env, stapling_backend, module_so, pki, version):
    """The same backend under Require: 502, staple-missing."""
    be = stapling_backend(None, version)
    _frontend(env, be, "Require")
    m = _refused(env, be, "staple-missing", "/absent", "absent", pki)
    assert m.group("seen") == "no OCSP staple", m.group(0)


def test_reencrypt_22_022_try_later_verify_served(
        env, stapling_backend, module_so, pki):
    """A stapled OCSP response without a status (responseStatus
    tryLater, as a backend passes on its responder's error) counts as
    no staple: served under Verify, REENCRYPT_STAPLE absent."""
    be = stapling_backend(pki.ocsp_response(
        LEAF, response_status=ocsp.OCSPResponseStatus.TRY_LATER))
    _frontend(env, be, "Verify")
    _served(env, be, "/try-later", "absent")
    assert _re80(env, "absent").group("seen") == (
        "an OCSP response without a status (responseStatus trylater)")


@pytest.mark.parametrize("version", ["tls1.2", "tls1.3"])
def test_reencrypt_22_023_try_later_require_refused(
        env, stapling_backend, module_so, pki, version):
    """The same under Require: 502, staple-missing, naming the
    responseStatus."""
    be = stapling_backend(pki.ocsp_response(
        LEAF, response_status=ocsp.OCSPResponseStatus.TRY_LATER), version)
    _frontend(env, be, "Require")
    m = _refused(env, be, "staple-missing", "/try-later", "absent", pki)
    assert m.group("seen") == (
        "an OCSP response without a status (responseStatus trylater)")


# ------------------------------------------------------------ times

@pytest.mark.parametrize("version", ["tls1.2", "tls1.3"])
@pytest.mark.parametrize("mode", ["Verify", "Require"])
def test_reencrypt_22_030_expired_staple_refused(
        env, stapling_backend, module_so, pki, version, mode):
    """A good staple whose nextUpdate passed an hour ago: 502,
    staple-expired, naming that nextUpdate; REENCRYPT_STAPLE expired."""
    be = stapling_backend(pki.ocsp_response(
        LEAF, this_update=-2 * DAY, next_update=-HOUR), version)
    _frontend(env, be, mode)
    m = _refused(env, be, "staple-expired", "/expired", "expired", pki)
    mm = re.fullmatch(re.escape(_seen_about(pki, " with nextUpdate="))
                      + r"(\S+Z), past", m.group("seen"))
    assert mm, m.group(0)
    assert_time_near(mm.group(1), _utcnow() - HOUR)


def test_reencrypt_22_031_expired_staple_within_clock_skew(
        env, stapling_backend, module_so, pki):
    """The same staple with ReencryptClockSkew 2h: served, good."""
    be = stapling_backend(pki.ocsp_response(
        LEAF, this_update=-2 * DAY, next_update=-HOUR))
    _frontend(env, be, "Require", "ReencryptClockSkew 2h",
              "SSLProxyCheckPeerExpire Off")
    _served(env, be, "/skew", "good")


@pytest.mark.parametrize("version", ["tls1.2", "tls1.3"])
@pytest.mark.parametrize("mode", ["Verify", "Require"])
def test_reencrypt_22_032_this_update_in_future_refused(
        env, stapling_backend, module_so, pki, version, mode):
    """A staple made an hour ahead (thisUpdate in the future, beyond the
    default ReencryptClockSkew): 502, staple-invalid, naming thisUpdate;
    REENCRYPT_STAPLE invalid."""
    be = stapling_backend(pki.ocsp_response(
        LEAF, this_update=HOUR, next_update=DAY), version)
    _frontend(env, be, mode)
    m = _refused(env, be, "staple-invalid", "/future", "invalid", pki)
    mm = re.fullmatch(re.escape(_seen_about(pki, " with thisUpdate="))
                      + r"(\S+Z), in the future", m.group("seen"))
    assert mm, m.group(0)
    assert_time_near(mm.group(1), _utcnow() + HOUR)


# ----------------------------------------------------------- signer

def _flip_last_byte(der):
    """The response with the last byte of its signature changed (a
    response without certificates ends with its signature)."""
    return der[:-1] + bytes([der[-1] ^ 0x01])


@pytest.mark.parametrize("signer,seen", [
    ("other-ca", "an OCSP staple signed by CN=ocsp-other-ca.test serial "
                 "0x{other-ca}, which is neither the issuer nor certified "
                 "by it"),
    ("fake-issuer", "an OCSP staple signed by CN=Test Intermediate CA "
                    "serial 0x{fake-int}, which is neither the issuer nor "
                    "certified by it"),
    ("bad-signature", "an OCSP staple whose signature does not verify with "
                      "the key of CN=Test Intermediate CA serial 0x{int}"),
])
@pytest.mark.parametrize("mode", ["Verify", "Require"])
def test_reencrypt_22_040_wrong_signer_refused(
        env, stapling_backend, module_so, pki, signer, seen, mode):
    """A good staple not signed by the issuer: by a responder
    certificate of another CA (OCSPSigning), by a certificate that
    carries the issuer's name but another key, or with the issuer's
    name and a signature that does not verify: 502, staple-invalid,
    naming the signer; REENCRYPT_STAPLE invalid."""
    if signer == "other-ca":
        staple = pki.ocsp_response(LEAF, responder="ocsp-responder-other-ca")
    elif signer == "fake-issuer":
        staple = pki.ocsp_response(LEAF, responder="fake-int")
    else:
        staple = _flip_last_byte(pki.ocsp_response(LEAF))
    be = stapling_backend(staple)
    _frontend(env, be, mode)
    m = _refused(env, be, "staple-invalid", "/signer", "invalid", pki)
    assert m.group("seen") == seen.format(**{
        "other-ca": _serial_hex(pki, "ocsp-responder-other-ca"),
        "fake-int": _serial_hex(pki, "fake-int"),
        "int": _serial_hex(pki, "int")}), m.group(0)


def test_reencrypt_22_041_signer_not_in_staple(
        env, stapling_backend, module_so, pki):
    """A staple signed by a key whose certificate it does not carry (nor
    is it the issuer's): 502, staple-invalid."""
    be = stapling_backend(pki.ocsp_response(LEAF, responder="fake-int",
                                            include_responder=False))
    _frontend(env, be, "Verify")
    m = _refused(env, be, "staple-invalid", "/no-signer", "invalid", pki)
    assert m.group("seen") == ("an OCSP staple whose signer is neither in "
                               "it nor the issuer"), m.group(0)


@pytest.mark.parametrize("version", ["tls1.2", "tls1.3"])
def test_reencrypt_22_042_delegated_responder_served(
        env, stapling_backend, module_so, pki, version):
    """A staple signed by a responder the issuer certified with the
    OCSPSigning extended key usage (the response carries its
    certificate): good, served under Require."""
    be = stapling_backend(pki.ocsp_response(LEAF, responder="ocsp-responder",
                                            hash=hashes.SHA256()), version)
    _frontend(env, be, "Require")
    _served(env, be, "/delegated", "good")
    _re80(env, "good")


@pytest.mark.parametrize("responder,problem", [
    ("ocsp-responder-no-eku", "certified by the issuer but not for OCSP "
                              "signing (no OCSPSigning extended key usage)"),
    ("ocsp-responder-server-eku", "certified by the issuer but not for "
                                  "OCSP signing (no OCSPSigning extended "
                                  "key usage)"),
    ("ocsp-responder-expired", None),
])
def test_reencrypt_22_043_unauthorised_responder_refused(
        env, stapling_backend, module_so, pki, responder, problem):
    """A staple signed by a certificate the issuer signed, but without
    the OCSPSigning extended key usage (none at all, or serverAuth only),
    or by an OCSP responder whose certificate has expired: 502,
    staple-invalid, naming the responder and what it lacks."""
    be = stapling_backend(pki.ocsp_response(LEAF, responder=responder))
    _frontend(env, be, "Verify")
    m = _refused(env, be, "staple-invalid", "/responder", "invalid", pki)
    who = "" if problem else "the responder "
    head = (f"an OCSP staple signed by {who}CN={pki[responder].cn} serial "
            f"0x{_serial_hex(pki, responder)}")
    if problem:
        assert m.group("seen") == f"{head}, {problem}", m.group(0)
    else:
        mm = re.fullmatch(re.escape(head) + r", valid from (\S+Z) to (\S+Z) "
                          r"only", m.group("seen"))
        assert mm, m.group(0)
        assert parse_asn1_time(mm.group(2)) == pki[responder].not_after


@pytest.mark.parametrize("carried", ["int-reissued", "int-cross"])
def test_reencrypt_22_044_issuer_key_with_other_certificate_served(
        env, stapling_backend, module_so, pki, carried):
    """A staple signed with the issuer's own key, which carries another
    certificate of that key (the intermediate issued again by the root,
    or cross-signed by another root) instead of the one in the backend's
    chain: signed by the issuer all the same (RFC 6960 4.2.2.2 names the
    signing key), so good under Require."""
    be = stapling_backend(pki.ocsp_response(LEAF, responder=carried))
    _frontend(env, be, "Require")
    _served(env, be, "/issuer-key", "good")
    _re80(env, "good")


# ------------------------------------------------- other certificate

@pytest.mark.parametrize("mode", ["Verify", "Require"])
def test_reencrypt_22_050_staple_for_other_certificate_refused(
        env, stapling_backend, module_so, pki, mode):
    """A good staple of the right issuer about another of its
    certificates (another serial): 502, staple-invalid."""
    be = stapling_backend(pki.ocsp_response(LEAF, about="wild"))
    _frontend(env, be, mode)
    m = _refused(env, be, "staple-invalid", "/other", "invalid", pki)
    assert m.group("seen") == _seen_about(pki, "").replace(
        "an OCSP staple for ", "an OCSP staple with no status for ") + (
        " (issued by CN=Test Intermediate CA)"), m.group(0)


@pytest.mark.parametrize("version", ["tls1.2", "tls1.3"])
@pytest.mark.parametrize("mode", ["Verify", "Require"])
def test_reencrypt_22_051_garbage_staple_refused(
        env, stapling_backend, module_so, pki, version, mode):
    """A staple that is not an OCSP response at all: 502,
    staple-invalid, saying how many bytes came."""
    garbage = b"this is not an OCSP response\x00\xff" * 3
    be = stapling_backend(garbage, version)
    _frontend(env, be, mode)
    m = _refused(env, be, "staple-invalid", "/garbage", "invalid", pki)
    assert m.group("seen") == (f"{len(garbage)} bytes that are not one "
                               f"OCSP response"), m.group(0)


# ------------------------------------------------------------ report

@pytest.mark.parametrize("kind,reason,state", [
    ("revoked", "staple-revoked", "revoked"),
    ("none", "staple-missing", "absent"),
])
def test_reencrypt_22_060_report_mode(env, stapling_backend, module_so, pki,
                                      kind, reason, state):
    """ReencryptMode Report with Require: a revoked staple, or none, is
    served (200, the backend answers), one RE00018 line at level warn
    says what would have been refused, no RE00010; REENCRYPT_RESULT
    report:<reason>, REENCRYPT_STAPLE revoked / absent.  No session is
    kept from such a handshake: the next request is a full handshake
    again, reported again."""
    staple = (pki.ocsp_response(LEAF, status="revoked")
              if kind == "revoked" else None)
    be = stapling_backend(staple)
    _frontend(env, be, "Require", "ReencryptMode Report",
              "SSLProxyCheckPeerExpire Off")
    env.expect_log("RE00018")
    for i, path in enumerate(("/report/1", "/report/2")):
        r = _get(env, path)
        assert r.status == 200, (r, env.error_log(), be.connections)
        assert r.text == f"backend-ok {path}\n"
        assert _logged(env, path) == ("200", f"report:{reason}", state,
                                      "full"), env.error_log()
        assert len(re18_lines(env)) == i + 1, env.error_log()
    assert not re10_lines(env), env.error_log()
    for line in re18_lines(env):
        assert line.level == "warn", line.raw
        m = RE18_RE.search(line.rest)
        assert m, line.raw
        assert m.group("backend") == f"127.0.0.1:{be.port}", line.raw
        assert m.group("reason") == reason, line.raw
        assert EXPECTED_RE.fullmatch(m.group("expected")), line.raw
    be.wait_for(lambda: len(be.served()) == 2, what="two responses")
    assert [c.resumed for c in be.connections] == [False, False], (
        be.connections)


# ------------------------------------------------------- Off scopes

def test_reencrypt_22_070_off_scope_does_not_ask(
        env, stapling_backend, module_so, pki):
    """A backend stapling a revoked response, under a policy whose
    stapling is Off (left unset in the virtual host, or set Off in a
    <Location> inside a Require one): the ClientHello does not ask for a
    staple (the backend's status callback never runs), the request is
    served and REENCRYPT_STAPLE is not set; the <Location> with Verify
    asks, and refuses (staple-revoked).  ReencryptSessionReuse Off: every
    request a full handshake, whose ClientHello could ask."""
    be = stapling_backend(pki.ocsp_response(LEAF, status="revoked"))
    _frontend(env, be, None, "ReencryptSessionReuse Off", locations="""
<Location /verify>
    ReencryptOCSPStapling Verify
</Location>
<Location /require>
    ReencryptOCSPStapling Require
</Location>
<Location /require/off>
    ReencryptOCSPStapling Off
</Location>
""")
    for path in ("/unset", "/require/off/x"):
        c = _served(env, be, path, "-")
        assert not c.status_requested and c.stapled is None, be.connections
    _refused(env, be, "staple-revoked", "/verify/x", "revoked", pki)
    assert not [ln for ln in env.log_lines() if "RE00080:" in ln.rest]


@pytest.mark.parametrize("mode", ["Verify", "Require"])
def test_reencrypt_22_071_chain_refused_before_staple(
        env, stapling_backend, module_so, pki, mode):
    """A backend whose chain the policy refuses (another CA), stapling a
    good response of its own issuer: refused for its chain
    (untrusted-chain) in the handshake, before any staple is looked at;
    one RE00010 line; REENCRYPT_STAPLE not-checked."""
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    be = stapling_backend(pki.ocsp_response("other-ca", issuer="other-root"),
                          leaf="other-ca")
    _frontend(env, be, mode)
    r = _get(env, "/chain")
    assert r.status == 502, (r, env.error_log())
    be.wait_closed()
    assert be.app_bytes == 0, be.connections
    assert [c.handshake_ok for c in be.connections] == [False], (
        be.connections)
    assert_one_re10(env, be, "untrusted-chain")
    assert _logged(env, "/chain") == ("502", "refused:untrusted-chain",
                                      "not-checked", "full")
    assert not [ln for ln in env.log_lines() if "RE00080:" in ln.rest]


# --------------------------------------------------------- sessions

def _wait_past(moment, timeout=15.0):
    """Poll the clock until the whole second after moment (UTC, naive)
    has begun: a time the module, counting seconds, sees as past."""
    target = moment.replace(tzinfo=datetime.timezone.utc).timestamp() + 1
    deadline = time.monotonic() + timeout
    while time.time() < target:
        assert time.monotonic() < deadline, "the clock does not move"
        time.sleep(0.05)  # polling interval, bounded by the deadline


@pytest.mark.parametrize("version", ["tls1.2", "tls1.3"])
def test_reencrypt_22_080_require_session_lives_until_next_update(
        env, stapling_backend, module_so, pki, version):
    """Under Require with ReencryptClockSkew 0, a backend stapling a
    good response whose nextUpdate is a few seconds ahead: the first
    request is a full handshake (good), the second resumes its session
    (the backend resumed it; REENCRYPT_STAPLE resumed); once nextUpdate
    is past the session is not offered: the third request is a full
    handshake, and the same staple, expired now, is refused
    (staple-expired)."""
    next_update = datetime.timedelta(seconds=4)
    staple = pki.ocsp_response(LEAF, next_update=next_update)
    moment = ocsp.load_der_ocsp_response(staple).next_update
    be = stapling_backend(staple, version)
    _frontend(env, be, "Require", "ReencryptClockSkew 0")
    first = _served(env, be, "/s/1", "good")
    second = _served(env, be, "/s/2", "resumed", session="resumed")
    assert (first.resumed, second.resumed) == (False, True), be.connections
    assert datetime.datetime.utcnow() < moment, (
        "too slow: the staple expired before the second request")

    _wait_past(moment)
    m = _refused(env, be, "staple-expired", "/s/3", "expired", pki)
    assert be.connections[-1].resumed is False, be.connections
    mm = re.fullmatch(re.escape(_seen_about(pki, " with nextUpdate="))
                      + r"(\S+Z), past", m.group("seen"))
    assert mm and parse_asn1_time(mm.group(1)) == moment, m.group(0)


@pytest.mark.parametrize("mode,sessions", [
    ("Require", ["full", "full"]),
    ("Verify", ["full", "resumed"]),
])
def test_reencrypt_22_081_staple_without_next_update_sessions(
        env, stapling_backend, module_so, pki, mode, sessions):
    """A good staple without nextUpdate: under Require it makes no
    session (every request a full handshake, each checking a staple);
    under Verify the session is kept and resumed as usual."""
    be = stapling_backend(pki.ocsp_response(LEAF, next_update=None))
    _frontend(env, be, mode)
    got = []
    for i, session in enumerate(sessions):
        c = _served(env, be, f"/n/{i}",
                    "good" if session == "full" else "resumed", session)
        got.append("resumed" if c.resumed else "full")
    assert got == sessions, be.connections


def test_reencrypt_22_082_sessions_do_not_cross_stapling_modes(
        env, stapling_backend, module_so, pki):
    """One backend worker, sending no staple, under Verify in /verify and
    Require elsewhere: /verify's session is kept and resumed there, but
    never offered for /require, whose full handshake is refused
    (staple-missing)."""
    be = stapling_backend(None)
    _frontend(env, be, "Require", locations="""
<Location /verify>
    ReencryptOCSPStapling Verify
</Location>
""")
    _served(env, be, "/verify/1", "absent")
    assert _served(env, be, "/verify/2", "resumed",
                   session="resumed").resumed, be.connections
    _refused(env, be, "staple-missing", "/require", "absent", pki)
    assert be.connections[-1].resumed is False, be.connections


def test_reencrypt_22_083_pooled_connection_does_not_cross_modes(
        env, stapling_backend, module_so, pki):
    """The same with pooled connections (keepalive=On, one child): the
    connection /verify was served on, verified without a staple, never
    carries the request under Require, which gets a connection of its
    own, refused (staple-missing) without a byte."""
    be = stapling_backend(None)
    _frontend(env, be, "Require", reuse="keepalive=On", locations="""
<Location /verify>
    ReencryptOCSPStapling Verify
</Location>
""")
    _served(env, be, "/verify/1", "absent")
    _refused(env, be, "staple-missing", "/require", "absent", pki)
    assert [c.requests for c in be.connections] == [["/verify/1"], []], (
        be.connections)


def test_reencrypt_22_084_pooled_connection_lives_until_next_update(
        env, stapling_backend, module_so, pki):
    """Under Require with pooled connections (keepalive=On, one child)
    and ReencryptClockSkew 0, a staple whose nextUpdate is a few seconds
    ahead: the second request rides the first one's connection; once
    nextUpdate is past, the pooled connection is not used again: the
    third request gets a connection of its own, whose full handshake
    checks the same staple, expired now, and is refused without a byte
    (staple-expired)."""
    staple = pki.ocsp_response(LEAF, next_update=datetime.timedelta(
        seconds=4))
    moment = ocsp.load_der_ocsp_response(staple).next_update
    be = stapling_backend(staple)
    _frontend(env, be, "Require", "ReencryptClockSkew 0",
              reuse="keepalive=On")
    first = _served(env, be, "/p/1", "good")
    r = _get(env, "/p/2")
    assert r.status == 200, (r, env.error_log())
    second = _carrier(be, "/p/2")
    assert second is first, be.connections
    assert datetime.datetime.utcnow() < moment, (
        "too slow: the staple expired before the second request")

    _wait_past(moment)
    _refused(env, be, "staple-expired", "/p/3", "expired", pki)
    assert [c.requests for c in be.connections] == [["/p/1", "/p/2"], []], (
        be.connections)


# ----------------------------------------------------- configuration

@pytest.mark.parametrize("mode", ["Verify", "Require"])
@pytest.mark.parametrize("where", ["vhost", "location", "proxy", "server"])
def test_reencrypt_22_090_stapling_with_pin_only_refused(
        env, module_so, pki, mode, where):
    """ReencryptOCSPStapling with ReencryptTrust PinOnly (no validated
    chain, so no issuer to vouch for a staple's signer), in the same
    virtual host, in a <Location> or <Proxy> inside it, or inherited from
    the server config: apache2 -t and the start fail with RE00004 naming
    the policy and the stapling directive's file:line; with Off the same
    configuration passes."""
    url = "https://127.0.0.1:1/"

    def config(m):
        line = f"ReencryptOCSPStapling {m}"
        inner = {"location": f"<Location /x>\n    {line}\n</Location>",
                 "proxy": f"<Proxy {url}>\n    {line}\n</Proxy>"}
        env.write_config(
            server=line if where == "server" else "",
            vhost=policy_vhost(url, "ReencryptTrust PinOnly",
                               f"ReencryptPin {pki.pin(LEAF)} "
                               f"{pki.pin('good-next')}",
                               *([line] if where == "vhost" else []))
            + "\n" + inner.get(where, ""))

    config(mode)
    rx = (r"RE00004: ReencryptEngine On at %s:%d .*is unusable: "
          r"ReencryptOCSPStapling \(at %s:%d\) cannot go with "
          r"ReencryptTrust PinOnly" % (
              re.escape(env.conf_file), env.line_of("ReencryptEngine On"),
              re.escape(env.conf_file),
              env.line_of("ReencryptOCSPStapling")))
    assert_startup_error(env, rx)

    config("Off")
    rc, out = env.configtest()
    assert rc == 0, out


def test_reencrypt_22_091_bad_keyword(env, module_so, pki):
    env.write_config(vhost=policy_vhost(
        "https://127.0.0.1:1/", "ReencryptOCSPStapling Sometimes",
        ca=pki.ca_file))
    assert_syntax_error(env, "ReencryptOCSPStapling",
                        "ReencryptOCSPStapling: 'Sometimes' is not Off, "
                        "Verify or Require")


# ------------------------------------------ a real Apache backend

class OCSPResponder(harness.ocsp.OCSPResponder):
    """An OCSP responder on 127.0.0.1 (harness.ocsp): answers every
    OCSP request with a response of the Test Intermediate CA about the
    serial asked for, in the certificate ID's hash, saying status
    ("good", "revoked", "unknown" or "tryLater": a response without a
    status); records the serials asked for (``requests``)."""

    def __init__(self, pki, status="good"):
        self.status = status
        super().__init__(lambda der: pki.ocsp_answer(
            der, status=self.status,
            reason=x509.ReasonFlags.key_compromise))
        self.start()


@pytest.fixture
def ocsp_responder(pki):
    yield from stopped_after(lambda status="good": OCSPResponder(pki, status))


# the Apache backend presents pki's "frontend" certificate (CN
# localhost, issued by the Test Intermediate CA)
APACHE_LEAF = "frontend"
PAGE = "stapled backend page\n"


def _apache_backend(make_env, responder, protocol):
    """A private Apache speaking only protocol, stapling with mod_ssl's
    own implementation, asking responder; its access log: status and
    request line."""
    be = make_env("staplebackend")
    with open(os.path.join(be.root, "htdocs", "page"), "w") as f:
        f.write(PAGE)
    be.write_config(
        reencrypt=None,
        server="\n".join([
            f'SSLStaplingCache "shmcb:{be.root}/run/ocsp_stapling(128000)"',
            'LogFormat "%>s %r" backend',
            f'CustomLog "{be.access_log_file}" backend']),
        vhost="\n".join([
            f"SSLProtocol -all +{protocol}",
            "SSLUseStapling On",
            "SSLStaplingResponderTimeout 2",
            "SSLStaplingReturnResponderErrors off",
            f"SSLStaplingForceURL {responder.url}",
            f'<Directory "{be.root}/htdocs">',
            "    Require all granted",
            "</Directory>"]))
    be.start()
    return be


def _apache_frontend(env, be, mode, *directives):
    env.write_config(
        loglevel="warn reencrypt:debug",
        vhost=policy_vhost(f"https://127.0.0.1:{be.port}/ disablereuse=On",
                           "ReencryptSNI localhost",
                           f"ReencryptOCSPStapling {mode}", *directives,
                           ca=env.pki.ca_file)
        + "\n" + _log_directives(env))
    env.start()


def _get_page(env, path="/page"):
    r = _get(env, path)
    assert r.status == 200, (r, env.error_log())
    assert r.text == PAGE
    return r


@pytest.mark.parametrize("version", ["tls1.2", "tls1.3"])
def test_reencrypt_22_100_apache_backend_staple_good(
        make_env, module_so, pki, ocsp_responder, version):
    """A real Apache backend with SSLUseStapling On fetches its staple
    from the OCSP responder (one request, about its certificate's
    serial) and staples it: served under Require, REENCRYPT_STAPLE good,
    RE00080 names the backend's certificate."""
    responder = ocsp_responder("good")
    be = _apache_backend(make_env, responder, VERSION_NAMES[version])
    env = make_env("frontend")
    _apache_frontend(env, be, "Require")
    _get_page(env)
    assert _logged(env, "/page") == ("200", "ok", "good", "full")
    assert responder.requests == [pki[APACHE_LEAF].cert.serial_number]
    seen = _re80(env, "good").group("seen")
    assert seen.startswith(
        f"an OCSP staple for CN=localhost serial "
        f"0x{_serial_hex(pki, APACHE_LEAF)}: good, thisUpdate="), seen


def test_reencrypt_22_101_apache_backend_proxy_never_asks_responder(
        make_env, module_so, pki, ocsp_responder):
    """The proxy checks the staple the backend sent, and never asks a
    responder itself: once the backend has its staple cached, the
    responder is stopped, and three more requests (each a full
    handshake: ReencryptSessionReuse Off) pass under Require with a good
    staple; the responder saw only the backend's one request."""
    responder = ocsp_responder("good")
    be = _apache_backend(make_env, responder, "TLSv1.3")
    env = make_env("frontend")
    _apache_frontend(env, be, "Require", "ReencryptSessionReuse Off")
    _get_page(env, "/page")
    assert len(responder.requests) == 1
    responder.stop()
    for i in range(3):
        _get_page(env, f"/page?{i}")
    assert len(responder.requests) == 1
    lines = env.access_lines(4)
    assert [ln.split(" ", 1)[1] for ln in lines] == [
        "200 ok good full"] * 4, lines
    assert len([ln for ln in env.log_lines() if "RE00080:" in ln.rest]) == 4


@pytest.mark.parametrize("status,reason", [
    ("revoked", "staple-revoked"),
    ("unknown", "staple-unknown"),
    ("tryLater", "staple-missing"),
])
def test_reencrypt_22_102_apache_backend_bad_status_refused(
        make_env, module_so, pki, ocsp_responder, status, reason):
    """The responder says revoked (keyCompromise) or unknown: mod_ssl
    staples it all the same (its response times are valid; it logs
    AH02969); it says tryLater: mod_ssl staples nothing
    (SSLStaplingReturnResponderErrors off).  Under Require each is
    refused: 502, one RE00010 line, and no request reaches the backend
    (its access log stays empty)."""
    responder = ocsp_responder(status)
    be = _apache_backend(make_env, responder, "TLSv1.3")
    if status != "tryLater":
        be.expect_log("AH02969")
    env = make_env("frontend")
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    _apache_frontend(env, be, "Require")
    r = _get(env, "/page")
    assert r.status == 502, (r, env.error_log(), be.error_log())
    assert len(responder.requests) == 1
    lines = re10_lines(env)
    assert len(lines) == 1, env.error_log()
    assert f"backend 127.0.0.1:{be.port} refused: {reason}; " in \
        lines[0].rest, lines[0].raw
    assert _logged(env, "/page")[:2] == ("502", f"refused:{reason}")
    if status == "revoked":
        assert "(reason keyCompromise)" in lines[0].rest, lines[0].raw
    # the frontend has logged its answer: the backend's connection ended
    assert be.access_lines(0) == [], be.access_lines(0)
