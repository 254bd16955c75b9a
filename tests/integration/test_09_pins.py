"""SPKI pins: ReencryptPin, ReencryptPinScope, ReencryptTrust PinOnly,
ReencryptCheckName.

A pin is sha256//<base64 of the SHA-256 of the DER SubjectPublicKeyInfo>.
Several pins are any-of.  Under ReencryptPinScope Leaf (the default) only
the backend's own key may match; under Chain any key of the validated chain
may.  ReencryptTrust PinOnly trusts a pinned leaf key without any chain
validation (a self-signed backend works), still checking the leaf's
validity and names.  A backend refused for its key gets the usual
treatment: 502, no request byte at the backend, one RE00010 line with
reason pin-mismatch naming the configured pins and the pins seen.
"""

import re

import pytest

from checks import (PROXY_HANDSHAKE_FAILURE_TAGS, RE10_RE, asn1_time,
                    assert_refused, assert_refused_reads, assert_served,
                    assert_startup_error, policy_vhost, re10_lines,
                    start_policy)
from httpd import LOG_LINE_RE, LogLine
from test_01_configtest import assert_syntax_error, vhost as config_vhost

# keys unrelated to any backend, as wrong or backup pins
UNRELATED = ("other-root", "wild")


def _unrelated(pki, n=2):
    return [pki.pin(name) for name in UNRELATED[:n]]


def _pin_and_decoy(pki, kind):
    """ReencryptPin with kind's pin and one unrelated pin."""
    return f"ReencryptPin {pki.pin(kind)} {_unrelated(pki, 1)[0]}"


def _re07_lines(text):
    """The RE00007 lines of an error log or of httpd's console output."""
    out = []
    for raw in text.splitlines():
        m = LOG_LINE_RE.match(raw)
        if m and "RE00007:" in raw:
            out.append(LogLine(raw, m))
    return out


def _assert_single_pin_warning(env, text, needle):
    """text holds exactly one RE00007 line, at warn level, naming the file
    and line of the ReencryptPin directive containing needle."""
    line = env.line_of(needle)
    lines = _re07_lines(text)
    assert len(lines) == 1, "\n".join(ln.raw for ln in lines) or text
    assert lines[0].level == "warn", lines[0].raw
    head = (f"RE00007: ReencryptPin at {env.conf_file}:{line} has a single "
            f"pin: add a backup pin")
    assert head in lines[0].rest, lines[0].raw


def _start_without_single_pin_warning(env):
    """Start; neither the console nor the error log says RE00007."""
    rc, out = env.start()
    assert not _re07_lines(out + env.error_log()), out + env.error_log()


# ---------------------------------------------------------------- leaf pins

@pytest.mark.parametrize("leaf", ["good", "good-ec", "good-ed25519"],
                         ids=["rsa-2048", "ecdsa-p256", "ed25519"])
def test_reencrypt_09_001_leaf_pin_matches(env, backend, module_so, pki,
                                           leaf):
    """The backend's own key pinned (next to a backup pin): served."""
    be = backend(leaf)
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI good.test",
        _pin_and_decoy(pki, leaf),
        ca=pki.ca_file))
    _start_without_single_pin_warning(env)
    assert_served(env, be, "/pinned", sni="good.test")


def test_reencrypt_09_002_backup_pin_first(env, backend, module_so, pki):
    """Any of the pins matches, whatever its position."""
    be = backend("good")
    start_policy(
        env, be, "ReencryptSNI good.test",
        "ReencryptPin " + " ".join(_unrelated(pki) + [pki.pin("good")]),
        ca=pki.ca_file)
    assert_served(env, be, "/any-of", sni="good.test")


