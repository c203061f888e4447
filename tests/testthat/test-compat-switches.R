# The compatibility switches for RKeOps 2.x scripts: index_base = 0 and
# formula_axis = "rkeops2", off by default.

with_opts <- function(opts, expr) {
  old <- set_rkeops_options(opts)
  on.exit(set_rkeops_options(old))
  expr
}

test_that("index_base = 0 gives 0-based index results everywhere", {
  set.seed(191)
  x <- matrix(rnorm(23 * 3), 23, 3)
  y <- matrix(rnorm(41 * 3), 41, 3)
  d2 <- sqdist_mat(x, y)
  ref1 <- apply(d2, 1L, which.min)
  refk <- t(apply(d2, 1L, function(r) order(r)[1:4]))
  D_ij <- sqdist(Vi(x), Vj(y))
  expect_identical(get_rkeops_options("index_base"), 1L)
  with_opts(list(index_base = 0), {
    expect_equal(as.vector(argmin(D_ij, "j")), ref1 - 1)
    expect_equal(argKmin(D_ij, 4, "j"), refk - 1)
    mm <- min_argmin(D_ij, "j")
    expect_equal(as.vector(mm[[1]]), apply(d2, 1L, min), tolerance = 1e-12)
    expect_equal(as.vector(mm[[2]]), ref1 - 1)
    ka <- Kmin_argKmin(D_ij, 4, "j")
    expect_equal(ka[[2]], refk - 1)
    expect_equal(ka[[1]], t(apply(d2, 1L, sort))[, 1:4], tolerance = 1e-12)
    # over i
    expect_equal(as.vector(argmax(D_ij, "i")), apply(d2, 2L, which.max) - 1)
    # formula strings
    op <- keops_kernel("ArgMin_Reduction(SqDist(x, y), 0)", c("x = Vi(3)", "y = Vj(3)"))
    expect_equal(as.vector(op(list(x, y))), ref1 - 1)
    # values are untouched
    expect_equal(as.vector(min(D_ij, "j")), apply(d2, 1L, min), tolerance = 1e-12)
    # block-sparse ranges: the original order, 0-based
    rg <- keops_ranges(x, y, cutoff = 100)
    expect_equal(as.vector(argmin(D_ij, "j", ranges = rg)), ref1 - 1)
    # the helpers stay 1-based (R indices)
    expect_identical(keops_knn(y, x, k = 4)$nn.index, refk)
    expect_identical(keops_kmeans(y, y[1:2, ])$cluster,
                     stats::kmeans(y, y[1:2, ], algorithm = "Lloyd")$cluster)
  })
  expect_equal(as.vector(argmin(D_ij, "j")), ref1)
  expect_error(set_rkeops_options(list(index_base = 2)), "`index_base`",
               class = "rkeops_error_arg")
})

test_that("swap_reduction_axes() swaps only reduction axes", {
  expect_identical(rkeops:::swap_reduction_axes("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)"),
                   "Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)")
  expect_identical(rkeops:::swap_reduction_axes("KMin_ArgKMin_Reduction(SqDist(x,y),1, 1 )"),
                   "KMin_ArgKMin_Reduction(SqDist(x,y),1, 0 )")
  expect_identical(rkeops:::swap_reduction_axes("Grad(Sum_Reduction(Elem(x, 0) * y, 1), x, e)"),
                   "Grad(Sum_Reduction(Elem(x, 0) * y, 0), x, e)")
  # not an axis: left for the engine to judge
  expect_identical(rkeops:::swap_reduction_axes("Sum_Reduction(x, 10)"), "Sum_Reduction(x, 10)")
  expect_identical(rkeops:::swap_reduction_axes("Exp(x)"), "Exp(x)")
  expect_identical(rkeops:::swap_reduction_axes("Sum_Reduction(x"), "Sum_Reduction(x")
})

test_that("formula_axis = \"rkeops2\" reads formula axes as RKeOps 2.x", {
  set.seed(192)
  x <- matrix(rnorm(17 * 2), 17, 2)
  y <- matrix(rnorm(29 * 2), 29, 2)
  b <- matrix(rnorm(29), 29, 1)
  K <- exp(-sqdist_mat(x, y))
  args <- c("x = Vi(2)", "y = Vj(2)", "b = Vj(1)")
  f <- "Sum_Reduction(Exp(-SqDist(x, y)) * b, %d)"
  expect_equal(keops_kernel(sprintf(f, 0), args)(list(x, y, b)), K %*% b,
               tolerance = 1e-12)
  with_opts(list(formula_axis = "rkeops2"), {
    # RKeOps 2.x: 1 reduces over j (one row per i)
    op <- keops_kernel(sprintf(f, 1), args)
    expect_equal(op(list(x, y, b)), K %*% b, tolerance = 1e-12)
    op0 <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)), 0)", args[1:2])
    expect_equal(op0(list(x, y)), matrix(colSums(K)), tolerance = 1e-12)
    # the gradient of an operator keeps its axis
    g <- keops_grad(op, "x")
    e <- matrix(rnorm(17), 17, 1)
    ref <- t(vapply(1:17, function(i) {
      colSums(-2 * K[i, ] * b[, 1] * e[i] * (matrix(x[i, ], 29, 2, byrow = TRUE) - y))
    }, numeric(2)))
    expect_equal(g(list(x, y, b, e)), ref, tolerance = 1e-12)
    # rkeops' own formulas are unaffected
    s <- keops_kernel_solve("Exp(-SqDist(x, y)) * v", c("x = Vi(2)", "y = Vj(2)", "v = Vj(1)"),
                            "v", lambda = 1)
    Kx <- exp(-sqdist_mat(x, x))
    expect_equal(as.vector(s(list(x, x, b[1:17, , drop = FALSE]), tol = 1e-12)),
                 as.vector(solve(Kx + diag(17), b[1:17])), tolerance = 1e-8)
    expect_equal(sum(exp(-sqdist(Vi(x), Vj(y))) * Vj(b), "j"), K %*% b,
                 tolerance = 1e-12)
  })
  expect_error(set_rkeops_options(list(formula_axis = "pykeops")), "`formula_axis`",
               class = "rkeops_error_arg")
})
