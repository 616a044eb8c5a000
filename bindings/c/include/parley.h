/* parley.h - the C ABI of Parley, for mobile apps and other languages.
 *
 *   parley_client_options o = PARLEY_CLIENT_OPTIONS_INIT;
 *   o.server_url = "ws://127.0.0.1:7700";
 *   o.token = token;
 *   o.data_dir = "./alice";
 *   parley_client *c = NULL;
 *   if (parley_client_create(&c, &o) != PARLEY_OK) die(parley_error_last());
 *   uint64_t req;
 *   parley_channel_join(&req, c, "general");
 *   for (;;) {
 *     parley_event *ev = NULL;
 *     if (parley_client_next_event(&ev, c, 1000) != PARLEY_OK || ev == NULL) continue;
 *     puts(ev->json);
 *     parley_event_free(ev);
 *   }
 *   parley_client_free(c);
 *
 * C99; usable from C++ too. docs/c-api.md is the guide; this header is the reference.
 *
 * CONVENTIONS
 * - Functions are parley_<object>_<verb>(); handles are opaque.
 * - Almost every function returns an int status: PARLEY_OK (0) or a negative
 *   PARLEY_E_* code (one per kind of failure of the C++ API, plus
 *   PARLEY_E_NOMEM). After a failure, parley_error_last() is a one-line message
 *   and parley_error_last_reason() the stable machine-readable reason (such as
 *   "channel_exists"); both are thread-local. They describe the last failure
 *   on this thread (a success does not clear them), and the pointers are
 *   valid until the next call into Parley on the same thread.
 * - Outputs come first in the parameter list. On failure an output is left
 *   NULL / 0. No C++ exception ever leaves a function of this header.
 * - Asynchronous calls ("requests") return a request id through
 *   `uint64_t *out_request` (may be NULL when not wanted) and complete later
 *   with an event whose `request` is that id.
 * - Strings passed in are UTF-8, NUL-terminated and only read during the call.
 *
 * OWNERSHIP (the one rule)
 *   What comes back through an `out` pointer belongs to the caller and is freed
 *   with that type's _free function (char * strings with parley_string_free);
 *   every _free accepts NULL. What comes back directly as a `const char *`
 *   (parley_error_last, parley_version, parley_status_name, ...) is borrowed:
 *   static, or valid until the next call into Parley on the same thread.
 *
 * THREADS
 *   Every function may be called from any thread. A parley_client must not be
 *   used after parley_client_free started, and must not be freed twice.
 *   Callbacks say on which thread they run (see on_event and the transport).
 */
#ifndef PARLEY_H
#define PARLEY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define PARLEY_API
#elif defined(__GNUC__)
#define PARLEY_API __attribute__((visibility("default")))
#else
#define PARLEY_API
#endif

/* Version of this ABI: the major number of the library's soname. */
#define PARLEY_ABI_VERSION 0

/* ---- Status codes ------------------------------------------------------- */

/* One per parley::StatusCode (its value negated), plus PARLEY_E_NOMEM. */
#define PARLEY_OK 0
#define PARLEY_E_INVALID_ARGUMENT (-1) /* bad name, id, text, option or NULL */
#define PARLEY_E_NOT_FOUND (-2)        /* no such channel; not known to the cache */
#define PARLEY_E_ALREADY_EXISTS (-3)   /* channel exists */
#define PARLEY_E_UNAUTHENTICATED (-4)  /* token forged, malformed or refused */
#define PARLEY_E_TOKEN_EXPIRED (-5)    /* token past its expiry */
#define PARLEY_E_FORBIDDEN (-6)        /* not a member, not allowed */
#define PARLEY_E_OFFLINE (-7)          /* needs the server and none is reachable */
#define PARLEY_E_TIMEOUT (-8)          /* no answer in time */
#define PARLEY_E_RATE_LIMITED (-9)     /* slowed down by the server */
#define PARLEY_E_PROTOCOL (-10)        /* the peer broke the protocol */
#define PARLEY_E_CORRUPT (-11)         /* corrupt cache or data */
#define PARLEY_E_IO (-12)              /* file system or SQLite failure */
#define PARLEY_E_CANCELLED (-13)       /* the client was closed while the request was open */
#define PARLEY_E_INTERNAL (-14)        /* anything else (a bug) */
#define PARLEY_E_NOMEM (-15)           /* out of memory */

/* The thread's last failure: a one-line message, and its stable reason
 * ("channel_exists", "invalid_name", "offline", ...). "" when none. Borrowed. */
PARLEY_API const char *parley_error_last(void);
PARLEY_API const char *parley_error_last_reason(void);
/* "ok", "invalid_argument", ..., "nomem"; "unknown" for other values. Static. */
PARLEY_API const char *parley_status_name(int status);
/* The library's version, such as "0.1.0". Static. */
PARLEY_API const char *parley_version(void);
/* PARLEY_ABI_VERSION of the library actually loaded. */
PARLEY_API int parley_abi_version(void);
/* Frees a string returned through an out pointer. Accepts NULL. */
PARLEY_API void parley_string_free(char *s);

