// Collaborative documents in channels (docs/collab.md, "Documents in channels").
#include <fmt/format.h>

#include "hub.hpp"

namespace parley::server {

namespace code = wire::code;

void Hub::handle(Session& session, const wire::DocCreate& request) {
  error(session, request.rid, code::kUnknownType, "documents are not served yet");
}
void Hub::handle(Session& session, const wire::DocOpen& request) {
  error(session, request.rid, code::kUnknownType, "documents are not served yet");
}
void Hub::handle(Session& session, const wire::DocClose& request) {
  error(session, request.rid, code::kUnknownType, "documents are not served yet");
}
void Hub::handle(Session& session, const wire::DocUpdate& request) {
  error(session, request.rid, code::kUnknownType, "documents are not served yet");
}
void Hub::handle(Session& session, const wire::DocAwareness& request) {
  error(session, request.rid, code::kUnknownType, "documents are not served yet");
}
void Hub::handle(Session& session, const wire::DocList& request) {
  error(session, request.rid, code::kUnknownType, "documents are not served yet");
}

}  // namespace parley::server
