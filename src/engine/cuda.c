/*
 * cuda.c -- the GPU map-reduce scheme (CUDA, compiled at run time by NVRTC).
 *
 * High level description
 * ----------------------
 * The GPU twin of cpu.c: the same straight-line code of the formula
 * (emit_nodes) and the same reduction emitters (reductions.c), in a loop
 * skeleton of our own.  One thread per output row; the reduced index is
 * walked in tiles of B values (B = threads per block, 256, or fewer when
 * the tile would not fit) staged in shared memory:
 *
 *   rk_cuda_entry, grid (ceil(rows / B), nsplit), block B
 *     thread t of block (bx, by) owns output row i = r0 + bx B + t
 *     (threads past the last row compute row r0 and write nothing, so
 *     that every thread reaches every __syncthreads)
 *     parameters: read in place (global memory, cached); the nodes that
 *       depend only on them, once per thread
 *     init the accumulator (registers: local arrays of constant size)
 *     load the row's variables, compute the nodes of the row only
 *     for each tile [j0, j0 + B) of this block's share of the reduced index
 *       __syncthreads; thread t copies row j0 + t of every variable of the
 *       reduced index into shared memory (one array per variable, row
 *       after row); __syncthreads
 *       for jj in the tile: the formula, with the reduced variables read
 *                           from shared memory (a broadcast: every
 *                           thread reads the same address), and update
 *     gridDim.y == 1: finalize into the output (column-major, doubles)
 *     gridDim.y  > 1: write the partial accumulator to scratch memory
 *   rk_cuda_merge, grid ceil(rows / B), block B (only when nsplit > 1)
 *     merge the nsplit partial accumulators of the row in order, with the
 *     reduction's merge emitter, then finalize.
 *
 * Splitting: when the output has too few rows to give each multiprocessor
 * four blocks, the launcher (cuda_run_one) splits the reduced index over
 * gridDim.y (whole tiles, each split at least two tiles, at most 1024
 * splits); merges keep the order of the splits, so ties keep the smallest
 * index as on the CPU.
 *
 * Summation: "block" (the default for Sum) accumulates each tile in the
 * working precision and adds the tile's sum to a double accumulator;
 * "kahan" compensates; "direct" accumulates in the working precision.  The
 * LogSumExp family accumulates in double whatever the precision.
 *
 * Limits (the formula is refused with a clear error beyond them):
 *   - shared memory: B x (columns of the reduced variables) x sizeof(rk_t)
 *     must fit in 48 KiB (available on every device without opt-in) with
 *     B >= 32: at most 384 columns in float32, 192 in float64;
 *   - registers / local memory: the formula's temporaries and accumulators
 *     take at most 16 KiB per thread (the driver reserves local memory for
 *     every thread that can be resident).
 *
 * Launch chunks: rows are launched in chunks of about 2^34 pairs (and never
 * fewer than four waves of blocks), with the interrupt callback polled
 * between chunks, as run.c does on the CPU.  Inputs are copied to the
 * device once per call (converted to float32 on the host when needed),
 * results come back as doubles, and device memory is freed on every path.
 *
 * The generated source has no #include: it declares what it needs (int64_t,
 * rk_na, RK_INF from CUDA's bit-cast builtins), so NVRTC needs no include
 * path.  Its first lines say, for the launcher, the block size, the shared
 * memory and the accumulator sizes ("rkeops-launch ...").
 *
 * Sources: KeOps' GpuConv1D (one thread per row, j tiles in shared memory)
 * and GpuConv1D_ranges / the "chunked" reductions (split + merge).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "internal.h"

#define CUDA_BLOCK 256            /* threads per block, j values per tile     */
#define CUDA_MIN_BLOCK 32
#define CUDA_SHMEM_LIMIT 49152    /* bytes of shared memory per block         */
#define CUDA_LOCAL_LIMIT 16384    /* bytes of temporaries per thread          */
#define CUDA_MAX_SPLIT 1024
#define CUDA_CHUNK_PAIRS 17179869184.0  /* 2^34 pairs per launch              */
#define CUDA_MARKER "/* rkeops generated CUDA kernel"

/* ------------------------------------------------------------ prologue */

static void prologue(rk_emit *e, int f32, const char *acc_t, int block, int shmem, int acc,
                     int idx, int accbytes) {
  rk_buf *b = e->b;
  buf_printf(b, CUDA_MARKER ", engine version %s: do not edit */\n", RK_ENGINE_VERSION);
  buf_printf(b, "/* rkeops-launch block=%d shmem=%d acc=%d idx=%d accbytes=%d */\n", block, shmem,
             acc, idx, accbytes);
  buf_puts(b,
    "/* self-contained, no headers: NVRTC needs no include path */\n"
    "typedef long long rk_i64;\n"
    "#define int64_t rk_i64\n");
  buf_printf(b, "typedef %s rk_t;\ntypedef %s acc_t;\n", f32 ? "float" : "double", acc_t);
  buf_puts(b,
    "#define RK_DEV __device__ __forceinline__\n"
    "#define RK_INF __longlong_as_double(0x7ff0000000000000LL)\n");
  emit_prologue_common(b, f32, "exp", "log");
  buf_puts(b,
    "/* R's NA_real_: a NaN with payload 1954 */\n"
    "RK_DEV double rk_na(void) { return __longlong_as_double(0x7ff00000000007a2LL); }\n\n");
}

/* ------------------------------------------------------------ helpers */

/* values held per thread: every temporary, and the output row's variables
 * (the reduced ones live in shared memory, the parameters stay in place) */
