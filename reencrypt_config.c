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

#include "apr_file_info.h"
#include "apr_hash.h"
#include "apr_strings.h"
#include "apr_user.h"

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"

#include "ap_provider.h"
#include "ap_slotmem.h"
#include "ap_socache.h"
#include "mod_proxy.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "mod_reencrypt.h"
#include "reencrypt_version.h"
#include "reencrypt_config.h"
#include "reencrypt_notes.h"
#include "reencrypt_session.h"
#include "reencrypt_status.h"

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
    /* merged at start-up (virtual hosts) or for a request: complete */
    reencrypt_policy_freeze(pol);
    return pol;
}

void *reencrypt_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    reencrypt_srv_conf *sc = apr_pcalloc(p, sizeof(*sc));

    (void)s;
    sc->status_backends = REENCRYPT_UNSET;
    return sc;
}

/* ------------------------------------------------------------------ */
/* Directive handlers                                                  */

static const char *where(cmd_parms *cmd)
{
    return apr_psprintf(cmd->pool, "%s:%d",
                        cmd->directive ? cmd->directive->filename : "?",
                        cmd->directive ? cmd->directive->line_num : 0);
}

/* Every directive of REENCRYPT_POLICY_FIELDS: cmd->info is its row */
static const char *set_field(cmd_parms *cmd, void *dcfg, const char *arg)
{
    return reencrypt_field_parse(cmd->pool, cmd->info, arg, dcfg,
                                 where(cmd));
}

/*
 * Files of trust anchors and of CRLs, parsed once and shared:
 *  - within one reading of the configuration, every scope that names a
 *    file gets the same parsed copy (by path, checked again by size and
 *    modification time);
 *  - across readings (httpd reads the configuration twice at start, and
 *    again at each restart), the copy of the previous reading is kept in
 *    the process pool and used again when the file has the same size,
 *    modification time and SHA-256; otherwise it is parsed anew, and the
 *    old copy freed (no configuration refers to it any more).
 * httpd unloads the module when it clears the configuration pool and
 * loads it again for the next reading, not always at the same address:
 * a kept copy holds no pointer to the module's code (no cleanup of the
 * module's on its pool, nothing the next reading would call). Its
 * OpenSSL objects are freed by the module's code of the moment when the
 * copy is replaced, and left to the end of the process otherwise.
 * RE00092 says, at start-up, how many directives share how many files.
 */
typedef const char *file_parse_fn(apr_pool_t *p, const char *directive,
                                  const char *path, const char *buf,
                                  apr_size_t len, const void **out);

/* What is kept of one kind of file, and how (only ever called at once
 * from the module's current code; never stored in a kept copy) */
typedef struct {
    const char *name;           /* "anchors", "crls" */
    file_parse_fn *parse;       /* parsed objects freed by a cleanup... */
    void (*unmanage)(apr_pool_t *p, const void *parsed);  /* ...not now */
    void (*release)(const void *parsed);                  /* frees them */
} file_kind_t;

typedef struct {
    apr_pool_t *pool;           /* the copy's own, from the process pool */
    const void *parsed;
    apr_off_t size;
    apr_time_t mtime;
    unsigned char digest[32];   /* SHA-256 of the file's bytes */
} kept_file_t;

typedef struct {
    apr_hash_t *this_read;      /* this reading's: path -> kept_file_t *
                                 * for files, arguments -> pin set for
                                 * ReencryptPin lines */
    int directives;             /* that named a file */
    int kept;                   /* files taken from the previous reading */
} file_cache_t;

static file_cache_t *file_cache(apr_pool_t *pconf, const char *kind)
{
    const char *key = apr_pstrcat(pconf, "reencrypt-files-", kind, NULL);
    void *data = NULL;
    file_cache_t *fc;

    apr_pool_userdata_get(&data, key, pconf);
    if (data) {
        return data;
    }
    fc = apr_pcalloc(pconf, sizeof(*fc));
    fc->this_read = apr_hash_make(pconf);
    apr_pool_userdata_set(fc, key, apr_pool_cleanup_null, pconf);
    return fc;
}

/* The copies kept in the process pool, by path. The key names the
 * release: another build of the module, loaded by a graceful restart,
 * does not take copies whose layout it may not share. */
static apr_hash_t *kept_files(apr_pool_t *process, apr_pool_t *ptemp,
                              const char *kind)
{
    const char *key = apr_pstrcat(ptemp, "reencrypt-kept-",
                                  REENCRYPT_VERSION "-", kind, NULL);
    void *data = NULL;
    apr_hash_t *h;

    apr_pool_userdata_get(&data, key, process);
    if (data) {
        return data;
    }
    h = apr_hash_make(process);
    apr_pool_userdata_set(h, apr_pstrdup(process, key),
                          apr_pool_cleanup_null, process);
    return h;
}

static int same_file(const kept_file_t *k, apr_off_t size, apr_time_t mtime)
{
    return k && k->size == size && k->mtime == mtime;
}

/* Free a kept copy, with the module's code of the moment */
static void kept_free(const file_kind_t *kind, kept_file_t *k)
{
    kind->release(k->parsed);
    apr_pool_destroy(k->pool);
}

