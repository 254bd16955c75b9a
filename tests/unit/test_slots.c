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
 * Unit tests of reencrypt_slots.c: which statistics slot a backend and
 * SNI take (free first, else the least recently used one idle for
 * REENCRYPT_SLOT_IDLE_MIN, SNIs from clients held to half of the
 * slots), and where a string is cut to fit a slot's field (never inside
 * a UTF-8 character).
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
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "reencrypt_slots.h"
#include "unit_walk.h"

#define NOW  1000000
#define IDLE REENCRYPT_SLOT_IDLE_MIN

/* ------------------------------------------------------------------ */
/* reencrypt_slot_choose                                               */

typedef struct {
    const char *label;
    /* the slots, blank-separated: "f" free, "u<age>" held for a backend
     * and SNI from the configuration, "c<age>" held for an SNI from a
     * client's Host; age: seconds since last used */
    const char *slots;
    int client_named;           /* who asks */
    int want;                   /* index, or -1 */
    int want_reclaim;
} choose_case_t;

static const choose_case_t choose_cases[] = {
    { "no slots at all", "", 0, -1, 0 },
    { "all free: the first", "f f f", 0, 0, 0 },
    { "the first free one", "u5 f f", 0, 1, 0 },
    { "a free one before an idle one", "u500 u5 f", 0, 2, 0 },
    { "full, none idle long enough", "u5 u10 u59", 0, -1, 0 },
    { "full: the least recently used idle one", "u70 u61 u100 u5", 0, 2,
      1 },
    { "idle exactly the minimum", "u5 u60", 0, 1, 1 },
    { "a tie: the lower index", "u5 u100 u100", 0, 1, 1 },
    { "client name, share not full: a free one", "c5 f f f", 1, 1, 0 },
    { "client name, share full: not a free one", "c5 c10 f f", 1, -1, 0 },
    { "client name, share full: its least recently used",
      "c70 c100 f u200", 1, 1, 1 },
    { "client name, share full, clients busy", "c5 c10 f u200", 1, -1,
      0 },
    { "client name, share not full, table full: any idle one",
      "u100 c5 u5 u70", 1, 0, 1 },
    { "client name, odd table: share 2 of 5", "c1 c1 f f f", 1, -1, 0 },
    { "configured name, share full: a free one", "c5 c10 f f", 0, 2, 0 },
    { "configured name, table full: a client's if it is the oldest",
      "c100 u70 c5 u5", 0, 0, 1 },
    { "one slot, free, client name", "f", 1, 0, 0 },
    { "one slot, a client's in use", "c5", 1, -1, 0 },
    { "one slot, a configured one idle, client name", "u100", 1, 0, 1 },
};

static int parse_slots(const char *spec, reencrypt_slot_facts_t *out,
                       int max)
{
    int n = 0;
    const char *s = spec;

    while (*s && n < max) {
        char *end;

        while (*s == ' ') {
            s++;
        }
        if (!*s) {
            break;
        }
        memset(&out[n], 0, sizeof(out[n]));
        if (*s != 'f') {
            out[n].in_use = 1;
            out[n].client_named = (*s == 'c');
            out[n].last_used = NOW - strtol(s + 1, &end, 10);
            s = end;
        }
        else {
            s++;
        }
        n++;
    }
    return n;
}

static const char *choose_case(apr_pool_t *p, const choose_case_t *c)
{
    reencrypt_slot_facts_t facts[16];
    int n = parse_slots(c->slots, facts, 16), reclaim = -7;
    int got = reencrypt_slot_choose(facts, n, 0, c->client_named, NOW,
                                    IDLE, &reclaim);

    WANT_INT("slot", got, c->want);
    WANT_INT("reclaim", reclaim, c->want_reclaim);
    return NULL;
}

WALK_TEST(test_slot_choose, "slot_choose", choose_cases, choose_case)

/* The free slot taken is the first at or after the start, wrapping
 * around; the rest of the choice does not depend on the start. */
typedef struct {
    const char *label;
    const char *slots;
    int start;
    int client_named;
    int want;
    int want_reclaim;
} start_case_t;

