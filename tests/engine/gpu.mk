# tests/engine/gpu.mk -- the GPU backend's tests: a fragment of
# tests/engine/Makefile, whose variables and rules it uses.  Hook it with
# "-include gpu.mk" at the end of that Makefile, or run
#   make -C tests/engine -f Makefile -f gpu.mk TARGET
#
#   make nvrtc-check    build/test_nvrtc (ASan, UBSan, LeakSanitizer): the
#                       generation limits, then every op of ops.def and every
#                       reduction of reductions.def (float32 and float64,
#                       gradients, summation schemes) generated as CUDA and
#                       compiled by NVRTC for compute_75, plus a few CUBINs:
#                       compile-only, no GPU and no driver needed.  Skipped
#                       with a message where libnvrtc does not load.  Last
#                       line: "NVRTC tests: N passed, M failed".  About a
#                       minute.
#   make gpu-emu-check  build/test_gpu_emu (ASan, UBSan, LeakSanitizer): the
#                       GPU backend end to end on a fake device (fakecuda/:
#                       a libcuda and a libnvrtc that build the generated
#                       CUDA as host C++ and run its blocks as threads),
#                       every result against the CPU backend.  Needs a C++
#                       compiler (c++, or FAKENVRTC_CXX).  Last line: "GPU
#                       emulation tests: N passed, M failed".  About two
#                       minutes, mostly compilers.
#   make gpu-check      ./gpu-check.sh build/rk-check: GPU against CPU on
#                       a table of formulas and sizes, and the Gaussian
#                       benchmark; needs a GPU (says "skipped" without one).
#
# libnvrtc and libcuda are found at run time by the engine itself
# (RKEOPS_LIBNVRTC, RKEOPS_LIBCUDA, the sonames, $CUDA_HOME/lib64,
# /usr/local/cuda/lib64): nothing CUDA is needed to build these tests.

GPU_SAN_ENV := ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
               OMP_THREAD_LIMIT=2
FAKECUDA := $(BUILD)/fakecuda

.PHONY: nvrtc-check gpu-emu-check gpu-check

$(BUILD)/test_nvrtc: $(BUILD)/san/t/test_nvrtc.o $(SAN_ENGINE_OBJ)
	$(CC) $(SANFLAGS) -o $@ $^ $(LIBS)

# linked with OpenMP so that libgomp stays loaded: the CPU kernels it runs
# (the reference side) pull libgomp in, and unloading it with the last
# kernel while its idle thread lives crashes at exit
$(BUILD)/test_gpu_emu: $(BUILD)/san/t/test_gpu_emu.o $(SAN_ENGINE_OBJ)
	$(CC) $(SANFLAGS) -fopenmp -o $@ $^ $(LIBS)

$(FAKECUDA)/libfakecuda.so: fakecuda/fake_cuda.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -g -O1 $(WARN) -fPIC -shared -o $@ $< -lpthread -ldl -lm

$(FAKECUDA)/libfakenvrtc.so: fakecuda/fake_nvrtc.c fakecuda/emu.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -g -O1 $(WARN) -fPIC -shared '-DFAKE_EMU_H="$(abspath fakecuda/emu.h)"' \
	  -o $@ $<

nvrtc-check: $(BUILD)/test_nvrtc
	$(GPU_SAN_ENV) $(BUILD)/test_nvrtc

gpu-emu-check: $(BUILD)/test_gpu_emu $(FAKECUDA)/libfakecuda.so $(FAKECUDA)/libfakenvrtc.so
	$(GPU_SAN_ENV) $(BUILD)/test_gpu_emu $(abspath $(FAKECUDA))

gpu-check: $(BUILD)/rk-check
	sh ./gpu-check.sh $(BUILD)/rk-check