/* ---- Enumerations (values fixed forever) ----------------------------------- */

/* Lifecycle: disconnected -> connecting -> authenticating -> syncing -> ready. */
#define PARLEY_STATE_DISCONNECTED 0
#define PARLEY_STATE_CONNECTING 1
#define PARLEY_STATE_AUTHENTICATING 2
#define PARLEY_STATE_SYNCING 3
#define PARLEY_STATE_READY 4

#define PARLEY_CHANNEL_PUBLIC 0
#define PARLEY_CHANNEL_PRIVATE 1
#define PARLEY_CHANNEL_DIRECT 2 /* only through parley_direct_open */
#define PARLEY_CHANNEL_BROADCAST 3

#define PARLEY_ROLE_OWNER 0
#define PARLEY_ROLE_ADMIN 1
#define PARLEY_ROLE_MODERATOR 2
#define PARLEY_ROLE_MEMBER 3
#define PARLEY_ROLE_READ_ONLY 4

#define PARLEY_PERMISSION_POST 0
#define PARLEY_PERMISSION_INVITE 1
#define PARLEY_PERMISSION_REMOVE 2
#define PARLEY_PERMISSION_BAN 3
#define PARLEY_PERMISSION_MUTE 4
#define PARLEY_PERMISSION_EDIT_META 5
#define PARLEY_PERMISSION_DELETE_OTHERS 6
#define PARLEY_PERMISSION_PIN 7
#define PARLEY_PERMISSION_CHANGE_ROLES 8

/* The permission table the server enforces (docs/channels.md, "Permissions"),
 * so that a UI offers only what will be accepted; no client, no network.
 * *out_allowed: 1 when `role` (PARLEY_ROLE_*) grants `permission`
 * (PARLEY_PERMISSION_*) in a channel of `kind` (PARLEY_CHANNEL_*), else 0.
 * Acting on another member (remove, ban, mute, change their role, delete their
 * message) also needs a higher rank than theirs: parley_role_outranks.
 * PARLEY_E_INVALID_ARGUMENT for a value outside those constants. */
PARLEY_API int parley_role_allows(int *out_allowed, int kind, int role, int permission);
/* *out: 1 when role `a` ranks strictly above role `b`
 * (owner > admin > moderator > member > read_only), else 0. */
PARLEY_API int parley_role_outranks(int *out, int a, int b);

/* PARLEY_OK when `name` is a valid channel name (user name), else
 * PARLEY_E_INVALID_ARGUMENT with parley_error_last() saying what is wrong with
 * it: the rules the server applies (docs/channels.md), checked before any
 * request is made. */
PARLEY_API int parley_channel_name_check(const char *name);
PARLEY_API int parley_user_name_check(const char *name);

#define PARLEY_NOTIFY_ALL 0
#define PARLEY_NOTIFY_MENTIONS 1
#define PARLEY_NOTIFY_NONE 2

/* How this user chooses to appear (parley_presence_set). */
#define PARLEY_PRESENCE_MODE_ONLINE 0
#define PARLEY_PRESENCE_MODE_AWAY 1
#define PARLEY_PRESENCE_MODE_INVISIBLE 2

/* The names of these constants, as the events' JSON and the protocol spell
 * them, and back: `set` says which group. */
#define PARLEY_NAMES_STATE 1         /* PARLEY_STATE_*: "disconnected" ... "ready" */
#define PARLEY_NAMES_CHANNEL_KIND 2  /* PARLEY_CHANNEL_*: "public", "private", ... */
#define PARLEY_NAMES_ROLE 3          /* PARLEY_ROLE_*: "owner" ... "read_only" */
#define PARLEY_NAMES_PERMISSION 4    /* PARLEY_PERMISSION_*: "post" ... "change_roles" */
#define PARLEY_NAMES_NOTIFY 5        /* PARLEY_NOTIFY_*: "all", "mentions", "none" */
#define PARLEY_NAMES_PRESENCE_MODE 6 /* PARLEY_PRESENCE_MODE_*: "online", "away", "invisible" */
/* The name of constant `value` of group `set`; static. NULL for a value or a
 * set that does not exist. */
PARLEY_API const char *parley_name(int set, int value);
/* *out: the constant of group `set` named `name`. PARLEY_E_INVALID_ARGUMENT
 * (reason "unknown_name") for a name the group does not have. */
PARLEY_API int parley_parse(int *out, int set, const char *name);

/* ---- Events ---------------------------------------------------------------- */

