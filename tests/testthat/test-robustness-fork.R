# Forked children (parallel::mclapply, future's multicore plan) after the
# parent ran a kernel on a team of threads: GNU OpenMP's pool does not
# survive fork(), so the children run on one thread (the parent keeps its
# threads).  Each scenario runs in a child R process with a time limit, so
# that a deadlock fails the test instead of hanging the suite.

fk_n <- 3000L
fk_data <- function() {
  set.seed(21)
  list(x = matrix(runif(fk_n * 3), fk_n, 3), y = matrix(runif(fk_n * 3), fk_n, 3),
       b = matrix(rnorm(fk_n), fk_n, 1))
}
fk_ref <- function(d) exp(-sqdist_mat(d$x, d$y)) %*% d$b

fk_script <- function(fork_lines) {
  c(child_setup,
    "args <- commandArgs(trailingOnly = TRUE)",
    "d <- readRDS(args[[1]])",
    "rkeops_use_cpu(2)",
    "op <- keops_kernel('Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)',",
    "                   c('x = Vi(3)', 'y = Vj(3)', 'b = Vj(1)'))",
    "r0 <- op(list(d$x, d$y, d$b))",
    "nt0 <- .Call(rkeops:::rk_last_threads_r)",
    "run <- function(k) list(res = op(list(d$x, d$y, d$b)),",
    "                        nt = .Call(rkeops:::rk_last_threads_r))",
    fork_lines,
    "r1 <- op(list(d$x, d$y, d$b))",
    "nt1 <- .Call(rkeops:::rk_last_threads_r)",
    "saveRDS(list(r0 = r0, nt0 = nt0, kids = kids, r1 = r1, nt1 = nt1), args[[2]])")
}

fk_check <- function(fork_lines) {
  skip_without_installed_rkeops()
  skip_if(.Platform$OS.type != "unix")
  d <- fk_data()
  dfile <- tempfile(fileext = ".rds")
  out <- tempfile(fileext = ".rds")
  saveRDS(d, dfile)
  run <- run_child(fk_script(fork_lines), c(dfile, out), timeout = 90)
  expect_true(file.exists(out),
              info = sprintf("status %s\n%s", run$status, run$log))
  skip_if_not(file.exists(out))
  res <- readRDS(out)
  ref <- fk_ref(d)
  expect_close(res$r0, ref, 1e-12)
  expect_close(res$r1, ref, 1e-12)
  expect_length(res$kids, 2L)
  for (k in res$kids) {
    expect_close(k$res, ref, 1e-12)
    expect_identical(k$nt, 1L)
  }
  # the parent keeps its team, before and after the fork
  if (isTRUE(.Call(rkeops:::rk_toolchain_r)$have_openmp)) {
    expect_identical(res$nt0, 2L)
    expect_identical(res$nt1, 2L)
  }
}

test_that("parallel::mclapply over a kernel after a threaded run does not hang", {
  fk_check("kids <- parallel::mclapply(1:2, run, mc.cores = 2)")
})

test_that("future's multicore plan runs kernels after a threaded run", {
  skip_if_not_installed("future")
  fk_check(c(
    "suppressPackageStartupMessages(library(future))",
    "if (!supportsMulticore()) options(future.fork.enable = TRUE)",
    "plan(multicore, workers = 2)",
    "fs <- lapply(1:2, function(k) future(run(k), seed = TRUE))",
    "kids <- lapply(fs, value)",
    "plan(sequential)"))
})

test_that("a forked child's own children also run kernels", {
  fk_check(c(
    "job <- parallel::mcparallel(parallel::mclapply(1:2, run, mc.cores = 2))",
    "kids <- parallel::mccollect(job)[[1]]"))
})
