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
 * @file reencrypt_socache.h
 * @brief One httpd socache with the global mutex its provider needs:
 *        the set-up the session cache (reencrypt_session.c) and the
 *        notes cache (reencrypt_notes.c) share, as mod_ssl's session
 *        and stapling caches do.
 */

#ifndef REENCRYPT_SOCACHE_H
#define REENCRYPT_SOCACHE_H

#include "apr_global_mutex.h"
#include "ap_socache.h"

#include "mod_reencrypt.h"

/** A socache and its mutex. Filled by reencrypt_socache_open(); all
 *  NULL when there is none. */
typedef struct {
    const char *mutex_type;      /**< registered at pre_config */
    const ap_socache_provider_t *provider;
    ap_socache_instance_t *cache;
    apr_global_mutex_t *mutex;   /**< for providers that are not
                                  *   multi-process safe, else NULL */
} reencrypt_socache_t;

/** Register the mutex type (pre_config), so that "Mutex <type> ..."
 *  configures it. */
apr_status_t reencrypt_socache_register(apr_pool_t *pconf,
                                        const char *mutex_type);

/**
 * Create and initialise the cache of provider (with args, NULL for
 * none) in namespace ns, with hints, and its mutex when the provider
 * needs one; a cleanup on pconf destroys it. Returns NULL, or what went
 * wrong (from ptemp; *rv is the APR status when there is one); the
 * caller says it with its own tag.
 */
const char *reencrypt_socache_open(reencrypt_socache_t *sc,
                                   const char *provider, const char *args,
                                   const char *ns,
                                   const struct ap_socache_hints *hints,
                                   server_rec *s, apr_pool_t *pconf,
                                   apr_pool_t *ptemp, apr_status_t *rv);

/** Attach a child to the mutex (child_init); APR_SUCCESS when there is
 *  nothing to attach to. */
apr_status_t reencrypt_socache_child_init(reencrypt_socache_t *sc,
                                          apr_pool_t *p);

/** Lock and unlock the cache for one call (no-ops without a mutex);
 *  lock returns 0 when the mutex cannot be taken. */
int reencrypt_socache_lock(reencrypt_socache_t *sc);
void reencrypt_socache_unlock(reencrypt_socache_t *sc);

#endif /* REENCRYPT_SOCACHE_H */