/* parley_event.kind: one per event of the C++ API (parley::Event). */
#define PARLEY_EVENT_STATE_CHANGED 1
#define PARLEY_EVENT_MESSAGE_RECEIVED 2
#define PARLEY_EVENT_MESSAGE_PENDING 3
#define PARLEY_EVENT_MESSAGE_SENT 4
#define PARLEY_EVENT_MESSAGE_FAILED 5
#define PARLEY_EVENT_CHANNEL_REQUEST_DONE 6
#define PARLEY_EVENT_HISTORY_LOADED 7
#define PARLEY_EVENT_TYPING_CHANGED 8
#define PARLEY_EVENT_RECEIPT_UPDATED 9
#define PARLEY_EVENT_SYNC_PROGRESS 10
#define PARLEY_EVENT_CHANNEL_INFO_LOADED 11
#define PARLEY_EVENT_NOTIFICATION_RECEIVED 12
#define PARLEY_EVENT_UNREAD_CHANGED 13
#define PARLEY_EVENT_NOTIFICATION_LEVEL_CHANGED 14
#define PARLEY_EVENT_PRESENCE_CHANGED 15
#define PARLEY_EVENT_PRESENCE_NOTIFIED 16
#define PARLEY_EVENT_ONLINE_COUNT_CHANGED 17
#define PARLEY_EVENT_IDENTITY_CHANGED 18
#define PARLEY_EVENT_SAFETY_NUMBER_LOADED 19
#define PARLEY_EVENT_SESSION_RESET 20
#define PARLEY_EVENT_MESSAGE_UPDATED 21
#define PARLEY_EVENT_DEVICES_LOADED 22
#define PARLEY_EVENT_BLOCKED_USERS_LOADED 23
#define PARLEY_EVENT_DOCUMENT_CHANGED 24   /* a document's text changed (parley_doc_*) */
#define PARLEY_EVENT_DOCUMENT_AWARENESS 25 /* another participant's cursor */
#define PARLEY_EVENT_DOCUMENTS_LOADED 26   /* completes parley_doc_list */
#define PARLEY_EVENT_DOCUMENT_FAILED 27    /* the server refused this device's edits */

/* One event. Allocated by Parley: read it, then parley_event_free it (the
 * on_event callback's event is borrowed for the duration of the call instead).
 * New fields are only ever appended; apps never allocate this struct. */
typedef struct parley_event {
  int kind;           /* PARLEY_EVENT_* (a newer library may add kinds) */
  int status;         /* PARLEY_OK, or the PARLEY_E_* of a failed request */
  uint64_t request;   /* the request id this event completes; 0 for others */
  const char *reason; /* stable reason of `status` ("ok" when it is 0); for
                         STATE_CHANGED why the state changed */
  const char *message; /* one-line message of `status`; "" when none */
  const char *channel; /* the channel concerned; "" when none */
  /* The whole event as one JSON object, {"v":1,"type":"message_received",...}.
   * docs/c-api.md, "Events as JSON", lists every type and field. */
  const char *json;
  size_t json_len;
} parley_event;

/* Frees an event from parley_client_next_event. Accepts NULL. */
PARLEY_API void parley_event_free(parley_event *event);
/* The event type name as in the JSON ("message_received", ...); "unknown". Static. */
PARLEY_API const char *parley_event_kind_name(int kind);

/* ---- App-supplied transport -------------------------------------------------- */

/* The app's own way to carry frames (for example NSURLSessionWebSocketTask or
 * OkHttp's WebSocket), set in parley_client_options.transport. Contract:
 *
 * - Parley calls open, send and close on the client's internal thread, one at
 *   a time. They must return quickly (queue the work on the app's own socket).
 *   They may call parley_transport_deliver_frame and parley_transport_set_state,
 *   and the client functions that only queue work (connect, disconnect,
 *   requests that return a request id, ...). A function that waits on the
 *   client's thread (parley_message_send, parley_unread_badge,
 *   parley_client_next_event, ...) returns PARLEY_E_INVALID_ARGUMENT with
 *   reason "in_transport_callback" there, and parley_client_free is refused
 *   (nothing happens; the same reason in parley_error_last_reason).
 * - open(transport, url, subprotocol, user_data): connect to `url` (ws:// or
 *   wss://) offering the WebSocket subprotocol `subprotocol`. `transport` is
 *   the handle to report back with for this connection only: every open()
 *   gets a new handle, and what is reported on the handle of an earlier
 *   connection (a late frame or CLOSED of the previous socket) is dropped.
 *   Each handle stays valid until parley_client_free returns.
 *   Report the outcome with parley_transport_set_state: PARLEY_TRANSPORT_OPEN
 *   once open, PARLEY_TRANSPORT_CLOSED if it failed. At most one connection at
 *   a time: Parley closes the previous one before opening another.
 * - send(frame, len, user_data): queue one text frame (UTF-8, not
 *   NUL-terminated); frames must leave in the order queued. The bytes are
 *   Parley's and valid only during the call: copy them.
 * - close(code, reason, user_data): close the connection with a close frame
 *   (`code`, `reason`). Report PARLEY_TRANSPORT_CLOSED when it has closed (or
 *   right away); no more frames of that connection should be delivered. The
 *   client gets exactly one closed notification per connection: the app's
 *   CLOSED if it came first (even just before close), else Parley's own.
 * - From any thread, the app calls parley_transport_deliver_frame for each
 *   complete text frame received (Parley copies the bytes before it returns;
 *   the app keeps ownership of its buffer) and parley_transport_set_state for
 *   open and closed. Both only queue and wake the client's thread: they never
 *   block on the network and may be called from inside open/send/close.
 *   Delivered frames are applied in the order delivered; buffering is
 *   unbounded on Parley's side (the app's WebSocket provides the flow control).
 * - After parley_client_free returns no callback is called any more, and the
 *   transport handle must not be used: stop the socket's callbacks first, or
 *   serialize them with the free (for example on one dispatch queue).
 */
