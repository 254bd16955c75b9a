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
 * @file reencrypt_seal.h
 * @brief Sealing of the entries of a shared session cache: AES-256-GCM
 *        under a key the proxies of a fleet share
 *        (ReencryptSessionCacheKey), bound to the entry's cache key.
 *
 * Pure: APR and OpenSSL's libcrypto only; never sees httpd state.
 */

#ifndef REENCRYPT_SEAL_H
#define REENCRYPT_SEAL_H

#include <apr_pools.h>

#ifdef __cplusplus
extern "C" {
#endif

#define REENCRYPT_SEAL_KEY_LEN   32     /**< AES-256 */
#define REENCRYPT_SEAL_MAX_KEYS  8      /**< current key + older ones */
#define REENCRYPT_SEAL_ID_LEN    4
#define REENCRYPT_SEAL_NONCE_LEN 12
#define REENCRYPT_SEAL_TAG_LEN   16
#define REENCRYPT_SEAL_MAGIC     "RSE1"
/** Bytes a sealed entry adds to its plaintext. */
#define REENCRYPT_SEAL_OVERHEAD  (4 + REENCRYPT_SEAL_ID_LEN \
                                  + REENCRYPT_SEAL_NONCE_LEN \
                                  + REENCRYPT_SEAL_TAG_LEN)

/** The keys of a key file: keys[0] seals, every one of them opens. */
typedef struct {
    int nkeys;
    unsigned char key[REENCRYPT_SEAL_MAX_KEYS][REENCRYPT_SEAL_KEY_LEN];
    /** first bytes of SHA-256(key): which key sealed an entry */
    unsigned char id[REENCRYPT_SEAL_MAX_KEYS][REENCRYPT_SEAL_ID_LEN];
} reencrypt_seal_keys_t;

/** Parse the text of a key file: one key per line, the base64 of 32
 *  random bytes (`openssl rand -base64 32`); blank lines and lines
 *  starting with '#' are skipped. The first key seals; the others (at
 *  most REENCRYPT_SEAL_MAX_KEYS in all) only open, for a rotation.
 *  Returns NULL, or an error message (from p) that names the line and
 *  never shows key material. */
const char *reencrypt_seal_keys_parse(apr_pool_t *p, const char *text,
                                      apr_size_t len,
                                      reencrypt_seal_keys_t *keys);

/** Seal len bytes of plain under keys->key[0], bound to aad (the cache
 *  key the entry is stored under): magic | key id | nonce | ciphertext |
 *  tag. Returns the entry (from p) and its length in *outlen, or NULL. */
unsigned char *reencrypt_seal(apr_pool_t *p,
                              const reencrypt_seal_keys_t *keys,
                              const unsigned char *aad, apr_size_t aadlen,
                              const unsigned char *plain, apr_size_t len,
                              apr_size_t *outlen);

/** Open an entry sealed by reencrypt_seal() under one of keys and the
 *  same aad. Returns the plaintext (from p) and its length in *outlen,
 *  or NULL when the entry is not sealed, was sealed under another key
 *  or for another cache key, or was altered. */
unsigned char *reencrypt_unseal(apr_pool_t *p,
                                const reencrypt_seal_keys_t *keys,
                                const unsigned char *aad, apr_size_t aadlen,
                                const unsigned char *sealed, apr_size_t len,
                                apr_size_t *outlen);

#ifdef __cplusplus
}
#endif

#endif /* REENCRYPT_SEAL_H */
