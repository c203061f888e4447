# Makefile -- developer entry points for rkeops (GNU make).
#
#   make deps     install what is missing (Debian/Ubuntu: R, headers, testthat, cc)
#   make install  R CMD INSTALL into ./.lib (a local, git-ignored library)
#   make demo     install, then time the Gaussian kernel sum at N = 1e5, D = 15
#   make test     install, then the C engine tests (ASan/UBSan) and the testthat
#                 suite; the last line is "N passed, M failed[, K skipped]"
#   make bench    install, then Rscript bench/bench.R
#   make check    R CMD build + R CMD check --as-cran on the tarball
#   make docs     regenerate man/ and NAMESPACE from the roxygen comments
#   make site     the pkgdown site in ./docs (tools/site.R), links checked
#   make fuzz     libFuzzer over the engine's front end (clang), 30 minutes
#                 (FUZZ_SECONDS=...), growing tests/fuzz/corpus
#   make gpu-check  on a machine with an NVIDIA GPU (no R needed): rk-check
#                 runs a table of formulas on the GPU against the CPU, then
#                 a Gaussian benchmark
#   make valgrind the testthat files matching VALGRIND_FILTER under valgrind
#                 (a build without -march=native in ./.lib/valgrind); fails
#                 when valgrind reports an error, lists those in our code
#   make clean    remove build products, ./.lib and check output
#
# Works from a fresh clone and in CI (no TTY, no stdin).  Nothing here is
# part of the R package (see .Rbuildignore).

R       ?= R
RSCRIPT ?= Rscript
LIB     := $(CURDIR)/.lib
PKG     := rkeops
VERSION  = $(shell sed -n 's/^Version:[[:space:]]*//p' DESCRIPTION)
TARBALL  = $(PKG)_$(VERSION).tar.gz

# The make program for tools/test.sh, which runs `make -C tests/engine check`
# (not written as $(MAKE) in the recipe, so that `make -n test` runs nothing).
SUBMAKE := $(MAKE)

# Rscript against the local library first, then the usual ones.
WITH_LIB = R_LIBS="$(LIB)$${R_LIBS:+:$$R_LIBS}"

.PHONY: all deps install demo test bench check check-deps docs site fuzz gpu-check \
        clean valgrind

all: install

deps:
	@sh tools/deps.sh

# ./cleanup first, so no object or generated file from an earlier build (or
# another machine) lingers; R CMD INSTALL then runs ./configure.
install: deps
	@mkdir -p "$(LIB)"
	@sh ./cleanup
	$(R) CMD INSTALL --no-multiarch --library="$(LIB)" .

demo: install
	@$(WITH_LIB) $(RSCRIPT) tools/demo.R < /dev/null

test: install
	@MAKE="$(SUBMAKE)" RSCRIPT="$(RSCRIPT)" RKEOPS_LIB="$(LIB)" sh tools/test.sh

bench: install
	@$(WITH_LIB) $(RSCRIPT) bench/bench.R < /dev/null

