/*
 * cpu.c -- the CPU map-reduce scheme (C + OpenMP).
 *
 * High level description
 * ----------------------
 * The output index (i when the axis is 0, j when it is 1) is cut into
 * blocks of BI rows; OpenMP threads take blocks dynamically.  For one
 * block, the reduced index is walked in tiles of BJ values so that the
 * tile's inputs stay in cache while the BI rows of the block use them:
 *
 *   for each block of rows [b, b+BI)            (parallel, dynamic)
 *     init acc[0..BI)
 *     for each tile of the reduced index [j0, j0+BJ)
 *       for each row i of the block
 *         load the row's variables; compute the nodes that depend only
 *         on parameters and the row (hoisted out of the j loop)
 *         for j in the tile: load j's variables, compute the formula,
 *                            update the accumulator
 *     finalize acc[0..BI) into the output columns
 *
 * Sum-like reductions honour the summation scheme: "block" keeps a partial
 * accumulator in the working precision per tile and merges it into a
 * double accumulator (float32 stays accurate on long sums), "kahan" uses
 * compensated updates, "direct" accumulates in the working precision.
 *
 * Nodes that depend only on parameters are computed once before the
 * parallel region.  Data arrive column-major (R's layout): component k of
 * row r of an input with n rows is a[r + k*n], so each component streams
 * contiguously along the reduced index.  The whole scheme is this file;
 * speed work (SIMD over j, register blocking) replaces it without touching
 * the emitters.
 */
#include <stdio.h>
#include <string.h>
#include "internal.h"

#define CPU_BI 16
#define CPU_BJ 1024
#define CPU_STACK_LIMIT (1 << 20)

