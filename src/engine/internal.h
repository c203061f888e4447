/*
 * internal.h -- types shared by the engine's files (not part of the API).
 *
 * A compilation owns one rk_ctx: an arena for every node, string and
 * table it makes, a jmp_buf that engine errors long-jump to (the public
 * entry points are the only setjmp sites), and the hash-consing table.
 */
#ifndef RK_INTERNAL_H
#define RK_INTERNAL_H

#include <setjmp.h>
#include <stdarg.h>
#include "engine.h"

#define RK_MAX_ARGS 256        /* variables per formula                  */
#define RK_MAX_DIM 100000      /* inner dimension of any node            */
#define RK_MAX_DEPTH 200       /* parser nesting                         */
#define RK_MAX_KIDS 3
#define RK_MAX_PARAMS 32       /* integer parameters (lists included)    */
#define RK_MAX_FORMULA (1 << 20)
#define RK_MAX_NODES 10000      /* distinct subexpressions per formula  */

/* ------------------------------------------------------------ arena */

typedef struct rk_chunk rk_chunk;
typedef struct rk_arena { rk_chunk *head; } rk_arena;

/* ------------------------------------------------------------ ops table */

typedef struct rk_node rk_node;
typedef struct rk_ctx rk_ctx;
typedef struct rk_emit rk_emit;

#define X(id, name, arity, npar, dimrule, emitter, tmpl, fn, rname, deriv, flags) RK_OP_##id,
enum rk_op_id {
#include "ops.def"
  RK_OP_COUNT
};
#undef X

/* flags of an op row */
enum {
  OPF_EW = 1,         /* element-wise, broadcasts dim-1 operands         */
  OPF_FOLD = 2,       /* constant-foldable                                */
  OPF_NODIFF = 4,     /* explicitly not differentiable                    */
  OPF_ZERODIFF = 8,   /* derivative is zero (piecewise constant, consts)  */
  OPF_LEAF = 16,      /* variable or constant: no operands                */
  OPF_INTERNAL = 32,  /* not reachable by name from formulas              */
  OPF_LISTS = 64,     /* parameters are npar integer lists [a, b, ...],   *
                       * stored as (length, items...) one after another   */
  OPF_OPTLIST = 128   /* with OPF_LISTS: one more optional list           */
};

typedef int (*rk_dim_fn)(rk_ctx *c, rk_node *n);
typedef void (*rk_emit_fn)(rk_emit *e, const rk_node *n);
/* cotangent of operand i of n, given the cotangent g of n (NULL: none) */
typedef rk_node *(*rk_diff_fn)(rk_ctx *c, rk_node *n, int i, rk_node *g);

typedef struct rk_op {
  const char *name;
  int arity;        /* formula operands                                   */
  int npar;         /* integer parameters, written after the operands     */
  rk_dim_fn dim;
  rk_emit_fn emit;
  const char *tmpl; /* element template for OPF_EW ops, else NULL         */
  const char *fn;   /* the C math function of $f in tmpl ("sin"), or NULL */
  const char *rname;/* the R generic or function that is exactly this op  */
  rk_diff_fn diff;
  int flags;
} rk_op;

extern const rk_op rk_ops[RK_OP_COUNT];

/* the derivative rules named in ops.def (diff.c) */
#define X(id, name, arity, npar, dimrule, emitter, tmpl, fn, rname, deriv, flags) \
  rk_node *deriv(rk_ctx *c, rk_node *n, int i, rk_node *g);
#include "ops.def"
#undef X
int ops_lookup(const char *name, size_t len);   /* -1 when unknown */

/* ------------------------------------------------------------ reductions */

#define X(id, name, nextra, hasK, shape, init, update, tile, merge, fin, deriv, flags) RK_RED_##id,
enum rk_red_id {
#include "reductions.def"
  RK_RED_COUNT
};
#undef X

enum {
  REDF_SUMLIKE = 1,     /* the sum schemes (block, Kahan) apply             */
  REDF_MAX = 2,         /* the max variant of a min-type row                */
  REDF_INDEX = 4,       /* the result holds indices                         */
  REDF_VALUE = 8,       /* the result holds values (with REDF_INDEX: both)  */
  REDF_ACC_DOUBLE = 16  /* accumulate in double whatever the precision      */
};