typedef struct parley_transport parley_transport;

#define PARLEY_TRANSPORT_OPEN 1
#define PARLEY_TRANSPORT_CLOSED 2

/* 2: user_data last. Version 1 (pre-release, user_data first) is refused. */
#define PARLEY_TRANSPORT_CALLBACKS_VERSION 2

typedef struct parley_transport_callbacks {
  uint32_t version; /* PARLEY_TRANSPORT_CALLBACKS_VERSION */
  void *user_data;  /* passed last to each callback */
  void (*open)(parley_transport *transport, const char *url, const char *subprotocol,
               void *user_data);
  void (*send)(const char *frame, size_t len, void *user_data);
  void (*close)(int code, const char *reason, void *user_data);
} parley_transport_callbacks;

/* One complete text frame received; copied before return. Any thread.
 * PARLEY_E_INVALID_ARGUMENT for a NULL transport, or NULL frame with len > 0. */
PARLEY_API int parley_transport_deliver_frame(parley_transport *transport, const char *frame,
                                              size_t len);
/* The connection opened (PARLEY_TRANSPORT_OPEN; code and reason ignored) or
 * closed or failed to open (PARLEY_TRANSPORT_CLOSED with the WebSocket close
 * code, 0 or 1006 for a network failure, and a reason string or NULL). Any thread. */
PARLEY_API int parley_transport_set_state(parley_transport *transport, int state, int code,
                                          const char *reason);

/* ---- Client ---------------------------------------------------------------- */

typedef struct parley_client parley_client;

/* Called for every event instead of parley_client_next_event, on a thread the
 * client owns (never the app's, never while Parley holds a lock), one event at
 * a time, in order. `event` is borrowed for the call. It may run before
 * parley_client_create returns, but only once *out has been stored. Calling
 * the functions of this header from inside it is allowed, except
 * parley_client_free on this same client: that is refused (nothing happens;
 * parley_error_last_reason() is "in_event_callback"); free the client from
 * another thread. */
typedef void (*parley_event_callback)(const parley_event *event, void *user_data);

/* Called with each analytics event (docs/analytics.md): a JSON object
 * {"v":1,"name":"message_sent","ts_ms":...,"labels":{"channel":"general",...},
 * "values":{"bytes":42,...}} that never carries message text or other content,
 * borrowed for the call. It runs on the client's internal thread, one event at
 * a time, and must return quickly (queue the upload); it must not call this
 * header's functions on any client: they return PARLEY_E_INVALID_ARGUMENT with
 * reason "in_analytics_callback" there, and parley_client_free is refused. */
typedef void (*parley_analytics_callback)(const char *json, void *user_data);

/* 2: on_event takes user_data last, on_analytics exists. Version 1 came from
 * a pre-release parley.h whose callbacks took user_data first: refused.
 * 3: document_name and document_color appended (a version 2 struct is still
 * accepted: they are not read, and the defaults apply). */
#define PARLEY_CLIENT_OPTIONS_VERSION 3

/* How a client is set up. Start from PARLEY_CLIENT_OPTIONS_INIT (or
 * parley_client_options_init) and change the fields you need; fields are only
 * ever appended, and `version` tells the library which exist. Strings are
 * copied by parley_client_create. */
typedef struct parley_client_options {
  uint32_t version;       /* PARLEY_CLIENT_OPTIONS_VERSION */
  const char *server_url; /* ws://host:port[/path] or wss://... */
  const char *token;      /* minted by the app's backend */
  const char *data_dir;   /* the cache of this account and device; created if missing */
  const char *device_id;  /* 1-64 characters; NULL: generated once and kept */
  uint64_t cache_max_bytes;    /* 0: no limit; else at least 1 MiB */
  uint64_t cache_max_messages; /* 0: no limit */
  int rebuild_corrupt_cache;   /* bool */
  int auto_connect;            /* bool: connect at create */
  int notifications;           /* bool: ask for notification traffic */
  int presence;                /* bool: ask for presence traffic */
  int64_t request_timeout_ms;
  int64_t reconnect_base_ms;
  int64_t reconnect_max_ms;
  int64_t heartbeat_interval_s;
  int64_t dead_connection_timeout_s;
  uint32_t sync_page_size;
  uint64_t max_incoming_frame; /* bytes */
  /* Optional listener (see parley_event_callback); NULL: pull with
   * parley_client_next_event. */
  parley_event_callback on_event;
  void *on_event_user_data;
  /* Optional app-supplied transport, copied at create; NULL: the built-in
   * WebSocket. */
  const parley_transport_callbacks *transport;
  /* Optional analytics events (see parley_analytics_callback); NULL: none. */
  parley_analytics_callback on_analytics;
  void *on_analytics_user_data;
  /* Version 3. How this user appears beside their cursor in a collaborative
   * document (parley_doc_set_cursor): a display name (up to 64 bytes; NULL
   * or "": the user name) and a colour "#rrggbb" (NULL or "": none, the
   * other apps pick one). */
  const char *document_name;
  const char *document_color;
} parley_client_options;

