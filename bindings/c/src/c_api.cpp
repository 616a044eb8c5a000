// The C ABI (parley.h) over the C++ API: argument checks, conversions, and the
// one place where Status becomes an int and every exception is caught.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>

#include "c_internal.hpp"
#include "parley/version.hpp"

// The C ABI's version is the soname's (SOVERSION: the project's major version).
static_assert(PARLEY_ABI_VERSION == PARLEY_VERSION_MAJOR, "parley.h and version.hpp disagree");

namespace parley::capi {
namespace {

thread_local std::string t_error;
thread_local std::string t_reason;
// The client whose on_event callback this thread is running, if any.
thread_local parley_client* t_in_callback = nullptr;
// True while this thread runs an app's analytics callback.
thread_local bool t_in_analytics = false;

template <typename F>
int guard(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return set_error(PARLEY_E_NOMEM, "out of memory", "nomem");
  } catch (const std::exception& e) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "internal error: %s", e.what());
    return set_error(PARLEY_E_INTERNAL, buf, "internal");
  } catch (...) {
    return set_error(PARLEY_E_INTERNAL, "internal error", "internal");
  }
}

int bad_arg(const char* what) noexcept {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s is NULL", what);
  return set_error(PARLEY_E_INVALID_ARGUMENT, buf, "invalid_argument");
}

#define PARLEY_CHECK(p)         \
  do {                          \
    if ((p) == nullptr) return bad_arg(#p); \
  } while (0)

// Counts an entry point in progress on a client (parley_client_free waits
// for the count to drop to zero after it has set `closing`).
class Entry {
 public:
  explicit Entry(parley_client* c) noexcept : c_(c) { c_->busy.fetch_add(1); }
  ~Entry() { c_->busy.fetch_sub(1); }
  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;

 private:
  parley_client* c_;
};

// PARLEY_OK when `client` may be used now. `waits`: the call waits on the
// client's thread, which is refused from inside a transport callback (that
// thread is the one running it).
int usable(parley_client* client, bool waits) noexcept {
  if (t_in_analytics) {
    return set_error(PARLEY_E_INVALID_ARGUMENT,
                     "a client cannot be called from inside an analytics callback",
                     "in_analytics_callback");
  }
  if (client->closing.load()) {
    return set_error(PARLEY_E_CANCELLED, "the client is being freed", "client_closing");
  }
  if (waits && t_transport_depth > 0) {
    return set_error(PARLEY_E_INVALID_ARGUMENT,
                     "this function waits on the client's thread and cannot be called from "
                     "inside a transport callback",
                     "in_transport_callback");
  }
  return PARLEY_OK;
}

// Checks `client`, counts the call, refuses it while the client is closing
// (and, for WAIT, from inside a transport callback).
#define PARLEY_ENTER_(client, waits)                                  \
  PARLEY_CHECK(client);                                               \
  Entry parley_entry_(client);                                        \
  if (int parley_rc_ = usable(client, waits); parley_rc_ != PARLEY_OK) \
  return parley_rc_
#define PARLEY_ENTER(client) PARLEY_ENTER_(client, false)
#define PARLEY_ENTER_WAIT(client) PARLEY_ENTER_(client, true)

// Runs a request: checks the client, stores the id.
template <typename F>
int request(uint64_t* out_request, parley_client* client, F&& f) {
  return guard([&]() -> int {
    if (out_request != nullptr) *out_request = 0;
    PARLEY_ENTER(client);
    RequestId id = f(*client->rep);
    if (out_request != nullptr) *out_request = id;
    return PARLEY_OK;
  });
}

int string_out(char** out, const std::string& s) {
  char* copy = dup_string(s);
  if (copy == nullptr) return set_error(PARLEY_E_NOMEM, "out of memory", "nomem");
  *out = copy;
  return PARLEY_OK;
}

// A cache query without arguments whose answer goes out as JSON: the client's
// `query` (a Result), written by `to_json`.
template <typename Query, typename ToJson>
int json_query(char** out_json, parley_client* client, Query query, ToJson to_json) {
  return guard([&]() -> int {
    PARLEY_CHECK(out_json);
    *out_json = nullptr;
    PARLEY_ENTER_WAIT(client);
    auto r = ((*client->rep).*query)();
    if (!r) return fail(r.status());
    return string_out(out_json, to_json(*r));
  });
}

int not_found(const std::string& what) {
  return set_error(PARLEY_E_NOT_FOUND, what + " not known", "unknown");
}

std::vector<std::string> user_list(const char* const* users, size_t count, int* rc) {
  std::vector<std::string> v;
  *rc = PARLEY_OK;
  if (count > 0 && users == nullptr) {
    *rc = bad_arg("users");
    return v;
  }
  for (size_t i = 0; i < count; ++i) {
    if (users[i] == nullptr) {
      *rc = bad_arg("users[i]");
      return v;
    }
    v.emplace_back(users[i]);
  }
  return v;
}

bool valid_role(int role) { return role >= PARLEY_ROLE_OWNER && role <= PARLEY_ROLE_READ_ONLY; }

void deliver_to_callback(parley_client* client, const Event& event) {
  parley_event* ev = nullptr;
  try {
    ev = make_event(event);
  } catch (...) {
    ev = nullptr;
  }
  if (ev == nullptr) return;  // out of memory: the event is lost, never an exception
  {
    // Held until parley_client_create has stored *out (or the client closes).
    std::unique_lock lock(client->ready_mu);
    client->ready_cv.wait(lock, [&] { return client->ready || client->closing.load(); });
  }
  if (client->closing.load()) {  // parley_client_free started: no more events
    std::free(ev);
    return;
  }
  parley_client* before = t_in_callback;
  t_in_callback = client;
  client->on_event(ev, client->on_event_user_data);
  t_in_callback = before;
  std::free(ev);
}

// ClientOptions::analytics for a C callback: each event as JSON, until
// parley_client_free starts.
class AnalyticsCallback final : public sys::AnalyticsSink {
 public:
  AnalyticsCallback(parley_analytics_callback callback, void* user_data,
                    const std::atomic<bool>* closing)
      : callback_(callback), user_data_(user_data), closing_(closing) {}

  void record(const sys::AnalyticsEvent& event) override {
    if (closing_->load()) return;
    std::string json;
    try {
      json = analytics_json(event);
    } catch (...) {
      return;  // out of memory: the event is lost, never an exception
    }
    bool before = t_in_analytics;
    t_in_analytics = true;
    callback_(json.c_str(), user_data_);
    t_in_analytics = before;
  }

 private:
  parley_analytics_callback callback_;
  void* user_data_;
  const std::atomic<bool>* closing_;  // the wrapper's, which outlives the client
};

bool valid_kind(int kind) {
  return kind >= PARLEY_CHANNEL_PUBLIC && kind <= PARLEY_CHANNEL_BROADCAST;
}
bool valid_permission(int p) {
  return p >= PARLEY_PERMISSION_POST && p <= PARLEY_PERMISSION_CHANGE_ROLES;
}

// PARLEY_OK, or PARLEY_E_INVALID_ARGUMENT naming what is wrong with `name`,
// with the reason the client's own calls give for such a name.
int name_check(const char* name, std::string (*check)(const std::string&), const char* reason) {
  return guard([&]() -> int {
    PARLEY_CHECK(name);
    std::string why = check(name);
    if (!why.empty()) return set_error(PARLEY_E_INVALID_ARGUMENT, why, reason);
    return PARLEY_OK;
  });
}

}  // namespace

