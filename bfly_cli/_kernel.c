/* bfly_cli._kernel: the compiled CPU kernel that applies a prepared chain of factor steps.
 *
 * Python (bfly_cli/kernel.py) does all the bookkeeping in numpy: it casts the factors to one
 * working precision, splits complex numbers into separate real and imaginary planes, reorders the
 * twiddles into the layouts below and merges consecutive permutations.  This file only runs the
 * resulting list of operations, one vector at a time, so that a vector stays in L1/L2 cache across
 * all log2 N stages.  Arrays arrive through the buffer protocol, except on the one-call path
 * (call/apply), which uses numpy's C API to allocate its result (see the include).
 *
 * Working storage is "split": a vector of N complex numbers is two planes re[N], im[N], so every
 * stage is plain real multiply-adds over contiguous runs, which gcc -O3 vectorizes.
 *
 * Operations (kinds match kernel.py's _OP_* constants):
 *   GATHER  data int32 idx[N]:                 dst[t] = src[idx[t]] (a permutation or a layout change)
 *   BF      stride s:                         the canonical stage: pairs (pos, pos+s), contiguous in
 *                                              `low`, so runs of length s (used for s >= rows)
 *   BFT     stride s, rows R, cols C = N/R:   the same stage on the vector stored transposed as an
 *                                              (R, C) matrix (element blk*R + r lives at r*C + blk):
 *                                              stride s < R mixes whole rows, runs of length C.  This
 *                                              is how the small strides 1, 2, 4 avoid scalar code.
 *   DIAG    data d[N] (real) or (2, N) (re, im planes)
 *   REAL    zero the imaginary plane
 *   R2, R2T one stage of a `rank2` step (natural / transposed order, geometry as BF / BFT): every
 *           position carries a 2-slot state; pair members (u, w) mix through a real 4x4 block
 *           [y_o slot s] = sum_{c, r} m[o][s][c][r] [member c slot r].  Slot 0 is the plane the
 *           other ops see; slot 1 is a second plane per part (real: at +N; complex: re at +2N,
 *           im at +3N, so a complex vector's real and imaginary parts run the same real blocks).
 *           flags bit 0 (FIRST): slot 1 is not read (it is zero in the reference), only r = 0;
 *           flags bit 1 (LAST): slot 1 is not written (only slot 0 is read afterwards), s = 0.
 *           So a stage stores K = 4 * (FIRST ? 1 : 2) * (LAST ? 1 : 2) coefficient planes per
 *           block, in (o, s, c, r) order with the dropped index left out.
 *           flags bit 2 (MIXED, never with FIRST or LAST): after the 16 planes of every block come
 *           N/16 block flags (one number per block of 8 pairs).  A block whose flag is nonzero has
 *           the unit form [[I, W0], [I, W1]] (kernel_rank2.py moved 2x2 gauges between stages):
 *           y_o = member 0 + W_o member 1, and its first 8 planes hold W0, W1 in (o, s, r)
 *           order; 8 multiply-adds per pair instead of 16, and half the planes to stream.
 *           flags bit 3 (UNIT, alone): every block has the unit form, and a block is just its
 *           8 planes (no flags).
 *   GATHER with flags bit 0 (STATE) also permutes the slot-1 planes (a layout change inside a
 *           rank2 step, where slot 1 is live).
 *   FFT, FFTT  a butterfly stage whose blocks have the FFT form (kernel_stages.py moved the
 *           diagonal scalings between stages): y0 = l x0 + w x1, y1 = l x0 - w x1, or with DIF
 *           y0 = l (x0 + x1), y1 = w (x0 - x1); geometry as BF / BFT.  flags: REALW (w real: one
 *           plane, also in a complex plan), UNIT (w = 1: no plane, additions only), SCALED (a
 *           real scale plane l follows w; else l = 1), DIF.  One complex multiply per pair, and
 *           2 planes to stream instead of 8.
 *   FFT2, FFT2T  two consecutive FFT stages (strides s and 2s, the same flags, not SCALED) in one
 *           pass (radix 4): members e + {0, d, 2d, 3d} (natural: d = s; transposed: d = s * C),
 *           stage s on (0, 1), (2, 3), then stage 2s on (0, 2), (1, 3), so each element is loaded
 *           and stored once per two stages.  Twiddles per block of 8 quads: the planes of pair
 *           (0, 1), of (2, 3), of (0, 2), of (1, 3), each as in FFT.
 *   UNVIEW  rows R = 8, cols C (a multiple of 8): leave the transposed view, dst[c R + r] =
 *           src[r C + c]: the GATHER a butterfly needs after its strides 1, 2, 4, done as 8x8
 *           register transposes (8 vector loads, 24 shuffles, 8 stores per 64 elements) instead
 *           of one indexed load per element.
 *   FFT3T   rows R = 8, cols C (a multiple of 8): the three FFT stages of strides 1, 2, 4 on the
 *           transposed view in one pass (radix 8), then leaving the view as UNVIEW does, into the
 *           other buffer: each column of 8 rows is loaded once, goes through the three stages in
 *           registers and is stored in natural order by the same 8x8 register transposes.  The
 *           stages share their FFT flags (REALW, UNIT, DIF); flags bit 4 + st says stage st has a
 *           scale plane.  Twiddles per block of 8 columns: stage 0's pairs (rows 0-1, 2-3, 4-5,
 *           6-7), stage 1's (0-2, 1-3, 4-6, 5-7), stage 2's (0-4 .. 3-7), each as in FFT.
 *   FFT3    stride s (a multiple of 8): the same three stages (strides s, 2s, 4s) in natural order,
 *           in place, on octets J0 + {0, s, .., 7s} + k; twiddles per block of 8 octets as FFT3T's.
 *   LOAD8   rows 8, cols C, data int32 [C/8 blocks][8 rows] then [C/8 blocks][8 lanes]: only as
 *           the first op, followed by an FFT3T of the same C.  The input vector itself is read
 *           straight into that FFT3T's registers instead of through a gather: row r of lane
 *           block g is the 8 consecutive input elements from first[g][r], and lane u of block g
 *           is view column col[g][u] (so the FFT3T's twiddles come in that lane order and its
 *           results are stored at 8 col[g][u]).  A learned DFT's bit reversal has this shape:
 *           kernel_stages.fuse_load finds it; the separate gather read every element by index,
 *           a quarter to a third of the whole plan's time.
 * Twiddles of a stage: N/2 pairs in the order the stage visits them, cut into blocks of
 * W = cstride = min(8, run length) pairs; each block stores its K planes of W values back to back:
 * K = 4 (a, b, c, d) real or 8 (ar, ai, br, bi, cr, ci, dr, di) complex, and
 * (x0, x1) <- [[a, b], [c, d]] (x0, x1).  So a stage reads its twiddles as one sequential stream.
 *
 * Threads: a persistent pool of workers (pthreads, GIL released) claims grains of the batch from
 * an atomic counter; see "threads" below.
 * Instruction sets: on x86-64 Linux with gcc the per-chunk driver is compiled three times
 * (x86-64-v4, x86-64-v3, i.e. AVX2+FMA, and the baseline) and picked at load time, so one binary
 * is portable and fast.  The vectors stay 256 bits wide in the v4 clone; what it adds is AVX-512VL's
 * 32 vector registers, so a radix-8 pass (8 complex values: 16 registers of data alone) stops
 * spilling: learned DFT-256 and 1024, complex64, batch 256, about 10% faster.
 */

#ifndef BFLY_TEMPLATE

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* numpy's C API, for the one-call path only (call/apply below): allocating the result with
 * PyArray_NewFromDescr and reading the input's fields directly costs ~0.1 us where calling
 * numpy.empty and exporting two buffers cost ~0.45 us, a third of a batch-1 call at N = 256.
 * Everything else still takes arrays through the buffer protocol. */
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#undef I /* numpy's headers pull in <complex.h>; the templated code below names a vector type I */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && __GNUC__ >= 11
#define BFLY_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BFLY_CLONES
#endif
#define BFLY_INLINE static inline __attribute__((always_inline))
#define BFLY_MAX_THREADS 256

enum { OP_GATHER = 0, OP_BF = 1, OP_BFT = 2, OP_DIAG = 3, OP_REAL = 4, OP_R2 = 5, OP_R2T = 6, OP_FFT = 7, OP_FFTT = 8, OP_FFT2 = 9, OP_FFT2T = 10, OP_UNVIEW = 11, OP_FFT3T = 12, OP_FFT3 = 13, OP_LOAD8 = 14 };
enum { FLAG_FIRST = 1, FLAG_LAST = 2, FLAG_MIXED = 4, FLAG_UNIT = 8, FLAG_STATE = 1 };
enum { FFT_REALW = 1, FFT_UNIT = 2, FFT_SCALED = 4, FFT_DIF = 8 };
#define FFT3_SCALED(st) (16 << (st)) /* FFT3T: stage st (0, 1, 2) has a scale plane */

typedef struct {
    int kind, flags;
    Py_ssize_t s, rows, cols, cstride;
    const void *data;
} op_t;

typedef struct {
    Py_ssize_t n;
    int is_complex, is_double;
    Py_ssize_t vs;           /* elements per vector in the scratch: 2N, or 4N for a complex plan with rank2 ops */
    Py_ssize_t so;           /* offset of the slot-1 plane from slot 0: N (real plan) or 2N (complex plan) */
    Py_ssize_t nops;
    op_t *ops;
    const int32_t *load_idx; /* a leading GATHER fused into the load, or NULL */
    const int32_t *load8;    /* a leading LOAD8's map, or NULL: then ops[1] (FFT3T) reads the input */
    int store_last;          /* the last op is an FFT stage of stride n/2 or a radix-4 pass of stride n/4:
                              * it can write the output itself */
    Py_ssize_t first_op;     /* index of the first op not fused into the load */
    int tile;                /* vectors processed together (they share each twiddle load) */
} core_t;

/* Twiddle planes per block of an FFT stage: w (complex: re, im; REALW: one; UNIT: none), then
 * the scale plane when SCALED. */
static inline Py_ssize_t fft_planes(int flags, int is_complex)
{
    Py_ssize_t w = (flags & FFT_UNIT) ? 0 : ((flags & FFT_REALW) || !is_complex) ? 1 : 2;
    return w + ((flags & FFT_SCALED) ? 1 : 0);
}

/* Twiddle planes per pair summed over the three stages of an FFT3T op. */
static inline Py_ssize_t fft3_planes(int flags, int is_complex)
{
    Py_ssize_t p = 3 * fft_planes(flags & 15 & ~FFT_SCALED, is_complex);
    for (int st = 0; st < 3; st++)
        p += (flags & FFT3_SCALED(st)) ? 1 : 0;
    return p;
}

/* Elements between the slot planes (and after the last) in a plan with rank2 ops.  A rank2 pass
 * walks 2 members x 2 slots x the tile's vectors at once: at N >= 1024 in single precision those
 * streams lie a multiple of 4 KiB apart, so they share L1 sets and every load waits on the
 * stores of the lanes before it (4K aliasing).  64 bytes of gap move each stream to its own sets:
 * DCT-4096 float32, batch 256, 15-25% faster. */
enum { R2_PAD = 16 };

/* Coefficient planes per block of a rank2 stage (see the header). */
static inline Py_ssize_t r2_planes(int flags)
{
    return (flags & FLAG_UNIT) ? 8 : 4 * ((flags & FLAG_FIRST) ? 1 : 2) * ((flags & FLAG_LAST) ? 1 : 2);
}

/* An FFT op's flags as compile-time arguments: CASE(M, SC, D) with M the twiddle planes per pair
 * (0: w = 1, 1: real w, 2: complex w), SC a scale plane, D the DIF form; each kernel body is
 * instantiated per case, so its inner loop has no flag tests.  _MD: ops without scale planes
 * (radix-4, and radix-8, whose per-stage scales are a run-time mask), CASE(M, D). */
#define BFLY_FFT_M(flags, cplx) (((flags) & FFT_UNIT) ? 0 : (((flags) & FFT_REALW) || !(cplx)) ? 1 : 2)
#define BFLY_FFT_DISPATCH(flags, cplx, CASE)                                                           \
    do {                                                                                               \
        switch (4 * BFLY_FFT_M(flags, cplx) + (((flags) & FFT_SCALED) ? 2 : 0) + (((flags) & FFT_DIF) ? 1 : 0)) { \
        case 0: CASE(0, 0, 0); break;                                                                  \
        case 4: CASE(1, 0, 0); break;                                                                  \
        case 5: CASE(1, 0, 1); break;                                                                  \
        case 6: CASE(1, 1, 0); break;                                                                  \
        case 7: CASE(1, 1, 1); break;                                                                  \
        case 8: CASE(2, 0, 0); break;                                                                  \
        case 9: CASE(2, 0, 1); break;                                                                  \
        case 10: CASE(2, 1, 0); break;                                                                 \
        default: CASE(2, 1, 1); break;                                                                 \
        }                                                                                              \
    } while (0)
#define BFLY_FFT_DISPATCH_MD(flags, cplx, CASE)                                                        \
    do {                                                                                               \
        switch (2 * BFLY_FFT_M(flags, cplx) + (((flags) & FFT_DIF) ? 1 : 0)) {                         \
        case 0: CASE(0, 0); break;                                                                     \
        case 2: CASE(1, 0); break;                                                                     \
        case 3: CASE(1, 1); break;                                                                     \
        case 4: CASE(2, 0); break;                                                                     \
        default: CASE(2, 1); break;                                                                    \
        }                                                                                              \
    } while (0)

