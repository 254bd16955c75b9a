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
 * reencrypt_status.c: a live inventory of backend certificates and
 * handshake counters, shared by all child processes through httpd's
 * slotmem provider (mod_slotmem_shm), and its three views: the
 * reencrypt-status handler (HTML, ?json, ?prometheus) and a section of
 * mod_status's server-status (and ?auto).
 *
 * One slot per backend and SNI, at most ReencryptStatusBackends of
 * them. Only a handshake that passed the policy takes a slot: what a
 * client can be refused for (a Host of its choosing with ReencryptSNI
 * Host) never fills the table. A slot unused for REENCRYPT_SLOT_IDLE_MIN
 * seconds may be given to another backend and SNI when no slot is free,
 * the least recently used first, and SNIs taken from clients' Host
 * headers hold at most half of the slots (reencrypt_slots.c decides).
 * What finds no slot is counted in one record, "other", with the
 * number of slots that changed hands and of connections that found none.
 *
 * Facts (certificate, last handshake) are written under a global mutex,
 * once per handshake; counters are atomic, so the per-request path (a
 * reused connection) costs a few atomic operations on its slot.
 */

#include "apr_atomic.h"
#include "apr_global_mutex.h"
#include "apr_strings.h"

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_provider.h"
#include "ap_slotmem.h"
#include "mod_status.h"
#include "util_mutex.h"

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "mod_reencrypt.h"
#include "reencrypt_status.h"
#include "reencrypt_conn.h"
#include "reencrypt_slots.h"
#include "reencrypt_escape.h"

APLOG_USE_MODULE(reencrypt);

/* Set by the startup checks: some scope turns the engine on. */
static int status_wanted;

/* This generation's CRL files (reencrypt_crl_watch_t), from pconf. */
static const apr_array_header_t *crl_files;

void reencrypt_status_want(int wanted)
{
    status_wanted = wanted;
}

static apr_status_t crl_files_cleanup(void *data)
{
    (void)data;
    crl_files = NULL;
    return APR_SUCCESS;
}

void reencrypt_status_set_crl_files(apr_pool_t *pconf,
                                    const apr_array_header_t *files)
{
    crl_files = files;
    apr_pool_cleanup_register(pconf, NULL, crl_files_cleanup,
                              apr_pool_cleanup_null);
}

#define STATUS_MUTEX_TYPE  "reencrypt-status"
/* The names of the slots, and of the files mod_slotmem_shm persists
 * them in: a new layout of status_slot_t takes a new name, because
 * mod_slotmem_shm restores a shorter file of an older layout as it is
 * (AH02552) and the slots would be read out of step. */
#define STATUS_SLOTMEM     "mod_reencrypt-status-4"
#define STATUS_OTHER       "mod_reencrypt-status-other"
/* The segments the children count in. They are not persisted: the
 * parent copies them into the two above when a generation ends (see
 * status_save), so that mod_slotmem_shm saves a segment nobody writes
 * to. */
#define STATUS_LIVE        "mod_reencrypt-status-2-live"
#define STATUS_LIVE_OTHER  "mod_reencrypt-status-other-live"
#define STATUS_HANDLER     "reencrypt-status"

/* What a slot's in_use says. A slot changes hands (SLOT_MOVING) only
 * under the global mutex. */
#define SLOT_FREE   0
#define SLOT_IN_USE 1
#define SLOT_MOVING 2

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

static const ap_slotmem_provider_t *slotmem;
static ap_slotmem_instance_t *slots;
static ap_slotmem_instance_t *other_mem;
/* the persisted copies, written by the parent process only */
static ap_slotmem_instance_t *saved_slots;
static ap_slotmem_instance_t *saved_other;
static apr_global_mutex_t *status_mutex;
static unsigned int nslots;

int reencrypt_status_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    return ap_mutex_register(pconf, STATUS_MUTEX_TYPE, NULL,
                             APR_LOCK_DEFAULT, 0);
}

static void *slotmem_at(ap_slotmem_instance_t *inst, unsigned int i)
{
    void *mem = NULL;

    if (!inst || slotmem->dptr(inst, i, &mem) != APR_SUCCESS) {
        return NULL;
    }
    return mem;
}

static status_slot_t *slot_at(unsigned int i)
{
    return slotmem_at(slots, i);
}

static status_other_t *other_rec(void)
{
    return slotmem_at(other_mem, 0);
}

static void counts_copy(status_counts_t *to, status_counts_t *from)
{
    apr_uint64_t *t = (apr_uint64_t *)to;
    apr_uint64_t *f = (apr_uint64_t *)from;
    apr_size_t i;

    for (i = 0; i < sizeof(*to) / sizeof(apr_uint64_t); i++) {
        t[i] = apr_atomic_read64(&f[i]);
    }
}

/* Copy the slots and the "other" record from one pair of segments to
 * the other. Children may be counting in the source (the old generation
 * finishing its requests after a graceful restart): counters are read
 * atomically, and the rest is made safe by slots_restored() before any
 * child uses the copy. */
static void status_copy(ap_slotmem_instance_t *to_slots,
                        ap_slotmem_instance_t *to_other,
                        ap_slotmem_instance_t *from_slots,
                        ap_slotmem_instance_t *from_other)
{
    status_other_t *to_o = slotmem_at(to_other, 0);
    status_other_t *from_o = slotmem_at(from_other, 0);
    unsigned int i;

    for (i = 0; i < nslots; i++) {
        status_slot_t *to = slotmem_at(to_slots, i);
        status_slot_t *from = slotmem_at(from_slots, i);

        if (to && from) {
            memcpy(to, from, sizeof(*to));
            counts_copy(&to->n, &from->n);
        }
    }
    if (to_o && from_o) {
        to_o->reclaims = apr_atomic_read64(&from_o->reclaims);
        to_o->overflows = apr_atomic_read64(&from_o->overflows);
        counts_copy(&to_o->n, &from_o->n);
    }
}

/* When a generation ends (graceful restart, restart or stop), in the
 * parent process, before mod_slotmem_shm persists its segments: copy
 * what the children counted into the persisted segments. mod_slotmem_shm
 * saves a segment with a checksum and restores it only if the checksum
 * matches; a segment that children of the old generation are still
 * counting in while it is saved would fail that check (AH02551) and the
 * next generation would start from zero. */
static apr_status_t status_save(void *data)
{
    (void)data;
    if (slots && saved_slots && saved_other) {
        status_copy(saved_slots, saved_other, slots, other_mem);
    }
    return APR_SUCCESS;
}

static apr_status_t status_cleanup(void *data)
{
    (void)data;
    slots = NULL;
    other_mem = NULL;
    saved_slots = NULL;
    saved_other = NULL;
    slotmem = NULL;
    status_mutex = NULL;
    nslots = 0;
    return APR_SUCCESS;
}

#define TERMINATE(field) ((field)[sizeof(field) - 1] = '\0')

/* The slots as copied from the last generation's persisted copy, made
 * safe before any child uses them: each generation gets a segment of its
 * own, so nothing else touches it yet. The copy may have been taken
 * while an old child was counting or a slot changing hands. */
static void slots_restored(void)
{
    unsigned int i;

    for (i = 0; i < nslots; i++) {
        status_slot_t *sl = slot_at(i);

        if (!sl) {
            continue;
        }
        if (sl->in_use != SLOT_IN_USE) {
            memset(sl, 0, sizeof(*sl));
            continue;
        }
        sl->busy = 0;
        TERMINATE(sl->backend);
        TERMINATE(sl->sni);
        TERMINATE(sl->subject);
        TERMINATE(sl->issuer);
        TERMINATE(sl->sans);
        TERMINATE(sl->serial);
        TERMINATE(sl->pin);
        TERMINATE(sl->last_result);
        TERMINATE(sl->protocol);
        TERMINATE(sl->cipher);
        TERMINATE(sl->revocation);
        TERMINATE(sl->staple);
    }
}

