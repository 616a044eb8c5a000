// The client actor: one thread owns the transport, the cache and the timers.
// Public API calls post closures to it (post / call) and wake it.
//
// Everything here runs on the engine's thread unless marked "any thread".
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "client/e2e.hpp"
#include "client/event_queue.hpp"
#include "crdt/document.hpp"
#include "parley/client.hpp"
#include "parley/sys/analytics.hpp"
#include "parley/sys/transport.hpp"
#include "protocol/wire.hpp"
#include "store/cache.hpp"

namespace parley::client {

using Clock = std::chrono::steady_clock;

class Engine : public sys::TransportHandler {
 public:
  Engine(ClientOptions options, std::string user);
  ~Engine() override;

  // Starts the thread, which opens the cache. Returns the open status.
  Status start();
  // Any thread: runs `fn` on the engine's thread, in posting order. Once
  // the engine's thread has ended (the client is being destroyed), `fn` is
  // dropped without running.
  void post(std::function<void()> fn);
  // Any thread: runs `fn` on the engine's thread and waits for its result.
  // After the engine's thread has ended (a listener calling in while the
  // client is destroyed) it returns at once: a cancelled Status or Result,
  // or an empty value.
  template <typename R>
  R call(std::function<R()> fn) {
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(fn));
    auto result = task->get_future();
    // The posted closure is the task's only owner: dropped, it breaks the
    // promise and get() below returns.
    post([task = std::move(task)] { (*task)(); });
    try {
      return result.get();
    } catch (const std::future_error&) {  // dropped: never ran
      if constexpr (std::is_same_v<R, Status>) {
        return Status(StatusCode::cancelled, "the client is closing", "client_closing");
      } else if constexpr (std::is_constructible_v<R, Status>) {
        return R(Status(StatusCode::cancelled, "the client is closing", "client_closing"));
      } else {
        return R{};
      }
    }
  }

  // Any thread.
  LifecycleState state() const { return state_.load(); }
  RequestId next_request_id() { return next_request_.fetch_add(1); }
  EventQueue& events() { return events_; }
  const std::string& user() const { return user_; }

  // ---- engine thread: API operations ----
  void connect();
  void disconnect();
  void reconnect_now();
  void set_token(std::string token);
  void create_channel(RequestId request, const std::string& name,
                      const ChannelOptions& options = {});
  void join_channel(RequestId request, const std::string& name);
  void leave_channel(RequestId request, const std::string& name);
  Result<std::string> send(const std::string& channel, const std::string& text);
  void load_history(RequestId request, const std::string& channel, HistoryQuery query);
  store::Cache& cache() { return *cache_; }
  void set_typing(const std::string& channel, bool typing);
  Status mark_read(const std::string& channel, std::uint64_t seq);
  Result<ReceiptSummary> receipt_summary(const std::string& channel, std::uint64_t seq);

  // ---- engine thread: kinds, roles, moderation (engine_channels.cpp) ----
  void open_direct(RequestId request, const std::string& user);
  // action: the wire's ("invite", "remove", "ban", "unban", "mute", "unmute",
  // "role", "transfer").
  void member_action(RequestId request, const std::string& channel, const std::string& action,
                     const std::string& user, std::optional<Role> role,
                     std::chrono::seconds duration);
  void set_meta(RequestId request, const std::string& channel, const ChannelMeta& meta);
  void delete_message(RequestId request, const std::string& channel, std::uint64_t seq);
  void pin_message(RequestId request, const std::string& channel, std::uint64_t seq, bool pinned);
  void report_message(RequestId request, const std::string& channel, std::uint64_t seq,
                      const std::string& reason);
  void load_channel_info(RequestId request, const std::string& channel);
  bool can(const std::string& channel, Permission permission);
  std::optional<Role> role(const std::string& channel);
  std::optional<ChannelKind> channel_kind(const std::string& channel);
  std::optional<ChannelMeta> channel_meta(const std::string& channel);

  // ---- engine thread: notifications (engine_notify.cpp) ----
  void set_notification_level(RequestId request, const std::string& channel,
                              NotificationLevel level, std::int64_t mute_until_ms);
  std::optional<store::Cache::NotifyRow> notify_state(const std::string& channel);
  UnreadCount badge();