static const char *shared_file(cmd_parms *cmd, const file_kind_t *kind,
                               const char *path, apr_size_t max,
                               const void **out)
{
    apr_pool_t *process = cmd->server->process->pool;
    file_cache_t *fc = file_cache(cmd->pool, kind->name);
    apr_hash_t *kept = kept_files(process, cmd->temp_pool, kind->name);
    kept_file_t *k = apr_hash_get(fc->this_read, path, APR_HASH_KEY_STRING);
    kept_file_t *old;
    unsigned char md[32];
    apr_finfo_t fi;
    apr_pool_t *np;
    char *buf = NULL;
    apr_size_t len = 0;
    const char *err;

    fc->directives++;
    if (k) {
        /* one reading, one copy per path: scopes read earlier hold it,
         * even if the file changed since */
        *out = k->parsed;
        return NULL;
    }
    if ((err = reencrypt_read_file(cmd->temp_pool, cmd->cmd->name, path,
                                   max, &buf, &len, &fi)) != NULL) {
        return apr_pstrdup(cmd->pool, err);
    }
    if (!EVP_Digest(buf, len, md, NULL, EVP_sha256(), NULL)) {
        return apr_psprintf(cmd->pool, "%s: cannot hash '%s'",
                            cmd->cmd->name, path);
    }
    old = apr_hash_get(kept, path, APR_HASH_KEY_STRING);
    if (same_file(old, (apr_off_t)len, fi.mtime)
        && !memcmp(old->digest, md, sizeof(md))) {
        fc->kept++;
        k = old;
    }
    else {
        apr_pool_create(&np, process);
        /* the tag is the pool's own: the module may move */
        apr_pool_tag(np, apr_pstrdup(np, "reencrypt_file"));
        if ((err = kind->parse(np, cmd->cmd->name, path, buf, len, out))
            != NULL) {
            err = apr_pstrdup(cmd->pool, err);
            apr_pool_destroy(np);
            return err;
        }
        kind->unmanage(np, *out);
        k = apr_pcalloc(np, sizeof(*k));
        k->pool = np;
        k->parsed = *out;
        k->size = (apr_off_t)len;
        k->mtime = fi.mtime;
        memcpy(k->digest, md, sizeof(md));
        apr_hash_set(kept, old ? path : apr_pstrdup(process, path),
                     APR_HASH_KEY_STRING, k);
        if (old) {
            kept_free(kind, old);
        }
    }
    apr_hash_set(fc->this_read, apr_pstrdup(cmd->pool, path),
                 APR_HASH_KEY_STRING, k);
    *out = k->parsed;
    return NULL;
}

/* After a reading: free the kept copies of files this reading did not
 * name (the configuration that named them is gone). */
static void forget_unnamed(apr_pool_t *pconf, apr_pool_t *process,
                           apr_pool_t *ptemp, const file_kind_t *kind)
{
    const file_cache_t *fc = file_cache(pconf, kind->name);
    apr_hash_t *kept = kept_files(process, ptemp, kind->name);
    apr_hash_index_t *hi;

    for (hi = apr_hash_first(ptemp, kept); hi; hi = apr_hash_next(hi)) {
        const void *path;
        void *val;
        kept_file_t *k;

        apr_hash_this(hi, &path, NULL, &val);
        k = val;
        if (!apr_hash_get(fc->this_read, path, APR_HASH_KEY_STRING)) {
            apr_hash_set(kept, path, APR_HASH_KEY_STRING, NULL);
            kept_free(kind, k);
        }
    }
}

static const char *parse_anchors(apr_pool_t *p, const char *directive,
                                 const char *path, const char *buf,
                                 apr_size_t len, const void **out)
{
    const reencrypt_anchors_t *a = NULL;
    const char *err = reencrypt_anchors_parse(p, directive, path, buf, len,
                                              &a);

    *out = a;
    return err;
}

static const char *parse_crls(apr_pool_t *p, const char *directive,
                              const char *path, const char *buf,
                              apr_size_t len, const void **out)
{
    const reencrypt_crl_file_t *f = NULL;
    const char *err = reencrypt_crl_file_parse(p, directive, path, buf, len,
                                               &f);

    *out = f;
    return err;
}

static void unmanage_anchors(apr_pool_t *p, const void *parsed)
{
    reencrypt_anchors_unmanage(p, parsed);
}

static void release_anchors(const void *parsed)
{
    reencrypt_anchors_free(parsed);
}

static void unmanage_crls(apr_pool_t *p, const void *parsed)
{
    reencrypt_crl_file_unmanage(p, parsed);
}

static void release_crls(const void *parsed)
{
    reencrypt_crl_file_free(parsed);
}

static const file_kind_t anchors_kind = {
    "anchors", parse_anchors, unmanage_anchors, release_anchors
};
static const file_kind_t crls_kind = {
    "crls", parse_crls, unmanage_crls, release_crls
};

/* Largest files read (the parsers say it again in their own words) */
#define ANCHORS_READ_MAX (16 * 1024 * 1024)
#define CRLS_READ_MAX    (64 * 1024 * 1024)

static const char *set_ca_file(cmd_parms *cmd, void *dcfg, const char *arg)
{
    reencrypt_policy_t *pol = dcfg;
    const void *parsed = NULL;
    const char *path, *err;

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
        pol->anchors_where = where(cmd);
        return NULL;
    }
    pol->anchors_where = where(cmd);
    err = shared_file(cmd, &anchors_kind, path, ANCHORS_READ_MAX, &parsed);
    pol->anchors = parsed;
    return err;
}

static const char *set_crl_file(cmd_parms *cmd, void *dcfg, const char *arg)
{
    reencrypt_policy_t *pol = dcfg;
    const reencrypt_crl_file_t *file;
    const reencrypt_crls_t *set;
    const void *parsed = NULL;
    const char *path, *err;

    path = ap_server_root_relative(cmd->pool, arg);
    if (!path) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a valid path",
                            cmd->cmd->name, arg);
    }
    if (ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_DUMP) {
        /* -D DUMP_CONFIG only prints: do not insist on the file */
        return NULL;
    }
    err = shared_file(cmd, &crls_kind, path, CRLS_READ_MAX, &parsed);
    if (err) {
        return err;
    }
    file = parsed;
    /* several directives in one scope add up; an inner scope replaces */
    set = reencrypt_crls_add(cmd->pool, pol->crls, file, where(cmd));
    if (!set) {
        return apr_psprintf(cmd->pool, "%s: out of memory adding '%s'",
                            cmd->cmd->name, path);
    }
    pol->crls = set;
    return NULL;
}

static const char *set_revocation(cmd_parms *cmd, void *dcfg, int argc,
                                  char *const argv[])
{
    reencrypt_policy_t *pol = dcfg;
    const char *err;

    err = reencrypt_parse_revocation(cmd->pool, argc, argv,
                                     &pol->revocation, &pol->no_crl_ok);
    if (err) {
        return err;
    }
    pol->revocation_where = where(cmd);
    return NULL;
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
        pol->names_where = where(cmd);
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

    pol->sni_where = where(cmd);
    return reencrypt_parse_sni(cmd->pool, arg, &pol->sni_mode,
                               &pol->sni_name);
}

/* A scope's first ReencryptPin line: within one reading, every line with
 * the same arguments gets the same set (10,000 scopes pinning the same
 * keys hold one), parsed once. RE00092 says how many. */
