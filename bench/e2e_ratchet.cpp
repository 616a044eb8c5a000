// End-to-end encryption throughput (issue 9): Parley's Double Ratchet
// (src/crypto, libsodium) and, when built with libolm, libolm's Olm session
// side by side in the same run.
//
// A message is 1 KiB of plaintext, encrypted by one side and decrypted by the
// other; the two together count as one message. Two patterns:
//   ping-pong  Alice and Bob alternate, so every message carries a new
//              ratchet key and costs a DH ratchet step;
//   burst      Alice sends N messages without an answer (in batches of
//              --batch, each encrypted in full before Bob decrypts it in
//              order, so memory stays bounded); no DH step after the first.
// Each round sets up fresh sessions first, untimed: Parley with X3DH (signed
// prekey + one-time prekey), Olm with an account pair, a one-time key and
// olm_create_outbound_session / olm_create_inbound_session; then one message
// each way, so that both sides have sending and receiving chains. The figure
// is messages / wall time of the timed loop (randomness, allocation and, for
// Olm, its base64 wire form included); the median of --rounds rounds. The
// same per CPU second of the thread is shown too: on a shared machine the
// wall figure also counts the time other processes had the CPU.
// Each decrypted plaintext is compared with what was sent.
//
//   parley-bench-e2e [--pingpong 20000] [--burst 200000] [--rounds 3]
//                    [--size 1024] [--batch 1000] [--pending 0] [--no-olm]
//
// --pending N adds a Parley-only figure: the burst while Bob holds N skipped
// message keys (N messages sent before the burst and never delivered; at
// most 1,000, the ratchet's MAX_SKIP), the case where a decrypt that copied
// the state would copy them all each time.
//
// Exit status: 0 when every message decrypted to what was sent (the goals are
// reported, not enforced), 1 otherwise.
#include <sodium.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "crypto/ratchet.hpp"
#include "crypto/x3dh.hpp"

#ifdef PARLEY_HAVE_OLM
#include <olm/olm.h>
#endif

using namespace parley;
using namespace parley::bench;

namespace {

constexpr double kGoalPingPong = 7000;  // msg/s, issue 9
constexpr double kGoalBurst = 120000;   // msg/s, issue 9

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "e2e_ratchet: %s\n", why.c_str());
  std::exit(1);
}

std::vector<std::uint8_t> plaintext(std::size_t size) {
  std::vector<std::uint8_t> p(size);
  for (std::size_t i = 0; i < size; ++i) p[i] = static_cast<std::uint8_t>(i * 131 + 7);
  return p;
}

// Messages per second of a timed loop: by wall time (the figure) and by the
// thread's CPU time (what the loop costs when other processes share the CPU).
struct Rate {
  double wall = 0;
  double cpu = 0;
};

class Timer {
 public:
  Timer() : wall_(Clock::now()), cpu_ns_(thread_cpu_ns()) {}
  Rate rate(long messages) const {
    const auto n = static_cast<double>(messages);
    return {n / (ms_since(wall_) / 1e3), n / ((thread_cpu_ns() - cpu_ns_) / 1e9)};
  }

 private:
  Clock::time_point wall_;
  double cpu_ns_;
};

struct Pattern {
  long pingpong = 0;
  long burst = 0;
  long batch = 0;
};

// ---- Parley ---------------------------------------------------------------------

struct ParleySession {
  std::optional<crypto::Ratchet> alice;
  std::optional<crypto::Ratchet> bob;
};

void parley_roundtrip(crypto::Ratchet& from, crypto::Ratchet& to, const crypto::Bytes& plain) {
  auto m = from.encrypt(plain);
  if (!m) die("parley: encrypt failed");
  auto p = to.decrypt(*m);
  if (!p || *p != plain) die("parley: decrypt failed");
}

