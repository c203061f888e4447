/*
 * ops.c -- the op table (rows in ops.def), dimension rules and the
 * emitters of the operations that are not element-wise templates.
 *
 * A dimension rule returns the node's output dimension and fails with the
 * node's position when the operands do not fit.  An emitter writes the
 * code computing the node's temporary from its operands' temporaries.
 */
#include <stdio.h>
#include <string.h>
#include "internal.h"

/* ------------------------------------------------------------ dim rules */

#define NAME(n) (rk_ops[(n)->op].name)
#define KD(n, i) ((n)->kid[i]->dim)

static int dim_leaf(rk_ctx *c, rk_node *n) { (void)c; return n->par[1]; }
static int dim_one(rk_ctx *c, rk_node *n) { (void)c; (void)n; return 1; }

static int dim_param0(rk_ctx *c, rk_node *n) {
  if (n->par[0] < 1 || n->par[0] > RK_MAX_DIM)
    rk_fail(c, RK_EDIM, n->pos, "%s: dimension %d is out of range [1, %d]", NAME(n), n->par[0],
            RK_MAX_DIM);
  return n->par[0];
}

static int dim_ratcst(rk_ctx *c, rk_node *n) {
  if (n->par[1] == 0) rk_fail(c, RK_EDIM, n->pos, "RatCst: the denominator is 0");
  return 1;
}

static int dim_intinv(rk_ctx *c, rk_node *n) {
  if (n->par[0] == 0) rk_fail(c, RK_EDIM, n->pos, "IntInv: the integer is 0");
  return 1;
}

/* element-wise: operands of equal dimensions or of dimension 1 */
static int dim_ew(rk_ctx *c, rk_node *n) {
  int d = 1;
  for (int i = 0; i < n->nkids; i++) {
    int di = KD(n, i);
    if (di == 1 || di == d) continue;
    if (d != 1) {
      if (n->nkids == 2)
        rk_fail(c, RK_EDIM, n->pos,
                "%s: operands have dimensions %d and %d (expected equal dimensions, or one of them 1)",
                NAME(n), KD(n, 0), KD(n, 1));
      rk_fail(c, RK_EDIM, n->pos,
              "%s: operands have dimensions %d, %d and %d (expected equal dimensions, or 1)",
              NAME(n), KD(n, 0), KD(n, 1), KD(n, 2));
    }
    d = di;
  }
  return d;
}

/* two vectors of equal dimensions (or one of dimension 1) -> scalar */
static int dim_bcast1(rk_ctx *c, rk_node *n) {
  dim_ew(c, n);
  return 1;
}

static void need_scalar(rk_ctx *c, rk_node *n, int i) {
  if (KD(n, i) != 1)
    rk_fail(c, RK_EDIM, n->pos, "%s: operand %d must have dimension 1, not %d", NAME(n), i + 1,
            KD(n, i));
}

static int dim_sumt(rk_ctx *c, rk_node *n) {
  need_scalar(c, n, 0);
  return dim_param0(c, n);
}

static int dim_elem(rk_ctx *c, rk_node *n) {
  if (n->par[0] < 0 || n->par[0] >= KD(n, 0))
    rk_fail(c, RK_EDIM, n->pos, "Elem: index %d is out of bounds [0, %d)", n->par[0], KD(n, 0));
  return 1;
}

/* ElemT(f, n, m): vector of dimension n, zero but for f at m */
static int dim_elemt(rk_ctx *c, rk_node *n) {
  need_scalar(c, n, 0);
  int d = dim_param0(c, n);
  if (n->par[1] < 0 || n->par[1] >= d)
    rk_fail(c, RK_EDIM, n->pos, "ElemT: index %d is out of bounds [0, %d)", n->par[1], d);
  return d;
}

/* Extract(f, start, dim) */
static int dim_extract(rk_ctx *c, rk_node *n) {
  int st = n->par[0], d = n->par[1];
  if (st < 0 || d < 1 || (long)st + d > KD(n, 0))
    rk_fail(c, RK_EDIM, n->pos,
            "Extract: start %d and dimension %d do not fit in an operand of dimension %d", st, d,
            KD(n, 0));
  return d;
}

/* ExtractT(f, start, dim): f written at start in a zero vector of dim */
static int dim_extractt(rk_ctx *c, rk_node *n) {
  int st = n->par[0], d = n->par[1];
  if (d < 1 || d > RK_MAX_DIM || st < 0 || (long)st + KD(n, 0) > d)
    rk_fail(c, RK_EDIM, n->pos,
            "ExtractT: an operand of dimension %d does not fit at start %d in dimension %d",
            KD(n, 0), st, d);
  return d;
}

static int dim_concat(rk_ctx *c, rk_node *n) { (void)c; return KD(n, 0) + KD(n, 1); }

static int dim_onehot(rk_ctx *c, rk_node *n) {
  need_scalar(c, n, 0);
  return dim_param0(c, n);
}

/* WeightedSqNorm(s, f), WeightedSqDist(s, f, g) and the three forms: the
 * weight s has dimension 1 (isotropic), dim f (diagonal) or dim f squared
 * (a symmetric matrix). */
static int dim_wsqnorm(rk_ctx *c, rk_node *n) {
  int df = KD(n, 1);
  if (n->nkids == 3) {
    int dg = KD(n, 2);
    if (df != dg && df != 1 && dg != 1)
      rk_fail(c, RK_EDIM, n->pos, "%s: operands have dimensions %d and %d (expected equal dimensions, or one of them 1)",
              NAME(n), df, dg);
    if (dg > df) df = dg;
  }
  int ds = KD(n, 0);
  int ok;
  switch (n->op) {
  case RK_OP_SQNORMISO: ok = ds == 1; break;
  case RK_OP_SQNORMDIAG: ok = ds == df; break;
  case RK_OP_SYMSQNORM: ok = (long)ds == (long)df * df; break;
  default: ok = ds == 1 || ds == df || (long)ds == (long)df * df; break;
  }
  if (!ok)
    rk_fail(c, RK_EDIM, n->pos,
            "%s: the weight has dimension %d; expected 1, %d or %ld for a vector of dimension %d",
            NAME(n), ds, df, (long)df * df, df);
  return 1;
}

