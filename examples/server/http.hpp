// The plain HTTP side of the server's port: /healthz and /metrics.
#pragma once

#include <string>
#include <string_view>

#include "metrics.hpp"

namespace parley::server {

struct HttpResponse {
  int status = 200;
  std::string content_type;
  std::string body;
};

// Answers a GET of `path` (without the query string).
HttpResponse route_http(std::string_view path, const Metrics& metrics);

}  // namespace parley::server
