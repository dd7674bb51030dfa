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

char *shim_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_prepend(m, len);
}

char *shim_pktmbuf_adj(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_adj(m, len);
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

/* ---- Packet capture (see shim.h) ---- */

#include <stdio.h>
#include <rte_malloc.h>
#include <rte_pcapng.h>

#define CAPTURE_MP_NAME "mp_pdump"

/* librte_pdump 22.11's request and response on the IPC channel (lib/pdump/rte_pdump.c): the
 * wire format stock dpdk-dumpcap and dpdk-pdump speak. */
enum { CAPTURE_DISABLE = 1, CAPTURE_ENABLE = 2 };
enum { CAPTURE_V1 = 1, CAPTURE_V2 = 2 };

struct capture_wire_request {
	uint16_t ver;
	uint16_t op;
	uint32_t flags;
	char device[RTE_DEV_NAME_MAX_LEN];
	uint16_t queue;
	struct rte_ring *ring;
	struct rte_mempool *mp;
	const struct rte_bpf_prm *prm;
	uint32_t snaplen;
};

struct capture_wire_response {
	uint16_t ver;
	uint16_t res_op;
	int32_t err_value;
};

/* librte_pdump 22.11's statistics memzone ("rte_pdump_stats"), read by rte_pdump_stats(). */
#define CAPTURE_STATS_MZ "rte_pdump_stats"
struct capture_stats_zone {
	struct rte_pdump_stats rx[RTE_MAX_ETHPORTS][RTE_MAX_QUEUES_PER_PORT];
	struct rte_pdump_stats tx[RTE_MAX_ETHPORTS][RTE_MAX_QUEUES_PER_PORT];
	const struct rte_memzone *mz;
};

static shim_capture_decide capture_decide;

/* The requester's pid from its socket path ".../mp_socket_<pid>_<tsc>". */
static int capture_peer_pid(const void *peer)
{
	const char *p = strrchr((const char *)peer, '/');
	int pid = 0;
	p = p ? p + 1 : (const char *)peer;
	if (sscanf(p, "mp_socket_%d_", &pid) != 1)
		return 0;
	return pid;
}

static int capture_check_filter(const struct rte_bpf_prm *prm)
{
	struct rte_bpf *bpf;
	if (prm == NULL)
		return 0;
	if (prm->prog_arg.type != RTE_BPF_ARG_PTR_MBUF)
		return -EINVAL;
	bpf = rte_bpf_load(prm);
	if (bpf == NULL)
		return -rte_errno;
	rte_bpf_destroy(bpf);
	return 0;
}

static int capture_server(const struct rte_mp_msg *msg, const void *peer)
{
	struct rte_mp_msg reply;
	struct capture_wire_response *resp = (struct capture_wire_response *)reply.param;
	const struct capture_wire_request *wr = (const struct capture_wire_request *)msg->param;

	memset(&reply, 0, sizeof(reply));
	if (msg->len_param != (int)sizeof(*wr)) {
		resp->err_value = -EINVAL;
	} else {
		resp->ver = wr->ver;
		resp->res_op = wr->op;
		if ((wr->ver != CAPTURE_V1 && wr->ver != CAPTURE_V2) ||
		    (wr->op != CAPTURE_ENABLE && wr->op != CAPTURE_DISABLE)) {
			resp->err_value = -EINVAL;
		} else {
			struct shim_capture_request req;
			memset(&req, 0, sizeof(req));
			req.enable = wr->op == CAPTURE_ENABLE;
			req.flags = wr->flags;
			memcpy(req.device, wr->device, sizeof(req.device));
			req.device[sizeof(req.device) - 1] = 0;
			req.queue = wr->queue;
			req.ring = (uint64_t)(uintptr_t)wr->ring;
			req.mempool = (uint64_t)(uintptr_t)wr->mp;
			req.filter = (uint64_t)(uintptr_t)wr->prm;
			req.snaplen = wr->snaplen;
			req.pcapng = wr->ver == CAPTURE_V2;
			req.requester_pid = capture_peer_pid(peer);
			req.wire_ver = wr->ver;
			req.wire_op = wr->op;
			snprintf(req.peer, sizeof(req.peer), "%s", (const char *)peer);
			resp->err_value = req.enable ? capture_check_filter(wr->prm) : 0;
			if (resp->err_value == 0)
				resp->err_value = capture_decide(&req);
			if (resp->err_value == SHIM_CAPTURE_LATER)
				return 0;
		}
	}
	snprintf(reply.name, sizeof(reply.name), "%s", CAPTURE_MP_NAME);
	reply.len_param = sizeof(*resp);
	reply.num_fds = 0;
	return rte_mp_reply(&reply, peer) < 0 ? -1 : 0;
}

int shim_capture_reply(const struct shim_capture_request *req, int err)
{
	struct rte_mp_msg reply;
	struct capture_wire_response *resp = (struct capture_wire_response *)reply.param;

	memset(&reply, 0, sizeof(reply));
	resp->ver = req->wire_ver;
	resp->res_op = req->wire_op;
	resp->err_value = err;
	snprintf(reply.name, sizeof(reply.name), "%s", CAPTURE_MP_NAME);
	reply.len_param = sizeof(*resp);
	reply.num_fds = 0;
	return rte_mp_reply(&reply, req->peer) < 0 ? -rte_errno : 0;
}

int shim_capture_serve(shim_capture_decide decide)
{
	capture_decide = decide;
	/* The library reserves its statistics and registers its own server, which would add the
	 * callbacks in this process: ours replaces it. */
	if (rte_pdump_init() < 0)
		return -rte_errno;
	rte_mp_action_unregister(CAPTURE_MP_NAME);
	if (rte_mp_action_register(CAPTURE_MP_NAME, capture_server) < 0)
		return -rte_errno;
	return 0;
}

struct shim_capture {
	struct rte_ring *ring;
	struct rte_mempool *mp;
	struct rte_bpf *filter;
	struct rte_pdump_stats *stats;
	const struct rte_eth_rxtx_callback *cb;
	uint32_t snaplen;
	uint16_t port;
	uint16_t queue;
	int tx;
	int pcapng;
};

static void capture_copy(struct shim_capture *c, struct rte_mbuf **pkts, uint16_t n,
			 enum rte_pcapng_direction dir)
{
	struct rte_mbuf *copies[n];
	uint64_t verdicts[n];
	uint64_t ts = rte_get_tsc_cycles();
	uint64_t filtered = 0, nombuf = 0;
	unsigned int copied = 0, queued, i;

	if (c->filter)
		rte_bpf_exec_burst(c->filter, (void **)pkts, verdicts, n);
	for (i = 0; i < n; i++) {
		struct rte_mbuf *p;
		if (c->filter && verdicts[i] == 0) {
			filtered++;
			continue;
		}
		if (c->pcapng)
			p = rte_pcapng_copy(c->port, c->queue, pkts[i], c->mp, c->snaplen, ts, dir);
		else
			p = rte_pktmbuf_copy(pkts[i], c->mp, 0, c->snaplen);
		if (p == NULL)
			nombuf++;
		else
			copies[copied++] = p;
	}
	queued = rte_ring_enqueue_burst(c->ring, (void **)copies, copied, NULL);
	if (queued < copied)
		rte_pktmbuf_free_bulk(&copies[queued], copied - queued);
	if (c->stats) {
		__atomic_fetch_add(&c->stats->accepted, copied, __ATOMIC_RELAXED);
		if (filtered)
			__atomic_fetch_add(&c->stats->filtered, filtered, __ATOMIC_RELAXED);
		if (nombuf)
			__atomic_fetch_add(&c->stats->nombuf, nombuf, __ATOMIC_RELAXED);
		if (queued < copied)
			__atomic_fetch_add(&c->stats->ringfull, copied - queued, __ATOMIC_RELAXED);
	}
}

static uint16_t capture_rx(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n,
			   uint16_t max, void *arg)
{
	(void)port;
	(void)queue;
	(void)max;
	if (n)
		capture_copy(arg, pkts, n, RTE_PCAPNG_DIRECTION_IN);
	return n;
}

static uint16_t capture_tx(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n,
			   void *arg)
{
	(void)port;
	(void)queue;
	if (n)
		capture_copy(arg, pkts, n, RTE_PCAPNG_DIRECTION_OUT);
	return n;
}

struct shim_capture *shim_capture_start(uint16_t port, uint16_t queue, int tx, uint64_t ring,
					uint64_t mempool, uint64_t filter, uint32_t snaplen,
					int pcapng)
{
	const struct rte_memzone *mz = rte_memzone_lookup(CAPTURE_STATS_MZ);
	struct shim_capture *c;

	if (port >= RTE_MAX_ETHPORTS || queue >= RTE_MAX_QUEUES_PER_PORT || ring == 0 || mempool == 0) {
		rte_errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		rte_errno = ENOMEM;
		return NULL;
	}
	c->ring = (struct rte_ring *)(uintptr_t)ring;
	c->mp = (struct rte_mempool *)(uintptr_t)mempool;
	c->snaplen = snaplen ? snaplen : UINT32_MAX;
	c->port = port;
	c->queue = queue;
	c->tx = tx;
	c->pcapng = pcapng;
	if (mz != NULL && mz->len >= sizeof(struct capture_stats_zone)) {
		struct capture_stats_zone *z = mz->addr;
		c->stats = tx ? &z->tx[port][queue] : &z->rx[port][queue];
	}
	if (filter) {
		c->filter = rte_bpf_load((const struct rte_bpf_prm *)(uintptr_t)filter);
		if (c->filter == NULL) {
			int e = rte_errno;
			free(c);
			rte_errno = e;
			return NULL;
		}
	}
	c->cb = tx ? rte_eth_add_tx_callback(port, queue, capture_tx, c)
		   : rte_eth_add_first_rx_callback(port, queue, capture_rx, c);
	if (c->cb == NULL) {
		int e = rte_errno;
		if (c->filter)
			rte_bpf_destroy(c->filter);
		free(c);
		rte_errno = e;
		return NULL;
	}
	return c;
}

void shim_capture_stop(struct shim_capture *c)
{
	if (c == NULL)
		return;
	if (c->tx)
		rte_eth_remove_tx_callback(c->port, c->queue, c->cb);
	else
		rte_eth_remove_rx_callback(c->port, c->queue, c->cb);
	/* The callback's own record stays allocated: ethdev does not say when a burst on another
	 * thread stops using it (here none does, but its memory is ethdev's). */
	if (c->filter)
		rte_bpf_destroy(c->filter);
	free(c);
}
