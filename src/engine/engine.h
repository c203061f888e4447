/*
 * engine.h -- the public C API of the rkeops engine.
 *
 * Plain C99, no R headers.  Used by the R glue (src/r_*.c) and by the
 * standalone driver and C tests (tests/engine/).  One section per file,
 * in the order of the data flow:
 *
 *   formula text --lex/parse--> tree (ops table, reductions table, dims)
 *               --emit/cpu----> C source
 *               --build-------> shared object in a content-addressed cache
 *               --run---------> results in caller-provided memory
 *
 * Every entry point returns RK_OK (0) or an error code and fills an
 * rk_error record; nothing here prints, exits or aborts.
 */
#ifndef RK_ENGINE_H
#define RK_ENGINE_H

#include <stddef.h>
#include <stdint.h>

/* Bumped whenever generated code or the cache format changes; part of
 * every cache key and of every cached file name. */
#define RK_ENGINE_VERSION "3"

/* ---------------------------------------------------------------- errors */

enum {
  RK_OK = 0,
  RK_EPARSE,      /* syntax error in the formula or a declaration      */
  RK_EDIM,        /* dimension / category error in the formula          */
  RK_EARG,        /* bad argument to an engine function                 */
  RK_ESHAPE,      /* input data do not match the declarations           */
  RK_EBUILD,      /* the C compiler failed (log in err->log)            */
  RK_ELOAD,       /* dlopen / dlsym failed                              */
  RK_ENOMEM,      /* allocation failed                                  */
  RK_EINTERRUPT,  /* the caller's interrupt callback asked us to stop   */
  RK_EINTERNAL    /* a bug in the engine (message carries file:line)    */
};

typedef struct rk_error {
  int code;           /* RK_OK or one of the codes above                */
  long pos;           /* byte offset in the formula, or -1              */
  int in_decl;        /* >= 0: the error is in declaration number in_decl,
                         pos is an offset in that declaration; -1: formula */
  char msg[1024];     /* one line, no trailing newline                  */
  char *log;          /* compiler output (malloc'd) or NULL             */
} rk_error;

void rk_error_init(rk_error *e);
void rk_error_clear(rk_error *e);            /* frees e->log, resets */
/* Writes "msg\n  formula\n      ^" (caret under e->pos) into buf.
 * text is the formula (or the declaration when e->in_decl >= 0). */
void rk_error_format(const rk_error *e, const char *text, char *buf, size_t n);
const char *rk_error_code_name(int code);

/* --------------------------------------------------------------- options */

typedef enum { RK_F64 = 0, RK_F32 = 1 } rk_precision;
typedef enum {
  RK_SCHEME_AUTO = 0, RK_SCHEME_DIRECT, RK_SCHEME_BLOCK, RK_SCHEME_KAHAN
} rk_scheme;

typedef struct rk_options {
  rk_precision precision;
  rk_scheme scheme;
  const char *cache_dir;  /* folder for compiled kernels; NULL = a folder
                             under $TMPDIR (or /tmp)                     */
  int keep_source;        /* write the generated .c beside the .so       */
  int backend;            /* RK_BACKEND_CPU (0, default) or RK_BACKEND_GPU */
  int device;             /* GPU ordinal; -1 = the default device (0)     */
  /* asked every few tens of milliseconds while the C compiler runs (on the
   * calling thread); nonzero: the compiler is stopped and the compilation
   * fails with RK_EINTERRUPT, the cache folder left as it was.  NULL: none */
  int (*intr)(void *data);
  void *intr_data;
} rk_options;

void rk_options_default(rk_options *o);

/* -------------------------------------------------------------- kernels */

/* Categories of variables, as in Var(pos, dim, cat). */
enum { RK_CAT_I = 0, RK_CAT_J = 1, RK_CAT_PM = 2 };

typedef struct rk_arginfo {
  char name[64];   /* alias from the declaration ("" for inline Var)  */
  int pos;         /* position in the input list, 0-based              */
  int cat;         /* RK_CAT_I, RK_CAT_J or RK_CAT_PM                   */
  int dim;         /* number of columns (or length of a parameter)      */
} rk_arginfo;

