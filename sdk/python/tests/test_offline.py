"""Pieces of the SDK that need no node."""

import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import unittest
from pathlib import Path

import agentnet
from agentnet import AgentnetError, ConnectionClosedError, NodeNotRunningError, decode_body, encode_body
from agentnet._common import error_reply

SDK = Path(__file__).resolve().parent.parent


class OfflineTest(unittest.TestCase):
    def test_generated_async_wrappers_are_up_to_date(self) -> None:
        result = subprocess.run([sys.executable, str(SDK / "tools" / "gen_async.py"), "--check"], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_bodies(self) -> None:
        self.assertEqual(encode_body("text"), {"body": "text"})
        self.assertEqual(encode_body({"a": [1]}), {"body": {"a": [1]}})
        self.assertEqual(encode_body(None), {"body": None})
        self.assertEqual(encode_body(b"\x00\xff"), {"bodyBase64": base64.b64encode(b"\x00\xff").decode()})
        self.assertEqual(encode_body(bytearray(b"ab")), {"bodyBase64": "YWI="})
        self.assertEqual(decode_body({"bodyBase64": "YWI="}), b"ab")
        self.assertEqual(decode_body({"body": [1, "x"]}), [1, "x"])

    def test_errors_carry_the_node_code(self) -> None:
        err = AgentnetError.from_rpc({"code": -32000, "message": "no route", "data": {"code": "PeerUnreachable"}})
        self.assertEqual((err.code, err.rpc_code, err.message), ("PeerUnreachable", -32000, "no route"))
        self.assertEqual(str(err), "PeerUnreachable: no route")
        self.assertEqual(AgentnetError.from_rpc({"code": -32601, "message": "x"}).code, "MethodNotFound")
        self.assertEqual(error_reply(agentnet.ServiceError("Busy", "later")), {"code": "Busy", "message": "later"})
        self.assertEqual(error_reply(KeyError("k")), {"code": "KeyError", "message": "'k'"})

    def test_socket_location(self) -> None:
        self.assertEqual(agentnet.socket_path("/h"), "/h/agentnet.sock")
        self.assertEqual(agentnet.socket_path("/h", "/x.sock"), "/x.sock")
        old = os.environ.get("AGENTNET_HOME")
        os.environ["AGENTNET_HOME"] = "/env-home"
        try:
            self.assertEqual(agentnet.resolve_home(), "/env-home")
        finally:
            if old is None:
                del os.environ["AGENTNET_HOME"]
            else:
                os.environ["AGENTNET_HOME"] = old

    def test_missing_and_refusing_sockets(self) -> None:
        with tempfile.TemporaryDirectory() as home:
            with self.assertRaises(NodeNotRunningError) as ctx:
                agentnet.Client(home)
            self.assertIn("no socket", str(ctx.exception))
            # a stale socket file: nothing listens on it
            stale = socket.socket(socket.AF_UNIX)
            stale.bind(os.path.join(home, "agentnet.sock"))
            stale.close()
            with self.assertRaises(NodeNotRunningError) as ctx:
                agentnet.Client(home)
            self.assertIn("refuses connections", str(ctx.exception))

    def test_multiplexing_and_loss_against_a_fake_node(self) -> None:
        """Answers matched by id whatever their order; a lost connection fails
        the calls still waiting."""
        with tempfile.TemporaryDirectory() as home:
            server = socket.socket(socket.AF_UNIX)
            server.bind(os.path.join(home, "agentnet.sock"))
            server.listen(1)

            def fake() -> None:
                conn, _ = server.accept()
                f = conn.makefile("rwb")
                ids = {}
                for _ in range(3):
                    request = json.loads(f.readline())
                    ids[request["method"]] = request["id"]
                # answer m2 first, then a notification, then m1; never m3
                f.write(b'{"jsonrpc":"2.0","id":%d,"result":"two"}\n' % ids["m2"])
                f.write(b'{"jsonrpc":"2.0","method":"msg.received","params":{"id":"d1","requestId":"r","from":"P","service":"s","kind":"oneway","bodyBase64":"AAE=","contentType":"application/octet-stream"}}\n')
                f.write(b'{"jsonrpc":"2.0","id":%d,"error":{"code":-32000,"message":"nope","data":{"code":"Nope"}}}\n' % ids["m1"])
                f.flush()
                conn.shutdown(socket.SHUT_RDWR)
                f.close()
                conn.close()

            thread = threading.Thread(target=fake, daemon=True)
            thread.start()
            client = agentnet.Client(home, binary=False)  # this fake node speaks JSON lines only
            inbox = client.messages()
            results: dict = {}

            def call(n: int) -> None:
                try:
                    results[n] = client.call(f"m{n}", timeout=10)
                except AgentnetError as err:
                    results[n] = err

            threads = [threading.Thread(target=call, args=(n,)) for n in (1, 2, 3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            self.assertEqual(results[2], "two")
            self.assertEqual(results[1].code, "Nope")
            self.assertIsInstance(results[3], ConnectionClosedError)
            self.assertIn("closed the connection", str(results[3]))
            message = inbox.get(timeout=5)
            self.assertEqual((message.body, message.kind, message.sender), (b"\x00\x01", "oneway", "P"))
            self.assertEqual(list(inbox), [])
            client.close()
            server.close()

    def test_binary_frames_against_a_fake_node(self) -> None:
        """After ``ipc.hello``, bytes and text bodies go as raw bytes after a
        header line with ``bodyBytes``, and raw bodies from the node come back
        as bytes, text or JSON by their content type."""
        with tempfile.TemporaryDirectory() as home:
            server = socket.socket(socket.AF_UNIX)
            server.bind(os.path.join(home, "agentnet.sock"))
            server.listen(1)
            seen: dict = {}

            def fake() -> None:
                conn, _ = server.accept()
                f = conn.makefile("rwb")
                hello = json.loads(f.readline())
                seen["hello"] = hello["params"]
                f.write(b'{"jsonrpc":"2.0","id":%d,"result":{"features":["binary"]}}\n' % hello["id"])
                f.flush()
                for _ in range(2):
                    header = json.loads(f.readline())
                    body = f.read(header["bodyBytes"])
                    seen[header["params"]["contentType"]] = body
                    payload = b"\x00\n\xffraw" if header["params"]["contentType"] == "application/octet-stream" else b'{"a":[1,2]}'
                    ctype = b"application/octet-stream" if payload.startswith(b"\x00") else b"application/json"
                    f.write(b'{"jsonrpc":"2.0","id":%d,"result":{"from":"P","id":"r","contentType":"%s"},"bodyBytes":%d}\n' % (header["id"], ctype, len(payload)) + payload)
                    f.flush()
                f.write(b'{"jsonrpc":"2.0","method":"msg.received","params":{"id":"d1","requestId":"r","from":"P","service":"s","kind":"oneway","contentType":"text/plain; charset=utf-8"},"bodyBytes":3}\nh\ni')
                f.flush()
                f.readline()
                conn.close()

            thread = threading.Thread(target=fake, daemon=True)
            thread.start()
            client = agentnet.Client(home)
            inbox = client.messages()
            reply = client.send("P", "s", b"\x00\x01\n")
            self.assertEqual(reply.body, b"\x00\n\xffraw")
            self.assertEqual(client.send("P", "s", "text \u00e9\n").body, {"a": [1, 2]})
            self.assertEqual(seen["hello"], {"features": ["binary"]})
            self.assertEqual(seen["application/octet-stream"], b"\x00\x01\n")
            self.assertEqual(seen["text/plain; charset=utf-8"], "text \u00e9\n".encode())
            self.assertEqual(inbox.get(timeout=5).body, "h\ni")
            client.close()
            server.close()

    def test_refused_or_stopping_node_at_connect(self) -> None:
        """A node over its connection limit says TooManyClients in an error
        line, then closes: connect raises that error; a node that accepts and
        closes at once is stopping: NodeNotRunningError."""
        refusal = b'{"jsonrpc":"2.0","id":null,"error":{"code":-32002,"message":"the node serves at most 1 local clients at once (ipc.maxConnections)","data":{"code":"TooManyClients"}}}\n'
        for answer, expected in ((refusal, "TooManyClients"), (b"", "NodeNotRunning")):
            with tempfile.TemporaryDirectory() as home:
                server = socket.socket(socket.AF_UNIX)
                server.bind(os.path.join(home, "agentnet.sock"))
                server.listen(1)

                def fake(answer: bytes = answer) -> None:
                    conn, _ = server.accept()
                    conn.sendall(answer)
                    conn.close()

                threading.Thread(target=fake, daemon=True).start()
                with self.assertRaises(AgentnetError) as ctx:
                    agentnet.Client(home)
                self.assertEqual(ctx.exception.code, expected)
                server.close()


if __name__ == "__main__":
    unittest.main()
