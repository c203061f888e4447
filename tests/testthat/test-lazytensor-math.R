# Element-wise functions that base R does not make generic: LazyTensor
# results against dense references, and base behaviour for other input.

test_that("element-wise functions of LazyTensors match R", {
  set.seed(201)
  m <- 7
  n <- 6
  vi <- list(x = matrix(rnorm(m * 3), m, 3),
             p = matrix(runif(m * 3, 0.5, 2), m, 3),
             t = matrix(runif(m, 0.5, 2), m, 1))
  vj <- list(y = matrix(rnorm(n * 3), n, 3),
             q = matrix(runif(n * 3, 0.5, 2), n, 3),
             s = matrix(rnorm(n), n, 1))
  x_i <- Vi(vi$x)
  p_i <- Vi(vi$p)
  t_i <- Vi(vi$t)
  y_j <- Vj(vj$y)
  q_j <- Vj(vj$q)
  s_j <- Vj(vj$s)
  cases <- list(
    square = list(square(x_i - y_j), function(a, b) (a$x - b$y)^2),
    rsqrt = list(rsqrt(p_i + q_j), function(a, b) 1 / sqrt(a$p + b$q)),
    inv = list(inv(p_i * q_j), function(a, b) 1 / (a$p * b$q)),
    xlogx = list(xlogx(p_i + q_j), function(a, b) (a$p + b$q) * log(a$p + b$q)),
    sinxdivx = list(sinxdivx(x_i - y_j), function(a, b) sin(a$x - b$y) / (a$x - b$y)),
    relu = list(relu(x_i - y_j), function(a, b) pmax(a$x - b$y, 0)),
    step = list(step(x_i - y_j), function(a, b) (a$x - b$y >= 0) + 0),
    atan2 = list(atan2(x_i, y_j), function(a, b) atan2(a$x, b$y)),
    "atan2 broadcast" = list(atan2(s_j, x_i),
                            function(a, b) atan2(b$s[, c(1, 1, 1)], a$x)),
    ifelse = list(ifelse(x_i - y_j, p_i, q_j),
                  function(a, b) base::ifelse(a$x - b$y >= 0, a$p, b$q)),
    "ifelse broadcast" = list(ifelse(s_j, x_i, 2),
                              function(a, b) base::ifelse(b$s[, c(1, 1, 1)] >= 0, a$x, 2)),
    mod = list(mod(x_i, q_j), function(a, b) a$x %% b$q),
    "mod offset" = list(mod(x_i, q_j, t_i),
                        function(a, b) a$x - b$q * floor((a$x - c(a$t)) / b$q)),
    "mod scalar" = list(mod(x_i + y_j, 0.75), function(a, b) (a$x + b$y) %% 0.75),
    clamp = list(clamp(x_i, -t_i, q_j),
                 function(a, b) pmin(pmax(a$x, -c(a$t)), b$q)),
    "clamp numbers" = list(clamp(x_i - y_j, -0.5, 0.25),
                           function(a, b) pmin(pmax(a$x - b$y, -0.5), 0.25)),
    "clamp ints" = list(clamp(3 * x_i, -1, 2),
                        function(a, b) pmin(pmax(3 * a$x, -1), 2)),
    clampint = list(clampint(3 * (x_i - y_j), 0, 2),
                    function(a, b) pmin(pmax(3 * (a$x - b$y), 0), 2))
  )
  check_lt_batch(cases, vi, vj, 1e-12)
  expect_match(clamp(x_i, -1, 2)$formula, "^ClampInt\\(")
  expect_match(clamp(x_i, -1, 2.5)$formula, "^Clamp\\(")
})

test_that("rsqrt, xlogx, sinxdivx use KeOps' values at 0", {
  x <- matrix(c(0, 1, 4), 3, 1)
  x_i <- Vi(x)
  res <- sum(concat(concat(rsqrt(x_i), xlogx(x_i)), sinxdivx(x_i)), index = "j")
  expect_equal(res, cbind(c(0, 1, 0.5), c(0, 0, 4 * log(4)),
                          c(1, sin(1), sin(4) / 4)), tolerance = 1e-14)
})

test_that("for other input, the functions compute in R as base R does", {
  x <- c(-2, 0, 0.5, 3)
  expect_identical(square(x), x^2)
  expect_identical(rsqrt(4), 0.5)
  expect_identical(inv(x), 1 / x)
  expect_identical(xlogx(c(0, 2)), c(0, 2 * log(2)))
  expect_identical(sinxdivx(c(0, 2)), c(1, sin(2) / 2))
  expect_identical(relu(x), c(0, 0, 0.5, 3))
  expect_identical(relu(matrix(x, 2)), matrix(c(0, 0, 0.5, 3), 2))
  expect_identical(atan2(1, c(1, -1)), base::atan2(1, c(1, -1)))
  expect_identical(ifelse(x > 0, "a", "b"), base::ifelse(x > 0, "a", "b"))
  # ifelse() keeps base's lazy evaluation of `yes` and `no`
  expect_identical(ifelse(TRUE, 1, stop("not evaluated")), 1)
  expect_identical(mod(x, 1.5), x %% 1.5)
  expect_identical(mod(5, 3, 1), 5 - 3 * floor(4 / 3))
  expect_identical(clamp(x, -1, 1), c(-1, 0, 0.5, 1))
  expect_identical(clampint(x, 0, 2), c(0, 0, 0.5, 2))
  # step() of a model is stats' model selection, run in the caller's frame
  fit_model <- function() {
    d <- data.frame(a = c(1, 2, 3, 4, 5, 7), b = c(2, 1, 4, 3, 6, 5),
                    c = c(1, 3, 2, 5, 4, 6))
    fit <- lm(a ~ b + c, data = d)
    step(fit, trace = 0)
  }
  local_fit <- fit_model()
  expect_s3_class(local_fit, "lm")
  d <- data.frame(a = c(1, 2, 3, 4, 5, 7), b = c(2, 1, 4, 3, 6, 5),
                  c = c(1, 3, 2, 5, 4, 6))
  expect_identical(coef(local_fit),
                   coef(stats::step(lm(a ~ b + c, data = d), trace = 0)))
})

test_that("element-wise function errors", {
  x_i <- Vi(matrix(runif(6), 3, 2))
  z_i <- Vi(matrix(1i, 3, 2))
  expect_snapshot(error = TRUE, {
    clampint(x_i, 0.5, 2)
    clampint(z_i, 0, 2)
    clamp(z_i, 0, 1)
    ifelse(z_i, 1, 2)
    square(z_i)
    atan2(x_i, Vj(matrix(1, 2, 3)))
    mod(x_i, 1i)
  })
})