typedef struct rk_red rk_red;
/* Accumulator names in generated code: v = value slots (acc_t), i = index
 * slots (int64_t). */
typedef struct rk_acc { const char *v; const char *i; } rk_acc;
typedef void (*rk_red_shape_fn)(rk_ctx *c, rk_red *r);
typedef void (*rk_red_init_fn)(rk_emit *e, const rk_red *r, rk_acc A);
/* f, g: value and weight array names; j: the reduced index (int64_t) */
typedef void (*rk_red_update_fn)(rk_emit *e, const rk_red *r, rk_acc A, const char *f,
                                 const char *g, const char *j);
/* update over a whole tile (CPU buffered path): fb[k][0 .. n) holds the
 * formula's component k for the tile's n reduced indices j0 .. j0 + n - 1,
 * gb[w][0 .. n) the weight's (gb NULL without weight); n and j0 are int64_t
 * expressions.  The emitted code may overwrite fb. */
typedef void (*rk_red_tile_fn)(rk_emit *e, const rk_red *r, rk_acc A, const char *fb,
                               const char *gb, const char *n, const char *j0);
typedef void (*rk_red_merge_fn)(rk_emit *e, const rk_red *r, rk_acc A, rk_acc B);
/* o: output pointer of the row, s: column stride */
typedef void (*rk_red_final_fn)(rk_emit *e, const rk_red *r, rk_acc A, const char *o,
                                const char *s);

typedef struct rk_redop {
  const char *name;       /* "Sum" for Sum_Reduction                       */
  int nextra;             /* weight formulas before the axis               */
  int hasK;               /* takes an integer K before the axis            */
  rk_red_shape_fn shape;  /* checks dims, sets r->acc, r->idx, r->out      */
  rk_red_init_fn init;
  rk_red_update_fn update;
  rk_red_tile_fn tile;    /* NULL: the CPU backend calls update per index */
  rk_red_merge_fn merge;
  rk_red_final_fn finalize;
  void *deriv;            /* gradient rule (autodiff issue)                */
  int flags;
} rk_redop;

extern const rk_redop rk_redops[RK_RED_COUNT];
int red_lookup(const char *name, size_t len);   /* -1 when unknown */

/* ------------------------------------------------------------ tree */

struct rk_node {
  int op;
  int nkids;
  rk_node *kid[RK_MAX_KIDS];
  int par[RK_MAX_PARAMS];  /* VAR: pos, dim, cat                         */
  int dim;
  int deps;                /* bit RK_CAT_I/J/PM set when it depends on it */
  int id;                  /* creation order: a topological order         */
  long pos;                /* offset in the formula (first occurrence)    */
  unsigned hash;
  rk_node *hnext;
};

#define DEP_I 1
#define DEP_J 2
#define DEP_PM 4

struct rk_red {
  int postsum;             /* sum the result over its rows (Pm gradients)  */
  int pre_pos;             /* >= 0: input fed by the forward reduction
                              c->pre, computed by a first kernel          */
  int red;                 /* RK_RED_...                                  */
  rk_node *f;              /* the formula                                 */
  rk_node *g;              /* weight formula or NULL                      */
  int K;                   /* K for KMin-type, else 0                     */
  int axis;                /* 0: reduce over j (one row per i), 1: over i */
  int D;                   /* dim of f                                    */
  int DG;                  /* dim of g (0 without weight)                 */
  int acc, idx, out;       /* accumulator value/index slots, result cols  */
  long pos;
};

#define RK_HASH_SIZE 1024

struct rk_ctx {
  rk_arena arena;
  jmp_buf jmp;
  rk_error *err;
  const char *text;        /* formula being parsed                        */
  int in_decl;
  int depth;
  int nnodes;
  rk_node *htab[RK_HASH_SIZE];
  int nargs;               /* 1 + highest position                        */
  rk_arginfo args[RK_MAX_ARGS];
  unsigned char declared[RK_MAX_ARGS];
  rk_red red;
  rk_red pre;              /* forward reduction of a gradient (pre_pos)   */
  int decl_styles;         /* bit 1: "Vi(dim)" seen, bit 2: "Vi(pos,dim)" */
  int cpu_bi;              /* rows per block of the last CPU kernel       */
};

