/*
 * reductions.c -- the reduction table (rows in reductions.def): shapes and
 * the emitters of each reduction (init, update, merge, finalize, and for
 * the LogSumExp family a vectorised tile pass).
 *
 * Conventions of the generated code (see cpu.c's prologue):
 *   RK_BEFORE(a, b)      a comes strictly before b in ascending order, NaN
 *                        first (so that min of a row holding NaN is NaN,
 *                        decision 9); RK_BEFORE_MAX is the same for max.
 *   index slots          0-based int64_t, -1 = empty; finalize writes
 *                        index + 1 (decision 3) or R's NA (rk_na()).
 * Ties keep the smallest index: updates run with increasing j, and merges
 * compare indices when neither value comes before the other.
 */
#include <stdio.h>
#include <string.h>
#include "internal.h"

static const char *before(const rk_red *r) {
  return (rk_redops[r->red].flags & REDF_MAX) ? "RK_BEFORE_MAX" : "RK_BEFORE";
}
static const char *inf(const rk_red *r) {
  return (rk_redops[r->red].flags & REDF_MAX) ? "-RK_INF" : "RK_INF";
}

/* ------------------------------------------------------------ Sum */
static void shape_sum(rk_ctx *c, rk_red *r) {
  (void)c;
  r->acc = r->D;
  r->out = r->D;
}
static void sum_init(rk_emit *e, const rk_red *r, rk_acc A) {
  emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = 0;", r->acc, A.v);
}
static void sum_update(rk_emit *e, const rk_red *r, rk_acc A, const char *f, const char *g,
                       const char *j) {
  (void)g; (void)j;
  emit_line(e, "for (int k = 0; k < %d; k++) %s[k] += %s[k];", r->D, A.v, f);
}
static void sum_merge(rk_emit *e, const rk_red *r, rk_acc A, rk_acc B) {
  emit_line(e, "for (int k = 0; k < %d; k++) %s[k] += %s[k];", r->acc, A.v, B.v);
}
static void sum_final(rk_emit *e, const rk_red *r, rk_acc A, const char *o, const char *s) {
  emit_line(e, "for (int k = 0; k < %d; k++) %s[k * %s] = (double)%s[k];", r->D, o, s, A.v);
}

/* ------------------------------------------------------------ Min, Max */
static void shape_min(rk_ctx *c, rk_red *r) {
  (void)c;
  r->acc = r->D;
  r->out = r->D;
}
static void min_init(rk_emit *e, const rk_red *r, rk_acc A) {
  emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = %s;", r->D, A.v, inf(r));
}
static void min_update(rk_emit *e, const rk_red *r, rk_acc A, const char *f, const char *g,
                       const char *j) {
  (void)g; (void)j;
  emit_line(e, "for (int k = 0; k < %d; k++) if (%s(%s[k], %s[k])) %s[k] = %s[k];", r->D,
            before(r), f, A.v, A.v, f);
}
static void min_merge(rk_emit *e, const rk_red *r, rk_acc A, rk_acc B) {
  emit_line(e, "for (int k = 0; k < %d; k++) if (%s(%s[k], %s[k])) %s[k] = %s[k];", r->D,
            before(r), B.v, A.v, A.v, B.v);
}
static void min_final(rk_emit *e, const rk_red *r, rk_acc A, const char *o, const char *s) {
  emit_line(e, "for (int k = 0; k < %d; k++) %s[k * %s] = (double)%s[k];", r->D, o, s, A.v);
}

/* First pass of the tile emitters: tm = the max (mx) or min of F[0 .. n)
 * in SIMD lanes, NaN aside, and bad = whether F holds a NaN. */
static void tile_extreme(rk_emit *e, int mx) {
  emit_line(e, "rk_t tm = %s;", mx ? "-RK_INF" : "RK_INF");
  emit_line(e, "int bad = 0;");
  emit_line(e, "#pragma omp simd reduction(%s:tm) reduction(|:bad)", mx ? "max" : "min");
  emit_line(e, "for (int t = 0; t < n; t++) { rk_t v = F[t]; tm = v %s tm ? v : tm; bad |= v != v; }",
            mx ? ">" : "<");
}

