/*
 * cpu.c -- the CPU map-reduce scheme (C, OpenMP threads, SIMD over j).
 *
 * High level description
 * ----------------------
 * The generated source has two functions.
 *
 * rk_block(b, bend, ja, jb, st, init) accumulates the output rows
 * [b, bend) over the reduced indices [ja, jb) into their states st[]
 * (accumulator, index slots, Kahan compensations), initialised first when
 * init is set:
 *
 *   load the parameters, compute the nodes that depend only on them
 *   if init: init st[0 .. bend-b)
 *   for each tile [j0, j0 + BJ) of [ja, jb)              (stays in cache)
 *     for each group of U rows i .. i+U-1 of the block   (register blocking)
 *       load the rows' variables, compute the row-only nodes, U copies
 *       FUSED  (Sum-like, small D):
 *         #pragma omp simd reduction(+: P<u>_<k>)         (SIMD over j)
 *         for j in the tile: load j's variables, the j-only nodes once,
 *                            the pair nodes U times, P<u>_<k> += f<u>[k]
 *         st[i+u] += P<u>            (per-lane partial sums flushed per tile)
 *       BUFFERED (every other reduction, Kahan, large D):  U = 1
 *         #pragma omp simd  for j in the tile: fb[k][j - j0] = f[k]
 *         then, with the reduction's tile emitter (LogSumExp family):
 *           #pragma omp simd passes over fb (max, then sums of rk_exp)
 *           and one merge of the tile into st[i]
 *         or without one:
 *           for j in the tile: update(st[i], fb[.][j - j0], j)   (scalar)
 *
 * rk_entry(r0, r1, ja, jb, ...) accumulates the rows [r0, r1) over
 * [ja, jb).  It runs blocks of BI output rows in parallel (OpenMP, dynamic
 * schedule, num_threads from the caller's single thread getter) and
 * finalizes them into the column-major output.  run.c calls it on chunks
 * of rows and of reduced indices (interrupt checks in between): when the
 * reduced range is cut, the rows' states live in the caller's scratch and
 * go from one call to the next (initialised when ja = 0, finalized when
 * jb = nred), so a row meets the same tiles in the same order either way.
 * When the output has too few rows to feed every thread (at most one
 * block), it splits [ja, jb) instead: each thread accumulates its share
 * for all rows into a partial state in the scratch, and the partial states
 * are merged into the carried ones in thread order with the reduction's
 * merge (finalized when jb = nred).
 *
 * Summation: "block" (the default) accumulates each tile in the working
 * precision (per SIMD lane in the fused loop) and adds the tile's sum to
 * a double accumulator, so float32 sums stay accurate; "direct" keeps the
 * accumulator in the working precision; "kahan" uses compensated updates
 * (buffered path).  exp and log are our own branch-free polynomial kernels
 * (prologue), so they vectorize without a vector math library; every other
 * math function is the C library's.
 *
 * Data are column-major (R's layout): component k of row r of an input
 * with n rows is a[r + k n], so every component streams contiguously
 * along j, which is what SIMD over j wants.
 */
#include <stdio.h>
#include <string.h>
#include "internal.h"

#define CPU_BI 32            /* output rows per block                      */
#define CPU_BJ RK_CPU_BJ     /* reduced indices per tile                   */
#define CPU_STACK_LIMIT (1 << 20)
#define CPU_FUSED_MAX 32     /* most accumulators kept in registers        */
#define CPU_BUF_BYTES 65536  /* tile buffer of the buffered path           */

/* ------------------------------------------------------------ prologue */

/* exp and log: range reduction to |r| <= ln(2)/2 (exp) or to a mantissa in
 * [sqrt(1/2), sqrt(2)) (log), Taylor / atanh series, exact scaling by
 * powers of two built from integer bits.  No branch: special values go
 * through selects.  Accuracy is checked by the C tests (<= 2 ulp double,
 * <= 3 ulp float).  Below the range where exp(x) rounds to 0, the lanes
 * compute exp(0) and select 0: a product that underflows costs a microcode
 * assist of ~100 cycles per instruction on x86 (a narrow Gaussian, whose
 * far pairs all underflow, ran 10x slower). */
