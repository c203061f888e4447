# Test setup: at most 2 OpenMP threads, a private cache folder, float64,
# no compilation messages (tests that need them turn them on).
Sys.setenv(OMP_THREAD_LIMIT = 2)
rk_test_cache <- file.path(tempdir(), "rkeops-test-cache")
dir.create(rk_test_cache, showWarnings = FALSE, recursive = TRUE)
Sys.setenv(RKEOPS_CACHE_DIR = rk_test_cache)
set_rkeops_cache_dir(rk_test_cache, verbose = FALSE)
rkeops_use_float64()
rkeops_disable_verbosity()

# Dense squared distances |x_i - y_j|^2, coordinate by coordinate (no
# cancellation from the |x|^2 + |y|^2 - 2 x.y expansion).
sqdist_mat <- function(x, y) {
  d <- matrix(0, nrow(x), nrow(y))
  for (k in seq_len(ncol(x))) d <- d + outer(x[, k], y[, k], "-")^2
  d
}

# Dense reference of Sum_Reduction(F, axis) for F given as an R function of
# one i-row list and one j-row list (named lists of row vectors), by loops.
dense_sum <- function(fun, vi, vj, axis) {
  m <- nrow(vi[[1]])
  n <- nrow(vj[[1]])
  rows <- function(v, k) lapply(v, function(a) a[k, ])
  if (axis == 0) {
    out <- lapply(seq_len(m), function(i) {
      Reduce(`+`, lapply(seq_len(n), function(j) fun(rows(vi, i), rows(vj, j))))
    })
  } else {
    out <- lapply(seq_len(n), function(j) {
      Reduce(`+`, lapply(seq_len(m), function(i) fun(rows(vi, i), rows(vj, j))))
    })
  }
  do.call(rbind, out)
}

# Normwise relative error check: max |res - ref| <= tol * max |ref|, with
# equal dimensions and no NA/NaN.
expect_close <- function(res, ref, tol) {
  act <- list(val = res, lab = paste(deparse(substitute(res)), collapse = ""))
  ref <- as.matrix(ref)
  ok_shape <- is.matrix(act$val) && identical(dim(act$val), dim(ref))
  if (!ok_shape) {
    fail(sprintf("%s has dimension %s, expected %s.", act$lab,
                 paste(dim(act$val), collapse = " x "),
                 paste(dim(ref), collapse = " x ")))
    return(invisible(act$val))
  }
  scale <- max(abs(ref))
  if (scale == 0) scale <- 1
  err <- max(abs(act$val - ref)) / scale
  expect(
    !anyNA(act$val) && is.finite(err) && err <= tol,
    sprintf("%s differs from the reference: relative error %.3g > %.3g.",
            act$lab, err, tol)
  )
  invisible(act$val)
}

# Collect the messages signalled while evaluating expr.
collect_messages <- function(expr) {
  msgs <- character()
  value <- withCallingHandlers(
    expr,
    message = function(m) {
      msgs <<- c(msgs, conditionMessage(m))
      invokeRestart("muffleMessage")
    }
  )
  list(value = value, messages = msgs)
}

# A formula unique to this test run (forces a compilation).
unique_int <- function() {
  as.integer(sample.int(1e6, 1) + 1000 * (as.numeric(Sys.time()) %% 1000))
}

# Child R processes: Rscript, whether rkeops is installed where they look
# for it, and their environment (the parent's library path, a cache
# folder, at most 2 threads).
rscript_bin <- file.path(R.home("bin"), "Rscript")

rkeops_installed <- function() {
  any(file.exists(file.path(.libPaths(), "rkeops", "DESCRIPTION")))
}

skip_without_installed_rkeops <- function() {
  skip_on_cran()
  skip_if_not(rkeops_installed(), "rkeops is not installed in the library path")
}

child_env <- function(cache = get_rkeops_cache_dir()) {
  c(sprintf("R_LIBS=%s", shQuote(paste(.libPaths(), collapse = .Platform$path.sep))),
    sprintf("RKEOPS_CACHE_DIR=%s", shQuote(cache)),
    "OMP_THREAD_LIMIT=2")
}

# Wait until all `files` exist (TRUE) or `timeout` seconds passed (FALSE),
# looking every `poll` seconds.
wait_files <- function(files, timeout, poll = 0.05) {
  t0 <- Sys.time()
  while (!all(file.exists(files))) {
    if (as.numeric(Sys.time() - t0, units = "secs") > timeout) return(FALSE)
    Sys.sleep(poll)
  }
  TRUE
}

# Runs the R code `lines` in a child Rscript (child_env(), extra `args`)
# with a time limit, so that a hang fails the test instead of stopping the
# suite; GNU timeout signals the child's whole process group (its forked
# children too).  Returns list(status, log): status 124 or 137 on timeout.
run_child <- function(lines, args = character(), timeout = 120,
                      env = child_env()) {
  script <- tempfile("rk-child-", fileext = ".R")
  writeLines(lines, script)
  cmd <- c("--vanilla", shQuote(script), shQuote(args))
  tbin <- Sys.which("timeout")
  log <- if (nzchar(tbin)) {
    suppressWarnings(system2(tbin, c("-k", "5", as.character(timeout),
                                     shQuote(rscript_bin), cmd),
                             stdout = TRUE, stderr = TRUE, env = env))
  } else {
    suppressWarnings(system2(rscript_bin, cmd, stdout = TRUE, stderr = TRUE,
                             env = env, timeout = timeout))
  }
  status <- attr(log, "status")
  list(status = if (is.null(status)) 0L else status,
       log = paste(log, collapse = "\n"))
}

# The first lines of a child script: rkeops attached quietly, the cache of
# the parent, no messages.
child_setup <- c(
  "suppressPackageStartupMessages(library(rkeops, warn.conflicts = FALSE))",
  "set_rkeops_cache_dir(Sys.getenv('RKEOPS_CACHE_DIR'), verbose = FALSE)",
  "rkeops_disable_verbosity()"
)
