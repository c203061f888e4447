/*
 * test_lse.c -- the LogSumExp family (LogSumExp, LogSumExpWeight,
 * SumSoftMaxWeight, Max_SumShiftExp, Max_SumShiftExpWeight), whose CPU
 * kernels take one vectorised pass per tile (reductions.c, lse_tile):
 *
 *   random     random data against the reference evaluator (refeval.c) at
 *              sizes around the tile edges (BJ = 512, and 256 with a
 *              20-dimensional weight), float64 and float32, both axes;
 *   specials   rows and columns of -Inf, +Inf and NaN terms at tile edges
 *              against a reference of the documented semantics written
 *              here (refeval.c does not define them): a NaN term poisons
 *              the row, -Inf terms add nothing (an all -Inf row gives -Inf
 *              and 0/0 = NaN as soft-max), +Inf terms add their weights;
 *              also with the reduced range cut into many chunks, in the
 *              few-rows mode where two threads split it (run.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "refeval.h"
#include "test.h"
#include "tutil.h"

typedef struct lse_red {
  const char *name;
  int weighted;   /* takes a weight g = Vj(2) */
} lse_red;

static const lse_red reds[] = {
  {"LogSumExp", 0}, {"LogSumExpWeight", 1}, {"SumSoftMaxWeight", 1},
  {"Max_SumShiftExp", 0}, {"Max_SumShiftExpWeight", 1},
};
#define NREDS ((int)(sizeof reds / sizeof reds[0]))

/* ------------------------------------------------ random data, refeval */

static void random_data(void) {
  static const int64_t sizes[][2] = {{1, 1}, {1, 511}, {33, 512}, {1, 513}, {33, 1}, {33, 1031},
                                     {7, 2049}};
  for (int q = 0; q < NREDS; q++)
    for (int axis = 0; axis < 2; axis++)
      for (int prec = 0; prec < 2; prec++) {
        char f[160];
        const char *d[] = {"x = Vi(3)", "y = Vj(3)", axis ? "b = Vi(2)" : "b = Vj(2)", NULL};
        snprintf(f, sizeof f, "%s_Reduction(-SqDist(x, y) * 4%s, %d)", reds[q].name,
                 reds[q].weighted ? ", b" : "", axis);
        /* grid data: -SqDist(x, y) * 4 is exact in float32 too, so that
         * only exp and the sums make the float32 error */
        double tol = prec ? 2e-6 : 1e-13;
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
          int64_t M = sizes[s][axis], N = sizes[s][1 - axis];
          t_compare("lse random", f, d, reds[q].weighted ? 3 : 2, prec ? RK_F32 : RK_F64,
                    RK_SCHEME_AUTO, M, N, tol * fmax(1, sqrt((double)sizes[s][1] / 1000)),
                    100 + s);
        }
      }
  /* a 20-dimensional weight halves the tile (BJ = 256) */
  const char *d[] = {"x = Vi(3)", "y = Vj(3)", "w = Vj(20)", NULL};
  static const int64_t n20[] = {255, 256, 257, 1000};
  for (int prec = 0; prec < 2; prec++)
    for (size_t s = 0; s < sizeof n20 / sizeof n20[0]; s++) {
      t_compare("lse weight dim 20", "SumSoftMaxWeight_Reduction(-SqDist(x, y) * 4, w, 0)", d, 3,
                prec ? RK_F32 : RK_F64, RK_SCHEME_AUTO, 3, n20[s], prec ? 2e-6 : 1e-13, 7);
      t_compare("lse weight dim 20", "LogSumExpWeight_Reduction(-SqDist(x, y) * 4, w, 0)", d, 3,
                prec ? RK_F32 : RK_F64, RK_SCHEME_AUTO, 3, n20[s], prec ? 2e-6 : 1e-13, 7);
    }
}

/* ------------------------------------------------ special values */

/* The documented semantics, row by row, for F = x_i + y_j and weights
 * g_j (DG = 2, finite): out is M x outdim, column-major. */
