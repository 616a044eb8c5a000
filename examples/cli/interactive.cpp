// Readable rendering of parley-cli's output, for a person at a terminal:
//
//   09:30 bob: hi alice                  a message in the current channel
//   09:30 [random] carol: lunch?         a message in another channel
//   09:31 alice: hello bob …             yours, until the server has it
//   09:31 * dave joined general
//   09:32 [@bob] bob: 🔒 see you at 8      an end-to-end encrypted direct message
//   -- connected
//   bob is typing… · ✓ read by bob       status line (dim), above the prompt
//   [general]> _
//
// Typing and receipts only show on a terminal (Screen::live()); piped, the
// lines are the same minus colours, pending markers and the status line.
#include <algorithm>
#include <cstdint>
#include <ctime>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "direct.hpp"
#include "output.hpp"
#include "parley/client.hpp"
#include "screen.hpp"

namespace parley_cli {
namespace {

// ANSI SGR codes.
constexpr const char* kBold = "1";
constexpr const char* kDim = "2";
constexpr const char* kRed = "31";
constexpr const char* kYellow = "33";
constexpr const char* kMention = "1;33";
constexpr const char* kWarning = "1;31";
// Marks end-to-end encrypted messages (direct messages).
constexpr const char* kLock = "\xF0\x9F\x94\x92 ";  // U+1F512 and a space
// Other people's names, picked by a hash of the name so each keeps its colour.
constexpr const char* kNameColors[] = {"36", "32", "35", "34", "96", "92", "95", "94"};

std::string clock_of(std::int64_t ts_ms) {
  const std::time_t t = static_cast<std::time_t>(ts_ms / 1000);
  std::tm tm{};
  char buf[16] = "--:--";
  if (::localtime_r(&t, &tm) != nullptr) std::strftime(buf, sizeof buf, "%H:%M", &tm);
  return buf;
}

std::int64_t now_ms() { return static_cast<std::int64_t>(std::time(nullptr)) * 1000; }

// "09:30" today, "2026-03-01 09:30" on another day (local time).
std::string when_of(std::int64_t ts_ms) {
  const std::time_t t = static_cast<std::time_t>(ts_ms / 1000);
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  std::tm today{};
  char buf[32] = "--";
  if (::localtime_r(&t, &tm) == nullptr || ::localtime_r(&now, &today) == nullptr) return buf;
  const bool same_day = tm.tm_year == today.tm_year && tm.tm_yday == today.tm_yday;
  std::strftime(buf, sizeof buf, same_day ? "%H:%M" : "%Y-%m-%d %H:%M", &tm);
  return buf;
}

// "bob", "bob and carol", "bob, carol and dave".
std::string name_list(const std::set<std::string>& names) {
  std::string out;
  std::size_t i = 0;
  for (const std::string& n : names) {
    if (i > 0) out += i + 1 == names.size() ? " and " : ", ";
    out += n;
    ++i;
  }
  return out;
}

class HumanOutput final : public Output {
 public:
  HumanOutput(parley::Client& client, Screen& screen, DirectNames& names, bool color)
      : client_(client), screen_(screen), names_(names), color_(color), user_(client.user()) {
    current_channel("");
  }

  void message(const parley::Message& m) override {
    const std::string when = style(kDim, clock_of(m.ts_ms)) + " ";
    if (m.kind == parley::EventKind::system) {
      screen_.print(when + where(m.channel) + style(kBold, "system") + ": " + body(m.text));
      return;
    }
    if (m.kind != parley::EventKind::message) {
      screen_.print(when + style(kDim, "* " + describe(m)));
      return;
    }
    if (m.deleted) {
      screen_.print(when + where(m.channel) + name(m.sender) + ": " + style(kDim, "(deleted)"));
      return;
    }
    const std::string lock = m.e2e ? kLock : "";
    if (!m.e2e_error.empty()) {
      screen_.print(
          when + where(m.channel) + name(m.sender) + ": " + lock +
          style(kRed, "(could not decrypt this message: " + printable(m.e2e_error) + ")"));
    } else {
      screen_.print(when + where(m.channel) + name(m.sender) + ": " + lock + body_with_mentions(m));
    }
    if (m.sender != user_) {
      auto it = last_own_.find(m.channel);
      if (it != last_own_.end() && m.seq > it->second) {
        last_own_.erase(it);  // someone answered: the receipts of ours matter less now
        refresh_status();
      }
    }
  }

