/*
 * fake_nvrtc.c -- a stand-in for libnvrtc, for testing the GPU backend on a
 * machine without a GPU (test_gpu_emu.c).  Loaded by the engine through
 * RKEOPS_LIBNVRTC like the real one.
 *
 * nvrtcCompileProgram writes the generated CUDA to a temporary folder and
 * builds it as host C++ with emu.h forced in (c++ -shared), so the kernels
 * run on the CPU under fake_cuda.c.  The "CUBIN" (and the "PTX": the same
 * bytes) is the shared object, behind a header that fake_cuda.c checks:
 * "RKFAKEMOD" + 8 bytes of length + the file.  It checks the options the
 * engine passes (--gpu-architecture=sm_XY or compute_XY, among the
 * architectures it claims) and reports it in the log on failure.
 *
 *   FAKENVRTC_CXX     the C++ compiler (default c++)
 *   FAKENVRTC_ARCHS   supported architectures, e.g. "75,80,86" (the default)
 *   FAKENVRTC_NOCUBIN when set, nvrtcGetCUBIN is not exported... in spirit:
 *                     nvrtcGetCUBINSize fails, as with NVRTC < 11.1
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FAKE_EMU_H
#error "build with -DFAKE_EMU_H=\"/path/to/emu.h\""
#endif

typedef int nvrtcResult;
typedef struct prog {
  char *src;
  char *log;
  char *image;
  size_t len;
} prog;

enum { OK = 0, E_OOM = 1, E_INPUT = 3, E_PROGRAM = 4, E_OPTION = 5, E_COMPILE = 6, E_INTERNAL = 11 };

static int parse_archs(int *a, int max) {
  const char *s = getenv("FAKENVRTC_ARCHS");
  if (!s || !*s) s = "75,80,86";
  int n = 0;
  while (*s && n < max) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s) break;
    a[n++] = (int)v;
    s = *end == ',' ? end + 1 : end;
  }
  return n;
}

nvrtcResult nvrtcVersion(int *major, int *minor) {
  *major = 12;
  *minor = 4;
  return OK;
}

nvrtcResult nvrtcGetNumSupportedArchs(int *n) {
  int a[64];
  *n = parse_archs(a, 64);
  return OK;
}

nvrtcResult nvrtcGetSupportedArchs(int *archs) {
  int a[64], n = parse_archs(a, 64);
  memcpy(archs, a, sizeof(int) * (size_t)n);
  return OK;
}

nvrtcResult nvrtcCreateProgram(prog **p, const char *src, const char *name, int nheaders,
                               const char *const *headers, const char *const *include_names) {
  (void)name; (void)headers; (void)include_names;
  if (!p || !src || nheaders != 0) return E_INPUT;
  prog *q = calloc(1, sizeof *q);
  if (!q || !(q->src = strdup(src))) {
    free(q);
    return E_OOM;
  }
  *p = q;
  return OK;
}

nvrtcResult nvrtcDestroyProgram(prog **p) {
  if (!p || !*p) return E_PROGRAM;
  free((*p)->src);
  free((*p)->log);
  free((*p)->image);
  free(*p);
  *p = NULL;
  return OK;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
    free(s);
    s = NULL;
  }
  fclose(f);
  if (s) {
    s[n] = '\0';
    *len = (size_t)n;
  }
  return s;
}

nvrtcResult nvrtcCompileProgram(prog *p, int nopt, const char *const *opts) {
  if (!p) return E_PROGRAM;
  free(p->log);
  p->log = NULL;
  int arch = -1;
  for (int k = 0; k < nopt; k++) {
    const char *o = opts[k];
    if (strncmp(o, "--gpu-architecture=", 19) != 0) return E_OPTION;
    const char *v = o + 19;
    if (strncmp(v, "sm_", 3) == 0) arch = atoi(v + 3);
    else if (strncmp(v, "compute_", 8) == 0) arch = atoi(v + 8);
    else return E_OPTION;
  }
  int a[64], n = parse_archs(a, 64), known = 0;
  for (int k = 0; k < n; k++) known |= a[k] == arch;
  if (!known) {
    p->log = strdup("fake nvrtc: unsupported --gpu-architecture\n");
    return E_OPTION;
  }
  char dir[] = "/tmp/fakenvrtc-XXXXXX";
  if (!mkdtemp(dir)) return E_INTERNAL;
  char src[64], so[64], log[64], cmd[1024];
  snprintf(src, sizeof src, "%s/k.cu", dir);
  snprintf(so, sizeof so, "%s/k.so", dir);
  snprintf(log, sizeof log, "%s/log", dir);
  FILE *f = fopen(src, "wb");
  int ok = f && fputs(p->src, f) >= 0;
  if (f) fclose(f);
  const char *cxx = getenv("FAKENVRTC_CXX");
  if (!cxx || !*cxx) cxx = "c++";
  snprintf(cmd, sizeof cmd,
           "%s -std=c++11 -O1 -w -fPIC -shared -include '%s' -x c++ '%s' -o '%s' -lpthread -lm "
           "> '%s' 2>&1",
           cxx, FAKE_EMU_H, src, so, log);
  int rc = ok ? system(cmd) : -1;
  size_t ln = 0;
  p->log = slurp(log, &ln);
  nvrtcResult out = OK;
  size_t len = 0;
  char *bytes = rc == 0 ? slurp(so, &len) : NULL;
  if (!bytes) {
    out = E_COMPILE;
  } else {
    p->image = malloc(len + 17);
    if (!p->image) {
      out = E_OOM;
    } else {
      memcpy(p->image, "RKFAKEMOD", 9);
      unsigned long long l = len;
      memcpy(p->image + 9, &l, 8);
      memcpy(p->image + 17, bytes, len);
      p->len = len + 17;
    }
    free(bytes);
  }
  remove(src);
  remove(so);
  remove(log);
  rmdir(dir);
  return out;
}

nvrtcResult nvrtcGetProgramLogSize(prog *p, size_t *n) {
  *n = (p->log ? strlen(p->log) : 0) + 1;
  return OK;
}

nvrtcResult nvrtcGetProgramLog(prog *p, char *log) {
  strcpy(log, p->log ? p->log : "");
  return OK;
}

nvrtcResult nvrtcGetPTXSize(prog *p, size_t *n) {
  if (!p->image) return E_PROGRAM;
  *n = p->len;
  return OK;
}

nvrtcResult nvrtcGetPTX(prog *p, char *out) {
  if (!p->image) return E_PROGRAM;
  memcpy(out, p->image, p->len);
  return OK;
}

nvrtcResult nvrtcGetCUBINSize(prog *p, size_t *n) {
  if (getenv("FAKENVRTC_NOCUBIN")) return E_INTERNAL;
  return nvrtcGetPTXSize(p, n);
}

nvrtcResult nvrtcGetCUBIN(prog *p, char *out) { return nvrtcGetPTX(p, out); }
