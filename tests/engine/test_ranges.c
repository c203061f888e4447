/*
 * test_ranges.c -- block-sparse reductions (rk_run_ranges, run.c and
 * cpu.c's rk_entry_ranges), against the reference evaluator:
 *
 *   random ranges over random data, for reductions of every kind on both
 *   axes, in float64 and float32: blocks of output rows of random sizes
 *   (some larger than a block of the CPU scheme, gaps between them, rows
 *   in no block), each with 0 to 4 reduced ranges (empty ones, overlapping
 *   ones, ranges that do not start on a tile); the reference of a block is
 *   the reference evaluator run on the block's rows and the concatenation
 *   of its ranges (indices mapped back), and rows with no range hold the
 *   reduction of nothing;
 *   one block of all rows with the whole reduced range gives the plain run
 *   bit for bit (one thread);
 *   inconsistent ranges are refused (RK_EARG naming the entry), a kernel
 *   over the other axis without its ranges too;
 *   the interrupt callback is polled between calls, and stops the run.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "refeval.h"
#include "test.h"
#include "tutil.h"

typedef struct ranges_case {
  const char *formula;
  const char *decls[4];
  int idx_from;   /* first column holding indices, -1 when none          */
  double empty;   /* value of a row with no range (first column)          */
} ranges_case;

static const ranges_case cases[] = {
  {"Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)", {"x = Vi(3)", "y = Vj(3)", "b = Vj(2)"}, -1, 0},
  {"Sum_Reduction(Exp(-SqDist(x, y)) * w, 0)", {"x = Vi(3)", "y = Vj(3)", "w = Vj(30)"}, -1, 0},
  {"Min_ArgMin_Reduction(SqDist(x, y), 0)", {"x = Vi(3)", "y = Vj(3)"}, 1, INFINITY},
  {"ArgKMin_Reduction(SqDist(x, y), 3, 0)", {"x = Vi(3)", "y = Vj(3)"}, 0, NAN},
  {"KMin_ArgKMin_Reduction(SqDist(x, y), 2, 0)", {"x = Vi(3)", "y = Vj(3)"}, 2, INFINITY},
  {"LogSumExp_Reduction(-SqDist(x, y) * 4, 0)", {"x = Vi(3)", "y = Vj(3)"}, -1, -INFINITY},
  {"SumSoftMaxWeight_Reduction(-SqDist(x, y) * 4, b, 0)", {"x = Vi(3)", "y = Vj(3)", "b = Vj(2)"},
   -1, NAN},
  {"Sum_Reduction(Exp(-SqDist(x, y)) * a, 1)", {"x = Vi(3)", "y = Vj(3)", "a = Vi(1)"}, -1, 0},
  {"Max_ArgMax_Reduction(-SqDist(x, y) + s, 1)", {"x = Vi(2)", "y = Vj(2)", "s = Pm(1)"}, 1,
   -INFINITY},
};

/* random ranges: blocks of 1 .. 2.5 bi rows with random gaps, 0 .. 4
 * random reduced ranges each */
typedef struct t_ranges {
  rk_ranges r;
  int64_t *blocks, *slices, *red;
} t_ranges;

static int rand_int(tu_rng *rng, int64_t n) { return (int)floor(tu_unif(rng, 0, (double)n)); }

