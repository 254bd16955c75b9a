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
 * reencrypt-pin: print the SPKI pins (sha256//<base64>) that
 * ReencryptPin takes, for PEM files or for the chain a live TLS server
 * presents. It computes pins with the module's own code
 * (reencrypt_verify.c), so what it prints is what the module compares.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "reencrypt_policy.h"
#include "reencrypt_verify.h"
#include "reencrypt_version.h"

static const char usage[] =
"Usage: reencrypt-pin [--directive] FILE...\n"
"       reencrypt-pin [--directive] [--sni NAME] --connect HOST:PORT\n"
"\n"
"Print the SPKI pins (sha256//<base64>, RFC 7469 pin-sha256, the form of\n"
"curl's --pinnedpubkey) that mod_reencrypt's ReencryptPin takes.\n"
"\n"
"  FILE            a PEM file holding certificates, public keys or private\n"
"                  keys (encrypted keys are not read); every one of them is\n"
"                  printed\n"
"  --connect H:P   connect to a TLS server and print a pin for every\n"
"                  certificate of the chain it presents, leaf first (the\n"
"                  chain is NOT verified: check what you pin)\n"
"  --sni NAME      SNI to send with --connect (default: none)\n"
"  --directive     print one ready-to-paste 'ReencryptPin ...' line\n"
"  --help          this text\n"
"  --version       the version\n"
"\n"
"Output: one line per key, the pin, a tab and what it belongs to.\n"
"Exit status: 0 when at least one pin was printed, 1 on errors, 2 on\n"
"usage errors.\n";

typedef struct {
    apr_pool_t *p;
    apr_array_header_t *pins;       /* const char * */
    int directive;
} out_t;

static void emit(out_t *o, const reencrypt_pin_t *pin, const char *what)
{
    const char *s = reencrypt_pin_str(o->p, pin);

    APR_ARRAY_PUSH(o->pins, const char *) = s;
    if (!o->directive) {
        printf("%s\t%s\n", s, what);
    }
}

static const char *subject(apr_pool_t *p, X509 *x)
{
    return reencrypt_name_str(p, X509_get_subject_name(x));
}

static int pins_of_file(out_t *o, const char *path)
{
    BIO *bio = BIO_new_file(path, "r");
    STACK_OF(X509_INFO) *infos;
    int i, n = 0;

    if (!bio) {
        fprintf(stderr, "reencrypt-pin: cannot read '%s'\n", path);
        return -1;
    }
    infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
    BIO_free(bio);
    /* PEM_X509_INFO_read_bio knows certificates and private keys, not
     * bare public keys: read those separately. */
    if (infos) {
        for (i = 0; i < sk_X509_INFO_num(infos); i++) {
            X509_INFO *xi = sk_X509_INFO_value(infos, i);
            reencrypt_pin_t pin;

            if (xi->x509 && reencrypt_pin_of_cert(xi->x509, &pin) == 0) {
                emit(o, &pin, apr_psprintf(o->p, "certificate %s (%s)",
                                           subject(o->p, xi->x509), path));
                n++;
            }
            if (xi->x_pkey && xi->x_pkey->dec_pkey
                && reencrypt_pin_of_pkey(xi->x_pkey->dec_pkey, &pin) == 0) {
                emit(o, &pin, apr_psprintf(o->p, "private key (%s)", path));
                n++;
            }
        }
        sk_X509_INFO_pop_free(infos, X509_INFO_free);
    }
    ERR_clear_error();
    if ((bio = BIO_new_file(path, "r")) != NULL) {
        EVP_PKEY *pk;

        while ((pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) != NULL) {
            reencrypt_pin_t pin;

            if (reencrypt_pin_of_pkey(pk, &pin) == 0) {
                emit(o, &pin, apr_psprintf(o->p, "public key (%s)", path));
                n++;
            }
            EVP_PKEY_free(pk);
        }
        BIO_free(bio);
        ERR_clear_error();
    }
    if (n == 0) {
        fprintf(stderr, "reencrypt-pin: '%s' holds no PEM certificate or "
                "key\n", path);
        return -1;
    }
    return n;
}

static int pins_of_server(out_t *o, const char *hostport, const char *sni)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    BIO *bio = NULL;
    SSL *ssl = NULL;
    STACK_OF(X509) *chain;
    int i, n = -1;

    if (!ctx) {
        goto done;
    }
    /* the point is to show what the server presents, trusted or not */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    bio = BIO_new_ssl_connect(ctx);
    if (!bio) {
        goto done;
    }
    BIO_get_ssl(bio, &ssl);
    BIO_set_conn_hostname(bio, hostport);
    if (sni && !SSL_set_tlsext_host_name(ssl, sni)) {
        fprintf(stderr, "reencrypt-pin: cannot use '%s' as SNI\n", sni);
        goto done;
    }
    if (BIO_do_connect(bio) <= 0 || BIO_do_handshake(bio) <= 0) {
        unsigned long err = ERR_get_error();

        fprintf(stderr, "reencrypt-pin: TLS handshake with %s failed: %s\n",
                hostport, err ? ERR_reason_error_string(err) : "?");
        goto done;
    }
    chain = SSL_get_peer_cert_chain(ssl);   /* client side: leaf first */
    n = 0;
    for (i = 0; chain && i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        reencrypt_pin_t pin;

        if (reencrypt_pin_of_cert(x, &pin) == 0) {
            emit(o, &pin, apr_psprintf(o->p, "%s %d: %s (%s%s%s)",
                                       i == 0 ? "leaf" : "chain", i,
                                       subject(o->p, x), hostport,
                                       sni ? ", SNI " : "", sni ? sni : ""));
            n++;
        }
    }
    if (n == 0) {
        fprintf(stderr, "reencrypt-pin: %s presented no certificate\n",
                hostport);
        n = -1;
    }

done:
    BIO_free_all(bio);
    SSL_CTX_free(ctx);
    return n;
}

