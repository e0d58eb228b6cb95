/*
 * The react benchmark's native peer: the least any balancer written in C must do, with no
 * runtime in the way. On one unix-socket connection to xenstored it watches a subtree; for each
 * event on <root>/<domid>/report it reads the report, takes its "commit" number and writes it
 * to <root>/<domid>/target. One request in flight; events that arrive while a reply is awaited
 * are queued. Wire format: xenstore's xsd_sockmsg (four little-endian u32: type, req_id,
 * tx_id, len) then len payload bytes.
 *
 *   bare-reactor SOCKET ROOT      (prints "ready\n" once the watch is registered; exits on EOF
 *                                  of stdin or of the socket)
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum { XS_READ = 2, XS_WATCH = 4, XS_WRITE = 11, XS_WATCH_EVENT = 15, XS_ERROR = 16 };
#define PAYLOAD_MAX 4096 /* xenstore's own bound on a message payload */
#define QUEUE_MAX 64

struct msg { uint32_t type, req_id, tx_id, len; char body[PAYLOAD_MAX + 1]; };

static int fd;
static uint32_t next_req = 1;
static char queue[QUEUE_MAX][PAYLOAD_MAX + 1];
static int queued;

static void die(const char *what) { perror(what); exit(1); }

static void full_write(const void *buf, size_t n) {
  for (const char *p = buf; n > 0;) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) die("write");
    p += w; n -= (size_t)w;
  }
}

static int full_read(void *buf, size_t n) {
  for (char *p = buf; n > 0;) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r; n -= (size_t)r;
  }
  return 0;
}

static uint32_t send_msg(uint32_t type, const char *a, size_t alen, const char *b, size_t blen) {
  uint32_t hdr[4] = { type, next_req++, 0, (uint32_t)(alen + blen) };
  char buf[sizeof hdr + 2 * PAYLOAD_MAX];
  if (alen + blen > PAYLOAD_MAX) { fprintf(stderr, "payload too long\n"); exit(1); }
  memcpy(buf, hdr, sizeof hdr);
  memcpy(buf + sizeof hdr, a, alen);
  memcpy(buf + sizeof hdr + alen, b, blen);
  full_write(buf, sizeof hdr + alen + blen);
  return hdr[1];
}

static void recv_msg(struct msg *m) {
  if (full_read(m, 16) < 0) exit(0); /* the daemon went away: the run is over */
  if (m->len > PAYLOAD_MAX) { fprintf(stderr, "oversized message %u\n", m->len); exit(1); }
  if (full_read(m->body, m->len) < 0) exit(0);
  m->body[m->len] = '\0';
}

/* Sends a request and waits for its reply; watch events meanwhile go to the queue. */
static void call(uint32_t type, const char *a, size_t alen, const char *b, size_t blen, struct msg *reply) {
  uint32_t id = send_msg(type, a, alen, b, blen);
  for (;;) {
    recv_msg(reply);
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
  static struct msg reply;
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
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen(argv[1]) >= sizeof addr.sun_path) { fprintf(stderr, "socket path too long\n"); return 2; }
  strcpy(addr.sun_path, argv[1]);
  if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0) die("socket");
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
  static struct msg reply;
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
      static struct msg m;
      recv_msg(&m);
      if (m.type == XS_WATCH_EVENT) react(argv[2], m.body);
    }
    else if (fds[0].revents) return 0;
  }
}
