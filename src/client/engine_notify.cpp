// Notifications on the client (docs/notifications.md, "In the SDK and the
// CLI"): the level request, and the server's notification, unread and notify
// events.
//
// The server is the only one that counts: the unread and mention counts are
// stored as it pushes them (welcome, unread events) and shown from the cache.
// mark_read sends the read cursor; the server answers with new counts.
#include <fmt/format.h>

#include "client/engine.hpp"

namespace parley {

const char* to_string(NotificationLevel level) {
  switch (level) {
    case NotificationLevel::all:
      return "all";
    case NotificationLevel::mentions:
      return "mentions";
    case NotificationLevel::none:
      return "none";
  }
  return "all";
}

bool parse_notification_level(std::string_view text, NotificationLevel* out) {
  for (auto level :
       {NotificationLevel::all, NotificationLevel::mentions, NotificationLevel::none}) {
    if (text == to_string(level)) {
      *out = level;
      return true;
    }
  }
  return false;
}

namespace client {

void Engine::apply_notify_states(const std::vector<wire::ChannelState>& channels) {
  for (const auto& c : channels) {
    NotificationLevel level = NotificationLevel::all;
    if (c.level) parse_notification_level(*c.level, &level);  // unknown: all
    std::int64_t mute = c.mute_until.value_or(0);
    if (auto changed = cache_->set_notify_level(c.channel, level, mute); changed && *changed) {
      events_.push(NotificationLevelChanged{c.channel, level, mute});
    }
    if (c.unread) {
      std::uint64_t mentions = c.mentions.value_or(0);
      if (auto changed = cache_->set_unread(c.channel, *c.unread, mentions); changed && *changed) {
        events_.push(UnreadChanged{c.channel, *c.unread, mentions});
      }
    }
  }
}

void Engine::handle_notification(const wire::NotificationEvent& event) {
  if (!check_channel_name(event.channel).empty()) return;
  // What kind only: never the channel, the sender or the text.
  analytics("notification_received", {{"kind", event.kind}});
  events_.push(NotificationReceived{event.channel, event.seq, event.kind, event.sender,
                                    event.title.value_or("")});
}

void Engine::handle_unread(const wire::UnreadEvent& event) {
  auto changed = cache_->set_unread(event.channel, event.unread, event.mentions);
  if (changed && *changed) {
    events_.push(UnreadChanged{event.channel, event.unread, event.mentions});
  }
}

void Engine::handle_notify(const wire::NotifyEvent& event) {
  NotificationLevel level = NotificationLevel::all;
  if (!parse_notification_level(event.level, &level)) return;  // a newer level: ignore
  std::int64_t mute = event.mute_until.value_or(0);
  auto changed = cache_->set_notify_level(event.channel, level, mute);
  if (changed && *changed) events_.push(NotificationLevelChanged{event.channel, level, mute});
}

void Engine::set_notification_level(RequestId req, const std::string& channel,
                                    NotificationLevel level, std::int64_t mute_until_ms) {
  auto done = [this, req, channel](const Status& s) {
    events_.push(ChannelRequestDone{req, channel, s, 0});
  };
  if (std::string why = check_channel_name(channel); !why.empty()) {
    return done(Status(StatusCode::invalid_argument, why, wire::code::kInvalidName));
  }
  if (mute_until_ms < 0) mute_until_ms = 0;
  wire::Notify notify{
      0, channel, to_string(level),
      mute_until_ms > 0 ? std::optional<std::int64_t>(mute_until_ms) : std::nullopt};
  auto run = std::make_shared<std::function<void()>>();
  std::weak_ptr<std::function<void()>> weak = run;
  *run = [this, notify, channel, level, mute_until_ms, done, weak]() {
    auto self = weak.lock();
    request(
        notify,
        [this, channel, level, mute_until_ms, done](const wire::ServerMessage* reply,
                                                    const Status& error) {
          if (reply == nullptr) return done(error);
          const auto* ok = std::get_if<wire::Ok>(reply);
          if (ok == nullptr || (!ok->channel.empty() && ok->channel != channel)) {
            return done(Status(StatusCode::protocol_error, "unexpected reply", "bad_reply"));
          }
          auto changed = cache_->set_notify_level(channel, level, mute_until_ms);
          // The level only: never the channel.
          analytics("notification_level_set", {{"level", to_string(level)}});
          done(Status());
          if (changed && *changed) {
            events_.push(NotificationLevelChanged{channel, level, mute_until_ms});
          }
        },
        [self] { (*self)(); });
  };
  when_ready([run] { (*run)(); }, done);
}

std::optional<store::Cache::NotifyRow> Engine::notify_state(const std::string& channel) {
  auto row = cache_->notify_state(channel);
  if (!row || !*row) return std::nullopt;
  return **row;
}

UnreadCount Engine::badge() {
  UnreadCount total;
  auto rows = cache_->notify_states();
  if (!rows) return total;
  for (const auto& r : *rows) {
    if (!r.member) continue;
    total.mentions += r.mentions;
    if (r.level != NotificationLevel::none) total.unread += r.unread;
  }
  return total;
}

}  // namespace client
}  // namespace parley
