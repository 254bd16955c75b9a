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
 * @file reencrypt_session_local.h
 * @brief This child's decoded copies of backend TLS sessions, for
 *        reencrypt_session.c only.
 */

#ifndef REENCRYPT_SESSION_LOCAL_H
#define REENCRYPT_SESSION_LOCAL_H

#include <apr_pools.h>
#include <apr_time.h>

#include <openssl/ssl.h>

/** A copy handed to a connection: its own session and a reference to
 *  the chain (the caller frees both). */
typedef struct {
    SSL_SESSION *sess;
    STACK_OF(X509) *chain;
    apr_time_t validated, expiry;
    int checked;                /**< passed the pre-check this second */
} reencrypt_session_copy_t;

/** Make this child's table (child_init). */
void reencrypt_session_local_init(apr_pool_t *p);

/** The copy of key, if current at now for a scope whose session timeout
 *  is timeout seconds (its expiry is then the shorter of the stored one
 *  and validated + timeout); 0 when there is none. */
int reencrypt_session_local_get(const char *key, apr_int64_t timeout,
                                apr_time_t now, apr_time_t second,
                                reencrypt_session_copy_t *out);

/** Keep a private copy of sess and chain under key. With written_at set
 *  (a session this child may also write to the shared store), say
 *  whether to write it: not if this child wrote the key within the last
 *  second. */
int reencrypt_session_local_keep(const char *key, SSL_SESSION *sess,
                                 STACK_OF(X509) *chain,
                                 apr_time_t validated_at, apr_time_t expiry,
                                 apr_time_t written_at);

/** Drop the copy of key. */
void reencrypt_session_local_forget(const char *key);

/** The pre-check of key passed at second: not made again within it. */
void reencrypt_session_local_passed(const char *key, apr_time_t second);

#endif /* REENCRYPT_SESSION_LOCAL_H */
