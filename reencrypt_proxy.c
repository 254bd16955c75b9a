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
 * reencrypt_proxy.c: the mod_proxy side. Knows which request a backend
 * connection serves, binds a policy to every new TLS backend connection,
 * keeps pooled connections from crossing policies and turns a refusal
 * into 502.
 *
 * The life of one proxied request on one thread (httpd 2.4.71,
 * modules/proxy/mod_proxy.c proxy_handler and proxy_util.c):
 *   scheme_handler (ours first, DECLINED)       -> reencrypt_scheme_handler
 *     [TLS balancer member] connect and handshake now, so that a
 *     refusal moves the request to another member (early_handshake)
 *   acquire a pooled connection, check it       -> guard_filter may veto it
 *   ssl_bind_outgoing (new or reused conn)      -> reencrypt_bind_outgoing
 *   [new conn] pre_handshake, verify callback   -> reencrypt_ssl.c
 *   release: ssl_bind_outgoing(section config)  -> reencrypt_bind_outgoing
 *   request_status                              -> reencrypt_request_status
 */

#include <dlfcn.h>

#include "apr_strings.h"
#include "apr_uri.h"

#include "httpd.h"
#include "http_config.h"
#include "http_connection.h"
#include "http_log.h"
#include "http_protocol.h"
#include "util_filter.h"

#include "mod_proxy.h"

#include "mod_reencrypt.h"
#include "reencrypt_proxy.h"
#include "reencrypt_conn.h"
#include "reencrypt_status.h"

APLOG_USE_MODULE(reencrypt);


static ap_filter_rec_t *guard_filter_handle;



static int str_eq(const char *a, const char *b)
{
    return (a == b) || (a && b && !strcasecmp(a, b));
}

/* Does a request that wants (policy_id, sni) fit a connection that was
 * handshaked under st? */
static int conn_fits(const reencrypt_conn_t *st, apr_uint64_t policy_id,
                     const char *sni)
{
    if (!st->established) {
        return 1;
    }
    if (st->established_id != policy_id) {
        return 0;
    }
    return policy_id == 0 || str_eq(st->sni, sni);
}

