"""Two Python clients against a real parley-server on 127.0.0.1: alice on
the built-in WebSocket transport, bob on an app-supplied transport written
in Python with the `websockets` package. They exchange channel messages,
typing, receipts and end-to-end encrypted direct messages, edit a
collaborative document concurrently until it converges; alice's analytics
events reach a Python callable.

    PARLEY_LIBRARY=build/lib/libparley.so PARLEY_SERVER=build/bin/parley-server \
        python3 bindings/python/tests/test_two_clients.py
"""

import os
import re
import shutil
import tempfile
import threading
import time
import unittest

import common
import parley
from server import ParleyServer

WAIT = 20.0  # seconds, for any one thing to happen


class CountingTransport(parley.WebSocketsTransport):
    """WebSocketsTransport, counting what it carries: proof that bob's frames
    go through Python."""

    def __init__(self):
        super().__init__(open_timeout=10.0)
        self.opened = 0
        self.sent = 0
        self.delivered = 0

    def open(self, url, subprotocol):
        assert subprotocol == "parley.v1", subprotocol
        self.opened += 1
        super().open(url, subprotocol)

    def send(self, frame):
        self.sent += 1
        super().send(frame)

    def deliver_frame(self, frame):
        self.delivered += 1
        return super().deliver_frame(frame)


