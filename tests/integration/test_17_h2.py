"""HTTP/2 backends (ProxyPass h2://...) under a policy.

mod_proxy_http2 opens its TLS backend connections through mod_proxy and
mod_ssl like mod_proxy_http does, so the policy applies to them the same
way. The backend here is a private Apache with mod_http2 (Protocols h2),
which logs the protocol of each request it serves.
"""

import os
import time

from checks import PROXY_HANDSHAKE_FAILURE_TAGS, RE10_RE, re10_lines
from httpd import MODULES_DIR

BODY = "served over h2\n"


def _h2_backend(make_env):
    be = make_env("h2backend")
    with open(os.path.join(be.root, "htdocs", "h2.txt"), "w") as f:
        f.write(BODY)
    be.write_config(
        reencrypt=None,
        server=(f'LoadModule http2_module "{MODULES_DIR}/mod_http2.so"\n'
                'Protocols h2 http/1.1\n'
                'LogFormat "%H %U %>s" proto\n'
                f'CustomLog "{be.access_log_file}" proto'),
        vhost=f'DocumentRoot "{be.root}/htdocs"\n'
              f'<Directory "{be.root}/htdocs">\n'
              '    Require all granted\n'
              '</Directory>')
    be.start()
    return be


def _write_h2_frontend(env, ca, sni, url):
    """A frontend with mod_proxy_http2 proxying / to url under a policy
    of trust anchor ca and ReencryptSNI sni."""
    env.write_config(
        server=(f'LoadModule proxy_http2_module '
                f'"{MODULES_DIR}/mod_proxy_http2.so"'),
        vhost="\n".join([
            "SSLProxyEngine On",
            "ReencryptEngine On",
            f'ReencryptCACertificateFile "{ca}"',
            f"ReencryptSNI {sni}",
            f"ProxyPass / {url}"]))


def _frontend(env, be, ca):
    _write_h2_frontend(env, ca, "localhost", f"h2://127.0.0.1:{be.port}/")
    env.start()


def _backend_lines(be):
    """The complete lines of the backend's access log."""
    try:
        with open(be.access_log_file) as f:
            return f.read().split("\n")[:-1]
    except FileNotFoundError:
        return []


def _wait_backend_lines(be, n, timeout=5.0):
    """Poll until the backend's access log has n complete lines (httpd
    writes a line after the response, so the client may see it first)."""
    deadline = time.monotonic() + timeout
    while len(_backend_lines(be)) < n and time.monotonic() < deadline:
        time.sleep(0.02)  # polling interval, bounded by the deadline
    return _backend_lines(be)


def _one_untrusted_chain_line(env, backend):
    """env's error log has one RE00010 line, refusing backend for
    untrusted-chain; returns it."""
    lines = re10_lines(env)
    assert len(lines) == 1, env.error_log()
    for line in lines:
        m = RE10_RE.search(line.rest)
        assert m and m.group("backend") == backend, line.raw
        assert m.group("reason") == "untrusted-chain", line.raw
    return lines[0]


def test_reencrypt_17_001_h2_backend_verified(make_env, module_so, pki):
    """An h2:// backend that passes the policy serves the request over
    HTTP/2 (the backend logs HTTP/2.0), with no RE00010 line."""
    be = _h2_backend(make_env)
    fe = make_env("frontend")
    _frontend(fe, be, pki.ca_file)
    r = fe.get("/h2.txt")
    assert r.status == 200, (r, fe.error_log(), be.error_log())
    assert r.text == BODY
    assert _wait_backend_lines(be, 1) == ["HTTP/2.0 /h2.txt 200"]
    assert not re10_lines(fe)


def test_reencrypt_17_002_h2_backend_refused(make_env, module_so, pki):
    """An h2:// backend whose chain does not lead to the policy's anchor
    is refused and serves nothing. mod_proxy_http2 tries once more on a
    new connection, refused too, and answers 503, which the module turns
    into 502 as for other backends; one RE00010 line for the attempt
    (the second refusal is logged at debug level only)."""
    be = _h2_backend(make_env)
    fe = make_env("frontend")
    fe.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    be.expect_log_re(r"\[ssl:")
    _frontend(fe, be, pki.other_ca_file)
    r = fe.get("/h2.txt")
    assert r.status == 502, (r, fe.error_log())
    assert _backend_lines(be) == []
    line = _one_untrusted_chain_line(fe, f"127.0.0.1:{be.port}")
    assert line.level == "error", line.raw


def test_reencrypt_17_003_h2_backend_named_with_default_port(
        env, backend, module_so, pki):
    """An h2:// URL without a port (mod_proxy_http2 connects to 443): the
    refused attempt's RE00010 line names the backend <address>:443, never
    :0, and the client gets 502. The backend is refused in the handshake,
    so it need not speak HTTP/2."""
    from test_02_refusal import default_port_backend
    be = default_port_backend(backend, "other-ca")
    _write_h2_frontend(env, pki.ca_file, "good.test", f"h2://{be.host}/")
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    env.start()
    r = env.get("/h2.txt")
    assert r.status == 502, (r, env.error_log())
    be.wait_settled()
    assert be.app_bytes == 0 and be.handshakes_ok == 0, be.describe()
    _one_untrusted_chain_line(env, f"{be.host}:443")


def test_reencrypt_17_004_h2_balancer_fails_over(make_env, backend, module_so,
                                                pki):
    """A balancer of two h2:// members, one of them refused by the policy
    (a chain from another CA): mod_proxy_http2 answers its refusal with
    503, so mod_proxy gives the request to the other member. Every
    request is served over HTTP/2 by the good member; the impostor gets
    no request byte; one RE00010 line for the attempt that met it."""
    be = _h2_backend(make_env)
    impostor = backend("other-ca")
    fe = make_env("frontend")
    fe.write_config(
        server=(f'LoadModule proxy_http2_module '
                f'"{MODULES_DIR}/mod_proxy_http2.so"\n'
                f'LoadModule slotmem_shm_module '
                f'"{MODULES_DIR}/mod_slotmem_shm.so"\n'
                f'LoadModule proxy_balancer_module '
                f'"{MODULES_DIR}/mod_proxy_balancer.so"\n'
                f'LoadModule lbmethod_byrequests_module '
                f'"{MODULES_DIR}/mod_lbmethod_byrequests.so"'),
        vhost="\n".join([
            "SSLProxyEngine On",
            "ReencryptEngine On",
            f'ReencryptCACertificateFile "{pki.ca_file}"',
            "ReencryptSNI localhost",
            "ReencryptVerifyName localhost good.test",
            "<Proxy balancer://h2app>",
            f"    BalancerMember h2://127.0.0.1:{impostor.port} retry=60",
            f"    BalancerMember h2://127.0.0.1:{be.port} retry=60",
            "    ProxySet lbmethod=byrequests",
            "</Proxy>",
            "ProxyPass / balancer://h2app/"]))
    fe.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    fe.start()
    for i in range(4):
        r = fe.get("/h2.txt")
        assert r.status == 200, (r, fe.error_log())
        assert r.text == BODY
    assert _wait_backend_lines(be, 4) == ["HTTP/2.0 /h2.txt 200"] * 4
    impostor.wait_settled()
    assert impostor.app_bytes == 0 and impostor.handshakes_ok == 0, \
        impostor.describe()
    lines = re10_lines(fe)
    assert len(lines) == 1, fe.error_log()
    m = RE10_RE.search(lines[0].rest)
    assert m.group("backend") == f"127.0.0.1:{impostor.port}", lines[0].raw
