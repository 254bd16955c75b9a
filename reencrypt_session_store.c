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
 * reencrypt_session_store.c: the shared store of backend TLS sessions,
 * an httpd socache (shmcb by default; memcache or redis to share it
 * between proxies) set up by reencrypt_socache.c, and the calls to it:
 * directly under the cache's mutex, or, for a network cache, through a
 * thread of each child so that no request waits on it unbounded.
 * What is stored (the sealed entry) is reencrypt_session.c's business.
 */

#include "apr_strings.h"
#include "apr_global_mutex.h"
#include "apr_thread_mutex.h"
#include "apr_thread_cond.h"
#include "apr_thread_proc.h"

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "ap_provider.h"
#include "ap_socache.h"
#include "util_mutex.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "mod_reencrypt.h"
#include "reencrypt_session_store.h"
#include "reencrypt_socache.h"
#include "reencrypt_conn.h"
#include "reencrypt_codec.h"

APLOG_USE_MODULE(reencrypt);

#define SESSION_MUTEX_TYPE  "reencrypt-session"

static reencrypt_socache_t sess_store = {
    SESSION_MUTEX_TYPE, NULL, NULL, NULL
};
static const char *sess_spec;
static int sess_networked;          /* memcache, redis, ...: see net_call */
/* ReencryptSessionCacheKey: entries are sealed under these keys */
static const reencrypt_seal_keys_t *sess_keys;

#if APR_HAS_THREADS
static int net_start(server_rec *s);
#endif

int reencrypt_session_store_pre_config(apr_pool_t *pconf)
{
    return reencrypt_socache_register(pconf, SESSION_MUTEX_TYPE);
}

static apr_status_t sess_cleanup(void *data)
{
    (void)data;
    sess_keys = NULL;
    return APR_SUCCESS;
}

int reencrypt_session_store_open(apr_pool_t *pconf, apr_pool_t *ptemp,
                                 server_rec *s)
{
    const reencrypt_srv_conf *sc = ap_get_module_config(s->module_config,
                                                        &reencrypt_module);
    struct ap_socache_hints hints;
    const char *name, *args, *err;
    apr_status_t rv;

    sess_spec = sc->session_cache ? sc->session_cache : "shmcb";
    if (!strcasecmp(sess_spec, "none")) {
        return OK;
    }
    name = reencrypt_cache_provider(ptemp, sess_spec, &args);
    memset(&hints, 0, sizeof(hints));
    hints.avg_id_len = 64;
    hints.avg_obj_size = 4096;
    hints.expiry_interval = 60;
    err = reencrypt_socache_open(&sess_store, name, args,
                                 "mod_reencrypt-sessions", &hints, s, pconf,
                                 ptemp, &rv);
    if (err && rv == APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, RELOGNO(00022)
                     "ReencryptSessionCache %s: %s", sess_spec, err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (err) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, RELOGNO(00023)
                     "ReencryptSessionCache %s: %s", sess_spec, err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(pconf, s, sess_cleanup, apr_pool_cleanup_null);
    sess_keys = sc->session_keys;
    sess_networked = reencrypt_cache_is_networked(ptemp, sess_spec);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, RELOGNO(00024)
                 "backend TLS sessions are kept in '%s'%s", sess_spec,
                 sess_keys ? ", sealed (ReencryptSessionCacheKey)" : "");
    return OK;
}

/* The cache calls, under the global mutex where the provider needs it.
 * Without the lock, the cache is not used (never used unlocked). */
static int sess_lock(void)
{
    return reencrypt_socache_lock(&sess_store);
}

static void sess_unlock(void)
{
    reencrypt_socache_unlock(&sess_store);
}

/* One call to the provider, under the global mutex where it needs it */
static apr_status_t cache_call(server_rec *s, int op, const char *key,
                               unsigned char *data, unsigned int *len,
                               apr_time_t expiry, apr_pool_t *p)
{
    const unsigned char *id = (const unsigned char *)key;
    unsigned int idlen = (unsigned int)strlen(key);
    apr_status_t rv;

    if (!sess_lock()) {
        return APR_EGENERAL;
    }
    if (op == CALL_RETRIEVE) {
        rv = sess_store.provider->retrieve(sess_store.cache, s, id, idlen,
                                           data, len, p);
    }
    else if (op == CALL_STORE) {
        rv = sess_store.provider->store(sess_store.cache, s, id, idlen,
                                        expiry, data, *len, p);
    }
    else {
        rv = sess_store.provider->remove(sess_store.cache, s, id, idlen,
                                         p);
    }
    sess_unlock();
    return rv;
}

/* ------------------------------------------------------------------ */
/* Calls to a network cache, bounded in time                          */

