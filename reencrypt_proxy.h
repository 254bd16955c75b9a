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
 * @file reencrypt_proxy.h
 * @brief The mod_proxy side: scheme handler, early handshake of balancer members, binding of backend connections, request status (reencrypt_proxy.c).
 */

#ifndef REENCRYPT_PROXY_H
#define REENCRYPT_PROXY_H

#include "mod_reencrypt.h"

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
/** The configured host of a balancer member of s (https or wss, with a
 *  health check method) whose host and port are these, or NULL. */
const char *reencrypt_proxy_checked_member(server_rec *s, const char *host,
                                           unsigned int port);

#endif /* REENCRYPT_PROXY_H */
