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
 * reencrypt_session.c: TLS session resumption on backend connections.
 *
 * mod_ssl never resumes a session on a proxy connection (it calls no
 * SSL_set_session), so every new backend connection is a full handshake.
 * Here a session that passed the policy is kept in an httpd socache
 * (shmcb by default, so all children share it; memcache or redis to
 * share it between balancers), under a key made of everything that must
 * match for the session to be usable: backend, SNI and the identity of
 * the effective policy. Next to the session goes the chain it was
 * validated with, so that a resumed handshake -- where OpenSSL verifies
 * nothing -- is checked again for what can change: validity times, pins,
 * the expiry window, names.
 *
 * Rules that keep resumption from widening trust:
 *  - a session is stored only after the handshake passed the policy and
 *    mod_ssl's own checks (proxy_post_handshake); TLS 1.2 hands the
 *    session over before that, so it is held until then;
 *  - a session of a refused handshake, or of one let through by Report
 *    mode, is never stored;
 *  - a resumed handshake that fails the re-check is refused and its
 *    session removed.
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
#include "reencrypt_session.h"
#include "reencrypt_socache.h"
#include "reencrypt_conn.h"
#include "reencrypt_codec.h"

APLOG_USE_MODULE(reencrypt);

#define SESSION_MUTEX_TYPE  "reencrypt-session"
#define SESSION_BLOB_MAX    REENCRYPT_CODEC_MAX

static reencrypt_socache_t sess_store = { SESSION_MUTEX_TYPE, NULL, NULL, NULL };
static const char *sess_spec;
static int sess_networked;          /* memcache, redis, ...: see net_call */
/* ReencryptSessionCacheKey: entries are sealed under these keys */
static const reencrypt_seal_keys_t *sess_keys;

/* Set by the startup checks: some scope turns the engine on. */
static int any_policy;

void reencrypt_session_want(int wanted)
{
    any_policy = wanted;
}

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

int reencrypt_session_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                                 apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    return reencrypt_socache_register(pconf, SESSION_MUTEX_TYPE);
}

static apr_status_t sess_cleanup(void *data)
{
    (void)data;
    sess_keys = NULL;
    return APR_SUCCESS;
}

int reencrypt_session_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                  apr_pool_t *ptemp, server_rec *s)
{
    const reencrypt_srv_conf *sc = ap_get_module_config(s->module_config,
                                                        &reencrypt_module);
    struct ap_socache_hints hints;
    const char *name, *args, *err;
    apr_status_t rv;

    (void)plog;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG
        || !any_policy) {
        return OK;
    }
    sess_spec = sc->session_cache ? sc->session_cache : "shmcb";
    if (!strcasecmp(sess_spec, "none")) {
        return OK;
    }
    name = reencrypt_cache_provider(ptemp, sess_spec, &args);
    memset(&hints, 0, sizeof(hints));
    hints.avg_id_len = 64;
    hints.avg_obj_size = 4096;
    hints.expiry_interval = 60;
    err = reencrypt_socache_open(&sess_store, name, args, "mod_reencrypt-sessions",
                                 &hints, s, pconf, ptemp, &rv);
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

#if APR_HAS_THREADS
static int net_start(server_rec *s);
#endif

