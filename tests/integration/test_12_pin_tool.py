"""The reencrypt-pin tool ($REENCRYPT_PIN, default tools/reencrypt-pin).

  reencrypt-pin FILE...            sha256//<b64><TAB><description> for each
                                   certificate, public key and private key
  reencrypt-pin [--sni NAME] --connect HOST:PORT
                                   one line per certificate presented, leaf
                                   first
  --directive                      one 'ReencryptPin sha256//a sha256//b' line
  --help: exit 0; usage errors: exit 2; unreadable file: exit 1

Its pins are checked against the ones the openssl command line computes
(x509 -pubkey | pkey -pubin -outform der | dgst -sha256 -binary | base64),
for RSA-2048, ECDSA P-256 and Ed25519 keys and for the chain a live backend
presents (fetched independently with openssl s_client -showcerts); and they
are what the module compares.
"""

import os
import re
import subprocess

import pytest

from checks import (assert_refused, assert_served, start_policy)
from httpd import REPO, free_port

TOOL = os.environ.get("REENCRYPT_PIN") or os.path.join(REPO, "tools",
                                                        "reencrypt-pin")
KINDS = {"rsa-2048": "good", "ecdsa-p256": "good-ec",
         "ed25519": "good-ed25519"}
LINE_RE = re.compile(r"(sha256//[A-Za-z0-9+/]{43}=)\t(.+)")


@pytest.fixture
def tool():
    assert os.access(TOOL, os.X_OK), (
        f"reencrypt-pin not found at {TOOL}: build it (make) or set "
        f"REENCRYPT_PIN")
    return TOOL


def run_tool(*args, timeout=30):
    return subprocess.run([TOOL, *args], capture_output=True, text=True,
                          timeout=timeout)


def pin_lines(out):
    """[(pin, description)] of the tool's standard output; every line
    must have the documented shape."""
    lines = out.splitlines()
    parsed = []
    for ln in lines:
        m = LINE_RE.fullmatch(ln)
        assert m, f"line does not read 'sha256//<base64>\\t<what>': {ln!r}"
        parsed.append((m.group(1), m.group(2)))
    return parsed


# ---------------------------------------------------------------- openssl

def _openssl(args, data=None):
    p = subprocess.run(["openssl", *args], input=data, capture_output=True,
                       timeout=30)
    assert p.returncode == 0, (args, p.stderr.decode(errors="replace"))
    return p.stdout


def _pin_of_der_spki(der):
    b64 = _openssl(["base64"], _openssl(["dgst", "-sha256", "-binary"], der))
    return "sha256//" + b64.decode().strip()


def openssl_pin_of_cert_pem(pem):
    pub = _openssl(["x509", "-pubkey", "-noout"], pem)
    return _pin_of_der_spki(
        _openssl(["pkey", "-pubin", "-outform", "der"], pub))


def openssl_pin_of_cert(path):
    with open(path, "rb") as f:
        return openssl_pin_of_cert_pem(f.read())


def openssl_pin_of_pubkey(path):
    return _pin_of_der_spki(
        _openssl(["pkey", "-pubin", "-in", path, "-outform", "der"]))


def openssl_pin_of_privkey(path):
    return _pin_of_der_spki(
        _openssl(["pkey", "-in", path, "-pubout", "-outform", "der"]))


def openssl_presented_chain(port, sni=None):
    """The PEM certificates a server presents, in order, as openssl
    s_client -showcerts prints them."""
    args = ["s_client", "-connect", f"127.0.0.1:{port}", "-showcerts"]
    args += ["-servername", sni] if sni else ["-noservername"]
    p = subprocess.run(["openssl", *args], input=b"", capture_output=True,
                       timeout=30)
    pems = re.findall(rb"-----BEGIN CERTIFICATE-----.+?"
                      rb"-----END CERTIFICATE-----\n", p.stdout, re.S)
    assert pems, p.stdout.decode(errors="replace")
    return pems


def test_reencrypt_12_000_openssl_oracle_agrees_with_pki(pki):
    """Harness check: the openssl pipeline and the test PKI compute the
    same pins (so the PKI's pins used in configurations are right)."""
    for leaf in list(KINDS.values()) + ["int", "root", "self-signed"]:
        assert openssl_pin_of_cert(pki[leaf].cert_file) == pki.pin(leaf)


# ---------------------------------------------------------------- files

