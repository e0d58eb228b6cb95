/*
 * The react benchmark's native peer: the least any balancer written in C must do, with no
 * runtime in the way. On one unix-socket connection to xenstored it watches a subtree; for each
 * event on <root>/<domid>/report it reads the report, takes its "commit" number and writes it
 * to <root>/<domid>/target. One request in flight; events that arrive while a reply is awaited
 * are queued.
 *
 *   bare-reactor SOCKET ROOT      (prints "ready\n" once the watch is registered; exits on EOF
 *                                  of stdin or of the socket)
 */
#include <poll.h>
#include "xs-wire.h"

#define QUEUE_MAX 64

static int fd;
static char queue[QUEUE_MAX][PAYLOAD_MAX + 1];
static int queued;

static void recv_or_exit(struct xs_msg *m) {
  if (xs_recv(fd, m) < 0) exit(0); /* the daemon went away: the run is over */
}

/* Sends a request and waits for its reply; watch events meanwhile go to the queue. */
static void call(uint32_t type, const char *a, size_t alen, const char *b, size_t blen, struct xs_msg *reply) {
  uint32_t id = xs_send(fd, type, a, alen, b, blen);
  for (;;) {
    recv_or_exit(reply);
    if (reply->type == XS_WATCH_EVENT) {
      if (queued < QUEUE_MAX) memcpy(queue[queued++], reply->body, reply->len + 1);
      continue;
    }
    if (reply->req_id == id) return;
  }
}

static void react(const char *root, const char *path) {
  size_t rl = strlen(root);
  if (strncmp(path, root, rl) != 0 || path[rl] != '/') return;
  char *end;
  long domid = strtol(path + rl + 1, &end, 10);
  if (end == path + rl + 1 || strcmp(end, "/report") != 0) return;
  static struct xs_msg reply;
  call(XS_READ, path, strlen(path) + 1, "", 0, &reply);
  if (reply.type == XS_ERROR) return;
  const char *c = strstr(reply.body, "\"commit\":");
  if (!c) return;
  long commit = strtol(c + 9, NULL, 10);
  char target[PAYLOAD_MAX], value[32];
  int tl = snprintf(target, sizeof target, "%s/%ld/target", root, domid);
  int vl = snprintf(value, sizeof value, "%ld", commit);
  call(XS_WRITE, target, (size_t)tl + 1, value, (size_t)vl, &reply);
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: %s SOCKET ROOT\n", argv[0]); return 2; }
  fd = xs_connect(argv[1]);
  static struct xs_msg reply;
  call(XS_WATCH, argv[2], strlen(argv[2]) + 1, "b", 2, &reply);
  if (reply.type == XS_ERROR) { fprintf(stderr, "watch: %s\n", reply.body); return 1; }
  printf("ready\n");
  fflush(stdout);
  struct pollfd fds[2] = { { .fd = fd, .events = POLLIN }, { .fd = 0, .events = POLLIN } };
  for (;;) {
    while (queued > 0) {
      char path[PAYLOAD_MAX + 1];
      memcpy(path, queue[0], sizeof path);
      memmove(queue[0], queue[1], (size_t)--queued * sizeof queue[0]);
      react(argv[2], path);
    }
    if (poll(fds, 2, -1) < 0 && errno != EINTR) die("poll");
    if (fds[1].revents) return 0; /* the driver closed stdin: finish */
    if (fds[0].revents & POLLIN) {
      static struct xs_msg m;
      recv_or_exit(&m);
      if (m.type == XS_WATCH_EVENT) react(argv[2], m.body);
    } else if (fds[0].revents) {
      return 0;
    }
  }
}
