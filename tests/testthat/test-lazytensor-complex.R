# ComplexLazyTensors: arithmetic, complex functions and reductions against
# dense R complex references (results have interleaved columns).

cplx_mat <- function(n, d) {
  matrix(complex(real = rnorm(n * d), imaginary = rnorm(n * d)), n, d)
}

test_that("complex arithmetic and functions match R complex numbers", {
  set.seed(401)
  m <- 5
  n <- 6
  vi <- list(z = cplx_mat(m, 2), t = matrix(runif(m, 0.5, 2), m, 1))
  vj <- list(w = cplx_mat(n, 2), r = matrix(rnorm(n * 2), n, 2),
             u = cplx_mat(n, 1))
  z_i <- Vi(vi$z)
  t_i <- Vi(vi$t)
  w_j <- Vj(vj$w)
  r_j <- Vj(vj$r)
  u_j <- Vj(vj$u)
  cc <- 0.5 - 1.5i
  c_p <- Pm(cc)
  cases <- list(
    "+" = list(z_i + w_j, function(a, b) cplx_cols(a$z + b$w)),
    "-" = list(z_i - w_j, function(a, b) cplx_cols(a$z - b$w)),
    "*" = list(z_i * w_j, function(a, b) cplx_cols(a$z * b$w)),
    "/" = list(z_i / w_j, function(a, b) cplx_cols(a$z / b$w)),
    "unary -" = list(-z_i, function(a, b) cplx_cols(-a$z)),
    "* int" = list(z_i * 2, function(a, b) cplx_cols(a$z * 2)),
    "real scalar *" = list(0.25 * w_j, function(a, b) cplx_cols(0.25 * b$w)),
    "* real Vi scalar" = list(w_j * t_i, function(a, b) cplx_cols(b$w * c(a$t))),
    "* complex Pm" = list(z_i * c_p, function(a, b) cplx_cols(a$z * cc)),
    "complex number *" = list(cc * w_j, function(a, b) cplx_cols(cc * b$w)),
    "* complex Vj scalar" = list(z_i * u_j, function(a, b) cplx_cols(a$z * c(b$u))),
    "+ complex scalar" = list(z_i + c_p, function(a, b) cplx_cols(a$z + cc)),
    "- real" = list(z_i - r_j, function(a, b) cplx_cols(a$z - b$r)),
    "* real" = list(z_i * r_j, function(a, b) cplx_cols(a$z * b$r)),
    "/ number" = list(z_i / 2, function(a, b) cplx_cols(a$z / 2)),
    "number /" = list(1 / w_j, function(a, b) cplx_cols(1 / b$w)),
    Conj = list(Conj(z_i * w_j), function(a, b) cplx_cols(Conj(a$z * b$w))),
    exp = list(exp(z_i - w_j), function(a, b) cplx_cols(exp(a$z - b$w))),
    real2complex = list(real2complex(r_j), function(a, b) cplx_cols(b$r + 0i)),
    imag2complex = list(imag2complex(r_j), function(a, b) cplx_cols(b$r * 1i)),
    exp1j = list(exp1j(r_j), function(a, b) cplx_cols(exp(1i * b$r))),
    sum = list(sum(z_i * w_j), function(a, b) cplx_cols(rowSums(a$z * b$w))),
    elem = list(elem(z_i, 1) * w_j, function(a, b) cplx_cols(a$z[, 2] * b$w))
  )
  check_lt_batch(cases, vi, vj, 1e-12)
  real_cases <- list(
    Re = list(Re(z_i * w_j), function(a, b) Re(a$z * b$w)),
    Im = list(Im(z_i * w_j), function(a, b) Im(a$z * b$w)),
    Arg = list(Arg(z_i - w_j), function(a, b) Arg(a$z - b$w)),
    Mod = list(Mod(z_i / w_j), function(a, b) Mod(a$z / b$w)),
    abs = list(abs(z_i + w_j), function(a, b) Mod(a$z + b$w)),
    "Re + real" = list(Re(z_i) * r_j, function(a, b) Re(a$z) * b$r)
  )
  check_lt_batch(real_cases, vi, vj, 1e-12, index = "j")
  # %*% of complex LazyTensors
  expect_close(z_i %*% w_j, cplx_cols(vi$z * matrix(colSums(vj$w), m, 2,
                                                      byrow = TRUE)), 1e-12)
  # classes and dimensions
  expect_true(is.ComplexLazyTensor(z_i * w_j))
  expect_false(is.ComplexLazyTensor(Mod(z_i)))
  expect_false(is.ComplexLazyTensor(Re(z_i)))
  expect_identical(Re(z_i)$dimres, 2L)
  expect_identical(sum(z_i)$dimres, 1L)
  expect_true(is.ComplexLazyTensor(exp1j(r_j)))
  expect_match((z_i * 2)$formula, "^ComplexRealScal\\(")
  expect_match((z_i * c_p)$formula, "^ComplexScal\\(")
  expect_match((z_i * w_j)$formula, "^ComplexMult\\(")
  expect_match((z_i * r_j)$formula, "^ComplexMult\\([^,]+,Real2Complex\\(")
  expect_match((z_i / w_j)$formula, "^ComplexDivide\\(")
})

test_that("complex data are stored interleaved and predicates see them", {
  z <- cplx_mat(3, 2)
  z_i <- Vi(z)
  expect_identical(z_i$data[[1]], cplx_cols(z))
  expect_true(is.ComplexLazyParameter(Pm(1 + 2i)))
  expect_false(is.ComplexLazyParameter(Pm(c(1 + 2i, 3i))))
  expect_false(is.ComplexLazyParameter(z_i))
  expect_false(is.LazyParameter(Pm(1 + 2i)))
})

test_that("complex errors", {
  x_i <- Vi(matrix(runif(6), 3, 2))
  z_i <- Vi(cplx_mat(3, 2))
  w_j <- Vj(cplx_mat(4, 2))
  expect_snapshot(error = TRUE, {
    Re(x_i)
    Mod(x_i)
    real2complex(z_i)
    exp1j(z_i)
    real2complex(matrix(1, 2, 2))
    sqrt(z_i)
    z_i < w_j
    z_i^2
    +z_i
    min(z_i, index = "j")
    Kmin(z_i, 2, "j")
    z_i + Vj(cplx_mat(4, 3))
  })
})
