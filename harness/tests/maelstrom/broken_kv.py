#!/usr/bin/env python3
"""A deliberately broken Maelstrom lin-kv node, kept to prove that the harness
catches it: every node answers reads from its own copy, and acknowledges a
write or cas as soon as it has applied it locally, then tells the other nodes
(fire and forget). Any partition makes it serve stale reads after
acknowledged writes, which is not linearizable."""
import json
import sys

me = None
peers = []
data = {}
next_id = 0


def send(dest, body):
    global next_id
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
    for p in peers:
        send(p, {"type": "replicate", "key": key, "value": value})


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
    else:
        print(f"broken_kv: ignoring {line}", file=sys.stderr, flush=True)
