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
 * Unit tests of reencrypt_slots.c: where a string is cut to fit a
 * statistics slot's field (never inside a UTF-8 character).
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

#include "reencrypt_slots.h"
#include "unit_walk.h"

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

static void test_utf8_fit(void **state)
{
    apr_pool_t *p = *state;
    walk_t w;
    size_t i;

    walk_start(&w, "utf8_fit");
    for (i = 0; i < N_ELEMS(fit_cases); i++) {
        walk_case(&w, (int)i, fit_cases[i].label, NULL,
                  fit_case(p, &fit_cases[i]));
    }
    walk_end(&w);
}

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
        T(test_utf8_fit),
        T(test_utf8_copy_subject),
    };
    int rc;

    if (apr_initialize() != APR_SUCCESS) {
        return 1;
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
