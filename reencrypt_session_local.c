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
 * reencrypt_session_local.c: each child keeps the backend sessions it
 * uses decoded (a fixed table of slots under a thread mutex), so that a
 * resumption costs no decoding and no trip to the shared store; a child
 * writes a key to the store at most once a second.
 */

#include <string.h>

#include "apr_strings.h"
#include "apr_thread_mutex.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "reencrypt_session_local.h"

/* Each child keeps the sessions it uses decoded, so that a resumption
 * costs no decoding (OpenSSL 3.0's decoders take global locks and are
 * slower than the handshake they save) and no trip to the shared cache.
 * The shared cache stays the source between children and servers; a
 * child writes a key to it at most once a second. */
#define LOCAL_SLOTS 256

typedef struct {
    char key[72];                 /* session_key(): "rs:" + 64 hex */
    SSL_SESSION *sess;
    STACK_OF(X509) *chain;
    apr_time_t validated_at;
    apr_time_t expiry;
    apr_time_t shared_at;         /* last written to the shared cache */
    apr_time_t passed_at;         /* second of the last passed pre-check */
} local_entry_t;

static local_entry_t *local_slots;
static apr_thread_mutex_t *local_mutex;

static void local_clear(local_entry_t *e)
{
    SSL_SESSION_free(e->sess);
    sk_X509_pop_free(e->chain, X509_free);
    memset(e, 0, sizeof(*e));
}

static apr_status_t local_cleanup(void *data)
{
    int i;

    (void)data;
    for (i = 0; local_slots && i < LOCAL_SLOTS; i++) {
        local_clear(&local_slots[i]);
    }
    local_slots = NULL;
    local_mutex = NULL;
    return APR_SUCCESS;
}

void reencrypt_session_local_init(apr_pool_t *p)
{
    apr_thread_mutex_t *m;

    /* the slots before the mutex: a thread that finds the mutex (one of
     * a child_init hook run before this one) finds slots */
    local_slots = apr_pcalloc(p, LOCAL_SLOTS * sizeof(local_entry_t));
    if (apr_thread_mutex_create(&m, APR_THREAD_MUTEX_DEFAULT, p)
        == APR_SUCCESS) {
        apr_pool_cleanup_register(p, NULL, local_cleanup,
                                  apr_pool_cleanup_null);
        local_mutex = m;
    }
}

/* The local entry of key, or NULL; with the local mutex held. */
static local_entry_t *local_find(const char *key)
{
    int i;

    for (i = 0; i < LOCAL_SLOTS; i++) {
        if (local_slots[i].sess && !strcmp(local_slots[i].key, key)) {
            return &local_slots[i];
        }
    }
    return NULL;
}

/* A private copy of sess and a reference to chain, made before the
 * local mutex is taken: the connection that brought sess goes on using
 * it, and OpenSSL updates a session in place when a later ticket arrives
 * on its connection; other threads only ever copy ours. */
typedef struct {
    SSL_SESSION *sess;
    STACK_OF(X509) *chain;
} local_copy_t;

static int local_copy_make(local_copy_t *cp, SSL_SESSION *sess,
                           STACK_OF(X509) *chain)
{
    cp->sess = SSL_SESSION_dup(sess);
    cp->chain = cp->sess ? X509_chain_up_ref(chain) : NULL;
    if (!cp->chain) {
        SSL_SESSION_free(cp->sess);
        cp->sess = NULL;
        return 0;
    }
    return 1;
}

static void local_copy_free(local_copy_t *cp)
{
    SSL_SESSION_free(cp->sess);
    sk_X509_pop_free(cp->chain, X509_free);
    cp->sess = NULL;
    cp->chain = NULL;
}

/* Keep cp under key, taking it over; what it replaces is handed back in
 * cp, to be freed once the mutex is released. Returns the entry; with
 * the local mutex held. */
