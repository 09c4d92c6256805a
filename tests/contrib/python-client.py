"""Test of contrib/python/instantd.py against a tiny fake daemon (a thread
serving newline-delimited JSON on a Unix socket in a temporary directory).
The real daemon's integration test lives with the e2e tests."""

import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.environ.get("top_srcdir", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")), "contrib", "python"))
import instantd  # noqa: E402


class FakeDaemon:
    """Answers like instantd would for the ops the client uses, and records
    every request it got."""

    def __init__(self, path):
        self.path = path
        self.requests = []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(8)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.close()

    def _accept(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        subs = {}       # client-event-id -> query
        goals = []
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    msg = json.loads(line)
                    self.requests.append(msg)
                    for out in self._answer(msg, subs, goals):
                        conn.sendall(json.dumps(out).encode() + b"\n")

    def _answer(self, msg, subs, goals):
        op = msg.get("op")
        ceid = msg.get("client-event-id")
        if op == "init":
            yield {"op": "init-ok", "client-event-id": ceid, "profile": "p1",
                   "app-id": msg["app-id"], "connection": "offline"}
        elif op == "status":
            # An unrelated push first: the client must ignore it.
            yield {"op": "refresh-ok", "client-event-id": "not-ours", "data": {}}
            yield {"op": "status", "client-event-id": ceid, "state": "offline",
                   "queue-depth": len(goals)}
        elif op == "query-once":
            if "bad" in msg["q"]:
                yield {"op": "error", "client-event-id": ceid, "type": "invalid-query",
                       "message": "unknown namespace", "hint": "check q"}
            else:
                yield {"op": "query-ok", "client-event-id": ceid,
                       "data": {"goals": list(goals)}, "policy": msg.get("policy"),
                       "allow-partial": msg.get("allow-partial")}
        elif op == "add-query":
            subs[ceid] = msg["q"]
            yield {"op": "add-query-ok", "client-event-id": ceid, "q": msg["q"],
                   "data": {"goals": list(goals)}, "from-cache": True, "partial": True}
        elif op == "remove-query":
            subs.pop(ceid, None)
            yield {"op": "remove-query-ok", "client-event-id": ceid}
        elif op == "transact":
            ops = msg.get("ops") or []
            if ops and ops[0][0] == "reject":
                yield {"op": "transact-queued", "client-event-id": ceid, "mutation-id": "m-bad"}
                yield {"op": "error", "client-event-id": ceid, "type": "permission-denied",
                       "message": "rule failed"}
                return
            for o in ops:
                goals.append({"id": o[2], **o[3]})
            yield {"op": "transact-queued", "client-event-id": ceid,
                   "mutation-id": "m-%d" % len(goals)}
            # Subscribers hear about the change before the server confirms.
            for sid in subs:
                yield {"op": "refresh-ok", "client-event-id": sid,
                       "data": {"goals": list(goals)}, "has-pending-writes": True}
            yield {"op": "transact-ok", "client-event-id": ceid, "tx-id": len(goals)}
        elif op == "list-mutations":
            yield {"op": "mutations", "client-event-id": ceid, "pending": [], "failed": []}
        elif op == "discard-mutation":
            yield {"op": "discard-mutation-ok", "client-event-id": ceid,
                   "mutation-id": msg["mutation-id"]}
        elif op == "close-me":
            yield {"op": "error", "type": "too-large", "message": "line too long"}
        else:
            yield {"op": "error", "client-event-id": ceid, "type": "invalid-op",
                   "message": "unknown op %s" % op}


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="instantd-py-")
        self.path = os.path.join(self.dir, "socket")
        self.daemon = FakeDaemon(self.path)

    def tearDown(self):
        self.daemon.close()
        shutil.rmtree(self.dir)

    def test_default_socket_path(self):
        env = dict(os.environ)
        try:
            os.environ.pop("INSTANTD_SOCKET", None)
            os.environ["XDG_RUNTIME_DIR"] = "/run/user/77"
            self.assertEqual(instantd.default_socket_path(), "/run/user/77/instantd/socket")
            os.environ["INSTANTD_SOCKET"] = self.path
            self.assertEqual(instantd.default_socket_path(), self.path)
            with instantd.connect() as c:
                self.assertEqual(c.status()["state"], "offline")
            os.environ.pop("INSTANTD_SOCKET")
            os.environ.pop("XDG_RUNTIME_DIR")
            self.assertEqual(instantd.default_socket_path(),
                             "/run/user/%d/instantd/socket" % os.getuid())
        finally:
            os.environ.clear()
            os.environ.update(env)

    def test_init_status_query(self):
        with instantd.connect(self.path, timeout=10) as c:
            ok = c.init("app-1", api_uri="http://127.0.0.1:1", refresh_token="tok",
                        client_name="test")
            self.assertEqual(ok["op"], "init-ok")
            self.assertEqual(ok["app-id"], "app-1")
            first = self.daemon.requests[0]
            self.assertEqual(first["op"], "init")
            self.assertEqual(first["api-uri"], "http://127.0.0.1:1")
            self.assertEqual(first["refresh-token"], "tok")
            self.assertEqual(first["client-name"], "test")
            self.assertEqual(ok["client-event-id"], first["client-event-id"])
            self.assertEqual(c.status()["queue-depth"], 0)
            r = c.query_once({"goals": {}}, policy="cache-only")
            self.assertEqual(r["data"], {"goals": []})
            self.assertEqual(r["policy"], "cache-only")
            self.assertIsNone(r["allow-partial"])   # the default is not sent
            r = c.query_once({"goals": {}}, policy="cache-only", allow_partial=False)
            self.assertIs(r["allow-partial"], False)
            with self.assertRaises(instantd.InstantdError) as e:
                c.query_once({"bad": {}})
            self.assertEqual(e.exception.type, "invalid-query")
            self.assertEqual(e.exception.hint, "check q")
            self.assertIn("unknown namespace", str(e.exception))
            # The connection is still usable after an error reply.
            self.assertEqual(c.status()["op"], "status")
            ids = [m["client-event-id"] for m in self.daemon.requests]
            self.assertEqual(len(ids), len(set(ids)))

    def test_subscribe_without_partial(self):
        with instantd.connect(self.path, timeout=10) as c:
            c.init("app-1")
            sub = c.subscribe({"goals": {}}, allow_partial=False)
            next(sub)
            sent = [m for m in self.daemon.requests if m["op"] == "add-query"]
            self.assertIs(sent[-1]["allow-partial"], False)
            sub2 = c.subscribe({"goals": {}})
            next(sub2)
            sent = [m for m in self.daemon.requests if m["op"] == "add-query"]
            self.assertNotIn("allow-partial", sent[-1])

    def test_subscribe_and_transact(self):
        with instantd.connect(self.path, timeout=10) as c:
            c.init("app-1")
            sub = c.subscribe({"goals": {}})
            first = next(sub)
            self.assertEqual(first["op"], "add-query-ok")
            self.assertEqual(first["data"], {"goals": []})
            self.assertTrue(first["from-cache"])
            self.assertTrue(instantd.from_cache(first) and instantd.partial(first))
            # transact's replies and the subscription's push interleave.
            q = c.transact([["update", "goals", "g1", {"title": "one"}]])
            self.assertEqual(q["op"], "transact-queued")
            self.assertEqual(q["mutation-id"], "m-1")
            ok = c.transact([["update", "goals", "g2", {"title": "two"}]], wait=True)
            self.assertEqual(ok["op"], "transact-ok")
            self.assertEqual(ok["tx-id"], 2)
            r1 = next(sub)
            self.assertEqual(r1["op"], "refresh-ok")
            self.assertFalse(instantd.partial(r1))    # absent: not partial
            self.assertTrue(instantd.has_pending_writes(r1))
            self.assertEqual([g["title"] for g in r1["data"]["goals"]], ["one"])
            r2 = sub.next(timeout=5)
            self.assertEqual([g["title"] for g in r2["data"]["goals"]], ["one", "two"])
            sent = self.daemon.requests[-1]
            self.assertEqual(sent["ops"], [["update", "goals", "g2", {"title": "two"}]])
            sub.close()
            rm = self.daemon.requests[-1]
            self.assertEqual(rm["op"], "remove-query")
            self.assertEqual(rm["client-event-id"], sub.client_event_id)
            self.assertEqual(list(sub), [])
            with self.assertRaises(instantd.InstantdError) as e:
                c.transact([["reject", "goals", "g3", {}]], wait=True)
            self.assertEqual(e.exception.type, "permission-denied")
            with self.assertRaises(ValueError):
                c.transact()
            c.transact(tx_steps=[["add-triple", "e", "a", "v"]])
            self.assertIn("tx-steps", self.daemon.requests[-1])

    def test_mutations_and_generic(self):
        with instantd.connect(self.path, timeout=10) as c:
            c.init("app-1")
            self.assertEqual(c.list_mutations()["op"], "mutations")
            self.assertEqual(c.discard_mutation("m-9")["mutation-id"], "m-9")
            with self.assertRaises(instantd.InstantdError) as e:
                c.request({"op": "frobnicate"}, ["frobnicate-ok"])
            self.assertEqual(e.exception.type, "invalid-op")
            with self.assertRaises(instantd.InstantdError) as e:
                c.request({"op": "close-me"}, ["never"])
            self.assertEqual(e.exception.type, "too-large")

    def test_unreachable_and_timeout(self):
        with self.assertRaises(instantd.DaemonUnreachable) as e:
            instantd.connect(os.path.join(self.dir, "nope"))
        self.assertIsInstance(e.exception, ConnectionError)
        self.assertEqual(e.exception.type, "unreachable")
        # A listener that never answers: the request times out.
        silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        silent_path = os.path.join(self.dir, "silent")
        silent.bind(silent_path)
        silent.listen(1)
        try:
            with instantd.connect(silent_path, timeout=0.2) as c:
                with self.assertRaises(TimeoutError):
                    c.status()
        finally:
            silent.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
