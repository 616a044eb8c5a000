// The server's request handling: authenticates sessions, runs their requests
// against the store, and fans new channel events, typing signals and receipt
// cursors out to the live sessions of every member. Knows nothing of the
// transport: both the WebSocket and the loopback backend hand it whole frames
// and drain what it queues on sessions.
//
// hub.cpp holds authentication, channels and messages; hub_receipts.cpp
// typing and receipts; hub_groups.cpp channel kinds, roles, moderation and
// the permission checks (docs/channels.md); hub_admin.cpp administration;
// hub_keys.cpp keys and e2e payloads; hub_devices.cpp device removal, blocks,
// session recovery notices and verifiable reports.
//
// Use from one thread at a time (the server's loop thread).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "crdt/document.hpp"
#include "crypto/hkdf.hpp"
#include "metrics.hpp"
#include "moderation.hpp"
#include "parley/roles.hpp"
#include "protocol/wire.hpp"
#include "session.hpp"
#include "store.hpp"

namespace parley::server {

// How long an e2e notice or a retry waits for its device (30 days).
inline constexpr std::int64_t kNoticeLifetimeMs = std::int64_t{30} * 24 * 3600 * 1000;
// Notices sent after a welcome, oldest first (the rest after a later welcome).
inline constexpr std::uint32_t kNoticesPerWelcome = 500;
// Retry notices one device may cause for one message (security review): a
// retry, a resend, a retry again... at most this many rounds in all, so a
// contact cannot loop retry -> resend for ever. Past it, e2e_retry is refused
// with rate_limited (not a silent ok: the asking client learns that the
// message stays unreadable and can say so). The count lives with the retry row
// and so resets only when that row is dropped, kNoticeLifetimeMs after the
// last retry.
inline constexpr std::uint32_t kMaxRetryRounds = 3;
// Device ids one user may remove in all (removed ids are kept for good, one
// row each): remove_device beyond is refused with too_many_devices.
inline constexpr std::uint64_t kMaxRemovedDevices = 100;

class Hub {
 public:
  Hub(ServerStore& store, Metrics& metrics, const std::array<unsigned char, 32>& public_key,
      std::size_t max_frame);

  // Builds the in-memory index (channels, members) from the store.
  Status load();
  // The word filter and the per-user send rate limit (default: neither).
  void set_moderation(WordFilter filter, RateLimiter limiter);

  // Presence timing (docs/presence.md, "Model"); the defaults are the server's.
  struct PresenceConfig {
    std::chrono::milliseconds grace{5000};          // before a disconnect shows as offline
    std::chrono::milliseconds away_after{300000};   // idle time before away
    std::size_t max_members = 100;                  // smaller channels get per-member events
    std::chrono::milliseconds count_interval{1000}; // between online_count updates of a channel
  };
  // Presence changes are coalesced for this long before tick() publishes them.
  static constexpr std::chrono::milliseconds kPresenceTick{100};
  // The longest the server loop waits between two ticks.
  static constexpr std::chrono::milliseconds kMaxTickWait{10000};
  void set_presence_config(const PresenceConfig& config) { presence_config_ = config; }
  // How long a document replica nobody has open stays in memory (default 30 s).
  void set_doc_unload_after(std::chrono::milliseconds after) { doc_unload_after_ = after; }
  // Runs presence's timers (grace periods, idleness, status text expiry) and
  // publishes the changes coalesced since the last tick.
  void tick();
  // How long the server loop may wait before the next tick(): until the
  // earliest timer is due, within kPresenceTick..kMaxTickWait. An idle server
  // with many connections then wakes rarely (each wake polls every socket).
  std::chrono::milliseconds next_tick_delay() const;
  // Called when something wants a tick within kPresenceTick (a change to
  // publish, a new timer): the server brings its tick forward.
  void set_tick_hook(std::function<void()> hook) { tick_hook_ = std::move(hook); }

  void on_open(Session& session);
  // One complete text frame from the client.
  void on_frame(Session& session, std::string_view frame);
  // A frame that could not be taken: binary, or larger than max_frame.
  void on_bad_frame(Session& session, const char* code, std::string message);
  // The session is gone; it is not touched after this returns.
  void on_close(Session& session);

