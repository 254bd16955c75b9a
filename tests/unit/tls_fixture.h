/* Licensed under the Apache License, Version 2.0 (the "License");
 * you may not use this file except in compliance with the License.
 * You may obtain a copy of the License at
 *
 *     http://www.apache.org/licenses/LICENSE-2.0
 *
 * Unless required by applicable law or agreed to in writing, software
 * distributed under the License is distributed on an "AS IS" BASIS,
 * WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
 * See the License for the specific language governing permissions and
 * limitations under the License.
 */

/*
 * tls_fixture.h: a real TLS session, made in-process. A root, an
 * intermediate and a leaf (EC P-256, the leaf for "good.test" with the
 * subject "CN=good.test,O=Ex\xc3\xa4mple <&>") are made; a client and a
 * server then shake hands over a BIO pair, and the client's resumable
 * session and the chain (leaf first) are what a backend connection would
 * put into the session cache. Shared by the codec unit tests and the
 * fuzzers' seed generator (tests/fuzz/make_seeds.c).
 *
 * Include after the OpenSSL headers <openssl/ssl.h> and <openssl/x509v3.h>.
 */

#ifndef TLS_FIXTURE_H
#define TLS_FIXTURE_H

#include "x509_ext.h"

#define FIXTURE_CHAIN 3

typedef struct {
    EVP_PKEY *key[FIXTURE_CHAIN];
    X509 *cert[FIXTURE_CHAIN];          /* leaf, intermediate, root */
    STACK_OF(X509) *chain;              /* the three, leaf first */
    SSL_SESSION *session;               /* the client's, resumable */
} tls_fixture_t;

/* Certificate i of the fixture (0 leaf, 1 intermediate, 2 root) */
static X509 *fixture_cert(tls_fixture_t *f, int i)
{
    static const char *const cn[FIXTURE_CHAIN] = {
        "good.test", "Test Intermediate CA", "Test Root CA"
    };
    X509 *x = X509_new();
    X509 *issuer = i == FIXTURE_CHAIN - 1 ? x : f->cert[i + 1];
    EVP_PKEY *ikey = f->key[i == FIXTURE_CHAIN - 1 ? i : i + 1];
    X509_NAME *name = X509_NAME_new();
    int ok;

    ok = x && name && X509_set_version(x, X509_VERSION_3)
         && ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1000 + i)
         && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       (const unsigned char *)cn[i], -1,
                                       -1, 0)
         && (i || X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                       (const unsigned char *)"Ex\xc3\xa4mple <&>", -1,
                       -1, 0))
         && X509_set_subject_name(x, name)
         && X509_set_issuer_name(x, X509_get_subject_name(issuer))
         && X509_gmtime_adj(X509_getm_notBefore(x), -3600)
         && X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400)
         && X509_set_pubkey(x, f->key[i])
         && x509_ext_add(x, issuer, NID_basic_constraints,
                        i ? "critical,CA:TRUE" : "critical,CA:FALSE")
         && (i || x509_ext_add(x, issuer, NID_subject_alt_name,
                              "DNS:good.test, IP:127.0.0.1"))
         && X509_sign(x, ikey, EVP_sha256());
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Move what one side wrote to the other (a BIO pair each way is one
 * pair: what is written to one end is read at the other). */
static int fixture_shake(SSL *client, SSL *server)
{
    int i, cdone = 0, sdone = 0;

    for (i = 0; i < 100 && !(cdone && sdone); i++) {
        if (!cdone) {
            int rc = SSL_do_handshake(client);

            if (rc == 1) {
                cdone = 1;
            }
            else if (SSL_get_error(client, rc) != SSL_ERROR_WANT_READ) {
                return 0;
            }
        }
        if (!sdone) {
            int rc = SSL_do_handshake(server);

            if (rc == 1) {
                sdone = 1;
            }
            else if (SSL_get_error(server, rc) != SSL_ERROR_WANT_READ) {
                return 0;
            }
        }
    }
    return cdone && sdone;
}

static void fixture_free(tls_fixture_t *f)
{
    int i;

    SSL_SESSION_free(f->session);
    sk_X509_pop_free(f->chain, X509_free);
    for (i = 0; i < FIXTURE_CHAIN; i++) {
        X509_free(f->cert[i]);
        EVP_PKEY_free(f->key[i]);
    }
    memset(f, 0, sizeof(*f));
}

/* The server takes the name the client sends, so that the session
 * carries it */
static int fixture_servername(SSL *ssl, int *alert, void *arg)
{
    (void)ssl;
    (void)alert;
    (void)arg;
    return SSL_TLSEXT_ERR_OK;
}

/* Make the certificates and shake hands (TLS 1.3: the session comes in
 * the server's first ticket, read by the client after the handshake).
 * Returns 1 with *f filled, 0 on failure (*f then freed). */
static int fixture_make(tls_fixture_t *f)
{
    SSL_CTX *cctx = NULL, *sctx = NULL;
    SSL *client = NULL, *server = NULL;
    BIO *cbio = NULL, *sbio = NULL;
    char byte;
    int i, ok = 0;

    memset(f, 0, sizeof(*f));
    for (i = FIXTURE_CHAIN - 1; i >= 0; i--) {
        f->key[i] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (!f->key[i] || !(f->cert[i] = fixture_cert(f, i))) {
            goto done;
        }
    }
    if (!(f->chain = sk_X509_new_null())) {
        goto done;
    }
    for (i = 0; i < FIXTURE_CHAIN; i++) {
        if (!X509_up_ref(f->cert[i]) || !sk_X509_push(f->chain, f->cert[i])) {
            goto done;
        }
    }
    cctx = SSL_CTX_new(TLS_client_method());
    sctx = SSL_CTX_new(TLS_server_method());
    if (!cctx || !sctx
        || !SSL_CTX_use_certificate(sctx, f->cert[0])
        || !SSL_CTX_use_PrivateKey(sctx, f->key[0])
        || !SSL_CTX_add1_chain_cert(sctx, f->cert[1])
        || !SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION)
        || !(client = SSL_new(cctx)) || !(server = SSL_new(sctx))
        || !BIO_new_bio_pair(&cbio, 0, &sbio, 0)) {
        goto done;
    }
    SSL_CTX_set_tlsext_servername_callback(sctx, fixture_servername);
    SSL_set_bio(client, cbio, cbio);
    SSL_set_bio(server, sbio, sbio);
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);
    if (!SSL_set_tlsext_host_name(client, "good.test")
        || !fixture_shake(client, server)
        || SSL_write(server, "x", 1) != 1
        || SSL_read(client, &byte, 1) != 1) {
        goto done;
    }
    f->session = SSL_get1_session(client);
    ok = f->session && SSL_SESSION_is_resumable(f->session);

done:
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    if (!ok) {
        fixture_free(f);
    }
    return ok;
}

#endif /* TLS_FIXTURE_H */
