/*
 * diff.c -- symbolic differentiation.
 *
 * Reverse mode: diff_grad(F, v, e) is the vector-Jacobian product
 * e^T dF/dv, a formula of the dimension of v.  The nodes below F are
 * visited once each, in decreasing id order (ids follow creation, so this
 * is a reverse topological order); each node passes the cotangent it
 * received to its operands through the derivative column of the op table
 * (d_<op> below: the cotangent of operand i given the node's cotangent g).
 * Hash-consing makes the result share the forward formula's nodes: the
 * gradient of Exp(u) reuses the node Exp(u) itself.
 *
 * Forward mode (Diff), Divergence and Laplacian are built from it, and the
 * gradient of a reduction is another reduction (diff_reduction).
 */
#include <stdio.h>
#include <string.h>
#include "internal.h"

/* ------------------------------------------------------------ builders
 * Small simplifications keep gradients lean: x * 1, 1 * x, x + 0, - - x,
 * constant folding of integer constants. */

static long POS;  /* position reported by internal dimension errors */

static rk_node *B(rk_ctx *c, int op, rk_node *a, rk_node *b, rk_node *d) {
  rk_node *k[3] = {a, b, d};
  int n = d ? 3 : b ? 2 : 1;
  return tree_node(c, op, n, k, NULL, POS);
}

static rk_node *BP(rk_ctx *c, int op, rk_node *a, int p0, int p1) {
  rk_node *k[1] = {a};
  int par[RK_MAX_PARAMS] = {p0, p1};
  return tree_node(c, op, 1, k, par, POS);
}

static rk_node *cst(rk_ctx *c, int v) { return tree_intcst(c, v, POS); }

static int is_cst(const rk_node *n, int v) { return n->op == RK_OP_INTCST && n->par[0] == v; }
static int is_zero(const rk_node *n) { return n->op == RK_OP_ZERO || is_cst(n, 0); }

static rk_node *zero(rk_ctx *c, int dim) {
  int par[RK_MAX_PARAMS] = {dim};
  return tree_node(c, RK_OP_ZERO, 0, NULL, par, POS);
}

static int maxd(const rk_node *a, const rk_node *b) { return a->dim > b->dim ? a->dim : b->dim; }

static rk_node *mul(rk_ctx *c, rk_node *a, rk_node *b) {
  if (is_zero(a) || is_zero(b)) return zero(c, maxd(a, b));
  if (is_cst(a, 1) && b->dim >= a->dim) return b;
  if (is_cst(b, 1) && a->dim >= b->dim) return a;
  if (a->op == RK_OP_INTCST && b->op == RK_OP_INTCST) return cst(c, a->par[0] * b->par[0]);
  return B(c, RK_OP_MULT, a, b, NULL);
}

static rk_node *neg(rk_ctx *c, rk_node *a) {
  if (a->op == RK_OP_MINUS) return a->kid[0];
  if (a->op == RK_OP_ZERO) return a;
  if (a->op == RK_OP_INTCST) return cst(c, -a->par[0]);
  return B(c, RK_OP_MINUS, a, NULL, NULL);
}

static rk_node *add(rk_ctx *c, rk_node *a, rk_node *b) {
  if (!a) return b;
  if (!b) return a;
  if (is_zero(a) && b->dim >= a->dim) return b;
  if (is_zero(b) && a->dim >= b->dim) return a;
  if (b->op == RK_OP_MINUS) return B(c, RK_OP_SUBTRACT, a, b->kid[0], NULL);
  return B(c, RK_OP_ADD, a, b, NULL);
}

static rk_node *sub(rk_ctx *c, rk_node *a, rk_node *b) {
  if (is_zero(b) && a->dim >= b->dim) return a;
  if (is_zero(a) && b->dim >= a->dim) return neg(c, b);
  return B(c, RK_OP_SUBTRACT, a, b, NULL);
}

static rk_node *dvd(rk_ctx *c, rk_node *a, rk_node *b) { return B(c, RK_OP_DIVIDE, a, b, NULL); }
static rk_node *U(rk_ctx *c, int op, rk_node *a) { return B(c, op, a, NULL, NULL); }

