"""Backends that renegotiate TLS after the handshake.

A TLS 1.2 server may ask for a new handshake at any time (HelloRequest)
and present another certificate in it. Under a policy the proxy refuses:
the client receives 502, no byte the backend sends after its request
reaches the client, the connection is not used again, and one RE00045
line names the backend. Without a policy mod_ssl's behaviour is kept
(the renegotiation goes through), and ReencryptMode Report only reports.

The renegotiating backend is a private Apache limited to TLS 1.2 whose
<Location /reneg> requires a client certificate (SSLVerifyClient
require): a request to /reneg makes it renegotiate (mod_ssl logs
AH02221), and the proxy has a certificate to present
(SSLProxyMachineCertificateFile). The same backend limited to TLS 1.3
asks for the certificate with a post-handshake CertificateRequest
instead, which the policy lets through, as it does the backend's
NewSessionTickets.

Backends that misbehave beyond what Apache does are driven through
libssl (libssl_backend.py): one that sends its response right after its
HelloRequest whatever the proxy answers, one that asks and then keeps
quiet, one that asks in the middle of its response, one that asks while
the connection is idle, and a TLS 1.3 one that sends KeyUpdates.
"""

import http.client
import os
import re
import ssl

import pytest

from checks import access_log_directives
from harness import stopped_after
from httpd import MODULES_DIR
from libssl_backend import (MID_BODY_FIRST, MID_BODY_SECOND, TLS1_2_VERSION,
                            TLS1_3_VERSION, LibsslBackend)

RE45_RE = re.compile(
    r"RE00045: backend (?P<backend>\S+) refused: (?P<reason>[a-z-]+); "
    r"expected (?P<expected>.*); seen (?P<seen>.*)$")
RE46_RE = re.compile(
    r"RE00046: backend (?P<backend>\S+) report-only: would refuse: "
    r"(?P<reason>[a-z-]+); expected (?P<expected>.*); seen (?P<seen>.*)$")
EXPECTED = "no renegotiation under the policy"
SEEN = "the backend asked to renegotiate (HelloRequest)"

INDEX = "backend index\n"
RENEG = "renegotiated page\n"
CLIENT_CN = "proxy-client.test"

# What mod_proxy_http and mod_proxy log (level error) when the backend
# connection fails while the response is awaited: "error reading status
# line from remote server" (AH01102) and "Error reading from remote
# server" (AH00898).
PROXY_READ_FAILURE_TAGS = ("AH01102", "AH00898")

# What mod_proxy_http logs (level error) when the backend connection
# fails in the middle of the response body: "error reading response".
PROXY_BODY_FAILURE_TAGS = ("AH01110",)

# What the Apache backend logs (level error) when the proxy declines its
# renegotiation: "Re-negotiation handshake failed" (AH02261) and
# OpenSSL's reason, the proxy's no_renegotiation alert.
BACKEND_RENEG_FAILED_TAG = "AH02261"
BACKEND_RENEG_FAILED_RE = r"SSL Library Error: .*:no renegotiation$"


def _reneg_backend(make_env, pki, protocol="TLSv1.2"):
    """A private Apache speaking only protocol, with /reneg behind
    SSLVerifyClient require (client certificates from the test root).
    Its access log has one line per request: status, the proxy's source
    port (the TCP connection), the CN of the client certificate (- for
    none) and the request line."""
    be = make_env("renegbackend")
    htdocs = os.path.join(be.root, "htdocs")
    with open(os.path.join(htdocs, "index.html"), "w") as f:
        f.write(INDEX)
    with open(os.path.join(htdocs, "reneg"), "w") as f:
        f.write(RENEG)
    be.write_config(
        reencrypt=None,
        loglevel="warn ssl:debug",
        server=(f'LoadModule dir_module "{MODULES_DIR}/mod_dir.so"\n'
                'LogFormat "%>s %{remote}p %{SSL_CLIENT_S_DN_CN}x %r" '
                'reneg\n'
                f'CustomLog "{be.access_log_file}" reneg'),
        vhost="\n".join([
            f"SSLProtocol -all +{protocol}",
            f'SSLCACertificateFile "{pki.ca_file}"',
            f'DocumentRoot "{htdocs}"',
            "DirectoryIndex index.html",
            f'<Directory "{htdocs}">',
            "    Require all granted",
            "</Directory>",
            "<Location /reneg>",
            "    SSLVerifyClient require",
            "</Location>"]))
    be.start()
    return be