// X3DH, both ratchets, then one message each way (untimed).
ParleySession parley_session(const crypto::Bytes& plain) {
  const crypto::Identity a = crypto::Identity::generate();
  const crypto::Identity b = crypto::Identity::generate();
  const crypto::SignedPrekey spk = crypto::make_signed_prekey(b, 1);
  const crypto::KeyPair opk = crypto::KeyPair::generate();
  const crypto::PrekeyBundle bundle{b.public_part(), spk.id, spk.key.pub,
                                    spk.signature,   7,      opk.pub};
  const auto init = crypto::x3dh_initiate(a, bundle);
  if (!init) die("parley: x3dh_initiate failed");
  const auto resp = crypto::x3dh_respond(b, spk.key, &opk, a.public_part(), init->ephemeral_pub);
  if (!resp) die("parley: x3dh_respond failed");
  ParleySession s;
  s.alice = crypto::Ratchet::init_initiator(init->secret.sk, spk.key.pub, init->secret.ad);
  if (!s.alice) die("parley: init_initiator failed");
  s.bob = crypto::Ratchet::init_responder(resp->sk, spk.key, resp->ad);
  parley_roundtrip(*s.alice, *s.bob, plain);
  parley_roundtrip(*s.bob, *s.alice, plain);
  return s;
}

Rate parley_pingpong(long count, const crypto::Bytes& plain) {
  ParleySession s = parley_session(plain);
  const Timer timer;
  for (long i = 0; i < count; ++i) {
    if (i % 2 == 0) {
      parley_roundtrip(*s.alice, *s.bob, plain);
    } else {
      parley_roundtrip(*s.bob, *s.alice, plain);
    }
  }
  return timer.rate(count);
}

// `pending` > 0: first leaves that many messages undelivered, so that Bob
// holds as many skipped keys throughout (parley only).
Rate parley_burst(long count, long batch, const crypto::Bytes& plain, long pending = 0) {
  ParleySession s = parley_session(plain);
  for (long i = 0; i < pending; ++i) {
    if (!s.alice->encrypt(plain)) die("parley: encrypt failed");
  }
  std::vector<crypto::Bytes> wire(static_cast<std::size_t>(batch));
  const Timer timer;
  for (long done = 0; done < count;) {
    const long n = std::min(batch, count - done);
    for (long i = 0; i < n; ++i) {
      auto m = s.alice->encrypt(plain);
      if (!m) die("parley: encrypt failed");
      wire[static_cast<std::size_t>(i)] = std::move(*m);
    }
    for (long i = 0; i < n; ++i) {
      auto p = s.bob->decrypt(wire[static_cast<std::size_t>(i)]);
      if (!p || *p != plain) die("parley: decrypt failed");
    }
    done += n;
  }
  return timer.rate(count);
}

// ---- libolm ---------------------------------------------------------------------

#ifdef PARLEY_HAVE_OLM

std::vector<std::uint8_t> random_bytes(std::size_t n) {
  std::vector<std::uint8_t> r(n == 0 ? 1 : n);
  randombytes_buf(r.data(), r.size());
  return r;
}

void check(std::size_t rc, const char* what, const char* error) {
  if (rc == olm_error()) die(fmt::format("olm: {}: {}", what, error));
}

// The first string value after `"key":` in a JSON text (enough for Olm's
// identity-key and one-time-key objects).
std::string json_string_after(const std::string& json, const std::string& key) {
  auto at = json.find("\"" + key + "\"");
  if (at == std::string::npos) die("olm: no " + key + " in " + json);
  // The first quoted string after the key that is a value (skip a nested key).
  auto colon = json.find(':', at);
  auto open = json.find('"', colon + 1);
  auto brace = json.find('{', colon + 1);
  if (brace != std::string::npos && brace < open) {  // {"AAAAAQ":"key"}
    colon = json.find(':', brace);
    open = json.find('"', colon + 1);
  }
  auto close = json.find('"', open + 1);
  return json.substr(open + 1, close - open - 1);
}

class OlmAccountBox {
 public:
  OlmAccountBox() : mem_(olm_account_size()), account_(olm_account(mem_.data())) {
    auto r = random_bytes(olm_create_account_random_length(account_));
    check(olm_create_account(account_, r.data(), r.size()), "create_account",
          olm_account_last_error(account_));
  }
  ~OlmAccountBox() { olm_clear_account(account_); }
  OlmAccountBox(const OlmAccountBox&) = delete;
  OlmAccountBox& operator=(const OlmAccountBox&) = delete;
  OlmAccount* get() { return account_; }

