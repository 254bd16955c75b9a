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
 * @file reencrypt_policy.h
 * @brief Pure policy logic of mod_reencrypt: parsing directive values,
 *        host name rules, the per-scope policy record, its merge and
 *        its identity.
 *
 * Nothing in here sees a request, a connection or a server record: the
 * unit tests compile this file with APR and OpenSSL only.
 */

#ifndef REENCRYPT_POLICY_H
#define REENCRYPT_POLICY_H

#include <time.h>

#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_network_io.h>
#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#include <openssl/x509.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Sentinel for "not set in this scope" on int-valued fields. */
#define REENCRYPT_UNSET          (-1)

/** Range and default of ReencryptVerifyDepth. */
#define REENCRYPT_DEPTH_MIN      0
#define REENCRYPT_DEPTH_MAX      32
#define REENCRYPT_DEPTH_DEFAULT  4

/** Longest DNS name accepted (RFC 1035 presentation form, no final dot). */
#define REENCRYPT_DNS_NAME_MAX   253

/** What to send as SNI to the backend. */
typedef enum {
    REENCRYPT_SNI_UNSET = 0,   /**< not set in this scope */
    REENCRYPT_SNI_BACKEND,     /**< host of the ProxyPass URL, none for IPs */
    REENCRYPT_SNI_HOST,        /**< the client's Host header */
    REENCRYPT_SNI_OFF,         /**< no SNI at all */
    REENCRYPT_SNI_NAME         /**< a literal name from the config */
} reencrypt_sni_mode_e;

/** Which certificates a pin may match. */
typedef enum {
    REENCRYPT_PIN_SCOPE_UNSET = 0,
    REENCRYPT_PIN_SCOPE_LEAF,      /**< the backend's own key only */
    REENCRYPT_PIN_SCOPE_CHAIN      /**< any key of the validated chain */
} reencrypt_pin_scope_e;

/** What makes a backend trusted. */
typedef enum {
    REENCRYPT_TRUST_UNSET = 0,
    REENCRYPT_TRUST_ANCHORS,       /**< a chain to a trust anchor */
    REENCRYPT_TRUST_PIN_ONLY       /**< a pinned key, no chain (opt-in) */
} reencrypt_trust_e;

/** Refuse, or only report, what violates the policy. */
typedef enum {
    REENCRYPT_MODE_UNSET = 0,
    REENCRYPT_MODE_ENFORCE,
    REENCRYPT_MODE_REPORT
} reencrypt_mode_e;

/** Which certificates of a backend's chain are checked against CRLs
 *  (ReencryptRevocationCheck). */
typedef enum {
    REENCRYPT_REVOCATION_UNSET = 0,
    REENCRYPT_REVOCATION_CHAIN,    /**< every certificate of the chain */
    REENCRYPT_REVOCATION_LEAF,     /**< the backend's own only */
    REENCRYPT_REVOCATION_OFF       /**< none */
} reencrypt_revocation_e;

/** Whether the backend is asked for an OCSP staple and what its absence
 *  means (ReencryptOCSPStapling). */
typedef enum {
    REENCRYPT_STAPLING_UNSET = 0,
    REENCRYPT_STAPLING_OFF,        /**< not asked for, not checked */
    REENCRYPT_STAPLING_VERIFY,     /**< checked when sent; none passes */
    REENCRYPT_STAPLING_REQUIRE     /**< a good, current staple or refuse */
} reencrypt_stapling_e;

/** Length of a SHA-256 digest, the only pin hash. */
#define REENCRYPT_PIN_LEN        32

/** An SPKI pin: SHA-256 of the DER SubjectPublicKeyInfo (RFC 7469). */
typedef struct {
    unsigned char sha256[REENCRYPT_PIN_LEN];
} reencrypt_pin_t;

/** Longest duration accepted: ten years, in seconds. */
#define REENCRYPT_DURATION_MAX   (3650LL * 86400LL)

/** A set of trust anchors loaded from one PEM file. Immutable once
 *  loaded; shared read-only by all threads. */
typedef struct {
    const char *path;            /**< resolved file name */
    X509_STORE *store;           /**< the anchors */
    int count;                   /**< number of certificates in the file */
    unsigned char digest[32];    /**< SHA-256 of the file's bytes */
} reencrypt_anchors_t;