static const char *shared_pins(cmd_parms *cmd, reencrypt_policy_t *pol,
                               int argc, char *const argv[])
{
    file_cache_t *sets = file_cache(cmd->pool, "pins");
    apr_array_header_t *pins;
    const char *key = "", *err;
    int i;

    for (i = 0; i < argc; i++) {
        key = apr_pstrcat(cmd->temp_pool, key, i ? " " : "", argv[i], NULL);
    }
    sets->directives++;
    pins = apr_hash_get(sets->this_read, key, APR_HASH_KEY_STRING);
    if (!pins) {
        pins = apr_array_make(cmd->pool, argc, sizeof(reencrypt_pin_t));
        for (i = 0; i < argc; i++) {
            if ((err = reencrypt_parse_pins(cmd->temp_pool, argv[i],
                                            pins))) {
                return apr_pstrdup(cmd->pool, err);
            }
        }
        apr_hash_set(sets->this_read, apr_pstrdup(cmd->pool, key),
                     APR_HASH_KEY_STRING, pins);
    }
    pol->pins = pins;
    pol->pins_where = where(cmd);
    return NULL;
}

static const char *set_pin(cmd_parms *cmd, void *dcfg, int argc,
                           char *const argv[])
{
    reencrypt_policy_t *pol = dcfg;
    const char *err;
    int i;

    if (argc < 1) {
        return apr_psprintf(cmd->pool, "%s: needs at least one pin",
                            cmd->cmd->name);
    }
    if (argc == 1 && !strcasecmp(argv[0], "none")) {
        /* an inner scope that wants no pinning at all */
        if (pol->pins && pol->pins->nelts) {
            return apr_psprintf(cmd->pool, "%s: 'none' cannot go with pins "
                                "in the same scope", cmd->cmd->name);
        }
        pol->pins = apr_array_make(cmd->pool, 1, sizeof(reencrypt_pin_t));
        pol->pins_where = where(cmd);
        return NULL;
    }
    if (pol->pins && pol->pins->nelts == 0) {
        return apr_psprintf(cmd->pool, "%s: pins cannot go with 'none' in "
                            "the same scope", cmd->cmd->name);
    }
    /* several directives in one scope add up (to a copy of the set, which
     * other scopes may share); an inner scope replaces */
    if (pol->pins) {
        pol->pins = apr_array_copy(cmd->pool, pol->pins);
        for (i = 0; i < argc; i++) {
            if ((err = reencrypt_parse_pins(cmd->pool, argv[i],
                                            pol->pins))) {
                return err;
            }
        }
        return NULL;
    }
    return shared_pins(cmd, pol, argc, argv);
}

static const char *set_session_cache(cmd_parms *cmd, void *dcfg,
                                     const char *arg)
{
    reencrypt_srv_conf *sc = ap_get_module_config(cmd->server->module_config,
                                                  &reencrypt_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *colon;

    (void)dcfg;
    if (err) {
        return err;
    }
    colon = ap_strchr_c(arg, ':');
    if (!*arg || colon == arg) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not none or "
                            "<provider>[:<arguments>] (shmcb, memcache, "
                            "redis, ...)", cmd->cmd->name, arg);
    }
    sc->session_cache = arg;
    sc->session_cache_where = where(cmd);
    return NULL;
}

/* Largest key file read: a few keys and comments. */
#define SESSION_KEY_FILE_MAX 16384

static apr_status_t keys_cleanup(void *data)
{
    OPENSSL_cleanse(data, sizeof(reencrypt_seal_keys_t));
    return APR_SUCCESS;
}

