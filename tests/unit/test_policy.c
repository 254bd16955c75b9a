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
 * Unit tests of reencrypt_policy.c: directive value parsers, host name
 * rules, the policy record (merge, defaults, identity), the SNI choice
 * and the names a backend certificate must carry.
 *
 * Every test walks a table of cases. A case that does not give the
 * expected outcome is printed with its table, index and input, and the
 * test fails once the whole table has been walked, so that one run
 * shows every wrong case. A case may carry a "defect" note: it states
 * the correct outcome of a known defect of the code under test; it is
 * reported but does not fail the run, and it fails the run once the
 * code is fixed, so that the note gets removed.
 *
 * Each test gets a fresh APR pool (setup/teardown).
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
#include <apr_tables.h>

#include "reencrypt_policy.h"
#include "unit_walk.h"

/* Long names, built from fixed pieces. */
#define L10 "abcdefghij"
#define L61 L10 L10 L10 L10 L10 L10 "k"
#define L62 L61 "l"
#define L63 L62 "m"
#define L64 L63 "n"
/* 63+1+63+1+63+1+61 = 253 and one more = 254 characters */
#define NAME253 L63 "." L63 "." L63 "." L61
#define NAME254 L63 "." L63 "." L63 "." L62

/* ------------------------------------------------------------------ */
/* reencrypt_parse_int                                                 */

typedef struct {
    const char *arg;
    int min, max;
    const char *err;     /* NULL: accepted */
    int value;           /* with err == NULL */
    const char *defect;
} int_case_t;

static const int_case_t int_cases[] = {
    { "0",   0, 32, NULL, 0,  NULL },
    { "4",   0, 32, NULL, 4,  NULL },
    { "32",  0, 32, NULL, 32, NULL },
    { "010", 0, 32, NULL, 10, NULL },      /* decimal, not octal */
    { "-5", -10, 10, NULL, -5, NULL },
    { "-10", -10, 10, NULL, -10, NULL },
    { "2147483647", 0, 2147483647, NULL, 2147483647, NULL },
    { "ten", 0, 32,
      "ReencryptVerifyDepth: 'ten' is not an integer in 0..32", 0, NULL },
    { "3x", 0, 32,
      "ReencryptVerifyDepth: '3x' is not an integer in 0..32", 0, NULL },
    { " 3", 0, 32,
      "ReencryptVerifyDepth: ' 3' is not an integer in 0..32", 0, NULL },
    { "3 ", 0, 32,
      "ReencryptVerifyDepth: '3 ' is not an integer in 0..32", 0, NULL },
    { "+3", 0, 32,
      "ReencryptVerifyDepth: '+3' is not an integer in 0..32", 0, NULL },
    { "-1", 0, 32,
      "ReencryptVerifyDepth: '-1' is not an integer in 0..32", 0, NULL },
    { "-", 0, 32,
      "ReencryptVerifyDepth: '-' is not an integer in 0..32", 0, NULL },
    { "--1", -10, 10,
      "ReencryptVerifyDepth: '--1' is not an integer in -10..10", 0, NULL },
    { "33", 0, 32,
      "ReencryptVerifyDepth: '33' is not an integer in 0..32", 0, NULL },
    { "-11", -10, 10,
      "ReencryptVerifyDepth: '-11' is not an integer in -10..10", 0, NULL },
    { "", 0, 32,
      "ReencryptVerifyDepth: '' is not an integer in 0..32", 0, NULL },
    { NULL, 0, 32,
      "ReencryptVerifyDepth: '' is not an integer in 0..32", 0, NULL },
    { "0x10", 0, 32,
      "ReencryptVerifyDepth: '0x10' is not an integer in 0..32", 0, NULL },
    { "1e1", 0, 32,
      "ReencryptVerifyDepth: '1e1' is not an integer in 0..32", 0, NULL },
    { "4294967300", 0, 32,
      "ReencryptVerifyDepth: '4294967300' is not an integer in 0..32", 0,
      NULL },
    { "2147483648", 0, 2147483647,
      "ReencryptVerifyDepth: '2147483648' is not an integer in "
      "0..2147483647", 0, NULL },
    { "99999999999999999999", 0, 32,
      "ReencryptVerifyDepth: '99999999999999999999' is not an integer in "
      "0..32", 0, NULL },
    { "-99999999999999999999", -10, 10,
      "ReencryptVerifyDepth: '-99999999999999999999' is not an integer in "
      "-10..10", 0, NULL },
};

static const char *int_case(apr_pool_t *p, const int_case_t *c)
{
    int out = 12345;
    const char *err = reencrypt_parse_int(p, "ReencryptVerifyDepth", c->arg,
                                          c->min, c->max, &out);

    WANT_STR("error", err, c->err);
    WANT_INT("value", out, c->err ? 12345 : c->value);
    return NULL;
}

static void test_parse_int(void **state)
{
    apr_pool_t *p = *state;
    walk_t w;
    size_t i;

    walk_start(&w, "parse_int");
    for (i = 0; i < N_ELEMS(int_cases); i++) {
        walk_case(&w, (int)i, q(p, int_cases[i].arg), int_cases[i].defect,
                  int_case(p, &int_cases[i]));
    }
    walk_end(&w);
}

/* ------------------------------------------------------------------ */
/* reencrypt_parse_flag                                                */

typedef struct {
    const char *arg;
    const char *err;
    int value;
} flag_case_t;

static const flag_case_t flag_cases[] = {
    { "On",  NULL, 1 },
    { "on",  NULL, 1 },
    { "ON",  NULL, 1 },
    { "oN",  NULL, 1 },
    { "Off", NULL, 0 },
    { "off", NULL, 0 },
    { "OFF", NULL, 0 },
    { "oFf", NULL, 0 },
    { "yes",  "ReencryptEngine: 'yes' is not On or Off", 0 },
    { "1",    "ReencryptEngine: '1' is not On or Off", 0 },
    { "0",    "ReencryptEngine: '0' is not On or Off", 0 },
    { "true", "ReencryptEngine: 'true' is not On or Off", 0 },
    { "onn",  "ReencryptEngine: 'onn' is not On or Off", 0 },
    { "o",    "ReencryptEngine: 'o' is not On or Off", 0 },
    { " On",  "ReencryptEngine: ' On' is not On or Off", 0 },
    { "On ",  "ReencryptEngine: 'On ' is not On or Off", 0 },
    { "",     "ReencryptEngine: '' is not On or Off", 0 },
    { NULL,   "ReencryptEngine: '' is not On or Off", 0 },
};

static const char *flag_case(apr_pool_t *p, const flag_case_t *c)
{
    int out = 7;
    const char *err = reencrypt_parse_flag(p, "ReencryptEngine", c->arg,
                                           &out);

    WANT_STR("error", err, c->err);
    WANT_INT("value", out, c->err ? 7 : c->value);
    return NULL;
}

static void test_parse_flag(void **state)
{
    apr_pool_t *p = *state;
    walk_t w;
    size_t i;

    walk_start(&w, "parse_flag");
    for (i = 0; i < N_ELEMS(flag_cases); i++) {
        walk_case(&w, (int)i, q(p, flag_cases[i].arg), NULL,
                  flag_case(p, &flag_cases[i]));
    }
    walk_end(&w);
}

/* ------------------------------------------------------------------ */
/* reencrypt_parse_sni                                                 */

#define SNI_ERR_IP(a)   "ReencryptSNI: '" a "' is an IP address; SNI " \
                        "carries DNS names only (RFC 6066). Use "      \
                        "ReencryptVerifyName to check an IP SAN"
#define SNI_ERR_NAME(a) "ReencryptSNI: '" a "' is not a valid DNS name " \
                        "(nor Backend, Host or Off)"

typedef struct {
    const char *arg;
    const char *err;
    reencrypt_sni_mode_e mode;
    const char *name;
} sni_case_t;

static const sni_case_t sni_cases[] = {
    { "Backend", NULL, REENCRYPT_SNI_BACKEND, NULL },
    { "backend", NULL, REENCRYPT_SNI_BACKEND, NULL },
    { "BACKEND", NULL, REENCRYPT_SNI_BACKEND, NULL },
    { "bAcKeNd", NULL, REENCRYPT_SNI_BACKEND, NULL },
    { "Host",    NULL, REENCRYPT_SNI_HOST,    NULL },
    { "host",    NULL, REENCRYPT_SNI_HOST,    NULL },
    { "HOST",    NULL, REENCRYPT_SNI_HOST,    NULL },
    { "Off",     NULL, REENCRYPT_SNI_OFF,     NULL },
    { "off",     NULL, REENCRYPT_SNI_OFF,     NULL },
    { "OFF",     NULL, REENCRYPT_SNI_OFF,     NULL },
    { "app.internal.example.com", NULL, REENCRYPT_SNI_NAME,
      "app.internal.example.com" },
    { "App.Internal.EXAMPLE.com", NULL, REENCRYPT_SNI_NAME,
      "app.internal.example.com" },
    { "good.test.", NULL, REENCRYPT_SNI_NAME, "good.test" },
    { "GOOD.TEST.", NULL, REENCRYPT_SNI_NAME, "good.test" },
    { "localhost", NULL, REENCRYPT_SNI_NAME, "localhost" },
    { "xn--bcher-kva.example", NULL, REENCRYPT_SNI_NAME,
      "xn--bcher-kva.example" },
    { "a-b.c-d.test", NULL, REENCRYPT_SNI_NAME, "a-b.c-d.test" },
    { "123.example", NULL, REENCRYPT_SNI_NAME, "123.example" },
    /* a final dot turns a keyword into a literal name */
    { "Host.", NULL, REENCRYPT_SNI_NAME, "host" },
    { L63 ".test", NULL, REENCRYPT_SNI_NAME, L63 ".test" },
    { NAME253, NULL, REENCRYPT_SNI_NAME, NAME253 },
    { NAME253 ".", NULL, REENCRYPT_SNI_NAME, NAME253 },
    { "bad_name!", SNI_ERR_NAME("bad_name!"), 0, NULL },
    { "under_score.test", SNI_ERR_NAME("under_score.test"), 0, NULL },
    { "-a.test", SNI_ERR_NAME("-a.test"), 0, NULL },
    { "a-.test", SNI_ERR_NAME("a-.test"), 0, NULL },
    { "a..b", SNI_ERR_NAME("a..b"), 0, NULL },
    { ".a.test", SNI_ERR_NAME(".a.test"), 0, NULL },
    { "a.test..", SNI_ERR_NAME("a.test.."), 0, NULL },
    { L64 ".test", SNI_ERR_NAME(L64 ".test"), 0, NULL },
    { NAME254, SNI_ERR_NAME(NAME254), 0, NULL },
    { "*.wild.test", SNI_ERR_NAME("*.wild.test"), 0, NULL },
    { "a b.test", SNI_ERR_NAME("a b.test"), 0, NULL },
    { "good.test:443", SNI_ERR_NAME("good.test:443"), 0, NULL },
    { "1.2.3", SNI_ERR_NAME("1.2.3"), 0, NULL },
    { "", SNI_ERR_NAME(""), 0, NULL },
    { NULL, SNI_ERR_NAME(""), 0, NULL },
    { "192.0.2.1", SNI_ERR_IP("192.0.2.1"), 0, NULL },
    { "[::1]", SNI_ERR_IP("[::1]"), 0, NULL },
    { "::1", SNI_ERR_IP("::1"), 0, NULL },
    { "2001:db8::1", SNI_ERR_IP("2001:db8::1"), 0, NULL },
};

static const char *sni_case(apr_pool_t *p, const sni_case_t *c)
{
    reencrypt_sni_mode_e mode = (reencrypt_sni_mode_e)99;
    const char *name = "untouched";
    const char *err = reencrypt_parse_sni(p, c->arg, &mode, &name);

    WANT_STR("error", err, c->err);
    if (!c->err) {
        WANT_INT("mode", mode, c->mode);
        WANT_STR("name", name, c->name);
    }
    else {
        WANT_INT("mode (left alone)", mode, 99);
    }
    return NULL;
}

