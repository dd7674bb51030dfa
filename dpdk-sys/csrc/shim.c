/* Out-of-line copies of DPDK's static inline functions, so Rust can call them. */
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include "shim.h"

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

unsigned shim_mempool_cache_flush_lcore(struct rte_mempool *mp, unsigned lcore)
{
	struct rte_mempool_cache *cache = rte_mempool_default_cache(mp, lcore);
	unsigned n;

	if (cache == NULL)
		return 0;
	n = cache->len;
	rte_mempool_cache_flush(cache, mp);
	return n;
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

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;

	return (x > y) - (x < y);
}

int64_t shim_mempool_reclaim_unreferenced(struct rte_mempool *mp)
{
	unsigned size = mp->size, in_pool, n_free, n_lost = 0, l, j;
	struct obj_list all = { NULL, 0, size };
	void **taken, **free_objs, **lost;
	int64_t ret;

	/* rte_mempool_ops_get_count is internal: derive the common pool's count from the
	 * exported total minus what the lcore caches hold. */
	in_pool = rte_mempool_avail_count(mp);
	if (mp->cache_size != 0)
		for (l = 0; l < RTE_MAX_LCORE; l++)
			in_pool -= RTE_MIN(in_pool, mp->local_cache[l].len);
	if (in_pool > size)
		return -EINVAL;
	taken = calloc(size + 1, sizeof(void *));
	free_objs = calloc(size + 1, sizeof(void *));
	all.objs = calloc(size + 1, sizeof(void *));
	lost = calloc(size + 1, sizeof(void *));
	if (taken == NULL || free_objs == NULL || all.objs == NULL || lost == NULL) {
		ret = -ENOMEM;
		goto out;
	}
	/* Take every object out of the common pool: they are free. */
	if (in_pool > 0 && rte_mempool_ops_dequeue_bulk(mp, taken, in_pool) < 0) {
		ret = -EAGAIN;
		goto out;
	}
	memcpy(free_objs, taken, in_pool * sizeof(void *));
	n_free = in_pool;
	/* Objects in lcore caches are free too (listed, not taken). */
	if (mp->cache_size != 0) {
		for (l = 0; l < RTE_MAX_LCORE; l++) {
			const struct rte_mempool_cache *c = &mp->local_cache[l];

			for (j = 0; j < c->len && n_free < size; j++)
				free_objs[n_free++] = c->objs[j];
		}
	}
	qsort(free_objs, n_free, sizeof(void *), cmp_ptr);
	rte_mempool_obj_iter(mp, collect_obj, &all);
	for (j = 0; j < all.n; j++) {
		void *o = all.objs[j];

		if (bsearch(&o, free_objs, n_free, sizeof(void *), cmp_ptr) == NULL) {
			struct rte_mbuf *m = o;

			/* A lost mbuf may be a segment of a lost chain: each segment is an object of
			 * its own and is found here, so reset it to a lone, unreferenced mbuf. */
			rte_pktmbuf_reset(m);
			rte_mbuf_refcnt_set(m, 1);
			lost[n_lost++] = o;
		}
	}
	/* Put back what was taken, then the lost ones. */
	if (in_pool > 0)
		rte_mempool_ops_enqueue_bulk(mp, taken, in_pool);
	if (n_lost > 0)
		rte_mempool_ops_enqueue_bulk(mp, lost, n_lost);
	ret = n_lost;
out:
	free(taken);
	free(free_objs);
	free(all.objs);
	free(lost);
	return ret;
}

unsigned shim_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n)
{
	return rte_ring_enqueue_burst(r, objs, n, NULL);
}

unsigned shim_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n)
{
	return rte_ring_dequeue_burst(r, objs, n, NULL);
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
