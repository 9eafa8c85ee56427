/* gpio-sample: records the values of sysfs files (gpio-sim's sim_gpioN/value) over time, for
 * the GPIO VM test (scripts/vm-gpio). Not part of the product.
 *
 *   gpio-sample OUT SECONDS INTERVAL_US FILE...
 *
 * Reads every FILE each INTERVAL_US microseconds (0: as fast as it can) for SECONDS seconds
 * and writes a line "<epoch µs> <v1> <v2> …" to OUT at the start and whenever any value
 * changes, then "end <epoch µs> <reads>" (so the sampling rate can be reported). Epoch
 * (CLOCK_REALTIME) microseconds, comparable with journal and log timestamps in the same VM.
 * Built statically on the build host (the image has no compiler). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: gpio-sample OUT SECONDS INTERVAL_US FILE...\n");
    return 2;
  }
  FILE *out = fopen(argv[1], "w");
  if (!out) { perror(argv[1]); return 1; }
  double seconds = atof(argv[2]);
  long interval = atol(argv[3]);
  int n = argc - 4;
  int fds[64];
  char last[64], cur[64];
  if (n > 64) n = 64;
  for (int i = 0; i < n; i++) {
    fds[i] = open(argv[4 + i], O_RDONLY);
    if (fds[i] < 0) { perror(argv[4 + i]); return 1; }
    last[i] = '?';
  }
  long long start = now_us(), end = start + (long long)(seconds * 1e6), reads = 0;
  int first = 1;
  for (;;) {
    long long t = now_us();
    if (t >= end) break;
    int changed = first;
    for (int i = 0; i < n; i++) {
      char buf[8];
      ssize_t r = pread(fds[i], buf, sizeof buf, 0);
      cur[i] = r > 0 ? buf[0] : 'E';
      if (cur[i] != last[i]) changed = 1;
    }
    reads++;
    if (changed) {
      fprintf(out, "%lld", t);
      for (int i = 0; i < n; i++) { fprintf(out, " %c", cur[i]); last[i] = cur[i]; }
      fputc('\n', out);
      fflush(out);
      first = 0;
    }
    if (interval > 0) usleep(interval);
  }
  fprintf(out, "end %lld %lld\n", now_us(), reads);
  fclose(out);
  return 0;
}