def test_reencrypt_09_003_wrong_pin_refused(env, backend, module_so, pki):
    """Two pins, neither the backend's key: 502, nothing reaches the
    backend, one RE00010 line naming both pins and the key seen."""
    be = backend("good")
    a, b = _unrelated(pki)
    start_policy(
        env, be, "ReencryptSNI good.test", f"ReencryptPin {a} {b}",
        ca=pki.ca_file)
    m = assert_refused(env, be, "pin-mismatch", path="/secret")
    assert m.group(0) == (
        f"RE00010: backend 127.0.0.1:{be.port} refused: pin-mismatch; "
        f"expected one of 2 pins on the leaf ({a}, {b}); "
        f"seen {pki.pin('good')} (CN=good.test)")
    assert b"/secret" not in be.received


def test_reencrypt_09_004_single_wrong_pin(env, backend, module_so, pki):
    """One pin: the line says 'the pin' (the startup warning about the
    missing backup pin is checked in 09_060)."""
    be = backend("good-ec")
    (a,) = _unrelated(pki, 1)
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI good.test", f"ReencryptPin {a}",
        ca=pki.ca_file))
    env.expect_log("RE00007")
    env.start()
    m = assert_refused(env, be, "pin-mismatch")
    assert m.group("expected") == f"the pin on the leaf ({a})", m.group(0)
    assert m.group("seen") == f"{pki.pin('good-ec')} (CN=good-ec.test)", \
        m.group(0)


# ---------------------------------------------------------------- scope

@pytest.mark.parametrize("ca", ["int", "root"],
                         ids=["intermediate", "root"])
def test_reencrypt_09_010_chain_scope_matches_ca_key(env, backend,
                                                     module_so, pki, ca):
    """Under ReencryptPinScope Chain a pin of the intermediate (sent by
    the backend) or of the root (the trust anchor) matches."""
    be = backend("good")
    start_policy(
        env, be, "ReencryptSNI good.test", "ReencryptPinScope Chain",
        _pin_and_decoy(pki, ca), ca=pki.ca_file)
    assert_served(env, be, "/chain-pin", sni="good.test")


@pytest.mark.parametrize("scope", [None, "Leaf"], ids=["default", "leaf"])
def test_reencrypt_09_011_leaf_scope_ignores_ca_key(env, backend, module_so,
                                                    pki, scope):
    """The same intermediate pin under Leaf scope (explicit or default)
    does not match: only the backend's own key is compared."""
    be = backend("good")
    pins = [pki.pin("int"), _unrelated(pki, 1)[0]]
    directives = ["ReencryptSNI good.test", "ReencryptPin " + " ".join(pins)]
    if scope:
        directives.append(f"ReencryptPinScope {scope}")
    start_policy(env, be, *directives,
                                        ca=pki.ca_file)
    m = assert_refused(env, be, "pin-mismatch")
    assert m.group("expected") == (
        f"one of 2 pins on the leaf ({pins[0]}, {pins[1]})"), m.group(0)
    assert m.group("seen") == f"{pki.pin('good')} (CN=good.test)", \
        m.group(0)


def test_reencrypt_09_012_chain_scope_mismatch_lists_chain(
        env, backend, module_so, pki):
    """No key of the chain pinned: the line lists the pin of every
    certificate of the validated chain, leaf first, root last."""
    be = backend("good")
    a, b = _unrelated(pki)
    start_policy(
        env, be, "ReencryptSNI good.test", "ReencryptPinScope Chain",
        f"ReencryptPin {a} {b}", ca=pki.ca_file)
    m = assert_refused(env, be, "pin-mismatch")
    assert m.group("expected") == f"one of 2 pins on the chain ({a}, {b})", \
        m.group(0)
    assert m.group("seen") == (
        f"{pki.pin('good')} (CN=good.test), "
        f"{pki.pin('int')} (CN=Test Intermediate CA), "
        f"{pki.pin('root')} (CN=Test Root CA)"), m.group(0)