thread_local int t_transport_depth = 0;

int set_error(int code, std::string_view message, std::string_view reason) noexcept {
  try {
    t_error.assign(message.data(), message.size());
    t_reason.assign(reason.data(), reason.size());
  } catch (...) {
    t_error.clear();
    t_reason.clear();
  }
  return code;
}

int status_code(const Status& status) {
  if (status.ok()) return PARLEY_OK;
  int c = static_cast<int>(status.code());
  if (c <= 0 || c > -PARLEY_E_INTERNAL) return PARLEY_E_INTERNAL;
  return -c;
}

int fail(const Status& status) {
  return set_error(status_code(status), status.message(), status.reason());
}

char* dup_string(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p == nullptr) return nullptr;
  std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  return p;
}

}  // namespace parley::capi

using namespace parley;
using namespace parley::capi;

// The C constants are the C++ enums' values (parley/roles.hpp, events.hpp).
static_assert(static_cast<int>(ChannelKind::public_channel) == PARLEY_CHANNEL_PUBLIC &&
              static_cast<int>(ChannelKind::private_channel) == PARLEY_CHANNEL_PRIVATE &&
              static_cast<int>(ChannelKind::direct) == PARLEY_CHANNEL_DIRECT &&
              static_cast<int>(ChannelKind::broadcast) == PARLEY_CHANNEL_BROADCAST);
static_assert(static_cast<int>(Role::owner) == PARLEY_ROLE_OWNER &&
              static_cast<int>(Role::read_only) == PARLEY_ROLE_READ_ONLY);
static_assert(static_cast<int>(LifecycleState::disconnected) == PARLEY_STATE_DISCONNECTED &&
              static_cast<int>(LifecycleState::ready) == PARLEY_STATE_READY);
static_assert(static_cast<int>(NotificationLevel::all) == PARLEY_NOTIFY_ALL &&
              static_cast<int>(NotificationLevel::none) == PARLEY_NOTIFY_NONE);
static_assert(static_cast<int>(PresenceMode::online) == PARLEY_PRESENCE_MODE_ONLINE &&
              static_cast<int>(PresenceMode::invisible) == PARLEY_PRESENCE_MODE_INVISIBLE);
// parley_event.kind is the index in parley::Event plus one (c_json.cpp).
static_assert(std::variant_size_v<Event> == PARLEY_EVENT_DOCUMENT_FAILED &&
              std::is_same_v<std::variant_alternative_t<PARLEY_EVENT_BLOCKED_USERS_LOADED - 1,
                                                        Event>,
                             BlockedUsersLoaded> &&
              std::is_same_v<std::variant_alternative_t<PARLEY_EVENT_DOCUMENT_CHANGED - 1, Event>,
                             DocumentChanged> &&
              std::is_same_v<std::variant_alternative_t<PARLEY_EVENT_DOCUMENT_AWARENESS - 1,
                                                        Event>,
                             DocumentAwareness> &&
              std::is_same_v<std::variant_alternative_t<PARLEY_EVENT_DOCUMENTS_LOADED - 1, Event>,
                             DocumentsLoaded> &&
              std::is_same_v<std::variant_alternative_t<PARLEY_EVENT_DOCUMENT_FAILED - 1, Event>,
                             DocumentFailed>);
static_assert(static_cast<int>(Permission::post) == PARLEY_PERMISSION_POST &&
              static_cast<int>(Permission::edit_meta) == PARLEY_PERMISSION_EDIT_META &&
              static_cast<int>(Permission::change_roles) == PARLEY_PERMISSION_CHANGE_ROLES);