/** What the status views and the expiry warning (RE00082) show of one
 *  CRL: read once, when its file is loaded. */
typedef struct {
    const char *issuer;          /**< one-line RFC 2253 name */
    time_t last_update;          /**< 0 if unreadable */
    time_t next_update;          /**< 0 when the CRL gives none */
    int entries;                 /**< revoked certificates it lists */
    unsigned char digest[32];    /**< SHA-256 of the CRL's DER */
} reencrypt_crl_info_t;

/** The CRLs of one file of ReencryptCARevocationFile. Immutable once
 *  loaded; shared read-only by all threads and by every scope that
 *  names the same file. */
typedef struct {
    const char *path;            /**< resolved file name */
    STACK_OF(X509_CRL) *crls;    /**< the CRLs, in file order */
    unsigned char digest[32];    /**< SHA-256 of the file's bytes */
    /** reencrypt_crl_info_t of each CRL, in file order */
    const apr_array_header_t *info;
    time_t soonest_next_update;  /**< earliest nextUpdate of its CRLs,
                                  *   0 when none gives one */
} reencrypt_crl_file_t;

/** The CRLs of one scope: the files of its ReencryptCARevocationFile
 *  directives, in order, and all their CRLs in one stack. Built while
 *  the configuration is read, read-only afterwards. */
typedef struct {
    apr_array_header_t *files;   /**< const reencrypt_crl_file_t * */
    STACK_OF(X509_CRL) *all;     /**< every CRL of every file */
    const char *where;           /**< "file:line" of the first directive */
    apr_array_header_t *wheres;  /**< const char *: "file:line" of the
                                  *   directive of each file, in order */
    time_t soonest_next_update;  /**< earliest nextUpdate of all its
                                  *   CRLs, 0 when none gives one: a
                                  *   handshake compares it with the
                                  *   warning window, nothing more */
} reencrypt_crls_t;

/**
 * The policy of one configuration scope (server, virtual host,
 * <Location>, <Proxy>). Fields hold REENCRYPT_UNSET / NULL / _UNSET
 * when the scope does not set them; defaults are applied by the
 * reencrypt_policy_get_*() readers, never stored.
 */