  std::string curve25519_identity() {
    std::string keys(olm_account_identity_keys_length(account_), '\0');
    check(olm_account_identity_keys(account_, keys.data(), keys.size()), "identity_keys",
          olm_account_last_error(account_));
    return json_string_after(keys, "curve25519");
  }
  std::string one_time_key() {
    auto r = random_bytes(olm_account_generate_one_time_keys_random_length(account_, 1));
    check(olm_account_generate_one_time_keys(account_, 1, r.data(), r.size()), "one_time_keys",
          olm_account_last_error(account_));
    std::string keys(olm_account_one_time_keys_length(account_), '\0');
    check(olm_account_one_time_keys(account_, keys.data(), keys.size()), "one_time_keys",
          olm_account_last_error(account_));
    olm_account_mark_keys_as_published(account_);
    return json_string_after(keys, "curve25519");
  }

 private:
  std::vector<std::uint8_t> mem_;
  OlmAccount* account_;
};

class OlmSessionBox {
 public:
  OlmSessionBox() : mem_(olm_session_size()), session_(olm_session(mem_.data())) {}
  ~OlmSessionBox() { olm_clear_session(session_); }
  OlmSessionBox(const OlmSessionBox&) = delete;
  OlmSessionBox& operator=(const OlmSessionBox&) = delete;
  OlmSession* get() { return session_; }

 private:
  std::vector<std::uint8_t> mem_;
  OlmSession* session_;
};

// One encrypted Olm message: its type and base64 body.
struct OlmWire {
  std::size_t type = 0;
  std::string body;
};

// Reused buffers, as an app's receive loop would keep them.
struct OlmScratch {
  std::vector<std::uint8_t> random;
  std::string message;
  std::vector<std::uint8_t> plain;
};

void olm_seal(OlmSession* s, const crypto::Bytes& plain, OlmScratch& scratch, OlmWire& out) {
  out.type = olm_encrypt_message_type(s);
  scratch.random.resize(std::max<std::size_t>(olm_encrypt_random_length(s), 1));
  randombytes_buf(scratch.random.data(), scratch.random.size());
  out.body.resize(olm_encrypt_message_length(s, plain.size()));
  const std::size_t len =
      olm_encrypt(s, plain.data(), plain.size(), scratch.random.data(),
                  olm_encrypt_random_length(s), out.body.data(), out.body.size());
  check(len, "encrypt", olm_session_last_error(s));
  out.body.resize(len);
}

void olm_open(OlmSession* s, const OlmWire& in, const crypto::Bytes& plain, OlmScratch& scratch) {
  scratch.message.assign(in.body);  // olm_decrypt destroys its input
  scratch.plain.resize(plain.size() + 64);
  const std::size_t len = olm_decrypt(s, in.type, scratch.message.data(), scratch.message.size(),
                                      scratch.plain.data(), scratch.plain.size());
  check(len, "decrypt", olm_session_last_error(s));
  if (len != plain.size() || std::memcmp(scratch.plain.data(), plain.data(), len) != 0)
    die("olm: decrypted text differs");
}

struct OlmPair {
  OlmAccountBox alice_account;
  OlmAccountBox bob_account;
  OlmSessionBox alice;
  OlmSessionBox bob;
  OlmScratch scratch;
  OlmWire wire;

