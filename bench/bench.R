# bench/bench.R -- timings of rkeops against dense R (and PyKeOps when it is
# importable), printed as tables.  Not part of the package, not run by tests.
#
#   make install && R_LIBS=.lib Rscript bench/bench.R      (or: make bench)
#
# Environment:
#   RKEOPS_BENCH_CORES        threads for rkeops, default all cores
#   RKEOPS_BENCH_NO_PYKEOPS=1 skip the PyKeOps columns
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

# ------------------------------------------------------------- PyKeOps ----
# The same work through pykeops.numpy.Genred, timed in the same run: best
# of 3 after a warm-up call (which compiles).  PyKeOps' axis 1 is our axis 0.
# R sets LD_LIBRARY_PATH to its own library folders, where a Python built
# against a shared libpython can pick up the system's libpython (and the
# system's package folders): the Python child gets it empty.
py_env <- "LD_LIBRARY_PATH="
have_pykeops <- !identical(Sys.getenv("RKEOPS_BENCH_NO_PYKEOPS"), "1") &&
  nzchar(Sys.which("python3")) &&
  identical(suppressWarnings(system2("python3", c("-c", shQuote("import pykeops")),
                                     stdout = FALSE, stderr = FALSE, env = py_env)), 0L)
py_script <- NULL
if (have_pykeops) {
  py_script <- tempfile(fileext = ".py")
  writeLines(c(
    "import sys, time, re",
    "import numpy as np",
    "import pykeops",
    "pykeops.set_verbose(False)",
    "from pykeops.numpy import Genred",
    "formula, red, aliases, M, N, prec, K = sys.argv[1], sys.argv[2], sys.argv[3].split(';'), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], int(sys.argv[7])",
    "dt = np.float64 if prec == 'float64' else np.float32",
    "rng = np.random.default_rng(0)",
    "args = []",
    "for a in aliases:",
    "    cat, dim = re.search(r'(Vi|Vj|Pm)\\((\\d+)\\)', a).groups()",
    "    n = M if cat == 'Vi' else N if cat == 'Vj' else 1",
    "    v = rng.random((n, int(dim))) if cat != 'Pm' else rng.random(int(dim))",
    "    args.append((v / np.sqrt(int(dim))).astype(dt))",
    "kw = dict(reduction_op=red, axis=1, dtype=prec)",
    "if K > 0: kw['opt_arg'] = K",
    "t0 = time.perf_counter()",
    "f = Genred(formula, aliases, **kw)",
    "f(*args, backend='CPU')",
    "first = time.perf_counter() - t0",
    "best = 1e300",
    "for r in range(3):",
    "    t0 = time.perf_counter(); f(*args, backend='CPU'); best = min(best, time.perf_counter() - t0)",
    "print(first, best)"), py_script)
}
# c(first call, best time) of the same work in PyKeOps, or NAs
pykeops_time <- function(formula, red, aliases, M, N, prec, K = 0L) {
  if (!have_pykeops) return(c(NA_real_, NA_real_))
  cache <- tempfile("pykeops-cache-")
  dir.create(cache)
  on.exit(unlink(cache, recursive = TRUE))
  out <- tryCatch(
    system2("python3", c(py_script, shQuote(formula), red, shQuote(paste(aliases, collapse = ";")),
                         format(M, scientific = FALSE), format(N, scientific = FALSE), prec, K),
            stdout = TRUE, stderr = FALSE, env = c(py_env, paste0("KEOPS_CACHE_FOLDER=", cache),
                                                    paste0("OMP_NUM_THREADS=", ncores))),
    error = function(e) character())
  v <- suppressWarnings(as.numeric(strsplit(utils::tail(out, 1), " ")[[1]]))
  if (length(v) == 2L && all(is.finite(v))) v else c(NA_real_, NA_real_)
}

