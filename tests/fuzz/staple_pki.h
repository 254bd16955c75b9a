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

/* A fixed test PKI for the staple fuzz target and its seeds, so that the
 * seeds (made by make_seeds) are about the certificate the target
 * checks: a CA, its leaf "fuzz.test" (serial 4097) and a responder it
 * certified for OCSP signing (serial 4098), valid 2026-12-03 to
 * 2036-11-30. The keys are test keys, published here, good for nothing
 * else. STAPLE_PKI_NOW is the time the target checks at. */

#ifndef STAPLE_PKI_H
#define STAPLE_PKI_H

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define STAPLE_PKI_NOW ((time_t)1796342400)   /* 2026-12-04T00:00:00Z */

static const char STAPLE_PKI_CA[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBmDCCAT2gAwIBAgIUeQE1ejunJdn1wBxOZy6E8shf/A8wCgYIKoZIzj0EAwIw\n"
    "GTEXMBUGA1UEAwwORnV6eiBTdGFwbGUgQ0EwHhcNMjYxMjAzMTMzNzM1WhcNMzYx\n"
    "MTMwMTMzNzM1WjAZMRcwFQYDVQQDDA5GdXp6IFN0YXBsZSBDQTBZMBMGByqGSM49\n"
    "AgEGCCqGSM49AwEHA0IABGBF6J1mAfHBf72xRuxIycpCrUBrqfp1LE1T4p+dbb3P\n"
    "PbG6LxmIxZkKy3L0vCLOvWsZDFHh4wcrnf8UDAfrk2ujYzBhMB0GA1UdDgQWBBQo\n"
    "4MHC79g1UI26bAWvihrJSlQ7tDAfBgNVHSMEGDAWgBQo4MHC79g1UI26bAWvihrJ\n"
    "SlQ7tDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAKBggqhkjOPQQD\n"
    "AgNJADBGAiEAgKZJYrFTucggK1xUR+VmlYhvZRXjtsU1RFHg01lgjmsCIQD3e1mG\n"
    "GZ2jNPhJ2xokQ1tjXy9ygHLjvUlTenk8bf18lw==\n"
    "-----END CERTIFICATE-----\n";

static const char STAPLE_PKI_CA_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgb0nlLjck7ehRdiB6\n"
    "BU1Q28jAjL2zkwxywVnnkEAHojWhRANCAARgReidZgHxwX+9sUbsSMnKQq1Aa6n6\n"
    "dSxNU+KfnW29zz2xui8ZiMWZCsty9Lwizr1rGQxR4eMHK53/FAwH65Nr\n"
    "-----END PRIVATE KEY-----\n";

static const char STAPLE_PKI_LEAF[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBgzCCASmgAwIBAgICEAEwCgYIKoZIzj0EAwIwGTEXMBUGA1UEAwwORnV6eiBT\n"
    "dGFwbGUgQ0EwHhcNMjYxMjAzMTMzNzM1WhcNMzYxMTMwMTMzNzM1WjAUMRIwEAYD\n"
    "VQQDDAlmdXp6LnRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARWUWD+vQwX\n"
    "NVTQH2Ih7MWxZ0445Evt5jmMtXfFtTt74vwio+r3hHj9ICFGWzlFkouXeXVfKRxI\n"
    "0mN4J54wnlFzo2YwZDAMBgNVHRMBAf8EAjAAMBQGA1UdEQQNMAuCCWZ1enoudGVz\n"
    "dDAdBgNVHQ4EFgQU7jpsgyFlxz1CLgv60cdumdecRg8wHwYDVR0jBBgwFoAUKODB\n"
    "wu/YNVCNumwFr4oayUpUO7QwCgYIKoZIzj0EAwIDSAAwRQIgV3x7wWzkirgoMLO/\n"
    "V+Nz/5f9i9kGMpoOBhPrPFWH3nMCIQC253Ho2zVqZeSbkrw/cbF8BbDkBaSVVPrs\n"
    "Rbz+oRXuVA==\n"
    "-----END CERTIFICATE-----\n";

static const char STAPLE_PKI_OCSP[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBjDCCATKgAwIBAgICEAIwCgYIKoZIzj0EAwIwGTEXMBUGA1UEAwwORnV6eiBT\n"
    "dGFwbGUgQ0EwHhcNMjYxMjAzMTMzNzM1WhcNMzYxMTMwMTMzNzM1WjAbMRkwFwYD\n"
    "VQQDDBBGdXp6IFN0YXBsZSBPQ1NQMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n"
    "n6/wA3n1J56f/dyEvJr1Jbd7BVDqwvKYVE1R8pRw0GpW6Ddcf2LQoV7VhDfRNup/\n"
    "QiR9SZ5eQDvTpf6ooaFgDaNoMGYwDAYDVR0TAQH/BAIwADAWBgNVHSUBAf8EDDAK\n"
    "BggrBgEFBQcDCTAdBgNVHQ4EFgQUmn7s4Da67xHpMYNpWWqgUTPepi0wHwYDVR0j\n"
    "BBgwFoAUKODBwu/YNVCNumwFr4oayUpUO7QwCgYIKoZIzj0EAwIDSAAwRQIhAIzN\n"
    "zhydGkZfh+PK1aK797s/4EZOUaRNCjSF1YJI4A2IAiArO+GrEIsXVkW24u1iJj5r\n"
    "VmWszZbgF2hwOR8TgHfFoQ==\n"
    "-----END CERTIFICATE-----\n";

static const char STAPLE_PKI_OCSP_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgx0pY1LyfE98zSWLz\n"
    "XrJDuvgy4v8y8iR/j8sJEe0gryKhRANCAASfr/ADefUnnp/93IS8mvUlt3sFUOrC\n"
    "8phUTVHylHDQalboN1x/YtChXtWEN9E26n9CJH1Jnl5AO9Ol/qihoWAN\n"
    "-----END PRIVATE KEY-----\n";

static inline X509 *staple_pki_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    return x;
}

static inline EVP_PKEY *staple_pki_key(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    return k;
}

#endif /* STAPLE_PKI_H */