static void local_values(rk_ctx *c, rk_node *n, unsigned char *seen, int outcat, size_t *total) {
  if (seen[n->id]) return;
  seen[n->id] = 1;
  if (n->op != RK_OP_VAR || c->args[n->par[0]].cat == outcat) *total += (size_t)n->dim;
  for (int i = 0; i < n->nkids; i++) local_values(c, n->kid[i], seen, outcat, total);
}

/* the name the emitters give variable p (emit.c decides) */
static const char *var_name(rk_emit *e, rk_ctx *c, int p, char *buf, size_t n) {
  rk_node probe;
  memset(&probe, 0, sizeof probe);
  probe.op = RK_OP_VAR;
  probe.par[0] = p;
  probe.dim = c->args[p].dim;
  int cat = c->args[p].cat;
  probe.deps = cat == RK_CAT_I ? DEP_I : cat == RK_CAT_J ? DEP_J : DEP_PM;
  return emit_name(e, &probe, buf, n);
}

/* ------------------------------------------------------------ generation */

void cuda_generate(rk_ctx *c, rk_red *r, const rk_options *o, rk_buf *out) {
  const rk_redop *ro = &rk_redops[r->red];
  int f32 = o->precision == RK_F32;
  size_t esz = f32 ? 4 : 8;
  int sumlike = (ro->flags & REDF_SUMLIKE) != 0;
  rk_scheme scheme = o->scheme == RK_SCHEME_AUTO ? RK_SCHEME_BLOCK : o->scheme;
  if (!sumlike) scheme = RK_SCHEME_DIRECT;
  int accd = scheme == RK_SCHEME_BLOCK || (ro->flags & REDF_ACC_DOUBLE);
  const char *acc_t = accd ? "double" : "rk_t";
  int accbytes = accd ? 8 : (int)esz;
  int accdim = r->acc, idxdim = r->idx > 0 ? r->idx : 1;
  int outcat = r->axis == 0 ? RK_CAT_I : RK_CAT_J;
  int redcat = r->axis == 0 ? RK_CAT_J : RK_CAT_I;
  int dep_out = outcat == RK_CAT_I ? DEP_I : DEP_J;
  const char *redname = redcat == RK_CAT_J ? "Vj" : "Vi";

  rk_node *roots[2] = {r->f, r->g};
  unsigned char *used = emit_used_vars(c, roots, 2);

  /* shared memory: one tile of every reduced variable */
  int cols = 0;
  for (int p = 0; p < c->nargs; p++)
    if (used[p] && c->args[p].cat == redcat) cols += c->args[p].dim;
  int block = CUDA_BLOCK;
  while (block > CUDA_MIN_BLOCK && (size_t)block * (size_t)cols * esz > CUDA_SHMEM_LIMIT) block /= 2;
  size_t shmem = (size_t)block * (size_t)cols * esz;
  if (shmem > CUDA_SHMEM_LIMIT)
    rk_fail(c, RK_EDIM, r->pos,
            "too many columns for the GPU scheme: the %s variables (the reduced index) have %d "
            "columns in all, but a tile of %d rows of them must fit in %d KiB of shared memory (at "
            "most %d columns in float32, %d in float64); use the CPU backend or smaller inner "
            "dimensions",
            redname, cols, CUDA_MIN_BLOCK, CUDA_SHMEM_LIMIT / 1024,
            CUDA_SHMEM_LIMIT / (CUDA_MIN_BLOCK * 4), CUDA_SHMEM_LIMIT / (CUDA_MIN_BLOCK * 8));

  /* per-thread values: temporaries, accumulators (twice: partial tile or
   * merge operand), Kahan compensations */
  size_t vals = 0;
  unsigned char *seen = ctx_alloc(c, (size_t)c->nnodes + 1);
  for (int k = 0; k < 2; k++) if (roots[k]) local_values(c, roots[k], seen, outcat, &vals);
  size_t bytes = vals * esz + 2 * ((size_t)accdim * (size_t)accbytes + (size_t)idxdim * 8) +
                 (scheme == RK_SCHEME_KAHAN ? (size_t)accdim * esz : 0);
  if (bytes > CUDA_LOCAL_LIMIT)
    rk_fail(c, RK_EDIM, r->pos,
            "formula too large for the GPU scheme: its temporaries and accumulators need %zu bytes "
            "per thread (limit %d); use the CPU backend or smaller inner dimensions",
            bytes, CUDA_LOCAL_LIMIT);

  rk_emit E;
  memset(&E, 0, sizeof E);
  E.b = out;
  E.c = c;
  E.prec = o->precision;
  rk_emit *e = &E;
  prologue(e, f32, acc_t, block, (int)shmem, accdim, r->idx > 0 ? r->idx : 0, accbytes);

  char nm[32], fname[32], gname[32];
  emit_name(e, r->f, fname, sizeof fname);
  if (r->g) emit_name(e, r->g, gname, sizeof gname);
  unsigned char *done = ctx_alloc(c, (size_t)c->nnodes + 1);

  /* ---- rk_cuda_entry */
  emit_line(e, "extern \"C\" __global__ void __launch_bounds__(%d) rk_cuda_entry(", block);
  emit_line(e, "    rk_i64 nout, rk_i64 nred, rk_i64 r0, rk_i64 r1, const void *const *args,");
  emit_line(e, "    double *out, acc_t *part_v, rk_i64 *part_i, const rk_i64 *work,");
  emit_line(e, "    const rk_i64 *redr) {");
  e->indent++;
  emit_line(e, "extern __shared__ double rk_smem[];");
  emit_line(e, "rk_t *const rk_sh = (rk_t *)rk_smem;");
  emit_line(e, "(void)rk_sh; (void)part_v; (void)part_i; (void)nout; (void)nred;");
  for (int p = 0; p < c->nargs; p++)
    if (used[p]) emit_line(e, "const rk_t *const a%d = (const rk_t *)args[%d];", p, p);
  int off = 0;
  for (int p = 0; p < c->nargs; p++) {
    if (!used[p] || c->args[p].cat != redcat) continue;
    emit_line(e, "rk_t *const sh%d = rk_sh + %d;", p, off * block);
    off += c->args[p].dim;
  }
  emit_line(e, "/* ranges (work != 0): block bx owns work item bx, rows [w[0], w[1]) and the");
  emit_line(e, " * reduced ranges redr[2s .. 2s+1] for s in [w[2], w[3]) */");
  emit_line(e, "const rk_i64 *const w = work ? work + 4 * (rk_i64)blockIdx.x : 0;");
  emit_line(e, "const rk_i64 rb = w ? w[0] : r0 + (rk_i64)blockIdx.x * %d;", block);
  emit_line(e, "const rk_i64 re = w ? w[1] : r1;");
  emit_line(e, "const rk_i64 i_raw = rb + threadIdx.x;");
  emit_line(e, "const int active = i_raw < re;");
  emit_line(e, "const rk_i64 i = active ? i_raw : rb;  /* idle threads: row rb, no output */");
  emit_line(e, "/* this block's share of the reduced index: whole tiles, split over gridDim.y */");
  emit_line(e, "const rk_i64 ntiles = (nred + %d) / %d;", block - 1, block);
  emit_line(e, "const rk_i64 per = (ntiles + (rk_i64)gridDim.y - 1) / (rk_i64)gridDim.y;");
  emit_line(e, "const rk_i64 jbeg0 = (rk_i64)blockIdx.y * per * %d;", block);
  emit_line(e, "const rk_i64 jend0 = jbeg0 + per * %d < nred ? jbeg0 + per * %d : nred;", block, block);
  emit_line(e, "(void)redr;");
  /* parameters, in place, and what depends only on them */
  for (int p = 0; p < c->nargs; p++)
    if (used[p] && c->args[p].cat == RK_CAT_PM)
      emit_line(e, "const rk_t *const %s = a%d;", var_name(e, c, p, nm, sizeof nm), p);
  emit_nodes(e, roots, 2, DEP_PM, done);
  emit_line(e, "acc_t acc[%d];", accdim);
  emit_line(e, "rk_i64 idx[%d];", idxdim);
  emit_line(e, "(void)idx;");
  ro->init(e, r, (rk_acc){"acc", "idx"});
  if (scheme == RK_SCHEME_KAHAN) emit_line(e, "rk_t comp[%d];", accdim);
  if (scheme == RK_SCHEME_KAHAN) emit_line(e, "for (int k = 0; k < %d; k++) comp[k] = 0;", accdim);
  /* the row's variables, in registers, and what depends only on the row */
  for (int p = 0; p < c->nargs; p++) {
    if (!used[p] || c->args[p].cat != outcat) continue;
    int d = c->args[p].dim;
    var_name(e, c, p, nm, sizeof nm);
    emit_line(e, "rk_t %s[%d];", nm, d);
    if (d == 1) emit_line(e, "%s[0] = a%d[i];", nm, p);
    else emit_line(e, "for (int k = 0; k < %d; k++) %s[k] = a%d[i + k * nout];", d, nm, p);
  }
  emit_nodes(e, roots, 2, DEP_PM | dep_out, done);
  /* the tiles of each reduced range (one range without ranges) */
  emit_line(e, "const rk_i64 s0 = w ? w[2] : 0, s1 = w ? w[3] : 1;");
  emit_line(e, "for (rk_i64 s = s0; s < s1; s++) {");
  e->indent++;
  emit_line(e, "const rk_i64 jbeg = w ? redr[2 * s] : jbeg0, jend = w ? redr[2 * s + 1] : jend0;");
  emit_line(e, "for (rk_i64 j0 = jbeg; j0 < jend; j0 += %d) {", block);
  e->indent++;
  emit_line(e, "const int jn = (int)(jend - j0 < %d ? jend - j0 : %d);", block, block);
  if (cols > 0) {
    emit_line(e, "__syncthreads();  /* the previous tile is consumed */");
    emit_line(e, "if ((int)threadIdx.x < jn) {");
    e->indent++;
    emit_line(e, "const rk_i64 jl = j0 + threadIdx.x;");
    for (int p = 0; p < c->nargs; p++) {
      if (!used[p] || c->args[p].cat != redcat) continue;
      int d = c->args[p].dim;
      if (d == 1) emit_line(e, "sh%d[threadIdx.x] = a%d[jl];", p, p);
      else emit_line(e, "for (int k = 0; k < %d; k++) sh%d[threadIdx.x * %d + k] = a%d[jl + k * nred];",
                     d, p, d, p);
    }
    e->indent--;
    emit_line(e, "}");
    emit_line(e, "__syncthreads();");
  }
  rk_acc target = {"acc", "idx"};
  if (scheme == RK_SCHEME_BLOCK) {
    emit_line(e, "rk_t P[%d];", accdim);
    ro->init(e, r, (rk_acc){"P", NULL});
    target.v = "P";
  }
  emit_line(e, "for (int jj = 0; jj < jn; jj++) {");
  e->indent++;
  emit_line(e, "const rk_i64 j = j0 + jj;");
  emit_line(e, "(void)j;");
  for (int p = 0; p < c->nargs; p++) {
    if (!used[p] || c->args[p].cat != redcat) continue;
    emit_line(e, "const rk_t *const %s = sh%d + jj * %d;", var_name(e, c, p, nm, sizeof nm), p,
              c->args[p].dim);
  }
  unsigned char *done_in = ctx_alloc(c, (size_t)c->nnodes + 1);
  memcpy(done_in, done, (size_t)c->nnodes + 1);
  emit_nodes(e, roots, 2, DEP_PM | DEP_I | DEP_J, done_in);
  if (scheme == RK_SCHEME_KAHAN)
    emit_line(e, "for (int k = 0; k < %d; k++) { rk_t y = %s[k] - comp[k]; rk_t t = acc[k] + y; "
                 "comp[k] = (t - acc[k]) - y; acc[k] = t; }", r->D, fname);
  else
    ro->update(e, r, target, fname, r->g ? gname : NULL, "j");
  e->indent--;
  emit_line(e, "}");
  if (scheme == RK_SCHEME_BLOCK) ro->merge(e, r, (rk_acc){"acc", NULL}, (rk_acc){"P", NULL});
  e->indent--;
  emit_line(e, "}");
  e->indent--;
  emit_line(e, "}");  /* ranges */
  /* the result, or the partial accumulator of this split */
  emit_line(e, "if (gridDim.y == 1) {");
  e->indent++;
  emit_line(e, "if (active) {");
  e->indent++;
  ro->finalize(e, r, (rk_acc){"acc", "idx"}, "(out + i)", "nout");
  e->indent--;
  emit_line(e, "}");
  e->indent--;
  emit_line(e, "} else if (active) {");
  e->indent++;
  emit_line(e, "const rk_i64 n = r1 - r0, q = i - r0, s = blockIdx.y;");
  emit_line(e, "for (int k = 0; k < %d; k++) part_v[(s * %d + k) * n + q] = acc[k];", accdim, accdim);
  if (r->idx > 0)
    emit_line(e, "for (int k = 0; k < %d; k++) part_i[(s * %d + k) * n + q] = idx[k];", r->idx, r->idx);
  e->indent--;
  emit_line(e, "}");
  e->indent--;
  emit_line(e, "}\n");

  /* ---- rk_cuda_merge */
  emit_line(e, "extern \"C\" __global__ void __launch_bounds__(%d) rk_cuda_merge(", block);
  emit_line(e, "    rk_i64 nout, rk_i64 r0, rk_i64 r1, int nsplit, double *out,");
  emit_line(e, "    const acc_t *part_v, const rk_i64 *part_i) {");
  e->indent++;
  emit_line(e, "const rk_i64 i = r0 + (rk_i64)blockIdx.x * %d + threadIdx.x;", block);
  emit_line(e, "if (i >= r1) return;");
  emit_line(e, "const rk_i64 n = r1 - r0, q = i - r0;");
  emit_line(e, "(void)part_i;");
  emit_line(e, "acc_t acc[%d], accb[%d];", accdim, accdim);
  if (r->idx > 0) emit_line(e, "rk_i64 idx[%d], idxb[%d];", r->idx, r->idx);
  emit_line(e, "for (int k = 0; k < %d; k++) acc[k] = part_v[k * n + q];", accdim);
  if (r->idx > 0) emit_line(e, "for (int k = 0; k < %d; k++) idx[k] = part_i[k * n + q];", r->idx);
  emit_line(e, "for (int s = 1; s < nsplit; s++) {");
  e->indent++;
  emit_line(e, "for (int k = 0; k < %d; k++) accb[k] = part_v[((rk_i64)s * %d + k) * n + q];", accdim,
            accdim);
  if (r->idx > 0)
    emit_line(e, "for (int k = 0; k < %d; k++) idxb[k] = part_i[((rk_i64)s * %d + k) * n + q];",
              r->idx, r->idx);
  ro->merge(e, r, (rk_acc){"acc", "idx"}, (rk_acc){"accb", "idxb"});
  e->indent--;
  emit_line(e, "}");
  ro->finalize(e, r, (rk_acc){"acc", "idx"}, "(out + i)", "nout");
  e->indent--;
  emit_line(e, "}");
}

