/*
 * fake_cuda.c -- a stand-in for libcuda (the driver API subset that
 * src/engine/gpu.c binds), for testing the GPU backend on a machine without
 * a GPU (test_gpu_emu.c).  Loaded by the engine through RKEOPS_LIBCUDA like
 * the real one.  "Device" memory is host memory; modules are the shared
 * objects that fake_nvrtc.c builds from the generated CUDA; a launch runs
 * the blocks one after another, each as blockDim.x threads with a barrier
 * for __syncthreads (emu.h).  Launches are synchronous.
 *
 * What it checks, as a device would (an error status, never a crash):
 * launches with more shared memory than 48 KiB or than the module has,
 * grids beyond the limits, copies from or to memory that is not a live
 * allocation or that overrun it, frees of unknown pointers, calls without a
 * current context.  Shared memory is filled with NaN before each block, so
 * a kernel reading a tile before it is written computes NaN.
 *
 * Several devices: each has its own context; an allocation, a module
 * and a launch belong to the device whose context was current, and copies,
 * frees and launches with another device's context current fail
 * (CUDA_ERROR_INVALID_VALUE / INVALID_CONTEXT), as a device would.
 *
 * For the tests: fakecuda_live_allocations() (device memory not freed),
 * fakecuda_live_allocations_on(dev), fakecuda_launches() (kernels
 * launched), fakecuda_launches_on(dev), fakecuda_errors() (calls that
 * failed), fakecuda_fail_alloc_in(n), fakecuda_fail_launch(on) and
 * fakecuda_fail_launch_on(dev) (failure injection: every launch, or those
 * on one device), fakecuda_shutdown() (the launch threads return).  Environment: FAKECUDA_CC (compute capability, default 86),
 * FAKECUDA_SMS (multiprocessors, default 4; FAKECUDA_SMS1 for device 1
 * alone), FAKECUDA_NDEV (devices,
 * default 1), FAKECUDA_FAIL_INIT (cuInit fails).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

enum {
  OK = 0, E_VALUE = 1, E_OOM = 2, E_NOT_INIT = 3, E_NO_DEVICE = 100, E_INVALID_DEVICE = 101,
  E_INVALID_IMAGE = 200, E_INVALID_CONTEXT = 201, E_NOT_FOUND = 500, E_LAUNCH = 719,
  E_UNKNOWN = 999
};

static int inited, nlaunch, nerrors;
static int current = -1;            /* the device whose context is current */
static int dev_launches[64];

static int env_int(const char *name, int dflt) {
  const char *s = getenv(name);
  return s && *s ? atoi(s) : dflt;
}
static CUresult fail(CUresult rc) {
  nerrors++;
  return rc;
}

/* ------------------------------------------------------------ test hooks */

typedef struct alloc { void *p; size_t n; int dev; struct alloc *next; } alloc;
static alloc *allocs;

int fakecuda_live_allocations(void) {
  int n = 0;
  for (alloc *a = allocs; a; a = a->next) n++;
  return n;
}
int fakecuda_live_allocations_on(int dev) {
  int n = 0;
  for (alloc *a = allocs; a; a = a->next) n += a->dev == dev;
  return n;
}
int fakecuda_launches(void) { return nlaunch; }
int fakecuda_launches_on(int dev) { return dev >= 0 && dev < 64 ? dev_launches[dev] : 0; }
int fakecuda_errors(void) { return nerrors; }

/* failure injection: the n-th cuMemAlloc from now fails (0: none); every
 * launch fails while launch_fail is set */
static int alloc_countdown, launch_fail, launch_fail_dev = -1;
void fakecuda_fail_alloc_in(int n) { alloc_countdown = n; }
void fakecuda_fail_launch(int on) {
  launch_fail = on;
  launch_fail_dev = -1;
}
void fakecuda_fail_launch_on(int dev) {
  launch_fail = dev >= 0;
  launch_fail_dev = dev;
}

/* ------------------------------------------------------------ init, devices */

CUresult cuInit(unsigned int flags) {
  if (flags != 0) return fail(E_VALUE);
  if (getenv("FAKECUDA_FAIL_INIT")) return fail(E_UNKNOWN);
  inited = 1;
  return OK;
}

