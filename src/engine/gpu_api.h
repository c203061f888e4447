/*
 * gpu_api.h -- our own declarations of the CUDA driver API and NVRTC entry
 * points that the engine uses (cuew's approach, written by hand and kept
 * small).  No CUDA header or library is needed to build rkeops: gpu.c
 * finds libcuda and libnvrtc with dlopen at run time and binds these
 * pointers with dlsym; a symbol that does not resolve is bound to a stub
 * returning GPU_MISSING, so nothing ever calls NULL.
 *
 * Types are opaque pointers or the integer types of the official headers
 * (cuda.h, nvrtc.h, 64-bit platforms); the enum values below are copied
 * from cuda.h and have been stable since CUDA 4.  Only the driver API is
 * used (libcuda ships with the driver), never the runtime (libcudart).
 *
 * Each list row is X(member, "symbol", (parameters), (void) uses): the
 * member name is the one of cuda.h, the symbol the versioned name that
 * cuda.h's macros select (cuMemAlloc -> cuMemAlloc_v2).
 */
#ifndef RK_GPU_API_H
#define RK_GPU_API_H

#include <stddef.h>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;

typedef int nvrtcResult;
typedef struct _nvrtcProgram *nvrtcProgram;

/* returned by the stubs of unresolved symbols (no real code is negative) */
#define GPU_MISSING (-1)

enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_OUT_OF_MEMORY = 2,
  CUDA_ERROR_NO_DEVICE = 100,
  CUDA_ERROR_INVALID_DEVICE = 101,
  CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222
};

/* CUdevice_attribute */
enum {
  CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X = 5,
  CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y = 6,
  CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8,
  CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
  CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97
};

/* CUfunction_attribute */
enum {
  CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8
};

/* CUjit_option (cuModuleLoadDataEx) */
enum {
  CU_JIT_INFO_LOG_BUFFER = 3,
  CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4,
  CU_JIT_ERROR_LOG_BUFFER = 5,
  CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6
};

enum {
  NVRTC_SUCCESS = 0,
  NVRTC_ERROR_COMPILATION = 6
};

/* ------------------------------------------------------------ driver */
#define GPU_CU_API(X) \
  X(cuInit, "cuInit", (unsigned int flags), ((void)flags)) \
  X(cuDriverGetVersion, "cuDriverGetVersion", (int *version), ((void)version)) \
  X(cuDeviceGetCount, "cuDeviceGetCount", (int *count), ((void)count)) \
  X(cuDeviceGet, "cuDeviceGet", (CUdevice *dev, int ordinal), ((void)dev, (void)ordinal)) \
  X(cuDeviceGetName, "cuDeviceGetName", (char *name, int len, CUdevice dev), \
    ((void)name, (void)len, (void)dev)) \
  X(cuDeviceGetAttribute, "cuDeviceGetAttribute", (int *value, int attrib, CUdevice dev), \
    ((void)value, (void)attrib, (void)dev)) \
  X(cuDeviceTotalMem, "cuDeviceTotalMem_v2", (size_t *bytes, CUdevice dev), \
    ((void)bytes, (void)dev)) \
  X(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", (CUcontext *ctx, CUdevice dev), \
    ((void)ctx, (void)dev)) \
  X(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", (CUdevice dev), ((void)dev)) \
  X(cuCtxSetCurrent, "cuCtxSetCurrent", (CUcontext ctx), ((void)ctx)) \
  X(cuCtxSynchronize, "cuCtxSynchronize", (void), ((void)0)) \
  X(cuMemGetInfo, "cuMemGetInfo_v2", (size_t *free_bytes, size_t *total), \
    ((void)free_bytes, (void)total)) \
  X(cuMemAlloc, "cuMemAlloc_v2", (CUdeviceptr *ptr, size_t bytes), ((void)ptr, (void)bytes)) \
  X(cuMemFree, "cuMemFree_v2", (CUdeviceptr ptr), ((void)ptr)) \
  X(cuMemcpyHtoD, "cuMemcpyHtoD_v2", (CUdeviceptr dst, const void *src, size_t bytes), \
    ((void)dst, (void)src, (void)bytes)) \
  X(cuMemcpyDtoH, "cuMemcpyDtoH_v2", (void *dst, CUdeviceptr src, size_t bytes), \
    ((void)dst, (void)src, (void)bytes)) \
  X(cuModuleLoadDataEx, "cuModuleLoadDataEx", \
    (CUmodule *mod, const void *image, unsigned int nopt, int *options, void **values), \
    ((void)mod, (void)image, (void)nopt, (void)options, (void)values)) \
  X(cuModuleUnload, "cuModuleUnload", (CUmodule mod), ((void)mod)) \
  X(cuModuleGetFunction, "cuModuleGetFunction", (CUfunction *fn, CUmodule mod, const char *name), \
    ((void)fn, (void)mod, (void)name)) \
  X(cuFuncSetAttribute, "cuFuncSetAttribute", (CUfunction fn, int attrib, int value), \
    ((void)fn, (void)attrib, (void)value)) \
  X(cuLaunchKernel, "cuLaunchKernel", \
    (CUfunction fn, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, \
     unsigned int by, unsigned int bz, unsigned int shmem, CUstream stream, void **params, \
     void **extra), \
    ((void)fn, (void)gx, (void)gy, (void)gz, (void)bx, (void)by, (void)bz, (void)shmem, \
     (void)stream, (void)params, (void)extra)) \
  X(cuGetErrorName, "cuGetErrorName", (CUresult code, const char **name), \
    ((void)code, (void)name)) \
  X(cuGetErrorString, "cuGetErrorString", (CUresult code, const char **text), \
    ((void)code, (void)text))

