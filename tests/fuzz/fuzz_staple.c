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
 * libFuzzer target for the check of an OCSP staple
 * (reencrypt_staple_check): the bytes a backend staples, about the leaf
 * of the fixed PKI of staple_pki.h, at STAPLE_PKI_NOW. The first byte
 * selects the clock skew (bit 0: 300 s, else none); the rest is the
 * staple, with no byte after it. Besides "does not crash" (with ASan and
 * UBSan), it checks what the check promises: a state a handshake can
 * give (never resumed or not-checked), a line for the log and the
 * expected text; a good, revoked or unknown staple has its times, a
 * thisUpdate not after now plus the skew and a nextUpdate not before
 * now less the skew; no bytes at all is absent; and the verdict under
 * Verify and Require agrees with the state.
 * Seeds (tests/fuzz/seeds/staple, made by make_seeds) are responses
 * about that leaf: good from the CA and from its responder, revoked,
 * unknown, past its nextUpdate, without nextUpdate, with a SHA-256
 * certificate ID, and tryLater.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "reencrypt_staple.h"
#include "staple_pki.h"
#include "fuzz_target.h"

static X509 *ca, *leaf;

static void fuzz_init(void)
{
    ca = staple_pki_cert(STAPLE_PKI_CA);
    leaf = staple_pki_cert(STAPLE_PKI_LEAF);
    CHECK(ca && leaf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reencrypt_staple_t out;
    reencrypt_reason_e verify, require;
    apr_int64_t skew;
    apr_pool_t *p;
    unsigned char *copy;
    size_t n;

    if (size < 1) {
        return 0;
    }
    skew = (data[0] & 1) ? 300 : 0;
    n = size - 1;
    /* exactly n bytes, no byte after them: a read past them shows */
    copy = malloc(n ? n : 1);
    CHECK(copy);
    memcpy(copy, data + 1, n);
    apr_pool_create(&p, pool);
    reencrypt_staple_check(p, n ? copy : NULL, n, leaf, ca, STAPLE_PKI_NOW,
                           skew, &out);
    free(copy);

    CHECK(out.state != REENCRYPT_STAPLE_RESUMED
          && out.state != REENCRYPT_STAPLE_NOT_CHECKED);
    CHECK(out.seen && *out.seen && out.expected && *out.expected);
    if (!n) {
        CHECK(out.state == REENCRYPT_STAPLE_ABSENT);
    }
    if (out.state == REENCRYPT_STAPLE_GOOD
        || out.state == REENCRYPT_STAPLE_REVOKED
        || out.state == REENCRYPT_STAPLE_UNKNOWN) {
        CHECK(out.this_update > 0);
        CHECK((apr_int64_t)out.this_update
              <= (apr_int64_t)STAPLE_PKI_NOW + skew);
        CHECK(!out.next_update || (apr_int64_t)out.next_update
                                  >= (apr_int64_t)STAPLE_PKI_NOW - skew);
    }
    if (out.state == REENCRYPT_STAPLE_EXPIRED) {
        CHECK(out.next_update && (apr_int64_t)out.next_update
                                 < (apr_int64_t)STAPLE_PKI_NOW - skew);
    }
    verify = reencrypt_staple_reason(REENCRYPT_STAPLING_VERIFY, out.state);
    require = reencrypt_staple_reason(REENCRYPT_STAPLING_REQUIRE, out.state);
    CHECK((verify == REENCRYPT_OK) == (out.state == REENCRYPT_STAPLE_GOOD
                                       || out.state == REENCRYPT_STAPLE_UNKNOWN
                                       || out.state == REENCRYPT_STAPLE_ABSENT));
    CHECK((require == REENCRYPT_OK) == (out.state == REENCRYPT_STAPLE_GOOD));
    apr_pool_destroy(p);
    return 0;
}
