# tests/run-r-tests.R -- runs the testthat suite against the INSTALLED rkeops
# and ends with one line "R tests: N passed, M failed, K skipped":
#   N = expectations that passed,
#   M = expectations that failed + tests that stopped with an error
#       (+ 1 when the suite could not run at all),
#   K = tests that were skipped.
# Used by `make test` (tools/test.sh), which sets R_LIBS, OMP_THREAD_LIMIT=2
# and a fresh RKEOPS_CACHE_DIR.  Not part of the package (.Rbuildignore).
#
# Usage: Rscript tests/run-r-tests.R [test-dir [package]]

args <- commandArgs(trailingOnly = TRUE)
path <- if (length(args) >= 1) args[[1]] else file.path("tests", "testthat")
pkg <- if (length(args) >= 2) args[[2]] else "rkeops"

options(testthat.progress.max_fails = Inf, warn = 1, width = 100)

summary_line <- function(passed, failed, skipped) {
  cat(sprintf("R tests: %d passed, %d failed, %d skipped\n",
              as.integer(passed), as.integer(failed), as.integer(skipped)))
}

give_up <- function(why) {
  cat("R tests could not run: ", why, "\n", sep = "")
  summary_line(0, 1, 0)
  quit(save = "no", status = 1)
}

if (!requireNamespace("testthat", quietly = TRUE)) {
  give_up("the testthat package is not installed")
}
if (!requireNamespace(pkg, quietly = TRUE)) {
  give_up(sprintf("package '%s' is not installed in %s", pkg,
                  paste(.libPaths(), collapse = ":")))
}
if (!dir.exists(path)) give_up(sprintf("no folder %s", path))
if (!length(list.files(path, "^test.*\\.[rR]$"))) {
  cat("No test files in ", path, "\n", sep = "")
  summary_line(0, 0, 0)
  quit(save = "no", status = 0)
}

for (v in c("OMP_THREAD_LIMIT", "RKEOPS_CACHE_DIR")) {
  cat(sprintf("%s=%s\n", v, Sys.getenv(v, "(unset)")))
}
cat(sprintf("testing %s %s from %s\n\n", pkg, utils::packageVersion(pkg),
            dirname(find.package(pkg))))

# One line per file (no spinner lines) when the output is a log, not a TTY.
dynamic <- cli::is_dynamic_tty()
reporter <- testthat::ProgressReporter$new(
  show_praise = FALSE,
  update_interval = if (dynamic) 0.1 else Inf
)
res <- tryCatch(
  testthat::test_dir(path, reporter = reporter, stop_on_failure = FALSE,
                     stop_on_warning = FALSE, package = pkg,
                     load_package = "installed"),
  error = function(e) e
)
if (inherits(res, "error")) give_up(conditionMessage(res))

df <- as.data.frame(res)
if (!nrow(df)) {
  summary_line(0, 0, 0)
  quit(save = "no", status = 0)
}

# Per file: expectations passed and failed, tests with errors, tests skipped.
files <- unique(df$file)
per_file <- data.frame(
  file = files,
  passed = vapply(files, function(f) sum(df$passed[df$file == f]), 0),
  failed = vapply(files, function(f) sum(df$failed[df$file == f]), 0),
  errors = vapply(files, function(f) sum(df$error[df$file == f]), 0),
  skipped = vapply(files, function(f) sum(df$skipped[df$file == f]), 0),
  warnings = vapply(files, function(f) sum(df$warning[df$file == f]), 0),
  seconds = vapply(files, function(f) sum(df$real[df$file == f], na.rm = TRUE), 0),
  row.names = NULL, stringsAsFactors = FALSE
)
per_file$seconds <- round(per_file$seconds, 2)
cat("\n== R tests, per file ==\n")
print(per_file, row.names = FALSE)

# Every failure and error in full (the progress reporter may abbreviate).
# Read the raw results: as.data.frame() drops a test's final error.
problems <- 0L
for (test in unclass(res)) {
  for (r in test$results) {
    if (inherits(r, c("expectation_failure", "expectation_error"))) {
      problems <- problems + 1L
      if (problems == 1L) cat("\n== Failures and errors, in full ==\n")
      kind <- if (inherits(r, "expectation_error")) "ERROR" else "FAILURE"
      where <- basename(test$file)
      if (!is.null(r$srcref)) where <- sprintf("%s:%d", where, r$srcref[[1]])
      name <- if (is.null(test$test) || is.na(test$test)) {
        "(code outside test_that())"
      } else {
        test$test
      }
      cat(sprintf("\n-- %s (%s): %s\n", kind, where, name))
      cat(conditionMessage(r), "\n", sep = "")
    }
  }
}

passed <- sum(df$passed)
failed <- sum(df$failed) + sum(df$error)
skipped <- sum(df$skipped)
cat("\n")
summary_line(passed, failed, skipped)
quit(save = "no", status = if (failed > 0) 1 else 0)
