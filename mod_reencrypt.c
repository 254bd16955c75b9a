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
 * mod_reencrypt.c: module record, directive table and hook registration.
 * The work is done in reencrypt_config.c (configuration),
 * reencrypt_proxy.c (mod_proxy side), reencrypt_ssl.c (mod_ssl side),
 * reencrypt_session.c (session resumption), reencrypt_status.c
 * (statistics and their views), reencrypt_cache.c (once-a-day warnings),
 * and the pure units reencrypt_policy.c, reencrypt_verify.c and
 * reencrypt_seal.c.
 */

#include <dlfcn.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_ssl.h"
#include "ap_provider.h"
#include "mod_status.h"

#include <openssl/opensslv.h>

#include "mod_reencrypt.h"
#include "reencrypt_config.h"
#include "reencrypt_conn.h"
#include "reencrypt_proxy.h"
#include "reencrypt_ssl.h"
#include "reencrypt_session.h"
#include "reencrypt_status.h"
#include "reencrypt_notes.h"
#include "reencrypt_dump.h"

typedef void scheme_hook_register_fn(proxy_HOOK_scheme_handler_t *pf,
                                     const char * const *pre,
                                     const char * const *succ, int order);

/* mod_proxy's scheme_handler hook is a plain (not optional) hook, so
 * registering it needs proxy_hook_scheme_handler(), a symbol of
 * mod_proxy.so. Linking against it would make LoadModule order matter
 * (an "undefined symbol" at load time). It is looked up here instead,
 * once every LoadModule has run; httpd sorts the hooks again after
 * pre_config (server/main.c), so the order constraints still apply. */
static int reencrypt_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp)
{
    /* Run before the handlers of the schemes that speak TLS to a backend:
     * mod_proxy_http registers FIRST (mod_proxy_http.c) and a hook
     * without the successor constraint would never be called. */
    static const char * const succ[] = { "mod_proxy_http.c",
                                         "mod_proxy_wstunnel.c",
                                         "mod_proxy_http2.c", NULL };
    scheme_hook_register_fn *reg;

    if (!ap_find_linked_module("mod_proxy.c")) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                     RELOGNO(00002) "mod_reencrypt requires mod_proxy: add "
                     "'LoadModule proxy_module modules/mod_proxy.so' (on "
                     "Debian: a2enmod proxy_http)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!ap_find_linked_module("mod_ssl.c")) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                     RELOGNO(00003) "mod_reencrypt requires mod_ssl: add "
                     "'LoadModule ssl_module modules/mod_ssl.so' (on Debian: "
                     "a2enmod ssl)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    *(void **)(&reg) = dlsym(RTLD_DEFAULT, "proxy_hook_scheme_handler");
    if (!reg) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                     RELOGNO(00006) "mod_proxy is loaded but its "
                     "proxy_hook_scheme_handler cannot be found (%s)",
                     dlerror());
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    reg(reencrypt_scheme_handler, NULL, succ, APR_HOOK_FIRST);
    if (!reencrypt_proxy_find_api()) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_WARNING, 0, NULL,
                     RELOGNO(00090) "mod_proxy lacks a function the early "
                     "handshake of balancer members needs (httpd 2.4.47 or "
                     "later has them all): a member refused by a policy "
                     "answers the request with 502 instead of passing it "
                     "to another member");
    }
    if (reencrypt_notes_pre_config(pconf, plog, ptemp) != APR_SUCCESS
        || reencrypt_session_pre_config(pconf, plog, ptemp) != APR_SUCCESS
        || reencrypt_status_pre_config(pconf, plog, ptemp) != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return reencrypt_conn_init(pconf, plog, ptemp);
}

static int reencrypt_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                 apr_pool_t *ptemp, server_rec *s)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, RELOGNO(00001)
                 "mod_reencrypt/%s (%s) ready", REENCRYPT_VERSION,
                 OPENSSL_VERSION_TEXT);
    return OK;
}

