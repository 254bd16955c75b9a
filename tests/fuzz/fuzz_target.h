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

/* What every libFuzzer target of tests/fuzz shares: the entry points,
 * a pool made once, and CHECK, which turns a broken promise into a
 * crash libFuzzer reports. A target defines fuzz_init() (what it makes
 * once, after the pool) and LLVMFuzzerTestOneInput. */

#ifndef FUZZ_TARGET_H
#define FUZZ_TARGET_H

#include <stdint.h>
#include <stdlib.h>

#include <apr_general.h>
#include <apr_pools.h>

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static apr_pool_t *pool;

static void fuzz_init(void);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    fuzz_init();
    return 0;
}

#endif /* FUZZ_TARGET_H */