/* the cotangent x (computed at the node's dimension) for an operand of
 * dimension dim: broadcast operands (dim 1) receive the sum */
static rk_node *unbroadcast(rk_ctx *c, rk_node *x, int dim) {
  if (x->dim == dim) return x;
  if (x->dim == 1) return BP(c, RK_OP_SUMT, x, dim, 0); /* a scalar applied to every component */
  if (dim == 1) return is_zero(x) ? zero(c, 1) : U(c, RK_OP_SUM, x);
  rk_fail(c, RK_EINTERNAL, POS, "internal error: cannot reduce a cotangent of dimension %d to %d (%s:%d)",
          x->dim, dim, __FILE__, __LINE__);
  return NULL;
}

/* same for complex operands: a broadcast complex scalar (dim 2) */
static rk_node *cunbroadcast(rk_ctx *c, rk_node *x, int dim) {
  if (x->dim == dim) return x;
  if (dim == 2) return U(c, RK_OP_COMPLEXSUM, x);
  return unbroadcast(c, x, dim);
}

#define KID(i) (n->kid[i])
#define RET(x) return unbroadcast(c, (x), KID(i)->dim)

/* ------------------------------------------------------------ reverse pass */

static int depends(rk_node *n, rk_node *t, signed char *memo) {
  if (n == t) return 1;
  if (memo[n->id]) return memo[n->id] > 0;
  int d = 0;
  for (int i = 0; i < n->nkids && !d; i++) d = depends(n->kid[i], t, memo);
  memo[n->id] = d ? 1 : -1;
  return d;
}

/* cotangent reaching `target` when `root` receives g; the nodes in
 * leaves[] are not expanded (their operands are out of scope) */
static rk_node *backprop(rk_ctx *c, rk_node *root, rk_node *g, rk_node *target, rk_node **leaves,
                         int nleaves) {
  int N = c->nnodes;
  signed char *memo = ctx_alloc(c, (size_t)N + 1);
  rk_node **byid = ctx_alloc(c, sizeof(rk_node *) * ((size_t)N + 1));
  rk_node **adj = ctx_alloc(c, sizeof(rk_node *) * ((size_t)N + 1));
  /* the nodes below root (not below the leaves), by id */
  rk_node **stack = ctx_alloc(c, sizeof(rk_node *) * ((size_t)N + 1));
  int sp = 0;
  unsigned char *put = ctx_alloc(c, (size_t)N + 1);
  stack[sp++] = root;
  while (sp > 0) {
    rk_node *n = stack[--sp];
    if (put[n->id]) continue;
    put[n->id] = 1;
    byid[n->id] = n;
    int leaf = 0;
    for (int l = 0; l < nleaves; l++) leaf |= leaves[l] == n;
    if (leaf) continue;
    for (int i = 0; i < n->nkids; i++)
      if (!put[n->kid[i]->id] && sp < N + 1) stack[sp++] = n->kid[i];
  }
  if (!depends(root, target, memo)) return NULL;
  adj[root->id] = g;
  for (int id = root->id; id >= 0; id--) {
    rk_node *n = byid[id];
    if (!n || !adj[id] || n == target) continue;
    int leaf = 0;
    for (int l = 0; l < nleaves; l++) leaf |= leaves[l] == n;
    if (leaf) continue;
    const rk_op *o = &rk_ops[n->op];
    for (int i = 0; i < n->nkids; i++) {
      rk_node *k = n->kid[i];
      if (!depends(k, target, memo)) continue;
      if (o->flags & OPF_NODIFF)
        rk_fail(c, RK_EDIM, n->pos, "%s is not differentiable", o->name);
      rk_node *ct = o->diff(c, n, i, adj[id]);
      if (ct) adj[k->id] = add(c, adj[k->id], ct);
    }
  }
  return adj[target->id];
}

rk_node *diff_grad(rk_ctx *c, rk_node *f, rk_node *v, rk_node *e, long pos) {
  long saved = POS;
  POS = pos;
  if (e->dim != f->dim && e->dim != 1)
    rk_fail(c, RK_EDIM, pos, "Grad: the cotangent has dimension %d but the formula has dimension %d",
            e->dim, f->dim);
  if (e->dim != f->dim) e = BP(c, RK_OP_SUMT, e, f->dim, 0);
  rk_node *g = backprop(c, f, e, v, NULL, 0);
  if (!g) g = zero(c, v->dim);
  POS = saved;
  return g;
}

