# Reductions split over future workers: rkeops_use_future().
#
# A layer above the engine, not a second engine (ARCHITECTURE.md). When the
# option `future` is a list, run_kernel() (the one door, R/keops_kernel.R)
# hands the run to future_run(), which
#   1. checks the inputs in this process (the same errors as one process);
#   2. cuts the output rows (i for a reduction over j, j for one over i)
#      into chunks of consecutive rows;
#   3. sends each chunk as a future on the user's plan(): the formula, its
#      declarations, the precision and cache folder, the chunk's rows of the
#      output-indexed variables and all of the other variables;
#   4. waits for every future, then binds the results in chunk order, or
#      raises one error naming the first failed chunk (nothing is returned
#      half-written).
# A worker (future_worker()) builds the kernel or loads it from its cache,
# runs it on its chunk with the thread count of the option and returns the
# engine's plain matrix. A row meets the same tiles in the same order in a
# chunk as in the whole run, so the result is identical, bit for bit, to one
# process's whenever one process does not split the reduced index over its
# threads (at most 32 output rows with several threads, see run.c).
#
# Gradients: a kernel that first runs a forward kernel whose output rows are
# not the gradient's (e.g. the gradient with respect to a Vj variable of a
# LogSumExp over j) needs the whole forward result in every chunk: it runs
# in this process. A parameter's gradient (a sum over rows of per-row
# values) is split over rows and the chunks' sums are added in chunk order:
# equal to one process's up to rounding (not bit for bit).

# kernel states of a worker session, by formula, declarations and scheme
.rk_future <- new.env(parent = emptyenv())

#' Run reductions on future workers
#'
#' `rkeops_use_future()` makes every reduction (LazyTensor reductions,
#' operators of [keops_kernel()] and [keops_grad()]) split its output rows
#' into chunks and run each chunk as a future (package `future`) on the
#' workers of the current [future::plan()]: other R sessions on this
#' machine (`plan(multisession)`), other machines
#' (`plan(cluster, workers = hosts)`) or jobs of a cluster scheduler
#' (`future.batchtools`, e.g. Slurm). The results are bound in order.
#' [rkeops_use_cpu()] or [rkeops_use_gpu()] switch back to one process.
#'
#' Each worker receives the formula and only the data its chunk needs (its
#' rows of the output-indexed variables, all of the reduced ones and the
#' parameters), compiles the kernel or finds it in its cache folder, and
#' runs with `threads` threads. A cache folder shared by the workers (on a
#' network file system) is safe: kernels are written atomically.
#'
#' The result is identical, bit for bit, to the one of a single process
#' whenever the single process computes each output row on its own, i.e.
#' unless it has at most 32 output rows and several threads (it then
#' splits the reduced index over its threads). The gradient of a parameter
#' is a sum over rows: the sums of the chunks are added in chunk order, so
#' it agrees with one process up to rounding. Gradients that need a forward
#' reduction over other rows run in the calling process.
#'
#' When a worker fails (bad data, no compiler, a killed worker, rkeops not
#' installed there), the reduction waits for the other chunks and raises
#' one error of class `rkeops_error_future` naming the chunk, the worker
#' and its message.
#'
#' @param chunks `NULL` (default) for one chunk per worker of the current
#'   plan ([future::nbrOfWorkers()], at most 64; 16 when the plan has no
#'   bound), or a whole number of chunks. Never more chunks than rows.
#' @param threads `NULL` (default) for `parallelly::availableCores()` in
#'   each worker (which future sets so that the workers of one machine do
#'   not over-subscribe it), or a whole number of threads per worker.
#' @param split `"auto"` (default), `"rows"` or `"reduced"`: what is cut
#'   into chunks. `"rows"` cuts the output rows. `"reduced"` cuts the
#'   reduced index (for few output rows and many reduced ones): each worker
#'   returns the partial states of every output row over its share of the
#'   reduced index, and this session merges them in chunk order with the
#'   reduction's merge (Sum, Min/Max and their Arg forms, KMin/ArgKMin,
#'   LogSumExp, SumSoftMaxWeight...). Min, Max, their indices and
#'   K-reductions are then exact; sums and LogSumExp are grouped
#'   differently from one process (equal up to rounding, the same from run
#'   to run). `"auto"` cuts the reduced index when there are at most 32
#'   output rows or fewer than chunks, and at least 512 reduced indices per
#'   chunk (gradients excepted), the rows otherwise.
#' @param cache_dir `NULL` (default) for this session's cache folder (see
#'   [get_rkeops_cache_dir()]) when the worker can write it, else the
#'   worker's own default; or a path to a folder for the workers.
#'
#' @return The previous options, invisibly.
#'
#' @seealso [rkeops_use_cpu()], the vignette "Scaling out".
#' @export
#' @examples
#' if (requireNamespace("future", quietly = TRUE)) {
#'   oplan <- future::plan("sequential")
#'   rkeops_use_future(chunks = 2)
#'   x <- matrix(runif(30), 10, 3)
#'   y <- matrix(runif(45), 15, 3)
#'   a <- sum(exp(-sqdist(Vi(x), Vj(y))), index = "j")
#'   rkeops_use_cpu()
#'   future::plan(oplan)
#' }
rkeops_use_future <- function(chunks = NULL, threads = NULL, cache_dir = NULL,
                              split = "auto") {
  call <- sys.call()
  if (!requireNamespace("future", quietly = TRUE)) {
    rk_abort(
      paste0("rkeops_use_future() needs the package 'future' ",
             "(install.packages(\"future\")); the rkeops options were not changed."),
      "future", call
    )
  }
  fo <- validate_option("future", list(chunks = chunks, threads = threads,
                                       cache_dir = cache_dir, split = split),
                        call = call)
  update_options(list(backend = "CPU", future = fo))
}

