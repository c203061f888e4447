library(testthat)
library(rkeops)

test_check("rkeops")
