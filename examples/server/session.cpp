#include "session.hpp"

#include <utility>

namespace parley::server {

Session::Session(std::uint64_t id, std::size_t max_frame, std::size_t max_queued_bytes)
    : id_(id), max_frame_(max_frame), max_queued_bytes_(max_queued_bytes) {}

void Session::set_identity(std::string user, std::string device) {
  user_ = std::move(user);
  device_ = std::move(device);
}

bool Session::enqueue(Encoded item) {
  if (closing_) return true;
  if (queued_bytes_ + item->size() > max_queued_bytes_) {
    close(1008, "slow_consumer", /*drop_queue=*/true);
    return false;
  }
  bool was_empty = !has_output();
  queued_bytes_ += item->size();
  queue_.push_back(std::move(item));
  if (was_empty) request_flush();
  return true;
}

bool Session::next_frame(std::string* frame, std::size_t headroom) {
  if (!has_output()) return false;
  // How many objects fit: one alone is sent as is, several as a JSON array.
  std::size_t count = 1;
  std::size_t size = queue_[head_]->size();
  while (head_ + count < queue_.size()) {
    std::size_t packed = size + queue_[head_ + count]->size() + 1;  // a comma
    if (packed + 2 > max_frame_) break;                             // the brackets
    size = packed;
    ++count;
  }
  frame->assign(headroom, '\0');
  frame->reserve(headroom + size + 2);
  if (count > 1) frame->push_back('[');
  for (std::size_t i = 0; i < count; ++i) {
    Encoded& item = queue_[head_++];
    if (i > 0) frame->push_back(',');
    frame->append(*item);
    queued_bytes_ -= item->size();
    item.reset();  // the shared encoding may go as soon as every session has it
  }
  if (count > 1) frame->push_back(']');
  if (!has_output()) {
    release_queue();
  } else if (head_ > 1024 && head_ * 2 > queue_.size()) {
    // Sent items at the front: reclaim their slots now and then.
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  return true;
}

void Session::release_queue() {
  std::vector<Encoded>().swap(queue_);
  head_ = 0;
  queued_bytes_ = 0;
}

void Session::close(int code, std::string reason, bool drop_queue) {
  if (drop_queue) release_queue();
  if (closing_) return;
  closing_ = true;
  close_code_ = code;
  close_reason_ = std::move(reason);
  request_flush();
}

FrameAssembler::Outcome FrameAssembler::add(const char* data, std::size_t size, bool binary,
                                            bool final) {
  if (!in_message_) {
    in_message_ = true;
    binary_ = binary;
    too_large_ = false;
    buffer_.clear();
    // A large message earlier should not pin its memory for the session's life.
    if (buffer_.capacity() > 4096) buffer_.shrink_to_fit();
  }
  if (!binary_ && !too_large_) {
    if (buffer_.size() + size > max_frame_) {
      too_large_ = true;
      buffer_.clear();
      buffer_.shrink_to_fit();
    } else {
      buffer_.append(data, size);
    }
  }
  if (!final) return Outcome::partial;
  in_message_ = false;
  if (binary_) return Outcome::binary;
  if (too_large_) return Outcome::too_large;
  return Outcome::text;
}

}  // namespace parley::server
