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
 * @file reencrypt_slots.h
 * @brief The decisions behind the statistics slots, on plain values:
 *        how a string is cut to fit a slot's fixed-size field.
 *
 * Pure: APR only; never sees httpd state or shared memory.
 */

#ifndef REENCRYPT_SLOTS_H
#define REENCRYPT_SLOTS_H

#include <apr.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The length in bytes of the longest prefix of src that fits in a
 * buffer of size bytes with its terminating NUL, cut before a UTF-8
 * multi-byte sequence that would not fit whole (never inside one).
 * Bytes that are not UTF-8 are cut like single characters.
 */
apr_size_t reencrypt_utf8_fit(const char *src, apr_size_t size);

/** Copy src (NULL: "") to dst of size bytes (> 0), cut as
 *  reencrypt_utf8_fit() says; dst is always NUL-terminated. */
void reencrypt_utf8_copy(char *dst, apr_size_t size, const char *src);

#ifdef __cplusplus
}
#endif

#endif /* REENCRYPT_SLOTS_H */
