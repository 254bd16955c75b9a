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
 * reencrypt_dump.c: what apachectl -t says of the policies.
 *
 *   apachectl -t -D DUMP_REENCRYPT   every scope with a policy, its
 *                                    effective values and the file:line
 *                                    where each was set, or (default)
 *   apachectl -t -D REENCRYPT_PROBE  a TLS handshake with every backend
 *                                    under a policy, verified as a
 *                                    request's would be; no request sent
 *
 * Both run in the test_config hook, which httpd runs once the
 * configuration is read and check_config passed (server/main.c), as
 * DUMP_VHOSTS does. The scopes are walked as the startup checks walk them
 * (reencrypt_config.c, walk_scopes): each server (its lookup_defaults,
 * merged with the main server's by httpd), its <Location> sections
 * (core's sec_url) and its <Proxy> sections (mod_proxy's sec_proxy),
 * each section merged over its server; and the balancers, each merged
 * with the <Proxy balancer://...> section mod_proxy attached to it, the
 * scope mod_proxy_hcheck checks members under.
 */

#include "apr_fnmatch.h"
#include "apr_signal.h"
#include "apr_poll.h"
#include "apr_strings.h"
#include "apr_thread_cond.h"
#include "apr_thread_mutex.h"
#include "apr_thread_proc.h"
#include "apr_uri.h"

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"
#include "util_cfgtree.h"

#include "mod_proxy.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mod_reencrypt.h"
#include "reencrypt_conn.h"
#include "reencrypt_dump.h"

APLOG_USE_MODULE(reencrypt);

/* Width of "Directive value" before the column that says where it was
 * set. */
#define VALUE_COLUMN 46

/* ------------------------------------------------------------------ */
/* Where sections are: the configuration tree                          */

/* Does the section node open with path as its argument? "<Location
 * "/app">", "<Location ~ "^/x">", "<Proxy balancer://app lbmethod=...>",
 * "<Proxy proxy:https://...>". */
static int section_is(apr_pool_t *p, const ap_directive_t *node,
                      const char *path)
{
    char *args = apr_pstrdup(p, node->args ? node->args : "");
    char *end = strrchr(args, '>');
    const char *rest, *word;

    if (end) {
        *end = '\0';
    }
    rest = args;
    word = ap_getword_conf(p, &rest);
    if (!strcmp(word, "~")) {
        word = ap_getword_conf(p, &rest);
    }
    if (!strncasecmp(word, "proxy:", 6)) {
        word += 6;
    }
    return !strcmp(word, path);
}

/* The first section <name path> under node, in configuration order;
 * into <VirtualHost> sections only with vhosts. */
static const ap_directive_t *find_section(apr_pool_t *p,
                                          const ap_directive_t *node,
                                          const char *name,
                                          const char *path, int vhosts)
{
    const ap_directive_t *found;

    for (; node; node = node->next) {
        if (!node->directive) {
            continue;
        }
        if (!strcasecmp(node->directive, name)
            && section_is(p, node, path)) {
            return node;
        }
        if (node->first_child
            && (vhosts || strcasecmp(node->directive, "<VirtualHost"))
            && (found = find_section(p, node->first_child, name, path,
                                     vhosts))) {
            return found;
        }
    }
    return NULL;
}

/* The <VirtualHost> node of s, or NULL for the main server */
static const ap_directive_t *vhost_node(const ap_directive_t *node,
                                        server_rec *s)
{
    const ap_directive_t *found;

    if (!s->defn_name) {
        return NULL;
    }
    for (; node; node = node->next) {
        if (node->directive && !strcasecmp(node->directive, "<VirtualHost")
            && node->line_num == (int)s->defn_line_number && node->filename
            && !strcmp(node->filename, s->defn_name)) {
            return node;
        }
        if (node->first_child
            && (found = vhost_node(node->first_child, s))) {
            return found;
        }
    }
    return NULL;
}

/* The section <name path> of s: in its <VirtualHost>, else at the
 * server level (a section of the main server applies to every virtual
 * host too). Its node, or NULL. */
static const ap_directive_t *section_of(apr_pool_t *p, server_rec *s,
                                        const char *name, const char *path)
{
    const ap_directive_t *vh = vhost_node(ap_conftree, s);
    const ap_directive_t *found = NULL;

    if (vh) {
        found = find_section(p, vh->first_child, name, path, 0);
    }
    return found ? found : find_section(p, ap_conftree, name, path, 0);
}

static const char *node_where(apr_pool_t *p, const ap_directive_t *node)
{
    return node ? apr_psprintf(p, "%s:%d", node->filename, node->line_num)
                : NULL;
}

/* ------------------------------------------------------------------ */
/* Scopes                                                              */

typedef enum {
    SCOPE_SERVER,
    SCOPE_LOCATION,
    SCOPE_PROXY,
    SCOPE_BALANCER
} scope_kind_e;

typedef struct {
    scope_kind_e kind;
    server_rec *s;
    const char *label;           /* "<Location "/app">", ... */
    const char *where;           /* "file:line" of the section, or NULL */
    reencrypt_policy_t pol;      /* effective: merged over its server */
    int switched_off;            /* Off here, On in its server */
    proxy_balancer *balancer;    /* SCOPE_BALANCER */
    const char *note;            /* one more line about it, or NULL */
} scope_t;

static module *proxy_module_of(void)
{
    return ap_find_linked_module("mod_proxy.c");
}

static proxy_server_conf *proxy_conf(server_rec *s)
{
    module *m = proxy_module_of();

    return m ? ap_get_module_config(s->module_config, m) : NULL;
}

static proxy_dir_conf *proxy_dir(ap_conf_vector_t *sec)
{
    module *m = proxy_module_of();

    return m && sec ? ap_get_module_config(sec, m) : NULL;
}

static const char *short_label(apr_pool_t *p, server_rec *s);

/* "<VirtualHost 127.0.0.1:443> www.example.com (file:line)" */
static const char *server_label(apr_pool_t *p, server_rec *s)
{
    if (!s->defn_name) {
        return apr_psprintf(p, "main server %s",
                            s->server_hostname ? s->server_hostname : "");
    }
    return apr_psprintf(p, "%s %s (%s:%u)", short_label(p, s),
                        s->server_hostname ? s->server_hostname : "",
                        s->defn_name, s->defn_line_number);
}

/* "<VirtualHost 127.0.0.1:443>" or "the main server" */
static const char *short_label(apr_pool_t *p, server_rec *s)
{
    const char *addrs = "";
    server_addr_rec *a;

    if (!s->defn_name) {
        return "the main server";
    }
    for (a = s->addrs; a; a = a->next) {
        addrs = apr_psprintf(p, "%s%s%s:%s", addrs, *addrs ? " " : "",
                             a->virthost ? a->virthost : "*",
                             a->host_port ? apr_itoa(p, a->host_port)
                                          : "*");
    }
    return apr_psprintf(p, "<VirtualHost %s>", addrs);
}

/* A section merged over its server, if it has a word of the module's */
static int merged_section(scope_t *sc, const reencrypt_policy_t *base,
                          ap_conf_vector_t *sec)
{
    const reencrypt_policy_t *add = ap_get_module_config(sec,
                                                         &reencrypt_module);

    if (!add) {
        return 0;
    }
    reencrypt_policy_merge(&sc->pol, base, add);
    return 1;
}

/* Is a scope listed? When its policy is on, or when it turns off the
 * policy of its server. */
static int listed(scope_t *sc, const reencrypt_policy_t *base)
{
    if (reencrypt_policy_enabled(&sc->pol)) {
        return 1;
    }
    sc->switched_off = reencrypt_policy_enabled(base);
    return sc->switched_off;
}

/* A <Location> or <Proxy> section sec of s at path, merged over base,
 * when it is to be listed; labelled by its opening line in the
 * configuration tree (name, else match_name), else by fallback */
static void add_section(apr_pool_t *p, apr_array_header_t *out,
                        server_rec *s, const reencrypt_policy_t *base,
                        ap_conf_vector_t *sec, scope_kind_e kind,
                        const char *path, const char *name,
                        const char *match_name, const char *fallback)
{
    const ap_directive_t *node;
    scope_t sc;

    memset(&sc, 0, sizeof(sc));
    if (!merged_section(&sc, base, sec) || !listed(&sc, base)) {
        return;
    }
    node = section_of(p, s, name, path);
    if (!node) {
        node = section_of(p, s, match_name, path);
    }
    sc.kind = kind;
    sc.s = s;
    sc.label = node ? apr_psprintf(p, "%s \"%s\">", node->directive, path)
                    : fallback;
    sc.where = node_where(p, node);
    APR_ARRAY_PUSH(out, scope_t) = sc;
}

static void add_locations(apr_pool_t *p, apr_array_header_t *out,
                          server_rec *s, const reencrypt_policy_t *base)
{
    core_server_config *core = ap_get_core_module_config(s->module_config);
    int i;

    for (i = 0; core->sec_url && i < core->sec_url->nelts; i++) {
        ap_conf_vector_t *sec = APR_ARRAY_IDX(core->sec_url, i,
                                              ap_conf_vector_t *);
        core_dir_config *cd = ap_get_core_module_config(sec);

        if (cd && cd->d) {
            add_section(p, out, s, base, sec, SCOPE_LOCATION, cd->d,
                        "<Location", "<LocationMatch",
                        apr_psprintf(p, "<Location %s\"%s\">",
                                     cd->r ? "~ " : "", cd->d));
        }
    }
}

static void add_proxy_sections(apr_pool_t *p, apr_array_header_t *out,
                               server_rec *s, const reencrypt_policy_t *base)
{
    proxy_server_conf *psf = proxy_conf(s);
    int i;

    for (i = 0; psf && psf->sec_proxy && i < psf->sec_proxy->nelts; i++) {
        ap_conf_vector_t *sec = APR_ARRAY_IDX(psf->sec_proxy, i,
                                              ap_conf_vector_t *);
        proxy_dir_conf *pd = proxy_dir(sec);

        if (pd && pd->p) {
            add_section(p, out, s, base, sec, SCOPE_PROXY, pd->p, "<Proxy",
                        "<ProxyMatch",
                        apr_psprintf(p, "%s \"%s\">",
                                     pd->r ? "<ProxyMatch" : "<Proxy",
                                     pd->p));
        }
    }
}

/* Does a <Proxy> section apply to url? As mod_proxy's proxy_walk
 * matches them: a regex, a wildcard, or a prefix. */
static int section_matches(const proxy_dir_conf *pd, const char *url)
{
    return pd->r ? ap_regexec(pd->r, url, 0, NULL, 0) == 0
           : pd->p_is_fnmatch ? apr_fnmatch(pd->p, url, 0) == APR_SUCCESS
           : !strncmp(url, pd->p, strlen(pd->p));
}

/* A <Proxy> section of s whose path is a prefix of url (as mod_proxy's
 * proxy_walk matches them), with a word of the module's: its index in
 * sec_proxy from start on, or -1. */
static int next_matching_section(proxy_server_conf *psf, const char *url,
                                 int start)
{
    int i;

    for (i = start; psf && psf->sec_proxy && i < psf->sec_proxy->nelts;
         i++) {
        ap_conf_vector_t *sec = APR_ARRAY_IDX(psf->sec_proxy, i,
                                              ap_conf_vector_t *);
        proxy_dir_conf *pd = proxy_dir(sec);

        if (pd && pd->p && ap_get_module_config(sec, &reencrypt_module)
            && section_matches(pd, url)) {
            return i;
        }
    }
    return -1;
}

static void add_balancers(apr_pool_t *p, apr_array_header_t *out,
                          server_rec *s, const reencrypt_policy_t *base)
{
    proxy_server_conf *psf = proxy_conf(s);
    int i;

    for (i = 0; psf && psf->balancers && i < psf->balancers->nelts; i++) {
        proxy_balancer *b = &APR_ARRAY_IDX(psf->balancers, i,
                                           proxy_balancer);
        const ap_directive_t *node;
        scope_t sc;

        memset(&sc, 0, sizeof(sc));
        if (!b->s || !b->workers || !b->workers->nelts) {
            continue;
        }
        if (!b->section_config || !merged_section(&sc, base,
                                                  b->section_config)) {
            sc.pol = *base;
        }
        node = section_of(p, s, "<Proxy", b->s->name);
        if (!b->section_config && node
            && next_matching_section(psf, apr_pstrcat(p, b->s->name, "/",
                                                      NULL), 0) >= 0) {
            /* mod_proxy attaches a <Proxy balancer://> section to its
             * balancer only when its opening line carries a balancer
             * parameter (mod_proxy.c, proxysection) */
            sc.note = apr_psprintf(p, "requests also get the <Proxy %s> "
                                   "section at %s, health checks do not "
                                   "(its opening line carries no balancer "
                                   "parameter, such as lbmethod=)",
                                   b->s->name, node_where(p, node));
        }
        if (!listed(&sc, base) && !sc.note) {
            continue;
        }
        sc.kind = SCOPE_BALANCER;
        sc.s = s;
        sc.balancer = b;
        sc.label = apr_psprintf(p, "%s: its members, under the policy "
                                "their health checks get", b->s->name);
        sc.where = b->section_config ? node_where(p, node) : NULL;
        APR_ARRAY_PUSH(out, scope_t) = sc;
    }
}

/* ------------------------------------------------------------------ */
/* -D DUMP_REENCRYPT                                                   */

static const char *duration_str(apr_pool_t *p, apr_int64_t secs)
{
    if (secs > 0 && secs % 86400 == 0) {
        return apr_psprintf(p, "%" APR_INT64_T_FMT "d", secs / 86400);
    }
    if (secs > 0 && secs % 3600 == 0) {
        return apr_psprintf(p, "%" APR_INT64_T_FMT "h", secs / 3600);
    }
    if (secs > 0 && secs % 60 == 0) {
        return apr_psprintf(p, "%" APR_INT64_T_FMT "m", secs / 60);
    }
    return apr_psprintf(p, "%" APR_INT64_T_FMT "s", secs);
}

static const char *hex_str(apr_pool_t *p, const unsigned char *b,
                           apr_size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *s = apr_palloc(p, len * 2 + 1);
    apr_size_t i;

    for (i = 0; i < len; i++) {
        s[2 * i] = digits[b[i] >> 4];
        s[2 * i + 1] = digits[b[i] & 15];
    }
    s[2 * len] = '\0';
    return s;
}

static const char *keyword_str(const reencrypt_keyword_t *w, int v)
{
    for (; w->word; w++) {
        if (w->value == v) {
            return w->word;
        }
    }
    return "?";
}

/* The value of one row of REENCRYPT_POLICY_FIELDS, as its directive
 * takes it */
static const char *field_str(apr_pool_t *p, const reencrypt_field_t *f,
                             apr_int64_t v)
{
    switch (f->kind) {
    case REENCRYPT_KIND_FLAG:
        return v ? "On" : "Off";
    case REENCRYPT_KIND_INT:
        return apr_psprintf(p, "%" APR_INT64_T_FMT, v);
    case REENCRYPT_KIND_DURATION:
        return duration_str(p, v);
    case REENCRYPT_KIND_KEYWORD:
        return keyword_str(f->keywords, (int)v);
    }
    return "?";
}

static void put_line(apr_file_t *out, apr_pool_t *p, const char *directive,
                     const char *value, const char *origin)
{
    apr_file_printf(out, "    %-*s  %s\n", VALUE_COLUMN,
                    apr_pstrcat(p, directive, " ", value, NULL),
                    origin ? origin : "(default)");
}

static const char *anchors_str(apr_pool_t *p, const reencrypt_anchors_t *a)
{
    if (!a->store) {
        return apr_psprintf(p, "%s (not read in this run mode)", a->path);
    }
    return apr_psprintf(p, "%s (%d certificate%s, SHA-256 %s)", a->path,
                        a->count, a->count == 1 ? "" : "s",
                        hex_str(p, a->digest, sizeof(a->digest)));
}

static const char *list_str(apr_pool_t *p, const apr_array_header_t *arr)
{
    const char *s = "";
    int i;

    for (i = 0; i < arr->nelts; i++) {
        s = apr_pstrcat(p, s, i ? " " : "",
                        APR_ARRAY_IDX(arr, i, const char *), NULL);
    }
    return s;
}

/* The CRL files and ReencryptRevocationCheck of pol */
static void dump_revocation(apr_file_t *out, apr_pool_t *p,
                            const reencrypt_policy_t *pol)
{
    const char *v;
    int i;

    if (!pol->crls) {
        put_line(out, p, "ReencryptCARevocationFile", "(none)", NULL);
    }
    for (i = 0; pol->crls && i < pol->crls->files->nelts; i++) {
        const reencrypt_crl_file_t *f = APR_ARRAY_IDX(pol->crls->files, i,
                                            const reencrypt_crl_file_t *);
        const char *at = pol->crls->wheres && i < pol->crls->wheres->nelts
                         ? APR_ARRAY_IDX(pol->crls->wheres, i, const char *)
                         : pol->crls->where;

        put_line(out, p, "ReencryptCARevocationFile",
                 apr_psprintf(p, "%s (%d CRL%s, SHA-256 %s)", f->path,
                              sk_X509_CRL_num(f->crls),
                              sk_X509_CRL_num(f->crls) == 1 ? "" : "s",
                              hex_str(p, f->digest, sizeof(f->digest))),
                 at ? at : "?");
    }
    switch (reencrypt_policy_revocation(pol)) {
    case REENCRYPT_REVOCATION_CHAIN:
        v = "Chain";
        break;
    case REENCRYPT_REVOCATION_LEAF:
        v = "Leaf";
        break;
    default:
        v = "Off";
        break;
    }
    if (reencrypt_policy_no_crl_ok(pol)) {
        v = apr_pstrcat(p, v, " NoCRLForCertOK", NULL);
    }
    put_line(out, p, "ReencryptRevocationCheck", v,
             pol->revocation != REENCRYPT_REVOCATION_UNSET
             ? pol->revocation_where : NULL);
}

/* ReencryptSNI and ReencryptPin of pol */
static void dump_sni_pins(apr_file_t *out, apr_pool_t *p,
                          const reencrypt_policy_t *pol)
{
    const char *v;
    int i;

    switch (reencrypt_policy_sni_mode(pol)) {
    case REENCRYPT_SNI_HOST:
        v = "Host";
        break;
    case REENCRYPT_SNI_OFF:
        v = "Off";
        break;
    case REENCRYPT_SNI_NAME:
        v = pol->sni_name;
        break;
    default:
        v = "Backend";
        break;
    }
    put_line(out, p, "ReencryptSNI", v,
             pol->sni_mode != REENCRYPT_SNI_UNSET ? pol->sni_where : NULL);
    if (!pol->pins) {
        v = "(none)";
    }
    else if (!pol->pins->nelts) {
        v = "none";
    }
    else {
        v = "";
        for (i = 0; i < pol->pins->nelts; i++) {
            v = apr_pstrcat(p, v, i ? " " : "",
                            reencrypt_pin_str(p, &APR_ARRAY_IDX(pol->pins, i,
                                                     reencrypt_pin_t)),
                            NULL);
        }
    }
    put_line(out, p, "ReencryptPin", v, pol->pins ? pol->pins_where : NULL);
}

static void dump_policy(apr_file_t *out, apr_pool_t *p,
                        const reencrypt_policy_t *pol)
{
    int i;

    /* the one-value directives, from their table */
    for (i = 0; i < REENCRYPT_FIELD_COUNT; i++) {
        const reencrypt_field_t *f = &reencrypt_fields[i];
        const char *where = *(const char *const *)(const void *)
                            ((const char *)pol + f->where);

        put_line(out, p, f->directive,
                 field_str(p, f, reencrypt_policy_get(pol, f->id)),
                 reencrypt_field_is_set(pol, f->id)
                 ? (where ? where : "?") : NULL);
    }
    /* the others, in the order of the command table */
    put_line(out, p, "ReencryptCACertificateFile",
             pol->anchors ? anchors_str(p, pol->anchors) : "(none)",
             pol->anchors ? pol->anchors_where : NULL);
    dump_revocation(out, p, pol);
    put_line(out, p, "ReencryptVerifyName",
             pol->verify_names && pol->verify_names->nelts
             ? list_str(p, pol->verify_names)
             : "(the SNI sent, else the backend's host)",
             pol->verify_names ? pol->names_where : NULL);
    dump_sni_pins(out, p, pol);
    /* mod_ssl's, as the module reads them: what the scope presents */
    if (pol->client_cert_file_name) {
        put_line(out, p, "SSLProxyMachineCertificateFile",
                 pol->client_cert_file_name, "(mod_ssl's)");
    }
    if (pol->client_cert_path_name) {
        put_line(out, p, "SSLProxyMachineCertificatePath",
                 pol->client_cert_path_name, "(mod_ssl's)");
    }
    if (pol->client_chain_file_name) {
        put_line(out, p, "SSLProxyMachineCertificateChainFile",
                 pol->client_chain_file_name, "(mod_ssl's)");
    }
}

static void dump_scope(apr_file_t *out, apr_pool_t *p, const scope_t *sc)
{
    int i;

    apr_file_printf(out, "  %s%s%s%s\n", sc->label,
                    sc->where ? " (" : "", sc->where ? sc->where : "",
                    sc->where ? ")" : "");
    if (sc->note) {
        apr_file_printf(out, "    # %s\n", sc->note);
    }
    if (sc->kind == SCOPE_BALANCER) {
        for (i = 0; i < sc->balancer->workers->nelts; i++) {
            proxy_worker *w = APR_ARRAY_IDX(sc->balancer->workers, i,
                                            proxy_worker *);

            if (w && w->s) {
                apr_file_printf(out, "    BalancerMember %s\n",
                                *w->s->name_ex ? w->s->name_ex
                                               : w->s->name);
            }
        }
    }
    if (sc->switched_off) {
        put_line(out, p, "ReencryptEngine", "Off",
                 sc->pol.engine_where ? sc->pol.engine_where : "?");
        apr_file_printf(out, "    # no policy here: mod_ssl's SSLProxy* "
                        "settings alone\n");
        return;
    }
    if (!reencrypt_policy_enabled(&sc->pol)) {
        apr_file_printf(out, "    # no policy\n");
        return;
    }
    dump_policy(out, p, &sc->pol);
}

static void dump_server_wide(apr_file_t *out, apr_pool_t *p, server_rec *s)
{
    const reencrypt_srv_conf *sc = ap_get_module_config(s->module_config,
                                                        &reencrypt_module);

    apr_file_printf(out, "Server-wide (main server):\n");
    put_line(out, p, "ReencryptSessionCache",
             sc->session_cache ? sc->session_cache : "shmcb",
             sc->session_cache_where);
    put_line(out, p, "ReencryptSessionCacheKey",
             sc->session_key_none ? "none"
             : sc->session_key_file ? sc->session_key_file
             : "(none: entries kept unsealed)",
             sc->session_key_where);
    put_line(out, p, "ReencryptStatusBackends",
             apr_itoa(p, sc->status_backends >= 0
                         ? sc->status_backends
                         : REENCRYPT_STATUS_BACKENDS_DEFAULT),
             sc->status_backends >= 0 ? sc->status_backends_where : NULL);
}

/* The scopes of s that are listed, in order: the server itself (even
 * without a policy: a header for its sections), its <Location> and
 * <Proxy> sections and its balancers. */
static apr_array_header_t *scopes_of(apr_pool_t *p, server_rec *s)
{
    apr_array_header_t *out = apr_array_make(p, 8, sizeof(scope_t));
    const reencrypt_policy_t *base = reencrypt_policy_of(NULL, s);
    scope_t *sc = apr_array_push(out);

    memset(sc, 0, sizeof(*sc));
    sc->kind = SCOPE_SERVER;
    sc->s = s;
    sc->pol = *base;
    add_locations(p, out, s, base);
    add_proxy_sections(p, out, s, base);
    add_balancers(p, out, s, base);
    return out;
}

static void dump(apr_file_t *out, apr_pool_t *p, server_rec *s)
{
    server_rec *vs;
    int i, n = 0;

    apr_file_printf(out, "mod_reencrypt policies: effective values, and "
                    "where each was set or (default)\n");
    for (vs = s; vs; vs = vs->next) {
        apr_array_header_t *scopes = scopes_of(p, vs);
        const scope_t *self = &APR_ARRAY_IDX(scopes, 0, scope_t);
        int on = reencrypt_policy_enabled(&self->pol);

        if (!on && scopes->nelts == 1) {
            continue;               /* nothing to say of this server */
        }
        apr_file_printf(out, "%s\n", server_label(p, vs));
        if (on) {
            dump_policy(out, p, &self->pol);
            n++;
        }
        else {
            apr_file_printf(out, "    # no policy in the server itself\n");
        }
        for (i = 1; i < scopes->nelts; i++) {
            const scope_t *sc = &APR_ARRAY_IDX(scopes, i, scope_t);

            dump_scope(out, p, sc);
            n += reencrypt_policy_enabled(&sc->pol);
        }
    }
    if (!n) {
        apr_file_printf(out, "no scope has a policy (ReencryptEngine On)\n");
    }
    dump_server_wide(out, p, s);
}

/* ------------------------------------------------------------------ */
/* -D REENCRYPT_PROBE: the backends                                    */

typedef enum {
    PROBE_PENDING = 0,
    PROBE_OK,
    PROBE_REFUSED,
    PROBE_REPORT,
    PROBE_UNREACHABLE
} probe_result_e;

typedef struct {
    /* what to probe; set before the threads start, read-only after */
    const char *scheme;          /* lower case */
    const char *host;            /* no brackets */
    apr_port_t port;
    const char *name;            /* "host:port", "[v6]:port" */
    const char *sni;             /* NULL: none */
    int sni_host_mode;           /* ReencryptSNI Host: the backend's host */
    apr_array_header_t *names;   /* expected */
    int names_from_sni;
    reencrypt_policy_t pol;
    apr_uint64_t id;             /* reencrypt_policy_id(pol) */
    const char *origin;          /* what names it: "ProxyPass /app in
                                  * <VirtualHost 127.0.0.1:443>", ... */
    int more;                    /* names of the same probe besides */
    apr_pool_t *pool;            /* the probe's own */
    apr_time_t deadline;
    /* the outcome, written by the probe's thread before it says done */
    probe_result_e result;
    const char *text;            /* the line after "<result> " */
    int done;                    /* set under the mutex once written */
    int final;                   /* done, as seen when the bound ended */
} probe_t;

static int is_tls_scheme(const char *scheme)
{
    return scheme && (!strcasecmp(scheme, "https")
                      || !strcasecmp(scheme, "wss")
                      || !strcasecmp(scheme, "h2"));
}

/* Add the backend of url under pol, named in the configuration by
 * origin, unless one with the same host, port, scheme, SNI and policy
 * is there already (which is then named by one more). */
static void add_backend(apr_pool_t *p, apr_array_header_t *probes,
                        const char *url, const reencrypt_policy_t *pol,
                        const char *origin)
{
    apr_uri_t uri;
    apr_port_t port;
    const char *sni;
    char *scheme;
    probe_t *pr;
    apr_uint64_t id;
    int i, h2;

    if (!reencrypt_policy_enabled(pol) || !url
        || apr_uri_parse(p, url, &uri) != APR_SUCCESS || !uri.hostname
        || !*uri.hostname || !is_tls_scheme(uri.scheme)
        || strpbrk(uri.hostname, "$*?[")) {
        return;
    }
    port = uri.port ? uri.port : reencrypt_port_of_scheme(uri.scheme);
    /* ReencryptSNI Host: there is no request, the backend's host stands
     * in for the client's */
    sni = reencrypt_sni_for(p, pol, uri.hostname, uri.hostname);
    id = reencrypt_policy_id(pol);
    h2 = !strcasecmp(uri.scheme, "h2");
    for (i = 0; i < probes->nelts; i++) {
        probe_t *o = APR_ARRAY_IDX(probes, i, probe_t *);

        if (o->port == port && o->id == id
            && !strcasecmp(o->host, uri.hostname)
            && (strcmp(o->scheme, "h2") == 0) == h2
            && (o->sni == sni || (o->sni && sni && !strcmp(o->sni, sni)))) {
            o->more++;
            return;
        }
    }
    pr = apr_pcalloc(p, sizeof(*pr));
    scheme = apr_pstrdup(p, uri.scheme);
    ap_str_tolower(scheme);
    pr->scheme = scheme;
    pr->host = uri.hostname;
    pr->port = port;
    pr->name = apr_psprintf(p, strchr(uri.hostname, ':') ? "[%s]:%u"
                                                         : "%s:%u",
                            uri.hostname, (unsigned)port);
    pr->sni = sni;
    pr->sni_host_mode = reencrypt_policy_sni_mode(pol) == REENCRYPT_SNI_HOST;
    pr->pol = *pol;
    pr->id = id;
    pr->origin = origin;
    pr->names = reencrypt_expected_names(p, &pr->pol, sni, uri.hostname);
    pr->names_from_sni = sni && !(pol->verify_names
                                  && pol->verify_names->nelts);
    APR_ARRAY_PUSH(probes, probe_t *) = pr;
}

/* Does the <Location> path entry match the request path? As httpd's
 * location walk matches (server/request.c): a regex, a wildcard, or a
 * prefix that ends at a '/'. */
static int location_matches(const core_dir_config *cd, const char *path)
{
    apr_size_t len;

    if (cd->r) {
        return ap_regexec(cd->r, path, 0, NULL, 0) == 0;
    }
    if (cd->d_is_fnmatch) {
        return apr_fnmatch(cd->d, path, APR_FNM_PATHNAME) == APR_SUCCESS;
    }
    len = strlen(cd->d);
    return !strncmp(cd->d, path, len)
           && (len == 0 || cd->d[len - 1] == '/' || path[len] == '/'
               || path[len] == '\0');
}

/* The policy of a request for path (NULL: no <Location> is looked at)
 * proxied to url: the server's, then every <Proxy> section matching the
 * URL (mod_proxy's proxy_walk), then every <Location> matching the path
 * (the location walk, which runs after it). */
static void request_policy(server_rec *s, const char *path,
                           const char *url, reencrypt_policy_t *out)
{
    proxy_server_conf *psf = proxy_conf(s);
    core_server_config *core = ap_get_core_module_config(s->module_config);
    reencrypt_policy_t acc = *reencrypt_policy_of(NULL, s);
    int i;

    for (i = next_matching_section(psf, url, 0); i >= 0;
         i = next_matching_section(psf, url, i + 1)) {
        ap_conf_vector_t *sec = APR_ARRAY_IDX(psf->sec_proxy, i,
                                              ap_conf_vector_t *);

        reencrypt_policy_merge(out, &acc,
                               ap_get_module_config(sec, &reencrypt_module));
        acc = *out;
    }
    for (i = 0; path && core->sec_url && i < core->sec_url->nelts; i++) {
        ap_conf_vector_t *sec = APR_ARRAY_IDX(core->sec_url, i,
                                              ap_conf_vector_t *);
        core_dir_config *cd = ap_get_core_module_config(sec);
        const reencrypt_policy_t *add = ap_get_module_config(sec,
                                                     &reencrypt_module);

        if (add && cd && cd->d && location_matches(cd, path)) {
            reencrypt_policy_merge(out, &acc, add);
            acc = *out;
        }
    }
    *out = acc;
}

/* Every backend named under a policy, in the order of the configuration
 * walk: ProxyPass (server and <Location>), balancer members, <Proxy>
 * sections of a concrete https://, wss:// or h2:// host. */
/* The ProxyPass of server vs; a ProxyPassMatch path is a regular
 * expression, which no <Location> is matched against */
static void backends_of_aliases(apr_pool_t *p, server_rec *vs,
                                proxy_server_conf *psf, const char *where,
                                apr_array_header_t *probes)
{
    reencrypt_policy_t pol;
    int i;

    for (i = 0; psf->aliases && i < psf->aliases->nelts; i++) {
        struct proxy_alias *a = &APR_ARRAY_IDX(psf->aliases, i,
                                               struct proxy_alias);

        if (a->balancer || !a->real) {
            continue;
        }
        request_policy(vs, a->regex ? NULL : a->fake, a->real, &pol);
        add_backend(p, probes, a->real, &pol,
                    apr_psprintf(p, "%s %s in %s",
                                 a->regex ? "ProxyPassMatch"
                                          : "ProxyPass",
                                 a->fake, where));
    }
}

/* The ProxyPass in a <Location> of server vs */
static void backends_of_locations(apr_pool_t *p, server_rec *vs,
                                  const char *where,
                                  apr_array_header_t *probes)
{
    core_server_config *core = ap_get_core_module_config(vs->module_config);
    reencrypt_policy_t pol;
    int i;

    for (i = 0; core->sec_url && i < core->sec_url->nelts; i++) {
        ap_conf_vector_t *sec = APR_ARRAY_IDX(core->sec_url, i,
                                              ap_conf_vector_t *);
        core_dir_config *cd = ap_get_core_module_config(sec);
        proxy_dir_conf *pd = proxy_dir(sec);

        if (!pd || !pd->alias_set || !pd->alias || !pd->alias->real
            || pd->alias->balancer || !cd || !cd->d) {
            continue;
        }
        request_policy(vs, cd->r ? NULL : cd->d, pd->alias->real,
                       &pol);
        if (cd->r) {
            /* a <LocationMatch>: only its own words */
            const reencrypt_policy_t *add = ap_get_module_config(
                                                sec, &reencrypt_module);
            if (add) {
                reencrypt_policy_t tmp = pol;

                reencrypt_policy_merge(&pol, &tmp, add);
            }
        }
        add_backend(p, probes, pd->alias->real, &pol,
                    apr_psprintf(p, "ProxyPass in <Location%s \"%s\"> "
                                 "in %s", cd->r ? " ~" : "", cd->d,
                                 where));
    }
}

/* The members of the balancers of server vs, under the scope their
 * health checks see */
static void backends_of_balancers(apr_pool_t *p, server_rec *vs,
                                  const char *where,
                                  apr_array_header_t *probes)
{
    apr_array_header_t *scopes = scopes_of(p, vs);
    int i, j;

    for (i = 1; i < scopes->nelts; i++) {
        const scope_t *sc = &APR_ARRAY_IDX(scopes, i, scope_t);

        if (sc->kind == SCOPE_BALANCER) {
            for (j = 0; j < sc->balancer->workers->nelts; j++) {
                proxy_worker *w = APR_ARRAY_IDX(sc->balancer->workers, j,
                                                proxy_worker *);

                if (w && w->s) {
                    add_backend(p, probes,
                                *w->s->name_ex ? w->s->name_ex
                                               : w->s->name, &sc->pol,
                                apr_psprintf(p, "BalancerMember of %s "
                                             "in %s",
                                             sc->balancer->s->name,
                                             where));
                }
            }
        }
    }
}

/* The <Proxy> sections of server vs that name one concrete backend */
static void backends_of_sections(apr_pool_t *p, server_rec *vs,
                                 proxy_server_conf *psf, const char *where,
                                 apr_array_header_t *probes)
{
    reencrypt_policy_t pol;
    int i;

    for (i = 0; psf->sec_proxy && i < psf->sec_proxy->nelts; i++) {
        ap_conf_vector_t *sec = APR_ARRAY_IDX(psf->sec_proxy, i,
                                              ap_conf_vector_t *);
        proxy_dir_conf *pd = proxy_dir(sec);
        const char *slash, *hostpart, *url;

        if (!pd || !pd->p || pd->r
            || !ap_get_module_config(sec, &reencrypt_module)) {
            continue;
        }
        /* the scheme and authority, with no wildcard in them */
        hostpart = ap_strstr_c(pd->p, "://");
        if (!hostpart) {
            continue;
        }
        slash = ap_strchr_c(hostpart + 3, '/');
        hostpart = slash ? apr_pstrmemdup(p, pd->p, slash - pd->p)
                         : pd->p;
        if (strpbrk(hostpart, "*?[")) {
            continue;
        }
        url = apr_pstrcat(p, hostpart, "/", NULL);
        request_policy(vs, NULL, url, &pol);
        if (!section_matches(pd, url)) {
            /* a section of a path below the host: its own words
             * over those of the server and of the sections of the
             * host */
            reencrypt_policy_t tmp = pol;

            reencrypt_policy_merge(&pol, &tmp, ap_get_module_config(
                                       sec, &reencrypt_module));
        }
        add_backend(p, probes, hostpart, &pol,
                    apr_psprintf(p, "<Proxy \"%s\"> in %s", pd->p,
                                 where));
    }
}

static apr_array_header_t *backends(apr_pool_t *p, server_rec *s)
{
    apr_array_header_t *probes = apr_array_make(p, 8, sizeof(probe_t *));
    server_rec *vs;

    for (vs = s; vs; vs = vs->next) {
        proxy_server_conf *psf = proxy_conf(vs);
        const char *where = short_label(p, vs);

        if (!psf) {
            continue;
        }
        backends_of_aliases(p, vs, psf, where, probes);
        backends_of_locations(p, vs, where, probes);
        backends_of_balancers(p, vs, where, probes);
        backends_of_sections(p, vs, psf, where, probes);
    }
    return probes;
}

/* ------------------------------------------------------------------ */
/* -D REENCRYPT_PROBE: one handshake                                   */

static void probe_done(probe_t *pr, probe_result_e result, const char *text)
{
    pr->result = result;
    pr->text = text;
}

static const char *ssl_error_str(apr_pool_t *p)
{
    char buf[256];
    unsigned long e = ERR_peek_last_error();

    if (!e) {
        return NULL;
    }
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return apr_pstrdup(p, buf);
}

static const char *status_str(apr_pool_t *p, apr_status_t rv)
{
    char buf[256];

    return apr_pstrdup(p, apr_strerror(rv, buf, sizeof(buf)));
}

static apr_interval_time_t left(const probe_t *pr)
{
    return pr->deadline - apr_time_now();
}

/* A passphrase-protected key is not prompted for (mod_ssl takes no
 * encrypted key for a proxy client certificate either). */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* The client certificate of the scope, as mod_ssl would present it:
 * the first certificate and key of SSLProxyMachineCertificateFile, with
 * the certificates of SSLProxyMachineCertificateChainFile. NULL, or why
 * it cannot be used. */
static const char *use_client_cert(apr_pool_t *p, SSL_CTX *ctx,
                                   const reencrypt_policy_t *pol)
{
    const char *file = pol->client_cert_file_name;
    const char *chain = pol->client_chain_file_name;
    const char *err;

    if (!file) {
        return NULL;
    }
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    if (SSL_CTX_use_certificate_file(ctx, file, SSL_FILETYPE_PEM) != 1
        || SSL_CTX_use_PrivateKey_file(ctx, file, SSL_FILETYPE_PEM) != 1) {
        err = ssl_error_str(p);
        return apr_psprintf(p, "SSLProxyMachineCertificateFile %s: %s",
                            file, err ? err : "no certificate and key");
    }
    if (chain) {
        BIO *bio = BIO_new_file(chain, "r");
        X509 *x;

        if (!bio) {
            err = ssl_error_str(p);
            return apr_psprintf(p, "SSLProxyMachineCertificateChainFile "
                                "%s: %s", chain, err ? err : "unreadable");
        }
        while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
            if (!SSL_CTX_add0_chain_cert(ctx, x)) {
                X509_free(x);
            }
        }
        BIO_free(bio);
        ERR_clear_error();          /* the end of the file */
    }
    return NULL;
}

