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
 * Unit tests of reencrypt_verify.c: loading trust anchors, verifying a
 * backend's chain (trust, validity, depth, names) with the reason and
 * the expected/seen texts of the log line, and the formatting functions.
 *
 * The certificates are made here, once for all tests, with a fixed
 * verification time (NOW), so that every text is known exactly:
 *
 *   Test Root CA --- Test Intermediate CA --- good.test (DNS, IP SAN)
 *                 |                        +- *.wild.test
 *                 |                        +- expired.test, future.test
 *                 |                        +- CN good.test, no SAN
 *                 |                        +- clientAuth only, no EKU
 *                 |                        +- v6.test, many SANs, ...
 *                 +- Expired Intermediate CA --- stale-chain.test
 *                 +- Deep I1 --- Deep I2 --- Deep I3 --- deep.test
 *   Other Root CA --- good.test
 *
 * Every test walks a table of cases. A case that does not give the
 * expected outcome is printed with its table, index and label, and the
 * test fails once the whole table has been walked. A case may carry a
 * "defect" note: it states the correct outcome of a known defect of the
 * code under test; it is reported but does not fail the run, and it
 * fails the run once the code is fixed, so that the note gets removed.
 *
 * Each test gets a fresh APR pool (setup/teardown); the certificates
 * and anchor files live for the whole group.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "reencrypt_policy.h"
#include "reencrypt_verify.h"
#include "unit_walk.h"
#include "x509_ext.h"

/* The verification time of every case: 2026-01-01T00:00:00Z. */
#define NOW      ((time_t)1767225600)
#define DAY      86400L
#define DAYS(n)  ((long)(n) * DAY)

/* ------------------------------------------------------------------ */
/* Fixtures: certificates                                              */

enum {
    C_NONE = 0,
    C_ROOT, C_INTER, C_GOOD, C_WILD, C_OTHER_ROOT, C_OTHER_LEAF,
    C_EXPIRED, C_FUTURE, C_OLD_INTER, C_STALE, C_CN_ONLY, C_CLIENT,
    C_NO_EKU, C_D1, C_D2, C_D3, C_DEEP, C_V6, C_MANY, C_MISC, C_NUL,
    C_CTRL,
    C_COUNT
};

typedef struct {
    const char *cn;
    const char *san;          /* X509V3 config syntax, NULL for none */
    int ca;
    const char *eku;          /* NULL for no extendedKeyUsage */
    long not_before;          /* seconds from NOW */
    long not_after;
    int issuer;               /* C_NONE: self-signed */
} cert_def_t;

#define LEAF_EKU "serverAuth"

static const cert_def_t cert_defs[C_COUNT] = {
    [C_ROOT] = { "Test Root CA", NULL, 1, NULL,
                 -DAYS(30), DAYS(3650), C_NONE },
    [C_INTER] = { "Test Intermediate CA", NULL, 1, NULL,
                  -DAYS(30), DAYS(1825), C_ROOT },
    [C_GOOD] = { "good.test", "DNS:good.test,IP:127.0.0.1", 0, LEAF_EKU,
                 -DAYS(1), DAYS(365), C_INTER },
    [C_WILD] = { "*.wild.test", "DNS:*.wild.test", 0, LEAF_EKU,
                 -DAYS(1), DAYS(365), C_INTER },
    [C_OTHER_ROOT] = { "Other Root CA", NULL, 1, NULL,
                       -DAYS(30), DAYS(3650), C_NONE },
    [C_OTHER_LEAF] = { "good.test", "DNS:good.test,IP:127.0.0.1", 0,
                       LEAF_EKU, -DAYS(1), DAYS(365), C_OTHER_ROOT },
    [C_EXPIRED] = { "expired.test", "DNS:expired.test", 0, LEAF_EKU,
                    -DAYS(30), -DAYS(1), C_INTER },
    [C_FUTURE] = { "future.test", "DNS:future.test", 0, LEAF_EKU,
                   DAYS(1), DAYS(365), C_INTER },
    [C_OLD_INTER] = { "Expired Intermediate CA", NULL, 1, NULL,
                      -DAYS(400), -DAYS(10), C_ROOT },
    [C_STALE] = { "stale-chain.test", "DNS:stale-chain.test", 0, LEAF_EKU,
                  -DAYS(20), DAYS(365), C_OLD_INTER },
    [C_CN_ONLY] = { "good.test", NULL, 0, LEAF_EKU,
                    -DAYS(1), DAYS(365), C_INTER },
    [C_CLIENT] = { "client.test", "DNS:good.test", 0, "clientAuth",
                   -DAYS(1), DAYS(365), C_INTER },
    [C_NO_EKU] = { "no-eku.test", "DNS:good.test", 0, NULL,
                   -DAYS(1), DAYS(365), C_INTER },
    [C_D1] = { "Deep I1", NULL, 1, NULL, -DAYS(30), DAYS(1825), C_ROOT },
    [C_D2] = { "Deep I2", NULL, 1, NULL, -DAYS(30), DAYS(1825), C_D1 },
    [C_D3] = { "Deep I3", NULL, 1, NULL, -DAYS(30), DAYS(1825), C_D2 },
    [C_DEEP] = { "deep.test", "DNS:deep.test", 0, LEAF_EKU,
                 -DAYS(1), DAYS(365), C_D3 },
    [C_V6] = { "v6.test", "DNS:v6.test,IP:2001:db8::1,IP:::1", 0, LEAF_EKU,
               -DAYS(1), DAYS(365), C_INTER },
    [C_MANY] = { "many.test",
                 "DNS:n1.test,DNS:n2.test,DNS:n3.test,DNS:n4.test,"
                 "DNS:n5.test,DNS:n6.test,DNS:n7.test,DNS:n8.test,"
                 "DNS:n9.test,DNS:n10.test,DNS:n11.test,DNS:192.0.2.9",
                 0, LEAF_EKU, -DAYS(1), DAYS(365), C_INTER },
    [C_MISC] = { "misc.test",
                 "URI:https://misc.test/,email:admin@misc.test,"
                 "DNS:misc.test", 0, LEAF_EKU, -DAYS(1), DAYS(365),
                 C_INTER },
    /* its one dNSName is "good.test\0.evil.test" (set below) */
    [C_NUL] = { "nul.test", NULL, 0, LEAF_EKU, -DAYS(1), DAYS(365),
                C_INTER },
    /* its one dNSName is "good.test\nRE00014: forged" (set below) */
    [C_CTRL] = { "ctrl.test", NULL, 0, LEAF_EKU, -DAYS(1), DAYS(365),
                 C_INTER },
};

/* dNSNames that no CA should issue, set byte for byte */
static const struct {
    int cert;
    const char *bytes;
    int len;
} raw_sans[] = {
    { C_NUL, "good.test\0.evil.test", 20 },
    { C_CTRL, "good.test\nRE00014: forged", 25 },
};

static X509 *certs[C_COUNT];
static EVP_PKEY *keys[C_COUNT];

static int make_crls(void);
static void free_crls(void);

static int add_raw_san(X509 *x, const char *bytes, int len)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    int ok = 0;

    if (gens && gn && ia5
        && ASN1_STRING_set(ia5, bytes, len)) {
        GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
        ia5 = NULL;
        if (sk_GENERAL_NAME_push(gens, gn)) {
            gn = NULL;
            ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
                                   X509V3_ADD_DEFAULT) == 1;
        }
    }
    ASN1_IA5STRING_free(ia5);
    GENERAL_NAME_free(gn);
    GENERAL_NAMES_free(gens);
    return ok;
}

static X509 *make_cert(int id, long serial)
{
    const cert_def_t *s = &cert_defs[id];
    X509 *x = X509_new();
    X509 *issuer = s->issuer ? certs[s->issuer] : x;
    EVP_PKEY *ikey = s->issuer ? keys[s->issuer] : keys[id];
    time_t base = NOW;
    X509_NAME *name;
    size_t i;

    if (!x || !keys[id] || !ikey) {
        X509_free(x);
        return NULL;
    }
    if (!X509_set_version(x, X509_VERSION_3)
        || !ASN1_INTEGER_set(X509_get_serialNumber(x), serial)
        || !(name = X509_NAME_new())
        || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       (const unsigned char *)s->cn, -1,
                                       -1, 0)
        || !X509_set_subject_name(x, name)
        || !X509_set_issuer_name(x, X509_get_subject_name(issuer))
        || !X509_time_adj_ex(X509_getm_notBefore(x), 0, s->not_before,
                             &base)
        || !X509_time_adj_ex(X509_getm_notAfter(x), 0, s->not_after,
                             &base)
        || !X509_set_pubkey(x, keys[id])) {
        X509_free(x);
        return NULL;
    }
    X509_NAME_free(name);
    if (s->ca) {
        if (!x509_ext_add(x, issuer, NID_basic_constraints, "critical,CA:TRUE")
            || !x509_ext_add(x, issuer, NID_key_usage,
                        "critical,keyCertSign,cRLSign")) {
            X509_free(x);
            return NULL;
        }
    }
    else {
        if (!x509_ext_add(x, issuer, NID_basic_constraints, "critical,CA:FALSE")
            || !x509_ext_add(x, issuer, NID_key_usage,
                        "critical,digitalSignature")) {
            X509_free(x);
            return NULL;
        }
    }
    for (i = 0; i < N_ELEMS(raw_sans); i++) {
        if (raw_sans[i].cert == id
            && !add_raw_san(x, raw_sans[i].bytes, raw_sans[i].len)) {
            X509_free(x);
            return NULL;
        }
    }
    if ((s->eku && !x509_ext_add(x, issuer, NID_ext_key_usage, s->eku))
        || (s->san && !x509_ext_add(x, issuer, NID_subject_alt_name, s->san))
        || !X509_sign(x, ikey, EVP_sha256())) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* ------------------------------------------------------------------ */
/* Fixtures: files and loaded anchors                                  */

static char tmpdir[64];
static apr_pool_t *group_pool;

/* Anchors sets used by the verification cases. */
enum {
    A_NONE = 0,      /* no anchors at all */
    A_ROOT,          /* root.pem: Test Root CA */
    A_INTER,         /* inter.pem: Test Intermediate CA only */
    A_BUNDLE,        /* bundle3.pem: root, intermediate, other root */
    A_OTHER,         /* other.pem: Other Root CA */
    A_PIN,           /* pin.pem: the good.test leaf itself */
    A_COUNT
};

static const reencrypt_anchors_t *anchors[A_COUNT];

static const char *tmp_path(apr_pool_t *p, const char *name)
{
    return apr_pstrcat(p, tmpdir, "/", name, NULL);
}

static int write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (!f) {
        return 0;
    }
    ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

/* What a memory BIO holds, from p; the BIO is freed. */
static const char *bio_text(apr_pool_t *p, BIO *bio)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    const char *s = apr_pstrmemdup(p, data, (apr_size_t)len);

    BIO_free(bio);
    return s;
}

/* PEM of the certificates ids (C_NONE ends the list), from p. */
static const char *pem_of(apr_pool_t *p, const int *ids)
{
    BIO *bio = BIO_new(BIO_s_mem());

    if (!bio) {
        return NULL;
    }
    for (; *ids; ids++) {
        if (!PEM_write_bio_X509(bio, certs[*ids])) {
            BIO_free(bio);
            return NULL;
        }
    }
    return bio_text(p, bio);
}

