#include "fault_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <list>
#include <optional>
#include <random>
#include <vector>

namespace parley_fault {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t kReadChunk = 16 * 1024;

void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Closes `fd`; with `reset`, the peer gets an RST instead of a FIN.
void close_socket(int fd, bool reset) {
  if (fd < 0) return;
  if (reset) {
    linger lg{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  ::close(fd);
}

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  return addr;
}

struct Chunk {
  std::string data;
  std::size_t offset = 0;  // bytes of data already written
  Clock::time_point release;
};

// One direction of a connection: bytes read from one socket, waiting to be
// written to the other.
struct Direction {
  std::deque<Chunk> chunks;
  std::size_t buffered = 0;
  Clock::time_point last_release;
  bool eof = false;        // the source sent FIN
  bool shut_down = false;  // FIN passed on to the destination
};

struct Conn {
  std::uint64_t ordinal = 0;
  int client = -1;
  int server = -1;
  bool connecting = true;
  std::mt19937_64 rng;
  std::optional<Clock::time_point> cut_at;
  bool reset_on_cut = false;
  std::optional<Clock::time_point> stall_at;
  milliseconds stall_for{0};
  std::optional<Clock::time_point> stall_until;
  Direction up;    // client -> server
  Direction down;  // server -> client
  // A socket whose peer is gone for good (POLLHUP after its FIN): left out of
  // poll(), which would report it again at once, until the other side is told.
  bool client_hup = false;
  bool server_hup = false;
  bool closed = false;

  bool stalled(Clock::time_point now) const { return stall_until && *stall_until > now; }
};

}  // namespace

std::string FaultCounts::to_string() const {
  return "connections=" + std::to_string(connections) + " refused=" + std::to_string(refused) +
         " cuts=" + std::to_string(cuts) + " resets=" + std::to_string(resets) +
         " stalls=" + std::to_string(stalls) + " delays=" + std::to_string(delays) +
         " splits=" + std::to_string(splits) + " bytes=" + std::to_string(bytes);
}

class FaultProxy::Loop {
 public:
  Loop(int listen_fd, int wake_fd, int upstream_port, FaultPlan plan)
      : listen_fd_(listen_fd), wake_fd_(wake_fd), upstream_port_(upstream_port), plan_(plan) {}
  ~Loop() { close_all(); }

  // Runs until `stopping`, then closes every socket.
  void run();

  std::atomic<bool> stopping{false};
  std::atomic<bool> faults_on{true};
  std::atomic<std::int64_t> stall_all_ms{0};  // a stall_all() not yet carried out
  std::atomic<std::uint64_t> connections{0}, refused{0}, cuts{0}, resets{0}, stalls{0}, delays{0},
      splits{0}, bytes{0};

 private:
  void accept_one(Clock::time_point now);
  void schedule_faults(Conn& c, Clock::time_point now);
  void run_timers(Conn& c, Clock::time_point now);
  void on_connected(Conn& c, Clock::time_point now);
  // false when the connection has to be dropped.
  bool read_into(Conn& c, int fd, Direction& d, Clock::time_point now);
  bool write_from(Conn& c, int fd, Direction& d, Clock::time_point now);
  void pass_fin(int fd, Direction& d);
  void close_conn(Conn& c, bool reset);
  void close_all();
  bool can_write(const Conn& c, const Direction& d, Clock::time_point now) const;
  std::optional<Clock::time_point> next_timer(const Conn& c) const;