extern "C" {

const char* parley_error_last(void) { return t_error.c_str(); }
const char* parley_error_last_reason(void) { return t_reason.c_str(); }

const char* parley_status_name(int status) {
  switch (status) {
    case PARLEY_OK: return "ok";
    case PARLEY_E_NOMEM: return "nomem";
    default:
      if (status < 0 && status >= PARLEY_E_INTERNAL) {
        return to_string(static_cast<StatusCode>(-status));
      }
      return "unknown";
  }
}

const char* parley_version(void) { return PARLEY_VERSION_STRING; }
int parley_abi_version(void) { return PARLEY_ABI_VERSION; }
void parley_string_free(char* s) { std::free(s); }
void parley_event_free(parley_event* event) { std::free(event); }

int parley_role_allows(int* out_allowed, int kind, int role, int permission) {
  return guard([&]() -> int {
    PARLEY_CHECK(out_allowed);
    *out_allowed = 0;
    if (!valid_kind(kind)) {
      return set_error(PARLEY_E_INVALID_ARGUMENT, "unknown channel kind", "invalid_kind");
    }
    if (!valid_role(role)) {
      return set_error(PARLEY_E_INVALID_ARGUMENT, "unknown role", "invalid_role");
    }
    if (!valid_permission(permission)) {
      return set_error(PARLEY_E_INVALID_ARGUMENT, "unknown permission", "invalid_permission");
    }
    *out_allowed = role_allows(static_cast<ChannelKind>(kind), static_cast<Role>(role),
                               static_cast<Permission>(permission))
                       ? 1
                       : 0;
    return PARLEY_OK;
  });
}

int parley_role_outranks(int* out, int a, int b) {
  return guard([&]() -> int {
    PARLEY_CHECK(out);
    *out = 0;
    if (!valid_role(a) || !valid_role(b)) {
      return set_error(PARLEY_E_INVALID_ARGUMENT, "unknown role", "invalid_role");
    }
    *out = outranks(static_cast<Role>(a), static_cast<Role>(b)) ? 1 : 0;
    return PARLEY_OK;
  });
}

namespace {

// The name of `value` in group `set` (PARLEY_NAMES_*), or null; *count: how
// many values the group has (0 for an unknown group).
const char* constant_name(int set, int value, int* count) {
  auto in = [&](int n) {
    *count = n;
    return value >= 0 && value < n;
  };
  switch (set) {
    case PARLEY_NAMES_STATE:
      return in(PARLEY_STATE_READY + 1) ? to_string(static_cast<LifecycleState>(value)) : nullptr;
    case PARLEY_NAMES_CHANNEL_KIND:
      return in(PARLEY_CHANNEL_BROADCAST + 1) ? to_string(static_cast<ChannelKind>(value))
                                              : nullptr;
    case PARLEY_NAMES_ROLE:
      return in(PARLEY_ROLE_READ_ONLY + 1) ? to_string(static_cast<Role>(value)) : nullptr;
    case PARLEY_NAMES_PERMISSION:
      return in(PARLEY_PERMISSION_CHANGE_ROLES + 1) ? to_string(static_cast<Permission>(value))
                                                    : nullptr;
    case PARLEY_NAMES_NOTIFY:
      return in(PARLEY_NOTIFY_NONE + 1) ? to_string(static_cast<NotificationLevel>(value))
                                        : nullptr;
    case PARLEY_NAMES_PRESENCE_MODE:
      return in(PARLEY_PRESENCE_MODE_INVISIBLE + 1) ? to_string(static_cast<PresenceMode>(value))
                                                     : nullptr;
    default:
      *count = 0;
      return nullptr;
  }
}

}  // namespace

const char* parley_name(int set, int value) {
  int count = 0;
  return constant_name(set, value, &count);
}

int parley_parse(int* out, int set, const char* name) {
  return guard([&]() -> int {
    PARLEY_CHECK(out);
    *out = -1;
    PARLEY_CHECK(name);
    int count = 0;
    constant_name(set, 0, &count);
    if (count == 0) {
      return set_error(PARLEY_E_INVALID_ARGUMENT, "unknown set of names", "invalid_argument");
    }
    for (int v = 0; v < count; ++v) {
      if (std::strcmp(constant_name(set, v, &count), name) == 0) {
        *out = v;
        return PARLEY_OK;
      }
    }
    char buf[128];
    std::snprintf(buf, sizeof buf, "unknown name \"%.64s\"", name);
    return set_error(PARLEY_E_INVALID_ARGUMENT, buf, "unknown_name");
  });
}

int parley_channel_name_check(const char* name) {
  return name_check(name, check_channel_name, "invalid_name");
}
int parley_user_name_check(const char* name) {
  return name_check(name, check_user_name, "invalid_user");
}

void parley_client_options_init(parley_client_options* out) {
  if (out == nullptr) return;
  parley_client_options init = PARLEY_CLIENT_OPTIONS_INIT;
  *out = init;
}

int parley_client_create(parley_client** out, const parley_client_options* options) {
  return guard([&]() -> int {
    PARLEY_CHECK(out);
    *out = nullptr;
    PARLEY_CHECK(options);
    if (options->version < 2) {
      // 0: not initialized. 1: a pre-release parley.h (callbacks with
      // user_data first, a shorter struct): reading on would crash the app.
      return set_error(PARLEY_E_INVALID_ARGUMENT,
                       options->version == 0
                           ? "options version is 0: start from PARLEY_CLIENT_OPTIONS_INIT"
                           : "options version 1 is from a pre-release parley.h: rebuild the app",
                       "invalid_argument");
    }
    ClientOptions o;
    if (options->server_url != nullptr) o.server_url = options->server_url;
    if (options->token != nullptr) o.token = options->token;
    if (options->data_dir != nullptr) o.data_dir = options->data_dir;
    if (options->device_id != nullptr) o.device_id = options->device_id;
    o.cache_max_bytes = options->cache_max_bytes;
    o.cache_max_messages = options->cache_max_messages;
    o.rebuild_corrupt_cache = options->rebuild_corrupt_cache != 0;
    o.auto_connect = options->auto_connect != 0;
    o.notifications = options->notifications != 0;
    o.presence = options->presence != 0;
    o.request_timeout = std::chrono::milliseconds(options->request_timeout_ms);
    o.reconnect_base = std::chrono::milliseconds(options->reconnect_base_ms);
    o.reconnect_max = std::chrono::milliseconds(options->reconnect_max_ms);
    o.heartbeat_interval = std::chrono::seconds(options->heartbeat_interval_s);
    o.dead_connection_timeout = std::chrono::seconds(options->dead_connection_timeout_s);
    o.sync_page_size = options->sync_page_size;
    // Clamped where size_t is narrower than 64 bits.
    o.max_incoming_frame =
        options->max_incoming_frame > std::numeric_limits<std::size_t>::max()
            ? std::numeric_limits<std::size_t>::max()
            : static_cast<std::size_t>(options->max_incoming_frame);
    if (options->version >= 3) {  // a version 2 struct ends before these fields
      if (options->document_name != nullptr) o.document_name = options->document_name;
      if (options->document_color != nullptr) o.document_color = options->document_color;
    }
    if (options->transport != nullptr) {
      const parley_transport_callbacks& cb = *options->transport;
      if (cb.version < PARLEY_TRANSPORT_CALLBACKS_VERSION || cb.open == nullptr ||
          cb.send == nullptr || cb.close == nullptr) {
        return set_error(PARLEY_E_INVALID_ARGUMENT,
                         "transport callbacks need version PARLEY_TRANSPORT_CALLBACKS_VERSION "
                         "(2) and open, send and close",
                         "invalid_argument");
      }
      o.transport = make_app_transport(cb);
    }
    auto wrapper = std::make_unique<parley_client>();
    if (options->on_analytics != nullptr) {
      o.analytics = std::make_shared<AnalyticsCallback>(
          options->on_analytics, options->on_analytics_user_data, &wrapper->closing);
    }
    if (options->on_event != nullptr) {
      wrapper->on_event = options->on_event;
      wrapper->on_event_user_data = options->on_event_user_data;
      parley_client* w = wrapper.get();
      o.listener = [w](const Event& e) { deliver_to_callback(w, e); };
    }
    auto client = Client::open(std::move(o));
    if (!client) return fail(client.status());
    wrapper->rep = std::move(*client);
    parley_client* w = wrapper.release();
    *out = w;
    {
      // From now on on_event may run (it may read the pointer just stored).
      std::lock_guard lock(w->ready_mu);
      w->ready = true;
    }
    w->ready_cv.notify_all();
    return PARLEY_OK;
  });
}

void parley_client_free(parley_client* client) {
  if (client == nullptr) return;
  if (t_in_callback == client) {
    // Its listener thread cannot join itself, and freeing later would let
    // callbacks run after the free returned: refused, the client stays usable.
    set_error(PARLEY_E_INVALID_ARGUMENT,
              "parley_client_free cannot be called from the client's own on_event callback",
              "in_event_callback");
    return;
  }
  if (t_transport_depth > 0) {
    set_error(PARLEY_E_INVALID_ARGUMENT,
              "parley_client_free cannot be called from inside a transport callback",
              "in_transport_callback");
    return;
  }
  if (t_in_analytics) {
    set_error(PARLEY_E_INVALID_ARGUMENT,
              "parley_client_free cannot be called from inside an analytics callback",
              "in_analytics_callback");
    return;
  }
  client->closing.store(true);
  {
    std::lock_guard lock(client->ready_mu);  // wakes an on_event held before ready
  }
  client->ready_cv.notify_all();
  // Calls in progress (from on_event, say) finish against a running engine.
  while (client->busy.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  try {
    client->rep.reset();  // joins the client's threads while the wrapper is whole
    delete client;
  } catch (...) {
  }
}

int parley_client_connect(parley_client* client) {
  return guard([&]() -> int {
    PARLEY_ENTER(client);
    client->rep->connect();
    return PARLEY_OK;
  });
}

int parley_client_disconnect(parley_client* client) {
  return guard([&]() -> int {
    PARLEY_ENTER(client);
    client->rep->disconnect();
    return PARLEY_OK;
  });
}

int parley_client_reconnect_now(parley_client* client) {
  return guard([&]() -> int {
    PARLEY_ENTER(client);
    client->rep->reconnect_now();
    return PARLEY_OK;
  });
}

int parley_client_set_token(parley_client* client, const char* token) {
  return guard([&]() -> int {
    PARLEY_ENTER(client);
    PARLEY_CHECK(token);
    client->rep->set_token(token);
    return PARLEY_OK;
  });
}

int parley_client_state(int* out_state, parley_client* client) {
  return guard([&]() -> int {
    PARLEY_CHECK(out_state);
    PARLEY_ENTER(client);
    *out_state = static_cast<int>(client->rep->state());
    return PARLEY_OK;
  });
}

int parley_client_user(char** out_user, parley_client* client) {
  return guard([&]() -> int {
    PARLEY_CHECK(out_user);
    *out_user = nullptr;
    PARLEY_ENTER(client);
    return string_out(out_user, client->rep->user());
  });
}

int parley_client_next_event(parley_event** out, parley_client* client, int timeout_ms) {
  return guard([&]() -> int {
    PARLEY_CHECK(out);
    *out = nullptr;
    PARLEY_ENTER_WAIT(client);
    if (client->on_event != nullptr) {
      return set_error(PARLEY_E_INVALID_ARGUMENT,
                       "this client delivers its events to its on_event callback",
                       "invalid_argument");
    }
    auto ev = client->rep->next_event(std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms));
    if (!ev) return PARLEY_OK;
    parley_event* e = make_event(*ev);
    if (e == nullptr) return set_error(PARLEY_E_NOMEM, "out of memory", "nomem");
    *out = e;
    return PARLEY_OK;
  });
}

int parley_channel_list(char** out_json, parley_client* client) {
  return json_query(out_json, client, &Client::channels, channels_json);
}

int parley_client_outbox(char** out_json, parley_client* client) {
  return json_query(out_json, client, &Client::outbox, outbox_json);
}

int parley_client_cache_usage(char** out_json, parley_client* client) {
  return json_query(out_json, client, &Client::cache_usage, cache_usage_json);
}

// ---- Channels ------------------------------------------------------------------

int parley_channel_create(uint64_t* out_request, parley_client* client, const char* channel,
                          int kind, const char* meta_json) {
  return guard([&]() -> int {
    if (out_request != nullptr) *out_request = 0;
    PARLEY_CHECK(channel);
    ChannelOptions co;
    switch (kind) {
      case PARLEY_CHANNEL_PUBLIC: co.kind = ChannelKind::public_channel; break;
      case PARLEY_CHANNEL_PRIVATE: co.kind = ChannelKind::private_channel; break;
      case PARLEY_CHANNEL_BROADCAST: co.kind = ChannelKind::broadcast; break;
      default:
        return set_error(PARLEY_E_INVALID_ARGUMENT,
                         "channel kind must be public, private or broadcast (direct: "
                         "parley_direct_open)",
                         "invalid_kind");
    }
    if (meta_json != nullptr) {
      std::string why;
      if (!parse_meta(meta_json, &co.meta, &why)) {
        return set_error(PARLEY_E_INVALID_ARGUMENT, why, "invalid_meta");
      }
    }
    return request(out_request, client,
                   [&](Client& c) { return c.create_channel(channel, co); });
  });
}

#define PARLEY_CHANNEL_REQUEST(fn, call)                                                   \
  int fn(uint64_t* out_request, parley_client* client, const char* channel) {             \
    if (out_request != nullptr) *out_request = 0;                                          \
    if (channel == nullptr) return bad_arg("channel");                                     \
    return request(out_request, client, [&](Client& c) { return c.call(channel); });       \
  }

PARLEY_CHANNEL_REQUEST(parley_channel_join, join_channel)
PARLEY_CHANNEL_REQUEST(parley_channel_leave, leave_channel)
PARLEY_CHANNEL_REQUEST(parley_channel_load_info, load_channel_info)

#define PARLEY_MEMBER_REQUEST(fn, call)                                                         \
  int fn(uint64_t* out_request, parley_client* client, const char* channel, const char* user) { \
    if (out_request != nullptr) *out_request = 0;                                               \
    if (channel == nullptr) return bad_arg("channel");                                          \
    if (user == nullptr) return bad_arg("user");                                                \
    return request(out_request, client, [&](Client& c) { return c.call(channel, user); });      \
  }

PARLEY_MEMBER_REQUEST(parley_channel_invite, invite)
PARLEY_MEMBER_REQUEST(parley_channel_remove, remove_member)
PARLEY_MEMBER_REQUEST(parley_channel_unban, unban)
PARLEY_MEMBER_REQUEST(parley_channel_unmute, unmute)
PARLEY_MEMBER_REQUEST(parley_channel_transfer, transfer_ownership)

namespace {

// ban and mute: a member request with a duration (0: no expiry).
int timed_member_request(uint64_t* out_request, parley_client* client, const char* channel,
                         const char* user, int64_t duration_s,
                         RequestId (Client::*call)(const std::string&, const std::string&,
                                                   std::chrono::seconds)) {
  if (out_request != nullptr) *out_request = 0;
  if (channel == nullptr) return bad_arg("channel");
  if (user == nullptr) return bad_arg("user");
  if (duration_s < 0) {
    return set_error(PARLEY_E_INVALID_ARGUMENT, "negative duration", "invalid_duration");
  }
  return request(out_request, client, [&](Client& c) {
    return (c.*call)(channel, user, std::chrono::seconds(duration_s));
  });
}

}  // namespace

int parley_channel_ban(uint64_t* out_request, parley_client* client, const char* channel,
                       const char* user, int64_t duration_s) {
  return timed_member_request(out_request, client, channel, user, duration_s, &Client::ban);
}

int parley_channel_mute(uint64_t* out_request, parley_client* client, const char* channel,
                        const char* user, int64_t duration_s) {
  return timed_member_request(out_request, client, channel, user, duration_s, &Client::mute);
}

int parley_channel_set_role(uint64_t* out_request, parley_client* client, const char* channel,
                            const char* user, int role) {
  if (out_request != nullptr) *out_request = 0;
  if (channel == nullptr) return bad_arg("channel");
  if (user == nullptr) return bad_arg("user");
  if (!valid_role(role)) return set_error(PARLEY_E_INVALID_ARGUMENT, "unknown role", "invalid_role");
  return request(out_request, client, [&](Client& c) {
    return c.set_role(channel, user, static_cast<Role>(role));
  });
}

int parley_channel_set_meta(uint64_t* out_request, parley_client* client, const char* channel,
                            const char* meta_json) {
  return guard([&]() -> int {
    if (out_request != nullptr) *out_request = 0;
    PARLEY_CHECK(channel);
    PARLEY_CHECK(meta_json);
    ChannelMeta meta;
    std::string why;
    if (!parse_meta(meta_json, &meta, &why)) {
      return set_error(PARLEY_E_INVALID_ARGUMENT, why, "invalid_meta");
    }
    return request(out_request, client, [&](Client& c) { return c.set_meta(channel, meta); });
  });
}

int parley_channel_delete_message(uint64_t* out_request, parley_client* client,
                                  const char* channel, uint64_t seq) {
  if (out_request != nullptr) *out_request = 0;
  if (channel == nullptr) return bad_arg("channel");
  return request(out_request, client, [&](Client& c) { return c.delete_message(channel, seq); });
}

int parley_channel_pin(uint64_t* out_request, parley_client* client, const char* channel,
                       uint64_t seq, int pinned) {
  if (out_request != nullptr) *out_request = 0;
  if (channel == nullptr) return bad_arg("channel");
  return request(out_request, client,
                 [&](Client& c) { return c.pin_message(channel, seq, pinned != 0); });
}

int parley_channel_report(uint64_t* out_request, parley_client* client, const char* channel,
                          uint64_t seq, const char* reason) {
  if (out_request != nullptr) *out_request = 0;
  if (channel == nullptr) return bad_arg("channel");
  if (reason == nullptr) return bad_arg("reason");
  return request(out_request, client,
                 [&](Client& c) { return c.report_message(channel, seq, reason); });
}

int parley_channel_can(int* out_allowed, parley_client* client, const char* channel,
                       int permission) {
  return guard([&]() -> int {
    PARLEY_CHECK(out_allowed);
    *out_allowed = 0;
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(channel);
    if (!valid_permission(permission)) {
      return set_error(PARLEY_E_INVALID_ARGUMENT, "unknown permission", "invalid_permission");
    }
    *out_allowed = client->rep->can(channel, static_cast<Permission>(permission)) ? 1 : 0;
    return PARLEY_OK;
  });
}

int parley_channel_role(int* out_role, parley_client* client, const char* channel) {
  return guard([&]() -> int {
    PARLEY_CHECK(out_role);
    *out_role = -1;
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(channel);
    auto r = client->rep->role(channel);
    if (!r) return not_found(std::string("role in ") + channel);
    *out_role = static_cast<int>(*r);
    return PARLEY_OK;
  });
}

int parley_channel_kind(int* out_kind, parley_client* client, const char* channel) {
  return guard([&]() -> int {
    PARLEY_CHECK(out_kind);
    *out_kind = -1;
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(channel);
    auto k = client->rep->channel_kind(channel);
    if (!k) return not_found(std::string("channel ") + channel);
    *out_kind = static_cast<int>(*k);
    return PARLEY_OK;
  });
}

int parley_channel_meta(char** out_json, parley_client* client, const char* channel) {
  return guard([&]() -> int {
    PARLEY_CHECK(out_json);
    *out_json = nullptr;
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(channel);
    auto m = client->rep->channel_meta(channel);
    if (!m) return not_found(std::string("channel ") + channel);
    return string_out(out_json, meta_json(*m));
  });
}

// ---- Messages --------------------------------------------------------------------

int parley_message_send(char** out_id, parley_client* client, const char* channel,
                        const char* text) {
  return guard([&]() -> int {
    PARLEY_CHECK(out_id);
    *out_id = nullptr;
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(channel);
    PARLEY_CHECK(text);
    auto r = client->rep->send(channel, text);
    if (!r) return fail(r.status());
    return string_out(out_id, *r);
  });
}

int parley_channel_load_history(uint64_t* out_request, parley_client* client,
                                const char* channel, uint64_t before, uint32_t limit) {
  if (out_request != nullptr) *out_request = 0;
  if (channel == nullptr) return bad_arg("channel");
  return request(out_request, client, [&](Client& c) {
    HistoryQuery q;
    q.before = before;
    q.limit = limit;
    return c.load_history(channel, q);
  });
}

int parley_channel_set_typing(parley_client* client, const char* channel, int typing) {
  return guard([&]() -> int {
    PARLEY_ENTER(client);
    PARLEY_CHECK(channel);
    client->rep->set_typing(channel, typing != 0);
    return PARLEY_OK;
  });
}

int parley_channel_mark_read(parley_client* client, const char* channel, uint64_t seq) {
  return guard([&]() -> int {
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(channel);
    Status s = client->rep->mark_read(channel, seq);
    return s.ok() ? PARLEY_OK : fail(s);
  });
}

int parley_receipt_summary_get(parley_receipt_summary* out, parley_client* client,
                               const char* channel, uint64_t seq) {
  return guard([&]() -> int {
    PARLEY_CHECK(out);
    *out = parley_receipt_summary{0, 0, 0};
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(channel);
    auto r = client->rep->receipt_summary(channel, seq);
    if (!r) return fail(r.status());
    out->members = r->members;
    out->delivered = r->delivered;
    out->read = r->read;
    return PARLEY_OK;
  });
}

// ---- Presence --------------------------------------------------------------------

int parley_presence_set(uint64_t* out_request, parley_client* client, int mode,
                        const char* text, int64_t text_until_ms, int hide_last_seen) {
  return guard([&]() -> int {
    if (out_request != nullptr) *out_request = 0;
    PresenceSettings s;
    if (mode != -1) {
      if (mode < PARLEY_PRESENCE_MODE_ONLINE || mode > PARLEY_PRESENCE_MODE_INVISIBLE) {
        return set_error(PARLEY_E_INVALID_ARGUMENT, "unknown presence mode", "invalid_status");
      }
      s.status = static_cast<PresenceMode>(mode);
    }
    if (text != nullptr) s.text = std::string(text);
    if (text_until_ms != -1) {
      s.text_until = std::chrono::system_clock::time_point(std::chrono::milliseconds(text_until_ms));
    }
    if (hide_last_seen != -1) s.hide_last_seen = hide_last_seen != 0;
    return request(out_request, client, [&](Client& c) { return c.set_presence(s); });
  });
}

#define PARLEY_USERS_REQUEST(fn, expr)                                                       \
  int fn(uint64_t* out_request, parley_client* client, const char* const* users,             \
         size_t count PARLEY_EXTRA_PARAM) {                                                   \
    return guard([&]() -> int {                                                               \
      if (out_request != nullptr) *out_request = 0;                                           \
      int rc = PARLEY_OK;                                                                     \
      auto list = user_list(users, count, &rc);                                               \
      if (rc != PARLEY_OK) return rc;                                                         \
      return request(out_request, client, [&](Client& c) { return expr; });                  \
    });                                                                                       \
  }

#define PARLEY_EXTRA_PARAM , int notify
PARLEY_USERS_REQUEST(parley_presence_watch, c.watch_presence(list, notify != 0))
#undef PARLEY_EXTRA_PARAM
#define PARLEY_EXTRA_PARAM
PARLEY_USERS_REQUEST(parley_presence_unwatch, c.unwatch_presence(list))
PARLEY_USERS_REQUEST(parley_presence_query, c.query_presence(list))
#undef PARLEY_EXTRA_PARAM

int parley_presence_get(char** out_json, parley_client* client, const char* user) {
  return guard([&]() -> int {
    PARLEY_CHECK(out_json);
    *out_json = nullptr;
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(user);
    auto p = client->rep->presence(user);
    if (!p) return not_found(std::string("presence of ") + user);
    return string_out(out_json, presence_json(*p));
  });
}

int parley_presence_online_count(uint64_t* out_count, parley_client* client,
                                 const char* channel) {
  return guard([&]() -> int {
    PARLEY_CHECK(out_count);
    *out_count = 0;
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(channel);
    auto n = client->rep->online_count(channel);
    if (!n) return not_found(std::string("online count of ") + channel);
    *out_count = *n;
    return PARLEY_OK;
  });
}

int parley_presence_report_activity(parley_client* client) {
  return guard([&]() -> int {
    PARLEY_ENTER(client);
    client->rep->report_activity();
    return PARLEY_OK;
  });
}

// ---- Direct messages ---------------------------------------------------------------

int parley_direct_open(uint64_t* out_request, parley_client* client, const char* user) {
  if (out_request != nullptr) *out_request = 0;
  if (user == nullptr) return bad_arg("user");
  return request(out_request, client, [&](Client& c) { return c.open_direct(user); });
}

int parley_direct_peer(char** out_user, parley_client* client, const char* channel) {
  return guard([&]() -> int {
    PARLEY_CHECK(out_user);
    *out_user = nullptr;
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(channel);
    auto u = client->rep->direct_peer(channel);
    if (!u) return not_found(std::string("direct channel ") + channel);
    return string_out(out_user, *u);
  });
}

int parley_direct_channel(char** out_channel, parley_client* client, const char* user) {
  return guard([&]() -> int {
    PARLEY_CHECK(out_channel);
    *out_channel = nullptr;
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(user);
    auto ch = client->rep->direct_channel(user);
    if (!ch) return not_found(std::string("direct channel with ") + user);
    return string_out(out_channel, *ch);
  });
}

int parley_safety_number_load(uint64_t* out_request, parley_client* client, const char* user) {
  if (out_request != nullptr) *out_request = 0;
  if (user == nullptr) return bad_arg("user");
  return request(out_request, client, [&](Client& c) { return c.load_safety_number(user); });
}

int parley_contact_verify(parley_client* client, const char* user, int verified,
                          const char* shown_number) {
  return guard([&]() -> int {
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(user);
    Status s = client->rep->verify_contact(user, verified != 0,
                                           shown_number != nullptr ? shown_number : "");
    return s.ok() ? PARLEY_OK : fail(s);
  });
}

int parley_device_list(uint64_t* out_request, parley_client* client) {
  return request(out_request, client, [&](Client& c) { return c.list_devices(); });
}

int parley_device_remove(uint64_t* out_request, parley_client* client, const char* device) {
  if (out_request != nullptr) *out_request = 0;
  if (device == nullptr) return bad_arg("device");
  return request(out_request, client, [&](Client& c) { return c.remove_device(device); });
}

int parley_user_block(uint64_t* out_request, parley_client* client, const char* user) {
  if (out_request != nullptr) *out_request = 0;
  if (user == nullptr) return bad_arg("user");
  return request(out_request, client, [&](Client& c) { return c.block_user(user, true); });
}

int parley_user_unblock(uint64_t* out_request, parley_client* client, const char* user) {
  if (out_request != nullptr) *out_request = 0;
  if (user == nullptr) return bad_arg("user");
  return request(out_request, client, [&](Client& c) { return c.block_user(user, false); });
}

int parley_user_list_blocked(uint64_t* out_request, parley_client* client) {
  return request(out_request, client, [&](Client& c) { return c.load_blocked_users(); });
}

// ---- Notifications -----------------------------------------------------------------

int parley_notification_set_level(uint64_t* out_request, parley_client* client,
                                  const char* channel, int level, int64_t mute_until_ms) {
  if (out_request != nullptr) *out_request = 0;
  if (channel == nullptr) return bad_arg("channel");
  if (level < PARLEY_NOTIFY_ALL || level > PARLEY_NOTIFY_NONE) {
    return set_error(PARLEY_E_INVALID_ARGUMENT, "unknown notification level", "invalid_level");
  }
  return request(out_request, client, [&](Client& c) {
    std::optional<std::chrono::system_clock::time_point> until;
    if (mute_until_ms > 0) {
      until = std::chrono::system_clock::time_point(std::chrono::milliseconds(mute_until_ms));
    }
    return c.set_notification_level(channel, static_cast<NotificationLevel>(level), until);
  });
}

int parley_notification_level(int* out_level, int64_t* out_mute_until_ms, parley_client* client,
                              const char* channel) {
  return guard([&]() -> int {
    PARLEY_CHECK(out_level);
    *out_level = -1;
    if (out_mute_until_ms != nullptr) *out_mute_until_ms = 0;
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(channel);
    auto level = client->rep->notification_level(channel);
    if (!level) return not_found(std::string("channel ") + channel);
    *out_level = static_cast<int>(*level);
    if (out_mute_until_ms != nullptr) {
      auto until = client->rep->notification_muted_until(channel);
      if (until) {
        *out_mute_until_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 until->time_since_epoch())
                                 .count();
      }
    }
    return PARLEY_OK;
  });
}

