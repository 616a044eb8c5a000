// Presence burst (issue 8): 5,000 connections joining one channel within a
// few seconds. Measures the presence traffic each connect causes, the
// server's CPU time, and whether the channel's online count stays right.
//
// The server is a real parley-server process (the build's own, or --server
// PATH) on 127.0.0.1 with a free port, a scratch data directory, a signing key
// written here, `--rate-limit off` and `--presence-grace` short so that the
// drop phases are quick. The clients are N WebSocket connections of this one
// process, driven by a small non-blocking epoll loop (handshake with
// parley.v1, masked text frames out, text frames holding one message or an
// array of them in), each authenticated as its own user u0..u{N-1}.
//
// Phases, one server, in this order:
//   setup      an observer connection creates the channel "burst" (it stays a
//              member and connected throughout, and is the one whose
//              online_count is checked);
//   join       N connections, started evenly over --ramp-ms, each: auth, then
//              join "burst"; then --settle-ms of quiet;
//   drop half  the second half closes; wait the grace period + --settle-ms;
//   drop rest  the first half closes too; the same wait;
//   reconnect  the N users, members now, connect again over --ramp-ms (auth
//              only: the presence of a connect storm without the joins'
//              channel events); then --settle-ms.
// After each phase the observer's latest online_count must equal the members
// online (PASS/FAIL); so must every connected member's latest one.
//
// Counted on the client side, per phase: `presence` events, `presence_list`
// snapshots (and the users they hold), `online_count` messages, and the
// channel `event`s (the joins' fan-out, for scale). The server's /metrics
// (parley_presence_*, parley_online_count_events_total) is read after each
// phase as a cross-check. Server CPU is utime + stime from /proc/PID/stat
// (10 ms resolution), from the phase's first connect to the end of its settle
// time.
//
//   parley-bench-presence-burst [--connections 5000] [--ramp-ms 3000] [--settle-ms 2000]
//                               [--grace 0.5|off] [--timeout-s 180] [--server PATH]
//                               [--no-reconnect] [--keep]
//
// --grace off passes no presence flag to the server: for a server built from
// before presence (commit ccceb3f), as a baseline of what connecting and
// joining cost without it (that server ignores the auth's "presence" field).
// --no-reconnect ends the run after "drop half". --keep keeps the scratch
// directory, with the server's log (server.log).
//
// Exit status: 0 when every online-count check passed and every connection
// got through, 1 otherwise (the figures are printed either way).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "bench_util.hpp"
#include "protocol/codec.hpp"
#include "protocol/token.hpp"
#include "protocol/wire.hpp"

#ifndef PARLEY_SERVER_BIN
#define PARLEY_SERVER_BIN "parley-server"
#endif

using namespace parley;
using namespace parley::bench;

namespace {

constexpr const char* kChannel = "burst";
constexpr const char* kObserver = "observer";
constexpr std::size_t kMaxInbound = 64u << 20;  // a server frame larger than this is an error

pid_t g_server_pid = -1;

void kill_server() {
  if (g_server_pid > 0) {
    kill(g_server_pid, SIGKILL);
    waitpid(g_server_pid, nullptr, 0);
    g_server_pid = -1;
  }
}

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "presence_burst: %s\n", why.c_str());
  kill_server();
  std::exit(1);
}

// ---- the server process -------------------------------------------------------

// CPU time (user + system) of process `pid` so far, in ms; -1 if unreadable.
double process_cpu_ms(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat;
  std::getline(in, stat);
  auto paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  // After "pid (comm)": state is field 3; utime and stime are fields 14 and 15.
  const char* p = stat.c_str() + paren + 2;
  unsigned long utime = 0, stime = 0;
  if (std::sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) {
    return -1;
  }
  return static_cast<double>(utime + stime) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double self_cpu_ms() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ms = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) * 1000.0 + static_cast<double>(tv.tv_usec) / 1000.0;
  };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
}

// Starts parley-server on 127.0.0.1 with any free port and returns the port.
// The child dies with this process (PR_SET_PDEATHSIG), whatever ends it.
int start_server(const std::string& exe, const std::vector<std::string>& args,
                 const std::string& log_path) {
  int out[2];
  if (pipe(out) != 0) die("pipe");
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (log_fd < 0) die("cannot create " + log_path);
  std::vector<std::string> argv_s = {exe};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    dup2(out[1], 1);
    dup2(log_fd, 2);
    close(out[0]);
    close(out[1]);
    close(log_fd);
    execv(exe.c_str(), argv.data());
    std::fprintf(stderr, "cannot run %s: %s\n", exe.c_str(), std::strerror(errno));
    _exit(127);
  }
  g_server_pid = pid;
  close(out[1]);
  close(log_fd);
  // "listening on 127.0.0.1:PORT"
  std::string line;
  auto deadline = Clock::now() + std::chrono::seconds(15);
  char buf[256];
  while (line.find('\n') == std::string::npos) {
    if (Clock::now() > deadline) die("parley-server did not report its port within 15 s");
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) {
      std::ifstream log(log_path);
      std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
      die("parley-server exited at start: " + text.substr(0, 2000));
    }
    line.append(buf, static_cast<std::size_t>(n));
  }
  close(out[0]);
  auto colon = line.rfind(':');
  int port = colon == std::string::npos ? 0 : std::atoi(line.c_str() + colon + 1);
  if (port <= 0) die("parley-server printed \"" + line + "\", not its port");
  return port;
}

