"""WebSocket backends (wss://) under the policy, whichever module carries
them.

Two paths of httpd 2.4.71 open a TLS connection to a WebSocket backend:

- mod_proxy_wstunnel, for `ProxyPass /ws/ wss://...` when
  `ProxyWebsocketFallbackToProxyHttp Off` (since 2.4.47 it otherwise hands
  the request to mod_proxy_http); it logs AH02451 "serving URL";
- mod_proxy_http's upgrade path: `ProxyPass /ws/ https://...
  upgrade=websocket`, or a wss:// URL (mod_proxy_http speaks ws:// and
  wss:// itself); it logs AH10239 "HTTP: tunneling protocol websocket".

On both the backend's handshake is verified under the policy before any
byte of the upgrade request is written: a good backend echoes every
message, an impostor (a chain from another CA) gets no byte of the
upgrade request, the client's upgrade is answered 502 and one RE00010
line names the backend.  A wss:// URL without a port is named <host>:443
wherever a backend is named: RE00010, RE00014, the statistics, the
session cache's lines.  A balancer of wss:// members moves an upgrade
from a refused member to a good one; Report mode lets an impostor's
WebSocket open with one RE00018 line.  The backends are TLS WebSocket
echo servers written with python3-websockets (ws_backend.py); the client
is python3-websockets' too, through the TLS frontend.
"""

import collections
import re
import ssl

import pytest

from checks import (PROXY_HANDSHAKE_FAILURE_TAGS, RE18_RE, assert_one_re10,
                    re10_lines, re14_matches, re18_lines)
from httpd import MODULES_DIR
from test_02_refusal import default_port_backend
from test_16_balancer import BALANCER_MODULES
from ws_backend import WSBackend, ws_echo, ws_status

WSTUNNEL_MODULE = (f'LoadModule proxy_wstunnel_module '
                   f'"{MODULES_DIR}/mod_proxy_wstunnel.so"')

# One way of httpd 2.4.71 to carry a WebSocket to a TLS backend:
#   server    lines at server level (the module to load)
#   vhost     a line for the virtual host
#   target    the ProxyPass target of a backend at host[:port]
#   carrier   the tag the carrying module logs at debug level for each
#             WebSocket: AH02451 (mod_proxy_wstunnel: serving URL),
#             AH10239 (mod_proxy_http: tunneling protocol websocket)
#   backend   arguments of the backends: mod_proxy_wstunnel's own tunnel
#             polls the sockets and misses a response that arrives behind
#             a TLS 1.3 NewSessionTicket which mod_ssl has already read
#             (the WebSocket stalls; stock httpd, with or without
#             mod_reencrypt), so its backends speak TLS 1.2, whose tickets
#             come within the handshake
Path = collections.namedtuple("Path", "server vhost target carrier backend")
PATHS = {
    # mod_proxy_wstunnel itself
    "wstunnel": Path(WSTUNNEL_MODULE, "ProxyWebsocketFallbackToProxyHttp Off",
                     lambda hp: f"wss://{hp}/", "AH02451",
                     {"max_version": ssl.TLSVersion.TLSv1_2}),
    # mod_proxy_http: an https:// worker allowed to upgrade
    "http-upgrade": Path("", "", lambda hp: f"https://{hp}/ upgrade=websocket",
                         "AH10239", {}),
    # mod_proxy_http: wss:// without mod_proxy_wstunnel
    "http-wss": Path("", "", lambda hp: f"wss://{hp}/", "AH10239", {}),
    # mod_proxy_http: wss:// with mod_proxy_wstunnel loaded, which hands
    # it over (ProxyWebsocketFallbackToProxyHttp On, the default)
    "wstunnel-fallback": Path(WSTUNNEL_MODULE, "", lambda hp: f"wss://{hp}/",
                              "AH10239", {}),
}


def _loglevel(path, more=""):
    """Debug for the carrying module and for mod_reencrypt (RE00014)."""
    wstunnel = " proxy_wstunnel:debug" if PATHS[path].server else ""
    return f"warn proxy_http:debug reencrypt:debug{wstunnel}{more}"


@pytest.fixture
def ws_backend(pki):
    """Factory: ws_backend(leaf, path) starts a WebSocket echo backend
    presenting that PKI leaf, set up for that path; all are stopped after
    the test."""
    started = []

    def factory(leaf, path, **kw):
        be = WSBackend(pki.chain(leaf), pki.key(leaf),
                       **{**PATHS[path].backend, **kw}).start()
        started.append(be)
        return be

    yield factory
    for be in started:
        be.stop()


def _vhost(pki, path, targets, policy=()):
    """The policy in the virtual host, and one ProxyPass per (prefix,
    host[:port]) of targets, carried by path."""
    p = PATHS[path]
    lines = ["SSLProxyEngine On",
             "ReencryptEngine On",
             f'ReencryptCACertificateFile "{pki.ca_file}"',
             "ReencryptSNI good.test",
             *policy,
             *([p.vhost] if p.vhost else [])]
    lines += [f"ProxyPass {prefix} {p.target(hp)}" for prefix, hp in targets]
    return "\n".join(lines)