/* How the compiled result was obtained, for messages and tests. */
enum { RK_FROM_MEMO = 0, RK_FROM_DISK = 1, RK_FROM_COMPILER = 2 };

typedef struct rk_kernel rk_kernel;  /* owned by the engine's memo */

/* Parses, checks, generates, builds (or finds in the cache) and loads the
 * kernel for `formula` with declarations decls[0..ndecls-1] such as
 * "x = Vi(3)" or "y = Vj(1, 3)".  On success *out points to a kernel that
 * lives until rk_unload_all(); on failure *out is NULL and err is set. */
int rk_compile(const char *formula, const char *const *decls, int ndecls,
               const rk_options *opt, rk_kernel **out, rk_error *err);

/* Only the front end: parse + dims + emit, no build.  *src gets the
 * generated C source (malloc'd, caller frees) when src is not NULL. */
int rk_generate(const char *formula, const char *const *decls, int ndecls,
                const rk_options *opt, char **src, rk_error *err);

int rk_kernel_nargs(const rk_kernel *k);
const rk_arginfo *rk_kernel_arg(const rk_kernel *k, int pos);
int rk_kernel_outcat(const rk_kernel *k);   /* RK_CAT_I: one row per i  */
int rk_kernel_outdim(const rk_kernel *k);   /* columns of the result    */
const char *rk_kernel_reduction(const rk_kernel *k); /* "Sum", ...      */
int rk_kernel_redparam(const rk_kernel *k); /* K for KMin..., else 0    */
int rk_kernel_from(const rk_kernel *k);     /* RK_FROM_* of last compile */
double rk_kernel_build_seconds(const rk_kernel *k);
const char *rk_kernel_hash(const rk_kernel *k); /* 64 hex chars */
const char *rk_kernel_path(const rk_kernel *k); /* shared object */
/* For splitting a run over processes (R/future.R): 1 when the result is
 * the sum over its rows of per-row values (a parameter's gradient; the
 * rows are those of rk_kernel_outcat), and the output category of the
 * forward kernel a gradient runs first (-1: none). */
int rk_kernel_postsum(const rk_kernel *k);
int rk_kernel_pre_outcat(const rk_kernel *k);

/* The cache folder that the last compilation could not use (it fell back
 * to a temporary folder), or NULL. */
const char *rk_cache_fallback(void);

/* Unloads every kernel (dlclose) and empties the memo. */
void rk_unload_all(void);

/* ------------------------------------------------------------------ run */

typedef struct rk_input {
  const double *data;  /* column-major nrow x ncol (R's layout)         */
  int64_t nrow;
  int64_t ncol;
} rk_input;

/* Returns nonzero when the run must stop (user interrupt).  Called on the
 * calling thread only, between chunks of rows. */
typedef int (*rk_interrupt_fn)(void *data);

/* Checks every input against the declarations (decision 8) and returns the
 * number of output rows in *nout.  in[p] is the input at position p. */
int rk_check_inputs(const rk_kernel *k, const rk_input *in, int nin,
                    int64_t *nout, rk_error *err);

/* Runs the kernel.  out is column-major nout x outdim doubles (nout from
 * rk_check_inputs).  nthreads <= 0 means "the default".  Index results are
 * written 1-based, as doubles (exact below 2^53). */
int rk_run(const rk_kernel *k, const rk_input *in, int nin, double *out,
           int nthreads, rk_interrupt_fn intr, void *intr_data,
           rk_error *err);

/* rk_run for a GPU kernel on several devices in this process: the output
 * rows of each launch chunk are shared among devices[0 .. ndevices-1] (in
 * proportion to their multiprocessors), each with its own copy of the
 * inputs and its own context; a gradient's forward kernel and row sums run
 * the same way.  The kernel is loaded on every device from the binary
 * compiled for its own (rk_options.device), so the devices must be able to
 * run it (one architecture).  The plan of chunks and reduced-index splits
 * is the first device's: the result is bit for bit the one of rk_run on
 * devices[0] alone.  RK_EARG: a CPU kernel, no device, a device listed
 * twice or one the driver does not have (the message says which). */
