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
 * unit_walk.h: the harness the unit tests share. A test walks a table
 * of cases; each case function returns NULL when the case gave the
 * expected outcome, else a description of the difference (the WANT_*
 * macros build it); every wrong case is printed, then the test fails.
 * A case may carry a known-defect note: printed, not failed, and failed
 * as soon as the defect is gone so that the note gets removed.
 *
 * Include after <cmocka.h> and the APR headers.
 */

#ifndef UNIT_WALK_H
#define UNIT_WALK_H

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))


static int setup_pool(void **state)
{
    apr_pool_t *p = NULL;

    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return -1;
    }
    *state = p;
    return 0;
}

static int teardown_pool(void **state)
{
    apr_pool_destroy((apr_pool_t *)*state);
    return 0;
}

/* Outcome of a table walk. */
typedef struct {
    const char *table;
    int failed;
    int known;
} walk_t;

static void walk_start(walk_t *w, const char *table)
{
    w->table = table;
    w->failed = 0;
    w->known = 0;
}

/* Record the outcome of case i: mismatch is NULL when the case gave the
 * expected outcome, else a description of the difference. */
static void walk_case(walk_t *w, int i, const char *label,
                      const char *defect, const char *mismatch)
{
    if (mismatch && !defect) {
        print_error("%s[%d] %s: %s\n", w->table, i, label, mismatch);
        w->failed++;
    }
    else if (mismatch && defect) {
        print_message("%s[%d] %s: known defect (%s): %s\n", w->table, i,
                      label, defect, mismatch);
        w->known++;
    }
    else if (!mismatch && defect) {
        print_error("%s[%d] %s: gives the correct outcome now; remove its "
                    "defect note \"%s\"\n", w->table, i, label, defect);
        w->failed++;
    }
}

static void walk_end(const walk_t *w)
{
    if (w->failed) {
        print_error("%s: %d case(s) failed\n", w->table, w->failed);
    }
    assert_int_equal(w->failed, 0);
}

/* Walk the table cases, named name, with no known defect: fn(p,
 * &cases[i]) gives each case's mismatch, cases[i].field its label. */
#define WALK_TABLE_BY(name, cases, field, fn, p) do {                     \
    walk_t w_;                                                            \
    size_t i_;                                                            \
                                                                          \
    walk_start(&w_, (name));                                              \
    for (i_ = 0; i_ < N_ELEMS(cases); i_++) {                             \
        walk_case(&w_, (int)i_, (cases)[i_].field, NULL,                  \
                  fn((p), &(cases)[i_]));                                 \
    }                                                                     \
    walk_end(&w_);                                                        \
} while (0)

/* The same for cases labelled by their member label. */
#define WALK_TABLE(name, cases, fn, p) WALK_TABLE_BY(name, cases, label, fn, p)

/* A test that walks the table cases with WALK_TABLE in its pool. */
#define WALK_TEST(test, name, cases, fn)                                  \
static void test(void **state)                                            \
{                                                                         \
    WALK_TABLE(name, cases, fn, (apr_pool_t *)*state);                    \
}

/* Printable form of a possibly NULL string. */
static const char *q(apr_pool_t *p, const char *s)
{
    return s ? apr_psprintf(p, "\"%s\"", s) : "NULL";
}

static int str_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Comparisons inside a case function: return a mismatch on failure. */
#define WANT_INT(what, got, want) do {                                    \
    long got_ = (long)(got), want_ = (long)(want);                        \
    if (got_ != want_) {                                                  \
        return apr_psprintf(p, "%s: got %ld, want %ld", (what), got_,     \
                            want_);                                       \
    }                                                                     \
} while (0)

#define WANT_STR(what, got, want) do {                                    \
    const char *got_ = (got), *want_ = (want);                            \
    if (!str_same(got_, want_)) {                                         \
        return apr_psprintf(p, "%s: got %s, want %s", (what),             \
                            q(p, got_), q(p, want_));                     \
    }                                                                     \
} while (0)

#define WANT_HAS(what, got, needle) do {                                  \
    const char *got_ = (got), *needle_ = (needle);                        \
    if (!got_ || !strstr(got_, needle_)) {                                \
        return apr_psprintf(p, "%s: got %s, want it to contain \"%s\"",   \
                            (what), q(p, got_), needle_);                 \
    }                                                                     \
} while (0)

/* The end of a test program's main(): the group of tests, between
 * apr_initialize() and apr_terminate(), whose result is the exit code */
#define UNIT_RUN(tests, setup, teardown)                                  \
    do {                                                                  \
        int rc_;                                                          \
                                                                          \
        if (apr_initialize() != APR_SUCCESS) {                            \
            return 1;                                                     \
        }                                                                 \
        rc_ = cmocka_run_group_tests(tests, setup, teardown);             \
        apr_terminate();                                                  \
        return rc_;                                                       \
    } while (0)

#endif /* UNIT_WALK_H */
