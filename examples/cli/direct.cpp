#include "direct.hpp"

#include "parley/client.hpp"

namespace parley_cli {

std::string DirectNames::shown(const std::string& channel) {
  if (channel.empty() || channel.front() != '@') return channel;
  if (auto it = peer_of_.find(channel); it != peer_of_.end()) return "@" + it->second;
  // The peer of a channel never changes, so a found one is kept; one not
  // found yet (a hashed name whose members the cache lacks) is asked again.
  std::optional<std::string> peer = client_.direct_peer(channel);
  if (!peer) return channel;
  learn(channel, *peer);
  return "@" + *peer;
}

std::optional<std::string> DirectNames::resolve(const std::string& arg) {
  if (arg.empty() || arg.front() != '@' || peer_of_.count(arg) != 0) return arg;
  const std::string user = arg.substr(1);
  // Not a user name ("@alice+bob" has a '+'): the server's name, as given.
  if (!parley::check_user_name(user).empty()) return arg;
  if (auto it = channel_of_.find(user); it != channel_of_.end()) return it->second;
  if (auto channels = client_.channels()) {
    for (const parley::ChannelInfo& c : *channels) {
      if (c.name == arg) return arg;  // a known channel named like "@U" (a hash) stays
    }
  }
  if (std::optional<std::string> channel = client_.direct_channel(user)) {
    learn(*channel, user);
    return *channel;
  }
  return std::nullopt;
}

void DirectNames::learn(const std::string& channel, const std::string& user) {
  peer_of_[channel] = user;
  channel_of_[user] = channel;
}

}  // namespace parley_cli