int reencrypt_status_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                 apr_pool_t *ptemp, server_rec *s)
{
    const reencrypt_srv_conf *sc = ap_get_module_config(s->module_config,
                                                        &reencrypt_module);
    int wanted = sc->status_backends;
    const char *name = STATUS_SLOTMEM;
    apr_status_t rv;

    (void)plog;
    (void)ptemp;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG
        || !status_wanted) {
        return OK;
    }
    if (wanted == REENCRYPT_UNSET) {
        wanted = REENCRYPT_STATUS_BACKENDS_DEFAULT;
    }
    if (wanted == 0) {
        return OK;
    }
    slotmem = ap_lookup_provider(AP_SLOTMEM_PROVIDER_GROUP, "shm",
                                 AP_SLOTMEM_PROVIDER_VERSION);
    if (!slotmem) {
        /* an explicit ReencryptStatusBackends was refused by check_config */
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, RELOGNO(00027)
                     "backend statistics are off: mod_slotmem_shm is not "
                     "loaded");
        return OK;
    }
    rv = slotmem->create(&saved_slots, name, sizeof(status_slot_t),
                         (unsigned int)wanted,
                         AP_SLOTMEM_TYPE_PREGRAB | AP_SLOTMEM_TYPE_PERSIST,
                         pconf);
    if (rv == APR_SUCCESS) {
        name = STATUS_OTHER;
        rv = slotmem->create(&saved_other, name, sizeof(status_other_t), 1,
                             AP_SLOTMEM_TYPE_PREGRAB
                             | AP_SLOTMEM_TYPE_PERSIST, pconf);
    }
    if (rv == APR_SUCCESS) {
        name = STATUS_LIVE;
        rv = slotmem->create(&slots, name, sizeof(status_slot_t),
                             (unsigned int)wanted, AP_SLOTMEM_TYPE_PREGRAB,
                             pconf);
    }
    if (rv == APR_SUCCESS) {
        name = STATUS_LIVE_OTHER;
        rv = slotmem->create(&other_mem, name, sizeof(status_other_t), 1,
                             AP_SLOTMEM_TYPE_PREGRAB, pconf);
    }
    if (rv != APR_SUCCESS) {
        slots = other_mem = saved_slots = saved_other = NULL;
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, RELOGNO(00028)
                     "cannot create the shared memory slots %s for backend "
                     "statistics (%d backends)", name, wanted);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rv = ap_global_mutex_create(&status_mutex, NULL, STATUS_MUTEX_TYPE,
                                NULL, s, pconf, 0);
    if (rv != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;      /* httpd logged why */
    }
    nslots = (unsigned int)wanted;
    /* this generation starts from what the last one counted (restored
     * by mod_slotmem_shm) and counts in segments of its own */
    status_copy(slots, other_mem, saved_slots, saved_other);
    slots_restored();
    apr_pool_cleanup_register(pconf, NULL, status_cleanup,
                              apr_pool_cleanup_null);
    return OK;
}

/* After mod_slotmem_shm's post_config, which registers the cleanup that
 * persists the segments and then removes them: a cleanup registered now
 * runs before that one (pool cleanups run in reverse order), while the
 * segments are still there. */
int reencrypt_status_post_config_save(apr_pool_t *pconf, apr_pool_t *plog,
                                      apr_pool_t *ptemp, server_rec *s)
{
    (void)plog;
    (void)ptemp;
    (void)s;
    if (saved_slots) {
        apr_pool_cleanup_register(pconf, NULL, status_save,
                                  apr_pool_cleanup_null);
    }
    return OK;
}

void reencrypt_status_child_init(apr_pool_t *p, server_rec *s)
{
    apr_status_t rv;

    if (!status_mutex) {
        return;
    }
    rv = apr_global_mutex_child_init(&status_mutex,
                                     apr_global_mutex_lockfile(status_mutex),
                                     p);
    if (rv != APR_SUCCESS) {
        /* never exit a child for statistics: carry on without them */
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, RELOGNO(00029)
                     "cannot attach to the statistics mutex: backend "
                     "statistics are off in this process");
        slots = NULL;
        other_mem = NULL;
    }
}

static void copy_str(char *dst, apr_size_t size, const char *src)
{
    /* never cut inside a UTF-8 character: the views must stay UTF-8 */
    reencrypt_utf8_copy(dst, size, src);
}

/* ------------------------------------------------------------------ */
/* Who counts into which slot                                          */

/*
 * A slot changes hands (slot_take) only under the global mutex, and
 * only after marking it SLOT_MOVING and finding nobody pinned to it
 * (busy 0); if someone is, it stays as it is. Whoever counts into a
 * slot pins it first (busy + 1), then checks that it still holds what
 * was looked for. Both sides write their own word, then read the
 * other's (sequentially consistent atomics), so at least one of them
 * sees the other and backs off: a slot pinned while SLOT_IN_USE keeps
 * its backend, SNI and counters until it is unpinned, and no count ever
 * lands in a slot that has changed hands. Lookups run without the
 * mutex: a slot's names are only rewritten while it is not SLOT_IN_USE,
 * and every string field keeps a NUL in its last byte. (A child that
 * dies while pinned leaves its slot to its backend and SNI until the
 * next restart, which starts every slot unpinned.)
 */

static void slot_unpin(status_slot_t *sl)
{
    apr_atomic_dec32(&sl->busy);
}

/* Slot i, pinned, if it holds generation gen (as remembered by a
 * connection), else NULL. */
static status_slot_t *slot_pin_gen(unsigned int i, apr_uint32_t gen)
{
    status_slot_t *sl = slot_at(i);

    if (!sl) {
        return NULL;
    }
    apr_atomic_inc32(&sl->busy);
    if (apr_atomic_read32(&sl->in_use) == SLOT_IN_USE
        && apr_atomic_read32(&sl->gen) == gen) {
        return sl;
    }
    slot_unpin(sl);
    return NULL;
}

/* Slot i, pinned, if it holds backend and SNI (its generation in *gen),
 * else NULL. */
static status_slot_t *slot_pin_names(unsigned int i, const char *backend,
                                     const char *sni, apr_uint32_t *gen)
{
    status_slot_t *sl = slot_at(i);

    if (!sl) {
        return NULL;
    }
    apr_atomic_inc32(&sl->busy);
    if (apr_atomic_read32(&sl->in_use) == SLOT_IN_USE
        && !strcmp(sl->backend, backend) && !strcmp(sl->sni, sni)) {
        *gen = apr_atomic_read32(&sl->gen);
        return sl;
    }
    slot_unpin(sl);
    return NULL;
}

/* The slot (index + 1) that seems to hold backend and SNI, or 0: to be
 * confirmed by slot_pin_names(). Runs without the global mutex. */
static unsigned int slot_find(const char *backend, const char *sni)
{
    status_slot_t *sl;
    unsigned int i;

    for (i = 0; i < nslots; i++) {
        if ((sl = slot_at(i)) != NULL
            && apr_atomic_read32(&sl->in_use) == SLOT_IN_USE
            && !strcmp(sl->backend, backend) && !strcmp(sl->sni, sni)) {
            return i + 1;
        }
    }
    return 0;
}

static void slot_touch(status_slot_t *sl)
{
    apr_uint64_t now = (apr_uint64_t)apr_time_sec(apr_time_now());

    if (apr_atomic_read64(&sl->last_used) != now) {
        apr_atomic_set64(&sl->last_used, now);
    }
}

/* Give backend and SNI a slot, under the global mutex: a free one, or
 * one that another backend and SNI left idle (reencrypt_slot_choose).
 * Returns it pinned, or NULL when there is none to take. */