def _the_one_pin(path):
    """The tool, given path, succeeds and prints one pin: returned."""
    p = run_tool(path)
    assert p.returncode == 0, p.stderr
    lines = pin_lines(p.stdout)
    assert len(lines) == 1, p.stdout
    return lines[0][0]


def _assert_key_file_pin(pki, leaf, attr, oracle):
    """The tool prints for leaf's key file attr the one pin that the
    openssl pipeline oracle computes for it, the pin of leaf's
    certificate."""
    path = getattr(pki[leaf], attr)
    pin = _the_one_pin(path)
    assert pin == oracle(path)
    assert pin == openssl_pin_of_cert(pki[leaf].cert_file)


@pytest.mark.parametrize("kind", list(KINDS))
def test_reencrypt_12_001_certificate_file(tool, pki, kind):
    leaf = KINDS[kind]
    pin = _the_one_pin(pki[leaf].cert_file)
    assert pin == openssl_pin_of_cert(pki[leaf].cert_file)


@pytest.mark.parametrize("kind", list(KINDS))
def test_reencrypt_12_002_public_key_file(tool, pki, kind):
    _assert_key_file_pin(pki, KINDS[kind], "pub_file",
                         openssl_pin_of_pubkey)


@pytest.mark.parametrize("kind", list(KINDS))
def test_reencrypt_12_003_private_key_file(tool, pki, kind):
    """A PKCS#8 private key file: the pin of its public half."""
    _assert_key_file_pin(pki, KINDS[kind], "key_file",
                         openssl_pin_of_privkey)


@pytest.mark.parametrize("kind", ["rsa-2048", "ecdsa-p256"])
def test_reencrypt_12_004_traditional_private_key_file(tool, pki, tmp_path,
                                                       kind):
    """'BEGIN RSA PRIVATE KEY' / 'BEGIN EC PRIVATE KEY' files (openssl's
    traditional form) are read too."""
    leaf = KINDS[kind]
    trad = str(tmp_path / "trad.key")
    _openssl(["pkey", "-in", pki[leaf].key_file, "-traditional", "-out",
              trad])
    with open(trad) as f:
        head = f.readline().strip()
    assert head in ("-----BEGIN RSA PRIVATE KEY-----",
                    "-----BEGIN EC PRIVATE KEY-----"), head
    p = run_tool(trad)
    assert p.returncode == 0, p.stderr
    lines = pin_lines(p.stdout)
    assert [pin for pin, _ in lines] == [openssl_pin_of_privkey(trad)]


def test_reencrypt_12_005_several_files_and_a_chain_file(tool, pki):
    """One line per object, in file order and order within each file:
    a chain file gives its leaf, then its intermediate."""
    p = run_tool(pki["good"].chain_file, pki["good-ec"].pub_file,
                 pki["good-ed25519"].key_file)
    assert p.returncode == 0, p.stderr
    pins = [pin for pin, _ in pin_lines(p.stdout)]
    assert pins == [
        openssl_pin_of_cert(pki["good"].cert_file),
        openssl_pin_of_cert(pki["int"].cert_file),
        openssl_pin_of_pubkey(pki["good-ec"].pub_file),
        openssl_pin_of_privkey(pki["good-ed25519"].key_file),
    ]


def test_reencrypt_12_006_certificate_and_key_in_one_file(tool, pki,
                                                          tmp_path):
    """A PEM file holding a certificate and its private key: both are
    printed, with the same pin."""
    both = tmp_path / "both.pem"
    with open(pki["good-ec"].cert_file, "rb") as c, \
            open(pki["good-ec"].key_file, "rb") as k:
        both.write_bytes(c.read() + k.read())
    p = run_tool(str(both))
    assert p.returncode == 0, p.stderr
    pins = [pin for pin, _ in pin_lines(p.stdout)]
    assert pins == [pki.pin("good-ec")] * 2, p.stdout


# ---------------------------------------------------------------- connect

@pytest.mark.parametrize("leaf,length", [
    ("good", 2), ("good-ec", 2), ("good-ed25519", 2), ("deep", 4),
    ("self-signed", 1)])
def test_reencrypt_12_010_connect_prints_presented_chain(tool, backend, pki,
                                                         leaf, length):
    """--connect: one pin per certificate the backend presents, leaf
    first, equal to openssl's pins of the chain s_client received."""
    be = backend(leaf)
    p = run_tool("--connect", f"127.0.0.1:{be.port}")
    assert p.returncode == 0, p.stderr
    pins = [pin for pin, _ in pin_lines(p.stdout)]
    expected = [openssl_pin_of_cert_pem(pem)
                for pem in openssl_presented_chain(be.port)]
    assert len(expected) == length
    assert pins == expected
    assert pins[0] == pki.pin(leaf)


