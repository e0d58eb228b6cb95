/*
 * The react benchmark's floor: the driver's side in C too, so nothing on the path runs a
 * runtime. With bench/native/bare-reactor.c watching ROOT, it writes ROOT/<d>/report (a JSON
 * report with a "commit" number) on one connection and times, on a second connection that
 * watches ROOT, until ROOT/<d>/target appears: report written → reactor's watch → read →
 * write → seen. That is the least a watch-driven balancer can take on this machine.
 *
 *   floor-driver SOCKET ROOT SAMPLES SPACING_MS   (prints one JSON line: p50, p99, max in ms)
 */
#include <time.h>
#include "xs-wire.h"

/* One message or exit: the daemon going away mid-run is an error here. */
static uint32_t recv_msg(int fd, struct xs_msg *m) {
  if (xs_recv(fd, m) < 0) { fprintf(stderr, "xenstored closed the connection\n"); exit(1); }
  return m->type;
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
  int writer = xs_connect(argv[1]), watcher = xs_connect(argv[1]);
  static struct xs_msg msg;
  xs_send(watcher, XS_WATCH, root, strlen(root) + 1, "floor", 6);
  while (recv_msg(watcher, &msg) != XS_WATCH) {} /* its reply; the first event follows */
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
    xs_send(writer, XS_WRITE, report, strlen(report) + 1, value, (size_t)vlen);
    for (;;) { /* skip the events of our own report write */
      if (recv_msg(watcher, &msg) == XS_WATCH_EVENT && strcmp(msg.body, target) == 0) break;
    }
    lat[i] = now_ms() - t0;
    if (recv_msg(writer, &msg) == XS_ERROR) { fprintf(stderr, "write %s: %s\n", report, msg.body); return 1; }
    usleep((useconds_t)spacing_ms * 1000);
  }
  qsort(lat, (size_t)samples, sizeof(double), by_value);
  printf("{\"p50Ms\":%.3f,\"p99Ms\":%.3f,\"maxMs\":%.3f}\n",
         lat[samples / 2], lat[samples * 99 / 100], lat[samples - 1]);
  return 0;
}