static status_slot_t *slot_take(reencrypt_conn_t *st, const char *backend,
                                const char *sni, int client_named)
{
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    reencrypt_slot_facts_t *facts;
    status_other_t *other = other_rec();
    status_slot_t *sl = NULL;
    const char *was = NULL;
    apr_pool_t *tp;
    unsigned int i;
    int at, reclaim;

    apr_pool_create(&tp, st->c->pool);
    facts = apr_pcalloc(tp, sizeof(*facts) * nslots);
    for (i = 0; i < nslots; i++) {
        status_slot_t *f = slot_at(i);

        facts[i].in_use = !f || f->in_use != SLOT_FREE;
        facts[i].client_named = f && f->client_named;
        facts[i].last_used = f ? (apr_int64_t)apr_atomic_read64(
                                     &f->last_used) : now;
    }
    at = reencrypt_slot_choose(facts, (int)nslots, client_named, now,
                               REENCRYPT_SLOT_IDLE_MIN, &reclaim);
    if (at >= 0 && (sl = slot_at((unsigned int)at)) != NULL && reclaim) {
        if (apr_atomic_cas32(&sl->in_use, SLOT_MOVING, SLOT_IN_USE)
            != SLOT_IN_USE) {
            sl = NULL;
        }
        else if (apr_atomic_read32(&sl->busy)) {
            /* counted into right now: not idle after all */
            apr_atomic_set32(&sl->in_use, SLOT_IN_USE);
            sl = NULL;
        }
        else {
            was = apr_psprintf(tp, "%s SNI %s", sl->backend,
                               *sl->sni ? sl->sni : "(none)");
        }
    }
    if (!sl) {
        st->slot = -1;
        if (other) {
            apr_atomic_inc64(&other->overflows);
        }
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, st->c, RELOGNO(00030)
                      "backend %s: no free statistics slot (raise "
                      "ReencryptStatusBackends)", backend);
        apr_pool_destroy(tp);
        return NULL;
    }
    memset((char *)sl + SLOT_CLEARED_FROM, 0,
           sizeof(*sl) - SLOT_CLEARED_FROM);
    copy_str(sl->backend, sizeof(sl->backend), backend);
    copy_str(sl->sni, sizeof(sl->sni), sni);
    sl->client_named = (apr_uint32_t)client_named;
    apr_atomic_set64(&sl->last_used, (apr_uint64_t)now);
    st->slot_gen = apr_atomic_inc32(&sl->gen) + 1;
    st->slot = at + 1;
    apr_atomic_inc32(&sl->busy);            /* the caller's pin */
    apr_atomic_set32(&sl->in_use, SLOT_IN_USE);   /* after the names */
    if (was) {
        if (other) {
            apr_atomic_inc64(&other->reclaims);
        }
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, st->c, RELOGNO(00051)
                      "backend %s: statistics slot %d taken over from %s, "
                      "idle for %" APR_INT64_T_FMT "s", backend, at + 1, was,
                      now - facts[at].last_used);
    }
    apr_pool_destroy(tp);
    return sl;
}

/* The slot of this connection's backend and SNI, pinned (slot_unpin()
 * when done), or NULL when it has none: the connection remembers it in
 * st->slot and st->slot_gen. Only may_take lets it take a slot, so that
 * one is taken once per connection at most, and only for a handshake
 * that passed; with a new backend connection per request this runs for
 * every request, and only a backend's first connection (or one whose
 * slot changed hands) takes the global mutex. */
static status_slot_t *slot_of(reencrypt_conn_t *st, int may_take)
{
    const char *backend = st->backend_name ? st->backend_name : "?";
    const char *sni = st->sni ? st->sni : "";
    int client_named = st->sni && reencrypt_policy_sni_mode(&st->policy)
                                  == REENCRYPT_SNI_HOST;
    status_slot_t *sl = NULL;
    unsigned int found;

    if (!slots) {
        return NULL;
    }
    if (st->slot > 0) {
        if ((sl = slot_pin_gen((unsigned int)(st->slot - 1),
                               st->slot_gen)) != NULL) {
            return sl;
        }
        st->slot = 0;               /* it changed hands: look again */
    }
    else if (st->slot < 0) {
        return NULL;                /* none to be had: counted as other */
    }
    if ((found = slot_find(backend, sni)) != 0
        && (sl = slot_pin_names(found - 1, backend, sni,
                                &st->slot_gen)) != NULL) {
        st->slot = (int)found;
        return sl;
    }
    if (!may_take || apr_global_mutex_lock(status_mutex) != APR_SUCCESS) {
        return NULL;
    }
    if ((found = slot_find(backend, sni)) != 0
        && (sl = slot_pin_names(found - 1, backend, sni,
                                &st->slot_gen)) != NULL) {
        st->slot = (int)found;
    }
    else {
        sl = slot_take(st, backend, sni, client_named);
    }
    apr_global_mutex_unlock(status_mutex);
    return sl;
}

static void cert_facts(status_slot_t *sl, X509 *leaf, int chain_len,
                       apr_pool_t *p)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    reencrypt_pin_t pin;
    const ASN1_INTEGER *serial;
    BIGNUM *bn;

    if (!leaf || !X509_digest(leaf, EVP_sha256(), md, &mdlen)
        || mdlen != sizeof(sl->fingerprint)) {
        return;
    }
    sl->chain_len = chain_len;
    if (!memcmp(sl->fingerprint, md, mdlen)) {
        return;                     /* the same certificate as before */
    }
    memcpy(sl->fingerprint, md, mdlen);
    copy_str(sl->subject, sizeof(sl->subject),
             reencrypt_name_str(p, X509_get_subject_name(leaf)));
    copy_str(sl->issuer, sizeof(sl->issuer),
             reencrypt_name_str(p, X509_get_issuer_name(leaf)));
    copy_str(sl->sans, sizeof(sl->sans), reencrypt_san_str(p, leaf, 16));
    serial = X509_get0_serialNumber(leaf);
    if ((bn = ASN1_INTEGER_to_BN(serial, NULL)) != NULL) {
        char *hex = BN_bn2hex(bn);

        copy_str(sl->serial, sizeof(sl->serial), hex);
        OPENSSL_free(hex);
        BN_free(bn);
    }
    if (reencrypt_pin_of_cert(leaf, &pin) == 0) {
        copy_str(sl->pin, sizeof(sl->pin), reencrypt_pin_str(p, &pin));
    }
    sl->not_before = (apr_int64_t)reencrypt_asn1_time_t(
                         X509_get0_notBefore(leaf));
    sl->not_after = (apr_int64_t)reencrypt_asn1_time_t(
                        X509_get0_notAfter(leaf));
}

static void count_handshake(status_counts_t *n, const reencrypt_conn_t *st,
                            int refused)
{
    if (refused) {
        apr_atomic_inc64(&n->refused[st->reason]);
    }
    else if (st->resumed) {
        apr_atomic_inc64(&n->resumed);
    }
    else {
        apr_atomic_inc64(&n->full);
    }
    if (!refused && st->reason != REENCRYPT_OK) {
        apr_atomic_inc64(&n->reported[st->reason]);
    }
}

void reencrypt_status_handshake(reencrypt_conn_t *st, X509 *leaf,
                                int chain_len, SSL *ssl, int refused)
{
    status_slot_t *sl;
    status_other_t *other;
    apr_pool_t *tp;
    /* a full handshake that passed (or was reported) says what the
     * revocation check and the staple found; a resumed one checks no
     * staple and leaves them as they were */
    int full = !refused && !st->resumed;
    const char *revocation = st->revocation ? st->revocation
                             : reencrypt_revocation_token(
                                   REENCRYPT_REV_NOT_CHECKED);
    const char *staple = reencrypt_staple_token(st->staple);
    apr_int64_t staple_next = st->staple_next_update
                              ? (apr_int64_t)apr_time_sec(
                                    st->staple_next_update) : 0;

    if (!slots) {
        return;
    }
    /* Only a handshake that passed takes a slot: with ReencryptSNI Host
     * a client chooses the SNI, and a refusal costs it nothing. A
     * refusal is counted in the slot its backend and SNI already have,
     * else as "other". */
    if (!(sl = slot_of(st, !refused))) {
        if ((other = other_rec()) != NULL) {
            count_handshake(&other->n, st, refused);
        }
        return;
    }
    count_handshake(&sl->n, st, refused);
    slot_touch(sl);
    /* The facts of a busy backend change rarely: within the second of the
     * last update, with the same result and key, leave them (and the
     * global mutex) alone. The unlocked reads only decide whether to
     * update; strings in a slot always end within their buffer. */
    if (!refused && sl->last_time == (apr_int64_t)apr_time_sec(apr_time_now())
        && st->result && !strcmp(sl->last_result, st->result)
        && st->peer_pin && !strcmp(sl->pin, st->peer_pin)
        && (!full || (!strcmp(sl->revocation, revocation)
                      && !strcmp(sl->staple, staple)
                      && sl->staple_next_update == staple_next))) {
        slot_unpin(sl);
        return;
    }
    if (apr_global_mutex_lock(status_mutex) == APR_SUCCESS) {
        /* pinned: still this backend's and SNI's slot */
        apr_pool_create(&tp, st->c->pool);
        cert_facts(sl, leaf, chain_len, tp);
        sl->last_time = (apr_int64_t)apr_time_sec(apr_time_now());
        copy_str(sl->last_result, sizeof(sl->last_result), st->result);
        copy_str(sl->protocol, sizeof(sl->protocol),
                 (ssl && !refused) ? SSL_get_version(ssl) : "-");
        copy_str(sl->cipher, sizeof(sl->cipher),
                 (ssl && !refused) ? SSL_get_cipher_name(ssl) : "-");
        sl->warn_within = reencrypt_policy_warn_within(&st->policy);
        if (full) {
            sl->full_time = sl->last_time;
            copy_str(sl->revocation, sizeof(sl->revocation), revocation);
            copy_str(sl->staple, sizeof(sl->staple), staple);
            sl->staple_next_update = staple_next;
        }
        apr_global_mutex_unlock(status_mutex);
        apr_pool_destroy(tp);
    }
    slot_unpin(sl);
}

