/*
 * refeval.c -- the independent reference evaluator (see refeval.h).
 *
 * Grammar (KeOps formula strings, the infix part read as Python would):
 *
 *   top      = ("Grad" "(" reduction "," variable "," expr ")")
 *            | ("GradFromPos" "(" reduction "," int "," expr ")")
 *            | reduction
 *   reduction= NAME "_Reduction" "(" expr {"," expr} ["," int] "," int ")"
 *   expr     = sum {("<" | ">" | "<=" | ">=") sum}
 *   sum      = term {("+" | "-") term}
 *   term     = unary {("*" | "/") unary}
 *   unary    = "-" unary | power
 *   power    = primary ["**" ["-"] int]
 *   primary  = int | "(" expr ["|" expr] ")" | NAME "(" args ")" | NAME
 *   args     = operands, then integers (or integer lists "[a, b]" for
 *              TensorDot and Kron), as many as the op table says
 *   decl     = NAME "=" ("Vi"|"Vj"|"Pm") "(" int ["," int] ")"
 *            | NAME "=" "Var" "(" int "," int "," int ")"
 *
 * Evaluation is the definition: for every output row r and every value t
 * of the reduced index, every node is computed in creation order (operands
 * come first) in double precision; then the reduction is applied.  No
 * tiling, no hoisting, no generated code.
 */
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "refeval.h"

/* ------------------------------------------------------------ op table */

enum {
  R_VAR, R_INTCST, R_RATCST, R_INTINV, R_ZERO,
  R_ADD, R_SUB, R_MINUS, R_MULT, R_DIV, R_INV, R_SQUARE, R_POW, R_POWF, R_SQRT, R_RSQRT,
  R_EXP, R_LOG, R_XLOGX, R_SIN, R_COS, R_TAN, R_ASIN, R_ACOS, R_ATAN, R_ATAN2, R_SINH,
  R_COSH, R_TANH, R_SINXDIVX, R_ABS, R_SIGN, R_STEP, R_RELU, R_FLOOR, R_ROUND, R_CLAMP,
  R_CLAMPINT, R_DIFFCLAMPINT, R_IFELSE, R_MOD, R_EQUAL, R_NOTEQUAL, R_LESSTHAN,
  R_LESSOREQUAL,
  R_SUM, R_SUMT, R_MAX, R_MIN, R_ARGMAX, R_ARGMIN, R_ELEM, R_ELEMT, R_EXTRACT, R_EXTRACTT,
  R_CONCAT, R_ONEHOT, R_SQNORM2, R_NORM2, R_NORMALIZE, R_SQDIST, R_SCALPROD,
  R_WSQNORM, R_WSQDIST, R_SQNORMISO, R_SQNORMDIAG, R_SYMSQNORM,
  R_MATVEC, R_VECMAT, R_TENSORDOT, R_KRON, R_TENSORPROD, R_BSPLINE, R_SOFTDTW,
  R_CREAL, R_CIMAG, R_REAL2C, R_IMAG2C, R_CONJ, R_CABS, R_CSQABS, R_CANGLE, R_CSUM,
  R_CSUMT, R_CADD, R_CSUB, R_CMULT, R_CSCAL, R_CREALSCAL, R_CDIV, R_CEXP, R_CEXP1J
};

/* dimension rules */
enum {
  D_LEAF, D_ONE, D_PAR0, D_EW, D_EW1, D_PAR1, D_CONCAT, D_KID0, D_MATVEC, D_VECMAT,
  D_PROD, D_TDOT, D_CHALF, D_CDOUBLE, D_CSUM, D_CEW, D_CREALSCAL, D_BSPLINE
};

#define LISTS 1     /* the integer parameters are lists                  */
#define OPTLIST 2   /* one more optional list                            */

static const struct {
  const char *name;
  int arity, npar, drule, flags;
} ops[] = {
  [R_VAR] = {"Var", 0, 3, D_LEAF, 0},
  [R_INTCST] = {"IntCst", 0, 1, D_ONE, 0},
  [R_RATCST] = {"RatCst", 0, 2, D_ONE, 0},
  [R_INTINV] = {"IntInv", 0, 1, D_ONE, 0},
  [R_ZERO] = {"Zero", 0, 1, D_PAR0, 0},
  [R_ADD] = {"Add", 2, 0, D_EW, 0},
  [R_SUB] = {"Subtract", 2, 0, D_EW, 0},
  [R_MINUS] = {"Minus", 1, 0, D_EW, 0},
  [R_MULT] = {"Mult", 2, 0, D_EW, 0},
  [R_DIV] = {"Divide", 2, 0, D_EW, 0},
  [R_INV] = {"Inv", 1, 0, D_EW, 0},
  [R_SQUARE] = {"Square", 1, 0, D_EW, 0},
  [R_POW] = {"Pow", 1, 1, D_EW, 0},
  [R_POWF] = {"Powf", 2, 0, D_EW, 0},
  [R_SQRT] = {"Sqrt", 1, 0, D_EW, 0},
  [R_RSQRT] = {"Rsqrt", 1, 0, D_EW, 0},
  [R_EXP] = {"Exp", 1, 0, D_EW, 0},
  [R_LOG] = {"Log", 1, 0, D_EW, 0},
  [R_XLOGX] = {"XLogX", 1, 0, D_EW, 0},
  [R_SIN] = {"Sin", 1, 0, D_EW, 0},
  [R_COS] = {"Cos", 1, 0, D_EW, 0},
  [R_TAN] = {"Tan", 1, 0, D_EW, 0},
  [R_ASIN] = {"Asin", 1, 0, D_EW, 0},
  [R_ACOS] = {"Acos", 1, 0, D_EW, 0},
  [R_ATAN] = {"Atan", 1, 0, D_EW, 0},
  [R_ATAN2] = {"Atan2", 2, 0, D_EW, 0},
  [R_SINH] = {"Sinh", 1, 0, D_EW, 0},
  [R_COSH] = {"Cosh", 1, 0, D_EW, 0},
  [R_TANH] = {"Tanh", 1, 0, D_EW, 0},
  [R_SINXDIVX] = {"SinXDivX", 1, 0, D_EW, 0},
  [R_ABS] = {"Abs", 1, 0, D_EW, 0},
  [R_SIGN] = {"Sign", 1, 0, D_EW, 0},
  [R_STEP] = {"Step", 1, 0, D_EW, 0},
  [R_RELU] = {"ReLU", 1, 0, D_EW, 0},
  [R_FLOOR] = {"Floor", 1, 0, D_EW, 0},
  [R_ROUND] = {"Round", 1, 1, D_EW, 0},
  [R_CLAMP] = {"Clamp", 3, 0, D_EW, 0},
  [R_CLAMPINT] = {"ClampInt", 1, 2, D_EW, 0},
  [R_DIFFCLAMPINT] = {"DiffClampInt", 1, 2, D_EW, 0},
  [R_IFELSE] = {"IfElse", 3, 0, D_EW, 0},
  [R_MOD] = {"Mod", 3, 0, D_EW, 0},
  [R_EQUAL] = {"Equal", 2, 0, D_EW, 0},
  [R_NOTEQUAL] = {"NotEqual", 2, 0, D_EW, 0},
  [R_LESSTHAN] = {"LessThan", 2, 0, D_EW, 0},
  [R_LESSOREQUAL] = {"LessOrEqual", 2, 0, D_EW, 0},
  [R_SUM] = {"Sum", 1, 0, D_ONE, 0},
  [R_SUMT] = {"SumT", 1, 1, D_PAR0, 0},
  [R_MAX] = {"Max", 1, 0, D_ONE, 0},
  [R_MIN] = {"Min", 1, 0, D_ONE, 0},
  [R_ARGMAX] = {"ArgMax", 1, 0, D_ONE, 0},
  [R_ARGMIN] = {"ArgMin", 1, 0, D_ONE, 0},
  [R_ELEM] = {"Elem", 1, 1, D_ONE, 0},
  [R_ELEMT] = {"ElemT", 1, 2, D_PAR0, 0},
  [R_EXTRACT] = {"Extract", 1, 2, D_PAR1, 0},
  [R_EXTRACTT] = {"ExtractT", 1, 2, D_PAR1, 0},
  [R_CONCAT] = {"Concat", 2, 0, D_CONCAT, 0},
  [R_ONEHOT] = {"OneHot", 1, 1, D_PAR0, 0},
  [R_SQNORM2] = {"SqNorm2", 1, 0, D_ONE, 0},
  [R_NORM2] = {"Norm2", 1, 0, D_ONE, 0},
  [R_NORMALIZE] = {"Normalize", 1, 0, D_KID0, 0},
  [R_SQDIST] = {"SqDist", 2, 0, D_EW1, 0},
  [R_SCALPROD] = {"Scalprod", 2, 0, D_EW1, 0},
  [R_WSQNORM] = {"WeightedSqNorm", 2, 0, D_ONE, 0},
  [R_WSQDIST] = {"WeightedSqDist", 3, 0, D_ONE, 0},
  [R_SQNORMISO] = {"SqNormIso", 2, 0, D_ONE, 0},
  [R_SQNORMDIAG] = {"SqNormDiag", 2, 0, D_ONE, 0},
  [R_SYMSQNORM] = {"SymSqNorm", 2, 0, D_ONE, 0},
  [R_MATVEC] = {"MatVecMult", 2, 0, D_MATVEC, 0},
  [R_VECMAT] = {"VecMatMult", 2, 0, D_VECMAT, 0},
  [R_TENSORDOT] = {"TensorDot", 2, 4, D_TDOT, LISTS | OPTLIST},
  [R_KRON] = {"Kron", 2, 2, D_TDOT, LISTS},
  [R_TENSORPROD] = {"TensorProd", 2, 0, D_PROD, 0},
  [R_BSPLINE] = {"BSpline", 2, 1, D_BSPLINE, 0},
  [R_SOFTDTW] = {"SoftDTW_SqDist", 3, 0, D_ONE, 0},
  [R_CREAL] = {"ComplexReal", 1, 0, D_CHALF, 0},
  [R_CIMAG] = {"ComplexImag", 1, 0, D_CHALF, 0},
  [R_REAL2C] = {"Real2Complex", 1, 0, D_CDOUBLE, 0},
  [R_IMAG2C] = {"Imag2Complex", 1, 0, D_CDOUBLE, 0},
  [R_CONJ] = {"Conj", 1, 0, D_CEW, 0},
  [R_CABS] = {"ComplexAbs", 1, 0, D_CHALF, 0},
  [R_CSQABS] = {"ComplexSquareAbs", 1, 0, D_CHALF, 0},
  [R_CANGLE] = {"ComplexAngle", 1, 0, D_CHALF, 0},
  [R_CSUM] = {"ComplexSum", 1, 0, D_CSUM, 0},
  [R_CSUMT] = {"ComplexSumT", 1, 1, D_PAR0, 0},
  [R_CADD] = {"ComplexAdd", 2, 0, D_CEW, 0},
  [R_CSUB] = {"ComplexSubtract", 2, 0, D_CEW, 0},
  [R_CMULT] = {"ComplexMult", 2, 0, D_CEW, 0},
  [R_CSCAL] = {"ComplexScal", 2, 0, D_CEW, 0},
  [R_CREALSCAL] = {"ComplexRealScal", 2, 0, D_CREALSCAL, 0},
  [R_CDIV] = {"ComplexDivide", 2, 0, D_CEW, 0},
  [R_CEXP] = {"ComplexExp", 1, 0, D_CEW, 0},
  [R_CEXP1J] = {"ComplexExp1j", 1, 0, D_CDOUBLE, 0},
};
#define NOPS ((int)(sizeof ops / sizeof ops[0]))

