/* The flush of the simulation's particle arrays with collective parallel HDF5, the usual file
 * layer of MPI codes, for comparison with h5pom's sharded runs (benches/mpi_flush.sh).
 *
 * Every rank holds its share of PARTICLES particles (positions and velocities, float32 [n, 3])
 * and, each of TICKS ticks, writes them into the same two datasets of one shared file
 * ([PARTICLES, 3], chunked by ~1 MiB of rows like h5pom's arrays), collectively
 * (H5FD_MPIO_COLLECTIVE), then flushes the file (H5Fflush), as h5pom's flush does. FILTER is
 * "none" or "deflate" (shuffle + deflate level 1: parallel HDF5 >= 1.10.2 writes filtered
 * datasets collectively only). Times are the maximum over ranks per tick, measured between
 * two barriers; the data changes every tick (so a tick cannot reuse the last one's bytes).
 *
 * Prints one line: phdf5 ranks=R particles=P filter=F ticks=T p50_ms=… min_ms=… max_ms=…
 * Build: mpicc -O2 -I/usr/include/hdf5/openmpi phdf5_flush.c \
 *          -L/usr/lib/x86_64-linux-gnu/hdf5/openmpi -lhdf5 -o phdf5_flush
 */
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 5) {
        if (rank == 0) fprintf(stderr, "usage: phdf5_flush FILE PARTICLES TICKS none|deflate\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    const char *path = argv[1];
    hsize_t total = strtoull(argv[2], NULL, 10);
    int ticks = atoi(argv[3]);
    int deflate = strcmp(argv[4], "deflate") == 0;
    hsize_t base = total / size, rem = total % size;
    hsize_t n = base + ((hsize_t)rank < rem);
    hsize_t first = rank * base + ((hsize_t)rank < rem ? (hsize_t)rank : rem);
    float *pos = malloc(n * 3 * sizeof(float)), *vel = malloc(n * 3 * sizeof(float));
    /* Random values like the simulation's (positions in a box of side 100, velocities of
     * order 1): full-entropy mantissas, so deflate has the simulation's work to do. */
    unsigned long long x = 0x9E3779B97F4A7C15ULL ^ (first + 1);
    for (hsize_t i = 0; i < n * 3; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        pos[i] = (float)(x >> 40) * (100.0f / 16777216.0f);
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        vel[i] = (float)(x >> 40) * (2.0f / 16777216.0f) - 1.0f;
    }

    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    hsize_t dims[2] = {total, 3};
    hsize_t rows = (1 << 20) / 12;
    if (rows > total) rows = total;
    hsize_t chunk[2] = {rows, 3};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    if (deflate) {
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, 1);
    }
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t ds[2] = {
        H5Dcreate2(file, "positions", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
        H5Dcreate2(file, "velocities", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
    };
    hsize_t start[2] = {first, 0}, count[2] = {n, 3};
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t mem = H5Screate_simple(2, count, NULL);
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);

    double *t = malloc(ticks * sizeof(double));
    for (int k = 0; k < ticks; k++) {
        for (hsize_t i = 0; i < n * 3; i++) { /* every value moves, as in the simulation */
            pos[i] += vel[i] * 0.05f;
        }
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        if (H5Dwrite(ds[0], H5T_NATIVE_FLOAT, mem, space, dxpl, pos) < 0 ||
            H5Dwrite(ds[1], H5T_NATIVE_FLOAT, mem, space, dxpl, vel) < 0 ||
            H5Fflush(file, H5F_SCOPE_LOCAL) < 0) {
            fprintf(stderr, "rank %d: write failed\n", rank);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        double mine = MPI_Wtime() - t0, worst;
        MPI_Reduce(&mine, &worst, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        t[k] = worst * 1e3;
    }
    if (rank == 0) {
        qsort(t, ticks, sizeof(double), cmp);
        printf("phdf5 ranks=%d particles=%llu filter=%s ticks=%d p50_ms=%.1f min_ms=%.1f "
               "max_ms=%.1f\n",
               size, (unsigned long long)total, deflate ? "deflate" : "none", ticks,
               t[ticks / 2], t[0], t[ticks - 1]);
    }
    H5Pclose(dxpl); H5Sclose(mem); H5Sclose(space);
    H5Dclose(ds[0]); H5Dclose(ds[1]); H5Pclose(dcpl); H5Pclose(fapl); H5Fclose(file);
    free(pos); free(vel); free(t);
    MPI_Finalize();
    return 0;
}