  // ---- engine thread: presence (engine_presence.cpp) ----
  void set_presence(RequestId request, const PresenceSettings& settings);
  void watch_presence(RequestId request, const std::vector<std::string>& users, bool notify);
  void unwatch_presence(RequestId request, const std::vector<std::string>& users);
  void query_presence(RequestId request, const std::vector<std::string>& users);
  void report_activity();
  std::optional<Presence> presence(const std::string& user) const;
  std::optional<std::uint64_t> online_count(const std::string& channel) const;

  // ---- engine thread: end-to-end encryption (engine_e2e.cpp) ----
  std::optional<std::string> direct_peer(const std::string& channel);
  std::optional<std::string> direct_channel(const std::string& user);
  void load_safety_number(RequestId request, const std::string& user);
  Status verify_contact(const std::string& user, bool verified, const std::string& shown_number);
  void list_devices(RequestId request);
  void remove_device(RequestId request, const std::string& device);
  void block_user(RequestId request, const std::string& user, bool blocked);
  void load_blocked(RequestId request);
  // The franking opening of the decrypted direct message at (channel, seq),
  // for report_message; an error names why it cannot be reported.
  Result<wire::FrankingOpening> franking_opening(const std::string& channel, std::uint64_t seq);

  // ---- engine thread: collaborative documents (engine_docs.cpp) ----
  void create_document(RequestId request, const std::string& channel, const std::string& title);
  void open_document(RequestId request, const std::string& channel, const std::string& title);
  void close_document(RequestId request, const std::string& channel, const std::string& title);
  Status insert_text(const std::string& channel, const std::string& title, std::uint64_t pos,
                     const std::string& utf8);
  Status delete_text(const std::string& channel, const std::string& title, std::uint64_t pos,
                     std::uint64_t count);
  Result<DocumentView> document_text(const std::string& channel, const std::string& title);
  void list_documents(RequestId request, const std::string& channel);
  Status set_document_cursor(const std::string& channel, const std::string& title,
                             std::optional<std::uint64_t> cursor,
                             std::optional<std::uint64_t> anchor);
  Result<std::uint64_t> pending_document_updates();

  // ---- TransportHandler ----
  void on_open() override;
  void on_frame(std::string_view frame) override;
  void on_closed(const Status& reason) override;

 private:
  // A request sent to the server, waiting for its reply.
  using Reply = std::function<void(const wire::ServerMessage* reply, const Status& error)>;
  struct InFlight {
    Reply reply;
    Clock::time_point deadline;
    std::function<void()> resend;  // to run again after a reconnect; null: fail instead
  };
  // Work that needs a ready connection.
  struct Waiting {
    std::function<void()> run;
    std::function<void(const Status&)> fail;
    Clock::time_point deadline;
    bool answer_offline = false;  // fail at once when a connection attempt fails
  };
  struct HistoryJob;

  void thread_main(std::promise<Status>* opened);
  void run_timers();
  Clock::time_point next_deadline() const;
  void set_state(LifecycleState state, Status reason = {});
  void start_connect();
  void schedule_reconnect();
  void handle_welcome(const wire::Welcome& welcome);
  void handle_event(const wire::ChannelEvent& event);
  void finish_sync_step();
  // Sends a request; `reply` runs once with the answer, a timeout, or a lost connection.
  std::uint64_t request(wire::ClientMessage message, Reply reply, std::function<void()> resend = {});
  // Runs `run` once ready (at once if ready), or `fail` with offline after the request timeout.
  void when_ready(std::function<void()> run, std::function<void(const Status&)> fail,
                  bool answer_offline = false);
  // `joined` runs after a successful create or join, before the completion event.
  void membership_request(RequestId request, wire::ClientMessage message, const std::string& channel,
                          std::function<void(const wire::Ok&)> joined = {});

  // Outbox.
  void transmit_outbox();
  void transmit(const OutboxEntry& entry);

  // Sync (engine_sync.cpp).
  void begin_sync(const std::vector<wire::ChannelState>& channels);
  void store_page(const std::vector<wire::ChannelEvent>& events, const std::string& channel,
                  std::uint64_t last_seq);
  void fill_gap(const std::string& channel);
  void sync_done(const std::string& channel);
  void deliver(const std::string& channel);
  void note_own_event(const std::string& channel, std::uint64_t seq);
  void history_step(std::shared_ptr<HistoryJob> job);
  void finish_history(std::shared_ptr<HistoryJob> job, Status status, bool complete);
  static Message to_message(const wire::ChannelEvent& event);

