# Robustness across sessions and in long runs: LazyTensors and operators
# through saveRDS()/readRDS() (same session and a new R process), user
# interrupts of a long reduction (from another process, and in this
# process so that a memory checker sees the interrupted path), and
# reductions over more than 2^31 (and 2^32) pairs.

rb_sx <- matrix(c(0.1, 0.5, 0.9, 0.2, 0.4, 0.6), 3, 2)
rb_sy <- matrix(c(0.3, 0.7, 0.2, 0.8), 2, 2)
rb_sb <- matrix(c(1.5, -0.5), 2, 1)
rb_sk <- exp(-sqdist_mat(rb_sx, rb_sy))

test_that("LazyTensors and operators work after saveRDS() and readRDS()", {
  lt <- exp(-sqdist(Vi(rb_sx), Vj(rb_sy))) * Vj(rb_sb)
  ref <- rb_sk %*% rb_sb
  expect_close(sum(lt, index = "j"), ref, 1e-13)
  n <- unique_int()
  op <- keops_kernel(
    sprintf("Sum_Reduction(Exp(-SqDist(x, y)) * b * IntCst(%d), 0)", n),
    c("x = Vi(2)", "y = Vj(2)", "b = Vj(1)")
  )
  expect_close(op(list(rb_sx, rb_sy, rb_sb)), n * ref, 1e-13)
  knn <- keops_kernel("Min_ArgMin_Reduction(SqDist(x, y), 1)",
                      c("x = Vi(2)", "y = Vj(2)"))
  knn_ref <- knn(list(rb_sx, rb_sy))
  files <- file.path(tempdir(), c("rb-lt.rds", "rb-op.rds", "rb-knn.rds"))
  saveRDS(lt, files[1])
  saveRDS(op, files[2])
  saveRDS(knn, files[3])

  # same session: the pointers read back are empty; the kernels are found
  # again (in memory), never called through a NULL pointer
  lt2 <- readRDS(files[1])
  op2 <- readRDS(files[2])
  knn2 <- readRDS(files[3])
  ptr <- environment(op2)$st$ptr
  expect_true(is.null(ptr) || identical(typeof(ptr), "externalptr"))
  expect_close(sum(lt2, index = "j"), ref, 1e-13)
  expect_close(sum(lt2 * 2, index = "i"), 2 * t(rb_sk) %*% rep(1, 3) *
                 as.vector(rb_sb), 1e-13)
  expect_close(op2(list(rb_sx, rb_sy, rb_sb)), n * ref, 1e-13)
  expect_identical(knn2(list(rb_sx, rb_sy)), knn_ref)
  # a gradient of an operator read back (its kernel not called yet)
  g <- keops_grad(readRDS(files[2]), "x")
  e <- matrix(1, 3, 1)
  dx <- g(list(rb_sx, rb_sy, rb_sb, e))
  ref_dx <- n * sapply(1:2, function(d) {
    rowSums(-2 * outer(rb_sx[, d], rb_sy[, d], "-") * rb_sk *
              matrix(rb_sb, 3, 2, byrow = TRUE))
  })
  expect_close(dx, ref_dx, 1e-12)

  # a new R process
  skip_without_installed_rkeops()
  out <- file.path(tempdir(), "rb-saved-results.rds")
  unlink(out)
  script <- tempfile(fileext = ".R")
  writeLines(c(
    "suppressPackageStartupMessages(library(rkeops, warn.conflicts = FALSE))",
    "set_rkeops_cache_dir(Sys.getenv('RKEOPS_CACHE_DIR'), verbose = FALSE)",
    "rkeops_disable_verbosity()",
    "args <- commandArgs(trailingOnly = TRUE)",
    "lt <- readRDS(args[[1]]); op <- readRDS(args[[2]])",
    "knn <- readRDS(args[[3]])",
    "x <- readRDS(args[[4]])",
    "res <- list(lt_j = sum(lt, index = 'j'),",
    "            op = op(list(x$x, x$y, x$b)),",
    "            knn = knn(list(x$x, x$y)),",
    "            grad = keops_grad(op, 'x')(list(x$x, x$y, x$b, x$e)))",
    "saveRDS(res, args[[5]])"
  ), script)
  data_file <- tempfile(fileext = ".rds")
  saveRDS(list(x = rb_sx, y = rb_sy, b = rb_sb, e = e), data_file)
  log <- system2(rscript_bin, c("--vanilla", shQuote(script),
                               shQuote(c(files, data_file, out))),
                 stdout = TRUE, stderr = TRUE, env = child_env())
  expect_true(file.exists(out), info = paste(log, collapse = "\n"))
  skip_if_not(file.exists(out))
  res <- readRDS(out)
  expect_close(res$lt_j, ref, 1e-13)
  expect_close(res$op, n * ref, 1e-13)
  expect_identical(res$knn, knn_ref)
  expect_close(res$grad, ref_dx, 1e-12)
})