/* MatVecMult(A, b): A holds an n x p matrix column-major, b has dim p */
static int dim_matvec(rk_ctx *c, rk_node *n) {
  if (KD(n, 0) % KD(n, 1) != 0)
    rk_fail(c, RK_EDIM, n->pos, "MatVecMult: the matrix dimension %d is not a multiple of the vector dimension %d",
            KD(n, 0), KD(n, 1));
  return KD(n, 0) / KD(n, 1);
}

/* VecMatMult(b, A): b has dim n, A holds an n x p matrix column-major */
static int dim_vecmat(rk_ctx *c, rk_node *n) {
  if (KD(n, 1) % KD(n, 0) != 0)
    rk_fail(c, RK_EDIM, n->pos, "VecMatMult: the matrix dimension %d is not a multiple of the vector dimension %d",
            KD(n, 1), KD(n, 0));
  return KD(n, 1) / KD(n, 0);
}

static int dim_tensorprod(rk_ctx *c, rk_node *n) {
  long d = (long)KD(n, 0) * KD(n, 1);
  if (d > RK_MAX_DIM) rk_fail(c, RK_EDIM, n->pos, "TensorProd: dimension %ld is too large", d);
  return (int)d;
}

/* BSpline(t, x, k): the B-splines of order k >= 0 on the knots t (at
 * least k + 2, non-decreasing), at the scalar x: dim(t) - k - 1 values. */
static int dim_bspline(rk_ctx *c, rk_node *n) {
  int k = n->par[0];
  need_scalar(c, n, 1);
  if (k < 0) rk_fail(c, RK_EDIM, n->pos, "BSpline: the order must be >= 0, not %d", k);
  if ((long)KD(n, 0) < (long)k + 2)
    rk_fail(c, RK_EDIM, n->pos, "BSpline: order %d needs at least %d knots; the knots have dimension %d",
            k, k + 2, KD(n, 0));
  return KD(n, 0) - k - 1;
}

/* SoftDTW_SqDist(x, y, gamma): the soft-DTW discrepancy of the series x
 * (dim n) and y (dim m) for the cost (x_i - y_j)^2, smoothing gamma (a
 * scalar).  Its gradient keeps the n x m table: n m is bounded there.
 * The forward pass keeps one column (n values). */
#define SOFTDTW_MAX_N 8192
#define SOFTDTW_MAX_NM 4096
static int dim_softdtw(rk_ctx *c, rk_node *n) {
  need_scalar(c, n, 2);
  if (KD(n, 0) > SOFTDTW_MAX_N || KD(n, 1) > SOFTDTW_MAX_N)
    rk_fail(c, RK_EDIM, n->pos, "SoftDTW_SqDist: series of at most %d values; received %d and %d",
            SOFTDTW_MAX_N, KD(n, 0), KD(n, 1));
  return 1;
}
static int dim_gradsoftdtw(rk_ctx *c, rk_node *n) {
  need_scalar(c, n, 2);
  if ((long)KD(n, 0) * KD(n, 1) > SOFTDTW_MAX_NM)
    rk_fail(c, RK_EDIM, n->pos,
            "SoftDTW_SqDist: its gradient needs n m <= %d (series of %d and %d values)",
            SOFTDTW_MAX_NM, KD(n, 0), KD(n, 1));
  return KD(n, 0) + KD(n, 1);
}

static void need_even(rk_ctx *c, rk_node *n, int i) {
  if (KD(n, i) % 2 != 0)
    rk_fail(c, RK_EDIM, n->pos,
            "%s: operand %d has odd dimension %d; complex vectors have even dimensions (re, im pairs)",
            NAME(n), i + 1, KD(n, i));
}

static int dim_chalf(rk_ctx *c, rk_node *n) { need_even(c, n, 0); return KD(n, 0) / 2; }
static int dim_cdouble(rk_ctx *c, rk_node *n) { (void)c; return 2 * KD(n, 0); }
static int dim_csum(rk_ctx *c, rk_node *n) { need_even(c, n, 0); return 2; }

static int dim_csumt(rk_ctx *c, rk_node *n) {
  if (KD(n, 0) != 2) rk_fail(c, RK_EDIM, n->pos, "ComplexSumT: the operand must be one complex number (dimension 2)");
  int d = dim_param0(c, n);
  if (d % 2) rk_fail(c, RK_EDIM, n->pos, "ComplexSumT: dimension %d is odd", d);
  return d;
}

/* complex element-wise: even dimensions, equal or one of them 2 */
static int dim_cew(rk_ctx *c, rk_node *n) {
  int d = 2;
  for (int i = 0; i < n->nkids; i++) {
    need_even(c, n, i);
    int di = KD(n, i);
    if (di == 2 || di == d) continue;
    if (d != 2)
      rk_fail(c, RK_EDIM, n->pos,
              "%s: operands have dimensions %d and %d (expected equal dimensions, or one complex scalar)",
              NAME(n), KD(n, 0), KD(n, 1));
    d = di;
  }
  return d;
}

/* ComplexScal(f, g): one operand is a complex scalar (dim 2) */
static int dim_cscal(rk_ctx *c, rk_node *n) {
  need_even(c, n, 0);
  need_even(c, n, 1);
  if (KD(n, 0) != 2 && KD(n, 1) != 2)
    rk_fail(c, RK_EDIM, n->pos, "ComplexScal: one operand must be a complex scalar (dimension 2); got %d and %d",
            KD(n, 0), KD(n, 1));
  return KD(n, 0) > KD(n, 1) ? KD(n, 0) : KD(n, 1);
}

/* ComplexRealScal(f, g): one operand is a real scalar, the other complex */
static int dim_crealscal(rk_ctx *c, rk_node *n) {
  int r = KD(n, 0) == 1 ? 0 : KD(n, 1) == 1 ? 1 : -1;
  if (r < 0)
    rk_fail(c, RK_EDIM, n->pos, "ComplexRealScal: one operand must be a real scalar (dimension 1); got %d and %d",
            KD(n, 0), KD(n, 1));
  need_even(c, n, 1 - r);
  return KD(n, 1 - r);
}


