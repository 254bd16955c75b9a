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
 * Unit tests of reencrypt_staple.c: OCSP responses as backends staple
 * them, built with OpenSSL for the leaf of the TLS fixture and its
 * intermediate CA, checked by reencrypt_staple_check(); and the verdict
 * of each staple state under Verify and Require.
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

#include <openssl/ocsp.h>
#include <openssl/ssl.h>

#include "reencrypt_staple.h"
#include "unit_walk.h"
#include "tls_fixture.h"
#include "ocsp_build.h"

static tls_fixture_t fx;
static time_t now;

/* Responders: certified by the intermediate for OCSP signing, the same
 * without the extended key usage, for OCSP signing but expired, a
 * stranger that certified itself, and one certified for serverAuth. */
enum { R_EKU, R_NO_EKU, R_EXPIRED, R_STRANGER, R_SERVER_EKU, R_COUNT };
static X509 *resp_cert[R_COUNT];
static EVP_PKEY *resp_key[R_COUNT];
/* another leaf of the intermediate: a response about it is not about
 * the fixture's leaf */
static X509 *other_leaf;

static int group_setup(void **state)
{
    int i;

    (void)state;
    now = time(NULL);
    if (!fixture_make(&fx)) {
        return -1;
    }
    for (i = 0; i < R_COUNT; i++) {
        if (!(resp_key[i] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"))) {
            return -1;
        }
    }
    resp_cert[R_EKU] = ocsp_cert("Test OCSP", resp_key[R_EKU], fx.cert[1],
                                 fx.key[1], "OCSPSigning", 501, now, -3600,
                                 86400);
    resp_cert[R_NO_EKU] = ocsp_cert("Test OCSP no EKU", resp_key[R_NO_EKU],
                                    fx.cert[1], fx.key[1], NULL, 502, now,
                                    -3600, 86400);
    resp_cert[R_EXPIRED] = ocsp_cert("Test OCSP expired",
                                     resp_key[R_EXPIRED], fx.cert[1],
                                     fx.key[1], "OCSPSigning", 503, now,
                                     -86400, -3600);
    resp_cert[R_STRANGER] = ocsp_cert("Test Intermediate CA",
                                      resp_key[R_STRANGER], NULL, NULL,
                                      "OCSPSigning", 504, now, -3600, 86400);
    resp_cert[R_SERVER_EKU] = ocsp_cert("Test OCSP serverAuth",
                                        resp_key[R_SERVER_EKU], fx.cert[1],
                                        fx.key[1], "serverAuth", 506, now,
                                        -3600, 86400);
    other_leaf = ocsp_cert("other.test", resp_key[R_EKU], fx.cert[1],
                           fx.key[1], NULL, 505, now, -3600, 86400);
    for (i = 0; i < R_COUNT; i++) {
        if (!resp_cert[i]) {
            return -1;
        }
    }
    return other_leaf ? 0 : -1;
}

static int group_teardown(void **state)
{
    int i;

    (void)state;
    for (i = 0; i < R_COUNT; i++) {
        X509_free(resp_cert[i]);
        EVP_PKEY_free(resp_key[i]);
    }
    X509_free(other_leaf);
    fixture_free(&fx);
    return 0;
}

/* Who signs a case's response */
enum { S_ISSUER, S_EKU, S_NO_EKU, S_EXPIRED, S_STRANGER, S_SERVER_EKU,
       S_ROOT };

/* What a case changes in the bytes or the inputs */
enum {
    M_NONE,
    M_ABSENT,         /* no staple at all */
    M_GARBAGE,        /* bytes that are no OCSP response */
    M_TRAILING,       /* a good response with a byte after it */
    M_TAMPERED,       /* a good response with its last byte changed */
    M_NO_ISSUER,      /* the issuer is not known */
    M_OTHER_LEAF      /* the response is about another certificate */
};

typedef struct {
    const char *label;
    int signer;
    int include_signer;
    int status;
    int reason;
    long this_off, next_off;
    int sha256_id;
    int resp_status;
    int mutate;
    apr_int64_t skew;
    reencrypt_staple_state_e want;
    int want_skew_used;
    const char *seen_has;     /* in the line for the log */
} staple_case_t;

#define GOOD V_OCSP_CERTSTATUS_GOOD
#define REVOKED V_OCSP_CERTSTATUS_REVOKED
#define UNKNOWN V_OCSP_CERTSTATUS_UNKNOWN
#define OK_RESP OCSP_RESPONSE_STATUS_SUCCESSFUL

static const staple_case_t staple_cases[] = {
    { "good, signed by the issuer", S_ISSUER, 0, GOOD, -1, -60, 3600, 0,
      OK_RESP, M_NONE, 0, REENCRYPT_STAPLE_GOOD, 0, ": good, thisUpdate=" },
    { "good, with the issuer's certificate in it", S_ISSUER, 1, GOOD, -1,
      -60, 3600, 0, OK_RESP, M_NONE, 0, REENCRYPT_STAPLE_GOOD, 0,
      "CN=good.test serial 0x" },
    { "good, certificate ID in SHA-256", S_ISSUER, 0, GOOD, -1, -60, 3600,
      1, OK_RESP, M_NONE, 0, REENCRYPT_STAPLE_GOOD, 0, ": good" },
    { "good, no nextUpdate", S_ISSUER, 0, GOOD, -1, -60, OCSP_NO_NEXT, 0,
      OK_RESP, M_NONE, 0, REENCRYPT_STAPLE_GOOD, 0, "nextUpdate=(none)" },
    { "good, by a responder certified for OCSP signing", S_EKU, 1, GOOD, -1,
      -60, 3600, 0, OK_RESP, M_NONE, 0, REENCRYPT_STAPLE_GOOD, 0, ": good" },
    { "responder certified without OCSPSigning", S_NO_EKU, 1, GOOD, -1, -60,
      3600, 0, OK_RESP, M_NONE, 0, REENCRYPT_STAPLE_INVALID, 0,
      "not for OCSP signing" },
    { "responder certified for serverAuth only", S_SERVER_EKU, 1, GOOD, -1,
      -60, 3600, 0, OK_RESP, M_NONE, 0, REENCRYPT_STAPLE_INVALID, 0,
      "not for OCSP signing" },
    { "responder certificate expired", S_EXPIRED, 1, GOOD, -1, -60, 3600, 0,
      OK_RESP, M_NONE, 0, REENCRYPT_STAPLE_INVALID, 0, "valid from" },
    { "signed by a stranger named like the issuer", S_STRANGER, 1, GOOD, -1,
      -60, 3600, 0, OK_RESP, M_NONE, 0, REENCRYPT_STAPLE_INVALID, 0,
      "signature does not verify" },
    { "signed by the root, not the issuer", S_ROOT, 1, GOOD, -1, -60, 3600,
      0, OK_RESP, M_NONE, 0, REENCRYPT_STAPLE_INVALID, 0,
      "neither the issuer nor certified by it" },
    { "signer not in the response, not the issuer", S_EKU, 0, GOOD, -1, -60,
      3600, 0, OK_RESP, M_NONE, 0, REENCRYPT_STAPLE_INVALID, 0,
      "signer is neither in it nor the issuer" },
    { "revoked, keyCompromise", S_ISSUER, 0, REVOKED,
      OCSP_REVOKED_STATUS_KEYCOMPROMISE, -60, 3600, 0, OK_RESP, M_NONE, 0,
      REENCRYPT_STAPLE_REVOKED, 0, "(reason keyCompromise)" },
    { "revoked, no reason", S_ISSUER, 0, REVOKED, -1, -60, 3600, 0, OK_RESP,
      M_NONE, 0, REENCRYPT_STAPLE_REVOKED, 0, ": revoked at " },
    { "unknown", S_ISSUER, 0, UNKNOWN, -1, -60, 3600, 0, OK_RESP, M_NONE, 0,
      REENCRYPT_STAPLE_UNKNOWN, 0, "unknown to the responder" },
    { "nextUpdate past", S_ISSUER, 0, GOOD, -1, -7200, -3600, 0, OK_RESP,
      M_NONE, 0, REENCRYPT_STAPLE_EXPIRED, 0, ", past" },
    { "nextUpdate past, within the skew", S_ISSUER, 0, GOOD, -1, -7200,
      -3600, 0, OK_RESP, M_NONE, 7200, REENCRYPT_STAPLE_GOOD, 1, ": good" },
    { "revoked and expired: expired first", S_ISSUER, 0, REVOKED, -1, -7200,
      -3600, 0, OK_RESP, M_NONE, 0, REENCRYPT_STAPLE_EXPIRED, 0, ", past" },
    { "thisUpdate in the future", S_ISSUER, 0, GOOD, -1, 3600, 7200, 0,
      OK_RESP, M_NONE, 0, REENCRYPT_STAPLE_INVALID, 0, "in the future" },
    { "thisUpdate in the future, within the skew", S_ISSUER, 0, GOOD, -1,
      600, 7200, 0, OK_RESP, M_NONE, 900, REENCRYPT_STAPLE_GOOD, 1,
      ": good" },
    { "tryLater", S_ISSUER, 0, GOOD, -1, 0, 0, 0,
      OCSP_RESPONSE_STATUS_TRYLATER, M_NONE, 0, REENCRYPT_STAPLE_ABSENT, 0,
      "responseStatus trylater" },
    { "internalError", S_ISSUER, 0, GOOD, -1, 0, 0, 0,
      OCSP_RESPONSE_STATUS_INTERNALERROR, M_NONE, 0,
      REENCRYPT_STAPLE_ABSENT, 0, "without a status" },
    { "no staple", S_ISSUER, 0, GOOD, -1, -60, 3600, 0, OK_RESP, M_ABSENT,
      0, REENCRYPT_STAPLE_ABSENT, 0, "no OCSP staple" },
    { "garbage", S_ISSUER, 0, GOOD, -1, -60, 3600, 0, OK_RESP, M_GARBAGE, 0,
      REENCRYPT_STAPLE_INVALID, 0, "not one OCSP response" },
    { "a byte after the response", S_ISSUER, 0, GOOD, -1, -60, 3600, 0,
      OK_RESP, M_TRAILING, 0, REENCRYPT_STAPLE_INVALID, 0,
      "not one OCSP response" },
    { "signature changed", S_ISSUER, 0, GOOD, -1, -60, 3600, 0, OK_RESP,
      M_TAMPERED, 0, REENCRYPT_STAPLE_INVALID, 0, "" },
    { "issuer not known", S_ISSUER, 0, GOOD, -1, -60, 3600, 0, OK_RESP,
      M_NO_ISSUER, 0, REENCRYPT_STAPLE_INVALID, 0, "issuer is not known" },
    { "about another certificate", S_ISSUER, 0, GOOD, -1, -60, 3600, 0,
      OK_RESP, M_OTHER_LEAF, 0, REENCRYPT_STAPLE_INVALID, 0,
      ",CN=good.test serial 0x1000 (issued by CN=Test Intermediate CA)" },
};

static const char *staple_case(apr_pool_t *p, const staple_case_t *c)
{
    static const char garbage[] = "\x30\x03\x0a\x01\x00 not OCSP";
    ocsp_spec_t spec;
    reencrypt_staple_t out;
    unsigned char *der = NULL, *bytes;
    int len = 0;
    apr_size_t n;
    X509 *issuer = fx.cert[1];

    memset(&spec, 0, sizeof(spec));
    spec.leaf = c->mutate == M_OTHER_LEAF ? other_leaf : fx.cert[0];
    spec.issuer = fx.cert[1];
    switch (c->signer) {
    case S_ISSUER:
        spec.signer = fx.cert[1];
        spec.signer_key = fx.key[1];
        break;
    case S_ROOT:
        spec.signer = fx.cert[2];
        spec.signer_key = fx.key[2];
        break;
    default:
        spec.signer = resp_cert[c->signer - S_EKU];
        spec.signer_key = resp_key[c->signer - S_EKU];
        break;
    }
    spec.include_signer = c->include_signer;
    spec.status = c->status;
    spec.reason = c->reason;
    spec.this_off = c->this_off;
    spec.next_off = c->next_off;
    spec.now = now;
    spec.id_md = c->sha256_id ? EVP_sha256() : NULL;
    spec.resp_status = c->resp_status;

    der = ocsp_build(&spec, &len);
    if (!der) {
        return "could not build the response";
    }
    bytes = apr_pmemdup(p, der, (apr_size_t)len);
    n = (apr_size_t)len;
    OPENSSL_free(der);
    switch (c->mutate) {
    case M_ABSENT:
        bytes = NULL;
        n = 0;
        break;
    case M_GARBAGE:
        bytes = (unsigned char *)apr_pmemdup(p, garbage, sizeof(garbage));
        n = sizeof(garbage);
        break;
    case M_TRAILING: {
        unsigned char *more = apr_palloc(p, n + 1);

        memcpy(more, bytes, n);
        more[n++] = 0;
        bytes = more;
        break;
    }
    case M_TAMPERED:
        bytes[n - 1] ^= 0x01;
        break;
    case M_NO_ISSUER:
        issuer = NULL;
        break;
    default:
        break;
    }
    reencrypt_staple_check(p, bytes, n, fx.cert[0], issuer, now, c->skew,
                           &out);
    WANT_STR("state", reencrypt_staple_token(out.state),
             reencrypt_staple_token(c->want));
    WANT_INT("skew used", out.skew_used, c->want_skew_used);
    WANT_HAS("seen", out.seen, c->seen_has);
    WANT_HAS("expected", out.expected, "saying good");
    if (c->want == REENCRYPT_STAPLE_GOOD) {
        WANT_INT("thisUpdate", out.this_update, now + c->this_off);
        WANT_INT("nextUpdate", out.next_update,
                 c->next_off == OCSP_NO_NEXT ? 0 : now + c->next_off);
    }
    return NULL;
}

static void test_staple_check(void **state)
{
    apr_pool_t *p = *state;
    walk_t w;
    size_t i;

    walk_start(&w, "staple_cases");
    for (i = 0; i < N_ELEMS(staple_cases); i++) {
        apr_pool_t *cp;

        apr_pool_create(&cp, p);
        walk_case(&w, (int)i, staple_cases[i].label, NULL,
                  staple_case(cp, &staple_cases[i]));
        apr_pool_destroy(cp);
    }
    walk_end(&w);
}

/* Every state under each mode: what passes and what refuses, and why */
static void test_staple_reason(void **state)
{
    static const struct {
        reencrypt_staple_state_e st;
        reencrypt_reason_e off, verify, require;
    } rows[] = {
        { REENCRYPT_STAPLE_GOOD, REENCRYPT_OK, REENCRYPT_OK, REENCRYPT_OK },
        { REENCRYPT_STAPLE_RESUMED, REENCRYPT_OK, REENCRYPT_OK,
          REENCRYPT_OK },
        { REENCRYPT_STAPLE_REVOKED, REENCRYPT_OK,
          REENCRYPT_ERR_STAPLE_REVOKED, REENCRYPT_ERR_STAPLE_REVOKED },
        { REENCRYPT_STAPLE_EXPIRED, REENCRYPT_OK,
          REENCRYPT_ERR_STAPLE_EXPIRED, REENCRYPT_ERR_STAPLE_EXPIRED },
        { REENCRYPT_STAPLE_INVALID, REENCRYPT_OK,
          REENCRYPT_ERR_STAPLE_INVALID, REENCRYPT_ERR_STAPLE_INVALID },
        { REENCRYPT_STAPLE_UNKNOWN, REENCRYPT_OK, REENCRYPT_OK,
          REENCRYPT_ERR_STAPLE_UNKNOWN },
        { REENCRYPT_STAPLE_ABSENT, REENCRYPT_OK, REENCRYPT_OK,
          REENCRYPT_ERR_STAPLE_MISSING },
        { REENCRYPT_STAPLE_NOT_CHECKED, REENCRYPT_OK, REENCRYPT_OK,
          REENCRYPT_ERR_STAPLE_MISSING },
    };
    size_t i;

    (void)state;
    for (i = 0; i < N_ELEMS(rows); i++) {
        assert_int_equal(reencrypt_staple_reason(REENCRYPT_STAPLING_OFF,
                                                 rows[i].st), rows[i].off);
        assert_int_equal(reencrypt_staple_reason(REENCRYPT_STAPLING_UNSET,
                                                 rows[i].st), rows[i].off);
        assert_int_equal(reencrypt_staple_reason(REENCRYPT_STAPLING_VERIFY,
                                                 rows[i].st), rows[i].verify);
        assert_int_equal(reencrypt_staple_reason(REENCRYPT_STAPLING_REQUIRE,
                                                 rows[i].st),
                         rows[i].require);
    }
}

/* The tokens are distinct, and so are the refusal reasons' */
static void test_staple_tokens(void **state)
{
    int a, b;

    (void)state;
    for (a = REENCRYPT_STAPLE_NOT_CHECKED; a <= REENCRYPT_STAPLE_RESUMED;
         a++) {
        for (b = a + 1; b <= REENCRYPT_STAPLE_RESUMED; b++) {
            assert_string_not_equal(
                reencrypt_staple_token((reencrypt_staple_state_e)a),
                reencrypt_staple_token((reencrypt_staple_state_e)b));
        }
    }
    assert_string_equal(reencrypt_reason_token(REENCRYPT_ERR_STAPLE_MISSING),
                        "staple-missing");
    assert_string_equal(reencrypt_reason_token(REENCRYPT_ERR_STAPLE_INVALID),
                        "staple-invalid");
}

/* The directive's argument, through its row of the policy fields */
static void test_parse_stapling(void **state)
{
    apr_pool_t *p = *state;
    const reencrypt_field_t *f = &reencrypt_fields[REENCRYPT_F_OCSP_STAPLING];
    reencrypt_policy_t pol;
    const char *err;

    reencrypt_policy_init(&pol);
    assert_int_equal(reencrypt_policy_stapling(&pol), REENCRYPT_STAPLING_OFF);
    assert_false(reencrypt_field_is_set(&pol, REENCRYPT_F_OCSP_STAPLING));
    assert_string_equal(f->directive, "ReencryptOCSPStapling");
    assert_null(reencrypt_field_parse(p, f, "require", &pol, "a.conf:3"));
    assert_int_equal(reencrypt_policy_stapling(&pol),
                     REENCRYPT_STAPLING_REQUIRE);
    assert_string_equal(pol.stapling_where, "a.conf:3");
    assert_null(reencrypt_field_parse(p, f, "Verify", &pol, "a.conf:4"));
    assert_int_equal(reencrypt_policy_stapling(&pol),
                     REENCRYPT_STAPLING_VERIFY);
    assert_null(reencrypt_field_parse(p, f, "OFF", &pol, "a.conf:5"));
    assert_int_equal(reencrypt_policy_stapling(&pol), REENCRYPT_STAPLING_OFF);
    assert_true(reencrypt_field_is_set(&pol, REENCRYPT_F_OCSP_STAPLING));
    err = reencrypt_field_parse(p, f, "must", &pol, "a.conf:6");
    assert_non_null(err);
    assert_string_equal(err, "ReencryptOCSPStapling: 'must' is not Off, "
                             "Verify or Require");
    assert_string_equal(pol.stapling_where, "a.conf:5");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_staple_check, setup_pool,
                                        teardown_pool),
        cmocka_unit_test(test_staple_reason),
        cmocka_unit_test(test_staple_tokens),
        cmocka_unit_test_setup_teardown(test_parse_stapling, setup_pool,
                                        teardown_pool),
    };

    UNIT_RUN(tests, group_setup, group_teardown);
}
