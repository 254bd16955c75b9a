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
 *
 * The verdict is taken once per connection, so the connection must not
 * get another handshake: a backend that asks to renegotiate (TLS 1.2)
 * is refused (see msg_cb).
 */

#include <time.h>

#include "apr_strings.h"

#include "httpd.h"
#include "http_config.h"
#include "http_connection.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "util_filter.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mod_reencrypt.h"
#include "reencrypt_ssl.h"
#include "reencrypt_conn.h"
#include "reencrypt_notes.h"
#include "reencrypt_proxy.h"
#include "reencrypt_session.h"
#include "reencrypt_status.h"

APLOG_USE_MODULE(reencrypt);




/* A certificate inside the warning window is said once a day by the
 * whole server (all children), not once per handshake. */
static void warn_expiring(reencrypt_conn_t *st, X509 *leaf,
                          const reencrypt_verdict_t *v, apr_time_t now,
                          apr_pool_t *tp)
{
    conn_rec *lc = st->r ? st->r->connection : st->c;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    apr_int64_t left = (apr_int64_t)v->not_after
                       - (apr_int64_t)apr_time_sec(now);
    const char *key;

    if (!X509_digest(leaf, EVP_sha256(), md, &mdlen)) {
        return;
    }
    key = apr_pstrcat(tp, "warn:", reencrypt_base64_encode(tp, md, mdlen),
                      NULL);
    if (!reencrypt_notes_first(st->c->base_server, key,
                               apr_time_from_sec(86400), tp)) {
        return;
    }
    ap_log_cerror(APLOG_MARK, APLOG_WARNING, 0, lc, RELOGNO(00019)
                  "backend %s certificate expires soon: %s notAfter=%s, "
                  "in %" APR_INT64_T_FMT "d %" APR_INT64_T_FMT "h "
                  "(ReencryptWarnExpiringWithin %" APR_INT64_T_FMT "s)",
                  st->backend_name, v->subject,
                  reencrypt_time_str(tp, v->not_after),
                  left / 86400, (left % 86400) / 3600,
                  reencrypt_policy_warn_within(&st->policy));
}

/* The CRL set a thread last looked at for RE00082, and until when it
 * leaves that set alone: the notes cache (and its global lock) is asked
 * at most once a minute per thread and set, not at every handshake of a
 * busy backend whose CRL is within the window for days. */
static AP_THREAD_LOCAL const reencrypt_crls_t *crl_memo_set;
static AP_THREAD_LOCAL apr_int64_t crl_memo_until;

/* A CRL of the policy whose nextUpdate is within its warning window, or
 * past: said once a day by the whole server (RE00082; post_config said
 * it at start-up and marked it said). Called only when the soonest
 * nextUpdate of the policy's CRLs is within the window. */
static void warn_crls(reencrypt_conn_t *st, apr_time_t now, apr_pool_t *tp)
{
    const reencrypt_crls_t *set = st->policy.crls;
    apr_int64_t window = reencrypt_policy_warn_within(&st->policy);
    apr_int64_t secs = (apr_int64_t)apr_time_sec(now);
    int i, j;

    if (crl_memo_set == set && secs < crl_memo_until) {
        return;
    }
    crl_memo_set = set;
    crl_memo_until = secs + 60;
    for (i = 0; i < set->files->nelts; i++) {
        const reencrypt_crl_file_t *f = APR_ARRAY_IDX(set->files, i,
                                            const reencrypt_crl_file_t *);

        for (j = 0; f->info && j < f->info->nelts; j++) {
            const reencrypt_crl_info_t *crl = &APR_ARRAY_IDX(f->info, j,
                                                  reencrypt_crl_info_t);

            if (crl->next_update
                && (apr_int64_t)crl->next_update - secs < window
                && reencrypt_notes_first(st->c->base_server,
                                         reencrypt_notes_crl_key(tp, crl),
                                         apr_time_from_sec(86400), tp)) {
                reencrypt_notes_crl_warn(st->c->base_server, f->path, crl, window,
                                   now, tp);
            }
        }
    }
}



/* Check the chain the backend presented, log the outcome, remember it.
 * Runs once per handshake. */
static apr_status_t verified_chain_cleanup(void *data)
{
    reencrypt_conn_t *st = data;

    sk_X509_pop_free(st->verified_chain, X509_free);
    st->verified_chain = NULL;
    return APR_SUCCESS;
}

