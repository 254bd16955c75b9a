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
 * reencrypt_status.c: a live inventory of backend certificates and
 * handshake counters, shared by all child processes through httpd's
 * slotmem provider (mod_slotmem_shm), and its three views: the
 * reencrypt-status handler (HTML, ?json, ?prometheus) and a section of
 * mod_status's server-status (and ?auto).
 *
 * One slot per backend and SNI, at most ReencryptStatusBackends of
 * them. Facts (certificate, last handshake) are written under a global
 * mutex, once per handshake; counters are atomic, so the per-request
 * path (a reused connection) costs one atomic increment.
 */

#include "apr_atomic.h"
#include "apr_global_mutex.h"
#include "apr_strings.h"

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_provider.h"
#include "ap_slotmem.h"
#include "mod_status.h"
#include "util_mutex.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "mod_reencrypt.h"
#include "reencrypt_escape.h"

APLOG_USE_MODULE(reencrypt);

#define STATUS_MUTEX_TYPE  "reencrypt-status"
#define STATUS_SLOTMEM     "mod_reencrypt-status"
#define STATUS_HANDLER     "reencrypt-status"

/* One backend, as kept in shared memory: fixed size, no pointers. */
typedef struct {
    apr_uint32_t in_use;
    char backend[128];
    char sni[128];
    /* certificate last presented */
    unsigned char fingerprint[32];
    char subject[256];
    char issuer[256];
    char sans[512];
    char serial[72];
    char pin[56];
    apr_int64_t not_before;
    apr_int64_t not_after;
    apr_int32_t chain_len;
    /* last handshake */
    apr_int64_t last_time;
    char last_result[40];
    char protocol[16];
    char cipher[64];
    apr_int64_t warn_within;
    /* counters */
    apr_uint64_t full;
    apr_uint64_t resumed;
    apr_uint64_t reuses;
    apr_uint64_t refused[REENCRYPT_REASONS];
    apr_uint64_t reported[REENCRYPT_REASONS];
} status_slot_t;

static const ap_slotmem_provider_t *slotmem;
static ap_slotmem_instance_t *slots;
static apr_global_mutex_t *status_mutex;
static unsigned int nslots;

int reencrypt_status_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    return ap_mutex_register(pconf, STATUS_MUTEX_TYPE, NULL,
                             APR_LOCK_DEFAULT, 0);
}

static apr_status_t status_cleanup(void *data)
{
    (void)data;
    slots = NULL;
    slotmem = NULL;
    status_mutex = NULL;
    nslots = 0;
    return APR_SUCCESS;
}

int reencrypt_status_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                 apr_pool_t *ptemp, server_rec *s)
{
    const reencrypt_srv_conf *sc = ap_get_module_config(s->module_config,
                                                        &reencrypt_module);
    int wanted = sc->status_backends;
    apr_status_t rv;

    (void)plog;
    (void)ptemp;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG
        || !reencrypt_any_policy) {
        return OK;
    }
    if (wanted == REENCRYPT_UNSET) {
        wanted = REENCRYPT_STATUS_BACKENDS_DEFAULT;
    }
    if (wanted == 0) {
        return OK;
    }
    slotmem = ap_lookup_provider(AP_SLOTMEM_PROVIDER_GROUP, "shm",
                                 AP_SLOTMEM_PROVIDER_VERSION);
    if (!slotmem) {
        /* an explicit ReencryptStatusBackends was refused by check_config */
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, RELOGNO(00027)
                     "backend statistics are off: mod_slotmem_shm is not "
                     "loaded");
        return OK;
    }
    rv = slotmem->create(&slots, STATUS_SLOTMEM, sizeof(status_slot_t),
                         (unsigned int)wanted,
                         AP_SLOTMEM_TYPE_PREGRAB | AP_SLOTMEM_TYPE_PERSIST,
                         pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, RELOGNO(00028)
                     "cannot create %d shared memory slots for backend "
                     "statistics", wanted);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rv = ap_global_mutex_create(&status_mutex, NULL, STATUS_MUTEX_TYPE,
                                NULL, s, pconf, 0);
    if (rv != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;      /* httpd logged why */
    }
    nslots = (unsigned int)wanted;
    apr_pool_cleanup_register(pconf, NULL, status_cleanup,
                              apr_pool_cleanup_null);
    return OK;
}