# Validates the `future` option: FALSE (or NULL) when off, else
# list(chunks, threads, cache_dir), each NULL or checked.
validate_future_option <- function(value, call = NULL) {
  if (is.null(value) || isFALSE(value)) return(FALSE)
  bad <- function(what) {
    rk_abort(sprintf("`%s` %s; received %s.", what[1L], what[2L],
                     fmt_value(value[[what[1L]]])), "arg", call)
  }
  if (!is.list(value) || is.null(names(value)) ||
      !all(names(value) %in% c("chunks", "threads", "cache_dir", "split"))) {
    rk_abort(
      paste0("the rkeops option `future` should be FALSE or ",
             "list(chunks, threads, cache_dir, split); received ", fmt_value(value), "."),
      "arg", call
    )
  }
  out <- list(chunks = NULL, threads = NULL, cache_dir = NULL, split = "auto")
  for (n in c("chunks", "threads")) {
    v <- value[[n]]
    if (is.null(v)) next
    if (!is_whole_number(v) || v < 1 || v > 1e6) {
      bad(c(n, "should be NULL or a whole number >= 1"))
    }
    out[n] <- list(as.integer(v))
  }
  cd <- value$cache_dir
  if (!is.null(cd)) {
    if (!is.character(cd) || length(cd) != 1L || is.na(cd) || !nzchar(cd)) {
      bad(c("cache_dir", "should be NULL or a single path to a folder"))
    }
    out$cache_dir <- normalizePath(path.expand(cd), mustWork = FALSE)
  }
  sp <- value$split
  if (!is.null(sp)) {
    if (!is.character(sp) || length(sp) != 1L || !(sp %in% c("auto", "rows", "reduced"))) {
      bad(c("split", "should be \"auto\", \"rows\" or \"reduced\""))
    }
    out$split <- sp
  }
  out
}

# ------------------------------------------------------------- the parent