def test_reencrypt_09_013_pins_do_not_replace_the_chain(env, backend,
                                                        module_so, pki):
    """Under the default ReencryptTrust Anchors a matching pin does not
    make an untrusted chain acceptable."""
    be = backend("other-ca")
    start_policy(
        env, be, "ReencryptSNI good.test", _pin_and_decoy(pki, "other-ca"),
        ca=pki.ca_file)
    assert_refused(env, be, "untrusted-chain")


# ---------------------------------------------------------------- lists

def test_reencrypt_09_020_repeated_directives_and_curl_form_add_up(
        env, backend, module_so, pki):
    """Arguments, repeated directives and curl's 'a;b' form build one list
    in one scope; the backend's pin in the last position matches."""
    be = backend("good")
    a, b = _unrelated(pki)
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI good.test", f"ReencryptPin {a}",
        f"ReencryptPin {b};{pki.pin('good')}", ca=pki.ca_file))
    _start_without_single_pin_warning(env)
    assert_served(env, be, "/added-up", sni="good.test")


def test_reencrypt_09_021_list_order_in_refusal(env, backend, module_so,
                                                pki):
    """Three pins from two directives (one in curl's form), none
    matching: the line names all three in configuration order."""
    be = backend("good")
    a, b = _unrelated(pki)
    c = pki.pin("good-next")
    start_policy(
        env, be, "ReencryptSNI good.test", f"ReencryptPin {a};{b}",
        f"ReencryptPin {c}", ca=pki.ca_file)
    m = assert_refused(env, be, "pin-mismatch")
    assert m.group("expected") == (
        f"one of 3 pins on the leaf ({a}, {b}, {c})"), m.group(0)


def _assert_inner_pins(env, be, pki, outer, inner, wrong, refused, served):
    """ReencryptPin outer at the virtual host, ReencryptPin inner in
    <Location /inner>: GET refused is refused (pin-mismatch, expecting
    the two wrong pins), GET served is served."""
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI good.test", f"ReencryptPin {outer}",
        ca=pki.ca_file) + f"""
<Location /inner>
    ReencryptPin {inner}
</Location>
""")
    env.start()
    m = assert_refused(env, be, "pin-mismatch", path=refused)
    assert m.group("expected") == (
        f"one of 2 pins on the leaf ({wrong[0]}, {wrong[1]})"), m.group(0)
    assert_served(env, be, served, ignore_re10=True)


def test_reencrypt_09_022_inner_scope_replaces_pins(env, backend, module_so,
                                                    pki):
    """A <Location> with its own ReencryptPin replaces the outer list: the
    backend's pin at the virtual host does not help /inner, and the
    wrong pins of /inner do not affect the rest."""
    be = backend("good")
    a, b = _unrelated(pki)
    _assert_inner_pins(env, be, pki,
                       f"{pki.pin('good')} {pki.pin('good-next')}",
                       f"{a} {b}", (a, b), "/inner/x", "/outer")


def test_reencrypt_09_023_inner_scope_pins_are_not_a_union(
        env, backend, module_so, pki):
    """The reverse: wrong pins at the virtual host, the backend's pin in
    the <Location>: /inner is served, the rest refused."""
    be = backend("good")
    a, b = _unrelated(pki)
    _assert_inner_pins(env, be, pki, f"{a} {b}",
                       f"{pki.pin('good-next')} {pki.pin('good')}",
                       (a, b), "/outer", "/inner/y")


