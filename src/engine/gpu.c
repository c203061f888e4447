/*
 * gpu.c -- libcuda and libnvrtc found at run time, and every call the GPU
 * backend makes to them (STYLE.md, "Optional CUDA").
 *
 * High level description
 * ----------------------
 * Nothing of CUDA is needed to build rkeops: gpu_api.h declares the ~35
 * entry points we use, and this file binds them on first use.
 *
 *   libraries   first use of the driver (gpu_open) or of NVRTC
 *               (gpu_nvrtc_load) tries, in order: the path in
 *               RKEOPS_LIBCUDA / RKEOPS_LIBNVRTC; the sonames libcuda.so.1,
 *               libcuda.so (libnvrtc.so.13, .so.12, .so.11.2, libnvrtc.so);
 *               the same names in $CUDA_HOME/lib64 and /usr/local/cuda/lib64
 *               (never lib64/stubs: its libcuda is a link-time stub).  Every
 *               attempt and its dlerror text is kept for the diagnosis.  A
 *               symbol that does not resolve is bound to a stub returning
 *               GPU_MISSING (CuPy's SoftLink).  The outcome is cached.
 *   driver      cuInit once (outcome cached); the primary context of each
 *               device used is retained once and made current before every
 *               use (the R thread is the only caller; a run over several
 *               devices switches between their contexts).
 *   modules     one per (kernel hash, device), loaded once, kept until
 *               rk_gpu_unload(): rk_unload_all() frees kernels, not modules,
 *               and a kernel compiled again finds its module here.  Each
 *               keeps a copy of its image, so that a run over several
 *               devices (cuda.c) loads the same kernel on the others.
 *   errors      every return code is checked and becomes an rk_error whose
 *               message names the call and the CUDA error.
 *   unload      rk_gpu_unload() drops the GPU kernels of the memo, unloads
 *               the modules, releases the primary contexts and closes both
 *               handles.  The libraries are opened with RTLD_NODELETE: the
 *               driver's own threads may still run libcuda's code after
 *               cuInit, and NVRTC's static C++ runtime keeps memory that
 *               would leak on every unmap, so closing never unmaps them (a
 *               later use opens the same mapping again).
 *
 * macOS has no CUDA: the status says so.  Nothing here prints, exits or
 * aborts.  Not thread-safe: called from the R thread (or rk-check's).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "gpu_api.h"

#define GPU_MAX_DEVICES 64

/* ------------------------------------------------------------ stubs */

#define X(member, symbol, params, uses) \
  static CUresult stub_##member params { uses; return GPU_MISSING; }
GPU_CU_API(X)
#undef X
#define X(member, symbol, params, uses) \
  static nvrtcResult stub_##member params { uses; return GPU_MISSING; }
GPU_NVRTC_API(X)
#undef X

#define X(member, symbol, params, uses) stub_##member,
gpu_cu_api gpu_cu = {GPU_CU_API(X)};
gpu_nvrtc_api gpu_nvrtc = {GPU_NVRTC_API(X)};
#undef X

static void stub_all_cu(void) {
#define X(member, symbol, params, uses) gpu_cu.member = stub_##member;
  GPU_CU_API(X)
#undef X
}
static void stub_all_nvrtc(void) {
#define X(member, symbol, params, uses) gpu_nvrtc.member = stub_##member;
  GPU_NVRTC_API(X)
#undef X
}

/* ------------------------------------------------------------ libraries */

enum { LIB_UNTRIED = 0, LIB_OK, LIB_MISSING };

typedef struct gpu_lib {
  const char *what;           /* "libcuda", "libnvrtc"                   */
  const char *env;            /* the variable holding an explicit path    */
  const char *const *names;   /* sonames, in order                        */
  int status;
  void *handle;
  char name[512];             /* the name that loaded                     */
  char file[512];             /* where it was found (dladdr)              */
  char attempts[4096];        /* one "name: dlerror" line per failure     */
  char missing[1024];         /* symbols bound to stubs                   */
} gpu_lib;

static const char *const cuda_names[] = {"libcuda.so.1", "libcuda.so", NULL};
static const char *const nvrtc_names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2",
                                          "libnvrtc.so", NULL};