/* Contents of the files of the anchors_load cases. */
typedef enum {
    F_PEM,         /* the PEM of the listed certificates + extra */
    F_EMPTY,       /* zero bytes */
    F_TEXT,        /* extra only */
    F_KEY,         /* a PEM private key, no certificate */
    F_DER,         /* DER of the first listed certificate */
    F_DIR,         /* a directory */
    F_MISSING      /* nothing at that path */
} file_kind_e;

typedef struct {
    const char *name;
    file_kind_e kind;
    int certs[4];
    const char *extra;
} file_def_t;

static const char BROKEN_BLOCK[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBkTCB+wIJAKHHIG11kO8UMA0GCSqGSIb3DQEBCwUAMBExDzAN!!not*base64\n"
    "-----END CERTIFICATE-----\n";

static const char TRUNCATED_BLOCK[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBkTCB+wIJAKHHIG11kO8UMA0GCSqGSIb3DQEBCwUAMBExDzANBgNVBAMMBnRl\n";

static const file_def_t file_defs[] = {
    { "root.pem",      F_PEM, { C_ROOT }, NULL },
    { "inter.pem",     F_PEM, { C_INTER }, NULL },
    { "bundle3.pem",   F_PEM, { C_ROOT, C_INTER, C_OTHER_ROOT }, NULL },
    { "other.pem",     F_PEM, { C_OTHER_ROOT }, NULL },
    { "pin.pem",       F_PEM, { C_GOOD }, NULL },
    { "twice.pem",     F_PEM, { C_ROOT, C_ROOT }, NULL },
    { "comments.pem",  F_PEM, { C_ROOT },
      "# Test Root CA, for mod_reencrypt's unit tests\n" },
    { "empty.pem",     F_EMPTY, { 0 }, NULL },
    { "text.pem",      F_TEXT, { 0 }, "no certificate in here\n" },
    { "key.pem",       F_KEY, { 0 }, NULL },
    { "root.der",      F_DER, { C_ROOT }, NULL },
    { "broken.pem",    F_PEM, { C_ROOT }, BROKEN_BLOCK },
    { "broken1st.pem", F_TEXT, { 0 }, BROKEN_BLOCK },
    { "truncated.pem", F_PEM, { C_ROOT }, TRUNCATED_BLOCK },
    { "adir.pem",      F_DIR, { 0 }, NULL },
    { "missing.pem",   F_MISSING, { 0 }, NULL },
};

static int make_file(apr_pool_t *p, const file_def_t *f)
{
    const char *path = tmp_path(p, f->name);

    switch (f->kind) {
    case F_PEM: {
        const char *pem = pem_of(p, f->certs);
        const char *all = pem ? apr_pstrcat(p, pem, f->extra ? f->extra : "",
                                            NULL) : NULL;
        return all && write_file(path, all, strlen(all));
    }
    case F_EMPTY:
        return write_file(path, "", 0);
    case F_TEXT:
        return write_file(path, f->extra, strlen(f->extra));
    case F_KEY: {
        BIO *bio = BIO_new(BIO_s_mem());
        char *data = NULL;
        long len;
        int ok;

        if (!bio || !PEM_write_bio_PrivateKey(bio, keys[C_ROOT], NULL, NULL,
                                              0, NULL, NULL)) {
            BIO_free(bio);
            return 0;
        }
        len = BIO_get_mem_data(bio, &data);
        ok = write_file(path, data, (size_t)len);
        BIO_free(bio);
        return ok;
    }
    case F_DER: {
        unsigned char *der = NULL;
        int len = i2d_X509(certs[f->certs[0]], &der);
        int ok = len > 0 && write_file(path, (const char *)der, (size_t)len);

        OPENSSL_free(der);
        return ok;
    }
    case F_DIR:
        return mkdir(path, 0700) == 0;
    case F_MISSING:
        return 1;
    }
    return 0;
}

static void remove_files(void)
{
    apr_pool_t *p = NULL;
    size_t i;

    if (!tmpdir[0] || apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return;
    }
    for (i = 0; i < N_ELEMS(file_defs); i++) {
        const char *path = tmp_path(p, file_defs[i].name);

        if (file_defs[i].kind == F_DIR) {
            rmdir(path);
        }
        else {
            unlink(path);
        }
    }
    unlink(tmp_path(p, "changing.pem"));
    rmdir(tmpdir);
    apr_pool_destroy(p);
}

static int group_setup(void **state)
{
    static const char *anchor_files[A_COUNT] = {
        [A_ROOT] = "root.pem", [A_INTER] = "inter.pem",
        [A_BUNDLE] = "bundle3.pem", [A_OTHER] = "other.pem",
        [A_PIN] = "pin.pem",
    };
    int i;
    size_t f;

    (void)state;
    if (apr_pool_create(&group_pool, NULL) != APR_SUCCESS) {
        return -1;
    }
    for (i = 1; i < C_COUNT; i++) {
        keys[i] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (!keys[i]) {
            fprintf(stderr, "cannot make a P-256 key\n");
            return -1;
        }
    }
    /* issuers come before the certificates they sign in the enum */
    for (i = 1; i < C_COUNT; i++) {
        certs[i] = make_cert(i, 1000 + i);
        if (!certs[i]) {
            ERR_print_errors_fp(stderr);
            fprintf(stderr, "cannot make certificate %d (%s)\n", i,
                    cert_defs[i].cn);
            return -1;
        }
    }
    if (!make_crls()) {
        return -1;
    }
    strcpy(tmpdir, "/tmp/reencrypt-unit-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        tmpdir[0] = '\0';
        return -1;
    }
    for (f = 0; f < N_ELEMS(file_defs); f++) {
        if (!make_file(group_pool, &file_defs[f])) {
            fprintf(stderr, "cannot write %s\n", file_defs[f].name);
            return -1;
        }
    }
    for (i = 1; i < A_COUNT; i++) {
        const char *err = reencrypt_anchors_load(group_pool,
                              "ReencryptCACertificateFile",
                              tmp_path(group_pool, anchor_files[i]),
                              &anchors[i]);
        if (err) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
    }
    return 0;
}

static int group_teardown(void **state)
{
    int i;

    (void)state;
    remove_files();
    if (group_pool) {
        apr_pool_destroy(group_pool);   /* frees the anchors' stores */
    }
    free_crls();
    for (i = 1; i < C_COUNT; i++) {
        X509_free(certs[i]);
        EVP_PKEY_free(keys[i]);
    }
    return 0;
}

/* "{dir}" in s stands for the directory of the test files. */
static const char *subst(apr_pool_t *p, const char *s)
{
    const char *at;

    if (!s || !(at = strstr(s, "{dir}"))) {
        return s;
    }
    return apr_pstrcat(p, apr_pstrmemdup(p, s, (apr_size_t)(at - s)),
                       tmpdir, subst(p, at + 5), NULL);
}

/* A list "a,b" as an array of const char * ("" or NULL: empty). */
static apr_array_header_t *list_of(apr_pool_t *p, const char *csv)
{
    apr_array_header_t *arr = apr_array_make(p, 2, sizeof(const char *));
    char *copy, *tok, *last = NULL;

    if (!csv) {
        return arr;
    }
    copy = apr_pstrdup(p, csv);
    for (tok = apr_strtok(copy, ",", &last); tok;
         tok = apr_strtok(NULL, ",", &last)) {
        APR_ARRAY_PUSH(arr, const char *) = tok;
    }
    return arr;
}

/* ------------------------------------------------------------------ */
/* reencrypt_anchors_load                                              */

typedef struct {
    const char *file;            /* one of file_defs */
    int count;                   /* 0: the load fails */
    const char *err;             /* exact message, "{dir}" expanded */
    const char *err_has;         /* part of the message */
} load_case_t;

#define DIRECTIVE "ReencryptCACertificateFile"

static const load_case_t load_cases[] = {
    { "root.pem", 1, NULL, NULL },
    { "inter.pem", 1, NULL, NULL },
    { "bundle3.pem", 3, NULL, NULL },
    { "pin.pem", 1, NULL, NULL },
    { "twice.pem", 2, NULL, NULL },
    { "comments.pem", 1, NULL, NULL },
    { "missing.pem", 0, NULL,
      DIRECTIVE ": cannot read '{dir}/missing.pem' (" },
    { "adir.pem", 0, DIRECTIVE ": '{dir}/adir.pem' is not a regular file",
      NULL },
    { "empty.pem", 0,
      DIRECTIVE ": '{dir}/empty.pem' contains no PEM certificate", NULL },
    { "text.pem", 0,
      DIRECTIVE ": '{dir}/text.pem' contains no PEM certificate", NULL },
    { "key.pem", 0,
      DIRECTIVE ": '{dir}/key.pem' contains no PEM certificate", NULL },
    { "root.der", 0,
      DIRECTIVE ": '{dir}/root.der' contains no PEM certificate", NULL },
    { "broken.pem", 0, NULL,
      DIRECTIVE ": '{dir}/broken.pem' holds a malformed PEM certificate (" },
    { "broken1st.pem", 0, NULL,
      DIRECTIVE ": '{dir}/broken1st.pem' holds a malformed PEM "
      "certificate (" },
    { "truncated.pem", 0, NULL,
      DIRECTIVE ": '{dir}/truncated.pem' holds a malformed PEM "
      "certificate (" },
};

static const char *load_case(apr_pool_t *p, const load_case_t *c)
{
    const reencrypt_anchors_t *a = NULL;
    const char *path = tmp_path(p, c->file);
    const char *err = reencrypt_anchors_load(p, DIRECTIVE, path, &a);

    if (c->count) {
        WANT_STR("error", err, NULL);
        if (!a || !a->store) {
            return "no anchors";
        }
        WANT_INT("count", a->count, c->count);
        WANT_STR("path", a->path, path);
        return NULL;
    }
    if (!err) {
        return "loaded, want an error";
    }
    if (a) {
        return "anchors set on failure";
    }
    if (c->err) {
        WANT_STR("error", err, subst(p, c->err));
    }
    if (c->err_has) {
        WANT_HAS("error", err, subst(p, c->err_has));
    }
    /* every message names the directive and quotes the path */
    WANT_HAS("error", err, DIRECTIVE ": ");
    WANT_HAS("error", err, apr_pstrcat(p, "'", path, "'", NULL));
    return NULL;
}

static void test_anchors_load(void **state)
{
    apr_pool_t *p = *state;

    WALK_TABLE_BY("anchors_load", load_cases, file, load_case, p);
}

/* The digest is the SHA-256 of the file's bytes: it changes with the
 * file and comes back with the same content. */
typedef struct {
    const char *label;
    int certs[4];
    const char *extra;
    int same_as;                 /* index of an earlier step, or -1 */
} digest_step_t;

static const digest_step_t digest_steps[] = {
    { "root", { C_ROOT }, NULL, -1 },
    { "root and intermediate", { C_ROOT, C_INTER }, NULL, -1 },
    { "root again", { C_ROOT }, NULL, 0 },
    { "root with a comment", { C_ROOT }, "# comment\n", -1 },
    { "other root", { C_OTHER_ROOT }, NULL, -1 },
    { "intermediate and root", { C_INTER, C_ROOT }, NULL, -1 },
    { "root and intermediate again", { C_ROOT, C_INTER }, NULL, 1 },
};

/* The digest of a client certificate file: the certificates' DER in
 * order, never the keys. */
static const char *pem_digest(apr_pool_t *p, const char *pem, int *n,
                              unsigned char *out)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int len = 0;

    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(md);
        return "no digest";
    }
    *n = reencrypt_digest_pem_certs(md, pem, strlen(pem));
    EVP_DigestFinal_ex(md, out, &len);
    EVP_MD_CTX_free(md);
    (void)p;
    return len == 32 ? NULL : "short digest";
}