/* For a balancer member whose handshake is made before the request is
 * sent (reencrypt_proxy.c, early_handshake): what happens next, to end
 * the line that says why it failed. "" otherwise. */
static const char *moves_on(const reencrypt_conn_t *st)
{
    reencrypt_req_t *cur = reencrypt_current_req();

    if (!st->r || cur->r != st->r || !cur->member_of) {
        return "";
    }
    return apr_psprintf(st->r->pool, "; %s member put in error state for "
                        "its retry=, the request goes on to another member "
                        "if one is left", cur->member_of);
}

/* What the policy found wrong (reason), said once: refused (RE00010)
 * or, in Report mode, reported (RE00018). The first violation of a
 * connection sets its result. */
static void violation(reencrypt_conn_t *st, reencrypt_reason_e reason,
                      const char *expected, const char *seen, X509 *leaf,
                      int chain_len)
{
    conn_rec *c = st->c;
    conn_rec *lc = st->r ? st->r->connection : c;
    int report = reencrypt_policy_mode(&st->policy) == REENCRYPT_MODE_REPORT;
    const char *token = reencrypt_reason_token(reason);
    int again;

    if (st->reason == REENCRYPT_OK) {
        st->reason = reason;
        st->result = apr_pstrcat(c->pool, report ? "report:" : "refused:",
                                 token, NULL);
    }
    if (report) {
        ap_log_cerror(APLOG_MARK, APLOG_WARNING, 0, lc, RELOGNO(00018)
                      "backend %s report-only: would refuse: %s; expected "
                      "%s; seen %s", st->backend_name, token, expected,
                      seen);
        if (st->r) {
            /* mod_ssl may still refuse what the policy let through */
            apr_table_setn(st->r->notes, "reencrypt-lenient", "1");
        }
        return;
    }
    /* once per attempt: mod_proxy_http2 tries a refused backend again on
     * a new connection within the same attempt */
    again = st->r && apr_table_get(st->r->notes, "reencrypt-refused");
    ap_log_cerror(APLOG_MARK, again ? APLOG_DEBUG : APLOG_ERR, 0, lc,
                  RELOGNO(00010) "backend %s refused: %s; expected %s; "
                  "seen %s%s%s", st->backend_name, token, expected, seen,
                  moves_on(st), again ? " (again, on another connection)"
                                      : "");
    reencrypt_status_handshake(st, leaf, chain_len, NULL, 1);
    if (st->r) {
        apr_table_setn(st->r->notes, "reencrypt-refused", token);
    }
}

static reencrypt_reason_e check_peer(reencrypt_conn_t *st, X509 *leaf,
                                     STACK_OF(X509) *untrusted,
                                     STACK_OF(X509) *validated)
{
    conn_rec *c = st->c;
    const reencrypt_policy_t *pol = &st->policy;
    reencrypt_check_t chk;
    reencrypt_verdict_t v;
    apr_time_t now = apr_time_now();
    apr_pool_t *tp;
    int report = reencrypt_policy_mode(pol) == REENCRYPT_MODE_REPORT;

    apr_pool_create(&tp, c->pool);
    apr_pool_tag(tp, "reencrypt_verify");
    reencrypt_conn_check(st, now, validated, &chk);

    reencrypt_verify(tp, &chk, leaf, untrusted, &v);
    st->chain_len = v.chain_len;
    if (v.chain) {
        /* kept with the session, for re-checks when it is resumed */
        st->verified_chain = v.chain;
        apr_pool_cleanup_register(c->pool, st, verified_chain_cleanup,
                                  apr_pool_cleanup_null);
    }
    st->checked = 1;
    st->reason = REENCRYPT_OK;  /* violation() sets the first one */
    st->skew_used = v.skew_used;
    st->revocation = reencrypt_revocation_token(v.revocation);
    if (leaf) {
        st->peer_pin = apr_pstrdup(c->pool, reencrypt_pin_str(tp,
                                                              &v.leaf_pin));
        st->peer_not_after = apr_pstrdup(c->pool,
                                  reencrypt_time_str(tp, v.not_after));
    }
    if (v.reason == REENCRYPT_OK) {
        st->result = "ok";
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, c, RELOGNO(00014)
                      "backend %s verified: %s, chain of %d, SNI %s%s",
                      st->backend_name, v.subject, v.chain_len,
                      st->sni ? st->sni : "(none)",
                      validated ? ", resumed session" : "");
    }
    else {
        violation(st, v.reason, v.expected, v.seen, leaf, v.chain_len);
    }
    if ((v.reason == REENCRYPT_OK || report) && leaf && v.not_after
        && reencrypt_policy_warn_within(pol) > 0
        && (apr_int64_t)v.not_after - (apr_int64_t)chk.now
           < reencrypt_policy_warn_within(pol)) {
        warn_expiring(st, leaf, &v, now, tp);
    }
    if (pol->crls && pol->crls->soonest_next_update
        && reencrypt_policy_revocation(pol) != REENCRYPT_REVOCATION_OFF
        && reencrypt_policy_warn_within(pol) > 0
        && (apr_int64_t)pol->crls->soonest_next_update - (apr_int64_t)chk.now
           < reencrypt_policy_warn_within(pol)) {
        warn_crls(st, now, tp);
    }
    if (st->r) {
        reencrypt_conn_set_env(st, st->r);
        if (v.skew_used) {
            /* mod_ssl may still refuse what the policy let through */
            apr_table_setn(st->r->notes, "reencrypt-lenient", "1");
        }
    }
    apr_pool_destroy(tp);
    return report ? REENCRYPT_OK : st->reason;
}