typedef struct {
    int engine;                          /**< -1 unset, 0 Off, 1 On */
    const char *engine_where;            /**< "file:line" of On or Off */
    const reencrypt_anchors_t *anchors;  /**< NULL if unset */
    const char *anchors_where;           /**< "file:line" of the file */
    int verify_depth;                    /**< -1 unset */
    const char *depth_where;             /**< "file:line" of the depth */
    apr_array_header_t *verify_names;    /**< const char *; NULL unset */
    const char *names_where;             /**< "file:line" of the first
                                          *   ReencryptVerifyName */
    reencrypt_sni_mode_e sni_mode;
    const char *sni_name;                /**< with REENCRYPT_SNI_NAME */
    const char *sni_where;               /**< "file:line" of the mode */
    int check_name;                      /**< -1 unset, 0 Off, 1 On */
    const char *check_name_where;        /**< "file:line" of the flag */
    apr_array_header_t *pins;            /**< reencrypt_pin_t; NULL unset */
    const char *pins_where;              /**< "file:line" of the pins */
    reencrypt_pin_scope_e pin_scope;
    const char *pin_scope_where;         /**< "file:line" of the scope */
    reencrypt_trust_e trust;
    const char *trust_where;             /**< "file:line" of the trust */
    apr_int64_t refuse_within;           /**< seconds; -1 unset */
    const char *refuse_where;            /**< "file:line" of the window */
    apr_int64_t warn_within;             /**< seconds; -1 unset */
    const char *warn_where;              /**< "file:line" of the window */
    apr_int64_t clock_skew;              /**< seconds; -1 unset */
    const char *skew_where;              /**< "file:line" of the skew */
    reencrypt_mode_e mode;
    const char *mode_where;              /**< "file:line" of the mode */
    int session_reuse;                   /**< -1 unset, 0 Off, 1 On */
    const char *reuse_where;             /**< "file:line" of the flag */
    apr_int64_t session_timeout;         /**< seconds; -1 unset */
    const char *timeout_where;           /**< "file:line" of the timeout */
    /** What mod_ssl presents to a backend from this scope, as the module
     *  reads mod_ssl's own directives: SHA-256 digests
     *  (REENCRYPT_CLIENT_ID_LEN bytes) of the certificates named by
     *  SSLProxyMachineCertificateFile, ...Path and ...ChainFile; NULL
     *  where the scope does not set them. Part of the policy identity:
     *  a backend connection or session made with one client identity
     *  never serves another. */
    const unsigned char *client_cert_file;
    const unsigned char *client_cert_path;
    const unsigned char *client_chain_file;
    /** The files themselves (resolved names), with their digests: what
     *  apachectl -t -D REENCRYPT_PROBE presents (reencrypt_dump.c) */
    const char *client_cert_file_name;
    const char *client_cert_path_name;
    const char *client_chain_file_name;
    /** mod_ssl's SSLProxyCheckPeerExpire in this scope: -1 unset */
    int ssl_check_peer_expire;
    /** ReencryptCARevocationFile: NULL unset; the directive appends
     *  within a scope, an inner scope replaces the list */
    const reencrypt_crls_t *crls;
    /** ReencryptRevocationCheck: the mode, and whether a certificate
     *  whose issuer published no CRL passes (NoCRLForCertOK; -1 unset,
     *  set with the mode) */
    reencrypt_revocation_e revocation;
    int no_crl_ok;
    const char *revocation_where;        /**< "file:line" of the mode */
    /** ReencryptOCSPStapling */
    reencrypt_stapling_e stapling;
    const char *stapling_where;          /**< "file:line" of the mode */
    /** mod_ssl's revocation directives in this scope ("file:line" of
     *  each; NULL unset), which a policy replaces: refused at startup
     *  where the policy is on. ssl_crl_check: -1 unset, 0 'none'
     *  (mod_ssl's default, no conflict), 1 any other mode. */
    const char *ssl_crl_file_where;
    const char *ssl_crl_path_where;
    const char *ssl_crl_check_where;
    int ssl_crl_check;
    /** A <Proxy> section that mod_ssl gives a proxy context of its own
     *  (it holds a directive of mod_ssl): its mod_ssl settings above were
     *  completed from its server's by reencrypt_policy_ssl_section, and
     *  replace the parent's when merged. */
    int ssl_proxy_section;
    /** The policy id, computed once the scope can no longer change
     *  (reencrypt_policy_freeze); 0: computed when asked */
    apr_uint64_t frozen_id;
} reencrypt_policy_t;

/** Length of a client identity digest (SHA-256). */
#define REENCRYPT_CLIENT_ID_LEN  32

/** Default of ReencryptSessionTimeout, in seconds. */
#define REENCRYPT_SESSION_TIMEOUT_DEFAULT 300

/* ------------------------------------------------------------------ */
/* The policy directives that take one value, described once.         */

/** What a one-value directive takes, and how its field reads unset. */
typedef enum {
    REENCRYPT_KIND_FLAG,      /**< On|Off, an int: -1 unset, 0, 1 */
    REENCRYPT_KIND_INT,       /**< an int in [min, max]: -1 unset */
    REENCRYPT_KIND_DURATION,  /**< seconds, an apr_int64_t: -1 unset */
    REENCRYPT_KIND_KEYWORD    /**< one of a list of words, an enum whose
                               *   0 is its _UNSET */
} reencrypt_kind_e;

/** One word of a KEYWORD directive and the value it stands for. */
typedef struct {
    const char *word;
    int value;
} reencrypt_keyword_t;

/**
 * One row per one-value policy directive, in the order of httpd's
 * command table:
 *
 *   X(ID, member, where, kind, "Directive", min, max, keywords,
 *     default, in_id, "help")
 *
 * member is the field of reencrypt_policy_t that holds the value; where
 * is REENCRYPT_WHERE(field) of the "file:line" kept with it (every row
 * has one: apachectl -t -D DUMP_REENCRYPT names the origin of every
 * value, reencrypt_dump.c); min and max bound an INT; keywords is a
 * reencrypt_keyword_t list ending with { NULL, 0 } for a KEYWORD;
 * default is the value in effect when no scope sets it; in_id says
 * whether the value is part of the policy's identity (a session or a
 * pooled connection made under one value never serves another); help is
 * the line `httpd -L` shows. The directive's documentation is the
 * section of docs/directives.md named after it (anchor: its name in
 * lower case), which the directive docs guard checks from this list.
 * From this list come the field's initial value, its merge, its part of
 * the policy id, its handler and its command table entry; what it means
 * is read through its getter (reencrypt_policy_get()).
 */