static const start_case_t start_cases[] = {
    { "start on a free slot", "f f f f", 2, 0, 2, 0 },
    { "the first free one after the start", "f u5 u5 f", 1, 0, 3, 0 },
    { "none after the start: wrap around", "u5 f u5 u5", 2, 0, 1, 0 },
    { "start on the last slot, free", "u5 u5 f", 2, 0, 2, 0 },
    { "start past the end: from 0", "u5 f f", 7, 0, 1, 0 },
    { "negative start: from 0", "f u5 f", -3, 0, 0, 0 },
    { "full: the least recently used, wherever the start",
      "u70 u100 u61", 2, 0, 1, 1 },
    { "client name, share not full: the first free after the start",
      "f c5 f f", 2, 1, 2, 0 },
    { "client name, share full: its own, not a free one",
      "c100 c70 f f", 3, 1, 0, 1 },
};

static const char *start_case(apr_pool_t *p, const start_case_t *c)
{
    reencrypt_slot_facts_t facts[16];
    int n = parse_slots(c->slots, facts, 16), reclaim = -7;
    int got = reencrypt_slot_choose(facts, n, c->start, c->client_named,
                                    NOW, IDLE, &reclaim);

    WANT_INT("slot", got, c->want);
    WANT_INT("reclaim", reclaim, c->want_reclaim);
    return NULL;
}

WALK_TEST(test_slot_choose_start, "slot_choose_start", start_cases,
          start_case)

/* The start of a backend and SNI: within the table, the same for the
 * same names, apart for names that differ in either part (or in where
 * one ends and the other starts), and spread over the table. */
static void test_slot_start(void **state)
{
    int seen[64], i, used = 0;
    char name[32];

    (void)state;
    assert_int_equal(reencrypt_slot_start("127.0.0.1:8443", "a.test", 1),
                     0);
    assert_int_equal(reencrypt_slot_start("127.0.0.1:8443", "a.test", 0),
                     0);
    assert_int_equal(reencrypt_slot_start(NULL, NULL, 64),
                     reencrypt_slot_start("", "", 64));
    assert_int_equal(reencrypt_slot_start("b:1", "s", 16384),
                     reencrypt_slot_start("b:1", "s", 16384));
    assert_int_not_equal(reencrypt_slot_start("ab", "c", 16384),
                         reencrypt_slot_start("a", "bc", 16384));
    /* FNV-1a of "b:1", NUL, "s": a fixed value, the same in every build
     * (the slots a generation restores were placed with it) */
    assert_int_equal(reencrypt_slot_start("b:1", "s", 1000000007),
                     (int)(0xc8c85a3du % 1000000007u));
    memset(seen, 0, sizeof(seen));
    for (i = 0; i < 640; i++) {
        int at;

        snprintf(name, sizeof(name), "s%d.scale.test", i);
        at = reencrypt_slot_start("127.0.0.1:20000", name, 64);
        assert_true(at >= 0 && at < 64);
        seen[at]++;
    }
    for (i = 0; i < 64; i++) {
        used += seen[i] > 0;
        assert_true(seen[i] < 40);      /* 10 on average */
    }
    assert_true(used >= 60);
}

static void test_slot_client_share(void **state)
{
    (void)state;
    assert_int_equal(reencrypt_slot_client_share(1), 1);
    assert_int_equal(reencrypt_slot_client_share(2), 1);
    assert_int_equal(reencrypt_slot_client_share(3), 1);
    assert_int_equal(reencrypt_slot_client_share(16), 8);
    assert_int_equal(reencrypt_slot_client_share(64), 32);
    assert_int_equal(reencrypt_slot_client_share(4096), 2048);
    assert_int_equal(reencrypt_slot_client_share(16384), 8192);
}

/* Whatever the table, what is chosen is a slot of the table, taken
 * from another only when idle long enough, and a client name that takes
 * one never raises the client names above their share (nor above what
 * they held, in a table that was set up with more). */
static void test_slot_choose_bounded(void **state)
{
    reencrypt_slot_facts_t facts[8];
    unsigned int seed = 15;
    int round;

    (void)state;
    for (round = 0; round < 20000; round++) {
        int n = 1 + (int)(rand_r(&seed) % 8), i, reclaim;
        int before = 0, after = 0;
        int client = (int)(rand_r(&seed) % 2), got;

        for (i = 0; i < n; i++) {
            facts[i].in_use = (int)(rand_r(&seed) % 4) != 0;
            facts[i].client_named = facts[i].in_use
                                    && (int)(rand_r(&seed) % 2);
            facts[i].last_used = NOW - (apr_int64_t)(rand_r(&seed) % 120);
            before += facts[i].client_named;
        }
        got = reencrypt_slot_choose(facts, n, (int)(rand_r(&seed) % 8),
                                    client, NOW, IDLE, &reclaim);
        if (got < 0) {
            assert_int_equal(reclaim, 0);
            continue;
        }
        assert_true(got < n);
        assert_int_equal(reclaim, facts[got].in_use);
        if (facts[got].in_use) {
            assert_true(NOW - facts[got].last_used >= IDLE);
        }
        facts[got].in_use = 1;
        facts[got].client_named = client;
        for (i = 0; i < n; i++) {
            after += facts[i].client_named;
        }
        if (client) {
            assert_true(after <= reencrypt_slot_client_share(n)
                        || after <= before);
        }
    }
}

