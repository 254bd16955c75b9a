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

/*
 * reencrypt_seal.c: the entries of a shared session cache, sealed with
 * AES-256-GCM under a key the proxies of a fleet share. Whoever can read
 * the cache (memcached, redis on a network) then learns no session
 * secret, and whoever can write to it cannot plant a session: an entry
 * that does not open under one of the keys, or that was sealed for
 * another cache key, is not used. Pure: APR and libcrypto only.
 */

#include <string.h>

#include <apr_strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "reencrypt_policy.h"
#include "reencrypt_seal.h"

/* ------------------------------------------------------------------ */
/* Key files                                                           */

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v'
           || ch == '\f';
}

const char *reencrypt_seal_keys_parse(apr_pool_t *p, const char *text,
                                      apr_size_t len,
                                      reencrypt_seal_keys_t *keys)
{
    const char *at = text, *end = text + len;
    int line = 0;

    memset(keys, 0, sizeof(*keys));
    while (at < end) {
        const char *eol = memchr(at, '\n', (apr_size_t)(end - at));
        const char *b = at, *e = eol ? eol : end;
        unsigned char buf[REENCRYPT_SEAL_KEY_LEN + 16];
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        char *word;
        int n;

        line++;
        at = eol ? eol + 1 : end;
        while (b < e && is_blank(*b)) {
            b++;
        }
        while (e > b && is_blank(e[-1])) {
            e--;
        }
        if (b == e || *b == '#') {
            continue;
        }
        if (memchr(b, '\0', (apr_size_t)(e - b))) {
            return apr_psprintf(p, "line %d: not a text line", line);
        }
        if (keys->nkeys == REENCRYPT_SEAL_MAX_KEYS) {
            return apr_psprintf(p, "line %d: more than %d keys", line,
                                REENCRYPT_SEAL_MAX_KEYS);
        }
        word = apr_pstrmemdup(p, b, (apr_size_t)(e - b));
        n = reencrypt_base64_decode(word, buf, sizeof(buf));
        OPENSSL_cleanse(word, strlen(word));
        if (n != REENCRYPT_SEAL_KEY_LEN) {
            OPENSSL_cleanse(buf, sizeof(buf));
            return apr_psprintf(p, "line %d: not the base64 of %d bytes "
                                "(make a key with: openssl rand -base64 %d)",
                                line, REENCRYPT_SEAL_KEY_LEN,
                                REENCRYPT_SEAL_KEY_LEN);
        }
        memcpy(keys->key[keys->nkeys], buf, REENCRYPT_SEAL_KEY_LEN);
        OPENSSL_cleanse(buf, sizeof(buf));
        if (!EVP_Digest(keys->key[keys->nkeys], REENCRYPT_SEAL_KEY_LEN, md,
                        &mdlen, EVP_sha256(), NULL)) {
            return "cannot compute a key's digest";
        }
        memcpy(keys->id[keys->nkeys], md, REENCRYPT_SEAL_ID_LEN);
        keys->nkeys++;
    }
    if (keys->nkeys == 0) {
        return "no key in it (make one with: openssl rand -base64 32)";
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Sealing and opening                                                 */

#define HEAD_LEN (4 + REENCRYPT_SEAL_ID_LEN + REENCRYPT_SEAL_NONCE_LEN)

/* One AES-256-GCM operation; the header (magic, key id, nonce) and aad
 * are authenticated, in and out are len bytes. tag is written when
 * sealing, checked when opening. */
static int gcm(int seal, const unsigned char *key, const unsigned char *head,
               const unsigned char *aad, apr_size_t aadlen,
               const unsigned char *in, apr_size_t len, unsigned char *out,
               unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    const unsigned char *nonce = head + 4 + REENCRYPT_SEAL_ID_LEN;
    int outl = 0, aadl = 0, finl = 0, ok = 0;

    if (!ctx || len > (apr_size_t)0x7fffffff || aadlen > 0x7fffffff) {
        goto done;
    }
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, seal) != 1
        || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN,
                               REENCRYPT_SEAL_NONCE_LEN, NULL) != 1
        || EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, seal) != 1
        || EVP_CipherUpdate(ctx, NULL, &aadl, head, HEAD_LEN) != 1
        || (aadlen && EVP_CipherUpdate(ctx, NULL, &aadl, aad,
                                       (int)aadlen) != 1)
        || (len && EVP_CipherUpdate(ctx, out, &outl, in, (int)len) != 1)) {
        goto done;
    }
    if (!seal && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG,
                                     REENCRYPT_SEAL_TAG_LEN, tag) != 1) {
        goto done;
    }
    if (EVP_CipherFinal_ex(ctx, out + outl, &finl) != 1) {
        goto done;          /* when opening: the tag does not match */
    }
    if (seal && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG,
                                    REENCRYPT_SEAL_TAG_LEN, tag) != 1) {
        goto done;
    }
    ok = 1;
done:
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

unsigned char *reencrypt_seal(apr_pool_t *p,
                              const reencrypt_seal_keys_t *keys,
                              const unsigned char *aad, apr_size_t aadlen,
                              const unsigned char *plain, apr_size_t len,
                              apr_size_t *outlen)
{
    unsigned char *out, *b;

    if (!keys || keys->nkeys < 1) {
        return NULL;
    }
    b = out = apr_palloc(p, len + REENCRYPT_SEAL_OVERHEAD);
    memcpy(b, REENCRYPT_SEAL_MAGIC, 4);
    b += 4;
    memcpy(b, keys->id[0], REENCRYPT_SEAL_ID_LEN);
    b += REENCRYPT_SEAL_ID_LEN;
    if (RAND_bytes(b, REENCRYPT_SEAL_NONCE_LEN) != 1) {
        return NULL;
    }
    b += REENCRYPT_SEAL_NONCE_LEN;
    if (!gcm(1, keys->key[0], out, aad, aadlen, plain, len, b, b + len)) {
        return NULL;
    }
    *outlen = len + REENCRYPT_SEAL_OVERHEAD;
    return out;
}

unsigned char *reencrypt_unseal(apr_pool_t *p,
                                const reencrypt_seal_keys_t *keys,
                                const unsigned char *aad, apr_size_t aadlen,
                                const unsigned char *sealed, apr_size_t len,
                                apr_size_t *outlen)
{
    unsigned char tag[REENCRYPT_SEAL_TAG_LEN];
    apr_size_t clen;
    unsigned char *out;
    int i;

    if (!keys || len < REENCRYPT_SEAL_OVERHEAD
        || memcmp(sealed, REENCRYPT_SEAL_MAGIC, 4)) {
        return NULL;
    }
    clen = len - REENCRYPT_SEAL_OVERHEAD;
    out = apr_palloc(p, clen + 1);
    /* only read here; gcm() writes it when sealing, hence the copy */
    memcpy(tag, sealed + HEAD_LEN + clen, sizeof(tag));
    for (i = 0; i < keys->nkeys; i++) {
        if (!memcmp(sealed + 4, keys->id[i], REENCRYPT_SEAL_ID_LEN)
            && gcm(0, keys->key[i], sealed, aad, aadlen, sealed + HEAD_LEN,
                   clen, out, tag)) {
            *outlen = clen;
            return out;
        }
    }
    OPENSSL_cleanse(out, clen);
    return NULL;
}