# How a run is cut: list(cat, n, r0, r1, reduced) (the category whose rows
# are cut, its number of rows, the first and last row of each chunk, TRUE
# when it is the reduced index), or NULL when it runs in this process.
future_chunks <- function(k, inputs, fo) {
  oc <- attr(k, "outcat", exact = TRUE)
  pre <- attr(k, "pre_outcat", exact = TRUE)
  if (!is.numeric(oc) || length(oc) != 1L) return(NULL)
  has_pre <- is.numeric(pre) && length(pre) == 1L && pre >= 0L
  cats <- attr(k, "arg_cat", exact = TRUE)
  nrows <- function(cat) {
    p <- which(cats == cat)
    if (length(p)) future_nrow(inputs[[p[1L]]]) else 1
  }
  nchunks <- future_nchunks(fo)
  if (nchunks < 2L) return(NULL)
  # the reduced index: plain reductions only (no forward kernel, no row sum)
  can_reduce <- !has_pre && !isTRUE(attr(k, "postsum", exact = TRUE)) &&
    any(cats == 1L - oc)
  split <- if (is.null(fo$split)) "auto" else fo$split
  if (can_reduce && split != "rows") {
    nout <- nrows(oc)
    nred <- nrows(1L - oc)
    if (split == "reduced" ||
        ((nout <= 32 || nout < nchunks) && nred >= 512 * nchunks)) {
      # at multiples of the CPU tile (512), so that tiles stay whole
      cuts <- round(seq(0, nred, length.out = nchunks + 1L) / 512) * 512
      cuts <- unique(c(0, pmin(nred, cuts), nred))
      if (length(cuts) < 3L) return(NULL)
      return(list(cat = 1L - oc, n = nred, r0 = cuts[-length(cuts)] + 1,
                  r1 = cuts[-1L], reduced = TRUE, nout = nout))
    }
  }
  if (has_pre && pre != oc) return(NULL)
  if (!any(cats == oc)) return(NULL)
  n <- nrows(oc)
  nchunks <- as.integer(min(nchunks, n))
  if (nchunks < 2L) return(NULL)
  cuts <- floor(seq(0, n, length.out = nchunks + 1L))
  list(cat = oc, n = n, r0 = cuts[-length(cuts)] + 1, r1 = cuts[-1L], reduced = FALSE)
}

future_nchunks <- function(fo) {
  nchunks <- fo$chunks
  if (is.null(nchunks)) {
    w <- suppressWarnings(as.numeric(future::nbrOfWorkers()))
    nchunks <- if (length(w) != 1L || is.na(w) || w < 1) 1L
               else if (is.infinite(w)) 16L else min(w, 64)
  }
  as.integer(nchunks)
}

future_nrow <- function(x) if (is.matrix(x)) nrow(x) else length(x)

future_rows <- function(x, r0, r1) {
  idx <- seq.int(r0, r1)
  if (is.matrix(x)) x[idx, , drop = FALSE] else x[idx]
}

# What a worker evaluates: kept free of rkeops until it is known to be
# there, so that a worker without the package says so.
future_expr <- quote({
  if (!requireNamespace("rkeops", quietly = TRUE)) {
    list(ok = FALSE, kind = "nopkg", node = Sys.info()[["nodename"]],
         pid = Sys.getpid(), libpaths = .libPaths())
  } else {
    ns <- asNamespace("rkeops")
    if (!exists("future_worker", envir = ns, inherits = FALSE)) {
      list(ok = FALSE, kind = "oldpkg", node = Sys.info()[["nodename"]],
           pid = Sys.getpid(),
           version = as.character(utils::packageVersion("rkeops")))
    } else {
      get("future_worker", envir = ns)(task)
    }
  }
})

future_run <- function(st, k, inputs, o, call = NULL) {
  fo <- o$future
  nout <- .Call(rk_check_r, k, inputs)
  if (is.list(nout)) raise_engine_error(nout, call)
  ch <- future_chunks(k, inputs, fo)
  if (is.null(ch)) return(run_raw(st, k, inputs, o, call))
  cats <- attr(k, "arg_cat", exact = TRUE)
  cut <- which(cats == ch$cat)
  nchunks <- length(ch$r0)
  base <- list(formula = st$formula, args = st$args, sum_scheme = st$sum_scheme,
               precision = o$precision,
               cache_dir = if (is.null(fo$cache_dir)) o$cache_dir else fo$cache_dir,
               threads = fo$threads, reduced = ch$reduced)
  futs <- vector("list", nchunks)
  for (ci in seq_len(nchunks)) {
    task <- base
    task$chunk <- ci
    data <- inputs
    for (p in cut) data[[p]] <- future_rows(inputs[[p]], ch$r0[ci], ch$r1[ci])
    task$inputs <- data
    futs[[ci]] <- tryCatch(
      future::future(future_expr, substitute = FALSE, globals = list(task = task),
                     packages = character(0), label = sprintf("rkeops-chunk-%d", ci)),
      error = function(e) list(ok = FALSE, kind = "launch", message = conditionMessage(e))
    )
    rm(task, data)
  }
  # every future is waited for, so that no worker is left busy
  vals <- lapply(futs, function(f) {
    if (!inherits(f, "Future")) return(f)
    tryCatch(future::value(f),
             error = function(e) list(ok = FALSE, kind = "future",
                                      message = conditionMessage(e)))
  })
  ok <- vapply(vals, function(v) is.list(v) && isTRUE(v$ok), logical(1))
  if (!all(ok)) future_abort(vals, which(!ok), ch, call)
  res <- lapply(vals, `[[`, "value")
  if (ch$reduced) {
    out <- .Call(rk_merge_r, k, res, ch$r0 - 1, ch$nout)
    if (is.list(out)) raise_engine_error(out, call)
    return(out)
  }
  if (isTRUE(attr(k, "postsum", exact = TRUE))) Reduce(`+`, res) else do.call(rbind, res)
}

