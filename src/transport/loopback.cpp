#include "transport/loopback.hpp"

#include <utility>

namespace parley::transport {

void LoopbackLink::set_server_wake(std::function<void()> wake) {
  std::lock_guard lock(mu_);
  server_wake_ = std::move(wake);
}

bool LoopbackLink::take_from_client(std::vector<std::string>* frames) {
  std::lock_guard lock(mu_);
  for (auto& f : to_server_) frames->push_back(std::move(f));
  to_server_.clear();
  return !client_closed_;
}

void LoopbackLink::send_to_client(std::string frame) {
  {
    std::lock_guard lock(mu_);
    if (server_closed_ || client_closed_) return;
    to_client_.push_back(std::move(frame));
  }
  client_cv_.notify_all();
}

void LoopbackLink::close_from_server(int code, std::string reason) {
  {
    std::lock_guard lock(mu_);
    if (server_closed_) return;
    server_closed_ = true;
    close_code_ = code;
    close_reason_ = std::move(reason);
  }
  client_cv_.notify_all();
}

void LoopbackLink::send_to_server(std::string frame) {
  std::function<void()> wake;
  {
    std::lock_guard lock(mu_);
    if (client_closed_ || server_closed_) return;
    to_server_.push_back(std::move(frame));
    wake = server_wake_;
  }
  if (wake) wake();
}

void LoopbackLink::close_from_client() {
  std::function<void()> wake;
  {
    std::lock_guard lock(mu_);
    if (client_closed_) return;
    client_closed_ = true;
    wake = server_wake_;
  }
  if (wake) wake();
}

LoopbackLink::ClientInbox LoopbackLink::take_for_client() {
  std::lock_guard lock(mu_);
  ClientInbox inbox;
  inbox.frames.swap(to_client_);
  inbox.closed = server_closed_;
  inbox.close_code = close_code_;
  inbox.close_reason = close_reason_;
  return inbox;
}

void LoopbackLink::wait_for_client(std::chrono::milliseconds max_wait) {
  std::unique_lock lock(mu_);
  client_cv_.wait_for(lock, max_wait,
                      [&] { return !to_client_.empty() || server_closed_ || client_woken_; });
  client_woken_ = false;
}

void LoopbackLink::wake_client() {
  {
    std::lock_guard lock(mu_);
    client_woken_ = true;
  }
  client_cv_.notify_all();
}

LoopbackTransport::LoopbackTransport(LoopbackAcceptor acceptor) : acceptor_(std::move(acceptor)) {}

LoopbackTransport::~LoopbackTransport() {
  std::shared_ptr<LoopbackLink> link;
  {
    std::lock_guard lock(mu_);
    link = std::move(link_);
  }
  if (link) link->close_from_client();
}

void LoopbackTransport::connect(const std::string&, const std::string&,
                                sys::TransportHandler* handler) {
  auto link = std::make_shared<LoopbackLink>();
  {
    std::lock_guard lock(mu_);
    if (link_) link_->close_from_client();
    link_ = link;
  }
  handler_ = handler;
  close_pending_ = false;
  if (acceptor_) {
    acceptor_(link);
    open_pending_ = true;
  } else {
    close_pending_ = true;
    close_reason_ = Status(StatusCode::offline, "loopback: no server");
  }
}

void LoopbackTransport::send(std::string frame) {
  std::shared_ptr<LoopbackLink> link;
  {
    std::lock_guard lock(mu_);
    link = link_;
  }
  if (link) link->send_to_server(std::move(frame));
}

void LoopbackTransport::close(int, const std::string& reason) {
  std::shared_ptr<LoopbackLink> link;
  {
    std::lock_guard lock(mu_);
    link = std::move(link_);
  }
  if (!link) return;
  link->close_from_client();
  open_pending_ = false;
  close_pending_ = true;
  close_reason_ = Status(StatusCode::ok, reason);
}

void LoopbackTransport::test_drop() {
  std::shared_ptr<LoopbackLink> link;
  {
    std::lock_guard lock(mu_);
    link = std::move(link_);
  }
  if (!link) return;
  link->close_from_client();
  open_pending_ = false;
  close_pending_ = true;
  close_reason_ = Status(StatusCode::offline, "connection lost", "connection_lost");
}

void LoopbackTransport::poll(std::chrono::milliseconds max_wait) {
  std::shared_ptr<LoopbackLink> link;
  {
    std::lock_guard lock(mu_);
    link = link_;
  }
  bool immediate = open_pending_ || close_pending_ || woken_.exchange(false);
  if (link && !immediate) {
    link->wait_for_client(max_wait);
  } else if (!link && !immediate) {
    std::unique_lock lock(idle_mu_);
    idle_cv_.wait_for(lock, max_wait, [&] { return woken_.load(); });
  }
  woken_ = false;
  if (open_pending_) {
    open_pending_ = false;
    if (handler_) handler_->on_open();
  }
  if (close_pending_) {
    close_pending_ = false;
    if (handler_) handler_->on_closed(close_reason_);
    return;
  }
  if (!link) return;
  auto inbox = link->take_for_client();
  for (auto& frame : inbox.frames) {
    if (handler_) handler_->on_frame(frame);
  }
  if (inbox.closed) {
    {
      std::lock_guard lock(mu_);
      if (link_ == link) link_.reset();
    }
    link->close_from_client();
    StatusCode code = inbox.close_code == 1000 ? StatusCode::ok : StatusCode::offline;
    if (handler_) handler_->on_closed(Status(code, inbox.close_reason, inbox.close_reason));
  }
}

void LoopbackTransport::wake() {
  woken_ = true;
  std::shared_ptr<LoopbackLink> link;
  {
    std::lock_guard lock(mu_);
    link = link_;
  }
  if (link) {
    link->wake_client();
  } else {
    std::lock_guard lock(idle_mu_);
    idle_cv_.notify_all();
  }
}

}  // namespace parley::transport