/* ------------------------------------------------------ reduction table */

enum {
  RR_SUM, RR_MIN, RR_MAX, RR_ARGMIN, RR_ARGMAX, RR_MIN_ARGMIN, RR_MAX_ARGMAX, RR_KMIN,
  RR_ARGKMIN, RR_KMIN_ARGKMIN, RR_LOGSUMEXP, RR_LOGSUMEXPWEIGHT, RR_SUMSOFTMAXWEIGHT,
  RR_MAX_SUMSHIFTEXP, RR_MAX_SUMSHIFTEXPWEIGHT
};

static const struct {
  const char *name;
  int nextra, hasK;
} reds[] = {
  [RR_SUM] = {"Sum", 0, 0},
  [RR_MIN] = {"Min", 0, 0},
  [RR_MAX] = {"Max", 0, 0},
  [RR_ARGMIN] = {"ArgMin", 0, 0},
  [RR_ARGMAX] = {"ArgMax", 0, 0},
  [RR_MIN_ARGMIN] = {"Min_ArgMin", 0, 0},
  [RR_MAX_ARGMAX] = {"Max_ArgMax", 0, 0},
  [RR_KMIN] = {"KMin", 0, 1},
  [RR_ARGKMIN] = {"ArgKMin", 0, 1},
  [RR_KMIN_ARGKMIN] = {"KMin_ArgKMin", 0, 1},
  [RR_LOGSUMEXP] = {"LogSumExp", 0, 0},
  [RR_LOGSUMEXPWEIGHT] = {"LogSumExpWeight", 1, 0},
  [RR_SUMSOFTMAXWEIGHT] = {"SumSoftMaxWeight", 1, 0},
  [RR_MAX_SUMSHIFTEXP] = {"Max_SumShiftExp", 0, 0},
  [RR_MAX_SUMSHIFTEXPWEIGHT] = {"Max_SumShiftExpWeight", 1, 0},
};
#define NREDS ((int)(sizeof reds / sizeof reds[0]))

int ref_knows_op(const char *name, int *arity, int *npar) {
  for (int i = 0; i < NOPS; i++)
    if (strcmp(ops[i].name, name) == 0) {
      if (arity) *arity = ops[i].arity;
      if (npar) *npar = ops[i].npar;
      return 1;
    }
  return 0;
}

int ref_knows_reduction(const char *name, int *nextra, int *hasK) {
  for (int i = 0; i < NREDS; i++)
    if (strcmp(reds[i].name, name) == 0) {
      if (nextra) *nextra = reds[i].nextra;
      if (hasK) *hasK = reds[i].hasK;
      return 1;
    }
  return 0;
}

/* ------------------------------------------------------------ lexer */

typedef struct {
  ref_formula *F;
  const char *s;
  size_t i;
  int depth;
  int failed;
  /* current token */
  int kind;        /* 0 end, 1 number, 2 name, 3 punct, -1 bad */
  size_t tpos, tlen;
  long long num;
  char punct[3];
} RP;

static void fail(RP *p, const char *fmt, ...) {
  if (p->failed) return;
  p->failed = 1;
  va_list ap;
  va_start(ap, fmt);
  char m[200];
  vsnprintf(m, sizeof m, fmt, ap);
  va_end(ap);
  snprintf(p->F->err, sizeof p->F->err, "reference parser, offset %zu: %s", p->tpos, m);
}

static void next(RP *p) {
  const char *s = p->s;
  while (s[p->i] == ' ' || s[p->i] == '\t' || s[p->i] == '\n' || s[p->i] == '\r') p->i++;
  p->tpos = p->i;
  memset(p->punct, 0, sizeof p->punct);
  unsigned char ch = (unsigned char)s[p->i];
  if (!ch) { p->kind = 0; p->tlen = 0; return; }
  if (isdigit(ch)) {
    long long v = 0;
    while (isdigit((unsigned char)s[p->i])) {
      if (v < 1000000000LL) v = v * 10 + (s[p->i] - '0');
      p->i++;
    }
    p->kind = 1;
    p->num = v;
  } else if (isalpha(ch) || ch == '_') {
    while (isalnum((unsigned char)s[p->i]) || s[p->i] == '_') p->i++;
    p->kind = 2;
  } else if ((ch == '*' && s[p->i + 1] == '*') || ((ch == '<' || ch == '>') && s[p->i + 1] == '=')) {
    p->kind = 3;
    p->punct[0] = (char)ch;
    p->punct[1] = s[p->i + 1];
    p->i += 2;
  } else if (strchr("+-*/(),|=<>[]", ch)) {
    p->kind = 3;
    p->punct[0] = (char)ch;
    p->i++;
  } else {
    p->kind = -1;
    fail(p, "unexpected character");
    p->i++;
  }
  p->tlen = p->i - p->tpos;
}

