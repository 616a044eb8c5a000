// One client connection as the request handling sees it, whatever carries it
// (a WebSocket or an in-memory loopback link): who it is, its bounded queue of
// encoded objects to send, and whether it is closing.
//
// Use from one thread at a time (the server's loop thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace parley::server {

using Encoded = std::shared_ptr<const std::string>;

class Session {
 public:
  static constexpr std::size_t kDefaultMaxQueuedBytes = 16u << 20;

  Session(std::uint64_t id, std::size_t max_frame, std::size_t max_queued_bytes);
  virtual ~Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  std::uint64_t id() const { return id_; }
  // A short name for logs: "ws#3", "loopback#4".
  virtual std::string describe() const = 0;

  bool authenticated() const { return !user_.empty(); }
  const std::string& user() const { return user_; }
  const std::string& device() const { return device_; }
  void set_identity(std::string user, std::string device);
  // A server administrator (the token's "adm" claim).
  bool admin() const { return admin_; }
  void set_admin(bool admin) { admin_ = admin; }
  // Asked at auth for notification, unread and notify events.
  bool notifications() const { return notifications_; }
  void set_notifications(bool on) { notifications_ = on; }
  // Asked at auth for channel members' presence, its own and online counts.
  bool presence() const { return presence_; }
  void set_presence(bool on) { presence_ = on; }

  // Queues one encoded JSON object. When the queue would exceed its bound the
  // session drops it and everything queued and closes with 1008
  // "slow_consumer"; returns false then. Ignored once closing.
  bool enqueue(Encoded item);
  bool has_output() const { return head_ < queue_.size(); }
  std::size_t queued_bytes() const { return queued_bytes_; }

  // Replaces `*frame` with `headroom` zero bytes followed by one frame packing
  // as many queued objects as fit in max_frame bytes (at least one), in the
  // format of wire::pack. False if nothing is queued.
  bool next_frame(std::string* frame, std::size_t headroom);

  // Closes after the queued output is sent (or at once, dropping it).
  void close(int code, std::string reason, bool drop_queue = false);
  bool closing() const { return closing_; }
  int close_code() const { return close_code_; }
  const std::string& close_reason() const { return close_reason_; }

 protected:
  // Asks the backend to call next_frame() (and close when closing) soon.
  virtual void request_flush() = 0;

 private:
  std::uint64_t id_;
  std::size_t max_frame_;
  std::size_t max_queued_bytes_;
  std::string user_;
  std::string device_;
  bool admin_ = false;
  bool notifications_ = false;
  bool presence_ = false;
  // The queue is queue_[head_..]: a vector, released whole once drained, so
  // that an idle session holds no queue memory at all (an empty std::deque
  // keeps about 600 bytes).
  std::vector<Encoded> queue_;
  std::size_t head_ = 0;
  std::size_t queued_bytes_ = 0;
  // Releases the queue's memory.
  void release_queue();
  bool closing_ = false;
  int close_code_ = 0;
  std::string close_reason_;
};

// Reassembles a WebSocket message from the chunks and continuation frames
// libwebsockets delivers, holding at most `max_frame` bytes of it.
class FrameAssembler {
 public:
  enum class Outcome { partial, text, binary, too_large };

  explicit FrameAssembler(std::size_t max_frame) : max_frame_(max_frame) {}
  // `binary`: the message's opcode (read at its first chunk); `final`: the
  // last chunk of the message. After text, the message is in text() until the
  // next add().
  Outcome add(const char* data, std::size_t size, bool binary, bool final);
  const std::string& text() const { return buffer_; }

 private:
  std::size_t max_frame_;
  std::string buffer_;
  bool in_message_ = false;
  bool binary_ = false;
  bool too_large_ = false;
};

}  // namespace parley::server
