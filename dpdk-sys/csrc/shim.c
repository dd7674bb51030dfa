/* Out-of-line copies of DPDK's static inline functions, so Rust can call them. */
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include "shim.h"
#include <rte_thash.h>

uint16_t shim_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t shim_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

struct rte_mbuf *shim_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned n)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, n);
}

void shim_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

void shim_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned n)
{
	rte_pktmbuf_free_bulk(mbufs, n);
}

char *shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_append(m, len);
}

int shim_pktmbuf_trim(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_trim(m, len);
}

struct rte_mempool *shim_mbuf_pool(const struct rte_mbuf *m)
{
	return m->pool;
}

unsigned shim_mempool_size(const struct rte_mempool *mp)
{
	return mp->size;
}

unsigned shim_mempool_cache_len(const struct rte_mempool *mp, unsigned lcore)
{
	if (mp->cache_size == 0 || lcore >= RTE_MAX_LCORE)
		return 0;
	return mp->local_cache[lcore].len;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;

	return (x > y) - (x < y);
}

static int contains(void *const *sorted, unsigned n, void *o)
{
	return bsearch(&o, sorted, n, sizeof(void *), cmp_ptr) != NULL;
}

/* Sorts and removes duplicates in place; returns the new length. */
static unsigned sort_unique(void **a, unsigned n)
{
	unsigned i, j = 0;

	qsort(a, n, sizeof(void *), cmp_ptr);
	for (i = 0; i < n; i++)
		if (j == 0 || a[j - 1] != a[i])
			a[j++] = a[i];
	return j;
}

struct obj_list {
	void **objs;
	unsigned n;
	unsigned cap;
};

static void collect_obj(struct rte_mempool *mp, void *arg, void *obj, unsigned idx)
{
	struct obj_list *l = arg;

	(void)mp;
	(void)idx;
	if (l->n < l->cap)
		l->objs[l->n++] = obj;
}

/* A process killed inside a ring operation leaves head != tail, and every later operation
 * on that side spins forever. With no other user of the ring, dropping the dead reservation
 * is safe: a half-done enqueue loses its objects (the audit finds them), a half-done dequeue
 * leaves them in the ring. */
static int repair_headtail(struct rte_ring_headtail *ht)
{
	if (ht->head == ht->tail)
		return 0;
	if (ht->sync_type != RTE_RING_SYNC_MT && ht->sync_type != RTE_RING_SYNC_ST)
		return -ENOTSUP;
	ht->head = ht->tail;
	return 1;
}

/* Waits up to about 10 ms for a ring side to be consistent (a live process may be in the
 * middle of an operation), then drops a reservation that stayed half done (a dead process's). */
static int settle_headtail(struct rte_ring_headtail *ht)
{
	uint64_t deadline = rte_get_tsc_cycles() + rte_get_tsc_hz() / 100;

	while (ht->head != ht->tail && rte_get_tsc_cycles() < deadline)
		rte_pause();
	return repair_headtail(ht);
}

/* Recovery of a pool that live lcores still free buffers into (redirect rings): the ring is
 * left in place; the dead lcore's cache entries not already in the ring are enqueued. */