static void test_parse_sni(void **state)
{
    apr_pool_t *p = *state;
    walk_t w;
    size_t i;

    walk_start(&w, "parse_sni");
    for (i = 0; i < N_ELEMS(sni_cases); i++) {
        walk_case(&w, (int)i, q(p, sni_cases[i].arg), NULL,
                  sni_case(p, &sni_cases[i]));
    }
    walk_end(&w);
}

/* ------------------------------------------------------------------ */
/* reencrypt_parse_verify_name                                         */

#define VN_ERR(a) "ReencryptVerifyName: '" a "' is not a valid host name " \
                  "or IP address"

typedef struct {
    const char *arg;
    const char *err;
    const char *out;
} vn_case_t;

static const vn_case_t vn_cases[] = {
    { "good.test",        NULL, "good.test" },
    { "Good.TEST",        NULL, "good.test" },
    { "good.test.",       NULL, "good.test" },
    { "localhost",        NULL, "localhost" },
    { "xn--bcher-kva.example", NULL, "xn--bcher-kva.example" },
    { L63 ".test",        NULL, L63 ".test" },
    { NAME253,            NULL, NAME253 },
    { "127.0.0.1",        NULL, "127.0.0.1" },
    { "192.0.2.1",        NULL, "192.0.2.1" },
    { "::1",              NULL, "::1" },
    { "[::1]",            NULL, "::1" },
    { "2001:db8::1",      NULL, "2001:db8::1" },
    { "[2001:db8::1]",    NULL, "2001:db8::1" },
    { "2001:DB8::A",      NULL, "2001:db8::a" },
    { "[2001:DB8::A]",    NULL, "2001:db8::a" },
    { "::ffff:192.0.2.1", NULL, "::ffff:192.0.2.1" },
    { "*.good.test",      VN_ERR("*.good.test"), NULL },
    { "*",                VN_ERR("*"), NULL },
    { "a*.good.test",     VN_ERR("a*.good.test"), NULL },
    { "bad_name!",        VN_ERR("bad_name!"), NULL },
    { "a..b",             VN_ERR("a..b"), NULL },
    { "-a.test",          VN_ERR("-a.test"), NULL },
    { L64 ".test",        VN_ERR(L64 ".test"), NULL },
    { NAME254,            VN_ERR(NAME254), NULL },
    { "good test",        VN_ERR("good test"), NULL },
    { "1.2.3",            VN_ERR("1.2.3"), NULL },
    { "256.1.1.1",        VN_ERR("256.1.1.1"), NULL },
    { "0x7f.0.0.1",       VN_ERR("0x7f.0.0.1"), NULL },
    { "[127.0.0.1]",      VN_ERR("[127.0.0.1]"), NULL },
    { "[::1",             VN_ERR("[::1"), NULL },
    { "::1]",             VN_ERR("::1]"), NULL },
    { "[]",               VN_ERR("[]"), NULL },
    { "2001:db8::1::2",   VN_ERR("2001:db8::1::2"), NULL },
    { "https://good.test/", VN_ERR("https://good.test/"), NULL },
    { "",                 VN_ERR(""), NULL },
    { NULL,               VN_ERR(""), NULL },
};

static const char *vn_case(apr_pool_t *p, const vn_case_t *c)
{
    const char *out = "untouched";
    const char *err = reencrypt_parse_verify_name(p, c->arg, &out);

    WANT_STR("error", err, c->err);
    WANT_STR("canonical form", out, c->err ? "untouched" : c->out);
    return NULL;
}

static void test_parse_verify_name(void **state)
{
    apr_pool_t *p = *state;
    walk_t w;
    size_t i;

    walk_start(&w, "parse_verify_name");
    for (i = 0; i < N_ELEMS(vn_cases); i++) {
        walk_case(&w, (int)i, q(p, vn_cases[i].arg), NULL,
                  vn_case(p, &vn_cases[i]));
    }
    walk_end(&w);
}

/* ------------------------------------------------------------------ */
/* reencrypt_is_dns_name                                               */

typedef struct {
    const char *s;
    int valid;
} dns_name_case_t;

static const dns_name_case_t dns_name_cases[] = {
    { "good.test", 1 },
    { "GOOD.Test", 1 },
    { "good.test.", 1 },
    { "a", 1 },
    { "a.", 1 },
    { "a.b", 1 },
    { "localhost", 1 },
    { "a-b.test", 1 },
    { "a--b.test", 1 },
    { "xn--bcher-kva.example", 1 },
    { "123.example", 1 },
    { "a.b1", 1 },
    { "a.1b", 1 },
    { "0a", 1 },
    { L63, 1 },
    { L63 ".test", 1 },
    { NAME253, 1 },
    { NAME253 ".", 1 },
    { NULL, 0 },
    { "", 0 },
    { ".", 0 },
    { "..", 0 },
    { ".a", 0 },
    { "a..b", 0 },
    { "a.test..", 0 },
    { "-a.test", 0 },
    { "a-.test", 0 },
    { "a.-b", 0 },
    { "a.b-", 0 },
    { "-", 0 },
    { "a_b.test", 0 },
    { "a b", 0 },
    { "a.test/", 0 },
    { "a.test:443", 0 },
    { "*.test", 0 },
    { "*", 0 },
    { "a*.test", 0 },
    { "\xc3\xa9.test", 0 },      /* U-label: not LDH */
    { L64, 0 },
    { L64 ".test", 0 },
    { "a." L64, 0 },
    { NAME254, 0 },
    { NAME254 ".", 0 },
    { "1.2.3.4", 0 },
    { "a.123", 0 },
    { "0", 0 },
    { "123", 0 },
    { "::1", 0 },
    { "[::1]", 0 },
};

static const char *dns_name_case(apr_pool_t *p, const dns_name_case_t *c)
{
    WANT_INT("valid", reencrypt_is_dns_name(c->s) != 0, c->valid);
    return NULL;
}

static void test_is_dns_name(void **state)
{
    apr_pool_t *p = *state;
    walk_t w;
    size_t i;

    walk_start(&w, "is_dns_name");
    for (i = 0; i < N_ELEMS(dns_name_cases); i++) {
        walk_case(&w, (int)i, q(p, dns_name_cases[i].s), NULL,
                  dns_name_case(p, &dns_name_cases[i]));
    }
    walk_end(&w);
}

/* ------------------------------------------------------------------ */
/* reencrypt_ip_parse                                                  */

typedef struct {
    const char *s;
    int len;                     /* 0, 4 or 16 */
    unsigned char bytes[16];
} ip_case_t;

static const ip_case_t ip_cases[] = {
    { "127.0.0.1", 4, { 127, 0, 0, 1 } },
    { "192.0.2.1", 4, { 192, 0, 2, 1 } },
    { "0.0.0.0", 4, { 0, 0, 0, 0 } },
    { "255.255.255.255", 4, { 255, 255, 255, 255 } },
    { "::1", 16, { 0,0,0,0, 0,0,0,0, 0,0,0,0, 0,0,0,1 } },
    { "[::1]", 16, { 0,0,0,0, 0,0,0,0, 0,0,0,0, 0,0,0,1 } },
    { "::", 16, { 0 } },
    { "2001:db8::1", 16,
      { 0x20,0x01,0x0d,0xb8, 0,0,0,0, 0,0,0,0, 0,0,0,1 } },
    { "[2001:DB8::1]", 16,
      { 0x20,0x01,0x0d,0xb8, 0,0,0,0, 0,0,0,0, 0,0,0,1 } },
    { "2001:db8:0:0:0:0:0:1", 16,
      { 0x20,0x01,0x0d,0xb8, 0,0,0,0, 0,0,0,0, 0,0,0,1 } },
    { "fe80::1:2", 16,
      { 0xfe,0x80,0,0, 0,0,0,0, 0,0,0,0, 0,1,0,2 } },
    { "::ffff:192.0.2.1", 16,
      { 0,0,0,0, 0,0,0,0, 0,0,0xff,0xff, 192,0,2,1 } },
    { "1", 0, { 0 } },
    { "127.1", 0, { 0 } },
    { "1.2.3", 0, { 0 } },
    { "1.2.3.4.5", 0, { 0 } },
    { "1.2.3.4.", 0, { 0 } },
    { ".1.2.3", 0, { 0 } },
    { "1..2.3", 0, { 0 } },
    { "0x7f.0.0.1", 0, { 0 } },
    { "256.0.0.1", 0, { 0 } },
    { "1.2.3.-4", 0, { 0 } },
    { " 1.2.3.4", 0, { 0 } },
    { "1.2.3.4 ", 0, { 0 } },
    { "[127.0.0.1]", 0, { 0 } },
    { "[::1", 0, { 0 } },
    { "::1]", 0, { 0 } },
    { "[]", 0, { 0 } },
    { "[", 0, { 0 } },
    { "1:2:3:4:5:6:7:8:9", 0, { 0 } },
    { "2001:db8::1::2", 0, { 0 } },
    { "fe80::1%eth0", 0, { 0 } },
    { "[fe80::1%25eth0]", 0, { 0 } },
    { "[" L10 L10 ":" L10 L10 ":" L10 L10 ":" L10 "]", 0, { 0 } },
    { "good.test", 0, { 0 } },
    { "", 0, { 0 } },
    { NULL, 0, { 0 } },
};

static const char *ip_case(apr_pool_t *p, const ip_case_t *c)
{
    unsigned char buf[16];
    int n;

    memset(buf, 0xaa, sizeof(buf));
    n = reencrypt_ip_parse(c->s, buf);
    WANT_INT("length", n, c->len);
    if (n && memcmp(buf, c->bytes, (size_t)n)) {
        return "bytes differ";
    }
    return NULL;
}

static void test_ip_parse(void **state)
{
    apr_pool_t *p = *state;
    walk_t w;
    size_t i;

    walk_start(&w, "ip_parse");
    for (i = 0; i < N_ELEMS(ip_cases); i++) {
        walk_case(&w, (int)i, q(p, ip_cases[i].s), NULL,
                  ip_case(p, &ip_cases[i]));
    }
    walk_end(&w);
}

/* ------------------------------------------------------------------ */
/* reencrypt_dns_match                                                 */

typedef struct {
    const char *pattern;
    const char *host;
    int match;
} match_case_t;