/* The vectorised pass over one tile of the buffered path (cpu.c), for Min,
 * Max and (index) the ArgMin family, per component k of F = fb[k][0 .. n):
 *   1. tm = the tile's min (max) in SIMD lanes, and whether F holds a NaN;
 *   2. a tile with a NaN takes the scalar updates (NaN comes first, and the
 *      first NaN's index wins: rare, and exactly the update's semantics);
 *   3. otherwise, when tm beats the accumulator (or its index slot is
 *      empty: the tile's first best term is taken, +Inf included), the
 *      first t with F[t] == tm (a SIMD min over t) and its value go into
 *      the accumulator; on a tie the accumulator's earlier index stays. */
static void minmax_tile(rk_emit *e, const rk_red *r, rk_acc A, const char *fb, const char *n,
                        const char *j0, int index) {
  int mx = (rk_redops[r->red].flags & REDF_MAX) != 0;
  emit_line(e, "for (int k = 0; k < %d; k++) {", r->D);
  e->indent++;
  emit_line(e, "const rk_t *F = %s[k];", fb);
  emit_line(e, "const int n = (int)(%s);", n);
  tile_extreme(e, mx);
  emit_line(e, "if (bad) {");
  e->indent++;
  emit_line(e, "for (int t = 0; t < n; t++) {");
  if (index)
    emit_line(e, "  if (%s[k] < 0 || %s(F[t], %s[k])) { %s[k] = F[t]; %s[k] = %s + t; }", A.i,
              before(r), A.v, A.v, A.i, j0);
  else
    emit_line(e, "  if (%s(F[t], %s[k])) %s[k] = F[t];", before(r), A.v, A.v);
  emit_line(e, "}");
  e->indent--;
  if (index) {
    /* the index pass only when the tile beats the accumulator; F[ti], not
     * tm: the same number, but with the first term's sign of zero, as the
     * scalar updates keep it */
    emit_line(e, "} else if (n > 0 && (%s[k] < 0 || %s(tm, %s[k]))) {", A.i, before(r), A.v);
    e->indent++;
    emit_line(e, "int ti = n;");
    emit_line(e, "#pragma omp simd reduction(min:ti)");
    emit_line(e, "for (int t = 0; t < n; t++) ti = (F[t] == tm && t < ti) ? t : ti;");
    emit_line(e, "%s[k] = F[ti]; %s[k] = %s + ti;", A.v, A.i, j0);
  } else {
    emit_line(e, "} else {");
    e->indent++;
    emit_line(e, "if (%s(tm, %s[k])) %s[k] = tm;", before(r), A.v, A.v);
  }
  e->indent--;
  emit_line(e, "}");
  e->indent--;
  emit_line(e, "}");
}
static void min_tile(rk_emit *e, const rk_red *r, rk_acc A, const char *fb, const char *gb,
                     const char *n, const char *j0) {
  (void)gb;
  minmax_tile(e, r, A, fb, n, j0, 0);
}