def _frontend(env, be, pki, *directives):
    """A frontend proxying / to be, presenting the client certificate;
    directives: the policy (none: stock mod_ssl)."""
    env.write_config(vhost="\n".join([
        "SSLProxyEngine On",
        f'SSLProxyMachineCertificateFile "{pki.client_pem_file}"',
        *directives,
        access_log_directives(env),
        f"ProxyPass / https://127.0.0.1:{be.port}/"]))
    env.start()


def _policy_frontend(env, be, pki, *directives):
    _frontend(env, be, pki,
              "ReencryptEngine On",
              f'ReencryptCACertificateFile "{pki.ca_file}"',
              "ReencryptSNI localhost",
              *directives)


def _backend_log(be, count):
    """The backend's access log as (path, status, port, client CN)
    tuples, once it has at least count lines."""
    out = []
    for ln in be.access_lines(count):
        status, port, cn, request = ln.split(" ", 3)
        out.append((request.split(" ")[1], status, port, cn))
    return out


def _lines(env, tag):
    return [ln for ln in env.log_lines() if f"{tag}:" in ln.rest]


def _the_line(env, tag, regex, level, backend):
    """The one line of tag, at level, of the documented shape, naming
    backend; returns it."""
    lines = _lines(env, tag)
    assert len(lines) == 1, env.error_log()
    line = lines[0]
    assert line.level == level, line.raw
    m = regex.search(line.rest)
    assert m, line.raw
    assert m.group("backend") == f"127.0.0.1:{backend.port}", line.raw
    assert m.group("reason") == "renegotiation", line.raw
    assert m.group("expected") == EXPECTED, line.raw
    assert m.group("seen") == SEEN, line.raw
    return line


def test_reencrypt_18_001_renegotiation_refused(make_env, module_so, pki):
    """Under a policy, a TLS 1.2 backend that renegotiates for /reneg
    (after / was served on the same pooled connection) is refused: the
    client receives 502 and none of the page, one RE00045 line at level
    error names the backend (with the client's address), the request's
    REENCRYPT_RESULT is refused:renegotiation; the backend did ask
    (AH02221), got the proxy's no_renegotiation alert and never served
    /reneg; a later request to / is served on a new connection."""
    be = _reneg_backend(make_env, pki)
    be.expect_log(BACKEND_RENEG_FAILED_TAG)
    be.expect_log_re(BACKEND_RENEG_FAILED_RE)
    fe = make_env("frontend")
    fe.expect_log("RE00045", *PROXY_READ_FAILURE_TAGS)
    _policy_frontend(fe, be, pki)

    r = fe.get("/")
    assert r.status == 200, (r, fe.error_log(), be.error_log())
    assert r.text == INDEX

    r = fe.get("/reneg")
    assert r.status == 502, (r, fe.error_log(), be.error_log())
    assert RENEG not in r.text
    be.wait_log(r"AH02221: Requesting connection re-negotiation")
    be.wait_log(BACKEND_RENEG_FAILED_RE)
    line = _the_line(fe, "RE00045", RE45_RE, "error", be)
    assert "[client 127.0.0.1:" in line.raw, line.raw

    r = fe.get("/")
    assert r.status == 200, (r, fe.error_log(), be.error_log())
    assert r.text == INDEX
    log = _backend_log(be, 3)
    assert [e[0] for e in log if e[1] == "200"] == ["/", "/"], log
    reneg = [e for e in log if e[0] == "/reneg"]
    assert reneg and all(e[1] != "200" for e in reneg), log
    assert log[-1][2] not in {e[2] for e in reneg}, (
        f"the renegotiating connection was used again: {log}")
    assert len(_lines(fe, "RE00045")) == 1, fe.error_log()
    assert [ln.split(" ")[:2] for ln in fe.access_lines(3)] == [
        ["/", "ok"], ["/reneg", "refused:renegotiation"], ["/", "ok"]]


def _assert_renegotiated_and_served(fe, be):
    """GET /reneg through fe: 200 with the page, the backend renegotiated
    (AH02221) and logged /reneg served with the proxy's client
    certificate."""
    r = fe.get("/reneg")
    assert r.status == 200, (r, fe.error_log(), be.error_log())
    assert r.text == RENEG
    be.wait_log(r"AH02221: Requesting connection re-negotiation")
    assert [e[:2] + e[3:] for e in _backend_log(be, 1)] == [
        ("/reneg", "200", CLIENT_CN)]


