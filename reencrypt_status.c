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
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "mod_reencrypt.h"
#include "reencrypt_status.h"
#include "reencrypt_status_store.h"
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
 * them in: a new layout of status_slot_t or status_other_t takes a new
 * name, because mod_slotmem_shm restores a shorter file of an older
 * layout as it is (AH02552) and the slots would be read out of step; so
 * does a new placement of backends in the slots (-5: from
 * reencrypt_slot_start(), where -4 took the lowest free slot; -6: one
 * segment, counted in and persisted, where -5 kept a second copy for
 * the parent to persist). */
#define STATUS_SLOTMEM     "mod_reencrypt-status-6"
#define STATUS_OTHER       "mod_reencrypt-status-other-2"
/* Who is counting, and whether the generation still counts: a segment
 * of each generation's own, never persisted, so that what the children
 * of an ended generation do with it never touches a segment being
 * saved (see status_close). */
#define STATUS_GATE        "mod_reencrypt-status-gate"

typedef struct {
    /* set by the parent when the generation ends, before mod_slotmem_shm
     * saves the segments: nobody counts any more */
    apr_uint32_t closed;
    /* users counting into the slots or the "other" record right now */
    apr_uint32_t writers;
} status_gate_t;

static const ap_slotmem_provider_t *slotmem;
static ap_slotmem_instance_t *slots;
static ap_slotmem_instance_t *other_mem;
static ap_slotmem_instance_t *gate_mem;
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

static status_gate_t *gate_rec(void)
{
    return slotmem_at(gate_mem, 0);
}

/* How long the parent waits, when a generation ends, for the children
 * counting at that moment: each is done in a few atomic operations and
 * one short write under the mutex (which a view may hold for a few
 * milliseconds while it copies the slots). Only a child that died
 * while counting never is: it costs each end of a generation this long,
 * until the next generation starts with a new gate. */
#define CLOSE_WAIT_STEP   (APR_USEC_PER_SEC / 1000)
#define CLOSE_WAIT_STEPS  250

/* Whoever counts into the slots or the "other" record announces it
 * first (writers + 1), then checks that the generation has not ended
 * (closed); status_close() writes closed first, then reads writers.
 * With sequentially consistent atomics at least one of the two sees
 * the other: a writer that saw closed 0 is waited for, and one that
 * comes later stays out. Both words are in the gate, not in a segment
 * that is saved. */
static int writer_enter(void)
{
    status_gate_t *g = gate_rec();

    if (!g) {
        return 0;
    }
    apr_atomic_inc32(&g->writers);
    if (apr_atomic_read32(&g->closed)) {
        apr_atomic_dec32(&g->writers);
        return 0;
    }
    return 1;
}

static void writer_leave(void)
{
    apr_atomic_dec32(&gate_rec()->writers);
}

/* When a generation ends (graceful restart, restart or stop), in the
 * parent process, before mod_slotmem_shm persists the segments: stop
 * the counting and wait for whoever is counting now. mod_slotmem_shm
 * saves a segment with a checksum and restores it only if the checksum
 * matches: a segment that children of the old generation (finishing
 * their requests after a graceful restart) wrote to while it was saved
 * would fail that check (AH02551) and the next generation would start
 * from zero. What the old children would count from now on is not
 * counted; the next generation counts in segments of its own, restored
 * from the saved ones. */
static apr_status_t status_close(void *data)
{
    status_gate_t *g = gate_rec();
    apr_uint32_t left;
    int i;

    (void)data;
    if (!g) {
        return APR_SUCCESS;
    }
    apr_atomic_set32(&g->closed, 1);
    for (i = 0; i < CLOSE_WAIT_STEPS && apr_atomic_read32(&g->writers);
         i++) {
        apr_sleep(CLOSE_WAIT_STEP);
    }
    if ((left = apr_atomic_read32(&g->writers)) != 0) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, ap_server_conf,
                     RELOGNO(00101) "backend statistics: %u counting "
                     "after %d ms at the end of the generation (a child "
                     "that died while counting, or one that is slow): "
                     "what is saved may fail mod_slotmem_shm's checksum "
                     "and start empty (AH02551)", (unsigned)left,
                     CLOSE_WAIT_STEPS * (int)(CLOSE_WAIT_STEP / 1000));
    }
    return APR_SUCCESS;
}

static apr_status_t status_cleanup(void *data)
{
    (void)data;
    slots = NULL;
    other_mem = NULL;
    gate_mem = NULL;
    slotmem = NULL;
    status_mutex = NULL;
    nslots = 0;
    return APR_SUCCESS;
}

#define TERMINATE(field) ((field)[sizeof(field) - 1] = '\0')