// SIGTERM, then SIGKILL if it has not exited within 10 s.
void stop_server() {
  if (g_server_pid <= 0) return;
  kill(g_server_pid, SIGTERM);
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    if (waitpid(g_server_pid, nullptr, WNOHANG) == g_server_pid) {
      g_server_pid = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill_server();
}

// GET /metrics: the unlabelled samples, by name. Empty on failure.
std::map<std::string, double> scrape_metrics(int port) {
  std::map<std::string, double> out;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return out;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string body;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string request = fmt::format(
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", port);
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[16384];
      auto deadline = Clock::now() + std::chrono::seconds(5);
      while (Clock::now() < deadline && body.size() < (8u << 20)) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        body.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  close(fd);
  auto start = body.find("\r\n\r\n");
  if (body.rfind("HTTP/1.1 200", 0) != 0 || start == std::string::npos) return out;
  std::size_t at = start + 4;
  while (at < body.size()) {
    std::size_t end = body.find('\n', at);
    if (end == std::string::npos) end = body.size();
    std::string_view line(body.data() + at, end - at);
    at = end + 1;
    if (line.empty() || line[0] == '#' || line.find('{') != std::string_view::npos) continue;
    auto space = line.find(' ');
    if (space == std::string_view::npos) continue;
    out[std::string(line.substr(0, space))] =
        std::strtod(std::string(line.substr(space + 1)).c_str(), nullptr);
  }
  return out;
}

// ---- the client connections ------------------------------------------------

// Server messages received, by kind (the welcome and the replies included).
struct Tally {
  std::uint64_t frames = 0;
  std::uint64_t bytes = 0;
  std::uint64_t events = 0;  // channel `event`s (joins)
  std::uint64_t presence = 0;
  std::uint64_t presence_lists = 0;
  std::uint64_t presence_list_users = 0;
  std::uint64_t online_counts = 0;
  std::uint64_t welcomes = 0;
  std::uint64_t oks = 0;
  std::uint64_t errors = 0;
  std::uint64_t other = 0;
  std::map<std::string, std::uint64_t> error_codes;

  Tally minus(const Tally& before) const {
    Tally d = *this;
    d.frames -= before.frames;
    d.bytes -= before.bytes;
    d.events -= before.events;
    d.presence -= before.presence;
    d.presence_lists -= before.presence_lists;
    d.presence_list_users -= before.presence_list_users;
    d.online_counts -= before.online_counts;
    d.welcomes -= before.welcomes;
    d.oks -= before.oks;
    d.errors -= before.errors;
    d.other -= before.other;
    for (auto& [code, n] : d.error_codes) {
      auto it = before.error_codes.find(code);
      if (it != before.error_codes.end()) n -= it->second;
    }
    return d;
  }
};

enum class Stage { idle, connecting, upgrading, authing, requesting, ready, closed, failed };

struct Conn {
  int fd = -1;
  Stage stage = Stage::idle;
  std::string user;
  std::string token;
  bool join = false;    // after the welcome: join the channel
  bool create = false;  // after the welcome: create the channel
  std::string in;       // received, not yet parsed
  std::string message;  // a fragmented message being assembled
  std::string out;      // to send
  bool watching_out = false;
  Clock::time_point started{};
  Clock::time_point ready_at{};
  std::int64_t online = -1;  // the latest online_count of the channel
  std::int64_t members = -1;
  Clock::time_point online_at{};  // when `online` last changed
  std::string failure;
};

// A deterministic mask source: the masks only need to vary, not to be secret,
// between this process and a server on loopback.
std::uint32_t next_mask() {
  static std::uint32_t x = 0x9e3779b9u;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return x;
}

// Calls f(item) for each message of a frame: the frame itself when it is an
// object, each element when it is an array. Tracks strings so that brackets
// inside text do not count.
template <class F>
void for_each_item(std::string_view frame, F&& f) {
  std::size_t i = 0;
  const std::size_t n = frame.size();
  while (i < n && (frame[i] == ' ' || frame[i] == '\n' || frame[i] == '\r' || frame[i] == '\t')) {
    ++i;
  }
  if (i >= n || frame[i] != '[') {
    f(frame.substr(i));
    return;
  }
  int depth = 0;
  std::size_t begin = 0;
  for (++i; i < n; ++i) {
    char ch = frame[i];
    if (ch == '"') {
      for (++i; i < n && frame[i] != '"'; ++i) {
        if (frame[i] == '\\') ++i;
      }
    } else if (ch == '{' || ch == '[') {
      if (depth++ == 0) begin = i;
    } else if (ch == '}' || ch == ']') {
      if (depth == 0) return;  // the end of the array
      if (--depth == 0) f(frame.substr(begin, i + 1 - begin));
    }
  }
}

class Swarm {
 public:
  Swarm(int port, std::size_t count) : port_(port), conns_(count) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) die("epoll_create1");
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(static_cast<std::uint16_t>(port));
    addr_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  ~Swarm() {
    for (auto& c : conns_) {
      if (c.fd >= 0) close(c.fd);
    }
    close(epoll_);
  }
  Swarm(const Swarm&) = delete;
  Swarm& operator=(const Swarm&) = delete;

  Conn& conn(std::size_t i) { return conns_[i]; }
  std::size_t size() const { return conns_.size(); }
  const Tally& tally() const { return tally_; }

  // Opens connection i now (a fresh one if it had been closed).
  void open(std::size_t i) {
    Conn& c = conns_[i];
    if (c.fd >= 0) close(c.fd);
    c.in.clear();
    c.message.clear();
    c.out.clear();
    c.watching_out = false;
    c.online = -1;
    c.members = -1;
    c.failure.clear();
    c.started = Clock::now();
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) return fail(i, fmt::format("socket: {}", std::strerror(errno)));
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_);
    if (rc != 0 && errno != EINPROGRESS) {
      return fail(i, fmt::format("connect: {}", std::strerror(errno)));
    }
    c.stage = Stage::connecting;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u64 = i;
    c.watching_out = true;
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev) != 0) {
      return fail(i, fmt::format("epoll_ctl: {}", std::strerror(errno)));
    }
  }

  // Sends a close frame (1000) and closes the socket.
  void close_conn(std::size_t i) {
    Conn& c = conns_[i];
    if (c.fd < 0) return;
    std::string payload = {'\x03', '\xe8'};
    queue_frame(c, 0x8, payload);
    flush(i);
    close(c.fd);
    c.fd = -1;
    c.stage = Stage::closed;
  }

  // Serves the connections for up to `ms`, starting the scheduled ones as they
  // come due; returns early once done() is true.
  template <class Done>
  void run(double ms, Done&& done) {
    auto end = Clock::now() + std::chrono::microseconds(static_cast<std::int64_t>(ms * 1000));
    std::vector<epoll_event> events(1024);
    while (Clock::now() < end) {
      start_due();
      if (done()) return;
      int timeout = next_start_ < schedule_.size() ? 1 : 20;
      int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeout);
      if (n < 0 && errno != EINTR) die(fmt::format("epoll_wait: {}", std::strerror(errno)));
      for (int k = 0; k < n; ++k) {
        auto i = static_cast<std::size_t>(events[static_cast<std::size_t>(k)].data.u64);
        std::uint32_t what = events[static_cast<std::size_t>(k)].events;
        if (conns_[i].fd < 0) continue;
        if ((what & EPOLLOUT) != 0) on_writable(i);
        if (conns_[i].fd >= 0 && (what & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) on_readable(i);
      }
    }
  }

  // Opens `which` evenly spread over `ramp_ms`, from now (as run() is called).
  void schedule(std::vector<std::size_t> which, double ramp_ms) {
    schedule_ = std::move(which);
    next_start_ = 0;
    ramp_start_ = Clock::now();
    ramp_ms_ = ramp_ms;
  }
  bool all_started() const { return next_start_ >= schedule_.size(); }

 private:
  void start_due() {
    double elapsed = ms_since(ramp_start_);
    std::size_t n = schedule_.size();
    while (next_start_ < n) {
      double due =
          n <= 1 ? 0 : ramp_ms_ * static_cast<double>(next_start_) / static_cast<double>(n);
      if (due > elapsed) break;
      open(schedule_[next_start_++]);
    }
  }

  void fail(std::size_t i, std::string why) {
    Conn& c = conns_[i];
    if (c.fd >= 0) close(c.fd);
    c.fd = -1;
    c.stage = Stage::failed;
    c.failure = std::move(why);
  }

  void watch_out(std::size_t i, bool on) {
    Conn& c = conns_[i];
    if (c.watching_out == on) return;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.u64 = i;
    epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
    c.watching_out = on;
  }

  void on_writable(std::size_t i) {
    Conn& c = conns_[i];
    if (c.stage == Stage::connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return fail(i, fmt::format("connect: {}", std::strerror(err)));
      // A fixed key: the bench does not check Sec-WebSocket-Accept, only the
      // 101 and the subprotocol.
      c.out += fmt::format(
          "GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
          "Sec-WebSocket-Protocol: {}\r\n\r\n",
          port_, wire::kSubprotocol);
      c.stage = Stage::upgrading;
    }
    flush(i);
  }

  void flush(std::size_t i) {
    Conn& c = conns_[i];
    while (!c.out.empty()) {
      ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        return fail(i, fmt::format("send: {}", std::strerror(errno)));
      }
      c.out.erase(0, static_cast<std::size_t>(n));
    }
    if (c.stage != Stage::connecting) watch_out(i, !c.out.empty());
  }

  void queue_frame(Conn& c, int opcode, std::string_view payload) {
    std::size_t n = payload.size();
    c.out += static_cast<char>(0x80 | opcode);
    if (n < 126) {
      c.out += static_cast<char>(0x80 | n);
    } else if (n < 65536) {
      c.out += static_cast<char>(0x80 | 126);
      c.out += static_cast<char>(n >> 8);
      c.out += static_cast<char>(n & 0xff);
    } else {
      c.out += static_cast<char>(0x80 | 127);
      for (int s = 56; s >= 0; s -= 8) c.out += static_cast<char>((n >> s) & 0xff);
    }
    std::uint32_t mask = next_mask();
    char key[4] = {static_cast<char>(mask >> 24), static_cast<char>(mask >> 16),
                   static_cast<char>(mask >> 8), static_cast<char>(mask)};
    c.out.append(key, 4);
    for (std::size_t k = 0; k < n; ++k) c.out += static_cast<char>(payload[k] ^ key[k & 3]);
  }

  void send_message(std::size_t i, const wire::ClientMessage& message) {
    queue_frame(conns_[i], 0x1, wire::encode(message));
    flush(i);
  }

  void on_readable(std::size_t i) {
    static thread_local std::vector<char> buf(256 * 1024);
    // Bounded per wake-up, so that one busy connection cannot starve the rest.
    for (int rounds = 0; rounds < 8; ++rounds) {
      Conn& c = conns_[i];
      if (c.fd < 0) return;
      ssize_t n = recv(c.fd, buf.data(), buf.size(), 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        return fail(i, fmt::format("recv: {}", std::strerror(errno)));
      }
      if (n == 0) {
        return fail(i, c.stage == Stage::closed ? "closed" : "the server closed the connection");
      }
      c.in.append(buf.data(), static_cast<std::size_t>(n));
      tally_.bytes += static_cast<std::uint64_t>(n);
      if (c.stage == Stage::upgrading && !parse_upgrade(i)) return;
      if (c.stage != Stage::upgrading) parse_frames(i);
      if (static_cast<std::size_t>(n) < buf.size()) return;
    }
  }

  bool parse_upgrade(std::size_t i) {
    Conn& c = conns_[i];
    auto end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (c.in.size() > 16384) fail(i, "an HTTP response header over 16 KiB");
      return false;
    }
    std::string head = c.in.substr(0, end);
    c.in.erase(0, end + 4);
    for (char& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (head.rfind("http/1.1 101", 0) != 0) {
      fail(i, "upgrade refused: " + head.substr(0, head.find('\r')));
      return false;
    }
    if (head.find(std::string("sec-websocket-protocol: ") + wire::kSubprotocol) ==
        std::string::npos) {
      fail(i, "the server did not accept the parley.v1 subprotocol");
      return false;
    }
    wire::Auth auth;
    auth.rid = 1;
    auth.token = c.token;
    auth.client = "parley-bench-presence-burst";
    auth.presence = true;  // the presence of its channels' members, and online counts
    c.stage = Stage::authing;
    send_message(i, auth);
    return c.fd >= 0;
  }

  void parse_frames(std::size_t i) {
    std::size_t at = 0;
    for (;;) {
      Conn& c = conns_[i];
      if (c.fd < 0) return;
      const auto* p = reinterpret_cast<const unsigned char*>(c.in.data()) + at;
      std::size_t avail = c.in.size() - at;
      if (avail < 2) break;
      bool fin = (p[0] & 0x80) != 0;
      int opcode = p[0] & 0x0f;
      bool masked = (p[1] & 0x80) != 0;
      std::uint64_t len = p[1] & 0x7f;
      std::size_t header = 2;
      if (len == 126) {
        if (avail < 4) break;
        len = (std::uint64_t{p[2]} << 8) | p[3];
        header = 4;
      } else if (len == 127) {
        if (avail < 10) break;
        len = 0;
        for (int k = 0; k < 8; ++k) len = (len << 8) | p[2 + k];
        header = 10;
      }
      if (masked) header += 4;
      if (len > kMaxInbound) return fail(i, "a server frame over 64 MiB");
      if (avail < header + len) break;
      std::string payload_copy;
      std::string_view payload(c.in.data() + at + header, static_cast<std::size_t>(len));
      if (masked) {  // servers do not mask; unmask anyway
        payload_copy.assign(payload);
        for (std::size_t k = 0; k < payload_copy.size(); ++k) {
          payload_copy[k] = static_cast<char>(payload_copy[k] ^ p[header - 4 + (k & 3)]);
        }
        payload = payload_copy;
      }
      at += header + static_cast<std::size_t>(len);
      switch (opcode) {
        case 0x0:
        case 0x1:
          if (fin && c.message.empty() && opcode == 0x1) {
            on_message(i, payload);
          } else {
            c.message.append(payload);
            if (fin) {
              std::string whole = std::move(c.message);
              c.message.clear();
              on_message(i, whole);
            }
          }
          break;
        case 0x8: {
          int code = len >= 2 ? (p[header] << 8) | p[header + 1] : 1005;
          std::string reason(payload.size() > 2 ? payload.substr(2) : std::string_view());
          return fail(i, fmt::format("closed by the server: {} {}", code, reason));
        }
        case 0x9:
          queue_frame(c, 0xA, payload);
          flush(i);
          break;
        case 0xA:
          break;
        default:
          ++tally_.other;
          break;
      }
    }
    Conn& c = conns_[i];
    if (at > 0) c.in.erase(0, at);
  }

  void on_message(std::size_t i, std::string_view frame) {
    ++tally_.frames;
    for_each_item(frame, [&](std::string_view item) { on_item(i, item); });
  }

  void on_item(std::size_t i, std::string_view item) {
    // Channel events are most of the bytes (every join goes to every member):
    // counted, not decoded.
    if (item.rfind(R"({"type":"event",)", 0) == 0) {
      ++tally_.events;
      return;
    }
    for (auto& decoded : wire::decode_server_frame(item)) {
      if (const auto* bad = std::get_if<wire::DecodeError>(&decoded)) {
        ++tally_.errors;
        ++tally_.error_codes["undecodable: " + bad->code];
        continue;
      }
      on_decoded(i, std::get<wire::ServerMessage>(decoded));
    }
  }

  void on_decoded(std::size_t i, const wire::ServerMessage& message) {
    Conn& c = conns_[i];
    if (const auto* oc = std::get_if<wire::OnlineCount>(&message)) {
      ++tally_.online_counts;
      if (oc->channel == kChannel) {
        auto online = static_cast<std::int64_t>(oc->online);
        if (online != c.online) c.online_at = Clock::now();
        c.online = online;
        c.members = static_cast<std::int64_t>(oc->members);
      }
    } else if (std::holds_alternative<wire::PresenceEvent>(message)) {
      ++tally_.presence;
    } else if (const auto* list = std::get_if<wire::PresenceList>(&message)) {
      ++tally_.presence_lists;
      tally_.presence_list_users += list->users.size();
    } else if (std::holds_alternative<wire::Welcome>(message)) {
      ++tally_.welcomes;
      if (c.stage != Stage::authing) return;
      if (c.create) {
        wire::CreateChannel create;
        create.rid = 2;
        create.channel = kChannel;
        c.stage = Stage::requesting;
        send_message(i, create);
      } else if (c.join) {
        wire::JoinChannel join;
        join.rid = 2;
        join.channel = kChannel;
        c.stage = Stage::requesting;
        send_message(i, join);
      } else {
        c.stage = Stage::ready;
        c.ready_at = Clock::now();
      }
    } else if (const auto* ok = std::get_if<wire::Ok>(&message)) {
      ++tally_.oks;
      if (c.stage == Stage::requesting && ok->rid == 2) {
        c.stage = Stage::ready;
        c.ready_at = Clock::now();
      }
    } else if (const auto* error = std::get_if<wire::Error>(&message)) {
      ++tally_.errors;
      ++tally_.error_codes[error->code];
      if (c.stage == Stage::authing || c.stage == Stage::requesting) {
        fail(i, fmt::format("refused: {} {}", error->code, error->message));
      }
    } else {
      ++tally_.other;
    }
  }

  int port_;
  int epoll_ = -1;
  sockaddr_in addr_{};
  std::vector<Conn> conns_;
  Tally tally_;
  std::vector<std::size_t> schedule_;
  std::size_t next_start_ = 0;
  Clock::time_point ramp_start_{};
  double ramp_ms_ = 0;
};

