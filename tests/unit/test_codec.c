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
 * Unit tests of reencrypt_codec.c: the value of a session cache entry.
 * A real session (an in-process TLS 1.3 handshake, tls_fixture.h) and
 * its chain make an entry; it must decode to the same session, chain and
 * times, and every entry that is not exactly one (cut anywhere, bytes
 * after it, a count or a length out of range, a chain of none or too
 * many certificates, DER that is not a session or a certificate) must be
 * refused with no session and no chain left behind.
 *
 * Table-driven like the other unit tests: a failing case is printed with
 * its table, index and label, and the test fails once the whole table
 * has been walked. Each test gets a fresh APR pool.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "reencrypt_codec.h"
#include "unit_walk.h"
#include "tls_fixture.h"

static tls_fixture_t fx;

static int group_setup(void **state)
{
    (void)state;
    return fixture_make(&fx) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    fixture_free(&fx);
    return 0;
}

/* Times of the entries: whole seconds near now */
static apr_time_t validated_at, expires_at;

static unsigned char *entry_of(apr_pool_t *p, STACK_OF(X509) *chain,
                               unsigned int *len)
{
    apr_time_t now = apr_time_from_sec(apr_time_sec(apr_time_now()));

    validated_at = now - apr_time_from_sec(10);
    expires_at = now + apr_time_from_sec(3600);
    return reencrypt_codec_encode(p, fx.session, chain, validated_at,
                                  expires_at, len);
}

static int der_same_session(SSL_SESSION *a, SSL_SESSION *b)
{
    unsigned char *da = NULL, *db = NULL;
    int la = i2d_SSL_SESSION(a, &da), lb = i2d_SSL_SESSION(b, &db);
    int same = la > 0 && la == lb && !memcmp(da, db, (size_t)la);

    OPENSSL_free(da);
    OPENSSL_free(db);
    return same;
}

/* Decode blob and check the outcome: NULL when as wanted. */
static const char *decode_want(apr_pool_t *p, const unsigned char *blob,
                               unsigned int len, int want_ok,
                               STACK_OF(X509) *want_chain)
{
    SSL_SESSION *sess = (SSL_SESSION *)p;      /* must be overwritten */
    STACK_OF(X509) *chain = (STACK_OF(X509) *)p;
    apr_time_t validated = 0, expiry = 0;
    const char *host;
    int ok, i;

    ok = reencrypt_codec_decode(p, blob, len, &sess, &chain, &validated,
                                &expiry);
    if (!ok) {
        WANT_INT("decodes", ok, want_ok);
        WANT_INT("no session left", sess == NULL, 1);
        WANT_INT("no chain left", chain == NULL, 1);
        return NULL;
    }
    if (!want_ok || !sess || !chain) {
        SSL_SESSION_free(sess);
        WANT_INT("decodes", ok, want_ok);
        return "a session and a chain are wanted";
    }
    if (!der_same_session(sess, fx.session)) {
        SSL_SESSION_free(sess);
        return "another session came back";
    }
    host = apr_pstrdup(p, SSL_SESSION_get0_hostname(sess));
    SSL_SESSION_free(sess);
    WANT_STR("the session's SNI", host, "good.test");
    WANT_INT("validated", apr_time_sec(validated),
             apr_time_sec(validated_at));
    WANT_INT("expiry", apr_time_sec(expiry), apr_time_sec(expires_at));
    WANT_INT("chain length", sk_X509_num(chain), sk_X509_num(want_chain));
    for (i = 0; i < sk_X509_num(chain); i++) {
        if (X509_cmp(sk_X509_value(chain, i), sk_X509_value(want_chain, i))) {
            return apr_psprintf(p, "certificate %d differs", i);
        }
    }
    return NULL;
}

static void test_round_trip(void **state)
{
    apr_pool_t *p = *state;
    unsigned int len = 0;
    unsigned char *blob = entry_of(p, fx.chain, &len);
    const char *err;

    assert_non_null(blob);
    assert_memory_equal(blob, REENCRYPT_CODEC_MAGIC, 4);
    err = decode_want(p, blob, len, 1, fx.chain);
    if (err) {
        fail_msg("%s", err);
    }
}

/* For each of the n sizes: a chain of that many certificates is
 * encoded, and decoded to the same chain (want_ok) or refused */