def _server(path, *more):
    return "\n".join(x for x in (PATHS[path].server, *more) if x)


def _carried_by(env, path, refused=False):
    """The module of this path, and not the other one, handled the
    WebSocket upgrades: mod_proxy_wstunnel logs AH02451 for each;
    mod_proxy_http logs AH10239 when it tunnels an upgraded connection,
    AH01097 when the send of the upgrade request failed."""
    if PATHS[path].carrier == "AH02451":
        wanted, others = "AH02451", ("AH10239", "AH01097")
    else:
        wanted = "AH01097" if refused else "AH10239"
        others = ("AH02451",)
    assert env.lines_with(wanted), f"no {wanted} line:\n{env.error_log()}"
    for tag in others:
        assert not env.lines_with(tag), env.lines_with(tag)


@pytest.mark.parametrize("path", list(PATHS))
def test_reencrypt_24_001_good_backend_echoes(env, ws_backend, module_so,
                                             pki, path):
    """A backend that passes the policy: WebSocket messages go through
    and come back, on every path; each upgrade reached the backend, whose
    handshakes carried the policy's SNI, and RE00014 names it."""
    be = ws_backend("good", path)
    env.write_config(server=_server(path),
                     vhost=_vhost(pki, path,
                                  [("/ws/", f"127.0.0.1:{be.port}")]),
                     loglevel=_loglevel(path))
    env.start()
    for i in range(3):
        msg = f"hello {i} over {path}"
        assert ws_echo(env, f"/ws/chat{i}", msg) == msg, env.error_log()
    assert be.messages == [f"hello {i} over {path}" for i in range(3)]
    assert [p for p, _ in be.upgrades] == ["/chat0", "/chat1", "/chat2"]
    assert set(be.hellos) == {"good.test"}, be.describe()
    assert not re10_lines(env), env.error_log()
    names = {m.group("backend") for m in re14_matches(env)}
    assert names == {f"127.0.0.1:{be.port}"}, env.error_log()
    _carried_by(env, path)


@pytest.mark.parametrize("path", list(PATHS))
def test_reencrypt_24_002_impostor_refused(env, ws_backend, module_so, pki,
                                           path):
    """A backend whose chain comes from another CA: the upgrade is
    answered 502, the backend's TLS handshake never completes and it
    receives no byte of the upgrade request, one RE00010 line names it
    (mod_proxy adds its AH01084 and AH00898, mod_proxy_http AH01097)."""
    be = ws_backend("other-ca", path)
    env.write_config(server=_server(path),
                     vhost=_vhost(pki, path,
                                  [("/ws/", f"127.0.0.1:{be.port}")]),
                     loglevel=_loglevel(path))
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    env.start()
    assert ws_status(env, "/ws/chat") == 502, env.error_log()
    be.wait_for(lambda: be.hellos, what="ClientHello")
    assert be.hellos == ["good.test"], be.describe()
    assert be.handshakes_ok == 0, be.describe()
    assert be.app_bytes == 0, be.received[:300]
    assert be.upgrades == [] and be.messages == [], be.describe()
    m = assert_one_re10(env, be, "untrusted-chain")
    assert m.group("seen") == (
        "CN=good.test issued by CN=Other Root CA (unable to get local "
        "issuer certificate)"), m.group(0)
    _carried_by(env, path, refused=True)


@pytest.mark.parametrize("path", ["wstunnel", "http-wss"])
def test_reencrypt_24_003_default_port_named_443(env, ws_backend, module_so,
                                                 pki, path):
    """wss://<host>/ without a port reaches <host>:443, and every place
    that names the backend says <host>:443, never <host>:0: the refusal
    (RE00010), the verification (RE00014, of the full handshake and of
    the resumed one of the second WebSocket), the statistics (?json) and
    the session cache (a session stored for <host>:443 and offered to it
    again: the cache key holds that name)."""
    from test_15_status import _json, _status_locations
    from test_15_status import _server as status_server

    def factory(leaf, **kw):
        return ws_backend(leaf, path, **kw)
    bad = default_port_backend(factory, "other-ca")
    good = default_port_backend(factory, "good")
    env.write_config(
        server=_server(path, status_server()),
        vhost=_vhost(pki, path, [("/bad/", bad.host), ("/ok/", good.host)])
        + "\n" + _status_locations(status=False),
        loglevel=_loglevel(path, " reencrypt:trace3"))
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    env.start()
    assert ws_status(env, "/bad/x") == 502, env.error_log()
    assert bad.app_bytes == 0 and bad.handshakes_ok == 0, bad.describe()
    assert_one_re10(env, bad, "untrusted-chain", backend=f"{bad.host}:443")

    name = f"{good.host}:443"
    assert ws_echo(env, "/ok/one", "first") == "first", env.error_log()
    assert ws_echo(env, "/ok/two", "second") == "second", env.error_log()
    verified = re14_matches(env)
    assert [v.group("backend") for v in verified] == [name, name], (
        env.error_log())
    assert [bool(v.group("resumed")) for v in verified] == [False, True], (
        env.error_log())
    doc = _json(env)
    assert [b["backend"] for b in doc["backends"]] == [name], doc
    log = env.error_log()
    assert f"backend {name}: session stored" in log, log
    assert f"backend {name}: session offered (found)" in log, log
    for host in (bad.host, good.host):
        assert not re.search(rf"{re.escape(host)}:0\b", log), log
    _carried_by(env, path)


