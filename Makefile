# pgha: the two commands of the README are `make demo` and `make test` (as root, fresh Debian 12).
# `make install DESTDIR=... PREFIX=...` installs the agent where Pacemaker looks for it.

PREFIX      ?= /usr
DESTDIR     ?=
OCF_ROOT    ?= /usr/lib/ocf
CARGO       ?= cargo
BIN         := target/release/pgha

# Debian packages every test and the demo need; installed once by `make deps`. libssl-dev
# and pkg-config build the TLS client (openssl crate); openssl and python3 serve the TLS and
# socket-spoofing tests. debootstrap builds the Debian 13 root of the cluster tests' second run
# (tests/cluster/debian13-root.sh, cached in /var/cache/pgha/roots/trixie).
APT_PACKAGES := postgresql-15 postgresql-client-15 libxml2-utils pacemaker pacemaker-cli-utils \
                corosync pcs crmsh resource-agents fence-agents iproute2 psmisc strace procps \
                util-linux shellcheck resource-agents-paf libssl-dev pkg-config openssl python3 \
                debootstrap

.PHONY: all build deps install uninstall demo test test-unit test-cluster test-cluster-debian12 \
        test-cluster-debian13 bench bench-rewind bench-failover clean

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

# Every test: unit + integration (real PostgreSQL 15), then the cluster scenarios on Debian 12
# and on Debian 13 nodes.
test: deps build test-unit test-cluster

test-unit:
	$(CARGO) test --release --locked

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

bench: deps build
	tests/bench/monitor.sh

bench-rewind: deps build
	tests/bench/rewind.sh

bench-failover: deps build
	tests/bench/failover.sh

clean:
	$(CARGO) clean
