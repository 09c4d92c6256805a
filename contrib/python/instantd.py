"""instantd.py: a small Python client for instantd, the local-first InstantDB daemon.

Standard library only. It speaks the daemon's local protocol: newline-delimited
JSON on a Unix stream socket, each request carrying a "client-event-id" that the
daemon echoes in its replies and later pushes.

    import instantd

    with instantd.connect() as c:
        c.init(profile="notes")     # a configured profile, or init("APP-ID", server=...)
        print(c.query_once({"goals": {}})["data"])
        queued = c.transact([["update", "goals", some_uuid, {"title": "x"}]])
        print(queued["mutation-id"])
        for result in c.subscribe({"goals": {"todos": {}}}):
            print(result["data"])        # the first result, then one per change

One Client is one connection and is not thread-safe. Replies and pushes for
other requests that arrive while waiting are kept for their own readers, so
several subscriptions can be read from one client in any order.
"""

import collections
import json
import os
import socket
import struct
import uuid

__all__ = [
    "Client",
    "Subscription",
    "Room",
    "from_cache",
    "has_pending_writes",
    "partial",
    "InstantdError",
    "DaemonUnreachable",
    "connect",
    "default_socket_path",
]

# Larger lines than this from the daemon are treated as a broken connection.
MAX_LINE_BYTES = 256 * 1024 * 1024


class InstantdError(Exception):
    """An "error" message from the daemon (or a broken exchange).

    type is the protocol's error type ("invalid-query", "permission-denied",
    ...), message its text, hint an optional suggestion and reply the whole
    message as a dict (None when the error did not come from the daemon).
    """

    def __init__(self, type_, message, hint=None, reply=None):
        self.type = type_
        self.message = message
        self.hint = hint
        self.reply = reply
        text = "%s: %s" % (type_, message)
        if hint:
            text += " (%s)" % hint
        super().__init__(text)


class DaemonUnreachable(InstantdError, ConnectionError):
    """The socket does not exist, refuses connections or closed."""

    def __init__(self, message):
        super().__init__("unreachable", message)


def default_socket_path():
    """$INSTANTD_SOCKET, else $XDG_RUNTIME_DIR/instantd/socket, else
    /run/user/UID/instantd/socket (where the user's runtime directory is)."""
    path = os.environ.get("INSTANTD_SOCKET")
    if path:
        return path
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "instantd", "socket")
    return "/run/user/%d/instantd/socket" % os.getuid()


def from_cache(result):
    """True when a query result came from the local mirror and the server has
    not answered for the query in this session yet."""
    return result.get("from-cache") is True


def has_pending_writes(result):
    """True when unconfirmed local writes contributed to a query result."""
    return result.get("has-pending-writes") is True


def partial(result):
    """True when the server never answered the query: the daemon (offline, or
    with cache-only) answered it from every mirrored triple, so it may miss
    what only the server has. A subscription's later server answer is not."""
    return result.get("partial") is True


def connect(path=None, timeout=30.0):
    """Open a connection to the daemon: a Client (usable as a context manager)."""
    client = Client(path, timeout)
    client.connect()
    return client