 private:
  struct Member {
    Role role = Role::member;
    std::optional<std::int64_t> muted_until;  // ms since the epoch; 0: until lifted
  };
  struct Channel {
    std::uint64_t last_seq = 0;
    ChannelKind kind = ChannelKind::public_channel;
    ChannelMeta meta;
    bool deleted = false;  // by an administrator: the name stays taken
    std::map<std::string, Member> members;
    std::map<std::string, std::int64_t> bans;  // user -> until (0: until lifted)
    std::set<std::uint64_t> pinned;
    // Former members who left read-only or muted, and get it back on return.
    std::map<std::string, Member> restricted;
    std::uint64_t online = 0;  // members shown online or away (presence)
    std::array<std::string, 2> pair;  // direct: its two users, members or not
  };

  void handle(Session& session, const wire::ClientMessage& message);
  void handle_auth(Session& session, const wire::Auth& auth);
  void handle(Session& session, const wire::CreateChannel& request);
  void handle(Session& session, const wire::JoinChannel& request);
  void handle(Session& session, const wire::LeaveChannel& request);
  void handle(Session& session, const wire::Send& request);
  void handle(Session& session, const wire::History& request);
  void handle(Session& session, const wire::ListChannels& request);
  void handle(Session& session, const wire::Typing& request);
  void handle(Session& session, const wire::Receipt& request);
  void handle(Session& session, const wire::ListReceipts& request);
  void handle(Session& session, const wire::OpenDirect& request);
  void handle(Session& session, const wire::MemberAction& request);
  void handle(Session& session, const wire::SetMeta& request);
  void handle(Session& session, const wire::DeleteMessage& request);
  void handle(Session& session, const wire::PinMessage& request);
  void handle(Session& session, const wire::Report& request);
  void handle(Session& session, const wire::ChannelInfoRequest& request);
  void handle(Session& session, const wire::Admin& request);
  void handle(Session& session, const wire::Notify& request);
  void handle(Session& session, const wire::SetPresence& request);
  void handle(Session& session, const wire::Activity& request);
  void handle(Session& session, const wire::Watch& request);
  void handle(Session& session, const wire::Unwatch& request);
  void handle(Session& session, const wire::GetPresence& request);
  void handle(Session& session, const wire::PublishKeys& request);
  void handle(Session& session, const wire::GetBundle& request);
  void handle(Session& session, const wire::RemoveDevice& request);
  void handle(Session& session, const wire::Block& request);
  void handle(Session& session, const wire::ListBlocks& request);
  void handle(Session& session, const wire::E2eRetry& request);
  void handle(Session& session, const wire::E2eResend& request);
  void handle(Session& session, const wire::E2eAck& request);
  void handle(Session& session, const wire::DocCreate& request);
  void handle(Session& session, const wire::DocOpen& request);
  void handle(Session& session, const wire::DocClose& request);
  void handle(Session& session, const wire::DocUpdate& request);
  void handle(Session& session, const wire::DocAwareness& request);
  void handle(Session& session, const wire::DocList& request);

  // hub_keys.cpp (docs/protocol.md, "End-to-end encryption")
  // Why `session` may not send `e2e` to `channel` (a direct channel), or
  // empty when it may.
  std::string check_e2e(const Session& session, const wire::E2e& e2e, const Channel& channel) const;
  // Why envelope `index` is malformed (sizes, base64, prekey fields), or empty.
  std::string check_envelope(std::size_t index, const wire::Envelope& envelope) const;
  // Why the envelopes of `e2e` are not exactly one per device of the
  // channel's members but the sending one (missing and extra devices named),
  // or empty. Sets *failed on a store failure.
  std::string check_devices(const Session& session, const wire::E2e& e2e, const Channel& channel,
                            bool* failed);
  // The keys of (user, device) as the server holds them, if it has published.
  std::optional<wire::KeysState> keys_state(const std::string& user, const std::string& device);

  // hub_devices.cpp (docs/e2e.md "Devices", docs/security.md "Verifiable reports")
  // The devices of `user` with keys (cached), or null after a store failure.
  const std::set<std::string>* devices_of(const std::string& user);
  // Why `a` and `b` may not talk directly ("you have blocked ..." / "... has
  // blocked you", as `a` is told), or empty.
  std::string block_between(const std::string& a, const std::string& b) const;
  // Replies blocked and returns true when `session`'s user and `other` block each other.
  bool refuse_blocked(Session& session, std::uint64_t rid, const std::string& other,
                      const std::optional<std::string>& id = std::nullopt);
  // The other user of direct channel `channel` than `user`.
  std::string direct_peer(const Channel& channel, const std::string& user) const;
  // Queues `notice` for its device and pushes it to the device's
  // connections; false after replying rate_limited or the store's failure.
  bool queue_notice(Session& session, std::uint64_t rid, StoredNotice notice);
  // After the welcome: the notices queued for the session's device.
  void notices_welcome(Session& session);
  // Closes every connection of (user, device) with device_removed (4005).
  void close_device(const std::string& user, const std::string& device);
  // A report in a direct channel: checks the franking opening and stores a
  // verified report, replying ok or the refusal.
  void report_direct(Session& session, const wire::Report& request, const Channel& channel);
  // Adds the server's franking tag to `e2e` of a message stored with `ts`.
  void add_franking_tag(wire::E2e* e2e, const std::string& channel, const std::string& id,
                        const std::string& sender, std::int64_t ts) const;