  void pending(const std::string& channel, const std::string& id,
               const std::string& text) override {
    if (text.empty()) {
      screen_.print(style(kDim, "-- " + shown(channel) + ": " + id.substr(0, 8) +
                                    " is still in the outbox from an earlier run"));
      return;
    }
    if (!screen_.live()) return;  // piped: shown once, when sent
    const std::string line = own_line(channel, text, now_ms());
    pending_[id] = Pending{screen_.print(line + style(kDim, " …")), line};
  }

  void sent(const std::string& channel, const std::string& id, std::uint64_t seq,
            const std::string& text) override {
    auto it = pending_.find(id);
    if (it != pending_.end()) {
      if (!screen_.replace(it->second.handle, it->second.line)) {
        screen_.print(style(kDim, "   ✓ sent: " + excerpt(text)));
      }
      pending_.erase(it);
    } else if (!text.empty()) {
      screen_.print(own_line(channel, text, now_ms()));
    } else {
      screen_.print(style(
          kDim, "-- " + shown(channel) + ": " + id.substr(0, 8) + " from an earlier run is sent"));
    }
    std::uint64_t& last = last_own_[channel];
    last = std::max(last, seq);
    refresh_status();
  }

  void state(parley::LifecycleState state, const parley::Status& reason) override {
    if (state == parley::LifecycleState::ready && !syncing_.empty()) {
      syncing_.clear();  // caught up
      refresh_status();
    }
    if (state == parley::LifecycleState::ready) {
      screen_.print(style(kDim, connected_once_ ? "-- reconnected" : "-- connected"));
      connected_once_ = true;
      lost_ = false;
    } else if (state == parley::LifecycleState::disconnected && !reason.ok() && !lost_) {
      lost_ = true;
      screen_.print(style(kDim, "-- " + std::string(connected_once_ ? "disconnected" : "offline") +
                                    " (" + printable(reason.reason()) +
                                    "); messages wait in the outbox, reconnecting…"));
    }
  }

  void typing(const parley::TypingChanged& e) override {
    if (e.user == user_) return;
    if (e.active) {
      typing_[e.channel].insert(e.user);
    } else {
      auto it = typing_.find(e.channel);
      if (it != typing_.end()) {
        it->second.erase(e.user);
        if (it->second.empty()) typing_.erase(it);
      }
    }
    refresh_status();
  }

  void sync_progress(const parley::SyncProgress& e) override {
    if (e.fetched >= e.total && (e.total != 0 || e.fetched == 0)) {
      syncing_.erase(e.channel);
    } else {
      syncing_[e.channel] = {e.fetched, e.total};
    }
    refresh_status();
  }

  void receipt(const parley::ReceiptUpdated& e) override {
    if (e.user == user_) return;
    auto& cursors = e.kind == parley::ReceiptKind::read ? read_ : delivered_;
    std::uint64_t& seq = cursors[e.channel][e.user];
    seq = std::max(seq, e.seq);
    refresh_status();
  }

  void channel_info(const parley::ChannelInfoLoaded& e) override {
    std::string head = "members of " + shown(e.channel) + " (" + parley::to_string(e.kind);
    if (e.meta.topic && !e.meta.topic->empty()) head += ", topic: " + printable(*e.meta.topic);
    head += "):";
    std::string text = head;
    for (const parley::ChannelMember& m : e.members) {
      text += "\n  " + name(m.user) + " " + style(kDim, std::string(parley::to_string(m.role)));
      if (m.muted) {
        text += style(kDim, m.muted_until_ms > 0 ? ", muted until " + clock_of(m.muted_until_ms)
                                                 : std::string(", muted"));
      }
    }
    for (const parley::ChannelBan& b : e.bans) {
      text += "\n  " + style(kDim, printable(b.user) + " banned" +
                                       (b.until_ms > 0 ? " until " + clock_of(b.until_ms) : ""));
    }
    screen_.print(text);
  }

