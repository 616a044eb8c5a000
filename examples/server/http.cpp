#include "http.hpp"

namespace parley::server {

HttpResponse route_http(std::string_view path, const Metrics& metrics) {
  if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok"};
  if (path == "/metrics")
    return {200, "text/plain; version=0.0.4; charset=utf-8", metrics.render()};
  return {404, "text/plain; charset=utf-8", "not found\n"};
}

}  // namespace parley::server
