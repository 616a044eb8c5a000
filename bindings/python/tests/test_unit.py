"""The binding without a server: events from their C form, analytics events
from their JSON, status codes to exceptions, the permission table and name
checks, library basics, a client that stays offline, a listener that calls
back into the client, an analytics callable that may not, and a Python
transport whose server is missing.

    PARLEY_LIBRARY=build/lib/libparley.so python3 bindings/python/tests/test_unit.py
"""

import json
import os
import shutil
import socket
import tempfile
import threading
import time
import unittest

import common
import parley
from parley import events
from server import ParleyServer


class Events(unittest.TestCase):
    def test_message_received(self):
        text = json.dumps({"v": 1, "type": "message_received", "message": {
            "channel": "general", "seq": 7, "kind": "message", "sender": "bob",
            "id": "ab" * 16, "text": "hi @alice", "ts_ms": 5, "state": "sent",
            "deleted": False, "meta": {}, "e2e": False, "e2e_error": "",
            "mentions": [{"offset": 3, "length": 6, "user": "alice"}],
            "a_field_of_the_future": 1}})
        e = events.parse_event(2, 0, "ok", "", text)
        self.assertIsInstance(e, parley.MessageReceived)
        self.assertEqual(e.message.seq, 7)
        self.assertEqual(e.message.mentions, [parley.Mention(3, 6, "alice")])
        self.assertEqual(e.message.meta, parley.ChannelMeta())

    def test_status_from_the_head(self):
        text = json.dumps({"v": 1, "type": "channel_request_done", "request": 9,
                           "channel": "general", "status": -3, "reason": "channel_exists",
                           "message": "channel general exists", "seq": 0})
        e = events.parse_event(6, -3, "channel_exists", "channel general exists", text)
        self.assertEqual(e.request, 9)
        self.assertEqual(e.status, parley.Status(-3, "channel_exists", "channel general exists"))
        self.assertFalse(e.status)

    def test_state_changed_and_session_reset(self):
        e = events.parse_event(1, -7, "connection_lost", "connection lost", json.dumps(
            {"v": 1, "type": "state_changed", "state": "disconnected", "status": -7,
             "reason": "connection_lost", "message": "connection lost"}))
        self.assertEqual(e, parley.StateChanged("disconnected",
                                                parley.Status(-7, "connection_lost",
                                                              "connection lost")))
        e = events.parse_event(20, 0, "ok", "", json.dumps(
            {"v": 1, "type": "session_reset", "user": "bob", "device": "d", "channel": "@x",
             "seq": 3, "session_reason": "no_session", "by_this_device": True}))
        self.assertEqual(e.reason, "no_session")
        self.assertTrue(e.by_this_device)

    def test_presence_and_unknown(self):
        e = events.parse_event(15, 0, "ok", "", json.dumps(
            {"v": 1, "type": "presence_changed",
             "presence": {"user": "bob", "status": "offline", "last_seen_ms": 12,
                          "invisible": False, "hide_last_seen": False}}))
        self.assertEqual(e.presence.last_seen_ms, 12)
        self.assertIsNone(e.presence.text)
        e = events.parse_event(999, 0, "ok", "", '{"v":1,"type":"from_the_future","x":1}')
        self.assertIsInstance(e, parley.UnknownEvent)
        self.assertEqual(e.name, "from_the_future")

    def test_documents(self):
        e = events.parse_event(25, 0, "ok", "", json.dumps(
            {"v": 1, "type": "document_awareness", "channel": "general", "title": "notes",
             "user": "bob", "device": "d1", "cursor": 4, "anchor": None, "name": "Bob",
             "color": "#112233", "gone": False}))
        self.assertEqual(e, parley.DocumentAwareness("general", "notes", "bob", "d1", 4, None,
                                                     "Bob", "#112233", False))
        e = events.parse_event(26, 0, "ok", "", json.dumps(
            {"v": 1, "type": "documents_loaded", "request": 3, "channel": "general",
             "status": 0, "reason": "ok", "message": "", "complete": True,
             "docs": [{"title": "notes", "kind": "text", "creator": "alice",
                       "created_ms": 5, "seq": 9, "size": 11, "version": 12}]}))
        self.assertEqual(e.docs, [parley.DocumentInfo("notes", "text", "alice", 5, 9, 11, 12)])
        self.assertTrue(e.status)
        e = events.parse_event(27, -6, "forbidden", "read-only", json.dumps(
            {"v": 1, "type": "document_failed", "channel": "general", "status": -6,
             "reason": "forbidden", "message": "read-only", "title": "notes", "dropped": 2}))
        self.assertEqual(e, parley.DocumentFailed("general", "notes",
                                                  parley.Status(-6, "forbidden", "read-only"), 2))
        e = events.parse_event(24, 0, "ok", "", json.dumps(
            {"v": 1, "type": "document_changed", "channel": "general", "title": "notes",
             "text": "hi", "version": 2, "local": True, "pending": 1}))
        self.assertEqual(e, parley.DocumentChanged("general", "notes", "hi", 2, True, 1))
        for kind, cls in events.EVENT_CLASSES.items():  # the library names every kind
            name = parley._lib.dec(parley._lib.lib().event_kind_name(kind))
            self.assertEqual(name.replace("_", ""), cls.__name__.lower(), kind)