static const char *math_f64 =
  "static inline double rk_exp(double x) {\n"
  "  int lo = x < -746.0;                /* exp(x) rounds to 0: no underflowing product */\n"
  "  double xc = lo ? 0.0 : (x > 710.0 ? 710.0 : x);\n"
  "  union { double d; int64_t i; } m, s1, s2;\n"
  "  m.d = xc * 1.4426950408889634 + 6755399441055744.0;   /* round to integer */\n"
  "  double n = m.d - 6755399441055744.0;\n"
  "  double r = (xc - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;\n"
  "  double p = 1.0 / 6227020800.0;\n"
  "  p = p * r + 1.0 / 479001600.0; p = p * r + 1.0 / 39916800.0; p = p * r + 1.0 / 3628800.0;\n"
  "  p = p * r + 1.0 / 362880.0; p = p * r + 1.0 / 40320.0; p = p * r + 1.0 / 5040.0;\n"
  "  p = p * r + 1.0 / 720.0; p = p * r + 1.0 / 120.0; p = p * r + 1.0 / 24.0;\n"
  "  p = p * r + 1.0 / 6.0; p = p * r + 0.5; p = p * r + 1.0; p = p * r + 1.0;\n"
  "  int64_t k = m.i - 0x4338000000000000LL, k1 = k >> 1, k2 = k - k1;\n"
  "  s1.i = (k1 + 1023) << 52; s2.i = (k2 + 1023) << 52;\n"
  "  return x != x ? x : (lo ? 0.0 : p * s1.d * s2.d);\n"
  "}\n"
  "static inline double rk_log(double x) {\n"
  "  int sub = x < 2.2250738585072014e-308;\n"
  "  union { double d; int64_t i; } u;\n"
  "  u.d = sub ? x * 18014398509481984.0 : x;                 /* 2^54 */\n"
  "  int64_t e = ((u.i >> 52) & 0x7ff) - 1023 - (sub ? 54 : 0);\n"
  "  u.i = (u.i & 0x000fffffffffffffLL) | 0x3ff0000000000000LL;\n"
  "  double m = u.d;\n"
  "  int big = m > 1.4142135623730951;\n"
  "  m = big ? 0.5 * m : m;\n"
  "  double de = (double)(e + (big ? 1 : 0));\n"
  "  double f = m - 1.0, s = f / (2.0 + f), z = s * s, h = 0.5 * f * f;\n"
  "  double R = 2.0 / 23.0;\n"
  "  R = R * z + 2.0 / 21.0; R = R * z + 2.0 / 19.0; R = R * z + 2.0 / 17.0; R = R * z + 2.0 / 15.0;\n"
  "  R = R * z + 2.0 / 13.0; R = R * z + 2.0 / 11.0; R = R * z + 2.0 / 9.0; R = R * z + 2.0 / 7.0;\n"
  "  R = R * z + 2.0 / 5.0; R = R * z + 2.0 / 3.0; R = R * z;\n"
  "  double r = de * 6.93147180369123816490e-01 + ((f - (h - s * (h + R))) + de * 1.90821492927058770002e-10);\n"
  "  r = x == 0 ? -RK_INF : r;\n"
  "  r = x == RK_INF ? x : r;\n"
  "  return (x < 0 || x != x) ? (x - x) / (x - x) + x : r;\n"
  "}\n";

static const char *math_f32 =
  "static inline float rk_expf(float x) {\n"
  "  int lo = x < -104.0f;\n"
  "  float xc = lo ? 0.0f : (x > 89.0f ? 89.0f : x);\n"
  "  union { float f; int32_t i; } m, s1, s2;\n"
  "  m.f = xc * 1.44269504f + 12582912.0f;                    /* round to integer */\n"
  "  float n = m.f - 12582912.0f;\n"
  "  float r = (xc - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;\n"
  "  float p = 1.0f / 5040.0f;\n"
  "  p = p * r + 1.0f / 720.0f; p = p * r + 1.0f / 120.0f; p = p * r + 1.0f / 24.0f;\n"
  "  p = p * r + 1.0f / 6.0f; p = p * r + 0.5f; p = p * r + 1.0f; p = p * r + 1.0f;\n"
  "  int32_t k = m.i - 0x4B400000, k1 = k >> 1, k2 = k - k1;\n"
  "  s1.i = (k1 + 127) << 23; s2.i = (k2 + 127) << 23;\n"
  "  return x != x ? x : (lo ? 0.0f : p * s1.f * s2.f);\n"
  "}\n"
  "static inline float rk_logf(float x) {\n"
  "  int sub = x < 1.17549435e-38f;\n"
  "  union { float f; int32_t i; } u;\n"
  "  u.f = sub ? x * 16777216.0f : x;                          /* 2^24 */\n"
  "  int32_t e = ((u.i >> 23) & 0xff) - 127 - (sub ? 24 : 0);\n"
  "  u.i = (u.i & 0x007fffff) | 0x3f800000;\n"
  "  float m = u.f;\n"
  "  int big = m > 1.41421356f;\n"
  "  m = big ? 0.5f * m : m;\n"
  "  float de = (float)(e + (big ? 1 : 0));\n"
  "  float f = m - 1.0f, s = f / (2.0f + f), z = s * s, h = 0.5f * f * f;\n"
  "  float R = 2.0f / 11.0f;\n"
  "  R = R * z + 2.0f / 9.0f; R = R * z + 2.0f / 7.0f; R = R * z + 2.0f / 5.0f;\n"
  "  R = R * z + 2.0f / 3.0f; R = R * z;\n"
  "  float r = de * 0.693145751953125f + ((f - (h - s * (h + R))) + de * 1.428606765330187045e-06f);\n"
  "  r = x == 0 ? -(float)RK_INF : r;\n"
  "  r = x == (float)RK_INF ? x : r;\n"
  "  return (x < 0 || x != x) ? (x - x) / (x - x) + x : r;\n"
  "}\n";

