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

/** Default of ReencryptStatusBackends. */
#define REENCRYPT_STATUS_BACKENDS_DEFAULT 64
#define REENCRYPT_STATUS_BACKENDS_MAX     16384

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

#endif /* MOD_REENCRYPT_H */
