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
 * @file reencrypt_notes.h
 * @brief Once-a-day notes shared by all children: warnings said once a day by the whole server (reencrypt_notes.c).
 */

#ifndef REENCRYPT_NOTES_H
#define REENCRYPT_NOTES_H

#include "mod_reencrypt.h"

/** Whether some policy wants once-a-day warnings (set by the startup
 *  checks): without, no notes cache is made. */
void reencrypt_notes_want(int wanted);
int reencrypt_notes_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                               apr_pool_t *ptemp);
int reencrypt_notes_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp, server_rec *s);
void reencrypt_notes_child_init(apr_pool_t *p, server_rec *s);
/** Non-zero the first time key is seen by the server (all children)
 *  within ttl; always non-zero when no cache is configured. */
int reencrypt_notes_first(server_rec *s, const char *key,
                          apr_interval_time_t ttl, apr_pool_t *p);

/** The notes key under which RE00082 for crl is said once a day */
const char *reencrypt_notes_crl_key(apr_pool_t *p,
                                    const reencrypt_crl_info_t *crl);
/** Say RE00082: crl, in the file path, is within window seconds of its
 *  nextUpdate at now, or past it. */
void reencrypt_notes_crl_warn(server_rec *s, const char *path,
                              const reencrypt_crl_info_t *crl,
                              apr_int64_t window, apr_time_t now,
                              apr_pool_t *p);

#endif /* REENCRYPT_NOTES_H */
