# bench/solve.R -- kernel linear systems and block-sparse ranges (issue
# "solve() and ranges"), one run, ratios measured in that run:
#   1. the interpolation vignette's problem (N = 1e4, sigma = 0.02,
#      lambda = 10, float64, relative residual 1e-6): the vignette's
#      hand-written conjugate gradient in R against solve(), without and
#      with ranges (cut-off 10 sigma);
#   2. a Gaussian of bandwidth h = 0.01 (exp(-|x - y|^2 / (2 h^2))) on
#      N = 1e6 uniform points in the unit cube, b random, cut-off 10 h:
#      the full reduction against the ranged one. The full reduction would
#      take about 10 minutes here: it is timed on a random sample of output
#      rows (its cost is linear in the rows) and extrapolated, and those
#      rows are compared with the ranged result.
# Usage: R_LIBS=.lib Rscript bench/solve.R [N_cube]
suppressPackageStartupMessages(library(rkeops))
rkeops_disable_verbosity()
rkeops_use_cpu(2)
args <- commandArgs(TRUE)
Ncube <- if (length(args)) as.numeric(args[1]) else 1e6
timeit <- function(expr) system.time(expr)[["elapsed"]]
rel_max <- function(a, b) max(abs(a - b)) / max(abs(b))
rel_2 <- function(a, b) sqrt(sum((a - b)^2) / sum(b^2))

cat("== 1. interpolation vignette: N = 1e4, sigma = 0.02, lambda = 10, float64\n")
set.seed(1)
N <- 10000
f <- function(t) sin(6 * t) + 0.5 * cos(20 * t)
x <- matrix(sort(runif(N)), N, 1)
b <- f(x) + rnorm(N, sd = 0.3)
sigma <- 0.02
lambda <- 10
K_ij <- exp(-sqdist(Vi(x), Vj(x)) / (2 * sigma^2))
cg_solve <- function(A, b, tol = 1e-6, maxit = 500) {   # the vignette's
  a <- matrix(0, nrow(b), ncol(b)); r <- b; p <- r; rs <- sum(r^2); res <- sqrt(rs)
  for (it in seq_len(maxit)) {
    Ap <- A(p); alpha <- rs / sum(p * Ap); a <- a + alpha * p; r <- r - alpha * Ap
    rs_new <- sum(r^2); res[it + 1] <- sqrt(rs_new)
    if (res[it + 1] < tol * res[1]) break
    p <- r + (rs_new / rs) * p; rs <- rs_new
  }
  list(a = a, iterations = it)
}
A <- function(v) K_ij %*% Vj(v) + lambda * v
rg <- keops_ranges(x, cutoff = 10 * sigma)
invisible(A(b)); invisible(solve(K_ij, b, lambda = lambda))   # kernels compiled
invisible(solve(K_ij, b, lambda = lambda, ranges = rg))
t_hand <- timeit(s_hand <- cg_solve(A, b))
t_solve <- timeit(s_solve <- solve(K_ij, b, lambda = lambda))
t_jac <- timeit(s_jac <- solve(K_ij, b, lambda = lambda, precond = "jacobi"))
t_rg <- timeit(s_rg <- solve(K_ij, b, lambda = lambda, ranges = rg))
t_tight <- timeit(s_tight <- solve(K_ij, b, lambda = lambda, tol = 1e-7))
t_rgb <- timeit(rg2 <- keops_ranges(x, cutoff = 10 * sigma))
exact <- solve(K_ij, b, lambda = lambda, tol = 1e-12)
tab <- data.frame(
  method = c("hand-written CG (vignette)", "solve(), Jacobi", "solve(), Nystrom (default)",
             "solve(), Nystrom + ranges", "solve(), Nystrom, tol = 1e-7"),
  iterations = c(s_hand$iterations, attr(s_jac, "iterations"), attr(s_solve, "iterations"),
                 attr(s_rg, "iterations"), attr(s_tight, "iterations")),
  seconds = c(t_hand, t_jac, t_solve, t_rg, t_tight),
  speedup = t_hand / c(t_hand, t_jac, t_solve, t_rg, t_tight),
  rel2_vs_hand = c(0, rel_2(s_jac, s_hand$a), rel_2(s_solve, s_hand$a), rel_2(s_rg, s_hand$a),
                   rel_2(s_tight, s_hand$a)),
  rel2_vs_exact = c(rel_2(s_hand$a, exact), rel_2(s_jac, exact), rel_2(s_solve, exact),
                    rel_2(s_rg, exact), rel_2(s_tight, exact)))
print(format(tab, digits = 3), row.names = FALSE)
cat(sprintf("Nystrom rank %d; ranges: %.1f%% of the pairs kept, built in %.3f s\n",
            attr(s_solve, "rank"), 100 * rg$kept, t_rgb))

cat(sprintf("\n== 2. Gaussian h = 0.01 on N = %g uniform points in the unit cube, cut-off 10 h, float64\n",
            Ncube))
set.seed(2)
h <- 0.01
X <- matrix(runif(3 * Ncube), Ncube, 3)
B <- matrix(runif(Ncube), Ncube, 1)
G <- exp(-sqdist(Vi(X), Vj(X)) / (2 * h^2)) * Vj(B)
t_build <- timeit(rgc <- keops_ranges(X, cutoff = 10 * h))
print(rgc)
invisible(sum(exp(-sqdist(Vi(X[1:10, , drop = FALSE]), Vj(X)) / (2 * h^2)) * Vj(B), index = "j"))
t_ranged <- timeit(a_rg <- sum(G, index = "j", ranges = rgc))
m <- min(Ncube, 20000)
rows <- sort(sample.int(Ncube, m))
Xs <- X[rows, , drop = FALSE]
t_sample <- timeit(a_full <- sum(exp(-sqdist(Vi(Xs), Vj(X)) / (2 * h^2)) * Vj(B), index = "j"))
t_full <- t_sample * Ncube / m
cat(sprintf(paste0("full reduction: %.1f s for %d sampled rows -> %.0f s for all %g rows (extrapolated)\n",
                   "ranged reduction: %.1f s (+ %.1f s to build the ranges)\n",
                   "speed-up with ranges: %.1fx (%.1fx counting the build); ",
                   "largest relative difference on the sampled rows: %.2e\n"),
            t_sample, m, t_full, Ncube, t_ranged, t_build, t_full / t_ranged,
            t_full / (t_ranged + t_build), rel_max(a_rg[rows, , drop = FALSE], a_full)))