/* ------------------------------------------------------------ tensors with index lists
 * TensorDot(f, g, dimsf, dimsg, contf, contg[, permute]) and
 * Kron(f, g, dimsf, dimsg).  Tensors are stored column-major (first index
 * fastest, decision 13).  The lists are decoded from par (length, items). */

#define RK_MAX_RANK 8

typedef struct tensor_spec {
  int nf, df[RK_MAX_RANK], ng, dg[RK_MAX_RANK];     /* shapes of f and g     */
  int nc, cf[RK_MAX_RANK], cg[RK_MAX_RANK];         /* contracted axes        */
  int np, perm[2 * RK_MAX_RANK];                    /* output permutation     */
  int no, dout[2 * RK_MAX_RANK];                    /* output shape (permuted)*/
  int src[2 * RK_MAX_RANK];   /* output axis k is axis src[k] of f (< nf) or g (nf + ...) */
} tensor_spec;

static int take_list(rk_ctx *c, const rk_node *n, int *at, int *out, int max, const char *what) {
  int len = n->par[*at];
  if (len < 0 || len > max || *at + 1 + len > RK_MAX_PARAMS)
    rk_fail(c, RK_EDIM, n->pos, "%s: the list %s has %d items (at most %d)", NAME(n), what, len, max);
  for (int k = 0; k < len; k++) out[k] = n->par[*at + 1 + k];
  *at += 1 + len;
  return len;
}

static long prod(const int *d, int n) {
  long p = 1;
  for (int k = 0; k < n; k++) p *= d[k];
  return p;
}

static int is_kron(const rk_node *n) {
  return n->op == RK_OP_KRON || n->op == RK_OP_KRONADJF || n->op == RK_OP_KRONADJG;
}

/* the lists of a TensorDot, Kron or adjoint node (operand dimensions are
 * checked by the dimension rules) */
static void tensor_decode(rk_ctx *c, const rk_node *n, tensor_spec *t) {
  int at = 0;
  memset(t, 0, sizeof *t);
  t->nf = take_list(c, n, &at, t->df, RK_MAX_RANK, "of dimensions of f");
  t->ng = take_list(c, n, &at, t->dg, RK_MAX_RANK, "of dimensions of g");
  for (int k = 0; k < t->nf; k++)
    if (t->df[k] < 1) rk_fail(c, RK_EDIM, n->pos, "%s: dimensions must be positive", NAME(n));
  for (int k = 0; k < t->ng; k++)
    if (t->dg[k] < 1) rk_fail(c, RK_EDIM, n->pos, "%s: dimensions must be positive", NAME(n));
  if (t->nf < 1 || t->ng < 1)
    rk_fail(c, RK_EDIM, n->pos, "%s: the shapes must have at least one axis", NAME(n));
  if (is_kron(n)) {
    if (t->nf != t->ng)
      rk_fail(c, RK_EDIM, n->pos, "Kron: the two shapes must have the same number of axes");
    t->no = t->nf;
    for (int k = 0; k < t->no; k++) t->dout[k] = t->df[k] * t->dg[k];
    return;
  }
  int nc = take_list(c, n, &at, t->cf, RK_MAX_RANK, "of contracted axes of f");
  if (take_list(c, n, &at, t->cg, RK_MAX_RANK, "of contracted axes of g") != nc)
    rk_fail(c, RK_EDIM, n->pos, "TensorDot: the two lists of contracted axes differ in length");
  t->nc = nc;
  int usedf[RK_MAX_RANK] = {0}, usedg[RK_MAX_RANK] = {0};
  for (int k = 0; k < nc; k++) {
    if (t->cf[k] < 0 || t->cf[k] >= t->nf || t->cg[k] < 0 || t->cg[k] >= t->ng ||
        usedf[t->cf[k]]++ || usedg[t->cg[k]]++)
      rk_fail(c, RK_EDIM, n->pos, "TensorDot: contracted axes out of range or repeated");
    if (t->df[t->cf[k]] != t->dg[t->cg[k]])
      rk_fail(c, RK_EDIM, n->pos, "TensorDot: contracted axes have different sizes %d and %d",
              t->df[t->cf[k]], t->dg[t->cg[k]]);
  }
  int no = 0, src[2 * RK_MAX_RANK], d[2 * RK_MAX_RANK];
  for (int k = 0; k < t->nf; k++) if (!usedf[k]) { src[no] = k; d[no++] = t->df[k]; }
  for (int k = 0; k < t->ng; k++) if (!usedg[k]) { src[no] = t->nf + k; d[no++] = t->dg[k]; }
  t->no = no;
  int perm[2 * RK_MAX_RANK];
  int np = at < RK_MAX_PARAMS ? n->par[at] : 0;
  if (np > 0) {
    take_list(c, n, &at, perm, 2 * RK_MAX_RANK, "permute");
    int seen[2 * RK_MAX_RANK] = {0};
    if (np != no) rk_fail(c, RK_EDIM, n->pos, "TensorDot: permute must list the %d output axes", no);
    for (int k = 0; k < np; k++)
      if (perm[k] < 0 || perm[k] >= no || seen[perm[k]]++)
        rk_fail(c, RK_EDIM, n->pos, "TensorDot: permute is not a permutation of 0..%d", no - 1);
  } else {
    for (int k = 0; k < no; k++) perm[k] = k;
  }
  for (int k = 0; k < no; k++) {
    t->src[k] = src[perm[k]];
    t->dout[k] = d[perm[k]];
  }
}

static long tensor_terms_count(const tensor_spec *t) {
  long terms = prod(t->dout, t->no);
  for (int k = 0; k < t->nc; k++) terms *= t->df[t->cf[k]];
  return terms;
}

