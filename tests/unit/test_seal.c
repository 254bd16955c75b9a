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
 * Unit tests of reencrypt_seal.c: key files (ReencryptSessionCacheKey)
 * and the sealing of session cache entries: what opens, and everything
 * that must not (another key, another cache key, any altered byte, a
 * truncated or unsealed entry).
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

#include "reencrypt_seal.h"
#include "unit_walk.h"

/* base64 of 32 bytes 0x00..0x1f, and of 32 bytes 0x20..0x3f */
#define KEY_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY_B "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="

/* ------------------------------------------------------------------ */
/* Key files                                                           */

typedef struct {
    const char *label;
    const char *text;
    int nkeys;              /* wanted; 0: an error is wanted */
    const char *error_has;  /* a part of the wanted error */
    int first;              /* the first key's first byte */
} keys_case_t;

static const keys_case_t keys_cases[] = {
    { "one key", KEY_A "\n", 1, NULL, 0x00 },
    { "no newline at the end", KEY_A, 1, NULL, 0x00 },
    { "blanks and CRLF", "  " KEY_A " \r\n", 1, NULL, 0x00 },
    { "comments and blank lines", "# current\n\n" KEY_B "\n# old\n" KEY_A
      "\n", 2, NULL, 0x20 },
    { "order: the first seals", KEY_A "\n" KEY_B "\n", 2, NULL, 0x00 },
    { "empty file", "", 0, "no key", 0 },
    { "comments only", "# nothing\n\n", 0, "no key", 0 },
    { "not base64", "not a key\n", 0, "line 1: not the base64 of 32 bytes",
      0 },
    { "16 bytes", "AAECAwQFBgcICQoLDA0ODw==\n", 0, "line 1", 0 },
    { "33 bytes", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g\n", 0,
      "line 1", 0 },
    { "bad key on line 3", KEY_A "\n# x\nAAAA\n", 0, "line 3", 0 },
    { "two keys on one line", KEY_A " " KEY_B "\n", 0, "line 1", 0 },
    { "nine keys", KEY_A "\n" KEY_A "\n" KEY_A "\n" KEY_A "\n" KEY_A "\n"
      KEY_A "\n" KEY_A "\n" KEY_A "\n" KEY_A "\n", 0, "line 9: more than 8",
      0 },
};

static const char *keys_one(apr_pool_t *p, const keys_case_t *c)
{
    reencrypt_seal_keys_t keys;
    const char *err = reencrypt_seal_keys_parse(p, c->text, strlen(c->text),
                                                &keys);

    if (!c->nkeys) {
        if (!err) {
            return "no error";
        }
        if (!strstr(err, c->error_has)) {
            return apr_psprintf(p, "error '%s' lacks '%s'", err,
                                c->error_has);
        }
        if (strstr(err, "AAEC") || strstr(err, "ICEi")) {
            return apr_psprintf(p, "error shows key material: %s", err);
        }
        return NULL;
    }
    WANT_STR("error", err, NULL);
    WANT_INT("keys", keys.nkeys, c->nkeys);
    WANT_INT("first byte of key 0", keys.key[0][0], c->first);
    WANT_INT("last byte of key 0", keys.key[0][31], c->first + 31);
    return NULL;
}

WALK_TEST(test_keys_parse, "keys_cases", keys_cases, keys_one)

/* A line that is not text, with a NUL inside */
static void test_keys_parse_nul(void **state)
{
    apr_pool_t *p = *state;
    reencrypt_seal_keys_t keys;
    static const char text[] = "AAEC\0AwQF\n";
    const char *err = reencrypt_seal_keys_parse(p, text, sizeof(text) - 1,
                                                &keys);

    assert_non_null(err);
    assert_non_null(strstr(err, "line 1"));
}

/* ------------------------------------------------------------------ */
/* Sealing                                                             */

static reencrypt_seal_keys_t keys_of(apr_pool_t *p, const char *text)
{
    reencrypt_seal_keys_t keys;

    assert_null(reencrypt_seal_keys_parse(p, text, strlen(text), &keys));
    return keys;
}

static void test_seal_round_trip(void **state)
{
    apr_pool_t *p = *state;
    reencrypt_seal_keys_t k = keys_of(p, KEY_A "\n");
    static const unsigned char aad[] = "rs:0123";
    size_t sizes[] = { 0, 1, 15, 16, 17, 4096, 48 * 1024 };
    size_t i;

    for (i = 0; i < N_ELEMS(sizes); i++) {
        unsigned char *plain = apr_palloc(p, sizes[i] + 1), *sealed, *open;
        apr_size_t slen = 0, olen = 0, j;

        for (j = 0; j < sizes[i]; j++) {
            plain[j] = (unsigned char)(j * 7 + 3);
        }
        sealed = reencrypt_seal(p, &k, aad, sizeof(aad) - 1, plain,
                                sizes[i], &slen);
        assert_non_null(sealed);
        assert_int_equal(slen, sizes[i] + REENCRYPT_SEAL_OVERHEAD);
        assert_memory_equal(sealed, REENCRYPT_SEAL_MAGIC, 4);
        if (sizes[i] >= 16) {
            /* the plaintext does not show through */
            assert_null(memmem(sealed, slen, plain, 16));
        }
        open = reencrypt_unseal(p, &k, aad, sizeof(aad) - 1, sealed, slen,
                                &olen);
        assert_non_null(open);
        assert_int_equal(olen, sizes[i]);
        if (sizes[i]) {
            assert_memory_equal(open, plain, sizes[i]);
        }
    }
}

