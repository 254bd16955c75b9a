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
 * Unit tests of reencrypt_escape.c: the escapers of the status views,
 * given names a backend's certificate may carry. One table: each input
 * with its JSON string, Prometheus label value and HTML text.
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

#include "reencrypt_escape.h"
#include "unit_walk.h"

/* U+FFFD REPLACEMENT CHARACTER in UTF-8 */
#define FFFD "\xef\xbf\xbd"

typedef struct {
    const char *label;
    const char *in;
    const char *json;
    const char *prom;
    const char *html;
} escape_case_t;

static const escape_case_t escape_cases[] = {
    { "empty", "", "\"\"", "", "" },
    { "plain name", "CN=good.test,O=Example", "\"CN=good.test,O=Example\"",
      "CN=good.test,O=Example", "CN=good.test,O=Example" },
    { "quote and backslash", "a\"b\\c", "\"a\\\"b\\\\c\"", "a\\\"b\\\\c",
      "a&quot;b\\c" },
    { "markup", "<script>&amp;</script>", "\"<script>&amp;</script>\"",
      "<script>&amp;</script>",
      "&lt;script&gt;&amp;amp;&lt;/script&gt;" },
    { "newline and tab", "a\nb\tc", "\"a\\u000ab\\u0009c\"", "a\\nb\tc",
      "a\nb\tc" },
    { "carriage return, escape, DEL", "\r\x1b\x7f",
      "\"\\u000d\\u001b\\u007f\"", "\r\x1b\x7f", "\r\x1b\x7f" },
    { "2-byte UTF-8", "O=Ex\xc3\xa4mple", "\"O=Ex\xc3\xa4mple\"",
      "O=Ex\xc3\xa4mple", "O=Ex&#228;mple" },
    { "RFC 2253 escapes", "CN=a\\,b\\+c", "\"CN=a\\\\,b\\\\+c\"",
      "CN=a\\\\,b\\\\+c", "CN=a\\,b\\+c" },
    { "3-byte UTF-8", "\xe2\x82\xac 5", "\"\xe2\x82\xac 5\"", "\xe2\x82\xac 5",
      "&#8364; 5" },
    { "4-byte UTF-8", "\xf0\x9f\x94\x92 \xf4\x8f\xbf\xbf",
      "\"\xf0\x9f\x94\x92 \xf4\x8f\xbf\xbf\"",
      "\xf0\x9f\x94\x92 \xf4\x8f\xbf\xbf",
      "&#128274; &#1114111;" },
    /* not UTF-8: each maximal ill-formed part becomes one U+FFFD */
    { "Latin-1 byte", "Caf\xe9", "\"Caf" FFFD "\"", "Caf" FFFD,
      "Caf&#65533;" },
    { "bytes ff fe", "a\xff\xfe" "b", "\"a" FFFD FFFD "b\"",
      "a" FFFD FFFD "b", "a&#65533;&#65533;b" },
    { "cut after the first byte", "x\xc3", "\"x" FFFD "\"", "x" FFFD,
      "x&#65533;" },
    { "cut 3-byte sequence, then text", "\xe2\x82z", "\"" FFFD "z\"",
      FFFD "z", "&#65533;z" },
    { "cut 4-byte sequence before a quote", "\xf0\x9f\x94\"",
      "\"" FFFD "\\\"\"", FFFD "\\\"", "&#65533;&quot;" },
    { "continuation byte alone", "\x80", "\"" FFFD "\"", FFFD, "&#65533;" },
    { "overlong slash", "\xc0\xaf", "\"" FFFD FFFD "\"", FFFD FFFD,
      "&#65533;&#65533;" },
    { "overlong 3-byte", "\xe0\x80\xaf", "\"" FFFD FFFD FFFD "\"",
      FFFD FFFD FFFD, "&#65533;&#65533;&#65533;" },
    { "surrogate D800", "\xed\xa0\x80", "\"" FFFD FFFD FFFD "\"",
      FFFD FFFD FFFD, "&#65533;&#65533;&#65533;" },
    { "past U+10FFFF", "\xf4\x90\x80\x80",
      "\"" FFFD FFFD FFFD FFFD "\"", FFFD FFFD FFFD FFFD,
      "&#65533;&#65533;&#65533;&#65533;" },
    { "byte f5", "\xf5\x80", "\"" FFFD FFFD "\"", FFFD FFFD,
      "&#65533;&#65533;" },
    { "apostrophe", "O=Bob's", "\"O=Bob's\"", "O=Bob's", "O=Bob&#39;s" },
};

static const char *escape_one(apr_pool_t *p, const escape_case_t *c)
{
    WANT_STR("json", reencrypt_escape_json(p, c->in), c->json);
    WANT_STR("prometheus", reencrypt_escape_prom(p, c->in), c->prom);
    WANT_STR("html", reencrypt_escape_html(p, c->in), c->html);
    return NULL;
}

WALK_TEST(test_escape_cases, "escape_cases", escape_cases, escape_one)

/* The HTML view passes NULL for a name it does not have */
static void test_html_null(void **state)
{
    apr_pool_t *p = *state;

    assert_string_equal(reencrypt_escape_html(p, NULL), "");
}

/* The longest output of each: every byte escaped */
static void test_longest(void **state)
{
    apr_pool_t *p = *state;
    char in[257];

    in[256] = '\0';
    memset(in, 0x01, 256);
    assert_int_equal(strlen(reencrypt_escape_json(p, in)), 256 * 6 + 2);
    memset(in, '\n', 256);
    assert_int_equal(strlen(reencrypt_escape_prom(p, in)), 256 * 2);
    memset(in, '\x80', 256);
    assert_int_equal(strlen(reencrypt_escape_prom(p, in)), 256 * 3);
    assert_int_equal(strlen(reencrypt_escape_json(p, in)), 256 * 3 + 2);
    memset(in, '"', 256);
    assert_int_equal(strlen(reencrypt_escape_html(p, in)), 256 * 6);
    memset(in, '\'', 256);
    assert_int_equal(strlen(reencrypt_escape_html(p, in)), 256 * 5);
    memset(in, '\xff', 256);
    assert_int_equal(strlen(reencrypt_escape_html(p, in)), 256 * 8);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_pool, teardown_pool)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_escape_cases),
        T(test_html_null),
        T(test_longest),
    };

    UNIT_RUN(tests, NULL, NULL);
}