  void error(const ErrorLine& e) override {
    std::string text = style(kRed, "error: ") + printable(e.message);
    if (!e.id.empty() && e.message.find(e.id) == std::string::npos) text += " [" + e.id + "]";
    text += style(kDim, " (" + e.code + ")");
    if (e.code == "bad_command") text += style(kDim, "; /help lists the commands");
    screen_.print(text);
  }

  void result(const CommandResult& r) override {
    const std::string c = names_.shown(r.channel);
    if (r.command == "create" || r.command == "join") {
      info((r.command == "create" ? "created " : "joined ") + c + "; plain text goes there now");
    } else if (r.command == "leave") {
      info("left " + c);
    } else if (r.command == "switch") {
      info("plain text goes to " + c + " now");
    } else if (r.command == "history") {
      info(std::to_string(r.count.value_or(0)) + " message(s) of " + c);
    } else if (r.command == "typing") {
      info("told " + c + " that you are typing");
    } else if (r.command == "read") {
      info("marked " + c + " as read");
    } else if (r.command == "channels") {
      std::string list;
      for (const std::string& n : r.names) list += (list.empty() ? "" : ", ") + names_.shown(n);
      info(list.empty() ? "you are in no channel yet; /join or /create one"
                        : "your channels: " + list);
    } else if (r.command == "dm") {
      info("direct channel with " + r.user + " (end-to-end encrypted): " + c +
           "; plain text goes there now");
    } else if (r.command == "members") {
      // channel_info() showed them.
    } else if (r.seq && *r.seq == 0 && r.command != "report") {
      info(r.command + " " + c + (r.user.empty() ? "" : " " + r.user) + ": nothing to change");
    } else if (r.command == "invite") {
      info("invited " + r.user + " to " + c);
    } else if (r.command == "kick") {
      info("removed " + r.user + " from " + c);
    } else if (r.command == "ban" || r.command == "mute") {
      info((r.command == "ban" ? "banned " : "muted ") + r.user + " in " + c +
           (r.seconds && *r.seconds > 0 ? " for " + std::to_string(*r.seconds) + " s" : ""));
    } else if (r.command == "unban" || r.command == "unmute") {
      info("lifted the " + r.command.substr(2) + " of " + r.user + " in " + c);
    } else if (r.command == "role") {
      info(r.user + " is now " + r.role + " in " + c);
    } else if (r.command == "transfer") {
      info(r.user + " owns " + c + " now; you are an admin");
    } else if (r.command == "topic") {
      info("set the topic of " + c);
    } else if (r.command == "delete" || r.command == "pin" || r.command == "unpin") {
      info(r.command + (r.command == "delete" ? "d" : "ned") + " message #" +
           std::to_string(r.ref.value_or(0)) + " of " + c);
    } else if (r.command == "report") {
      info("reported message #" + std::to_string(r.ref.value_or(0)) + " of " + c +
           " to the administrators");
    } else if (r.command == "notify") {
      info("notifications of " + c + ": " + level_text(r.level) +
           (r.seconds && *r.seconds > 0
                ? ", plain messages muted for " + std::to_string(*r.seconds) + " s"
                : ""));
    } else if (r.command == "unread") {
      // unread() and unread_total() showed them.
    } else if (r.command == "presence") {
      // presence() showed them.
    } else if (r.command == "watch") {
      info("watching " + r.user +
           (r.notify && *r.notify ? "; you will be told when they come online" : ""));
    } else if (r.command == "unwatch") {
      info("no longer watching " + r.user);
    } else if (r.command == "status") {
      if (r.hide_last_seen) {
        info(*r.hide_last_seen ? "others no longer see when you were last online"
                               : "others see when you were last online again");
      } else {
        info("your status: " + r.status + (r.status == "invisible" ? " (offline to others)" : "") +
             (r.text.empty() ? ", no status text" : ", \"" + r.text + "\""));
      }
    } else if (r.command == "verify") {
      info(r.verified && *r.verified
               ? r.user + " is verified; you will be warned if their safety number changes"
               : r.user + " is no longer marked verified");
    } else if (r.command == "safety") {
      // safety() showed it.
    } else if (r.command == "devices") {
      info(std::to_string(r.count.value_or(0)) +
           " device(s); every direct message goes to each of them");
    } else if (r.command == "device-remove") {
      info("removed the device " + r.device +
           ": it gets no new messages and cannot connect again under that id");
    } else if (r.command == "block" || r.command == "unblock" || r.command == "blocked") {
      std::string list;
      for (const std::string& u : r.blocked.value_or(std::vector<std::string>{})) {
        list += (list.empty() ? "" : ", ") + u;
      }
      const std::string now = list.empty() ? "you block nobody" : "you block: " + list;
      if (r.command == "block") {
        info("blocked " + r.user + ": no direct messages either way; " + now);
      } else if (r.command == "unblock") {
        info("unblocked " + r.user + "; " + now);
      } else {
        info(now);
      }
    } else if (r.command == "report-dm") {
      info("reported " + r.user + "'s message #" + std::to_string(r.ref.value_or(0)) + " of " + c +
           " to the administrators (its text goes with the report, checked by the server)");
    } else if (r.command == "quit") {
      info("bye");
    }
    // /send shows the message itself; /sleep needs no echo.
  }