static void prologue(rk_emit *e, int f32, const char *acc_t) {
  rk_buf *b = e->b;
  buf_printf(b, "/* rkeops generated kernel, engine version %s: do not edit */\n", RK_ENGINE_VERSION);
  buf_puts(b, "#include <math.h>\n#include <stdint.h>\n");
  buf_printf(b, "typedef %s rk_t;\ntypedef %s acc_t;\n", f32 ? "float" : "double", acc_t);
  buf_puts(b,
    "#define RK_INF HUGE_VAL\n"
    "#define RK_DEV static inline\n");
  buf_puts(b, f32 ? math_f32 : math_f64);
  emit_prologue_common(b, f32, "rk_exp", "rk_log");
  buf_puts(b,
    "/* R's NA_real_: a NaN with payload 1954 */\n"
    "static inline double rk_na(void) {\n"
    "  union { double d; uint64_t u; } x;\n"
    "  x.u = 0x7FF00000000007A2ULL;\n"
    "  return x.d;\n"
    "}\n"
    "#ifdef _OPENMP\nint omp_get_num_threads(void);\nint omp_get_thread_num(void);\n#endif\n\n");
}

/* ------------------------------------------------------------ helpers */

static void stack_bytes(rk_node *n, unsigned char *seen, size_t *total) {
  if (seen[n->id]) return;
  seen[n->id] = 1;
  *total += (size_t)n->dim * 8;
  for (int i = 0; i < n->nkids; i++) stack_bytes(n->kid[i], seen, total);
}

/* loads of the variables of category cat: v<p>[k] = a<p>[row + k*stride] */
static void emit_loads(rk_emit *e, rk_ctx *c, const unsigned char *used, int cat,
                       const char *row, const char *stride) {
  char nm[32];
  for (int p = 0; p < c->nargs; p++) {
    if (!used[p] || c->args[p].cat != cat) continue;
    int d = c->args[p].dim;
    rk_node probe;
    memset(&probe, 0, sizeof probe);
    probe.op = RK_OP_VAR;
    probe.par[0] = p;
    probe.deps = cat == RK_CAT_I ? DEP_I : cat == RK_CAT_J ? DEP_J : DEP_PM;
    emit_name(e, &probe, nm, sizeof nm);
    emit_line(e, "rk_t %s[%d];", nm, d);
    if (cat == RK_CAT_PM)
      emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = a%d[k];", d, nm, p);
    else if (d == 1)
      emit_line(e, "%s[0] = a%d[%s];", nm, p, row);
    else
      emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = a%d[%s + k * %s];", d, nm, p, row, stride);
  }
}

static void open_scope(rk_emit *e, const char *fmt, const char *arg) {
  emit_line(e, fmt, arg);
  e->indent++;
}
static void close_scope(rk_emit *e) {
  e->indent--;
  emit_line(e, "}");
}

/* Few rows: the threads split [ja, jb), each into its partial states
 * ps[t] (initialised), then merged into the carried states cs in thread
 * order; nthr gets the team's size.  Shared by rk_entry and rk_partial. */
