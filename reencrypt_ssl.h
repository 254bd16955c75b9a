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
 * @file reencrypt_ssl.h
 * @brief The mod_ssl side: the verification of a backend handshake under its policy (reencrypt_ssl.c).
 */

#ifndef REENCRYPT_SSL_H
#define REENCRYPT_SSL_H

#include "mod_reencrypt.h"

int reencrypt_pre_handshake(conn_rec *c, SSL *ssl, int is_proxy);
void reencrypt_ssl_register_filter(void);
int reencrypt_proxy_post_handshake(conn_rec *c, SSL *ssl);

#endif /* REENCRYPT_SSL_H */