#define PARLEY_CLIENT_OPTIONS_INIT                                                              \
  {                                                                                             \
    PARLEY_CLIENT_OPTIONS_VERSION, NULL, NULL, NULL, NULL, (uint64_t)256 << 20, 0, 0, 1, 1, 1, \
        10000, 500, 30000, 20, 45, 500, (uint64_t)4 << 20, NULL, NULL, NULL, NULL, NULL, NULL, \
        NULL                                                                                    \
  }

/* Fills `out` with the same defaults as PARLEY_CLIENT_OPTIONS_INIT (for
 * languages without C macros). */
PARLEY_API void parley_client_options_init(parley_client_options *out);

/* Opens (or creates) the cache in options->data_dir and starts the client.
 * PARLEY_E_INVALID_ARGUMENT for bad options, PARLEY_E_CORRUPT or PARLEY_E_IO
 * for a cache that cannot be used. */
PARLEY_API int parley_client_create(parley_client **out, const parley_client_options *options);
/* Closes the connection and stops the client; the outbox stays in the cache.
 * Accepts NULL. From the moment it starts, on_event and on_analytics get no
 * more events and every other function on this client returns
 * PARLEY_E_CANCELLED (reason "client_closing") without waiting; calls already
 * in progress (from on_event, say) are waited for. When it returns, no
 * callback of this client runs any more. Refused from inside this client's
 * on_event callback, an analytics callback or a transport callback (see
 * there). */
PARLEY_API void parley_client_free(parley_client *client);

/* Starts connecting and keeps the connection up (reconnecting with backoff). */
PARLEY_API int parley_client_connect(parley_client *client);
/* Closes the connection and stops reconnecting. */
PARLEY_API int parley_client_disconnect(parley_client *client);
/* The network came back (or the app came to the foreground): connect now. */
PARLEY_API int parley_client_reconnect_now(parley_client *client);
/* Replaces the token (after token_expired, for example) and reconnects. */
PARLEY_API int parley_client_set_token(parley_client *client, const char *token);
/* PARLEY_STATE_*. */
PARLEY_API int parley_client_state(int *out_state, parley_client *client);
/* The user named by the token. */
PARLEY_API int parley_client_user(char **out_user, parley_client *client);

/* The next event, waiting at most timeout_ms (0 or negative: do not wait). Returns
 * PARLEY_OK with *out NULL when none came in time; PARLEY_E_INVALID_ARGUMENT
 * when the client has an on_event callback. Free the event with parley_event_free. */
PARLEY_API int parley_client_next_event(parley_event **out, parley_client *client,
                                        int timeout_ms);

/* What the cache knows, as JSON: the channels this user is in,
 * [{"name":..,"last_seq":..,"read_to":..,"member":true},...]; the outbox,
 * [{"channel":..,"id":..,"text":..,"state":"pending","error":""},...]; and
 * the cache's size, {"file_bytes":..,"wal_bytes":..,"events":..,"evicted":..}. */
PARLEY_API int parley_channel_list(char **out_json, parley_client *client);
PARLEY_API int parley_client_outbox(char **out_json, parley_client *client);
PARLEY_API int parley_client_cache_usage(char **out_json, parley_client *client);

/* ---- Channels -------------------------------------------------------------- */
/* Requests below complete with PARLEY_EVENT_CHANNEL_REQUEST_DONE carrying the
 * same request id (unless noted). Requests made offline wait for a connection
 * up to request_timeout_ms, then fail with PARLEY_E_OFFLINE. A NULL pointer,
 * an unknown enum value or bad meta JSON fails the call itself with
 * PARLEY_E_INVALID_ARGUMENT; anything else (a bad channel or user name, a
 * refusal of the server) fails the request: its completion event carries the
 * status and reason (such as "invalid_name" or "channel_exists"). */

/* Creates a channel of `kind` (PARLEY_CHANNEL_PUBLIC, _PRIVATE or _BROADCAST);
 * the creator is its owner. meta_json: NULL, or a JSON object with any of
 * "name", "topic", "description", "avatar_url" (strings) and "data" (a JSON
 * object, or a string holding one). */
PARLEY_API int parley_channel_create(uint64_t *out_request, parley_client *client,
                                     const char *channel, int kind, const char *meta_json);
PARLEY_API int parley_channel_join(uint64_t *out_request, parley_client *client,
                                   const char *channel);
PARLEY_API int parley_channel_leave(uint64_t *out_request, parley_client *client,
                                    const char *channel);
/* Kind, metadata, members with roles, bans and pins: completes with
 * PARLEY_EVENT_CHANNEL_INFO_LOADED (from the cache when offline). */