  void notification(const parley::NotificationReceived& e) override {
    // A plain message shows as itself; the rest deserve a line of their own.
    if (e.kind == "message") return;
    const std::string seq = " (#" + std::to_string(e.seq) + ")";
    std::string text;
    if (e.kind == "mention") {
      text = printable(e.sender) + " mentioned you in " + shown(e.channel) + seq;
    } else if (e.kind == "invite") {
      text = printable(e.sender) + " added you to " + shown(e.channel);
    } else if (e.kind == "remove" || e.kind == "ban") {
      text = printable(e.sender) + (e.kind == "ban" ? " banned you from " : " removed you from ") +
             shown(e.channel);
    } else if (e.kind == "role") {
      text = printable(e.sender) + " changed your role in " + shown(e.channel);
    } else {
      text = printable(e.kind) + " in " + shown(e.channel) + " from " + printable(e.sender);
    }
    screen_.print(style(kMention, "(!) " + text));
  }

  void unread(const std::string& channel, const parley::UnreadCount& count, bool listed) override {
    if (listed) {
      screen_.print("  " + style(kBold, shown(channel)) + " " + counts(count));
      return;
    }
    // Live changes go to the status line, not the scrollback.
    if (count.unread == 0 && count.mentions == 0) {
      unread_.erase(channel);
    } else {
      unread_[channel] = count;
    }
    refresh_status();
  }

  void unread_total(const parley::UnreadCount& total) override {
    info("in all: " + counts(total) + " (channels set to none count their mentions only)");
  }

  void notify_level(const parley::NotificationLevelChanged& e) override {
    info("notifications of " + names_.shown(e.channel) + ": " +
         level_text(parley::to_string(e.level)) +
         (e.mute_until_ms > 0 ? ", plain messages muted until " + clock_of(e.mute_until_ms) : ""));
  }

  // Listed ones (/presence, /watch) always; otherwise only a change of status
  // or text from what was shown, and a user seen for the first time only when
  // online or away (not every offline member of every channel at start-up).
  void presence(const parley::Presence& p, bool listed) override {
    const std::string shown = std::string(parley::to_string(p.status)) + "\n" + p.text.value_or("");
    auto it = presence_shown_.find(p.user);
    const bool first = it == presence_shown_.end();
    const bool changed = first || it->second != shown;
    presence_shown_[p.user] = shown;
    if (!listed && (!changed || (first && p.status == parley::PresenceStatus::offline))) return;
    const bool me = p.user == user_;
    std::string text =
        (me ? std::string("you are ") : printable(p.user) + " is ") + parley::to_string(p.status);
    if (me && p.invisible) text += " (invisible: offline to others)";
    if (p.status == parley::PresenceStatus::offline && p.last_seen_ms) {
      text += ", last seen " + when_of(*p.last_seen_ms);
    }
    if (p.text) text += ": \"" + printable(*p.text) + "\"";
    info(text);
  }

  void presence_notified(const std::string& user) override {
    screen_.print(style(kMention, "(!) " + printable(user) + " is online"));
  }

  // Shown on the status line for the current channel.
  void online_count(const parley::OnlineCountChanged& e) override {
    online_[e.channel] = {e.online, e.members};
    refresh_status();
  }