static int dim_tensordot(rk_ctx *c, rk_node *n) {
  tensor_spec t;
  tensor_decode(c, n, &t);
  if (prod(t.df, t.nf) != KD(n, 0) || prod(t.dg, t.ng) != KD(n, 1))
    rk_fail(c, RK_EDIM, n->pos, "%s: the shapes do not match the operands' dimensions %d and %d",
            NAME(n), KD(n, 0), KD(n, 1));
  long d = prod(t.dout, t.no), terms = tensor_terms_count(&t);
  if (d > RK_MAX_DIM || terms > 100000)
    rk_fail(c, RK_EDIM, n->pos, "%s: the product is too large (%ld terms)", NAME(n), terms);
  return (int)d;
}

/* the adjoints (internal, built by the derivative rules): operands are the
 * cotangent G of the product and the other factor; the result has the
 * dimension of the factor being differentiated (F: the first, G: the
 * second) */
static int dim_tensoradj(rk_ctx *c, rk_node *n) {
  tensor_spec t;
  tensor_decode(c, n, &t);
  int first = n->op == RK_OP_TENSORDOTADJF || n->op == RK_OP_KRONADJF;
  long other = first ? prod(t.dg, t.ng) : prod(t.df, t.nf);
  if (prod(t.dout, t.no) != KD(n, 0) || other != KD(n, 1))
    rk_fail(c, RK_EINTERNAL, n->pos, "internal error: %s operands of dimensions %d and %d (%s:%d)",
            NAME(n), KD(n, 0), KD(n, 1), __FILE__, __LINE__);
  return (int)(first ? prod(t.df, t.nf) : prod(t.dg, t.ng));
}

/* ------------------------------------------------------------ emitters */

void emit_none(rk_emit *e, const rk_node *n) { (void)e; (void)n; }

/* element k of an operand: broadcast when its dimension is 1 */
static const char *elt(const rk_emit *e, const rk_node *k, char *buf, size_t n) {
  char nm[32];
  emit_name(e, k, nm, sizeof nm);
  if (k->dim == 1) snprintf(buf, n, "%s[0]", nm);
  else snprintf(buf, n, "%s[k]", nm);
  return buf;
}

static void open_block(rk_emit *e, const rk_node *n, char *me, size_t len) {
  emit_name(e, n, me, len);
  emit_line(e, "rk_t %s[%d];", me, n->dim);
  emit_line(e, "{");
  e->indent++;
}

static void close_block(rk_emit *e) {
  e->indent--;
  emit_line(e, "}");
}

/* Reductions over the components of the operand(s), into a scalar:
 *   s = 0; for k: <term>; t = <post>   (A and B in term: operand elements) */
static void emit_inner(rk_emit *e, const rk_node *n, const char *term, const char *post) {
  char me[32], a[48], b[48];
  int D = 1;
  for (int i = 0; i < n->nkids; i++) if (KD(n, i) > D) D = KD(n, i);
  elt(e, n->kid[0], a, sizeof a);
  if (n->nkids > 1) elt(e, n->kid[1], b, sizeof b);
  else b[0] = '\0';
  open_block(e, n, me, sizeof me);
  emit_line(e, "rk_t s = 0;");
  char line[256];
  size_t o = 0;
  for (const char *s = term; *s && o < sizeof line - 64; s++) {
    if (*s == 'A') o += (size_t)snprintf(line + o, sizeof line - o, "%s", a);
    else if (*s == 'B') o += (size_t)snprintf(line + o, sizeof line - o, "%s", b);
    else line[o++] = *s;
  }
  line[o] = '\0';
  emit_line(e, "for (int k = 0; k < %d; k++) { %s }", D, line);
  emit_line(e, "%s[0] = %s;", me, post);
  close_block(e);
}

static void emit_sum(rk_emit *e, const rk_node *n) { emit_inner(e, n, "s += A;", "s"); }
static void emit_sqnorm2(rk_emit *e, const rk_node *n) { emit_inner(e, n, "s += A * A;", "s"); }
static void emit_norm2(rk_emit *e, const rk_node *n) { emit_inner(e, n, "s += A * A;", "RK_SQRT(s)"); }
static void emit_sqdist(rk_emit *e, const rk_node *n) {
  emit_inner(e, n, "rk_t d = A - B; s += d * d;", "s");
}
static void emit_scalprod(rk_emit *e, const rk_node *n) { emit_inner(e, n, "s += A * B;", "s"); }

/* Max, Min (NaN wins, as in R) and ArgMax, ArgMin (0-based position of
 * the first extremum, as a value) */
static void emit_extremum(rk_emit *e, const rk_node *n) {
  char me[32], a[32];
  emit_name(e, n->kid[0], a, sizeof a);
  int mx = n->op == RK_OP_MAX || n->op == RK_OP_ARGMAX;
  int arg = n->op == RK_OP_ARGMAX || n->op == RK_OP_ARGMIN;
  open_block(e, n, me, sizeof me);
  emit_line(e, "rk_t m = %s[0]; int p = 0;", a);
  emit_line(e, "for (int k = 1; k < %d; k++) if (%s(%s[k], m)) { m = %s[k]; p = k; }", KD(n, 0),
            mx ? "RK_BEFORE_MAX" : "RK_BEFORE", a, a);
  emit_line(e, "(void)p; %s[0] = %s;", me, arg ? "(rk_t)p" : "m");
  close_block(e);
}

/* Elem, ElemT, Extract, ExtractT: copies between offsets */
static void emit_slice(rk_emit *e, const rk_node *n) {
  char me[32], a[32];
  emit_name(e, n->kid[0], a, sizeof a);
  open_block(e, n, me, sizeof me);
  switch (n->op) {
  case RK_OP_ELEM:
    emit_line(e, "%s[0] = %s[%d];", me, a, n->par[0]);
    break;
  case RK_OP_ELEMT:
    emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = 0;", n->dim, me);
    emit_line(e, "%s[%d] = %s[0];", me, n->par[1], a);
    break;
  case RK_OP_EXTRACT:
    emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = %s[%d + k];", n->dim, me, a, n->par[0]);
    break;
  default: /* EXTRACTT */
    emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = 0;", n->dim, me);
    emit_line(e, "for (int k = 0; k < %d; k++) %s[%d + k] = %s[k];", KD(n, 0), me, n->par[0], a);
    break;
  }
  close_block(e);
}