#define REENCRYPT_POLICY_FIELDS(X)                                        \
    X(ENGINE, engine, REENCRYPT_WHERE(engine_where), FLAG,                 \
      "ReencryptEngine", 0, 0, NULL, 0, 0,                                 \
      "On|Off: verify TLS backends under this scope's policy "             \
      "(default Off)")                                                     \
    X(OCSP_STAPLING, stapling, REENCRYPT_WHERE(stapling_where), KEYWORD,   \
      "ReencryptOCSPStapling", 0, 0, reencrypt_stapling_words,             \
      REENCRYPT_STAPLING_OFF, 1,                                           \
      "Off|Verify|Require: ask the backend for an OCSP staple and check "  \
      "it; Require refuses a backend without a good one (default Off)")    \
    X(VERIFY_DEPTH, verify_depth, REENCRYPT_WHERE(depth_where), INT,       \
      "ReencryptVerifyDepth", REENCRYPT_DEPTH_MIN, REENCRYPT_DEPTH_MAX,    \
      NULL, REENCRYPT_DEPTH_DEFAULT, 1,                                    \
      "0..32: most certificates allowed above the backend's own, "         \
      "counting the trust anchor (default 4)")                             \
    X(CHECK_NAME, check_name, REENCRYPT_WHERE(check_name_where), FLAG,     \
      "ReencryptCheckName", 0, 0, NULL, 1, 1,                              \
      "On|Off: check the backend certificate's names (default On)")        \
    X(PIN_SCOPE, pin_scope, REENCRYPT_WHERE(pin_scope_where), KEYWORD,     \
      "ReencryptPinScope", 0, 0, reencrypt_pin_scope_words,                \
      REENCRYPT_PIN_SCOPE_LEAF, 1,                                         \
      "Leaf|Chain: which keys a pin may match (default Leaf)")             \
    X(TRUST, trust, REENCRYPT_WHERE(trust_where), KEYWORD,                 \
      "ReencryptTrust", 0, 0, reencrypt_trust_words,                       \
      REENCRYPT_TRUST_ANCHORS, 1,                                          \
      "Anchors|PinOnly: trust a chain to an anchor, or only a pinned key " \
      "(default Anchors)")                                                 \
    X(REFUSE_WITHIN, refuse_within, REENCRYPT_WHERE(refuse_where),         \
      DURATION,                                                            \
      "ReencryptRefuseExpiringWithin", 0, 0, NULL, 0, 1,                   \
      "duration (45s, 15m, 12h, 30d): refuse a backend whose certificate " \
      "expires within it (default none)")                                  \
    X(WARN_WITHIN, warn_within, REENCRYPT_WHERE(warn_where), DURATION,     \
      "ReencryptWarnExpiringWithin", 0, 0, NULL, 0, 1,                     \
      "duration: log a warning for a backend whose certificate, or a CRL " \
      "it is checked against, expires within it (default none)")           \
    X(CLOCK_SKEW, clock_skew, REENCRYPT_WHERE(skew_where), DURATION,       \
      "ReencryptClockSkew", 0, 0, NULL, 0, 1,                              \
      "duration: grace for a backend certificate's notBefore (default 0)") \
    X(MODE, mode, REENCRYPT_WHERE(mode_where), KEYWORD,                    \
      "ReencryptMode", 0, 0, reencrypt_mode_words, REENCRYPT_MODE_ENFORCE, \
      1, "Enforce|Report: refuse violations, or log them and go on "       \
      "(default Enforce)")                                                 \
    X(SESSION_REUSE, session_reuse, REENCRYPT_WHERE(reuse_where), FLAG,    \
      "ReencryptSessionReuse", 0, 0, NULL, 1, 0,                           \
      "On|Off: resume TLS sessions to backends (default On)")              \
    X(SESSION_TIMEOUT, session_timeout, REENCRYPT_WHERE(timeout_where),    \
      DURATION,                                                            \
      "ReencryptSessionTimeout", 0, 0, NULL,                               \
      REENCRYPT_SESSION_TIMEOUT_DEFAULT, 0,                                \
      "duration: longest life of a kept backend session (default 300s)")

