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
 * reencrypt_policy.c: directive value parsing, host name rules, the
 * policy record's merge and identity. Pure: APR and libc only.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <apr_lib.h>
#include <apr_network_io.h>
#include <apr_strings.h>

#include "reencrypt_policy.h"

/* ------------------------------------------------------------------ */
/* Parsers                                                             */

static void str_tolower(char *s)
{
    for (; *s; s++) {
        *s = (char)apr_tolower(*s);
    }
}

const char *reencrypt_parse_flag(apr_pool_t *p, const char *directive,
                                 const char *arg, int *out)
{
    if (arg && !strcasecmp(arg, "on")) {
        *out = 1;
        return NULL;
    }
    if (arg && !strcasecmp(arg, "off")) {
        *out = 0;
        return NULL;
    }
    return apr_psprintf(p, "%s: '%s' is not On or Off", directive,
                        arg ? arg : "");
}

const char *reencrypt_parse_int(apr_pool_t *p, const char *directive,
                                const char *arg, int min, int max,
                                int *out)
{
    const char *s = arg ? arg : "";
    char *end = NULL;
    long v;

    /* strtol accepts leading blanks and '+'; a directive value must not
     * carry either, so insist on a digit or '-' followed by a digit. */
    if (!(apr_isdigit(s[0]) || (s[0] == '-' && apr_isdigit(s[1])))) {
        goto bad;
    }
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno == ERANGE || end == s || *end != '\0' || v < min || v > max) {
        goto bad;
    }
    *out = (int)v;
    return NULL;

bad:
    return apr_psprintf(p, "%s: '%s' is not an integer in %d..%d",
                        directive, s, min, max);
}

const char *reencrypt_parse_sni(apr_pool_t *p, const char *arg,
                                reencrypt_sni_mode_e *mode,
                                const char **name)
{
    unsigned char ip[16];
    const char *s = arg ? arg : "";

    *name = NULL;
    if (!strcasecmp(s, "backend")) {
        *mode = REENCRYPT_SNI_BACKEND;
        return NULL;
    }
    if (!strcasecmp(s, "host")) {
        *mode = REENCRYPT_SNI_HOST;
        return NULL;
    }
    if (!strcasecmp(s, "off")) {
        *mode = REENCRYPT_SNI_OFF;
        return NULL;
    }
    if (reencrypt_ip_parse(s, ip)) {
        return apr_psprintf(p, "ReencryptSNI: '%s' is an IP address; SNI "
                            "carries DNS names only (RFC 6066). Use "
                            "ReencryptVerifyName to check an IP SAN", s);
    }
    if (!reencrypt_is_dns_name(s)) {
        return apr_psprintf(p, "ReencryptSNI: '%s' is not a valid DNS name "
                            "(nor Backend, Host or Off)", s);
    }
    {
        char *n = apr_pstrdup(p, s);
        apr_size_t len = strlen(n);

        if (len && n[len - 1] == '.') {
            n[len - 1] = '\0';
        }
        str_tolower(n);
        *name = n;
    }
    *mode = REENCRYPT_SNI_NAME;
    return NULL;
}

const char *reencrypt_parse_verify_name(apr_pool_t *p, const char *arg,
                                        const char **out)
{
    unsigned char ip[16];
    const char *s = arg ? arg : "";
    char *n;
    apr_size_t len;

    if (reencrypt_ip_parse(s, ip)) {
        n = apr_pstrdup(p, s[0] == '[' ? s + 1 : s);
        len = strlen(n);
        if (len && n[len - 1] == ']') {
            n[len - 1] = '\0';
        }
        str_tolower(n);
        *out = n;
        return NULL;
    }
    if (!reencrypt_is_dns_name(s)) {
        return apr_psprintf(p, "ReencryptVerifyName: '%s' is not a valid "
                            "host name or IP address", s);
    }
    n = apr_pstrdup(p, s);
    len = strlen(n);
    if (len && n[len - 1] == '.') {
        n[len - 1] = '\0';
    }
    str_tolower(n);
    *out = n;
    return NULL;
}