int main(int argc, const char *const *argv)
{
    out_t o;
    const char *connect = NULL, *sni = NULL;
    apr_array_header_t *files;
    int i, failed = 0;

    apr_app_initialize(&argc, &argv, NULL);
    atexit(apr_terminate);
    apr_pool_create(&o.p, NULL);
    o.pins = apr_array_make(o.p, 8, sizeof(const char *));
    o.directive = 0;
    files = apr_array_make(o.p, 4, sizeof(const char *));

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        else if (!strcmp(argv[i], "--version")) {
            printf("reencrypt-pin (mod_reencrypt) %s\n", REENCRYPT_VERSION);
            return 0;
        }
        else if (!strcmp(argv[i], "--directive")) {
            o.directive = 1;
        }
        else if (!strcmp(argv[i], "--connect") && i + 1 < argc) {
            connect = argv[++i];
        }
        else if (!strcmp(argv[i], "--sni") && i + 1 < argc) {
            sni = argv[++i];
        }
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "reencrypt-pin: unknown or incomplete option "
                    "'%s'\n\n%s", argv[i], usage);
            return 2;
        }
        else {
            APR_ARRAY_PUSH(files, const char *) = argv[i];
        }
    }
    if ((connect == NULL) == (files->nelts == 0)) {
        fprintf(stderr, "reencrypt-pin: give either files or --connect "
                "HOST:PORT\n\n%s", usage);
        return 2;
    }
    if (sni && !connect) {
        fprintf(stderr, "reencrypt-pin: --sni goes with --connect\n");
        return 2;
    }

    if (connect) {
        failed = pins_of_server(&o, connect, sni) < 0;
    }
    for (i = 0; i < files->nelts; i++) {
        if (pins_of_file(&o, APR_ARRAY_IDX(files, i, const char *)) < 0) {
            failed = 1;
        }
    }
    if (o.directive && o.pins->nelts > 0) {
        fputs("ReencryptPin", stdout);
        for (i = 0; i < o.pins->nelts; i++) {
            printf(" %s", APR_ARRAY_IDX(o.pins, i, const char *));
        }
        fputc('\n', stdout);
    }
    return (failed || o.pins->nelts == 0) ? 1 : 0;
}