/** Offset of the "file:line" field kept with a row's value. */
#define REENCRYPT_WHERE(member) APR_OFFSETOF(reencrypt_policy_t, member)

/** The rows' identifiers: REENCRYPT_F_ENGINE, ... */
#define REENCRYPT_FIELD_ID(id, ...) REENCRYPT_F_##id,
typedef enum {
    REENCRYPT_POLICY_FIELDS(REENCRYPT_FIELD_ID)
    REENCRYPT_FIELD_COUNT
} reencrypt_field_id_e;
#undef REENCRYPT_FIELD_ID

/** One row of REENCRYPT_POLICY_FIELDS. */
typedef struct {
    reencrypt_field_id_e id;
    const char *directive;
    reencrypt_kind_e kind;
    apr_size_t offset;                    /**< of the value */
    apr_size_t where;                     /**< of its "file:line" */
    int min, max;                         /**< INT */
    const reencrypt_keyword_t *keywords;  /**< KEYWORD */
    apr_int64_t dflt;
    int in_id;
    const char *help;
} reencrypt_field_t;

/** The rows, indexed by reencrypt_field_id_e. */
extern const reencrypt_field_t reencrypt_fields[REENCRYPT_FIELD_COUNT];

extern const reencrypt_keyword_t reencrypt_stapling_words[];
extern const reencrypt_keyword_t reencrypt_pin_scope_words[];
extern const reencrypt_keyword_t reencrypt_trust_words[];
extern const reencrypt_keyword_t reencrypt_mode_words[];

/** Parse arg for the directive of row f into pol, keeping where
 *  ("file:line") when the row keeps one. */
const char *reencrypt_field_parse(apr_pool_t *p, const reencrypt_field_t *f,
                                  const char *arg, reencrypt_policy_t *pol,
                                  const char *where);

/** Is row id set in pol (by this scope or, merged, an enclosing one)? */
int reencrypt_field_is_set(const reencrypt_policy_t *pol,
                           reencrypt_field_id_e id);

/** The value of row id in effect in pol: the one set, else the row's
 *  default. */
apr_int64_t reencrypt_policy_get(const reencrypt_policy_t *pol,
                                 reencrypt_field_id_e id);

/* ------------------------------------------------------------------ */
/* Parsers. Each returns NULL on success, or an error message (allocated
 * from p) that names the directive and quotes the bad value.          */

/** Parse "On"/"Off" (case-insensitive). */
const char *reencrypt_parse_flag(apr_pool_t *p, const char *directive,
                                 const char *arg, int *out);

/** Parse a strict decimal integer in [min, max]: no sign other than a
 *  leading '-' for negative input, no spaces, no trailing junk. */
const char *reencrypt_parse_int(apr_pool_t *p, const char *directive,
                                const char *arg, int min, int max,
                                int *out);

/** Parse the argument of ReencryptSNI. On success sets *mode and, for a
 *  literal name, *name (lower-cased copy from p). */
const char *reencrypt_parse_sni(apr_pool_t *p, const char *arg,
                                reencrypt_sni_mode_e *mode,
                                const char **name);

/** Validate one ReencryptVerifyName argument and return its canonical
 *  form in *out: lower-cased DNS name without a final dot, or an IP
 *  literal without brackets. */
const char *reencrypt_parse_verify_name(apr_pool_t *p, const char *arg,
                                        const char **out);

/** Parse a duration: a non-negative integer with an optional unit s, m,
 *  h or d ("45s", "15m", "12h", "30d", "90"), at most
 *  REENCRYPT_DURATION_MAX seconds. */
const char *reencrypt_parse_duration(apr_pool_t *p, const char *directive,
                                     const char *arg, apr_int64_t *seconds);

/** Parse one argument of ReencryptPin: "sha256//<base64>", or several
 *  of them joined with ';' (curl's --pinnedpubkey form); appends to
 *  pins. */
const char *reencrypt_parse_pins(apr_pool_t *p, const char *arg,
                                 apr_array_header_t *pins);

/** Format a pin as "sha256//<base64>" (from p). */
const char *reencrypt_pin_str(apr_pool_t *p, const reencrypt_pin_t *pin);

