// Frames from a client, as the server first sees them: wire::decode_client_frame.
#include "codec_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view frame(reinterpret_cast<const char*>(data), size);
  parley::fuzz::check_decoder<parley::wire::ClientMessage>(
      frame, [](std::string_view f) { return parley::wire::decode_client_frame(f); });
  return 0;
}
