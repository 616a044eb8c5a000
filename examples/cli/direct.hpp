// Direct channels as parley-cli shows and takes them: "@U", U being the other
// user, instead of the server's name of the channel ("@alice+bob", or a hash
// for long names), so that both sides of a conversation read naturally
// (docs/cli.md, "Direct messages"). Use from one thread at a time.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace parley {
class Client;
}

namespace parley_cli {

class DirectNames {
 public:
  // `client` must outlive it.
  explicit DirectNames(parley::Client& client) : client_(client) {}

  // "@U" for a direct channel whose other user U is known (Client::direct_peer);
  // any other name as it is.
  std::string shown(const std::string& channel);
  // The channel a command's argument names: "@U" is the direct channel with
  // user U when the cache knows it; a name the cache knows, or that is not of
  // the form "@U", is kept. nullopt: "@U" whose channel is not known yet
  // (Client::open_direct(U) finds it; then learn()).
  std::optional<std::string> resolve(const std::string& arg);
  // `channel` is the direct channel with `user` (from open_direct).
  void learn(const std::string& channel, const std::string& user);

 private:
  parley::Client& client_;
  std::map<std::string, std::string> peer_of_;     // server name -> other user
  std::map<std::string, std::string> channel_of_;  // other user -> server name
};

}  // namespace parley_cli
