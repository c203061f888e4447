# Robustness of the cache folder: 8 R processes compiling the same new
# formula at once, corrupted kernel files, cache folders that cannot be
# written. The processes are started with system2(wait = FALSE) and report
# through files; the parent polls them with a time limit.

# Start `Rscript script args` in the background with the parent's library
# path and at most 2 threads; output in `log`.
rb_spawn <- function(script, args, log, cache) {
  system2(
    rscript_bin, c("--vanilla", shQuote(script), vapply(args, shQuote, "")),
    stdout = log, stderr = log, wait = FALSE,
    env = child_env(cache)
  )
}

rb_logs <- function(logs) {
  paste(unlist(lapply(logs[file.exists(logs)], readLines, warn = FALSE)),
        collapse = "\n")
}

# A child that compiles the formula of <work>/inputs.rds once <work>/go
# exists and saves its result (value, origin of the kernel) to
# <work>/result-<k>.rds (written under another name, then renamed).
rb_child_compile <- c(
  "args <- commandArgs(trailingOnly = TRUE)",
  "work <- args[[1]]; k <- args[[2]]",
  "suppressPackageStartupMessages(library(rkeops, warn.conflicts = FALSE))",
  "set_rkeops_cache_dir(Sys.getenv('RKEOPS_CACHE_DIR'), verbose = FALSE)",
  "rkeops_disable_verbosity(); rkeops_use_cpu(1)",
  "inp <- readRDS(file.path(work, 'inputs.rds'))",
  "out <- list()",
  "for (f in inp$formulas) {",
  "  op <- keops_kernel(f, inp$args)",
  "  if (isTRUE(inp$wait)) {",
  "    file.create(file.path(work, paste0('ready-', k)))",
  "    t0 <- Sys.time()",
  "    while (!file.exists(file.path(work, 'go')) &&",
  "           Sys.time() - t0 < 120) Sys.sleep(0.005)",
  "  }",
  "  val <- tryCatch(op(inp$data), error = function(e) conditionMessage(e))",
  "  out[[f]] <- list(value = val,",
  "                   from = attr(environment(op)$st$ptr, 'from'))",
  "}",
  "tmp <- file.path(work, paste0('partial-', k, '.rds'))",
  "saveRDS(out, tmp)",
  "file.rename(tmp, file.path(work, paste0('result-', k, '.rds')))"
)

rb_cx <- matrix(c(0.1, 0.5, 0.9, 0.2, 0.4, 0.6), 3, 2)
rb_cy <- matrix(c(0.3, 0.7, 0.2, 0.8), 2, 2)
rb_cref <- function(n) matrix(n * rowSums(exp(-sqdist_mat(rb_cx, rb_cy))))
rb_cformula <- function(n) {
  sprintf("Sum_Reduction(Exp(-SqDist(x, y)) * IntCst(%d), 0)", n)
}
rb_cargs <- c("x = Vi(2)", "y = Vj(2)")

# Run children k = 1..n on the formulas; returns their results (or NULL
# after failing the test).
rb_run_children <- function(formulas, n, cache, wait = FALSE,
                            timeout = 180) {
  work <- tempfile("rb-work-")
  dir.create(work)
  script <- file.path(work, "child.R")
  writeLines(rb_child_compile, script)
  saveRDS(list(formulas = formulas, args = rb_cargs,
               data = list(rb_cx, rb_cy), wait = wait),
          file.path(work, "inputs.rds"))
  logs <- file.path(work, sprintf("log-%d.txt", seq_len(n)))
  for (k in seq_len(n)) rb_spawn(script, c(work, k), logs[k], cache)
  if (wait) {
    ready <- file.path(work, sprintf("ready-%d", seq_len(n)))
    if (!wait_files(ready, timeout)) {
      fail(paste("the R processes did not start:", rb_logs(logs)))
      return(NULL)
    }
    file.create(file.path(work, "go"))
  }
  res <- file.path(work, sprintf("result-%d.rds", seq_len(n)))
  if (!wait_files(res, timeout)) {
    fail(paste("the R processes did not finish:", rb_logs(logs)))
    return(NULL)
  }
  lapply(res, readRDS)
}

kernel_files <- function(dir) {
  list.files(dir, pattern = "^rk.*\\.so$", full.names = TRUE)
}

