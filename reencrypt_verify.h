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

/**
 * @file reencrypt_verify.h
 * @brief Pure verification of a backend's certificate chain against a
 *        policy: trust anchors, validity, depth and expected names.
 *
 * Takes OpenSSL objects and plain values only; never sees httpd state.
 */

#ifndef REENCRYPT_VERIFY_H
#define REENCRYPT_VERIFY_H

#include <time.h>

#include <apr_pools.h>
#include <apr_tables.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "reencrypt_policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Why a backend was refused. The tokens (reencrypt_reason_token) are
 *  stable: they appear in the log and in access-log variables. */
typedef enum {
    REENCRYPT_OK = 0,
    REENCRYPT_ERR_NO_CERT,
    REENCRYPT_ERR_UNTRUSTED,
    REENCRYPT_ERR_NOT_YET_VALID,
    REENCRYPT_ERR_EXPIRED,
    REENCRYPT_ERR_DEPTH,
    REENCRYPT_ERR_PIN,
    REENCRYPT_ERR_EXPIRING,
    REENCRYPT_ERR_NAME,
    REENCRYPT_ERR_REVOKED,        /**< listed in its issuer's CRL */
    REENCRYPT_ERR_CRL_EXPIRED,    /**< the CRL's nextUpdate is past */
    REENCRYPT_ERR_CRL_MISSING,    /**< no CRL of an issuer to check */
    REENCRYPT_ERR_CRL_INVALID,    /**< a CRL that cannot be used (bad
                                   *   signature, issuer, not yet valid) */
    REENCRYPT_ERR_STAPLE_REVOKED, /**< the OCSP staple says revoked */
    REENCRYPT_ERR_STAPLE_UNKNOWN, /**< it says unknown (Require) */
    REENCRYPT_ERR_STAPLE_MISSING, /**< none was stapled (Require) */
    REENCRYPT_ERR_STAPLE_EXPIRED, /**< its nextUpdate is past */
    REENCRYPT_ERR_STAPLE_INVALID  /**< unreadable, wrong signer, another
                                   *   certificate, not yet valid */
} reencrypt_reason_e;

/** Number of reasons, REENCRYPT_OK included (for counters). */
#define REENCRYPT_REASONS (REENCRYPT_ERR_STAPLE_INVALID + 1)

/** What the revocation check found (REENCRYPT_REVOCATION). */
typedef enum {
    REENCRYPT_REV_NOT_CHECKED = 0, /**< no check (Off, or the chain was
                                    *   refused before it mattered) */
    REENCRYPT_REV_GOOD,            /**< every certificate checked had a
                                    *   CRL and none lists it */
    REENCRYPT_REV_NO_CRL,          /**< none listed, but an issuer had no
                                    *   CRL (let pass: NoCRLForCertOK) */
    REENCRYPT_REV_REVOKED,
    REENCRYPT_REV_CRL_EXPIRED,
    REENCRYPT_REV_CRL_MISSING,
    REENCRYPT_REV_CRL_INVALID
} reencrypt_revocation_state_e;

/** What the verification was asked to check. */
typedef struct {
    const reencrypt_anchors_t *anchors;   /**< required unless pin_only */
    int depth;                            /**< max certs above the leaf */
    const apr_array_header_t *names;      /**< const char *, any-of;
                                           *   NULL: names not checked */
    int names_from_sni;                   /**< names[0] is the SNI sent */
    const apr_array_header_t *pins;       /**< reencrypt_pin_t, any-of;
                                           *   NULL or empty: no pinning */
    int pin_chain;                        /**< pins may match any key of
                                           *   the validated chain */
    int pin_only;                         /**< trust = a pinned leaf key,
                                           *   no chain validation */
    apr_int64_t refuse_within;            /**< seconds, 0 = no window */
    apr_int64_t clock_skew;               /**< notBefore (and CRL
                                           *   nextUpdate) grace, seconds */
    STACK_OF(X509_CRL) *crls;             /**< CRLs to check against */
    time_t crls_next_update;              /**< the earliest nextUpdate of
                                           *   crls, 0 if none gives one */
    int crls_unchanged;                   /**< validated passed the
                                           *   revocation check against
                                           *   these very crls */
    reencrypt_revocation_e revocation;    /**< CHAIN, LEAF or OFF (UNSET
                                           *   reads as OFF) */
    int no_crl_ok;                        /**< a missing CRL passes */
    time_t now;                           /**< verification time */
    STACK_OF(X509) *validated;            /**< a chain (leaf first)
                                           *   validated earlier under the
                                           *   same policy: re-check times,
                                           *   pins, window and names only
                                           *   (resumed sessions). With a
                                           *   revocation check, only with
                                           *   crls_unchanged, while all
                                           *   crls are current, and
                                           *   without NoCRLForCertOK;
                                           *   else the chain is verified
                                           *   again, CRLs included */
    int want_chain;                       /**< return the chain used */
} reencrypt_check_t;

