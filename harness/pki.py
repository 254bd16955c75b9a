"""PKIs made with python3-cryptography: PKI, and TestPKI, the integration
tests' set.

PKI(directory) issues CAs (ca()) and leaves (leaf()), each written at once
as <name>.crt (the certificate), <name>.key (its unencrypted key),
<name>.chain.pem (the certificate and the CAs below the self-signed root:
what a server presents) and <name>.pub (the public key); pin(name) gives
ReencryptPin's value of a key; crl() writes CRLs (any number of revoked
serials, a CRL number); ocsp_response() makes OCSP responses and
ocsp_answer() answers an OCSP request (what harness.ocsp's responder
serves).  bench/run, bench/soak and the demo build their PKIs with it.

TestPKI: a fresh set of CAs and leaf certificates, generated once per
test session.  Every subject carries only a commonName, so a
distinguished name prints as ``CN=<name>`` in log lines (a leaf of
fresh_leaf() may be given more attributes with subject_extra).

Layout of the generated directory (all files PEM):

  ca.pem            Test Root CA only (the trust anchor used by most tests)
  int-ca.pem        Test Intermediate CA only (partial-chain anchor)
  other-ca.pem      Other Root CA only
  empty.pem         a file without any certificate in it
  <leaf>.crt        the leaf certificate alone
  <leaf>.key        its private key (unencrypted)
  <leaf>.chain.pem  the leaf followed by the intermediates the backend sends
  <leaf>.pub        its public key alone (SubjectPublicKeyInfo)
  <client>.client.pem  a client certificate followed by its unencrypted
                    key, in one file (what SSLProxyMachineCertificateFile
                    reads)

Leaves come with RSA-2048, ECDSA P-256 or Ed25519 keys; pin(name) gives the
ReencryptPin value of a certificate's key (sha256//<base64 of the SHA-256
of the DER SubjectPublicKeyInfo>).  fresh_leaf() issues a leaf whose
validity is relative to the moment of the call (for times within minutes
of now, which a session-wide PKI cannot offer).

CRLs: crl(fname, issuer, revoked=...) writes a CRL of a CA (PEM, or DER
with der=True) listing the named certificates, its lastUpdate and
nextUpdate given as offsets from now; key= signs it with another key (a
CRL whose signature does not verify).  "revoked-int" (CN Test Revoked
Intermediate CA, issued by the root) issues "under-revoked-int"; "revoked"
is a leaf of the Test Intermediate CA, like "good" (for CRLs that list
it).

OCSP responses: ocsp_response(leaf, ...) gives the DER bytes of an OCSP
response about a leaf (what a backend staples): good, revoked (with a
reason) or unknown; thisUpdate / nextUpdate as offsets from now (or no
nextUpdate); signed by the issuer or by a responder certificate, whose
key signs it and which the response carries; the certificate ID in SHA-1
or another hash, or about another certificate; or an unsuccessful
response (tryLater...) without any status.  Responder certificates of the
Test Intermediate CA: "ocsp-responder" (extended key usage OCSPSigning),
"ocsp-responder-no-eku" (no extended key usage at all),
"ocsp-responder-server-eku" (serverAuth only), "ocsp-responder-expired"
(OCSPSigning, ended a week ago); "ocsp-responder-other-ca" (OCSPSigning,
issued by the Other Root CA); "fake-int" is a self-signed certificate
with the subject of the Test Intermediate CA and a key of its own;
"int-reissued" (by the Test Root CA) and "int-cross" (by the Other Root
CA) are other certificates of the Test Intermediate CA's own key, as a
responder may put in the responses it signs with that key.

Client certificates (extended key usage clientAuth, issued by the Test
Root CA, so that a backend trusting ca.pem verifies them without an
intermediate): "admin-client" (CN admin.client.test) and "public-client"
(CN public.client.test); client_pem(name) gives the combined file.
"""

import base64
import datetime
import hashlib
import ipaddress
import os
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _utcnow():
    return datetime.datetime.utcnow().replace(microsecond=0)