static void emit_thread_split(rk_emit *e, const rk_redop *ro, const rk_red *r) {
  emit_line(e, "#pragma omp parallel num_threads(nthreads)");
  emit_line(e, "{");
  e->indent++;
  emit_line(e, "int t = 0, T = 1;");
  emit_line(e, "#ifdef _OPENMP");
  emit_line(e, "t = omp_get_thread_num(); T = omp_get_num_threads();");
  emit_line(e, "#endif");
  emit_line(e, "if (t == 0) nthr = T;");
  emit_line(e, "rk_block(nout, nred, args, r0, r1, ja + (jb - ja) * t / T, ja + (jb - ja) * (t + 1) / T,");
  emit_line(e, "         ps[t], 1);");
  e->indent--;
  emit_line(e, "}");
  emit_line(e, "for (int t = 0; t < nthr; t++) {");
  emit_line(e, "  for (int64_t i = r0; i < r1; i++) {");
  e->indent += 2;
  ro->merge(e, r, (rk_acc){"cs[i - r0].v", "cs[i - r0].i"}, (rk_acc){"ps[t][i - r0].v", "ps[t][i - r0].i"});
  e->indent -= 2;
  emit_line(e, "  }");
  emit_line(e, "}");
}


/* ------------------------------------------------------------ partial states */

/* Three more functions for runs split over the reduced index across
 * processes (R/future.R, run.c's rk_run_partial and rk_merge_partials);
 * rk_entry is left as it is.
 *
 * rk_state_bytes() is sizeof(rk_state), the layout the two others share.
 *
 * rk_partial(r0, r1, ja, jb, init, ...) accumulates the rows [r0, r1) over
 * [ja, jb) into states[] (initialised first when init is set) and does
 * not finalize them: the caller carries them over consecutive ranges.
 * Blocks of BI rows go to the threads; with few rows (at most BI), a
 * scratch of nthreads * BI states and several threads, the threads split
 * [ja, jb) and their partial states are merged in thread order.
 *
 * rk_merge_final(nrows, nparts, states, offsets, out) merges parts 1 ..
 * nparts - 1 into part 0, in that order, row by row (part t holds the
 * states of the nrows rows over a range of reduced indices starting at
 * offsets[t]: its index slots are shifted by it first), then finalizes
 * part 0 into the column-major nrows x outdim out. */
static void cpu_generate_partial(rk_emit *e, const rk_red *r, const rk_redop *ro, int kahan) {
  emit_line(e, "");
  emit_line(e, "int64_t rk_state_bytes(void) { return (int64_t)sizeof(rk_state); }");
  emit_line(e, "");
  emit_line(e, "int rk_partial(int64_t nout, int64_t nred, const void *const *args, int64_t r0,");
  emit_line(e, "               int64_t r1, int64_t ja, int64_t jb, int init, int nthreads, void *states,");
  emit_line(e, "               void *scratch) {");
  e->indent++;
  emit_line(e, "rk_state *cs = (rk_state *)states;");
  emit_line(e, "if (!cs || r0 < 0 || r1 > nout || r0 >= r1 || ja < 0 || jb > nred || ja > jb) return -1;");
  open_scope(e, "if (init) for (int64_t i = r0; i < r1; i++) {%s", "");
  ro->init(e, r, (rk_acc){"cs[i - r0].v", "cs[i - r0].i"});
  if (kahan) emit_line(e, "for (int k = 0; k < NACC; k++) cs[i - r0].c[k] = 0;");
  close_scope(e);
  emit_line(e, "if (scratch && r1 - r0 <= BI && nthreads > 1) {");
  e->indent++;
  emit_line(e, "rk_state (*ps)[BI] = (rk_state (*)[BI])scratch;");
  emit_line(e, "int nthr = 1;");
  emit_thread_split(e, ro, r);
  emit_line(e, "return 0;");
  e->indent--;
  emit_line(e, "}");
  emit_line(e, "#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads) if (nthreads > 1)");
  emit_line(e, "for (int64_t b = r0; b < r1; b += BI)");
  emit_line(e, "  rk_block(nout, nred, args, b, RK_MIN(b + BI, r1), ja, jb, cs + (b - r0), 0);");
  emit_line(e, "return 0;");
  e->indent--;
  emit_line(e, "}");
  emit_line(e, "");
  emit_line(e, "int rk_merge_final(int64_t nrows, int nparts, void *states, const int64_t *offsets,");
  emit_line(e, "                   double *out) {");
  e->indent++;
  emit_line(e, "rk_state *s = (rk_state *)states;");
  emit_line(e, "if (!s || nrows < 1 || nparts < 1 || !offsets) return -1;");
  emit_line(e, "for (int64_t i = 0; i < nrows; i++) {");
  e->indent++;
  emit_line(e, "for (int t = 0; t < nparts; t++) {");
  e->indent++;
  emit_line(e, "rk_state *b = &s[(int64_t)t * nrows + i];");
  if (r->idx > 0) emit_line(e, "for (int k = 0; k < NIDX; k++) if (b->i[k] >= 0) b->i[k] += offsets[t];");
  emit_line(e, "if (t == 0) continue;");
  ro->merge(e, r, (rk_acc){"s[i].v", "s[i].i"}, (rk_acc){"b->v", "b->i"});
  e->indent--;
  emit_line(e, "}");
  ro->finalize(e, r, (rk_acc){"s[i].v", "s[i].i"}, "(out + i)", "nrows");
  e->indent--;
  emit_line(e, "}");
  emit_line(e, "return 0;");
  e->indent--;
  emit_line(e, "}");
}