/* The backend's OCSP staple, after a full handshake whose chain passed:
 * checked against the leaf and its issuer in the validated chain. */
static reencrypt_reason_e check_staple(reencrypt_conn_t *st, SSL *ssl)
{
    const reencrypt_policy_t *pol = &st->policy;
    reencrypt_stapling_e mode = reencrypt_policy_stapling(pol);
    X509 *leaf = SSL_get0_peer_certificate(ssl), *issuer = NULL;
    const unsigned char *der = NULL;
    long len = SSL_get_tlsext_status_ocsp_resp(ssl, &der);
    int n = st->verified_chain ? sk_X509_num(st->verified_chain) : 0;
    reencrypt_staple_t sv;
    reencrypt_reason_e reason;
    apr_pool_t *tp;

    if (n >= 2) {
        issuer = sk_X509_value(st->verified_chain, 1);
    }
    else if (n == 1 && leaf && X509_check_issued(leaf, leaf) == X509_V_OK) {
        issuer = leaf;              /* a self-issued trust anchor */
    }
    apr_pool_create(&tp, st->c->pool);
    apr_pool_tag(tp, "reencrypt_staple");
    reencrypt_staple_check(tp, (len > 0 && der) ? der : NULL,
                           len > 0 ? (apr_size_t)len : 0, leaf, issuer,
                           (time_t)apr_time_sec(apr_time_now()),
                           reencrypt_policy_clock_skew(pol), &sv);
    st->staple = sv.state;
    st->staple_next_update = sv.next_update
                             ? apr_time_from_sec((apr_time_t)sv.next_update)
                             : 0;
    reason = reencrypt_staple_reason(mode, sv.state);
    if (reason == REENCRYPT_OK) {
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, st->c, RELOGNO(00080)
                      "backend %s: OCSP staple %s: %s", st->backend_name,
                      reencrypt_staple_token(sv.state), sv.seen);
    }
    else {
        violation(st, reason, sv.expected, sv.seen, leaf, st->chain_len);
    }
    if (st->r) {
        reencrypt_conn_set_env(st, st->r);
    }
    apr_pool_destroy(tp);
    return reencrypt_policy_mode(pol) == REENCRYPT_MODE_REPORT
           ? REENCRYPT_OK : reason;
}

/* OpenSSL's verify callback for backend connections under a policy.
 * The first call runs the module's own verification (with the policy's
 * anchors, not mod_ssl's store); its verdict answers every call. */
static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
    reencrypt_conn_t *st = reencrypt_conn_of_ssl(
        X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));

    (void)ok;
    if (!st) {
        return 0;                   /* cannot happen; fail closed */
    }
    if (!st->checked) {
        st->verdict = check_peer(st, X509_STORE_CTX_get0_cert(ctx),
                                 X509_STORE_CTX_get0_untrusted(ctx), NULL);
    }
    if (st->verdict != REENCRYPT_OK) {
        X509_STORE_CTX_set_error(ctx,
                                 reencrypt_reason_x509_error(st->verdict));
        return 0;
    }
    return 1;
}