/* Verify what the backend presented, as reencrypt_ssl.c's handshake
 * check does: the chain with reencrypt_verify(), then, where the policy
 * asks for it, the OCSP staple. */
static void probe_verify(probe_t *pr, SSL *ssl)
{
    apr_pool_t *p = pr->pool;
    const reencrypt_policy_t *pol = &pr->pol;
    reencrypt_stapling_e stapling = reencrypt_policy_stapling(pol);
    int report = reencrypt_policy_mode(pol) == REENCRYPT_MODE_REPORT;
    const char *sni = pr->sni ? pr->sni : "(none)";
    const char *host_note = pr->sni_host_mode
        ? "; ReencryptSNI Host: no request, the backend's host stood in "
          "for the client's" : "";
    X509 *leaf = SSL_get0_peer_certificate(ssl), *issuer = NULL;
    reencrypt_reason_e reason;
    const char *expected, *seen, *extra = "";
    reencrypt_check_t chk;
    reencrypt_verdict_t v;
    reencrypt_staple_t sv;
    time_t now = (time_t)apr_time_sec(apr_time_now());
    int n;

    reencrypt_check_init(&chk, pol, pr->names, pr->names_from_sni, now,
                         NULL);
    reason = reencrypt_verify(p, &chk, leaf, SSL_get_peer_cert_chain(ssl),
                              &v);
    expected = v.expected;
    seen = v.seen;
    if (reason == REENCRYPT_OK && pol->crls
        && reencrypt_policy_revocation(pol) != REENCRYPT_REVOCATION_OFF) {
        extra = apr_pstrcat(p, extra, ", revocation ",
                            reencrypt_revocation_token(v.revocation), NULL);
    }
    if (reason == REENCRYPT_OK && stapling != REENCRYPT_STAPLING_OFF) {
        const unsigned char *der = NULL;
        long len = SSL_get_tlsext_status_ocsp_resp(ssl, &der);

        n = v.chain ? sk_X509_num(v.chain) : 0;
        if (n >= 2) {
            issuer = sk_X509_value(v.chain, 1);
        }
        else if (n == 1 && X509_check_issued(leaf, leaf) == X509_V_OK) {
            issuer = leaf;          /* a self-issued trust anchor */
        }
        reencrypt_staple_check(p, (len > 0 && der) ? der : NULL,
                               len > 0 ? (apr_size_t)len : 0, leaf, issuer,
                               now, reencrypt_policy_clock_skew(pol), &sv);
        reason = reencrypt_staple_reason(stapling, sv.state);
        expected = sv.expected;
        seen = sv.seen;
        extra = apr_pstrcat(p, extra, ", OCSP staple ",
                            reencrypt_staple_token(sv.state), NULL);
    }
    if (v.chain) {
        sk_X509_pop_free(v.chain, X509_free);
    }
    if (reason != REENCRYPT_OK) {
        probe_done(pr, report ? PROBE_REPORT : PROBE_REFUSED,
                   apr_psprintf(p, "%s %s: %s%s; expected %s; seen %s%s",
                                pr->name, sni,
                                report ? "would refuse: " : "",
                                reencrypt_reason_token(reason),
                                expected ? expected : "?",
                                seen ? seen : "?", host_note));
        return;
    }
    probe_done(pr, PROBE_OK,
               apr_psprintf(p, "%s %s: %s, issuer %s, notAfter %s, pin "
                            "%s%s%s", pr->name, sni, v.subject,
                            reencrypt_name_str(p,
                                               X509_get_issuer_name(leaf)),
                            reencrypt_time_str(p, v.not_after),
                            reencrypt_pin_str(p, &v.leaf_pin), extra,
                            host_note));
}

