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
 * reencrypt_notes.c: "has this been said already?" shared by all child
 * processes, through httpd's socache provider shmcb and a global mutex
 * (reencrypt_socache.c). Used so that an expiry warning (RE00019, a
 * backend certificate; RE00082, a CRL) is logged once per certificate
 * or CRL and day by the whole server, not once per request or child.
 */

#include "apr_strings.h"

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"

#include "mod_reencrypt.h"
#include "reencrypt_notes.h"
#include "reencrypt_socache.h"

APLOG_USE_MODULE(reencrypt);

/* The shmcb argument, in the form mod_socache_shmcb documents:
 * "/path/to/datafile(size)". shmcb uses anonymous shared memory where
 * the system has it and the file only where it has not; the file is
 * then kept in DefaultRuntimeDir, under the name shmcb itself would
 * give the namespace "mod_reencrypt-notes". 64 KiB hold some hundreds
 * of notes (key of 72 bytes, value of 1). */
#define NOTES_CACHE_FILE "socache-shmcb-mod_reencrypt-notes.cache"
#define NOTES_CACHE_SIZE 65536

/* Set by the startup checks: some policy has a warning window */
static int notes_wanted;

static reencrypt_socache_t notes = { "reencrypt-notes", NULL, NULL, NULL };

void reencrypt_notes_want(int wanted)
{
    notes_wanted = wanted;
}

int reencrypt_notes_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                               apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    return reencrypt_socache_register(pconf, notes.mutex_type);
}

int reencrypt_notes_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp, server_rec *s)
{
    struct ap_socache_hints hints;
    const char *err, *file;
    apr_status_t rv = APR_SUCCESS;

    (void)plog;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG
        || !notes_wanted) {
        return OK;
    }
    memset(&hints, 0, sizeof(hints));
    hints.avg_id_len = 72;
    hints.avg_obj_size = 1;
    hints.expiry_interval = 3600;
    file = ap_runtime_dir_relative(ptemp, NOTES_CACHE_FILE);
    err = file ? reencrypt_socache_open(&notes, "shmcb",
                                        apr_psprintf(ptemp, "%s(%d)", file,
                                                     NOTES_CACHE_SIZE),
                                        "mod_reencrypt-notes", &hints, s,
                                        pconf, ptemp, &rv)
               : "DefaultRuntimeDir is not a valid path";
    if (err && rv == APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, RELOGNO(00015)
                     "cannot create the shared notes cache: %s", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (err) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, RELOGNO(00016)
                     "cannot initialise the shared notes cache: %s", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

void reencrypt_notes_child_init(apr_pool_t *p, server_rec *s)
{
    apr_status_t rv = reencrypt_socache_child_init(&notes, p);

    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, RELOGNO(00017)
                     "cannot attach to the notes mutex: expiry warnings are "
                     "not deduplicated in this process");
        notes.cache = NULL;
    }
}

int reencrypt_notes_first(server_rec *s, const char *key,
                          apr_interval_time_t ttl, apr_pool_t *p)
{
    unsigned char one = 1, buf[1];
    unsigned int len = sizeof(buf);
    int first = 1;
    apr_status_t rv;

    if (!notes.cache || !reencrypt_socache_lock(&notes)) {
        return 1;               /* no dedup: say it */
    }
    rv = notes.provider->retrieve(notes.cache, s, (const unsigned char *)key,
                                  (unsigned int)strlen(key), buf, &len, p);
    if (rv == APR_SUCCESS) {
        first = 0;
    }
    else {
        notes.provider->store(notes.cache, s, (const unsigned char *)key,
                              (unsigned int)strlen(key),
                              apr_time_now() + ttl, &one, 1, p);
    }
    reencrypt_socache_unlock(&notes);
    return first;
}

const char *reencrypt_notes_crl_key(apr_pool_t *p,
                                    const reencrypt_crl_info_t *crl)
{
    return apr_pstrcat(p, "crl:", reencrypt_base64_encode(p, crl->digest,
                                                          sizeof(crl->digest)),
                       NULL);
}

void reencrypt_notes_crl_warn(server_rec *s, const char *path,
                              const reencrypt_crl_info_t *crl,
                              apr_int64_t window, apr_time_t now,
                              apr_pool_t *p)
{
    apr_int64_t left = (apr_int64_t)crl->next_update
                       - (apr_int64_t)apr_time_sec(now);
    int past = left <= 0;
    apr_int64_t abs_left = past ? -left : left;

    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, RELOGNO(00082)
                 "CRL of %s in %s %s: nextUpdate=%s, %s%" APR_INT64_T_FMT
                 "d %" APR_INT64_T_FMT "h%s (ReencryptWarnExpiringWithin %"
                 APR_INT64_T_FMT "s): put a newer CRL of that issuer in "
                 "the file and restart gracefully", crl->issuer, path,
                 past ? "is past its nextUpdate" : "expires soon",
                 reencrypt_time_str(p, crl->next_update), past ? "" : "in ",
                 abs_left / 86400, (abs_left % 86400) / 3600,
                 past ? " ago" : "", window);
}