  // hub_groups.cpp
  // The channel `name` if it exists (and is not deleted); else replies
  // invalid_name or no_such_channel and returns null.
  Channel* existing_channel(Session& session, std::uint64_t rid, const std::string& name,
                            const std::optional<std::string>& id = std::nullopt);
  // `session`'s membership of `channel`, or null after replying banned or
  // not_member.
  Member* membership(Session& session, std::uint64_t rid, const std::string& name,
                     Channel& channel, const std::optional<std::string>& id = std::nullopt);
  // Replies forbidden and returns false unless `member`'s role allows `permission`.
  bool allowed(Session& session, std::uint64_t rid, const std::string& name,
               const Channel& channel, const Member& member, Permission permission,
               const std::optional<std::string>& id = std::nullopt);
  // Checks a send against mute, rate limit and word filter; returns the text
  // to store, or nullopt after replying the refusal.
  std::optional<std::string> screen_send(Session& session, const wire::Send& request,
                                         const Channel& channel, const Member& member);
  // The active ban of `user` in `channel` (its until), if any.
  std::optional<std::int64_t> active_ban(const Channel& channel, const std::string& user) const;
  void member_action(Session& session, const wire::MemberAction& request, Channel& channel,
                     Member& actor);
  // Appends `event` with `effects`; once stored, runs `apply` (the in-memory
  // side of the change), replies ok to `session` and publishes the event.
  // remove_target: the event's target stops being a member once told.
  // False after replying the store's refusal.
  bool commit_event(Session& session, std::uint64_t rid, StoredEvent event,
                    const ServerStore::Effects& effects, const std::function<void()>& apply = {},
                    bool remove_target = false);
  // What a leaving member keeps for their return: read_only, an active mute.
  std::optional<Member> lasting_restriction(const Member& member) const;
  // Store effects that keep `kept` for `user` (nothing when it is empty).
  Status keep_restriction(std::int64_t channel_id, const std::string& channel,
                          const std::string& user, const std::optional<Member>& kept);
  // Appends `event` (a join, an invite, or a join to a direct channel) that
  // makes event.target (invite) or event.sender (join) a member again, with
  // the restrictions they left with; replies ok and publishes it. False after
  // replying the store's refusal.
  bool start_membership(Session& session, std::uint64_t rid, Channel& channel,
                        StoredEvent event);
  // Index upkeep, with the gauges.
  void add_member(const std::string& channel_name, Channel& channel, const std::string& user,
                  Role role);
  void drop_member(const std::string& channel_name, Channel& channel, const std::string& user);
  void count_channels();

  // hub_notify.cpp (docs/notifications.md)
  struct NotifySetting {
    std::string level = "all";
    std::int64_t mute_until = 0;  // ms since the epoch; 0: not muted
  };
  NotifySetting notify_setting(const std::string& user, const std::string& channel) const;
  // After a message is stored and published: records its mentions, moves
  // the members' unread counts and sends their notifications.
  void after_message(const StoredEvent& event, const Channel& channel);
  // After an invite, remove, ban or role event: the member it concerns is notified.
  void after_membership(const StoredEvent& event);
  // Recomputes `user`'s counts of `channel` from the store and, when they
  // changed, sends them to the user's connections.
  void refresh_unread(const std::string& user, const std::string& channel);
  // The counts of every online member of `channel` (after a deletion); the
  // offline ones are recomputed when they next connect.
  void refresh_unread_all(const std::string& channel_name, const Channel& channel);
  void fill_counts(const std::string& user, wire::ChannelState* state);
  // Whether some open connection of `user` asked for notifications.
  bool wants_notifications(const std::string& user) const;
  // Queues `item` on every open connection of `user` that asked for
  // notifications at auth, except `except`.
  void to_user(const std::string& user, const Encoded& item, const Session* except = nullptr);