static const match_case_t match_cases[] = {
    /* exact names */
    { "good.test", "good.test", 1 },
    { "example.com", "example.com", 1 },
    { "a", "a", 1 },
    { "good.test", "bad.test", 0 },
    { "good.test", "agood.test", 0 },
    { "good.test", "good.tes", 0 },
    { "good.test", "good.test.evil", 0 },
    { "good.test", "x.good.test", 0 },
    { "x.good.test", "good.test", 0 },
    /* case */
    { "GOOD.Test", "good.TEST", 1 },
    { "good.test", "GOOD.TEST", 1 },
    { "Example.COM", "eXAMPLE.com", 1 },
    /* one final dot on either side */
    { "good.test.", "good.test", 1 },
    { "good.test", "good.test.", 1 },
    { "good.test.", "good.test.", 1 },
    { "good.test", "good.test..", 0 },
    { "good.test..", "good.test", 0 },
    /* wildcards */
    { "*.example.com", "a.example.com", 1 },
    { "*.example.com", "www.example.com", 1 },
    { "*.example.com", "A.EXAMPLE.COM", 1 },
    { "*.EXAMPLE.com", "a.example.COM", 1 },
    { "*.example.com", "a.example.com.", 1 },
    { "*.example.com.", "a.example.com", 1 },
    { "*.a.b", "x.a.b", 1 },
    { "*.xn--bcher-kva.example", "shop.xn--bcher-kva.example", 1 },
    { "*.example.com", "example.com", 0 },
    { "*.example.com", "example.com.", 0 },
    { "*.example.com", "a.b.example.com", 0 },
    { "*.example.com", ".example.com", 0 },
    { "*.example.com", "a..example.com", 0 },
    { "*.example.com", "a.example.org", 0 },
    { "*.example.com", "a.example.co", 0 },
    { "*.example.com", "aexample.com", 0 },
    { "*.com", "example.com", 0 },
    { "*.com.", "example.com", 0 },
    { "*.com", "com", 0 },
    { "*", "a", 0 },
    { "*.", "a.", 0 },
    { "**.example.com", "a.example.com", 0 },
    { "a*.example.com", "ab.example.com", 0 },
    { "a*.example.com", "a.example.com", 0 },
    { "*a.example.com", "ba.example.com", 0 },
    { "f*o.example.com", "foo.example.com", 0 },
    { "*.*.example.com", "a.b.example.com", 0 },
    { "*.*.example.com", "a.example.com", 0 },
    { "a.*.example.com", "a.b.example.com", 0 },
    { "example.*", "example.com", 0 },
    { "www.example.*", "www.example.com", 0 },
    { "example.com", "*.example.com", 0 },
    /* IDN A-labels match exactly, never partially */
    { "xn--bcher-kva.example", "xn--bcher-kva.example", 1 },
    { "XN--BCHER-KVA.example", "xn--bcher-kva.EXAMPLE", 1 },
    { "xn--bcher-kva.example", "xn--bcher-kvb.example", 0 },
    { "xn--bcher-kva.example", "bcher-kva.example", 0 },
    { "xn--*.example", "xn--bcher-kva.example", 0 },
    { "xn--bcher*.example", "xn--bcher-kva.example", 0 },
    /* empty and NULL */
    { "", "", 0 },
    { "good.test", "", 0 },
    { "", "good.test", 0 },
    { ".", ".", 0 },
    { "*.example.com", "", 0 },
    { NULL, "good.test", 0 },
    { "good.test", NULL, 0 },
};

static const char *match_case(apr_pool_t *p, const match_case_t *c)
{
    WANT_INT("match", reencrypt_dns_match(c->pattern, c->host) != 0,
             c->match);
    return NULL;
}

static void test_dns_match(void **state)
{
    apr_pool_t *p = *state;
    walk_t w;
    size_t i;

    walk_start(&w, "dns_match");
    for (i = 0; i < N_ELEMS(match_cases); i++) {
        walk_case(&w, (int)i,
                  apr_psprintf(p, "%s vs %s", q(p, match_cases[i].pattern),
                               q(p, match_cases[i].host)),
                  NULL, match_case(p, &match_cases[i]));
    }
    walk_end(&w);
}

/* ------------------------------------------------------------------ */
/* Policy records, described by value                                  */

/* Engine and depth: 0 means "not set", so that a zero-initialised scope_t
 * describes an empty scope. */
#define ENG_ON     1
#define ENG_OFF    2
#define DEPTH(n)   ((n) + 1)

/* Anchors: 0 none, else one of these (two of them equal in value but
 * distinct objects, others differing in digest or path only). */
#define ANCH_A     1
#define ANCH_A2    2     /* same path and digest as A, another object */
#define ANCH_B     3     /* other path, other digest */
#define ANCH_A_DIG 4     /* A's path, digest differs in one byte */
#define ANCH_A_PTH 5     /* A's digest, another path */

static const reencrypt_anchors_t anchors_by_id[] = {
    { NULL, NULL, 0, { 0 } },
    { "/etc/re/a.pem", NULL, 1, { 0xa1, 0xa2, 0xa3, [31] = 0xaa } },
    { "/etc/re/a.pem", NULL, 1, { 0xa1, 0xa2, 0xa3, [31] = 0xaa } },
    { "/etc/re/b.pem", NULL, 2, { 0xb1, 0xb2, 0xb3, [31] = 0xbb } },
    { "/etc/re/a.pem", NULL, 1, { 0xa1, 0xa2, 0xa3, [31] = 0xab } },
    { "/etc/re/a2.pem", NULL, 1, { 0xa1, 0xa2, 0xa3, [31] = 0xaa } },
};

typedef struct {
    int engine;                  /* 0, ENG_ON, ENG_OFF */
    const char *where;
    int anchors;                 /* 0 or ANCH_* */
    int depth;                   /* 0 or DEPTH(n) */
    const char *names;           /* NULL unset, "" empty, else "a,b" */
    reencrypt_sni_mode_e sni;
    const char *sni_name;
} scope_t;

/* A list "a,b,c" as a fresh array of fresh strings ("" is empty). */
static apr_array_header_t *list_of(apr_pool_t *p, const char *csv)
{
    apr_array_header_t *arr = apr_array_make(p, 2, sizeof(const char *));
    char *copy, *tok, *last = NULL;

    if (!csv) {
        return NULL;
    }
    copy = apr_pstrdup(p, csv);
    for (tok = apr_strtok(copy, ",", &last); tok;
         tok = apr_strtok(NULL, ",", &last)) {
        APR_ARRAY_PUSH(arr, const char *) = apr_pstrdup(p, tok);
    }
    return arr;
}

static const char *list_str(apr_pool_t *p, const apr_array_header_t *arr)
{
    const char *s = "";
    int i;

    if (!arr) {
        return NULL;
    }
    for (i = 0; i < arr->nelts; i++) {
        s = apr_pstrcat(p, s, i ? "," : "",
                        APR_ARRAY_IDX(arr, i, const char *), NULL);
    }
    return s;
}

/* Build a record from its description; every string and object is a
 * fresh copy, so that two records built from one description share no
 * address. */
static void build(apr_pool_t *p, reencrypt_policy_t *pol, const scope_t *s)
{
    reencrypt_policy_init(pol);
    if (s->engine) {
        pol->engine = s->engine == ENG_ON ? 1 : 0;
        pol->engine_where = s->where ? apr_pstrdup(p, s->where) : NULL;
    }
    if (s->anchors) {
        reencrypt_anchors_t *a = apr_pmemdup(p, &anchors_by_id[s->anchors],
                                             sizeof(*a));
        a->path = apr_pstrdup(p, a->path);
        pol->anchors = a;
    }
    if (s->depth) {
        pol->verify_depth = s->depth - 1;
    }
    pol->verify_names = list_of(p, s->names);
    if (s->sni) {
        pol->sni_mode = s->sni;
        pol->sni_name = s->sni_name ? apr_pstrdup(p, s->sni_name) : NULL;
    }
}

