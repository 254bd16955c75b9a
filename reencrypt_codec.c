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
 * reencrypt_codec.c: the value of a session cache entry, as bytes and
 * back. The decoder reads what a cache returns, which may be memcached
 * or redis on a network: every length is checked against what is left
 * before it is used, and nothing may be left over. Pure: APR and
 * OpenSSL only.
 */

#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "reencrypt_codec.h"

static void put_u32(unsigned char *b, apr_uint32_t v)
{
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

static apr_uint32_t get_u32(const unsigned char *b)
{
    return ((apr_uint32_t)b[0] << 24) | ((apr_uint32_t)b[1] << 16)
           | ((apr_uint32_t)b[2] << 8) | (apr_uint32_t)b[3];
}

/* "RES3" | u32 validated_at | u32 expiry | u32 len | session DER | u32 n |
 * (u32 len | cert DER) * n
 * validated_at: when the chain was last validated in a full handshake;
 * expiry: when the session stops being usable, by the timeout of the
 * scope that stored it (both in seconds since the epoch, modulo 2^32).
 * Sealed (ReencryptSessionCacheKey), both are authenticated: a sealed
 * entry written back after its time is still refused. */
unsigned char *reencrypt_codec_encode(apr_pool_t *p, SSL_SESSION *sess,
                                      STACK_OF(X509) *chain,
                                      apr_time_t validated,
                                      apr_time_t expiry, unsigned int *len)
{
    int slen = i2d_SSL_SESSION(sess, NULL), i, n = sk_X509_num(chain);
    apr_size_t total = 4 + 4 + 4 + 4 + (apr_size_t)slen + 4;
    unsigned char *blob, *b;

    if (slen <= 0) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        int clen = i2d_X509(sk_X509_value(chain, i), NULL);

        if (clen <= 0) {
            return NULL;
        }
        total += 4 + (apr_size_t)clen;
    }
    if (total > REENCRYPT_CODEC_MAX) {
        return NULL;
    }
    b = blob = apr_palloc(p, total);
    memcpy(b, REENCRYPT_CODEC_MAGIC, 4);
    b += 4;
    put_u32(b, (apr_uint32_t)apr_time_sec(validated));
    b += 4;
    put_u32(b, (apr_uint32_t)apr_time_sec(expiry));
    b += 4;
    put_u32(b, (apr_uint32_t)slen);
    b += 4;
    i2d_SSL_SESSION(sess, &b);
    put_u32(b, (apr_uint32_t)n);
    b += 4;
    for (i = 0; i < n; i++) {
        X509 *x = sk_X509_value(chain, i);

        put_u32(b, (apr_uint32_t)i2d_X509(x, NULL));
        b += 4;
        i2d_X509(x, &b);
    }
    *len = (unsigned int)total;
    return blob;
}

static apr_status_t chain_cleanup(void *data)
{
    sk_X509_pop_free((STACK_OF(X509) *)data, X509_free);
    return APR_SUCCESS;
}

/* Seconds modulo 2^32 back to a time near now */
apr_time_t reencrypt_codec_u32_time(apr_uint32_t v, apr_time_t now)
{
    apr_int64_t nows = (apr_int64_t)apr_time_sec(now);
    apr_int64_t t = (nows & ~(apr_int64_t)0xffffffff) | (apr_int64_t)v;

    if (t > nows + 0x80000000LL) {
        t -= 0x100000000LL;
    }
    else if (t < nows - 0x80000000LL) {
        t += 0x100000000LL;
    }
    return apr_time_from_sec((apr_time_t)t);
}

/* Parse a blob; on success (the whole of it, nothing left over) *sess
 * must be freed by the caller and *chain is tied to pool p; on failure
 * both are NULL. */
int reencrypt_codec_decode(apr_pool_t *p, const unsigned char *blob,
                           unsigned int len, SSL_SESSION **sess,
                           STACK_OF(X509) **chain, apr_time_t *validated,
                           apr_time_t *expiry)
{
    const unsigned char *b = blob, *end = blob + len, *q;
    apr_time_t now = apr_time_now();
    apr_uint32_t slen, n, i;

    *sess = NULL;
    *chain = NULL;
    if (len < 20 || memcmp(b, REENCRYPT_CODEC_MAGIC, 4)) {
        return 0;
    }
    b += 4;
    *validated = reencrypt_codec_u32_time(get_u32(b), now);
    b += 4;
    *expiry = reencrypt_codec_u32_time(get_u32(b), now);
    b += 4;
    slen = get_u32(b);
    b += 4;
    if (slen > (apr_uint32_t)(end - b) - 4) {
        return 0;
    }
    q = b;
    *sess = d2i_SSL_SESSION(NULL, &q, (long)slen);
    if (!*sess || q != b + slen) {
        goto bad;
    }
    b += slen;
    n = get_u32(b);
    b += 4;
    if (n == 0 || n > REENCRYPT_CODEC_CHAIN_MAX
        || !(*chain = sk_X509_new_null())) {
        goto bad;
    }
    apr_pool_cleanup_register(p, *chain, chain_cleanup,
                              apr_pool_cleanup_null);
    for (i = 0; i < n; i++) {
        apr_uint32_t clen;
        X509 *x;

        if ((apr_size_t)(end - b) < 4) {
            goto bad;
        }
        clen = get_u32(b);
        b += 4;
        if (clen > (apr_uint32_t)(end - b)) {
            goto bad;
        }
        q = b;
        x = d2i_X509(NULL, &q, (long)clen);
        if (!x || q != b + clen || !sk_X509_push(*chain, x)) {
            X509_free(x);
            goto bad;
        }
        b += clen;
    }
    if (b == end) {
        return 1;
    }

bad:
    /* the chain goes with p */
    SSL_SESSION_free(*sess);
    *sess = NULL;
    *chain = NULL;
    return 0;
}
