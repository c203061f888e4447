/*
 * reductions.c -- the reduction table (rows in reductions.def).
 *
 * Each reduction is four emitters over an accumulator of accdim(D, K)
 * slots of type acc_t (declared by the loop scheme): init, update with one
 * value f (D components), merge of two partial accumulators, finalize into
 * the output column-major array o with column stride s.
 */
#include <string.h>
#include "internal.h"

static int dim_D(int D, int K) { (void)K; return D; }

/* --- Sum: A = sum_j f_j ------------------------------------------------ */
static void sum_init(rk_emit *e, const rk_red *r, const char *A) {
  emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = 0;", r->D, A);
}
static void sum_update(rk_emit *e, const rk_red *r, const char *A, const char *f,
                       const char *j) {
  (void)j;
  emit_line(e, "for (int k = 0; k < %d; k++) %s[k] += %s[k];", r->D, A, f);
}
static void sum_merge(rk_emit *e, const rk_red *r, const char *A, const char *B) {
  emit_line(e, "for (int k = 0; k < %d; k++) %s[k] += %s[k];", r->D, A, B);
}
static void sum_final(rk_emit *e, const rk_red *r, const char *A, const char *o,
                      const char *s) {
  emit_line(e, "for (int k = 0; k < %d; k++) %s[k * %s] = (double)%s[k];", r->D, o, s, A);
}

#define X(id, name, nextra, hasK, accdim, outdim, init, update, merge, fin, deriv, flags) \
  {name, nextra, hasK, accdim, outdim, init, update, merge, fin, deriv, flags},
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
