#!/usr/bin/env python3
"""A Meso framework written from docs/protocol.md alone, in Python's standard library.

It talks to SQS's JSON API directly (SigV4 by hand, no boto3), so nothing of Meso's own code is in
it: if the document and the behaviour drift apart, this breaks. It subscribes, launches one task
on an offer, acknowledges its updates, reconciles it, KILLs it with the wrong agent id after it
ended, tears down twice and deletes its queue. It prints one JSON object per line of what it saw
(`{"check": ..., ...}`) and exits 0 when every check the document promises held, 1 otherwise.

Environment: MESO_QUEUE_SCHEDULER_CALLS, MESO_PREFIX, AWS_ENDPOINT_URL_SQS (or AWS_ENDPOINT_URL),
AWS_REGION, optional AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (an emulator takes any).
"""
import datetime
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.parse
import urllib.request
import uuid

REGION = os.environ.get("AWS_REGION", "us-east-1")
# §1.1: local queue URLs name hosts that do not resolve; every request goes to the endpoint.
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL_SQS") or os.environ["AWS_ENDPOINT_URL"]
KEY = os.environ.get("AWS_ACCESS_KEY_ID", "mesolocal")
SECRET = os.environ.get("AWS_SECRET_ACCESS_KEY", "mesolocal")
PREFIX = os.environ.get("MESO_PREFIX", "meso")
CALLS = os.environ["MESO_QUEUE_SCHEDULER_CALLS"]
TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST",
            "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_UNKNOWN"}
failed = []