# Tools that R CMD build / check --as-cran want (qpdf, pandoc, checkbashisms
# from devscripts, knitr/rmarkdown for Rmd vignettes); installed here only.
check-deps: deps
	@SUDO=""; if [ "$$(id -u)" != 0 ] && command -v sudo > /dev/null 2>&1; then SUDO=sudo; fi; \
	need=""; \
	command -v qpdf > /dev/null 2>&1 || need="$$need qpdf"; \
	command -v pandoc > /dev/null 2>&1 || need="$$need pandoc"; \
	command -v checkbashisms > /dev/null 2>&1 || need="$$need devscripts"; \
	if ls vignettes/*.Rmd > /dev/null 2>&1 && \
	   ! $(RSCRIPT) -e 'library(knitr); library(rmarkdown)' > /dev/null 2>&1; then \
	  need="$$need r-cran-knitr r-cran-rmarkdown"; fi; \
	if [ -n "$$need" ]; then \
	  echo "check-deps: installing$$need"; \
	  $$SUDO apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q --no-install-recommends $$need; \
	fi

# Without LaTeX there is no PDF manual to build: check everything else.
# No network is assumed: no CRAN incoming checks (the "unable to verify
# current time" NOTE is then expected: --as-cran forces that check).
check: check-deps
	@sh ./cleanup
	rm -rf $(PKG).Rcheck $(PKG)_*.tar.gz
	$(R) CMD build .
	@if command -v pdflatex > /dev/null 2>&1; then manual=""; \
	else manual="--no-manual"; echo "note: no pdflatex, checking with --no-manual"; fi; \
	echo "R CMD check --as-cran $$manual $(TARBALL)"; \
	_R_CHECK_CRAN_INCOMING_REMOTE_=false $(R) CMD check --as-cran $$manual $(TARBALL)

docs: deps
	@$(RSCRIPT) -e 'library(roxygen2)' > /dev/null 2>&1 || { \
	  SUDO=""; if [ "$$(id -u)" != 0 ] && command -v sudo > /dev/null 2>&1; then SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q --no-install-recommends r-cran-roxygen2; }
	$(RSCRIPT) -e 'roxygen2::roxygenise(roclets = c("rd", "namespace"), load_code = "source")'

site: install
	@$(RSCRIPT) -e 'library(pkgdown)' > /dev/null 2>&1 || { \
	  SUDO=""; if [ "$$(id -u)" != 0 ] && command -v sudo > /dev/null 2>&1; then SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q --no-install-recommends r-cran-pkgdown; }
	@$(WITH_LIB) $(RSCRIPT) tools/site.R < /dev/null

fuzz:
	@command -v clang > /dev/null 2>&1 || { \
	  SUDO=""; if [ "$$(id -u)" != 0 ] && command -v sudo > /dev/null 2>&1; then SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q --no-install-recommends clang; }
	$(MAKE) -C tests/fuzz fuzz FUZZ_SECONDS=$${FUZZ_SECONDS:-1800}

gpu-check:
	$(MAKE) -C tests/engine gpu-check

clean:
	@sh ./cleanup
	rm -rf "$(LIB)" $(PKG).Rcheck $(PKG)_*.tar.gz
	@if [ -f tests/engine/Makefile ]; then \
	  $(MAKE) --no-print-directory -C tests/engine clean || true; fi

# valgrind: R -d valgrind on a representative subset of the testthat suite
# (the whole suite takes hours under valgrind; VALGRIND_FILTER= with an
# empty value runs it all). The package is built into ./.lib/valgrind with
# RKEOPS_NO_MARCH_NATIVE=1, because valgrind does not decode the AVX-512
# code that -march=native gives the JIT kernels. Leaks count as errors when
# definite (R keeps much memory reachable at exit, and libgomp's idle
# threads leave their TLS "possibly lost"). The log goes to a
# temporary file; the end of the recipe prints valgrind's summary and every
# error whose stack goes through our code (rkeops.so, the JIT kernels
# rk*-<hash>.so, src/).
VALGRIND_FILTER ?= robustness|keops-kernel|formula-errors|reductions|lazytensor-fastpath|^lazytensor$$
VALGRIND_FLAGS  ?= --error-exitcode=1 --leak-check=full \
                   --errors-for-leak-kinds=definite --track-origins=yes \
                   --num-callers=30
valgrind: deps
	@command -v valgrind > /dev/null 2>&1 || \
	  { echo "valgrind not found (apt-get install -y valgrind)"; exit 1; }
	@mkdir -p "$(LIB)/valgrind"
	@sh ./cleanup
	RKEOPS_NO_MARCH_NATIVE=1 $(R) CMD INSTALL --no-multiarch \
	  --library="$(LIB)/valgrind" .
	@sh ./cleanup
	@work=$$(mktemp -d "$${TMPDIR:-/tmp}/rkeops-valgrind.XXXXXX") || exit 1; \
	log="$$work/valgrind.log"; \
	echo "valgrind on tests/testthat (filter '$(VALGRIND_FILTER)'), log in $$log"; \
	cd tests && R_LIBS="$(LIB)/valgrind$${R_LIBS:+:$$R_LIBS}" \
	  OMP_THREAD_LIMIT=2 NOT_CRAN=true RKEOPS_VALGRIND=1 \
	  RKEOPS_CACHE_DIR="$$work/cache" VALGRIND_FILTER='$(VALGRIND_FILTER)' \
	  $(R) -d "valgrind $(VALGRIND_FLAGS) --log-file=$$log" --vanilla \
	  --no-echo -e 'suppressPackageStartupMessages({library(testthat); library(rkeops)}); f <- Sys.getenv("VALGRIND_FILTER"); r <- as.data.frame(test_dir("testthat", filter = if (nzchar(f)) f, reporter = "summary", stop_on_failure = FALSE)); nf <- sum(r$$failed) + sum(r$$error); cat(sprintf("R tests: %d passed, %d failed, %d skipped\n", sum(r$$passed), nf, sum(r$$skipped))); if (nf > 0) quit(save = "no", status = 2)' \
	  < /dev/null; \
	rc=$$?; \
	echo; echo "== valgrind summary (exit status $$rc: 1 = valgrind errors, 2 = failed tests)"; \
	grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost" "$$log" | sort | uniq -c; \
	ours=$$(awk '/^==[0-9]+== *$$/ { if (keep && !skip) print blk "\n"; blk = ""; keep = 0; skip = 0; next } \
	  /^==[0-9]+==/ { if (blk == "") skip = ($$0 ~ /possibly lost|still reachable|indirectly lost|SUMMARY|in use at exit|Memcheck|Copyright|Using Valgrind|Command:|Parent PID|total heap usage|Rerun with|For lists|For counts/); \
	    blk = (blk == "" ? $$0 : blk "\n" $$0); \
	    if ($$0 ~ /rkeops\.so|\/rk[0-9]+-[0-9a-f]+\.so|\((r_engine|r_lazy|init|build|compile|cpu|cuda|diff|emit|error|gpu|lex|ops|parse|reductions|run|sha256|tree)\.c:[0-9]+\)/) keep = 1 } \
	  END { if (keep && !skip) print blk }' "$$log"); \
	if [ -n "$$ours" ]; then echo "== errors in our code:"; echo "$$ours"; \
	else echo "== no valgrind error goes through our code (rkeops.so, JIT kernels)"; fi; \
	exit $$rc