static int is(RP *p, const char *punct) { return p->kind == 3 && strcmp(p->punct, punct) == 0; }
static int is_name(RP *p, const char *w) {
  return p->kind == 2 && p->tlen == strlen(w) && memcmp(p->s + p->tpos, w, p->tlen) == 0;
}
static void want(RP *p, const char *punct) {
  if (!is(p, punct)) fail(p, "expected '%s'", punct);
  else next(p);
}
static int integer(RP *p) {
  int neg = 0;
  if (is(p, "-")) { neg = 1; next(p); }
  if (p->kind != 1) { fail(p, "expected an integer"); return 0; }
  int v = (int)p->num;
  next(p);
  return neg ? -v : v;
}

/* ------------------------------------------------------------ nodes */

#define ND(F, k) ((F)->nodes[k].dim)

/* TensorDot / Kron parameters: (len, items) lists */
typedef struct {
  int nf, df[8], ng, dg[8], nc, cf[8], cg[8], np, perm[16];
} tspec;

static int tspec_decode(const ref_node *n, tspec *t) {
  memset(t, 0, sizeof *t);
  int at = 0;
  int *lens[5] = {&t->nf, &t->ng, &t->nc, &t->nc, &t->np};
  int *dst[5] = {t->df, t->dg, t->cf, t->cg, t->perm};
  int nl = n->op == R_KRON ? 2 : 5;
  for (int l = 0; l < nl; l++) {
    if (at >= n->npar) { if (l == 4) break; return -1; }
    int len = n->par[at++];
    if (len < 0 || len > (l == 4 ? 16 : 8) || at + len > n->npar) return -1;
    *lens[l] = len;
    for (int k = 0; k < len; k++) dst[l][k] = n->par[at++];
  }
  return 0;
}

/* The B-splines of order K on the knots t[0..T) at x, by the Cox-de Boor
 * recursion on a table: B[p][j] for p = 0..K, j = 0..T-2-p. */
static void eval_bspline(const double *t, int T, double x, int K, double *out) {
  double *B = malloc(sizeof(double) * (size_t)(K + 1) * (size_t)(T - 1));
  if (!B) return;
  for (int j = 0; j < T - 1; j++) B[j] = t[j] <= x && x < t[j + 1] ? 1 : 0;
  for (int p = 1; p <= K; p++) {
    const double *prev = B + (size_t)(p - 1) * (size_t)(T - 1);
    double *cur = B + (size_t)p * (size_t)(T - 1);
    for (int j = 0; j < T - 1 - p; j++) {
      double l = t[j + p] > t[j] ? (x - t[j]) / (t[j + p] - t[j]) : 0;
      double w = t[j + p + 1] > t[j + 1] ? (x - t[j + 1]) / (t[j + p + 1] - t[j + 1]) : 0;
      cur[j] = l * prev[j] + (1 - w) * prev[j + 1];
    }
  }
  for (int j = 0; j < T - K - 1; j++) out[j] = B[(size_t)K * (size_t)(T - 1) + (size_t)j];
  free(B);
}

/* soft-DTW of x[0..n), y[0..m) for (x_i - y_j)^2: the n x m table with
 * softmin(a, b, c) = -g log(e^(-a/g) + e^(-b/g) + e^(-c/g)) (shifted by
 * the minimum), plain sums on the first row and column */
static double eval_softdtw(const double *x, int n, const double *y, int m, double g) {
  double *R = malloc(sizeof(double) * (size_t)n * (size_t)m);
  if (!R) return NAN;
  for (int j = 0; j < m; j++)
    for (int i = 0; i < n; i++) {
      double d = (x[i] - y[j]) * (x[i] - y[j]), prev;
      if (i == 0 && j == 0) prev = 0;
      else if (j == 0) prev = R[i - 1];
      else if (i == 0) prev = R[(size_t)n * (size_t)(j - 1)];
      else {
        double v[3] = {R[i - 1 + (size_t)n * (size_t)(j - 1)], R[i + (size_t)n * (size_t)(j - 1)],
                       R[i - 1 + (size_t)n * (size_t)j]};
        double mn = fmin(v[0], fmin(v[1], v[2])), s = 0;
        for (int k = 0; k < 3; k++) s += exp(-(v[k] - mn) / g);
        prev = mn - g * log(s);
      }
      R[i + (size_t)n * (size_t)j] = d + prev;
    }
  double r = R[(size_t)n * (size_t)m - 1];
  free(R);
  return r;
}

static long tprod(const int *d, int n) {
  long p = 1;
  for (int k = 0; k < n; k++) p *= d[k];
  return p;
}

static int dim_of(RP *p, ref_node *n) {
  ref_formula *F = p->F;
  int d0 = n->nk > 0 ? ND(F, n->kid[0]) : 0;
  int d1 = n->nk > 1 ? ND(F, n->kid[1]) : 0;
  switch (ops[n->op].drule) {
  case D_LEAF: return n->par[1];
  case D_ONE: return 1;
  case D_PAR0: return n->par[0];
  case D_PAR1: return n->par[1];
  case D_EW:
  case D_EW1: {
    int d = 1;
    for (int k = 0; k < n->nk; k++) {
      int dk = ND(F, n->kid[k]);
      if (dk == 1 || dk == d) continue;
      if (d != 1) { fail(p, "%s: incompatible dimensions", ops[n->op].name); return 1; }
      d = dk;
    }
    return ops[n->op].drule == D_EW ? d : 1;
  }
  case D_CONCAT: return d0 + d1;
  case D_KID0: return d0;
  case D_MATVEC: return d1 ? d0 / d1 : 1;
  case D_VECMAT: return d0 ? d1 / d0 : 1;
  case D_PROD: return d0 * d1;
  case D_BSPLINE: return d0 - n->par[0] - 1;
  case D_TDOT: {
    tspec t;
    if (tspec_decode(n, &t) != 0) { fail(p, "%s: bad lists", ops[n->op].name); return 1; }
    if (n->op == R_KRON) return (int)(tprod(t.df, t.nf) * tprod(t.dg, t.ng));
    long c = 1;
    for (int k = 0; k < t.nc; k++) c *= t.df[t.cf[k]];
    return (int)(tprod(t.df, t.nf) * tprod(t.dg, t.ng) / (c * c));
  }
  case D_CHALF: return d0 / 2;
  case D_CDOUBLE: return 2 * d0;
  case D_CSUM: return 2;
  case D_CEW: return d0 > d1 ? d0 : d1;
  case D_CREALSCAL: return d0 == 1 ? d1 : d0;
  }
  return 1;
}

static int node(RP *p, int op, int nk, const int *kids, const int *par, int npar) {
  ref_formula *F = p->F;
  if (p->failed) return 0;
  if (F->nnodes >= REF_MAX_NODES) { fail(p, "too many nodes"); return 0; }
  ref_node *n = &F->nodes[F->nnodes];
  memset(n, 0, sizeof *n);
  n->op = op;
  n->nk = nk;
  for (int k = 0; k < nk; k++) n->kid[k] = kids[k];
  n->npar = npar;
  for (int k = 0; k < npar; k++) n->par[k] = par[k];
  n->dim = dim_of(p, n);
  if (n->dim < 1 || n->dim > 100000) { fail(p, "%s: bad dimension %d", ops[op].name, n->dim); return 0; }
  n->off = F->scratch;
  F->scratch += n->dim;
  return F->nnodes++;
}

static int binary(RP *p, int op, int a, int b) {
  int k[2] = {a, b};
  return node(p, op, 2, k, NULL, 0);
}

static int variable(RP *p, const char *name, size_t nlen, int pos, int dim, int cat) {
  ref_formula *F = p->F;
  if (pos < 0 || pos >= REF_MAX_ARGS || dim < 1 || cat < 0 || cat > 2) {
    fail(p, "bad variable");
    return 0;
  }
  rk_arginfo *a = &F->args[pos];
  if (a->dim == 0) {
    a->pos = pos;
    a->dim = dim;
    a->cat = cat;
    if (nlen >= sizeof a->name) nlen = sizeof a->name - 1;
    memcpy(a->name, name, nlen);
    a->name[nlen] = '\0';
    if (pos + 1 > F->nargs) F->nargs = pos + 1;
  } else if (a->dim != dim || a->cat != cat) {
    fail(p, "variable at position %d used with another dimension or category", pos);
  }
  int par[3] = {pos, dim, cat};
  return node(p, R_VAR, 0, NULL, par, 3);
}