static int ref_outdim_of(int q) {
  switch (q) {
  case 0: return 1;
  case 1: case 2: return 2;
  case 3: return 2;
  default: return 3;
  }
}

static void special_ref(int q, const double *x, int64_t M, const double *y, const double *g,
                        int64_t N, double *out) {
  int W = q == 0 || q == 3 ? 1 : q == 2 ? 3 : 2;
  for (int64_t i = 0; i < M; i++) {
    int nan = 0;
    double m = -INFINITY, S[3] = {0, 0, 0};
    for (int64_t j = 0; j < N; j++) {
      double f = x[i] + y[j];
      if (isnan(f)) nan = 1;
      else if (f > m) m = f;
    }
    for (int64_t j = 0; j < N && !nan && m != -INFINITY; j++) {
      double f = x[i] + y[j];
      double e = isinf(m) ? (f == m ? 1.0 : 0.0) : exp(f - m);
      for (int w = 0; w < W; w++) {
        double wt = q == 0 || q == 3 ? 1.0 : q == 2 ? (w == 0 ? 1.0 : g[j + (w - 1) * N])
                                                      : g[j + w * N];
        S[w] += e * wt;
      }
    }
    double v[3];
    switch (q) {
    case 0: v[0] = m + log(S[0]); break;
    case 1: v[0] = m + log(S[0]); v[1] = m + log(S[1]); break;
    case 2: v[0] = S[1] / S[0]; v[1] = S[2] / S[0]; break;
    default: v[0] = m; for (int w = 0; w < W; w++) v[1 + w] = S[w]; break;
    }
    for (int c = 0; c < ref_outdim_of(q); c++) out[i + c * M] = nan ? NAN : v[c];
  }
}

/* patterns of y (the reduced variable); x holds the row shifts 0, 1.5,
 * -Inf, +Inf, NaN, -3 */
enum { P_FINITE, P_NEGINF, P_ALLNEG, P_POSINF1, P_POSINFS, P_NAN, P_NEGPOS, P_FIRSTTILE, P_BIG,
       P_COUNT };
static const char *pattern_name[P_COUNT] = {
  "finite", "-Inf at tile edges", "all -Inf", "one +Inf", "several +Inf", "NaN",
  "-Inf and one +Inf", "first tile -Inf", "rescaling by exp(-700)"};

static void make_y(int pat, double *y, int64_t N, tu_rng *r) {
  for (int64_t j = 0; j < N; j++) y[j] = floor(tu_unif(r, -8, 8) * 256) / 256;
  int64_t edges[] = {0, 510, 511, 512, 513, 1023, 1024, N - 1};
  switch (pat) {
  case P_NEGINF:
    for (size_t k = 0; k < sizeof edges / sizeof edges[0]; k++)
      if (edges[k] < N) y[edges[k]] = -INFINITY;
    break;
  case P_ALLNEG:
    for (int64_t j = 0; j < N; j++) y[j] = -INFINITY;
    break;
  case P_POSINF1:
    y[N - 1] = INFINITY;
    break;
  case P_POSINFS:
    for (size_t k = 0; k < sizeof edges / sizeof edges[0]; k += 3)
      if (edges[k] < N) y[edges[k]] = INFINITY;
    y[N - 1] = INFINITY;
    break;
  case P_NAN:
    y[N > 512 ? 512 : N - 1] = NAN;
    break;
  case P_NEGPOS:
    for (int64_t j = 0; j < N; j++) y[j] = -INFINITY;
    y[N / 2] = INFINITY;
    break;
  case P_FIRSTTILE:
    for (int64_t j = 0; j < N && j < 512; j++) y[j] = -INFINITY;
    break;
  case P_BIG:
    /* a large term late: every earlier partial sum is rescaled by an
     * exponential that underflows */
    y[N - 1] = 700;
    if (N > 1) y[0] = -745;
    break;
  default:
    break;
  }
}

static int same_or_close(double got, double ref, double tol) {
  if (isnan(got) || isnan(ref)) return isnan(got) && isnan(ref);
  if (got == ref) return 1;
  if (isinf(got) || isinf(ref)) return 0;
  return fabs(got - ref) <= tol * fmax(fabs(ref), 1);
}

