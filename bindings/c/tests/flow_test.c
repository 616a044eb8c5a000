/* ctest c-flow: the C ABI end to end, written in C99 and compiled as C.
 *
 * Starts a real parley-server on 127.0.0.1 (port 0, read from its stdout),
 * mints tokens for alice and bob, and runs two clients through channels,
 * messages, history, typing, read receipts, presence, an encrypted direct
 * message and safety numbers; then a third client that takes its events
 * through the on_event callback and calls the SDK from inside it, up to
 * trying to free itself there (refused). Every wait is bounded.
 *
 *   parley_c_flow_test PATH/TO/parley-server
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "parley.h"

static const char *g_server_bin;
static char g_dir[256];
static pid_t g_server = -1;
static char g_url[64];

static void sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  nanosleep(&ts, NULL);
}

static void stop_server(void) {
  if (g_server > 0) {
    int status = 0;
    int i;
    kill(g_server, SIGTERM);
    for (i = 0; i < 100; ++i) {
      if (waitpid(g_server, &status, WNOHANG) == g_server) break;
      sleep_ms(50);
    }
    if (i == 100) {
      kill(g_server, SIGKILL);
      waitpid(g_server, &status, 0);
    }
    g_server = -1;
  }
  if (g_dir[0] != '\0') {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "c-flow: cannot remove %s\n", g_dir);
    g_dir[0] = '\0';
  }
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "c-flow: FAILED: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (last error: %s [%s])\n", parley_error_last(), parley_error_last_reason());
  va_end(ap);
  stop_server();
  exit(1);
}

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) die("%s:%d: %s", __FILE__, __LINE__, #cond);         \
  } while (0)
#define CHECK_OK(call)                                                \
  do {                                                                \
    int rc_ = (call);                                                 \
    if (rc_ != PARLEY_OK) die("%s:%d: %s returned %d (%s)", __FILE__, __LINE__, #call, rc_, \
                              parley_status_name(rc_));               \
  } while (0)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the server binary with `args` and returns its first line of stdout (malloc'd). */
static char *run_tool(const char *args) {
  char cmd[1024];
  char line[4096];
  FILE *p;
  size_t n;
  snprintf(cmd, sizeof cmd, "'%s' %s", g_server_bin, args);
  p = popen(cmd, "r");
  if (p == NULL) die("popen %s", cmd);
  if (fgets(line, sizeof line, p) == NULL) line[0] = '\0';
  if (pclose(p) != 0) die("%s failed", cmd);
  n = strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
  return strdup(line);
}

