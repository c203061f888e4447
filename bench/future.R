# bench/future.R -- speed-up of rkeops_use_future() with 2 multisession
# workers over 1, one thread each, on the Gaussian kernel sum
# a_i = sum_j exp(-|x_i - y_j|^2) b_j (D = 3), M = N = 2e5 by default.
# Not part of the package, not run by tests.
#
#   make install && R_LIBS=.lib Rscript bench/future.R
#
# Environment:
#   RKEOPS_BENCH_N     M = N (default 2e5)
#   RKEOPS_BENCH_REPS  timed runs per setting, the median is printed (default 3)
#
# Both settings cut the rows into the same 2 chunks, so their results are
# identical (checked); with 1 worker the chunks run one after the other.
# The times include sending the data to the workers and the results back;
# the workers' start-up and the compilation are excluded (a warm-up run).

suppressPackageStartupMessages(library(rkeops))
for (p in c("future", "parallelly")) {
  if (!requireNamespace(p, quietly = TRUE)) {
    stop("bench/future.R needs the package '", p, "' (apt-get install r-cran-", p, ")")
  }
}
env_num <- function(name, default) {
  v <- Sys.getenv(name, "")
  if (nzchar(v)) as.numeric(v) else default
}
N <- as.integer(env_num("RKEOPS_BENCH_N", 2e5))
reps <- max(1L, as.integer(env_num("RKEOPS_BENCH_REPS", 3)))
rkeops_disable_verbosity()
options(width = 150)

set.seed(1)
x <- matrix(runif(N * 3), N, 3)
y <- matrix(runif(N * 3), N, 3)
b <- matrix(runif(N), N, 1)
op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
                   c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)"))

time_median <- function(f) {
  f()  # warm-up: worker start-up, package loading, compilation
  t <- vapply(seq_len(reps), function(r) system.time(f())[["elapsed"]], 0)
  list(t = stats::median(t), res = f)
}

rkeops_use_cpu(1)
t_one <- time_median(function() op(list(x, y, b)))
one <- op(list(x, y, b))

run_workers <- function(w) {
  oplan <- future::plan(future::multisession, workers = w)
  on.exit(future::plan(oplan))
  rkeops_use_future(chunks = 2, threads = 1)
  on.exit(rkeops_use_cpu(1), add = TRUE)
  tm <- time_median(function() op(list(x, y, b)))
  list(t = tm$t, same = identical(op(list(x, y, b)), one))
}
w1 <- run_workers(1)
w2 <- run_workers(2)

cat("rkeops_use_future(): Gaussian kernel sum, D = 3, M = N =", format(N, big.mark = ","),
    "float64,", reps, "runs (median)\n")
cat(sprintf("  machine: %d logical cores (parallelly::availableCores() = %d)\n",
            parallel::detectCores(), parallelly::availableCores()))
tab <- data.frame(
  setting = c("one process, 1 thread", "1 multisession worker x 1 thread (2 chunks)",
              "2 multisession workers x 1 thread (2 chunks)"),
  seconds = round(c(t_one$t, w1$t, w2$t), 3),
  identical = c(NA, w1$same, w2$same)
)
tab$speedup_vs_1_worker <- round(w1$t / tab$seconds, 2)
print(tab, row.names = FALSE)
cat(sprintf("\nspeed-up of 2 workers over 1: %.2fx (target >= 1.7x on 2 cores)\n", w1$t / w2$t))
