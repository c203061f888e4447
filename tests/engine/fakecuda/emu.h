/*
 * emu.h -- lets the host C++ compiler build rkeops' generated CUDA, for the
 * fake device of the tests (fake_nvrtc.c compiles with "-include emu.h").
 *
 * Not CUDA: just enough of it for our kernels.  A block runs as blockDim.x
 * POSIX threads (fake_cuda.c starts them), __syncthreads is a barrier,
 * the built-in indices are thread-local variables that rk_emu_set fills at
 * the start of each thread, and shared memory is one array (the fake runs
 * one block at a time).  Blocks run one after another, so a kernel that
 * reads a tile before every thread wrote it, forgets a barrier, or lets an
 * idle thread skip one, computes wrong numbers or deadlocks here as it
 * would on a device.
 */
#ifndef RK_EMU_H
#define RK_EMU_H

#include <math.h>
#include <pthread.h>
#include <string.h>

struct rk_emu_dim3 { unsigned x, y, z; };
static __thread rk_emu_dim3 threadIdx, blockIdx, blockDim, gridDim;
static __thread pthread_barrier_t *rk_emu_barrier;

extern "C" {
/* one block's shared memory (48 KiB, the most the scheme uses) */
double rk_smem[49152 / sizeof(double)];
unsigned long rk_smem_bytes = sizeof rk_smem;

void rk_emu_set(const unsigned *t, const unsigned *b, const unsigned *bd, const unsigned *gd,
                pthread_barrier_t *bar) {
  threadIdx.x = t[0]; threadIdx.y = t[1]; threadIdx.z = t[2];
  blockIdx.x = b[0]; blockIdx.y = b[1]; blockIdx.z = b[2];
  blockDim.x = bd[0]; blockDim.y = bd[1]; blockDim.z = bd[2];
  gridDim.x = gd[0]; gridDim.y = gd[1]; gridDim.z = gd[2];
  rk_emu_barrier = bar;
}
}

static inline void __syncthreads(void) { pthread_barrier_wait(rk_emu_barrier); }
static inline double __longlong_as_double(long long v) {
  double d;
  memcpy(&d, &v, sizeof d);
  return d;
}
static inline float __int_as_float(int v) {
  float f;
  memcpy(&f, &v, sizeof f);
  return f;
}

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__

#endif
