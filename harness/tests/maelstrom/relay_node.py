#!/usr/bin/env python3
"""The cheapest possible Maelstrom node, for measuring the router: it answers
init, then copies stdin to stdout in whole chunks, readdressing every line to
the node named in argv[1]. Two of them bounce lines back and forth as fast as
the router and the pipes allow."""
import json
import os
import sys

buf = b""
while b"\n" not in buf:
    data = os.read(0, 65536)
    if not data:
        sys.exit(0)
    buf += data
first, pending = buf.split(b"\n", 1)
init = json.loads(first)
me = init["body"]["node_id"]
reply = {"src": me, "dest": init["src"],
         "body": {"type": "init_ok", "in_reply_to": init["body"]["msg_id"]}}
os.write(1, (json.dumps(reply) + "\n").encode())
mine = ('"dest":"%s"' % me).encode()
other = ('"dest":"%s"' % sys.argv[1]).encode()
while True:
    data = os.read(0, 1 << 16)
    if not data:
        break
    pending += data
    end = pending.rfind(b"\n")
    if end < 0:
        continue
    out, pending = pending[: end + 1], pending[end + 1:]
    os.write(1, out.replace(mine, other))
