// Presence (docs/presence.md): placeholder handlers until the model lands.
#include <fmt/format.h>

#include "hub.hpp"

namespace parley::server {

void Hub::handle(Session& session, const wire::SetPresence& request) {
  error(session, request.rid, wire::code::kInternal, "presence is not available yet");
}
void Hub::handle(Session&, const wire::Activity&) {}
void Hub::handle(Session& session, const wire::Watch& request) {
  error(session, request.rid, wire::code::kInternal, "presence is not available yet");
}
void Hub::handle(Session& session, const wire::Unwatch& request) {
  error(session, request.rid, wire::code::kInternal, "presence is not available yet");
}
void Hub::handle(Session& session, const wire::GetPresence& request) {
  error(session, request.rid, wire::code::kInternal, "presence is not available yet");
}

}  // namespace parley::server