class AnalyticsProbe:
    """alice's analytics= callable: keeps every event, and on the first
    "message_sent" after arm() calls back into the client (refused at once by
    the library, so it cannot deadlock) and keeps what that raised."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events = []
        self.client = None
        self.armed = False
        self.refused = None     # what the call from inside raised
        self.probed = threading.Event()
        self.arrived = threading.Condition(self.lock)

    def arm(self, client):
        with self.lock:
            self.client = client
            self.armed = True

    def __call__(self, event):
        with self.lock:
            self.events.append(event)
            self.arrived.notify_all()
            probe = self.armed and event.name == "message_sent"
            if probe:
                self.armed = False
        if probe:
            try:
                self.client.state
                self.refused = "no error"
            except parley.ParleyError as e:
                self.refused = e
            self.probed.set()

    def wait_for(self, match, timeout):
        with self.lock:
            found = self.arrived.wait_for(lambda: [e for e in self.events if match(e)], timeout)
        if not found:
            raise AssertionError("no matching analytics event in %.0f s; got %r"
                                 % (timeout, sorted({e.name for e in self.events})))
        return found[0]


class TwoClients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ParleyServer(common.server_binary()).start()
        cls.work = tempfile.mkdtemp(prefix="parley-py-clients-")
        url = cls.server.url
        cls.bob_transport = CountingTransport()
        cls.analytics = AnalyticsProbe()
        cls.alice = parley.Client(server_url=url, token=cls.server.mint_token("alice"),
                                  data_dir=os.path.join(cls.work, "alice"),
                                  analytics=cls.analytics, document_name="Alice (py)",
                                  document_color="#00aa55")
        cls.bob = parley.Client(server_url=url, token=cls.server.mint_token("bob"),
                                data_dir=os.path.join(cls.work, "bob"),
                                transport=cls.bob_transport)
        try:
            cls.alice.wait_ready(WAIT)
            cls.bob.wait_ready(WAIT)
            cls.alice.wait_request(cls.alice.create_channel("general", topic="testing"), WAIT)
            cls.bob.wait_request(cls.bob.join("general"), WAIT)
        except Exception:
            print(cls.server.log_tail())
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for c in (getattr(cls, "alice", None), getattr(cls, "bob", None)):
            if c is not None:
                c.close()
        cls.server.stop()
        shutil.rmtree(cls.work, ignore_errors=True)
        shutil.rmtree(cls.server.work, ignore_errors=True)

    # Helpers -------------------------------------------------------------------------

    def received(self, client, channel, text):
        e = client.wait_for(lambda e: isinstance(e, parley.MessageReceived)
                            and e.message.channel == channel and e.message.text == text, WAIT)
        return e.message

    def sent(self, client, msg_id):
        return client.wait_for(lambda e: isinstance(e, parley.MessageSent) and e.id == msg_id,
                               WAIT)

    # Tests (unittest runs them in name order) ---------------------------------------------

    def test_0_identity_and_transports(self):
        self.assertEqual(self.alice.user, "alice")
        self.assertEqual(self.bob.user, "bob")
        self.assertEqual(self.alice.state, "ready")
        self.assertEqual(self.bob.state, "ready")
        self.assertTrue(parley.version())
        self.assertEqual(parley.abi_version(), 0)
        self.assertEqual(self.alice.role("general"), "owner")
        self.assertEqual(self.bob.role("general"), "member")
        self.assertTrue(self.bob.can("general", "post"))
        self.assertFalse(self.bob.can("general", "ban"))
        self.assertEqual(self.alice.channel_kind("general"), "public")
        t = self.bob_transport
        self.assertEqual(t.opened, 1)
        self.assertGreater(t.sent, 0)       # auth, key publication, join, ...
        self.assertGreater(t.delivered, 0)  # welcome, replies, events

    def test_1_channel_messages_both_ways(self):
        mid = self.alice.send("general", "hello bob")
        self.assertRegex(mid, r"^[0-9a-f]{32}$")
        sent = self.sent(self.alice, mid)
        self.assertEqual(sent.channel, "general")
        self.assertGreater(sent.seq, 0)
        m = self.received(self.bob, "general", "hello bob")
        self.assertEqual(m.sender, "alice")
        self.assertEqual(m.seq, sent.seq)
        self.assertEqual(m.id, mid)
        self.assertFalse(m.e2e)

        mid = self.bob.send("general", "hi alice, from a Python transport")
        self.sent(self.bob, mid)
        m = self.received(self.alice, "general", "hi alice, from a Python transport")
        self.assertEqual(m.sender, "bob")

        history = self.bob.history("general", limit=10, timeout=WAIT)
        texts = [h.text for h in history if h.kind == "message"]
        self.assertEqual(texts[-2:], ["hello bob", "hi alice, from a Python transport"])
        seqs = [h.seq for h in history]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(history[-1].sender, "bob")

    def test_2_typing(self):
        self.bob.typing("general", True)
        e = self.alice.wait_for(lambda e: isinstance(e, parley.TypingChanged)
                                and e.user == "bob" and e.active, WAIT)
        self.assertEqual(e.channel, "general")
        self.bob.typing("general", False)
        self.alice.wait_for(lambda e: isinstance(e, parley.TypingChanged)
                            and e.user == "bob" and not e.active, WAIT)

        self.alice.typing("general", True)
        self.bob.wait_for(lambda e: isinstance(e, parley.TypingChanged)
                          and e.user == "alice" and e.active, WAIT)
        # Sending a message stops typing.
        self.alice.send("general", "done typing")
        self.bob.wait_for(lambda e: isinstance(e, parley.TypingChanged)
                          and e.user == "alice" and not e.active, WAIT)
        self.received(self.bob, "general", "done typing")

    def test_3_receipts(self):
        mid = self.alice.send("general", "please read this")
        seq = self.sent(self.alice, mid).seq
        self.received(self.bob, "general", "please read this")
        # bob's device has it: a delivered receipt reaches alice.
        self.alice.wait_for(lambda e: isinstance(e, parley.ReceiptUpdated) and e.user == "bob"
                            and e.kind == "delivered" and e.seq >= seq, WAIT)
        self.bob.mark_read("general", seq)
        e = self.alice.wait_for(lambda e: isinstance(e, parley.ReceiptUpdated)
                                and e.user == "bob" and e.kind == "read" and e.seq >= seq, WAIT)
        self.assertEqual(e.channel, "general")
        summary = self.alice.receipts("general", seq)
        self.assertEqual(summary, parley.ReceiptSummary(members=1, delivered=1, read=1))
        # And the other way round, over bob's Python transport.
        mid = self.bob.send("general", "read mine too")
        seq = self.sent(self.bob, mid).seq
        self.received(self.alice, "general", "read mine too")
        self.alice.mark_read("general")
        self.bob.wait_for(lambda e: isinstance(e, parley.ReceiptUpdated) and e.user == "alice"
                          and e.kind == "read" and e.seq >= seq, WAIT)
        self.assertEqual(self.bob.receipts("general", seq).read, 1)

    def test_4_encrypted_direct_messages(self):
        dm = self.alice.direct("bob", WAIT)
        self.assertTrue(dm.startswith("@"), dm)
        self.assertEqual(self.alice.channel_kind(dm), "direct")
        self.assertEqual(self.alice.direct_peer(dm), "bob")
        mid = self.alice.send(dm, "a secret for bob")
        self.sent(self.alice, mid)
        m = self.received(self.bob, dm, "a secret for bob")
        self.assertTrue(m.e2e)
        self.assertEqual(m.e2e_error, "")
        self.assertEqual(m.sender, "alice")
        self.assertEqual(self.bob.direct_channel("alice"), dm)

        mid = self.bob.send(dm, "and one for alice")
        self.sent(self.bob, mid)
        m = self.received(self.alice, dm, "and one for alice")
        self.assertTrue(m.e2e)

        # Safety numbers: the same 60 digits on both sides; verify with the shown number.
        a = self.alice.safety_number("bob", WAIT)
        b = self.bob.safety_number("alice", WAIT)
        self.assertRegex(a.number, r"^\d{5}( \d{5}){11}$")
        self.assertEqual(a.number, b.number)
        self.assertFalse(a.verified)
        self.alice.verify_contact("bob", True, a.number)
        self.assertTrue(self.alice.safety_number("bob", WAIT).verified)
        with self.assertRaises(parley.InvalidArgumentError) as cm:
            self.bob.verify_contact("alice", True, "1" * 60)
        self.assertEqual(cm.exception.reason, "safety_changed")

    def test_5_errors_are_exceptions(self):
        with self.assertRaises(parley.AlreadyExistsError) as cm:
            self.bob.wait_request(self.bob.create_channel("general"), WAIT)
        self.assertEqual(cm.exception.reason, "channel_exists")
        self.assertIsInstance(cm.exception.event, parley.ChannelRequestDone)
        self.assertIsInstance(cm.exception, parley.ParleyError)

        with self.assertRaises(parley.InvalidArgumentError) as cm:
            self.alice.send("general", "")
        self.assertEqual(cm.exception.code, -1)
        self.assertTrue(cm.exception.message)

        with self.assertRaises(parley.InvalidArgumentError):
            self.alice.set_role("general", "bob", "emperor")

        with self.assertRaises(parley.TimeoutError):
            self.alice.wait_for(lambda e: False, 0.2)

    def test_6_listing(self):
        names = {c.name for c in self.alice.channels()}
        self.assertIn("general", names)
        self.assertEqual(self.alice.outbox(), [])
        self.assertGreater(self.alice.cache_usage().events, 0)
        self.assertEqual(self.alice.channel_meta("general").topic, "testing")
        p = self.alice.presence("bob")
        if p is not None:  # presence of a small channel's members arrives by itself
            self.assertIn(p.status, ("online", "away", "offline"))

    def test_7_reconnect_over_the_python_transport(self):
        self.bob.disconnect()
        self.bob.wait_for(lambda e: isinstance(e, parley.StateChanged)
                          and e.state == "disconnected", WAIT)
        self.assertEqual(self.bob.state, "disconnected")
        # Meanwhile: bob writes to his outbox, alice says something he misses.
        mid = self.bob.send("general", "written offline")
        self.bob.wait_for(lambda e: isinstance(e, parley.MessagePending) and e.id == mid, WAIT)
        self.sent(self.alice, self.alice.send("general", "while you were away"))
        self.bob.connect()
        self.bob.wait_ready(WAIT)
        self.assertEqual(self.bob_transport.opened, 2)
        self.sent(self.bob, mid)
        self.received(self.alice, "general", "written offline")
        self.received(self.bob, "general", "while you were away")

    def test_8_analytics(self):
        probe = self.analytics
        # From the start: the lifecycle reached ready.
        probe.wait_for(lambda e: e.name == "connection_state"
                       and e.labels.get("state") == "ready", WAIT)
        probe.arm(self.alice)
        mid = self.alice.send("general", "counted, never quoted")
        e = probe.wait_for(lambda e: e.name == "message_sent" and e.labels.get("id") == mid, WAIT)
        self.assertEqual(e.labels["channel"], "general")
        self.assertEqual(e.values["bytes"], float(len("counted, never quoted")))
        self.assertGreater(e.ts_ms, 0)
        self.sent(self.alice, mid)
        e = probe.wait_for(lambda e: e.name == "message_acknowledged"
                           and e.labels.get("id") == mid, WAIT)
        self.assertEqual(e.labels["channel"], "general")
        self.assertGreater(e.values["seq"], 0)
        self.assertNotIn("never quoted", repr(probe.events))
        # Calling the client from inside the callable raised, on its thread.
        self.assertTrue(probe.probed.wait(WAIT))
        self.assertIsInstance(probe.refused, parley.InvalidArgumentError)
        self.assertEqual(probe.refused.reason, "in_analytics_callback")
        self.assertEqual(self.alice.state, "ready")  # and the client is fine

    def test_9_documents(self):
        a, b = self.alice, self.bob
        done = a.wait_request(a.create_document("general", "py-notes"), WAIT)
        self.assertGreater(done.seq, 0)
        with self.assertRaises(parley.AlreadyExistsError) as cm:
            b.wait_request(b.create_document("general", "py-notes"), WAIT)
        self.assertEqual(cm.exception.reason, "doc_exists")
        with self.assertRaises(parley.NotFoundError) as cm:
            a.document_text("general", "no-such-doc")
        self.assertEqual(cm.exception.reason, "no_such_doc")
        for c in (a, b):
            c.wait_request(c.open_document("general", "py-notes"), WAIT)
        # Both insert at once; DocumentChanged until the replicas agree.
        a.insert_text("general", "py-notes", 0, "héllo ")
        b.insert_text("general", "py-notes", 0, "wörld")
        texts = {"alice": None, "bob": None}
        deadline = time.monotonic() + WAIT
        while texts["alice"] is None or len(texts["alice"]) != 11 or \
                texts["alice"] != texts["bob"]:
            self.assertLess(time.monotonic(), deadline, "no convergence: %r" % texts)
            for name, c in (("alice", a), ("bob", b)):
                try:
                    e = c.wait_for(lambda e: isinstance(e, parley.DocumentChanged)
                                   and e.title == "py-notes", 0.1)
                    texts[name] = e.text
                except parley.TimeoutError:
                    pass
        va, vb = a.document_text("general", "py-notes"), b.document_text("general", "py-notes")
        self.assertEqual(va.text, texts["alice"])
        self.assertEqual((vb.text, vb.version), (va.text, va.version))
        self.assertIn("héllo ", va.text)
        self.assertIn("wörld", va.text)
        with self.assertRaises(parley.InvalidArgumentError) as cm:
            a.insert_text("general", "py-notes", 99, "x")
        self.assertEqual(cm.exception.reason, "invalid_position")
        # alice's cursor, with her name and colour, reaches bob.
        a.set_document_cursor("general", "py-notes", 2, 0)
        e = b.wait_for(lambda e: isinstance(e, parley.DocumentAwareness) and e.user == "alice"
                       and e.cursor == 2, WAIT)
        self.assertEqual((e.anchor, e.name, e.color, e.gone), (0, "Alice (py)", "#00aa55", False))
        listed = b.wait_request(b.list_documents("general"), WAIT)
        self.assertIsInstance(listed, parley.DocumentsLoaded)
        self.assertIn("py-notes", [d.title for d in listed.docs])
        for c in (a, b):  # acknowledged by the server
            deadline = time.monotonic() + WAIT
            while c.pending_document_updates() and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertEqual(c.pending_document_updates(), 0)
            c.wait_request(c.close_document("general", "py-notes"), WAIT)


if __name__ == "__main__":
    unittest.main(verbosity=2)