CUresult cuDriverGetVersion(int *v) {
  *v = 12040;
  return OK;
}

static int ndev(void) { return env_int("FAKECUDA_NDEV", 1); }

CUresult cuDeviceGetCount(int *n) {
  if (!inited) return fail(E_NOT_INIT);
  *n = ndev();
  return OK;
}

CUresult cuDeviceGet(int *dev, int ordinal) {
  if (!inited) return fail(E_NOT_INIT);
  if (ordinal < 0 || ordinal >= ndev()) return fail(E_INVALID_DEVICE);
  *dev = ordinal;
  return OK;
}

CUresult cuDeviceGetName(char *name, int len, int dev) {
  if (dev < 0 || dev >= ndev()) return fail(E_INVALID_DEVICE);
  snprintf(name, (size_t)len, "rkeops fake GPU %d (CPU emulation)", dev);
  return OK;
}

CUresult cuDeviceGetAttribute(int *v, int attrib, int dev) {
  if (dev < 0 || dev >= ndev()) return fail(E_INVALID_DEVICE);
  int cc = env_int("FAKECUDA_CC", 86);
  switch (attrib) {
  case 5: *v = 0x7fffffff; break;                    /* max grid x */
  case 6: *v = 65535; break;                         /* max grid y */
  case 8: *v = 49152; break;                         /* shared memory per block */
  case 16:                                           /* multiprocessors */
    *v = env_int(dev == 1 && getenv("FAKECUDA_SMS1") ? "FAKECUDA_SMS1" : "FAKECUDA_SMS", 4);
    break;
  case 75: *v = cc / 10; break;
  case 76: *v = cc % 10; break;
  case 97: *v = 49152; break;
  default: return fail(E_VALUE);
  }
  return OK;
}

CUresult cuDeviceTotalMem_v2(size_t *bytes, int dev) {
  if (dev < 0 || dev >= ndev()) return fail(E_INVALID_DEVICE);
  *bytes = (size_t)1 << 32;
  return OK;
}

static int retained[64];

CUresult cuDevicePrimaryCtxRetain(void **ctx, int dev) {
  if (!inited) return fail(E_NOT_INIT);
  if (dev < 0 || dev >= ndev() || dev >= 64) return fail(E_INVALID_DEVICE);
  retained[dev]++;
  *ctx = (void *)(uintptr_t)(0x1000 + dev);
  return OK;
}

CUresult cuDevicePrimaryCtxRelease_v2(int dev) {
  if (dev < 0 || dev >= ndev() || dev >= 64 || retained[dev] <= 0) return fail(E_INVALID_DEVICE);
  retained[dev]--;
  return OK;
}

CUresult cuCtxSetCurrent(void *ctx) {
  if (ctx == NULL) {
    current = -1;
    return OK;
  }
  uintptr_t c = (uintptr_t)ctx;
  if (c < 0x1000 || c >= 0x1000 + 64 || retained[c - 0x1000] <= 0) return fail(E_INVALID_CONTEXT);
  current = (int)(c - 0x1000);
  return OK;
}

CUresult cuCtxSynchronize(void) { return current >= 0 ? OK : fail(E_INVALID_CONTEXT); }

/* ------------------------------------------------------------ memory */

CUresult cuMemGetInfo_v2(size_t *fr, size_t *tot) {
  *fr = (size_t)1 << 31;
  *tot = (size_t)1 << 32;
  return OK;
}

CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) {
  if (current < 0) return fail(E_INVALID_CONTEXT);
  if (n == 0) return fail(E_VALUE);
  if (alloc_countdown > 0 && --alloc_countdown == 0) return fail(E_OOM);
  alloc *a = malloc(sizeof *a);
  void *m = malloc(n);
  if (!a || !m) {
    free(a);
    free(m);
    return fail(E_OOM);
  }
  memset(m, 0xA5, n);  /* garbage, as device memory is */
  a->p = m;
  a->n = n;
  a->dev = current;
  a->next = allocs;
  allocs = a;
  *p = (CUdeviceptr)(uintptr_t)m;
  return OK;
}