static apr_status_t current_cleanup(void *data)
{
    reencrypt_req_t *cur = reencrypt_current_req();

    if (cur->r == data) {
        memset(cur, 0, sizeof(*cur));
    }
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Same-request failover between balancer members                      */

/* mod_proxy.so's functions that the early handshake calls, looked up by
 * name once every LoadModule has run, as proxy_hook_scheme_handler is
 * (mod_reencrypt.c): linking them would make the LoadModule order
 * matter. */
static struct {
    int (*acquire)(const char *, proxy_conn_rec **, proxy_worker *,
                   server_rec *);
    int (*release)(const char *, proxy_conn_rec *, server_rec *);
    int (*determine)(apr_pool_t *, request_rec *, proxy_server_conf *,
                     proxy_worker *, proxy_conn_rec *, apr_uri_t *, char **,
                     const char *, apr_port_t, char *, apr_size_t);
    apr_status_t (*check)(const char *, proxy_conn_rec *, server_rec *,
                          unsigned, int);
    int (*connect)(const char *, proxy_conn_rec *, proxy_worker *,
                   server_rec *);
    int (*create)(const char *, proxy_conn_rec *, request_rec *);
} api;
static int api_found;

int reencrypt_proxy_find_api(void)
{
    *(void **)(&api.acquire) = dlsym(RTLD_DEFAULT,
                                     "ap_proxy_acquire_connection");
    *(void **)(&api.release) = dlsym(RTLD_DEFAULT,
                                     "ap_proxy_release_connection");
    *(void **)(&api.determine) = dlsym(RTLD_DEFAULT,
                                       "ap_proxy_determine_connection");
    *(void **)(&api.check) = dlsym(RTLD_DEFAULT,
                                   "ap_proxy_check_connection");
    *(void **)(&api.connect) = dlsym(RTLD_DEFAULT,
                                     "ap_proxy_connect_backend");
    *(void **)(&api.create) = dlsym(RTLD_DEFAULT,
                                    "ap_proxy_connection_create_ex");
    api_found = api.acquire && api.release && api.determine && api.check
                && api.connect && api.create;
    return api_found;
}

/* mod_proxy_balancer's "no member left" answer, 503, stands for a
 * refusal when every member this request tried was refused by the
 * policy (and nothing else went wrong): counted per request. */
#define NOTE_ATTEMPTS  "reencrypt-attempts"
#define NOTE_REFUSED   "reencrypt-members-refused"

static int note_count(request_rec *r, const char *note)
{
    const char *v = apr_table_get(r->notes, note);

    return v ? atoi(v) : 0;
}

static void note_add(request_rec *r, const char *note)
{
    apr_table_setn(r->notes, note,
                   apr_itoa(r->pool, note_count(r, note) + 1));
}

/*
 * A TLS member of a balancer, under a policy: the connection is made and
 * its handshake done here, before mod_proxy_http's send step (where the
 * handshake happens otherwise, at the first write; DESIGN: "Order on a
 * new backend connection"). A member the policy refuses, or whose
 * handshake fails, then answers 503 to proxy_handler (mod_proxy.c),
 * which puts it in error state for its retry= and gives the request to
 * the next usable member, maxattempts allowing: no byte of the request
 * was sent, so moving it is safe whatever its method. A member that
 * passes gives its connection back to the worker's pool, where
 * mod_proxy_http finds it. Not for a member with disablereuse=On: the
 * pool would close that connection and mod_proxy_http open another,
 * two handshakes for every request; such a member is left out after
 * the request it fails, as without a balancer.
 *
 * A plain handshake is driven by a FLUSH through mod_ssl's output
 * filter, which completes the handshake before it writes anything and
 * has nothing to write. h2:// members are left to mod_proxy_http2,
 * which asks for ALPN h2 only once it holds the connection.
 */
static int early_handshake(request_rec *r, proxy_worker *worker,
                           proxy_server_conf *conf, char *url,
                           const char *proxyhost, apr_port_t proxyport)
{
    static const char scheme[] = "HTTPS";
    proxy_conn_rec *backend = NULL;
    apr_uri_t *uri = apr_pcalloc(r->pool, sizeof(*uri));
    char *locurl = url, portstr[32];
    apr_bucket_brigade *bb;
    apr_status_t rv;
    int refused, status;

    if ((status = api.acquire(scheme, &backend, worker, r->server)) != OK) {
        /* put in error state since the balancer chose it, by another
         * request (mod_proxy said so, AH00940): 503, the next member */
        return status;
    }
    backend->is_ssl = 1;
    if (api.determine(r->pool, r, conf, worker, backend, uri, &locurl,
                      proxyhost, proxyport, portstr, sizeof(portstr)) != OK
        || api.check(scheme, backend, r->server, 1, PROXY_CHECK_CONN_EMPTY)
           == APR_SUCCESS) {
        /* the name did not resolve (mod_proxy_http answers it), or a
         * pooled connection is there, handshaked already */
        api.release(scheme, backend, r->server);
        return DECLINED;
    }
    if (api.connect(scheme, backend, worker, r->server) != OK) {
        /* no TCP connection (mod_proxy said why): the 503 with which
         * mod_proxy_http would fail over too */
        backend->close = 1;
        api.release(scheme, backend, r->server);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    if (api.create(scheme, backend, r) != OK) {
        backend->close = 1;
        api.release(scheme, backend, r->server);
        return DECLINED;
    }
    bb = apr_brigade_create(r->pool, backend->connection->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(bb->bucket_alloc));
    rv = ap_pass_brigade(backend->connection->output_filters, bb);
    apr_brigade_cleanup(bb);
    if (rv == APR_SUCCESS && !backend->connection->aborted) {
        api.release(scheme, backend, r->server);
        return DECLINED;
    }
    refused = apr_table_get(r->notes, "reencrypt-refused") != NULL;
    backend->close = 1;
    api.release(scheme, backend, r->server);
    if (refused) {
        note_add(r, NOTE_REFUSED);
    }
    /* the next member, if one is left (the refusal's line said so) */
    apr_table_unset(r->notes, "reencrypt-refused");
    apr_table_unset(r->notes, "reencrypt-failed");
    return HTTP_SERVICE_UNAVAILABLE;
}

int reencrypt_scheme_handler(request_rec *r, proxy_worker *worker,
                             proxy_server_conf *conf, char *url,
                             const char *proxyhost, apr_port_t proxyport)
{
    reencrypt_req_t *cur = reencrypt_current_req();
    apr_uri_t uri;

    memset(cur, 0, sizeof(*cur));
    cur->r = r;
    /* what went wrong says the last attempt (a balancer's failover makes
     * one per member tried) */
    apr_table_unset(r->notes, "reencrypt-refused");
    apr_table_unset(r->notes, "reencrypt-failed");
    /* one cleanup per request, however many failover passes it makes */
    apr_pool_cleanup_kill(r->pool, r, current_cleanup);
    apr_pool_cleanup_register(r->pool, r, current_cleanup,
                              apr_pool_cleanup_null);
    cur->per_dir_config = r->per_dir_config;
    cur->policy = reencrypt_policy_of(r->per_dir_config, r->server);
    cur->policy_id = reencrypt_policy_id(cur->policy);
    if (url && apr_uri_parse(r->pool, url, &uri) == APR_SUCCESS
        && uri.hostname) {
        apr_port_t port = uri.port;

        if (!port) {
            /* wss:// and h2:// name no port: 443, not APR's 0 */
            port = reencrypt_port_of_scheme(uri.scheme);
        }
        if (!port) {
            port = apr_uri_port_of_scheme(uri.scheme);
        }

        cur->backend_host = uri.hostname;
        cur->backend_name = apr_psprintf(r->pool,
                                         strchr(uri.hostname, ':')
                                         ? "[%s]:%u" : "%s:%u",
                                         uri.hostname, (unsigned)port);
    }
    if (cur->policy_id) {
        cur->sni = reencrypt_sni_for(r->pool, cur->policy, cur->backend_host,
                                     r->hostname);
        if (api_found && worker && worker->balancer && url
            && !worker->s->disablereuse && worker->s->is_address_reusable
            && (!strncasecmp(url, "https://", 8)
                || !strncasecmp(url, "wss://", 6))) {
            cur->member_of = worker->balancer->s->name;
            note_add(r, NOTE_ATTEMPTS);
            return early_handshake(r, worker, conf, url, proxyhost,
                                   proxyport);
        }
    }
    return DECLINED;
}

/* An input filter on every TLS backend connection. mod_proxy checks a
 * pooled connection through its input filters before reusing it
 * (ap_proxy_check_connection -> ap_check_pipeline); failing that read
 * makes it close the connection and open a new one. So a request whose
 * policy or SNI differs from the handshake's never rides it.
 * Nothing is read any more from a connection whose backend asked to
 * renegotiate under Enforce (reencrypt_ssl.c): what mod_ssl decrypted
 * in the read that saw the request is dropped, and the failed read
 * makes mod_proxy answer 502 (or drop the response under way) and
 * close the connection. */
static apr_status_t guard_filter(ap_filter_t *f, apr_bucket_brigade *bb,
                                 ap_input_mode_t mode,
                                 apr_read_type_e block,
                                 apr_off_t readbytes)
{
    reencrypt_conn_t *st = f->ctx;
    reencrypt_req_t *cur = reencrypt_current_req();
    apr_status_t rv;

    if (st->reneg_refused) {
        return APR_ECONNABORTED;
    }
    if (cur->r && st->r != cur->r) {
        /* a request about to reuse this pooled connection */
        if (st->established_id && st->staple_next_update
            && reencrypt_policy_stapling(&st->policy)
               == REENCRYPT_STAPLING_REQUIRE
            && apr_time_now() >= st->staple_next_update) {
            /* must-staple: a connection lives no longer than the staple
             * it was verified with (or the session it resumed) */
            ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, f->c, RELOGNO(00091)
                          "backend %s: pooled connection's OCSP staple is "
                          "past its nextUpdate; opening a new one for %s",
                          st->backend_name ? st->backend_name : "?",
                          cur->r->uri);
            return APR_ECONNABORTED;
        }
        if (!conn_fits(st, cur->policy_id, cur->sni)) {
            ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, f->c, RELOGNO(00011)
                          "backend %s: pooled connection was handshaked "
                          "under another policy or SNI; opening a new one "
                          "for %s", st->backend_name ? st->backend_name : "?",
                          cur->r->uri);
            return APR_ECONNABORTED;
        }
    }
    rv = ap_get_brigade(f->next, bb, mode, block, readbytes);
    if (st->reneg_refused) {
        apr_brigade_cleanup(bb);
        return APR_ECONNABORTED;
    }
    return rv;
}