static void check_chain_sizes(apr_pool_t *p, const int *sizes, size_t n,
                              int want_ok)
{
    size_t k;

    for (k = 0; k < n; k++) {
        STACK_OF(X509) *chain = sk_X509_new_null();
        unsigned int len = 0;
        unsigned char *blob;
        const char *err;
        int i;

        assert_non_null(chain);
        for (i = 0; i < sizes[k]; i++) {
            assert_true(sk_X509_push(chain, fx.cert[i % FIXTURE_CHAIN]));
        }
        blob = entry_of(p, chain, &len);
        assert_non_null(blob);
        err = decode_want(p, blob, len, want_ok, want_ok ? chain : NULL);
        sk_X509_free(chain);
        if (err) {
            fail_msg("%d certificates: %s", sizes[k], err);
        }
    }
}

/* A chain of the leaf only, and of the most certificates allowed */
static void test_round_trip_chain_sizes(void **state)
{
    int sizes[] = { 1, 2, REENCRYPT_CODEC_CHAIN_MAX };

    check_chain_sizes(*state, sizes, N_ELEMS(sizes), 1);
}

/* Cut anywhere: refused */
static void test_every_truncation(void **state)
{
    apr_pool_t *p = *state;
    unsigned int len = 0, cut;
    unsigned char *blob = entry_of(p, fx.chain, &len);
    walk_t w;

    assert_non_null(blob);
    walk_start(&w, "truncations");
    for (cut = 0; cut < len; cut++) {
        /* a copy of just the bytes left, so that reading past them shows
         * under a memory checker */
        unsigned char *part = apr_pmemdup(p, blob, cut ? cut : 1);

        walk_case(&w, (int)cut, apr_psprintf(p, "%u of %u bytes", cut, len),
                  NULL, decode_want(p, part, cut, 0, NULL));
    }
    walk_end(&w);
}

/* Anything after the entry: refused */
static void test_trailing_bytes(void **state)
{
    apr_pool_t *p = *state;
    unsigned int len = 0, extra[] = { 1, 3, 4, 100 };
    unsigned char *blob = entry_of(p, fx.chain, &len);
    walk_t w;
    size_t k;

    assert_non_null(blob);
    walk_start(&w, "trailing");
    for (k = 0; k < N_ELEMS(extra); k++) {
        unsigned char *more = apr_pcalloc(p, len + extra[k]);

        memcpy(more, blob, len);
        walk_case(&w, (int)k, apr_psprintf(p, "%u bytes more", extra[k]),
                  NULL, decode_want(p, more, len + extra[k], 0, NULL));
    }
    walk_end(&w);
}

/* ------------------------------------------------------------------ */
/* Counts and lengths out of range, garbage in place of DER            */

typedef enum {
    M_MAGIC,            /* the magic becomes "RES2" */
    M_SLEN,             /* the session length becomes value */
    M_SLEN_DELTA,       /* the session length moves by value */
    M_COUNT,            /* the certificate count becomes value */
    M_CLEN,             /* the first certificate's length becomes value */
    M_CLEN_DELTA,       /* ... moves by value */
    M_LAST_CLEN_DELTA,  /* the last certificate's length moves by value */
    M_SESSION_BYTE,     /* byte value of the session DER is flipped */
    M_SESSION_IS_CERT,  /* a certificate's DER in place of the session */
    M_CERT_IS_SESSION,  /* the session's DER in place of a certificate */
    M_CERT_BYTE,        /* byte value of the first certificate is flipped */
    M_ZEROS             /* session and certificates all zero bytes */
} mutation_e;

typedef struct {
    const char *label;
    mutation_e what;
    long value;
} mutation_case_t;

static const mutation_case_t mutation_cases[] = {
    { "magic RES2", M_MAGIC, 0 },
    { "session length 0", M_SLEN, 0 },
    { "session length 1", M_SLEN, 1 },
    { "session length 2^31", M_SLEN, 0x80000000L },
    { "session length 2^32-1", M_SLEN, 0xffffffffL },
    { "session length 2^32-4", M_SLEN, 0xfffffffcL },
    { "session length one short", M_SLEN_DELTA, -1 },
    { "session length one over", M_SLEN_DELTA, 1 },
    { "session length over the count", M_SLEN_DELTA, 4 },
    { "no certificate", M_COUNT, 0 },
    { "one certificate fewer (bytes left)", M_COUNT, FIXTURE_CHAIN - 1 },
    { "one certificate more", M_COUNT, FIXTURE_CHAIN + 1 },
    { "one more than the most", M_COUNT, REENCRYPT_CODEC_CHAIN_MAX + 1 },
    { "count 2^31", M_COUNT, 0x80000000L },
    { "count 2^32-1", M_COUNT, 0xffffffffL },
    { "certificate length 0", M_CLEN, 0 },
    { "certificate length 2^32-1", M_CLEN, 0xffffffffL },
    { "certificate length 2^31", M_CLEN, 0x80000000L },
    { "certificate length one short", M_CLEN_DELTA, -1 },
    { "certificate length one over", M_CLEN_DELTA, 1 },
    { "last certificate length one over", M_LAST_CLEN_DELTA, 1 },
    { "last certificate length one short", M_LAST_CLEN_DELTA, -1 },
    { "session DER tag", M_SESSION_BYTE, 0 },
    { "session DER length", M_SESSION_BYTE, 1 },
    { "session DER version", M_SESSION_BYTE, 4 },
    { "a certificate as the session", M_SESSION_IS_CERT, 0 },
    { "the session as a certificate", M_CERT_IS_SESSION, 0 },
    { "certificate DER tag", M_CERT_BYTE, 0 },
    { "certificate DER length", M_CERT_BYTE, 2 },
    { "all zero bytes", M_ZEROS, 0 },
};