# A long reduction: a Gaussian kernel sum over n x n pairs, D = 3, float64,
# one thread (about 25 s at n = 1.5e5 on a 2020s core).
rb_long_setup <- c(
  "suppressPackageStartupMessages(library(rkeops, warn.conflicts = FALSE))",
  "set_rkeops_cache_dir(Sys.getenv('RKEOPS_CACHE_DIR'), verbose = FALSE)",
  "rkeops_disable_verbosity(); rkeops_use_cpu(1)",
  "op <- keops_kernel('Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)',",
  "                   c('x = Vi(3)', 'y = Vj(3)', 'b = Vj(1)'))",
  "n <- 1.5e5",
  "x <- matrix((seq_len(3 * n) * 0.6180339887) %% 1, n, 3)",
  "b <- matrix((seq_len(n) * 0.4142135624) %% 1, n, 1)",
  "small <- list(x[1:5, ], x[1:7, ], b[1:7, , drop = FALSE])",
  "ref <- op(small)"
)

test_that("an interrupted long reduction returns fast and leaves R usable", {
  skip_without_installed_rkeops()
  work <- tempfile("rb-interrupt-")
  dir.create(work)
  f <- function(name) file.path(work, name)
  writeLines(c(
    "work <- commandArgs(trailingOnly = TRUE)[[1]]",
    "f <- function(name) file.path(work, name)",
    rb_long_setup,
    "writeLines(as.character(Sys.getpid()), f('pid.tmp'))",
    "file.rename(f('pid.tmp'), f('pid'))",
    "t_start <- Sys.time()",
    "res <- tryCatch({",
    "  op(list(x, x, b))",
    "  'finished'",
    "}, interrupt = function(e) {",
    "  t_handler <- as.numeric(Sys.time())",
    "  t_signal <- as.numeric(readLines(f('signal')))",
    "  sprintf('INTERRUPTED %.6f', t_handler - t_signal)",
    "}, error = function(e) paste('ERROR', conditionMessage(e)))",
    "t0 <- Sys.time()",
    "again <- op(small)",
    "ok <- identical(again, ref)",
    "out <- c(res, sprintf('%s %.3f', if (ok) 'OK' else 'WRONG',",
    "                      as.numeric(Sys.time() - t0, units = 'secs')))",
    "writeLines(out, f('out.tmp'))",
    "file.rename(f('out.tmp'), f('out'))"
  ), f("child.R"))
  system2(rscript_bin, c("--vanilla", shQuote(f("child.R")), shQuote(work)),
          stdout = f("log"), stderr = f("log"), wait = FALSE,
          env = child_env())
  started <- wait_files(f("pid"), 120, poll = 0.02)
  expect_true(started, info = paste(readLines(f("log")), collapse = "\n"))
  skip_if_not(started)
  pid <- as.integer(readLines(f("pid")))
  # a child that never answers is killed (and only then: its pid could be
  # reused once it has exited)
  on.exit(if (!file.exists(f("out"))) tools::pskill(pid, tools::SIGKILL),
          add = TRUE)
  Sys.sleep(1)
  # the time of the signal first, then the signal
  writeLines(sprintf("%.6f", as.numeric(Sys.time())), f("signal.tmp"))
  file.rename(f("signal.tmp"), f("signal"))
  tools::pskill(pid, tools::SIGINT)
  done <- wait_files(f("out"), 60, poll = 0.02)
  expect_true(done, info = paste(readLines(f("log")), collapse = "\n"))
  skip_if_not(done)
  out <- readLines(f("out"))
  expect_length(out, 2L)
  expect_match(out[1], "^INTERRUPTED ")
  delay <- as.numeric(sub("^INTERRUPTED ", "", out[1]))
  expect_true(is.finite(delay) && delay < 0.5,
              label = sprintf("interrupt delay of %s s", out[1]))
  expect_match(out[2], "^OK ")
})

