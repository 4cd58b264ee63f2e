/*
 * The relabel bench's floor (scripts/bench/relabel.ts): the barest relabel there is, a physical
 * nftw walk (no symlinks followed, one filesystem) and one lsetxattr per entry, by full path, with
 * no read of the old label, no fd-relative safety and no result. Prints "<entries> <nanoseconds>".
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>

static const char *label;
static size_t label_len;
static long entries;
static long failures;

static int visit(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  entries++;
  if (lsetxattr(path, "security.selinux", label, label_len, 0) != 0) failures++;
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s ROOT LABEL\n", argv[0]);
    return 2;
  }
  label = argv[2];
  label_len = strlen(label) + 1;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (nftw(argv[1], visit, 64, FTW_PHYS | FTW_MOUNT | FTW_DEPTH) != 0) return 1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%ld %lld\n", entries, (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
  return failures == 0 ? 0 : 1;
}
