/*
 * tree.c -- the arena, nodes and hash-consing.
 *
 * Every distinct subexpression exists once per compilation: tree_node()
 * looks the (op, operands, parameters) triple up before creating it, so
 * the emitter writes each one once and gradients can share subtrees.
 * Node ids follow creation order, which is a topological order.
 */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

typedef union { long double ld; long long ll; void *p; double d; } rk_align;
struct rk_chunk { rk_chunk *next; size_t used, cap; rk_align data[]; };

void *arena_alloc(rk_arena *a, size_t n) {
  n = (n + sizeof(rk_align) - 1) / sizeof(rk_align) * sizeof(rk_align);
  rk_chunk *h = a->head;
  if (!h || h->used + n > h->cap) {
    size_t cap = n > 65536 ? n : 65536;
    h = malloc(sizeof(rk_chunk) + cap);
    if (!h) return NULL;
    h->next = a->head;
    h->used = 0;
    h->cap = cap;
    a->head = h;
  }
  void *p = (char *)h->data + h->used;
  h->used += n;
  memset(p, 0, n);
  return p;
}

void arena_free(rk_arena *a) {
  rk_chunk *h = a->head;
  while (h) {
    rk_chunk *nx = h->next;
    free(h);
    h = nx;
  }
  a->head = NULL;
}

void *ctx_alloc(rk_ctx *c, size_t n) {
  void *p = arena_alloc(&c->arena, n);
  if (!p) rk_fail(c, RK_ENOMEM, -1, "out of memory while compiling the formula");
  return p;
}

char *ctx_strdup(rk_ctx *c, const char *s, size_t n) {
  char *p = ctx_alloc(c, n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

static unsigned node_hash(int op, int nkids, rk_node **kids, const int *par) {
  unsigned h = 2166136261u ^ (unsigned)op;
  for (int i = 0; i < nkids; i++) h = (h ^ (unsigned)kids[i]->id) * 16777619u;
  for (int i = 0; i < RK_MAX_PARAMS; i++) h = (h ^ (unsigned)par[i]) * 16777619u;
  return h;
}

rk_node *tree_node(rk_ctx *c, int op, int nkids, rk_node **kids, const int *par,
                   long pos) {
  int p[RK_MAX_PARAMS] = {0};
  if (par) memcpy(p, par, sizeof p);
  unsigned h = node_hash(op, nkids, kids, p);
  for (rk_node *n = c->htab[h % RK_HASH_SIZE]; n; n = n->hnext) {
    if (n->hash != h || n->op != op || n->nkids != nkids) continue;
    if (memcmp(n->par, p, sizeof p) != 0) continue;
    int same = 1;
    for (int i = 0; i < nkids; i++) same &= n->kid[i] == kids[i];
    if (same) return n;
  }
  if (c->nnodes >= RK_MAX_NODES)
    rk_fail(c, RK_EPARSE, pos, "formula too large (more than %d distinct operations)", RK_MAX_NODES);
  rk_node *n = ctx_alloc(c, sizeof *n);
  n->op = op;
  n->nkids = nkids;
  for (int i = 0; i < nkids; i++) {
    n->kid[i] = kids[i];
    n->deps |= kids[i]->deps;
  }
  memcpy(n->par, p, sizeof p);
  n->pos = pos;
  n->dim = rk_ops[op].dim(c, n);
  if (n->dim < 1 || n->dim > RK_MAX_DIM)
    rk_fail(c, RK_EDIM, pos, "%s: dimension %d is out of range [1, %d]",
            rk_ops[op].name, n->dim, RK_MAX_DIM);
  n->id = c->nnodes++;
  n->hash = h;
  n->hnext = c->htab[h % RK_HASH_SIZE];
  c->htab[h % RK_HASH_SIZE] = n;
  return n;
}

rk_node *tree_var(rk_ctx *c, int pos, int dim, int cat, long srcpos) {
  int par[RK_MAX_PARAMS] = {pos, dim, cat};
  rk_node *n = tree_node(c, RK_OP_VAR, 0, NULL, par, srcpos);
  n->deps = cat == RK_CAT_I ? DEP_I : cat == RK_CAT_J ? DEP_J : DEP_PM;
  return n;
}

rk_node *tree_intcst(rk_ctx *c, int v, long pos) {
  int par[RK_MAX_PARAMS] = {v};
  return tree_node(c, RK_OP_INTCST, 0, NULL, par, pos);
}