CUresult cuMemFree_v2(CUdeviceptr p) {
  for (alloc **pp = &allocs; *pp; pp = &(*pp)->next) {
    if ((uintptr_t)(*pp)->p == p) {
      if ((*pp)->dev != current) return fail(E_INVALID_CONTEXT);
      alloc *a = *pp;
      *pp = a->next;
      free(a->p);
      free(a);
      return OK;
    }
  }
  return fail(E_VALUE);
}

/* a live allocation of the current device holding [p, p + n) */
static int valid(CUdeviceptr p, size_t n) {
  for (alloc *a = allocs; a; a = a->next) {
    uintptr_t b = (uintptr_t)a->p;
    if (p >= b && p + n <= b + a->n) return a->dev == current;
  }
  return 0;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) {
  if (current < 0) return fail(E_INVALID_CONTEXT);
  if (!valid(dst, n)) return fail(E_VALUE);
  memcpy((void *)(uintptr_t)dst, src, n);
  return OK;
}

CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) {
  if (current < 0) return fail(E_INVALID_CONTEXT);
  if (!valid(src, n)) return fail(E_VALUE);
  memcpy(dst, (const void *)(uintptr_t)src, n);
  return OK;
}

/* ------------------------------------------------------------ modules */

typedef void (*set_fn)(const unsigned *, const unsigned *, const unsigned *, const unsigned *,
                       pthread_barrier_t *);
typedef struct function function;
typedef struct module {
  void *dl;
  set_fn set;
  double *smem;
  size_t smem_bytes;
  int dev;         /* loaded on this device: launched only there */
  function *fns;   /* handed out by cuModuleGetFunction, freed with the module */
} module;

struct function {
  module *mod;
  void *fn;
  int kind;  /* 0 rk_cuda_entry, 1 rk_cuda_merge */
  function *next;
};

static int nmodules;

CUresult cuModuleLoadDataEx(module **out, const void *image, unsigned int nopt, int *opts,
                            void **vals) {
  if (current < 0) return fail(E_INVALID_CONTEXT);
  /* the engine asks for an error log: write into it, as the driver does */
  for (unsigned k = 0; k < nopt; k++)
    if (opts[k] == 5 && vals[k]) ((char *)vals[k])[0] = '\0';
  const char *im = image;
  if (memcmp(im, "RKFAKEMOD", 9) != 0) return fail(E_INVALID_IMAGE);
  unsigned long long len;
  memcpy(&len, im + 9, 8);
  char path[] = "/tmp/fakecuda-module-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return fail(E_UNKNOWN);
  int ok = write(fd, im + 17, (size_t)len) == (ssize_t)len;
  close(fd);
  void *dl = ok ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
  remove(path);
  if (!dl) {
    for (unsigned k = 0; k < nopt; k++)
      if (opts[k] == 5 && vals[k]) snprintf(vals[k], 256, "fake cuda: %s", dlerror());
    return fail(E_INVALID_IMAGE);
  }
  module *m = calloc(1, sizeof *m);
  if (!m) {
    dlclose(dl);
    return fail(E_OOM);
  }
  m->dl = dl;
  m->dev = current;
  void *s = dlsym(dl, "rk_emu_set");
  memcpy(&m->set, &s, sizeof s);
  m->smem = dlsym(dl, "rk_smem");
  unsigned long *nb = dlsym(dl, "rk_smem_bytes");
  m->smem_bytes = nb ? *nb : 0;
  if (!m->set || !m->smem) {
    dlclose(dl);
    free(m);
    return fail(E_INVALID_IMAGE);
  }
  nmodules++;
  *out = m;
  return OK;
}

CUresult cuModuleUnload(module *m) {
  if (!m) return fail(E_VALUE);
  while (m->fns) {
    function *f = m->fns;
    m->fns = f->next;
    free(f);
  }
  dlclose(m->dl);
  free(m);
  nmodules--;
  return OK;
}

CUresult cuModuleGetFunction(function **out, module *m, const char *name) {
  if (!m) return fail(E_VALUE);
  void *fn = dlsym(m->dl, name);
  if (!fn) return fail(E_NOT_FOUND);
  function *f = malloc(sizeof *f);
  if (!f) return fail(E_OOM);
  f->mod = m;
  f->fn = fn;
  f->kind = strcmp(name, "rk_cuda_merge") == 0;
  f->next = m->fns;
  m->fns = f;
  *out = f;
  return OK;
}