/* derivative of n with respect to its operand i through an expansion E
 * written with n's operands (composite ops).  When an operand appears in
 * several slots, the first slot receives the whole cotangent. */
static rk_node *through(rk_ctx *c, rk_node *n, int i, rk_node *g, rk_node *E) {
  for (int j = 0; j < i; j++)
    if (n->kid[j] == n->kid[i]) return NULL;
  rk_node *r = backprop(c, E, g, n->kid[i], n->kid, n->nkids);
  return r;
}

/* ------------------------------------------------------------ rules */

rk_node *d_zero(rk_ctx *c, rk_node *n, int i, rk_node *g) { (void)c; (void)n; (void)i; (void)g; return NULL; }
rk_node *d_none(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  (void)i; (void)g;
  rk_fail(c, RK_EDIM, n->pos, "%s is not differentiable", rk_ops[n->op].name);
  return NULL;
}

rk_node *d_add(rk_ctx *c, rk_node *n, int i, rk_node *g) { RET(g); }
rk_node *d_subtract(rk_ctx *c, rk_node *n, int i, rk_node *g) { RET(i == 0 ? g : neg(c, g)); }
rk_node *d_minus(rk_ctx *c, rk_node *n, int i, rk_node *g) { RET(neg(c, g)); }
rk_node *d_mult(rk_ctx *c, rk_node *n, int i, rk_node *g) { RET(mul(c, g, KID(1 - i))); }
rk_node *d_divide(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  if (i == 0) RET(dvd(c, g, KID(1)));
  RET(neg(c, mul(c, g, dvd(c, n, KID(1)))));  /* -g a / b^2 = -g (a/b) / b */
}
rk_node *d_inv(rk_ctx *c, rk_node *n, int i, rk_node *g) { RET(neg(c, mul(c, g, U(c, RK_OP_SQUARE, n)))); }
rk_node *d_square(rk_ctx *c, rk_node *n, int i, rk_node *g) { RET(mul(c, cst(c, 2), mul(c, KID(0), g))); }
rk_node *d_pow(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  int p = n->par[0];
  if (p == 0) return zero(c, KID(0)->dim);
  rk_node *d = p == 1 ? cst(c, 1) : p == 2 ? KID(0) : BP(c, RK_OP_POW, KID(0), p - 1, 0);
  RET(mul(c, cst(c, p), mul(c, d, g)));
}
rk_node *d_powf(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  /* a^b: d/da = b a^(b-1) = b (a^b) / a, d/db = log(a) a^b */
  if (i == 0) RET(mul(c, g, dvd(c, mul(c, KID(1), n), KID(0))));
  RET(mul(c, g, mul(c, U(c, RK_OP_LOG, KID(0)), n)));
}
rk_node *d_sqrt(rk_ctx *c, rk_node *n, int i, rk_node *g) { RET(dvd(c, g, mul(c, cst(c, 2), n))); }
rk_node *d_rsqrt(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  int par[RK_MAX_PARAMS] = {-1, 2};
  rk_node *half = tree_node(c, RK_OP_RATCST, 0, NULL, par, POS);
  RET(mul(c, half, mul(c, BP(c, RK_OP_POW, n, 3, 0), g)));
}
rk_node *d_exp(rk_ctx *c, rk_node *n, int i, rk_node *g) { RET(mul(c, n, g)); }
rk_node *d_log(rk_ctx *c, rk_node *n, int i, rk_node *g) { RET(dvd(c, g, KID(0))); }
rk_node *d_xlogx(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  RET(mul(c, g, add(c, U(c, RK_OP_LOG, KID(0)), cst(c, 1))));
}
rk_node *d_sin(rk_ctx *c, rk_node *n, int i, rk_node *g) { RET(mul(c, g, U(c, RK_OP_COS, KID(0)))); }
rk_node *d_cos(rk_ctx *c, rk_node *n, int i, rk_node *g) { RET(neg(c, mul(c, g, U(c, RK_OP_SIN, KID(0))))); }
rk_node *d_asin(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  RET(mul(c, g, U(c, RK_OP_RSQRT, sub(c, cst(c, 1), U(c, RK_OP_SQUARE, KID(0))))));
}
rk_node *d_acos(rk_ctx *c, rk_node *n, int i, rk_node *g) { return neg(c, d_asin(c, n, i, g)); }
rk_node *d_atan(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  RET(dvd(c, g, add(c, cst(c, 1), U(c, RK_OP_SQUARE, KID(0)))));
}
rk_node *d_atan2(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  /* atan2(y, x): dy = x / r2, dx = -y / r2 */
  rk_node *r2 = add(c, U(c, RK_OP_SQUARE, KID(0)), U(c, RK_OP_SQUARE, KID(1)));
  if (i == 0) RET(mul(c, g, dvd(c, KID(1), r2)));
  RET(neg(c, mul(c, g, dvd(c, KID(0), r2))));
}
rk_node *d_sinxdivx(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  /* (cos x - sin x / x) / x */
  RET(mul(c, g, dvd(c, sub(c, U(c, RK_OP_COS, KID(0)), n), KID(0))));
}
rk_node *d_abs(rk_ctx *c, rk_node *n, int i, rk_node *g) { RET(mul(c, g, U(c, RK_OP_SIGN, KID(0)))); }
rk_node *d_relu(rk_ctx *c, rk_node *n, int i, rk_node *g) { RET(mul(c, g, U(c, RK_OP_STEP, KID(0)))); }
rk_node *d_clamp(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  /* x inside [a, b] passes to x; below a to a; above b to b */
  rk_node *x = KID(0), *a = KID(1), *b = KID(2);
  rk_node *w;
  if (i == 0) w = mul(c, B(c, RK_OP_LESSOREQUAL, a, x, NULL), B(c, RK_OP_LESSOREQUAL, x, b, NULL));
  else if (i == 1) w = B(c, RK_OP_LESSTHAN, x, a, NULL);
  else w = B(c, RK_OP_LESSTHAN, b, x, NULL);
  RET(mul(c, g, w));
}
rk_node *d_clampint(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  RET(mul(c, g, BP(c, RK_OP_DIFFCLAMPINT, KID(0), n->par[0], n->par[1])));
}
rk_node *d_ifelse(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  if (i == 0) return NULL;
  rk_node *s = U(c, RK_OP_STEP, KID(0));
  RET(mul(c, g, i == 1 ? s : sub(c, cst(c, 1), s)));
}
rk_node *d_mod(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  /* x - m floor((x - o) / m): dx = 1, dm = -floor(...), do = 0 */
  if (i == 0) RET(g);
  if (i == 2) return NULL;
  RET(neg(c, mul(c, g, U(c, RK_OP_FLOOR, dvd(c, sub(c, KID(0), KID(2)), KID(1))))));
}
rk_node *d_sum(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  (void)i;
  return KID(0)->dim == 1 ? g : BP(c, RK_OP_SUMT, g, KID(0)->dim, 0);
}
rk_node *d_sumt(rk_ctx *c, rk_node *n, int i, rk_node *g) { (void)i; (void)n; return U(c, RK_OP_SUM, g); }
static rk_node *d_extremum(rk_ctx *c, rk_node *n, rk_node *g, int op) {
  if (KID(0)->dim == 1) return g;
  rk_node *a = U(c, op, KID(0));
  return mul(c, g, BP(c, RK_OP_ONEHOT, a, KID(0)->dim, 0));
}
rk_node *d_max(rk_ctx *c, rk_node *n, int i, rk_node *g) { (void)i; return d_extremum(c, n, g, RK_OP_ARGMAX); }
rk_node *d_min(rk_ctx *c, rk_node *n, int i, rk_node *g) { (void)i; return d_extremum(c, n, g, RK_OP_ARGMIN); }
rk_node *d_elem(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  (void)i;
  return BP(c, RK_OP_ELEMT, g, KID(0)->dim, n->par[0]);
}
rk_node *d_elemt(rk_ctx *c, rk_node *n, int i, rk_node *g) { (void)i; return BP(c, RK_OP_ELEM, g, n->par[1], 0); }
rk_node *d_extract(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  (void)i;
  return BP(c, RK_OP_EXTRACTT, g, n->par[0], KID(0)->dim);
}
rk_node *d_extractt(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  (void)i;
  return BP(c, RK_OP_EXTRACT, g, n->par[0], KID(0)->dim);
}
rk_node *d_concat(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  return BP(c, RK_OP_EXTRACT, g, i == 0 ? 0 : KID(0)->dim, KID(i)->dim);
}
rk_node *d_sqnorm2(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  (void)i;
  return mul(c, mul(c, cst(c, 2), g), KID(0));
}
rk_node *d_norm2(rk_ctx *c, rk_node *n, int i, rk_node *g) { (void)i; return mul(c, dvd(c, g, n), KID(0)); }
rk_node *d_sqdist(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  rk_node *d = mul(c, mul(c, cst(c, 2), g), sub(c, KID(0), KID(1)));
  RET(i == 0 ? d : neg(c, d));
}
rk_node *d_scalprod(rk_ctx *c, rk_node *n, int i, rk_node *g) { RET(mul(c, g, KID(1 - i))); }
rk_node *d_normalize(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  rk_node *x = KID(0);
  return through(c, n, i, g, mul(c, U(c, RK_OP_RSQRT, U(c, RK_OP_SQNORM2, x)), x));
}
/* the weighted norms expand into primitive ops */
static rk_node *wsq_expand(rk_ctx *c, rk_node *n) {
  rk_node *s = KID(0), *x = KID(1);
  if (n->nkids == 3) x = sub(c, KID(1), KID(2));
  int D = x->dim, ds = s->dim;
  int mode = n->op == RK_OP_SQNORMISO ? 1 : n->op == RK_OP_SQNORMDIAG ? 2 : n->op == RK_OP_SYMSQNORM ? 3
             : ds == 1 ? 1 : ds == D ? 2 : 3;
  if (mode == 1) return mul(c, s, U(c, RK_OP_SQNORM2, x));
  if (mode == 2) return U(c, RK_OP_SUM, mul(c, s, U(c, RK_OP_SQUARE, x)));
  return B(c, RK_OP_SCALPROD, x, B(c, RK_OP_MATVECMULT, s, x, NULL), NULL);
}
rk_node *d_weightedsqnorm(rk_ctx *c, rk_node *n, int i, rk_node *g) { return through(c, n, i, g, wsq_expand(c, n)); }
rk_node *d_weightedsqdist(rk_ctx *c, rk_node *n, int i, rk_node *g) { return through(c, n, i, g, wsq_expand(c, n)); }
rk_node *d_sqnormiso(rk_ctx *c, rk_node *n, int i, rk_node *g) { return through(c, n, i, g, wsq_expand(c, n)); }
rk_node *d_sqnormdiag(rk_ctx *c, rk_node *n, int i, rk_node *g) { return through(c, n, i, g, wsq_expand(c, n)); }
rk_node *d_symsqnorm(rk_ctx *c, rk_node *n, int i, rk_node *g) { return through(c, n, i, g, wsq_expand(c, n)); }
rk_node *d_matvecmult(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  if (i == 0) return B(c, RK_OP_TENSORPROD, g, KID(1), NULL);
  return B(c, RK_OP_VECMATMULT, g, KID(0), NULL);
}
rk_node *d_vecmatmult(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  if (i == 0) return B(c, RK_OP_MATVECMULT, KID(1), g, NULL);
  return B(c, RK_OP_TENSORPROD, KID(0), g, NULL);
}
/* SoftDTW_SqDist: its gradient in (x, y), GradSoftDTW_SqDist, split; none
 * in gamma (KeOps 2.3 has none either) */
