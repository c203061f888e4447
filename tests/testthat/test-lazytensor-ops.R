# Operators (Ops group) and mathematical functions (Math group) of
# LazyTensors against dense R references, batched into one formula per
# reduction (few kernels to compile).

ops_vars <- function(m, n) {
  list(
    vi = list(
      x = matrix(rnorm(m * 3), m, 3),
      p = matrix(runif(m * 3, 0.5, 2), m, 3),
      u = matrix(runif(m * 3, -0.9, 0.9), m, 3),
      k = matrix(sample(0:2, m * 3, TRUE), m, 3),
      t = matrix(runif(m, 0.5, 2), m, 1)
    ),
    vj = list(
      y = matrix(rnorm(n * 3), n, 3),
      q = matrix(runif(n * 3, 0.5, 2), n, 3),
      l = matrix(sample(0:2, n * 3, TRUE), n, 3),
      s = matrix(rnorm(n), n, 1)
    )
  )
}

lt_vars <- function(d) {
  c(lapply(d$vi, Vi), lapply(d$vj, Vj))
}

ops_cases <- function(v) {
  list(
    "==" = list(v$k == v$l, function(a, b) (a$k == b$l) + 0),
    "!=" = list(v$k != v$l, function(a, b) (a$k != b$l) + 0),
    "<" = list(v$x < v$y, function(a, b) (a$x < b$y) + 0),
    ">" = list(v$x > v$y, function(a, b) (a$x > b$y) + 0),
    "<=" = list(v$k <= v$l, function(a, b) (a$k <= b$l) + 0),
    ">=" = list(v$k >= v$l, function(a, b) (a$k >= b$l) + 0),
    "< scalar" = list(v$x < 0.25, function(a, b) (a$x < 0.25) + 0),
    "scalar >" = list(1 > v$s, function(a, b) (1 > b$s) + 0),
    "t > y (broadcast)" = list(v$t > v$y, function(a, b) (c(a$t) > b$y) + 0),
    "%%" = list(v$x %% v$q, function(a, b) a$x %% b$q),
    "%% 2" = list((v$x * 3) %% 2, function(a, b) (a$x * 3) %% 2),
    "%/%" = list(v$x %/% v$q, function(a, b) a$x %/% b$q),
    "^3" = list((v$x - v$y)^3, function(a, b) (a$x - b$y)^3),
    "^1.5" = list(v$p^1.5, function(a, b) a$p^1.5),
    "^q" = list(v$p^v$q, function(a, b) a$p^b$q),
    "2^x" = list(2^v$x, function(a, b) 2^a$x),
    "0.5^x" = list(0.5^v$x, function(a, b) 0.5^a$x)
  )
}

math_cases <- function(v) {
  list(
    sign = list(sign(v$x - v$y), function(a, b) sign(a$x - b$y)),
    cos = list(cos(v$x - v$y), function(a, b) cos(a$x - b$y)),
    sin = list(sin(v$x * v$s), function(a, b) sin(a$x * c(b$s))),
    tan = list(tan(v$u), function(a, b) tan(a$u)),
    acos = list(acos(v$u), function(a, b) acos(a$u)),
    asin = list(asin(v$u), function(a, b) asin(a$u)),
    atan = list(atan(v$x + v$y), function(a, b) atan(a$x + b$y)),
    floor = list(floor(3 * v$x), function(a, b) floor(3 * a$x)),
    ceiling = list(ceiling(3 * v$x), function(a, b) ceiling(3 * a$x)),
    trunc = list(trunc(3 * v$x), function(a, b) trunc(3 * a$x)),
    round = list(round(10 * v$x), function(a, b) round(10 * a$x)),
    "round 2" = list(round(v$x - v$y, 2), function(a, b) round(a$x - b$y, 2)),
    "round digits" = list(round(v$x, digits = 1), function(a, b) round(a$x, 1)),
    log2 = list(log2(v$p), function(a, b) log2(a$p)),
    log10 = list(log10(v$p * v$q), function(a, b) log10(a$p * b$q)),
    "log base 3" = list(log(v$q, base = 3), function(a, b) log(b$q, 3)),
    exp = list(exp(-abs(v$x - v$y)), function(a, b) exp(-abs(a$x - b$y))),
    sqrt = list(sqrt(v$p + v$q), function(a, b) sqrt(a$p + b$q))
  )
}

test_that("operators and comparisons match R (float64, both indices)", {
  set.seed(101)
  d <- ops_vars(7, 5)
  check_lt_batch(ops_cases(lt_vars(d)), d$vi, d$vj, 1e-12)
})

test_that("Math group functions match R (float64 and float32)", {
  set.seed(102)
  d <- ops_vars(6, 9)
  cases <- math_cases(lt_vars(d))
  check_lt_batch(cases, d$vi, d$vj, 1e-12)
  rkeops_use_float32()
  on.exit(rkeops_use_float64())
  # discontinuous functions (sign, floor, round...) are left out in float32
  smooth <- c("cos", "sin", "tan", "acos", "asin", "atan", "log2", "log10",
              "log base 3", "exp", "sqrt")
  check_lt_batch(cases[smooth], d$vi, d$vj, 1e-5, index = "j")
})