def sqs(action, params):
    """One SQS JSON-protocol request, signed with SigV4 (service `sqs`)."""
    url = urllib.parse.urlsplit(ENDPOINT)
    body = json.dumps(params).encode()
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {"content-type": "application/x-amz-json-1.0", "host": url.netloc,
               "x-amz-date": amz_date, "x-amz-target": f"AmazonSQS.{action}"}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(["POST", url.path or "/", "",
                           "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed,
                           hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{REGION}/sqs/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + SECRET).encode()
    for part in (day, REGION, "sqs", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={KEY}/{scope}, "
                                f"SignedHeaders={signed}, Signature={signature}")
    req = urllib.request.Request(ENDPOINT, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read() or b"{}")


def check(name, ok, **seen):
    print(json.dumps({"check": name, "ok": bool(ok), **seen}), flush=True)
    if not ok:
        failed.append(name)


fw = str(uuid.uuid4())
# §1.1: the framework's own FIFO queue, named <prefix>-fw-<frameworkId>.fifo.
events = sqs("CreateQueue", {"QueueName": f"{PREFIX}-fw-{fw}.fifo",
                             "Attributes": {"FifoQueue": "true", "VisibilityTimeout": "30"}})["QueueUrl"]


def group_for(type_, fields):
    # §1.3: ACKNOWLEDGE goes in <fw>:ack:<task>; when that is longer than SQS's 128, in <fw>
    # (a hash of it is no group Meso accepts: WRONG_GROUP).
    if type_ == "ACKNOWLEDGE":
        g = f"{fw}:ack:{fields['taskId']}"
        return g if len(g) <= 128 else fw
    return fw


def call(type_, **fields):
    body = {"v": 1, "type": type_, **fields}
    sqs("SendMessage", {"QueueUrl": CALLS, "MessageBody": json.dumps(body),
                        "MessageGroupId": group_for(type_, fields),
                        "MessageDeduplicationId": str(uuid.uuid4())})


def subscribe():
    call("SUBSCRIBE", framework={"frameworkId": fw, "name": "python-from-the-doc", "queueUrl": events})
    return time.time()


def receive():
    """A batch of events, deleted once read; yields (event, sqs message) pairs."""
    msgs = sqs("ReceiveMessage", {"QueueUrl": events, "MaxNumberOfMessages": 10,
                                  "WaitTimeSeconds": 1, "AttributeNames": ["All"],
                                  "MessageSystemAttributeNames": ["All"]}
               ).get("Messages", [])
    if msgs:
        sqs("DeleteMessageBatch", {"QueueUrl": events, "Entries": [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]})
    return [(json.loads(m["Body"]), m) for m in msgs]


deadline = time.time() + 90
sent_at, subscribed, launched, agent, finished = subscribe(), False, False, None, None
seen_uuids, updates = set(), []
while finished is None and time.time() < deadline:
    if not subscribed and time.time() - sent_at > 4:  # §2.1: re-send after 4 s
        sent_at = subscribe()
    for e, m in receive():
        if e["type"] == "SUBSCRIBED":
            subscribed = True
            check("subscribed", e.get("frameworkId") == fw, frameworkId=e.get("frameworkId"))
        elif e["type"] == "OFFERS":
            for o in e["offers"]:
                r = o["resources"]
                if not launched and r.get("cpus", 0) >= 0.1 and r.get("mem", 0) >= 32:
                    agent = o["agentId"]
                    call("ACCEPT", frameworkId=fw, offerIds=[o["offerId"]], operations=[
                        {"type": "LAUNCH", "tasks": [{
                            "taskId": "hello-1", "agentId": agent, "resources": {"cpus": 0.1, "mem": 32},
                            "command": {"value": "echo hello from python"}}]}])
                    launched = True
                else:
                    call("DECLINE", frameworkId=fw, offerIds=[o["offerId"]], filters={"refuseSeconds": 60})
        elif e["type"] == "UPDATE":
            s = e["status"]
            if s.get("uuid"):
                # §3: an agent's update arrives with dedup id update.<uuid>.<inbound message id>.
                dedup = m.get("Attributes", {}).get("MessageDeduplicationId", "")
                check("update dedup id names the uuid and the inbound message",
                      dedup.startswith(f"update.{s['uuid']}.") and len(dedup) > len(f"update.{s['uuid']}."),
                      dedup=dedup)
                call("ACKNOWLEDGE", frameworkId=fw, agentId=s["agentId"], taskId=s["taskId"], uuid=s["uuid"])
                if s["uuid"] in seen_uuids:
                    continue
                seen_uuids.add(s["uuid"])
            updates.append(s["state"])
            if s["state"] in TERMINAL:
                finished = s
        elif e["type"] == "ERROR":
            check("no ERROR while running", False, error=e)

check("the task ran and finished with its output",
      finished is not None and finished["state"] == "TASK_FINISHED"
      and "hello from python" in finished.get("stdoutTail", ""),
      updates=updates, finished=finished)


def answer_for(task_id, timeout=30):
    """The next UPDATE for task_id (no uuid: Meso's own answer), or None."""
    end = time.time() + timeout
    while time.time() < end:
        for e, _ in receive():
            if e["type"] == "UPDATE" and e["status"]["taskId"] == task_id and not e["status"].get("uuid"):
                return e["status"]
            if e["type"] == "ERROR":
                return {"error": e}
    return None


if finished is not None:
    # §2.8: explicit reconciliation answers the latest state, SOURCE_MASTER, REASON_RECONCILIATION,
    # no uuid, and no output tails.
    call("RECONCILE", frameworkId=fw, tasks=[{"taskId": "hello-1", "agentId": agent}])
    a = answer_for("hello-1")
    check("reconciliation answers the real end, without uuid or tails",
          a is not None and a.get("state") == "TASK_FINISHED" and a.get("reason") == "REASON_RECONCILIATION"
          and a.get("source") == "SOURCE_MASTER" and "stdoutTail" not in a and "stderrTail" not in a,
          answer=a)
    # §2.6: a KILL of an ended task naming the wrong agent gets its terminal state, not UNKNOWN_TASK.
    call("KILL", frameworkId=fw, taskId="hello-1", agentId="not-its-agent")
    a = answer_for("hello-1")
    check("KILL of an ended task with the wrong agent answers its end",
          a is not None and a.get("state") == "TASK_FINISHED" and a.get("reason") == "REASON_RECONCILIATION",
          answer=a)

# §2.2 and §6: TEARDOWN; a second one goes through again (no ERROR). A later call gets
# FRAMEWORK_TORN_DOWN: the RECONCILE after them proves both TEARDOWNs were handled first.
call("TEARDOWN", frameworkId=fw)
call("TEARDOWN", frameworkId=fw)
call("RECONCILE", frameworkId=fw, tasks=[])
errors, end = [], time.time() + 30
while time.time() < end and not any(x.get("call") == "RECONCILE" for x in errors):
    errors += [e for e, _ in receive() if e["type"] == "ERROR"]
check("after TEARDOWN calls get FRAMEWORK_TORN_DOWN; a second TEARDOWN gets no ERROR",
      [(x["code"], x.get("call")) for x in errors] == [("FRAMEWORK_TORN_DOWN", "RECONCILE")], errors=errors)
sqs("DeleteQueue", {"QueueUrl": events})
sys.exit(1 if failed else 0)