/*
 * httpd's memcache and redis providers wait for their server without
 * limit once connected (httpd 2.4.71 with apr-util 1.6.3: apr_memcache
 * reads with no timeout, and mod_socache_redis hands RedisTimeout to
 * apr_redis in microseconds where apr_redis takes seconds). A cache
 * server that accepts connections and never answers would hold every
 * request that looks a session up, for good; one that is down has the
 * provider log an error for every call.
 *
 * So the calls to a network cache (every provider but shmcb and dbm:
 * reencrypt_cache_is_networked) are made by one thread of each child
 * process, one call at a time, and a request waits for an answer at
 * most NET_WAIT in all. A call that fails, or that is not answered in
 * that time, makes the child leave the shared cache alone for
 * NET_RETRY: backend handshakes then resume the sessions the child
 * holds itself (local_slots) and are full otherwise, and RE00061 says
 * so, at most once per NET_RETRY in each child. After NET_RETRY the
 * next call tries again; while the thread is still held by a call that
 * was never answered, the cache stays left alone.
 *
 * The thread and its state live in a pool of their own that nothing
 * destroys: the child may exit while a call holds the thread (and a
 * condition variable destroyed while the thread waits on it would hold
 * the exit).
 */
#define NET_WAIT     apr_time_from_sec(1)
#define NET_RETRY    apr_time_from_sec(30)
#define NET_DATA_MAX SESSION_ENTRY_MAX

#if APR_HAS_THREADS
typedef struct {
    apr_thread_mutex_t *mutex;
    apr_thread_cond_t *cond;     /* a call handed over, or answered */
    server_rec *s;
    apr_pool_t *pool;            /* the thread's, for the provider */
    apr_uint64_t handed;         /* calls handed over */
    apr_uint64_t answered;       /* calls answered */
    apr_time_t since;            /* when the last one was handed over */
    /* the call: the thread's until it is answered */
    int op;
    char key[80];
    unsigned char *data;         /* NET_DATA_MAX bytes, in and out */
    unsigned int len;
    apr_time_t expiry;
    apr_status_t rv;
    apr_time_t down_until;       /* the cache is left alone until then */
    apr_time_t warned_at;        /* last RE00061 */
} net_t;

static net_t *net;                  /* this child's, for a network cache */

static void *APR_THREAD_FUNC net_thread(apr_thread_t *thd, void *data)
{
    net_t *n = data;
    apr_status_t rv;
    unsigned int len;

    (void)thd;
    apr_thread_mutex_lock(n->mutex);
    for (;;) {
        while (n->answered == n->handed) {
            apr_thread_cond_wait(n->cond, n->mutex);
        }
        len = n->op == CALL_RETRIEVE ? NET_DATA_MAX : n->len;
        apr_thread_mutex_unlock(n->mutex);
        rv = cache_call(n->s, n->op, n->key, n->data, &len, n->expiry,
                        n->pool);
        apr_pool_clear(n->pool);
        apr_thread_mutex_lock(n->mutex);
        n->rv = rv;
        n->len = len;
        n->answered = n->handed;
        apr_thread_cond_broadcast(n->cond);
    }
    return NULL;
}

/* Is rv the answer of a cache that does not work? A miss, an entry too
 * large and an expiry in the past are answers of one that works; but
 * apr_memcache and apr_redis answer a store with NOTFOUND when they have
 * no server left to send it to. */
static int net_failed(int op, apr_status_t rv)
{
    if (rv == APR_SUCCESS || rv == APR_EINVAL || rv == APR_ENOMEM) {
        return 0;
    }
    return rv != APR_NOTFOUND || op == CALL_STORE;
}

/* Leave the cache alone for NET_RETRY; with the mutex held */
static void net_down(net_t *n, apr_time_t now, apr_status_t rv)
{
    int timeup = APR_STATUS_IS_TIMEUP(rv);
    char what[48];

    n->down_until = now + NET_RETRY;
    if (n->warned_at && now - n->warned_at < NET_RETRY) {
        return;
    }
    n->warned_at = now;
    if (timeup) {
        apr_snprintf(what, sizeof(what), "no answer within %ds",
                     (int)apr_time_sec(NET_WAIT));
    }
    else {
        apr_cpystrn(what, "a call failed", sizeof(what));
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, timeup ? 0 : rv, n->s,
                 RELOGNO(00061) "ReencryptSessionCache %s: %s; the shared "
                 "session cache is left alone for %ds: backend handshakes "
                 "resume the sessions this process holds, the others are "
                 "full", sess_spec, what, (int)apr_time_sec(NET_RETRY));
}