int parley_unread_count(uint64_t* out_unread, uint64_t* out_mentions, parley_client* client,
                        const char* channel) {
  return guard([&]() -> int {
    if (out_unread != nullptr) *out_unread = 0;
    if (out_mentions != nullptr) *out_mentions = 0;
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(channel);
    UnreadCount u = client->rep->unread(channel);
    if (out_unread != nullptr) *out_unread = u.unread;
    if (out_mentions != nullptr) *out_mentions = u.mentions;
    return PARLEY_OK;
  });
}

int parley_unread_badge(uint64_t* out_unread, uint64_t* out_mentions, parley_client* client) {
  return guard([&]() -> int {
    if (out_unread != nullptr) *out_unread = 0;
    if (out_mentions != nullptr) *out_mentions = 0;
    PARLEY_ENTER_WAIT(client);
    UnreadCount u = client->rep->badge();
    if (out_unread != nullptr) *out_unread = u.unread;
    if (out_mentions != nullptr) *out_mentions = u.mentions;
    return PARLEY_OK;
  });
}

// ---- Collaborative documents ---------------------------------------------------------

#define PARLEY_DOC_REQUEST(fn, call)                                                        \
  int fn(uint64_t* out_request, parley_client* client, const char* channel,                \
         const char* title) {                                                               \
    if (out_request != nullptr) *out_request = 0;                                           \
    if (channel == nullptr) return bad_arg("channel");                                      \
    if (title == nullptr) return bad_arg("title");                                          \
    return request(out_request, client, [&](Client& c) { return c.call(channel, title); }); \
  }