static const char *key_pem(apr_pool_t *p, int id)
{
    BIO *bio = BIO_new(BIO_s_mem());

    if (!bio || !PEM_write_bio_PrivateKey(bio, keys[id], NULL, NULL, 0,
                                          NULL, NULL)) {
        BIO_free(bio);
        return NULL;
    }
    return bio_text(p, bio);
}

static void test_digest_pem_certs(void **state)
{
    apr_pool_t *p = *state;
    static const int good[] = { C_GOOD, C_NONE };
    static const int client[] = { C_CLIENT, C_NONE };
    static const int good_inter[] = { C_GOOD, C_INTER, C_NONE };
    static const int inter_good[] = { C_INTER, C_GOOD, C_NONE };
    unsigned char a[32], b[32], c[32], d[32], e[32], f[32];
    const char *key_good = key_pem(p, C_GOOD);
    const char *key_root = key_pem(p, C_ROOT);
    int n = -1;

    assert_non_null(key_good);
    assert_non_null(key_root);
    /* a certificate alone, and with its key before or after it */
    assert_null(pem_digest(p, pem_of(p, good), &n, a));
    assert_int_equal(n, 1);
    assert_null(pem_digest(p, apr_pstrcat(p, pem_of(p, good), key_good,
                                          NULL), &n, b));
    assert_int_equal(n, 1);
    assert_memory_equal(a, b, 32);
    assert_null(pem_digest(p, apr_pstrcat(p, key_good, pem_of(p, good),
                                          NULL), &n, b));
    assert_int_equal(n, 1);
    assert_memory_equal(a, b, 32);
    /* another key with the same certificate: the key is not digested */
    assert_null(pem_digest(p, apr_pstrcat(p, pem_of(p, good), key_root,
                                          NULL), &n, c));
    assert_memory_equal(a, c, 32);
    /* another certificate, and the order of several, count */
    assert_null(pem_digest(p, pem_of(p, client), &n, d));
    assert_true(memcmp(a, d, 32) != 0);
    assert_null(pem_digest(p, pem_of(p, good_inter), &n, e));
    assert_int_equal(n, 2);
    assert_null(pem_digest(p, pem_of(p, inter_good), &n, f));
    assert_int_equal(n, 2);
    assert_true(memcmp(e, f, 32) != 0);
    /* no certificate: a key alone, garbage, nothing */
    assert_null(pem_digest(p, key_good, &n, f));
    assert_int_equal(n, 0);
    assert_null(pem_digest(p, "not PEM at all\n", &n, f));
    assert_int_equal(n, 0);
    assert_null(pem_digest(p, "", &n, f));
    assert_int_equal(n, 0);
}

static void test_anchors_digest(void **state)
{
    apr_pool_t *p = *state;
    const char *path = tmp_path(p, "changing.pem");
    unsigned char seen[N_ELEMS(digest_steps)][32];
    walk_t w;
    size_t i, j;

    walk_start(&w, "anchors_digest");
    for (i = 0; i < N_ELEMS(digest_steps); i++) {
        const digest_step_t *s = &digest_steps[i];
        const char *pem = pem_of(p, s->certs);
        const char *all = apr_pstrcat(p, pem, s->extra ? s->extra : "", NULL);
        const reencrypt_anchors_t *a = NULL;
        unsigned char want[32];
        const char *err, *m = NULL;

        assert_true(write_file(path, all, strlen(all)));
        err = reencrypt_anchors_load(p, DIRECTIVE, path, &a);
        if (err || !a) {
            m = apr_psprintf(p, "load failed: %s", err ? err : "?");
        }
        else {
            assert_true(EVP_Digest(all, strlen(all), want, NULL,
                                   EVP_sha256(), NULL));
            memcpy(seen[i], a->digest, 32);
            if (memcmp(a->digest, want, 32)) {
                m = "digest is not the SHA-256 of the file";
            }
            for (j = 0; !m && j < i; j++) {
                int same = !memcmp(seen[j], seen[i], 32);

                if (same != ((int)j == s->same_as)) {
                    m = apr_psprintf(p, "digest %s that of step %d",
                                     same ? "equals" : "differs from",
                                     (int)j);
                }
            }
        }
        walk_case(&w, (int)i, s->label, NULL, m);
    }
    walk_end(&w);
}

/* ------------------------------------------------------------------ */
/* reencrypt_verify                                                    */

typedef struct {
    const char *label;
    int leaf;                    /* C_NONE: no certificate */
    int untrusted[5];            /* C_NONE ends the list */
    int anchors;                 /* A_* */
    int depth;
    const char *names;           /* "a,b"; NULL: an empty list */
    int from_sni;
    long now;                    /* seconds from NOW */
    reencrypt_reason_e reason;
    int chain_len;               /* -1: not checked */
    const char *expected;        /* exact, "{dir}" expanded; NULL: none */
    const char *seen;            /* exact; NULL: see seen_has */
    const char *seen_has;        /* part of seen */
    const char *defect;
} verify_case_t;

#define OK_CASE(label, leaf, unt, anch, depth, names, chain)              \
    { label, leaf, unt, anch, depth, names, 0, 0, REENCRYPT_OK, chain,    \
      NULL, NULL, NULL, NULL }

#define U0 { C_NONE }
#define U1(a) { a, C_NONE }
#define U2(a, b) { a, b, C_NONE }
#define U3(a, b, c) { a, b, c, C_NONE }

#define GOOD_SANS "DNS:good.test, IP:127.0.0.1"
#define GOOD_CHAIN "CN=good.test < CN=Test Intermediate CA < CN=Test Root CA"
#define DEEP_CHAIN "CN=deep.test < CN=Deep I3 < CN=Deep I2 < CN=Deep I1 " \
                   "< CN=Test Root CA"
#define NO_LOCAL_ISSUER "unable to get local issuer certificate"