/* ("Vi"|"Vj"|"Pm") "(" int ["," int] ")" or "Var" "(" int "," int "," int ")" */
static int varspec(RP *p, int defpos, int *pos, int *dim, int *cat) {
  int k = is_name(p, "Vi") ? 0 : is_name(p, "Vj") ? 1 : is_name(p, "Pm") ? 2 : is_name(p, "Var") ? 3 : -1;
  if (k < 0) return 0;
  next(p);
  want(p, "(");
  int a = integer(p);
  if (k == 3) {
    want(p, ",");
    *pos = a;
    *dim = integer(p);
    want(p, ",");
    *cat = integer(p);
  } else if (is(p, ",")) {
    next(p);
    *pos = a;
    *dim = integer(p);
    *cat = k;
  } else {
    if (defpos < 0) fail(p, "inline variable without a position");
    *pos = defpos;
    *dim = a;
    *cat = k;
  }
  want(p, ")");
  return 1;
}

/* ------------------------------------------------------------ parser */

static int expr(RP *p);

/* "[" int {"," int} [","] "]" or with parentheses: appended as (len, items) */
static void int_list(RP *p, int *par, int *np) {
  const char *close = is(p, "[") ? "]" : is(p, "(") ? ")" : NULL;
  if (!close) { fail(p, "expected a list"); return; }
  next(p);
  int lenpos = (*np)++;
  par[lenpos] = 0;
  while (!p->failed && !is(p, close)) {
    if (*np >= REF_MAX_PARAMS) { fail(p, "list too long"); return; }
    par[(*np)++] = integer(p);
    par[lenpos]++;
    if (is(p, ",")) next(p);
    else if (!is(p, close)) fail(p, "expected ',' in a list");
  }
  next(p);
}

static int primary(RP *p) {
  if (p->failed) return 0;
  if (p->kind == 1) {
    int par[1] = {(int)p->num};
    next(p);
    return node(p, R_INTCST, 0, NULL, par, 1);
  }
  if (is(p, "(")) {
    next(p);
    int a = expr(p);
    if (is(p, "|")) {
      next(p);
      int b = expr(p);
      a = binary(p, R_SCALPROD, a, b);
    }
    want(p, ")");
    return a;
  }
  if (p->kind != 2) { fail(p, "expected an operand"); return 0; }
  const char *name = p->s + p->tpos;
  size_t len = p->tlen;
  size_t save_i = p->i, save_tpos = p->tpos;
  next(p);
  int call = is(p, "(");
  if (call && (len == 2 || len == 3) &&
      (memcmp(name, "Vi", len) == 0 || memcmp(name, "Vj", len) == 0 ||
       memcmp(name, "Pm", len) == 0 || memcmp(name, "Var", len) == 0)) {
    p->i = save_i;   /* back to the name: varspec reads it */
    p->tpos = save_tpos;
    p->kind = 2;
    p->tlen = len;
    int pos, dim, cat;
    if (varspec(p, -1, &pos, &dim, &cat)) return variable(p, "", 0, pos, dim, cat);
    return 0;
  }
  if (!call) {
    ref_formula *F = p->F;
    for (int k = 0; k < F->nargs; k++)
      if (F->args[k].dim && F->args[k].name[0] && strlen(F->args[k].name) == len &&
          memcmp(F->args[k].name, name, len) == 0) {
        int par[3] = {k, F->args[k].dim, F->args[k].cat};
        return node(p, R_VAR, 0, NULL, par, 3);
      }
    fail(p, "unknown variable '%.*s'", (int)len, name);
    return 0;
  }
  int op = -1;
  for (int i = 1; i < NOPS; i++)
    if (strlen(ops[i].name) == len && memcmp(ops[i].name, name, len) == 0) op = i;
  if (op < 0) {
    fail(p, "operation '%.*s' is unknown to the reference evaluator (tests/engine/refeval.c)",
         (int)len, name);
    return 0;
  }
  next(p);
  int kids[3] = {0, 0, 0}, par[REF_MAX_PARAMS] = {0}, np = 0;
  int total = ops[op].arity + ops[op].npar;
  int max = total + ((ops[op].flags & OPTLIST) ? 1 : 0);
  for (int i = 0; i < max && !p->failed; i++) {
    if (i >= total && is(p, ")")) break;
    if (i > 0) want(p, ",");
    if (i < ops[op].arity) kids[i] = expr(p);
    else if (ops[op].flags & LISTS) int_list(p, par, &np);
    else par[np++] = integer(p);
  }
  want(p, ")");
  return node(p, op, ops[op].arity, kids, par, np);
}

static int power(RP *p) {
  int a = primary(p);
  if (is(p, "**")) {
    next(p);
    int par[1] = {integer(p)};
    int k[1] = {a};
    return node(p, R_POW, 1, k, par, 1);
  }
  return a;
}

static int unary(RP *p) {
  if (is(p, "-")) {
    next(p);
    if (++p->depth > REF_MAX_DEPTH) { fail(p, "too deep"); return 0; }
    int a = unary(p);
    p->depth--;
    int k[1] = {a};
    return node(p, R_MINUS, 1, k, NULL, 0);
  }
  return power(p);
}

static int term(RP *p) {
  int a = unary(p);
  while (!p->failed && (is(p, "*") || is(p, "/"))) {
    int op = is(p, "*") ? R_MULT : R_DIV;
    next(p);
    a = binary(p, op, a, unary(p));
  }
  return a;
}

static int sum(RP *p) {
  int a = term(p);
  while (!p->failed && (is(p, "+") || is(p, "-"))) {
    int op = is(p, "+") ? R_ADD : R_SUB;
    next(p);
    a = binary(p, op, a, term(p));
  }
  return a;
}

/* comparisons: a < b is LessThan(a, b), a > b is LessThan(b, a) */
static int expr(RP *p) {
  if (++p->depth > REF_MAX_DEPTH) { fail(p, "too deep"); return 0; }
  int a = sum(p);
  while (!p->failed && (is(p, "<") || is(p, ">") || is(p, "<=") || is(p, ">="))) {
    int le = p->punct[1] == '=', swap = p->punct[0] == '>';
    next(p);
    int b = sum(p);
    a = swap ? binary(p, le ? R_LESSOREQUAL : R_LESSTHAN, b, a)
             : binary(p, le ? R_LESSOREQUAL : R_LESSTHAN, a, b);
  }
  p->depth--;
  return a;
}

static int red_outdim(const ref_formula *F) {
  int D = F->D, K = F->K, DG = F->DG;
  switch (F->red) {
  case RR_MIN_ARGMIN: case RR_MAX_ARGMAX: return 2 * D;
  case RR_KMIN: case RR_ARGKMIN: return K * D;
  case RR_KMIN_ARGKMIN: return 2 * K * D;
  case RR_LOGSUMEXP: return 1;
  case RR_LOGSUMEXPWEIGHT: case RR_SUMSOFTMAXWEIGHT: return DG;
  case RR_MAX_SUMSHIFTEXP: return 2;
  case RR_MAX_SUMSHIFTEXPWEIGHT: return 1 + DG;
  default: return D;
  }
}

static void reduction(RP *p) {
  ref_formula *F = p->F;
  if (p->kind != 2 || p->tlen <= 10 || memcmp(p->s + p->tpos + p->tlen - 10, "_Reduction", 10) != 0) {
    fail(p, "expected <Name>_Reduction(...)");
    return;
  }
  F->red = -1;
  for (int r = 0; r < NREDS; r++)
    if (strlen(reds[r].name) == p->tlen - 10 && memcmp(reds[r].name, p->s + p->tpos, p->tlen - 10) == 0)
      F->red = r;
  if (F->red < 0) {
    fail(p, "reduction '%.*s' is unknown to the reference evaluator", (int)p->tlen, p->s + p->tpos);
    return;
  }
  next(p);
  want(p, "(");
  F->root = expr(p);
  if (reds[F->red].nextra) {
    want(p, ",");
    F->extra = expr(p);
  }
  if (reds[F->red].hasK) {
    want(p, ",");
    F->K = integer(p);
  }
  want(p, ",");
  F->axis = integer(p);
  want(p, ")");
  if (p->failed) return;
  if (F->axis != 0 && F->axis != 1) fail(p, "bad axis");
  F->D = ND(F, F->root);
  F->DG = F->extra >= 0 ? ND(F, F->extra) : 0;
  F->outdim = red_outdim(F);
}