/** Strict base64 (RFC 4648, standard alphabet, padding required):
 *  decode in into out (room for outmax bytes); returns the decoded
 *  length, or -1 for malformed input or too little room. */
int reencrypt_base64_decode(const char *in, unsigned char *out,
                            apr_size_t outmax);

/** Base64-encode len bytes (from p). */
const char *reencrypt_base64_encode(apr_pool_t *p, const unsigned char *in,
                                    apr_size_t len);

/* ------------------------------------------------------------------ */
/* Host name rules.                                                    */

/** Non-zero if s is a syntactically valid DNS host name (LDH labels of
 *  1..63 characters, at most 253 characters, an optional final dot, no
 *  wildcard, not all-numeric in the last label). */
int reencrypt_is_dns_name(const char *s);

/** If s is an IPv4 or IPv6 literal (IPv6 with or without brackets),
 *  write its network-order bytes to buf (16 bytes room) and return the
 *  length (4 or 16). Otherwise return 0. */
int reencrypt_ip_parse(const char *s, unsigned char *buf);

/** RFC 6125 matching of a DNS name presented in a certificate (pattern,
 *  may start with a "*." wildcard label) against an expected host name.
 *  Case-insensitive; a final dot on either side is ignored; '*' only as
 *  the whole left-most label, matching exactly one non-empty label; a
 *  wildcard needs at least two labels after it. Returns non-zero on a
 *  match. */
int reencrypt_dns_match(const char *pattern, const char *host);

/* ------------------------------------------------------------------ */
/* The policy record.                                                  */

/** Initialise every field of a policy to "unset". */
void reencrypt_policy_init(reencrypt_policy_t *pol);

/** Merge: every field is the child's if set there, else the parent's.
 *  Lists are replaced, not appended. out may alias neither input. */
void reencrypt_policy_merge(reencrypt_policy_t *out,
                            const reencrypt_policy_t *parent,
                            const reencrypt_policy_t *child);

/** Settle a <Proxy> section that mod_ssl gives a proxy context of its
 *  own (a section with any directive of mod_ssl in it): each of mod_ssl's
 *  settings the section does not set is its server's (the virtual
 *  host's defaults), never an enclosing or earlier section's, as
 *  mod_ssl completes that context at startup (ssl_engine_init.c,
 *  ssl_proxy_section_post_config); merged later, the section's settings
 *  replace the parent's whole. Idempotent. */
void reencrypt_policy_ssl_section(reencrypt_policy_t *section,
                                  const reencrypt_policy_t *server);

/** Effective values, with defaults applied. */
int reencrypt_policy_enabled(const reencrypt_policy_t *pol);
int reencrypt_policy_depth(const reencrypt_policy_t *pol);
reencrypt_sni_mode_e reencrypt_policy_sni_mode(const reencrypt_policy_t *pol);
int reencrypt_policy_check_name(const reencrypt_policy_t *pol);
reencrypt_pin_scope_e reencrypt_policy_pin_scope(const reencrypt_policy_t *pol);
reencrypt_trust_e reencrypt_policy_trust(const reencrypt_policy_t *pol);
reencrypt_mode_e reencrypt_policy_mode(const reencrypt_policy_t *pol);
/** Durations in seconds, 0 when unset (no window, no skew). */
apr_int64_t reencrypt_policy_refuse_within(const reencrypt_policy_t *pol);
apr_int64_t reencrypt_policy_warn_within(const reencrypt_policy_t *pol);
apr_int64_t reencrypt_policy_clock_skew(const reencrypt_policy_t *pol);
int reencrypt_policy_session_reuse(const reencrypt_policy_t *pol);
/** ReencryptRevocationCheck in effect: Chain where CRLs are configured
 *  and the mode is unset, Off where none are. */
reencrypt_revocation_e reencrypt_policy_revocation(
    const reencrypt_policy_t *pol);
/** NoCRLForCertOK in effect (0 or 1). */
int reencrypt_policy_no_crl_ok(const reencrypt_policy_t *pol);
/** ReencryptOCSPStapling in effect (Off when unset). */
reencrypt_stapling_e reencrypt_policy_stapling(const reencrypt_policy_t *pol);
apr_int64_t reencrypt_policy_session_timeout(const reencrypt_policy_t *pol);