  // hub_presence.cpp (docs/presence.md)
  using SteadyTime = std::chrono::steady_clock::time_point;
  struct PresenceState {
    StoredPresence stored;       // settings and last seen, as in the store
    wire::PresenceEvent shown;   // as last published to others
    wire::PresenceEvent own;     // as last published to the user's own connections
    SteadyTime session_start{};  // when the user's presence session began
    bool queued = false;         // in presence_changed_
    SteadyTime away_check_at{};  // its entry in away_checks_ (epoch: none)
  };
  struct SessionPresence {
    SteadyTime last_active{};
    std::unordered_map<std::string, bool> watching;  // user -> notify
  };
  PresenceState& presence_of(const std::string& user);
  // Queues `user` for publishing at the next tick.
  void presence_changed(const std::string& user);
  // The presence of `user` as others see it (own: as their own devices do), now.
  wire::PresenceEvent presence_view(const std::string& user, const PresenceState& state,
                                    bool own) const;
  // What `session` is told of `user`: what was last published to it.
  wire::PresenceEvent presence_for(const Session& session, const std::string& user);
  // Publishes `user`'s queued change; true if others were sent one.
  bool publish_presence(const std::string& user);
  Status save_presence(const PresenceState& state);
  bool small_channel(const Channel& channel) const {
    return channel.members.size() < presence_config_.max_members;
  }
  // After the welcome: the members of the user's small channels, the counts
  // of the large ones.
  void presence_welcome(Session& session);
  void presence_opened(Session& session);
  void presence_closed(Session& session);
  void note_activity(Session& session);
  // A member joined (added) or left `channel`.
  void presence_membership(const std::string& channel_name, Channel& channel,
                           const std::string& user, bool added);
  void send_online_count(const std::string& channel_name, const Channel& channel);
  bool validate_users(Session& session, std::uint64_t rid, const std::vector<std::string>& users);

  PresenceConfig presence_config_;
  std::unordered_map<std::string, PresenceState> presence_;
  std::unordered_map<const Session*, SessionPresence> session_presence_;
  // watched user -> watching session -> notify
  std::unordered_map<std::string, std::unordered_map<Session*, bool>> watchers_;
  std::vector<std::string> presence_changed_;
  // Users whose last connection closed: when, for the grace period.
  std::unordered_map<std::string, SteadyTime> closing_users_;
  std::set<std::pair<std::int64_t, std::string>> expiring_text_;  // (text_until, user)
  std::set<std::string> counts_changed_;  // large channels whose online count may have moved
  std::unordered_map<std::string, std::pair<std::uint64_t, std::uint64_t>> counts_sent_;
  SteadyTime next_count_at_{};
  // Online users by the time they go idle (away) unless active again: at most
  // one entry per user, re-checked when due, so idleness costs nothing per
  // tick however many users are connected.
  std::set<std::pair<SteadyTime, std::string>> away_checks_;
  std::function<void()> tick_hook_;
  void want_tick() {
    if (tick_hook_) tick_hook_();
  }
  // Schedules `user`'s next away check if they show online and have none.
  void schedule_away_check(const std::string& user, PresenceState& state);

  // hub_docs.cpp (docs/collab.md, "On the server")
  using DocKey = std::pair<std::string, std::string>;  // (channel, title)
  struct DocAwarenessState {
    wire::DocAwarenessEvent event;
    SteadyTime at{};
  };
  struct DocEntry {
    StoredDoc row;                          // size and version kept current
    std::unique_ptr<crdt::Document> doc;    // the server's replica; null while unloaded
    std::vector<Session*> sessions;         // connections that have it open
    std::map<const Session*, DocAwarenessState> awareness;  // their last cursors
    std::uint64_t unsnapshotted = 0;        // updates stored since the snapshot
    std::size_t unsnapshotted_bytes = 0;
    std::uint64_t last_n = 0;               // the last update stored
    std::size_t memory = 0;                 // of the replica, as last counted
    SteadyTime idle_since{};                // when its last connection closed it
  };
  struct AwarenessBudget {
    SteadyTime window{};
    std::uint32_t count = 0;
  };
  // Loads the document index from the store (at load()).
  Status load_docs();
  // The document, or null after replying invalid_title or no_such_doc.
  DocEntry* existing_doc(Session& session, std::uint64_t rid, const std::string& channel,
                         const std::string& title);
  // Reads the document's snapshot and updates into its replica.
  Status load_replica(DocEntry& entry);
  void drop_replica(DocEntry& entry);
  // Removes `session` from the document's connections and tells the others
  // its cursor is gone.
  void leave_doc(const Session& session, const DocKey& key, DocEntry& entry);
  // Writes a snapshot of the replica and drops the updates it holds.
  void snapshot_doc(DocEntry& entry);
  // At close: every document the session had open.
  void docs_closed(const Session& session);
  // From tick(): unloads documents nobody has had open for kDocIdleUnload.
  void unload_idle_docs(SteadyTime now);
  SteadyTime next_doc_unload() const;
  // Queues `item` on the other connections that have the document open and
  // whose user is still a member of its channel.
  std::uint64_t doc_fan_out(const DocKey& key, DocEntry& entry, const Encoded& item,
                            const Session* origin);
  std::map<DocKey, DocEntry> docs_;
  std::unordered_map<const Session*, std::set<DocKey>> docs_of_session_;
  std::unordered_map<const Session*, AwarenessBudget> awareness_budget_;
  std::set<std::pair<SteadyTime, DocKey>> idle_docs_;
  std::chrono::milliseconds doc_unload_after_{30000};