static const verify_case_t verify_cases[] = {
    /* --- success ------------------------------------------------- */
    OK_CASE("good leaf, intermediate sent", C_GOOD, U1(C_INTER), A_ROOT, 4,
            "good.test", 3),
    OK_CASE("leaf sent along with its intermediate", C_GOOD,
            U2(C_GOOD, C_INTER), A_ROOT, 4, "good.test", 3),
    OK_CASE("name in other case, final dot", C_GOOD, U1(C_INTER), A_ROOT, 4,
            "GOOD.Test.", 3),
    OK_CASE("IPv4 name against IP SAN", C_GOOD, U1(C_INTER), A_ROOT, 4,
            "127.0.0.1", 3),
    OK_CASE("any of several names: second DNS", C_GOOD, U1(C_INTER), A_ROOT,
            4, "other.test,good.test", 3),
    OK_CASE("any of several names: IP", C_GOOD, U1(C_INTER), A_ROOT, 4,
            "nope.test,127.0.0.1", 3),
    OK_CASE("wildcard SAN, one label", C_WILD, U1(C_INTER), A_ROOT, 4,
            "a.wild.test", 3),
    OK_CASE("IPv6 name against IPv6 SAN", C_V6, U1(C_INTER), A_ROOT, 4,
            "2001:db8::1", 3),
    OK_CASE("no extendedKeyUsage at all", C_NO_EKU, U1(C_INTER), A_ROOT, 4,
            "good.test", 3),
    /* with root and intermediate both anchors, the chain ends at the
     * intermediate: it is the anchor, and the one counted */
    OK_CASE("intermediate in the anchors file, nothing sent", C_GOOD, U0,
            A_BUNDLE, 4, "good.test", 2),
    OK_CASE("intermediate in the anchors file, also sent", C_GOOD,
            U1(C_INTER), A_BUNDLE, 1, "good.test", 2),
    OK_CASE("other root in a bundle", C_OTHER_LEAF, U0, A_BUNDLE, 4,
            "good.test", 2),
    OK_CASE("depth exactly at the limit (2)", C_GOOD, U1(C_INTER), A_ROOT, 2,
            "good.test", 3),
    OK_CASE("deep chain at the limit (4)", C_DEEP,
            U3(C_D3, C_D2, C_D1), A_ROOT, 4, "deep.test", 5),
    OK_CASE("deep chain sent out of order", C_DEEP,
            U3(C_D1, C_D3, C_D2), A_ROOT, 4, "deep.test", 5),
    OK_CASE("deep chain, highest depth", C_DEEP,
            U3(C_D3, C_D2, C_D1), A_ROOT, 32, "deep.test", 5),
    OK_CASE("intermediate as trust anchor (partial chain)", C_GOOD, U0,
            A_INTER, 1, "good.test", 2),
    OK_CASE("intermediate as trust anchor, also sent", C_GOOD, U1(C_INTER),
            A_INTER, 1, "good.test", 2),
    OK_CASE("leaf itself as trust anchor, depth 0", C_GOOD, U0, A_PIN, 0,
            "good.test", 1),
    { "last second of the leaf's validity", C_GOOD, U1(C_INTER), A_ROOT, 4,
      "good.test", 0, DAYS(365) - 1, REENCRYPT_OK, 3, NULL, NULL, NULL,
      NULL },
    { "first second of the leaf's validity", C_GOOD, U1(C_INTER), A_ROOT, 4,
      "good.test", 0, -DAYS(1), REENCRYPT_OK, 3, NULL, NULL, NULL, NULL },

    /* --- no certificate, no anchors ------------------------------ */
    { "no certificate", C_NONE, U0, A_ROOT, 4, "good.test", 0, 0,
      REENCRYPT_ERR_NO_CERT, 0, "a certificate", "none", NULL, NULL },
    { "no anchors configured", C_GOOD, U1(C_INTER), A_NONE, 4, "good.test",
      0, 0, REENCRYPT_ERR_UNTRUSTED, 0, "a trust anchor (none configured)",
      "CN=good.test", NULL, NULL },

    /* --- untrusted chain ----------------------------------------- */
    { "leaf of another root", C_OTHER_LEAF, U0, A_ROOT, 4, "good.test", 0,
      0, REENCRYPT_ERR_UNTRUSTED, -1,
      "a chain to the trust anchor in {dir}/root.pem",
      "CN=good.test issued by CN=Other Root CA (" NO_LOCAL_ISSUER ")",
      NULL, NULL },
    { "intermediate not sent", C_GOOD, U0, A_ROOT, 4, "good.test", 0, 0,
      REENCRYPT_ERR_UNTRUSTED, -1,
      "a chain to the trust anchor in {dir}/root.pem",
      "CN=good.test issued by CN=Test Intermediate CA (" NO_LOCAL_ISSUER ")",
      NULL, NULL },
    { "one of 3 anchors, deep chain not sent", C_DEEP, U0, A_BUNDLE, 4,
      "deep.test", 0, 0, REENCRYPT_ERR_UNTRUSTED, -1,
      "a chain to one of 3 trust anchors in {dir}/bundle3.pem",
      "CN=deep.test issued by CN=Deep I3 (" NO_LOCAL_ISSUER ")", NULL,
      NULL },
    { "deep chain with a gap", C_DEEP, U2(C_D3, C_D1), A_ROOT, 4,
      "deep.test", 0, 0, REENCRYPT_ERR_UNTRUSTED, -1,
      "a chain to the trust anchor in {dir}/root.pem",
      "CN=deep.test issued by CN=Deep I3 (" NO_LOCAL_ISSUER
      " at CN=Deep I3)", NULL, NULL },
    { "intermediate sent, other root trusted", C_GOOD, U1(C_INTER), A_OTHER,
      4, "good.test", 0, 0, REENCRYPT_ERR_UNTRUSTED, -1,
      "a chain to the trust anchor in {dir}/other.pem", NULL,
      "CN=good.test issued by CN=Test Intermediate CA (", NULL },
    { "clientAuth only: wrong purpose", C_CLIENT, U1(C_INTER), A_ROOT, 4,
      "good.test", 0, 0, REENCRYPT_ERR_UNTRUSTED, -1,
      "a chain to the trust anchor in {dir}/root.pem",
      "CN=client.test issued by CN=Test Intermediate CA (unsuitable "
      "certificate purpose)", NULL, NULL },
    { "a CA certificate of another root as leaf", C_OTHER_ROOT, U0, A_ROOT,
      4, "good.test", 0, 0, REENCRYPT_ERR_UNTRUSTED, -1,
      "a chain to the trust anchor in {dir}/root.pem",
      "CN=Other Root CA issued by CN=Other Root CA (self-signed "
      "certificate)", NULL, NULL },
    { "untrusted wins over expired", C_EXPIRED, U1(C_INTER), A_OTHER, 4,
      "expired.test", 0, 0, REENCRYPT_ERR_UNTRUSTED, -1,
      "a chain to the trust anchor in {dir}/other.pem", NULL,
      "CN=expired.test issued by CN=Test Intermediate CA (", NULL },

    /* --- validity ------------------------------------------------ */
    { "expired leaf", C_EXPIRED, U1(C_INTER), A_ROOT, 4, "expired.test", 0,
      0, REENCRYPT_ERR_EXPIRED, 3, "notAfter after 2026-01-01T00:00:00Z",
      "CN=expired.test notAfter=2025-12-31T00:00:00Z", NULL, NULL },
    { "expired leaf, wrong name too: expiry is told", C_EXPIRED,
      U1(C_INTER), A_ROOT, 4, "other.test", 0, 0, REENCRYPT_ERR_EXPIRED, 3,
      "notAfter after 2026-01-01T00:00:00Z",
      "CN=expired.test notAfter=2025-12-31T00:00:00Z", NULL, NULL },
    { "expired leaf, depth too: expiry is told", C_EXPIRED, U1(C_INTER),
      A_ROOT, 1, "expired.test", 0, 0, REENCRYPT_ERR_EXPIRED, 3,
      "notAfter after 2026-01-01T00:00:00Z",
      "CN=expired.test notAfter=2025-12-31T00:00:00Z", NULL, NULL },
    { "not yet valid leaf", C_FUTURE, U1(C_INTER), A_ROOT, 4, "future.test",
      0, 0, REENCRYPT_ERR_NOT_YET_VALID, 3,
      "notBefore before 2026-01-01T00:00:00Z",
      "CN=future.test notBefore=2026-01-02T00:00:00Z", NULL, NULL },
    { "good leaf, checked after its notAfter", C_GOOD, U1(C_INTER), A_ROOT,
      4, "good.test", 0, DAYS(400), REENCRYPT_ERR_EXPIRED, 3,
      "notAfter after 2027-02-05T00:00:00Z",
      "CN=good.test notAfter=2027-01-01T00:00:00Z", NULL, NULL },
    { "good leaf, checked at its notAfter", C_GOOD, U1(C_INTER), A_ROOT,
      4, "good.test", 0, DAYS(365), REENCRYPT_ERR_EXPIRED, 3,
      "notAfter after 2027-01-01T00:00:00Z",
      "CN=good.test notAfter=2027-01-01T00:00:00Z", NULL, NULL },
    { "good leaf, checked before its notBefore", C_GOOD, U1(C_INTER),
      A_ROOT, 4, "good.test", 0, -DAYS(2), REENCRYPT_ERR_NOT_YET_VALID, 3,
      "notBefore before 2025-12-30T00:00:00Z",
      "CN=good.test notBefore=2025-12-31T00:00:00Z", NULL, NULL },
    { "expired intermediate", C_STALE, U1(C_OLD_INTER), A_ROOT, 4,
      "stale-chain.test", 0, 0, REENCRYPT_ERR_EXPIRED, 3,
      "notAfter after 2026-01-01T00:00:00Z",
      "CN=Expired Intermediate CA notAfter=2025-12-22T00:00:00Z", NULL,
      NULL },

    /* --- depth --------------------------------------------------- */
    { "one over the limit (1)", C_GOOD, U1(C_INTER), A_ROOT, 1, "good.test",
      0, 0, REENCRYPT_ERR_DEPTH, 3,
      "at most 1 certificate above the leaf (ReencryptVerifyDepth 1)",
      "2 (" GOOD_CHAIN ")", NULL, NULL },
    { "depth 0 with an intermediate", C_GOOD, U1(C_INTER), A_ROOT, 0,
      "good.test", 0, 0, REENCRYPT_ERR_DEPTH, 3,
      "at most 0 certificates above the leaf (ReencryptVerifyDepth 0)",
      "2 (" GOOD_CHAIN ")", NULL, NULL },
    { "deep chain one over the limit (3)", C_DEEP,
      U3(C_D3, C_D2, C_D1), A_ROOT, 3, "deep.test", 0, 0,
      REENCRYPT_ERR_DEPTH, 5,
      "at most 3 certificates above the leaf (ReencryptVerifyDepth 3)",
      "4 (" DEEP_CHAIN ")", NULL, NULL },
    { "partial chain one over the limit (0)", C_GOOD, U0, A_INTER, 0,
      "good.test", 0, 0, REENCRYPT_ERR_DEPTH, 2,
      "at most 0 certificates above the leaf (ReencryptVerifyDepth 0)",
      "1 (CN=good.test < CN=Test Intermediate CA)", NULL, NULL },
    { "depth before names", C_GOOD, U1(C_INTER), A_ROOT, 1, "other.test", 0,
      0, REENCRYPT_ERR_DEPTH, 3,
      "at most 1 certificate above the leaf (ReencryptVerifyDepth 1)",
      "2 (" GOOD_CHAIN ")", NULL, NULL },

    /* --- names --------------------------------------------------- */
    { "other name", C_GOOD, U1(C_INTER), A_ROOT, 4, "other.test", 0, 0,
      REENCRYPT_ERR_NAME, 3, "\"other.test\"", GOOD_SANS, NULL, NULL },
    { "other names", C_GOOD, U1(C_INTER), A_ROOT, 4, "a.test,b.test", 0, 0,
      REENCRYPT_ERR_NAME, 3, "one of \"a.test\", \"b.test\"", GOOD_SANS,
      NULL, NULL },
    { "other name, from the SNI", C_GOOD, U1(C_INTER), A_ROOT, 4,
      "other.test", 1, 0, REENCRYPT_ERR_NAME, 3, "\"other.test\" (SNI)",
      GOOD_SANS, NULL, NULL },
    { "no name to check", C_GOOD, U1(C_INTER), A_ROOT, 4, NULL, 0, 0,
      REENCRYPT_ERR_NAME, 3,
      "a name to check (none known: set ReencryptVerifyName)", GOOD_SANS,
      NULL, NULL },
    { "other IPv4", C_GOOD, U1(C_INTER), A_ROOT, 4, "127.0.0.2", 0, 0,
      REENCRYPT_ERR_NAME, 3, "\"127.0.0.2\"", GOOD_SANS, NULL, NULL },
    { "IPv4-mapped IPv6 is not the IPv4 SAN", C_GOOD, U1(C_INTER), A_ROOT,
      4, "::ffff:127.0.0.1", 0, 0, REENCRYPT_ERR_NAME, 3,
      "\"::ffff:127.0.0.1\"", GOOD_SANS, NULL, NULL },
    { "CN is never used", C_CN_ONLY, U1(C_INTER), A_ROOT, 4, "good.test",
      0, 0, REENCRYPT_ERR_NAME, 3, "\"good.test\"", "no subjectAltName",
      NULL, NULL },
    { "wildcard does not match the bare domain", C_WILD, U1(C_INTER),
      A_ROOT, 4, "wild.test", 0, 0, REENCRYPT_ERR_NAME, 3, "\"wild.test\"",
      "DNS:*.wild.test", NULL, NULL },
    { "wildcard does not match two labels", C_WILD, U1(C_INTER), A_ROOT, 4,
      "a.b.wild.test", 0, 0, REENCRYPT_ERR_NAME, 3, "\"a.b.wild.test\"",
      "DNS:*.wild.test", NULL, NULL },
    { "IP in a dNSName is not an IP SAN", C_MANY, U1(C_INTER), A_ROOT, 4,
      "192.0.2.9", 0, 0, REENCRYPT_ERR_NAME, 3, "\"192.0.2.9\"", NULL,
      "DNS:n1.test, DNS:n2.test, ", NULL },
    { "dNSName with an embedded NUL", C_NUL, U1(C_INTER), A_ROOT, 4,
      "good.test", 0, 0, REENCRYPT_ERR_NAME, 3, "\"good.test\"", NULL, NULL,
      NULL },
    { "dNSName with a control character", C_CTRL, U1(C_INTER), A_ROOT, 4,
      "good.test", 0, 0, REENCRYPT_ERR_NAME, 3, "\"good.test\"", NULL,
      NULL, NULL },
    { "trust anchor leaf, other name", C_GOOD, U0, A_PIN, 0, "bad.test", 0,
      0, REENCRYPT_ERR_NAME, 1, "\"bad.test\"", GOOD_SANS, NULL, NULL },
};

static const char *verify_case(apr_pool_t *p, const verify_case_t *c)
{
    reencrypt_check_t chk;
    reencrypt_verdict_t v;
    STACK_OF(X509) *unt = NULL;
    reencrypt_reason_e r;
    const int *u;
    const char *m = NULL;

    memset(&chk, 0, sizeof(chk));
    chk.anchors = anchors[c->anchors];
    chk.depth = c->depth;
    chk.names = list_of(p, c->names);
    chk.names_from_sni = c->from_sni;
    chk.now = NOW + c->now;
    if (c->untrusted[0]) {
        unt = sk_X509_new_null();
        for (u = c->untrusted; *u; u++) {
            sk_X509_push(unt, certs[*u]);
        }
    }
    memset(&v, 0x5a, sizeof(v));
    r = reencrypt_verify(p, &chk, c->leaf ? certs[c->leaf] : NULL, unt, &v);
    sk_X509_free(unt);

    if (r != v.reason) {
        return "returned reason differs from verdict's";
    }
    if (r != c->reason) {
        m = apr_psprintf(p, "reason: got %s, want %s",
                         reencrypt_reason_token(r),
                         reencrypt_reason_token(c->reason));
        return apr_psprintf(p, "%s (expected %s; seen %s)", m,
                            q(p, v.expected), q(p, v.seen));
    }
    WANT_STR("expected", v.expected, subst(p, c->expected));
    if (c->seen || r == REENCRYPT_OK) {
        WANT_STR("seen", v.seen, c->seen);
    }
    if (c->seen_has) {
        WANT_HAS("seen", v.seen, c->seen_has);
    }
    if (c->chain_len >= 0) {
        WANT_INT("chain_len", v.chain_len, c->chain_len);
    }
    if (c->leaf) {
        WANT_STR("subject", v.subject,
                 apr_pstrcat(p, "CN=", cert_defs[c->leaf].cn, NULL));
    }
    else {
        WANT_STR("subject", v.subject, NULL);
    }
    return NULL;
}