/* ------------------------------------------------------------ build */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* the launch line of a generated source: block, shmem, acc, idx, accbytes */
static int launch_info(const char *src, int v[5]) {
  const char *h = strstr(src, "/* rkeops-launch ");
  return h && sscanf(h, "/* rkeops-launch block=%d shmem=%d acc=%d idx=%d accbytes=%d */", &v[0],
                     &v[1], &v[2], &v[3], &v[4]) == 5;
}

/* The NVRTC target for a device of compute capability cc (e.g. 86): the
 * newest architecture NVRTC supports that is not above cc; a CUBIN when it
 * has cc's major version (binary compatible), else PTX, which the driver
 * compiles for the device (a device newer than NVRTC knows). */
static int choose_arch(int cc, char *arch, size_t n, int *cubin, rk_error *err) {
  int archs[128];
  int na = gpu_nvrtc_archs(archs, 128), best = -1, lo = 1000, hi = 0;
  if (na == 0) best = cc;  /* NVRTC older than 11.2 does not say: try the device's own */
  for (int k = 0; k < na; k++) {
    if (archs[k] <= cc && archs[k] > best) best = archs[k];
    if (archs[k] < lo) lo = archs[k];
    if (archs[k] > hi) hi = archs[k];
  }
  if (best < 0) {
    int v = gpu_nvrtc_version();
    rk_seterr(err, RK_EBUILD, -1,
              "the GPU has compute capability %d.%d but NVRTC %d.%d only compiles for %d.%d to "
              "%d.%d: set RKEOPS_LIBNVRTC to the libnvrtc of an older CUDA toolkit",
              cc / 10, cc % 10, v / 1000, (v % 1000) / 10, lo / 10, lo % 10, hi / 10, hi % 10);
    return err->code;
  }
  *cubin = gpu_nvrtc_has_cubin() && best / 10 == cc / 10;
  snprintf(arch, n, "%s_%d", *cubin ? "sm" : "compute", best);
  return RK_OK;
}

