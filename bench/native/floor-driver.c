/*
 * The react benchmark's floor: the driver's side in C too, so nothing on the path runs a
 * runtime. With bench/native/bare-reactor.c watching ROOT, it writes ROOT/<d>/report (a JSON
 * report with a "commit" number) on one connection and times, on a second connection that
 * watches ROOT, until ROOT/<d>/target appears: report written → reactor's watch → read →
 * write → seen. That is the least a watch-driven balancer can take on this machine.
 *
 *   floor-driver SOCKET ROOT SAMPLES SPACING_MS   (prints one JSON line: p50, p99, max in ms)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { XS_WATCH = 4, XS_WRITE = 11, XS_WATCH_EVENT = 15, XS_ERROR = 16 };
#define PAYLOAD_MAX 4096

static uint32_t next_req = 1;

static void die(const char *what) { perror(what); exit(1); }

static int connect_to(const char *path) {
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen(path) >= sizeof addr.sun_path) { fprintf(stderr, "socket path too long\n"); exit(2); }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
  return fd;
}

static void send_msg(int fd, uint32_t type, const char *a, size_t alen, const char *b, size_t blen) {
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
}

static void read_full(int fd, void *buf, size_t n) {
  for (char *p = buf; n > 0;) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) { fprintf(stderr, "xenstored closed the connection\n"); exit(1); }
    p += r; n -= (size_t)r;
  }
}

/* One message; returns its type, the payload NUL-terminated in body. */
static uint32_t recv_msg(int fd, char *body) {
  uint32_t hdr[4];
  read_full(fd, hdr, 16);
  if (hdr[3] > PAYLOAD_MAX) { fprintf(stderr, "oversized message\n"); exit(1); }
  read_full(fd, body, hdr[3]);
  body[hdr[3]] = '\0';
  return hdr[0];
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc != 5) { fprintf(stderr, "usage: %s SOCKET ROOT SAMPLES SPACING_MS\n", argv[0]); return 2; }
  const char *root = argv[2];
  int samples = atoi(argv[3]), spacing_ms = atoi(argv[4]);
  if (samples < 1 || spacing_ms < 0) { fprintf(stderr, "SAMPLES ≥ 1, SPACING_MS ≥ 0\n"); return 2; }
  int writer = connect_to(argv[1]), watcher = connect_to(argv[1]);
  static char body[PAYLOAD_MAX + 1];
  send_msg(watcher, XS_WATCH, root, strlen(root) + 1, "floor", 6);
  while (recv_msg(watcher, body) != XS_WATCH) {} /* its reply; the first event follows */
  usleep(100 * 1000);
  double *lat = malloc(sizeof(double) * (size_t)samples);
  if (!lat) die("malloc");
  for (int i = 0; i < samples; i++) {
    char report[128], target[128], value[64];
    int domid = 1 + i % 100;
    snprintf(report, sizeof report, "%s/%d/report", root, domid);
    snprintf(target, sizeof target, "%s/%d/target", root, domid);
    int vlen = snprintf(value, sizeof value, "{\"v\":1,\"commit\":%d}", 1048576 + i);
    double t0 = now_ms();
    send_msg(writer, XS_WRITE, report, strlen(report) + 1, value, (size_t)vlen);
    for (;;) { /* skip the events of our own report write */
      uint32_t type = recv_msg(watcher, body);
      if (type == XS_WATCH_EVENT && strcmp(body, target) == 0) break;
    }
    lat[i] = now_ms() - t0;
    if (recv_msg(writer, body) == XS_ERROR) { fprintf(stderr, "write %s: %s\n", report, body); return 1; }
    usleep((useconds_t)spacing_ms * 1000);
  }
  qsort(lat, (size_t)samples, sizeof(double), by_value);
  printf("{\"p50Ms\":%.3f,\"p99Ms\":%.3f,\"maxMs\":%.3f}\n",
         lat[samples / 2], lat[samples * 99 / 100 < samples ? samples * 99 / 100 : samples - 1], lat[samples - 1]);
  return 0;
}