test_that("8 R processes compile the same new formula at once", {
  skip_without_installed_rkeops()
  cache <- tempfile("rb-cache-concurrent-")
  dir.create(cache)
  n <- unique_int()
  f <- rb_cformula(n)
  res <- rb_run_children(f, 8L, cache, wait = TRUE)
  skip_if(is.null(res))
  for (r in res) {
    expect_true(is.matrix(r[[f]]$value), info = paste(r[[f]]$value))
    if (is.matrix(r[[f]]$value)) expect_close(r[[f]]$value, rb_cref(n), 1e-13)
    expect_true(r[[f]]$from %in% c("compiler", "disk"))
  }
  # one kernel, no temporary file left, and the file is whole (its trailer
  # checks out: this session loads it from disk)
  expect_length(kernel_files(cache), 1L)
  expect_identical(list.files(cache, pattern = "^tmp-"), character())
  old <- set_rkeops_cache_dir(cache, verbose = FALSE)
  on.exit(set_rkeops_cache_dir(old, verbose = FALSE))
  op <- keops_kernel(f, rb_cargs)
  expect_close(op(list(rb_cx, rb_cy)), rb_cref(n), 1e-13)
  expect_identical(attr(environment(op)$st$ptr, "from"), "disk")
})

test_that("a corrupted kernel file is detected and rebuilt", {
  skip_without_installed_rkeops()
  cache <- tempfile("rb-cache-corrupt-")
  dir.create(cache)
  old <- set_rkeops_cache_dir(cache, verbose = FALSE)
  on.exit(set_rkeops_cache_dir(old, verbose = FALSE))
  n0 <- unique_int()
  ns <- n0 + 0:3
  formulas <- rb_cformula(ns)
  paths <- character()
  for (f in formulas) {
    before <- kernel_files(cache)
    op <- keops_kernel(f, rb_cargs)
    op(list(rb_cx, rb_cy))
    paths <- c(paths, setdiff(kernel_files(cache), before))
  }
  expect_length(paths, 4L)
  md5 <- unname(tools::md5sum(paths))
  size <- file.size(paths)
  # 1: bytes overwritten in the middle; 2: truncated to half;
  # 3: replaced by text; 4: its trailer (143 bytes) cut off (a torn write). Each is
  # written beside and renamed into place: this session has the files
  # mapped, and rewriting a loaded shared object in place would change its
  # code under our feet.
  replace_file <- function(path, bytes) {
    tmp <- paste0(path, ".corrupt")
    writeBin(bytes, tmp)
    file.rename(tmp, path)
  }
  bytes <- readBin(paths[1], "raw", size[1])
  mid <- size[1] %/% 2
  bytes[mid + 0:63] <- as.raw(0xAB)
  replace_file(paths[1], bytes)
  replace_file(paths[2], readBin(paths[2], "raw", size[2] %/% 2))
  replace_file(paths[3], charToRaw("this is not a shared object\n"))
  replace_file(paths[4], readBin(paths[4], "raw", size[4] - 143L))
  md5_bad <- unname(tools::md5sum(paths))
  expect_false(any(md5_bad == md5))
  # a new R process compiles the formulas again: right values, files
  # rebuilt (not byte for byte: the compiler records the temporary source
  # name)
  res <- rb_run_children(formulas, 1L, cache)
  skip_if(is.null(res))
  for (k in seq_along(formulas)) {
    r <- res[[1]][[formulas[k]]]
    expect_true(is.matrix(r$value), info = paste(r$value))
    if (is.matrix(r$value)) expect_close(r$value, rb_cref(ns[k]), 1e-13)
    expect_identical(r$from, "compiler")
  }
  rebuilt <- unname(tools::md5sum(paths))
  expect_false(any(rebuilt == md5_bad))
  expect_identical(file.size(paths), size)
  expect_identical(list.files(cache, pattern = "^tmp-"), character())
  # and the next process loads them from disk: their trailers check out
  res <- rb_run_children(formulas, 1L, cache)
  skip_if(is.null(res))
  for (k in seq_along(formulas)) {
    r <- res[[1]][[formulas[k]]]
    if (is.matrix(r$value)) expect_close(r$value, rb_cref(ns[k]), 1e-13)
    expect_identical(r$from, "disk")
  }
})

