test_that("get_rkeops_options returns all, one or several options", {
  opts <- get_rkeops_options()
  expect_s3_class(opts, "rkeops_options")
  expect_named(opts, c("backend", "device_id", "precision", "verbosity",
                       "debug", "cache_dir", "formula_only", "ncore", "future",
                       "index_base", "formula_axis"))
  expect_identical(get_rkeops_options("backend"), "CPU")
  expect_identical(get_rkeops_options("precision"), "float64")
  expect_identical(get_rkeops_options("device_id"), -1L)
  expect_identical(get_rkeops_options("formula_only"), FALSE)
  two <- get_rkeops_options(c("precision", "backend"))
  expect_identical(two, list(precision = "float64", backend = "CPU"))
  expect_error(get_rkeops_options("colour"), "`option` should be NULL")
  expect_error(get_rkeops_options(1), "`option` should be NULL")
  expect_output(print(opts), "precision: +float64")
})

test_that("options are undefined only if the user removes them", {
  old <- getOption("rkeops")
  on.exit(options(rkeops = old))
  options(rkeops = NULL)
  expect_error(get_rkeops_options(), "rkeops global options are not defined.",
               fixed = TRUE)
})

test_that("set_rkeops_options sets, validates and resets", {
  old <- get_rkeops_options()
  on.exit(options(rkeops = old))
  prev <- set_rkeops_options(list(precision = "float32", verbosity = FALSE,
                                  ncore = 1))
  expect_identical(prev, old)
  expect_identical(get_rkeops_options("precision"), "float32")
  expect_identical(get_rkeops_options("verbosity"), 0L)
  expect_identical(get_rkeops_options("ncore"), 1L)
  expect_identical(get_rkeops_options("cache_dir"), old$cache_dir)
  set_rkeops_options(list(verbosity = 1, debug = TRUE, device_id = 0))
  expect_identical(get_rkeops_options("verbosity"), 1L)
  expect_identical(get_rkeops_options("debug"), 1L)
  expect_identical(get_rkeops_options("device_id"), 0L)
  now <- get_rkeops_options()
  # invalid values: errors naming the option, nothing changed
  expect_error(set_rkeops_options(list(backend = "TPU")), "`backend`",
               class = "rkeops_error_arg")
  expect_error(set_rkeops_options(list(device_id = 2.5)), "`device_id`")
  expect_error(set_rkeops_options(list(device_id = -2)), "`device_id`")
  expect_error(set_rkeops_options(list(precision = "integer")), "`precision`")
  expect_error(set_rkeops_options(list(verbosity = "FALSE")), "`verbosity`")
  expect_error(set_rkeops_options(list(debug = 2)), "`debug`")
  expect_error(set_rkeops_options(list(formula_only = NA)), "`formula_only`")
  expect_error(set_rkeops_options(list(ncore = -1)), "`ncore`")
  expect_error(set_rkeops_options(list(cache_dir = 3)), "`cache_dir`")
  a_file <- tempfile()
  writeLines("x", a_file)
  expect_error(set_rkeops_options(list(cache_dir = a_file)), "`cache_dir`")
  expect_error(set_rkeops_options(list(precision = "float32", colour = 1)),
               "Unknown rkeops option(s): 'colour'", fixed = TRUE)
  expect_error(set_rkeops_options("float32"), "`input` should be NULL or a named list")
  expect_error(set_rkeops_options(list("float32")), "named list")
  if (!rkeops:::gpu_status()$available) {
    expect_error(set_rkeops_options(list(backend = "GPU")),
                 "No usable GPU", class = "rkeops_error_gpu")
  }
  expect_identical(get_rkeops_options(), now)
  # a missing cache folder is created
  new_dir <- file.path(tempfile(), "sub")
  set_rkeops_options(list(cache_dir = new_dir))
  expect_true(dir.exists(new_dir))
  expect_identical(get_rkeops_options("cache_dir"),
                   normalizePath(new_dir))
  # NULL resets to the defaults (float64, verbosity 1, ...)
  set_rkeops_options(NULL)
  expect_identical(get_rkeops_options("precision"), "float64")
  expect_identical(get_rkeops_options("verbosity"), 1L)
  expect_identical(get_rkeops_options("formula_only"), FALSE)
  expect_identical(get_rkeops_options("cache_dir"),
                   rkeops:::default_rkeops_cache_dir())
  # restore with the returned value
  set_rkeops_options(old)
  expect_identical(get_rkeops_options(), old)
})

test_that("precision and verbosity shortcuts", {
  old <- get_rkeops_options()
  on.exit(options(rkeops = old))
  rkeops_use_float32()
  expect_identical(get_rkeops_options("precision"), "float32")
  rkeops_use_float64()
  expect_identical(get_rkeops_options("precision"), "float64")
  rkeops_enable_verbosity()
  expect_identical(get_rkeops_options("verbosity"), 1L)
  rkeops_disable_verbosity()
  expect_identical(get_rkeops_options("verbosity"), 0L)
})