/* Compare the fields of a record with a description. */
static const char *compare(apr_pool_t *p, const reencrypt_policy_t *pol,
                           const scope_t *s)
{
    const reencrypt_anchors_t *want_a = s->anchors
                                        ? &anchors_by_id[s->anchors] : NULL;

    WANT_INT("engine", pol->engine,
             s->engine == ENG_ON ? 1 : s->engine == ENG_OFF ? 0
                                                            : REENCRYPT_UNSET);
    WANT_STR("engine_where", pol->engine_where, s->engine ? s->where : NULL);
    if (!want_a || !pol->anchors) {
        if (want_a || pol->anchors) {
            return apr_psprintf(p, "anchors: got %s, want %s",
                                pol->anchors ? pol->anchors->path : "none",
                                want_a ? want_a->path : "none");
        }
    }
    else {
        WANT_STR("anchors path", pol->anchors->path, want_a->path);
        if (memcmp(pol->anchors->digest, want_a->digest,
                   sizeof(want_a->digest))) {
            return "anchors: digest differs";
        }
    }
    WANT_INT("verify_depth", pol->verify_depth,
             s->depth ? s->depth - 1 : REENCRYPT_UNSET);
    WANT_STR("verify_names", list_str(p, pol->verify_names), s->names);
    WANT_INT("sni_mode", pol->sni_mode, s->sni);
    WANT_STR("sni_name", pol->sni_name, s->sni_name);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* reencrypt_policy_init and the readers of effective values           */

static void test_policy_init(void **state)
{
    apr_pool_t *p = *state;
    reencrypt_policy_t pol;
    static const scope_t empty = { 0 };

    memset(&pol, 0x5a, sizeof(pol));
    reencrypt_policy_init(&pol);
    assert_int_equal(pol.engine, REENCRYPT_UNSET);
    assert_null(pol.engine_where);
    assert_null(pol.anchors);
    assert_int_equal(pol.verify_depth, REENCRYPT_UNSET);
    assert_null(pol.verify_names);
    assert_int_equal(pol.sni_mode, REENCRYPT_SNI_UNSET);
    assert_null(pol.sni_name);
    assert_null(compare(p, &pol, &empty));
}

typedef struct {
    const char *label;
    scope_t s;
    int enabled;
    int depth;
    reencrypt_sni_mode_e sni;
} getter_case_t;

static const getter_case_t getter_cases[] = {
    { "nothing set", { 0 }, 0, REENCRYPT_DEPTH_DEFAULT,
      REENCRYPT_SNI_BACKEND },
    { "On", { .engine = ENG_ON }, 1, 4, REENCRYPT_SNI_BACKEND },
    { "Off", { .engine = ENG_OFF }, 0, 4, REENCRYPT_SNI_BACKEND },
    { "depth 0", { .depth = DEPTH(0) }, 0, 0, REENCRYPT_SNI_BACKEND },
    { "depth 32", { .depth = DEPTH(32) }, 0, 32, REENCRYPT_SNI_BACKEND },
    { "SNI Host", { .sni = REENCRYPT_SNI_HOST }, 0, 4, REENCRYPT_SNI_HOST },
    { "SNI Off", { .sni = REENCRYPT_SNI_OFF }, 0, 4, REENCRYPT_SNI_OFF },
    { "SNI name", { .sni = REENCRYPT_SNI_NAME, .sni_name = "n.test" }, 0, 4,
      REENCRYPT_SNI_NAME },
    { "SNI Backend", { .sni = REENCRYPT_SNI_BACKEND }, 0, 4,
      REENCRYPT_SNI_BACKEND },
};

static const char *getter_case(apr_pool_t *p, const getter_case_t *c)
{
    reencrypt_policy_t pol;

    build(p, &pol, &c->s);
    WANT_INT("enabled", reencrypt_policy_enabled(&pol) != 0, c->enabled);
    WANT_INT("depth", reencrypt_policy_depth(&pol), c->depth);
    WANT_INT("sni mode", reencrypt_policy_sni_mode(&pol), c->sni);
    return NULL;
}

static void test_policy_getters(void **state)
{
    apr_pool_t *p = *state;

    WALK_TABLE("policy_getters", getter_cases, getter_case, p);
    /* no policy at all is a policy that is off */
    assert_int_equal(reencrypt_policy_enabled(NULL), 0);
}


/* ------------------------------------------------------------------ */
/* Revocation: the directive's parser, merge, defaults, id, lint       */

typedef struct {
    const char *label;
    const char *args;            /* space-separated */
    const char *err;             /* NULL: accepted */
    reencrypt_revocation_e mode;
    int no_crl_ok;
} rev_parse_case_t;

static const rev_parse_case_t rev_parse_cases[] = {
    { "Chain", "Chain", NULL, REENCRYPT_REVOCATION_CHAIN, 0 },
    { "leaf, any case", "lEAF", NULL, REENCRYPT_REVOCATION_LEAF, 0 },
    { "Off", "off", NULL, REENCRYPT_REVOCATION_OFF, 0 },
    { "Chain NoCRLForCertOK", "Chain NoCRLForCertOK", NULL,
      REENCRYPT_REVOCATION_CHAIN, 1 },
    { "Leaf nocrlforcertok", "Leaf nocrlforcertok", NULL,
      REENCRYPT_REVOCATION_LEAF, 1 },
    { "unknown mode", "Sometimes",
      "ReencryptRevocationCheck: 'Sometimes' is not Chain, Leaf or Off", 0,
      0 },
    { "mod_ssl's spelling", "chain no_crl_for_cert_ok",
      "ReencryptRevocationCheck: 'no_crl_for_cert_ok' is not "
      "NoCRLForCertOK", 0, 0 },
    { "Off with the keyword", "Off NoCRLForCertOK",
      "ReencryptRevocationCheck: NoCRLForCertOK cannot go with Off", 0, 0 },
    { "three words", "Chain NoCRLForCertOK x",
      "ReencryptRevocationCheck takes Chain, Leaf or Off, optionally "
      "followed by NoCRLForCertOK", 0, 0 },
};

static const char *rev_parse_case(apr_pool_t *p, const rev_parse_case_t *c)
{
    char *argv[4], *last = NULL, *w;
    char *copy = apr_pstrdup(p, c->args);
    int argc = 0;
    reencrypt_revocation_e mode = REENCRYPT_REVOCATION_UNSET;
    int no_crl_ok = -1;
    const char *err;

    for (w = apr_strtok(copy, " ", &last); w && argc < 4;
         w = apr_strtok(NULL, " ", &last)) {
        argv[argc++] = w;
    }
    err = reencrypt_parse_revocation(p, argc, argv, &mode, &no_crl_ok);
    WANT_STR("error", err, c->err);
    if (!c->err) {
        WANT_INT("mode", mode, c->mode);
        WANT_INT("no_crl_ok", no_crl_ok, c->no_crl_ok);
    }
    return NULL;
}

WALK_TEST(test_parse_revocation, "parse_revocation", rev_parse_cases,
          rev_parse_case)

/* Two CRL sets, told apart by their files' digests */
static reencrypt_crl_file_t crl_file_a = { "/a.crl", NULL, { 1 }, NULL, 0 };
static reencrypt_crl_file_t crl_file_b = { "/b.crl", NULL, { 2 }, NULL, 0 };

static const reencrypt_crls_t *crl_set(apr_pool_t *p,
                                       reencrypt_crl_file_t *f)
{
    reencrypt_crls_t *set = apr_pcalloc(p, sizeof(*set));

    set->files = apr_array_make(p, 1, sizeof(const void *));
    APR_ARRAY_PUSH(set->files, const reencrypt_crl_file_t *) = f;
    set->where = "x.conf:1";
    return set;
}

typedef struct {
    const char *label;
    int p_crls, c_crls;              /* 0 none, 1 set A, 2 set B */
    reencrypt_revocation_e p_mode, c_mode;
    int p_ok, c_ok;                  /* NoCRLForCertOK with the mode */
    const char *p_ssl_file, *c_ssl_file;
    int p_ssl_check, c_ssl_check;    /* -1 unset */
    /* wanted */
    int crls;
    reencrypt_revocation_e mode;     /* effective */
    int no_crl_ok;                   /* effective */
    const char *where;
    const char *ssl_file;
    int ssl_check;
} rev_merge_case_t;

#define RU REENCRYPT_REVOCATION_UNSET
#define RC REENCRYPT_REVOCATION_CHAIN
#define RL REENCRYPT_REVOCATION_LEAF
#define RO REENCRYPT_REVOCATION_OFF

static const rev_merge_case_t rev_merge_cases[] = {
    { "nothing set: Off", 0, 0, RU, RU, 0, 0, NULL, NULL, -1, -1,
      0, RO, 0, NULL, NULL, -1 },
    { "CRLs in parent: Chain by default", 1, 0, RU, RU, 0, 0, NULL, NULL,
      -1, -1, 1, RC, 0, NULL, NULL, -1 },
    { "CRLs in both: child's replace", 1, 2, RU, RU, 0, 0, NULL, NULL, -1,
      -1, 2, RC, 0, NULL, NULL, -1 },
    { "mode with its keyword from the parent", 1, 0, RL, RU, 1, 0, NULL,
      NULL, -1, -1, 1, RL, 1, "p.conf:2", NULL, -1 },
    { "child's mode drops parent's keyword", 1, 0, RL, RC, 1, 0, NULL,
      NULL, -1, -1, 1, RC, 0, "c.conf:2", NULL, -1 },
    { "child Off", 1, 2, RC, RO, 0, 0, NULL, NULL, -1, -1, 2, RO, 0,
      "c.conf:2", NULL, -1 },
    { "mod_ssl's file and check from the parent", 0, 0, RU, RU, 0, 0,
      "p.conf:7", NULL, 1, -1, 0, RO, 0, NULL, "p.conf:7", 1 },
    { "child's check none over parent's chain", 0, 0, RU, RU, 0, 0,
      "p.conf:7", "c.conf:7", 1, 0, 0, RO, 0, NULL, "c.conf:7", 0 },
};

static void rev_scope(apr_pool_t *p, reencrypt_policy_t *pol, int crls,
                      reencrypt_revocation_e mode, int ok, const char *at,
                      const char *ssl_file, int ssl_check)
{
    reencrypt_policy_init(pol);
    pol->crls = crls ? crl_set(p, crls == 1 ? &crl_file_a : &crl_file_b)
                     : NULL;
    if (mode != RU) {
        pol->revocation = mode;
        pol->no_crl_ok = ok;
        pol->revocation_where = at;
    }
    pol->ssl_crl_file_where = ssl_file;
    if (ssl_check >= 0) {
        pol->ssl_crl_check = ssl_check;
        pol->ssl_crl_check_where = ssl_file;
    }
}

static const char *rev_merge_case(apr_pool_t *p, const rev_merge_case_t *c)
{
    reencrypt_policy_t parent, child, out;
    const reencrypt_crl_file_t *f;

    rev_scope(p, &parent, c->p_crls, c->p_mode, c->p_ok, "p.conf:2",
              c->p_ssl_file, c->p_ssl_check);
    rev_scope(p, &child, c->c_crls, c->c_mode, c->c_ok, "c.conf:2",
              c->c_ssl_file, c->c_ssl_check);
    memset(&out, 0x5a, sizeof(out));
    reencrypt_policy_merge(&out, &parent, &child);
    if (!c->crls) {
        WANT_INT("crls set", out.crls != NULL, 0);
    }
    else {
        f = APR_ARRAY_IDX(out.crls->files, 0, const reencrypt_crl_file_t *);
        WANT_STR("crl file", f->path, c->crls == 1 ? "/a.crl" : "/b.crl");
    }
    WANT_INT("mode", reencrypt_policy_revocation(&out), c->mode);
    WANT_INT("no_crl_ok", reencrypt_policy_no_crl_ok(&out), c->no_crl_ok);
    WANT_STR("where", out.revocation_where, c->where);
    WANT_STR("ssl file", out.ssl_crl_file_where, c->ssl_file);
    WANT_INT("ssl check", out.ssl_crl_check, c->ssl_check);
    return NULL;
}

WALK_TEST(test_policy_revocation_merge, "revocation_merge", rev_merge_cases,
          rev_merge_case)

/* The revocation settings are part of the policy id; lint wants CRLs
 * where a check is asked for, and a chain to check. */
static void test_policy_revocation_id_lint(void **state)
{
    apr_pool_t *p = *state;
    reencrypt_anchors_t anchors = { "/ca.pem", NULL, 1, { 0 } };
    reencrypt_policy_t pol;
    apr_uint64_t none, a, b, leaf, leaf_ok, off;
    const char *err;

    reencrypt_policy_init(&pol);
    pol.engine = 1;
    pol.anchors = &anchors;
    none = reencrypt_policy_id(&pol);
    assert_null(reencrypt_policy_lint(p, &pol));
    pol.crls = crl_set(p, &crl_file_a);
    a = reencrypt_policy_id(&pol);
    assert_null(reencrypt_policy_lint(p, &pol));
    pol.crls = crl_set(p, &crl_file_b);
    b = reencrypt_policy_id(&pol);
    pol.revocation = REENCRYPT_REVOCATION_LEAF;
    pol.no_crl_ok = 0;
    leaf = reencrypt_policy_id(&pol);
    pol.no_crl_ok = 1;
    leaf_ok = reencrypt_policy_id(&pol);
    pol.revocation = REENCRYPT_REVOCATION_OFF;
    pol.no_crl_ok = 0;
    off = reencrypt_policy_id(&pol);
    assert_true(none != a && a != b && b != leaf && leaf != leaf_ok);
    assert_true(off != b && off != leaf);
    /* Off with CRLs or without: the same (no CRL is looked at) */
    assert_true(off == none);

    pol.crls = NULL;
    pol.revocation = REENCRYPT_REVOCATION_LEAF;
    pol.revocation_where = "r.conf:4";
    err = reencrypt_policy_lint(p, &pol);
    assert_string_equal(err, "has ReencryptRevocationCheck Leaf (at "
                        "r.conf:4) but no CRL: set ReencryptCARevocationFile "
                        "in this scope or an enclosing one");
    pol.revocation = REENCRYPT_REVOCATION_UNSET;
    pol.crls = crl_set(p, &crl_file_a);
    pol.trust = REENCRYPT_TRUST_PIN_ONLY;
    pol.pins = apr_array_make(p, 1, sizeof(reencrypt_pin_t));
    apr_array_push(pol.pins);
    err = reencrypt_policy_lint(p, &pol);
    assert_non_null(err);
    assert_non_null(strstr(err, "cannot go with ReencryptTrust PinOnly"));
    pol.revocation = REENCRYPT_REVOCATION_OFF;
    assert_null(reencrypt_policy_lint(p, &pol));
}

/* ------------------------------------------------------------------ */
/* reencrypt_policy_merge                                              */

typedef struct {
    const char *label;
    scope_t parent;
    scope_t child;
    scope_t want;
} merge_case_t;

#define P_ALL { ENG_ON, "p.conf:1", ANCH_A, DEPTH(2), "p1.test,p2.test", \
                REENCRYPT_SNI_NAME, "p.test" }
#define C_ALL { ENG_OFF, "c.conf:9", ANCH_B, DEPTH(7), "c1.test",         \
                REENCRYPT_SNI_HOST, NULL }