CUresult cuFuncSetAttribute(function *f, int attrib, int value) {
  (void)f; (void)attrib; (void)value;
  return fail(E_VALUE);
}

/* ------------------------------------------------------------ launches */

typedef void (*entry_fn)(long long, long long, long long, long long, const void *const *, double *,
                         void *, long long *, const long long *, const long long *);
typedef void (*merge_fn)(long long, long long, long long, int, double *, const void *,
                         const long long *);

/* A pool of up to 1024 threads, started as launches need them and parked
 * on a semaphore each between blocks (creating a block's threads for every
 * block made the tests slow); thread t runs thread t of every block. */
#define POOL 1024

static struct {
  pthread_mutex_t mu;
  pthread_cond_t done;
  sem_t go[POOL];           /* one post per block for threads < blockDim */
  unsigned remaining;       /* threads yet to finish this block          */
  unsigned started;         /* threads created                            */
  int quit;                 /* fakecuda_shutdown: the threads return      */
  pthread_t th[POOL];
  function *f;              /* the block: kernel, parameters, indices    */
  void **params;
  unsigned b[3], bd[3], gd[3];
  pthread_barrier_t bar;    /* __syncthreads of the block's threads      */
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static void run_kernel(function *f, void **p) {
  if (f->kind == 0) {
    entry_fn fn;
    memcpy(&fn, &f->fn, sizeof fn);
    fn(*(long long *)p[0], *(long long *)p[1], *(long long *)p[2], *(long long *)p[3],
       (const void *const *)(uintptr_t) * (CUdeviceptr *)p[4], (double *)(uintptr_t) * (CUdeviceptr *)p[5],
       (void *)(uintptr_t) * (CUdeviceptr *)p[6], (long long *)(uintptr_t) * (CUdeviceptr *)p[7],
       (const long long *)(uintptr_t) * (CUdeviceptr *)p[8],
       (const long long *)(uintptr_t) * (CUdeviceptr *)p[9]);
  } else {
    merge_fn fn;
    memcpy(&fn, &f->fn, sizeof fn);
    fn(*(long long *)p[0], *(long long *)p[1], *(long long *)p[2], *(int *)p[3],
       (double *)(uintptr_t) * (CUdeviceptr *)p[4], (const void *)(uintptr_t) * (CUdeviceptr *)p[5],
       (const long long *)(uintptr_t) * (CUdeviceptr *)p[6]);
  }
}

static void *pool_thread(void *arg) {
  unsigned t = (unsigned)(uintptr_t)arg;
  for (;;) {
    while (sem_wait(&pool.go[t]) != 0) continue;
    if (pool.quit) return NULL;
    /* the launcher wrote the block before posting: nothing changes until
     * every thread of the block has reported */
    unsigned tid[3] = {t, 0, 0};
    pool.f->mod->set(tid, pool.b, pool.bd, pool.gd, &pool.bar);
    run_kernel(pool.f, pool.params);
    pthread_mutex_lock(&pool.mu);
    if (--pool.remaining == 0) pthread_cond_signal(&pool.done);
    pthread_mutex_unlock(&pool.mu);
  }
  return NULL;
}

/* for the end of a test: the pool's threads return (leak checkers and
 * thread-stopping tools like a process without idle threads) */
void fakecuda_shutdown(void) {
  pool.quit = 1;
  for (unsigned t = 0; t < pool.started; t++) sem_post(&pool.go[t]);
  for (unsigned t = 0; t < pool.started; t++) {
    pthread_join(pool.th[t], NULL);
    sem_destroy(&pool.go[t]);
  }
  pool.started = 0;
  pool.quit = 0;
}

static int pool_grow(unsigned n) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 1 << 20);
  while (pool.started < n) {
    if (sem_init(&pool.go[pool.started], 0, 0) != 0 ||
        pthread_create(&pool.th[pool.started], &attr, pool_thread,
                       (void *)(uintptr_t)pool.started) != 0)
      break;
    pool.started++;
  }
  pthread_attr_destroy(&attr);
  return pool.started >= n ? 0 : -1;
}

