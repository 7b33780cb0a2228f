#!/usr/bin/python3
"""soak.py - the soak's plan, its clients and its checker (tests/soak/soak.sh runs them).

Shares no code with the agent: it knows PostgreSQL through psycopg2 and nothing else.

  soak.py plan SEED FAULTS            the fault sequence drawn from SEED, one line per fault
  soak.py writer HOST LOG STOP        numbered rows, one transaction each, through HOST (the
                                      VIP); LOG gets "N acked|failed|indeterminate TIME"
  soak.py wal HOST STOP               WAL volume: bulk inserts and long transactions
  soak.py sample NODE LOG STOP        NODE's own instance (127.0.0.1, run in its network
                                      namespace: seen even when its cable is pulled), several
                                      times a second: "TIME W|R|X" (accepts writes, read-only,
                                      unreachable)
  soak.py rows HOST                   the ids of soak_rows on HOST (one instance), to stdout
  soak.py check DIR NODE...           the verdict from DIR's logs (see check())
  soak.py selftest                    the plan's and the checker's own tests
Every client stops once the file STOP exists.
"""
import os
import random
import statistics
import sys
import time

KINDS = {
    # kind: time limit (s) for the cluster to be healthy again, from the fault's start
    "power-primary": 150, "power-standby": 120, "power-all": 240, "kill9-postmaster": 120,
    "sigstop-postmaster": 240, "netcut-primary": 180, "netcut-standby": 150,
    "switchover": 120, "node-standby": 150, "disk-full-standby": 240,
}


def plan(seed, faults):
    """Every kind once (shuffled) when FAULTS allows it, then kinds drawn at random."""
    rnd = random.Random(seed)
    kinds = sorted(KINDS)
    rnd.shuffle(kinds)
    seq = kinds[:faults] + [rnd.choice(sorted(KINDS)) for _ in range(faults - len(kinds))]
    lines = []
    for i, kind in enumerate(seq, 1):
        f = {"pause": rnd.randint(3, 12), "limit": KINDS[kind]}
        if kind in ("power-primary", "power-standby"):
            f["off"] = rnd.randint(2, 8)
        if kind == "power-all":
            f["off"] = rnd.randint(2, 8)
            order = ["node1", "node2", "node3"]
            rnd.shuffle(order)
            f["order"] = ",".join(order)
            f["gap"] = rnd.randint(0, 4)
        if kind in ("kill9-postmaster", "sigstop-postmaster", "node-standby"):
            f["role"] = rnd.choice(["primary", "standby"])
        if kind == "sigstop-postmaster":
            f["hold"] = rnd.randint(15, 30)       # the monitors' timeout is 10 s
        if kind.startswith("netcut"):
            f["hold"] = rnd.randint(8, 20)
        if kind in ("node-standby", "disk-full-standby"):
            f["hold"] = rnd.randint(10, 30)
        if kind.endswith("standby") or kind == "switchover" or f.get("role") == "standby":
            f["which"] = rnd.randint(0, 1)
        args = " ".join(f"{k}={v}" for k, v in f.items())
        lines.append(f"{i} {kind} {args}")
    return lines


def stopped(stop):
    return os.path.exists(stop)


def connect(host, timeout_ms, app):
    import psycopg2
    conn = psycopg2.connect(host=host, port=5432, user="postgres", dbname="postgres",
                            connect_timeout=2, keepalives=1, keepalives_idle=2,
                            keepalives_interval=1, keepalives_count=2, application_name=app,
                            options=f"-c statement_timeout={timeout_ms}")
    conn.autocommit = True
    return conn


# errors that leave no doubt: the server refused the statement before any commit
REFUSED = {"25006", "57P03", "53100", "53200", "53300", "40001", "42P01"}


def committed_locally(conn):
    return any("committed locally" in n or "synchronous replication" in n for n in conn.notices)


def writer(host, log, stop):
    import psycopg2
    n, conn = 0, None
    with open(log, "a", buffering=1) as out:
        while not stopped(stop):
            n += 1
            if conn is None:
                try:
                    conn = connect(host, 8000, "soak-writer")
                except psycopg2.Error:
                    out.write(f"{n} failed {time.time():.3f}\n")
                    time.sleep(0.2)
                    continue
            del conn.notices[:]
            try:
                with conn.cursor() as cur:
                    cur.execute("insert into soak_rows(id) values (%s)", (n,))
                status = "indeterminate" if committed_locally(conn) else "acked"
            except psycopg2.Error as e:
                status = "failed" if e.pgcode in REFUSED and not committed_locally(conn) \
                    else "indeterminate"
                conn.close()
                conn = None
            out.write(f"{n} {status} {time.time():.3f}\n")
            time.sleep(0.005)


def wal(host, stop):
    import psycopg2
    rnd, conn, done = random.Random(), None, 0
    while not stopped(stop):
        try:
            if conn is None:
                conn = connect(host, 30000, "soak-wal")
            with conn.cursor() as cur:
                if rnd.random() < 0.7:
                    cur.execute("insert into soak_bulk select g, repeat('x', 200) "
                                "from generate_series(1, 5000) g")
                else:                       # a long transaction
                    cur.execute("begin")
                    cur.execute("insert into soak_bulk select g, repeat('y', 200) "
                                "from generate_series(1, 3000) g")
                    cur.execute("select pg_sleep(%s)", (rnd.uniform(2, 6),))
                    cur.execute("commit")
                done += 1
                if done % 20 == 0:
                    cur.execute("truncate soak_bulk")
            time.sleep(0.5)
        except psycopg2.Error:
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(1)