static const merge_case_t merge_cases[] = {
    { "nothing set anywhere", { 0 }, { 0 }, { 0 } },
    /* engine (with the place of its On) */
    { "engine in parent only",
      { .engine = ENG_ON, .where = "p.conf:1" }, { 0 },
      { .engine = ENG_ON, .where = "p.conf:1" } },
    { "engine in child only",
      { 0 }, { .engine = ENG_ON, .where = "c.conf:9" },
      { .engine = ENG_ON, .where = "c.conf:9" } },
    { "engine in both: child Off wins over parent On",
      { .engine = ENG_ON, .where = "p.conf:1" },
      { .engine = ENG_OFF, .where = "c.conf:9" },
      { .engine = ENG_OFF, .where = "c.conf:9" } },
    { "engine in both: child On wins over parent Off",
      { .engine = ENG_OFF, .where = "p.conf:1" },
      { .engine = ENG_ON, .where = "c.conf:9" },
      { .engine = ENG_ON, .where = "c.conf:9" } },
    /* anchors */
    { "anchors in parent only", { .anchors = ANCH_A }, { 0 },
      { .anchors = ANCH_A } },
    { "anchors in child only", { 0 }, { .anchors = ANCH_B },
      { .anchors = ANCH_B } },
    { "anchors in both", { .anchors = ANCH_A }, { .anchors = ANCH_B },
      { .anchors = ANCH_B } },
    /* depth */
    { "depth in parent only", { .depth = DEPTH(2) }, { 0 },
      { .depth = DEPTH(2) } },
    { "depth in child only", { 0 }, { .depth = DEPTH(7) },
      { .depth = DEPTH(7) } },
    { "depth in both", { .depth = DEPTH(2) }, { .depth = DEPTH(7) },
      { .depth = DEPTH(7) } },
    { "depth 0 in child is a value", { .depth = DEPTH(5) },
      { .depth = DEPTH(0) }, { .depth = DEPTH(0) } },
    /* names: replaced, never appended */
    { "names in parent only", { .names = "p1.test,p2.test" }, { 0 },
      { .names = "p1.test,p2.test" } },
    { "names in child only", { 0 }, { .names = "c1.test" },
      { .names = "c1.test" } },
    { "names in both: child's list replaces parent's",
      { .names = "p1.test,p2.test" }, { .names = "c1.test" },
      { .names = "c1.test" } },
    { "names in both: longer child list",
      { .names = "p1.test" }, { .names = "c1.test,c2.test,192.0.2.1" },
      { .names = "c1.test,c2.test,192.0.2.1" } },
    /* SNI: mode and name travel together */
    { "sni in parent only",
      { .sni = REENCRYPT_SNI_NAME, .sni_name = "p.test" }, { 0 },
      { .sni = REENCRYPT_SNI_NAME, .sni_name = "p.test" } },
    { "sni in child only", { 0 }, { .sni = REENCRYPT_SNI_HOST },
      { .sni = REENCRYPT_SNI_HOST } },
    { "sni in both: names",
      { .sni = REENCRYPT_SNI_NAME, .sni_name = "p.test" },
      { .sni = REENCRYPT_SNI_NAME, .sni_name = "c.test" },
      { .sni = REENCRYPT_SNI_NAME, .sni_name = "c.test" } },
    { "sni in both: child Backend drops parent's name",
      { .sni = REENCRYPT_SNI_NAME, .sni_name = "p.test" },
      { .sni = REENCRYPT_SNI_BACKEND },
      { .sni = REENCRYPT_SNI_BACKEND } },
    { "sni in both: child Off drops parent's name",
      { .sni = REENCRYPT_SNI_NAME, .sni_name = "p.test" },
      { .sni = REENCRYPT_SNI_OFF },
      { .sni = REENCRYPT_SNI_OFF } },
    { "sni in both: child name over parent Off",
      { .sni = REENCRYPT_SNI_OFF },
      { .sni = REENCRYPT_SNI_NAME, .sni_name = "c.test" },
      { .sni = REENCRYPT_SNI_NAME, .sni_name = "c.test" } },
    /* everything at once */
    { "all in parent, nothing in child", P_ALL, { 0 }, P_ALL },
    { "nothing in parent, all in child", { 0 }, C_ALL, C_ALL },
    { "all in both", P_ALL, C_ALL, C_ALL },
    { "all in parent, child sets depth only", P_ALL, { .depth = DEPTH(9) },
      { ENG_ON, "p.conf:1", ANCH_A, DEPTH(9), "p1.test,p2.test",
        REENCRYPT_SNI_NAME, "p.test" } },
    { "all in parent, child sets names only", P_ALL, { .names = "x.test" },
      { ENG_ON, "p.conf:1", ANCH_A, DEPTH(2), "x.test",
        REENCRYPT_SNI_NAME, "p.test" } },
    { "all in parent, child turns engine Off", P_ALL,
      { .engine = ENG_OFF, .where = "c.conf:3" },
      { ENG_OFF, "c.conf:3", ANCH_A, DEPTH(2), "p1.test,p2.test",
        REENCRYPT_SNI_NAME, "p.test" } },
};

static const char *merge_case(apr_pool_t *p, const merge_case_t *c)
{
    reencrypt_policy_t parent, child, out;
    const char *m;

    build(p, &parent, &c->parent);
    build(p, &child, &c->child);
    memset(&out, 0x5a, sizeof(out));
    reencrypt_policy_merge(&out, &parent, &child);
    if ((m = compare(p, &out, &c->want)) != NULL) {
        return m;
    }
    /* a list is taken over as it is: the chosen scope's own array */
    if (c->want.names) {
        const apr_array_header_t *src = c->child.names ? child.verify_names
                                                       : parent.verify_names;
        if (out.verify_names != src) {
            return "verify_names is not the chosen scope's list";
        }
    }
    /* the inputs are left alone (no list appended to another) */
    if ((m = compare(p, &parent, &c->parent)) != NULL) {
        return apr_pstrcat(p, "parent changed: ", m, NULL);
    }
    if ((m = compare(p, &child, &c->child)) != NULL) {
        return apr_pstrcat(p, "child changed: ", m, NULL);
    }
    return NULL;
}

WALK_TEST(test_policy_merge, "policy_merge", merge_cases, merge_case)

/* Three levels (server, virtual host, <Location>): merging is applied
 * twice and every level keeps what it sets. */
static void test_policy_merge_three_levels(void **state)
{
    apr_pool_t *p = *state;
    static const scope_t server = { ENG_ON, "s.conf:1", ANCH_A, DEPTH(3),
                                   NULL, REENCRYPT_SNI_HOST, NULL };
    static const scope_t vhost = { .anchors = ANCH_B,
                                  .names = "v.test" };
    static const scope_t location = { .sni = REENCRYPT_SNI_NAME,
                                     .sni_name = "l.test" };
    static const scope_t want = { ENG_ON, "s.conf:1", ANCH_B, DEPTH(3),
                                 "v.test", REENCRYPT_SNI_NAME, "l.test" };
    reencrypt_policy_t s, v, l, sv, svl;

    build(p, &s, &server);
    build(p, &v, &vhost);
    build(p, &l, &location);
    reencrypt_policy_merge(&sv, &s, &v);
    reencrypt_policy_merge(&svl, &sv, &l);
    assert_null(compare(p, &svl, &want));
}

/* The place of ReencryptSNI travels with its mode (a warning names it). */
typedef struct {
    const char *label;
    reencrypt_sni_mode_e parent, child;
    const char *parent_where, *child_where;
    reencrypt_sni_mode_e want;
    const char *want_where;
} sni_where_case_t;

static const sni_where_case_t sni_where_cases[] = {
    { "neither sets it", REENCRYPT_SNI_UNSET, REENCRYPT_SNI_UNSET, NULL, NULL,
      REENCRYPT_SNI_UNSET, NULL },
    { "parent only", REENCRYPT_SNI_HOST, REENCRYPT_SNI_UNSET, "p.conf:3",
      NULL, REENCRYPT_SNI_HOST, "p.conf:3" },
    { "child only", REENCRYPT_SNI_UNSET, REENCRYPT_SNI_HOST, NULL,
      "c.conf:7", REENCRYPT_SNI_HOST, "c.conf:7" },
    { "both: the child's", REENCRYPT_SNI_HOST, REENCRYPT_SNI_OFF, "p.conf:3",
      "c.conf:7", REENCRYPT_SNI_OFF, "c.conf:7" },
};

static const char *sni_where_case(apr_pool_t *p, const sni_where_case_t *c)
{
    reencrypt_policy_t parent, child, out;

    reencrypt_policy_init(&parent);
    reencrypt_policy_init(&child);
    parent.sni_mode = c->parent;
    parent.sni_where = c->parent_where;
    child.sni_mode = c->child;
    child.sni_where = c->child_where;
    memset(&out, 0x5a, sizeof(out));
    reencrypt_policy_merge(&out, &parent, &child);
    WANT_INT("sni_mode", out.sni_mode, c->want);
    WANT_STR("sni_where", out.sni_where, c->want_where);
    return NULL;
}

WALK_TEST(test_policy_merge_sni_where, "policy_merge_sni_where",
          sni_where_cases, sni_where_case)

/* ------------------------------------------------------------------ */
/* The client identity read from mod_ssl's directives                  */

static const unsigned char ID_A[REENCRYPT_CLIENT_ID_LEN] = { 0xaa, 1, 2 };
static const unsigned char ID_A2[REENCRYPT_CLIENT_ID_LEN] = { 0xaa, 1, 2 };
static const unsigned char ID_B[REENCRYPT_CLIENT_ID_LEN] = { 0xbb, 9 };

typedef struct {
    const char *label;
    const unsigned char *p_file, *p_path, *p_chain;
    const unsigned char *c_file, *c_path, *c_chain;
    int p_expire, c_expire;
    /* wanted after the merge: 'p' parent's, 'c' child's, '0' none */
    const char *want;           /* file, path, chain, expire */
} client_merge_case_t;

static const client_merge_case_t client_merge_cases[] = {
    { "nothing set", NULL, NULL, NULL, NULL, NULL, NULL, -1, -1, "000-" },
    { "file in parent only", ID_A, NULL, NULL, NULL, NULL, NULL, -1, -1,
      "p00-" },
    { "file in child only", NULL, NULL, NULL, ID_B, NULL, NULL, -1, -1,
      "c00-" },
    { "file in both: child's", ID_A, NULL, NULL, ID_B, NULL, NULL, -1, -1,
      "c00-" },
    { "each directive on its own: parent file, child path",
      ID_A, NULL, NULL, NULL, ID_B, NULL, -1, -1, "pc0-" },
    { "chain in parent, file in child",
      NULL, NULL, ID_A, ID_B, NULL, NULL, -1, -1, "c0p-" },
    { "expire Off in parent only", NULL, NULL, NULL, NULL, NULL, NULL, 0,
      -1, "000p" },
    { "expire On in child over Off", NULL, NULL, NULL, NULL, NULL, NULL, 0,
      1, "000c" },
};

static const char *client_merge_one(apr_pool_t *p,
                                    const client_merge_case_t *c)
{
    reencrypt_policy_t parent, child, out;
    const unsigned char *got[3], *pv[3], *cv[3];
    int i;

    reencrypt_policy_init(&parent);
    reencrypt_policy_init(&child);
    parent.client_cert_file = c->p_file;
    parent.client_cert_path = c->p_path;
    parent.client_chain_file = c->p_chain;
    parent.ssl_check_peer_expire = c->p_expire;
    child.client_cert_file = c->c_file;
    child.client_cert_path = c->c_path;
    child.client_chain_file = c->c_chain;
    child.ssl_check_peer_expire = c->c_expire;
    memset(&out, 0x5a, sizeof(out));
    reencrypt_policy_merge(&out, &parent, &child);
    got[0] = out.client_cert_file;
    got[1] = out.client_cert_path;
    got[2] = out.client_chain_file;
    pv[0] = c->p_file;
    pv[1] = c->p_path;
    pv[2] = c->p_chain;
    cv[0] = c->c_file;
    cv[1] = c->c_path;
    cv[2] = c->c_chain;
    for (i = 0; i < 3; i++) {
        const unsigned char *want = c->want[i] == 'p' ? pv[i]
                                    : c->want[i] == 'c' ? cv[i] : NULL;
        if (got[i] != want) {
            return apr_psprintf(p, "digest %d is not the %c scope's", i,
                                c->want[i]);
        }
    }
    if (out.ssl_check_peer_expire
        != (c->want[3] == 'p' ? c->p_expire
            : c->want[3] == 'c' ? c->c_expire : REENCRYPT_UNSET)) {
        return apr_psprintf(p, "ssl_check_peer_expire is %d",
                            out.ssl_check_peer_expire);
    }
    return NULL;
}

WALK_TEST(test_policy_client_merge, "client_merge", client_merge_cases,
          client_merge_one)

/* A <Proxy> section that mod_ssl gives a proxy context of its own: its
 * settings come from its server, never from an enclosing section, and
 * replace the parent's when merged (ssl_proxy_section_post_config,
 * ssl_config_perdir_merge). */
