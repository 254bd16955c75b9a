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
 * libFuzzer target for the escapers of the status views
 * (reencrypt_escape.c), fed what a backend controls. The first byte
 * picks how the rest is taken (even: as the string itself, up to a NUL;
 * odd: as the DER of a certificate's subject, shown as the views show it
 * with reencrypt_name_str). Each escape must keep its place:
 *  - JSON: the output is one JSON string (checked by the strict checker
 *    below: quotes, escapes, no raw control character) and valid UTF-8
 *    (RFC 3629: no overlong form, no surrogate, nothing past U+10FFFF);
 *    a string that was valid UTF-8 comes back unchanged when decoded;
 *  - Prometheus label value: valid UTF-8, no raw newline or quote, every
 *    backslash starts \\, \" or \n, and it unescapes to the string if
 *    that was valid UTF-8;
 *  - HTML: ASCII only, no raw <, >, ", ' and every & starts an entity
 *    or the reference of a Unicode scalar value.
 * Seeds (tests/fuzz/seeds/escape) are the subjects and names of real
 * certificates: tests/fuzz/make_seeds.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include <openssl/x509.h>

#include "reencrypt_escape.h"
#include "reencrypt_verify.h"
#include "fuzz_target.h"

static void fuzz_init(void)
{
    /* nothing but the pool */
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629, table 3-7
 * of Unicode), or 0 */
static size_t utf8_len(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n, i;

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    }
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    }
    else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    }
    else {
        return 0;
    }
    if (left < n || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }
    return n;
}

static int utf8_valid(const char *s, size_t len)
{
    size_t i = 0, n;

    while (i < len) {
        if (!(n = utf8_len((const unsigned char *)s + i, len - i))) {
            return 0;
        }
        i += n;
    }
    return 1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static long hex4(const char *s)
{
    long v = 0;
    int i, h;

    for (i = 0; i < 4; i++) {
        if ((h = hexval(s[i])) < 0) {
            return -1;
        }
        v = v * 16 + h;
    }
    return v;
}

static char *put_utf8(char *o, long cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    }
    else if (cp < 0x800) {
        *o++ = (char)(0xc0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    else {
        *o++ = (char)(0xf0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

/* A strict checker of one JSON string (RFC 8259, section 7) that is
 * all of js; returns its decoded value (from pool), or NULL. */
static char *json_string(const char *js)
{
    size_t len = strlen(js), i;
    char *out, *o;

    if (len < 2 || js[0] != '"' || js[len - 1] != '"'
        || !utf8_valid(js, len)) {
        return NULL;
    }
    out = o = apr_palloc(pool, len);
    for (i = 1; i < len - 1; i++) {
        unsigned char c = (unsigned char)js[i];
        long cp;

        if (c < 0x20 || c == '"') {
            return NULL;
        }
        if (c != '\\') {
            *o++ = (char)c;
            continue;
        }
        if (++i >= len - 1) {
            return NULL;            /* the closing quote escaped */
        }
        switch (js[i]) {
        case '"': case '\\': case '/':
            *o++ = js[i];
            break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u':
            if (i + 4 >= len - 1 || (cp = hex4(js + i + 1)) < 0) {
                return NULL;
            }
            i += 4;
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                return NULL;        /* a lone low surrogate */
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                long lo;

                if (i + 6 >= len - 1 || js[i + 1] != '\\' || js[i + 2] != 'u'
                    || (lo = hex4(js + i + 3)) < 0xdc00 || lo > 0xdfff) {
                    return NULL;    /* a high surrogate alone */
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
            if (cp == 0) {
                return NULL;        /* not a C string any more */
            }
            o = put_utf8(o, cp);
            break;
        default:
            return NULL;
        }
    }
    *o = '\0';
    return out;
}

static void check_json(const char *s)
{
    const char *js = reencrypt_escape_json(pool, s);
    const char *back = json_string(js);

    CHECK(back != NULL);
    if (utf8_valid(s, strlen(s))) {
        CHECK(!strcmp(back, s));
    }
}

static void check_prom(const char *s)
{
    const char *out = reencrypt_escape_prom(pool, s);
    char *back = apr_palloc(pool, strlen(out) + 1), *o = back;
    const char *c;

    for (c = out; *c; c++) {
        CHECK(*c != '\n' && *c != '"');
        if (*c == '\\') {
            c++;
            CHECK(*c == '\\' || *c == '"' || *c == 'n');
            *o++ = *c == 'n' ? '\n' : *c;
        }
        else {
            *o++ = *c;
        }
    }
    *o = '\0';
    CHECK(utf8_valid(out, strlen(out)));
    if (utf8_valid(s, strlen(s))) {
        CHECK(!strcmp(back, s));
    }
}

static void check_html(const char *s)
{
    static const char *const entities[] = {
        "&lt;", "&gt;", "&amp;", "&quot;"
    };
    const char *out = reencrypt_escape_html(pool, s);
    const char *c;

    for (c = out; *c; c++) {
        CHECK(*c != '<' && *c != '>' && *c != '"' && *c != '\'');
        CHECK((unsigned char)*c < 0x80);
        if (*c == '&') {
            size_t k;
            int known = 0;

            for (k = 0; k < sizeof(entities) / sizeof(entities[0]); k++) {
                known |= !strncmp(c, entities[k], strlen(entities[k]));
            }
            if (!known) {
                /* &#39; or a character outside ASCII: a Unicode scalar
                 * value, in decimal */
                char *end;
                unsigned long cp;

                CHECK(c[1] == '#' && c[2] >= '1' && c[2] <= '9');
                cp = strtoul(c + 2, &end, 10);
                CHECK(*end == ';' && end - (c + 2) <= 7);
                CHECK(cp == 39 || (cp >= 0x80 && cp <= 0x10ffff
                                   && !(cp >= 0xd800 && cp <= 0xdfff)));
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s;

    if (size < 1) {
        return 0;
    }
    if (data[0] & 1) {
        const unsigned char *q = data + 1;
        X509_NAME *name = d2i_X509_NAME(NULL, &q, (long)(size - 1));

        if (!name) {
            return 0;
        }
        s = reencrypt_name_str(pool, name);
        X509_NAME_free(name);
    }
    else {
        s = apr_pstrmemdup(pool, (const char *)data + 1, size - 1);
    }
    check_json(s);
    check_prom(s);
    check_html(s);
    check_html(NULL);
    apr_pool_clear(pool);
    return 0;
}
