// Property tests of the CRDT engine: random concurrent edits on several
// replicas, delivered in random orders with duplicates, converge; concurrent
// runs typed at one place never interleave; encodings round-trip; random and
// mutated bytes are refused cleanly.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "crdt/document.hpp"

using parley::crdt::AgentId;
using parley::crdt::Document;

namespace {

const char* const kWords[] = {"a", "bc", "def", "ü", "😀", "xyz ", "\n", "0123456789"};

void random_edit(Document& doc, std::mt19937& rng) {
  int what = static_cast<int>(rng() % 10);
  if (what < 5 || doc.size() == 0) {
    size_t pos = rng() % (doc.size() + 1);
    REQUIRE(doc.insert(pos, kWords[rng() % std::size(kWords)]).ok());
  } else if (what < 8) {
    size_t pos = rng() % doc.size();
    size_t n = 1 + rng() % std::min<size_t>(doc.size() - pos, 5);
    REQUIRE(doc.remove(pos, n).ok());
  } else if (what == 8) {
    doc.undo();
  } else {
    doc.redo();
  }
}

}  // namespace

TEST_CASE("crdt property: replicas converge under random delivery with duplicates") {
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    CAPTURE(seed);
    std::mt19937 rng(seed);
    const size_t n = 2 + seed % 4;
    std::vector<Document> docs;
    for (size_t i = 0; i < n; ++i) docs.emplace_back(AgentId(100 + i * 7919 % 13));
    std::vector<std::string> sent;              // every update made so far
    std::vector<std::vector<size_t>> inbox(n);  // indexes into sent, per replica
    for (int round = 0; round < 30; ++round) {
      for (size_t i = 0; i < n; ++i) {
        int edits = static_cast<int>(rng() % 4);
        for (int e = 0; e < edits; ++e) random_edit(docs[i], rng);
        sent.push_back(docs[i].take_update());
        for (size_t j = 0; j < n; ++j) {
          if (j == i) continue;
          inbox[j].push_back(sent.size() - 1);
          if (rng() % 4 == 0) inbox[j].push_back(sent.size() - 1);  // duplicate
        }
      }
      for (size_t j = 0; j < n; ++j) {  // deliver some, in random order
        std::shuffle(inbox[j].begin(), inbox[j].end(), rng);
        size_t take = rng() % (inbox[j].size() + 1);
        for (size_t k = 0; k < take; ++k) REQUIRE(docs[j].apply_update(sent[inbox[j][k]]).ok());
        inbox[j].erase(inbox[j].begin(), inbox[j].begin() + static_cast<std::ptrdiff_t>(take));
      }
      if (rng() % 5 == 0) {  // a replica restarts from its snapshot
        size_t j = rng() % n;
        if (docs[j].pending() == 0) {
          auto loaded = Document::load_snapshot(docs[j].encode_snapshot(), docs[j].agent());
          REQUIRE(loaded.ok());
          REQUIRE(loaded->text() == docs[j].text());
          docs[j] = std::move(*loaded);
        }
      }
    }
    for (size_t j = 0; j < n; ++j) {
      std::shuffle(inbox[j].begin(), inbox[j].end(), rng);
      for (size_t k : inbox[j]) REQUIRE(docs[j].apply_update(sent[k]).ok());
    }
    for (size_t j = 0; j < n; ++j) {
      CHECK(docs[j].pending() == 0);
      CHECK(docs[j].text() == docs[0].text());
      CHECK(docs[j].state_vector() == docs[0].state_vector());
    }
    // A newcomer catches up from one state-vector diff.
    Document late(999);
    REQUIRE(late.apply_update(docs[1].encode_update(late.state_vector())).ok());
    CHECK(late.text() == docs[0].text());
    CHECK(late.encode_snapshot() != "");
  }
}

TEST_CASE("crdt property: concurrent runs at one place never interleave") {
  for (uint32_t seed = 1; seed <= 60; ++seed) {
    CAPTURE(seed);
    std::mt19937 rng(seed);
    Document base(1);
    REQUIRE(base.insert(0, "<<>>").ok());
    const size_t n = 2 + seed % 3;
    std::vector<Document> docs;
    std::vector<std::string> typed;
    for (size_t i = 0; i < n; ++i) {
      auto d = Document::load_snapshot(base.encode_snapshot(), 10 + rng() % 1000 * 4 + i);
      REQUIRE(d.ok());
      docs.push_back(std::move(*d));
      std::string word(3 + rng() % 5, static_cast<char>('a' + i));
      typed.push_back(word);
      size_t pos = 2;
      for (char c : word) REQUIRE(docs[i].insert(pos++, std::string(1, c)).ok());  // forwards
    }
    std::vector<std::string> updates;
    for (Document& d : docs) updates.push_back(d.take_update());
    for (Document& d : docs) {
      std::vector<size_t> order(n);
      for (size_t k = 0; k < n; ++k) order[k] = k;
      std::shuffle(order.begin(), order.end(), rng);
      for (size_t k : order) REQUIRE(d.apply_update(updates[k]).ok());
    }
    std::string text = docs[0].text();
    for (Document& d : docs) CHECK(d.text() == text);
    for (const std::string& w : typed) CHECK(text.find(w) != std::string::npos);
  }
}