def _name(cn, extra=()):
    """CN=cn, followed by the (oid, value) pairs of extra."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]
                     + [x509.NameAttribute(oid, v) for oid, v in extra])


def _new_key(kind):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def _sign_hash(key):
    """The digest to sign with: Ed25519 signs the message itself."""
    return None if isinstance(key, ed25519.Ed25519PrivateKey) \
        else hashes.SHA256()


def spki_der(public_key):
    return public_key.public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)


def spki_pin(public_key):
    """sha256//<base64> of the DER SubjectPublicKeyInfo (RFC 7469)."""
    digest = hashlib.sha256(spki_der(public_key)).digest()
    return "sha256//" + base64.b64encode(digest).decode("ascii")


def _pub_pem(key):
    return key.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _traditional_key_pem(key):
    """The key in the traditional OpenSSL form (BEGIN EC/RSA PRIVATE KEY),
    which every reader of certificate-and-key files understands."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


class Issued:
    """A certificate with its key and the chain a server presents."""

    def __init__(self, name, cert, key, chain, issuer=None):
        self.name = name
        self.cert = cert
        self.key = key
        self.chain = chain          # list of x509.Certificate, leaf first
        self.issuer = issuer        # Issued or None (self-signed)
        self.cert_file = None
        self.key_file = None
        self.chain_file = None
        self.pub_file = None
        self.client_file = None     # client certificates: cert + key

    @property
    def cn(self):
        return self.cert.subject.get_attributes_for_oid(
            NameOID.COMMON_NAME)[0].value

    @property
    def not_before(self):
        return self.cert.not_valid_before

    @property
    def not_after(self):
        return self.cert.not_valid_after

    @property
    def pin(self):
        return spki_pin(self.cert.public_key())


class PKI:
    """CAs and leaves written into ``directory`` as they are issued."""

    key_mode = 0o600        # mode of the <name>.key files

    def __init__(self, directory=None):
        if directory is None:
            directory = tempfile.mkdtemp(prefix="reencrypt-pki-")
        self.dir = directory
        os.makedirs(self.dir, exist_ok=True)
        # the httpd children run as an unprivileged user: keep it readable
        os.chmod(self.dir, 0o755)
        self.now = _utcnow()
        self.certs = {}

    # ------------------------------------------------------------------ build
    def ca(self, name, cn, issuer=None, kind="ec", not_before=None,
           not_after=None, key=None):
        """A CA certificate (self-signed if issuer, a name, is None),
        written out; key: the private key it certifies (default: a new one
        of kind "ec", "rsa" or "ed25519").  Validity: not_before and
        not_after (datetimes), default a year ago and in ten years."""
        return self._make_ca(name, cn, self.certs[issuer] if issuer else None,
                             kind, not_before, not_after, key)

    def leaf(self, name, cn, issuer, **kw):
        """A leaf certificate of CA issuer (a name; None: self-signed),
        written out; keywords as for _make_leaf (dns, ips, kind,
        not_before, not_after, usage, eku, subject_extra)."""
        return self._make_leaf(name, cn,
                               self.certs[issuer] if issuer else None, **kw)

    def _make_ca(self, name, cn, issuer=None, kind="ec", not_before=None,
                 not_after=None, key=None):
        """A CA certificate (self-signed if issuer is None); key: the
        private key it certifies (default: a new one)."""
        key = key or _new_key(kind)
        subject = _name(cn)
        signer_key = issuer.key if issuer else key
        issuer_name = issuer.cert.subject if issuer else subject
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or
                              self.now - datetime.timedelta(days=365))
            .not_valid_after(not_after or
                             self.now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                           critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                key.public_key()), critical=False)
        )
        if issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    issuer.key.public_key()), critical=False)
        cert = builder.sign(signer_key, hashes.SHA256())
        issued = Issued(name, cert, key, [cert], issuer)
        self.certs[name] = issued
        self._write_issued(name, issued)
        return issued

    def _make_leaf(self, name, cn, issuer, dns=(), ips=(), kind="ec",
                   not_before=None, not_after=None,
                   usage=ExtendedKeyUsageOID.SERVER_AUTH, subject_extra=(),
                   eku=None):
        """A server certificate issued by issuer; issuer=None makes it
        self-signed (not a CA, signed with its own key).  usage is its
        extended key usage (ExtendedKeyUsageOID.CLIENT_AUTH for a client
        certificate), eku several of them (replaces usage; an empty list
        leaves the extension out).  subject_extra: (oid, value) pairs added
        to the subject after the commonName."""
        key = _new_key(kind)
        sans = [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if not_before is None:
            not_before = self.now - datetime.timedelta(days=30)
        if not_after is None:
            not_after = self.now + datetime.timedelta(days=365)
        signer_key = issuer.key if issuer is not None else key
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn, subject_extra))
            .issuer_name(issuer.cert.subject if issuer is not None
                         else _name(cn, subject_extra))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                           critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=(kind == "rsa"), data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                signer_key.public_key()), critical=False)
        )
        usages = [usage] if eku is None else list(eku)
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages),
                                            critical=False)
        cert = builder.sign(signer_key, _sign_hash(signer_key))
        # the server sends its leaf and every CA below the self-signed root
        chain = [cert]
        ca = issuer
        while ca is not None and ca.issuer is not None:
            chain.append(ca.cert)
            ca = ca.issuer
        issued = Issued(name, cert, key, chain, issuer)
        self.certs[name] = issued
        self._write_issued(name, issued)
        return issued

    # ------------------------------------------------------------------ files
    def _write_file(self, fname, data, mode=0o644):
        path = os.path.join(self.dir, fname)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        return path

    def _write_issued(self, name, issued):
        issued.cert_file = self._write_file(
            f"{name}.crt", _cert_pem(issued.cert))
        issued.key_file = self._write_file(
            f"{name}.key", _key_pem(issued.key), mode=self.key_mode)
        issued.chain_file = self._write_file(
            f"{name}.chain.pem",
            b"".join(_cert_pem(c) for c in issued.chain))
        issued.pub_file = self._write_file(f"{name}.pub",
                                           _pub_pem(issued.key))

    def bundle(self, path, files):
        """Write the files one after the other into path (a file of
        several anchors, or CRLs); return path."""
        with open(path, "wb") as out:
            for f in files:
                with open(f, "rb") as src:
                    out.write(src.read())
        return path

    def write_key(self, fname, key):
        """Write a private key (unencrypted PEM); return the path."""
        return self._write_file(fname, _key_pem(key), mode=self.key_mode)

    # ------------------------------------------------------------------ api
    def __getitem__(self, name):
        return self.certs[name]

    def chain(self, name):
        return self.certs[name].chain_file

    def key(self, name):
        return self.certs[name].key_file

    def pin(self, name):
        """The ReencryptPin value (sha256//...) of a certificate's key."""
        return self.certs[name].pin

    def crl(self, fname, issuer="int", revoked=(), last_update=None,
            next_update=None, key=None, der=False, reason=None, serials=(),
            number=None):
        """Write CRL file fname of CA issuer listing the certificates
        named in revoked (revoked an hour ago, with reason, an
        x509.ReasonFlags, if given) and the serial numbers of serials;
        last_update defaults to -1 hour and next_update to +7 days from
        now (datetime.timedelta); key signs it instead of the issuer's
        key; number: a CRL number (with the authority key identifier).
        Returns the file's path."""
        now = _utcnow()
        ca = self.certs[issuer]
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.cert.subject)
            .last_update(now + (last_update if last_update is not None
                                else datetime.timedelta(hours=-1)))
            .next_update(now + (next_update if next_update is not None
                                else datetime.timedelta(days=7)))
        )
        if number is not None:
            builder = builder.add_extension(
                x509.CRLNumber(number), critical=False).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca.key.public_key()), critical=False)
        revoked_at = now - datetime.timedelta(hours=1)
        for serial in [self.certs[n].cert.serial_number for n in revoked] \
                + list(serials):
            entry = (x509.RevokedCertificateBuilder()
                     .serial_number(serial).revocation_date(revoked_at))
            if reason is not None:
                entry = entry.add_extension(x509.CRLReason(reason),
                                            critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        signer = key if key is not None else ca.key
        crl = builder.sign(signer, _sign_hash(signer))
        self.last_crl_der_size = len(crl.public_bytes(
            serialization.Encoding.DER))
        return self._write_file(fname, crl.public_bytes(
            serialization.Encoding.DER if der
            else serialization.Encoding.PEM))

    def ocsp_response(self, leaf, issuer="int", status="good",
                      this_update=None, next_update=Ellipsis,
                      responder=None, revocation_time=None, reason=None,
                      hash=None, response_status=None, about=None,
                      include_responder=True, nonce=None):
        """DER bytes of an OCSP response about certificate leaf (a name)
        of CA issuer.

        status        "good", "revoked" or "unknown"
        this_update   offset from now (datetime.timedelta), default -1 hour
        next_update   offset from now, default +1 day; None: no nextUpdate
        responder     name of the certificate whose key signs the response
                      (it is put in the response); default: the issuer
        revocation_time  offset from now (revoked), default -1 hour
        reason        an x509.ReasonFlags (revoked), default none
        hash          the certificate ID's hash, default SHA-1
        response_status  an ocsp.OCSPResponseStatus other than successful
                      (tryLater...): a response without any status
        about         name of the certificate the status is given for,
                      instead of leaf (an answer about another one)
        include_responder  False: the response does not carry the
                      responder's certificate
        nonce         an x509.OCSPNonce to put in the response (the one of
                      the request it answers)"""
        if response_status is not None:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                response_status).public_bytes(serialization.Encoding.DER)
        now = _utcnow()
        hour = datetime.timedelta(hours=1)
        ca = self.certs[issuer]
        cert = self.certs[about or leaf].cert
        cert_status = {"good": ocsp.OCSPCertStatus.GOOD,
                       "revoked": ocsp.OCSPCertStatus.REVOKED,
                       "unknown": ocsp.OCSPCertStatus.UNKNOWN}[status]
        revoked = status == "revoked"
        signer = self.certs[responder] if responder else ca
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert, issuer=ca.cert, algorithm=hash or hashes.SHA1(),
            cert_status=cert_status,
            this_update=now + (this_update if this_update is not None
                               else -hour),
            next_update=(None if next_update is None else
                         now + (datetime.timedelta(days=1)
                                if next_update is Ellipsis
                                else next_update)),
            revocation_time=(now + (revocation_time
                                    if revocation_time is not None
                                    else -hour)) if revoked else None,
            revocation_reason=reason if revoked else None)
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH,
                                       signer.cert)
        if responder and include_responder:
            builder = builder.certificates([signer.cert])
        if nonce is not None:
            builder = builder.add_extension(nonce, critical=False)
        resp = builder.sign(signer.key, _sign_hash(signer.key))
        return resp.public_bytes(serialization.Encoding.DER)

    def ocsp_answer(self, request_der, issuer="int", status="good",
                    known=None, **kw):
        """What an OCSP responder of CA issuer answers to the DER bytes of
        a request: (state, DER bytes of the response, serial asked about
        or None).  The certificate asked about must be one of this PKI
        (among the names of known, if given) issued by issuer; the answer
        is status ("good", "revoked", "unknown"; "tryLater": a response
        without a status), in the request's hash, with its nonce;
        "unauthorized" for any other certificate, "malformed" for what is
        no OCSP request.  kw go to ocsp_response()."""
        def unsuccessful(state, code, serial):
            return state, ocsp.OCSPResponseBuilder.build_unsuccessful(
                code).public_bytes(serialization.Encoding.DER), serial
        try:
            req = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            return unsuccessful("malformed",
                                ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
                                None)
        serial = req.serial_number
        ca = self.certs[issuer].cert
        names = [n for n, c in self.certs.items()
                 if c.cert.serial_number == serial
                 and (known is None or n in known)]
        for n in names:
            mine = ocsp.OCSPRequestBuilder().add_certificate(
                self.certs[n].cert, ca, req.hash_algorithm).build()
            if (mine.issuer_key_hash == req.issuer_key_hash
                    and mine.issuer_name_hash == req.issuer_name_hash):
                break
        else:
            return unsuccessful("unauthorized",
                                ocsp.OCSPResponseStatus.UNAUTHORIZED, serial)
        if status == "tryLater":
            return unsuccessful("tryLater", ocsp.OCSPResponseStatus.TRY_LATER,
                                serial)
        nonces = [e.value for e in req.extensions
                  if isinstance(e.value, x509.OCSPNonce)]
        return status, self.ocsp_response(
            n, issuer=issuer, status=status, hash=req.hash_algorithm,
            nonce=nonces[0] if nonces else None, **kw), serial

    def new_key(self, kind="ec"):
        """A fresh private key (to sign a CRL no CA would)."""
        return _new_key(kind)

    def fresh_leaf(self, name, cn, dns=("good.test",), issuer="int",
                   kind="ec", not_before=None, not_after=None,
                   subject_extra=()):
        """Issue (and write) a leaf now, its validity given as offsets
        (datetime.timedelta) from the current time: not_before defaults
        to -1 day, not_after to +30 days; issuer=None makes it
        self-signed; subject_extra as for _make_leaf.  Returns its
        name."""
        now = _utcnow()
        nb = now + (not_before if not_before is not None
                    else datetime.timedelta(days=-1))
        na = now + (not_after if not_after is not None
                    else datetime.timedelta(days=30))
        self._make_leaf(
            name, cn, self.certs[issuer] if issuer else None, dns=dns,
            kind=kind, not_before=nb, not_after=na,
            subject_extra=subject_extra)
        return name


