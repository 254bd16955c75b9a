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
 * reencrypt_slots.c: the statistics slots' decisions on plain values.
 * Which slot a backend and SNI take (free, else the least recently used
 * one that has been idle long enough, with SNIs from clients' Host
 * headers held to half of the slots), and where a string is cut to fit
 * a fixed-size field without splitting a UTF-8 character. The glue
 * (reencrypt_status.c) applies them to shared memory. Pure: APR only.
 */

#include <string.h>

#include "reencrypt_slots.h"

int reencrypt_slot_client_share(int n)
{
    return n / 2 > 0 ? n / 2 : 1;
}

static int idle(const reencrypt_slot_facts_t *f, apr_int64_t now,
                apr_int64_t idle_min)
{
    return f->in_use && now - f->last_used >= idle_min;
}

int reencrypt_slot_start(const char *backend, const char *sni, int n)
{
    /* FNV-1a, 32 bits, over backend, a NUL, and sni: the same in every
     * process and every generation, so that slots restored after a
     * restart are found where they are */
    apr_uint32_t h = 2166136261u;
    const unsigned char *s;

    if (n <= 0) {
        return 0;
    }
    for (s = (const unsigned char *)(backend ? backend : ""); *s; s++) {
        h = (h ^ *s) * 16777619u;
    }
    h = (h ^ 0) * 16777619u;
    for (s = (const unsigned char *)(sni ? sni : ""); *s; s++) {
        h = (h ^ *s) * 16777619u;
    }
    return (int)(h % (apr_uint32_t)n);
}

int reencrypt_slot_choose(const reencrypt_slot_facts_t *slots, int n,
                          int start, int client_named, apr_int64_t now,
                          apr_int64_t idle_min, int *reclaim)
{
    int i, free_at = -1, lru = -1, lru_client = -1, clients = 0;

    *reclaim = 0;
    if (start < 0 || start >= n) {
        start = 0;
    }
    for (i = 0; i < n; i++) {
        const reencrypt_slot_facts_t *f = &slots[i];

        if (!f->in_use) {
            /* the first free one at or after start, wrapping around */
            if (free_at < 0 || (free_at < start && i >= start)) {
                free_at = i;
            }
            continue;
        }
        if (f->client_named) {
            clients++;
        }
        if (!idle(f, now, idle_min)) {
            continue;
        }
        if (lru < 0 || f->last_used < slots[lru].last_used) {
            lru = i;
        }
        if (f->client_named
            && (lru_client < 0
                || f->last_used < slots[lru_client].last_used)) {
            lru_client = i;
        }
    }
    if (client_named && clients >= reencrypt_slot_client_share(n)) {
        /* the clients' share is full: only one of theirs may change hands */
        *reclaim = lru_client >= 0;
        return lru_client;
    }
    if (free_at >= 0) {
        return free_at;
    }
    *reclaim = lru >= 0;
    return lru;
}

static int is_continuation(unsigned char ch)
{
    return (ch & 0xC0) == 0x80;
}

/* Bytes of the sequence a lead byte starts; 0 if ch leads none. */
static apr_size_t sequence_len(unsigned char ch)
{
    if ((ch & 0xE0) == 0xC0) {
        return 2;
    }
    if ((ch & 0xF0) == 0xE0) {
        return 3;
    }
    if ((ch & 0xF8) == 0xF0) {
        return 4;
    }
    return 0;
}

apr_size_t reencrypt_utf8_fit(const char *src, apr_size_t size)
{
    const unsigned char *s = (const unsigned char *)src;
    apr_size_t cut, lead, back;

    if (!src || size == 0) {
        return 0;
    }
    for (cut = 0; cut < size && s[cut]; cut++) {
        ;
    }
    if (cut < size) {
        return cut;                 /* fits whole, with its NUL */
    }
    cut = size - 1;                 /* room for the NUL */
    /* s[cut] is the first byte left out: if it continues a sequence,
     * find where that sequence starts (at most 3 bytes back) */
    lead = cut;
    for (back = 0; back < 3 && lead > 0 && is_continuation(s[lead]);
         back++) {
        lead--;
    }
    if (lead < cut && !is_continuation(s[lead])
        && lead + sequence_len(s[lead]) > cut) {
        return lead;                /* leave that character out whole */
    }
    return cut;
}

void reencrypt_utf8_copy(char *dst, apr_size_t size, const char *src)
{
    apr_size_t n;

    if (!dst || size == 0) {
        return;
    }
    if (!src) {
        src = "";
    }
    n = reencrypt_utf8_fit(src, size);
    memcpy(dst, src, n);
    dst[n] = '\0';
}
