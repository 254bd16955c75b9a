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
 * reencrypt_config.c: per-directory configuration records, the
 * directive handlers and the cross-directive checks run at startup
 * (and by apachectl -t). Parsing itself lives in reencrypt_policy.c.
 */

#include "apr_strings.h"

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"

#include "mod_proxy.h"

#include "mod_reencrypt.h"

APLOG_USE_MODULE(reencrypt);

/* ------------------------------------------------------------------ */
/* Records                                                             */

void *reencrypt_create_dir_conf(apr_pool_t *p, char *dir)
{
    reencrypt_policy_t *pol = apr_palloc(p, sizeof(*pol));

    (void)dir;
    reencrypt_policy_init(pol);
    return pol;
}

void *reencrypt_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    reencrypt_policy_t *pol = apr_palloc(p, sizeof(*pol));

    reencrypt_policy_merge(pol, basev, addv);
    return pol;
}

const reencrypt_policy_t *reencrypt_policy_of(ap_conf_vector_t *dir_conf,
                                              server_rec *s)
{
    if (!dir_conf) {
        dir_conf = s->lookup_defaults;
    }
    return ap_get_module_config(dir_conf, &reencrypt_module);
}

/* ------------------------------------------------------------------ */
/* Directive handlers                                                  */

static const char *where(cmd_parms *cmd)
{
    return apr_psprintf(cmd->pool, "%s:%d",
                        cmd->directive ? cmd->directive->filename : "?",
                        cmd->directive ? cmd->directive->line_num : 0);
}

static const char *set_engine(cmd_parms *cmd, void *dcfg, const char *arg)
{
    reencrypt_policy_t *pol = dcfg;
    const char *err;

    err = reencrypt_parse_flag(cmd->pool, cmd->cmd->name, arg, &pol->engine);
    if (err) {
        return err;
    }
    pol->engine_where = where(cmd);
    return NULL;
}

static const char *set_ca_file(cmd_parms *cmd, void *dcfg, const char *arg)
{
    reencrypt_policy_t *pol = dcfg;
    const char *path;

    if (pol->anchors) {
        return apr_psprintf(cmd->pool, "%s: already set in this scope to "
                            "'%s'; put all trust anchors into one PEM file",
                            cmd->cmd->name, pol->anchors->path);
    }
    path = ap_server_root_relative(cmd->pool, arg);
    if (!path) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a valid path",
                            cmd->cmd->name, arg);
    }
    if (ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_DUMP) {
        /* -D DUMP_CONFIG only prints: do not insist on the file */
        reencrypt_anchors_t *a = apr_pcalloc(cmd->pool, sizeof(*a));

        a->path = path;
        pol->anchors = a;
        return NULL;
    }
    return reencrypt_anchors_load(cmd->pool, cmd->cmd->name, path,
                                  &pol->anchors);
}

static const char *set_depth(cmd_parms *cmd, void *dcfg, const char *arg)
{
    reencrypt_policy_t *pol = dcfg;

    return reencrypt_parse_int(cmd->pool, cmd->cmd->name, arg,
                               REENCRYPT_DEPTH_MIN, REENCRYPT_DEPTH_MAX,
                               &pol->verify_depth);
}

static const char *set_verify_name(cmd_parms *cmd, void *dcfg, int argc,
                                   char *const argv[])
{
    reencrypt_policy_t *pol = dcfg;
    const char *name, *err;
    int i;

    if (argc < 1) {
        return apr_psprintf(cmd->pool, "%s: needs at least one name",
                            cmd->cmd->name);
    }
    /* several directives in one scope add up; an inner scope replaces */
    if (!pol->verify_names) {
        pol->verify_names = apr_array_make(cmd->pool, argc,
                                           sizeof(const char *));
    }
    for (i = 0; i < argc; i++) {
        err = reencrypt_parse_verify_name(cmd->pool, argv[i], &name);
        if (err) {
            return err;
        }
        APR_ARRAY_PUSH(pol->verify_names, const char *) = name;
    }
    return NULL;
}