/* Two seals of the same entry differ (a fresh nonce each time). */
static void test_seal_fresh_nonce(void **state)
{
    apr_pool_t *p = *state;
    reencrypt_seal_keys_t k = keys_of(p, KEY_A "\n");
    static const unsigned char plain[] = "the same session";
    apr_size_t l1 = 0, l2 = 0;
    unsigned char *s1 = reencrypt_seal(p, &k, (const unsigned char *)"k", 1,
                                       plain, sizeof(plain), &l1);
    unsigned char *s2 = reencrypt_seal(p, &k, (const unsigned char *)"k", 1,
                                       plain, sizeof(plain), &l2);

    assert_non_null(s1);
    assert_non_null(s2);
    assert_int_equal(l1, l2);
    assert_memory_not_equal(s1, s2, l1);
}

typedef struct {
    const char *label;
    const char *open_keys;   /* the keys of the opening side */
    const char *aad;         /* the cache key when opening */
    int flip;                /* byte to alter (-1: none) */
    int cut;                 /* bytes to cut off the end */
    int opens;
} open_case_t;

/* sealed with KEY_A (first of "A then B") under cache key "rs:abc" */
static const open_case_t open_cases[] = {
    { "same key, same cache key", KEY_A "\n", "rs:abc", -1, 0, 1 },
    { "key among older ones", KEY_B "\n" KEY_A "\n", "rs:abc", -1, 0, 1 },
    { "another key", KEY_B "\n", "rs:abc", -1, 0, 0 },
    { "another cache key", KEY_A "\n", "rs:abd", -1, 0, 0 },
    { "empty cache key", KEY_A "\n", "", -1, 0, 0 },
    { "magic altered", KEY_A "\n", "rs:abc", 0, 0, 0 },
    { "key id altered", KEY_A "\n", "rs:abc", 5, 0, 0 },
    { "nonce altered", KEY_A "\n", "rs:abc", 10, 0, 0 },
    { "ciphertext altered", KEY_A "\n", "rs:abc", 24, 0, 0 },
    { "tag altered", KEY_A "\n", "rs:abc", -2, 0, 0 },
    { "one byte cut", KEY_A "\n", "rs:abc", -1, 1, 0 },
    { "tag cut", KEY_A "\n", "rs:abc", -1, 16, 0 },
    { "all but the header cut", KEY_A "\n", "rs:abc", -1, 36, 0 },
};

static const char *open_one(apr_pool_t *p, const open_case_t *c)
{
    reencrypt_seal_keys_t seal_keys = keys_of(p, KEY_A "\n" KEY_B "\n");
    reencrypt_seal_keys_t open_keys = keys_of(p, c->open_keys);
    static const unsigned char plain[] = "session bytes and a chain";
    apr_size_t slen = 0, olen = 0;
    unsigned char *sealed = reencrypt_seal(p, &seal_keys,
                                           (const unsigned char *)"rs:abc", 6,
                                           plain, sizeof(plain), &slen);
    unsigned char *open;

    if (!sealed) {
        return "could not seal";
    }
    if (c->flip >= 0) {
        sealed[c->flip] ^= 0x01;
    }
    else if (c->flip == -2) {
        sealed[slen - 1] ^= 0x80;
    }
    open = reencrypt_unseal(p, &open_keys, (const unsigned char *)c->aad,
                            strlen(c->aad), sealed, slen - (apr_size_t)c->cut,
                            &olen);
    WANT_INT("opens", open != NULL, c->opens);
    if (open) {
        WANT_INT("length", olen, sizeof(plain));
        if (memcmp(open, plain, sizeof(plain))) {
            return "wrong plaintext";
        }
    }
    return NULL;
}

WALK_TEST(test_unseal_cases, "open_cases", open_cases, open_one)

/* An entry written without a key (the plain session blob) never opens. */
static void test_unseal_plain_entry(void **state)
{
    apr_pool_t *p = *state;
    reencrypt_seal_keys_t k = keys_of(p, KEY_A "\n");
    unsigned char blob[200];
    apr_size_t olen = 0;

    memset(blob, 0x41, sizeof(blob));
    memcpy(blob, "RES2", 4);
    assert_null(reencrypt_unseal(p, &k, (const unsigned char *)"rs:abc", 6,
                                 blob, sizeof(blob), &olen));
    assert_null(reencrypt_unseal(p, &k, (const unsigned char *)"rs:abc", 6,
                                 blob, 0, &olen));
    assert_null(reencrypt_unseal(p, NULL, (const unsigned char *)"rs:abc", 6,
                                 blob, sizeof(blob), &olen));
    assert_null(reencrypt_seal(p, NULL, (const unsigned char *)"rs:abc", 6,
                               blob, sizeof(blob), &olen));
}

/* ------------------------------------------------------------------ */

#define T(f) cmocka_unit_test_setup_teardown(f, setup_pool, teardown_pool)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_keys_parse),
        T(test_keys_parse_nul),
        T(test_seal_round_trip),
        T(test_seal_fresh_nonce),
        T(test_unseal_cases),
        T(test_unseal_plain_entry),
    };

    UNIT_RUN(tests, NULL, NULL);
}