  // A warning of its own: the contact's safety number is not what it was.
  void identity_changed(const parley::IdentityChanged& e) override {
    const std::string who = printable(e.user);
    if (e.removed_device) {
      if (e.user == user_) {
        info("your device " + printable(e.device) + " was removed; messages no longer go to it");
        return;
      }
      screen_.print(style(kWarning, "(!) " + who + " removed their device " + printable(e.device) +
                                        "; messages no longer go to it (/safety " + who +
                                        " shows the new number)"));
      return;
    }
    std::string text = "(!) the safety number with " + who + " has changed: " +
                       (e.new_device ? "they have a new device " + printable(e.device) +
                                           " (a new phone or install, or someone in between)"
                                     : "their device " + printable(e.device) +
                                           " has a new identity key (a new install, or someone "
                                           "in between)");
    text += e.was_verified ? "; " + who + " was verified and no longer is: compare /safety " + who +
                                 " with them again, then /verify " + who
                           : "; /safety " + who + " shows the new number";
    screen_.print(style(kWarning, text));
  }

  // Four groups of five digits a line, as the other side sees them.
  void safety(const parley::SafetyNumberLoaded& e) override {
    std::string text = "safety number with " + printable(e.user) +
                       (e.verified ? " (verified):" : " (not verified):");
    std::size_t group = 0;
    std::size_t start = 0;
    while (start < e.number.size()) {
      std::size_t end = e.number.find(' ', start);
      if (end == std::string::npos) end = e.number.size();
      text += std::string(group % 4 == 0 ? "\n     " : " ") +
              printable(e.number.substr(start, end - start));
      ++group;
      start = end + 1;
    }
    if (!e.verified) {
      text += "\n   compare it with " + printable(e.user) +
              " (in person or on a call), then /verify " + printable(e.user);
    }
    info(text);
  }

  // "-- doc general/notes (v12):" and the text, indented
  void document(const std::string& channel, const std::string& title, const std::string& text,
                std::uint64_t version) override {
    std::string shown_text;
    for (char c : text) shown_text += c == '\n' ? std::string("\n   ") : std::string(1, c);
    screen_.print(style(kDim, "-- doc " + shown(channel) + "/" + printable(title) + " (v" +
                                  std::to_string(version) + "):") +
                  "\n   " + printable(shown_text));
  }

  // "  laptop  abcd 1234 …  (this device)"
  void device(const parley::DeviceInfo& d) override {
    screen_.print("  " + style(kBold, printable(d.device)) + "  " +
                  style(kDim, printable(d.fingerprint)) + (d.current ? "  (this device)" : ""));
  }

  void session_reset(const parley::SessionReset& e) override {
    const std::string who = printable(e.user) + (e.device.empty() ? "" : "/" + printable(e.device));
    const std::string msg = "message #" + std::to_string(e.seq) + " of " + shown(e.channel);
    if (e.by_this_device) {
      info("could not decrypt " + msg + " (" + printable(e.reason) + "); asked " + who +
           " to send it again in a new session");
    } else {
      info(who + " could not decrypt your " + msg + "; sent it again in a new session");
    }
  }

  // The text of a message that arrived without it, shown again in full.
  void message_updated(const parley::Message& m) override {
    screen_.print(
        style(kDim, clock_of(m.ts_ms)) + " " + where(m.channel) + name(m.sender) + ": " +
        (m.e2e ? kLock : "") + body_with_mentions(m) +
        style(kDim, "  (#" + std::to_string(m.seq) + ", sent again after a new session)"));
  }

  void diagnostic(const std::string& text) override { screen_.print(style(kDim, printable(text))); }

  void current_channel(const std::string& channel) override {
    current_ = channel;
    screen_.set_prompt(channel.empty() ? style(kBold, "(no channel)") + "> "
                                       : style(kBold, "[" + shown(channel) + "]") + "> ");
    refresh_status();
  }