void reencrypt_session_child_init(apr_pool_t *p, server_rec *s)
{
    apr_status_t rv;

    if (sess_store.cache) {
        apr_thread_mutex_t *m;

        /* the slots before the mutex: a thread that finds the mutex
         * (one of a child_init hook run before this one) finds slots */
        local_slots = apr_pcalloc(p, LOCAL_SLOTS * sizeof(local_entry_t));
        if (apr_thread_mutex_create(&m, APR_THREAD_MUTEX_DEFAULT, p)
            == APR_SUCCESS) {
            apr_pool_cleanup_register(p, NULL, local_cleanup,
                                      apr_pool_cleanup_null);
            local_mutex = m;
        }
    }
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

enum { CALL_RETRIEVE = 1, CALL_STORE, CALL_REMOVE };

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
        rv = sess_store.provider->retrieve(sess_store.cache, s, id, idlen, data, len, p);
    }
    else if (op == CALL_STORE) {
        rv = sess_store.provider->store(sess_store.cache, s, id, idlen, expiry, data,
                                  *len, p);
    }
    else {
        rv = sess_store.provider->remove(sess_store.cache, s, id, idlen, p);
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
#define NET_DATA_MAX (SESSION_BLOB_MAX + REENCRYPT_SEAL_OVERHEAD)

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
static apr_status_t shared_call(server_rec *s, int op, const char *key,
                                unsigned char *data, unsigned int *len,
                                apr_time_t expiry, apr_pool_t *p)
{
#if APR_HAS_THREADS
    if (net) {
        return net_call(op, key, data, len, expiry);
    }
#endif
    return cache_call(s, op, key, data, len, expiry, p);
}

/* ------------------------------------------------------------------ */
/* The session context: client mode on every proxy SSL_CTX            */

static int new_session_cb(SSL *ssl, SSL_SESSION *sess);

/* The TLS settings of a proxy context that a resumed session must
 * match: mod_ssl gives every virtual host and every <Proxy> section with
 * SSLProxy* directives a context of its own (SSLProxyProtocol,
 * SSLProxyCipherSuite, ... may differ), and the module sets the
 * offered session's id context on the connection (session_context_cb),
 * so nothing in OpenSSL keeps a session within the settings it was made
 * with: the cache key does. SHA-256 of versions, options, security level
 * and ciphers (TLS 1.3 suites included), in hex. */
static int ctx_ex_idx = -1;

static const char *ctx_settings_id(apr_pool_t *p, SSL_CTX *ctx)
{
    STACK_OF(SSL_CIPHER) *ciphers = SSL_CTX_get_ciphers(ctx);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;
    EVP_MD_CTX *d = EVP_MD_CTX_new();
    long v[4];
    uint64_t opts = SSL_CTX_get_options(ctx);
    int n;
    char *hex;

    if (!d || !EVP_DigestInit_ex(d, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(d);
        return NULL;
    }
    v[0] = SSL_CTX_get_min_proto_version(ctx);
    v[1] = SSL_CTX_get_max_proto_version(ctx);
    v[2] = SSL_CTX_get_security_level(ctx);
    v[3] = sk_SSL_CIPHER_num(ciphers);
    EVP_DigestUpdate(d, v, sizeof(v));
    EVP_DigestUpdate(d, &opts, sizeof(opts));
    for (n = 0; n < sk_SSL_CIPHER_num(ciphers); n++) {
        const char *name = SSL_CIPHER_get_name(sk_SSL_CIPHER_value(ciphers,
                                                                   n));
        EVP_DigestUpdate(d, name, strlen(name) + 1);
    }
    if (!EVP_DigestFinal_ex(d, md, &mdlen)) {
        mdlen = 0;
    }
    EVP_MD_CTX_free(d);
    if (!mdlen) {
        return NULL;
    }
    hex = apr_palloc(p, 2 * mdlen + 1);
    for (i = 0; i < mdlen; i++) {
        apr_snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    return hex;
}

int reencrypt_session_init_server(server_rec *s, apr_pool_t *p,
                                  int is_proxy, SSL_CTX *ctx)
{
    (void)s;
    if (!is_proxy || !any_policy) {
        return DECLINED;
    }
    /* computed once here, in the parent, for the connections' keys */
    if (ctx_ex_idx < 0) {
        ctx_ex_idx = SSL_CTX_get_ex_new_index(0, "mod_reencrypt settings",
                                              NULL, NULL, NULL);
    }
    if (ctx_ex_idx >= 0) {
        SSL_CTX_set_ex_data(ctx, ctx_ex_idx,
                            (void *)ctx_settings_id(p, ctx));
    }
    /* mod_ssl gave this proxy context its server-side cache mode and,
     * with SSLSessionCache, its server cache callbacks
     * (ssl_engine_init.c ssl_init_ctx_session_cache); on a client those
     * would send every new backend session to the frontend's cache.
     * Client mode, no internal store, our callback only. Connections
     * without a policy are untouched by it: the callback stores only
     * what a policy checked. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT
                                        | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    SSL_CTX_sess_set_remove_cb(ctx, NULL);
    SSL_CTX_sess_set_get_cb(ctx, NULL);
    return OK;
}

/* ------------------------------------------------------------------ */
/* Keys and blobs                                                      */

/* The key: everything that must match for a session to be usable by a
 * connection, and must never differ between the connection that made it
 * and the one that resumes it:
 *  - backend and SNI;
 *  - the identity of the policy, which includes the client certificates
 *    mod_ssl presents from the connection's scope
 *    (SSLProxyMachineCertificate*: a resumed session carries the client
 *    identity of the handshake that made it, without sending the
 *    certificate again; see reencrypt_policy_client_id);
 *  - the TLS settings of the proxy context that makes the connection
 *    (ctx_settings_id);
 *  - the virtual host whose proxy context it is, named as mod_ssl names
 *    it (server name and port), so that balancers configured alike share
 *    sessions through memcache or redis. */
static const char *session_key(apr_pool_t *p, const reencrypt_conn_t *st,
                               SSL *ssl)
{
    server_rec *s = st->c->base_server;
    SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
    const char *settings = ctx_ex_idx >= 0 ? SSL_CTX_get_ex_data(ctx,
                                                                 ctx_ex_idx)
                                           : NULL;
    const char *id;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *hex, *h;
    unsigned int i;

    if (!settings) {
        /* a context the init_server hook did not see */
        settings = ctx_settings_id(p, ctx);
    }
    if (!settings) {
        return NULL;                    /* no key, no resumption */
    }
    id = apr_psprintf(p, "%s|%s|%016" APR_UINT64_T_HEX_FMT "|%s|%s|%s:%u",
                      st->backend_name ? st->backend_name : "",
                      st->sni ? st->sni : "", st->established_id,
                      reencrypt_policy_client_id(p, &st->policy), settings,
                      s->server_hostname ? s->server_hostname : "",
                      (unsigned)s->port);
    if (!EVP_Digest(id, strlen(id), md, &mdlen, EVP_sha256(), NULL)) {
        return NULL;
    }
    h = hex = apr_palloc(p, 2 * mdlen + 4);
    memcpy(h, "rs:", 3);
    h += 3;
    for (i = 0; i < mdlen; i++) {
        static const char digits[] = "0123456789abcdef";

        *h++ = digits[md[i] >> 4];
        *h++ = digits[md[i] & 0x0f];
    }
    *h = '\0';
    return hex;
}

static apr_status_t chain_cleanup(void *data)
{
    sk_X509_pop_free((STACK_OF(X509) *)data, X509_free);
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Storing, finding, forgetting                                        */

static int session_enabled(const reencrypt_conn_t *st)
{
    return sess_store.cache && st->established_id
           && reencrypt_policy_session_reuse(&st->policy);
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
static int local_keep(const char *key, SSL_SESSION *sess,
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

static void local_forget(const char *key)
{
    local_entry_t *e;

    if (local_mutex && apr_thread_mutex_lock(local_mutex) == APR_SUCCESS) {
        if ((e = local_find(key)) != NULL) {
            local_clear(e);
        }
        apr_thread_mutex_unlock(local_mutex);
    }
}

/* A session lives ReencryptSessionTimeout from the full handshake that
 * validated its chain, however many tickets a resumed connection brings
 * (a backend's new certificate is seen then at the latest), and no
 * longer than the session itself. */
static apr_time_t session_expiry(const reencrypt_conn_t *st,
                                 SSL_SESSION *sess, apr_time_t validated_at)
{
    apr_time_t expiry = validated_at + apr_time_from_sec(
                            reencrypt_policy_session_timeout(&st->policy));
    apr_time_t limit = apr_time_from_sec(
                           (apr_time_t)SSL_SESSION_get_time(sess)
                           + SSL_SESSION_get_timeout(sess));

    return limit < expiry ? limit : expiry;
}

static void session_store(reencrypt_conn_t *st, SSL_SESSION *sess)
{
    conn_rec *c = st->c;
    STACK_OF(X509) *chain = st->verified_chain ? st->verified_chain
                                               : st->resume_chain;
    apr_pool_t *tp;
    unsigned char *blob;
    unsigned int len = 0;
    apr_time_t expiry, now;
    apr_status_t rv = APR_EGENERAL;

    if (!session_enabled(st) || !st->session_key || !chain
        || !SSL_SESSION_is_resumable(sess) || !st->validated_at) {
        return;
    }
    now = apr_time_now();
    expiry = session_expiry(st, sess, st->validated_at);
    if (st->resumed && st->resume_expiry && st->resume_expiry < expiry) {
        /* a ticket on a resumed connection lives no longer than the
         * session it resumed, set by the scope that stored that one */
        expiry = st->resume_expiry;
    }
    if (!st->resumed && reencrypt_policy_stapling(&st->policy)
                        == REENCRYPT_STAPLING_REQUIRE) {
        /* resumable only while the staple it was verified with is
         * current; a staple without nextUpdate makes no session */
        if (!st->staple_next_update) {
            return;
        }
        if (st->staple_next_update < expiry) {
            expiry = st->staple_next_update;
        }
    }
    if (expiry <= now) {
        return;
    }
    if (!local_keep(st->session_key, sess, chain, st->validated_at, expiry,
                    now)) {
        return;                 /* this child wrote it a moment ago */
    }
    apr_pool_create(&tp, c->pool);
    blob = reencrypt_codec_encode(tp, sess, chain, st->validated_at, expiry,
                                  &len);
    if (blob && sess_keys) {
        apr_size_t slen = 0;

        blob = reencrypt_seal(tp, sess_keys,
                              (const unsigned char *)st->session_key,
                              strlen(st->session_key), blob, len, &slen);
        len = (unsigned int)slen;
    }
    if (blob) {
        rv = shared_call(c->base_server, CALL_STORE, st->session_key, blob,
                         &len, expiry, tp);
    }
    ap_log_cerror(APLOG_MARK, APLOG_TRACE2, rv, c,
                  "backend %s: session %s (%u bytes)", st->backend_name,
                  rv == APR_SUCCESS ? "stored" : "not stored", len);
    apr_pool_destroy(tp);
}

void reencrypt_session_forget(reencrypt_conn_t *st)
{
    if (st->session_key) {
        local_forget(st->session_key);
    }
    if (sess_store.cache && st->session_key) {
        shared_call(st->c->base_server, CALL_REMOVE, st->session_key, NULL,
                    NULL, 0, st->c->pool);
    }
}

static apr_status_t pending_cleanup(void *data)
{
    reencrypt_conn_t *st = data;

    if (st->pending_session) {
        SSL_SESSION_free(st->pending_session);
        st->pending_session = NULL;
    }
    return APR_SUCCESS;
}

/* OpenSSL hands over a new session: during the TLS 1.2 handshake (before
 * the policy's verdict is final), or with a TLS 1.3 ticket afterwards. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    reencrypt_conn_t *st = reencrypt_conn_of_ssl(ssl);

    if (!st || !session_enabled(st)) {
        return 0;
    }
    if (st->handshake_ok) {
        session_store(st, sess);
    }
    else if (SSL_SESSION_up_ref(sess)) {
        if (!st->pending_session) {
            apr_pool_cleanup_register(st->c->pool, st, pending_cleanup,
                                      apr_pool_cleanup_null);
        }
        else {
            SSL_SESSION_free(st->pending_session);
        }
        st->pending_session = sess;
    }
    return 0;   /* we keep no reference beyond the one taken above */
}

/* mod_ssl sets the connection's session id context after the
 * pre_handshake hook (mod_ssl.c ssl_init_ssl_connection), so after the
 * session was offered; OpenSSL refuses a resumption whose session has
 * another context ("attempt to reuse session in different context"),
 * which the client would see as a 500. The key already keeps sessions
 * within their virtual host; when the ClientHello goes out, give the
 * connection the offered session's context, so that a corner case of
 * naming (a server without a port, say) costs nothing worse than what
 * the key allows. */
void reencrypt_session_client_hello(reencrypt_conn_t *st, SSL *ssl)
{
    SSL_SESSION *sess;
    const unsigned char *ctx;
    unsigned int ctxlen = 0;

    if (!st->resume_chain) {
        return;                     /* no session of ours offered */
    }
    if ((sess = SSL_get_session(ssl)) != NULL) {
        ctx = SSL_SESSION_get0_id_context(sess, &ctxlen);
        SSL_set_session_id_context(ssl, ctx, ctxlen);
    }
}

void reencrypt_session_resume(reencrypt_conn_t *st, SSL *ssl)
{
    conn_rec *c = st->c;
    unsigned char *blob;
    unsigned int len = SESSION_BLOB_MAX + REENCRYPT_SEAL_OVERHEAD;
    SSL_SESSION *sess = NULL, *shared = NULL;
    STACK_OF(X509) *chain = NULL;
    apr_time_t validated = 0, expiry = 0, now = apr_time_now();
    apr_time_t second = apr_time_from_sec(apr_time_sec(now));
    apr_pool_t *tp;
    apr_status_t rv;
    int checked = 0;

    if (!session_enabled(st)) {
        return;
    }
    st->session_key = session_key(c->pool, st, ssl);
    if (!st->session_key) {
        return;
    }
    apr_pool_create(&tp, c->pool);

    /* this child's decoded copy first: references under the mutex, the
     * connection's own copy of the session made after it */
    if (local_mutex && apr_thread_mutex_lock(local_mutex) == APR_SUCCESS) {
        local_entry_t *e = local_find(st->session_key);
        /* this scope's own timeout too, if it is the shorter */
        apr_time_t own = e ? e->validated_at + apr_time_from_sec(
                                 reencrypt_policy_session_timeout(&st->policy))
                           : 0;

        if (e && e->expiry > now && own > now
            && SSL_SESSION_up_ref(e->sess)) {
            shared = e->sess;
            chain = X509_chain_up_ref(e->chain);
            validated = e->validated_at;
            expiry = own < e->expiry ? own : e->expiry;
            checked = (e->passed_at == second);
        }
        else if (e && e->expiry > now) {
            /* too old for this scope only: left for the others */
        }
        else if (e) {
            local_clear(e);
        }
        apr_thread_mutex_unlock(local_mutex);
        if (shared) {
            sess = chain ? SSL_SESSION_dup(shared) : NULL;
            SSL_SESSION_free(shared);
        }
        if (chain) {
            apr_pool_cleanup_register(c->pool, chain, chain_cleanup,
                                      apr_pool_cleanup_null);
        }
        if (!sess) {
            chain = NULL;           /* freed with c->pool */
        }
    }
    if (!sess) {
        blob = apr_palloc(tp, len);
        rv = shared_call(c->base_server, CALL_RETRIEVE, st->session_key,
                         blob, &len, 0, tp);
        if (rv == APR_SUCCESS && sess_keys) {
            /* sealed under one of our keys for this very cache key, or
             * not ours to use: planted, or from a proxy with other keys
             * (left alone; the next full handshake replaces it) */
            apr_size_t plen = 0;

            blob = reencrypt_unseal(tp, sess_keys,
                                    (const unsigned char *)st->session_key,
                                    strlen(st->session_key), blob, len,
                                    &plen);
            len = (unsigned int)plen;
            if (!blob) {
                ap_log_cerror(APLOG_MARK, APLOG_TRACE2, 0, c,
                              "backend %s: a cached session that is not "
                              "sealed under ReencryptSessionCacheKey was "
                              "not used", st->backend_name);
                rv = APR_NOTFOUND;
            }
        }
        if (rv == APR_SUCCESS
            && reencrypt_codec_decode(c->pool, blob, len, &sess, &chain,
                                      &validated, &expiry)) {
            /* the storing scope's time, and this scope's own if it is
             * shorter: a copy never outlives either */
            apr_time_t own = session_expiry(st, sess, validated);

            int stale = expiry <= now;

            if (own < expiry) {
                expiry = own;
            }
            if (expiry <= now) {
                /* past its time: never offered. Past the storing scope's
                 * time, the cache should not have it (written back, a
                 * clock step): removed. Past this scope's shorter
                 * timeout only: left to the scopes it is good for. */
                ap_log_cerror(APLOG_MARK, APLOG_TRACE2, 0, c,
                              "backend %s: a cached session past its "
                              "time%s was not used", st->backend_name,
                              stale ? "" : " for this scope");
                SSL_SESSION_free(sess);
                sess = NULL;
                chain = NULL;           /* freed with c->pool */
                if (stale) {
                    reencrypt_session_forget(st);
                }
            }
            else {
                local_keep(st->session_key, sess, chain, validated, expiry,
                           0);
            }
        }
        else if (rv == APR_SUCCESS && (sess_keys || len < 4
                                       || memcmp(blob, REENCRYPT_SEAL_MAGIC,
                                                 4))) {
            /* unreadable: drop it (a sealed one is left to the proxies
             * that have the key) */
            reencrypt_session_forget(st);
        }
    }
    if (sess && !checked && !reencrypt_conn_chain_passes(st, chain, tp)) {
        /* Offer no session the policy would refuse now (it expired,
         * entered the refusal window, ...): mod_ssl's own checks of a
         * resumed session run before the module's, so the full handshake
         * is where the refusal gets its clear reason. */
        reencrypt_session_forget(st);
    }
    else if (sess && SSL_set_session(ssl, sess)) {
        st->resume_chain = chain;
        st->resume_validated_at = validated;
        st->resume_expiry = expiry;
        if (!checked && local_mutex
            && apr_thread_mutex_lock(local_mutex) == APR_SUCCESS) {
            local_entry_t *e = local_find(st->session_key);

            if (e) {
                e->passed_at = second;  /* passed: no pre-check again
                                         * within this second */
            }
            apr_thread_mutex_unlock(local_mutex);
        }
    }
    ap_log_cerror(APLOG_MARK, APLOG_TRACE3, 0, c,
                  "backend %s: session %s (%s)", st->backend_name,
                  st->resume_chain ? "offered" : "not offered",
                  sess ? (checked ? "local, checked" : "found") : "none");
    SSL_SESSION_free(sess);
    apr_pool_destroy(tp);
}

void reencrypt_session_handshake_ok(reencrypt_conn_t *st)
{
    st->handshake_ok = 1;
    st->validated_at = st->resumed ? st->resume_validated_at
                                   : apr_time_now();
    if (st->pending_session) {
        session_store(st, st->pending_session);
        SSL_SESSION_free(st->pending_session);
        st->pending_session = NULL;
    }
}