void reencrypt_status_child_init(apr_pool_t *p, server_rec *s)
{
    apr_status_t rv;

    if (!status_mutex) {
        return;
    }
    rv = apr_global_mutex_child_init(&status_mutex,
                                     apr_global_mutex_lockfile(status_mutex),
                                     p);
    if (rv != APR_SUCCESS) {
        /* never exit a child for statistics: carry on without them */
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, RELOGNO(00029)
                     "cannot attach to the statistics mutex: backend "
                     "statistics are off in this process");
        slots = NULL;
    }
}

static status_slot_t *slot_at(unsigned int i)
{
    void *mem = NULL;

    if (!slots || slotmem->dptr(slots, i, &mem) != APR_SUCCESS) {
        return NULL;
    }
    return mem;
}

static void copy_str(char *dst, apr_size_t size, const char *src)
{
    apr_cpystrn(dst, src ? src : "", size);
}

/* The slot (index + 1) in use for backend and SNI, or 0; with free_at,
 * also the first free slot (index + 1, or 0) in the same pass.
 * A claimed slot is never released and its names never change once
 * in_use is set (after them), so this may run without the global mutex
 * to find a slot; claiming one takes the mutex. */
static unsigned int slot_find(const char *backend, const char *sni,
                              unsigned int *free_at)
{
    status_slot_t *sl;
    unsigned int i;

    for (i = 0; i < nslots; i++) {
        if (!(sl = slot_at(i))) {
            continue;
        }
        if (apr_atomic_read32(&sl->in_use)) {
            if (!strcmp(sl->backend, backend) && !strcmp(sl->sni, sni)) {
                return i + 1;
            }
        }
        else if (free_at && !*free_at) {
            *free_at = i + 1;
        }
    }
    return 0;
}

/* The slot of this connection's backend and SNI, found or claimed once
 * per connection and remembered in st->slot. With a new backend
 * connection per request this runs for every request: only a backend's
 * first connection takes the global mutex. */
static status_slot_t *slot_of(reencrypt_conn_t *st)
{
    const char *backend = st->backend_name ? st->backend_name : "?";
    const char *sni = st->sni ? st->sni : "";
    status_slot_t *sl = NULL;
    unsigned int found, free_at = 0;

    if (!slots) {
        return NULL;
    }
    if (st->slot > 0) {
        return slot_at((unsigned int)(st->slot - 1));
    }
    if (st->slot < 0) {
        return NULL;                /* no room: counted as unknown */
    }
    if ((found = slot_find(backend, sni, NULL)) != 0) {
        st->slot = (int)found;
        return slot_at(found - 1);
    }
    if (apr_global_mutex_lock(status_mutex) != APR_SUCCESS) {
        return NULL;
    }
    if ((found = slot_find(backend, sni, &free_at)) != 0) {
        st->slot = (int)found;
        sl = slot_at(found - 1);
    }
    else if (free_at && (sl = slot_at(free_at - 1)) != NULL) {
        memset(sl, 0, sizeof(*sl));
        copy_str(sl->backend, sizeof(sl->backend), backend);
        copy_str(sl->sni, sizeof(sl->sni), sni);
        apr_atomic_set32(&sl->in_use, 1);   /* after the names */
        st->slot = (int)free_at;
    }
    else {
        st->slot = -1;
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, st->c, RELOGNO(00030)
                      "backend %s: no free statistics slot (raise "
                      "ReencryptStatusBackends)", backend);
    }
    apr_global_mutex_unlock(status_mutex);
    return sl;
}