int reencrypt_bind_outgoing(conn_rec *c, ap_conf_vector_t *dir_conf,
                            int enable_ssl)
{
    reencrypt_req_t *cur = reencrypt_current_req();
    reencrypt_conn_t *st;

    if (!enable_ssl) {
        return DECLINED;
    }
    st = reencrypt_conn_get(c);
    if (!st) {
        /* A new backend connection: the policy it is bound to is the one
         * of the scope that opens it, and stays with it for its life. */
        st = apr_pcalloc(c->pool, sizeof(*st));
        st->c = c;
        st->policy = *reencrypt_policy_of(dir_conf, c->base_server);
        ap_set_module_config(c->conn_config, &reencrypt_module, st);
        ap_add_input_filter_handle(guard_filter_handle, st, NULL, c);
    }
    if (cur->r && cur->per_dir_config == dir_conf) {
        /* bound for this request (new, or reused from the pool) */
        st->r = cur->r;
        if (st->established && conn_fits(st, cur->policy_id, cur->sni)) {
            /* a reused connection: its handshake's results hold */
            reencrypt_conn_set_env(st, cur->r);
            reencrypt_status_reuse(st);
        }
        if (!conn_fits(st, cur->policy_id, cur->sni)) {
            /* The guard filter should have kept this connection out of
             * the request; fail closed rather than send anything. */
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, cur->r, RELOGNO(00012)
                          "backend %s refused: policy-changed; expected a "
                          "connection handshaked under this scope's policy; "
                          "seen a pooled connection handshaked under "
                          "another one",
                          st->backend_name ? st->backend_name : "?");
            apr_table_setn(cur->r->notes, "reencrypt-refused",
                           "policy-changed");
            c->aborted = 1;
        }
    }
    else {
        /* released to the pool, or used outside a proxied request */
        st->r = NULL;
    }
    return DECLINED;
}