void reencrypt_status_reuse(reencrypt_conn_t *st)
{
    status_slot_t *sl;
    status_other_t *other;

    if (!slots || st->slot == 0) {
        return;                     /* its handshake was not counted */
    }
    /* the handshake passed: the connection may take a slot again if its
     * own changed hands while it sat in the pool */
    if ((sl = slot_of(st, 1)) != NULL) {
        apr_atomic_inc64(&sl->n.reuses);
        slot_touch(sl);
        slot_unpin(sl);
    }
    else if ((other = other_rec()) != NULL) {
        apr_atomic_inc64(&other->n.reuses);
    }
}

/* ------------------------------------------------------------------ */
/* Views                                                               */

typedef struct {
    apr_array_header_t *rows;       /* status_slot_t copies */
    status_other_t other;           /* zero when statistics are off */
    apr_int64_t now;
} snapshot_t;

static int by_expiry(const void *a, const void *b)
{
    const status_slot_t *x = a, *y = b;

    /* soonest first; unknown (0) last */
    if (!x->not_after != !y->not_after) {
        return x->not_after ? -1 : 1;
    }
    if (x->not_after != y->not_after) {
        return x->not_after < y->not_after ? -1 : 1;
    }
    return strcmp(x->backend, y->backend);
}

static void take_snapshot(apr_pool_t *p, snapshot_t *snap)
{
    unsigned int i;

    status_other_t *other;

    snap->rows = apr_array_make(p, 8, sizeof(status_slot_t));
    memset(&snap->other, 0, sizeof(snap->other));
    snap->now = (apr_int64_t)apr_time_sec(apr_time_now());
    if (!slots || apr_global_mutex_lock(status_mutex) != APR_SUCCESS) {
        return;
    }
    for (i = 0; i < nslots; i++) {
        status_slot_t *sl = slot_at(i);

        if (sl && sl->in_use == SLOT_IN_USE) {
            *(status_slot_t *)apr_array_push(snap->rows) = *sl;
        }
    }
    if ((other = other_rec()) != NULL) {
        snap->other = *other;
    }
    apr_global_mutex_unlock(status_mutex);
    if (snap->rows->nelts > 1) {
        qsort(snap->rows->elts, (size_t)snap->rows->nelts,
              sizeof(status_slot_t), by_expiry);
    }
}

static apr_uint64_t sum(const apr_uint64_t *v)
{
    apr_uint64_t n = 0;
    int i;

    for (i = 0; i < REENCRYPT_REASONS; i++) {
        n += v[i];
    }
    return n;
}

static int expiring(const status_slot_t *sl, apr_int64_t now)
{
    return sl->not_after && sl->warn_within > 0
           && sl->not_after - now < sl->warn_within;
}

static const char *iso(apr_pool_t *p, apr_int64_t t)
{
    return t ? reencrypt_time_str(p, (time_t)t) : "";
}

/* The CRL files of the configuration (reencrypt_crl_watch_t): what
 * post_config collected, configuration data, not in shared memory. */
static const apr_array_header_t *crl_list(apr_pool_t *p)
{
    const apr_array_header_t *files = crl_files;

    return files ? files : apr_array_make(p, 1,
                                          sizeof(reencrypt_crl_watch_t));
}

static const reencrypt_crl_info_t *crl_at(const reencrypt_crl_watch_t *w,
                                          int j)
{
    return &APR_ARRAY_IDX(w->file->info, j, reencrypt_crl_info_t);
}

/* A CRL whose nextUpdate is within the warning window of a policy that
 * checks against its file (RE00082), or past */
static int crl_expiring(const reencrypt_crl_watch_t *w,
                        const reencrypt_crl_info_t *crl, apr_int64_t now)
{
    return crl->next_update && w->warn_within > 0
           && (apr_int64_t)crl->next_update - now < w->warn_within;
}

/* --- JSON --- */

static const char *json_str_or_null(apr_pool_t *p, const char *s)
{
    return (s && *s) ? reencrypt_escape_json(p, s) : "null";
}

static void json_reasons(request_rec *r, const apr_uint64_t *v)
{
    int i;

    ap_rputs("{", r);
    for (i = 1; i < REENCRYPT_REASONS; i++) {
        ap_rprintf(r, "%s\"%s\": %" APR_UINT64_T_FMT, i > 1 ? ", " : "",
                   reencrypt_reason_token((reencrypt_reason_e)i), v[i]);
    }
    ap_rputs("}", r);
}

static void json_counts(request_rec *r, const status_counts_t *n)
{
    ap_rprintf(r, "{\"handshakes_full\": %" APR_UINT64_T_FMT
               ", \"handshakes_resumed\": %" APR_UINT64_T_FMT
               ", \"reuses\": %" APR_UINT64_T_FMT ", \"refusals\": ",
               n->full, n->resumed, n->reuses);
    json_reasons(r, n->refused);
    ap_rputs(", \"report_violations\": ", r);
    json_reasons(r, n->reported);
    ap_rputs("}", r);
}

static void json_crl_files(request_rec *r, apr_int64_t now)
{
    const apr_array_header_t *files = crl_list(r->pool);
    int i, j;

    for (i = 0; i < files->nelts; i++) {
        const reencrypt_crl_watch_t *w = &APR_ARRAY_IDX(files, i,
                                                  reencrypt_crl_watch_t);

        ap_rprintf(r, "%s\n  {\"path\": %s, \"warn_within_seconds\": %"
                   APR_INT64_T_FMT ", \"crls\": [", i ? "," : "",
                   reencrypt_escape_json(r->pool, w->file->path),
                   w->warn_within);
        for (j = 0; j < w->file->info->nelts; j++) {
            const reencrypt_crl_info_t *crl = crl_at(w, j);
            apr_int64_t next = (apr_int64_t)crl->next_update;

            ap_rprintf(r, "%s\n   {\"issuer\": %s, \"last_update\": %s, "
                       "\"last_update_unix\": %s, \"next_update\": %s, "
                       "\"next_update_unix\": %s, \"seconds_left\": %s, "
                       "\"expiring\": %s, \"entries\": %d}", j ? "," : "",
                       reencrypt_escape_json(r->pool, crl->issuer),
                       json_str_or_null(r->pool, iso(r->pool,
                                            (apr_int64_t)crl->last_update)),
                       crl->last_update
                           ? apr_psprintf(r->pool, "%" APR_INT64_T_FMT,
                                          (apr_int64_t)crl->last_update)
                           : "null",
                       json_str_or_null(r->pool, iso(r->pool, next)),
                       next ? apr_psprintf(r->pool, "%" APR_INT64_T_FMT,
                                           next) : "null",
                       next ? apr_psprintf(r->pool, "%" APR_INT64_T_FMT,
                                           next - now) : "null",
                       crl_expiring(w, crl, now) ? "true" : "false",
                       crl->entries);
        }
        ap_rputs("]}", r);
    }
}