  // Outbound session to Bob's identity and one-time key, his inbound session
  // from the pre-key message, then a reply (untimed).
  explicit OlmPair(const crypto::Bytes& plain) {
    const std::string bob_identity = bob_account.curve25519_identity();
    const std::string bob_otk = bob_account.one_time_key();
    auto r = random_bytes(olm_create_outbound_session_random_length(alice.get()));
    check(olm_create_outbound_session(alice.get(), alice_account.get(), bob_identity.data(),
                                      bob_identity.size(), bob_otk.data(), bob_otk.size(), r.data(),
                                      r.size()),
          "create_outbound_session", olm_session_last_error(alice.get()));
    olm_seal(alice.get(), plain, scratch, wire);
    if (wire.type != OLM_MESSAGE_TYPE_PRE_KEY) die("olm: first message is not a pre-key message");
    std::string copy = wire.body;
    check(olm_create_inbound_session(bob.get(), bob_account.get(), copy.data(), copy.size()),
          "create_inbound_session", olm_session_last_error(bob.get()));
    olm_open(bob.get(), wire, plain, scratch);
    check(olm_remove_one_time_keys(bob_account.get(), bob.get()), "remove_one_time_keys",
          olm_account_last_error(bob_account.get()));
    roundtrip(bob.get(), alice.get(), plain);
  }

  void roundtrip(OlmSession* from, OlmSession* to, const crypto::Bytes& plain) {
    olm_seal(from, plain, scratch, wire);
    olm_open(to, wire, plain, scratch);
  }
};

Rate olm_pingpong(long count, const crypto::Bytes& plain) {
  OlmPair s(plain);
  const Timer timer;
  for (long i = 0; i < count; ++i) {
    if (i % 2 == 0) {
      s.roundtrip(s.alice.get(), s.bob.get(), plain);
    } else {
      s.roundtrip(s.bob.get(), s.alice.get(), plain);
    }
  }
  return timer.rate(count);
}

Rate olm_burst(long count, long batch, const crypto::Bytes& plain) {
  OlmPair s(plain);
  std::vector<OlmWire> wire(static_cast<std::size_t>(batch));
  const Timer timer;
  for (long done = 0; done < count;) {
    const long n = std::min(batch, count - done);
    for (long i = 0; i < n; ++i)
      olm_seal(s.alice.get(), plain, s.scratch, wire[static_cast<std::size_t>(i)]);
    for (long i = 0; i < n; ++i)
      olm_open(s.bob.get(), wire[static_cast<std::size_t>(i)], plain, s.scratch);
    done += n;
  }
  return timer.rate(count);
}

std::string olm_version() {
  std::uint8_t major = 0, minor = 0, patch = 0;
  olm_get_library_version(&major, &minor, &patch);
  return fmt::format("{}.{}.{}", major, minor, patch);
}

#endif  // PARLEY_HAVE_OLM

}  // namespace

