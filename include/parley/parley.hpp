// parley/parley.hpp - everything an app needs, in one include.
//
//   #include <parley/parley.hpp>
//   auto client = parley::Client::open(options);
#pragma once

#include "parley/client.hpp"
#include "parley/events.hpp"
#include "parley/options.hpp"
#include "parley/roles.hpp"
#include "parley/status.hpp"
#include "parley/sys/analytics.hpp"
#include "parley/types.hpp"
#include "parley/version.hpp"