static void prologue(rk_emit *e, int f32, const char *acc_t, const char *tile_t) {
  rk_buf *b = e->b;
  buf_printf(b, "/* rkeops generated kernel, engine version %s: do not edit */\n", RK_ENGINE_VERSION);
  buf_puts(b, "#include <math.h>\n#include <stdint.h>\n");
  buf_printf(b, "typedef %s rk_t;\ntypedef %s acc_t;\ntypedef %s tile_t;\n",
             f32 ? "float" : "double", acc_t, tile_t);
  static const char *fns[][3] = {
    {"RK_EXP", "exp", "expf"}, {"RK_LOG", "log", "logf"}, {"RK_SQRT", "sqrt", "sqrtf"},
    {"RK_FABS", "fabs", "fabsf"}, {"RK_SIN", "sin", "sinf"}, {"RK_COS", "cos", "cosf"},
    {"RK_POW", "pow", "powf"}, {"RK_FLOOR", "floor", "floorf"}, {"RK_ROUND", "round", "roundf"},
    {"RK_ASIN", "asin", "asinf"}, {"RK_ACOS", "acos", "acosf"}, {"RK_ATAN", "atan", "atanf"},
    {"RK_ATAN2", "atan2", "atan2f"},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
    buf_printf(b, "#define %s %s\n", fns[i][0], fns[i][f32 ? 2 : 1]);
  buf_puts(b,
    "static inline rk_t rk_powi(rk_t x, int n) {\n"
    "  unsigned m = n < 0 ? 0u - (unsigned)n : (unsigned)n;\n"
    "  rk_t r = 1;\n"
    "  while (m) { if (m & 1u) r *= x; x *= x; m >>= 1; }\n"
    "  return n < 0 ? (rk_t)1 / r : r;\n"
    "}\n"
    "static inline rk_t rk_rsqrt(rk_t x) { return x == 0 ? (rk_t)0 : (rk_t)1 / RK_SQRT(x); }\n"
    "/* round to d decimals, halves away from zero (C round) */\n"
    "static inline rk_t rk_round(rk_t x, int d) {\n"
    "  if (d == 0) return RK_ROUND(x);\n"
    "  rk_t p = rk_powi((rk_t)10, d);\n"
    "  return RK_ROUND(x * p) / p;\n"
    "}\n"
    "#ifdef _OPENMP\nint omp_get_num_threads(void);\nint omp_get_thread_num(void);\n#endif\n"
    "#define RK_MIN(a, b) ((a) < (b) ? (a) : (b))\n"
    "#define RK_INF HUGE_VAL\n"
    "/* ascending order with NaN first; RK_BEFORE_MAX: descending, NaN first */\n"
    "#define RK_BEFORE(a, b) ((a) != (a) ? (b) == (b) : (a) < (b))\n"
    "#define RK_BEFORE_MAX(a, b) ((a) != (a) ? (b) == (b) : (a) > (b))\n"
    "/* R's NA_real_: a NaN with payload 1954 */\n"
    "static inline double rk_na(void) {\n"
    "  union { double d; uint64_t u; } x;\n"
    "  x.u = 0x7FF00000000007A2ULL;\n"
    "  return x.d;\n"
    "}\n\n");
}

static void collect_vars(rk_node *n, unsigned char *seen, unsigned char *used) {
  if (seen[n->id]) return;
  seen[n->id] = 1;
  if (n->op == RK_OP_VAR) used[n->par[0] < RK_MAX_ARGS ? n->par[0] : 0] = 1;
  for (int i = 0; i < n->nkids; i++) collect_vars(n->kid[i], seen, used);
}

static void vars_in_range(rk_ctx *c, rk_node *n, unsigned char *seen) {
  if (seen[n->id]) return;
  seen[n->id] = 1;
  if (n->op == RK_OP_VAR && (n->par[0] < 0 || n->par[0] >= c->nargs))
    rk_fail(c, RK_EINTERNAL, n->pos, "internal error: variable at position %d is not an input (%s:%d)",
            n->par[0], __FILE__, __LINE__);
  for (int i = 0; i < n->nkids; i++) vars_in_range(c, n->kid[i], seen);
}

static void check_vars(rk_ctx *c, rk_node **roots) {
  unsigned char *seen = ctx_alloc(c, (size_t)c->nnodes + 1);
  for (int k = 0; k < 2; k++) if (roots[k]) vars_in_range(c, roots[k], seen);
}

static void stack_bytes(rk_node *n, unsigned char *seen, size_t *total) {
  if (seen[n->id]) return;
  seen[n->id] = 1;
  *total += (size_t)n->dim * 8;
  for (int i = 0; i < n->nkids; i++) stack_bytes(n->kid[i], seen, total);
}

/* loads of the variables of category cat: v<p>[k] = a<p>[row + k*stride] */
static void emit_loads(rk_emit *e, rk_ctx *c, const unsigned char *used, int cat,
                       const char *row, const char *stride) {
  for (int p = 0; p < c->nargs; p++) {
    if (!used[p] || c->args[p].cat != cat) continue;
    int d = c->args[p].dim;
    emit_line(e, "rk_t v%d[%d];", p, d);
    if (cat == RK_CAT_PM)
      emit_line(e, "for (int k = 0; k < %d; k++) v%d[k] = a%d[k];", d, p, p);
    else if (d == 1)
      emit_line(e, "v%d[0] = a%d[%s];", p, p, row);
    else
      emit_line(e, "for (int k = 0; k < %d; k++) v%d[k] = a%d[%s + k * %s];", d, p, p, row, stride);
  }
}

void cpu_generate(rk_ctx *c, rk_red *r, const rk_options *o, rk_buf *out) {
  const rk_redop *ro = &rk_redops[r->red];
  int f32 = o->precision == RK_F32;
  int sumlike = (ro->flags & REDF_SUMLIKE) != 0;
  rk_scheme scheme = o->scheme == RK_SCHEME_AUTO ? RK_SCHEME_BLOCK : o->scheme;
  if (!sumlike) scheme = RK_SCHEME_DIRECT;
  const char *acc_t = (scheme == RK_SCHEME_BLOCK || (ro->flags & REDF_ACC_DOUBLE)) ? "double" : "rk_t";
  int accdim = r->acc, idxdim = r->idx > 0 ? r->idx : 1;

  rk_node *roots[2] = {r->f, r->g};
  size_t bytes = 0;
  unsigned char *seen = ctx_alloc(c, (size_t)c->nnodes + 1);
  for (int k = 0; k < 2; k++) if (roots[k]) stack_bytes(roots[k], seen, &bytes);
  int BI = CPU_BI;
  while (BI > 1 && (size_t)BI * (size_t)(accdim + idxdim) * 16 > 65536) BI /= 2;
  bytes += (size_t)BI * (size_t)(accdim + idxdim) * 16 + (size_t)(accdim + idxdim) * 16;
  if (bytes > CPU_STACK_LIMIT)
    rk_fail(c, RK_EDIM, r->pos,
            "formula too large for the CPU scheme: its temporaries need %zu bytes per thread "
            "(limit %d); reduce the inner dimensions", bytes, CPU_STACK_LIMIT);

  unsigned char *used = ctx_alloc(c, RK_MAX_ARGS);
  memset(seen, 0, (size_t)c->nnodes + 1);
  for (int k = 0; k < 2; k++) if (roots[k]) collect_vars(roots[k], seen, used);
  check_vars(c, roots);

  int outcat = r->axis == 0 ? RK_CAT_I : RK_CAT_J;
  int redcat = r->axis == 0 ? RK_CAT_J : RK_CAT_I;
  int dep_out = outcat == RK_CAT_I ? DEP_I : DEP_J;
  unsigned char *done = ctx_alloc(c, (size_t)c->nnodes + 1);

  rk_emit E = {out, c, 0, o->precision, NULL};
  rk_emit *e = &E;
  prologue(e, f32, acc_t, "rk_t");

  emit_line(e, "int rk_entry(int64_t nout, int64_t nred, const void *const *args, double *out,");
  emit_line(e, "             int64_t r0, int64_t r1, int nthreads, int *used) {");
  e->indent++;
  for (int p = 0; p < c->nargs; p++)
    if (used[p]) emit_line(e, "const rk_t *a%d = (const rk_t *)args[%d];", p, p);
  emit_line(e, "(void)nout; (void)nred; (void)args;");
  /* parameters and constants: once per call */
  emit_loads(e, c, used, RK_CAT_PM, "0", "1");
  emit_nodes(e, roots, 2, DEP_PM, done);
  emit_line(e, "int nthr = 1;");
  emit_line(e, "#pragma omp parallel num_threads(nthreads)");
  emit_line(e, "{");
  e->indent++;
  emit_line(e, "#ifdef _OPENMP");
  emit_line(e, "if (omp_get_thread_num() == 0) nthr = omp_get_num_threads();");
  emit_line(e, "#endif");
  emit_line(e, "#pragma omp for schedule(dynamic, 1)");
  emit_line(e, "for (int64_t b = r0; b < r1; b += %d) {", BI);
  e->indent++;
  emit_line(e, "const int64_t bend = RK_MIN(b + %d, r1);", BI);
  emit_line(e, "acc_t acc[%d][%d];", BI, accdim);
  emit_line(e, "int64_t idx[%d][%d];", BI, idxdim);
  emit_line(e, "(void)idx;");
  if (scheme == RK_SCHEME_KAHAN) emit_line(e, "rk_t comp[%d][%d];", BI, accdim);
  emit_line(e, "for (int64_t i = b; i < bend; i++) {");
  e->indent++;
  ro->init(e, r, (rk_acc){"acc[i - b]", "idx[i - b]"});
  if (scheme == RK_SCHEME_KAHAN) emit_line(e, "for (int k = 0; k < %d; k++) comp[i - b][k] = 0;", accdim);
  e->indent--;
  emit_line(e, "}");
  emit_line(e, "for (int64_t j0 = 0; j0 < nred; j0 += %d) {", CPU_BJ);
  e->indent++;
  emit_line(e, "const int64_t j1 = RK_MIN(j0 + %d, nred);", CPU_BJ);
  emit_line(e, "for (int64_t i = b; i < bend; i++) {");
  e->indent++;
  emit_line(e, "acc_t *A = acc[i - b];");
  emit_line(e, "int64_t *I = idx[i - b];");
  emit_line(e, "(void)I;");
  if (scheme == RK_SCHEME_KAHAN) emit_line(e, "rk_t *C = comp[i - b];");
  emit_loads(e, c, used, outcat, "i", "nout");
  unsigned char *done_out = done; /* nodes done at row level are reused below */
  emit_nodes(e, roots, 2, DEP_PM | dep_out, done_out);
  rk_acc target = {"A", "I"};
  if (scheme == RK_SCHEME_BLOCK) {
    emit_line(e, "rk_t P[%d];", accdim);
    ro->init(e, r, (rk_acc){"P", NULL});
    target.v = "P";
  }
  emit_line(e, "for (int64_t j = j0; j < j1; j++) {");
  e->indent++;
  emit_loads(e, c, used, redcat, "j", "nred");
  /* inner nodes: a copy of done so the row level is not marked for the
   * next compilation phase (each level's code is in its own scope) */
  unsigned char *done_in = ctx_alloc(c, (size_t)c->nnodes + 1);
  memcpy(done_in, done, (size_t)c->nnodes + 1);
  emit_nodes(e, roots, 2, DEP_PM | DEP_I | DEP_J, done_in);
  char fname[32], gname[32];
  emit_name(r->f, fname, sizeof fname);
  if (r->g) emit_name(r->g, gname, sizeof gname);
  if (scheme == RK_SCHEME_KAHAN)
    emit_line(e, "for (int k = 0; k < %d; k++) { rk_t y = %s[k] - C[k]; rk_t t = A[k] + y; "
                 "C[k] = (t - A[k]) - y; A[k] = t; }", r->D, fname);
  else
    ro->update(e, r, target, fname, r->g ? gname : NULL, "j");
  e->indent--;
  emit_line(e, "}");
  if (scheme == RK_SCHEME_BLOCK) ro->merge(e, r, (rk_acc){"A", NULL}, (rk_acc){"P", NULL});
  e->indent--;
  emit_line(e, "}");
  e->indent--;
  emit_line(e, "}");
  emit_line(e, "for (int64_t i = b; i < bend; i++) {");
  e->indent++;
  ro->finalize(e, r, (rk_acc){"acc[i - b]", "idx[i - b]"}, "(out + i)", "nout");
  e->indent--;
  emit_line(e, "}");
  e->indent--;
  emit_line(e, "}");
  e->indent--;
  emit_line(e, "}");
  emit_line(e, "if (used) *used = nthr;");
  emit_line(e, "return 0;");
  e->indent--;
  emit_line(e, "}");
}
