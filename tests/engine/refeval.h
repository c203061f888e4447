/*
 * refeval.h -- an independent reference evaluator for rkeops formulas.
 *
 * The C tests and rk-check compare the engine's compiled kernels with this
 * evaluator.  It shares NOTHING with the engine's front end, simplifier,
 * differentiator or code generator: it has its own tokenizer and
 * recursive-descent parser of the formula language, its own table of
 * operations and reductions (keyed by their KeOps names, semantics from
 * SPEC.md section 2 and the decisions), and it evaluates a formula by a
 * naive double loop over (output row, reduced index) in double precision,
 * walking the tree for every pair.  Gradients, Grad(<reduction>, v, e) at
 * the top of a formula, are central finite differences of the reference
 * itself.  Only the plain data types of engine.h (rk_input, rk_arginfo,
 * RK_CAT_*) are shared.
 *
 * Conventions (SPEC.md decisions): Sum_Reduction(F, 0) sums over j (one
 * row per i); index results (ArgMin...) are 1-based, NaN (R's NA) when
 * empty; matrices in vectors are column-major; complex vectors are
 * interleaved (re, im) pairs.
 */
#ifndef RK_REFEVAL_H
#define RK_REFEVAL_H

#include <stddef.h>
#include <stdint.h>
#include "engine.h"

#define REF_MAX_ARGS 64
#define REF_MAX_NODES 2048
#define REF_MAX_DEPTH 400
#define REF_MAX_PARAMS 32

typedef struct ref_node {
  int op;              /* index in the reference op table (refeval.c)   */
  int nk;
  int kid[3];          /* indices of the operands in ref_formula.nodes   */
  int npar;
  int par[REF_MAX_PARAMS]; /* integer parameters (lists: length, items);
                              for variables: pos, dim, cat             */
  int dim;
  int off;             /* offset of the node's value in the scratch      */
} ref_node;

typedef struct ref_formula {
  int red;             /* index in the reference reduction table         */
  int root, extra;     /* formula node and weight node (-1 if none)      */
  int K;               /* K of KMin-type reductions                      */
  int axis;
  int D, DG;           /* dims of the formula and of the weight          */
  int outdim;          /* of the reduction                               */
  /* Grad(<reduction>, v, e): the result is d/dv sum_rows <e, reduction> */
  int grad;            /* 1 when the formula is a Grad                   */
  int gpos;            /* position of v                                  */
  int gexpr;           /* node of e                                      */
  int nargs;
  rk_arginfo args[REF_MAX_ARGS];
  int nnodes;
  ref_node nodes[REF_MAX_NODES];
  int scratch;         /* doubles of scratch needed per evaluation       */
  char err[256];       /* why ref_parse or ref_eval failed               */
} ref_formula;

/* Parses formula + declarations into *F (large: allocate it, do not put
 * it on the stack).  Returns 0, or -1 with F->err set (an operation the
 * reference does not know, a syntax error: the reference is not a
 * validator; the engine's own tests check the error paths). */
int ref_parse(const char *formula, const char *const *decls, int ndecls, ref_formula *F);

/* Rows and columns of the result for these inputs (in[p] at position p). */
int64_t ref_nout(const ref_formula *F, const rk_input *in, int nin);
int ref_outdim(const ref_formula *F);

/* Evaluates every row into out (column-major nout x outdim) and, when
 * scale is not NULL, a per-entry magnitude for relative errors: for sums
 * the sum of the absolute values of the terms (the natural bound of
 * rounding errors), for indices 1, for gradients the largest absolute
 * value of the result, else max(|value|, 1).  Returns 0, or -1 with F->err
 * set. */
int ref_eval(ref_formula *F, const rk_input *in, int nin, double *out, double *scale);

/* The same for the rows rows[0..nrows) only (rk-check samples the rows of
 * big problems): the result of rows[q] goes to out[q + k*ldo]. */
int ref_eval_rows(ref_formula *F, const rk_input *in, int nin, const int64_t *rows, int64_t nrows,
                  double *out, int64_t ldo, double *scale);

/* Pair evaluations that ref_eval_rows spends per output row (rk-check
 * uses it to sample rows of big problems). */
double ref_row_cost(const ref_formula *F, const rk_input *in, int nin);

/* Is this op / reduction name known to the reference?  (arity and npar as
 * in ops.def: for list operations npar counts the lists) */
int ref_knows_op(const char *name, int *arity, int *npar);
int ref_knows_reduction(const char *name, int *nextra, int *hasK);

#endif