// ---- phases -------------------------------------------------------------------

struct Phase {
  std::string name;
  std::size_t changes = 0;  // connects or closes
  std::size_t ready = 0;
  std::size_t failed = 0;
  std::vector<std::string> failures;  // the first few
  double active_ms = 0;               // first connect to last ready (or: closing)
  double total_ms = 0;                // ... to the end of the settle time
  double server_cpu_active_ms = 0;
  double server_cpu_ms = 0;
  double client_cpu_ms = 0;
  std::vector<double> ready_ms;  // per connection: connect to ready
  Tally received;
  std::map<std::string, double> metrics_before, metrics_after;
  std::int64_t expected_online = 0;
  std::int64_t observed_online = -1;
  std::int64_t observed_members = -1;
  double count_correct_after_ms = -1;  // the observer's count reached the expected value
  std::size_t members_checked = 0;
  std::size_t members_correct = 0;
  bool pass = false;

  double metric(const std::string& name) const {
    auto a = metrics_after.find(name);
    auto b = metrics_before.find(name);
    if (a == metrics_after.end()) return std::nan("");
    return a->second - (b == metrics_before.end() ? 0 : b->second);
  }
  double gauge(const std::string& name) const {
    auto a = metrics_after.find(name);
    return a == metrics_after.end() ? std::nan("") : a->second;
  }
};

