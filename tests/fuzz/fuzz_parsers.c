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
 * rules of reencrypt_policy.c. The first byte picks the parser, the
 * rest is the argument as httpd would pass it (a NUL-terminated
 * string). Besides "does not crash" (with ASan and UBSan), it checks
 * properties a parser must keep: an accepted value is in range, an
 * error names the directive, an accepted name round-trips.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "reencrypt_policy.h"

static apr_pool_t *pool;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    return 0;
}

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static int starts_with(const char *s, const char *prefix)
{
    return s && !strncmp(s, prefix, strlen(prefix));
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