CUresult cuLaunchKernel(function *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                        unsigned by, unsigned bz, unsigned shmem, void *stream, void **params,
                        void **extra) {
  if (current < 0) return fail(E_INVALID_CONTEXT);
  if (!f || !params || extra || stream) return fail(E_VALUE);
  if (f->mod->dev != current) return fail(E_INVALID_CONTEXT);
  if (launch_fail && (launch_fail_dev < 0 || launch_fail_dev == current)) return fail(E_LAUNCH);
  if (gx == 0 || gy == 0 || gz != 1 || gy > 65535 || bx == 0 || bx > POOL || by != 1 || bz != 1)
    return fail(E_VALUE);
  if (shmem > 49152 || shmem > f->mod->smem_bytes) return fail(E_VALUE);
  /* the pointers a kernel gets must be live allocations (or NULL scratch) */
  for (int k = 4; k < (f->kind == 0 ? 10 : 7); k++) {
    CUdeviceptr d = *(CUdeviceptr *)params[k];
    if (d && !valid(d, 1)) return fail(E_VALUE);
  }
  if (pool_grow(bx) != 0) return fail(E_LAUNCH);
  for (unsigned y = 0; y < gy; y++) {
    for (unsigned x = 0; x < gx; x++) {
      for (size_t k = 0; k < f->mod->smem_bytes / sizeof(double); k++) f->mod->smem[k] = NAN;
      pthread_barrier_init(&pool.bar, NULL, bx);
      pool.f = f;
      pool.params = params;
      unsigned b[3] = {x, y, 0}, bd[3] = {bx, 1, 1}, gd[3] = {gx, gy, 1};
      memcpy(pool.b, b, sizeof b);
      memcpy(pool.bd, bd, sizeof bd);
      memcpy(pool.gd, gd, sizeof gd);
      pthread_mutex_lock(&pool.mu);
      pool.remaining = bx;
      pthread_mutex_unlock(&pool.mu);
      for (unsigned t = 0; t < bx; t++) sem_post(&pool.go[t]);
      pthread_mutex_lock(&pool.mu);
      while (pool.remaining > 0) pthread_cond_wait(&pool.done, &pool.mu);
      pthread_mutex_unlock(&pool.mu);
      pthread_barrier_destroy(&pool.bar);
    }
  }
  nlaunch++;
  if (current < 64) dev_launches[current]++;
  return OK;
}

/* ------------------------------------------------------------ errors */

static const char *names(CUresult rc, int text) {
  switch (rc) {
  case OK: return text ? "no error" : "CUDA_SUCCESS";
  case E_VALUE: return text ? "invalid argument" : "CUDA_ERROR_INVALID_VALUE";
  case E_OOM: return text ? "out of memory" : "CUDA_ERROR_OUT_OF_MEMORY";
  case E_NOT_INIT: return text ? "initialization error" : "CUDA_ERROR_NOT_INITIALIZED";
  case E_NO_DEVICE: return text ? "no CUDA-capable device is detected" : "CUDA_ERROR_NO_DEVICE";
  case E_INVALID_DEVICE: return text ? "invalid device ordinal" : "CUDA_ERROR_INVALID_DEVICE";
  case E_INVALID_IMAGE: return text ? "device kernel image is invalid" : "CUDA_ERROR_INVALID_IMAGE";
  case E_INVALID_CONTEXT: return text ? "invalid device context" : "CUDA_ERROR_INVALID_CONTEXT";
  case E_NOT_FOUND: return text ? "named symbol not found" : "CUDA_ERROR_NOT_FOUND";
  case E_LAUNCH: return text ? "unspecified launch failure" : "CUDA_ERROR_LAUNCH_FAILED";
  default: return NULL;
  }
}

CUresult cuGetErrorName(CUresult rc, const char **s) {
  *s = names(rc, 0);
  return *s ? OK : E_VALUE;
}

CUresult cuGetErrorString(CUresult rc, const char **s) {
  *s = names(rc, 1);
  return *s ? OK : E_VALUE;
}