struct Bench {
  int port = 0;
  std::size_t n = 0;
  double ramp_ms = 0;
  double settle_ms = 0;
  double grace_ms = 0;
  Clock::time_point deadline{};
  Swarm* swarm = nullptr;
  std::size_t observer = 0;  // index of the observer in the swarm

  double left_ms() const {
    return std::chrono::duration<double, std::milli>(deadline - Clock::now()).count();
  }

  // Checks the observer's and every connected member's latest online_count.
  void check_counts(Phase* phase, std::int64_t expected) {
    phase->expected_online = expected;
    Conn& o = swarm->conn(observer);
    phase->observed_online = o.online;
    phase->observed_members = o.members;
    for (std::size_t i = 0; i < n; ++i) {
      const Conn& c = swarm->conn(i);
      if (c.stage != Stage::ready) continue;
      ++phase->members_checked;
      if (c.online == expected) ++phase->members_correct;
    }
    phase->pass = o.stage == Stage::ready && o.online == expected &&
                  phase->members_correct == phase->members_checked && phase->failed == 0;
  }

  void begin(Phase* phase) {
    phase->metrics_before = scrape_metrics(port);
    phase->received = swarm->tally();
  }
  void end(Phase* phase, double server_cpu_start, double client_cpu_start) {
    phase->server_cpu_ms = process_cpu_ms(g_server_pid) - server_cpu_start;
    phase->client_cpu_ms = self_cpu_ms() - client_cpu_start;
    phase->received = swarm->tally().minus(phase->received);
    phase->metrics_after = scrape_metrics(port);
  }