# --------------------------------------------------------- latencies ------
# Measured before the workloads, while the session is small (R's garbage
# collector costs more per call once large data have been allocated), and
# printed at the end.
measure_latencies <- function() {
  rkeops_use_float64()
  xs <- matrix(runif(30), 10, 3)
  ys <- matrix(runif(30), 10, 3)
  bs <- matrix(runif(10), 10, 1)
  # first call of a formula never compiled before: a fresh cache folder and
  # a random integer constant, so that the C compiler really runs; the
  # median of 3 such formulas
  first_call <- function() {
    fresh <- tempfile("rkeops-bench-fresh-")
    dir.create(fresh)
    invisible(set_rkeops_cache_dir(fresh, verbose = FALSE))
    on.exit({
      invisible(set_rkeops_cache_dir(cache_dir, verbose = FALSE))
      unlink(fresh, recursive = TRUE)
    })
    k <- sample(1e6, 1)
    f_new <- sprintf("Sum_Reduction(Exp(-SqDist(x, y) * IntCst(%d)) * b, 0)", k)
    t0 <- now()
    op_new <- keops_kernel(f_new, c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)"))
    invisible(op_new(list(xs, ys, bs)))
    now() - t0
  }
  t_first <- stats::median(c(first_call(), first_call(), first_call()))
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
  list(first = t_first, kernel = t_kernel, lazy = t_lazy)
}
latencies <- measure_latencies()

# ------------------------------------------------------------ workloads ----
# Each: our formula (axis 0: reduce over j), PyKeOps' inner formula and
# reduction, the declarations, M and N, the precision, and a dense R
# reference run at M, N <= dense_n (its pairs/s is compared).
dense_n <- 1e4
sqd <- function(x, y) outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y)
gen <- function(n, d) matrix(runif(n * d), n, d) / sqrt(d)
workloads <- list(
  list(name = "Gaussian sum D=3", ours = "Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
       py = "Exp(-SqDist(x, y)) * b", red = "Sum", K = 0L,
       args = c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)"), M = 5e4, N = 5e4,
       dense = function(d) exp(-sqd(d[[1]], d[[2]])) %*% d[[3]]),
  list(name = "Gaussian sum D=15, b 15", ours = "Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
       py = "Exp(-SqDist(x, y)) * b", red = "Sum", K = 0L,
       args = c("x = Vi(15)", "y = Vj(15)", "b = Vj(15)"), M = 2e4, N = 2e4,
       dense = function(d) exp(-sqd(d[[1]], d[[2]])) %*% d[[3]]),
  list(name = "ArgKMin K=10 D=3", ours = "ArgKMin_Reduction(SqDist(x, y), 10, 0)",
       py = "SqDist(x, y)", red = "ArgKMin", K = 10L,
       args = c("x = Vi(3)", "y = Vj(3)"), M = 5e4, N = 5e4,
       dense = function(d) t(apply(sqd(d[[1]], d[[2]]), 1, order))[, 1:10]),
  list(name = "ArgKMin K=10 D=15", ours = "ArgKMin_Reduction(SqDist(x, y), 10, 0)",
       py = "SqDist(x, y)", red = "ArgKMin", K = 10L,
       args = c("x = Vi(15)", "y = Vj(15)"), M = 2e4, N = 2e4,
       dense = function(d) t(apply(sqd(d[[1]], d[[2]]), 1, order))[, 1:10]),
  list(name = "LogSumExp D=3", ours = "LogSumExp_Reduction(-SqDist(x, y), 0)",
       py = "-SqDist(x, y)", red = "LogSumExp", K = 0L,
       args = c("x = Vi(3)", "y = Vj(3)"), M = 5e4, N = 5e4,
       dense = function(d) { m <- -sqd(d[[1]], d[[2]]); mx <- apply(m, 1, max); mx + log(rowSums(exp(m - mx))) }),
  list(name = "Gaussian gradient D=3", ours = "Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 0), x, e)",
       py = "Grad(Exp(-SqDist(x, y)) * b, x, e)", red = "Sum", K = 0L,
       args = c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "e = Vi(1)"), M = 5e4, N = 5e4,
       dense = function(d) { W <- exp(-sqd(d[[1]], d[[2]])) * tcrossprod(d[[4]], d[[3]])
                             -2 * (rowSums(W) * d[[1]] - W %*% d[[2]]) }),
  list(name = "k-means step N=1e5 K=50 D=2", ours = "ArgMin_Reduction(SqDist(x, c), 0)",
       py = "SqDist(x, c)", red = "ArgMin", K = 0L,
       args = c("x = Vi(2)", "c = Vj(2)"), M = 1e5, N = 50,
       dense = function(d) max.col(-sqd(d[[1]], d[[2]]), ties.method = "first"))
)

