# tools/demo.R -- `make demo`: the Gaussian kernel sum of the seed slides,
#   a_i = sum_j exp(-|x_i - y_j|^2) b_j,   N = 1e5 points in D = 15,
# computed without ever forming the N x N kernel matrix.
# Run with R_LIBS pointing at the library where rkeops is installed (.lib).

library(rkeops)
set.seed(1)

N <- 1e5; D <- 15
x <- matrix(rnorm(N*D), N, D); y <- matrix(rnorm(N*D), N, D); b <- matrix(rnorm(N*D), N, D)
x_i <- LazyTensor(x, "i"); y_j <- LazyTensor(y, "j"); b_j <- LazyTensor(b, "j")
K_ij <- exp(-sum((x_i - y_j)^2))
t <- system.time(a_i <- sum(K_ij * b_j, index = "j"))
print(dim(a_i)); print(class(a_i)); print(t)

# A few rows against a dense reference in plain R.
rows <- c(1, 2, N)
ref <- base::t(vapply(rows, function(i) {
  k <- exp(-colSums((base::t(y) - x[i, ])^2))
  colSums(k * b)
}, numeric(D)))
err <- max(abs(a_i[rows, , drop = FALSE] - ref)) / max(abs(ref), 1e-300)
cat(sprintf("\nrelative error on rows %s against dense R: %.2e\n",
            paste(rows, collapse = ", "), err))
if (!is.finite(err) || err > 1e-8) stop("the result does not match the dense reference")