/* error.c */
void rk_fail(rk_ctx *c, int code, long pos, const char *fmt, ...);
void rk_seterr(rk_error *e, int code, long pos, const char *fmt, ...);

/* tree.c */
void *arena_alloc(rk_arena *a, size_t n);         /* NULL when out of memory */
void arena_free(rk_arena *a);
void *ctx_alloc(rk_ctx *c, size_t n);             /* fails through longjmp  */
char *ctx_strdup(rk_ctx *c, const char *s, size_t n);
rk_node *tree_node(rk_ctx *c, int op, int nkids, rk_node **kids,
                   const int *par, long pos);
rk_node *tree_var(rk_ctx *c, int pos, int dim, int cat, long srcpos);
rk_node *tree_intcst(rk_ctx *c, int v, long pos);

/* lex.c */
enum { TK_EOF, TK_NUM, TK_IDENT, TK_PUNCT };
typedef struct rk_token {
  int kind;
  long pos;          /* byte offset                                   */
  size_t len;
  long long num;     /* TK_NUM                                          */
  char punct[3];     /* TK_PUNCT: "+", "**", "<=", ...                  */
} rk_token;
typedef struct rk_lexer { rk_ctx *c; const char *s; size_t n; size_t i; rk_token tok; } rk_lexer;
void lex_init(rk_lexer *L, rk_ctx *c, const char *s);
void lex_next(rk_lexer *L);

/* parse.c */
void parse_decl(rk_ctx *c, const char *decl, int index);
void parse_formula(rk_ctx *c, const char *formula);

/* emit.c */
typedef struct rk_buf { char *s; size_t len, cap; int oom; } rk_buf;
void buf_init(rk_buf *b);
void buf_free(rk_buf *b);
void buf_puts(rk_buf *b, const char *s);
void buf_printf(rk_buf *b, const char *fmt, ...);

typedef struct rk_dialect {
  const char *name;          /* "c" or "cuda"                              */
} rk_dialect;

struct rk_emit {
  rk_buf *b;
  rk_ctx *c;
  int indent;
  rk_precision prec;
  const rk_dialect *dialect;
  const char *suffix;      /* appended to the names of nodes that depend   */
  int dep_out;             /* on the output index (DEP_I or DEP_J), so     *
                            * several rows can be computed side by side   */
};
void emit_line(rk_emit *e, const char *fmt, ...);
const char *emit_name(const rk_emit *e, const rk_node *n, char *buf, size_t n_buf);
/* emit the nodes reachable from roots whose deps are exactly within mask,
 * excluding those already done; marks[] has one byte per node id */
void emit_nodes(rk_emit *e, rk_node **roots, int nroots, int mask_ok,
                unsigned char *done);
void emit_ew(rk_emit *e, const rk_node *n);      /* template emitter */
void emit_math_macro(rk_buf *b, const char *fn); /* RK_SIN for "sin" */
unsigned char *emit_used_vars(rk_ctx *c, rk_node **roots, int nroots);
void emit_prologue_common(rk_buf *b, int f32, const char *exp_name, const char *log_name);
void emit_none(rk_emit *e, const rk_node *n);

/* diff.c */
rk_node *diff_grad(rk_ctx *c, rk_node *f, rk_node *v, rk_node *e, long pos);
rk_node *diff_forward(rk_ctx *c, rk_node *f, rk_node *v, rk_node *u, long pos);
rk_node *diff_divergence(rk_ctx *c, rk_node *f, rk_node *v, long pos);
rk_node *diff_laplacian(rk_ctx *c, rk_node *f, rk_node *v, long pos);
void diff_reduction(rk_ctx *c, rk_red *r, rk_node *v, rk_node *e, long pos);