def test_reencrypt_09_024_shared_pin_set_not_widened_by_another_scope(
        env, backend, module_so, pki):
    """Scopes whose ReencryptPin lines are the same share one parsed set;
    a scope that adds a second line adds to a copy of its own. /a and /b
    have the same line of two unrelated pins, /b a second line with the
    backend's pin: /b is served, /a (read first, and again after /b) is
    still refused. Had /b's line gone into the shared set, /a would let
    the backend through."""
    be = backend("good")
    a, b = _unrelated(pki)
    env.write_config(vhost=policy_vhost(be.url_ip, "ReencryptSNI good.test",
                                        ca=pki.ca_file) + f"""
<Location /a>
    ReencryptPin {a} {b}
</Location>
<Location /b>
    ReencryptPin {a} {b}
    ReencryptPin {pki.pin('good')}
</Location>
<Location /c>
    ReencryptPin {a} {b}
</Location>""")
    env.start()
    assert_served(env, be, path="/b/x")
    for path in ("/a/x", "/c/x"):
        before = len(be.requests)
        r = env.get(path)
        assert r.status == 502, (path, r.status, env.error_log())
        assert len(be.requests) == before, be.describe()
    env.expect_log("RE00010", *PROXY_HANDSHAKE_FAILURE_TAGS)
    assert [m.group("reason") for m in map(RE10_RE.search, (
        ln.rest for ln in re10_lines(env)))] == ["pin-mismatch"] * 2


# ---------------------------------------------------------------- rotation

def test_reencrypt_09_030_key_rotation_to_backup_pin(env, backend,
                                                     module_so, pki):
    """Pins of the current key and of the next one: the backend moves to
    a certificate with the next key (backend restarted on the same port);
    the same frontend, neither restarted nor reconfigured, keeps serving."""
    first = backend("good")
    port = first.port
    env.write_config(vhost=policy_vhost(
        first.url_ip, "ReencryptSNI good.test",
        f"ReencryptPin {pki.pin('good')} {pki.pin('good-next')}",
        ca=pki.ca_file) + "\n" + "\n".join([
            'LogFormat "%U %{REENCRYPT_RESULT}e %{REENCRYPT_PEER_PIN}e" pin',
            f'CustomLog "{env.access_log_file}" pin']))
    env.start()
    pid = env._pid()
    with open(env.conf_file) as f:
        conf_before = f.read()
    assert_served(env, first, "/before")

    first.stop()
    second = backend("good-next", port=port)
    assert second.port == port
    r = env.get("/after")
    assert r.status == 200, (r, second.describe(), env.error_log())
    assert r.text == "backend-ok /after\n"
    assert ("GET", "/after") in second.requests
    assert ("GET", "/after") not in first.requests
    assert second.handshakes_ok >= 1, second.describe()

    # the same server process, the same configuration, no RE00010
    assert env._pid() == pid
    with open(env.conf_file) as f:
        assert f.read() == conf_before
    assert not re10_lines(env), env.error_log()
    assert env.access_lines(2) == [
        f"/before ok {pki.pin('good')}",
        f"/after ok {pki.pin('good-next')}"]


def test_reencrypt_09_031_rotation_to_unpinned_key_refused(
        env, backend, module_so, pki):
    """Control for the test above: had the next key not been pinned, the
    restarted backend would be refused."""
    first = backend("good")
    port = first.port
    env.write_config(vhost=policy_vhost(
        first.url_ip, "ReencryptSNI good.test",
        _pin_and_decoy(pki, "good"),
        ca=pki.ca_file))
    env.start()
    assert_served(env, first, "/before")
    first.stop()
    second = backend("good-next", port=port)
    m = assert_refused(env, second, "pin-mismatch", path="/after")
    assert m.group("seen") == f"{pki.pin('good-next')} (CN=good-next.test)"


# ---------------------------------------------------------------- pin-only

def _pin_only(url, *directives, pins):
    return policy_vhost(url, "ReencryptTrust PinOnly",
                        "ReencryptPin " + " ".join(pins), *directives)


def _start_pin_only_on_own_pin(env, backend, pki, leaf, *directives):
    """A backend of leaf under ReencryptTrust PinOnly with its own pin and
    an unrelated one, and directives; started.  Returns the backend."""
    be = backend(leaf)
    env.write_config(vhost=_pin_only(
        be.url_ip, *directives,
        pins=[pki.pin(leaf), _unrelated(pki, 1)[0]]))
    env.start()
    return be