static void test_verify(void **state)
{
    apr_pool_t *p = *state;
    walk_t w;
    size_t i;

    walk_start(&w, "verify");
    for (i = 0; i < N_ELEMS(verify_cases); i++) {
        walk_case(&w, (int)i, verify_cases[i].label, verify_cases[i].defect,
                  verify_case(p, &verify_cases[i]));
    }
    walk_end(&w);
}

/* ------------------------------------------------------------------ */
/* CRLs: loading files, and verification with revocation               */

enum {
    K_NONE = 0,
    K_ROOT,              /* the root's, listing nothing */
    K_ROOT_INTER,        /* the root's, listing the intermediate */
    K_INT,               /* the intermediate's, listing nothing */
    K_INT_GOOD,          /* the intermediate's, listing good.test */
    K_INT_EXPIRED,       /* nextUpdate an hour before NOW */
    K_INT_FORGED,        /* names the intermediate, signed by another key */
    K_INT_FUTURE,        /* lastUpdate a day after NOW */
    K_COUNT
};

typedef struct {
    int issuer;
    int revoked;         /* certificate listed, C_NONE for none */
    long reason;         /* CRL reason code, -1 for none */
    long last, next;     /* seconds from NOW */
    int signer;          /* C_NONE: the issuer's key */
} crl_def_t;

static const crl_def_t crl_defs[K_COUNT] = {
    [K_ROOT] = { C_ROOT, C_NONE, -1, -DAY, DAYS(7), C_NONE },
    [K_ROOT_INTER] = { C_ROOT, C_INTER, 4, -DAY, DAYS(7), C_NONE },
    [K_INT] = { C_INTER, C_NONE, -1, -DAY, DAYS(7), C_NONE },
    [K_INT_GOOD] = { C_INTER, C_GOOD, 1, -DAY, DAYS(7), C_NONE },
    [K_INT_EXPIRED] = { C_INTER, C_NONE, -1, -DAYS(8), -3600, C_NONE },
    [K_INT_FORGED] = { C_INTER, C_NONE, -1, -DAY, DAYS(7), C_OTHER_ROOT },
    [K_INT_FUTURE] = { C_INTER, C_NONE, -1, DAY, DAYS(7), C_NONE },
};

static X509_CRL *crls[K_COUNT];

static X509_CRL *make_crl(const crl_def_t *d)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *last = ASN1_TIME_new(), *next = ASN1_TIME_new();
    time_t base = NOW;
    int ok;

    ok = crl && last && next
         && X509_CRL_set_version(crl, 1)
         && X509_CRL_set_issuer_name(crl,
                X509_get_subject_name(certs[d->issuer]))
         && X509_time_adj_ex(last, 0, d->last, &base)
         && X509_time_adj_ex(next, 0, d->next, &base)
         && X509_CRL_set1_lastUpdate(crl, last)
         && X509_CRL_set1_nextUpdate(crl, next);
    if (ok && d->revoked) {
        X509_REVOKED *rev = X509_REVOKED_new();
        ASN1_TIME *when = ASN1_TIME_new();
        ASN1_ENUMERATED *why = ASN1_ENUMERATED_new();

        ok = rev && when && why
             && X509_time_adj_ex(when, 0, -3600, &base)
             && X509_REVOKED_set_serialNumber(rev,
                    X509_get_serialNumber(certs[d->revoked]))
             && X509_REVOKED_set_revocationDate(rev, when)
             && (d->reason < 0
                 || (ASN1_ENUMERATED_set(why, d->reason)
                     && X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, why,
                                                  0, 0)))
             && X509_CRL_add0_revoked(crl, rev);
        if (!ok) {
            X509_REVOKED_free(rev);
        }
        ASN1_TIME_free(when);
        ASN1_ENUMERATED_free(why);
    }
    ok = ok && X509_CRL_sort(crl)
         && X509_CRL_sign(crl, keys[d->signer ? d->signer : d->issuer],
                          EVP_sha256());
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    if (!ok) {
        X509_CRL_free(crl);
        return NULL;
    }
    return crl;
}

static int make_crls(void)
{
    int i;

    for (i = 1; i < K_COUNT; i++) {
        if (!(crls[i] = make_crl(&crl_defs[i]))) {
            ERR_print_errors_fp(stderr);
            fprintf(stderr, "cannot make CRL %d\n", i);
            return 0;
        }
    }
    return 1;
}

static void free_crls(void)
{
    int i;

    for (i = 1; i < K_COUNT; i++) {
        X509_CRL_free(crls[i]);
        crls[i] = NULL;
    }
}

/* The PEM or DER of some CRLs, one after the other */
static const char *crls_bytes(apr_pool_t *p, const int *ids, int der,
                              apr_size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n;
    const char *out;

    for (; *ids; ids++) {
        if (der) {
            i2d_X509_CRL_bio(bio, crls[*ids]);
        }
        else {
            PEM_write_bio_X509_CRL(bio, crls[*ids]);
        }
    }
    n = BIO_get_mem_data(bio, &data);
    out = apr_pmemdup(p, data, (apr_size_t)n);
    *len = (apr_size_t)n;
    BIO_free(bio);
    return out;
}

/* The CRLs of ids written to the file name in tmpdir (DER if der),
 * loaded with reencrypt_crl_file_load() into p, and the file removed */
static const reencrypt_crl_file_t *crl_file_of(apr_pool_t *p,
                                               const char *name,
                                               const int *ids, int der)
{
    const reencrypt_crl_file_t *f = NULL;
    const char *path = tmp_path(p, name), *bytes;
    apr_size_t len;

    bytes = crls_bytes(p, ids, der, &len);
    assert_true(write_file(path, bytes, len));
    assert_null(reencrypt_crl_file_load(p, "X", path, &f));
    unlink(path);
    return f;
}

typedef struct {
    const char *label;
    const char *name;            /* file name in tmpdir */
    int crls[4];                 /* CRLs written, K_NONE-terminated */
    int der;
    const char *tail;            /* bytes appended; NULL: none */
    int write;                   /* 0: the file does not exist */
    int count;                   /* CRLs loaded; -1: an error */
    const char *err;             /* error, "{dir}" expanded */
} crl_load_case_t;

static const crl_load_case_t crl_load_cases[] = {
    { "one PEM CRL", "one.crl", { K_INT }, 0, NULL, 1, 1, NULL },
    { "two PEM CRLs", "two.crl", { K_ROOT, K_INT_GOOD }, 0, NULL, 1, 2,
      NULL },
    { "PEM with text around", "text.crl", { K_ROOT }, 0,
      "# comment after the block\n", 1, 1, NULL },
    { "one DER CRL", "one.der", { K_INT_GOOD }, 1, NULL, 1, 1, NULL },
    { "two DER CRLs", "two.der", { K_ROOT, K_INT }, 1, NULL, 1, 2, NULL },
    { "DER then junk", "junk.der", { K_ROOT }, 1, "junk", 1, -1,
      "ReencryptCARevocationFile: '{dir}/junk.der': what follows CRL "
      "number 1 is not a CRL" },
    { "PEM then a broken block", "broken.crl", { K_ROOT }, 0,
      "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", 1, -1,
      "ReencryptCARevocationFile: '{dir}/broken.crl': CRL number 2 is "
      "malformed" },
    { "a certificate, no CRL", "cert.crl", { K_NONE }, 0,
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 1,
      -1, "ReencryptCARevocationFile: '{dir}/cert.crl' is not a CRL "
          "(neither PEM \"X509 CRL\" blocks nor DER)" },
    { "empty file", "empty.crl", { K_NONE }, 0, NULL, 1, -1,
      "ReencryptCARevocationFile: '{dir}/empty.crl' contains no CRL" },
    { "missing file", "missing.crl", { K_NONE }, 0, NULL, 0, -1,
      "ReencryptCARevocationFile: " },
};

static const char *crl_load_case(apr_pool_t *p, const crl_load_case_t *c)
{
    const char *path = tmp_path(p, c->name);
    const reencrypt_crl_file_t *f = NULL;
    const char *err, *bytes;
    apr_size_t len = 0;

    if (c->write) {
        bytes = crls_bytes(p, c->crls, c->der, &len);
        if (c->tail) {
            /* DER holds NUL bytes: no string functions */
            apr_size_t tlen = strlen(c->tail);
            char *both = apr_palloc(p, len + tlen);

            memcpy(both, bytes, len);
            memcpy(both + len, c->tail, tlen);
            bytes = both;
            len += tlen;
        }
        if (!write_file(path, bytes, len)) {
            return "cannot write the file";
        }
    }
    err = reencrypt_crl_file_load(p, "ReencryptCARevocationFile", path,
                                  &f);
    unlink(path);
    if (c->count < 0) {
        WANT_HAS("error", err, subst(p, c->err));
        return NULL;
    }
    WANT_STR("error", err, NULL);
    WANT_INT("count", sk_X509_CRL_num(f->crls), c->count);
    WANT_STR("path", f->path, path);
    return NULL;
}

WALK_TEST(test_crl_load, "crl_load", crl_load_cases, crl_load_case)

/* Sets of files: appending keeps the base as it was; equal bytes give
 * equal digests. */
static void test_crls_add(void **state)
{
    apr_pool_t *p = *state;
    static const int a_ids[] = { K_ROOT, K_INT, K_NONE };
    static const int b_ids[] = { K_INT_GOOD, K_NONE };
    const reencrypt_crl_file_t *a = crl_file_of(p, "a.crl", a_ids, 0);
    const reencrypt_crl_file_t *b = crl_file_of(p, "b.crl", b_ids, 1);
    const reencrypt_crl_file_t *a2 = crl_file_of(p, "a.crl", a_ids, 0);
    const reencrypt_crls_t *one, *two;

    assert_memory_equal(a->digest, a2->digest, sizeof(a->digest));
    assert_memory_not_equal(a->digest, b->digest, sizeof(a->digest));

    one = reencrypt_crls_add(p, NULL, a, "conf:1");
    assert_non_null(one);
    two = reencrypt_crls_add(p, one, b, "conf:2");
    assert_non_null(two);
    assert_int_equal(one->files->nelts, 1);
    assert_int_equal(sk_X509_CRL_num(one->all), 2);
    assert_int_equal(two->files->nelts, 2);
    assert_int_equal(sk_X509_CRL_num(two->all), 3);
    assert_string_equal(two->where, "conf:1");
    /* the directive of each file, in order (apachectl -t -D
     * DUMP_REENCRYPT names them); the first set is left as it was */
    assert_int_equal(one->wheres->nelts, 1);
    assert_int_equal(two->wheres->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(two->wheres, 0, const char *),
                        "conf:1");
    assert_string_equal(APR_ARRAY_IDX(two->wheres, 1, const char *),
                        "conf:2");
}