static gpu_lib lib_cuda = {"libcuda", "RKEOPS_LIBCUDA", cuda_names, LIB_UNTRIED, NULL, "", "", "", ""};
static gpu_lib lib_nvrtc = {"libnvrtc", "RKEOPS_LIBNVRTC", nvrtc_names, LIB_UNTRIED, NULL, "", "", "",
                            ""};

static void append(char *dst, size_t cap, const char *fmt, const char *a, const char *b) {
  size_t n = strlen(dst);
  if (n + 1 < cap) snprintf(dst + n, cap - n, fmt, a, b ? b : "");
}

static int try_open(gpu_lib *L, const char *name) {
  dlerror();
  void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!h) {
    const char *m = dlerror();
    append(L->attempts, sizeof L->attempts, "%s: %s\n", name, m ? m : "cannot be loaded");
    return 0;
  }
  L->handle = h;
  snprintf(L->name, sizeof L->name, "%.*s", (int)sizeof L->name - 1, name);
  return 1;
}

/* Binds one symbol, or its stub (and notes it). */
static void bind(gpu_lib *L, const char *symbol, void *slot, void *stub) {
  void *p = dlsym(L->handle, symbol);
  if (!p) {
    p = stub;
    append(L->missing, sizeof L->missing, "%s%s", L->missing[0] ? " " : "", symbol);
  }
  memcpy(slot, &p, sizeof p);  /* object to function pointer, POSIX-style */
}

static void bind_all(gpu_lib *L) {
  void *stub;
  if (L == &lib_cuda) {
#define X(member, symbol, params, uses) \
    { CUresult (*s_) params = stub_##member; memcpy(&stub, &s_, sizeof stub); \
      bind(L, symbol, &gpu_cu.member, stub); }
    GPU_CU_API(X)
#undef X
  } else {
#define X(member, symbol, params, uses) \
    { nvrtcResult (*s_) params = stub_##member; memcpy(&stub, &s_, sizeof stub); \
      bind(L, symbol, &gpu_nvrtc.member, stub); }
    GPU_NVRTC_API(X)
#undef X
  }
  /* where the library really is, for the report */
  Dl_info info;
  void *any = dlsym(L->handle, L == &lib_cuda ? "cuInit" : "nvrtcVersion");
  if (any && dladdr(any, &info) && info.dli_fname)
    snprintf(L->file, sizeof L->file, "%s", info.dli_fname);
}

static int lib_load(gpu_lib *L) {
  if (L->status != LIB_UNTRIED) return L->status == LIB_OK;
  L->attempts[0] = L->missing[0] = L->name[0] = L->file[0] = '\0';
#ifdef __APPLE__
  append(L->attempts, sizeof L->attempts, "%s: %s\n", L->what, "CUDA does not exist on macOS");
  L->status = LIB_MISSING;
  return 0;
#else
  int ok = 0;
  const char *env = getenv(L->env);
  if (env && *env) ok = try_open(L, env);
  else append(L->attempts, sizeof L->attempts, "%s: %s\n", L->env, "not set");
  for (int i = 0; !ok && L->names[i]; i++) ok = try_open(L, L->names[i]);
  const char *home = getenv("CUDA_HOME");
  const char *dirs[] = {home && *home ? home : NULL, "/usr/local/cuda"};
  for (int d = 0; !ok && d < 2; d++) {
    if (!dirs[d] || (d == 1 && dirs[0] && strcmp(dirs[0], dirs[1]) == 0)) continue;
    for (int i = 0; !ok && L->names[i]; i++) {
      char path[1024];
      snprintf(path, sizeof path, "%s/lib64/%s", dirs[d], L->names[i]);
      ok = try_open(L, path);
    }
  }
  if (!ok) {
    L->status = LIB_MISSING;
    return 0;
  }
  bind_all(L);
  L->status = LIB_OK;
  return 1;
#endif
}

/* "name: error; name: error" (the attempts on one line, for err->msg) */
static void attempts_line(const gpu_lib *L, char *buf, size_t n) {
  size_t k = 0;
  buf[0] = '\0';
  for (const char *s = L->attempts; *s && k + 3 < n; s++) {
    if (*s == '\n') {
      if (s[1]) { buf[k++] = ';'; buf[k++] = ' '; }
    } else {
      buf[k++] = *s;
    }
  }
  buf[k] = '\0';
}