def test_reencrypt_18_002_no_policy_renegotiation_goes_through(
        make_env, module_so, pki):
    """Without a policy (the module loaded, ReencryptEngine Off) mod_ssl
    keeps its behaviour: the backend renegotiates (AH02221), receives the
    proxy's client certificate in the new handshake and serves /reneg;
    the client receives the page. This shows that the backend really
    renegotiates in the other tests."""
    be = _reneg_backend(make_env, pki)
    fe = make_env("frontend")
    _frontend(fe, be, pki, "SSLProxyCheckPeerName Off")
    _assert_renegotiated_and_served(fe, be)
    assert not _lines(fe, "RE00045")


def test_reencrypt_18_003_report_mode_reports_renegotiation(
        make_env, module_so, pki):
    """ReencryptMode Report: the renegotiation goes through and the page
    is served, and one RE00046 line at level warn says it would have been
    refused; no RE00045 line."""
    be = _reneg_backend(make_env, pki)
    fe = make_env("frontend")
    fe.expect_log("RE00046", "RE00035")   # SSLProxyCheckPeerExpire is on
    _policy_frontend(fe, be, pki, "ReencryptMode Report")
    _assert_renegotiated_and_served(fe, be)
    _the_line(fe, "RE00046", RE46_RE, "warn", be)
    assert not _lines(fe, "RE00045")


def test_reencrypt_18_004_tls13_post_handshake_auth_served(
        make_env, module_so, pki):
    """The same backend limited to TLS 1.3 asks for the client
    certificate of /reneg with a post-handshake CertificateRequest
    (AH10129), and sends NewSessionTickets: under the policy the proxy
    answers with its certificate, / and /reneg are served on one
    connection, and nothing is refused."""
    be = _reneg_backend(make_env, pki, protocol="TLSv1.3")
    fe = make_env("frontend")
    _policy_frontend(fe, be, pki)
    for path, body in (("/", INDEX), ("/reneg", RENEG), ("/", INDEX)):
        r = fe.get(path)
        assert r.status == 200, (path, r, fe.error_log(), be.error_log())
        assert r.text == body
    be.wait_log(r"AH10129: verify client post handshake")
    log = _backend_log(be, 3)
    assert [(e[0], e[1]) for e in log] == [
        ("/", "200"), ("/reneg", "200"), ("/", "200")], log
    assert log[1][3] == CLIENT_CN, log
    assert len({e[2] for e in log}) == 1, log
    assert not _lines(fe, "RE00045") and not _lines(fe, "RE00046")


@pytest.fixture
def libssl_backend(pki):
    yield from stopped_after(lambda version: LibsslBackend(
        pki.chain("frontend"), pki.key("frontend"), version).start())


def _one_re45(fe, be):
    return _the_line(fe, "RE00045", RE45_RE, "error", be)


def test_reencrypt_18_005_response_after_hello_request_dropped(
        make_env, module_so, pki, libssl_backend):
    """A TLS 1.2 backend that sends its response right after its
    HelloRequest, ignoring the proxy's refusal: the response was sent but
    none of it reaches the client, which receives 502; one RE00045 line;
    the next request is served on a new connection."""
    be = libssl_backend(TLS1_2_VERSION)
    fe = make_env("frontend")
    fe.expect_log("RE00045", *PROXY_READ_FAILURE_TAGS)
    _policy_frontend(fe, be, pki)
    path = "/hello-request/answer"
    r = fe.get(path)
    assert r.status == 502, (r, fe.error_log(), be.connections)
    assert b"backend-ok" not in r.body
    be.wait_for(lambda: be.served(), what="response sent")
    (cid, served), = be.served()
    assert served == path
    _one_re45(fe, be)

    r = fe.get("/after")
    assert r.status == 200, (r, fe.error_log(), be.connections)
    assert r.text == "backend-ok /after\n"
    be.wait_for(lambda: len(be.served()) == 2, what="second response")
    assert [p for c, p in be.served() if c != cid] == ["/after"], (
        be.connections)
    assert len(_lines(fe, "RE00045")) == 1, fe.error_log()


