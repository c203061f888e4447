/*
 * emit.c -- tree to straight-line code, shared by every backend.
 *
 * Each distinct node becomes one temporary array `t<id>[dim]` (variables
 * are the arrays `v<pos>` that the loop scheme loads), written once, in a
 * post-order walk, so operands always come first.  emit_nodes() takes a
 * dependency mask: the loop scheme calls it once per loop level, so a
 * node that depends only on parameters is computed once, one that depends
 * on the output index once per output row, and the rest per pair.
 *
 * The generated code names its scalar type `rk_t` and calls math through
 * the RK_* macros and rk_* helpers of the prologue, so the same text is
 * valid C and CUDA in either precision; only the loop scheme differs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

void buf_init(rk_buf *b) { b->s = NULL; b->len = b->cap = 0; b->oom = 0; }
void buf_free(rk_buf *b) { free(b->s); buf_init(b); }

static void buf_grow(rk_buf *b, size_t extra) {
  if (b->oom) return;
  if (b->len + extra + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + extra + 1) cap *= 2;
  char *s = realloc(b->s, cap);
  if (!s) { b->oom = 1; return; }
  b->s = s;
  b->cap = cap;
}

void buf_puts(rk_buf *b, const char *s) {
  size_t n = strlen(s);
  buf_grow(b, n);
  if (b->oom) return;
  memcpy(b->s + b->len, s, n + 1);
  b->len += n;
}

static void buf_vprintf(rk_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) { b->oom = 1; return; }
  buf_grow(b, (size_t)n);
  if (b->oom) return;
  vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void buf_printf(rk_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(b, fmt, ap);
  va_end(ap);
}

void emit_line(rk_emit *e, const char *fmt, ...) {
  for (int i = 0; i < e->indent; i++) buf_puts(e->b, "  ");
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(e->b, fmt, ap);
  va_end(ap);
  buf_puts(e->b, "\n");
}

const char *emit_name(const rk_emit *e, const rk_node *n, char *buf, size_t nbuf) {
  /* a node that depends on the output index exists once per unrolled row */
  const char *sfx = (e && e->suffix && (n->deps & e->dep_out)) ? e->suffix : "";
  if (n->op == RK_OP_VAR) snprintf(buf, nbuf, "v%d%s", n->par[0], sfx);
  else snprintf(buf, nbuf, "t%d%s", n->id, sfx);
  return buf;
}

/* element of operand k: index [k] inside the component loop, [0] when the
 * operand has dimension 1 (broadcast) */
static void emit_elt(const rk_emit *e, rk_buf *b, const rk_node *k, int looped) {
  char nm[32];
  emit_name(e, k, nm, sizeof nm);
  buf_printf(b, "%s[%s]", nm, (k->dim == 1 || !looped) ? "0" : "k");
}

/* The prologue's macro of a math function: RK_SIN for "sin". */
void emit_math_macro(rk_buf *b, const char *fn) {
  buf_puts(b, "RK_");
  for (const char *s = fn; *s; s++) {
    char ch[2] = {(char)(*s >= 'a' && *s <= 'z' ? *s - 'a' + 'A' : *s), 0};
    buf_puts(b, ch);
  }
}

/* Template emitter of element-wise ops: expands $0 $1 $2 (operands),
 * $p0 $p1 $p2 (integer parameters) and $f (the row's math function) in
 * the op's tmpl. */
void emit_ew(rk_emit *e, const rk_node *n) {
  char me[32];
  emit_name(e, n, me, sizeof me);
  const char *t = rk_ops[n->op].tmpl;
  int looped = n->dim > 1;
  emit_line(e, "rk_t %s[%d];", me, n->dim);
  for (int i = 0; i < e->indent; i++) buf_puts(e->b, "  ");
  if (looped) buf_printf(e->b, "for (int k = 0; k < %d; k++) %s[k] = ", n->dim, me);
  else buf_printf(e->b, "%s[0] = ", me);
  for (const char *s = t; *s; s++) {
    if (s[0] == '$' && s[1] >= '0' && s[1] <= '2') {
      emit_elt(e, e->b, n->kid[s[1] - '0'], looped);
      s++;
    } else if (s[0] == '$' && s[1] == 'p' && s[2] >= '0' && s[2] <= '2') {
      buf_printf(e->b, "%d", n->par[s[2] - '0']);
      s += 2;
    } else if (s[0] == '$' && s[1] == 'f') {
      emit_math_macro(e->b, rk_ops[n->op].fn);
      s++;
    } else {
      char ch[2] = {*s, 0};
      buf_puts(e->b, ch);
    }
  }
  buf_puts(e->b, ";\n");
}

