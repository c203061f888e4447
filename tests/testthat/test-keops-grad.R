# Gradients (decision 2: the true gradient): keops_grad(), Grad() in
# formula strings, the seed slides' example against its analytic gradient,
# finite-difference checks walking the differentiable operations (batched
# into a few formulas), every differentiable reduction, second order and
# complex operations.

# Central finite differences of L(data) = sum(op(data) * e) with respect to
# data[[wrt]], against keops_grad(op, wrt) applied to e.
fd_check <- function(op, data, wrt, tol = 1e-6, h = 1e-6, what = wrt) {
  a <- op(data)
  e <- matrix(rnorm(length(a)), nrow(a), ncol(a))
  g <- keops_grad(op, wrt)(c(data, list(eta = e)))
  v <- data[[wrt]]
  fd <- v
  for (k in seq_along(v)) {
    dp <- data
    dm <- data
    dp[[wrt]][k] <- v[k] + h
    dm[[wrt]][k] <- v[k] - h
    fd[k] <- (sum(op(dp) * e) - sum(op(dm) * e)) / (2 * h)
  }
  fd <- matrix(fd, nrow = NROW(v))
  err <- max(abs(g - fd)) / max(abs(fd), 1e-300)
  expect(identical(dim(g), dim(fd)) && is.finite(err) && err <= tol,
         sprintf("%s: gradient vs finite differences, relative error %.3g",
                 what, err))
  invisible(g)
}

test_that("the seed slides' gradient matches the analytic one (dimension 15)", {
  set.seed(601)
  M <- 120
  N <- 97
  d <- 15
  x <- matrix(rnorm(M * d, sd = 0.3), M, d)
  y <- matrix(rnorm(N * d, sd = 0.3), N, d)
  b <- matrix(rnorm(N * d), N, d)
  e <- matrix(rnorm(M * d), M, d)
  args <- c("x = Vi(15)", "y = Vj(15)", "b = Vj(15)", "e = Vi(15)")
  op <- keops_kernel("Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 0), y, e)",
                     args)
  res <- op(list(x, y, b, e))
  K <- exp(-sqdist_mat(x, y))
  W <- K * (e %*% t(b))             # W_ij = K_ij <e_i, b_j>
  ref <- 2 * (crossprod(W, x) - colSums(W) * y)
  expect_close(res, ref, 1e-12)
  # keops_grad() builds the same gradient
  base_op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
                          args[1:3])
  gy <- keops_grad(base_op, "y")
  expect_identical(gy()$formula,
                   "Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 0),y,eta)")
  expect_identical(gy()$args, c(args[1:3], "eta=Vi(15)"))
  expect_close(gy(list(x, y, b, e)), ref, 1e-12)
  expect_close(keops_grad(base_op, 1)(list(x, y, b, e)), ref, 1e-12)
  # with respect to x: row i is sum_j <e_i, b_j> K_ij * -2 (x_i - y_j)
  gx <- keops_grad(base_op, "x")(list(x, y, b, e))
  expect_close(gx, -2 * (rowSums(W) * x - W %*% y), 1e-12)
})

test_that("keops_grad() declares eta after the arguments, in their style", {
  op <- keops_kernel("Sum_Reduction(SqDist(x, y) * b, 1)",
                     c("b = Vi(2, 2)", "y = Vj(1, 3)", "x = Vi(0, 3)"))
  g <- keops_grad(op, 0)
  expect_identical(g()$args[4], "eta=Vj(3,2)")
  expect_identical(g()$formula, "Grad(Sum_Reduction(SqDist(x, y) * b, 1),x,eta)")
  # eta is renamed when the name is taken
  op2 <- keops_kernel("Sum_Reduction(SqDist(eta, y), 0)",
                      c("eta = Vi(3)", "y = Vj(3)"))
  expect_identical(keops_grad(op2, "y")()$args[3], "eta_1=Vi(1)")
  set.seed(602)
  x <- matrix(rnorm(12), 4, 3)
  y <- matrix(rnorm(15), 5, 3)
  b <- matrix(rnorm(8), 4, 2)
  e <- matrix(rnorm(10), 5, 2)
  # true gradient: a_j = sum_i |x_i - y_j|^2 b_i, d<a, e>/dx_i =
  # sum_j 2 (x_i - y_j) <b_i, e_j>
  W <- b %*% t(e)
  ref <- 2 * (rowSums(W) * x - W %*% y)
  expect_close(g(list(x, y, b, e)), ref, 1e-12)
  expect_close(g(list(eta = e, b = b, x = x, y = y)), ref, 1e-12)
})