static void test_policy_ssl_section(void **state)
{
    reencrypt_policy_t server, outer, legacy, other, req, out;

    (void)state;
    reencrypt_policy_init(&server);
    reencrypt_policy_init(&outer);
    reencrypt_policy_init(&legacy);
    reencrypt_policy_init(&other);
    server.ssl_check_peer_expire = 0;
    server.client_chain_file = ID_B;
    outer.client_cert_file = ID_A;          /* <Proxy https://be/> */
    /* <Proxy https://be/legacy/>: a mod_ssl directive, no certificate */
    reencrypt_policy_ssl_section(&outer, &server);
    reencrypt_policy_ssl_section(&legacy, &server);
    assert_true(legacy.ssl_proxy_section);
    assert_null(legacy.client_cert_file);
    assert_ptr_equal(legacy.client_chain_file, ID_B);   /* the server's */
    assert_int_equal(legacy.ssl_check_peer_expire, 0);
    /* settling twice changes nothing */
    reencrypt_policy_ssl_section(&legacy, &outer);
    assert_null(legacy.client_cert_file);
    /* a request under both: the server, then each section in turn */
    reencrypt_policy_merge(&req, &server, &outer);
    assert_ptr_equal(req.client_cert_file, ID_A);
    reencrypt_policy_merge(&out, &req, &legacy);
    assert_null(out.client_cert_file);      /* replaced, not inherited */
    assert_ptr_equal(out.client_chain_file, ID_B);
    /* a section without mod_ssl's directives inherits, one by one */
    reencrypt_policy_merge(&out, &req, &other);
    assert_ptr_equal(out.client_cert_file, ID_A);
    /* and a <Location> merged over a section keeps the section's */
    reencrypt_policy_merge(&req, &out, &other);
    assert_ptr_equal(req.client_cert_file, ID_A);
}

/* The "file:line" of the trust anchors and of the expected names, and
 * the file names of the client certificate directives, travel with
 * their values: the child's where it sets the value, else the parent's
 * (apachectl -t -D DUMP_REENCRYPT shows them; REENCRYPT_PROBE loads the
 * client certificate by its name). */
static void test_policy_merge_list_wheres(void **state)
{
    apr_pool_t *p = *state;
    reencrypt_policy_t parent, child, none, out, section;
    reencrypt_anchors_t a = { "/a.pem", NULL, 1, { 0 } };
    reencrypt_anchors_t b = { "/b.pem", NULL, 2, { 0 } };

    reencrypt_policy_init(&parent);
    reencrypt_policy_init(&child);
    reencrypt_policy_init(&none);
    parent.anchors = &a;
    parent.anchors_where = "p.conf:1";
    parent.verify_names = list_of(p, "p.test");
    parent.names_where = "p.conf:2";
    parent.client_cert_file = ID_A;
    parent.client_cert_file_name = "/p-client.pem";
    parent.client_chain_file = ID_B;
    parent.client_chain_file_name = "/p-chain.pem";

    reencrypt_policy_merge(&out, &parent, &none);
    assert_ptr_equal(out.anchors, &a);
    assert_string_equal(out.anchors_where, "p.conf:1");
    assert_string_equal(out.names_where, "p.conf:2");
    assert_string_equal(out.client_cert_file_name, "/p-client.pem");
    assert_string_equal(out.client_chain_file_name, "/p-chain.pem");
    assert_null(out.client_cert_path_name);

    child.anchors = &b;
    child.anchors_where = "c.conf:8";
    child.verify_names = list_of(p, "c.test");
    child.names_where = "c.conf:9";
    child.client_cert_file = ID_B;
    child.client_cert_file_name = "/c-client.pem";
    reencrypt_policy_merge(&out, &parent, &child);
    assert_ptr_equal(out.anchors, &b);
    assert_string_equal(out.anchors_where, "c.conf:8");
    assert_string_equal(out.names_where, "c.conf:9");
    assert_string_equal(out.client_cert_file_name, "/c-client.pem");
    assert_string_equal(out.client_chain_file_name, "/p-chain.pem");

    /* a section of mod_ssl's own: the names of its server's files, the
     * parent's replaced whole */
    reencrypt_policy_init(&section);
    reencrypt_policy_ssl_section(&section, &none);
    reencrypt_policy_merge(&out, &parent, &section);
    assert_null(out.client_cert_file_name);
    assert_null(out.client_chain_file_name);
    reencrypt_policy_init(&section);
    reencrypt_policy_ssl_section(&section, &parent);
    assert_string_equal(section.client_cert_file_name, "/p-client.pem");
    reencrypt_policy_merge(&out, &none, &section);
    assert_string_equal(out.client_chain_file_name, "/p-chain.pem");
}

/* The client identity is part of the policy's: another certificate, or
 * none, gives another id; the same bytes elsewhere give the same. */
static void test_policy_client_id(void **state)
{
    apr_pool_t *p = *state;
    static const scope_t base = { ENG_ON, "a.conf:1", ANCH_A, DEPTH(4),
                                  "good.test", REENCRYPT_SNI_NAME,
                                  "s.test" };
    reencrypt_policy_t a, b;
    const char *id;

    build(p, &a, &base);
    build(p, &b, &base);
    assert_true(reencrypt_policy_id(&a) == reencrypt_policy_id(&b));
    assert_string_equal(reencrypt_policy_client_id(p, &a), "-|-|-");
    a.client_cert_file = ID_A;
    assert_true(reencrypt_policy_id(&a) != reencrypt_policy_id(&b));
    b.client_cert_file = ID_A2;
    assert_true(reencrypt_policy_id(&a) == reencrypt_policy_id(&b));
    b.client_cert_file = ID_B;
    assert_true(reencrypt_policy_id(&a) != reencrypt_policy_id(&b));
    /* the same digest under another directive is another identity */
    b.client_cert_file = NULL;
    b.client_cert_path = ID_A;
    assert_true(reencrypt_policy_id(&a) != reencrypt_policy_id(&b));
    b.client_cert_path = NULL;
    b.client_chain_file = ID_A;
    assert_true(reencrypt_policy_id(&a) != reencrypt_policy_id(&b));
    id = reencrypt_policy_client_id(p, &a);
    assert_int_equal(strlen(id), 2 * REENCRYPT_CLIENT_ID_LEN + 4);
    assert_true(!strncmp(id, "aa0102", 6));
    assert_string_equal(id + 2 * REENCRYPT_CLIENT_ID_LEN, "|-|-");
    /* a policy that is off stays 0 */
    a.engine = 0;
    assert_true(reencrypt_policy_id(&a) == 0);
}

/* ------------------------------------------------------------------ */
/* reencrypt_policy_id                                                 */

#define BASE { ENG_ON, "a.conf:1", ANCH_A, DEPTH(4), "good.test,127.0.0.1", \
               REENCRYPT_SNI_NAME, "s.test" }

typedef struct {
    const char *label;
    scope_t a;
    scope_t b;
    int same;              /* 1: equal ids, 0: different ids */
} id_case_t;

static const id_case_t id_cases[] = {
    /* equal values give equal ids, whatever the addresses */
    { "same values, separately built", BASE, BASE, 1 },
    { "same anchors in another object",
      BASE, { ENG_ON, "a.conf:1", ANCH_A2, DEPTH(4), "good.test,127.0.0.1",
              REENCRYPT_SNI_NAME, "s.test" }, 1 },
    { "place of the On is not part of the policy",
      BASE, { ENG_ON, "other.conf:77", ANCH_A, DEPTH(4),
              "good.test,127.0.0.1", REENCRYPT_SNI_NAME, "s.test" }, 1 },
    { "depth unset equals depth 4 (the default)",
      { ENG_ON, NULL, ANCH_A, 0, NULL, REENCRYPT_SNI_HOST, NULL },
      { ENG_ON, NULL, ANCH_A, DEPTH(REENCRYPT_DEPTH_DEFAULT), NULL,
        REENCRYPT_SNI_HOST, NULL }, 1 },
    { "SNI unset equals SNI Backend (the default)",
      { ENG_ON, NULL, ANCH_A, DEPTH(2), NULL, 0, NULL },
      { ENG_ON, NULL, ANCH_A, DEPTH(2), NULL, REENCRYPT_SNI_BACKEND, NULL },
      1 },
    /* any change of one field gives another id */
    { "no anchors",
      BASE, { ENG_ON, "a.conf:1", 0, DEPTH(4), "good.test,127.0.0.1",
              REENCRYPT_SNI_NAME, "s.test" }, 0 },
    { "other anchors",
      BASE, { ENG_ON, "a.conf:1", ANCH_B, DEPTH(4), "good.test,127.0.0.1",
              REENCRYPT_SNI_NAME, "s.test" }, 0 },
    { "anchors file content changed",
      BASE, { ENG_ON, "a.conf:1", ANCH_A_DIG, DEPTH(4),
              "good.test,127.0.0.1", REENCRYPT_SNI_NAME, "s.test" }, 0 },
    { "anchors from another path",
      BASE, { ENG_ON, "a.conf:1", ANCH_A_PTH, DEPTH(4),
              "good.test,127.0.0.1", REENCRYPT_SNI_NAME, "s.test" }, 0 },
    { "depth 5",
      BASE, { ENG_ON, "a.conf:1", ANCH_A, DEPTH(5), "good.test,127.0.0.1",
              REENCRYPT_SNI_NAME, "s.test" }, 0 },
    { "depth 0",
      BASE, { ENG_ON, "a.conf:1", ANCH_A, DEPTH(0), "good.test,127.0.0.1",
              REENCRYPT_SNI_NAME, "s.test" }, 0 },
    { "no names",
      BASE, { ENG_ON, "a.conf:1", ANCH_A, DEPTH(4), NULL,
              REENCRYPT_SNI_NAME, "s.test" }, 0 },
    { "one name less",
      BASE, { ENG_ON, "a.conf:1", ANCH_A, DEPTH(4), "good.test",
              REENCRYPT_SNI_NAME, "s.test" }, 0 },
    { "one name more",
      BASE, { ENG_ON, "a.conf:1", ANCH_A, DEPTH(4),
              "good.test,127.0.0.1,::1", REENCRYPT_SNI_NAME, "s.test" }, 0 },
    { "one name changed",
      BASE, { ENG_ON, "a.conf:1", ANCH_A, DEPTH(4), "good.test,127.0.0.2",
              REENCRYPT_SNI_NAME, "s.test" }, 0 },
    { "names split differently (same characters)",
      BASE, { ENG_ON, "a.conf:1", ANCH_A, DEPTH(4), "good.tes,t127.0.0.1",
              REENCRYPT_SNI_NAME, "s.test" }, 0 },
    { "SNI Backend",
      BASE, { ENG_ON, "a.conf:1", ANCH_A, DEPTH(4), "good.test,127.0.0.1",
              REENCRYPT_SNI_BACKEND, NULL }, 0 },
    { "SNI Host",
      BASE, { ENG_ON, "a.conf:1", ANCH_A, DEPTH(4), "good.test,127.0.0.1",
              REENCRYPT_SNI_HOST, NULL }, 0 },
    { "SNI Off",
      BASE, { ENG_ON, "a.conf:1", ANCH_A, DEPTH(4), "good.test,127.0.0.1",
              REENCRYPT_SNI_OFF, NULL }, 0 },
    { "SNI another name",
      BASE, { ENG_ON, "a.conf:1", ANCH_A, DEPTH(4), "good.test,127.0.0.1",
              REENCRYPT_SNI_NAME, "t.test" }, 0 },
    { "SNI Host vs SNI Off",
      { ENG_ON, NULL, ANCH_A, 0, NULL, REENCRYPT_SNI_HOST, NULL },
      { ENG_ON, NULL, ANCH_A, 0, NULL, REENCRYPT_SNI_OFF, NULL }, 0 },
};