test_that("operators and functions build the documented formulas", {
  x_i <- Vi(matrix(runif(6), 3, 2))
  y_j <- Vj(matrix(runif(8), 4, 2))
  fx <- x_i$formula
  fy <- y_j$formula
  expect_identical((x_i == y_j)$formula, sprintf("Equal(%s,%s)", fx, fy))
  expect_identical((x_i != y_j)$formula, sprintf("NotEqual(%s,%s)", fx, fy))
  expect_identical((x_i < y_j)$formula, sprintf("LessThan(%s,%s)", fx, fy))
  expect_identical((x_i > y_j)$formula, sprintf("LessThan(%s,%s)", fy, fx))
  expect_identical((x_i <= y_j)$formula, sprintf("LessOrEqual(%s,%s)", fx, fy))
  expect_identical((x_i >= y_j)$formula, sprintf("LessOrEqual(%s,%s)", fy, fx))
  expect_identical((x_i %% y_j)$formula, sprintf("Mod(%s,%s,IntCst(0))", fx, fy))
  expect_identical((x_i %/% y_j)$formula, sprintf("Floor(Divide(%s,%s))", fx, fy))
  expect_identical(round(x_i, 2)$formula, sprintf("Round(%s,2)", fx))
  expect_identical(round(x_i)$formula, sprintf("Round(%s,0)", fx))
  expect_identical(cos(x_i)$formula, sprintf("Cos(%s)", fx))
  expect_identical(sign(x_i)$formula, sprintf("Sign(%s)", fx))
  expect_identical(floor(x_i)$formula, sprintf("Floor(%s)", fx))
  expect_identical((x_i == y_j)$dimres, 2L)
  expect_identical((x_i < 1)$dimres, 2L)
})

test_that("unavailable operators and functions are errors", {
  x_i <- Vi(matrix(runif(6), 3, 2))
  y_j <- Vj(matrix(runif(6), 3, 2))
  expect_error(x_i & y_j, class = "rkeops_error_unsupported")
  expect_error(!x_i, class = "rkeops_error_unsupported")
  expect_error(cumsum(x_i), class = "rkeops_error_unsupported")
  expect_error(gamma(x_i), class = "rkeops_error_unsupported")
  expect_error(prod(x_i), class = "rkeops_error_unsupported")
  expect_error(round(x_i, 0.5), "`digits`")
  expect_snapshot(error = TRUE, {
    x_i & y_j
    lgamma(x_i)
    round(x_i, digits = c(1, 2))
    x_i < Vj(matrix(1, 3, 3))
    log(x_i, base = 0)
  })
})

test_that("the exported op builders compose formulas and merge variables", {
  set.seed(103)
  x <- matrix(rnorm(12), 4, 3)
  y <- matrix(rnorm(15), 5, 3)
  x_i <- Vi(x)
  y_j <- Vj(y)
  fx <- x_i$formula
  fy <- y_j$formula
  u <- unaryop.LazyTensor(x_i, "Pow", opt_arg = 3)
  expect_identical(u$formula, sprintf("Pow(%s,3)", fx))
  expect_identical(unaryop.LazyTensor(x_i, "ClampInt", 0, 2)$formula,
                   sprintf("ClampInt(%s,0,2)", fx))
  s <- unaryop.LazyTensor(x_i, "Sum", dim_res = 1)
  expect_identical(s$dimres, 1L)
  b <- binaryop.LazyTensor(x_i, y_j, "-", is_operator = TRUE)
  expect_identical(b$formula, sprintf("(%s-%s)", fx, fy))
  expect_length(b$args, 2L)
  d <- binaryop.LazyTensor(x_i, y_j, "SqDist", dim_res = 1)
  w <- binaryop.LazyTensor(x_i, y_j, "WeightedSqDist", opt_arg = Pm(c(1, 2, 3)),
                           dim_check_type = "same", dim_res = 1)
  expect_match(w$formula, sprintf("^WeightedSqDist\\(%s,A[^,]+,%s\\)$", fx, fy))
  expect_length(w$args, 3L)
  t3 <- ternaryop.LazyTensor(x_i - y_j, y_j, 0, "IfElse")
  expect_identical(t3$formula,
                   sprintf("IfElse(Subtract(%s,%s),%s,IntCst(0))", fx, fy, fy))
  expect_length(t3$args, 2L)
  res <- sum(concat(concat(u, b), concat(concat(d, w), t3)), index = "j")
  ref <- dense_sum_ref(function(a, b) {
    dd <- a$x - b$y
    # WeightedSqDist(x, w, y): weights x, difference w - y
    w <- matrix(1:3, nrow(dd), 3, byrow = TRUE)
    cbind(a$x^3, dd, rowSums(dd^2), rowSums(a$x * (w - b$y)^2),
          base::ifelse(dd >= 0, b$y, 0))
  }, list(x = x), list(y = y), "j")
  expect_close(res, ref, 1e-12)
  expect_true(is.ComplexLazyTensor(
    unaryop.LazyTensor(x_i, "Real2Complex", res_type = "ComplexLazyTensor")))
  expect_snapshot(error = TRUE, {
    unaryop.LazyTensor(x, "Exp")
    unaryop.LazyTensor(x_i, "Exp", dim_res = 1.5)
    unaryop.LazyTensor(x_i, c("Exp", "Log"))
    binaryop.LazyTensor(x_i, x, "Add")
    binaryop.LazyTensor(x_i, Vj(matrix(1, 2, 2)), "Add")
    binaryop.LazyTensor(x_i, 1, "Scalprod", dim_check_type = "same")
    ternaryop.LazyTensor(x_i, y_j, matrix(1, 2, 2), "IfElse")
    ternaryop.LazyTensor(x_i, Vj(matrix(1, 2, 2)), 1, "Clamp")
  })
})