static int recover_shared(struct rte_mempool *mp, struct rte_mempool_cache *dead, struct shim_recovery *out)
{
	struct rte_ring *r = mp->pool_data;
	unsigned size = mp->size, n_snap = 0, n_dead = 0, n_give = 0, j;
	void **snap, **dead_objs, **give;
	uint32_t cons, prod, mask = r->mask;
	int rp, rc, ret = 0;

	rp = settle_headtail(&r->prod);
	rc = settle_headtail(&r->cons);
	if (rp < 0 || rc < 0)
		return -ENOTSUP;
	out->ring_repairs = (unsigned)(rp + rc);
	if (dead == NULL)
		return 0;
	snap = calloc(size + 1, sizeof(void *));
	dead_objs = calloc(RTE_DIM(dead->objs) + 1, sizeof(void *));
	give = calloc(RTE_DIM(dead->objs) + 1, sizeof(void *));
	if (!snap || !dead_objs || !give) {
		ret = -ENOMEM;
		goto out;
	}
	/* Entries between the consumer and producer tails are stable: no one consumes them
	 * (only the dead lcore and its successor allocate from this pool). */
	cons = r->cons.tail;
	prod = r->prod.tail;
	for (; cons != prod && n_snap < size; cons++)
		snap[n_snap++] = ((void **)&r[1])[cons & mask];
	n_snap = sort_unique(snap, n_snap);
	for (j = 0; j < dead->len && j < RTE_DIM(dead->objs); j++)
		dead_objs[n_dead++] = dead->objs[j];
	dead->len = 0;
	n_dead = sort_unique(dead_objs, n_dead);
	for (j = 0; j < n_dead; j++) {
		if (contains(snap, n_snap, dead_objs[j]))
			out->duplicates++;
		else
			give[n_give++] = dead_objs[j];
	}
	if (n_give > 0)
		rte_ring_enqueue_bulk(r, give, n_give, NULL);
	out->restored = n_give;
out:
	free(snap);
	free(dead_objs);
	free(give);
	return ret;
}

int shim_mempool_recover_dead_lcore(struct rte_mempool *mp, unsigned lcore, int find_lost,
				    struct shim_recovery *out)
{
	unsigned size = mp->size, n_ring, n_dead = 0, n_other = 0, n_free, n_lost = 0, l, j;
	struct rte_ring *r = mp->pool_data;
	struct rte_mempool_cache *dead = NULL;
	struct obj_list all = { NULL, 0, size };
	void **taken = NULL, **dead_objs = NULL, **other = NULL, **free_set = NULL, **give = NULL;
	unsigned n_give = 0;
	int ret, rp, rc;

	memset(out, 0, sizeof(*out));
	if (strncmp(rte_mempool_get_ops(mp->ops_index)->name, "ring_", 5) != 0)
		return -ENOTSUP;
	if (mp->cache_size != 0 && lcore < RTE_MAX_LCORE)
		dead = &mp->local_cache[lcore];
	if (find_lost < 0)
		return recover_shared(mp, dead, out);

	rp = repair_headtail(&r->prod);
	rc = repair_headtail(&r->cons);
	if (rp < 0 || rc < 0)
		return -ENOTSUP;
	out->ring_repairs = (unsigned)(rp + rc);

	taken = calloc(size + 1, sizeof(void *));
	dead_objs = calloc(RTE_MEMPOOL_CACHE_MAX_SIZE * 3 + 1, sizeof(void *));
	other = calloc(size + 1, sizeof(void *));
	free_set = calloc(2 * size + 1, sizeof(void *));
	give = calloc(2 * size + 1, sizeof(void *));
	all.objs = calloc(size + 1, sizeof(void *));
	if (!taken || !dead_objs || !other || !free_set || !give || !all.objs) {
		ret = -ENOMEM;
		goto out;
	}

	/* 1. Everything in the common pool is free: take it out (no one else uses the pool). */
	n_ring = rte_ring_count(r);
	if (n_ring > size) {
		ret = -EINVAL;
		goto out;
	}
	if (n_ring > 0 && rte_ring_dequeue_bulk(r, taken, n_ring, NULL) != n_ring) {
		ret = -EAGAIN;
		goto out;
	}
	n_ring = sort_unique(taken, n_ring);

	/* 2. Caches of other lcores: free, listed only. */
	if (mp->cache_size != 0) {
		for (l = 0; l < RTE_MAX_LCORE; l++) {
			const struct rte_mempool_cache *c = &mp->local_cache[l];

			if (c == dead)
				continue;
			for (j = 0; j < c->len && j < RTE_DIM(c->objs) && n_other < size; j++)
				other[n_other++] = c->objs[j];
		}
	}
	n_other = sort_unique(other, n_other);