def _balancer_vhost(pki, path, members):
    p = PATHS[path]
    lines = ["SSLProxyEngine On",
             "ReencryptEngine On",
             f'ReencryptCACertificateFile "{pki.ca_file}"',
             "ReencryptSNI good.test",
             *([p.vhost] if p.vhost else []),
             "<Proxy balancer://ws>"]
    lines += [f"    BalancerMember wss://127.0.0.1:{be.port} retry=60"
              for be in members]
    lines += ["    ProxySet lbmethod=byrequests",
              "</Proxy>",
              "ProxyPass /ws/ balancer://ws/"]
    return "\n".join(lines)


@pytest.mark.parametrize("path", ["wstunnel", "http-wss"])
def test_reencrypt_24_004_balancer_of_wss_members(env, ws_backend, module_so,
                                                  pki, path):
    """A balancer of an impostor and a good wss:// member: every upgrade
    succeeds through the good member; the impostor is refused once (its
    handshake never completes, no byte of an upgrade request reaches it,
    one RE00010 line naming it and saying the request moved on), then
    left out for its retry= seconds; mod_proxy logs no failed send.  The
    good member's connection, handshaked before the upgrade request is
    sent, is the one that carries it (one TLS handshake per WebSocket)."""
    impostor, good = ws_backend("other-ca", path), ws_backend("good", path)
    env.write_config(server=_server(path, BALANCER_MODULES),
                     vhost=_balancer_vhost(pki, path, [impostor, good]),
                     loglevel=_loglevel(path))
    env.expect_log("RE00010")
    env.start()
    for i in range(6):
        msg = f"lb {i}"
        assert ws_echo(env, f"/ws/lb{i}", msg) == msg, env.error_log()
    assert good.messages == [f"lb {i}" for i in range(6)], good.describe()
    assert len(good.upgrades) == 6, good.describe()
    # the connection of the early handshake carries the upgrade: one
    # handshake per WebSocket
    assert good.hellos == ["good.test"] * 6, good.describe()
    assert good.handshakes_ok == 6, good.describe()
    assert impostor.hellos == ["good.test"], impostor.describe()
    assert impostor.handshakes_ok == 0, impostor.describe()
    assert impostor.app_bytes == 0, impostor.received[:300]
    m = assert_one_re10(env, impostor, "untrusted-chain")
    assert m.group("seen").endswith(
        "; balancer://ws member put in error state for its retry=, the "
        "request goes on to another member if one is left"), m.group(0)
    assert not [ln for ln in env.log_lines()
                if ln.tag in PROXY_HANDSHAKE_FAILURE_TAGS], env.error_log()
    _carried_by(env, path)


@pytest.mark.parametrize("path", ["wstunnel", "http-upgrade"])
def test_reencrypt_24_005_report_mode_lets_impostor_through(
        env, ws_backend, module_so, pki, path):
    """ReencryptMode Report: the impostor's WebSocket works (its message
    comes back), one RE00018 line at warn level says what would have been
    refused and names the backend, no RE00010."""
    be = ws_backend("other-ca", path)
    env.write_config(server=_server(path),
                     vhost=_vhost(pki, path,
                                  [("/ws/", f"127.0.0.1:{be.port}")],
                                  policy=["ReencryptMode Report",
                                          "SSLProxyCheckPeerExpire Off"]),
                     loglevel=_loglevel(path))
    env.expect_log("RE00018")
    env.start()
    assert ws_echo(env, "/ws/report", "let through") == "let through", (
        env.error_log())
    assert be.messages == ["let through"], be.describe()
    assert not re10_lines(env), env.error_log()
    lines = re18_lines(env)
    assert len(lines) == 1 and lines[0].level == "warn", env.error_log()
    m = RE18_RE.search(lines[0].rest)
    assert m, lines[0].raw
    assert m.group("backend") == f"127.0.0.1:{be.port}", lines[0].raw
    assert m.group("reason") == "untrusted-chain", lines[0].raw
    assert not re14_matches(env), env.error_log()
    _carried_by(env, path)