/* A copy kept across readings of the configuration owns its OpenSSL
 * objects once unmanaged: the pool it was loaded from goes, they stay
 * usable, and reencrypt_*_free() frees them (ASan and valgrind see a
 * double free or a use after free otherwise). */
static void test_unmanage(void **state)
{
    apr_pool_t *p = *state, *sp;
    static const int ids[] = { K_ROOT, K_INT, K_NONE };
    const reencrypt_anchors_t *a = NULL;
    const reencrypt_crl_file_t *f;
    reencrypt_anchors_t a_copy;
    reencrypt_crl_file_t f_copy;

    assert_int_equal(apr_pool_create(&sp, p), APR_SUCCESS);
    assert_null(reencrypt_anchors_load(sp, DIRECTIVE,
                                       tmp_path(p, "bundle3.pem"), &a));
    f = crl_file_of(sp, "unmanaged.crl", ids, 0);
    reencrypt_anchors_unmanage(sp, a);
    reencrypt_crl_file_unmanage(sp, f);
    a_copy = *a;
    f_copy = *f;
    apr_pool_destroy(sp);
    assert_int_equal(sk_X509_OBJECT_num(X509_STORE_get0_objects(
                         a_copy.store)), 3);
    assert_int_equal(sk_X509_CRL_num(f_copy.crls), 2);
    assert_non_null(X509_CRL_get_issuer(sk_X509_CRL_value(f_copy.crls, 1)));
    reencrypt_anchors_free(&a_copy);
    reencrypt_crl_file_free(&f_copy);
}

/* What a loaded file says of each of its CRLs (the status views, the
 * expiry warning), and the soonest nextUpdate of a file and of a set. */
static void test_crl_info(void **state)
{
    apr_pool_t *p = *state;
    static const int a_ids[] = { K_ROOT, K_INT_GOOD, K_NONE };
    static const int b_ids[] = { K_INT_EXPIRED, K_NONE };
    const reencrypt_crl_file_t *a = crl_file_of(p, "ia.crl", a_ids, 0);
    const reencrypt_crl_file_t *b = crl_file_of(p, "ib.der", b_ids, 1);
    const reencrypt_crl_info_t *in;
    const reencrypt_crls_t *one, *two;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    assert_int_equal(a->info->nelts, 2);
    in = &APR_ARRAY_IDX(a->info, 0, reencrypt_crl_info_t);
    assert_string_equal(in->issuer, "CN=Test Root CA");
    assert_int_equal(in->entries, 0);
    assert_int_equal(in->last_update, NOW - DAY);
    assert_int_equal(in->next_update, NOW + DAYS(7));
    assert_true(X509_CRL_digest(crls[K_ROOT], EVP_sha256(), md, &mdlen));
    assert_memory_equal(in->digest, md, sizeof(in->digest));
    in = &APR_ARRAY_IDX(a->info, 1, reencrypt_crl_info_t);
    assert_string_equal(in->issuer, "CN=Test Intermediate CA");
    assert_int_equal(in->entries, 1);
    assert_memory_not_equal(in->digest, md, sizeof(in->digest));
    assert_int_equal(a->soonest_next_update, NOW + DAYS(7));

    assert_int_equal(b->info->nelts, 1);
    in = &APR_ARRAY_IDX(b->info, 0, reencrypt_crl_info_t);
    assert_int_equal(in->last_update, NOW - DAYS(8));
    assert_int_equal(in->next_update, NOW - 3600);
    assert_int_equal(b->soonest_next_update, NOW - 3600);

    one = reencrypt_crls_add(p, NULL, a, "conf:1");
    assert_non_null(one);
    assert_int_equal(one->soonest_next_update, NOW + DAYS(7));
    two = reencrypt_crls_add(p, one, b, "conf:2");
    assert_non_null(two);
    assert_int_equal(two->soonest_next_update, NOW - 3600);
    assert_int_equal(one->soonest_next_update, NOW + DAYS(7));
}

typedef struct {
    const char *label;
    int leaf;
    int untrusted[5];
    int validated;               /* untrusted is a chain validated before
                                  * (leaf first, anchor last); 2: against
                                  * these very CRLs */
    int crls[4];                 /* K_NONE-terminated */
    reencrypt_revocation_e mode;
    int no_crl_ok;
    long skew;
    reencrypt_reason_e reason;
    reencrypt_revocation_state_e state;
    const char *expected;        /* exact; NULL: not compared */
    const char *seen_has;        /* part of seen; NULL: not compared */
    int skew_used;
} crl_case_t;

#define R_CHAIN REENCRYPT_REVOCATION_CHAIN
#define R_LEAF  REENCRYPT_REVOCATION_LEAF
#define R_OFF   REENCRYPT_REVOCATION_OFF

/* serial 1000 + C_GOOD, 1000 + C_INTER in hex */
#define GOOD_ID  "CN=good.test serial 0x03EB"
#define INTER_ID "CN=Test Intermediate CA serial 0x03EA"

static const crl_case_t crl_cases[] = {
    { "chain, no certificate listed", C_GOOD, U1(C_INTER), 0,
      { K_ROOT, K_INT }, R_CHAIN, 0, 0, REENCRYPT_OK, REENCRYPT_REV_GOOD,
      NULL, NULL, 0 },
    { "chain, leaf listed", C_GOOD, U1(C_INTER), 0,
      { K_ROOT, K_INT_GOOD }, R_CHAIN, 0, 0, REENCRYPT_ERR_REVOKED,
      REENCRYPT_REV_REVOKED,
      "no certificate of the chain revoked (ReencryptRevocationCheck "
      "Chain)",
      GOOD_ID " revoked at 2025-12-31T23:00:00Z (reason keyCompromise) "
      "by the CRL of CN=Test Intermediate CA", 0 },
    { "leaf, leaf listed", C_GOOD, U1(C_INTER), 0,
      { K_ROOT, K_INT_GOOD }, R_LEAF, 0, 0, REENCRYPT_ERR_REVOKED,
      REENCRYPT_REV_REVOKED, NULL, GOOD_ID " revoked at ", 0 },
    { "chain, intermediate listed", C_GOOD, U1(C_INTER), 0,
      { K_ROOT_INTER, K_INT }, R_CHAIN, 0, 0, REENCRYPT_ERR_REVOKED,
      REENCRYPT_REV_REVOKED, NULL,
      INTER_ID " revoked at 2025-12-31T23:00:00Z (reason superseded) by "
      "the CRL of CN=Test Root CA", 0 },
    { "leaf, intermediate listed: not checked", C_GOOD, U1(C_INTER), 0,
      { K_ROOT_INTER, K_INT }, R_LEAF, 0, 0, REENCRYPT_OK,
      REENCRYPT_REV_GOOD, NULL, NULL, 0 },
    { "chain, no CRL of the root", C_GOOD, U1(C_INTER), 0, { K_INT },
      R_CHAIN, 0, 0, REENCRYPT_ERR_CRL_MISSING, REENCRYPT_REV_CRL_MISSING,
      "a CRL issued by CN=Test Root CA (ReencryptRevocationCheck Chain)",
      "no CRL of that issuer for " INTER_ID, 0 },
    { "leaf, no CRL of the root: not needed", C_GOOD, U1(C_INTER), 0,
      { K_INT }, R_LEAF, 0, 0, REENCRYPT_OK, REENCRYPT_REV_GOOD, NULL, NULL,
      0 },
    { "leaf, no CRL of the intermediate", C_GOOD, U1(C_INTER), 0,
      { K_ROOT }, R_LEAF, 0, 0, REENCRYPT_ERR_CRL_MISSING,
      REENCRYPT_REV_CRL_MISSING,
      "a CRL issued by CN=Test Intermediate CA (ReencryptRevocationCheck "
      "Leaf)", "no CRL of that issuer for " GOOD_ID, 0 },
    { "chain, no CRL of the root, NoCRLForCertOK", C_GOOD, U1(C_INTER), 0,
      { K_INT }, R_CHAIN, 1, 0, REENCRYPT_OK, REENCRYPT_REV_NO_CRL, NULL,
      NULL, 0 },
    { "NoCRLForCertOK, leaf listed", C_GOOD, U1(C_INTER), 0,
      { K_INT_GOOD }, R_CHAIN, 1, 0, REENCRYPT_ERR_REVOKED,
      REENCRYPT_REV_REVOKED, NULL, GOOD_ID, 0 },
    { "CRL past its nextUpdate", C_GOOD, U1(C_INTER), 0,
      { K_ROOT, K_INT_EXPIRED }, R_CHAIN, 0, 0, REENCRYPT_ERR_CRL_EXPIRED,
      REENCRYPT_REV_CRL_EXPIRED,
      "a CRL with nextUpdate after 2026-01-01T00:00:00Z",
      "the CRL of CN=Test Intermediate CA: lastUpdate=2025-12-24T00:00:00Z "
      "nextUpdate=2025-12-31T23:00:00Z (checking " GOOD_ID ")", 0 },
    { "CRL past its nextUpdate, within the skew", C_GOOD, U1(C_INTER), 0,
      { K_ROOT, K_INT_EXPIRED }, R_CHAIN, 0, 7200, REENCRYPT_OK,
      REENCRYPT_REV_GOOD, NULL, NULL, 1 },
    { "CRL past its nextUpdate, beyond the skew", C_GOOD, U1(C_INTER), 0,
      { K_ROOT, K_INT_EXPIRED }, R_CHAIN, 0, 1800,
      REENCRYPT_ERR_CRL_EXPIRED, REENCRYPT_REV_CRL_EXPIRED,
      "a CRL with nextUpdate after 2025-12-31T23:30:00Z (now less "
      "ReencryptClockSkew 1800s)", NULL, 0 },
    { "CRL signed by another key", C_GOOD, U1(C_INTER), 0,
      { K_ROOT, K_INT_FORGED }, R_CHAIN, 0, 0, REENCRYPT_ERR_CRL_INVALID,
      REENCRYPT_REV_CRL_INVALID,
      "a CRL of CN=Test Intermediate CA signed by it and valid at "
      "2026-01-01T00:00:00Z",
      "a CRL naming CN=Test Intermediate CA as issuer (CRL signature "
      "failure; checking " GOOD_ID ")", 0 },
    { "CRL not yet valid", C_GOOD, U1(C_INTER), 0,
      { K_ROOT, K_INT_FUTURE }, R_CHAIN, 0, 0, REENCRYPT_ERR_CRL_INVALID,
      REENCRYPT_REV_CRL_INVALID, NULL,
      "the CRL of CN=Test Intermediate CA with lastUpdate="
      "2026-01-02T00:00:00Z, in the future", 0 },
    { "CRL not yet valid, within the skew", C_GOOD, U1(C_INTER), 0,
      { K_ROOT, K_INT_FUTURE }, R_CHAIN, 0, DAYS(2), REENCRYPT_OK,
      REENCRYPT_REV_GOOD, NULL, NULL, 1 },
    { "Off: a listed leaf passes", C_GOOD, U1(C_INTER), 0,
      { K_ROOT, K_INT_GOOD }, R_OFF, 0, 0, REENCRYPT_OK,
      REENCRYPT_REV_NOT_CHECKED, NULL, NULL, 0 },
    { "untrusted chain: revocation not judged", C_OTHER_LEAF, U0, 0,
      { K_ROOT, K_INT }, R_CHAIN, 0, 0, REENCRYPT_ERR_UNTRUSTED,
      REENCRYPT_REV_NOT_CHECKED, NULL, NULL, 0 },
    /* resumed sessions: the stored chain is verified again */
    { "resumed, no certificate listed", C_GOOD,
      U3(C_GOOD, C_INTER, C_ROOT), 1, { K_ROOT, K_INT }, R_CHAIN, 0, 0,
      REENCRYPT_OK, REENCRYPT_REV_GOOD, NULL, NULL, 0 },
    { "resumed, leaf listed now", C_GOOD, U3(C_GOOD, C_INTER, C_ROOT), 1,
      { K_ROOT, K_INT_GOOD }, R_CHAIN, 0, 0, REENCRYPT_ERR_REVOKED,
      REENCRYPT_REV_REVOKED, NULL, GOOD_ID " revoked at ", 0 },
    { "resumed, CRL past its nextUpdate now", C_GOOD,
      U3(C_GOOD, C_INTER, C_ROOT), 1, { K_ROOT, K_INT_EXPIRED }, R_LEAF, 0,
      0, REENCRYPT_ERR_CRL_EXPIRED, REENCRYPT_REV_CRL_EXPIRED, NULL, NULL,
      0 },
    { "resumed, Off", C_GOOD, U3(C_GOOD, C_INTER, C_ROOT), 1,
      { K_INT_GOOD }, R_OFF, 0, 0, REENCRYPT_OK, REENCRYPT_REV_NOT_CHECKED,
      NULL, NULL, 0 },
    /* resumed under the CRLs its chain passed (validated == 2): nothing
     * to verify again while they are current; the leaf listed in this
     * set shows that no new verification ran */
    { "resumed, same CRLs, current", C_GOOD, U3(C_GOOD, C_INTER, C_ROOT),
      2, { K_ROOT, K_INT_GOOD }, R_CHAIN, 0, 0, REENCRYPT_OK,
      REENCRYPT_REV_GOOD, NULL, NULL, 0 },
    { "resumed, same CRLs, one past its nextUpdate", C_GOOD,
      U3(C_GOOD, C_INTER, C_ROOT), 2, { K_ROOT, K_INT_EXPIRED }, R_LEAF, 0,
      0, REENCRYPT_ERR_CRL_EXPIRED, REENCRYPT_REV_CRL_EXPIRED, NULL, NULL,
      0 },
    { "resumed, same CRLs, NoCRLForCertOK: verified again", C_GOOD,
      U3(C_GOOD, C_INTER, C_ROOT), 2, { K_ROOT, K_INT_GOOD }, R_CHAIN, 1,
      0, REENCRYPT_ERR_REVOKED, REENCRYPT_REV_REVOKED, NULL, NULL, 0 },
};