rk_node *d_softdtw(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  if (i == 2)
    rk_fail(c, RK_EDIM, n->pos, "SoftDTW_SqDist is not differentiable with respect to gamma");
  rk_node *G = mul(c, g, B(c, RK_OP_GRADSOFTDTW, KID(0), KID(1), KID(2)));
  return i == 0 ? BP(c, RK_OP_EXTRACT, G, 0, KID(0)->dim)
                : BP(c, RK_OP_EXTRACT, G, KID(0)->dim, KID(1)->dim);
}
rk_node *d_tensorprod(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  if (i == 0) return B(c, RK_OP_MATVECMULT, g, KID(1), NULL);
  return B(c, RK_OP_VECMATMULT, KID(0), g, NULL);
}

/* TensorDot and Kron are bilinear: the cotangent of a factor is the
 * adjoint product of the node's cotangent with the other factor, over the
 * same index lists (second order through them is not supported) */
rk_node *d_tensordot(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  int kron = n->op == RK_OP_KRON;
  int op = kron ? (i == 0 ? RK_OP_KRONADJF : RK_OP_KRONADJG)
                : (i == 0 ? RK_OP_TENSORDOTADJF : RK_OP_TENSORDOTADJG);
  rk_node *k[2] = {g, n->kid[1 - i]};
  return tree_node(c, op, 2, k, n->par, POS);
}

