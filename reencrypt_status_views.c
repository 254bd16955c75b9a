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
 * reencrypt_status_views.c: the views of the backend statistics that
 * reencrypt_status.c keeps: the reencrypt-status handler (HTML, ?json
 * against docs/status-schema.json, ?prometheus) and mod_status's
 * server-status section and ?auto keys. They read a snapshot of the
 * slots (reencrypt_status_snapshot) and the configuration's CRL files,
 * and write nothing.
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

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "mod_reencrypt.h"
#include "reencrypt_status.h"
#include "reencrypt_status_store.h"
#include "reencrypt_conn.h"
#include "reencrypt_slots.h"
#include "reencrypt_escape.h"

APLOG_USE_MODULE(reencrypt);

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


static const reencrypt_crl_info_t *crl_at(const reencrypt_crl_watch_t *w,
                                          int j)
{
    return &APR_ARRAY_IDX(w->file->info, j, reencrypt_crl_info_t);
}

/* A CRL whose nextUpdate is within the warning window of a policy that
 * checks against its file (RE00082), or past */
static int crl_expiring(const reencrypt_crl_watch_t *w,
                        const reencrypt_crl_info_t *crl, apr_int64_t now)
{
    return crl->next_update && w->warn_within > 0
           && (apr_int64_t)crl->next_update - now < w->warn_within;
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

static void json_counts(request_rec *r, const status_counts_t *n)
{
    ap_rprintf(r, "{\"handshakes_full\": %" APR_UINT64_T_FMT
               ", \"handshakes_resumed\": %" APR_UINT64_T_FMT
               ", \"reuses\": %" APR_UINT64_T_FMT ", \"refusals\": ",
               n->full, n->resumed, n->reuses);
    json_reasons(r, n->refused);
    ap_rputs(", \"report_violations\": ", r);
    json_reasons(r, n->reported);
    ap_rputs("}", r);
}

static void json_crl_files(request_rec *r, apr_int64_t now)
{
    const apr_array_header_t *files = reencrypt_status_crl_list(r->pool);
    int i, j;

    for (i = 0; i < files->nelts; i++) {
        const reencrypt_crl_watch_t *w = &APR_ARRAY_IDX(files, i,
                                                  reencrypt_crl_watch_t);

        ap_rprintf(r, "%s\n  {\"path\": %s, \"warn_within_seconds\": %"
                   APR_INT64_T_FMT ", \"crls\": [", i ? "," : "",
                   reencrypt_escape_json(r->pool, w->file->path),
                   w->warn_within);
        for (j = 0; j < w->file->info->nelts; j++) {
            const reencrypt_crl_info_t *crl = crl_at(w, j);
            apr_int64_t next = (apr_int64_t)crl->next_update;

            ap_rprintf(r, "%s\n   {\"issuer\": %s, \"last_update\": %s, "
                       "\"last_update_unix\": %s, \"next_update\": %s, "
                       "\"next_update_unix\": %s, \"seconds_left\": %s, "
                       "\"expiring\": %s, \"entries\": %d}", j ? "," : "",
                       reencrypt_escape_json(r->pool, crl->issuer),
                       json_str_or_null(r->pool, iso(r->pool,
                                            (apr_int64_t)crl->last_update)),
                       crl->last_update
                           ? apr_psprintf(r->pool, "%" APR_INT64_T_FMT,
                                          (apr_int64_t)crl->last_update)
                           : "null",
                       json_str_or_null(r->pool, iso(r->pool, next)),
                       next ? apr_psprintf(r->pool, "%" APR_INT64_T_FMT,
                                           next) : "null",
                       next ? apr_psprintf(r->pool, "%" APR_INT64_T_FMT,
                                           next - now) : "null",
                       crl_expiring(w, crl, now) ? "true" : "false",
                       crl->entries);
        }
        ap_rputs("]}", r);
    }
}

/* One backend, without its counters */
static void json_backend(request_rec *r, apr_pool_t *p,
                         const snapshot_t *snap, const status_slot_t *sl,
                         int first)
{
    ap_rprintf(r, "%s\n  {\"backend\": %s, \"sni\": %s, "
               "\"sni_from_client\": %s, \"expiring\": %s"
               ", \"warn_within_seconds\": %" APR_INT64_T_FMT ",",
               first ? "" : ",", reencrypt_escape_json(p, sl->backend),
               json_str_or_null(p, sl->sni),
               sl->client_named ? "true" : "false",
               expiring(sl, snap->now) ? "true" : "false",
               sl->warn_within);
    if (sl->not_after) {
        ap_rprintf(r, "\n   \"certificate\": {\"subject\": %s, "
                   "\"issuer\": %s, \"sans\": %s, \"serial\": %s, "
                   "\"pin\": %s, \"not_before\": %s, \"not_after\": %s, "
                   "\"not_after_unix\": %" APR_INT64_T_FMT ", "
                   "\"seconds_left\": %" APR_INT64_T_FMT ", "
                   "\"chain_length\": %d},",
                   reencrypt_escape_json(p, sl->subject),
                   reencrypt_escape_json(p, sl->issuer),
                   reencrypt_escape_json(p, sl->sans),
                   reencrypt_escape_json(p, sl->serial),
                   reencrypt_escape_json(p, sl->pin),
                   reencrypt_escape_json(p,
                                         iso(p, sl->not_before)),
                   reencrypt_escape_json(p,
                                         iso(p, sl->not_after)),
                   sl->not_after, sl->not_after - snap->now,
                   (int)sl->chain_len);
    }
    else {
        ap_rputs("\n   \"certificate\": null,", r);
    }
    ap_rprintf(r, "\n   \"last_handshake\": {\"time\": %s, "
               "\"time_unix\": %" APR_INT64_T_FMT ", \"result\": %s, "
               "\"protocol\": %s, \"cipher\": %s},",
               json_str_or_null(p, iso(p, sl->last_time)),
               sl->last_time,
               reencrypt_escape_json(p, sl->last_result),
               reencrypt_escape_json(p, sl->protocol),
               reencrypt_escape_json(p, sl->cipher));
    if (sl->full_time) {
        ap_rprintf(r, "\n   \"last_full_handshake\": {\"time\": %s, "
                   "\"time_unix\": %" APR_INT64_T_FMT ", "
                   "\"revocation\": %s, \"staple\": %s, "
                   "\"staple_next_update\": %s, "
                   "\"staple_next_update_unix\": %s},",
                   reencrypt_escape_json(p,
                                         iso(p, sl->full_time)),
                   sl->full_time,
                   reencrypt_escape_json(p, sl->revocation),
                   reencrypt_escape_json(p, sl->staple),
                   json_str_or_null(p, iso(p,
                                        sl->staple_next_update)),
                   sl->staple_next_update
                       ? apr_psprintf(p, "%" APR_INT64_T_FMT,
                                      sl->staple_next_update)
                       : "null");
    }
    else {
        ap_rputs("\n   \"last_full_handshake\": null,", r);
    }
}

static void render_json(request_rec *r, const snapshot_t *snap)
{
    apr_pool_t *rp;     /* each row's strings, cleared at the next */
    int i;

    ap_set_content_type(r, "application/json");
    ap_rprintf(r, "{\"schema\": 1, \"module\": \"mod_reencrypt/%s\", "
               "\"generated\": \"%s\", \"generated_unix\": %" APR_INT64_T_FMT
               ", \"slots\": %u, \"slots_used\": %d, \"slot_reclaims\": %"
               APR_UINT64_T_FMT ", \"slot_overflows\": %" APR_UINT64_T_FMT
               ",\n \"other\": ", REENCRYPT_VERSION, iso(r->pool, snap->now),
               snap->now, snap->capacity, snap->rows->nelts,
               snap->other.reclaims, snap->other.overflows);
    json_counts(r, &snap->other.n);
    ap_rputs(", \"backends\": [", r);
    apr_pool_create(&rp, r->pool);
    for (i = 0; i < snap->rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(snap->rows, i,
                                                 status_slot_t);

        apr_pool_clear(rp);
        json_backend(r, rp, snap, sl, i == 0);
        ap_rputs("\n   \"counters\": ", r);
        json_counts(r, &sl->n);
        ap_rputs("}", r);
    }
    ap_rputs("\n], \"crl_files\": [", r);
    json_crl_files(r, snap->now);
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

/* The labels that name a set of counters, and the counters. */
typedef struct {
    const char *ids;
    const status_counts_t *n;
} prom_counts_t;

/* The backend label of what no slot holds: never a host:port */
#define PROM_OTHER "other"

/* file and issuer of a CRL, or NULL for a CRL of the same file and
 * issuer as a newer one (by lastUpdate, the first of equals): one
 * sample per label set, of the CRL the check uses */
static const char *prom_crl_ids(apr_pool_t *p,
                                const reencrypt_crl_watch_t *w, int j)
{
    const reencrypt_crl_info_t *crl = crl_at(w, j);
    int k;

    for (k = 0; k < w->file->info->nelts; k++) {
        const reencrypt_crl_info_t *o = crl_at(w, k);

        if (k != j && !strcmp(o->issuer, crl->issuer)
            && (o->last_update > crl->last_update
                || (o->last_update == crl->last_update && k < j))) {
            return NULL;
        }
    }
    return apr_psprintf(p, "file=\"%s\",issuer=\"%s\"",
                        reencrypt_escape_prom(p, w->file->path),
                        reencrypt_escape_prom(p, crl->issuer));
}

static void prom_crl_files(request_rec *r)
{
    const apr_array_header_t *files = reencrypt_status_crl_list(r->pool);
    const char *ids;
    int i, j;

    if (!files->nelts) {
        return;
    }
    prom_head(r, "reencrypt_crl_next_update_seconds", "gauge",
              "nextUpdate of a CRL of ReencryptCARevocationFile.");
    for (i = 0; i < files->nelts; i++) {
        const reencrypt_crl_watch_t *w = &APR_ARRAY_IDX(files, i,
                                                  reencrypt_crl_watch_t);

        for (j = 0; j < w->file->info->nelts; j++) {
            if (crl_at(w, j)->next_update
                && (ids = prom_crl_ids(r->pool, w, j)) != NULL) {
                ap_rprintf(r, "reencrypt_crl_next_update_seconds{%s} %"
                           APR_INT64_T_FMT "\n", ids,
                           (apr_int64_t)crl_at(w, j)->next_update);
            }
        }
    }
    prom_head(r, "reencrypt_crl_entries", "gauge",
              "Revoked certificates a CRL of ReencryptCARevocationFile "
              "lists.");
    for (i = 0; i < files->nelts; i++) {
        const reencrypt_crl_watch_t *w = &APR_ARRAY_IDX(files, i,
                                                  reencrypt_crl_watch_t);

        for (j = 0; j < w->file->info->nelts; j++) {
            if ((ids = prom_crl_ids(r->pool, w, j)) != NULL) {
                ap_rprintf(r, "reencrypt_crl_entries{%s} %d\n", ids,
                           crl_at(w, j)->entries);
            }
        }
    }
}

/* One counter by reason, for every set of ids (reported: the Report
 * mode's, else the refusals') */
static void prom_reasons(request_rec *r, const char *name,
                         const apr_array_header_t *ids, int reported)
{
    int i, k;

    for (i = 0; i < ids->nelts; i++) {
        const prom_counts_t *pc = &APR_ARRAY_IDX(ids, i, prom_counts_t);
        const apr_uint64_t *v = reported ? pc->n->reported : pc->n->refused;

        for (k = 1; k < REENCRYPT_REASONS; k++) {
            ap_rprintf(r, "%s{%s,reason=\"%s\"} %" APR_UINT64_T_FMT "\n",
                       name, pc->ids,
                       reencrypt_reason_token((reencrypt_reason_e)k), v[k]);
        }
    }
}

static void prom_backend_info(request_rec *r, const snapshot_t *snap,
                              const char *const *ids)
{
    apr_pool_t *rp;     /* each row's strings, cleared at the next */
    int i;

    prom_head(r, "reencrypt_backend_info", "gauge",
              "Certificate and last handshake of a backend, and what the "
              "revocation check and the OCSP staple of its last full "
              "handshake said, as labels.");
    apr_pool_create(&rp, r->pool);
    for (i = 0; i < snap->rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(snap->rows, i,
                                                 status_slot_t);

        apr_pool_clear(rp);
        ap_rprintf(r, "reencrypt_backend_info{%s,subject=\"%s\","
                   "issuer=\"%s\",serial=\"%s\",pin=\"%s\",protocol=\"%s\","
                   "cipher=\"%s\",result=\"%s\",revocation=\"%s\","
                   "staple=\"%s\"} 1\n",
                   ids[i],
                   reencrypt_escape_prom(rp, sl->subject),
                   reencrypt_escape_prom(rp, sl->issuer),
                   reencrypt_escape_prom(rp, sl->serial),
                   reencrypt_escape_prom(rp, sl->pin),
                   reencrypt_escape_prom(rp, sl->protocol),
                   reencrypt_escape_prom(rp, sl->cipher),
                   reencrypt_escape_prom(rp, sl->last_result),
                   reencrypt_escape_prom(rp, sl->revocation),
                   reencrypt_escape_prom(rp, sl->staple));
    }
    apr_pool_destroy(rp);
}

/* The per-backend gauges of one value each, in the order they are
 * written: a field of the slot (PROM_EXPIRING: computed), given for
 * the slots whose field cond is not 0. */
#define PROM_EXPIRING ((apr_size_t)-1)
#define SLOT_FIELD(f) offsetof(status_slot_t, f)
static const struct {
    const char *name, *type, *help;
    apr_size_t value, cond;
} prom_gauges[] = {
    { "reencrypt_backend_cert_not_after_timestamp_seconds", "gauge",
      "notAfter of the certificate the backend presented.",
      SLOT_FIELD(not_after), SLOT_FIELD(not_after) },
    { "reencrypt_backend_cert_not_before_timestamp_seconds", "gauge",
      "notBefore of the certificate the backend presented.",
      SLOT_FIELD(not_before), SLOT_FIELD(not_after) },
    { "reencrypt_backend_cert_expiring", "gauge",
      "1 when the certificate expires within ReencryptWarnExpiringWithin.",
      PROM_EXPIRING, SLOT_FIELD(not_after) },
    { "reencrypt_backend_last_handshake_timestamp_seconds", "gauge",
      "Time of the last handshake with the backend.",
      SLOT_FIELD(last_time), SLOT_FIELD(last_time) },
    { "reencrypt_backend_staple_next_update_seconds", "gauge",
      "nextUpdate of the OCSP staple of the backend's last full handshake.",
      SLOT_FIELD(staple_next_update), SLOT_FIELD(staple_next_update) },
};

static apr_int64_t slot_i64(const status_slot_t *sl, apr_size_t off)
{
    apr_int64_t v;

    memcpy(&v, (const char *)sl + off, sizeof(v));
    return v;
}

static void prom_backend_gauges(request_rec *r, const snapshot_t *snap,
                                const char *const *ids)
{
    apr_size_t g;
    int i;

    for (g = 0; g < sizeof(prom_gauges) / sizeof(prom_gauges[0]); g++) {
        prom_head(r, prom_gauges[g].name, prom_gauges[g].type,
                  prom_gauges[g].help);
        for (i = 0; i < snap->rows->nelts; i++) {
            const status_slot_t *sl = &APR_ARRAY_IDX(snap->rows, i,
                                                     status_slot_t);

            if (!slot_i64(sl, prom_gauges[g].cond)) {
                continue;
            }
            if (prom_gauges[g].value == PROM_EXPIRING) {
                ap_rprintf(r, "%s{%s} %d\n", prom_gauges[g].name,
                           ids[i], expiring(sl, snap->now));
            }
            else {
                ap_rprintf(r, "%s{%s} %" APR_INT64_T_FMT "\n",
                           prom_gauges[g].name, ids[i],
                           slot_i64(sl, prom_gauges[g].value));
            }
        }
    }
}

/* The counters of every slot, and of what no slot holds */
static void prom_counters(request_rec *r, const snapshot_t *snap,
                          const char *const *row_ids)
{
    apr_array_header_t *ids;
    int i;

    ids = apr_array_make(r->pool, snap->rows->nelts + 1,
                         sizeof(prom_counts_t));
    for (i = 0; i < snap->rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(snap->rows, i,
                                                 status_slot_t);
        prom_counts_t *pc = apr_array_push(ids);

        pc->ids = row_ids[i];
        pc->n = &sl->n;
    }
    if (snap->on) {
        prom_counts_t *pc = apr_array_push(ids);

        pc->ids = "backend=\"" PROM_OTHER "\",sni=\"\"";
        pc->n = &snap->other.n;
    }
    prom_head(r, "reencrypt_handshakes_total", "counter",
              "TLS handshakes with the backend that passed the policy.");
    for (i = 0; i < ids->nelts; i++) {
        const prom_counts_t *pc = &APR_ARRAY_IDX(ids, i, prom_counts_t);

        ap_rprintf(r, "reencrypt_handshakes_total{%s,kind=\"full\"} %"
                   APR_UINT64_T_FMT "\n", pc->ids, pc->n->full);
        ap_rprintf(r, "reencrypt_handshakes_total{%s,kind=\"resumed\"} %"
                   APR_UINT64_T_FMT "\n", pc->ids, pc->n->resumed);
    }
    prom_head(r, "reencrypt_connection_reuses_total", "counter",
              "Requests sent over an already verified pooled connection.");
    for (i = 0; i < ids->nelts; i++) {
        const prom_counts_t *pc = &APR_ARRAY_IDX(ids, i, prom_counts_t);

        ap_rprintf(r, "reencrypt_connection_reuses_total{%s} %"
                   APR_UINT64_T_FMT "\n", pc->ids, pc->n->reuses);
    }
    prom_head(r, "reencrypt_refusals_total", "counter",
              "Backend handshakes refused by the policy, by reason.");
    prom_reasons(r, "reencrypt_refusals_total", ids, 0);
    prom_head(r, "reencrypt_report_violations_total", "counter",
              "Violations let through by ReencryptMode Report, by reason.");
    prom_reasons(r, "reencrypt_report_violations_total", ids, 1);
}

static void prom_slots(request_rec *r, const snapshot_t *snap)
{
    prom_head(r, "reencrypt_status_slots", "gauge",
              "Statistics slots (ReencryptStatusBackends) and those in use.");
    ap_rprintf(r, "reencrypt_status_slots{state=\"total\"} %u\n",
               snap->capacity);
    ap_rprintf(r, "reencrypt_status_slots{state=\"used\"} %d\n",
               snap->rows->nelts);
    if (snap->on) {
        prom_head(r, "reencrypt_status_slot_events_total", "counter",
                  "Slots given to another backend and SNI (reclaimed), and "
                  "connections that passed and found no slot (overflowed).");
        ap_rprintf(r, "reencrypt_status_slot_events_total"
                   "{event=\"reclaimed\"} %" APR_UINT64_T_FMT "\n",
                   snap->other.reclaims);
        ap_rprintf(r, "reencrypt_status_slot_events_total"
                   "{event=\"overflowed\"} %" APR_UINT64_T_FMT "\n",
                   snap->other.overflows);
    }
}

static void render_prometheus(request_rec *r, const snapshot_t *snap)
{
    /* the labels that name each backend, made once for all the lines
     * that name it */
    const char **ids = apr_palloc(r->pool, sizeof(*ids)
                                  * (apr_size_t)(snap->rows->nelts + 1));
    int i;

    for (i = 0; i < snap->rows->nelts; i++) {
        ids[i] = prom_ids(r->pool, &APR_ARRAY_IDX(snap->rows, i,
                                                  status_slot_t));
    }
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    prom_backend_info(r, snap, ids);
    prom_backend_gauges(r, snap, ids);
    prom_counters(r, snap, ids);
    prom_slots(r, snap);
    prom_crl_files(r);
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

static void html_counts(request_rec *r, const status_counts_t *n)
{
    ap_rprintf(r, "<td class=\"num\">%" APR_UINT64_T_FMT " / %"
               APR_UINT64_T_FMT "</td><td class=\"num\">%"
               APR_UINT64_T_FMT "</td><td>", n->full, n->resumed, n->reuses);
    html_reasons(r, n->refused);
    ap_rputs("</td><td>", r);
    html_reasons(r, n->reported);
    ap_rputs("</td>", r);
}

/* The colour of a revocation or staple token: what passed is ok, what
 * was not checked plain, what Verify lets pass warn, the rest bad */
static const char *token_class(const char *token, int staple)
{
    if (!strcmp(token, "good")) {
        return "ok";
    }
    if (!strcmp(token, "not-checked") || !strcmp(token, "resumed")) {
        return "";
    }
    if (!strcmp(token, "no-crl")
        || (staple && (!strcmp(token, "absent")
                       || !strcmp(token, "unknown")))) {
        return "warn";
    }
    return "bad";
}

/* What the revocation check and the staple of the last full handshake
 * said: the last lines of a backend's "Last handshake" cell */
static void html_revocation(request_rec *r, apr_pool_t *p,
                            const status_slot_t *sl)
{
    if (!sl->full_time) {
        ap_rputs("<br>(no full handshake yet)", r);
        return;
    }
    ap_rprintf(r, "<br>CRL <span class=\"tag %s\">%s</span><br>"
               "staple <span class=\"tag %s\">%s</span>",
               token_class(sl->revocation, 0),
               reencrypt_escape_html(p, sl->revocation),
               token_class(sl->staple, 1),
               reencrypt_escape_html(p, sl->staple));
    if (sl->staple_next_update) {
        ap_rprintf(r, "<br>staple until %s",
                   reencrypt_escape_html(p, iso(p,
                                         sl->staple_next_update)));
    }
}

/* The CRL files of the configuration, one row per CRL */
static void html_crl_files(request_rec *r, apr_int64_t now)
{
    const apr_array_header_t *files = reencrypt_status_crl_list(r->pool);
    int i, j;

    if (!files->nelts) {
        return;
    }
    ap_rputs("<h2>CRL files (ReencryptCARevocationFile)</h2>\n<table>\n"
             "<tr><th>File</th><th>Issuer</th><th>lastUpdate</th>"
             "<th>nextUpdate</th><th>Entries</th></tr>\n", r);
    for (i = 0; i < files->nelts; i++) {
        const reencrypt_crl_watch_t *w = &APR_ARRAY_IDX(files, i,
                                                  reencrypt_crl_watch_t);

        for (j = 0; j < w->file->info->nelts; j++) {
            const reencrypt_crl_info_t *crl = crl_at(w, j);
            apr_int64_t next = (apr_int64_t)crl->next_update;
            const char *cls = (next && next <= now) ? "bad"
                              : (crl_expiring(w, crl, now) ? "warn" : "ok");

            ap_rprintf(r, "<tr class=\"%s\"><td>%s</td><td>%s</td>"
                       "<td class=\"when\">%s</td><td class=\"when\">",
                       cls, reencrypt_escape_html(r->pool, w->file->path),
                       reencrypt_escape_html(r->pool, crl->issuer),
                       reencrypt_escape_html(r->pool, iso(r->pool,
                                             (apr_int64_t)crl->last_update)));
            if (next) {
                ap_rprintf(r, "%s<br><span class=\"tag %s\">%s</span>",
                           reencrypt_escape_html(r->pool,
                                                 iso(r->pool, next)), cls,
                           reencrypt_escape_html(r->pool,
                                                 left_str(r->pool,
                                                          next - now)));
            }
            else {
                ap_rputs("(none)", r);
            }
            ap_rprintf(r, "</td><td class=\"num\">%d</td></tr>\n",
                       crl->entries);
        }
    }
    ap_rputs("</table>\n", r);
}

static int any_count(const status_counts_t *n)
{
    return n->full || n->resumed || n->reuses || sum(n->refused)
           || sum(n->reported);
}

/* The page's head, styles and summary line */
static void html_head(request_rec *r, const snapshot_t *snap)
{
    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rputs(DOCTYPE_HTML_4_01
             "<html><head><meta charset=\"utf-8\">\n"
             "<title>mod_reencrypt status</title>\n<style>\n"
             "body{font-family:sans-serif;margin:1.5em;color:#222}\n"
             "h1{font-size:1.4em;margin-bottom:.2em}\n"
             "h2{font-size:1.1em;margin-top:1.5em}\n"
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
               "tracked &middot; slots reclaimed: %" APR_UINT64_T_FMT
               ", overflowed: %" APR_UINT64_T_FMT " &middot; soonest expiry "
               "first &middot; <a href=\"?json\">JSON</a> &middot; "
               "<a href=\"?prometheus\">Prometheus</a></div>\n",
               reencrypt_escape_html(r->pool, iso(r->pool, snap->now)),
               snap->rows->nelts, snap->capacity, snap->other.reclaims,
               snap->other.overflows);
}

/* One backend's row */
static void html_row(request_rec *r, apr_pool_t *p, const snapshot_t *snap,
                     const status_slot_t *sl)
{
    int bad = sum(sl->n.refused) > 0
              || !strncmp(sl->last_result, "refused", 7);
    int warn = expiring(sl, snap->now) || sum(sl->n.reported) > 0
               || !strncmp(sl->last_result, "report", 6);
    const char *cls = bad ? "bad" : (warn ? "warn" : "ok");

    ap_rprintf(r, "<tr class=\"%s\"><td><b>%s</b><br>"
               "<span class=\"small\">SNI %s%s</span></td>",
               cls, reencrypt_escape_html(p, sl->backend),
               *sl->sni ? reencrypt_escape_html(p, sl->sni)
                        : "(none)",
               sl->client_named ? " (client's Host)" : "");
    if (sl->not_after) {
        ap_rprintf(r, "<td>%s<br><span class=\"small\">issuer %s<br>"
                   "%s<br>serial %s &middot; chain %d<br>%s</span></td>",
                   reencrypt_escape_html(p, sl->subject),
                   reencrypt_escape_html(p, sl->issuer),
                   reencrypt_escape_html(p, sl->sans),
                   reencrypt_escape_html(p, sl->serial),
                   (int)sl->chain_len,
                   reencrypt_escape_html(p, sl->pin));
        ap_rprintf(r, "<td class=\"when\">%s<br>"
                   "<span class=\"tag %s\">%s</span></td>",
                   reencrypt_escape_html(p,
                                         iso(p, sl->not_after)),
                   expiring(sl, snap->now)
                       || sl->not_after <= snap->now ? "warn" : "ok",
                   reencrypt_escape_html(p, left_str(p,
                                         sl->not_after - snap->now)));
    }
    else {
        ap_rputs("<td>(none seen)</td><td></td>", r);
    }
    ap_rprintf(r, "<td><span class=\"tag %s\">%s</span><br>"
               "<span class=\"small\">%s<br>%s %s",
               !strncmp(sl->last_result, "ok", 2) ? "ok"
               : (!strncmp(sl->last_result, "report", 6) ? "warn"
                                                         : "bad"),
               reencrypt_escape_html(p, sl->last_result),
               reencrypt_escape_html(p,
                                     iso(p, sl->last_time)),
               reencrypt_escape_html(p, sl->protocol),
               reencrypt_escape_html(p, sl->cipher));
    html_revocation(r, p, sl);
    ap_rputs("</span></td>", r);
    html_counts(r, &sl->n);
    ap_rputs("</tr>\n", r);
}

static void render_html(request_rec *r, const snapshot_t *snap)
{
    const status_counts_t *other = &snap->other.n;
    apr_pool_t *rp;     /* each row's strings, cleared at the next */
    int i;

    html_head(r, snap);
    if (!snap->on) {
        ap_rputs("<p>Backend statistics are off (mod_slotmem_shm not loaded, "
                 "ReencryptStatusBackends 0, or no ReencryptEngine On).</p>\n",
                 r);
        html_crl_files(r, snap->now);
        ap_rputs("</body></html>\n", r);
        return;
    }
    ap_rputs("<table>\n<tr><th>Backend / SNI</th><th>Certificate</th>"
             "<th>Expires</th><th>Last handshake</th>"
             "<th>Handshakes<br>full / resumed</th><th>Reuses</th>"
             "<th>Refusals</th><th>Report-only</th></tr>\n", r);
    apr_pool_create(&rp, r->pool);
    for (i = 0; i < snap->rows->nelts; i++) {
        apr_pool_clear(rp);
        html_row(r, rp, snap, &APR_ARRAY_IDX(snap->rows, i,
                                             status_slot_t));
    }
    if (any_count(other)) {
        /* what no slot holds: refusals of backends and SNIs that never
         * passed, and what found the slots full */
        ap_rprintf(r, "<tr class=\"%s\"><td><b>other</b><br><span "
                   "class=\"small\">backends and SNIs without a slot</span>"
                   "</td><td>(not kept)</td><td></td><td></td>",
                   sum(other->refused) ? "bad"
                   : (sum(other->reported) ? "warn" : "ok"));
        html_counts(r, other);
        ap_rputs("</tr>\n", r);
    }
    ap_rputs("</table>\n", r);
    html_crl_files(r, snap->now);
    ap_rputs("</body></html>\n", r);
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
    reencrypt_status_snapshot(r->pool, &snap);
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

/* The ?auto names of the revocation and staple tokens counted in
 * server-status, in the order of their enums (from "good" on: what was
 * not checked is not counted) */
static const char *const auto_revocation[] = {
    "Good", "NoCRL", "Revoked", "CRLExpired", "CRLMissing", "CRLInvalid"
};
static const char *const auto_staple[] = {
    "Good", "Revoked", "Unknown", "Absent", "Expired", "Invalid"
};
#define N_AUTO_REV    (int)(sizeof(auto_revocation) / sizeof(char *))
#define N_AUTO_STAPLE (int)(sizeof(auto_staple) / sizeof(char *))

/* How many backends' last full handshake gave each revocation and each
 * staple token; the backend whose staple's nextUpdate comes first. */
typedef struct {
    int revocation[N_AUTO_REV];
    int staple[N_AUTO_STAPLE];
    int recorded;                   /* backends with a full handshake */
    const status_slot_t *soonest_staple;
} token_counts_t;

static void count_tokens(const snapshot_t *snap, token_counts_t *tc)
{
    int i, k;

    memset(tc, 0, sizeof(*tc));
    for (i = 0; i < snap->rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(snap->rows, i,
                                                 status_slot_t);

        if (!sl->full_time) {
            continue;
        }
        tc->recorded++;
        for (k = 0; k < N_AUTO_REV; k++) {
            if (!strcmp(sl->revocation, reencrypt_revocation_token(
                            (reencrypt_revocation_state_e)
                            (REENCRYPT_REV_GOOD + k)))) {
                tc->revocation[k]++;
            }
        }
        for (k = 0; k < N_AUTO_STAPLE; k++) {
            if (!strcmp(sl->staple, reencrypt_staple_token(
                            (reencrypt_staple_state_e)
                            (REENCRYPT_STAPLE_GOOD + k)))) {
                tc->staple[k]++;
            }
        }
        if (sl->staple_next_update
            && (!tc->soonest_staple || sl->staple_next_update
                                       < tc->soonest_staple->staple_next_update)) {
            tc->soonest_staple = sl;
        }
    }
}

/* "good 2, revoked 1": how many backends' last full handshake gave
 * each revocation (or staple) token, in the order of the enum; "none
 * recorded" when no backend has had one */
static const char *token_list(apr_pool_t *p, const snapshot_t *snap,
                              int staple)
{
    int last = staple ? REENCRYPT_STAPLE_RESUMED : REENCRYPT_REV_CRL_INVALID;
    const char *out = NULL;
    int i, k;

    for (k = 0; k <= last; k++) {
        const char *t = staple
            ? reencrypt_staple_token((reencrypt_staple_state_e)k)
            : reencrypt_revocation_token((reencrypt_revocation_state_e)k);
        int n = 0;

        for (i = 0; i < snap->rows->nelts; i++) {
            const status_slot_t *sl = &APR_ARRAY_IDX(snap->rows, i,
                                                     status_slot_t);

            n += sl->full_time
                 && !strcmp(staple ? sl->staple : sl->revocation, t);
        }
        if (n) {
            out = apr_psprintf(p, "%s%s%s %d", out ? out : "",
                               out ? ", " : "", t, n);
        }
    }
    return out ? out : "none recorded";
}

/* mod_status: a section of server-status, and lines of ?auto */
/* The totals of mod_status's section: every slot, and what no slot
 * holds */
typedef struct {
    apr_uint64_t full, resumed, reuses, refused, reported;
    int expiring;
    const status_slot_t *soonest;   /* soonest notAfter, or NULL */
    token_counts_t tc;
} totals_t;

static void count_totals(const snapshot_t *snap, totals_t *t)
{
    int i;

    memset(t, 0, sizeof(*t));
    t->full = snap->other.n.full;
    t->resumed = snap->other.n.resumed;
    t->reuses = snap->other.n.reuses;
    t->refused = sum(snap->other.n.refused);
    t->reported = sum(snap->other.n.reported);
    for (i = 0; i < snap->rows->nelts; i++) {
        const status_slot_t *sl = &APR_ARRAY_IDX(snap->rows, i,
                                                 status_slot_t);

        t->full += sl->n.full;
        t->resumed += sl->n.resumed;
        t->reuses += sl->n.reuses;
        t->refused += sum(sl->n.refused);
        t->reported += sum(sl->n.reported);
        t->expiring += expiring(sl, snap->now);
        if (sl->not_after && !t->soonest) {
            t->soonest = sl;        /* rows are sorted by expiry */
        }
    }
    count_tokens(snap, &t->tc);
}

/* server-status?auto: one key a line */
static void status_auto(request_rec *r, const snapshot_t *snap,
                        const totals_t *t)
{
    int k;

    ap_rprintf(r, "ReencryptBackends: %d\n"
               "ReencryptHandshakesFull: %" APR_UINT64_T_FMT "\n"
               "ReencryptHandshakesResumed: %" APR_UINT64_T_FMT "\n"
               "ReencryptReuses: %" APR_UINT64_T_FMT "\n"
               "ReencryptRefusals: %" APR_UINT64_T_FMT "\n"
               "ReencryptReportViolations: %" APR_UINT64_T_FMT "\n"
               "ReencryptExpiringBackends: %d\n"
               "ReencryptSlotReclaims: %" APR_UINT64_T_FMT "\n"
               "ReencryptSlotOverflows: %" APR_UINT64_T_FMT "\n",
               snap->rows->nelts, t->full, t->resumed, t->reuses, t->refused,
               t->reported, t->expiring, snap->other.reclaims,
               snap->other.overflows);
    if (t->soonest) {
        ap_rprintf(r, "ReencryptSoonestExpirySeconds: %" APR_INT64_T_FMT
                   "\nReencryptSoonestExpiryBackend: %s\n",
                   t->soonest->not_after - snap->now, t->soonest->backend);
    }
    for (k = 0; k < N_AUTO_REV; k++) {
        ap_rprintf(r, "ReencryptRevocation%s: %d\n", auto_revocation[k],
                   t->tc.revocation[k]);
    }
    for (k = 0; k < N_AUTO_STAPLE; k++) {
        ap_rprintf(r, "ReencryptStaple%s: %d\n", auto_staple[k],
                   t->tc.staple[k]);
    }
    if (t->tc.soonest_staple) {
        ap_rprintf(r, "ReencryptSoonestStapleNextUpdateSeconds: %"
                   APR_INT64_T_FMT "\nReencryptSoonestStapleBackend: %s\n",
                   t->tc.soonest_staple->staple_next_update - snap->now,
                   t->tc.soonest_staple->backend);
    }
}

/* server-status: the module's section of the page */
static void status_html(request_rec *r, const snapshot_t *snap,
                        const totals_t *t)
{
    const status_slot_t *soonest = t->soonest;

    ap_rputs("<hr>\n<h2>mod_reencrypt</h2>\n<dl>\n", r);
    ap_rprintf(r, "<dt>%d backends tracked; handshakes: %" APR_UINT64_T_FMT
               " full, %" APR_UINT64_T_FMT " resumed; %" APR_UINT64_T_FMT
               " pooled reuses</dt>\n<dt>refusals: %" APR_UINT64_T_FMT
               "; report-only violations: %" APR_UINT64_T_FMT
               "; expiring soon: %d</dt>\n<dt>statistics slots: %d of %u "
               "used; %" APR_UINT64_T_FMT " reclaimed; %" APR_UINT64_T_FMT
               " overflowed</dt>\n", snap->rows->nelts, t->full, t->resumed,
               t->reuses, t->refused, t->reported, t->expiring,
               snap->rows->nelts, snap->capacity, snap->other.reclaims,
               snap->other.overflows);
    if (soonest) {
        ap_rprintf(r, "<dt>soonest expiry: %s (%s) at %s</dt>\n",
                   reencrypt_escape_html(r->pool, soonest->backend),
                   reencrypt_escape_html(r->pool, soonest->subject),
                   reencrypt_escape_html(r->pool,
                                         iso(r->pool, soonest->not_after)));
    }
    ap_rprintf(r, "<dt>at the last full handshake: revocation %s; OCSP "
               "staple %s</dt>\n", token_list(r->pool, snap, 0),
               token_list(r->pool, snap, 1));
    if (t->tc.soonest_staple) {
        ap_rprintf(r, "<dt>soonest staple nextUpdate: %s at %s</dt>\n",
                   reencrypt_escape_html(r->pool,
                                         t->tc.soonest_staple->backend),
                   reencrypt_escape_html(r->pool, iso(r->pool,
                                     t->tc.soonest_staple->staple_next_update)));
    }
    ap_rputs("</dl>\n", r);
}

int reencrypt_status_hook(request_rec *r, int flags)
{
    snapshot_t snap;
    totals_t t;

    reencrypt_status_snapshot(r->pool, &snap);
    if (!snap.on) {
        return OK;
    }
    count_totals(&snap, &t);
    if (flags & AP_STATUS_SHORT) {
        status_auto(r, &snap, &t);
    }
    else {
        status_html(r, &snap, &t);
    }
    return OK;
}