int ref_parse(const char *formula, const char *const *decls, int ndecls, ref_formula *F) {
  memset(F, 0, sizeof *F);
  F->root = F->extra = F->gexpr = -1;
  RP p;
  memset(&p, 0, sizeof p);
  p.F = F;
  for (int d = 0; d < ndecls && !p.failed; d++) {
    p.s = decls[d];
    p.i = 0;
    next(&p);
    if (p.kind != 2) { fail(&p, "declaration %d: expected a name", d); break; }
    const char *name = p.s + p.tpos;
    size_t nlen = p.tlen;
    next(&p);
    want(&p, "=");
    int pos = 0, dim = 0, cat = 0;
    if (!varspec(&p, d, &pos, &dim, &cat)) fail(&p, "declaration %d: expected Vi/Vj/Pm/Var", d);
    if (p.kind != 0) fail(&p, "declaration %d: trailing text", d);
    if (!p.failed) variable(&p, name, nlen, pos, dim, cat);
  }
  if (p.failed) return -1;
  F->nnodes = 0;  /* declarations made variable nodes that are not needed */
  F->scratch = 0;
  p.s = formula;
  p.i = 0;
  next(&p);
  int gfrompos = is_name(&p, "GradFromPos");
  if (is_name(&p, "Grad") || gfrompos) {
    F->grad = 1;
    next(&p);
    want(&p, "(");
    if (is_name(&p, "Grad") || is_name(&p, "GradFromPos")) {
      fail(&p, "nested Grad is not supported by the reference evaluator");
      return -1;
    }
    reduction(&p);
    want(&p, ",");
    if (gfrompos) {
      F->gpos = integer(&p);
    } else {
      int v = expr(&p);
      if (!p.failed && F->nodes[v].op != R_VAR) fail(&p, "Grad: expected a variable");
      F->gpos = p.failed ? 0 : F->nodes[v].par[0];
    }
    want(&p, ",");
    F->gexpr = expr(&p);
    want(&p, ")");
    if (!p.failed && (F->gpos < 0 || F->gpos >= F->nargs || F->args[F->gpos].dim == 0))
      fail(&p, "Grad: no variable at position %d", F->gpos);
    if (!p.failed && ND(F, F->gexpr) != F->outdim)
      fail(&p, "Grad: the gradient input has dimension %d, the reduction %d", ND(F, F->gexpr),
           F->outdim);
  } else {
    reduction(&p);
  }
  if (!p.failed && p.kind != 0) fail(&p, "trailing text");
  if (p.failed) return -1;
  for (int k = 0; k < F->nargs; k++)
    if (F->args[k].dim == 0) {
      snprintf(F->err, sizeof F->err, "reference parser: no variable at position %d", k);
      return -1;
    }
  return 0;
}

/* ------------------------------------------------------------ evaluation */

/* element k of node n: broadcast when n has dimension 1 */
#define VAL(n) (v + F->nodes[n].off)
#define EL(n, k) (ND(F, n) == 1 ? VAL(n)[0] : VAL(n)[k])
/* complex number k of node n (pointer to re, im): broadcast when dim 2 */
#define CEL(n, k) (ND(F, n) == 2 ? VAL(n) : VAL(n) + 2 * (k))

static double rsqrt0(double x) { return x == 0 ? 0 : 1 / sqrt(x); }
static double round_to(double x, int d) {
  if (d == 0) return round(x);
  double p = pow(10.0, d);
  return round(x * p) / p;
}
/* ascending with NaN first (so min of a row with NaN is NaN) */
static int before(double a, double b, int max) {
  if (isnan(a)) return !isnan(b);
  return max ? a > b : a < b;
}

static void eval_tensordot(const ref_formula *F, const ref_node *n, const double *v, double *o) {
  tspec t;
  tspec_decode(n, &t);
  const double *f = VAL(n->kid[0]), *g = VAL(n->kid[1]);
  if (n->op == R_KRON) {
    /* out axis k has size df[k] dg[k]; its index o_k = i_k dg[k] + j_k */
    for (int q = 0; q < n->dim; q++) {
      long r = q, fi = 0, gi = 0, sf = 1, sg = 1;
      for (int k = 0; k < t.nf; k++) {
        int ok = (int)(r % (t.df[k] * t.dg[k]));
        r /= t.df[k] * t.dg[k];
        fi += (ok / t.dg[k]) * sf;
        gi += (ok % t.dg[k]) * sg;
        sf *= t.df[k];
        sg *= t.dg[k];
      }
      o[q] = f[fi] * g[gi];
    }
    return;
  }
  /* natural output axes: free axes of f, then free axes of g; the output
   * axis k is natural axis perm[k] (identity without a permutation) */
  int freef[8], nff = 0, freeg[8], nfg = 0, isc[8] = {0}, isg[8] = {0};
  for (int k = 0; k < t.nc; k++) { isc[t.cf[k]] = 1; isg[t.cg[k]] = 1; }
  for (int k = 0; k < t.nf; k++) if (!isc[k]) freef[nff++] = k;
  for (int k = 0; k < t.ng; k++) if (!isg[k]) freeg[nfg++] = k;
  int nat = nff + nfg, natsize[16];
  for (int k = 0; k < nff; k++) natsize[k] = t.df[freef[k]];
  for (int k = 0; k < nfg; k++) natsize[nff + k] = t.dg[freeg[k]];
  int perm[16];
  for (int k = 0; k < nat; k++) perm[k] = t.np == nat ? t.perm[k] : k;
  long ncon = 1;
  for (int k = 0; k < t.nc; k++) ncon *= t.df[t.cf[k]];
  for (int q = 0; q < n->dim; q++) {
    int natidx[16];
    long r = q;
    for (int k = 0; k < nat; k++) {     /* output index, column-major */
      int sz = natsize[perm[k]];
      natidx[perm[k]] = (int)(r % sz);
      r /= sz;
    }
    int fi[8] = {0}, gi[8] = {0};
    for (int k = 0; k < nff; k++) fi[freef[k]] = natidx[k];
    for (int k = 0; k < nfg; k++) gi[freeg[k]] = natidx[nff + k];
    double s = 0;
    for (long c = 0; c < ncon; c++) {
      long rc = c;
      for (int k = 0; k < t.nc; k++) {
        int sz = t.df[t.cf[k]];
        fi[t.cf[k]] = gi[t.cg[k]] = (int)(rc % sz);
        rc /= sz;
      }
      long lf = 0, lg = 0, sf = 1, sg = 1;
      for (int k = 0; k < t.nf; k++) { lf += fi[k] * sf; sf *= t.df[k]; }
      for (int k = 0; k < t.ng; k++) { lg += gi[k] * sg; sg *= t.dg[k]; }
      s += f[lf] * g[lg];
    }
    o[q] = s;
  }
}

