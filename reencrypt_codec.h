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
 * @file reencrypt_codec.h
 * @brief The value of a session cache entry: a TLS session, the chain
 *        it was validated with and two times, as bytes for an httpd
 *        socache, and back. What is read back may come from memcached
 *        or redis on a network: the decoder takes any bytes.
 *
 * Pure: APR and OpenSSL only; never sees httpd state.
 */

#ifndef REENCRYPT_CODEC_H
#define REENCRYPT_CODEC_H

#include <apr_pools.h>
#include <apr_time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "reencrypt_policy.h"

#ifdef __cplusplus
extern "C" {
#endif

#define REENCRYPT_CODEC_MAGIC  "RES3"
/** Largest entry the encoder makes (before any sealing). */
#define REENCRYPT_CODEC_MAX    (48 * 1024)
/** Most certificates in an entry's chain: a leaf and
 *  REENCRYPT_DEPTH_MAX certificates above it. */
#define REENCRYPT_CODEC_CHAIN_MAX  (REENCRYPT_DEPTH_MAX + 1)

/** Encode sess and chain (leaf first) with validated (when the chain
 *  was last validated in a full handshake) and expiry (when the session
 *  stops being usable), both kept in seconds since the epoch modulo
 *  2^32:
 *    "RES3" | u32 validated | u32 expiry | u32 len | session DER |
 *    u32 n | (u32 len | certificate DER) * n
 *  (u32 in network order). Returns the entry (from p) and its length in
 *  *len, or NULL when something does not encode or the entry would be
 *  longer than REENCRYPT_CODEC_MAX. */
unsigned char *reencrypt_codec_encode(apr_pool_t *p, SSL_SESSION *sess,
                                      STACK_OF(X509) *chain,
                                      apr_time_t validated,
                                      apr_time_t expiry, unsigned int *len);

/** Decode an entry made by reencrypt_codec_encode(), all len bytes of
 *  it: nothing may be left over, and the chain holds 1 to
 *  REENCRYPT_CODEC_CHAIN_MAX certificates. Returns 1 on success: *sess
 *  is then the caller's to free, *chain is freed by a cleanup of p, and
 *  the times are back near the current time (reencrypt_codec_u32_time).
 *  Returns 0 on failure, with *sess and *chain NULL (the times may have
 *  been written). */
int reencrypt_codec_decode(apr_pool_t *p, const unsigned char *blob,
                           unsigned int len, SSL_SESSION **sess,
                           STACK_OF(X509) **chain, apr_time_t *validated,
                           apr_time_t *expiry);

/** Seconds since the epoch modulo 2^32 back to the time within 2^31
 *  seconds of now. */
apr_time_t reencrypt_codec_u32_time(apr_uint32_t v, apr_time_t now);

#ifdef __cplusplus
}
#endif

#endif /* REENCRYPT_CODEC_H */