test_that("rkeops_use_cpu sets the number of threads", {
  old <- get_rkeops_options()
  on.exit(options(rkeops = old))
  cores <- .Call(rkeops:::rk_ncores_r)
  expect_true(cores >= 1L)
  expect_identical(rkeops_use_cpu(1), 1L)
  expect_identical(get_rkeops_options("ncore"), 1L)
  expect_identical(get_rkeops_options("backend"), "CPU")
  rkeops_use_cpu(10000)
  expect_identical(get_rkeops_options("ncore"), cores)
  rkeops_use_cpu()
  all_cores <- if (rkeops:::under_r_cmd_check()) min(2L, cores) else 0L
  expect_identical(get_rkeops_options("ncore"), all_cores)
  rkeops_use_cpu(0)
  expect_identical(get_rkeops_options("ncore"), all_cores)
  expect_error(rkeops_use_cpu("0"), "`ncore` should be NULL or a single",
               class = "rkeops_error_arg")
  expect_error(rkeops_use_cpu(-1), "`ncore`")
  expect_error(rkeops_use_cpu(1.5), "`ncore`")
  expect_error(rkeops_use_cpu(c(1, 2)), "`ncore`")
})

test_that("without a usable GPU, rkeops_use_gpu gives the loader's diagnosis and changes nothing", {
  st <- rkeops:::gpu_status()
  skip_if(isTRUE(st$available), "a GPU is available here")
  before <- get_rkeops_options()
  err <- expect_error(rkeops_use_gpu(), "No usable GPU", class = "rkeops_error_gpu")
  # the diagnosis names what was tried for the driver
  expect_match(conditionMessage(err), "libcuda")
  expect_error(rkeops_use_gpu(0), class = "rkeops_error_gpu")
  expect_error(rkeops_use_gpu("a"), "`device_id`", class = "rkeops_error_arg")
  expect_identical(get_rkeops_options(), before)
  # check_rkeops() reports the GPU situation and still works on the CPU
  msgs <- capture_messages(ok <- check_rkeops())
  expect_true(ok)
  expect_true(any(grepl("GPU:", msgs)))
})

test_that("with a usable GPU, kernels on the GPU match the CPU", {
  skip_if_not(isTRUE(rkeops:::gpu_status()$available), "no usable GPU")
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old[setdiff(names(old), "formula_only")]))
  set.seed(11)
  x <- matrix(runif(300), 100, 3); y <- matrix(runif(210), 70, 3); b <- matrix(runif(70), 70, 1)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)", c("x = Vi(3)", "y = Vj(3)", "b = Vj(1)"))
  rkeops_use_cpu()
  cpu <- op(list(x, y, b))
  rkeops_use_gpu()
  gpu <- op(list(x, y, b))
  expect_equal(gpu, cpu, tolerance = 1e-12)
})

test_that("the default cache folder follows RKEOPS_CACHE_DIR, R CMD check, R_user_dir", {
  env <- Sys.getenv(c("RKEOPS_CACHE_DIR", "_R_CHECK_PACKAGE_NAME_",
                      "_R_CHECK_LIMIT_CORES_"), unset = NA)
  on.exit({
    for (n in names(env)) {
      if (is.na(env[[n]])) Sys.unsetenv(n) else do.call(Sys.setenv, as.list(env[n]))
    }
  })
  Sys.setenv(RKEOPS_CACHE_DIR = file.path(tempdir(), "from-env"))
  expect_identical(rkeops:::default_rkeops_cache_dir(),
                   normalizePath(file.path(tempdir(), "from-env"), mustWork = FALSE))
  Sys.unsetenv(c("RKEOPS_CACHE_DIR", "_R_CHECK_PACKAGE_NAME_",
                 "_R_CHECK_LIMIT_CORES_"))
  expect_false(rkeops:::under_r_cmd_check())
  expect_identical(rkeops:::default_rkeops_cache_dir(),
                   tools::R_user_dir("rkeops", "cache"))
  expect_identical(rkeops:::default_ncore(), 0L)
  Sys.setenv("_R_CHECK_PACKAGE_NAME_" = "rkeops")
  expect_true(rkeops:::under_r_cmd_check())
  expect_identical(dirname(rkeops:::default_rkeops_cache_dir()), tempdir())
  expect_true(rkeops:::default_ncore() %in% 1:2)
})

test_that("install_rkeops, check_rkeops and helloWorld", {
  expect_message(expect_true(install_rkeops()), "nothing|no installation")
  out <- collect_messages(check_rkeops())
  expect_true(out$value)
  report <- paste(out$messages, collapse = "")
  expect_match(report, "C compiler")
  expect_match(report, "OpenMP")
  expect_match(report, "cores")
  expect_match(report, get_rkeops_cache_dir(), fixed = TRUE)
  expect_match(report, "'rkeops' is ready and working.", fixed = TRUE)
  expect_silent(expect_true(check_rkeops(verbose = FALSE)))
  expect_output(helloWorld(), "Hello user of KeOps")
})

test_that("loading keeps valid options the user set before", {
  old <- getOption("rkeops")
  on.exit(options(rkeops = old))
  options(rkeops = list(precision = "float32", ncore = 1, verbosity = "bad",
                        colour = "red"))
  rkeops:::init_rkeops_options()
  opts <- get_rkeops_options()
  expect_s3_class(opts, "rkeops_options")
  expect_identical(opts$precision, "float32")
  expect_identical(opts$ncore, 1L)
  expect_identical(opts$verbosity, 1L)
  expect_null(opts$colour)
  expect_identical(opts$backend, "CPU")
})
