/* init.c -- registration of the .Call entry points (no dynamic lookup). */
#include <R.h>
#include <Rinternals.h>
#include <R_ext/Rdynload.h>
#include "engine/engine.h"

/* R's registration API stores every entry as a DL_FUNC; the cast goes
 * through void (*)(void), the generic function pointer type, so that
 * -Wcast-function-type has nothing to say. */
#define CALLDEF(name, n) {#name, (DL_FUNC)(void (*)(void))&name, n}

SEXP rk_compile_r(SEXP, SEXP, SEXP, SEXP, SEXP);
SEXP rk_generate_r(SEXP, SEXP, SEXP, SEXP);
SEXP rk_run_r(SEXP, SEXP, SEXP);
SEXP rk_run_ranges_r(SEXP, SEXP, SEXP, SEXP, SEXP);
SEXP rk_run_devices_r(SEXP, SEXP, SEXP);
SEXP rk_last_threads_r(void);
SEXP rk_ncores_r(void);
SEXP rk_toolchain_r(void);
SEXP rk_unload_r(void);
SEXP rk_compile_gpu_r(SEXP, SEXP, SEXP, SEXP, SEXP, SEXP);
SEXP rk_gpu_status_r(void);
SEXP rk_gpu_unload_r(void);
SEXP rk_lt_init_r(SEXP);
SEXP rk_lt_leaf_r(SEXP, SEXP, SEXP, SEXP, SEXP);
SEXP rk_lt_node_r(SEXP, SEXP, SEXP, SEXP, SEXP, SEXP);
SEXP rk_lt_rename_r(SEXP, SEXP);
SEXP rk_lt_reduction_r(SEXP, SEXP, SEXP, SEXP);
SEXP rk_lt_fast_r(SEXP, SEXP, SEXP, SEXP);
SEXP rk_lt_var_r(SEXP, SEXP);
SEXP rk_lt_merge_r(SEXP);
SEXP rk_check_r(SEXP, SEXP);
SEXP rk_partial_r(SEXP, SEXP, SEXP);
SEXP rk_merge_r(SEXP, SEXP, SEXP, SEXP);

static const R_CallMethodDef call_methods[] = {
  CALLDEF(rk_compile_r, 5),
  CALLDEF(rk_generate_r, 4),
  CALLDEF(rk_run_r, 3),
  CALLDEF(rk_run_ranges_r, 5),
  CALLDEF(rk_run_devices_r, 3),
  CALLDEF(rk_last_threads_r, 0),
  CALLDEF(rk_ncores_r, 0),
  CALLDEF(rk_toolchain_r, 0),
  CALLDEF(rk_unload_r, 0),
  CALLDEF(rk_compile_gpu_r, 6),
  CALLDEF(rk_gpu_status_r, 0),
  CALLDEF(rk_gpu_unload_r, 0),
  CALLDEF(rk_lt_init_r, 1),
  CALLDEF(rk_lt_leaf_r, 5),
  CALLDEF(rk_lt_node_r, 6),
  CALLDEF(rk_lt_rename_r, 2),
  CALLDEF(rk_lt_reduction_r, 4),
  CALLDEF(rk_lt_fast_r, 4),
  CALLDEF(rk_lt_var_r, 2),
  CALLDEF(rk_lt_merge_r, 1),
  CALLDEF(rk_check_r, 2),
  CALLDEF(rk_partial_r, 3),
  CALLDEF(rk_merge_r, 4),
  {NULL, NULL, 0}
};

void R_init_rkeops(DllInfo *dll) {
  R_registerRoutines(dll, NULL, call_methods, NULL, NULL);
  R_useDynamicSymbols(dll, FALSE);
  R_forceSymbols(dll, TRUE);
}

/* library.dynam.unload(): the kernels, then the GPU (modules, contexts,
 * libcuda and libnvrtc handles), before this library goes */
void R_unload_rkeops(DllInfo *dll) {
  (void)dll;
  rk_unload_all();
  rk_gpu_unload();
}