class TestPKI(PKI):
    """Generates and writes the whole test PKI into ``directory``."""

    __test__ = False  # not a pytest test class

    key_mode = 0o644

    # client certificates: name -> CN
    CLIENTS = {"admin-client": "admin.client.test",
               "public-client": "public.client.test"}

    def __init__(self, directory=None):
        super().__init__(directory)
        self._generate()

    def _generate(self):
        day = datetime.timedelta(days=1)
        root = self._make_ca("root", "Test Root CA")
        inter = self._make_ca("int", "Test Intermediate CA", issuer=root)
        other = self._make_ca("other-root", "Other Root CA")
        int1 = self._make_ca("deep-int1", "Test Deep Int 1", issuer=root)
        int2 = self._make_ca("deep-int2", "Test Deep Int 2", issuer=int1)
        int3 = self._make_ca("deep-int3", "Test Deep Int 3", issuer=int2)
        old_int = self._make_ca("expired-int", "Test Expired Intermediate CA",
                                issuer=root,
                                not_before=self.now - 400 * day,
                                not_after=self.now - 7 * day)

        self._make_leaf("good", "good.test", inter,
                        dns=("good.test", "backend.test"), kind="rsa")
        self._make_leaf("wild", "wild.test", inter, dns=("*.wild.test",))
        self._make_leaf("wrong-name", "other.test", inter, dns=("other.test",))
        self._make_leaf("other-ca", "good.test", other, dns=("good.test",))
        self._make_leaf("expired", "expired.test", inter, dns=("good.test",),
                        not_before=self.now - 30 * day,
                        not_after=self.now - 7 * day)
        self._make_leaf("future", "future.test", inter, dns=("good.test",),
                        not_before=self.now + 7 * day,
                        not_after=self.now + 60 * day)
        self._make_leaf("ip", "ip.test", inter, dns=("ip.test",),
                        ips=("127.0.0.1",))
        self._make_leaf("under-expired-int", "under-expired-int.test",
                        old_int, dns=("good.test",),
                        not_before=self.now - 30 * day)
        self._make_leaf("deep", "deep.test", int3, dns=("deep.test",))
        self._make_leaf("direct", "direct.test", root, dns=("direct.test",))
        # a backend named by DNS only (no IP SAN): BalancerMember
        # https://localhost:<port>
        self._make_leaf("localhost", "localhost", inter, dns=("localhost",))
        # certificate of the frontend (the client-facing virtual host)
        self._make_leaf("frontend", "localhost", inter,
                        dns=("localhost",), ips=("127.0.0.1",))
        # client certificate of the proxy, for backends that ask for one
        # (SSLProxyMachineCertificateFile: client.pem, certificate + key)
        self._make_leaf("client", "proxy-client.test", root,
                        dns=("proxy-client.test",),
                        eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))

        # keys of every kind a pin is taken of ("good" is RSA-2048)
        self._make_leaf("good-ec", "good-ec.test", inter,
                        dns=("good.test", "backend.test"), kind="ec")
        self._make_leaf("good-ed25519", "good-ed25519.test", inter,
                        dns=("good.test", "backend.test"), kind="ed25519")
        # the key "good" moves to next: same names, same issuer, new key
        self._make_leaf("good-next", "good-next.test", inter,
                        dns=("good.test", "backend.test"), kind="rsa")
        # self-signed server certificates (no CA; for pin-only trust)
        self._make_leaf("self-signed", "self.test", None,
                        dns=("self.test",))
        self._make_leaf("self-signed-expired", "self-expired.test", None,
                        dns=("self.test",),
                        not_before=self.now - 30 * day,
                        not_after=self.now - 7 * day)
        # close to the end of their validity
        self._make_leaf("expiring-2d", "expiring-2d.test", inter,
                        dns=("good.test",), not_after=self.now + 2 * day)
        self._make_leaf("expiring-20d", "expiring-20d.test", inter,
                        dns=("good.test",), not_after=self.now + 20 * day)
        # valid two hours from now
        self._make_leaf("future-2h", "future-2h.test", inter,
                        dns=("good.test",),
                        not_before=self.now + datetime.timedelta(hours=2),
                        not_after=self.now + 60 * day)
        # for CRLs: a leaf of the usual intermediate, and an intermediate
        # of its own with a leaf
        self._make_leaf("revoked", "revoked.test", inter,
                        dns=("good.test",))
        revoked_int = self._make_ca("revoked-int",
                                    "Test Revoked Intermediate CA",
                                    issuer=root)
        self._make_leaf("under-revoked-int", "under-revoked-int.test",
                        revoked_int, dns=("good.test",))
        # OCSP responders the Test Intermediate CA delegates to (or not)
        ocsp_sign = (ExtendedKeyUsageOID.OCSP_SIGNING,)
        self._make_leaf("ocsp-responder", "ocsp.test", inter,
                        dns=("ocsp.test",), eku=ocsp_sign)
        self._make_leaf("ocsp-responder-no-eku", "ocsp-no-eku.test", inter,
                        dns=("ocsp.test",), eku=())
        self._make_leaf("ocsp-responder-server-eku", "ocsp-server-eku.test",
                        inter, dns=("ocsp.test",))
        self._make_leaf("ocsp-responder-expired", "ocsp-expired.test", inter,
                        dns=("ocsp.test",), eku=ocsp_sign,
                        not_before=self.now - 30 * day,
                        not_after=self.now - 7 * day)
        self._make_leaf("ocsp-responder-other-ca", "ocsp-other-ca.test",
                        other, dns=("ocsp.test",), eku=ocsp_sign)
        # a certificate claiming to be the Test Intermediate CA
        self._make_ca("fake-int", "Test Intermediate CA")
        # other certificates of the Test Intermediate CA's own key: issued
        # again by the root (a new serial and validity), and cross-signed
        # by the Other Root CA
        self._make_ca("int-reissued", "Test Intermediate CA", issuer=root,
                      key=inter.key)
        self._make_ca("int-cross", "Test Intermediate CA", issuer=other,
                      key=inter.key)
        # client certificates the proxy presents to a backend
        # (SSLProxyMachineCertificateFile); see client_pem()
        for name, cn in self.CLIENTS.items():
            self._make_leaf(name, cn, root, dns=(cn,),
                            usage=ExtendedKeyUsageOID.CLIENT_AUTH)
        self._write()

    def _write(self):
        for name in self.CLIENTS:
            issued = self.certs[name]
            issued.client_file = self._write_file(
                f"{name}.client.pem",
                _cert_pem(issued.cert) + _traditional_key_pem(issued.key))
        self.ca_file = self._write_file(
            "ca.pem", _cert_pem(self.certs["root"].cert))
        self.int_ca_file = self._write_file(
            "int-ca.pem", _cert_pem(self.certs["int"].cert))
        self.other_ca_file = self._write_file(
            "other-ca.pem", _cert_pem(self.certs["other-root"].cert))
        self.empty_ca_file = self._write_file(
            "empty.pem",
            b"# this file intentionally holds no certificate\n")
        client = self.certs["client"]
        self.client_pem_file = self._write_file(
            "client.pem", _cert_pem(client.cert) + _key_pem(client.key),
            mode=0o600)

    def client_pem(self, name):
        """The file holding client certificate name and its unencrypted
        key (for SSLProxyMachineCertificateFile)."""
        return self.certs[name].client_file


if __name__ == "__main__":  # manual inspection: python3 -m harness.pki [dir]
    import sys
    pki = TestPKI(sys.argv[1] if len(sys.argv) > 1 else None)
    print(pki.dir)