/* ------------------------------------------------------------ generation */

/* rk_entry_ranges(nw, w, red, ...): block-sparse reductions (run.c builds
 * the work list from the caller's ranges).  Work item t is the output rows
 * [w[4t], w[4t+1]) (at most BI of them) reduced over the ranges
 * red[2s] .. red[2s+1] for s in [w[4t+2], w[4t+3]), in that order; a row
 * with no range gets the reduction of nothing (init, then finalize).  Work
 * items run in parallel and write disjoint rows. */
static void emit_entry_ranges(rk_emit *e, const rk_redop *ro, rk_red *r) {
  emit_line(e, "");
  emit_line(e, "int rk_entry_ranges(int64_t nout, int64_t nred, const void *const *args, double *out,");
  emit_line(e, "                    int64_t nw, const int64_t *w, const int64_t *red, int nthreads,");
  emit_line(e, "                    int *used) {");
  e->indent++;
  emit_line(e, "int nthr = 1;");
  emit_line(e, "#pragma omp parallel num_threads(nthreads) if (nthreads > 1)");
  emit_line(e, "{");
  e->indent++;
  emit_line(e, "#ifdef _OPENMP");
  emit_line(e, "if (omp_get_thread_num() == 0) nthr = omp_get_num_threads();");
  emit_line(e, "#endif");
  emit_line(e, "#pragma omp for schedule(dynamic, 1)");
  emit_line(e, "for (int64_t t = 0; t < nw; t++) {");
  e->indent++;
  emit_line(e, "const int64_t b = w[4 * t], bend = w[4 * t + 1], s0 = w[4 * t + 2], s1 = w[4 * t + 3];");
  emit_line(e, "rk_state st[BI];");
  emit_line(e, "if (s0 == s1) rk_block(nout, nred, args, b, bend, 0, 0, st, 1);");
  emit_line(e, "for (int64_t s = s0; s < s1; s++)");
  emit_line(e, "  rk_block(nout, nred, args, b, bend, red[2 * s], red[2 * s + 1], st, s == s0);");
  open_scope(e, "for (int64_t i = b; i < bend; i++) {%s", "");
  ro->finalize(e, r, (rk_acc){"st[i - b].v", "st[i - b].i"}, "(out + i)", "nout");
  close_scope(e);
  e->indent--;
  emit_line(e, "}");
  e->indent--;
  emit_line(e, "}");
  emit_line(e, "if (used) *used = nthr;");
  emit_line(e, "return 0;");
  e->indent--;
  emit_line(e, "}");
}

