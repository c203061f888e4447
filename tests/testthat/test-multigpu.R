# Several GPUs in one process: rkeops_use_gpu(device = c(0, 1)).
# The option's validation needs no GPU; the runs use the emulated driver of
# tests/engine/fakecuda (two fake devices) when `make test` has built it
# (skipped otherwise, e.g. under R CMD check).

test_that("device_id accepts one device or several distinct ones", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old[setdiff(names(old), "formula_only")]))
  set_rkeops_options(list(device_id = c(0, 1)))
  expect_identical(get_rkeops_options("device_id"), c(0L, 1L))
  set_rkeops_options(list(device_id = 3))
  expect_identical(get_rkeops_options("device_id"), 3L)
  for (bad in list(c(0, 0), c(-1, 1), c(0, 1.5), c(0, NA), numeric(0), "0", 0:64)) {
    expect_error(set_rkeops_options(list(device_id = bad)),
                 "`device_id` should be a whole number >= -1 .* or a vector of distinct device",
                 class = "rkeops_error_arg")
  }
  expect_error(rkeops_use_gpu(c(1, 1)), "`device_id`", class = "rkeops_error_arg")
})

test_that("devices the driver does not report are named in the error", {
  st <- list(available = TRUE, devices = 2L)
  expect_silent(rkeops:::check_gpu_devices(c(0L, 1L), st))
  err <- expect_error(rkeops:::check_gpu_devices(c(0L, 2L, 5L), st),
                      class = "rkeops_error_arg")
  expect_match(conditionMessage(err),
               "GPU devices 2, 5, but the CUDA driver reports 2 devices (0 to 1)",
               fixed = TRUE)
  err <- expect_error(rkeops:::check_gpu_devices(1L, list(devices = 1L)),
                      class = "rkeops_error_arg")
  expect_match(conditionMessage(err), "GPU device 1, but the CUDA driver reports 1 device (0 to 0)",
               fixed = TRUE)
})

rk_sqdist <- function(x, y) {
  d <- 0
  for (k in seq_len(ncol(x))) d <- d + outer(x[, k], y[, k], "-")^2
  d
}

fake_dir <- function() {
  d <- normalizePath(file.path("..", "engine", "build", "fakecuda"), mustWork = FALSE)
  ok <- file.exists(file.path(d, c("libfakecuda.so", "libfakenvrtc.so")))
  if (all(ok) && nzchar(Sys.which("c++"))) d else NULL
}

test_that("on two emulated devices, kernels share their rows and match one device and the CPU", {
  d <- fake_dir()
  skip_if(is.null(d), "the emulated CUDA driver is not built (make test builds it)")
  skip_if(isTRUE(rkeops:::gpu_status()$available), "a real GPU is in use here")
  env <- Sys.getenv(c("RKEOPS_LIBCUDA", "RKEOPS_LIBNVRTC", "FAKECUDA_NDEV"), unset = NA)
  old <- get_rkeops_options()
  on.exit({
    set_rkeops_options(old[setdiff(names(old), "formula_only")])
    for (n in names(env)) {
      if (is.na(env[[n]])) Sys.unsetenv(n) else do.call(Sys.setenv, as.list(env[n]))
    }
    .Call(rkeops:::rk_gpu_unload_r)
  })
  Sys.setenv(RKEOPS_LIBCUDA = file.path(d, "libfakecuda.so"),
             RKEOPS_LIBNVRTC = file.path(d, "libfakenvrtc.so"), FAKECUDA_NDEV = "2")
  .Call(rkeops:::rk_gpu_unload_r)
  st <- rkeops:::gpu_status()
  expect_true(st$available)
  expect_identical(st$devices, 2L)
  err <- expect_error(rkeops_use_gpu(c(0, 2)), class = "rkeops_error_arg")
  expect_match(conditionMessage(err), "GPU device 2, but the CUDA driver reports 2 devices",
               fixed = TRUE)
  expect_identical(get_rkeops_options("backend"), old$backend)

  set.seed(17)
  M <- 701; N <- 333
  x <- matrix(runif(3 * M), M, 3); y <- matrix(runif(3 * N), N, 3); b <- runif(N) + 0.5
  ref <- exp(-rk_sqdist(x, y)) %*% b
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
                     c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)"))
  rkeops_use_gpu(0)
  one <- op(list(x, y, b))
  rkeops_use_gpu(c(0, 1))
  expect_identical(get_rkeops_options("device_id"), c(0L, 1L))
  two <- op(list(x, y, b))
  expect_identical(two, one)
  expect_equal(two, ref, tolerance = 1e-12)
  # a gradient (forward kernel first), and a LazyTensor reduction
  g <- keops_grad(keops_kernel("LogSumExp_Reduction(-SqDist(x, y) * b, 0)",
                               c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)")), "x")
  e <- matrix(runif(M), M, 1)
  g2 <- g(list(x, y, b, e))
  rkeops_use_gpu(0)
  expect_identical(g2, g(list(x, y, b, e)))
  rkeops_use_gpu(c(1, 0))
  X <- LazyTensor(x, "i"); Y <- LazyTensor(y, "j")
  expect_equal(sum(exp(-sqdist(X, Y)), index = "j"), rowSums(exp(-rk_sqdist(x, y))),
               tolerance = 1e-12, ignore_attr = TRUE)
  msgs <- paste(capture_messages(check_rkeops()), collapse = "\n")
  expect_match(msgs, "backend:       GPU (devices 1, 0)", fixed = TRUE)
  expect_match(msgs, "[0] rkeops fake GPU 0", fixed = TRUE)
  expect_match(msgs, "[1] rkeops fake GPU 1", fixed = TRUE)
})