static void reencrypt_register_hooks(apr_pool_t *p)
{
    /* ssl_bind_outgoing is RUN_FIRST and mod_ssl answers OK: an observer
     * ordered after mod_ssl would never be called (server/ssl.c). */
    static const char * const before_ssl[] = { "mod_ssl.c", NULL };
    static const char * const after_slotmem[] = { "mod_slotmem_shm.c",
                                                  NULL };

    (void)p;
    ap_hook_pre_config(reencrypt_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(reencrypt_check_config, NULL, NULL,
                         APR_HOOK_MIDDLE);
    ap_hook_post_config(reencrypt_post_config, NULL, NULL, APR_HOOK_LAST);
    ap_hook_post_config(reencrypt_config_warnings, NULL, NULL,
                        APR_HOOK_MIDDLE);
    ap_hook_post_config(reencrypt_config_shared_files, NULL, NULL,
                        APR_HOOK_MIDDLE);
    ap_hook_post_config(reencrypt_notes_post_config, NULL, NULL,
                        APR_HOOK_MIDDLE);
    /* after the notes cache: marks the CRL warnings it says as said */
    ap_hook_post_config(reencrypt_crl_post_config, NULL, NULL,
                        APR_HOOK_LAST);
    ap_hook_child_init(reencrypt_notes_child_init, NULL, NULL,
                       APR_HOOK_MIDDLE);
    /* the session cache must exist before mod_ssl's post_config runs
     * ssl init_server on the proxy contexts */
    ap_hook_post_config(reencrypt_session_post_config, NULL, before_ssl,
                        APR_HOOK_MIDDLE);
    ap_hook_child_init(reencrypt_session_child_init, NULL, NULL,
                       APR_HOOK_MIDDLE);
    /* statistics in mod_slotmem_shm's shared memory: created before its
     * post_config registers the pool cleanup that persists and removes
     * them, and closed to counting by a cleanup registered after it,
     * which therefore runs before it (reencrypt_status.c) */
    ap_hook_post_config(reencrypt_status_post_config, NULL, NULL,
                        APR_HOOK_MIDDLE);
    ap_hook_post_config(reencrypt_status_post_config_close, after_slotmem,
                        NULL, APR_HOOK_REALLY_LAST);
    ap_hook_child_init(reencrypt_status_child_init, NULL, NULL,
                       APR_HOOK_MIDDLE);
    ap_hook_handler(reencrypt_status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    /* apachectl -t -D DUMP_REENCRYPT / -D REENCRYPT_PROBE */
    ap_hook_test_config(reencrypt_dump_test_config, NULL, NULL,
                        APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, reencrypt_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
    ap_hook_ssl_bind_outgoing(reencrypt_bind_outgoing, NULL, before_ssl,
                              APR_HOOK_FIRST);

    /* mod_ssl's and mod_proxy's optional hooks: looked up by name when
     * they run, so they work whatever the LoadModule order. */
    APR_OPTIONAL_HOOK(ssl, init_server, reencrypt_session_init_server,
                      NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ssl, pre_handshake, reencrypt_pre_handshake,
                      NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ssl, proxy_post_handshake,
                      reencrypt_proxy_post_handshake, NULL, NULL,
                      APR_HOOK_FIRST);
    APR_OPTIONAL_HOOK(proxy, request_status, reencrypt_request_status,
                      NULL, NULL, APR_HOOK_MIDDLE);

    reencrypt_proxy_register_filter();
    reencrypt_ssl_register_filter();
}

AP_DECLARE_MODULE(reencrypt) = {
    STANDARD20_MODULE_STUFF,
    reencrypt_create_dir_conf,  /* per-directory config creator */
    reencrypt_merge_dir_conf,   /* per-directory config merger */
    reencrypt_create_srv_conf,  /* server config creator */
    NULL,                       /* server config merger */
    reencrypt_cmds,             /* directive table */
    reencrypt_register_hooks,   /* hook registration */
#if defined(AP_MODULE_HAS_FLAGS)
    0                           /* flags */
#endif
};
