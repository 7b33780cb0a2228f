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
# 13 and sid roots of the cluster tests' other runs (tests/cluster/node-root.sh). dpkg-dev
# and lintian build and check the Debian package (make deb); python3-psycopg2 serves the
# soak's clients and checker (tests/soak/soak.py).
APT_PACKAGES := postgresql-15 postgresql-client-15 libxml2-utils pacemaker pacemaker-cli-utils \
                corosync pcs crmsh resource-agents fence-agents iproute2 psmisc strace procps \
                util-linux shellcheck resource-agents-paf libssl-dev pkg-config openssl python3 \
                debootstrap patchelf python3-pip unzip dpkg-dev lintian python3-psycopg2

.PHONY: all build deps install uninstall deb test-deb test-vagrant-provision demo test test-unit test-majors test-cluster \
        test-cluster-debian12 test-cluster-debian13 test-cluster-sid bench bench-rewind bench-failover fixtures clean \
        soak soak-ci

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

# The Debian package (debian/build.sh: dpkg-shlibdeps, dpkg-gencontrol, dpkg-deb), checked by
# lintian (no error, no warning), and target/debian/current.deb, a link to it that the
# cluster harness and the demo install into their nodes.
DEB_VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
DEB         = target/debian/pgha_$(DEB_VERSION)_amd64.deb
deb: build
	debian/build.sh $(BIN) target/debian
	ln -sfn $(notdir $(DEB)) target/debian/current.deb
	lintian --fail-on error,warning $(DEB)

# The package on fresh minimal Debian 12 and 13 roots (debootstrap --variant=minbase, cached by
# tests/cluster/node-root.sh): install the previous version, upgrade to this one, purge.
test-deb: deb
	tests/deb/test.sh

# The Vagrant cluster's provisioning (tests/cluster/vagrant/provision.sh) in the same roots,
# up to the cluster's start (tests/cluster/vagrant/test-provision.sh).
test-vagrant-provision: deb
	tests/cluster/vagrant/test-provision.sh

# The main job: a 3-node demo cluster managed by pgha. PG=17 (Debian 13 nodes), PG=18 or
# PG=19 (sid nodes) runs it on another major than Debian 12's 15 (tests/cluster/lib/node-os.sh).
PG ?=
demo: deps deb
	$(if $(PG),PGHA_PG_MAJOR=$(PG)) tests/cluster/demo.sh $(DEMO_ARGS)

# Every test: the Debian package (built, linted, installed, upgraded, purged on fresh roots;
# the Vagrant provisioning there), unit + integration (real PostgreSQL 15), the fuzz targets
# for half a minute each, the version-sensitive integration tests on every other major, the
# cluster scenarios (Debian 12, 13 and sid nodes), then the short soak (25 random faults).
test: deps build deb test-deb test-vagrant-provision test-unit fuzz-ci test-majors test-cluster soak-ci

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

# The cluster scenarios, on two cluster instances at once (CLUSTER_B: its own namespaces,
# addresses and state directory), each a run after the other, balanced to take about the same
# time (about 19 minutes each on 2 cores, 20 in all): on the first, every scenario on Debian 12 nodes
# (Pacemaker 2.1, PostgreSQL 15), then the version-sensitive ones on Debian sid nodes
# (Pacemaker 3.0.3) with PostgreSQL 18; on the second, every scenario on Debian 13 nodes
# (Pacemaker 3.0, pcs 0.12, crmsh 5, PostgreSQL 17) in the cached trixie root, then the
# version-sensitive ones on sid nodes with PostgreSQL 19. Each line is prefixed with its
# instance; all runs go on when one fails, and any failing fails it.
CLUSTER_B ?= PGHA_CLUSTER_ROOT=/var/tmp/pgha-cluster-b PGHA_NET=10.202.0 PGHA_NS_PREFIX=pghb
# PostgreSQL 18 and 19 on sid nodes: the examples with sid's pcs and crmsh (on 18), failover
# after a power cut, switchover there and back, failback by the agent's rewind (on both). The
# other scenarios do not depend on the major and run on 15 and 17.
SID_SCENARIOS_18 ?= 02 03 14 22 30
SID_SCENARIOS_19 ?= 14 22 30
RUN_DEBIAN12 := PGHA_NODE_OS=debian12 tests/cluster/run.sh
RUN_DEBIAN13 := PGHA_NODE_OS=debian13 tests/cluster/run.sh
RUN_SID18    := PGHA_NODE_OS=sid PGHA_PG_MAJOR=18 tests/cluster/run.sh $(SID_SCENARIOS_18)
RUN_SID19    := PGHA_NODE_OS=sid PGHA_PG_MAJOR=19 tests/cluster/run.sh $(SID_SCENARIOS_19)