/* values of every node for the pair (i, j); v is the scratch */
static void eval_pair(const ref_formula *F, const rk_input *in, int64_t i, int64_t j, double *v) {
  for (int id = 0; id < F->nnodes; id++) {
    const ref_node *n = &F->nodes[id];
    double *o = v + n->off;
    int a = n->kid[0], b = n->kid[1], c = n->kid[2];
    int dim = n->dim;
    switch (n->op) {
    case R_VAR: {
      const rk_input *x = &in[n->par[0]];
      int cat = n->par[2];
      int64_t row = cat == RK_CAT_I ? i : cat == RK_CAT_J ? j : 0;
      for (int k = 0; k < dim; k++)
        o[k] = cat == RK_CAT_PM ? x->data[k] : x->data[row + (int64_t)k * x->nrow];
      break;
    }
    case R_INTCST: o[0] = n->par[0]; break;
    case R_RATCST: o[0] = (double)n->par[0] / (double)n->par[1]; break;
    case R_INTINV: o[0] = 1.0 / (double)n->par[0]; break;
    case R_ZERO: for (int k = 0; k < dim; k++) o[k] = 0; break;
#define EW1(code) for (int k = 0; k < dim; k++) { double x = EL(a, k); o[k] = (code); } break
#define EW2(code) for (int k = 0; k < dim; k++) { double x = EL(a, k), y = EL(b, k); o[k] = (code); } break
#define EW3(code) for (int k = 0; k < dim; k++) { double x = EL(a, k), y = EL(b, k), z = EL(c, k); o[k] = (code); } break
    case R_ADD: EW2(x + y);
    case R_SUB: EW2(x - y);
    case R_MINUS: EW1(-x);
    case R_MULT: EW2(x * y);
    case R_DIV: EW2(x / y);
    case R_INV: EW1(1 / x);
    case R_SQUARE: EW1(x * x);
    case R_POW: EW1(pow(x, n->par[0]));
    case R_POWF: EW2(pow(x, y));
    case R_SQRT: EW1(sqrt(x));
    case R_RSQRT: EW1(rsqrt0(x));
    case R_EXP: EW1(exp(x));
    case R_LOG: EW1(log(x));
    case R_XLOGX: EW1(x == 0 ? 0.0 : x * log(x));
    case R_SIN: EW1(sin(x));
    case R_COS: EW1(cos(x));
    case R_TAN: EW1(tan(x));
    case R_ASIN: EW1(asin(x));
    case R_ACOS: EW1(acos(x));
    case R_ATAN: EW1(atan(x));
    case R_ATAN2: EW2(atan2(x, y));
    case R_SINH: EW1(sinh(x));
    case R_COSH: EW1(cosh(x));
    case R_TANH: EW1(tanh(x));
    case R_SINXDIVX: EW1(x == 0 ? 1.0 : sin(x) / x);
    case R_ABS: EW1(fabs(x));
    case R_SIGN: EW1(x > 0 ? 1.0 : x < 0 ? -1.0 : x);
    case R_STEP: EW1(x >= 0 ? 1.0 : x < 0 ? 0.0 : x);
    case R_RELU: EW1(x < 0 ? 0.0 : x);
    case R_FLOOR: EW1(floor(x));
    case R_ROUND: EW1(round_to(x, n->par[0]));
    case R_CLAMP: EW3(x < y ? y : x > z ? z : x);
    case R_CLAMPINT: EW1(x < n->par[0] ? n->par[0] : x > n->par[1] ? n->par[1] : x);
    case R_DIFFCLAMPINT: EW1(x < n->par[0] || x > n->par[1] ? 0.0 : 1.0);
    case R_IFELSE: EW3(x >= 0 ? y : z);
    case R_MOD: EW3(x - y * floor((x - z) / y));
    case R_EQUAL: EW2(x == y ? 1.0 : 0.0);
    case R_NOTEQUAL: EW2(x != y ? 1.0 : 0.0);
    case R_LESSTHAN: EW2(x < y ? 1.0 : 0.0);
    case R_LESSOREQUAL: EW2(x <= y ? 1.0 : 0.0);
#undef EW1
#undef EW2
#undef EW3
    case R_SUM: case R_SQNORM2: case R_NORM2: {
      double s = 0;
      for (int k = 0; k < ND(F, a); k++) {
        double x = VAL(a)[k];
        s += n->op == R_SUM ? x : x * x;
      }
      o[0] = n->op == R_NORM2 ? sqrt(s) : s;
      break;
    }
    case R_SUMT: for (int k = 0; k < dim; k++) o[k] = VAL(a)[0]; break;
    case R_MAX: case R_MIN: case R_ARGMAX: case R_ARGMIN: {
      int mx = n->op == R_MAX || n->op == R_ARGMAX, p = 0;
      for (int k = 1; k < ND(F, a); k++)
        if (before(VAL(a)[k], VAL(a)[p], mx)) p = k;
      o[0] = (n->op == R_ARGMAX || n->op == R_ARGMIN) ? (double)p : VAL(a)[p];
      break;
    }
    case R_ELEM: o[0] = VAL(a)[n->par[0]]; break;
    case R_ELEMT:
      for (int k = 0; k < dim; k++) o[k] = 0;
      o[n->par[1]] = VAL(a)[0];
      break;
    case R_EXTRACT: for (int k = 0; k < dim; k++) o[k] = VAL(a)[n->par[0] + k]; break;
    case R_EXTRACTT:
      for (int k = 0; k < dim; k++) o[k] = 0;
      for (int k = 0; k < ND(F, a); k++) o[n->par[0] + k] = VAL(a)[k];
      break;
    case R_CONCAT:
      for (int k = 0; k < ND(F, a); k++) o[k] = VAL(a)[k];
      for (int k = 0; k < ND(F, b); k++) o[ND(F, a) + k] = VAL(b)[k];
      break;
    case R_ONEHOT: {
      double pos = floor(VAL(a)[0] + 0.5);
      for (int k = 0; k < dim; k++) o[k] = pos == (double)k ? 1.0 : 0.0;
      break;
    }
    case R_NORMALIZE: {
      double s = 0;
      for (int k = 0; k < dim; k++) s += VAL(a)[k] * VAL(a)[k];
      double r = rsqrt0(s);
      for (int k = 0; k < dim; k++) o[k] = VAL(a)[k] * r;
      break;
    }
    case R_SQDIST: case R_SCALPROD: {
      int D = ND(F, a) > ND(F, b) ? ND(F, a) : ND(F, b);
      double s = 0;
      for (int k = 0; k < D; k++) {
        double x = EL(a, k), y = EL(b, k);
        s += n->op == R_SQDIST ? (x - y) * (x - y) : x * y;
      }
      o[0] = s;
      break;
    }
    case R_WSQNORM: case R_WSQDIST: case R_SQNORMISO: case R_SQNORMDIAG: case R_SYMSQNORM: {
      /* x = f or f - g; the weight s has dim 1 (isotropic), D (diagonal)
       * or D*D (a matrix, column-major) */
      int D = ND(F, b);
      if (n->op == R_WSQDIST && ND(F, c) > D) D = ND(F, c);
      double x[1024];
      for (int k = 0; k < D && k < 1024; k++)
        x[k] = n->op == R_WSQDIST ? EL(b, k) - EL(c, k) : EL(b, k);
      const double *s = VAL(a);
      int ds = ND(F, a);
      double r = 0;
      if (ds == 1) {
        for (int k = 0; k < D; k++) r += x[k] * x[k];
        r *= s[0];
      } else if (ds == D) {
        for (int k = 0; k < D; k++) r += s[k] * x[k] * x[k];
      } else {
        for (int l = 0; l < D; l++)
          for (int k = 0; k < D; k++) r += s[k + D * l] * x[k] * x[l];
      }
      o[0] = r;
      break;
    }
    case R_MATVEC: {  /* A (dim n p, column-major) times b (dim p) */
      int rows = dim, cols = ND(F, b);
      for (int k = 0; k < rows; k++) {
        double s = 0;
        for (int l = 0; l < cols; l++) s += VAL(a)[k + rows * l] * VAL(b)[l];
        o[k] = s;
      }
      break;
    }
    case R_VECMAT: {  /* b (dim n) times A (dim n p): out[l] = sum_k b_k A[k, l] */
      int rows = ND(F, a);
      for (int l = 0; l < dim; l++) {
        double s = 0;
        for (int k = 0; k < rows; k++) s += VAL(a)[k] * VAL(b)[k + rows * l];
        o[l] = s;
      }
      break;
    }
    case R_TENSORPROD:
      for (int l = 0; l < ND(F, b); l++)
        for (int k = 0; k < ND(F, a); k++) o[k + ND(F, a) * l] = VAL(a)[k] * VAL(b)[l];
      break;
    case R_TENSORDOT: case R_KRON: eval_tensordot(F, n, v, o); break;
    case R_BSPLINE: eval_bspline(VAL(a), ND(F, a), VAL(b)[0], n->par[0], o); break;
    case R_SOFTDTW: o[0] = eval_softdtw(VAL(a), ND(F, a), VAL(b), ND(F, b), VAL(c)[0]); break;
    case R_CREAL: for (int k = 0; k < dim; k++) o[k] = VAL(a)[2 * k]; break;
    case R_CIMAG: for (int k = 0; k < dim; k++) o[k] = VAL(a)[2 * k + 1]; break;
    case R_REAL2C: for (int k = 0; k < ND(F, a); k++) { o[2 * k] = VAL(a)[k]; o[2 * k + 1] = 0; } break;
    case R_IMAG2C: for (int k = 0; k < ND(F, a); k++) { o[2 * k] = 0; o[2 * k + 1] = VAL(a)[k]; } break;
    case R_CONJ: for (int k = 0; k < dim / 2; k++) { o[2 * k] = VAL(a)[2 * k]; o[2 * k + 1] = -VAL(a)[2 * k + 1]; } break;
    case R_CABS: case R_CSQABS: case R_CANGLE:
      for (int k = 0; k < dim; k++) {
        double re = VAL(a)[2 * k], im = VAL(a)[2 * k + 1];
        o[k] = n->op == R_CABS ? hypot(re, im) : n->op == R_CSQABS ? re * re + im * im : atan2(im, re);
      }
      break;
    case R_CSUM:
      o[0] = o[1] = 0;
      for (int k = 0; k < ND(F, a) / 2; k++) { o[0] += VAL(a)[2 * k]; o[1] += VAL(a)[2 * k + 1]; }
      break;
    case R_CSUMT: for (int k = 0; k < dim / 2; k++) { o[2 * k] = VAL(a)[0]; o[2 * k + 1] = VAL(a)[1]; } break;
    case R_CADD: case R_CSUB: case R_CMULT: case R_CSCAL: case R_CDIV:
      for (int k = 0; k < dim / 2; k++) {
        const double *x = CEL(a, k), *y = CEL(b, k);
        double re, im;
        if (n->op == R_CADD) { re = x[0] + y[0]; im = x[1] + y[1]; }
        else if (n->op == R_CSUB) { re = x[0] - y[0]; im = x[1] - y[1]; }
        else if (n->op == R_CDIV) {
          double d = y[0] * y[0] + y[1] * y[1];
          re = (x[0] * y[0] + x[1] * y[1]) / d;
          im = (x[1] * y[0] - x[0] * y[1]) / d;
        } else { re = x[0] * y[0] - x[1] * y[1]; im = x[0] * y[1] + x[1] * y[0]; }
        o[2 * k] = re;
        o[2 * k + 1] = im;
      }
      break;
    case R_CREALSCAL: {
      int r = ND(F, a) == 1 ? a : b, z = ND(F, a) == 1 ? b : a;
      for (int k = 0; k < dim; k++) o[k] = VAL(r)[0] * VAL(z)[k];
      break;
    }
    case R_CEXP:
      for (int k = 0; k < dim / 2; k++) {
        double m = exp(VAL(a)[2 * k]);
        o[2 * k] = m * cos(VAL(a)[2 * k + 1]);
        o[2 * k + 1] = m * sin(VAL(a)[2 * k + 1]);
      }
      break;
    case R_CEXP1J:
      for (int k = 0; k < ND(F, a); k++) { o[2 * k] = cos(VAL(a)[k]); o[2 * k + 1] = sin(VAL(a)[k]); }
      break;
    }
  }
}