  // hub_admin.cpp
  // The active server-wide ban of `user` (its until), if any.
  std::optional<std::int64_t> server_ban(const std::string& user) const;
  // Closes every session of `user` with close code 4004 "banned".
  void disconnect_user(const std::string& user, std::int64_t until);

  // The channel `name` if `session`'s user is a member of it; else replies
  // invalid_name, no_such_channel or not_member and returns null.
  Channel* member_channel(Session& session, std::uint64_t rid, const std::string& name);

  // Queues a reply on `session`.
  void reply(Session& session, const wire::ServerMessage& message);
  void error(Session& session, std::optional<std::uint64_t> rid, const char* code,
             std::string message, std::optional<std::string> id = std::nullopt);
  // Refusal from the store: its reason becomes the error code.
  void store_error(Session& session, std::uint64_t rid, const Status& status,
                   std::optional<std::string> id = std::nullopt);
  void enqueue(Session& session, Encoded item);
  // Records a stored event and sends it to every session of every member
  // except `origin`, which gets a reply instead.
  void publish(const StoredEvent& event, const Session* origin);
  // Queues `item` on every open session of every member of `channel` except
  // `origin` and, when `skip_user` is set, every session of that user.
  // Returns how many sessions it was queued on.
  std::uint64_t fan_out(const Channel& channel, const Encoded& item, const Session* origin,
                        const std::string* skip_user = nullptr);
  // With each channel's kind, the user's role, notification level and counts.
  std::vector<wire::ChannelState> memberships(const std::string& user);

  ServerStore& store_;
  Metrics& metrics_;
  WordFilter filter_;
  RateLimiter limiter_;
  std::unordered_map<std::string, std::int64_t> banned_users_;  // server-wide: user -> until
  // user -> channel -> setting (only those not at the default).
  std::unordered_map<std::string, std::unordered_map<std::string, NotifySetting>> notify_;
  // user -> channel -> counts, for online users; recomputed at each welcome.
  std::unordered_map<std::string, std::unordered_map<std::string, UnreadCounts>> unread_;
  std::array<unsigned char, 32> public_key_;
  crypto::Key32 franking_key_{};  // the server's, for franking tags; never sent
  // user -> the users they block.
  std::unordered_map<std::string, std::set<std::string>> blocks_;
  // user -> devices with keys; filled on first use, kept on publish and removal.
  std::unordered_map<std::string, std::set<std::string>> devices_;
  std::size_t max_frame_;
  std::unordered_map<std::string, Channel> channels_;
  std::unordered_map<std::string, std::set<std::string>> channels_of_user_;
  std::unordered_map<std::string, std::vector<Session*>> sessions_of_user_;
  // When each session last had an active typing signal relayed, per channel:
  // the throttle that bounds typing fan-out. Entries go with the session.
  std::unordered_map<const Session*,
                     std::unordered_map<std::string, std::chrono::steady_clock::time_point>>
      typing_relayed_at_;
  // When the frame being handled was decoded: the start of send-to-ack latency.
  std::chrono::steady_clock::time_point frame_decoded_at_;
};

wire::ChannelEvent to_wire(const StoredEvent& event);
// The name of the direct channel of two users: "@" + the names in byte order
// joined by "+", or, when that exceeds 64 bytes, "@" + 32 hex digits of their
// BLAKE2b hash. User names never contain "+", so neither form can collide.
std::string direct_channel_name(const std::string& a, const std::string& b);
// A peer's string, shortened to about 64 bytes for an error message.
std::string shown(const std::string& value);
// One message encoded once, to be queued on many sessions.
Encoded encoded(const wire::ServerMessage& message);

}  // namespace parley::server