static const char *crl_case(apr_pool_t *p, const crl_case_t *c)
{
    reencrypt_check_t chk;
    reencrypt_verdict_t v;
    STACK_OF(X509) *unt = NULL;
    STACK_OF(X509_CRL) *set = sk_X509_CRL_new_null();
    const int *u;
    reencrypt_reason_e r;

    memset(&chk, 0, sizeof(chk));
    chk.anchors = anchors[A_ROOT];
    chk.depth = 4;
    chk.names = list_of(p, "good.test");
    chk.now = NOW;
    chk.clock_skew = c->skew;
    chk.revocation = c->mode;
    chk.no_crl_ok = c->no_crl_ok;
    for (u = c->crls; *u; u++) {
        sk_X509_CRL_push(set, crls[*u]);
    }
    chk.crls = set;
    if (c->untrusted[0]) {
        unt = sk_X509_new_null();
        for (u = c->untrusted; *u; u++) {
            sk_X509_push(unt, certs[*u]);
        }
    }
    if (c->validated) {
        chk.validated = unt;
        chk.crls_unchanged = c->validated == 2;
    }
    for (u = c->crls; *u; u++) {
        time_t t = reencrypt_asn1_time_t(X509_CRL_get0_nextUpdate(crls[*u]));

        if (t && (!chk.crls_next_update || t < chk.crls_next_update)) {
            chk.crls_next_update = t;
        }
    }
    r = reencrypt_verify(p, &chk, certs[c->leaf],
                         c->validated ? NULL : unt, &v);
    sk_X509_free(unt);
    sk_X509_CRL_free(set);
    if (r != c->reason) {
        return apr_psprintf(p, "reason: got %s, want %s (expected %s; "
                            "seen %s)", reencrypt_reason_token(r),
                            reencrypt_reason_token(c->reason),
                            q(p, v.expected), q(p, v.seen));
    }
    WANT_STR("revocation", reencrypt_revocation_token(v.revocation),
             reencrypt_revocation_token(c->state));
    if (c->expected) {
        WANT_STR("expected", v.expected, c->expected);
    }
    if (c->seen_has) {
        WANT_HAS("seen", v.seen, c->seen_has);
    }
    WANT_INT("skew_used", v.skew_used, c->skew_used);
    return NULL;
}

WALK_TEST(test_verify_crls, "verify_crls", crl_cases, crl_case)

/* reencrypt_check_init: every value of a policy lands in the check
 * that the handshakes and apachectl -t -D REENCRYPT_PROBE run, the
 * defaults where the policy sets nothing. */
static void test_check_init(void **state)
{
    apr_pool_t *p = *state;
    reencrypt_policy_t pol;
    reencrypt_check_t chk;
    reencrypt_anchors_t a = { "/a.pem", NULL, 1, { 0 } };
    reencrypt_crls_t crls = { 0 };
    apr_array_header_t *names = apr_array_make(p, 1, sizeof(const char *));
    apr_array_header_t *pins = apr_array_make(p, 1, sizeof(reencrypt_pin_t));
    STACK_OF(X509) *validated = sk_X509_new_null();

    APR_ARRAY_PUSH(names, const char *) = "good.test";
    reencrypt_policy_init(&pol);
    memset(&chk, 0x5a, sizeof(chk));
    reencrypt_check_init(&chk, &pol, names, 1, 1000, NULL);
    assert_null(chk.anchors);
    assert_int_equal(chk.depth, REENCRYPT_DEPTH_DEFAULT);
    assert_ptr_equal(chk.names, names);         /* CheckName On */
    assert_int_equal(chk.names_from_sni, 1);
    assert_null(chk.pins);
    assert_int_equal(chk.pin_chain, 0);
    assert_int_equal(chk.pin_only, 0);
    assert_int_equal(chk.refuse_within, 0);
    assert_int_equal(chk.clock_skew, 0);
    assert_int_equal(chk.revocation, REENCRYPT_REVOCATION_OFF);
    assert_int_equal(chk.no_crl_ok, 0);
    assert_null(chk.crls);
    assert_int_equal(chk.crls_unchanged, 0);
    assert_int_equal(chk.now, 1000);
    assert_null(chk.validated);
    assert_int_equal(chk.want_chain, 1);

    pol.engine = 1;
    pol.anchors = &a;
    pol.verify_depth = 2;
    pol.check_name = 0;
    pol.pins = pins;
    pol.pin_scope = REENCRYPT_PIN_SCOPE_CHAIN;
    pol.trust = REENCRYPT_TRUST_PIN_ONLY;
    pol.refuse_within = 86400;
    pol.clock_skew = 60;
    crls.all = sk_X509_CRL_new_null();
    crls.soonest_next_update = 5000;
    pol.crls = &crls;
    pol.revocation = REENCRYPT_REVOCATION_LEAF;
    pol.no_crl_ok = 1;
    reencrypt_check_init(&chk, &pol, names, 0, 2000, validated);
    assert_ptr_equal(chk.anchors, &a);
    assert_int_equal(chk.depth, 2);
    assert_null(chk.names);                     /* CheckName Off */
    assert_ptr_equal(chk.pins, pins);
    assert_int_equal(chk.pin_chain, 1);
    assert_int_equal(chk.pin_only, 1);
    assert_int_equal(chk.refuse_within, 86400);
    assert_int_equal(chk.clock_skew, 60);
    assert_int_equal(chk.revocation, REENCRYPT_REVOCATION_LEAF);
    assert_int_equal(chk.no_crl_ok, 1);
    assert_ptr_equal(chk.crls, crls.all);
    assert_int_equal(chk.crls_next_update, 5000);
    assert_int_equal(chk.crls_unchanged, 1);   /* a stored chain */
    assert_ptr_equal(chk.validated, validated);
    assert_int_equal(chk.want_chain, 0);
    sk_X509_CRL_free(crls.all);
    sk_X509_free(validated);
}

static void test_revocation_tokens(void **state)
{
    static const char *const want[] = {
        "not-checked", "good", "no-crl", "revoked", "crl-expired",
        "crl-missing", "crl-invalid"
    };
    size_t i;

    (void)state;
    for (i = 0; i < N_ELEMS(want); i++) {
        assert_string_equal(reencrypt_revocation_token(
                                (reencrypt_revocation_state_e)i), want[i]);
    }
    assert_string_equal(reencrypt_revocation_token(
                            (reencrypt_revocation_state_e)99), "unknown");
}

/* ------------------------------------------------------------------ */
/* reencrypt_cert_matches                                              */

typedef struct {
    int cert;                    /* C_NONE: NULL */
    const char *name;
    int match;
} cm_case_t;

static const cm_case_t cm_cases[] = {
    { C_V6, "2001:db8::1", 1 },
    { C_V6, "[2001:db8::1]", 1 },
    { C_V6, "2001:DB8:0:0:0:0:0:1", 1 },
    { C_V6, "::1", 1 },
    { C_V6, "[::1]", 1 },
    { C_V6, "0:0:0:0:0:0:0:1", 1 },
    { C_V6, "v6.test", 1 },
    { C_V6, "2001:db8::2", 0 },
    { C_V6, "127.0.0.1", 0 },
    { C_V6, "::", 0 },
    { C_GOOD, "127.0.0.1", 1 },
    { C_GOOD, "[127.0.0.1]", 0 },
    { C_GOOD, "::ffff:127.0.0.1", 0 },
    { C_GOOD, "::1", 0 },
    { C_GOOD, "127.0.0.01", 0 },
    { C_GOOD, "good.test", 1 },
    { C_GOOD, "GOOD.TEST", 1 },
    { C_GOOD, "good.test.", 1 },
    { C_GOOD, "x.good.test", 0 },
    { C_GOOD, "", 0 },
    { C_GOOD, NULL, 0 },
    { C_WILD, "x.wild.test", 1 },
    { C_WILD, "wild.test", 0 },
    { C_WILD, "x.y.wild.test", 0 },
    { C_WILD, "*.wild.test", 1 },
    { C_CN_ONLY, "good.test", 0 },
    { C_MANY, "n11.test", 1 },
    { C_MANY, "192.0.2.9", 0 },
    { C_MISC, "misc.test", 1 },
    { C_MISC, "admin@misc.test", 0 },
    { C_MISC, "https://misc.test/", 0 },
    { C_NUL, "good.test", 0 },
    { C_CTRL, "good.test", 0 },
    { C_NONE, "good.test", 0 },
};

