# pgha: the two commands of the README are `make demo` and `make test` (as root, fresh Debian 12).
# `make install DESTDIR=... PREFIX=...` installs the agent where Pacemaker looks for it.

PREFIX      ?= /usr
DESTDIR     ?=
OCF_ROOT    ?= /usr/lib/ocf
CARGO       ?= cargo
BIN         := target/release/pgha

# Debian packages every test and the demo need; installed once by `make deps`. libssl-dev
# and pkg-config build the TLS client (openssl crate); openssl and python3 serve the TLS and
# socket-spoofing tests.
APT_PACKAGES := postgresql-15 postgresql-client-15 libxml2-utils pacemaker pacemaker-cli-utils \
                corosync pcs crmsh resource-agents fence-agents iproute2 psmisc strace procps \
                util-linux shellcheck resource-agents-paf libssl-dev pkg-config openssl python3

.PHONY: all build deps install uninstall demo test test-unit test-cluster bench bench-rewind bench-failover clean

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

# Every test: unit + integration (real PostgreSQL 15), the fuzz targets for a minute each,
# then the cluster scenarios.
test: deps build test-unit fuzz-ci test-cluster

test-unit:
	$(CARGO) test --release --locked

test-cluster:
	tests/cluster/run.sh

# Fuzzing (fuzz/, README "Fuzzing"): cargo-fuzz on the nightly toolchain, installed here
# when missing. `fuzz-ci` runs each target FUZZ_CI_SECONDS (two at a time: about 7 minutes
# plus a 3-minute build on 2 cores); `fuzz` is the long run by hand, FUZZ_SECONDS each.
# FUZZ_TARGETS names some targets (`cargo +nightly fuzz list` shows them all).
FUZZ_CI_SECONDS ?= 60
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

clean:
	$(CARGO) clean
