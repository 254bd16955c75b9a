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
 *        which slot a backend and SNI take when they have none, and how
 *        a string is cut to fit a slot's fixed-size field.
 *
 * Pure: APR only; never sees httpd state or shared memory.
 */

#ifndef REENCRYPT_SLOTS_H
#define REENCRYPT_SLOTS_H

#include <apr.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Seconds a slot must have gone unused before it may be given to
 *  another backend and SNI. */
#define REENCRYPT_SLOT_IDLE_MIN 60

/** What the choice needs to know of one slot. */
typedef struct {
    int in_use;               /**< held by some backend and SNI */
    int client_named;         /**< its SNI came from a client's Host */
    apr_int64_t last_used;    /**< seconds since 1970 */
} reencrypt_slot_facts_t;

/** Most slots that SNIs taken from clients' Host headers may hold, of
 *  n: half of them (at least one). */
int reencrypt_slot_client_share(int n);

/**
 * Where the search for the slot of a backend and SNI starts among n
 * slots (n > 0): a hash (FNV-1a) of both, modulo n. A backend and SNI
 * take the first free slot from there on (wrapping around), and since a
 * slot once taken is never free again, a look-up may stop at the first
 * free slot it meets: with room in the table it reads a few slots, not
 * all of them.
 */
int reencrypt_slot_start(const char *backend, const char *sni, int n);

/**
 * The slot a backend and SNI that hold none should take, among n slots:
 * the first free one at or after start (wrapping around; start from
 * reencrypt_slot_start()), else the one unused longest, if unused for
 * at least idle_min seconds at now (ties: the lowest index). A
 * client-named SNI (client_named) takes neither once
 * reencrypt_slot_client_share(n) slots are client-named: then only the
 * client-named slot unused longest (and for idle_min). Returns the
 * index, or -1 when none may be taken; *reclaim is set to 1 when the
 * slot is taken from another backend and SNI, else 0.
 */
int reencrypt_slot_choose(const reencrypt_slot_facts_t *slots, int n,
                          int start, int client_named, apr_int64_t now,
                          apr_int64_t idle_min, int *reclaim);

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
