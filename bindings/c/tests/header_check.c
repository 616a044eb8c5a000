/* parley.h compiles on its own as strict C99 (ctest c-header). */
#include "parley.h"

int parley_header_check(void);
int parley_header_check(void) {
  parley_client_options options = PARLEY_CLIENT_OPTIONS_INIT;
  parley_transport_callbacks transport = {PARLEY_TRANSPORT_CALLBACKS_VERSION, NULL, NULL, NULL,
                                          NULL};
  parley_receipt_summary summary = {0, 0, 0};
  options.transport = &transport;
  return (int)options.version + (int)summary.members;
}
