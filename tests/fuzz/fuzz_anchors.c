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
 * libFuzzer target for the trust-anchor file loader of
 * ReencryptCACertificateFile (reencrypt_anchors_parse, which
 * reencrypt_anchors_load runs on the file's bytes): any bytes, PEM or
 * not. Besides "does not crash" (with ASan and UBSan), it checks what
 * the loader promises: an error names the directive and the file; a
 * success holds at least one certificate, in a store, with the SHA-256 of
 * the very bytes read.
 * Seeds (tests/fuzz/seeds/anchors) are real certificates in PEM and DER:
 * tests/fuzz/make_seeds.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "reencrypt_verify.h"
#include "fuzz_target.h"

#define DIRECTIVE "ReencryptCACertificateFile"
#define PATH "/etc/anchors.pem"

static void fuzz_init(void)
{
    /* nothing but the pool */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const reencrypt_anchors_t *a = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const char *err;
    /* exactly size bytes: a read past them shows under ASan */
    char *copy = malloc(size ? size : 1);

    CHECK(copy);
    memcpy(copy, data, size);
    err = reencrypt_anchors_parse(pool, DIRECTIVE, PATH, copy, size, &a);
    free(copy);
    if (err) {
        CHECK(!strncmp(err, DIRECTIVE ": ", sizeof(DIRECTIVE) + 1));
        CHECK(strstr(err, "'" PATH "'") != NULL);
        CHECK(a == NULL);
    }
    else {
        CHECK(a && a->store && a->count >= 1);
        CHECK(!strcmp(a->path, PATH));
        CHECK(sk_X509_OBJECT_num(X509_STORE_get0_objects(a->store)) >= 1);
        CHECK(EVP_Digest(data, size, md, &mdlen, EVP_sha256(), NULL));
        CHECK(mdlen == sizeof(a->digest) && !memcmp(md, a->digest, mdlen));
    }
    ERR_clear_error();
    apr_pool_clear(pool);
    return 0;
}