static const char *set_session_cache_key(cmd_parms *cmd, void *dcfg,
                                         const char *arg)
{
    reencrypt_srv_conf *sc = ap_get_module_config(cmd->server->module_config,
                                                  &reencrypt_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *path;
    reencrypt_seal_keys_t *keys;
    apr_finfo_t info;
    apr_size_t len = 0;
    char *text = NULL;

    (void)dcfg;
    if (err) {
        return err;
    }
    if (sc->session_key_file || sc->session_key_none) {
        return apr_psprintf(cmd->pool, "%s: already set to '%s'; one key "
                            "file holds every key (up to 8)", cmd->cmd->name,
                            sc->session_key_none ? "none"
                                                 : sc->session_key_file);
    }
    if (!strcasecmp(arg, "none")) {
        /* the explicit choice to trust a cache as it is */
        sc->session_key_none = 1;
        sc->session_key_where = where(cmd);
        return NULL;
    }
    if (!(path = ap_server_root_relative(cmd->pool, arg))) {
        return apr_psprintf(cmd->pool, "%s: invalid file path '%s'",
                            cmd->cmd->name, arg);
    }
    if ((err = reencrypt_read_file(cmd->temp_pool, cmd->cmd->name, path,
                                   SESSION_KEY_FILE_MAX, &text, &len,
                                   &info)) != NULL) {
        return apr_pstrdup(cmd->pool, err);
    }
    keys = apr_palloc(cmd->pool, sizeof(*keys));
    apr_pool_cleanup_register(cmd->pool, keys, keys_cleanup,
                              apr_pool_cleanup_null);
    err = reencrypt_seal_keys_parse(cmd->temp_pool, text, len, keys);
    OPENSSL_cleanse(text, len);
    if (err) {
        return apr_psprintf(cmd->pool, "%s: '%s', %s", cmd->cmd->name, path,
                            err);
    }
    sc->session_key_file = path;
    sc->session_key_where = where(cmd);
    sc->session_keys = keys;
    sc->session_key_perms = info.protection;
    sc->session_key_group = info.group;
    return NULL;
}

static const char *set_status_backends(cmd_parms *cmd, void *dcfg,
                                       const char *arg)
{
    reencrypt_srv_conf *sc = ap_get_module_config(cmd->server->module_config,
                                                  &reencrypt_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dcfg;
    if (err) {
        return err;
    }
    sc->status_backends_where = where(cmd);
    return reencrypt_parse_int(cmd->pool, cmd->cmd->name, arg, 0,
                               REENCRYPT_STATUS_BACKENDS_MAX,
                               &sc->status_backends);
}

/* ------------------------------------------------------------------ */
/* mod_ssl's directives, read by the module too                        */

/* httpd hands a directive to every module that declares it, one after
 * the other until one of them returns an error (server/config.c,
 * ap_walk_config_sub), so the module reads these with the arguments and
 * in the scopes mod_ssl reads them, whatever the LoadModule order. The
 * handlers only take note: what is wrong with a value is mod_ssl's to
 * say, and mod_ssl must be loaded for them to mean anything. */

/* Largest certificate file digested */
#define CLIENT_CERT_FILE_MAX (1024 * 1024)

static const char *need_mod_ssl(cmd_parms *cmd)
{
    if (!ap_find_linked_module("mod_ssl.c")) {
        return apr_psprintf(cmd->pool, "%s is a directive of mod_ssl, which "
                            "is not loaded (LoadModule ssl_module ...)",
                            cmd->cmd->name);
    }
    return NULL;
}

static void digest_cert_file(apr_pool_t *p, EVP_MD_CTX *md,
                             const char *directive, const char *path)
{
    char *text = NULL;
    apr_size_t len = 0;

    EVP_DigestUpdate(md, "file", 5);
    if (reencrypt_read_file(p, directive, path, CLIENT_CERT_FILE_MAX, &text,
                            &len, NULL) != NULL
        || reencrypt_digest_pem_certs(md, text, len) == 0) {
        /* mod_ssl refuses it, or loads no certificate from it: tell it
         * from any other by its name */
        EVP_DigestUpdate(md, path, strlen(path) + 1);
    }
    if (text) {
        OPENSSL_cleanse(text, len);     /* it may hold the private key */
    }
}

/* The SHA-256 of the certificates a client certificate directive names
 * (a file, or every file of a directory, in the order mod_ssl reads
 * them: ssl_engine_init.c, ssl_init_ca_cert_path). */
static const unsigned char *client_certs_id(cmd_parms *cmd, const char *arg,
                                            int is_dir)
{
    const char *path = ap_server_root_relative(cmd->temp_pool, arg);
    unsigned char *id = apr_pcalloc(cmd->pool, REENCRYPT_CLIENT_ID_LEN);
    unsigned int idlen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    apr_dir_t *dir;
    apr_finfo_t fi;

    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(md);
        return NULL;
    }
    EVP_DigestUpdate(md, cmd->cmd->name, strlen(cmd->cmd->name) + 1);
    if (!path || ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_DUMP) {
        EVP_DigestUpdate(md, arg, strlen(arg) + 1);
    }
    else if (!is_dir) {
        digest_cert_file(cmd->temp_pool, md, cmd->cmd->name, path);
    }
    else if (apr_dir_open(&dir, path, cmd->temp_pool) == APR_SUCCESS) {
        while (apr_dir_read(&fi, APR_FINFO_TYPE | APR_FINFO_NAME, dir)
               == APR_SUCCESS) {
            if (fi.filetype != APR_DIR) {
                digest_cert_file(cmd->temp_pool, md, cmd->cmd->name,
                                 apr_pstrcat(cmd->temp_pool, path, "/",
                                             fi.name, NULL));
            }
        }
        apr_dir_close(dir);
    }
    else {
        EVP_DigestUpdate(md, path, strlen(path) + 1);
    }
    if (!EVP_DigestFinal_ex(md, id, &idlen)
        || idlen != REENCRYPT_CLIENT_ID_LEN) {
        id = NULL;
    }
    EVP_MD_CTX_free(md);
    return id;
}

static const char *note_client_certs(cmd_parms *cmd, void *dcfg,
                                     const char *arg)
{
    reencrypt_policy_t *pol = dcfg;
    const char *name = cmd->cmd->name;
    const unsigned char *id;
    const char *err, *file;

    if ((err = need_mod_ssl(cmd)) != NULL) {
        return err;
    }
    id = client_certs_id(cmd, arg, !strcasecmp(name,
                                       "SSLProxyMachineCertificatePath"));
    if (!id) {
        return apr_psprintf(cmd->pool, "%s: cannot compute a digest",
                            name);
    }
    file = ap_server_root_relative(cmd->pool, arg);
    if (!strcasecmp(name, "SSLProxyMachineCertificateFile")) {
        pol->client_cert_file = id;
        pol->client_cert_file_name = file;
    }
    else if (!strcasecmp(name, "SSLProxyMachineCertificatePath")) {
        pol->client_cert_path = id;
        pol->client_cert_path_name = file;
    }
    else {
        pol->client_chain_file = id;
        pol->client_chain_file_name = file;
    }
    return NULL;
}

static const char *note_check_peer_expire(cmd_parms *cmd, void *dcfg,
                                          int flag)
{
    reencrypt_policy_t *pol = dcfg;
    const char *err;

    if ((err = need_mod_ssl(cmd)) != NULL) {
        return err;
    }
    pol->ssl_check_peer_expire = flag ? 1 : 0;
    return NULL;
}

/* mod_ssl's revocation settings for backends: a policy does not use
 * them (its own verification replaces mod_ssl's), so where a policy is
 * on they are refused at startup (check_scope) rather than ignored. */
static const char *note_ssl_crl(cmd_parms *cmd, void *dcfg, const char *arg)
{
    reencrypt_policy_t *pol = dcfg;
    const char *name = cmd->cmd->name;
    const char *err;

    if ((err = need_mod_ssl(cmd)) != NULL) {
        return err;
    }
    if (!strcasecmp(name, "SSLProxyCARevocationFile")) {
        pol->ssl_crl_file_where = where(cmd);
    }
    else if (!strcasecmp(name, "SSLProxyCARevocationPath")) {
        pol->ssl_crl_path_where = where(cmd);
    }
    else {
        /* mod_ssl's modes: none, leaf, chain, each with an optional
         * no_crl_for_cert_ok; only none checks nothing */
        const char *mode = ap_getword_conf(cmd->temp_pool, &arg);

        pol->ssl_crl_check = strcasecmp(mode, "none") ? 1 : 0;
        pol->ssl_crl_check_where = where(cmd);
    }
    return NULL;
}

#define RE_SCOPE (RSRC_CONF | ACCESS_CONF | PROXY_CONF)
/* mod_ssl's scope for its proxy directives (mod_ssl.c, SSL_CMD_PXY) */
#define SSL_PROXY_SCOPE (RSRC_CONF | PROXY_CONF)

/* A row of REENCRYPT_POLICY_FIELDS as httpd's command table has it */
#define RE_FIELD_CMD(id, member, where_off, kind, directive, min, max,    \
                     keywords, dflt, in_id, help)                         \
    AP_INIT_TAKE1(directive, set_field,                                   \
                  (void *)&reencrypt_fields[REENCRYPT_F_##id], RE_SCOPE,  \
                  help),

const command_rec reencrypt_cmds[] = {
    REENCRYPT_POLICY_FIELDS(RE_FIELD_CMD)
    AP_INIT_TAKE1("ReencryptCACertificateFile", set_ca_file, NULL, RE_SCOPE,
                  "PEM file of the trust anchors for backend chains"),
    AP_INIT_TAKE1("ReencryptCARevocationFile", set_crl_file, NULL, RE_SCOPE,
                  "file of CRLs (PEM or DER, one or more) for backend "
                  "chains; may repeat"),
    AP_INIT_TAKE_ARGV("ReencryptRevocationCheck", set_revocation, NULL,
                  RE_SCOPE,
                  "Chain|Leaf|Off [NoCRLForCertOK]: which certificates are "
                  "checked against the CRLs (default Chain with CRLs, Off "
                  "without)"),
    AP_INIT_TAKE_ARGV("ReencryptVerifyName", set_verify_name, NULL, RE_SCOPE,
                  "names (DNS or IP) the backend certificate must carry, "
                  "any of them (default: the SNI sent, else the backend "
                  "host)"),
    AP_INIT_TAKE1("ReencryptSNI", set_sni, NULL, RE_SCOPE,
                  "Backend|Host|Off|<name>: SNI sent to the backend "
                  "(default Backend)"),
    AP_INIT_TAKE_ARGV("ReencryptPin", set_pin, NULL, RE_SCOPE,
                  "sha256//<base64> ...|none: SPKI pins, any of them must "
                  "match; none: no pinning in this scope"),
    AP_INIT_TAKE1("ReencryptSessionCache", set_session_cache, NULL, RSRC_CONF,
                  "none|<provider>[:<args>]: where backend sessions are "
                  "kept (default shmcb)"),
    AP_INIT_TAKE1("ReencryptSessionCacheKey", set_session_cache_key, NULL,
                  RSRC_CONF,
                  "file of keys (base64 of 32 bytes, one per line; the "
                  "first seals): seal the entries of the session cache"),
    AP_INIT_TAKE1("ReencryptStatusBackends", set_status_backends, NULL,
                  RSRC_CONF,
                  "0..16384: backends (backend and SNI) with statistics "
                  "(default 64, 0 turns statistics off)"),
    /* mod_ssl's, read by the module too (see note_client_certs) */
    AP_INIT_TAKE1("SSLProxyMachineCertificateFile", note_client_certs, NULL,
                  SSL_PROXY_SCOPE,
                  "mod_ssl's; mod_reencrypt keeps what it presents apart"),
    AP_INIT_TAKE1("SSLProxyMachineCertificatePath", note_client_certs, NULL,
                  SSL_PROXY_SCOPE,
                  "mod_ssl's; mod_reencrypt keeps what it presents apart"),
    AP_INIT_TAKE1("SSLProxyMachineCertificateChainFile", note_client_certs,
                  NULL, SSL_PROXY_SCOPE,
                  "mod_ssl's; mod_reencrypt keeps what it presents apart"),
    AP_INIT_FLAG("SSLProxyCheckPeerExpire", note_check_peer_expire, NULL,
                 SSL_PROXY_SCOPE,
                 "mod_ssl's; mod_reencrypt warns where it overrides "
                 "ReencryptClockSkew or ReencryptMode Report"),
    AP_INIT_TAKE1("SSLProxyCARevocationFile", note_ssl_crl, NULL,
                  SSL_PROXY_SCOPE,
                  "mod_ssl's; refused under a policy: use "
                  "ReencryptCARevocationFile"),
    AP_INIT_TAKE1("SSLProxyCARevocationPath", note_ssl_crl, NULL,
                  SSL_PROXY_SCOPE,
                  "mod_ssl's; refused under a policy: use "
                  "ReencryptCARevocationFile"),
    AP_INIT_RAW_ARGS("SSLProxyCARevocationCheck", note_ssl_crl, NULL,
                     SSL_PROXY_SCOPE,
                     "mod_ssl's; refused under a policy (but 'none'): use "
                     "ReencryptRevocationCheck"),
    { NULL }
};

/* ------------------------------------------------------------------ */
/* Startup checks                                                      */

/* What the startup checks remember between scopes. */
typedef struct {
    apr_hash_t *warned;         /* "file:line" already warned about */
    int warn;                   /* say the warnings in this pass */
    int any_warn_window;        /* a ReencryptWarnExpiringWithin is set */
    int any_policy;             /* some scope turns the engine on */
    /* with crl_files: the CRL files of the policies, each once
     * (reencrypt_crl_watch_t), and where each is in it (by address) */
    apr_array_header_t *crl_files;
    apr_hash_t *crl_index;
} check_ctx_t;

static const char *scope_name(apr_pool_t *p, server_rec *s)
{
    if (s->defn_name) {
        return apr_psprintf(p, "<VirtualHost> at %s:%u", s->defn_name,
                            s->defn_line_number);
    }
    return "the main server";
}

/* Several scopes inherit the same directive: warn about it once. */
static int first_time(check_ctx_t *cx, apr_pool_t *ptemp, const char *key)
{
    if (!key || apr_hash_get(cx->warned, key, APR_HASH_KEY_STRING)) {
        return 0;
    }
    apr_hash_set(cx->warned, apr_pstrdup(ptemp, key), APR_HASH_KEY_STRING,
                 "");
    return 1;
}

/* mod_ssl's revocation directives in effect where a policy is on: the
 * policy verifies backends itself and would not use them, so refuse
 * them with the directive to use instead. */
static const char *ssl_crl_conflict(apr_pool_t *p,
                                    const reencrypt_policy_t *pol)
{
    const char *name = NULL, *at = NULL, *instead = NULL;

    if (pol->ssl_crl_file_where) {
        name = "SSLProxyCARevocationFile";
        at = pol->ssl_crl_file_where;
        instead = "ReencryptCARevocationFile (PEM or DER CRLs)";
    }
    else if (pol->ssl_crl_path_where) {
        name = "SSLProxyCARevocationPath";
        at = pol->ssl_crl_path_where;
        instead = "ReencryptCARevocationFile, once per CRL file";
    }
    else if (pol->ssl_crl_check == 1) {
        name = "SSLProxyCARevocationCheck";
        at = pol->ssl_crl_check_where;
        instead = "ReencryptRevocationCheck Chain|Leaf [NoCRLForCertOK] "
                  "with ReencryptCARevocationFile";
    }
    if (!name) {
        return NULL;
    }
    return apr_psprintf(p, "%s at %s is not used for backends verified by "
                        "mod_reencrypt, which would let revoked backend "
                        "certificates through: use %s instead, and remove "
                        "%s from this scope", name, at, instead, name);
}

/* The CRL files of a policy that is on, into the list of the status
 * views: each file once, however many scopes name it, with the largest
 * warning window of the policies that check backends against it. */
static void collect_crls(check_ctx_t *cx, const reencrypt_policy_t *pol)
{
    apr_int64_t window = reencrypt_policy_warn_within(pol);
    int checks = reencrypt_policy_revocation(pol)
                 != REENCRYPT_REVOCATION_OFF;
    int i;

    for (i = 0; pol->crls && i < pol->crls->files->nelts; i++) {
        const reencrypt_crl_file_t *f = APR_ARRAY_IDX(pol->crls->files, i,
                                            const reencrypt_crl_file_t *);
        apr_pool_t *hp = apr_hash_pool_get(cx->crl_index);
        reencrypt_crl_watch_t *w;
        int *at = apr_hash_get(cx->crl_index, &f, sizeof(f));

        if (!at) {
            const reencrypt_crl_file_t **key = apr_palloc(hp, sizeof(*key));

            w = apr_array_push(cx->crl_files);
            w->file = f;
            w->warn_within = 0;
            *key = f;
            at = apr_palloc(hp, sizeof(*at));
            *at = cx->crl_files->nelts - 1;
            apr_hash_set(cx->crl_index, key, sizeof(*key), at);
        }
        w = &APR_ARRAY_IDX(cx->crl_files, *at, reencrypt_crl_watch_t);
        if (checks && window > w->warn_within) {
            w->warn_within = window;
        }
    }
}

/* Check the effective policy of one scope. A scope where the engine is
 * on must be able to trust something: a policy with nothing to trust
 * would refuse every backend at run time. */
/* The warnings about a policy that works but may not do what its
 * author meant (each said once, in the pass that says warnings) */
static void warn_scope(check_ctx_t *cx, server_rec *s,
                       const reencrypt_policy_t *pol, apr_pool_t *ptemp)
{
    if (pol->pins && pol->pins->nelts == 1) {
        /* RFC 7469 2.5: a pin set needs a backup pin, or a key change
         * on the backend is an outage */
        if (first_time(cx, ptemp, pol->pins_where)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, RELOGNO(00007)
                         "ReencryptPin at %s has a single pin: add a backup "
                         "pin (the key the backend will move to next, RFC "
                         "7469 section 2.5) so that a key change is not an "
                         "outage", pol->pins_where);
        }
    }
    if (!reencrypt_policy_check_name(pol)
        && reencrypt_policy_trust(pol) == REENCRYPT_TRUST_ANCHORS
        && !(pol->pins && pol->pins->nelts)) {
        if (first_time(cx, ptemp, pol->engine_where)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, RELOGNO(00008)
                         "ReencryptCheckName Off with ReencryptEngine On at "
                         "%s and no pin: any certificate issued under the "
                         "trust anchors is accepted", pol->engine_where);
        }
    }
    if (pol->ssl_check_peer_expire != 0) {
        /* mod_ssl's own validity check (on by default) runs after the
         * policy and knows neither leniency: it refuses what they let
         * through (RE00020 at run time) */
        const char *lenient = NULL, *at = NULL;

        if (reencrypt_policy_mode(pol) == REENCRYPT_MODE_REPORT) {
            lenient = "ReencryptMode Report";
            at = pol->mode_where;
        }
        else if (reencrypt_policy_clock_skew(pol) > 0) {
            lenient = "ReencryptClockSkew";
            at = pol->skew_where;
        }
        if (lenient && first_time(cx, ptemp, apr_pstrcat(ptemp, "expire:",
                                                         at, NULL))) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, RELOGNO(00035)
                         "%s at %s (in %s): mod_ssl's "
                         "SSLProxyCheckPeerExpire is %s there and refuses "
                         "an expired or not yet valid backend certificate "
                         "before this setting can let it through: set "
                         "'SSLProxyCheckPeerExpire Off' in that scope (the "
                         "policy checks validity itself)", lenient,
                         at ? at : "?", scope_name(ptemp, s),
                         pol->ssl_check_peer_expire == 1 ? "On"
                                                         : "On by default");
        }
    }
    if (reencrypt_policy_sni_mode(pol) == REENCRYPT_SNI_HOST
        && !(pol->verify_names && pol->verify_names->nelts)
        && reencrypt_policy_check_name(pol)) {
        /* the name checked is the SNI, and the SNI is the client's */
        if (first_time(cx, ptemp, pol->sni_where)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, RELOGNO(00050)
                         "ReencryptSNI Host at %s without "
                         "ReencryptVerifyName: the client's Host header "
                         "chooses the name the backend certificate is "
                         "checked against; set ReencryptVerifyName to the "
                         "names the backend must carry", pol->sni_where);
        }
    }
}