def test_reencrypt_09_040_pin_only_self_signed(env, backend, module_so, pki):
    """ReencryptTrust PinOnly, no ReencryptCACertificateFile: a
    self-signed backend whose key is pinned is served."""
    be = backend("self-signed")
    env.write_config(vhost=_pin_only(
        be.url_ip, "ReencryptSNI self.test",
        pins=[pki.pin("self-signed"), _unrelated(pki, 1)[0]]))
    assert "ReencryptCACertificateFile" not in env.conf_text
    env.start()
    assert_served(env, be, "/pin-only", sni="self.test")


def test_reencrypt_09_041_self_signed_without_opt_in(env, backend,
                                                     module_so, pki):
    """The same backend and pins without ReencryptTrust PinOnly: its chain
    does not lead to the anchors, refused."""
    be = backend("self-signed")
    start_policy(
        env, be, "ReencryptSNI self.test", _pin_and_decoy(pki, "self-signed"),
        ca=pki.ca_file)
    m = assert_refused(env, be, "untrusted-chain")
    assert m.group("expected") == (
        f"a chain to the trust anchor in {pki.ca_file}"), m.group(0)
    assert m.group("seen").startswith(
        "CN=self.test issued by CN=self.test ("), m.group(0)


def test_reencrypt_09_042_pin_only_wrong_pin(env, backend, module_so, pki):
    be = backend("self-signed")
    a, b = _unrelated(pki)
    env.write_config(vhost=_pin_only(be.url_ip, "ReencryptSNI self.test",
                                     pins=[a, b]))
    env.start()
    assert_refused_reads(
        env, be, "pin-mismatch",
        f"expected one of 2 pins on the leaf ({a}, {b}); "
        f"seen {pki.pin('self-signed')} (CN=self.test)")


def test_reencrypt_09_043_pin_only_checks_names(env, backend, module_so,
                                                pki):
    be = _start_pin_only_on_own_pin(
        env, backend, pki, "self-signed", "ReencryptSNI other.test")
    assert_refused_reads(
        env, be, "name-mismatch",
        f'expected "other.test" (SNI); seen DNS:self.test')


def test_reencrypt_09_044_pin_only_check_name_off(env, backend, module_so,
                                                  pki):
    """ReencryptCheckName Off: the name is not compared any more."""
    be = _start_pin_only_on_own_pin(
        env, backend, pki, "self-signed", "ReencryptSNI other.test",
        "ReencryptCheckName Off")
    assert_served(env, be, "/no-name-check", sni="other.test")


def test_reencrypt_09_045_pin_only_checks_validity(env, backend, module_so,
                                                   pki):
    be = _start_pin_only_on_own_pin(
        env, backend, pki, "self-signed-expired", "ReencryptSNI self.test")
    m = assert_refused(env, be, "expired")
    na = asn1_time(pki["self-signed-expired"].not_after)
    assert m.group("seen") == f"CN=self-expired.test notAfter={na}", \
        m.group(0)


def test_reencrypt_09_046_pin_only_ca_issued_backend(env, backend,
                                                     module_so, pki):
    """PinOnly does not build a chain: a CA-issued backend that sends its
    leaf and intermediate is served on its leaf pin alone, without any
    trust anchor configured."""
    be = backend("good")
    env.write_config(vhost=_pin_only(
        be.url_ip, "ReencryptSNI good.test",
        pins=[_unrelated(pki, 1)[0], pki.pin("good")]))
    env.start()
    assert_served(env, be, "/pin-only-ca", sni="good.test")


def test_reencrypt_09_047_pin_only_in_location(env, backend, module_so,
                                               pki):
    """PinOnly in one <Location>: the self-signed backend is served there
    and refused (untrusted-chain) under the virtual host's anchors."""
    be = backend("self-signed")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI self.test", ca=pki.ca_file) + f"""
<Location /pinned>
    ReencryptTrust PinOnly
    ReencryptPin {pki.pin('self-signed')} {_unrelated(pki, 1)[0]}
