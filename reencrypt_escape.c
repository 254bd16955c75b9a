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
 * reencrypt_escape.c: the escapers of the status views. What they escape
 * comes from backends' certificates (subjects, issuers, names), so any
 * bytes may come in; what comes out must keep its place in an HTML
 * page, a JSON document or a Prometheus exposition. Pure: APR only.
 */

#include <string.h>

#include <apr_strings.h>

#include "reencrypt_escape.h"

/* --- UTF-8 --- */

/* U+FFFD REPLACEMENT CHARACTER, in place of bytes that are not UTF-8 */
#define REPLACEMENT "\xef\xbf\xbd"

/* The length of the well-formed UTF-8 sequence (RFC 3629) at s, of at
 * most left bytes; or, if there is none, minus the length of its longest
 * ill-formed start (at least 1), which is replaced by one U+FFFD as
 * Unicode recommends (section 3.9, "maximal subpart"). */
static int utf8_seq(const unsigned char *s, apr_size_t left)
{
    unsigned char lo = 0x80, hi = 0xbf;
    int n, i;

    if (s[0] < 0x80) {
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
    }
    else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        lo = s[0] == 0xe0 ? 0xa0 : 0x80;    /* no overlong form */
        hi = s[0] == 0xed ? 0x9f : 0xbf;    /* no surrogate */
    }
    else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        lo = s[0] == 0xf0 ? 0x90 : 0x80;    /* no overlong form */
        hi = s[0] == 0xf4 ? 0x8f : 0xbf;    /* nothing past U+10FFFF */
    }
    else {
        return -1;
    }
    for (i = 1; i < n; i++) {
        if ((apr_size_t)i >= left || s[i] < lo || s[i] > hi) {
            return -i;
        }
        lo = 0x80;
        hi = 0xbf;
    }
    return n;
}

/* Copy the character at s[*i] (not ASCII) to o as it is, or U+FFFD in
 * place of what is not UTF-8; *i moves to the last byte read. Returns
 * the end of what was written: at most 4 bytes, 3 for a U+FFFD that may
 * stand for a single byte. */
static char *copy_utf8(char *o, const char *s, apr_size_t len,
                       apr_size_t *i)
{
    int n = utf8_seq((const unsigned char *)s + *i, len - *i);

    if (n > 0) {
        memcpy(o, s + *i, (apr_size_t)n);
        *i += (apr_size_t)n - 1;
        return o + n;
    }
    memcpy(o, REPLACEMENT, 3);
    *i += (apr_size_t)-n - 1;
    return o + 3;
}

/* The code point of the character at s[*i] (not ASCII), or U+FFFD in
 * place of what is not UTF-8; *i moves to the last byte read. */
static unsigned long code_point(const char *s, apr_size_t len,
                                apr_size_t *i)
{
    const unsigned char *u = (const unsigned char *)s + *i;
    int n = utf8_seq(u, len - *i), k;
    unsigned long cp;

    if (n < 0) {
        *i += (apr_size_t)-n - 1;
        return 0xfffd;
    }
    cp = u[0] & (0xff >> (n + 1));
    for (k = 1; k < n; k++) {
        cp = (cp << 6) | (u[k] & 0x3f);
    }
    *i += (apr_size_t)n - 1;
    return cp;
}

/* --- JSON --- */

const char *reencrypt_escape_json(apr_pool_t *p, const char *s)
{
    apr_size_t len = strlen(s), i;
    char *out = apr_palloc(p, len * 6 + 3), *o = out;

    *o++ = '"';
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '"' || ch == '\\') {
            *o++ = '\\';
            *o++ = (char)ch;
        }
        else if (ch < 0x20 || ch == 0x7f) {
            o += apr_snprintf(o, 7, "\\u%04x", ch);
        }
        else if (ch >= 0x80) {
            o = copy_utf8(o, s, len, &i);
        }
        else {
            *o++ = (char)ch;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

/* --- Prometheus text exposition format 0.0.4 --- */

const char *reencrypt_escape_prom(apr_pool_t *p, const char *s)
{
    apr_size_t len = strlen(s), i;
    char *out = apr_palloc(p, len * 3 + 1), *o = out;

    for (i = 0; i < len; i++) {
        if (s[i] == '\\' || s[i] == '"') {
            *o++ = '\\';
            *o++ = s[i];
        }
        else if (s[i] == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        }
        else if ((unsigned char)s[i] >= 0x80) {
            o = copy_utf8(o, s, len, &i);
        }
        else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

/* --- HTML --- */

const char *reencrypt_escape_html(apr_pool_t *p, const char *s)
{
    apr_size_t len, i;
    char *out, *o;

    s = s ? s : "";
    len = strlen(s);
    /* the longest: "&#65533;" for one byte that is not UTF-8 */
    out = o = apr_palloc(p, len * 8 + 1);
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        switch (ch) {
        case '<':
            memcpy(o, "&lt;", 4);
            o += 4;
            break;
        case '>':
            memcpy(o, "&gt;", 4);
            o += 4;
            break;
        case '&':
            memcpy(o, "&amp;", 5);
            o += 5;
            break;
        case '"':
            memcpy(o, "&quot;", 6);
            o += 6;
            break;
        case '\'':
            memcpy(o, "&#39;", 5);
            o += 5;
            break;
        default:
            if (ch >= 0x80) {
                o += apr_snprintf(o, 11, "&#%lu;", code_point(s, len, &i));
            }
            else {
                *o++ = (char)ch;
            }
            break;
        }
    }
    *o = '\0';
    return out;
}
