# Every operation of the formula language available in this version,
# through keops_kernel("Sum_Reduction(<expr>, 0/1)"), against a dense
# reference computed in plain R (double loops over i and j).

ops_args <- c("x = Vi(3)", "y = Vj(3)", "p = Vi(3)", "q = Vj(3)",
              "t = Vi(1)", "s = Vj(1)")

# x, y signed; p, q, t, s positive (for Log, Sqrt, divisions).
ops_data <- function(m, n) {
  list(
    x = matrix(rnorm(m * 3), m, 3),
    y = matrix(rnorm(n * 3), n, 3),
    p = matrix(runif(m * 3, 0.5, 2), m, 3),
    q = matrix(runif(n * 3, 0.5, 2), n, 3),
    t = matrix(runif(m, 0.5, 2), m, 1),
    s = matrix(runif(n, 0.5, 2), n, 1)
  )
}

# expression -> reference function of the i-row list a (x, p, t) and the
# j-row list b (y, q, s).
ops_cases <- list(
  "Add(x, y)" = function(a, b) a$x + b$y,
  "Subtract(x, y)" = function(a, b) a$x - b$y,
  "Minus(Mult(x, y))" = function(a, b) -(a$x * b$y),
  "Mult(x, y)" = function(a, b) a$x * b$y,
  "Divide(x, q)" = function(a, b) a$x / b$q,
  "Inv(Add(p, q))" = function(a, b) 1 / (a$p + b$q),
  "Square(Subtract(x, y))" = function(a, b) (a$x - b$y)^2,
  "Pow(Subtract(x, y), 3)" = function(a, b) (a$x - b$y)^3,
  "Pow(Add(p, q), -2)" = function(a, b) (a$p + b$q)^-2,
  "Sqrt(Mult(p, q))" = function(a, b) sqrt(a$p * b$q),
  "Rsqrt(Add(p, q))" = function(a, b) 1 / sqrt(a$p + b$q),
  "Exp(Subtract(x, y))" = function(a, b) exp(a$x - b$y),
  "Log(Mult(p, q))" = function(a, b) log(a$p * b$q),
  "Abs(Subtract(x, y))" = function(a, b) abs(a$x - b$y),
  "Sum(Mult(x, y))" = function(a, b) sum(a$x * b$y),
  "SqNorm2(Subtract(x, y))" = function(a, b) sum((a$x - b$y)^2),
  "Norm2(Subtract(x, y))" = function(a, b) sqrt(sum((a$x - b$y)^2)),
  "SqDist(x, y)" = function(a, b) sum((a$x - b$y)^2),
  "Scalprod(x, y)" = function(a, b) sum(a$x * b$y),
  "(x | y)" = function(a, b) sum(a$x * b$y),
  # infix operators, with precedence and parentheses
  "x + y * p" = function(a, b) a$x + b$y * a$p,
  "x - y / q" = function(a, b) a$x - b$y / b$q,
  "(x - y) * (p + q)" = function(a, b) (a$x - b$y) * (a$p + b$q),
  "-x + y" = function(a, b) -a$x + b$y,
  "x ** 2" = function(a, b) a$x^2,
  "(x - y) ** 3" = function(a, b) (a$x - b$y)^3,
  # integer constants
  "IntCst(3) * x - y" = function(a, b) 3 * a$x - b$y,
  "Mult(IntCst(-2), Add(x, y))" = function(a, b) -2 * (a$x + b$y),
  "2 * x + y" = function(a, b) 2 * a$x + b$y,
  # scalar (dimension 1) against vector (dimension 3) broadcasting
  "Mult(s, x)" = function(a, b) b$s * a$x,
  "Add(t, y)" = function(a, b) a$t + b$y,
  "Divide(x, s)" = function(a, b) a$x / b$s,
  "Subtract(t, q)" = function(a, b) a$t - b$q,
  "s * x + t" = function(a, b) b$s * a$x + a$t,
  "Exp(-t * SqDist(x, y)) * q" = function(a, b) exp(-a$t * sum((a$x - b$y)^2)) * b$q
)

test_that("every formula operation matches R (float64, axis 0 and 1)", {
  set.seed(42)
  m <- 7
  n <- 6
  d <- ops_data(m, n)
  vi <- d[c("x", "p", "t")]
  vj <- d[c("y", "q", "s")]
  for (expr in names(ops_cases)) {
    fun <- ops_cases[[expr]]
    for (axis in 0:1) {
      op <- keops_kernel(sprintf("Sum_Reduction(%s, %d)", expr, axis), ops_args)
      res <- op(d)
      ref <- dense_sum(fun, vi, vj, axis)
      expect_equal(nrow(res), if (axis == 0) m else n, info = expr)
      expect_close(res, ref, 1e-12)
    }
  }
})

test_that("Rsqrt is 0 at 0", {
  set.seed(43)
  x <- matrix(rnorm(15), 5, 3)
  y <- rbind(x[c(2, 4), ], matrix(rnorm(9), 3, 3))  # exact zeros of SqDist
  op <- keops_kernel("Sum_Reduction(Rsqrt(SqDist(x, y)), 0)",
                     c("x = Vi(3)", "y = Vj(3)"))
  d2 <- sqdist_mat(x, y)
  expect_equal(sum(d2 == 0), 2L)
  ref <- rowSums(ifelse(d2 == 0, 0, 1 / sqrt(d2)))
  res <- op(list(x, y))
  expect_close(res, ref, 1e-12)
  expect_false(anyNA(res))
})

test_that("formula operations in float32 are within 1e-5", {
  set.seed(44)
  rkeops_use_float32()
  on.exit(rkeops_use_float64())
  d <- ops_data(9, 8)
  vi <- d[c("x", "p", "t")]
  vj <- d[c("y", "q", "s")]
  for (expr in c("Exp(-t * SqDist(x, y)) * q", "Log(Mult(p, q))",
                 "Sqrt(Mult(p, q))", "Rsqrt(Add(p, q))")) {
    op <- keops_kernel(sprintf("Sum_Reduction(%s, 0)", expr), ops_args)
    expect_close(op(d), dense_sum(ops_cases[[expr]], vi, vj, 0), 1e-5)
  }
})