static const char *cm_case(apr_pool_t *p, const cm_case_t *c)
{
    WANT_INT("match", reencrypt_cert_matches(c->cert ? certs[c->cert] : NULL,
                                             c->name) != 0, c->match);
    return NULL;
}

static void test_cert_matches(void **state)
{
    apr_pool_t *p = *state;
    walk_t w;
    size_t i;

    walk_start(&w, "cert_matches");
    for (i = 0; i < N_ELEMS(cm_cases); i++) {
        walk_case(&w, (int)i,
                  apr_psprintf(p, "%s vs %s",
                               cm_cases[i].cert
                               ? cert_defs[cm_cases[i].cert].cn : "NULL",
                               q(p, cm_cases[i].name)),
                  NULL, cm_case(p, &cm_cases[i]));
    }
    walk_end(&w);
}

/* ------------------------------------------------------------------ */
/* reencrypt_san_str                                                   */

typedef struct {
    int cert;
    int max;
    const char *want;            /* exact; NULL: see not */
    const char *not;             /* must not be this */
    int no_ctrl;                 /* must hold no control character */
    const char *defect;
} san_case_t;

#define MANY10 "DNS:n1.test, DNS:n2.test, DNS:n3.test, DNS:n4.test, "     \
               "DNS:n5.test, DNS:n6.test, DNS:n7.test, DNS:n8.test, "     \
               "DNS:n9.test, DNS:n10.test"

static const san_case_t san_cases[] = {
    { C_GOOD, 10, GOOD_SANS, NULL, 0, NULL },
    { C_GOOD, 2, GOOD_SANS, NULL, 0, NULL },
    { C_GOOD, 1, "DNS:good.test, ... (2 in all)", NULL, 0, NULL },
    { C_WILD, 10, "DNS:*.wild.test", NULL, 0, NULL },
    { C_V6, 10, "DNS:v6.test, IP:2001:db8::1, IP:::1", NULL, 0, NULL },
    { C_CN_ONLY, 10, "no subjectAltName", NULL, 0, NULL },
    { C_ROOT, 10, "no subjectAltName", NULL, 0, NULL },
    { C_MANY, 12, MANY10 ", DNS:n11.test, DNS:192.0.2.9", NULL, 0, NULL },
    { C_MANY, 11, MANY10 ", DNS:n11.test, ... (12 in all)", NULL, 0, NULL },
    { C_MANY, 10, MANY10 ", ... (12 in all)", NULL, 0, NULL },
    { C_MANY, 3, "DNS:n1.test, DNS:n2.test, DNS:n3.test, ... (12 in all)",
      NULL, 0, NULL },
    { C_MISC, 10, "URI:https://misc.test/, email:(...), DNS:misc.test",
      NULL, 0, NULL },
    { C_GOOD, 0, "... (2 in all)", NULL, 0, NULL },
    /* the log must not show a name with a NUL as the name before it */
    { C_NUL, 10, "DNS:good.test\\x00.evil.test", NULL, 0, NULL },
};

static const char *san_case(apr_pool_t *p, const san_case_t *c)
{
    const char *s = reencrypt_san_str(p, certs[c->cert], c->max);

    if (c->want) {
        WANT_STR("san", s, c->want);
    }
    if (c->not && str_same(s, c->not)) {
        return apr_psprintf(p, "san: got %s", q(p, s));
    }
    if (c->no_ctrl) {
        const char *ch;

        for (ch = s; ch && *ch; ch++) {
            if ((unsigned char)*ch < 0x20 || *ch == 0x7f) {
                return apr_psprintf(p, "san: control character 0x%02x at "
                                    "offset %d of %s", (unsigned char)*ch,
                                    (int)(ch - s), q(p, s));
            }
        }
    }
    return NULL;
}

static void test_san_str(void **state)
{
    apr_pool_t *p = *state;
    walk_t w;
    size_t i;

    walk_start(&w, "san_str");
    for (i = 0; i < N_ELEMS(san_cases); i++) {
        walk_case(&w, (int)i,
                  apr_psprintf(p, "%s, max %d",
                               cert_defs[san_cases[i].cert].cn,
                               san_cases[i].max),
                  san_cases[i].defect, san_case(p, &san_cases[i]));
    }
    walk_end(&w);
}

/* ------------------------------------------------------------------ */
/* Reason tokens and X509 error codes                                  */

typedef struct {
    reencrypt_reason_e reason;
    const char *token;
    int x509_error;
} reason_case_t;

static const reason_case_t reason_cases[] = {
    { REENCRYPT_OK, "ok", X509_V_OK },
    { REENCRYPT_ERR_NO_CERT, "no-certificate", X509_V_ERR_UNSPECIFIED },
    { REENCRYPT_ERR_UNTRUSTED, "untrusted-chain",
      X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY },
    { REENCRYPT_ERR_NOT_YET_VALID, "not-yet-valid",
      X509_V_ERR_CERT_NOT_YET_VALID },
    { REENCRYPT_ERR_EXPIRED, "expired", X509_V_ERR_CERT_HAS_EXPIRED },
    { REENCRYPT_ERR_DEPTH, "depth-exceeded", X509_V_ERR_CERT_CHAIN_TOO_LONG },
    { REENCRYPT_ERR_NAME, "name-mismatch", X509_V_ERR_HOSTNAME_MISMATCH },
    { REENCRYPT_ERR_REVOKED, "revoked", X509_V_ERR_CERT_REVOKED },
    { REENCRYPT_ERR_CRL_EXPIRED, "crl-expired", X509_V_ERR_CRL_HAS_EXPIRED },
    { REENCRYPT_ERR_CRL_MISSING, "crl-missing", X509_V_ERR_UNABLE_TO_GET_CRL },
    { REENCRYPT_ERR_CRL_INVALID, "crl-invalid",
      X509_V_ERR_CRL_SIGNATURE_FAILURE },
    { (reencrypt_reason_e)999, "unknown", X509_V_ERR_UNSPECIFIED },
    { (reencrypt_reason_e)-1, "unknown", X509_V_ERR_UNSPECIFIED },
};

static const char *reason_case(apr_pool_t *p, const reason_case_t *c)
{
    WANT_STR("token", reencrypt_reason_token(c->reason), c->token);
    WANT_INT("x509 error", reencrypt_reason_x509_error(c->reason),
             c->x509_error);
    return NULL;
}

static void test_reason_tokens(void **state)
{
    apr_pool_t *p = *state;
    int r, s;

    WALK_TABLE_BY("reason_tokens", reason_cases, token, reason_case, p);

    /* every reason has its own token of lower-case words and hyphens;
     * the refusals have a non-zero X509 error */
    for (r = REENCRYPT_OK; r <= (int)REENCRYPT_ERR_NAME; r++) {
        const char *t = reencrypt_reason_token((reencrypt_reason_e)r);

        assert_string_not_equal(t, "unknown");
        assert_int_equal(strspn(t, "abcdefghijklmnopqrstuvwxyz-"),
                         strlen(t));
        for (s = REENCRYPT_OK; s < r; s++) {
            assert_string_not_equal(t,
                reencrypt_reason_token((reencrypt_reason_e)s));
        }
        if (r != REENCRYPT_OK) {
            assert_int_not_equal(
                reencrypt_reason_x509_error((reencrypt_reason_e)r),
                X509_V_OK);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Time and name formatting                                            */

typedef struct {
    long long t;
    const char *want;
} time_case_t;

static const time_case_t time_cases[] = {
    { 0, "1970-01-01T00:00:00Z" },
    { 1767225600LL, "2026-01-01T00:00:00Z" },
    { 1709210096LL, "2024-02-29T12:34:56Z" },
    { 946684799LL, "1999-12-31T23:59:59Z" },
    { 2524608000LL, "2050-01-01T00:00:00Z" },    /* GeneralizedTime */
    { 4102444799LL, "2099-12-31T23:59:59Z" },
};

static const char *time_case(apr_pool_t *p, const time_case_t *c)
{
    ASN1_TIME *a = ASN1_TIME_set(NULL, (time_t)c->t);
    const char *s;

    WANT_STR("time_str", reencrypt_time_str(p, (time_t)c->t), c->want);
    if (!a) {
        return "ASN1_TIME_set failed";
    }
    s = reencrypt_asn1_time_str(p, a);
    ASN1_TIME_free(a);
    WANT_STR("asn1_time_str", s, c->want);
    return NULL;
}

static void test_time_str(void **state)
{
    apr_pool_t *p = *state;

    WALK_TABLE_BY("time_str", time_cases, want, time_case, p);
    assert_string_equal(reencrypt_asn1_time_str(p, NULL), "(invalid time)");
}

typedef struct {
    const char *entries[4][2];   /* field, value; in DER order */
    const char *want;
} name_case_t;

static const name_case_t name_cases[] = {
    { { { "CN", "good.test" } }, "CN=good.test" },
    { { { "C", "DE" }, { "O", "Example" }, { "CN", "good.test" } },
      "CN=good.test,O=Example,C=DE" },
    { { { "O", "Example, Inc." }, { "CN", "a+b" } },
      "CN=a\\+b,O=Example\\, Inc." },
    { { { "O", "B\xc3\xbc" "cher" }, { "CN", "xn--bcher-kva.example" } },
      "CN=xn--bcher-kva.example,O=B\xc3\xbc" "cher" },
    /* control characters are escaped: a subject cannot forge log lines */
    { { { "CN", "evil\nRE00014: forged" } }, "CN=evil\\0ARE00014: forged" },
    { { { NULL, NULL } }, "(empty name)" },
};

static const char *name_case(apr_pool_t *p, const name_case_t *c)
{
    X509_NAME *n = X509_NAME_new();
    const char *s;
    int i;

    if (!n) {
        return "X509_NAME_new failed";
    }
    for (i = 0; i < 4 && c->entries[i][0]; i++) {
        if (!X509_NAME_add_entry_by_txt(n, c->entries[i][0], MBSTRING_UTF8,
                (const unsigned char *)c->entries[i][1], -1, -1, 0)) {
            X509_NAME_free(n);
            return "cannot build the name";
        }
    }
    s = reencrypt_name_str(p, n);
    X509_NAME_free(n);
    WANT_STR("name", s, c->want);
    return NULL;
}

static void test_name_str(void **state)
{
    apr_pool_t *p = *state;

    WALK_TABLE_BY("name_str", name_cases, want, name_case, p);
    assert_string_equal(reencrypt_name_str(p, NULL), "(no name)");
}

/* ------------------------------------------------------------------ */

#define T(f) cmocka_unit_test_setup_teardown(f, setup_pool, teardown_pool)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_anchors_load),
        T(test_anchors_digest),
        T(test_digest_pem_certs),
        T(test_verify),
        T(test_crl_load),
        T(test_crls_add),
        T(test_unmanage),
        T(test_crl_info),
        T(test_verify_crls),
        T(test_revocation_tokens),
        T(test_check_init),
        T(test_cert_matches),
        T(test_san_str),
        T(test_reason_tokens),
        T(test_time_str),
        T(test_name_str),
    };
    int rc;

    if (apr_initialize() != APR_SUCCESS) {
        fprintf(stderr, "apr_initialize failed\n");
        return 1;
    }
    rc = cmocka_run_group_tests_name("reencrypt_verify", tests, group_setup,
                                     group_teardown);
    apr_terminate();
    return rc;
}
