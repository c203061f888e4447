/*
 * tutil.h -- small helpers shared by the C tests and rk-check: a seeded
 * random generator, random inputs for a kernel's arguments, a scratch
 * folder for the kernel cache, a clock, and the error measure.
 */
#ifndef RK_TUTIL_H
#define RK_TUTIL_H

#include <stdint.h>
#include "engine.h"

double tu_now(void);  /* monotonic seconds */

typedef struct tu_rng { uint64_t s; } tu_rng;
void tu_seed(tu_rng *r, uint64_t seed);
double tu_unif(tu_rng *r, double lo, double hi);   /* in [lo, hi) */

/* Random data for every argument: Vi arguments get M rows, Vj arguments N
 * rows, parameters their dim values; uniform in [lo, hi).  grid > 0
 * rounds every value to a multiple of 2^-grid: with grid = 10 and data
 * near 1, products of a few values are exact in float32 as in float64, so
 * a discontinuous op (Floor, comparisons...) sees the same operands in
 * both precisions.  in[] must have nargs slots; free with tu_free_inputs. */
int tu_make_inputs(const rk_arginfo *args, int nargs, int64_t M, int64_t N, tu_rng *rng,
                   double lo, double hi, int grid, rk_input *in);
void tu_free_inputs(rk_input *in, int nargs);

/* A fresh folder "<$TMPDIR or /tmp>/<prefix>XXXXXX" (malloc'd path) and
 * its removal with everything in it (two levels at most). */
char *tu_tempdir(const char *prefix);
void tu_rmtree(const char *dir);

/* max over k of |got[k] - ref[k]| / scale[k] (equal values count as 0, a
 * NaN on both sides too, a NaN on one side as +inf); *worst gets the index of the maximum. */
double tu_max_relerr(const double *got, const double *ref, const double *scale, int64_t n,
                     int64_t *worst);

#endif
