# float32 sums: per-lane partial sums flushed to a double accumulator at
# every tile (block summation), so long sums keep ~1e-6 relative accuracy
# (decision 4); Kahan and direct sums are honoured too.

test_that("a float32 sum of 1e7 terms is within 1e-6 relative of float64", {
  skip_on_cran()
  old <- get_rkeops_options("precision")
  on.exit(set_rkeops_options(list(precision = old)))
  set.seed(21)
  n <- 1e7
  v <- runif(n, 0.5, 1.5)
  exact <- sum(v)                      # R's long-double accumulation
  for (scheme in c("auto", "block_sum", "kahan_scheme")) {
    # over i (one output row) and over j with a single output row (the
    # reduced index is then split across threads and merged)
    op_i <- keops_kernel("Sum_Reduction(x, 1)", "x = Vi(1)", sum_scheme = scheme)
    op_j <- keops_kernel("Sum_Reduction(y * IntCst(1), 0)", c("x = Vi(1)", "y = Vj(1)"),
                         sum_scheme = scheme)
    rkeops_use_float64()
    r64 <- op_i(list(matrix(v)))
    expect_lt(abs(r64[1, 1] - exact) / exact, 1e-12)
    rkeops_use_float32()
    r32 <- op_i(list(matrix(v)))
    expect_lt(abs(r32[1, 1] - r64[1, 1]) / abs(r64[1, 1]), 1e-6, label = paste(scheme, "over i"))
    r32j <- op_j(list(matrix(1), matrix(v)))
    expect_lt(abs(r32j[1, 1] - r64[1, 1]) / abs(r64[1, 1]), 1e-6, label = paste(scheme, "over j"))
  }
})