/* complex: the gradient with respect to the interleaved real
 * representation; for holomorphic f it is g * conj(f') */
static rk_node *cmul(rk_ctx *c, rk_node *a, rk_node *b) { return B(c, RK_OP_COMPLEXMULT, a, b, NULL); }
static rk_node *conj_(rk_ctx *c, rk_node *a) { return U(c, RK_OP_CONJ, a); }
#define CRET(x) return cunbroadcast(c, (x), KID(i)->dim)

rk_node *d_complexreal(rk_ctx *c, rk_node *n, int i, rk_node *g) { (void)i; (void)n; return U(c, RK_OP_REAL2COMPLEX, g); }
rk_node *d_compleximag(rk_ctx *c, rk_node *n, int i, rk_node *g) { (void)i; (void)n; return U(c, RK_OP_IMAG2COMPLEX, g); }
rk_node *d_real2complex(rk_ctx *c, rk_node *n, int i, rk_node *g) { (void)i; (void)n; return U(c, RK_OP_COMPLEXREAL, g); }
rk_node *d_imag2complex(rk_ctx *c, rk_node *n, int i, rk_node *g) { (void)i; (void)n; return U(c, RK_OP_COMPLEXIMAG, g); }
rk_node *d_conj(rk_ctx *c, rk_node *n, int i, rk_node *g) { (void)i; (void)n; return conj_(c, g); }
rk_node *d_complexabs(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  (void)i;
  return cmul(c, U(c, RK_OP_REAL2COMPLEX, dvd(c, g, n)), KID(0));
}
rk_node *d_complexsquareabs(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  (void)i;
  return cmul(c, U(c, RK_OP_REAL2COMPLEX, mul(c, cst(c, 2), g)), KID(0));
}
rk_node *d_complexangle(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  (void)i;
  rk_node *w = dvd(c, g, U(c, RK_OP_COMPLEXSQUAREABS, KID(0)));
  return cmul(c, U(c, RK_OP_IMAG2COMPLEX, w), KID(0));
}
rk_node *d_complexsum(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  (void)i;
  return BP(c, RK_OP_COMPLEXSUMT, g, KID(0)->dim, 0);
}
rk_node *d_complexsumt(rk_ctx *c, rk_node *n, int i, rk_node *g) { (void)i; (void)n; return U(c, RK_OP_COMPLEXSUM, g); }
rk_node *d_complexadd(rk_ctx *c, rk_node *n, int i, rk_node *g) { CRET(g); }
rk_node *d_complexsubtract(rk_ctx *c, rk_node *n, int i, rk_node *g) { CRET(i == 0 ? g : neg(c, g)); }
rk_node *d_complexmult(rk_ctx *c, rk_node *n, int i, rk_node *g) { CRET(cmul(c, g, conj_(c, KID(1 - i)))); }
rk_node *d_complexscal(rk_ctx *c, rk_node *n, int i, rk_node *g) { CRET(cmul(c, g, conj_(c, KID(1 - i)))); }
rk_node *d_complexrealscal(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  int r = KID(0)->dim == 1 ? 0 : 1;
  if (i == r) return B(c, RK_OP_SCALPROD, g, KID(1 - r), NULL);
  return B(c, RK_OP_COMPLEXREALSCAL, KID(r), g, NULL);
}
rk_node *d_complexdivide(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  /* a / b: da = g / conj(b), db = -g conj(n) / conj(b) */
  rk_node *cb = conj_(c, KID(1));
  if (i == 0) CRET(B(c, RK_OP_COMPLEXDIVIDE, g, cb, NULL));
  CRET(neg(c, B(c, RK_OP_COMPLEXDIVIDE, cmul(c, g, conj_(c, n)), cb, NULL)));
}
rk_node *d_complexexp(rk_ctx *c, rk_node *n, int i, rk_node *g) { (void)i; return cmul(c, g, conj_(c, n)); }
rk_node *d_complexexp1j(rk_ctx *c, rk_node *n, int i, rk_node *g) {
  (void)i;
  rk_node *x = KID(0);
  return sub(c, mul(c, U(c, RK_OP_COMPLEXIMAG, g), U(c, RK_OP_COS, x)),
             mul(c, U(c, RK_OP_COMPLEXREAL, g), U(c, RK_OP_SIN, x)));
}