# One error for the failed chunks `bad`, about the first of them.
future_abort <- function(vals, bad, ch, call) {
  ci <- bad[1L]
  v <- vals[[ci]]
  if (!is.list(v)) v <- list(kind = "value", message = fmt_value(v))
  where <- if (!is.null(v$node)) sprintf(" on worker '%s' (pid %s)", v$node, v$pid) else ""
  why <- switch(as.character(v$kind),
    nopkg = paste0("the package rkeops is not installed there (library paths: ",
                   paste(v$libpaths, collapse = ", "), ")"),
    oldpkg = sprintf("rkeops %s is installed there, a version without rkeops_use_future()",
                     v$version),
    launch = paste0("the future could not be started: ", v$message),
    future = paste0("the worker returned no result (killed, or lost?): ", v$message),
    v$message
  )
  more <- if (length(bad) > 1L) {
    sprintf("\n(chunks %s failed too)", paste(bad[-1L], collapse = ", "))
  } else ""
  rk_abort(
    sprintf("chunk %d of %d (%s %d to %d) failed%s: %s%s",
            ci, length(ch$r0), if (ch$reduced) "reduced indices" else "output rows",
            as.integer(ch$r0[ci]), as.integer(ch$r1[ci]),
            where, why, more),
    "future", call
  )
}

# ------------------------------------------------------------- a worker

# Runs one chunk in a worker: list(ok = TRUE, value) or list(ok = FALSE,
# kind = "error", message). Never signals an error.
future_worker <- function(task) {
  node <- Sys.info()[["nodename"]]
  pid <- Sys.getpid()
  tryCatch({
    o <- future_worker_options(task)
    key <- paste(task$formula, paste(task$args, collapse = ";"), task$sum_scheme,
                 sep = "|")
    st <- .rk_future[[key]]
    if (is.null(st)) {
      st <- new_kernel_state(task$formula, parse_args(task$formula, task$args),
                             task$sum_scheme)
      assign(key, st, envir = .rk_future)
    }
    res <- if (isTRUE(task$reduced)) {
      future_partial(st, task$inputs, o)
    } else {
      run_kernel(st, task$inputs, NULL, o, raw = TRUE)
    }
    list(ok = TRUE, value = res, node = node, pid = pid)
  }, error = function(e) {
    list(ok = FALSE, kind = "error", message = conditionMessage(e),
         class = class(e), node = node, pid = pid)
  })
}

# The partial states of a chunk of the reduced index (a raw vector).
future_partial <- function(st, inputs, o) {
  if (is.null(st$ptr) || !identical(st$prec, o$precision) ||
      !identical(st$cdir, o$cache_dir)) {
    compile_state(st, o)
  }
  res <- .Call(rk_partial_r, st$ptr, inputs, o$ncore)
  if (is.list(res)) raise_engine_error(res)
  res
}

future_worker_options <- function(task) {
  o <- def_rkeops_options()
  o$backend <- "CPU"
  o$future <- FALSE
  o$verbosity <- 0L
  o$precision <- task$precision
  cd <- task$cache_dir
  if (!is.null(cd)) {
    cd <- tryCatch(validate_option("cache_dir", cd), error = function(e) NULL)
    if (!is.null(cd)) o$cache_dir <- cd
  }
  nt <- task$threads
  if (is.null(nt)) {
    # (availableCores() can fail: it runs wc, and the worker's PATH may lack it)
    nt <- tryCatch(if (requireNamespace("parallelly", quietly = TRUE)) {
      parallelly::availableCores()
    }, error = function(e) NULL)
    nt <- suppressWarnings(as.integer(nt))
    if (length(nt) != 1L || is.na(nt)) nt <- rk_ncores()
  }
  o$ncore <- as.integer(max(1L, min(nt, rk_ncores())))
  o
}
