# What library(rkeops) masks: only atan2, ifelse, step and, before R 4.3.0,
# %*% (see ?rkeops, "Masked functions"); each behaves as the masked function
# on ordinary input.

test_that("rkeops masks only the functions ?rkeops lists", {
  ns <- asNamespace("rkeops")
  masks <- character()
  for (pkg in c("base", "stats")) {
    env <- if (pkg == "base") baseenv() else asNamespace(pkg)
    both <- intersect(getNamespaceExports("rkeops"),
                      if (pkg == "base") ls(baseenv(), all.names = TRUE) else getNamespaceExports(pkg))
    for (n in both) {
      if (!identical(get(n, envir = ns), get(n, envir = env))) masks <- c(masks, n)
    }
  }
  expected <- c("atan2", "ifelse", "step")
  if (getRversion() < "4.3.0") expected <- c(expected, "%*%")
  expect_setequal(masks, expected)
})

test_that("%*% is a matrixOps method from R 4.3.0 on, an export before", {
  exported <- "%*%" %in% getNamespaceExports("rkeops")
  methods <- ls(asNamespace("rkeops")[[".__S3MethodsTable__."]])
  expect_identical(exported, getRversion() < "4.3.0")
  expect_identical("matrixOps.LazyTensor" %in% methods, getRversion() >= "4.3.0")
  set.seed(193)
  x <- matrix(runif(7 * 2), 7, 2)
  y <- matrix(runif(5 * 2), 5, 2)
  b <- matrix(runif(5), 5, 1)
  K <- exp(-sqdist_mat(x, y))
  expect_equal(exp(-sqdist(Vi(x), Vj(y))) %*% Vj(b), K %*% b, tolerance = 1e-12)
  m <- matrix(rnorm(6), 2, 3)
  expect_identical(m %*% t(m), base::`%*%`(m, t(m)))
  expect_identical(atan2(1:3, 2), base::atan2(1:3, 2))
  expect_identical(ifelse(c(TRUE, FALSE, NA), 1, 2), base::ifelse(c(TRUE, FALSE, NA), 1, 2))
})