/* The TLS handshake on a connected socket: no verification by OpenSSL
 * (the module verifies), SNI, status_request and ALPN as a request's
 * connection asks for them; nothing is written after it. */
/* SSL_connect on the non-blocking sock, within what is left of the
 * probe's time; 1 when the handshake completed, else 0 and the probe
 * is done (unreachable) */
static int probe_connect(probe_t *pr, SSL *ssl, apr_socket_t *sock)
{
    apr_pool_t *p = pr->pool;
    const char *err;
    int rc, e;

    for (;;) {
        apr_pollfd_t pfd;
        apr_int32_t nready = 0;
        apr_status_t rv;

        ERR_clear_error();
        rc = SSL_connect(ssl);
        if (rc == 1) {
            break;
        }
        e = SSL_get_error(ssl, rc);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            err = ssl_error_str(p);
            probe_done(pr, PROBE_UNREACHABLE,
                       apr_psprintf(p, "%s: TLS handshake failed: %s",
                                    pr->name,
                                    err ? err : "the backend closed the "
                                                "connection"));
            break;
        }
        memset(&pfd, 0, sizeof(pfd));
        pfd.p = p;
        pfd.desc_type = APR_POLL_SOCKET;
        pfd.desc.s = sock;
        pfd.reqevents = e == SSL_ERROR_WANT_READ ? APR_POLLIN : APR_POLLOUT;
        rv = left(pr) > 0 ? apr_poll(&pfd, 1, &nready, left(pr))
                          : APR_TIMEUP;
        if (APR_STATUS_IS_TIMEUP(rv) || (rv == APR_SUCCESS && !nready)) {
            probe_done(pr, PROBE_UNREACHABLE,
                       apr_psprintf(p, "%s: no answer to the TLS handshake "
                                    "within %d s", pr->name,
                                    REENCRYPT_PROBE_SECONDS));
            break;
        }
        if (rv != APR_SUCCESS && !APR_STATUS_IS_EINTR(rv)) {
            probe_done(pr, PROBE_UNREACHABLE,
                       apr_psprintf(p, "%s: %s", pr->name,
                                    status_str(p, rv)));
            break;
        }
    }
    return rc == 1;
}

