// What parley-cli prints, as one interface with two renderings: JSON lines
// for --batch (output.cpp, schema in docs/cli.md) and readable lines for a
// person (interactive.cpp), drawn above the line editor's prompt when stdin
// and stdout are a terminal (terminal.hpp). Use from one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parley/client.hpp"
#include "parley/events.hpp"
#include "parley/types.hpp"

namespace parley {
class Client;
}

namespace parley_cli {

class DirectNames;
class Screen;

// The closing line of a command that succeeded. (Members have "{}" so that
// designated initializers may leave them out without a warning.)
struct CommandResult {
  std::string command{};                   // "create", "join", "history", ...
  std::string channel{};                   // empty: the command has none
  std::string id{};                        // /send, /dm: the message id
  std::optional<std::uint64_t> count{};    // /history, /members: how many lines were printed
  std::vector<std::string> names{};        // /channels (interactive): the channels
  std::string kind{};                      // /create, /members: the channel's kind
  std::string user{};                      // /dm and member commands: the user
  std::string device{};                    // /device-remove: the device removed
  std::string role{};                      // /role: the new role
  std::optional<std::uint64_t> seconds{};  // /ban, /mute: as given
  std::optional<std::uint64_t> ref{};      // message commands: the message's seq
  std::optional<std::uint64_t> seq{};      // moderation commands: the event's seq (0: none)
  std::string topic{};                     // /members: the topic, when set
  std::string title{};                     // document commands: the document's title
  std::string level{};                     // /notify: the level
  std::string status{};                    // /status: the mode set
  std::string text{};                      // /status: the custom text set (empty: cleared)
  std::optional<bool> notify{};            // /watch: with notify
  std::optional<bool> hide_last_seen{};    // /status hide-last-seen
  std::optional<bool> verified{};          // /verify: the contact is verified now
  // /block, /unblock, /blocked: the users blocked now, in name order.
  std::optional<std::vector<std::string>> blocked{};
};

// An error line. `code` is a Status::reason() or one of the CLI's own codes
// (bad_command, offline, timeout, drain_timeout).
struct ErrorLine {
  std::string code{};
  std::string message{};
  std::string id{};                // set when the error concerns one message
  std::vector<std::string> ids{};  // drain_timeout: the ids still in the outbox
};

// The error line for a failed Status: its reason() is the code.
ErrorLine error_from(const parley::Status& status, std::string id = {});

class Output {
 public:
  virtual ~Output() = default;

  // A channel event of any kind: a text message, a membership or role change,
  // a metadata change, a deletion, a pin, a system message.
  virtual void message(const parley::Message& m) = 0;
  // Our message is in the outbox, then stored by the server. `text` is its
  // text when this run sent it, else empty (an earlier run's message).
  virtual void pending(const std::string& channel, const std::string& id,
                       const std::string& text) = 0;
  virtual void sent(const std::string& channel, const std::string& id, std::uint64_t seq,
                    const std::string& text) = 0;
  virtual void state(parley::LifecycleState state, const parley::Status& reason) = 0;
  // Another user started or stopped typing.
  virtual void typing(const parley::TypingChanged& e) = 0;
  // A member's delivered or read cursor moved.
  virtual void receipt(const parley::ReceiptUpdated& e) = 0;
  // /members: the channel's members and bans (its result line follows).
  virtual void channel_info(const parley::ChannelInfoLoaded& e) = 0;
  // The server says something deserves the user's attention.
  virtual void notification(const parley::NotificationReceived& e) = 0;
  // A channel's unread and mention counts: as they change, and per channel
  // for /unread (`listed`).
  virtual void unread(const std::string& channel, const parley::UnreadCount& count,
                      bool listed) = 0;
  // /unread: the totals over the user's channels (Client::badge), after the
  // per-channel lines.
  virtual void unread_total(const parley::UnreadCount& total) = 0;
  // The user's notification level of a channel changed (here or on another device).
  virtual void notify_level(const parley::NotificationLevelChanged& e) = 0;
  // A user's presence as the server sent it: a change or a snapshot item.
  // `listed`: it answers /presence or /watch (interactive mode shows every
  // listed one, and otherwise only what changed).
  virtual void presence(const parley::Presence& p, bool listed) = 0;
  // A user watched with notify came online.
  virtual void presence_notified(const std::string& user) = 0;
  // How many members of a large channel are online.
  virtual void online_count(const parley::OnlineCountChanged& e) = 0;
  // A contact's device presented a new identity key (end-to-end encryption).
  virtual void identity_changed(const parley::IdentityChanged& e) = 0;
  // /safety: the safety number with a contact (its result line follows).
  virtual void safety(const parley::SafetyNumberLoaded& e) = 0;
  // /devices: one of this user's devices (its result line follows the last).
  virtual void device(const parley::DeviceInfo& d) = 0;
  // An encryption session with a device was started again to recover a
  // message that could not be decrypted (here, or at the other end).
  virtual void session_reset(const parley::SessionReset& e) = 0;
  // A message shown before changed: a DM that could not be decrypted came
  // again and now has its text.
  virtual void message_updated(const parley::Message& m) = 0;
  // A collaborative document's whole text: what /doc-open and /doc-show
  // show, and every change applied while it is open (local or remote).
  virtual void document(const std::string& channel, const std::string& title,
                        const std::string& text, std::uint64_t version) = 0;
  // Another participant's cursor in an open document.
  virtual void document_cursor(const parley::DocumentAwareness& /*e*/) {}
  virtual void error(const ErrorLine& e) = 0;
  virtual void result(const CommandResult& r) = 0;
  // A note for people (late answers, an unreachable server): stderr in batch
  // mode, a dim line in interactive mode.
  virtual void diagnostic(const std::string& text) = 0;
  // Catching up on a channel after being offline. Interactive only: batch
  // mode prints no line for it (issue 2 fixed its events).
  virtual void sync_progress(const parley::SyncProgress& /*e*/) {}
  // Interactive: the channel plain text goes to changed ("" for none).
  virtual void current_channel(const std::string& /*channel*/) {}
  // The list of commands (/help; interactive only).
  virtual void help() = 0;
};

// JSON lines on stdout, flushed after each line. Direct channels are named
// "@U" through `names` when given (it must outlive the output).
std::unique_ptr<Output> make_json_output(DirectNames* names = nullptr);
// Readable lines on `screen` for a person signed in as `user`; `client`
// answers receipt summaries, `names` names direct channels "@U". Colours when
// `color`. All must outlive it.
std::unique_ptr<Output> make_human_output(parley::Client& client, Screen& screen,
                                          DirectNames& names, bool color);

// `s` with every byte sequence that is not UTF-8 replaced by U+FFFD, so that
// what reaches the JSON writer is always valid.
std::string to_valid_utf8(const std::string& s);

}  // namespace parley_cli
