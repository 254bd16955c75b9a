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
 * reencrypt_verify.c: loading trust anchors and verifying a backend's
 * chain against a policy, with a precise reason for every refusal.
 * Pure: APR and OpenSSL only.
 */

#include <arpa/inet.h>
#include <limits.h>
#include <string.h>
#include <time.h>

#include <apr_file_io.h>
#include <apr_network_io.h>
#include <apr_strings.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "reencrypt_verify.h"

/* A trust-anchor file larger than this is refused: a CA bundle of every
 * public root is about 250 KiB. */
#define ANCHORS_FILE_MAX (16 * 1024 * 1024)

/* ------------------------------------------------------------------ */
/* Formatting helpers                                                  */

const char *reencrypt_time_str(apr_pool_t *p, time_t t)
{
    struct tm tm;

    if (!gmtime_r(&t, &tm)) {
        return "(invalid time)";
    }
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02dZ",
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                        tm.tm_hour, tm.tm_min, tm.tm_sec);
}

const char *reencrypt_asn1_time_str(apr_pool_t *p, const ASN1_TIME *t)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (!t || !ASN1_TIME_to_tm(t, &tm)) {
        return "(invalid time)";
    }
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02dZ",
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                        tm.tm_hour, tm.tm_min, tm.tm_sec);
}

const char *reencrypt_name_str(apr_pool_t *p, X509_NAME *name)
{
    BIO *bio;
    char *data = NULL;
    long len;
    const char *s;

    if (!name || !(bio = BIO_new(BIO_s_mem()))) {
        return "(no name)";
    }
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    len = BIO_get_mem_data(bio, &data);
    s = (len > 0) ? apr_pstrmemdup(p, data, (apr_size_t)len) : "(empty name)";
    BIO_free(bio);
    return s;
}

/* A string from a certificate, for the log: bytes outside printable
 * ASCII (an embedded NUL, controls) are shown as \xNN, so that what is
 * shown is what the certificate says. */
static const char *cert_str(apr_pool_t *p, const unsigned char *data,
                            int len)
{
    char *out, *o;
    int i;

    if (len <= 0) {
        return "";
    }
    o = out = apr_palloc(p, (apr_size_t)len * 4 + 1);
    for (i = 0; i < len; i++) {
        if (data[i] >= 0x20 && data[i] < 0x7f && data[i] != '\\') {
            *o++ = (char)data[i];
        }
        else {
            static const char hex[] = "0123456789abcdef";

            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[data[i] >> 4];
            *o++ = hex[data[i] & 0x0f];
        }
    }
    *o = '\0';
    return out;
}

static const char *gen_str(apr_pool_t *p, const GENERAL_NAME *gen)
{
    char buf[64];

    switch (gen->type) {
    case GEN_DNS:
        return apr_pstrcat(p, "DNS:", cert_str(p, gen->d.dNSName->data,
                                               gen->d.dNSName->length),
                           NULL);
    case GEN_IPADD:
        if (gen->d.iPAddress->length == 4
            && inet_ntop(AF_INET, gen->d.iPAddress->data, buf,
                             sizeof(buf))) {
            return apr_pstrcat(p, "IP:", buf, NULL);
        }
        if (gen->d.iPAddress->length == 16
            && inet_ntop(AF_INET6, gen->d.iPAddress->data, buf,
                             sizeof(buf))) {
            return apr_pstrcat(p, "IP:", buf, NULL);
        }
        return "IP:(malformed)";
    case GEN_URI:
        return apr_pstrcat(p, "URI:",
                           cert_str(p, gen->d.uniformResourceIdentifier->data,
                                    gen->d.uniformResourceIdentifier->length),
                           NULL);
    case GEN_EMAIL:
        return "email:(...)";
    default:
        return "othername:(...)";
    }
}

const char *reencrypt_san_str(apr_pool_t *p, X509 *cert, int max)
{
    GENERAL_NAMES *gens;
    const char *s = NULL;
    int i, n;

    gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (!gens) {
        return "no subjectAltName";
    }
    n = sk_GENERAL_NAME_num(gens);
    for (i = 0; i < n && i < max; i++) {
        const char *g = gen_str(p, sk_GENERAL_NAME_value(gens, i));
        s = s ? apr_pstrcat(p, s, ", ", g, NULL) : g;
    }
    if (n > max) {
        s = s ? apr_psprintf(p, "%s, ... (%d in all)", s, n)
              : apr_psprintf(p, "... (%d in all)", n);
    }
    GENERAL_NAMES_free(gens);
    return s ? s : "no subjectAltName";
}

/* ------------------------------------------------------------------ */
/* Names                                                               */

int reencrypt_cert_matches(X509 *cert, const char *name)
{
    GENERAL_NAMES *gens;
    unsigned char ip[16];
    int iplen, i, match = 0;

    if (!cert || !name || !*name) {
        return 0;
    }
    iplen = reencrypt_ip_parse(name, ip);
    gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (!gens) {
        return 0;
    }
    for (i = 0; !match && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *gen = sk_GENERAL_NAME_value(gens, i);

        if (iplen && gen->type == GEN_IPADD) {
            const ASN1_OCTET_STRING *o = gen->d.iPAddress;

            match = (o->length == iplen && !memcmp(o->data, ip, iplen));
        }
        else if (!iplen && gen->type == GEN_DNS) {
            const ASN1_IA5STRING *d = gen->d.dNSName;
            char buf[REENCRYPT_DNS_NAME_MAX + 2];

            /* refuse embedded NULs and over-long names outright */
            if (d->length <= 0 || d->length >= (int)sizeof(buf)
                || memchr(d->data, '\0', (size_t)d->length)) {
                continue;
            }
            memcpy(buf, d->data, (size_t)d->length);
            buf[d->length] = '\0';
            match = reencrypt_dns_match(buf, name);
        }
    }
    GENERAL_NAMES_free(gens);
    return match;
}

/* ------------------------------------------------------------------ */
/* Trust anchors                                                       */

static apr_status_t store_cleanup(void *data)
{
    X509_STORE_free((X509_STORE *)data);
    return APR_SUCCESS;
}

const char *reencrypt_anchors_load(apr_pool_t *p, const char *directive,
                                   const char *path,
                                   const reencrypt_anchors_t **out)
{
    apr_size_t len;
    char *buf;
    const char *msg;

    msg = reencrypt_read_file(p, directive, path, ANCHORS_FILE_MAX, &buf,
                              &len, NULL);
    if (msg) {
        return msg;
    }
    return reencrypt_anchors_parse(p, directive, path, buf, len, out);
}

void reencrypt_anchors_unmanage(apr_pool_t *p, const reencrypt_anchors_t *a)
{
    apr_pool_cleanup_kill(p, a->store, store_cleanup);
}

void reencrypt_anchors_free(const reencrypt_anchors_t *a)
{
    X509_STORE_free(a->store);
}

