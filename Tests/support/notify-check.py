#!/usr/bin/env python3
"""A daemon under systemd's readiness protocol, with a socket of this check's as NOTIFY_SOCKET.

  notify-check.py --bin BIN --config FILE --port-pattern REGEX --probe URL_WITH_{port} [--ca CA] [--hup]

Starts `BIN run --config FILE`; waits for READY=1, then probes the URL at once (the listeners must
be bound by then: a refused connection fails); with --hup sends SIGHUP and expects RELOADING=1 with
MONOTONIC_USEC, then READY=1; sends SIGTERM and expects STOPPING=1 and exit code 0. Prints one OK
line or one FAIL line (exit 1).
"""
import argparse, os, re, signal, socket, ssl, subprocess, sys, tempfile, time, urllib.request


def fail(reason):
    print("FAIL: " + reason)
    sys.exit(1)


def receive(sock, wanted, seconds):
    deadline = time.time() + seconds
    seen = []
    while time.time() < deadline:
        sock.settimeout(max(0.05, deadline - time.time()))
        try:
            message = sock.recv(4096).decode()
        except socket.timeout:
            break
        seen.append(message)
        if wanted in message.split("\n"):
            return message, seen
    fail("no %s within %s s (received %r)" % (wanted, seconds, seen))


def main():  # noqa: C901 (one straight sequence of steps)
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--port-pattern", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--ca")
    ap.add_argument("--hup", action="store_true")
    args = ap.parse_args()
    directory = tempfile.mkdtemp(prefix="te-notify-")
    path = os.path.join(directory, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    log_path = os.path.join(directory, "daemon.log")
    with open(log_path, "w") as log:
        env = dict(os.environ, NOTIFY_SOCKET=path)
        process = subprocess.Popen([os.path.abspath(args.bin), "run", "--config", args.config], stdout=log, stderr=log, env=env,
                                   cwd=os.path.dirname(os.path.abspath(args.config)))
    try:
        ready, _ = receive(sock, "READY=1", 20)
        match = re.search(args.port_pattern, open(log_path).read())
        if not match:
            fail("READY=1 came before the daemon logged its address: " + open(log_path).read())
        url = args.probe.replace("{port}", match.group(1))
        context = ssl.create_default_context(cafile=args.ca) if args.ca else None
        try:
            status = urllib.request.urlopen(url, timeout=5, context=context).status
        except Exception as error:  # refused: READY=1 was sent before the listener was bound
            fail("READY=1, then %s answered %s" % (url, error))
        if status != 200:
            fail("READY=1, then %s answered %s" % (url, status))
        steps = ["READY=1 (%s), %s answered 200" % (ready.replace("\n", " "), url)]
        if args.hup:
            process.send_signal(signal.SIGHUP)
            reloading, _ = receive(sock, "RELOADING=1", 10)
            if not re.search(r"MONOTONIC_USEC=\d+", reloading):
                fail("RELOADING=1 without MONOTONIC_USEC: %r" % reloading)
            receive(sock, "READY=1", 10)
            steps.append("SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1")
        process.send_signal(signal.SIGTERM)
        receive(sock, "STOPPING=1", 10)
        code = process.wait(timeout=30)
        if code != 0:
            fail("exit code %s after SIGTERM: %s" % (code, open(log_path).read()))
        steps.append("SIGTERM: STOPPING=1, exit 0")
        print("OK: " + "; ".join(steps))
    finally:
        if process.poll() is None:
            process.kill()
        sock.close()


if __name__ == "__main__":
    main()
