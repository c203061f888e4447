/*
 * test_chunks.c -- runs cut into chunks (run.c), with the pairs per kernel
 * call lowered from 2^24 to 4096 (run_set_chunk_pairs), two threads, for a
 * reduction of every kind (fused and buffered sums, Kahan, Min_ArgMin,
 * KMin_ArgKMin, LogSumExp, SumSoftMaxWeight) on both axes:
 *
 *   few rows (<= one block): the threads split the reduced range of every
 *     chunk; the result agrees with the reference, is the same from one run
 *     to the next, and is close to the unchunked run's;
 *   more rows: chunks of rows, and of reduced indices with the states of
 *     the rows carried from call to call; the result is bit for bit the
 *     unchunked run's;
 *   the interrupt callback is called between chunks, and stops the run.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "refeval.h"
#include "test.h"
#include "tutil.h"

#define CHUNK 4096

typedef struct chunk_case {
  const char *formula;
  const char *decls[4];
  rk_scheme scheme;
} chunk_case;

/* b is indexed by the reduced index of axis 0; the axis-1 case reduces
 * over i and takes a = Vi(1) */
static const chunk_case cases[] = {
  {"Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)", {"x = Vi(3)", "y = Vj(3)", "b = Vj(1)"}, RK_SCHEME_AUTO},
  {"Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)", {"x = Vi(3)", "y = Vj(3)", "b = Vj(1)"}, RK_SCHEME_KAHAN},
  {"Sum_Reduction(Exp(-SqDist(x, y)) * w, 0)", {"x = Vi(3)", "y = Vj(3)", "w = Vj(40)"}, RK_SCHEME_AUTO},
  {"Min_ArgMin_Reduction(SqDist(x, y), 0)", {"x = Vi(3)", "y = Vj(3)"}, RK_SCHEME_AUTO},
  {"KMin_ArgKMin_Reduction(SqDist(x, y), 3, 0)", {"x = Vi(3)", "y = Vj(3)"}, RK_SCHEME_AUTO},
  {"LogSumExp_Reduction(-SqDist(x, y) * 4, 0)", {"x = Vi(3)", "y = Vj(3)"}, RK_SCHEME_AUTO},
  {"SumSoftMaxWeight_Reduction(-SqDist(x, y) * 4, b, 0)", {"x = Vi(3)", "y = Vj(3)", "b = Vj(2)"}, RK_SCHEME_AUTO},
  {"Sum_Reduction(Exp(-SqDist(x, y)) * a, 1)", {"x = Vi(3)", "y = Vj(3)", "a = Vi(1)"}, RK_SCHEME_AUTO},
  {"LogSumExp_Reduction(-SqDist(x, y) * 4, 1)", {"x = Vi(3)", "y = Vj(3)"}, RK_SCHEME_AUTO},
};

static int ncalls, stop_at;
static int count_calls(void *data) {
  (void)data;
  ncalls++;
  return stop_at > 0 && ncalls >= stop_at;
}

