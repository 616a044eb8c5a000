// A damaged cache file: the input becomes DATA_DIR/parley.db and the client
// cache (src/store/cache.hpp) opens it. Whatever the bytes, open returns a
// Status, and a cache that opens answers every call with a value or a Status.
// Seeds are real cache files (make_seeds.cpp), so mutations reach past the
// SQLite header into the schema and the rows.
#include <fstream>

#include "fuzz_support.hpp"
#include "parley/types.hpp"
#include "store/cache.hpp"

namespace {

using namespace parley;

void exercise(store::Cache& cache) {
  auto channels = cache.channels();
  if (channels) {
    for (const ChannelInfo& c : *channels) {
      (void)cache.channel(c.name);
      (void)cache.events(c.name, 1, c.last_seq);
      (void)cache.latest_messages(c.name, 0, 50);
      (void)cache.contiguous_down_from(c.name, c.last_seq);
      (void)cache.contiguous_up_from(c.name, c.read_to + 1);
      (void)cache.max_seq(c.name);
      (void)cache.receipt_summary(c.name, c.last_seq, "alice");
    }
  }
  (void)cache.outbox_pending();
  (void)cache.outbox_failed();
  (void)cache.unsent_reads();
  // Writes on top of what is there.
  Message m;
  m.channel = "general";
  m.seq = 3;
  m.kind = EventKind::message;
  m.sender = "bob";
  m.id = "00000000000000000000000000000003";
  m.text = "written over a fuzzed file";
  m.ts_ms = 1700000000000;
  (void)cache.store_events({m});
  (void)cache.advance_cursor("general", 3);
  (void)cache.outbox_add("general", "0123456789abcdef0123456789abcdef", "hello", 1700000000000);
  (void)cache.outbox_acknowledge("0123456789abcdef0123456789abcdef", 4, 1700000000001, "alice");
  (void)cache.raise_receipt("general", "bob", "phone", ReceiptKind::read, 3);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto dir = fuzz::scratch_dir() / "cache";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    std::ofstream out(dir / "parley.db", std::ios::binary);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  {
    auto cache = store::Cache::open(dir.string(), "alice");
    if (cache) {
      exercise(**cache);
    } else {
      FUZZ_CHECK(!cache.status().message().empty(), "a refusal without a message");
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}