/* The SNI and the names expected of a connection to backend_host */
static void set_names(reencrypt_conn_t *st, const char *backend_host,
                      const char *sni)
{
    apr_pool_t *p = st->c->pool;

    st->sni = sni ? apr_pstrdup(p, sni) : NULL;
    st->names = reencrypt_expected_names(p, &st->policy, st->sni,
                                         backend_host);
    st->names_from_sni = st->sni && !(st->policy.verify_names
                                      && st->policy.verify_names->nelts);
}

/*
 * A handshake that fails before the policy has had its say. mod_ssl and
 * mod_proxy treat every failed backend handshake alike (httpd 2.4.71:
 * AH02003 at level info, then AH01084 and AH00898 "Error during SSL
 * Handshake with remote server", and 500 for the client, from
 * proxy_util.c ap_proxy_pass_brigade), whether the backend closed the
 * connection, never answered, answered plain HTTP or sent an alert. Two
 * observers tell these apart: an input filter between mod_ssl and the
 * network (wire_filter) sees what the backend sent and how the reads
 * ended, and an info callback on the SSL sees the alerts and the end of
 * SSL_connect. When SSL_connect fails for another reason than the
 * policy's (RE00010 said that one), one line says what happened
 * (RE00060), and a request note has reencrypt_request_status answer 502,
 * or 504 when the backend did not answer in time.
 */
static ap_filter_rec_t *wire_filter_handle;

/* Could these be the first bytes of a TLS record? A content type
 * (change_cipher_spec to heartbeat) and major version 3. */
static int looks_like_tls(const unsigned char *b, apr_size_t n)
{
    return n == 0 || (b[0] >= 20 && b[0] <= 24 && (n < 2 || b[1] == 3));
}

static void wire_keep(reencrypt_conn_t *st, apr_bucket_brigade *bb,
                      int count)
{
    apr_bucket *b;

    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
         b = APR_BUCKET_NEXT(b)) {
        const char *data;
        apr_size_t len, room = sizeof(st->hs_head) - st->hs_head_len;

        if (APR_BUCKET_IS_EOS(b)) {
            if (count) {
                st->hs_rv = APR_EOF;
            }
            break;
        }
        if (APR_BUCKET_IS_METADATA(b)
            || apr_bucket_read(b, &data, &len, APR_NONBLOCK_READ)
               != APR_SUCCESS) {
            continue;
        }
        memcpy(st->hs_head + st->hs_head_len, data, len < room ? len : room);
        st->hs_head_len += len < room ? len : room;
        if (count) {
            st->hs_bytes += len;
        }
    }
}

static apr_status_t wire_filter(ap_filter_t *f, apr_bucket_brigade *bb,
                                ap_input_mode_t mode, apr_read_type_e block,
                                apr_off_t readbytes)
{
    reencrypt_conn_t *st = f->ctx;
    apr_size_t before = st->hs_bytes;
    apr_status_t rv = ap_get_brigade(f->next, bb, mode, block, readbytes);

    if (mode != AP_MODE_READBYTES) {
        return rv;
    }
    if (rv != APR_SUCCESS) {
        if (!APR_STATUS_IS_EAGAIN(rv)) {
            st->hs_rv = rv;
        }
        return rv;
    }
    wire_keep(st, bb, 1);
    if (!before && st->hs_bytes
        && !looks_like_tls(st->hs_head, st->hs_head_len)) {
        /* Not TLS: OpenSSL read no more than a record header. Peek at
         * what follows, for the log (neither consumed nor waited for). */
        apr_bucket_brigade *peek = apr_brigade_create(f->c->pool,
                                                      f->c->bucket_alloc);

        if (ap_get_brigade(f->next, peek, AP_MODE_SPECULATIVE,
                           APR_NONBLOCK_READ,
                           sizeof(st->hs_head) - st->hs_head_len)
            == APR_SUCCESS) {
            wire_keep(st, peek, 0);
        }
        apr_brigade_destroy(peek);
    }
    return rv;
}

/* Bytes as the log can show them: printable ASCII as it is, any other
 * byte (and '"', '%', '\\') as %XX. (httpd's error log would double a
 * backslash.) */