/* ------------------------------------------------------------ ArgMin & co */
static void shape_arg(rk_ctx *c, rk_red *r) {
  (void)c;
  int f = rk_redops[r->red].flags;
  r->acc = r->D;
  r->idx = r->D;
  r->out = (f & REDF_VALUE) ? 2 * r->D : r->D;
}
static void arg_init(rk_emit *e, const rk_red *r, rk_acc A) {
  emit_line(e, "for (int k = 0; k < %d; k++) { %s[k] = %s; %s[k] = -1; }", r->D, A.v, inf(r), A.i);
}
static void arg_update(rk_emit *e, const rk_red *r, rk_acc A, const char *f, const char *g,
                       const char *j) {
  (void)g;
  emit_line(e, "for (int k = 0; k < %d; k++) if (%s[k] < 0 || %s(%s[k], %s[k])) { %s[k] = %s[k]; %s[k] = %s; }",
            r->D, A.i, before(r), f, A.v, A.v, f, A.i, j);
}
static void arg_merge(rk_emit *e, const rk_red *r, rk_acc A, rk_acc B) {
  emit_line(e, "for (int k = 0; k < %d; k++)", r->D);
  emit_line(e, "  if (%s[k] >= 0 && (%s[k] < 0 || %s(%s[k], %s[k]) || (!%s(%s[k], %s[k]) && %s[k] < %s[k]))) {",
            B.i, A.i, before(r), B.v, A.v, before(r), A.v, B.v, B.i, A.i);
  emit_line(e, "    %s[k] = %s[k]; %s[k] = %s[k];", A.v, B.v, A.i, B.i);
  emit_line(e, "  }");
}
static void arg_tile(rk_emit *e, const rk_red *r, rk_acc A, const char *fb, const char *gb,
                     const char *n, const char *j0) {
  (void)gb;
  minmax_tile(e, r, A, fb, n, j0, 1);
}
static void write_index(rk_emit *e, const char *o, const char *col, const char *s, const char *I) {
  emit_line(e, "%s[(%s) * %s] = %s >= 0 ? (double)(%s + 1) : rk_na();", o, col, s, I, I);
}
static void arg_final(rk_emit *e, const rk_red *r, rk_acc A, const char *o, const char *s) {
  int f = rk_redops[r->red].flags;
  char col[64], I[64];
  emit_line(e, "for (int k = 0; k < %d; k++) {", r->D);
  e->indent++;
  if (f & REDF_VALUE) {
    emit_line(e, "%s[k * %s] = (double)%s[k];", o, s, A.v);
    snprintf(col, sizeof col, "k + %d", r->D);
  } else {
    snprintf(col, sizeof col, "k");
  }
  snprintf(I, sizeof I, "%s[k]", A.i);
  write_index(e, o, col, s, I);
  e->indent--;
  emit_line(e, "}");
}

/* ------------------------------------------------------------ KMin & co
 * Per component d, K slots sorted by (value, index): slot k of component
 * d is at d*K + k.  Output columns follow R's array(, c(n, K, D)) layout:
 * column k + K*d (then the indices after the K*D values for KMin_ArgKMin). */
static void shape_kmin(rk_ctx *c, rk_red *r) {
  if ((long)r->K * r->D > 100000)
    rk_fail(c, RK_EDIM, r->pos, "K * dimension = %ld is too large (at most 100000)", (long)r->K * r->D);
  int f = rk_redops[r->red].flags;
  r->acc = r->K * r->D;
  r->idx = r->K * r->D;
  r->out = ((f & REDF_VALUE) && (f & REDF_INDEX)) ? 2 * r->K * r->D : r->K * r->D;
}
static void kmin_init(rk_emit *e, const rk_red *r, rk_acc A) {
  emit_line(e, "for (int k = 0; k < %d; k++) { %s[k] = RK_INF; %s[k] = -1; }", r->acc, A.v, A.i);
}
static void kmin_update(rk_emit *e, const rk_red *r, rk_acc A, const char *f, const char *g,
                        const char *j) {
  (void)g;
  int K = r->K;
  emit_line(e, "for (int d = 0; d < %d; d++) {", r->D);
  e->indent++;
  emit_line(e, "acc_t *V = %s + d * %d; int64_t *X = %s + d * %d; acc_t fv = %s[d];", A.v, K, A.i, K, f);
  emit_line(e, "if (X[%d] < 0 || RK_BEFORE(fv, V[%d])) {", K - 1, K - 1);
  e->indent++;
  emit_line(e, "int p = %d;", K - 1);
  emit_line(e, "while (p > 0 && (X[p - 1] < 0 || RK_BEFORE(fv, V[p - 1]))) { V[p] = V[p - 1]; X[p] = X[p - 1]; p--; }");
  emit_line(e, "V[p] = fv; X[p] = %s;", j);
  e->indent--;
  emit_line(e, "}");
  e->indent--;
  emit_line(e, "}");
}
static void kmin_merge(rk_emit *e, const rk_red *r, rk_acc A, rk_acc B) {
  int K = r->K;
  emit_line(e, "for (int d = 0; d < %d; d++) {", r->D);
  e->indent++;
  emit_line(e, "acc_t *V = %s + d * %d, *W = %s + d * %d; int64_t *X = %s + d * %d, *Y = %s + d * %d;",
            A.v, K, B.v, K, A.i, K, B.i, K);
  emit_line(e, "acc_t tv[%d]; int64_t ti[%d]; int p = 0, q = 0;", K, K);
  emit_line(e, "for (int k = 0; k < %d; k++) {", K);
  emit_line(e, "  int takeB = Y[q] >= 0 && (X[p] < 0 || RK_BEFORE(W[q], V[p]) || (!RK_BEFORE(V[p], W[q]) && Y[q] < X[p]));");
  emit_line(e, "  if (takeB) { tv[k] = W[q]; ti[k] = Y[q]; q++; } else { tv[k] = V[p]; ti[k] = X[p]; p++; }");
  emit_line(e, "}");
  emit_line(e, "for (int k = 0; k < %d; k++) { V[k] = tv[k]; X[k] = ti[k]; }", K);
  e->indent--;
  emit_line(e, "}");
}
static void kmin_final(rk_emit *e, const rk_red *r, rk_acc A, const char *o, const char *s) {
  int f = rk_redops[r->red].flags;
  int n = r->K * r->D;
  emit_line(e, "for (int k = 0; k < %d; k++) {", n);
  e->indent++;
  char col[64], I[64];
  snprintf(I, sizeof I, "%s[k]", A.i);
  if (f & REDF_VALUE) emit_line(e, "%s[k * %s] = (double)%s[k];", o, s, A.v);
  if (f & REDF_INDEX) {
    snprintf(col, sizeof col, (f & REDF_VALUE) ? "k + %d" : "k", n);
    write_index(e, o, col, s, I);
  }
  e->indent--;
  emit_line(e, "}");
}

