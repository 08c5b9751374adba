#!/usr/bin/env python3
"""A loopback TCP proxy that the fault scenarios register a worker through, so that the test can
partition the worker from the rest of the cluster (see pg_test/faults.sh for why a proxy).

    tcp_proxy.py LISTEN_PORT TARGET_PORT CONTROL_PORT

Forwards 127.0.0.1:LISTEN_PORT to 127.0.0.1:TARGET_PORT, two threads per connection. A line on
127.0.0.1:CONTROL_PORT changes the mode; the reply ("ok MODE") is sent once the mode is in force:

    cut    every forwarded connection is closed, and new ones are refused (the listening socket
           is closed: connect() fails with ECONNREFUSED)
    stall  nothing is forwarded any more, in either direction, on old and new connections; new
           connections are accepted (a black hole: peers wait for their own timeouts)
    heal   back to forwarding; a cut proxy listens again
    status the current mode and the number of open connections

Stopped by SIGTERM (the scenario kills it by PID). Loopback only.
"""
import signal
import socket
import sys
import threading

HOST = "127.0.0.1"

listen_port, target_port, control_port = (int(a) for a in sys.argv[1:4])
lock = threading.Lock()
mode = "pass"
flowing = threading.Event()
flowing.set()
conns = set()  # every socket of every forwarded connection
listener = None


def log(msg):
    print(msg, flush=True)


def close_quietly(s):
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


def pump(src, dst):
    """Copies src to dst until either side closes, the proxy is cut, or a send fails."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            flowing.wait()  # stall: hold the data (and stop reading) until healed or cut
            if mode == "cut":
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with lock:
            conns.discard(src)
            conns.discard(dst)
        close_quietly(src)
        close_quietly(dst)


def serve(lsock):
    while True:
        try:
            client, _ = lsock.accept()
        except OSError:
            return  # the listening socket was closed (cut)
        try:
            upstream = socket.create_connection((HOST, target_port))
        except OSError:
            close_quietly(client)
            continue
        with lock:
            if mode == "cut":
                close_quietly(client)
                close_quietly(upstream)
                continue
            conns.add(client)
            conns.add(upstream)
        threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()


def listen():
    global listener
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((HOST, listen_port))
    s.listen(128)
    listener = s
    threading.Thread(target=serve, args=(s,), daemon=True).start()


def set_mode(new):
    global mode, listener
    with lock:
        if new == "cut":
            mode = "cut"
            if listener is not None:
                close_quietly(listener)
                listener = None
            for s in list(conns):
                close_quietly(s)
            conns.clear()
            flowing.set()  # stalled pumps wake up, see the cut and end
        elif new == "stall":
            if mode == "cut":
                mode = "stall"
                flowing.clear()
                listen()
            else:
                mode = "stall"
                flowing.clear()
        elif new == "heal":
            if listener is None:
                listen()
            mode = "pass"
            flowing.set()
        return "ok %s %d" % (mode, len(conns) // 2)


def control():
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.bind((HOST, control_port))
    c.listen(8)
    log("proxy %d -> %d, control %d: ready" % (listen_port, target_port, control_port))
    while True:
        s, _ = c.accept()
        with s:
            line = s.makefile("r").readline().strip()
            if line in ("cut", "stall", "heal", "status"):
                reply = set_mode(line) if line != "status" else "ok %s %d" % (mode, len(conns) // 2)
            else:
                reply = "error: unknown command %r (cut, stall, heal, status)" % line
            log("%s -> %s" % (line, reply))
            s.sendall((reply + "\n").encode())


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
listen()
control()
