/* Linked into the sanitizer build of the module only (make check-asan).
 *
 * UBSan reads its options when it first reports, that is in the child
 * process that met the defect. The sanitizer runtimes read the environment
 * from /proc/self/environ, which a child that changed from root to its
 * User (nobody) can no longer read: UBSAN_OPTIONS would be lost, and the
 * report written to stderr (the error log) without a stack trace and
 * without a report file. UBSan takes its default options from this
 * function first; it answers with the UBSAN_OPTIONS the process holds in
 * memory.
 */

#include <stdlib.h>

const char *__ubsan_default_options(void);

const char *__ubsan_default_options(void)
{
    const char *options = getenv("UBSAN_OPTIONS");

    return options ? options : "";
}