/* A call through the thread. APR_EAGAIN: not made (the cache is left
 * alone, or busy for longer than this request can wait); APR_TIMEUP:
 * not answered in time. */
static apr_status_t net_call(int op, const char *key, unsigned char *data,
                             unsigned int *len, apr_time_t expiry)
{
    net_t *n = net;
    apr_time_t now = apr_time_now(), deadline = now + NET_WAIT;
    apr_uint64_t mine;
    apr_status_t rv;

    if (strlen(key) >= sizeof(n->key)
        || (op == CALL_STORE && *len > NET_DATA_MAX)) {
        return APR_EINVAL;
    }
    if (apr_thread_mutex_lock(n->mutex) != APR_SUCCESS) {
        return APR_EGENERAL;
    }
    /* one call at a time: wait for the one in progress, unless it has
     * gone unanswered for NET_WAIT already (the cache hangs) */
    while (now >= n->down_until && n->answered != n->handed) {
        if (now - n->since >= NET_WAIT) {
            net_down(n, now, APR_TIMEUP);
        }
        else if (now >= deadline) {
            break;
        }
        else {
            apr_thread_cond_timedwait(n->cond, n->mutex, deadline - now);
        }
        now = apr_time_now();
    }
    if (now < n->down_until || n->answered != n->handed) {
        apr_thread_mutex_unlock(n->mutex);
        return APR_EAGAIN;
    }
    n->op = op;
    apr_cpystrn(n->key, key, sizeof(n->key));
    n->expiry = expiry;
    if (op == CALL_STORE) {
        memcpy(n->data, data, *len);
        n->len = *len;
    }
    n->since = now;
    mine = ++n->handed;
    apr_thread_cond_broadcast(n->cond);
    while (n->answered != mine && (now = apr_time_now()) < deadline) {
        apr_thread_cond_timedwait(n->cond, n->mutex, deadline - now);
    }
    if (n->answered == mine) {
        rv = n->rv;
        if (op == CALL_RETRIEVE && rv == APR_SUCCESS) {
            if (n->len > *len) {
                rv = APR_ENOMEM;
            }
            else {
                memcpy(data, n->data, n->len);
                *len = n->len;
            }
        }
        if (net_failed(op, rv)) {
            net_down(n, apr_time_now(), rv);
        }
    }
    else {
        rv = APR_TIMEUP;
        net_down(n, now, rv);
    }
    apr_thread_mutex_unlock(n->mutex);
    return rv;
}

/* This child's thread for the network cache; 0 if it cannot run */
static int net_start(server_rec *s)
{
    apr_pool_t *p = NULL;
    apr_threadattr_t *attr;
    apr_thread_t *thd;
    net_t *n = NULL;
    apr_status_t rv;

    /* a pool that nothing destroys (see above) */
    rv = apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    if (rv == APR_SUCCESS) {
        n = apr_pcalloc(p, sizeof(*n));
        n->s = s;
        n->data = apr_palloc(p, NET_DATA_MAX);
        rv = apr_pool_create(&n->pool, p);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_mutex_create(&n->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_cond_create(&n->cond, p);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_threadattr_create(&attr, p);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_threadattr_detach_set(attr, 1);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_create(&thd, attr, net_thread, n, p);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, RELOGNO(00062)
                     "ReencryptSessionCache %s: cannot start the thread "
                     "that calls it: backend sessions are not resumed in "
                     "this process", sess_spec);
        return 0;
    }
    net = n;
    return 1;
}
#endif /* APR_HAS_THREADS */

/* A call to the shared cache: through this child's thread for a
 * network cache, else directly */
apr_status_t reencrypt_session_store_call(server_rec *s, int op,
                                          const char *key,
                                          unsigned char *data,
                                          unsigned int *len,
                                          apr_time_t expiry, apr_pool_t *p)
{
#if APR_HAS_THREADS
    if (net) {
        return net_call(op, key, data, len, expiry);
    }
#endif
    return cache_call(s, op, key, data, len, expiry, p);
}

int reencrypt_session_store_child_init(apr_pool_t *p, server_rec *s)
{
    apr_status_t rv;

#if APR_HAS_THREADS
    if (sess_store.cache && sess_networked && !net_start(s)) {
        sess_store.cache = NULL;
    }
#endif
    rv = reencrypt_socache_child_init(&sess_store, p);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, RELOGNO(00025)
                     "cannot attach to the session cache mutex: backend "
                     "sessions are not resumed in this process");
        sess_store.cache = NULL;
    }
    return sess_store.cache != NULL;
}

int reencrypt_session_store_on(void)
{
    return sess_store.cache != NULL;
}

const reencrypt_seal_keys_t *reencrypt_session_store_keys(void)
{
    return sess_keys;
}
