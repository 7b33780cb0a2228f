#!/usr/bin/env python3
"""Tiny syslog sink for one harness node.

Runs inside the node (its own mount namespace, private /dev), binds the node's /dev/log
(a unix datagram socket, where glibc's syslog(3), logger(1) and Rust syslog crates send),
and appends every message to LOGFILE with a receive timestamp and the decoded
facility.severity. Messages from Pacemaker and Corosync daemons are also copied to
LOGFILE only; everything else (resource agents: pgha, PAF, IPaddr2 ...) additionally goes
to AGENTFILE, so the agent's lines are easy to find.

usage: syslog-sink.py SOCKET LOGFILE AGENTFILE
"""
import os
import re
import signal
import socket
import sys
import time

FACILITIES = ["kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp",
              "cron", "authpriv", "ftp", "12", "13", "14", "15", "local0", "local1",
              "local2", "local3", "local4", "local5", "local6", "local7"]
SEVERITIES = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]
PRI = re.compile(rb"^<(\d{1,3})>")
STAMP = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ")  # RFC 3164 time, if sent
DAEMONS = ("pacemaker", "corosync", "runuser")  # runuser: the harness's own psql calls


def main() -> None:
    path, logfile, agentfile = sys.argv[1:4]
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.chmod(path, 0o666)  # agents drop privileges for some children; anyone may log
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(logfile, "a", buffering=1) as log, open(agentfile, "a", buffering=1) as agents:
        print("syslog sink ready", flush=True)
        while True:
            data = sock.recv(65536)
            m = PRI.match(data)
            pri = int(m.group(1)) if m else 13
            body = data[m.end():] if m else data
            text = body.decode("utf-8", "replace").rstrip("\n\x00")
            fac = FACILITIES[pri >> 3] if (pri >> 3) < len(FACILITIES) else str(pri >> 3)
            now = time.time()
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now)) + ".%03d" % (now % 1 * 1000)
            line = f"{stamp} {fac}.{SEVERITIES[pri & 7]} {text}\n"
            log.write(line)
            tag = re.split(r"[\[: ]", STAMP.sub("", text, count=1), maxsplit=1)[0]
            if not tag.startswith(DAEMONS):
                agents.write(line)


if __name__ == "__main__":
    main()
