// parley.h compiles as C++ too, with the project's warnings.
#include "parley.h"

int parley_header_check_cxx();
int parley_header_check_cxx() {
  parley_client_options options = PARLEY_CLIENT_OPTIONS_INIT;
  return static_cast<int>(options.version);
}