/* ---- the templated numeric code: instantiated for float and double below ---- */
#define BFLY_TEMPLATE
#define T float
#define TI int32_t
#define SUF(name) name##_f
#include "_kernel.c"
#undef T
#undef TI
#undef SUF
#define T double
#define TI int64_t
#define SUF(name) name##_d
#include "_kernel.c"
#undef T
#undef TI
#undef SUF
#undef BFLY_TEMPLATE

/* ---- threads ----
 *
 * Why a pool: a call at N = 1024, batch 256 lasts about a millisecond, and creating and joining a
 * thread per call cost ~35 us on a 2-vCPU VM (waking an idle vCPU is the slow part), a visible
 * share of the half that the second thread saves.  So worker threads live across calls: created
 * lazily, they spin for BFLY_SPIN_NS after each batch (back-to-back calls find them awake) and
 * then sleep on a condition variable (an idle process burns no CPU).
 *
 * Why dynamic grains: the batch is cut into grains of whole tiles that every thread claims from
 * one atomic counter, so a worker that wakes late or loses its core to another process just
 * takes fewer grains instead of making the caller wait.  Each vector's result is the same bits
 * whichever thread and tile computes it, so results do not depend on the thread count.
 *
 * Joining is explicit: a worker takes part in a batch only if it registers (CAS on `state`)
 * before the caller closes the batch, and the caller waits only for the registered ones; a
 * worker still asleep when the work runs out is never waited for and never touches the batch.
 * One batch uses the pool at a time; a concurrent caller (another Python thread) starts its own
 * threads instead, as every call did before the pool. */

#ifndef BFLY_SPIN_NS
#define BFLY_SPIN_NS 200000 /* a worker stays awake this long after a batch */
#endif
#ifndef BFLY_GRAINS_PER_THREAD
#define BFLY_GRAINS_PER_THREAD 16 /* smaller grains: less idle tail, more counter traffic */
#endif

/* pool.state: generation (bits 33..63) | CLOSED (bit 32) | worker limit (16..31) | joined (0..15) */
#define ST_GEN(w) ((w) >> 33)
#define ST_CLOSED ((uint64_t)1 << 32)
#define ST_LIMIT(w) (((w) >> 16) & 0xffff)
#define ST_JOINED(w) ((w) & 0xffff)

typedef struct {
    const core_t *core;
    const char *x;
    char *y;
    int xc, yc;
    Py_ssize_t batch, grain;
    _Alignas(64) Py_ssize_t next; /* first unclaimed vector; own cache line (every thread writes it) */
} task_t;

typedef struct {
    void *scratch; /* this worker's tile buffers, grown to the largest plan it served */
    size_t bytes;
    uint64_t seen; /* last generation it saw */
} worker_t;

typedef struct {
    pthread_mutex_t lock;     /* with `wake`: sleeping workers */
    pthread_cond_t wake;
    pthread_mutex_t dispatch; /* held by the one caller whose batch is on the pool */
    int nworkers;
    _Alignas(64) uint64_t state;
    _Alignas(64) uint64_t done; /* registered workers that finished */
    task_t task;
} pool_t;

static pool_t pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, {0}};

static size_t scratch_bytes(const core_t *c)
{
    size_t elem = c->is_double ? sizeof(double) : sizeof(float);
    size_t bytes = 2 * (size_t)c->tile * (size_t)c->vs * elem; /* two buffers of `tile` vectors */
    return (bytes + 63) & ~(size_t)63;
}

static void run_vectors(const task_t *t, Py_ssize_t b0, Py_ssize_t count, void *scratch)
{
    const core_t *c = t->core;
    size_t elem = c->is_double ? sizeof(double) : sizeof(float);
    const char *x = t->x + (size_t)c->n * elem * (t->xc ? 2 : 1) * (size_t)b0;
    char *y = t->y + (size_t)c->n * elem * (t->yc ? 2 : 1) * (size_t)b0;
    if (c->is_double)
        run_range_d(c, (const double *)x, (double *)y, t->xc, t->yc, count, (double *)scratch);
    else
        run_range_f(c, (const float *)x, (float *)y, t->xc, t->yc, count, (float *)scratch);
}

/* Claim grains until none is left. */
static void work(task_t *t, void *scratch)
{
    for (;;) {
        Py_ssize_t b0 = __atomic_fetch_add(&t->next, t->grain, __ATOMIC_RELAXED);
        if (b0 >= t->batch)
            return;
        run_vectors(t, b0, t->batch - b0 < t->grain ? t->batch - b0 : t->grain, scratch);
    }
}