const char *reencrypt_anchors_parse(apr_pool_t *p, const char *directive,
                                    const char *path, const char *buf,
                                    apr_size_t len,
                                    const reencrypt_anchors_t **out)
{
    BIO *bio;
    X509 *x;
    X509_STORE *store;
    reencrypt_anchors_t *a;
    unsigned long err;

    if (len > ANCHORS_FILE_MAX) {
        return apr_psprintf(p, "%s: '%s' is larger than %d bytes", directive,
                            path, ANCHORS_FILE_MAX);
    }
    a = apr_pcalloc(p, sizeof(*a));
    a->path = apr_pstrdup(p, path);
    if (!EVP_Digest(buf, len, a->digest, NULL, EVP_sha256(), NULL)) {
        return apr_psprintf(p, "%s: cannot hash '%s'", directive, path);
    }

    store = X509_STORE_new();
    if (!store) {
        return apr_psprintf(p, "%s: out of memory loading '%s'", directive,
                            path);
    }
    apr_pool_cleanup_register(p, store, store_cleanup,
                              apr_pool_cleanup_null);

    bio = BIO_new_mem_buf(buf, (int)len);
    if (!bio) {
        return apr_psprintf(p, "%s: out of memory loading '%s'", directive,
                            path);
    }
    ERR_clear_error();
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (!X509_STORE_add_cert(store, x)) {
            err = ERR_peek_last_error();
            /* the same certificate twice is harmless */
            if (ERR_GET_REASON(err) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
                X509_free(x);
                BIO_free(bio);
                return apr_psprintf(p, "%s: cannot use a certificate of "
                                    "'%s': %s", directive, path,
                                    ERR_reason_error_string(err));
            }
            ERR_clear_error();
        }
        X509_free(x);
        a->count++;
    }
    err = ERR_peek_last_error();
    BIO_free(bio);
    if (err && !(ERR_GET_LIB(err) == ERR_LIB_PEM
                 && ERR_GET_REASON(err) == PEM_R_NO_START_LINE)) {
        ERR_clear_error();
        return apr_psprintf(p, "%s: '%s' holds a malformed PEM certificate "
                            "(%s)", directive, path,
                            ERR_reason_error_string(err));
    }
    ERR_clear_error();
    if (a->count == 0) {
        return apr_psprintf(p, "%s: '%s' contains no PEM certificate",
                            directive, path);
    }
    a->store = store;
    *out = a;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* CRLs                                                                */

/* A CRL file larger than this is refused: a CA that revoked a million
 * certificates publishes about 40 MiB. */
#define CRL_FILE_MAX (64 * 1024 * 1024)

static apr_status_t crls_cleanup(void *data)
{
    sk_X509_CRL_pop_free((STACK_OF(X509_CRL) *)data, X509_CRL_free);
    return APR_SUCCESS;
}

void reencrypt_crl_file_unmanage(apr_pool_t *p,
                                 const reencrypt_crl_file_t *f)
{
    apr_pool_cleanup_kill(p, f->crls, crls_cleanup);
}

void reencrypt_crl_file_free(const reencrypt_crl_file_t *f)
{
    sk_X509_CRL_pop_free(f->crls, X509_CRL_free);
}

/* Sort a CRL's list of revoked certificates now: OpenSSL sorts it on the
 * first look-up (under the CRL's lock), which would otherwise happen in
 * a handshake. */
static void crl_presort(X509_CRL *crl)
{
    ASN1_INTEGER *zero = ASN1_INTEGER_new();
    X509_REVOKED *rev = NULL;

    if (zero && ASN1_INTEGER_set(zero, 0)) {
        X509_CRL_get0_by_serial(crl, &rev, zero);
    }
    ASN1_INTEGER_free(zero);
}

/* What the views and the expiry warning show of each CRL of f, and
 * the soonest nextUpdate: once, at load time, so that neither the views
 * nor a handshake ever parse a CRL. */
static int crl_file_info(apr_pool_t *p, reencrypt_crl_file_t *f)
{
    apr_array_header_t *info;
    int i;

    info = apr_array_make(p, sk_X509_CRL_num(f->crls),
                          sizeof(reencrypt_crl_info_t));
    for (i = 0; i < sk_X509_CRL_num(f->crls); i++) {
        X509_CRL *crl = sk_X509_CRL_value(f->crls, i);
        reencrypt_crl_info_t *in = apr_array_push(info);
        const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
        STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
        unsigned int mdlen = 0;

        memset(in, 0, sizeof(*in));
        /* a copy of its own, never the module's literal: the file may
         * be kept while the module moves (see reencrypt_crl_file_unmanage) */
        in->issuer = apr_pstrdup(p, reencrypt_name_str(
                                        p, X509_CRL_get_issuer(crl)));
        in->last_update = reencrypt_asn1_time_t(
                              X509_CRL_get0_lastUpdate(crl));
        in->next_update = next ? reencrypt_asn1_time_t(next) : 0;
        in->entries = revoked ? sk_X509_REVOKED_num(revoked) : 0;
        if (!X509_CRL_digest(crl, EVP_sha256(), in->digest, &mdlen)
            || mdlen != sizeof(in->digest)) {
            return 0;
        }
        if (in->next_update && (!f->soonest_next_update
                                || in->next_update
                                   < f->soonest_next_update)) {
            f->soonest_next_update = in->next_update;
        }
    }
    f->info = info;
    return 1;
}

/* Does the len bytes of buf hold needle? */
static int mem_has(const char *buf, apr_size_t len, const char *needle)
{
    apr_size_t n = strlen(needle), i;

    for (i = 0; n <= len && i <= len - n; i++) {
        if (buf[i] == needle[0] && !memcmp(buf + i, needle, n)) {
            return 1;
        }
    }
    return 0;
}

const char *reencrypt_crl_file_load(apr_pool_t *p, const char *directive,
                                    const char *path,
                                    const reencrypt_crl_file_t **out)
{
    apr_size_t len;
    char *buf;
    const char *msg;

    msg = reencrypt_read_file(p, directive, path, CRL_FILE_MAX, &buf, &len,
                              NULL);
    if (msg) {
        return msg;
    }
    return reencrypt_crl_file_parse(p, directive, path, buf, len, out);
}

/* The CRLs of PEM text onto crls; NULL, or what is wrong */
static const char *crls_from_pem(apr_pool_t *p, const char *directive,
                                 const char *path, const char *buf,
                                 apr_size_t len, STACK_OF(X509_CRL) *crls)
{
    BIO *bio = BIO_new_mem_buf(buf, (int)len);
    unsigned long err;
    X509_CRL *crl;

    if (!bio) {
        return apr_psprintf(p, "%s: out of memory loading '%s'", directive,
                            path);
    }
    while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_CRL_push(crls, crl)) {
            X509_CRL_free(crl);
            BIO_free(bio);
            return apr_psprintf(p, "%s: out of memory loading '%s'",
                                directive, path);
        }
    }
    BIO_free(bio);
    err = ERR_peek_last_error();
    ERR_clear_error();
    if (ERR_GET_LIB(err) != ERR_LIB_PEM
        || ERR_GET_REASON(err) != PEM_R_NO_START_LINE) {
        /* stopped at a block that is no CRL, not at the end */
        return apr_psprintf(p, "%s: '%s': CRL number %d is malformed (%s)",
                            directive, path, sk_X509_CRL_num(crls) + 1,
                            err ? ERR_reason_error_string(err)
                                : "unreadable PEM");
    }
    return NULL;
}