PARLEY_DOC_REQUEST(parley_doc_create, create_document)
PARLEY_DOC_REQUEST(parley_doc_open, open_document)
PARLEY_DOC_REQUEST(parley_doc_close, close_document)

int parley_doc_insert(parley_client* client, const char* channel, const char* title,
                      uint64_t pos, const char* utf8) {
  return guard([&]() -> int {
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(channel);
    PARLEY_CHECK(title);
    PARLEY_CHECK(utf8);
    Status s = client->rep->insert_text(channel, title, pos, utf8);
    return s.ok() ? PARLEY_OK : fail(s);
  });
}

int parley_doc_delete(parley_client* client, const char* channel, const char* title,
                      uint64_t pos, uint64_t count) {
  return guard([&]() -> int {
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(channel);
    PARLEY_CHECK(title);
    Status s = client->rep->delete_text(channel, title, pos, count);
    return s.ok() ? PARLEY_OK : fail(s);
  });
}

int parley_doc_text(char** out_text, size_t* out_len, uint64_t* out_version,
                    uint64_t* out_pending, parley_client* client, const char* channel,
                    const char* title) {
  return guard([&]() -> int {
    PARLEY_CHECK(out_text);
    *out_text = nullptr;
    if (out_len != nullptr) *out_len = 0;
    if (out_version != nullptr) *out_version = 0;
    if (out_pending != nullptr) *out_pending = 0;
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(channel);
    PARLEY_CHECK(title);
    auto view = client->rep->document_text(channel, title);
    if (!view) return fail(view.status());
    if (int rc = string_out(out_text, view->text); rc != PARLEY_OK) return rc;
    if (out_len != nullptr) *out_len = view->text.size();
    if (out_version != nullptr) *out_version = view->version;
    if (out_pending != nullptr) *out_pending = view->pending_updates;
    return PARLEY_OK;
  });
}

