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
#include "reencrypt_session_local.h"
#include "reencrypt_session_store.h"
#include "reencrypt_conn.h"
#include "reencrypt_codec.h"

APLOG_USE_MODULE(reencrypt);



/* Set by the startup checks: some scope turns the engine on. */
static int any_policy;

void reencrypt_session_want(int wanted)
{
    any_policy = wanted;
}

int reencrypt_session_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                                 apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    return reencrypt_session_store_pre_config(pconf);
}

int reencrypt_session_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                  apr_pool_t *ptemp, server_rec *s)
{
    (void)plog;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG
        || !any_policy) {
        return OK;
    }
    return reencrypt_session_store_open(pconf, ptemp, s);
}

void reencrypt_session_child_init(apr_pool_t *p, server_rec *s)
{
    if (reencrypt_session_store_on()) {
        reencrypt_session_local_init(p);
        reencrypt_session_store_child_init(p, s);
    }
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
        ctx_ex_idx = reencrypt_conn_ex_index("reencrypt-ex-index-ssl-ctx",
                                             CRYPTO_EX_INDEX_SSL_CTX);
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
    return reencrypt_session_store_on() && st->established_id
           && reencrypt_policy_session_reuse(&st->policy);
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
    if (!reencrypt_session_local_keep(st->session_key, sess, chain, st->validated_at, expiry,
                    now)) {
        return;                 /* this child wrote it a moment ago */
    }
    apr_pool_create(&tp, c->pool);
    blob = reencrypt_codec_encode(tp, sess, chain, st->validated_at, expiry,
                                  &len);
    if (blob && reencrypt_session_store_keys()) {
        apr_size_t slen = 0;

        blob = reencrypt_seal(tp, reencrypt_session_store_keys(),
                              (const unsigned char *)st->session_key,
                              strlen(st->session_key), blob, len, &slen);
        len = (unsigned int)slen;
    }
    if (blob) {
        rv = reencrypt_session_store_call(c->base_server, CALL_STORE, st->session_key, blob,
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
        reencrypt_session_local_forget(st->session_key);
    }
    if (reencrypt_session_store_on() && st->session_key) {
        reencrypt_session_store_call(st->c->base_server, CALL_REMOVE, st->session_key, NULL,
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

/* A session found for a connection: its own copy, the chain freed with
 * c->pool */
typedef reencrypt_session_copy_t found_t;


/* The shared cache's entry, unsealed and decoded, if it is ours to use
 * and not past its time; kept as this child's copy */
static void shared_take(reencrypt_conn_t *st, apr_time_t now,
                        apr_pool_t *tp, found_t *f)
{
    conn_rec *c = st->c;
    unsigned int len = SESSION_ENTRY_MAX;
    unsigned char *blob = apr_palloc(tp, len);
    apr_status_t rv;
    apr_time_t own;
    int stale;

    rv = reencrypt_session_store_call(c->base_server, CALL_RETRIEVE, st->session_key, blob,
                     &len, 0, tp);
    if (rv == APR_SUCCESS && reencrypt_session_store_keys()) {
        /* sealed under one of our keys for this very cache key, or not
         * ours to use: planted, or from a proxy with other keys (left
         * alone; the next full handshake replaces it) */
        apr_size_t plen = 0;

        blob = reencrypt_unseal(tp, reencrypt_session_store_keys(),
                                (const unsigned char *)st->session_key,
                                strlen(st->session_key), blob, len, &plen);
        len = (unsigned int)plen;
        if (!blob) {
            ap_log_cerror(APLOG_MARK, APLOG_TRACE2, 0, c,
                          "backend %s: a cached session that is not sealed "
                          "under ReencryptSessionCacheKey was not used",
                          st->backend_name);
            return;
        }
    }
    if (rv != APR_SUCCESS) {
        return;
    }
    if (!reencrypt_codec_decode(c->pool, blob, len, &f->sess, &f->chain,
                                &f->validated, &f->expiry)) {
        if (reencrypt_session_store_keys() || len < 4 || memcmp(blob, REENCRYPT_SEAL_MAGIC, 4)) {
            /* unreadable: drop it (a sealed one is left to the proxies
             * that have the key) */
            reencrypt_session_forget(st);
        }
        return;
    }
    /* the storing scope's time, and this scope's own if it is shorter:
     * a copy never outlives either */
    own = session_expiry(st, f->sess, f->validated);
    stale = f->expiry <= now;
    if (own < f->expiry) {
        f->expiry = own;
    }
    if (f->expiry > now) {
        reencrypt_session_local_keep(st->session_key, f->sess, f->chain, f->validated,
                   f->expiry, 0);
        return;
    }
    /* past its time: never offered. Past the storing scope's time, the
     * cache should not have it (written back, a clock step): removed.
     * Past this scope's shorter timeout only: left to the scopes it is
     * good for. */
    ap_log_cerror(APLOG_MARK, APLOG_TRACE2, 0, c, "backend %s: a cached "
                  "session past its time%s was not used", st->backend_name,
                  stale ? "" : " for this scope");
    SSL_SESSION_free(f->sess);
    f->sess = NULL;
    f->chain = NULL;                /* freed with c->pool */
    if (stale) {
        reencrypt_session_forget(st);
    }
}


void reencrypt_session_resume(reencrypt_conn_t *st, SSL *ssl)
{
    apr_time_t now = apr_time_now();
    apr_time_t second = apr_time_from_sec(apr_time_sec(now));
    apr_pool_t *tp;
    found_t f;

    if (!session_enabled(st)) {
        return;
    }
    st->session_key = session_key(st->c->pool, st, ssl);
    if (!st->session_key) {
        return;
    }
    apr_pool_create(&tp, st->c->pool);
    if (reencrypt_session_local_get(st->session_key,
                                    reencrypt_policy_session_timeout(
                                        &st->policy), now, second, &f)) {
        apr_pool_cleanup_register(st->c->pool, f.chain, chain_cleanup,
                                  apr_pool_cleanup_null);
    }
    else {
        shared_take(st, now, tp, &f);
    }
    if (f.sess && !f.checked
        && !reencrypt_conn_chain_passes(st, f.chain, tp)) {
        /* Offer no session the policy would refuse now (it expired,
         * entered the refusal window, ...): mod_ssl's own checks of a
         * resumed session run before the module's, so the full handshake
         * is where the refusal gets its clear reason. */
        reencrypt_session_forget(st);
    }
    else if (f.sess && SSL_set_session(ssl, f.sess)) {
        st->resume_chain = f.chain;
        st->resume_validated_at = f.validated;
        st->resume_expiry = f.expiry;
        if (!f.checked) {
            reencrypt_session_local_passed(st->session_key, second);
        }
    }
    ap_log_cerror(APLOG_MARK, APLOG_TRACE3, 0, st->c,
                  "backend %s: session %s (%s)", st->backend_name,
                  st->resume_chain ? "offered" : "not offered",
                  f.sess ? (f.checked ? "local, checked" : "found") : "none");
    SSL_SESSION_free(f.sess);
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
