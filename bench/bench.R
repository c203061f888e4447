# bench/bench.R -- timings of rkeops against dense R (and PyKeOps when it is
# importable), printed as tables.  Not part of the package, not run by tests.
#
#   make install && R_LIBS=.lib Rscript bench/bench.R      (or: make bench)
#
# Environment:
#   RKEOPS_BENCH_SIZES        M = N values, default "1e4,1e5"
#   RKEOPS_BENCH_MAX_SECONDS  skip a measurement whose estimated time (from
#                             the smaller size's pairs/s) exceeds this,
#                             default 120
#   RKEOPS_BENCH_DENSE_GB     largest dense M x N matrix, default 2 (GB)
#   RKEOPS_BENCH_CORES        threads for rkeops, default all cores
#
# Timings are the best of a few runs after a warm-up run (so compilation
# is excluded, and counted separately in "first call"); short calls are
# repeated until they add up to half a second.

suppressPackageStartupMessages(library(rkeops))
options(width = 150)

env_num <- function(name, default) {
  v <- Sys.getenv(name, "")
  if (!nzchar(v)) return(default)
  as.numeric(strsplit(v, ",", fixed = TRUE)[[1]])
}
sizes <- env_num("RKEOPS_BENCH_SIZES", c(1e4, 1e5))
max_seconds <- env_num("RKEOPS_BENCH_MAX_SECONDS", 120)
dense_gb <- env_num("RKEOPS_BENCH_DENSE_GB", 2)
cores <- env_num("RKEOPS_BENCH_CORES", NA)

# ------------------------------------------------------------- machine ----
cpu_model <- function() {
  if (file.exists("/proc/cpuinfo")) {
    l <- grep("^model name", readLines("/proc/cpuinfo", warn = FALSE), value = TRUE)
    if (length(l)) return(trimws(sub("^[^:]*:", "", l[1])))
  }
  if (Sys.info()[["sysname"]] == "Darwin") {
    m <- tryCatch(system2("sysctl", c("-n", "machdep.cpu.brand_string"), stdout = TRUE),
                  error = function(e) "")
    if (length(m) && nzchar(m[1])) return(m[1])
  }
  "unknown CPU"
}
ncores <- parallel::detectCores(logical = TRUE)
cat("rkeops benchmark\n")
cat(sprintf("  machine: %s, %d logical cores, %s %s\n", cpu_model(), ncores,
            Sys.info()[["sysname"]], Sys.info()[["machine"]]))
blas <- tryCatch(basename(extSoftVersion()[["BLAS"]]), error = function(e) "")
cat(sprintf("  %s, rkeops %s, BLAS: %s\n", R.version.string,
            as.character(utils::packageVersion("rkeops")),
            if (nzchar(blas)) blas else "R's reference BLAS"))
cat(sprintf("  date: %s\n\n", format(Sys.time(), "%Y-%m-%d %H:%M")))

# ----------------------------------------------------------- set-up -------
cache_dir <- tempfile("rkeops-bench-cache-")
dir.create(cache_dir)
invisible(set_rkeops_cache_dir(cache_dir, verbose = FALSE))
if (is.na(cores)) rkeops_use_cpu() else rkeops_use_cpu(cores)
invisible(rkeops_disable_verbosity())
on.exit_cleanup <- function() unlink(cache_dir, recursive = TRUE)

# wall-clock seconds, microsecond resolution (proc.time() has milliseconds)
now <- function() as.numeric(Sys.time())

# best of at least `reps` timed runs of f() after one untimed run; short
# calls are repeated until they add up to half a second (at most 100 runs)
best_time <- function(f, reps = 3L, warmup = TRUE) {
  if (warmup) f()
  best <- Inf
  total <- 0
  r <- 0L
  while (r < reps || (total < 0.5 && r < 100L)) {
    t0 <- now()
    f()
    dt <- now() - t0
    best <- min(best, dt)
    total <- total + dt
    r <- r + 1L
  }
  best
}