/* The CRLs of DER bytes, one after the other, onto crls */
static const char *crls_from_der(apr_pool_t *p, const char *directive,
                                 const char *path, const char *buf,
                                 apr_size_t len, STACK_OF(X509_CRL) *crls)
{
    const unsigned char *q = (const unsigned char *)buf;
    const unsigned char *end = q + len;
    X509_CRL *crl;

    while (q < end) {
        crl = d2i_X509_CRL(NULL, &q, (long)(end - q));
        if (!crl) {
            ERR_clear_error();
            return sk_X509_CRL_num(crls) == 0
                ? apr_psprintf(p, "%s: '%s' is not a CRL (neither PEM "
                               "\"X509 CRL\" blocks nor DER)", directive,
                               path)
                : apr_psprintf(p, "%s: '%s': what follows CRL number %d is "
                               "not a CRL", directive, path,
                               sk_X509_CRL_num(crls));
        }
        if (!sk_X509_CRL_push(crls, crl)) {
            X509_CRL_free(crl);
            return apr_psprintf(p, "%s: out of memory loading '%s'",
                                directive, path);
        }
    }
    return NULL;
}

const char *reencrypt_crl_file_parse(apr_pool_t *p, const char *directive,
                                     const char *path, const char *buf,
                                     apr_size_t len,
                                     const reencrypt_crl_file_t **out)
{
    reencrypt_crl_file_t *f;
    STACK_OF(X509_CRL) *crls;
    const char *err;
    int i;

    if (len > CRL_FILE_MAX || len > INT_MAX) {
        return apr_psprintf(p, "%s: '%s' is too large", directive, path);
    }
    f = apr_pcalloc(p, sizeof(*f));
    f->path = apr_pstrdup(p, path);
    if (!EVP_Digest(buf, len, f->digest, NULL, EVP_sha256(), NULL)
        || !(crls = sk_X509_CRL_new_null())) {
        return apr_psprintf(p, "%s: out of memory loading '%s'", directive,
                            path);
    }
    apr_pool_cleanup_register(p, crls, crls_cleanup, apr_pool_cleanup_null);

    ERR_clear_error();
    err = mem_has(buf, len, "-----BEGIN X509 CRL-----")
          ? crls_from_pem(p, directive, path, buf, len, crls)
          : crls_from_der(p, directive, path, buf, len, crls);
    if (err) {
        return err;
    }
    if (sk_X509_CRL_num(crls) == 0) {
        return apr_psprintf(p, "%s: '%s' contains no CRL", directive, path);
    }
    for (i = 0; i < sk_X509_CRL_num(crls); i++) {
        crl_presort(sk_X509_CRL_value(crls, i));
    }
    f->crls = crls;
    if (!crl_file_info(p, f)) {
        ERR_clear_error();
        return apr_psprintf(p, "%s: '%s': cannot compute the digest of a "
                            "CRL", directive, path);
    }
    *out = f;
    return NULL;
}

const reencrypt_crls_t *reencrypt_crls_add(apr_pool_t *p,
                                           const reencrypt_crls_t *base,
                                           const reencrypt_crl_file_t *file,
                                           const char *where)
{
    reencrypt_crls_t *set = apr_pcalloc(p, sizeof(*set));
    int i, j;

    set->files = base ? apr_array_copy(p, base->files)
                      : apr_array_make(p, 2, sizeof(const void *));
    APR_ARRAY_PUSH(set->files, const reencrypt_crl_file_t *) = file;
    set->wheres = base && base->wheres
                  ? apr_array_copy(p, base->wheres)
                  : apr_array_make(p, 2, sizeof(const char *));
    APR_ARRAY_PUSH(set->wheres, const char *) = where;
    set->where = (base && base->where) ? base->where : where;
    if (!(set->all = sk_X509_CRL_new_null())) {
        return NULL;
    }
    apr_pool_cleanup_register(p, set->all, crls_cleanup,
                              apr_pool_cleanup_null);
    for (i = 0; i < set->files->nelts; i++) {
        const reencrypt_crl_file_t *f = APR_ARRAY_IDX(set->files, i,
                                            const reencrypt_crl_file_t *);

        if (f->soonest_next_update
            && (!set->soonest_next_update
                || f->soonest_next_update < set->soonest_next_update)) {
            set->soonest_next_update = f->soonest_next_update;
        }
        for (j = 0; j < sk_X509_CRL_num(f->crls); j++) {
            X509_CRL *crl = sk_X509_CRL_value(f->crls, j);

            if (!X509_CRL_up_ref(crl)) {
                return NULL;
            }
            if (!sk_X509_CRL_push(set->all, crl)) {
                X509_CRL_free(crl);
                return NULL;
            }
        }
    }
    return set;
}

void reencrypt_check_init(reencrypt_check_t *chk,
                          const reencrypt_policy_t *pol,
                          const apr_array_header_t *names,
                          int names_from_sni, time_t now,
                          STACK_OF(X509) *validated)
{
    memset(chk, 0, sizeof(*chk));
    chk->anchors = pol->anchors;
    chk->depth = reencrypt_policy_depth(pol);
    chk->names = reencrypt_policy_check_name(pol) ? names : NULL;
    chk->names_from_sni = names_from_sni;
    chk->pins = pol->pins;
    chk->pin_chain = reencrypt_policy_pin_scope(pol)
                     == REENCRYPT_PIN_SCOPE_CHAIN;
    chk->pin_only = reencrypt_policy_trust(pol) == REENCRYPT_TRUST_PIN_ONLY;
    chk->refuse_within = reencrypt_policy_refuse_within(pol);
    chk->clock_skew = reencrypt_policy_clock_skew(pol);
    chk->revocation = reencrypt_policy_revocation(pol);
    chk->no_crl_ok = reencrypt_policy_no_crl_ok(pol);
    chk->crls = pol->crls ? pol->crls->all : NULL;
    chk->crls_next_update = pol->crls ? pol->crls->soonest_next_update : 0;
    /* a stored chain was checked against the CRLs of this very policy:
     * its id, part of the session key, covers their digests */
    chk->crls_unchanged = validated != NULL;
    chk->now = now;
    chk->validated = validated;
    chk->want_chain = !validated;
}

const char *reencrypt_revocation_token(reencrypt_revocation_state_e st)
{
    switch (st) {
    case REENCRYPT_REV_NOT_CHECKED: return "not-checked";
    case REENCRYPT_REV_GOOD:        return "good";
    case REENCRYPT_REV_NO_CRL:      return "no-crl";
    case REENCRYPT_REV_REVOKED:     return "revoked";
    case REENCRYPT_REV_CRL_EXPIRED: return "crl-expired";
    case REENCRYPT_REV_CRL_MISSING: return "crl-missing";
    case REENCRYPT_REV_CRL_INVALID: return "crl-invalid";
    }
    return "unknown";
}

/* The serial number of a certificate in hex, e.g. "0x1A2B" */
static const char *serial_str(apr_pool_t *p, X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    const char *s = hex ? apr_pstrcat(p, "0x", hex, NULL) : "(unknown)";

    OPENSSL_free(hex);
    BN_free(bn);
    return s;
}

const char *reencrypt_cert_id_str(apr_pool_t *p, X509 *cert)
{
    if (!cert) {
        return "(no certificate)";
    }
    return apr_psprintf(p, "%s serial %s",
                        reencrypt_name_str(p, X509_get_subject_name(cert)),
                        serial_str(p, cert));
}