/* cpu.c */
void cpu_generate(rk_ctx *c, rk_red *r, const rk_options *o, rk_buf *out);

/* run.c: pairs per kernel call between two interrupt checks (n <= 0: the
 * default, 2^24); for tests of the chunked runs */
void run_set_chunk_pairs(int64_t n);

/* sha256.c */
void sha256_hex(const void *data, size_t len, char out[65]);
typedef struct { unsigned int s[8]; unsigned long long n; unsigned char buf[64]; size_t blen; } sha256_ctx;
void sha256_init(sha256_ctx *h);
void sha256_update(sha256_ctx *h, const void *data, size_t len);
void sha256_final(sha256_ctx *h, unsigned char out[32]);

/* build.c */
/* The entry point of a CPU kernel (cpu.c): accumulates the output rows
 * [r0, r1) over the reduced indices [ja, jb).  scratch NULL: one call does
 * the whole range (ja = 0, jb = nred) and writes the rows.  Otherwise
 * scratch carries the states of the rows between calls over consecutive
 * ranges [0, j1), [j1, j2) ... [jn, nred) (the first call initialises
 * them, the last one writes the rows): r1 - r0 states, plus, when
 * r1 - r0 <= bi and nthreads > 1 (few rows: the threads split [ja, jb)),
 * nthreads * bi partial states; a state takes at most RK_STATE_BYTES
 * (comp: the kernel may carry Kahan compensations, sum-like reductions).
 * Returns 0, or -1 on inconsistent ranges. */
typedef int (*rk_entry_fn)(int64_t nout, int64_t nred, const void *const *args,
                           double *out, int64_t r0, int64_t r1, int64_t ja, int64_t jb,
                           int nthreads, int *threads_used, void *scratch);
/* The block-sparse entry (cpu.c's rk_entry_ranges): nw work items
 * w[4t .. 4t+3] = output rows [r0, r1) (at most bi rows), reduced ranges
 * s in [s0, s1) of red[2s] .. red[2s+1]; run.c checks them. */
typedef int (*rk_entry_ranges_fn)(int64_t nout, int64_t nred, const void *const *args,
                                  double *out, int64_t nw, const int64_t *w, const int64_t *red,
                                  int nthreads, int *threads_used);
#define RK_STATE_BYTES(acc, idx, comp) \
  ((size_t)8 * (size_t)((acc) + (idx) + ((comp) ? (acc) : 0) + 1))
/* reduced indices per CPU tile (at most; a divisor of it when the tile
 * buffers would be too large): run.c cuts the reduced range at multiples
 * of it, so that chunked runs meet the same tiles as whole ones */
#define RK_CPU_BJ 512
struct rk_kernel {
  char hash[65];           /* disk cache key: source + toolchain + CPU    */
  char key[65];            /* memo key: hash + argument names             */
  char *path;
  void *dl;
  rk_entry_fn entry;
  rk_entry_ranges_fn entry_ranges;
  rk_precision prec;
  int nargs;
  rk_arginfo args[RK_MAX_ARGS];
  int nuser;               /* inputs given by the caller (nargs - saved)  */
  int postsum;             /* sum the rows of the result (Pm gradients)   */
  struct rk_kernel *pre;   /* forward kernel feeding the last input       */
  int outcat, outdim, D, K, red;
  int acc, idx, bi;        /* accumulator slots and rows per block        */
  int from;
  double seconds;
  struct rk_kernel *next;
  /* GPU kernels (cuda.c); all zero for CPU kernels */
  int backend;             /* RK_BACKEND_CPU or RK_BACKEND_GPU             */
  int device;              /* ordinal of the device the module is on       */
  void *cu_entry;          /* CUfunction rk_cuda_entry (module: gpu.c's)   */
  void *cu_merge;          /* CUfunction rk_cuda_merge                     */
  int cu_block;            /* threads per block = j values per tile        */
  int cu_shmem;            /* dynamic shared memory per block, bytes       */
  int cu_acc, cu_idx;      /* accumulator value / index slots per row      */
  int cu_accbytes;         /* sizeof(acc_t) in the kernel: 4 or 8          */
};
int build_kernel(const char *src, const rk_options *o, rk_kernel *k, rk_error *err);
/* for the GPU backend (cuda.c): binary blobs in the same cache folder, and
 * the same in-process memo */