  void help() override {
    const std::pair<const char*, const char*> commands[] = {
        {"TEXT", "send TEXT to the current channel (the one in the prompt)"},
        {"/send CHANNEL TEXT", "send TEXT to CHANNEL"},
        {"/switch CHANNEL", "make CHANNEL the current channel (also /channel)"},
        {"/channels", "list the channels you are in"},
        {"/create CHANNEL [KIND]",
         "create a channel (public, private or broadcast) and make it current"},
        {"/join CHANNEL", "join a channel and make it current"},
        {"/leave CHANNEL", "leave a channel"},
        {"/dm USER [TEXT]",
         "open the end-to-end encrypted direct channel with USER, @USER (and send TEXT there)"},
        {"/safety USER", "show the safety number with USER, to compare with them"},
        {"/verify USER [off]", "mark USER verified once the numbers match (off: unmark)"},
        {"/devices", "list your devices (each gets every direct message)"},
        {"/device-remove DEVICE", "remove one of your devices for good"},
        {"/block USER", "no direct messages with USER either way (/unblock lifts it)"},
        {"/blocked", "list the users you block"},
        {"/report-dm USER SEQ WHY",
         "report USER's direct message #SEQ (its text goes to the administrators)"},
        {"/doc-create CHANNEL TITLE", "create a collaborative document in CHANNEL"},
        {"/doc-open CHANNEL TITLE", "open a document: show it, and every change to it"},
        {"/doc-insert CHANNEL TITLE POS TEXT", "insert TEXT at character POS"},
        {"/doc-delete CHANNEL TITLE POS LEN", "delete LEN characters at POS"},
        {"/doc-show CHANNEL TITLE", "show a document's text (also /doc-close)"},
        {"/members CHANNEL", "list the members of CHANNEL and their roles"},
        {"/invite CHANNEL USER", "add USER to CHANNEL (also /kick to remove)"},
        {"/ban CHANNEL USER [S]", "ban USER from CHANNEL for S seconds or until /unban"},
        {"/mute CHANNEL USER [S]", "stop USER posting for S seconds or until /unmute"},
        {"/role CHANNEL USER ROLE", "admin, moderator, member or read_only (/transfer: owner)"},
        {"/topic CHANNEL [TEXT]", "set the topic (no text clears it)"},
        {"/delete CHANNEL SEQ", "delete message #SEQ (also /pin, /unpin)"},
        {"/report CHANNEL SEQ WHY", "report message #SEQ to the administrators"},
        {"/history CHANNEL N", "show the latest N messages of CHANNEL"},
        {"/notify CHANNEL LEVEL [S]",
         "be notified of all, mentions or none; mute plain messages for S seconds"},
        {"/unread", "unread messages and mentions per channel"},
        {"/presence USER...", "who is online, away or offline, and since when"},
        {"/watch USER [notify]", "follow USER's presence (notify: tell me when they come online)"},
        {"/unwatch USER", "stop following USER's presence"},
        {"/status MODE [TEXT]",
         "online, away or invisible, with TEXT as your status (none clears it)"},
        {"/status hide-last-seen on|off", "hide from others when you were last online"},
        {"/typing CHANNEL", "tell CHANNEL you are typing (typing text does it for you)"},
        {"/read CHANNEL", "mark all of CHANNEL as read (shown messages of the current one are)"},
        {"/sleep MS", "wait MS milliseconds"},
        {"/help", "this list"},
        {"/quit", "send what is still queued, then exit (also Ctrl-D)"},
    };
    std::string text = "commands:";
    for (const auto& [usage, what] : commands) {
      std::string u = usage;
      u.resize(std::max<std::size_t>(u.size(), 24), ' ');
      text += "\n  " + style(kBold, u) + " " + what;
    }
    text += "\nchannels: @USER names the direct channel with USER; 🔒 marks encrypted messages";
    text +=
        "\nkeys: Up/Down history, Ctrl-R search it, Tab completes, Ctrl-A/Ctrl-E line start/end,";
    text += "\n      Ctrl-W/Ctrl-U delete a word/the line, Ctrl-C clear the line (quit when empty)";
    screen_.print(text);
  }

 private:
  struct Pending {
    std::uint64_t handle = 0;  // the Screen's, for replace()
    std::string line;          // the line without the pending marker
  };