static int64_t rows_of(const ref_formula *F, const rk_input *in, int nin, int cat) {
  if (cat == RK_CAT_PM) return 1;
  for (int p = 0; p < F->nargs && p < nin; p++)
    if (F->args[p].cat == cat) return in[p].nrow;
  return 1;
}

static int outcat(const ref_formula *F) { return F->axis == 0 ? RK_CAT_I : RK_CAT_J; }

int64_t ref_nout(const ref_formula *F, const rk_input *in, int nin) {
  if (F->grad) return rows_of(F, in, nin, F->args[F->gpos].cat);
  return rows_of(F, in, nin, outcat(F));
}

int ref_outdim(const ref_formula *F) { return F->grad ? F->args[F->gpos].dim : F->outdim; }

/* One output row r of the reduction: val[outdim] and sc[outdim].  w is a
 * workspace of at least 3 * (outdim + D + DG) + 8 doubles. */
static void reduce_row(const ref_formula *F, const rk_input *in, int64_t r, int64_t nred,
                       double *v, double *val, double *sc, double *w) {
  const ref_node *f = &F->nodes[F->root];
  const ref_node *g = F->extra >= 0 ? &F->nodes[F->extra] : NULL;
  int D = F->D, K = F->K, DG = F->DG, red = F->red;
  int ax = F->axis;
#define PAIR(t) eval_pair(F, in, ax == 0 ? r : (t), ax == 0 ? (t) : r, v)
  switch (red) {
  case RR_SUM: {
    double *acc = w, *abs_ = w + D;
    for (int k = 0; k < D; k++) acc[k] = abs_[k] = 0;
    for (int64_t t = 0; t < nred; t++) {
      PAIR(t);
      for (int k = 0; k < D; k++) {
        acc[k] += v[f->off + k];
        abs_[k] += fabs(v[f->off + k]);
      }
    }
    for (int k = 0; k < D; k++) { val[k] = acc[k]; sc[k] = abs_[k]; }
    return;
  }
  case RR_MIN: case RR_MAX: case RR_ARGMIN: case RR_ARGMAX: case RR_MIN_ARGMIN: case RR_MAX_ARGMAX: {
    int mx = red == RR_MAX || red == RR_ARGMAX || red == RR_MAX_ARGMAX;
    double *best = w, *idx = w + D;
    for (int k = 0; k < D; k++) { best[k] = mx ? -INFINITY : INFINITY; idx[k] = -1; }
    for (int64_t t = 0; t < nred; t++) {
      PAIR(t);
      for (int k = 0; k < D; k++) {
        double x = v[f->off + k];
        if (idx[k] < 0 || before(x, best[k], mx)) { best[k] = x; idx[k] = (double)t; }
      }
    }
    for (int k = 0; k < D; k++) {
      double ix = idx[k] < 0 ? NAN : idx[k] + 1;
      if (red == RR_MIN || red == RR_MAX) { val[k] = best[k]; sc[k] = fmax(fabs(best[k]), 1); }
      else if (red == RR_ARGMIN || red == RR_ARGMAX) { val[k] = ix; sc[k] = 1; }
      else {
        val[k] = best[k]; sc[k] = fmax(fabs(best[k]), 1);
        val[D + k] = ix; sc[D + k] = 1;
      }
    }
    return;
  }
  case RR_KMIN: case RR_ARGKMIN: case RR_KMIN_ARGKMIN: {
    /* slot k of component d at d*K + k, sorted ascending, ties: first index */
    double *V = w, *X = w + K * D;
    for (int q = 0; q < K * D; q++) { V[q] = INFINITY; X[q] = -1; }
    for (int64_t t = 0; t < nred; t++) {
      PAIR(t);
      for (int d = 0; d < D; d++) {
        double x = v[f->off + d];
        double *Vd = V + d * K, *Xd = X + d * K;
        if (!(Xd[K - 1] < 0 || before(x, Vd[K - 1], 0))) continue;
        int p = K - 1;
        while (p > 0 && (Xd[p - 1] < 0 || before(x, Vd[p - 1], 0))) {
          Vd[p] = Vd[p - 1];
          Xd[p] = Xd[p - 1];
          p--;
        }
        Vd[p] = x;
        Xd[p] = (double)t;
      }
    }
    /* output column k + K*d (R's array(, c(n, K, D))), indices after */
    for (int q = 0; q < K * D; q++) {
      double ix = X[q] < 0 ? NAN : X[q] + 1;
      if (red == RR_KMIN) { val[q] = V[q]; sc[q] = fmax(fabs(V[q]), 1); }
      else if (red == RR_ARGKMIN) { val[q] = ix; sc[q] = 1; }
      else {
        val[q] = V[q]; sc[q] = fmax(fabs(V[q]), 1);
        val[K * D + q] = ix; sc[K * D + q] = 1;
      }
    }
    return;
  }
  default: {
    /* the shifted exponential sums: m = max F, S_w = sum exp(F - m) W_w */
    double m = -INFINITY;
    for (int64_t t = 0; t < nred; t++) {
      PAIR(t);
      if (v[f->off] > m) m = v[f->off];
    }
    int W = (red == RR_LOGSUMEXP || red == RR_MAX_SUMSHIFTEXP) ? 1
          : red == RR_SUMSOFTMAXWEIGHT ? 1 + DG : DG;
    double *S = w, *A = w + W;
    for (int q = 0; q < W; q++) S[q] = A[q] = 0;
    for (int64_t t = 0; t < nred; t++) {
      PAIR(t);
      double e = exp(v[f->off] - m);
      for (int q = 0; q < W; q++) {
        double wt = (red == RR_LOGSUMEXP || red == RR_MAX_SUMSHIFTEXP) ? 1.0
                  : red == RR_SUMSOFTMAXWEIGHT ? (q == 0 ? 1.0 : v[g->off + q - 1]) : v[g->off + q];
        S[q] += e * wt;
        A[q] += e * fabs(wt);
      }
    }
    switch (red) {
    case RR_LOGSUMEXP: val[0] = m + log(S[0]); sc[0] = fmax(fabs(val[0]), 1); break;
    case RR_LOGSUMEXPWEIGHT:
      for (int q = 0; q < DG; q++) { val[q] = m + log(S[q]); sc[q] = fmax(fabs(val[q]), 1); }
      break;
    case RR_SUMSOFTMAXWEIGHT:
      for (int q = 0; q < DG; q++) { val[q] = S[1 + q] / S[0]; sc[q] = A[1 + q] / S[0]; }
      break;
    default:  /* Max_SumShiftExp(Weight): the raw (m, s) */
      val[0] = m;
      sc[0] = fmax(fabs(m), 1);
      for (int q = 0; q < W; q++) { val[1 + q] = S[q]; sc[1 + q] = A[q]; }
      break;
    }
    return;
  }
  }
#undef PAIR
}