/* ------------------------------------------------------------ errors */

static const char *cu_name(CUresult rc) {
  const char *s = NULL;
  if (rc == GPU_MISSING) return "function missing from libcuda";
  if (gpu_cu.cuGetErrorName(rc, &s) != CUDA_SUCCESS || !s) return "unknown CUDA error";
  return s;
}
static const char *cu_text(CUresult rc) {
  const char *s = NULL;
  if (rc == GPU_MISSING) return "the loaded libcuda lacks this entry point";
  if (gpu_cu.cuGetErrorString(rc, &s) != CUDA_SUCCESS || !s) return "";
  return s;
}

/* fills err for a failed driver call; returns err->code */
static int cu_fail(rk_error *err, int code, CUresult rc, const char *call, const char *what) {
  rk_seterr(err, code, -1, "%s%s%s failed: %s (%d: %s)", what ? what : "", what ? ": " : "", call,
            cu_name(rc), rc, cu_text(rc));
  return err->code;
}

static const char *nvrtc_name(nvrtcResult rc) {
  static const char *names[] = {
    "NVRTC_SUCCESS", "NVRTC_ERROR_OUT_OF_MEMORY", "NVRTC_ERROR_PROGRAM_CREATION_FAILURE",
    "NVRTC_ERROR_INVALID_INPUT", "NVRTC_ERROR_INVALID_PROGRAM", "NVRTC_ERROR_INVALID_OPTION",
    "NVRTC_ERROR_COMPILATION", "NVRTC_ERROR_BUILTIN_OPERATION_FAILURE",
    "NVRTC_ERROR_NO_NAME_EXPRESSIONS_AFTER_COMPILATION",
    "NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION", "NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID",
    "NVRTC_ERROR_INTERNAL_ERROR", "NVRTC_ERROR_TIME_FILE_WRITE_FAILED"};
  if (rc == GPU_MISSING) return "function missing from libnvrtc";
  if (rc >= 0 && rc < (int)(sizeof names / sizeof names[0])) return names[rc];
  return "NVRTC error";
}

/* ------------------------------------------------------------ driver */

static int drv_state;            /* 0 untried, 1 initialised, -1 cuInit failed */
static CUresult drv_rc;          /* cuInit's result                             */
static int drv_version, ndev;
static CUcontext ctxs[GPU_MAX_DEVICES];
static gpu_device devs[GPU_MAX_DEVICES];

static int driver_init(rk_error *err) {
  if (!lib_load(&lib_cuda)) {
    char line[900];
    attempts_line(&lib_cuda, line, sizeof line);
    rk_seterr(err, RK_ELOAD, -1, "no CUDA driver: libcuda could not be loaded (%s)", line);
    return err->code;
  }
  if (drv_state == 0) {
    drv_rc = gpu_cu.cuInit(0);
    drv_state = drv_rc == CUDA_SUCCESS ? 1 : -1;
    if (drv_state == 1) {
      if (gpu_cu.cuDriverGetVersion(&drv_version) != CUDA_SUCCESS) drv_version = 0;
      if (gpu_cu.cuDeviceGetCount(&ndev) != CUDA_SUCCESS) ndev = 0;
    }
  }
  if (drv_state < 0) {
    if (drv_rc == CUDA_ERROR_NO_DEVICE) {
      rk_seterr(err, RK_ELOAD, -1, "the CUDA driver (%s) found no GPU device", lib_cuda.name);
      return err->code;
    }
    return cu_fail(err, RK_ELOAD, drv_rc, "cuInit", "the CUDA driver could not be initialised");
  }
  return RK_OK;
}

