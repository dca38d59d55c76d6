#!/usr/bin/env python3
"""A bounded load test of a running `gos agent` (bench/agent.sh starts it): CLIENTS threads each
send REQUESTS requests, a batch of one-operator ONNX files timed in `operators` mode, over TLS to
the pinned certificate with the token, retrying when told the agent is busy. Checks that every
request was answered with its timings (none lost), that the turns never overlapped and were begun
in the order the requests arrived (none served out of turn), and prints requests per second and
the round trip's overhead per batch (the client's wall time less the agent's wait and turn).

    agent_load.py URL FINGERPRINT TOKEN CLIENTS REQUESTS OP.onnx...

Python's standard library only."""
import hashlib
import http.client
import json
import ssl
import statistics
import sys
import threading
import time
import urllib.parse
import uuid


def connect(url, fingerprint):
    parts = urllib.parse.urlparse(url)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # trusted by the pinned fingerprint below, as gos does
    connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=300)
    connection.connect()
    seen = hashlib.sha256(connection.sock.getpeercert(binary_form=True)).hexdigest().upper()
    if ":".join(seen[i:i + 2] for i in range(0, len(seen), 2)) != fingerprint.upper():
        raise SystemExit(f"the agent presented another certificate: {seen}")
    return connection


def multipart(files):
    boundary = uuid.uuid4().hex
    body = b""
    for i, data in enumerate(files):
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model{i}\"; filename=\"model{i}.onnx\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def main():
    url, fingerprint, token = sys.argv[1:4]
    clients, requests = int(sys.argv[4]), int(sys.argv[5])
    ops = [open(path, "rb").read() for path in sys.argv[6:]]
    body, content_type = multipart(ops)
    query = "/v1/bench?backend=mobile&mode=operators&budget=0.005&warmup=1&min_runs=3&max_runs=50"
    answers, failures, busy = [], [], [0]
    lock = threading.Lock()

    def client(index):
        connection = connect(url, fingerprint)
        for _ in range(requests):
            while True:
                sent = time.monotonic()
                connection.request("POST", query, body, {"Authorization": f"Bearer {token}", "Content-Type": content_type})
                response = connection.getresponse()
                payload = response.read()
                wall = time.monotonic() - sent
                if response.status == 503:
                    with lock:
                        busy[0] += 1
                    time.sleep(0.05)
                    continue
                break
            with lock:
                if response.status != 200:
                    failures.append(f"client {index}: HTTP {response.status} {payload[:200]!r}")
                    continue
                answer = json.loads(payload)
                if len(answer.get("timings", [])) != len(ops):
                    failures.append(f"client {index}: {len(answer.get('timings', []))} timings for {len(ops)} operators")
                answers.append((wall, answer["turn"]))

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    asked = clients * requests
    turns = sorted((turn for _, turn in answers), key=lambda turn: turn["began_s"])
    overlaps = sum(1 for a, b in zip(turns, turns[1:]) if b["began_s"] < a["ended_s"])
    out_of_turn = sum(1 for a, b in zip(turns, turns[1:]) if b["ticket"] < a["ticket"])
    overheads = [wall - (turn["ended_s"] - turn["arrived_s"]) for wall, turn in answers]
    waits = [turn["began_s"] - turn["arrived_s"] for _, turn in answers]
    print(f"clients {clients}, requests {asked}, answered {len(answers)}, lost {asked - len(answers)}, "
          f"busy answers retried {busy[0]}")
    print(f"turns overlapping {overlaps}, begun out of arrival order {out_of_turn}")
    print(f"{len(answers) / elapsed:.1f} requests/s over {elapsed:.1f} s; a batch of {len(ops)} operators "
          f"({len(body) / 1024:.0f} KiB): round-trip overhead median {1000 * statistics.median(overheads):.1f} ms, "
          f"p90 {1000 * statistics.quantiles(overheads, n=10)[-1]:.1f} ms; wait for a turn median "
          f"{1000 * statistics.median(waits):.0f} ms")
    for failure in failures[:10]:
        print(failure)
    ok = not failures and len(answers) == asked and overlaps == 0 and out_of_turn == 0
    print("load test:", "passed" if ok else "FAILED")
    sys.exit(0 if ok else 1)


main()
