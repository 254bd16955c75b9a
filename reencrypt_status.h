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
 * @file reencrypt_status.h
 * @brief Backend statistics and the status views (reencrypt_status.c).
 */

#ifndef REENCRYPT_STATUS_H
#define REENCRYPT_STATUS_H

#include "reencrypt_conn.h"

/** A CRL file of the configuration, as the status views list it. */
typedef struct {
    const reencrypt_crl_file_t *file;
    apr_int64_t warn_within;     /**< the largest ReencryptWarnExpiringWithin
                                  *   of the policies that check backends
                                  *   against it (seconds), 0 when none */
} reencrypt_crl_watch_t;

int reencrypt_status_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp);
int reencrypt_status_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                 apr_pool_t *ptemp, server_rec *s);
int reencrypt_status_post_config_close(apr_pool_t *pconf, apr_pool_t *plog,
                                       apr_pool_t *ptemp, server_rec *s);
void reencrypt_status_child_init(apr_pool_t *p, server_rec *s);
int reencrypt_status_handler(request_rec *r);
int reencrypt_status_hook(request_rec *r, int flags);
/** Count a handshake (refused or passed) and keep the backend's facts. */
void reencrypt_status_handshake(reencrypt_conn_t *st, X509 *leaf,
                                int chain_len, SSL *ssl, int refused);
/** Count a request sent over an already verified pooled connection. */
void reencrypt_status_reuse(reencrypt_conn_t *st);

/** Whether some scope turns a policy on (set by the startup checks):
 *  without, no statistics are kept. */
void reencrypt_status_want(int wanted);
/** The CRL files of the configuration (reencrypt_crl_watch_t, each file
 *  once, from pconf), for the views; NULL until post_config. */
void reencrypt_status_set_crl_files(apr_pool_t *pconf,
                                    const apr_array_header_t *files);

#endif /* REENCRYPT_STATUS_H */