/* The CRL reason code of a revoked entry (RFC 5280 5.3.1), or NULL */
static const char *revoked_reason_str(X509_REVOKED *rev)
{
    ASN1_ENUMERATED *e;
    long code;
    static const char *const names[] = {
        "unspecified", "keyCompromise", "cACompromise", "affiliationChanged",
        "superseded", "cessationOfOperation", "certificateHold", NULL,
        "removeFromCRL", "privilegeWithdrawn", "aACompromise"
    };

    e = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
    if (!e) {
        return NULL;
    }
    code = ASN1_ENUMERATED_get(e);
    ASN1_ENUMERATED_free(e);
    if (code < 0 || code >= (long)(sizeof(names) / sizeof(names[0]))
        || !names[code]) {
        return "(unknown reason code)";
    }
    return names[code];
}

/* ------------------------------------------------------------------ */
/* Verification                                                        */

typedef struct {
    apr_pool_t *p;
    time_t now;
    apr_int64_t skew;           /* clock skew, seconds */
    time_t skew_until;          /* now + clock skew */
    int no_crl_ok;              /* a missing CRL passes */
    const char *revoked;        /* "<cert> revoked at <t> (reason ...)" */
    const char *crl_expired;    /* "CRL of <issuer> ... nextUpdate=..." */
    const char *crl_missing;    /* "<cert>" lacking its issuer's CRL */
    const char *crl_missing_issuer;
    const char *crl_invalid;    /* "CRL of <issuer> (<error>)" */
    const char *crl_invalid_issuer;
    int no_crl;                 /* a missing CRL was let pass */
    int trust_err;              /* first X509_V_ERR_* that is not below */
    const char *trust_at;       /* subject of the certificate concerned */
    const char *nyv;            /* "<subject> notBefore=<t>" */
    const char *expired;        /* "<subject> notAfter=<t>" */
    int too_long;
    int skew_used;
} collector_t;

/* Called by OpenSSL for every certificate and every error; records
 * what it sees and lets the verification go on, so that the decision
 * (and its reason) is made once, with everything known. */
/* A certificate of the chain is listed in its issuer's CRL */
static void collect_revoked(collector_t *c, X509_STORE_CTX *ctx, X509 *cert)
{
    X509_CRL *crl = X509_STORE_CTX_get0_current_crl(ctx);
    X509_REVOKED *rev = NULL;
    const char *why = NULL, *when = NULL;

    if (crl && cert && X509_CRL_get0_by_cert(crl, &rev, cert) > 0
        && rev) {
        when = reencrypt_asn1_time_str(c->p,
                   X509_REVOKED_get0_revocationDate(rev));
        why = revoked_reason_str(rev);
    }
    c->revoked = apr_psprintf(c->p, "%s revoked%s%s%s%s%s%s",
                     reencrypt_cert_id_str(c->p, cert),
                     when ? " at " : "", when ? when : "",
                     why ? " (reason " : "", why ? why : "",
                     why ? ")" : "",
                     crl ? apr_pstrcat(c->p, " by the CRL of ",
                               reencrypt_name_str(c->p,
                                   X509_CRL_get_issuer(crl)), NULL)
                         : "");
}

/* A CRL needed is past its nextUpdate (within the skew: let pass) */
static void collect_crl_expired(collector_t *c, X509_STORE_CTX *ctx,
                                X509 *cert)
{
    X509_CRL *crl = X509_STORE_CTX_get0_current_crl(ctx);
    const ASN1_TIME *next = crl ? X509_CRL_get0_nextUpdate(crl) : NULL;
    time_t grace = c->now - (time_t)c->skew;

    if (next && c->skew && X509_cmp_time(next, &grace) > 0) {
        c->skew_used = 1;       /* within ReencryptClockSkew */
    }
    else if (!c->crl_expired) {
        c->crl_expired = apr_psprintf(c->p, "the CRL of %s: "
                             "lastUpdate=%s nextUpdate=%s (checking %s)",
                             crl ? reencrypt_name_str(c->p,
                                       X509_CRL_get_issuer(crl)) : "?",
                             crl ? reencrypt_asn1_time_str(c->p,
                                       X509_CRL_get0_lastUpdate(crl))
                                 : "?",
                             reencrypt_asn1_time_str(c->p, next),
                             reencrypt_cert_id_str(c->p, cert));
    }
}

/* A CRL needed has a lastUpdate in the future (within the skew: let
 * pass) */
static void collect_crl_not_yet_valid(collector_t *c, X509_STORE_CTX *ctx)
{
    X509_CRL *crl = X509_STORE_CTX_get0_current_crl(ctx);
    const ASN1_TIME *last = crl ? X509_CRL_get0_lastUpdate(crl) : NULL;

    if (last && X509_cmp_time(last, &c->skew_until) < 0) {
        c->skew_used = 1;
    }
    else if (!c->crl_invalid) {
        c->crl_invalid = apr_psprintf(c->p, "the CRL of %s with "
                             "lastUpdate=%s, in the future",
                             crl ? reencrypt_name_str(c->p,
                                       X509_CRL_get_issuer(crl)) : "?",
                             reencrypt_asn1_time_str(c->p, last));
        c->crl_invalid_issuer = crl ? reencrypt_name_str(c->p,
                                          X509_CRL_get_issuer(crl))
                                    : "?";
    }
}

/* A CRL needed cannot be used: no issuer, a bad signature, ... */
static void collect_crl_invalid(collector_t *c, X509_STORE_CTX *ctx,
                                X509 *cert, int err)
{
    X509_CRL *crl = X509_STORE_CTX_get0_current_crl(ctx);
    const char *issuer = crl ? reencrypt_name_str(c->p,
                                   X509_CRL_get_issuer(crl))
                             : (cert ? reencrypt_name_str(c->p,
                                        X509_get_issuer_name(cert))
                                     : "?");

    c->crl_invalid = apr_psprintf(c->p, "a CRL naming %s as issuer "
                                  "(%s; checking %s)", issuer,
                                  X509_verify_cert_error_string(err),
                                  reencrypt_cert_id_str(c->p, cert));
    c->crl_invalid_issuer = issuer;
}

