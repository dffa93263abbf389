#!/usr/bin/env python3
"""Measures init time and peak RSS of the Lambda bootstrap binaries against a local
runtime API stub on 127.0.0.1.

Init time is the time from starting the process to its first
GET /2018-06-01/runtime/invocation/next. Init CPU time is the time the process spent
on a CPU until then (the sum of /proc/<pid>/task/*/schedstat), which other load on the
machine moves less than the wall-clock time. The stub then returns one event. When the
binary has posted its response and requests the next event, VmHWM from
/proc/<pid>/status is its peak RSS. Usage:

    bench/init_time.py TARGET_DIR [RUNS]

MYSHOES_TLS_ROOTS, when set, is passed on to the functions (mozilla or platform).

TARGET_DIR holds the release binaries webhook, dispatcher, sweeper and
examples/empty_runtime. No request leaves 127.0.0.1: the AWS endpoint is a closed
loopback port, so the sweeper's one ECS call fails fast.
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

SECRET = "bench-webhook-secret"
CONFIG = json.dumps({
    "targets": [{"scope": "octo-org"}],
    "profiles": [{"name": "linux-x64", "labels": ["linux", "x64"]}],
})
KEY_PATH = os.path.join(os.path.dirname(__file__), "../../../myshoes/tests/fixtures/throwaway-test-rsa-key.pem")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ping_event():
    body = b'{"zen":"Design for failure.","hook_id":1}'
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": {"content-type": "application/json", "x-github-event": "ping",
                    "x-github-delivery": "bench", "x-hub-signature-256": signature},
        "requestContext": {"accountId": "anonymous", "apiId": "bench", "domainName": "bench.lambda-url.us-east-1.on.aws",
                           "domainPrefix": "bench", "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                                                             "sourceIp": "192.0.2.1", "userAgent": "GitHub-Hookshot/bench"},
                           "requestId": "bench", "routeKey": "$default", "stage": "$default",
                           "time": "04/Dec/2026:23:00:00 +0000", "timeEpoch": 1796425200000},
        "body": base64.b64encode(body).decode(), "isBase64Encoded": True,
    }


EVENTS = {
    "empty_runtime": {"hello": "world"},
    "webhook": ping_event(),
    "dispatcher": {"Records": []},
    "sweeper": {"version": "0", "id": "bench", "detail-type": "Scheduled Event", "source": "aws.events",
                "account": "123456789012", "time": "2026-12-04T23:00:00Z", "region": "us-east-1",
                "resources": [], "detail": {}},
}


class Stub(http.server.BaseHTTPRequestHandler):
    """Serves one event per run; records when /next is first and second requested."""
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        state = Stub.state
        now = time.perf_counter()
        if state["ready"] is None:
            state["ready"] = now
            state["cpu_ns"] = cpu_ns(state["pid"])
            body = json.dumps(state["event"]).encode()
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-request")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            state["second_next"].set()
            time.sleep(30)  # Holds the long poll until the process is killed.

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        payload = self.rfile.read(length)
        Stub.state["posted"] = (self.path.rsplit("/", 1)[-1], payload[:200])
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


def cpu_ns(pid):
    """Nanoseconds the process's threads have run on a CPU so far."""
    # NOTE: threads that already exited are not counted.
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass  # The thread exited after the listing.
    return total


def run_once(binary, name, port):
    Stub.state = {"ready": None, "event": EVENTS[name], "second_next": threading.Event(), "posted": None,
                  "pid": None, "cpu_ns": None}
    with open(KEY_PATH, "rb") as f:
        key = base64.b64encode(f.read()).decode()
    closed = f"http://127.0.0.1:{free_port()}"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": closed, "AWS_MAX_ATTEMPTS": "1",
        "NO_PROXY": "*", "RUST_LOG": "warn",
        "MYSHOES_CONFIG": CONFIG, "GITHUB_APP_SECRET": SECRET, "GITHUB_APP_ID": "12345",
        "GITHUB_PRIVATE_KEY_BASE64": key,
        "AWS_SQS_QUEUE_URL": f"{closed}/123456789012/jobs.fifo",
        "AWS_SQS_DEAD_LETTER_QUEUE_URL": f"{closed}/123456789012/jobs-dlq.fifo",
        "ECS_TASK_CLUSTER": "runners", "ECS_TASK_DEFINITION_ARN": "runner",
        "ECS_TASK_SUBNETS": "subnet-1", "ECS_TASK_SECURITY_GROUPS": "sg-1",
    }
    if "MYSHOES_TLS_ROOTS" in os.environ:
        env["MYSHOES_TLS_ROOTS"] = os.environ["MYSHOES_TLS_ROOTS"]
    start = time.perf_counter()
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    Stub.state["pid"] = process.pid
    try:
        if not Stub.state["second_next"].wait(30):
            raise RuntimeError(f"{name} did not finish its first event")
        with open(f"/proc/{process.pid}/status") as f:
            hwm_kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    finally:
        process.kill()
        process.wait()
    return (Stub.state["ready"] - start) * 1000, Stub.state["cpu_ns"] / 1e6, hwm_kib / 1024, Stub.state["posted"]


def main():
    target = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    port = free_port()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Stub)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()

    binaries = {
        "empty_runtime": os.path.join(target, "examples", "empty_runtime"),
        "webhook": os.path.join(target, "webhook"),
        "dispatcher": os.path.join(target, "dispatcher"),
        "sweeper": os.path.join(target, "sweeper"),
    }

    # Runs the binaries round-robin, so a change in the machine's speed during the run
    # affects every binary alike.
    samples = {name: ([], [], [], None) for name in binaries}
    for _ in range(runs):
        for name, binary in binaries.items():
            init_ms, cpu_ms, rss_mib, posted = run_once(binary, name, port)
            times, cpu, rss, _ = samples[name]
            times.append(init_ms)
            cpu.append(cpu_ms)
            rss.append(rss_mib)
            samples[name] = (times, cpu, rss, posted)

    results = {}
    for name, binary in binaries.items():
        times, cpu, rss, posted = samples[name]
        times.sort()
        results[name] = {
            "init_median_ms": statistics.median(times),
            "init_p90_ms": times[int(0.9 * (len(times) - 1))],
            "cpu_median_ms": statistics.median(cpu),
            "peak_rss_max_mib": max(rss),
            "size_mib": os.path.getsize(binary) / (1024 * 1024),
            "last_response": f"{posted[0]} {posted[1].decode(errors='replace')}",
        }

    base = results["empty_runtime"]["init_median_ms"]
    cpu_base = results["empty_runtime"]["cpu_median_ms"]
    print("| binary | init median (ms) | init p90 (ms) | init vs empty | init CPU median (ms) | CPU vs empty | peak RSS (MiB) | size (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['init_median_ms']:.1f} | {r['init_p90_ms']:.1f} | {r['init_median_ms'] / base:.2f}x "
              f"| {r['cpu_median_ms']:.2f} | {r['cpu_median_ms'] / cpu_base:.2f}x | {r['peak_rss_max_mib']:.1f} | {r['size_mib']:.1f} |")

    for name, r in results.items():
        print(f"{name}: {r['last_response']}", file=sys.stderr)


if __name__ == "__main__":
    main()