  // `which` connect over the ramp (and join when `join`), then settle.
  Phase connect_burst(std::string name, const std::vector<std::size_t>& which, bool join) {
    Phase phase;
    phase.name = std::move(name);
    phase.changes = which.size();
    begin(&phase);
    for (std::size_t i : which) swarm->conn(i).join = join;
    double cpu0 = process_cpu_ms(g_server_pid);
    double self0 = self_cpu_ms();
    auto start = Clock::now();
    swarm->schedule(which, ramp_ms);
    auto settled = [&] {
      if (!swarm->all_started()) return false;
      for (std::size_t i : which) {
        Stage s = swarm->conn(i).stage;
        if (s != Stage::ready && s != Stage::failed && s != Stage::closed) return false;
      }
      return true;
    };
    swarm->run(std::max(0.0, left_ms()), settled);
    phase.active_ms = ms_since(start);
    phase.server_cpu_active_ms = process_cpu_ms(g_server_pid) - cpu0;
    swarm->run(std::min(settle_ms, std::max(0.0, left_ms())), [] { return false; });
    phase.total_ms = ms_since(start);
    end(&phase, cpu0, self0);
    for (std::size_t i : which) {
      const Conn& c = swarm->conn(i);
      if (c.stage == Stage::ready) {
        ++phase.ready;
        phase.ready_ms.push_back(
            std::chrono::duration<double, std::milli>(c.ready_at - c.started).count());
      } else {
        ++phase.failed;
        if (phase.failures.size() < 5) {
          phase.failures.push_back(
              fmt::format("{}: {}", c.user, c.failure.empty() ? "not ready in time" : c.failure));
        }
      }
    }
    return phase;
  }

