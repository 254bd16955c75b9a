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
 * @file reencrypt_session_store.h
 * @brief The shared store of backend TLS sessions (an httpd socache),
 *        for reencrypt_session.c only.
 */

#ifndef REENCRYPT_SESSION_STORE_H
#define REENCRYPT_SESSION_STORE_H

#include "mod_reencrypt.h"
#include "reencrypt_codec.h"

/** Largest entry: a session and its chain, sealed */
#define SESSION_ENTRY_MAX (REENCRYPT_CODEC_MAX + REENCRYPT_SEAL_OVERHEAD)

/** The calls to the store */
enum { CALL_RETRIEVE = 1, CALL_STORE, CALL_REMOVE };

/** Register the store's mutex type (pre_config). */
int reencrypt_session_store_pre_config(apr_pool_t *pconf);

/** Create the store ReencryptSessionCache names (post_config, where a
 *  policy is on); an HTTP status, OK when it is ready or "none". */
int reencrypt_session_store_open(apr_pool_t *pconf, apr_pool_t *ptemp,
                                 server_rec *s);

/** Attach this child (child_init): its mutex, its network thread;
 *  0 when the store cannot be used in this child. */
int reencrypt_session_store_child_init(apr_pool_t *p, server_rec *s);

/** Is there a store to use? */
int reencrypt_session_store_on(void);

/** ReencryptSessionCacheKey's keys, or NULL: entries are not sealed. */
const reencrypt_seal_keys_t *reencrypt_session_store_keys(void);

/** One call (CALL_*) for key: data and *len in and out, expiry for a
 *  store. APR_EAGAIN: not made (a network cache left alone a while). */
apr_status_t reencrypt_session_store_call(server_rec *s, int op,
                                          const char *key,
                                          unsigned char *data,
                                          unsigned int *len,
                                          apr_time_t expiry, apr_pool_t *p);

#endif /* REENCRYPT_SESSION_STORE_H */