fmt_s <- function(t) {
  if (is.na(t)) return("-")
  if (t < 1e-3) sprintf("%.0f us", t * 1e6)
  else if (t < 1) sprintf("%.1f ms", t * 1e3)
  else sprintf("%.2f s", t)
}
fmt_rate <- function(r) if (is.na(r)) "-" else sprintf("%.3g", r)

gauss_formula <- "Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)"

dense_gauss <- function(x, y, b) {
  d2 <- outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y)
  exp(-d2) %*% b
}

# ------------------------------------------------------------- PyKeOps ----
have_pykeops <- nzchar(Sys.which("python3")) &&
  identical(suppressWarnings(system2("python3", c("-c", shQuote("import pykeops")),
                                     stdout = FALSE, stderr = FALSE)), 0L)
py_script <- NULL
if (have_pykeops) {
  py_script <- tempfile(fileext = ".py")
  writeLines(c(
    "import sys, time",
    "import numpy as np",
    "from pykeops.numpy import Genred",
    "D, DB, M, prec = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]",
    "dt = np.float64 if prec == 'float64' else np.float32",
    "rng = np.random.default_rng(0)",
    "x = rng.random((M, D), dtype=np.float64).astype(dt)",
    "y = rng.random((M, D), dtype=np.float64).astype(dt)",
    "b = rng.random((M, DB), dtype=np.float64).astype(dt)",
    "f = Genred('Exp(-SqDist(x, y)) * b', ['x = Vi(%d)' % D, 'y = Vj(%d)' % D, 'b = Vj(%d)' % DB],",
    "           reduction_op='Sum', axis=1, dtype=prec)",
    "f(x, y, b, backend='CPU')",
    "best = 1e300",
    "for r in range(3):",
    "    t0 = time.perf_counter(); f(x, y, b, backend='CPU'); best = min(best, time.perf_counter() - t0)",
    "print(best)"), py_script)
}
pykeops_time <- function(D, DB, M, prec) {
  if (!have_pykeops) return(NA_real_)
  out <- tryCatch(
    system2("python3", c(py_script, D, DB, format(M, scientific = FALSE), prec),
            stdout = TRUE, stderr = FALSE),
    error = function(e) character())
  v <- suppressWarnings(as.numeric(utils::tail(out, 1)))
  if (length(v) == 1L) v else NA_real_
}

# ------------------------------------------------------ Gaussian table ----
cat("Gaussian kernel sum  a_i = sum_j exp(-|x_i - y_j|^2) b_j,  ", gauss_formula, "\n", sep = "")
cat("  (time: best of 3 or more after a warm-up; dense R = exp(-outer squared distances) %*% b,\n")
cat("   only where the M x N matrix fits in ", dense_gb, " GB; ratio = dense R / rkeops)\n\n", sep = "")