  int listen_fd_;
  int wake_fd_;
  int upstream_port_;
  FaultPlan plan_;
  std::uint64_t next_ordinal_ = 0;
  std::list<Conn> conns_;
};

void FaultProxy::Loop::run() {
  std::vector<pollfd> fds;
  std::vector<Conn*> owners;  // owners[i] for fds[i], null for wake and listen
  while (!stopping.load()) {
    auto now = Clock::now();
    if (std::int64_t ms = stall_all_ms.exchange(0); ms > 0) {
      for (Conn& c : conns_) {
        c.stall_until = now + milliseconds(ms);
        stalls.fetch_add(1);
      }
    }
    for (Conn& c : conns_) run_timers(c, now);
    conns_.remove_if([](const Conn& c) { return c.closed; });

    fds.clear();
    owners.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    owners.push_back(nullptr);
    fds.push_back(
        {listen_fd_, static_cast<short>(conns_.size() < plan_.max_connections ? POLLIN : 0), 0});
    owners.push_back(nullptr);
    auto deadline = now + milliseconds(1000);
    for (Conn& c : conns_) {
      short client_events = 0;
      short server_events = 0;
      if (!c.up.eof && c.up.buffered < plan_.max_buffered) client_events |= POLLIN;
      if (c.connecting) {
        server_events |= POLLOUT;
      } else {
        if (!c.down.eof && c.down.buffered < plan_.max_buffered) server_events |= POLLIN;
        if (can_write(c, c.up, now)) server_events |= POLLOUT;
        if (can_write(c, c.down, now)) client_events |= POLLOUT;
      }
      fds.push_back({c.client_hup ? -1 : c.client, client_events, 0});
      owners.push_back(&c);
      fds.push_back({c.server_hup ? -1 : c.server, server_events, 0});
      owners.push_back(&c);
      if (auto t = next_timer(c)) deadline = std::min(deadline, *t);
    }
    auto wait = std::chrono::ceil<milliseconds>(deadline - now).count();
    int ready = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(wait, 0)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    now = Clock::now();
    if (fds[0].revents != 0) {
      std::uint64_t value = 0;
      [[maybe_unused]] ssize_t n = ::read(wake_fd_, &value, sizeof value);
    }
    if (fds[1].revents & POLLIN) accept_one(now);
    for (std::size_t i = 2; i < fds.size(); ++i) {
      Conn& c = *owners[i];
      short rev = fds[i].revents;
      if (rev == 0 || c.closed) continue;
      bool is_client = fds[i].fd == c.client;
      if (!is_client && c.connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.server, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || (rev & (POLLERR | POLLHUP))) {
          refused.fetch_add(1);
          close_conn(c, /*reset=*/true);
          continue;
        }
        on_connected(c, now);
        continue;
      }
      Direction& from = is_client ? c.up : c.down;  // bytes read from this socket
      Direction& to = is_client ? c.down : c.up;    // bytes written to it
      if (rev & POLLERR) {
        close_conn(c, /*reset=*/true);
        continue;
      }
      if ((rev & (POLLIN | POLLHUP)) && !from.eof) {
        if (from.buffered >= plan_.max_buffered) {
          // Hung up with our buffer full: nothing more can be done for it.
          if (rev & POLLHUP) close_conn(c, /*reset=*/true);
        } else if (!read_into(c, fds[i].fd, from, now)) {
          close_conn(c, /*reset=*/true);
          continue;
        }
      }
      if (c.closed) continue;
      if ((rev & POLLOUT) && !write_from(c, fds[i].fd, to, now)) {
        close_conn(c, /*reset=*/true);
        continue;
      }
      if (c.connecting) continue;
      if ((rev & POLLHUP) && from.eof) (is_client ? c.client_hup : c.server_hup) = true;
      pass_fin(is_client ? c.server : c.client, from);
      pass_fin(fds[i].fd, to);
      if (c.up.shut_down && c.down.shut_down) close_conn(c, /*reset=*/false);
    }
  }
  close_all();
}