static int check_scope(check_ctx_t *cx, server_rec *s,
                       const reencrypt_policy_t *base,
                       ap_conf_vector_t *sec, apr_pool_t *ptemp)
{
    const reencrypt_policy_t *pol = base;
    reencrypt_policy_t merged;
    const char *err;

    if (sec) {
        const reencrypt_policy_t *add = ap_get_module_config(sec,
                                                     &reencrypt_module);
        if (!add) {
            return OK;
        }
        reencrypt_policy_merge(&merged, base, add);
        pol = &merged;
    }
    if (!reencrypt_policy_enabled(pol)) {
        return OK;
    }
    if ((err = reencrypt_policy_lint(ptemp, pol)) != NULL) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                     RELOGNO(00004) "ReencryptEngine On at %s (in %s) %s",
                     pol->engine_where ? pol->engine_where : "?",
                     scope_name(ptemp, s), err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if ((err = ssl_crl_conflict(ptemp, pol)) != NULL) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                     RELOGNO(00070) "%s (ReencryptEngine On at %s, in %s)",
                     err, pol->engine_where ? pol->engine_where : "?",
                     scope_name(ptemp, s));
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (cx->warn) {
        warn_scope(cx, s, pol, ptemp);
    }
    if (reencrypt_policy_warn_within(pol) > 0) {
        cx->any_warn_window = 1;
    }
    if (cx->crl_files) {
        collect_crls(cx, pol);
    }
    cx->any_policy = 1;
    return OK;
}

