dnl In-tree build: copy this folder to httpd's modules/reencrypt/, run
dnl ./buildconf and ./configure --enable-reencrypt (or =shared).
dnl
dnl httpd's build/config-stubs runs unnumbered config.m4 files in path
dnl order, so modules/reencrypt/ comes before modules/ssl/: mod_ssl
dnl cannot be a prerequisite here. The module needs it only at run time
dnl (it checks at startup); OpenSSL is checked for below, as mod_md does.

APACHE_MODPATH_INIT(reencrypt)

dnl The one list of sources, shared with the out-of-tree Makefile.in.
reencrypt_objs=`sed -n 's/^REENCRYPT_[A-Z]*_SRCS *= *//p' \
    $abs_srcdir/$modpath_current/sources.mk | tr ' ' '\n' \
    | sed -n 's/\.c$/.lo/p' | tr '\n' ' '`

APACHE_MODULE(reencrypt, [re-encrypting reverse proxy: backend TLS policy for mod_proxy],
              $reencrypt_objs, , no, [
    APACHE_CHECK_OPENSSL
    if test "$ac_cv_openssl" = "yes" ; then
        if test "x$enable_reencrypt" = "xshared"; then
            APR_ADDTO(MOD_REENCRYPT_LDADD, [-export-symbols-regex reencrypt_module])
        fi
    else
        enable_reencrypt=no
    fi
], proxy)

dnl mod_ssl_openssl.h and mod_proxy.h
APR_ADDTO(INCLUDES, [-I\$(top_srcdir)/modules/ssl -I\$(top_srcdir)/modules/proxy])

APACHE_MODPATH_FINISH