static int make_ranges(t_ranges *t, int64_t nout, int64_t nred, int bi, tu_rng *rng) {
  memset(t, 0, sizeof *t);
  t->blocks = malloc(sizeof(int64_t) * 2 * (size_t)(nout + 1));
  t->slices = malloc(sizeof(int64_t) * (size_t)(nout + 1));
  t->red = malloc(sizeof(int64_t) * 8 * (size_t)(nout + 1));
  if (!t->blocks || !t->slices || !t->red) return -1;
  int64_t nb = 0, nr = 0;
  for (int64_t r = 0; r < nout;) {
    if (tu_unif(rng, 0, 1) < 0.2) r += 1 + rand_int(rng, bi);  /* a gap */
    if (r >= nout) break;
    int64_t len = 1 + rand_int(rng, (int64_t)(2.5 * bi));
    if (r + len > nout) len = nout - r;
    t->blocks[2 * nb] = r;
    t->blocks[2 * nb + 1] = r + len;
    int q = rand_int(rng, 5);
    for (int k = 0; k < q; k++) {
      int64_t a = rand_int(rng, nred + 1), e = a + rand_int(rng, nred - a + 1);
      if (k == 1 && tu_unif(rng, 0, 1) < 0.3) e = a;  /* empty */
      t->red[2 * nr] = a;
      t->red[2 * nr + 1] = e;
      nr++;
    }
    t->slices[nb] = nr;
    nb++;
    r += len;
  }
  t->r = (rk_ranges){nb, t->blocks, t->slices, nr, t->red};
  return 0;
}

static void free_ranges(t_ranges *t) {
  free(t->blocks);
  free(t->slices);
  free(t->red);
}

/* the inputs restricted to rows[0 .. n) of category cat (others as they
 * are); free with free_gathered */
static void gather(const ref_formula *F, const rk_input *in, int cat, const int64_t *rows,
                   int64_t n, rk_input *g) {
  for (int p = 0; p < F->nargs; p++) {
    g[p] = in[p];
    if (F->args[p].cat != cat) continue;
    double *d = malloc(sizeof(double) * (size_t)(n * in[p].ncol + 1));
    for (int64_t c = 0; c < in[p].ncol; c++)
      for (int64_t r = 0; r < n; r++) d[r + c * n] = in[p].data[rows[r] + c * in[p].nrow];
    g[p].data = d;
    g[p].nrow = n;
  }
}

static void free_gathered(const ref_formula *F, const rk_input *in, rk_input *g) {
  for (int p = 0; p < F->nargs; p++)
    if (g[p].data != in[p].data) free((void *)g[p].data);
}

/* the reference of a ranged run: block by block */
static int reference(const ranges_case *rc, ref_formula *F, const rk_input *in, int nd,
                     const t_ranges *t, int64_t nout, int64_t nred, double *ref, double *scale) {
  int od = ref_outdim(F);
  int outcat = F->axis == 0 ? RK_CAT_I : RK_CAT_J, redcat = 1 - outcat;
  int64_t *orows = malloc(sizeof(int64_t) * (size_t)(nout + 1));
  int64_t *jrows = malloc(sizeof(int64_t) * 4 * (size_t)(nred + 1));
  double *o = malloc(sizeof(double) * (size_t)(nout * od + 1));
  double *s = malloc(sizeof(double) * (size_t)(nout * od + 1));
  int ok = orows && jrows && o && s;
  /* rows in no block, and blocks with nothing to reduce: the empty value */
  for (int64_t c = 0; ok && c < od; c++)
    for (int64_t r = 0; r < nout; r++) {
      ref[r + c * nout] = rc->idx_from >= 0 && c >= rc->idx_from ? NAN : rc->empty;
      scale[r + c * nout] = 1;
    }
  for (int64_t b = 0; ok && b < t->r.nblocks; b++) {
    int64_t a = t->blocks[2 * b], e = t->blocks[2 * b + 1], m = e - a;
    int64_t s0 = b > 0 ? t->slices[b - 1] : 0, s1 = t->slices[b], n = 0;
    for (int64_t q = s0; q < s1; q++)
      for (int64_t j = t->red[2 * q]; j < t->red[2 * q + 1]; j++) jrows[n++] = j;
    if (n == 0 || m == 0) continue;
    for (int64_t r = 0; r < m; r++) orows[r] = a + r;
    rk_input g1[4], g2[4];
    gather(F, in, outcat, orows, m, g1);
    gather(F, g1, redcat, jrows, n, g2);
    ok = ref_eval(F, g2, nd, o, s) == 0;
    for (int64_t c = 0; ok && c < od; c++)
      for (int64_t r = 0; r < m; r++) {
        double v = o[r + c * m];
        if (rc->idx_from >= 0 && c >= rc->idx_from && !isnan(v)) v = (double)(jrows[(int64_t)v - 1] + 1);
        ref[a + r + c * nout] = v;
        scale[a + r + c * nout] = s[r + c * m];
      }
    free_gathered(F, g1, g2);
    free_gathered(F, in, g1);
  }
  free(orows);
  free(jrows);
  free(o);
  free(s);
  return ok ? 0 : -1;
}