/* d/dv[r, k] of L = sum over output rows o of <e_o, R_o>, by central
 * differences; only the output rows that depend on v[r, .] are evaluated
 * (and, for a Sum over v's category, only the pairs holding r). */
static int grad_rows(ref_formula *F, const rk_input *in, int nin, const int64_t *rows,
                     int64_t nrows, double *out, int64_t ldo, double *scale, double *v, double *w,
                     double *val, double *sc) {
  const rk_arginfo *a = &F->args[F->gpos];
  int oc = outcat(F), rc = F->axis == 0 ? RK_CAT_J : RK_CAT_I;
  int64_t nout = rows_of(F, in, nin, oc), nred = rows_of(F, in, nin, rc);
  rk_input *cp = malloc((size_t)nin * sizeof *cp);
  size_t len = (size_t)(in[F->gpos].nrow * in[F->gpos].ncol);
  double *data = malloc((len + 1) * sizeof *data);
  double *e = malloc(((size_t)F->outdim + 1) * sizeof *e);
  if (!cp || !data || !e) {
    free(cp); free(data); free(e);
    snprintf(F->err, sizeof F->err, "out of memory");
    return -1;
  }
  memcpy(cp, in, (size_t)nin * sizeof *cp);
  memcpy(data, in[F->gpos].data, len * sizeof *data);
  cp[F->gpos].data = data;
  int sum_shortcut = F->red == RR_SUM && a->cat == rc;
  double big = 0;
  for (int64_t q = 0; q < nrows; q++) {
    int64_t r = rows[q];
    for (int k = 0; k < a->dim; k++) {
      size_t at = a->cat == RK_CAT_PM ? (size_t)k : (size_t)(r + (int64_t)k * in[F->gpos].nrow);
      double x0 = data[at], h = ldexp(fmax(1.0, fabs(x0)), -17);
      long double L[2];
      double xs[2] = {x0 + h, x0 - h};
      for (int s = 0; s < 2; s++) {
        data[at] = xs[s];
        long double acc = 0;
        int64_t o0 = a->cat == oc ? r : 0, o1 = a->cat == oc ? r + 1 : nout;
        for (int64_t o = o0; o < o1; o++) {
          /* e at this output row (it must not depend on the reduced index) */
          eval_pair(F, cp, oc == RK_CAT_I ? o : 0, oc == RK_CAT_I ? 0 : o, v);
          for (int c = 0; c < F->outdim; c++) e[c] = v[F->nodes[F->gexpr].off + c];
          if (sum_shortcut) {
            eval_pair(F, cp, oc == RK_CAT_I ? o : r, oc == RK_CAT_I ? r : o, v);
            for (int c = 0; c < F->outdim; c++) acc += (long double)e[c] * v[F->nodes[F->root].off + c];
          } else {
            reduce_row(F, cp, o, nred, v, val, sc, w);
            for (int c = 0; c < F->outdim; c++) acc += (long double)e[c] * val[c];
          }
        }
        L[s] = acc;
      }
      data[at] = x0;
      double gval = (double)((L[0] - L[1]) / ((long double)xs[0] - (long double)xs[1]));
      out[q + (int64_t)k * ldo] = gval;
      if (fabs(gval) > big) big = fabs(gval);
    }
  }
  if (scale)
    for (int64_t q = 0; q < nrows; q++)
      for (int k = 0; k < a->dim; k++) scale[q + (int64_t)k * ldo] = big > 0 ? big : 1;
  free(cp); free(data); free(e);
  return 0;
}

int ref_eval_rows(ref_formula *F, const rk_input *in, int nin, const int64_t *rows, int64_t nrows,
                  double *out, int64_t ldo, double *scale) {
  if (nin != F->nargs) {
    snprintf(F->err, sizeof F->err, "reference: %d inputs for %d arguments", nin, F->nargs);
    return -1;
  }
  int rc = F->axis == 0 ? RK_CAT_J : RK_CAT_I;
  int64_t nred = rows_of(F, in, nin, rc);
  size_t nw = 3 * ((size_t)F->outdim + (size_t)F->D + (size_t)F->DG) + 8;
  double *v = malloc(((size_t)F->scratch + 1) * sizeof *v);
  double *w = malloc(nw * sizeof *w);
  double *val = malloc(((size_t)F->outdim + 1) * sizeof *val);
  double *sc = malloc(((size_t)F->outdim + 1) * sizeof *sc);
  int ret = 0;
  if (!v || !w || !val || !sc) {
    snprintf(F->err, sizeof F->err, "out of memory");
    ret = -1;
  } else if (F->grad) {
    ret = grad_rows(F, in, nin, rows, nrows, out, ldo, scale, v, w, val, sc);
  } else {
    for (int64_t q = 0; q < nrows; q++) {
      reduce_row(F, in, rows[q], nred, v, val, sc, w);
      for (int k = 0; k < F->outdim; k++) {
        out[q + (int64_t)k * ldo] = val[k];
        if (scale) scale[q + (int64_t)k * ldo] = sc[k];
      }
    }
  }
  free(v); free(w); free(val); free(sc);
  return ret;
}

double ref_row_cost(const ref_formula *F, const rk_input *in, int nin) {
  int oc = outcat(F), rc = F->axis == 0 ? RK_CAT_J : RK_CAT_I;
  double nout = (double)rows_of(F, in, nin, oc), nred = (double)rows_of(F, in, nin, rc);
  int lse = F->red >= RR_LOGSUMEXP;   /* two passes */
  double row = nred * (lse ? 2 : 1);
  if (!F->grad) return row;
  const rk_arginfo *a = &F->args[F->gpos];
  double fd = 2.0 * a->dim;
  if (a->cat == oc) return fd * row;
  if (a->cat == rc && F->red == RR_SUM) return fd * nout;
  return fd * nout * row;
}

int ref_eval(ref_formula *F, const rk_input *in, int nin, double *out, double *scale) {
  int64_t nout = ref_nout(F, in, nin);
  int64_t *rows = malloc((size_t)(nout > 0 ? nout : 1) * sizeof *rows);
  if (!rows) { snprintf(F->err, sizeof F->err, "out of memory"); return -1; }
  for (int64_t r = 0; r < nout; r++) rows[r] = r;
  int rc = ref_eval_rows(F, in, nin, rows, nout, out, nout, scale);
  free(rows);
  return rc;
}