static const char *shown_bytes(apr_pool_t *p, const unsigned char *b,
                               apr_size_t n)
{
    char *out = apr_palloc(p, 3 * n + 1), *o = out;
    apr_size_t i;

    for (i = 0; i < n; i++) {
        if (b[i] >= 32 && b[i] < 127 && !strchr("\"%\\", b[i])) {
            *o++ = (char)b[i];
        }
        else {
            o += apr_snprintf(o, 4, "%%%02X", b[i]);
        }
    }
    *o = '\0';
    return out;
}

static void handshake_failed(reencrypt_conn_t *st)
{
    request_rec *r = st->r;
    const char *what;
    int timeout = 0;

    if (!r || reencrypt_current_req()->r != r
        || (st->checked && st->verdict != REENCRYPT_OK)) {
        /* no proxied request (a health check: mod_proxy_hcheck says
         * it), or the policy refused the backend (RE00010 says why) */
        return;
    }
    if (APR_STATUS_IS_TIMEUP(st->hs_rv)) {
        apr_socket_t *sock = ap_get_conn_socket(st->c);
        apr_interval_time_t t = 0;

        if (sock) {
            apr_socket_timeout_get(sock, &t);
        }
        timeout = 1;
        what = apr_psprintf(r->pool, "%s within %" APR_TIME_T_FMT "%s "
                            "(timeout= of the ProxyPass worker, else "
                            "ProxyTimeout, else Timeout)",
                            st->hs_bytes ? "no more of an answer"
                                         : "no answer",
                            t % APR_USEC_PER_SEC ? apr_time_as_msec(t)
                                                 : apr_time_sec(t),
                            t % APR_USEC_PER_SEC ? "ms" : "s");
    }
    else if (st->hs_alert) {
        what = apr_pstrcat(r->pool, "TLS alert from the backend: ",
                           SSL_alert_desc_string_long(st->hs_alert), NULL);
    }
    else if (!looks_like_tls(st->hs_head, st->hs_head_len)) {
        what = apr_psprintf(r->pool, "not TLS: the backend answered \"%s\"",
                            shown_bytes(r->pool, st->hs_head,
                                        st->hs_head_len));
    }
    else if (st->hs_rv == APR_EOF || APR_STATUS_IS_ECONNRESET(st->hs_rv)) {
        const char *how = st->hs_rv == APR_EOF ? "closed" : "reset";

        what = st->hs_bytes
               ? apr_psprintf(r->pool, "%s by the backend after %"
                              APR_SIZE_T_FMT " bytes of its answer", how,
                              st->hs_bytes)
               : apr_psprintf(r->pool, "%s by the backend before it "
                              "answered the ClientHello", how);
    }
    else if (st->hs_rv != APR_SUCCESS) {
        what = apr_psprintf(r->pool, "reading from the backend failed: %pm",
                            &st->hs_rv);
    }
    else {
        const char *reason = ERR_reason_error_string(ERR_peek_last_error());

        what = reason ? apr_pstrcat(r->pool, "OpenSSL: ", reason, NULL)
                      : "the handshake did not complete";
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, RELOGNO(00060)
                  "backend %s handshake failed: %s%s", st->backend_name, what,
                  moves_on(st));
    apr_table_setn(r->notes, "reencrypt-failed",
                   timeout ? "timeout" : "handshake");
}

/* The SSL's info callback: mod_ssl's (set on the context) first */
static void info_cb(const SSL *ssl, int where, int ret)
{
    SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
    void (*chained)(const SSL *, int, int) = NULL;
    reencrypt_conn_t *st;
    int err;

    if (ctx) {
        chained = SSL_CTX_get_info_callback(ctx);
    }
    if (chained) {
        chained(ssl, where, ret);
    }
    if (!(st = reencrypt_conn_of_ssl((SSL *)ssl)) || !st->wire_filter) {
        return;
    }
    if ((where & SSL_CB_READ_ALERT) == SSL_CB_READ_ALERT && !st->hs_alert) {
        st->hs_alert = ret;
    }
    if ((where & SSL_CB_CONNECT_EXIT) != SSL_CB_CONNECT_EXIT) {
        return;
    }
    err = ret > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, ret);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        return;                 /* not over yet */
    }
    if (ret <= 0) {
        handshake_failed(st);
    }
    /* the handshake is over: no more watching */
    ap_remove_input_filter(st->wire_filter);
    st->wire_filter = NULL;
}