static int check_sections(check_ctx_t *cx, server_rec *s,
                          const reencrypt_policy_t *base,
                          apr_array_header_t *secs, apr_pool_t *ptemp)
{
    int i;

    for (i = 0; secs && i < secs->nelts; i++) {
        int rv = check_scope(cx, s, base,
                             APR_ARRAY_IDX(secs, i, ap_conf_vector_t *),
                             ptemp);
        if (rv != OK) {
            return rv;
        }
    }
    return OK;
}

/* Walk every scope of every server: the servers' own, <Location>,
 * <Directory> and <Proxy> sections, each merged over its server. */
static int walk_scopes(check_ctx_t *cx, server_rec *s, apr_pool_t *ptemp)
{
    module *proxy = ap_find_linked_module("mod_proxy.c");
    server_rec *vs;
    int rv;

    cx->warned = apr_hash_make(ptemp);
    cx->any_warn_window = 0;
    cx->any_policy = 0;
    for (vs = s; vs; vs = vs->next) {
        const reencrypt_policy_t *base = reencrypt_policy_of(NULL, vs);
        core_server_config *core = ap_get_core_module_config(
                                       vs->module_config);

        if ((rv = check_scope(cx, vs, base, NULL, ptemp)) != OK
            || (rv = check_sections(cx, vs, base, core->sec_url, ptemp))
               != OK
            || (rv = check_sections(cx, vs, base, core->sec_dir, ptemp))
               != OK) {
            return rv;
        }
        if (proxy) {
            proxy_server_conf *psf = ap_get_module_config(vs->module_config,
                                                          proxy);
            if (psf && (rv = check_sections(cx, vs, base, psf->sec_proxy,
                                            ptemp)) != OK) {
                return rv;
            }
        }
    }
    return OK;
}