class Subscription:
    """The results of one subscribed query: iterate to get the first result
    (add-query-ok) and then each change (refresh-ok), as message dicts with
    "data". close() (or leaving a with block) unsubscribes."""

    def __init__(self, client, client_event_id, q):
        self._client = client
        self.client_event_id = client_event_id
        self.q = q
        self.closed = False

    def __iter__(self):
        return self

    def __next__(self):
        if self.closed:
            raise StopIteration
        return self._client._next_for(self.client_event_id, _RESULT_OPS)

    def next(self, timeout=None):
        """The next result, waiting at most timeout seconds (None = the
        client's timeout); raises TimeoutError."""
        return self._client._next_for(self.client_event_id, _RESULT_OPS, timeout)

    def close(self):
        """Unsubscribe. remove-query names the subscription by the add-query's
        client-event-id, so the daemon answers on that id too."""
        if self.closed:
            return
        self.closed = True
        client = self._client
        try:
            if client._sock is not None:
                client._pending.pop(self.client_event_id, None)
                client._send({"op": "remove-query", "q": self.q}, self.client_event_id)
                client._next_for(self.client_event_id, ("remove-query-ok",))
        finally:
            client._forget(self.client_event_id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


_RESULT_OPS = ("add-query-ok", "refresh-ok")


class Room:
    """A joined room: read its presence changes and broadcasts. Pushes for
    the room are kept until read; leave() (or leaving a with block) leaves."""

    def __init__(self, client, room_id, joined):
        self._client = client
        self.room_id = room_id
        self.joined = joined        # the join-room-ok message

    def next_presence(self, timeout=None):
        """The next refresh-presence of this room ("peers" maps peer ids to
        their entries); raises TimeoutError."""
        return self._client._next_push("refresh-presence", self.room_id, timeout)

    def next_broadcast(self, timeout=None):
        """The next server-broadcast to this room ("topic", "data")."""
        return self._client._next_push("server-broadcast", self.room_id, timeout)

    def set_presence(self, data):
        return self._client.set_presence(self.room_id, data)

    def broadcast(self, topic, data):
        return self._client.broadcast(self.room_id, topic, data)

    def leave(self):
        return self._client.leave_room(self.room_id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._client._sock is not None:
            self.leave()
        return False


class Client:
    """One connection to instantd."""

    def __init__(self, path=None, timeout=30.0):
        self.path = path or default_socket_path()
        self.timeout = timeout
        self._sock = None
        self._buf = bytearray()
        # Messages read while waiting for something else, by client-event-id;
        # messages without one (pushes not tied to a request) under None.
        self._pending = collections.defaultdict(collections.deque)
        # The client-event-ids whose replies are still wanted; messages for
        # any other id (a finished request's late pushes) are dropped.
        self._active = set()

    # -- connection ---------------------------------------------------------

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as e:
            s.close()
            raise DaemonUnreachable("cannot connect to %s: %s" % (self.path, e.strerror)) from e
        except OSError:
            s.close()
            raise
        # Only our own daemon: another user's would see our queries and writes.
        pid_uid_gid = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        uid = struct.unpack("3i", pid_uid_gid)[1]
        if uid != os.geteuid():
            s.close()
            raise DaemonUnreachable("refusing %s: it is served by uid %d, not by you (uid %d)"
                                    % (self.path, uid, os.geteuid()))
        self._sock = s
        return self

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        if self._sock is None:
            self.connect()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- requests -----------------------------------------------------------

    def init(self, app_id=None, api_uri=None, refresh_token=None, client_name=None,
             profile=None, server=None, **extra):
        """The first request: choose the app by its id or a configured profile
        by name (and optionally the server's sync URL, ws:// or wss://).
        Returns init-ok."""
        if app_id is None and profile is None:
            raise ValueError("give app_id or profile")
        msg = {"op": "init"}
        if app_id is not None:
            msg["app-id"] = app_id
        if profile is not None:
            msg["profile"] = profile
        if server is not None:
            msg["server"] = server
        if api_uri is not None:
            msg["api-uri"] = api_uri
        if refresh_token is not None:
            msg["refresh-token"] = refresh_token
        if client_name is not None:
            msg["client-name"] = client_name
        msg.update({k.replace("_", "-"): v for k, v in extra.items()})
        return self._request(msg, ("init-ok",))

    def status(self):
        """Connection state, server, user, queue depth, ...: the status message."""
        return self._request({"op": "status"}, ("status",))

    def query_once(self, q, policy=None, allow_partial=True):
        """Evaluate q once; the query-ok message (its "data" is the result).
        policy: "cache-first" (default), "network-only" or "cache-only".
        allow_partial=False: a query the mirror does not hold raises "offline"
        ("not-found" for cache-only) instead of a partial answer (partial())."""
        msg = {"op": "query-once", "q": q}
        if policy is not None:
            msg["policy"] = policy
        if not allow_partial:
            msg["allow-partial"] = False
        return self._request(msg, ("query-ok",))

    def subscribe(self, q, allow_partial=True):
        """Subscribe to q: a Subscription whose iteration yields results.
        allow_partial=False: offline, wait for the server rather than get a
        first answer from the whole mirror for a query it does not hold."""
        msg = {"op": "add-query", "q": q}
        if not allow_partial:
            msg["allow-partial"] = False
        ceid = self._send(msg)
        return Subscription(self, ceid, q)

    def transact(self, ops=None, tx_steps=None, wait=False, timeout=None):
        """Queue writes given as InstaML ops ([[action, ns, id, args], ...]) or
        raw tx-steps. Returns transact-queued (with "mutation-id") as soon as
        the daemon has committed them; with wait=True, waits for the server's
        transact-ok instead (an "error" is raised as InstantdError)."""
        if (ops is None) == (tx_steps is None):
            raise ValueError("give exactly one of ops and tx_steps")
        msg = {"op": "transact"}
        if ops is not None:
            msg["ops"] = ops
        else:
            msg["tx-steps"] = tx_steps
        ceid = self._send(msg)
        queued = self._next_for(ceid, ("transact-queued",), timeout)
        if not wait:
            self._forget(ceid)
            return queued
        try:
            return self._next_for(ceid, ("transact-ok",), timeout)
        finally:
            self._forget(ceid)

    def list_mutations(self):
        """The outbox and the failed list: the mutations message."""
        return self._request({"op": "list-mutations"}, ("mutations",))

    def retry_mutation(self, mutation_id):
        return self._request({"op": "retry-mutation", "mutation-id": mutation_id},
                             ("retry-mutation-ok",))

    def discard_mutation(self, mutation_id):
        return self._request({"op": "discard-mutation", "mutation-id": mutation_id},
                             ("discard-mutation-ok",))

    # -- signing in (after init; the daemon keeps the refresh token) ---------

    def send_magic_code(self, email):
        """Ask the server to mail a sign-in code to email."""
        return self._request({"op": "send-magic-code", "email": email}, ("send-magic-code-ok",))

    def sign_in_magic_code(self, email, code):
        """Sign in with the mailed code; sign-in-ok with "user"."""
        return self._request({"op": "sign-in", "method": "magic-code", "email": email,
                              "code": code}, ("sign-in-ok",))

    def sign_in_guest(self):
        """Sign in as a guest (a later magic-code sign-in upgrades it)."""
        return self._request({"op": "sign-in", "method": "guest"}, ("sign-in-ok",))

    def sign_in_token(self, refresh_token):
        """Adopt an existing refresh token once the server accepts it."""
        return self._request({"op": "sign-in", "method": "token",
                              "refresh-token": refresh_token}, ("sign-in-ok",))

    def sign_out(self):
        """Sign out on the server; the token is forgotten locally in any case."""
        return self._request({"op": "sign-out"}, ("sign-out-ok",))

    def whoami(self):
        """{"user", "signed-in", "state"}, answered without asking the server."""
        return self._request({"op": "whoami"}, ("whoami",))

    # -- rooms ----------------------------------------------------------------

    def join_room(self, room_id, room_type=None, presence=None):
        """Join room_id as a peer of this connection: a Room to read its
        presence and broadcasts from."""
        msg = {"op": "join-room", "room-id": room_id}
        if room_type is not None:
            msg["room-type"] = room_type
        if presence is not None:
            msg["data"] = presence
        self._active.add(None)      # keep the room's pushes for Room's readers
        return Room(self, room_id, self._request(msg, ("join-room-ok",)))

    def leave_room(self, room_id):
        return self._request({"op": "leave-room", "room-id": room_id}, ("leave-room-ok",))

    def set_presence(self, room_id, data):
        """Merge data into this peer's presence in room_id."""
        return self._request({"op": "set-presence", "room-id": room_id, "data": data},
                             ("set-presence-ok",))

    def broadcast(self, room_id, topic, data):
        """Send data to the other peers of room_id under topic (not queued:
        raises InstantdError "offline" when the room is not connected)."""
        return self._request({"op": "client-broadcast", "room-id": room_id, "topic": topic,
                              "data": data}, ("client-broadcast-ok",))

    def request(self, msg, reply_ops):
        """Send any request dict and return the first reply whose op is in
        reply_ops (an "error" reply raises InstantdError)."""
        return self._request(dict(msg), tuple(reply_ops))

    # -- plumbing -----------------------------------------------------------

    def _request(self, msg, reply_ops, timeout=None):
        ceid = self._send(msg)
        try:
            return self._next_for(ceid, reply_ops, timeout)
        finally:
            self._forget(ceid)

    def _send(self, msg, ceid=None):
        if self._sock is None:
            raise DaemonUnreachable("not connected")
        if ceid is None:
            ceid = str(uuid.uuid4())
        msg["client-event-id"] = ceid
        self._active.add(ceid)
        line = json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
        try:
            self._sock.sendall(line)
        except (BrokenPipeError, ConnectionResetError) as e:
            self.close()
            raise DaemonUnreachable("connection lost: %s" % e.strerror) from e
        return ceid

    def _forget(self, ceid):
        """Drop what is queued for ceid and ignore its later messages."""
        self._pending.pop(ceid, None)
        self._active.discard(ceid)

    def _next_for(self, ceid, ops, timeout=None):
        """The next message for ceid whose op is in ops; an "error" for ceid
        (or one tied to no request) raises InstantdError. Other kinds of
        message for ceid (a late refresh-ok while waiting for transact-ok)
        are skipped."""
        while True:
            q = self._pending.get(ceid)
            if q:
                msg = q.popleft()
            else:
                msg = self._read(timeout)
                key = msg.get("client-event-id")
                if key is None and msg.get("op") == "error":
                    # Not tied to a request (a framing error): the daemon
                    # closes the connection after it.
                    raise InstantdError(msg.get("type", "error"), msg.get("message", ""),
                                        msg.get("hint"), msg)
                if key != ceid:
                    if key in self._active:
                        self._pending[key].append(msg)
                    continue
            op = msg.get("op")
            if op == "error":
                raise InstantdError(msg.get("type", "error"), msg.get("message", ""),
                                    msg.get("hint"), msg)
            if op in ops:
                return msg

    def _next_push(self, op, room_id, timeout=None):
        """The next push (no client-event-id) with this op for room_id; other
        pushes stay queued for their readers."""
        while True:
            q = self._pending.get(None)
            for i, msg in enumerate(q or ()):
                if msg.get("op") == op and msg.get("room-id") == room_id:
                    del q[i]
                    return msg
            msg = self._read(timeout)
            key = msg.get("client-event-id")
            if key is None and msg.get("op") == "error":
                raise InstantdError(msg.get("type", "error"), msg.get("message", ""),
                                    msg.get("hint"), msg)
            if key is None and msg.get("op") == op and msg.get("room-id") == room_id:
                return msg
            if key in self._active:
                self._pending[key].append(msg)

    def _read(self, timeout=None):
        if self._sock is None:
            raise DaemonUnreachable("not connected")
        self._sock.settimeout(self.timeout if timeout is None else timeout)
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[:nl + 1]
                if not line.strip():
                    continue
                try:
                    msg = json.loads(line.decode("utf-8"))
                except ValueError as e:
                    raise InstantdError("invalid-json", "bad line from the daemon: %s" % e)
                if not isinstance(msg, dict):
                    raise InstantdError("invalid-json", "a message from the daemon is not an object")
                return msg
            if len(self._buf) > MAX_LINE_BYTES:
                self.close()
                raise InstantdError("too-large", "a line from the daemon exceeds %d bytes"
                                    % MAX_LINE_BYTES)
            try:
                data = self._sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no answer from instantd within %s s"
                                   % (self.timeout if timeout is None else timeout)) from None
            except ConnectionResetError as e:
                self.close()
                raise DaemonUnreachable("connection lost: %s" % e.strerror) from e
            if not data:
                self.close()
                raise DaemonUnreachable("the daemon closed the connection")
            self._buf += data