/*
 * Health checks. mod_proxy_hcheck (httpd 2.4.x, mod_proxy_hcheck.c
 * hc_check_http) checks a balancer member from a watchdog thread: no
 * proxied request, so neither the scheme handler nor mod_proxy's
 * "proxy-request-hostname" note tells which member the connection is
 * for, and the connection is opened to the member's address. What it
 * writes first, though, is its own request for that member:
 *     <METHOD> <path> HTTP/1.x CRLF Host: <member host>:<port> CRLF CRLF
 * with the host and port of the member's BalancerMember URL. The TLS
 * handshake (ClientHello, SNI) starts when that first write reaches
 * mod_ssl's output filter. A filter of ours above it reads the Host
 * line there and, if it names a member configured with a health check
 * whose port is the connection's, sets the SNI, the names expected and
 * the session offered as a request to that member would. Otherwise the
 * connection keeps the backend's address as the expected name (fails
 * closed).
 */
#define CHECK_HEAD_MAX 2048

typedef struct {
    reencrypt_conn_t *st;
    SSL *ssl;
    int done;
} check_ctx_t;

static ap_filter_rec_t *check_filter_handle;

static apr_status_t check_learn(check_ctx_t *ctx, apr_bucket_brigade *bb)
{
    reencrypt_conn_t *st = ctx->st;
    conn_rec *c = st->c;
    char head[CHECK_HEAD_MAX];
    apr_size_t len = sizeof(head);
    const char *host = NULL, *member = NULL;
    unsigned int port = 0;

    if (apr_brigade_flatten(bb, head, &len) == APR_SUCCESS
        && reencrypt_parse_check_head(c->pool, head, len, &host, &port)
        && c->client_addr && port == (unsigned)c->client_addr->port) {
        member = reencrypt_proxy_checked_member(c->base_server, host, port);
    }
    if (member) {
        /* ReencryptSNI Host: the Host of this request is the member's */
        set_names(st, member, reencrypt_sni_for(c->pool, &st->policy,
                                                member, member));
        st->backend_name = apr_psprintf(c->pool, strchr(member, ':')
                                                 ? "[%s]:%u" : "%s:%u",
                                        member, port);
        if (!SSL_set_tlsext_host_name(ctx->ssl, st->sni)) {
            ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, c, RELOGNO(00042)
                          "backend %s: cannot set SNI '%s' for a health "
                          "check", st->backend_name,
                          st->sni ? st->sni : "(none)");
            return APR_EGENERAL;
        }
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, c, RELOGNO(00040)
                      "backend %s: health check of the balancer member "
                      "%s, SNI %s", st->backend_name, member,
                      st->sni ? st->sni : "(none)");
    }
    else {
        ap_log_cerror(APLOG_MARK, APLOG_WARNING, 0, c, RELOGNO(00041)
                      "backend %s: a connection without a proxied request "
                      "that is not a health check of a configured "
                      "balancer member: the backend's address is the name "
                      "expected", st->backend_name);
    }
    reencrypt_session_resume(st, ctx->ssl);
    return APR_SUCCESS;
}

static apr_status_t check_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    check_ctx_t *ctx = f->ctx;

    if (!ctx->done) {
        ctx->done = 1;
        ap_remove_output_filter(f);
        if (check_learn(ctx, bb) != APR_SUCCESS) {
            return APR_EGENERAL;    /* nothing was sent */
        }
    }
    return ap_pass_brigade(f->next, bb);
}

void reencrypt_ssl_register_filter(void)
{
    /* Above mod_ssl's output filters (AP_FTYPE_CONNECTION + 4 and + 5),
     * whose first write starts the handshake. */
    check_filter_handle = ap_register_output_filter("REENCRYPT_CHECK",
                                                    check_filter, NULL,
                                                    AP_FTYPE_CONNECTION);
    /* Between mod_ssl's input filter (AP_FTYPE_CONNECTION + 5) and the
     * network: it sees the bytes of the handshake as they arrive. */
    wire_filter_handle = ap_register_input_filter("REENCRYPT_WIRE",
                                                  wire_filter, NULL,
                                                  AP_FTYPE_CONNECTION + 6);
}

