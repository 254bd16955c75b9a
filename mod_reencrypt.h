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
 * @file mod_reencrypt.h
 * @brief Types shared by the httpd-facing units of mod_reencrypt.
 */

#ifndef MOD_REENCRYPT_H
#define MOD_REENCRYPT_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"

#include "mod_proxy.h"
#include "mod_ssl_openssl.h"

#include "reencrypt_policy.h"
#include "reencrypt_seal.h"
#include "reencrypt_staple.h"
#include "reencrypt_verify.h"
#include "reencrypt_version.h"

#if !AP_MODULE_MAGIC_AT_LEAST(20120211, 116)
#error "mod_reencrypt needs httpd 2.4.49 or later (the ssl_bind_outgoing hook)"
#endif

#if !defined(AP_HAS_THREAD_LOCAL) || !AP_HAS_THREAD_LOCAL
#error "mod_reencrypt needs a compiler with thread-local storage"
#endif

/** Log tags of this module: "RE" and five digits, one per call site.
 *  The next free number is kept in the file next-number. */
#define RELOGNO(n) "RE" #n ": "

extern module AP_MODULE_DECLARE_DATA reencrypt_module;

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

/** Default of ReencryptStatusBackends. */
#define REENCRYPT_STATUS_BACKENDS_DEFAULT 64
#define REENCRYPT_STATUS_BACKENDS_MAX     4096

/** Server-wide settings (main server only). */
typedef struct {
    const char *session_cache;   /**< ReencryptSessionCache, NULL unset */
    int status_backends;         /**< ReencryptStatusBackends, -1 unset */
    /** ReencryptSessionCacheKey: its file, and the keys read from it */
    const char *session_key_file;
    const reencrypt_seal_keys_t *session_keys;
    apr_fileperms_t session_key_perms; /**< the file's permission bits */
    apr_gid_t session_key_group;       /**< and its group */
    int session_key_none;        /**< ReencryptSessionCacheKey none */
    /** "file:line" of each of the three directives, NULL unset */
    const char *session_cache_where;
    const char *session_key_where;
    const char *status_backends_where;
} reencrypt_srv_conf;

/** A CRL file of the configuration, as the status views list it. */
typedef struct {
    const reencrypt_crl_file_t *file;
    apr_int64_t warn_within;     /**< the largest ReencryptWarnExpiringWithin
                                  *   of the policies that check backends
                                  *   against it (seconds), 0 when none */
} reencrypt_crl_watch_t;

/* reencrypt_config.c */
void *reencrypt_create_srv_conf(apr_pool_t *p, server_rec *s);
void *reencrypt_create_dir_conf(apr_pool_t *p, char *dir);
void *reencrypt_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);
extern const command_rec reencrypt_cmds[];
const reencrypt_policy_t *reencrypt_policy_of(ap_conf_vector_t *dir_conf,
                                              server_rec *s);
int reencrypt_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *s);
int reencrypt_config_warnings(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s);
/** Collect the CRL files of every policy (reencrypt_crl_files) and say
 *  RE00082 for those about to expire; after the notes cache exists. */
int reencrypt_crl_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s);
/** The CRL files of the configuration (reencrypt_crl_watch_t, each file
 *  once), or NULL before post_config. Read-only. */
const apr_array_header_t *reencrypt_crl_files(void);
/** The notes cache key under which RE00082 for crl is said once a day */
const char *reencrypt_crl_warn_key(apr_pool_t *p,
                                   const reencrypt_crl_info_t *crl);
/** Say RE00082: crl, in the file path, is within window seconds of its
 *  nextUpdate at now, or past it. */
void reencrypt_crl_warn(server_rec *s, const char *path,
                        const reencrypt_crl_info_t *crl,
                        apr_int64_t window, apr_time_t now, apr_pool_t *p);

/* reencrypt_proxy.c */
int reencrypt_scheme_handler(request_rec *r, proxy_worker *worker,
                             proxy_server_conf *conf, char *url,
                             const char *proxyhost, apr_port_t proxyport);
