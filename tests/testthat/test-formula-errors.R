# Errors of the formula language: raised when the operator is first called,
# as classed conditions whose message shows the formula and a caret.

err_args <- c("x = Vi(3)", "y = Vj(3)", "b = Vj(6)")
err_data <- function() {
  list(matrix(c(0.1, 0.2, 0.3, 0.4, 0.5, 0.6), 2, 3),
       matrix(c(0.7, 0.8, 0.9), 1, 3),
       matrix(1:6 / 10, 1, 6))
}

test_that("an unknown operation is a parse error", {
  op <- keops_kernel("Sum_Reduction(Foo(x), 0)", err_args)
  expect_error(op(err_data()), "Foo", class = "rkeops_error_parse")
  expect_snapshot(op(err_data()), error = TRUE)
})

test_that("an unbalanced parenthesis is a parse error", {
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)), 0", err_args)
  expect_error(op(err_data()), class = "rkeops_error_parse")
  op2 <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y))), 0)", err_args)
  expect_error(op2(err_data()), class = "rkeops_error_parse")
  op3 <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y), 0)", err_args)
  expect_error(op3(err_data()), class = "rkeops_error_parse")
  expect_snapshot(op(err_data()), error = TRUE)
  expect_snapshot(op2(err_data()), error = TRUE)
})

test_that("a dimension mismatch is a dimension error", {
  op <- keops_kernel("Sum_Reduction(Add(x, b), 0)", err_args)
  expect_error(op(err_data()), "3.*6", class = "rkeops_error_dim")
  op2 <- keops_kernel("Sum_Reduction(Scalprod(x, b), 0)", err_args)
  expect_error(op2(err_data()), class = "rkeops_error_dim")
  expect_snapshot(op(err_data()), error = TRUE)
})

test_that("a bad axis is an error", {
  op <- keops_kernel("Sum_Reduction(SqDist(x, y), 2)", err_args)
  expect_error(op(err_data()), "axis", class = "rkeops_error")
  expect_snapshot(op(err_data()), error = TRUE)
})

test_that("an undeclared variable and a missing reduction are errors", {
  op <- keops_kernel("Sum_Reduction(SqDist(x, z), 0)", err_args)
  expect_error(op(err_data()), "z", class = "rkeops_error")
  op2 <- keops_kernel("SqDist(x, y)", err_args)
  expect_error(op2(err_data()), class = "rkeops_error")
})

test_that("a shape error names the argument and both shapes", {
  op <- keops_kernel("Sum_Reduction(SqDist(x, y) * b, 0)", err_args)
  x <- matrix(1:4 / 10, 2, 2)
  expect_error(op(list(x, err_data()[[2]], err_data()[[3]])),
               class = "rkeops_error_shape")
  expect_snapshot(op(list(x, err_data()[[2]], err_data()[[3]])), error = TRUE)
})

test_that("errors keep being raised on later calls", {
  op <- keops_kernel("Sum_Reduction(Foo(x), 0)", err_args)
  expect_error(op(err_data()), class = "rkeops_error_parse")
  expect_error(op(err_data()), class = "rkeops_error_parse")
})
