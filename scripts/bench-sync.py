#!/usr/bin/env python3
"""Sync throughput: writes N Claude transcripts (about 30 kB each) for one
project, then times `agentdeck sync` on them — a full read, then a re-sync
with nothing changed. Prints MB/s of JSONL and the no-change time.

    python3 scripts/bench-sync.py [files=1000]   (after cargo leptos build --release)
"""
import json, os, subprocess, sys, tempfile, time

files = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.path.join(root, "target/release/agentdeck")
work = tempfile.mkdtemp(prefix="agentdeck-sync-bench-")
project = os.path.realpath(os.path.join(work, "project"))
os.makedirs(project)
folder = os.path.join(work, "claude", "".join(c if c.isalnum() else "-" for c in project))
os.makedirs(folder)
total = 0
for i in range(files):
    sid = f"{i:08d}-0000-4000-8000-000000000000"
    lines = []
    for j in range(60):
        role = "user" if j % 2 == 0 else "assistant"
        content = f"message {j} " + "x" * 150 if role == "user" else [{"type": "text", "text": "lorem ipsum dolor sit amet " * 12}]
        lines.append(json.dumps({"type": role, "sessionId": sid, "cwd": project, "timestamp": "2025-05-01T10:00:00.000Z",
                                 "uuid": f"{i}-{j}", "isSidechain": False, "message": {"role": role, "content": content}}))
    data = "\n".join(lines) + "\n"
    total += len(data)
    with open(os.path.join(folder, sid + ".jsonl"), "w") as f:
        f.write(data)

db = os.path.join(work, "db.sqlite")
common = ["--database-url", db, "--claude-projects", os.path.join(work, "claude"), "--codex-sessions", os.path.join(work, "none")]
# Register the project through the server's own code path.
server = subprocess.Popen([binary, "serve", "--port", "0", *common[:2]], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          env={**os.environ, "AGENTDECK_CLAUDE_PROJECTS": os.path.join(work, "empty")})
url = server.stdout.readline().decode().split()[-1]
subprocess.run(["curl", "-s", "-o", "/dev/null", "-XPOST", url + "/rpc/add_project", "-H", "accept: application/json",
                "--data-urlencode", f"path={project}"], check=True)
server.terminate(); server.wait()

def timed():
    start = time.perf_counter()
    out = subprocess.run([binary, "sync", *common, "--project", project], capture_output=True, text=True, check=True).stdout.strip()
    return time.perf_counter() - start, out

full, out_full = timed()
again, out_again = timed()
print(out_full)
print(out_again)
print(json.dumps({"files": files, "jsonl_mb": round(total / 1e6, 1), "full_sync_s": round(full, 3),
                  "mb_per_s": round(total / 1e6 / full, 1), "no_change_resync_s": round(again, 3)}))
