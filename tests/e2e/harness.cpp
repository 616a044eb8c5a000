#include "harness.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#ifndef PARLEY_SERVER_BIN
#error "PARLEY_SERVER_BIN must name the parley-server binary"
#endif
#ifndef PARLEY_CLI_BIN
#error "PARLEY_CLI_BIN must name the parley-cli binary"
#endif

namespace parley_e2e {
namespace {

using Clock = std::chrono::steady_clock;

// Runs a tool to its end and returns its first line of stdout ("" if it
// failed or printed nothing).
std::string run_tool(const std::vector<std::string>& argv) {
  std::string error;
  auto p = Process::spawn(argv, {}, &error);
  if (!p) return "";
  std::optional<std::string> line = p->read_line(15s);
  std::optional<int> status = p->wait(15s);
  if (!status || *status != 0 || !line) return "";
  return *line;
}

}  // namespace

// ---- TempDir ------------------------------------------------------------------

TempDir::TempDir() {
  std::error_code ec;
  std::string base = std::filesystem::temp_directory_path(ec).string();
  if (ec || base.empty()) base = "/tmp";
  std::string pattern = base + "/parley-e2e-XXXXXX";
  if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

// ---- JsonLine -----------------------------------------------------------------

std::string JsonLine::get(const std::string& key) const {
  auto it = fields.find(key);
  return it == fields.end() ? std::string() : it->second;
}

std::uint64_t JsonLine::num(const std::string& key) const {
  const std::string v = get(key);
  return v.empty() ? 0 : std::strtoull(v.c_str(), nullptr, 10);
}

bool JsonLine::is_result(const std::string& command) const {
  return is("result") && get("command") == command;
}

bool JsonLine::is_error(const std::string& code) const {
  return is("error") && get("code") == code;
}

std::optional<JsonLine> parse_json_line(const std::string& line, std::string* why) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(line.c_str(), line.size());
  if (doc.HasParseError()) {
    *why = std::string("not JSON: ") + rapidjson::GetParseError_En(doc.GetParseError());
    return std::nullopt;
  }
  if (!doc.IsObject()) {
    *why = "not a JSON object";
    return std::nullopt;
  }
  JsonLine out;
  out.raw = line;
  for (const auto& m : doc.GetObject()) {
    const std::string key(m.name.GetString(), m.name.GetStringLength());
    if (m.value.IsString()) {
      out.fields[key] = std::string(m.value.GetString(), m.value.GetStringLength());
    } else if (m.value.IsUint64()) {
      out.fields[key] = std::to_string(m.value.GetUint64());
    } else if (m.value.IsBool()) {
      out.fields[key] = m.value.GetBool() ? "true" : "false";
    } else if (m.value.IsNull()) {
      out.nulls.insert(key);
    } else if (m.value.IsArray() && key == "ids") {
      for (const auto& v : m.value.GetArray()) {
        if (!v.IsString()) {
          *why = "\"ids\" holds a non-string";
          return std::nullopt;
        }
        out.ids.emplace_back(v.GetString(), v.GetStringLength());
      }
    } else {
      *why = "member \"" + key + "\" has an unexpected type";
      return std::nullopt;
    }
  }
  if (!out.has("event")) {
    *why = "no \"event\" member";
    return std::nullopt;
  }
  return out;
}

// ---- tools --------------------------------------------------------------------

std::string keygen(const std::string& path) {
  std::string error;
  auto p = Process::spawn({PARLEY_SERVER_BIN, "keygen", "--out", path}, {}, &error);
  if (!p) return error;
  while (p->read_line(15s)) {
  }
  std::optional<int> status = p->wait(15s);
  if (!status) return "keygen did not exit";
  if (*status != 0) return "keygen exited with " + std::to_string(*status);
  return "";
}

std::string mint_token(const std::string& key_file, const std::string& user,
                       std::optional<int> ttl_seconds) {
  std::vector<std::string> argv = {PARLEY_SERVER_BIN, "mint-token", "--key",
                                   key_file,          "--user",     user};
  if (ttl_seconds) {
    argv.push_back("--ttl");
    argv.push_back(std::to_string(*ttl_seconds));
  }
  return run_tool(argv);
}

// ---- Server -------------------------------------------------------------------

std::string Server::start(const std::vector<std::string>& extra_args) {
  std::string error;
  std::vector<std::string> argv = {PARLEY_SERVER_BIN, "--listen", "127.0.0.1:0", "--data",
                                   data_dir_,         "--key",    key_file_};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  if (std::find(extra_args.begin(), extra_args.end(), "--rate-limit") == extra_args.end()) {
    argv.push_back("--rate-limit");
    argv.push_back("off");
  }
  process_ = Process::spawn(argv, {}, &error);
  if (!process_) return error;
  const std::string prefix = "listening on 127.0.0.1:";
  const Clock::time_point deadline = Clock::now() + 20s;
  while (Clock::now() < deadline) {
    std::optional<std::string> line = process_->read_line(1s);
    if (!line) {
      if (process_->at_eof()) return "parley-server exited before listening";
      continue;
    }
    const std::size_t at = line->find(prefix);
    if (at == std::string::npos) continue;
    port_ = std::atoi(line->c_str() + at + prefix.size());
    if (port_ <= 0 || port_ > 65535) return "cannot read the port from: " + *line;
    return "";
  }
  return "parley-server did not say where it listens within 20 s";
}

int Server::stop() {
  if (!process_) return -1;
  process_->signal(SIGTERM);
  // Drain its stdout so that it never blocks on a full pipe while shutting down.
  const Clock::time_point deadline = Clock::now() + 20s;
  std::optional<int> status;
  while (!(status = process_->wait(0ms)) && Clock::now() < deadline) {
    process_->read_line(50ms);
  }
  process_.reset();  // kills it if it is still running
  port_ = 0;
  return status.value_or(-1);
}

// ---- Cli ----------------------------------------------------------------------

Cli::Cli(const std::string& url, const std::string& token, const std::string& data_dir,
         const std::vector<std::string>& extra_args,
         const std::vector<std::pair<std::string, std::string>>& env) {
  std::vector<std::string> argv = {PARLEY_CLI_BIN, "--batch", "--server", url, "--data", data_dir};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  std::vector<std::pair<std::string, std::string>> vars = {{"PARLEY_TOKEN", token}};
  vars.insert(vars.end(), env.begin(), env.end());
  process_ = Process::spawn(argv, vars, &start_error_);
}

void Cli::send(const std::string& line) {
  if (process_) process_->write(line + "\n");
}

bool Cli::read_one(std::chrono::milliseconds timeout) {
  std::optional<std::string> line = process_->read_line(timeout);
  if (!line) return false;
  std::string why;
  if (std::optional<JsonLine> json = parse_json_line(*line, &why)) {
    lines_.push_back(std::move(*json));
    taken_.push_back(false);
  } else {
    bad_lines_.push_back(*line + "   <- " + why);
  }
  return true;
}

std::optional<JsonLine> Cli::expect(const std::function<bool(const JsonLine&)>& pred,
                                    std::chrono::milliseconds timeout) {
  if (!process_) return std::nullopt;
  const Clock::time_point deadline = Clock::now() + timeout;
  std::size_t i = 0;
  for (;;) {
    for (; i < lines_.size(); ++i) {
      if (!taken_[i] && pred(lines_[i])) {
        taken_[i] = true;
        return lines_[i];
      }
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= 0ms) return std::nullopt;
    if (!read_one(left) && process_->at_eof()) return std::nullopt;
  }
}

int Cli::finish(std::chrono::milliseconds timeout) {
  if (!process_) return -1;
  process_->close_stdin();
  return wait_exit(timeout);
}

int Cli::wait_exit(std::chrono::milliseconds timeout) {
  if (!process_) return -1;
  const Clock::time_point deadline = Clock::now() + timeout;
  while (!process_->at_eof() && Clock::now() < deadline) {
    read_one(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  std::optional<int> status = process_->wait(std::max(left, 1000ms));
  if (!status) {
    process_->signal(SIGKILL);
    process_->wait(5s);
    return -1;
  }
  return *status;
}

std::string Cli::transcript() const {
  std::string out;
  for (const JsonLine& l : lines_) out += "  " + l.raw + "\n";
  for (const std::string& l : bad_lines_) out += "  BAD: " + l + "\n";
  return out;
}

// ---- HTTP ---------------------------------------------------------------------

std::string http_get(int port, const std::string& path, std::chrono::milliseconds timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request =
        "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      const Clock::time_point deadline = Clock::now() + timeout;
      for (;;) {
        // Done at end of stream, or once the body is as long as announced.
        const std::size_t head_end = response.find("\r\n\r\n");
        if (head_end != std::string::npos) {
          std::string head = response.substr(0, head_end);
          for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          const std::size_t cl = head.find("content-length:");
          if (cl != std::string::npos && response.size() - head_end - 4 >=
                                             std::strtoull(head.c_str() + cl + 15, nullptr, 10)) {
            break;
          }
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) break;
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        response.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  ::close(fd);
  return response;
}

}  // namespace parley_e2e