  // Typing and receipts (engine_receipts.cpp).
  void handle_typing(const wire::TypingEvent& event);
  void handle_receipt(const wire::ReceiptEvent& event);
  void typing_stopped_by_message(const Message& message);
  void expire_typing(Clock::time_point now);
  void queue_delivered(const std::string& channel, std::uint64_t seq);
  void flush_receipts();
  void send_read(const std::string& channel, std::uint64_t seq);
  void fetch_receipts(const std::string& channel);
  void track_membership(const Message& event);

  // Kinds, roles, moderation (engine_channels.cpp).
  // A request answered by ok: validated by the caller; `applied` updates the
  // cache from the request before the completion event; the event it appended
  // is then fetched and delivered like any other (the server does not send
  // it back to this session).
  void channel_request(RequestId request, const std::string& action, const std::string& channel,
                       wire::ClientMessage message, std::function<void(const wire::Ok&)> applied);
  // Fails a moderation request before it is sent.
  void refuse_request(RequestId request, const std::string& action, const std::string& channel,
                      Status status);
  // One analytics event per moderation request: the action, the channel's
  // kind and the outcome's code; never text, user names or reasons.
  void moderation_analytics(const std::string& action, const std::string& channel,
                            const Status& status);
  // Applies a delivered event to the cache: membership, roles, mutes,
  // metadata, deleted text.
  void apply_channel_event(const Message& event);
  // Kinds and this user's roles from a welcome.
  void apply_channel_states(const std::vector<wire::ChannelState>& channels);
  // Asks the server for the channel's kind, metadata and members (for a
  // channel this device has just learnt of) and stores the answer.
  void fetch_channel_state(const std::string& channel);
  void apply_info(const wire::ChannelInfoReply& info);
  void fetch_own_event(const std::string& channel, std::uint64_t seq);

  // Notifications (engine_notify.cpp): levels and counts from a welcome,
  // and the server's notification, unread and notify events.
  void apply_notify_states(const std::vector<wire::ChannelState>& channels);
  void handle_notification(const wire::NotificationEvent& event);
  void handle_unread(const wire::UnreadEvent& event);
  void handle_notify(const wire::NotifyEvent& event);

  // Presence (engine_presence.cpp): the server's presence, presence_list and
  // online_count frames, the watch list sent again on each connection, and
  // the presence_session analytics event.
  void handle_presence(const wire::PresenceEvent& event);
  void handle_presence_list(const wire::PresenceList& list);
  void handle_online_count(const wire::OnlineCount& count);
  void rewatch_presence();
  void presence_session_ended();
  // A presence request (checked by the caller), sent once ready and again
  // after a lost connection; completed with ChannelRequestDone and the
  // status `answered` makes of the server's reply.
  void presence_request(RequestId request, wire::ClientMessage message,
                        std::function<Status(const wire::ServerMessage&)> answered);