int rk_run_devices(const rk_kernel *k, const int *devices, int ndevices, const rk_input *in,
                   int nin, double *out, rk_interrupt_fn intr, void *intr_data,
                   rk_error *err);

/* Block-sparse reductions (KeOps' "ranges"): the output rows are cut into
 * blocks, and block b is reduced only over its own list of ranges of the
 * reduced index.  All indices are 0-based, ranges half-open:
 *   blocks[2b], blocks[2b+1]    rows [start, end) of block b (blocks sorted,
 *                               disjoint; rows in no block get the
 *                               reduction of nothing: 0 for a Sum, Inf for
 *                               a Min...)
 *   slices[b]                   end of block b's ranges in red (they start
 *                               at slices[b-1], at 0 for b = 0)
 *   red[2s], red[2s+1]          reduced indices [start, end) of range s
 * The same format as PyKeOps' ranges_i / slices_i / redranges_j. */
typedef struct rk_ranges {
  int64_t nblocks;
  const int64_t *blocks;
  const int64_t *slices;
  int64_t nred;
  const int64_t *red;
} rk_ranges;

/* rk_run restricted to ranges: r_out_i is used by kernels whose output
 * rows are the i index (reductions over j), r_out_j by those over i (a
 * gradient may run one of each: its forward kernel and itself); either may
 * be NULL when no kernel needs it.  CPU and GPU (on the kernel's own
 * device: there is no block-sparse run over several devices).  RK_EARG
 * when the ranges are inconsistent (the message says which entry). */
int rk_run_ranges(const rk_kernel *k, const rk_input *in, int nin, double *out,
                  const rk_ranges *r_out_i, const rk_ranges *r_out_j, int nthreads,
                  rk_interrupt_fn intr, void *intr_data, rk_error *err);

/* Runs split over the reduced index (R/future.R), CPU kernels that are
 * not gradients with a forward kernel or a row sum (RK_EARG otherwise).
 * rk_partial_bytes: the bytes of one row's state (-1 and err set on
 * failure).  rk_run_partial: like rk_run, but writes the states of the
 * nout rows over all the reduced indices of the inputs, not finalized, into
 * states (nout * rk_partial_bytes bytes).  rk_merge_partials: states holds
 * nparts such arrays of nrows states, part t computed on the reduced
 * indices starting at offsets[t] (0-based; index results are shifted by
 * it); merges them into part 0 in part order and finalizes into out
 * (nrows x outdim doubles, column-major).  states is overwritten. */
int64_t rk_partial_bytes(const rk_kernel *k, rk_error *err);
int rk_run_partial(const rk_kernel *k, const rk_input *in, int nin, void *states,
                   int nthreads, rk_interrupt_fn intr, void *intr_data, rk_error *err);
int rk_merge_partials(const rk_kernel *k, int64_t nrows, int nparts, void *states,
                      const int64_t *offsets, double *out, rk_error *err);

/* The single thread-count getter (guideline 6): honours OMP_THREAD_LIMIT,
 * OMP_NUM_THREADS, the requested count (<= 0: all cores) and a small-work
 * throttle (work = number of pairs). */
int rk_threads(int requested, double work);
int rk_ncores(void);
/* 1 in a process forked (fork(), parallel::mclapply) after this process
 * or one of its ancestors asked for a team of threads: its kernels then
 * run on one thread, since the OpenMP pool does not survive fork(). */
int rk_forked_single(void);
/* Threads the last rk_run really used (1 without OpenMP). */
int rk_last_threads(void);

/* -------------------------------------------------------------- toolchain */

typedef struct rk_toolchain {
  const char *cc;          /* compiler command, e.g. "gcc"              */
  const char *cflags;      /* JIT flags, e.g. "-O3 -march=native"       */
  const char *openmp;      /* OpenMP flags or ""                        */
  int have_openmp;
} rk_toolchain;

