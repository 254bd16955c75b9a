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
    char *out = apr_palloc(p, len * 2 + 1), *o = out;

    for (i = 0; i < len; i++) {
        if (s[i] == '\\' || s[i] == '"') {
            *o++ = '\\';
            *o++ = s[i];
        }
        else if (s[i] == '\n') {
            *o++ = '\\';
            *o++ = 'n';
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
    out = o = apr_palloc(p, len * 6 + 1);
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
                o += apr_snprintf(o, 7, "&#%3.3d;", ch);
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
