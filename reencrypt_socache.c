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
 * reencrypt_socache.c: an httpd socache (ap_socache.h) and the global
 * mutex its provider needs when it is not safe across processes (shmcb,
 * dbm: AP_SOCACHE_FLAG_NOTMPSAFE), set up the way mod_ssl sets up its
 * session and stapling caches (ssl_scache.c, ssl_util_stapling.c):
 * the mutex type registered at pre_config, cache and mutex created at
 * post_config, the mutex attached in each child.
 */

#include "apr_strings.h"

#include "httpd.h"
#include "http_config.h"
#include "ap_provider.h"
#include "util_mutex.h"

#include "reencrypt_socache.h"

apr_status_t reencrypt_socache_register(apr_pool_t *pconf,
                                        const char *mutex_type)
{
    return ap_mutex_register(pconf, mutex_type, NULL, APR_LOCK_DEFAULT, 0);
}

typedef struct {
    reencrypt_socache_t *sc;
    server_rec *s;
} socache_owner_t;

static apr_status_t socache_cleanup(void *data)
{
    socache_owner_t *o = data;

    if (o->sc->cache) {
        o->sc->provider->destroy(o->sc->cache, o->s);
    }
    o->sc->cache = NULL;
    o->sc->mutex = NULL;
    o->sc->provider = NULL;
    return APR_SUCCESS;
}

const char *reencrypt_socache_open(reencrypt_socache_t *sc,
                                   const char *provider, const char *args,
                                   const char *ns,
                                   const struct ap_socache_hints *hints,
                                   server_rec *s, apr_pool_t *pconf,
                                   apr_pool_t *ptemp, apr_status_t *rv)
{
    socache_owner_t *o;
    const char *err;

    *rv = APR_SUCCESS;
    sc->provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, provider,
                                      AP_SOCACHE_PROVIDER_VERSION);
    if (!sc->provider) {
        return apr_psprintf(ptemp, "no socache provider '%s' (LoadModule "
                            "socache_%s_module)", provider, provider);
    }
    err = sc->provider->create(&sc->cache, args, ptemp, pconf);
    if (err) {
        sc->cache = NULL;
        return err;
    }
    o = apr_palloc(pconf, sizeof(*o));
    o->sc = sc;
    o->s = s;
    if (sc->provider->flags & AP_SOCACHE_FLAG_NOTMPSAFE) {
        *rv = ap_global_mutex_create(&sc->mutex, NULL, sc->mutex_type, NULL,
                                     s, pconf, 0);
        if (*rv != APR_SUCCESS) {
            sc->provider->destroy(sc->cache, s);
            sc->cache = NULL;
            return "cannot create its mutex";
        }
    }
    *rv = sc->provider->init(sc->cache, ns, hints, s, pconf);
    if (*rv != APR_SUCCESS) {
        sc->provider->destroy(sc->cache, s);
        sc->cache = NULL;
        return "cannot initialise the cache";
    }
    apr_pool_cleanup_register(pconf, o, socache_cleanup,
                              apr_pool_cleanup_null);
    return NULL;
}

apr_status_t reencrypt_socache_child_init(reencrypt_socache_t *sc,
                                          apr_pool_t *p)
{
    if (!sc->mutex) {
        return APR_SUCCESS;
    }
    return apr_global_mutex_child_init(&sc->mutex,
                                       apr_global_mutex_lockfile(sc->mutex),
                                       p);
}

int reencrypt_socache_lock(reencrypt_socache_t *sc)
{
    return !sc->mutex || apr_global_mutex_lock(sc->mutex) == APR_SUCCESS;
}

void reencrypt_socache_unlock(reencrypt_socache_t *sc)
{
    if (sc->mutex) {
        apr_global_mutex_unlock(sc->mutex);
    }
}
