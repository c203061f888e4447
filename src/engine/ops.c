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

static int dim_leaf(rk_ctx *c, rk_node *n) { (void)c; return n->par[1]; }
static int dim_one(rk_ctx *c, rk_node *n) { (void)c; (void)n; return 1; }

static int dim_param0(rk_ctx *c, rk_node *n) {
  if (n->par[0] < 1 || n->par[0] > RK_MAX_DIM)
    rk_fail(c, RK_EDIM, n->pos, "%s: dimension %d is out of range [1, %d]", rk_ops[n->op].name,
            n->par[0], RK_MAX_DIM);
  return n->par[0];
}

/* element-wise: operands of equal dimensions or of dimension 1 */
static int dim_ew(rk_ctx *c, rk_node *n) {
  int d = 1;
  for (int i = 0; i < n->nkids; i++) {
    int di = n->kid[i]->dim;
    if (di == 1 || di == d) continue;
    if (d != 1) {
      if (n->nkids == 2)
        rk_fail(c, RK_EDIM, n->pos,
                "%s: operands have dimensions %d and %d (expected equal dimensions, or one of them 1)",
                rk_ops[n->op].name, n->kid[0]->dim, n->kid[1]->dim);
      rk_fail(c, RK_EDIM, n->pos,
              "%s: operands have dimensions %d, %d and %d (expected equal dimensions, or 1)",
              rk_ops[n->op].name, n->kid[0]->dim, n->kid[1]->dim, n->kid[2]->dim);
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

/* ------------------------------------------------------------ emitters */

void emit_none(rk_emit *e, const rk_node *n) { (void)e; (void)n; }

/* element k of an operand: broadcast when its dimension is 1 */
static const char *elt(const rk_node *k, char *buf, size_t n) {
  char nm[32];
  emit_name(k, nm, sizeof nm);
  if (k->dim == 1) snprintf(buf, n, "%s[0]", nm);
  else snprintf(buf, n, "%s[k]", nm);
  return buf;
}

/* Reductions over the components of the operand(s), into a scalar:
 *   acc = 0; for k: acc += term(k); t = post(acc) */
static void emit_inner(rk_emit *e, const rk_node *n, const char *term, const char *post) {
  char me[32], a[48], b[48];
  emit_name(n, me, sizeof me);
  int D = 1;
  for (int i = 0; i < n->nkids; i++) if (n->kid[i]->dim > D) D = n->kid[i]->dim;
  elt(n->kid[0], a, sizeof a);
  if (n->nkids > 1) elt(n->kid[1], b, sizeof b);
  else b[0] = '\0';
  emit_line(e, "rk_t %s[1];", me);
  emit_line(e, "{");
  e->indent++;
  emit_line(e, "rk_t s = 0;");
  emit_line(e, "for (int k = 0; k < %d; k++) {", D);
  e->indent++;
  /* term uses A and B for the operands' elements */
  char line[256];
  size_t o = 0;
  for (const char *s = term; *s && o < sizeof line - 64; s++) {
    if (*s == 'A') o += (size_t)snprintf(line + o, sizeof line - o, "%s", a);
    else if (*s == 'B') o += (size_t)snprintf(line + o, sizeof line - o, "%s", b);
    else line[o++] = *s;
  }
  line[o] = '\0';
  emit_line(e, "%s", line);
  e->indent--;
  emit_line(e, "}");
  emit_line(e, "%s[0] = %s;", me, post);
  e->indent--;
  emit_line(e, "}");
}

static void emit_sum(rk_emit *e, const rk_node *n) { emit_inner(e, n, "s += A;", "s"); }
static void emit_sqnorm2(rk_emit *e, const rk_node *n) { emit_inner(e, n, "s += A * A;", "s"); }
static void emit_norm2(rk_emit *e, const rk_node *n) { emit_inner(e, n, "s += A * A;", "RK_SQRT(s)"); }
static void emit_sqdist(rk_emit *e, const rk_node *n) {
  emit_inner(e, n, "{ rk_t d = A - B; s += d * d; }", "s");
}
static void emit_scalprod(rk_emit *e, const rk_node *n) { emit_inner(e, n, "s += A * B;", "s"); }

/* ------------------------------------------------------------ the table */

#define X(id, name, arity, npar, dimrule, emitter, tmpl, deriv, flags) \
  {name, arity, npar, dimrule, emitter, tmpl, deriv, flags},
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