cat("Workloads (pairs/s; time = best of 3 or more after a warm-up; dense R at M, N <= ",
    format(dense_n, scientific = FALSE), "; ratios from pairs/s)\n\n", sep = "")
rows <- list()
set.seed(1)
for (w in workloads) {
  inputs <- lapply(w$args, function(a) {
    dim <- as.integer(sub(".*\\((\\d+)\\).*", "\\1", a))
    if (grepl("Vi", a)) gen(w$M, dim) else gen(w$N, dim)
  })
  dn <- min(w$M, dense_n)
  dm <- min(w$N, dense_n)
  small <- lapply(seq_along(w$args), function(k)
    if (grepl("Vi", w$args[k])) inputs[[k]][seq_len(dn), , drop = FALSE] else inputs[[k]][seq_len(dm), , drop = FALSE])
  t_dense <- best_time(function() w$dense(small), 1L, FALSE)
  r_dense <- dn * dm / t_dense
  for (prec in c("float64", "float32")) {
    if (prec == "float64") rkeops_use_float64() else rkeops_use_float32()
    op <- keops_kernel(w$ours, w$args)
    ref <- w$dense(small)
    got <- op(small)
    got <- if (is.list(got)) got[[1]] else got
    rel <- max(abs(got - ref)) / max(abs(ref), 1)
    ok <- if (grepl("Arg", w$ours)) mean(got == ref) > 0.999 else rel < if (prec == "float64") 1e-10 else 1e-4
    t_ours <- best_time(function() op(inputs), 3L)
    r_ours <- w$M * w$N / t_ours
    py <- pykeops_time(w$py, w$red, w$args, w$M, w$N, prec, w$K)
    r_py <- w$M * w$N / py[2]
    rows[[length(rows) + 1L]] <- data.frame(
      workload = w$name, "M x N" = sprintf("%g x %g", w$M, w$N), precision = prec,
      rkeops = fmt_s(t_ours), "pairs/s" = fmt_rate(r_ours),
      "dense R pairs/s" = fmt_rate(r_dense), "ours/dense" = sprintf("%.1f", r_ours / r_dense),
      "PyKeOps pairs/s" = if (have_pykeops) fmt_rate(r_py) else "n/a",
      "ours/PyKeOps" = if (have_pykeops && is.finite(r_py)) sprintf("%.1f", r_ours / r_py) else "-",
      "PyKeOps 1st call" = if (have_pykeops) fmt_s(py[1]) else "n/a",
      check = if (ok) "ok" else "MISMATCH", check.names = FALSE, stringsAsFactors = FALSE)
    cat(".")
  }
}
cat("\n")
tab <- do.call(rbind, rows)
print(tab, row.names = FALSE, right = TRUE)
if (!have_pykeops) cat("\n  PyKeOps: not importable by python3 here (pip install pykeops==2.3 numpy); columns n/a.\n")

cat("\nLatencies (measured before the workloads)\n")
t_first <- latencies$first
t_kernel <- latencies$kernel
t_lazy <- latencies$lazy
lat <- data.frame(
  measurement = c("first call of a new formula (compile + load + run, median of 3)",
                  "cached call through keops_kernel, 10 x 10 (median of 500)",
                  "cached LazyTensor reduction, 10 x 10 (median of 500)"),
  time = c(fmt_s(t_first), fmt_s(t_kernel), fmt_s(t_lazy)),
  target = c("<= 0.3 s", "<= 15 us", "<= 60 us"),
  met = c(if (t_first <= 0.3) "yes" else "NO",
          if (t_kernel <= 15e-6) "yes" else "NO", if (t_lazy <= 60e-6) "yes" else "NO"),
  stringsAsFactors = FALSE)
print(lat, row.names = FALSE, right = FALSE)
on.exit_cleanup()