static void cert_facts(status_slot_t *sl, X509 *leaf, int chain_len,
                       apr_pool_t *p)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    reencrypt_pin_t pin;
    const ASN1_INTEGER *serial;
    BIGNUM *bn;

    if (!leaf || !X509_digest(leaf, EVP_sha256(), md, &mdlen)
        || mdlen != sizeof(sl->fingerprint)) {
        return;
    }
    sl->chain_len = chain_len;
    if (!memcmp(sl->fingerprint, md, mdlen)) {
        return;                     /* the same certificate as before */
    }
    memcpy(sl->fingerprint, md, mdlen);
    copy_str(sl->subject, sizeof(sl->subject),
             reencrypt_name_str(p, X509_get_subject_name(leaf)));
    copy_str(sl->issuer, sizeof(sl->issuer),
             reencrypt_name_str(p, X509_get_issuer_name(leaf)));
    copy_str(sl->sans, sizeof(sl->sans), reencrypt_san_str(p, leaf, 16));
    serial = X509_get0_serialNumber(leaf);
    if ((bn = ASN1_INTEGER_to_BN(serial, NULL)) != NULL) {
        char *hex = BN_bn2hex(bn);

        copy_str(sl->serial, sizeof(sl->serial), hex);
        OPENSSL_free(hex);
        BN_free(bn);
    }
    if (reencrypt_pin_of_cert(leaf, &pin) == 0) {
        copy_str(sl->pin, sizeof(sl->pin), reencrypt_pin_str(p, &pin));
    }
    sl->not_before = (apr_int64_t)reencrypt_asn1_time_t(
                         X509_get0_notBefore(leaf));
    sl->not_after = (apr_int64_t)reencrypt_asn1_time_t(
                        X509_get0_notAfter(leaf));
}

void reencrypt_status_handshake(reencrypt_conn_t *st, X509 *leaf,
                                int chain_len, SSL *ssl, int refused)
{
    status_slot_t *sl = slot_of(st);
    apr_pool_t *tp;

    if (!sl) {
        return;
    }
    if (refused) {
        apr_atomic_inc64(&sl->refused[st->reason]);
    }
    else if (st->resumed) {
        apr_atomic_inc64(&sl->resumed);
    }
    else {
        apr_atomic_inc64(&sl->full);
    }
    if (!refused && st->reason != REENCRYPT_OK) {
        apr_atomic_inc64(&sl->reported[st->reason]);
    }
    /* The facts of a busy backend change rarely: within the second of the
     * last update, with the same result and key, leave them (and the
     * global mutex) alone. The unlocked reads only decide whether to
     * update; strings in a slot always end within their buffer. */
    if (!refused && sl->last_time == (apr_int64_t)apr_time_sec(apr_time_now())
        && st->result && !strcmp(sl->last_result, st->result)
        && st->peer_pin && !strcmp(sl->pin, st->peer_pin)) {
        return;
    }
    if (apr_global_mutex_lock(status_mutex) != APR_SUCCESS) {
        return;
    }
    apr_pool_create(&tp, st->c->pool);
    cert_facts(sl, leaf, chain_len, tp);
    sl->last_time = (apr_int64_t)apr_time_sec(apr_time_now());
    copy_str(sl->last_result, sizeof(sl->last_result), st->result);
    copy_str(sl->protocol, sizeof(sl->protocol),
             (ssl && !refused) ? SSL_get_version(ssl) : "-");
    copy_str(sl->cipher, sizeof(sl->cipher),
             (ssl && !refused) ? SSL_get_cipher_name(ssl) : "-");
    sl->warn_within = reencrypt_policy_warn_within(&st->policy);
    apr_global_mutex_unlock(status_mutex);
    apr_pool_destroy(tp);
}

void reencrypt_status_reuse(reencrypt_conn_t *st)
{
    status_slot_t *sl;

    if (st->slot > 0 && (sl = slot_at((unsigned int)(st->slot - 1)))) {
        apr_atomic_inc64(&sl->reuses);
    }
}

/* ------------------------------------------------------------------ */
/* Views                                                               */

typedef struct {
    apr_array_header_t *rows;       /* status_slot_t copies */
    apr_int64_t now;
} snapshot_t;

static int by_expiry(const void *a, const void *b)
{
    const status_slot_t *x = a, *y = b;

    /* soonest first; unknown (0) last */
    if (!x->not_after != !y->not_after) {
        return x->not_after ? -1 : 1;
    }
    if (x->not_after != y->not_after) {
        return x->not_after < y->not_after ? -1 : 1;
    }
    return strcmp(x->backend, y->backend);
}