int main(int argc, char** argv) {
  Args args(argc, argv);
  Pattern pattern;
  pattern.pingpong = args.num("pingpong", 20000);
  pattern.burst = args.num("burst", 200000);
  pattern.batch = args.num("batch", 1000);
  const long pending = args.num("pending", 0);
  const long rounds = args.num("rounds", 3);
  const long size = args.num("size", 1024);
  bool with_olm = !args.flag("no-olm");
  if (pattern.pingpong < 2 || pattern.burst < 1 || pattern.batch < 1 || rounds < 1 || size < 0 ||
      size > (1 << 24) || pending < 0 || pending > crypto::Ratchet::kMaxSkip) {
    std::fprintf(stderr,
                 "usage: parley-bench-e2e [--pingpong N] [--burst N] [--rounds R] [--size BYTES] "
                 "[--batch N] [--pending N] [--no-olm]\n");
    return 2;
  }
  if (!crypto::sodium_ready()) die("libsodium cannot be initialised");
#ifndef PARLEY_HAVE_OLM
  with_olm = false;
#endif
  const crypto::Bytes plain = plaintext(static_cast<std::size_t>(size));

  Report report("e2e_ratchet");  // before the runs: it reads the load average here
  // Per figure, the rounds' wall-time and CPU-time rates.
  struct Series {
    std::vector<double> wall, cpu;
    void add(Rate r) {
      wall.push_back(r.wall);
      cpu.push_back(r.cpu);
    }
    double median_wall() const { return median(wall); }
    double median_cpu() const { return median(cpu); }
  };
  Series p_pp, p_burst, p_pending, o_pp, o_burst;
  for (long r = 0; r < rounds; ++r) {
    p_pp.add(parley_pingpong(pattern.pingpong, plain));
    p_burst.add(parley_burst(pattern.burst, pattern.batch, plain));
    if (pending > 0) p_pending.add(parley_burst(pattern.burst, pattern.batch, plain, pending));
#ifdef PARLEY_HAVE_OLM
    if (with_olm) {
      o_pp.add(olm_pingpong(pattern.pingpong, plain));
      o_burst.add(olm_burst(pattern.burst, pattern.batch, plain));
    }
#endif
    std::fprintf(stderr, "round %ld/%ld done\n", r + 1, rounds);
  }

  report.note(fmt::format(
      "{} B messages, encrypt + decrypt = one message; ping-pong {} messages (a DH step each), "
      "burst {} (batches of {}); median of {} rounds",
      size, pattern.pingpong, pattern.burst, pattern.batch, rounds));
  report.note(
      "msg/s by wall time (the goals), and by the thread's CPU time (leaves out time other "
      "processes had the CPU)");
  report.at_least("parley ping-pong", p_pp.median_wall(), "msg/s", kGoalPingPong);
  report.at_least("parley burst", p_burst.median_wall(), "msg/s", kGoalBurst);
  report.info("parley ping-pong, by CPU time", p_pp.median_cpu(), "msg/s", 0);
  report.info("parley burst, by CPU time", p_burst.median_cpu(), "msg/s", 0);
  if (pending > 0) {
    report.info(fmt::format("parley burst, {} skipped keys held", pending), p_pending.median_wall(),
                "msg/s", 0);
    report.info(fmt::format("parley burst, {} skipped keys held, by CPU time", pending),
                p_pending.median_cpu(), "msg/s", 0);
    report.field("pending_skipped", static_cast<double>(pending));
    report.field("parley_burst_pending_msg_s", p_pending.median_wall());
    report.field("parley_burst_pending_cpu_msg_s", p_pending.median_cpu());
  }
  report.field("size", static_cast<double>(size));
  report.field("pingpong_messages", static_cast<double>(pattern.pingpong));
  report.field("burst_messages", static_cast<double>(pattern.burst));
  report.field("rounds", static_cast<double>(rounds));
  report.field("parley_pingpong_msg_s", p_pp.median_wall());
  report.field("parley_burst_msg_s", p_burst.median_wall());
  report.field("parley_pingpong_cpu_msg_s", p_pp.median_cpu());
  report.field("parley_burst_cpu_msg_s", p_burst.median_cpu());
#ifdef PARLEY_HAVE_OLM
  if (with_olm) {
    report.note("libolm " + olm_version() + " (Olm session, AES-256-CBC + HMAC-SHA-256, base64)");
    report.info("libolm ping-pong", o_pp.median_wall(), "msg/s", 0);
    report.info("libolm burst", o_burst.median_wall(), "msg/s", 0);
    report.info("libolm ping-pong, by CPU time", o_pp.median_cpu(), "msg/s", 0);
    report.info("libolm burst, by CPU time", o_burst.median_cpu(), "msg/s", 0);
    report.info("ratio parley/libolm, ping-pong", p_pp.median_wall() / o_pp.median_wall(), "x", 2);
    report.info("ratio parley/libolm, burst", p_burst.median_wall() / o_burst.median_wall(), "x",
                2);
    report.field("olm_version", olm_version());
    report.field("olm_pingpong_msg_s", o_pp.median_wall());
    report.field("olm_burst_msg_s", o_burst.median_wall());
    report.field("olm_pingpong_cpu_msg_s", o_pp.median_cpu());
    report.field("olm_burst_cpu_msg_s", o_burst.median_cpu());
    report.field("ratio_pingpong", p_pp.median_wall() / o_pp.median_wall());
    report.field("ratio_burst", p_burst.median_wall() / o_burst.median_wall());
  }
#endif
  if (!with_olm) report.note("libolm: not measured (built without it, or --no-olm)");
  report.field("met", p_pp.median_wall() >= kGoalPingPong && p_burst.median_wall() >= kGoalBurst
                          ? "yes"
                          : "no");
  report.print();
  return 0;
}
