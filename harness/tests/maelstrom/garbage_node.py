#!/usr/bin/env python3
"""A Maelstrom node that answers nonsense, to prove that the harness says so
clearly and loses nothing: it answers init properly and n1 sends
append_entries (so the harness sees a leader), but every client request gets,
in turn, a line that is not JSON, a reply of an unknown type, a read_ok
without a value, an error without a code, and a message with no dest. With
--bad-init it answers init with an error instead."""
import json
import sys
import threading

bad_init = "--bad-init" in sys.argv
me = None
peers = []
count = 0
out = threading.Lock()


def write(line):
    with out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def reply(msg, body):
    body["in_reply_to"] = msg["body"].get("msg_id")
    write(json.dumps({"src": me, "dest": msg["src"], "body": body}))


def heartbeats():
    stop = threading.Event()
    while not stop.wait(0.1):
        for p in peers:
            write(json.dumps({"src": me, "dest": p,
                              "body": {"type": "append_entries", "term": 1, "entries": []}}))


for line in sys.stdin:
    msg = json.loads(line)
    body = msg["body"]
    kind = body.get("type")
    if kind == "init":
        me = body["node_id"]
        peers = [n for n in body["node_ids"] if n != me]
        if bad_init:
            reply(msg, {"type": "error", "code": 10, "text": "I do not do init"})
            continue
        reply(msg, {"type": "init_ok"})
        if me == "n1":
            threading.Thread(target=heartbeats, daemon=True).start()
    elif kind in ("read", "write", "cas"):
        count += 1
        choice = count % 5
        if choice == 0:
            write("<html>this is not JSON</html>")
        elif choice == 1:
            reply(msg, {"type": "frobnicate_ok"})
        elif choice == 2:
            reply(msg, {"type": "read_ok"})
        elif choice == 3:
            reply(msg, {"type": "error", "text": "no code"})
        else:
            write(json.dumps({"src": me, "body": {"type": "lost"}}))