</Location>
""")
    env.start()
    assert_refused(env, be, "untrusted-chain", path="/anchored")
    assert_served(env, be, "/pinned/a", ignore_re10=True)


# ---------------------------------------------------------------- names

def test_reencrypt_09_050_check_name_off_with_pins(env, backend, module_so,
                                                   pki):
    """Anchors and pins, ReencryptCheckName Off: a certificate that does
    not carry the expected name is served."""
    be = backend("wrong-name")
    start_policy(
        env, be, "ReencryptSNI backend.test", "ReencryptCheckName Off",
        _pin_and_decoy(pki, "wrong-name"), ca=pki.ca_file)
    assert_served(env, be, "/names-off", sni="backend.test")


def test_reencrypt_09_051_check_name_on_is_the_default(env, backend,
                                                       module_so, pki):
    be = backend("wrong-name")
    start_policy(
        env, be, "ReencryptSNI backend.test", "ReencryptCheckName On",
        _pin_and_decoy(pki, "wrong-name"), ca=pki.ca_file)
    m = assert_refused(env, be, "name-mismatch")
    assert m.group("expected") == '"backend.test" (SNI)', m.group(0)


def test_reencrypt_09_052_check_name_off_still_checks_chain(
        env, backend, module_so, pki):
    """ReencryptCheckName Off only drops the name check."""
    be = backend("other-ca")
    start_policy(
        env, be, "ReencryptSNI good.test", "ReencryptCheckName Off",
        _pin_and_decoy(pki, "other-ca"), ca=pki.ca_file)
    assert_refused(env, be, "untrusted-chain")


def test_reencrypt_09_053_check_name_off_without_pins(env, backend,
                                                     module_so, pki):
    """ReencryptCheckName Off with anchors only: the chain is still
    verified, the name is not."""
    be = backend("wrong-name")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI backend.test", "ReencryptCheckName Off",
        ca=pki.ca_file))
    # a startup warning about this weak policy is allowed
    env.expect_log("RE00008")
    env.start()
    assert_served(env, be, "/anchors-only", sni="backend.test")


# ---------------------------------------------------------------- startup

def test_reencrypt_09_060_single_pin_warning(env, backend, module_so, pki):
    """A scope with one pin works; the server's error log says once, at
    warn level, where that pin is configured."""
    be = backend("good")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI good.test",
        f"ReencryptPin {pki.pin('good')}", ca=pki.ca_file))
    env.expect_log("RE00007")
    env.start()
    assert_served(env, be, "/single")
    _assert_single_pin_warning(env, env.error_log(), "ReencryptPin")


def test_reencrypt_09_061_single_pin_in_location_named(env, backend,
                                                       module_so, pki):
    """Two pins at the virtual host, one in a <Location>: the warning
    names the <Location>'s directive only."""
    be = backend("good")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI good.test",
        f"ReencryptPin {pki.pin('good-next')} {pki.pin('good')}",
        ca=pki.ca_file) + f"""
<Location /one>
    ReencryptPin {pki.pin('good')}
</Location>
""")
    env.expect_log("RE00007")
    env.start()
    assert_served(env, be, "/one/x")
    _assert_single_pin_warning(env, env.error_log(),
                               f"ReencryptPin {pki.pin('good')}")


def test_reencrypt_09_062_single_pin_warning_in_configtest(env, module_so,
                                                           pki):
    """apachectl -t shows the same warning and still says Syntax OK."""
    env.write_config(vhost=config_vhost(f"ReencryptPin {pki.pin('good')}",
                                        ca=pki.ca_file))
    rc, out = env.configtest()
    assert (rc, "Syntax OK" in out) == (0, True), out
    _assert_single_pin_warning(env, out, "ReencryptPin")