static int collect_cb(int ok, X509_STORE_CTX *ctx)
{
    collector_t *c = X509_STORE_CTX_get_app_data(ctx);
    X509 *cert;
    int err;

    if (ok || !c) {
        return ok;
    }
    err = X509_STORE_CTX_get_error(ctx);
    cert = X509_STORE_CTX_get_current_cert(ctx);
    switch (err) {
    case X509_V_ERR_CERT_NOT_YET_VALID:
        if (cert && X509_cmp_time(X509_get0_notBefore(cert),
                                  &c->skew_until) < 0) {
            c->skew_used = 1;       /* within ReencryptClockSkew */
        }
        else if (!c->nyv && cert) {
            c->nyv = apr_psprintf(c->p, "%s notBefore=%s",
                        reencrypt_name_str(c->p, X509_get_subject_name(cert)),
                        reencrypt_asn1_time_str(c->p, X509_get0_notBefore(cert)));
        }
        break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        if (!c->expired && cert) {
            c->expired = apr_psprintf(c->p, "%s notAfter=%s",
                        reencrypt_name_str(c->p, X509_get_subject_name(cert)),
                        reencrypt_asn1_time_str(c->p, X509_get0_notAfter(cert)));
        }
        break;
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
        c->too_long = 1;
        break;
    case X509_V_ERR_CERT_REVOKED:
        if (!c->revoked) {
            collect_revoked(c, ctx, cert);
        }
        break;
    case X509_V_ERR_UNABLE_TO_GET_CRL:
        if (c->no_crl_ok) {
            c->no_crl = 1;
        }
        else if (!c->crl_missing && cert) {
            c->crl_missing = reencrypt_cert_id_str(c->p, cert);
            c->crl_missing_issuer = reencrypt_name_str(c->p,
                                        X509_get_issuer_name(cert));
        }
        break;
    case X509_V_ERR_CRL_HAS_EXPIRED:
        collect_crl_expired(c, ctx, cert);
        break;
    case X509_V_ERR_CRL_NOT_YET_VALID:
        collect_crl_not_yet_valid(c, ctx);
        break;
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
    case X509_V_ERR_DIFFERENT_CRL_SCOPE:
    case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
    case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
        if (!c->crl_invalid) {
            collect_crl_invalid(c, ctx, cert, err);
        }
        break;
    default:
        if (!c->trust_err) {
            c->trust_err = err ? err : X509_V_ERR_UNSPECIFIED;
            c->trust_at = cert ? reencrypt_name_str(c->p,
                                     X509_get_subject_name(cert)) : NULL;
        }
        break;
    }
    return 1;
}

static const char *chain_str(apr_pool_t *p, STACK_OF(X509) *chain)
{
    const char *s = NULL;
    int i;

    for (i = 0; chain && i < sk_X509_num(chain); i++) {
        const char *n = reencrypt_name_str(p,
                            X509_get_subject_name(sk_X509_value(chain, i)));
        s = s ? apr_pstrcat(p, s, " < ", n, NULL) : n;
    }
    return s ? s : "(no chain)";
}

static const char *names_str(apr_pool_t *p, const apr_array_header_t *names)
{
    const char *s = NULL;
    int i;

    for (i = 0; names && i < names->nelts; i++) {
        const char *n = apr_psprintf(p, "\"%s\"",
                                     APR_ARRAY_IDX(names, i, const char *));
        s = s ? apr_pstrcat(p, s, ", ", n, NULL) : n;
    }
    if (!s) {
        return "a name to check (none known: set ReencryptVerifyName)";
    }
    return names->nelts > 1 ? apr_pstrcat(p, "one of ", s, NULL) : s;
}

static const char *pins_str(apr_pool_t *p, const apr_array_header_t *pins)
{
    const char *s = NULL;
    int i;

    for (i = 0; i < pins->nelts; i++) {
        const char *one = reencrypt_pin_str(p,
                              &APR_ARRAY_IDX(pins, i, reencrypt_pin_t));
        s = s ? apr_pstrcat(p, s, ", ", one, NULL) : one;
    }
    return s;
}

static int pin_listed(const apr_array_header_t *pins,
                      const reencrypt_pin_t *pin)
{
    int i;

    for (i = 0; i < pins->nelts; i++) {
        if (!memcmp(APR_ARRAY_IDX(pins, i, reencrypt_pin_t).sha256,
                    pin->sha256, REENCRYPT_PIN_LEN)) {
            return 1;
        }
    }
    return 0;
}

/* The pin of a DER SubjectPublicKeyInfo; frees der in every case. */
static int pin_of_der(unsigned char *der, int len, reencrypt_pin_t *pin)
{
    int ok = len > 0 && EVP_Digest(der, (size_t)len, pin->sha256, NULL,
                                   EVP_sha256(), NULL);

    OPENSSL_free(der);
    return ok ? 0 : -1;
}

int reencrypt_pin_of_pkey(EVP_PKEY *pkey, reencrypt_pin_t *pin)
{
    unsigned char *der = NULL;
    int len;

    if (!pkey) {
        return -1;
    }
    len = i2d_PUBKEY(pkey, &der);
    return pin_of_der(der, len, pin);
}

int reencrypt_pin_of_cert(X509 *cert, reencrypt_pin_t *pin)
{
    unsigned char *der = NULL;
    int len;

    if (!cert) {
        return -1;
    }
    /* The SubjectPublicKeyInfo as the certificate carries it: encoding
     * the X509_PUBKEY needs no key decoder (i2d_PUBKEY of the EVP_PKEY
     * goes through OpenSSL 3's encoder lookup, much slower). */
    len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    return pin_of_der(der, len, pin);
}

time_t reencrypt_asn1_time_t(const ASN1_TIME *t)
{
    ASN1_TIME *epoch;
    int days = 0, secs = 0, ok;

    if (!t || !(epoch = ASN1_TIME_set(NULL, 0))) {
        return 0;
    }
    ok = ASN1_TIME_diff(&days, &secs, epoch, t);
    ASN1_TIME_free(epoch);
    return ok ? (time_t)days * 86400 + secs : 0;
}

/* Validity times of one certificate, where OpenSSL builds no chain
 * (pin-only trust, resumed sessions); the first failure of each kind is
 * kept, as collect_cb does. */
static void check_times(apr_pool_t *p, const reencrypt_check_t *chk,
                        X509 *cert, collector_t *c)
{
    time_t now = chk->now;
    const ASN1_TIME *nb = X509_get0_notBefore(cert);
    const ASN1_TIME *na = X509_get0_notAfter(cert);

    if (X509_cmp_time(nb, &now) >= 0) {       /* after now, or bad */
        if (X509_cmp_time(nb, &c->skew_until) < 0) {
            c->skew_used = 1;
        }
        else if (!c->nyv) {
            c->nyv = apr_psprintf(p, "%s notBefore=%s",
                         reencrypt_name_str(p, X509_get_subject_name(cert)),
                         reencrypt_asn1_time_str(p, nb));
        }
    }
    if (X509_cmp_time(na, &now) <= 0 && !c->expired) {
        c->expired = apr_psprintf(p, "%s notAfter=%s",
                         reencrypt_name_str(p, X509_get_subject_name(cert)),
                         reencrypt_asn1_time_str(p, na));
    }
}

/* ------------------------------------------------------------------ */
/* The checks, one function each, in the order of checks[] below      */

/* What every check reads: the request, the leaf, the chain built (or
 * stored), and what OpenSSL reported while building it. */
typedef struct {
    apr_pool_t *p;
    const reencrypt_check_t *chk;
    X509 *leaf;
    STACK_OF(X509) *chain;      /* NULL with pin-only trust */
    const collector_t *c;
    reencrypt_verdict_t *v;     /* a check that fails sets expected and
                                 * seen here */
} verify_ctx_t;

static const char *revocation_mode_str(const reencrypt_check_t *chk)
{
    return chk->revocation == REENCRYPT_REVOCATION_CHAIN ? "Chain" : "Leaf";
}