/** Fill chk with what the effective policy pol asks of a backend's
 *  chain at now. names: the names expected of that backend
 *  (reencrypt_expected_names), names_from_sni: names[0] is the SNI sent;
 *  validated: a chain validated earlier under this very policy (a
 *  resumed session), NULL for a full handshake (the chain is then asked
 *  for). The one place where a policy becomes a check: the handshakes of
 *  requests (reencrypt_ssl.c) and apachectl -t -D REENCRYPT_PROBE
 *  (reencrypt_dump.c) verify alike. */
void reencrypt_check_init(reencrypt_check_t *chk,
                          const reencrypt_policy_t *pol,
                          const apr_array_header_t *names,
                          int names_from_sni, time_t now,
                          STACK_OF(X509) *validated);

/** The outcome, with text for the one log line. */
typedef struct {
    reencrypt_reason_e reason;
    const char *expected;     /**< what the policy wanted (NULL if OK) */
    const char *seen;         /**< what the backend presented */
    int chain_len;            /**< certificates in the verified chain */
    const char *subject;      /**< leaf subject, one line */
    reencrypt_pin_t leaf_pin; /**< the presented key's pin */
    time_t not_after;         /**< the leaf's notAfter (0 if unknown) */
    int skew_used;            /**< accepted only thanks to clock_skew */
    reencrypt_revocation_state_e revocation; /**< the revocation check */
    STACK_OF(X509) *chain;    /**< with want_chain: the chain checked,
                               *   leaf first; the caller frees it with
                               *   sk_X509_pop_free(chain, X509_free) */
} reencrypt_verdict_t;

/** Digest the certificates of PEM text into a SHA-256 context: the DER
 *  of each CERTIFICATE block, in order (keys and other blocks are
 *  skipped, never parsed). Returns the number of certificates. */
int reencrypt_digest_pem_certs(EVP_MD_CTX *md, const char *pem,
                               apr_size_t len);

/** Load every PEM certificate of path into a new X509_STORE. On
 *  success returns NULL and fills *out (allocated from p; the store is
 *  freed by a cleanup on p). On failure returns a message (from p) that
 *  starts with directive and quotes the path. */
const char *reencrypt_anchors_load(apr_pool_t *p, const char *directive,
                                   const char *path,
                                   const reencrypt_anchors_t **out);

/** Load the CRLs of path, PEM (one or more "X509 CRL" blocks) or DER
 *  (one or more CRLs one after the other). On success returns NULL and
 *  fills *out (from p; the CRLs are freed by a cleanup on p). On
 *  failure returns a message (from p) that starts with directive and
 *  quotes the path. */
const char *reencrypt_crl_file_load(apr_pool_t *p, const char *directive,
                                    const char *path,
                                    const reencrypt_crl_file_t **out);

/** reencrypt_crl_file_load() of the len bytes of buf (no NUL needed
 *  after them), the content of the file path (used in messages). */
const char *reencrypt_crl_file_parse(apr_pool_t *p, const char *directive,
                                     const char *path, const char *buf,
                                     apr_size_t len,
                                     const reencrypt_crl_file_t **out);

/** The CRLs of f are no longer freed by the cleanup on p, the pool f was
 *  loaded from: reencrypt_crl_file_free() frees them. For a copy kept in
 *  a pool that outlives the module's code (httpd unloads and loads the
 *  module again at each reading of the configuration), where a cleanup
 *  of the module's would be called at an address the module may no
 *  longer have. */
