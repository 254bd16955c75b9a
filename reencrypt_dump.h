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
 * @file reencrypt_dump.h
 * @brief What `apachectl -t` says of the policies: the effective policy
 *        of every scope (-D DUMP_REENCRYPT) and a verified handshake
 *        with every backend under a policy (-D REENCRYPT_PROBE).
 */

#ifndef REENCRYPT_DUMP_H
#define REENCRYPT_DUMP_H

#include "httpd.h"
#include "apr_pools.h"

/** Seconds within which apachectl -t -D REENCRYPT_PROBE is done with
 *  every backend, all of them probed at once. */
#define REENCRYPT_PROBE_SECONDS 5

/** Backends probed at the same time, at most. */
#define REENCRYPT_PROBE_THREADS 16

/**
 * The test_config hook (run by apachectl -t once the configuration
 * passed its checks): with -D DUMP_REENCRYPT, print on standard output
 * every scope that has a policy, its effective values and where each
 * was set; with -D REENCRYPT_PROBE, make a TLS handshake with every
 * backend named under a policy, verify it as a request's handshake
 * would be verified, print one line per backend and end the process
 * with exit status 1 when one would be refused or cannot be reached.
 */
void reencrypt_dump_test_config(apr_pool_t *pconf, server_rec *s);

#endif /* REENCRYPT_DUMP_H */
