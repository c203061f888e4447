/* init.c -- registration of the .Call entry points (no dynamic lookup). */
#include <R.h>
#include <Rinternals.h>
#include <R_ext/Rdynload.h>

/* R's registration API casts every entry to DL_FUNC by design */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wcast-function-type"
#endif

SEXP rk_compile_r(SEXP, SEXP, SEXP, SEXP, SEXP);
SEXP rk_generate_r(SEXP, SEXP, SEXP, SEXP);
SEXP rk_run_r(SEXP, SEXP, SEXP);
SEXP rk_last_threads_r(void);
SEXP rk_ncores_r(void);
SEXP rk_toolchain_r(void);
SEXP rk_unload_r(void);

static const R_CallMethodDef call_methods[] = {
  {"rk_compile_r", (DL_FUNC)&rk_compile_r, 5},
  {"rk_generate_r", (DL_FUNC)&rk_generate_r, 4},
  {"rk_run_r", (DL_FUNC)&rk_run_r, 3},
  {"rk_last_threads_r", (DL_FUNC)&rk_last_threads_r, 0},
  {"rk_ncores_r", (DL_FUNC)&rk_ncores_r, 0},
  {"rk_toolchain_r", (DL_FUNC)&rk_toolchain_r, 0},
  {"rk_unload_r", (DL_FUNC)&rk_unload_r, 0},
  {NULL, NULL, 0}
};

void R_init_rkeops(DllInfo *dll) {
  R_registerRoutines(dll, NULL, call_methods, NULL, NULL);
  R_useDynamicSymbols(dll, FALSE);
  R_forceSymbols(dll, TRUE);
}