void reencrypt_crl_file_unmanage(apr_pool_t *p,
                                 const reencrypt_crl_file_t *f);

/** Free the CRLs of f, unmanaged before; f is not to be used after. */
void reencrypt_crl_file_free(const reencrypt_crl_file_t *f);

/** A scope's CRL set: base's files (base may be NULL) and then file's,
 *  as a new set from p (base is left as it is). */
const reencrypt_crls_t *reencrypt_crls_add(apr_pool_t *p,
                                           const reencrypt_crls_t *base,
                                           const reencrypt_crl_file_t *file,
                                           const char *where);

/** Stable token for a revocation state, e.g. "revoked". */
const char *reencrypt_revocation_token(reencrypt_revocation_state_e st);

/** reencrypt_anchors_load() of the len bytes of buf, the content of the
 *  file path (used in messages and kept in the anchors). */
const char *reencrypt_anchors_parse(apr_pool_t *p, const char *directive,
                                    const char *path, const char *buf,
                                    apr_size_t len,
                                    const reencrypt_anchors_t **out);

/** The store of a is no longer freed by the cleanup on p, the pool a
 *  was loaded from: reencrypt_anchors_free() frees it (see
 *  reencrypt_crl_file_unmanage). */
void reencrypt_anchors_unmanage(apr_pool_t *p, const reencrypt_anchors_t *a);

/** Free the store of a, unmanaged before; a is not to be used after. */
void reencrypt_anchors_free(const reencrypt_anchors_t *a);

/** Verify leaf (with the untrusted certificates the backend sent, which
 *  may include the leaf itself) against chk. Fills *v; strings are
 *  allocated from p. Returns v->reason. Thread-safe. */
reencrypt_reason_e reencrypt_verify(apr_pool_t *p,
                                    const reencrypt_check_t *chk,
                                    X509 *leaf, STACK_OF(X509) *untrusted,
                                    reencrypt_verdict_t *v);

/** The SPKI pin of a public key / of a certificate's key. Return 0 on
 *  success, -1 on failure. */
int reencrypt_pin_of_pkey(EVP_PKEY *pkey, reencrypt_pin_t *pin);
int reencrypt_pin_of_cert(X509 *cert, reencrypt_pin_t *pin);

/** Convert an ASN1_TIME to time_t; 0 on failure. */
time_t reencrypt_asn1_time_t(const ASN1_TIME *t);

/** Stable token for a reason, e.g. "name-mismatch". */
const char *reencrypt_reason_token(reencrypt_reason_e reason);

/** The X509_V_ERR_* code that best describes a reason, so that the TLS
 *  alert sent to the backend is meaningful. */
int reencrypt_reason_x509_error(reencrypt_reason_e reason);

/** Format an ASN1_TIME as "YYYY-MM-DDTHH:MM:SSZ" (from p). */
const char *reencrypt_asn1_time_str(apr_pool_t *p, const ASN1_TIME *t);

/** Format a time_t the same way (from p). */
const char *reencrypt_time_str(apr_pool_t *p, time_t t);

/** The subjectAltName entries of cert as "DNS:a, IP:1.2.3.4", at most
 *  max entries (then ", ..."); "no subjectAltName" if none. */
const char *reencrypt_san_str(apr_pool_t *p, X509 *cert, int max);

/** "CN=x serial 0x1A2B" of a certificate ("(no certificate)" for
 *  NULL), from p. */
const char *reencrypt_cert_id_str(apr_pool_t *p, X509 *cert);

/** One-line RFC 2253 name, e.g. "CN=good.test,O=Example". */
const char *reencrypt_name_str(apr_pool_t *p, X509_NAME *name);

/** Non-zero if cert carries name (DNS or IP literal) in its SANs under
 *  the rules of reencrypt_dns_match(). The subject CN is never used. */
int reencrypt_cert_matches(X509 *cert, const char *name);

#ifdef __cplusplus
}
#endif

#endif /* REENCRYPT_VERIFY_H */