/* Grains of whole tiles, about BFLY_GRAINS_PER_THREAD per thread. */
static Py_ssize_t grain_size(const core_t *c, Py_ssize_t batch, int nthreads)
{
    Py_ssize_t g = batch / ((Py_ssize_t)nthreads * BFLY_GRAINS_PER_THREAD);
    g = (g + c->tile - 1) / c->tile * c->tile;
    return g > c->tile ? g : c->tile;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Spin (awake, so the next batch starts without a wake-up) and then sleep until a batch of a
 * generation after `seen` is published; returns that state word. */
static uint64_t wait_for_batch(uint64_t seen)
{
    int64_t until = now_ns() + BFLY_SPIN_NS;
    for (int k = 1;; k++) {
        uint64_t w = __atomic_load_n(&pool.state, __ATOMIC_ACQUIRE);
        if (ST_GEN(w) != seen)
            return w;
        if (k % 64 == 0 && now_ns() > until)
            break;
        cpu_relax();
    }
    /* the caller publishes before taking `lock`, so checking under `lock` cannot miss a wake-up */
    pthread_mutex_lock(&pool.lock);
    uint64_t w;
    while (ST_GEN(w = __atomic_load_n(&pool.state, __ATOMIC_ACQUIRE)) == seen)
        pthread_cond_wait(&pool.wake, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
    return w;
}

/* Register for the batch in `w` unless it is closed or has its workers; true if registered. */
static int try_join(uint64_t w)
{
    uint64_t gen = ST_GEN(w);
    while (ST_GEN(w) == gen && !(w & ST_CLOSED) && ST_JOINED(w) < ST_LIMIT(w))
        if (__atomic_compare_exchange_n(&pool.state, &w, w + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return 1;
    return 0;
}

static void *worker_main(void *arg)
{
    worker_t *self = arg;
    for (;;) {
        uint64_t w = wait_for_batch(self->seen);
        self->seen = ST_GEN(w);
        if (!try_join(w))
            continue;
        size_t need = scratch_bytes(pool.task.core);
        if (self->bytes < need) {
            free(self->scratch);
            self->scratch = aligned_alloc(64, need);
            self->bytes = self->scratch ? need : 0;
        }
        if (self->scratch) /* without scratch it claims nothing: the others do its share */
            work(&pool.task, self->scratch);
        __atomic_fetch_add(&pool.done, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

/* pthread_create with every signal blocked in the new thread, so Python's signal handling stays
 * with the interpreter's threads.  Returns pthread_create's code. */
static int start_thread(pthread_t *tid, void *(*fn)(void *), void *arg, int detached)
{
    sigset_t all, old;
    pthread_attr_t attr;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, detached ? PTHREAD_CREATE_DETACHED : PTHREAD_CREATE_JOINABLE);
    int rc = pthread_create(tid, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* Start workers until there are `want` (fewer if the system refuses); call with `dispatch` held. */
static void grow_pool(int want)
{
    while (pool.nworkers < want) {
        worker_t *wk = calloc(1, sizeof(worker_t));
        pthread_t tid;
        if (!wk)
            return;
        wk->seen = ST_GEN(__atomic_load_n(&pool.state, __ATOMIC_RELAXED));
        if (start_thread(&tid, worker_main, wk, 1) != 0) {
            free(wk);
            return;
        }
        __atomic_store_n(&pool.nworkers, pool.nworkers + 1, __ATOMIC_RELAXED);
    }
}

/* After fork only the forking thread exists: forget the parent's workers (and any batch or lock
 * another thread held), so the child's first threaded call starts a fresh pool. */
static void pool_after_fork_child(void)
{
    pool_t fresh = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, {0}};
    memcpy(&pool, &fresh, sizeof(pool));
}

/* Make `t` the pool's batch for up to `helpers` workers and wake the sleeping ones. */
static void publish_batch(const task_t *t, int helpers)
{
    pool.task = *t;
    __atomic_store_n(&pool.done, 0, __ATOMIC_RELAXED); /* published by the release store below */
    uint64_t w = __atomic_load_n(&pool.state, __ATOMIC_RELAXED);
    __atomic_store_n(&pool.state, ((ST_GEN(w) + 1) << 33) | ((uint64_t)helpers << 16), __ATOMIC_RELEASE);
    pthread_mutex_lock(&pool.lock);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
}

/* Close the batch to late workers, then wait for the registered ones to finish their last grain. */
static void close_batch(void)
{
    uint64_t joined = ST_JOINED(__atomic_fetch_or(&pool.state, ST_CLOSED, __ATOMIC_ACQ_REL));
    for (int k = 1; __atomic_load_n(&pool.done, __ATOMIC_ACQUIRE) < joined; k++)
        if (k % 1024 == 0)
            sched_yield(); /* a preempted worker needs a core more than we need to spin */
        else
            cpu_relax();
}

/* Run `t` on the pool with up to `helpers` workers besides the caller; -1 if the pool is busy. */
static int run_on_pool(task_t *t, int helpers, void *scratch)
{
    if (pthread_mutex_trylock(&pool.dispatch) != 0)
        return -1;
    grow_pool(helpers);
    publish_batch(t, helpers < pool.nworkers ? helpers : pool.nworkers);
    work(&pool.task, scratch);
    close_batch();
    pthread_mutex_unlock(&pool.dispatch);
    return 0;
}

static void *spawned_main(void *arg)
{
    task_t *t = arg;
    void *scratch = aligned_alloc(64, scratch_bytes(t->core));
    if (scratch) /* without scratch it claims nothing: the others do its share */
        work(t, scratch);
    free(scratch);
    return NULL;
}

/* The pool is busy with another caller's batch: run this one on threads of its own. */
static void run_spawned(task_t *t, int helpers, void *scratch)
{
    pthread_t tids[BFLY_MAX_THREADS];
    int started = 0;
    while (started < helpers && start_thread(&tids[started], spawned_main, t, 0) == 0)
        started++;
    work(t, scratch);
    for (int k = 0; k < started; k++)
        pthread_join(tids[k], NULL);
}

/* Run the whole batch on up to `nthreads` threads (the caller's included); `main_scratch` is the
 * caller's buffer, or NULL to allocate one.  Returns 0, or -1 when out of memory. */
static int run_batch(const core_t *core, const char *x, char *y, int xc, int yc, Py_ssize_t batch,
                     int nthreads, void *main_scratch)
{
    void *own = NULL;
    if (main_scratch == NULL && (main_scratch = own = aligned_alloc(64, scratch_bytes(core))) == NULL)
        return -1;
    Py_ssize_t max_threads = (batch + core->tile - 1) / core->tile; /* a thread per tile at most */
    if (nthreads > max_threads)
        nthreads = (int)max_threads;
    task_t t = {core, x, y, xc, yc, batch, 0, 0};
    t.grain = grain_size(core, batch, nthreads < 1 ? 1 : nthreads);
    if (nthreads <= 1)
        work(&t, main_scratch);
    else if (run_on_pool(&t, nthreads - 1, main_scratch) < 0)
        run_spawned(&t, nthreads - 1, main_scratch);
    free(own);
    return 0;
}

/* ---- the Python type: _kernel.Plan(n, is_complex, is_double, ops) ---- */

typedef struct {
    PyObject_HEAD
    core_t core;
    Py_buffer *views; /* one per op (len 0 when the op has no data) */
    void *scratch;    /* reused by the calling thread; guarded by `busy` */
    char busy;
    /* the one-call path (call, apply), set up by set_fast(); NULL / 0 until then */
    PyArray_Descr *out_descr; /* the dtype of a new result */
    int in_type;          /* the numpy type number of the input set_fast() was given */
    int in_complex;       /* ... and whether it is complex */
    Py_ssize_t max_batch; /* batches from this up go to the caller's general path (threads) */
    PyObject *owner;      /* apply(): the Python Plan whose general path ... (a cycle: GC support) */
    PyObject *general;    /* ... this function is (Plan._apply(owner, x, out, threads)) */
} PlanObject;

/* The Python Plan holds this object and this object holds the Python Plan (owner, for apply()'s
 * general path; a weak reference would break `f = Plan(...).apply` once the Plan is dropped), so
 * the type takes part in cyclic garbage collection. */
static int plan_traverse(PlanObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->owner);
    Py_VISIT(self->general);
    Py_VISIT(self->out_descr);
    return 0;
}

static int plan_clear(PlanObject *self)
{
    Py_CLEAR(self->owner);
    Py_CLEAR(self->general);
    Py_CLEAR(self->out_descr);
    return 0;
}

static void plan_dealloc(PlanObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->views) {
        for (Py_ssize_t k = 0; k < self->core.nops; k++)
            if (self->views[k].obj)
                PyBuffer_Release(&self->views[k]);
        PyMem_Free(self->views);
    }
    PyMem_Free(self->core.ops);
    free(self->scratch);
    plan_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Bytes an op's data must hold, so a bad plan is refused instead of read out of bounds. */
static Py_ssize_t op_data_bytes(const core_t *c, const op_t *op)
{
    Py_ssize_t elem = c->is_double ? 8 : 4;
    Py_ssize_t planes = c->is_complex ? 8 : 4;
    switch (op->kind) {
    case OP_GATHER: return c->n * 4;
    case OP_BF:
    case OP_BFT: return planes * (c->n / 2) * elem;
    case OP_DIAG: return (c->is_complex ? 2 : 1) * c->n * elem;
    case OP_R2:
    case OP_R2T: return (r2_planes(op->flags) * (c->n / 2) + ((op->flags & FLAG_MIXED) ? c->n / 16 : 0)) * elem;
    case OP_FFT:
    case OP_FFTT: return fft_planes(op->flags, c->is_complex) * (c->n / 2) * elem;
    case OP_FFT2:
    case OP_FFT2T: return fft_planes(op->flags, c->is_complex) * c->n * elem;
    case OP_FFT3:
    case OP_FFT3T: return fft3_planes(op->flags, c->is_complex) * (c->n / 2) * elem;
    case OP_LOAD8: return 2 * op->cols * 4;
    default: return 0;
    }
}

static int check_op(const core_t *c, const op_t *op, Py_ssize_t k)
{
    Py_ssize_t n = c->n;
    int bf = op->kind == OP_BF || op->kind == OP_R2 || op->kind == OP_FFT;
    int bft = op->kind == OP_BFT || op->kind == OP_R2T || op->kind == OP_FFTT;
    if (bf && (op->s < 1 || n % (2 * op->s) != 0 || op->cstride != (op->s < 8 ? op->s : 8))) {
        PyErr_Format(PyExc_ValueError, "op %zd: bad butterfly stride", k);
        return -1;
    }
    if (bft && (op->rows < 2 || op->rows * op->cols != n || op->s < 1 || op->rows % (2 * op->s) != 0 ||
                               op->cstride != (op->cols < 8 ? op->cols : 8))) {
        PyErr_Format(PyExc_ValueError, "op %zd: bad transposed butterfly geometry", k);
        return -1;
    }
    if (op->kind == OP_FFT2 && (op->s < 8 || op->s % 8 != 0 || n % (4 * op->s) != 0 || op->cstride != 8)) {
        PyErr_Format(PyExc_ValueError, "op %zd: bad radix-4 stride", k);
        return -1;
    }
    if (op->kind == OP_FFT2T && (op->rows < 4 || op->rows * op->cols != n || op->s < 1 || op->rows % (4 * op->s) != 0 ||
                                 op->cols % 8 != 0 || op->cstride != 8)) {
        PyErr_Format(PyExc_ValueError, "op %zd: bad transposed radix-4 geometry", k);
        return -1;
    }
    if (op->kind == OP_UNVIEW && (op->rows != 8 || op->cols * 8 != n || op->cols % 8 != 0)) {
        PyErr_Format(PyExc_ValueError, "op %zd: bad unview geometry", k);
        return -1;
    }
    if (op->kind == OP_FFT3T || op->kind == OP_FFT3) {
        int f = op->flags & 15;
        if (op->kind == OP_FFT3 ? (op->s < 8 || op->s % 8 != 0 || n % (8 * op->s) != 0 || op->cstride != 8)
                                : (op->rows != 8 || op->cols * 8 != n || op->cols % 8 != 0 || op->cstride != 8)) {
            PyErr_Format(PyExc_ValueError, "op %zd: bad radix-8 geometry", k);
            return -1;
        }
        if (op->flags < 0 || op->flags > 127 || (f & FFT_SCALED) || ((f & FFT_UNIT) && (op->flags & ~FFT_UNIT)) ||
            (!c->is_complex && !(f & (FFT_UNIT | FFT_REALW)))) {
            PyErr_Format(PyExc_ValueError, "op %zd: bad flags %d", k, op->flags);
            return -1;
        }
        return 0;
    }
    if (op->kind == OP_LOAD8) {
        if (k != 0 || op->rows != 8 || op->cols * 8 != n || op->cols % 8 != 0) {
            PyErr_Format(PyExc_ValueError, "op %zd: a LOAD8 must be the first op, with rows 8 and cols n / 8", k);
            return -1;
        }
        return 0;
    }
    if (op->kind < OP_GATHER || op->kind > OP_FFT3) {
        PyErr_Format(PyExc_ValueError, "op %zd: unknown kind %d", k, op->kind);
        return -1;
    }
    if (op->kind == OP_REAL && !c->is_complex) {
        PyErr_Format(PyExc_ValueError, "op %zd: REAL needs a complex plan", k);
        return -1;
    }
    int fft = op->kind == OP_FFT || op->kind == OP_FFTT, fft2 = op->kind == OP_FFT2 || op->kind == OP_FFT2T;
    if (fft2 && (op->flags & FFT_SCALED)) {
        PyErr_Format(PyExc_ValueError, "op %zd: bad flags %d", k, op->flags);
        return -1;
    }
    if (fft || fft2 ? (op->flags < 0 || op->flags > 15 || ((op->flags & FFT_UNIT) && (op->flags & (FFT_REALW | FFT_SCALED | FFT_DIF))) ||
               (!c->is_complex && !(op->flags & (FFT_UNIT | FFT_REALW))))
            : (op->kind == OP_R2 || op->kind == OP_R2T)
                ? (op->flags < 0 || op->flags > 15 || ((op->flags & (FLAG_MIXED | FLAG_UNIT)) && ((op->flags & 3) || c->n < 64)) ||
                   ((op->flags & FLAG_MIXED) && (op->flags & FLAG_UNIT)))
                : (op->flags < 0 || op->flags > 3)) {
        PyErr_Format(PyExc_ValueError, "op %zd: bad flags %d", k, op->flags);
        return -1;
    }
    return 0;
}

static int check_gather(const core_t *c, const op_t *op, Py_ssize_t k)
{
    const int32_t *idx = (const int32_t *)op->data;
    for (Py_ssize_t t = 0; t < c->n; t++)
        if (idx[t] < 0 || idx[t] >= c->n) {
            PyErr_Format(PyExc_ValueError, "op %zd: gather index out of range", k);
            return -1;
        }
    return 0;
}

/* LOAD8: every row's 8 input elements inside the vector, every lane's column inside the view. */
static int check_load8(const core_t *c, const op_t *op, Py_ssize_t k)
{
    const int32_t *first = (const int32_t *)op->data, *col = first + op->cols;
    for (Py_ssize_t t = 0; t < op->cols; t++)
        if (first[t] < 0 || first[t] > c->n - 8 || col[t] < 0 || col[t] >= op->cols) {
            PyErr_Format(PyExc_ValueError, "op %zd: LOAD8 index out of range", k);
            return -1;
        }
    return 0;
}

static int plan_parse_op(PlanObject *self, PyObject *item, Py_ssize_t k)
{
    op_t *op = &self->core.ops[k];
    PyObject *data = Py_None;
    op->flags = 0;
    if (!PyArg_ParseTuple(item, "innnn|Oi", &op->kind, &op->s, &op->rows, &op->cols, &op->cstride, &data, &op->flags))
        return -1;
    if (check_op(&self->core, op, k) < 0)
        return -1;
    Py_ssize_t need = op_data_bytes(&self->core, op);
    op->data = NULL;
    if (need == 0)
        return 0;
    if (PyObject_GetBuffer(data, &self->views[k], PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (self->views[k].len != need) {
        PyErr_Format(PyExc_ValueError, "op %zd: data has %zd bytes, expected %zd", k, self->views[k].len, need);
        return -1;
    }
    op->data = self->views[k].buf;
    return op->kind == OP_GATHER ? check_gather(&self->core, op, k) : op->kind == OP_LOAD8 ? check_load8(&self->core, op, k) : 0;
}

/* Vectors per tile. A tile shares each twiddle load, but its data must stay close: when the
 * twiddles fit in L2 (< 1 MiB) the win is only if the tile still fits L1 (32 KiB, rank2: 64 KiB); when they
 * stream from L3, sharing them among 4 vectors cuts that traffic 4x and the tile lives in L2. */
static int choose_tile(const core_t *c)
{
    size_t elem = c->is_double ? 8 : 4;
    int state = 0;
    size_t tw_bytes = 0;
    for (Py_ssize_t k = 0; k < c->nops; k++) {
        const op_t *op = &c->ops[k];
        if (op->kind == OP_BF || op->kind == OP_BFT || (op->kind >= OP_FFT && op->kind <= OP_FFT2T) || op->kind == OP_FFT3T ||
            op->kind == OP_FFT3)
            tw_bytes += (size_t)op_data_bytes(c, op);
        if (op->kind == OP_R2 || op->kind == OP_R2T) {
            tw_bytes += (size_t)c->n / 2 * elem * (size_t)r2_planes(op->flags);
            state = 1;
        }
    }
    size_t vec_bytes = (size_t)c->n * elem * (c->is_complex ? 2 : 1) * (state ? 2 : 1);
    if (tw_bytes > ((size_t)1 << 20))
        return vec_bytes <= ((size_t)1 << 18) ? 4 : 2;
    /* rank2 stages stream 4x the coefficients per element of a butterfly, so sharing them pays even
     * when the tile spills somewhat past L1 (DCT-1024: tile 2 in double, 4 in single ~20% faster) */
    size_t budget = (size_t)1 << (state ? 16 : 15);
    int tile = 1;
    while (tile < 4 && 2 * tile * vec_bytes <= budget)
        tile *= 2;
    return tile;
}

static int plan_init(PlanObject *self, PyObject *args, PyObject *kwds)
{
    Py_ssize_t n;
    int is_complex, is_double;
    PyObject *ops;
    static char *kwlist[] = {"n", "is_complex", "is_double", "ops", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nppO", kwlist, &n, &is_complex, &is_double, &ops))
        return -1;
    if (self->core.ops) {
        PyErr_SetString(PyExc_RuntimeError, "Plan is already initialized");
        return -1;
    }
    if (n < 2 || (n & (n - 1)) != 0 || n > ((Py_ssize_t)1 << 30)) {
        PyErr_SetString(PyExc_ValueError, "n must be a power of two >= 2");
        return -1;
    }
    PyObject *seq = PySequence_Fast(ops, "ops must be a sequence");
    if (!seq)
        return -1;
    Py_ssize_t nops = PySequence_Fast_GET_SIZE(seq);
    self->core = (core_t){n, is_complex, is_double, 2 * n, is_complex ? 2 * n : n, nops, NULL, NULL, NULL, 0, 0, 1};
    self->core.ops = PyMem_Calloc(nops ? nops : 1, sizeof(op_t));
    self->views = PyMem_Calloc(nops ? nops : 1, sizeof(Py_buffer));
    if (!self->core.ops || !self->views) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = 0; k < nops; k++)
        if (plan_parse_op(self, PySequence_Fast_GET_ITEM(seq, k), k) < 0) {
            self->core.nops = k + 1; /* release what was acquired so far */
            Py_DECREF(seq);
            return -1;
        }
    Py_DECREF(seq);
    for (Py_ssize_t k = 0; k < nops; k++) /* slot planes: a complex vector needs 4N; see R2_PAD */
        if (self->core.ops[k].kind == OP_R2 || self->core.ops[k].kind == OP_R2T) {
            self->core.so = (is_complex ? 2 * n : n) + R2_PAD;
            self->core.vs = 2 * self->core.so;
        }
    self->core.tile = choose_tile(&self->core);
    if (nops > 0) {
        const op_t *last = &self->core.ops[nops - 1];
        self->core.store_last = (last->kind == OP_FFT && last->s == n / 2 && last->cstride == 8) ||
                                (last->kind == OP_FFT2 && last->s == n / 4 && last->cstride == 8);
    }
    if (nops > 0 && self->core.ops[0].kind == OP_LOAD8) {
        if (nops < 2 || self->core.ops[1].kind != OP_FFT3T || self->core.ops[1].cols != self->core.ops[0].cols) {
            PyErr_SetString(PyExc_ValueError, "op 0: a LOAD8 must be followed by an FFT3T of the same cols");
            return -1;
        }
        self->core.load8 = (const int32_t *)self->core.ops[0].data;
        self->core.first_op = 2;
    } else if (nops > 0 && self->core.ops[0].kind == OP_GATHER && !(self->core.ops[0].flags & FLAG_STATE)) {
        self->core.load_idx = (const int32_t *)self->core.ops[0].data;
        self->core.first_op = 1;
    }
    return 0;
}

/* Element type of a buffer: 0 real, 1 complex; -1 (with an exception) when it does not fit. */
static int buffer_kind(const Py_buffer *view, int is_double, const char *what)
{
    const char *f = view->format ? view->format : "B";
    if (*f == '<' || *f == '=' || *f == '@')
        f++;
    char want = is_double ? 'd' : 'f';
    if (f[0] == want && f[1] == 0)
        return 0;
    if (f[0] == 'Z' && f[1] == want && f[2] == 0)
        return 1;
    PyErr_Format(PyExc_TypeError, "%s has element format '%s'; this plan needs %s", what, view->format,
                 is_double ? "float64 or complex128" : "float32 or complex64");
    return -1;
}

static int check_io(PlanObject *self, Py_buffer *xv, Py_buffer *yv, int *xc, int *yc, Py_ssize_t *batch)
{
    const core_t *c = &self->core;
    if ((*xc = buffer_kind(xv, c->is_double, "x")) < 0 || (*yc = buffer_kind(yv, c->is_double, "out")) < 0)
        return -1;
    if (*xc && !c->is_complex) {
        PyErr_SetString(PyExc_TypeError, "complex x given to a real plan");
        return -1;
    }
    if (*yc && !c->is_complex) { /* a real out of a complex plan keeps the real plane (after a REAL op) */
        PyErr_SetString(PyExc_TypeError, "complex out given to a real plan");
        return -1;
    }
    Py_ssize_t xn = xv->len / xv->itemsize, yn = yv->len / yv->itemsize;
    if (xn != yn || xn % c->n != 0) {
        PyErr_Format(PyExc_ValueError, "x has %zd elements and out %zd; both must be the same multiple of n = %zd", xn, yn, c->n);
        return -1;
    }
    *batch = xn / c->n;
    return 0;
}

/* Below this much work (elements x ops of one call) the GIL stays held: releasing and taking it back
 * costs a few hundred nanoseconds, a third of a batch-1 call at N = 8, and another Python thread
 * gains nothing from a gap of a microsecond or two. */
#ifndef BFLY_GIL_WORK
#define BFLY_GIL_WORK (1 << 13)
#endif

/* Run the checked buffers on `threads` threads: the GIL stays held for a small call (see
 * BFLY_GIL_WORK); the cached scratch buffer serves one caller at a time (a concurrent caller
 * allocates).  Returns 0, or -1 with MemoryError set. */
static int plan_execute(PlanObject *self, const char *x, char *y, int xc, int yc, Py_ssize_t batch, int threads)
{
    int rc = 0;
    void *scratch = NULL;
    int took = !__atomic_test_and_set(&self->busy, __ATOMIC_ACQUIRE);
    if (took && !self->scratch)
        self->scratch = aligned_alloc(64, scratch_bytes(&self->core));
    if (took)
        scratch = self->scratch;
    if (batch * self->core.n * (self->core.nops + 1) < BFLY_GIL_WORK && threads <= 1) {
        if (batch > 0)
            rc = run_batch(&self->core, x, y, xc, yc, batch, 1, scratch);
    } else {
        Py_BEGIN_ALLOW_THREADS
        if (batch > 0)
            rc = run_batch(&self->core, x, y, xc, yc, batch, threads, scratch);
        Py_END_ALLOW_THREADS
    }
    if (took)
        __atomic_clear(&self->busy, __ATOMIC_RELEASE);
    if (rc < 0)
        PyErr_NoMemory();
    return rc;
}

/* run(x, out, threads=1), METH_FASTCALL: no argument tuple to build and parse (a batch-1 call at
 * small N is mostly fixed cost). */
static PyObject *plan_run(PlanObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, "run() takes 2 or 3 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *xo = args[0], *yo = args[1];
    int threads = 1;
    if (nargs == 3) {
        long t = PyLong_AsLong(args[2]);
        if (t == -1 && PyErr_Occurred())
            return NULL;
        threads = t < 1 ? 1 : t > BFLY_MAX_THREADS ? BFLY_MAX_THREADS : (int)t;
    }
    if (!self->core.ops) {
        PyErr_SetString(PyExc_RuntimeError, "Plan is not initialized");
        return NULL;
    }
    Py_buffer xv, yv;
    if (PyObject_GetBuffer(xo, &xv, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (PyObject_GetBuffer(yo, &yv, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&xv);
        return NULL;
    }
    int xc, yc;
    Py_ssize_t batch;
    PyObject *result = NULL;
    if (check_io(self, &xv, &yv, &xc, &yc, &batch) == 0 && plan_execute(self, xv.buf, yv.buf, xc, yc, batch, threads) == 0)
        result = Py_NewRef(Py_None);
    PyBuffer_Release(&xv);
    PyBuffer_Release(&yv);
    return result;
}

/* set_fast(in_dtype, out_dtype, max_batch, owner, general): enable call() and apply() for a
 * C-contiguous native-order input of numpy dtype in_dtype (this plan's precision), a result of
 * out_dtype, and batches below max_batch.  apply() hands every other call to
 * general(owner, x, out, threads). */
static PyObject *plan_set_fast(PlanObject *self, PyObject *args)
{
    PyObject *in_dtype, *out_dtype, *owner, *general;
    Py_ssize_t max_batch;
    if (!PyArg_ParseTuple(args, "OOnOO", &in_dtype, &out_dtype, &max_batch, &owner, &general))
        return NULL;
    if (!self->core.ops) {
        PyErr_SetString(PyExc_RuntimeError, "Plan is not initialized");
        return NULL;
    }
    if (!PyArray_DescrCheck(in_dtype) || !PyArray_DescrCheck(out_dtype)) {
        PyErr_SetString(PyExc_TypeError, "in_dtype and out_dtype must be numpy dtypes");
        return NULL;
    }
    if (!PyCallable_Check(general)) {
        PyErr_SetString(PyExc_TypeError, "general must be callable");
        return NULL;
    }
    int in_type = ((PyArray_Descr *)in_dtype)->type_num, out_type = ((PyArray_Descr *)out_dtype)->type_num;
    int want_real = self->core.is_double ? NPY_FLOAT64 : NPY_FLOAT32;
    int want_complex = self->core.is_double ? NPY_COMPLEX128 : NPY_COMPLEX64;
    if ((in_type != want_real && in_type != want_complex) || (out_type != want_real && out_type != want_complex)) {
        PyErr_SetString(PyExc_ValueError, "in_dtype and out_dtype must be in this plan's precision");
        return NULL;
    }
    if ((in_type == want_complex || out_type == want_complex) && !self->core.is_complex) {
        PyErr_SetString(PyExc_ValueError, "complex input or output needs a complex plan");
        return NULL;
    }
    Py_XSETREF(self->owner, Py_NewRef(owner));
    Py_XSETREF(self->general, Py_NewRef(general));
    Py_XSETREF(self->out_descr, (PyArray_Descr *)Py_NewRef(out_dtype));
    self->in_type = in_type;
    self->in_complex = in_type == want_complex;
    self->max_batch = max_batch;
    Py_RETURN_NONE;
}

/* M x into a new array for the common small call: x an exact numpy array of the set_fast()
 * input type, C-contiguous, native byte order, last axis n, batch 1..max_batch-1.  Anything else
 * returns NotImplemented without raising, for the general path (conversion, threads, its error
 * messages). */
static PyObject *fast_result(PlanObject *self, PyObject *xo)
{
    if (!self->out_descr || !PyArray_CheckExact(xo))
        Py_RETURN_NOTIMPLEMENTED;
    PyArrayObject *xa = (PyArrayObject *)xo;
    const core_t *c = &self->core;
    int nd = PyArray_NDIM(xa);
    if (PyArray_TYPE(xa) != self->in_type || !PyArray_IS_C_CONTIGUOUS(xa) || !PyArray_ISNOTSWAPPED(xa) || nd < 1 ||
        PyArray_DIM(xa, nd - 1) != c->n)
        Py_RETURN_NOTIMPLEMENTED;
    Py_ssize_t batch = PyArray_SIZE(xa) / c->n;
    if (batch < 1 || batch >= self->max_batch)
        Py_RETURN_NOTIMPLEMENTED;
    Py_INCREF(self->out_descr); /* PyArray_NewFromDescr steals it */
    PyObject *result = PyArray_NewFromDescr(&PyArray_Type, self->out_descr, nd, PyArray_DIMS(xa), NULL, NULL, 0, NULL);
    if (!result)
        return NULL;
    int yc = PyTypeNum_ISCOMPLEX(self->out_descr->type_num);
    if (plan_execute(self, PyArray_DATA(xa), PyArray_DATA((PyArrayObject *)result), self->in_complex, yc, batch, 1) < 0)
        Py_CLEAR(result);
    return result;
}

/* call(x): the one-call path alone (kernel.apply and the tests use it): M x, or NotImplemented. */
static PyObject *plan_call(PlanObject *self, PyObject *xo)
{
    return fast_result(self, xo);
}

/* apply(x, out=None, *, threads=None): Plan.apply itself, installed on the Python Plan so that the
 * common small call never enters a Python frame (at N = 256 the frame cost as much as the FFT).
 * The fast case (no out, threads None or 1) runs fast_result(); every other call, and every input
 * fast_result() declines, goes to general(owner, x, out, threads) with the arguments as given. */
static PyObject *plan_apply(PlanObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *x = NULL, *out = Py_None, *threads = Py_None;
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError, "apply() takes from 1 to 2 positional arguments but %zd were given", nargs);
        return NULL;
    }
    if (nargs >= 1)
        x = args[0];
    if (nargs == 2)
        out = args[1];
    for (Py_ssize_t k = 0; kwnames && k < PyTuple_GET_SIZE(kwnames); k++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, k), *value = args[nargs + k];
        PyObject **slot = PyUnicode_CompareWithASCIIString(name, "x") == 0 && nargs < 1 ? &x
                        : PyUnicode_CompareWithASCIIString(name, "out") == 0 && nargs < 2 ? &out
                        : PyUnicode_CompareWithASCIIString(name, "threads") == 0 ? &threads : NULL;
        if (!slot) {
            PyErr_Format(PyExc_TypeError, "apply() got an unexpected keyword argument '%U'", name);
            return NULL;
        }
        *slot = value;
    }
    if (!x) {
        PyErr_SetString(PyExc_TypeError, "apply() missing 1 required positional argument: 'x'");
        return NULL;
    }
    int one_thread = threads == Py_None;
    if (!one_thread && PyLong_CheckExact(threads)) {
        int overflow;
        one_thread = PyLong_AsLongAndOverflow(threads, &overflow) == 1; /* sets no error on overflow */
    }
    if (out == Py_None && one_thread) {
        PyObject *result = fast_result(self, x);
        if (result != Py_NotImplemented)
            return result;
        Py_DECREF(result);
    }
    if (!self->general || !self->owner) {
        PyErr_SetString(PyExc_RuntimeError, "apply() needs set_fast() first");
        return NULL;
    }
    PyObject *owner = self->owner;
    PyObject *argv[4] = {owner, x, out, threads};
    Py_INCREF(owner);
    PyObject *result = PyObject_Vectorcall(self->general, argv, 4, NULL);
    Py_DECREF(owner);
    return result;
}

static PyMethodDef plan_methods[] = {
    {"run", (PyCFunction)(void (*)(void))plan_run, METH_FASTCALL,
     "run(x, out, threads=1): out = M x for each length-n vector of the C-contiguous buffers x and out."},
    {"call", (PyCFunction)plan_call, METH_O,
     "call(x): M x into a new array on the calling thread, or NotImplemented when x is not the case set_fast() describes."},
    {"apply", (PyCFunction)(void (*)(void))plan_apply, METH_FASTCALL | METH_KEYWORDS,
     "apply(x, out=None, *, threads=None): call(x) when it applies, else general(owner, x, out, threads)."},
    {"set_fast", (PyCFunction)plan_set_fast, METH_VARARGS,
     "set_fast(in_dtype, out_dtype, max_batch, owner, general): enable call() and apply()."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PlanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bfly_cli._kernel.Plan",
    .tp_basicsize = sizeof(PlanObject),
    .tp_dealloc = (destructor)plan_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)plan_traverse,
    .tp_clear = (inquiry)plan_clear,
    .tp_free = PyObject_GC_Del,
    .tp_doc = "Plan(n, is_complex, is_double, ops): a prepared op list (built by bfly_cli.kernel).",
    .tp_methods = plan_methods,
    .tp_init = (initproc)plan_init,
    .tp_new = PyType_GenericNew,
};

/* For tests: workers this process has started (0 after a fork, whatever the parent had). */
static PyObject *pool_workers(PyObject *module, PyObject *unused)
{
    (void)module, (void)unused;
    return PyLong_FromLong(__atomic_load_n(&pool.nworkers, __ATOMIC_RELAXED));
}

static PyMethodDef module_methods[] = {
    {"_pool_workers", pool_workers, METH_NOARGS, "_pool_workers(): worker threads in the pool (for tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef kernel_module = {
    PyModuleDef_HEAD_INIT, "bfly_cli._kernel",
    "Compiled butterfly kernel; use bfly_cli.kernel, which prepares the op lists.", -1, module_methods,
};

PyMODINIT_FUNC PyInit__kernel(void)
{
    static int at_fork_registered = 0;
    import_array();
    if (PyType_Ready(&PlanType) < 0)
        return NULL;
    if (!at_fork_registered && pthread_atfork(NULL, NULL, pool_after_fork_child) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "pthread_atfork failed");
        return NULL;
    }
    at_fork_registered = 1;
    PyObject *m = PyModule_Create(&kernel_module);
    if (!m)
        return NULL;
    if (PyModule_AddObjectRef(m, "Plan", (PyObject *)&PlanType) < 0 || PyModule_AddIntConstant(m, "OP_GATHER", OP_GATHER) < 0 ||
        PyModule_AddIntConstant(m, "OP_BF", OP_BF) < 0 || PyModule_AddIntConstant(m, "OP_BFT", OP_BFT) < 0 ||
        PyModule_AddIntConstant(m, "OP_DIAG", OP_DIAG) < 0 || PyModule_AddIntConstant(m, "OP_REAL", OP_REAL) < 0 ||
        PyModule_AddIntConstant(m, "OP_R2", OP_R2) < 0 || PyModule_AddIntConstant(m, "OP_R2T", OP_R2T) < 0 ||
        PyModule_AddIntConstant(m, "OP_FFT", OP_FFT) < 0 || PyModule_AddIntConstant(m, "OP_FFTT", OP_FFTT) < 0 ||
        PyModule_AddIntConstant(m, "OP_FFT2", OP_FFT2) < 0 || PyModule_AddIntConstant(m, "OP_FFT2T", OP_FFT2T) < 0 ||
        PyModule_AddIntConstant(m, "OP_UNVIEW", OP_UNVIEW) < 0 ||
        PyModule_AddIntConstant(m, "OP_FFT3T", OP_FFT3T) < 0 || PyModule_AddIntConstant(m, "OP_FFT3", OP_FFT3) < 0 ||
        PyModule_AddIntConstant(m, "OP_LOAD8", OP_LOAD8) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

#else /* BFLY_TEMPLATE: numeric code for element type T, names suffixed by SUF */

/* A tile of `nv` vectors lives in the scratch as planes: vector v's real plane at re + v * vs,
 * its imaginary plane n elements further.  Twiddles come in blocks of W pairs, each block holding
 * its K planes of W values back to back, in the order the stage consumes them: one sequential
 * stream, read once per tile (so a tile of 4 vectors reads the twiddles a quarter as often). */

/* Pairs (o0 + k, o1 + k), k < len, for every vector of the tile, blocks of W pairs at a time. */
#define BFLY_PAIR_BODY(W)                                                                           \
    for (Py_ssize_t kb = 0; kb < len; kb += (W), tw += K * (W)) {                                   \
        for (int v = 0; v < nv; v++) {                                                              \
            T *restrict x0r = re + v * vs + o0 + kb, *restrict x1r = re + v * vs + o1 + kb;         \
            if (cplx) {                                                                             \
                T *restrict x0i = x0r + n, *restrict x1i = x1r + n;                                 \
                for (Py_ssize_t l = 0; l < (W); l++) {                                              \
                    T ar = tw[l], ai = tw[(W) + l], br = tw[2 * (W) + l], bi = tw[3 * (W) + l];     \
                    T cr = tw[4 * (W) + l], ci = tw[5 * (W) + l], dr = tw[6 * (W) + l], di = tw[7 * (W) + l]; \
                    T ur = x0r[l], ui = x0i[l], vr = x1r[l], vi = x1i[l];                           \
                    x0r[l] = ar * ur - ai * ui + br * vr - bi * vi;                                 \
                    x0i[l] = ar * ui + ai * ur + br * vi + bi * vr;                                 \
                    x1r[l] = cr * ur - ci * ui + dr * vr - di * vi;                                 \
                    x1i[l] = cr * ui + ci * ur + dr * vi + di * vr;                                 \
                }                                                                                   \
            } else {                                                                                \
                for (Py_ssize_t l = 0; l < (W); l++) {                                              \
                    T u = x0r[l], w = x1r[l];                                                       \
                    x0r[l] = tw[l] * u + tw[(W) + l] * w;                                           \
                    x1r[l] = tw[2 * (W) + l] * u + tw[3 * (W) + l] * w;                             \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }

/* W = 8 with GCC vector types: one block is one or two SIMD registers per plane, loaded once and
 * used for every vector of the tile; explicit vectors leave no aliasing doubt to version against. */
typedef T SUF(vec8) __attribute__((vector_size(8 * sizeof(T)), aligned(sizeof(T))));

BFLY_INLINE void SUF(pair_w8)(T *re, Py_ssize_t n, Py_ssize_t vs, int nv, Py_ssize_t o0, Py_ssize_t o1, const T *tw,
                              Py_ssize_t len, int cplx)
{
    typedef SUF(vec8) V;
    const V *t = (const V *)tw;
    for (Py_ssize_t kb = 0; kb < len; kb += 8, t += cplx ? 8 : 4) {
        if (cplx) {
            V ar = t[0], ai = t[1], br = t[2], bi = t[3], cr = t[4], ci = t[5], dr = t[6], di = t[7];
            for (int v = 0; v < nv; v++) {
                V *x0r = (V *)(re + v * vs + o0 + kb), *x1r = (V *)(re + v * vs + o1 + kb);
                V *x0i = (V *)(re + v * vs + n + o0 + kb), *x1i = (V *)(re + v * vs + n + o1 + kb);
                V ur = *x0r, ui = *x0i, vr = *x1r, vi = *x1i;
                *x0r = ar * ur - ai * ui + br * vr - bi * vi;
                *x0i = ar * ui + ai * ur + br * vi + bi * vr;
                *x1r = cr * ur - ci * ui + dr * vr - di * vi;
                *x1i = cr * ui + ci * ur + dr * vi + di * vr;
            }
        } else {
            V a = t[0], b = t[1], c = t[2], d = t[3];
            for (int v = 0; v < nv; v++) {
                V *x0 = (V *)(re + v * vs + o0 + kb), *x1 = (V *)(re + v * vs + o1 + kb);
                V u = *x0, w = *x1;
                *x0 = a * u + b * w;
                *x1 = c * u + d * w;
            }
        }
    }
}

/* Runs shorter than 8 (tiny N only): one block of W = len. */
BFLY_INLINE void SUF(pair_short)(T *re, Py_ssize_t n, Py_ssize_t vs, int nv, Py_ssize_t o0, Py_ssize_t o1, const T *tw,
                                 Py_ssize_t len, int cplx)
{
    const Py_ssize_t K = cplx ? 8 : 4;
    BFLY_PAIR_BODY(len)
}

BFLY_INLINE void SUF(pair)(T *re, Py_ssize_t n, Py_ssize_t vs, int nv, Py_ssize_t o0, Py_ssize_t o1, const T *tw,
                           Py_ssize_t len, int cplx)
{
    if (len % 8 == 0) {
        if (cplx)
            SUF(pair_w8)(re, n, vs, nv, o0, o1, tw, len, 1);
        else
            SUF(pair_w8)(re, n, vs, nv, o0, o1, tw, len, 0);
    } else {
        SUF(pair_short)(re, n, vs, nv, o0, o1, tw, len, cplx);
    }
}

/* Canonical stage with stride s: block j holds pairs (2js + low, 2js + s + low), twiddle j*s + low. */
BFLY_INLINE void SUF(stage_bf)(T *re, Py_ssize_t n, Py_ssize_t vs, int nv, const op_t *op, int cplx)
{
    const T *tw = (const T *)op->data;
    Py_ssize_t s = op->s, K = cplx ? 8 : 4;
    for (Py_ssize_t j0 = 0; j0 < n; j0 += 2 * s)
        SUF(pair)(re, n, vs, nv, j0, j0 + s, tw + K * (j0 / 2), s, cplx);
}

/* Stage with stride s < R on the (R, C)-transposed vector: rows r and r+s for every r without bit s,
 * in increasing r, which is the order the twiddle rows c = (r / 2s) * s + r % s were stored in. */
BFLY_INLINE void SUF(stage_bft)(T *re, Py_ssize_t n, Py_ssize_t vs, int nv, const op_t *op, int cplx)
{
    const T *tw = (const T *)op->data;
    Py_ssize_t s = op->s, cols = op->cols, K = cplx ? 8 : 4;
    for (Py_ssize_t r = 0; r < op->rows; r++) {
        if (r & s)
            continue;
        Py_ssize_t c = (r / (2 * s)) * s + r % s;
        SUF(pair)(re, n, vs, nv, r * cols, (r + s) * cols, tw + K * c * cols, cols, cplx);
    }
}

/* ---- FFT stages: y0 = l x0 + w x1, y1 = l x0 - w x1 (DIF: y0 = l (x0 + x1), y1 = w (x0 - x1)) ----
 * M: how w is stored (0: w = 1, no plane; 1: real, one plane; 2: complex, re and im planes);
 * SC: a real scale plane l follows (else l = 1); D: the DIF form.  Constant M, SC, D and cplx at
 * every call site, so each case inlines to its own straight-line code; every vector of a run
 * takes the same path, so a vector's bits do not depend on the tile or thread that computes it.
 * The pair body is a macro over the lane type E (a vector of 8, or a scalar). */
#define BFLY_FFT_BODY(E)                                                                        \
    do {                                                                                        \
        E ur = *x0r, vr = *x1r, ui = ur, vi = vr;                                               \
        if (cplx) {                                                                             \
            ui = *x0i;                                                                          \
            vi = *x1i;                                                                          \
        }                                                                                       \
        if (D) { /* the twiddle after the difference */                                         \
            E ar = ur + vr, br = ur - vr, ai = ui + vi, bi = ui - vi;                           \
            E tr = M == 2 ? wr * br - wi * bi : M ? wr * br : br;                               \
            E ti = M == 2 ? wr * bi + wi * br : M ? wr * bi : bi;                               \
            *x0r = SC ? l * ar : ar;                                                            \
            *x1r = tr;                                                                          \
            if (cplx) {                                                                         \
                *x0i = SC ? l * ai : ai;                                                        \
                *x1i = ti;                                                                      \
            }                                                                                   \
        } else { /* the twiddle before the sum and difference */                                \
            E tr = M == 2 ? wr * vr - wi * vi : M ? wr * vr : vr;                               \
            E ti = M == 2 ? wr * vi + wi * vr : M ? wr * vi : vi;                               \
            if (SC) {                                                                           \
                ur = l * ur;                                                                    \
                ui = l * ui;                                                                    \
            }                                                                                   \
            *x0r = ur + tr;                                                                     \
            *x1r = ur - tr;                                                                     \
            if (cplx) {                                                                         \
                *x0i = ui + ti;                                                                 \
                *x1i = ui - ti;                                                                 \
            }                                                                                   \
        }                                                                                       \
    } while (0)

BFLY_INLINE void SUF(fft_w8)(T *re, Py_ssize_t n, Py_ssize_t vs, int nv, Py_ssize_t o0, Py_ssize_t o1, const T *tw,
                             Py_ssize_t len, int cplx, int M, int SC, int D)
{
    typedef SUF(vec8) V;
    const V *t = (const V *)tw;
    const V zero = {0};
    for (Py_ssize_t kb = 0; kb < len; kb += 8, t += M + SC) {
        V wr = M ? t[0] : zero, wi = M == 2 ? t[1] : zero, l = SC ? t[M] : zero;
        for (int v = 0; v < nv; v++) {
            V *x0r = (V *)(re + v * vs + o0 + kb), *x1r = (V *)(re + v * vs + o1 + kb);
            V *x0i = (V *)(re + v * vs + n + o0 + kb), *x1i = (V *)(re + v * vs + n + o1 + kb);
            BFLY_FFT_BODY(V);
        }
    }
}

/* Runs shorter than 8 (N < 64 only): one block of W = len pairs, scalar lanes. */
BFLY_INLINE void SUF(fft_short)(T *re, Py_ssize_t n, Py_ssize_t vs, int nv, Py_ssize_t o0, Py_ssize_t o1, const T *tw,
                                Py_ssize_t len, int cplx, int M, int SC, int D)
{
    for (int v = 0; v < nv; v++)
        for (Py_ssize_t k = 0; k < len; k++) {
            T wr = M ? tw[k] : 1, wi = M == 2 ? tw[len + k] : 0, l = SC ? tw[M * len + k] : 1;
            T *x0r = re + v * vs + o0 + k, *x1r = re + v * vs + o1 + k;
            T *x0i = x0r + n, *x1i = x1r + n;
            BFLY_FFT_BODY(T);
        }
}

BFLY_INLINE void SUF(fft_pair)(T *re, Py_ssize_t n, Py_ssize_t vs, int nv, Py_ssize_t o0, Py_ssize_t o1, const T *tw,
                               Py_ssize_t len, int cplx, int flags)
{
#define BFLY_FFT_CASE(M, SC, D)                                                  \
    do {                                                                         \
        if (len % 8 != 0)                                                        \
            SUF(fft_short)(re, n, vs, nv, o0, o1, tw, len, cplx, M, SC, D);      \
        else if (cplx)                                                           \
            SUF(fft_w8)(re, n, vs, nv, o0, o1, tw, len, 1, M, SC, D);            \
        else                                                                     \
            SUF(fft_w8)(re, n, vs, nv, o0, o1, tw, len, 0, M, SC, D);            \
    } while (0)
    BFLY_FFT_DISPATCH(flags, cplx, BFLY_FFT_CASE);
#undef BFLY_FFT_CASE
}

/* Store 8 numbers (re, im planes) at out[2k ..] interleaved, or the re plane at out[k ..]. */
BFLY_INLINE void SUF(put8)(T *out, const SUF(vec8) *rp, const SUF(vec8) *ip, int cplx)
{
    typedef SUF(vec8) V;
    V r = *rp, i = *ip; /* (by pointer: a 64-byte vector argument draws a GCC ABI note) */
    if (!cplx) {
        *(V *)out = r;
        return;
    }
#if defined(__GNUC__) && !defined(__clang__)
    typedef TI I __attribute__((vector_size(8 * sizeof(T))));
    const I lo = {0, 8, 1, 9, 2, 10, 3, 11}, hi = {4, 12, 5, 13, 6, 14, 7, 15};
    *(V *)out = __builtin_shuffle(r, i, lo);
    *(V *)(out + 8) = __builtin_shuffle(r, i, hi);
#else
    for (int q = 0; q < 8; q++)
        out[2 * q] = r[q], out[2 * q + 1] = i[q];
#endif
}

/* The last FFT stage (stride n/2) of a plan, writing the output vectors (ys apart) itself instead
 * of back to the planes: interleaved complex when cplx, else the real plane.  Saves the separate
 * store pass (a tenth of a DFT's time at N = 256). */
BFLY_INLINE void SUF(fft_store_w8)(T *y, Py_ssize_t ys, const T *re, Py_ssize_t n, Py_ssize_t vs, int nv, const T *tw,
                                   int cplx, int M, int SC, int D)
{
    typedef SUF(vec8) V;
    const V *t = (const V *)tw;
    const V zero = {0};
    const Py_ssize_t h = n / 2;
    for (Py_ssize_t kb = 0; kb < h; kb += 8, t += M + SC) {
        V wr = M ? t[0] : zero, wi = M == 2 ? t[1] : zero, l = SC ? t[M] : zero;
        for (int v = 0; v < nv; v++) {
            const T *src = re + v * vs + kb;
            V a0r = *(const V *)src, a1r = *(const V *)(src + h), a0i = zero, a1i = zero;
            if (cplx) {
                a0i = *(const V *)(src + n);
                a1i = *(const V *)(src + n + h);
            }
            V *x0r = &a0r, *x1r = &a1r, *x0i = &a0i, *x1i = &a1i;
            BFLY_FFT_BODY(V);
            T *out = y + v * ys + (cplx ? 2 : 1) * kb;
            SUF(put8)(out, &a0r, &a0i, cplx);
            SUF(put8)(out + (cplx ? 2 : 1) * h, &a1r, &a1i, cplx);
        }
    }
}

BFLY_INLINE void SUF(stage_fft_store)(T *y, Py_ssize_t ys, const T *re, Py_ssize_t n, Py_ssize_t vs, int nv,
                                      const op_t *op, int cplx)
{
    const T *tw = (const T *)op->data;
    int flags = op->flags;
#define BFLY_FFT_CASE(M, SC, D)                                                  \
    do {                                                                         \
        if (cplx)                                                                \
            SUF(fft_store_w8)(y, ys, re, n, vs, nv, tw, 1, M, SC, D);            \
        else                                                                     \
            SUF(fft_store_w8)(y, ys, re, n, vs, nv, tw, 0, M, SC, D);            \
    } while (0)
    BFLY_FFT_DISPATCH(flags, cplx, BFLY_FFT_CASE);
#undef BFLY_FFT_CASE
}

/* An FFT stage in natural order: the pair loop of stage_bf with K = fft_planes planes. */
BFLY_INLINE void SUF(stage_fft)(T *re, Py_ssize_t n, Py_ssize_t vs, int nv, const op_t *op, int cplx)
{
    const T *tw = (const T *)op->data;
    Py_ssize_t s = op->s, K = fft_planes(op->flags, cplx);
    for (Py_ssize_t j0 = 0; j0 < n; j0 += 2 * s)
        SUF(fft_pair)(re, n, vs, nv, j0, j0 + s, K ? tw + K * (j0 / 2) : tw, s, cplx, op->flags);
}

/* An FFT stage with stride s < R on the (R, C)-transposed vector: the row loop of stage_bft. */
BFLY_INLINE void SUF(stage_fftt)(T *re, Py_ssize_t n, Py_ssize_t vs, int nv, const op_t *op, int cplx)
{
    const T *tw = (const T *)op->data;
    Py_ssize_t s = op->s, cols = op->cols, K = fft_planes(op->flags, cplx);
    for (Py_ssize_t r = 0; r < op->rows; r++) {
        if (r & s)
            continue;
        Py_ssize_t c = (r / (2 * s)) * s + r % s;
        SUF(fft_pair)(re, n, vs, nv, r * cols, (r + s) * cols, K ? tw + K * c * cols : tw, cols, cplx, op->flags);
    }
}

/* One unscaled FFT butterfly on values held in registers (ur, ui) and (vr, vi), in place. */
#define BFLY_FFT_VAL(E, ur, ui, vr, vi, wr, wi)                                                 \
    do {                                                                                        \
        if (D) {                                                                                \
            E ar_ = ur + vr, br_ = ur - vr, ai_ = ui + vi, bi_ = ui - vi;                       \
            ur = ar_;                                                                           \
            ui = ai_;                                                                           \
            vr = M == 2 ? wr * br_ - wi * bi_ : M ? wr * br_ : br_;                             \
            vi = M == 2 ? wr * bi_ + wi * br_ : M ? wr * bi_ : bi_;                             \
        } else {                                                                                \
            E tr_ = M == 2 ? wr * vr - wi * vi : M ? wr * vr : vr;                              \
            E ti_ = M == 2 ? wr * vi + wi * vr : M ? wr * vi : vi;                              \
            vr = ur - tr_;                                                                      \
            vi = ui - ti_;                                                                      \
            ur = ur + tr_;                                                                      \
            ui = ui + ti_;                                                                      \
        }                                                                                       \
    } while (0)

/* Two FFT stages in one pass on quads o + {0, d, 2d, 3d} + k, k < len (a multiple of 8). */
BFLY_INLINE void SUF(fft2_w8)(T *re, Py_ssize_t n, Py_ssize_t vs, int nv, Py_ssize_t o, Py_ssize_t d, const T *tw,
                              Py_ssize_t len, int cplx, int M, int D)
{
    typedef SUF(vec8) V;
    const V *t = (const V *)tw;
    const V zero = {0};
    for (Py_ssize_t kb = 0; kb < len; kb += 8, t += 4 * M) {
        V ar = M ? t[0] : zero, ai = M == 2 ? t[1] : zero, cr = M ? t[M] : zero, ci = M == 2 ? t[M + 1] : zero;
        V br = M ? t[2 * M] : zero, bi = M == 2 ? t[2 * M + 1] : zero;
        V er = M ? t[3 * M] : zero, ei = M == 2 ? t[3 * M + 1] : zero;
        for (int v = 0; v < nv; v++) {
            T *b = re + v * vs + o + kb;
            V *p0 = (V *)b, *p1 = (V *)(b + d), *p2 = (V *)(b + 2 * d), *p3 = (V *)(b + 3 * d);
            V x0r = *p0, x1r = *p1, x2r = *p2, x3r = *p3, x0i = zero, x1i = zero, x2i = zero, x3i = zero;
            if (cplx) {
                x0i = *(V *)(b + n), x1i = *(V *)(b + n + d), x2i = *(V *)(b + n + 2 * d), x3i = *(V *)(b + n + 3 * d);
            }
            BFLY_FFT_VAL(V, x0r, x0i, x1r, x1i, ar, ai);
            BFLY_FFT_VAL(V, x2r, x2i, x3r, x3i, cr, ci);
            BFLY_FFT_VAL(V, x0r, x0i, x2r, x2i, br, bi);
            BFLY_FFT_VAL(V, x1r, x1i, x3r, x3i, er, ei);
            *p0 = x0r, *p1 = x1r, *p2 = x2r, *p3 = x3r;
            if (cplx) {
                *(V *)(b + n) = x0i, *(V *)(b + n + d) = x1i, *(V *)(b + n + 2 * d) = x2i, *(V *)(b + n + 3 * d) = x3i;
            }
        }
    }
}

BFLY_INLINE void SUF(fft2_run)(T *re, Py_ssize_t n, Py_ssize_t vs, int nv, Py_ssize_t o, Py_ssize_t d, const T *tw,
                               Py_ssize_t len, int cplx, int flags)
{
#define BFLY_FFT2_CASE(M, D)                                                     \
    do {                                                                         \
        if (cplx)                                                                \
            SUF(fft2_w8)(re, n, vs, nv, o, d, tw, len, 1, M, D);                 \
        else                                                                     \
            SUF(fft2_w8)(re, n, vs, nv, o, d, tw, len, 0, M, D);                 \
    } while (0)
    BFLY_FFT_DISPATCH_MD(flags, cplx, BFLY_FFT2_CASE);
#undef BFLY_FFT2_CASE
}

/* The last radix-4 pass (stride n/4: quads k + {0, 1, 2, 3} n/4) writing the output vectors (ys
 * apart) itself, as fft_store_w8 does for a last radix-2 stage. */
BFLY_INLINE void SUF(fft2_store_w8)(T *y, Py_ssize_t ys, const T *re, Py_ssize_t n, Py_ssize_t vs, int nv, const T *tw,
                                    int cplx, int M, int D)
{
    typedef SUF(vec8) V;
    const V *t = (const V *)tw;
    const V zero = {0};
    const Py_ssize_t d = n / 4, oc = cplx ? 2 : 1;
    for (Py_ssize_t kb = 0; kb < d; kb += 8, t += 4 * M) {
        V ar = M ? t[0] : zero, ai = M == 2 ? t[1] : zero, cr = M ? t[M] : zero, ci = M == 2 ? t[M + 1] : zero;
        V br = M ? t[2 * M] : zero, bi = M == 2 ? t[2 * M + 1] : zero;
        V er = M ? t[3 * M] : zero, ei = M == 2 ? t[3 * M + 1] : zero;
        for (int v = 0; v < nv; v++) {
            const T *b = re + v * vs + kb;
            V x0r = *(const V *)b, x1r = *(const V *)(b + d), x2r = *(const V *)(b + 2 * d), x3r = *(const V *)(b + 3 * d);
            V x0i = zero, x1i = zero, x2i = zero, x3i = zero;
            if (cplx) {
                x0i = *(const V *)(b + n), x1i = *(const V *)(b + n + d);
                x2i = *(const V *)(b + n + 2 * d), x3i = *(const V *)(b + n + 3 * d);
            }
            BFLY_FFT_VAL(V, x0r, x0i, x1r, x1i, ar, ai);
            BFLY_FFT_VAL(V, x2r, x2i, x3r, x3i, cr, ci);
            BFLY_FFT_VAL(V, x0r, x0i, x2r, x2i, br, bi);
            BFLY_FFT_VAL(V, x1r, x1i, x3r, x3i, er, ei);
            T *out = y + v * ys + oc * kb;
            SUF(put8)(out, &x0r, &x0i, cplx);
            SUF(put8)(out + oc * d, &x1r, &x1i, cplx);
            SUF(put8)(out + 2 * oc * d, &x2r, &x2i, cplx);
            SUF(put8)(out + 3 * oc * d, &x3r, &x3i, cplx);
        }
    }
}

BFLY_INLINE void SUF(stage_fft2_store)(T *y, Py_ssize_t ys, const T *re, Py_ssize_t n, Py_ssize_t vs, int nv,
                                       const op_t *op, int cplx)
{
    const T *tw = (const T *)op->data;
    int flags = op->flags;
#define BFLY_FFT2_CASE(M, D)                                                     \
    do {                                                                         \
        if (cplx)                                                                \
            SUF(fft2_store_w8)(y, ys, re, n, vs, nv, tw, 1, M, D);               \
        else                                                                     \
            SUF(fft2_store_w8)(y, ys, re, n, vs, nv, tw, 0, M, D);               \
    } while (0)
    BFLY_FFT_DISPATCH_MD(flags, cplx, BFLY_FFT2_CASE);
#undef BFLY_FFT2_CASE
}

/* Radix-4 pass in natural order: quads J0 + {0, s, 2s, 3s} + k for J0 a multiple of 4s. */
BFLY_INLINE void SUF(stage_fft2)(T *re, Py_ssize_t n, Py_ssize_t vs, int nv, const op_t *op, int cplx)
{
    const T *tw = (const T *)op->data;
    Py_ssize_t s = op->s, K = fft_planes(op->flags, cplx);
    for (Py_ssize_t j0 = 0; j0 < n; j0 += 4 * s)
        SUF(fft2_run)(re, n, vs, nv, j0, s, K ? tw + K * j0 : tw, s, cplx, op->flags);
}

/* Radix-4 pass on the (R, C)-transposed vector: rows r + {0, s, 2s, 3s}, r without bits s, 2s. */
BFLY_INLINE void SUF(stage_fft2t)(T *re, Py_ssize_t n, Py_ssize_t vs, int nv, const op_t *op, int cplx)
{
    const T *tw = (const T *)op->data;
    Py_ssize_t s = op->s, cols = op->cols, K = fft_planes(op->flags, cplx);
    for (Py_ssize_t r = 0; r < op->rows; r++) {
        if (r & (3 * s))
            continue;
        Py_ssize_t q = (r / (4 * s)) * s + r % s; /* quads of rows visited before this one */
        SUF(fft2_run)(re, n, vs, nv, r * cols, s * cols, K ? tw + 4 * K * q * cols : tw, cols, cplx, op->flags);
    }
}

/* ---- rank2 stages: the real 4x4 block per pair on (member, slot) states ---- */

/* One pair's block on the lanes of type E (a scalar or a native SIMD vector): coefficient k is
 * M(k), the inputs are read through p00 (member 0, slot 0), p01, p10, p11 and written back in
 * place.  R = 1 when slot 1 is not read (FIRST), S = 1 when it is not written (LAST).  Named
 * temporaries, no arrays: arrays of vectors made gcc spill every output through the stack. */
#define BFLY_R2_DOT(M, k, R) \
    ((R) == 2 ? M(k) * u0 + M((k) + 1) * w0 + M((k) + 2) * u1 + M((k) + 3) * w1 : M(k) * u0 + M((k) + 1) * u1)
#define BFLY_R2_MIX(E, M, p00, p01, p10, p11, R, S)                                                   \
    do {                                                                                              \
        E u0 = *(p00), u1 = *(p10), w0 = u0, w1 = u1;                                                 \
        if ((R) == 2) {                                                                               \
            w0 = *(p01);                                                                              \
            w1 = *(p11);                                                                              \
        }                                                                                             \
        E y00 = BFLY_R2_DOT(M, 0, R), y10 = BFLY_R2_DOT(M, (S) * 2 * (R), R);                          \
        if ((S) == 2) {                                                                               \
            E y01 = BFLY_R2_DOT(M, 2 * (R), R), y11 = BFLY_R2_DOT(M, 3 * 2 * (R), R);                  \
            *(p01) = y01;                                                                             \
            *(p11) = y11;                                                                             \
        }                                                                                             \
        *(p00) = y00;                                                                                 \
        *(p10) = y10;                                                                                 \
    } while (0)

/* The unit form of a block (MIXED stages): y_o slot s = member 0 slot s + W_o[s] . member 1, with
 * W_o[s][r] = M(4 o + 2 s + r): 8 multiply-adds. */
#define BFLY_R2_UNIT(E, M, p00, p01, p10, p11)                                                       \
    do {                                                                                              \
        E u0 = *(p00), w0 = *(p01), u1 = *(p10), w1 = *(p11);                                         \
        E y00 = u0 + M(0) * u1 + M(1) * w1, y01 = w0 + M(2) * u1 + M(3) * w1;                         \
        E y10 = u0 + M(4) * u1 + M(5) * w1, y11 = w0 + M(6) * u1 + M(7) * w1;                         \
        *(p00) = y00;                                                                                 \
        *(p01) = y01;                                                                                 \
        *(p10) = y10;                                                                                 \
        *(p11) = y11;                                                                                 \
    } while (0)

/* Native SIMD width (32 bytes: one AVX2 register; two SSE registers on the baseline clone). */
typedef T SUF(vnat) __attribute__((vector_size(32), aligned(sizeof(T))));

/* Pairs (o0 + k, o1 + k), k < len (a multiple of 8), of every vector and part (re, im) of the tile.
 * A block of 8 pairs is K coefficient planes of 8; it is walked in native-width lanes (8 floats or
 * 4 doubles), each lane group's coefficients used for the whole tile. */
BFLY_INLINE void SUF(r2_w8)(T *buf, const core_t *c, int nv, int parts, Py_ssize_t o0, Py_ssize_t o1, const T *tw,
                            Py_ssize_t len, int R, int S, const T *unit, int all_unit)
{
    typedef SUF(vnat) V;
    enum { L = 32 / sizeof(T) };
    const int K = all_unit ? 8 : 4 * R * S;
    Py_ssize_t so = c->so;
#define BFLY_MV(k) (*(const V *)(tw + (k) * 8 + h))
    for (Py_ssize_t kb = 0; kb < len; kb += 8, tw += K * 8) {
        if (all_unit || (unit && unit[kb / 8] != 0)) { /* a block in the unit form */
            for (int h = 0; h < 8; h += L)
                for (int v = 0; v < nv; v++)
                    for (int p = 0; p < parts; p++) {
                        T *a = buf + v * c->vs + p * c->n + kb + h;
                        BFLY_R2_UNIT(V, BFLY_MV, (V *)(a + o0), (V *)(a + so + o0), (V *)(a + o1), (V *)(a + so + o1));
                    }
            continue;
        }
        for (int h = 0; h < 8; h += L)
            for (int v = 0; v < nv; v++)
                for (int p = 0; p < parts; p++) {
                    T *a = buf + v * c->vs + p * c->n + kb + h;
                    BFLY_R2_MIX(V, BFLY_MV, (V *)(a + o0), (V *)(a + so + o0), (V *)(a + o1), (V *)(a + so + o1), R, S);
                }
    }
#undef BFLY_MV
}

/* Runs shorter than 8 (N <= 32 only): one block of W = len pairs, scalar lanes. */
BFLY_INLINE void SUF(r2_short)(T *buf, const core_t *c, int nv, int parts, Py_ssize_t o0, Py_ssize_t o1, const T *tw,
                               Py_ssize_t len, int R, int S)
{
    Py_ssize_t so = c->so;
    for (int v = 0; v < nv; v++)
        for (int p = 0; p < parts; p++)
            for (Py_ssize_t l = 0; l < len; l++) {
                T *a = buf + v * c->vs + p * c->n + l;
#define BFLY_M1(k) tw[(k) * len + l]
                BFLY_R2_MIX(T, BFLY_M1, a + o0, a + so + o0, a + o1, a + so + o1, R, S);
#undef BFLY_M1
            }
}

/* Constant R and S for each of the four FIRST/LAST cases, so each inlines to straight FMAs. */
BFLY_INLINE void SUF(r2_pair)(T *buf, const core_t *c, int nv, Py_ssize_t o0, Py_ssize_t o1, const T *tw,
                              Py_ssize_t len, int flags, const T *unit)
{
    int parts = c->is_complex ? 2 : 1;
#define BFLY_R2_CASE(R, S)                                                 \
    do {                                                                   \
        if (len % 8 == 0)                                                  \
            SUF(r2_w8)(buf, c, nv, parts, o0, o1, tw, len, R, S, unit, flags & FLAG_UNIT); \
        else                                                               \
            SUF(r2_short)(buf, c, nv, parts, o0, o1, tw, len, R, S);       \
    } while (0)
    switch (flags & 3) {
    case 0: BFLY_R2_CASE(2, 2); break;
    case FLAG_FIRST: BFLY_R2_CASE(1, 2); break;
    case FLAG_LAST: BFLY_R2_CASE(2, 1); break;
    default: BFLY_R2_CASE(1, 1); break;
    }
#undef BFLY_R2_CASE
}

/* The block flags of a MIXED stage (after its coefficient planes), else NULL. */
static inline const T *SUF(r2_unit)(const core_t *c, const op_t *op)
{
    return (op->flags & FLAG_MIXED) ? (const T *)op->data + r2_planes(op->flags) * (c->n / 2) : NULL;
}

/* A rank2 stage in natural order: the pair loop of stage_bf with K coefficient planes. */
BFLY_INLINE void SUF(stage_r2)(T *buf, const core_t *c, int nv, const op_t *op)
{
    const T *tw = (const T *)op->data, *unit = SUF(r2_unit)(c, op);
    Py_ssize_t s = op->s, K = r2_planes(op->flags);
    for (Py_ssize_t j0 = 0; j0 < c->n; j0 += 2 * s)
        SUF(r2_pair)(buf, c, nv, j0, j0 + s, tw + K * (j0 / 2), s, op->flags, unit ? unit + j0 / 16 : NULL);
}

/* A rank2 stage with stride s < R on the (R, C)-transposed vector: the row loop of stage_bft. */
BFLY_INLINE void SUF(stage_r2t)(T *buf, const core_t *c, int nv, const op_t *op)
{
    const T *tw = (const T *)op->data, *unit = SUF(r2_unit)(c, op);
    Py_ssize_t s = op->s, cols = op->cols, K = r2_planes(op->flags);
    for (Py_ssize_t r = 0; r < op->rows; r++) {
        if (r & s)
            continue;
        Py_ssize_t row = (r / (2 * s)) * s + r % s;
        SUF(r2_pair)(buf, c, nv, r * cols, (r + s) * cols, tw + K * row * cols, cols, op->flags,
                     unit ? unit + row * cols / 8 : NULL);
    }
}

/* dst[c * 8 + r] = src[r * cols + c]: leave the (8, cols) view, an 8x8 block at a time. */
BFLY_INLINE void SUF(unview)(T *restrict dst, const T *restrict src, Py_ssize_t cols)
{
#if defined(__GNUC__) && !defined(__clang__)
    typedef SUF(vec8) V;
    typedef TI I __attribute__((vector_size(8 * sizeof(T))));
    const I lo = {0, 8, 1, 9, 4, 12, 5, 13}, hi = {2, 10, 3, 11, 6, 14, 7, 15};
    const I lo2 = {0, 1, 8, 9, 4, 5, 12, 13}, hi2 = {2, 3, 10, 11, 6, 7, 14, 15};
    const I lo4 = {0, 1, 2, 3, 8, 9, 10, 11}, hi4 = {4, 5, 6, 7, 12, 13, 14, 15};
    for (Py_ssize_t c = 0; c < cols; c += 8) {
        V r[8], t[8], u[8];
        for (int i = 0; i < 8; i++)
            r[i] = *(const V *)(src + i * cols + c);
        for (int i = 0; i < 8; i += 2) { /* t[i], t[i+1]: rows i, i+1 interleaved (columns 0,1,4,5 / 2,3,6,7) */
            t[i] = __builtin_shuffle(r[i], r[i + 1], lo);
            t[i + 1] = __builtin_shuffle(r[i], r[i + 1], hi);
        }
        for (int i = 0; i < 8; i += 4) { /* u: four rows of one column pair (c, c + 4) */
            u[i] = __builtin_shuffle(t[i], t[i + 2], lo2);
            u[i + 1] = __builtin_shuffle(t[i], t[i + 2], hi2);
            u[i + 2] = __builtin_shuffle(t[i + 1], t[i + 3], lo2);
            u[i + 3] = __builtin_shuffle(t[i + 1], t[i + 3], hi2);
        }
        for (int j = 0; j < 4; j++) { /* column j from rows 0-3 and 4-7; column j + 4 likewise */
            *(V *)(dst + (c + j) * 8) = __builtin_shuffle(u[j], u[j + 4], lo4);
            *(V *)(dst + (c + j + 4) * 8) = __builtin_shuffle(u[j], u[j + 4], hi4);
        }
    }
#else
    for (Py_ssize_t c = 0; c < cols; c++)
        for (int r = 0; r < 8; r++)
            dst[c * 8 + r] = src[r * cols + c];
#endif
}

/* Eight rows of 8 stored as eight columns (an 8x8 transpose): column j, r[0..7][j], goes to
 * dst + 8 j, or to dst + 8 col[j] when col is given (LOAD8's lanes). */
BFLY_INLINE void SUF(transpose8)(T *restrict dst, const SUF(vec8) *r, const int32_t *col)
{
    typedef SUF(vec8) V;
#define BFLY_COL(j) (dst + 8 * (col ? (Py_ssize_t)col[j] : (j)))
#if defined(__GNUC__) && !defined(__clang__)
    typedef TI I __attribute__((vector_size(8 * sizeof(T))));
    const I lo = {0, 8, 1, 9, 4, 12, 5, 13}, hi = {2, 10, 3, 11, 6, 14, 7, 15};
    const I lo2 = {0, 1, 8, 9, 4, 5, 12, 13}, hi2 = {2, 3, 10, 11, 6, 7, 14, 15};
    const I lo4 = {0, 1, 2, 3, 8, 9, 10, 11}, hi4 = {4, 5, 6, 7, 12, 13, 14, 15};
    V t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shuffle(r[i], r[i + 1], lo);
        t[i + 1] = __builtin_shuffle(r[i], r[i + 1], hi);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = __builtin_shuffle(t[i], t[i + 2], lo2);
        u[i + 1] = __builtin_shuffle(t[i], t[i + 2], hi2);
        u[i + 2] = __builtin_shuffle(t[i + 1], t[i + 3], lo2);
        u[i + 3] = __builtin_shuffle(t[i + 1], t[i + 3], hi2);
    }
    for (int j = 0; j < 4; j++) {
        *(V *)BFLY_COL(j) = __builtin_shuffle(u[j], u[j + 4], lo4);
        *(V *)BFLY_COL(j + 4) = __builtin_shuffle(u[j], u[j + 4], hi4);
    }
#else
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++)
            BFLY_COL(j)[i] = r[i][j];
#endif
#undef BFLY_COL
}

/* One FFT butterfly of stage `st` in registers, scaled when that stage has a scale plane: the
 * arithmetic of BFLY_FFT_BODY, in the same order. */
#define BFLY_FFT3_BF(ur, ui, vr, vi, wr, wi, SCL, l)                                            \
    do {                                                                                        \
        if (D) {                                                                                \
            V ar_ = ur + vr, br_ = ur - vr, ai_ = ui + vi, bi_ = ui - vi;                       \
            vr = M == 2 ? wr * br_ - wi * bi_ : M ? wr * br_ : br_;                             \
            vi = M == 2 ? wr * bi_ + wi * br_ : M ? wr * bi_ : bi_;                             \
            ur = (SCL) ? l * ar_ : ar_;                                                         \
            ui = (SCL) ? l * ai_ : ai_;                                                         \
        } else {                                                                                \
            V tr_ = M == 2 ? wr * vr - wi * vi : M ? wr * vr : vr;                              \
            V ti_ = M == 2 ? wr * vi + wi * vr : M ? wr * vi : vi;                              \
            V su_ = (SCL) ? l * ur : ur, si_ = (SCL) ? l * ui : ui;                             \
            vr = su_ - tr_;                                                                     \
            vi = si_ - ti_;                                                                     \
            ur = su_ + tr_;                                                                     \
            ui = si_ + ti_;                                                                     \
        }                                                                                       \
    } while (0)

/* The three FFT stages of a radix-8 op on one block of 8 octets held in registers (members 2i,
 * 2i+1 (stage 0), then i, i+2, then i, i+4), the scale of stage st when bit st of sc is set;
 * tw: the block's twiddles.  Shared by FFT3, FFT3T and LOAD8 + FFT3T. */
BFLY_INLINE void SUF(fft3_regs)(SUF(vec8) *xr, SUF(vec8) *xi, const T *tw, int M, int D, int sc)
{
    typedef SUF(vec8) V;
    const V zero = {0};
    const V *t = (const V *)tw;
#pragma GCC unroll 3
    for (int st = 0; st < 3; st++) {
        const int s = 1 << st, scl = (sc >> st) & 1;
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
            if (r & s)
                continue;
            V wr = M ? t[0] : zero, wi = M == 2 ? t[1] : zero, l = scl ? t[M] : zero;
            t += M + scl;
            BFLY_FFT3_BF(xr[r], xi[r], xr[r + s], xi[r + s], wr, wi, scl, l);
        }
    }
}

/* Twiddle values per block of 8 octets of a radix-8 op. */
#define BFLY_FFT3_BLOCK(M, sc) (4 * 8 * (3 * (M) + (((sc) & 1) != 0) + (((sc) & 2) != 0) + (((sc) & 4) != 0)))

/* Three FFT stages in one pass (radix 8) on octets o + {0, d, .., 7d} + k, k < len (a multiple of 8),
 * for one (M, D).  Results go back where they came from, or (`unview`, the FFT3T op: the members
 * are the 8 rows of the view) to dst in natural order by 8x8 transposes. */
BFLY_INLINE void SUF(fft3_w8)(T *dst, const T *src, Py_ssize_t n, Py_ssize_t vs, int nv, Py_ssize_t o, Py_ssize_t d,
                              Py_ssize_t len, const T *tw, int cplx, int M, int D, int sc, int unview)
{
    typedef SUF(vec8) V;
    const V zero = {0};
    for (Py_ssize_t kb = 0; kb < len; kb += 8, tw += BFLY_FFT3_BLOCK(M, sc)) {
        for (int v = 0; v < nv; v++) {
            const T *b = src + v * vs + o + kb;
            V xr[8], xi[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                xr[i] = *(const V *)(b + i * d);
                xi[i] = cplx ? *(const V *)(b + n + i * d) : zero;
            }
            SUF(fft3_regs)(xr, xi, tw, M, D, sc);
            if (unview) {
                SUF(transpose8)(dst + v * vs + (o + kb) * 8, xr, NULL);
                if (cplx)
                    SUF(transpose8)(dst + v * vs + n + (o + kb) * 8, xi, NULL);
                continue;
            }
            T *w = dst + v * vs + o + kb;
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                *(V *)(w + i * d) = xr[i];
                if (cplx)
                    *(V *)(w + n + i * d) = xi[i];
            }
        }
    }
}

/* LOAD8 + FFT3T: the FFT3T pass reading each input vector (xs apart; interleaved complex when
 * xc, else real) through the LOAD8 map instead of the view, into dst in natural order. */
BFLY_INLINE void SUF(fft3l_w8)(T *dst, const T *x, Py_ssize_t xs, int xc, Py_ssize_t n, Py_ssize_t vs, int nv,
                               Py_ssize_t cols, const int32_t *map, const T *tw, int cplx, int M, int D, int sc)
{
    typedef SUF(vec8) V;
#if defined(__GNUC__) && !defined(__clang__)
    typedef TI I __attribute__((vector_size(8 * sizeof(T))));
    const I even = {0, 2, 4, 6, 8, 10, 12, 14}, odd = {1, 3, 5, 7, 9, 11, 13, 15};
#endif
    const V zero = {0};
    for (Py_ssize_t g = 0; g < cols / 8; g++, tw += BFLY_FFT3_BLOCK(M, sc)) {
        const int32_t *first = map + 8 * g, *col = map + cols + 8 * g;
        for (int v = 0; v < nv; v++) {
            const T *xv = x + v * xs;
            V xr[8], xi[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                if (xc) { /* 8 interleaved complex values: split into re and im */
                    const T *p = xv + 2 * (Py_ssize_t)first[i];
                    V a = *(const V *)p, b = *(const V *)(p + 8);
#if defined(__GNUC__) && !defined(__clang__)
                    xr[i] = __builtin_shuffle(a, b, even);
                    xi[i] = __builtin_shuffle(a, b, odd);
#else
                    for (int l = 0; l < 4; l++) {
                        xr[i][l] = a[2 * l], xi[i][l] = a[2 * l + 1];
                        xr[i][l + 4] = b[2 * l], xi[i][l + 4] = b[2 * l + 1];
                    }
#endif
                } else {
                    xr[i] = *(const V *)(xv + first[i]);
                    xi[i] = zero;
                }
            }
            SUF(fft3_regs)(xr, xi, tw, M, D, sc);
            SUF(transpose8)(dst + v * vs, xr, col);
            if (cplx)
                SUF(transpose8)(dst + v * vs + n, xi, col);
        }
    }
}

/* Radix-8 pass in natural order (OP_FFT3): octets J0 + {0, s, .., 7s} + k for J0 a multiple of 8s. */
BFLY_INLINE void SUF(stage_fft3)(T *re, Py_ssize_t n, Py_ssize_t vs, int nv, const op_t *op, int cplx)
{
    const T *tw = (const T *)op->data;
    int f = op->flags & 15, sc = (op->flags >> 4) & 7;
    Py_ssize_t s = op->s, per_pair = fft3_planes(op->flags, cplx);
    for (Py_ssize_t j0 = 0; j0 < n; j0 += 8 * s, tw += per_pair * 4 * s) {
#define BFLY_FFT3_CASE(M, D)                                                         \
    do {                                                                             \
        if (cplx)                                                                    \
            SUF(fft3_w8)(re, re, n, vs, nv, j0, s, s, tw, 1, M, D, sc, 0);           \
        else                                                                         \
            SUF(fft3_w8)(re, re, n, vs, nv, j0, s, s, tw, 0, M, D, sc, 0);           \
    } while (0)
        BFLY_FFT_DISPATCH_MD(f, cplx, BFLY_FFT3_CASE);
#undef BFLY_FFT3_CASE
    }
}

BFLY_INLINE void SUF(stage_fft3t)(T *dst, const T *src, Py_ssize_t n, Py_ssize_t vs, int nv,
                                  const op_t *op, int cplx)
{
    const T *tw = (const T *)op->data;
    int f = op->flags & 15, sc = (op->flags >> 4) & 7;
#define BFLY_FFT3_CASE(M, D)                                                      \
    do {                                                                          \
        if (cplx)                                                                 \
            SUF(fft3_w8)(dst, src, n, vs, nv, 0, op->cols, op->cols, tw, 1, M, D, sc, 1); \
        else                                                                      \
            SUF(fft3_w8)(dst, src, n, vs, nv, 0, op->cols, op->cols, tw, 0, M, D, sc, 1); \
    } while (0)
    BFLY_FFT_DISPATCH_MD(f, cplx, BFLY_FFT3_CASE);
#undef BFLY_FFT3_CASE
}

/* LOAD8 + FFT3T (op = the FFT3T, map = the LOAD8's data): nv input vectors from x into dst. */
BFLY_INLINE void SUF(stage_load8)(T *dst, const T *x, Py_ssize_t xs, int xc, Py_ssize_t n, Py_ssize_t vs, int nv,
                                  const op_t *op, const int32_t *map, int cplx)
{
    const T *tw = (const T *)op->data;
    int f = op->flags & 15, sc = (op->flags >> 4) & 7;
#define BFLY_FFT3_CASE(M, D)                                                                         \
    do {                                                                                             \
        if (cplx && xc)                                                                              \
            SUF(fft3l_w8)(dst, x, xs, 1, n, vs, nv, op->cols, map, tw, 1, M, D, sc);                 \
        else if (cplx)                                                                               \
            SUF(fft3l_w8)(dst, x, xs, 0, n, vs, nv, op->cols, map, tw, 1, M, D, sc);                 \
        else                                                                                         \
            SUF(fft3l_w8)(dst, x, xs, 0, n, vs, nv, op->cols, map, tw, 0, M, D, sc);                 \
    } while (0)
    BFLY_FFT_DISPATCH_MD(f, cplx, BFLY_FFT3_CASE);
#undef BFLY_FFT3_CASE
}

BFLY_INLINE void SUF(gather)(T *restrict dst, const T *restrict src, const int32_t *restrict idx, Py_ssize_t n)
{
    for (Py_ssize_t t = 0; t < n; t++)
        dst[t] = src[idx[t]];
}

BFLY_INLINE void SUF(diag)(T *restrict re, T *restrict im, const T *restrict d, Py_ssize_t n, int cplx)
{
    if (!cplx) {
        for (Py_ssize_t t = 0; t < n; t++)
            re[t] *= d[t];
        return;
    }
    const T *restrict dr = d, *restrict di = d + n;
    for (Py_ssize_t t = 0; t < n; t++) {
        T u = re[t], v = im[t];
        re[t] = dr[t] * u - di[t] * v;
        im[t] = dr[t] * v + di[t] * u;
    }
}

/* Read one input vector (interleaved complex or real, optionally permuted) into split planes. */
BFLY_INLINE void SUF(load)(T *restrict re, T *restrict im, const T *restrict x, const int32_t *restrict idx, Py_ssize_t n,
                           int xc, int cplx)
{
    if (xc) {
        if (idx)
            for (Py_ssize_t t = 0; t < n; t++) {
                re[t] = x[2 * (Py_ssize_t)idx[t]];
                im[t] = x[2 * (Py_ssize_t)idx[t] + 1];
            }
        else
            for (Py_ssize_t t = 0; t < n; t++) {
                re[t] = x[2 * t];
                im[t] = x[2 * t + 1];
            }
        return;
    }
    if (idx)
        for (Py_ssize_t t = 0; t < n; t++)
            re[t] = x[idx[t]];
    else
        memcpy(re, x, (size_t)n * sizeof(T));
    if (cplx)
        memset(im, 0, (size_t)n * sizeof(T));
}

BFLY_INLINE void SUF(store)(T *restrict y, const T *restrict re, const T *restrict im, Py_ssize_t n, int yc)
{
    if (!yc) {
        memcpy(y, re, (size_t)n * sizeof(T));
        return;
    }
    for (Py_ssize_t t = 0; t < n; t++) {
        y[2 * t] = re[t];
        y[2 * t + 1] = im[t];
    }
}

/* Run the ops on a tile of nv vectors held in `cur` (planes, vs apart); `alt` is the spare buffer
 * for gathers. Returns the buffer that holds the result. */
BFLY_INLINE T *SUF(run_ops)(const core_t *c, T *cur, T *alt, Py_ssize_t vs, int nv, Py_ssize_t end)
{
    Py_ssize_t n = c->n;
    int cplx = c->is_complex;
    for (Py_ssize_t k = c->first_op; k < end; k++) {
        const op_t *op = &c->ops[k];
        switch (op->kind) {
        case OP_GATHER:
            for (int v = 0; v < nv; v++) {
                SUF(gather)(alt + v * vs, cur + v * vs, (const int32_t *)op->data, n);
                if (cplx)
                    SUF(gather)(alt + v * vs + n, cur + v * vs + n, (const int32_t *)op->data, n);
                if (op->flags & FLAG_STATE) {
                    SUF(gather)(alt + v * vs + c->so, cur + v * vs + c->so, (const int32_t *)op->data, n);
                    if (cplx)
                        SUF(gather)(alt + v * vs + c->so + n, cur + v * vs + c->so + n, (const int32_t *)op->data, n);
                }
            }
            T *t = cur;
            cur = alt, alt = t;
            break;
        case OP_UNVIEW:
            for (int v = 0; v < nv; v++) {
                SUF(unview)(alt + v * vs, cur + v * vs, op->cols);
                if (cplx)
                    SUF(unview)(alt + v * vs + n, cur + v * vs + n, op->cols);
                if (op->flags & FLAG_STATE) {
                    SUF(unview)(alt + v * vs + c->so, cur + v * vs + c->so, op->cols);
                    if (cplx)
                        SUF(unview)(alt + v * vs + c->so + n, cur + v * vs + c->so + n, op->cols);
                }
            }
            T *u = cur;
            cur = alt, alt = u;
            break;
        case OP_FFT3T:
            SUF(stage_fft3t)(alt, cur, n, vs, nv, op, cplx);
            T *w3 = cur;
            cur = alt, alt = w3;
            break;
        case OP_BF: SUF(stage_bf)(cur, n, vs, nv, op, cplx); break;
        case OP_BFT: SUF(stage_bft)(cur, n, vs, nv, op, cplx); break;
        case OP_DIAG:
            for (int v = 0; v < nv; v++)
                SUF(diag)(cur + v * vs, cur + v * vs + n, (const T *)op->data, n, cplx);
            break;
        case OP_REAL:
            for (int v = 0; v < nv; v++)
                memset(cur + v * vs + n, 0, (size_t)n * sizeof(T));
            break;
        case OP_R2: SUF(stage_r2)(cur, c, nv, op); break;
        case OP_R2T: SUF(stage_r2t)(cur, c, nv, op); break;
        case OP_FFT: SUF(stage_fft)(cur, n, vs, nv, op, cplx); break;
        case OP_FFTT: SUF(stage_fftt)(cur, n, vs, nv, op, cplx); break;
        case OP_FFT2: SUF(stage_fft2)(cur, n, vs, nv, op, cplx); break;
        case OP_FFT3: SUF(stage_fft3)(cur, n, vs, nv, op, cplx); break;
        case OP_FFT2T: SUF(stage_fft2t)(cur, n, vs, nv, op, cplx); break;
        }
    }
    return cur;
}

/* Apply the plan to `count` consecutive vectors, a tile at a time: each tile goes through every
 * op before the next starts, so it stays in L1/L2 across all log2 N stages. */
BFLY_CLONES static void SUF(run_range)(const core_t *c, const T *x, T *y, int xc, int yc, Py_ssize_t count, T *scratch)
{
    Py_ssize_t n = c->n, vs = c->vs;
    int cplx = c->is_complex, tile = c->tile;
    Py_ssize_t xs = n * (xc ? 2 : 1), ys = n * (yc ? 2 : 1);
    T *bufa = scratch, *bufb = scratch + (Py_ssize_t)tile * vs;
    for (Py_ssize_t b = 0; b < count; b += tile) {
        int nv = count - b < tile ? (int)(count - b) : tile;
        if (c->load8)
            SUF(stage_load8)(bufa, x + b * xs, xs, xc, n, vs, nv, &c->ops[1], c->load8, cplx);
        else
            for (int v = 0; v < nv; v++)
                SUF(load)(bufa + v * vs, bufa + v * vs + n, x + (b + v) * xs, c->load_idx, n, xc, cplx);
        /* the last FFT stage writes the output itself when the output has the plan's planes */
        int fused = c->store_last && yc == cplx && c->nops - 1 >= c->first_op;
        T *res = SUF(run_ops)(c, bufa, bufb, vs, nv, fused ? c->nops - 1 : c->nops);
        if (fused && c->ops[c->nops - 1].kind == OP_FFT2)
            SUF(stage_fft2_store)(y + b * ys, ys, res, n, vs, nv, &c->ops[c->nops - 1], cplx);
        else if (fused)
            SUF(stage_fft_store)(y + b * ys, ys, res, n, vs, nv, &c->ops[c->nops - 1], cplx);
        else
            for (int v = 0; v < nv; v++)
                SUF(store)(y + (b + v) * ys, res + v * vs, res + v * vs + n, n, yc);
    }
}

#endif /* BFLY_TEMPLATE */