  // `which` close at once; the survivors' count must follow within the grace
  // period + settle time.
  Phase close_burst(std::string name, const std::vector<std::size_t>& which,
                    std::int64_t expected) {
    Phase phase;
    phase.name = std::move(name);
    phase.changes = which.size();
    begin(&phase);
    double cpu0 = process_cpu_ms(g_server_pid);
    double self0 = self_cpu_ms();
    auto start = Clock::now();
    for (std::size_t i : which) swarm->close_conn(i);
    phase.active_ms = ms_since(start);
    phase.server_cpu_active_ms = process_cpu_ms(g_server_pid) - cpu0;
    swarm->run(std::min(grace_ms + settle_ms, std::max(0.0, left_ms())), [] { return false; });
    phase.total_ms = ms_since(start);
    end(&phase, cpu0, self0);
    const Conn& o = swarm->conn(observer);
    if (o.online == expected) {
      phase.count_correct_after_ms =
          std::chrono::duration<double, std::milli>(o.online_at - start).count();
    }
    return phase;
  }
};

// Raises the soft limit on open files to the hard one (the server inherits it).
void raise_nofile(std::size_t needed) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) die("getrlimit");
  lim.rlim_cur = lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0) die("setrlimit");
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < needed) {
    die(fmt::format("{} connections need {} open files, the hard limit is {} (ulimit -Hn)",
                    needed - 200, needed, static_cast<unsigned long long>(lim.rlim_max)));
  }
}

std::string fmt_count(double v) { return std::isnan(v) ? "n/a" : fmt::format("{:.0f}", v); }

}  // namespace

