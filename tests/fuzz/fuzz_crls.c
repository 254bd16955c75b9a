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
 * libFuzzer target for the CRL file loader of ReencryptCARevocationFile
 * (reencrypt_crl_file_parse, which reencrypt_crl_file_load runs on the
 * file's bytes): any bytes, PEM or DER. Besides "does not crash" (with
 * ASan and UBSan), it checks what the loader promises: an error names
 * the directive and the file and gives nothing back; a success holds at
 * least one CRL, with the SHA-256 of the very bytes read, and a scope's
 * set made of it holds the same CRLs.
 * Seeds (tests/fuzz/seeds/crls) are real CRLs in PEM and DER, one and
 * several per file.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "reencrypt_verify.h"
#include "fuzz_target.h"

#define DIRECTIVE "ReencryptCARevocationFile"
#define PATH "/etc/backend.crl"

static void fuzz_init(void)
{
    /* nothing but the pool */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const reencrypt_crl_file_t *f = NULL;
    const reencrypt_crls_t *set;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const char *err;
    apr_pool_t *p;
    /* exactly size bytes, no NUL after them: a read past them shows */
    char *copy = malloc(size ? size : 1);

    CHECK(copy);
    memcpy(copy, data, size);
    apr_pool_create(&p, pool);
    err = reencrypt_crl_file_parse(p, DIRECTIVE, PATH, copy, size, &f);
    free(copy);
    if (err) {
        CHECK(!strncmp(err, DIRECTIVE ": ", sizeof(DIRECTIVE) + 1));
        CHECK(strstr(err, "'" PATH "'") != NULL);
    }
    else {
        CHECK(f && f->crls && sk_X509_CRL_num(f->crls) >= 1);
        CHECK(!strcmp(f->path, PATH));
        CHECK(EVP_Digest(data, size, md, &mdlen, EVP_sha256(), NULL));
        CHECK(mdlen == sizeof(f->digest) && !memcmp(md, f->digest, mdlen));
        set = reencrypt_crls_add(p, NULL, f, "fuzz:1");
        CHECK(set && sk_X509_CRL_num(set->all) == sk_X509_CRL_num(f->crls));
    }
    apr_pool_destroy(p);
    return 0;
}