def sample(node, log, stop):
    import psycopg2
    conn = None
    with open(log, "a", buffering=1) as out:
        while not stopped(stop):
            t = time.time()
            try:
                if conn is None:
                    conn = connect("127.0.0.1", 1000, "soak-sampler")
                with conn.cursor() as cur:
                    cur.execute("select pg_is_in_recovery(), current_setting('transaction_read_only')")
                    rec, ro = cur.fetchone()
                state = "W" if (not rec and ro == "off") else "R"
            except psycopg2.Error:
                state = "X"
                if conn is not None:
                    conn.close()
                conn = None
            out.write(f"{t:.3f} {state}\n")
            time.sleep(max(0.0, 0.2 - (time.time() - t)))


def rows(host):
    conn = connect(host, 60000, "soak-check")
    with conn.cursor() as cur:
        cur.execute("select id from soak_rows")
        for (i,) in cur:
            print(i)


def writable_spans(path):
    """[start, end) where the node accepted writes: from a W sample to the next sample."""
    samples = []
    with open(path) as f:
        for line in f:
            t, s = line.split()
            samples.append((float(t), s))
    spans = []
    for (t, s), nxt in zip(samples, samples[1:] + [(None, None)]):
        if s == "W":
            spans.append((t, nxt[0] if nxt[0] is not None else t + 0.2))
    return spans


def two_primaries(spans_of):
    """W samples of one node taken while another node's writable span was open."""
    bad = []
    nodes = sorted(spans_of)
    for a in nodes:
        for start, _ in spans_of[a]:
            for b in nodes:
                if b != a and any(s <= start < e for s, e in spans_of[b]):
                    bad.append((start, a, b))
    return bad


def check(d, nodes):
    """Prints the round's table; exit 1 if an acknowledged row is missing anywhere or two
    nodes accepted writes at once."""
    acks = {"acked": set(), "failed": set(), "indeterminate": set()}
    with open(os.path.join(d, "writer.log")) as f:
        for line in f:
            n, status, _ = line.split()
            acks[status].add(int(n))
    ok = True
    print(f"rows: {len(acks['acked'])} acknowledged, {len(acks['failed'])} failed, "
          f"{len(acks['indeterminate'])} indeterminate")
    for node in nodes:
        path = os.path.join(d, f"rows-{node}.txt")
        if not os.path.exists(path):
            ok = False
            print(f"  {node}: did not answer")
            continue
        have = {int(x) for x in open(path).read().split()}
        lost = sorted(acks["acked"] - have)
        ok &= not lost
        print(f"  {node}: {len(have)} rows, acknowledged rows missing: {len(lost)}"
              + (f" (first: {lost[:10]})" if lost else ""))
    spans = {n: writable_spans(os.path.join(d, f"samples-{n}.log")) for n in nodes}
    total = sum(sum(1 for _ in open(os.path.join(d, f"samples-{n}.log"))) for n in nodes)
    bad = two_primaries(spans)
    ok &= not bad
    print(f"two-primary samples: {len(bad)} of {total}"
          + "".join(f"\n  {t:.3f}: {a} and {b} both accept writes" for t, a, b in bad[:10]))
    times = {}
    with open(os.path.join(d, "recovery.log")) as f:
        for line in f:
            kind, secs, verdict = line.split()
            times.setdefault(kind, []).append((float(secs), verdict))
    print(f"{'fault':<20} {'n':>3} {'median s':>9} {'max s':>7} {'over limit':>10}")
    for kind in sorted(times):
        v = [s for s, _ in times[kind]]
        over = sum(1 for _, r in times[kind] if r != "ok")
        ok &= over == 0
        print(f"{kind:<20} {len(v):>3} {statistics.median(v):>9.1f} {max(v):>7.1f} {over:>10}")
    print("VERDICT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def selftest():
    """The checker's own tests (soak.sh runs them before a round): a checker that cannot
    fail proves nothing."""
    p = plan(5, 25)
    assert p == plan(5, 25), "a seed replays its plan"
    assert p != plan(6, 25), "another seed, another plan"
    assert {line.split()[1] for line in p} == set(KINDS), "25 faults cover every kind"
    assert len(plan(5, 3)) == 3
    # node a writable from 10.0 to 10.4 (next sample R); b becomes writable at 10.2: overlap
    spans = {"a": [(10.0, 10.4)], "b": [(10.2, 10.6)], "c": []}
    assert two_primaries(spans) == [(10.2, "b", "a")]
    # a switchover: a read-only from 10.4 on, b writable from 10.5: no overlap
    assert two_primaries({"a": [(10.0, 10.4)], "b": [(10.5, 10.7)]}) == []
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".log") as f:
        f.write("1.0 W\n1.2 W\n1.4 R\n1.6 X\n1.8 W\n")
        f.flush()
        assert writable_spans(f.name) == [(1.0, 1.2), (1.2, 1.4), (1.8, 2.0)]
    print("soak.py selftest: ok")


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "plan":
        print("\n".join(plan(int(args[0]), int(args[1]))))
    elif cmd == "writer":
        writer(*args)
    elif cmd == "wal":
        wal(*args)
    elif cmd == "sample":
        sample(*args)
    elif cmd == "rows":
        rows(args[0])
    elif cmd == "check":
        return check(args[0], args[1:])
    elif cmd == "selftest":
        selftest()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
