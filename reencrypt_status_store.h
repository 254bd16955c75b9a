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
 * @file reencrypt_status_store.h
 * @brief What the statistics store keeps in shared memory, and the
 *        snapshots the views read: shared by reencrypt_status.c (the
 *        store) and reencrypt_status_views.c (HTML, JSON, Prometheus,
 *        mod_status) only.
 */

#ifndef REENCRYPT_STATUS_STORE_H
#define REENCRYPT_STATUS_STORE_H

#include <stddef.h>

#include "reencrypt_status.h"

/* What a slot's in_use says. A slot changes hands (SLOT_MOVING) only
 * under the global mutex. A slot once taken is never SLOT_FREE again
 * until its segment is made anew: one caught changing hands when it
 * was copied for the next generation comes back SLOT_DEAD (held by
 * nobody, the first to be taken again when no slot is free), so that a
 * look-up may stop at the first free slot (reencrypt_slot_start()). */
#define SLOT_FREE   0
#define SLOT_IN_USE 1
#define SLOT_MOVING 2
#define SLOT_DEAD   3

/* The counters of a backend and SNI, or of all that have no slot. */
typedef struct {
    apr_uint64_t full;
    apr_uint64_t resumed;
    apr_uint64_t reuses;
    apr_uint64_t refused[REENCRYPT_REASONS];
    apr_uint64_t reported[REENCRYPT_REASONS];
} status_counts_t;

/* One backend, as kept in shared memory: fixed size, no pointers. */
typedef struct {
    /* who holds the slot; kept when it changes hands */
    apr_uint32_t in_use;        /* SLOT_FREE, SLOT_IN_USE, SLOT_MOVING */
    apr_uint32_t busy;          /* users counting into it right now */
    apr_uint32_t gen;           /* one more each time it changes hands */
    apr_uint32_t client_named;  /* its SNI came from a client's Host */
    apr_uint64_t last_used;     /* seconds: its last handshake or reuse */
    /* from here on cleared when the slot changes hands */
    char backend[128];
    char sni[128];
    /* certificate last presented */
    unsigned char fingerprint[32];
    char subject[256];
    char issuer[256];
    char sans[512];
    char serial[72];
    char pin[56];
    apr_int64_t not_before;
    apr_int64_t not_after;
    apr_int32_t chain_len;
    /* last handshake */
    apr_int64_t last_time;
    char last_result[40];
    char protocol[16];
    char cipher[64];
    apr_int64_t warn_within;
    /* last full handshake that passed (or was reported): what the
     * revocation check (REENCRYPT_REVOCATION) and the OCSP staple
     * (REENCRYPT_STAPLE) said, as their tokens */
    apr_int64_t full_time;      /* 0: none recorded */
    char revocation[16];
    char staple[16];
    apr_int64_t staple_next_update;     /* seconds, 0 when none */
    status_counts_t n;
} status_slot_t;

#define SLOT_CLEARED_FROM offsetof(status_slot_t, backend)

/* What no slot holds, and how the slots fared: one record. */
typedef struct {
    apr_uint64_t reclaims;      /* slots given to another backend/SNI */
    apr_uint64_t overflows;     /* passed connections that found no slot */
    status_counts_t n;
} status_other_t;

/** A consistent copy of every slot in use, soonest notAfter first. */
typedef struct {
    apr_array_header_t *rows;       /* status_slot_t copies */
    status_other_t other;           /* zero when statistics are off */
    apr_int64_t now;
    int on;                         /* statistics are kept */
    unsigned int capacity;          /* slots in all */
} snapshot_t;

/** The handler name of the views: SetHandler reencrypt-status */
#define STATUS_HANDLER "reencrypt-status"

/** Copy the slots in use and the other counters under the store's
 *  mutex, into p. Empty when statistics are off. */
void reencrypt_status_snapshot(apr_pool_t *p, snapshot_t *snap);

/** The CRL files of the configuration (reencrypt_crl_watch_t), empty
 *  before post_config. */
const apr_array_header_t *reencrypt_status_crl_list(apr_pool_t *p);

#endif /* REENCRYPT_STATUS_STORE_H */