static int check_trust(const verify_ctx_t *x)
{
    const reencrypt_check_t *chk = x->chk;
    reencrypt_verdict_t *v = x->v;
    const char *at = x->c->trust_at;
    int other = at && strcmp(at, v->subject);

    if (!x->c->trust_err) {
        return 0;
    }
    v->expected = (chk->anchors->count == 1)
        ? apr_psprintf(x->p, "a chain to the trust anchor in %s",
                       chk->anchors->path)
        : apr_psprintf(x->p, "a chain to one of %d trust anchors in %s",
                       chk->anchors->count, chk->anchors->path);
    v->seen = apr_psprintf(x->p, "%s issued by %s (%s%s%s)", v->subject,
                  reencrypt_name_str(x->p, X509_get_issuer_name(x->leaf)),
                  X509_verify_cert_error_string(x->c->trust_err),
                  other ? " at " : "", other ? at : "");
    return 1;
}

static int check_revoked(const verify_ctx_t *x)
{
    if (!x->c->revoked) {
        return 0;
    }
    x->v->expected = apr_psprintf(x->p, "no certificate of the chain "
                                  "revoked (ReencryptRevocationCheck %s)",
                                  revocation_mode_str(x->chk));
    x->v->seen = x->c->revoked;
    return 1;
}

static int check_crl_invalid(const verify_ctx_t *x)
{
    if (!x->c->crl_invalid) {
        return 0;
    }
    x->v->expected = apr_psprintf(x->p, "a CRL of %s signed by it and "
                                  "valid at %s", x->c->crl_invalid_issuer,
                                  reencrypt_time_str(x->p, x->chk->now));
    x->v->seen = x->c->crl_invalid;
    return 1;
}

static int check_crl_expired(const verify_ctx_t *x)
{
    const reencrypt_check_t *chk = x->chk;

    if (!x->c->crl_expired) {
        return 0;
    }
    x->v->expected = chk->clock_skew
        ? apr_psprintf(x->p, "a CRL with nextUpdate after %s (now less "
                       "ReencryptClockSkew %" APR_INT64_T_FMT "s)",
                       reencrypt_time_str(x->p, chk->now
                                          - (time_t)chk->clock_skew),
                       chk->clock_skew)
        : apr_psprintf(x->p, "a CRL with nextUpdate after %s",
                       reencrypt_time_str(x->p, chk->now));
    x->v->seen = x->c->crl_expired;
    return 1;
}

static int check_crl_missing(const verify_ctx_t *x)
{
    if (!x->c->crl_missing) {
        return 0;
    }
    x->v->expected = apr_psprintf(x->p, "a CRL issued by %s "
                                  "(ReencryptRevocationCheck %s)",
                                  x->c->crl_missing_issuer,
                                  revocation_mode_str(x->chk));
    x->v->seen = apr_psprintf(x->p, "no CRL of that issuer for %s",
                              x->c->crl_missing);
    return 1;
}

static int check_not_yet_valid(const verify_ctx_t *x)
{
    const reencrypt_check_t *chk = x->chk;

    if (!x->c->nyv) {
        return 0;
    }
    x->v->expected = chk->clock_skew
        ? apr_psprintf(x->p, "notBefore before %s (now plus "
                       "ReencryptClockSkew %" APR_INT64_T_FMT "s)",
                       reencrypt_time_str(x->p, x->c->skew_until),
                       chk->clock_skew)
        : apr_psprintf(x->p, "notBefore before %s",
                       reencrypt_time_str(x->p, chk->now));
    x->v->seen = x->c->nyv;
    return 1;
}

static int check_expired(const verify_ctx_t *x)
{
    if (!x->c->expired) {
        return 0;
    }
    x->v->expected = apr_psprintf(x->p, "notAfter after %s",
                                  reencrypt_time_str(x->p, x->chk->now));
    x->v->seen = x->c->expired;
    return 1;
}

/* Only where the chain was built now: pin-only trust builds none, and a
 * stored chain had its depth checked when it was built */
static int check_depth(const verify_ctx_t *x)
{
    const reencrypt_check_t *chk = x->chk;
    reencrypt_verdict_t *v = x->v;

    if (chk->pin_only || chk->validated
        || !(x->c->too_long || v->chain_len - 1 > chk->depth)) {
        return 0;
    }
    v->expected = apr_psprintf(x->p, "at most %d certificate%s above the "
                               "leaf (ReencryptVerifyDepth %d)", chk->depth,
                               chk->depth == 1 ? "" : "s", chk->depth);
    v->seen = x->c->too_long
              ? apr_psprintf(x->p, "more than %d", REENCRYPT_DEPTH_MAX)
              : apr_psprintf(x->p, "%d (%s)", v->chain_len - 1,
                             chain_str(x->p, x->chain));
    return 1;
}

static int check_pins(const verify_ctx_t *x)
{
    const reencrypt_check_t *chk = x->chk;
    reencrypt_verdict_t *v = x->v;
    int i, npins = chk->pins ? chk->pins->nelts : 0;
    int matched;
    const char *seen, *where;

    if (npins == 0) {
        return 0;
    }
    matched = pin_listed(chk->pins, &v->leaf_pin);
    seen = apr_psprintf(x->p, "%s (%s)", reencrypt_pin_str(x->p, &v->leaf_pin),
                        v->subject);
    /* RFC 7469 2.6: any key of the validated chain may match */
    for (i = 1; !matched && chk->pin_chain && x->chain
                && i < sk_X509_num(x->chain); i++) {
        X509 *cert = sk_X509_value(x->chain, i);
        reencrypt_pin_t pin;

        if (reencrypt_pin_of_cert(cert, &pin) == 0) {
            matched = pin_listed(chk->pins, &pin);
            seen = apr_psprintf(x->p, "%s, %s (%s)", seen,
                       reencrypt_pin_str(x->p, &pin),
                       reencrypt_name_str(x->p, X509_get_subject_name(cert)));
        }
    }
    if (matched) {
        return 0;
    }
    where = chk->pin_chain ? "the chain" : "the leaf";
    v->expected = (npins == 1)
        ? apr_psprintf(x->p, "the pin on %s (%s)", where,
                       pins_str(x->p, chk->pins))
        : apr_psprintf(x->p, "one of %d pins on %s (%s)", npins, where,
                       pins_str(x->p, chk->pins));
    v->seen = seen;
    return 1;
}

static int check_expiring(const verify_ctx_t *x)
{
    const reencrypt_check_t *chk = x->chk;
    reencrypt_verdict_t *v = x->v;

    if (chk->refuse_within <= 0
        || (apr_int64_t)(v->not_after - chk->now) >= chk->refuse_within) {
        return 0;
    }
    v->expected = apr_psprintf(x->p, "notAfter after %s "
                      "(ReencryptRefuseExpiringWithin %" APR_INT64_T_FMT "s)",
                      reencrypt_time_str(x->p, chk->now
                                         + (time_t)chk->refuse_within),
                      chk->refuse_within);
    v->seen = apr_psprintf(x->p, "%s notAfter=%s", v->subject,
                           reencrypt_time_str(x->p, v->not_after));
    return 1;
}

static int check_names(const verify_ctx_t *x)
{
    const reencrypt_check_t *chk = x->chk;
    int i;

    if (!chk->names) {
        return 0;
    }
    for (i = 0; i < chk->names->nelts; i++) {
        if (reencrypt_cert_matches(x->leaf, APR_ARRAY_IDX(chk->names, i,
                                                          const char *))) {
            return 0;
        }
    }
    x->v->expected = apr_pstrcat(x->p, names_str(x->p, chk->names),
                                 chk->names_from_sni ? " (SNI)" : "", NULL);
    x->v->seen = reencrypt_san_str(x->p, x->leaf, 10);
    return 1;
}