PARLEY_API int parley_channel_load_info(uint64_t *out_request, parley_client *client,
                                        const char *channel);

/* Moderation (docs/channels.md). duration_s 0 means until lifted. */
PARLEY_API int parley_channel_invite(uint64_t *out_request, parley_client *client,
                                     const char *channel, const char *user);
PARLEY_API int parley_channel_remove(uint64_t *out_request, parley_client *client,
                                     const char *channel, const char *user);
PARLEY_API int parley_channel_ban(uint64_t *out_request, parley_client *client,
                                  const char *channel, const char *user, int64_t duration_s);
PARLEY_API int parley_channel_unban(uint64_t *out_request, parley_client *client,
                                    const char *channel, const char *user);
PARLEY_API int parley_channel_mute(uint64_t *out_request, parley_client *client,
                                   const char *channel, const char *user, int64_t duration_s);
PARLEY_API int parley_channel_unmute(uint64_t *out_request, parley_client *client,
                                     const char *channel, const char *user);
/* role: PARLEY_ROLE_*. */
PARLEY_API int parley_channel_set_role(uint64_t *out_request, parley_client *client,
                                       const char *channel, const char *user, int role);
/* Makes `user` the owner; this user becomes an admin. */
PARLEY_API int parley_channel_transfer(uint64_t *out_request, parley_client *client,
                                       const char *channel, const char *user);
/* Changes the fields present in meta_json (as for parley_channel_create); an
 * empty string clears a field. */
PARLEY_API int parley_channel_set_meta(uint64_t *out_request, parley_client *client,
                                       const char *channel, const char *meta_json);
/* Deletes the message at `seq` (one's own, or anyone's with delete_others). */
PARLEY_API int parley_channel_delete_message(uint64_t *out_request, parley_client *client,
                                             const char *channel, uint64_t seq);
/* pinned: 1 to pin, 0 to unpin. */
PARLEY_API int parley_channel_pin(uint64_t *out_request, parley_client *client,
                                  const char *channel, uint64_t seq, int pinned);
/* Reports the message at `seq` to the server's administrators (reason: 1-1024
 * bytes). In a direct channel this discloses that one message's text. */
PARLEY_API int parley_channel_report(uint64_t *out_request, parley_client *client,
                                     const char *channel, uint64_t seq, const char *reason);

/* From the cache, no network. *out_allowed: 1 when this user may do
 * `permission` (PARLEY_PERMISSION_*) in `channel` now, else 0. */
PARLEY_API int parley_channel_can(int *out_allowed, parley_client *client, const char *channel,
                                  int permission);
/* This user's role (PARLEY_ROLE_*); PARLEY_E_NOT_FOUND when not a member or not known. */
PARLEY_API int parley_channel_role(int *out_role, parley_client *client, const char *channel);
/* The channel's kind (PARLEY_CHANNEL_*); PARLEY_E_NOT_FOUND when unknown. */
PARLEY_API int parley_channel_kind(int *out_kind, parley_client *client, const char *channel);
/* The channel's metadata as a JSON object of the fields set; PARLEY_E_NOT_FOUND when unknown. */
PARLEY_API int parley_channel_meta(char **out_json, parley_client *client, const char *channel);

/* ---- Messages, history, typing, reads, receipts ----------------------------------- */

/* Writes a text message to the durable outbox (works offline) and returns its
 * id (32 hex digits). Then events MESSAGE_PENDING, later MESSAGE_SENT or
 * MESSAGE_FAILED. A message to a direct channel ('@...') is end-to-end encrypted. */
PARLEY_API int parley_message_send(char **out_id, parley_client *client, const char *channel,
                                   const char *text);
/* Loads history (seq < before, 0: from the newest; at most `limit` messages,
 * 1-1000): completes with PARLEY_EVENT_HISTORY_LOADED. */
PARLEY_API int parley_channel_load_history(uint64_t *out_request, parley_client *client,
                                           const char *channel, uint64_t before,
                                           uint32_t limit);
/* typing: 1 as the user types (at most one signal per 3 s is sent), 0 when cleared. */
PARLEY_API int parley_channel_set_typing(parley_client *client, const char *channel, int typing);
/* Marks the channel read up to `seq` (0: everything received so far). */
PARLEY_API int parley_channel_mark_read(parley_client *client, const char *channel, uint64_t seq);

/* How far a message got, from the receipt cursors in the cache: among the
 * members other than its sender, how many have it and how many read it. */
typedef struct parley_receipt_summary {
  uint32_t members;
  uint32_t delivered;
  uint32_t read;
} parley_receipt_summary;
PARLEY_API int parley_receipt_summary_get(parley_receipt_summary *out, parley_client *client,
                                          const char *channel, uint64_t seq);

/* ---- Presence -------------------------------------------------------------- */
/* The requests complete with CHANNEL_REQUEST_DONE (channel "", seq 0);
 * presence arrives as PARLEY_EVENT_PRESENCE_CHANGED. 1-100 users per call. */