static void render_json(request_rec *r, const snapshot_t *snap)
{
    int i;

    ap_set_content_type(r, "application/json");
    ap_rprintf(r, "{\"schema\": 1, \"module\": \"mod_reencrypt/%s\", "
               "\"generated\": \"%s\", \"generated_unix\": %" APR_INT64_T_FMT
               ", \"slots\": %u, \"slots_used\": %d, \"slot_reclaims\": %"
               APR_UINT64_T_FMT ", \"slot_overflows\": %" APR_UINT64_T_FMT
               ",\n \"other\": ", REENCRYPT_VERSION, iso(r->pool, snap->now),
               snap->now, nslots, snap->rows->nelts, snap->other.reclaims,
               snap->other.overflows);
    json_counts(r, &snap->other.n);
    ap_rputs(", \"backends\": [", r);
    for (i = 0; i < snap->rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(snap->rows, i,
                                                 status_slot_t);

        ap_rprintf(r, "%s\n  {\"backend\": %s, \"sni\": %s, "
                   "\"sni_from_client\": %s, \"expiring\": %s"
                   ", \"warn_within_seconds\": %" APR_INT64_T_FMT ",",
                   i ? "," : "", reencrypt_escape_json(r->pool, sl->backend),
                   json_str_or_null(r->pool, sl->sni),
                   sl->client_named ? "true" : "false",
                   expiring(sl, snap->now) ? "true" : "false",
                   sl->warn_within);
        if (sl->not_after) {
            ap_rprintf(r, "\n   \"certificate\": {\"subject\": %s, "
                       "\"issuer\": %s, \"sans\": %s, \"serial\": %s, "
                       "\"pin\": %s, \"not_before\": %s, \"not_after\": %s, "
                       "\"not_after_unix\": %" APR_INT64_T_FMT ", "
                       "\"seconds_left\": %" APR_INT64_T_FMT ", "
                       "\"chain_length\": %d},",
                       reencrypt_escape_json(r->pool, sl->subject),
                       reencrypt_escape_json(r->pool, sl->issuer),
                       reencrypt_escape_json(r->pool, sl->sans),
                       reencrypt_escape_json(r->pool, sl->serial),
                       reencrypt_escape_json(r->pool, sl->pin),
                       reencrypt_escape_json(r->pool,
                                             iso(r->pool, sl->not_before)),
                       reencrypt_escape_json(r->pool,
                                             iso(r->pool, sl->not_after)),
                       sl->not_after, sl->not_after - snap->now,
                       (int)sl->chain_len);
        }
        else {
            ap_rputs("\n   \"certificate\": null,", r);
        }
        ap_rprintf(r, "\n   \"last_handshake\": {\"time\": %s, "
                   "\"time_unix\": %" APR_INT64_T_FMT ", \"result\": %s, "
                   "\"protocol\": %s, \"cipher\": %s},",
                   json_str_or_null(r->pool, iso(r->pool, sl->last_time)),
                   sl->last_time,
                   reencrypt_escape_json(r->pool, sl->last_result),
                   reencrypt_escape_json(r->pool, sl->protocol),
                   reencrypt_escape_json(r->pool, sl->cipher));
        if (sl->full_time) {
            ap_rprintf(r, "\n   \"last_full_handshake\": {\"time\": %s, "
                       "\"time_unix\": %" APR_INT64_T_FMT ", "
                       "\"revocation\": %s, \"staple\": %s, "
                       "\"staple_next_update\": %s, "
                       "\"staple_next_update_unix\": %s},",
                       reencrypt_escape_json(r->pool,
                                             iso(r->pool, sl->full_time)),
                       sl->full_time,
                       reencrypt_escape_json(r->pool, sl->revocation),
                       reencrypt_escape_json(r->pool, sl->staple),
                       json_str_or_null(r->pool, iso(r->pool,
                                            sl->staple_next_update)),
                       sl->staple_next_update
                           ? apr_psprintf(r->pool, "%" APR_INT64_T_FMT,
                                          sl->staple_next_update)
                           : "null");
        }
        else {
            ap_rputs("\n   \"last_full_handshake\": null,", r);
        }
        ap_rputs("\n   \"counters\": ", r);
        json_counts(r, &sl->n);
        ap_rputs("}", r);
    }
    ap_rputs("\n], \"crl_files\": [", r);
    json_crl_files(r, snap->now);
    ap_rputs("\n]}\n", r);
}

/* --- Prometheus text exposition format 0.0.4 --- */