static void probe_handshake(probe_t *pr, apr_socket_t *sock)
{
    apr_pool_t *p = pr->pool;
    apr_os_sock_t fd;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    const char *err;
    int rc;

    if (!ctx || apr_os_sock_get(&fd, sock) != APR_SUCCESS) {
        probe_done(pr, PROBE_UNREACHABLE,
                   apr_psprintf(p, "%s: cannot set up TLS", pr->name));
        SSL_CTX_free(ctx);
        return;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if ((err = use_client_cert(p, ctx, &pr->pol)) != NULL) {
        probe_done(pr, PROBE_UNREACHABLE,
                   apr_psprintf(p, "%s: %s", pr->name, err));
        SSL_CTX_free(ctx);
        return;
    }
    ssl = SSL_new(ctx);
    if (!ssl || !SSL_set_fd(ssl, fd)
        || (pr->sni && !SSL_set_tlsext_host_name(ssl, pr->sni))
        || (reencrypt_policy_stapling(&pr->pol) != REENCRYPT_STAPLING_OFF
            && !SSL_set_tlsext_status_type(ssl, TLSEXT_STATUSTYPE_ocsp))
        || (!strcmp(pr->scheme, "h2")
            && SSL_set_alpn_protos(ssl, (const unsigned char *)"\x02h2",
                                   3) != 0)) {
        probe_done(pr, PROBE_UNREACHABLE,
                   apr_psprintf(p, "%s: cannot set up TLS", pr->name));
        SSL_free(ssl);
        SSL_CTX_free(ctx);
        return;
    }
    rc = probe_connect(pr, ssl, sock);
    if (rc == 1) {
        probe_verify(pr, ssl);
        SSL_shutdown(ssl);          /* close_notify, nothing else */
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
}

static void probe_one(probe_t *pr)
{
    apr_pool_t *p = pr->pool;
    apr_sockaddr_t *sa = NULL;
    apr_socket_t *sock = NULL;
    apr_status_t rv;

    rv = apr_sockaddr_info_get(&sa, pr->host, APR_UNSPEC, pr->port, 0, p);
    if (rv != APR_SUCCESS) {
        probe_done(pr, PROBE_UNREACHABLE,
                   apr_psprintf(p, "%s: cannot resolve %s: %s", pr->name,
                                pr->host, status_str(p, rv)));
        return;
    }
    for (; sa; sa = sa->next) {
        if (left(pr) <= 0) {
            rv = APR_TIMEUP;
            break;
        }
        rv = apr_socket_create(&sock, sa->family, SOCK_STREAM,
                               APR_PROTO_TCP, p);
        if (rv != APR_SUCCESS) {
            sock = NULL;
            continue;
        }
        apr_socket_timeout_set(sock, left(pr));
        rv = apr_socket_connect(sock, sa);
        if (rv == APR_SUCCESS) {
            break;
        }
        apr_socket_close(sock);
        sock = NULL;
    }
    if (!sock) {
        probe_done(pr, PROBE_UNREACHABLE,
                   APR_STATUS_IS_TIMEUP(rv)
                   ? apr_psprintf(p, "%s: no TCP connection within %d s",
                                  pr->name, REENCRYPT_PROBE_SECONDS)
                   : apr_psprintf(p, "%s: %s", pr->name,
                                  status_str(p, rv)));
        return;
    }
    probe_handshake(pr, sock);
    apr_socket_close(sock);
}

/* ------------------------------------------------------------------ */
/* -D REENCRYPT_PROBE: all of them at once, within the bound           */

typedef struct {
    apr_array_header_t *probes;  /* probe_t * */
    apr_thread_mutex_t *mutex;
    apr_thread_cond_t *cond;
    int next;                    /* the next probe to start */
    int running;                 /* threads still running */
    apr_time_t deadline;
} probe_set_t;

static void *APR_THREAD_FUNC probe_thread(apr_thread_t *t, void *data)
{
    probe_set_t *set = data;

    for (;;) {
        probe_t *pr = NULL;

        apr_thread_mutex_lock(set->mutex);
        while (set->next < set->probes->nelts
               && apr_time_now() < set->deadline) {
            pr = APR_ARRAY_IDX(set->probes, set->next, probe_t *);
            set->next++;
            if (pr->pool) {
                break;
            }
            pr = NULL;              /* said why already */
        }
        apr_thread_mutex_unlock(set->mutex);
        if (!pr) {
            break;
        }
        probe_one(pr);
        apr_thread_mutex_lock(set->mutex);
        pr->done = 1;
        apr_thread_mutex_unlock(set->mutex);
    }
    apr_thread_mutex_lock(set->mutex);
    set->running--;
    apr_thread_cond_signal(set->cond);
    apr_thread_mutex_unlock(set->mutex);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* Without threads: every probe in this one, one after the other, each
 * still bound by the deadline. Returns 0 (no thread left behind). */
static int probe_here(apr_array_header_t *probes)
{
    int i;

    for (i = 0; i < probes->nelts; i++) {
        probe_t *pr = APR_ARRAY_IDX(probes, i, probe_t *);

        if (pr->pool) {
            probe_one(pr);
        }
        pr->final = 1;
    }
    return 0;
}

/* Run every probe, REENCRYPT_PROBE_THREADS at a time, all of them done
 * by the deadline: each connection and handshake waits only as long as
 * is left of the bound. Returns 0 when every thread ended, or 1 when
 * some thread is still inside a name resolution (the one wait the bound
 * cannot cut short). */
static int run_probes(apr_pool_t *p, apr_array_header_t *probes,
                      apr_time_t deadline)
{
    /* from p, not the stack: a thread still resolving a name when this
     * returns goes on using it until the process ends */
    probe_set_t *set = apr_pcalloc(p, sizeof(*set));
    apr_thread_t **threads;
    int i, n, started = 0;

    set->probes = probes;
    set->deadline = deadline;
    n = probes->nelts < REENCRYPT_PROBE_THREADS ? probes->nelts
                                                : REENCRYPT_PROBE_THREADS;
    threads = apr_pcalloc(p, sizeof(*threads) * (n ? n : 1));
    if (apr_thread_mutex_create(&set->mutex, APR_THREAD_MUTEX_DEFAULT, p)
        != APR_SUCCESS
        || apr_thread_cond_create(&set->cond, p) != APR_SUCCESS) {
        return probe_here(probes);
    }
    apr_thread_mutex_lock(set->mutex);
    for (i = 0; i < n; i++) {
        if (apr_thread_create(&threads[i], NULL, probe_thread, set, p)
            == APR_SUCCESS) {
            started++;
            set->running++;
        }
    }
    if (!started) {
        apr_thread_mutex_unlock(set->mutex);
        return probe_here(probes);
    }
    /* a little past the deadline: the threads notice it and end */
    while (set->running > 0) {
        apr_interval_time_t wait = deadline + apr_time_from_msec(500)
                                   - apr_time_now();

        if (wait <= 0) {
            break;
        }
        apr_thread_cond_timedwait(set->cond, set->mutex, wait);
    }
    /* what is done now is what is said: a thread still resolving a name
     * may finish while the lines are written */
    for (i = 0; i < probes->nelts; i++) {
        probe_t *pr = APR_ARRAY_IDX(probes, i, probe_t *);

        pr->final = pr->done;
    }
    if (set->running > 0) {
        apr_thread_mutex_unlock(set->mutex);
        return 1;
    }
    apr_thread_mutex_unlock(set->mutex);
    for (i = 0; i < n; i++) {
        apr_status_t trv;

        if (threads[i]) {
            apr_thread_join(&trv, threads[i]);
        }
    }
    return 0;
}

static int probe(apr_file_t *out, apr_pool_t *pconf, server_rec *s)
{
    apr_array_header_t *probes = backends(pconf, s);
    apr_time_t start = apr_time_now();
    apr_time_t deadline = start + apr_time_from_sec(REENCRYPT_PROBE_SECONDS);
    int i, stuck, counts[PROBE_UNREACHABLE + 1];

    memset(counts, 0, sizeof(counts));
    /* a backend that closes the connection while the ClientHello is
     * written must not end apachectl -t with SIGPIPE (the MPM, which
     * ignores it in a running server, has not run) */
    apr_signal(SIGPIPE, SIG_IGN);
    for (i = 0; i < probes->nelts; i++) {
        probe_t *pr = APR_ARRAY_IDX(probes, i, probe_t *);
        apr_allocator_t *alloc = NULL;

        /* each probe's thread allocates from a pool and an allocator of
         * its own, which no other thread touches */
        pr->deadline = deadline;
        if (apr_allocator_create(&alloc) != APR_SUCCESS
            || apr_pool_create_ex(&pr->pool, pconf, NULL, alloc)
               != APR_SUCCESS) {
            if (alloc) {
                apr_allocator_destroy(alloc);
            }
            pr->pool = NULL;
            probe_done(pr, PROBE_UNREACHABLE,
                       apr_psprintf(pconf, "%s: out of memory", pr->name));
            pr->done = 1;
            continue;
        }
        apr_allocator_owner_set(alloc, pr->pool);
        apr_pool_tag(pr->pool, "reencrypt_probe");
    }
    stuck = run_probes(pconf, probes, deadline);
    apr_file_printf(out, "mod_reencrypt probe of %d backend%s (at most "
                    "%d s, no request sent):\n", probes->nelts,
                    probes->nelts == 1 ? "" : "s", REENCRYPT_PROBE_SECONDS);
    for (i = 0; i < probes->nelts; i++) {
        probe_t *pr = APR_ARRAY_IDX(probes, i, probe_t *);
        probe_result_e r = pr->final ? pr->result : PROBE_PENDING;
        const char *text = pr->text;

        if (r == PROBE_PENDING) {
            /* not started, or still resolving its name */
            r = PROBE_UNREACHABLE;
            text = apr_psprintf(pconf, "%s: not reached within %d s",
                                pr->name, REENCRYPT_PROBE_SECONDS);
        }
        counts[r]++;
        apr_file_printf(out, "%s %s [%s%s]\n",
                        r == PROBE_OK ? "ok"
                        : r == PROBE_REFUSED ? "refused"
                        : r == PROBE_REPORT ? "report" : "unreachable",
                        text, pr->origin,
                        pr->more ? apr_psprintf(pconf, ", and %d more",
                                                pr->more) : "");
    }
    apr_file_printf(out, "%d ok, %d refused, %d report-only, %d "
                    "unreachable, in %" APR_TIME_T_FMT " ms\n",
                    counts[PROBE_OK], counts[PROBE_REFUSED],
                    counts[PROBE_REPORT], counts[PROBE_UNREACHABLE],
                    apr_time_as_msec(apr_time_now() - start));
    if (counts[PROBE_REFUSED] || counts[PROBE_UNREACHABLE]) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_ERR, 0, NULL,
                     RELOGNO(00100) "apachectl -t -D REENCRYPT_PROBE: %d of "
                     "%d backend%s would be refused or cannot be reached",
                     counts[PROBE_REFUSED] + counts[PROBE_UNREACHABLE],
                     probes->nelts, probes->nelts == 1 ? "" : "s");
    }
    apr_file_flush(out);
    if (stuck) {
        /* a thread still waits for a name server and uses this
         * configuration's memory: leave without freeing it */
        _exit(1);
    }
    return counts[PROBE_REFUSED] || counts[PROBE_UNREACHABLE];
}

void reencrypt_dump_test_config(apr_pool_t *pconf, server_rec *s)
{
    int want_dump = ap_exists_config_define("DUMP_REENCRYPT");
    int want_probe = ap_exists_config_define("REENCRYPT_PROBE");
    apr_file_t *out = NULL;
    apr_pool_t *p;

    if ((!want_dump && !want_probe)
        || apr_file_open_stdout(&out, pconf) != APR_SUCCESS) {
        return;
    }
    apr_pool_create(&p, pconf);
    apr_pool_tag(p, "reencrypt_dump");
    if (want_dump) {
        dump(out, p, s);
    }
    if (want_probe
        && ap_state_query(AP_SQ_RUN_MODE) != AP_SQ_RM_CONFIG_TEST) {
        /* -S, -D DUMP_VHOSTS, -D DUMP_RUN_CFG...: httpd reads the
         * configuration without the files it names (trust anchors,
         * CRLs), so there is nothing to verify a backend with */
        apr_file_printf(out, "mod_reencrypt probe: not run with -S or "
                        "another -D DUMP_ of httpd's own, which leave the "
                        "trust anchors unread: run apachectl -t -D "
                        "REENCRYPT_PROBE\n");
        want_probe = 0;
    }
    if (want_probe && probe(out, p, s)) {
        /* the test_config hook returns nothing: the exit status of
         * apachectl -t can only be set by ending the process here,
         * before "Syntax OK" */
        apr_file_flush(out);
        exit(1);
    }
    apr_file_flush(out);
    apr_pool_destroy(p);
}