test_that("Ctrl-C during a compilation stops the compiler and leaves the cache as it was", {
  skip_without_installed_rkeops()
  skip_if(.Platform$OS.type != "unix")
  work <- tempfile("rb-compile-interrupt-")
  dir.create(file.path(work, "tmp"), recursive = TRUE)
  dir.create(file.path(work, "cache"))
  f <- function(name) file.path(work, name)
  writeLines(c(
    "work <- commandArgs(trailingOnly = TRUE)[[1]]",
    "f <- function(name) file.path(work, name)",
    child_setup,
    # about 8 s of compilation (100 terms)
    "big <- sprintf('Sum_Reduction(%s, 0)', paste(sprintf(",
    "  'Exp(-SqDist(x, y) * IntCst(%d)) * Sin(x * IntCst(%d))', 1:100, 1:100),",
    "  collapse = ' + '))",
    "op <- keops_kernel(big, c('x = Vi(3)', 'y = Vj(3)'))",
    "x <- matrix((1:6) / 7, 2, 3)",
    "writeLines(as.character(Sys.getpid()), f('pid.tmp'))",
    "file.rename(f('pid.tmp'), f('pid'))",
    "res <- tryCatch({",
    "  op(list(x, x))",
    "  'finished'",
    "}, interrupt = function(e) {",
    "  t_handler <- as.numeric(Sys.time())",
    "  t_signal <- as.numeric(readLines(f('signal')))",
    "  sprintf('INTERRUPTED %.6f', t_handler - t_signal)",
    "}, error = function(e) paste('ERROR', conditionMessage(e)))",
    "small <- keops_kernel('Sum_Reduction(SqDist(x, y), 0)', c('x = Vi(3)', 'y = Vj(3)'))",
    "d <- sum((x[1, ] - x[2, ])^2)",
    "ok <- isTRUE(all.equal(small(list(x, x))[, 1], c(d, d), tolerance = 1e-12))",
    "writeLines(c(res, if (ok) 'OK' else 'WRONG'), f('out.tmp'))",
    "file.rename(f('out.tmp'), f('out'))"
  ), f("child.R"))
  env <- c(child_env(f("cache")), sprintf("TMPDIR=%s", shQuote(f("tmp"))))
  system2(rscript_bin, c("--vanilla", shQuote(f("child.R")), shQuote(work)),
          stdout = f("log"), stderr = f("log"), wait = FALSE, env = env)
  started <- wait_files(f("pid"), 120, poll = 0.02)
  expect_true(started, info = paste(readLines(f("log")), collapse = "\n"))
  skip_if_not(started)
  pid <- as.integer(readLines(f("pid")))
  on.exit(if (!file.exists(f("out"))) tools::pskill(pid, tools::SIGKILL),
          add = TRUE)
  Sys.sleep(1.5)
  # the compiler runs (its private folder holds the source)
  expect_length(Sys.glob(file.path(f("tmp"), "rkeops-build-*", "k.c")), 1L)
  writeLines(sprintf("%.6f", as.numeric(Sys.time())), f("signal.tmp"))
  file.rename(f("signal.tmp"), f("signal"))
  tools::pskill(pid, tools::SIGINT)
  done <- wait_files(f("out"), 60, poll = 0.02)
  expect_true(done, info = paste(readLines(f("log")), collapse = "\n"))
  skip_if_not(done)
  out <- readLines(f("out"))
  expect_match(out[1], "^INTERRUPTED ")
  delay <- as.numeric(sub("^INTERRUPTED ", "", out[1]))
  expect_true(is.finite(delay) && delay < 1,
              label = sprintf("interrupt delay of %s s", out[1]))
  expect_identical(out[2], "OK")
  # the cache holds the small kernel only, no temporary file; the private
  # build folders are gone; no compiler of that folder is left running
  expect_length(list.files(f("cache"), pattern = "^rk.*\\.so$"), 1L)
  expect_identical(list.files(f("cache"), pattern = "^tmp-"), character())
  expect_identical(list.files(f("tmp"), pattern = "^rkeops-build-"), character())
  if (file.exists("/proc/self/cmdline")) {
    procs <- list.files("/proc", pattern = "^[0-9]+$", full.names = TRUE)
    cmd <- vapply(procs, function(p) {
      tryCatch({
        b <- readBin(file.path(p, "cmdline"), "raw", 65536)
        b[b == as.raw(0)] <- charToRaw(" ")
        rawToChar(b)
      }, error = function(e) "", warning = function(w) "")
    }, "")
    expect_false(any(grepl(f("tmp"), cmd, fixed = TRUE)))
  }
})

