/* STREAM-style triad (a = b + s*c) over arrays far larger than the caches: memory bandwidth. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define N (64L * 1024 * 1024)
#define REPS 8

int main(void) {
    double *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *c = malloc(N * sizeof *c);
    if (!a || !b || !c) return 1;
#pragma omp parallel for
    for (long i = 0; i < N; i++) { a[i] = 0; b[i] = 1; c[i] = 2; }
    double best = 1e30;
    for (int r = 0; r < REPS; r++) {
        double t = omp_get_wtime();
#pragma omp parallel for
        for (long i = 0; i < N; i++) a[i] = b[i] + 3.0 * c[i];
        t = omp_get_wtime() - t;
        if (t < best) best = t;
    }
    printf("%.3f %d %.1f\n", 3.0 * N * sizeof(double) / best / 1e9, omp_get_max_threads(), a[7]);
    return 0;
}