class Analytics(unittest.TestCase):
    def test_parse(self):
        e = events.parse_analytics(json.dumps(
            {"v": 1, "name": "message_sent", "ts_ms": 1700000000123,
             "labels": {"channel": "general", "id": "ab" * 16},
             "values": {"bytes": 42.0, "rtt_ms": None}, "a_field_of_the_future": [1]}))
        self.assertIsInstance(e, parley.AnalyticsEvent)
        self.assertEqual(e, parley.AnalyticsEvent("message_sent", 1700000000123,
                                                  {"channel": "general", "id": "ab" * 16},
                                                  {"bytes": 42.0, "rtt_ms": None}))
        self.assertIsInstance(e.values["bytes"], float)

    def test_parse_minimal_and_bytes(self):
        e = events.parse_analytics(b'{"v":1,"name":"device_removed","ts_ms":5,'
                                   b'"labels":{},"values":{}}')
        self.assertEqual(e, parley.AnalyticsEvent("device_removed", 5))
        e = events.parse_analytics('{"name":"x"}')  # missing parts default
        self.assertEqual((e.name, e.ts_ms, e.labels, e.values), ("x", 0, {}, {}))
        e = events.parse_analytics('{"name":"y","ts_ms":1,"values":{"n":7}}')
        self.assertEqual(e.values, {"n": 7.0})

    def test_parse_rejects_what_is_not_an_object(self):
        for bad in ("", "[1]", "not json", "null"):
            with self.assertRaises(ValueError):
                events.parse_analytics(bad)