static const char *id_case(apr_pool_t *p, const id_case_t *c)
{
    reencrypt_policy_t a, b;
    apr_uint64_t ia, ib;

    build(p, &a, &c->a);
    build(p, &b, &c->b);
    ia = reencrypt_policy_id(&a);
    ib = reencrypt_policy_id(&b);
    if (!ia || !ib) {
        return "a policy that is on has id 0";
    }
    if (c->same && ia != ib) {
        return apr_psprintf(p, "ids differ: %" APR_UINT64_T_HEX_FMT
                            " vs %" APR_UINT64_T_HEX_FMT, ia, ib);
    }
    if (!c->same && ia == ib) {
        return apr_psprintf(p, "ids are equal: %" APR_UINT64_T_HEX_FMT, ia);
    }
    /* the id depends on values only: computing it again gives it again */
    if (reencrypt_policy_id(&a) != ia) {
        return "id is not stable";
    }
    return NULL;
}

WALK_TEST(test_policy_id, "policy_id", id_cases, id_case)

/* The policies that differ from BASE by one field differ from each
 * other too. */
static void test_policy_id_all_distinct(void **state)
{
    apr_pool_t *p = *state;
    apr_uint64_t ids[N_ELEMS(id_cases) + 1];
    const char *labels[N_ELEMS(id_cases) + 1];
    static const scope_t base = BASE;
    reencrypt_policy_t pol;
    size_t i, j, n = 0;
    int dup = 0;

    build(p, &pol, &base);
    labels[n] = "base";
    ids[n++] = reencrypt_policy_id(&pol);
    for (i = 0; i < N_ELEMS(id_cases); i++) {
        if (!id_cases[i].same && id_cases[i].a.where
            && !strcmp(id_cases[i].a.where, "a.conf:1")) {
            build(p, &pol, &id_cases[i].b);
            labels[n] = id_cases[i].label;
            ids[n++] = reencrypt_policy_id(&pol);
        }
    }
    assert_true(n > 10);
    for (i = 0; i < n; i++) {
        for (j = i + 1; j < n; j++) {
            if (ids[i] == ids[j]) {
                print_error("same id for \"%s\" and \"%s\"\n", labels[i],
                            labels[j]);
                dup++;
            }
        }
    }
    assert_int_equal(dup, 0);
}

typedef struct {
    const char *label;
    scope_t s;
    int zero;
} id_zero_case_t;

static const id_zero_case_t id_zero_cases[] = {
    { "nothing set", { 0 }, 1 },
    { "everything but the engine", { 0, NULL, ANCH_A, DEPTH(4), "a.test",
                                     REENCRYPT_SNI_NAME, "s.test" }, 1 },
    { "engine Off with everything else", { ENG_OFF, "x.conf:2", ANCH_A,
                                           DEPTH(4), "a.test",
                                           REENCRYPT_SNI_NAME, "s.test" }, 1 },
    { "engine Off alone", { .engine = ENG_OFF }, 1 },
    { "engine On alone", { .engine = ENG_ON }, 0 },
    { "engine On with everything", BASE, 0 },
};

static const char *id_zero_case(apr_pool_t *p, const id_zero_case_t *c)
{
    reencrypt_policy_t pol;

    build(p, &pol, &c->s);
    WANT_INT("id is 0", reencrypt_policy_id(&pol) == 0, c->zero);
    return NULL;
}

WALK_TEST(test_policy_id_off, "policy_id_off", id_zero_cases, id_zero_case)

/* ------------------------------------------------------------------ */
/* reencrypt_sni_for                                                   */

typedef struct {
    const char *label;
    reencrypt_sni_mode_e mode;
    const char *name;
    const char *backend;
    const char *client;
    const char *want;
} sni_for_case_t;

static const sni_for_case_t sni_for_cases[] = {
    { "default is Backend", REENCRYPT_SNI_UNSET, NULL,
      "app.internal.test", "www.example.com", "app.internal.test" },
    { "Backend, DNS host", REENCRYPT_SNI_BACKEND, NULL,
      "app.internal.test", "www.example.com", "app.internal.test" },
    { "Backend, trailing dot dropped", REENCRYPT_SNI_BACKEND, NULL,
      "app.internal.test.", NULL, "app.internal.test" },
    { "Backend, lower-cased", REENCRYPT_SNI_BACKEND, NULL,
      "App.Internal.TEST", NULL, "app.internal.test" },
    { "Backend, single-label host", REENCRYPT_SNI_BACKEND, NULL,
      "localhost", NULL, "localhost" },
    { "Backend, IPv4 host", REENCRYPT_SNI_BACKEND, NULL,
      "192.0.2.10", "www.example.com", NULL },
    { "Backend, IPv6 host", REENCRYPT_SNI_BACKEND, NULL,
      "2001:db8::10", "www.example.com", NULL },
    { "Backend, bracketed IPv6 host", REENCRYPT_SNI_BACKEND, NULL,
      "[2001:db8::10]", "www.example.com", NULL },
    { "Backend, no host", REENCRYPT_SNI_BACKEND, NULL,
      NULL, "www.example.com", NULL },
    { "Backend, empty host", REENCRYPT_SNI_BACKEND, NULL,
      "", "www.example.com", NULL },
    { "Backend, not a DNS name", REENCRYPT_SNI_BACKEND, NULL,
      "bad_host", "www.example.com", NULL },
    { "Host, DNS client host", REENCRYPT_SNI_HOST, NULL,
      "app.internal.test", "www.example.com", "www.example.com" },
    { "Host, IPv4 client host", REENCRYPT_SNI_HOST, NULL,
      "app.internal.test", "203.0.113.5", NULL },
    { "Host, IPv6 client host", REENCRYPT_SNI_HOST, NULL,
      "app.internal.test", "[2001:db8::5]", NULL },
    { "Host, no client host (no fallback)", REENCRYPT_SNI_HOST, NULL,
      "app.internal.test", NULL, NULL },
    { "Off, DNS hosts", REENCRYPT_SNI_OFF, NULL,
      "app.internal.test", "www.example.com", NULL },
    { "Off, no hosts", REENCRYPT_SNI_OFF, NULL, NULL, NULL, NULL },
    { "Name, DNS hosts", REENCRYPT_SNI_NAME, "fixed.test",
      "app.internal.test", "www.example.com", "fixed.test" },
    { "Name, IP backend", REENCRYPT_SNI_NAME, "fixed.test",
      "192.0.2.10", NULL, "fixed.test" },
    { "Name, no hosts", REENCRYPT_SNI_NAME, "fixed.test",
      NULL, NULL, "fixed.test" },
};

static const char *sni_for_case(apr_pool_t *p, const sni_for_case_t *c)
{
    reencrypt_policy_t pol;
    scope_t s = { .engine = ENG_ON, .anchors = ANCH_A, .sni = c->mode,
                 .sni_name = c->name };

    build(p, &pol, &s);
    WANT_STR("sni", reencrypt_sni_for(p, &pol, c->backend, c->client),
             c->want);
    return NULL;
}

WALK_TEST(test_sni_for, "sni_for", sni_for_cases, sni_for_case)

/* ------------------------------------------------------------------ */
/* reencrypt_expected_names                                            */

typedef struct {
    const char *label;
    const char *names;           /* configured list, as in scope_t */
    const char *sni;
    const char *backend;
    const char *want;            /* "a,b"; "" for an empty list */
} names_case_t;

static const names_case_t names_cases[] = {
    { "configured list wins over SNI and backend",
      "a.test,192.0.2.7", "s.test", "b.test", "a.test,192.0.2.7" },
    { "configured list without SNI", "a.test", NULL, "b.test", "a.test" },
    { "configured list without anything else", "a.test", NULL, NULL,
      "a.test" },
    { "no list: the SNI sent", NULL, "s.test", "b.test", "s.test" },
    { "empty list counts as no list", "", "s.test", "b.test", "s.test" },
    { "no list, no SNI: the backend host", NULL, NULL, "b.test", "b.test" },
    { "backend IPv4 host", NULL, NULL, "192.0.2.10", "192.0.2.10" },
    { "backend IPv6 host, brackets stripped", NULL, NULL,
      "[2001:db8::10]", "2001:db8::10" },
    { "backend IPv6 host without brackets", NULL, NULL,
      "2001:db8::10", "2001:db8::10" },
    { "nothing at all", NULL, NULL, NULL, "" },
    { "empty backend host", NULL, NULL, "", "" },
};

static const char *names_case(apr_pool_t *p, const names_case_t *c)
{
    reencrypt_policy_t pol;
    scope_t s = { .engine = ENG_ON, .anchors = ANCH_A, .names = c->names };
    apr_array_header_t *got;

    build(p, &pol, &s);
    got = reencrypt_expected_names(p, &pol, c->sni, c->backend);
    if (!got) {
        return "no array";
    }
    if (got->elt_size != (int)sizeof(const char *)) {
        return "array of the wrong element size";
    }
    WANT_STR("names", list_str(p, got), c->want);
    return NULL;
}

WALK_TEST(test_expected_names, "expected_names", names_cases, names_case)

/* ------------------------------------------------------------------ */
/* reencrypt_cache_is_networked                                        */

typedef struct {
    const char *spec;
    int networked;          /* wanted */
} networked_case_t;

static const networked_case_t networked_cases[] = {
    { NULL, 0 },
    { "shmcb", 0 },
    { "SHMCB", 0 },
    { "shmcb:/var/run/x(512000)", 0 },
    { "none", 0 },
    { "dbm:/tmp/cache", 0 },
    { "memcache:127.0.0.1:11211", 1 },
    { "MEMCACHE:localhost:11211", 1 },
    { "memcache:[::1]:11211", 1 },
    { "memcache:10.0.5.21:11211", 1 },
    { "redis:127.0.0.1:6379", 1 },
    { "redis", 1 },
    { "dc:cache.example:5555", 1 },
    { "shmcbx", 1 },
};

static const char *networked_one(apr_pool_t *p, const networked_case_t *c)
{
    WANT_INT("networked", reencrypt_cache_is_networked(p, c->spec),
             c->networked);
    return NULL;
}

static void test_cache_is_networked(void **state)
{
    apr_pool_t *p = *state;
    walk_t w;
    size_t i;

    walk_start(&w, "networked_cases");
    for (i = 0; i < N_ELEMS(networked_cases); i++) {
        walk_case(&w, (int)i, networked_cases[i].spec
                              ? networked_cases[i].spec : "(null)",
                  NULL, networked_one(p, &networked_cases[i]));
    }
    walk_end(&w);
}

/* ------------------------------------------------------------------ */
/* reencrypt_port_of_scheme                                            */

typedef struct {
    const char *scheme;
    apr_port_t port;
} port_case_t;

static const port_case_t port_cases[] = {
    { "https", 443 },
    { "HTTPS", 443 },
    { "wss", 443 },
    { "WsS", 443 },
    { "h2", 443 },
    { "http", 80 },
    { "ws", 80 },
    { "h2c", 80 },
    { "H2C", 80 },
    { "ftp", 0 },
    { "ajp", 0 },
    { "balancer", 0 },
    { "h", 0 },
    { "h2x", 0 },
    { "", 0 },
    { NULL, 0 },
};

static const char *port_one(apr_pool_t *p, const port_case_t *c)
{
    apr_port_t got = reencrypt_port_of_scheme(c->scheme);

    if (got != c->port) {
        return apr_psprintf(p, "port %u, expected %u", (unsigned)got,
                            (unsigned)c->port);
    }
    return NULL;
}

static void test_port_of_scheme(void **state)
{
    apr_pool_t *p = *state;
    walk_t w;
    size_t i;

    walk_start(&w, "port_cases");
    for (i = 0; i < N_ELEMS(port_cases); i++) {
        walk_case(&w, (int)i, port_cases[i].scheme ? port_cases[i].scheme
                                                   : "(null)",
                  NULL, port_one(p, &port_cases[i]));
    }
    walk_end(&w);
}

/* ------------------------------------------------------------------ */
/* reencrypt_parse_check_head                                          */

