// Fills a client cache through its own API (store::Cache::store_events, in
// pages of 500 as the sync engine stores them): each channel gets a `create`
// event at seq 1 and then `per_channel` text messages from the corpus.
//
// Use from one thread at a time.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "store/cache.hpp"

namespace parley::bench {

inline constexpr std::size_t kPageSize = 500;

inline void fill_cache(store::Cache& cache, int channels, std::uint64_t per_channel,
                       Corpus& corpus) {
  for (int c = 0; c < channels; ++c) {
    std::string channel = channel_name(c);
    std::vector<Message> page;
    page.reserve(kPageSize);
    Message create;
    create.channel = channel;
    create.seq = 1;
    create.kind = EventKind::create;
    create.sender = "alice";
    create.ts_ms = corpus.ts();
    page.push_back(create);
    for (std::uint64_t i = 0; i < per_channel; ++i) {
      page.push_back(corpus.message(channel, i + 2));
      if (page.size() == kPageSize || i + 1 == per_channel) {
        auto stored = cache.store_events(page);
        if (!stored) {
          std::fprintf(stderr, "store_events: %s\n", stored.status().to_string().c_str());
          std::exit(1);
        }
        page.clear();
      }
    }
    // As the sync engine leaves a channel it has caught up with.
    if (auto s = cache.upsert_channel(channel, per_channel + 1, true); !s.ok()) {
      std::fprintf(stderr, "upsert_channel: %s\n", s.to_string().c_str());
      std::exit(1);
    }
    if (auto s = cache.advance_cursor(channel, per_channel + 1); !s.ok()) {
      std::fprintf(stderr, "advance_cursor: %s\n", s.to_string().c_str());
      std::exit(1);
    }
  }
}

}  // namespace parley::bench