  // End-to-end encryption (engine_e2e.cpp).
  Status open_e2e();
  // Publishes what the server lacks of this device's keys (nothing if up to
  // date). before_ready: the client reports ready only after the answer.
  void publish_keys(const std::optional<wire::KeysState>& server, bool before_ready);
  void handle_keys_state(const wire::KeysState& state);
  // Stores events received from the server, decrypting e2e ones in the same
  // transaction that stores them (with `top` as in Cache::store_events).
  Result<int> store_incoming(const std::vector<wire::ChannelEvent>& events,
                             const std::optional<store::Cache::ChannelTop>& top = std::nullopt);
  // An outbox message to a direct channel: sealed (once) and sent.
  void transmit_e2e(const OutboxEntry& entry);
  // False when nothing was sent (failed for good, or to be retried).
  bool seal_and_send(const OutboxEntry& entry, const std::string& peer,
                     const std::vector<wire::Bundles>& bundles);
  void fail_entry(const OutboxEntry& entry, const Status& why);
  // Before the first DM to `peer` on a connection: the devices of `peer`
  // and of this user (identities only), then bundles for the devices
  // without a session; then the waiting messages are sealed.
  void check_devices(const std::string& peer);
  // The identities of `user`'s devices, learnt (IdentityChanged for news);
  // `done` gets whether the user has devices (false on no_keys) or the error.
  void refresh_identities(const std::string& user, std::function<void(const Status&)> done);
  void push_news(const std::vector<E2eDevice::IdentityNews>& news);
  // Seals and sends the messages waiting for `peer` (failing them with
  // no_keys, or leaving them in the outbox, on `error`).
  void release_waiting(const std::string& peer, const std::vector<wire::Bundles>& bundles,
                       const Status& error);
  // The server refused a sealed message (stale_devices): look again, seal again.
  void devices_stale(const OutboxEntry& entry);
  // Session recovery (docs/e2e.md, "Recovery").
  void handle_notice(const wire::E2eNotice& notice);
  void answer_retry(const wire::E2eNotice& notice);
  void apply_resend(const wire::E2eNotice& notice);
  void ack_notice(std::uint64_t nid);
  // Asks the senders of messages this device could not decrypt to send
  // them again (at most once each).
  void ask_retries();
  // Sends an outbox message and handles the answer (ack, retry, refusal).
  void send_entry(const OutboxEntry& entry, const wire::Send& send, bool e2e);

  // Collaborative documents (engine_docs.cpp).
  using DocKey = std::pair<std::string, std::string>;  // (channel, title)
  // A document this device has in memory: loaded from the cache, or being
  // opened for the first time (doc empty until the server's doc_state).
  struct DocReplica {
    std::string channel, title, kind;
    std::optional<crdt::Document> doc;
    bool want_open = false;  // opened by the app: opened again after each reconnect
    bool open = false;       // open on this connection (doc_state applied)
    bool opening = false;    // doc_open in flight
    std::uint64_t generation = 0;           // bumped when the replica starts again
    std::set<std::int64_t> in_flight;       // outbox ords sent on this connection
    std::vector<RequestId> open_requests;   // completed by the doc_state
    std::uint64_t log_count = 0, log_bytes = 0;  // in the cache's log since the snapshot
    // This device's cursor (awareness).
    bool cursor_set = false;
    bool cursor_dirty = false;
    std::optional<std::uint64_t> cursor, anchor;
    std::optional<Clock::time_point> cursor_sent;
  };
  using PeerKey = std::tuple<std::string, std::string, std::string, std::string>;
  struct DocPeer {
    Clock::time_point expires;
    DocumentAwareness last;
  };
  // The replica of (channel, title), loaded from the cache if needed; null
  // (with *error not_found, reason no_such_doc) when the cache has none.
  DocReplica* doc_replica(const std::string& channel, const std::string& title, Status* error);
  void emit_doc(DocReplica& d, bool local);
  void log_doc_update(DocReplica& d, std::uint64_t bytes);
  Status commit_local_edit(DocReplica& d, const std::vector<std::string>& updates,
                           const std::vector<std::string>& mentions, const char* op,
                           std::uint64_t chars, Clock::time_point started);
  void send_doc_open(const DocKey& key);
  void apply_doc_state(const DocKey& key, const wire::DocState& state, Clock::time_point started);
  void finish_doc_open(const DocKey& key, const Status& status);
  std::uint64_t send_doc_outbox(DocReplica& d);
  bool send_doc_update(DocReplica& d, const store::Cache::DocOutboxRow& row);
  void refuse_doc_edits(const DocKey& key, const Status& why);
  void reopen_documents();
  void docs_connection_lost();
  void handle_doc_update(const wire::DocUpdateEvent& event);
  void handle_doc_awareness(const wire::DocAwarenessEvent& event);
  void flush_awareness(DocReplica& d, Clock::time_point now);
  void drop_doc_peers(const DocKey* key);  // null: every document's
  void run_doc_timers(Clock::time_point now);
  Clock::time_point next_doc_deadline() const;

  // Analytics: never content.
  void analytics(std::string name, std::vector<std::pair<std::string, std::string>> labels,
                 std::vector<std::pair<std::string, double>> values = {});

  ClientOptions options_;
  const std::string user_;
  std::string device_id_;
  EventQueue events_;
  std::shared_ptr<sys::Transport> transport_;
  std::unique_ptr<store::Cache> cache_;

