# The sources of mod_reencrypt, read by Makefile.in (apxs build and unit
# tests) and by config.m4 (in-tree build). Pure units first: they are
# compiled into the unit tests without any httpd header.
REENCRYPT_PURE_SRCS = reencrypt_policy.c reencrypt_verify.c reencrypt_seal.c \
                      reencrypt_slots.c reencrypt_codec.c reencrypt_escape.c \
                      reencrypt_staple.c
REENCRYPT_GLUE_SRCS = mod_reencrypt.c reencrypt_config.c reencrypt_conn.c reencrypt_proxy.c reencrypt_ssl.c reencrypt_notes.c reencrypt_session.c reencrypt_session_local.c reencrypt_session_store.c reencrypt_socache.c reencrypt_status.c reencrypt_status_views.c reencrypt_dump.c