def test_reencrypt_18_006_quiet_after_hello_request_not_awaited(
        make_env, module_so, pki, libssl_backend):
    """A TLS 1.2 backend that asks to renegotiate and then sends nothing:
    the proxy does not wait for it (the frontend's Timeout is 20 s, the
    client waits 10 s at most): 502 and one RE00045 line."""
    be = libssl_backend(TLS1_2_VERSION)
    fe = make_env("frontend")
    fe.expect_log("RE00045", *PROXY_READ_FAILURE_TAGS)
    _policy_frontend(fe, be, pki)
    r = fe.get("/hello-request/wait", timeout=10)
    assert r.status == 502, (r, fe.error_log(), be.connections)
    assert be.served() == []
    _one_re45(fe, be)


def test_reencrypt_18_007_tls13_key_update_served(
        make_env, module_so, pki, libssl_backend):
    """A TLS 1.3 backend that sends a KeyUpdate (asking the proxy to
    update its keys too) before each response: both requests are served
    on the same connection, and nothing is refused."""
    be = libssl_backend(TLS1_3_VERSION)
    fe = make_env("frontend")
    _policy_frontend(fe, be, pki)
    for _ in range(2):
        r = fe.get("/key-update")
        assert r.status == 200, (r, fe.error_log(), be.connections)
        assert r.text == "backend-ok /key-update\n"
    be.wait_for(lambda: len(be.served()) == 2, what="second response")
    assert be.served() == [(0, "/key-update"), (0, "/key-update")], (
        be.connections)
    assert not _lines(fe, "RE00045")


def test_reencrypt_18_008_hello_request_mid_response(
        make_env, module_so, pki, libssl_backend):
    """A TLS 1.2 backend that asks to renegotiate in the middle of its
    response body, once the client has the first half: the client gets
    nothing more, not the second half the backend sends after its
    HelloRequest, and the connection ends short of the announced length;
    one RE00045 line, and the request's REENCRYPT_RESULT is
    refused:renegotiation."""
    be = libssl_backend(TLS1_2_VERSION)
    fe = make_env("frontend")
    fe.expect_log("RE00045", *PROXY_BODY_FAILURE_TAGS)
    _policy_frontend(fe, be, pki)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", fe.port, timeout=10,
                                       context=ctx)
    try:
        conn.request("GET", "/hello-request/mid-body", headers={
            "Host": f"localhost:{fe.port}", "Connection": "close"})
        r = conn.getresponse()
        assert r.status == 200, (r.status, fe.error_log())
        assert int(r.getheader("Content-Length")) == (
            len(MID_BODY_FIRST) + len(MID_BODY_SECOND))
        assert r.read(len(MID_BODY_FIRST)) == MID_BODY_FIRST
        be.mid_body_go.set()
        with pytest.raises(http.client.IncompleteRead) as short:
            r.read()
        assert short.value.partial == b"", short.value.partial
    finally:
        conn.close()
    be.wait_for(lambda: be.served(), what="second half sent")
    assert be.connections[0].hello_requests == 1, be.connections
    _one_re45(fe, be)
    assert fe.access_lines(1)[0].split(" ")[:2] == [
        "/hello-request/mid-body", "refused:renegotiation"]


def test_reencrypt_18_009_hello_request_on_idle_connection(
        make_env, module_so, pki, libssl_backend):
    """A TLS 1.2 backend that asks to renegotiate after its response,
    while the connection waits in mod_proxy's pool: the next request
    does not ride it, it is served on a new connection; one RE00045 line,
    about the backend connection (no client was waiting)."""
    be = libssl_backend(TLS1_2_VERSION)
    fe = make_env("frontend")
    fe.expect_log("RE00045")
    _policy_frontend(fe, be, pki)
    r = fe.get("/hello-request/after-response")
    assert r.status == 200, (r, fe.error_log(), be.connections)
    assert r.text == "backend-ok /hello-request/after-response\n"
    be.wait_for(lambda: be.connections[0].hello_requests == 1,
                what="HelloRequest sent")
    r = fe.get("/next")
    assert r.status == 200, (r, fe.error_log(), be.connections)
    assert r.text == "backend-ok /next\n"
    be.wait_for(lambda: len(be.served()) == 2, what="second response")
    assert be.served() == [(0, "/hello-request/after-response"),
                           (1, "/next")], be.connections
    _one_re45(fe, be)
    line = _lines(fe, "RE00045")[0]
    assert "[remote 127.0.0.1:" in line.raw and "[client " not in line.raw
