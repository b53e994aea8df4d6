#!/usr/bin/env python3
"""A deliberately broken Maelstrom lin-kv node, kept to prove that the harness
catches it: every node answers reads from its own copy, and acknowledges a
write or cas as soon as it has applied it locally, then tells the other nodes
(fire and forget) only after --lag seconds (default 0.5). Any read on another
node within that lag after an acknowledged write is stale, which is not
linearizable: under steady client traffic on a few keys that happens many
times a second, faults or not.

To look like a Raft cluster to the harness (which finds a leader from the
wire), the nodes named by --leaders (default: n1) send `append_entries` of
term 1 every 100 ms. With two leaders, or with --double-vote (the last node
grants its term-1 vote to the first two), the wire shows election-safety
violations too."""
import argparse
import json
import sys
import threading

ap = argparse.ArgumentParser()
ap.add_argument("--lag", type=float, default=0.5)
ap.add_argument("--leaders", default="n1")
ap.add_argument("--double-vote", action="store_true")
opts = ap.parse_args()

me = None
peers = []
data = {}
next_id = 0
out = threading.Lock()


def send(dest, body):
    global next_id
    with out:
        next_id += 1
        body["msg_id"] = next_id
        sys.stdout.write(json.dumps({"src": me, "dest": dest, "body": body}) + "\n")
        sys.stdout.flush()


def reply(msg, body):
    body["in_reply_to"] = msg["body"].get("msg_id")
    send(msg["src"], body)


def key_of(body):
    return json.dumps(body.get("key"), sort_keys=True)


def replicate(key, value):
    def later():
        for p in peers:
            send(p, {"type": "replicate", "key": key, "value": value})
    t = threading.Timer(opts.lag, later)
    t.daemon = True
    t.start()


def heartbeats():
    stop = threading.Event()
    while not stop.wait(0.1):
        for p in peers:
            send(p, {"type": "append_entries", "term": 1, "leader_id": me, "entries": []})


def on_init(body, all_nodes):
    if me in opts.leaders.split(","):
        threading.Thread(target=heartbeats, daemon=True).start()
    if opts.double_vote and me == all_nodes[-1]:
        for candidate in all_nodes[:2]:
            send(candidate, {"type": "request_vote_res", "term": 1, "vote_granted": True})


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    msg = json.loads(line)
    body = msg["body"]
    kind = body.get("type")
    if kind == "init":
        me = body["node_id"]
        peers = [n for n in body["node_ids"] if n != me]
        reply(msg, {"type": "init_ok"})
        on_init(body, body["node_ids"])
    elif kind == "read":
        k = key_of(body)
        if k in data:
            reply(msg, {"type": "read_ok", "value": data[k]})
        else:
            reply(msg, {"type": "error", "code": 20, "text": "key does not exist"})
    elif kind == "write":
        k = key_of(body)
        data[k] = body["value"]
        reply(msg, {"type": "write_ok"})
        replicate(k, body["value"])
    elif kind == "cas":
        k = key_of(body)
        current = data.get(k)
        if k not in data and body.get("from") is not None:
            reply(msg, {"type": "error", "code": 20, "text": "key does not exist"})
        elif current != body.get("from"):
            reply(msg, {"type": "error", "code": 22, "text": "precondition failed"})
        else:
            data[k] = body["to"]
            reply(msg, {"type": "cas_ok"})
            replicate(k, body["to"])
    elif kind == "replicate":
        data[body["key"]] = body["value"]
    elif kind in ("append_entries", "request_vote_res"):
        pass
    else:
        print(f"broken_kv: ignoring {line}", file=sys.stderr, flush=True)
