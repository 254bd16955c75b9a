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
 * reencrypt_conn.c: the state the glue units share, and its one owner:
 * the proxy request a worker thread is handling (set by the scheme
 * handler, reencrypt_proxy.c), the state of each TLS backend connection
 * (in its conn_rec, and on its SSL), what a connection's policy asks of
 * a chain, and the request variables a connection's handshake gives.
 * Every glue unit reads and writes that state through here; none reads
 * another's.
 */

#include "apr_strings.h"

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "http_main.h"

#include <openssl/ssl.h>

#include "reencrypt_conn.h"

APLOG_USE_MODULE(reencrypt);

/* The proxy request this thread is handling. Set by the scheme handler
 * (reencrypt_proxy.c)
 * and cleared twice over:
 *  - by request_status, which proxy_handler (httpd 2.4.x mod_proxy.c)
 *    runs on the same thread on its ordinary way out;
 *  - by a cleanup of the request's pool. proxy_handler does not always
 *    leave that way: on a balancer's failover pass (a member failed
 *    with 503 and the next one is tried) it returns at once, without
 *    request_status, when ap_proxy_pre_request() fails with a status
 *    other than 503 -- the next member's URL refused by the
 *    canon_handler of its scheme (400 for a bad %-escape in its user
 *    part, say), or its Unix socket path refused. Our scheme handler
 *    ran for the earlier pass, so without the cleanup `current` would
 *    go on naming a request that is over (and whose memory is freed).
 * A stale value is not used for another request even so: the hooks
 * that read it (guard_filter, reencrypt_bind_outgoing, pre_handshake in
 * reencrypt_ssl.c) act on a worker thread only inside proxy_handler,
 * after the scheme handler (ordered first, mod_reencrypt.c) has reset
 * it for the request at hand; mod_proxy_hcheck runs its checks on its
 * own threads, whose `current` is never set. Past that, bind_outgoing
 * takes the request only for the dir_conf it was recorded with, and
 * pre_handshake only for the request the connection was bound to. The
 * cleanup makes the first guarantee independent of the path
 * proxy_handler takes. It compares before it clears: when the pool is
 * destroyed on another thread (the event MPM may finish writing a
 * response there), that thread's `current` is left alone unless it
 * names this request. */
static AP_THREAD_LOCAL reencrypt_req_t current;

reencrypt_req_t *reencrypt_current_req(void)
{
    return &current;
}

reencrypt_conn_t *reencrypt_conn_get(conn_rec *c)
{
    return ap_get_module_config(c->conn_config, &reencrypt_module);
}

const reencrypt_policy_t *reencrypt_policy_of(ap_conf_vector_t *dir_conf,
                                              server_rec *s)
{
    if (!dir_conf) {
        dir_conf = s->lookup_defaults;
    }
    return ap_get_module_config(dir_conf, &reencrypt_module);
}

static int ssl_ex_idx = -1;

/* OpenSSL's ex_data indexes last as long as the process, the module's
 * statics as long as one reading of the configuration (httpd loads the
 * module again for each): an index taken anew at each reading would
 * lengthen every SSL object's ex_data at each restart. The index is
 * kept in the process pool, with no pointer into the module (no argp,
 * no callbacks). */
int reencrypt_conn_ex_index(const char *key, int class_index)
{
    void *data = NULL;
    int *idx;

    apr_pool_userdata_get(&data, key, ap_pglobal);
    if (data) {
        return *(int *)data;
    }
    idx = apr_palloc(ap_pglobal, sizeof(*idx));
    *idx = CRYPTO_get_ex_new_index(class_index, 0, NULL, NULL, NULL, NULL);
    if (*idx >= 0) {
        apr_pool_userdata_set(idx, apr_pstrdup(ap_pglobal, key),
                              apr_pool_cleanup_null, ap_pglobal);
    }
    return *idx;
}

int reencrypt_conn_init(apr_pool_t *pconf, apr_pool_t *plog,
                        apr_pool_t *ptemp)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    if (ssl_ex_idx < 0) {
        ssl_ex_idx = reencrypt_conn_ex_index("reencrypt-ex-index-ssl",
                                             CRYPTO_EX_INDEX_SSL);
        if (ssl_ex_idx < 0) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                         RELOGNO(00005) "cannot allocate an OpenSSL ex_data "
                         "index");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

reencrypt_conn_t *reencrypt_conn_of_ssl(SSL *ssl)
{
    return (ssl && ssl_ex_idx >= 0) ? SSL_get_ex_data(ssl, ssl_ex_idx)
                                    : NULL;
}

void reencrypt_conn_attach(SSL *ssl, reencrypt_conn_t *st)
{
    SSL_set_ex_data(ssl, ssl_ex_idx, st);
}

void reencrypt_conn_set_env(const reencrypt_conn_t *st, request_rec *r)
{
    if (!st->result) {
        return;
    }
    apr_table_setn(r->subprocess_env, "REENCRYPT_RESULT", st->result);
    apr_table_setn(r->subprocess_env, "REENCRYPT_SESSION",
                   st->resumed ? "resumed" : "full");
    if (st->revocation) {
        apr_table_setn(r->subprocess_env, "REENCRYPT_REVOCATION",
                       st->revocation);
    }
    if (reencrypt_policy_stapling(&st->policy) != REENCRYPT_STAPLING_OFF) {
        apr_table_setn(r->subprocess_env, "REENCRYPT_STAPLE",
                       reencrypt_staple_token(st->staple));
    }
    if (st->peer_pin) {
        apr_table_setn(r->subprocess_env, "REENCRYPT_PEER_PIN", st->peer_pin);
    }
    if (st->peer_not_after) {
        apr_table_setn(r->subprocess_env, "REENCRYPT_PEER_NOT_AFTER",
                       st->peer_not_after);
    }
}

/* What the policy of this connection asks of a chain at time now: the
 * pure core's reencrypt_check_init(), which apachectl -t -D
 * REENCRYPT_PROBE (reencrypt_dump.c) uses too */
void reencrypt_conn_check(const reencrypt_conn_t *st, apr_time_t now,
                          STACK_OF(X509) *validated, reencrypt_check_t *chk)
{
    reencrypt_check_init(chk, &st->policy, st->names, st->names_from_sni,
                         (time_t)apr_time_sec(now), validated);
}

int reencrypt_conn_chain_passes(const reencrypt_conn_t *st,
                                STACK_OF(X509) *chain, apr_pool_t *p)
{
    reencrypt_check_t chk;
    reencrypt_verdict_t v;

    if (!chain || sk_X509_num(chain) < 1) {
        return 0;
    }
    reencrypt_conn_check(st, apr_time_now(), chain, &chk);
    return reencrypt_verify(p, &chk, sk_X509_value(chain, 0), NULL, &v)
           == REENCRYPT_OK;
}