static void one_shape(const chunk_case *cc, int64_t nout, int64_t nred) {
  int nd = 0;
  while (nd < 4 && cc->decls[nd]) nd++;
  ref_formula *F = malloc(sizeof *F);
  if (!CHECK(F && ref_parse(cc->formula, cc->decls, nd, F) == 0, "chunks: %s: %s", cc->formula,
             F ? F->err : "out of memory")) {
    free(F);
    return;
  }
  int axis = F->axis;
  int64_t M = axis == 0 ? nout : nred, N = axis == 0 ? nred : nout;
  rk_input in[4];
  tu_rng rng;
  tu_seed(&rng, 77 + (uint64_t)nout);
  if (!CHECK(tu_make_inputs(F->args, F->nargs, M, N, &rng, 0.5, 1.5, 10, in) == 0, "out of memory")) {
    free(F);
    return;
  }
  int od = ref_outdim(F);
  size_t n = (size_t)(nout * od);
  double *ref = malloc(n * sizeof *ref), *scale = malloc(n * sizeof *scale);
  double *whole = malloc(n * sizeof *whole), *c1 = malloc(n * sizeof *c1), *c2 = malloc(n * sizeof *c2);
  double *c3 = malloc(n * sizeof *c3);
  if (!CHECK(ref && scale && whole && c1 && c2 && c3 && ref_eval(F, in, nd, ref, scale) == 0,
             "chunks: %s: reference: %s", cc->formula, F->err))
    goto done;
  int few = 0;
  for (int prec = 0; prec < 2; prec++) {
    rk_options o = t_opts(prec ? RK_F32 : RK_F64, cc->scheme);
    rk_error e;
    rk_error_init(&e);
    rk_kernel *k = NULL;
    if (!CHECK(rk_compile(cc->formula, cc->decls, nd, &o, &k, &e) == RK_OK, "chunks: %s: %s",
               cc->formula, e.msg)) {
      rk_error_clear(&e);
      continue;
    }
    few = nout <= k->bi && nred >= 4096;
    const char *pn = prec ? "float32" : "float64";
    int rc0 = rk_run(k, in, nd, whole, 2, NULL, NULL, &e);
    run_set_chunk_pairs(CHUNK);
    ncalls = 0;
    stop_at = 0;
    int rc1 = rk_run(k, in, nd, c1, 2, count_calls, NULL, &e);
    int used = rk_last_threads(), calls = ncalls;
    int rc2 = rk_run(k, in, nd, c2, 2, NULL, NULL, &e);
    /* stopped at the third check */
    ncalls = 0;
    stop_at = 3;
    rk_error e3;
    rk_error_init(&e3);
    int rc3 = rk_run(k, in, nd, c3, 2, count_calls, NULL, &e3);
    int calls3 = ncalls;
    rk_error_clear(&e3);
    run_set_chunk_pairs(0);
    if (!CHECK(rc0 == RK_OK && rc1 == RK_OK && rc2 == RK_OK, "chunks: %s (%s): %s", cc->formula,
               pn, e.msg)) {
      rk_error_clear(&e);
      continue;
    }
    double need = (double)nout * (double)nred / (2.0 * CHUNK);
    CHECK(calls >= (need < 8 ? need : 8) && calls >= 1,
          "chunks: %s (%s) %lld x %lld: %d interrupt checks", cc->formula, pn, (long long)nout,
          (long long)nred, calls);
    CHECK(rc3 == RK_EINTERRUPT && calls3 == 3, "chunks: %s (%s): stopping at the third check: %s "
          "after %d checks", cc->formula, pn, rk_error_code_name(rc3), calls3);
    if (few && rk_toolchain_get()->have_openmp && rk_threads(2, (double)nout * (double)nred) == 2)
      CHECK(used == 2, "chunks: %s (%s) %lld x %lld: %d threads", cc->formula, pn,
            (long long)nout, (long long)nred, used);
    CHECK(memcmp(c1, c2, n * sizeof *c1) == 0,
          "chunks: %s (%s) %lld x %lld: two chunked runs differ", cc->formula, pn,
          (long long)nout, (long long)nred);
    double tol = (prec ? 1e-5 : 1e-12) * fmax(1, sqrt((double)nred / 1000));
    int64_t w = 0;
    double err = tu_max_relerr(c1, ref, scale, (int64_t)n, &w);
    CHECK(err <= tol, "chunks: %s (%s) %lld x %lld: error %.3e > %.1e at %lld: %.17g vs %.17g",
          cc->formula, pn, (long long)nout, (long long)nred, err, tol, (long long)w, c1[w], ref[w]);
    if (few) {
      double d = tu_max_relerr(c1, whole, scale, (int64_t)n, &w);
      CHECK(d <= tol, "chunks: %s (%s) %lld x %lld: chunked and whole runs differ by %.3e",
            cc->formula, pn, (long long)nout, (long long)nred, d);
    } else {
      CHECK(memcmp(c1, whole, n * sizeof *c1) == 0,
            "chunks: %s (%s) %lld x %lld: the chunked run is not bit for bit the whole run",
            cc->formula, pn, (long long)nout, (long long)nred);
    }
    rk_error_clear(&e);
  }
done:
  tu_free_inputs(in, F->nargs);
  free(ref); free(scale); free(whole); free(c1); free(c2); free(c3);
  free(F);
}

void test_chunks(void) {
  /* output rows x reduced indices: few rows (split), then blocks */
  static const int64_t shapes[][2] = {{1, 300000}, {20, 15000}, {40, 8000}, {200, 2000}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
      one_shape(&cases[c], shapes[s][0], shapes[s][1]);
}