TEST_CASE("crdt property: runs typed backwards at one place never interleave") {
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    CAPTURE(seed);
    std::mt19937 rng(seed);
    Document base(1);
    REQUIRE(base.insert(0, "<<>>").ok());
    std::vector<Document> docs;
    std::vector<std::string> typed;
    for (size_t i = 0; i < 3; ++i) {
      auto d = Document::load_snapshot(base.encode_snapshot(), 10 + rng() % 1000 * 4 + i);
      REQUIRE(d.ok());
      docs.push_back(std::move(*d));
      std::string word(3 + rng() % 5, static_cast<char>('a' + i));
      for (size_t k = 0; k < word.size(); ++k) word[k] = static_cast<char>(word[k] + k % 2 * 8);
      typed.push_back(word);
      for (size_t k = word.size(); k-- > 0;) {  // last character first, each at position 2
        REQUIRE(docs[i].insert(2, word.substr(k, 1)).ok());
      }
    }
    std::vector<std::string> updates;
    for (Document& d : docs) updates.push_back(d.take_update());
    for (Document& d : docs) {
      for (const std::string& u : updates) REQUIRE(d.apply_update(u).ok());
    }
    std::string text = docs[0].text();
    for (Document& d : docs) CHECK(d.text() == text);
    for (const std::string& w : typed) CHECK(text.find(w) != std::string::npos);
  }
}

TEST_CASE("crdt property: undoing every step restores each earlier text") {
  for (uint32_t seed = 1; seed <= 100; ++seed) {
    CAPTURE(seed);
    std::mt19937 rng(seed);
    Document doc(1);
    std::vector<std::string> texts{doc.text()};
    for (uint32_t i = 0; i < 2 + seed % 60; ++i) {
      size_t before = doc.size();
      if (rng() % 3 == 0 && doc.size() > 0) {
        size_t pos = rng() % doc.size();
        REQUIRE(doc.remove(pos, 1 + rng() % std::min<size_t>(doc.size() - pos, 4)).ok());
      } else {
        REQUIRE(doc.insert(rng() % (doc.size() + 1), kWords[rng() % std::size(kWords)]).ok());
      }
      REQUIRE(doc.size() != before);
      texts.push_back(doc.text());
    }
    for (size_t i = texts.size() - 1; i > 0; --i) {
      REQUIRE(doc.undo());
      REQUIRE(doc.text() == texts[i - 1]);
    }
    CHECK(!doc.undo());
    for (size_t i = 1; i < texts.size(); ++i) {
      REQUIRE(doc.redo());
      REQUIRE(doc.text() == texts[i]);
    }
    CHECK(!doc.redo());
  }
}

TEST_CASE("crdt property: encodings round-trip") {
  std::mt19937 rng(7);
  Document a(1);
  Document b(2);
  for (int i = 0; i < 300; ++i) {
    random_edit(rng() % 2 == 0 ? a : b, rng);
    if (i % 17 == 0) {
      REQUIRE(b.apply_update(a.take_update()).ok());
      REQUIRE(a.apply_update(b.take_update()).ok());
    }
  }
  for (Document* d : {&a, &b}) {
    auto loaded = Document::load_snapshot(d->encode_snapshot(), d->agent());
    REQUIRE(loaded.ok());
    CHECK(loaded->text() == d->text());
    CHECK(loaded->state_vector() == d->state_vector());
    CHECK(loaded->encode_snapshot() == d->encode_snapshot());
    auto sv =
        parley::crdt::decode_state_vector(parley::crdt::encode_state_vector(d->state_vector()));
    REQUIRE(sv.ok());
    CHECK(*sv == d->state_vector());
    Document copy(50);
    REQUIRE(copy.apply_update(d->encode_update({})).ok());
    CHECK(copy.text() == d->text());
  }
}

TEST_CASE("crdt property: random and mutated bytes are refused without a crash") {
  std::mt19937 rng(11);
  Document src(1);
  Document other(2);
  for (int i = 0; i < 60; ++i) random_edit(i % 3 == 0 ? other : src, rng);
  REQUIRE(src.apply_update(other.take_update()).ok());
  const std::string samples[] = {src.encode_update({}), src.encode_snapshot(),
                                 parley::crdt::encode_state_vector(src.state_vector())};
  for (int i = 0; i < 3000; ++i) {
    std::string bytes;
    if (i % 3 == 0) {
      bytes.resize(rng() % 64);
      for (char& c : bytes) c = static_cast<char>(rng());
      if (rng() % 2 == 0) bytes.replace(0, std::min<size_t>(4, bytes.size()), "PC\x01U");
    } else {
      bytes = samples[rng() % std::size(samples)];
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
      if (rng() % 3 == 0) bytes.resize(rng() % bytes.size());
    }
    Document doc(3);
    parley::Status st = doc.apply_update(bytes);
    if (!st) CHECK(st.code() == parley::StatusCode::corrupt);
    (void)doc.text();
    REQUIRE(doc.insert(0, "x").ok());  // still usable
    auto loaded = Document::load_snapshot(bytes, 4);
    if (loaded.ok()) {
      REQUIRE(loaded->insert(0, "y").ok());
      (void)loaded->text();
    }
    (void)parley::crdt::decode_state_vector(bytes);
  }
}