static void hex_digest(sha256_ctx *h, char out[65]) {
  unsigned char d[32];
  sha256_final(h, d);
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

int cuda_build(const char *src, const rk_options *o, rk_kernel *proto, rk_error *err) {
  int L[5];
  if (!launch_info(src, L)) {
    rk_seterr(err, RK_EINTERNAL, -1, "internal error: generated CUDA without a launch line (%s:%d)",
              __FILE__, __LINE__);
    return err->code;
  }
  gpu_device dev;
  if (gpu_open(o->device, &dev, err) != RK_OK) return err->code;
  if (gpu_nvrtc_load(err) != RK_OK) return err->code;
  char arch[32];
  int cubin = 0;
  if (choose_arch(dev.cc, arch, sizeof arch, &cubin, err) != RK_OK) return err->code;

  /* disk key: everything that makes the binary; memo key: + declarations, device */
  char ver[32];
  snprintf(ver, sizeof ver, "nvrtc-%d", gpu_nvrtc_version());
  sha256_ctx h;
  sha256_init(&h);
  const char *parts[] = {"rkeops-engine-" RK_ENGINE_VERSION, "cuda", ver, arch, src};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    sha256_update(&h, parts[i], strlen(parts[i]) + 1);
  hex_digest(&h, proto->hash);
  sha256_init(&h);
  sha256_update(&h, proto->hash, 64);
  /* every declaration: an unused argument's dimension is not in the source,
   * yet the kernel checks the inputs against it */
  for (int p = 0; p < proto->nargs; p++) {
    char decl[96];
    snprintf(decl, sizeof decl, "%d:%d:%d:", proto->args[p].pos, proto->args[p].cat,
             proto->args[p].dim);
    sha256_update(&h, decl, strlen(decl));
    sha256_update(&h, proto->args[p].name, strlen(proto->args[p].name) + 1);
  }
  char extra[96];
  snprintf(extra, sizeof extra, "postsum=%d nuser=%d device=%d pre=", proto->postsum, proto->nuser,
           dev.ordinal);
  sha256_update(&h, extra, strlen(extra));
  if (proto->pre) sha256_update(&h, proto->pre->key, 64);
  hex_digest(&h, proto->key);
  rk_kernel *hit = build_memo_find(proto->key);
  if (hit) {
    hit->from = RK_FROM_MEMO;
    hit->seconds = 0;
    proto->next = hit;
    return RK_OK;
  }

  double t0 = now();
  char *path = build_cache_path(o, proto->hash, cubin ? ".cubin" : ".ptx", err);
  if (!path) return err->code;
  size_t len = 0;
  char *blob = build_blob_load(path, &len);
  int from = RK_FROM_DISK;
  if (!blob) {
    from = RK_FROM_COMPILER;
    int rc = gpu_nvrtc_compile(src, "rkeops_kernel.cu", arch, cubin, &blob, &len, NULL, err);
    if (rc == RK_OK) rc = build_blob_store(path, blob, len, 1, err);
    if (rc == RK_OK && o->keep_source) {
      rk_error e2;
      rk_error_init(&e2);
      char *cu = build_cache_path(o, proto->hash, ".cu", &e2);
      if (cu) build_blob_store(cu, src, strlen(src), 0, &e2);
      free(cu);
      rk_error_clear(&e2);
    }
    if (rc != RK_OK) {
      free(blob);
      free(path);
      return rc;
    }
  }
  void *entry = NULL, *merge = NULL;
  int rc = gpu_module(dev.ordinal, proto->hash, blob, len, &entry, &merge, err);
  free(blob);
  rk_kernel *k = rc == RK_OK ? malloc(sizeof *k) : NULL;
  if (!k) {
    if (rc == RK_OK) rk_seterr(err, RK_ENOMEM, -1, "out of memory");
    free(path);
    return err->code;
  }
  *k = *proto;
  k->path = path;
  k->dl = NULL;
  k->entry = NULL;
  k->backend = RK_BACKEND_GPU;
  k->device = dev.ordinal;
  k->cu_entry = entry;
  k->cu_merge = merge;
  k->cu_block = L[0];
  k->cu_shmem = L[1];
  k->cu_acc = L[2];
  k->cu_idx = L[3];
  k->cu_accbytes = L[4];
  k->from = from;
  k->seconds = now() - t0;
  build_memo_add(k);
  proto->next = k;
  return RK_OK;
}

/* ------------------------------------------------------------ run */

/* Device copies of the inputs (darg[], zeroed first: the caller frees
 * them, also on error) and the device array of their addresses. */
static int upload_inputs(const rk_kernel *k, const rk_input *in, gpu_ptr *darg, gpu_ptr *dptrs,
                         rk_error *err) {
  const size_t esz = k->prec == RK_F32 ? sizeof(float) : sizeof(double);
  memset(darg, 0, sizeof(gpu_ptr) * RK_MAX_ARGS);
  *dptrs = 0;
  int rc = RK_OK;
  for (int p = 0; p < k->nargs && rc == RK_OK; p++) {
    size_t n = (size_t)(in[p].nrow * in[p].ncol);
    rc = gpu_alloc(&darg[p], n * esz, err);
    if (rc != RK_OK) break;
    if (k->prec == RK_F32) {
      float *conv = malloc((n ? n : 1) * sizeof(float));
      if (!conv) {
        rk_seterr(err, RK_ENOMEM, -1, "out of memory converting inputs to float32");
        rc = err->code;
        break;
      }
      for (size_t q = 0; q < n; q++) conv[q] = (float)in[p].data[q];
      rc = gpu_upload(darg[p], conv, n * sizeof(float), err);
      free(conv);
    } else {
      rc = gpu_upload(darg[p], in[p].data, n * sizeof(double), err);
    }
  }
  if (rc == RK_OK) rc = gpu_alloc(dptrs, sizeof(gpu_ptr) * (size_t)(k->nargs > 0 ? k->nargs : 1), err);
  if (rc == RK_OK) rc = gpu_upload(*dptrs, darg, sizeof(gpu_ptr) * (size_t)k->nargs, err);
  return rc;
}

/* Runs over one or several devices (cuda_run_one, cuda_run_devices).
 *
 * The plan is the first device's, whatever the number of devices: chunks
 * of rows of about CUDA_CHUNK_PAIRS pairs (at least four waves of blocks of
 * the first device), each split over the reduced index into nsplit parts
 * when it has too few blocks.  Each chunk's blocks are then shared among
 * the devices in contiguous pieces, in proportion to their multiprocessors;
 * a piece keeps its chunk's nsplit.  A row's value depends only on the
 * tiles it meets and their order, that is on nsplit: the result is the
 * same, bit for bit, as on the first device alone (devices of one
 * architecture running the same binary).
 *
 * Every device has its own copy of the inputs, its output array and
 * scratch, in its primary context; the launches of a chunk are queued on
 * each device's default stream in turn (asynchronous: the devices compute
 * together), then every device is synchronised, its piece of rows copied
 * back, and the interrupt callback polled (on the calling thread). */
typedef struct dev_run {
  gpu_device dev;
  void *entry, *merge;
  int opened;                 /* resources below may be live               */
  gpu_ptr darg[RK_MAX_ARGS];
  gpu_ptr dptrs, dout, dpv, dpi;
  size_t pv_bytes, pi_bytes;
  int64_t a, b;               /* this device's rows of the current chunk   */
} dev_run;

/* makes device r's context current; 0 on success */
static int dev_use(dev_run *r, rk_error *err) { return gpu_open(r->dev.ordinal, NULL, err); }

static int grow(gpu_ptr *p, size_t *have, size_t need, rk_error *err) {
  if (need <= *have) return RK_OK;
  gpu_free(*p);
  *p = 0;
  *have = 0;
  int rc = gpu_alloc(p, need, err);
  if (rc == RK_OK) *have = need;
  return rc;
}

/* the devices: opened, checked (distinct), the kernel's module on each */
static int devices_open(const rk_kernel *k, const int *devs, int ndev, dev_run *R, rk_error *err) {
  const int kd = k->device < 0 ? 0 : k->device;
  for (int d = 0; d < ndev; d++) {
    int o = devs[d] < 0 ? 0 : devs[d];
    for (int e = 0; e < d; e++) {
      if (R[e].dev.ordinal == o) {
        rk_seterr(err, RK_EARG, -1, "GPU device %d is listed twice", o);
        return err->code;
      }
    }
    if (gpu_open(o, &R[d].dev, err) != RK_OK) return err->code;
    if (o == kd) {
      R[d].entry = k->cu_entry;
      R[d].merge = k->cu_merge;
    } else if (gpu_module_on(o, k->hash, &R[d].entry, &R[d].merge, err) != RK_OK) {
      char why[sizeof err->msg];
      snprintf(why, sizeof why, "%s", err->msg);
      rk_seterr(err, err->code, -1,
                "GPU device %d cannot run the kernel compiled for device %d (use devices of one "
                "architecture): %.700s", o, kd, why);
      return err->code;
    }
  }
  return RK_OK;
}

static int run_devices(const rk_kernel *k, const int *devs, int ndev, const rk_input *in,
                       const int64_t rows[2], double *out, rk_interrupt_fn intr, void *intr_data,
                       rk_error *err) {
  if (ndev < 1 || ndev > 64) {
    rk_seterr(err, RK_EARG, -1, "the GPU devices must be 1 to 64 device numbers, not %d", ndev);
    return err->code;
  }
  dev_run *R = calloc((size_t)ndev, sizeof *R);
  if (!R) {
    rk_seterr(err, RK_ENOMEM, -1, "out of memory");
    return err->code;
  }
  const int64_t nout = rows[k->outcat], nred = rows[1 - k->outcat];
  const size_t out_bytes = (size_t)nout * (size_t)k->outdim * sizeof(double);
  int rc = devices_open(k, devs, ndev, R, err);
  /* inputs and output array on every device */
  for (int d = 0; rc == RK_OK && d < ndev; d++) {
    rc = dev_use(&R[d], err);
    if (rc != RK_OK) break;
    R[d].opened = 1;
    rc = upload_inputs(k, in, R[d].darg, &R[d].dptrs, err);
    if (rc == RK_OK) rc = gpu_alloc(&R[d].dout, out_bytes, err);
  }
  const gpu_device *dev = &R[0].dev;   /* the plan's */
  double wsum = 0;
  for (int d = 0; d < ndev; d++) wsum += R[d].dev.sms;
  const int64_t B = k->cu_block;
  const int64_t ntiles = (nred + B - 1) / B;
  int64_t chunk = (int64_t)(CUDA_CHUNK_PAIRS / (double)(nred > 0 ? nred : 1));
  if (chunk < B * dev->sms * 4) chunk = B * dev->sms * 4;
  chunk = (chunk + B - 1) / B * B;
  if (chunk > B * (int64_t)0x7fffffff) chunk = B * (int64_t)0x7fffffff;
  for (int64_t r0 = 0; rc == RK_OK && r0 < nout; r0 += chunk) {
    int64_t r1 = r0 + chunk < nout ? r0 + chunk : nout;
    int64_t nb = (r1 - r0 + B - 1) / B, nsplit = 1, target = 4 * (int64_t)dev->sms;
    if (nb < target && ntiles >= 4) {
      nsplit = (target + nb - 1) / nb;
      if (nsplit > ntiles / 2) nsplit = ntiles / 2;
      if (nsplit > CUDA_MAX_SPLIT) nsplit = CUDA_MAX_SPLIT;
      for (int d = 0; d < ndev; d++)
        if (nsplit > R[d].dev.max_grid_y) nsplit = R[d].dev.max_grid_y;
      if (nsplit < 1) nsplit = 1;
    }
    /* queue the pieces, one device after the other */
    double wacc = 0;
    for (int d = 0; rc == RK_OK && d < ndev; d++) {
      dev_run *r = &R[d];
      int64_t blo = (int64_t)((double)nb * wacc / wsum);
      wacc += r->dev.sms;
      int64_t bhi = d == ndev - 1 ? nb : (int64_t)((double)nb * wacc / wsum);
      r->a = r0 + blo * B;
      r->b = r0 + bhi * B < r1 ? r0 + bhi * B : r1;
      if (r->b <= r->a) {
        r->a = r->b = 0;
        continue;
      }
      rc = dev_use(r, err);
      if (rc != RK_OK) break;
      if (nsplit > 1) {
        size_t n = (size_t)(r->b - r->a) * (size_t)nsplit;
        rc = grow(&r->dpv, &r->pv_bytes, n * (size_t)k->cu_acc * (size_t)k->cu_accbytes, err);
        if (rc == RK_OK) rc = grow(&r->dpi, &r->pi_bytes, n * (size_t)k->cu_idx * 8, err);
        if (rc != RK_OK) break;
      }
      gpu_ptr dnone = 0;
      long long a_nout = nout, a_nred = nred, a_r0 = r->a, a_r1 = r->b;
      int a_nsplit = (int)nsplit;
      void *params[] = {&a_nout, &a_nred, &a_r0, &a_r1, &r->dptrs, &r->dout, &r->dpv, &r->dpi,
                        &dnone, &dnone};
      unsigned nbd = (unsigned)((r->b - r->a + B - 1) / B);
      rc = gpu_launch(r->entry, nbd, (unsigned)nsplit, (unsigned)B, (unsigned)k->cu_shmem, params,
                      err);
      if (rc == RK_OK && nsplit > 1) {
        void *mparams[] = {&a_nout, &a_r0, &a_r1, &a_nsplit, &r->dout, &r->dpv, &r->dpi};
        rc = gpu_launch(r->merge, nbd, 1, (unsigned)B, 0, mparams, err);
      }
    }
    /* wait for every device; several devices: copy each piece back now */
    for (int d = 0; rc == RK_OK && d < ndev; d++) {
      dev_run *r = &R[d];
      if (r->b <= r->a) continue;
      rc = dev_use(r, err);
      if (rc == RK_OK) rc = gpu_sync(err);
      for (int c = 0; ndev > 1 && rc == RK_OK && c < k->outdim; c++) {
        size_t at = (size_t)r->a + (size_t)c * (size_t)nout;
        rc = gpu_download(out + at, r->dout + (gpu_ptr)(at * sizeof(double)),
                          (size_t)(r->b - r->a) * sizeof(double), err);
      }
    }
    if (rc == RK_OK && r1 < nout && intr && intr(intr_data)) {
      rk_seterr(err, RK_EINTERRUPT, -1, "interrupted");
      rc = err->code;
    }
  }
  if (rc == RK_OK && ndev == 1) rc = gpu_download(out, R[0].dout, out_bytes, err);
  /* every device's memory, in its own context, on every path */
  for (int d = 0; d < ndev; d++) {
    dev_run *r = &R[d];
    if (!r->opened) continue;
    rk_error e2;
    rk_error_init(&e2);
    dev_use(r, &e2);
    rk_error_clear(&e2);
    for (int p = 0; p < k->nargs; p++) gpu_free(r->darg[p]);
    gpu_free(r->dptrs);
    gpu_free(r->dout);
    gpu_free(r->dpv);
    gpu_free(r->dpi);
  }
  free(R);
  return rc;
}

/* A block-sparse run (run.c builds the work list: items of at most
 * cu_block rows, w[4t .. 4t+3] = rows [r0, r1), ranges [s0, s1) of red):
 * one block per item, launches of about CUDA_CHUNK_PAIRS pairs with the
 * interrupt callback polled in between. */
int cuda_run_ranges(const rk_kernel *k, const rk_input *in, const int64_t rows[2], double *out,
                    int64_t nw, const int64_t *w, const double *pairs, const int64_t *red,
                    int64_t nred_ranges, rk_interrupt_fn intr, void *intr_data, rk_error *err) {
  gpu_device dev;
  if (gpu_open(k->device, &dev, err) != RK_OK) return err->code;
  const int64_t nout = rows[k->outcat], nred = rows[1 - k->outcat];
  gpu_ptr darg[RK_MAX_ARGS];
  gpu_ptr dptrs = 0, dout = 0, dwork = 0, dred = 0, dnone = 0;
  const size_t out_bytes = (size_t)nout * (size_t)k->outdim * sizeof(double);
  int rc = upload_inputs(k, in, darg, &dptrs, err);
  if (rc == RK_OK) rc = gpu_alloc(&dout, out_bytes, err);
  if (rc == RK_OK) rc = gpu_alloc(&dwork, sizeof(int64_t) * 4 * (size_t)(nw > 0 ? nw : 1), err);
  if (rc == RK_OK && nw > 0) rc = gpu_upload(dwork, w, sizeof(int64_t) * 4 * (size_t)nw, err);
  if (rc == RK_OK) rc = gpu_alloc(&dred, sizeof(int64_t) * 2 * (size_t)(nred_ranges > 0 ? nred_ranges : 1), err);
  if (rc == RK_OK && nred_ranges > 0)
    rc = gpu_upload(dred, red, sizeof(int64_t) * 2 * (size_t)nred_ranges, err);
  for (int64_t t0 = 0; rc == RK_OK && t0 < nw;) {
    int64_t t1 = t0;
    double np = 0;
    while (t1 < nw && t1 - t0 < 0x7fffffff && (t1 == t0 || np + pairs[t1] <= CUDA_CHUNK_PAIRS))
      np += pairs[t1++];
    long long a_nout = nout, a_nred = nred, a_r0 = 0, a_r1 = nout;
    gpu_ptr dw = dwork + (gpu_ptr)(sizeof(int64_t) * 4 * (size_t)t0);
    void *params[] = {&a_nout, &a_nred, &a_r0, &a_r1, &dptrs, &dout, &dnone, &dnone, &dw, &dred};
    rc = gpu_launch(k->cu_entry, (unsigned)(t1 - t0), 1, (unsigned)k->cu_block,
                    (unsigned)k->cu_shmem, params, err);
    if (rc == RK_OK) rc = gpu_sync(err);
    t0 = t1;
    if (rc == RK_OK && t0 < nw && intr && intr(intr_data)) {
      rk_seterr(err, RK_EINTERRUPT, -1, "interrupted");
      rc = err->code;
    }
  }
  if (rc == RK_OK) rc = gpu_download(out, dout, out_bytes, err);
  for (int p = 0; p < k->nargs; p++) gpu_free(darg[p]);
  gpu_free(dptrs);
  gpu_free(dout);
  gpu_free(dwork);
  gpu_free(dred);
  return rc;
}

/* One GPU kernel on all its inputs (rk_run in run.c does the steps around
 * it for both backends: a gradient's forward kernel, row sums). */
int cuda_run_one(const rk_kernel *k, const rk_input *in, const int64_t rows[2], double *out,
                 rk_interrupt_fn intr, void *intr_data, rk_error *err) {
  int d = k->device;
  return run_devices(k, &d, 1, in, rows, out, intr, intr_data, err);
}

int cuda_run_devices(const rk_kernel *k, const int *devs, int ndev, const rk_input *in,
                     const int64_t rows[2], double *out, rk_interrupt_fn intr, void *intr_data,
                     rk_error *err) {
  return run_devices(k, devs, ndev, in, rows, out, intr, intr_data, err);
}

/* ------------------------------------------------------------ compile-only check */

int rk_nvrtc_compile_check(const char *formula, const char *const *decls, int ndecls,
                           const rk_options *opt, const char *arch, char **log, rk_error *err) {
  if (log) *log = NULL;
  rk_error_clear(err);
  if (!arch || (strncmp(arch, "sm_", 3) != 0 && strncmp(arch, "compute_", 8) != 0) ||
      strlen(arch) > 24) {
    rk_seterr(err, RK_EARG, -1, "the architecture must look like \"compute_75\" or \"sm_75\"");
    return err->code;
  }
  if (gpu_nvrtc_load(err) != RK_OK) return err->code;
  rk_options o;
  if (opt) o = *opt;
  else rk_options_default(&o);
  o.backend = RK_BACKEND_GPU;
  char *src = NULL;
  if (rk_generate(formula, decls, ndecls, &o, &src, err) != RK_OK) return err->code;
  int cubin = strncmp(arch, "sm_", 3) == 0;
  if (!strstr(src, CUDA_MARKER)) {
    free(src);
    rk_seterr(err, RK_EINTERNAL, -1, "internal error: no CUDA kernel was generated (%s:%d)", __FILE__,
              __LINE__);
    return err->code;
  }
  rk_buf logs;
  buf_init(&logs);
  int rc = RK_OK;
  /* a gradient has two kernels (the forward one first): one program each */
  for (char *s = strstr(src, CUDA_MARKER); s && rc == RK_OK;) {
    char *next = strstr(s + 1, CUDA_MARKER);
    char saved = 0;
    if (next) {
      saved = *next;
      *next = '\0';
    }
    char *blob = NULL, *plog = NULL;
    size_t len = 0;
    rc = gpu_nvrtc_compile(s, "rkeops_check.cu", arch, cubin, &blob, &len, &plog, err);
    if (plog) buf_puts(&logs, plog);
    free(plog);
    free(blob);
    if (next) *next = saved;
    s = next;
  }
  free(src);
  if (log && logs.s && logs.len > 0 && !logs.oom) {
    *log = logs.s;
    logs.s = NULL;
  }
  buf_free(&logs);
  return rc;
}
