test_that("format_bytes is human readable", {
  fb <- rkeops:::format_bytes
  expect_identical(fb(0), "0")
  expect_identical(fb(512), "512")
  expect_identical(fb(1024), "1K")
  expect_identical(fb(12.3 * 1024), "12.3K")
  expect_identical(fb(4.56 * 1024^2), "4.56M")
  expect_identical(fb(2 * 1024^3), "2G")
})

test_that("cache folder: set, stat, clean, remove", {
  old <- get_rkeops_cache_dir()
  on.exit(set_rkeops_cache_dir(old, verbose = FALSE))
  dir <- file.path(tempfile("rkeops-cache-"), "nested")
  expect_message(prev <- set_rkeops_cache_dir(dir), "replaced by")
  expect_identical(prev, old)
  expect_true(dir.exists(dir))
  expect_identical(get_rkeops_cache_dir(), normalizePath(dir))
  expect_identical(stat_rkeops_cache_dir(verbose = FALSE), "0")
  # compile a kernel into the new folder
  f <- sprintf("Sum_Reduction(Mult(IntCst(%d), SqDist(x, y)), 0)", unique_int())
  op <- keops_kernel(f, c("x = Vi(2)", "y = Vj(2)"))
  x <- matrix(rnorm(6), 3, 2)
  y <- matrix(rnorm(4), 2, 2)
  res <- op(list(x, y))
  size <- stat_rkeops_cache_dir(verbose = FALSE)
  expect_match(size, "^[0-9.]+[KMGTP]?$")
  expect_false(identical(size, "0"))
  expect_message(stat_rkeops_cache_dir(), "clean_rkeops")
  expect_gt(length(list.files(dir, recursive = TRUE)), 0L)
  # all = FALSE keeps what this session compiled
  expect_message(clean_rkeops(all = FALSE), "Cleaned")
  expect_gt(length(list.files(dir, recursive = TRUE)), 0L)
  # all = TRUE empties the folder, which stays
  expect_message(clean_rkeops(), "Cleaned")
  expect_true(dir.exists(dir))
  expect_length(list.files(dir, recursive = TRUE, all.files = TRUE), 0L)
  expect_identical(stat_rkeops_cache_dir(verbose = FALSE), "0")
  # kernels loaded in this session keep working
  expect_close(op(list(x, y)), res, 1e-15)
  clean_rkeops(verbose = FALSE, remove_cache_dir = TRUE)
  expect_false(dir.exists(dir))
  expect_message(clean_rkeops(), "does not exist")
  expect_error(clean_rkeops(all = "yes"), "`all` should be TRUE or FALSE")
  expect_error(set_rkeops_cache_dir(c("a", "b")), "`cache_dir`")
})

test_that("a second R process loads the compiled kernel from disk", {
  skip_if_not(rkeops_installed(), "rkeops is not installed in the library path")
  n <- unique_int()
  cache <- get_rkeops_cache_dir()
  script <- tempfile(fileext = ".R")
  writeLines(c(
    "suppressPackageStartupMessages(library(rkeops, warn.conflicts = FALSE))",
    sprintf("set_rkeops_cache_dir(%s, verbose = FALSE)", deparse(cache)),
    "rkeops_disable_verbosity()",
    "rkeops_use_float64()",
    sprintf(paste0("op <- keops_kernel(\"Sum_Reduction(Mult(IntCst(%d), ",
                   "Exp(-SqDist(x, y))), 0)\", c(\"x = Vi(2)\", \"y = Vj(2)\"))"),
            n),
    "x <- matrix(c(0.1, 0.2, 0.3, 0.4), 2, 2)",
    "y <- matrix(c(0.5, 0.6, 0.7, 0.8, 0.9, 1.0), 3, 2)",
    "res <- op(list(x, y))",
    "cat('FROM', attr(environment(op)$st$ptr, 'from'), '\\n')",
    "cat('VALUE', format(res[, 1], digits = 17), '\\n')"
  ), script)
  run <- function() {
    out <- suppressWarnings(system2(
      rscript_bin, c("--vanilla", shQuote(script)), stdout = TRUE, stderr = TRUE,
      env = child_env(cache)
    ))
    from <- grep("^FROM ", out, value = TRUE)
    value <- grep("^VALUE ", out, value = TRUE)
    if (length(from) != 1L || length(value) != 1L) {
      fail(paste(c("the R subprocess failed:", out), collapse = "\n"))
      return(NULL)
    }
    list(from = trimws(sub("^FROM ", "", from)),
         value = as.numeric(strsplit(trimws(sub("^VALUE ", "", value)), " +")[[1]]))
  }
  first <- run()
  second <- run()
  skip_if(is.null(first) || is.null(second))
  expect_true(first$from %in% c("compiler", "disk"))
  expect_identical(second$from, "disk")
  x <- matrix(c(0.1, 0.2, 0.3, 0.4), 2, 2)
  y <- matrix(c(0.5, 0.6, 0.7, 0.8, 0.9, 1.0), 3, 2)
  ref <- n * rowSums(exp(-sqdist_mat(x, y)))
  expect_close(matrix(first$value), ref, 1e-12)
  expect_close(matrix(second$value), ref, 1e-12)
})

test_that("a kernel rebuilt in another process is byte-identical", {
  skip_if_not(rkeops_installed(), "rkeops is not installed in the library path")
  n <- unique_int()
  script <- tempfile(fileext = ".R")
  writeLines(c(
    "suppressPackageStartupMessages(library(rkeops, warn.conflicts = FALSE))",
    "rkeops_disable_verbosity()",
    sprintf(paste0("op <- keops_kernel(\"Sum_Reduction(Mult(IntCst(%d), ",
                   "Exp(-SqDist(x, y))), 0)\", c(\"x = Vi(2)\", \"y = Vj(2)\"))"),
            n),
    "res <- op(list(matrix(0.5, 2, 2), matrix(0.25, 3, 2)))",
    "cat('FROM', attr(environment(op)$st$ptr, 'from'), '\\n')"
  ), script)
  build <- function() {
    cache <- tempfile("rkeops-cache-")
    dir.create(cache)
    out <- suppressWarnings(system2(
      rscript_bin, c("--vanilla", shQuote(script)), stdout = TRUE, stderr = TRUE,
      env = child_env(cache)
    ))
    expect_identical(trimws(grep("^FROM ", out, value = TRUE)), "FROM compiler")
    so <- list.files(cache, pattern = "\\.so$", recursive = TRUE, full.names = TRUE)
    expect_length(so, 1L)
    list(name = basename(so), md5 = unname(tools::md5sum(so)))
  }
  a <- build()
  b <- build()
  expect_identical(a$name, b$name)
  expect_identical(a$md5, b$md5)
})
