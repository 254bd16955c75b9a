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
 * @file reencrypt_staple.h
 * @brief Pure check of the OCSP response a backend staples to its
 *        handshake (RFC 6960, RFC 6066 status_request).
 *
 * Takes the DER bytes of the staple and OpenSSL objects only; never
 * sees httpd state and never sends an OCSP request.
 */

#ifndef REENCRYPT_STAPLE_H
#define REENCRYPT_STAPLE_H

#include <time.h>

#include <apr_pools.h>

#include <openssl/x509.h>

#include "reencrypt_policy.h"
#include "reencrypt_verify.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What the staple check found (REENCRYPT_STAPLE, the status views).
 *  The tokens (reencrypt_staple_token) are stable. */
typedef enum {
    REENCRYPT_STAPLE_NOT_CHECKED = 0, /**< "not-checked": stapling Off,
                                       *   or a chain refused before */
    REENCRYPT_STAPLE_GOOD,            /**< "good" */
    REENCRYPT_STAPLE_REVOKED,         /**< "revoked" */
    REENCRYPT_STAPLE_UNKNOWN,         /**< "unknown": the responder does
                                       *   not know the certificate */
    REENCRYPT_STAPLE_ABSENT,          /**< "absent": none sent, or a
                                       *   response without any status
                                       *   (tryLater, internalError...) */
    REENCRYPT_STAPLE_EXPIRED,         /**< "expired": nextUpdate past */
    REENCRYPT_STAPLE_INVALID,         /**< "invalid": unreadable, wrong
                                       *   signer, bad signature, another
                                       *   certificate, not yet valid */
    REENCRYPT_STAPLE_RESUMED          /**< "resumed": a resumed session,
                                       *   checked at its full handshake */
} reencrypt_staple_state_e;

/** The outcome of a staple check. */
typedef struct {
    reencrypt_staple_state_e state;
    const char *seen;         /**< one line for the log: what was stapled */
    const char *expected;     /**< what would have passed */
    time_t this_update;       /**< 0 if unknown */
    time_t next_update;       /**< 0 if unknown or not given */
    int skew_used;            /**< current only thanks to the skew */
} reencrypt_staple_t;

/**
 * Check the staple der (len bytes; NULL or len 0: none was sent) for
 * leaf, issued by issuer, at now, with skew seconds of grace on
 * thisUpdate and nextUpdate. The response must be signed by issuer, or
 * by a responder certificate issuer signed with the OCSPSigning extended
 * key usage and valid at now; it must hold a status for leaf's
 * certificate ID (any hash). issuer NULL: the staple cannot be checked
 * (invalid). Fills *out, strings from p. Thread-safe.
 */
void reencrypt_staple_check(apr_pool_t *p, const unsigned char *der,
                            apr_size_t len, X509 *leaf, X509 *issuer,
                            time_t now, apr_int64_t skew,
                            reencrypt_staple_t *out);

/** Does a staple in state st pass under mode? REENCRYPT_OK if it does,
 *  else the refusal reason (REENCRYPT_ERR_STAPLE_*). */
reencrypt_reason_e reencrypt_staple_reason(reencrypt_stapling_e mode,
                                           reencrypt_staple_state_e st);

/** Stable token of a staple state, e.g. "good". */
const char *reencrypt_staple_token(reencrypt_staple_state_e st);

#ifdef __cplusplus
}
#endif

#endif /* REENCRYPT_STAPLE_H */