def test_reencrypt_09_063_single_pin_warning_after_graceful(
        env, backend, module_so, pki):
    """A single pin added by a graceful restart is warned about in the
    error log of the running server."""
    be = backend("good")
    start_policy(
        env, be, "ReencryptSNI good.test",
        f"ReencryptPin {pki.pin('good')} {pki.pin('good-next')}",
        ca=pki.ca_file)
    assert not _re07_lines(env.error_log())
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI good.test",
        f"ReencryptPin {pki.pin('good')}", ca=pki.ca_file))
    env.expect_log("RE00007")
    env.graceful()
    _assert_single_pin_warning(env, env.error_log(), "ReencryptPin")
    assert_served(env, be, "/after-graceful")


def test_reencrypt_09_064_curl_form_pair_is_not_single(env, backend,
                                                       module_so, pki):
    """'sha256//a;sha256//b' in one argument is two pins: no warning."""
    be = backend("good")
    env.write_config(vhost=policy_vhost(
        be.url_ip, "ReencryptSNI good.test",
        f"ReencryptPin {pki.pin('good')};{pki.pin('good-next')}",
        ca=pki.ca_file))
    rc, out = env.configtest()
    assert not _re07_lines(out), out
    _start_without_single_pin_warning(env)
    assert_served(env, be, "/pair")


def test_reencrypt_09_065_pin_only_without_pin(env, module_so, pki):
    env.write_config(vhost=config_vhost("ReencryptTrust PinOnly"))
    line = env.line_of("ReencryptEngine On")
    assert_startup_error(
        env, r"RE00004: ReencryptEngine On at %s:%d .*ReencryptTrust "
             r"PinOnly needs at least one ReencryptPin"
        % (re.escape(env.conf_file), line))


def test_reencrypt_09_066_pin_only_with_chain_scope(env, module_so, pki):
    env.write_config(vhost=config_vhost(
        "ReencryptTrust PinOnly", "ReencryptPinScope Chain",
        f"ReencryptPin {pki.pin('good')} {pki.pin('good-next')}"))
    line = env.line_of("ReencryptEngine On")
    assert_startup_error(
        env, r"RE00004: ReencryptEngine On at %s:%d .*ReencryptPinScope "
             r"Chain cannot go with ReencryptTrust PinOnly"
        % (re.escape(env.conf_file), line))


def test_reencrypt_09_067_pin_only_pins_from_enclosing_scope(
        env, module_so, pki):
    """Pins at the virtual host count for a <Location> that turns
    PinOnly on; the inherited Chain scope of the virtual host does not go
    with it."""
    env.write_config(vhost=config_vhost(
        f"ReencryptPin {pki.pin('good')} {pki.pin('good-next')}",
        ca=pki.ca_file) + """
<Location /p>
    ReencryptTrust PinOnly
</Location>
""")
    rc, out = env.configtest()
    assert (rc, "Syntax OK" in out) == (0, True), out

    env.write_config(vhost=config_vhost(
        f"ReencryptPin {pki.pin('good')} {pki.pin('good-next')}",
        "ReencryptPinScope Chain", ca=pki.ca_file) + """
<Location /p>
    ReencryptTrust PinOnly
</Location>
""")
    rc, out = env.configtest()
    assert rc != 0, out
    assert "ReencryptPinScope Chain cannot go with ReencryptTrust PinOnly" \
        in out, out


# ---------------------------------------------------------------- syntax

