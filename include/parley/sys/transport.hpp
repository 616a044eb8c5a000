// parley/sys/transport.hpp - the extension point for how frames travel.
//
// Parley ships a libwebsockets WebSocket transport (the default) and an
// in-memory loopback for tests; an app may supply its own, for example one on
// the platform's native WebSocket:
//
//   class MyTransport : public parley::sys::Transport { ... };
//   options.transport = std::make_shared<MyTransport>();
//
// Thread contract: the client calls every member except wake() from its own
// single internal thread; wake() may be called from any thread. Handler
// callbacks must be made from inside poll(), on that same thread.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "parley/export.hpp"
#include "parley/status.hpp"

namespace parley::sys {

// Receives what happens on a transport. Implemented by the client.
class PARLEY_EXPORT TransportHandler {
 public:
  virtual ~TransportHandler();  // defined in the library: one vtable, exported
  // The connection is open; frames may be sent.
  virtual void on_open() = 0;
  // One complete text frame arrived.
  virtual void on_frame(std::string_view frame) = 0;
  // The connection could not be opened or has closed. `reason` names why
  // (code offline for network failures; the peer's close reason otherwise).
  virtual void on_closed(const Status& reason) = 0;
};

class PARLEY_EXPORT Transport {
 public:
  virtual ~Transport();  // defined in the library: one vtable, exported
  // Starts connecting to `url`, offering `subprotocol`. The outcome arrives as
  // on_open or on_closed during a later poll(). At most one connection at a time.
  virtual void connect(const std::string& url, const std::string& subprotocol,
                       TransportHandler* handler) = 0;
  // Queues one text frame; frames leave in the order queued.
  virtual void send(std::string frame) = 0;
  // Closes the connection (a close frame with `code` and `reason` where the
  // transport has one). on_closed follows during a later poll().
  virtual void close(int code, const std::string& reason) = 0;
  // Does pending I/O and makes handler callbacks, waiting at most `max_wait`
  // for something to happen or for wake().
  virtual void poll(std::chrono::milliseconds max_wait) = 0;
  // Makes a waiting poll() return soon. Safe to call from any thread.
  virtual void wake() = 0;
};

}  // namespace parley::sys