static local_entry_t *local_put(const char *key, local_copy_t *cp,
                                apr_time_t validated_at, apr_time_t expiry)
{
    local_entry_t *e = local_find(key), *oldest = NULL;
    apr_time_t shared_at = 0, passed_at = 0;
    SSL_SESSION *old_sess;
    STACK_OF(X509) *old_chain;
    int i;

    if (!e) {
        for (i = 0; i < LOCAL_SLOTS; i++) {
            if (!local_slots[i].sess) {
                e = &local_slots[i];
                break;
            }
            if (!oldest || local_slots[i].expiry < oldest->expiry) {
                oldest = &local_slots[i];
            }
        }
        if (!e) {
            e = oldest;
        }
    }
    else {
        shared_at = e->shared_at;
        if (e->validated_at == validated_at) {
            /* a new ticket of the same chain: its pre-check holds */
            passed_at = e->passed_at;
        }
    }
    old_sess = e->sess;
    old_chain = e->chain;
    memset(e, 0, sizeof(*e));
    apr_cpystrn(e->key, key, sizeof(e->key));
    e->sess = cp->sess;
    e->chain = cp->chain;
    e->validated_at = validated_at;
    e->expiry = expiry;
    e->shared_at = shared_at;
    e->passed_at = passed_at;
    cp->sess = old_sess;
    cp->chain = old_chain;
    return e;
}

/* Keep a private copy of sess and chain under key: copied before the
 * local mutex is taken, what it replaces freed after. With written_at
 * set (a session this child may also write to the shared cache), say
 * whether to write it: not if this child wrote the key within the last
 * second; the entry then records written_at. */
int reencrypt_session_local_keep(const char *key, SSL_SESSION *sess,
                                 STACK_OF(X509) *chain, apr_time_t validated_at,
                                 apr_time_t expiry, apr_time_t written_at)
{
    local_copy_t cp;
    int share = 1;

    if (!local_mutex || !local_copy_make(&cp, sess, chain)) {
        return share;
    }
    if (apr_thread_mutex_lock(local_mutex) == APR_SUCCESS) {
        local_entry_t *e = local_put(key, &cp, validated_at, expiry);

        if (written_at) {
            if (e->shared_at
                && written_at - e->shared_at < apr_time_from_sec(1)) {
                share = 0;
            }
            else {
                e->shared_at = written_at;
            }
        }
        apr_thread_mutex_unlock(local_mutex);
    }
    local_copy_free(&cp);       /* what was replaced, or cp if unlocked */
    return share;
}

void reencrypt_session_local_forget(const char *key)
{
    local_entry_t *e;

    if (local_mutex && apr_thread_mutex_lock(local_mutex) == APR_SUCCESS) {
        if ((e = local_find(key)) != NULL) {
            local_clear(e);
        }
        apr_thread_mutex_unlock(local_mutex);
    }
}

int reencrypt_session_local_get(const char *key, apr_int64_t timeout,
                                apr_time_t now, apr_time_t second,
                                reencrypt_session_copy_t *out)
{
    SSL_SESSION *shared = NULL;
    local_entry_t *e;
    apr_time_t own;

    memset(out, 0, sizeof(*out));
    if (!local_mutex || apr_thread_mutex_lock(local_mutex) != APR_SUCCESS) {
        return 0;
    }
    e = local_find(key);
    own = e ? e->validated_at + apr_time_from_sec(timeout) : 0;
    if (e && e->expiry > now && own > now && SSL_SESSION_up_ref(e->sess)) {
        shared = e->sess;
        out->chain = X509_chain_up_ref(e->chain);
        out->validated = e->validated_at;
        out->expiry = own < e->expiry ? own : e->expiry;
        out->checked = (e->passed_at == second);
    }
    else if (e && e->expiry <= now) {
        local_clear(e);
    }
    /* (too old for this scope only: left for the others) */
    apr_thread_mutex_unlock(local_mutex);
    if (shared) {
        out->sess = out->chain ? SSL_SESSION_dup(shared) : NULL;
        SSL_SESSION_free(shared);
    }
    if (!out->sess) {
        sk_X509_pop_free(out->chain, X509_free);
        out->chain = NULL;
    }
    return out->sess != NULL;
}

/* The pre-check of key passed at second: not made again within it */
void reencrypt_session_local_passed(const char *key, apr_time_t second)
{
    local_entry_t *e;

    if (!local_mutex || apr_thread_mutex_lock(local_mutex) != APR_SUCCESS) {
        return;
    }
    if ((e = local_find(key)) != NULL) {
        e->passed_at = second;
    }
    apr_thread_mutex_unlock(local_mutex);
}