static void take_snapshot(apr_pool_t *p, snapshot_t *snap)
{
    unsigned int i;

    snap->rows = apr_array_make(p, 8, sizeof(status_slot_t));
    snap->now = (apr_int64_t)apr_time_sec(apr_time_now());
    if (!slots || apr_global_mutex_lock(status_mutex) != APR_SUCCESS) {
        return;
    }
    for (i = 0; i < nslots; i++) {
        status_slot_t *sl = slot_at(i);

        if (sl && sl->in_use) {
            *(status_slot_t *)apr_array_push(snap->rows) = *sl;
        }
    }
    apr_global_mutex_unlock(status_mutex);
    if (snap->rows->nelts > 1) {
        qsort(snap->rows->elts, (size_t)snap->rows->nelts,
              sizeof(status_slot_t), by_expiry);
    }
}

static apr_uint64_t sum(const apr_uint64_t *v)
{
    apr_uint64_t n = 0;
    int i;

    for (i = 0; i < REENCRYPT_REASONS; i++) {
        n += v[i];
    }
    return n;
}

static int expiring(const status_slot_t *sl, apr_int64_t now)
{
    return sl->not_after && sl->warn_within > 0
           && sl->not_after - now < sl->warn_within;
}

static const char *iso(apr_pool_t *p, apr_int64_t t)
{
    return t ? reencrypt_time_str(p, (time_t)t) : "";
}

/* --- JSON --- */

static const char *json_str_or_null(apr_pool_t *p, const char *s)
{
    return (s && *s) ? reencrypt_escape_json(p, s) : "null";
}

static void json_reasons(request_rec *r, const apr_uint64_t *v)
{
    int i;

    ap_rputs("{", r);
    for (i = 1; i < REENCRYPT_REASONS; i++) {
        ap_rprintf(r, "%s\"%s\": %" APR_UINT64_T_FMT, i > 1 ? ", " : "",
                   reencrypt_reason_token((reencrypt_reason_e)i), v[i]);
    }
    ap_rputs("}", r);
}

static void render_json(request_rec *r, const snapshot_t *snap)
{
    int i;

    ap_set_content_type(r, "application/json");
    ap_rprintf(r, "{\"schema\": 1, \"module\": \"mod_reencrypt/%s\", "
               "\"generated\": \"%s\", \"generated_unix\": %" APR_INT64_T_FMT
               ", \"slots\": %u, \"slots_used\": %d, \"backends\": [",
               REENCRYPT_VERSION, iso(r->pool, snap->now), snap->now, nslots,
               snap->rows->nelts);
    for (i = 0; i < snap->rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(snap->rows, i,
                                                 status_slot_t);

        ap_rprintf(r, "%s\n  {\"backend\": %s, \"sni\": %s, \"expiring\": %s"
                   ", \"warn_within_seconds\": %" APR_INT64_T_FMT ",",
                   i ? "," : "", reencrypt_escape_json(r->pool, sl->backend),
                   json_str_or_null(r->pool, sl->sni),
                   expiring(sl, snap->now) ? "true" : "false",
                   sl->warn_within);
        if (sl->not_after) {
            ap_rprintf(r, "\n   \"certificate\": {\"subject\": %s, "
                       "\"issuer\": %s, \"sans\": %s, \"serial\": %s, "
                       "\"pin\": %s, \"not_before\": %s, \"not_after\": %s, "
                       "\"not_after_unix\": %" APR_INT64_T_FMT ", "
                       "\"seconds_left\": %" APR_INT64_T_FMT ", "
                       "\"chain_length\": %d},",
                       reencrypt_escape_json(r->pool, sl->subject),
                       reencrypt_escape_json(r->pool, sl->issuer),
                       reencrypt_escape_json(r->pool, sl->sans),
                       reencrypt_escape_json(r->pool, sl->serial),
                       reencrypt_escape_json(r->pool, sl->pin),
                       reencrypt_escape_json(r->pool,
                                             iso(r->pool, sl->not_before)),
                       reencrypt_escape_json(r->pool,
                                             iso(r->pool, sl->not_after)),
                       sl->not_after, sl->not_after - snap->now,
                       (int)sl->chain_len);
        }
        else {
            ap_rputs("\n   \"certificate\": null,", r);
        }
        ap_rprintf(r, "\n   \"last_handshake\": {\"time\": %s, "
                   "\"time_unix\": %" APR_INT64_T_FMT ", \"result\": %s, "
                   "\"protocol\": %s, \"cipher\": %s},",
                   json_str_or_null(r->pool, iso(r->pool, sl->last_time)),
                   sl->last_time,
                   reencrypt_escape_json(r->pool, sl->last_result),
                   reencrypt_escape_json(r->pool, sl->protocol),
                   reencrypt_escape_json(r->pool, sl->cipher));
        ap_rprintf(r, "\n   \"counters\": {\"handshakes_full\": %"
                   APR_UINT64_T_FMT ", \"handshakes_resumed\": %"
                   APR_UINT64_T_FMT ", \"reuses\": %" APR_UINT64_T_FMT
                   ", \"refusals\": ", sl->full, sl->resumed, sl->reuses);
        json_reasons(r, sl->refused);
        ap_rputs(", \"report_violations\": ", r);
        json_reasons(r, sl->reported);
        ap_rputs("}}", r);
    }
    ap_rputs("\n]}\n", r);
}

