// What the end-to-end tests drive: a real parley-server process and
// parley-cli --batch processes talking over WebSockets on 127.0.0.1.
// Every wait is bounded.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "process.hpp"

namespace parley_e2e {

using namespace std::chrono_literals;

// A fresh directory under the system temp directory, removed with all it holds.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// One line of parley-cli --batch output.
struct JsonLine {
  std::string raw;
  // Strings as they are, numbers in decimal, booleans as "true" or "false".
  std::map<std::string, std::string> fields;
  std::vector<std::string> ids;  // the "ids" array, when present
  std::set<std::string> nulls;   // members whose value is null

  bool has(const std::string& key) const { return fields.count(key) != 0; }
  bool is_null(const std::string& key) const { return nulls.count(key) != 0; }
  std::string get(const std::string& key) const;
  std::uint64_t num(const std::string& key) const;
  std::string event() const { return get("event"); }
  bool is(const std::string& event) const { return get("event") == event; }
  bool is_result(const std::string& command) const;
  bool is_error(const std::string& code) const;
};

// Parses a line that must be one JSON object (valid UTF-8) of strings,
// unsigned numbers, booleans, nulls and arrays of strings; nullopt and `*why`
// otherwise.
std::optional<JsonLine> parse_json_line(const std::string& line, std::string* why);

// `parley-server keygen --out path`; empty on success, else why not.
std::string keygen(const std::string& path);
// `parley-server mint-token`; the token, or empty on failure.
std::string mint_token(const std::string& key_file, const std::string& user,
                       std::optional<int> ttl_seconds = std::nullopt);

// parley-server on 127.0.0.1 with an ephemeral port.
class Server {
 public:
  Server(std::string data_dir, std::string key_file)
      : data_dir_(std::move(data_dir)), key_file_(std::move(key_file)) {}
  // Starts it and waits for "listening on 127.0.0.1:PORT"; empty on success.
  // Without "--rate-limit" among `extra_args` the rate limit is off: tests
  // that send many messages from one user are about other things.
  std::string start(const std::vector<std::string>& extra_args = {});
  // SIGTERM, then waits; the exit status, or -1 if it had to be killed.
  int stop();
  int port() const { return port_; }
  // Sends a signal to the server process (SIGSTOP/SIGCONT to freeze it); false if not running.
  bool signal(int sig) { return process_ && process_->signal(sig); }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port_); }

 private:
  std::string data_dir_;
  std::string key_file_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

// parley-cli --batch, the token passed through PARLEY_TOKEN; `env` adds or
// replaces other environment variables (NAME, value), such as the SDK's test
// hook PARLEY_TEST_CRASH_AT.
class Cli {
 public:
  Cli(const std::string& url, const std::string& token, const std::string& data_dir,
      const std::vector<std::string>& extra_args = {},
      const std::vector<std::pair<std::string, std::string>>& env = {});
  bool started() const { return process_ != nullptr; }
  const std::string& start_error() const { return start_error_; }

  // Writes one command line.
  void send(const std::string& line);
  // The first line not returned by an earlier expect() that satisfies `pred`,
  // reading more output as needed; nullopt on timeout or end of output.
  std::optional<JsonLine> expect(const std::function<bool(const JsonLine&)>& pred,
                                 std::chrono::milliseconds timeout = 20s);
  // Closes stdin, reads the rest of the output and waits for the exit; the
  // exit status, or -1 if it did not exit in time (it is then killed).
  int finish(std::chrono::milliseconds timeout = 40s);
  // Reads the output to its end and waits for the process to exit by itself,
  // stdin left open; the exit status, or -1 if it did not exit in time (it is
  // then killed).
  int wait_exit(std::chrono::milliseconds timeout = 20s);

  // Every JSON line so far, in order.
  const std::vector<JsonLine>& lines() const { return lines_; }
  // Lines that were not valid JSON objects (should stay empty).
  const std::vector<std::string>& bad_lines() const { return bad_lines_; }
  // All output so far, for failure messages.
  std::string transcript() const;

 private:
  bool read_one(std::chrono::milliseconds timeout);

  std::unique_ptr<Process> process_;
  std::string start_error_;
  std::vector<JsonLine> lines_;
  std::vector<bool> taken_;  // lines_[i] was returned by expect()
  std::vector<std::string> bad_lines_;
};

// A plain HTTP/1.0 GET to 127.0.0.1:port; the whole response ("" on failure).
std::string http_get(int port, const std::string& path, std::chrono::milliseconds timeout = 10s);

}  // namespace parley_e2e
