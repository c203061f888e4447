#!/bin/sh
# tools/deps.sh -- `make deps`: installs what building and testing rkeops
# need on a fresh Debian/Ubuntu machine.  A quick no-op when all is present.
#
#   R + R headers + testthat  ->  r-base-dev r-cran-testthat
#   a C compiler              ->  build-essential
#   the tests of rkeops_use_future() and of forks (suggested packages: the
#   package runs without them)  ->  r-cran-future r-cran-future.batchtools
#                                   r-cran-parallelly
#   the tests and bench of keops_knn() against FNN / RANN (suggested)
#                               ->  r-cran-fnn r-cran-rann
#   progress reports (suggested)  ->  r-cran-progressr
#
# Uses sudo when not root (and sudo exists).  Non-interactive, for CI.

need=""
if ! command -v R > /dev/null 2>&1 || ! command -v Rscript > /dev/null 2>&1; then
  need="r-base-dev r-cran-testthat r-cran-future r-cran-future.batchtools r-cran-parallelly r-cran-fnn r-cran-rann r-cran-progressr"
elif ! Rscript -e 'suppressPackageStartupMessages(library(testthat))
                  stopifnot(file.exists(file.path(R.home("include"), "R.h")))' \
       > /dev/null 2>&1 < /dev/null; then
  need="r-base-dev r-cran-testthat r-cran-future r-cran-future.batchtools r-cran-parallelly r-cran-fnn r-cran-rann r-cran-progressr"
fi
for p in future future.batchtools parallelly FNN RANN progressr; do
  if command -v Rscript > /dev/null 2>&1 &&
     ! Rscript -e "if (!requireNamespace('$p', quietly = TRUE)) quit(status = 1)" \
       > /dev/null 2>&1 < /dev/null; then
    need="$need r-cran-$(echo $p | tr A-Z a-z)"
  fi
done
if ! command -v cc > /dev/null 2>&1 && ! command -v gcc > /dev/null 2>&1; then
  need="$need build-essential"
fi

[ -z "$need" ] && exit 0

echo "deps: missing, installing:$(printf ' %s' $need)"
if ! command -v apt-get > /dev/null 2>&1; then
  echo "deps: apt-get not found; install R (with headers), testthat and a C compiler by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo > /dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "deps: not root and no sudo; please install: $need" >&2
    exit 1
  fi
fi
$SUDO apt-get update -q &&
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need < /dev/null