static void start_server(void) {
  char key[300], data[300], listen_line[512];
  int out[2];
  FILE *f;
  double deadline;
  char *keygen;
  snprintf(key, sizeof key, "%s/server.key", g_dir);
  snprintf(data, sizeof data, "%s/server", g_dir);
  {
    char args[400];
    snprintf(args, sizeof args, "keygen --out '%s' >/dev/null 2>&1", key);
    keygen = run_tool(args);
    free(keygen);
  }
  if (pipe(out) != 0) die("pipe");
  g_server = fork();
  if (g_server < 0) die("fork");
  if (g_server == 0) {
    char logpath[300];
    FILE *log;
    snprintf(logpath, sizeof logpath, "%s/server.log", g_dir);
    log = fopen(logpath, "w");
    dup2(out[1], 1);
    if (log != NULL) dup2(fileno(log), 2);
    close(out[0]);
    close(out[1]);
    execl(g_server_bin, g_server_bin, "--listen", "127.0.0.1:0", "--data", data, "--key", key,
          (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  f = fdopen(out[0], "r");
  if (f == NULL) die("fdopen");
  deadline = now_s() + 20;
  for (;;) {
    const char *at;
    if (now_s() > deadline) die("the server did not say where it listens");
    if (fgets(listen_line, sizeof listen_line, f) == NULL) die("the server exited early");
    at = strstr(listen_line, "listening on 127.0.0.1:");
    if (at != NULL) {
      int port = atoi(at + strlen("listening on 127.0.0.1:"));
      CHECK(port > 0);
      snprintf(g_url, sizeof g_url, "ws://127.0.0.1:%d", port);
      break;
    }
  }
  /* The server's stdout stays open (and unread) until it exits; it prints little. */
}

/* ---- Events: waits with a backlog, so that an event that arrives while
 * waiting for another is not lost. ---- */

#define BACKLOG 1024

typedef struct {
  const char *name;
  parley_client *client;
  parley_event *backlog[BACKLOG];
  int count;
} peer;

static int matches(const parley_event *ev, int kind, uint64_t request, const char *needle) {
  if (ev->kind != kind) return 0;
  if (request != 0 && ev->request != request) return 0;
  if (needle != NULL && strstr(ev->json, needle) == NULL) return 0;
  return 1;
}

/* The first event of `kind` (with that request id when not 0, containing
 * `needle` in its JSON when not NULL), within `seconds`; owned by the caller.
 * NULL when none came in time. */
static parley_event *try_event(peer *p, int kind, uint64_t request, const char *needle,
                               double seconds) {
  double deadline = now_s() + seconds;
  int i;
  for (i = 0; i < p->count; ++i) {
    if (matches(p->backlog[i], kind, request, needle)) {
      parley_event *ev = p->backlog[i];
      memmove(&p->backlog[i], &p->backlog[i + 1], (size_t)(p->count - i - 1) * sizeof ev);
      p->count--;
      return ev;
    }
  }
  while (now_s() < deadline) {
    parley_event *ev = NULL;
    CHECK_OK(parley_client_next_event(&ev, p->client, 200));
    if (ev == NULL) continue;
    CHECK(ev->json != NULL && strncmp(ev->json, "{\"v\":1,\"type\":\"", 15) == 0);
    CHECK(strcmp(parley_event_kind_name(ev->kind), "unknown") != 0);
    if (matches(ev, kind, request, needle)) return ev;
    if (p->count == BACKLOG) {
      parley_event_free(p->backlog[0]);
      memmove(&p->backlog[0], &p->backlog[1], (BACKLOG - 1) * sizeof ev);
      p->count--;
    }
    p->backlog[p->count++] = ev;
  }
  return NULL;
}

/* try_event, failing the test when none came in time. */
static parley_event *wait_event(peer *p, int kind, uint64_t request, const char *needle,
                                double seconds) {
  parley_event *ev = try_event(p, kind, request, needle, seconds);
  if (ev == NULL) {
    die("%s: no %s event%s%s within %.0f s", p->name, parley_event_kind_name(kind),
        needle ? " with " : "", needle ? needle : "", seconds);
  }
  return ev;
}

/* Waits for a request's completion and checks its status. */
static parley_event *wait_done(peer *p, int kind, uint64_t request, int status) {
  parley_event *ev = wait_event(p, kind, request, NULL, 20);
  if (ev->status != status) {
    die("%s: request %llu ended with %d (%s: %s), expected %d", p->name,
        (unsigned long long)request, ev->status, ev->reason, ev->message, status);
  }
  return ev;
}

static void peer_free(peer *p) {
  int i;
  for (i = 0; i < p->count; ++i) parley_event_free(p->backlog[i]);
  p->count = 0;
  parley_client_free(p->client);
  p->client = NULL;
}

/* Analytics of alice's client: counts events and checks, from inside the
 * callback, that calling the client and freeing it are refused. */
typedef struct {
  pthread_mutex_t mu;
  parley_client *client; /* set once created, cleared before the free */
  int events, message_sent, bad_json, refused, free_refused;
} analytics_log;
static analytics_log g_analytics = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0, 0, 0};

static void alice_on_analytics(const char *json, void *user_data) {
  analytics_log *a = (analytics_log *)user_data;
  parley_client *c;
  int st = 0, refused = 0, free_refused = 0;
  pthread_mutex_lock(&a->mu);
  c = a->client;
  a->events++;
  if (strncmp(json, "{\"v\":1,\"name\":\"", 15) != 0 || strstr(json, "\"ts_ms\":") == NULL ||
      strstr(json, "\"labels\":{") == NULL || strstr(json, "\"values\":{") == NULL) {
    fprintf(stderr, "c-flow: analytics JSON not as documented: %s\n", json);
    a->bad_json++;
  }
  if (strstr(json, "\"name\":\"message_sent\"") != NULL &&
      strstr(json, "\"channel\":\"c-general\"") != NULL) {
    a->message_sent++;
  }
  pthread_mutex_unlock(&a->mu);
  if (c == NULL) return;
  refused = parley_client_state(&st, c) == PARLEY_E_INVALID_ARGUMENT &&
            strcmp(parley_error_last_reason(), "in_analytics_callback") == 0;
  parley_client_free(c); /* refused: nothing happens */
  free_refused = strcmp(parley_error_last_reason(), "in_analytics_callback") == 0;
  pthread_mutex_lock(&a->mu);
  a->refused += refused;
  a->free_refused += free_refused;
  pthread_mutex_unlock(&a->mu);
}

static parley_client *open_client(const char *user, parley_event_callback cb, void *user_data) {
  char args[400], dir[300];
  char *token;
  parley_client *c = NULL;
  parley_client_options o = PARLEY_CLIENT_OPTIONS_INIT;
  snprintf(args, sizeof args, "mint-token --key '%s/server.key' --user %s", g_dir, user);
  token = run_tool(args);
  CHECK(token[0] != '\0');
  snprintf(dir, sizeof dir, "%s/%s", g_dir, user);
  o.server_url = g_url;
  o.token = token;
  o.data_dir = dir;
  o.request_timeout_ms = 15000;
  o.on_event = cb;
  o.on_event_user_data = user_data;
  if (strcmp(user, "alice") == 0) {
    o.on_analytics = alice_on_analytics;
    o.on_analytics_user_data = &g_analytics;
    o.document_name = "Alice in C";
    o.document_color = "#336699";
  }
  CHECK_OK(parley_client_create(&c, &o));
  free(token);
  return c;
}

/* "field":"value" of a flat JSON string field, copied into out. */
static void json_string(char *out, size_t size, const char *json, const char *field) {
  char key[64];
  const char *at, *end;
  size_t n;
  snprintf(key, sizeof key, "\"%s\":\"", field);
  at = strstr(json, key);
  if (at == NULL) die("no field %s in %s", field, json);
  at += strlen(key);
  end = strchr(at, '"');
  CHECK(end != NULL);
  n = (size_t)(end - at);
  CHECK(n < size);
  memcpy(out, at, n);
  out[n] = '\0';
}

static uint64_t json_u64(const char *json, const char *field) {
  char key[64];
  const char *at;
  snprintf(key, sizeof key, "\"%s\":", field);
  at = strstr(json, key);
  if (at == NULL) die("no field %s in %s", field, json);
  return strtoull(at + strlen(key), NULL, 10);
}

/* ---- The callback client ---- */

typedef struct {
  pthread_mutex_t mu;
  int ready;
  int joined;
  int got_message;
  int freed;
  int errors;
  uint64_t join_request;
  parley_client *self;
} carol_state;

/* Static: a callback may still be returning after the test saw `freed`. */
static carol_state g_carol;

static void carol_on_event(const parley_event *ev, void *user_data) {
  carol_state *s = (carol_state *)user_data;
  int state = -1;
  pthread_mutex_lock(&s->mu);
  if (s->freed) { /* the client is being freed: touch it no more */
    pthread_mutex_unlock(&s->mu);
    return;
  }
  /* Calling the SDK from inside the callback is allowed. */
  if (parley_client_state(&state, s->self) != PARLEY_OK) s->errors++;
  if (ev->kind == PARLEY_EVENT_STATE_CHANGED && strstr(ev->json, "\"state\":\"ready\"") &&
      !s->ready) {
    s->ready = 1;
    if (state != PARLEY_STATE_READY) s->errors++;
    if (parley_channel_join(&s->join_request, s->self, "c-general") != PARLEY_OK) s->errors++;
  } else if (ev->kind == PARLEY_EVENT_CHANNEL_REQUEST_DONE && ev->request == s->join_request) {
    char *id = NULL;
    s->joined = ev->status == PARLEY_OK ? 1 : -1;
    if (parley_message_send(&id, s->self, "c-general", "carol from a callback") != PARLEY_OK) {
      s->errors++;
    }
    parley_string_free(id);
  } else if (ev->kind == PARLEY_EVENT_MESSAGE_RECEIVED &&
             strstr(ev->json, "\"text\":\"carol, goodbye\"") != NULL && !s->freed) {
    s->got_message = 1;
    /* Freeing the client from its own callback is refused; it stays usable. */
    parley_client_free(s->self);
    if (strcmp(parley_error_last_reason(), "in_event_callback") != 0) s->errors++;
    if (parley_client_state(&state, s->self) != PARLEY_OK) s->errors++;
    s->freed = 1;
  }
  pthread_mutex_unlock(&s->mu);
}

static int carol_get(carol_state *s, int *field) {
  int v;
  pthread_mutex_lock(&s->mu);
  v = *field;
  pthread_mutex_unlock(&s->mu);
  return v;
}

static void wait_flag(carol_state *s, int *field, const char *what) {
  double deadline = now_s() + 20;
  while (carol_get(s, field) == 0) {
    if (now_s() > deadline) die("carol: %s did not happen", what);
    sleep_ms(20);
  }
}

/* ---- The app-supplied transport, without a server: open is called with the
 * URL and subprotocol, a failed open is a connect_failed, an open connection
 * gets the client's frames through send, and close is called at the end. ---- */

typedef struct {
  pthread_mutex_t mu;
  int opens;
  int sends;
  int closes;
  char url[128];
  char subprotocol[64];
  char first_frame[256];
  parley_transport *handle;
} fake_transport;

static fake_transport g_fake;

static void fake_open(parley_transport *t, const char *url, const char *sub, void *user_data) {
  fake_transport *f = (fake_transport *)user_data;
  pthread_mutex_lock(&f->mu);
  f->opens++;
  f->handle = t;
  snprintf(f->url, sizeof f->url, "%s", url);
  snprintf(f->subprotocol, sizeof f->subprotocol, "%s", sub);
  /* The first attempt fails at once, from inside the callback; the second opens. */
  if (f->opens == 1) {
    parley_transport_set_state(t, PARLEY_TRANSPORT_CLOSED, 0, "refused by the test");
  } else {
    parley_transport_set_state(t, PARLEY_TRANSPORT_OPEN, 0, NULL);
  }
  pthread_mutex_unlock(&f->mu);
}

static void fake_send(const char *frame, size_t len, void *user_data) {
  fake_transport *f = (fake_transport *)user_data;
  pthread_mutex_lock(&f->mu);
  if (f->sends++ == 0) {
    size_t n = len < sizeof f->first_frame - 1 ? len : sizeof f->first_frame - 1;
    memcpy(f->first_frame, frame, n);
    f->first_frame[n] = '\0';
  }
  pthread_mutex_unlock(&f->mu);
}

static void fake_close(int code, const char *reason, void *user_data) {
  fake_transport *f = (fake_transport *)user_data;
  (void)code;
  (void)reason;
  pthread_mutex_lock(&f->mu);
  f->closes++;
  pthread_mutex_unlock(&f->mu);
}

static int fake_get(int *field) {
  int v;
  pthread_mutex_lock(&g_fake.mu);
  v = *field;
  pthread_mutex_unlock(&g_fake.mu);
  return v;
}

static void transport_test(void) {
  parley_transport_callbacks cb;
  parley_client_options o = PARLEY_CLIENT_OPTIONS_INIT;
  char dir[300], args[400];
  char *token;
  peer p;
  parley_event *ev;
  double deadline;
  pthread_mutex_init(&g_fake.mu, NULL);
  snprintf(args, sizeof args, "mint-token --key '%s/server.key' --user faker", g_dir);
  token = run_tool(args);
  cb.version = PARLEY_TRANSPORT_CALLBACKS_VERSION;
  cb.user_data = &g_fake;
  cb.open = fake_open;
  cb.send = fake_send;
  cb.close = fake_close;
  snprintf(dir, sizeof dir, "%s/fake", g_dir);
  o.server_url = "ws://example.invalid:1/";
  o.token = token;
  o.data_dir = dir;
  o.reconnect_base_ms = 50;
  o.reconnect_max_ms = 100;
  o.transport = &cb;
  memset(&p, 0, sizeof p);
  p.name = "fake";
  CHECK(parley_transport_deliver_frame(NULL, "x", 1) == PARLEY_E_INVALID_ARGUMENT);
  CHECK_OK(parley_client_create(&p.client, &o));
  ev = wait_event(&p, PARLEY_EVENT_STATE_CHANGED, 0, "\"reason\":\"connect_failed\"", 10);
  CHECK(strstr(ev->json, "refused by the test") != NULL);
  parley_event_free(ev);
  parley_event_free(wait_event(&p, PARLEY_EVENT_STATE_CHANGED, 0, "\"state\":\"authenticating\"", 10));
  deadline = now_s() + 10;
  while (fake_get(&g_fake.sends) == 0) {
    if (now_s() > deadline) die("the client sent nothing through the app's transport");
    sleep_ms(10);
  }
  pthread_mutex_lock(&g_fake.mu);
  CHECK(strcmp(g_fake.url, "ws://example.invalid:1/") == 0);
  CHECK(g_fake.subprotocol[0] != '\0');
  CHECK(strstr(g_fake.first_frame, token) != NULL);
  pthread_mutex_unlock(&g_fake.mu);
  /* A frame the client cannot parse, delivered from this thread, and a close
   * reported by the app: the client goes on (and connects again). */
  CHECK_OK(parley_transport_deliver_frame(g_fake.handle, "{not json", 9));
  CHECK_OK(parley_transport_set_state(g_fake.handle, PARLEY_TRANSPORT_CLOSED, 1006, NULL));
  deadline = now_s() + 10;
  while (fake_get(&g_fake.opens) < 3) {
    if (now_s() > deadline) die("the client did not connect again after a close");
    sleep_ms(10);
  }
  peer_free(&p);
  free(token);
  printf("c-flow: app-supplied transport: %d opens, %d frames sent, %d closes\n", g_fake.opens,
         g_fake.sends, g_fake.closes);
}

/* ---- Review regressions, with a transport of the test's own (no server):
 * free while on_event calls into the client; on_event held until create has
 * stored *out; client calls from inside transport callbacks; a CLOSED queued
 * just before Parley's close; stale reports on an older connection's handle;
 * invalid UTF-8 in events. ---- */

typedef struct {
  pthread_mutex_t mu;
  int opens;
  int sends;
  int closes;
  parley_transport *handles[16];
  /* What the transport callbacks saw when they called into the client. */
  int in_cb_tested;
  int in_cb_badge_rc;
  char in_cb_badge_reason[64];
  char in_cb_free_reason[64];
  int in_cb_connect_rc;
  /* Send callback: report CLOSED then ask for a disconnect (the race of t2). */
  int drop_on_send;
  parley_client *client;
} rv_transport;

static rv_transport g_rv;

static void rv_open(parley_transport *t, const char *url, const char *sub, void *user_data) {
  rv_transport *f = (rv_transport *)user_data;
  (void)url;
  (void)sub;
  pthread_mutex_lock(&f->mu);
  if (f->opens < 16) f->handles[f->opens] = t;
  f->opens++;
  pthread_mutex_unlock(&f->mu);
  parley_transport_set_state(t, PARLEY_TRANSPORT_OPEN, 0, NULL);
}

static void rv_send(const char *frame, size_t len, void *user_data) {
  rv_transport *f = (rv_transport *)user_data;
  parley_client *c;
  int drop, test;
  (void)frame;
  (void)len;
  pthread_mutex_lock(&f->mu);
  f->sends++;
  c = f->client;
  drop = f->drop_on_send;
  f->drop_on_send = 0;
  test = c != NULL && !f->in_cb_tested;
  pthread_mutex_unlock(&f->mu);
  if (test) {
    uint64_t a = 0, b = 0;
    int rc = parley_unread_badge(&a, &b, c); /* would wait on this very thread */
    char reason[64];
    snprintf(reason, sizeof reason, "%s", parley_error_last_reason());
    parley_client_free(c); /* refused */
    pthread_mutex_lock(&f->mu);
    f->in_cb_badge_rc = rc;
    snprintf(f->in_cb_badge_reason, sizeof f->in_cb_badge_reason, "%s", reason);
    snprintf(f->in_cb_free_reason, sizeof f->in_cb_free_reason, "%s", parley_error_last_reason());
    f->in_cb_connect_rc = parley_client_connect(c); /* only queues: allowed */
    f->in_cb_tested = 1;
    pthread_mutex_unlock(&f->mu);
  }
  if (drop) {
    /* The app goes to the background while the network drops: its CLOSED is
     * queued just before Parley's own close. */
    pthread_mutex_lock(&f->mu);
    parley_transport_set_state(f->handles[f->opens - 1], PARLEY_TRANSPORT_CLOSED, 1006,
                               "network lost");
    pthread_mutex_unlock(&f->mu);
    parley_client_disconnect(c);
  }
}

static void rv_close(int code, const char *reason, void *user_data) {
  rv_transport *f = (rv_transport *)user_data;
  (void)code;
  (void)reason;
  pthread_mutex_lock(&f->mu);
  f->closes++;
  pthread_mutex_unlock(&f->mu);
}

static int rv_get(int *field) {
  int v;
  pthread_mutex_lock(&g_rv.mu);
  v = *field;
  pthread_mutex_unlock(&g_rv.mu);
  return v;
}

static void rv_wait(int *field, int at_least, const char *what) {
  double deadline = now_s() + 10;
  while (rv_get(field) < at_least) {
    if (now_s() > deadline) die("rv: %s did not happen", what);
    sleep_ms(10);
  }
}

/* Waits for a state_changed event with `state` in it; 1 if seen in time. */
static int rv_wait_state(parley_client *c, const char *state, double seconds) {
  double deadline = now_s() + seconds;
  char want[64];
  snprintf(want, sizeof want, "\"state\":\"%s\"", state);
  while (now_s() < deadline) {
    parley_event *ev = NULL;
    CHECK_OK(parley_client_next_event(&ev, c, 50));
    if (ev != NULL) {
      int hit = ev->kind == PARLEY_EVENT_STATE_CHANGED && strstr(ev->json, want) != NULL;
      CHECK(memchr(ev->json, 0xff, ev->json_len) == NULL);
      if (hit && strstr(ev->json, "bad ") != NULL) {
        /* The invalid bytes of the close reason came out as U+FFFD. */
        CHECK(strstr(ev->json, "bad \xef\xbf\xbd reason") != NULL);
        CHECK(strstr(ev->reason, "\xff") == NULL && strstr(ev->message, "\xff") == NULL);
      }
      parley_event_free(ev);
      if (hit) return 1;
    }
  }
  return 0;
}

static char g_rv_token[2048];

static parley_client *rv_client(const char *user, parley_transport_callbacks *cb,
                                parley_event_callback on_event, void *user_data,
                                parley_client **out_slot) {
  parley_client_options o = PARLEY_CLIENT_OPTIONS_INIT;
  char dir[300], args[400];
  char *token;
  snprintf(args, sizeof args, "mint-token --key '%s/server.key' --user %s", g_dir, user);
  token = run_tool(args);
  snprintf(g_rv_token, sizeof g_rv_token, "%s", token);
  snprintf(dir, sizeof dir, "%s/%s", g_dir, user);
  o.server_url = "ws://example.invalid:1/";
  o.token = token;
  o.data_dir = dir;
  o.auto_connect = 0;
  o.reconnect_base_ms = 50;
  o.reconnect_max_ms = 100;
  o.transport = cb;
  o.on_event = on_event;
  o.on_event_user_data = user_data;
  CHECK_OK(parley_client_create(out_slot, &o));
  free(token);
  return *out_slot;
}

/* The busy callback: every event calls into the client (which must already
 * be stored), and no event may come after parley_client_free returned. */
typedef struct {
  parley_client *volatile client;
  volatile int events;
  volatile int null_client;
  volatile int bad_rc;
  volatile int free_returned;
  volatile int after_free;
} busy_state;

static busy_state g_busy;

static void busy_on_event(const parley_event *ev, void *user_data) {
  busy_state *s = (busy_state *)user_data;
  uint64_t a, b;
  int i, rc;
  (void)ev;
  if (s->free_returned) s->after_free++;
  if (s->client == NULL) {
    s->null_client++;
    return;
  }
  for (i = 0; i < 20; ++i) {
    rc = parley_unread_badge(&a, &b, s->client);
    if (rc != PARLEY_OK && rc != PARLEY_E_CANCELLED) s->bad_rc++;
    if (rc == PARLEY_E_CANCELLED && strcmp(parley_error_last_reason(), "client_closing") != 0) {
      s->bad_rc++;
    }
    sleep_ms(5);
  }
  s->events++;
}

static void review_test(void) {
  parley_transport_callbacks cb;
  parley_client *c = NULL;
  int state = -1;
  double t0;
  pthread_mutex_init(&g_rv.mu, NULL);
  cb.version = PARLEY_TRANSPORT_CALLBACKS_VERSION;
  cb.user_data = &g_rv;
  cb.open = rv_open;
  cb.send = rv_send;
  cb.close = rv_close;

  /* 1 and 6: on_event sees the stored client and calls into it while the
   * main thread frees it; the free returns, and nothing runs after it. */
  memset((void *)&g_busy, 0, sizeof g_busy);
  {
    parley_client_options o = PARLEY_CLIENT_OPTIONS_INIT;
    char dir[300], args[400];
    char *token;
    snprintf(args, sizeof args, "mint-token --key '%s/server.key' --user busy", g_dir);
    token = run_tool(args);
    snprintf(dir, sizeof dir, "%s/busy", g_dir);
    o.server_url = "ws://example.invalid:1/";
    o.token = token;
    o.data_dir = dir;
    o.reconnect_base_ms = 50;
    o.reconnect_max_ms = 100;
    o.transport = &cb;
    o.on_event = busy_on_event;
    o.on_event_user_data = &g_busy;
    /* auto_connect: events start while create is still running. */
    CHECK_OK(parley_client_create((parley_client **)&g_busy.client, &o));
    free(token);
  }
  t0 = now_s();
  while (g_busy.events < 1 && now_s() < t0 + 10) sleep_ms(5);
  CHECK(g_busy.events >= 1);
  t0 = now_s();
  parley_client_free(g_busy.client);
  g_busy.free_returned = 1;
  CHECK(now_s() - t0 < 10);
  sleep_ms(100);
  CHECK(g_busy.null_client == 0);
  CHECK(g_busy.bad_rc == 0);
  CHECK(g_busy.after_free == 0);
  printf("c-flow: freed while on_event called into the client (%d events)\n", g_busy.events);

  /* The busy client's handles are gone with it: start over. */
  pthread_mutex_lock(&g_rv.mu);
  g_rv.opens = 0;
  g_rv.sends = 0;
  g_rv.closes = 0;
  memset(g_rv.handles, 0, sizeof g_rv.handles);
  pthread_mutex_unlock(&g_rv.mu);

  /* 2: client calls from inside a transport callback. */
  rv_client("rv", &cb, NULL, NULL, &c);
  pthread_mutex_lock(&g_rv.mu);
  g_rv.client = c;
  pthread_mutex_unlock(&g_rv.mu);
  CHECK_OK(parley_client_connect(c));
  rv_wait(&g_rv.in_cb_tested, 1, "a send callback");
  pthread_mutex_lock(&g_rv.mu);
  CHECK(g_rv.in_cb_badge_rc == PARLEY_E_INVALID_ARGUMENT);
  CHECK(strcmp(g_rv.in_cb_badge_reason, "in_transport_callback") == 0);
  CHECK(strcmp(g_rv.in_cb_free_reason, "in_transport_callback") == 0);
  CHECK(g_rv.in_cb_connect_rc == PARLEY_OK);
  pthread_mutex_unlock(&g_rv.mu);
  CHECK(rv_wait_state(c, "authenticating", 10));
  printf("c-flow: transport callbacks cannot wait on the client's thread\n");

  /* 4: a stale CLOSED and frame on the first connection's handle after a
   * reconnect are dropped; the new connection lives on. */
  CHECK_OK(parley_client_set_token(c, g_rv_token));
  rv_wait(&g_rv.opens, 2, "the second open");
  CHECK(rv_wait_state(c, "authenticating", 10));
  pthread_mutex_lock(&g_rv.mu);
  CHECK(g_rv.handles[0] != g_rv.handles[1]);
  CHECK_OK(parley_transport_set_state(g_rv.handles[0], PARLEY_TRANSPORT_CLOSED, 1000, "old"));
  CHECK_OK(parley_transport_deliver_frame(g_rv.handles[0], "{}", 2));
  pthread_mutex_unlock(&g_rv.mu);
  CHECK(!rv_wait_state(c, "disconnected", 0.5));
  CHECK_OK(parley_client_state(&state, c));
  CHECK(state == PARLEY_STATE_AUTHENTICATING);
  /* 5: invalid UTF-8 in a close reason (checked by rv_wait_state). */
  pthread_mutex_lock(&g_rv.mu);
  CHECK_OK(parley_transport_set_state(g_rv.handles[1], PARLEY_TRANSPORT_CLOSED, 4001,
                                      "bad \xff reason"));
  pthread_mutex_unlock(&g_rv.mu);
  CHECK(rv_wait_state(c, "disconnected", 10));
  printf("c-flow: stale reports dropped, invalid UTF-8 replaced\n");

  /* 3: CLOSED queued just before Parley's close: the client is not stuck. */
  CHECK_OK(parley_client_disconnect(c));
  sleep_ms(200);
  for (;;) { /* drain */
    parley_event *ev = NULL;
    CHECK_OK(parley_client_next_event(&ev, c, 100));
    if (ev == NULL) break;
    parley_event_free(ev);
  }
  pthread_mutex_lock(&g_rv.mu);
  g_rv.drop_on_send = 1;
  pthread_mutex_unlock(&g_rv.mu);
  CHECK_OK(parley_client_connect(c));
  CHECK(rv_wait_state(c, "disconnected", 10));
  CHECK_OK(parley_client_connect(c));
  CHECK(rv_wait_state(c, "authenticating", 10));
  printf("c-flow: a CLOSED just before close still ends the connection once\n");

  /* After free started: calls are cancelled without touching the engine
   * (checked through the busy client above); here just a clean free. */
  parley_client_free(c);
}

/* ---- Collaborative documents: alice and bob (a moderator of c-general) ---- */

#define DOC_CH "c-general"
#define DOC "c-notes"

/* Takes `p`'s DOCUMENT_CHANGED events of DOC for up to `seconds`, keeping
 * the text of the last one in `text`; true once one came. */
static int take_doc_changes(peer *p, char *text, size_t size, double seconds) {
  int got = 0;
  parley_event *ev;
  while ((ev = try_event(p, PARLEY_EVENT_DOCUMENT_CHANGED, 0, "\"title\":\"" DOC "\"",
                         seconds)) != NULL) {
    CHECK(strcmp(ev->channel, DOC_CH) == 0 && ev->request == 0 && ev->status == PARLEY_OK);
    json_string(text, size, ev->json, "text");
    parley_event_free(ev);
    got = 1;
    seconds = 0; /* then only what is already there */
  }
  return got;
}

/* The document's text in `p`'s cache (its version and pending edits too). */
static void doc_text(peer *p, char *text, size_t size, uint64_t *version, uint64_t *pending) {
  char *t = NULL;
  size_t len = 99;
  CHECK_OK(parley_doc_text(&t, &len, version, pending, p->client, DOC_CH, DOC));
  CHECK(t != NULL && len == strlen(t) && len < size);
  memcpy(text, t, len + 1);
  parley_string_free(t);
}

static void docs_test(peer *alice, peer *bob) {
  parley_event *ev;
  uint64_t req = 77, n = 77, va = 0, vb = 0, pending = 99;
  char ta[256] = "", tb[256] = "", text[256];
  char *s = NULL;
  double deadline;

  /* NULL arguments are refused; outputs are cleared. */
  CHECK(parley_doc_create(&req, alice->client, NULL, DOC) == PARLEY_E_INVALID_ARGUMENT);
  CHECK(req == 0 && strstr(parley_error_last(), "channel") != NULL);
  CHECK(parley_doc_open(&req, alice->client, DOC_CH, NULL) == PARLEY_E_INVALID_ARGUMENT);
  CHECK(parley_doc_close(&req, NULL, DOC_CH, DOC) == PARLEY_E_INVALID_ARGUMENT);
  CHECK(parley_doc_list(&req, alice->client, NULL) == PARLEY_E_INVALID_ARGUMENT);
  CHECK(parley_doc_insert(alice->client, DOC_CH, DOC, 0, NULL) == PARLEY_E_INVALID_ARGUMENT);
  CHECK(strcmp(parley_error_last_reason(), "invalid_argument") == 0);
  CHECK(parley_doc_insert(NULL, DOC_CH, DOC, 0, "x") == PARLEY_E_INVALID_ARGUMENT);
  CHECK(parley_doc_delete(alice->client, NULL, DOC, 0, 1) == PARLEY_E_INVALID_ARGUMENT);
  CHECK(parley_doc_text(NULL, NULL, NULL, NULL, alice->client, DOC_CH, DOC) ==
        PARLEY_E_INVALID_ARGUMENT);
  CHECK(parley_doc_text(&s, NULL, NULL, NULL, alice->client, DOC_CH, NULL) ==
        PARLEY_E_INVALID_ARGUMENT && s == NULL);
  CHECK(parley_doc_set_cursor(alice->client, NULL, DOC, 0, -1) == PARLEY_E_INVALID_ARGUMENT);
  CHECK(parley_doc_pending(NULL, alice->client) == PARLEY_E_INVALID_ARGUMENT);
  CHECK(parley_doc_pending(&n, NULL) == PARLEY_E_INVALID_ARGUMENT && n == 0);

  /* A document neither cache has. */
  CHECK(parley_doc_insert(alice->client, DOC_CH, DOC, 0, "x") == PARLEY_E_NOT_FOUND);
  CHECK(strcmp(parley_error_last_reason(), "no_such_doc") == 0);
  va = 5;
  CHECK(parley_doc_text(&s, NULL, &va, NULL, bob->client, DOC_CH, DOC) == PARLEY_E_NOT_FOUND);
  CHECK(s == NULL && va == 0 && strcmp(parley_error_last_reason(), "no_such_doc") == 0);
  CHECK(parley_doc_set_cursor(alice->client, DOC_CH, DOC, 0, -1) == PARLEY_E_NOT_FOUND);
  CHECK(strcmp(parley_error_last_reason(), "doc_not_open") == 0);
  CHECK_OK(parley_doc_open(&req, bob->client, DOC_CH, "no-such-doc"));
  ev = wait_done(bob, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_E_NOT_FOUND);
  CHECK(strcmp(ev->reason, "no_such_doc") == 0);
  parley_event_free(ev);

  /* Create (once), then both open it. */
  CHECK_OK(parley_doc_create(&req, alice->client, DOC_CH, DOC));
  CHECK(req != 0);
  ev = wait_done(alice, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_OK);
  CHECK(json_u64(ev->json, "seq") > 0);
  parley_event_free(ev);
  CHECK_OK(parley_doc_create(&req, alice->client, DOC_CH, DOC));
  ev = wait_done(alice, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_E_ALREADY_EXISTS);
  CHECK(strcmp(ev->reason, "doc_exists") == 0);
  parley_event_free(ev);
  CHECK_OK(parley_doc_open(&req, alice->client, DOC_CH, DOC));
  parley_event_free(wait_done(alice, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_OK));
  CHECK_OK(parley_doc_open(&req, bob->client, DOC_CH, DOC));
  parley_event_free(wait_done(bob, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_OK));
  CHECK(take_doc_changes(alice, ta, sizeof ta, 20) && ta[0] == '\0');
  CHECK(take_doc_changes(bob, tb, sizeof tb, 20) && tb[0] == '\0');

  /* Both insert at 0 at once; every change arrives as DOCUMENT_CHANGED until
   * the two replicas hold the same text. */
  CHECK_OK(parley_doc_insert(alice->client, DOC_CH, DOC, 0, "hello "));
  CHECK_OK(parley_doc_insert(bob->client, DOC_CH, DOC, 0, "world"));
  deadline = now_s() + 20;
  while (strlen(ta) != 11 || strcmp(ta, tb) != 0) {
    if (now_s() > deadline) die("documents did not converge: \"%s\" and \"%s\"", ta, tb);
    take_doc_changes(alice, ta, sizeof ta, 0.1);
    take_doc_changes(bob, tb, sizeof tb, 0.1);
  }
  CHECK(strstr(ta, "hello ") != NULL && strstr(ta, "world") != NULL);
  doc_text(alice, text, sizeof text, &va, NULL);
  CHECK(strcmp(text, ta) == 0);
  doc_text(bob, text, sizeof text, &vb, NULL);
  CHECK(strcmp(text, ta) == 0 && va == vb && va == 11);
  /* Acknowledged by the server: nothing pending. */
  for (deadline = now_s() + 20;; sleep_ms(50)) {
    CHECK_OK(parley_doc_pending(&n, alice->client));
    if (n == 0) break;
    if (now_s() > deadline) die("alice has %llu document edits pending", (unsigned long long)n);
  }
  doc_text(alice, text, sizeof text, NULL, &pending);
  CHECK(pending == 0);
  printf("c-flow: concurrent inserts converged on \"%s\" (version %llu)\n", ta,
         (unsigned long long)va);

  /* A delete travels too. */
  CHECK_OK(parley_doc_delete(bob->client, DOC_CH, DOC, 0, 1));
  doc_text(bob, tb, sizeof tb, &vb, NULL);
  CHECK(strlen(tb) == 10 && vb == 12);
  deadline = now_s() + 20;
  while (strcmp(ta, tb) != 0) {
    if (now_s() > deadline) die("the delete did not reach alice: \"%s\"", ta);
    take_doc_changes(alice, ta, sizeof ta, 0.1);
  }

  /* Edits refused by the SDK, with their reasons. */
  CHECK(parley_doc_insert(alice->client, DOC_CH, DOC, 1000, "x") == PARLEY_E_INVALID_ARGUMENT);
  CHECK(strcmp(parley_error_last_reason(), "invalid_position") == 0);
  CHECK(strstr(parley_error_last(), "1000") != NULL);
  CHECK(parley_doc_delete(alice->client, DOC_CH, DOC, 8, 5) == PARLEY_E_INVALID_ARGUMENT);
  CHECK(strcmp(parley_error_last_reason(), "invalid_position") == 0);
  CHECK(parley_doc_delete(alice->client, DOC_CH, DOC, 0, 0) == PARLEY_E_INVALID_ARGUMENT);
  CHECK(strcmp(parley_error_last_reason(), "invalid_count") == 0);
  CHECK(parley_doc_insert(alice->client, DOC_CH, DOC, 0, "") == PARLEY_E_INVALID_ARGUMENT);
  CHECK(strcmp(parley_error_last_reason(), "invalid_text") == 0);
  CHECK(parley_doc_insert(alice->client, DOC_CH, DOC, 0, "\xff") == PARLEY_E_INVALID_ARGUMENT);
  CHECK(strcmp(parley_error_last_reason(), "invalid_utf8") == 0);
  CHECK(parley_doc_set_cursor(alice->client, DOC_CH, DOC, -2, -1) == PARLEY_E_INVALID_ARGUMENT);
  CHECK(strcmp(parley_error_last_reason(), "invalid_position") == 0);

  /* Cursors: bob sees alice's, with her document_name and document_color. */
  CHECK_OK(parley_doc_set_cursor(alice->client, DOC_CH, DOC, 3, 1));
  ev = wait_event(bob, PARLEY_EVENT_DOCUMENT_AWARENESS, 0, "\"cursor\":3,\"anchor\":1", 20);
  CHECK(strcmp(ev->channel, DOC_CH) == 0);
  CHECK(strstr(ev->json, "\"title\":\"" DOC "\",\"user\":\"alice\"") != NULL);
  CHECK(strstr(ev->json, "\"name\":\"Alice in C\",\"color\":\"#336699\",\"gone\":false") != NULL);
  parley_event_free(ev);
  printf("c-flow: delete, refused edits and a cursor with name and colour\n");

  /* The channel's documents. */
  CHECK_OK(parley_doc_list(&req, bob->client, DOC_CH));
  ev = wait_done(bob, PARLEY_EVENT_DOCUMENTS_LOADED, req, PARLEY_OK);
  CHECK(strcmp(ev->channel, DOC_CH) == 0 && strstr(ev->json, "\"complete\":true") != NULL);
  CHECK(strstr(ev->json, "{\"title\":\"" DOC "\",\"kind\":\"text\",\"creator\":\"alice\"") !=
        NULL);
  parley_event_free(ev);

  /* A read-only member's edit: applied here, refused by the server. */
  CHECK_OK(parley_channel_set_role(&req, alice->client, DOC_CH, "bob", PARLEY_ROLE_READ_ONLY));
  parley_event_free(wait_done(alice, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_OK));
  parley_event_free(
      wait_event(bob, PARLEY_EVENT_MESSAGE_RECEIVED, 0, "\"role\":\"read_only\"", 20));
  CHECK_OK(parley_doc_insert(bob->client, DOC_CH, DOC, 0, "nope"));
  ev = wait_event(bob, PARLEY_EVENT_DOCUMENT_FAILED, 0, "\"title\":\"" DOC "\"", 20);
  CHECK(ev->status == PARLEY_E_FORBIDDEN && strcmp(ev->channel, DOC_CH) == 0);
  CHECK(json_u64(ev->json, "dropped") >= 1);
  parley_event_free(ev);
  printf("c-flow: documents listed; a read-only member's edit refused (DOCUMENT_FAILED)\n");

  CHECK_OK(parley_doc_close(&req, bob->client, DOC_CH, DOC));
  parley_event_free(wait_done(bob, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_OK));
  CHECK_OK(parley_doc_close(&req, alice->client, DOC_CH, DOC));
  parley_event_free(wait_done(alice, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_OK));
}

int main(int argc, char **argv) {
  peer alice, bob;
  parley_event *ev;
  uint64_t req = 0, seq = 0;
  char *id = NULL, *s = NULL;
  char dm[128], number_a[128], number_b[128];
  int state = -1, i;
  parley_receipt_summary summary;

  if (argc != 2) {
    fprintf(stderr, "usage: %s PATH/TO/parley-server\n", argv[0]);
    return 2;
  }
  g_server_bin = argv[1];
  signal(SIGPIPE, SIG_IGN);
  {
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/parley-c-flow-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(g_dir) == NULL) {
      g_dir[0] = '\0';
      die("mkdtemp");
    }
  }
  start_server();
  transport_test();
  review_test();
  printf("c-flow: server at %s, library %s (ABI %d)\n", g_url, parley_version(),
         parley_abi_version());
  CHECK(parley_abi_version() == PARLEY_ABI_VERSION);

  /* Conventions: NULL handling, error reporting, _free(NULL). */
  CHECK(parley_channel_join(&req, NULL, "x") == PARLEY_E_INVALID_ARGUMENT);
  CHECK(strstr(parley_error_last(), "NULL") != NULL);
  CHECK(strcmp(parley_error_last_reason(), "invalid_argument") == 0);
  CHECK(strcmp(parley_status_name(PARLEY_E_ALREADY_EXISTS), "already_exists") == 0);
  CHECK(strcmp(parley_status_name(PARLEY_E_NOMEM), "nomem") == 0);
  parley_client_free(NULL);
  parley_event_free(NULL);
  parley_string_free(NULL);
  {
    parley_client *c = NULL;
    parley_client_options bad;
    parley_client_options_init(&bad);
    CHECK(bad.version == PARLEY_CLIENT_OPTIONS_VERSION && bad.auto_connect == 1);
    bad.server_url = "not a url";
    bad.data_dir = "";
    CHECK(parley_client_create(&c, &bad) == PARLEY_E_INVALID_ARGUMENT && c == NULL);
    CHECK(parley_error_last()[0] != '\0');
    /* Options of the pre-release version 1 (callbacks with user_data first). */
    parley_client_options_init(&bad);
    bad.version = 1;
    CHECK(parley_client_create(&c, &bad) == PARLEY_E_INVALID_ARGUMENT && c == NULL);
    CHECK(strstr(parley_error_last(), "version 1") != NULL);
    /* Version 2 (an app built before document_name was appended): still accepted. */
    {
      char dir[300], args[400];
      char *token;
      snprintf(dir, sizeof dir, "%s/options-v2", g_dir);
      snprintf(args, sizeof args, "mint-token --key '%s/server.key' --user dave", g_dir);
      token = run_tool(args);
      parley_client_options_init(&bad);
      bad.version = 2;
      bad.server_url = g_url;
      bad.token = token;
      bad.data_dir = dir;
      bad.auto_connect = 0;
      CHECK_OK(parley_client_create(&c, &bad));
      CHECK(c != NULL);
      parley_client_free(c);
      c = NULL;
      free(token);
    }
  }
  {
    /* The permission table and the name rules, without a client. */
    int yes = -1;
    CHECK_OK(parley_role_allows(&yes, PARLEY_CHANNEL_PUBLIC, PARLEY_ROLE_MODERATOR,
                                PARLEY_PERMISSION_BAN));
    CHECK(yes == 1);
    CHECK_OK(parley_role_allows(&yes, PARLEY_CHANNEL_PUBLIC, PARLEY_ROLE_MEMBER,
                                PARLEY_PERMISSION_BAN));
    CHECK(yes == 0);
    CHECK_OK(parley_role_allows(&yes, PARLEY_CHANNEL_BROADCAST, PARLEY_ROLE_MEMBER,
                                PARLEY_PERMISSION_POST));
    CHECK(yes == 0);
    CHECK(parley_role_allows(&yes, 7, PARLEY_ROLE_MEMBER, PARLEY_PERMISSION_POST) ==
          PARLEY_E_INVALID_ARGUMENT);
    CHECK(strcmp(parley_error_last_reason(), "invalid_kind") == 0);
    CHECK(parley_role_allows(&yes, PARLEY_CHANNEL_PUBLIC, PARLEY_ROLE_MEMBER, 99) ==
          PARLEY_E_INVALID_ARGUMENT);
    CHECK(parley_role_allows(NULL, 0, 0, 0) == PARLEY_E_INVALID_ARGUMENT);
    CHECK_OK(parley_role_outranks(&yes, PARLEY_ROLE_ADMIN, PARLEY_ROLE_MODERATOR));
    CHECK(yes == 1);
    CHECK_OK(parley_role_outranks(&yes, PARLEY_ROLE_MEMBER, PARLEY_ROLE_MEMBER));
    CHECK(yes == 0);
    CHECK(parley_role_outranks(&yes, -1, PARLEY_ROLE_MEMBER) == PARLEY_E_INVALID_ARGUMENT);
    CHECK_OK(parley_channel_name_check("c-general"));
    CHECK(parley_channel_name_check("has space") == PARLEY_E_INVALID_ARGUMENT);
    CHECK(strcmp(parley_error_last_reason(), "invalid_name") == 0 && parley_error_last()[0]);
    CHECK(parley_channel_name_check("") == PARLEY_E_INVALID_ARGUMENT);
    CHECK_OK(parley_user_name_check("alice"));
    CHECK(parley_user_name_check("-alice") == PARLEY_E_INVALID_ARGUMENT);
    CHECK(strcmp(parley_error_last_reason(), "invalid_user") == 0);
    CHECK(parley_user_name_check(NULL) == PARLEY_E_INVALID_ARGUMENT);
    /* Names of the constants, and back. */
    CHECK(strcmp(parley_name(PARLEY_NAMES_ROLE, PARLEY_ROLE_READ_ONLY), "read_only") == 0);
    CHECK(strcmp(parley_name(PARLEY_NAMES_STATE, PARLEY_STATE_READY), "ready") == 0);
    CHECK(strcmp(parley_name(PARLEY_NAMES_CHANNEL_KIND, PARLEY_CHANNEL_BROADCAST),
                 "broadcast") == 0);
    CHECK(strcmp(parley_name(PARLEY_NAMES_PERMISSION, PARLEY_PERMISSION_EDIT_META),
                 "edit_meta") == 0);
    CHECK(strcmp(parley_name(PARLEY_NAMES_NOTIFY, PARLEY_NOTIFY_MENTIONS), "mentions") == 0);
    CHECK(strcmp(parley_name(PARLEY_NAMES_PRESENCE_MODE, PARLEY_PRESENCE_MODE_AWAY), "away") == 0);
    CHECK(parley_name(PARLEY_NAMES_ROLE, 5) == NULL && parley_name(99, 0) == NULL);
    CHECK(parley_name(PARLEY_NAMES_ROLE, -1) == NULL);
    CHECK_OK(parley_parse(&yes, PARLEY_NAMES_PERMISSION, "change_roles"));
    CHECK(yes == PARLEY_PERMISSION_CHANGE_ROLES);
    CHECK_OK(parley_parse(&yes, PARLEY_NAMES_CHANNEL_KIND, "private"));
    CHECK(yes == PARLEY_CHANNEL_PRIVATE);
    CHECK(parley_parse(&yes, PARLEY_NAMES_ROLE, "king") == PARLEY_E_INVALID_ARGUMENT && yes == -1);
    CHECK(strcmp(parley_error_last_reason(), "unknown_name") == 0);
    CHECK(parley_parse(&yes, 0, "ready") == PARLEY_E_INVALID_ARGUMENT);
    printf("c-flow: permission table, name rules, names of constants\n");
  }

  memset(&alice, 0, sizeof alice);
  memset(&bob, 0, sizeof bob);
  alice.name = "alice";
  bob.name = "bob";
  alice.client = open_client("alice", NULL, NULL);
  pthread_mutex_lock(&g_analytics.mu);
  g_analytics.client = alice.client;
  pthread_mutex_unlock(&g_analytics.mu);
  bob.client = open_client("bob", NULL, NULL);
  CHECK_OK(parley_client_user(&s, alice.client));
  CHECK(strcmp(s, "alice") == 0);
  parley_string_free(s);
  s = NULL;

  parley_event_free(wait_event(&alice, PARLEY_EVENT_STATE_CHANGED, 0, "\"state\":\"ready\"", 20));
  parley_event_free(wait_event(&bob, PARLEY_EVENT_STATE_CHANGED, 0, "\"state\":\"ready\"", 20));
  CHECK_OK(parley_client_state(&state, alice.client));
  CHECK(state == PARLEY_STATE_READY);
  printf("c-flow: both ready\n");

  /* A channel: create (with metadata), join, list, info, roles. */
  CHECK_OK(parley_channel_create(&req, alice.client, "c-general", PARLEY_CHANNEL_PUBLIC,
                                 "{\"topic\":\"C ABI\",\"data\":{\"x\":1}}"));
  CHECK(req != 0);
  parley_event_free(wait_done(&alice, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_OK));
  CHECK_OK(parley_channel_create(&req, alice.client, "c-general", PARLEY_CHANNEL_PUBLIC, NULL));
  ev = wait_done(&alice, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_E_ALREADY_EXISTS);
  CHECK(strcmp(ev->reason, "channel_exists") == 0);
  CHECK(strcmp(ev->channel, "c-general") == 0);
  parley_event_free(ev);
  CHECK(parley_channel_create(&req, alice.client, "x", 99, NULL) == PARLEY_E_INVALID_ARGUMENT);
  CHECK(parley_channel_create(&req, alice.client, "x", PARLEY_CHANNEL_PUBLIC, "[1]") ==
        PARLEY_E_INVALID_ARGUMENT);
  CHECK(strcmp(parley_error_last_reason(), "invalid_meta") == 0);

  CHECK_OK(parley_channel_join(&req, bob.client, "c-general"));
  parley_event_free(wait_done(&bob, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_OK));
  CHECK_OK(parley_channel_list(&s, bob.client));
  CHECK(strstr(s, "\"name\":\"c-general\"") != NULL);
  parley_string_free(s);
  s = NULL;
  {
    int role = -1, kind = -1, allowed = -1;
    CHECK_OK(parley_channel_role(&role, alice.client, "c-general"));
    CHECK(role == PARLEY_ROLE_OWNER);
    CHECK_OK(parley_channel_kind(&kind, alice.client, "c-general"));
    CHECK(kind == PARLEY_CHANNEL_PUBLIC);
    CHECK_OK(parley_channel_can(&allowed, alice.client, "c-general", PARLEY_PERMISSION_BAN));
    CHECK(allowed == 1);
    CHECK(parley_channel_role(&role, alice.client, "no-such-channel") == PARLEY_E_NOT_FOUND);
    CHECK_OK(parley_channel_meta(&s, alice.client, "c-general"));
    CHECK(strstr(s, "\"topic\":\"C ABI\"") != NULL);
    parley_string_free(s);
    s = NULL;
  }
  CHECK_OK(parley_channel_load_info(&req, alice.client, "c-general"));
  ev = wait_done(&alice, PARLEY_EVENT_CHANNEL_INFO_LOADED, req, PARLEY_OK);
  CHECK(strstr(ev->json, "{\"user\":\"bob\",\"role\":\"member\"") != NULL);
  parley_event_free(ev);
  /* Moderation with a duration: mute bob for a minute, then unmute. */
  CHECK(parley_channel_mute(&req, alice.client, "c-general", "bob", -1) ==
        PARLEY_E_INVALID_ARGUMENT);
  CHECK(strcmp(parley_error_last_reason(), "invalid_duration") == 0 && req == 0);
  CHECK(parley_channel_ban(&req, alice.client, "c-general", NULL, 0) == PARLEY_E_INVALID_ARGUMENT);
  CHECK_OK(parley_channel_mute(&req, alice.client, "c-general", "bob", 60));
  CHECK(req != 0);
  parley_event_free(wait_done(&alice, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_OK));
  CHECK_OK(parley_channel_unmute(&req, alice.client, "c-general", "bob"));
  parley_event_free(wait_done(&alice, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_OK));
  CHECK_OK(parley_channel_set_role(&req, alice.client, "c-general", "bob", PARLEY_ROLE_MODERATOR));
  parley_event_free(wait_done(&alice, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_OK));
  parley_event_free(wait_event(&bob, PARLEY_EVENT_MESSAGE_RECEIVED, 0, "\"role\":\"moderator\"", 20));

  /* Messages: send, receive, history. */
  CHECK_OK(parley_message_send(&id, alice.client, "c-general", "hello from C"));
  CHECK(strlen(id) == 32);
  ev = wait_event(&alice, PARLEY_EVENT_MESSAGE_SENT, 0, id, 20);
  seq = json_u64(ev->json, "seq");
  CHECK(seq > 0);
  parley_event_free(ev);
  ev = wait_event(&bob, PARLEY_EVENT_MESSAGE_RECEIVED, 0, "\"text\":\"hello from C\"", 20);
  CHECK(strstr(ev->json, id) != NULL && strcmp(ev->channel, "c-general") == 0);
  parley_event_free(ev);
  parley_string_free(id);
  id = NULL;
  CHECK_OK(parley_channel_load_history(&req, bob.client, "c-general", 0, 50));
  ev = wait_done(&bob, PARLEY_EVENT_HISTORY_LOADED, req, PARLEY_OK);
  CHECK(strstr(ev->json, "\"text\":\"hello from C\"") != NULL);
  parley_event_free(ev);
  printf("c-flow: message seq %llu sent, received, in history\n", (unsigned long long)seq);

  /* The cache's own figures: the outbox is empty once acknowledged, and the
   * cache holds the channel's events. */
  CHECK_OK(parley_client_outbox(&s, alice.client));
  CHECK(strcmp(s, "[]") == 0);
  parley_string_free(s);
  s = NULL;
  CHECK_OK(parley_client_cache_usage(&s, bob.client));
  CHECK(strstr(s, "\"file_bytes\":") != NULL && strstr(s, "\"events\":0,") == NULL);
  parley_string_free(s);
  s = NULL;
  CHECK(parley_client_outbox(NULL, alice.client) == PARLEY_E_INVALID_ARGUMENT);

  /* Analytics: the send above was reported, as documented JSON; calls into
   * the client from inside the callback were refused. */
  {
    int i, sent = 0;
    for (i = 0; i < 200 && !sent; ++i) {
      pthread_mutex_lock(&g_analytics.mu);
      sent = g_analytics.message_sent;
      pthread_mutex_unlock(&g_analytics.mu);
      if (!sent) sleep_ms(50);
    }
    pthread_mutex_lock(&g_analytics.mu);
    CHECK(g_analytics.message_sent >= 1);
    CHECK(g_analytics.bad_json == 0);
    CHECK(g_analytics.refused >= 1 && g_analytics.refused == g_analytics.free_refused);
    printf("c-flow: %d analytics events, calls from inside refused\n", g_analytics.events);
    pthread_mutex_unlock(&g_analytics.mu);
  }

  /* Typing. */
  CHECK_OK(parley_channel_set_typing(alice.client, "c-general", 1));
  parley_event_free(wait_event(&bob, PARLEY_EVENT_TYPING_CHANGED, 0,
                               "\"user\":\"alice\",\"active\":true", 20));
  CHECK_OK(parley_channel_set_typing(alice.client, "c-general", 0));

  /* Read receipts: bob reads, alice sees the cursor and the summary. */
  CHECK_OK(parley_channel_mark_read(bob.client, "c-general", seq));
  parley_event_free(wait_event(&alice, PARLEY_EVENT_RECEIPT_UPDATED, 0,
                               "\"user\":\"bob\",\"device\":\"\",\"kind\":\"read\"", 20));
  for (i = 0; i < 100; ++i) {
    CHECK_OK(parley_receipt_summary_get(&summary, alice.client, "c-general", seq));
    if (summary.read >= 1) break;
    sleep_ms(50);
  }
  CHECK(summary.members >= 1 && summary.read >= 1 && summary.delivered >= 1);
  printf("c-flow: typing and receipts (members %u, delivered %u, read %u)\n", summary.members,
         summary.delivered, summary.read);

  /* Presence. */
  {
    const char *users[1] = {"bob"};
    CHECK_OK(parley_presence_query(&req, alice.client, users, 1));
    parley_event_free(wait_event(&alice, PARLEY_EVENT_PRESENCE_CHANGED, 0,
                                 "\"user\":\"bob\",\"status\":\"online\"", 20));
    parley_event_free(wait_done(&alice, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_OK));
    CHECK_OK(parley_presence_get(&s, alice.client, "bob"));
    CHECK(strstr(s, "\"status\":\"online\"") != NULL);
    parley_string_free(s);
    s = NULL;
    CHECK_OK(parley_presence_set(&req, bob.client, PARLEY_PRESENCE_MODE_AWAY, "in C", -1, -1));
    parley_event_free(wait_done(&bob, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_OK));
    parley_event_free(wait_event(&alice, PARLEY_EVENT_PRESENCE_CHANGED, 0, "\"text\":\"in C\"", 20));
    CHECK_OK(parley_presence_report_activity(alice.client));
  }

  /* Notifications and unread counts. */
  {
    int level = -1;
    uint64_t unread = 99, mentions = 99;
    CHECK_OK(parley_notification_set_level(&req, bob.client, "c-general", PARLEY_NOTIFY_MENTIONS, 0));
    parley_event_free(wait_done(&bob, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_OK));
    parley_event_free(wait_event(&bob, PARLEY_EVENT_NOTIFICATION_LEVEL_CHANGED, 0,
                                 "\"level\":\"mentions\"", 20));
    CHECK_OK(parley_notification_level(&level, NULL, bob.client, "c-general"));
    CHECK(level == PARLEY_NOTIFY_MENTIONS);
    CHECK_OK(parley_unread_count(&unread, &mentions, bob.client, "c-general"));
    CHECK_OK(parley_unread_badge(&unread, NULL, bob.client));
  }

  /* An end-to-end encrypted direct message and the safety number. */
  CHECK_OK(parley_direct_open(&req, alice.client, "bob"));
  ev = wait_done(&alice, PARLEY_EVENT_CHANNEL_REQUEST_DONE, req, PARLEY_OK);
  CHECK(ev->channel[0] == '@');
  snprintf(dm, sizeof dm, "%s", ev->channel);
  parley_event_free(ev);
  CHECK_OK(parley_direct_peer(&s, alice.client, dm));
  CHECK(strcmp(s, "bob") == 0);
  parley_string_free(s);
  s = NULL;
  CHECK_OK(parley_message_send(&id, alice.client, dm, "a secret in C"));
  parley_event_free(wait_event(&alice, PARLEY_EVENT_MESSAGE_SENT, 0, id, 20));
  parley_string_free(id);
  id = NULL;
  ev = wait_event(&bob, PARLEY_EVENT_MESSAGE_RECEIVED, 0, "\"text\":\"a secret in C\"", 20);
  CHECK(strstr(ev->json, "\"e2e\":true") != NULL);
  CHECK(strcmp(ev->channel, dm) == 0);
  parley_event_free(ev);
  CHECK_OK(parley_direct_channel(&s, bob.client, "alice"));
  CHECK(strcmp(s, dm) == 0);
  parley_string_free(s);
  s = NULL;

  CHECK_OK(parley_safety_number_load(&req, alice.client, "bob"));
  ev = wait_done(&alice, PARLEY_EVENT_SAFETY_NUMBER_LOADED, req, PARLEY_OK);
  json_string(number_a, sizeof number_a, ev->json, "number");
  parley_event_free(ev);
  CHECK_OK(parley_safety_number_load(&req, bob.client, "alice"));
  ev = wait_done(&bob, PARLEY_EVENT_SAFETY_NUMBER_LOADED, req, PARLEY_OK);
  json_string(number_b, sizeof number_b, ev->json, "number");
  parley_event_free(ev);
  CHECK(strlen(number_a) >= 60);
  CHECK(strcmp(number_a, number_b) == 0);
  CHECK_OK(parley_contact_verify(alice.client, "bob", 1, number_a));
  CHECK(parley_contact_verify(alice.client, "nobody-known", 1, NULL) == PARLEY_E_NOT_FOUND);
  CHECK(strcmp(parley_error_last_reason(), "no_keys") == 0);
  CHECK_OK(parley_safety_number_load(&req, alice.client, "bob"));
  ev = wait_done(&alice, PARLEY_EVENT_SAFETY_NUMBER_LOADED, req, PARLEY_OK);
  CHECK(strstr(ev->json, "\"verified\":true") != NULL);
  parley_event_free(ev);
  printf("c-flow: encrypted DM in %s, safety number %.11s... verified\n", dm, number_a);

  /* Devices and blocks. */
  CHECK_OK(parley_device_list(&req, alice.client));
  ev = wait_done(&alice, PARLEY_EVENT_DEVICES_LOADED, req, PARLEY_OK);
  CHECK(strstr(ev->json, "\"current\":true") != NULL);
  parley_event_free(ev);
  CHECK_OK(parley_user_block(&req, alice.client, "mallory"));
  ev = wait_done(&alice, PARLEY_EVENT_BLOCKED_USERS_LOADED, req, PARLEY_OK);
  CHECK(strstr(ev->json, "\"users\":[\"mallory\"]") != NULL);
  parley_event_free(ev);
  CHECK_OK(parley_user_unblock(&req, alice.client, "mallory"));
  parley_event_free(wait_done(&alice, PARLEY_EVENT_BLOCKED_USERS_LOADED, req, PARLEY_OK));
  CHECK_OK(parley_user_list_blocked(&req, alice.client));
  ev = wait_done(&alice, PARLEY_EVENT_BLOCKED_USERS_LOADED, req, PARLEY_OK);
  CHECK(strstr(ev->json, "\"users\":[]") != NULL);
  parley_event_free(ev);

  docs_test(&alice, &bob);

  /* The callback client: calls the SDK from inside its callback; freeing itself there is refused. */
  {
    parley_client *carol;
    pthread_mutex_init(&g_carol.mu, NULL);
    pthread_mutex_lock(&g_carol.mu);
    carol = open_client("carol", carol_on_event, &g_carol);
    g_carol.self = carol;
    pthread_mutex_unlock(&g_carol.mu);
    CHECK(parley_client_next_event(&ev, carol, 0) == PARLEY_E_INVALID_ARGUMENT && ev == NULL);
    wait_flag(&g_carol, &g_carol.joined, "join from the callback");
    CHECK(carol_get(&g_carol, &g_carol.joined) == 1);
    parley_event_free(
        wait_event(&alice, PARLEY_EVENT_MESSAGE_RECEIVED, 0, "\"text\":\"carol from a callback\"", 20));
    CHECK_OK(parley_message_send(&id, alice.client, "c-general", "carol, goodbye"));
    parley_string_free(id);
    id = NULL;
    wait_flag(&g_carol, &g_carol.freed, "free from the callback");
    CHECK(carol_get(&g_carol, &g_carol.errors) == 0);
    parley_client_free(carol); /* from this thread: done when it returns */
    printf("c-flow: callback client joined and sent from its callback; free there refused\n");
  }

  CHECK_OK(parley_client_disconnect(bob.client));
  parley_event_free(wait_event(&bob, PARLEY_EVENT_STATE_CHANGED, 0, "\"state\":\"disconnected\"", 20));
  pthread_mutex_lock(&g_analytics.mu);
  g_analytics.client = NULL;
  pthread_mutex_unlock(&g_analytics.mu);
  peer_free(&alice);
  peer_free(&bob);
  stop_server();
  printf("c-flow: ok\n");
  return 0;
}
