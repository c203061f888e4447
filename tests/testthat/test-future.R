# rkeops_use_future(): reductions split over future workers (R/future.R).
# Every result is compared with a dense R reference and with the result of
# one process (identical(), bit for bit, where rows are independent).
# plan(sequential) runs the whole path in this process (cheap: most cases);
# then real workers: plan(multisession), plan(cluster) on localhost,
# future.batchtools' batchtools_local; then failing workers (no rkeops, no
# compiler, killed). Workers start slowly: few of them, small data.

skip_without_future <- function() {
  skip_on_cran()
  skip_if_not_installed("future")
  skip_if_not_installed("parallelly")
}

# Runs expr with the future option on (arguments of rkeops_use_future()),
# back to one process afterwards.
with_future <- function(expr, ...) {
  rkeops_use_future(...)
  on.exit(rkeops_use_cpu())
  expr
}

set.seed(1701)
fx <- matrix(rnorm(157 * 3), 157, 3)
fy <- matrix(rnorm(203 * 3), 203, 3)
fb <- matrix(rnorm(203 * 2), 203, 2)
gauss_op <- keops_kernel("Sum_Reduction(Exp(-s * SqDist(x, y)) * b, 0)",
                         c("x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "s = Pm(1)"))
gauss_in <- list(fx, fy, fb, 0.7)
gauss_ref <- exp(-0.7 * sqdist_mat(fx, fy)) %*% fb

test_that("the future option: set, printed, validated, switched off by use_cpu()", {
  skip_without_future()
  old <- rkeops_use_future(chunks = 3, threads = 1)
  on.exit(set_rkeops_options(old))
  expect_identical(get_rkeops_options("future"),
                   list(chunks = 3L, threads = 1L, cache_dir = NULL, split = "auto"))
  expect_identical(get_rkeops_options("backend"), "CPU")
  expect_output(print(get_rkeops_options()), "future: +chunks = 3, threads = 1")
  expect_error(rkeops_use_future(chunks = 0), class = "rkeops_error_arg")
  expect_error(rkeops_use_future(threads = 1.5), "`threads` should be NULL or a whole")
  expect_error(rkeops_use_future(cache_dir = NA), "`cache_dir` should be NULL")
  expect_error(rkeops_use_future(split = "j"), "`split` should be \"auto\"")
  expect_error(set_rkeops_options(list(future = list(chunk = 2))),
               "`future` should be FALSE or list")
  rkeops_use_cpu()
  expect_false(get_rkeops_options("future"))
})

test_that("rows split over chunks: identical to one process (sequential plan)", {
  skip_without_future()
  oplan <- future::plan("sequential")
  on.exit(future::plan(oplan))
  one <- gauss_op(gauss_in)
  expect_close(one, gauss_ref, 1e-12)
  for (ch in c(2L, 3L, 7L, 157L, 1000L)) {
    got <- with_future(gauss_op(gauss_in), chunks = ch, threads = 1)
    expect_identical(got, one, label = sprintf("%d chunks", ch))
  }
  # LazyTensor reductions over j and over i, K-reductions, pairs, LogSumExp
  xi <- Vi(fx)
  yj <- Vj(fy)
  d <- sqdist_mat(fx, fy)
  cases <- list(
    list(f = function() sum(Vj(fb) * exp(-sqdist(xi, yj)), index = "j"),
         ref = exp(-d) %*% fb),
    list(f = function() sum(exp(-sqdist(xi, yj)), index = "i"),
         ref = matrix(colSums(exp(-d)))),
    list(f = function() argKmin(sqdist(xi, yj), K = 3, index = "j"),
         ref = t(apply(d, 1, function(r) order(r)[1:3]))),
    list(f = function() logsumexp(-sqdist(xi, yj), index = "j"),
         ref = matrix(log(rowSums(exp(-d))))),
    list(f = function() min_argmin(sqdist(xi, yj), index = "i"),
         ref = list(matrix(apply(d, 2, min)), matrix(apply(d, 2, which.min))))
  )
  for (k in seq_along(cases)) {
    one <- cases[[k]]$f()
    got <- with_future(cases[[k]]$f(), chunks = 4, threads = 1)
    expect_identical(got, one, label = sprintf("case %d", k))
    ref <- cases[[k]]$ref
    if (is.list(ref)) {
      expect_close(got[[1]], ref[[1]], 1e-12)
      expect_identical(got[[2]], ref[[2]] + 0)
    } else {
      expect_close(got, ref, 1e-12)
    }
  }
  # float32: the same conversion in every chunk
  rkeops_use_float32()
  on.exit(rkeops_use_float64(), add = TRUE)
  one <- gauss_op(gauss_in)
  expect_close(one, gauss_ref, 1e-5)
  expect_identical(with_future(gauss_op(gauss_in), chunks = 3), one)
})

test_that("gradients under future: by rows, forward kernel, parameter sums", {
  skip_without_future()
  oplan <- future::plan("sequential")
  on.exit(future::plan(oplan))
  e <- matrix(rnorm(157 * 2), 157, 2)
  K <- exp(-0.7 * sqdist_mat(fx, fy))
  # d/dx_i of sum_ij e_i . K_ij b_j: rows of i, split
  gx <- keops_grad(gauss_op, "x")
  one <- gx(c(gauss_in, list(e)))
  w <- K * (e %*% t(fb))                      # w_ij = K_ij (e_i . b_j)
  ref <- -2 * 0.7 * (rowSums(w) * fx - w %*% fy)
  expect_close(one, ref, 1e-12)
  expect_identical(with_future(gx(c(gauss_in, list(e))), chunks = 3, threads = 1), one)
  # d/dy_j: rows of j (the other index), split
  gy <- keops_grad(gauss_op, "y")
  one <- gy(c(gauss_in, list(e)))
  ref <- 2 * 0.7 * (t(w) %*% fx - colSums(w) * fy)
  expect_close(one, ref, 1e-12)
  expect_identical(with_future(gy(c(gauss_in, list(e))), chunks = 5, threads = 1), one)
  # d/ds: a sum over rows of i, chunk sums added in order (to rounding)
  gs <- keops_grad(gauss_op, "s")
  one <- gs(c(gauss_in, list(e)))
  ref <- -sum(w * sqdist_mat(fx, fy))
  expect_close(one, matrix(ref), 1e-12)
  expect_close(with_future(gs(c(gauss_in, list(e))), chunks = 3), matrix(ref), 1e-12)
  # LogSumExp over j: its gradient runs the forward kernel first; with
  # respect to x (same rows) it is split, with respect to y it runs here
  lse <- keops_kernel("LogSumExp_Reduction(-SqDist(x, y), 0)", c("x = Vi(3)", "y = Vj(3)"))
  e1 <- matrix(rnorm(157), 157, 1)
  P <- exp(-sqdist_mat(fx, fy))
  P <- P / rowSums(P)
  for (v in c("x", "y")) {
    g <- keops_grad(lse, v)
    one <- g(list(fx, fy, e1))
    ref <- if (v == "x") -2 * c(e1) * (fx - P %*% fy) else
      2 * (t(P * c(e1)) %*% fx - colSums(P * c(e1)) * fy)
    expect_close(one, ref, 1e-12)
    expect_identical(with_future(g(list(fx, fy, e1)), chunks = 3, threads = 1), one,
                     label = paste("LogSumExp gradient in", v))
  }
})

test_that("few output rows: the reduced index is split, partial states merged", {
  skip_without_future()
  oplan <- future::plan("sequential")
  on.exit(future::plan(oplan))
  set.seed(1702)
  x <- matrix(rnorm(5 * 3), 5, 3)
  y <- matrix(rnorm(1500 * 3), 1500, 3)
  b <- matrix(rnorm(1500 * 2), 1500, 2)
  d <- sqdist_mat(x, y)
  xi <- Vi(x)
  yj <- Vj(y)
  # exact: the same candidates whatever the grouping; tolerance for sums
  cases <- list(
    sum = list(function() sum(Vj(b) * exp(-sqdist(xi, yj)), "j"), exp(-d) %*% b, FALSE),
    lse = list(function() logsumexp(-sqdist(xi, yj), "j"),
               matrix(log(rowSums(exp(-d)))), FALSE),
    ssmw = list(function() sumsoftmaxweight(-sqdist(xi, yj), index = "j", weight = Vj(b)),
                (exp(-d) %*% b) / rowSums(exp(-d)), FALSE),
    max = list(function() max(-sqdist(xi, yj), "j"), matrix(apply(-d, 1, max)), TRUE),
    min_argmin = list(function() min_argmin(sqdist(xi, yj), "j"),
                      list(matrix(apply(d, 1, min)), matrix(apply(d, 1, which.min)) + 0), TRUE),
    kmin_argkmin = list(function() Kmin_argKmin(sqdist(xi, yj), 4, "j"),
                        list(t(apply(d, 1, function(r) sort(r)[1:4])),
                             t(apply(d, 1, function(r) order(r)[1:4])) + 0), TRUE),
    # over i, one output row (j-indexed): the i index is split
    sum_i = list(function() sum(exp(-sqdist(Vi(y), Vj(x[1, , drop = FALSE]))), "i"),
                 matrix(sum(exp(-d[1, ]))), FALSE)
  )
  for (nm in names(cases)) {
    f <- cases[[nm]][[1]]
    ref <- cases[[nm]][[2]]
    one <- f()
    got <- with_future(f(), chunks = 3, split = "reduced", threads = 1)
    again <- with_future(f(), chunks = 3, split = "reduced", threads = 1)
    expect_identical(again, got, label = paste(nm, "(deterministic)"))
    if (is.list(ref)) {
      expect_close(got[[1]], ref[[1]], 1e-12)
      expect_identical(got[[2]], ref[[2]], label = paste(nm, "indices"))
    } else {
      expect_close(got, ref, 1e-12)
    }
    if (cases[[nm]][[3]]) expect_identical(got, one, label = paste(nm, "vs one process"))
  }
  # "auto" picks the reduced index for 5 rows and 3 chunks of >= 512
  op <- keops_kernel("ArgMin_Reduction(SqDist(x, y), 0)", c("x = Vi(3)", "y = Vj(3)"))
  expect_identical(with_future(op(list(x, y)), chunks = 2), matrix(apply(d, 1, which.min)) + 0)
})

test_that("under future, bad input is the error of one process; M = 1 runs here", {
  skip_without_future()
  oplan <- future::plan("sequential")
  on.exit(future::plan(oplan))
  bad <- gauss_in
  bad[[3]] <- bad[[3]][-1, ]
  err1 <- tryCatch(gauss_op(bad), error = identity)
  err2 <- tryCatch(with_future(gauss_op(bad), chunks = 2), error = identity)
  expect_s3_class(err2, "rkeops_error_shape")
  expect_identical(conditionMessage(err2), conditionMessage(err1))
  x1 <- fx[1, , drop = FALSE]
  one <- gauss_op(list(x1, fy, fb, 0.7))
  expect_close(one, gauss_ref[1, , drop = FALSE], 1e-12)
  expect_identical(with_future(gauss_op(list(x1, fy, fb, 0.7)), chunks = 4), one)
})

test_that("plan(multisession, workers = 2): identical results, LazyTensors and kernels", {
  skip_without_future()
  skip_without_installed_rkeops()
  oplan <- future::plan(future::multisession, workers = 2)
  on.exit(future::plan(oplan))
  one <- gauss_op(gauss_in)
  # default: one chunk per worker, availableCores() threads in each
  got <- with_future(gauss_op(gauss_in))
  expect_identical(got, one)
  expect_close(got, gauss_ref, 1e-12)
  knn <- keops_kernel("KMin_ArgKMin_Reduction(SqDist(x, y), 4, 1)",
                      c("x = Vi(3)", "y = Vj(3)"))
  one <- knn(list(fx, fy))
  got <- with_future(knn(list(fx, fy)), chunks = 3, threads = 1)
  expect_identical(got, one)
  d <- sqdist_mat(fx, fy)
  expect_identical(got[[2]], t(apply(d, 2, function(r) order(r)[1:4])) + 0)
  # few rows: partial states come back from the workers
  x1 <- fx[1:3, ]
  y2 <- rbind(fy, fy, fy, fy, fy, fy)
  ref <- exp(-0.7 * sqdist_mat(x1, y2)) %*% rbind(fb, fb, fb, fb, fb, fb)
  got <- with_future(gauss_op(list(x1, y2, rbind(fb, fb, fb, fb, fb, fb), 0.7)),
                     split = "reduced", threads = 1)
  expect_close(got, ref, 1e-12)
  expect_false(identical(future::value(future::future(Sys.getpid())), Sys.getpid()))
})

test_that("plan(cluster) on localhost; a killed worker gives one error naming its chunk", {
  skip_without_future()
  skip_without_installed_rkeops()
  cl <- parallelly::makeClusterPSOCK(rep("localhost", 2))
  oplan <- future::plan(future::cluster, workers = cl)
  on.exit({
    future::plan(oplan)
    try(parallel::stopCluster(cl), silent = TRUE)
    for (node in cl) try(close(node$con), silent = TRUE)
  })
  one <- gauss_op(gauss_in)
  expect_identical(with_future(gauss_op(gauss_in), chunks = 2, threads = 1), one)
  pids <- unlist(parallel::clusterCall(cl, Sys.getpid))
  tools::pskill(pids[2], tools::SIGKILL)
  Sys.sleep(0.3)
  err <- tryCatch(with_future(gauss_op(gauss_in), chunks = 2, threads = 1),
                  error = identity)
  expect_s3_class(err, "rkeops_error_future")
  expect_match(conditionMessage(err), "chunk 2 of 2 \\(output rows 79 to 157\\) failed")
})

test_that("workers without rkeops, or without a compiler, are reported", {
  skip_without_future()
  skip_without_installed_rkeops()
  sys_libs <- unique(c(.Library.site, .Library))
  skip_if(any(file.exists(file.path(sys_libs, "rkeops"))), "rkeops in the system library")
  cl <- parallelly::makeClusterPSOCK(1L, rscript_libs = sys_libs)
  oplan <- future::plan(future::cluster, workers = cl)
  on.exit({
    future::plan(oplan)
    try(parallel::stopCluster(cl), silent = TRUE)
  })
  err <- tryCatch(with_future(gauss_op(gauss_in), chunks = 2), error = identity)
  expect_s3_class(err, "rkeops_error_future")
  expect_match(conditionMessage(err),
               "chunk 1 of 2 .* failed on worker .*: the package rkeops is not installed there")
  expect_match(conditionMessage(err), "chunks 2 failed too", fixed = TRUE)
  parallel::stopCluster(cl)

  # no compiler on the worker's PATH and an empty cache folder there
  cl <- parallelly::makeClusterPSOCK(1L, rscript_envs = c(PATH = "/nonexistent"))
  future::plan(future::cluster, workers = cl)
  empty <- tempfile("rkeops-empty-cache")
  err <- tryCatch(with_future(gauss_op(gauss_in), chunks = 2, threads = 1,
                              cache_dir = empty),
                  error = identity)
  expect_s3_class(err, "rkeops_error_future")
  expect_match(conditionMessage(err), "chunk 1 of 2 \\(output rows 1 to 78\\) failed on worker")
  expect_match(conditionMessage(err), "could not run the C compiler")
})

test_that("future.batchtools::batchtools_local runs the chunks as jobs", {
  skip_without_future()
  skip_without_installed_rkeops()
  skip_if_not_installed("future.batchtools")
  # the jobs' registries in a temporary folder, not in the tests' folder
  oopt <- options(future.cache.path = tempfile("rkeops-batchtools"))
  oplan <- future::plan(future.batchtools::batchtools_local)
  on.exit({
    future::plan(oplan)
    options(oopt)
  })
  one <- gauss_op(gauss_in)
  expect_identical(with_future(gauss_op(gauss_in), chunks = 2, threads = 1), one)
})