def test_reencrypt_09_070_valid_pin_directives(env, module_so, pki):
    """Every new directive in every context passes the configuration
    test, keywords in any case."""
    p1, p2 = pki.pin("good"), pki.pin("good-next")
    env.write_config(
        server=f"""
ReencryptPin {p1} {p2}
ReencryptPinScope chain
ReencryptCheckName off
""",
        vhost=f"""
SSLProxyEngine On
ReencryptEngine On
ReencryptCACertificateFile "{pki.ca_file}"
ReencryptPin {p1};{p2}
ReencryptPin {pki.pin('root')}
ReencryptPinScope Chain
ReencryptTrust Anchors
ReencryptCheckName On
ProxyPass / https://127.0.0.1:9/
<Location /a>
    ReencryptTrust PinOnly
    ReencryptPinScope Leaf
    ReencryptPin {p1} {p2}
    ReencryptCheckName Off
</Location>
<Proxy "https://127.0.0.1:9/*">
    ReencryptTrust pinonly
    ReencryptPinScope LEAF
</Proxy>
""")
    rc, out = env.configtest()
    assert rc == 0, out
    assert "Syntax OK" in out


@pytest.mark.parametrize("value,message", [
    ("x", "ReencryptPin: 'x' does not start with 'sha256//'"),
    ("sha1//AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
     "ReencryptPin: 'sha1//AAAAAAAAAAAAAAAAAAAAAAAAAAA=' does not start "
     "with 'sha256//'"),
    ("SHA256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
     "ReencryptPin: 'SHA256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' "
     "does not start with 'sha256//'"),
    ("sha256//!!!", "ReencryptPin: 'sha256//!!!' is not valid base64 after "
     "'sha256//'"),
    ("sha256//AAAA", "ReencryptPin: 'sha256//AAAA' holds 3 bytes, a SHA-256 "
     "pin has 32"),
], ids=["no-prefix", "sha1", "upper-case-prefix", "bad-char", "3-bytes"])
def test_reencrypt_09_071_pin_syntax_errors(env, module_so, pki, value,
                                            message):
    env.write_config(vhost=config_vhost(
        f"ReencryptPin {pki.pin('good')} {value}", ca=pki.ca_file))
    assert_syntax_error(env, "ReencryptPin", message)


@pytest.mark.parametrize("nbytes", [31, 33, 48])
def test_reencrypt_09_072_pin_of_wrong_length(env, module_so, pki, nbytes):
    """A digest of another length (e.g. SHA-384, 48 bytes) after
    'sha256//' is named with its length."""
    import base64
    value = "sha256//" + base64.b64encode(bytes(range(nbytes))).decode()
    env.write_config(vhost=config_vhost(f"ReencryptPin {value}",
                                        ca=pki.ca_file))
    assert_syntax_error(
        env, "ReencryptPin",
        f"ReencryptPin: '{value}' holds {nbytes} bytes, a SHA-256 pin has "
        f"32")


def test_reencrypt_09_073_bad_pin_in_curl_form(env, module_so, pki):
    """The bad element of a 'a;b' list is the one quoted."""
    env.write_config(vhost=config_vhost(
        f"ReencryptPin {pki.pin('good')};sha256//AAAA", ca=pki.ca_file))
    assert_syntax_error(
        env, "ReencryptPin",
        "ReencryptPin: 'sha256//AAAA' holds 3 bytes, a SHA-256 pin has 32")


def test_reencrypt_09_074_bad_pin_in_repeated_directive(env, module_so, pki):
    """The error names the line of the directive that holds the bad pin."""
    env.write_config(vhost=config_vhost(
        f"ReencryptPin {pki.pin('good')} {pki.pin('good-next')}",
        "ReencryptPin sha256//!!!", ca=pki.ca_file))
    assert_syntax_error(
        env, "ReencryptPin sha256//!!!",
        "ReencryptPin: 'sha256//!!!' is not valid base64 after 'sha256//'")


@pytest.mark.parametrize("directive,value", [
    ("ReencryptPinScope", "Intermediate"),
    ("ReencryptTrust", "System"),
    ("ReencryptCheckName", "maybe"),
])
def test_reencrypt_09_075_keyword_errors(env, module_so, pki, directive,
                                         value):
    env.write_config(vhost=config_vhost(f"{directive} {value}",
                                        ca=pki.ca_file))
    assert_syntax_error(env, f"{directive} {value}", directive, f"'{value}'")
