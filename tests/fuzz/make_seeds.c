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
 * make_seeds: writes the seeds of the fuzz targets fuzz_codec,
 * fuzz_anchors and fuzz_escape from real material: the session of an
 * in-process TLS 1.3 handshake and its chain (tests/unit/tls_fixture.h),
 * encoded by reencrypt_codec.c and sealed by reencrypt_seal.c under the
 * fuzzers' fixed test key; those certificates in PEM and DER; their
 * subjects and names as the status views show them.
 *
 *   tests/fuzz/make_seeds DIR     (make fuzz-seeds: DIR = tests/fuzz/seeds)
 *
 * Each seed starts with the selector byte of its target.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "reencrypt_codec.h"
#include "reencrypt_seal.h"
#include "reencrypt_verify.h"
#include "tests/unit/tls_fixture.h"
#include "tests/unit/ocsp_build.h"
#include "tests/fuzz/staple_pki.h"

#define FUZZ_SEAL_KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
#define FUZZ_CACHE_KEY "rs:fuzz"

static const char *outdir;
static apr_pool_t *pool;
static int failed;

static void seed(const char *target, const char *name, unsigned char sel,
                 const void *bytes, size_t len)
{
    const char *dir = apr_pstrcat(pool, outdir, "/", target, NULL);
    const char *path = apr_pstrcat(pool, dir, "/", name, NULL);
    FILE *f;

    if (mkdir(dir, 0755) && errno != EEXIST) {
        perror(dir);
        failed = 1;
        return;
    }
    if (!(f = fopen(path, "wb"))
        || fwrite(&sel, 1, 1, f) != 1
        || (len && fwrite(bytes, 1, len, f) != len)
        || fclose(f)) {
        perror(path);
        failed = 1;
    }
}

static void seed_str(const char *target, const char *name, unsigned char sel,
                     const char *s)
{
    seed(target, name, sel, s, strlen(s));
}

static unsigned char *entry(STACK_OF(X509) *chain, SSL_SESSION *sess,
                            unsigned int *len)
{
    apr_time_t now = apr_time_now();

    return reencrypt_codec_encode(pool, sess, chain,
                                  now - apr_time_from_sec(60),
                                  now + apr_time_from_sec(300), len);
}

static void codec_seeds(tls_fixture_t *fx)
{
    reencrypt_seal_keys_t keys;
    STACK_OF(X509) *leaf_only = sk_X509_new_null();
    unsigned char *blob, *sealed;
    unsigned int len = 0;
    apr_size_t slen = 0;

    if (reencrypt_seal_keys_parse(pool, FUZZ_SEAL_KEY,
                                  sizeof(FUZZ_SEAL_KEY) - 1, &keys)
        || !leaf_only || !sk_X509_push(leaf_only, fx->cert[0])) {
        failed = 1;
        return;
    }
    if (!(blob = entry(fx->chain, fx->session, &len))) {
        failed = 1;
        return;
    }
    seed("codec", "entry", 0, blob, len);
    seed("codec", "entry-resealed", 2, blob, len);
    sealed = reencrypt_seal(pool, &keys, (const unsigned char *)FUZZ_CACHE_KEY,
                            sizeof(FUZZ_CACHE_KEY) - 1, blob, len, &slen);
    if (!sealed) {
        failed = 1;
        return;
    }
    seed("codec", "entry-sealed", 1, sealed, slen);
    if (!(blob = entry(leaf_only, fx->session, &len))) {
        failed = 1;
        return;
    }
    seed("codec", "entry-leaf-only", 0, blob, len);
    sealed = reencrypt_seal(pool, &keys, (const unsigned char *)FUZZ_CACHE_KEY,
                            sizeof(FUZZ_CACHE_KEY) - 1, blob, len, &slen);
    if (!sealed) {
        failed = 1;
        return;
    }
    seed("codec", "entry-leaf-only-sealed", 1, sealed, slen);
    sk_X509_free(leaf_only);
}

static const char *pem_of(X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len;
    const char *s = "";

    if (bio && PEM_write_bio_X509(bio, x)
        && (len = BIO_get_mem_data(bio, &data)) > 0) {
        s = apr_pstrmemdup(pool, data, (apr_size_t)len);
    }
    else {
        failed = 1;
    }
    BIO_free(bio);
    return s;
}

static const char *key_pem(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len;
    const char *s = "";

    if (bio && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)
        && (len = BIO_get_mem_data(bio, &data)) > 0) {
        s = apr_pstrmemdup(pool, data, (apr_size_t)len);
    }
    else {
        failed = 1;
    }
    BIO_free(bio);
    return s;
}

static void anchors_seeds(tls_fixture_t *fx)
{
    unsigned char *der = NULL;
    int len;

    seed_str("anchors", "root.pem", 0, pem_of(fx->cert[2]));
    seed_str("anchors", "bundle.pem", 0,
             apr_pstrcat(pool, pem_of(fx->cert[2]), pem_of(fx->cert[1]),
                         pem_of(fx->cert[0]), NULL));
    seed_str("anchors", "comments-key-twice.pem", 0,
             apr_pstrcat(pool, "# the test root, twice\n",
                         pem_of(fx->cert[2]), "\nsome text\n",
                         key_pem(fx->key[2]), pem_of(fx->cert[2]), NULL));
    if ((len = i2d_X509(fx->cert[2], &der)) <= 0) {
        failed = 1;
        return;
    }
    /* DER is not what the file holds: refused, but fuzzed from */
    seed("anchors", "root.der", 0, der, (size_t)len);
    OPENSSL_free(der);
}