/* Changes this user's presence settings; each argument may be left as is:
 * mode PARLEY_PRESENCE_MODE_* or -1; text (up to 256 bytes, "" clears it) or
 * NULL; text_until_ms (ms since the epoch) or -1; hide_last_seen 0/1 or -1. */
PARLEY_API int parley_presence_set(uint64_t *out_request, parley_client *client, int mode,
                                   const char *text, int64_t text_until_ms, int hide_last_seen);
/* Subscribes to users' presence (a snapshot, then changes); notify 1: also
 * PRESENCE_NOTIFIED when one of them comes online. */
PARLEY_API int parley_presence_watch(uint64_t *out_request, parley_client *client,
                                     const char *const *users, size_t count, int notify);
PARLEY_API int parley_presence_unwatch(uint64_t *out_request, parley_client *client,
                                       const char *const *users, size_t count);
/* The current presence of users, once, without subscribing. */
PARLEY_API int parley_presence_query(uint64_t *out_request, parley_client *client,
                                     const char *const *users, size_t count);
/* The presence last received for `user`, as the JSON object of
 * PRESENCE_CHANGED's "presence"; PARLEY_E_NOT_FOUND when none was. */
PARLEY_API int parley_presence_get(char **out_json, parley_client *client, const char *user);
/* Online count of a large channel; PARLEY_E_NOT_FOUND when none was received. */
PARLEY_API int parley_presence_online_count(uint64_t *out_count, parley_client *client,
                                            const char *channel);
/* The user did something: keeps them online rather than away. Cheap. */
PARLEY_API int parley_presence_report_activity(parley_client *client);

/* ---- Direct messages, safety numbers, devices, blocks ---------------------------- */

/* The direct channel with `user` (created on first use): completes with
 * CHANNEL_REQUEST_DONE whose channel is its name (starting with '@'). */
PARLEY_API int parley_direct_open(uint64_t *out_request, parley_client *client,
                                  const char *user);
/* From the cache: the other user of a direct channel, and the direct channel
 * with a user; PARLEY_E_NOT_FOUND when unknown. */
PARLEY_API int parley_direct_peer(char **out_user, parley_client *client, const char *channel);
PARLEY_API int parley_direct_channel(char **out_channel, parley_client *client,
                                     const char *user);
/* The safety number of this user and `user`: PARLEY_EVENT_SAFETY_NUMBER_LOADED. */
PARLEY_API int parley_safety_number_load(uint64_t *out_request, parley_client *client,
                                         const char *user);
/* Marks `user` verified (1) or not (0) for the identities known now.
 * shown_number: NULL, or the number the users compared (then fails with
 * reason "safety_changed" when it changed). PARLEY_E_NOT_FOUND (reason
 * "no_keys") when no identity of `user` is known yet. */
PARLEY_API int parley_contact_verify(parley_client *client, const char *user, int verified,
                                     const char *shown_number);
/* This user's devices: PARLEY_EVENT_DEVICES_LOADED. */
PARLEY_API int parley_device_list(uint64_t *out_request, parley_client *client);
/* Removes one of this user's devices for good: CHANNEL_REQUEST_DONE (channel ""). */
PARLEY_API int parley_device_remove(uint64_t *out_request, parley_client *client,
                                    const char *device);
/* Block, unblock, list: each completes with PARLEY_EVENT_BLOCKED_USERS_LOADED. */
PARLEY_API int parley_user_block(uint64_t *out_request, parley_client *client, const char *user);
PARLEY_API int parley_user_unblock(uint64_t *out_request, parley_client *client,
                                   const char *user);
PARLEY_API int parley_user_list_blocked(uint64_t *out_request, parley_client *client);

/* ---- Notifications and unread counts ------------------------------------------ */

/* This user's level for `channel` (PARLEY_NOTIFY_*) on every device;
 * mute_until_ms (ms since the epoch, 0: not muted) silences plain messages. */
PARLEY_API int parley_notification_set_level(uint64_t *out_request, parley_client *client,
                                             const char *channel, int level,
                                             int64_t mute_until_ms);
/* From the cache; out_mute_until_ms may be NULL (0: not muted).
 * PARLEY_E_NOT_FOUND for an unknown channel. */
PARLEY_API int parley_notification_level(int *out_level, int64_t *out_mute_until_ms,
                                         parley_client *client, const char *channel);
/* The counts the server last gave for `channel` (zero when unknown), and the
 * totals for an app badge. Either output may be NULL. */
PARLEY_API int parley_unread_count(uint64_t *out_unread, uint64_t *out_mentions,
                                   parley_client *client, const char *channel);
PARLEY_API int parley_unread_badge(uint64_t *out_unread, uint64_t *out_mentions,
                                   parley_client *client);