int parley_doc_list(uint64_t* out_request, parley_client* client, const char* channel) {
  if (out_request != nullptr) *out_request = 0;
  if (channel == nullptr) return bad_arg("channel");
  return request(out_request, client, [&](Client& c) { return c.list_documents(channel); });
}

int parley_doc_set_cursor(parley_client* client, const char* channel, const char* title,
                          int64_t cursor, int64_t anchor) {
  return guard([&]() -> int {
    PARLEY_ENTER_WAIT(client);
    PARLEY_CHECK(channel);
    PARLEY_CHECK(title);
    if (cursor < -1 || anchor < -1) {
      return set_error(PARLEY_E_INVALID_ARGUMENT,
                       "cursor and anchor are positions, or -1 for none", "invalid_position");
    }
    std::optional<std::uint64_t> c, a;
    if (cursor >= 0) c = static_cast<std::uint64_t>(cursor);
    if (anchor >= 0) a = static_cast<std::uint64_t>(anchor);
    Status s = client->rep->set_document_cursor(channel, title, c, a);
    return s.ok() ? PARLEY_OK : fail(s);
  });
}

int parley_doc_pending(uint64_t* out_count, parley_client* client) {
  return guard([&]() -> int {
    PARLEY_CHECK(out_count);
    *out_count = 0;
    PARLEY_ENTER_WAIT(client);
    auto n = client->rep->pending_document_updates();
    if (!n) return fail(n.status());
    *out_count = *n;
    return PARLEY_OK;
  });
}

}  // extern "C"
