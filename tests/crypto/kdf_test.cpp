// HKDF-SHA-256 against RFC 5869 Appendix A.1-A.3, X25519 low-order inputs,
// and known answers for the ratchet KDFs (vectors computed independently
// with Python's hmac and hashlib).
#include <doctest/doctest.h>
#include <sodium.h>

#include <algorithm>
#include <string>
#include <string_view>

#include "crypto/hkdf.hpp"
#include "crypto/ratchet.hpp"
#include "crypto/x3dh.hpp"

using namespace parley::crypto;

namespace {

Bytes unhex(std::string_view h) {
  Bytes out(h.size() / 2);
  size_t len = 0;
  REQUIRE(sodium_hex2bin(out.data(), out.size(), h.data(), h.size(), nullptr, &len, nullptr) == 0);
  REQUIRE(len == out.size());
  return out;
}

Key32 key(std::string_view h) {
  const Bytes b = unhex(h);
  REQUIRE(b.size() == 32);
  Key32 k;
  std::copy(b.begin(), b.end(), k.begin());
  return k;
}

template <class C>
std::string hex(const C& c) {
  std::string out(c.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), c.data(), c.size());
  out.pop_back();
  return out;
}

Bytes range(int from, int to) {
  Bytes b;
  for (int i = from; i < to; ++i) b.push_back(static_cast<std::uint8_t>(i));
  return b;
}

struct Rfc5869Case {
  Bytes ikm, salt, info;
  std::size_t length;
  const char* prk;
  const char* okm;
};

}  // namespace

TEST_CASE("HKDF-SHA-256 matches RFC 5869 test cases 1-3") {
  REQUIRE(sodium_ready());
  const Rfc5869Case cases[] = {
      // A.1
      {Bytes(22, 0x0b), range(0x00, 0x0d), range(0xf0, 0xfa), 42,
       "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
       "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
      // A.2
      {range(0x00, 0x50), range(0x60, 0xb0), range(0xb0, 0x100), 82,
       "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
       "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e5"
       "90e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"},
      // A.3: empty salt and info
      {Bytes(22, 0x0b), Bytes{}, Bytes{}, 42,
       "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
       "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
  };
  for (const auto& c : cases) {
    const Key32 prk = hkdf_extract(c.salt, c.ikm);
    CHECK(hex(prk) == c.prk);
    Bytes okm(c.length);
    REQUIRE(hkdf_expand(prk, c.info, okm));
    CHECK(hex(okm) == c.okm);
    Bytes okm2(c.length);
    REQUIRE(hkdf(c.salt, c.ikm, c.info, okm2));
    CHECK(okm2 == okm);
  }
}

TEST_CASE("HKDF-Expand refuses more than 255 blocks") {
  const Key32 prk{};
  Bytes ok(255 * 32);
  CHECK(hkdf_expand(prk, {}, ok));
  Bytes too_long(255 * 32 + 1);
  CHECK_FALSE(hkdf_expand(prk, {}, too_long));
}

TEST_CASE("X25519 refuses low-order points") {
  REQUIRE(sodium_ready());
  const KeyPair kp = KeyPair::generate();
  const char* low_order[] = {
      // 0 (order 4 point class: all-zero u)
      "0000000000000000000000000000000000000000000000000000000000000000",
      // 1 (order 1)
      "0100000000000000000000000000000000000000000000000000000000000000",
      // a point of order 8
      "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
      // the other point of order 8
      "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
      // p - 1 (order 2)
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      // p (non-canonical 0)
      "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      // p + 1 (non-canonical 1)
      "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  };
  for (const char* h : low_order) {
    CAPTURE(h);
    Key32 out;
    out.fill(0xAA);
    CHECK_FALSE(x25519(out, kp.secret, key(h)));
    CHECK(out == Key32{});
  }
  // A genuine public key works, and both sides agree.
  const KeyPair other = KeyPair::generate();
  Key32 a, b;
  REQUIRE(x25519(a, kp.secret, other.pub));
  REQUIRE(x25519(b, other.secret, kp.pub));
  CHECK(a == b);
}

TEST_CASE("X25519 matches RFC 7748 section 6.1") {
  const Key32 alice_sk = key("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const Key32 bob_pk = key("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  Key32 shared;
  REQUIRE(x25519(shared, alice_sk, bob_pk));
  CHECK(hex(shared) == "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
}

TEST_CASE("KDF_CK known answer: HMAC-SHA-256 with constants 0x01 and 0x02") {
  const Key32 ck = key("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  Key32 mk, next;
  kdf_ck(ck, mk, next);
  CHECK(hex(mk) == "9b4c8120a4823a95f47cde17a244f4507244ee6e3957d1fab9fa29b44d3829b7");
  CHECK(hex(next) == "4304c22c84a53755ab08ead8d97a8d429be5efa480682d7ad1da27f73e1fbe1d");
}

TEST_CASE("KDF_RK known answer: HKDF(salt = rk, IKM = dh, info \"Parley ratchet\")") {
  const Key32 rk = key("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  const Key32 dh = key("202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f");
  Key32 new_rk, ck;
  kdf_rk(rk, dh, new_rk, ck);
  CHECK(hex(new_rk) == "6a395439e7ac87d660e261a112da4498655cfa4040ea8438b8665495830a3964");
  CHECK(hex(ck) == "c4b09e5650cb4fe582ac8ff27f6eba53da71953ed15df5df693d771224782dda");
}

TEST_CASE("HKDF-Extract with a zero salt: the fast path equals the general one") {
  for (std::size_t len : {0u, 1u, 32u, 64u, 65u, 200u}) {
    CAPTURE(len);
    Bytes ikm(len);
    for (std::size_t i = 0; i < len; ++i) ikm[i] = static_cast<std::uint8_t>(i * 7 + 3);
    CHECK(hkdf_extract_zero_salt(ikm) == hkdf_extract(Key32{}, ikm));
    CHECK(hkdf_extract_zero_salt(ikm) == hkdf_extract(ByteView{}, ikm));
  }
}