#define RENEG_EXPECTED "no renegotiation under the policy"
#define RENEG_SEEN      "the backend asked to renegotiate (HelloRequest)"

/* The backend asked for a new handshake after the first one. Its
 * certificate would not be checked again (verify_cb answers with the
 * verdict of the first handshake), so under Enforce the connection is
 * finished: OpenSSL declines the renegotiation (SSL_OP_NO_RENEGOTIATION,
 * set in pre_handshake), the socket is shut for reading so that the
 * backend cannot keep the request waiting, and the guard filter of
 * reencrypt_proxy.c hands nothing more from this connection to mod_proxy,
 * which answers 502 and closes it. Report mode lets the renegotiation
 * go on and says so once per connection. */
static void renegotiation_requested(reencrypt_conn_t *st)
{
    conn_rec *lc = st->r ? st->r->connection : st->c;
    apr_socket_t *sock;

    if (reencrypt_policy_mode(&st->policy) == REENCRYPT_MODE_REPORT) {
        if (!st->reneg_reported) {
            st->reneg_reported = 1;
            /* its session would be kept with the first handshake's chain */
            st->session_key = NULL;
            ap_log_cerror(APLOG_MARK, APLOG_WARNING, 0, lc, RELOGNO(00046)
                          "backend %s report-only: would refuse: "
                          "renegotiation; expected " RENEG_EXPECTED
                          "; seen " RENEG_SEEN, st->backend_name);
        }
        return;
    }
    if (st->reneg_refused) {
        return;
    }
    st->reneg_refused = 1;
    st->result = "refused:renegotiation";
    ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, lc, RELOGNO(00045)
                  "backend %s refused: renegotiation; expected "
                  RENEG_EXPECTED "; seen " RENEG_SEEN, st->backend_name);
    if (st->r) {
        reencrypt_conn_set_env(st, st->r);
        apr_table_setn(st->r->notes, "reencrypt-refused", "renegotiation");
    }
    if ((sock = ap_get_conn_socket(st->c)) != NULL) {
        apr_socket_shutdown(sock, APR_SHUTDOWN_READ);
    }
}

/* The message callback of every backend connection under a policy (an
 * SSL has one, and mod_ssl sets none on proxy connections). mod_ssl's
 * info callback is on the SSL_CTX; the one on the SSL (info_cb) calls it
 * first. */
static void msg_cb(int write_p, int version, int content_type,
                   const void *buf, size_t len, SSL *ssl, void *arg)
{
    const unsigned char *msg = buf;
    reencrypt_conn_t *st;

    (void)version;
    (void)arg;
    if (content_type != SSL3_RT_HANDSHAKE || len < 1
        || !(st = reencrypt_conn_of_ssl(ssl))) {
        return;
    }
    if (write_p && msg[0] == SSL3_MT_CLIENT_HELLO) {
        reencrypt_session_client_hello(st, ssl);
    }
    else if (!write_p && msg[0] == SSL3_MT_HELLO_REQUEST
             && SSL_get_state(ssl) == TLS_ST_CR_HELLO_REQ) {
        /* Taken as a request to renegotiate: OpenSSL ignores (and passes
         * here in another state) a HelloRequest that comes during a
         * handshake. TLS 1.3 has no HelloRequest; its post-handshake
         * messages (NewSessionTicket, KeyUpdate, CertificateRequest for
         * a client certificate) keep the server's certificate and pass. */
        renegotiation_requested(st);
    }
}

