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

# Operations reachable only through formula strings (constants, SumT,
# comparisons, weighted norms by name, TensorDot, Kron, complex helpers,
# derivatives inside formulas), in one Concat formula per axis (see
# concat_formula() in helper-dense.R).
more_ops_cases <- list(
  "RatCst(1, 3) * x + IntInv(4) + Zero(3)" = function(a, b) a$x / 3 + 1 / 4,
  "SumT(Elem(x, 0), 3)" = function(a, b) a$x[, c(1, 1, 1)],
  "DiffClampInt(x, 0, 1)" = function(a, b) (a$x > 0 & a$x < 1) + 0,
  "Floor(x * 2)" = function(a, b) floor(a$x * 2),
  "Round(x - y, 1)" = function(a, b) round(a$x - b$y, 1),
  "Equal(Floor(x), Floor(y))" = function(a, b) (floor(a$x) == floor(b$y)) + 0,
  "NotEqual(Floor(x), Floor(y))" = function(a, b) (floor(a$x) != floor(b$y)) + 0,
  "LessThan(x, y)" = function(a, b) (a$x < b$y) + 0,
  "LessOrEqual(Floor(x), Floor(y))" = function(a, b) (floor(a$x) <= floor(b$y)) + 0,
  "x < y" = function(a, b) (a$x < b$y) + 0,
  "x > y" = function(a, b) (a$x > b$y) + 0,
  "x <= y" = function(a, b) (a$x <= b$y) + 0,
  "x >= y" = function(a, b) (a$x >= b$y) + 0,
  "Max(x - y)" = function(a, b) apply(a$x - b$y, 1, max),
  "Min(x * y)" = function(a, b) apply(a$x * b$y, 1, min),
  "ArgMax(x - y)" = function(a, b) apply(a$x - b$y, 1, which.max) - 1,
  "ArgMin(x * y)" = function(a, b) apply(a$x * b$y, 1, which.min) - 1,
  "SqNormIso(s, x)" = function(a, b) b$s * rowSums(a$x^2),
  "SqNormDiag(q, x - y)" = function(a, b) rowSums(b$q * (a$x - b$y)^2),
  "SymSqNorm(TensorProd(y, y), x)" = function(a, b) rowSums(a$x * b$y)^2,
  "WeightedSqDist(q, x, y)" = function(a, b) rowSums(b$q * (a$x - b$y)^2),
  "WeightedSqNorm(s, x)" = function(a, b) b$s * rowSums(a$x^2),
  "TensorDot(TensorProd(x, y), y, [3, 3], [3], [1], [0])" =
    function(a, b) a$x * rowSums(b$y^2),
  "TensorDot(x, y, [3], [3], [0], [0])" = function(a, b) rowSums(a$x * b$y),
  "Kron(x, y, [3], [3])" = function(a, b) {
    out <- matrix(0, nrow(a$x), 9)
    for (k in 1:3) for (l in 1:3) out[, 3 * (k - 1) + l] <- a$x[, k] * b$y[, l]
    out
  },
  "MatVecMult(TensorProd(x, y), y)" = function(a, b) a$x * rowSums(b$y^2),
  "VecMatMult(x, TensorProd(x, y))" = function(a, b) b$y * rowSums(a$x^2),
  "Divergence(x * Sin(y), x)" = function(a, b) rowSums(sin(b$y)),
  "Laplacian(Sum(Sin(x * y)), x)" = function(a, b) rowSums(-b$y^2 * sin(a$x * b$y)),
  "Diff(Sum(Sin(x * y)), x, y)" = function(a, b) rowSums(cos(a$x * b$y) * b$y^2),
  "Grad(Sum(Sin(x * y)), x, Elem(y, 0))" =
    function(a, b) b$y[, 1] * cos(a$x * b$y) * b$y,
  "ComplexSquareAbs(ComplexMult(z, w))" = function(a, b) {
    Mod(cplx_from_cols(a$z) * cplx_from_cols(b$w))^2
  },
  "ComplexSumT(ComplexSum(z), 4)" = function(a, b) {
    cplx_cols(matrix(rowSums(cplx_from_cols(a$z)), nrow(a$z), 2))
  },
  "ComplexAdd(z, w)" = function(a, b) a$z + b$w,
  "ComplexSubtract(z, w)" = function(a, b) a$z - b$w,
  "ComplexRealScal(s, z)" = function(a, b) c(b$s) * a$z,
  "ComplexScal(ComplexSum(w), z)" = function(a, b) {
    cplx_cols(rowSums(cplx_from_cols(b$w)) * cplx_from_cols(a$z))
  },
  "ComplexExp1j(Extract(x, 0, 2))" = function(a, b) cplx_cols(exp(1i * a$x[, 1:2])),
  "ComplexAngle(z)" = function(a, b) Arg(cplx_from_cols(a$z)),
  "ComplexReal(z) + ComplexImag(w)" = function(a, b) {
    Re(cplx_from_cols(a$z)) + Im(cplx_from_cols(b$w))
  }
)

test_that("formula-only operations match R (float64, axis 0 and 1)", {
  set.seed(45)
  m <- 6
  n <- 5
  vi <- list(x = matrix(rnorm(m * 3), m, 3), z = matrix(rnorm(m * 4), m, 4))
  vj <- list(y = matrix(rnorm(n * 3), n, 3), q = matrix(runif(n * 3), n, 3),
             s = matrix(runif(n), n, 1), w = matrix(rnorm(n * 4), n, 4))
  args <- c("x = Vi(3)", "z = Vi(4)", "y = Vj(3)", "q = Vj(3)", "s = Vj(1)",
            "w = Vj(4)")
  f <- concat_formula(names(more_ops_cases))
  widths <- vapply(more_ops_cases, function(fun) {
    ncol(dense_pairs(fun, lapply(vi, head, 1), lapply(vj, head, 1)))
  }, numeric(1))
  for (axis in 0:1) {
    op <- keops_kernel(sprintf("Sum_Reduction(%s, %d)", f, axis), args)
    res <- op(c(vi, vj))
    ref <- do.call(cbind, lapply(more_ops_cases, function(fun) {
      dense_sum_ref(fun, vi, vj, if (axis == 0) "j" else "i")
    }))
    expect_blocks_close(res, ref, widths, names(more_ops_cases), 1e-12,
                        what = paste("axis", axis))
  }
})