	/* 3. The dead lcore's cache. Killed inside a put, it may still list objects it had
	 * already flushed to the ring (DPDK enqueues the overflow, then resets len): keep only
	 * entries found nowhere else. */
	if (dead != NULL) {
		for (j = 0; j < dead->len && j < RTE_DIM(dead->objs); j++)
			dead_objs[n_dead++] = dead->objs[j];
		dead->len = 0;
	}
	n_dead = sort_unique(dead_objs, n_dead);
	for (j = 0; j < n_dead; j++) {
		void *o = dead_objs[j];

		if (contains(taken, n_ring, o) || contains(other, n_other, o))
			out->duplicates++;
		else
			give[n_give++] = o;
	}
	out->restored = n_give;

	/* 4. Objects in no list at all were held by the dead process: return them. */
	if (find_lost) {
		n_free = 0;
		memcpy(free_set, taken, n_ring * sizeof(void *));
		n_free += n_ring;
		memcpy(free_set + n_free, other, n_other * sizeof(void *));
		n_free += n_other;
		memcpy(free_set + n_free, give, n_give * sizeof(void *));
		n_free += n_give;
		n_free = sort_unique(free_set, n_free);
		rte_mempool_obj_iter(mp, collect_obj, &all);
		for (j = 0; j < all.n; j++) {
			void *o = all.objs[j];

			if (!contains(free_set, n_free, o)) {
				struct rte_mbuf *m = o;

				/* Possibly one segment of a lost chain: each segment is an object of
				 * its own and is found here, so make it a lone, unreferenced mbuf. */
				rte_pktmbuf_reset(m);
				rte_mbuf_refcnt_set(m, 1);
				give[n_give++] = o;
				n_lost++;
			}
		}
	}
	out->lost = n_lost;

	/* 5. Put back what was taken, then what was recovered: every object once. */
	if (n_ring > 0)
		rte_ring_enqueue_bulk(r, taken, n_ring, NULL);
	if (n_give > 0)
		rte_ring_enqueue_bulk(r, give, n_give, NULL);
	ret = 0;
out:
	free(taken);
	free(dead_objs);
	free(other);
	free(free_set);
	free(give);
	free(all.objs);
	return ret;
}

unsigned shim_mempool_free_count(const struct rte_mempool *mp)
{
	unsigned n, l;

	if (strncmp(rte_mempool_get_ops(mp->ops_index)->name, "ring_", 5) != 0)
		return rte_mempool_avail_count(mp);
	n = rte_ring_count(mp->pool_data);

	if (mp->cache_size != 0)
		for (l = 0; l < RTE_MAX_LCORE; l++)
			n += mp->local_cache[l].len;
	return n;
}

unsigned shim_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n)
{
	return rte_ring_enqueue_burst(r, objs, n, NULL);
}

unsigned shim_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n)
{
	return rte_ring_dequeue_burst(r, objs, n, NULL);
}

int shim_ring_repair(struct rte_ring *r, int prod_side)
{
	return repair_headtail(prod_side ? &r->prod : &r->cons);
}

uint16_t shim_mbuf_port(const struct rte_mbuf *m)
{
	return m->port;
}

unsigned shim_ring_count(const struct rte_ring *r)
{
	return rte_ring_count(r);
}

int shim_errno(void)
{
	return rte_errno;
}

unsigned shim_lcore_id(void)
{
	return rte_lcore_id();
}

uint64_t shim_rdtsc(void)
{
	return rte_rdtsc();
}

uint64_t shim_tsc_hz(void)
{
	return rte_get_tsc_hz();
}

uint32_t shim_softrss(const uint32_t *tuple, uint32_t len, const uint8_t *key)
{
	return rte_softrss((uint32_t *)(uintptr_t)tuple, len, key);
}