const rk_toolchain *rk_toolchain_get(void);
/* Overrides (NULL keeps the recorded value); used by tests and options. */
void rk_toolchain_set(const char *cc, const char *cflags, const char *openmp,
                      int have_openmp);

/* -------------------------------------------------------------------- GPU */

/* The GPU backend (gpu.c, cuda.c).  libcuda (the driver) and libnvrtc are
 * found with dlopen on first use, so the package builds and runs with no
 * CUDA anywhere.  Order tried: the path in RKEOPS_LIBCUDA / RKEOPS_LIBNVRTC,
 * then libcuda.so.1 (libnvrtc.so.13, .so.12, .so.11.2), the unversioned
 * name, then the same names in $CUDA_HOME/lib64 and /usr/local/cuda/lib64.
 *
 * rk_compile with opt->backend == RK_BACKEND_GPU generates CUDA, compiles it
 * with NVRTC for the device's architecture (CUBIN, or PTX that the driver
 * compiles when the device is newer than NVRTC knows) through the same
 * cache folder, and loads it on device opt->device; rk_run then runs it on
 * that device (inputs copied per call, results copied back, device memory
 * freed on every path).  Errors: RK_ELOAD (no driver, no NVRTC, no device,
 * module load), RK_EBUILD (NVRTC, log in err->log), RK_EARG (bad device),
 * RK_EDIM (formula beyond the GPU scheme's limits, see cuda.c), RK_ENOMEM
 * (device memory), RK_EINTERNAL (a failed launch: message names the CUDA
 * error). */
enum { RK_BACKEND_CPU = 0, RK_BACKEND_GPU = 1 };

/* Outcome of the GPU probe (rk_gpu_status) */
enum {
  RK_GPU_OK = 0,        /* driver, NVRTC and at least one device          */
  RK_GPU_NO_DRIVER,     /* libcuda could not be loaded                     */
  RK_GPU_NO_NVRTC,      /* libnvrtc could not be loaded                    */
  RK_GPU_INIT_FAILED,   /* cuInit failed (driver/kernel module mismatch...) */
  RK_GPU_NO_DEVICE,     /* the driver sees no device                       */
  RK_GPU_UNSUPPORTED    /* no CUDA on this platform (macOS)                */
};

/* Probes everything (loads the libraries, initialises the driver, lists the
 * devices) and writes a situation report of several lines into report
 * (n bytes, always terminated; may be NULL): driver found and version,
 * NVRTC found, version and architectures, devices with name, compute
 * capability and memory, and every load attempt with its dlerror text.
 * Returns RK_GPU_OK or one of the RK_GPU_* codes above. */
int rk_gpu_status(char *report, size_t n);
/* Short name of an RK_GPU_* code: "ok", "no-driver", ... */
const char *rk_gpu_status_name(int status);
/* 1 when rk_gpu_status() would return RK_GPU_OK (probed once, cached) */
int rk_gpu_available(void);
/* the number of devices the driver sees (0 without a usable driver) */
int rk_gpu_device_count(void);

/* Compile-only check, no GPU needed (only libnvrtc): generates the CUDA
 * source of the formula (every kernel of it: a gradient's forward kernel
 * too) and compiles it with NVRTC for arch: "compute_75" gives PTX,
 * "sm_75" a CUBIN.  *log gets NVRTC's output (malloc'd, caller frees; NULL
 * when empty).  RK_ELOAD when libnvrtc cannot be loaded (err->msg lists
 * the attempts), RK_EBUILD when NVRTC fails (the log is also in err->log). */
int rk_nvrtc_compile_check(const char *formula, const char *const *decls, int ndecls,
                           const rk_options *opt, const char *arch, char **log,
                           rk_error *err);

/* Forgets the GPU kernels of the memo, unloads their modules, releases the
 * primary contexts and closes libcuda and libnvrtc (the package's unload
 * hook; the next GPU use loads everything again). */
void rk_gpu_unload(void);

#endif
