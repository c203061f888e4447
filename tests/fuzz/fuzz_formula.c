/*
 * fuzz_formula.c -- libFuzzer target over the engine's front end: parse,
 * dimensions, differentiation, simplification and emission (rk_generate),
 * both precisions.  No compiler is run.
 *
 * Input: the formula on the first line, one declaration per following
 * line (at most 16).  Build and run with `make fuzz` (clang,
 * -fsanitize=fuzzer,address,undefined); `make test` replays the corpus
 * with replay.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  char *buf = malloc(size + 1);
  if (!buf) return 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  const char *decls[16];
  int nd = 0;
  char *formula = buf, *nl = strchr(buf, '\n');
  while (nl && nd < 16) {
    *nl = '\0';
    decls[nd++] = nl + 1;
    nl = strchr(nl + 1, '\n');
  }
  if (nl) *nl = '\0';
  for (int prec = 0; prec < 2; prec++) {
    rk_options o;
    rk_options_default(&o);
    o.precision = prec ? RK_F32 : RK_F64;
    rk_error e;
    rk_error_init(&e);
    char *src = NULL;
    if (rk_generate(formula, decls, nd, &o, &src, &e) == RK_OK) {
      free(src);
    } else {
      char msg[2048];
      const char *text = e.in_decl >= 0 && e.in_decl < nd ? decls[e.in_decl] : formula;
      rk_error_format(&e, text, msg, sizeof msg);
    }
    rk_error_clear(&e);
  }
  free(buf);
  return 0;
}
