// Catching up and history: the client side of the gap-free channel sequences.
//
// Every event received (live, in a catch-up page or in a history page) is
// stored first. The app sees a channel's events in order because delivery
// walks the channel's cursor over contiguous stored events only; a hole below
// a live event is filled from the server before anything after it is shown.
#include <fmt/format.h>

#include <algorithm>

#include "client/engine.hpp"
#include "protocol/codec.hpp"

namespace parley::client {

namespace {
constexpr std::uint32_t kFirstSyncPage = 50;
// A direct channel new to this device with at most this many events is
// delivered whole (see begin_sync).
constexpr std::uint64_t kDirectCatchUp = 200;
// A bound on server round trips for one load_history call; each round must
// also make progress (the server's pages shrink for large messages).
constexpr int kMaxHistoryRounds = 5000;

EventKind kind_from(const std::string& s) {
  EventKind kind = EventKind::message;
  parse_event_kind(s, &kind);  // a kind newer than this SDK reads as a message
  return kind;
}

}  // namespace

// A page from the server, with the channel's last_seq it reports, in one
// transaction (one commit, so one fsync at most, per page). If the page is
// refused (an event with a bad seq), last_seq is still raised.
void Engine::store_page(const std::vector<wire::ChannelEvent>& events, const std::string& channel,
                        std::uint64_t last_seq) {
  if (!store_incoming(events, store::Cache::ChannelTop{channel, last_seq}).ok()) {
    cache_->upsert_channel(channel, last_seq, true);
  }
}

Message Engine::to_message(const wire::ChannelEvent& e) {
  Message m;
  m.channel = e.channel;
  m.seq = e.seq;
  m.kind = kind_from(e.kind);
  m.sender = e.sender;
  m.id = e.id.value_or("");
  m.text = e.text.value_or("");
  m.ts_ms = e.ts;
  m.state = DeliveryState::sent;
  m.deleted = e.deleted.value_or(false);
  m.target = e.target.value_or("");
  m.role = e.role.value_or("");
  m.until_ms = e.until.value_or(0);
  m.ref = e.ref.value_or(0);
  m.channel_kind = e.channel_kind.value_or("");
  m.title = e.title.value_or("");
  if (e.meta) m.meta = wire::from_wire(*e.meta);
  if (e.mentions) {
    for (const auto& mention : *e.mentions) {
      m.mentions.push_back({static_cast<std::size_t>(mention.offset),
                            static_cast<std::size_t>(mention.length), mention.user});
    }
  }
  return m;
}

void Engine::begin_sync(const std::vector<wire::ChannelState>& channels) {
  syncing_ = true;
  sync_waiting_.clear();
  std::set<std::string> member;
  for (const auto& c : channels) {
    member.insert(c.channel);
    cache_->upsert_channel(c.channel, c.last_seq, true);
  }
  if (auto known = cache_->channels()) {
    for (const auto& c : *known) {
      if (c.member && !member.count(c.name)) cache_->set_member(c.name, false);
    }
  }
  for (const auto& c : channels) {
    auto info = cache_->channel(c.channel);
    if (!info || !*info) continue;
    std::uint64_t cursor = (*info)->read_to;
    if (cursor >= c.last_seq) {
      fetch_receipts(c.channel);
      continue;
    }
    // A direct channel new to this device, short enough: a conversation
    // someone started while this device was away. It is delivered from the
    // start, like a channel the device knew.
    bool new_conversation = cursor == 0 && c.kind && *c.kind == "direct" &&
                            c.last_seq <= kDirectCatchUp;
    if (cursor == 0 && !new_conversation) {
      // A channel new to this device: keep the newest page for the UI and
      // start the live cursor at the end; older history loads on demand.
      sync_waiting_.insert(c.channel);
      std::string channel = c.channel;
      std::uint64_t last = c.last_seq;
      request(wire::History{0, channel, last + 1, std::nullopt, kFirstSyncPage},
              [this, channel, last](const wire::ServerMessage* reply, const Status&) {
                if (reply != nullptr) {
                  if (const auto* page = std::get_if<wire::HistoryPage>(reply)) {
                    store_incoming(page->events);
                  }
                }
                cache_->advance_cursor(channel, last);
                deliver(channel);
                sync_done(channel);
              });
      continue;
    }
    sync_waiting_.insert(c.channel);
    fill_gap(c.channel);
  }
  finish_sync_step();
}

void Engine::sync_done(const std::string& channel) {
  if (sync_waiting_.erase(channel) > 0) {
    fetch_receipts(channel);
    finish_sync_step();
  }
}

void Engine::fill_gap(const std::string& channel) {
  if (!connected_ || filling_.count(channel)) return;
  auto info = cache_->channel(channel);
  if (!info || !*info) return;
  std::uint64_t cursor = (*info)->read_to;
  if (cursor >= (*info)->last_seq) return sync_done(channel);
  filling_.insert(channel);
  fill_base_.emplace(channel, cursor);  // where this catch-up started
  request(wire::History{0, channel, std::nullopt, cursor, options_.sync_page_size},
          [this, channel, cursor](const wire::ServerMessage* reply, const Status& error) {
            filling_.erase(channel);
            bool progressed = false;
            if (reply != nullptr) {
              if (const auto* page = std::get_if<wire::HistoryPage>(reply)) {
                store_page(page->events, channel, page->last_seq);
                progressed = !page->events.empty();
                deliver(channel);
              }
            }
            auto now = cache_->channel(channel);
            bool done = !now || !*now || (*now)->read_to >= (*now)->last_seq;
            if (now && *now && progressed) {
              std::uint64_t base = fill_base_[channel];
              std::uint64_t fetched = (*now)->read_to > base ? (*now)->read_to - base : 0;
              std::uint64_t total = (*now)->last_seq > base ? (*now)->last_seq - base : 0;
              events_.push(SyncProgress{channel, fetched, total});
            }
            if (done || !progressed || !connected_) fill_base_.erase(channel);
            if (!done && progressed && connected_) {
              fill_gap(channel);  // next page
              return;
            }
            if (!done && error.code() == StatusCode::forbidden) {
              cache_->set_member(channel, false);  // we are no longer a member
            }
            sync_done(channel);
            (void)cursor;
          });
}

void Engine::deliver(const std::string& channel) {
  auto info = cache_->channel(channel);
  if (!info || !*info) return;
  std::uint64_t cursor = (*info)->read_to;
  auto up = cache_->contiguous_up_from(channel, cursor + 1);
  if (!up || *up <= cursor) return;
  auto events = cache_->events(channel, cursor + 1, *up);
  if (!events) return;
  cache_->advance_cursor(channel, *up);
  std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  for (auto& m : *events) {
    track_membership(m);
    if (m.kind == EventKind::message) {
      typing_stopped_by_message(m);
      analytics("message_delivered", {{"channel", m.channel}, {"id", m.id}},
                {{"seq", static_cast<double>(m.seq)},
                 {"latency_ms", static_cast<double>(std::max<std::int64_t>(0, now - m.ts_ms))}});
    }
    events_.push(MessageReceived{std::move(m)});
  }
  queue_delivered(channel, *up);
}

void Engine::note_own_event(const std::string& channel, std::uint64_t seq) {
  // Our own event: no need to show it back to us, but keep the cursor moving.
  auto info = cache_->channel(channel);
  if (info && *info && (*info)->read_to + 1 == seq) {
    cache_->advance_cursor(channel, seq);
    queue_delivered(channel, seq);
    deliver(channel);  // events stored beyond it may now be contiguous
  } else if (info && *info && (*info)->read_to < seq) {
    fill_gap(channel);
  }
}

void Engine::handle_event(const wire::ChannelEvent& event) {
  Message m = to_message(event);
  store_incoming({event});
  if (m.kind == EventKind::leave && m.sender == user_) cache_->set_member(m.channel, false);
  auto info = cache_->channel(m.channel);
  if (!info || !*info) return;
  if ((*info)->read_to == 0) {
    // First event of a channel this device did not know (created or joined
    // from another device): start the cursor just before it.
    cache_->advance_cursor(m.channel, m.seq - 1);
  }
  deliver(m.channel);
  auto after = cache_->channel(m.channel);
  if (after && *after && (*after)->read_to < m.seq) fill_gap(m.channel);
}

// ---- history ---------------------------------------------------------------------

struct Engine::HistoryJob {
  RequestId request = 0;
  std::string channel;
  std::uint64_t before = 0;  // 0: newest
  std::uint32_t limit = 0;
  int rounds = 0;
  bool waited = false;                // waited once for a connection
  bool pinned = false;                // the channel is pinned in the cache (no eviction)
  std::uint64_t last_low = UINT64_MAX;  // progress check between rounds
};

void Engine::load_history(RequestId request, const std::string& channel, HistoryQuery query) {
  auto job = std::make_shared<HistoryJob>();
  job->request = request;
  job->channel = channel;
  job->before = query.before;
  job->limit = query.limit;
  std::string why = check_channel_name(channel);
  if (!why.empty()) {
    return finish_history(job, Status(StatusCode::invalid_argument, why, "invalid_name"), false);
  }
  if (query.limit == 0 || query.limit > 1000) {
    return finish_history(job,
                          Status(StatusCode::invalid_argument,
                                 fmt::format("history limit {} is outside 1-1000", query.limit),
                                 "invalid_limit"),
                          false);
  }
  // What this job fetches from the server stays in the cache until it answers.
  cache_->pin(channel);
  job->pinned = true;
  history_step(job);
}

void Engine::history_step(std::shared_ptr<HistoryJob> job) {
  auto info = cache_->channel(job->channel);
  std::uint64_t top = 0;  // the highest seq the answer may include
  if (info && *info) top = (*info)->last_seq;
  if (job->before != 0) top = std::min<std::uint64_t>(top, job->before - 1);
  bool online = state_ == LifecycleState::ready;

  // The bottom of the contiguous run of stored events ending at top.
  Result<std::uint64_t> low = top + 1;
  if (top > 0) {
    low = cache_->contiguous_down_from(job->channel, top);
    if (low && *low <= top) {
      // Complete if the run reaches seq 1 or holds `limit` messages: counted
      // in the index, up to `limit`, without reading the rows.
      if (*low == 1) return finish_history(job, Status(), true);
      auto in_run = cache_->count_messages(job->channel, *low, top, job->limit);
      if (in_run && *in_run >= job->limit) return finish_history(job, Status(), true);
    }
  } else if (info && *info && job->before == 0 && (*info)->last_seq == 0 && !online) {
    return finish_history(job, Status(), false);
  }

  if (!online) {
    if (job->waited) return finish_history(job, Status(), false);
    // A connection is being made: wait for it (bounded by the request timeout)
    // rather than answer from a cache that may be stale; with no server in
    // reach, answer from the cache at once.
    job->waited = true;
    return when_ready([this, job] { history_step(job); },
                      [this, job](const Status&) { finish_history(job, Status(), false); },
                      /*answer_offline=*/true);
  }
  if (job->rounds >= kMaxHistoryRounds) return finish_history(job, Status(), false);
  ++job->rounds;
  // Ask for the page just below what the cache holds contiguously.
  std::optional<std::uint64_t> below;
  if (top > 0) {
    below = (low && *low <= top) ? *low : top + 1;
    if (*below >= job->last_low) return finish_history(job, Status(), false);  // no progress
    job->last_low = *below;
  } else if (job->before != 0) {
    below = job->before;
  }
  request(wire::History{0, job->channel, below, std::nullopt, wire::kMaxHistoryLimit},
          [this, job](const wire::ServerMessage* reply, const Status& error) {
            if (reply == nullptr) {
              if (error.code() == StatusCode::offline || error.code() == StatusCode::timeout) {
                return finish_history(job, Status(), false);
              }
              return finish_history(job, error, false);
            }
            const auto* page = std::get_if<wire::HistoryPage>(reply);
            if (page == nullptr) return finish_history(job, Status(), false);
            store_page(page->events, job->channel, page->last_seq);
            if (page->events.empty()) return finish_history(job, Status(), true);
            history_step(job);
          });
}

void Engine::finish_history(std::shared_ptr<HistoryJob> job, Status status, bool complete) {
  HistoryLoaded done;
  done.request = job->request;
  done.channel = job->channel;
  done.complete = complete;
  if (status.ok()) {
    auto info = cache_->channel(job->channel);
    std::uint64_t top = (info && *info) ? (*info)->last_seq : 0;
    if (job->before != 0) top = std::min<std::uint64_t>(top, job->before - 1);
    auto low = cache_->contiguous_down_from(job->channel, top);
    auto cached = cache_->latest_messages(job->channel, top + 1, job->limit);
    if (cached) {
      for (auto& m : *cached) {
        // Complete answers hold only the contiguous run; others all we have.
        if (!complete || !low || m.seq >= *low) done.messages.push_back(std::move(m));
      }
    } else {
      status = cached.status();
    }
  }
  done.status = std::move(status);
  if (job->pinned) {
    cache_->unpin(job->channel);
    job->pinned = false;
  }
  events_.push(std::move(done));
}

}  // namespace parley::client