test_that("gradients with respect to a parameter are 1 x dim", {
  set.seed(603)
  x <- matrix(rnorm(12), 4, 3)
  y <- matrix(rnorm(15), 5, 3)
  op <- keops_kernel("Sum_Reduction(Exp(-s * SqDist(x, y)), 0)",
                     c("x = Vi(3)", "y = Vj(3)", "s = Pm(1)"))
  g <- keops_grad(op, "s")(list(x, y, 0.5, rep(1, 4)))
  d2 <- sqdist_mat(x, y)
  expect_identical(dim(g), c(1L, 1L))
  expect_close(g, sum(-d2 * exp(-0.5 * d2)), 1e-12)
})

# Batches of differentiable operations of x and y (Vi(3), Vj(3)); positive
# and bounded operands are built from x and y. (TensorDot and Kron have no
# derivative in the engine yet.)
grad_batches <- list(
  unary = c(
    "Minus(x - y)", "Inv(Exp(x - y) + IntCst(1))", "Square(x - y)",
    "Pow(x - y, 3)", "Sqrt(Exp(x) + Square(y))", "Rsqrt(Exp(x) + Square(y))",
    "Exp(x - y)", "Log(Exp(x) + Square(y))", "XLogX(Exp(x - y))",
    "Sin(x * y)", "Cos(x - y)", "Asin(Sin(x - y) * RatCst(9, 10))",
    "Acos(Sin(x * y) * RatCst(9, 10))", "Atan(x * y)", "SinXDivX(x - y)",
    "Abs(x - y)", "ReLU(x - y)", "Sign(x - y) * x", "Step(x - y) * y",
    "Floor(x * y)", "Round(x * y, 1)"
  ),
  binary = c(
    "Add(x, y)", "Subtract(x, Elem(y, 0))", "Mult(x, y)",
    "Divide(x, Exp(y) + IntCst(1))", "Mult(Elem(x, 1), y)",
    "Powf(Exp(x) + IntCst(1), y)", "Atan2(x, y)",
    "Clamp(x, Elem(y, 1), Elem(y, 1) + IntCst(1))", "ClampInt(x * 2, -1, 1)",
    "IfElse(x - y, Square(x), y)", "Mod(x * y, Exp(y) + IntCst(1), Elem(y, 2))",
    "Equal(Floor(x), Floor(y)) * x", "LessThan(x, y) * y", "Max(x - y)",
    "Min(x * y)", "ArgMax(x * y)"
  ),
  vector = c(
    "Sum(x * y)", "SumT(Elem(x, 0) * Elem(y, 1), 2)", "Elem(x * y, 2)",
    "ElemT(Elem(x, 0) * Elem(y, 0), 3, 1)", "Extract(Concat(x, y), 2, 3)",
    "ExtractT(x * y, 1, 5)", "Concat(Sin(x), y)", "Scalprod(x, y)",
    "OneHot(Elem(x, 0) + IntCst(2), 5)", "SqNorm2(x - y)", "Norm2(x - y)",
    "Normalize(x - y)", "SqDist(x, y)", "WeightedSqNorm(Exp(y), x)",
    "WeightedSqNorm(Exp(Elem(y, 0)), x)", "WeightedSqNorm(TensorProd(y, y), x)",
    "WeightedSqDist(Exp(y), x, y)", "SqNormIso(Exp(Elem(y, 0)), x)",
    "SqNormDiag(Exp(y), x - y)", "SymSqNorm(TensorProd(y, x), x)"
  ),
  tensor = c(
    "MatVecMult(TensorProd(x, y), y)", "VecMatMult(x, TensorProd(x, y))",
    "MatVecMult(Concat(x, y), Elem(x, 0))", "TensorProd(x, y)",
    "Exp(-SqDist(x, y)) * (x - y)"
  )
)

test_that("gradients of every differentiable operation match finite differences", {
  set.seed(604)
  data <- list(x = matrix(rnorm(12), 4, 3), y = matrix(rnorm(15), 5, 3))
  args <- c("x = Vi(3)", "y = Vj(3)")
  for (b in names(grad_batches)) {
    f <- concat_formula(grad_batches[[b]])
    op <- keops_kernel(sprintf("Sum_Reduction(%s, 0)", f), args)
    fd_check(op, data, "x", what = paste(b, "batch, x"))
    fd_check(op, data, "y", what = paste(b, "batch, y"))
  }
})