class RolesAndNames(unittest.TestCase):
    def test_role_allows(self):
        self.assertTrue(parley.role_allows("public", "member", "post"))
        self.assertFalse(parley.role_allows("public", "member", "ban"))
        self.assertTrue(parley.role_allows("private", "moderator", "ban"))
        self.assertFalse(parley.role_allows("private", "moderator", "edit_meta"))
        self.assertTrue(parley.role_allows("public", "admin", "change_roles"))
        self.assertFalse(parley.role_allows("public", "read_only", "post"))
        self.assertFalse(parley.role_allows("broadcast", "member", "post"))
        self.assertFalse(parley.role_allows("broadcast", "moderator", "post"))
        self.assertTrue(parley.role_allows("broadcast", "admin", "post"))
        self.assertTrue(parley.role_allows("direct", "member", "pin"))
        self.assertFalse(parley.role_allows("direct", "member", "invite"))
        # The C values work too: public, owner, change_roles.
        self.assertTrue(parley.role_allows(0, 0, 8))

    def test_role_allows_rejects_unknown_values(self):
        for args in (("club", "member", "post"), ("public", "emperor", "post"),
                     ("public", "member", "fly"), (4, "member", "post"),
                     ("public", -1, "post"), ("public", "member", 9)):
            with self.assertRaises(parley.InvalidArgumentError, msg=repr(args)) as cm:
                parley.role_allows(*args)
            self.assertIn("unknown", cm.exception.message)

    def test_outranks(self):
        order = ["owner", "admin", "moderator", "member", "read_only"]
        for i, a in enumerate(order):
            for j, b in enumerate(order):
                self.assertEqual(parley.outranks(a, b), i < j, (a, b))
        self.assertTrue(parley.outranks(1, 2))
        with self.assertRaises(parley.InvalidArgumentError):
            parley.outranks("owner", "emperor")
        with self.assertRaises(parley.InvalidArgumentError):
            parley.outranks(5, 0)

    def test_name_checks(self):
        self.assertIsNone(parley.check_channel_name("general"))
        self.assertIsNone(parley.check_user_name("alice"))
        for check, name, reason in ((parley.check_channel_name, "gen eral", "invalid_name"),
                                    (parley.check_channel_name, "", "invalid_name"),
                                    (parley.check_channel_name, "x" * 300, "invalid_name"),
                                    (parley.check_user_name, "bad user", "invalid_user"),
                                    (parley.check_user_name, "", "invalid_user")):
            with self.assertRaises(parley.InvalidArgumentError, msg=repr(name)) as cm:
                check(name)
            self.assertEqual(cm.exception.reason, reason)
            self.assertEqual(cm.exception.code, -1)
            self.assertTrue(cm.exception.message)
        with self.assertRaises(parley.InvalidArgumentError) as cm:
            parley.check_channel_name("gen eral")
        self.assertIn("gen eral", cm.exception.message)  # the message names the value


class Errors(unittest.TestCase):
    def test_every_code_has_its_class(self):
        for code in range(-1, -16, -1):
            err = parley.errors.error_for(code, "why", "what")
            self.assertIsInstance(err, parley.ParleyError)
            self.assertIsNot(type(err), parley.ParleyError)
            self.assertEqual(err.code, code)
            self.assertEqual((err.reason, err.message), ("why", "what"))
            self.assertEqual(parley.status_name(code), parley.errors._DEFAULT_REASONS[code])
        self.assertIsInstance(parley.errors.error_for(-8), TimeoutError)
        self.assertIsInstance(parley.errors.error_for(-1), ValueError)
        self.assertEqual(parley.errors.error_for(-2).reason, "not_found")
        self.assertIs(type(parley.errors.error_for(-99)), parley.ParleyError)


class OfflineClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A key and a well-formed token; no server runs.
        cls.keys = ParleyServer(common.server_binary()).keygen()
        cls.token = cls.keys.mint_token("alice")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.keys.work, ignore_errors=True)

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="parley-py-unit-")

    def tearDown(self):
        shutil.rmtree(self.work, ignore_errors=True)

    def test_library(self):
        self.assertRegex(parley.version(), r"^\d+\.\d+\.\d+")
        self.assertEqual(parley.abi_version(), 0)
        self.assertEqual(parley.status_name(0), "ok")

    def test_bad_options_raise(self):
        with self.assertRaises(parley.InvalidArgumentError) as cm:
            parley.Client(server_url="", token=self.token, data_dir=self.work)
        self.assertTrue(cm.exception.message)

    def test_offline_send_and_context_manager(self):
        with parley.Client(server_url="ws://127.0.0.1:9", token=self.token,
                           data_dir=os.path.join(self.work, "a"), auto_connect=False) as c:
            self.assertEqual(c.state, "disconnected")
            mid = c.send("general", "kept in the outbox")
            e = c.wait_for(parley.MessagePending, 5.0)
            self.assertEqual((e.channel, e.id), ("general", mid))
            self.assertEqual([o.text for o in c.outbox()], ["kept in the outbox"])
            with self.assertRaises(parley.InvalidArgumentError):
                c.send("bad name", "x")
            self.assertIsNone(c.role("general"))
            self.assertIsNone(c.presence("bob"))
            self.assertEqual(c.unread("general"), parley.UnreadCount(0, 0))
        with self.assertRaises(parley.ParleyError):
            c.send("general", "closed")
        c.close()  # idempotent

    def test_listener_may_call_the_client(self):
        got = []
        done = threading.Event()
        holder = {}

        def listener(event):
            if isinstance(event, parley.MessagePending):
                # Calling into the SDK from the listener's thread is allowed.
                got.append((event.id, holder["c"].state, len(holder["c"].outbox())))
                done.set()

        with parley.Client(server_url="ws://127.0.0.1:9", token=self.token,
                           data_dir=os.path.join(self.work, "b"), auto_connect=False,
                           listener=listener) as c:
            holder["c"] = c
            mid = c.send("general", "hello")
            self.assertTrue(done.wait(5.0))
            self.assertEqual(got, [(mid, "disconnected", 1)])
            with self.assertRaises(parley.InvalidArgumentError):
                c.next_event(0)

    def _client(self, sub, **kw):
        return parley.Client(server_url="ws://127.0.0.1:9", token=self.token,
                             data_dir=os.path.join(self.work, sub), auto_connect=False, **kw)

    def test_close_from_the_listener_raises(self):
        raised = []
        done = threading.Event()
        holder = {}

        def listener(event):
            if isinstance(event, parley.MessagePending):
                try:
                    holder["c"].close()
                except parley.ParleyError as e:
                    raised.append(e)
                # The client is still usable afterwards.
                raised.append(holder["c"].state)
                done.set()

        c = self._client("e", listener=listener)
        holder["c"] = c
        try:
            c.send("general", "hello")
            self.assertTrue(done.wait(5.0))
            self.assertEqual(len(raised), 2, raised)
            self.assertIsInstance(raised[0], parley.InvalidArgumentError)
            self.assertEqual(raised[0].reason, "close_from_callback")
            self.assertEqual(raised[1], "disconnected")
        finally:
            c.close()
        self.assertNotIn(c._core, parley.client._LIVE)

    def test_dropped_on_the_listener_thread_is_freed_later(self):
        # The last reference goes inside the listener: __del__ must not free
        # there; the client is freed from another thread once it returned.
        done, go = threading.Event(), threading.Event()
        holder = {}
        where = []

        def listener(event):
            if isinstance(event, parley.MessagePending) and go.wait(5.0) and "c" in holder:
                core = holder["c"]._core
                holder.pop("c")  # the last reference: __del__ runs here
                where.append(core.freed.is_set())  # not freed on this thread
                done.set()

        c = self._client("f", listener=listener)
        core = c._core
        holder["c"] = c
        c.send("general", "hello")
        del c
        go.set()
        self.assertTrue(done.wait(5.0))
        self.assertEqual(where, [False])
        self.assertTrue(core.freed.wait(10.0))
        self.assertNotIn(core, parley.client._LIVE)

    def test_analytics_callable(self):
        # Offline: send() still puts the message in the outbox, which is a
        # "message_sent" event. From inside the callable the client refuses
        # every call (C returns at once, so this cannot deadlock), close()
        # included, and an exception raised there is swallowed.
        got, refused = [], []
        sent = threading.Event()
        holder = {}

        def analytics(e):
            got.append(e)
            if e.name != "message_sent" or "c" not in holder:
                return
            c = holder["c"]
            for call in (lambda: c.state, lambda: c.send("general", "x"), c.close):
                try:
                    call()
                    refused.append("no error")
                except parley.ParleyError as err:
                    refused.append((type(err), err.reason))
            sent.set()
            if len(refused) == 3:
                raise RuntimeError("expected: raised by a test's analytics callable")

        c = self._client("j", analytics=analytics)
        holder["c"] = c
        try:
            mid = c.send("general", "hello")
            self.assertTrue(sent.wait(5.0))
            self.assertEqual(refused, [(parley.InvalidArgumentError, "in_analytics_callback")] * 2
                             + [(parley.InvalidArgumentError, "close_from_callback")])
            e = next(e for e in got if e.name == "message_sent")
            self.assertEqual(e.labels.get("channel"), "general")
            self.assertEqual(e.labels.get("id"), mid)
            self.assertEqual(e.values.get("bytes"), 5.0)
            self.assertNotIn("hello", json.dumps([e.labels for e in got]))
            # The exception did not reach C: the client and the callable go on.
            sent.clear()
            c.send("general", "again")
            self.assertTrue(sent.wait(5.0))
            self.assertEqual(c.state, "disconnected")
        finally:
            c.close()
        self.assertNotIn(c._core, parley.client._LIVE)

    def test_calls_after_close_raise(self):
        c = self._client("g")
        c.close()
        for call in (lambda: c.state, lambda: c.send("general", "x"), lambda: c.next_event(0),
                     c.connect, c.outbox, lambda: c.join("general")):
            with self.assertRaises(parley.ParleyError) as cm:
                call()
            self.assertEqual(cm.exception.reason, "closed")
            self.assertIn("closed", cm.exception.message)
        c.close()  # idempotent

    def test_close_waits_for_a_call_in_flight(self):
        c = self._client("h")
        real = c._core.lib
        inside = threading.Event()
        order = []

        class SlowLib:  # client_state takes 0.5 s
            def __getattr__(self, name):
                fn = getattr(real, name)
                if name != "client_state":
                    return fn

                def slow(*args):
                    inside.set()
                    time.sleep(0.5)
                    rc = fn(*args)
                    order.append("call returned")
                    return rc
                return slow

        c._core.lib = SlowLib()
        got = []
        t = threading.Thread(target=lambda: got.append(c.state))
        t.start()
        self.assertTrue(inside.wait(5.0))
        c._core.lib = real  # the call in flight keeps its slow function
        c.close()
        order.append("close returned")
        t.join(5.0)
        self.assertEqual(order, ["call returned", "close returned"])
        self.assertEqual(got, ["disconnected"])
        with self.assertRaises(parley.ParleyError):
            c.state

    def test_close_ends_a_next_event_wait(self):
        c = self._client("i")
        list(c.events(0.2))  # drain what came at start
        got = []

        def wait():
            try:
                got.append(c.next_event(30.0))
            except parley.ParleyError as e:
                got.append(e)
        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.3)
        start = time.monotonic()
        c.close()
        t.join(5.0)
        self.assertFalse(t.is_alive())
        self.assertLess(time.monotonic() - start, 3.0)
        self.assertEqual(len(got), 1)
        self.assertIsInstance(got[0], parley.ParleyError)

    def test_python_transport_reports_a_failed_connect(self):
        # A port nobody listens on: the WebSocketsTransport reports the
        # failure and the client goes back to disconnected, with a reason.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        t = parley.WebSocketsTransport(open_timeout=5.0)
        with parley.Client(server_url="ws://127.0.0.1:%d" % port, token=self.token,
                           data_dir=os.path.join(self.work, "c"), transport=t,
                           reconnect_base=5.0, reconnect_max=10.0) as c:
            c.wait_for(lambda e: isinstance(e, parley.StateChanged)
                       and e.state == "connecting", 10.0)
            e = c.wait_for(lambda e: isinstance(e, parley.StateChanged)
                           and e.state == "disconnected", 10.0)
            self.assertEqual(e.reason.code, -7)  # offline
            self.assertTrue(e.reason.reason)
        with self.assertRaises(parley.InvalidArgumentError):  # one transport, one client
            parley.Client(server_url="ws://127.0.0.1:%d" % port, token=self.token,
                          data_dir=os.path.join(self.work, "d"), transport=t)


if __name__ == "__main__":
    unittest.main(verbosity=2)