static void escape_seeds(tls_fixture_t *fx)
{
    int i;

    for (i = 0; i < FIXTURE_CHAIN; i++) {
        X509_NAME *name = X509_get_subject_name(fx->cert[i]);
        unsigned char *der = NULL;
        int len = i2d_X509_NAME(name, &der);

        if (len <= 0) {
            failed = 1;
            return;
        }
        seed("escape", apr_psprintf(pool, "subject-der-%d", i), 1, der,
             (size_t)len);
        OPENSSL_free(der);
        seed_str("escape", apr_psprintf(pool, "subject-%d", i), 0,
                 reencrypt_name_str(pool, name));
        seed_str("escape", apr_psprintf(pool, "issuer-%d", i), 0,
                 reencrypt_name_str(pool, X509_get_issuer_name(fx->cert[i])));
    }
    seed_str("escape", "sans", 0, reencrypt_san_str(pool, fx->cert[0], 16));
    seed_str("escape", "markup", 0,
             "CN=<b>x</b>,O=Bob's \"Shop\" & Co\\, Ltd\nL=\tTab\x7f");
}

/* Staples about the leaf of staple_pki.h, as backends send them */
static void staple_seeds(void)
{
    static const struct {
        const char *name;
        int responder;        /* signed by the CA's responder */
        int status, reason;
        long this_off, next_off;
        int sha256, resp_status;
    } s[] = {
        { "good-ca", 0, V_OCSP_CERTSTATUS_GOOD, -1, -3600, 86400, 0,
          OCSP_RESPONSE_STATUS_SUCCESSFUL },
        { "good-responder", 1, V_OCSP_CERTSTATUS_GOOD, -1, -3600, 86400, 0,
          OCSP_RESPONSE_STATUS_SUCCESSFUL },
        { "good-sha256-id", 0, V_OCSP_CERTSTATUS_GOOD, -1, -3600, 86400, 1,
          OCSP_RESPONSE_STATUS_SUCCESSFUL },
        { "good-no-next", 0, V_OCSP_CERTSTATUS_GOOD, -1, -3600, OCSP_NO_NEXT,
          0, OCSP_RESPONSE_STATUS_SUCCESSFUL },
        { "revoked", 1, V_OCSP_CERTSTATUS_REVOKED,
          OCSP_REVOKED_STATUS_KEYCOMPROMISE, -3600, 86400, 0,
          OCSP_RESPONSE_STATUS_SUCCESSFUL },
        { "unknown", 0, V_OCSP_CERTSTATUS_UNKNOWN, -1, -3600, 86400, 0,
          OCSP_RESPONSE_STATUS_SUCCESSFUL },
        { "expired", 0, V_OCSP_CERTSTATUS_GOOD, -1, -7200, -3600, 0,
          OCSP_RESPONSE_STATUS_SUCCESSFUL },
        { "trylater", 0, 0, -1, 0, 0, 0, OCSP_RESPONSE_STATUS_TRYLATER },
    };
    X509 *ca = staple_pki_cert(STAPLE_PKI_CA);
    X509 *leaf = staple_pki_cert(STAPLE_PKI_LEAF);
    X509 *ocsp = staple_pki_cert(STAPLE_PKI_OCSP);
    EVP_PKEY *ca_key = staple_pki_key(STAPLE_PKI_CA_KEY);
    EVP_PKEY *ocsp_key = staple_pki_key(STAPLE_PKI_OCSP_KEY);
    size_t i;

    if (!ca || !leaf || !ocsp || !ca_key || !ocsp_key) {
        fprintf(stderr, "make_seeds: cannot read staple_pki.h\n");
        failed = 1;
    }
    for (i = 0; !failed && i < sizeof(s) / sizeof(s[0]); i++) {
        ocsp_spec_t spec;
        unsigned char *der;
        int len = 0;

        memset(&spec, 0, sizeof(spec));
        spec.leaf = leaf;
        spec.issuer = ca;
        spec.signer = s[i].responder ? ocsp : ca;
        spec.signer_key = s[i].responder ? ocsp_key : ca_key;
        spec.include_signer = s[i].responder;
        spec.status = s[i].status;
        spec.reason = s[i].reason;
        spec.this_off = s[i].this_off;
        spec.next_off = s[i].next_off;
        spec.now = STAPLE_PKI_NOW;
        spec.id_md = s[i].sha256 ? EVP_sha256() : NULL;
        spec.resp_status = s[i].resp_status;
        if (!(der = ocsp_build(&spec, &len))) {
            fprintf(stderr, "make_seeds: staple %s not made\n", s[i].name);
            failed = 1;
            break;
        }
        seed("staple", s[i].name, 0, der, (size_t)len);
        OPENSSL_free(der);
    }
    X509_free(ca);
    X509_free(leaf);
    X509_free(ocsp);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(ocsp_key);
}

int main(int argc, char **argv)
{
    tls_fixture_t fx;

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    apr_initialize();
    apr_pool_create(&pool, NULL);
    if (!fixture_make(&fx)) {
        fprintf(stderr, "make_seeds: no TLS session made\n");
        return 1;
    }
    codec_seeds(&fx);
    anchors_seeds(&fx);
    escape_seeds(&fx);
    staple_seeds();
    fixture_free(&fx);
    apr_pool_destroy(pool);
    apr_terminate();
    return failed;
}