/* ---- Collaborative documents (docs/collab.md) ------------------------------------- */
/* A document belongs to a channel and is named by its title (1-128 bytes of
 * UTF-8, no control characters); channel roles decide who may edit (read-only
 * and muted members may open and read, not edit). Positions and counts are in
 * Unicode code points, not bytes. This device keeps a replica of every
 * document it opened in its cache: edits apply to it at once, are durable
 * before the call returns, work offline, and go to the server when connected;
 * concurrent edits from anyone converge. A NULL pointer fails the call with
 * PARLEY_E_INVALID_ARGUMENT; other failures of the requests are their
 * completion event's status. */

/* Creates document `title` in `channel` (it then appears in the channel as a
 * message of kind "doc"). Completes with CHANNEL_REQUEST_DONE carrying the
 * event's seq; PARLEY_E_ALREADY_EXISTS (reason "doc_exists") when the title
 * is taken. */
PARLEY_API int parley_doc_create(uint64_t *out_request, parley_client *client,
                                 const char *channel, const char *title);
/* Opens the document on this connection and keeps it in sync: then
 * DOCUMENT_CHANGED with the whole text, and CHANNEL_REQUEST_DONE (seq 0).
 * While open, others' edits arrive as DOCUMENT_CHANGED ("local":false) and
 * their cursors as DOCUMENT_AWARENESS; after a lost connection it is opened
 * again by itself. PARLEY_E_NOT_FOUND (reason "no_such_doc") for a document
 * the server does not have; PARLEY_E_OFFLINE after request_timeout_ms without
 * a connection (a document already in the cache stays readable and editable,
 * and is opened when the connection is back). */
PARLEY_API int parley_doc_open(uint64_t *out_request, parley_client *client,
                               const char *channel, const char *title);
/* Stops the document's live updates (its replica and unsent edits stay in
 * the cache). Completes with CHANNEL_REQUEST_DONE. */
PARLEY_API int parley_doc_close(uint64_t *out_request, parley_client *client,
                                const char *channel, const char *title);
/* Edits a document of the cache (opened once on this device), online or
 * offline: inserts `utf8` before code point `pos`, or deletes `count` code
 * points from `pos`. Each emits DOCUMENT_CHANGED ("local":true). Fails with
 * PARLEY_E_INVALID_ARGUMENT and reason "invalid_position" (past the end),
 * "invalid_utf8", "invalid_text" (empty), "invalid_count" (0), "too_large"
 * (an insert over about 24 KB: split it), "doc_too_large" (over 1,048,576
 * characters ever inserted), "invalid_name" or "invalid_title"; with
 * PARLEY_E_NOT_FOUND (reason "no_such_doc") when the cache has no such
 * document. An insert naming "@user" of a channel member notifies them. The
 * server may still refuse an edit later (a read-only or muted member):
 * DOCUMENT_FAILED; the replica is then rebuilt from the server's state, and
 * until its DOCUMENT_CHANGED comes (the document open again) edits of it fail
 * with PARLEY_E_NOT_FOUND, reason "no_such_doc". */
PARLEY_API int parley_doc_insert(parley_client *client, const char *channel, const char *title,
                                 uint64_t pos, const char *utf8);
PARLEY_API int parley_doc_delete(parley_client *client, const char *channel, const char *title,
                                 uint64_t pos, uint64_t count);
/* The document's text as the cache holds it, without the network:
 * *out_text (NUL-terminated; free it with parley_string_free), its length in
 * bytes (the text may hold U+0000, which a NUL-terminated reading would stop
 * at), its version (characters ever inserted plus characters deleted: two
 * replicas with the same edits have the same version) and the local edits
 * the server has not acknowledged yet. Every output but out_text may be
 * NULL. PARLEY_E_NOT_FOUND (reason "no_such_doc") when the cache has no such
 * document. */
PARLEY_API int parley_doc_text(char **out_text, size_t *out_len, uint64_t *out_version,
                               uint64_t *out_pending, parley_client *client,
                               const char *channel, const char *title);
/* The channel's documents, in title order: completes with
 * PARLEY_EVENT_DOCUMENTS_LOADED (from the cache, "complete":false, when the
 * server cannot be asked). */
PARLEY_API int parley_doc_list(uint64_t *out_request, parley_client *client,
                               const char *channel);
/* This user's cursor in an open document, and a selection from anchor to
 * cursor: code point positions, or -1 for none (cursor -1: no cursor shown).
 * The others see it as DOCUMENT_AWARENESS with this client's document_name
 * and document_color. Cheap to call on every move: at most 10 updates a
 * second are sent (the latest), refreshed every 15 s while the document is
 * open, and again after a reconnect. PARLEY_E_NOT_FOUND (reason
 * "doc_not_open") unless the document was opened; PARLEY_E_INVALID_ARGUMENT
 * (reason "invalid_position") for a value below -1. */
PARLEY_API int parley_doc_set_cursor(parley_client *client, const char *channel,
                                     const char *title, int64_t cursor, int64_t anchor);
/* Local edits of every document that the server has not acknowledged yet
 * (wait for 0 before freeing the client, as for the outbox). */
PARLEY_API int parley_doc_pending(uint64_t *out_count, parley_client *client);

#ifdef __cplusplus
}
#endif

#endif /* PARLEY_H */