static void emit_concat(rk_emit *e, const rk_node *n) {
  char me[32], a[32], b[32];
  emit_name(e, n->kid[0], a, sizeof a);
  emit_name(e, n->kid[1], b, sizeof b);
  open_block(e, n, me, sizeof me);
  emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = %s[k];", KD(n, 0), me, a);
  emit_line(e, "for (int k = 0; k < %d; k++) %s[%d + k] = %s[k];", KD(n, 1), me, KD(n, 0), b);
  close_block(e);
}

/* OneHot(f, d): 1 at position round(f) (half up), zeros elsewhere */
static void emit_onehot(rk_emit *e, const rk_node *n) {
  char me[32], a[32];
  emit_name(e, n->kid[0], a, sizeof a);
  open_block(e, n, me, sizeof me);
  emit_line(e, "rk_t p = RK_FLOOR(%s[0] + (rk_t)0.5);", a);
  emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = p == (rk_t)k ? (rk_t)1 : (rk_t)0;", n->dim, me);
  close_block(e);
}

static void emit_normalize(rk_emit *e, const rk_node *n) {
  char me[32], a[32];
  emit_name(e, n->kid[0], a, sizeof a);
  open_block(e, n, me, sizeof me);
  emit_line(e, "rk_t s = 0;");
  emit_line(e, "for (int k = 0; k < %d; k++) s += %s[k] * %s[k];", KD(n, 0), a, a);
  emit_line(e, "s = rk_rsqrt(s);");
  emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = s * %s[k];", n->dim, me, a);
  close_block(e);
}

/* the weighted norms: x = f (or f - g), then by the weight's dimension */
static void emit_wsqnorm(rk_emit *e, const rk_node *n) {
  char me[32], w[32], f[48], g[48];
  emit_name(e, n->kid[0], w, sizeof w);
  int D = KD(n, 1);
  if (n->nkids == 3 && KD(n, 2) > D) D = KD(n, 2);
  int ds = KD(n, 0);
  open_block(e, n, me, sizeof me);
  emit_line(e, "rk_t x[%d];", D);
  elt(e, n->kid[1], f, sizeof f);
  if (n->nkids == 3) {
    elt(e, n->kid[2], g, sizeof g);
    emit_line(e, "for (int k = 0; k < %d; k++) x[k] = %s - %s;", D, f, g);
  } else {
    emit_line(e, "for (int k = 0; k < %d; k++) x[k] = %s;", D, f);
  }
  emit_line(e, "rk_t s = 0;");
  int mode = n->op == RK_OP_SQNORMISO ? 1 : n->op == RK_OP_SQNORMDIAG ? 2 : n->op == RK_OP_SYMSQNORM ? 3
             : ds == 1 ? 1 : ds == D ? 2 : 3;
  if (mode == 1) {
    emit_line(e, "for (int k = 0; k < %d; k++) s += x[k] * x[k];", D);
    emit_line(e, "s *= %s[0];", w);
  } else if (mode == 2) {
    emit_line(e, "for (int k = 0; k < %d; k++) s += %s[k] * x[k] * x[k];", D, w);
  } else {
    emit_line(e, "for (int l = 0; l < %d; l++) for (int k = 0; k < %d; k++) s += %s[k + %d * l] * x[k] * x[l];",
              D, D, w, D);
  }
  emit_line(e, "%s[0] = s;", me);
  close_block(e);
}

/* MatVecMult(A, b): out[k] = sum_l A[k + n l] b[l] */
static void emit_matvec(rk_emit *e, const rk_node *n) {
  char me[32], A[32], b[32];
  emit_name(e, n->kid[0], A, sizeof A);
  emit_name(e, n->kid[1], b, sizeof b);
  int rows = n->dim, cols = KD(n, 1);
  open_block(e, n, me, sizeof me);
  emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = 0;", rows, me);
  emit_line(e, "for (int l = 0; l < %d; l++) for (int k = 0; k < %d; k++) %s[k] += %s[k + %d * l] * %s[l];",
            cols, rows, me, A, rows, b);
  close_block(e);
}

/* VecMatMult(b, A): out[l] = sum_k b[k] A[k + n l] */
static void emit_vecmat(rk_emit *e, const rk_node *n) {
  char me[32], A[32], b[32];
  emit_name(e, n->kid[0], b, sizeof b);
  emit_name(e, n->kid[1], A, sizeof A);
  int rows = KD(n, 0), cols = n->dim;
  open_block(e, n, me, sizeof me);
  emit_line(e, "for (int l = 0; l < %d; l++) {", cols);
  emit_line(e, "  rk_t s = 0;");
  emit_line(e, "  for (int k = 0; k < %d; k++) s += %s[k] * %s[k + %d * l];", rows, b, A, rows);
  emit_line(e, "  %s[l] = s;", me);
  emit_line(e, "}");
  close_block(e);
}

/* TensorProd(f, g): out[k + m l] = f[k] g[l], as.vector(outer(f, g)) */
static void emit_tensorprod(rk_emit *e, const rk_node *n) {
  char me[32], f[32], g[32];
  emit_name(e, n->kid[0], f, sizeof f);
  emit_name(e, n->kid[1], g, sizeof g);
  int m = KD(n, 0);
  open_block(e, n, me, sizeof me);
  emit_line(e, "for (int l = 0; l < %d; l++) for (int k = 0; k < %d; k++) %s[k + %d * l] = %s[k] * %s[l];",
            KD(n, 1), m, me, m, f, g);
  close_block(e);
}

/* BSpline: de Boor's recursion in place over the dim(t) - 1 order-0
 * indicators [t_j <= x < t_{j+1}]; step k replaces B_i by
 * w_i B_i + (1 - w_{i+1}) B_{i+1}, w_i = (x - t_i) / (t_{i+k} - t_i)
 * (0 when the two knots coincide); the first dim(t) - k - 1 remain. */