/* ------------------------------------------------------------ shifted exp sums
 * LogSumExp and its relatives share one accumulator: m = running max of F
 * (a scalar) and S[w] = sum_j exp(F_j - m) W_j[w], rescaled whenever m
 * grows.  The weights W are 1 (LogSumExp, Max_SumShiftExp), G (the Weight
 * forms) or (1, G) (SumSoftMaxWeight).  -Inf terms add nothing (an all
 * -Inf row has -Inf as LogSumExp and 0/0 = NaN as soft-max), a NaN
 * poisons the row whatever its position, +Inf terms add their weights. */
static int lse_weights(const rk_red *r) {
  switch (r->red) {
  case RK_RED_LOGSUMEXPWEIGHT: case RK_RED_MAX_SUMSHIFTEXPWEIGHT: return r->DG;
  case RK_RED_SUMSOFTMAXWEIGHT: return 1 + r->DG;
  default: return 1;
  }
}
static void shape_lse(rk_ctx *c, rk_red *r) {
  if (r->D != 1)
    rk_fail(c, RK_EDIM, r->pos, "%s_Reduction needs a scalar formula, not one of dimension %d",
            rk_redops[r->red].name, r->D);
  int W = lse_weights(r);
  r->acc = 1 + W;
  switch (r->red) {
  case RK_RED_LOGSUMEXP: r->out = 1; break;
  case RK_RED_LOGSUMEXPWEIGHT: case RK_RED_SUMSOFTMAXWEIGHT: r->out = r->DG; break;
  default: r->out = 1 + W; break; /* the raw (m, s) pairs */
  }
}
/* weight w of the current term, as an expression */
static void weight_expr(const rk_red *r, const char *g, char *buf, size_t n) {
  if (r->red == RK_RED_SUMSOFTMAXWEIGHT)
    snprintf(buf, n, "(w == 0 ? 1.0 : (double)%s[w - 1])", g);
  else if (g && r->DG > 0)
    snprintf(buf, n, "(double)%s[w]", g);
  else
    snprintf(buf, n, "1.0");
}
static void lse_init(rk_emit *e, const rk_red *r, rk_acc A) {
  emit_line(e, "%s[0] = -RK_INF; for (int w = 1; w < %d; w++) %s[w] = 0;", A.v, r->acc, A.v);
}
static void lse_update(rk_emit *e, const rk_red *r, rk_acc A, const char *f, const char *g,
                       const char *j) {
  (void)j;
  int W = lse_weights(r);
  char we[96];
  weight_expr(r, g, we, sizeof we);
  emit_line(e, "{");
  e->indent++;
  emit_line(e, "double fv = (double)%s[0], m = %s[0]; double *S = %s + 1;", f, A.v, A.v);
  emit_line(e, "if (fv > m) {");
  emit_line(e, "  double sc = m == -RK_INF ? 0.0 : exp(m - fv);");
  emit_line(e, "  for (int w = 0; w < %d; w++) S[w] = S[w] * sc + %s;", W, we);
  emit_line(e, "  %s[0] = fv;", A.v);
  emit_line(e, "} else if (fv == m && fv != -RK_INF) {   /* equal infinities */");
  emit_line(e, "  for (int w = 0; w < %d; w++) S[w] += %s;", W, we);
  emit_line(e, "} else if (fv < m) {");
  emit_line(e, "  double ex = exp(fv - m);");
  emit_line(e, "  for (int w = 0; w < %d; w++) S[w] += ex * %s;", W, we);
  emit_line(e, "} else if (fv != fv) {                     /* NaN poisons the row */");
  emit_line(e, "  %s[0] = fv; for (int w = 0; w < %d; w++) S[w] = fv;", A.v, W);
  emit_line(e, "}");
  e->indent--;
  emit_line(e, "}");
}
static void lse_merge(rk_emit *e, const rk_red *r, rk_acc A, rk_acc B) {
  int W = lse_weights(r);
  emit_line(e, "{");
  e->indent++;
  emit_line(e, "double m1 = %s[0], m2 = %s[0];", A.v, B.v);
  emit_line(e, "if (m1 != m1 || m2 != m2) { for (int w = 0; w < %d; w++) %s[w] = m1 + m2; }", W + 1, A.v);
  emit_line(e, "else if (m2 > m1) {");
  emit_line(e, "  double sc = m1 == -RK_INF ? 0.0 : exp(m1 - m2);");
  emit_line(e, "  for (int w = 1; w < %d; w++) %s[w] = %s[w] * sc + %s[w];", W + 1, A.v, A.v, B.v);
  emit_line(e, "  %s[0] = m2;", A.v);
  emit_line(e, "} else if (m2 == m1) {");
  emit_line(e, "  for (int w = 1; w < %d; w++) %s[w] += %s[w];", W + 1, A.v, B.v);
  emit_line(e, "} else {");
  emit_line(e, "  double sc = m2 == -RK_INF ? 0.0 : exp(m2 - m1);");
  emit_line(e, "  for (int w = 1; w < %d; w++) %s[w] += %s[w] * sc;", W + 1, A.v, B.v);
  emit_line(e, "}");
  e->indent--;
  emit_line(e, "}");
}
/* The vectorised pass over one tile of the buffered path (cpu.c), instead
 * of n scalar updates: F = fb[0][0 .. n) holds the formula's values, and
 * gb[w][0 .. n) the weights.
 *   1. tm = the tile's max of F (NaN aside), and whether F holds a NaN;
 *   2. nm = max(m, tm), the new shift, and the tile's sums
 *        s_w = sum_t exp(F_t - nm) W_t[w]
 *      with the prologue's branch-free RK_EXP, in SIMD lanes, in the
 *      working precision (the weighted forms keep exp(F_t - nm) in F and
 *      take one dot product per weight);
 *   3. the merge of (nm, s) into the accumulator: S = S exp(m - nm) + s.
 * float32: F_t - nm, exp (rk_expf, <= 3 ulp) and the sums of a tile (at
 * most BJ / lanes terms per lane) are float32, flushed into the double
 * accumulator once per tile; twice as many lanes as double and a shorter
 * polynomial, and relative errors near 1e-7 (test_lse.c).
 * Same special values as update: a tile that holds a NaN poisons the row
 * (with its last NaN, as the scalar updates would); an all -Inf tile adds
 * nothing (and keeps nm = -Inf out of exp(-Inf - -Inf)); a term equal to
 * nm counts exp(0) = 1, so that equal infinities add their weights; other
 * terms under nm = +Inf count exp(-Inf) = 0. */