/* --- Prometheus text exposition format 0.0.4 --- */

static void prom_head(request_rec *r, const char *name, const char *type,
                      const char *help)
{
    ap_rprintf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *prom_ids(apr_pool_t *p, const status_slot_t *sl)
{
    return apr_psprintf(p, "backend=\"%s\",sni=\"%s\"",
                        reencrypt_escape_prom(p, sl->backend),
                        reencrypt_escape_prom(p, sl->sni));
}

static void render_prometheus(request_rec *r, const snapshot_t *snap)
{
    const apr_array_header_t *rows = snap->rows;
    int i, k;

    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");

    prom_head(r, "reencrypt_backend_info", "gauge",
              "Certificate and last handshake of a backend, as labels.");
    for (i = 0; i < rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(rows, i, status_slot_t);

        ap_rprintf(r, "reencrypt_backend_info{%s,subject=\"%s\","
                   "issuer=\"%s\",serial=\"%s\",pin=\"%s\",protocol=\"%s\","
                   "cipher=\"%s\",result=\"%s\"} 1\n",
                   prom_ids(r->pool, sl),
                   reencrypt_escape_prom(r->pool, sl->subject),
                   reencrypt_escape_prom(r->pool, sl->issuer),
                   reencrypt_escape_prom(r->pool, sl->serial),
                   reencrypt_escape_prom(r->pool, sl->pin),
                   reencrypt_escape_prom(r->pool, sl->protocol),
                   reencrypt_escape_prom(r->pool, sl->cipher),
                   reencrypt_escape_prom(r->pool, sl->last_result));
    }
    prom_head(r, "reencrypt_backend_cert_not_after_timestamp_seconds",
              "gauge", "notAfter of the certificate the backend presented.");
    for (i = 0; i < rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(rows, i, status_slot_t);

        if (sl->not_after) {
            ap_rprintf(r, "reencrypt_backend_cert_not_after_timestamp_seconds"
                       "{%s} %" APR_INT64_T_FMT "\n", prom_ids(r->pool, sl),
                       sl->not_after);
        }
    }
    prom_head(r, "reencrypt_backend_cert_not_before_timestamp_seconds",
              "gauge", "notBefore of the certificate the backend presented.");
    for (i = 0; i < rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(rows, i, status_slot_t);

        if (sl->not_after) {
            ap_rprintf(r, "reencrypt_backend_cert_not_before_timestamp_seconds"
                       "{%s} %" APR_INT64_T_FMT "\n", prom_ids(r->pool, sl),
                       sl->not_before);
        }
    }
    prom_head(r, "reencrypt_backend_cert_expiring", "gauge",
              "1 when the certificate expires within "
              "ReencryptWarnExpiringWithin.");
    for (i = 0; i < rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(rows, i, status_slot_t);

        if (sl->not_after) {
            ap_rprintf(r, "reencrypt_backend_cert_expiring{%s} %d\n",
                       prom_ids(r->pool, sl), expiring(sl, snap->now));
        }
    }
    prom_head(r, "reencrypt_backend_last_handshake_timestamp_seconds",
              "gauge", "Time of the last handshake with the backend.");
    for (i = 0; i < rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(rows, i, status_slot_t);

        if (sl->last_time) {
            ap_rprintf(r, "reencrypt_backend_last_handshake_timestamp_seconds"
                       "{%s} %" APR_INT64_T_FMT "\n", prom_ids(r->pool, sl),
                       sl->last_time);
        }
    }
    prom_head(r, "reencrypt_handshakes_total", "counter",
              "TLS handshakes with the backend that passed the policy.");
    for (i = 0; i < rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(rows, i, status_slot_t);

        ap_rprintf(r, "reencrypt_handshakes_total{%s,kind=\"full\"} %"
                   APR_UINT64_T_FMT "\n", prom_ids(r->pool, sl), sl->full);
        ap_rprintf(r, "reencrypt_handshakes_total{%s,kind=\"resumed\"} %"
                   APR_UINT64_T_FMT "\n", prom_ids(r->pool, sl), sl->resumed);
    }
    prom_head(r, "reencrypt_connection_reuses_total", "counter",
              "Requests sent over an already verified pooled connection.");
    for (i = 0; i < rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(rows, i, status_slot_t);

        ap_rprintf(r, "reencrypt_connection_reuses_total{%s} %"
                   APR_UINT64_T_FMT "\n", prom_ids(r->pool, sl), sl->reuses);
    }
    prom_head(r, "reencrypt_refusals_total", "counter",
              "Backend handshakes refused by the policy, by reason.");
    for (i = 0; i < rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(rows, i, status_slot_t);

        for (k = 1; k < REENCRYPT_REASONS; k++) {
            ap_rprintf(r, "reencrypt_refusals_total{%s,reason=\"%s\"} %"
                       APR_UINT64_T_FMT "\n", prom_ids(r->pool, sl),
                       reencrypt_reason_token((reencrypt_reason_e)k),
                       sl->refused[k]);
        }
    }
    prom_head(r, "reencrypt_report_violations_total", "counter",
              "Violations let through by ReencryptMode Report, by reason.");
    for (i = 0; i < rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(rows, i, status_slot_t);

        for (k = 1; k < REENCRYPT_REASONS; k++) {
            ap_rprintf(r, "reencrypt_report_violations_total{%s,reason=\"%s\"}"
                       " %" APR_UINT64_T_FMT "\n", prom_ids(r->pool, sl),
                       reencrypt_reason_token((reencrypt_reason_e)k),
                       sl->reported[k]);
        }
    }
    prom_head(r, "reencrypt_status_slots", "gauge",
              "Statistics slots (ReencryptStatusBackends) and those in use.");
    ap_rprintf(r, "reencrypt_status_slots{state=\"total\"} %u\n", nslots);
    ap_rprintf(r, "reencrypt_status_slots{state=\"used\"} %d\n", rows->nelts);
}

/* --- HTML --- */

static const char *left_str(apr_pool_t *p, apr_int64_t secs)
{
    if (secs < 0) {
        return apr_psprintf(p, "expired %" APR_INT64_T_FMT "d ago",
                            (-secs) / 86400);
    }
    if (secs < 2 * 86400) {
        return apr_psprintf(p, "%" APR_INT64_T_FMT "h", secs / 3600);
    }
    return apr_psprintf(p, "%" APR_INT64_T_FMT "d", secs / 86400);
}

static void html_reasons(request_rec *r, const apr_uint64_t *v)
{
    int i, any = 0;

    for (i = 1; i < REENCRYPT_REASONS; i++) {
        if (v[i]) {
            ap_rprintf(r, "%s<span class=\"tag\">%s&nbsp;%" APR_UINT64_T_FMT
                       "</span>", any ? "<br>" : "",
                       reencrypt_reason_token((reencrypt_reason_e)i), v[i]);
            any = 1;
        }
    }
    if (!any) {
        ap_rputs("0", r);
    }
}

static void render_html(request_rec *r, const snapshot_t *snap)
{
    int i;

    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rputs(DOCTYPE_HTML_4_01
             "<html><head><meta charset=\"utf-8\">\n"
             "<title>mod_reencrypt status</title>\n<style>\n"
             "body{font-family:sans-serif;margin:1.5em;color:#222}\n"
             "h1{font-size:1.4em;margin-bottom:.2em}\n"
             ".meta{color:#666;margin-bottom:1em}\n"
             "table{border-collapse:collapse;font-size:.9em}\n"
             "th,td{border:1px solid #ccc;padding:.35em .6em;"
             "text-align:left;vertical-align:top}\n"
             "th{background:#eef1f5}\n"
             "tr.bad td{background:#fde8e8}\n"
             "tr.warn td{background:#fff6dc}\n"
             "td.num{text-align:right}\n"
             ".small{color:#555;font-size:.85em}\n"
             ".tag{display:inline-block;padding:0 .4em;border-radius:3px;"
             "font-size:.85em;white-space:nowrap}\n"
             "td.when{white-space:nowrap}\n"
             ".tag.bad{background:#c62828;color:#fff}\n"
             ".tag.warn{background:#f9a825;color:#000}\n"
             ".tag.ok{background:#2e7d32;color:#fff}\n"
             "</style></head><body>\n"
             "<h1>mod_reencrypt: backend certificates</h1>\n", r);
    ap_rprintf(r, "<div class=\"meta\">%s &middot; %d of %u backends "
               "tracked &middot; soonest expiry first &middot; "
               "<a href=\"?json\">JSON</a> &middot; "
               "<a href=\"?prometheus\">Prometheus</a></div>\n",
               reencrypt_escape_html(r->pool, iso(r->pool, snap->now)),
               snap->rows->nelts,
               nslots);
    if (!slots) {
        ap_rputs("<p>Backend statistics are off (mod_slotmem_shm not loaded, "
                 "ReencryptStatusBackends 0, or no ReencryptEngine On).</p>"
                 "</body></html>\n", r);
        return;
    }
    ap_rputs("<table>\n<tr><th>Backend / SNI</th><th>Certificate</th>"
             "<th>Expires</th><th>Last handshake</th>"
             "<th>Handshakes<br>full / resumed</th><th>Reuses</th>"
             "<th>Refusals</th><th>Report-only</th></tr>\n", r);
    for (i = 0; i < snap->rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(snap->rows, i,
                                                 status_slot_t);
        int bad = sum(sl->refused) > 0
                  || !strncmp(sl->last_result, "refused", 7);
        int warn = expiring(sl, snap->now) || sum(sl->reported) > 0
                   || !strncmp(sl->last_result, "report", 6);
        const char *cls = bad ? "bad" : (warn ? "warn" : "ok");

        ap_rprintf(r, "<tr class=\"%s\"><td><b>%s</b><br>"
                   "<span class=\"small\">SNI %s</span></td>",
                   cls, reencrypt_escape_html(r->pool, sl->backend),
                   *sl->sni ? reencrypt_escape_html(r->pool, sl->sni)
                            : "(none)");
        if (sl->not_after) {
            ap_rprintf(r, "<td>%s<br><span class=\"small\">issuer %s<br>"
                       "%s<br>serial %s &middot; chain %d<br>%s</span></td>",
                       reencrypt_escape_html(r->pool, sl->subject),
                       reencrypt_escape_html(r->pool, sl->issuer),
                       reencrypt_escape_html(r->pool, sl->sans),
                       reencrypt_escape_html(r->pool, sl->serial),
                       (int)sl->chain_len,
                       reencrypt_escape_html(r->pool, sl->pin));
            ap_rprintf(r, "<td class=\"when\">%s<br>"
                       "<span class=\"tag %s\">%s</span></td>",
                       reencrypt_escape_html(r->pool,
                                             iso(r->pool, sl->not_after)),
                       expiring(sl, snap->now)
                           || sl->not_after <= snap->now ? "warn" : "ok",
                       reencrypt_escape_html(r->pool, left_str(r->pool,
                                             sl->not_after - snap->now)));
        }
        else {
            ap_rputs("<td>(none seen)</td><td></td>", r);
        }
        ap_rprintf(r, "<td><span class=\"tag %s\">%s</span><br>"
                   "<span class=\"small\">%s<br>%s %s</span></td>",
                   !strncmp(sl->last_result, "ok", 2) ? "ok"
                   : (!strncmp(sl->last_result, "report", 6) ? "warn"
                                                             : "bad"),
                   reencrypt_escape_html(r->pool, sl->last_result),
                   reencrypt_escape_html(r->pool, iso(r->pool, sl->last_time)),
                   reencrypt_escape_html(r->pool, sl->protocol),
                   reencrypt_escape_html(r->pool, sl->cipher));
        ap_rprintf(r, "<td class=\"num\">%" APR_UINT64_T_FMT " / %"
                   APR_UINT64_T_FMT "</td><td class=\"num\">%"
                   APR_UINT64_T_FMT "</td><td>", sl->full, sl->resumed,
                   sl->reuses);
        html_reasons(r, sl->refused);
        ap_rputs("</td><td>", r);
        html_reasons(r, sl->reported);
        ap_rputs("</td></tr>\n", r);
    }
    ap_rputs("</table>\n</body></html>\n", r);
}

/* "?json", or "?json=" and "?json&..." as scrapers and forms send it */
static int arg_is(const char *args, const char *name)
{
    apr_size_t n = strlen(name);

    return args && !strncmp(args, name, n)
           && (args[n] == '\0' || args[n] == '=' || args[n] == '&');
}

int reencrypt_status_handler(request_rec *r)
{
    snapshot_t snap;

    if (!r->handler || strcmp(r->handler, STATUS_HANDLER)) {
        return DECLINED;
    }
    r->allowed = (AP_METHOD_BIT << M_GET);
    ap_allow_standard_methods(r, REPLACE_ALLOW, M_GET, -1);
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    take_snapshot(r->pool, &snap);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (arg_is(r->args, "json")) {
        render_json(r, &snap);
    }
    else if (arg_is(r->args, "prometheus")) {
        render_prometheus(r, &snap);
    }
    else {
        render_html(r, &snap);
    }
    return OK;
}

/* mod_status: a section of server-status, and lines of ?auto */
int reencrypt_status_hook(request_rec *r, int flags)
{
    snapshot_t snap;
    apr_uint64_t full = 0, resumed = 0, reuses = 0, refused = 0, reported = 0;
    const status_slot_t *soonest = NULL;
    int i, n_expiring = 0;

    if (!slots) {
        return OK;
    }
    take_snapshot(r->pool, &snap);
    for (i = 0; i < snap.rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(snap.rows, i,
                                                 status_slot_t);

        full += sl->full;
        resumed += sl->resumed;
        reuses += sl->reuses;
        refused += sum(sl->refused);
        reported += sum(sl->reported);
        n_expiring += expiring(sl, snap.now);
        if (sl->not_after && !soonest) {
            soonest = sl;           /* rows are sorted by expiry */
        }
    }
    if (flags & AP_STATUS_SHORT) {
        ap_rprintf(r, "ReencryptBackends: %d\n"
                   "ReencryptHandshakesFull: %" APR_UINT64_T_FMT "\n"
                   "ReencryptHandshakesResumed: %" APR_UINT64_T_FMT "\n"
                   "ReencryptReuses: %" APR_UINT64_T_FMT "\n"
                   "ReencryptRefusals: %" APR_UINT64_T_FMT "\n"
                   "ReencryptReportViolations: %" APR_UINT64_T_FMT "\n"
                   "ReencryptExpiringBackends: %d\n",
                   snap.rows->nelts, full, resumed, reuses, refused,
                   reported, n_expiring);
        if (soonest) {
            ap_rprintf(r, "ReencryptSoonestExpirySeconds: %" APR_INT64_T_FMT
                       "\nReencryptSoonestExpiryBackend: %s\n",
                       soonest->not_after - snap.now, soonest->backend);
        }
        return OK;
    }
    ap_rputs("<hr>\n<h2>mod_reencrypt</h2>\n<dl>\n", r);
    ap_rprintf(r, "<dt>%d backends tracked; handshakes: %" APR_UINT64_T_FMT
               " full, %" APR_UINT64_T_FMT " resumed; %" APR_UINT64_T_FMT
               " pooled reuses</dt>\n<dt>refusals: %" APR_UINT64_T_FMT
               "; report-only violations: %" APR_UINT64_T_FMT
               "; expiring soon: %d</dt>\n", snap.rows->nelts, full, resumed,
               reuses, refused, reported, n_expiring);
    if (soonest) {
        ap_rprintf(r, "<dt>soonest expiry: %s (%s) at %s</dt>\n",
                   reencrypt_escape_html(r->pool, soonest->backend),
                   reencrypt_escape_html(r->pool, soonest->subject),
                   reencrypt_escape_html(r->pool,
                                         iso(r->pool, soonest->not_after)));
    }
    ap_rputs("</dl>\n", r);
    return OK;
}