rows <- list()
set.seed(1)
for (D in c(3L, 15L)) {
  DB <- if (D == 3L) 1L else 15L
  op <- keops_kernel(gauss_formula,
                     c(sprintf("x = Vi(%d)", D), sprintf("y = Vj(%d)", D), sprintf("b = Vj(%d)", DB)))
  data <- list()    # per size: the inputs, and dense R's time and result
  for (prec in c("float64", "float32")) {
    if (prec == "float64") rkeops_use_float64() else rkeops_use_float32()
    rate <- NA_real_
    for (M in sort(sizes)) {
      N <- M
      key <- as.character(M)
      if (is.null(data[[key]])) {
        dd <- list(x = matrix(runif(M * D), M, D) / sqrt(D),
                   y = matrix(runif(N * D), N, D) / sqrt(D),
                   b = matrix(runif(N * DB), N, DB), t = NA_real_, ref = NULL)
        if (M * N * 8 / 2^30 <= dense_gb) {
          dd$t <- best_time(function() dense_gauss(dd$x, dd$y, dd$b), 2L)
          dd$ref <- dense_gauss(dd$x, dd$y, dd$b)
        }
        data[[key]] <- dd
      }
      dd <- data[[key]]
      pairs <- M * N
      est <- if (is.na(rate)) 0 else pairs / rate
      t_ours <- NA_real_
      note <- ""
      if (est > max_seconds) {
        note <- sprintf("skipped: about %.0f s per run", est)
      } else {
        # long runs: once, without a warm-up (the smaller size compiled the
        # kernel already); short ones: best of several
        long <- est > 10
        t_ours <- best_time(function() op(list(dd$x, dd$y, dd$b)), if (long) 1L else 3L, !long)
        rate <- pairs / t_ours
        if (!is.null(dd$ref)) {
          got <- op(list(dd$x, dd$y, dd$b))
          rel <- max(abs(got - dd$ref)) / max(abs(dd$ref))
          if (rel > if (prec == "float64") 1e-10 else 1e-4)
            note <- sprintf("MISMATCH with dense R: %.2g", rel)
        }
      }
      t_dense <- dd$t
      t_py <- if (is.na(t_ours)) NA_real_ else pykeops_time(D, DB, M, prec)
      rows[[length(rows) + 1L]] <- data.frame(
        D = D, b_dim = DB, "M=N" = format(M, scientific = TRUE), precision = prec,
        rkeops = fmt_s(t_ours), "pairs/s" = fmt_rate(pairs / t_ours),
        dense_R = fmt_s(t_dense),
        "dense/rkeops" = if (is.na(t_dense) || is.na(t_ours)) "-" else sprintf("%.1f", t_dense / t_ours),
        pykeops = if (have_pykeops) fmt_s(t_py) else "n/a",
        note = note, check.names = FALSE, stringsAsFactors = FALSE)
    }
  }
}
tab <- do.call(rbind, rows)
print(tab, row.names = FALSE, right = TRUE)
if (!have_pykeops) cat("\n  PyKeOps: not importable by python3 here (pip install pykeops); column n/a.\n")

# --------------------------------------------------------- latencies ------
rkeops_use_float64()
cat("\nLatencies\n")
# first call of a formula never compiled before: a fresh cache folder and a
# random integer constant, so that the C compiler really runs
fresh <- tempfile("rkeops-bench-fresh-")
dir.create(fresh)
invisible(set_rkeops_cache_dir(fresh, verbose = FALSE))
k <- sample(1e6, 1)
f_new <- sprintf("Sum_Reduction(Exp(-SqDist(x, y) * IntCst(%d)) * b, 0)", k)
xs <- matrix(runif(30), 10, 3)
ys <- matrix(runif(30), 10, 3)
bs <- matrix(runif(10), 10, 1)
t0 <- now()
op_new <- keops_kernel(f_new, c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)"))
invisible(op_new(list(xs, ys, bs)))
t_first <- now() - t0
invisible(set_rkeops_cache_dir(cache_dir, verbose = FALSE))
unlink(fresh, recursive = TRUE)

# cached calls on a tiny input: the median of many calls, each timed with
# Sys.time() (microsecond resolution; proc.time() has milliseconds)
median_time <- function(f, n = 500L) {
  for (r in 1:20) f()
  t <- numeric(n)
  for (r in seq_len(n)) {
    t0 <- now()
    f()
    t[r] <- now() - t0
  }
  stats::median(t)
}
op_small <- keops_kernel(gauss_formula, c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)"))
t_kernel <- median_time(function() op_small(list(xs, ys, bs)))
t_lazy <- median_time(function() sum(exp(-sqdist(Vi(xs), Vj(ys))) * Vj(bs), index = "j"))

lat <- data.frame(
  measurement = c("first call of a new formula (compile + load + run)",
                  "cached call through keops_kernel, 10 x 10 (median of 500)",
                  "cached LazyTensor reduction, 10 x 10 (median of 500)"),
  time = c(fmt_s(t_first), fmt_s(t_kernel), fmt_s(t_lazy)),
  target = c("<= 0.5 s", "<= 50 us", "-"),
  met = c(if (t_first <= 0.5) "yes" else "NO",
          if (t_kernel <= 50e-6) "yes" else "NO", "-"),
  stringsAsFactors = FALSE)
print(lat, row.names = FALSE, right = FALSE)
on.exit_cleanup()