/* ------------------------------------------------------------------ */
/* reencrypt_utf8_fit, reencrypt_utf8_copy                             */

typedef struct {
    const char *label;
    const char *src;
    apr_size_t size;
    apr_size_t want;
} fit_case_t;

#define E_ACUTE "\xc3\xa9"              /* U+00E9, 2 bytes */
#define EURO    "\xe2\x82\xac"          /* U+20AC, 3 bytes */
#define GRIN    "\xf0\x9f\x98\x80"      /* U+1F600, 4 bytes */

static const fit_case_t fit_cases[] = {
    { "ASCII, room to spare", "abc", 10, 3 },
    { "ASCII, fits exactly", "abc", 4, 3 },
    { "ASCII, one byte too long", "abc", 3, 2 },
    { "empty", "", 1, 0 },
    { "no room but the NUL", "abc", 1, 0 },
    { "no room at all", "abc", 0, 0 },
    { "NULL", NULL, 8, 0 },
    { "2 bytes, fit", E_ACUTE, 3, 2 },
    { "2 bytes, one byte short", E_ACUTE, 2, 0 },
    { "2 bytes after ASCII, one short", "a" E_ACUTE, 3, 1 },
    { "3 bytes, fit", "a" EURO, 5, 4 },
    { "3 bytes, one byte short", "a" EURO, 4, 1 },
    { "3 bytes, two bytes short", "a" EURO, 3, 1 },
    { "4 bytes, one byte short", "a" GRIN "b", 5, 1 },
    { "4 bytes, three bytes short", "a" GRIN "b", 3, 1 },
    { "4 bytes, fit, the next left out", "a" GRIN "b", 6, 5 },
    { "cut right after a whole character", E_ACUTE E_ACUTE, 3, 2 },
    { "cut before a lead byte", "ab" E_ACUTE, 3, 2 },
    { "stray continuation bytes: cut as bytes", "a\x80\x80\x80\x80" "b", 4,
      3 },
    { "Latin-1 bytes: cut as bytes", "\xe9\xe9\xe9", 2, 1 },
    { "a lead byte without its continuation", "ab\xc3" "c", 4, 3 },
};

static const char *fit_case(apr_pool_t *p, const fit_case_t *c)
{
    char dst[16];

    WANT_INT("fit", reencrypt_utf8_fit(c->src, c->size), c->want);
    if (c->size > 0 && c->size <= sizeof(dst)) {
        memset(dst, 'x', sizeof(dst));
        reencrypt_utf8_copy(dst, c->size, c->src);
        WANT_STR("copy", dst,
                 apr_pstrndup(p, c->src ? c->src : "", c->want));
    }
    return NULL;
}

WALK_TEST(test_utf8_fit, "utf8_fit", fit_cases, fit_case)

/* A subject as the status page keeps it: 255 bytes and a NUL, from an
 * organisation of 200 two-byte characters, never ends inside one. */
static void test_utf8_copy_subject(void **state)
{
    apr_pool_t *p = *state;
    char field[256];
    char *src = apr_pstrdup(p, "O=");
    int i;

    for (i = 0; i < 200; i++) {
        src = apr_pstrcat(p, src, E_ACUTE, NULL);
    }
    src = apr_pstrcat(p, src, ",CN=utf8.test", NULL);
    reencrypt_utf8_copy(field, sizeof(field), src);
    assert_int_equal(strlen(field), 2 + 126 * 2);
    assert_memory_equal(field, src, strlen(field));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_pool, teardown_pool)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_slot_choose),
        T(test_slot_choose_start),
        T(test_slot_start),
        T(test_slot_client_share),
        T(test_slot_choose_bounded),
        T(test_utf8_fit),
        T(test_utf8_copy_subject),
    };

    UNIT_RUN(tests, NULL, NULL);
}
