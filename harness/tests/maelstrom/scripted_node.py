#!/usr/bin/env python3
"""A Maelstrom node that does what its client tells it, for testing the
router and the wire observer: it can emit any message (with any src, even
another node's) and any raw line, and it reports every `ping` it receives
to the client the ping names."""
import json
import sys

me = None


def write(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def reply(msg, body):
    body["in_reply_to"] = msg["body"].get("msg_id")
    write({"src": me, "dest": msg["src"], "body": body})


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    msg = json.loads(line)
    body = msg["body"]
    kind = body.get("type")
    if kind == "init":
        me = body["node_id"]
        reply(msg, {"type": "init_ok"})
    elif kind == "emit":
        # {"dest": D, "body": B, "src": optional S}: one message as told.
        write({"src": body.get("src", me), "dest": body["dest"], "body": body["body"]})
        reply(msg, {"type": "emit_ok"})
    elif kind == "emit_raw":
        sys.stdout.write(body["line"] + "\n")
        sys.stdout.flush()
        reply(msg, {"type": "emit_ok"})
    elif kind == "pings":
        # {"dest": D, "from": first seq, "count": N, "report_to": C}
        for seq in range(body["from"], body["from"] + body["count"]):
            write({"src": body.get("src", me), "dest": body["dest"],
                   "body": {"type": "ping", "seq": seq, "report_to": body["report_to"]}})
        reply(msg, {"type": "emit_ok"})
    elif kind == "ping":
        write({"src": me, "dest": body["report_to"],
               "body": {"type": "got", "from": msg["src"], "seq": body["seq"]}})
    else:
        print(f"scripted_node: ignoring {line}", file=sys.stderr, flush=True)
