#include "pty.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <thread>

extern char** environ;

namespace parley_e2e {
namespace {

using Clock = std::chrono::steady_clock;

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

std::unique_ptr<PtyProcess> PtyProcess::spawn(
    const std::vector<std::string>& argv,
    const std::vector<std::pair<std::string, std::string>>& set,
    const std::vector<std::string>& unset, int columns, int rows, std::string* error) {
  ::signal(SIGPIPE, SIG_IGN);

  // Everything the child needs is built before fork(): after it, only
  // async-signal-safe calls.
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq != nullptr) vars[std::string(*e, static_cast<std::size_t>(eq - *e))] = eq + 1;
  }
  for (const auto& [name, value] : set) vars[name] = value;
  for (const std::string& name : unset) vars.erase(name);
  std::vector<std::string> env_strings;
  for (const auto& [name, value] : vars) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (std::string& s : args) argp.push_back(s.data());
  argp.push_back(nullptr);

  winsize ws{};
  ws.ws_col = static_cast<unsigned short>(columns);
  ws.ws_row = static_cast<unsigned short>(rows);
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, &ws);
  if (pid < 0) {
    *error = std::string("forkpty: ") + std::strerror(errno);
    return nullptr;
  }
  if (pid == 0) {
    ::execve(argp[0], argp.data(), envp.data());
    ::_exit(127);
  }
  ::fcntl(master, F_SETFD, FD_CLOEXEC);
  std::unique_ptr<PtyProcess> p(new PtyProcess());
  p->pid_ = pid;
  p->master_ = master;
  return p;
}

PtyProcess::~PtyProcess() {
  if (!status_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (master_ >= 0) ::close(master_);
}

bool PtyProcess::type(std::string_view keys) {
  while (!keys.empty()) {
    const ssize_t n = ::write(master_, keys.data(), keys.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    keys.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

long PtyProcess::read_some(std::chrono::milliseconds timeout) {
  if (eof_) return -1;
  pollfd pfd{master_, POLLIN, 0};
  const int ready = ::poll(&pfd, 1, static_cast<int>(std::max<long long>(timeout.count(), 0)));
  if (ready <= 0) return 0;
  char buf[4096];
  const ssize_t n = ::read(master_, buf, sizeof buf);
  if (n < 0 && errno == EINTR) return 0;
  if (n <= 0) {  // EIO once the child has closed its side
    eof_ = true;
    return -1;
  }
  raw_.append(buf, static_cast<std::size_t>(n));
  strip_new_output();
  return n;
}

// Escape sequences out: CSI (ESC [ ... final byte), OSC (ESC ] ... BEL or
// ESC \), character set designations (ESC ( X), and ESC plus one character.
// A sequence cut off at the end waits for more output.
void PtyProcess::strip_new_output() {
  std::size_t i = stripped_;
  while (i < raw_.size()) {
    const char c = raw_[i];
    if (c != '\033') {
      if (c != '\r' && c != '\b' && c != '\a') text_ += c;
      ++i;
      continue;
    }
    if (i + 1 >= raw_.size()) break;
    const char kind = raw_[i + 1];
    std::size_t end = 0;  // one past the sequence; 0 while incomplete
    if (kind == '[') {
      for (std::size_t j = i + 2; j < raw_.size(); ++j) {
        if (raw_[j] >= 0x40 && raw_[j] <= 0x7e) {
          end = j + 1;
          break;
        }
      }
    } else if (kind == ']') {
      for (std::size_t j = i + 2; j < raw_.size(); ++j) {
        if (raw_[j] == '\a') {
          end = j + 1;
          break;
        }
        if (raw_[j] == '\033' && j + 1 < raw_.size() && raw_[j + 1] == '\\') {
          end = j + 2;
          break;
        }
      }
    } else if (kind == '(' || kind == ')') {
      if (i + 2 < raw_.size()) end = i + 3;
    } else {
      end = i + 2;
    }
    if (end == 0) break;
    i = end;
  }
  stripped_ = i;
}

bool PtyProcess::expect(const std::string& text, std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    const std::size_t at = text_.find(text, matched_);
    if (at != std::string::npos) {
      matched_ = at + text.size();
      return true;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= std::chrono::milliseconds(0)) return false;
    if (read_some(std::min(left, std::chrono::milliseconds(100))) < 0) {
      return text_.find(text, matched_) != std::string::npos;
    }
  }
}

std::optional<int> PtyProcess::wait(std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (!status_) {
    read_some(std::chrono::milliseconds(10));  // a full pty would block the child
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = decode_status(status);
      break;
    }
    if (r < 0 && errno != EINTR) {
      status_ = -1;
      break;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    if (eof_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  while (read_some(std::chrono::milliseconds(0)) > 0) {
  }
  return status_;
}

}  // namespace parley_e2e