void cpu_generate(rk_ctx *c, rk_red *r, const rk_options *o, rk_buf *out) {
  const rk_redop *ro = &rk_redops[r->red];
  int f32 = o->precision == RK_F32;
  int sumlike = (ro->flags & REDF_SUMLIKE) != 0;
  rk_scheme scheme = o->scheme == RK_SCHEME_AUTO ? RK_SCHEME_BLOCK : o->scheme;
  if (!sumlike) scheme = RK_SCHEME_DIRECT;
  const char *acc_t = (scheme == RK_SCHEME_BLOCK || (ro->flags & REDF_ACC_DOUBLE)) ? "double" : "rk_t";
  int accdim = r->acc, idxdim = r->idx > 0 ? r->idx : 1;
  int D = r->D, DG = r->g ? r->g->dim : 0;
  int fused = sumlike && scheme != RK_SCHEME_KAHAN && D <= CPU_FUSED_MAX;
  int U = !fused ? 1 : D == 1 ? 4 : D <= 4 ? 2 : 1;
  int BJ = CPU_BJ;
  if (!fused) {
    while (BJ > 16 && (size_t)BJ * (size_t)(D + DG) * 8 > CPU_BUF_BYTES) BJ /= 2;
  }
  int BI = CPU_BI;
  while (BI > 1 && (size_t)BI * (size_t)(accdim + idxdim) * 8 > 65536) BI /= 2;

  rk_node *roots[2] = {r->f, r->g};
  size_t bytes = 0;
  unsigned char *seen = ctx_alloc(c, (size_t)c->nnodes + 1);
  for (int k = 0; k < 2; k++) if (roots[k]) stack_bytes(roots[k], seen, &bytes);
  bytes = bytes * (size_t)U + (size_t)BI * (size_t)(accdim + idxdim) * 8 * 2 +
          (fused ? 0 : (size_t)BJ * (size_t)(D + DG) * 8);
  if (bytes > CPU_STACK_LIMIT)
    rk_fail(c, RK_EDIM, r->pos,
            "formula too large for the CPU scheme: its temporaries need %zu bytes per thread "
            "(limit %d); reduce the inner dimensions", bytes, CPU_STACK_LIMIT);

  unsigned char *used = emit_used_vars(c, roots, 2);

  int outcat = r->axis == 0 ? RK_CAT_I : RK_CAT_J;
  int redcat = r->axis == 0 ? RK_CAT_J : RK_CAT_I;
  int dep_out = outcat == RK_CAT_I ? DEP_I : DEP_J;
  int dep_red = redcat == RK_CAT_I ? DEP_I : DEP_J;
  size_t nn = (size_t)c->nnodes + 1;

  rk_emit E;
  memset(&E, 0, sizeof E);
  E.b = out;
  E.c = c;
  E.prec = o->precision;
  E.dep_out = dep_out;
  rk_emit *e = &E;
  prologue(e, f32, acc_t);
  buf_printf(out, "#define BI %d\n#define BJ %d\n#define NACC %d\n#define NIDX %d\n\n", BI, BJ,
             accdim, idxdim);
  /* the state of one output row: accumulator, index slots, Kahan
   * compensations; at most RK_STATE_BYTES(acc, idx, kahan) bytes (internal.h) */
  buf_printf(out, "typedef struct rk_state { acc_t v[NACC]; int64_t i[NIDX];%s } rk_state;\n\n",
             scheme == RK_SCHEME_KAHAN ? " rk_t c[NACC];" : "");

  /* ---- rk_block */
  emit_line(e, "static void rk_block(int64_t nout, int64_t nred, const void *const *args, int64_t b,");
  emit_line(e, "                     int64_t bend, int64_t ja, int64_t jb, rk_state *st, int init) {");
  e->indent++;
  for (int p = 0; p < c->nargs; p++)
    if (used[p]) emit_line(e, "const rk_t *a%d = (const rk_t *)args[%d];", p, p);
  emit_line(e, "(void)nout; (void)nred; (void)args;");
  unsigned char *done = ctx_alloc(c, nn);
  emit_loads(e, c, used, RK_CAT_PM, "0", "1");
  emit_nodes(e, roots, 2, DEP_PM, done);
  open_scope(e, "if (init) for (int64_t i = b; i < bend; i++) {%s", "");
  ro->init(e, r, (rk_acc){"st[i - b].v", "st[i - b].i"});
  if (scheme == RK_SCHEME_KAHAN) emit_line(e, "for (int k = 0; k < NACC; k++) st[i - b].c[k] = 0;");
  close_scope(e);
  open_scope(e, "for (int64_t j0 = ja; j0 < jb; j0 += BJ) {%s", "");
  emit_line(e, "const int64_t j1 = RK_MIN(j0 + BJ, jb);");
  char istep[32];
  snprintf(istep, sizeof istep, "%d", U);
  emit_line(e, "for (int64_t i = b; i < bend; i += %d) {", U);
  e->indent++;

  /* row level: U copies of the rows' variables and row-only nodes */
  unsigned char **done_u = ctx_alloc(c, sizeof(unsigned char *) * (size_t)U);
  char sfx[16], rowexpr[64], nm[32];
  for (int u = 0; u < U; u++) {
    done_u[u] = ctx_alloc(c, nn);
    memcpy(done_u[u], done, nn);
    snprintf(sfx, sizeof sfx, "_%d", u);
    e->suffix = sfx;
    snprintf(rowexpr, sizeof rowexpr, "RK_MIN(i + %d, bend - 1)", u);
    emit_loads(e, c, used, outcat, u == 0 ? "i" : rowexpr, "nout");
    emit_nodes(e, roots, 2, DEP_PM | dep_out, done_u[u]);
  }
  e->suffix = NULL;

  /* the j-only nodes, once per j (inside the j loop, below) */
  unsigned char *done_j = ctx_alloc(c, nn);
  memcpy(done_j, done, nn);

  if (fused) {
    /* per-row, per-component scalar accumulators of the tile */
    for (int u = 0; u < U; u++)
      for (int k = 0; k < D; k++) emit_line(e, "rk_t P%d_%d = 0;", u, k);
    for (int i = 0; i < e->indent; i++) buf_puts(out, "  ");
    buf_puts(out, "#pragma omp simd reduction(+:");
    for (int u = 0; u < U; u++)
      for (int k = 0; k < D; k++) buf_printf(out, "%sP%d_%d", (u || k) ? "," : "", u, k);
    buf_puts(out, ")\n");
  } else {
    emit_line(e, "rk_t fb[%d][BJ];", D);
    if (DG) emit_line(e, "rk_t gb[%d][BJ];", DG);
    emit_line(e, "#pragma omp simd");
  }
  emit_line(e, "for (int64_t j = j0; j < j1; j++) {");
  e->indent++;
  emit_loads(e, c, used, redcat, "j", "nred");
  emit_nodes(e, roots, 2, DEP_PM | dep_red, done_j);
  for (int u = 0; u < U; u++) {
    /* pair nodes of row u: the j-only ones are done, the row-only ones are
     * in done_u[u] */
    unsigned char *d = ctx_alloc(c, nn);
    for (size_t q = 0; q < nn; q++) d[q] = done_u[u][q] | done_j[q];
    snprintf(sfx, sizeof sfx, "_%d", u);
    e->suffix = sfx;
    emit_nodes(e, roots, 2, DEP_PM | DEP_I | DEP_J, d);
    emit_name(e, r->f, nm, sizeof nm);
    if (fused) {
      for (int k = 0; k < D; k++)
        emit_line(e, "P%d_%d += %s[%d];", u, k, nm, r->f->dim == 1 ? 0 : k);
    } else {
      emit_line(e, "for (int k = 0; k < %d; k++) fb[k][j - j0] = %s[k];", D, nm);
      if (DG) {
        emit_name(e, r->g, nm, sizeof nm);
        emit_line(e, "for (int k = 0; k < %d; k++) gb[k][j - j0] = %s[k];", DG, nm);
      }
    }
  }
  e->suffix = NULL;
  e->indent--;
  emit_line(e, "}");

  if (fused) {
    for (int u = 0; u < U; u++) {
      emit_line(e, "if (i + %d < bend) {", u);
      for (int k = 0; k < D; k++) emit_line(e, "  st[i + %d - b].v[%d] += P%d_%d;", u, k, u, k);
      emit_line(e, "}");
    }
  } else if (ro->tile) {
    /* the reduction's own vectorised pass over the tile buffer */
    emit_line(e, "acc_t *A = st[i - b].v;");
    emit_line(e, "int64_t *I = st[i - b].i;");
    emit_line(e, "(void)I;");
    ro->tile(e, r, (rk_acc){"A", "I"}, "fb", DG ? "gb" : NULL, "j1 - j0", "j0");
  } else {
    /* the reduction's own update, scalar, from the tile buffer */
    emit_line(e, "acc_t *A = st[i - b].v;");
    emit_line(e, "int64_t *I = st[i - b].i;");
    emit_line(e, "(void)I;");
    rk_acc target = {"A", "I"};
    if (scheme == RK_SCHEME_BLOCK) {
      emit_line(e, "rk_t P[NACC];");
      ro->init(e, r, (rk_acc){"P", NULL});
      target.v = "P";
    }
    if (scheme == RK_SCHEME_KAHAN) emit_line(e, "rk_t *C = st[i - b].c;");
    emit_line(e, "for (int64_t j = j0; j < j1; j++) {");
    e->indent++;
    emit_line(e, "rk_t f[%d];", D);
    emit_line(e, "for (int k = 0; k < %d; k++) f[k] = fb[k][j - j0];", D);
    if (DG) {
      emit_line(e, "rk_t g[%d];", DG);
      emit_line(e, "for (int k = 0; k < %d; k++) g[k] = gb[k][j - j0];", DG);
    }
    if (scheme == RK_SCHEME_KAHAN)
      emit_line(e, "for (int k = 0; k < %d; k++) { rk_t y = f[k] - C[k]; rk_t t = A[k] + y; "
                   "C[k] = (t - A[k]) - y; A[k] = t; }", D);
    else
      ro->update(e, r, target, "f", DG ? "g" : NULL, "j");
    e->indent--;
    emit_line(e, "}");
    if (scheme == RK_SCHEME_BLOCK) ro->merge(e, r, (rk_acc){"A", NULL}, (rk_acc){"P", NULL});
  }
  e->indent--;
  emit_line(e, "}");  /* rows */
  close_scope(e);     /* tiles */
  e->indent--;
  emit_line(e, "}\n");

  /* ---- rk_entry */
  emit_line(e, "int rk_entry(int64_t nout, int64_t nred, const void *const *args, double *out,");
  emit_line(e, "             int64_t r0, int64_t r1, int64_t ja, int64_t jb, int nthreads, int *used,");
  emit_line(e, "             void *scratch) {");
  e->indent++;
  emit_line(e, "int nthr = 1;");
  emit_line(e, "rk_state *cs = (rk_state *)scratch;  /* carried states of the rows r0 .. r1 - 1 */");
  emit_line(e, "if (r0 < 0 || r1 > nout || r0 >= r1 || ja < 0 || jb > nred || ja > jb) return -1;");
  emit_line(e, "if (!cs && (ja != 0 || jb != nred)) return -1;");
  emit_line(e, "if (cs && r1 - r0 <= BI && nthreads > 1) {");
  e->indent++;
  emit_line(e, "/* few rows: split [ja, jb) across the threads, merge in thread order */");
  emit_line(e, "rk_state (*ps)[BI] = (rk_state (*)[BI])(cs + (r1 - r0));");
  open_scope(e, "if (ja == 0) for (int64_t i = r0; i < r1; i++) {%s", "");
  ro->init(e, r, (rk_acc){"cs[i - r0].v", "cs[i - r0].i"});
  close_scope(e);
  emit_thread_split(e, ro, r);
  open_scope(e, "if (jb == nred) for (int64_t i = r0; i < r1; i++) {%s", "");
  ro->finalize(e, r, (rk_acc){"cs[i - r0].v", "cs[i - r0].i"}, "(out + i)", "nout");
  close_scope(e);
  emit_line(e, "if (used) *used = nthr;");
  emit_line(e, "return 0;");
  e->indent--;
  emit_line(e, "}");
  emit_line(e, "/* blocks of BI rows in parallel, each over [ja, jb) */");
  emit_line(e, "#pragma omp parallel num_threads(nthreads) if (nthreads > 1)");
  emit_line(e, "{");
  e->indent++;
  emit_line(e, "#ifdef _OPENMP");
  emit_line(e, "if (omp_get_thread_num() == 0) nthr = omp_get_num_threads();");
  emit_line(e, "#endif");
  emit_line(e, "#pragma omp for schedule(dynamic, 1)");
  emit_line(e, "for (int64_t b = r0; b < r1; b += BI) {");
  e->indent++;
  emit_line(e, "const int64_t bend = RK_MIN(b + BI, r1);");
  emit_line(e, "rk_state local[BI];");
  emit_line(e, "rk_state *st = cs ? cs + (b - r0) : local;");
  emit_line(e, "rk_block(nout, nred, args, b, bend, ja, jb, st, ja == 0);");
  open_scope(e, "if (jb == nred) for (int64_t i = b; i < bend; i++) {%s", "");
  ro->finalize(e, r, (rk_acc){"st[i - b].v", "st[i - b].i"}, "(out + i)", "nout");
  close_scope(e);
  e->indent--;
  emit_line(e, "}");
  e->indent--;
  emit_line(e, "}");
  emit_line(e, "if (used) *used = nthr;");
  emit_line(e, "return 0;");
  e->indent--;
  emit_line(e, "}");
  emit_entry_ranges(e, ro, r);
  c->cpu_bi = BI;
  cpu_generate_partial(e, r, ro, scheme == RK_SCHEME_KAHAN);
}
