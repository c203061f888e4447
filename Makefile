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
#   make fuzz     libFuzzer over the engine's front end (clang), 30 minutes
#                 (FUZZ_SECONDS=...), growing tests/fuzz/corpus
#   make gpu-check  on a machine with an NVIDIA GPU (no R needed): rk-check
#                 runs a table of formulas on the GPU against the CPU, then
#                 a Gaussian benchmark
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

.PHONY: all deps install demo test bench check check-deps docs fuzz gpu-check clean

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