int reencrypt_request_status(int *status, request_rec *r)
{
    reencrypt_req_t *cur = reencrypt_current_req();
    int attempts = note_count(r, NOTE_ATTEMPTS);

    /* A 503 after a refusal is a bad gateway too: every member this
     * request tried was refused by the policy (the balancer had none
     * left), or the last attempt was (mod_proxy_http2 answers 503 to a
     * backend whose handshake failed, after one more try) */
    if (*status == HTTP_SERVICE_UNAVAILABLE
        && ((attempts > 0 && note_count(r, NOTE_REFUSED) == attempts)
            || apr_table_get(r->notes, "reencrypt-refused"))) {
        *status = HTTP_BAD_GATEWAY;
    }

    /* mod_proxy answers 500 when a backend handshake fails
     * (proxy_util.c ap_proxy_pass_brigade); a backend that fails the
     * policy is a bad gateway. */
    if (*status == HTTP_INTERNAL_SERVER_ERROR) {
        const char *failed = apr_table_get(r->notes, "reencrypt-failed");

        if (apr_table_get(r->notes, "reencrypt-refused")) {
            *status = HTTP_BAD_GATEWAY;
        }
        else if (failed) {
            /* the backend broke the handshake off, or never answered
             * (reencrypt_ssl.c handshake_failed said how) */
            *status = strcmp(failed, "timeout") ? HTTP_BAD_GATEWAY
                                                : HTTP_GATEWAY_TIME_OUT;
        }
        else if (apr_table_get(r->notes, "reencrypt-lenient")) {
            /* The policy let the backend through (Report mode, clock
             * skew) but mod_ssl's own peer checks, which run after it
             * and know neither, refused the handshake. */
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, RELOGNO(00020)
                          "mod_ssl refused a backend that ReencryptMode "
                          "Report or ReencryptClockSkew let through: set "
                          "'SSLProxyCheckPeerExpire Off' in the virtual "
                          "host or <Proxy> section (the policy checks "
                          "validity itself)");
            *status = HTTP_BAD_GATEWAY;
        }
    }
    if (cur->r == r) {
        memset(cur, 0, sizeof(*cur));
    }
    return OK;
}

/* mod_proxy's server configuration (found by name: no link-time
 * dependency on mod_proxy.so, see mod_reencrypt.c) */
static proxy_server_conf *proxy_conf_of(server_rec *s)
{
    module *m = ap_find_linked_module("mod_proxy.c");

    return m ? ap_get_module_config(s->module_config, m) : NULL;
}

const char *reencrypt_proxy_checked_member(server_rec *s, const char *host,
                                           unsigned int port)
{
    proxy_server_conf *conf = proxy_conf_of(s);
    int i, j, nb, nw;

    if (!conf || !conf->balancers || !host) {
        return NULL;
    }
    /* Members can be added at run time (balancer-manager, synced by
     * ap_proxy_sync_balancer in other threads): an array grows by
     * setting its new elts before its nelts, and pool memory is never
     * freed, so the count is read first. */
    nb = conf->balancers->nelts;
    for (i = 0; i < nb; i++) {
        proxy_balancer *b = &APR_ARRAY_IDX(conf->balancers, i,
                                           proxy_balancer);

        nw = b->workers ? b->workers->nelts : 0;
        for (j = 0; j < nw; j++) {
            proxy_worker *w = APR_ARRAY_IDX(b->workers, j, proxy_worker *);
            unsigned int wport;

            if (!w || !w->s || w->s->method == NONE
                || (strcasecmp(w->s->scheme, "https")
                    && strcasecmp(w->s->scheme, "wss"))) {
                continue;
            }
            wport = w->s->port ? w->s->port : 443;
            if (wport == port && !strcasecmp(w->s->hostname_ex, host)) {
                return w->s->hostname_ex;
            }
        }
    }
    return NULL;
}

void reencrypt_proxy_register_filter(void)
{
    /* Above mod_ssl's filter (AP_FTYPE_CONNECTION + 5), so a pooled
     * connection is vetoed before any TLS record is read. */
    guard_filter_handle = ap_register_input_filter("REENCRYPT_GUARD",
                                                   guard_filter, NULL,
                                                   AP_FTYPE_CONNECTION);
}