@pytest.mark.parametrize("sni", [None, "good.test"])
def test_reencrypt_12_011_connect_sni(tool, backend, pki, sni):
    """--sni NAME is sent as SNI; without it none is sent."""
    be = backend("good")
    args = ["--connect", f"127.0.0.1:{be.port}"]
    if sni:
        args = ["--sni", sni] + args
    p = run_tool(*args)
    assert p.returncode == 0, p.stderr
    assert len(pin_lines(p.stdout)) == 2
    be.wait_settled()
    assert be.snis == [sni], be.describe()


def test_reencrypt_12_012_connect_refused(tool):
    port = free_port()   # nothing listens there
    p = run_tool("--connect", f"127.0.0.1:{port}")
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == ""


# ---------------------------------------------------------------- directive

def test_reencrypt_12_020_directive_from_files(tool, pki):
    p = run_tool("--directive", pki["good"].cert_file,
                 pki["good-next"].pub_file)
    assert p.returncode == 0, p.stderr
    assert p.stdout == (f"ReencryptPin {pki.pin('good')} "
                        f"{pki.pin('good-next')}\n")


def test_reencrypt_12_021_directive_from_connect(tool, backend, pki):
    be = backend("good")
    p = run_tool("--directive", "--connect", f"127.0.0.1:{be.port}")
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"ReencryptPin {pki.pin('good')} {pki.pin('int')}\n"


def test_reencrypt_12_022_directive_pasted_into_config(tool, env, backend,
                                                       module_so, pki):
    """The printed directive, pasted as it is, pins the backend: the
    module serves it."""
    be = backend("good-ed25519")
    p = run_tool("--directive", "--sni", "good.test", "--connect",
                 f"127.0.0.1:{be.port}")
    assert p.returncode == 0, p.stderr
    directive = p.stdout.strip()
    start_policy(env, be, "ReencryptSNI good.test", directive, ca=pki.ca_file)
    assert_served(env, be, "/pasted", sni="good.test")


def test_reencrypt_12_023_tool_pin_is_what_the_module_sees(tool, env,
                                                           backend,
                                                           module_so, pki):
    """The module's refusal line shows, as the pin seen, the pin the tool
    prints for the same backend."""
    be = backend("good-ec")
    start_policy(
        env, be, "ReencryptSNI good.test",
        f"ReencryptPin {pki.pin('other-root')} {pki.pin('wild')}",
        ca=pki.ca_file)
    m = assert_refused(env, be, "pin-mismatch")
    p = run_tool("--connect", f"127.0.0.1:{be.port}")
    assert p.returncode == 0, p.stderr
    leaf_pin = pin_lines(p.stdout)[0][0]
    assert m.group("seen") == f"{leaf_pin} (CN=good-ec.test)"


# ---------------------------------------------------------------- usage

def test_reencrypt_12_030_help(tool):
    p = run_tool("--help")
    assert p.returncode == 0, p.stderr
    assert "--connect" in p.stdout and "--directive" in p.stdout, p.stdout


@pytest.mark.parametrize("args", [
    [], ["--bogus"], ["--connect"], ["--sni"], ["--sni", "good.test",
                                                "FILE"],
    ["FILE", "--connect", "127.0.0.1:9"]],
    ids=["no-argument", "unknown-option", "connect-without-value",
         "sni-without-value", "sni-without-connect", "files-and-connect"])
def test_reencrypt_12_031_usage_errors(tool, pki, args):
    args = [pki["good"].cert_file if a == "FILE" else a for a in args]
    p = run_tool(*args)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == "", p.stdout
    assert p.stderr, "a usage error says something on stderr"


@pytest.mark.parametrize("what", ["missing", "directory", "no-pem"])
def test_reencrypt_12_032_unreadable_file(tool, pki, tmp_path, what):
    path = {"missing": str(tmp_path / "nope.pem"),
            "directory": str(tmp_path),
            "no-pem": pki.empty_ca_file}[what]
    p = run_tool(path)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == ""
    assert path in p.stderr, p.stderr


def test_reencrypt_12_033_unreadable_among_readable(tool, pki, tmp_path):
    """One bad file among good ones still makes the exit status 1."""
    p = run_tool(pki["good"].cert_file, str(tmp_path / "nope.pem"))
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