static void put32(unsigned char *b, apr_uint32_t v)
{
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

static apr_uint32_t get32(const unsigned char *b)
{
    return ((apr_uint32_t)b[0] << 24) | ((apr_uint32_t)b[1] << 16)
           | ((apr_uint32_t)b[2] << 8) | (apr_uint32_t)b[3];
}

/* Entry of three DER parts: the session's (or other) and certificates' */
static unsigned char *entry_raw(apr_pool_t *p, const unsigned char *sder,
                                apr_uint32_t slen, unsigned char **cder,
                                const apr_uint32_t *clen, int n,
                                unsigned int *len)
{
    apr_size_t total = 16 + slen + 4;
    unsigned char *blob, *b;
    int i;

    for (i = 0; i < n; i++) {
        total += 4 + clen[i];
    }
    b = blob = apr_palloc(p, total);
    memcpy(b, REENCRYPT_CODEC_MAGIC, 4);
    put32(b + 4, (apr_uint32_t)apr_time_sec(validated_at));
    put32(b + 8, (apr_uint32_t)apr_time_sec(expires_at));
    put32(b + 12, slen);
    b += 16;
    memcpy(b, sder, slen);
    b += slen;
    put32(b, (apr_uint32_t)n);
    b += 4;
    for (i = 0; i < n; i++) {
        put32(b, clen[i]);
        memcpy(b + 4, cder[i], clen[i]);
        b += 4 + clen[i];
    }
    *len = (unsigned int)total;
    return blob;
}

static unsigned char *der_of_cert(apr_pool_t *p, X509 *x, apr_uint32_t *len)
{
    unsigned char *der = NULL, *copy;
    int l = i2d_X509(x, &der);

    copy = apr_pmemdup(p, der, (apr_size_t)l);
    OPENSSL_free(der);
    *len = (apr_uint32_t)l;
    return copy;
}

static const char *mutation_one(apr_pool_t *p, const mutation_case_t *c)
{
    unsigned int len = 0;
    unsigned char *blob = entry_of(p, fx.chain, &len);
    apr_uint32_t slen, clen0, v = (apr_uint32_t)c->value;
    unsigned char *after, *cert0, *last = NULL;
    int i;

    if (!blob) {
        return "could not encode";
    }
    slen = get32(blob + 12);
    after = blob + 16 + slen;               /* the count */
    cert0 = after + 4;                      /* first certificate's length */
    clen0 = get32(cert0);
    for (i = 0, last = cert0; i < FIXTURE_CHAIN - 1; i++) {
        last += 4 + get32(last);
    }
    switch (c->what) {
    case M_MAGIC:
        blob[3] = '2';
        break;
    case M_SLEN:
        put32(blob + 12, v);
        break;
    case M_SLEN_DELTA:
        put32(blob + 12, slen + v);
        break;
    case M_COUNT:
        put32(after, v);
        break;
    case M_CLEN:
        put32(cert0, v);
        break;
    case M_CLEN_DELTA:
        put32(cert0, clen0 + v);
        break;
    case M_LAST_CLEN_DELTA:
        put32(last, get32(last) + v);
        break;
    case M_SESSION_BYTE:
        blob[16 + c->value] ^= 0x5a;
        break;
    case M_CERT_BYTE:
        cert0[4 + c->value] ^= 0x5a;
        break;
    case M_SESSION_IS_CERT:
    case M_CERT_IS_SESSION: {
        unsigned char *cder[FIXTURE_CHAIN];
        apr_uint32_t cl[FIXTURE_CHAIN];

        for (i = 0; i < FIXTURE_CHAIN; i++) {
            cder[i] = der_of_cert(p, fx.cert[i], &cl[i]);
        }
        if (c->what == M_SESSION_IS_CERT) {
            blob = entry_raw(p, cder[0], cl[0], cder, cl, FIXTURE_CHAIN,
                             &len);
        }
        else {
            cder[1] = blob + 16;
            cl[1] = slen;
            blob = entry_raw(p, blob + 16, slen, cder, cl, FIXTURE_CHAIN,
                             &len);
        }
        break;
    }
    case M_ZEROS:
        memset(blob + 16, 0, slen);
        for (i = 0, last = cert0; i < FIXTURE_CHAIN; i++) {
            memset(last + 4, 0, get32(last));
            last += 4 + get32(last);
        }
        break;
    }
    return decode_want(p, blob, len, 0, NULL);
}

WALK_TEST(test_mutations, "mutation_cases", mutation_cases, mutation_one)

/* The encoder writes what it is given; the decoder takes 1 to
 * REENCRYPT_CODEC_CHAIN_MAX certificates only */
static void test_chain_none_or_too_many(void **state)
{
    int sizes[] = { 0, REENCRYPT_CODEC_CHAIN_MAX + 1, 40 };

    check_chain_sizes(*state, sizes, N_ELEMS(sizes), 0);
}

/* An entry longer than REENCRYPT_CODEC_MAX is not made */
static void test_encode_too_long(void **state)
{
    apr_pool_t *p = *state;
    STACK_OF(X509) *chain = sk_X509_new_null();
    unsigned int len = 0;
    int i, der = i2d_X509(fx.cert[0], NULL);

    assert_non_null(chain);
    assert_true(der > 0);
    for (i = 0; i <= REENCRYPT_CODEC_MAX / der; i++) {
        assert_true(sk_X509_push(chain, fx.cert[0]));
    }
    assert_null(entry_of(p, chain, &len));
    sk_X509_free(chain);
}

/* Decoding leaves the chain to a cleanup of the pool */
static void test_chain_tied_to_pool(void **state)
{
    apr_pool_t *p = *state, *sub = NULL;
    unsigned int len = 0;
    unsigned char *blob = entry_of(p, fx.chain, &len);
    SSL_SESSION *sess = NULL;
    STACK_OF(X509) *chain = NULL;
    apr_time_t validated, expiry;

    assert_non_null(blob);
    assert_int_equal(apr_pool_create(&sub, p), APR_SUCCESS);
    assert_int_equal(reencrypt_codec_decode(sub, blob, len, &sess, &chain,
                                            &validated, &expiry), 1);
    assert_non_null(sess);
    assert_non_null(chain);
    SSL_SESSION_free(sess);
    /* a chain freed here and again by the cleanup would crash */
    apr_pool_destroy(sub);
}

/* ------------------------------------------------------------------ */
/* Times modulo 2^32                                                   */

typedef struct {
    const char *label;
    apr_uint32_t v;
    apr_int64_t now;        /* seconds */
    apr_int64_t want;       /* seconds */
} time_case_t;

static const time_case_t time_cases[] = {
    { "same second", 1767225600u, 1767225600, 1767225600 },
    { "an hour ago", 1767222000u, 1767225600, 1767222000 },
    { "in an hour", 1767229200u, 1767225600, 1767229200 },
    { "zero in 2026: 1970", 0u, 1767225600, 0 },
    { "zero in 2100: 2106", 0u, 4102444800LL, 0x100000000LL },
    { "after the 2106 wrap, written before it", 0xfffffff0u,
      0x100000010LL, 0xfffffff0LL },
    { "before the 2106 wrap, written after it", 0x10u, 0xfffffff0LL,
      0x100000010LL },
    { "2^31 ahead is behind", 0x80000000u, 0, 0x80000000LL },
    { "just over 2^31 ahead", 0x80000001u, 0, -0x7fffffffLL },
};

static const char *time_one(apr_pool_t *p, const time_case_t *c)
{
    apr_time_t t = reencrypt_codec_u32_time(c->v, apr_time_from_sec(c->now));

    WANT_INT("seconds", apr_time_sec(t), c->want);
    return NULL;
}

WALK_TEST(test_u32_time, "time_cases", time_cases, time_one)

/* ------------------------------------------------------------------ */

#define T(f) cmocka_unit_test_setup_teardown(f, setup_pool, teardown_pool)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_round_trip),
        T(test_round_trip_chain_sizes),
        T(test_every_truncation),
        T(test_trailing_bytes),
        T(test_mutations),
        T(test_chain_none_or_too_many),
        T(test_encode_too_long),
        T(test_chain_tied_to_pool),
        T(test_u32_time),
    };

    UNIT_RUN(tests, group_setup, group_teardown);
}