static void prom_head(request_rec *r, const char *name, const char *type,
                      const char *help)
{
    ap_rprintf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *prom_ids(apr_pool_t *p, const status_slot_t *sl)
{
    return apr_psprintf(p, "backend=\"%s\",sni=\"%s\"",
                        reencrypt_escape_prom(p, sl->backend),
                        reencrypt_escape_prom(p, sl->sni));
}

/* The labels that name a set of counters, and the counters. */
typedef struct {
    const char *ids;
    const status_counts_t *n;
} prom_counts_t;

/* The backend label of what no slot holds: never a host:port */
#define PROM_OTHER "other"

/* file and issuer of a CRL, or NULL for a CRL of the same file and
 * issuer as a newer one (by lastUpdate, the first of equals): one
 * sample per label set, of the CRL the check uses */
static const char *prom_crl_ids(apr_pool_t *p,
                                const reencrypt_crl_watch_t *w, int j)
{
    const reencrypt_crl_info_t *crl = crl_at(w, j);
    int k;

    for (k = 0; k < w->file->info->nelts; k++) {
        const reencrypt_crl_info_t *o = crl_at(w, k);

        if (k != j && !strcmp(o->issuer, crl->issuer)
            && (o->last_update > crl->last_update
                || (o->last_update == crl->last_update && k < j))) {
            return NULL;
        }
    }
    return apr_psprintf(p, "file=\"%s\",issuer=\"%s\"",
                        reencrypt_escape_prom(p, w->file->path),
                        reencrypt_escape_prom(p, crl->issuer));
}

static void prom_crl_files(request_rec *r)
{
    const apr_array_header_t *files = crl_list(r->pool);
    const char *ids;
    int i, j;

    if (!files->nelts) {
        return;
    }
    prom_head(r, "reencrypt_crl_next_update_seconds", "gauge",
              "nextUpdate of a CRL of ReencryptCARevocationFile.");
    for (i = 0; i < files->nelts; i++) {
        const reencrypt_crl_watch_t *w = &APR_ARRAY_IDX(files, i,
                                                  reencrypt_crl_watch_t);

        for (j = 0; j < w->file->info->nelts; j++) {
            if (crl_at(w, j)->next_update
                && (ids = prom_crl_ids(r->pool, w, j)) != NULL) {
                ap_rprintf(r, "reencrypt_crl_next_update_seconds{%s} %"
                           APR_INT64_T_FMT "\n", ids,
                           (apr_int64_t)crl_at(w, j)->next_update);
            }
        }
    }
    prom_head(r, "reencrypt_crl_entries", "gauge",
              "Revoked certificates a CRL of ReencryptCARevocationFile "
              "lists.");
    for (i = 0; i < files->nelts; i++) {
        const reencrypt_crl_watch_t *w = &APR_ARRAY_IDX(files, i,
                                                  reencrypt_crl_watch_t);

        for (j = 0; j < w->file->info->nelts; j++) {
            if ((ids = prom_crl_ids(r->pool, w, j)) != NULL) {
                ap_rprintf(r, "reencrypt_crl_entries{%s} %d\n", ids,
                           crl_at(w, j)->entries);
            }
        }
    }
}

static void render_prometheus(request_rec *r, const snapshot_t *snap)
{
    const apr_array_header_t *rows = snap->rows;
    apr_array_header_t *ids;
    int i, k;

    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");

    prom_head(r, "reencrypt_backend_info", "gauge",
              "Certificate and last handshake of a backend, and what the "
              "revocation check and the OCSP staple of its last full "
              "handshake said, as labels.");
    for (i = 0; i < rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(rows, i, status_slot_t);

        ap_rprintf(r, "reencrypt_backend_info{%s,subject=\"%s\","
                   "issuer=\"%s\",serial=\"%s\",pin=\"%s\",protocol=\"%s\","
                   "cipher=\"%s\",result=\"%s\",revocation=\"%s\","
                   "staple=\"%s\"} 1\n",
                   prom_ids(r->pool, sl),
                   reencrypt_escape_prom(r->pool, sl->subject),
                   reencrypt_escape_prom(r->pool, sl->issuer),
                   reencrypt_escape_prom(r->pool, sl->serial),
                   reencrypt_escape_prom(r->pool, sl->pin),
                   reencrypt_escape_prom(r->pool, sl->protocol),
                   reencrypt_escape_prom(r->pool, sl->cipher),
                   reencrypt_escape_prom(r->pool, sl->last_result),
                   reencrypt_escape_prom(r->pool, sl->revocation),
                   reencrypt_escape_prom(r->pool, sl->staple));
    }
    prom_head(r, "reencrypt_backend_cert_not_after_timestamp_seconds",
              "gauge", "notAfter of the certificate the backend presented.");
    for (i = 0; i < rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(rows, i, status_slot_t);

        if (sl->not_after) {
            ap_rprintf(r, "reencrypt_backend_cert_not_after_timestamp_seconds"
                       "{%s} %" APR_INT64_T_FMT "\n", prom_ids(r->pool, sl),
                       sl->not_after);
        }
    }
    prom_head(r, "reencrypt_backend_cert_not_before_timestamp_seconds",
              "gauge", "notBefore of the certificate the backend presented.");
    for (i = 0; i < rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(rows, i, status_slot_t);

        if (sl->not_after) {
            ap_rprintf(r, "reencrypt_backend_cert_not_before_timestamp_seconds"
                       "{%s} %" APR_INT64_T_FMT "\n", prom_ids(r->pool, sl),
                       sl->not_before);
        }
    }
    prom_head(r, "reencrypt_backend_cert_expiring", "gauge",
              "1 when the certificate expires within "
              "ReencryptWarnExpiringWithin.");
    for (i = 0; i < rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(rows, i, status_slot_t);

        if (sl->not_after) {
            ap_rprintf(r, "reencrypt_backend_cert_expiring{%s} %d\n",
                       prom_ids(r->pool, sl), expiring(sl, snap->now));
        }
    }
    prom_head(r, "reencrypt_backend_last_handshake_timestamp_seconds",
              "gauge", "Time of the last handshake with the backend.");
    for (i = 0; i < rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(rows, i, status_slot_t);

        if (sl->last_time) {
            ap_rprintf(r, "reencrypt_backend_last_handshake_timestamp_seconds"
                       "{%s} %" APR_INT64_T_FMT "\n", prom_ids(r->pool, sl),
                       sl->last_time);
        }
    }
    prom_head(r, "reencrypt_backend_staple_next_update_seconds", "gauge",
              "nextUpdate of the OCSP staple of the backend's last full "
              "handshake.");
    for (i = 0; i < rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(rows, i, status_slot_t);

        if (sl->staple_next_update) {
            ap_rprintf(r, "reencrypt_backend_staple_next_update_seconds"
                       "{%s} %" APR_INT64_T_FMT "\n", prom_ids(r->pool, sl),
                       sl->staple_next_update);
        }
    }
    /* the counters of every slot, and of what no slot holds */
    ids = apr_array_make(r->pool, rows->nelts + 1, sizeof(prom_counts_t));
    for (i = 0; i < rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(rows, i, status_slot_t);
        prom_counts_t *pc = apr_array_push(ids);

        pc->ids = prom_ids(r->pool, sl);
        pc->n = &sl->n;
    }
    if (slots) {
        prom_counts_t *pc = apr_array_push(ids);

        pc->ids = "backend=\"" PROM_OTHER "\",sni=\"\"";
        pc->n = &snap->other.n;
    }
    prom_head(r, "reencrypt_handshakes_total", "counter",
              "TLS handshakes with the backend that passed the policy.");
    for (i = 0; i < ids->nelts; i++) {
        const prom_counts_t *pc = &APR_ARRAY_IDX(ids, i, prom_counts_t);

        ap_rprintf(r, "reencrypt_handshakes_total{%s,kind=\"full\"} %"
                   APR_UINT64_T_FMT "\n", pc->ids, pc->n->full);
        ap_rprintf(r, "reencrypt_handshakes_total{%s,kind=\"resumed\"} %"
                   APR_UINT64_T_FMT "\n", pc->ids, pc->n->resumed);
    }
    prom_head(r, "reencrypt_connection_reuses_total", "counter",
              "Requests sent over an already verified pooled connection.");
    for (i = 0; i < ids->nelts; i++) {
        const prom_counts_t *pc = &APR_ARRAY_IDX(ids, i, prom_counts_t);

        ap_rprintf(r, "reencrypt_connection_reuses_total{%s} %"
                   APR_UINT64_T_FMT "\n", pc->ids, pc->n->reuses);
    }
    prom_head(r, "reencrypt_refusals_total", "counter",
              "Backend handshakes refused by the policy, by reason.");
    for (i = 0; i < ids->nelts; i++) {
        const prom_counts_t *pc = &APR_ARRAY_IDX(ids, i, prom_counts_t);

        for (k = 1; k < REENCRYPT_REASONS; k++) {
            ap_rprintf(r, "reencrypt_refusals_total{%s,reason=\"%s\"} %"
                       APR_UINT64_T_FMT "\n", pc->ids,
                       reencrypt_reason_token((reencrypt_reason_e)k),
                       pc->n->refused[k]);
        }
    }
    prom_head(r, "reencrypt_report_violations_total", "counter",
              "Violations let through by ReencryptMode Report, by reason.");
    for (i = 0; i < ids->nelts; i++) {
        const prom_counts_t *pc = &APR_ARRAY_IDX(ids, i, prom_counts_t);

        for (k = 1; k < REENCRYPT_REASONS; k++) {
            ap_rprintf(r, "reencrypt_report_violations_total{%s,reason=\"%s\"}"
                       " %" APR_UINT64_T_FMT "\n", pc->ids,
                       reencrypt_reason_token((reencrypt_reason_e)k),
                       pc->n->reported[k]);
        }
    }
    prom_head(r, "reencrypt_status_slots", "gauge",
              "Statistics slots (ReencryptStatusBackends) and those in use.");
    ap_rprintf(r, "reencrypt_status_slots{state=\"total\"} %u\n", nslots);
    ap_rprintf(r, "reencrypt_status_slots{state=\"used\"} %d\n", rows->nelts);
    if (slots) {
        prom_head(r, "reencrypt_status_slot_events_total", "counter",
                  "Slots given to another backend and SNI (reclaimed), and "
                  "connections that passed and found no slot (overflowed).");
        ap_rprintf(r, "reencrypt_status_slot_events_total"
                   "{event=\"reclaimed\"} %" APR_UINT64_T_FMT "\n",
                   snap->other.reclaims);
        ap_rprintf(r, "reencrypt_status_slot_events_total"
                   "{event=\"overflowed\"} %" APR_UINT64_T_FMT "\n",
                   snap->other.overflows);
    }
    prom_crl_files(r);
}

/* --- HTML --- */

static const char *left_str(apr_pool_t *p, apr_int64_t secs)
{
    if (secs < 0) {
        return apr_psprintf(p, "expired %" APR_INT64_T_FMT "d ago",
                            (-secs) / 86400);
    }
    if (secs < 2 * 86400) {
        return apr_psprintf(p, "%" APR_INT64_T_FMT "h", secs / 3600);
    }
    return apr_psprintf(p, "%" APR_INT64_T_FMT "d", secs / 86400);
}

static void html_reasons(request_rec *r, const apr_uint64_t *v)
{
    int i, any = 0;

    for (i = 1; i < REENCRYPT_REASONS; i++) {
        if (v[i]) {
            ap_rprintf(r, "%s<span class=\"tag\">%s&nbsp;%" APR_UINT64_T_FMT
                       "</span>", any ? "<br>" : "",
                       reencrypt_reason_token((reencrypt_reason_e)i), v[i]);
            any = 1;
        }
    }
    if (!any) {
        ap_rputs("0", r);
    }
}

static void html_counts(request_rec *r, const status_counts_t *n)
{
    ap_rprintf(r, "<td class=\"num\">%" APR_UINT64_T_FMT " / %"
               APR_UINT64_T_FMT "</td><td class=\"num\">%"
               APR_UINT64_T_FMT "</td><td>", n->full, n->resumed, n->reuses);
    html_reasons(r, n->refused);
    ap_rputs("</td><td>", r);
    html_reasons(r, n->reported);
    ap_rputs("</td>", r);
}

/* The colour of a revocation or staple token: what passed is ok, what
 * was not checked plain, what Verify lets pass warn, the rest bad */
static const char *token_class(const char *token, int staple)
{
    if (!strcmp(token, "good")) {
        return "ok";
    }
    if (!strcmp(token, "not-checked") || !strcmp(token, "resumed")) {
        return "";
    }
    if (!strcmp(token, "no-crl")
        || (staple && (!strcmp(token, "absent")
                       || !strcmp(token, "unknown")))) {
        return "warn";
    }
    return "bad";
}

/* What the revocation check and the staple of the last full handshake
 * said: the last lines of a backend's "Last handshake" cell */
static void html_revocation(request_rec *r, const status_slot_t *sl)
{
    if (!sl->full_time) {
        ap_rputs("<br>(no full handshake yet)", r);
        return;
    }
    ap_rprintf(r, "<br>CRL <span class=\"tag %s\">%s</span><br>"
               "staple <span class=\"tag %s\">%s</span>",
               token_class(sl->revocation, 0),
               reencrypt_escape_html(r->pool, sl->revocation),
               token_class(sl->staple, 1),
               reencrypt_escape_html(r->pool, sl->staple));
    if (sl->staple_next_update) {
        ap_rprintf(r, "<br>staple until %s",
                   reencrypt_escape_html(r->pool, iso(r->pool,
                                         sl->staple_next_update)));
    }
}

/* The CRL files of the configuration, one row per CRL */
static void html_crl_files(request_rec *r, apr_int64_t now)
{
    const apr_array_header_t *files = crl_list(r->pool);
    int i, j;

    if (!files->nelts) {
        return;
    }
    ap_rputs("<h2>CRL files (ReencryptCARevocationFile)</h2>\n<table>\n"
             "<tr><th>File</th><th>Issuer</th><th>lastUpdate</th>"
             "<th>nextUpdate</th><th>Entries</th></tr>\n", r);
    for (i = 0; i < files->nelts; i++) {
        const reencrypt_crl_watch_t *w = &APR_ARRAY_IDX(files, i,
                                                  reencrypt_crl_watch_t);

        for (j = 0; j < w->file->info->nelts; j++) {
            const reencrypt_crl_info_t *crl = crl_at(w, j);
            apr_int64_t next = (apr_int64_t)crl->next_update;
            const char *cls = (next && next <= now) ? "bad"
                              : (crl_expiring(w, crl, now) ? "warn" : "ok");

            ap_rprintf(r, "<tr class=\"%s\"><td>%s</td><td>%s</td>"
                       "<td class=\"when\">%s</td><td class=\"when\">",
                       cls, reencrypt_escape_html(r->pool, w->file->path),
                       reencrypt_escape_html(r->pool, crl->issuer),
                       reencrypt_escape_html(r->pool, iso(r->pool,
                                             (apr_int64_t)crl->last_update)));
            if (next) {
                ap_rprintf(r, "%s<br><span class=\"tag %s\">%s</span>",
                           reencrypt_escape_html(r->pool,
                                                 iso(r->pool, next)), cls,
                           reencrypt_escape_html(r->pool,
                                                 left_str(r->pool,
                                                          next - now)));
            }
            else {
                ap_rputs("(none)", r);
            }
            ap_rprintf(r, "</td><td class=\"num\">%d</td></tr>\n",
                       crl->entries);
        }
    }
    ap_rputs("</table>\n", r);
}

static int any_count(const status_counts_t *n)
{
    return n->full || n->resumed || n->reuses || sum(n->refused)
           || sum(n->reported);
}

static void render_html(request_rec *r, const snapshot_t *snap)
{
    const status_counts_t *other = &snap->other.n;
    int i;

    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rputs(DOCTYPE_HTML_4_01
             "<html><head><meta charset=\"utf-8\">\n"
             "<title>mod_reencrypt status</title>\n<style>\n"
             "body{font-family:sans-serif;margin:1.5em;color:#222}\n"
             "h1{font-size:1.4em;margin-bottom:.2em}\n"
             "h2{font-size:1.1em;margin-top:1.5em}\n"
             ".meta{color:#666;margin-bottom:1em}\n"
             "table{border-collapse:collapse;font-size:.9em}\n"
             "th,td{border:1px solid #ccc;padding:.35em .6em;"
             "text-align:left;vertical-align:top}\n"
             "th{background:#eef1f5}\n"
             "tr.bad td{background:#fde8e8}\n"
             "tr.warn td{background:#fff6dc}\n"
             "td.num{text-align:right}\n"
             ".small{color:#555;font-size:.85em}\n"
             ".tag{display:inline-block;padding:0 .4em;border-radius:3px;"
             "font-size:.85em;white-space:nowrap}\n"
             "td.when{white-space:nowrap}\n"
             ".tag.bad{background:#c62828;color:#fff}\n"
             ".tag.warn{background:#f9a825;color:#000}\n"
             ".tag.ok{background:#2e7d32;color:#fff}\n"
             "</style></head><body>\n"
             "<h1>mod_reencrypt: backend certificates</h1>\n", r);
    ap_rprintf(r, "<div class=\"meta\">%s &middot; %d of %u backends "
               "tracked &middot; slots reclaimed: %" APR_UINT64_T_FMT
               ", overflowed: %" APR_UINT64_T_FMT " &middot; soonest expiry "
               "first &middot; <a href=\"?json\">JSON</a> &middot; "
               "<a href=\"?prometheus\">Prometheus</a></div>\n",
               reencrypt_escape_html(r->pool, iso(r->pool, snap->now)),
               snap->rows->nelts, nslots, snap->other.reclaims,
               snap->other.overflows);
    if (!slots) {
        ap_rputs("<p>Backend statistics are off (mod_slotmem_shm not loaded, "
                 "ReencryptStatusBackends 0, or no ReencryptEngine On).</p>\n",
                 r);
        html_crl_files(r, snap->now);
        ap_rputs("</body></html>\n", r);
        return;
    }
    ap_rputs("<table>\n<tr><th>Backend / SNI</th><th>Certificate</th>"
             "<th>Expires</th><th>Last handshake</th>"
             "<th>Handshakes<br>full / resumed</th><th>Reuses</th>"
             "<th>Refusals</th><th>Report-only</th></tr>\n", r);
    for (i = 0; i < snap->rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(snap->rows, i,
                                                 status_slot_t);
        int bad = sum(sl->n.refused) > 0
                  || !strncmp(sl->last_result, "refused", 7);
        int warn = expiring(sl, snap->now) || sum(sl->n.reported) > 0
                   || !strncmp(sl->last_result, "report", 6);
        const char *cls = bad ? "bad" : (warn ? "warn" : "ok");

        ap_rprintf(r, "<tr class=\"%s\"><td><b>%s</b><br>"
                   "<span class=\"small\">SNI %s%s</span></td>",
                   cls, reencrypt_escape_html(r->pool, sl->backend),
                   *sl->sni ? reencrypt_escape_html(r->pool, sl->sni)
                            : "(none)",
                   sl->client_named ? " (client's Host)" : "");
        if (sl->not_after) {
            ap_rprintf(r, "<td>%s<br><span class=\"small\">issuer %s<br>"
                       "%s<br>serial %s &middot; chain %d<br>%s</span></td>",
                       reencrypt_escape_html(r->pool, sl->subject),
                       reencrypt_escape_html(r->pool, sl->issuer),
                       reencrypt_escape_html(r->pool, sl->sans),
                       reencrypt_escape_html(r->pool, sl->serial),
                       (int)sl->chain_len,
                       reencrypt_escape_html(r->pool, sl->pin));
            ap_rprintf(r, "<td class=\"when\">%s<br>"
                       "<span class=\"tag %s\">%s</span></td>",
                       reencrypt_escape_html(r->pool,
                                             iso(r->pool, sl->not_after)),
                       expiring(sl, snap->now)
                           || sl->not_after <= snap->now ? "warn" : "ok",
                       reencrypt_escape_html(r->pool, left_str(r->pool,
                                             sl->not_after - snap->now)));
        }
        else {
            ap_rputs("<td>(none seen)</td><td></td>", r);
        }
        ap_rprintf(r, "<td><span class=\"tag %s\">%s</span><br>"
                   "<span class=\"small\">%s<br>%s %s",
                   !strncmp(sl->last_result, "ok", 2) ? "ok"
                   : (!strncmp(sl->last_result, "report", 6) ? "warn"
                                                             : "bad"),
                   reencrypt_escape_html(r->pool, sl->last_result),
                   reencrypt_escape_html(r->pool,
                                         iso(r->pool, sl->last_time)),
                   reencrypt_escape_html(r->pool, sl->protocol),
                   reencrypt_escape_html(r->pool, sl->cipher));
        html_revocation(r, sl);
        ap_rputs("</span></td>", r);
        html_counts(r, &sl->n);
        ap_rputs("</tr>\n", r);
    }
    if (any_count(other)) {
        /* what no slot holds: refusals of backends and SNIs that never
         * passed, and what found the slots full */
        ap_rprintf(r, "<tr class=\"%s\"><td><b>other</b><br><span "
                   "class=\"small\">backends and SNIs without a slot</span>"
                   "</td><td>(not kept)</td><td></td><td></td>",
                   sum(other->refused) ? "bad"
                   : (sum(other->reported) ? "warn" : "ok"));
        html_counts(r, other);
        ap_rputs("</tr>\n", r);
    }
    ap_rputs("</table>\n", r);
    html_crl_files(r, snap->now);
    ap_rputs("</body></html>\n", r);
}

/* "?json", or "?json=" and "?json&..." as scrapers and forms send it */
static int arg_is(const char *args, const char *name)
{
    apr_size_t n = strlen(name);

    return args && !strncmp(args, name, n)
           && (args[n] == '\0' || args[n] == '=' || args[n] == '&');
}

int reencrypt_status_handler(request_rec *r)
{
    snapshot_t snap;

    if (!r->handler || strcmp(r->handler, STATUS_HANDLER)) {
        return DECLINED;
    }
    r->allowed = (AP_METHOD_BIT << M_GET);
    ap_allow_standard_methods(r, REPLACE_ALLOW, M_GET, -1);
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    take_snapshot(r->pool, &snap);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (arg_is(r->args, "json")) {
        render_json(r, &snap);
    }
    else if (arg_is(r->args, "prometheus")) {
        render_prometheus(r, &snap);
    }
    else {
        render_html(r, &snap);
    }
    return OK;
}

/* The ?auto names of the revocation and staple tokens counted in
 * server-status, in the order of their enums (from "good" on: what was
 * not checked is not counted) */
static const char *const auto_revocation[] = {
    "Good", "NoCRL", "Revoked", "CRLExpired", "CRLMissing", "CRLInvalid"
};
static const char *const auto_staple[] = {
    "Good", "Revoked", "Unknown", "Absent", "Expired", "Invalid"
};
#define N_AUTO_REV    (int)(sizeof(auto_revocation) / sizeof(char *))
#define N_AUTO_STAPLE (int)(sizeof(auto_staple) / sizeof(char *))

/* How many backends' last full handshake gave each revocation and each
 * staple token; the backend whose staple's nextUpdate comes first. */
typedef struct {
    int revocation[N_AUTO_REV];
    int staple[N_AUTO_STAPLE];
    int recorded;                   /* backends with a full handshake */
    const status_slot_t *soonest_staple;
} token_counts_t;

static void count_tokens(const snapshot_t *snap, token_counts_t *tc)
{
    int i, k;

    memset(tc, 0, sizeof(*tc));
    for (i = 0; i < snap->rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(snap->rows, i,
                                                 status_slot_t);

        if (!sl->full_time) {
            continue;
        }
        tc->recorded++;
        for (k = 0; k < N_AUTO_REV; k++) {
            if (!strcmp(sl->revocation, reencrypt_revocation_token(
                            (reencrypt_revocation_state_e)
                            (REENCRYPT_REV_GOOD + k)))) {
                tc->revocation[k]++;
            }
        }
        for (k = 0; k < N_AUTO_STAPLE; k++) {
            if (!strcmp(sl->staple, reencrypt_staple_token(
                            (reencrypt_staple_state_e)
                            (REENCRYPT_STAPLE_GOOD + k)))) {
                tc->staple[k]++;
            }
        }
        if (sl->staple_next_update
            && (!tc->soonest_staple || sl->staple_next_update
                                       < tc->soonest_staple->staple_next_update)) {
            tc->soonest_staple = sl;
        }
    }
}

/* "good 2, revoked 1": how many backends' last full handshake gave
 * each revocation (or staple) token, in the order of the enum; "none
 * recorded" when no backend has had one */
static const char *token_list(apr_pool_t *p, const snapshot_t *snap,
                              int staple)
{
    int last = staple ? REENCRYPT_STAPLE_RESUMED : REENCRYPT_REV_CRL_INVALID;
    const char *out = NULL;
    int i, k;

    for (k = 0; k <= last; k++) {
        const char *t = staple
            ? reencrypt_staple_token((reencrypt_staple_state_e)k)
            : reencrypt_revocation_token((reencrypt_revocation_state_e)k);
        int n = 0;

        for (i = 0; i < snap->rows->nelts; i++) {
            const status_slot_t *sl = &APR_ARRAY_IDX(snap->rows, i,
                                                     status_slot_t);

            n += sl->full_time
                 && !strcmp(staple ? sl->staple : sl->revocation, t);
        }
        if (n) {
            out = apr_psprintf(p, "%s%s%s %d", out ? out : "",
                               out ? ", " : "", t, n);
        }
    }
    return out ? out : "none recorded";
}

/* mod_status: a section of server-status, and lines of ?auto */
int reencrypt_status_hook(request_rec *r, int flags)
{
    snapshot_t snap;
    apr_uint64_t full, resumed, reuses, refused, reported;
    const status_slot_t *soonest = NULL;
    token_counts_t tc;
    int i, k, n_expiring = 0;

    if (!slots) {
        return OK;
    }
    take_snapshot(r->pool, &snap);
    /* totals: every slot, and what no slot holds */
    full = snap.other.n.full;
    resumed = snap.other.n.resumed;
    reuses = snap.other.n.reuses;
    refused = sum(snap.other.n.refused);
    reported = sum(snap.other.n.reported);
    for (i = 0; i < snap.rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(snap.rows, i,
                                                 status_slot_t);

        full += sl->n.full;
        resumed += sl->n.resumed;
        reuses += sl->n.reuses;
        refused += sum(sl->n.refused);
        reported += sum(sl->n.reported);
        n_expiring += expiring(sl, snap.now);
        if (sl->not_after && !soonest) {
            soonest = sl;           /* rows are sorted by expiry */
        }
    }
    count_tokens(&snap, &tc);
    if (flags & AP_STATUS_SHORT) {
        ap_rprintf(r, "ReencryptBackends: %d\n"
                   "ReencryptHandshakesFull: %" APR_UINT64_T_FMT "\n"
                   "ReencryptHandshakesResumed: %" APR_UINT64_T_FMT "\n"
                   "ReencryptReuses: %" APR_UINT64_T_FMT "\n"
                   "ReencryptRefusals: %" APR_UINT64_T_FMT "\n"
                   "ReencryptReportViolations: %" APR_UINT64_T_FMT "\n"
                   "ReencryptExpiringBackends: %d\n"
                   "ReencryptSlotReclaims: %" APR_UINT64_T_FMT "\n"
                   "ReencryptSlotOverflows: %" APR_UINT64_T_FMT "\n",
                   snap.rows->nelts, full, resumed, reuses, refused,
                   reported, n_expiring, snap.other.reclaims,
                   snap.other.overflows);
        if (soonest) {
            ap_rprintf(r, "ReencryptSoonestExpirySeconds: %" APR_INT64_T_FMT
                       "\nReencryptSoonestExpiryBackend: %s\n",
                       soonest->not_after - snap.now, soonest->backend);
        }
        for (k = 0; k < N_AUTO_REV; k++) {
            ap_rprintf(r, "ReencryptRevocation%s: %d\n", auto_revocation[k],
                       tc.revocation[k]);
        }
        for (k = 0; k < N_AUTO_STAPLE; k++) {
            ap_rprintf(r, "ReencryptStaple%s: %d\n", auto_staple[k],
                       tc.staple[k]);
        }
        if (tc.soonest_staple) {
            ap_rprintf(r, "ReencryptSoonestStapleNextUpdateSeconds: %"
                       APR_INT64_T_FMT "\nReencryptSoonestStapleBackend: %s\n",
                       tc.soonest_staple->staple_next_update - snap.now,
                       tc.soonest_staple->backend);
        }
        return OK;
    }
    ap_rputs("<hr>\n<h2>mod_reencrypt</h2>\n<dl>\n", r);
    ap_rprintf(r, "<dt>%d backends tracked; handshakes: %" APR_UINT64_T_FMT
               " full, %" APR_UINT64_T_FMT " resumed; %" APR_UINT64_T_FMT
               " pooled reuses</dt>\n<dt>refusals: %" APR_UINT64_T_FMT
               "; report-only violations: %" APR_UINT64_T_FMT
               "; expiring soon: %d</dt>\n<dt>statistics slots: %d of %u "
               "used; %" APR_UINT64_T_FMT " reclaimed; %" APR_UINT64_T_FMT
               " overflowed</dt>\n", snap.rows->nelts, full, resumed,
               reuses, refused, reported, n_expiring, snap.rows->nelts,
               nslots, snap.other.reclaims, snap.other.overflows);
    if (soonest) {
        ap_rprintf(r, "<dt>soonest expiry: %s (%s) at %s</dt>\n",
                   reencrypt_escape_html(r->pool, soonest->backend),
                   reencrypt_escape_html(r->pool, soonest->subject),
                   reencrypt_escape_html(r->pool,
                                         iso(r->pool, soonest->not_after)));
    }
    ap_rprintf(r, "<dt>at the last full handshake: revocation %s; OCSP "
               "staple %s</dt>\n", token_list(r->pool, &snap, 0),
               token_list(r->pool, &snap, 1));
    if (tc.soonest_staple) {
        ap_rprintf(r, "<dt>soonest staple nextUpdate: %s at %s</dt>\n",
                   reencrypt_escape_html(r->pool,
                                         tc.soonest_staple->backend),
                   reencrypt_escape_html(r->pool, iso(r->pool,
                                         tc.soonest_staple->staple_next_update)));
    }
    ap_rputs("</dl>\n", r);
    return OK;
}