/* Post-order walk: emits every not-yet-emitted node below n whose
 * dependencies are within mask_ok.  done[] (nodes emitted so far) and
 * seen[] (nodes visited in this walk) have one byte per node id. */
static void walk(rk_emit *e, rk_node *n, int mask_ok, unsigned char *done,
                 unsigned char *seen) {
  if (done[n->id] || seen[n->id]) return;
  seen[n->id] = 1;
  for (int i = 0; i < n->nkids; i++) walk(e, n->kid[i], mask_ok, done, seen);
  if ((n->deps & ~mask_ok) != 0) return;
  rk_ops[n->op].emit(e, n);
  done[n->id] = 1;
}

void emit_nodes(rk_emit *e, rk_node **roots, int nroots, int mask_ok,
                unsigned char *done) {
  unsigned char *seen = ctx_alloc(e->c, (size_t)e->c->nnodes + 1);
  for (int r = 0; r < nroots; r++)
    if (roots[r]) walk(e, roots[r], mask_ok, done, seen);
}

/* The positions of the variables the formulas use (one byte per position,
 * RK_MAX_ARGS of them); a variable that is not an input (an internal bug,
 * such as a dummy variable left by forward mode) fails here, before any
 * code refers to it. */
static void used_walk(rk_ctx *c, rk_node *n, unsigned char *seen, unsigned char *used) {
  if (seen[n->id]) return;
  seen[n->id] = 1;
  if (n->op == RK_OP_VAR) {
    if (n->par[0] < 0 || n->par[0] >= c->nargs)
      rk_fail(c, RK_EINTERNAL, n->pos, "internal error: variable at position %d is not an input (%s:%d)",
              n->par[0], __FILE__, __LINE__);
    used[n->par[0]] = 1;
  }
  for (int i = 0; i < n->nkids; i++) used_walk(c, n->kid[i], seen, used);
}

unsigned char *emit_used_vars(rk_ctx *c, rk_node **roots, int nroots) {
  unsigned char *seen = ctx_alloc(c, (size_t)c->nnodes + 1);
  unsigned char *used = ctx_alloc(c, RK_MAX_ARGS);
  for (int k = 0; k < nroots; k++)
    if (roots[k]) used_walk(c, roots[k], seen, used);
  return used;
}

/* The part of the generated prologue that both dialects share, written
 * after each defines RK_DEV (its function qualifier), rk_t and RK_INF:
 * one RK_<FN> macro per math function named in the op table (exp and log
 * may be the backend's own kernels, exp_name and log_name; the others are
 * the C library's, with the f suffix in float32), the ordering macros of
 * the reductions and the small helpers of the op templates. */
void emit_prologue_common(rk_buf *b, int f32, const char *exp_name, const char *log_name) {
  const char *sfx = f32 ? "f" : "";
  for (int i = 0; i < RK_OP_COUNT; i++) {
    const char *fn = rk_ops[i].fn;
    int first = fn != NULL;
    for (int k = 0; first && k < i; k++)
      if (rk_ops[k].fn && strcmp(rk_ops[k].fn, fn) == 0) first = 0;
    if (!first) continue;
    const char *impl = strcmp(fn, "exp") == 0 ? exp_name : strcmp(fn, "log") == 0 ? log_name : fn;
    buf_puts(b, "#define ");
    emit_math_macro(b, fn);
    buf_printf(b, " %s%s\n", impl, sfx);
  }
  buf_puts(b,
    "#define RK_MIN(a, b) ((a) < (b) ? (a) : (b))\n"
    "/* ascending order with NaN first; RK_BEFORE_MAX: descending, NaN first */\n"
    "#define RK_BEFORE(a, b) ((a) != (a) ? (b) == (b) : (a) < (b))\n"
    "#define RK_BEFORE_MAX(a, b) ((a) != (a) ? (b) == (b) : (a) > (b))\n"
    "RK_DEV rk_t rk_powi(rk_t x, int n) {\n"
    "  unsigned m = n < 0 ? 0u - (unsigned)n : (unsigned)n;\n"
    "  rk_t r = 1;\n"
    "  while (m) { if (m & 1u) r *= x; x *= x; m >>= 1; }\n"
    "  return n < 0 ? (rk_t)1 / r : r;\n"
    "}\n"
    "RK_DEV rk_t rk_rsqrt(rk_t x) { return x == 0 ? (rk_t)0 : (rk_t)1 / RK_SQRT(x); }\n"
    "/* round to d decimals, halves away from zero (C round) */\n"
    "RK_DEV rk_t rk_round(rk_t x, int d) {\n"
    "  if (d == 0) return RK_ROUND(x);\n"
    "  rk_t p = rk_powi((rk_t)10, d);\n"
    "  return RK_ROUND(x * p) / p;\n"
    "}\n");
}