  std::thread thread_;
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;  // guarded by mu_
  bool accepting_ = true;                        // guarded by mu_: false once the thread ended
  std::atomic<bool> stopping_{false};
  std::atomic<LifecycleState> state_{LifecycleState::disconnected};
  std::atomic<RequestId> next_request_{1};

  // Connection (engine thread).
  bool want_connected_ = false;
  bool connected_ = false;          // transport open
  bool auth_refused_ = false;
  int attempt_ = 0;
  std::optional<Clock::time_point> reconnect_at_;
  std::optional<Clock::time_point> outbox_retry_at_;  // after a transient refusal
  std::uint64_t server_max_frame_ = 0;                // from welcome
  std::uint64_t undecodable_frames_ = 0;
  std::uint64_t next_rid_ = 1;
  std::uint64_t auth_rid_ = 0;
  std::map<std::uint64_t, InFlight> in_flight_;
  std::vector<Waiting> waiting_;
  std::set<std::string> outbox_in_flight_;  // ids sent on this connection
  std::mt19937_64 rng_;

  // Typing (engine thread).
  std::map<std::string, Clock::time_point> typing_sent_;  // channel -> last active signal
  std::map<std::pair<std::string, std::string>, Clock::time_point> typing_peers_;  // expiry
  // Receipts (engine thread).
  std::map<std::string, std::uint64_t> delivered_pending_;  // channel -> cursor to send
  std::map<std::string, std::uint64_t> delivered_sent_;     // on this connection
  std::map<std::string, std::uint64_t> read_sent_;          // read cursor sent or known
  // Analytics (engine thread).
  std::shared_ptr<sys::AnalyticsSink> analytics_;
  Clock::time_point state_since_ = Clock::now();
  std::map<std::string, Clock::time_point> send_started_;  // message id -> first transmit

  // Channels (engine thread).
  std::set<std::string> info_fetching_;  // fetch_channel_state in flight
  std::uint64_t retry_after_ms_ = 0;     // of the last rate_limited error

  // Presence (engine thread).
  std::map<std::string, Presence> presence_;            // user -> as last received
  std::map<std::string, std::uint64_t> online_counts_;  // large channel -> online
  std::map<std::string, bool> watched_;                 // user -> notify, as the server has it
  // user -> the latest watch or unwatch call naming them, so that a late
  // answer to an earlier call does not undo a later one.
  std::map<std::string, std::uint64_t> watch_call_;
  std::uint64_t watch_calls_ = 0;
  std::optional<Clock::time_point> activity_sent_;  // the last activity signal
  std::optional<Clock::time_point> session_since_;  // this connection's welcome
  bool session_ready_ = false;                      // this connection reached ready

  // End-to-end encryption (engine thread).
  std::unique_ptr<E2eDevice> e2e_;
  bool keys_publishing_ = false;    // a keys request is in flight
  bool keys_before_ready_ = false;  // ... and ready waits for it
  // peer -> outbox messages waiting for the peer's bundles
  std::map<std::string, std::vector<OutboxEntry>> bundle_waiting_;
  // user -> when its devices were last checked (on this connection)
  std::map<std::string, Clock::time_point> peers_checked_;
  std::map<std::string, int> stale_tries_;        // message id -> stale_devices answers
  std::set<std::uint64_t> notices_handling_;      // e2e_notice nids in progress
  std::set<std::pair<std::string, std::uint64_t>> retries_asked_;  // (channel, seq) this run
  std::map<std::pair<std::string, std::string>, int> resends_;     // (id, user/device) -> count

  // Collaborative documents (engine thread).
  std::map<DocKey, DocReplica> docs_;
  std::map<PeerKey, DocPeer> doc_peers_;  // others' cursors, until they expire
  std::optional<Clock::time_point> doc_retry_at_;  // after a transient refusal

  // Sync (engine thread).
  std::set<std::string> filling_;   // channels with a gap fill in flight
  std::map<std::string, std::uint64_t> fill_base_;  // cursor when the catch-up began
  std::set<std::string> sync_waiting_;  // channels still syncing after welcome
  bool syncing_ = false;
};

}  // namespace parley::client
