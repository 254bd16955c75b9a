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

/**
 * @file reencrypt_escape.h
 * @brief The escapers of the status views (reencrypt_status.c): strings
 *        a backend controls (certificate subjects, issuers, names) put
 *        into HTML, JSON and the Prometheus text format.
 *
 * Pure: APR only; never sees httpd state.
 */

#ifndef REENCRYPT_ESCAPE_H
#define REENCRYPT_ESCAPE_H

#include <apr_pools.h>

#ifdef __cplusplus
extern "C" {
#endif

/** s as a JSON string in UTF-8, quotes included (from p): '"' and '\\'
 *  are escaped with a backslash, control characters and DEL as \\u00XX,
 *  bytes that are not UTF-8 are replaced by U+FFFD. */
const char *reencrypt_escape_json(apr_pool_t *p, const char *s);

/** s as the value of a Prometheus label in UTF-8, without the quotes
 *  (from p): '\\', '"' and a newline as \\\\, \\" and \\n (text format
 *  0.0.4), bytes that are not UTF-8 replaced by U+FFFD. */
const char *reencrypt_escape_prom(apr_pool_t *p, const char *s);

/** s as HTML text or a quoted attribute value, in ASCII (from p; NULL
 *  gives ""): '<', '>', '&', '"' and '\'' as entities, every character
 *  outside ASCII as its numeric character reference (&#228; for the
 *  UTF-8 of U+00E4), and bytes that are not UTF-8 as &#65533; (U+FFFD),
 *  as in reencrypt_escape_json(). */
const char *reencrypt_escape_html(apr_pool_t *p, const char *s);

#ifdef __cplusplus
}
#endif

#endif /* REENCRYPT_ESCAPE_H */