/** The client identity of an effective policy, for keys and logs: the
 *  three digests of the client certificate directives in hex, "-" for
 *  each one not set ("-|-|-": mod_ssl presents no client certificate).
 *  From p. */
const char *reencrypt_policy_client_id(apr_pool_t *p,
                                       const reencrypt_policy_t *pol);

/** Cross-directive check of an effective policy that is on. Returns
 *  NULL, or a sentence (from p) saying what is wrong. */
const char *reencrypt_policy_lint(apr_pool_t *p,
                                  const reencrypt_policy_t *pol);

/** A 64-bit identity of the effective policy, computed from its values
 *  (not from addresses): equal policies give equal ids, a policy that
 *  is off gives 0. Used to keep pooled backend connections from being
 *  shared between different policies. */
apr_uint64_t reencrypt_policy_id(const reencrypt_policy_t *pol);

/** Compute pol's id once, for good: a scope whose configuration is read
 *  (post_config) or merged (per request) no longer changes. */
void reencrypt_policy_freeze(reencrypt_policy_t *pol);

/** Names that a backend certificate must carry: the configured list,
 *  else the SNI sent, else the backend's host. Returns an array of
 *  const char * from p (never empty when fallback_host is non-NULL). */
apr_array_header_t *reencrypt_expected_names(apr_pool_t *p,
                                             const reencrypt_policy_t *pol,
                                             const char *sni,
                                             const char *backend_host);

/** The SNI to send, or NULL for none: lower-cased, without a trailing
 *  dot (from p, or the configured name). backend_host is the ProxyPass
 *  URL's host, client_host the request's Host (either may be NULL). */
const char *reencrypt_sni_for(apr_pool_t *p, const reencrypt_policy_t *pol,
                              const char *backend_host,
                              const char *client_host);

/** The port a backend URL of scheme (https, wss, h2, http, ws, h2c; any
 *  case) means when it names none, or 0 for another scheme. */
apr_port_t reencrypt_port_of_scheme(const char *scheme);

/** The head of the request that mod_proxy_hcheck writes on a health
 *  check connection, and nothing else: at the start of buf (len bytes;
 *  what follows the head is not looked at) exactly
 *  "<METHOD> <target> HTTP/1.<0|1>" CRLF "Host: <host>:<port>" CRLF CRLF.
 *  Returns 1 and sets *host (from p; IPv6 brackets removed) and *port
 *  (1..65535), or returns 0 when buf does not start with such a head. */
int reencrypt_parse_check_head(apr_pool_t *p, const char *buf,
                               apr_size_t len, const char **host,
                               unsigned int *port);

/** Read the regular file path, of at most max bytes, for directive:
 *  its content (NUL-terminated, from p) in *text and *len, and, with
 *  info, what the open file's stat said: its permission bits
 *  (protection), owner (user) and group. Returns NULL, or an error
 *  message that starts with the directive's name. */
const char *reencrypt_read_file(apr_pool_t *p, const char *directive,
                                const char *path, apr_size_t max,
                                char **text, apr_size_t *len,
                                apr_finfo_t *info);

/** Parse the arguments of ReencryptRevocationCheck: Chain, Leaf or Off
 *  (any case), optionally followed by NoCRLForCertOK (not with Off).
 *  Sets *mode and *no_crl_ok. */
const char *reencrypt_parse_revocation(apr_pool_t *p, int argc,
                                       char *const argv[],
                                       reencrypt_revocation_e *mode,
                                       int *no_crl_ok);

/** Split a ReencryptSessionCache value "provider[:arguments]": returns
 *  the provider's name (from p, or spec itself) and sets *args to the
 *  arguments, or NULL without a colon. */
const char *reencrypt_cache_provider(apr_pool_t *p, const char *spec,
                                     const char **args);

/** Does a ReencryptSessionCache value name a cache that more than this
 *  machine's server can reach: any provider but none, shmcb (shared
 *  memory) and dbm (a file), e.g. memcache or redis? NULL is the
 *  default, shmcb. */
int reencrypt_cache_is_networked(apr_pool_t *p, const char *spec);

#ifdef __cplusplus
}
#endif

#endif /* REENCRYPT_POLICY_H */
