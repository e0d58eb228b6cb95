/*
 * The xenstore wire protocol, as much as the react benchmark's C peers need: a unix-socket
 * connection, and messages as xsd_sockmsg (four native-endian u32: type, req_id, tx_id, len)
 * followed by len payload bytes. Header-only: each peer is one file built with one gcc call.
 */
#ifndef XMEM_BENCH_XS_WIRE_H
#define XMEM_BENCH_XS_WIRE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum { XS_READ = 2, XS_WATCH = 4, XS_WRITE = 11, XS_WATCH_EVENT = 15, XS_ERROR = 16 };
#define PAYLOAD_MAX 4096 /* xenstore's own bound on a message payload */

struct xs_msg { uint32_t type, req_id, tx_id, len; char body[PAYLOAD_MAX + 1]; };

static void die(const char *what) { perror(what); exit(1); }

static int xs_connect(const char *path) {
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen(path) >= sizeof addr.sun_path) { fprintf(stderr, "socket path too long\n"); exit(2); }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
  return fd;
}

/* Sends one request (payload a then b); returns its req_id. */
static uint32_t xs_send(int fd, uint32_t type, const char *a, size_t alen, const char *b, size_t blen) {
  static uint32_t next_req = 1;
  char buf[16 + PAYLOAD_MAX];
  uint32_t hdr[4] = { type, next_req++, 0, (uint32_t)(alen + blen) };
  if (alen + blen > PAYLOAD_MAX) { fprintf(stderr, "payload too long\n"); exit(1); }
  memcpy(buf, hdr, 16);
  memcpy(buf + 16, a, alen);
  memcpy(buf + 16 + alen, b, blen);
  for (size_t off = 0, n = 16 + alen + blen; off < n;) {
    ssize_t w = write(fd, buf + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) die("write");
    off += (size_t)w;
  }
  return hdr[1];
}

static int xs_read_full(int fd, void *buf, size_t n) {
  for (char *p = buf; n > 0;) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r; n -= (size_t)r;
  }
  return 0;
}

/* One message, its payload NUL-terminated; -1 when xenstored closed the connection. */
static int xs_recv(int fd, struct xs_msg *m) {
  if (xs_read_full(fd, m, 16) < 0) return -1;
  if (m->len > PAYLOAD_MAX) { fprintf(stderr, "oversized message %u\n", m->len); exit(1); }
  if (xs_read_full(fd, m->body, m->len) < 0) return -1;
  m->body[m->len] = '\0';
  return 0;
}

#endif