static const char *set_sni(cmd_parms *cmd, void *dcfg, const char *arg)
{
    reencrypt_policy_t *pol = dcfg;

    return reencrypt_parse_sni(cmd->pool, arg, &pol->sni_mode,
                               &pol->sni_name);
}

#define RE_SCOPE (RSRC_CONF | ACCESS_CONF | PROXY_CONF)

const command_rec reencrypt_cmds[] = {
    AP_INIT_TAKE1("ReencryptEngine", set_engine, NULL, RE_SCOPE,
                  "On|Off: verify TLS backends under this scope's policy "
                  "(default Off)"),
    AP_INIT_TAKE1("ReencryptCACertificateFile", set_ca_file, NULL, RE_SCOPE,
                  "PEM file of the trust anchors for backend chains"),
    AP_INIT_TAKE1("ReencryptVerifyDepth", set_depth, NULL, RE_SCOPE,
                  "0..32: most certificates allowed above the backend's "
                  "own, counting the trust anchor (default 4)"),
    AP_INIT_TAKE_ARGV("ReencryptVerifyName", set_verify_name, NULL, RE_SCOPE,
                  "names (DNS or IP) the backend certificate must carry, "
                  "any of them (default: the SNI sent, else the backend "
                  "host)"),
    AP_INIT_TAKE1("ReencryptSNI", set_sni, NULL, RE_SCOPE,
                  "Backend|Host|Off|<name>: SNI sent to the backend "
                  "(default Backend)"),
    { NULL }
};

/* ------------------------------------------------------------------ */
/* Startup checks                                                      */

/* A scope where the engine is on must have trust anchors: a policy
 * with nothing to trust would refuse every backend at run time. */
static int check_scope(server_rec *s, const reencrypt_policy_t *base,
                       ap_conf_vector_t *sec, apr_pool_t *ptemp)
{
    const reencrypt_policy_t *pol = base;
    reencrypt_policy_t merged;

    if (sec) {
        const reencrypt_policy_t *add = ap_get_module_config(sec,
                                                     &reencrypt_module);
        if (!add) {
            return OK;
        }
        reencrypt_policy_merge(&merged, base, add);
        pol = &merged;
    }
    if (reencrypt_policy_enabled(pol) && !pol->anchors) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                     RELOGNO(00004) "ReencryptEngine On at %s has no trust "
                     "anchors (server %s:%u): set ReencryptCACertificateFile "
                     "in this scope or an enclosing one",
                     pol->engine_where ? pol->engine_where : "?",
                     s->server_hostname ? s->server_hostname : "?",
                     (unsigned)s->port);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    (void)ptemp;
    return OK;
}

static int check_sections(server_rec *s, const reencrypt_policy_t *base,
                          apr_array_header_t *secs, apr_pool_t *ptemp)
{
    int i;

    for (i = 0; secs && i < secs->nelts; i++) {
        int rv = check_scope(s, base,
                             APR_ARRAY_IDX(secs, i, ap_conf_vector_t *),
                             ptemp);
        if (rv != OK) {
            return rv;
        }
    }
    return OK;
}

int reencrypt_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *s)
{
    module *proxy = ap_find_linked_module("mod_proxy.c");
    server_rec *vs;
    int rv;

    (void)pconf;
    (void)plog;
    for (vs = s; vs; vs = vs->next) {
        const reencrypt_policy_t *base = reencrypt_policy_of(NULL, vs);
        core_server_config *core = ap_get_core_module_config(
                                       vs->module_config);

        if ((rv = check_scope(vs, base, NULL, ptemp)) != OK
            || (rv = check_sections(vs, base, core->sec_url, ptemp)) != OK
            || (rv = check_sections(vs, base, core->sec_dir, ptemp)) != OK) {
            return rv;
        }
        if (proxy) {
            proxy_server_conf *psf = ap_get_module_config(vs->module_config,
                                                          proxy);
            if (psf && (rv = check_sections(vs, base, psf->sec_proxy,
                                            ptemp)) != OK) {
                return rv;
            }
        }
    }
    return OK;
}