/* The shared-memory providers the configuration needs must be loaded:
 * say so here, where apachectl -t sees it, not at post_config. */
static int check_providers(const check_ctx_t *cx, server_rec *s,
                           apr_pool_t *ptemp)
{
    const reencrypt_srv_conf *sc = ap_get_module_config(s->module_config,
                                                        &reencrypt_module);
    const char *spec = sc->session_cache ? sc->session_cache : "shmcb";
    const char *name, *args;

    if (!cx->any_policy) {
        return OK;
    }
    if (strcasecmp(spec, "none")) {
        name = reencrypt_cache_provider(ptemp, spec, &args);
        if (!ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name,
                                AP_SOCACHE_PROVIDER_VERSION)) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                         RELOGNO(00021) "ReencryptSessionCache %s: no "
                         "socache provider '%s' is loaded: add 'LoadModule "
                         "socache_%s_module modules/mod_socache_%s.so' (on "
                         "Debian: a2enmod socache_%s), or say "
                         "'ReencryptSessionCache none'",
                         spec, name, name, name, name);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (reencrypt_cache_is_networked(ptemp, spec) && !sc->session_keys
            && !sc->session_key_none) {
            /* whoever can write to the cache could make this server
             * resume a session of their choosing with a backend */
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                         RELOGNO(00033) "ReencryptSessionCache %s: a "
                         "session cache outside this machine's shared "
                         "memory must be sealed: set "
                         "'ReencryptSessionCacheKey <file>' with a key "
                         "the servers sharing the cache hold (see "
                         "docs/sessions.md), or "
                         "'ReencryptSessionCacheKey none' to trust "
                         "whatever the cache holds", spec);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    if (cx->any_warn_window
        && !ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, "shmcb",
                               AP_SOCACHE_PROVIDER_VERSION)) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                     RELOGNO(00009) "ReencryptWarnExpiringWithin needs the "
                     "shmcb shared cache: add 'LoadModule "
                     "socache_shmcb_module modules/mod_socache_shmcb.so' (on "
                     "Debian: a2enmod socache_shmcb)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (sc->status_backends > 0
        && !ap_lookup_provider(AP_SLOTMEM_PROVIDER_GROUP, "shm",
                               AP_SLOTMEM_PROVIDER_VERSION)) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                     RELOGNO(00026) "ReencryptStatusBackends %d needs shared "
                     "memory slots: add 'LoadModule slotmem_shm_module "
                     "modules/mod_slotmem_shm.so' (on Debian: a2enmod "
                     "slotmem_shm)", sc->status_backends);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* APR's permission bits (APR_FPROT_*, one hexadecimal digit each for
 * user, group and others) as the octal mode chmod takes. */
static unsigned int unix_mode(apr_fileperms_t perms)
{
    return (((perms >> 8) & 7) << 6) | (((perms >> 4) & 7) << 3)
           | (perms & 7);
}

/* The session cache's exposure: a key file of ReencryptSessionCacheKey
 * that another user can read gives away what the key protects. Only
 * the parent process reads it, while it reads the configuration (as
 * root, before the children switch to User and Group), so neither its
 * group nor the others need to: the file of every user is RE00031, the
 * file of a group (any group: the children's, root's, a team's) is
 * RE00055. Sessions kept unsealed in a cache others can reach (the
 * explicit choice of 'ReencryptSessionCacheKey none') can be read and
 * planted: said at every start. */
static void warn_session_cache(const check_ctx_t *cx, server_rec *s,
                               apr_pool_t *ptemp)
{
    const reencrypt_srv_conf *sc = ap_get_module_config(s->module_config,
                                                        &reencrypt_module);
    char *group;

    if (sc->session_keys && (sc->session_key_perms & APR_FPROT_WREAD)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, RELOGNO(00031)
                     "ReencryptSessionCacheKey %s is readable by every "
                     "user: make it readable by root only (chmod 600)",
                     sc->session_key_file);
    }
    else if (sc->session_keys
             && (sc->session_key_perms & APR_FPROT_GREAD)) {
        if (apr_gid_name_get(&group, sc->session_key_group, ptemp)
            != APR_SUCCESS) {
            group = apr_psprintf(ptemp, "%lu",
                                 (unsigned long)sc->session_key_group);
        }
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, RELOGNO(00055)
                     "ReencryptSessionCacheKey %s is readable by group %s "
                     "(mode %04o): only the server's parent process reads "
                     "it, at start-up, so no group needs to: make it "
                     "readable by its owner only (chmod 600) and owned by "
                     "root", sc->session_key_file, group,
                     unix_mode(sc->session_key_perms));
    }
    if (cx->any_policy && sc->session_key_none
        && reencrypt_cache_is_networked(ptemp, sc->session_cache)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, RELOGNO(00034)
                     "ReencryptSessionCacheKey none: backend sessions in "
                     "ReencryptSessionCache %s are stored and used "
                     "unsealed: whoever can read that cache learns their "
                     "secrets, and whoever can write to it can make this "
                     "server resume a session of their choosing with a "
                     "backend, with no verified handshake",
                     sc->session_cache);
    }
}