/* ------------------------------------------------------------ NVRTC */
#define GPU_NVRTC_API(X) \
  X(nvrtcVersion, "nvrtcVersion", (int *major, int *minor), ((void)major, (void)minor)) \
  X(nvrtcGetNumSupportedArchs, "nvrtcGetNumSupportedArchs", (int *n), ((void)n)) \
  X(nvrtcGetSupportedArchs, "nvrtcGetSupportedArchs", (int *archs), ((void)archs)) \
  X(nvrtcCreateProgram, "nvrtcCreateProgram", \
    (nvrtcProgram *prog, const char *src, const char *name, int nheaders, \
     const char *const *headers, const char *const *include_names), \
    ((void)prog, (void)src, (void)name, (void)nheaders, (void)headers, (void)include_names)) \
  X(nvrtcDestroyProgram, "nvrtcDestroyProgram", (nvrtcProgram *prog), ((void)prog)) \
  X(nvrtcCompileProgram, "nvrtcCompileProgram", \
    (nvrtcProgram prog, int nopt, const char *const *options), \
    ((void)prog, (void)nopt, (void)options)) \
  X(nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize", (nvrtcProgram prog, size_t *n), \
    ((void)prog, (void)n)) \
  X(nvrtcGetProgramLog, "nvrtcGetProgramLog", (nvrtcProgram prog, char *log), \
    ((void)prog, (void)log)) \
  X(nvrtcGetPTXSize, "nvrtcGetPTXSize", (nvrtcProgram prog, size_t *n), ((void)prog, (void)n)) \
  X(nvrtcGetPTX, "nvrtcGetPTX", (nvrtcProgram prog, char *ptx), ((void)prog, (void)ptx)) \
  X(nvrtcGetCUBINSize, "nvrtcGetCUBINSize", (nvrtcProgram prog, size_t *n), \
    ((void)prog, (void)n)) \
  X(nvrtcGetCUBIN, "nvrtcGetCUBIN", (nvrtcProgram prog, char *cubin), ((void)prog, (void)cubin))

/* The bound entry points: gpu_cu.cuMemAlloc(&p, n), gpu_nvrtc.nvrtcVersion(&a, &b).
 * Valid (stubs at worst) once gpu.c has tried to load the library. */
typedef struct gpu_cu_api {
#define X(member, symbol, params, uses) CUresult (*member) params;
  GPU_CU_API(X)
#undef X
} gpu_cu_api;

typedef struct gpu_nvrtc_api {
#define X(member, symbol, params, uses) nvrtcResult (*member) params;
  GPU_NVRTC_API(X)
#undef X
} gpu_nvrtc_api;

extern gpu_cu_api gpu_cu;
extern gpu_nvrtc_api gpu_nvrtc;

#endif
