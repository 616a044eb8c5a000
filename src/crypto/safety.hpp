// Safety numbers: what two users compare (read aloud, or as a QR code) to
// check that no one sits between them, and a digest of one user's device
// keys for a cheap "did they change" test. docs/security.md.
//
// The construction follows the shape of Signal's numeric fingerprint
// (libsignal NumericFingerprintGenerator, version 0 of the display form),
// with a user's whole device set in place of one identity key:
//
//   keys   = the user's IdentityPublic values, each encoded as 64 bytes
//            Ed25519 public key || X25519 public key, sorted by those bytes,
//            duplicates removed, concatenated;
//   hash   = SHA-512(version || keys || user), version = 2 bytes big-endian 0;
//   5,200 times: hash = SHA-512(hash || keys);
//   digits = the first 30 bytes of hash as six 5-byte big-endian integers,
//            each mod 100,000 printed as 5 decimal digits (30 digits).
//
// (Signal starts the loop from the unhashed input rather than from its hash;
// here the input is hashed once first: 5,201 SHA-512 in all.) The two users'
// 30-digit strings are put in lexicographic order and joined, so both sides
// get the same 60 digits, shown as 12 groups of 5 separated by spaces.
//
// SHA-512 and SHA-256 are libsodium's. Thread-safe: no shared state.
#pragma once

#include <string>
#include <vector>

#include "crypto/x3dh.hpp"

namespace parley::crypto {

// 60 decimal digits in 12 space-separated groups of five; the same whichever
// of the two users is `a`. An empty key set is allowed (and gives digits that
// match no set with keys).
std::string safety_number(const std::string& user_a, const std::vector<IdentityPublic>& keys_a,
                          const std::string& user_b, const std::vector<IdentityPublic>& keys_b);

// Lower-case hex SHA-256 (64 characters) of the sorted, deduplicated key
// encoding above: equal for equal key sets, whatever their order.
std::string identity_set_digest(const std::vector<IdentityPublic>& keys);

}  // namespace parley::crypto