void FaultProxy::Loop::close_all() {
  for (Conn& c : conns_) close_conn(c, /*reset=*/true);
  conns_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

void FaultProxy::Loop::accept_one(Clock::time_point now) {
  int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return;
  connections.fetch_add(1);
  int up = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (up < 0) {
    close_socket(fd, true);
    return;
  }
  sockaddr_in addr = loopback(upstream_port_);
  int rc = ::connect(up, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (rc != 0 && errno != EINPROGRESS) {
    refused.fetch_add(1);  // the server is down
    close_socket(up, false);
    close_socket(fd, true);
    return;
  }
  Conn& c = conns_.emplace_back();
  c.ordinal = next_ordinal_++;
  c.client = fd;
  c.server = up;
  c.rng.seed(plan_.seed * 0x9E3779B97F4A7C15ull + c.ordinal);
  c.up.last_release = c.down.last_release = now;
  if (rc == 0) on_connected(c, now);
}

void FaultProxy::Loop::on_connected(Conn& c, Clock::time_point now) {
  c.connecting = false;
  set_nodelay(c.client);
  set_nodelay(c.server);
  schedule_faults(c, now);
}

void FaultProxy::Loop::schedule_faults(Conn& c, Clock::time_point now) {
  // Drawn in a fixed order, so a connection's plan depends only on the seed
  // and its ordinal.
  std::uniform_int_distribution<std::uint32_t> life(plan_.cut_min_ms,
                                                    std::max(plan_.cut_min_ms, plan_.cut_max_ms));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uint32_t lifetime = life(c.rng);
  bool reset = unit(c.rng) < plan_.reset_share;
  bool stall = unit(c.rng) < plan_.stall_chance;
  std::uint32_t horizon = plan_.cut_max_ms > 0 ? lifetime : 2000;
  std::uint32_t stall_at = std::uniform_int_distribution<std::uint32_t>(0, horizon)(c.rng);
  std::uint32_t stall_for = std::uniform_int_distribution<std::uint32_t>(
      plan_.stall_min_ms, std::max(plan_.stall_min_ms, plan_.stall_max_ms))(c.rng);
  if (!faults_on.load()) return;
  if (plan_.cut_max_ms > 0) {
    c.cut_at = now + milliseconds(lifetime);
    c.reset_on_cut = reset;
  }
  if (stall) {
    c.stall_at = now + milliseconds(stall_at);
    c.stall_for = milliseconds(stall_for);
  }
}

void FaultProxy::Loop::run_timers(Conn& c, Clock::time_point now) {
  if (c.closed) return;
  if ((c.client_hup && c.up.shut_down) || (c.server_hup && c.down.shut_down)) {
    close_conn(c, /*reset=*/false);  // the FIN went on: nothing more can pass
    return;
  }
  if (!faults_on.load()) {
    c.cut_at.reset();
    c.stall_at.reset();
    c.stall_until.reset();
    return;
  }
  if (c.stall_at && *c.stall_at <= now) {
    c.stall_at.reset();
    c.stall_until = now + c.stall_for;
    // The stall does not count towards the lifetime: a connection that hangs
    // longer than the clients' request timeout, then goes on, is a case too.
    if (c.cut_at) *c.cut_at += c.stall_for;
    stalls.fetch_add(1);
  }
  if (c.stall_until && *c.stall_until <= now) c.stall_until.reset();
  if (c.cut_at && *c.cut_at <= now) {
    (c.reset_on_cut ? resets : cuts).fetch_add(1);
    close_conn(c, c.reset_on_cut);
  }
}

std::optional<Clock::time_point> FaultProxy::Loop::next_timer(const Conn& c) const {
  std::optional<Clock::time_point> t;
  auto consider = [&t](std::optional<Clock::time_point> x) {
    if (x && (!t || *x < *t)) t = x;
  };
  consider(c.cut_at);
  consider(c.stall_at);
  consider(c.stall_until);
  if (!c.connecting && !c.stalled(Clock::now())) {
    if (!c.up.chunks.empty()) consider(c.up.chunks.front().release);
    if (!c.down.chunks.empty()) consider(c.down.chunks.front().release);
  }
  return t;
}

bool FaultProxy::Loop::can_write(const Conn& c, const Direction& d, Clock::time_point now) const {
  return !d.chunks.empty() && !c.stalled(now) && d.chunks.front().release <= now;
}

bool FaultProxy::Loop::read_into(Conn& c, int fd, Direction& d, Clock::time_point now) {
  std::size_t room = std::min(kReadChunk, plan_.max_buffered - d.buffered);
  std::string data(room, '\0');
  ssize_t n = ::read(fd, data.data(), room);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  if (n == 0) {
    d.eof = true;
    return true;
  }
  data.resize(static_cast<std::size_t>(n));
  auto release = now;
  if (faults_on.load() &&
      std::uniform_real_distribution<double>(0.0, 1.0)(c.rng) < plan_.delay_chance) {
    std::uint32_t ms =
        std::uniform_int_distribution<std::uint32_t>(1, std::max(1u, plan_.delay_max_ms))(c.rng);
    release += milliseconds(ms);
    delays.fetch_add(1);
  }
  release = std::max(release, d.last_release);  // bytes keep their order
  d.last_release = release;
  d.buffered += data.size();
  d.chunks.push_back(Chunk{std::move(data), 0, release});
  return true;
}

bool FaultProxy::Loop::write_from(Conn& c, int fd, Direction& d, Clock::time_point now) {
  while (can_write(c, d, now)) {
    Chunk& chunk = d.chunks.front();
    std::size_t left = chunk.data.size() - chunk.offset;
    std::size_t size = left;
    bool split = false;
    if (faults_on.load() && left > 1 &&
        std::uniform_real_distribution<double>(0.0, 1.0)(c.rng) < plan_.split_chance) {
      std::size_t most = std::min(left - 1, plan_.split_max_bytes);
      size = std::uniform_int_distribution<std::size_t>(1, std::max<std::size_t>(1, most))(c.rng);
      size |= 1;  // odd
      size = std::min(size, left - 1);
      split = size > 0;
      if (!split) size = left;
    }
    ssize_t n = ::send(fd, chunk.data.data() + chunk.offset, size, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    if (split) splits.fetch_add(1);
    bytes.fetch_add(static_cast<std::uint64_t>(n));
    chunk.offset += static_cast<std::size_t>(n);
    d.buffered -= static_cast<std::size_t>(n);
    if (chunk.offset == chunk.data.size()) d.chunks.pop_front();
    // A split piece leaves on its own: the rest waits for the next pass.
    if (split || static_cast<std::size_t>(n) < size) break;
  }
  return true;
}

void FaultProxy::Loop::pass_fin(int fd, Direction& d) {
  if (d.eof && d.chunks.empty() && !d.shut_down) {
    ::shutdown(fd, SHUT_WR);
    d.shut_down = true;
  }
}

void FaultProxy::Loop::close_conn(Conn& c, bool reset) {
  if (c.closed) return;
  close_socket(c.client, reset);
  close_socket(c.server, reset);
  c.client = c.server = -1;
  c.closed = true;
}

// ---- FaultProxy -----------------------------------------------------------------

std::unique_ptr<FaultProxy> FaultProxy::start(int upstream_port, const FaultPlan& plan,
                                              std::string* error) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return nullptr;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr = loopback(0);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 128) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    *error = std::string("bind 127.0.0.1:0: ") + std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  int wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake < 0) {
    *error = std::string("eventfd: ") + std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  std::unique_ptr<FaultProxy> proxy(new FaultProxy());
  proxy->port_ = ntohs(addr.sin_port);
  proxy->wake_fd_ = wake;
  proxy->loop_ = std::make_unique<Loop>(fd, wake, upstream_port, plan);
  proxy->thread_ = std::thread([loop = proxy->loop_.get()] { loop->run(); });
  return proxy;
}

FaultProxy::~FaultProxy() {
  stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void FaultProxy::set_faults(bool on) {
  loop_->faults_on.store(on);
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void FaultProxy::stall_all(std::chrono::milliseconds duration) {
  loop_->stall_all_ms.store(duration.count());
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void FaultProxy::stop() {
  std::lock_guard lock(stop_mu_);
  if (!thread_.joinable()) return;
  loop_->stopping.store(true);
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  thread_.join();  // the loop closes every socket as it ends
}

FaultCounts FaultProxy::counts() const {
  FaultCounts out;
  out.connections = loop_->connections.load();
  out.refused = loop_->refused.load();
  out.cuts = loop_->cuts.load();
  out.resets = loop_->resets.load();
  out.stalls = loop_->stalls.load();
  out.delays = loop_->delays.load();
  out.splits = loop_->splits.load();
  out.bytes = loop_->bytes.load();
  return out;
}

}  // namespace parley_fault