static int device_info(int o, gpu_device *d) {
  CUdevice dev;
  if (gpu_cu.cuDeviceGet(&dev, o) != CUDA_SUCCESS) return -1;
  memset(d, 0, sizeof *d);
  d->ordinal = o;
  if (gpu_cu.cuDeviceGetName(d->name, (int)sizeof d->name, dev) != CUDA_SUCCESS)
    snprintf(d->name, sizeof d->name, "device %d", o);
  d->name[sizeof d->name - 1] = '\0';
  int maj = 0, min = 0;
  gpu_cu.cuDeviceGetAttribute(&maj, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
  gpu_cu.cuDeviceGetAttribute(&min, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
  d->cc = 10 * maj + min;
  if (gpu_cu.cuDeviceGetAttribute(&d->sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev) != CUDA_SUCCESS ||
      d->sms < 1)
    d->sms = 1;
  if (gpu_cu.cuDeviceGetAttribute(&d->max_grid_y, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, dev) != CUDA_SUCCESS ||
      d->max_grid_y < 1)
    d->max_grid_y = 65535;
  if (gpu_cu.cuDeviceTotalMem(&d->mem, dev) != CUDA_SUCCESS) d->mem = 0;
  return 0;
}

int gpu_open(int ordinal, gpu_device *dev, rk_error *err) {
  if (driver_init(err) != RK_OK) return err->code;
  if (ndev < 1) {
    rk_seterr(err, RK_ELOAD, -1, "the CUDA driver (%s) found no GPU device", lib_cuda.name);
    return err->code;
  }
  int o = ordinal < 0 ? 0 : ordinal;
  if (o >= ndev || o >= GPU_MAX_DEVICES) {
    rk_seterr(err, RK_EARG, -1, "there is no GPU device %d: the CUDA driver sees %d device%s (0 to %d)",
              ordinal, ndev, ndev == 1 ? "" : "s", ndev - 1);
    return err->code;
  }
  if (!ctxs[o]) {
    CUdevice d;
    CUresult rc = gpu_cu.cuDeviceGet(&d, o);
    if (rc != CUDA_SUCCESS) return cu_fail(err, RK_ELOAD, rc, "cuDeviceGet", NULL);
    rc = gpu_cu.cuDevicePrimaryCtxRetain(&ctxs[o], d);
    if (rc != CUDA_SUCCESS) {
      ctxs[o] = NULL;
      return cu_fail(err, RK_ELOAD, rc, "cuDevicePrimaryCtxRetain", "cannot use the GPU");
    }
    device_info(o, &devs[o]);
  }
  CUresult rc = gpu_cu.cuCtxSetCurrent(ctxs[o]);
  if (rc != CUDA_SUCCESS) return cu_fail(err, RK_ELOAD, rc, "cuCtxSetCurrent", "cannot use the GPU");
  if (dev) *dev = devs[o];
  return RK_OK;
}

/* ------------------------------------------------------------ modules */

typedef struct gpu_mod {
  char hash[65];
  int ordinal;
  CUmodule mod;
  CUfunction entry, merge;
  void *image;       /* a copy of the image, for loading it on other devices */
  size_t len;
  struct gpu_mod *next;
} gpu_mod;

static gpu_mod *mods;

int gpu_module(int ordinal, const char *hash, const void *image, size_t len, void **entry,
               void **merge, rk_error *err) {
  int o = ordinal < 0 ? 0 : ordinal;
  for (gpu_mod *m = mods; m; m = m->next) {
    if (m->ordinal == o && strcmp(m->hash, hash) == 0) {
      *entry = m->entry;
      *merge = m->merge;
      return RK_OK;
    }
  }
  gpu_mod *m = calloc(1, sizeof *m);
  char *log = calloc(1, 16384);
  if (m) m->image = malloc(len + 1);
  if (!m || !log || !m->image) {
    if (m) free(m->image);
    free(m);
    free(log);
    rk_seterr(err, RK_ENOMEM, -1, "out of memory");
    return err->code;
  }
  memcpy(m->image, image, len);
  ((char *)m->image)[len] = '\0';  /* PTX is text */
  m->len = len;
  int opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void *vals[2] = {log, (void *)(uintptr_t)16384};
  CUresult rc = gpu_cu.cuModuleLoadDataEx(&m->mod, image, 2, opts, vals);
  if (rc != CUDA_SUCCESS) {
    if (rc == CUDA_ERROR_UNSUPPORTED_PTX_VERSION)
      rk_seterr(err, RK_ELOAD, -1,
                "cannot load the compiled GPU kernel: the CUDA driver (version %d.%d) is older "
                "than NVRTC (version %d.%d): update the driver, or set RKEOPS_LIBNVRTC to the "
                "libnvrtc of a CUDA toolkit not newer than the driver",
                drv_version / 1000, (drv_version % 1000) / 10, gpu_nvrtc_version() / 1000,
                (gpu_nvrtc_version() % 1000) / 10);
    else
      cu_fail(err, RK_ELOAD, rc, "cuModuleLoadDataEx", "cannot load the compiled GPU kernel");
    log[16383] = '\0';
    if (log[0]) {
      free(err->log);
      err->log = log;
    } else {
      free(log);
    }
    free(m->image);
    free(m);
    return err->code;
  }
  free(log);
  rc = gpu_cu.cuModuleGetFunction(&m->entry, m->mod, "rk_cuda_entry");
  if (rc == CUDA_SUCCESS) rc = gpu_cu.cuModuleGetFunction(&m->merge, m->mod, "rk_cuda_merge");
  if (rc != CUDA_SUCCESS) {
    cu_fail(err, RK_ELOAD, rc, "cuModuleGetFunction", "the compiled GPU kernel has no entry point");
    gpu_cu.cuModuleUnload(m->mod);
    free(m->image);
    free(m);
    return err->code;
  }
  snprintf(m->hash, sizeof m->hash, "%s", hash);
  m->ordinal = o;
  m->next = mods;
  mods = m;
  *entry = m->entry;
  *merge = m->merge;
  return RK_OK;
}

int gpu_module_on(int ordinal, const char *hash, void **entry, void **merge, rk_error *err) {
  int o = ordinal < 0 ? 0 : ordinal;
  const gpu_mod *any = NULL;
  for (gpu_mod *m = mods; m; m = m->next) {
    if (strcmp(m->hash, hash) != 0) continue;
    if (m->ordinal == o) {
      *entry = m->entry;
      *merge = m->merge;
      return RK_OK;
    }
    any = m;
  }
  if (!any) {
    rk_seterr(err, RK_EINTERNAL, -1, "internal error: GPU kernel %.8s is not loaded (%s:%d)", hash,
              __FILE__, __LINE__);
    return err->code;
  }
  /* gpu_module copies the image before it links the new module first */
  return gpu_module(o, hash, any->image, any->len, entry, merge, err);
}

/* ------------------------------------------------------------ memory, launches */

int gpu_alloc(gpu_ptr *p, size_t bytes, rk_error *err) {
  CUdeviceptr d = 0;
  CUresult rc = gpu_cu.cuMemAlloc(&d, bytes ? bytes : 8);
  if (rc == CUDA_ERROR_OUT_OF_MEMORY) {
    size_t fr = 0, tot = 0;
    gpu_cu.cuMemGetInfo(&fr, &tot);
    *p = 0;
    rk_seterr(err, RK_ENOMEM, -1,
              "out of GPU memory: %.4g MiB requested, %.4g MiB free of %.4g MiB",
              (double)bytes / 1048576.0, (double)fr / 1048576.0, (double)tot / 1048576.0);
    return err->code;
  }
  if (rc != CUDA_SUCCESS) {
    *p = 0;
    return cu_fail(err, RK_EINTERNAL, rc, "cuMemAlloc", "GPU memory");
  }
  *p = d;
  return RK_OK;
}

void gpu_free(gpu_ptr p) {
  if (p) gpu_cu.cuMemFree(p);
}

int gpu_upload(gpu_ptr dst, const void *src, size_t bytes, rk_error *err) {
  if (bytes == 0) return RK_OK;
  CUresult rc = gpu_cu.cuMemcpyHtoD(dst, src, bytes);
  return rc == CUDA_SUCCESS ? RK_OK : cu_fail(err, RK_EINTERNAL, rc, "cuMemcpyHtoD", "copy to the GPU");
}

int gpu_download(void *dst, gpu_ptr src, size_t bytes, rk_error *err) {
  if (bytes == 0) return RK_OK;
  CUresult rc = gpu_cu.cuMemcpyDtoH(dst, src, bytes);
  return rc == CUDA_SUCCESS ? RK_OK : cu_fail(err, RK_EINTERNAL, rc, "cuMemcpyDtoH", "copy from the GPU");
}

int gpu_launch(void *fn, unsigned gx, unsigned gy, unsigned block, unsigned shmem, void **params,
               rk_error *err) {
  CUresult rc = gpu_cu.cuLaunchKernel((CUfunction)fn, gx, gy, 1, block, 1, 1, shmem, NULL, params, NULL);
  return rc == CUDA_SUCCESS ? RK_OK : cu_fail(err, RK_EINTERNAL, rc, "cuLaunchKernel", "GPU kernel launch");
}

int gpu_sync(rk_error *err) {
  CUresult rc = gpu_cu.cuCtxSynchronize();
  return rc == CUDA_SUCCESS ? RK_OK : cu_fail(err, RK_EINTERNAL, rc, "cuCtxSynchronize", "GPU kernel");
}

/* ------------------------------------------------------------ NVRTC */

int gpu_nvrtc_load(rk_error *err) {
  if (lib_load(&lib_nvrtc)) return RK_OK;
  char line[900];
  attempts_line(&lib_nvrtc, line, sizeof line);
  rk_seterr(err, RK_ELOAD, -1, "NVRTC (libnvrtc, the CUDA runtime compiler) could not be loaded (%s)",
            line);
  return err->code;
}

int gpu_nvrtc_version(void) {
  int maj = 0, min = 0;
  if (lib_nvrtc.status != LIB_OK || gpu_nvrtc.nvrtcVersion(&maj, &min) != NVRTC_SUCCESS) return 0;
  return 1000 * maj + 10 * min;
}

int gpu_nvrtc_archs(int *archs, int max) {
  int n = 0;
  if (lib_nvrtc.status != LIB_OK || gpu_nvrtc.nvrtcGetNumSupportedArchs(&n) != NVRTC_SUCCESS || n <= 0)
    return 0;
  int *all = malloc(sizeof(int) * (size_t)n);
  if (!all) return 0;
  if (gpu_nvrtc.nvrtcGetSupportedArchs(all) != NVRTC_SUCCESS) {
    free(all);
    return 0;
  }
  int k = n < max ? n : max;
  memcpy(archs, all, sizeof(int) * (size_t)k);
  free(all);
  return k;
}

int gpu_nvrtc_has_cubin(void) {
  return lib_nvrtc.status == LIB_OK && gpu_nvrtc.nvrtcGetCUBIN != stub_nvrtcGetCUBIN &&
         gpu_nvrtc.nvrtcGetCUBINSize != stub_nvrtcGetCUBINSize;
}

/* NVRTC's log, or NULL when it is empty or only whitespace */
static char *program_log(nvrtcProgram prog) {
  size_t n = 0;
  if (gpu_nvrtc.nvrtcGetProgramLogSize(prog, &n) != NVRTC_SUCCESS || n <= 1) return NULL;
  char *s = malloc(n + 1);
  if (!s) return NULL;
  if (gpu_nvrtc.nvrtcGetProgramLog(prog, s) != NVRTC_SUCCESS) {
    free(s);
    return NULL;
  }
  s[n] = '\0';
  for (const char *t = s; *t; t++)
    if (*t != ' ' && *t != '\n' && *t != '\t' && *t != '\r') return s;
  free(s);
  return NULL;
}

int gpu_nvrtc_compile(const char *src, const char *name, const char *arch, int cubin, char **blob,
                      size_t *len, char **log, rk_error *err) {
  *blob = NULL;
  *len = 0;
  if (log) *log = NULL;
  if (gpu_nvrtc_load(err) != RK_OK) return err->code;
  nvrtcProgram prog = NULL;
  nvrtcResult rc = gpu_nvrtc.nvrtcCreateProgram(&prog, src, name, 0, NULL, NULL);
  if (rc != NVRTC_SUCCESS) {
    rk_seterr(err, RK_EBUILD, -1, "NVRTC could not create a program: %s (%d)", nvrtc_name(rc), rc);
    return err->code;
  }
  char archopt[64];
  snprintf(archopt, sizeof archopt, "--gpu-architecture=%s", arch);
  const char *opts[] = {archopt};
  rc = gpu_nvrtc.nvrtcCompileProgram(prog, 1, opts);
  char *plog = program_log(prog);
  int out = RK_OK;
  if (rc != NVRTC_SUCCESS) {
    rk_seterr(err, RK_EBUILD, -1, "NVRTC failed to compile the GPU kernel for %s: %s (%d)", arch,
              nvrtc_name(rc), rc);
    if (plog) {
      free(err->log);
      err->log = strdup(plog);
    }
    out = err->code;
  } else {
    size_t n = 0;
    rc = cubin ? gpu_nvrtc.nvrtcGetCUBINSize(prog, &n) : gpu_nvrtc.nvrtcGetPTXSize(prog, &n);
    char *b = rc == NVRTC_SUCCESS && n > 0 ? malloc(n + 1) : NULL;
    if (b) rc = cubin ? gpu_nvrtc.nvrtcGetCUBIN(prog, b) : gpu_nvrtc.nvrtcGetPTX(prog, b);
    if (rc != NVRTC_SUCCESS || !b) {
      free(b);
      if (rc == NVRTC_SUCCESS) rk_seterr(err, RK_ENOMEM, -1, "out of memory");
      else rk_seterr(err, RK_EBUILD, -1, "NVRTC did not return the compiled %s: %s (%d)",
                     cubin ? "CUBIN" : "PTX", nvrtc_name(rc), rc);
      out = err->code;
    } else {
      b[n] = '\0';
      *blob = b;
      *len = n;
    }
  }
  gpu_nvrtc.nvrtcDestroyProgram(&prog);
  if (log) *log = plog;
  else free(plog);
  return out;
}

/* ------------------------------------------------------------ status */

const char *rk_gpu_status_name(int status) {
  switch (status) {
  case RK_GPU_OK: return "ok";
  case RK_GPU_NO_DRIVER: return "no-driver";
  case RK_GPU_NO_NVRTC: return "no-nvrtc";
  case RK_GPU_INIT_FAILED: return "init-failed";
  case RK_GPU_NO_DEVICE: return "no-device";
  case RK_GPU_UNSUPPORTED: return "unsupported";
  default: return "unknown";
  }
}

static void report_lib(rk_buf *b, const gpu_lib *L) {
  buf_printf(b, "  load attempts for %s:\n", L->what);
  const char *s = L->attempts;
  while (*s) {
    const char *e = strchr(s, '\n');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    buf_printf(b, "    %.*s\n", (int)n, s);
    s += n + (e ? 1 : 0);
  }
  if (L->status == LIB_OK) buf_printf(b, "    %s: loaded\n", L->name);
  if (L->missing[0]) buf_printf(b, "    symbols missing (bound to stubs): %s\n", L->missing);
}

static int probe(rk_buf *b) {
  rk_error e;
  rk_error_init(&e);
  int status;
#ifdef __APPLE__
  lib_load(&lib_cuda);
  lib_load(&lib_nvrtc);
  status = RK_GPU_UNSUPPORTED;
  if (b) buf_puts(b, "GPU backend: not available (CUDA does not exist on macOS)\n");
  return status;
#endif
  int drv = driver_init(&e) == RK_OK;
  int nv = lib_load(&lib_nvrtc);
  if (lib_cuda.status != LIB_OK) status = RK_GPU_NO_DRIVER;
  else if (!drv && !(drv_state < 0 && drv_rc == CUDA_ERROR_NO_DEVICE)) status = RK_GPU_INIT_FAILED;
  else if (!drv || ndev < 1) status = RK_GPU_NO_DEVICE;
  else if (!nv) status = RK_GPU_NO_NVRTC;
  else status = RK_GPU_OK;
  if (!b) {
    rk_error_clear(&e);
    return status;
  }
  static const char *what[] = {
    "available", "not available: the CUDA driver (libcuda) could not be loaded",
    "not available: NVRTC (libnvrtc) could not be loaded",
    "not available: the CUDA driver could not be initialised",
    "not available: the CUDA driver sees no GPU device", "not available"};
  buf_printf(b, "GPU backend: %s\n", what[status]);
  if (lib_cuda.status == LIB_OK) {
    buf_printf(b, "  CUDA driver: %s (%s)", lib_cuda.name, lib_cuda.file[0] ? lib_cuda.file : "?");
    if (drv_state > 0) buf_printf(b, ", CUDA %d.%d\n", drv_version / 1000, (drv_version % 1000) / 10);
    else buf_printf(b, ", cuInit failed: %s (%d: %s)\n", cu_name(drv_rc), drv_rc, cu_text(drv_rc));
  } else {
    buf_puts(b, "  CUDA driver: not found\n");
  }
  if (nv) {
    int v = gpu_nvrtc_version();
    buf_printf(b, "  NVRTC: %s (%s), version %d.%d", lib_nvrtc.name, lib_nvrtc.file[0] ? lib_nvrtc.file : "?",
               v / 1000, (v % 1000) / 10);
    int archs[128];
    int na = gpu_nvrtc_archs(archs, 128);
    if (na > 0) {
      buf_puts(b, ", architectures");
      for (int i = 0; i < na; i++) buf_printf(b, " %d.%d", archs[i] / 10, archs[i] % 10);
    }
    buf_printf(b, "%s\n", gpu_nvrtc_has_cubin() ? ", CUBIN output" : ", PTX output only");
  } else {
    buf_puts(b, "  NVRTC: not found\n");
  }
  if (drv_state > 0) {
    buf_printf(b, "  devices: %d\n", ndev);
    for (int o = 0; o < ndev && o < GPU_MAX_DEVICES; o++) {
      gpu_device d;
      if (device_info(o, &d) != 0) {
        buf_printf(b, "    [%d] cannot be queried\n", o);
        continue;
      }
      buf_printf(b, "    [%d] %s: compute capability %d.%d, %d multiprocessors, %.1f GiB\n", o, d.name,
                 d.cc / 10, d.cc % 10, d.sms, (double)d.mem / 1073741824.0);
    }
  }
  report_lib(b, &lib_cuda);
  report_lib(b, &lib_nvrtc);
  rk_error_clear(&e);
  return status;
}

int rk_gpu_status(char *report, size_t n) {
  rk_buf b;
  buf_init(&b);
  int status = probe(report ? &b : NULL);
  if (report && n > 0) {
    if (b.oom || !b.s) snprintf(report, n, "GPU backend: %s (the report ran out of memory)",
                                rk_gpu_status_name(status));
    else snprintf(report, n, "%s", b.s);
  }
  buf_free(&b);
  return status;
}

int rk_gpu_available(void) { return probe(NULL) == RK_GPU_OK; }

int rk_gpu_device_count(void) {
  probe(NULL);
  return drv_state > 0 ? ndev : 0;
}

/* ------------------------------------------------------------ unload */

void rk_gpu_unload(void) {
  build_memo_drop_backend(RK_BACKEND_GPU);
  while (mods) {
    gpu_mod *m = mods;
    mods = m->next;
    if (m->ordinal < GPU_MAX_DEVICES && ctxs[m->ordinal] &&
        gpu_cu.cuCtxSetCurrent(ctxs[m->ordinal]) == CUDA_SUCCESS)
      gpu_cu.cuModuleUnload(m->mod);
    free(m->image);
    free(m);
  }
  for (int o = 0; o < GPU_MAX_DEVICES; o++) {
    if (!ctxs[o]) continue;
    CUdevice d;
    if (gpu_cu.cuDeviceGet(&d, o) == CUDA_SUCCESS) gpu_cu.cuDevicePrimaryCtxRelease(d);
    ctxs[o] = NULL;
  }
  if (lib_cuda.status == LIB_OK) gpu_cu.cuCtxSetCurrent(NULL);
  gpu_lib *libs[2] = {&lib_cuda, &lib_nvrtc};
  for (int l = 0; l < 2; l++) {
    if (libs[l]->handle) dlclose(libs[l]->handle);
    libs[l]->handle = NULL;
    libs[l]->status = LIB_UNTRIED;
  }
  stub_all_cu();
  stub_all_nvrtc();
  drv_state = 0;
  drv_rc = CUDA_SUCCESS;
  drv_version = ndev = 0;
}