/* ------------------------------------------------------------ forward mode & co */

/* Diff(F, v, u) = J u, through two reverse passes: G(w) = J^T w is linear
 * in the dummy variable w, and its gradient in w along u is J u. */
rk_node *diff_forward(rk_ctx *c, rk_node *f, rk_node *v, rk_node *u, long pos) {
  if (u->dim != v->dim)
    rk_fail(c, RK_EDIM, pos, "Diff: the direction has dimension %d but the variable has dimension %d",
            u->dim, v->dim);
  rk_node *w = tree_var(c, RK_MAX_ARGS + 1, f->dim, RK_CAT_PM, pos); /* never an input */
  rk_node *jt = diff_grad(c, f, v, w, pos);
  rk_node *r = diff_grad(c, jt, w, u, pos);
  return r;
}

/* Divergence(F, v) = sum_k dF_k / dv_k (dim F = dim v) */
rk_node *diff_divergence(rk_ctx *c, rk_node *f, rk_node *v, long pos) {
  if (f->dim != v->dim)
    rk_fail(c, RK_EDIM, pos, "Divergence: the formula has dimension %d but the variable %d", f->dim, v->dim);
  POS = pos;
  rk_node *s = NULL;
  for (int k = 0; k < f->dim; k++) {
    rk_node *fk = f->dim == 1 ? f : BP(c, RK_OP_ELEM, f, k, 0);
    rk_node *gk = diff_grad(c, fk, v, cst(c, 1), pos);
    POS = pos;
    rk_node *t = v->dim == 1 ? gk : BP(c, RK_OP_ELEM, gk, k, 0);
    s = add(c, s, t);
  }
  return s;
}

