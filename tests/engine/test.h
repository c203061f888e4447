/*
 * test.h -- the little harness of the C tests (tests/engine/test_*.c).
 *
 * Every CHECK is one counted check; a failing one prints one line
 * "FAIL file:line: what" with the details.  main() (test_engine.c) prints
 * "C tests: N passed, M failed" at the end.
 */
#ifndef RK_TEST_H
#define RK_TEST_H

#include <stdint.h>
#include "engine.h"

extern int t_passed, t_failed;
extern int t_verbose;          /* RK_TEST_VERBOSE: 1 groups, 2 every kernel */
extern const char *t_cache;   /* fresh kernel cache folder of this run */
extern int t_backend;         /* RK_BACKEND_CPU, or RK_BACKEND_GPU in test_gpu */

/* Counts one check; prints the failure line when !ok.  Returns ok. */
int t_check(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define CHECK(ok, ...) t_check(!!(ok), __FILE__, __LINE__, __VA_ARGS__)

/* Options for a compilation in the test cache (on the backend t_backend). */
rk_options t_opts(rk_precision prec, rk_scheme scheme);

/* Compiles formula/decls, runs it on random data (Vi: M rows, Vj: N
 * rows, uniform in [0.5, 1.5) on a grid of 2^-10, see tu_make_inputs)
 * and compares with the reference evaluator.  tol < 0: 1e-12 (float64)
 * or 1e-5 (float32), times max(1, sqrt(n/1000)) for n summed terms;
 * gradients (central differences in the reference) 1e-6 and 1e-4.
 * t_eval counts nothing and fills *res (free with t_result_free);
 * t_compare counts the checks "compiles", "describes its arguments as
 * declared" and "agrees", prints failures labelled `what`, and returns 1
 * when the results agree. */
typedef struct t_result {
  int compiled, args_ok, compared, agrees;
  int outdim;
  double *colerr;     /* largest relative error of each result column  */
  double maxerr, tol;
  char why[2048];     /* what went wrong                                */
} t_result;
int t_eval(const char *formula, const char *const *decls, int ndecls, rk_precision prec,
           rk_scheme scheme, int64_t M, int64_t N, double tol, uint64_t seed, t_result *res);
void t_result_free(t_result *r);
int t_compare(const char *what, const char *formula, const char *const *decls, int ndecls,
              rk_precision prec, rk_scheme scheme, int64_t M, int64_t N, double tol,
              uint64_t seed);

int t_ndecls(const char *const *decls);   /* NULL-terminated list */

/* the groups of tests */
void test_rows(void);       /* test_rows.c: formula/declaration table     */
void test_tables(void);     /* test_tables.c: walks over ops.def and
                               reductions.def, one kernel per op        */
void test_runtime(void);    /* test_runtime.c: cache, inputs, schemes,
                               interrupts, threads, build failures      */
void test_lse(void);        /* test_lse.c: the LogSumExp family, random
                               data and special values, tile edges      */
void test_minmax(void);     /* test_minmax.c: Min, Max and the ArgMin
                               family, ties and special values, exact  */
void test_chunks(void);     /* test_chunks.c: runs cut into chunks of
                               rows and reduced indices                 */
void test_ranges(void);     /* test_ranges.c: block-sparse reductions     */
void test_gpu(void);        /* test_tables.c: NVRTC compiles every kernel
                               of the walks; with a device, runs them   */
/* test_math.c (another author's, linked in when present): the generated
 * code's exp and log in ulps.  Weak: absent, the group is not offered. */
void test_math(void) __attribute__((weak));

#endif