/* mod_ssl gives every <Proxy> section with a directive of its own a
 * proxy context, completed from its server's settings, not from other
 * sections (ssl_engine_init.c, ssl_proxy_section_post_config), which
 * replaces the accumulated one when the section is merged for a request
 * (ssl_config_perdir_merge). Mark and complete the module's record of
 * those sections the same way, so that what the module takes as the
 * scope's client certificate is what mod_ssl presents there. Such a
 * section is the one where mod_ssl's own record exists. */
static void settle_ssl_sections(apr_pool_t *pconf, server_rec *s)
{
    module *ssl = ap_find_linked_module("mod_ssl.c");
    module *proxy = ap_find_linked_module("mod_proxy.c");
    server_rec *vs;
    int i;

    if (!ssl || !proxy) {
        return;
    }
    for (vs = s; vs; vs = vs->next) {
        proxy_server_conf *psf = ap_get_module_config(vs->module_config,
                                                      proxy);
        const reencrypt_policy_t *server = reencrypt_policy_of(NULL, vs);

        for (i = 0; psf && psf->sec_proxy && i < psf->sec_proxy->nelts;
             i++) {
            ap_conf_vector_t *sec = APR_ARRAY_IDX(psf->sec_proxy, i,
                                                  ap_conf_vector_t *);
            reencrypt_policy_t *pol;

            if (!ap_get_module_config(sec, ssl)) {
                continue;           /* mod_ssl has nothing of its own here */
            }
            if (!(pol = ap_get_module_config(sec, &reencrypt_module))) {
                pol = reencrypt_create_dir_conf(pconf, NULL);
                ap_set_module_config(sec, &reencrypt_module, pol);
            }
            reencrypt_policy_ssl_section(pol, server);
        }
    }
}

int reencrypt_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *s)
{
    check_ctx_t cx;
    int rv;

    (void)plog;
    memset(&cx, 0, sizeof(cx));
    settle_ssl_sections(pconf, s);
    /* Warnings go to the error log from post_config, once it is open;
     * only apachectl -t shows them here, on its standard error. */
    cx.warn = (ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST);
    if ((rv = walk_scopes(&cx, s, ptemp)) != OK
        || (rv = check_providers(&cx, s, ptemp)) != OK) {
        return rv;
    }
    reencrypt_notes_want(cx.any_warn_window);
    reencrypt_session_want(cx.any_policy);
    reencrypt_status_want(cx.any_policy);
    if (cx.warn) {
        warn_session_cache(&cx, s, ptemp);
    }
    return OK;
}

int reencrypt_config_warnings(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s)
{
    check_ctx_t cx;

    (void)pconf;
    (void)plog;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    memset(&cx, 0, sizeof(cx));
    cx.warn = 1;
    walk_scopes(&cx, s, ptemp);     /* errors were said by check_config */
    warn_session_cache(&cx, s, ptemp);
    return OK;
}

/* Once a reading is complete: say what its scopes share (RE00092), and
 * free the kept copies of files it no longer names. */
int reencrypt_config_shared_files(apr_pool_t *pconf, apr_pool_t *plog,
                                  apr_pool_t *ptemp, server_rec *s)
{
    const file_cache_t *ac = file_cache(pconf, "anchors");
    const file_cache_t *pc = file_cache(pconf, "pins");

    (void)plog;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, RELOGNO(00092)
                 "trust anchors: %d ReencryptCACertificateFile directives "
                 "share %u files (%d kept from the previous reading of the "
                 "configuration); pins: %d ReencryptPin directives share "
                 "%u pin sets", ac->directives,
                 apr_hash_count(ac->this_read), ac->kept, pc->directives,
                 apr_hash_count(pc->this_read));
    forget_unnamed(pconf, s->process->pool, ptemp, &anchors_kind);
    forget_unnamed(pconf, s->process->pool, ptemp, &crls_kind);
    return OK;
}

/* ------------------------------------------------------------------ */
/* CRL files: the list of the status views, and their expiry warning   */

/* After the notes cache exists (reencrypt_notes_post_config): list the
 * CRL files of every policy for the status views, and say RE00082 for
 * each CRL (file and issuer) whose nextUpdate is within the warning
 * window of a policy that checks against it. Marked as said in the
 * notes cache, so that handshakes say it again a day later only. */
int reencrypt_crl_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *s)
{
    apr_time_t now = apr_time_now();
    const apr_array_header_t *crl_files;
    apr_hash_t *said;
    check_ctx_t cx;
    int i, j;

    (void)plog;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    memset(&cx, 0, sizeof(cx));
    cx.crl_files = apr_array_make(pconf, 4, sizeof(reencrypt_crl_watch_t));
    cx.crl_index = apr_hash_make(ptemp);
    walk_scopes(&cx, s, ptemp);     /* errors were said by check_config */
    crl_files = cx.crl_files;
    reencrypt_status_set_crl_files(pconf, crl_files);
    said = apr_hash_make(ptemp);
    for (i = 0; i < crl_files->nelts; i++) {
        const reencrypt_crl_watch_t *w = &APR_ARRAY_IDX(crl_files, i,
                                                  reencrypt_crl_watch_t);

        for (j = 0; w->warn_within > 0 && j < w->file->info->nelts; j++) {
            const reencrypt_crl_info_t *crl = &APR_ARRAY_IDX(
                w->file->info, j, reencrypt_crl_info_t);
            const char *once;

            if (!crl->next_update
                || (apr_int64_t)crl->next_update
                   - (apr_int64_t)apr_time_sec(now) >= w->warn_within) {
                continue;
            }
            once = apr_pstrcat(ptemp, w->file->path, "\n", crl->issuer,
                               NULL);
            if (!apr_hash_get(said, once, APR_HASH_KEY_STRING)) {
                apr_hash_set(said, once, APR_HASH_KEY_STRING, "");
                reencrypt_notes_crl_warn(s, w->file->path, crl, w->warn_within,
                                   now, ptemp);
            }
            reencrypt_notes_first(s, reencrypt_notes_crl_key(ptemp, crl),
                                  apr_time_from_sec(86400), ptemp);
        }
    }
    return OK;
}