# The package and the roots are made once, before the runs share them.
test-cluster: deb
	tests/cluster/node-root.sh debian13 build
	tests/cluster/node-root.sh sid build
	@mkdir -p target; rm -f target/.cluster-*.rc; \
	{ { ($(RUN_DEBIAN12)); echo $$? > target/.cluster-12.rc; \
	    ($(RUN_SID18)); echo $$? > target/.cluster-sid18.rc; } 2>&1 \
	  | sed -u 's/^/[debian12+sid18] /' & \
	  { ($(CLUSTER_B) $(RUN_DEBIAN13)); echo $$? > target/.cluster-13.rc; \
	    ($(CLUSTER_B) $(RUN_SID19)); echo $$? > target/.cluster-sid19.rc; } 2>&1 \
	  | sed -u 's/^/[debian13+sid19] /' & \
	  wait; }; \
	rc=0; for r in 12 sid18 13 sid19; do \
		code=$$(cat target/.cluster-$$r.rc 2>/dev/null || echo missing); \
		echo "test-cluster $$r: exit $$code"; [ "$$code" = 0 ] || rc=1; \
	done; exit $$rc

test-cluster-debian12: deb
	$(RUN_DEBIAN12)

test-cluster-debian13: deb
	tests/cluster/node-root.sh debian13 build
	$(RUN_DEBIAN13)

test-cluster-sid: deb
	tests/cluster/node-root.sh sid build
	@rc=0; ($(RUN_SID18)) || rc=1; ($(RUN_SID19)) || rc=1; exit $$rc

# The soak (tests/soak/, README "Soak"): random faults under load with synchronous replication,
# every acknowledged row checked. It runs on a cluster instance of its own (SOAK_INSTANCE), so
# it needs no lock against the scenarios' default instance. `soak` is the long run by hand;
# `soak-ci` runs FAULTS=25 (every kind at least once) from one of the fixed seeds, rotated by
# the day of the year. `tests/soak/soak.sh --plan SEED FAULTS` prints a sequence only.
SEED   ?= 1
FAULTS ?= 12
ROUNDS ?= 1
SOAK_CI_SEEDS  := 1101 2202 3303 4404 5505 6606 7707
SOAK_CI_FAULTS ?= 25
SOAK_INSTANCE  ?= PGHA_CLUSTER_ROOT=/var/tmp/pgha-soak PGHA_NET=10.201.0 PGHA_NS_PREFIX=pghs
soak: deps build deb
	$(SOAK_INSTANCE) tests/soak/soak.sh $(SEED) $(FAULTS) $(ROUNDS)

soak-ci: deps build deb
	@seeds="$(SOAK_CI_SEEDS)"; set -- $$seeds; i=$$(( $$(date +%j | sed 's/^0*//') % $$# + 1 )); \
	eval seed=\$${$$i}; echo "soak-ci: seed $$seed of: $$seeds"; \
	$(SOAK_INSTANCE) tests/soak/soak.sh $$seed $(SOAK_CI_FAULTS) 1

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

# PG=17 runs it on another major (tests/pgbin/fetch.sh's programs); default: the host's 15.
# Four paths: pgha start, pgha rewind --engine native, bare pg_rewind, bare pg_basebackup.
# BENCH_SCALE=700 (environment) is the 10 GB point; the script's header lists the knobs.
PG ?=
bench-rewind: deps build
	BENCH_PG=$(PG) tests/bench/rewind.sh

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