int main(int argc, char** argv) {
  Args args(argc, argv);
  auto n = static_cast<std::size_t>(args.num("connections", 5000));
  double ramp_ms = static_cast<double>(args.num("ramp-ms", 3000));
  double settle_ms = static_cast<double>(args.num("settle-ms", 2000));
  // --grace off: pass no presence flag (a server from before presence).
  std::string grace_text = args.str("grace", "0.5");
  double grace_s = grace_text == "off" ? 0 : std::strtod(grace_text.c_str(), nullptr);
  long timeout_s = args.num("timeout-s", 180);
  std::string server_exe = args.str("server", PARLEY_SERVER_BIN);
  bool reconnect = !args.flag("no-reconnect");
  if (n < 2 || n > 60000 || ramp_ms < 0 || settle_ms < 1500 || grace_s < 0 || grace_s > 60 ||
      timeout_s < 10) {
    std::fprintf(stderr,
                 "usage: parley-bench-presence-burst [--connections N>=2] [--ramp-ms MS] "
                 "[--settle-ms MS>=1500] [--grace S] [--timeout-s S>=10] [--server PATH] "
                 "[--no-reconnect] [--keep]\n");
    return 2;
  }
  // The hard stop, should a loop fail to end: SIGALRM ends this process and
  // with it the server (PR_SET_PDEATHSIG).
  alarm(static_cast<unsigned>(timeout_s + 60));
  signal(SIGPIPE, SIG_IGN);
  raise_nofile(n + 200);

  ScratchDir scratch("presence-burst", args.flag("keep"));
  token::SigningKey key = token::generate_key();
  if (Status s = token::write_key_file(key, scratch.str("key")); !s.ok()) {
    die("write_key_file: " + s.to_string());
  }
  std::filesystem::create_directories(scratch.str("data"));
  std::vector<std::string> server_args = {"--listen",          "127.0.0.1:0", "--data",
                                          scratch.str("data"), "--key",       scratch.str("key"),
                                          "--rate-limit",      "off"};
  std::string grace_arg = grace_text == "off" ? "off" : fmt::format("{:g}", grace_s);
  if (grace_text != "off") {
    server_args.push_back("--presence-grace");
    server_args.push_back(grace_arg);
  }
  int port = start_server(server_exe, server_args, scratch.str("server.log"));
  // For a profiler to attach to (perf record -p PID).
  std::fprintf(stderr, "presence_burst: parley-server pid %d on port %d\n",
               static_cast<int>(g_server_pid), port);

  auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  Swarm swarm(port, n + 1);
  for (std::size_t i = 0; i < n; ++i) {
    Conn& c = swarm.conn(i);
    c.user = fmt::format("u{}", i);
    c.token = token::mint(key, c.user, 3600, now_s);
  }
  Bench bench;
  bench.port = port;
  bench.n = n;
  bench.ramp_ms = ramp_ms;
  bench.settle_ms = settle_ms;
  bench.grace_ms = grace_s * 1000;
  bench.deadline = Clock::now() + std::chrono::seconds(timeout_s);
  bench.swarm = &swarm;
  bench.observer = n;
  Conn& observer = swarm.conn(n);
  observer.user = kObserver;
  observer.token = token::mint(key, kObserver, 3600, now_s);
  observer.create = true;

  // Setup: the observer creates the channel and stays in it.
  swarm.open(n);
  swarm.run(10000,
            [&] { return observer.stage == Stage::ready || observer.stage == Stage::failed; });
  if (observer.stage != Stage::ready) {
    die("the observer could not create the channel: " +
        (observer.failure.empty() ? std::string("no reply in 10 s") : observer.failure));
  }
  double server_cpu_idle = process_cpu_ms(g_server_pid);

  std::vector<Phase> phases;
  std::vector<std::size_t> all(n), first_half, second_half;
  for (std::size_t i = 0; i < n; ++i) {
    all[i] = i;
    (i < n / 2 ? first_half : second_half).push_back(i);
  }
  auto count = [](std::size_t v) { return static_cast<std::int64_t>(v); };

  Phase join = bench.connect_burst("join", all, /*join=*/true);
  bench.check_counts(&join, count(join.ready) + 1);
  phases.push_back(join);
  if (join.failed == 0) {
    Phase drop_half = bench.close_burst("drop half", second_half, count(first_half.size()) + 1);
    bench.check_counts(&drop_half, count(first_half.size()) + 1);
    phases.push_back(drop_half);
    if (reconnect) {
      Phase drop_rest = bench.close_burst("drop rest", first_half, 1);
      bench.check_counts(&drop_rest, 1);
      phases.push_back(drop_rest);
      Phase again = bench.connect_burst("reconnect", all, /*join=*/false);
      bench.check_counts(&again, count(again.ready) + 1);
      if (again.ready != n) again.pass = false;
      phases.push_back(again);
    }
  }
  bool timed_out = bench.left_ms() <= 0;
  for (std::size_t i = 0; i <= n; ++i) swarm.close_conn(i);
  double server_cpu_total = process_cpu_ms(g_server_pid);
  auto final_metrics = scrape_metrics(port);
  stop_server();

  Report report("presence_burst");
  report.note(fmt::format(
      "server: {} (a child process) on 127.0.0.1:{}, --presence-grace {}, --rate-limit off; "
      "channel \"{}\" created by the observer",
      server_exe, port, grace_arg, kChannel));
  report.note(fmt::format(
      "clients: {} WebSocket connections of one process (epoll), users u0..u{}, started evenly "
      "over {:.0f} ms; {:.0f} ms of settling after each phase",
      n, n - 1, ramp_ms, settle_ms));
  report.note(
      "/connect, /close: what all connections received in the phase (to the end of its settling), "
      "divided by its connects or closes; server CPU is utime + stime of its process");
  bool all_pass = !timed_out;
  for (const auto& p : phases) {
    bool is_connect = p.name == "join" || p.name == "reconnect";
    auto per = [&](double v) { return p.changes == 0 ? 0.0 : v / static_cast<double>(p.changes); };
    auto per_u = [&](std::uint64_t v) { return per(static_cast<double>(v)); };
    std::string unit = is_connect ? "/connect" : "/close";
    std::string what = p.name + ": ";
    std::string prefix = p.name;
    std::replace(prefix.begin(), prefix.end(), ' ', '_');
    all_pass = all_pass && p.pass;

    if (is_connect) {
      report.note(fmt::format("{}: {} connects, {} ready, {} failed", p.name, p.changes, p.ready,
                              p.failed));
    } else {
      report.note(fmt::format("{}: {} closes", p.name, p.changes));
    }
    for (const auto& f : p.failures) report.note("  " + p.name + " failure: " + f);
    if (!p.received.error_codes.empty()) {
      std::string codes;
      for (const auto& [code, k] : p.received.error_codes) codes += fmt::format(" {} x{}", code, k);
      report.note(what + "errors received:" + codes);
    }
    report.note(fmt::format(
        "{}online count: expected {}, the observer's latest {} (members {}); {} of {} connected "
        "members' latest equal it: {}",
        what, p.expected_online, p.observed_online, p.observed_members, p.members_correct,
        p.members_checked, p.pass ? "PASS" : "FAIL"));
    report.note(fmt::format(
        "{}received: {} presence, {} presence_list ({} users), {} online_count, {} channel "
        "events, {:.1f} MB; /metrics deltas: presence_events {}, online_count_events {}, "
        "presence_changes {}; gauge presence_online_users {}",
        what, p.received.presence, p.received.presence_lists, p.received.presence_list_users,
        p.received.online_counts, p.received.events, static_cast<double>(p.received.bytes) / 1e6,
        fmt_count(p.metric("parley_presence_events_total")),
        fmt_count(p.metric("parley_online_count_events_total")),
        fmt_count(p.metric("parley_presence_changes_total")),
        fmt_count(p.gauge("parley_presence_online_users"))));

    Row check{what + "online count right (observer and every member)",
              static_cast<double>(p.observed_online),
              "",
              fmt::format("== {}", p.expected_online),
              p.pass ? 1 : 0,
              0};
    report.row(check);
    if (is_connect) {
      std::vector<double> lat = p.ready_ms;
      report.info(what + "wall time, first connect to last ready", p.active_ms, "ms", 0);
      report.info(what + "connect to ready, p50", percentile(lat, 50), "ms", 1);
      report.info(what + "connect to ready, p99", percentile(lat, 99), "ms", 1);
    } else {
      report.info(what + "observer's count right, after the first close", p.count_correct_after_ms,
                  "ms", 0);
    }
    report.info(what + "presence events", per_u(p.received.presence), unit, 3);
    report.info(what + "presence_list snapshots", per_u(p.received.presence_lists), unit, 3);
    report.info(what + "online_count messages", per_u(p.received.online_counts), unit, 3);
    report.info(what + "all three: presence traffic",
                per_u(p.received.presence + p.received.presence_lists + p.received.online_counts),
                unit, 3);
    if (is_connect) {
      report.info(what + "channel events (join fan-out)", per_u(p.received.events), unit, 1);
    }
    report.info(what + "server CPU", p.server_cpu_ms, "ms", 0);
    report.info(what + "server CPU" + unit, per(p.server_cpu_ms) * 1000, "us", 0);

    auto num = [](double v) { return std::isnan(v) ? -1.0 : v; };
    report.field(prefix + "_changes", static_cast<double>(p.changes));
    report.field(prefix + "_failed", static_cast<double>(p.failed));
    report.field(prefix + "_active_ms", p.active_ms);
    report.field(prefix + "_presence_per_change", per_u(p.received.presence));
    report.field(prefix + "_presence_lists_per_change", per_u(p.received.presence_lists));
    report.field(prefix + "_online_counts_per_change", per_u(p.received.online_counts));
    report.field(prefix + "_events_per_change", per_u(p.received.events));
    report.field(prefix + "_server_cpu_ms", p.server_cpu_ms);
    report.field(prefix + "_server_cpu_us_per_change", per(p.server_cpu_ms) * 1000);
    report.field(prefix + "_client_cpu_ms", p.client_cpu_ms);
    report.field(prefix + "_expected_online", static_cast<double>(p.expected_online));
    report.field(prefix + "_observed_online", static_cast<double>(p.observed_online));
    report.field(prefix + "_metric_presence_events", num(p.metric("parley_presence_events_total")));
    report.field(prefix + "_metric_online_count_events",
                 num(p.metric("parley_online_count_events_total")));
    report.field(prefix + "_pass", p.pass ? "yes" : "no");
  }
  if (timed_out) report.note(fmt::format("TIMEOUT: the run hit --timeout-s {}", timeout_s));
  report.info("server CPU, the whole run after setup", server_cpu_total - server_cpu_idle, "ms", 0);
  auto slow = final_metrics.find("parley_slow_consumers_total");
  report.info("server: sessions closed as slow consumers",
              slow == final_metrics.end() ? -1 : slow->second, "", 0);
  report.field("connections", static_cast<double>(n));
  report.field("ramp_ms", ramp_ms);
  report.field("grace_s", grace_s);
  report.field("pass", all_pass ? "yes" : "no");
  report.note(std::string("online count checks: ") + (all_pass ? "PASS" : "FAIL"));
  report.print();
  return all_pass ? 0 : 1;
}
