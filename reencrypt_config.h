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
 * @file reencrypt_config.h
 * @brief Configuration records, directive handlers and the startup checks (reencrypt_config.c).
 */

#ifndef REENCRYPT_CONFIG_H
#define REENCRYPT_CONFIG_H

#include "mod_reencrypt.h"


void *reencrypt_create_srv_conf(apr_pool_t *p, server_rec *s);
void *reencrypt_create_dir_conf(apr_pool_t *p, char *dir);
void *reencrypt_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);
extern const command_rec reencrypt_cmds[];
int reencrypt_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *s);
int reencrypt_config_warnings(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s);
/** RE00092 (what the scopes share), and the kept copies of files the
 *  reading no longer names freed. */
int reencrypt_config_shared_files(apr_pool_t *pconf, apr_pool_t *plog,
                                  apr_pool_t *ptemp, server_rec *s);
/** Collect the CRL files of every policy (reencrypt_crl_files) and say
 *  RE00082 for those about to expire; after the notes cache exists. */
int reencrypt_crl_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s);

#endif /* REENCRYPT_CONFIG_H */