static int ncalls, stop_at;
static int count_calls(void *data) {
  (void)data;
  ncalls++;
  return stop_at > 0 && ncalls >= stop_at;
}

static void one_case(const ranges_case *rc, int64_t nout, int64_t nred, uint64_t seed) {
  int nd = 0;
  while (nd < 4 && rc->decls[nd]) nd++;
  ref_formula *F = malloc(sizeof *F);
  if (!CHECK(F && ref_parse(rc->formula, rc->decls, nd, F) == 0, "ranges: %s: %s", rc->formula,
             F ? F->err : "out of memory")) {
    free(F);
    return;
  }
  int64_t M = F->axis == 0 ? nout : nred, N = F->axis == 0 ? nred : nout;
  rk_input in[4];
  tu_rng rng;
  tu_seed(&rng, seed);
  if (!CHECK(tu_make_inputs(F->args, F->nargs, M, N, &rng, 0.5, 1.5, 10, in) == 0, "out of memory")) {
    free(F);
    return;
  }
  int od = ref_outdim(F);
  size_t n = (size_t)(nout * od);
  double *ref = malloc(n * sizeof *ref), *scale = malloc(n * sizeof *scale);
  double *got = malloc(n * sizeof *got), *plain = malloc(n * sizeof *plain);
  t_ranges t;
  memset(&t, 0, sizeof t);
  for (int prec = 0; prec < 2 && ref && scale && got && plain; prec++) {
    rk_options o = t_opts(prec ? RK_F32 : RK_F64, RK_SCHEME_AUTO);
    const char *pn = prec ? "float32" : "float64";
    rk_error e;
    rk_error_init(&e);
    rk_kernel *k = NULL;
    if (!CHECK(rk_compile(rc->formula, rc->decls, nd, &o, &k, &e) == RK_OK, "ranges: %s: %s",
               rc->formula, e.msg)) {
      rk_error_clear(&e);
      continue;
    }
    const rk_ranges *ri = F->axis == 0 ? &t.r : NULL, *rj = F->axis == 0 ? NULL : &t.r;
    /* random ranges against the reference */
    for (int rep = 0; rep < 3; rep++) {
      free_ranges(&t);
      if (!CHECK(make_ranges(&t, nout, nred, k->bi, &rng) == 0, "out of memory")) break;
      if (!CHECK(reference(rc, F, in, nd, &t, nout, nred, ref, scale) == 0,
                 "ranges: %s: reference: %s", rc->formula, F->err))
        break;
      int code = rk_run_ranges(k, in, nd, got, ri, rj, 2, NULL, NULL, &e);
      if (!CHECK(code == RK_OK, "ranges: %s (%s): %s", rc->formula, pn, e.msg)) break;
      double tol = (prec ? 1e-5 : 1e-12) * fmax(1, sqrt((double)nred / 1000));
      int64_t w = 0;
      double err = tu_max_relerr(got, ref, scale, (int64_t)n, &w);
      CHECK(err <= tol,
            "ranges: %s (%s) %lld x %lld, %lld blocks: error %.3e > %.1e at row %lld col %lld: "
            "%.17g vs %.17g", rc->formula, pn, (long long)nout, (long long)nred,
            (long long)t.r.nblocks, err, tol, (long long)(w % nout), (long long)(w / nout), got[w],
            ref[w]);
    }
    /* one block, the whole reduced range: the plain run, bit for bit */
    int64_t blk[2] = {0, nout}, sl[1] = {1}, rr[2] = {0, nred};
    rk_ranges all = {1, blk, sl, 1, rr};
    int c1 = rk_run_ranges(k, in, nd, got, F->axis == 0 ? &all : NULL, F->axis == 0 ? NULL : &all,
                           1, NULL, NULL, &e);
    int c2 = rk_run(k, in, nd, plain, 1, NULL, NULL, &e);
    CHECK(c1 == RK_OK && c2 == RK_OK && memcmp(got, plain, n * sizeof *got) == 0,
          "ranges: %s (%s) %lld x %lld: one full block is not the plain run bit for bit",
          rc->formula, pn, (long long)nout, (long long)nred);
    /* the other axis' ranges only: refused */
    int c3 = rk_run_ranges(k, in, nd, got, F->axis == 0 ? NULL : &all, F->axis == 0 ? &all : NULL,
                           1, NULL, NULL, &e);
    CHECK(c3 == RK_EARG && strstr(e.msg, "no ranges"), "ranges: %s: missing ranges: %s",
          rc->formula, e.msg);
    rk_error_clear(&e);
    /* inconsistent ranges: refused, naming the entry */
    int64_t bad_blk[4] = {0, nout, 0, 1}, bad_sl[2] = {1, 1}, bad_red[2] = {0, nred + 1};
    rk_ranges bad1 = {2, bad_blk, bad_sl, 1, rr};     /* overlapping blocks */
    rk_ranges bad2 = {1, blk, sl, 1, bad_red};        /* past the reduced rows */
    int64_t sl_bad[1] = {2};
    rk_ranges bad3 = {1, blk, sl_bad, 1, rr};          /* slice past the ranges */
    const rk_ranges *bads[3] = {&bad1, &bad2, &bad3};
    const char *words[3] = {"block 2", "reduced range 1", "slice 1"};
    for (int b = 0; b < 3; b++) {
      int c = rk_run_ranges(k, in, nd, got, F->axis == 0 ? bads[b] : NULL,
                            F->axis == 0 ? NULL : bads[b], 1, NULL, NULL, &e);
      CHECK(c == RK_EARG && strstr(e.msg, words[b]), "ranges: %s: bad ranges %d: %s (%s)",
            rc->formula, b + 1, rk_error_code_name(c), e.msg);
      rk_error_clear(&e);
    }
    /* interrupts: several calls with small chunks, stopped at the second */
    run_set_chunk_pairs(2048);
    ncalls = 0;
    stop_at = 0;
    int c4 = rk_run_ranges(k, in, nd, got, ri ? &t.r : NULL, rj ? &t.r : NULL, 2, count_calls,
                           NULL, &e);
    int calls = ncalls;
    ncalls = 0;
    stop_at = 2;
    int c5 = rk_run_ranges(k, in, nd, plain, ri ? &t.r : NULL, rj ? &t.r : NULL, 2, count_calls,
                           NULL, &e);
    run_set_chunk_pairs(0);
    if (nout * nred >= 100000)
      CHECK(c4 == RK_OK && calls >= 2 && c5 == RK_EINTERRUPT && ncalls == 2,
            "ranges: %s (%s): interrupts: %d checks, stop: %s after %d", rc->formula, pn, calls,
            rk_error_code_name(c5), ncalls);
    rk_error_clear(&e);
  }
  free_ranges(&t);
  tu_free_inputs(in, F->nargs);
  free(ref); free(scale); free(got); free(plain);
  free(F);
}

void test_ranges(void) {
  static const int64_t shapes[][2] = {{1, 700}, {37, 1}, {301, 1300}, {1000, 777}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
      one_case(&cases[c], shapes[s][0], shapes[s][1], 1000 + 17 * c + s);
}