int reencrypt_pre_handshake(conn_rec *c, SSL *ssl, int is_proxy)
{
    reencrypt_conn_t *st;
    reencrypt_req_t *cur = reencrypt_current_req();
    const char *note, *backend_host, *sni;
    int with_request, no_request;

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
    /* no proxied request at all on this thread (a health check) */
    no_request = !st->r && !cur->r && !note;
    if (with_request && cur->backend_host) {
        backend_host = cur->backend_host;
        st->backend_name = apr_pstrdup(c->pool, cur->backend_name);
        sni = cur->sni;
    }
    else {
        /* no request: the name mod_proxy chose, else the backend's
         * address (a health check learns its member at its first
         * write, see check_learn) */
        backend_host = note ? note : c->client_ip;
        st->backend_name = apr_psprintf(c->pool, "%s:%u", c->client_ip,
                                        c->client_addr
                                        ? (unsigned)c->client_addr->port
                                        : 0U);
        sni = reencrypt_sni_for(c->pool, &st->policy, backend_host,
                                with_request ? st->r->hostname : NULL);
    }
    set_names(st, backend_host, sni);

    apr_table_unset(c->notes, "proxy-request-hostname");
    if (st->sni && !SSL_set_tlsext_host_name(ssl, st->sni)) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, c, RELOGNO(00013)
                      "backend %s: cannot set SNI '%s'", st->backend_name,
                      st->sni);
        return HTTP_BAD_GATEWAY;
    }
    if (reencrypt_policy_stapling(&st->policy) != REENCRYPT_STAPLING_OFF
        && !SSL_set_tlsext_status_type(ssl, TLSEXT_STATUSTYPE_ocsp)) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, 0, c, RELOGNO(00081)
                      "backend %s: cannot ask for an OCSP staple",
                      st->backend_name);
        return HTTP_BAD_GATEWAY;
    }
    reencrypt_conn_attach(ssl, st);
    SSL_set_verify(ssl, SSL_VERIFY_PEER, verify_cb);
    SSL_set_msg_callback(ssl, msg_cb);
    if (reencrypt_policy_mode(&st->policy) != REENCRYPT_MODE_REPORT) {
        /* a HelloRequest gets a no_renegotiation alert, no ClientHello */
        SSL_set_options(ssl, SSL_OP_NO_RENEGOTIATION);
    }
    st->wire_filter = ap_add_input_filter_handle(wire_filter_handle, st,
                                                 NULL, c);
    SSL_set_info_callback(ssl, info_cb);
    if (no_request) {
        /* the session key includes the SNI: offered once it is known */
        check_ctx_t *ctx = apr_pcalloc(c->pool, sizeof(*ctx));

        ctx->st = st;
        ctx->ssl = ssl;
        ap_add_output_filter_handle(check_filter_handle, ctx, NULL, c);
    }
    else {
        reencrypt_session_resume(st, ssl);
    }
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
    st->resumed = SSL_session_reused(ssl);
    if (!st->checked) {
        if (st->resumed && st->resume_chain) {
            /* OpenSSL verified nothing: re-check the chain stored with
             * the session against the policy as it is now */
            st->verdict = check_peer(st, sk_X509_value(st->resume_chain, 0),
                                     NULL, st->resume_chain);
        }
        else {
            /* The handshake completed without the verify callback and
             * without a session of ours: check what the session carries,
             * and refuse if it carries nothing. */
            st->verdict = check_peer(st, SSL_get0_peer_certificate(ssl),
                                     SSL_get_peer_cert_chain(ssl), NULL);
        }
    }
    if (st->verdict == REENCRYPT_OK
        && reencrypt_policy_stapling(&st->policy) != REENCRYPT_STAPLING_OFF
        && st->staple == REENCRYPT_STAPLE_NOT_CHECKED) {
        if (st->resumed) {
            /* no staple in an abbreviated handshake: the session was
             * stored no longer than the staple it was verified with
             * stays current (reencrypt_session.c) */
            st->staple = REENCRYPT_STAPLE_RESUMED;
            /* the session lives no longer than its staple was current */
            st->staple_next_update = st->resume_expiry;
            if (st->r) {
                reencrypt_conn_set_env(st, st->r);
            }
        }
        else {
            st->verdict = check_staple(st, ssl);
        }
    }
    if (st->verdict != REENCRYPT_OK) {
        if (st->resumed) {
            reencrypt_session_forget(st);
        }
        return HTTP_BAD_GATEWAY;
    }
    if (st->reason == REENCRYPT_OK) {
        /* never keep a session that only Report mode let through */
        reencrypt_session_handshake_ok(st);
    }
    reencrypt_status_handshake(st, SSL_get0_peer_certificate(ssl)
                                   ? SSL_get0_peer_certificate(ssl)
                                   : (st->resume_chain
                                      ? sk_X509_value(st->resume_chain, 0)
                                      : NULL),
                               st->chain_len, ssl, 0);
    /* the request's variables were set by check_peer(), which ran for
     * this handshake, full (verify_cb) or resumed (above) */
    return OK;
}
