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
 * @file reencrypt_session.h
 * @brief TLS session resumption on backend connections (reencrypt_session.c).
 */

#ifndef REENCRYPT_SESSION_H
#define REENCRYPT_SESSION_H

#include "reencrypt_conn.h"

/** Whether some scope turns a policy on (set by the startup checks):
 *  without, no session cache is made. */
void reencrypt_session_want(int wanted);
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

#endif /* REENCRYPT_SESSION_H */