/* Laplacian(F, v) = Divergence(Grad(F, v, 1), v), F scalar */
rk_node *diff_laplacian(rk_ctx *c, rk_node *f, rk_node *v, long pos) {
  if (f->dim != 1) rk_fail(c, RK_EDIM, pos, "Laplacian: the formula must be scalar, not of dimension %d", f->dim);
  POS = pos;
  rk_node *g = diff_grad(c, f, v, cst(c, 1), pos);
  return diff_divergence(c, g, v, pos);
}

/* ------------------------------------------------------------ reductions
 * The gradient of a reduction is a reduction (decision 2: e has the
 * category and dimension of the output, the result those of v):
 *   v indexed like the output     Sum over the same index of Grad(F, v, e)
 *   v indexed by the reduced one  the same, reduced over the other index
 *   v a parameter                 as the first case, then summed over rows
 * LogSumExp, SumSoftMaxWeight, Min and Max need their forward result Z
 * (a "saved forward" input computed by a first kernel, r->pre): their
 * gradient is that of a pseudo-objective H in which Z is a constant. */
void diff_reduction(rk_ctx *c, rk_red *r, rk_node *v, rk_node *e, long pos) {
  POS = pos;
  int outcat = r->axis == 0 ? RK_CAT_I : RK_CAT_J;
  int depok = DEP_PM | (outcat == RK_CAT_I ? DEP_I : DEP_J);
  if (e->dim != r->out)
    rk_fail(c, RK_EDIM, pos, "Grad: the cotangent has dimension %d but the reduction's output has dimension %d",
            e->dim, r->out);
  if (e->deps & ~depok)
    rk_fail(c, RK_EDIM, pos, "Grad: the cotangent must be indexed like the reduction's output (by %s)",
            outcat == RK_CAT_I ? "i" : "j");
  if (r->pre_pos >= 0)
    rk_fail(c, RK_EDIM, pos, "Grad: second-order gradients of %s_Reduction are not supported",
            rk_redops[r->red].name);
  /* a parameter's gradient (postsum) is a sum over both indices: its
   * cotangent is a parameter too, and the rules below apply unchanged */
  rk_node *F = r->f, *G = r->g, *Z = NULL, *H = NULL;
  int red = r->red;
  switch (red) {
  case RK_RED_SUM:
    break;
  case RK_RED_MIN: case RK_RED_MAX: case RK_RED_LOGSUMEXP: case RK_RED_LOGSUMEXPWEIGHT:
  case RK_RED_SUMSOFTMAXWEIGHT: {
    rk_red pre = *r;
    int zdim = r->out;
    if (red == RK_RED_SUMSOFTMAXWEIGHT) {
      pre.red = RK_RED_MAX_SUMSHIFTEXPWEIGHT;
      pre.g = B(c, RK_OP_CONCAT, cst(c, 1), G, NULL);
      pre.DG = pre.g->dim;
      rk_redops[pre.red].shape(c, &pre);
      zdim = pre.out;
    }
    int zp = c->nargs;
    if (zp >= RK_MAX_ARGS) rk_fail(c, RK_EDIM, pos, "too many arguments");
    c->declared[zp] = 1;
    c->args[zp].pos = zp;
    c->args[zp].dim = zdim;
    c->args[zp].cat = outcat;
    c->args[zp].name[0] = '\0';
    c->nargs++;
    Z = tree_var(c, zp, zdim, outcat, pos);
    c->pre = pre;
    r->pre_pos = zp;
    if (red == RK_RED_MIN || red == RK_RED_MAX) {
      /* the cotangent goes to the j reaching the extremum */
      F = r->f;
      e = mul(c, e, B(c, RK_OP_EQUAL, F, Z, NULL));
      break;
    }
    rk_node *W = G ? G : cst(c, 1), *L, *out = NULL;
    if (red == RK_RED_SUMSOFTMAXWEIGHT) {
      rk_node *m = BP(c, RK_OP_ELEM, Z, 0, 0), *s = BP(c, RK_OP_ELEM, Z, 1, 0);
      L = add(c, m, U(c, RK_OP_LOG, s));
      out = dvd(c, BP(c, RK_OP_EXTRACT, Z, 2, G->dim), s);
      H = mul(c, U(c, RK_OP_EXP, sub(c, F, L)),
              sub(c, B(c, RK_OP_SCALPROD, e, G, NULL), B(c, RK_OP_SCALPROD, e, out, NULL)));
    } else {
      L = Z;
      rk_node *t = mul(c, mul(c, e, U(c, RK_OP_EXP, sub(c, F, L))), W);
      H = t->dim == 1 ? t : U(c, RK_OP_SUM, t);
    }
    break;
  }
  case RK_RED_ARGMIN: case RK_RED_ARGMAX:
    H = zero(c, 1);
    break;
  default:
    rk_fail(c, RK_EDIM, pos, "%s_Reduction is not differentiable", rk_redops[red].name);
  }
  rk_node *Fp = H ? diff_grad(c, H, v, cst(c, 1), pos) : diff_grad(c, F, v, e, pos);
  int vcat = v->par[2];
  r->red = RK_RED_SUM;
  r->f = Fp;
  r->g = NULL;
  r->K = 0;
  r->D = Fp->dim;
  r->DG = 0;
  r->postsum = vcat == RK_CAT_PM;
  if (vcat != RK_CAT_PM && vcat != outcat) r->axis = 1 - r->axis;
  r->pos = pos;
  rk_redops[RK_RED_SUM].shape(c, r);
}