static void emit_bspline(rk_emit *e, const rk_node *n) {
  char me[32], t[32], x[32];
  emit_name(e, n->kid[0], t, sizeof t);
  emit_name(e, n->kid[1], x, sizeof x);
  int T = KD(n, 0), K = n->par[0];
  open_block(e, n, me, sizeof me);
  emit_line(e, "rk_t b[%d], x = %s[0];", T - 1, x);
  emit_line(e, "for (int j = 0; j < %d; j++) b[j] = (%s[j] <= x && x < %s[j + 1]) ? (rk_t)1 : (rk_t)0;",
            T - 1, t, t);
  emit_line(e, "for (int k = 1; k <= %d; k++) {", K);
  emit_line(e, "  rk_t w0 = %s[0] < %s[k] ? (x - %s[0]) / (%s[k] - %s[0]) : (rk_t)0;", t, t, t, t, t);
  emit_line(e, "  for (int i = 0; i < %d - k; i++) {", T - 1);
  emit_line(e, "    rk_t w1 = %s[i + 1] < %s[i + 1 + k] ? (x - %s[i + 1]) / (%s[i + 1 + k] - %s[i + 1]) : (rk_t)0;",
            t, t, t, t, t);
  emit_line(e, "    b[i] = w0 * b[i] + ((rk_t)1 - w1) * b[i + 1];");
  emit_line(e, "    w0 = w1;");
  emit_line(e, "  }");
  emit_line(e, "}");
  emit_line(e, "for (int j = 0; j < %d; j++) %s[j] = b[j];", n->dim, me);
  close_block(e);
}

/* the soft minimum of a, b, c at smoothing g: m - g log(sum exp((m - .)/g)),
 * m the minimum (a NaN operand gives NaN) */
#define SOFTMIN3 "m = a < b ? a : b; m = c < m ? c : m; " \
  "m = m - g * RK_LOG(RK_EXP((m - a) / g) + RK_EXP((m - b) / g) + RK_EXP((m - c) / g));"

/* SoftDTW_SqDist: R(i, j) = d(i, j) + softmin(R(i-1, j-1), R(i-1, j),
 * R(i, j-1)), d(i, j) = (x_i - y_j)^2, plain sums along the first row and
 * column (as KeOps 2.3); one column of R kept (r[i] = R(i, j - 1), then
 * R(i, j)). */
static void emit_softdtw(rk_emit *e, const rk_node *n) {
  char me[32], x[32], y[32], gm[32];
  emit_name(e, n->kid[0], x, sizeof x);
  emit_name(e, n->kid[1], y, sizeof y);
  emit_name(e, n->kid[2], gm, sizeof gm);
  int N = KD(n, 0), M = KD(n, 1);
  open_block(e, n, me, sizeof me);
  emit_line(e, "rk_t r[%d], g = %s[0], acc = 0;", N, gm);
  emit_line(e, "for (int i = 0; i < %d; i++) { rk_t d = %s[i] - %s[0]; acc += d * d; r[i] = acc; }", N, x, y);
  emit_line(e, "for (int j = 1; j < %d; j++) {", M);
  emit_line(e, "  rk_t d = %s[0] - %s[j], a = r[0], b, c, m;", x, y);
  emit_line(e, "  r[0] += d * d;");
  emit_line(e, "  for (int i = 1; i < %d; i++) {", N);
  emit_line(e, "    b = r[i]; c = r[i - 1];");
  emit_line(e, "    " SOFTMIN3);
  emit_line(e, "    d = %s[i] - %s[j];", x, y);
  emit_line(e, "    r[i] = d * d + m; a = b;");
  emit_line(e, "  }");
  emit_line(e, "}");
  emit_line(e, "%s[0] = r[%d];", me, N - 1);
  close_block(e);
}

/* GradSoftDTW_SqDist: the gradient of SoftDTW_SqDist in (x, y), n + m
 * values.  The whole table R (column-major, R[i + n j]), then
 * E(i, j) = dR(n-1, m-1) / dR(i, j) backwards: each successor s of (i, j)
 * passes E(s) times the weight of R(i, j) in its soft minimum,
 * exp((R(s) - d(s) - R(i, j)) / g) (1 along the first row and column,
 * where a cell has one predecessor); then dx_i = sum_j 2 E (x_i - y_j)
 * and dy_j = -sum_i 2 E (x_i - y_j). */
static void emit_gradsoftdtw(rk_emit *e, const rk_node *n) {
  char me[32], x[32], y[32], gm[32];
  emit_name(e, n->kid[0], x, sizeof x);
  emit_name(e, n->kid[1], y, sizeof y);
  emit_name(e, n->kid[2], gm, sizeof gm);
  int N = KD(n, 0), M = KD(n, 1);
  open_block(e, n, me, sizeof me);
  emit_line(e, "rk_t R[%d], E[%d], g = %s[0];", N * M, N * M, gm);
  emit_line(e, "for (int j = 0; j < %d; j++) for (int i = 0; i < %d; i++) {", M, N);
  emit_line(e, "  rk_t d = %s[i] - %s[j], a, b, c, m;", x, y);
  emit_line(e, "  d = d * d;");
  emit_line(e, "  if (i == 0 && j == 0) m = 0;");
  emit_line(e, "  else if (j == 0) m = R[i - 1];");
  emit_line(e, "  else if (i == 0) m = R[%d * (j - 1)];", N);
  emit_line(e, "  else { a = R[i - 1 + %d * (j - 1)]; b = R[i + %d * (j - 1)]; c = R[i - 1 + %d * j]; "
            SOFTMIN3 " }", N, N, N);
  emit_line(e, "  R[i + %d * j] = d + m;", N);
  emit_line(e, "}");
  emit_line(e, "for (int j = %d; j >= 0; j--) for (int i = %d; i >= 0; i--) {", M - 1, N - 1);
  emit_line(e, "  rk_t s = 0, r = R[i + %d * j], d;", N);
  emit_line(e, "  if (i == %d && j == %d) s = 1;", N - 1, M - 1);
  emit_line(e, "  if (i + 1 < %d) { d = %s[i + 1] - %s[j]; "
            "s += E[i + 1 + %d * j] * (j == 0 ? (rk_t)1 : RK_EXP((R[i + 1 + %d * j] - d * d - r) / g)); }",
            N, x, y, N, N);
  emit_line(e, "  if (j + 1 < %d) { d = %s[i] - %s[j + 1]; "
            "s += E[i + %d * (j + 1)] * (i == 0 ? (rk_t)1 : RK_EXP((R[i + %d * (j + 1)] - d * d - r) / g)); }",
            M, x, y, N, N);
  emit_line(e, "  if (i + 1 < %d && j + 1 < %d) { d = %s[i + 1] - %s[j + 1]; "
            "s += E[i + 1 + %d * (j + 1)] * RK_EXP((R[i + 1 + %d * (j + 1)] - d * d - r) / g); }",
            N, M, x, y, N, N);
  emit_line(e, "  E[i + %d * j] = s;", N);
  emit_line(e, "}");
  emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = 0;", N + M, me);
  emit_line(e, "for (int j = 0; j < %d; j++) for (int i = 0; i < %d; i++) {", M, N);
  emit_line(e, "  rk_t t = 2 * E[i + %d * j] * (%s[i] - %s[j]);", N, x, y);
  emit_line(e, "  %s[i] += t; %s[%d + j] -= t;", me, me, N);
  emit_line(e, "}");
  close_block(e);
}