test_that("a FIFO, a link to /dev/zero or another formula's kernel is rebuilt", {
  skip_without_installed_rkeops()
  skip_if(.Platform$OS.type != "unix" || !file.exists("/dev/zero"))
  skip_if_not(nzchar(Sys.which("mkfifo")), "no mkfifo")
  cache <- tempfile("rb-cache-hostile-")
  dir.create(cache)
  old <- set_rkeops_cache_dir(cache, verbose = FALSE)
  on.exit(set_rkeops_cache_dir(old, verbose = FALSE))
  ns <- unique_int() + 0:3
  formulas <- rb_cformula(ns)
  paths <- character()
  for (f in formulas) {
    before <- kernel_files(cache)
    keops_kernel(f, rb_cargs)(list(rb_cx, rb_cy))
    paths <- c(paths, setdiff(kernel_files(cache), before))
  }
  expect_length(paths, 4L)
  # 1: a FIFO (reading it would block forever); 2: a link to /dev/zero
  # (endless); 3: a valid kernel of formula 4 under the name of formula 3
  # (loading it gives formula 4's values); 4: a link to formula 4's own
  # kernel, moved elsewhere (links are not followed)
  unlink(paths[1])
  expect_identical(system2("mkfifo", shQuote(paths[1])), 0L)
  unlink(paths[2])
  expect_true(file.symlink("/dev/zero", paths[2]))
  # (copied beside, then renamed: this session has paths[3] mapped)
  expect_true(file.copy(paths[4], paste0(paths[3], ".swap")))
  expect_true(file.rename(paste0(paths[3], ".swap"), paths[3]))
  elsewhere <- tempfile(fileext = ".so")
  expect_true(file.copy(paths[4], elsewhere))
  unlink(paths[4])
  expect_true(file.symlink(elsewhere, paths[4]))
  out <- tempfile(fileext = ".rds")
  run <- run_child(c(
    child_setup,
    "args <- commandArgs(trailingOnly = TRUE)",
    "inp <- readRDS(args[[1]])",
    "res <- lapply(inp$formulas, function(f) {",
    "  op <- keops_kernel(f, inp$args)",
    "  list(value = op(inp$data), from = attr(environment(op)$st$ptr, 'from'))",
    "})",
    "saveRDS(res, args[[2]])"
  ), c({
    inp <- tempfile(fileext = ".rds")
    saveRDS(list(formulas = formulas, args = rb_cargs,
                 data = list(rb_cx, rb_cy)), inp)
    inp
  }, out), timeout = 120)
  expect_true(file.exists(out), info = sprintf("status %s\n%s", run$status, run$log))
  skip_if_not(file.exists(out))
  res <- readRDS(out)
  for (k in seq_along(formulas)) {
    expect_close(res[[k]]$value, rb_cref(ns[k]), 1e-13)
    expect_identical(res[[k]]$from, "compiler")
  }
  # each replaced by a regular file of its own
  info <- file.info(paths, extra_cols = FALSE)
  expect_false(any(nzchar(Sys.readlink(paths))))
  expect_true(all(!info$isdir & info$size > 0 & info$size < 2^26))
  expect_identical(list.files(cache, pattern = "^tmp-"), character())
})

# Compile a new formula with the cache folder `dir` (set by hand, as a
# folder that later became unusable); returns the warnings and the value.
compile_with_cache <- function(dir, n) {
  o <- get_rkeops_options()
  o$cache_dir <- dir
  old <- options(rkeops = o)
  on.exit(options(old))
  op <- keops_kernel(rb_cformula(n), rb_cargs)
  warnings <- character()
  value <- withCallingHandlers(
    op(list(rb_cx, rb_cy)),
    warning = function(w) {
      warnings <<- c(warnings, conditionMessage(w))
      invokeRestart("muffleWarning")
    }
  )
  list(value = value, warnings = warnings, ptr = environment(op)$st$ptr)
}

test_that("an unusable cache folder falls back to a temporary one", {
  skip_on_cran() # the fallback folder is $TMPDIR/rkeops-cache-<uid>
  tmp <- Sys.getenv("TMPDIR", "/tmp")
  if (!nzchar(tmp)) tmp <- "/tmp"
  # the cache folder path is a regular file
  dir <- tempfile("rb-cache-file-")
  writeLines("a file", dir)
  n <- unique_int()
  r <- compile_with_cache(dir, n)
  expect_close(r$value, rb_cref(n), 1e-13)
  expect_length(r$warnings, 1L)
  expect_match(r$warnings, "cannot be written", fixed = TRUE)
  expect_match(r$warnings, dir, fixed = TRUE)
  expect_identical(attr(r$ptr, "cache_fallback"), dir)
  fallback <- list.files(tmp, pattern = "^rkeops-cache-", full.names = TRUE)
  in_fallback <- basename(unlist(lapply(fallback, list.files)))
  expect_true(any(grepl(paste0("^rk.*-", attr(r$ptr, "hash"), "\\.so$"),
                        in_fallback)))
  expect_identical(readLines(dir), "a file")
  # the cache folder is under a file
  n2 <- n + 1L
  r <- compile_with_cache(file.path(dir, "sub"), n2)
  expect_close(r$value, rb_cref(n2), 1e-13)
  expect_length(r$warnings, 1L)
  expect_match(r$warnings, file.path(dir, "sub"), fixed = TRUE)
  # the same kernel again with a usable folder comes from memory: no
  # warning about the earlier folder
  good <- tempfile("rb-cache-good-")
  dir.create(good)
  r <- compile_with_cache(good, n2)
  expect_close(r$value, rb_cref(n2), 1e-13)
  expect_identical(r$warnings, character())
  expect_null(attr(r$ptr, "cache_fallback"))
})

