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

/**
 * @file reencrypt_conn.h
 * @brief The state shared by the glue units, owned by reencrypt_conn.c:
 *        the proxy request of a worker thread, the state of a TLS backend
 *        connection, and what its policy asks of a chain.
 */

#ifndef REENCRYPT_CONN_H
#define REENCRYPT_CONN_H

#include "mod_reencrypt.h"

/** The proxy request a thread is handling, from the scheme handler to
 *  the request_status hook (or, where mod_proxy skips that hook, to the
 *  end of the request: reencrypt_proxy.c). Lets the connection-level
 *  hooks (which see only the backend conn_rec) attribute a handshake to
 *  its request. */
typedef struct {
    request_rec *r;                   /**< NULL when no proxy request */
    ap_conf_vector_t *per_dir_config; /**< r->per_dir_config at the time */
    const reencrypt_policy_t *policy; /**< the request's merged policy */
    apr_uint64_t policy_id;           /**< reencrypt_policy_id(policy) */
    const char *backend_host;         /**< ProxyPass URL host, no [] */
    const char *backend_name;         /**< "host:port" for the log */
    const char *sni;                  /**< SNI this request wants */
    const char *member_of;            /**< the balancer of a member whose
                                       *   handshake is made early */
} reencrypt_req_t;

/** State of one TLS connection to a backend, in its c->conn_config. */
typedef struct {
    conn_rec *c;
    reencrypt_policy_t policy;   /**< bound at the connection's first bind */
    int established;             /**< pre_handshake ran */
    apr_uint64_t established_id; /**< policy id the handshake ran under */
    request_rec *r;              /**< request using it now, or NULL */
    const char *backend_name;    /**< "host:port" (c->pool) */
    const char *sni;             /**< SNI sent, or NULL (c->pool) */
    const apr_array_header_t *names; /**< names expected (c->pool) */
    int names_from_sni;
    int checked;                 /**< verification ran */
    reencrypt_reason_e reason;   /**< what it found */
    reencrypt_reason_e verdict;  /**< what it decided (OK in Report) */
    int skew_used;               /**< accepted thanks to ReencryptClockSkew */
    const char *result;          /**< REENCRYPT_RESULT: ok, refused:x,
                                  *   report:x (c->pool) */
    const char *peer_pin;        /**< REENCRYPT_PEER_PIN (c->pool) */
    const char *peer_not_after;  /**< REENCRYPT_PEER_NOT_AFTER (c->pool) */
    const char *revocation;      /**< REENCRYPT_REVOCATION: a static
                                  *   token of reencrypt_revocation_token */
    reencrypt_staple_state_e staple; /**< REENCRYPT_STAPLE: what the
                                  *   backend's OCSP staple said */
    apr_time_t staple_next_update; /**< that staple's nextUpdate, 0 if
                                  *   none was checked or it gave none */
    STACK_OF(X509) *verified_chain; /**< chain of a full handshake */
    const char *session_key;     /**< cache key, or NULL: no resumption */
    STACK_OF(X509) *resume_chain; /**< stored with the offered session */
    apr_time_t resume_validated_at; /**< when that chain was validated */
    apr_time_t resume_expiry;    /**< when the offered session expires */
    apr_time_t validated_at;     /**< when this connection's chain was */
    SSL_SESSION *pending_session; /**< held until the handshake passed */
    int handshake_ok;            /**< passed the policy and mod_ssl */
    int resumed;                 /**< the handshake resumed a session */
    int chain_len;               /**< certificates of the checked chain */
    int slot;                    /**< statistics slot + 1; 0 not looked
                                  *   up yet, -1 none to be had */
    apr_uint32_t slot_gen;       /**< that slot's generation: it is ours
                                  *   while the slot still has it */
    int reneg_refused;           /**< the backend asked to renegotiate
                                  *   (Enforce): nothing more is read */
    int reneg_reported;          /**< the same, reported (Report mode) */
    /* what the backend sent in the handshake (reencrypt_ssl.c) */
    ap_filter_t *wire_filter;    /**< watching the handshake, or NULL */
    apr_size_t hs_bytes;         /**< bytes received in the handshake */
    unsigned char hs_head[16];   /**< the first of them */
    apr_size_t hs_head_len;
    apr_status_t hs_rv;          /**< how the last read ended (APR_EOF:
                                  *   the backend closed) */
    int hs_alert;                /**< alert received from the backend
                                  *   (OpenSSL's info value), or 0 */
} reencrypt_conn_t;

/** The proxy request this thread is handling (never NULL; its r is
 *  NULL when there is none). */
reencrypt_req_t *reencrypt_current_req(void);

/** The state of backend connection c, or NULL (not bound yet). */
reencrypt_conn_t *reencrypt_conn_get(conn_rec *c);

/** The merged policy of dir_conf (NULL: s's defaults). */
const reencrypt_policy_t *reencrypt_policy_of(ap_conf_vector_t *dir_conf,
                                              server_rec *s);

/** An OpenSSL ex_data index of class class_index (CRYPTO_EX_INDEX_*),
 *  taken once per process and kept under key in the process pool. */
int reencrypt_conn_ex_index(const char *key, int class_index);

/** Make the OpenSSL ex_data index that ties an SSL to its state. */
int reencrypt_conn_init(apr_pool_t *pconf, apr_pool_t *plog,
                        apr_pool_t *ptemp);

/** Tie ssl to st; the state tied to ssl, or NULL. */
void reencrypt_conn_attach(SSL *ssl, reencrypt_conn_t *st);
reencrypt_conn_t *reencrypt_conn_of_ssl(SSL *ssl);

/** The request variables (REENCRYPT_RESULT, ...) of st's handshake. */
void reencrypt_conn_set_env(const reencrypt_conn_t *st, request_rec *r);

/** What st's policy asks of a chain at now; validated: a chain stored
 *  with a session, checked again. */
void reencrypt_conn_check(const reencrypt_conn_t *st, apr_time_t now,
                          STACK_OF(X509) *validated, reencrypt_check_t *chk);

/** Would a chain stored with a session pass st's policy now? (Without
 *  logging: before offering the session.) */
int reencrypt_conn_chain_passes(const reencrypt_conn_t *st,
                                STACK_OF(X509) *chain, apr_pool_t *p);

#endif /* REENCRYPT_CONN_H */
