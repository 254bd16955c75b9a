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

/* Building OCSP responses, as a backend would staple them, for the unit
 * tests and the fuzz seeds of the staple check. */

#ifndef OCSP_BUILD_H
#define OCSP_BUILD_H

#include <limits.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "x509_ext.h"

/* No nextUpdate in the response */
#define OCSP_NO_NEXT LONG_MIN

typedef struct {
    X509 *leaf;              /* the certificate the status is about */
    X509 *issuer;            /* its issuer (for the certificate ID) */
    X509 *signer;            /* who signs the response */
    EVP_PKEY *signer_key;
    int include_signer;      /* the signer's certificate in the response */
    int status;              /* V_OCSP_CERTSTATUS_GOOD, _REVOKED, _UNKNOWN */
    int reason;              /* CRL reason of a revoked status, -1 none */
    long this_off;           /* thisUpdate, seconds from now */
    long next_off;           /* nextUpdate, seconds from now, or
                              * OCSP_NO_NEXT */
    time_t now;
    const EVP_MD *id_md;     /* hash of the certificate ID; NULL: SHA-1 */
    int resp_status;         /* OCSP_RESPONSE_STATUS_*: not SUCCESSFUL
                              * makes a response without a body */
} ocsp_spec_t;

/* The DER of the response (OPENSSL_free it), its length in *len; NULL
 * on failure. */
static inline unsigned char *ocsp_build(const ocsp_spec_t *s, int *len)
{
    OCSP_RESPONSE *resp = NULL;
    OCSP_BASICRESP *bs = NULL;
    OCSP_CERTID *id = NULL;
    ASN1_GENERALIZEDTIME *thisupd = NULL, *nextupd = NULL, *revtime = NULL;
    unsigned char *der = NULL;

    *len = 0;
    if (s->resp_status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        resp = OCSP_response_create(s->resp_status, NULL);
        goto encode;
    }
    if (!(bs = OCSP_BASICRESP_new())
        || !(id = OCSP_cert_to_id(s->id_md ? s->id_md : EVP_sha1(),
                                  s->leaf, s->issuer))
        || !(thisupd = ASN1_GENERALIZEDTIME_set(NULL,
                                                s->now + s->this_off))) {
        goto done;
    }
    if (s->next_off != OCSP_NO_NEXT
        && !(nextupd = ASN1_GENERALIZEDTIME_set(NULL,
                                                s->now + s->next_off))) {
        goto done;
    }
    if (s->status == V_OCSP_CERTSTATUS_REVOKED
        && !(revtime = ASN1_GENERALIZEDTIME_set(NULL, s->now - 86400))) {
        goto done;
    }
    if (!OCSP_basic_add1_status(bs, id, s->status, s->reason, revtime,
                                thisupd, nextupd)
        || !OCSP_basic_sign(bs, s->signer, s->signer_key, EVP_sha256(),
                            NULL, s->include_signer ? 0 : OCSP_NOCERTS)) {
        goto done;
    }
    resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);

encode:
    if (resp) {
        int n = i2d_OCSP_RESPONSE(resp, &der);

        *len = n > 0 ? n : 0;
        if (n <= 0) {
            der = NULL;
        }
    }
done:
    OCSP_RESPONSE_free(resp);
    OCSP_BASICRESP_free(bs);
    OCSP_CERTID_free(id);
    ASN1_GENERALIZEDTIME_free(thisupd);
    ASN1_GENERALIZEDTIME_free(nextupd);
    ASN1_GENERALIZEDTIME_free(revtime);
    return der;
}

/* A certificate for cn with key, signed by issuer (issuer_key); NULL
 * issuer: self-signed. eku: an extendedKeyUsage value in OpenSSL's
 * syntax (e.g. "OCSPSigning"), or NULL. Valid from now + nb_off to now +
 * na_off. */
static inline X509 *ocsp_cert(const char *cn, EVP_PKEY *key,
                              X509 *issuer, EVP_PKEY *issuer_key,
                              const char *eku, long serial, time_t now,
                              long nb_off, long na_off)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();

    if (!x || !name
        || !X509_set_version(x, 2)
        || !ASN1_INTEGER_set(X509_get_serialNumber(x), serial)
        || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       (const unsigned char *)cn, -1, -1, 0)
        || !X509_set_subject_name(x, name)
        || !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer)
                                           : name)
        || !X509_time_adj_ex(X509_getm_notBefore(x), 0, nb_off, &now)
        || !X509_time_adj_ex(X509_getm_notAfter(x), 0, na_off, &now)
        || !X509_set_pubkey(x, key)
        || !x509_ext_add(x, issuer ? issuer : x, NID_basic_constraints,
                         "critical,CA:FALSE")
        || (eku && !x509_ext_add(x, issuer ? issuer : x, NID_ext_key_usage,
                                 eku))
        || !X509_sign(x, issuer ? issuer_key : key, EVP_sha256())) {
        X509_free(x);
        x = NULL;
    }
    X509_NAME_free(name);
    return x;
}

#endif /* OCSP_BUILD_H */