test_that("every differentiable reduction has the true gradient", {
  set.seed(605)
  x <- matrix(rnorm(12), 4, 3)
  y <- matrix(rnorm(15), 5, 3)
  w <- matrix(runif(10, 0.5, 1.5), 5, 2)
  u <- matrix(runif(8, 0.5, 1.5), 4, 2)
  args <- c("x = Vi(3)", "y = Vj(3)", "w = Vj(2)", "u = Vi(2)")
  data <- list(x = x, y = y, w = w, u = u)
  # formula -> variables to differentiate with respect to
  forms <- list(
    "Sum_Reduction(Exp(-SqDist(x, y)) * w, 0)" = c("y", "w"),
    "LogSumExp_Reduction(-SqDist(x, y), 0)" = c("x", "y"),
    "LogSumExp_Reduction(Sum(x * y), 1)" = "x",
    "LogSumExpWeight_Reduction(-SqDist(x, y), w, 0)" = c("y", "w"),
    "SumSoftMaxWeight_Reduction(-SqDist(x, y), w, 0)" = c("y", "w"),
    "SumSoftMaxWeight_Reduction(Sum(x * y), u, 1)" = c("x", "u"),
    "Min_Reduction(Square(x - y) * Elem(y, 0), 0)" = "y",
    "Max_Reduction(Sin(x * y), 1)" = c("x", "y")
  )
  for (f in names(forms)) {
    op <- keops_kernel(f, args)
    for (v in forms[[f]]) fd_check(op, data, v, what = paste(f, "wrt", v))
  }
  # ArgMin has a zero gradient; KMin is not differentiable
  op <- keops_kernel("ArgMin_Reduction(SqDist(x, y), 0)", args)
  g <- keops_grad(op, "y")(list(x, y, w, u, matrix(1, 4, 1)))
  expect_identical(g, matrix(0, 5, 3))
  op <- keops_kernel("KMin_Reduction(SqDist(x, y), 2, 0)", args)
  expect_error(keops_grad(op, "y")(list(x, y, w, u, matrix(1, 4, 2))),
               "not differentiable", class = "rkeops_error")
})

test_that("second order: Hessian-vector products match finite differences", {
  set.seed(606)
  x <- matrix(rnorm(12), 4, 3)
  y <- matrix(rnorm(15), 5, 3)
  b <- matrix(rnorm(10), 5, 2)
  e <- matrix(rnorm(8), 4, 2)
  v <- matrix(rnorm(12), 4, 3)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
                     c("x = Vi(3)", "y = Vj(3)", "b = Vj(2)"))
  gx <- keops_grad(op, "x")
  hxx <- keops_grad(gx, "x")
  expect_identical(hxx()$formula,
                   "Grad(Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 0),x,eta),x,eta_1)")
  expect_identical(hxx()$args[5], "eta_1=Vi(3)")
  h <- 1e-6
  hv <- hxx(list(x, y, b, e, v))
  fd <- (gx(list(x + h * v, y, b, e)) - gx(list(x - h * v, y, b, e))) / (2 * h)
  expect_close(hv, fd, 1e-6)
  # mixed second derivative d/dy <grad_x, v>, by finite differences in y
  hxy <- keops_grad(gx, "y")
  res <- hxy(list(x, y, b, e, v))
  fdy <- y
  for (k in seq_along(y)) {
    yp <- y
    ym <- y
    yp[k] <- y[k] + h
    ym[k] <- y[k] - h
    fdy[k] <- (sum(gx(list(x, yp, b, e)) * v) - sum(gx(list(x, ym, b, e)) * v)) /
      (2 * h)
  }
  expect_close(res, fdy, 1e-6)
})

test_that("gradients of complex operations match finite differences", {
  set.seed(607)
  data <- list(z = matrix(rnorm(12), 3, 4), w = matrix(rnorm(16), 4, 4))
  args <- c("z = Vi(4)", "w = Vj(4)")
  f <- concat_formula(c(
    "ComplexMult(z, w)", "ComplexDivide(z, w)", "ComplexAbs(ComplexAdd(z, w))",
    "ComplexExp(ComplexSubtract(z, w))", "Conj(ComplexMult(z, z))",
    "ComplexReal(ComplexMult(z, w))", "ComplexImag(ComplexDivide(w, z))",
    "ComplexAngle(ComplexMult(z, w))", "ComplexSquareAbs(z)",
    "ComplexSum(ComplexMult(z, w))", "ComplexScal(ComplexSum(w), z)",
    "ComplexRealScal(Elem(w, 0), z)", "ComplexExp1j(Extract(z, 0, 2) * Elem(w, 1))",
    "Real2Complex(Extract(z, 1, 2)) * Imag2Complex(Extract(w, 0, 2))"
  ))
  op <- keops_kernel(sprintf("Sum_Reduction(%s, 1)", f), args)
  fd_check(op, data, "z", what = "complex batch, z")
  fd_check(op, data, "w", what = "complex batch, w")
})

test_that("keops_grad() errors", {
  op <- keops_kernel("Sum_Reduction(SqDist(x, y), 0)", c("x = Vi(3)", "y = Vj(3)"))
  expect_snapshot(error = TRUE, {
    keops_grad(op, "z")
    keops_grad(op, 2)
    keops_grad(op, -1)
    keops_grad(op, c("x", "y"))
    keops_grad(op, TRUE)
    keops_grad(function(input) 1, "x")
    keops_grad("op", "x")
  })
  bad <- keops_kernel("Sum_Reduction(Foo(x), 0)", "x = Vi(3)")
  expect_error(keops_grad(bad, "x"), class = "rkeops_error_parse")
})