typedef struct {
    const char *label;
    const char *head;
    const char *host;           /* NULL: not a health check's head */
    unsigned int port;
} check_head_case_t;

static const check_head_case_t check_head_cases[] = {
    { "GET, HTTP/1.0",
      "GET /hc HTTP/1.0\r\nHost: localhost:8443\r\n\r\n",
      "localhost", 8443 },
    { "HEAD, HTTP/1.1",
      "HEAD /app/health HTTP/1.1\r\nHost: app.internal.test:443\r\n\r\n",
      "app.internal.test", 443 },
    { "OPTIONS *",
      "OPTIONS * HTTP/1.1\r\nHost: app.internal.test:443\r\n\r\n",
      "app.internal.test", 443 },
    { "IPv4 host", "GET / HTTP/1.0\r\nHost: 192.0.2.10:8443\r\n\r\n",
      "192.0.2.10", 8443 },
    { "IPv6 host as mod_proxy_hcheck writes it (no brackets)",
      "GET / HTTP/1.0\r\nHost: 2001:db8::10:8443\r\n\r\n",
      "2001:db8::10", 8443 },
    { "IPv6 host in brackets",
      "GET / HTTP/1.0\r\nHost: [2001:db8::10]:8443\r\n\r\n",
      "2001:db8::10", 8443 },
    { "the body after the head is not looked at",
      "GET / HTTP/1.0\r\nHost: a.test:1\r\n\r\nHost: b.test:2\r\n",
      "a.test", 1 },
    { "port 65535", "GET / HTTP/1.0\r\nHost: a.test:65535\r\n\r\n",
      "a.test", 65535 },
    { "a second header line",
      "GET / HTTP/1.1\r\nHost: a.test:443\r\nX-Forwarded-For: 203.0.113.5"
      "\r\n\r\n", NULL, 0 },
    { "Host not the first header",
      "GET / HTTP/1.1\r\nUser-Agent: x\r\nHost: a.test:443\r\n\r\n",
      NULL, 0 },
    { "head not complete",
      "GET / HTTP/1.1\r\nHost: a.test:443\r\n", NULL, 0 },
    { "no Host line", "GET / HTTP/1.1\r\n\r\n", NULL, 0 },
    { "lower-case host header",
      "GET / HTTP/1.1\r\nhost: a.test:443\r\n\r\n", NULL, 0 },
    { "no port", "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", NULL, 0 },
    { "empty port", "GET / HTTP/1.1\r\nHost: a.test:\r\n\r\n",
      NULL, 0 },
    { "port 0", "GET / HTTP/1.1\r\nHost: a.test:0\r\n\r\n", NULL, 0 },
    { "port 65536", "GET / HTTP/1.1\r\nHost: a.test:65536\r\n\r\n",
      NULL, 0 },
    { "port of six digits",
      "GET / HTTP/1.1\r\nHost: a.test:000443\r\n\r\n", NULL, 0 },
    { "empty host", "GET / HTTP/1.1\r\nHost: :443\r\n\r\n", NULL, 0 },
    { "space in host",
      "GET / HTTP/1.1\r\nHost: a test:443\r\n\r\n", NULL, 0 },
    { "empty brackets", "GET / HTTP/1.1\r\nHost: []:443\r\n\r\n",
      NULL, 0 },
    { "bare LF", "GET / HTTP/1.1\nHost: a.test:443\n\n", NULL, 0 },
    { "control character in the host",
      "GET / HTTP/1.1\r\nHost: a\t.test:443\r\n\r\n", NULL, 0 },
    { "HTTP/2 preface",
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", NULL, 0 },
    { "HTTP/1.2", "GET / HTTP/1.2\r\nHost: a.test:443\r\n\r\n",
      NULL, 0 },
    { "lower-case method",
      "get / HTTP/1.1\r\nHost: a.test:443\r\n\r\n", NULL, 0 },
    { "no target", "GET  HTTP/1.1\r\nHost: a.test:443\r\n\r\n",
      NULL, 0 },
    { "space in target",
      "GET /a b HTTP/1.1\r\nHost: a.test:443\r\n\r\n", NULL, 0 },
    { "TLS record, not text", "\x16\x03\x01\x02\x00\x01", NULL, 0 },
    { "nothing", "", NULL, 0 },
};

static const char *check_head_case(apr_pool_t *p,
                                   const check_head_case_t *c)
{
    const char *host = NULL;
    unsigned int port = 0;
    int ok = reencrypt_parse_check_head(p, c->head, strlen(c->head), &host,
                                        &port);

    WANT_INT("recognised", ok, c->host != NULL);
    if (ok) {
        WANT_STR("host", host, c->host);
        WANT_INT("port", port, c->port);
    }
    return NULL;
}

static const char *check_head_cut(apr_pool_t *p,
                                  const check_head_case_t *c)
{
    /* every proper prefix of a recognised head is not one */
    apr_size_t len = strlen(c->head), i;
    const char *host = NULL;
    unsigned int port = 0;

    for (i = 0; c->host && i < len; i++) {
        char *cut = apr_pstrmemdup(p, c->head, i);

        if (strstr(c->head, "\r\n\r\n") + 4 > c->head + i
            && reencrypt_parse_check_head(p, cut, i, &host, &port)) {
            return apr_psprintf(p, "recognised when cut after %d bytes",
                                (int)i);
        }
    }
    return NULL;
}

static void test_parse_check_head(void **state)
{
    apr_pool_t *p = *state;
    walk_t w;
    size_t i;

    walk_start(&w, "check_head");
    for (i = 0; i < N_ELEMS(check_head_cases); i++) {
        const char *m = check_head_case(p, &check_head_cases[i]);

        walk_case(&w, (int)i, check_head_cases[i].label, NULL,
                  m ? m : check_head_cut(p, &check_head_cases[i]));
    }
    walk_end(&w);
}

/* ------------------------------------------------------------------ */

#define T(f) cmocka_unit_test_setup_teardown(f, setup_pool, teardown_pool)

/* Every row of the policy field table, whatever its kind: unset after
 * init, parsed from its words with its "file:line", merged child over
 * parent, its default in effect when unset, and in the policy id
 * exactly when the row says so. */
static const char *one_value(apr_pool_t *p, const reencrypt_field_t *f,
                             int second)
{
    switch (f->kind) {
    case REENCRYPT_KIND_FLAG:
        return second ? "on" : "Off";
    case REENCRYPT_KIND_INT:
        return apr_psprintf(p, "%d", second ? f->max : f->min);
    case REENCRYPT_KIND_DURATION:
        return second ? "2d" : "90";
    case REENCRYPT_KIND_KEYWORD:
        return second ? f->keywords[1].word : f->keywords[0].word;
    }
    return NULL;
}

static void test_field_table(void **state)
{
    apr_pool_t *p = *state;
    int i, k;

    for (i = 0; i < REENCRYPT_FIELD_COUNT; i++) {
        const reencrypt_field_t *f = &reencrypt_fields[i];
        reencrypt_policy_t parent, child, out, other;
        apr_int64_t v0, v1;
        const char *err;

        print_message("%s\n", f->directive);
        assert_int_equal(f->id, i);
        assert_non_null(f->help);
        assert_true(!strncmp(f->directive, "Reencrypt", 9));
        reencrypt_policy_init(&parent);
        reencrypt_policy_init(&child);
        assert_false(reencrypt_field_is_set(&parent, f->id));
        if (f->kind == REENCRYPT_KIND_KEYWORD) {
            int found = 0;

            assert_non_null(f->keywords);
            for (k = 0; f->keywords[k].word; k++) {
                assert_int_not_equal(f->keywords[k].value, 0);
                found |= f->keywords[k].value == f->dflt;
                /* any case */
                assert_null(reencrypt_field_parse(p, f,
                    apr_pstrdup(p, f->keywords[k].word), &child, "x:1"));
                assert_int_equal(reencrypt_policy_get(&child, f->id),
                                 f->keywords[k].value);
            }
            assert_true(found);
            assert_true(k >= 2);
            reencrypt_policy_init(&child);
        }
        assert_int_equal(reencrypt_policy_get(&parent, f->id), f->dflt);

        /* a value that is no word of the directive names it and the value */
        err = reencrypt_field_parse(p, f, "bogus-value", &child, "x:1");
        assert_non_null(err);
        assert_non_null(strstr(err, f->directive));
        assert_non_null(strstr(err, "bogus-value"));
        assert_false(reencrypt_field_is_set(&child, f->id));

        assert_null(reencrypt_field_parse(p, f, one_value(p, f, 0), &parent,
                                          "parent.conf:1"));
        assert_null(reencrypt_field_parse(p, f, one_value(p, f, 1), &child,
                                          "child.conf:2"));
        v0 = reencrypt_policy_get(&parent, f->id);
        v1 = reencrypt_policy_get(&child, f->id);
        assert_int_not_equal(v0, v1);

        /* merged: the child's where it sets one, else the parent's */
        reencrypt_policy_merge(&out, &parent, &child);
        assert_int_equal(reencrypt_policy_get(&out, f->id), v1);
        reencrypt_policy_init(&other);
        reencrypt_policy_merge(&out, &parent, &other);
        assert_int_equal(reencrypt_policy_get(&out, f->id), v0);
        /* every row keeps the "file:line" of its value, merged with
         * it (apachectl -t -D DUMP_REENCRYPT names every value's
         * origin) */
        {
            const char *const *w = (const char *const *)(const void *)
                                   ((const char *)&out + f->where);

            assert_true(f->where + sizeof(const char *)
                        <= sizeof(reencrypt_policy_t));
            assert_int_not_equal(f->where, f->offset);
            assert_string_equal(*w, "parent.conf:1");
            reencrypt_policy_merge(&out, &parent, &child);
            assert_string_equal(*w, "child.conf:2");
            reencrypt_policy_init(&other);
            reencrypt_policy_merge(&out, &other, &other);
            assert_null(*w);
        }

        /* in the id exactly when the row says so (on a usable policy) */
        reencrypt_policy_init(&other);
        other.engine = 1;
        other.trust = REENCRYPT_TRUST_ANCHORS;
        reencrypt_policy_merge(&out, &other, &parent);
        if (f->id == REENCRYPT_F_ENGINE) {
            continue;                   /* Off: no id at all */
        }
        v0 = (apr_int64_t)reencrypt_policy_id(&out);
        reencrypt_policy_merge(&out, &other, &child);
        v1 = (apr_int64_t)reencrypt_policy_id(&out);
        if (f->in_id) {
            assert_int_not_equal(v0, v1);
        }
        else {
            assert_int_equal(v0, v1);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_parse_int),
        T(test_parse_flag),
        T(test_parse_sni),
        T(test_parse_verify_name),
        T(test_is_dns_name),
        T(test_ip_parse),
        T(test_dns_match),
        T(test_policy_init),
        T(test_field_table),
        T(test_policy_getters),
        T(test_policy_merge),
        T(test_parse_revocation),
        T(test_policy_revocation_merge),
        T(test_policy_revocation_id_lint),
        T(test_policy_merge_three_levels),
        T(test_policy_client_merge),
        T(test_policy_client_id),
        T(test_policy_ssl_section),
        T(test_policy_merge_list_wheres),
        T(test_policy_merge_sni_where),
        T(test_policy_id),
        T(test_policy_id_all_distinct),
        T(test_policy_id_off),
        T(test_sni_for),
        T(test_expected_names),
        T(test_cache_is_networked),
        T(test_port_of_scheme),
        T(test_parse_check_head),
    };
    int rc;

    if (apr_initialize() != APR_SUCCESS) {
        fprintf(stderr, "apr_initialize failed\n");
        return 1;
    }
    rc = cmocka_run_group_tests_name("reencrypt_policy", tests, NULL, NULL);
    apr_terminate();
    return rc;
}