test_that("an interrupt in this process frees what the kernel held", {
  skip_on_cran()
  skip_if(.Platform$OS.type != "unix")
  # float32: the run also holds converted copies of its inputs
  old <- set_rkeops_options(list(precision = "float32", ncore = 1))
  on.exit(set_rkeops_options(old), add = TRUE)
  env <- new.env()
  eval(parse(text = rb_long_setup[-(1:3)]), env)
  # a helper process sends SIGINT to this one in 1.5 s
  system2("sh", c("-c", shQuote(sprintf("sleep 1.5; kill -INT %d",
                                        Sys.getpid()))), wait = FALSE)
  res <- tryCatch(
    {
      with(env, op(list(x, x, b)))
      "finished"
    },
    interrupt = function(e) "interrupted"
  )
  expect_identical(res, "interrupted")
  expect_identical(with(env, op(small)), env$ref)
})

test_that("more than 2^31 pairs give exact results", {
  skip_on_cran()
  skip_if(nzchar(Sys.getenv("RKEOPS_VALGRIND")), "minutes under valgrind")
  old <- set_rkeops_options(list(precision = "float64", ncore = 0))
  on.exit(set_rkeops_options(old), add = TRUE)
  # 50000 x 50000 = 2.5e9 pairs: sum_j i * j = i N (N + 1) / 2, exact in
  # double (every partial sum is an integer below 2^53)
  M <- 50000L
  N <- 50000L
  x <- matrix(as.numeric(seq_len(M)))
  y <- matrix(as.numeric(seq_len(N)))
  op <- keops_kernel("Sum_Reduction(x * y, 0)", c("x = Vi(1)", "y = Vj(1)"))
  res <- op(list(x, y))
  expect_identical(dim(res), c(M, 1L))
  expect_identical(res[, 1], as.numeric(seq_len(M)) * (N * (N + 1) / 2))
  # the nearest i of each j over 2.5e9 pairs: index j itself (1-based)
  op <- keops_kernel("ArgMin_Reduction(Abs(x - y), 1)",
                     c("x = Vi(1)", "y = Vj(1)"))
  res <- op(list(x, y))
  expect_identical(res[, 1], as.numeric(seq_len(N)))
  # 100000 x 45000 = 4.5e9 pairs (> 2^32), reduced over i: a count
  M <- 100000L
  N <- 45000L
  x <- matrix(as.numeric(seq_len(M)))
  op <- keops_kernel("Sum_Reduction(IntCst(1) + 0 * x * y, 1)",
                     c("x = Vi(1)", "y = Vj(1)"))
  res <- op(list(x, y[seq_len(N), , drop = FALSE]))
  expect_identical(dim(res), c(N, 1L))
  expect_identical(range(res), c(M, M) + 0)
})