/* every reduction of the family, both precisions, on the patterns at the
 * sizes n[0 .. nn); nthreads as for rk_run */
static void specials_at(const char *what, const int64_t *n, int nn, int nthreads) {
  enum { M = 6 };
  static const double xs[M] = {0, 1.5, -INFINITY, INFINITY, NAN, -3};
  const char *d[] = {"x = Vi(1)", "y = Vj(1)", "g = Vj(2)"};
  for (int q = 0; q < NREDS; q++)
    for (int prec = 0; prec < 2; prec++) {
      char f[128];
      snprintf(f, sizeof f, "%s_Reduction(x + y%s, 0)", reds[q].name, reds[q].weighted ? ", g" : "");
      rk_options o = t_opts(prec ? RK_F32 : RK_F64, RK_SCHEME_AUTO);
      rk_error e;
      rk_error_init(&e);
      rk_kernel *k = NULL;
      if (!CHECK(rk_compile(f, d, reds[q].weighted ? 3 : 2, &o, &k, &e) == RK_OK, "%s: %s: %s",
                 what, f, e.msg)) {
        rk_error_clear(&e);
        continue;
      }
      int od = rk_kernel_outdim(k);
      CHECK(od == ref_outdim_of(q), "%s: %s has %d result columns", what, f, od);
      for (int s = 0; s < nn; s++) {
        int64_t N = n[s];
        double *y = malloc((size_t)N * sizeof *y), *g = malloc((size_t)N * 2 * sizeof *g);
        double *out = malloc(M * 3 * sizeof *out), *ref = malloc(M * 3 * sizeof *ref);
        if (!CHECK(y && g && out && ref, "out of memory")) {
          free(y); free(g); free(out); free(ref);
          continue;
        }
        tu_rng r;
        tu_seed(&r, 31 + (uint64_t)N);
        for (int64_t j = 0; j < 2 * N; j++) g[j] = floor(tu_unif(&r, 0.5, 1.5) * 256) / 256;
        for (int pat = 0; pat < P_COUNT; pat++) {
          make_y(pat, y, N, &r);
          rk_input in[3] = {{xs, M, 1}, {y, N, 1}, {g, N, 2}};
          for (int c = 0; c < M * 3; c++) out[c] = 12345;
          int rc = rk_run(k, in, reds[q].weighted ? 3 : 2, out, nthreads, NULL, NULL, &e);
          special_ref(q, xs, M, y, g, N, ref);
          int ok = rc == RK_OK, bad = -1;
          double tol = (prec ? 2e-6 : 1e-13) * fmax(1, sqrt((double)N / 1000));
          for (int c = 0; ok && c < M * od; c++)
            if (!same_or_close(out[c], ref[c], tol)) { ok = 0; bad = c; }
          CHECK(ok, "%s: %s (%s), N = %lld, y: %s: %s row %d col %d: %.17g, expected %.17g", what,
                f, prec ? "float32" : "float64", (long long)N, pattern_name[pat],
                rc == RK_OK ? "" : e.msg, bad < 0 ? 0 : bad % M + 1, bad < 0 ? 0 : bad / M + 1,
                bad < 0 ? 0 : out[bad], bad < 0 ? 0 : ref[bad]);
        }
        free(y); free(g); free(out); free(ref);
      }
      rk_error_clear(&e);
    }
}

static void specials(void) {
  static const int64_t n[] = {1, 2, 511, 512, 513, 1100};
  specials_at("lse specials", n, (int)(sizeof n / sizeof n[0]), 1);
  /* few rows, two threads, the reduced range cut into chunks of 8192
   * pairs: partial states merged across threads and chunks */
  static const int64_t nbig[] = {50001};
  run_set_chunk_pairs(8192);
  specials_at("lse specials, chunked", nbig, 1, 2);
  run_set_chunk_pairs(0);
}

void test_lse(void) {
  random_data();
  specials();
}
