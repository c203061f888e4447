# Behaviours that RKeOps 2.x's own test suite checks, decided against
# SPEC's decisions (README, "Differences from RKeOps 2.x", lists those that
# stay different).

cp_x <- matrix(c(0.3, 0.9, 0.1, 0.4, 0.7, 0.2), 2, 3)
cp_z <- matrix(runif(5 * 7), 5, 7)

test_that("dimension errors of + - * / name the operator the user wrote", {
  x_i <- Vi(cp_x)
  z_j <- Vj(cp_z)
  for (op in c("+", "-", "*", "/")) {
    f <- match.fun(op)
    expect_error(
      f(x_i, z_j),
      sprintf(paste0("Operation `%s` expects inputs of the same dimension ",
                     "or dimension 1. Received 3 and 7."), op),
      fixed = TRUE, class = "rkeops_error_dim"
    )
  }
  zc_j <- Vj(cp_z, is_complex = TRUE)
  expect_error(Vi(cp_x, is_complex = TRUE) * zc_j,
               "Operation `*` expects inputs", fixed = TRUE)
  expect_error(Vi(cp_x, is_complex = TRUE) + zc_j,
               "Operation `+` expects inputs", fixed = TRUE)
  expect_error(x_i | z_j, "Operation `|` expects inputs of the same dimension. ",
               fixed = TRUE)
  expect_error(atan2(x_i, z_j), "Operation `atan2` expects inputs", fixed = TRUE)
})

test_that("argmin() and argmax() of a number or vector are LazyTensors", {
  a <- argmin(3)
  expect_s3_class(a, "LazyTensor")
  expect_identical(a$formula, "ArgMin(IntCst(3))")
  b <- argmax(c(1, 5, 2))
  expect_s3_class(b, "LazyTensor")
  expect_match(b$formula, "^ArgMax\\(")
  # the position (0-based, as the formula op) of the largest coordinate
  expect_close(sum(Vi(cp_x) * b, "j"), cp_x * 1, 1e-15)
  expect_close(sum(Vi(cp_x) * (argmin(c(4, 2, 0.5)) + 1), "j"), cp_x * 3, 1e-15)
  expect_error(argmin(3, "i"), "should be a LazyTensor", fixed = TRUE)
  expect_error(argmin(cp_x), "should be a LazyTensor", fixed = TRUE)
})

test_that("base generics are re-exported: rkeops::sum(x_i, 'j'), rkeops::exp()", {
  x_i <- Vi(cp_x)
  y_j <- Vj(cp_x[c(2, 1, 2), ])
  k <- exp(-sqdist_mat(cp_x, cp_x[c(2, 1, 2), ]))
  expect_close(rkeops::sum(rkeops::exp(-sqdist(x_i, y_j)), "j"),
               rowSums(k), 1e-14)
  expect_close(rkeops::sum(x_i, "i"), matrix(colSums(cp_x), 1), 1e-15)
  expect_close(rkeops::max(rkeops::`-`(x_i, y_j), "j"),
               sapply(1:3, function(d) apply(outer(cp_x[, d], cp_x[c(2, 1, 2), d], "-"), 1, max)),
               1e-15)
  for (f in c("sum", "exp", "+", "Mod", "round", "min")) {
    expect_identical(getExportedValue("rkeops", f), get(f, baseenv()))
  }
  expect_identical(rkeops::sum(1:10), 55L)
  expect_identical(rkeops::exp(0), 1)
})

test_that("attaching rkeops adds no masking notice for the re-exports", {
  skip_without_installed_rkeops()
  run <- run_child(c(
    "msgs <- character()",
    "withCallingHandlers(library(rkeops),",
    "  message = function(m) {",
    "    msgs <<- c(msgs, conditionMessage(m)); invokeRestart('muffleMessage')",
    "  })",
    "writeLines(msgs)"), timeout = 60)
  expect_identical(run$status, 0L)
  masked <- regmatches(run$log, regexpr("masked from .package:base.*", run$log))
  expect_length(masked, 1L)
  expect_match(masked, "%*%, atan2, ifelse", fixed = TRUE)
  for (f in c("sum", "exp", "Mod", "sqrt", "max")) {
    expect_false(grepl(sprintf("\\b%s\\b", f), masked), info = masked)
  }
})