  // "alice banned bob from general until 10:30", and the like.
  std::string describe(const parley::Message& m) const {
    using K = parley::EventKind;
    const std::string by = printable(m.sender);
    const std::string who = printable(m.target);
    const std::string ch = shown(m.channel);
    const std::string until = m.until_ms > 0 ? " until " + clock_of(m.until_ms) : "";
    switch (m.kind) {
      case K::create:
        return by + " created " + ch +
               (m.channel_kind.empty() || m.channel_kind == "public"
                    ? ""
                    : " (" + printable(m.channel_kind) + ")");
      case K::join:
        return by + " joined " + ch;
      case K::leave:
        return by + " left " + ch;
      case K::invite:
        return by + " invited " + who + " to " + ch;
      case K::remove:
        return by + " removed " + who + " from " + ch;
      case K::ban:
        return by + " banned " + who + " from " + ch + until;
      case K::unban:
        return by + " lifted the ban of " + who + " in " + ch;
      case K::mute:
        return by + " muted " + who + " in " + ch + until;
      case K::unmute:
        return by + " unmuted " + who + " in " + ch;
      case K::role:
        return who + " is now " + printable(m.role) + " in " + ch + " (by " + by + ")";
      case K::meta: {
        std::string what;
        auto add = [&what](const char* field, const std::optional<std::string>& v) {
          if (!v) return;
          what += what.empty() ? " " : ", ";
          what += v->empty() ? std::string("cleared the ") + field
                             : std::string("set the ") + field + " to \"" + printable(*v) + "\"";
        };
        add("name", m.meta.name);
        add("topic", m.meta.topic);
        add("description", m.meta.description);
        add("avatar", m.meta.avatar_url);
        add("data", m.meta.data);
        return by + (what.empty() ? " changed nothing" : what) + " of " + ch;
      }
      case K::deletion:
        return by + " deleted message #" + std::to_string(m.ref) + " of " + ch;
      case K::pin:
        return by + " pinned message #" + std::to_string(m.ref) + " of " + ch;
      case K::unpin:
        return by + " unpinned message #" + std::to_string(m.ref) + " of " + ch;
      case K::channel_deleted:
        return ch + " was deleted by an administrator";
      case K::doc:
        return by + " created the document \"" + printable(m.title) + "\" in " + ch;
      case K::message:
      case K::system:
        break;
    }
    return by + " " + parley::to_string(m.kind) + " " + ch;
  }

  std::string style(const char* code, const std::string& s) const {
    return color_ ? "\033[" + std::string(code) + "m" + s + "\033[0m" : s;
  }

  std::string name(const std::string& user) const {
    if (user == user_) return style(kBold, printable(user));
    std::size_t h = 2166136261u;
    for (unsigned char c : user) h = (h ^ c) * 16777619u;
    return style(kNameColors[h % std::size(kNameColors)], printable(user));
  }

  // "[random] " for a channel other than the current one.
  std::string where(const std::string& channel) const {
    return channel == current_ ? "" : style(kYellow, "[" + shown(channel) + "]") + " ";
  }

  // A channel's name as shown: "@U" for a direct channel, without control characters.
  std::string shown(const std::string& channel) const { return printable(names_.shown(channel)); }

  // Message text with its mentions highlighted: bold yellow when they name
  // this user (or @channel, @here), bold otherwise.
  std::string body_with_mentions(const parley::Message& m) const {
    if (m.mentions.empty()) return body(m.text);
    std::string out;
    std::size_t at = 0;
    for (const parley::Mention& mention : m.mentions) {
      if (mention.offset < at || mention.offset + mention.length > m.text.size()) continue;
      out += body(m.text.substr(at, mention.offset - at));
      const bool me =
          mention.user == user_ || mention.user == "@channel" || mention.user == "@here";
      out += style(me ? kMention : kBold, printable(m.text.substr(mention.offset, mention.length)));
      at = mention.offset + mention.length;
    }
    return out + body(m.text.substr(at));
  }

  static std::string counts(const parley::UnreadCount& c) {
    return std::to_string(c.unread) + " unread, " + std::to_string(c.mentions) +
           (c.mentions == 1 ? " mention" : " mentions");
  }

  static std::string level_text(const std::string& level) {
    if (level == "mentions") return "mentions only";
    if (level == "none") return "none";
    return "all messages";
  }

  // Message text; continuation lines indented under the first.
  static std::string body(const std::string& text) {
    std::string out;
    for (char c : printable(text)) {
      out += c;
      if (c == '\n') out += "      ";
    }
    return out;
  }