const char *reencrypt_parse_duration(apr_pool_t *p, const char *directive,
                                     const char *arg, apr_int64_t *seconds)
{
    const char *s = arg ? arg : "";
    apr_int64_t v = 0, unit = 1;
    const char *c = s;

    if (!apr_isdigit(*c)) {
        goto bad;
    }
    for (; apr_isdigit(*c); c++) {
        v = v * 10 + (*c - '0');
        if (v > REENCRYPT_DURATION_MAX) {
            goto bad;               /* also keeps v far from overflow */
        }
    }
    switch (*c) {
    case '\0':                      break;
    case 's':  unit = 1;            c++; break;
    case 'm':  unit = 60;           c++; break;
    case 'h':  unit = 3600;         c++; break;
    case 'd':  unit = 86400;        c++; break;
    default:   goto bad;
    }
    if (*c != '\0' || v > REENCRYPT_DURATION_MAX / unit) {
        goto bad;
    }
    *seconds = v * unit;
    return NULL;

bad:
    return apr_psprintf(p, "%s: '%s' is not a duration (a number of "
                        "seconds, or a number followed by s, m, h or d; at "
                        "most 3650d)", directive, s);
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(char ch)
{
    const char *pos;

    if (ch == '\0' || !(pos = strchr(b64_alphabet, ch))) {
        return -1;
    }
    return (int)(pos - b64_alphabet);
}

int reencrypt_base64_decode(const char *in, unsigned char *out,
                            apr_size_t outmax)
{
    apr_size_t len = strlen(in), i, n = 0;

    if (len == 0 || len % 4 != 0) {
        return -1;
    }
    for (i = 0; i < len; i += 4) {
        int v[4], k, pad = 0;

        for (k = 0; k < 4; k++) {
            if (in[i + k] == '=') {
                /* padding only in the last quantum, only at its end */
                if (i + 4 != len || k < 2) {
                    return -1;
                }
                pad++;
                v[k] = 0;
            }
            else if (pad || (v[k] = b64_value(in[i + k])) < 0) {
                return -1;
            }
        }
        /* bits that padding throws away must be zero (canonical form) */
        if ((pad == 2 && (v[1] & 0x0f)) || (pad == 1 && (v[2] & 0x03))) {
            return -1;
        }
        if (n + 3 - pad > outmax) {
            return -1;
        }
        out[n++] = (unsigned char)((v[0] << 2) | (v[1] >> 4));
        if (pad < 2) {
            out[n++] = (unsigned char)(((v[1] & 0x0f) << 4) | (v[2] >> 2));
        }
        if (pad < 1) {
            out[n++] = (unsigned char)(((v[2] & 0x03) << 6) | v[3]);
        }
    }
    return (int)n;
}

const char *reencrypt_base64_encode(apr_pool_t *p, const unsigned char *in,
                                    apr_size_t len)
{
    char *out = apr_palloc(p, ((len + 2) / 3) * 4 + 1), *o = out;
    apr_size_t i;

    for (i = 0; i + 2 < len; i += 3) {
        *o++ = b64_alphabet[in[i] >> 2];
        *o++ = b64_alphabet[((in[i] & 0x03) << 4) | (in[i + 1] >> 4)];
        *o++ = b64_alphabet[((in[i + 1] & 0x0f) << 2) | (in[i + 2] >> 6)];
        *o++ = b64_alphabet[in[i + 2] & 0x3f];
    }
    if (i < len) {
        *o++ = b64_alphabet[in[i] >> 2];
        if (i + 1 < len) {
            *o++ = b64_alphabet[((in[i] & 0x03) << 4) | (in[i + 1] >> 4)];
            *o++ = b64_alphabet[(in[i + 1] & 0x0f) << 2];
        }
        else {
            *o++ = b64_alphabet[(in[i] & 0x03) << 4];
            *o++ = '=';
        }
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

#define PIN_PREFIX "sha256//"

const char *reencrypt_parse_pins(apr_pool_t *p, const char *arg,
                                 apr_array_header_t *pins)
{
    char *list = apr_pstrdup(p, arg ? arg : ""), *tok, *last = NULL;
    int any = 0;

    for (tok = apr_strtok(list, ";", &last); tok;
         tok = apr_strtok(NULL, ";", &last)) {
        reencrypt_pin_t pin;
        unsigned char *buf;
        apr_size_t room;
        int n;

        if (strncmp(tok, PIN_PREFIX, sizeof(PIN_PREFIX) - 1) != 0) {
            return apr_psprintf(p, "ReencryptPin: '%s' does not start with "
                                "'" PIN_PREFIX "' (the form is "
                                PIN_PREFIX "<base64 of the SHA-256 of the "
                                "DER SubjectPublicKeyInfo>)", tok);
        }
        /* decode whatever length is there, to say how long it is */
        room = strlen(tok) * 3 / 4 + 3;
        buf = apr_palloc(p, room);
        n = reencrypt_base64_decode(tok + sizeof(PIN_PREFIX) - 1, buf, room);
        if (n < 0) {
            return apr_psprintf(p, "ReencryptPin: '%s' is not valid base64 "
                                "after '" PIN_PREFIX "'", tok);
        }
        if (n != REENCRYPT_PIN_LEN) {
            return apr_psprintf(p, "ReencryptPin: '%s' holds %d bytes, a "
                                "SHA-256 pin has %d", tok, n,
                                REENCRYPT_PIN_LEN);
        }
        memcpy(pin.sha256, buf, REENCRYPT_PIN_LEN);
        APR_ARRAY_PUSH(pins, reencrypt_pin_t) = pin;
        any = 1;
    }
    if (!any) {
        return apr_psprintf(p, "ReencryptPin: '%s' holds no pin",
                            arg ? arg : "");
    }
    return NULL;
}

const char *reencrypt_pin_str(apr_pool_t *p, const reencrypt_pin_t *pin)
{
    return apr_pstrcat(p, PIN_PREFIX,
                       reencrypt_base64_encode(p, pin->sha256,
                                               REENCRYPT_PIN_LEN), NULL);
}

/* ------------------------------------------------------------------ */
/* Host name rules                                                     */

int reencrypt_is_dns_name(const char *s)
{
    apr_size_t len, label = 0;
    const char *c, *last_label;
    int all_digits = 1;

    if (!s || !*s) {
        return 0;
    }
    len = strlen(s);
    if (s[len - 1] == '.') {
        len--;                      /* one final dot is allowed */
    }
    if (len == 0 || len > REENCRYPT_DNS_NAME_MAX) {
        return 0;
    }
    last_label = s;
    for (c = s; c < s + len; c++) {
        if (*c == '.') {
            if (label == 0 || c[-1] == '-') {
                return 0;           /* empty label or trailing hyphen */
            }
            label = 0;
            last_label = c + 1;
            continue;
        }
        if (!(apr_isalnum(*c) || *c == '-')) {
            return 0;
        }
        if (*c == '-' && label == 0) {
            return 0;               /* leading hyphen */
        }
        if (++label > 63) {
            return 0;
        }
    }
    if (label == 0 || c[-1] == '-') {
        return 0;
    }
    /* A last label of digits only is an IPv4-looking thing, not a name */
    for (c = last_label; c < s + len; c++) {
        if (!apr_isdigit(*c)) {
            all_digits = 0;
            break;
        }
    }
    return !all_digits;
}

int reencrypt_ip_parse(const char *s, unsigned char *buf)
{
    char tmp[64];
    apr_size_t len;
    const char *c;
    int dots = 0;

    if (!s || !*s) {
        return 0;
    }
    len = strlen(s);
    if (s[0] == '[') {
        if (len < 3 || s[len - 1] != ']' || len - 2 >= sizeof(tmp)) {
            return 0;
        }
        memcpy(tmp, s + 1, len - 2);
        tmp[len - 2] = '\0';
        return inet_pton(AF_INET6, tmp, buf) == 1 ? 16 : 0;
    }
    if (strchr(s, ':')) {
        return inet_pton(AF_INET6, s, buf) == 1 ? 16 : 0;
    }
    /* IPv4: only the dotted-quad form, never "1" or "0x7f.1" */
    for (c = s; *c; c++) {
        if (*c == '.') {
            dots++;
        }
        else if (!apr_isdigit(*c)) {
            return 0;
        }
    }
    if (dots != 3) {
        return 0;
    }
    return inet_pton(AF_INET, s, buf) == 1 ? 4 : 0;
}

/* Compare two label sequences case-insensitively, each of given length */
static int labels_equal(const char *a, apr_size_t alen,
                        const char *b, apr_size_t blen)
{
    return alen == blen && strncasecmp(a, b, alen) == 0;
}

int reencrypt_dns_match(const char *pattern, const char *host)
{
    apr_size_t plen, hlen;
    const char *prest, *hrest;
    int dots = 0;
    const char *c;

    if (!pattern || !host || !*pattern || !*host) {
        return 0;
    }
    plen = strlen(pattern);
    hlen = strlen(host);
    if (pattern[plen - 1] == '.') {
        plen--;
    }
    if (host[hlen - 1] == '.') {
        hlen--;
    }
    if (plen == 0 || hlen == 0) {
        return 0;
    }
    if (!(pattern[0] == '*' && plen > 1 && pattern[1] == '.')) {
        /* no wildcard: any '*' elsewhere makes the pattern invalid */
        if (memchr(pattern, '*', plen)) {
            return 0;
        }
        return labels_equal(pattern, plen, host, hlen);
    }
    /* "*.rest": rest must have at least two labels and no more '*' */
    prest = pattern + 2;
    if (memchr(prest, '*', plen - 2)) {
        return 0;
    }
    for (c = prest; c < pattern + plen; c++) {
        if (*c == '.') {
            dots++;
        }
    }
    if (dots < 1) {
        return 0;                   /* "*.com" style */
    }
    /* host = one non-empty label + "." + rest */
    hrest = memchr(host, '.', hlen);
    if (!hrest || hrest == host) {
        return 0;
    }
    hrest++;
    return labels_equal(prest, plen - 2, hrest, hlen - (hrest - host));
}

/* ------------------------------------------------------------------ */
/* The policy record                                                   */

/* The rows of REENCRYPT_POLICY_FIELDS, and the words of its KEYWORD
 * directives */
const reencrypt_keyword_t reencrypt_stapling_words[] = {
    { "Off", REENCRYPT_STAPLING_OFF },
    { "Verify", REENCRYPT_STAPLING_VERIFY },
    { "Require", REENCRYPT_STAPLING_REQUIRE },
    { NULL, 0 }
};
const reencrypt_keyword_t reencrypt_pin_scope_words[] = {
    { "Leaf", REENCRYPT_PIN_SCOPE_LEAF },
    { "Chain", REENCRYPT_PIN_SCOPE_CHAIN },
    { NULL, 0 }
};
const reencrypt_keyword_t reencrypt_trust_words[] = {
    { "Anchors", REENCRYPT_TRUST_ANCHORS },
    { "PinOnly", REENCRYPT_TRUST_PIN_ONLY },
    { NULL, 0 }
};
const reencrypt_keyword_t reencrypt_mode_words[] = {
    { "Enforce", REENCRYPT_MODE_ENFORCE },
    { "Report", REENCRYPT_MODE_REPORT },
    { NULL, 0 }
};

#define REENCRYPT_FIELD_ROW(id, member, where_off, kind, directive, min,  \
                            max, keywords, dflt, in_id, help)             \
    { REENCRYPT_F_##id, directive, REENCRYPT_KIND_##kind,                 \
      APR_OFFSETOF(reencrypt_policy_t, member), where_off, min, max,      \
      keywords, dflt, in_id, help },
const reencrypt_field_t reencrypt_fields[REENCRYPT_FIELD_COUNT] = {
    REENCRYPT_POLICY_FIELDS(REENCRYPT_FIELD_ROW)
};
#undef REENCRYPT_FIELD_ROW

/* A KEYWORD field is an enum, read and written as the int it is */
typedef enum { ENUM_PROBE_A, ENUM_PROBE_B } enum_probe_e;
typedef char enum_is_int[sizeof(enum_probe_e) == sizeof(int) ? 1 : -1];

static int *int_at(reencrypt_policy_t *pol, const reencrypt_field_t *f)
{
    return (int *)(void *)((char *)pol + f->offset);
}

static const int *int_of(const reencrypt_policy_t *pol,
                         const reencrypt_field_t *f)
{
    return (const int *)(const void *)((const char *)pol + f->offset);
}

static apr_int64_t *i64_at(reencrypt_policy_t *pol,
                           const reencrypt_field_t *f)
{
    return (apr_int64_t *)(void *)((char *)pol + f->offset);
}

static const apr_int64_t *i64_of(const reencrypt_policy_t *pol,
                                 const reencrypt_field_t *f)
{
    return (const apr_int64_t *)(const void *)((const char *)pol
                                               + f->offset);
}

static const char **where_at(reencrypt_policy_t *pol,
                             const reencrypt_field_t *f)
{
    return (const char **)(void *)((char *)pol + f->where);
}

/* The value of f in pol, -1 (or 0 for a KEYWORD) when unset */
static apr_int64_t raw_value(const reencrypt_policy_t *pol,
                             const reencrypt_field_t *f)
{
    return f->kind == REENCRYPT_KIND_DURATION ? *i64_of(pol, f)
                                              : *int_of(pol, f);
}

static apr_int64_t unset_value(const reencrypt_field_t *f)
{
    return f->kind == REENCRYPT_KIND_KEYWORD ? 0 : REENCRYPT_UNSET;
}

static void set_value(reencrypt_policy_t *pol, const reencrypt_field_t *f,
                      apr_int64_t v)
{
    if (f->kind == REENCRYPT_KIND_DURATION) {
        *i64_at(pol, f) = v;
    }
    else {
        *int_at(pol, f) = (int)v;
    }
}

int reencrypt_field_is_set(const reencrypt_policy_t *pol,
                           reencrypt_field_id_e id)
{
    const reencrypt_field_t *f = &reencrypt_fields[id];

    return raw_value(pol, f) != unset_value(f);
}

apr_int64_t reencrypt_policy_get(const reencrypt_policy_t *pol,
                                 reencrypt_field_id_e id)
{
    const reencrypt_field_t *f = &reencrypt_fields[id];
    apr_int64_t v = raw_value(pol, f);

    return v == unset_value(f) ? f->dflt : v;
}

/* "A or B", "A, B or C" of a keyword list */
static const char *words_str(apr_pool_t *p, const reencrypt_keyword_t *w)
{
    const char *s = w[0].word;
    int i;

    for (i = 1; w[i].word; i++) {
        s = apr_pstrcat(p, s, w[i + 1].word ? ", " : " or ", w[i].word,
                        NULL);
    }
    return s;
}

const char *reencrypt_field_parse(apr_pool_t *p, const reencrypt_field_t *f,
                                  const char *arg, reencrypt_policy_t *pol,
                                  const char *where)
{
    const char *err = NULL;
    int iv = 0, i;
    apr_int64_t dv = 0;

    switch (f->kind) {
    case REENCRYPT_KIND_FLAG:
        err = reencrypt_parse_flag(p, f->directive, arg, &iv);
        dv = iv;
        break;
    case REENCRYPT_KIND_INT:
        err = reencrypt_parse_int(p, f->directive, arg, f->min, f->max, &iv);
        dv = iv;
        break;
    case REENCRYPT_KIND_DURATION:
        err = reencrypt_parse_duration(p, f->directive, arg, &dv);
        break;
    case REENCRYPT_KIND_KEYWORD:
        for (i = 0; f->keywords[i].word; i++) {
            if (!strcasecmp(arg, f->keywords[i].word)) {
                break;
            }
        }
        if (!f->keywords[i].word) {
            return apr_psprintf(p, "%s: '%s' is not %s", f->directive, arg,
                                words_str(p, f->keywords));
        }
        dv = f->keywords[i].value;
        break;
    }
    if (err) {
        return err;
    }
    set_value(pol, f, dv);
    *where_at(pol, f) = where;
    return NULL;
}

void reencrypt_policy_init(reencrypt_policy_t *pol)
{
    int i;

    memset(pol, 0, sizeof(*pol));
    for (i = 0; i < REENCRYPT_FIELD_COUNT; i++) {
        set_value(pol, &reencrypt_fields[i],
                  unset_value(&reencrypt_fields[i]));
    }
    pol->sni_mode = REENCRYPT_SNI_UNSET;
    pol->ssl_check_peer_expire = REENCRYPT_UNSET;
    pol->no_crl_ok = REENCRYPT_UNSET;
    pol->ssl_crl_check = REENCRYPT_UNSET;
}

/* mod_ssl's proxy settings that the module reads (client certificates,
 * SSLProxyCheckPeerExpire, the revocation directives). A scope merges
 * them one by one over its parent's, as mod_ssl does
 * (ssl_engine_config.c, modssl_ctx_cfg_merge_proxy), except a <Proxy>
 * section that mod_ssl gave a proxy context of its own: that context was
 * completed from its server's settings at startup
 * (reencrypt_policy_ssl_section) and replaces the parent's whole
 * (ssl_config_perdir_merge: mrg->proxy = add->proxy). */
static void ssl_settings_merge(reencrypt_policy_t *out,
                               const reencrypt_policy_t *parent,
                               const reencrypt_policy_t *child)
{
    if (child->ssl_proxy_section) {
        parent = child;
    }
    out->ssl_proxy_section = child->ssl_proxy_section;
    if (child->client_cert_file) {
        out->client_cert_file = child->client_cert_file;
        out->client_cert_file_name = child->client_cert_file_name;
    }
    else {
        out->client_cert_file = parent->client_cert_file;
        out->client_cert_file_name = parent->client_cert_file_name;
    }
    if (child->client_cert_path) {
        out->client_cert_path = child->client_cert_path;
        out->client_cert_path_name = child->client_cert_path_name;
    }
    else {
        out->client_cert_path = parent->client_cert_path;
        out->client_cert_path_name = parent->client_cert_path_name;
    }
    if (child->client_chain_file) {
        out->client_chain_file = child->client_chain_file;
        out->client_chain_file_name = child->client_chain_file_name;
    }
    else {
        out->client_chain_file = parent->client_chain_file;
        out->client_chain_file_name = parent->client_chain_file_name;
    }
    out->ssl_check_peer_expire =
        child->ssl_check_peer_expire != REENCRYPT_UNSET
        ? child->ssl_check_peer_expire : parent->ssl_check_peer_expire;
    out->ssl_crl_file_where = child->ssl_crl_file_where
                              ? child->ssl_crl_file_where
                              : parent->ssl_crl_file_where;
    out->ssl_crl_path_where = child->ssl_crl_path_where
                              ? child->ssl_crl_path_where
                              : parent->ssl_crl_path_where;
    if (child->ssl_crl_check != REENCRYPT_UNSET) {
        out->ssl_crl_check = child->ssl_crl_check;
        out->ssl_crl_check_where = child->ssl_crl_check_where;
    }
    else {
        out->ssl_crl_check = parent->ssl_crl_check;
        out->ssl_crl_check_where = parent->ssl_crl_check_where;
    }
}

void reencrypt_policy_ssl_section(reencrypt_policy_t *section,
                                  const reencrypt_policy_t *server)
{
    reencrypt_policy_t settled;

    if (section->ssl_proxy_section) {
        return;                         /* done already */
    }
    ssl_settings_merge(&settled, server, section);
    section->client_cert_file = settled.client_cert_file;
    section->client_cert_path = settled.client_cert_path;
    section->client_chain_file = settled.client_chain_file;
    section->client_cert_file_name = settled.client_cert_file_name;
    section->client_cert_path_name = settled.client_cert_path_name;
    section->client_chain_file_name = settled.client_chain_file_name;
    section->ssl_check_peer_expire = settled.ssl_check_peer_expire;
    section->ssl_crl_file_where = settled.ssl_crl_file_where;
    section->ssl_crl_path_where = settled.ssl_crl_path_where;
    section->ssl_crl_check = settled.ssl_crl_check;
    section->ssl_crl_check_where = settled.ssl_crl_check_where;
    section->ssl_proxy_section = 1;
}

void reencrypt_policy_merge(reencrypt_policy_t *out,
                            const reencrypt_policy_t *parent,
                            const reencrypt_policy_t *child)
{
    int i;

    out->frozen_id = 0;
    /* the one-value directives: the child's where it sets one, with its
     * "file:line" */
    for (i = 0; i < REENCRYPT_FIELD_COUNT; i++) {
        const reencrypt_field_t *f = &reencrypt_fields[i];
        const reencrypt_policy_t *from =
            reencrypt_field_is_set(child, f->id) ? child : parent;

        set_value(out, f, raw_value(from, f));
        *where_at(out, f) = *(const char *const *)(const void *)
                             ((const char *)from + f->where);
    }
    if (child->anchors) {
        out->anchors = child->anchors;
        out->anchors_where = child->anchors_where;
    }
    else {
        out->anchors = parent->anchors;
        out->anchors_where = parent->anchors_where;
    }
    if (child->verify_names) {
        out->verify_names = child->verify_names;
        out->names_where = child->names_where;
    }
    else {
        out->verify_names = parent->verify_names;
        out->names_where = parent->names_where;
    }
    if (child->sni_mode != REENCRYPT_SNI_UNSET) {
        out->sni_mode = child->sni_mode;
        out->sni_name = child->sni_name;
        out->sni_where = child->sni_where;
    }
    else {
        out->sni_mode = parent->sni_mode;
        out->sni_name = parent->sni_name;
        out->sni_where = parent->sni_where;
    }
    if (child->pins) {
        out->pins = child->pins;
        out->pins_where = child->pins_where;
    }
    else {
        out->pins = parent->pins;
        out->pins_where = parent->pins_where;
    }
    /* mod_ssl's settings: what the child's proxy context presents */
    ssl_settings_merge(out, parent, child);
    out->crls = child->crls ? child->crls : parent->crls;
    if (child->revocation != REENCRYPT_REVOCATION_UNSET) {
        out->revocation = child->revocation;
        out->no_crl_ok = child->no_crl_ok;
        out->revocation_where = child->revocation_where;
    }
    else {
        out->revocation = parent->revocation;
        out->no_crl_ok = parent->no_crl_ok;
        out->revocation_where = parent->revocation_where;
    }
}

int reencrypt_policy_enabled(const reencrypt_policy_t *pol)
{
    return pol && reencrypt_policy_get(pol, REENCRYPT_F_ENGINE) == 1;
}

int reencrypt_policy_depth(const reencrypt_policy_t *pol)
{
    return (int)reencrypt_policy_get(pol, REENCRYPT_F_VERIFY_DEPTH);
}

reencrypt_sni_mode_e reencrypt_policy_sni_mode(const reencrypt_policy_t *pol)
{
    return pol->sni_mode == REENCRYPT_SNI_UNSET ? REENCRYPT_SNI_BACKEND
                                                : pol->sni_mode;
}

int reencrypt_policy_check_name(const reencrypt_policy_t *pol)
{
    return reencrypt_policy_get(pol, REENCRYPT_F_CHECK_NAME) != 0;
}

reencrypt_pin_scope_e reencrypt_policy_pin_scope(const reencrypt_policy_t *pol)
{
    return (reencrypt_pin_scope_e)reencrypt_policy_get(pol,
                                                       REENCRYPT_F_PIN_SCOPE);
}

reencrypt_trust_e reencrypt_policy_trust(const reencrypt_policy_t *pol)
{
    return (reencrypt_trust_e)reencrypt_policy_get(pol, REENCRYPT_F_TRUST);
}

reencrypt_mode_e reencrypt_policy_mode(const reencrypt_policy_t *pol)
{
    return (reencrypt_mode_e)reencrypt_policy_get(pol, REENCRYPT_F_MODE);
}

apr_int64_t reencrypt_policy_refuse_within(const reencrypt_policy_t *pol)
{
    return reencrypt_policy_get(pol, REENCRYPT_F_REFUSE_WITHIN);
}

apr_int64_t reencrypt_policy_warn_within(const reencrypt_policy_t *pol)
{
    return reencrypt_policy_get(pol, REENCRYPT_F_WARN_WITHIN);
}

apr_int64_t reencrypt_policy_clock_skew(const reencrypt_policy_t *pol)
{
    return reencrypt_policy_get(pol, REENCRYPT_F_CLOCK_SKEW);
}

int reencrypt_policy_session_reuse(const reencrypt_policy_t *pol)
{
    return reencrypt_policy_get(pol, REENCRYPT_F_SESSION_REUSE) != 0;
}

apr_int64_t reencrypt_policy_session_timeout(const reencrypt_policy_t *pol)
{
    return reencrypt_policy_get(pol, REENCRYPT_F_SESSION_TIMEOUT);
}

reencrypt_revocation_e reencrypt_policy_revocation(
    const reencrypt_policy_t *pol)
{
    if (pol->revocation != REENCRYPT_REVOCATION_UNSET) {
        return pol->revocation;
    }
    return (pol->crls && pol->crls->files->nelts)
           ? REENCRYPT_REVOCATION_CHAIN : REENCRYPT_REVOCATION_OFF;
}

int reencrypt_policy_no_crl_ok(const reencrypt_policy_t *pol)
{
    return pol->no_crl_ok == 1
           && reencrypt_policy_revocation(pol) != REENCRYPT_REVOCATION_OFF;
}

reencrypt_stapling_e reencrypt_policy_stapling(const reencrypt_policy_t *pol)
{
    return (reencrypt_stapling_e)reencrypt_policy_get(pol,
                                                      REENCRYPT_F_OCSP_STAPLING);
}

const char *reencrypt_parse_revocation(apr_pool_t *p, int argc,
                                       char *const argv[],
                                       reencrypt_revocation_e *mode,
                                       int *no_crl_ok)
{
    static const char *name = "ReencryptRevocationCheck";

    if (argc < 1 || argc > 2) {
        return apr_psprintf(p, "%s takes Chain, Leaf or Off, optionally "
                            "followed by NoCRLForCertOK", name);
    }
    if (!strcasecmp(argv[0], "chain")) {
        *mode = REENCRYPT_REVOCATION_CHAIN;
    }
    else if (!strcasecmp(argv[0], "leaf")) {
        *mode = REENCRYPT_REVOCATION_LEAF;
    }
    else if (!strcasecmp(argv[0], "off")) {
        *mode = REENCRYPT_REVOCATION_OFF;
    }
    else {
        return apr_psprintf(p, "%s: '%s' is not Chain, Leaf or Off", name,
                            argv[0]);
    }
    *no_crl_ok = 0;
    if (argc == 2) {
        if (strcasecmp(argv[1], "nocrlforcertok")) {
            return apr_psprintf(p, "%s: '%s' is not NoCRLForCertOK", name,
                                argv[1]);
        }
        if (*mode == REENCRYPT_REVOCATION_OFF) {
            return apr_psprintf(p, "%s: NoCRLForCertOK cannot go with Off",
                                name);
        }
        *no_crl_ok = 1;
    }
    return NULL;
}

const char *reencrypt_policy_lint(apr_pool_t *p,
                                  const reencrypt_policy_t *pol)
{
    int npins = pol->pins ? pol->pins->nelts : 0;
    reencrypt_revocation_e rev = reencrypt_policy_revocation(pol);

    if (rev != REENCRYPT_REVOCATION_OFF
        && !(pol->crls && pol->crls->files->nelts)) {
        return apr_psprintf(p, "has ReencryptRevocationCheck %s (at %s) but "
                            "no CRL: set ReencryptCARevocationFile in this "
                            "scope or an enclosing one",
                            rev == REENCRYPT_REVOCATION_LEAF ? "Leaf"
                                                             : "Chain",
                            pol->revocation_where ? pol->revocation_where
                                                  : "?");
    }

    if (reencrypt_policy_trust(pol) == REENCRYPT_TRUST_PIN_ONLY) {
        if (npins == 0) {
            return "is unusable: ReencryptTrust PinOnly needs at least one "
                   "ReencryptPin in this scope or an enclosing one";
        }
        if (reencrypt_policy_pin_scope(pol) == REENCRYPT_PIN_SCOPE_CHAIN) {
            return "is unusable: ReencryptPinScope Chain cannot go with "
                   "ReencryptTrust PinOnly: without chain validation only "
                   "the backend's own key can be pinned";
        }
        if (rev != REENCRYPT_REVOCATION_OFF) {
            return "is unusable: revocation checking "
                   "(ReencryptCARevocationFile) cannot go with "
                   "ReencryptTrust PinOnly: without a chain there is no "
                   "issuer whose CRL could be checked; set "
                   "'ReencryptRevocationCheck Off' or trust anchors";
        }
        if (reencrypt_policy_stapling(pol) != REENCRYPT_STAPLING_OFF) {
            return apr_psprintf(p, "is unusable: ReencryptOCSPStapling (at "
                                "%s) cannot go with ReencryptTrust PinOnly: "
                                "without a validated chain no issuer can "
                                "vouch for a staple's signer; set "
                                "'ReencryptOCSPStapling Off' or trust "
                                "anchors", pol->stapling_where
                                           ? pol->stapling_where : "?");
        }
        return NULL;
    }
    if (!pol->anchors) {
        return "has no trust anchors: set ReencryptCACertificateFile in "
               "this scope or an enclosing one (or ReencryptTrust PinOnly "
               "with ReencryptPin)";
    }
    (void)p;
    return NULL;
}

/* FNV-1a, 64 bit: small, stable, good enough to tell policies apart
 * (it is not a security boundary: equal ids only allow a pooled
 * connection handshaked under one policy to serve another policy that
 * hashes alike, and every field that matters goes in). */
#define FNV_OFFSET APR_UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME  APR_UINT64_C(0x100000001b3)

static apr_uint64_t fnv_bytes(apr_uint64_t h, const void *data,
                              apr_size_t len)
{
    const unsigned char *b = data;
    apr_size_t i;

    for (i = 0; i < len; i++) {
        h ^= b[i];
        h *= FNV_PRIME;
    }
    return h;
}

static apr_uint64_t fnv_str(apr_uint64_t h, const char *s)
{
    /* include the terminating NUL so that "ab","c" != "a","bc" */
    return s ? fnv_bytes(h, s, strlen(s) + 1) : fnv_bytes(h, "\xff", 1);
}

static apr_uint64_t fnv_int(apr_uint64_t h, int v)
{
    return fnv_bytes(h, &v, sizeof(v));
}

static apr_uint64_t fnv_i64(apr_uint64_t h, apr_int64_t v)
{
    return fnv_bytes(h, &v, sizeof(v));
}

static apr_uint64_t fnv_client_id(apr_uint64_t h, const unsigned char *id)
{
    return id ? fnv_bytes(fnv_int(h, 1), id, REENCRYPT_CLIENT_ID_LEN)
              : fnv_int(h, 0);
}

static apr_uint64_t policy_id_of(const reencrypt_policy_t *pol)
{
    apr_uint64_t h = FNV_OFFSET;
    int i;

    if (!reencrypt_policy_enabled(pol)) {
        return 0;
    }
    h = fnv_int(h, 1);
    if (pol->anchors) {
        h = fnv_bytes(h, pol->anchors->digest, sizeof(pol->anchors->digest));
        h = fnv_str(h, pol->anchors->path);
    }
    else {
        h = fnv_str(h, NULL);
    }
    /* the one-value directives that change a verdict, as in effect
     * (session reuse and timeout change none) */
    for (i = 0; i < REENCRYPT_FIELD_COUNT; i++) {
        if (reencrypt_fields[i].in_id) {
            h = fnv_i64(h, reencrypt_policy_get(pol,
                                                (reencrypt_field_id_e)i));
        }
    }
    h = fnv_int(h, (int)reencrypt_policy_sni_mode(pol));
    h = fnv_str(h, pol->sni_name);
    if (pol->verify_names) {
        h = fnv_int(h, pol->verify_names->nelts);
        for (i = 0; i < pol->verify_names->nelts; i++) {
            h = fnv_str(h, APR_ARRAY_IDX(pol->verify_names, i, const char *));
        }
    }
    else {
        h = fnv_int(h, -1);
    }
    if (pol->pins) {
        h = fnv_int(h, pol->pins->nelts);
        h = fnv_bytes(h, pol->pins->elts,
                      (apr_size_t)pol->pins->nelts * sizeof(reencrypt_pin_t));
    }
    else {
        h = fnv_int(h, -1);
    }
    h = fnv_client_id(h, pol->client_cert_file);
    h = fnv_client_id(h, pol->client_cert_path);
    h = fnv_client_id(h, pol->client_chain_file);
    /* revocation: the mode and the CRLs themselves, so that a session
     * or a pooled connection checked against one CRL set never serves
     * a policy with another (a new CRL after a graceful restart) */
    h = fnv_int(h, (int)reencrypt_policy_revocation(pol));
    h = fnv_int(h, reencrypt_policy_no_crl_ok(pol));
    if (pol->crls && reencrypt_policy_revocation(pol)
                     != REENCRYPT_REVOCATION_OFF) {
        h = fnv_int(h, pol->crls->files->nelts);
        for (i = 0; i < pol->crls->files->nelts; i++) {
            const reencrypt_crl_file_t *f = APR_ARRAY_IDX(pol->crls->files,
                                              i, const reencrypt_crl_file_t *);

            h = fnv_bytes(h, f->digest, sizeof(f->digest));
            h = fnv_str(h, f->path);
        }
    }
    else {
        h = fnv_int(h, -1);
    }
    return h ? h : 1;
}

apr_uint64_t reencrypt_policy_id(const reencrypt_policy_t *pol)
{
    return pol->frozen_id ? pol->frozen_id : policy_id_of(pol);
}

void reencrypt_policy_freeze(reencrypt_policy_t *pol)
{
    pol->frozen_id = 0;
    pol->frozen_id = policy_id_of(pol);
}

static void hex_append(char *out, const unsigned char *id)
{
    static const char digits[] = "0123456789abcdef";
    int i;

    if (!id) {
        *out++ = '-';
    }
    else {
        for (i = 0; i < REENCRYPT_CLIENT_ID_LEN; i++) {
            *out++ = digits[id[i] >> 4];
            *out++ = digits[id[i] & 0x0f];
        }
    }
    *out = '\0';
}

const char *reencrypt_policy_client_id(apr_pool_t *p,
                                       const reencrypt_policy_t *pol)
{
    const unsigned char *ids[3];
    char *out, *o;
    int i;

    ids[0] = pol->client_cert_file;
    ids[1] = pol->client_cert_path;
    ids[2] = pol->client_chain_file;
    o = out = apr_palloc(p, 3 * (2 * REENCRYPT_CLIENT_ID_LEN + 1));
    for (i = 0; i < 3; i++) {
        if (i) {
            *o++ = '|';
        }
        hex_append(o, ids[i]);
        o += strlen(o);
    }
    return out;
}

const char *reencrypt_sni_for(apr_pool_t *p, const reencrypt_policy_t *pol,
                              const char *backend_host,
                              const char *client_host)
{
    unsigned char ip[16];
    const char *sni = NULL;
    char *n;
    apr_size_t len;

    switch (reencrypt_policy_sni_mode(pol)) {
    case REENCRYPT_SNI_NAME:
        return pol->sni_name;
    case REENCRYPT_SNI_OFF:
        return NULL;
    case REENCRYPT_SNI_HOST:
        sni = client_host;
        break;
    case REENCRYPT_SNI_BACKEND:
    default:
        sni = backend_host;
        break;
    }
    /* RFC 6066: literal IPv4 and IPv6 addresses are not permitted */
    if (!sni || !*sni || reencrypt_ip_parse(sni, ip)
        || !reencrypt_is_dns_name(sni)) {
        return NULL;
    }
    /* RFC 6066 3: the name goes without a trailing dot; DNS names are
     * case-insensitive, send one form so that cache keys agree */
    n = apr_pstrdup(p, sni);
    len = strlen(n);
    if (n[len - 1] == '.') {
        n[len - 1] = '\0';
    }
    str_tolower(n);
    return n;
}

apr_array_header_t *reencrypt_expected_names(apr_pool_t *p,
                                             const reencrypt_policy_t *pol,
                                             const char *sni,
                                             const char *backend_host)
{
    apr_array_header_t *names;

    if (pol->verify_names && pol->verify_names->nelts > 0) {
        return pol->verify_names;
    }
    names = apr_array_make(p, 1, sizeof(const char *));
    if (sni) {
        APR_ARRAY_PUSH(names, const char *) = sni;
    }
    else if (backend_host && *backend_host) {
        const char *h = backend_host;
        apr_size_t len = strlen(h);

        if (h[0] == '[' && len > 2 && h[len - 1] == ']') {
            h = apr_pstrmemdup(p, h + 1, len - 2);
        }
        APR_ARRAY_PUSH(names, const char *) = h;
    }
    return names;
}

/* ------------------------------------------------------------------ */
/* Backend addresses                                                   */

/* The schemes mod_proxy's handlers speak HTTP or TLS with. APR's
 * apr_uri_port_of_scheme() knows http and https but not the WebSocket
 * and HTTP/2 ones, for which it gives 0. */
static const struct {
    const char *scheme;
    apr_port_t port;
} default_ports[] = {
    { "https", 443 }, { "wss", 443 }, { "h2", 443 },
    { "http", 80 }, { "ws", 80 }, { "h2c", 80 },
};

apr_port_t reencrypt_port_of_scheme(const char *scheme)
{
    size_t i, n = sizeof(default_ports) / sizeof(default_ports[0]);

    for (i = 0; scheme && i < n; i++) {
        if (!strcasecmp(scheme, default_ports[i].scheme)) {
            return default_ports[i].port;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Health checks                                                       */

/* The CRLF that ends the line at s (before end), or NULL when there is
 * none or the line holds another control character. */
static const char *line_end(const char *s, const char *end)
{
    for (; s < end; s++) {
        if (*s == '\r') {
            return (s + 1 < end && s[1] == '\n') ? s : NULL;
        }
        if (apr_iscntrl(*s)) {
            return NULL;
        }
    }
    return NULL;
}

int reencrypt_parse_check_head(apr_pool_t *p, const char *buf,
                               apr_size_t len, const char **host,
                               unsigned int *port)
{
    static const char version[] = " HTTP/1.";
    const apr_size_t vlen = sizeof(version) - 1;
    const char *end, *eol, *q, *h, *hend;
    unsigned long n = 0;

    if (!buf) {
        return 0;
    }
    end = buf + len;
    /* request line: an upper-case method, one space, a target without
     * spaces, " HTTP/1.0" or " HTTP/1.1" */
    eol = line_end(buf, end);
    if (!eol || (apr_size_t)(eol - buf) < vlen + 3
        || memcmp(eol - vlen - 1, version, vlen)
        || (eol[-1] != '0' && eol[-1] != '1')) {
        return 0;
    }
    for (q = buf; q < eol && apr_isupper(*q); q++) {
    }
    if (q == buf || *q != ' ') {
        return 0;
    }
    for (q++, h = q; q < eol - vlen - 1 && *q != ' '; q++) {
    }
    if (q == h || q != eol - vlen - 1) {
        return 0;
    }
    /* "Host: host:port", then the empty line that ends the head */
    h = eol + 2;
    if (end - h < 6 || memcmp(h, "Host: ", 6)) {
        return 0;
    }
    h += 6;
    eol = line_end(h, end);
    if (!eol || end - eol < 4 || memcmp(eol, "\r\n\r\n", 4)) {
        return 0;
    }
    /* the port: the digits after the last colon */
    for (q = eol; q > h && apr_isdigit(q[-1]); q--) {
    }
    if (q == eol || eol - q > 5 || q - h < 2 || q[-1] != ':') {
        return 0;
    }
    hend = q - 1;
    for (; q < eol; q++) {
        n = n * 10 + (unsigned long)(*q - '0');
    }
    if (n < 1 || n > 65535) {
        return 0;
    }
    if (*h == '[') {
        if (hend - h < 3 || hend[-1] != ']') {
            return 0;
        }
        h++;
        hend--;
    }
    for (q = h; q < hend; q++) {
        if (!apr_isalnum(*q) && *q != '-' && *q != '.' && *q != ':'
            && *q != '_') {
            return 0;
        }
    }
    *host = apr_pstrmemdup(p, h, (apr_size_t)(hend - h));
    *port = (unsigned int)n;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Files                                                               */

const char *reencrypt_read_file(apr_pool_t *p, const char *directive,
                                const char *path, apr_size_t max,
                                char **text, apr_size_t *len,
                                apr_finfo_t *info)
{
    apr_file_t *fd = NULL;
    apr_finfo_t finfo;
    apr_status_t rv;
    char errbuf[256];

    rv = apr_file_open(&fd, path, APR_FOPEN_READ, APR_OS_DEFAULT, p);
    if (rv == APR_SUCCESS) {
        rv = apr_file_info_get(&finfo, APR_FINFO_TYPE | APR_FINFO_SIZE
                                       | APR_FINFO_PROT | APR_FINFO_OWNER,
                               fd);
    }
    if (rv != APR_SUCCESS) {
        if (fd) {
            apr_file_close(fd);
        }
        return apr_psprintf(p, "%s: cannot read '%s' (%s)", directive, path,
                            apr_strerror(rv, errbuf, sizeof(errbuf)));
    }
    if (finfo.filetype != APR_REG) {
        apr_file_close(fd);
        return apr_psprintf(p, "%s: '%s' is not a regular file", directive,
                            path);
    }
    if (finfo.size < 0 || (apr_uint64_t)finfo.size > (apr_uint64_t)max) {
        apr_file_close(fd);
        return apr_psprintf(p, "%s: '%s' is larger than %" APR_SIZE_T_FMT
                            " bytes", directive, path, max);
    }
    *len = (apr_size_t)finfo.size;
    *text = apr_palloc(p, *len + 1);
    rv = apr_file_read_full(fd, *text, *len, len);
    apr_file_close(fd);
    if (rv != APR_SUCCESS && !(APR_STATUS_IS_EOF(rv) && *len == 0)) {
        return apr_psprintf(p, "%s: cannot read '%s' (%s)", directive, path,
                            apr_strerror(rv, errbuf, sizeof(errbuf)));
    }
    (*text)[*len] = '\0';
    if (info) {
        *info = finfo;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Session cache                                                       */

const char *reencrypt_cache_provider(apr_pool_t *p, const char *spec,
                                     const char **args)
{
    const char *colon = strchr(spec, ':');

    *args = colon ? colon + 1 : NULL;
    return colon ? apr_pstrmemdup(p, spec, (apr_size_t)(colon - spec))
                 : spec;
}

int reencrypt_cache_is_networked(apr_pool_t *p, const char *spec)
{
    const char *name, *args;

    if (!spec) {
        return 0;                       /* the default: shmcb */
    }
    name = reencrypt_cache_provider(p, spec, &args);
    return strcasecmp(name, "none") && strcasecmp(name, "shmcb")
           && strcasecmp(name, "dbm");
}