/* The slots as restored from the last generation's persisted copy,
 * made safe before any child uses them: each generation gets a segment
 * of its own, so nothing else touches it yet. A slot may have been
 * changing hands when that generation ended (or a child died holding
 * it): such a slot is held by nobody from now on (SLOT_DEAD), and is
 * not made free, which would cut the way to the slots taken after it
 * (see slot_probe). */
static void slots_restored(void)
{
    unsigned int i;

    for (i = 0; i < nslots; i++) {
        status_slot_t *sl = slot_at(i);

        if (!sl) {
            continue;
        }
        if (sl->in_use == SLOT_FREE) {
            continue;
        }
        if (sl->in_use != SLOT_IN_USE) {
            memset(sl, 0, sizeof(*sl));
            sl->in_use = SLOT_DEAD;
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
    rv = slotmem->create(&slots, name, sizeof(status_slot_t),
                         (unsigned int)wanted,
                         AP_SLOTMEM_TYPE_PREGRAB | AP_SLOTMEM_TYPE_PERSIST,
                         pconf);
    if (rv == APR_SUCCESS) {
        name = STATUS_OTHER;
        rv = slotmem->create(&other_mem, name, sizeof(status_other_t), 1,
                             AP_SLOTMEM_TYPE_PREGRAB
                             | AP_SLOTMEM_TYPE_PERSIST, pconf);
    }
    if (rv == APR_SUCCESS) {
        name = STATUS_GATE;
        rv = slotmem->create(&gate_mem, name, sizeof(status_gate_t), 1,
                             AP_SLOTMEM_TYPE_PREGRAB, pconf);
    }
    if (rv != APR_SUCCESS) {
        slots = other_mem = gate_mem = NULL;
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
     * by mod_slotmem_shm) in segments of its own */
    slots_restored();
    apr_pool_cleanup_register(pconf, NULL, status_cleanup,
                              apr_pool_cleanup_null);
    return OK;
}

/* After mod_slotmem_shm's post_config, which registers the cleanup that
 * persists the segments and then removes them: a cleanup registered now
 * runs before that one (pool cleanups run in reverse order), while the
 * segments are still there. */
int reencrypt_status_post_config_close(apr_pool_t *pconf, apr_pool_t *plog,
                                       apr_pool_t *ptemp, server_rec *s)
{
    (void)plog;
    (void)ptemp;
    (void)s;
    if (gate_mem) {
        apr_pool_cleanup_register(pconf, NULL, status_close,
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
 * confirmed by slot_pin_names(). Runs without the global mutex. The
 * search starts where reencrypt_slot_start() says and stops at the
 * first free slot: a backend and SNI take the first free slot from
 * their start on (or, with none free, one that changes hands), and a
 * slot once taken is never free again, so none of theirs lies past a
 * free one. *free_at is set to that free slot, or -1 when every slot
 * was read. */
static unsigned int slot_probe(const char *backend, const char *sni,
                               int *free_at)
{
    status_slot_t *sl;
    unsigned int i, k;

    *free_at = -1;
    i = (unsigned int)reencrypt_slot_start(backend, sni, (int)nslots);
    for (k = 0; k < nslots; k++, i = (i + 1 < nslots) ? i + 1 : 0) {
        apr_uint32_t state;

        if ((sl = slot_at(i)) == NULL) {
            continue;
        }
        state = apr_atomic_read32(&sl->in_use);
        if (state == SLOT_FREE) {
            *free_at = (int)i;
            return 0;
        }
        if (state == SLOT_IN_USE && !strcmp(sl->backend, backend)
            && !strcmp(sl->sni, sni)) {
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

/* Where a backend and SNI with no slot and no free slot to take may go
 * (reencrypt_slot_choose over every slot), or -1. Only when the table
 * is full, or for an SNI from a client's Host (whose share is counted
 * over every slot). The facts are malloc()ed, not taken from the
 * connection's pool: mod_proxy gives each backend's connections a pool
 * allocator of their own, which would keep that memory for each
 * backend for good. */
static int slot_choose_all(int start, int client_named, apr_int64_t now,
                           int *reclaim, apr_int64_t *idle_since)
{
    reencrypt_slot_facts_t *facts;
    unsigned int i;
    int at;

    *reclaim = 0;
    facts = malloc(sizeof(*facts) * nslots);
    if (!facts) {
        return -1;
    }
    for (i = 0; i < nslots; i++) {
        status_slot_t *f = slot_at(i);
        apr_uint32_t state = f ? apr_atomic_read32(&f->in_use) : SLOT_IN_USE;

        facts[i].in_use = state != SLOT_FREE;
        facts[i].client_named = f && state != SLOT_DEAD && f->client_named;
        /* a slot held by nobody is the oldest of all */
        facts[i].last_used = !f ? now : state == SLOT_DEAD ? 0
                             : (apr_int64_t)apr_atomic_read64(&f->last_used);
    }
    at = reencrypt_slot_choose(facts, (int)nslots, start, client_named, now,
                               REENCRYPT_SLOT_IDLE_MIN, reclaim);
    if (at >= 0) {
        *idle_since = facts[at].last_used;
    }
    free(facts);
    return at;
}

/* Give backend and SNI a slot, under the global mutex: free_at, the
 * first free slot from their start on (slot_probe), or one that another
 * backend and SNI left idle (reencrypt_slot_choose). Returns it pinned,
 * or NULL when there is none to take. */
static status_slot_t *slot_take(reencrypt_conn_t *st, const char *backend,
                                const char *sni, int client_named,
                                int free_at)
{
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now());
    apr_int64_t idle_since = now;
    status_other_t *other = other_rec();
    status_slot_t *sl = NULL;
    char was[sizeof(sl->backend) + sizeof(sl->sni) + 8];
    int at = free_at, reclaim = 0;

    *was = '\0';
    if (free_at < 0 || client_named) {
        at = slot_choose_all(reencrypt_slot_start(backend, sni,
                                                  (int)nslots),
                             client_named, now, &reclaim, &idle_since);
    }
    if (at >= 0 && (sl = slot_at((unsigned int)at)) != NULL && reclaim) {
        apr_uint32_t held = apr_atomic_read32(&sl->in_use);

        if ((held != SLOT_IN_USE && held != SLOT_DEAD)
            || apr_atomic_cas32(&sl->in_use, SLOT_MOVING, held) != held) {
            sl = NULL;
        }
        else if (apr_atomic_read32(&sl->busy)) {
            /* counted into right now: not idle after all */
            apr_atomic_set32(&sl->in_use, held);
            sl = NULL;
        }
        else if (held == SLOT_IN_USE) {
            apr_snprintf(was, sizeof(was), "%s SNI %s", sl->backend,
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
    if (*was) {
        if (other) {
            apr_atomic_inc64(&other->reclaims);
        }
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, st->c, RELOGNO(00051)
                      "backend %s: statistics slot %d taken over from %s, "
                      "idle for %" APR_INT64_T_FMT "s", backend, at + 1, was,
                      now - idle_since);
    }
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
    int free_at;

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
    if ((found = slot_probe(backend, sni, &free_at)) != 0
        && (sl = slot_pin_names(found - 1, backend, sni,
                                &st->slot_gen)) != NULL) {
        st->slot = (int)found;
        return sl;
    }
    if (!may_take || apr_global_mutex_lock(status_mutex) != APR_SUCCESS) {
        return NULL;
    }
    if ((found = slot_probe(backend, sni, &free_at)) != 0
        && (sl = slot_pin_names(found - 1, backend, sni,
                                &st->slot_gen)) != NULL) {
        st->slot = (int)found;
    }
    else {
        sl = slot_take(st, backend, sni, client_named, free_at);
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

    if (!slots || !writer_enter()) {
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
        writer_leave();
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
        writer_leave();
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
    writer_leave();
}

void reencrypt_status_reuse(reencrypt_conn_t *st)
{
    status_slot_t *sl;
    status_other_t *other;

    if (!slots || st->slot == 0) {
        return;                     /* its handshake was not counted */
    }
    if (!writer_enter()) {
        return;                     /* the generation has ended */
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
    writer_leave();
}

/* ------------------------------------------------------------------ */
/* Snapshots for the views                                             */

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

void reencrypt_status_snapshot(apr_pool_t *p, snapshot_t *snap)
{
    unsigned int i;
    status_other_t *other;
    unsigned int used = 0;

    memset(&snap->other, 0, sizeof(snap->other));
    snap->now = (apr_int64_t)apr_time_sec(apr_time_now());
    snap->on = slots != NULL;
    snap->capacity = nslots;
    if (!slots || apr_global_mutex_lock(status_mutex) != APR_SUCCESS) {
        snap->rows = apr_array_make(p, 1, sizeof(status_slot_t));
        return;
    }
    /* the rows in one allocation of the right size: with thousands of
     * backends, an array grown by doubling would take twice the room */
    for (i = 0; i < nslots; i++) {
        status_slot_t *sl = slot_at(i);

        used += sl && sl->in_use == SLOT_IN_USE;
    }
    snap->rows = apr_array_make(p, used ? (int)used : 1,
                                sizeof(status_slot_t));
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

/* The CRL files of the configuration (reencrypt_crl_watch_t): what
 * post_config collected, configuration data, not in shared memory. */
const apr_array_header_t *reencrypt_status_crl_list(apr_pool_t *p)
{
    const apr_array_header_t *files = crl_files;

    return files ? files : apr_array_make(p, 1,
                                          sizeof(reencrypt_crl_watch_t));
}