/* TensorDot and Kron, fully unrolled: every term f[fi] g[gi] of output
 * element o, in increasing o (the sizes are bounded by dim_tensordot). */
typedef void (*term_fn)(void *ctx, long o, long fi, long gi);

static void tensor_terms(const tensor_spec *t, int kron, term_fn fn, void *ctx) {
  long nout = prod(t->dout, t->no);
  for (long o = 0; o < nout; o++) {
    int oi[2 * RK_MAX_RANK];          /* output multi-index (permuted axes) */
    long r = o;
    for (int k = 0; k < t->no; k++) { oi[k] = (int)(r % t->dout[k]); r /= t->dout[k]; }
    if (kron) {
      long fi = 0, gi = 0, sf = 1, sg = 1;
      for (int k = 0; k < t->no; k++) {
        fi += (oi[k] / t->dg[k]) * sf;
        gi += (oi[k] % t->dg[k]) * sg;
        sf *= t->df[k];
        sg *= t->dg[k];
      }
      fn(ctx, o, fi, gi);
      continue;
    }
    int fidx[RK_MAX_RANK] = {0}, gidx[RK_MAX_RANK] = {0};
    for (int k = 0; k < t->no; k++) {
      if (t->src[k] < t->nf) fidx[t->src[k]] = oi[k];
      else gidx[t->src[k] - t->nf] = oi[k];
    }
    long ncon = 1;
    for (int k = 0; k < t->nc; k++) ncon *= t->df[t->cf[k]];
    for (long q = 0; q < ncon; q++) {
      long rq = q;
      for (int k = 0; k < t->nc; k++) {
        int v = (int)(rq % t->df[t->cf[k]]);
        rq /= t->df[t->cf[k]];
        fidx[t->cf[k]] = v;
        gidx[t->cg[k]] = v;
      }
      long lf = 0, lg = 0, sf = 1, sg = 1;
      for (int k = 0; k < t->nf; k++) { lf += fidx[k] * sf; sf *= t->df[k]; }
      for (int k = 0; k < t->ng; k++) { lg += gidx[k] * sg; sg *= t->dg[k]; }
      fn(ctx, o, lf, lg);
    }
  }
}

/* one line per target element: target[i] = a[..] * b[..] + ... */
typedef struct term_list { long n, cap; long *x, *y; } term_list;
typedef struct term_ctx { rk_ctx *c; term_list *lists; int mode; } term_ctx;

static void add_term(void *p, long o, long fi, long gi) {
  term_ctx *T = p;
  long tgt = T->mode == 0 ? o : T->mode == 1 ? fi : gi;
  long x = T->mode == 0 ? fi : o, y = T->mode == 2 ? fi : gi;
  term_list *L = &T->lists[tgt];
  if (L->n == L->cap) {
    long cap = L->cap ? 2 * L->cap : 4;
    long *nx = ctx_alloc(T->c, sizeof(long) * (size_t)cap), *ny = ctx_alloc(T->c, sizeof(long) * (size_t)cap);
    if (L->n) {
      memcpy(nx, L->x, sizeof(long) * (size_t)L->n);
      memcpy(ny, L->y, sizeof(long) * (size_t)L->n);
    }
    L->x = nx;
    L->y = ny;
    L->cap = cap;
  }
  L->x[L->n] = x;
  L->y[L->n] = y;
  L->n++;
}

/* TensorDot, Kron (mode 0: out[o] = sum f[fi] g[gi]) and their adjoints
 * (mode 1: fbar[fi] = sum G[o] g[gi]; mode 2: gbar[gi] = sum G[o] f[fi]) */
static void emit_tensordot(rk_emit *e, const rk_node *n) {
  tensor_spec t;
  tensor_decode(e->c, n, &t);
  int mode = (n->op == RK_OP_TENSORDOTADJF || n->op == RK_OP_KRONADJF) ? 1
           : (n->op == RK_OP_TENSORDOTADJG || n->op == RK_OP_KRONADJG) ? 2 : 0;
  char me[32], a[32], b[32];
  emit_name(e, n->kid[0], a, sizeof a);
  emit_name(e, n->kid[1], b, sizeof b);
  term_ctx T = {e->c, ctx_alloc(e->c, sizeof(term_list) * (size_t)n->dim), mode};
  tensor_terms(&t, is_kron(n), add_term, &T);
  open_block(e, n, me, sizeof me);
  for (long o = 0; o < n->dim; o++) {
    for (int k = 0; k < e->indent; k++) buf_puts(e->b, "  ");
    buf_printf(e->b, "%s[%ld] = ", me, o);
    term_list *L = &T.lists[o];
    if (L->n == 0) buf_puts(e->b, "0");
    for (long q = 0; q < L->n; q++) buf_printf(e->b, "%s%s[%ld] * %s[%ld]", q ? " + " : "", a, L->x[q], b, L->y[q]);
    buf_puts(e->b, ";\n");
  }
  close_block(e);
}

/* Complex operations on interleaved (re, im) pairs.  For binary ops, an
 * operand of dimension 2 (one complex number) is broadcast. */
