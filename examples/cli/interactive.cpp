// Readable rendering of parley-cli's output, for a person at a terminal:
//
//   [general #12] alice: hi
//   [general #13] * bob joined
//   -- ready
#include <cstdio>
#include <string>
#include <utility>

#include "output.hpp"

namespace parley_cli {
namespace {

void line(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string short_id(const std::string& id) { return id.substr(0, 8); }

class HumanOutput final : public Output {
 public:
  explicit HumanOutput(std::string user) : user_(std::move(user)) {}

  void message(const parley::Message& m) override {
    const std::string where = "[" + m.channel + " #" + std::to_string(m.seq) + "] ";
    switch (m.kind) {
      case parley::EventKind::message:
        line(where + m.sender + ": " + m.text);
        break;
      case parley::EventKind::create:
        line(where + "* " + m.sender + " created the channel");
        break;
      case parley::EventKind::join:
        line(where + "* " + m.sender + " joined");
        break;
      case parley::EventKind::leave:
        line(where + "* " + m.sender + " left");
        break;
    }
  }

  void pending(const std::string& channel, const std::string& id,
               const std::string& text) override {
    if (text.empty()) line("   (" + channel + ": " + short_id(id) + " queued)");
    // Otherwise quiet: the message shows once the server has stored it.
  }

  void sent(const std::string& channel, const std::string& id, std::uint64_t seq,
            const std::string& text) override {
    if (text.empty()) {
      line("   (" + channel + ": " + short_id(id) + " sent as #" + std::to_string(seq) + ")");
    } else {
      line("[" + channel + " #" + std::to_string(seq) + "] " + user_ + ": " + text);
    }
  }

  void state(parley::LifecycleState state, const parley::Status& reason) override {
    std::string text = std::string("-- ") + parley::to_string(state);
    if (!reason.ok()) text += " (" + reason.reason() + ")";
    line(text);
  }

  void error(const ErrorLine& e) override {
    std::string text = "!! " + e.code + ": " + e.message;
    if (!e.id.empty() && e.message.find(e.id) == std::string::npos) text += " [" + e.id + "]";
    line(text);
  }

  void result(const CommandResult& r) override {
    if (r.command == "create") {
      line("-- created " + r.channel + "; type to talk there");
    } else if (r.command == "join") {
      line("-- joined " + r.channel + "; type to talk there");
    } else if (r.command == "leave") {
      line("-- left " + r.channel);
    } else if (r.command == "history") {
      line("-- " + std::to_string(r.count.value_or(0)) + " message(s) of " + r.channel);
    } else if (r.command == "quit") {
      line("-- bye");
    }
    // /send shows its pending line; /sleep needs no echo.
  }

  void help() override {
    line(
        "commands:\n"
        "  /create CHANNEL        create a channel and join it\n"
        "  /join CHANNEL          join a channel\n"
        "  /leave CHANNEL         leave a channel\n"
        "  /send CHANNEL TEXT...  send a message\n"
        "  TEXT...                send to the channel last created or joined\n"
        "  /history CHANNEL N     show the latest N messages\n"
        "  /sleep MS              wait\n"
        "  /help                  this list\n"
        "  /quit                  send what is queued, then exit (also Ctrl-D)");
  }

 private:
  std::string user_;
};

}  // namespace

std::unique_ptr<Output> make_human_output(std::string user) {
  return std::make_unique<HumanOutput>(std::move(user));
}

}  // namespace parley_cli