test_that("a read-only cache folder falls back to a temporary one", {
  skip_on_cran()
  dir <- tempfile("rb-cache-readonly-")
  dir.create(dir)
  Sys.chmod(dir, "0555")
  on.exit(Sys.chmod(dir, "0755"))
  # root ignores permissions: nothing to test then
  skip_if(file.access(dir, 2L) == 0L,
          "the folder stays writable (running as root)")
  n <- unique_int()
  r <- compile_with_cache(dir, n)
  expect_close(r$value, rb_cref(n), 1e-13)
  expect_length(r$warnings, 1L)
  expect_match(r$warnings, dir, fixed = TRUE)
  expect_length(list.files(dir, all.files = TRUE, no.. = TRUE), 0L)
})

test_that("clean_rkeops() while another session compiles does not break it", {
  skip_without_installed_rkeops()
  skip_if(.Platform$OS.type != "unix")
  for (remove_dir in c(TRUE, FALSE)) {
    work <- tempfile("rb-clean-")
    cache <- file.path(work, "cache")
    dir.create(file.path(work, "tmp"), recursive = TRUE)
    dir.create(cache)
    n <- unique_int()
    out <- file.path(work, "out.rds")
    script <- file.path(work, "child.R")
    writeLines(c(
      child_setup,
      "args <- commandArgs(trailingOnly = TRUE)",
      "n <- as.integer(args[[2]])",
      # a few seconds of compilation
      "f <- sprintf('Sum_Reduction(%s, 0)', paste(sprintf(",
      "  'Exp(-SqDist(x, y) * IntCst(%d)) * IntCst(%d)', 1:60, n), collapse = ' + '))",
      "op <- keops_kernel(f, c('x = Vi(2)', 'y = Vj(2)'))",
      "x <- readRDS(file.path(args[[1]], 'x.rds'))",
      "res <- tryCatch(list(value = op(list(x$x, x$y)),",
      "                     from = attr(environment(op)$st$ptr, 'from')),",
      "                error = function(e) list(value = conditionMessage(e)))",
      "saveRDS(res, file.path(args[[1]], 'out.tmp'))",
      "file.rename(file.path(args[[1]], 'out.tmp'), file.path(args[[1]], 'out.rds'))"
    ), script)
    saveRDS(list(x = rb_cx, y = rb_cy), file.path(work, "x.rds"))
    env <- c(child_env(cache), sprintf("TMPDIR=%s", shQuote(file.path(work, "tmp"))))
    system2(rscript_bin, c("--vanilla", shQuote(script), shQuote(work), n),
            stdout = file.path(work, "log"), stderr = file.path(work, "log"),
            wait = FALSE, env = env)
    # once the compiler runs, another session cleans the cache folder
    building <- function() {
      length(Sys.glob(file.path(work, "tmp", "rkeops-build-*", "k.c"))) > 0
    }
    t0 <- Sys.time()
    while (!building() && !file.exists(out) &&
           as.numeric(Sys.time() - t0, units = "secs") < 120) Sys.sleep(0.02)
    expect_true(building(), info = paste(readLines(file.path(work, "log")), collapse = "\n"))
    file.create(file.path(cache, "tmp-other-session.so"))
    old <- set_rkeops_cache_dir(cache, verbose = FALSE)
    clean_rkeops(verbose = FALSE, remove_cache_dir = remove_dir)
    set_rkeops_cache_dir(old, verbose = FALSE)
    expect_false(file.exists(file.path(cache, "tmp-other-session.so")))
    done <- wait_files(out, 120)
    expect_true(done, info = paste(readLines(file.path(work, "log")), collapse = "\n"))
    if (!done) next
    res <- readRDS(out)
    expect_true(is.matrix(res$value), info = paste(res$value))
    d2 <- sqdist_mat(rb_cx, rb_cy)
    ref <- n * rowSums(Reduce(`+`, lapply(1:60, function(k) exp(-k * d2))))
    if (is.matrix(res$value)) expect_close(res$value, matrix(ref), 1e-13)
    expect_identical(res$from, "compiler")
    # the kernel was published in the folder (created again if removed)
    expect_length(kernel_files(cache), 1L)
    expect_identical(list.files(cache, pattern = "^tmp-"), character())
  }
})