/* The checks in the order a refusal names the first that fails
 * (docs/directives.md, "What is verified, in which order"); no
 * certificate at all, or one without a usable key, is refused before. */
static const struct {
    reencrypt_reason_e reason;
    int (*check)(const verify_ctx_t *x);
} checks[] = {
    { REENCRYPT_ERR_UNTRUSTED,     check_trust },
    { REENCRYPT_ERR_REVOKED,       check_revoked },
    { REENCRYPT_ERR_CRL_INVALID,   check_crl_invalid },
    { REENCRYPT_ERR_CRL_EXPIRED,   check_crl_expired },
    { REENCRYPT_ERR_CRL_MISSING,   check_crl_missing },
    { REENCRYPT_ERR_NOT_YET_VALID, check_not_yet_valid },
    { REENCRYPT_ERR_EXPIRED,       check_expired },
    { REENCRYPT_ERR_DEPTH,         check_depth },
    { REENCRYPT_ERR_PIN,           check_pins },
    { REENCRYPT_ERR_EXPIRING,      check_expiring },
    { REENCRYPT_ERR_NAME,          check_names },
};

/* A stored chain passed the revocation check against these very CRLs
 * (crls_unchanged: the caller knows, e.g. because the policy id covers
 * their digests) without NoCRLForCertOK, so every
 * certificate checked had its issuer's CRL and none listed it; while
 * none of them is past its nextUpdate that verdict holds, and the chain
 * needs no new verification (which would verify every CRL's signature
 * again). Past a nextUpdate, or with NoCRLForCertOK (the verdict may
 * have been no-crl), it is verified again. */
static int stored_crls_hold(const reencrypt_check_t *chk)
{
    return chk->crls_unchanged && !chk->no_crl_ok
           && (!chk->crls_next_update || chk->crls_next_update >= chk->now);
}

/* The chain, by one of three paths (kept in one function, a little
 * over 80 lines, so that which path a chain takes reads in one place):
 * none with pin-only trust (the times
 * of the leaf only), the one stored with a resumed session (its times
 * again), or one built now by OpenSSL to the trust anchors (with the
 * CRLs, when revocation is checked; also for a stored chain then, since
 * a CRL may have passed its nextUpdate since). What goes wrong goes to
 * c. Returns REENCRYPT_OK, or a reason when no chain can be looked at;
 * *ctxp is the store context that owns *chainp (freed by the caller). */
static reencrypt_reason_e build_chain(apr_pool_t *p,
                                      const reencrypt_check_t *chk,
                                      X509 *leaf, STACK_OF(X509) *untrusted,
                                      int revoke, collector_t *c,
                                      X509_STORE_CTX **ctxp,
                                      STACK_OF(X509) **chainp,
                                      reencrypt_verdict_t *v)
{
    X509_STORE_CTX *ctx;
    X509_VERIFY_PARAM *param;
    int i, rc;

    if (chk->pin_only) {
        /* Trust comes from the pin alone: no chain is built, and only
         * the backend's own key can match (RFC 7469 2.6 needs a
         * validated chain for anything else). */
        if (!chk->pins || chk->pins->nelts == 0) {
            v->expected = "a pinned key (no ReencryptPin configured)";
            v->seen = reencrypt_pin_str(p, &v->leaf_pin);
            return REENCRYPT_ERR_PIN;
        }
        check_times(p, chk, leaf, c);
        v->chain_len = 1;
        return REENCRYPT_OK;
    }
    if (chk->validated && (!revoke || stored_crls_hold(chk))) {
        /* validated under this same policy when the session was made:
         * what may have changed since is time */
        *chainp = chk->validated;
        for (i = 0; i < sk_X509_num(chk->validated); i++) {
            check_times(p, chk, sk_X509_value(chk->validated, i), c);
        }
        v->chain_len = sk_X509_num(chk->validated);
        return REENCRYPT_OK;
    }
    if (!chk->anchors || !chk->anchors->store) {
        v->expected = "a trust anchor (none configured)";
        v->seen = v->subject;
        return REENCRYPT_ERR_UNTRUSTED;
    }
    if (chk->validated) {
        /* the chain stored with a resumed session, leaf first */
        untrusted = chk->validated;
    }
    ctx = X509_STORE_CTX_new();
    if (!ctx || !X509_STORE_CTX_init(ctx, chk->anchors->store, leaf,
                                     untrusted)) {
        X509_STORE_CTX_free(ctx);
        v->expected = "a verifiable chain";
        v->seen = "(verification could not start: out of memory)";
        return REENCRYPT_ERR_UNTRUSTED;
    }
    *ctxp = ctx;
    param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, chk->now);
    /* OpenSSL's depth counts intermediates only; ours counts every
     * certificate above the leaf and is checked by check_depth, with a
     * clear message. Let OpenSSL build chains longer than we allow. */
    X509_VERIFY_PARAM_set_depth(param, REENCRYPT_DEPTH_MAX);
    /* Every certificate in the anchors file is a trust anchor, also an
     * intermediate (RFC 5280 6.1.1 (d)). */
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
    if (revoke) {
        /* OpenSSL picks, for each certificate checked, the CRL of its
         * issuer (the newest among equals), uses it only if its
         * signature verifies with the issuer's key, and reports through
         * collect_cb */
        X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK
            | (chk->revocation == REENCRYPT_REVOCATION_CHAIN
               ? X509_V_FLAG_CRL_CHECK_ALL : 0));
        X509_STORE_CTX_set0_crls(ctx, chk->crls);
    }
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    X509_STORE_CTX_set_app_data(ctx, c);
    X509_STORE_CTX_set_verify_cb(ctx, collect_cb);

    rc = X509_verify_cert(ctx);
    if (rc <= 0 && !c->trust_err && !c->nyv && !c->expired
        && !c->too_long && !c->revoked && !c->crl_expired
        && !c->crl_missing && !c->crl_invalid) {
        /* failed without telling the callback */
        c->trust_err = X509_STORE_CTX_get_error(ctx);
        if (!c->trust_err) {
            c->trust_err = X509_V_ERR_UNSPECIFIED;
        }
    }
    *chainp = X509_STORE_CTX_get0_chain(ctx);
    v->chain_len = *chainp ? sk_X509_num(*chainp) : 0;
    return REENCRYPT_OK;
}

/* What the revocation check found: a stored chain that passed these
 * CRLs still passes them; else what OpenSSL reported (nothing when the
 * chain was not trusted in the first place) */
static reencrypt_revocation_state_e revocation_state(
    const reencrypt_check_t *chk, const collector_t *c)
{
    if (chk->validated && stored_crls_hold(chk)) {
        return REENCRYPT_REV_GOOD;
    }
    if (c->trust_err) {
        return REENCRYPT_REV_NOT_CHECKED;
    }
    return c->revoked ? REENCRYPT_REV_REVOKED
           : c->crl_invalid ? REENCRYPT_REV_CRL_INVALID
           : c->crl_expired ? REENCRYPT_REV_CRL_EXPIRED
           : c->crl_missing ? REENCRYPT_REV_CRL_MISSING
           : c->no_crl ? REENCRYPT_REV_NO_CRL
           : REENCRYPT_REV_GOOD;
}

