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
 * The OCSP staple of a backend's handshake, checked without any network
 * call: who signed it (the issuer, or a responder the issuer authorised
 * for OCSP signing, RFC 6960 4.2.2.2), for which certificate (its
 * certificate ID, in whatever hash the responder used), and when
 * (thisUpdate and nextUpdate, with the policy's clock skew).
 */

#include <limits.h>
#include <string.h>

#include <apr_strings.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "reencrypt_staple.h"

/* The signer is the issuer itself, or a certificate the issuer signed
 * for OCSP signing and valid at now (with skew). NULL if it may sign,
 * else what is wrong with it. */
static const char *signer_problem(apr_pool_t *p, X509 *signer, X509 *issuer,
                                  time_t now, apr_int64_t skew)
{
    EVP_PKEY *ikey;
    time_t nb, na;

    if (!X509_cmp(signer, issuer)) {
        return NULL;
    }
    ikey = X509_get0_pubkey(issuer);
    if (X509_check_issued(issuer, signer) != X509_V_OK || !ikey
        || X509_verify(signer, ikey) != 1) {
        return apr_psprintf(p, "signed by %s, which is neither the issuer "
                            "nor certified by it",
                            reencrypt_cert_id_str(p, signer));
    }
    if (!(X509_get_extension_flags(signer) & EXFLAG_XKUSAGE)
        || !(X509_get_extended_key_usage(signer) & XKU_OCSP_SIGN)) {
        return apr_psprintf(p, "signed by %s, certified by the issuer but "
                            "not for OCSP signing (no OCSPSigning extended "
                            "key usage)", reencrypt_cert_id_str(p, signer));
    }
    nb = reencrypt_asn1_time_t(X509_get0_notBefore(signer));
    na = reencrypt_asn1_time_t(X509_get0_notAfter(signer));
    if (!nb || !na || (apr_int64_t)nb > (apr_int64_t)now + skew
        || (apr_int64_t)na < (apr_int64_t)now - skew) {
        return apr_psprintf(p, "signed by the responder %s, valid from %s "
                            "to %s only", reencrypt_cert_id_str(p, signer),
                            reencrypt_asn1_time_str(p,
                                X509_get0_notBefore(signer)),
                            reencrypt_asn1_time_str(p,
                                X509_get0_notAfter(signer)));
    }
    return NULL;
}

/* The single response about leaf, found by comparing certificate IDs
 * made with each response's own hash; NULL if there is none. */
static OCSP_SINGLERESP *find_single(OCSP_BASICRESP *bs, X509 *leaf,
                                    X509 *issuer)
{
    int i, n = OCSP_resp_count(bs);

    for (i = 0; i < n; i++) {
        OCSP_SINGLERESP *single = OCSP_resp_get0(bs, i);
        OCSP_CERTID *their = single ? (OCSP_CERTID *)
                                      OCSP_SINGLERESP_get0_id(single) : NULL;
        ASN1_OBJECT *md_oid = NULL;
        const EVP_MD *md;
        OCSP_CERTID *ours;
        int same;

        if (!their || !OCSP_id_get0_info(NULL, &md_oid, NULL, NULL, their)
            || !(md = EVP_get_digestbyobj(md_oid))) {
            continue;
        }
        if (!(ours = OCSP_cert_to_id(md, leaf, issuer))) {
            continue;
        }
        same = !OCSP_id_cmp(ours, their);
        OCSP_CERTID_free(ours);
        if (same) {
            return single;
        }
    }
    return NULL;
}

static void set(reencrypt_staple_t *out, reencrypt_staple_state_e state,
                const char *seen)
{
    out->state = state;
    out->seen = seen;
}

/* The basic response of der, signed by a signer the issuer vouches
 * for; NULL (and *seen says why) otherwise. The caller frees it. */
static OCSP_BASICRESP *signed_basic(apr_pool_t *p, const unsigned char *der,
                                    apr_size_t len, X509 *issuer,
                                    time_t now, apr_int64_t skew,
                                    reencrypt_staple_state_e *state,
                                    const char **seen)
{
    const unsigned char *q = der;
    OCSP_RESPONSE *resp = NULL;
    OCSP_BASICRESP *bs = NULL;
    STACK_OF(X509) *extra = NULL;
    X509 *signer = NULL;
    const char *problem;
    int rstatus;

    *state = REENCRYPT_STAPLE_INVALID;
    if (len > LONG_MAX || !(resp = d2i_OCSP_RESPONSE(NULL, &q, (long)len))
        || q != der + len) {
        *seen = apr_psprintf(p, "%" APR_SIZE_T_FMT " bytes that are not one "
                             "OCSP response", len);
        goto fail;
    }
    rstatus = OCSP_response_status(resp);
    if (rstatus != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        /* the backend passed on its responder's error: no status */
        *state = REENCRYPT_STAPLE_ABSENT;
        *seen = apr_psprintf(p, "an OCSP response without a status "
                             "(responseStatus %s)",
                             OCSP_response_status_str(rstatus));
        goto fail;
    }
    if (!(bs = OCSP_response_get1_basic(resp))) {
        *seen = "an OCSP response that is not a basic response";
        goto fail;
    }
    if (!(extra = sk_X509_new_null()) || !sk_X509_push(extra, issuer)) {
        *seen = "(out of memory)";
        goto fail;
    }
    if (OCSP_resp_get0_signer(bs, &signer, extra) != 1 || !signer) {
        *seen = "an OCSP staple whose signer is neither in it nor the "
                "issuer";
        goto fail;
    }
    /* the signature by the key of that very signer (alone in the list,
     * nothing looked up in the response); who the signer may be is
     * decided below, not by a chain to some store */
    sk_X509_zero(extra);
    if (!sk_X509_push(extra, signer)
        || OCSP_basic_verify(bs, extra, NULL,
                             OCSP_NOVERIFY | OCSP_NOINTERN) != 1) {
        *seen = apr_psprintf(p, "an OCSP staple whose signature does not "
                             "verify with the key of %s",
                             reencrypt_cert_id_str(p, signer));
        goto fail;
    }
    if ((problem = signer_problem(p, signer, issuer, now, skew))) {
        *seen = apr_pstrcat(p, "an OCSP staple ", problem, NULL);
        goto fail;
    }
    sk_X509_free(extra);
    OCSP_RESPONSE_free(resp);
    return bs;

fail:
    sk_X509_free(extra);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    return NULL;
}

/* What the single response about the leaf says, at now with skew */
static void judge_single(apr_pool_t *p, OCSP_SINGLERESP *single,
                         const char *leaf_id, time_t now, apr_int64_t skew,
                         reencrypt_staple_t *out)
{
    ASN1_GENERALIZEDTIME *thisupd = NULL, *nextupd = NULL, *revtime = NULL;
    int status, reason = -1;

    status = OCSP_single_get0_status(single, &reason, &revtime, &thisupd,
                                     &nextupd);
    out->this_update = reencrypt_asn1_time_t(thisupd);
    out->next_update = nextupd ? reencrypt_asn1_time_t(nextupd) : 0;
    if (!out->this_update || (nextupd && !out->next_update)) {
        set(out, REENCRYPT_STAPLE_INVALID, "an OCSP staple with unreadable "
            "times");
        return;
    }
    if ((apr_int64_t)out->this_update > (apr_int64_t)now + skew) {
        set(out, REENCRYPT_STAPLE_INVALID, apr_psprintf(p, "an OCSP staple "
            "for %s with thisUpdate=%s, in the future", leaf_id,
            reencrypt_time_str(p, out->this_update)));
        return;
    }
    if (out->next_update && (apr_int64_t)out->next_update
                            < (apr_int64_t)now) {
        if ((apr_int64_t)out->next_update < (apr_int64_t)now - skew) {
            set(out, REENCRYPT_STAPLE_EXPIRED, apr_psprintf(p, "an OCSP "
                "staple for %s with nextUpdate=%s, past", leaf_id,
                reencrypt_time_str(p, out->next_update)));
            return;
        }
        out->skew_used = 1;
    }
    if (out->this_update > now) {
        out->skew_used = 1;
    }
    if (status == V_OCSP_CERTSTATUS_GOOD) {
        set(out, REENCRYPT_STAPLE_GOOD, apr_psprintf(p, "an OCSP staple "
            "for %s: good, thisUpdate=%s nextUpdate=%s", leaf_id,
            reencrypt_time_str(p, out->this_update), out->next_update
            ? reencrypt_time_str(p, out->next_update) : "(none)"));
    }
    else if (status == V_OCSP_CERTSTATUS_REVOKED) {
        set(out, REENCRYPT_STAPLE_REVOKED, apr_psprintf(p, "an OCSP staple "
            "for %s: revoked at %s%s%s%s", leaf_id,
            revtime ? reencrypt_asn1_time_str(p, revtime) : "(unknown)",
            reason >= 0 ? " (reason " : "",
            reason >= 0 ? OCSP_crl_reason_str(reason) : "",
            reason >= 0 ? ")" : ""));
    }
    else {
        set(out, REENCRYPT_STAPLE_UNKNOWN, apr_psprintf(p, "an OCSP staple "
            "for %s: unknown to the responder", leaf_id));
    }
}

void reencrypt_staple_check(apr_pool_t *p, const unsigned char *der,
                            apr_size_t len, X509 *leaf, X509 *issuer,
                            time_t now, apr_int64_t skew,
                            reencrypt_staple_t *out)
{
    OCSP_BASICRESP *bs;
    OCSP_SINGLERESP *single;
    reencrypt_staple_state_e state;
    const char *leaf_id, *seen = NULL;

    memset(out, 0, sizeof(*out));
    leaf_id = reencrypt_cert_id_str(p, leaf);
    out->expected = apr_psprintf(p, "an OCSP staple for %s saying good, "
                                 "signed by its issuer or a responder the "
                                 "issuer authorised, current at %s",
                                 leaf_id, reencrypt_time_str(p, now));
    if (!der || !len) {
        set(out, REENCRYPT_STAPLE_ABSENT, "no OCSP staple");
        return;
    }
    if (!leaf || !issuer) {
        set(out, REENCRYPT_STAPLE_INVALID,
            "an OCSP staple for a certificate whose issuer is not known");
        return;
    }
    if (!(bs = signed_basic(p, der, len, issuer, now, skew, &state,
                            &seen))) {
        set(out, state, seen);
    }
    else if (!(single = find_single(bs, leaf, issuer))) {
        set(out, REENCRYPT_STAPLE_INVALID, apr_psprintf(p, "an OCSP staple "
            "with no status for %s (issued by %s)", leaf_id,
            reencrypt_name_str(p, X509_get_subject_name(issuer))));
    }
    else {
        judge_single(p, single, leaf_id, now, skew, out);
    }
    OCSP_BASICRESP_free(bs);
    ERR_clear_error();
}

reencrypt_reason_e reencrypt_staple_reason(reencrypt_stapling_e mode,
                                           reencrypt_staple_state_e st)
{
    if (mode != REENCRYPT_STAPLING_VERIFY
        && mode != REENCRYPT_STAPLING_REQUIRE) {
        return REENCRYPT_OK;
    }
    switch (st) {
    case REENCRYPT_STAPLE_REVOKED:
        return REENCRYPT_ERR_STAPLE_REVOKED;
    case REENCRYPT_STAPLE_EXPIRED:
        return REENCRYPT_ERR_STAPLE_EXPIRED;
    case REENCRYPT_STAPLE_INVALID:
        return REENCRYPT_ERR_STAPLE_INVALID;
    case REENCRYPT_STAPLE_UNKNOWN:
        return mode == REENCRYPT_STAPLING_REQUIRE
               ? REENCRYPT_ERR_STAPLE_UNKNOWN : REENCRYPT_OK;
    case REENCRYPT_STAPLE_ABSENT:
    case REENCRYPT_STAPLE_NOT_CHECKED:
        return mode == REENCRYPT_STAPLING_REQUIRE
               ? REENCRYPT_ERR_STAPLE_MISSING : REENCRYPT_OK;
    case REENCRYPT_STAPLE_GOOD:
    case REENCRYPT_STAPLE_RESUMED:
        return REENCRYPT_OK;
    }
    return REENCRYPT_ERR_STAPLE_INVALID;
}

const char *reencrypt_staple_token(reencrypt_staple_state_e st)
{
    switch (st) {
    case REENCRYPT_STAPLE_NOT_CHECKED: return "not-checked";
    case REENCRYPT_STAPLE_GOOD:        return "good";
    case REENCRYPT_STAPLE_REVOKED:     return "revoked";
    case REENCRYPT_STAPLE_UNKNOWN:     return "unknown";
    case REENCRYPT_STAPLE_ABSENT:      return "absent";
    case REENCRYPT_STAPLE_EXPIRED:     return "expired";
    case REENCRYPT_STAPLE_INVALID:     return "invalid";
    case REENCRYPT_STAPLE_RESUMED:     return "resumed";
    }
    return "unknown";
}
