# bench/workflows.R -- keops_knn() against FNN::get.knnx() (and RANN::nn2()
# when installed) at D = 3 and D = 50, and keops_kmeans() against
# stats::kmeans() (Lloyd and Hartigan-Wong) per iteration. Not a test.
#
#   R_LIBS=.lib Rscript bench/workflows.R
#   RKEOPS_BENCH_KNN_N=1e5 RKEOPS_BENCH_KMEANS_N=1e6 R_LIBS=.lib Rscript bench/workflows.R
#
# Sizes are kept small by default (the machine is shared); each time is the
# best of `reps` runs, kernels compiled beforehand.

suppressPackageStartupMessages(library(rkeops))
rkeops_disable_verbosity()
env_num <- function(name, default) {
  v <- Sys.getenv(name)
  if (nzchar(v)) as.numeric(v) else default
}
knn_n <- env_num("RKEOPS_BENCH_KNN_N", 2e4)
knn_m <- env_num("RKEOPS_BENCH_KNN_M", 2e3)
km_n <- env_num("RKEOPS_BENCH_KMEANS_N", 1e5)
km_k <- env_num("RKEOPS_BENCH_KMEANS_K", 100)
km_d <- env_num("RKEOPS_BENCH_KMEANS_D", 10)
reps <- env_num("RKEOPS_BENCH_REPS", 2)
cores <- env_num("RKEOPS_BENCH_CORES", 0)
rkeops_use_cpu(cores)

best <- function(f) {
  t <- Inf
  for (r in seq_len(reps)) t <- min(t, system.time(f())[["elapsed"]])
  t
}
has <- function(p) requireNamespace(p, quietly = TRUE)

cat(sprintf("keops_knn: N = %g data points, M = %g queries, k = 10, %s, %d thread(s) requested\n",
            knn_n, knn_m, get_rkeops_options("precision"), cores))
cat(sprintf("%4s %10s %10s %10s %12s %12s %6s\n", "D", "rkeops_s", "FNN_s",
            "RANN_s", "FNN/rkeops", "RANN/rkeops", "same"))
set.seed(1)
for (D in c(3, 50)) {
  data <- matrix(rnorm(knn_n * D), knn_n, D)
  query <- matrix(rnorm(knn_m * D), knn_m, D)
  invisible(keops_knn(data, query[1:10, , drop = FALSE], k = 10))   # compile
  t_k <- best(function() keops_knn(data, query, k = 10))
  t_f <- if (has("FNN")) best(function() FNN::get.knnx(data, query, k = 10)) else NA
  t_r <- if (has("RANN")) best(function() RANN::nn2(data, query, k = 10)) else NA
  same <- if (has("FNN")) {
    identical(keops_knn(data, query, k = 10)$nn.index,
              FNN::get.knnx(data, query, k = 10)$nn.index)
  } else NA
  cat(sprintf("%4d %10.3f %10.3f %10.3f %12.2f %12.2f %6s\n", D, t_k, t_f, t_r,
              t_f / t_k, t_r / t_k, same))
}

cat(sprintf("\nkeops_kmeans: N = %g, K = %g, D = %g, time per iteration (s)\n",
            km_n, km_k, km_d))
set.seed(2)
mu <- matrix(rnorm(km_k * km_d, sd = 5), km_k, km_d)
x <- mu[sample(km_k, km_n, replace = TRUE), ] + matrix(rnorm(km_n * km_d), km_n, km_d)
c0 <- x[sample(km_n, km_k), ]
iters <- 5L
per_iter <- function(f) {
  fit <- NULL
  t <- best(function() fit <<- suppressWarnings(f()))
  t / min(fit$iter, iters)
}
invisible(suppressWarnings(keops_kmeans(x[1:1000, ], c0[1:10, ], iter.max = 1)))   # compile
t_k <- per_iter(function() keops_kmeans(x, c0, iter.max = iters))
t_l <- per_iter(function() stats::kmeans(x, c0, iter.max = iters, algorithm = "Lloyd"))
t_h <- per_iter(function() stats::kmeans(x, c0, iter.max = iters))
same <- identical(suppressWarnings(keops_kmeans(x, c0, iter.max = iters))$cluster,
                  suppressWarnings(stats::kmeans(x, c0, iter.max = iters,
                                                 algorithm = "Lloyd"))$cluster)
cat(sprintf("%-24s %10s %8s\n", "method", "s/iter", "ratio"))
cat(sprintf("%-24s %10.4f %8.2f\n", "keops_kmeans", t_k, 1))
cat(sprintf("%-24s %10.4f %8.2f\n", "stats Lloyd", t_l, t_l / t_k))
cat(sprintf("%-24s %10.4f %8.2f\n", "stats Hartigan-Wong", t_h, t_h / t_k))
cat(sprintf("same clusters as stats Lloyd: %s\n", same))