static void lse_tile(rk_emit *e, const rk_red *r, rk_acc A, const char *fb, const char *gb,
                     const char *n, const char *j0) {
  (void)j0;
  int W = lse_weights(r);
  int one = r->red != RK_RED_LOGSUMEXPWEIGHT && r->red != RK_RED_MAX_SUMSHIFTEXPWEIGHT;
  int ng = one ? W - 1 : W;    /* weights read from gb, after the 1 if any */
  emit_line(e, "{");
  e->indent++;
  emit_line(e, "rk_t *F = %s[0];", fb);
  emit_line(e, "const int n = (int)(%s);", n);
  tile_extreme(e, 1);
  emit_line(e, "double m = %s[0], *S = %s + 1;", A.v, A.v);
  emit_line(e, "if (bad) {");
  emit_line(e, "  double nv = 0;");
  emit_line(e, "  for (int64_t t = 0; t < n; t++) if (F[t] != F[t]) nv = F[t];");
  emit_line(e, "  %s[0] = nv; for (int w = 0; w < %d; w++) S[w] = nv;", A.v, W);
  emit_line(e, "} else if (m == m && tm != -RK_INF) {");
  e->indent++;
  emit_line(e, "const rk_t nm = tm > m ? tm : (rk_t)m;");
  emit_line(e, "const double sc = tm > m ? (m == -RK_INF ? 0.0 : exp(m - (double)nm)) : 1.0;");
  if (one) {
    emit_line(e, "rk_t s = 0;");
    emit_line(e, "#pragma omp simd reduction(+:s)");
  } else {
    emit_line(e, "#pragma omp simd");
  }
  emit_line(e, "for (int64_t t = 0; t < n; t++) {");
  emit_line(e, "  rk_t v = F[t];");
  emit_line(e, "  rk_t x = RK_EXP(v == nm ? (rk_t)0 : v - nm);");
  if (ng > 0) emit_line(e, "  F[t] = x;");
  if (one) emit_line(e, "  s += x;");
  emit_line(e, "}");
  if (one) emit_line(e, "S[0] = S[0] * sc + (double)s;");
  if (ng > 0) {
    emit_line(e, "for (int w = 0; w < %d; w++) {", ng);
    e->indent++;
    emit_line(e, "const rk_t *G = %s[w];", gb);
    emit_line(e, "rk_t sw = 0;");
    emit_line(e, "#pragma omp simd reduction(+:sw)");
    emit_line(e, "for (int64_t t = 0; t < n; t++) sw += F[t] * G[t];");
    emit_line(e, "S[w + %d] = S[w + %d] * sc + (double)sw;", one, one);
    e->indent--;
    emit_line(e, "}");
  }
  emit_line(e, "%s[0] = nm;", A.v);
  e->indent--;
  emit_line(e, "}");
  e->indent--;
  emit_line(e, "}");
}
static void lse_final(rk_emit *e, const rk_red *r, rk_acc A, const char *o, const char *s) {
  switch (r->red) {
  case RK_RED_LOGSUMEXP:
    emit_line(e, "%s[0] = %s[0] + log(%s[1]);", o, A.v, A.v);
    break;
  case RK_RED_LOGSUMEXPWEIGHT:
    emit_line(e, "for (int w = 0; w < %d; w++) %s[w * %s] = %s[0] + log(%s[1 + w]);", r->DG, o, s,
              A.v, A.v);
    break;
  case RK_RED_SUMSOFTMAXWEIGHT:
    emit_line(e, "for (int w = 0; w < %d; w++) %s[w * %s] = %s[2 + w] / %s[1];", r->DG, o, s, A.v,
              A.v);
    break;
  default:
    emit_line(e, "for (int w = 0; w < %d; w++) %s[w * %s] = %s[w];", r->acc, o, s, A.v);
    break;
  }
}

/* ------------------------------------------------------------ the table */

#define X(id, name, nextra, hasK, shape, init, update, tile, merge, fin, deriv, flags) \
  {name, nextra, hasK, shape, init, update, tile, merge, fin, deriv, flags},
const rk_redop rk_redops[RK_RED_COUNT] = {
#include "reductions.def"
};
#undef X

int red_lookup(const char *name, size_t len) {
  for (int i = 0; i < RK_RED_COUNT; i++)
    if (strlen(rk_redops[i].name) == len && memcmp(rk_redops[i].name, name, len) == 0)
      return i;
  return -1;
}