  static std::string excerpt(const std::string& text) {
    std::string p = printable(text);
    for (char& c : p) {
      if (c == '\n') c = ' ';
    }
    if (p.size() <= 40) return p;
    std::size_t cut = 40;
    while (cut > 0 && (static_cast<unsigned char>(p[cut]) & 0xc0) == 0x80) --cut;
    return p.substr(0, cut) + "…";
  }

  std::string own_line(const std::string& channel, const std::string& text,
                       std::int64_t ts_ms) const {
    const bool direct = !channel.empty() && channel.front() == '@';  // sent encrypted
    return style(kDim, clock_of(ts_ms)) + " " + where(channel) + name(user_) + ": " +
           (direct ? kLock : "") + body(text);
  }

  void info(const std::string& text) { screen_.print(style(kDim, "-- " + printable(text))); }

  // The status line: who is typing, and how far our latest message in the
  // current channel has got.
  void refresh_status() {
    if (!screen_.live()) return;
    std::string status;
    auto add = [&status](const std::string& part) {
      status += (status.empty() ? "" : " · ") + part;
    };
    for (const auto& [channel, progress] : syncing_) {
      add("catching up on " + shown(channel) + ": " + std::to_string(progress.first) +
          (progress.second != 0 ? " of " + std::to_string(progress.second) : "") + "…");
    }
    for (const auto& [channel, users] : typing_) {
      const bool one = users.size() == 1;
      std::string who =
          users.size() > 3 ? std::to_string(users.size()) + " people" : name_list(users);
      add(printable(who) + (one ? " is typing" : " are typing") +
          (channel == current_ ? "" : " in " + shown(channel)) + "…");
    }
    if (auto online = online_.find(current_); online != online_.end()) {
      add(std::to_string(online->second.first) + " of " + std::to_string(online->second.second) +
          " online");
    }
    std::string unread;
    for (const auto& [channel, count] : unread_) {
      if (channel == current_) continue;  // what is shown there is marked read
      unread += (unread.empty() ? "" : ", ") + shown(channel) + " " + std::to_string(count.unread) +
                (count.mentions > 0 ? " (" + std::to_string(count.mentions) + " @)" : "");
    }
    if (!unread.empty()) add("unread: " + unread);
    auto own = last_own_.find(current_);
    if (own != last_own_.end()) {
      const std::uint64_t seq = own->second;
      std::set<std::string> readers;
      for (const auto& [user, to] : read_[current_]) {
        if (to >= seq) readers.insert(user);
      }
      std::size_t delivered = 0;
      for (const auto& [user, to] : delivered_[current_]) {
        if (to >= seq) ++delivered;
      }
      if (!readers.empty()) {
        add("✓ read by " + printable(readers.size() > 3
                                         ? std::to_string(readers.size()) + " members"
                                         : name_list(readers)));
      } else if (delivered > 0) {
        std::string of;
        if (auto summary = client_.receipt_summary(current_, seq);
            summary && summary->members > 0) {
          of = " to " + std::to_string(summary->delivered) + " of " +
               std::to_string(summary->members);
        }
        add("✓ delivered" + of);
      }
    }
    screen_.set_status(status.empty() ? "" : style(kDim, status));
  }

  parley::Client& client_;
  Screen& screen_;
  DirectNames& names_;
  const bool color_;
  const std::string user_;
  std::string current_;
  bool connected_once_ = false;
  bool lost_ = false;                       // a disconnect was shown since the last ready
  std::map<std::string, Pending> pending_;  // by message id
  // Per channel: catch-up progress, who is typing, our latest sent message,
  // members' cursors.
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> syncing_;  // fetched, total
  std::map<std::string, std::set<std::string>> typing_;
  std::map<std::string, std::uint64_t> last_own_;
  std::map<std::string, parley::UnreadCount> unread_;  // channels with something unread
  std::map<std::string, std::string> presence_shown_;  // user -> status and text last shown
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> online_;  // online, members
  std::map<std::string, std::map<std::string, std::uint64_t>> read_;
  std::map<std::string, std::map<std::string, std::uint64_t>> delivered_;
};

}  // namespace

std::unique_ptr<Output> make_human_output(parley::Client& client, Screen& screen,
                                          DirectNames& names, bool color) {
  return std::make_unique<HumanOutput>(client, screen, names, color);
}

}  // namespace parley_cli
