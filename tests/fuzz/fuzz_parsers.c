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
 * libFuzzer target for the directive argument parsers and the name
 * rules of reencrypt_policy.c, and for reencrypt_seal.c: the key file
 * parser and the opening of session cache entries. The first byte picks
 * the target (0xf0 and above: reencrypt_seal.c; 0xe0 to 0xef: the reader
 * of a health check's request head), the rest is the input: an argument
 * as httpd would pass it (a NUL-terminated string), a key file, a cache
 * entry, or the bytes written on a backend connection. Besides "does not crash" (with ASan and
 * UBSan), it checks properties a parser must keep: an accepted value is
 * in range, an error names the directive, an accepted name round-trips,
 * no entry opens unless it was sealed under the key and cache key.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "reencrypt_policy.h"
#include "reencrypt_seal.h"
#include "fuzz_target.h"

static void fuzz_init(void)
{
    /* nothing but the pool */
}

static int starts_with(const char *s, const char *prefix)
{
    return s && !strncmp(s, prefix, strlen(prefix));
}

/* Selector bytes 0xf0 and above: the key file parser, and the opening
 * of session cache entries, which may come from a cache on the network:
 * never a crash, and nothing opens that was not sealed under the key. */
static void fuzz_seal(uint8_t selector, const uint8_t *data, size_t size)
{
    static const char key_text[] =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
    reencrypt_seal_keys_t keys;
    apr_size_t olen = 0;
    const char *err;

    if (selector < 0xf8) {
        err = reencrypt_seal_keys_parse(pool, (const char *)data, size,
                                        &keys);
        CHECK(err ? (keys.nkeys >= 0
                     && keys.nkeys <= REENCRYPT_SEAL_MAX_KEYS)
                  : (keys.nkeys >= 1
                     && keys.nkeys <= REENCRYPT_SEAL_MAX_KEYS));
        return;
    }
    CHECK(!reencrypt_seal_keys_parse(pool, key_text, sizeof(key_text) - 1,
                                     &keys));
    /* an input from the fuzzer was not sealed under this key: it must
     * not open, whatever its header says */
    CHECK(!reencrypt_unseal(pool, &keys, (const unsigned char *)"rs:k", 4,
                            data, size, &olen));
    if (size > 0) {
        /* and what is sealed opens, under the same cache key only */
        apr_size_t slen = 0;
        unsigned char *sealed = reencrypt_seal(pool, &keys, data, 1, data,
                                               size, &slen);
        unsigned char *open;

        CHECK(sealed && slen == size + REENCRYPT_SEAL_OVERHEAD);
        open = reencrypt_unseal(pool, &keys, data, 1, sealed, slen, &olen);
        CHECK(open && olen == size && !memcmp(open, data, size));
        CHECK(!reencrypt_unseal(pool, &keys, (const unsigned char *)"", 0,
                                sealed, slen, &olen));
    }
}

/* Selector bytes 0xe0 to 0xef: the head of a request written on a
 * backend connection, in a buffer of its exact size (no NUL after it),
 * so that a read past its end is caught. A head that is recognised
 * gives a host without space or control character and a port in
 * 1..65535, and ends with an empty line. */
static void fuzz_check_head(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    const char *host = NULL, *q;
    unsigned int port = 0;

    CHECK(copy);
    if (size) {
        memcpy(copy, data, size);
    }
    if (reencrypt_parse_check_head(pool, copy, size, &host, &port)) {
        CHECK(host && *host);
        for (q = host; *q; q++) {
            CHECK(*q > ' ' && *q < 0x7f);
        }
        CHECK(port >= 1 && port <= 65535);
        CHECK(size >= 4);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *arg, *err, *name = NULL, *sep;
    unsigned char buf[64];
    int iv = -7;
    apr_int64_t dur = -7;
    reencrypt_sni_mode_e mode = REENCRYPT_SNI_UNSET;
    apr_array_header_t *pins;

    if (size < 1) {
        return 0;
    }
    arg = apr_pstrmemdup(pool, (const char *)data + 1, size - 1);

    if (data[0] >= 0xf0) {
        fuzz_seal(data[0], data + 1, size - 1);
        apr_pool_clear(pool);
        return 0;
    }
    if (data[0] >= 0xe0) {
        fuzz_check_head(data + 1, size - 1);
        apr_pool_clear(pool);
        return 0;
    }
    switch (data[0] % 9) {
    case 0:
        err = reencrypt_parse_int(pool, "ReencryptVerifyDepth", arg,
                                  REENCRYPT_DEPTH_MIN, REENCRYPT_DEPTH_MAX,
                                  &iv);
        CHECK(err ? starts_with(err, "ReencryptVerifyDepth: ")
                  : (iv >= REENCRYPT_DEPTH_MIN && iv <= REENCRYPT_DEPTH_MAX));
        break;
    case 1:
        err = reencrypt_parse_sni(pool, arg, &mode, &name);
        CHECK(err ? starts_with(err, "ReencryptSNI: ")
                  : (mode != REENCRYPT_SNI_UNSET));
        if (!err && mode == REENCRYPT_SNI_NAME) {
            CHECK(reencrypt_is_dns_name(name));
            CHECK(reencrypt_ip_parse(name, buf) == 0);
        }
        break;
    case 2:
        err = reencrypt_parse_verify_name(pool, arg, &name);
        CHECK(err ? starts_with(err, "ReencryptVerifyName: ")
                  : (reencrypt_is_dns_name(name)
                     || reencrypt_ip_parse(name, buf) > 0));
        break;
    case 3:
        err = reencrypt_parse_duration(pool, "ReencryptClockSkew", arg, &dur);
        CHECK(err ? starts_with(err, "ReencryptClockSkew: ")
                  : (dur >= 0 && dur <= REENCRYPT_DURATION_MAX));
        break;
    case 4:
        pins = apr_array_make(pool, 2, sizeof(reencrypt_pin_t));
        err = reencrypt_parse_pins(pool, arg, pins);
        CHECK(err ? starts_with(err, "ReencryptPin: ") : pins->nelts > 0);
        if (!err) {
            /* every accepted pin formats back to a pin that parses */
            int i;

            for (i = 0; i < pins->nelts; i++) {
                apr_array_header_t *again = apr_array_make(pool, 1,
                                                sizeof(reencrypt_pin_t));
                const char *s = reencrypt_pin_str(pool,
                                    &APR_ARRAY_IDX(pins, i, reencrypt_pin_t));

                CHECK(reencrypt_parse_pins(pool, s, again) == NULL);
                CHECK(!memcmp(again->elts, &APR_ARRAY_IDX(pins, i,
                              reencrypt_pin_t), sizeof(reencrypt_pin_t)));
            }
        }
        break;
    case 5:
        err = reencrypt_parse_flag(pool, "ReencryptEngine", arg, &iv);
        CHECK(err ? starts_with(err, "ReencryptEngine: ")
                  : (iv == 0 || iv == 1));
        break;
    case 6: {
        int n = reencrypt_base64_decode(arg, buf, sizeof(buf));

        if (n >= 0) {
            /* canonical base64 round-trips exactly */
            CHECK(!strcmp(reencrypt_base64_encode(pool, buf, (apr_size_t)n),
                          arg));
        }
        break;
    }
    case 7:
        /* "pattern\nhost" */
        sep = strchr(arg, '\n');
        if (sep) {
            const char *pattern = apr_pstrmemdup(pool, arg,
                                                 (apr_size_t)(sep - arg));
            int m = reencrypt_dns_match(pattern, sep + 1);

            /* a match without a wildcard is a case-insensitive equality
             * up to one final dot */
            if (m && !strchr(pattern, '*')) {
                CHECK(reencrypt_dns_match(sep + 1, pattern));
            }
        }
        break;
    default:
        (void)reencrypt_ip_parse(arg, buf);
        (void)reencrypt_is_dns_name(arg);
        break;
    }
    apr_pool_clear(pool);
    return 0;
}