char *build_cache_path(const rk_options *o, const char *hash, const char *ext, rk_error *err);
char *build_blob_load(const char *path, size_t *len);
int build_blob_store(const char *path, const void *data, size_t len, int trailer, rk_error *err);
rk_kernel *build_memo_find(const char *key);
void build_memo_add(rk_kernel *k);
void build_memo_drop_backend(int backend);

/* cuda.c: the GPU map-reduce scheme (generation, NVRTC build, launches) */
void cuda_generate(rk_ctx *c, rk_red *r, const rk_options *o, rk_buf *out);
int cuda_build(const char *src, const rk_options *o, rk_kernel *proto, rk_error *err);
/* one GPU kernel on all its inputs; rows: rows of the i and j variables
 * (checked by rk_run, which also runs a gradient's forward kernel) */
int cuda_run_ranges(const rk_kernel *k, const rk_input *in, const int64_t rows[2], double *out,
                    int64_t nw, const int64_t *w, const double *pairs, const int64_t *red,
                    int64_t nred_ranges, rk_interrupt_fn intr, void *intr_data, rk_error *err);
int cuda_run_one(const rk_kernel *k, const rk_input *in, const int64_t rows[2], double *out,
                 rk_interrupt_fn intr, void *intr_data, rk_error *err);
/* the same over devices devs[0 .. ndev-1] (rk_run_devices): the output rows
 * of each launch chunk shared among them */
int cuda_run_devices(const rk_kernel *k, const int *devs, int ndev, const rk_input *in,
                     const int64_t rows[2], double *out, rk_interrupt_fn intr, void *intr_data,
                     rk_error *err);

/* gpu.c: libcuda and libnvrtc at run time; every return code checked and
 * turned into an rk_error */
typedef unsigned long long gpu_ptr;     /* CUdeviceptr */
typedef struct gpu_device {
  int ordinal;
  int cc;                  /* compute capability, 10 * major + minor      */
  int sms;                 /* multiprocessors                              */
  int max_grid_y;
  size_t mem;              /* bytes                                        */
  char name[256];
} gpu_device;
int gpu_nvrtc_load(rk_error *err);
int gpu_nvrtc_version(void);             /* 1000 * major + 10 * minor      */
int gpu_nvrtc_archs(int *archs, int max); /* supported CCs (e.g. 75), n   */
int gpu_nvrtc_has_cubin(void);
/* compiles src; cubin: arch "sm_XY" to CUBIN, else "compute_XY" to PTX.
 * *blob (malloc'd, PTX NUL-terminated) and *log (malloc'd or NULL) */
int gpu_nvrtc_compile(const char *src, const char *name, const char *arch, int cubin,
                      char **blob, size_t *len, char **log, rk_error *err);
/* driver loaded, cuInit, device `ordinal` (-1: 0), its primary context
 * current on this thread */
int gpu_open(int ordinal, gpu_device *dev, rk_error *err);
/* the module of `hash` on the device (loaded once from image, len bytes),
 * and its two kernels */
int gpu_module(int ordinal, const char *hash, const void *image, size_t len, void **entry,
               void **merge, rk_error *err);
/* the module of `hash` on device `ordinal`, loaded there from the image of
 * the same kernel on another device when it is not yet (runs over several
 * devices); the device's context must be current */
int gpu_module_on(int ordinal, const char *hash, void **entry, void **merge, rk_error *err);
int gpu_alloc(gpu_ptr *p, size_t bytes, rk_error *err);
void gpu_free(gpu_ptr p);
int gpu_upload(gpu_ptr dst, const void *src, size_t bytes, rk_error *err);
int gpu_download(void *dst, gpu_ptr src, size_t bytes, rk_error *err);
int gpu_launch(void *fn, unsigned gx, unsigned gy, unsigned block, unsigned shmem,
               void **params, rk_error *err);
int gpu_sync(rk_error *err);

#endif
