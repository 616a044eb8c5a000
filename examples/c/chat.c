/* parley-c-chat: a line chat in one channel, written against parley.h in C99.
 *
 *   PARLEY_TOKEN=$(parley-server mint-token --key server.key --user alice) \
 *     parley-c-chat ws://127.0.0.1:7700 ./alice-data general
 *
 * Lines typed are sent to the channel; messages, typing and state changes are
 * printed. "/quit" or end of input leaves. It pulls events with
 * parley_client_next_event in its own loop, as an app's event loop would
 * (docs/c-api.md, "Event loop integration").
 */
#define _POSIX_C_SOURCE 200809L

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parley.h"

static void print_event(const parley_event *ev) {
  switch (ev->kind) {
    case PARLEY_EVENT_STATE_CHANGED:
      printf("* %s\n", ev->json);
      break;
    case PARLEY_EVENT_MESSAGE_RECEIVED:
    case PARLEY_EVENT_TYPING_CHANGED:
    case PARLEY_EVENT_MESSAGE_SENT:
      printf("%s: %s\n", parley_event_kind_name(ev->kind), ev->json);
      break;
    case PARLEY_EVENT_CHANNEL_REQUEST_DONE:
      if (ev->status != PARLEY_OK) {
        printf("! request %llu failed: %s (%s)\n", (unsigned long long)ev->request, ev->message,
               ev->reason);
      } else {
        printf("* joined %s\n", ev->channel);
      }
      break;
    default:
      break; /* receipts, presence, ...: see docs/c-api.md for their JSON */
  }
  fflush(stdout);
}

int main(int argc, char **argv) {
  parley_client_options options = PARLEY_CLIENT_OPTIONS_INIT;
  parley_client *client = NULL;
  const char *token = getenv("PARLEY_TOKEN");
  const char *channel;
  uint64_t join = 0;
  char line[4096];
  int running = 1;
  int rc;

  if (argc != 4 || token == NULL) {
    fprintf(stderr, "usage: PARLEY_TOKEN=... %s SERVER_URL DATA_DIR CHANNEL\n", argv[0]);
    return 2;
  }
  channel = argv[3];
  options.server_url = argv[1];
  options.token = token;
  options.data_dir = argv[2];
  rc = parley_client_create(&client, &options);
  if (rc != PARLEY_OK) {
    fprintf(stderr, "parley-c-chat: %s (%s)\n", parley_error_last(), parley_error_last_reason());
    return 1;
  }
  if (parley_channel_join(&join, client, channel) != PARLEY_OK) {
    fprintf(stderr, "parley-c-chat: %s\n", parley_error_last());
    parley_client_free(client);
    return 1;
  }

  while (running) {
    struct pollfd in;
    parley_event *ev = NULL;
    in.fd = 0;
    in.events = POLLIN;
    in.revents = 0;
    /* Wait for input up to 100 ms, then drain whatever events came. */
    if (poll(&in, 1, 100) > 0) {
      if (fgets(line, sizeof line, stdin) == NULL) {
        running = 0;
      } else {
        char *id = NULL;
        line[strcspn(line, "\r\n")] = '\0';
        if (strcmp(line, "/quit") == 0) {
          running = 0;
        } else if (line[0] != '\0') {
          if (parley_message_send(&id, client, channel, line) != PARLEY_OK) {
            printf("! %s (%s)\n", parley_error_last(), parley_error_last_reason());
          }
          parley_string_free(id);
        }
      }
    }
    while (parley_client_next_event(&ev, client, 0) == PARLEY_OK && ev != NULL) {
      print_event(ev);
      parley_event_free(ev);
    }
  }
  parley_client_free(client);
  return 0;
}