reencrypt_reason_e reencrypt_verify(apr_pool_t *p,
                                    const reencrypt_check_t *chk,
                                    X509 *leaf, STACK_OF(X509) *untrusted,
                                    reencrypt_verdict_t *v)
{
    X509_STORE_CTX *ctx = NULL;
    collector_t c;
    STACK_OF(X509) *chain = NULL;
    verify_ctx_t x;
    apr_size_t i;
    int revoke;

    memset(v, 0, sizeof(*v));
    if (!leaf) {
        v->reason = REENCRYPT_ERR_NO_CERT;
        v->expected = "a certificate";
        v->seen = "none";
        return v->reason;
    }
    v->subject = reencrypt_name_str(p, X509_get_subject_name(leaf));
    v->not_after = reencrypt_asn1_time_t(X509_get0_notAfter(leaf));
    if (reencrypt_pin_of_cert(leaf, &v->leaf_pin) != 0) {
        v->reason = REENCRYPT_ERR_UNTRUSTED;
        v->expected = "a certificate with a usable public key";
        v->seen = v->subject;
        return v->reason;
    }

    memset(&c, 0, sizeof(c));
    c.p = p;
    c.now = chk->now;
    c.skew = chk->clock_skew;
    c.skew_until = chk->now + (time_t)chk->clock_skew;
    c.no_crl_ok = chk->no_crl_ok;
    revoke = !chk->pin_only && chk->crls
             && (chk->revocation == REENCRYPT_REVOCATION_CHAIN
                 || chk->revocation == REENCRYPT_REVOCATION_LEAF);

    v->reason = build_chain(p, chk, leaf, untrusted, revoke, &c, &ctx,
                            &chain, v);
    if (v->reason != REENCRYPT_OK) {
        return v->reason;
    }
    v->skew_used = c.skew_used;
    if (revoke) {
        v->revocation = revocation_state(chk, &c);
    }

    x.p = p;
    x.chk = chk;
    x.leaf = leaf;
    x.chain = chain;
    x.c = &c;
    x.v = v;
    for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        if (checks[i].check(&x)) {
            v->reason = checks[i].reason;
            break;
        }
    }

    if (chk->want_chain) {
        if (chain) {
            v->chain = X509_chain_up_ref(chain);
        }
        else if ((v->chain = sk_X509_new_null()) != NULL) {
            X509_up_ref(leaf);
            if (!sk_X509_push(v->chain, leaf)) {
                X509_free(leaf);
            }
        }
    }
    X509_STORE_CTX_free(ctx);
    return v->reason;
}

const char *reencrypt_reason_token(reencrypt_reason_e reason)
{
    switch (reason) {
    case REENCRYPT_OK:                return "ok";
    case REENCRYPT_ERR_NO_CERT:       return "no-certificate";
    case REENCRYPT_ERR_UNTRUSTED:     return "untrusted-chain";
    case REENCRYPT_ERR_NOT_YET_VALID: return "not-yet-valid";
    case REENCRYPT_ERR_EXPIRED:       return "expired";
    case REENCRYPT_ERR_DEPTH:         return "depth-exceeded";
    case REENCRYPT_ERR_PIN:           return "pin-mismatch";
    case REENCRYPT_ERR_EXPIRING:      return "expiring-within";
    case REENCRYPT_ERR_NAME:          return "name-mismatch";
    case REENCRYPT_ERR_REVOKED:       return "revoked";
    case REENCRYPT_ERR_CRL_EXPIRED:   return "crl-expired";
    case REENCRYPT_ERR_CRL_MISSING:   return "crl-missing";
    case REENCRYPT_ERR_CRL_INVALID:   return "crl-invalid";
    case REENCRYPT_ERR_STAPLE_REVOKED: return "staple-revoked";
    case REENCRYPT_ERR_STAPLE_UNKNOWN: return "staple-unknown";
    case REENCRYPT_ERR_STAPLE_MISSING: return "staple-missing";
    case REENCRYPT_ERR_STAPLE_EXPIRED: return "staple-expired";
    case REENCRYPT_ERR_STAPLE_INVALID: return "staple-invalid";
    }
    return "unknown";
}

int reencrypt_reason_x509_error(reencrypt_reason_e reason)
{
    switch (reason) {
    case REENCRYPT_OK:                return X509_V_OK;
    case REENCRYPT_ERR_NO_CERT:       return X509_V_ERR_UNSPECIFIED;
    case REENCRYPT_ERR_UNTRUSTED:     return X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
    case REENCRYPT_ERR_NOT_YET_VALID: return X509_V_ERR_CERT_NOT_YET_VALID;
    case REENCRYPT_ERR_EXPIRED:       return X509_V_ERR_CERT_HAS_EXPIRED;
    case REENCRYPT_ERR_DEPTH:         return X509_V_ERR_CERT_CHAIN_TOO_LONG;
    case REENCRYPT_ERR_PIN:           return X509_V_ERR_APPLICATION_VERIFICATION;
    case REENCRYPT_ERR_EXPIRING:      return X509_V_ERR_APPLICATION_VERIFICATION;
    case REENCRYPT_ERR_NAME:          return X509_V_ERR_HOSTNAME_MISMATCH;
    case REENCRYPT_ERR_REVOKED:       return X509_V_ERR_CERT_REVOKED;
    case REENCRYPT_ERR_CRL_EXPIRED:   return X509_V_ERR_CRL_HAS_EXPIRED;
    case REENCRYPT_ERR_CRL_MISSING:   return X509_V_ERR_UNABLE_TO_GET_CRL;
    case REENCRYPT_ERR_CRL_INVALID:   return X509_V_ERR_CRL_SIGNATURE_FAILURE;
    case REENCRYPT_ERR_STAPLE_REVOKED: return X509_V_ERR_CERT_REVOKED;
    case REENCRYPT_ERR_STAPLE_UNKNOWN:
    case REENCRYPT_ERR_STAPLE_MISSING:
    case REENCRYPT_ERR_STAPLE_EXPIRED:
    case REENCRYPT_ERR_STAPLE_INVALID: return X509_V_ERR_APPLICATION_VERIFICATION;
    }
    return X509_V_ERR_UNSPECIFIED;
}

int reencrypt_digest_pem_certs(EVP_MD_CTX *md, const char *pem,
                               apr_size_t len)
{
    BIO *bio;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long dlen = 0;
    int n = 0;

    if (len > INT_MAX || !(bio = BIO_new_mem_buf(pem, (int)len))) {
        return 0;
    }
    while (PEM_read_bio(bio, &name, &header, &data, &dlen)) {
        if (!strcmp(name, PEM_STRING_X509) || !strcmp(name, PEM_STRING_X509_OLD)
            || !strcmp(name, PEM_STRING_X509_TRUSTED)) {
            unsigned char d[EVP_MAX_MD_SIZE];
            unsigned int dl = 0;

            if (EVP_Digest(data, (size_t)dlen, d, &dl, EVP_sha256(), NULL)) {
                EVP_DigestUpdate(md, d, dl);
                n++;
            }
        }
        else {
            /* a key: forget it at once */
            OPENSSL_cleanse(data, (size_t)dlen);
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        name = header = NULL;
        data = NULL;
    }
    ERR_clear_error();          /* the end of the text reads as an error */
    BIO_free(bio);
    return n;
}