int reencrypt_bind_outgoing(conn_rec *c, ap_conf_vector_t *dir_conf,
                            int enable_ssl);
int reencrypt_request_status(int *status, request_rec *r);
void reencrypt_proxy_register_filter(void);
/** Find mod_proxy's functions that the early handshake of balancer
 *  members calls; 0 if one is missing (no same-request failover). */
int reencrypt_proxy_find_api(void);
reencrypt_req_t *reencrypt_current_req(void);
reencrypt_conn_t *reencrypt_conn_get(conn_rec *c);
/** The configured host of a balancer member of s (https or wss, with a
 *  health check method) whose host and port are these, or NULL. */
const char *reencrypt_proxy_checked_member(server_rec *s, const char *host,
                                           unsigned int port);

/* reencrypt_cache.c */
extern int reencrypt_warn_cache_wanted;
int reencrypt_cache_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                               apr_pool_t *ptemp);
int reencrypt_cache_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp, server_rec *s);
void reencrypt_cache_child_init(apr_pool_t *p, server_rec *s);
/** Non-zero the first time key is seen by the server (all children)
 *  within ttl; always non-zero when no cache is configured. */
int reencrypt_cache_first(server_rec *s, const char *key,
                          apr_interval_time_t ttl, apr_pool_t *p);

/* reencrypt_session.c */
extern int reencrypt_any_policy;
int reencrypt_session_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                                 apr_pool_t *ptemp);
int reencrypt_session_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                  apr_pool_t *ptemp, server_rec *s);
void reencrypt_session_child_init(apr_pool_t *p, server_rec *s);
int reencrypt_session_init_server(server_rec *s, apr_pool_t *p,
                                  int is_proxy, SSL_CTX *ctx);
/** Offer a cached session for this connection (in pre_handshake). */
void reencrypt_session_resume(reencrypt_conn_t *st, SSL *ssl);
/** The handshake passed everything: store its session now and later. */
void reencrypt_session_handshake_ok(reencrypt_conn_t *st);
/** Drop the cached session of this connection's key. */
void reencrypt_session_forget(reencrypt_conn_t *st);
/** The connection's ClientHello is being written (called from the
 *  message callback of reencrypt_ssl.c). */
void reencrypt_session_client_hello(reencrypt_conn_t *st, SSL *ssl);

/* reencrypt_status.c */
int reencrypt_status_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp);
int reencrypt_status_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                 apr_pool_t *ptemp, server_rec *s);
int reencrypt_status_post_config_save(apr_pool_t *pconf, apr_pool_t *plog,
                                      apr_pool_t *ptemp, server_rec *s);
void reencrypt_status_child_init(apr_pool_t *p, server_rec *s);
int reencrypt_status_handler(request_rec *r);
int reencrypt_status_hook(request_rec *r, int flags);
/** Count a handshake (refused or passed) and keep the backend's facts. */
void reencrypt_status_handshake(reencrypt_conn_t *st, X509 *leaf,
                                int chain_len, SSL *ssl, int refused);
/** Count a request sent over an already verified pooled connection. */
void reencrypt_status_reuse(reencrypt_conn_t *st);

/* reencrypt_ssl.c */
void reencrypt_ssl_set_env(const reencrypt_conn_t *st, request_rec *r);
reencrypt_conn_t *reencrypt_ssl_conn_of(SSL *ssl);
/** Would a chain stored with a session pass this connection's policy
 *  now? (Without logging: before offering the session.) */
int reencrypt_ssl_chain_passes(const reencrypt_conn_t *st,
                               STACK_OF(X509) *chain, apr_pool_t *p);
int reencrypt_ssl_init(apr_pool_t *pconf, apr_pool_t *plog,
                       apr_pool_t *ptemp);
int reencrypt_pre_handshake(conn_rec *c, SSL *ssl, int is_proxy);
void reencrypt_ssl_register_filter(void);
int reencrypt_proxy_post_handshake(conn_rec *c, SSL *ssl);

#endif /* MOD_REENCRYPT_H */
