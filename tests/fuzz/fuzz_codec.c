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
 * libFuzzer target for the decoder of session cache entries
 * (reencrypt_codec.c), which reads what memcached or redis return. The
 * first byte picks how the rest is taken (modulo 3):
 *   0  an entry as stored without ReencryptSessionCacheKey;
 *   1  a sealed entry: opened with reencrypt_unseal under the fixed test
 *      key below and the cache key "rs:fuzz", then decoded;
 *   2  an entry that this target seals and opens again before decoding:
 *      sealing must hand the decoder the very same bytes.
 * Besides "does not crash" (with ASan and UBSan), it checks what the
 * decoder promises: a failure leaves no session and no chain; a success
 * gives 1 to REENCRYPT_CODEC_CHAIN_MAX certificates, times within 2^31
 * seconds of now, and an entry that encodes again to one that decodes
 * to the same session, chain and times.
 * Seeds (tests/fuzz/seeds/codec) are real entries: tests/fuzz/make_seeds.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "reencrypt_codec.h"
#include "reencrypt_seal.h"
#include "fuzz_target.h"

/* the fixed test key of the fuzzers and of tests/fuzz/make_seeds.c */
#define FUZZ_SEAL_KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
#define FUZZ_CACHE_KEY "rs:fuzz"

static reencrypt_seal_keys_t keys;

static void fuzz_init(void)
{
    CHECK(!reencrypt_seal_keys_parse(pool, FUZZ_SEAL_KEY,
                                     sizeof(FUZZ_SEAL_KEY) - 1, &keys));
}

static unsigned char *session_der(SSL_SESSION *sess, int *len)
{
    unsigned char *der = NULL;

    *len = i2d_SSL_SESSION(sess, &der);
    CHECK(*len > 0);
    return der;
}

static int near_now(apr_time_t t, apr_time_t now)
{
    apr_int64_t d = (apr_int64_t)apr_time_sec(t)
                    - (apr_int64_t)apr_time_sec(now);

    /* decode reads its own clock, a moment after now */
    return d >= -0x80000000LL - 5 && d <= 0x80000000LL + 5;
}

/* Decode len bytes; returns whether they decoded */
static int check_decode(const unsigned char *bytes, size_t len)
{
    /* a copy of exactly len bytes: a read past them shows under ASan */
    unsigned char *copy = malloc(len ? len : 1);
    SSL_SESSION *sess = (SSL_SESSION *)pool, *again = NULL;
    STACK_OF(X509) *chain = (STACK_OF(X509) *)pool, *chain2 = NULL;
    apr_time_t now = apr_time_now(), validated = 0, expiry = 0, v2, e2;
    unsigned char *blob, *der1, *der2;
    unsigned int blen = 0;
    int ok, n, i, l1, l2;

    CHECK(copy);
    memcpy(copy, bytes, len);
    ok = reencrypt_codec_decode(pool, copy, (unsigned int)len, &sess, &chain,
                                &validated, &expiry);
    free(copy);
    if (!ok) {
        CHECK(sess == NULL && chain == NULL);
        return 0;
    }
    CHECK(sess && chain);
    n = sk_X509_num(chain);
    CHECK(n >= 1 && n <= REENCRYPT_CODEC_CHAIN_MAX);
    CHECK(near_now(validated, now) && near_now(expiry, now));

    /* what decoded encodes again, and that decodes to the same */
    blob = reencrypt_codec_encode(pool, sess, chain, validated, expiry,
                                  &blen);
    if (blob) {
        CHECK(reencrypt_codec_decode(pool, blob, blen, &again, &chain2, &v2,
                                     &e2));
        CHECK(v2 == validated && e2 == expiry);
        CHECK(sk_X509_num(chain2) == n);
        for (i = 0; i < n; i++) {
            CHECK(!X509_cmp(sk_X509_value(chain, i),
                            sk_X509_value(chain2, i)));
        }
        der1 = session_der(sess, &l1);
        der2 = session_der(again, &l2);
        CHECK(l1 == l2 && !memcmp(der1, der2, (size_t)l1));
        OPENSSL_free(der1);
        OPENSSL_free(der2);
        SSL_SESSION_free(again);
    }
    else {
        /* only an entry that grew past the limit is not made again */
        CHECK(len > REENCRYPT_CODEC_MAX / 2);
    }
    SSL_SESSION_free(sess);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *aad = (const unsigned char *)FUZZ_CACHE_KEY;
    apr_size_t aadlen = sizeof(FUZZ_CACHE_KEY) - 1, olen = 0, slen = 0;
    unsigned char *open, *sealed;

    if (size < 1 || size - 1 > REENCRYPT_CODEC_MAX + REENCRYPT_SEAL_OVERHEAD) {
        return 0;
    }
    switch (data[0] % 3) {
    case 0:
        check_decode(data + 1, size - 1);
        break;
    case 1:
        open = reencrypt_unseal(pool, &keys, aad, aadlen, data + 1, size - 1,
                                &olen);
        if (open) {
            CHECK(olen + REENCRYPT_SEAL_OVERHEAD == size - 1);
            check_decode(open, olen);
        }
        break;
    default: {
        int plain_ok;

        sealed = reencrypt_seal(pool, &keys, aad, aadlen, data + 1, size - 1,
                                &slen);
        CHECK(sealed && slen == size - 1 + REENCRYPT_SEAL_OVERHEAD);
        open = reencrypt_unseal(pool, &keys, aad, aadlen, sealed, slen,
                                &olen);
        CHECK(open && olen == size - 1 && !memcmp(open, data + 1, olen));
        plain_ok = check_decode(data + 1, size - 1);
        CHECK(check_decode(open, olen) == plain_ok);
        /* and never under another cache key */
        CHECK(!reencrypt_unseal(pool, &keys, aad, aadlen - 1, sealed, slen,
                                &olen));
        break;
    }
    }
    apr_pool_clear(pool);
    return 0;
}
