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
 * reencrypt_ssl.c: the mod_ssl side. Before a backend handshake it sets
 * the SNI itself and installs a verify callback on the connection's SSL,
 * so that the module decides about the backend's chain inside the
 * handshake: a refused backend sees a TLS alert and never a byte of the
 * request, and mod_ssl's own (quieter, SNI-bound) peer checks never run
 * first.
 *
 * mod_ssl (httpd 2.4.71, modules/ssl/ssl_engine_io.c) sends as SNI and
 * checks as peer name the "proxy-request-hostname" note; the module
 * removes that note once it has set the SNI on the SSL, which keeps
 * mod_ssl from sending its own and from its name check (it cannot
 * match IP SANs nor a name other than the SNI).
 */

#include <time.h>

#include "apr_strings.h"

#include "httpd.h"
#include "http_config.h"
#include "http_connection.h"
#include "http_log.h"
#include "http_protocol.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "mod_reencrypt.h"

APLOG_USE_MODULE(reencrypt);

static int ssl_ex_idx = -1;

int reencrypt_ssl_init(apr_pool_t *pconf, apr_pool_t *plog,
                       apr_pool_t *ptemp)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    if (ssl_ex_idx < 0) {
        ssl_ex_idx = SSL_get_ex_new_index(0, "mod_reencrypt connection",
                                          NULL, NULL, NULL);
        if (ssl_ex_idx < 0) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                         RELOGNO(00005) "cannot allocate an OpenSSL ex_data "
                         "index");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

/* Check the chain the backend presented, log the outcome, remember it.
 * Runs once per handshake. */
static reencrypt_reason_e check_peer(reencrypt_conn_t *st, X509 *leaf,
                                     STACK_OF(X509) *untrusted)
{
    conn_rec *c = st->c;
    reencrypt_check_t chk;
    reencrypt_verdict_t v;
    apr_pool_t *tp;

    apr_pool_create(&tp, c->pool);
    apr_pool_tag(tp, "reencrypt_verify");
    memset(&chk, 0, sizeof(chk));
    chk.anchors = st->policy.anchors;
    chk.depth = reencrypt_policy_depth(&st->policy);
    chk.names = st->names;
    chk.names_from_sni = st->names_from_sni;
    chk.now = time(NULL);

    reencrypt_verify(tp, &chk, leaf, untrusted, &v);
    st->checked = 1;
    st->reason = v.reason;
    if (v.reason != REENCRYPT_OK) {
        const char *token = reencrypt_reason_token(v.reason);

        if (st->r) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, st->r, RELOGNO(00010)
                          "backend %s refused: %s; expected %s; seen %s",
                          st->backend_name, token, v.expected, v.seen);
            apr_table_setn(st->r->notes, "reencrypt-refused", token);
        }
        else {
            ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, c, RELOGNO(00010)
                          "backend %s refused: %s; expected %s; seen %s",
                          st->backend_name, token, v.expected, v.seen);
        }
    }
    else {
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, c, RELOGNO(00014)
                      "backend %s verified: %s, chain of %d, SNI %s",
                      st->backend_name, v.subject, v.chain_len,
                      st->sni ? st->sni : "(none)");
    }
    apr_pool_destroy(tp);
    return st->reason;
}

/* OpenSSL's verify callback for backend connections under a policy.
 * The first call runs the module's own verification (with the policy's
 * anchors, not mod_ssl's store); its verdict answers every call. */
static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(ctx,
                   SSL_get_ex_data_X509_STORE_CTX_idx());
    reencrypt_conn_t *st = ssl ? SSL_get_ex_data(ssl, ssl_ex_idx) : NULL;

    (void)ok;
    if (!st) {
        return 0;                   /* cannot happen; fail closed */
    }
    if (!st->checked) {
        check_peer(st, X509_STORE_CTX_get0_cert(ctx),
                   X509_STORE_CTX_get0_untrusted(ctx));
    }
    if (st->reason != REENCRYPT_OK) {
        X509_STORE_CTX_set_error(ctx,
                                 reencrypt_reason_x509_error(st->reason));
        return 0;
    }
    return 1;
}

int reencrypt_pre_handshake(conn_rec *c, SSL *ssl, int is_proxy)
{
    reencrypt_conn_t *st;
    reencrypt_req_t *cur = reencrypt_current_req();
    const char *note, *backend_host, *sni;
    int with_request;

    if (!is_proxy || !(st = reencrypt_conn_get(c))) {
        return DECLINED;
    }
    st->established = 1;
    st->established_id = reencrypt_policy_id(&st->policy);
    if (!st->established_id) {
        return DECLINED;            /* no policy in this scope */
    }

    note = apr_table_get(c->notes, "proxy-request-hostname");
    with_request = st->r && cur->r == st->r;
    if (with_request && cur->backend_host) {
        backend_host = cur->backend_host;
        st->backend_name = apr_pstrdup(c->pool, cur->backend_name);
        sni = cur->sni;
    }
    else {
        /* no request (e.g. a health check): the name mod_proxy chose,
         * else the backend's address */
        backend_host = note ? note : c->client_ip;
        st->backend_name = apr_psprintf(c->pool, "%s:%u", c->client_ip,
                                        c->client_addr
                                        ? (unsigned)c->client_addr->port
                                        : 0U);
        sni = reencrypt_sni_for(&st->policy, backend_host,
                                with_request ? st->r->hostname : NULL);
    }
    st->sni = sni ? apr_pstrdup(c->pool, sni) : NULL;
    st->names = reencrypt_expected_names(c->pool, &st->policy, st->sni,
                                         backend_host);
    st->names_from_sni = st->sni && !(st->policy.verify_names
                                      && st->policy.verify_names->nelts);

    apr_table_unset(c->notes, "proxy-request-hostname");
    if (st->sni && !SSL_set_tlsext_host_name(ssl, st->sni)) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, c, RELOGNO(00013)
                      "backend %s: cannot set SNI '%s'", st->backend_name,
                      st->sni);
        return HTTP_BAD_GATEWAY;
    }
    SSL_set_ex_data(ssl, ssl_ex_idx, st);
    SSL_set_verify(ssl, SSL_VERIFY_PEER, verify_cb);
    ap_log_cerror(APLOG_MARK, APLOG_TRACE1, 0, c,
                  "backend %s: SNI %s, policy %016" APR_UINT64_T_HEX_FMT,
                  st->backend_name, st->sni ? st->sni : "(none)",
                  st->established_id);
    return OK;
}

int reencrypt_proxy_post_handshake(conn_rec *c, SSL *ssl)
{
    reencrypt_conn_t *st = reencrypt_conn_get(c);

    if (!st || !st->established_id) {
        return DECLINED;
    }
    if (!st->checked) {
        /* The handshake completed without the verify callback (no
         * certificate exchanged): check what the session carries, and
         * refuse if it carries nothing. */
        check_peer(st, SSL_get0_peer_certificate(ssl),
                   SSL_get_peer_cert_chain(ssl));
    }
    return st->reason == REENCRYPT_OK ? OK : HTTP_BAD_GATEWAY;
}