static void emit_complex(rk_emit *e, const rk_node *n) {
  char me[32], a[32], b[32] = "";
  emit_name(e, n->kid[0], a, sizeof a);
  if (n->nkids > 1) emit_name(e, n->kid[1], b, sizeof b);
  open_block(e, n, me, sizeof me);
  int pairs = n->dim / 2;
  /* pair index of operand i inside a loop over k */
  const char *ia = KD(n, 0) == 2 ? "0" : "2 * k";
  const char *ib = n->nkids > 1 && KD(n, 1) == 2 ? "0" : "2 * k";
  switch (n->op) {
  case RK_OP_COMPLEXREAL:
  case RK_OP_COMPLEXIMAG:
    emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = %s[2 * k + %d];", n->dim, me, a,
              n->op == RK_OP_COMPLEXIMAG);
    break;
  case RK_OP_REAL2COMPLEX:
  case RK_OP_IMAG2COMPLEX: {
    int im = n->op == RK_OP_IMAG2COMPLEX;
    emit_line(e, "for (int k = 0; k < %d; k++) { %s[2 * k + %d] = %s[k]; %s[2 * k + %d] = 0; }",
              KD(n, 0), me, im, a, me, 1 - im);
    break;
  }
  case RK_OP_CONJ:
    emit_line(e, "for (int k = 0; k < %d; k++) { %s[2 * k] = %s[2 * k]; %s[2 * k + 1] = -%s[2 * k + 1]; }",
              pairs, me, a, me, a);
    break;
  case RK_OP_COMPLEXABS:
    emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = RK_SQRT(%s[2 * k] * %s[2 * k] + %s[2 * k + 1] * %s[2 * k + 1]);",
              n->dim, me, a, a, a, a);
    break;
  case RK_OP_COMPLEXSQUAREABS:
    emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = %s[2 * k] * %s[2 * k] + %s[2 * k + 1] * %s[2 * k + 1];",
              n->dim, me, a, a, a, a);
    break;
  case RK_OP_COMPLEXANGLE:
    emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = RK_ATAN2(%s[2 * k + 1], %s[2 * k]);", n->dim, me, a, a);
    break;
  case RK_OP_COMPLEXSUM:
    emit_line(e, "%s[0] = 0; %s[1] = 0;", me, me);
    emit_line(e, "for (int k = 0; k < %d; k++) { %s[0] += %s[2 * k]; %s[1] += %s[2 * k + 1]; }",
              KD(n, 0) / 2, me, a, me, a);
    break;
  case RK_OP_COMPLEXSUMT:
    emit_line(e, "for (int k = 0; k < %d; k++) { %s[2 * k] = %s[0]; %s[2 * k + 1] = %s[1]; }", pairs,
              me, a, me, a);
    break;
  case RK_OP_COMPLEXADD:
  case RK_OP_COMPLEXSUBTRACT: {
    const char *op = n->op == RK_OP_COMPLEXADD ? "+" : "-";
    emit_line(e, "for (int k = 0; k < %d; k++) { %s[2 * k] = %s[%s] %s %s[%s]; %s[2 * k + 1] = %s[%s + 1] %s %s[%s + 1]; }",
              pairs, me, a, ia, op, b, ib, me, a, ia, op, b, ib);
    break;
  }
  case RK_OP_COMPLEXMULT:
  case RK_OP_COMPLEXSCAL:
    emit_line(e, "for (int k = 0; k < %d; k++) {", pairs);
    emit_line(e, "  rk_t ar = %s[%s], ai = %s[%s + 1], br = %s[%s], bi = %s[%s + 1];", a, ia, a, ia, b, ib, b, ib);
    emit_line(e, "  %s[2 * k] = ar * br - ai * bi; %s[2 * k + 1] = ar * bi + ai * br;", me, me);
    emit_line(e, "}");
    break;
  case RK_OP_COMPLEXREALSCAL: {
    const char *r = KD(n, 0) == 1 ? a : b, *z = KD(n, 0) == 1 ? b : a;
    emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = %s[0] * %s[k];", n->dim, me, r, z);
    break;
  }
  case RK_OP_COMPLEXDIVIDE:
    emit_line(e, "for (int k = 0; k < %d; k++) {", pairs);
    emit_line(e, "  rk_t ar = %s[%s], ai = %s[%s + 1], br = %s[%s], bi = %s[%s + 1];", a, ia, a, ia, b, ib, b, ib);
    emit_line(e, "  rk_t d = br * br + bi * bi;");
    emit_line(e, "  %s[2 * k] = (ar * br + ai * bi) / d; %s[2 * k + 1] = (ai * br - ar * bi) / d;", me, me);
    emit_line(e, "}");
    break;
  case RK_OP_COMPLEXEXP:
    emit_line(e, "for (int k = 0; k < %d; k++) {", pairs);
    emit_line(e, "  rk_t r = RK_EXP(%s[2 * k]);", a);
    emit_line(e, "  %s[2 * k] = r * RK_COS(%s[2 * k + 1]); %s[2 * k + 1] = r * RK_SIN(%s[2 * k + 1]);", me, a, me, a);
    emit_line(e, "}");
    break;
  default: /* COMPLEXEXP1J */
    emit_line(e, "for (int k = 0; k < %d; k++) { %s[2 * k] = RK_COS(%s[k]); %s[2 * k + 1] = RK_SIN(%s[k]); }",
              KD(n, 0), me, a, me, a);
    break;
  }
  close_block(e);
}

/* ------------------------------------------------------------ the table */

#define X(id, name, arity, npar, dimrule, emitter, tmpl, fn, rname, deriv, flags) \
  {name, arity, npar, dimrule, emitter, tmpl, fn, rname, deriv, flags},
const rk_op rk_ops[RK_OP_COUNT] = {
#include "ops.def"
};
#undef X

int ops_lookup(const char *name, size_t len) {
  for (int i = 0; i < RK_OP_COUNT; i++)
    if (!(rk_ops[i].flags & OPF_INTERNAL) && strlen(rk_ops[i].name) == len &&
        memcmp(rk_ops[i].name, name, len) == 0)
      return i;
  return -1;
}
